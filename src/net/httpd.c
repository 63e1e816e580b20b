#include "base/fmacros.h"

#include "net/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/list.h"
#include "base/log.h"
#include "base/url.h"
#include "net/http_parse.h"
#include "net/http_util.h"

/*
 * The connection machine. Each connection has one read buffer, one
 * persistent read event (level-triggered, so one read() per readiness
 * suffices and the epoll set never changes between requests), a write
 * event added only while output is blocked, and one timer.
 *
 *   HEAD     reading a request head (the deadline runs)
 *   BODY     reading its body (the deadline runs)
 *   HANDLER  the request is with a handler (no deadline)
 *   STREAM   a streamed reply is open (a timer only while output stalls)
 *   LINGER   the last response is out, the write side shut; the client's
 *            remaining bytes are read and dropped until it closes, so that
 *            a close with unread data (a reset) cannot destroy the answer
 *
 * Requests are taken one at a time, so pipelined ones are answered in
 * order: bytes that arrive while one is with its handler stay in the buffer
 * (reading pauses when it is full) and are parsed after the reply.
 *
 * The request lives inside the connection (no allocation per request). Its
 * strings point into the read buffer, NUL-terminated in place where the
 * parser found CR, ':' or SP; the body is followed by a NUL written over the
 * next byte, which is put back after the reply. While a request is out the
 * buffer is neither moved nor grown, so those pointers stay valid.
 */

/* Defaults for options left at zero. */
#define DEFAULT_MAX_BODY   (1024 * 1024)
#define DEFAULT_MAX_HEADER (8 * 1024)
#define DEFAULT_TIMEOUT_S  30
/* The head (request line and fields, with their syntax) may take this
 * much, whatever max_header_bytes says about names and values. */
#define MIN_HARD_HEADER_CEILING (64 * 1024)
/* How long accepting pauses after accept() failed (out of descriptors). */
#define ACCEPT_PAUSE_MS 100
/* Read buffer: first size, and the size it returns to once idle. */
#define INBUF_MIN 4096
/* Output queued for a client beyond which no further request of its is
 * read or parsed until the output is written (a client that pipelines
 * without reading holds no more memory than this and one response). */
#define OUT_HIGH (64 * 1024)
/* How long a closing connection waits for the client to close. */
#define LINGER_MS 2000

enum phase { P_HEAD, P_BODY, P_HANDLER, P_STREAM, P_LINGER };

struct route {
    char *pattern;     /* as registered, reported to the observer */
    size_t prefix_len; /* for prefix routes: bytes of pattern before '*' */
    int is_prefix;
    unsigned methods;
    cg_http_handler fn;
    void *arg;
};

struct conn;

struct cg_http_req {
    struct conn *c;
    struct cg_list link; /* in cg_httpd.live while with a handler */
    enum cg_http_method method;
    const char *method_name;
    const char *target;
    const char *path; /* decoded */
    char *path_alloc; /* when decoding needed a copy */
    const char *path_rest;
    const char *route; /* pattern of the matched route, "" if none */
    uint64_t start_us;
    const char *body;
    size_t body_len;
    int query_state; /* 0 not parsed, 1 parsed, -1 malformed */
    struct cg_form query;
    int form_state;
    struct cg_form form;
    const char *form_err;
    int want_close; /* the handler set "Connection: close" */
    int has_cc, has_xcto;
};

struct cg_http_stream {
    struct conn *c;
    size_t max_pending;
    cg_http_stream_closed_cb closed;
    void *arg;
    int chunked;
};

struct conn {
    struct cg_httpd *h;
    evutil_socket_t fd;
    struct event *rev, *wev, *timer, *resume;
    struct cg_list link; /* in cg_httpd.conns */
    char peer[INET6_ADDRSTRLEN];
    int loopback;
    enum phase phase;

    char *in; /* read buffer; one byte always spare for a terminator */
    size_t in_len, in_cap;
    struct cg_hp_scan scan;
    struct cg_hp_request hp;
    struct cg_hp_chunked ch;
    size_t head_len;
    size_t msg_len; /* head plus raw body of the current request */
    int saved;      /* the byte the body terminator replaced, or -1 */

    struct cg_buf out; /* output not yet written */
    size_t out_off;
    struct cg_buf resp; /* the response head being built */
    struct cg_buf hdrs; /* header lines the handler set */
    struct cg_buf ctype;

    int keep_alive; /* the current request allows another */
    int closing;    /* close (linger) once the output is written */
    int eof;        /* the client shut its side; reading stopped */
    int read_paused;
    int in_dispatch; /* conn_process() is running: freeing waits for it */
    int dead;
    int minor;     /* HTTP/1.<minor> of the current request */
    int head_only; /* the current request is HEAD */
    size_t saved_pos;
    int timer_on;
    struct cg_http_req req;
    struct cg_http_stream *stream;
};

struct cg_httpd {
    struct event_base *base;
    struct evconnlistener *lev;
    size_t max_body;
    size_t max_header;
    size_t head_ceiling;
    size_t in_max; /* the read buffer never grows past this */
    int timeout_s;
    const struct timeval *common_tv;
    char *bind_address;
    int port_opt;
    int reuseport;
    int port; /* bound port, 0 when not listening */
    int stopped;
    int freeing;

    struct route *routes;
    size_t nroutes;
    size_t cap_routes;

    cg_http_observer observer;
    void *observer_arg;
    cg_http_unmatched_cb unmatched;
    void *unmatched_arg;

    struct cg_list live; /* requests with handlers */
    size_t inflight;
    struct cg_list conns;

    struct event *accept_resume;
    unsigned long long accept_errors;
    uint64_t accept_log_ms;
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c);
static void conn_linger(struct conn *c);
static int conn_send(struct conn *c, const char *a, size_t alen, const char *b, size_t blen);
static void stream_drop(struct conn *c, int notify);

/* ---- small helpers ---- */

static void arm_timer(struct conn *c, const struct timeval *tv)
{
    evtimer_add(c->timer, tv);
    c->timer_on = 1;
}

static void disarm_timer(struct conn *c)
{
    if (c->timer_on) {
        evtimer_del(c->timer);
        c->timer_on = 0;
    }
}

/* ---- server ---- */

static void on_accept_resume(evutil_socket_t fd, short what, void *arg);

struct cg_httpd *cg_httpd_new(struct event_base *base, const struct cg_httpd_opts *opts)
{
    if (base == NULL || opts == NULL || opts->port < 0 || opts->port > 65535)
        return NULL;
    struct cg_httpd *h = cg_calloc(1, sizeof *h);
    h->base = base;
    cg_list_init(&h->live);
    cg_list_init(&h->conns);
    h->max_body = opts->max_body_bytes ? opts->max_body_bytes : DEFAULT_MAX_BODY;
    h->max_header = opts->max_header_bytes ? opts->max_header_bytes : DEFAULT_MAX_HEADER;
    h->timeout_s = opts->timeout_seconds > 0 ? opts->timeout_seconds : DEFAULT_TIMEOUT_S;
    if (h->max_body > ((size_t)1 << 40))
        h->max_body = (size_t)1 << 40;
    if (h->max_header > ((size_t)1 << 30))
        h->max_header = (size_t)1 << 30;
    h->head_ceiling = 4 * h->max_header;
    if (h->head_ceiling < MIN_HARD_HEADER_CEILING)
        h->head_ceiling = MIN_HARD_HEADER_CEILING;
    /* A head, a body with its chunk framing, and the terminator. */
    h->in_max = h->head_ceiling + h->max_body + h->max_body / 2 + 2 * h->max_header + 4096;
    h->bind_address =
        cg_strdup(opts->bind_address && *opts->bind_address ? opts->bind_address : "0.0.0.0");
    h->port_opt = opts->port;
    h->reuseport = opts->reuseport;
    /* Every connection waits for the same duration: libevent keeps such
     * timers in a queue rather than its heap, so re-arming one per request
     * costs O(1). */
    struct timeval tv = {.tv_sec = h->timeout_s, .tv_usec = 0};
    h->common_tv = event_base_init_common_timeout(base, &tv);
    h->accept_resume = evtimer_new(base, on_accept_resume, h);
    if (h->accept_resume == NULL || h->common_tv == NULL) {
        if (h->accept_resume != NULL)
            event_free(h->accept_resume);
        free(h->bind_address);
        free(h);
        return NULL;
    }
    return h;
}

int cg_httpd_route(struct cg_httpd *h, const char *pattern, unsigned methods, cg_http_handler fn,
                   void *arg)
{
    int is_prefix;
    if (h == NULL || pattern == NULL || fn == NULL || methods == 0 ||
        !cg_http_valid_pattern(pattern, &is_prefix))
        return -1;
    for (size_t i = 0; i < h->nroutes; i++)
        if (strcmp(h->routes[i].pattern, pattern) == 0)
            return -1;
    if (h->nroutes == h->cap_routes) {
        h->cap_routes = h->cap_routes ? h->cap_routes * 2 : 8;
        h->routes = cg_realloc(h->routes, h->cap_routes * sizeof *h->routes);
    }
    struct route *r = &h->routes[h->nroutes++];
    r->pattern = cg_strdup(pattern);
    r->is_prefix = is_prefix;
    r->prefix_len = is_prefix ? strlen(pattern) - 1 : 0;
    r->methods = methods;
    r->fn = fn;
    r->arg = arg;
    return 0;
}

void cg_httpd_set_observer(struct cg_httpd *h, cg_http_observer fn, void *arg)
{
    h->observer = fn;
    h->observer_arg = arg;
}

void cg_httpd_set_unmatched(struct cg_httpd *h, cg_http_unmatched_cb fn, void *arg)
{
    h->unmatched = fn;
    h->unmatched_arg = arg;
}

size_t cg_httpd_inflight(const struct cg_httpd *h)
{
    return h->inflight;
}

int cg_httpd_port(const struct cg_httpd *h)
{
    return h->lev != NULL ? h->port : 0;
}

/* ---- connections ---- */

static void conn_free(struct conn *c)
{
    if (c->in_dispatch) {
        /* conn_process() still holds c: it frees it on the way out. */
        if (c->fd >= 0) {
            event_del(c->rev);
            event_del(c->wev);
        }
        disarm_timer(c);
        c->dead = 1;
        return;
    }
    cg_list_remove(&c->link);
    if (c->fd >= 0)
        close(c->fd);
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->timer);
    event_free(c->resume);
    cg_buf_free(&c->out);
    cg_buf_free(&c->resp);
    cg_buf_free(&c->hdrs);
    cg_buf_free(&c->ctype);
    free(c->in);
    free(c);
}

/* Closes the socket. The record goes with it unless a handler still holds
 * the request, whose reply then frees it. */
static void conn_close(struct conn *c)
{
    if (c->stream != NULL)
        stream_drop(c, 0);
    if (c->fd >= 0) {
        event_del(c->rev);
        event_del(c->wev);
        close(c->fd);
        c->fd = -1;
    }
    disarm_timer(c);
    event_del(c->resume);
    if (c->phase != P_HANDLER)
        conn_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->timer_on = 0;
    if (c->phase == P_LINGER) {
        conn_close(c);
        return;
    }
    if (c->phase == P_HEAD || c->phase == P_BODY)
        cg_log_info("http request not received in time; connection closed", "peer=%s timeout_s=%d",
                    c->peer, c->h->timeout_s);
    else
        cg_log_info("http client not reading; connection closed", "peer=%s timeout_s=%d", c->peer,
                    c->h->timeout_s);
    if (c->phase == P_STREAM)
        stream_drop(c, 1);
    if (c->phase == P_HANDLER) {
        /* Only a stalled write of an earlier response gets here. */
        event_del(c->rev);
        event_del(c->wev);
        close(c->fd);
        c->fd = -1;
        return;
    }
    conn_close(c);
}

/* Writes what is queued. Returns 0, or -1 when the connection failed. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return 0;
        }
        return -1;
    }
    cg_buf_reset(&c->out);
    c->out_off = 0;
    event_del(c->wev);
    return 0;
}

static int out_pending(const struct conn *c)
{
    return c->out_off < c->out.len;
}

/* Sends the buffers straight away with one writev() when nothing is
 * queued, queuing what the socket did not take (and all of it when output
 * is already queued, to keep responses in order). Returns 0, or -1 when the
 * connection failed. */
static int conn_sendv(struct conn *c, struct iovec *iov, int n)
{
    if (c->fd < 0)
        return -1;
    size_t total = 0, done = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (!out_pending(c)) {
        ssize_t w;
        do
            w = writev(c->fd, iov, n);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (w > 0)
            done = (size_t)w;
        if (done == total)
            return 0;
    }
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        if (done >= len) {
            done -= len;
            continue;
        }
        if (cg_buf_append(&c->out, (const char *)iov[i].iov_base + done, len - done) != 0)
            return -1;
        done = 0;
    }
    event_add(c->wev, NULL);
    arm_timer(c, c->h->common_tv);
    return 0;
}

static int conn_send(struct conn *c, const char *a, size_t alen, const char *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    return conn_sendv(c, iov, blen > 0 ? 2 : 1);
}

/* The response is out (or queued): shut the write side once it is written
 * and drain what the client still sends. */
static void conn_linger(struct conn *c)
{
    c->phase = P_LINGER;
    c->closing = 1;
    if (c->fd < 0 || c->eof) {
        if (!out_pending(c) || c->fd < 0) {
            conn_close(c);
            return;
        }
    }
    if (out_pending(c))
        return; /* on_write comes back here */
    if (shutdown(c->fd, SHUT_WR) != 0) {
        conn_close(c);
        return;
    }
    if (c->read_paused) {
        event_add(c->rev, NULL);
        c->read_paused = 0;
    }
    disarm_timer(c);
    struct timeval tv = {.tv_sec = LINGER_MS / 1000, .tv_usec = (LINGER_MS % 1000) * 1000};
    arm_timer(c, &tv);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (conn_flush(c) != 0) {
        if (c->phase == P_STREAM)
            stream_drop(c, 1);
        if (c->phase == P_HANDLER) {
            event_del(c->rev);
            event_del(c->wev);
            close(c->fd);
            c->fd = -1;
            disarm_timer(c);
            return;
        }
        conn_close(c);
        return;
    }
    if (out_pending(c)) {
        arm_timer(c, c->h->common_tv); /* progress: the client is reading */
        return;
    }
    if (c->phase == P_LINGER) {
        conn_linger(c);
        return;
    }
    if (c->phase == P_HEAD || c->phase == P_BODY) {
        arm_timer(c, c->h->common_tv); /* the deadline for the next request */
        if (c->read_paused) {
            c->read_paused = 0;
            event_add(c->rev, NULL);
        }
        if (c->in_len > 0)
            event_active(c->resume, EV_TIMEOUT, 0);
    } else {
        disarm_timer(c);
    }
}

/* Makes room to read into. Returns 0, or -1 when the buffer may not grow
 * (a request is out, or the limit is reached): reading pauses. */
static int in_room(struct conn *c)
{
    if (c->in_cap - c->in_len > 1)
        return 0;
    if (c->phase == P_HANDLER || c->phase == P_STREAM || c->in_cap >= c->h->in_max)
        return -1;
    size_t n = c->in_cap ? c->in_cap * 2 : INBUF_MIN;
    if (n > c->h->in_max)
        n = c->h->in_max;
    c->in = cg_realloc(c->in, n);
    c->in_cap = n;
    return 0;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (c->phase == P_LINGER) {
        char sink[4096];
        ssize_t n = read(fd, sink, sizeof sink);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    if (in_room(c) != 0 ||
        ((c->phase == P_HEAD || c->phase == P_BODY) && c->out.len - c->out_off > OUT_HIGH)) {
        event_del(c->rev);
        c->read_paused = 1;
        return;
    }
    ssize_t n = read(fd, c->in + c->in_len, c->in_cap - 1 - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->phase == P_HANDLER) {
            /* The client may only have shut its side and still wait for
             * the reply; a reset shows when the reply is written. */
            c->eof = 1;
            event_del(c->rev);
            return;
        }
        if (c->phase == P_STREAM)
            stream_drop(c, 1);
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    if (c->phase == P_HEAD || c->phase == P_BODY)
        conn_process(c);
}

/* A reply given outside a handler call leaves pipelined bytes to parse;
 * they are parsed from the loop rather than inside the reply. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->phase == P_HEAD || c->phase == P_BODY)
        conn_process(c);
}

static struct conn *conn_new(struct cg_httpd *h, evutil_socket_t fd, const struct sockaddr *sa)
{
    struct conn *c = cg_calloc(1, sizeof *c);
    c->h = h;
    c->fd = fd;
    c->saved = -1;
    c->rev = event_new(h->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(h->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->timer = evtimer_new(h->base, on_timer, c);
    c->resume = event_new(h->base, -1, 0, on_resume, c);
    cg_buf_init(&c->out, CG_BUF_UNBOUNDED);
    cg_buf_init(&c->resp, CG_BUF_UNBOUNDED);
    cg_buf_init(&c->hdrs, CG_BUF_UNBOUNDED);
    cg_buf_init(&c->ctype, CG_BUF_UNBOUNDED);
    cg_list_init(&c->link);
    cg_list_init(&c->req.link);
    cg_list_push_front(&h->conns, &c->link);
    if (c->rev == NULL || c->wev == NULL || c->timer == NULL || c->resume == NULL ||
        event_add(c->rev, NULL) != 0) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->timer)
            event_free(c->timer);
        if (c->resume)
            event_free(c->resume);
        c->rev = c->wev = c->timer = c->resume = NULL;
        cg_list_remove(&c->link);
        cg_buf_free(&c->out);
        cg_buf_free(&c->resp);
        cg_buf_free(&c->hdrs);
        cg_buf_free(&c->ctype);
        free(c);
        return NULL;
    }
    cg_http_peer_text(sa, c->peer, sizeof c->peer);
    c->loopback = cg_host_is_loopback(c->peer);
    arm_timer(c, h->common_tv);
    return c;
}

/* ---- requests ---- */

/* Exact routes win over prefix routes; among prefixes the longest wins. */
static const struct route *match_route(const struct cg_httpd *h, const char *path,
                                       const char **rest)
{
    const struct route *best = NULL;
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        if (!r->is_prefix) {
            if (strcmp(r->pattern, path) == 0) {
                *rest = "";
                return r;
            }
        } else if (strncmp(r->pattern, path, r->prefix_len) == 0 &&
                   (best == NULL || r->prefix_len > best->prefix_len)) {
            best = r;
        }
    }
    if (best != NULL)
        *rest = path + best->prefix_len;
    return best;
}

static int method_allowed(unsigned route_methods, enum cg_http_method m)
{
    if (m == CG_HTTP_HEAD && (route_methods & CG_HTTP_GET))
        return 1;
    return (route_methods & (unsigned)m) != 0;
}

/* Resets what a request keeps between its parse and its reply. */
static void req_begin(struct conn *c)
{
    struct cg_http_req *r = &c->req;
    r->c = c;
    r->path = "";
    r->path_alloc = NULL;
    r->path_rest = "";
    r->route = "";
    r->start_us = cg_mono_us();
    r->body = "";
    r->body_len = 0;
    r->query_state = 0;
    r->form_state = 0;
    r->form_err = NULL;
    r->want_close = 0;
    r->has_cc = 0;
    r->has_xcto = 0;
    cg_form_init(&r->query);
    cg_form_init(&r->form);
    cg_buf_reset(&c->hdrs);
    cg_buf_reset(&c->ctype);
}

static void req_end(struct cg_http_req *r)
{
    free(r->path_alloc);
    r->path_alloc = NULL;
    cg_form_free(&r->query);
    cg_form_free(&r->form);
}

/* n in decimal, in out (24 bytes). */
static const char *utoa(unsigned long long n, char out[24])
{
    char *p = out + 23;
    *p = '\0';
    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    return p;
}

/* Writes a response head and body. The connection is to close afterwards
 * when the request or the server says so. */
static void respond(struct conn *c, int status, const char *ctype, const char *body, size_t len,
                    int bodyless, const char *framing)
{
    struct cg_httpd *h = c->h;
    struct cg_http_req *r = &c->req;
    struct cg_buf *b = &c->resp;
    if (!c->keep_alive || h->stopped || r->want_close || c->eof)
        c->closing = 1;
    cg_buf_reset(b);
    /* Built with plain appends: formatting with printf showed in the
     * profile of the cheapest endpoints. */
    char num[24];
    cg_buf_appends(b, "HTTP/1.1 ");
    cg_buf_appends(b, utoa((unsigned long long)status, num));
    cg_buf_appendc(b, ' ');
    cg_buf_appends(b, cg_http_reason(status));
    cg_buf_appends(b, "\r\nDate: ");
    cg_buf_appends(b, cg_http_date());
    cg_buf_appends(b, "\r\n");
    if (c->hdrs.len > 0)
        cg_buf_append(b, c->hdrs.data, c->hdrs.len);
    const char *type = ctype != NULL && cg_http_valid_value(ctype) ? ctype
                       : c->ctype.len > 0                          ? cg_buf_str(&c->ctype)
                                                                   : NULL;
    if (type != NULL) {
        cg_buf_appends(b, "Content-Type: ");
        cg_buf_appends(b, type);
        cg_buf_appends(b, "\r\n");
    }
    if (!r->has_cc)
        cg_buf_appends(b, "Cache-Control: no-store\r\n");
    if (!r->has_xcto)
        cg_buf_appends(b, "X-Content-Type-Options: nosniff\r\n");
    if (framing != NULL) {
        cg_buf_appends(b, framing);
    } else if (!bodyless) {
        cg_buf_appends(b, "Content-Length: ");
        cg_buf_appends(b, utoa(len, num));
        cg_buf_appends(b, "\r\n");
    }
    if (c->closing)
        cg_buf_appends(b, "Connection: close\r\n");
    else if (c->minor == 0)
        cg_buf_appends(b, "Connection: keep-alive\r\n");
    if (cg_buf_appends(b, "\r\n") != 0) {
        cg_log_error("http response head failed", "status=%d", status);
        c->closing = 1;
        return;
    }
    int send_body = !bodyless && !c->head_only && len > 0 && body != NULL;
    if (conn_send(c, b->data, b->len, send_body ? body : NULL, send_body ? len : 0) != 0) {
        /* The client is gone: the reply is dropped. */
        c->closing = 1;
        if (c->fd >= 0) {
            event_del(c->rev);
            event_del(c->wev);
            close(c->fd);
            c->fd = -1;
        }
    }
}

/* After a reply (or the end of a stream): the next request, or closing. */
static void conn_next(struct conn *c)
{
    req_end(&c->req);
    if (c->fd < 0) {
        c->phase = P_HEAD;
        conn_free(c);
        return;
    }
    if (c->closing) {
        conn_linger(c);
        return;
    }
    if (c->saved >= 0) {
        c->in[c->saved_pos] = (char)c->saved;
        c->saved = -1;
    }
    c->in_len -= c->msg_len;
    if (c->in_len > 0)
        memmove(c->in, c->in + c->msg_len, c->in_len);
    c->msg_len = 0;
    memset(&c->scan, 0, sizeof c->scan);
    c->phase = P_HEAD;
    /* A large request leaves a large buffer; an idle connection keeps a
     * small one. */
    if (c->in_cap > 16 * INBUF_MIN && c->in_len < INBUF_MIN) {
        c->in = cg_realloc(c->in, INBUF_MIN);
        c->in_cap = INBUF_MIN;
    }
    arm_timer(c, c->h->common_tv);
    if (c->read_paused) {
        c->read_paused = 0;
        event_add(c->rev, NULL);
    }
    if (!c->in_dispatch && c->in_len > 0)
        event_active(c->resume, EV_TIMEOUT, 0);
}

static void observe(struct cg_httpd *h, const struct cg_http_req *r, int status)
{
    uint64_t dur = cg_mono_us() - r->start_us;
    cg_log_debug("http request", "method=%s path=%s status=%d duration_us=%llu",
                 r->method_name != NULL ? r->method_name : "-", r->path, status,
                 (unsigned long long)dur);
    if (h->observer != NULL)
        h->observer(r->route, r->method, status, dur, h->observer_arg);
}

/* A request the HTTP layer refuses before routing: a JSON error, then the
 * connection closes, since what follows cannot be framed with certainty. */
static void layer_error(struct conn *c, int status, const char *why)
{
    static const struct {
        int status;
        const char *code;
    } codes[] = {
        {400, "bad_request"},       {413, "body_too_large"},  {417, "expectation_failed"},
        {431, "headers_too_large"}, {501, "not_implemented"},
    };
    const char *code = "bad_request";
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].status == status)
            code = codes[i].code;
    struct cg_http_req *r = &c->req;
    r->method_name = NULL; /* what pointed into the buffer may be stale */
    r->target = NULL;
    if (c->phase == P_HEAD) {
        /* The head did not parse: nothing of it is known. */
        r->method = CG_HTTP_OTHER;
        c->head_only = 0;
    }
    req_begin(c);
    c->phase = P_HANDLER;
    c->keep_alive = 0;
    cg_log_info("http request refused", "peer=%s status=%d reason=%s", c->peer, status, why);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_printf(&b, "{\"status\":%d,\"error\":\"%s\",\"message\":", status, code);
    cg_buf_append_json_str(&b, why, strlen(why));
    cg_buf_appendc(&b, '}');
    cg_buf_appends(&c->ctype, "application/json");
    respond(c, status, NULL, b.data, b.len, 0, NULL);
    cg_buf_free(&b);
    observe(c->h, r, status);
    conn_next(c);
}

/* NUL-terminates the parsed strings where the parser found ':', CR or SP. */
static void terminate_head(struct conn *c)
{
    struct cg_hp_request *hp = &c->hp;
    c->in[hp->method_name.off + hp->method_name.len] = '\0';
    c->in[hp->target.off + hp->target.len] = '\0';
    for (size_t i = 0; i < hp->nfields; i++) {
        c->in[hp->fields[i].name.off + hp->fields[i].name.len] = '\0';
        c->in[hp->fields[i].value.off + hp->fields[i].value.len] = '\0';
    }
}

static void dispatch(struct conn *c)
{
    struct cg_httpd *h = c->h;
    struct cg_http_req *r = &c->req;
    c->phase = P_HANDLER;
    disarm_timer(c);
    cg_list_push_front(&h->live, &r->link);
    h->inflight++;

    size_t rawlen = 0;
    const char *raw = cg_http_target_path(r->target, &rawlen);
    if (raw == NULL) {
        cg_http_reply_error(r, 400, "bad_request", "the request target cannot be parsed");
        return;
    }
    if (memchr(raw, '%', rawlen) == NULL) {
        if (raw[rawlen] == '\0') {
            r->path = raw;
        } else {
            r->path_alloc = cg_strndup(raw, rawlen);
            r->path = r->path_alloc;
        }
    } else {
        size_t plen = 0;
        r->path_alloc = cg_pct_decode(raw, rawlen, 0, &plen);
        if (r->path_alloc == NULL || plen != strlen(r->path_alloc)) {
            r->path = "";
            cg_http_reply_error(r, 400, "bad_request", "the request path is not validly encoded");
            return;
        }
        r->path = r->path_alloc;
    }

    const char *rest = "";
    const struct route *rt = match_route(h, r->path, &rest);
    if (rt == NULL) {
        if (h->unmatched)
            h->unmatched(r, h->unmatched_arg);
        cg_http_reply_error(r, 404, "not_found", "no such resource");
        return;
    }
    r->route = rt->pattern;
    r->path_rest = rest;
    if (!method_allowed(rt->methods, r->method)) {
        char allow[96];
        cg_http_allow_header(rt->methods, allow, sizeof allow);
        cg_http_set_header(r, "Allow", allow);
        cg_http_reply_error(r, 405, "method_not_allowed", "method not allowed for this resource");
        return;
    }
    rt->fn(r, rt->arg);
}

/* Parses what the buffer holds and hands complete requests on, one at a
 * time; a request answered at once lets the next pipelined one follow. */
static void conn_process(struct conn *c)
{
    struct cg_httpd *h = c->h;
    c->in_dispatch = 1;
    while (!c->dead && (c->phase == P_HEAD || c->phase == P_BODY)) {
        struct cg_hp_request *hp = &c->hp;
        const char *why = NULL;
        if (c->out.len - c->out_off > OUT_HIGH)
            break; /* on_write resumes once the client has read */
        if (c->phase == P_HEAD) {
            long end = cg_hp_head_end(&c->scan, c->in, c->in_len);
            if (end < 0) {
                layer_error(c, 400, "a line ends in a bare LF");
                continue;
            }
            if (end == 0 && c->in_len <= h->head_ceiling)
                break;
            if (end == 0 || (size_t)end > h->head_ceiling) {
                layer_error(c, 431, "the request head is too large");
                continue;
            }
            int st = cg_hp_parse_head(c->in, (size_t)end, h->max_header, hp, &why);
            c->head_len = (size_t)end;
            if (st == 0 || st == 501 || st == 417) {
                c->req.method = st == 0 ? hp->method : CG_HTTP_OTHER;
                c->req.method_name = NULL;
                c->minor = hp->minor;
                c->head_only = st == 0 && hp->method == CG_HTTP_HEAD;
                c->phase = P_BODY; /* the method is known from here */
            }
            if (st != 0) {
                layer_error(c, st, why);
                continue;
            }
            terminate_head(c);
            c->keep_alive = hp->keep_alive;
            if (hp->body == CG_HP_BODY_LENGTH && hp->content_length > h->max_body) {
                layer_error(c, 413, "the request body is too large");
                continue;
            }
            memset(&c->ch, 0, sizeof c->ch);
            if (hp->expect_continue && hp->minor == 1 &&
                ((hp->body == CG_HP_BODY_LENGTH && c->in_len - c->head_len < hp->content_length) ||
                 (hp->body == CG_HP_BODY_CHUNKED && c->in_len == c->head_len))) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (conn_send(c, cont, sizeof cont - 1, NULL, 0) != 0) {
                    conn_close(c);
                    continue;
                }
            }
        }
        req_begin(c);
        if (hp->body == CG_HP_BODY_NONE) {
            c->msg_len = c->head_len;
        } else if (hp->body == CG_HP_BODY_LENGTH) {
            size_t need = c->head_len + (size_t)hp->content_length;
            if (c->in_len < need) {
                if (need + 1 > c->in_cap) {
                    c->in = cg_realloc(c->in, need + 1);
                    c->in_cap = need + 1;
                }
                break;
            }
            c->req.body = c->in + c->head_len;
            c->req.body_len = (size_t)hp->content_length;
            c->saved = (unsigned char)c->in[need];
            c->saved_pos = need;
            c->in[need] = '\0';
            c->msg_len = need;
        } else {
            int st = cg_hp_chunked(&c->ch, c->in + c->head_len, c->in_len - c->head_len,
                                   h->max_body, h->max_header, &why);
            if (st == 0) {
                /* The framing read so far is dropped, so that a body of
                 * many small chunks takes no more room than its data. */
                size_t rest = c->in_len - c->head_len - c->ch.in;
                memmove(c->in + c->head_len + c->ch.out, c->in + c->head_len + c->ch.in, rest);
                c->in_len = c->head_len + c->ch.out + rest;
                c->ch.in = c->ch.out;
                break;
            }
            if (st != 1) {
                layer_error(c, st, why);
                continue;
            }
            c->req.body = c->in + c->head_len;
            c->req.body_len = c->ch.out;
            c->in[c->head_len + c->ch.out] = '\0';
            c->msg_len = c->head_len + c->ch.in;
        }
        /* Pointers into the buffer are taken only now: reading the body
         * may have moved it. */
        c->req.method_name = c->in + hp->method_name.off;
        c->req.target = c->in + hp->target.off;
        dispatch(c);
    }
    c->in_dispatch = 0;
    if (c->dead)
        conn_free(c);
}

/* ---- accepting ---- */

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)lev;
    (void)socklen;
    struct cg_httpd *h = arg;
    /* Each response is one write; Nagle would only delay the last part of
     * one that did not fit. */
    int on = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (conn_new(h, fd, sa) == NULL) {
        cg_log_error("http connection setup failed", "");
        close(fd);
    }
}

/*
 * When accept() fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS), the listening socket stays readable, so libevent would call
 * accept() again at once, for ever: the loop spins at full CPU. A flood of
 * connections must not do that. The listener's error callback stops
 * accepting for ACCEPT_PAUSE_MS instead; connections waiting meanwhile stay
 * in the kernel's backlog and are accepted when accepting resumes.
 */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct cg_httpd *h = arg;
    evconnlistener_disable(lev);
    /* One line when a run of failures starts, then at most one per 10 s. */
    uint64_t now = cg_mono_ms();
    if (h->accept_errors++ == 0 || now - h->accept_log_ms >= 10000) {
        h->accept_log_ms = now;
        cg_log_error("http accept failed; pausing new connections",
                     "error=%s pause_ms=%d failures=%llu", evutil_socket_error_to_string(err),
                     ACCEPT_PAUSE_MS, h->accept_errors);
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = ACCEPT_PAUSE_MS * 1000};
    evtimer_add(h->accept_resume, &tv);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_httpd *h = arg;
    if (h->lev != NULL && !h->stopped)
        evconnlistener_enable(h->lev);
}

int cg_httpd_listen(struct cg_httpd *h, char *err, size_t errlen)
{
    if (h->lev != NULL || h->stopped) {
        cg_err_set(err, errlen, "%s port %d: %s", h->bind_address, h->port_opt,
                   h->stopped ? "server stopped" : "already listening");
        return -1;
    }
    evutil_socket_t fd =
        cg_http_listen_socket(h->bind_address, h->port_opt, h->reuseport, err, errlen);
    if (fd < 0)
        return -1;

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (port == 0) {
        cg_err_set(err, errlen, "cannot listen on %s port %d: %s", h->bind_address, h->port_opt,
                   "getsockname failed");
        close(fd);
        return -1;
    }

    /* The listener owns the fd from here (LEV_OPT_CLOSE_ON_FREE); the
     * backlog of 0 tells libevent that listen() was already called. */
    h->lev = evconnlistener_new(h->base, on_accept, h,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (h->lev == NULL) {
        close(fd);
        cg_err_set(err, errlen, "cannot listen on %s port %d: %s", h->bind_address, h->port_opt,
                   "evconnlistener_new failed");
        return -1;
    }
    h->port = port;
    evconnlistener_set_error_cb(h->lev, on_accept_error);
    cg_log_debug("http listening", "address=%s port=%d reuseport=%d", h->bind_address, port,
                 h->reuseport ? 1 : 0);
    return 0;
}

/* Closes the listening socket. Connections already accepted are served,
 * including further requests on an idle keep-alive connection until it
 * times out; to wind those down, replies from now on carry
 * "Connection: close". Open streams stay open. */
void cg_httpd_stop_accepting(struct cg_httpd *h)
{
    if (h == NULL || h->stopped)
        return;
    h->stopped = 1;
    evtimer_del(h->accept_resume);
    if (h->lev != NULL) {
        evconnlistener_free(h->lev);
        h->lev = NULL;
        cg_log_debug("http stopped accepting", "port=%d", h->port);
    }
}

void cg_httpd_free(struct cg_httpd *h)
{
    if (h == NULL)
        return;
    h->freeing = 1;
    cg_httpd_stop_accepting(h);
    event_free(h->accept_resume);
    /* Each unanswered request is answered; the nonblocking write gives the
     * 503 its chance to reach the client before the socket closes. */
    struct cg_list *it;
    while ((it = cg_list_first(&h->live)) != NULL)
        cg_http_reply_error(cg_list_entry(it, struct cg_http_req, link), 503, "shutting_down",
                            "the server is shutting down");
    while ((it = cg_list_first(&h->conns)) != NULL) {
        struct conn *c = cg_list_entry(it, struct conn, link);
        if (c->stream != NULL)
            stream_drop(c, 1);
        c->in_dispatch = 0;
        conn_free(c);
    }
    for (size_t i = 0; i < h->nroutes; i++)
        free(h->routes[i].pattern);
    free(h->routes);
    free(h->bind_address);
    free(h);
}

/* ---- request getters ---- */

enum cg_http_method cg_http_req_method(const struct cg_http_req *req)
{
    return req->method;
}

const char *cg_http_req_path(const struct cg_http_req *req)
{
    return req->path;
}

const char *cg_http_req_path_rest(const struct cg_http_req *req)
{
    return req->path_rest;
}

const char *cg_http_req_uri(const struct cg_http_req *req)
{
    return req->target != NULL ? req->target : "";
}

const char *cg_http_req_header(const struct cg_http_req *req, const char *name)
{
    const struct conn *c = req->c;
    for (size_t i = 0; i < c->hp.nfields; i++)
        if (strcasecmp(c->in + c->hp.fields[i].name.off, name) == 0)
            return c->in + c->hp.fields[i].value.off;
    return NULL;
}

const char *cg_http_req_body(struct cg_http_req *req, size_t *len)
{
    if (len != NULL)
        *len = req->body_len;
    return req->body;
}

const struct cg_form *cg_http_req_query(struct cg_http_req *req)
{
    if (req->query_state == 0) {
        const char *q = strchr(req->target != NULL ? req->target : "", '?');
        q = q != NULL ? q + 1 : "";
        req->query_state = cg_form_parse(&req->query, q, strcspn(q, "#"), NULL) == 0 ? 1 : -1;
    }
    return req->query_state == 1 ? &req->query : NULL;
}

/* True when the media type (before any parameters) is form-encoded. */
static int is_form_type(const char *ct)
{
    static const char want[] = "application/x-www-form-urlencoded";
    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == sizeof want - 1 && strncasecmp(ct, want, n) == 0;
}

const struct cg_form *cg_http_req_form(struct cg_http_req *req, const char **err)
{
    if (req->form_state == 0) {
        if (!is_form_type(cg_http_req_header(req, "Content-Type"))) {
            req->form_err = "Content-Type is not application/x-www-form-urlencoded";
            req->form_state = -1;
        } else {
            size_t n;
            const char *body = cg_http_req_body(req, &n);
            const char *perr = NULL;
            if (cg_form_parse(&req->form, body, n, &perr) == 0) {
                req->form_state = 1;
            } else {
                req->form_err = perr != NULL ? perr : "malformed form body";
                req->form_state = -1;
            }
        }
    }
    if (req->form_state == 1)
        return &req->form;
    if (err != NULL)
        *err = req->form_err;
    return NULL;
}

const char *cg_http_req_peer(const struct cg_http_req *req)
{
    return req->c->peer;
}

int cg_http_req_is_loopback(const struct cg_http_req *req)
{
    return req->c->loopback;
}

const char *cg_http_req_bearer(const struct cg_http_req *req)
{
    const char *h = cg_http_req_header(req, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    return *h ? h : NULL;
}

/* ---- replies ---- */

void cg_http_set_header(struct cg_http_req *req, const char *name, const char *value)
{
    if (req == NULL || name == NULL || value == NULL)
        return;
    struct conn *c = req->c;
    if (!cg_http_is_token(name) || !cg_http_valid_value(value)) {
        cg_log_warn("http header dropped", "name=%s",
                    cg_http_is_token(name) ? name : "(malformed)");
        return;
    }
    /* Framing is the server's: its own Content-Length, Transfer-Encoding
     * and Date are the only ones sent. */
    if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0 ||
        strcasecmp(name, "Date") == 0)
        return;
    if (strcasecmp(name, "Connection") == 0) {
        if (cg_hp_list_has(value, strlen(value), "close"))
            req->want_close = 1;
        return;
    }
    if (strcasecmp(name, "Content-Type") == 0) {
        cg_buf_reset(&c->ctype);
        cg_buf_appends(&c->ctype, value);
        return;
    }
    if (strcasecmp(name, "Cache-Control") == 0)
        req->has_cc = 1;
    else if (strcasecmp(name, "X-Content-Type-Options") == 0)
        req->has_xcto = 1;
    cg_buf_printf(&c->hdrs, "%s: %s\r\n", name, value);
}

/* The request leaves the handlers' hands. */
static void req_release(struct cg_http_req *r)
{
    cg_list_remove(&r->link);
    cg_list_init(&r->link);
    r->c->h->inflight--;
}

void cg_http_reply(struct cg_http_req *req, int status, const char *content_type, const char *body,
                   size_t len)
{
    if (req == NULL)
        return;
    struct conn *c = req->c;
    if (c->phase != P_HANDLER) {
        cg_log_error("http reply to a request not awaiting one", "status=%d", status);
        return;
    }
    if (status < 100 || status > 599) {
        cg_log_error("http handler replied with an invalid status", "status=%d", status);
        status = 500;
        content_type = NULL;
        body = NULL;
        len = 0;
    }
    if (body == NULL)
        len = 0;
    /* RFC 9110: 1xx, 204 and 304 have no content at all. */
    int bodyless = status < 200 || status == 204 || status == 304;
    req_release(req);
    respond(c, status, content_type, body, len, bodyless, NULL);
    observe(c->h, req, status);
    conn_next(c);
}

/* ---- streamed replies ---- */

/* Ends a stream that failed (notify: from the loop, with the callback). */
static void stream_drop(struct conn *c, int notify)
{
    struct cg_http_stream *s = c->stream;
    if (s == NULL)
        return;
    c->stream = NULL;
    if (notify && s->closed != NULL)
        s->closed(s, s->arg);
    free(s);
}

struct cg_http_stream *cg_http_stream_start(struct cg_http_req *req, int status,
                                            const char *content_type, size_t max_pending,
                                            cg_http_stream_closed_cb closed, void *arg)
{
    if (req == NULL)
        return NULL;
    struct conn *c = req->c;
    if (c->phase != P_HANDLER)
        return NULL;
    if (status < 200 || status > 599 || status == 204 || status == 304) {
        cg_http_reply_error(req, 500, "internal", "a stream cannot start with this status");
        return NULL;
    }
    int chunked = c->minor == 1;
    if (!chunked)
        c->keep_alive = 0; /* the body ends when the connection does */
    req_release(req);
    respond(c, status, content_type, NULL, 0, 1, chunked ? "Transfer-Encoding: chunked\r\n" : NULL);
    observe(c->h, req, status);
    if (c->head_only || c->fd < 0) {
        conn_next(c);
        return NULL;
    }
    req_end(req);
    struct cg_http_stream *s = cg_calloc(1, sizeof *s);
    s->c = c;
    s->max_pending = max_pending;
    s->closed = closed;
    s->arg = arg;
    s->chunked = chunked;
    c->stream = s;
    c->phase = P_STREAM;
    if (!out_pending(c))
        disarm_timer(c);
    return s;
}

/* The stream is over on the server's side: its end was written, or it
 * failed (then without the callback). */
static void stream_finish(struct cg_http_stream *s, int ok)
{
    struct conn *c = s->c;
    c->stream = NULL;
    free(s);
    if (!ok) {
        conn_close(c);
        return;
    }
    conn_next(c);
}

int cg_http_stream_write(struct cg_http_stream *s, const void *data, size_t len)
{
    struct conn *c = s->c;
    if (c->fd < 0) {
        stream_finish(s, 0);
        return -1;
    }
    if (len == 0)
        return 0; /* an empty chunk would end the body */
    char pre[24];
    int plen = snprintf(pre, sizeof pre, "%zx\r\n", len);
    struct iovec iov[3] = {{pre, (size_t)plen}, {(void *)data, len}, {(void *)"\r\n", 2}};
    size_t frame = s->chunked ? (size_t)plen + len + 2 : len;
    size_t pending = c->out.len - c->out_off;
    if (pending > 0 && pending + frame > s->max_pending) {
        cg_log_info("http stream dropped: client not reading", "peer=%s pending=%zu", c->peer,
                    pending);
        stream_finish(s, 0);
        return -1;
    }
    int rc = s->chunked ? conn_sendv(c, iov, 3) : conn_sendv(c, iov + 1, 1);
    if (rc != 0 || c->out.len - c->out_off > s->max_pending) {
        stream_finish(s, 0);
        return -1;
    }
    return 0;
}

size_t cg_http_stream_pending(const struct cg_http_stream *s)
{
    return s->c->out.len - s->c->out_off;
}

int cg_http_stream_sndbuf(struct cg_http_stream *s, int bytes)
{
    if (s->c->fd < 0 || bytes <= 0)
        return -1;
    return setsockopt(s->c->fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

void cg_http_stream_end(struct cg_http_stream *s)
{
    struct conn *c = s->c;
    if (c->fd < 0) {
        stream_finish(s, 0);
        return;
    }
    if (s->chunked) {
        static const char last[] = "0\r\n\r\n";
        if (conn_send(c, last, sizeof last - 1, NULL, 0) != 0) {
            stream_finish(s, 0);
            return;
        }
    } else {
        c->closing = 1;
    }
    /* A server that stopped accepting winds its connections down: the
     * stream's head went out before, so the close comes without notice,
     * after a complete message. */
    if (c->h->stopped)
        c->closing = 1;
    stream_finish(s, 1);
}

void cg_http_reply_json(struct cg_http_req *req, int status, const char *json)
{
    cg_http_reply(req, status, "application/json", json, json != NULL ? strlen(json) : 0);
}

void cg_http_reply_error(struct cg_http_req *req, int status, const char *code, const char *message)
{
    struct cg_buf b;
    if (code == NULL)
        code = "error";
    if (message == NULL)
        message = "";
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    if (cg_buf_printf(&b, "{\"status\":%d,\"error\":", status) != 0 ||
        cg_buf_append_json_str(&b, code, strlen(code)) != 0 ||
        cg_buf_appends(&b, ",\"message\":") != 0 ||
        cg_buf_append_json_str(&b, message, strlen(message)) != 0 || cg_buf_appendc(&b, '}') != 0) {
        /* Only an impossible ceiling breach gets here; still answer. */
        cg_buf_reset(&b);
        cg_buf_printf(&b, "{\"status\":%d}", status);
    }
    cg_http_reply_json(req, status, cg_buf_str(&b));
    cg_buf_free(&b);
}
