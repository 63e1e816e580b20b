#include "base/fmacros.h"

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "net/httpd.h"
#include "base/log.h"

/*
 * The server runs on an event_base in this process; the client is a
 * nonblocking raw TCP socket driven by the same loop, so everything stays on
 * one thread and the tests can send exactly the bytes they want (malformed
 * request lines, oversized headers, pipelined requests, early hang-ups).
 */

#define MAX_BODY   1024
#define MAX_HEADER 1024

/* ---- raw loopback client ---- */

struct client {
    struct event_base *base;
    evutil_socket_t fd;
    struct event *rev;
    struct event *wev;
    struct cg_buf out;
    size_t out_off;
    struct cg_buf in;
    int eof;
    int want;      /* responses to wait for */
    int done;      /* set when want responses arrived or the peer closed */
    unsigned head; /* bit i: response i answers a HEAD request */
};

struct resp {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
};

static int count_responses(const struct client *c, struct resp *out, int max);
static int client_wait_for(struct client *c, const char *needle, int timeout_ms);

static void client_check(struct client *c)
{
    if (c->eof || count_responses(c, NULL, c->want) >= c->want)
        c->done = 1;
}

static void on_client_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct client *c = arg;
    char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            assert_int_equal(cg_buf_append(&c->in, buf, (size_t)n), 0);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EINTR)
            continue;
        /* EOF or reset: either way the server is done with us. */
        c->eof = 1;
        event_del(c->rev);
        event_del(c->wev);
        break;
    }
    client_check(c);
}

static void client_flush(struct client *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return;
        }
        /* The server closed on us (e.g. after answering 413 early). */
        c->out_off = c->out.len;
    }
    event_del(c->wev);
}

static void on_client_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_flush(arg);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void client_adopt(struct client *c, struct event_base *base, int fd)
{
    memset(c, 0, sizeof *c);
    c->base = base;
    c->fd = fd;
    assert_int_equal(evutil_make_socket_nonblocking(fd), 0);
    cg_buf_init(&c->out, CG_BUF_UNBOUNDED);
    cg_buf_init(&c->in, CG_BUF_UNBOUNDED);
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_client_read, c);
    c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_client_write, c);
    assert_non_null(c->rev);
    assert_non_null(c->wev);
    assert_int_equal(event_add(c->rev, NULL), 0);
}

static void client_open(struct client *c, struct event_base *base, int port)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        fail_msg("connect to port %d: %s", port, strerror(errno));
    client_adopt(c, base, fd);
}

static void client_close(struct client *c)
{
    if (c->rev != NULL) {
        event_free(c->rev);
        event_free(c->wev);
        c->rev = c->wev = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    cg_buf_free(&c->out);
    cg_buf_free(&c->in);
}

static void client_send(struct client *c, const char *data, size_t len)
{
    assert_int_equal(cg_buf_append(&c->out, data, len), 0);
    client_flush(c);
}

static void client_sends(struct client *c, const char *s)
{
    client_send(c, s, strlen(s));
}

/* Runs the loop until the client holds `want` complete responses in all (or
 * the server closed the connection); returns how many are complete. */
static int client_wait(struct client *c, int want, int timeout_ms)
{
    c->want = want;
    c->done = 0;
    client_check(c);
    cgt_run_until(c->base, &c->done, timeout_ms);
    return count_responses(c, NULL, want);
}

/* Runs the loop until the server closes the connection; returns c->eof. */
static int client_wait_eof(struct client *c, int timeout_ms)
{
    c->want = 1 << 30;
    c->done = c->eof;
    cgt_run_until(c->base, &c->done, timeout_ms);
    return c->eof;
}

static const char *find_crlfcrlf(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n')
            return s + i;
    return NULL;
}

/* Value of a header in a raw header block, malloc'd, or NULL. */
static char *head_header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t vl = e != NULL ? (size_t)(e - v) : strlen(v);
            return cg_strndup(v, vl);
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

static int head_count(const char *head, const char *name)
{
    int n = 0;
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':')
            n++;
    return n;
}

/* Parses the complete responses received so far (up to max); with out, each
 * one is filled in (free with resp_free). */
static int count_responses(const struct client *c, struct resp *out, int max)
{
    const char *s = c->in.data;
    size_t n = c->in.len;
    int count = 0;
    while (count < max && n > 0) {
        const char *end = find_crlfcrlf(s, n);
        if (end == NULL)
            break;
        size_t hlen = (size_t)(end - s) + 2;
        char *head = cg_strndup(s, hlen);
        int status = 0;
        sscanf(head, "HTTP/1.%*d %d", &status);
        char *cl = head_header(head, "Content-Length");
        size_t blen;
        int bodyless = (count < 32 && ((c->head >> count) & 1)) || status == 204 || status == 304;
        if (bodyless)
            blen = 0;
        else if (cl != NULL)
            blen = (size_t)strtoul(cl, NULL, 10);
        else if (c->eof)
            blen = n - hlen - 2;
        else
            blen = (size_t)-1;
        free(cl);
        if (blen == (size_t)-1 || n - hlen - 2 < blen) {
            free(head);
            break;
        }
        if (out != NULL) {
            out[count].status = status;
            out[count].head = head;
            out[count].body = cg_malloc(blen + 1);
            memcpy(out[count].body, end + 4, blen);
            out[count].body[blen] = '\0';
            out[count].body_len = blen;
        } else {
            free(head);
        }
        s = end + 4 + blen;
        n -= hlen + 2 + blen;
        count++;
    }
    return count;
}

static void resp_free(struct resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request on a fresh connection; returns the response in r. */
static void exchange_ex(struct event_base *base, int port, const char *raw, size_t len, int head,
                        struct resp *r)
{
    struct client c;
    client_open(&c, base, port);
    c.head = head ? 1u : 0u;
    client_send(&c, raw, len);
    int got = client_wait(&c, 1, 5000);
    if (got != 1)
        fail_msg("no complete response to %.40s (got %zu bytes, eof=%d)", raw, c.in.len, c.eof);
    assert_int_equal(count_responses(&c, r, 1), 1);
    client_close(&c);
}

static void exchange(struct event_base *base, int port, const char *raw, struct resp *r)
{
    exchange_ex(base, port, raw, strlen(raw), 0, r);
}

static void assert_header(const struct resp *r, const char *name, const char *want)
{
    char *v = head_header(r->head, name);
    if (want == NULL) {
        if (v != NULL)
            fail_msg("unexpected header %s: %s", name, v);
        return;
    }
    if (v == NULL)
        fail_msg("missing header %s in\n%s", name, r->head);
    assert_string_equal(v, want);
    free(v);
}

/* ---- server fixture ---- */

struct observed {
    char route[64];
    enum cg_http_method method;
    int status;
    uint64_t duration_us;
    int count;
};

struct fx {
    struct event_base *base;
    struct cg_httpd *h;
    int port;
    struct observed obs;
    struct cg_http_req *pending; /* held by the async handler */
    struct event *timer;
    int async_calls;
    int async_replied;
    int async_delay_ms;            /* 200 unless a test changes it */
    struct cg_http_stream *stream; /* opened by h_stream */
    int stream_closed;             /* closed callbacks seen */
    size_t stream_max;             /* max_pending for the next stream */
};

static void observer(const char *route, enum cg_http_method method, int status,
                     uint64_t duration_us, void *arg)
{
    struct observed *o = arg;
    snprintf(o->route, sizeof o->route, "%s", route);
    o->method = method;
    o->status = status;
    o->duration_us = duration_us;
    o->count++;
}

static void h_hello(struct cg_http_req *req, void *arg)
{
    (void)arg;
    cg_http_reply(req, 200, "text/plain", "hello", 5);
}

static void h_text(struct cg_http_req *req, const char *fmt, const char *a, const char *b)
{
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, a, b);
    cg_http_reply(req, 200, "text/plain", buf, strlen(buf));
}

static void h_rest(struct cg_http_req *req, void *arg)
{
    (void)arg;
    h_text(req, "path=%s rest=%s", cg_http_req_path(req), cg_http_req_path_rest(req));
}

static void h_echo(struct cg_http_req *req, void *arg)
{
    (void)arg;
    size_t len;
    const char *body = cg_http_req_body(req, &len);
    assert_int_equal(body[len], '\0');
    cg_http_set_header(req, "X-Uri", cg_http_req_uri(req));
    const char *ua = cg_http_req_header(req, "User-Agent");
    cg_http_set_header(req, "X-UA", ua != NULL ? ua : "-");
    cg_http_reply(req, 200, "application/octet-stream", body, len);
}

static void h_query(struct cg_http_req *req, void *arg)
{
    (void)arg;
    const struct cg_form *q = cg_http_req_query(req);
    if (q == NULL) {
        cg_http_reply_error(req, 400, "bad_query", "malformed query");
        return;
    }
    /* A second call returns the cached parse. */
    assert_ptr_equal(cg_http_req_query(req), q);
    char buf[512];
    const char *a = cg_form_get(q, "a");
    const char *b = cg_form_get(q, "b");
    const char *a2 = cgt_form_count(q, "a") > 1 ? q->pairs[1].value : "";
    snprintf(buf, sizeof buf, "a=%s|a2=%s|n=%zu|b=%s|pairs=%zu", a ? a : "-", a2,
             cgt_form_count(q, "a"), b ? b : "-", q->n);
    cg_http_reply(req, 200, "text/plain", buf, strlen(buf));
}

static void h_form(struct cg_http_req *req, void *arg)
{
    (void)arg;
    const char *err = NULL;
    const struct cg_form *f = cg_http_req_form(req, &err);
    if (f == NULL) {
        assert_non_null(err);
        cg_http_reply_error(req, 415, "bad_form", err);
        return;
    }
    char buf[512];
    const char *from = cg_form_get(f, "From");
    snprintf(buf, sizeof buf, "From=%s|bodies=%zu|first=%s", from ? from : "-",
             cgt_form_count(f, "Body"), cg_form_get(f, "Body") ? cg_form_get(f, "Body") : "-");
    cg_http_reply(req, 200, "text/plain", buf, strlen(buf));
}

static void h_peer(struct cg_http_req *req, void *arg)
{
    (void)arg;
    char buf[256];
    snprintf(buf, sizeof buf, "peer=%s loopback=%d", cg_http_req_peer(req),
             cg_http_req_is_loopback(req));
    cg_http_reply(req, 200, "text/plain", buf, strlen(buf));
}

static void h_info(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    char buf[512];
    const char *ua = cg_http_req_header(req, "x-test");
    snprintf(buf, sizeof buf, "inflight=%zu method=%d uri=%s x-test=%s", cg_httpd_inflight(f->h),
             (int)cg_http_req_method(req), cg_http_req_uri(req), ua ? ua : "-");
    cg_http_reply(req, 200, "text/plain", buf, strlen(buf));
}

static void h_cache(struct cg_http_req *req, void *arg)
{
    (void)arg;
    cg_http_set_header(req, "Cache-Control", "max-age=60");
    cg_http_set_header(req, "X-Custom", "yes");
    /* CR/LF would split the response; the header is dropped instead. */
    cg_http_set_header(req, "X-Evil", "a\r\nInjected: 1");
    cg_http_reply_json(req, 201, "{\"ok\":true}");
}

static void h_nocontent(struct cg_http_req *req, void *arg)
{
    (void)arg;
    cg_http_reply(req, 204, NULL, "ignored", 7);
}

static void on_async_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fx *f = arg;
    struct cg_http_req *req = f->pending;
    f->pending = NULL;
    f->async_replied++;
    cg_http_reply(req, 200, "text/plain", "late", 4);
}

static void h_async(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    assert_null(f->pending);
    f->pending = req;
    f->async_calls++;
    int ms = f->async_delay_ms ? f->async_delay_ms : 200;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    assert_int_equal(evtimer_add(f->timer, &tv), 0);
}

static void on_stream_closed(struct cg_http_stream *s, void *arg)
{
    struct fx *f = arg;
    assert_ptr_equal(s, f->stream);
    f->stream_closed++;
    f->stream = NULL;
}

static void h_stream(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    cg_http_set_header(req, "X-Stream", "yes");
    f->stream = cg_http_stream_start(req, 200, "text/event-stream",
                                     f->stream_max ? f->stream_max : 65536, on_stream_closed, f);
    if (f->stream != NULL)
        assert_int_equal(cg_http_stream_write(f->stream, "data: a\n\n", 9), 0);
}

static struct cg_httpd *make_server(struct event_base *base, const char *addr, int port,
                                    int reuseport)
{
    struct cg_httpd_opts o = {
        .bind_address = addr,
        .port = port,
        .max_body_bytes = MAX_BODY,
        .max_header_bytes = MAX_HEADER,
        .timeout_seconds = 5,
        .reuseport = reuseport,
    };
    struct cg_httpd *h = cg_httpd_new(base, &o);
    assert_non_null(h);
    return h;
}

static void add_routes(struct fx *f)
{
    struct cg_httpd *h = f->h;
    assert_int_equal(cg_httpd_route(h, "/hello", CG_HTTP_GET, h_hello, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/wait-times/*", CG_HTTP_GET, h_rest, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/wait-times/special", CG_HTTP_GET, h_rest, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/echo", CG_HTTP_POST, h_echo, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/query", CG_HTTP_GET, h_query, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/form", CG_HTTP_POST, h_form, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/peer", CG_HTTP_GET, h_peer, NULL), 0);
    assert_int_equal(
        cg_httpd_route(h, "/info",
                       CG_HTTP_GET | CG_HTTP_PUT | CG_HTTP_DELETE | CG_HTTP_OPTIONS | CG_HTTP_PATCH,
                       h_info, f),
        0);
    assert_int_equal(cg_httpd_route(h, "/cache", CG_HTTP_GET, h_cache, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/nocontent", CG_HTTP_GET, h_nocontent, NULL), 0);
    assert_int_equal(cg_httpd_route(h, "/async", CG_HTTP_GET | CG_HTTP_POST, h_async, f), 0);
    assert_int_equal(cg_httpd_route(h, "/stream", CG_HTTP_GET, h_stream, f), 0);
}

static int setup(void **state)
{
    struct fx *f = cg_calloc(1, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->timer = evtimer_new(f->base, on_async_timer, f);
    assert_non_null(f->timer);
    f->h = make_server(f->base, "127.0.0.1", 0, 0);
    add_routes(f);
    cg_httpd_set_observer(f->h, observer, &f->obs);
    char err[256] = "";
    assert_int_equal(cg_httpd_listen(f->h, err, sizeof err), 0);
    f->port = cg_httpd_port(f->h);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    /* A pending async reply must not fire into a freed server. */
    event_free(f->timer);
    cg_httpd_free(f->h);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* ---- tests ---- */

static void test_exact_route(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_true(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_header(&r, "Content-Type", "text/plain");
    assert_header(&r, "Content-Length", "5");
    assert_header(&r, "Cache-Control", "no-store");
    assert_header(&r, "X-Content-Type-Options", "nosniff");
    resp_free(&r);
    assert_int_equal(f->obs.count, 1);
    assert_string_equal(f->obs.route, "/hello");
    assert_int_equal(f->obs.method, CG_HTTP_GET);
    assert_int_equal(f->obs.status, 200);
    assert_int_equal(cg_httpd_inflight(f->h), 0);
}

static void test_prefix_route(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "GET /wait-times/WQ%201%2Fx?z=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "path=/wait-times/WQ 1/x rest=WQ 1/x");
    resp_free(&r);
    assert_string_equal(f->obs.route, "/wait-times/*");

    /* The exact route beats the prefix. */
    exchange(f->base, f->port, "GET /wait-times/special HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "path=/wait-times/special rest=");
    resp_free(&r);
    assert_string_equal(f->obs.route, "/wait-times/special");

    /* An empty remainder still matches; the bare prefix without '/' does not. */
    exchange(f->base, f->port, "GET /wait-times/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "path=/wait-times/ rest=");
    resp_free(&r);
    exchange(f->base, f->port, "GET /wait-times HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    /* A doubled slash is part of the path, not an authority. */
    exchange(f->base, f->port, "GET //wait-times/A HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    exchange(f->base, f->port, "GET /wait-times//A?x=/y HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "path=/wait-times//A rest=/A");
    resp_free(&r);

    /* Absolute-form targets route on their path. */
    exchange(f->base, f->port, "GET http://example.com/wait-times/A HTTP/1.1\r\nHost: x\r\n\r\n",
             &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "path=/wait-times/A rest=A");
    resp_free(&r);
    exchange(f->base, f->port, "GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_string_equal(f->obs.route, "");
}

static void test_not_found(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "GET /nope?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    assert_true(strncmp(r.head, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    assert_string_equal(
        r.body, "{\"status\":404,\"error\":\"not_found\",\"message\":\"no such resource\"}");
    assert_header(&r, "Content-Type", "application/json");
    assert_header(&r, "Cache-Control", "no-store");
    resp_free(&r);
    assert_string_equal(f->obs.route, "");
    assert_int_equal(f->obs.status, 404);
    /* Paths are case-sensitive and matched whole. */
    exchange(f->base, f->port, "GET /HELLO HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    exchange(f->base, f->port, "GET /hello/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
}

static void test_method_not_allowed(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET, HEAD");
    assert_string_equal(r.body, "{\"status\":405,\"error\":\"method_not_allowed\",\"message\":"
                                "\"method not allowed for this resource\"}");
    resp_free(&r);
    assert_string_equal(f->obs.route, "/hello");
    assert_int_equal(f->obs.method, CG_HTTP_DELETE);
    assert_int_equal(f->obs.status, 405);

    exchange(f->base, f->port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "POST");
    resp_free(&r);

    exchange(f->base, f->port, "POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET, HEAD, PUT, DELETE, OPTIONS, PATCH");
    resp_free(&r);

    /* TRACE and CONNECT reach the router as CG_HTTP_OTHER. */
    exchange(f->base, f->port, "TRACE /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    assert_int_equal(f->obs.method, CG_HTTP_OTHER);

    /* Methods evhttp cannot parse get its own 501. */
    exchange(f->base, f->port, "BREW /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 501);
    resp_free(&r);

    /* Every other method the router knows reaches the handler. */
    const char *methods[] = {"PUT", "DELETE", "OPTIONS", "PATCH"};
    const int want[] = {CG_HTTP_PUT, CG_HTTP_DELETE, CG_HTTP_OPTIONS, CG_HTTP_PATCH};
    for (size_t i = 0; i < 4; i++) {
        char raw[128], expect[64];
        snprintf(raw, sizeof raw, "%s /info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                 methods[i]);
        exchange(f->base, f->port, raw, &r);
        assert_int_equal(r.status, 200);
        snprintf(expect, sizeof expect, "method=%d ", want[i]);
        assert_non_null(strstr(r.body, expect));
        resp_free(&r);
    }
}

static void test_head(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    c.head = 1; /* the first response answers HEAD */
    client_sends(&c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    /* Then a GET on the same connection: a stray body would corrupt it. */
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    struct resp r[2];
    assert_int_equal(count_responses(&c, r, 2), 2);
    assert_int_equal(r[0].status, 200);
    assert_header(&r[0], "Content-Length", "5");
    assert_header(&r[0], "Content-Type", "text/plain");
    assert_int_equal(r[0].body_len, 0);
    assert_int_equal(r[1].status, 200);
    assert_string_equal(r[1].body, "hello");
    /* Nothing beyond the two responses arrived. */
    const char *end = strstr(c.in.data, "\r\n\r\nhello");
    assert_non_null(end);
    assert_int_equal(strlen(end), strlen("\r\n\r\nhello"));
    resp_free(&r[0]);
    resp_free(&r[1]);
    client_close(&c);
    assert_int_equal(f->obs.method, CG_HTTP_GET);

    /* HEAD of an error reply keeps the JSON length, without the body. */
    struct resp e;
    const char *raw = "HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange_ex(f->base, f->port, raw, strlen(raw), 1, &e);
    assert_int_equal(e.status, 404);
    char *cl = head_header(e.head, "Content-Length");
    assert_non_null(cl);
    assert_true(atoi(cl) > 20);
    free(cl);
    resp_free(&e);
    assert_int_equal(f->obs.method, CG_HTTP_HEAD);
}

static void test_query(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "GET /query?a=1&a=two+words&b=%41%2B HTTP/1.1\r\nHost: x\r\n\r\n",
             &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "a=1|a2=two words|n=2|b=A+|pairs=3");
    resp_free(&r);

    exchange(f->base, f->port, "GET /query HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "a=-|a2=|n=0|b=-|pairs=0");
    resp_free(&r);

    exchange(f->base, f->port, "GET /query?a=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    exchange(f->base, f->port, "GET /query?a=%00 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
}

static void test_form_body(void **state)
{
    struct fx *f = *state;
    struct resp r;
    const char *body = "From=%2B15551234567&Body=hi+there&Body=again";
    char raw[512];
    snprintf(raw, sizeof raw,
             "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: Application/X-WWW-Form-Urlencoded; "
             "charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    exchange(f->base, f->port, raw, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "From=+15551234567|bodies=2|first=hi there");
    resp_free(&r);

    /* Empty body: an empty form. */
    exchange(f->base, f->port,
             "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: 0\r\n\r\n",
             &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "From=-|bodies=0|first=-");
    resp_free(&r);

    /* Malformed encoding. */
    exchange(f->base, f->port,
             "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: 5\r\n\r\na=%4G",
             &r);
    assert_int_equal(r.status, 415);
    resp_free(&r);
}

static void test_form_wrong_type(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port,
             "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
             "3\r\n\r\na=1",
             &r);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body, "Content-Type"));
    resp_free(&r);

    exchange(f->base, f->port, "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=1",
             &r);
    assert_int_equal(r.status, 415);
    resp_free(&r);

    /* A type that merely starts like the form type is not it. */
    exchange(
        f->base, f->port,
        "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencodedX\r\n"
        "Content-Length: 3\r\n\r\na=1",
        &r);
    assert_int_equal(r.status, 415);
    resp_free(&r);
}

static void test_body_echo_and_too_large(void **state)
{
    struct fx *f = *state;
    struct resp r;
    /* A body with a NUL inside comes back intact. */
    const char raw[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab\0cd";
    exchange_ex(f->base, f->port, raw, sizeof raw - 1, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "ab\0cd", 5);
    resp_free(&r);

    /* Exactly the limit is fine. */
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_printf(&b, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", MAX_BODY);
    for (int i = 0; i < MAX_BODY; i++)
        cg_buf_appendc(&b, 'x');
    exchange_ex(f->base, f->port, b.data, b.len, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, MAX_BODY);
    resp_free(&r);

    /* One byte more gets 413 as soon as the head is read, and the
     * connection closes. The observer sees it, with no route. */
    cg_buf_reset(&b);
    cg_buf_printf(&b, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", MAX_BODY + 1);
    for (int i = 0; i <= MAX_BODY; i++)
        cg_buf_appendc(&b, 'x');
    int before = f->obs.count;
    exchange_ex(f->base, f->port, b.data, b.len, 0, &r);
    assert_int_equal(r.status, 413);
    assert_header(&r, "Connection", "close");
    assert_header(&r, "Content-Type", "application/json");
    assert_non_null(strstr(r.body, "\"error\":\"body_too_large\""));
    resp_free(&r);
    assert_int_equal(f->obs.count, before + 1);
    assert_int_equal(f->obs.status, 413);
    assert_string_equal(f->obs.route, "");
    assert_int_equal(f->obs.method, CG_HTTP_POST);

    /* A body of one-byte chunks with long extensions: its framing is far
     * larger than any buffer the server keeps, its data is not. */
    cg_buf_reset(&b);
    cg_buf_appends(&b, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < MAX_BODY; i++) {
        cg_buf_appends(&b, "1;pad=");
        for (int k = 0; k < 100; k++)
            cg_buf_appendc(&b, 'p');
        cg_buf_printf(&b, "\r\n%c\r\n", 'a' + i % 26);
    }
    cg_buf_appends(&b, "0\r\n\r\n");
    assert_true(b.len > 100 * 1024);
    exchange_ex(f->base, f->port, b.data, b.len, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, MAX_BODY);
    assert_int_equal(r.body[0], 'a');
    assert_int_equal(r.body[MAX_BODY - 1], 'a' + (MAX_BODY - 1) % 26);
    resp_free(&r);

    /* Chunked bodies are held to the same limit. */
    cg_buf_reset(&b);
    cg_buf_printf(&b, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                  MAX_BODY + 10);
    for (int i = 0; i < MAX_BODY + 10; i++)
        cg_buf_appendc(&b, 'y');
    cg_buf_appends(&b, "\r\n0\r\n\r\n");
    exchange_ex(f->base, f->port, b.data, b.len, 0, &r);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    cg_buf_free(&b);

    /* The server is still fine. */
    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_headers_too_large(void **state)
{
    struct fx *f = *state;
    struct resp r;
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);

    /* Just under: names + values = MAX_HEADER ("Host" "x" and "X-Big"). */
    cg_buf_appends(&b, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (int i = 0; i < MAX_HEADER - 5 - 5; i++)
        cg_buf_appendc(&b, 'a');
    cg_buf_appends(&b, "\r\n\r\n");
    exchange_ex(f->base, f->port, b.data, b.len, 0, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* Over, spread across several headers. */
    cg_buf_reset(&b);
    cg_buf_appends(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 8; i++) {
        cg_buf_printf(&b, "X-H%d: ", i);
        for (int j = 0; j < MAX_HEADER / 8; j++)
            cg_buf_appendc(&b, 'b');
        cg_buf_appends(&b, "\r\n");
    }
    cg_buf_appends(&b, "\r\n");
    exchange_ex(f->base, f->port, b.data, b.len, 0, &r);
    assert_int_equal(r.status, 431);
    assert_true(strncmp(r.head, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
    assert_string_equal(r.body, "{\"status\":431,\"error\":\"headers_too_large\",\"message\":"
                                "\"request headers are too large\"}");
    resp_free(&r);
    assert_int_equal(f->obs.status, 431);
    cg_buf_free(&b);
}

static void test_headers_hard_ceiling(void **state)
{
    struct fx *f = *state;
    struct resp r;
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appends(&b, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Huge: ");
    for (int i = 0; i < 70000; i++)
        cg_buf_appendc(&b, 'c');
    cg_buf_appends(&b, "\r\n\r\n");
    int before = f->obs.count;
    exchange_ex(f->base, f->port, b.data, b.len, 0, &r);
    /* A head past the hard ceiling is refused before its end arrives:
     * 431 with the JSON error, and the connection closes. */
    assert_int_equal(r.status, 431);
    assert_header(&r, "Connection", "close");
    assert_header(&r, "Content-Type", "application/json");
    resp_free(&r);
    assert_int_equal(f->obs.count, before + 1);
    assert_int_equal(f->obs.status, 431);
    cg_buf_free(&b);

    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_malformed_requests(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "GARBAGE\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    exchange(f->base, f->port, "GET /hello HTTP/9.9\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* Paths that do not percent-decode are the router's 400. */
    exchange(f->base, f->port, "GET /hel%zzlo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"status\":400,\"error\":\"bad_request\",\"message\":"
                                "\"the request path is not validly encoded\"}");
    resp_free(&r);
    assert_int_equal(f->obs.status, 400);
    exchange(f->base, f->port, "GET /wait-times/a%00b HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    exchange(f->base, f->port, "GET /wait-times/a% HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_keepalive(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    client_sends(&c, "GET /wait-times/B HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    /* Pipelined: two requests in one write. */
    client_sends(
        &c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /wait-times/C HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 4, 5000), 4);
    struct resp r[4];
    assert_int_equal(count_responses(&c, r, 4), 4);
    assert_string_equal(r[0].body, "hello");
    assert_string_equal(r[1].body, "path=/wait-times/B rest=B");
    assert_string_equal(r[2].body, "hello");
    assert_string_equal(r[3].body, "path=/wait-times/C rest=C");
    for (int i = 0; i < 4; i++)
        resp_free(&r[i]);
    assert_int_equal(c.eof, 0);

    /* Connection: close is honoured. */
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(client_wait(&c, 5, 5000), 5);
    assert_int_equal(client_wait_eof(&c, 2000), 1);
    client_close(&c);

    /* HTTP/1.0 without keep-alive is closed after one response. */
    struct resp r10;
    exchange(f->base, f->port, "GET /hello HTTP/1.0\r\n\r\n", &r10);
    /* The server answers with its own version (RFC 9110 section 6.2). */
    assert_true(strncmp(r10.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_header(&r10, "Connection", "close");
    assert_string_equal(r10.body, "hello");
    resp_free(&r10);

    /* HTTP/1.0 asking for keep-alive gets it, and is told so. */
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    client_sends(&c, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    struct resp k[2];
    assert_int_equal(count_responses(&c, k, 2), 2);
    assert_header(&k[0], "Connection", "keep-alive");
    assert_header(&k[1], "Connection", "close");
    resp_free(&k[0]);
    resp_free(&k[1]);
    assert_int_equal(client_wait_eof(&c, 2000), 1);
    client_close(&c);

    /* "keep-alive, close": close wins. */
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n"
                     "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait_eof(&c, 5000), 1);
    assert_int_equal(count_responses(&c, NULL, 5), 1);
    client_close(&c);

    /* Expect: 100-continue gets the interim answer before the body. */
    client_open(&c, f->base, f->port);
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     "Content-Length: 3\r\n\r\n");
    assert_true(client_wait_for(&c, "HTTP/1.1 100 Continue\r\n\r\n", 5000));
    assert_int_equal(strncmp(c.in.data, "HTTP/1.1 100 Continue\r\n\r\n", 25), 0);
    client_sends(&c, "abc");
    assert_true(client_wait_for(&c, "\r\n\r\nabc", 5000));
    client_close(&c);
}

static void test_204_and_headers(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(
        &c, "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\nGET /cache HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    struct resp r[2];
    assert_int_equal(count_responses(&c, r, 2), 2);
    assert_int_equal(r[0].status, 204);
    assert_header(&r[0], "Content-Length", NULL);
    assert_int_equal(r[0].body_len, 0);
    assert_int_equal(r[1].status, 201);
    assert_true(strncmp(r[1].head, "HTTP/1.1 201 Created\r\n", 22) == 0);
    assert_header(&r[1], "Cache-Control", "max-age=60");
    assert_int_equal(head_count(r[1].head, "Cache-Control"), 1);
    assert_header(&r[1], "X-Custom", "yes");
    assert_header(&r[1], "X-Evil", NULL);
    assert_header(&r[1], "Injected", NULL);
    assert_header(&r[1], "Content-Type", "application/json");
    assert_string_equal(r[1].body, "{\"ok\":true}");
    resp_free(&r[0]);
    resp_free(&r[1]);
    client_close(&c);
}

static void test_async_reply(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    uint64_t t0 = cg_mono_ms();
    client_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    /* While the handler holds it, the request counts as in flight. */
    cgt_run_for(f->base, 50);
    assert_int_equal(f->async_calls, 1);
    assert_non_null(f->pending);
    assert_int_equal(cg_httpd_inflight(f->h), 1);
    assert_int_equal(c.in.len, 0);
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    uint64_t elapsed = cg_mono_ms() - t0;
    assert_true(elapsed >= 190);
    struct resp r;
    assert_int_equal(count_responses(&c, &r, 1), 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "late");
    resp_free(&r);
    assert_int_equal(cg_httpd_inflight(f->h), 0);
    assert_string_equal(f->obs.route, "/async");
    assert_true(f->obs.duration_us >= 190000);

    /* The connection is reusable after an asynchronous reply. */
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    client_close(&c);
}

static void async_disconnect(struct fx *f, const char *raw)
{
    struct client c;
    client_open(&c, f->base, f->port);
    int calls = f->async_calls;
    int replied = f->async_replied;
    client_sends(&c, raw);
    while (f->async_calls == calls)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_non_null(f->pending);
    client_close(&c);
    /* The handler replies 200 ms later to a client that is gone. */
    cgt_run_for(f->base, 400);
    assert_int_equal(f->async_replied, replied + 1);
    assert_null(f->pending);
    assert_int_equal(cg_httpd_inflight(f->h), 0);
    assert_int_equal(f->obs.status, 200);
}

static void test_async_client_disconnect(void **state)
{
    struct fx *f = *state;
    async_disconnect(f, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    async_disconnect(f, "POST /async HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    /* Reset rather than FIN: SO_LINGER 0 makes close() send RST. */
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    int calls = f->async_calls;
    while (f->async_calls == calls)
        event_base_loop(f->base, EVLOOP_ONCE);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    client_close(&c);
    cgt_run_for(f->base, 400);
    assert_null(f->pending);
    assert_int_equal(cg_httpd_inflight(f->h), 0);

    /* Bytes arriving on the connection while a reply is pending (the next
     * pipelined request) wait for the reply instead of upsetting evhttp. */
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    calls = f->async_calls;
    while (f->async_calls == calls)
        event_base_loop(f->base, EVLOOP_ONCE);
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    struct resp r[2];
    assert_int_equal(count_responses(&c, r, 2), 2);
    assert_string_equal(r[0].body, "late");
    assert_string_equal(r[1].body, "hello");
    resp_free(&r[0]);
    resp_free(&r[1]);
    client_close(&c);

    struct resp ok;
    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &ok);
    assert_int_equal(ok.status, 200);
    resp_free(&ok);
}

static void test_inflight_and_getters(void **state)
{
    struct fx *f = *state;
    assert_int_equal(cg_httpd_inflight(f->h), 0);
    struct resp r;
    exchange(f->base, f->port, "GET /info?x=%41 HTTP/1.1\r\nHost: x\r\nX-Test: hi there\r\n\r\n",
             &r);
    char want[256];
    snprintf(want, sizeof want, "inflight=1 method=%d uri=/info?x=%%41 x-test=hi there",
             CG_HTTP_GET);
    assert_string_equal(r.body, want);
    resp_free(&r);
    assert_int_equal(cg_httpd_inflight(f->h), 0);
}

static void test_stop_accepting(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 1, 5000), 1);

    int port = f->port;
    cg_httpd_stop_accepting(f->h);
    assert_int_equal(cg_httpd_port(f->h), 0);
    cg_httpd_stop_accepting(f->h); /* idempotent */
    char err[128];
    assert_int_equal(cg_httpd_listen(f->h, err, sizeof err), -1);

    int fd = tcp_connect(port);
    assert_int_equal(fd, -1);
    assert_int_equal(errno, ECONNREFUSED);

    /* The established keep-alive connection is still served, and told to
     * close. */
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    struct resp r[2];
    assert_int_equal(count_responses(&c, r, 2), 2);
    assert_header(&r[0], "Connection", NULL);
    assert_header(&r[1], "Connection", "close");
    assert_string_equal(r[1].body, "hello");
    resp_free(&r[0]);
    resp_free(&r[1]);
    assert_int_equal(client_wait_eof(&c, 2000), 1);
    client_close(&c);
}

static void test_stop_with_request_in_flight(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    while (f->async_calls == 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    cg_httpd_stop_accepting(f->h);
    assert_int_equal(cg_httpd_inflight(f->h), 1);
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    struct resp r;
    assert_int_equal(count_responses(&c, &r, 1), 1);
    assert_string_equal(r.body, "late");
    assert_header(&r, "Connection", "close");
    resp_free(&r);
    assert_int_equal(cg_httpd_inflight(f->h), 0);
    client_close(&c);
}

static void test_observer_and_reason(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "GET /wait-times/Q HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    resp_free(&r);
    assert_string_equal(f->obs.route, "/wait-times/*");
    assert_int_equal(f->obs.status, 200);
    assert_int_equal(f->obs.method, CG_HTTP_GET);
    int n = f->obs.count;
    cg_httpd_set_observer(f->h, NULL, NULL);
    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    resp_free(&r);
    assert_int_equal(f->obs.count, n);

    assert_string_equal(cg_http_reason(200), "OK");
    assert_string_equal(cg_http_reason(201), "Created");
    assert_string_equal(cg_http_reason(204), "No Content");
    assert_string_equal(cg_http_reason(304), "Not Modified");
    assert_string_equal(cg_http_reason(400), "Bad Request");
    assert_string_equal(cg_http_reason(401), "Unauthorized");
    assert_string_equal(cg_http_reason(403), "Forbidden");
    assert_string_equal(cg_http_reason(404), "Not Found");
    assert_string_equal(cg_http_reason(405), "Method Not Allowed");
    assert_string_equal(cg_http_reason(409), "Conflict");
    assert_string_equal(cg_http_reason(413), "Payload Too Large");
    assert_string_equal(cg_http_reason(415), "Unsupported Media Type");
    assert_string_equal(cg_http_reason(429), "Too Many Requests");
    assert_string_equal(cg_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(cg_http_reason(500), "Internal Server Error");
    assert_string_equal(cg_http_reason(502), "Bad Gateway");
    assert_string_equal(cg_http_reason(503), "Service Unavailable");
    assert_string_equal(cg_http_reason(504), "Gateway Timeout");
    assert_string_equal(cg_http_reason(299), "Unknown");
    assert_string_equal(cg_http_reason(0), "Unknown");
    assert_string_equal(cg_http_reason(-1), "Unknown");
}

static void test_route_validation(void **state)
{
    struct fx *f = *state;
    struct cg_httpd *h = f->h;
    assert_int_equal(cg_httpd_route(h, "", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "nolead", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/a*", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/a/*/b", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/a/**", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/a b", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/a?b", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/hello", CG_HTTP_POST, h_hello, NULL), -1); /* dup */
    assert_int_equal(cg_httpd_route(h, "/wait-times/*", CG_HTTP_GET, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/new", 0, h_hello, NULL), -1);
    assert_int_equal(cg_httpd_route(h, "/new", CG_HTTP_GET, NULL, NULL), -1);
    assert_int_equal(cg_httpd_route(h, NULL, CG_HTTP_GET, h_hello, NULL), -1);

    /* A catch-all prefix only gets what nothing else matched. */
    assert_int_equal(cg_httpd_route(h, "/*", CG_HTTP_GET, h_rest, NULL), 0);
    struct resp r;
    exchange(f->base, f->port, "GET /anything/else HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "path=/anything/else rest=anything/else");
    resp_free(&r);
    exchange(f->base, f->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "hello");
    resp_free(&r);
    exchange(f->base, f->port, "GET /wait-times/Z HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "path=/wait-times/Z rest=Z");
    resp_free(&r);
}

static void test_peer_loopback(void **state)
{
    struct fx *f = *state;
    struct resp r;
    exchange(f->base, f->port, "GET /peer HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "peer=127.0.0.1 loopback=1");
    resp_free(&r);
}

/* IPv6 loopback, where the host has it (reported as skipped otherwise). */
static void test_peer_loopback_ipv6(void **state)
{
    struct fx *f = *state;
    struct resp r;
    struct cg_httpd *h6 = make_server(f->base, "::1", 0, 0);
    assert_int_equal(cg_httpd_route(h6, "/peer", CG_HTTP_GET, h_peer, NULL), 0);
    char err[256] = "";
    if (cg_httpd_listen(h6, err, sizeof err) != 0) {
        print_message("no IPv6 loopback: %s\n", err);
        cg_httpd_free(h6);
        skip();
    }
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)cg_httpd_port(h6));
    sa.sin6_addr = in6addr_loopback;
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct client c;
    client_adopt(&c, f->base, fd);
    client_sends(&c, "GET /peer HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    assert_int_equal(count_responses(&c, &r, 1), 1);
    assert_string_equal(r.body, "peer=::1 loopback=1");
    resp_free(&r);
    client_close(&c);
    cg_httpd_free(h6);
}

/* An IPv4 client of a dual-stack listener is reported as IPv4, where the
 * host has IPv6 and dual-stack sockets (reported as skipped otherwise). */
static void test_peer_dual_stack(void **state)
{
    struct fx *f = *state;
    struct resp r;
    struct client c;
    char err[256] = "";
    struct cg_httpd *ds = make_server(f->base, "::", 0, 0);
    assert_int_equal(cg_httpd_route(ds, "/peer", CG_HTTP_GET, h_peer, NULL), 0);
    if (cg_httpd_listen(ds, err, sizeof err) != 0) {
        print_message("no IPv6: %s\n", err);
        cg_httpd_free(ds);
        skip();
    }
    int fd = tcp_connect(cg_httpd_port(ds));
    if (fd < 0) {
        print_message("no dual-stack socket: %s\n", strerror(errno));
        cg_httpd_free(ds);
        skip();
    }
    client_adopt(&c, f->base, fd);
    client_sends(&c, "GET /peer HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    assert_int_equal(count_responses(&c, &r, 1), 1);
    assert_string_equal(r.body, "peer=127.0.0.1 loopback=1");
    resp_free(&r);
    client_close(&c);
    cg_httpd_free(ds);
}

static void test_listen_errors_and_reuseport(void **state)
{
    struct fx *f = *state;
    char err[256] = "";

    /* The fixture's port is taken. */
    struct cg_httpd *h2 = make_server(f->base, "127.0.0.1", f->port, 0);
    assert_int_equal(cg_httpd_listen(h2, err, sizeof err), -1);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(cg_httpd_port(h2), 0);
    cg_httpd_free(h2);

    struct cg_httpd *h3 = make_server(f->base, "not-an-address", 0, 0);
    err[0] = '\0';
    assert_int_equal(cg_httpd_listen(h3, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    cg_httpd_free(h3);

    /* Two reuseport servers share a port. */
    struct cg_httpd *a = make_server(f->base, "127.0.0.1", 0, 1);
    assert_int_equal(cg_httpd_route(a, "/hello", CG_HTTP_GET, h_hello, NULL), 0);
    assert_int_equal(cg_httpd_listen(a, err, sizeof err), 0);
    int port = cg_httpd_port(a);
    struct cg_httpd *b = make_server(f->base, "127.0.0.1", port, 1);
    assert_int_equal(cg_httpd_route(b, "/hello", CG_HTTP_GET, h_hello, NULL), 0);
    if (cg_httpd_listen(b, err, sizeof err) != 0)
        fail_msg("second reuseport listener: %s", err);
    assert_int_equal(cg_httpd_port(b), port);
    assert_int_equal(cg_httpd_listen(b, err, sizeof err), -1); /* already listening */
    for (int i = 0; i < 4; i++) {
        struct resp r;
        exchange(f->base, port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    /* Without SO_REUSEPORT the port stays taken. */
    struct cg_httpd *c = make_server(f->base, "127.0.0.1", port, 0);
    assert_int_equal(cg_httpd_listen(c, err, sizeof err), -1);
    cg_httpd_free(c);
    cg_httpd_free(a);
    cg_httpd_free(b);

    /* Bad options. */
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1", .port = 70000};
    assert_null(cg_httpd_new(f->base, &o));
    assert_null(cg_httpd_new(f->base, NULL));
}

static void test_free_with_unanswered_request(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    while (f->async_calls == 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(cg_httpd_inflight(f->h), 1);

    /* The owner of the pending request stops first, then frees the server,
     * which answers 503. */
    event_del(f->timer);
    f->pending = NULL;
    int n = f->obs.count;
    cg_httpd_free(f->h);
    f->h = make_server(f->base, "127.0.0.1", 0, 0); /* for teardown */
    assert_int_equal(f->obs.count, n + 1);
    assert_int_equal(f->obs.status, 503);
    assert_string_equal(f->obs.route, "/async");

    client_wait(&c, 1, 5000);
    struct resp r;
    assert_int_equal(count_responses(&c, &r, 1), 1);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\":503,\"error\":\"shutting_down\",\"message\":"
                                "\"the server is shutting down\"}");
    resp_free(&r);
    client_close(&c);

    /* Again with a client that already hung up: the 503 goes nowhere. */
    assert_int_equal(cg_httpd_route(f->h, "/async", CG_HTTP_GET, h_async, f), 0);
    char err[128];
    assert_int_equal(cg_httpd_listen(f->h, err, sizeof err), 0);
    client_open(&c, f->base, cg_httpd_port(f->h));
    client_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    while (f->async_calls == 1)
        event_base_loop(f->base, EVLOOP_ONCE);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    client_close(&c);
    cgt_run_for(f->base, 20);
    event_del(f->timer);
    f->pending = NULL;
    cg_httpd_free(f->h);
    f->h = make_server(f->base, "127.0.0.1", 0, 0);

    /* Freeing a server that never listened, and NULL, is fine. */
    cg_httpd_free(NULL);
}

static void test_timeouts(void **state)
{
    struct fx *f = *state;
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1", .timeout_seconds = 1};
    struct cg_httpd *h = cg_httpd_new(f->base, &o);
    assert_non_null(h);
    assert_int_equal(cg_httpd_route(h, "/async", CG_HTTP_GET, h_async, f), 0);
    char err[128];
    assert_int_equal(cg_httpd_listen(h, err, sizeof err), 0);
    int port = cg_httpd_port(h);

    struct client idle, partial, slow;
    client_open(&idle, f->base, port);
    client_open(&partial, f->base, port);
    client_sends(&partial, "GET /async HTTP/1.1\r\nHost: ");
    client_open(&slow, f->base, port);
    f->async_delay_ms = 1500;
    client_sends(&slow, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");

    /* Idle and half-sent requests are cut off after the timeout. */
    uint64_t t0 = cg_mono_ms();
    assert_int_equal(client_wait_eof(&idle, 3000), 1);
    assert_int_equal(client_wait_eof(&partial, 3000), 1);
    uint64_t waited = cg_mono_ms() - t0;
    assert_true(waited >= 900 && waited < 2900);
    assert_int_equal(idle.in.len, 0);
    assert_int_equal(partial.in.len, 0);

    /* A handler taking longer than the timeout still gets its reply out:
     * evhttp does not time a connection while its reply is pending. */
    assert_int_equal(client_wait(&slow, 1, 3000), 1);
    struct resp r;
    assert_int_equal(count_responses(&slow, &r, 1), 1);
    assert_string_equal(r.body, "late");
    resp_free(&r);
    client_close(&idle);
    client_close(&partial);
    client_close(&slow);
    cg_httpd_free(h);
}

static void test_defaults(void **state)
{
    struct fx *f = *state;
    /* Zero limits select the defaults rather than refusing everything. */
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1"};
    struct cg_httpd *h = cg_httpd_new(f->base, &o);
    assert_non_null(h);
    assert_int_equal(cg_httpd_route(h, "/echo", CG_HTTP_POST, h_echo, NULL), 0);
    char err[256];
    assert_int_equal(cg_httpd_listen(h, err, sizeof err), 0);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_printf(&b,
                  "POST /echo HTTP/1.1\r\nHost: x\r\nX-Pad: %0*d\r\nContent-Length: 4000\r\n\r\n",
                  2000, 0);
    for (int i = 0; i < 4000; i++)
        cg_buf_appendc(&b, 'z');
    struct resp r;
    exchange_ex(f->base, cg_httpd_port(h), b.data, b.len, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 4000);
    resp_free(&r);
    cg_buf_free(&b);
    /* The head first, the body later: the buffer grows under a parsed
     * head, whose strings must still be right. */
    struct client c;
    client_open(&c, f->base, cg_httpd_port(h));
    client_sends(&c, "POST /echo?n=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n"
                     "Content-Length: 20000\r\n\r\n");
    cgt_run_for(f->base, 50);
    static char big[20000];
    memset(big, 'q', sizeof big);
    client_send(&c, big, sizeof big);
    assert_int_equal(client_wait(&c, 1, 5000), 1);
    assert_int_equal(count_responses(&c, &r, 1), 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 20000);
    assert_header(&r, "X-Uri", "/echo?n=1");
    assert_header(&r, "X-UA", "slow");
    resp_free(&r);
    client_close(&c);

    cg_httpd_free(h);
}

/* A client that pipelines without reading: the server stops taking its
 * requests once the answers it cannot send pile up, and goes on when the
 * client reads. */
static void test_pipelining_unread(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    event_del(c.rev);
    enum { N = 40000 };
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    for (int i = 0; i < N; i++)
        cg_buf_appends(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    int before = f->obs.count;
    client_send(&c, b.data, b.len);
    cg_buf_free(&b);
    cgt_run_for(f->base, 500);
    int answered = f->obs.count - before;
    assert_true(answered > 0);
    assert_true(answered < N);
    /* Reading lets the rest through, in order. */
    assert_int_equal(event_add(c.rev, NULL), 0);
    uint64_t t0 = cg_mono_ms();
    for (int i = 0; i < 1000 && f->obs.count - before < N; i++)
        cgt_run_for(f->base, 20);
    if (f->obs.count - before != N)
        fail_msg("answered %d of %d after %llu ms; eof=%d in=%zu out_off=%zu/%zu",
                 f->obs.count - before, N, (unsigned long long)(cg_mono_ms() - t0), c.eof, c.in.len,
                 c.out_off, c.out.len);
    assert_int_equal(client_wait(&c, N, 10000), N);
    client_close(&c);
}

/* Runs the loop until the client has received needle (or timeout_ms). */
static int client_wait_for(struct client *c, const char *needle, int timeout_ms)
{
    uint64_t end = cg_mono_ms() + (uint64_t)timeout_ms;
    while (cg_mono_ms() < end) {
        if (c->in.len > 0 && strstr(c->in.data, needle) != NULL)
            return 1;
        cgt_run_for(c->base, 10);
    }
    return c->in.len > 0 && strstr(c->in.data, needle) != NULL;
}

static void test_stream_chunked(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    int obs = f->obs.count;
    client_sends(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(client_wait_for(&c, "data: a\n\n\r\n", 5000));
    assert_non_null(f->stream);
    /* Seen once, at the start; not in flight. */
    assert_int_equal(f->obs.count, obs + 1);
    assert_int_equal(f->obs.status, 200);
    assert_string_equal(f->obs.route, "/stream");
    assert_int_equal(cg_httpd_inflight(f->h), 0);
    assert_non_null(strstr(c.in.data, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(c.in.data, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(c.in.data, "\r\nContent-Type: text/event-stream\r\n"));
    assert_non_null(strstr(c.in.data, "\r\nX-Stream: yes\r\n"));
    assert_null(strstr(c.in.data, "Content-Length"));
    assert_non_null(strstr(c.in.data, "\r\n\r\n9\r\ndata: a\n\n\r\n"));

    /* Stopping the listener leaves the stream open. */
    cg_httpd_stop_accepting(f->h);
    assert_int_equal(cg_http_stream_write(f->stream, "", 0), 0); /* no empty chunk */
    assert_int_equal(cg_http_stream_write(f->stream, "data: bb\n\n", 10), 0);
    assert_true(client_wait_for(&c, "a\r\ndata: bb\n\n\r\n", 5000));
    assert_int_equal(cg_http_stream_pending(f->stream), 0);
    cg_http_stream_end(f->stream);
    f->stream = NULL;
    assert_true(client_wait_for(&c, "data: bb\n\n\r\n0\r\n\r\n", 5000));
    assert_int_equal(f->stream_closed, 0);
    /* The server stopped accepting: the connection closes after the end. */
    assert_int_equal(client_wait_eof(&c, 5000), 1);
    client_close(&c);
}

static void test_stream_keepalive_and_head(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(client_wait_for(&c, "data: a\n\n\r\n", 5000));
    /* A request pipelined behind the stream waits for its end. */
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    cgt_run_for(f->base, 50);
    assert_null(strstr(c.in.data, "hello"));
    cg_http_stream_end(f->stream);
    f->stream = NULL;
    assert_true(client_wait_for(&c, "0\r\n\r\nHTTP/1.1 200 OK\r\n", 5000));
    assert_true(client_wait_for(&c, "\r\n\r\nhello", 5000));
    assert_int_equal(c.eof, 0);
    client_close(&c);

    /* HEAD: the head only, no stream, the connection goes on. */
    client_open(&c, f->base, f->port);
    c.head = 1;
    client_sends(&c, "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(client_wait_for(&c, "\r\n\r\n", 5000));
    assert_null(f->stream);
    assert_non_null(strstr(c.in.data, "Transfer-Encoding: chunked"));
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(client_wait(&c, 2, 5000), 2);
    struct resp r[2];
    assert_int_equal(count_responses(&c, r, 2), 2);
    assert_int_equal(r[0].body_len, 0);
    assert_string_equal(r[1].body, "hello");
    resp_free(&r[0]);
    resp_free(&r[1]);
    client_close(&c);
}

static void test_stream_http10(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(client_wait_for(&c, "data: a\n\n", 5000));
    assert_null(strstr(c.in.data, "Transfer-Encoding"));
    assert_non_null(strstr(c.in.data, "\r\nConnection: close\r\n"));
    assert_int_equal(cg_http_stream_write(f->stream, "data: z\n\n", 9), 0);
    cg_http_stream_end(f->stream);
    f->stream = NULL;
    /* The body is delimited by the close. */
    assert_int_equal(client_wait_eof(&c, 5000), 1);
    assert_non_null(strstr(c.in.data, "\r\n\r\ndata: a\n\ndata: z\n\n"));
    assert_int_equal(f->stream_closed, 0);
    client_close(&c);
}

static void test_stream_client_gone(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(client_wait_for(&c, "data: a\n\n\r\n", 5000));
    client_close(&c);
    /* Noticed from the loop: closed runs once, and the stream is gone. */
    for (int i = 0; i < 500 && f->stream_closed == 0; i++)
        cgt_run_for(f->base, 10);
    assert_int_equal(f->stream_closed, 1);
    assert_null(f->stream);
    cgt_run_for(f->base, 50);
    assert_int_equal(f->stream_closed, 1);
}

static void test_stream_max_pending(void **state)
{
    struct fx *f = *state;
    struct client c;
    f->stream_max = 4096;
    client_open(&c, f->base, f->port);
    /* A client that stops reading: its receive buffer kept small. */
    int small = 4096;
    assert_int_equal(setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    client_sends(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 0; i < 500 && f->stream == NULL; i++)
        cgt_run_for(f->base, 10);
    assert_non_null(f->stream);
    event_del(c.rev);
    static char block[1000];
    memset(block, 'x', sizeof block);
    int rc = 0, writes = 0;
    while (rc == 0 && writes < 100000) {
        rc = cg_http_stream_write(f->stream, block, sizeof block);
        writes++;
        if (rc == 0)
            assert_true(cg_http_stream_pending(f->stream) <= 4096);
    }
    /* The stream ended there, without the callback. */
    assert_int_equal(rc, -1);
    f->stream = NULL;
    cgt_run_for(f->base, 50);
    assert_int_equal(f->stream_closed, 0);
    client_close(&c);
}

static void test_stream_free_server(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_open(&c, f->base, f->port);
    client_sends(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(client_wait_for(&c, "data: a\n\n\r\n", 5000));
    cg_httpd_free(f->h);
    assert_int_equal(f->stream_closed, 1);
    assert_null(f->stream);
    f->h = make_server(f->base, "127.0.0.1", 0, 0); /* for teardown */
    assert_int_equal(client_wait_eof(&c, 5000), 1);
    client_close(&c);
}

int main(void)
{
    /* Writing a reply to a client that hung up must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    cg_log_set_level(CG_LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_exact_route),
        T(test_prefix_route),
        T(test_not_found),
        T(test_method_not_allowed),
        T(test_head),
        T(test_query),
        T(test_form_body),
        T(test_form_wrong_type),
        T(test_body_echo_and_too_large),
        T(test_headers_too_large),
        T(test_headers_hard_ceiling),
        T(test_malformed_requests),
        T(test_keepalive),
        T(test_204_and_headers),
        T(test_async_reply),
        T(test_async_client_disconnect),
        T(test_inflight_and_getters),
        T(test_stop_accepting),
        T(test_stop_with_request_in_flight),
        T(test_observer_and_reason),
        T(test_route_validation),
        T(test_peer_loopback),
        T(test_peer_loopback_ipv6),
        T(test_peer_dual_stack),
        T(test_listen_errors_and_reuseport),
        T(test_free_with_unanswered_request),
        T(test_defaults),
        T(test_timeouts),
        T(test_pipelining_unread),
        T(test_stream_chunked),
        T(test_stream_keepalive_and_head),
        T(test_stream_http10),
        T(test_stream_client_gone),
        T(test_stream_max_pending),
        T(test_stream_free_server),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
