/*
 * gate.h - the admission gate: callers wait in a Twilio queue and are
 * connected to the Vapi assistant only while the concurrency limit allows.
 *
 * All shared state lives in Redis and changes only through the Lua scripts
 * in src/gate/lua (one atomic step per state change, run through
 * gate/store.h), so any number of callgate processes sharing one Redis
 * behave as one gate. The engine (engine.c) drives those scripts from
 * events: webhooks (endpoints.c, gate/endpoints.h), API answers from Vapi
 * and Twilio, and timers (sweep of expired leases, reconciliation with
 * Twilio's queue members, admission retries after a backoff).
 *
 * Admission of one caller: the admit step (Lua) moves the head of the queue
 * into the active set with a lease; then Vapi POST /call with provider
 * bypass; then the returned TwiML is pushed unchanged to the Twilio call.
 * As many admissions run at once as there are free slots. Every failure
 * path puts the caller back at the head with their original ticket, or
 * hands them the overflow treatment; none loses them.
 *
 * Ownership: the gate borrows everything in struct cg_gate_deps (they
 * outlive it). It registers no HTTP route itself: the app registers the
 * gate's routes (cg_gate_endpoints_register), serves /metrics with the
 * figures of cg_gate_collect_metrics, and sends /queue-wait requests that
 * are not TaskRouter's to cg_gate_queue_wait.
 */
#ifndef CG_GATE_H
#define CG_GATE_H

#include <stddef.h>

#include "net/redis.h"

struct event_base;
struct cg_config;
struct cg_keys;
struct cg_httpc;
struct cg_metrics;
struct cg_gate;

struct cg_gate_deps {
    struct event_base *base;
    const struct cg_config *cfg;
    const struct cg_keys *keys;
    struct cg_redis *redis;
    struct cg_httpc *httpc;
    struct cg_metrics *metrics; /* may be NULL */
    /* Another gate uses this gate's Twilio queue in the same Redis
     * (gate/claim.h): the gate must not run. Called at most once. */
    void (*on_conflict)(const char *why, void *arg);
    void *conflict_arg;
};

/* Checks of the configuration that need the gate's documents: the
 * overflow TwiML must fit Twilio's limit on a call update. Adds each
 * problem to errs (naming the option) and returns -1, else 0. Run by
 * serve and check-config once the options are loaded. */
struct cg_config_errors;
int cg_gate_check_config(const struct cg_config *cfg, struct cg_config_errors *errs);

/* Registers the scripts and starts the timers. NULL with err on failure. */
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

/* How long a refusal of the credentials keeps /health degraded when no
 * request has been accepted since. */
#define CG_GATE_AUTH_RECENT_MS (5 * 60 * 1000)
/* A sentence for /health when Vapi or Twilio refused the gate's
 * credentials (401/403) within CG_GATE_AUTH_RECENT_MS and accepted none
 * since, naming the options to check; NULL when neither did. Static
 * storage. */
const char *cg_gate_auth_problem(const struct cg_gate *g);

/* The gate's instances as this instance's last announcement found them
 * (gate/instances.h): live count, how many disagree on the gate-wide
 * settings, the lowest MAX_CONCURRENCY among them, the names of the
 * settings that differ ("" when they agree) and a sentence for /health
 * (NULL when they agree). Strings owned by the gate, valid until its next
 * announcement. */
struct cg_gate_instances_view {
    long live;
    long disagreeing;
    long long lowest_limit;
    const char *differ;
    const char *problem;
};
void cg_gate_instances_state(const struct cg_gate *g, struct cg_gate_instances_view *out);

/* Sets the gate's figures in the metrics registry of its deps (queue
 * length, slots, limits, the gate-wide event counts kept in Redis; or
 * callgate_redis_up 0), then calls done(arg) exactly once, possibly before
 * returning. The caller renders the registry afterwards. */
void cg_gate_collect_metrics(struct cg_gate *g, void (*done)(void *arg), void *arg);

#endif
