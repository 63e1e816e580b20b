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

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "gate/access.h"
#include "gate/internal.h"
#include "gate/keys.h"
#include "net/httpd.h"

/* The answer's ceiling: 10,000 rows of a few hundred bytes at most. A
 * row's free text (reason) is bounded by the log's writers. */
#define REPORT_REPLY_MAX (16u << 20)
/* Rows past CG_GATE_REPORT_MAX_ROWS that share the last row's millisecond
 * are still included, so that the next request can start at a millisecond
 * boundary; this many at most. */
#define REPORT_HARD_ROWS (2 * CG_GATE_REPORT_MAX_ROWS)
#define DEFAULT_RANGE_MS (3600LL * 1000)

struct export
{
    struct cg_gate *g;
    struct cg_http_req *req;
    int csv;
    long long from_ms, to_ms; /* [from, to) */
    char start[48];           /* the next page's first stream id */
    char end[48];
    struct cg_buf b;
    size_t rows;
    long long last_ms; /* the millisecond of the last row, -1 before the first */
    long long next_ms; /* truncated: where the next request starts; else -1 */
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

/* ---- the answer ---- */

static void finish(struct export *e, int rc)
{
    struct cg_buf *b = &e->b;
    char next[25] = "";
    if (e->next_ms >= 0)
        cg_iso8601_ms((uint64_t)e->next_ms, next);
    if (!e->csv) {
        rc |= cg_buf_printf(b, "],\"count\":%zu,\"truncated\":%s,\"nextFrom\":", e->rows,
                            e->next_ms >= 0 ? "true" : "false");
        rc |= e->next_ms >= 0 ? cg_buf_printf(b, "\"%s\"}", next) : cg_buf_appends(b, "null}");
    }
    if (rc != 0) {
        cg_http_reply_error(e->req, 500, "too_large", "the answer exceeds the response limit");
    } else {
        cg_http_set_header(e->req, "Cache-Control", "no-store");
        cg_http_set_header(e->req, "X-Callgate-Truncated", e->next_ms >= 0 ? "true" : "false");
        if (e->next_ms >= 0)
            cg_http_set_header(e->req, "X-Callgate-Next-From", next);
        if (e->csv)
            cg_http_set_header(e->req, "Content-Disposition",
                               "attachment; filename=\"callgate-events.csv\"");
        cg_http_reply(e->req, 200,
                      e->csv ? "text/csv; charset=utf-8; header=present" : "application/json",
                      b->data ? b->data : "", b->len);
    }
    cg_buf_free(b);
    free(e);
}

static void fail(struct export *e)
{
    cg_http_reply_error(e->req, 503, "unavailable", "state store unavailable");
    cg_buf_free(&e->b);
    free(e);
}

static void on_page(const redisReply *r, const char *err, void *arg);

static void next_page(struct export *e)
{
    if (!gate_redis_ready(e->g) ||
        cg_redis_command(e->g->redis, on_page, e, "XRANGE %s %s %s COUNT %d", e->g->keys->log,
                         e->start, e->end, CG_GATE_REPORT_PAGE) != 0)
        fail(e);
}

static void on_page(const redisReply *r, const char *err, void *arg)
{
    struct export *e = arg;
    if (err != NULL || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        fail(e);
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
        if ((e->rows >= CG_GATE_REPORT_MAX_ROWS && (long long)ms != e->last_ms) ||
            e->rows >= REPORT_HARD_ROWS) {
            e->next_ms = (long long)ms;
            if (e->next_ms == e->last_ms) /* the hard bound, inside one ms */
                e->next_ms++;
            finish(e, rc);
            return;
        }
        const redisReply *f = en->element[1];
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
        e->last_ms = (long long)ms;
    }
    if (rc != 0 || r->elements < CG_GATE_REPORT_PAGE) {
        finish(e, rc);
        return;
    }
    /* The next page starts right after the last entry of this one. */
    snprintf(e->start, sizeof e->start, "%llu-%llu", ms, seq + 1);
    next_page(e);
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

static void handle_events(struct cg_http_req *req, struct cg_gate *g, int csv)
{
    if (!gate_admin_ok(g, req, 1))
        return;
    const struct cg_form *q = cg_http_req_query(req);
    if (q == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "malformed query string");
        return;
    }
    long long now = (long long)cg_wall_ms();
    long long to = bound(q, "to", now);
    long long from = to < 0 ? -1 : bound(q, "from", to - DEFAULT_RANGE_MS);
    if (to < 0 || from < 0) {
        cg_http_reply_error(req, 400, "bad_request",
                            "from and to must be ISO-8601 UTC date-times such as "
                            "2026-01-31T09:00:00Z");
        return;
    }
    if (from > to) {
        cg_http_reply_error(req, 400, "bad_request", "from is after to");
        return;
    }
    if (!gate_redis_ready(g)) {
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable");
        return;
    }
    struct export *e = cg_calloc(1, sizeof *e);
    e->g = g;
    e->req = req;
    e->csv = csv;
    e->from_ms = from;
    e->to_ms = to;
    e->last_ms = -1;
    e->next_ms = -1;
    cg_buf_init(&e->b, REPORT_REPLY_MAX);
    snprintf(e->start, sizeof e->start, "%lld-0", from);
    if (to == from) /* an empty range: nothing can match */
        snprintf(e->end, sizeof e->end, "%lld-0", from > 0 ? from - 1 : 0);
    else
        snprintf(e->end, sizeof e->end, "%lld-18446744073709551615", to - 1);
    char fiso[25], tiso[25];
    cg_iso8601_ms((uint64_t)from, fiso);
    cg_iso8601_ms((uint64_t)to, tiso);
    int rc = csv ? cg_buf_appends(&e->b, "time,event,callSid,position,waitSeconds,reason\r\n")
                 : cg_buf_printf(&e->b, "{\"from\":\"%s\",\"to\":\"%s\",\"events\":[", fiso, tiso);
    if (rc != 0) {
        finish(e, rc);
        return;
    }
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

int gate_reports_register(struct cg_httpd *httpd, struct cg_gate *g)
{
    if (cg_httpd_route(httpd, "/reports/events.json", CG_HTTP_GET, handle_events_json, g) != 0 ||
        cg_httpd_route(httpd, "/reports/events.csv", CG_HTTP_GET, handle_events_csv, g) != 0)
        return -1;
    return 0;
}
