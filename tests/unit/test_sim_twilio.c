/*
 * Unit tests for the simulated Twilio (sim/twilio_voice.c, twilio_rest.c),
 * driven end to end on one event loop: a small fake gate (a cg_httpd on
 * 127.0.0.1) answers the voice webhooks with scripted TwiML and records
 * every request; the test plays the gate's REST side with its own client.
 * The real hooks, report, rng, scenario and Vapi modules are used, so the
 * webhooks are signed and routed exactly as in a run.
 *
 * The sim header paths are explicit: src/ has a twiml.h of its own.
 */
#include "harness.h"

#include "../../sim/hooks.h"
#include "../../sim/report.h"
#include "../../sim/rng.h"
#include "../../sim/scenario.h"
#include "../../sim/sim.h"
#include "../../sim/twilio.h"
#include "../../sim/vapi.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/form.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "base/json.h"
#include "twilio/signature.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUBLIC  "https://gate.example.com"
#define ACCOUNT "AC0123456789abcdef0123456789abcdef"
#define TOKEN   "test-auth-token-1234"
#define MAX_REQ 2048

static const char *const SCENARIO =
    "{\"name\":\"twilio-unit\",\"seed\":7,"
    "\"twilio\":{\"account_sid\":\"" ACCOUNT "\",\"auth_token\":\"" TOKEN "\","
    "\"queue_max_size\":10,\"say_s_per_char\":0.001,\"play_s\":0.05,"
    "\"redirect_posts_action\":true},"
    "\"vapi\":{\"api_key\":\"vapi-key\",\"limit\":10,\"server_secret\":\"vapi-secret\","
    "\"end_lag_s\":0.05,\"report_lag_s\":0.05,\"no_stream_timeout_s\":5}}";

/* The default gate: greets, enqueues, and holds with a short loop. */
#define INCOMING_ENQUEUE                                                                           \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Hi</Say>"                            \
    "<Enqueue action=\"/queue-exit\" waitUrl=\"/queue-wait\">support</Enqueue></Response>"

struct gate_req {
    char *path;
    char *uri;
    char *method;
    char *sig;
    struct cg_form form;
    double t;
};

struct fx {
    struct event_base *base;
    struct sim_scenario sc;
    struct sim_world w;
    struct cg_httpd *gate;
    struct cg_httpc *client;
    char sim_base[64];
    char gate_base[64];
    struct gate_req reqs[MAX_REQ];
    size_t nreqs;
    /* Scripted answers, by path; NULL answers 200 with an empty body. */
    const char *incoming, *wait, *exit_doc, *next, *after;
    int incoming_status;
    const char *incoming_ctype;
};

/* ---- the fake gate ---- */

static const char *req_get(const struct gate_req *r, const char *key)
{
    return cg_form_get(&r->form, key);
}

static void gate_handler(struct cg_http_req *req, void *arg)
{
    struct fx *fx = arg;
    const char *path = cg_http_req_path(req);
    if (fx->nreqs < MAX_REQ) {
        struct gate_req *r = &fx->reqs[fx->nreqs++];
        r->path = cg_strdup(path);
        r->uri = cg_strdup(cg_http_req_uri(req));
        r->method = cg_strdup(cg_http_req_method(req) == CG_HTTP_GET ? "GET" : "POST");
        const char *sig = cg_http_req_header(req, "X-Twilio-Signature");
        r->sig = cg_strdup(sig ? sig : "");
        r->t = sim_now_s(&fx->w);
        cg_form_init(&r->form);
        const struct cg_form *f = NULL;
        if (cg_http_req_method(req) == CG_HTTP_GET) {
            f = cg_http_req_query(req);
        } else {
            const char *err = NULL;
            f = cg_http_req_form(req, &err);
        }
        for (size_t i = 0; f && i < f->n; i++)
            cg_form_add(&r->form, f->pairs[i].key, f->pairs[i].value);
    }
    const char *body = NULL;
    int status = 200;
    const char *ctype = "text/xml";
    if (strcmp(path, "/incoming") == 0) {
        body = fx->incoming;
        if (fx->incoming_status)
            status = fx->incoming_status;
        if (fx->incoming_ctype)
            ctype = fx->incoming_ctype;
    } else if (strcmp(path, "/queue-wait") == 0) {
        body = fx->wait;
    } else if (strcmp(path, "/queue-exit") == 0) {
        body = fx->exit_doc;
    } else if (strcmp(path, "/next") == 0) {
        body = fx->next;
    } else if (strcmp(path, "/after") == 0) {
        body = fx->after;
    }
    if (body)
        cg_http_reply(req, status, ctype, body, strlen(body));
    else
        cg_http_reply(req, status, "text/plain", "", 0);
}

static size_t count_reqs(const struct fx *fx, size_t from, const char *path, const char *key,
                         const char *value)
{
    size_t n = 0;
    for (size_t i = from; i < fx->nreqs; i++) {
        const struct gate_req *r = &fx->reqs[i];
        if (strcmp(r->path, path) != 0)
            continue;
        if (key && (!req_get(r, key) || (value && strcmp(req_get(r, key), value) != 0)))
            continue;
        n++;
    }
    return n;
}

/* The first request at or after index from matching path and key=value. */
static const struct gate_req *find_req(const struct fx *fx, size_t from, const char *path,
                                       const char *key, const char *value)
{
    for (size_t i = from; i < fx->nreqs; i++) {
        const struct gate_req *r = &fx->reqs[i];
        if (strcmp(r->path, path) != 0)
            continue;
        if (key && (!req_get(r, key) || (value && strcmp(req_get(r, key), value) != 0)))
            continue;
        return r;
    }
    return NULL;
}

static int wait_reqs(struct fx *fx, size_t from, const char *path, const char *key,
                     const char *value, size_t n, int ms)
{
    uint64_t end = cgt_now_ms() + (uint64_t)ms;
    while (count_reqs(fx, from, path, key, value) < n) {
        if (cgt_now_ms() > end)
            return -1;
        cgt_run_for(fx->base, 5);
    }
    return 0;
}

static int wait_done(struct fx *fx, const struct sim_call *c, int ms)
{
    uint64_t end = cgt_now_ms() + (uint64_t)ms;
    while (!c->done) {
        if (cgt_now_ms() > end)
            return -1;
        cgt_run_for(fx->base, 5);
    }
    return 0;
}

static int wait_waiting(struct fx *fx, size_t n, int ms)
{
    uint64_t end = cgt_now_ms() + (uint64_t)ms;
    while (sim_twilio_waiting(&fx->w) != n) {
        if (cgt_now_ms() > end)
            return -1;
        cgt_run_for(fx->base, 5);
    }
    return 0;
}

/* Every request the gate got carries a valid X-Twilio-Signature over the
 * public URL. */
static void assert_all_signed(const struct fx *fx)
{
    assert_true(fx->nreqs > 0);
    for (size_t i = 0; i < fx->nreqs; i++) {
        const struct gate_req *r = &fx->reqs[i];
        char url[2048];
        snprintf(url, sizeof(url), "%s%s", PUBLIC, r->uri);
        int get = strcmp(r->method, "GET") == 0;
        if (!cg_twsig_validate(TOKEN, url, get ? NULL : &r->form, r->sig))
            fail_msg("bad signature on %s %s", r->method, url);
    }
}

static void assert_standard_params(const struct gate_req *r, const struct sim_call *c,
                                   const char *status)
{
    assert_string_equal(req_get(r, "CallSid"), c->sid);
    assert_string_equal(req_get(r, "AccountSid"), ACCOUNT);
    assert_string_equal(req_get(r, "From"), c->from);
    assert_string_equal(req_get(r, "To"), SIM_TWILIO_TO);
    assert_string_equal(req_get(r, "Caller"), c->from);
    assert_string_equal(req_get(r, "Called"), SIM_TWILIO_TO);
    assert_string_equal(req_get(r, "ApiVersion"), "2010-04-01");
    assert_string_equal(req_get(r, "Direction"), "inbound");
    if (status)
        assert_string_equal(req_get(r, "CallStatus"), status);
}

static int is_uint(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* ---- the test's REST client ---- */

struct resp {
    int done;
    long status;
    char *body;
    double retry_after;
};

static void on_resp(const struct cg_httpc_result *res, void *arg)
{
    struct resp *r = arg;
    r->status = res->status;
    r->body = cg_strndup(res->body ? res->body : "", res->body_len);
    r->retry_after = res->retry_after_s;
    r->done = 1;
}

static long http(struct fx *fx, const char *method, const char *url, const char *body,
                 const char *ctype, const char *user, const char *pass, const char *bearer,
                 struct resp *out)
{
    memset(out, 0, sizeof(*out));
    struct cg_httpc_request req = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .content_type = ctype,
        .basic_user = user,
        .basic_pass = pass,
        .bearer = bearer,
        .timeout_ms = 5000,
    };
    assert_int_equal(cg_httpc_send(fx->client, &req, on_resp, out), 0);
    assert_int_equal(cgt_run_until(fx->base, &out->done, 6000), 0);
    return out->status;
}

/* A REST request to the simulated Twilio, path relative to the account. */
static long rest(struct fx *fx, const char *method, const char *path, const char *form,
                 struct resp *out)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/" ACCOUNT "/%s", fx->sim_base, path);
    return http(fx, method, url, form, form ? "application/x-www-form-urlencoded" : NULL, ACCOUNT,
                TOKEN, NULL, out);
}

static json_t *json_of(const struct resp *r)
{
    char err[128];
    json_t *j = cg_json_parse(r->body, strlen(r->body), 32, err, sizeof(err));
    if (!j)
        fail_msg("not JSON (%s): %s", err, r->body);
    return j;
}

/* Keys of a JSON text appear in this order (first occurrence of each). */
static void assert_key_order(const char *body, const char *const *keys)
{
    const char *prev = body;
    for (; *keys; keys++) {
        char k[64];
        snprintf(k, sizeof(k), "\"%s\":", *keys);
        const char *at = strstr(prev, k);
        if (!at)
            fail_msg("key %s missing or out of order in %s", *keys, body);
        prev = at;
    }
}

/* Creates a Vapi bypass call the way the gate does; returns its TwiML. */
static char *vapi_create(struct fx *fx, const char *call_sid)
{
    char url[128], body[512];
    snprintf(url, sizeof(url), "%s/call", fx->sim_base);
    snprintf(body, sizeof(body),
             "{\"phoneNumberId\":\"pn-1\",\"assistantId\":\"asst-1\","
             "\"phoneCallProviderBypassEnabled\":true,\"customer\":{\"number\":\"+15550001111\"}"
             "%s%s%s}",
             call_sid ? ",\"assistantOverrides\":{\"metadata\":{\"twilioCallSid\":\"" : "",
             call_sid ? call_sid : "", call_sid ? "\"}}" : "");
    struct resp r;
    http(fx, "POST", url, body, "application/json", NULL, NULL, "vapi-key", &r);
    if (r.status != 201)
        fail_msg("POST /call: %ld %s", r.status, r.body);
    json_t *j = json_of(&r);
    const char *twiml = cg_json_str(j, "phoneCallProviderDetails.twiml");
    assert_non_null(twiml);
    char *out = cg_strdup(twiml);
    json_decref(j);
    free(r.body);
    return out;
}

static char *form1(const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct cg_form f;
    cg_form_init(&f);
    cg_form_add(&f, k1, v1);
    if (k2)
        cg_form_add(&f, k2, v2);
    char *s = cg_form_encode(&f);
    cg_form_free(&f);
    return s;
}

/* The run's figures, from the report as main.c would write it. */
static json_t *report_json(struct fx *fx)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    sim_report_finish(fx->w.report, -1, -1, f);
    fclose(f);
    char err[128];
    json_t *j = cg_json_parse(buf, len, 32, err, sizeof(err));
    free(buf);
    assert_non_null(j);
    return j;
}

static long report_int(json_t *j, const char *path)
{
    long long v = -1;
    if (cg_json_int(j, path, &v) < 0)
        fail_msg("report has no integer %s", path);
    return (long)v;
}

/* A caller arrives, as callers.c reports it. */
static struct sim_call *new_call(struct sim_world *w, const char *from, double duration_s,
                                 double patience_s)
{
    if (w->report)
        sim_report_caller_arrived(w->report);
    return sim_twilio_new_call(w, from, duration_s, patience_s);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fx *fx = cg_calloc(1, sizeof(*fx));
    fx->base = event_base_new();
    char err[256];
    if (sim_scenario_parse(&fx->sc, SCENARIO, strlen(SCENARIO), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1",
                              .port = 0,
                              .max_body_bytes = 1 << 20,
                              .max_header_bytes = 16384,
                              .timeout_seconds = 10};
    struct sim_world *w = &fx->w;
    w->base = fx->base;
    w->sc = &fx->sc;
    w->httpd = cg_httpd_new(fx->base, &o);
    fx->gate = cg_httpd_new(fx->base, &o);
    assert_non_null(w->httpd);
    assert_non_null(fx->gate);
    static const char *const paths[] = {"/incoming",    "/queue-wait", "/queue-exit",
                                        "/call-status", "/next",       "/after"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(
            cg_httpd_route(fx->gate, paths[i], CG_HTTP_GET | CG_HTTP_POST, gate_handler, fx), 0);
    w->httpc = cg_httpc_new(fx->base, NULL);
    fx->client = cg_httpc_new(fx->base, NULL);
    w->rng = sim_rng_new(1);
    w->fault_rng = sim_rng_new(2);
    w->report = sim_report_new(w);
    assert_int_equal(cg_httpd_listen(w->httpd, err, sizeof(err)), 0);
    assert_int_equal(cg_httpd_listen(fx->gate, err, sizeof(err)), 0);
    snprintf(fx->sim_base, sizeof(fx->sim_base), "http://127.0.0.1:%d", cg_httpd_port(w->httpd));
    snprintf(fx->gate_base, sizeof(fx->gate_base), "http://127.0.0.1:%d", cg_httpd_port(fx->gate));
    const char *instances[] = {fx->gate_base};
    w->hooks = sim_hooks_new(w, PUBLIC, instances, 1);
    w->vapi = sim_vapi_new(w);
    assert_non_null(w->vapi);
    w->twilio = sim_twilio_new(w);
    assert_non_null(w->twilio);
    w->start_ms = cg_mono_ms();
    fx->incoming = INCOMING_ENQUEUE;
    fx->wait = "<Response><Say>Please hold</Say><Pause length=\"0.3\"/></Response>";
    fx->exit_doc = NULL;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    struct sim_world *w = &fx->w;
    sim_hooks_free(w->hooks);
    w->hooks = NULL;
    sim_twilio_free(w->twilio);
    w->twilio = NULL;
    sim_vapi_free(w->vapi);
    cg_httpc_free(fx->client);
    cg_httpc_free(w->httpc);
    cg_httpd_free(w->httpd);
    cg_httpd_free(fx->gate);
    sim_report_free(w->report);
    sim_rng_free(w->rng);
    sim_rng_free(w->fault_rng);
    sim_scenario_free(&fx->sc);
    for (size_t i = 0; i < fx->nreqs; i++) {
        free(fx->reqs[i].path);
        free(fx->reqs[i].uri);
        free(fx->reqs[i].method);
        free(fx->reqs[i].sig);
        cg_form_free(&fx->reqs[i].form);
    }
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* ---- voice engine ---- */

static void test_enqueue_wait_and_admit(void **state)
{
    struct fx *fx = *state;
    struct sim_world *w = &fx->w;
    struct sim_call *c[3];
    for (int i = 0; i < 3; i++) {
        char from[16];
        snprintf(from, sizeof(from), "+1555000000%d", i + 1);
        c[i] = new_call(w, from, 0.3, -1);
        assert_non_null(c[i]);
        assert_int_equal(strlen(c[i]->sid), 34);
        assert_memory_equal(c[i]->sid, "CA", 2);
    }
    assert_int_equal(sim_twilio_live(w), 3);
    assert_int_equal(wait_waiting(fx, 3, 3000), 0);

    /* The voice webhook: standard parameters, ringing. */
    const struct gate_req *in = find_req(fx, 0, "/incoming", "CallSid", c[0]->sid);
    assert_non_null(in);
    assert_string_equal(in->method, "POST");
    assert_standard_params(in, c[0], "ringing");

    /* A waitUrl cycle that starts once all three are queued shows the
     * whole queue, positions 1-based in arrival order at the queue. */
    const char *qsid = sim_twilio_queue_sid(w, "support");
    assert_non_null(qsid);
    struct sim_queue *q = sim_tw_find_queue(w->twilio, qsid);
    assert_non_null(q);
    assert_int_equal(q->n, 3);
    /* Requests sent before the third caller joined land first. */
    cgt_run_for(fx->base, 100);
    size_t mark = fx->nreqs;
    for (int i = 0; i < 3; i++)
        assert_int_equal(wait_reqs(fx, mark, "/queue-wait", "CallSid", c[i]->sid, 1, 3000), 0);
    for (int i = 0; i < 3; i++) {
        const struct gate_req *r = find_req(fx, mark, "/queue-wait", "CallSid", c[i]->sid);
        assert_standard_params(r, c[i], "in-progress");
        char pos[8];
        snprintf(pos, sizeof(pos), "%zu", sim_tw_queue_position(q, c[i]));
        assert_string_equal(req_get(r, "QueuePosition"), pos);
        assert_string_equal(req_get(r, "QueueSid"), qsid);
        assert_string_equal(req_get(r, "CurrentQueueSize"), "3");
        assert_string_equal(req_get(r, "MaxQueueSize"), "10");
        assert_true(is_uint(req_get(r, "QueueTime")));
        assert_true(is_uint(req_get(r, "AvgQueueTime")));
    }

    /* The same queue through REST. */
    struct resp r;
    char path[256];
    snprintf(path, sizeof(path), "Queues/%s/Members.json", qsid);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 200);
    static const char *const env_keys[] = {"end",           "first_page_uri",
                                           "next_page_uri", "page",
                                           "page_size",     "previous_page_uri",
                                           "queue_members", "start",
                                           "uri",           NULL};
    assert_key_order(r.body, env_keys);
    static const char *const member_keys[] = {
        "queue_sid", "call_sid", "date_enqueued", "position", "uri", "wait_time", NULL};
    assert_key_order(strstr(r.body, "\"queue_members\""), member_keys);
    json_t *j = json_of(&r);
    json_t *members = json_object_get(j, "queue_members");
    assert_int_equal(json_array_size(members), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(members, i);
        long long p = 0;
        assert_int_equal(cg_json_int(m, "position", &p), 0);
        assert_int_equal(p, (long long)i + 1);
        assert_string_equal(cg_json_str(m, "call_sid"), q->members[i]->sid);
        assert_string_equal(cg_json_str(m, "queue_sid"), qsid);
    }
    assert_true(json_is_null(json_object_get(j, "next_page_uri")));
    char want_uri[256];
    snprintf(want_uri, sizeof(want_uri),
             "/2010-04-01/Accounts/" ACCOUNT "/Queues/%s/Members.json?PageSize=50&Page=0", qsid);
    assert_string_equal(cg_json_str(j, "uri"), want_uri);
    assert_string_equal(cg_json_str(j, "first_page_uri"), want_uri);
    json_decref(j);
    free(r.body);

    /* Admission as the gate does it: a Vapi call, then Calls update. */
    struct sim_call *front = q->members[0];
    char *twiml = vapi_create(fx, front->sid);
    char *body = form1("Twiml", twiml, NULL, NULL);
    snprintf(path, sizeof(path), "Calls/%s.json", front->sid);
    mark = fx->nreqs;
    assert_int_equal(rest(fx, "POST", path, body, &r), 200);
    j = json_of(&r);
    assert_string_equal(cg_json_str(j, "sid"), front->sid);
    assert_string_equal(cg_json_str(j, "status"), "in-progress");
    assert_true(json_is_null(json_object_get(j, "duration")));
    json_decref(j);
    free(r.body);
    free(body);
    free(twiml);

    /* The action hears about the redirect; the caller is connected. */
    assert_int_equal(wait_reqs(fx, mark, "/queue-exit", "CallSid", front->sid, 1, 2000), 0);
    const struct gate_req *ex = find_req(fx, mark, "/queue-exit", "CallSid", front->sid);
    assert_string_equal(req_get(ex, "QueueResult"), "redirected");
    assert_string_equal(req_get(ex, "QueueSid"), qsid);
    assert_true(is_uint(req_get(ex, "QueueTime")));
    assert_int_equal(wait_done(fx, front, 2000), 0);
    assert_int_equal(front->outcome, SIM_OUT_CONNECTED);
    assert_int_equal(sim_twilio_waiting(w), 2);
    assert_int_equal(q->n, 2);

    /* The rest move up. */
    cgt_run_for(fx->base, 100);
    mark = fx->nreqs;
    for (size_t i = 0; i < 2; i++) {
        const char *sid = q->members[i]->sid;
        assert_int_equal(wait_reqs(fx, mark, "/queue-wait", "CallSid", sid, 1, 3000), 0);
        const struct gate_req *wr = find_req(fx, mark, "/queue-wait", "CallSid", sid);
        char pos[8];
        snprintf(pos, sizeof(pos), "%zu", i + 1);
        assert_string_equal(req_get(wr, "QueuePosition"), pos);
        assert_string_equal(req_get(wr, "CurrentQueueSize"), "2");
    }

    /* After talking 0.3 s the caller hangs up: the completed callback. */
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", front->sid, 1, 3000), 0);
    const struct gate_req *st = find_req(fx, 0, "/call-status", "CallSid", front->sid);
    assert_standard_params(st, front, "completed");
    assert_true(is_uint(req_get(st, "CallDuration")));
    assert_string_equal(req_get(st, "Duration"), "1");
    assert_non_null(strstr(req_get(st, "Timestamp"), " +0000"));
    assert_string_equal(req_get(st, "CallbackSource"), "call-progress-events");
    assert_string_equal(req_get(st, "SequenceNumber"), "0");
    assert_int_equal(front->status, SIM_CALL_COMPLETED);
    assert_int_equal(sim_twilio_live(w), 2);

    /* A completed call is no longer redirectable. */
    body = form1("Twiml", "<Response><Hangup/></Response>", NULL, NULL);
    assert_int_equal(rest(fx, "POST", path, body, &r), 400);
    assert_string_equal(
        r.body, "{\"code\":21220,\"message\":\"Call is not in-progress. Cannot redirect.\","
                "\"more_info\":\"https://www.twilio.com/docs/errors/21220\",\"status\":400}");
    free(r.body);
    free(body);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 200);
    j = json_of(&r);
    assert_string_equal(cg_json_str(j, "status"), "completed");
    assert_true(is_uint(cg_json_str(j, "duration")));
    json_decref(j);
    free(r.body);
    assert_all_signed(fx);
}

static void test_member_dequeue(void **state)
{
    struct fx *fx = *state;
    struct sim_world *w = &fx->w;
    fx->next = "<Response><Say>Moved</Say><Pause length=\"5\"/></Response>";
    struct sim_call *a = new_call(w, "+15550000001", 1, -1);
    assert_int_equal(wait_waiting(fx, 1, 2000), 0);
    struct sim_call *b = new_call(w, "+15550000002", 1, -1);
    assert_int_equal(wait_waiting(fx, 2, 2000), 0);
    const char *qsid = sim_twilio_queue_sid(w, "support");
    char path[256];
    struct resp r;

    /* Dequeue b by CallSid, with GET. */
    size_t mark = fx->nreqs;
    char *body = form1("Url", PUBLIC "/next", "Method", "GET");
    snprintf(path, sizeof(path), "Queues/%s/Members/%s.json", qsid, b->sid);
    assert_int_equal(rest(fx, "POST", path, body, &r), 200);
    json_t *j = json_of(&r);
    assert_string_equal(cg_json_str(j, "call_sid"), b->sid);
    long long pos = 0;
    assert_int_equal(cg_json_int(j, "position", &pos), 0);
    assert_int_equal(pos, 2);
    json_decref(j);
    free(r.body);
    assert_int_equal(wait_reqs(fx, mark, "/next", "CallSid", b->sid, 1, 2000), 0);
    const struct gate_req *nx = find_req(fx, mark, "/next", "CallSid", b->sid);
    assert_string_equal(nx->method, "GET");
    assert_standard_params(nx, b, "in-progress");
    assert_non_null(find_req(fx, mark, "/queue-exit", "QueueResult", "redirected"));
    assert_int_equal(sim_twilio_waiting(w), 1);

    /* Only the first dequeue of a call succeeds. */
    assert_int_equal(rest(fx, "POST", path, body, &r), 400);
    j = json_of(&r);
    long long code = 0;
    assert_int_equal(cg_json_int(j, "code", &code), 0);
    assert_int_equal(code, 21220);
    json_decref(j);
    free(r.body);
    free(body);

    /* Missing and bad parameters leave the member where it is. */
    snprintf(path, sizeof(path), "Queues/%s/Members/%s.json", qsid, a->sid);
    assert_int_equal(rest(fx, "POST", path, "Method=POST", &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, "Url=ftp%3A%2F%2Fx", &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, "Url=https%3A%2F%2Fx&Method=PUT", &r), 400);
    free(r.body);
    assert_int_equal(sim_twilio_waiting(w), 1);

    /* Front: the other caller; then the queue is empty. */
    body = form1("Url", PUBLIC "/next", NULL, NULL);
    snprintf(path, sizeof(path), "Queues/%s/Members/Front.json", qsid);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 200);
    j = json_of(&r);
    assert_string_equal(cg_json_str(j, "call_sid"), a->sid);
    json_decref(j);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, body, &r), 200);
    free(r.body);
    assert_int_equal(sim_twilio_waiting(w), 0);
    assert_int_equal(rest(fx, "POST", path, body, &r), 404);
    j = json_of(&r);
    assert_int_equal(cg_json_int(j, "code", &code), 0);
    assert_int_equal(code, 20404);
    json_decref(j);
    free(r.body);

    /* Never a member of this queue: not found. */
    snprintf(path, sizeof(path), "Queues/%s/Members/CA00000000000000000000000000000000.json", qsid);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 404);
    free(r.body);
    free(body);
    assert_int_equal(wait_reqs(fx, 0, "/next", "CallSid", a->sid, 1, 2000), 0);
    assert_all_signed(fx);
}

static void test_patience_hangup(void **state)
{
    struct fx *fx = *state;
    fx->wait = "<Response><Pause length=\"5\"/></Response>";
    struct sim_call *c = new_call(&fx->w, "+15550000001", 1, 0.3);
    assert_int_equal(wait_waiting(fx, 1, 2000), 0);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", c->sid, 1, 3000), 0);
    assert_int_equal(c->outcome, SIM_OUT_ABANDONED);
    assert_int_equal(sim_twilio_waiting(&fx->w), 0);
    const struct gate_req *ex = find_req(fx, 0, "/queue-exit", "CallSid", c->sid);
    assert_non_null(ex);
    assert_string_equal(req_get(ex, "QueueResult"), "hangup");
    assert_string_equal(req_get(ex, "QueueSid"), sim_twilio_queue_sid(&fx->w, "support"));
    assert_true(is_uint(req_get(ex, "QueueTime")));
    const struct gate_req *st = find_req(fx, 0, "/call-status", "CallSid", c->sid);
    assert_string_equal(req_get(st, "CallStatus"), "completed");
    /* The action comes before the status callback. */
    assert_true(ex < st);
    json_t *j = report_json(fx);
    assert_int_equal(report_int(j, "callers.abandoned"), 1);
    json_decref(j);
    assert_all_signed(fx);
}

static void test_queue_full(void **state)
{
    struct fx *fx = *state;
    fx->sc.queue_max_size = 1;
    fx->exit_doc = "<Response><Say>Sorry, we are busy</Say><Hangup/></Response>";
    struct sim_call *a = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_waiting(fx, 1, 2000), 0);
    struct sim_call *b = new_call(&fx->w, "+15550000002", 1, -1);
    assert_int_equal(wait_done(fx, b, 2000), 0);
    assert_int_equal(b->outcome, SIM_OUT_OVERFLOW);
    const struct gate_req *ex = find_req(fx, 0, "/queue-exit", "CallSid", b->sid);
    assert_non_null(ex);
    assert_string_equal(req_get(ex, "QueueResult"), "queue-full");
    assert_null(req_get(ex, "QueueSid"));
    assert_null(req_get(ex, "QueueTime"));
    assert_int_equal(sim_twilio_waiting(&fx->w), 1);
    assert_false(a->done);
    const struct gate_req *w1 = find_req(fx, 0, "/queue-wait", "CallSid", a->sid);
    assert_string_equal(req_get(w1, "MaxQueueSize"), "1");
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", b->sid, 1, 2000), 0);
    assert_all_signed(fx);
}

static void test_leave_with_get_wait(void **state)
{
    struct fx *fx = *state;
    fx->incoming = "<Response><Enqueue action=\"/queue-exit\" waitUrl=\"/queue-wait?x=1\" "
                   "waitUrlMethod=\"GET\">support</Enqueue><Say>never</Say></Response>";
    fx->wait = "<Response><Say>One moment</Say><Leave/></Response>";
    fx->exit_doc = "<Response><Say>Goodbye</Say></Response>";
    struct sim_call *c = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", c->sid, 1, 3000), 0);
    const struct gate_req *wr = find_req(fx, 0, "/queue-wait", "CallSid", c->sid);
    assert_string_equal(wr->method, "GET");
    assert_string_equal(req_get(wr, "x"), "1");
    assert_string_equal(req_get(wr, "QueuePosition"), "1");
    const struct gate_req *ex = find_req(fx, 0, "/queue-exit", "CallSid", c->sid);
    assert_string_equal(ex->method, "POST");
    assert_string_equal(req_get(ex, "QueueResult"), "leave");
    assert_non_null(req_get(ex, "QueueSid"));
    /* "Goodbye" then the end of the document: a message, then hang-up. */
    assert_int_equal(c->outcome, SIM_OUT_OVERFLOW);
    assert_int_equal(sim_twilio_waiting(&fx->w), 0);
    assert_all_signed(fx);
}

static void test_leave_without_action(void **state)
{
    struct fx *fx = *state;
    /* No action: <Leave> continues with the verb after <Enqueue>. */
    fx->incoming = "<Response><Enqueue waitUrl=\"/queue-wait\">support</Enqueue>"
                   "<Say>Transferring</Say><Dial>+15559998888</Dial></Response>";
    fx->wait = "<Response><Leave/></Response>";
    struct sim_call *c = new_call(&fx->w, "+15550000001", 0.2, -1);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", c->sid, 1, 3000), 0);
    assert_int_equal(c->outcome, SIM_OUT_OVERFLOW);
    assert_int_equal(count_reqs(fx, 0, "/queue-exit", NULL, NULL), 0);
    json_t *j = report_json(fx);
    json_t *n = json_object_get(json_object_get(j, "counters"), "twilio.overflow_dial");
    assert_true(json_is_integer(n));
    assert_int_equal(json_integer_value(n), 1);
    json_decref(j);
}

static void test_waiturl_disallowed_verb(void **state)
{
    struct fx *fx = *state;
    fx->wait = "<Response><Say>Hold on</Say><Dial>+15551112222</Dial></Response>";
    fx->exit_doc = "<Response><Say>We had a problem</Say></Response>";
    struct sim_call *c = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_reqs(fx, 0, "/queue-exit", "QueueResult", "error", 1, 3000), 0);
    const struct gate_req *ex = find_req(fx, 0, "/queue-exit", "CallSid", c->sid);
    assert_string_equal(req_get(ex, "QueueResult"), "error");
    assert_non_null(req_get(ex, "QueueSid"));
    assert_int_equal(wait_done(fx, c, 2000), 0);
    assert_int_equal(sim_twilio_waiting(&fx->w), 0);
    json_t *j = report_json(fx);
    assert_true(report_int(j, "twiml_errors") >= 1);
    json_decref(j);
    assert_all_signed(fx);
}

static void test_waiturl_hangup(void **state)
{
    struct fx *fx = *state;
    /* A message then <Hangup>: an overflow. */
    fx->wait = "<Response><Say>We are closed</Say><Hangup/></Response>";
    struct sim_call *a = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_done(fx, a, 2000), 0);
    assert_int_equal(a->outcome, SIM_OUT_OVERFLOW);
    /* <Hangup> alone: the caller is dropped. */
    fx->wait = "<Response><Hangup/></Response>";
    struct sim_call *b = new_call(&fx->w, "+15550000002", 1, -1);
    assert_int_equal(wait_done(fx, b, 2000), 0);
    assert_int_equal(b->outcome, SIM_OUT_LOST);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", NULL, NULL, 2, 2000), 0);
    assert_non_null(find_req(fx, 0, "/queue-exit", "QueueResult", "hangup"));
}

static void test_incoming_failures(void **state)
{
    struct fx *fx = *state;
    fx->incoming_status = 500;
    struct sim_call *a = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", a->sid, 1, 3000), 0);
    assert_int_equal(a->outcome, SIM_OUT_LOST);
    assert_int_equal(a->status, SIM_CALL_COMPLETED);

    fx->incoming_status = 0;
    fx->incoming = "<Response><Unknown/></Response>";
    struct sim_call *b = new_call(&fx->w, "+15550000002", 1, -1);
    assert_int_equal(wait_done(fx, b, 2000), 0);
    assert_int_equal(b->outcome, SIM_OUT_LOST);

    fx->incoming = INCOMING_ENQUEUE;
    fx->incoming_ctype = "application/json";
    struct sim_call *c = new_call(&fx->w, "+15550000003", 1, -1);
    assert_int_equal(wait_done(fx, c, 2000), 0);
    assert_int_equal(c->outcome, SIM_OUT_LOST);

    json_t *j = report_json(fx);
    assert_int_equal(report_int(j, "twiml_errors"), 3);
    assert_int_equal(report_int(j, "callers.lost"), 3);
    json_decref(j);
    assert_int_equal(sim_twilio_live(&fx->w), 0);
}

static void test_fast_path_and_stream_end(void **state)
{
    struct fx *fx = *state;
    struct sim_world *w = &fx->w;
    /* The gate answers the voice webhook with Vapi's TwiML directly. */
    char *twiml = vapi_create(fx, NULL);
    const char *u = strstr(twiml, "url=\"");
    assert_non_null(u);
    u += 5;
    char doc[512];
    snprintf(doc, sizeof(doc),
             "<Response><Connect action=\"/after\"><Stream url=\"%.*s\"/></Connect>"
             "<Say>never</Say></Response>",
             (int)strcspn(u, "\""), u);
    free(twiml);
    fx->incoming = doc;
    fx->after = "<Response><Say>Thanks for calling</Say></Response>";
    struct sim_call *c = new_call(w, "+15550000001", 30, -1);
    assert_int_equal(wait_done(fx, c, 2000), 0);
    assert_int_equal(c->outcome, SIM_OUT_CONNECTED);
    assert_int_equal(c->phase, SIM_PH_TALK);
    assert_int_equal(count_reqs(fx, 0, "/queue-wait", NULL, NULL), 0);
    /* Vapi ends first (max duration): <Connect action> is requested. */
    sim_twilio_stream_ended(w, c->sid);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", c->sid, 1, 2000), 0);
    assert_int_equal(count_reqs(fx, 0, "/after", "CallSid", c->sid), 1);
    assert_int_equal(c->status, SIM_CALL_COMPLETED);
    /* An unknown or unbridged call is ignored. */
    sim_twilio_stream_ended(w, c->sid);
    sim_twilio_stream_ended(w, "CAnope");
    assert_all_signed(fx);
}

static void test_rest_hangup_and_completed_again(void **state)
{
    struct fx *fx = *state;
    struct sim_call *c = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_waiting(fx, 1, 2000), 0);
    char path[128];
    snprintf(path, sizeof(path), "Calls/%s.json", c->sid);
    struct resp r;
    /* canceled does not touch an answered call. */
    assert_int_equal(rest(fx, "POST", path, "Status=canceled", &r), 200);
    free(r.body);
    assert_int_equal(sim_twilio_waiting(&fx->w), 1);
    assert_int_equal(rest(fx, "POST", path, "Status=completed", &r), 200);
    json_t *j = json_of(&r);
    assert_string_equal(cg_json_str(j, "status"), "completed");
    json_decref(j);
    free(r.body);
    assert_int_equal(c->outcome, SIM_OUT_LOST);
    assert_int_equal(sim_twilio_waiting(&fx->w), 0);
    assert_int_equal(wait_reqs(fx, 0, "/queue-exit", "QueueResult", "hangup", 1, 2000), 0);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", c->sid, 1, 2000), 0);

    static const char *const e21220 =
        "{\"code\":21220,\"message\":\"Call is not in-progress. Cannot redirect.\","
        "\"more_info\":\"https://www.twilio.com/docs/errors/21220\",\"status\":400}";
    assert_int_equal(rest(fx, "POST", path, "Status=completed", &r), 400);
    assert_string_equal(r.body, e21220);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, "Url=https%3A%2F%2Fgate.example.com%2Fnext", &r), 400);
    assert_string_equal(r.body, e21220);
    free(r.body);
    fx->sc.completed_again_200 = 1;
    assert_int_equal(rest(fx, "POST", path, "Status=completed", &r), 200);
    free(r.body);
    /* Still one status callback. */
    cgt_run_for(fx->base, 50);
    assert_int_equal(count_reqs(fx, 0, "/call-status", "CallSid", c->sid), 1);

    /* Bad requests. */
    struct sim_call *d = new_call(&fx->w, "+15550000002", 1, -1);
    assert_int_equal(wait_waiting(fx, 1, 2000), 0);
    snprintf(path, sizeof(path), "Calls/%s.json", d->sid);
    assert_int_equal(rest(fx, "POST", path, "Twiml=%3CResponse%2F%3E&Url=https%3A%2F%2Fx", &r),
                     400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, "Status=ringing", &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, "Url=https%3A%2F%2Fx&Method=PUT", &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, "Twiml=%ZZ", &r), 400);
    free(r.body);
    /* Over 4,000 characters (an emoji counts two): 32018, nothing done. */
    static char longdoc[4100];
    size_t k = (size_t)snprintf(longdoc, sizeof longdoc, "<Response><Say>");
    while (k < 3990) /* 3,990 + 2 + 17 = 4,009 characters */
        longdoc[k++] = 'a';
    memcpy(longdoc + k, "\xf0\x9f\x98\x80</Say></Response>", 22);
    char *lbody = form1("Twiml", longdoc, NULL, NULL);
    assert_int_equal(rest(fx, "POST", path, lbody, &r), 400);
    assert_non_null(strstr(r.body, "\"code\":32018"));
    free(r.body);
    free(lbody);
    assert_int_equal(sim_twilio_waiting(&fx->w), 1);
    /* Invalid TwiML through REST: accepted, then an application error. */
    assert_int_equal(rest(fx, "POST", path, "Twiml=%3CResponse%3E", &r), 200);
    free(r.body);
    assert_int_equal(wait_done(fx, d, 2000), 0);
    assert_int_equal(d->outcome, SIM_OUT_LOST);
    /* A REST message then hang-up is an overflow. */
    struct sim_call *e = new_call(&fx->w, "+15550000003", 1, -1);
    assert_int_equal(wait_waiting(fx, 1, 2000), 0);
    snprintf(path, sizeof(path), "Calls/%s.json", e->sid);
    char *body = form1("Twiml", "<Response><Say>Sorry</Say><Hangup/></Response>", NULL, NULL);
    assert_int_equal(rest(fx, "POST", path, body, &r), 200);
    free(r.body);
    free(body);
    assert_int_equal(wait_done(fx, e, 2000), 0);
    assert_int_equal(e->outcome, SIM_OUT_OVERFLOW);
    assert_all_signed(fx);
}

static void test_redirect_record_reject(void **state)
{
    struct fx *fx = *state;
    /* A relative <Redirect> from the voice webhook, then <Enqueue>; the
     * waitUrl document redirects (GET) to another hold document. */
    fx->incoming = "<Response><Redirect>next</Redirect><Say>never</Say></Response>";
    fx->next = "<Response><Enqueue action=\"/queue-exit\" waitUrl=\"/queue-wait\">support"
               "</Enqueue></Response>";
    fx->wait = "<Response><Redirect method=\"GET\">/after?from=wait</Redirect></Response>";
    fx->after = "<Response><Play>https://example.com/m.mp3</Play><Pause length=\"0.2\"/>"
                "</Response>";
    struct sim_call *c = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_reqs(fx, 0, "/after", "CallSid", c->sid, 1, 2000), 0);
    const struct gate_req *nx = find_req(fx, 0, "/next", "CallSid", c->sid);
    assert_non_null(nx);
    assert_string_equal(nx->method, "POST");
    const struct gate_req *af = find_req(fx, 0, "/after", "CallSid", c->sid);
    assert_string_equal(af->method, "GET");
    assert_string_equal(req_get(af, "from"), "wait");
    assert_string_equal(req_get(af, "QueuePosition"), "1");
    assert_non_null(req_get(af, "QueueSid"));
    /* When that document runs out, the original waitUrl comes round again. */
    size_t mark = fx->nreqs;
    assert_int_equal(wait_reqs(fx, mark, "/queue-wait", "CallSid", c->sid, 1, 2000), 0);

    /* The gate sends the caller to voicemail through REST. */
    char path[128];
    snprintf(path, sizeof(path), "Calls/%s.json", c->sid);
    char *body = form1("Twiml",
                       "<Response><Say>Leave a message</Say>"
                       "<Record action=\"https://gate.example.com/after\" maxLength=\"1\"/>"
                       "</Response>",
                       NULL, NULL);
    struct resp r;
    mark = fx->nreqs;
    assert_int_equal(rest(fx, "POST", path, body, &r), 200);
    free(r.body);
    free(body);
    assert_int_equal(wait_done(fx, c, 2000), 0);
    assert_int_equal(c->outcome, SIM_OUT_OVERFLOW);
    assert_int_equal(sim_twilio_waiting(&fx->w), 0);
    assert_int_equal(wait_reqs(fx, mark, "/call-status", "CallSid", c->sid, 1, 3000), 0);
    assert_int_equal(wait_reqs(fx, mark, "/after", "Digits", "hangup", 1, 2000), 0);
    af = find_req(fx, mark, "/after", "Digits", "hangup");
    assert_true(is_uint(req_get(af, "RecordingDuration")));
    assert_non_null(req_get(af, "RecordingUrl"));
    assert_memory_equal(req_get(af, "RecordingSid"), "RE", 2);

    /* <Reject>: never answered, busy. */
    fx->incoming = "<Response><Reject reason=\"busy\"/></Response>";
    struct sim_call *d = new_call(&fx->w, "+15550000002", 1, -1);
    assert_int_equal(wait_reqs(fx, 0, "/call-status", "CallSid", d->sid, 1, 2000), 0);
    const struct gate_req *st = find_req(fx, 0, "/call-status", "CallSid", d->sid);
    assert_string_equal(req_get(st, "CallStatus"), "busy");
    assert_string_equal(req_get(st, "CallDuration"), "0");
    assert_string_equal(req_get(st, "Duration"), "0");
    assert_int_equal(d->outcome, SIM_OUT_LOST);
    assert_int_equal(d->status, SIM_CALL_BUSY);
    assert_all_signed(fx);
}

static void test_finish_marks_lost(void **state)
{
    struct fx *fx = *state;
    /* No waitUrl: Twilio's own hold music, no requests while waiting. */
    fx->incoming = "<Response><Enqueue>support</Enqueue></Response>";
    struct sim_call *c = new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_waiting(fx, 1, 2000), 0);
    cgt_run_for(fx->base, 100);
    assert_int_equal(count_reqs(fx, 0, "/queue-wait", NULL, NULL), 0);
    assert_int_equal(c->phase, SIM_PH_HOLD);
    sim_twilio_finish(&fx->w);
    assert_int_equal(c->outcome, SIM_OUT_LOST);
    assert_int_equal(sim_twilio_waiting(&fx->w), 0);
    assert_null(sim_twilio_new_call(&fx->w, "+15550000002", 1, -1));
    json_t *j = report_json(fx);
    assert_int_equal(report_int(j, "callers.lost"), 1);
    json_decref(j);
}

/* ---- REST ---- */

static void test_rest_auth_and_not_found(void **state)
{
    struct fx *fx = *state;
    struct resp r;
    char url[256];
    static const char *const e401 =
        "{\"code\":20003,\"detail\":\"Your AccountSid or AuthToken was incorrect.\","
        "\"message\":\"Authenticate\",\"more_info\":\"https://www.twilio.com/docs/errors/20003\","
        "\"status\":401}";
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/" ACCOUNT "/Queues.json", fx->sim_base);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, ACCOUNT, "wrong", NULL, &r), 401);
    assert_string_equal(r.body, e401);
    free(r.body);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, NULL, NULL, NULL, &r), 401);
    assert_string_equal(r.body, e401);
    free(r.body);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, NULL, NULL, "bearer-token", &r), 401);
    free(r.body);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, "ACother", TOKEN, NULL, &r), 401);
    free(r.body);

    /* Unknown call: 20404 naming the path. */
    assert_int_equal(rest(fx, "GET", "Calls/CA00000000000000000000000000000000.json", NULL, &r),
                     404);
    assert_string_equal(r.body,
                        "{\"code\":20404,\"message\":\"The requested resource /2010-04-01/"
                        "Accounts/" ACCOUNT "/Calls/CA00000000000000000000000000000000.json "
                        "was not found\",\"more_info\":\"https://www.twilio.com/docs/errors/"
                        "20404\",\"status\":404}");
    free(r.body);
    /* JSON only; unknown resources; another account. */
    assert_int_equal(rest(fx, "GET", "Queues", NULL, &r), 404);
    free(r.body);
    assert_int_equal(rest(fx, "GET", "Queues.xml", NULL, &r), 404);
    free(r.body);
    assert_int_equal(rest(fx, "GET", "Conferences.json", NULL, &r), 404);
    free(r.body);
    assert_int_equal(rest(fx, "GET", "Queues/QU00000000000000000000000000000000.json", NULL, &r),
                     404);
    free(r.body);
    assert_int_equal(rest(fx, "GET", "Queues//Members.json", NULL, &r), 404);
    free(r.body);
    snprintf(url, sizeof(url),
             "%s/2010-04-01/Accounts/AC99999999999999999999999999999999/Queues.json", fx->sim_base);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, ACCOUNT, TOKEN, NULL, &r), 404);
    free(r.body);
    assert_int_equal(rest(fx, "PUT", "Queues.json", "", &r), 405);
    free(r.body);
}

/* ---- the spec's examples (tests/data/twilio_api_v2010_examples.json) ---- */

static json_t *spec_example(const char *path, const char *name)
{
    static json_t *spec;
    if (!spec) {
        char file[1024];
        snprintf(file, sizeof(file), "%s/tests/data/twilio_api_v2010_examples.json", CG_SOURCE_DIR);
        json_error_t e;
        spec = json_load_file(file, 0, &e);
        if (!spec)
            fail_msg("%s: %s (line %d)", file, e.text, e.line);
    }
    json_t *v = json_object_get(json_object_get(json_object_get(spec, "examples"), path), name);
    if (!v)
        fail_msg("no example %s for %s", name, path);
    return v;
}

/* The account and its numbers: the scenario's defaults, a correctly set
 * up deployment under the public URL, in the spec's member order. */
static void test_rest_account_and_numbers(void **state)
{
    struct fx *fx = *state;
    struct resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/" ACCOUNT ".json", fx->sim_base);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, ACCOUNT, TOKEN, NULL, &r), 200);
    json_t *j = json_of(&r);
    assert_string_equal(cg_json_str(j, "sid"), ACCOUNT);
    assert_string_equal(cg_json_str(j, "status"), "active");
    assert_string_equal(cg_json_str(j, "friendly_name"), "callgate-sim");
    assert_string_equal(cg_json_str(j, "uri"), "/2010-04-01/Accounts/" ACCOUNT ".json");
    static const char *const akeys[] = {"auth_token",
                                        "date_created",
                                        "friendly_name",
                                        "owner_account_sid",
                                        "sid",
                                        "status",
                                        "subresource_uris",
                                        "type",
                                        "uri",
                                        NULL};
    assert_key_order(r.body, akeys);
    cgt_assert_like_spec("Account", spec_example("/2010-04-01/Accounts/{Sid}.json", "fetch"), j,
                         NULL);
    json_decref(j);
    free(r.body);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, ACCOUNT, "wrong", NULL, &r), 401);
    assert_non_null(strstr(r.body, "\"code\":20003"));
    free(r.body);
    assert_int_equal(http(fx, "POST", url, "", NULL, ACCOUNT, TOKEN, NULL, &r), 405);
    free(r.body);

    assert_int_equal(
        rest(fx, "GET", "IncomingPhoneNumbers.json?PhoneNumber=%2B15550100000", NULL, &r), 200);
    j = json_of(&r);
    json_t *n = json_array_get(json_object_get(j, "incoming_phone_numbers"), 0);
    assert_non_null(n);
    assert_string_equal(cg_json_str(n, "phone_number"), "+15550100000");
    assert_string_equal(cg_json_str(n, "sid"), "PN00000000000000000000000000000001");
    assert_string_equal(cg_json_str(n, "voice_url"), PUBLIC "/incoming");
    assert_string_equal(cg_json_str(n, "voice_method"), "POST");
    assert_string_equal(cg_json_str(n, "status_callback"), PUBLIC "/call-status");
    assert_string_equal(cg_json_str(n, "status_callback_method"), "POST");
    cgt_assert_like_spec(
        "IncomingPhoneNumbers",
        spec_example("/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "readFull"), j,
        NULL);
    assert_string_equal(cg_json_str(j, "uri"),
                        "/2010-04-01/Accounts/" ACCOUNT
                        "/IncomingPhoneNumbers.json?PhoneNumber=%2B15550100000&PageSize=50&Page=0");
    json_decref(j);
    free(r.body);
    /* Another number: an empty page, not a 404. */
    assert_int_equal(
        rest(fx, "GET", "IncomingPhoneNumbers.json?PhoneNumber=%2B15550100009", NULL, &r), 200);
    j = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(j, "incoming_phone_numbers")), 0);
    json_decref(j);
    free(r.body);
}

static void test_rest_queues(void **state)
{
    struct fx *fx = *state;
    struct resp r;
    /* Create. */
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=alpha&MaxSize=20", &r), 201);
    static const char *const queue_keys[] = {
        "account_sid",   "average_wait_time", "current_size", "date_created", "date_updated",
        "friendly_name", "max_size",          "sid",          "uri",          NULL};
    assert_key_order(r.body, queue_keys);
    json_t *j = json_of(&r);
    long long v = -1;
    assert_int_equal(cg_json_int(j, "max_size", &v), 0);
    assert_int_equal(v, 20);
    assert_int_equal(cg_json_int(j, "current_size", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cg_json_int(j, "average_wait_time", &v), 0);
    assert_non_null(strstr(cg_json_str(j, "date_created"), " +0000"));
    char sid[35];
    snprintf(sid, sizeof(sid), "%s", cg_json_str(j, "sid"));
    assert_int_equal(strlen(sid), 34);
    assert_memory_equal(sid, "QU", 2);
    json_decref(j);
    free(r.body);
    /* A fetch, as doctor reads it, against the spec's example. */
    char qpath[80];
    snprintf(qpath, sizeof(qpath), "Queues/%s.json", sid);
    assert_int_equal(rest(fx, "GET", qpath, NULL, &r), 200);
    j = json_of(&r);
    cgt_assert_like_spec(
        "Queue", spec_example("/2010-04-01/Accounts/{AccountSid}/Queues/{Sid}.json", "fetch"), j,
        NULL);
    json_decref(j);
    free(r.body);
    /* Defaults to the scenario's size. */
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=beta", &r), 201);
    j = json_of(&r);
    assert_int_equal(cg_json_int(j, "max_size", &v), 0);
    assert_int_equal(v, 10);
    json_decref(j);
    free(r.body);
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=gamma", &r), 201);
    free(r.body);

    /* Refusals. */
    assert_int_equal(rest(fx, "POST", "Queues.json", "MaxSize=3", &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=alpha", &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=x&MaxSize=5001", &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=x&MaxSize=ten", &r), 400);
    free(r.body);
    char name[100];
    memset(name, 'n', 65);
    name[65] = '\0';
    char *body = form1("FriendlyName", name, NULL, NULL);
    assert_int_equal(rest(fx, "POST", "Queues.json", body, &r), 400);
    free(r.body);
    free(body);

    /* Fetch, update, Enqueue by name finds the REST-created queue. */
    char path[128];
    snprintf(path, sizeof(path), "Queues/%s.json", sid);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 200);
    free(r.body);
    assert_int_equal(rest(fx, "POST", path, "MaxSize=30", &r), 200);
    j = json_of(&r);
    assert_int_equal(cg_json_int(j, "max_size", &v), 0);
    assert_int_equal(v, 30);
    json_decref(j);
    free(r.body);
    assert_string_equal(sim_twilio_queue_sid(&fx->w, "alpha"), sid);
    assert_null(sim_twilio_queue_sid(&fx->w, ""));

    /* Paging: 2 per page over 3 queues. */
    assert_int_equal(rest(fx, "GET", "Queues.json?PageSize=2", NULL, &r), 200);
    j = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(j, "queues")), 2);
    assert_int_equal(cg_json_int(j, "page_size", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(cg_json_int(j, "end", &v), 0);
    assert_int_equal(v, 1);
    assert_true(json_is_null(json_object_get(j, "previous_page_uri")));
    const char *next = cg_json_str(j, "next_page_uri");
    assert_non_null(next);
    assert_non_null(strstr(next, "PageSize=2&Page=1&PageToken=PAQU"));
    char url[512];
    snprintf(url, sizeof(url), "%s%s", fx->sim_base, next);
    json_decref(j);
    free(r.body);
    assert_int_equal(http(fx, "GET", url, NULL, NULL, ACCOUNT, TOKEN, NULL, &r), 200);
    j = json_of(&r);
    json_t *qs = json_object_get(j, "queues");
    assert_int_equal(json_array_size(qs), 1);
    assert_string_equal(cg_json_str(json_array_get(qs, 0), "friendly_name"), "gamma");
    assert_int_equal(cg_json_int(j, "start", &v), 0);
    assert_int_equal(v, 2);
    assert_true(json_is_null(json_object_get(j, "next_page_uri")));
    assert_non_null(cg_json_str(j, "previous_page_uri"));
    json_decref(j);
    free(r.body);
    assert_int_equal(rest(fx, "GET", "Queues.json?PageToken=garbage", NULL, &r), 400);
    j = json_of(&r);
    assert_int_equal(cg_json_int(j, "code", &v), 0);
    assert_int_equal(v, 21481);
    json_decref(j);
    free(r.body);
    assert_int_equal(rest(fx, "GET", "Queues.json?PageSize=0", NULL, &r), 400);
    free(r.body);
    assert_int_equal(rest(fx, "GET", "Queues.json?PageSize=1001", NULL, &r), 400);
    free(r.body);

    /* Members paging, then delete rules. */
    fx->incoming = "<Response><Enqueue>alpha</Enqueue></Response>";
    for (int i = 0; i < 3; i++)
        new_call(&fx->w, "+15550000001", 1, -1);
    assert_int_equal(wait_waiting(fx, 3, 2000), 0);
    snprintf(path, sizeof(path), "Queues/%s/Members.json?PageSize=2&Page=1", sid);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 200);
    j = json_of(&r);
    json_t *ms = json_object_get(j, "queue_members");
    assert_int_equal(json_array_size(ms), 1);
    assert_int_equal(cg_json_int(json_array_get(ms, 0), "position", &v), 0);
    assert_int_equal(v, 3);
    json_decref(j);
    free(r.body);
    snprintf(path, sizeof(path), "Queues/%s.json", sid);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 200);
    j = json_of(&r);
    assert_int_equal(cg_json_int(j, "current_size", &v), 0);
    assert_int_equal(v, 3);
    json_decref(j);
    free(r.body);
    assert_int_equal(rest(fx, "DELETE", path, NULL, &r), 400);
    free(r.body);
    const char *gamma = sim_twilio_queue_sid(&fx->w, "gamma");
    snprintf(path, sizeof(path), "Queues/%s.json", gamma);
    assert_int_equal(rest(fx, "DELETE", path, NULL, &r), 204);
    free(r.body);
    assert_int_equal(rest(fx, "GET", path, NULL, &r), 404);
    free(r.body);

    /* Calls list, newest first. */
    assert_int_equal(rest(fx, "GET", "Calls.json?Status=in-progress", NULL, &r), 200);
    j = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(j, "calls")), 3);
    json_decref(j);
    free(r.body);
}

static void test_rest_faults(void **state)
{
    struct fx *fx = *state;
    struct resp r;
    fx->sc.twilio_rate_429 = 1;
    int with_retry = 0;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(rest(fx, "GET", "Queues.json", NULL, &r), 429);
        assert_string_equal(r.body,
                            "{\"code\":20429,\"message\":\"Too Many Requests\",\"more_info\":"
                            "\"https://www.twilio.com/docs/errors/20429\",\"status\":429}");
        if (r.retry_after == 1.0)
            with_retry++;
        free(r.body);
    }
    /* Sometimes with Retry-After, sometimes without. */
    assert_true(with_retry > 0 && with_retry < 8);
    /* A refused request is never processed. */
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=x", &r), 429);
    free(r.body);
    assert_null(sim_tw_queue_by_name(fx->w.twilio, "x"));

    fx->sc.twilio_rate_429 = 0;
    fx->sc.twilio_rate_5xx = 1;
    for (int i = 0; i < 4; i++) {
        long st = rest(fx, "GET", "Queues.json", NULL, &r);
        assert_true(st == 500 || st == 503);
        json_t *j = json_of(&r);
        long long code = 0;
        assert_int_equal(cg_json_int(j, "code", &code), 0);
        assert_int_equal(code, st == 500 ? 20500 : 20503);
        json_decref(j);
        free(r.body);
    }

    fx->sc.twilio_rate_5xx = 0;
    fx->sc.twilio_latency.kind = SIM_DIST_CONST;
    fx->sc.twilio_latency.a = 0.2;
    uint64_t t0 = cgt_now_ms();
    assert_int_equal(rest(fx, "POST", "Queues.json", "FriendlyName=slow", &r), 201);
    free(r.body);
    assert_true(cgt_now_ms() - t0 >= 190);
    /* A request still held back when Twilio goes away is answered 503. */
    char url[256];
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/" ACCOUNT "/Queues.json", fx->sim_base);
    struct cg_httpc_request req = {.method = "GET",
                                   .url = url,
                                   .basic_user = ACCOUNT,
                                   .basic_pass = TOKEN,
                                   .timeout_ms = 5000};
    memset(&r, 0, sizeof(r));
    assert_int_equal(cg_httpc_send(fx->client, &req, on_resp, &r), 0);
    cgt_run_for(fx->base, 50);
    sim_twilio_free(fx->w.twilio);
    fx->w.twilio = NULL;
    assert_int_equal(cgt_run_until(fx->base, &r.done, 3000), 0);
    assert_int_equal(r.status, 503);
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_wait_and_admit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_dequeue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patience_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_with_get_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_without_action, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiturl_disallowed_verb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiturl_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_and_stream_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_hangup_and_completed_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_record_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_marks_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_auth_and_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_account_and_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
