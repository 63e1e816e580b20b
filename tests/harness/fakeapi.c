/*
 * fakeapi.c - the fake Twilio and Vapi APIs of fakeapi.h, served by the
 * fakesrv.h scaffolding; the test thread only touches the shared state
 * under the mutex.
 */
#include "base/fmacros.h"

#include "fakeapi.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "base/alloc.h"
#include "fakesrv.h"
#include "base/form.h"
#include "harness.h"
#include "twilio/api.h"

#define TW_PREFIX "/2010-04-01/Accounts/"
#define SID_LEN   34

/* What the fake knows about one CallSid. */
struct fake_call {
    char sid[40];
    char *vapi_id; /* last Vapi call created for it */
    int creates;
    int updates;
    char *last_twiml;
    char *last_status;
};

struct cgt_fake {
    struct cgt_srv *srv;
    pthread_mutex_t mu;
    char *account_sid;
    char *basic;  /* "Basic base64(sid:token)" */
    char *bearer; /* "Bearer key" */

    /* Everything below is behind mu. */
    enum cgt_vapi_create_mode vapi_mode;
    enum cgt_vapi_create_mode vapi_next_mode;
    int vapi_next_left;
    int vapi_delay_ms;
    enum cgt_vapi_get_mode vget_mode;
    char *vget_status; /* CGT_VGET_STATUS: the status GET /call/{id} reports */
    enum cgt_tw_update_mode twu_mode;
    char *call_status;
    char *members;
    char *vapi_list; /* GET /call's answer */
    char *queues;
    int counts[CGT_EP_COUNT];
    char *last_body[CGT_EP_COUNT];
    char *last_auth[CGT_EP_COUNT];
    struct fake_call *calls;
    size_t ncalls, capcalls;
    unsigned next_vapi;
};

static void lock(struct cgt_fake *f)
{
    pthread_mutex_lock(&f->mu);
}

static void unlock(struct cgt_fake *f)
{
    pthread_mutex_unlock(&f->mu);
}

static void set_str(char **slot, const char *s)
{
    free(*slot);
    *slot = cgt_strdup_or_null(s);
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

static void reply(struct evhttp_request *req, int status, const char *json, int retry_after)
{
    cgt_srv_header(req, "Content-Type", "application/json");
    if (retry_after > 0)
        cgt_srv_header_long(req, "Retry-After", retry_after);
    cgt_srv_send(req, status, json);
}

/* reply() in the shape of cgt_srv_send_fn, for answers held back. */
static void reply_held(struct evhttp_request *req, int status, const char *json, int retry_after,
                       void *arg)
{
    (void)arg;
    reply(req, status, json, retry_after);
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
    if (mode == CGT_VAPI_OK || mode == CGT_VAPI_BLOCKED || mode == CGT_VAPI_LONG_TWIML) {
        unsigned n = ++f->next_vapi;
        snprintf(id, sizeof id, "%08x-fa4e-4c0d-9a11-%012x", n * 2654435761u, n);
        set_str(&c->vapi_id, id);
    }
    unlock(f);
    json_decref(in);

    int status = 201, retry_after = 0;
    char *out;
    if (mode == CGT_VAPI_OK || mode == CGT_VAPI_BLOCKED || mode == CGT_VAPI_LONG_TWIML) {
        char *twiml = cgt_fake_twiml_for(id);
        if (mode == CGT_VAPI_LONG_TWIML) {
            /* The stream, then a greeting that takes it past 4,000. */
            size_t n = strlen(twiml);
            char *longer = cg_malloc(n + 4200);
            memcpy(longer, twiml, n + 1);
            char *end = strstr(longer, "</Response>");
            if (end == NULL)
                end = longer + n;
            size_t k = (size_t)(end - longer);
            k += (size_t)sprintf(longer + k, "<Say>");
            memset(longer + k, 'a', 4100);
            k += 4100;
            strcpy(longer + k, "</Say></Response>");
            free(twiml);
            twiml = longer;
        }
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
    cgt_srv_answer(f->srv, req, delay, status, out, retry_after, reply_held, NULL);
}

static void vapi_get(struct cgt_fake *f, struct evhttp_request *req, const char *id,
                     const char *auth)
{
    lock(f);
    record(f, CGT_EP_VAPI_GET, NULL, auth);
    enum cgt_vapi_get_mode mode = f->vget_mode;
    char *status = mode == CGT_VGET_STATUS && f->vget_status ? cg_strdup(f->vget_status) : NULL;
    unlock(f);
    if (status != NULL) {
        char *body = dumps(json_pack("{s:s, s:s}", "id", id, "status", status));
        reply(req, 200, body, 0);
        free(body);
        free(status);
        return;
    }
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

static void vapi_list(struct cgt_fake *f, struct evhttp_request *req, const char *auth)
{
    lock(f);
    record(f, CGT_EP_VAPI_LIST, NULL, auth);
    char *out = cg_strdup(f->vapi_list);
    unlock(f);
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
    set_str(&c->last_twiml, twiml);
    set_str(&c->last_status, st);
    enum cgt_tw_update_mode mode = f->twu_mode;
    unlock(f);

    if (mode == CGT_TWU_REFUSE_DIAL && twiml && strstr(twiml, "<Dial")) {
        twilio_error(req, 400, 13223, "Dial: Invalid phone number format");
    } else if (mode == CGT_TWU_NOT_IN_PROGRESS) {
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

/* An outbound call placed (a callback): 201 with a fresh CallSid. */
static void twilio_create(struct cgt_fake *f, struct evhttp_request *req, const char *body,
                          const char *auth)
{
    lock(f);
    record(f, CGT_EP_TW_CREATE, body, auth);
    int n = f->counts[CGT_EP_TW_CREATE];
    unlock(f);
    char out[256];
    snprintf(out, sizeof out,
             "{\"sid\":\"CA%032x\",\"status\":\"queued\",\"direction\":\"outbound-api\"}",
             (unsigned)n);
    reply(req, 201, out, 0);
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
    if (!cgt_srv_auth_ok(auth, f->basic)) {
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
    if (cmd == EVHTTP_REQ_POST && strcmp(p, "Calls.json") == 0) {
        twilio_create(f, req, body, auth);
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
    struct cgt_srv_req r;
    cgt_srv_parse(req, &r);
    const char *path = r.path, *auth = r.auth;
    char *body = cgt_srv_body(req);

    if (path == NULL) {
        unknown(f, req, body, auth);
    } else if (strcmp(path, "/call") == 0 || strncmp(path, "/call/", 6) == 0) {
        int create = strcmp(path, "/call") == 0 && r.cmd == EVHTTP_REQ_POST;
        int get = path[5] == '/' && path[6] != '\0' && r.cmd == EVHTTP_REQ_GET;
        int list = path[5] == '\0' && r.cmd == EVHTTP_REQ_GET;
        if (!create && !get && !list)
            unknown(f, req, body, auth);
        else if (!cgt_srv_auth_ok(auth, f->bearer))
            refuse(f, req, auth);
        else if (create)
            vapi_create(f, req, body, auth);
        else if (list)
            vapi_list(f, req, auth);
        else
            vapi_get(f, req, path + 6, auth);
    } else if (strncmp(path, TW_PREFIX, strlen(TW_PREFIX)) == 0) {
        route_twilio(f, req, path + strlen(TW_PREFIX), r.cmd, r.uri, body, auth);
    } else {
        unknown(f, req, body, auth);
    }
    free(body);
}

/* ---- lifecycle ---- */

struct cgt_fake *cgt_fake_start(const struct cgt_fake_opts *o)
{
    struct cgt_fake *f = cg_calloc(1, sizeof *f);
    if (pthread_mutex_init(&f->mu, NULL) != 0)
        fail_msg("fakeapi: cannot create its mutex");
    f->account_sid = cg_strdup(o->account_sid);
    f->basic = cgt_srv_basic(o->account_sid, o->auth_token);
    size_t n = strlen(o->vapi_key) + 8;
    f->bearer = cg_malloc(n);
    snprintf(f->bearer, n, "Bearer %s", o->vapi_key);
    f->call_status = cg_strdup("in-progress");
    f->members = cg_strdup("[]");
    f->vapi_list = cg_strdup("[]");
    f->queues = cg_strdup("[]");
    /* f->srv is set before the thread starts, where the handler reads it. */
    f->srv = cgt_srv_new("fakeapi");
    cgt_srv_run(f->srv, on_request, f, 0);
    return f;
}

void cgt_fake_stop(struct cgt_fake *f)
{
    if (f == NULL)
        return;
    /* First, so that no handler runs while the state below is freed. */
    cgt_srv_stop(f->srv);
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
    free(f->vget_status);
    free(f->members);
    free(f->vapi_list);
    free(f->queues);
    free(f->account_sid);
    free(f->basic);
    free(f->bearer);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

const char *cgt_fake_url(const struct cgt_fake *f)
{
    return cgt_srv_url(f->srv);
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

void cgt_fake_set_vapi_get_status(struct cgt_fake *f, const char *status)
{
    lock(f);
    free(f->vget_status);
    f->vget_status = cg_strdup(status);
    f->vget_mode = CGT_VGET_STATUS;
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

void cgt_fake_set_vapi_list(struct cgt_fake *f, const char *json_array)
{
    lock(f);
    set_str(&f->vapi_list, json_array);
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

int cgt_fake_wait_count(struct cgt_fake *f, enum cgt_fake_ep ep, int atleast, int timeout_ms)
{
    uint64_t deadline = cgt_srv_deadline(timeout_ms);
    while (cgt_fake_count(f, ep) < atleast)
        if (cgt_srv_nap_until(deadline) != 0)
            return -1;
    return 0;
}

char *cgt_fake_last_body(struct cgt_fake *f, enum cgt_fake_ep ep)
{
    lock(f);
    char *s = cgt_strdup_or_null(f->last_body[ep]);
    unlock(f);
    return s;
}

char *cgt_fake_last_auth(struct cgt_fake *f, enum cgt_fake_ep ep)
{
    lock(f);
    char *s = cgt_strdup_or_null(f->last_auth[ep]);
    unlock(f);
    return s;
}

char *cgt_fake_vapi_id(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    char *s = c ? cgt_strdup_or_null(c->vapi_id) : NULL;
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
    char *s = c ? cgt_strdup_or_null(c->last_twiml) : NULL;
    unlock(f);
    return s;
}

char *cgt_fake_update_status(struct cgt_fake *f, const char *call_sid)
{
    lock(f);
    const struct fake_call *c = find_call(f, call_sid);
    char *s = c ? cgt_strdup_or_null(c->last_status) : NULL;
    unlock(f);
    return s;
}

int cgt_fake_wait_update(struct cgt_fake *f, const char *call_sid, int atleast, int timeout_ms)
{
    uint64_t deadline = cgt_srv_deadline(timeout_ms);
    while (cgt_fake_update_count(f, call_sid) < atleast)
        if (cgt_srv_nap_until(deadline) != 0)
            return -1;
    return 0;
}
