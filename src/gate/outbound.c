#include "base/fmacros.h"

#include "gate/outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/config.h"
#include "base/log.h"
#include "gate/internal.h"
#include "gate/routes.h"
#include "gate/store.h"
#include "vapi/api.h"

struct placing {
    struct cg_gate *g;
    char sid[80];
    char *number;
    int attempt;
    gate_outbound_refill_fn refill;
};

static void placing_free(struct placing *p)
{
    free(p->number);
    free(p);
}

static void on_failed(const struct gate_reply *rep, void *arg)
{
    struct placing *p = arg;
    if (rep->err == NULL && rep->r != NULL && p->refill != NULL)
        p->refill(p->g, rep->r, 3);
    else if (rep->err != NULL)
        cg_log_warn("outbound call not settled; its admission lease will", "id=%s error=%s", p->sid,
                    rep->err);
    placing_free(p);
}

/* The attempt failed: back in the line (a backoff first), or failed for
 * good after a refusal of this call or its last attempt. */
static void fail(struct placing *p, const char *reason, int final, double retry_after_s)
{
    struct cg_gate *g = p->g;
    const struct cg_config *c = g->cfg;
    long long backoff = 0;
    if (!final)
        backoff = cg_backoff_ms(c->admission_backoff_min_ms, c->admission_backoff_max_ms,
                                (unsigned)p->attempt, retry_after_s);
    struct gate_outbound_op o = {
        .op = "failed",
        .id = p->sid + 2,
        .attempt = p->attempt,
        .reason = reason,
        .final = final,
        .max_attempts = c->max_admission_attempts,
        .backoff_ms = backoff,
        .limit = c->max_concurrency,
        .batch = 100,
        .admit_lease_ms = (long long)c->admission_lease_seconds * 1000,
        .instance = c->instance_id,
    };
    cg_log_warn("outbound call not placed", "id=%s attempt=%d reason=%s final=%d", p->sid,
                p->attempt, reason, final);
    if (gate_store_outbound(&g->store, &o, on_failed, p) != 0)
        placing_free(p);
}

static void on_created_recorded(const struct gate_reply *rep, void *arg)
{
    struct placing *p = arg;
    const char *v = rep->err == NULL ? cg_redis_reply_str(rep->r, 0) : NULL;
    cg_log_info("outbound call placed", "id=%s attempt=%d verdict=%s", p->sid, p->attempt,
                v ? v : (rep->err ? rep->err : "?"));
    placing_free(p);
}

static void on_vapi(const struct cg_vapi_create_result *res, void *arg)
{
    struct placing *p = arg;
    struct cg_gate *g = p->g;
    switch (res->outcome) {
    case CG_VAPI_CREATED: {
        if (res->call_id == NULL) {
            fail(p, "vapi-no-id", 0, -1);
            return;
        }
        struct gate_outbound_op o = {
            .op = "created",
            .id = p->sid + 2,
            .attempt = p->attempt,
            .vapi_id = res->call_id,
            .lease_ms = (long long)g->cfg->lease_seconds * 1000,
        };
        if (gate_store_outbound(&g->store, &o, on_created_recorded, p) != 0)
            placing_free(p);
        return;
    }
    case CG_VAPI_OVERLIMIT:
        fail(p, "vapi-overlimit", 0, res->retry_after_s);
        return;
    case CG_VAPI_REJECTED:
        cg_log_warn("vapi refused the outbound call", "id=%s status=%ld msg=%s", p->sid,
                    res->http_status, res->message ? res->message : "");
        fail(p, "vapi-rejected", 0, res->retry_after_s);
        return;
    case CG_VAPI_AUTH:
        fail(p, "vapi-auth", 0, res->retry_after_s);
        return;
    case CG_VAPI_CANCELLED:
        placing_free(p);
        return;
    case CG_VAPI_RETRY:
    default:
        fail(p, "vapi-error", 0, res->retry_after_s);
        return;
    }
}

/* The record read: route and variables, then Vapi. */
static void on_status(const struct gate_reply *rep, void *arg)
{
    struct placing *p = arg;
    struct cg_gate *g = p->g;
    const char *state = rep->err == NULL ? cg_redis_reply_str(rep->r, 0) : NULL;
    if (state == NULL || strcmp(state, "admitting") != 0) {
        cg_log_warn("outbound call not found admitting; left to its lease", "id=%s state=%s",
                    p->sid, state ? state : (rep->err ? rep->err : "?"));
        placing_free(p);
        return;
    }
    const struct cg_route *rt = gate_route_named(g->cfg, cg_redis_reply_str(rep->r, 2));
    struct cg_vapi_outbound o = {
        .id = p->sid + 2,
        .attempt = p->attempt,
        .number = p->number,
        .assistant_id = rt ? rt->assistant_id : NULL,
        .phone_number_id = rt ? rt->phone_number_id : NULL,
        .variables_json = cg_redis_reply_str(rep->r, 10),
    };
    if (cg_vapi_create_outbound(g->vapi, &o, on_vapi, p) != 0)
        fail(p, "vapi-request", 1, -1);
}

void gate_outbound_place(struct cg_gate *g, const char *sid, const char *number, int attempt,
                         gate_outbound_refill_fn refill)
{
    struct placing *p = cg_calloc(1, sizeof *p);
    p->g = g;
    snprintf(p->sid, sizeof p->sid, "%s", sid);
    p->number = cg_strdup(number ? number : "");
    p->attempt = attempt;
    p->refill = refill;
    cg_log_info("outbound call admitted", "id=%s attempt=%d", sid, attempt);
    struct gate_outbound_op o = {.op = "status", .id = p->sid + 2};
    if (gate_store_outbound(&g->store, &o, on_status, p) != 0)
        placing_free(p);
}
