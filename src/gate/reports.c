/*
 * reports.c - the queue log export (reports.h).
 */
#include "base/fmacros.h"

#include "gate/reports.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"
#include "gate/access.h"
#include "gate/figures.h"
#include "gate/internal.h"
#include "gate/keys.h"
#include "net/httpd.h"

/* A page's rows are written before the next page is read, and the next
 * page waits while more than REPORT_PENDING_LOW bytes are unsent: a slow
 * client holds a few pages at most, however long the range. */
#define REPORT_PENDING_LOW   (256u << 10)
#define REPORT_MAX_PENDING   (8u << 20)
#define REPORT_PAGE_BUF      (4u << 20)
#define REPORT_DRAIN_POLL_MS 20
#define DEFAULT_RANGE_MS     (3600LL * 1000)
/* The interval report reads at most this range. */
#define INTERVALS_MAX_MS (7LL * 24 * 3600 * 1000)

struct export
{
    struct cg_gate *g;
    struct cg_http_req *req;  /* until the stream starts */
    struct cg_http_stream *s; /* once it has */
    struct event *drain;      /* waits for the client to read */
    int csv;
    int busy;                 /* a Redis read or the drain timer is pending */
    int gone;                 /* the client went away: free when idle */
    long long from_ms, to_ms; /* [from, to) */
    char start[48];           /* the next page's first stream id */
    char end[48];
    struct cg_buf b; /* the rows of one page */
    size_t rows;
    /* The interval report: the figures' events of the range. */
    int intervals;
    struct gate_fig_event *ev;
    size_t nev, cap;
};

/* ---- one row ---- */

struct row {
    long long ms;
    const char *event, *sid, *pos, *wait, *reason;
};

static const char *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, name) == 0)
            return v->str;
    }
    return NULL;
}

/* A decimal integer field as text, or NULL: only digits leave as numbers. */
static const char *digits(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 18)
        return NULL;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return NULL;
    return s;
}

static int append_wait_s(struct cg_buf *b, const char *wait_ms)
{
    long long ms = strtoll(wait_ms, NULL, 10);
    return cg_buf_printf(b, "%lld.%03lld", ms / 1000, ms % 1000);
}

/* RFC 4180: a field with a comma, a quote, CR or LF is quoted, quotes
 * doubled. A text field that a spreadsheet would run as a formula (=, +, -,
 * @, tab or CR first) gets a leading apostrophe: the reason comes from Vapi
 * and Twilio, not from callgate. */
static int csv_text(struct cg_buf *b, const char *s)
{
    if (s == NULL)
        return 0;
    int rc = 0;
    int formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
    if (strpbrk(s, ",\"\r\n") == NULL && !formula)
        return cg_buf_appends(b, s);
    rc |= cg_buf_appendc(b, '"');
    if (formula)
        rc |= cg_buf_appendc(b, '\'');
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == '"')
            rc |= cg_buf_appendc(b, '"');
        rc |= cg_buf_appendc(b, *p);
    }
    return rc | cg_buf_appendc(b, '"');
}

static int json_text(struct cg_buf *b, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return cg_buf_appends(b, "null");
    return cg_buf_append_json_str(b, s, strlen(s));
}

static int append_row(struct export *e, const struct row *w)
{
    struct cg_buf *b = &e->b;
    char iso[25];
    cg_iso8601_ms((uint64_t)w->ms, iso);
    int rc = 0;
    if (e->csv) {
        rc |= cg_buf_printf(b, "%s,", iso);
        rc |= csv_text(b, w->event);
        rc |= cg_buf_appendc(b, ',');
        rc |= csv_text(b, w->sid);
        rc |= cg_buf_appendc(b, ',');
        if (w->pos)
            rc |= cg_buf_appends(b, w->pos);
        rc |= cg_buf_appendc(b, ',');
        if (w->wait)
            rc |= append_wait_s(b, w->wait);
        rc |= cg_buf_appendc(b, ',');
        rc |= csv_text(b, w->reason);
        return rc | cg_buf_appends(b, "\r\n");
    }
    rc |= cg_buf_printf(b, "%s{\"time\":\"%s\",\"event\":", e->rows ? "," : "", iso);
    rc |= json_text(b, w->event);
    rc |= cg_buf_appends(b, ",\"callSid\":");
    rc |= json_text(b, w->sid);
    rc |= cg_buf_printf(b, ",\"position\":%s,\"waitSeconds\":", w->pos ? w->pos : "null");
    rc |= w->wait ? append_wait_s(b, w->wait) : cg_buf_appends(b, "null");
    rc |= cg_buf_appends(b, ",\"reason\":");
    rc |= json_text(b, w->reason);
    return rc | cg_buf_appendc(b, '}');
}

/* ---- the answer, streamed ---- */

static void export_free(struct export *e)
{
    if (e->drain != NULL)
        event_free(e->drain);
    cg_buf_free(&e->b);
    free(e->ev);
    free(e);
}

static void on_stream_closed(struct cg_http_stream *s, void *arg)
{
    (void)s;
    struct export *e = arg;
    e->s = NULL;
    e->gone = 1;
    /* Waiting on the drain timer only: nothing else will call back. */
    if (e->busy && evtimer_pending(e->drain, NULL)) {
        evtimer_del(e->drain);
        e->busy = 0;
    }
    if (!e->busy)
        export_free(e);
}

/* Sends the page's rows; 0, or -1 when the stream ended (e->s is NULL). */
static int flush_rows(struct export *e)
{
    if (e->b.len == 0)
        return 0;
    int rc = cg_http_stream_write(e->s, e->b.data, e->b.len);
    cg_buf_reset(&e->b);
    if (rc != 0) {
        e->s = NULL;
        return -1;
    }
    return 0;
}

/* The end of the export: complete, or cut short by a failure (JSON then
 * says so; a CSV export simply ends early, which only its row count can
 * tell, see README.md). */
static void finish(struct export *e, int complete)
{
    if (e->s == NULL) {
        export_free(e);
        return;
    }
    if (!e->csv)
        cg_buf_printf(&e->b, "],\"count\":%zu,\"complete\":%s}", e->rows,
                      complete ? "true" : "false");
    if (flush_rows(e) == 0)
        cg_http_stream_end(e->s);
    export_free(e);
}

/* The answer's status line and headers, once the first page is in. */
static int start_stream(struct export *e)
{
    char fiso[25], tiso[25];
    cg_iso8601_ms((uint64_t)e->from_ms, fiso);
    cg_iso8601_ms((uint64_t)e->to_ms, tiso);
    cg_http_set_header(e->req, "Cache-Control", "no-store");
    if (e->csv)
        cg_http_set_header(e->req, "Content-Disposition",
                           "attachment; filename=\"callgate-events.csv\"");
    struct cg_http_req *req = e->req;
    e->req = NULL;
    e->s = cg_http_stream_start(
        req, 200, e->csv ? "text/csv; charset=utf-8; header=present" : "application/json",
        REPORT_MAX_PENDING, on_stream_closed, e);
    if (e->s == NULL)
        return -1;
    struct cg_buf head;
    cg_buf_init(&head, 256);
    int rc = e->csv
                 ? cg_buf_appends(&head, "time,event,callSid,position,waitSeconds,reason\r\n")
                 : cg_buf_printf(&head, "{\"from\":\"%s\",\"to\":\"%s\",\"events\":[", fiso, tiso);
    if (rc == 0 && cg_http_stream_write(e->s, head.data, head.len) != 0)
        e->s = NULL;
    cg_buf_free(&head);
    return e->s != NULL ? 0 : -1;
}

static void fail(struct export *e)
{
    if (e->req != NULL) {
        cg_http_reply_error(e->req, 503, "unavailable", "state store unavailable");
        export_free(e);
        return;
    }
    cg_log_warn("event export cut short: state store unavailable", "rows=%zu", e->rows);
    finish(e, 0);
}

static void on_page(const redisReply *r, const char *err, void *arg);
static void intervals_done(struct export *e);

static void next_page(struct export *e)
{
    e->busy = 1;
    if (!gate_redis_ready(e->g) ||
        cg_redis_command(e->g->redis, on_page, e, "XRANGE %s %s %s COUNT %d", e->g->keys->log,
                         e->start, e->end, CG_GATE_REPORT_PAGE) != 0) {
        e->busy = 0;
        fail(e);
    }
}

/* The next page once the client has read most of what it was sent. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct export *e = arg;
    e->busy = 0;
    if (e->gone) {
        export_free(e);
        return;
    }
    if (cg_http_stream_pending(e->s) > REPORT_PENDING_LOW) {
        struct timeval tv = {0, REPORT_DRAIN_POLL_MS * 1000};
        e->busy = 1;
        evtimer_add(e->drain, &tv);
        return;
    }
    next_page(e);
}

static void take_event(struct export *e, long long ms, const redisReply *f)
{
    int kind = gate_fig_kind_of(field(f, "ev"));
    if (kind == FIG_NONE)
        return;
    const char *w = digits(field(f, "wait"));
    if (e->nev == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1024;
        e->ev = cg_realloc(e->ev, e->cap * sizeof *e->ev);
    }
    e->ev[e->nev++] =
        (struct gate_fig_event){.ms = ms, .wait_ms = w ? strtoll(w, NULL, 10) : 0, .kind = kind};
}

static void on_page(const redisReply *r, const char *err, void *arg)
{
    struct export *e = arg;
    e->busy = 0;
    if (e->gone) {
        export_free(e);
        return;
    }
    if (err != NULL || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        fail(e);
        return;
    }
    if (!e->intervals && e->req != NULL && start_stream(e) != 0) {
        export_free(e);
        return;
    }
    int rc = 0;
    unsigned long long ms = 0, seq = 0;
    for (size_t i = 0; i < r->elements && rc == 0; i++) {
        const redisReply *en = r->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements < 2 ||
            en->element[0]->type != REDIS_REPLY_STRING ||
            en->element[1]->type != REDIS_REPLY_ARRAY ||
            sscanf(en->element[0]->str, "%llu-%llu", &ms, &seq) != 2)
            continue;
        const redisReply *f = en->element[1];
        if (e->intervals) {
            take_event(e, (long long)ms, f);
            continue;
        }
        struct row w = {
            .ms = (long long)ms,
            .event = field(f, "ev"),
            .sid = field(f, "sid"),
            .pos = digits(field(f, "pos")),
            .wait = digits(field(f, "wait")),
            .reason = field(f, "reason"),
        };
        rc |= append_row(e, &w);
        e->rows++;
    }
    if (rc != 0) {
        /* A row past the page buffer: only a log entry no writer makes. */
        fail(e);
        return;
    }
    if (e->intervals) {
        if (r->elements < CG_GATE_REPORT_PAGE) {
            intervals_done(e);
            return;
        }
        snprintf(e->start, sizeof e->start, "%llu-%llu", ms, seq + 1);
        next_page(e);
        return;
    }
    if (flush_rows(e) != 0) {
        export_free(e);
        return;
    }
    if (r->elements < CG_GATE_REPORT_PAGE) {
        finish(e, 1);
        return;
    }
    /* The next page starts right after the last entry of this one. */
    snprintf(e->start, sizeof e->start, "%llu-%llu", ms, seq + 1);
    on_drain(-1, 0, e);
}

/* ---- the request ---- */

/* A bound of the range in ms since the epoch: dflt when absent, -1 when
 * malformed. */
static long long bound(const struct cg_form *q, const char *name, long long dflt)
{
    const char *s = cg_form_get(q, name);
    if (s == NULL)
        return dflt;
    double v = cg_iso8601_parse(s);
    if (v < 0)
        return -1;
    return (long long)llround(v * 1000.0);
}

/* The range of ?from=&to=; 0, or -1 with req answered 400. */
static int range_of(struct cg_http_req *req, long long dflt_from, long long dflt_to,
                    long long *from, long long *to)
{
    const struct cg_form *q = cg_http_req_query(req);
    if (q == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "malformed query string");
        return -1;
    }
    *to = bound(q, "to", dflt_to);
    *from = *to < 0 ? -1 : bound(q, "from", dflt_from < 0 ? *to - DEFAULT_RANGE_MS : dflt_from);
    if (*to < 0 || *from < 0) {
        cg_http_reply_error(req, 400, "bad_request",
                            "from and to must be ISO-8601 UTC date-times such as "
                            "2026-01-31T09:00:00Z");
        return -1;
    }
    if (*from > *to) {
        cg_http_reply_error(req, 400, "bad_request", "from is after to");
        return -1;
    }
    return 0;
}

static struct export *export_new(struct cg_gate *g, struct cg_http_req *req, long long from,
                                 long long to)
{
    struct export *e = cg_calloc(1, sizeof *e);
    e->g = g;
    e->req = req;
    e->from_ms = from;
    e->to_ms = to;
    e->drain = evtimer_new(g->base, on_drain, e);
    cg_buf_init(&e->b, REPORT_PAGE_BUF);
    snprintf(e->start, sizeof e->start, "%lld-0", from);
    if (to == from) /* an empty range: nothing can match */
        snprintf(e->end, sizeof e->end, "%lld-0", from > 0 ? from - 1 : 0);
    else
        snprintf(e->end, sizeof e->end, "%lld-18446744073709551615", to - 1);
    return e;
}

static void handle_events(struct cg_http_req *req, struct cg_gate *g, int csv)
{
    if (!gate_admin_ok(g, req, 1))
        return;
    long long from, to;
    if (range_of(req, -1, (long long)cg_wall_ms(), &from, &to) != 0)
        return;
    if (!gate_redis_ready(g)) {
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable");
        return;
    }
    struct export *e = export_new(g, req, from, to);
    e->csv = csv;
    if (e->drain == NULL) {
        cg_http_reply_error(req, 503, "unavailable", "cannot create a timer");
        export_free(e);
        return;
    }
    /* The first page comes before the answer starts, so that a Redis
     * failure can still be a 503. */
    next_page(e);
}

static void handle_events_json(struct cg_http_req *req, void *arg)
{
    handle_events(req, arg, 0);
}

static void handle_events_csv(struct cg_http_req *req, void *arg)
{
    handle_events(req, arg, 1);
}

/* ---- the interval report ---- */

/* The occupancy samples of the range's minutes (board.lua's hash). */
static void on_occupancy(const redisReply *r, const char *err, void *arg)
{
    struct export *e = arg;
    e->busy = 0;
    if (err != NULL || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        fail(e);
        return;
    }
    const struct cg_config *cfg = e->g->cfg;
    struct gate_fig_params p = {
        .service_level_ms = (int64_t)cfg->service_level_seconds * 1000,
        .short_abandon_ms = (int64_t)cfg->short_abandon_seconds * 1000,
    };
    struct cg_buf out;
    cg_buf_init(&out, CG_BUF_UNBOUNDED);
    int rc = cg_buf_appends(&out, gate_figures_csv_header);
    long long first_min = e->from_ms / 60000;
    for (long long t = e->from_ms; t < e->to_ms && rc == 0; t += GATE_FIG_INTERVAL_MS) {
        double busy = 0, cap = 0;
        for (long long m = t / 60000; m < (t + GATE_FIG_INTERVAL_MS) / 60000; m++) {
            size_t i = (size_t)(m - first_min) * 2;
            busy += (double)cg_redis_reply_int(r, i, 0);
            cap += (double)cg_redis_reply_int(r, i + 1, 0);
        }
        struct gate_figures f;
        gate_figures_compute(e->ev, e->nev, t, t + GATE_FIG_INTERVAL_MS, &p, busy, cap, &f);
        rc |= gate_figures_csv_row(&out, &f);
    }
    cg_http_set_header(e->req, "Cache-Control", "no-store");
    cg_http_set_header(e->req, "Content-Disposition",
                       "attachment; filename=\"callgate-intervals.csv\"");
    if (rc != 0)
        cg_http_reply_error(e->req, 500, "too_large", "the answer exceeds the response limit");
    else
        cg_http_reply(e->req, 200, "text/csv; charset=utf-8; header=present", out.data, out.len);
    cg_buf_free(&out);
    export_free(e);
}

static void intervals_done(struct export *e)
{
    /* Two fields a minute; at most 7 days of minutes. */
    long long first = e->from_ms / 60000, last = e->to_ms / 60000;
    size_t n = (size_t)(last - first);
    const char **argv = cg_malloc((2 + 2 * n) * sizeof *argv);
    char *names = cg_malloc(2 * n * 24 + 1);
    char key[CG_KEY_MAX + 16];
    snprintf(key, sizeof key, "%soccupancy", e->g->keys->prefix);
    argv[0] = "HMGET";
    argv[1] = key;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            argv[2 + 2 * i + (size_t)k] = names + at;
            at +=
                (size_t)snprintf(names + at, 24, "%c%lld", k ? 'c' : 'b', first + (long long)i) + 1;
        }
    }
    e->busy = 1;
    int rc =
        n == 0 ? -1
               : cg_redis_command_argv(e->g->redis, on_occupancy, e, (int)(2 + 2 * n), argv, NULL);
    free(argv);
    free(names);
    if (rc != 0) {
        e->busy = 0;
        if (n == 0)
            on_occupancy(&(redisReply){.type = REDIS_REPLY_ARRAY}, NULL, e);
        else
            fail(e);
    }
}

static void handle_intervals(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!gate_admin_ok(g, req, 1))
        return;
    long long now = (long long)cg_wall_ms(), from, to;
    if (range_of(req, gate_fig_day_start(now), now, &from, &to) != 0)
        return;
    /* Whole intervals: from rounded down, to up. */
    from = gate_fig_interval_start(from);
    if (gate_fig_interval_start(to) != to)
        to = gate_fig_interval_start(to) + GATE_FIG_INTERVAL_MS;
    if (to - from > INTERVALS_MAX_MS) {
        cg_http_reply_error(req, 400, "bad_request", "the range is longer than 7 days");
        return;
    }
    if (!gate_redis_ready(g)) {
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable");
        return;
    }
    struct export *e = export_new(g, req, from, to);
    e->intervals = 1;
    if (e->drain == NULL) {
        cg_http_reply_error(req, 503, "unavailable", "cannot create a timer");
        export_free(e);
        return;
    }
    next_page(e);
}

int gate_reports_register(struct cg_httpd *httpd, struct cg_gate *g)
{
    if (cg_httpd_route(httpd, "/reports/events.json", CG_HTTP_GET, handle_events_json, g) != 0 ||
        cg_httpd_route(httpd, "/reports/events.csv", CG_HTTP_GET, handle_events_csv, g) != 0 ||
        cg_httpd_route(httpd, "/reports/intervals.csv", CG_HTTP_GET, handle_intervals, g) != 0)
        return -1;
    return 0;
}
