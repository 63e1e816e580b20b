/*
 * reconcile.c - the gate against Twilio's queue: callers in Twilio's queue
 * the gate has no record of are adopted (a record lost with Redis, a
 * webhook that never arrived), and callers the gate holds that Twilio no
 * longer has are dropped after GHOST_AGE_MS, each checked by a fetch of
 * the call first.
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
#include "net/periodic.h"
#include "twilio/api.h"

/* A waiting caller missing from Twilio's queue this long is checked. */
#define GHOST_AGE_MS 60000
/* Twilio lookups per reconciliation run. */
#define RECONCILE_BATCH 50

struct ghost {
    struct cg_gate *g;
    char sid[40];
    int adopt; /* 1: in Twilio's queue but not ours; 0: ours but not Twilio's */
    long wait_s;
};

static void on_adopted(const struct gate_reply *rep, void *arg)
{
    struct ghost *gh = arg;
    if (rep->verdict == GV_WAITING)
        cg_log_info("adopted a caller from twilio's queue", "sid=%s wait_s=%ld", gh->sid,
                    gh->wait_s);
    gh->g->checks--;
    free(gh);
}

static void on_ghost_fetched(const struct cg_twilio_result *res, void *arg)
{
    struct ghost *gh = arg;
    struct cg_gate *g = gh->g;
    gate_note_api(g, GATE_API_TWILIO, res->http_status);
    if (gh->adopt) {
        if (res->outcome == CG_TW_OK &&
            gate_adopt(g, gh->sid, res->from, res->to, gh->wait_s, on_adopted, gh) == 0)
            return;
    } else {
        int over = res->outcome == CG_TW_GONE ||
                   (res->outcome == CG_TW_OK && cg_twilio_status_is_terminal(res->call_status));
        if (over) {
            cg_log_info("dropping a caller twilio no longer holds", "sid=%s", gh->sid);
            gate_end(g, "twilio", gh->sid, "reconcile", "reconcile", NULL, NULL);
        }
    }
    g->checks--;
    free(gh);
}

static void ghost_check(struct cg_gate *g, const char *sid, int adopt, long wait_s)
{
    struct ghost *gh = cg_calloc(1, sizeof *gh);
    gh->g = g;
    snprintf(gh->sid, sizeof gh->sid, "%s", sid);
    gh->adopt = adopt;
    gh->wait_s = wait_s;
    g->checks++;
    if (cg_twilio_fetch_call(g->twilio, sid, on_ghost_fetched, gh) != 0) {
        g->checks--;
        free(gh);
    }
}

struct reconcile {
    struct cg_gate *g;
    struct cg_twilio_member *members;
    size_t n;
};

static int sid_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if sid is in sorted (n strings in strcmp order). */
static int sid_in(const char *sid, const char **sorted, size_t n)
{
    return n > 0 && bsearch(&sid, sorted, n, sizeof *sorted, sid_cmp) != NULL;
}

static void on_ours(const struct gate_reply *rep, void *arg)
{
    struct reconcile *rc = arg;
    struct cg_gate *g = rc->g;
    const redisReply *r = rep->r;
    g->reconcile_running = 0;
    if (rep->err == NULL && r->type == REDIS_REPLY_ARRAY) {
        /* Both sides sorted once: the comparison costs n log n, not
         * waiting x members (5,000 each would be millions of comparisons
         * on the loop). The walks below keep each side's own order, so
         * the batch takes the front of the queue first. */
        size_t nours = r->elements / 2, nm = rc->n;
        const char **ours = cg_calloc(nours ? nours : 1, sizeof *ours);
        const char **theirs = cg_calloc(nm ? nm : 1, sizeof *theirs);
        size_t k = 0;
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            if (cg_redis_reply_str(r, i) != NULL)
                ours[k++] = cg_redis_reply_str(r, i);
        nours = k;
        for (size_t m = 0; m < nm; m++)
            theirs[m] = rc->members[m].call_sid;
        qsort(ours, nours, sizeof *ours, sid_cmp);
        qsort(theirs, nm, sizeof *theirs, sid_cmp);

        int budget = RECONCILE_BATCH;
        long long now = (long long)cg_wall_ms();
        /* Ours but not in Twilio's queue for a while: a ghost. */
        for (size_t i = 0; i + 1 < r->elements && budget > 0; i += 2) {
            const char *sid = cg_redis_reply_str(r, i);
            long long enq = cg_redis_reply_int(r, i + 1, now);
            if (sid && !sid_in(sid, theirs, nm) && now - enq > GHOST_AGE_MS) {
                ghost_check(g, sid, 0, 0);
                budget--;
            }
        }
        /* In Twilio's queue but not waiting here: adopt (a no-op for callers
         * being admitted, whose record exists). */
        for (size_t m = 0; m < nm && budget > 0; m++) {
            if (!sid_in(rc->members[m].call_sid, ours, nours)) {
                ghost_check(g, rc->members[m].call_sid, 1, rc->members[m].wait_time_s);
                budget--;
            }
        }
        free(ours);
        free(theirs);
    }
    free(rc->members);
    free(rc);
    g->reconcile_route++; /* with routes: the next route's queue next time */
}

static void on_members(const struct cg_twilio_result *res, void *arg)
{
    struct cg_gate *g = arg;
    gate_note_api(g, GATE_API_TWILIO, res->http_status);
    if (res->outcome != CG_TW_OK || g->closing || cg_redis_state(g->redis) != CG_REDIS_READY) {
        g->reconcile_running = 0;
        g->reconcile_route++;
        return;
    }
    struct reconcile *rc = cg_calloc(1, sizeof *rc);
    rc->g = g;
    rc->n = res->nmembers;
    rc->members = cg_calloc(rc->n ? rc->n : 1, sizeof *rc->members);
    if (rc->n)
        memcpy(rc->members, res->members, rc->n * sizeof *rc->members);
    const struct cg_route *rt =
        g->cfg->routes.n > 0 ? &g->cfg->routes.v[g->reconcile_route % g->cfg->routes.n] : NULL;
    if ((rt ? gate_store_members_route(&g->store, rt->name, on_ours, rc)
            : gate_store_members(&g->store, on_ours, rc)) != 0) {
        g->reconcile_running = 0;
        free(rc->members);
        free(rc);
    }
}

static void on_queue_found(const struct cg_twilio_result *res, void *arg)
{
    struct cg_gate *g = arg;
    g->reconcile_running = 0;
    gate_note_api(g, GATE_API_TWILIO, res->http_status);
    if (res->outcome == CG_TW_OK && res->queue_sid) {
        g->queue_sid = cg_strdup(res->queue_sid);
        cg_log_info("found the twilio queue", "name=%s sid=%s", g->cfg->twilio_queue_name,
                    g->queue_sid);
        cg_periodic_kick(g->reconcile_task);
    }
}

/* A route's queue found by its name (ROUTES_FILE). */
static void on_route_queue_found(const struct cg_twilio_result *res, void *arg)
{
    struct cg_gate *g = arg;
    g->reconcile_running = 0;
    gate_note_api(g, GATE_API_TWILIO, res->http_status);
    size_t i = g->reconcile_route % g->cfg->routes.n;
    if (res->outcome == CG_TW_OK && res->queue_sid && g->route_queue_sids[i] == NULL) {
        g->route_queue_sids[i] = cg_strdup(res->queue_sid);
        cg_log_info("found the twilio queue", "route=%s name=%s sid=%s", g->cfg->routes.v[i].name,
                    g->cfg->routes.v[i].queue, res->queue_sid);
        cg_periodic_kick(g->reconcile_task);
    } else {
        /* Not there yet (Twilio creates it on its first caller): the next
         * route's turn. */
        g->reconcile_route++;
    }
}

/* With routes, one route's queue per tick, in turn: its members against
 * the gate's callers of that route. */
static void reconcile_route(struct cg_gate *g)
{
    size_t i = g->reconcile_route % g->cfg->routes.n;
    const struct cg_route *rt = &g->cfg->routes.v[i];
    int rc;
    if (g->route_queue_sids[i] == NULL) {
        rc = cg_twilio_find_queue(g->twilio, rt->queue, on_route_queue_found, g);
    } else {
        rc = cg_twilio_list_members(g->twilio, g->route_queue_sids[i], on_members, g);
    }
    if (rc != 0)
        g->reconcile_running = 0;
}

void gate_reconcile_tick(void *arg)
{
    struct cg_gate *g = arg;
    if (g->reconcile_running || g->stopping || g->closing ||
        cg_redis_state(g->redis) != CG_REDIS_READY || g->cfg->twilio_account_sid[0] == '\0')
        return;
    g->reconcile_running = 1;
    if (g->cfg->routes.n > 0) {
        reconcile_route(g);
        return;
    }
    int rc = g->queue_sid
                 ? cg_twilio_list_members(g->twilio, g->queue_sid, on_members, g)
                 : cg_twilio_find_queue(g->twilio, g->cfg->twilio_queue_name, on_queue_found, g);
    if (rc != 0)
        g->reconcile_running = 0;
}
