#include "base/fmacros.h"

#include "net/httpc.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#ifndef CG_VERSION
#define CG_VERSION "0"
#endif

/* Idle easy handles kept for reuse; beyond this they are destroyed. */
#define IDLE_EASY_MAX 16

/* One socket curl asked us to watch, with its libevent event. */
struct hsock {
    struct cg_httpc *c;
    struct event *ev;
    curl_socket_t fd;
    struct cg_list link; /* in cg_httpc.socks */
};

/* One request between cg_httpc_send() and its callback. */
struct hreq {
    struct cg_httpc *c;
    CURL *easy;
    struct curl_slist *headers;
    cg_httpc_cb cb;
    void *arg;
    struct cg_buf body;
    int too_large;
    uint64_t start_us;
    long timeout_ms;
    int queued;           /* waiting in cg_httpc.queue, not yet in the multi */
    struct cg_list qlink; /* in cg_httpc.queue while queued */
    char method[16];
    char *url_log; /* the URL without its query, for logs */
    /* Headers of the latest response seen (reset at each status line). */
    char *content_type;
    double retry_after_s;
    long rate_limit_limit;
    long rate_limit_remaining;
    char *rate_limit_config;
    char *capture_name; /* the request's capture_header, or NULL */
    char *captured;
    char errbuf[CURL_ERROR_SIZE];
    struct cg_list link; /* in cg_httpc.reqs */
};

struct idle_easy {
    CURL *easy;
    struct idle_easy *next;
};

struct cg_httpc {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct cg_list reqs; /* pending requests (struct hreq), newest first */
    size_t nreqs;
    struct cg_list queue; /* requests waiting for a transfer slot, oldest first */
    size_t nactive;       /* requests in the multi */
    long max_active;      /* 0: no bound */
    struct event *qtimer; /* expires queued requests past their deadline */
    struct cg_list socks; /* watched sockets (struct hsock) */
    struct idle_easy *idle;
    size_t nidle;
    size_t default_max_response;
    long default_timeout_ms;
    char *user_agent;
    int dispatching; /* inside check_done(): destruction must wait */
    int closing;     /* cg_httpc_free() has been called */
};

static int curl_ready;

/* ---- small helpers ---- */

static void req_link(struct cg_httpc *c, struct hreq *r)
{
    cg_list_push_front(&c->reqs, &r->link);
    c->nreqs++;
}

static void req_unlink(struct cg_httpc *c, struct hreq *r)
{
    cg_list_remove(&r->link);
    c->nreqs--;
}

static void req_reset_headers(struct hreq *r)
{
    free(r->content_type);
    r->content_type = NULL;
    free(r->rate_limit_config);
    r->rate_limit_config = NULL;
    free(r->captured);
    r->captured = NULL;
    r->retry_after_s = -1;
    r->rate_limit_limit = -1;
    r->rate_limit_remaining = -1;
}

static void req_free(struct hreq *r)
{
    req_reset_headers(r);
    curl_slist_free_all(r->headers);
    cg_buf_free(&r->body);
    free(r->url_log);
    free(r->capture_name);
    free(r);
}

static CURL *easy_get(struct cg_httpc *c)
{
    struct idle_easy *ie = c->idle;
    if (ie == NULL)
        return curl_easy_init();
    c->idle = ie->next;
    c->nidle--;
    CURL *e = ie->easy;
    free(ie);
    return e;
}

/* Returns a handle that is no longer in the multi to the idle list. Its
 * connection stays in the multi's pool either way; keeping the handle only
 * saves the allocation and setup of a new one. */
static void easy_put(struct cg_httpc *c, CURL *e)
{
    if (c->closing || c->nidle >= IDLE_EASY_MAX) {
        curl_easy_cleanup(e);
        return;
    }
    curl_easy_reset(e);
    struct idle_easy *ie = cg_malloc(sizeof *ie);
    ie->easy = e;
    ie->next = c->idle;
    c->idle = ie;
    c->nidle++;
}

/* Parses a non-negative decimal integer that spans all of s; -1 otherwise. */
static long parse_count(const char *s)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    return v;
}

/* Retry-After is either delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
static double parse_retry_after(const char *s)
{
    if (isdigit((unsigned char)*s)) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0)
            return -1;
        return v;
    }
    time_t when = curl_getdate(s, NULL);
    if (when == (time_t)-1)
        return -1;
    double delta = difftime(when, time(NULL));
    return delta > 0 ? delta : 0;
}

/* Copies the part of [p, p+n) that lies between surrounding whitespace. */
static char *trimmed_dup(const char *p, size_t n)
{
    while (n > 0 && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    return cg_strndup(p, n);
}

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* ---- curl callbacks ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct hreq *r = ud;
    size_t n = size * nmemb;
    if (cg_buf_append(&r->body, p, n) != 0) {
        /* Returning a short count makes curl abort with CURLE_WRITE_ERROR. */
        r->too_large = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *p, size_t size, size_t nitems, void *ud)
{
    struct hreq *r = ud;
    size_t n = size * nitems;
    /* A status line starts a new response (after 1xx or a proxy's CONNECT
     * reply), and only the last response's headers describe the result. */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        req_reset_headers(r);
        cg_buf_reset(&r->body);
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (colon == NULL)
        return n;
    size_t name_len = (size_t)(colon - p);
    const char *val = colon + 1;
    size_t val_len = n - name_len - 1;

    if (r->capture_name != NULL && name_is(p, name_len, r->capture_name)) {
        free(r->captured);
        r->captured = trimmed_dup(val, val_len);
    } else if (name_is(p, name_len, "Content-Type")) {
        free(r->content_type);
        r->content_type = trimmed_dup(val, val_len);
    } else if (name_is(p, name_len, "X-Rate-Limit-Config")) {
        free(r->rate_limit_config);
        r->rate_limit_config = trimmed_dup(val, val_len);
    } else if (name_is(p, name_len, "Retry-After") || name_is(p, name_len, "X-Rate-Limit-Limit") ||
               name_is(p, name_len, "X-Rate-Limit-Remaining")) {
        char *v = trimmed_dup(val, val_len);
        if (name_is(p, name_len, "Retry-After"))
            r->retry_after_s = parse_retry_after(v);
        else if (name_is(p, name_len, "X-Rate-Limit-Limit"))
            r->rate_limit_limit = parse_count(v);
        else
            r->rate_limit_remaining = parse_count(v);
        free(v);
    }
    return n;
}

static void check_done(struct cg_httpc *c);

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct hsock *s = arg;
    struct cg_httpc *c = s->c;
    int action = 0;
    if (what & EV_READ)
        action |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    int running;
    /* s may be freed by the socket callback inside this call. */
    CURLMcode mc = curl_multi_socket_action(c->multi, fd, action, &running);
    if (mc != CURLM_OK)
        cg_log_error("httpc socket action failed", "error=%s", curl_multi_strerror(mc));
    check_done(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_httpc *c = arg;
    int running;
    CURLMcode mc = curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (mc != CURLM_OK)
        cg_log_error("httpc timeout action failed", "error=%s", curl_multi_strerror(mc));
    check_done(c);
}

static void sock_free(struct hsock *s)
{
    cg_list_remove(&s->link);
    event_free(s->ev);
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: keeps one persistent event per socket in step
 * with what curl wants to wait for. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct cg_httpc *c = userp;
    struct hsock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL)
            sock_free(s);
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;

    if (s == NULL) {
        s = cg_calloc(1, sizeof *s);
        s->c = c;
        s->fd = fd;
        s->ev = event_new(c->base, fd, kind, on_sock_event, s);
        if (s->ev == NULL) {
            free(s);
            cg_log_error("httpc event_new failed", "");
            return -1;
        }
        if (curl_multi_assign(c->multi, fd, s) != CURLM_OK) {
            event_free(s->ev);
            free(s);
            return -1;
        }
        cg_list_push_front(&c->socks, &s->link);
    } else {
        /* event_assign() needs a non-pending event. */
        if (event_del(s->ev) != 0 ||
            event_assign(s->ev, c->base, fd, kind, on_sock_event, s) != 0) {
            cg_log_error("httpc event update failed", "");
            return -1;
        }
    }
    if (event_add(s->ev, NULL) != 0) {
        cg_log_error("httpc event_add failed", "");
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl may not be called back from here, so even a
 * zero timeout goes through the loop (which also keeps completions out of
 * cg_httpc_send()). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct cg_httpc *c = userp;
    if (timeout_ms < 0) {
        if (event_del(c->timer) != 0)
            return -1;
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (evtimer_add(c->timer, &tv) != 0) {
        cg_log_error("httpc timer add failed", "");
        return -1;
    }
    return 0;
}

/* ---- completion ---- */

static void deliver(struct hreq *r, const char *error, long status)
{
    struct cg_httpc_result res = {
        .error = error,
        .status = error ? 0 : status,
        .body = "",
        .retry_after_s = -1,
        .rate_limit_limit = -1,
        .rate_limit_remaining = -1,
        .duration_us = cg_mono_us() - r->start_us,
    };
    if (error == NULL) {
        res.body = cg_buf_str(&r->body);
        res.body_len = r->body.len;
        res.content_type = r->content_type;
        res.retry_after_s = r->retry_after_s;
        res.rate_limit_limit = r->rate_limit_limit;
        res.rate_limit_remaining = r->rate_limit_remaining;
        res.rate_limit_config = r->rate_limit_config;
        res.captured = r->captured;
        cg_log_debug("http response", "method=%s url=%s status=%ld bytes=%zu us=%llu", r->method,
                     r->url_log, status, res.body_len, (unsigned long long)res.duration_us);
    } else {
        cg_log_debug("http request failed", "method=%s url=%s error=%s us=%llu", r->method,
                     r->url_log, error, (unsigned long long)res.duration_us);
    }
    r->cb(&res, r->arg);
}

/* Hands a request to libcurl; -1 when it refused (nothing changed). */
static int start_transfer(struct cg_httpc *c, struct hreq *r)
{
    CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc != CURLM_OK) {
        cg_log_error("httpc add handle failed", "error=%s", curl_multi_strerror(mc));
        return -1;
    }
    c->nactive++;
    return 0;
}

/* A queued request waits for a transfer to end; its deadline is checked
 * this often meanwhile. */
#define QUEUE_CHECK_MS 100

static void arm_queue_check(struct cg_httpc *c)
{
    if (cg_list_first(&c->queue) == NULL || evtimer_pending(c->qtimer, NULL))
        return;
    struct timeval tv = {.tv_sec = 0, .tv_usec = QUEUE_CHECK_MS * 1000};
    if (evtimer_add(c->qtimer, &tv) != 0)
        cg_log_error("httpc queue timer add failed", "");
}

static void destroy(struct cg_httpc *c);

/* Answers the queued requests whose deadline passed with "timeout". They
 * leave the client's lists first, so a callback that sends or frees the
 * client cannot touch them. */
static void on_queue_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_httpc *c = arg;
    struct cg_list expired;
    cg_list_init(&expired);
    uint64_t now = cg_mono_us();
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &c->queue) {
        struct hreq *r = cg_list_entry(it, struct hreq, qlink);
        if ((now - r->start_us) / 1000 < (uint64_t)r->timeout_ms)
            continue;
        cg_list_remove(&r->qlink);
        r->queued = 0;
        req_unlink(c, r);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        cg_list_push_back(&expired, &r->qlink);
    }
    c->dispatching++;
    while ((it = cg_list_first(&expired)) != NULL) {
        struct hreq *r = cg_list_entry(it, struct hreq, qlink);
        cg_list_remove(&r->qlink);
        deliver(r, "timeout", 0);
        req_free(r);
    }
    c->dispatching--;
    if (c->closing) {
        if (c->dispatching == 0)
            destroy(c);
        return;
    }
    arm_queue_check(c);
}

/* Starts queued requests while there is room. A request whose deadline
 * passed in the queue, or that libcurl refuses, is answered with an error
 * (from the loop: this runs inside check_done()). */
static void start_queued(struct cg_httpc *c)
{
    struct cg_list *it;
    while (!c->closing && (c->max_active <= 0 || (long)c->nactive < c->max_active) &&
           (it = cg_list_first(&c->queue)) != NULL) {
        struct hreq *r = cg_list_entry(it, struct hreq, qlink);
        cg_list_remove(&r->qlink);
        r->queued = 0;
        uint64_t waited_ms = (cg_mono_us() - r->start_us) / 1000;
        const char *error = NULL;
        if ((long)waited_ms >= r->timeout_ms)
            error = "timeout";
        else if (curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, r->timeout_ms - (long)waited_ms) !=
                     CURLE_OK ||
                 start_transfer(c, r) != 0)
            error = "cannot start the request";
        if (error == NULL)
            continue;
        req_unlink(c, r);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        deliver(r, error, 0);
        req_free(r);
    }
}

/* Takes a finished transfer out of the multi and calls back. */
static void finish(struct cg_httpc *c, struct hreq *r, CURLcode code)
{
    long status = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    CURLMcode mc = curl_multi_remove_handle(c->multi, r->easy);
    if (mc != CURLM_OK)
        cg_log_error("httpc remove handle failed", "error=%s", curl_multi_strerror(mc));
    req_unlink(c, r);
    c->nactive--;
    easy_put(c, r->easy);
    r->easy = NULL;
    start_queued(c);

    const char *error = NULL;
    if (r->too_large)
        error = "response too large";
    else if (code == CURLE_OPERATION_TIMEDOUT)
        error = "timeout";
    else if (code == CURLE_OK && status == 0)
        error = "no response";
    else if (code != CURLE_OK)
        error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
    deliver(r, error, status);
    req_free(r);
}

/* Delivers every finished transfer. Callbacks may send new requests or free
 * the client; the latter only marks it, and it is destroyed on the way out. */
static void check_done(struct cg_httpc *c)
{
    c->dispatching++;
    CURLMsg *msg;
    int left;
    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode code = msg->data.result;
        char *priv = NULL;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
            priv == NULL) {
            cg_log_error("httpc finished transfer without request", "");
            continue;
        }
        finish(c, (struct hreq *)priv, code);
    }
    c->dispatching--;
    if (c->closing && c->dispatching == 0)
        destroy(c);
}

/* ---- public API ---- */

struct cg_httpc *cg_httpc_new(struct event_base *base, const struct cg_httpc_opts *opts)
{
    if (base == NULL)
        return NULL;
    if (!curl_ready) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            cg_log_error("curl_global_init failed", "error=%s", curl_easy_strerror(rc));
            return NULL;
        }
        curl_ready = 1;
    }
    struct cg_httpc *c = cg_calloc(1, sizeof *c);
    c->base = base;
    cg_list_init(&c->reqs);
    cg_list_init(&c->queue);
    cg_list_init(&c->socks);
    c->default_max_response = CG_HTTPC_DEFAULT_MAX_RESPONSE;
    c->default_timeout_ms = CG_HTTPC_DEFAULT_TIMEOUT_MS;
    long max_host = 0, max_idle = 0;
    const char *ua = NULL;
    if (opts != NULL) {
        if (opts->default_max_response_bytes > 0)
            c->default_max_response = opts->default_max_response_bytes;
        if (opts->default_timeout_ms > 0)
            c->default_timeout_ms = opts->default_timeout_ms;
        max_host = opts->max_connections_per_host;
        max_idle = opts->max_idle_connections;
        c->max_active = opts->max_active;
        ua = opts->user_agent;
    }
    c->user_agent = cg_strdup(ua ? ua : "callgate/" CG_VERSION);

    c->timer = evtimer_new(base, on_timer, c);
    c->qtimer = evtimer_new(base, on_queue_timer, c);
    c->multi = curl_multi_init();
    if (c->timer == NULL || c->qtimer == NULL || c->multi == NULL)
        goto fail;
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
        goto fail;
    if (max_host > 0 &&
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host) != CURLM_OK)
        goto fail;
    if (max_idle > 0 && curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, max_idle) != CURLM_OK)
        goto fail;
    return c;

fail:
    cg_log_error("httpc init failed", "");
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->timer)
        event_free(c->timer);
    if (c->qtimer)
        event_free(c->qtimer);
    free(c->user_agent);
    free(c);
    return NULL;
}

/* Copies the URL up to its query or fragment, which may carry tokens. */
static char *url_for_log(const char *url)
{
    return cg_strndup(url, strcspn(url, "?#"));
}

static int add_header(struct hreq *r, const char *line)
{
    struct curl_slist *l = curl_slist_append(r->headers, line);
    if (l == NULL)
        return -1;
    r->headers = l;
    return 0;
}

/* Adds the header line prefix + value. */
static int add_header2(struct hreq *r, const char *prefix, const char *value)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    int rc = cg_buf_printf(&b, "%s%s", prefix, value);
    if (rc == 0)
        rc = add_header(r, cg_buf_str(&b));
    cg_buf_free(&b);
    return rc;
}

/* Fills the easy handle from the request; -1 on any failure. */
static int setup_easy(struct cg_httpc *c, struct hreq *r, const struct cg_httpc_request *req)
{
    CURL *e = r->easy;
    const char *method = req->method ? req->method : "GET";
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : c->default_timeout_ms;

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK)                                             \
            return -1;                                                                             \
    } while (0)

    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PRIVATE, (void *)r);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)r);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)r);
    SETOPT(CURLOPT_TIMEOUT_MS, timeout);
    SETOPT(CURLOPT_USERAGENT, c->user_agent);

    int has_body = req->body != NULL;
    if (strcmp(method, "GET") == 0 && !has_body) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        /* POST and PUT always carry a body (maybe empty) so that a
         * Content-Length goes out; never let curl read one from stdin. */
        if (has_body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_off_t len = has_body ? (curl_off_t)req->body_len : 0;
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, len);
            SETOPT(CURLOPT_COPYPOSTFIELDS, has_body ? req->body : "");
        }
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }

    if (req->basic_user != NULL && req->basic_pass != NULL) {
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(CURLOPT_USERNAME, req->basic_user);
        SETOPT(CURLOPT_PASSWORD, req->basic_pass);
    }

    /* An empty "Expect:" stops curl from waiting for 100 Continue on larger
     * bodies, which costs a round trip (or a full second) per request. */
    if (add_header(r, "Expect:") != 0)
        return -1;
    if (req->content_type != NULL && add_header2(r, "Content-Type: ", req->content_type) != 0)
        return -1;
    if (req->bearer != NULL && add_header2(r, "Authorization: Bearer ", req->bearer) != 0)
        return -1;
    for (const char *const *h = req->headers; h != NULL && *h != NULL; h++) {
        if (add_header(r, *h) != 0)
            return -1;
    }
    SETOPT(CURLOPT_HTTPHEADER, r->headers);
#undef SETOPT
    return 0;
}

int cg_httpc_send(struct cg_httpc *c, const struct cg_httpc_request *req, cg_httpc_cb cb, void *arg)
{
    if (c == NULL || req == NULL || req->url == NULL || cb == NULL || c->closing)
        return -1;
    const char *method = req->method ? req->method : "GET";
    struct hreq *r = cg_calloc(1, sizeof *r);
    if (strlen(method) >= sizeof r->method) {
        free(r);
        return -1;
    }
    memcpy(r->method, method, strlen(method) + 1);
    r->c = c;
    r->cb = cb;
    r->arg = arg;
    r->url_log = url_for_log(req->url);
    if (req->capture_header != NULL)
        r->capture_name = cg_strdup(req->capture_header);
    r->start_us = cg_mono_us();
    r->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : c->default_timeout_ms;
    r->retry_after_s = -1;
    r->rate_limit_limit = -1;
    r->rate_limit_remaining = -1;
    cg_buf_init(&r->body,
                req->max_response_bytes > 0 ? req->max_response_bytes : c->default_max_response);
    r->easy = easy_get(c);
    if (r->easy == NULL) {
        cg_log_error("httpc curl_easy_init failed", "");
        req_free(r);
        return -1;
    }
    if (setup_easy(c, r, req) != 0) {
        cg_log_error("httpc request setup failed", "method=%s url=%s", r->method, r->url_log);
        curl_easy_cleanup(r->easy);
        req_free(r);
        return -1;
    }
    if (c->max_active > 0 && (long)c->nactive >= c->max_active) {
        /* Started by a completion, from the loop. */
        r->queued = 1;
        cg_list_push_back(&c->queue, &r->qlink);
        req_link(c, r);
        arm_queue_check(c);
        return 0;
    }
    /* Adding only arms the timer (at zero); the transfer starts, and may
     * finish, from the loop, never in here. */
    if (start_transfer(c, r) != 0) {
        curl_easy_cleanup(r->easy);
        req_free(r);
        return -1;
    }
    req_link(c, r);
    return 0;
}

size_t cg_httpc_inflight(const struct cg_httpc *c)
{
    return c ? c->nreqs : 0;
}

static void destroy(struct cg_httpc *c)
{
    /* Closing pooled connections may report sockets for removal. */
    CURLMcode mc = curl_multi_cleanup(c->multi);
    if (mc != CURLM_OK)
        cg_log_error("httpc multi cleanup failed", "error=%s", curl_multi_strerror(mc));
    struct cg_list *it;
    while ((it = cg_list_first(&c->socks)) != NULL)
        sock_free(cg_list_entry(it, struct hsock, link));
    while (c->idle != NULL) {
        struct idle_easy *ie = c->idle;
        c->idle = ie->next;
        curl_easy_cleanup(ie->easy);
        free(ie);
    }
    event_free(c->timer);
    event_free(c->qtimer);
    free(c->user_agent);
    free(c);
}

void cg_httpc_free(struct cg_httpc *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    c->dispatching++;
    struct cg_list *it;
    while ((it = cg_list_first(&c->reqs)) != NULL) {
        struct hreq *r = cg_list_entry(it, struct hreq, link);
        if (r->queued) {
            cg_list_remove(&r->qlink);
            r->queued = 0;
        } else {
            CURLMcode mc = curl_multi_remove_handle(c->multi, r->easy);
            if (mc != CURLM_OK)
                cg_log_error("httpc remove handle failed", "error=%s", curl_multi_strerror(mc));
            c->nactive--;
        }
        req_unlink(c, r);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        deliver(r, "cancelled", 0);
        req_free(r);
    }
    c->dispatching--;
    /* Called from one of our own callbacks: check_done() destroys the client
     * once that callback has returned. */
    if (c->dispatching == 0)
        destroy(c);
}
