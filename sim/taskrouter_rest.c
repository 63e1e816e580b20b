/*
 * taskrouter_rest.c - the HTTP resources of TaskRouter v1 over the model
 * (see taskrouter.h for the list): routing, HTTP Basic auth, v1 `meta`
 * paging with absolute URLs, the token buckets and X-Rate-Limit-*
 * headers, injected 429s and latency, and the failing statistics page.
 */
#include "base/fmacros.h"

#include "taskrouter_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crypto.h"
#include "base/form.h"
#include "base/log.h"
#include "net/httpd.h"
#include "rng.h"
#include "scenario.h"
#include "sim.h"
#include "twilio/signature.h"

const char *const sim_tr_ep_names[EP_COUNT] = {
    "task_queues_list", "task_queue_fetch", "statistics_list", "statistics_fetch",
    "realtime_fetch",   "cumulative_fetch", "workspace_fetch", "unknown"};

/* X-Rate-Limit-Config: the resource key, as in the Event Streams example
 * ("TaskQueueStatistics-List"). The real key names are unconfirmed. */
static const char *const ep_config[EP_COUNT] = {"TaskQueue-List",
                                                "TaskQueue-Fetch",
                                                "TaskQueueStatistics-List",
                                                "TaskQueueStatistics-Fetch",
                                                "TaskQueueRealTimeStatistics-Fetch",
                                                "TaskQueueCumulativeStatistics-Fetch",
                                                "Workspace-Fetch",
                                                "TaskRouter"};

/* ---- errors ---- */

static void not_found(struct cg_http_req *req)
{
    /* v1 products name the path without the version (twilio-wire.md §2). */
    const char *path = cg_http_req_path(req);
    if (strncmp(path, "/v1/", 4) == 0)
        path += 3;
    char msg[600];
    snprintf(msg, sizeof(msg), "The requested resource %.500s was not found", path);
    sim_api_error(req, 404, CODE_NOT_FOUND, msg);
}

/* ---- auth ---- */

static void b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 <= outlen; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

/* HTTP Basic with the account SID and auth token. The expected header is
 * encoded and compared, rather than the offered one decoded: clients all
 * send canonical Base64. */
static int authorized(const struct sim_taskrouter *tr, struct cg_http_req *req)
{
    const char *h = sim_api_basic_credentials(req);
    const struct sim_scenario *sc = tr->sc;
    if (!h || !sc->twilio_account_sid || !sc->twilio_auth_token)
        return 0;
    char cred[1100], want[1500];
    int n = snprintf(cred, sizeof(cred), "%s:%s", sc->twilio_account_sid, sc->twilio_auth_token);
    if (n < 0 || (size_t)n >= sizeof(cred))
        return 0;
    b64_encode((const unsigned char *)cred, (size_t)n, want, sizeof(want));
    return cg_ct_streq(h, want);
}

/* PageSize, Page and a token naming a TaskQueue (WQ...); replies 400 and
 * returns -1 when one is invalid. */
static int parse_paging(struct sim_taskrouter *tr, struct cg_http_req *req, const struct cg_form *f,
                        struct sim_paging *pg)
{
    if (sim_paging_parse(req, f, "WQ", pg) < 0)
        return -1;
    /* "Don't use the page query parameter with this resource. Pagination
     * isn't supported" (twilio-wire.md §6): without a token, Page does not
     * move the page, it is only echoed. */
    if (pg->has_page && pg->page > 0 && !pg->token)
        sim_tr_count(tr, "taskrouter.page_without_token");
    return 0;
}

/* Places the page over the listed queues idx[0..n); -1 (after replying
 * 21481) when the token names a queue that is not in the list. */
static int paging_place(struct sim_taskrouter *tr, struct cg_http_req *req, const size_t *idx,
                        size_t n, struct sim_paging *pg)
{
    size_t start = 0;
    if (pg->token) {
        size_t i = 0;
        while (i < n && memcmp(tr->q[idx[i]].sid, pg->token + 2, 34) != 0)
            i++;
        if (i == n) {
            sim_api_error(req, 400, CODE_BAD_TOKEN, "Invalid PageToken");
            return -1;
        }
        start = sim_paging_token_start(pg, i);
    }
    sim_paging_set(pg, start, n);
    if (!pg->has_page)
        pg->page = (long)(start / (size_t)pg->size);
    return 0;
}

/* ---- URLs ---- */

/* Absolute URLs point back at the simulator: from the Host the client
 * used, or the server's own address. */
static void base_url(const struct sim_taskrouter *tr, struct cg_http_req *req, char *out,
                     size_t outlen)
{
    const char *host = cg_http_req_header(req, "Host");
    int ok = host && *host && strlen(host) <= 255;
    for (const char *p = host; ok && *p; p++) {
        char c = *p;
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
    }
    if (ok)
        snprintf(out, outlen, "http://%s", host);
    else
        snprintf(out, outlen, "http://127.0.0.1:%d",
                 tr->w->httpd ? cg_httpd_port(tr->w->httpd) : 0);
}

static void add_param(struct cg_buf *u, int *first, const char *k, const char *v)
{
    cg_buf_appendc(u, *first ? '?' : '&');
    *first = 0;
    cg_buf_appends(u, k);
    cg_buf_appendc(u, '=');
    char *enc = cg_pct_encode(v, strlen(v));
    cg_buf_appends(u, enc);
    free(enc);
}

/* A page's URL: the list URL, the request's filters (in the spec
 * examples' order), PageSize, Page and an optional token. */
static void page_url(struct cg_buf *u, const char *list_url, const struct cg_form *f,
                     const char *const *carry, long size, long page, char tok, const char *sid)
{
    cg_buf_reset(u);
    cg_buf_appends(u, list_url);
    int first = 1;
    for (; *carry; carry++) {
        const char *v = cg_form_get(f, *carry);
        if (v)
            add_param(u, &first, *carry, v);
    }
    char n[24];
    snprintf(n, sizeof(n), "%ld", size);
    add_param(u, &first, "PageSize", n);
    snprintf(n, sizeof(n), "%ld", page);
    add_param(u, &first, "Page", n);
    if (tok && sid) {
        char t[40];
        snprintf(t, sizeof(t), "P%c%s", tok, sid);
        add_param(u, &first, "PageToken", t);
    }
}

/* {"meta":{...},"<key>":[ */
static void envelope_open(struct sim_taskrouter *tr, struct cg_buf *b, const char *list_url,
                          const struct cg_form *f, const char *const *carry,
                          const struct sim_paging *pg, const size_t *idx, size_t n, const char *key)
{
    struct cg_buf u;
    cg_buf_init(&u, CG_BUF_UNBOUNDED);
    cg_buf_appendc(b, '{');
    struct sim_jw top = {b, 1};
    struct sim_jw m = sim_jw_open(&top, "meta", '{');
    page_url(&u, list_url, f, carry, pg->size, 0, 0, NULL);
    sim_jw_str(&m, "first_page_url", cg_buf_str(&u));
    sim_jw_str(&m, "key", key);
    if (pg->start + pg->count < n && pg->count > 0) {
        page_url(&u, list_url, f, carry, pg->size, pg->page + 1, 'A',
                 tr->q[idx[pg->start + pg->count - 1]].sid);
        sim_jw_str(&m, "next_page_url", cg_buf_str(&u));
    } else {
        sim_jw_str(&m, "next_page_url", NULL);
    }
    sim_jw_long(&m, "page", pg->page);
    sim_jw_long(&m, "page_size", pg->size);
    if (pg->start > 0 && pg->count > 0) {
        page_url(&u, list_url, f, carry, pg->size, pg->page > 0 ? pg->page - 1 : 0, 'B',
                 tr->q[idx[pg->start]].sid);
        sim_jw_str(&m, "previous_page_url", cg_buf_str(&u));
    } else {
        sim_jw_str(&m, "previous_page_url", NULL);
    }
    page_url(&u, list_url, f, carry, pg->size, pg->page, pg->token ? pg->token[1] : 0,
             pg->token ? pg->token + 2 : NULL);
    sim_jw_str(&m, "url", cg_buf_str(&u));
    sim_jw_close(&m, '}');
    sim_jw_key(&top, key);
    cg_buf_appendc(b, '[');
    cg_buf_free(&u);
}

/* ---- resources ---- */

static void queue_json(struct sim_taskrouter *tr, const char *ws_url, size_t qi, struct cg_buf *b)
{
    const struct tq *q = &tr->q[qi];
    const char *acct = tr->sc->twilio_account_sid;
    char u[512];
    struct sim_jw j = {b, 1};
    cg_buf_appendc(b, '{');
    sim_jw_str(&j, "account_sid", acct);
    sim_jw_str(&j, "assignment_activity_name", tr->act[ACT_BUSY].name);
    sim_jw_str(&j, "assignment_activity_sid", tr->act[ACT_BUSY].sid);
    sim_tr_jw_date(&j, "date_created", sim_tr_wall_ms_at(tr, tr->created_rel));
    sim_tr_jw_date(&j, "date_updated", sim_tr_wall_ms_at(tr, tr->created_rel));
    sim_jw_str(&j, "friendly_name", q->name);
    sim_jw_long(&j, "max_reserved_workers", 1);
    struct sim_jw l = sim_jw_open(&j, "links", '{');
    snprintf(u, sizeof(u), "%s/Activities/%s", ws_url, tr->act[ACT_BUSY].sid);
    sim_jw_str(&l, "assignment_activity", u);
    snprintf(u, sizeof(u), "%s/Activities/%s", ws_url, tr->act[ACT_RESERVED].sid);
    sim_jw_str(&l, "reservation_activity", u);
    sim_jw_str(&l, "workspace", ws_url);
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/Statistics", ws_url, q->sid);
    sim_jw_str(&l, "statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/RealTimeStatistics", ws_url, q->sid);
    sim_jw_str(&l, "real_time_statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/CumulativeStatistics", ws_url, q->sid);
    sim_jw_str(&l, "cumulative_statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/Statistics", ws_url);
    sim_jw_str(&l, "list_statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/RealTimeStatistics", ws_url);
    sim_jw_str(&l, "bulk_real_time_statistics", u);
    sim_jw_close(&l, '}');
    sim_jw_str(&j, "reservation_activity_name", tr->act[ACT_RESERVED].name);
    sim_jw_str(&j, "reservation_activity_sid", tr->act[ACT_RESERVED].sid);
    sim_jw_str(&j, "sid", q->sid);
    sim_jw_str(&j, "target_workers", NULL);
    sim_jw_str(&j, "task_order", "FIFO");
    snprintf(u, sizeof(u), "%s/TaskQueues/%s", ws_url, q->sid);
    sim_jw_str(&j, "url", u);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    cg_buf_appendc(b, '}');
}

/* Queue indices matching FriendlyName (all when absent); malloc'd. */
static size_t *select_queues(const struct sim_taskrouter *tr, const char *name, size_t *n)
{
    size_t *idx = cg_malloc((tr->nq ? tr->nq : 1) * sizeof(*idx));
    size_t k = 0;
    for (size_t i = 0; i < tr->nq; i++)
        if (!name || strcmp(tr->q[i].name, name) == 0)
            idx[k++] = i;
    *n = k;
    return idx;
}

static void queues_list(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                        const struct cg_form *f)
{
    static const char *const carry[] = {"EvaluateWorkerAttributes", "FriendlyName", "WorkerSid",
                                        "Ordering", NULL};
    struct sim_paging pg;
    if (parse_paging(tr, req, f, &pg) < 0)
        return;
    size_t n = 0;
    size_t *idx = select_queues(tr, cg_form_get(f, "FriendlyName"), &n);
    /* Simulated workers have no SIDs, so no queue lists one of them. */
    if (cg_form_get(f, "WorkerSid"))
        n = 0;
    if (paging_place(tr, req, idx, n, &pg) < 0) {
        free(idx);
        return;
    }
    char list_url[448];
    snprintf(list_url, sizeof(list_url), "%s/TaskQueues", ws_url);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_open(tr, &b, list_url, f, carry, &pg, idx, n, "task_queues");
    for (size_t i = 0; i < pg.count; i++) {
        if (i)
            cg_buf_appendc(&b, ',');
        queue_json(tr, ws_url, idx[pg.start + i], &b);
    }
    cg_buf_appends(&b, "]}");
    free(idx);
    sim_api_reply_buf(req, 200, &b);
}

static void stats_list(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                       const struct cg_form *f, double now)
{
    static const char *const carry[] = {"FriendlyName", "StartDate",       "EndDate", "Minutes",
                                        "TaskChannel",  "SplitByWaitTime", NULL};
    struct sim_paging pg;
    struct window win;
    if (parse_paging(tr, req, f, &pg) < 0 || sim_tr_parse_window(tr, req, f, now, &win) < 0)
        return;
    size_t n = 0;
    size_t *idx = select_queues(tr, cg_form_get(f, "FriendlyName"), &n);
    if (paging_place(tr, req, idx, n, &pg) < 0) {
        free(idx);
        return;
    }
    int failing =
        tr->sc->tr_fail_page >= 0 && pg.start / (size_t)pg.size == (size_t)tr->sc->tr_fail_page;
    if (failing && !tr->sc->tr_fail_garbage) {
        free(idx);
        tr->failed_pages++;
        sim_tr_count(tr, "taskrouter.fail_page");
        sim_api_error(req, 500, 20500, "Internal Server Error");
        return;
    }
    char list_url[448];
    snprintf(list_url, sizeof(list_url), "%s/TaskQueues/Statistics", ws_url);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_open(tr, &b, list_url, f, carry, &pg, idx, n, "task_queues_statistics");
    int truncated = 0;
    for (size_t i = 0; i < pg.count; i++) {
        size_t qi = idx[pg.start + i];
        if (i)
            cg_buf_appendc(&b, ',');
        cg_buf_appendc(&b, '{');
        struct sim_jw j = {&b, 1};
        sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
        sim_tr_cumulative_member(tr, &j, qi, &win, &truncated);
        sim_tr_realtime_member(tr, &j, qi, now);
        sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
        sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
        cg_buf_appendc(&b, '}');
    }
    cg_buf_appends(&b, "]}");
    free(idx);
    if (truncated)
        sim_tr_count(tr, "taskrouter.history_truncated");
    if (failing) {
        /* A body cut in the middle, with a 200: what a proxy dropping the
         * connection mid-transfer looks like to the client. */
        tr->failed_pages++;
        sim_tr_count(tr, "taskrouter.fail_page");
        size_t cut = b.len / 2 ? b.len / 2 : b.len;
        cg_http_reply(req, 200, "application/json", cg_buf_str(&b), cut);
        cg_buf_free(&b);
        return;
    }
    sim_api_reply_buf(req, 200, &b);
}

static void stats_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                        const struct cg_form *f, size_t qi, double now)
{
    struct window win;
    if (sim_tr_parse_window(tr, req, f, now, &win) < 0)
        return;
    char u[512];
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/Statistics", ws_url, tr->q[qi].sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&b, '{');
    struct sim_jw j = {&b, 1};
    int truncated = 0;
    sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
    sim_jw_str(&j, "url", u);
    sim_tr_cumulative_member(tr, &j, qi, &win, &truncated);
    sim_tr_realtime_member(tr, &j, qi, now);
    sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    cg_buf_appendc(&b, '}');
    if (truncated)
        sim_tr_count(tr, "taskrouter.history_truncated");
    sim_api_reply_buf(req, 200, &b);
}

/* RealTimeStatistics: the keys in the order of the spec's example. */
static void realtime_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                           const struct cg_form *f, size_t qi, double now)
{
    const char *ch = cg_form_get(f, "TaskChannel");
    if (ch && (!*ch || strlen(ch) > 64)) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Invalid TaskChannel");
        return;
    }
    struct rt r;
    sim_tr_realtime(tr, qi, now, &r);
    char u[512];
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/RealTimeStatistics", ws_url, tr->q[qi].sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&b, '{');
    struct sim_jw j = {&b, 1};
    sim_jw_long(&j, "longest_task_waiting_age", r.age);
    sim_jw_str(&j, "longest_task_waiting_sid", r.has_sid ? r.sid : NULL);
    sim_jw_long(&j, "longest_relative_task_age_in_queue", r.age);
    sim_jw_str(&j, "longest_relative_task_sid_in_queue", r.has_sid ? r.sid : NULL);
    sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
    struct sim_jw st = sim_jw_open(&j, "tasks_by_status", '{');
    sim_jw_long(&st, "reserved", 0);
    sim_jw_long(&st, "pending", r.pending);
    sim_jw_long(&st, "assigned", r.busy);
    sim_jw_long(&st, "wrapping", 0);
    sim_jw_close(&st, '}');
    sim_jw_long(&j, "total_eligible_workers", r.eligible);
    static const int order[ACT_COUNT] = {ACT_IDLE, ACT_BUSY, ACT_OFFLINE, ACT_RESERVED};
    struct sim_jw acts = sim_jw_open(&j, "activity_statistics", '[');
    for (int k = 0; k < ACT_COUNT; k++) {
        int a = order[k];
        if (k)
            cg_buf_appendc(&b, ',');
        cg_buf_appendc(&b, '{');
        struct sim_jw e = {&b, 1};
        sim_jw_str(&e, "friendly_name", tr->act[a].name);
        sim_jw_long(&e, "workers", sim_tr_act_workers(&r, a));
        sim_jw_str(&e, "sid", tr->act[a].sid);
        cg_buf_appendc(&b, '}');
    }
    sim_jw_close(&acts, ']');
    struct sim_jw prio = sim_jw_open(&j, "tasks_by_priority", '{');
    sim_jw_close(&prio, '}');
    sim_jw_long(&j, "total_tasks", r.pending + r.busy);
    sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    sim_jw_long(&j, "total_available_workers", r.available);
    sim_jw_str(&j, "url", u);
    cg_buf_appendc(&b, '}');
    sim_api_reply_buf(req, 200, &b);
}

/* CumulativeStatistics: the keys in the order of the spec's example; the
 * wait durations always (the example has them). */
static void cumulative_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                             const struct cg_form *f, size_t qi, double now)
{
    struct window win;
    if (sim_tr_parse_window(tr, req, f, now, &win) < 0)
        return;
    struct cum c;
    if (sim_tr_cumulative(tr, qi, &win, &c))
        sim_tr_count(tr, "taskrouter.history_truncated");
    char u[512];
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/CumulativeStatistics", ws_url, tr->q[qi].sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&b, '{');
    struct sim_jw j = {&b, 1};
    sim_jw_long(&j, "reservations_created", c.accepted);
    sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
    sim_jw_long(&j, "reservations_rejected", 0);
    sim_jw_long(&j, "tasks_completed", c.completed);
    sim_tr_jw_date(&j, "end_time", sim_tr_wall_ms_at(tr, win.to));
    sim_jw_long(&j, "tasks_entered", c.entered);
    sim_jw_long(&j, "tasks_canceled", c.canceled);
    sim_jw_long(&j, "reservations_accepted", c.accepted);
    sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
    sim_jw_long(&j, "reservations_timed_out", 0);
    sim_jw_str(&j, "url", u);
    sim_tr_waits_json(&j, "wait_duration_until_canceled", &c.can);
    sim_tr_waits_json(&j, "wait_duration_until_accepted", &c.acc);
    sim_tr_waits_json(&j, "wait_duration_in_queue_until_accepted", &c.acc);
    sim_tr_split_json(&j, &win, &c);
    sim_tr_jw_date(&j, "start_time", sim_tr_wall_ms_at(tr, win.from));
    sim_jw_long(&j, "tasks_moved", 0);
    sim_jw_long(&j, "reservations_canceled", 0);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    sim_jw_long(&j, "tasks_deleted", 0);
    sim_jw_long(&j, "reservations_rescinded", 0);
    sim_tr_jw_real(&j, "avg_task_acceptance_time", sim_tr_avg_acceptance(&c));
    cg_buf_appendc(&b, '}');
    sim_api_reply_buf(req, 200, &b);
}

static void queue_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                        size_t qi)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    queue_json(tr, ws_url, qi, &b);
    sim_api_reply_buf(req, 200, &b);
}

/* GET /v1/Workspaces/{WS} (OAI taskrouter.v1.workspace, members in the
 * order of its example); what `callgate doctor` reads. */
static void workspace_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url)
{
    static const char *const links[][2] = {
        {"activities", "Activities"},
        {"statistics", "Statistics"},
        {"real_time_statistics", "RealTimeStatistics"},
        {"cumulative_statistics", "CumulativeStatistics"},
        {"task_queues", "TaskQueues"},
        {"tasks", "Tasks"},
        {"workers", "Workers"},
        {"workflows", "Workflows"},
        {"task_channels", "TaskChannels"},
        {"events", "Events"},
    };
    char u[512];
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    struct sim_jw j = {&b, 1};
    cg_buf_appendc(&b, '{');
    sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
    sim_tr_jw_date(&j, "date_created", sim_tr_wall_ms_at(tr, tr->created_rel));
    sim_tr_jw_date(&j, "date_updated", sim_tr_wall_ms_at(tr, tr->created_rel));
    sim_jw_str(&j, "default_activity_name", tr->act[ACT_OFFLINE].name);
    sim_jw_str(&j, "default_activity_sid", tr->act[ACT_OFFLINE].sid);
    sim_jw_str(&j, "event_callback_url", "");
    sim_jw_str(&j, "events_filter", NULL);
    sim_jw_str(&j, "friendly_name", "callgate-sim");
    struct sim_jw l = sim_jw_open(&j, "links", '{');
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(u, sizeof(u), "%s/%s", ws_url, links[i][1]);
        sim_jw_str(&l, links[i][0], u);
    }
    sim_jw_close(&l, '}');
    sim_jw_key(&j, "multi_task_enabled");
    cg_buf_appends(&b, "false");
    sim_jw_str(&j, "prioritize_queue_order", "FIFO");
    sim_jw_str(&j, "sid", tr->sc->tr_workspace_sid);
    sim_jw_str(&j, "timeout_activity_name", tr->act[ACT_OFFLINE].name);
    sim_jw_str(&j, "timeout_activity_sid", tr->act[ACT_OFFLINE].sid);
    sim_jw_str(&j, "url", ws_url);
    cg_buf_appendc(&b, '}');
    sim_api_reply_buf(req, 200, &b);
}

/* ---- routing ---- */

/* Which resource a request names; info->status 404 or 405 when it names
 * none or the method is wrong. */
static void classify(const struct sim_taskrouter *tr, struct cg_http_req *req, struct reqinfo *info)
{
    info->ep = EP_UNKNOWN;
    info->qi = -1;
    info->status = 404;
    char buf[512];
    char *seg[MAX_SEGS];
    long nseg = sim_api_split_path(cg_http_req_path_rest(req), buf, sizeof(buf), seg, MAX_SEGS);
    if (nseg < 0)
        return;
    size_t n = (size_t)nseg;
    if (strcmp(seg[0], tr->sc->tr_workspace_sid) != 0)
        return;
    if (n == 1) {
        info->ep = EP_WORKSPACE_FETCH;
    } else if (strcmp(seg[1], "TaskQueues") != 0) {
        return;
    } else if (n == 2) {
        info->ep = EP_QUEUES_LIST;
    } else if (n == 3 && strcmp(seg[2], "Statistics") == 0) {
        info->ep = EP_STATS_LIST;
    } else {
        info->qi = sim_taskrouter_queue_index(tr, seg[2]);
        if (info->qi < 0)
            return;
        if (n == 3)
            info->ep = EP_QUEUE_FETCH;
        else if (n == 4 && strcmp(seg[3], "Statistics") == 0)
            info->ep = EP_STATS_FETCH;
        else if (n == 4 && strcmp(seg[3], "RealTimeStatistics") == 0)
            info->ep = EP_RT_FETCH;
        else if (n == 4 && strcmp(seg[3], "CumulativeStatistics") == 0)
            info->ep = EP_CUM_FETCH;
        else
            return;
    }
    enum cg_http_method m = cg_http_req_method(req);
    /* Only the read side is simulated: creating or changing queues is not
     * something the gate does. */
    info->status = (m == CG_HTTP_GET || m == CG_HTTP_HEAD) ? 0 : 405;
}

static void rate_headers(struct cg_http_req *req, const struct reqinfo *info)
{
    char v[32];
    snprintf(v, sizeof(v), "%ld", info->limit);
    cg_http_set_header(req, "X-Rate-Limit-Limit", v);
    snprintf(v, sizeof(v), "%ld", info->remaining);
    cg_http_set_header(req, "X-Rate-Limit-Remaining", v);
    cg_http_set_header(req, "X-Rate-Limit-Config", ep_config[info->ep]);
}

static void serve(struct sim_taskrouter *tr, struct cg_http_req *req, const struct reqinfo *info)
{
    /* The model answers as of now: a request held back by latency sees
     * the state when its answer leaves. */
    double now = sim_taskrouter_now(tr);
    rate_headers(req, info);
    const struct cg_form *f = NULL;
    if (info->status == 0 && (f = cg_http_req_query(req)) == NULL) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Invalid query string");
    } else if (info->status == 404) {
        not_found(req);
    } else if (info->status == 405) {
        sim_api_error(req, 405, CODE_METHOD, "Method not allowed");
    } else if (info->status == 429) {
        tr->sent_429++;
        sim_tr_count(tr, "taskrouter.429");
        cg_http_set_header(req, "Retry-After", "1");
        sim_api_error(req, 429, 20429, "Too Many Requests");
    } else {
        char base[300], ws_url[400];
        base_url(tr, req, base, sizeof(base));
        snprintf(ws_url, sizeof(ws_url), "%s" API_ROOT "%s", base, tr->sc->tr_workspace_sid);
        size_t qi = info->qi >= 0 ? (size_t)info->qi : 0;
        switch (info->ep) {
        case EP_QUEUES_LIST:
            queues_list(tr, req, ws_url, f);
            break;
        case EP_QUEUE_FETCH:
            queue_fetch(tr, req, ws_url, qi);
            break;
        case EP_STATS_LIST:
            stats_list(tr, req, ws_url, f, now);
            break;
        case EP_STATS_FETCH:
            stats_fetch(tr, req, ws_url, f, qi, now);
            break;
        case EP_RT_FETCH:
            realtime_fetch(tr, req, ws_url, f, qi, now);
            break;
        case EP_CUM_FETCH:
            cumulative_fetch(tr, req, ws_url, f, qi, now);
            break;
        case EP_WORKSPACE_FETCH:
            workspace_fetch(tr, req, ws_url);
            break;
        case EP_UNKNOWN:
        case EP_COUNT:
        default:
            not_found(req);
            break;
        }
    }
    tr->inflight--;
}

static void pending_unlink(struct pending *p)
{
    cg_list_remove(&p->link);
}

static void on_delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    pending_unlink(p);
    struct sim_taskrouter *tr = p->tr;
    struct cg_http_req *req = p->req;
    struct reqinfo info = p->info;
    event_free(p->ev);
    free(p);
    serve(tr, req, &info);
}

static int bucket_take(struct bucket *b, double now, double rate)
{
    double burst = rate < 1 ? 1 : rate;
    if (!b->started) {
        b->tokens = burst;
        b->last = now;
        b->started = 1;
    }
    if (now > b->last) {
        b->tokens += (now - b->last) * rate;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last = now;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 1;
    }
    return 0;
}

static void on_request(struct cg_http_req *req, void *arg)
{
    struct sim_taskrouter *tr = arg;
    double now = sim_taskrouter_now(tr);
    const struct sim_scenario *sc = tr->sc;
    if (++tr->inflight > tr->max_inflight)
        tr->max_inflight = tr->inflight;
    struct reqinfo info = {.ep = EP_UNKNOWN, .qi = -1};
    info.limit = (long)ceil(sc->tr_rate_limit_per_s);
    if (!authorized(tr, req)) {
        tr->unauthorized++;
        sim_tr_count(tr, "taskrouter.401");
        info.remaining = tr->bucket.started ? (long)floor(tr->bucket.tokens) : info.limit;
        rate_headers(req, &info);
        sim_api_unauthorized(req);
        tr->inflight--;
        return;
    }
    classify(tr, req, &info);
    tr->requests[info.ep]++;
    char name[64];
    snprintf(name, sizeof(name), "taskrouter.%s", sim_tr_ep_names[info.ep]);
    sim_tr_count(tr, name);
    /* Both draws happen for every request, so one fault's rate does not
     * shift the other's stream. */
    int inject = sim_rng_chance(tr->fault_rng, sc->tr_rate_429);
    double delay =
        sc->tr_latency.kind != SIM_DIST_NONE ? sim_rng_draw(tr->fault_rng, &sc->tr_latency) : 0;
    if (!bucket_take(&tr->bucket, now, sc->tr_rate_limit_per_s)) {
        tr->rate_limited++;
        info.status = 429;
    } else if (info.ep == EP_QUEUES_LIST && info.status == 0) {
        const struct cg_form *f = cg_http_req_query(req);
        if (f && cg_form_get(f, "EvaluateWorkerAttributes") &&
            !bucket_take(&tr->eval_bucket, now, EVAL_ATTR_RPS)) {
            tr->rate_limited++;
            info.status = 429;
        }
    }
    if (info.status != 429 && inject) {
        tr->injected_429++;
        info.status = 429;
    }
    info.remaining = (long)floor(tr->bucket.tokens);
    if (!(delay > 0)) {
        serve(tr, req, &info);
        return;
    }
    struct pending *p = cg_calloc(1, sizeof(*p));
    p->tr = tr;
    p->req = req;
    p->info = info;
    p->ev = evtimer_new(tr->w->base, on_delayed, p);
    if (!p->ev) {
        free(p);
        serve(tr, req, &info);
        return;
    }
    cg_list_push_front(&tr->held, &p->link);
    if (sim_api_hold_timer(p->ev, delay, MAX_LATENCY_S) != 0) {
        pending_unlink(p);
        event_free(p->ev);
        free(p);
        serve(tr, req, &info);
    }
}

int sim_tr_rest_init(struct sim_taskrouter *tr)
{
    unsigned methods = CG_HTTP_GET | CG_HTTP_POST | CG_HTTP_DELETE | CG_HTTP_PUT | CG_HTTP_PATCH;
    if (cg_httpd_route(tr->w->httpd, API_ROOT "*", methods, on_request, tr) < 0) {
        cg_log_error("sim taskrouter: cannot register the routes", "");
        return -1;
    }
    return 0;
}

void sim_tr_rest_shutdown(struct sim_taskrouter *tr)
{
    struct cg_list *it;
    while ((it = cg_list_first(&tr->held)) != NULL) {
        struct pending *p = cg_list_entry(it, struct pending, link);
        pending_unlink(p);
        event_free(p->ev);
        sim_api_error(p->req, 503, 20503, "Service Unavailable");
        tr->inflight--;
        free(p);
    }
}
