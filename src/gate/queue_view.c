/*
 * queue_view.c - GET /queue, the operator's live view (queue_view.h), and
 * the wait estimate it shares with the hold announcement.
 */
#include "base/fmacros.h"

#include "gate/queue_view.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/estimate.h"
#include "gate/access.h"
#include "gate/gate.h"
#include "gate/internal.h"
#include "gate/store.h"
#include "net/httpd.h"

/* The answer's ceiling: 500 slots and 500 callers take well under this. */
#define VIEW_REPLY_MAX (4u << 20)

/* queue.lua's reply: the figures, then the slots, then the callers. */
enum {
    Q_NOW,
    Q_LIMIT,
    Q_ACTIVE,
    Q_WAITING,
    Q_OLDEST_MS,
    Q_SERVICE_MS,
    Q_ABANDONED,
    Q_CONNECTED,
    Q_ADMIT_MS,
    Q_HEAD_WAIT_MS,
    Q_NSLOTS,
    Q_NWAITERS,
    Q_HEADER
};
#define Q_SLOT_FIELDS   7
#define Q_WAITER_FIELDS 5

static struct cg_ewt_input ewt_input(const struct cg_gate *g, const struct gate_ewt_figures *f)
{
    return (struct cg_ewt_input){
        .ahead = f->position > 0 ? (long)(f->position - 1) : 0,
        .slots = f->limit >= 1 ? (long)f->limit : 1,
        .busy = (long)f->active,
        .mean_service_s = f->service_ms > 0 ? (double)f->service_ms / 1000.0 : -1,
        .prior_service_s = g->cfg->expected_call_seconds,
        /* Too few outcomes say nothing about abandonment yet. */
        .abandon_ratio = f->abandoned + f->connected >= 20
                             ? (double)f->abandoned / (double)(f->abandoned + f->connected)
                             : 0,
        .waited_s = (double)f->waited_ms / 1000.0,
        .head_wait_s = (double)f->head_wait_ms / 1000.0,
        .admit_s = f->admit_ms > 0 ? (double)f->admit_ms / 1000.0 : -1,
    };
}

double gate_estimate_seconds(const struct cg_gate *g, const struct gate_ewt_figures *f)
{
    struct cg_ewt_input in = ewt_input(g, f);
    return cg_ewt_seconds(&in);
}

struct view {
    struct cg_gate *g;
    struct cg_http_req *req;
    cg_gate_view_extra extra;
    void *extra_arg;
};

static int append_str_or_null(struct cg_buf *b, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return cg_buf_appends(b, "null");
    return cg_buf_append_json_str(b, s, strlen(s));
}

/* "***1234", or null when the script kept no digits (see queue.lua). */
static int append_masked(struct cg_buf *b, const char *last4)
{
    if (last4 == NULL || last4[0] == '\0')
        return cg_buf_appends(b, "null");
    return cg_buf_printf(b, "\"***%.4s\"", last4);
}

static long long whole_s(long long ms)
{
    return ms > 0 ? ms / 1000 : 0;
}

/* ,"route":"<name>" for the i-th entry of the routes section at routes_at
 * (queue.lua answers one with routes only; 0: none, nothing added). */
static int append_route(struct cg_buf *b, const redisReply *r, size_t routes_at, size_t i)
{
    const char *route = routes_at ? cg_redis_reply_str(r, routes_at + i) : NULL;
    if (route == NULL || route[0] == '\0')
        return 0;
    return cg_buf_appends(b, ",\"route\":") | append_str_or_null(b, route);
}

/* The board's short form: what a wallboard shows, no identifiers. */
static int append_slots_short(struct cg_buf *b, const redisReply *r, long long now, size_t n,
                              size_t routes_at)
{
    int rc = cg_buf_appends(b, "\"active\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t at = Q_HEADER + i * Q_SLOT_FIELDS;
        const char *state = cg_redis_reply_str(r, at + 6);
        long long cat = cg_redis_reply_int(r, at + 4, 0);
        int live = state && (strcmp(state, "connected") == 0 || strcmp(state, "ending") == 0);
        rc |= cg_buf_appends(b, i ? ",{\"kind\":" : "{\"kind\":");
        rc |= append_str_or_null(b, cg_redis_reply_str(r, at + 1));
        rc |= append_route(b, r, routes_at, i);
        rc |= cg_buf_appends(b, ",\"state\":");
        rc |= append_str_or_null(b, state);
        rc |= cg_buf_appends(b, ",\"number\":");
        rc |= append_masked(b, cg_redis_reply_str(r, at + 3));
        if (live && cat > 0)
            rc |= cg_buf_printf(b, ",\"connectedSeconds\":%lld}", whole_s(now - cat));
        else
            rc |= cg_buf_appends(b, ",\"connectedSeconds\":null}");
    }
    return rc | cg_buf_appendc(b, ']');
}

static int append_slots(struct cg_buf *b, const redisReply *r, long long now, size_t n,
                        size_t routes_at)
{
    int rc = cg_buf_appends(b, "\"active\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t at = Q_HEADER + i * Q_SLOT_FIELDS;
        const char *kind = cg_redis_reply_str(r, at + 1);
        const char *state = cg_redis_reply_str(r, at + 6);
        long long cat = cg_redis_reply_int(r, at + 4, 0);
        /* connected_at stays from an earlier attempt; only a call that is
         * connected (or ending) now has been connected since then. */
        int live = state && (strcmp(state, "connected") == 0 || strcmp(state, "ending") == 0);
        rc |= cg_buf_appends(b, i ? ",{\"slot\":" : "{\"slot\":");
        rc |= append_str_or_null(b, cg_redis_reply_str(r, at));
        rc |= append_route(b, r, routes_at, i);
        rc |= cg_buf_appends(b, ",\"kind\":");
        rc |= append_str_or_null(b, kind);
        rc |= cg_buf_appends(b, ",\"state\":");
        rc |= append_str_or_null(b, state);
        rc |= cg_buf_appends(b, ",\"callSid\":");
        rc |= append_str_or_null(b, cg_redis_reply_str(r, at + 2));
        rc |= cg_buf_appends(b, ",\"number\":");
        rc |= append_masked(b, cg_redis_reply_str(r, at + 3));
        if (live && cat > 0) {
            char iso[25];
            cg_iso8601_ms((uint64_t)cat, iso);
            rc |= cg_buf_printf(b, ",\"connectedAt\":\"%s\",\"connectedSeconds\":%lld", iso,
                                whole_s(now - cat));
        } else {
            rc |= cg_buf_appends(b, ",\"connectedAt\":null,\"connectedSeconds\":null");
        }
        rc |= cg_buf_appends(b, ",\"vapiCallId\":");
        rc |= append_str_or_null(b, cg_redis_reply_str(r, at + 5));
        rc |= cg_buf_appendc(b, '}');
    }
    return rc | cg_buf_appendc(b, ']');
}

static int append_waiters(struct cg_gate *g, struct cg_buf *b, const redisReply *r, size_t at0,
                          size_t n, int brief, size_t routes_at)
{
    struct gate_ewt_figures fig = {
        .limit = cg_redis_reply_int(r, Q_LIMIT, g->cfg->max_concurrency),
        .active = cg_redis_reply_int(r, Q_ACTIVE, 0),
        .service_ms = cg_redis_reply_int(r, Q_SERVICE_MS, -1),
        .abandoned = cg_redis_reply_int(r, Q_ABANDONED, 0),
        .connected = cg_redis_reply_int(r, Q_CONNECTED, 0),
        .head_wait_ms = cg_redis_reply_int(r, Q_HEAD_WAIT_MS, 0),
        .admit_ms = cg_redis_reply_int(r, Q_ADMIT_MS, -1),
    };
    long long now = cg_redis_reply_int(r, Q_NOW, 0);
    int rc = cg_buf_appends(b, "\"waiting\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t at = at0 + i * Q_WAITER_FIELDS;
        long long enq = cg_redis_reply_int(r, at + 2, now);
        fig.position = (long long)i + 1;
        fig.waited_ms = now > enq ? now - enq : 0;
        double ewt = gate_estimate_seconds(g, &fig);
        rc |= cg_buf_printf(b, "%s{\"position\":%lld", i ? "," : "", fig.position);
        rc |= append_route(b, r, routes_at, i);
        if (!brief) {
            rc |= cg_buf_appends(b, ",\"callSid\":");
            rc |= append_str_or_null(b, cg_redis_reply_str(r, at));
        }
        rc |= cg_buf_appends(b, ",\"number\":");
        rc |= append_masked(b, cg_redis_reply_str(r, at + 1));
        rc |= cg_buf_printf(b,
                            ",\"waitedSeconds\":%lld,\"estimatedWaitSeconds\":%.0f,"
                            "\"requeued\":%s,\"callback\":%s}",
                            whole_s(fig.waited_ms), ewt,
                            cg_redis_reply_int(r, at + 3, 0) > 0 ? "true" : "false",
                            cg_redis_reply_int(r, at + 4, 0) == 1 ? "true" : "false");
    }
    return rc | cg_buf_appendc(b, ']');
}

/* What keeps the gate from its work though Redis answers, for whoever
 * watches the queue: credentials refused by Vapi or Twilio, instances that
 * disagree on the gate's settings. The same words as /health's reason. */
static int append_problems(const struct cg_gate *g, struct cg_buf *b)
{
    int rc = cg_buf_appends(b, ",\"problems\":[");
    int n = 0;
    const char *auth = cg_gate_auth_problem(g);
    if (auth != NULL) {
        rc |= cg_buf_append_json_str(b, auth, strlen(auth));
        n++;
    }
    struct cg_gate_instances_view inst = {0};
    cg_gate_instances_state(g, &inst);
    if (inst.problem != NULL) {
        rc |= n ? cg_buf_appendc(b, ',') : 0;
        rc |= cg_buf_append_json_str(b, inst.problem, strlen(inst.problem));
    }
    return rc | cg_buf_appendc(b, ']');
}

int gate_queue_view_json(struct cg_gate *g, const redisReply *r, int with_time, int brief,
                         cg_gate_view_extra extra, void *extra_arg, struct cg_buf *b)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < Q_HEADER)
        return -2;
    long long now = cg_redis_reply_int(r, Q_NOW, 0);
    size_t nslots = (size_t)cg_redis_reply_int(r, Q_NSLOTS, 0);
    size_t nwait = (size_t)cg_redis_reply_int(r, Q_NWAITERS, 0);
    size_t waiters_at = Q_HEADER + nslots * Q_SLOT_FIELDS;
    size_t end = waiters_at + nwait * Q_WAITER_FIELDS;
    if (nslots > CG_GATE_VIEW_MAX_LISTED || nwait > CG_GATE_VIEW_MAX_LISTED ||
        (r->elements != end && r->elements != end + nslots + nwait))
        return -2;
    /* With routes, each entry's route follows (queue.lua). */
    size_t slot_routes = r->elements == end + nslots + nwait && nslots + nwait > 0 ? end : 0;
    size_t wait_routes = slot_routes ? end + nslots : 0;
    char iso[25];
    cg_iso8601_ms((uint64_t)(now > 0 ? now : 0), iso);
    int rc = with_time ? cg_buf_printf(b, "{\"generatedAt\":\"%s\",", iso) : cg_buf_appendc(b, '{');
    rc |= cg_buf_printf(b,
                        "\"limit\":%lld,\"activeCount\":%lld,"
                        "\"waitingCount\":%lld,\"oldestWaitSeconds\":%lld,\"listMax\":%d,",
                        cg_redis_reply_int(r, Q_LIMIT, 0), cg_redis_reply_int(r, Q_ACTIVE, 0),
                        cg_redis_reply_int(r, Q_WAITING, 0),
                        whole_s(cg_redis_reply_int(r, Q_OLDEST_MS, 0)),
                        brief ? (int)nwait : CG_GATE_VIEW_MAX_LISTED);
    rc |= brief ? append_slots_short(b, r, now, nslots, slot_routes)
                : append_slots(b, r, now, nslots, slot_routes);
    rc |= cg_buf_appendc(b, ',');
    rc |= append_waiters(g, b, r, waiters_at, nwait, brief, wait_routes);
    rc |= append_problems(g, b);
    if (rc == 0 && extra != NULL)
        rc = extra(b, extra_arg);
    rc |= cg_buf_appendc(b, '}');
    return rc != 0 ? -1 : 0;
}

static void reply_view(struct view *v, const redisReply *r)
{
    struct cg_buf b;
    cg_buf_init(&b, VIEW_REPLY_MAX);
    int rc = gate_queue_view_json(v->g, r, 1, 0, v->extra, v->extra_arg, &b);
    cg_http_set_header(v->req, "Cache-Control", "no-store");
    if (rc == -2)
        cg_http_reply_error(v->req, 500, "internal", "the queue script answered an odd reply");
    else if (rc != 0)
        cg_http_reply_error(v->req, 500, "too_large", "the answer exceeds the response limit");
    else
        cg_http_reply(v->req, 200, "application/json", b.data, b.len);
    cg_buf_free(&b);
}

static void on_queue(const struct gate_reply *rep, void *arg)
{
    struct view *v = arg;
    const redisReply *r = rep->r;
    if (rep->err != NULL || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < Q_HEADER)
        cg_http_reply_error(v->req, 503, "unavailable", "state store unavailable");
    else
        reply_view(v, r);
    free(v);
}

void cg_gate_queue_reply(struct cg_gate *g, struct cg_http_req *req, cg_gate_view_extra extra,
                         void *extra_arg)
{
    if (!gate_admin_ok(g, req, 1))
        return;
    if (!gate_redis_ready(g)) {
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable");
        return;
    }
    struct view *v = cg_calloc(1, sizeof *v);
    v->g = g;
    v->req = req;
    v->extra = extra;
    v->extra_arg = extra_arg;
    if (gate_store_queue(&g->store, g->cfg->max_concurrency, CG_GATE_VIEW_MAX_LISTED, on_queue,
                         v) != 0)
        on_queue(&(struct gate_reply){.err = "eval refused"}, v);
}

static struct gate_ewt_figures figures_of_position(const struct cg_gate *g, const redisReply *r)
{
    return (struct gate_ewt_figures){
        .position = cg_redis_reply_int(r, 1, 1),
        .limit = cg_redis_reply_int(r, 3, g->cfg->max_concurrency),
        .active = cg_redis_reply_int(r, 4, 0),
        .service_ms = cg_redis_reply_int(r, 5, -1),
        .abandoned = cg_redis_reply_int(r, 6, 0),
        .connected = cg_redis_reply_int(r, 7, 0),
        .waited_ms = cg_redis_reply_int(r, 2, 0),
        .head_wait_ms = cg_redis_reply_int(r, 8, 0),
        .admit_ms = cg_redis_reply_int(r, 10, -1),
    };
}

double gate_estimate_of_position(const struct cg_gate *g, const redisReply *r)
{
    struct gate_ewt_figures fig = figures_of_position(g, r);
    return gate_estimate_seconds(g, &fig);
}

double gate_bound_of_position(const struct cg_gate *g, const redisReply *r)
{
    struct gate_ewt_figures fig = figures_of_position(g, r);
    struct cg_ewt_input in = ewt_input(g, &fig);
    return cg_ewt_bound_seconds(&in);
}
