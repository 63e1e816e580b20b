#include "base/fmacros.h"

#include "fakesrv.h"
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "net/httpc.h"
#include "base/log.h"

/* ---- loopback server (fakesrv) on the test's own event_base ---- */

#define MAX_HUNG  32
#define MAX_PORTS 512

struct hung {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
};

struct srv {
    struct cgt_srv *fake;
    const char *base_url; /* the fake's */
    int nreq;
    /* The last request seen, copied. */
    char *method;
    char *path;
    char *authorization;
    char *content_type;
    char *expect;
    char *user_agent;
    char *x_foo;
    char *x_trace;
    char *body;
    size_t body_len;
    /* Distinct client ports: one per TCP connection the client opened. */
    int ports[MAX_PORTS];
    int nports;
    /* Requests to /hang, never answered by the handler. */
    struct hung hung[MAX_HUNG];
    int nhung;
    int hung_closed; /* connections with a hung request that went away */
};

static void replace(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? cg_strdup(src) : NULL;
}

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    default:
        return "OTHER";
    }
}

static void note_port(struct srv *s, struct evhttp_connection *conn)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(conn, &addr, &port);
    for (int i = 0; i < s->nports; i++) {
        if (s->ports[i] == port)
            return;
    }
    if (s->nports < MAX_PORTS)
        s->ports[s->nports++] = port;
}

static void on_hung_close(struct evhttp_connection *conn, void *arg)
{
    struct srv *s = arg;
    for (int i = 0; i < s->nhung; i++) {
        if (s->hung[i].conn == conn && s->hung[i].req != NULL) {
            /* libevent frees the request with its connection. */
            s->hung[i].req = NULL;
            s->hung_closed++;
        }
    }
}

static void reply(struct evhttp_request *req, int code, const char *ctype, const void *body,
                  size_t len)
{
    struct evbuffer *out = evbuffer_new();
    assert_non_null(out);
    assert_int_equal(evbuffer_add(out, body, len), 0);
    if (ctype)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Status", out);
    evbuffer_free(out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct srv *s = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *outh = evhttp_request_get_output_headers(req);
    s->nreq++;
    note_port(s, evhttp_request_get_connection(req));

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    replace(&s->method, method_name(evhttp_request_get_command(req)));
    replace(&s->path, path);
    replace(&s->authorization, evhttp_find_header(in, "Authorization"));
    replace(&s->content_type, evhttp_find_header(in, "Content-Type"));
    replace(&s->expect, evhttp_find_header(in, "Expect"));
    replace(&s->user_agent, evhttp_find_header(in, "User-Agent"));
    replace(&s->x_foo, evhttp_find_header(in, "X-Foo"));
    replace(&s->x_trace, evhttp_find_header(in, "X-Trace"));
    struct evbuffer *inbuf = evhttp_request_get_input_buffer(req);
    free(s->body);
    s->body_len = evbuffer_get_length(inbuf);
    s->body = cg_malloc(s->body_len + 1);
    evbuffer_copyout(inbuf, s->body, s->body_len);
    s->body[s->body_len] = '\0';

    if (strcmp(path, "/hello") == 0) {
        reply(req, 200, "text/plain", "hello world", 11);
    } else if (strcmp(path, "/echo") == 0) {
        reply(req, 200, s->content_type, s->body, s->body_len);
    } else if (strcmp(path, "/limited") == 0) {
        evhttp_add_header(outh, "Retry-After", "3");
        evhttp_add_header(outh, "X-Rate-Limit-Limit", "100");
        /* Header names are case-insensitive. */
        evhttp_add_header(outh, "x-rate-limit-remaining", "0");
        evhttp_add_header(outh, "X-RATE-LIMIT-CONFIG", " 100 per 1s ");
        reply(req, 429, "application/json", "{\"error\":\"slow down\"}", 21);
    } else if (strcmp(path, "/date") == 0) {
        char date[64];
        time_t when = time(NULL) + 30;
        struct tm tm;
        gmtime_r(&when, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        evhttp_add_header(outh, "Retry-After", date);
        reply(req, 503, NULL, "", 0);
    } else if (strcmp(path, "/badretry") == 0) {
        evhttp_add_header(outh, "Retry-After", "soon");
        evhttp_add_header(outh, "X-Rate-Limit-Limit", "12abc");
        reply(req, 429, NULL, "", 0);
    } else if (strcmp(path, "/fail") == 0) {
        reply(req, 500, "text/plain", "boom", 4);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 64 * 1024;
        char *big = cg_malloc(n);
        memset(big, 'x', n);
        reply(req, 200, "text/plain", big, n);
        free(big);
    } else if (strcmp(path, "/hang") == 0) {
        assert_true(s->nhung < MAX_HUNG);
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        s->hung[s->nhung].req = req;
        s->hung[s->nhung].conn = conn;
        s->nhung++;
        evhttp_connection_set_closecb(conn, on_hung_close, s);
    } else {
        reply(req, 404, "text/plain", "not found", 9);
    }
}

/* Answers every hung request still held. */
static void srv_release_hung(struct srv *s)
{
    for (int i = 0; i < s->nhung; i++) {
        struct evhttp_request *req = s->hung[i].req;
        if (req != NULL)
            reply(req, 200, "text/plain", "late", 4);
    }
}

static int socket_port(evutil_socket_t fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

static void srv_start(struct srv *s, struct event_base *base)
{
    memset(s, 0, sizeof *s);
    s->fake = cgt_srv_new_on(base, "httpc",
                             EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                 EVHTTP_REQ_HEAD,
                             on_request, s);
    s->base_url = cgt_srv_url(s->fake);
}

static void srv_stop(struct srv *s)
{
    /* Frees every connection, hung requests included. */
    cgt_srv_stop(s->fake);
    free(s->method);
    free(s->path);
    free(s->authorization);
    free(s->content_type);
    free(s->expect);
    free(s->user_agent);
    free(s->x_foo);
    free(s->x_trace);
    free(s->body);
}

/* ---- a raw server that sends one canned response per request ---- */

struct raw {
    struct evconnlistener *lst;
    int port;
    const char *response;
};

static void raw_on_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_free(bev);
}

static void raw_on_read(struct bufferevent *bev, void *arg)
{
    struct raw *r = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setcb(bev, NULL, raw_on_write, NULL, r);
    assert_int_equal(bufferevent_write(bev, r->response, strlen(r->response)), 0);
}

static void raw_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    (void)arg;
    bufferevent_free(bev);
}

static void raw_on_accept(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                          int socklen, void *arg)
{
    (void)sa;
    (void)socklen;
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(lst), fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    bufferevent_setcb(bev, raw_on_read, NULL, raw_on_event, arg);
    assert_int_equal(bufferevent_enable(bev, EV_READ), 0);
}

static void raw_start(struct raw *r, struct event_base *base, const char *response)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->response = response;
    r->lst =
        evconnlistener_new_bind(base, raw_on_accept, r, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(r->lst);
    r->port = socket_port(evconnlistener_get_fd(r->lst));
}

/* ---- fixture and result capture ---- */

struct fx {
    struct event_base *base;
    struct srv srv;
    struct cg_httpc *c;
};

struct got {
    int calls;
    char *error;
    long status;
    char *body;
    size_t body_len;
    char *content_type;
    double retry_after_s;
    long limit;
    long remaining;
    char *config;
    uint64_t duration_us;
};

static void on_result(const struct cg_httpc_result *res, void *arg)
{
    struct got *g = arg;
    g->calls++;
    replace(&g->error, res->error);
    g->status = res->status;
    free(g->body);
    g->body = cg_malloc(res->body_len + 1);
    memcpy(g->body, res->body, res->body_len + 1);
    g->body_len = res->body_len;
    replace(&g->content_type, res->content_type);
    g->retry_after_s = res->retry_after_s;
    g->limit = res->rate_limit_limit;
    g->remaining = res->rate_limit_remaining;
    replace(&g->config, res->rate_limit_config);
    g->duration_us = res->duration_us;
}

static void got_free(struct got *g)
{
    free(g->error);
    free(g->body);
    free(g->content_type);
    free(g->config);
    memset(g, 0, sizeof *g);
}

static int setup(void **state)
{
    struct fx *f = cg_calloc(1, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    srv_start(&f->srv, f->base);
    f->c = cg_httpc_new(f->base, NULL);
    assert_non_null(f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cg_httpc_free(f->c);
    srv_stop(&f->srv);
    event_base_free(f->base);
    free(f);
    return 0;
}

static char *url(struct fx *f, const char *path)
{
    char *u = cg_malloc(strlen(f->srv.base_url) + strlen(path) + 1);
    strcpy(u, f->srv.base_url);
    strcat(u, path);
    return u;
}

/* Sends req, checks the callback is not synchronous, runs until it fires. */
static void roundtrip(struct fx *f, const struct cg_httpc_request *req, struct got *g)
{
    assert_int_equal(cg_httpc_send(f->c, req, on_result, g), 0);
    assert_int_equal(g->calls, 0);
    assert_int_equal(cg_httpc_inflight(f->c), 1);
    assert_int_equal(cgt_run_until(f->base, &g->calls, 5000), 0);
    assert_int_equal(g->calls, 1);
    assert_int_equal(cg_httpc_inflight(f->c), 0);
    /* Give a stray second callback the chance to show up. */
    cgt_run_for(f->base, 10);
    assert_int_equal(g->calls, 1);
}

/* ---- tests ---- */

static void test_get_200(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/hello");
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "hello world");
    assert_int_equal(g.body_len, 11);
    assert_string_equal(g.content_type, "text/plain");
    assert_true(g.retry_after_s == -1);
    assert_int_equal(g.limit, -1);
    assert_int_equal(g.remaining, -1);
    assert_null(g.config);
    assert_true(g.duration_us > 0);
    assert_string_equal(f->srv.method, "GET");
    assert_string_equal(f->srv.user_agent, "callgate/" CG_VERSION);
    got_free(&g);
    free(u);
}

static void test_post_form_echo(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/echo");
    /* An embedded NUL shows the body is copied by length, not as a string. */
    char body[] = "To=%2B15551234567&Body=hi\0there";
    size_t len = sizeof body - 1;
    struct cg_httpc_request req = {
        .method = "POST",
        .url = u,
        .body = body,
        .body_len = len,
        .content_type = "application/x-www-form-urlencoded",
    };
    struct got g = {0};
    assert_int_equal(cg_httpc_send(f->c, &req, on_result, &g), 0);
    /* The body was copied: scribbling on ours must not matter. */
    memset(body, '!', len);
    assert_int_equal(cgt_run_until(f->base, &g.calls, 5000), 0);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body_len, len);
    assert_memory_equal(g.body, "To=%2B15551234567&Body=hi\0there", len);
    assert_string_equal(g.content_type, "application/x-www-form-urlencoded");
    assert_string_equal(f->srv.method, "POST");
    assert_string_equal(f->srv.content_type, "application/x-www-form-urlencoded");
    assert_null(f->srv.expect);
    assert_null(f->srv.authorization);
    got_free(&g);
    free(u);
}

static void test_post_json(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/echo");
    const char *json = "{\"assistantId\":\"a1\",\"n\":1}";
    struct cg_httpc_request req = {
        .method = "POST",
        .url = u,
        .body = json,
        .body_len = strlen(json),
        .content_type = "application/json",
    };
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, json);
    assert_string_equal(f->srv.content_type, "application/json");
    assert_string_equal(f->srv.body, json);
    got_free(&g);
    free(u);
}

static void test_large_post_no_expect(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/echo");
    size_t len = 1536 * 1024;
    char *body = cg_malloc(len);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 26);
    struct cg_httpc_request req = {
        .method = "POST",
        .url = u,
        .body = body,
        .body_len = len,
        .content_type = "application/octet-stream",
        .max_response_bytes = 2 * len,
    };
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body_len, len);
    assert_memory_equal(g.body, body, len);
    /* No 100-continue round trip. */
    assert_null(f->srv.expect);
    got_free(&g);
    free(body);
    free(u);
}

static char *slurp(FILE *fp)
{
    fflush(fp);
    long n = ftell(fp);
    assert_true(n >= 0);
    char *s = cg_malloc((size_t)n + 1);
    rewind(fp);
    size_t got = fread(s, 1, (size_t)n, fp);
    s[got] = '\0';
    return s;
}

static void test_basic_auth(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/hello?Token=querysecret");
    FILE *logf = tmpfile();
    assert_non_null(logf);
    cg_log_set_stream(logf);
    cg_log_set_level(CG_LOG_DEBUG);
    struct cg_httpc_request req = {
        .url = u,
        .basic_user = "ACtest",
        .basic_pass = "s3cr3t-pass",
    };
    struct got g = {0};
    roundtrip(f, &req, &g);
    cg_log_set_level(CG_LOG_INFO);
    cg_log_set_stream(NULL);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_string_equal(f->srv.authorization, "Basic QUN0ZXN0OnMzY3IzdC1wYXNz");
    /* Debug logging happened, without the password or the query. */
    char *logs = slurp(logf);
    fclose(logf);
    assert_non_null(strstr(logs, "/hello"));
    assert_null(strstr(logs, "s3cr3t"));
    assert_null(strstr(logs, "QUN0ZXN0"));
    assert_null(strstr(logs, "querysecret"));
    free(logs);
    got_free(&g);
    free(u);
}

static void test_bearer_and_headers(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/echo");
    const char *const headers[] = {"X-Foo: bar baz", "X-Trace: 42", NULL};
    struct cg_httpc_request req = {
        .method = "PUT",
        .url = u,
        .body = "{}",
        .body_len = 2,
        .content_type = "application/json",
        .bearer = "tok-abc.def",
        .headers = headers,
    };
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_string_equal(f->srv.method, "PUT");
    assert_string_equal(f->srv.authorization, "Bearer tok-abc.def");
    assert_string_equal(f->srv.x_foo, "bar baz");
    assert_string_equal(f->srv.x_trace, "42");
    assert_string_equal(f->srv.body, "{}");
    got_free(&g);
    free(u);
}

static void test_delete(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/hello");
    struct cg_httpc_request req = {.method = "DELETE", .url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_string_equal(f->srv.method, "DELETE");
    assert_int_equal(f->srv.body_len, 0);
    got_free(&g);
    free(u);
}

static void test_rate_limited(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/limited");
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 429);
    assert_true(g.retry_after_s == 3.0);
    assert_int_equal(g.limit, 100);
    assert_int_equal(g.remaining, 0);
    assert_string_equal(g.config, "100 per 1s");
    assert_string_equal(g.content_type, "application/json");
    assert_string_equal(g.body, "{\"error\":\"slow down\"}");
    got_free(&g);
    free(u);
}

static void test_retry_after_date(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/date");
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 503);
    assert_true(g.retry_after_s >= 27 && g.retry_after_s <= 31);
    assert_string_equal(g.body, "");
    assert_int_equal(g.body_len, 0);
    got_free(&g);
    free(u);
}

static void test_bad_header_values(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/badretry");
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 429);
    assert_true(g.retry_after_s == -1);
    assert_int_equal(g.limit, -1);
    got_free(&g);
    free(u);
}

static void test_server_error_is_status(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/fail");
    struct cg_httpc_request req = {.method = "POST", .url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 500);
    assert_string_equal(g.body, "boom");
    assert_true(g.retry_after_s == -1);
    assert_string_equal(f->srv.method, "POST");
    got_free(&g);
    free(u);
}

static void test_response_too_large(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/big");
    struct cg_httpc_request req = {.url = u, .max_response_bytes = 1000};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_string_equal(g.error, "response too large");
    assert_int_equal(g.status, 0);
    assert_string_equal(g.body, "");
    got_free(&g);

    /* Exactly at the limit is fine; the default limit is far larger. */
    req.max_response_bytes = 64 * 1024;
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.body_len, 64 * 1024);
    got_free(&g);
    req.max_response_bytes = 0;
    roundtrip(f, &req, &g);
    assert_null(g.error);
    got_free(&g);
    free(u);
}

static void test_client_default_limit(void **state)
{
    struct fx *f = *state;
    struct cg_httpc_opts opts = {.default_max_response_bytes = 100, .user_agent = "agent/1"};
    struct cg_httpc *c = cg_httpc_new(f->base, &opts);
    assert_non_null(c);
    char *u = url(f, "/big");
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    assert_int_equal(cg_httpc_send(c, &req, on_result, &g), 0);
    assert_int_equal(cgt_run_until(f->base, &g.calls, 5000), 0);
    assert_string_equal(g.error, "response too large");
    assert_string_equal(f->srv.user_agent, "agent/1");
    got_free(&g);
    cg_httpc_free(c);
    free(u);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/hang");
    struct cg_httpc_request req = {.url = u, .timeout_ms = 200};
    struct got g = {0};
    uint64_t t0 = cgt_now_ms();
    roundtrip(f, &req, &g);
    uint64_t took = cgt_now_ms() - t0;
    assert_string_equal(g.error, "timeout");
    assert_int_equal(g.status, 0);
    assert_true(took >= 150 && took < 3000);
    assert_true(g.duration_us >= 150000);
    assert_int_equal(f->srv.nhung, 1);
    assert_int_equal(f->srv.hung_closed, 0);
    /* evhttp notices the client is gone only when it writes the reply: the
     * connection is then torn down rather than kept alive. */
    srv_release_hung(&f->srv);
    assert_int_equal(cgt_run_until(f->base, &f->srv.hung_closed, 5000), 0);
    assert_int_equal(f->srv.hung_closed, 1);
    got_free(&g);
    free(u);
}

static void test_client_default_timeout(void **state)
{
    struct fx *f = *state;
    struct cg_httpc_opts opts = {.default_timeout_ms = 100};
    struct cg_httpc *c = cg_httpc_new(f->base, &opts);
    assert_non_null(c);
    char *u = url(f, "/hang");
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    assert_int_equal(cg_httpc_send(c, &req, on_result, &g), 0);
    assert_int_equal(cgt_run_until(f->base, &g.calls, 5000), 0);
    assert_string_equal(g.error, "timeout");
    got_free(&g);
    cg_httpc_free(c);
    free(u);
}

static void test_connection_refused(void **state)
{
    struct fx *f = *state;
    /* A port that was just free and has no listener. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    int port = socket_port(fd);
    close(fd);

    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x", port);
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_non_null(g.error);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.body, "");
    got_free(&g);
}

static void test_bad_requests(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    struct cg_httpc_request req = {.url = NULL};
    assert_int_equal(cg_httpc_send(f->c, &req, on_result, &g), -1);
    char *u = url(f, "/hello");
    req.url = u;
    req.method = "AVERYLONGMETHODNAME";
    assert_int_equal(cg_httpc_send(f->c, &req, on_result, &g), -1);
    req.method = NULL;
    assert_int_equal(cg_httpc_send(f->c, &req, NULL, &g), -1);
    assert_int_equal(cg_httpc_inflight(f->c), 0);
    cgt_run_for(f->base, 20);
    assert_int_equal(g.calls, 0);
    /* An unsupported scheme is a transport error, reported by callback. */
    req.url = "ftp://127.0.0.1/x";
    roundtrip(f, &req, &g);
    assert_non_null(g.error);
    got_free(&g);
    free(u);
}

static void test_final_response_headers_only(void **state)
{
    struct fx *f = *state;
    struct raw r;
    raw_start(&r, f->base,
              "HTTP/1.1 100 Continue\r\nRetry-After: 99\r\nX-Rate-Limit-Limit: 5\r\n"
              "Content-Type: text/bogus\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Rate-Limit-Remaining: 7\r\n\r\nok");
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/raw", r.port);
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "ok");
    assert_true(g.retry_after_s == -1);
    assert_int_equal(g.limit, -1);
    assert_int_equal(g.remaining, 7);
    assert_null(g.content_type);
    got_free(&g);
    evconnlistener_free(r.lst);
}

static void test_redirect_not_followed(void **state)
{
    struct fx *f = *state;
    struct raw r;
    raw_start(&r, f->base,
              "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
              "Content-Length: 0\r\n\r\n");
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/raw", r.port);
    struct cg_httpc_request req = {.url = u};
    struct got g = {0};
    roundtrip(f, &req, &g);
    assert_null(g.error);
    assert_int_equal(g.status, 302);
    got_free(&g);
    evconnlistener_free(r.lst);
}

struct many {
    int calls[200];
    int total;
    int bad;
};

struct many_arg {
    struct many *m;
    int i;
};

static void on_many(const struct cg_httpc_result *res, void *arg)
{
    struct many_arg *a = arg;
    char want[16];
    snprintf(want, sizeof want, "req-%d", a->i);
    if (res->error != NULL || res->status != 200 || strcmp(res->body, want) != 0)
        a->m->bad++;
    a->m->calls[a->i]++;
    a->m->total++;
}

static void test_concurrent_200(void **state)
{
    struct fx *f = *state;
    struct cg_httpc_opts opts = {.max_connections_per_host = 8};
    struct cg_httpc *c = cg_httpc_new(f->base, &opts);
    assert_non_null(c);
    char *u = url(f, "/echo");
    struct many m = {0};
    struct many_arg args[200];
    char bodies[200][16];
    for (int i = 0; i < 200; i++) {
        args[i].m = &m;
        args[i].i = i;
        snprintf(bodies[i], sizeof bodies[i], "req-%d", i);
        struct cg_httpc_request req = {
            .method = "POST",
            .url = u,
            .body = bodies[i],
            .body_len = strlen(bodies[i]),
            .content_type = "text/plain",
        };
        assert_int_equal(cg_httpc_send(c, &req, on_many, &args[i]), 0);
    }
    assert_int_equal(m.total, 0);
    assert_int_equal(cg_httpc_inflight(c), 200);
    int all = 0;
    uint64_t deadline = cgt_now_ms() + 20000;
    while (!all && cgt_now_ms() < deadline) {
        cgt_run_for(f->base, 10);
        all = m.total >= 200;
    }
    cgt_run_for(f->base, 20);
    assert_int_equal(m.total, 200);
    for (int i = 0; i < 200; i++)
        assert_int_equal(m.calls[i], 1);
    assert_int_equal(m.bad, 0);
    assert_int_equal(cg_httpc_inflight(c), 0);
    assert_int_equal(f->srv.nreq, 200);
    /* The per-host cap held and connections were reused. */
    assert_true(f->srv.nports <= 8);
    cg_httpc_free(c);
    free(u);
}

/* max_active: at most that many requests in libcurl, the rest queued in
 * order and started as others finish; every request answered once. */
static void test_max_active_queues(void **state)
{
    struct fx *f = *state;
    struct cg_httpc_opts opts = {.max_active = 4};
    struct cg_httpc *c = cg_httpc_new(f->base, &opts);
    assert_non_null(c);
    char *u = url(f, "/echo");
    struct many m = {0};
    struct many_arg args[100];
    char bodies[100][16];
    for (int i = 0; i < 100; i++) {
        args[i].m = &m;
        args[i].i = i;
        snprintf(bodies[i], sizeof bodies[i], "req-%d", i);
        struct cg_httpc_request req = {
            .method = "POST",
            .url = u,
            .body = bodies[i],
            .body_len = strlen(bodies[i]),
            .content_type = "text/plain",
        };
        assert_int_equal(cg_httpc_send(c, &req, on_many, &args[i]), 0);
    }
    assert_int_equal(m.total, 0);
    assert_int_equal(cg_httpc_inflight(c), 100);
    uint64_t deadline = cgt_now_ms() + 20000;
    while (m.total < 100 && cgt_now_ms() < deadline)
        cgt_run_for(f->base, 10);
    cgt_run_for(f->base, 20);
    assert_int_equal(m.total, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(m.calls[i], 1);
    assert_int_equal(m.bad, 0);
    assert_int_equal(cg_httpc_inflight(c), 0);
    assert_int_equal(f->srv.nreq, 100);
    /* Never more than four at once, so never more than four connections. */
    assert_true(f->srv.nports <= 4);
    cg_httpc_free(c);
    free(u);
}

/* A queued request's timeout counts from its send: one that waits behind a
 * hung request past its deadline fails with "timeout" without being sent;
 * freeing the client cancels the hung one. */
static void test_max_active_queued_timeout(void **state)
{
    struct fx *f = *state;
    struct cg_httpc_opts opts = {.max_active = 1};
    struct cg_httpc *c = cg_httpc_new(f->base, &opts);
    assert_non_null(c);
    char *hang = url(f, "/hang"), *hello = url(f, "/hello");
    struct got g1 = {0}, g2 = {0};
    struct cg_httpc_request r1 = {.url = hang, .timeout_ms = 30000};
    struct cg_httpc_request r2 = {.url = hello, .timeout_ms = 200};
    assert_int_equal(cg_httpc_send(c, &r1, on_result, &g1), 0);
    assert_int_equal(cg_httpc_send(c, &r2, on_result, &g2), 0);
    assert_int_equal(cg_httpc_inflight(c), 2);
    assert_int_equal(cgt_run_until(f->base, &g2.calls, 5000), 0);
    assert_int_equal(g2.calls, 1);
    assert_string_equal(g2.error, "timeout");
    assert_int_equal(g1.calls, 0);
    assert_int_equal(f->srv.nhung, 1);
    assert_int_equal(f->srv.nreq, 1); /* the second never left the client */
    assert_int_equal(cg_httpc_inflight(c), 1);
    cg_httpc_free(c);
    assert_int_equal(g1.calls, 1);
    assert_string_equal(g1.error, "cancelled");
    assert_int_equal(g2.calls, 1);
    got_free(&g1);
    got_free(&g2);
    free(hang);
    free(hello);
}

/* Freeing the client answers a queued request "cancelled", once. */
static void test_max_active_free_cancels_queued(void **state)
{
    struct fx *f = *state;
    struct cg_httpc_opts opts = {.max_active = 1};
    struct cg_httpc *c = cg_httpc_new(f->base, &opts);
    assert_non_null(c);
    char *hang = url(f, "/hang");
    struct got g1 = {0}, g2 = {0};
    struct cg_httpc_request r = {.url = hang};
    assert_int_equal(cg_httpc_send(c, &r, on_result, &g1), 0);
    assert_int_equal(cg_httpc_send(c, &r, on_result, &g2), 0);
    assert_int_equal(cgt_run_until(f->base, &f->srv.nhung, 5000), 0);
    cgt_run_for(f->base, 50);
    assert_int_equal(f->srv.nhung, 1);
    cg_httpc_free(c);
    assert_int_equal(g1.calls, 1);
    assert_string_equal(g1.error, "cancelled");
    assert_int_equal(g2.calls, 1);
    assert_string_equal(g2.error, "cancelled");
    cgt_run_for(f->base, 50);
    assert_int_equal(g2.calls, 1);
    got_free(&g1);
    got_free(&g2);
    free(hang);
}

static void test_keepalive_reuse(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/hello");
    struct cg_httpc_request req = {.url = u};
    for (int i = 0; i < 10; i++) {
        struct got g = {0};
        roundtrip(f, &req, &g);
        assert_int_equal(g.status, 200);
        got_free(&g);
    }
    assert_int_equal(f->srv.nreq, 10);
    assert_int_equal(f->srv.nports, 1);
    free(u);
}

struct cancel_ctx {
    struct cg_httpc *c;
    const char *url;
    int calls;
    int cancelled;
    int resend_rc;
};

static void on_cancel(const struct cg_httpc_result *res, void *arg)
{
    struct cancel_ctx *x = arg;
    x->calls++;
    if (res->error && strcmp(res->error, "cancelled") == 0 && res->status == 0)
        x->cancelled++;
    /* The client is going away: new requests are refused. */
    struct cg_httpc_request req = {.url = x->url};
    x->resend_rc = cg_httpc_send(x->c, &req, on_cancel, x);
}

static void test_free_cancels_pending(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/hang");
    struct cg_httpc_request req = {.url = u};
    struct cancel_ctx x[5] = {{0}};
    for (int i = 0; i < 3; i++) {
        x[i].c = f->c;
        x[i].url = u;
        assert_int_equal(cg_httpc_send(f->c, &req, on_cancel, &x[i]), 0);
    }
    /* Let these reach the server; the last two never leave the client. */
    assert_int_equal(cgt_run_until(f->base, &f->srv.nhung, 5000), 0);
    cgt_run_for(f->base, 50);
    for (int i = 3; i < 5; i++) {
        x[i].c = f->c;
        x[i].url = u;
        assert_int_equal(cg_httpc_send(f->c, &req, on_cancel, &x[i]), 0);
    }
    assert_int_equal(cg_httpc_inflight(f->c), 5);
    cg_httpc_free(f->c);
    f->c = NULL;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(x[i].calls, 1);
        assert_int_equal(x[i].cancelled, 1);
        assert_int_equal(x[i].resend_rc, -1);
    }
    cgt_run_for(f->base, 50);
    for (int i = 0; i < 5; i++)
        assert_int_equal(x[i].calls, 1);
    free(u);
}

struct chain {
    struct cg_httpc *c;
    const char *url;
    int done;
    int want;
    int sync_bad; /* a callback ran inside cg_httpc_send() */
    int in_send;
    int ok;
};

static void on_chain(const struct cg_httpc_result *res, void *arg)
{
    struct chain *ch = arg;
    if (ch->in_send)
        ch->sync_bad++;
    if (res->error == NULL && res->status == 200)
        ch->ok++;
    ch->done++;
    if (ch->done < ch->want) {
        struct cg_httpc_request req = {.url = ch->url};
        ch->in_send = 1;
        int rc = cg_httpc_send(ch->c, &req, on_chain, ch);
        ch->in_send = 0;
        assert_int_equal(rc, 0);
    }
}

static void test_send_from_callback(void **state)
{
    struct fx *f = *state;
    char *u = url(f, "/hello");
    struct chain ch = {.c = f->c, .url = u, .want = 5};
    struct cg_httpc_request req = {.url = u};
    assert_int_equal(cg_httpc_send(f->c, &req, on_chain, &ch), 0);
    int finished = 0;
    uint64_t deadline = cgt_now_ms() + 5000;
    while (!finished && cgt_now_ms() < deadline) {
        cgt_run_for(f->base, 5);
        finished = ch.done >= ch.want;
    }
    assert_int_equal(ch.done, 5);
    assert_int_equal(ch.ok, 5);
    assert_int_equal(ch.sync_bad, 0);
    assert_int_equal(cg_httpc_inflight(f->c), 0);
    assert_int_equal(f->srv.nreq, 5);
    free(u);
}

struct selfree {
    struct fx *f;
    int first;
    int other;
    char *other_error;
};

static void on_selfree_first(const struct cg_httpc_result *res, void *arg)
{
    struct selfree *s = arg;
    s->first++;
    assert_int_equal(res->status, 200);
    cg_httpc_free(s->f->c);
    s->f->c = NULL;
}

static void on_selfree_other(const struct cg_httpc_result *res, void *arg)
{
    struct selfree *s = arg;
    s->other++;
    replace(&s->other_error, res->error);
}

static void test_free_from_callback(void **state)
{
    struct fx *f = *state;
    char *hang = url(f, "/hang");
    char *hello = url(f, "/hello");
    struct selfree s = {.f = f};
    struct cg_httpc_request r1 = {.url = hang};
    struct cg_httpc_request r2 = {.url = hello};
    assert_int_equal(cg_httpc_send(f->c, &r1, on_selfree_other, &s), 0);
    assert_int_equal(cg_httpc_send(f->c, &r2, on_selfree_first, &s), 0);
    assert_int_equal(cgt_run_until(f->base, &s.first, 5000), 0);
    assert_null(f->c);
    assert_int_equal(s.other, 1);
    assert_string_equal(s.other_error, "cancelled");
    cgt_run_for(f->base, 50);
    assert_int_equal(s.first, 1);
    assert_int_equal(s.other, 1);
    free(s.other_error);
    free(hang);
    free(hello);
}

static void test_free_idle_and_null(void **state)
{
    struct fx *f = *state;
    cg_httpc_free(NULL);
    assert_int_equal(cg_httpc_inflight(NULL), 0);
    assert_null(cg_httpc_new(NULL, NULL));
    /* A client that never sent anything. */
    struct cg_httpc *c = cg_httpc_new(f->base, NULL);
    assert_non_null(c);
    cg_httpc_free(c);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_get_200),
        T(test_post_form_echo),
        T(test_post_json),
        T(test_large_post_no_expect),
        T(test_basic_auth),
        T(test_bearer_and_headers),
        T(test_delete),
        T(test_rate_limited),
        T(test_retry_after_date),
        T(test_bad_header_values),
        T(test_server_error_is_status),
        T(test_response_too_large),
        T(test_client_default_limit),
        T(test_timeout),
        T(test_client_default_timeout),
        T(test_connection_refused),
        T(test_bad_requests),
        T(test_final_response_headers_only),
        T(test_redirect_not_followed),
        T(test_concurrent_200),
        T(test_keepalive_reuse),
        T(test_max_active_queues),
        T(test_max_active_queued_timeout),
        T(test_max_active_free_cancels_queued),
        T(test_free_cancels_pending),
        T(test_send_from_callback),
        T(test_free_from_callback),
        T(test_free_idle_and_null),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    /* libcurl's global state stays for the process lifetime; release it so
     * leak checkers see a clean exit. */
    curl_global_cleanup();
    return rc;
}
