/*
 * endprobe.h - asking Vapi early whether a call is over once its Twilio
 * leg has ended.
 *
 * When Twilio reports a connected caller gone, the slot stays held until
 * Vapi ends its call too (Vapi counts the call until then): Vapi's
 * status-update "ended" and end-of-call-report normally follow within a
 * moment. When both are lost the lease sweep asks Vapi only once the end
 * grace (END_GRACE_MS) has run out, and the slot sits idle meanwhile while
 * callers wait. A probe asks Vapi (GET /call/{id}) a few hundred
 * milliseconds after Twilio's end, then again after growing delays
 * (cg_backoff_ms: 250-500 ms, 0.5-1 s, 1-2 s, ... at most PROBE_CAP_MS);
 * once the lag of Vapi's messages after Twilio's end is learned (below),
 * first at that lag and then 50-100 ms, 100-200 ms, ... later,
 * until Vapi says the call ended or the next ask would come after the
 * probe's deadline (the grace, or the orphan hold of a Vapi call that lost
 * its caller); the sweep stays the last resort after it. Vapi's own end
 * message for the call (gate_probe_cancel) ends the probe.
 *
 * Probes are local to the instance that heard Twilio's end; nothing of
 * them is in Redis (an instance that dies takes its probes along and the
 * sweep covers for them).
 *
 * Callbacks run on the event loop, never from inside gate_probe_*() calls.
 * The answer callback gets every Vapi answer (for the credential checks and
 * the metrics); the probe is already off the list when it runs with an
 * ended call, so it may call gate_probe_cancel() or start new probes.
 * Strings passed in are copied.
 */
#ifndef CG_GATE_ENDPROBE_H
#define CG_GATE_ENDPROBE_H

#include <stddef.h>

struct event_base;
struct cg_metrics;
struct cg_vapi;
struct cg_vapi_get_result;

/* First delay's upper bound (the first ask comes 250-500 ms after the
 * start) and the longest delay between two asks. */
#define GATE_PROBE_BASE_MS 500
#define GATE_PROBE_CAP_MS  5000
/* Once GATE_PROBE_LEARN_SAMPLES of Vapi's end messages have ended probes,
 * the first ask comes at the learned lag of those messages after Twilio's
 * end (smoothed mean + smoothed deviation + GATE_PROBE_MARGIN_MS, within
 * GATE_PROBE_MIN_MS..GATE_PROBE_BASE_MS): Vapi has ended the call by the
 * time its message would have come, so a lost message costs the slot about
 * one GET. A call still live then is asked again after
 * GATE_PROBE_RETRY_MS/2..GATE_PROBE_RETRY_MS, doubling. A message that
 * comes (most do) cancels the ask before it goes, so the asks stay about
 * one per call whose message is lost. */
#define GATE_PROBE_LEARN_SAMPLES 4
#define GATE_PROBE_MARGIN_MS     3
#define GATE_PROBE_MIN_MS        20
#define GATE_PROBE_RETRY_MS      100

/* Every answer Vapi gave a probe for vapi_id (valid during the call). */
typedef void (*gate_probe_answer_cb)(void *owner, const char *vapi_id,
                                     const struct cg_vapi_get_result *res);

struct gate_probes;

/* vapi and metrics (may be NULL) are borrowed and must outlive the set. */
struct gate_probes *gate_probes_new(struct event_base *base, struct cg_vapi *vapi,
                                    struct cg_metrics *metrics, gate_probe_answer_cb answer,
                                    void *owner);
/* Starts asking Vapi about vapi_id until deadline_ms from now; a probe of
 * the same id already running keeps going with the later deadline. */
void gate_probe_start(struct gate_probes *p, const char *vapi_id, long deadline_ms);
/* Vapi said the call ended by other means: no more asking. */
void gate_probe_cancel(struct gate_probes *p, const char *vapi_id);
/* The learned delay of the first ask in ms, or -1 while too little is
 * known (then 250-500 ms). */
long gate_probe_first_ms(const struct gate_probes *p);
/* Probes whose GET is out (the drain at shutdown waits for them). */
size_t gate_probes_asking(const struct gate_probes *p);
/* Probes running (for the tests). */
size_t gate_probes_count(const struct gate_probes *p);
/* No new asks from now on; the GETs out end their probes when they come
 * back (or are cancelled by cg_vapi_free()). */
void gate_probes_stop(struct gate_probes *p);
/* Frees every probe; call after cg_vapi_free() so no GET is out. NULL is a
 * no-op. */
void gate_probes_free(struct gate_probes *p);

#endif
