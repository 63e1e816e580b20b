/*
 * gate.h - the admission gate: callers wait in a Twilio queue and are
 * connected to the Vapi assistant only while the concurrency limit allows.
 *
 * All shared state lives in Redis and changes only through the Lua scripts
 * in src/lua (one atomic step per state change), so any number of callgate
 * processes sharing one Redis behave as one gate. This module drives those
 * scripts from events: webhooks (gate_http.c), API answers from Vapi and
 * Twilio, and timers (sweep of expired leases, reconciliation with Twilio's
 * queue members, admission retries after a backoff).
 *
 * Admission of one caller: the admit step (Lua) moves the head of the queue
 * into the active set with a lease; then Vapi POST /call with provider
 * bypass; then the returned TwiML is pushed unchanged to the Twilio call.
 * As many admissions run at once as there are free slots. Every failure
 * path puts the caller back at the head with their original ticket, or
 * hands them the overflow treatment; none loses them.
 *
 * Ownership: the gate borrows everything in struct cg_gate_deps (they
 * outlive it) and registers its routes on the HTTP server at creation.
 */
#ifndef CG_GATE_H
#define CG_GATE_H

#include <stddef.h>

#include "net/redis.h"

struct event_base;
struct cg_config;
struct cg_keys;
struct cg_httpc;
struct cg_httpd;
struct cg_metrics;
struct cg_waittime;
struct cg_gate;

struct cg_gate_deps {
    struct event_base *base;
    const struct cg_config *cfg;
    const struct cg_keys *keys;
    struct cg_redis *redis;
    struct cg_httpc *httpc;
    struct cg_httpd *httpd;
    struct cg_metrics *metrics;
    struct cg_waittime *waittime; /* hold music for TaskRouter callers; may be NULL */
};

/* Writes the names of the options the gate needs but are empty into out
 * (comma separated) and returns how many there are; 0 means the gate can
 * run. Without them callgate serves everything else (health, wait times). */
int cg_gate_missing_config(const struct cg_config *cfg, char *out, size_t outlen);
/* Registers scripts, routes and timers. NULL with err on failure. */
struct cg_gate *cg_gate_new(const struct cg_gate_deps *d, char *err, size_t errlen);
/* The app forwards Redis state changes: READY resumes admission and
 * reconciles with Twilio's queue. */
void cg_gate_redis_state(struct cg_gate *g, enum cg_redis_state state);
/* Stops starting new admissions (shutdown); those in flight continue. */
void cg_gate_stop(struct cg_gate *g);
/* Teardown, before the Redis connection is freed: the gate issues no Redis
 * command from now on, so the callbacks that freeing Redis and the API
 * clients fire can only wind work down. */
void cg_gate_detach(struct cg_gate *g);
/* Admissions and checks in flight: shutdown waits for them. */
size_t cg_gate_inflight(const struct cg_gate *g);
void cg_gate_free(struct cg_gate *g);

/* Answers a TaskRouter caller's waitUrl (?taskQueueSid=WQ...) with hold
 * TwiML announcing that TaskQueue's estimate, or plain hold music when the
 * queue is unknown. The gate's /queue-wait uses it, and so does the app's
 * own /queue-wait when the gate is off. wt may be NULL. */
struct cg_http_req;
void cg_gate_taskqueue_hold(const struct cg_config *cfg, struct cg_waittime *wt,
                            struct cg_http_req *req, const char *queue_sid);

#endif
