/*
 * report.h - the truth of a run, kept by the simulator as it happens, the
 * invariants judged against it, and the JSON report.
 *
 * Both simulated sides record events here; report.c integrates them into
 * the figures (peak Vapi concurrency, idle slot-seconds while callers wait,
 * slot-refill latency, waits, estimate errors). report_json.c writes them
 * out (sim_report_finish(), sim_report_progress(), sim_report_status_json())
 * together with the TaskRouter and wait-time sections; the modules that
 * record events never depend on those writers.
 */
#ifndef SIM_REPORT_H
#define SIM_REPORT_H

#include <stddef.h>
#include <stdio.h>

struct sim_world;
struct sim_report;

/* How a caller's story ended. */
enum sim_outcome {
    SIM_OUT_NONE,      /* still going */
    SIM_OUT_CONNECTED, /* reached a Vapi assistant */
    SIM_OUT_ABANDONED, /* hung up by choice while waiting */
    SIM_OUT_OVERFLOW,  /* given an overflow treatment: message, <Dial> or <Record> */
    SIM_OUT_LOST,      /* never connected and never hung up by choice */
};

struct sim_report *sim_report_new(struct sim_world *w);
void sim_report_free(struct sim_report *r);

/* Events, each stamped with sim_now_s(). */
void sim_report_caller_arrived(struct sim_report *r);
void sim_report_caller_enqueued(struct sim_report *r); /* entered a Twilio queue */
void sim_report_caller_dequeued(struct sim_report *r); /* left it, for any reason */
void sim_report_caller_done(struct sim_report *r, enum sim_outcome outcome, double waited_s);
void sim_report_vapi_created(struct sim_report *r); /* a call now counts against the limit */
/* The same for a callback's call, whose slot was put to use (the refill)
 * when the gate dialled the customer: sim_report_callback_dialed. */
void sim_report_callback_created(struct sim_report *r);
void sim_report_callback_dialed(struct sim_report *r);
void sim_report_vapi_ended(struct sim_report *r); /* it no longer does */
void sim_report_vapi_rejected(struct sim_report *r, int overlimit);
void sim_report_orphan(struct sim_report *r); /* Vapi call that never got its stream */
void sim_report_estimate(struct sim_report *r, double announced_s, double actual_s);
void sim_report_twiml_error(struct sim_report *r, const char *what);
void sim_report_count(struct sim_report *r, const char *counter); /* free-form counters */

/* Final figures; gate_active/gate_waiting are what callgate reports at the
 * end (-1 if unknown). Writes the JSON report to out and returns the number
 * of failed invariants (0 = pass), each also printed on stderr. */
int sim_report_finish(struct sim_report *r, long gate_active, long gate_waiting, FILE *out);
/* A one-line progress summary for the demo. */
void sim_report_progress(const struct sim_report *r, char *out, size_t outlen);

/* ---- additions (simulator half 2) ---- */
/* Replaces sim_now_s() as the time source (unit tests drive a fake clock). */
void sim_report_set_clock(struct sim_report *r, double (*now_s)(void *arg), void *arg);
/* The latest estimated wait announced to a caller (progress line "ewt=");
 * sim_report_estimate() also updates it. */
void sim_report_announced(struct sim_report *r, double announced_s);
/* Adds a failed invariant that is not derived from the figures (the gate
 * never became ready, its final health could not be read). */
void sim_report_fail(struct sim_report *r, const char *name, const char *detail);
/* Live figures as a JSON object (malloc'd), for GET /sim/status. */
char *sim_report_status_json(const struct sim_report *r);
/* Live counts, for the run's end condition and tests. */
long sim_report_waiting(const struct sim_report *r);   /* callers in a Twilio queue */
long sim_report_vapi_live(const struct sim_report *r); /* gate's calls, external excluded */

#endif
