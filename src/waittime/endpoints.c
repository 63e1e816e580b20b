/*
 * endpoints.c - the wait-time service's HTTP side: /get-queue-times (the
 * seed's answer), /wait-times (every queue, one by SID, one by name), the
 * read token, Cache-Control and ETags with If-None-Match, and the hold
 * TwiML for callers waiting for a TaskQueue. Everything is answered from
 * the in-memory snapshot, synchronously: no Redis, no network.
 */
#include "base/fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/crypto.h"
#include "base/err.h"
#include "base/form.h"
#include "net/httpd.h"
#include "twilio/twiml.h"
#include "waittime/internal.h"

/* Strips blanks and a W/ prefix: If-None-Match uses the weak comparison. */
static void tag_span(const char *s, size_t n, const char **out, size_t *outlen)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= 2 && s[0] == 'W' && s[1] == '/') {
        s += 2;
        n -= 2;
    }
    *out = s;
    *outlen = n;
}

int cg_wt_etag_matches(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL || etag == NULL)
        return 0;
    const char *want;
    size_t wantlen;
    tag_span(etag, strlen(etag), &want, &wantlen);
    const char *p = if_none_match;
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *t;
        size_t tl;
        tag_span(p, n, &t, &tl);
        if ((tl == 1 && t[0] == '*') || (tl == wantlen && tl > 0 && memcmp(t, want, tl) == 0))
            return 1;
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

/* A parameter from the query string, or for POST from a form body (the
 * seed's Twilio Function read event.queueSid from either). */
static const char *param(struct cg_http_req *req, const struct cg_form *q, const char *name)
{
    const char *v = q ? cg_form_get(q, name) : NULL;
    if (v == NULL && cg_http_req_method(req) == CG_HTTP_POST) {
        const struct cg_form *f = cg_http_req_form(req, NULL);
        v = f ? cg_form_get(f, name) : NULL;
    }
    return v;
}

/* Parses the query and checks WAIT_TIME_READ_TOKEN. On failure the
 * request has been answered and NULL is returned. */
static int read_request(struct cg_waittime *w, struct cg_http_req *req, const struct cg_form **q)
{
    *q = cg_http_req_query(req);
    if (*q == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "malformed query string");
        return 0;
    }
    const char *token = w->cfg->wait_time_read_token;
    if (token == NULL || token[0] == '\0')
        return 1;
    if (cg_ct_streq(cg_http_req_bearer(req), token))
        return 1;
    /* Studio's HTTP widget cannot set headers: ?token= is accepted too. */
    const char *t = param(req, *q, "token");
    if (t != NULL && cg_ct_streq(t, token))
        return 1;
    cg_http_set_header(req, "WWW-Authenticate", "Bearer");
    cg_http_reply_error(req, 401, "unauthorized",
                        "a valid wait-time read token is required (Authorization: Bearer, or "
                        "the token query parameter)");
    return 0;
}

/* 503 when nothing can be served; 1 when a snapshot exists. */
static int have_data(struct cg_waittime *w, struct cg_http_req *req)
{
    if (!w->serving) {
        cg_http_reply_error(req, 503, "poller_off", w->off_reason);
        return 0;
    }
    if (w->snap == NULL) {
        cg_http_set_header(req, "Retry-After", "1");
        cg_http_reply_error(req, 503, "not_ready",
                            "no wait times known yet: the first refresh has not completed");
        return 0;
    }
    return 1;
}

/* Stale when the last refresh could not read it, or when nobody has
 * refreshed for three intervals (the leader died and none took over). */
static int is_stale(const struct cg_waittime *w, const struct cg_wt_record *r, uint64_t now)
{
    return r->stale || now > r->fetched_ms + 3 * (uint64_t)w->poll_ms + 2000;
}

/* Cache-Control, ETag and the freshness headers of a successful answer.
 * Returns 1 when If-None-Match matched and 304 has been sent. */
static int cache_headers(struct cg_waittime *w, struct cg_http_req *req, int stale)
{
    const struct wt_snap *s = w->snap;
    uint64_t now = cg_wall_ms();
    long max_age = 1;
    if (!stale && w->redis_up && s->next_ms > now)
        max_age = (long)((s->next_ms - now + 999) / 1000);
    char v[48];
    snprintf(v, sizeof v, "max-age=%ld", max_age);
    cg_http_set_header(req, "Cache-Control", v);
    cg_http_set_header(req, "ETag", s->etag);
    cg_http_set_header(req, "X-Callgate-Stale", stale ? "true" : "false");
    cg_http_set_header(req, "X-Callgate-Redis", w->redis_up ? "connected" : "unavailable");
    const char *inm = cg_http_req_header(req, "If-None-Match");
    if (inm != NULL && cg_wt_etag_matches(inm, s->etag)) {
        cg_http_reply(req, 304, NULL, NULL, 0);
        return 1;
    }
    return 0;
}

static void reply_sid_error(struct cg_http_req *req, const char *name)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be WQ followed by 32 hex digits", name);
    cg_http_reply_error(req, 400, "bad_request", msg);
}

static void handle_get_queue_times(struct cg_http_req *req, void *arg)
{
    struct cg_waittime *w = arg;
    const struct cg_form *q;
    if (!read_request(w, req, &q))
        return;
    if (!w->serving) {
        cg_http_reply_error(req, 503, "poller_off", w->off_reason);
        return;
    }
    const char *sid = param(req, q, "queueSid");
    if (sid == NULL || !cg_wt_sid_valid(sid)) {
        reply_sid_error(req, "queueSid");
        return;
    }
    if (!have_data(w, req))
        return;
    const struct cg_wt_record *r = wt_snap_find(w->snap, sid);
    if (r == NULL) {
        cg_http_reply_error(req, 404, "not_found", "no such TaskQueue in this workspace");
        return;
    }
    if (cache_headers(w, req, is_stale(w, r, cg_wall_ms())))
        return;
    char body[64];
    int n = cg_wt_seed_answer(r->wait_s, body, sizeof body);
    cg_http_reply(req, 200, "application/json", body, n > 0 ? (size_t)n : 0);
}

static void reply_record(struct cg_waittime *w, struct cg_http_req *req,
                         const struct cg_wt_record *r)
{
    uint64_t now = cg_wall_ms();
    int stale = is_stale(w, r, now);
    if (cache_headers(w, req, stale))
        return;
    struct cg_buf b;
    cg_buf_init(&b, 1 << 16);
    cg_wt_record_json(r, now, stale, &b);
    cg_http_reply_json(req, 200, cg_buf_str(&b));
    cg_buf_free(&b);
}

static void reply_all(struct cg_waittime *w, struct cg_http_req *req)
{
    const struct wt_snap *s = w->snap;
    uint64_t now = cg_wall_ms();
    int any_stale = 0;
    for (size_t i = 0; i < s->n && !any_stale; i++)
        any_stale = is_stale(w, &s->recs[i], now);
    if (cache_headers(w, req, any_stale))
        return;
    struct cg_buf b;
    cg_buf_init(&b, WT_REPLY_MAX);
    char refreshed[25], next[25];
    cg_iso8601_ms(s->refreshed_ms, refreshed);
    cg_iso8601_ms(s->next_ms, next);
    int rc = cg_buf_printf(&b,
                           "{\"version\":%llu,\"refreshedAt\":\"%s\",\"nextRefreshAt\":\"%s\","
                           "\"redis\":\"%s\",\"queues\":[",
                           (unsigned long long)s->version, refreshed, next,
                           w->redis_up ? "connected" : "unavailable");
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        if (i)
            rc = cg_buf_appendc(&b, ',');
        if (rc == 0)
            rc = cg_wt_record_json(&s->recs[i], now, is_stale(w, &s->recs[i], now), &b);
    }
    if (rc == 0)
        rc = cg_buf_appends(&b, "]}");
    if (rc != 0)
        cg_http_reply_error(req, 500, "too_large", "the answer exceeds the response limit");
    else
        cg_http_reply(req, 200, "application/json", b.data, b.len);
    cg_buf_free(&b);
}

int cg_waittime_queues_json(struct cg_waittime *w, struct cg_buf *out)
{
    if (w == NULL || !w->serving)
        return 1;
    const struct wt_snap *s = w->snap;
    uint64_t now = cg_wall_ms();
    int rc = cg_buf_appendc(out, '[');
    for (size_t i = 0; s != NULL && i < s->n && rc == 0; i++) {
        if (i)
            rc = cg_buf_appendc(out, ',');
        if (rc == 0)
            rc = cg_wt_record_json(&s->recs[i], now, is_stale(w, &s->recs[i], now), out);
    }
    return rc == 0 ? cg_buf_appendc(out, ']') : -1;
}

static void handle_wait_times(struct cg_http_req *req, void *arg)
{
    struct cg_waittime *w = arg;
    const struct cg_form *q;
    if (!read_request(w, req, &q))
        return;
    const char *rest = cg_http_req_path_rest(req);
    const char *name = cg_form_get(q, "name");
    if (rest[0] != '\0') {
        if (!cg_wt_sid_valid(rest)) {
            reply_sid_error(req, "the TaskQueue SID in the path");
            return;
        }
        if (!have_data(w, req))
            return;
        const struct cg_wt_record *r = wt_snap_find(w->snap, rest);
        if (r == NULL)
            cg_http_reply_error(req, 404, "not_found", "no such TaskQueue in this workspace");
        else
            reply_record(w, req, r);
        return;
    }
    if (name != NULL) {
        if (name[0] == '\0' || strlen(name) > CG_WT_MAX_NAME) {
            cg_http_reply_error(req, 400, "bad_request", "name must be 1 to 256 bytes");
            return;
        }
        if (!have_data(w, req))
            return;
        const struct cg_wt_record *r = wt_snap_find_name(w->snap, name);
        if (r == NULL)
            cg_http_reply_error(req, 404, "not_found", "no TaskQueue with this friendly name");
        else
            reply_record(w, req, r);
        return;
    }
    if (!have_data(w, req))
        return;
    reply_all(w, req);
}

char *cg_waittime_hold_twiml(struct cg_waittime *w, const char *queue_sid, double *estimate_out)
{
    if (w == NULL || queue_sid == NULL || !cg_wt_sid_valid(queue_sid))
        return NULL;
    const struct cg_wt_record *r = wt_snap_find(w->snap, queue_sid);
    if (r == NULL)
        return NULL;
    char phrase[96], say[160];
    cg_twiml_wait_phrase(r->estimate_s, phrase, sizeof phrase);
    snprintf(say, sizeof say, "Your estimated wait time is %s.", phrase);
    struct cg_twiml_wait tw = {
        .say = say,
        .hold_music_url = w->cfg->hold_music_url,
        .pause_s = w->cfg->announce_interval_seconds,
    };
    if (estimate_out)
        *estimate_out = r->estimate_s;
    return cg_twiml_wait(&tw);
}

int wt_routes_register(struct cg_waittime *w, struct cg_httpd *httpd, char *err, size_t errlen)
{
    static const struct {
        const char *path;
        unsigned methods;
        cg_http_handler fn;
    } routes[] = {
        {"/get-queue-times", CG_HTTP_GET | CG_HTTP_POST, handle_get_queue_times},
        {"/wait-times", CG_HTTP_GET, handle_wait_times},
        {"/wait-times/*", CG_HTTP_GET, handle_wait_times},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (cg_httpd_route(httpd, routes[i].path, routes[i].methods, routes[i].fn, w) != 0) {
            cg_err_set(err, errlen, "cannot register %s", routes[i].path);
            return -1;
        }
    }
    return 0;
}
