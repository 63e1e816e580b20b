/*
 * rate.c - cgbench-rate: an open-loop, constant-rate HTTP/1.1 load
 * generator. wrk measures how fast a server answers as many requests as it
 * can; it cannot say how a server behaves at a given rate, because it only
 * sends a request when the previous one on that connection has been
 * answered, so a stall delays the requests that would have arrived during
 * it and they are never measured (coordinated omission). Here request i is
 * due at t0 + i / rate whatever happens, and its latency runs from that
 * scheduled time to the last byte of its answer: time spent waiting for a
 * free connection, or behind a stalled one, counts.
 *
 * Requests come pre-built from a file of raw HTTP/1.1 requests separated by
 * NUL bytes (cgbench-sign writes them), sent in file order, each once
 * unless --cycle. Answers must carry Content-Length (evhttp and nginx
 * always do for these endpoints); anything else is counted as a bad answer.
 *
 * Usage: cgbench-rate --port N --file REQS --rate R (--duration S | --count N)
 *                     [--conns C] [--offset K] [--cycle] [--timeout S]
 *                     [--label L] [--out FILE]
 * Prints one JSON object (to --out or stdout): counts, errors, statuses,
 * latency percentiles overall and per path. Exit 0 if every request got an
 * answer, 1 otherwise, 2 on usage errors.
 */
#include "base/fmacros.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "base/alloc.h"
#include "hist.h"

#define MAX_CONNS   1024
#define MAX_PATHS   16
#define MAX_HEADERS (64 * 1024)

struct record {
    const char *data;
    size_t len;
    int path; /* index into paths[] */
};

struct path_stat {
    char name[128];
    struct cgb_hist hist;
    uint64_t errors;
};

struct conn {
    struct gen *g;
    struct bufferevent *bev;
    int connected;
    int busy;
    size_t req;        /* request in flight */
    uint64_t sched_ns; /* its scheduled send time */
    int have_head;
    size_t head_len, body_len;
    int close_after;
};

struct gen {
    struct event_base *base;
    struct sockaddr_in addr;
    struct record *recs;
    size_t nrecs;
    size_t offset;
    int cycle;
    double rate;
    size_t total;
    uint64_t t0_ns, period_ns_x1000; /* period in ns * 1000, for sub-ns rates */
    size_t next;                     /* next request to schedule */
    size_t *pending;                 /* FIFO of scheduled, unsent requests */
    size_t phead, ptail;
    struct conn conns[MAX_CONNS];
    int nconns, nconnected;
    struct event *timer, *deadline;
    int started, finished;
    double timeout_s;

    uint64_t completed, err_connect, err_closed, err_timeout, err_bad;
    uint64_t status[6]; /* 1xx..5xx, index 0 for anything else */
    uint64_t max_timer_late_ns;
    uint64_t end_ns;
    struct cgb_hist all;
    struct path_stat paths[MAX_PATHS];
    int npaths;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t sched_of(const struct gen *g, size_t i)
{
    return g->t0_ns + (uint64_t)((double)i * (double)g->period_ns_x1000 / 1000.0);
}

static const struct record *rec_of(const struct gen *g, size_t i)
{
    return &g->recs[(g->offset + i) % g->nrecs];
}

/* ---- the request file ---- */

static int path_index(struct gen *g, const char *req, size_t len)
{
    /* The request line's target, up to '?' or a space. */
    const char *sp = memchr(req, ' ', len);
    char name[128] = "?";
    if (sp != NULL) {
        const char *p = sp + 1;
        size_t n = 0;
        while (p + n < req + len && p[n] != ' ' && p[n] != '?' && n + 1 < sizeof name)
            n++;
        memcpy(name, p, n);
        name[n] = '\0';
    }
    for (int i = 0; i < g->npaths; i++)
        if (strcmp(g->paths[i].name, name) == 0)
            return i;
    if (g->npaths == MAX_PATHS)
        return MAX_PATHS - 1; /* lumped together past the table's size */
    struct path_stat *ps = &g->paths[g->npaths];
    snprintf(ps->name, sizeof ps->name, "%s", name);
    cgb_hist_init(&ps->hist);
    return g->npaths++;
}

static char *load_records(struct gen *g, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cgbench-rate: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    char *data = cg_malloc(cap);
    size_t n;
    while ((n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            data = cg_realloc(data, cap);
        }
    }
    fclose(f);
    size_t cap_recs = 1024;
    g->recs = cg_malloc(cap_recs * sizeof *g->recs);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\0')
            continue;
        if (i > start) {
            if (g->nrecs == cap_recs) {
                cap_recs *= 2;
                g->recs = cg_realloc(g->recs, cap_recs * sizeof *g->recs);
            }
            struct record *r = &g->recs[g->nrecs++];
            r->data = data + start;
            r->len = i - start;
            r->path = path_index(g, r->data, r->len);
        }
        start = i + 1;
    }
    if (g->nrecs == 0) {
        fprintf(stderr, "cgbench-rate: %s holds no requests\n", path);
        free(data);
        return NULL;
    }
    return data;
}

/* ---- connections ---- */

static void conn_open(struct conn *c);
static void dispatch(struct gen *g);
static void check_done(struct gen *g);

static void fail_request(struct conn *c, uint64_t *counter)
{
    struct gen *g = c->g;
    if (!c->busy)
        return;
    (*counter)++;
    g->paths[rec_of(g, c->req)->path].errors++;
    c->busy = 0;
}

static void conn_reset(struct conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    if (c->connected)
        c->g->nconnected--;
    c->connected = 0;
    c->have_head = 0;
}

static int header_value(const char *head, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vn = (size_t)(eol - v);
            while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == ' '))
                vn--;
            if (vn >= outlen)
                vn = outlen - 1;
            memcpy(out, v, vn);
            out[vn] = '\0';
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct gen *g = c->g;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (!c->busy) {
            /* Bytes nobody asked for: the stream is out of step. */
            if (evbuffer_get_length(in) > 0) {
                g->err_bad++;
                conn_reset(c);
                conn_open(c);
            }
            return;
        }
        if (!c->have_head) {
            struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (p.pos < 0) {
                if (evbuffer_get_length(in) > MAX_HEADERS) {
                    fail_request(c, &g->err_bad);
                    conn_reset(c);
                    conn_open(c);
                }
                return;
            }
            c->head_len = (size_t)p.pos + 4;
            const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)c->head_len);
            char v[64];
            int code = 0;
            if (c->head_len < 12 || strncmp(head, "HTTP/1.", 7) != 0 ||
                sscanf(head + 9, "%3d", &code) != 1 ||
                header_value(head, c->head_len, "Content-Length", v, sizeof v) != 0) {
                fail_request(c, &g->err_bad);
                conn_reset(c);
                conn_open(c);
                return;
            }
            c->body_len = (size_t)strtoull(v, NULL, 10);
            c->close_after = header_value(head, c->head_len, "Connection", v, sizeof v) == 0 &&
                             strcasecmp(v, "close") == 0;
            g->status[code >= 100 && code < 600 ? code / 100 : 0]++;
            c->have_head = 1;
        }
        if (evbuffer_get_length(in) < c->head_len + c->body_len)
            return;
        evbuffer_drain(in, c->head_len + c->body_len);
        c->have_head = 0;
        uint64_t t = now_ns();
        uint64_t lat = t > c->sched_ns ? t - c->sched_ns : 0;
        cgb_hist_record(&g->all, lat);
        cgb_hist_record(&g->paths[rec_of(g, c->req)->path].hist, lat);
        g->completed++;
        c->busy = 0;
        if (c->close_after) {
            conn_reset(c);
            conn_open(c);
            break;
        }
        dispatch(g);
        if (!c->busy)
            break;
    }
    dispatch(g);
    check_done(g);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    struct gen *g = c->g;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        g->nconnected++;
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        dispatch(g);
        return;
    }
    /* Closed or failed: the request in flight is lost; open again. */
    if (c->busy)
        fail_request(c, &g->err_closed);
    else if (!c->connected)
        g->err_connect++;
    conn_reset(c);
    if (!g->finished)
        conn_open(c);
    dispatch(g);
    check_done(g);
}

static void conn_open(struct conn *c)
{
    struct gen *g = c->g;
    if (g->finished)
        return;
    c->bev = bufferevent_socket_new(g->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        g->err_connect++;
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&g->addr, sizeof g->addr) != 0) {
        g->err_connect++;
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
}

/* ---- the schedule ---- */

static void dispatch(struct gen *g)
{
    if (!g->started)
        return;
    for (int i = 0; i < g->nconns && g->phead != g->ptail; i++) {
        struct conn *c = &g->conns[i];
        if (!c->connected || c->busy)
            continue;
        size_t req = g->pending[g->phead++];
        const struct record *r = rec_of(g, req);
        c->busy = 1;
        c->req = req;
        c->sched_ns = sched_of(g, req);
        c->have_head = 0;
        /* The records outlive the run: no copy. */
        evbuffer_add_reference(bufferevent_get_output(c->bev), r->data, r->len, NULL, NULL);
    }
}

static void arm_at(struct gen *g, uint64_t at_ns)
{
    uint64_t t = now_ns();
    uint64_t d = at_ns > t ? at_ns - t : 0;
    struct timeval tv = {.tv_sec = (time_t)(d / 1000000000ULL),
                         .tv_usec = (suseconds_t)((d % 1000000000ULL) / 1000)};
    evtimer_add(g->timer, &tv);
}

static void check_done(struct gen *g)
{
    if (g->finished || !g->started || g->next < g->total)
        return;
    if (g->completed + g->err_closed + g->err_bad + g->err_timeout >= g->total) {
        g->finished = 1;
        g->end_ns = now_ns();
        event_base_loopbreak(g->base);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gen *g = arg;
    uint64_t t = now_ns();
    if (g->next < g->total) {
        uint64_t due = sched_of(g, g->next);
        if (t > due && t - due > g->max_timer_late_ns)
            g->max_timer_late_ns = t - due;
    }
    while (g->next < g->total && sched_of(g, g->next) <= t)
        g->pending[g->ptail++] = g->next++;
    dispatch(g);
    if (g->next < g->total)
        arm_at(g, sched_of(g, g->next));
    check_done(g);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gen *g = arg;
    /* Whatever is still out, or never went out, timed out. */
    uint64_t accounted = g->completed + g->err_closed + g->err_bad;
    g->err_timeout = g->total > accounted ? g->total - accounted : 0;
    g->finished = 1;
    g->end_ns = now_ns();
    event_base_loopbreak(g->base);
}

/* A timer that only wakes the loop, so that waiting for connections can
 * give up after a while. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* ---- output ---- */

static json_t *lat_json(const struct cgb_hist *h)
{
    json_t *o = json_object();
    const double ps[] = {50, 90, 99, 99.9};
    const char *names[] = {"p50", "p90", "p99", "p999"};
    json_object_set_new(o, "count", json_integer((json_int_t)h->n));
    for (size_t i = 0; i < 4; i++)
        json_object_set_new(o, names[i], json_real((double)cgb_hist_percentile(h, ps[i]) / 1000.0));
    json_object_set_new(o, "max", json_real((double)h->max_ns / 1000.0));
    json_object_set_new(o, "mean", json_real(cgb_hist_mean(h) / 1000.0));
    return o;
}

static void usage(void)
{
    fprintf(stderr, "usage: cgbench-rate --port N --file REQS --rate R (--duration S | --count N)\n"
                    "                    [--conns C] [--offset K] [--cycle] [--timeout S]\n"
                    "                    [--label L] [--out FILE]\n");
}

int main(int argc, char **argv)
{
    static struct gen gen;
    struct gen *g = &gen;
    const char *file = NULL, *out = NULL, *label = "";
    int port = 0;
    double duration = 0;
    long count = 0;
    g->nconns = 32;
    g->timeout_s = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--cycle") == 0) {
            g->cycle = 1;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--file") == 0)
            file = v;
        else if (strcmp(a, "--rate") == 0)
            g->rate = atof(v);
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else if (strcmp(a, "--count") == 0)
            count = atol(v);
        else if (strcmp(a, "--conns") == 0)
            g->nconns = atoi(v);
        else if (strcmp(a, "--offset") == 0)
            g->offset = (size_t)atol(v);
        else if (strcmp(a, "--timeout") == 0)
            g->timeout_s = atof(v);
        else if (strcmp(a, "--label") == 0)
            label = v;
        else if (strcmp(a, "--out") == 0)
            out = v;
        else {
            usage();
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || file == NULL || g->rate <= 0 || g->nconns < 1 ||
        g->nconns > MAX_CONNS || (duration <= 0 && count <= 0)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char *data = load_records(g, file);
    if (data == NULL)
        return 2;
    g->total = count > 0 ? (size_t)count : (size_t)(duration * g->rate + 0.5);
    if (!g->cycle && g->offset + g->total > g->nrecs) {
        fprintf(stderr, "cgbench-rate: %zu requests wanted from offset %zu, %s holds %zu\n",
                g->total, g->offset, file, g->nrecs);
        return 2;
    }
    g->period_ns_x1000 = (uint64_t)(1e12 / g->rate);
    g->pending = cg_malloc(g->total * sizeof *g->pending);
    cgb_hist_init(&g->all);

    /* Timers finer than a millisecond: at 5,000 requests a second they
     * are 200 us apart. */
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    g->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (g->base == NULL) {
        fprintf(stderr, "cgbench-rate: no event base\n");
        return 2;
    }
    g->addr.sin_family = AF_INET;
    g->addr.sin_port = htons((uint16_t)port);
    g->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < g->nconns; i++) {
        g->conns[i].g = g;
        conn_open(&g->conns[i]);
    }
    /* Connect everything first, so connection set-up is not measured. */
    struct event *poll = evtimer_new(g->base, on_wake, NULL);
    uint64_t give_up = now_ns() + 5000000000ULL;
    while (g->nconnected < g->nconns && now_ns() < give_up) {
        struct timeval tv = {0, 5000};
        evtimer_add(poll, &tv);
        event_base_loop(g->base, EVLOOP_ONCE);
    }
    event_free(poll);
    if (g->nconnected < g->nconns) {
        fprintf(stderr, "cgbench-rate: only %d of %d connections to port %d\n", g->nconnected,
                g->nconns, port);
        return 1;
    }

    g->timer = evtimer_new(g->base, on_timer, g);
    g->deadline = evtimer_new(g->base, on_deadline, g);
    g->t0_ns = now_ns() + 2000000;
    g->started = 1;
    double run_s = (double)g->total / g->rate + g->timeout_s + 0.01;
    struct timeval dl = {.tv_sec = (time_t)run_s,
                         .tv_usec = (suseconds_t)((run_s - (double)(time_t)run_s) * 1e6)};
    evtimer_add(g->deadline, &dl);
    arm_at(g, g->t0_ns);
    event_base_dispatch(g->base);

    double elapsed = (double)(g->end_ns - g->t0_ns) / 1e9;
    json_t *o = json_object();
    json_object_set_new(o, "label", json_string(label));
    json_object_set_new(o, "tool", json_string("cgbench-rate"));
    json_object_set_new(o, "rate_target", json_real(g->rate));
    json_object_set_new(o, "requests", json_integer((json_int_t)g->total));
    json_object_set_new(o, "completed", json_integer((json_int_t)g->completed));
    json_object_set_new(o, "conns", json_integer(g->nconns));
    json_object_set_new(o, "elapsed_s", json_real(elapsed));
    json_object_set_new(o, "achieved_rps",
                        json_real(elapsed > 0 ? (double)g->completed / elapsed : 0));
    json_object_set_new(o, "max_timer_late_us", json_real((double)g->max_timer_late_ns / 1000.0));
    json_t *errs = json_object();
    json_object_set_new(errs, "connect", json_integer((json_int_t)g->err_connect));
    json_object_set_new(errs, "closed", json_integer((json_int_t)g->err_closed));
    json_object_set_new(errs, "timeout", json_integer((json_int_t)g->err_timeout));
    json_object_set_new(errs, "bad_response", json_integer((json_int_t)g->err_bad));
    json_object_set_new(o, "errors", errs);
    json_t *st = json_object();
    const char *cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 0; i < 6; i++)
        json_object_set_new(st, cls[i], json_integer((json_int_t)g->status[i]));
    json_object_set_new(o, "status", st);
    json_object_set_new(o, "latency_us", lat_json(&g->all));
    json_t *paths = json_object();
    for (int i = 0; i < g->npaths; i++) {
        json_t *p = lat_json(&g->paths[i].hist);
        json_object_set_new(p, "errors", json_integer((json_int_t)g->paths[i].errors));
        json_object_set_new(paths, g->paths[i].name, p);
    }
    json_object_set_new(o, "paths", paths);
    FILE *f = out ? fopen(out, "w") : stdout;
    if (f == NULL) {
        fprintf(stderr, "cgbench-rate: %s: %s\n", out, strerror(errno));
        return 2;
    }
    json_dumpf(o, f, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    fputc('\n', f);
    if (f != stdout)
        fclose(f);
    json_decref(o);

    int ok = g->completed == g->total;
    for (int i = 0; i < g->nconns; i++)
        if (g->conns[i].bev)
            bufferevent_free(g->conns[i].bev);
    event_free(g->timer);
    event_free(g->deadline);
    event_base_free(g->base);
    free(g->pending);
    free(g->recs);
    free(data);
    return ok ? 0 : 1;
}
