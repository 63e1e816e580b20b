#include "base/fmacros.h"

#include "gate/claim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/log.h"
#include "gate/store.h"
#include "net/periodic.h"

struct gate_claim {
    struct gate_store *store;
    const struct cg_config *cfg;
    gate_conflict_cb cb;
    void *arg;
    struct cg_periodic *renew;
    char *key;
    char *queue;    /* the Twilio queue's name */
    int inflight;   /* a claim.lua call has not answered yet */
    int orphaned;   /* freed while in flight: the answer frees it */
    int conflicted; /* the callback ran */
};

static void on_claimed(const struct gate_reply *rep, void *arg)
{
    struct gate_claim *c = arg;
    c->inflight = 0;
    if (c->orphaned) {
        free(c->key);
        free(c->queue);
        free(c);
        return;
    }
    if (rep->err != NULL) {
        cg_log_warn("cannot claim the twilio queue for this gate; trying again", "error=%s",
                    rep->err);
        return;
    }
    const redisReply *r = rep->r;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || c->conflicted)
        return; /* nil: the claim is ours */
    const char *owner = cg_redis_reply_str(r, 0);
    long long left_ms = cg_redis_reply_int(r, 1, 0);
    char why[512];
    snprintf(why, sizeof why,
             "another gate (%s) already uses the Twilio queue %s in this Redis: two gates on "
             "one queue would take each other's callers. Give each gate its own "
             "TWILIO_QUEUE_NAME (or route queue), or the same GATE_NAME if they are one gate (the "
             "claim lapses "
             "%lld s after the other gate's last instance stops)",
             owner ? owner : "?", c->queue, left_ms / 1000 + 1);
    c->conflicted = 1;
    cg_log_error("queue claimed by another gate", "key=%s owner=%s", c->key, owner ? owner : "?");
    c->cb(why, c->arg);
}

void gate_claim_check(struct gate_claim *c)
{
    if (c == NULL || c->inflight || c->conflicted ||
        cg_redis_state(c->store->redis) != CG_REDIS_READY)
        return;
    if (gate_store_claim(c->store, c->key, GATE_CLAIM_TTL_MS, on_claimed, c) == 0)
        c->inflight = 1;
}

static void on_renew(void *arg)
{
    gate_claim_check(arg);
}

struct gate_claim *gate_claim_new(struct event_base *base, struct gate_store *store,
                                  const struct cg_config *cfg, gate_conflict_cb cb, void *arg)
{
    return gate_claim_new_queue(base, store, cfg, cfg->twilio_queue_name, cb, arg);
}

struct gate_claim *gate_claim_new_queue(struct event_base *base, struct gate_store *store,
                                        const struct cg_config *cfg, const char *queue,
                                        gate_conflict_cb cb, void *arg)
{
    struct gate_claim *c = cg_calloc(1, sizeof *c);
    c->store = store;
    c->cfg = cfg;
    c->cb = cb;
    c->arg = arg;
    /* Twilio names queues per account, and <Enqueue> finds the queue by
     * name: the account and the name are the queue. */
    size_t n = strlen(cfg->twilio_account_sid) + strlen(queue) + 32;
    c->key = cg_malloc(n);
    snprintf(c->key, n, "cg:queue-claim:%s:%s", cfg->twilio_account_sid, queue);
    c->queue = cg_strdup(queue);
    c->renew = cg_periodic_new(base, "queue-claim", GATE_CLAIM_RENEW_MS, 10, on_renew, c);
    if (c->renew == NULL) {
        free(c->key);
        free(c->queue);
        free(c);
        return NULL;
    }
    return c;
}

void gate_claim_free(struct gate_claim *c)
{
    if (c == NULL)
        return;
    cg_periodic_free(c->renew);
    c->renew = NULL;
    if (c->inflight) {
        c->orphaned = 1;
        return;
    }
    free(c->key);
    free(c->queue);
    free(c);
}
