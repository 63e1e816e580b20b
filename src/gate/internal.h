/*
 * gate_int.h - what gate.c (the admission engine) and gate_http.c (the
 * webhook and admin handlers) share. Not for other modules.
 */
#ifndef CG_GATE_INT_H
#define CG_GATE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "gate/gate.h"

struct event;
struct cg_http_req;
struct cg_periodic;
struct cg_twilio;
struct cg_vapi;

enum gate_script {
    S_ENTER,
    S_ADMIT,
    S_VAPI_CREATED,
    S_CONNECTED,
    S_REQUEUE,
    S_END,
    S_POSITION,
    S_SWEEP,
    S_EXTEND,
    S_SNAPSHOT,
    S_MEMBERS,
    S_COUNT
};

/* One caller's admission attempt, from the admit step to connected (or
 * requeued, orphaned, overflowed). */
struct admission {
    struct cg_gate *g;
    char sid[40];
    char *from;
    int attempt;
    char *vapi_id;
    char *twiml;
    /* Fast path: the /incoming request still waiting for its answer; NULL
     * once answered (by Vapi's TwiML, or Enqueue when the deadline passed). */
    struct cg_http_req *fast_req;
    struct event *timer; /* fast-path deadline, then Twilio retry delay */
    int twilio_tries;
    uint64_t started_us;
    uint64_t slot_freed_us; /* when the release that made room happened, or 0 */
    struct admission *prev, *next;
};

struct cg_gate {
    struct event_base *base;
    const struct cg_config *cfg;
    const struct cg_keys *keys;
    struct cg_redis *redis;
    struct cg_httpd *httpd;
    struct cg_metrics *metrics;
    struct cg_waittime *waittime; /* may be NULL */
    struct cg_twilio *twilio;
    struct cg_twilio *twilio_push; /* the assistant's TwiML: no transport retries (gate.c) */
    struct cg_vapi *vapi;
    int scripts[S_COUNT];

    struct cg_periodic *sweep_task;
    struct cg_periodic *reconcile_task;
    struct event *retry_timer; /* admission after a backoff */

    struct admission *admissions; /* in flight */
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
};

/* Argument vector for a script call: KEYS[1] (for routing) then ARGV, with
 * ARGV[1] the key prefix. Numbers are formatted into owned storage. */
#define GATE_MAX_ARGS 16
struct gate_args {
    const char *v[GATE_MAX_ARGS];
    char num[GATE_MAX_ARGS][24];
    int n;
};

void gate_args_init(struct gate_args *a, const struct cg_gate *g);
void gate_args_str(struct gate_args *a, const char *s);
void gate_args_int(struct gate_args *a, long long v);
/* Runs a script; the callback fires exactly once (redis.h rules). */
int gate_eval(struct cg_gate *g, enum gate_script s, struct gate_args *a, cg_redis_cb cb,
              void *arg);

/* Runs the admit step (coalesced: one in flight per process). */
void gate_admit(struct cg_gate *g);
/* Starts admissions for the sid/from/attempt triples of a script reply,
 * beginning at element first. */
void gate_start_admissions(struct cg_gate *g, const redisReply *r, size_t first,
                           uint64_t slot_freed_us);
/* Starts the fast path for a caller the enter script admitted. */
void gate_start_fast(struct cg_gate *g, struct cg_http_req *req, const char *sid, const char *from);
/* Applies an end signal (end.lua kinds) and starts admissions into freed
 * slots. done may be NULL; it receives the verdict (NULL on failure). */
typedef void (*gate_end_cb)(const char *verdict, void *arg);
void gate_end(struct cg_gate *g, const char *kind, const char *id, const char *reason,
              const char *signal, gate_end_cb done, void *arg);

/* TwiML for the overflow treatment configured (malloc'd). */
char *gate_overflow_twiml(const struct cg_gate *g);
/* TwiML that (re)enqueues the caller (malloc'd). */
char *gate_enqueue_twiml(const struct cg_gate *g);
/* Answers a request with a TwiML document (takes ownership of twiml). */
void gate_reply_twiml(struct cg_http_req *req, char *twiml);

/* gate_http.c */
int gate_http_register(struct cg_gate *g);

#endif
