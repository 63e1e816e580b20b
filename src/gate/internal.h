/*
 * internal.h - the admission engine (engine.c) as its two users see it: the
 * HTTP endpoints (endpoints.c) and the engine's unit tests. Not for other
 * modules.
 *
 * The engine knows no HTTP. Where a caller waits on an answer (Twilio's
 * voice webhook), the user passes a gate_answer_cb and the engine calls it
 * exactly once with the TwiML to answer; the user owns the request and
 * sends the answer.
 */
#ifndef CG_GATE_INTERNAL_H
#define CG_GATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "gate/gate.h"
#include "gate/store.h"

struct event;
struct cg_periodic;
struct cg_twilio;
struct cg_vapi;
struct cg_config;
struct gate_relay;

/* Receives the TwiML to answer a voice webhook with; takes ownership of
 * twiml (malloc'd). */
typedef void (*gate_answer_cb)(char *twiml, void *arg);

/* One caller's admission attempt, from the admit step to connected (or
 * requeued, orphaned, overflowed). */
struct admission {
    struct cg_gate *g;
    struct cg_list link; /* in cg_gate.admissions */
    char sid[40];
    char *from;
    int attempt;
    char *vapi_id;
    char *twiml;
    /* Fast path: who waits for the voice webhook's answer; NULL once
     * answered (by Vapi's TwiML, or Enqueue when the deadline passed). */
    gate_answer_cb answer;
    void *answer_arg;
    struct event *fast_deadline; /* fast path: answer Enqueue when Vapi is slow */
    struct event *push_retry;    /* Twilio update again: the call was not ready */
    int twilio_tries;
    uint64_t started_us;
    uint64_t slot_freed_us;       /* when the release that made room happened, or 0 */
    const struct cg_route *route; /* ROUTES_FILE: the caller's route, once known; NULL: one route */
};

struct gate_callback_dialer;
struct gate_callback_window;

struct cg_gate {
    struct event_base *base;
    const struct cg_config *cfg;
    const struct cg_keys *keys;
    struct cg_redis *redis;
    struct cg_metrics *metrics;
    struct cg_twilio *twilio;
    struct cg_twilio *twilio_push; /* the assistant's TwiML: no transport retries (engine.c) */
    struct cg_vapi *vapi;
    struct gate_relay *relay; /* the assistant's other server messages (relay.h) */
    struct gate_store store;
    /* Dials callbacks whose turn came (callback_dial.h); NULL: callbacks
     * off (CALLBACK_OFFER_SECONDS 0), and a reserved slot waits for its
     * lease. */
    struct gate_callback_dialer *callback_dialer;
    /* Keeps cg:{g}:cbwin in step with CALLBACK_HOURS; NULL: callbacks off. */
    struct gate_callback_window *callback_window;
    struct gate_callback_hours *callback_hours; /* NULL: any time */

    struct cg_periodic *sweep_task;
    struct cg_periodic *reconcile_task;
    struct cg_periodic *routes_task;  /* routes published again (routes.h) */
    struct gate_claim *claim;         /* this gate's claim on its Twilio queue */
    struct gate_claim **route_claims; /* ROUTES_FILE: one per route's queue, or NULL */
    struct gate_repair *repair;       /* slots rebuilt from Vapi after Redis lost writes */
    struct gate_probes *probes;       /* early asks of Vapi after a Twilio end (endprobe.h) */
    struct gate_instances *instances; /* the registry of the gate's instances (instances.h) */
    struct event *retry_timer;        /* admission after a backoff */

    struct cg_list admissions; /* in flight: struct admission */
    struct cg_list rechecks;   /* second questions to Vapi (recheck.h) */
    size_t nadmissions;
    size_t checks; /* sweep and reconcile operations in flight */
    int admit_running;
    int admit_again;
    int sweep_running;
    int reconcile_running;
    int stopping;    /* no new admissions (shutdown) */
    int closing;     /* no Redis at all (teardown) */
    unsigned fails;  /* consecutive admission failures, for backoff */
    char *queue_sid; /* TWILIO_QUEUE_SID, or found by TWILIO_QUEUE_NAME */
    /* ROUTES_FILE: each route's queue SID once found by its name, and the
     * route the reconciliation in flight (or the next one) is about. */
    char **route_queue_sids;
    size_t reconcile_route;
    /* Per API (GATE_API_VAPI, GATE_API_TWILIO): when it last refused the
     * credentials (401/403) and last accepted them, monotonic ms, 0: never.
     * /health reports refused credentials (cg_gate_auth_problem). */
    uint64_t auth_refused_ms[2];
    uint64_t auth_accepted_ms[2];
};

enum { GATE_API_VAPI, GATE_API_TWILIO };

/* Notes an API's answer (its HTTP status, 0 when none came) for
 * cg_gate_auth_problem. */
void gate_note_api(struct cg_gate *g, int api, long http_status);

/* 1 while Redis answers and the gate has not let go of it. */
int gate_redis_ready(const struct cg_gate *g);

/* A caller arrives (Twilio's voice webhook): records them and calls answer
 * exactly once with the TwiML to answer (malloc'd; answer frees it):
 * Enqueue, the overflow treatment, the assistant's TwiML when the fast
 * path admitted them, or empty TwiML. answer may run before this returns
 * (Redis down) or much later (the fast path waits for Vapi). */
void gate_arrive(struct cg_gate *g, const char *sid, const char *from, const char *to,
                 gate_answer_cb answer, void *arg);

/* A callback's outbound leg answered by a person (callback.lua answered
 * made it a caller being admitted, attempt 1, in the reserved slot): its
 * answer webhook waits for the assistant's TwiML as on the fast path, and
 * answer is called exactly once (Vapi's TwiML, or Enqueue when Vapi is
 * slower than FAST_PATH_DEADLINE_MS: the TwiML then follows by Calls
 * update, as for any caller). qc: the leg's queue context from that reply. */
void gate_admit_answered(struct cg_gate *g, const char *sid, const char *from,
                         const struct gate_queue_context *qc, gate_answer_cb answer, void *arg);

/* Starts the admissions a script's reply carries (an admission list,
 * gate/store.h, from element first): callers, callback dials, outbound
 * calls. */
void gate_start_admitted(struct cg_gate *g, const redisReply *r, size_t first);

/* Runs the admit step (coalesced: one in flight per process). */
void gate_admit(struct cg_gate *g);

/* Applies an end signal (end.lua kinds) and starts admissions into freed
 * slots. done may be NULL; it receives the verdict (GV_NONE on failure),
 * exactly once, possibly before gate_end returns. */
typedef void (*gate_end_cb)(enum gate_verdict verdict, void *arg);
void gate_end(struct cg_gate *g, const char *kind, const char *id, const char *reason,
              const char *signal, gate_end_cb done, void *arg);

/* Records a caller found in Twilio's queue whom the gate has no record of
 * (enter in adopt mode, waited_s already spent in Twilio's queue); cb gets
 * enter's verdict. 0, or -1 without callback (store.h rules). */
int gate_adopt(struct cg_gate *g, const char *sid, const char *from, const char *to, long waited_s,
               gate_store_cb cb, void *arg);

/* The admission engine's own list and retry timer (engine.c), made and
 * freed by the gate's life cycle (gate.c). init: 0 or -1. free cancels
 * nothing: the clients are freed first, which completes every request. */
int gate_engine_init(struct cg_gate *g);
void gate_engine_free(struct cg_gate *g);

/* Periodic tasks (net/periodic callbacks, arg the gate): the lease sweep
 * (sweep.c; also a safety run of admission) and the reconciliation with
 * Twilio's queue members (reconcile.c). */
void gate_sweep_tick(void *arg);
void gate_reconcile_tick(void *arg);

/* TwiML for the overflow treatment configured (malloc'd); the same from a
 * configuration alone (documents.c). */
char *gate_overflow_twiml(const struct cg_gate *g);
char *gate_overflow_twiml_for(const struct cg_config *c);
/* TwiML that (re)enqueues the caller (malloc'd). */
char *gate_enqueue_twiml(const struct cg_gate *g);

#endif
