/*
 * fakeapi.c - the fake Twilio and Vapi APIs of fakeapi.h: evhttp on a
 * private event_base, run by a private thread; the test thread only touches
 * the shared state under the mutex and stops the loop through a pipe.
 */
#include "fmacros.h"

#include "fakeapi.h"

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
#include <jansson.h>
#include <openssl/evp.h>

#include "alloc.h"
#include "clock.h"
#include "form.h"
#include "harness.h"
#include "twilio_api.h"

#define TW_PREFIX "/2010-04-01/Accounts/"
#define SID_LEN   34

/* What the fake knows about one CallSid. */
struct fake_call {
    char sid[40];
    char *vapi_id; /* last Vapi call created for it */
    int creates;
    int updates;
    int update_order;
    char *last_twiml;
    char *last_status;
};

/* A POST /call answer held back by the delay knob (loop thread only). */
struct delayed {
    struct cgt_fake *f;
    struct evhttp_request *req;
    struct event *timer;
    int status;
    char *body;
    int retry_after;
    struct delayed *prev, *next;
};

struct cgt_fake {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    int stop_pipe[2];
    char url[64];
    char *account_sid;
    char *basic;  /* "Basic base64(sid:token)" */
    char *bearer; /* "Bearer key" */
    struct delayed *delayed;

    /* Everything below is behind mu. */
    enum cgt_vapi_create_mode vapi_mode;
    enum cgt_vapi_create_mode vapi_next_mode;
    int vapi_next_left;
    int vapi_delay_ms;
    enum cgt_vapi_get_mode vget_mode;
    enum cgt_tw_update_mode twu_mode;
    char *call_status;
    char *members;
    char *queues;
    int counts[CGT_EP_COUNT];
    char *last_body[CGT_EP_COUNT];
    char *last_auth[CGT_EP_COUNT];
    struct fake_call *calls;
    size_t ncalls, capcalls;
    unsigned next_vapi;
    int next_update_order;
};

static void lock(struct cgt_fake *f)
{
    pthread_mutex_lock(&f->mu);
}

static void unlock(struct cgt_fake *f)
{
    pthread_mutex_unlock(&f->mu);
}

static char *dup_or_null(const char *s)
{
    return s ? cg_strdup(s) : NULL;
}

static void set_str(char **slot, const char *s)
{
    free(*slot);
    *slot = dup_or_null(s);
}

/* The record of a CallSid, created on first use (under mu). */
static struct fake_call *call_rec(struct cgt_fake *f, const char *sid)
{
    for (size_t i = 0; i < f->ncalls; i++)
        if (strcmp(f->calls[i].sid, sid) == 0)
            return &f->calls[i];
    if (f->ncalls == f->capcalls) {
        f->capcalls = f->capcalls ? f->capcalls * 2 : 16;
        f->calls = cg_realloc(f->calls, f->capcalls * sizeof *f->calls);
    }
    struct fake_call *c = &f->calls[f->ncalls++];
    memset(c, 0, sizeof *c);
    snprintf(c->sid, sizeof c->sid, "%s", sid);
    return c;
}

static const struct fake_call *find_call(const struct cgt_fake *f, const char *sid)
{
    for (size_t i = 0; i < f->ncalls; i++)
        if (strcmp(f->calls[i].sid, sid) == 0)
            return &f->calls[i];
    return NULL;
}

/* Counts a request to ep and keeps its body and Authorization (under mu). */
static void record(struct cgt_fake *f, enum cgt_fake_ep ep, const char *body, const char *auth)
{
    f->counts[ep]++;
    set_str(&f->last_body[ep], body);
    set_str(&f->last_auth[ep], auth);
}

/* ---- replies ---- */

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

static void reply(struct evhttp_request *req, int status, const char *json, int retry_after)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        evhttp_add_header(h, "Retry-After", v);
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, json, strlen(json));
    evhttp_send_reply(req, status, reason_of(status), b);
    evbuffer_free(b);
}

static char *dumps(json_t *j)
{
    /* Runs on the fake's thread, where failing the test is not possible. */
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s ? s : cg_strdup("{}");
}

static void twilio_error(struct evhttp_request *req, int status, int code, const char *message)
{
    char more[96];
    snprintf(more, sizeof more, "https://www.twilio.com/docs/errors/%d", code);
    char *s = dumps(json_pack("{s:i, s:s, s:s, s:i}", "code", code, "message", message, "more_info",
                              more, "status", status));
    reply(req, status, s, 0);
    free(s);
}

/* ---- Vapi ---- */

char *cgt_fake_twiml_for(const char *vapi_id)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream "
             "url=\"wss://fake/%s/transport\"/></Connect></Response>",
             vapi_id);
    return cg_strdup(buf);
}

static void on_delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct delayed *d = arg;
    struct cgt_fake *f = d->f;
    if (d->prev)
        d->prev->next = d->next;
    else
        f->delayed = d->next;
    if (d->next)
        d->next->prev = d->prev;
    reply(d->req, d->status, d->body, d->retry_after);
    event_free(d->timer);
    free(d->body);
    free(d);
}

static void answer_later(struct cgt_fake *f, struct evhttp_request *req, int delay_ms, int status,
                         char *body, int retry_after)
{
    struct delayed *d = cg_calloc(1, sizeof *d);
    d->f = f;
    d->req = req;
    d->status = status;
    d->body = body;
    d->retry_after = retry_after;
    d->timer = evtimer_new(f->base, on_delayed, d);
    d->next = f->delayed;
    if (f->delayed)
        f->delayed->prev = d;
    f->delayed = d;
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
    evtimer_add(d->timer, &tv);
}

static void vapi_create(struct cgt_fake *f, struct evhttp_request *req, const char *body,
                        const char *auth)
{
    json_t *in = json_loads(body, 0, NULL);
    json_t *sidj = json_object_get(
        json_object_get(json_object_get(in, "assistantOverrides"), "metadata"), "twilioCallSid");
    const char *sid = json_is_string(sidj) ? json_string_value(sidj) : "";

    lock(f);
    record(f, CGT_EP_VAPI_CREATE, body, auth);
    struct fake_call *c = call_rec(f, sid);
    c->creates++;
    enum cgt_vapi_create_mode mode = f->vapi_mode;
    if (f->vapi_next_left > 0) {
        f->vapi_next_left--;
        mode = f->vapi_next_mode;
    }
    int delay = f->vapi_delay_ms;
    char id[64] = "";
    if (mode == CGT_VAPI_OK || mode == CGT_VAPI_BLOCKED) {
        unsigned n = ++f->next_vapi;
        snprintf(id, sizeof id, "%08x-fa4e-4c0d-9a11-%012x", n * 2654435761u, n);
        set_str(&c->vapi_id, id);
    }
    unlock(f);
    json_decref(in);

    int status = 201, retry_after = 0;
    char *out;
    if (mode == CGT_VAPI_OK || mode == CGT_VAPI_BLOCKED) {
        char *twiml = cgt_fake_twiml_for(id);
        int blocked = mode == CGT_VAPI_BLOCKED;
        out = dumps(json_pack("{s:s, s:s, s:s, s:{s:s}, s:{s:b, s:i, s:i}}", "id", id, "status",
                              "queued", "type", "inboundPhoneCall", "phoneCallProviderDetails",
                              "twiml", twiml, "subscriptionLimits", "concurrencyBlocked", blocked,
                              "concurrencyLimit", 10, "remainingConcurrentCalls", blocked ? 0 : 9));
        free(twiml);
    } else if (mode == CGT_VAPI_OVERLIMIT) {
        status = 400;
        out = cg_strdup("{\"message\":\"Over Concurrency Limit.\",\"error\":\"Bad Request\","
                        "\"statusCode\":400}");
    } else if (mode == CGT_VAPI_ERROR500) {
        status = 500;
        out = cg_strdup("{\"message\":\"Internal server error\",\"statusCode\":500}");
    } else if (mode == CGT_VAPI_RATE429) {
        status = 429;
        retry_after = 1;
        out =
            cg_strdup("{\"message\":\"ThrottlerException: Too Many Requests\",\"statusCode\":429}");
    } else {
        status = 400;
        out = cg_strdup("{\"message\":[\"assistantId must be a UUID\"],\"error\":\"Bad "
                        "Request\",\"statusCode\":400}");
    }
    if (delay > 0) {
        answer_later(f, req, delay, status, out, retry_after);
        return;
    }
    reply(req, status, out, retry_after);
    free(out);
}

static void vapi_get(struct cgt_fake *f, struct evhttp_request *req, const char *id,
                     const char *auth)
{
    lock(f);
    record(f, CGT_EP_VAPI_GET, NULL, auth);
    enum cgt_vapi_get_mode mode = f->vget_mode;
    unlock(f);
    if (mode == CGT_VGET_NOT_FOUND) {
        reply(req, 404, "{\"message\":\"Not Found\",\"statusCode\":404}", 0);
        return;
    }
    char *out;
    if (mode == CGT_VGET_ENDED)
        out = dumps(json_pack("{s:s, s:s, s:s}", "id", id, "status", "ended", "endedReason",
                              "customer-ended-call"));
    else
        out = dumps(json_pack("{s:s, s:s}", "id", id, "status", "in-progress"));
    reply(req, 200, out, 0);
    free(out);
}

/* ---- Twilio ---- */

static void twilio_update(struct cgt_fake *f, struct evhttp_request *req, const char *sid,
                          const char *body, const char *auth)
{
    struct cg_form form;
    cg_form_init(&form);
    if (cg_form_parse(&form, body, strlen(body), NULL) != 0) {
        cg_form_free(&form);
        twilio_error(req, 400, 21100, "Malformed form body");
        return;
    }
    const char *twiml = cg_form_get(&form, "Twiml");
    const char *st = cg_form_get(&form, "Status");
    lock(f);
    record(f, CGT_EP_TW_UPDATE, body, auth);
    struct fake_call *c = call_rec(f, sid);
    c->updates++;
    if (c->update_order == 0)
        c->update_order = ++f->next_update_order;
    set_str(&c->last_twiml, twiml);
    set_str(&c->last_status, st);
    enum cgt_tw_update_mode mode = f->twu_mode;
    unlock(f);

    if (mode == CGT_TWU_NOT_IN_PROGRESS) {
        twilio_error(req, 400, 21220, "Call is not in-progress. Cannot redirect.");
    } else if (mode == CGT_TWU_NOT_FOUND) {
        twilio_error(req, 404, 20404, "The requested resource was not found");
    } else if (mode == CGT_TWU_ERROR500) {
        twilio_error(req, 500, 20500, "Internal Server Error");
    } else {
        char *out =
            dumps(json_pack("{s:s, s:s, s:s, s:s}", "sid", sid, "account_sid", f->account_sid,
                            "status", st ? st : "in-progress", "direction", "inbound"));
        reply(req, 200, out, 0);
        free(out);
    }
    cg_form_free(&form);
}

static void twilio_fetch(struct cgt_fake *f, struct evhttp_request *req, const char *sid,
                         const char *auth)
{
    lock(f);
    record(f, CGT_EP_TW_FETCH, NULL, auth);
    char *status = cg_strdup(f->call_status);
    unlock(f);
    char *out = dumps(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "sid", sid, "account_sid",
                                f->account_sid, "status", status, "from", "+15550001111", "to",
                                "+15550002222", "direction", "inbound"));
    reply(req, 200, out, 0);
    free(out);
    free(status);
}

static void twilio_list(struct cgt_fake *f, struct evhttp_request *req, enum cgt_fake_ep ep,
                        const char *uri, const char *auth)
{
    lock(f);
    record(f, ep, NULL, auth);
    char *items = cg_strdup(ep == CGT_EP_TW_MEMBERS ? f->members : f->queues);
    unlock(f);
    size_t n = strlen(items) + strlen(uri) * 2 + 256;
    char *out = cg_malloc(n);
    snprintf(out, n,
             "{\"%s\":%s,\"uri\":\"%s\",\"first_page_uri\":\"%s\",\"next_page_uri\":null,"
             "\"previous_page_uri\":null,\"page\":0,\"page_size\":1000,\"start\":0,\"end\":0}",
             ep == CGT_EP_TW_MEMBERS ? "queue_members" : "queues", items, uri, uri);
    reply(req, 200, out, 0);
    free(out);
    free(items);
}

/* ---- routing ---- */

static int is_sid(const char *s, size_t len, const char *prefix)
{
    if (len != SID_LEN || strncmp(s, prefix, 2) != 0)
        return 0;
    char tmp[SID_LEN + 1];
    memcpy(tmp, s, SID_LEN);
    tmp[SID_LEN] = '\0';
    return cg_twilio_sid_valid(tmp, prefix);
}

static void refuse(struct cgt_fake *f, struct evhttp_request *req, const char *auth)
{
    lock(f);
    record(f, CGT_EP_UNAUTHORIZED, NULL, auth);
    unlock(f);
    reply(req, 401, "{\"message\":\"Unauthorized\",\"statusCode\":401}", 0);
}

static void unknown(struct cgt_fake *f, struct evhttp_request *req, const char *body,
                    const char *auth)
{
    lock(f);
    record(f, CGT_EP_UNKNOWN, body, auth);
    unlock(f);
    reply(req, 404, "{\"message\":\"no such endpoint\",\"statusCode\":404}", 0);
}

static void route_twilio(struct cgt_fake *f, struct evhttp_request *req, const char *rest,
                         enum evhttp_cmd_type cmd, const char *uri, const char *body,
                         const char *auth)
{
    size_t alen = strlen(f->account_sid);
    if (strncmp(rest, f->account_sid, alen) != 0 || rest[alen] != '/') {
        unknown(f, req, body, auth);
        return;
    }
    if (auth == NULL || strcmp(auth, f->basic) != 0) {
        refuse(f, req, auth);
        return;
    }
    const char *p = rest + alen + 1;
    size_t plen = strlen(p);
    if (strncmp(p, "Calls/", 6) == 0 && plen == 6 + SID_LEN + 5 &&
        strcmp(p + 6 + SID_LEN, ".json") == 0 && is_sid(p + 6, SID_LEN, "CA")) {
        char sid[SID_LEN + 1];
        memcpy(sid, p + 6, SID_LEN);
        sid[SID_LEN] = '\0';
        if (cmd == EVHTTP_REQ_POST)
            twilio_update(f, req, sid, body, auth);
        else if (cmd == EVHTTP_REQ_GET)
            twilio_fetch(f, req, sid, auth);
        else
            unknown(f, req, body, auth);
        return;
    }
    if (cmd == EVHTTP_REQ_GET && strncmp(p, "Queues/", 7) == 0 &&
        plen == 7 + SID_LEN + strlen("/Members.json") && is_sid(p + 7, SID_LEN, "QU") &&
        strcmp(p + 7 + SID_LEN, "/Members.json") == 0) {
        twilio_list(f, req, CGT_EP_TW_MEMBERS, uri, auth);
        return;
    }
    if (cmd == EVHTTP_REQ_GET && strcmp(p, "Queues.json") == 0) {
        twilio_list(f, req, CGT_EP_TW_QUEUES, uri, auth);
        return;
    }
    unknown(f, req, body, auth);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct cgt_fake *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = cg_malloc(len + 1);
    evbuffer_copyout(in, body, len);
    body[len] = '\0';

    if (path == NULL) {
        unknown(f, req, body, auth);
    } else if (strcmp(path, "/call") == 0 || strncmp(path, "/call/", 6) == 0) {
        int create = strcmp(path, "/call") == 0 && cmd == EVHTTP_REQ_POST;
        int get = path[5] == '/' && path[6] != '\0' && cmd == EVHTTP_REQ_GET;
        if (!create && !get)
            unknown(f, req, body, auth);
        else if (auth == NULL || strcmp(auth, f->bearer) != 0)
            refuse(f, req, auth);
        else if (create)
            vapi_create(f, req, body, auth);
        else
            vapi_get(f, req, path + 6, auth);
    } else if (strncmp(path, TW_PREFIX, strlen(TW_PREFIX)) == 0) {
        route_twilio(f, req, path + strlen(TW_PREFIX), cmd, uri, body, auth);
    } else {
        unknown(f, req, body, auth);
    }
    free(body);
}

/* ---- lifecycle ---- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *run(void *arg)
{
    struct cgt_fake *f = arg;
    event_base_dispatch(f->base);
    return NULL;
}

struct cgt_fake *cgt_fake_start(const struct cgt_fake_opts *o)
{
    struct cgt_fake *f = cg_calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->stop_pipe[0] = f->stop_pipe[1] = -1;
    f->account_sid = cg_strdup(o->account_sid);
    size_t n = strlen(o->account_sid) + strlen(o->auth_token) + 2;
    char *plain = cg_malloc(n);
    snprintf(plain, n, "%s:%s", o->account_sid, o->auth_token);
    char *b64 = cg_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)strlen(plain));
    n = strlen(b64) + 8;
    f->basic = cg_malloc(n);
    snprintf(f->basic, n, "Basic %s", b64);
    free(plain);
    free(b64);
    n = strlen(o->vapi_key) + 8;
    f->bearer = cg_malloc(n);
    snprintf(f->bearer, n, "Bearer %s", o->vapi_key);
    f->call_status = cg_strdup("in-progress");
    f->members = cg_strdup("[]");
    f->queues = cg_strdup("[]");

    f->base = event_base_new();
    f->http = f->base ? evhttp_new(f->base) : NULL;
    if (f->http == NULL)
        fail_msg("fakeapi: cannot create the event base");
    evhttp_set_gencb(f->http, on_request, f);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    if (bs == NULL)
        fail_msg("fakeapi: cannot bind: %s", strerror(errno));
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0)
        fail_msg("fakeapi: getsockname: %s", strerror(errno));
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    if (pipe(f->stop_pipe) != 0)
        fail_msg("fakeapi: pipe: %s", strerror(errno));
    f->stop_ev = event_new(f->base, f->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, f->base);
    event_add(f->stop_ev, NULL);
    if (pthread_create(&f->thread, NULL, run, f) != 0)
        fail_msg("fakeapi: cannot start its thread");
    f->started = 1;
    return f;
}

void cgt_fake_stop(struct cgt_fake *f)
{
    if (f == NULL)
        return;
    if (f->started) {
        char c = 'x';
        while (write(f->stop_pipe[1], &c, 1) < 0 && errno == EINTR)
            ;
        pthread_join(f->thread, NULL);
    }
    /* The loop is gone: this thread owns everything now. The requests still
     * delayed are freed with their connections by evhttp_free(). */
    while (f->delayed) {
        struct delayed *d = f->delayed;
        f->delayed = d->next;
        event_free(d->timer);
        free(d->body);
        free(d);
    }
    if (f->http)
        evhttp_free(f->http);
    if (f->stop_ev)
        event_free(f->stop_ev);
    if (f->base)
        event_base_free(f->base);
    for (int i = 0; i < 2; i++)
        if (f->stop_pipe[i] >= 0)
            close(f->stop_pipe[i]);
    for (int i = 0; i < CGT_EP_COUNT; i++) {
        free(f->last_body[i]);
        free(f->last_auth[i]);
    }
    for (size_t i = 0; i < f->ncalls; i++) {
        free(f->calls[i].vapi_id);
        free(f->calls[i].last_twiml);
        free(f->calls[i].last_status);
    }
    free(f->calls);
    free(f->call_status);
    free(f->members);
    free(f->queues);
    free(f->account_sid);
    free(f->basic);
    free(f->bearer);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

const char *cgt_fake_url(const struct cgt_fake *f)
{
    return f->url;
}

/* ---- knobs ---- */

void cgt_fake_set_vapi_create(struct cgt_fake *f, enum cgt_vapi_create_mode m)
{
    lock(f);
    f->vapi_mode = m;
    unlock(f);
}

void cgt_fake_set_vapi_create_next(struct cgt_fake *f, enum cgt_vapi_create_mode m, int n)
{
    lock(f);
    f->vapi_next_mode = m;
    f->vapi_next_left = n > 0 ? n : 0;
    unlock(f);
}

void cgt_fake_set_vapi_delay(struct cgt_fake *f, int ms)
{
    lock(f);
    f->vapi_delay_ms = ms;
    unlock(f);
}

void cgt_fake_set_vapi_get(struct cgt_fake *f, enum cgt_vapi_get_mode m)
{
    lock(f);
    f->vget_mode = m;
    unlock(f);
}

void cgt_fake_set_twilio_update(struct cgt_fake *f, enum cgt_tw_update_mode m)
{
    lock(f);
    f->twu_mode = m;
    unlock(f);
}

void cgt_fake_set_twilio_call_status(struct cgt_fake *f, const char *status)
{
    lock(f);
    set_str(&f->call_status, status);
    unlock(f);
}

void cgt_fake_set_queue_members(struct cgt_fake *f, const char *json_array)
{
    lock(f);
    set_str(&f->members, json_array);
    unlock(f);
}

void cgt_fake_set_queues(struct cgt_fake *f, const char *json_array)
{
    lock(f);
    set_str(&f->queues, json_array);
    unlock(f);
}

/* ---- records ---- */

int cgt_fake_count(struct cgt_fake *f, enum cgt_fake_ep ep)
{
    lock(f);
    int n = f->counts[ep];
    unlock(f);
    return n;
}

static void nap(void)
{
    struct timespec ts = {.tv_nsec = 5000000};
    nanosleep(&ts, NULL);
}

int cgt_fake_wait_count(struct cgt_fake *f, enum cgt_fake_ep ep, int atleast, int timeout_ms)
{
    uint64_t deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    while (cgt_fake_count(f, ep) < atleast) {
        if (cg_mono_ms() >= deadline)
            return -1;
        nap();
    }
    return 0;
}

char *cgt_fake_last_body(struct cgt_fake *f, enum cgt_fake_ep ep)
{
    lock(f);
    char *s = dup_or_null(f->last_body[ep]);
    unlock(f);
    return s;
}

char *cgt_fake_last_auth(struct cgt_fake *f, enum cgt_fake_ep ep)
{
    lock(f);
    char *s = dup_or_null(f->last_auth[ep]);
    unlock(f);
    return s;
}

char *cgt_fake_vapi_id(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    char *s = c ? dup_or_null(c->vapi_id) : NULL;
    unlock(f);
    return s;
}

int cgt_fake_create_count(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    int n = c ? c->creates : 0;
    unlock(f);
    return n;
}

int cgt_fake_update_count(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    int n = c ? c->updates : 0;
    unlock(f);
    return n;
}

char *cgt_fake_update_twiml(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    char *s = c ? dup_or_null(c->last_twiml) : NULL;
    unlock(f);
    return s;
}

char *cgt_fake_update_status(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    char *s = c ? dup_or_null(c->last_status) : NULL;
    unlock(f);
    return s;
}

int cgt_fake_update_order(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    int n = c ? c->update_order : 0;
    unlock(f);
    return n;
}

int cgt_fake_wait_update(struct cgt_fake *f, const char *call_sid, int atleast, int timeout_ms)
{
    uint64_t deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    while (cgt_fake_update_count(f, call_sid) < atleast) {
        if (cg_mono_ms() >= deadline)
            return -1;
        nap();
    }
    return 0;
}
