/*
 * claim.h - one gate per Twilio queue in one Redis. Each instance of a gate
 * takes or renews its gate's claim on the Twilio queue it enqueues callers
 * into (claim.lua), when Redis becomes ready and every
 * GATE_CLAIM_RENEW_MS after. A second gate that finds the queue claimed by
 * another gate calls the conflict callback once: the app then refuses to
 * run (exit 2), because two gates on one queue would each adopt the
 * other's callers at reconciliation.
 *
 * Ownership: the claim borrows base, store and cfg (they outlive it).
 * The conflict callback runs from the loop, at most once, with a message
 * valid during the call.
 */
#ifndef CG_GATE_CLAIM_H
#define CG_GATE_CLAIM_H

struct event_base;
struct cg_config;
struct gate_store;
struct gate_claim;

#define GATE_CLAIM_TTL_MS   30000 /* a gate whose instances all died frees its queue after this */
#define GATE_CLAIM_RENEW_MS 10000

typedef void (*gate_conflict_cb)(const char *why, void *arg);

/* NULL when the timer cannot be created. */
struct gate_claim *gate_claim_new(struct event_base *base, struct gate_store *store,
                                  const struct cg_config *cfg, gate_conflict_cb cb, void *arg);
/* The same for a route's queue (ROUTES_FILE): one claim per queue name. */
struct gate_claim *gate_claim_new_queue(struct event_base *base, struct gate_store *store,
                                        const struct cg_config *cfg, const char *queue,
                                        gate_conflict_cb cb, void *arg);
/* Takes or renews the claim now (Redis just became ready). */
void gate_claim_check(struct gate_claim *c);
/* A claim in flight finishes on its own, calling nobody. NULL is a no-op. */
void gate_claim_free(struct gate_claim *c);

#endif
