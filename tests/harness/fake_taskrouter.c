/*
 * fake_taskrouter.c - the fake TaskRouter of fake_taskrouter.h, served by
 * the fakesrv.h scaffolding; the test thread touches the shared state under
 * the mutex only.
 */
#include "base/fmacros.h"

#include "fake_taskrouter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "fakesrv.h"
#include "harness.h"

#define OVERRIDES 16

struct cgt_tr {
    struct cgt_srv *srv;
    pthread_mutex_t mu;
    const char *url; /* the server's */
    char *account_sid;
    char *workspace_sid;
    char *basic;

    /* Everything below is behind mu. */
    int nqueues;
    int gen;
    int has_override[OVERRIDES];
    struct cgt_tr_stats override[OVERRIDES];
    int rate429;
    int retry_after;
    int bad_page;
    enum cgt_tr_bad bad_how;
    long rl_limit, rl_remaining;
    int delay_ms;
    struct cgt_tr_counts counts;
};

static void lock(struct cgt_tr *t)
{
    pthread_mutex_lock(&t->mu);
}

static void unlock(struct cgt_tr *t)
{
    pthread_mutex_unlock(&t->mu);
}

void cgt_tr_sid(int i, char out[35])
{
    snprintf(out, 35, "WQ%032x", (unsigned)i + 1);
}

void cgt_tr_name(int i, char *out, size_t n)
{
    if (i == 0)
        snprintf(out, n, "Sales & Support");
    else
        snprintf(out, n, "Queue %d", i);
}

/* Figures of queue i (under mu). Some queues lack the wait field (the seed
 * figure then falls back to the acceptance time), some averages end in .5
 * (rounding), some are 0.0. */
static void stats_of(const struct cgt_tr *t, int i, struct cgt_tr_stats *s)
{
    if (i >= 0 && i < OVERRIDES && t->has_override[i]) {
        *s = t->override[i];
        return;
    }
    cgt_tr_formula(i, t->gen, s);
}

void cgt_tr_formula(int i, int g, struct cgt_tr_stats *s)
{
    s->has_wait = i % 5 != 0;
    s->wait_avg = (double)(i % 97) + 10.0 * g + (i % 3 == 0 ? 0.5 : 0.25);
    s->accept = (double)(i % 13) * 0.5 + g;
    s->longest = i % 120 + g;
    s->pending = i % 4;
    s->available = i % 3 == 0 ? 0 : 1;
    s->eligible = i % 6 + 1;
}

/* Twilio prints its reals with a fraction ("0.0", "12.5"). */
static void put_real(struct cg_buf *b, double v)
{
    if (v == (double)(long long)v)
        cg_buf_printf(b, "%.1f", v);
    else
        cg_buf_printf(b, "%.2f", v);
}

/* ---- replies ---- */

/* Sends now; the rate-limit headers follow the knobs at that moment.
 * retry_after is unused: the Retry-After knob is read here instead. */
static void send_now(struct evhttp_request *req, int status, const char *body, int retry_after,
                     void *arg)
{
    (void)retry_after;
    struct cgt_tr *t = arg;
    cgt_srv_header(req, "Content-Type", body[0] == '<' ? "text/html" : "application/json");
    lock(t);
    int ra = t->retry_after;
    long lim = t->rl_limit, rem = t->rl_remaining;
    t->counts.in_flight--;
    unlock(t);
    if (status == 429 && ra > 0)
        cgt_srv_header_long(req, "Retry-After", ra);
    if (lim >= 0) {
        cgt_srv_header_long(req, "X-Rate-Limit-Limit", lim);
        cgt_srv_header(req, "X-Rate-Limit-Config", "TaskQueueStatistics-List");
    }
    if (rem >= 0)
        cgt_srv_header_long(req, "X-Rate-Limit-Remaining", rem);
    cgt_srv_send(req, status, body);
}

/* Answers now or after the delay knob; takes body. */
static void answer(struct cgt_tr *t, struct evhttp_request *req, int status, char *body)
{
    lock(t);
    int delay = t->delay_ms;
    unlock(t);
    cgt_srv_answer(t->srv, req, delay, status, body, 0, send_now, t);
}

static char *twilio_error(int status, int code, const char *message)
{
    struct cg_buf b;
    cg_buf_init(&b, 4096);
    cg_buf_printf(&b,
                  "{\"code\":%d,\"message\":\"%s\",\"more_info\":\"https://www.twilio.com/docs/"
                  "errors/%d\",\"status\":%d}",
                  code, message, code, status);
    return cg_buf_take(&b);
}

/* ---- pages ---- */

struct page_req {
    int page_size;
    int page;
};

/* PageSize (default 50, at most 1000), Page and a PageToken that matches it. */
static int parse_paging(const char *query, struct page_req *p)
{
    p->page_size = 50;
    p->page = 0;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q) != 0)
        return -1;
    const char *ps = evhttp_find_header(&q, "PageSize");
    const char *pg = evhttp_find_header(&q, "Page");
    const char *tok = evhttp_find_header(&q, "PageToken");
    int rc = 0;
    if (ps)
        p->page_size = atoi(ps);
    if (pg)
        p->page = atoi(pg);
    if (p->page_size < 1 || p->page_size > 1000 || p->page < 0)
        rc = -1;
    if (p->page > 0) {
        char want[32];
        snprintf(want, sizeof want, "PT%d", p->page);
        if (tok == NULL || strcmp(tok, want) != 0)
            rc = -1;
    }
    evhttp_clear_headers(&q);
    return rc;
}

static void put_meta(struct cgt_tr *t, struct cg_buf *b, const char *resource, const char *key,
                     const struct page_req *p, int more)
{
    char self[512], first[512], next[512];
    snprintf(first, sizeof first, "%s/v1/Workspaces/%s/%s?PageSize=%d&Page=0", t->url,
             t->workspace_sid, resource, p->page_size);
    if (p->page == 0)
        snprintf(self, sizeof self, "%s", first);
    else
        snprintf(self, sizeof self, "%s/v1/Workspaces/%s/%s?PageSize=%d&Page=%d&PageToken=PT%d",
                 t->url, t->workspace_sid, resource, p->page_size, p->page, p->page);
    snprintf(next, sizeof next, "%s/v1/Workspaces/%s/%s?PageSize=%d&Page=%d&PageToken=PT%d", t->url,
             t->workspace_sid, resource, p->page_size, p->page + 1, p->page + 1);
    cg_buf_printf(b,
                  "\"meta\":{\"first_page_url\":\"%s\",\"key\":\"%s\",\"next_page_url\":%s%s%s,"
                  "\"page\":%d,\"page_size\":%d,\"previous_page_url\":null,\"url\":\"%s\"}",
                  first, key, more ? "\"" : "", more ? next : "null", more ? "\"" : "", p->page,
                  p->page_size, self);
}

static void put_stats_item(struct cgt_tr *t, struct cg_buf *b, int i, const struct cgt_tr_stats *s)
{
    char sid[35];
    cgt_tr_sid(i, sid);
    cg_buf_printf(
        b, "{\"account_sid\":\"%s\",\"cumulative\":{\"avg_task_acceptance_time\":", t->account_sid);
    put_real(b, s->accept);
    cg_buf_appends(b, ",\"end_time\":\"2015-08-18T08:46:15Z\",\"reservations_accepted\":0,"
                      "\"reservations_canceled\":0,\"reservations_created\":0,"
                      "\"reservations_rejected\":0,\"reservations_rescinded\":0,"
                      "\"reservations_timed_out\":0,\"start_time\":\"2015-08-18T08:31:15Z\","
                      "\"tasks_canceled\":0,\"tasks_deleted\":0,\"tasks_entered\":0,"
                      "\"tasks_moved\":0");
    if (s->has_wait) {
        cg_buf_appends(b, ",\"wait_duration_in_queue_until_accepted\":{\"avg\":");
        put_real(b, s->wait_avg);
        cg_buf_appends(b, ",\"min\":0,\"max\":0,\"total\":0}");
    }
    cg_buf_printf(b,
                  "},\"realtime\":{\"activity_statistics\":[{\"friendly_name\":\"Offline\","
                  "\"sid\":\"WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"workers\":0},"
                  "{\"friendly_name\":\"Idle\",\"sid\":\"WAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
                  "\"workers\":%ld}],\"longest_task_waiting_age\":%ld,"
                  "\"longest_task_waiting_sid\":\"WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                  "\"tasks_by_status\":{\"assigned\":0,\"pending\":%ld,\"reserved\":0,"
                  "\"wrapping\":0},\"total_available_workers\":%ld,\"total_eligible_workers\":%ld,"
                  "\"total_tasks\":%ld},\"task_queue_sid\":\"%s\",\"workspace_sid\":\"%s\"}",
                  s->available, s->longest, s->pending, s->available, s->eligible, s->pending, sid,
                  t->workspace_sid);
}

static void serve_list(struct cgt_tr *t, struct evhttp_request *req, const char *query, int stats)
{
    struct page_req p;
    if (parse_paging(query, &p) != 0) {
        answer(t, req, 400, twilio_error(400, 20001, "Invalid paging parameters"));
        return;
    }
    lock(t);
    if (p.page_size > t->counts.max_page_size)
        t->counts.max_page_size = p.page_size;
    int n = t->nqueues;
    int bad = stats && p.page == t->bad_page ? (int)t->bad_how : CGT_TR_BAD_NONE;
    unlock(t);
    if (bad == CGT_TR_BAD_HTML) {
        answer(t, req, 200, cg_strdup("<html><body>Service Unavailable</body></html>"));
        return;
    }
    if (bad == CGT_TR_BAD_500) {
        answer(t, req, 500, twilio_error(500, 20500, "Internal Server Error"));
        return;
    }
    if (bad == CGT_TR_BAD_SHAPE) {
        answer(t, req, 200,
               cg_strdup("{\"meta\":{\"key\":\"task_queues_statistics\"},"
                         "\"task_queues_statistics\":{\"oops\":true}}"));
        return;
    }
    long from = (long)p.page * p.page_size;
    long to = from + p.page_size;
    if (to > n)
        to = n;
    int more = to < n;
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&b, '{');
    const char *key = stats ? "task_queues_statistics" : "task_queues";
    put_meta(t, &b, stats ? "TaskQueues/Statistics" : "TaskQueues", key, &p, more);
    cg_buf_printf(&b, ",\"%s\":[", key);
    for (long i = from; i < to; i++) {
        if (i > from)
            cg_buf_appendc(&b, ',');
        if (stats) {
            struct cgt_tr_stats s;
            lock(t);
            stats_of(t, (int)i, &s);
            unlock(t);
            put_stats_item(t, &b, (int)i, &s);
        } else {
            char sid[35], name[64];
            cgt_tr_sid((int)i, sid);
            cgt_tr_name((int)i, name, sizeof name);
            cg_buf_printf(
                &b,
                "{\"account_sid\":\"%s\",\"date_created\":\"2015-08-04T01:31:41Z\","
                "\"friendly_name\":\"%s\",\"max_reserved_workers\":1,\"sid\":\"%s\","
                "\"target_workers\":null,\"task_order\":\"FIFO\",\"workspace_sid\":\"%s\"}",
                t->account_sid, name, sid, t->workspace_sid);
        }
    }
    cg_buf_appends(&b, "]}");
    if (stats && !more) {
        lock(t);
        t->counts.walks++;
        unlock(t);
    }
    answer(t, req, 200, cg_buf_take(&b));
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct cgt_tr *t = arg;
    struct cgt_srv_req r;
    cgt_srv_parse(req, &r);
    const char *path = r.path;
    int authed = cgt_srv_auth_ok(r.auth, t->basic);
    char stats_path[128], list_path[128];
    snprintf(stats_path, sizeof stats_path, "/v1/Workspaces/%s/TaskQueues/Statistics",
             t->workspace_sid);
    snprintf(list_path, sizeof list_path, "/v1/Workspaces/%s/TaskQueues", t->workspace_sid);
    int stats = path && strcmp(path, stats_path) == 0;
    int list = path && strcmp(path, list_path) == 0;

    lock(t);
    t->counts.in_flight++;
    if (t->counts.in_flight > t->counts.max_in_flight)
        t->counts.max_in_flight = t->counts.in_flight;
    int rate = t->rate429;
    if (!authed)
        t->counts.unauthorized++;
    else if (stats)
        t->counts.stats++;
    else if (list)
        t->counts.names++;
    if (rate && (stats || list))
        t->counts.rate_limited++;
    unlock(t);

    if (r.cmd != EVHTTP_REQ_GET || (!stats && !list)) {
        answer(t, req, 404, twilio_error(404, 20404, "The requested resource was not found"));
    } else if (!authed) {
        answer(t, req, 401, twilio_error(401, 20003, "Authenticate"));
    } else if (rate) {
        answer(t, req, 429, twilio_error(429, 20429, "Too Many Requests"));
    } else {
        serve_list(t, req, r.query, stats);
    }
}

/* ---- life cycle ---- */

struct cgt_tr *cgt_tr_start(const struct cgt_tr_opts *o)
{
    struct cgt_tr *t = cg_calloc(1, sizeof *t);
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        fail_msg("fake taskrouter: cannot create its mutex");
    t->account_sid = cg_strdup(o->account_sid);
    t->workspace_sid = cg_strdup(o->workspace_sid);
    t->nqueues = o->nqueues;
    t->bad_page = -1;
    t->rl_limit = t->rl_remaining = -1;
    t->basic = cgt_srv_basic(o->account_sid, o->auth_token);
    /* t->srv and t->url are set before the thread starts, where the
     * handler reads them. Waiting for the thread to idle keeps the forks of
     * callgate that follow away from its start-up (see cgt_srv_run). */
    t->srv = cgt_srv_new("fake taskrouter");
    t->url = cgt_srv_url(t->srv);
    cgt_srv_run(t->srv, on_request, t, 1);
    return t;
}

void cgt_tr_stop(struct cgt_tr *t)
{
    if (t == NULL)
        return;
    /* First, so that no handler runs while the state below is freed. */
    cgt_srv_stop(t->srv);
    free(t->account_sid);
    free(t->workspace_sid);
    free(t->basic);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

const char *cgt_tr_url(const struct cgt_tr *t)
{
    return t->url;
}

void cgt_tr_set_nqueues(struct cgt_tr *t, int n)
{
    lock(t);
    t->nqueues = n;
    unlock(t);
}

void cgt_tr_set_gen(struct cgt_tr *t, int gen)
{
    lock(t);
    t->gen = gen;
    unlock(t);
}

void cgt_tr_get_stats(struct cgt_tr *t, int i, struct cgt_tr_stats *out)
{
    lock(t);
    stats_of(t, i, out);
    unlock(t);
}

void cgt_tr_set_stats(struct cgt_tr *t, int i, const struct cgt_tr_stats *s)
{
    if (i < 0 || i >= OVERRIDES)
        fail_msg("fake taskrouter: override index %d out of range", i);
    lock(t);
    t->override[i] = *s;
    t->has_override[i] = 1;
    unlock(t);
}

void cgt_tr_set_429(struct cgt_tr *t, int on, int retry_after_s)
{
    lock(t);
    t->rate429 = on;
    t->retry_after = retry_after_s;
    unlock(t);
}

void cgt_tr_set_bad_page(struct cgt_tr *t, int page, enum cgt_tr_bad how)
{
    lock(t);
    t->bad_page = page;
    t->bad_how = how;
    unlock(t);
}

void cgt_tr_set_rate_headers(struct cgt_tr *t, long limit, long remaining)
{
    lock(t);
    t->rl_limit = limit;
    t->rl_remaining = remaining;
    unlock(t);
}

void cgt_tr_set_delay(struct cgt_tr *t, int ms)
{
    lock(t);
    t->delay_ms = ms;
    unlock(t);
}

void cgt_tr_counts(struct cgt_tr *t, struct cgt_tr_counts *out)
{
    lock(t);
    *out = t->counts;
    unlock(t);
}

void cgt_tr_reset(struct cgt_tr *t)
{
    lock(t);
    int in_flight = t->counts.in_flight;
    memset(&t->counts, 0, sizeof t->counts);
    t->counts.in_flight = in_flight;
    t->counts.max_in_flight = in_flight;
    unlock(t);
}

int cgt_tr_wait_walks(struct cgt_tr *t, int atleast, int timeout_ms)
{
    uint64_t deadline = cgt_srv_deadline(timeout_ms);
    for (;;) {
        struct cgt_tr_counts c;
        cgt_tr_counts(t, &c);
        if (c.walks >= atleast)
            return 0;
        if (cgt_srv_nap_until(deadline) != 0)
            return -1;
    }
}
