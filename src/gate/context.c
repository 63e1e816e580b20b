/*
 * context.c - the queue context of a caller being admitted (context.h).
 */
#include "base/fmacros.h"

#include "gate/context.h"

#include <stdlib.h>

#include "base/alloc.h"
#include "base/config.h"
#include "gate/internal.h"
#include "gate/routes.h"
#include "gate/store.h"
#include "vapi/api.h"

struct fetch {
    gate_context_cb cb;
    void *arg;
    int attempt;
    const struct cg_config *cfg;
};

static void on_context(const struct gate_reply *rep, void *arg)
{
    struct fetch f = *(struct fetch *)arg;
    free(arg);
    struct cg_vapi_call_context ctx = {.waited_s = -1, .requeued = f.attempt > 1};
    const redisReply *r = rep->r;
    if (rep->err == NULL && r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        long long waited_ms = cg_redis_reply_int(r, 0, -1);
        ctx.waited_s = waited_ms >= 0 ? (long)(waited_ms / 1000) : -1;
        ctx.position = (long)cg_redis_reply_int(r, 1, 0);
        ctx.dialed = cg_redis_reply_str(r, 2);
        const struct cg_route *rt = gate_route_named(f.cfg, cg_redis_reply_str(r, 3));
        if (rt != NULL) {
            ctx.assistant_id = rt->assistant_id;
            ctx.phone_number_id = rt->phone_number_id;
        }
    }
    f.cb(&ctx, f.arg);
}

int gate_context_fetch(struct cg_gate *g, const char *sid, int attempt, gate_context_cb cb,
                       void *arg)
{
    struct fetch *f = cg_calloc(1, sizeof *f);
    f->cb = cb;
    f->arg = arg;
    f->attempt = attempt;
    f->cfg = g->cfg;
    if (gate_store_context(&g->store, sid, on_context, f) != 0) {
        free(f);
        return -1;
    }
    return 0;
}
