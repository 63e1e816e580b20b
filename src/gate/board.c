/*
 * board.c - the operator's live board (board.h): the shared tick, the
 * in-memory queue log of today, the figures, /events and /wallboard.
 */
#include "base/fmacros.h"

#include "gate/board.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/list.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/access.h"
#include "gate/figures.h"
#include "gate/internal.h"
#include "gate/keys.h"
#include "gate/queue_view.h"
#include "gate/route_figures.h"
#include "gate/store.h"
#include "gate/wallboard_page.h"
#include "net/httpd.h"
#include "net/periodic.h"

/* Log entries read per board.lua call; while catching up (at start, after
 * an outage, or when more than a page arrived in a tick) calls follow each
 * other at once. Each call holds Redis, and its reply the loop, while it
 * runs: a page of 5,000 at 5,000 arrivals a second put tens of milliseconds
 * on the p99 of every webhook; other commands go in between pages. */
#define LOG_PAGE 1000
/* The chart: per minute over the last hour. */
#define CHART_MINUTES 60
#define SNAPSHOT_MAX  (8u << 20)
/* Callers and slots a snapshot lists (the counts are totals): more than a
 * wall or a phone shows, and every byte goes to every viewer each second. */
#define BOARD_LISTED 100
#define HOUR_MS      (3600LL * 1000)
#define MIN_MS       (60LL * 1000)

struct viewer {
    struct gate_board *b;
    struct cg_http_stream *s;
    struct cg_list link;
    uint64_t last_write_ms; /* monotonic */
    uint64_t started_ms;    /* monotonic */
};

/* One Redis step of a tick; outlives the board when the board is freed
 * while it waits (then b is NULL). */
struct step {
    struct gate_board *b;
};

struct gate_board {
    struct cg_gate *g;
    struct cg_httpd *httpd;
    struct cg_metrics *metrics;
    cg_gate_view_extra extra;
    void *extra_arg;
    struct cg_periodic *tick;
    struct step *inflight;

    /* The queue log since keep_from (the day's start, or an hour ago when
     * the day is younger), sorted by time. */
    struct gate_fig_event *ev;
    size_t nev, cap;
    char log_start[48]; /* the next read's XRANGE start */
    int caught_up;      /* the last read returned less than a page */

    /* Occupancy sums per minute, minutes occ_first.. */
    int64_t occ_first;
    double *occ_busy, *occ_cap;
    size_t nocc;

    /* As of the last tick. */
    int64_t now_ms;
    long long active, limit, waiting, oldest_wait_s;
    struct gate_figures today, m15, h1;
    int have_figures;

    struct cg_buf routes;   /* with routes: each route's figures (JSON), this tick */
    struct cg_buf snap;     /* the last snapshot sent, an SSE message */
    struct cg_buf body_key; /* what it was made of, for "changed?" */
    int have_snap;
    int stale;
    struct cg_list viewers;
    size_t nviewers;
};

/* ---- viewers ---- */

static void count_viewers(struct gate_board *b)
{
    if (b->metrics != NULL)
        cg_metrics_set(b->metrics, "callgate_events_viewers", NULL, (double)b->nviewers);
}

static void viewer_free(struct viewer *v)
{
    cg_list_remove(&v->link);
    v->b->nviewers--;
    count_viewers(v->b);
    free(v);
}

static void on_viewer_closed(struct cg_http_stream *s, void *arg)
{
    (void)s;
    viewer_free(arg);
}

/* 0, or -1 when the viewer was dropped (and freed). */
static int viewer_send(struct viewer *v, const char *data, size_t len)
{
    if (cg_http_stream_write(v->s, data, len) != 0) {
        if (v->b->metrics != NULL)
            cg_metrics_inc(v->b->metrics, "callgate_events_viewers_dropped_total", NULL, 1);
        viewer_free(v);
        return -1;
    }
    v->last_write_ms = cg_mono_ms();
    return 0;
}

static void broadcast(struct gate_board *b, const char *data, size_t len)
{
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &b->viewers)
        viewer_send(cg_list_entry(it, struct viewer, link), data, len);
}

/* Ends the streams older than EVENTS_STREAM_MAX_SECONDS, saying so first
 * (the page then reconnects without showing a lost stream). */
static void retire(struct gate_board *b)
{
    static const char bye[] = "event: bye\ndata: {}\n\n";
    uint64_t now = cg_mono_ms();
    uint64_t max = (uint64_t)b->g->cfg->events_stream_max_seconds * 1000;
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &b->viewers) {
        struct viewer *v = cg_list_entry(it, struct viewer, link);
        if (now - v->started_ms < max || viewer_send(v, bye, sizeof bye - 1) != 0)
            continue;
        cg_http_stream_end(v->s);
        viewer_free(v);
    }
}

static void heartbeat(struct gate_board *b)
{
    retire(b);
    /* A comment for proxies, and an event the page sees (comments never
     * reach it): a quiet board is not a stale one. */
    static const char hb[] = ": keep-alive\nevent: ping\ndata: {}\n\n";
    uint64_t now = cg_mono_ms();
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &b->viewers) {
        struct viewer *v = cg_list_entry(it, struct viewer, link);
        if (now - v->last_write_ms >= BOARD_HEARTBEAT_MS)
            viewer_send(v, hb, sizeof hb - 1);
    }
}

static void set_stale(struct gate_board *b, const char *reason)
{
    if (b->stale)
        return;
    b->stale = 1;
    char msg[128];
    int n = snprintf(msg, sizeof msg, "event: stale\ndata: {\"reason\":\"%s\"}\n\n", reason);
    broadcast(b, msg, (size_t)n);
}

/* ---- the log in memory ---- */

static int64_t keep_from(int64_t now)
{
    int64_t day = gate_fig_day_start(now);
    return day < now - HOUR_MS ? day : now - HOUR_MS;
}

static void prune(struct gate_board *b, int64_t now)
{
    int64_t from = keep_from(now);
    size_t drop = 0;
    while (drop < b->nev && b->ev[drop].ms < from)
        drop++;
    if (drop > 0) {
        memmove(b->ev, b->ev + drop, (b->nev - drop) * sizeof *b->ev);
        b->nev -= drop;
    }
    int64_t first_min = from / MIN_MS;
    if (b->nocc > 0 && b->occ_first < first_min) {
        size_t d = (size_t)(first_min - b->occ_first);
        if (d > b->nocc)
            d = b->nocc;
        memmove(b->occ_busy, b->occ_busy + d, (b->nocc - d) * sizeof *b->occ_busy);
        memmove(b->occ_cap, b->occ_cap + d, (b->nocc - d) * sizeof *b->occ_cap);
        b->nocc -= d;
        b->occ_first += (int64_t)d;
    }
}

/* Appends the log entries of r (board.lua's id, ev, wait triples) and
 * moves the next read past last_id (the last entry read, counted or not). */
static void take_log(struct gate_board *b, const redisReply *r, const char *last_id)
{
    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 2 < r->elements; i += 3) {
            unsigned long long ms = 0, seq = 0;
            const char *id = cg_redis_reply_str(r, i), *ev = cg_redis_reply_str(r, i + 1),
                       *w = cg_redis_reply_str(r, i + 2);
            if (id == NULL || sscanf(id, "%llu-%llu", &ms, &seq) != 2)
                continue;
            int kind = gate_fig_kind_of(ev);
            if (kind == FIG_NONE)
                continue;
            if (b->nev == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 1024;
                b->ev = cg_realloc(b->ev, b->cap * sizeof *b->ev);
            }
            b->ev[b->nev++] = (struct gate_fig_event){
                .ms = (int64_t)ms,
                .wait_ms = w != NULL ? strtoll(w, NULL, 10) : 0,
                .kind = kind,
            };
        }
    }
    /* The next read starts right after the last entry (no "(" for an
     * exclusive start: Redis 6.0 has none). */
    unsigned long long ms, seq;
    if (last_id != NULL && sscanf(last_id, "%llu-%llu", &ms, &seq) == 2)
        snprintf(b->log_start, sizeof b->log_start, "%llu-%llu", ms, seq + 1);
}

/* The occupancy sums of minutes first.. (pairs busy, cap). */
static void take_occupancy(struct gate_board *b, int64_t first, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return;
    size_t n = r->elements / 2;
    if (b->nocc == 0)
        b->occ_first = first;
    for (size_t i = 0; i < n; i++) {
        int64_t m = first + (int64_t)i;
        if (m < b->occ_first)
            continue;
        size_t at = (size_t)(m - b->occ_first);
        if (at >= b->nocc) {
            size_t want = at + 1;
            b->occ_busy = cg_realloc(b->occ_busy, want * sizeof *b->occ_busy);
            b->occ_cap = cg_realloc(b->occ_cap, want * sizeof *b->occ_cap);
            for (size_t k = b->nocc; k < want; k++)
                b->occ_busy[k] = b->occ_cap[k] = 0;
            b->nocc = want;
        }
        b->occ_busy[at] = (double)cg_redis_reply_int(r, 2 * i, 0);
        b->occ_cap[at] = (double)cg_redis_reply_int(r, 2 * i + 1, 0);
    }
}

static void occupancy_sums(const struct gate_board *b, int64_t from, int64_t to, double *busy,
                           double *cap)
{
    *busy = *cap = 0;
    for (size_t i = 0; i < b->nocc; i++) {
        int64_t start = (b->occ_first + (int64_t)i) * MIN_MS;
        if (start + MIN_MS <= from || start >= to)
            continue;
        *busy += b->occ_busy[i];
        *cap += b->occ_cap[i];
    }
}

/* ---- figures ---- */

static void compute(struct gate_board *b)
{
    const struct cg_config *cfg = b->g->cfg;
    struct gate_fig_params p = {
        .service_level_ms = (int64_t)cfg->service_level_seconds * 1000,
        .short_abandon_ms = (int64_t)cfg->short_abandon_seconds * 1000,
    };
    int64_t now = b->now_ms, to = now + 1;
    struct {
        struct gate_figures *out;
        int64_t from;
    } w[] = {
        {&b->today, gate_fig_day_start(now)},
        {&b->m15, now - 15 * MIN_MS},
        {&b->h1, now - HOUR_MS},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        double busy, cap;
        occupancy_sums(b, w[i].from, to, &busy, &cap);
        gate_figures_compute(b->ev, b->nev, w[i].from, to, &p, busy, cap, w[i].out);
    }
    b->have_figures = 1;
}

static void set_metrics(struct gate_board *b)
{
    struct cg_metrics *m = b->metrics;
    if (m == NULL)
        return;
    static const char *const names[] = {"today", "15m", "1h"};
    const struct gate_figures *fs[] = {&b->today, &b->m15, &b->h1};
    for (size_t i = 0; i < 3; i++) {
        const struct gate_figures *f = fs[i];
        char lab[32];
        snprintf(lab, sizeof lab, "window=\"%s\"", names[i]);
        cg_metrics_set(m, "callgate_figures_offered", lab, (double)f->offered);
        cg_metrics_set(m, "callgate_figures_connected", lab, (double)f->connected);
        cg_metrics_set(m, "callgate_figures_connected_in_service_level", lab,
                       (double)f->connected_in_sl);
        cg_metrics_set(m, "callgate_figures_abandoned", lab, (double)f->abandoned);
        cg_metrics_set(m, "callgate_figures_short_abandoned", lab, (double)f->short_abandoned);
        cg_metrics_set(m, "callgate_figures_overflowed", lab, (double)f->overflowed);
        cg_metrics_set(m, "callgate_figures_service_level", lab,
                       f->service_level >= 0 ? f->service_level : NAN);
        cg_metrics_set(m, "callgate_figures_answer_seconds_avg", lab,
                       f->asa_s >= 0 ? f->asa_s : NAN);
        cg_metrics_set(m, "callgate_figures_answer_seconds_p90", lab,
                       f->p90_s >= 0 ? f->p90_s : NAN);
        cg_metrics_set(m, "callgate_figures_occupancy", lab,
                       f->occupancy >= 0 ? f->occupancy : NAN);
    }
    cg_metrics_set(m, "callgate_figures_longest_wait_seconds", NULL, (double)b->oldest_wait_s);
}

static void declare_metrics(struct cg_metrics *m)
{
    static const struct {
        const char *name, *help;
    } g[] = {
        {"callgate_figures_offered", "Callers who entered the gate, by window."},
        {"callgate_figures_connected", "Callers connected to the assistant, by window."},
        {"callgate_figures_connected_in_service_level",
         "Callers connected within SERVICE_LEVEL_SECONDS, by window."},
        {"callgate_figures_abandoned",
         "Callers who hung up while waiting, after SHORT_ABANDON_SECONDS, by window."},
        {"callgate_figures_short_abandoned",
         "Callers who hung up within SHORT_ABANDON_SECONDS, by window."},
        {"callgate_figures_overflowed", "Callers given the overflow action, by window."},
        {"callgate_figures_service_level",
         "Connected within SERVICE_LEVEL_SECONDS over connected, abandoned and overflowed "
         "(NaN without any), by window."},
        {"callgate_figures_answer_seconds_avg", "Mean wait of connected callers, by window."},
        {"callgate_figures_answer_seconds_p90",
         "90th percentile (nearest rank) of connected callers' waits, by window."},
        {"callgate_figures_occupancy", "Slot-seconds in use over slot-seconds of the limit."},
        {"callgate_figures_longest_wait_seconds", "The longest wait of a caller waiting now."},
        {"callgate_events_viewers", "Viewers connected to GET /events."},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        cg_metrics_declare(m, g[i].name, CG_GAUGE, g[i].help, NULL, 0);
    cg_metrics_declare(m, "callgate_events_viewers_dropped_total", CG_COUNTER,
                       "Viewers of GET /events dropped because a write to them failed (most "
                       "often: they stopped reading and their unsent bytes passed the bound).",
                       NULL, 0);
    cg_metrics_inc(m, "callgate_events_viewers_dropped_total", NULL, 0);
    cg_metrics_set(m, "callgate_events_viewers", NULL, 0);
}

int cg_gate_board_figures_json(const struct gate_board *b, struct cg_buf *out)
{
    if (b == NULL || !b->have_figures)
        return cg_buf_appends(out, ",\"figures\":null");
    const struct cg_config *cfg = b->g->cfg;
    int rc = cg_buf_printf(out,
                           ",\"figures\":{\"serviceLevelSeconds\":%d,\"shortAbandonSeconds\":%d,"
                           "\"complete\":%s,\"longestWaitSeconds\":%lld,\"today\":",
                           cfg->service_level_seconds, cfg->short_abandon_seconds,
                           b->caught_up ? "true" : "false", b->oldest_wait_s);
    rc |= gate_figures_json(out, &b->today);
    rc |= cg_buf_appends(out, ",\"last15m\":");
    rc |= gate_figures_json(out, &b->m15);
    rc |= cg_buf_appends(out, ",\"lastHour\":");
    rc |= gate_figures_json(out, &b->h1);
    return rc | cg_buf_appendc(out, '}');
}

/* Arrivals, connections and abandons (short ones too) per minute over the
 * last CHART_MINUTES whole minutes and the current one. */
static int chart_json(const struct gate_board *b, struct cg_buf *out)
{
    long n[3][CHART_MINUTES];
    memset(n, 0, sizeof n);
    int64_t last_min = b->now_ms / MIN_MS;
    int64_t first_min = last_min - CHART_MINUTES + 1;
    for (size_t i = b->nev; i-- > 0;) {
        int64_t m = b->ev[i].ms / MIN_MS;
        if (m < first_min)
            break;
        if (m > last_min)
            continue;
        int k = b->ev[i].kind == FIG_ENTER     ? 0
                : b->ev[i].kind == FIG_CONNECT ? 1
                : b->ev[i].kind == FIG_ABANDON ? 2
                                               : -1;
        if (k >= 0)
            n[k][m - first_min]++;
    }
    char from[25];
    cg_iso8601_ms((uint64_t)(first_min * MIN_MS), from);
    int rc = cg_buf_printf(out, ",\"chart\":{\"from\":\"%s\",\"minutes\":%d", from, CHART_MINUTES);
    static const char *const names[] = {"arrivals", "connected", "abandoned"};
    for (int k = 0; k < 3; k++) {
        rc |= cg_buf_printf(out, ",\"%s\":[", names[k]);
        for (int i = 0; i < CHART_MINUTES; i++)
            rc |= cg_buf_printf(out, "%s%ld", i ? "," : "", n[k][i]);
        rc |= cg_buf_appendc(out, ']');
    }
    return rc | cg_buf_appendc(out, '}');
}

/* ---- the tick ---- */

static void step_start(struct gate_board *b);

static void publish(struct gate_board *b, const redisReply *q)
{
    struct cg_buf body;
    cg_buf_init(&body, SNAPSHOT_MAX);
    int rc = cg_buf_appends(&body, "\"queue\":");
    int qrc = gate_queue_view_json(b->g, q, 0, 1, b->extra, b->extra_arg, &body);
    rc |= qrc != 0;
    rc |= cg_gate_board_figures_json(b, &body);
    rc |= chart_json(b, &body);
    if (b->routes.len > 0) {
        rc |= cg_buf_appends(&body, ",\"routes\":");
        rc |= cg_buf_append(&body, b->routes.data, b->routes.len);
    }
    if (rc != 0) {
        cg_log_warn("board snapshot not built", "bytes=%zu", body.len);
        cg_buf_free(&body);
        return;
    }
    int changed = b->stale || !b->have_snap || body.len != b->body_key.len ||
                  memcmp(body.data, b->body_key.data, body.len) != 0;
    b->stale = 0;
    if (changed) {
        char iso[25];
        cg_iso8601_ms((uint64_t)b->now_ms, iso);
        cg_buf_reset(&b->snap);
        rc = cg_buf_printf(&b->snap, "event: snapshot\ndata: {\"generatedAt\":\"%s\",", iso);
        rc |= cg_buf_append(&b->snap, body.data, body.len);
        rc |= cg_buf_appends(&b->snap, "}\n\n");
        if (rc == 0) {
            cg_buf_reset(&b->body_key);
            if (cg_buf_append(&b->body_key, body.data, body.len) == 0) {
                b->have_snap = 1;
                broadcast(b, b->snap.data, b->snap.len);
            }
        }
    }
    cg_buf_free(&body);
}

static void on_queue_step(const struct gate_reply *rep, void *arg)
{
    struct step *st = arg;
    struct gate_board *b = st->b;
    free(st);
    if (b == NULL)
        return;
    b->inflight = NULL;
    const redisReply *r = rep->r;
    if (rep->err != NULL || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 5) {
        set_stale(b, "redis");
        return;
    }
    b->waiting = cg_redis_reply_int(r, 3, 0);
    b->oldest_wait_s = cg_redis_reply_int(r, 4, 0) / 1000;
    set_metrics(b);
    if (b->nviewers > 0) {
        publish(b, r);
    } else {
        /* Nobody watches: the next viewer gets a fresh snapshot. */
        b->stale = 0;
        b->have_snap = 0;
    }
    heartbeat(b);
}

/* The queue read of the tick; q is the step in flight. */
static void queue_step(struct gate_board *b, struct step *q)
{
    long long listed = b->nviewers > 0 ? BOARD_LISTED : 1;
    if (gate_store_queue(&b->g->store, b->g->cfg->max_concurrency, listed, on_queue_step, q) != 0) {
        b->inflight = NULL;
        free(q);
        set_stale(b, "redis");
    }
}

static void on_routes_step(const struct gate_route_fig *v, size_t n, int ok, void *arg)
{
    struct step *st = arg;
    struct gate_board *b = st->b;
    if (b == NULL) {
        free(st);
        return;
    }
    /* Without an answer the snapshot goes without the routes' line. */
    cg_buf_reset(&b->routes);
    if (!ok || gate_route_figures_json(&b->routes, v, n) != 0)
        cg_buf_reset(&b->routes);
    queue_step(b, st);
}

static void on_board_step(const struct gate_reply *rep, void *arg)
{
    struct step *st = arg;
    struct gate_board *b = st->b;
    free(st);
    if (b == NULL)
        return;
    b->inflight = NULL;
    const redisReply *r = rep->r;
    if (rep->err != NULL || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 8) {
        if (rep->err != NULL)
            cg_log_debug("board read failed", "error=%s", rep->err);
        set_stale(b, "redis");
        return;
    }
    b->now_ms = cg_redis_reply_int(r, 0, 0);
    b->active = cg_redis_reply_int(r, 1, 0);
    b->limit = cg_redis_reply_int(r, 2, 0);
    take_log(b, r->element[3], cg_redis_reply_str(r, 6));
    long long got = cg_redis_reply_int(r, 7, 0);
    take_occupancy(b, cg_redis_reply_int(r, 5, 0), r->element[4]);
    prune(b, b->now_ms);
    b->caught_up = got < LOG_PAGE;
    if (!b->caught_up) {
        /* More of the log to read: the next page at once, not a tick
         * later; the figures once the pages are in. */
        step_start(b);
        return;
    }
    compute(b);
    struct step *q = cg_calloc(1, sizeof *q);
    q->b = b;
    b->inflight = q;
    /* With routes and someone watching: each route's line first, so that
     * the snapshot shows it beside the queue of the same tick. */
    if (b->g->cfg->routes.n > 0 && b->nviewers > 0 &&
        gate_route_figures(b->g, on_routes_step, q) == 0)
        return;
    cg_buf_reset(&b->routes);
    queue_step(b, q);
}

static void step_start(struct gate_board *b)
{
    if (b->inflight != NULL)
        return;
    if (!gate_redis_ready(b->g)) {
        set_stale(b, "redis");
        heartbeat(b);
        return;
    }
    const struct cg_config *cfg = b->g->cfg;
    int64_t now = (int64_t)cg_wall_ms();
    if (b->log_start[0] == '\0')
        snprintf(b->log_start, sizeof b->log_start, "%lld-0", (long long)keep_from(now));
    /* The last two minutes again (the one that was running may have got
     * samples since), or everything kept when nothing is known yet. */
    int64_t first = b->nocc >= 2   ? b->occ_first + (int64_t)b->nocc - 2
                    : b->nocc == 1 ? b->occ_first
                                   : keep_from(now) / MIN_MS;
    struct gate_board_read rd = {
        .limit = cfg->max_concurrency,
        .log_start = b->log_start,
        .log_count = LOG_PAGE,
        .first_minute = first,
        .retention_ms = (long long)cfg->queue_log_retention_hours * HOUR_MS,
        .max_entries = cfg->queue_log_max_entries,
    };
    struct step *st = cg_calloc(1, sizeof *st);
    st->b = b;
    b->inflight = st;
    if (gate_store_board(&b->g->store, &rd, on_board_step, st) != 0) {
        b->inflight = NULL;
        free(st);
        set_stale(b, "redis");
    }
}

static void on_tick(void *arg)
{
    step_start(arg);
}

/* ---- routes ---- */

static void handle_events(struct cg_http_req *req, void *arg)
{
    struct gate_board *b = arg;
    if (!gate_admin_ok(b->g, req, 1))
        return;
    if (cg_http_req_query(req) == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "malformed query string");
        return;
    }
    /* nginx and other proxies pass the events on as they come. */
    cg_http_set_header(req, "X-Accel-Buffering", "no");
    struct viewer *v = cg_calloc(1, sizeof *v);
    v->b = b;
    v->started_ms = cg_mono_ms();
    v->s = cg_http_stream_start(req, 200, "text/event-stream; charset=utf-8",
                                BOARD_VIEWER_MAX_PENDING, on_viewer_closed, v);
    if (v->s == NULL) {
        free(v);
        return;
    }
    /* Without the cap, the kernel would hold up to 4 MiB behind a viewer
     * that stopped reading; failing to set it only loses that bound. */
    if (cg_http_stream_sndbuf(v->s, BOARD_VIEWER_SNDBUF) != 0)
        cg_log_debug("events: SO_SNDBUF not set", "errno=%d", errno);
    cg_list_push_back(&b->viewers, &v->link);
    b->nviewers++;
    count_viewers(b);
    static const char hello[] = "retry: 2000\n\n";
    if (viewer_send(v, hello, sizeof hello - 1) != 0)
        return;
    if (b->stale) {
        static const char st[] = "event: stale\ndata: {\"reason\":\"redis\"}\n\n";
        viewer_send(v, st, sizeof st - 1);
    } else if (b->have_snap) {
        viewer_send(v, b->snap.data, b->snap.len);
    } else {
        /* The first viewer: the next tick builds the snapshot at once. */
        cg_periodic_kick(b->tick);
    }
}

static void handle_wallboard(struct cg_http_req *req, void *arg)
{
    struct gate_board *b = arg;
    if (!gate_admin_ok(b->g, req, 1))
        return;
    if (cg_http_req_query(req) == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "malformed query string");
        return;
    }
    /* The page loads nothing from elsewhere and sends the token (from its
     * own address) only to /events. */
    cg_http_set_header(req, "Content-Security-Policy",
                       "default-src 'none'; script-src 'unsafe-inline'; style-src "
                       "'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    cg_http_set_header(req, "Referrer-Policy", "no-referrer");
    cg_http_reply(req, 200, "text/html; charset=utf-8", cg_gate_wallboard_html,
                  strlen(cg_gate_wallboard_html));
}

/* ---- lifecycle ---- */

struct gate_board *cg_gate_board_new(struct cg_gate *g, struct cg_httpd *httpd,
                                     struct cg_metrics *metrics, cg_gate_view_extra extra,
                                     void *extra_arg)
{
    struct gate_board *b = cg_calloc(1, sizeof *b);
    b->g = g;
    b->httpd = httpd;
    b->metrics = metrics;
    b->extra = extra;
    b->extra_arg = extra_arg;
    cg_list_init(&b->viewers);
    cg_buf_init(&b->snap, SNAPSHOT_MAX);
    cg_buf_init(&b->routes, SNAPSHOT_MAX);
    cg_buf_init(&b->body_key, SNAPSHOT_MAX);
    if (metrics != NULL)
        declare_metrics(metrics);
    b->tick = cg_periodic_new(g->base, "board", BOARD_TICK_MS, 0, on_tick, b);
    if (b->tick == NULL || cg_httpd_route(httpd, "/events", CG_HTTP_GET, handle_events, b) != 0 ||
        cg_httpd_route(httpd, "/wallboard", CG_HTTP_GET, handle_wallboard, b) != 0) {
        cg_gate_board_free(b);
        return NULL;
    }
    cg_periodic_kick(b->tick);
    return b;
}

void cg_gate_board_free(struct gate_board *b)
{
    if (b == NULL)
        return;
    cg_periodic_free(b->tick);
    if (b->inflight != NULL)
        b->inflight->b = NULL;
    struct cg_list *it;
    while ((it = cg_list_first(&b->viewers)) != NULL) {
        struct viewer *v = cg_list_entry(it, struct viewer, link);
        cg_http_stream_end(v->s);
        viewer_free(v);
    }
    free(b->ev);
    free(b->occ_busy);
    free(b->occ_cap);
    cg_buf_free(&b->snap);
    cg_buf_free(&b->routes);
    cg_buf_free(&b->body_key);
    free(b);
}

size_t cg_gate_board_viewers(const struct gate_board *b)
{
    return b != NULL ? b->nviewers : 0;
}
