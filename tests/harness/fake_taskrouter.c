/*
 * fake_taskrouter.c - the fake TaskRouter of fake_taskrouter.h: evhttp on a
 * private event_base run by a private thread; the test thread touches the
 * shared state under the mutex only and stops the loop through a pipe.
 */
#include "fmacros.h"

#include "fake_taskrouter.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "harness.h"

#define OVERRIDES 16

/* An answer held back by the delay knob (loop thread only). */
struct held {
    struct cgt_tr *t;
    struct evhttp_request *req;
    struct event *timer;
    int status;
    char *body;
    struct held *prev, *next;
};

struct cgt_tr {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    int stop_pipe[2];
    char url[64];
    char *account_sid;
    char *workspace_sid;
    char *basic;
    struct held *held; /* loop thread only */
    int running;       /* behind mu: the loop has started */

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

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    default:
        return "Internal Server Error";
    }
}

static void send_now(struct cgt_tr *t, struct evhttp_request *req, int status, const char *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    int html = body[0] == '<';
    evhttp_add_header(h, "Content-Type", html ? "text/html" : "application/json");
    lock(t);
    int ra = t->retry_after;
    long lim = t->rl_limit, rem = t->rl_remaining;
    t->counts.in_flight--;
    unlock(t);
    if (status == 429 && ra > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", ra);
        evhttp_add_header(h, "Retry-After", v);
    }
    if (lim >= 0) {
        char v[24];
        snprintf(v, sizeof v, "%ld", lim);
        evhttp_add_header(h, "X-Rate-Limit-Limit", v);
        evhttp_add_header(h, "X-Rate-Limit-Config", "TaskQueueStatistics-List");
    }
    if (rem >= 0) {
        char v[24];
        snprintf(v, sizeof v, "%ld", rem);
        evhttp_add_header(h, "X-Rate-Limit-Remaining", v);
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, status, reason_of(status), b);
    evbuffer_free(b);
}

static void unlink_held(struct cgt_tr *t, struct held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        t->held = h->next;
    if (h->next)
        h->next->prev = h->prev;
}

static void on_held(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct held *h = arg;
    struct cgt_tr *t = h->t;
    unlink_held(t, h);
    send_now(t, h->req, h->status, h->body);
    event_free(h->timer);
    free(h->body);
    free(h);
}

/* Answers now or after the delay knob; takes body. */
static void answer(struct cgt_tr *t, struct evhttp_request *req, int status, char *body)
{
    lock(t);
    int delay = t->delay_ms;
    unlock(t);
    if (delay <= 0) {
        send_now(t, req, status, body);
        free(body);
        return;
    }
    struct held *h = cg_calloc(1, sizeof *h);
    h->t = t;
    h->req = req;
    h->status = status;
    h->body = body;
    h->timer = evtimer_new(t->base, on_held, h);
    h->next = t->held;
    if (t->held)
        t->held->prev = h;
    t->held = h;
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    evtimer_add(h->timer, &tv);
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
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
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
    if (auth == NULL || strcmp(auth, t->basic) != 0)
        t->counts.unauthorized++;
    else if (stats)
        t->counts.stats++;
    else if (list)
        t->counts.names++;
    if (rate && (stats || list))
        t->counts.rate_limited++;
    unlock(t);

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET || (!stats && !list)) {
        answer(t, req, 404, twilio_error(404, 20404, "The requested resource was not found"));
    } else if (auth == NULL || strcmp(auth, t->basic) != 0) {
        answer(t, req, 401, twilio_error(401, 20003, "Authenticate"));
    } else if (rate) {
        answer(t, req, 429, twilio_error(429, 20429, "Too Many Requests"));
    } else {
        serve_list(t, req, query, stats);
    }
}

/* ---- life cycle ---- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void on_running(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cgt_tr *t = arg;
    lock(t);
    t->running = 1;
    unlock(t);
}

static void *run(void *arg)
{
    struct cgt_tr *t = arg;
    event_base_once(t->base, -1, EV_TIMEOUT, on_running, t, NULL);
    event_base_dispatch(t->base);
    return NULL;
}

struct cgt_tr *cgt_tr_start(const struct cgt_tr_opts *o)
{
    struct cgt_tr *t = cg_calloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->stop_pipe[0] = t->stop_pipe[1] = -1;
    t->account_sid = cg_strdup(o->account_sid);
    t->workspace_sid = cg_strdup(o->workspace_sid);
    t->nqueues = o->nqueues;
    t->bad_page = -1;
    t->rl_limit = t->rl_remaining = -1;
    size_t n = strlen(o->account_sid) + strlen(o->auth_token) + 2;
    char *plain = cg_malloc(n);
    snprintf(plain, n, "%s:%s", o->account_sid, o->auth_token);
    char *b64 = cg_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)strlen(plain));
    n = strlen(b64) + 8;
    t->basic = cg_malloc(n);
    snprintf(t->basic, n, "Basic %s", b64);
    free(plain);
    free(b64);

    t->base = event_base_new();
    t->http = t->base ? evhttp_new(t->base) : NULL;
    if (t->http == NULL)
        fail_msg("fake taskrouter: cannot create the event base");
    evhttp_set_gencb(t->http, on_request, t);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(t->http, "127.0.0.1", 0);
    if (bs == NULL)
        fail_msg("fake taskrouter: cannot bind: %s", strerror(errno));
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0)
        fail_msg("fake taskrouter: getsockname: %s", strerror(errno));
    snprintf(t->url, sizeof t->url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    if (pipe(t->stop_pipe) != 0)
        fail_msg("fake taskrouter: pipe: %s", strerror(errno));
    t->stop_ev = event_new(t->base, t->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, t->base);
    event_add(t->stop_ev, NULL);
    if (pthread_create(&t->thread, NULL, run, t) != 0)
        fail_msg("fake taskrouter: cannot start its thread");
    t->started = 1;
    /* Return only once the thread idles in its loop: the tests fork callgate
     * processes next, and a fork while another thread is inside the
     * allocator (thread start-up allocates) can leave the child stuck
     * before exec under ASan. */
    uint64_t deadline = cg_mono_ms() + 5000;
    for (;;) {
        lock(t);
        int running = t->running;
        unlock(t);
        if (running)
            break;
        if (cg_mono_ms() >= deadline)
            fail_msg("fake taskrouter: its thread did not start");
        struct timespec ts = {.tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec settle = {.tv_nsec = 5000000};
    nanosleep(&settle, NULL);
    return t;
}

void cgt_tr_stop(struct cgt_tr *t)
{
    if (t == NULL)
        return;
    if (t->started) {
        char c = 'x';
        while (write(t->stop_pipe[1], &c, 1) < 0 && errno == EINTR)
            ;
        pthread_join(t->thread, NULL);
    }
    /* The loop is gone; requests still held are freed by evhttp_free(). */
    while (t->held) {
        struct held *h = t->held;
        t->held = h->next;
        event_free(h->timer);
        free(h->body);
        free(h);
    }
    if (t->http)
        evhttp_free(t->http);
    if (t->stop_ev)
        event_free(t->stop_ev);
    if (t->base)
        event_base_free(t->base);
    for (int i = 0; i < 2; i++)
        if (t->stop_pipe[i] >= 0)
            close(t->stop_pipe[i]);
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
    uint64_t deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct cgt_tr_counts c;
        cgt_tr_counts(t, &c);
        if (c.walks >= atleast)
            return 0;
        if (cg_mono_ms() >= deadline)
            return -1;
        struct timespec ts = {.tv_nsec = 5000000};
        nanosleep(&ts, NULL);
    }
}
