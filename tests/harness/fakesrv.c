/*
 * fakesrv.c - the scaffolding of fakesrv.h: evhttp on a private event_base,
 * run by a private thread; the test thread stops the loop through a pipe
 * (libevent is not built thread-aware here, so the loop cannot be broken
 * from another thread directly).
 */
#include "base/fmacros.h"

#include "fakesrv.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/list.h"
#include "harness.h"

/* A reply held back by cgt_srv_answer (server thread only). */
struct held {
    struct evhttp_request *req;
    struct event *timer;
    int status;
    char *body;
    int retry_after;
    cgt_srv_send_fn *send;
    void *arg;
    struct cg_list link; /* in cgt_srv.held */
};

struct cgt_srv {
    char *name;
    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* guards running only */
    int running;
    int own_base; /* the base is ours (threaded server), not the test's */
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    int stop_pipe[2];
    char url[64];
    struct cg_list held; /* struct held; server thread only, until joined */
};

/* On the server thread a test cannot be failed (fail_msg longjmps on the
 * test thread's stack): a loud crash beats a request that hangs. */
static void die(const char *what)
{
    fprintf(stderr, "fake server: %s\n", what);
    abort();
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* First callback of the loop: the thread is past its start-up. */
static void on_running(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cgt_srv *s = arg;
    pthread_mutex_lock(&s->mu);
    s->running = 1;
    pthread_mutex_unlock(&s->mu);
}

static void *run(void *arg)
{
    struct cgt_srv *s = arg;
    if (event_base_dispatch(s->base) < 0)
        die("the event loop failed");
    return NULL;
}

/* The parts of a server common to both kinds: evhttp on base, bound to
 * 127.0.0.1 on a free port. */
static struct cgt_srv *srv_bind(struct event_base *base, int own_base, const char *name)
{
    struct cgt_srv *s = cg_calloc(1, sizeof *s);
    s->name = cg_strdup(name);
    cg_list_init(&s->held);
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        fail_msg("%s: cannot create a mutex", name);
    s->base = base;
    s->own_base = own_base;
    s->http = s->base ? evhttp_new(s->base) : NULL;
    if (s->http == NULL)
        fail_msg("%s: cannot create the event base", name);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    if (bs == NULL)
        fail_msg("%s: cannot bind: %s", name, strerror(errno));
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0)
        fail_msg("%s: getsockname: %s", name, strerror(errno));
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    return s;
}

struct cgt_srv *cgt_srv_new(const char *name)
{
    struct cgt_srv *s = srv_bind(event_base_new(), 1, name);
    if (pipe(s->stop_pipe) != 0)
        fail_msg("%s: pipe: %s", name, strerror(errno));
    s->stop_ev = event_new(s->base, s->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, s->base);
    if (s->stop_ev == NULL || event_add(s->stop_ev, NULL) != 0)
        fail_msg("%s: cannot watch its stop pipe", name);
    return s;
}

struct cgt_srv *cgt_srv_new_on(struct event_base *base, const char *name, int methods,
                               cgt_srv_handler *handler, void *arg)
{
    struct cgt_srv *s = srv_bind(base, 0, name);
    if (methods != 0)
        evhttp_set_allowed_methods(s->http, (ev_uint16_t)methods);
    evhttp_set_gencb(s->http, handler, arg);
    return s;
}

void cgt_srv_run(struct cgt_srv *s, cgt_srv_handler *handler, void *arg, int wait_idle)
{
    evhttp_set_gencb(s->http, handler, arg);
    /* Registered before the thread exists, so that no other thread touches
     * the base meanwhile; it fires on the loop's first pass. */
    if (event_base_once(s->base, -1, EV_TIMEOUT, on_running, s, NULL) != 0)
        fail_msg("%s: cannot schedule its start-up event", s->name);
    if (pthread_create(&s->thread, NULL, run, s) != 0)
        fail_msg("%s: cannot start its thread", s->name);
    s->started = 1;
    if (!wait_idle)
        return;
    /* Return only once the thread idles in its loop: the tests fork callgate
     * processes next, and a fork while another thread is inside the
     * allocator (thread start-up allocates) can leave the child stuck
     * before exec under ASan. */
    uint64_t deadline = cg_mono_ms() + 5000;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int running = s->running;
        pthread_mutex_unlock(&s->mu);
        if (running)
            break;
        if (cg_mono_ms() >= deadline)
            fail_msg("%s: its thread did not start", s->name);
        struct timespec ts = {.tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec settle = {.tv_nsec = 5000000};
    nanosleep(&settle, NULL);
}

const char *cgt_srv_url(const struct cgt_srv *s)
{
    return s->url;
}

static void free_held(struct held *h)
{
    event_free(h->timer);
    free(h->body);
    free(h);
}

void cgt_srv_stop(struct cgt_srv *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        char c = 'x';
        ssize_t w;
        while ((w = write(s->stop_pipe[1], &c, 1)) < 0 && errno == EINTR)
            ;
        /* Without the byte the loop never ends and the join below hangs. */
        if (w != 1)
            fail_msg("%s: cannot stop its loop: %s", s->name, strerror(errno));
        if (pthread_join(s->thread, NULL) != 0)
            fail_msg("%s: cannot join its thread", s->name);
    }
    /* The loop is gone: this thread owns everything now. The requests still
     * held back are freed with their connections by evhttp_free(). */
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &s->held) {
        free_held(cg_list_entry(it, struct held, link));
    }
    if (s->http)
        evhttp_free(s->http);
    if (s->stop_ev)
        event_free(s->stop_ev);
    if (s->base && s->own_base)
        event_base_free(s->base);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    pthread_mutex_destroy(&s->mu);
    free(s->name);
    free(s);
}

/* ---- held replies ---- */

static void on_held(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct held *h = arg;
    cg_list_remove(&h->link);
    h->send(h->req, h->status, h->body, h->retry_after, h->arg);
    free_held(h);
}

void cgt_srv_answer(struct cgt_srv *s, struct evhttp_request *req, int delay_ms, int status,
                    char *body, int retry_after, cgt_srv_send_fn *send, void *arg)
{
    if (delay_ms <= 0) {
        send(req, status, body, retry_after, arg);
        free(body);
        return;
    }
    struct held *h = cg_calloc(1, sizeof *h);
    h->req = req;
    h->status = status;
    h->body = body;
    h->retry_after = retry_after;
    h->send = send;
    h->arg = arg;
    h->timer = evtimer_new(s->base, on_held, h);
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
    if (h->timer == NULL || evtimer_add(h->timer, &tv) != 0)
        die("cannot arm the timer of a delayed reply");
    cg_list_push_front(&s->held, &h->link);
}

/* ---- requests and replies ---- */

void cgt_srv_parse(struct evhttp_request *req, struct cgt_srv_req *r)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    r->cmd = evhttp_request_get_command(req);
    r->uri = evhttp_request_get_uri(req);
    r->path = u ? evhttp_uri_get_path(u) : NULL;
    r->query = u ? evhttp_uri_get_query(u) : NULL;
    r->auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
}

char *cgt_srv_body(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = cg_malloc(len + 1);
    if (evbuffer_copyout(in, body, len) != (ev_ssize_t)len)
        die("cannot copy a request body");
    body[len] = '\0';
    return body;
}

int cgt_srv_auth_ok(const char *auth, const char *want)
{
    return cg_ct_streq(auth, want);
}

void cgt_srv_header(struct evhttp_request *req, const char *name, const char *value)
{
    if (evhttp_add_header(evhttp_request_get_output_headers(req), name, value) != 0)
        die("cannot add a reply header");
}

void cgt_srv_header_long(struct evhttp_request *req, const char *name, long value)
{
    char v[24];
    snprintf(v, sizeof v, "%ld", value);
    cgt_srv_header(req, name, v);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
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

void cgt_srv_send(struct evhttp_request *req, int status, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || evbuffer_add(b, body, strlen(body)) != 0)
        die("cannot buffer a reply");
    evhttp_send_reply(req, status, reason_of(status), b);
    evbuffer_free(b);
}

/* ---- test thread ---- */

char *cgt_srv_basic(const char *user, const char *password)
{
    size_t n = strlen(user) + strlen(password) + 2;
    char *plain = cg_malloc(n);
    snprintf(plain, n, "%s:%s", user, password);
    char *b64 = cg_malloc(4 * ((n + 2) / 3) + 1);
    cg_base64_encode((const unsigned char *)plain, strlen(plain), b64);
    n = strlen(b64) + 8;
    char *basic = cg_malloc(n);
    snprintf(basic, n, "Basic %s", b64);
    free(plain);
    free(b64);
    return basic;
}

uint64_t cgt_srv_deadline(int timeout_ms)
{
    return cg_mono_ms() + (uint64_t)timeout_ms;
}

int cgt_srv_nap_until(uint64_t deadline)
{
    if (cg_mono_ms() >= deadline)
        return -1;
    struct timespec ts = {.tv_nsec = 5000000};
    nanosleep(&ts, NULL);
    return 0;
}
