#include "base/fmacros.h"

#include "net/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "base/err.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/url.h"

/*
 * Notes on libevent 2.1.12's evhttp, which this module leans on:
 *
 * - Malformed request lines and headers are answered by evhttp itself with
 *   400 and an HTML body, and so are requests past the hard header ceiling
 *   (it reports DATA_TOO_LONG from the header parser as an invalid header).
 *   Bodies over max_body_bytes get 413 and unrecognised methods ("FOO")
 *   501, also with HTML bodies. None of these reach the router or the
 *   observer.
 * - Once a request has been read, evhttp stops reading from its connection
 *   until the reply is written (seen in 2.1.12), so bytes of a pipelined
 *   next request wait, and a client that hangs up while a handler works is
 *   only noticed when the reply is written: the write fails, or the next
 *   read sees EOF or a reset, and evhttp frees the connection and the
 *   request itself. The reply is dropped and nothing leaks. Such a
 *   connection is not subject to the timeout either (no read or write is
 *   pending), so it lives until its handler replies. The write may raise
 *   SIGPIPE: the process must ignore it (main.c does). evhttp_send_reply()
 *   also frees a request whose connection evhttp dropped earlier (its evcon
 *   is then NULL).
 * - For HEAD, evhttp would send whatever is in the output buffer and would
 *   not add Content-Length, so replies set Content-Length themselves and
 *   leave the buffer empty.
 */

/* Defaults for options left at zero. */
#define DEFAULT_MAX_BODY   (1024 * 1024)
#define DEFAULT_MAX_HEADER (8 * 1024)
#define DEFAULT_TIMEOUT_S  30
/* evhttp's own limit on request line plus headers, whatever we allow. */
#define MIN_HARD_HEADER_CEILING (64 * 1024)
/* How long accepting pauses after accept() failed (out of descriptors). */
#define ACCEPT_PAUSE_MS 100

struct route {
    char *pattern;     /* as registered, reported to the observer */
    size_t prefix_len; /* for prefix routes: bytes of pattern before '*' */
    int is_prefix;
    unsigned methods;
    cg_http_handler fn;
    void *arg;
};

struct cg_httpd {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    size_t max_body;
    size_t max_header;
    int timeout_s;
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

    /* Requests not yet answered (struct cg_http_req), newest first, so that
     * cg_httpd_free() can answer them. */
    struct cg_list live;
    size_t inflight;

    /* Open connections and their request deadlines (see struct conn),
     * and the adopted ones by socket, so that finding a request's record
     * costs the same with ten connections or ten thousand. */
    struct cg_list conns; /* struct conn */
    struct conn **by_fd;
    size_t nby_fd;

    /* Accepting paused after accept() failed (see on_accept_error). */
    struct event *accept_resume;
    unsigned long long accept_errors;
    uint64_t accept_log_ms;
    struct cg_list listening_link; /* in `listening` while bound */
};

/*
 * A request deadline per connection. evhttp's timeout is an inactivity
 * timeout, re-armed by every byte it reads, so a client that sends a byte
 * now and then (slowloris) would hold its connection, and the memory of a
 * half-read request, for ever. Each connection therefore also has a
 * deadline: its next request must have arrived in full (line, headers,
 * body) within timeout_s of the connection opening or of the previous
 * reply being written, or the connection is closed. While a handler holds
 * a request there is no deadline (evhttp does not read meanwhile, and
 * handlers may take longer than the timeout).
 *
 * evhttp 2.1 has no callback for new connections; its bufferevent callback
 * is the hook. callgate creates each connection's bufferevent and keeps a
 * reference to it until evhttp has built its connection around it (evhttp
 * makes the connection the bufferevent's callback argument), then follows
 * the connection through its close callback, which evhttp calls whenever
 * it frees a connection.
 */
struct conn {
    struct cg_httpd *h;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until adopted */
    struct event *timer;             /* adoption, then the deadline */
    evutil_socket_t fd;              /* -1 until adopted */
    struct cg_list link;             /* in cg_httpd.conns */
};

struct cg_http_req {
    struct cg_httpd *h;
    struct evhttp_request *er;
    struct cg_list link; /* in cg_httpd.live */

    enum cg_http_method method;
    const char *method_name;
    char *path; /* decoded; NULL until decoded */
    const char *path_rest;
    const char *route; /* pattern of the matched route, "" if none */
    uint64_t start_us;
    char *peer;
    int loopback;

    int query_state; /* 0 not parsed, 1 parsed, -1 malformed */
    struct cg_form query;
    int form_state;
    struct cg_form form;
    const char *form_err;
    char *body;
    size_t body_len;
    int body_loaded;
};

static void on_request(struct evhttp_request *er, void *arg);
static struct bufferevent *on_new_connection(struct event_base *base, void *arg);
static void on_accept_resume(evutil_socket_t fd, short what, void *arg);

/* ---- small helpers ---- */

/* Adds a response header; evhttp refuses CR or LF in names and values,
 * which would otherwise split the response. */
static void add_header(struct evkeyvalq *hs, const char *name, const char *value)
{
    if (evhttp_add_header(hs, name, value) != 0)
        cg_log_warn("http header dropped", "name=%s", name);
}

static enum cg_http_method map_method(enum evhttp_cmd_type t, const char **name)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        *name = "GET";
        return CG_HTTP_GET;
    case EVHTTP_REQ_POST:
        *name = "POST";
        return CG_HTTP_POST;
    case EVHTTP_REQ_HEAD:
        *name = "HEAD";
        return CG_HTTP_HEAD;
    case EVHTTP_REQ_PUT:
        *name = "PUT";
        return CG_HTTP_PUT;
    case EVHTTP_REQ_DELETE:
        *name = "DELETE";
        return CG_HTTP_DELETE;
    case EVHTTP_REQ_OPTIONS:
        *name = "OPTIONS";
        return CG_HTTP_OPTIONS;
    case EVHTTP_REQ_PATCH:
        *name = "PATCH";
        return CG_HTTP_PATCH;
    case EVHTTP_REQ_TRACE:
        *name = "TRACE";
        return CG_HTTP_OTHER;
    case EVHTTP_REQ_CONNECT:
        *name = "CONNECT";
        return CG_HTTP_OTHER;
    default:
        *name = "OTHER";
        return CG_HTTP_OTHER;
    }
}

/* The client's address as text; an IPv4 client of a dual-stack listener
 * ("::ffff:192.0.2.1") is shown as plain IPv4, as it would be on an IPv4
 * listener. */
static char *peer_text(const char *addr)
{
    static const char mapped[] = "::ffff:";
    struct in_addr a4;
    if (strncasecmp(addr, mapped, sizeof mapped - 1) == 0 &&
        inet_pton(AF_INET, addr + sizeof mapped - 1, &a4) == 1)
        return cg_strdup(addr + sizeof mapped - 1);
    return cg_strdup(addr);
}

/* ---- server ---- */

struct cg_httpd *cg_httpd_new(struct event_base *base, const struct cg_httpd_opts *opts)
{
    if (base == NULL || opts == NULL || opts->port < 0 || opts->port > 65535)
        return NULL;
    struct cg_httpd *h = cg_calloc(1, sizeof *h);
    h->base = base;
    cg_list_init(&h->live);
    cg_list_init(&h->conns);
    cg_list_init(&h->listening_link);
    h->max_body = opts->max_body_bytes ? opts->max_body_bytes : DEFAULT_MAX_BODY;
    h->max_header = opts->max_header_bytes ? opts->max_header_bytes : DEFAULT_MAX_HEADER;
    h->timeout_s = opts->timeout_seconds > 0 ? opts->timeout_seconds : DEFAULT_TIMEOUT_S;
    h->bind_address =
        cg_strdup(opts->bind_address && *opts->bind_address ? opts->bind_address : "0.0.0.0");
    h->port_opt = opts->port;
    h->reuseport = opts->reuseport;

    h->http = evhttp_new(base);
    if (h->http == NULL) {
        free(h->bind_address);
        free(h);
        return NULL;
    }

    /* evhttp takes ev_ssize_t limits; anything larger is as good as none. */
    size_t body = h->max_body > (size_t)EV_SSIZE_MAX ? (size_t)EV_SSIZE_MAX : h->max_body;
    size_t ceiling =
        h->max_header > (size_t)EV_SSIZE_MAX / 4 ? (size_t)EV_SSIZE_MAX : 4 * h->max_header;
    if (ceiling < MIN_HARD_HEADER_CEILING)
        ceiling = MIN_HARD_HEADER_CEILING;
    evhttp_set_max_body_size(h->http, (ev_ssize_t)body);
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)ceiling);
    evhttp_set_timeout(h->http, h->timeout_s);
    /* Every method evhttp can parse reaches the router, which answers 405
     * with an Allow header where evhttp would say 501. */
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(h->http, on_request, h);
    evhttp_set_bevcb(h->http, on_new_connection, h);
    h->accept_resume = evtimer_new(base, on_accept_resume, h);
    if (h->accept_resume == NULL) {
        evhttp_free(h->http);
        free(h->bind_address);
        free(h);
        return NULL;
    }
    return h;
}

/* A pattern is an absolute path of visible ASCII, optionally ending in
 * "/\*"; no other '*', and no query or fragment. */
static int valid_pattern(const char *p, int *is_prefix)
{
    size_t n = strlen(p);
    if (n == 0 || p[0] != '/')
        return 0;
    *is_prefix = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return 0;
        if (c == '*') {
            if (i != n - 1 || p[i - 1] != '/')
                return 0;
            *is_prefix = 1;
        }
    }
    return 1;
}

int cg_httpd_route(struct cg_httpd *h, const char *pattern, unsigned methods, cg_http_handler fn,
                   void *arg)
{
    int is_prefix;
    if (h == NULL || pattern == NULL || fn == NULL || methods == 0 ||
        !valid_pattern(pattern, &is_prefix))
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
    return h->bound != NULL ? h->port : 0;
}

static void live_unlink(struct cg_http_req *r)
{
    cg_list_remove(&r->link);
    r->h->inflight--;
}

static void req_free(struct cg_http_req *r)
{
    free(r->path);
    free(r->peer);
    free(r->body);
    cg_form_free(&r->query);
    cg_form_free(&r->form);
    free(r);
}

/* ---- request deadlines (struct conn) ---- */

static void conn_free(struct conn *c)
{
    struct cg_httpd *h = c->h;
    if (c->fd >= 0 && (size_t)c->fd < h->nby_fd && h->by_fd[c->fd] == c)
        h->by_fd[c->fd] = NULL;
    cg_list_remove(&c->link);
    event_free(c->timer);
    /* Until adoption the reference taken at creation is ours to drop;
     * evhttp releases its own. */
    if (c->evcon == NULL)
        bufferevent_decref(c->bev);
    free(c);
}

static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_free(arg);
}

static void conn_adopt(struct conn *c, struct evhttp_connection *evcon)
{
    struct cg_httpd *h = c->h;
    c->evcon = evcon;
    evhttp_connection_set_closecb(evcon, on_conn_closed, c);
    bufferevent_decref(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd < 0)
        return;
    if ((size_t)fd >= h->nby_fd) {
        size_t n = h->nby_fd ? h->nby_fd : 64;
        while (n <= (size_t)fd)
            n *= 2;
        h->by_fd = cg_realloc(h->by_fd, n * sizeof *h->by_fd);
        memset(h->by_fd + h->nby_fd, 0, (n - h->nby_fd) * sizeof *h->by_fd);
        h->nby_fd = n;
    }
    h->by_fd[fd] = c;
    c->fd = fd;
}

static void conn_arm(struct conn *c)
{
    struct timeval tv = {.tv_sec = c->h->timeout_s, .tv_usec = 0};
    evtimer_add(c->timer, &tv);
}

/* The record of a connection, found by its socket once adopted; before
 * that (a request that arrived before the adoption timer ran, once per
 * connection at most) by a walk of the list. */
static struct conn *conn_of(struct cg_httpd *h, struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (bev == NULL)
        return NULL;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0 && (size_t)fd < h->nby_fd && h->by_fd[fd] != NULL && h->by_fd[fd]->bev == bev)
        return h->by_fd[fd];
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &h->conns) {
        struct conn *c = cg_list_entry(it, struct conn, link);
        if (c->bev == bev) {
            if (c->evcon == NULL)
                conn_adopt(c, evcon);
            return c;
        }
    }
    return NULL;
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->evcon == NULL) {
        /* Right after the accept: evhttp has made its connection the
         * bufferevent's callback argument, or has already freed it (then
         * the callbacks are cleared). */
        bufferevent_data_cb rd = NULL, wr = NULL;
        bufferevent_event_cb ev = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(c->bev, &rd, &wr, &ev, &cbarg);
        struct evhttp_connection *evcon = cbarg;
        if (ev == NULL || evcon == NULL || evhttp_connection_get_bufferevent(evcon) != c->bev) {
            conn_free(c);
            return;
        }
        conn_adopt(c, evcon);
        conn_arm(c);
        return;
    }
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c->evcon, &addr, &port);
    cg_log_info("http request not received in time; connection closed", "peer=%s timeout_s=%d",
                addr != NULL ? addr : "", c->h->timeout_s);
    /* Calls on_conn_closed(), which frees c. */
    evhttp_connection_free(c->evcon);
}

/* evhttp's bufferevent callback: every accepted connection comes here
 * first. NULL lets evhttp make its own (no deadline for that one). */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct cg_httpd *h = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL;
    struct conn *c = cg_calloc(1, sizeof *c);
    c->timer = evtimer_new(base, on_conn_timer, c);
    if (c->timer == NULL) {
        free(c);
        return bev;
    }
    c->h = h;
    c->bev = bev;
    c->fd = -1;
    bufferevent_incref(bev);
    cg_list_push_front(&h->conns, &c->link);
    /* Adopted on the loop's next turn, once evhttp has set up the
     * connection (or earlier, by on_request). */
    struct timeval now = {0, 0};
    evtimer_add(c->timer, &now);
    return bev;
}

/* A reply has been written: the deadline for the next request starts. */
static void on_reply_written(struct evhttp_request *er, void *arg)
{
    struct conn *c = conn_of(arg, evhttp_request_get_connection(er));
    if (c != NULL)
        conn_arm(c);
}

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

static void allow_header(unsigned methods, char *out, size_t outlen)
{
    static const struct {
        unsigned bit;
        const char *name;
    } order[] = {
        {CG_HTTP_GET, "GET"},     {CG_HTTP_HEAD, "HEAD"},     {CG_HTTP_POST, "POST"},
        {CG_HTTP_PUT, "PUT"},     {CG_HTTP_DELETE, "DELETE"}, {CG_HTTP_OPTIONS, "OPTIONS"},
        {CG_HTTP_PATCH, "PATCH"},
    };
    if (methods & CG_HTTP_GET)
        methods |= CG_HTTP_HEAD;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(methods & order[i].bit))
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", order[i].name);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

static size_t headers_size(struct evhttp_request *er)
{
    const struct evkeyvalq *hs = evhttp_request_get_input_headers(er);
    size_t total = 0;
    for (const struct evkeyval *kv = hs->tqh_first; kv != NULL; kv = kv->next.tqe_next)
        total += strlen(kv->key) + strlen(kv->value);
    return total;
}

/* RFC 9110 token characters: what a header field name is made of. */
static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL))
            return 0;
    }
    return 1;
}

/*
 * Message framing that another HTTP implementation in front of callgate (a
 * TLS proxy, a load balancer) could read differently from evhttp: two
 * Content-Length fields (evhttp takes the first), one that is not plain
 * digits ("+5"), Content-Length with Transfer-Encoding, a coding other
 * than chunked (evhttp reads "identity" as no body at all), or a field name
 * that is not a token ("Transfer-Encoding : chunked", which evhttp takes
 * for another field). Where the two disagree on where a request ends, the
 * bytes one of them takes for a body the other runs as a request of its
 * own (request smuggling), past whatever the proxy checks. RFC 9112
 * requires a 400 and closing the connection. NULL when the framing is
 * unambiguous, else why not.
 */
static const char *ambiguous_framing(struct evhttp_request *er)
{
    const struct evkeyvalq *hs = evhttp_request_get_input_headers(er);
    int lengths = 0, encodings = 0;
    for (const struct evkeyval *kv = hs->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        if (!is_token(kv->key))
            return "a header field name is malformed";
        if (strcasecmp(kv->key, "Content-Length") == 0) {
            lengths++;
            if (kv->value[0] == '\0' || strspn(kv->value, "0123456789") != strlen(kv->value))
                return "Content-Length is not a number";
        } else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
            encodings++;
            /* evhttp reads other codings it lets through ("identity") as
             * no body at all, where a proxy may read one. */
            if (strcasecmp(kv->value, "chunked") != 0)
                return "Transfer-Encoding other than chunked";
        }
    }
    if (lengths > 1)
        return "more than one Content-Length";
    if (encodings > 1)
        return "more than one Transfer-Encoding";
    if (lengths > 0 && encodings > 0)
        return "both Content-Length and Transfer-Encoding";
    return NULL;
}

static void on_request(struct evhttp_request *er, void *arg)
{
    struct cg_httpd *h = arg;
    struct cg_http_req *r = cg_calloc(1, sizeof *r);
    r->h = h;
    r->er = er;
    r->start_us = cg_mono_us();
    r->route = "";
    r->path_rest = "";
    r->method = map_method(evhttp_request_get_command(er), &r->method_name);
    cg_form_init(&r->query);
    cg_form_init(&r->form);

    /* Copied now: the connection may be gone by the time a handler asks. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon != NULL)
        evhttp_connection_get_peer(evcon, &addr, &port);
    r->peer = peer_text(addr != NULL ? addr : "");
    r->loopback = cg_host_is_loopback(r->peer);

    cg_list_push_front(&h->live, &r->link);
    h->inflight++;

    /* The request is in: no deadline while it is with us. */
    struct conn *c = conn_of(h, evcon);
    if (c != NULL) {
        evtimer_del(c->timer);
        evhttp_request_set_on_complete_cb(er, on_reply_written, h);
    }

    if (headers_size(er) > h->max_header) {
        cg_http_reply_error(r, 431, "headers_too_large", "request headers are too large");
        return;
    }
    const char *framing = ambiguous_framing(er);
    if (framing != NULL) {
        /* What follows on the connection must never be read as a request. */
        cg_http_set_header(r, "Connection", "close");
        cg_http_reply_error(r, 400, "bad_request", framing);
        return;
    }

    /* Origin-form targets ("/a/b?q") are cut at the query by hand, because
     * evhttp's URI parser reads "//a/b" as host "a" and path "/b". Others
     * (absolute-form "http://host/a/b") go through the parser. */
    const char *target = evhttp_request_get_uri(er);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(er);
    const char *raw = NULL;
    size_t rawlen = 0;
    if (target != NULL && target[0] == '/') {
        raw = target;
        rawlen = strcspn(target, "?#");
    } else if (uri != NULL && (raw = evhttp_uri_get_path(uri)) != NULL) {
        rawlen = strlen(raw);
        /* "http://host" has an empty path, which means "/". */
        if (rawlen == 0) {
            raw = "/";
            rawlen = 1;
        }
    }
    if (raw == NULL || raw[0] != '/') {
        cg_http_reply_error(r, 400, "bad_request", "the request target cannot be parsed");
        return;
    }
    size_t plen = 0;
    r->path = cg_pct_decode(raw, rawlen, 0, &plen);
    if (r->path == NULL || plen != strlen(r->path)) {
        cg_http_reply_error(r, 400, "bad_request", "the request path is not validly encoded");
        return;
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
        allow_header(rt->methods, allow, sizeof allow);
        cg_http_set_header(r, "Allow", allow);
        cg_http_reply_error(r, 405, "method_not_allowed", "method not allowed for this resource");
        return;
    }
    /* The handler owns r from here; it may already be freed on return. */
    rt->fn(r, rt->arg);
}

/* ---- accept failures ---- */

/*
 * When accept() fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS), the listening socket stays readable, so libevent would call
 * accept() again at once, for ever: the loop spins at full CPU and libevent
 * writes a line to stderr each time, until connections close. A flood of
 * connections must not do that. The listener's error callback stops
 * accepting for ACCEPT_PAUSE_MS instead; connections waiting meanwhile stay
 * in the kernel's backlog and are accepted when accepting resumes.
 *
 * libevent hands the error callback evhttp's pointer (evhttp_bind_listener
 * makes it the listener's argument), not the server's, so listening servers
 * are found from it in this list. Every cg_httpd lives on the one thread
 * that runs the daemon's event loop (no test serves one from another
 * thread either), so the list needs no lock.
 */
static struct cg_list listening = {&listening, &listening};

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct cg_httpd *h = NULL;
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &listening) {
        struct cg_httpd *s = cg_list_entry(it, struct cg_httpd, listening_link);
        if (s->http == arg)
            h = s;
    }
    if (h == NULL)
        return;
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
    if (h->bound != NULL && !h->stopped)
        evconnlistener_enable(evhttp_bound_socket_get_listener(h->bound));
}

/* Creates, binds and listens on a socket of our own rather than through
 * evhttp_bind_socket_with_handle(), so that SO_REUSEPORT can be set and a
 * failure is reported with its cause instead of in libevent's own log. */
static evutil_socket_t open_listener(struct cg_httpd *h, char *err, size_t errlen)
{
    char host[256];
    const char *a = h->bind_address;
    size_t alen = strlen(a);
    /* Accept "[::1]" as well as "::1". */
    if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') {
        if (alen - 2 >= sizeof host) {
            cg_err_set(err, errlen, "bad bind address %s (port %d): %s", a, h->port_opt,
                       "too long");
            return -1;
        }
        memcpy(host, a + 1, alen - 2);
        host[alen - 2] = '\0';
        a = host;
    }

    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", h->port_opt);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(a, portstr, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        cg_err_set(err, errlen, "bad bind address %s (port %d): %s", h->bind_address, h->port_opt,
                   gai != 0 ? gai_strerror(gai) : "no address");
        if (ai != NULL)
            freeaddrinfo(ai);
        return -1;
    }

    const char *step = "socket";
    int on = 1;
    evutil_socket_t fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        goto fail;
    step = "fcntl";
    if (evutil_make_socket_closeonexec(fd) != 0 || evutil_make_socket_nonblocking(fd) != 0)
        goto fail;
    step = "setsockopt";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        goto fail;
    /* Accepted sockets inherit keepalive, which reaps dead peers. */
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0)
        goto fail;
    if (h->reuseport) {
#ifdef SO_REUSEPORT
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
            goto fail;
#else
        errno = ENOPROTOOPT;
        goto fail;
#endif
    }
    step = "bind";
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto fail;
    step = "listen";
    if (listen(fd, SOMAXCONN) != 0)
        goto fail;
    freeaddrinfo(ai);
    return fd;

fail:;
    int saved = errno;
    char why[160];
    snprintf(why, sizeof why, "%s: %s", step, strerror(saved));
    cg_err_set(err, errlen, "cannot listen on %s port %d: %s", h->bind_address, h->port_opt, why);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

int cg_httpd_listen(struct cg_httpd *h, char *err, size_t errlen)
{
    if (h->bound != NULL || h->stopped) {
        cg_err_set(err, errlen, "%s port %d: %s", h->bind_address, h->port_opt,
                   h->stopped ? "server stopped" : "already listening");
        return -1;
    }
    evutil_socket_t fd = open_listener(h, err, errlen);
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
    struct evconnlistener *lev = evconnlistener_new(
        h->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (lev == NULL) {
        close(fd);
        cg_err_set(err, errlen, "cannot listen on %s port %d: %s", h->bind_address, h->port_opt,
                   "evconnlistener_new failed");
        return -1;
    }
    h->bound = evhttp_bind_listener(h->http, lev);
    if (h->bound == NULL) {
        evconnlistener_free(lev);
        cg_err_set(err, errlen, "cannot listen on %s port %d: %s", h->bind_address, h->port_opt,
                   "evhttp_bind_listener failed");
        return -1;
    }
    h->port = port;
    evconnlistener_set_error_cb(lev, on_accept_error);
    cg_list_push_front(&listening, &h->listening_link);
    cg_log_debug("http listening", "address=%s port=%d reuseport=%d", h->bind_address, port,
                 h->reuseport ? 1 : 0);
    return 0;
}

/* Closes the listening socket. Connections already accepted are left to
 * evhttp: requests on them are served, including further requests on an
 * idle keep-alive connection until it times out; to wind those down,
 * replies from now on carry "Connection: close". */
void cg_httpd_stop_accepting(struct cg_httpd *h)
{
    if (h == NULL || h->stopped)
        return;
    h->stopped = 1;
    cg_list_remove(&h->listening_link);
    evtimer_del(h->accept_resume);
    if (h->bound != NULL) {
        evhttp_del_accept_socket(h->http, h->bound);
        h->bound = NULL;
        cg_log_debug("http stopped accepting", "port=%d", h->port);
    }
}

void cg_httpd_free(struct cg_httpd *h)
{
    if (h == NULL)
        return;
    h->freeing = 1;
    h->stopped = 1;
    cg_list_remove(&h->listening_link);
    event_free(h->accept_resume);
    /* evhttp_free() frees every request still attached to a connection, so
     * each unanswered one is answered (and our wrapper released) first. */
    struct cg_list *it;
    while ((it = cg_list_first(&h->live)) != NULL)
        cg_http_reply_error(cg_list_entry(it, struct cg_http_req, link), 503, "shutting_down",
                            "the server is shutting down");
    /* Frees every connection, each calling on_conn_closed(); what is left
     * are connections evhttp had not set up yet. */
    evhttp_free(h->http);
    while ((it = cg_list_first(&h->conns)) != NULL)
        conn_free(cg_list_entry(it, struct conn, link));
    free(h->by_fd);
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
    return req->path != NULL ? req->path : "";
}

const char *cg_http_req_path_rest(const struct cg_http_req *req)
{
    return req->path_rest;
}

const char *cg_http_req_uri(const struct cg_http_req *req)
{
    const char *u = evhttp_request_get_uri(req->er);
    return u != NULL ? u : "";
}

const char *cg_http_req_header(const struct cg_http_req *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req->er), name);
}

const char *cg_http_req_body(struct cg_http_req *req, size_t *len)
{
    if (!req->body_loaded) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req->er);
        size_t n = in != NULL ? evbuffer_get_length(in) : 0;
        req->body = cg_malloc(n + 1);
        if (n > 0 && evbuffer_copyout(in, req->body, n) != (ev_ssize_t)n) {
            cg_log_error("http body copy failed", "bytes=%zu", n);
            n = 0;
        }
        req->body[n] = '\0';
        req->body_len = n;
        req->body_loaded = 1;
    }
    if (len != NULL)
        *len = req->body_len;
    return req->body;
}

const struct cg_form *cg_http_req_query(struct cg_http_req *req)
{
    if (req->query_state == 0) {
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->er);
        const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
        if (q == NULL)
            q = "";
        req->query_state = cg_form_parse(&req->query, q, strlen(q), NULL) == 0 ? 1 : -1;
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
    return req->peer;
}

int cg_http_req_is_loopback(const struct cg_http_req *req)
{
    return req->loopback;
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
    add_header(evhttp_request_get_output_headers(req->er), name, value);
}

static void remove_all(struct evkeyvalq *hs, const char *name)
{
    while (evhttp_remove_header(hs, name) == 0)
        ;
}

void cg_http_reply(struct cg_http_req *req, int status, const char *content_type, const char *body,
                   size_t len)
{
    if (req == NULL)
        return;
    struct cg_httpd *h = req->h;
    struct evhttp_request *er = req->er;
    if (status < 100 || status > 599) {
        cg_log_error("http handler replied with an invalid status", "status=%d", status);
        status = 500;
        content_type = NULL;
        body = NULL;
        len = 0;
    }
    if (body == NULL)
        len = 0;

    struct evkeyvalq *out = evhttp_request_get_output_headers(er);
    /* RFC 9110: 1xx, 204 and 304 have no content at all. */
    int bodyless = status < 200 || status == 204 || status == 304;
    if (content_type != NULL) {
        remove_all(out, "Content-Type");
        add_header(out, "Content-Type", content_type);
    }
    if (evhttp_find_header(out, "Cache-Control") == NULL)
        add_header(out, "Cache-Control", "no-store");
    if (evhttp_find_header(out, "X-Content-Type-Options") == NULL)
        add_header(out, "X-Content-Type-Options", "nosniff");
    /* Set explicitly so HEAD replies announce the length of the GET body
     * and keep-alive works for HTTP/1.0 clients too. */
    remove_all(out, "Content-Length");
    if (!bodyless) {
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", len);
        add_header(out, "Content-Length", cl);
    }
    if (h->stopped) {
        remove_all(out, "Connection");
        add_header(out, "Connection", "close");
    }

    struct evbuffer *ob = evhttp_request_get_output_buffer(er);
    if (!bodyless && req->method != CG_HTTP_HEAD && len > 0 && evbuffer_add(ob, body, len) != 0) {
        cg_log_error("http reply buffer failed", "bytes=%zu", len);
        evbuffer_drain(ob, evbuffer_get_length(ob));
        remove_all(out, "Content-Length");
        add_header(out, "Content-Length", "0");
        status = 500;
    }

    /* Saved before the send: evhttp may free er (client gone) inside it. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    const char *route = req->route;
    enum cg_http_method method = req->method;
    uint64_t dur = cg_mono_us() - req->start_us;
    cg_log_debug("http request", "method=%s path=%s status=%d duration_us=%llu", req->method_name,
                 req->path != NULL ? req->path : "-", status, (unsigned long long)dur);

    evhttp_send_reply(er, status, cg_http_reason(status), NULL);

    if (h->freeing && evcon != NULL) {
        /* evhttp_free() comes next and drops unwritten output; a direct
         * nonblocking write gives the 503 a chance to reach the client. */
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
        if (fd >= 0 && evbuffer_write(bufferevent_get_output(bev), fd) < 0)
            cg_log_debug("http shutdown write failed", "error=%s", strerror(errno));
    }

    live_unlink(req);
    req_free(req);
    if (h->observer != NULL)
        h->observer(route, method, status, dur, h->observer_arg);
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

const char *cg_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* ---- streamed replies ---- */

/*
 * A stream is an evhttp reply begun with evhttp_send_reply_start() and
 * continued chunk by chunk. evhttp keeps reading the connection while it
 * writes (only to see the peer close), so a peer that goes away is noticed
 * at once: evhttp detaches the request (it is not done with it yet) and
 * frees the connection, whose close callback, taken over here from the
 * deadline record (struct conn), tells the owner and frees the request.
 *
 * While a stream is open the connection has no read timeout (a viewer
 * sends nothing for as long as it watches) and a bounded input buffer (a
 * client that sends bytes meanwhile cannot grow it); the write timeout
 * stays, so a peer that stops reading is dropped after timeout_s even when
 * the owner writes too little to reach max_pending.
 */
#include <event2/http_struct.h>

#define STREAM_READ_CAP 4096

struct cg_http_stream {
    struct cg_httpd *h;
    struct evhttp_request *er;
    struct evhttp_connection *evcon;
    struct conn *c;
    size_t max_pending;
    int chunked;
    int ending; /* freed by us: no closed callback */
    cg_http_stream_closed_cb closed;
    void *arg;
};

static void stream_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct cg_http_stream *s = arg;
    struct conn *c = s->c;
    /* A request evhttp detached (peer gone before the end) is ours to free;
     * one still attached is freed with the connection. */
    int detached = evhttp_request_get_connection(s->er) == NULL;
    if (!s->ending && s->closed != NULL)
        s->closed(s, s->arg);
    if (detached)
        evhttp_request_free(s->er);
    free(s);
    on_conn_closed(evcon, c);
}

struct cg_http_stream *cg_http_stream_start(struct cg_http_req *req, int status,
                                            const char *content_type, size_t max_pending,
                                            cg_http_stream_closed_cb closed, void *arg)
{
    if (req == NULL)
        return NULL;
    struct cg_httpd *h = req->h;
    struct evhttp_request *er = req->er;
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    struct conn *c = conn_of(h, evcon);
    if (req->method == CG_HTTP_HEAD || c == NULL || c->evcon == NULL || status < 200 ||
        status > 599 || status == 204 || status == 304) {
        if (req->method != CG_HTTP_HEAD)
            cg_http_reply_error(req, 503, "unavailable", "the stream cannot start");
        else if (status < 200 || status > 599) /* HEAD: the headers a GET would get */
            cg_http_reply_error(req, 500, "internal", "invalid status");
        else {
            struct evkeyvalq *out = evhttp_request_get_output_headers(er);
            if (content_type != NULL) {
                remove_all(out, "Content-Type");
                add_header(out, "Content-Type", content_type);
            }
            if (evhttp_find_header(out, "Cache-Control") == NULL)
                add_header(out, "Cache-Control", "no-store");
            if (evhttp_find_header(out, "X-Content-Type-Options") == NULL)
                add_header(out, "X-Content-Type-Options", "nosniff");
            remove_all(out, "Content-Length");
            const char *route = req->route;
            uint64_t dur = cg_mono_us() - req->start_us;
            evhttp_send_reply(er, status, cg_http_reason(status), NULL);
            live_unlink(req);
            req_free(req);
            if (h->observer != NULL)
                h->observer(route, CG_HTTP_HEAD, status, dur, h->observer_arg);
        }
        return NULL;
    }

    struct evkeyvalq *out = evhttp_request_get_output_headers(er);
    if (content_type != NULL) {
        remove_all(out, "Content-Type");
        add_header(out, "Content-Type", content_type);
    }
    if (evhttp_find_header(out, "Cache-Control") == NULL)
        add_header(out, "Cache-Control", "no-store");
    if (evhttp_find_header(out, "X-Content-Type-Options") == NULL)
        add_header(out, "X-Content-Type-Options", "nosniff");
    remove_all(out, "Content-Length");
    remove_all(out, "Transfer-Encoding");
    /* evhttp 2.1 has no getter for the version; http_struct.h is its
     * public (if old) view of the request. */
    int http11 = er->major > 1 || (er->major == 1 && er->minor >= 1);
    if (!http11) {
        /* The body ends when the connection does. evhttp would announce
         * keep-alive to a 1.0 client that asked for it, so the request
         * forgets having asked. */
        remove_all(evhttp_request_get_input_headers(er), "Connection");
        remove_all(out, "Connection");
        add_header(out, "Connection", "close");
    } else if (h->stopped) {
        remove_all(out, "Connection");
        add_header(out, "Connection", "close");
    }

    struct cg_http_stream *s = cg_calloc(1, sizeof *s);
    s->h = h;
    s->er = er;
    s->evcon = evcon;
    s->c = c;
    s->max_pending = max_pending;
    s->chunked = http11;
    s->closed = closed;
    s->arg = arg;

    const char *route = req->route;
    enum cg_http_method method = req->method;
    uint64_t dur = cg_mono_us() - req->start_us;
    cg_log_debug("http stream", "method=%s path=%s status=%d", req->method_name,
                 req->path != NULL ? req->path : "-", status);
    live_unlink(req);
    req_free(req);

    /* The close callback is the stream's from now; it hands the deadline
     * record on when the connection goes. */
    evhttp_connection_set_closecb(evcon, stream_conn_closed, s);
    evhttp_send_reply_start(er, status, cg_http_reason(status));
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct timeval wtv = {.tv_sec = h->timeout_s, .tv_usec = 0};
    bufferevent_set_timeouts(bev, NULL, &wtv);
    bufferevent_setwatermark(bev, EV_READ, 0, STREAM_READ_CAP);
    if (h->observer != NULL)
        h->observer(route, method, status, dur, h->observer_arg);
    return s;
}

size_t cg_http_stream_pending(const struct cg_http_stream *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    return bev != NULL ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Drops the connection at once (frees the stream, without its callback). */
static void stream_abort(struct cg_http_stream *s)
{
    s->ending = 1;
    /* Calls stream_conn_closed(), which frees s and the request. */
    evhttp_connection_free(s->evcon);
}

int cg_http_stream_write(struct cg_http_stream *s, const void *data, size_t len)
{
    if (s == NULL)
        return -1;
    if (len == 0)
        return 0;
    /* The chunk's size line and CRLF count against the bound too. */
    size_t framing = s->chunked ? 20 : 0;
    size_t pending = cg_http_stream_pending(s);
    if (pending + len + framing > s->max_pending || evhttp_request_get_connection(s->er) == NULL) {
        cg_log_info("http stream dropped: the client does not read", "pending=%zu max=%zu", pending,
                    s->max_pending);
        stream_abort(s);
        return -1;
    }
    /* Straight into the connection's output, as evhttp_send_reply_chunk()
     * would put it there, without its copy into a buffer of its own: a
     * stream's writes go to many viewers every second. The bufferevent has
     * kept writing enabled since the stream started. */
    struct evbuffer *out = bufferevent_get_output(evhttp_connection_get_bufferevent(s->evcon));
    int rc = 0;
    if (s->chunked)
        rc |= evbuffer_add_printf(out, "%zx\r\n", len) < 0;
    rc |= evbuffer_add(out, data, len);
    if (s->chunked)
        rc |= evbuffer_add(out, "\r\n", 2);
    if (rc != 0) {
        stream_abort(s);
        return -1;
    }
    return 0;
}

void cg_http_stream_end(struct cg_http_stream *s)
{
    if (s == NULL)
        return;
    struct cg_httpd *h = s->h;
    struct conn *c = s->c;
    struct evhttp_connection *evcon = s->evcon;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    /* Back to the connection's ordinary limits and close callback. */
    struct timeval tv = {.tv_sec = h->timeout_s, .tv_usec = 0};
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    evhttp_connection_set_closecb(evcon, on_conn_closed, c);
    struct evhttp_request *er = s->er;
    free(s);
    /* The last chunk; on_reply_written() arms the next request's deadline. */
    evhttp_send_reply_end(er);
}
