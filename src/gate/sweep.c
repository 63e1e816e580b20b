/*
 * sweep.c - the lease sweep: every slot and admission carries a lease in
 * the active set; an expired one is claimed (sweep.lua), and Vapi is asked
 * whether its call still lives before the slot is renewed or released. A
 * lost end signal costs at most one lease, never a slot for good.
 */
#include "base/fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"
#include "gate/internal.h"
#include "gate/store.h"
#include "net/redis.h"
#include "gate/recheck.h"
#include "vapi/api.h"

/* Expired leases looked at per sweep run. */
#define SWEEP_BATCH 50
/* How long a sweep claims an entry it is checking. */
#define SWEEP_CLAIM_MS 10000

struct check {
    struct cg_gate *g;
    char member[96];
    enum gate_verdict state; /* the entry's call state, or orphan */
    char vapi_id[96];
    long long connected_at;
    long long attempt;
    int rechecked; /* Vapi was asked again after a doubtful status */
};

static void check_done(struct check *c)
{
    c->g->checks--;
    free(c);
}

static void on_extended(const struct gate_reply *rep, void *arg)
{
    if (rep->err)
        cg_log_warn("lease not renewed; the next sweep asks again", "member=%s error=%s",
                    (const char *)arg, rep->err);
    free(arg);
}

static void extend(struct cg_gate *g, const char *member, long long ms)
{
    char *m = cg_strdup(member);
    if (gate_store_extend(&g->store, member, ms, on_extended, m) != 0)
        free(m);
}

static void on_check_end(enum gate_verdict verdict, void *arg)
{
    struct check *c = arg;
    cg_log_info("lease sweep released a slot", "member=%s state=%s verdict=%s", c->member,
                gate_verdict_name(c->state),
                verdict != GV_NONE ? gate_verdict_name(verdict) : "error");
    check_done(c);
}

static void on_vapi_checked(const struct cg_vapi_get_result *res, void *arg)
{
    struct check *c = arg;
    struct cg_gate *g = c->g;
    gate_note_api(g, GATE_API_VAPI, res->http_status);
    if (res->state == CG_VAPI_CALL_ENDED) {
        gate_end(g, "vapi", c->vapi_id, res->ended_reason ? res->ended_reason : "ended", "vapi-get",
                 on_check_end, c);
        return;
    }
    if (res->state == CG_VAPI_CALL_DOUBTFUL) {
        /* Not live, not ended (not-found, deletion-failed, unknown): never
         * renewed; released when Vapi says so twice. */
        if (!c->rechecked) {
            c->rechecked = 1;
            if (gate_recheck_later(g, c->vapi_id, on_vapi_checked, c) != 0)
                check_done(c);
            return;
        }
        const char *st = res->status ? res->status : "";
        cg_log_warn("vapi reports a call neither live nor ended, twice; its slot is released",
                    "vapi=%s status=%s member=%s", c->vapi_id, st, c->member);
        gate_end(g, "vapi", c->vapi_id,
                 strcmp(st, "not-found") == 0 || strcmp(st, "deletion-failed") == 0
                     ? st
                     : "unknown-status",
                 "vapi-get", on_check_end, c);
        return;
    }
    if (res->state == CG_VAPI_CALL_LIVE) {
        long long ms = c->state == GV_CONNECTED ? (long long)g->cfg->lease_seconds * 1000
                       : c->state == GV_ENDING  ? g->cfg->end_grace_ms
                                                : (long long)g->cfg->orphan_hold_seconds * 1000;
        extend(g, c->member, ms);
        check_done(c);
        return;
    }
    /* Not found or unavailable: Vapi cannot confirm either way. A call
     * Vapi no longer knows after its grace is treated as over once it is
     * past any length Vapi allows; until then it is asked again later. */
    long long hard = c->connected_at + ((long long)g->cfg->vapi_max_duration_seconds + 60) * 1000;
    int ending = c->state == GV_ENDING || c->state == GV_ORPHAN;
    if ((res->state == CG_VAPI_CALL_NOT_FOUND && ending) ||
        (c->connected_at > 0 && (long long)cg_wall_ms() > hard)) {
        gate_end(g, "lease", c->member, "vapi-unconfirmed", "lease", on_check_end, c);
        return;
    }
    check_done(c);
}

static void on_admission_connected(const struct gate_reply *rep, void *arg)
{
    struct check *c = arg;
    cg_log_info("admission lease expired on a caller already talking; marked connected",
                "sid=%s verdict=%s", c->member,
                rep->verdict != GV_NONE ? gate_verdict_name(rep->verdict) : "error");
    check_done(c);
}

/* An admission whose lease ran out: its owner died, or a Redis blip lost
 * the connected step. If Vapi says the call is in progress the caller is
 * talking to the assistant, and requeueing them would cut them off. */
static void on_admission_checked(const struct cg_vapi_get_result *res, void *arg)
{
    struct check *c = arg;
    struct cg_gate *g = c->g;
    gate_note_api(g, GATE_API_VAPI, res->http_status);
    if (res->state == CG_VAPI_CALL_LIVE && res->status && strcmp(res->status, "in-progress") == 0 &&
        c->state == GV_ADMITTING) {
        if (gate_store_connected(&g->store, c->member, c->attempt,
                                 (long long)g->cfg->lease_seconds * 1000, g->cfg->end_grace_ms,
                                 on_admission_connected, c) != 0)
            check_done(c);
        return;
    }
    gate_end(g, "expire-admission", c->member, "admission-lease-expired", "lease", on_check_end, c);
}

static void check_entry(struct cg_gate *g, const char *member, enum gate_verdict state,
                        const char *vapi_id, long long connected_at, long long attempt)
{
    struct check *c = cg_calloc(1, sizeof *c);
    c->g = g;
    snprintf(c->member, sizeof c->member, "%s", member);
    c->state = state;
    snprintf(c->vapi_id, sizeof c->vapi_id, "%s", vapi_id ? vapi_id : "");
    c->connected_at = connected_at;
    c->attempt = attempt;
    g->checks++;
    if (state == GV_ADMITTING || state == GV_GONE) {
        /* The admission's owner did not finish in time. */
        if (c->vapi_id[0] != '\0' &&
            cg_vapi_get_call(g->vapi, c->vapi_id, on_admission_checked, c) == 0)
            return;
        gate_end(g, "expire-admission", member, "admission-lease-expired", "lease", on_check_end,
                 c);
        return;
    }
    if (c->vapi_id[0] == '\0') {
        gate_end(g, "lease", member, "lease-expired", "lease", on_check_end, c);
        return;
    }
    if (cg_vapi_get_call(g->vapi, c->vapi_id, on_vapi_checked, c) != 0)
        check_done(c);
}

static void on_swept(const struct gate_reply *rep, void *arg)
{
    struct cg_gate *g = arg;
    const redisReply *r = rep->r;
    g->sweep_running = 0;
    if (rep->err || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 5 < r->elements; i += 6) {
        const char *member = cg_redis_reply_str(r, i);
        enum gate_verdict state = gate_verdict_at(r, i + 1);
        const char *vid = cg_redis_reply_str(r, i + 2);
        if (member == NULL || state == GV_NONE)
            continue;
        check_entry(g, member, state, vid, cg_redis_reply_int(r, i + 3, 0),
                    cg_redis_reply_int(r, i + 5, 0));
    }
}

void gate_sweep_tick(void *arg)
{
    struct cg_gate *g = arg;
    if (g->closing || cg_redis_state(g->redis) != CG_REDIS_READY)
        return;
    /* A safety run of admission: every other trigger is an event, and an
     * event can be lost (a process killed between two steps). */
    gate_admit(g);
    if (g->sweep_running)
        return;
    g->sweep_running = 1;
    if (gate_store_sweep(&g->store, SWEEP_BATCH, SWEEP_CLAIM_MS, on_swept, g) != 0)
        g->sweep_running = 0;
}
