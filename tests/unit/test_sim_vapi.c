/*
 * Unit tests for sim/vapi.c: the Vapi API on a loopback cg_httpd in this
 * process, with a fake gate receiving its server messages.
 */
#include "harness.h"
#include "simfix.h"

#include "hooks.h"
#include "report.h"
#include "rng.h"
#include "sim.h"
#include "vapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "base/json.h"

#define MAXMSG 32
#define KEY    "Authorization: Bearer sim-vapi-key"
#define JSONCT "application/json"

#define GOOD_BODY                                                                                  \
    "{\"phoneNumberId\":\"pn-1\",\"assistantId\":\"as-1\",\"phoneCallProviderBypassEnabled\":"     \
    "true,"                                                                                        \
    "\"customer\":{\"number\":\"+15551234567\"},\"assistantOverrides\":{\"metadata\":"             \
    "{\"twilioCallSid\":\"CA1\"},\"variableValues\":{\"twilioCallSid\":\"CA1\"}}}"

struct msg {
    json_t *body;
    char *secret;
    uint64_t at_ms;
};

struct fx {
    struct event_base *base;
    struct sim_scenario sc;
    struct sim_world w;
    struct cg_httpd *gate;
    char gate_url[64];
    char api[64];
    struct msg msgs[MAXMSG];
    int nmsgs;
};

/* No Twilio engine here: the world's stream_ended hook records what Vapi
 * tells it. */
static char ended_sid[64];
static int ended_calls;

static void stream_ended(struct sim_world *w, const char *call_sid)
{
    (void)w;
    snprintf(ended_sid, sizeof(ended_sid), "%s", call_sid);
    ended_calls++;
}

static void on_gate(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    if (f->nmsgs < MAXMSG) {
        struct msg *m = &f->msgs[f->nmsgs++];
        size_t len;
        const char *b = cg_http_req_body(req, &len);
        char err[128];
        m->body = cg_json_parse(b, len, CG_JSON_MAX_DEPTH, err, sizeof(err));
        const char *s = cg_http_req_header(req, "x-vapi-secret");
        m->secret = s ? cg_strdup(s) : NULL;
        m->at_ms = cg_mono_ms();
    }
    cg_http_reply_json(req, 200, "{}");
}

static void fx_init(struct fx *f, const char *scenario)
{
    memset(f, 0, sizeof(*f));
    struct sim_world *w = &f->w;
    simfix_world(w, &f->sc, scenario);
    f->base = w->base;
    w->stream_ended = stream_ended;
    f->gate = simfix_httpd(f->base);
    assert_int_equal(cg_httpd_route(f->gate, "/call-ended", CG_HTTP_POST, on_gate, f), 0);
    simfix_listen(f->gate, f->gate_url, sizeof(f->gate_url));
    const char *inst[1] = {f->gate_url};
    w->hooks = sim_hooks_new(w, "https://gate.example.com", inst, 1);
    w->httpd = simfix_httpd(f->base);
    w->vapi = sim_vapi_new(w);
    assert_non_null(w->vapi);
    simfix_listen(w->httpd, f->api, sizeof(f->api));
    ended_sid[0] = '\0';
    ended_calls = 0;
}

static void fx_free(struct fx *f)
{
    struct sim_world *w = &f->w;
    sim_hooks_free(w->hooks);
    sim_vapi_free(w->vapi);
    cg_httpd_free(w->httpd);
    cg_httpd_free(f->gate);
    simfix_world_free(w, &f->sc);
    for (int i = 0; i < f->nmsgs; i++) {
        json_decref(f->msgs[i].body);
        free(f->msgs[i].secret);
    }
}

/* ---- async HTTP against the in-process API ---- */

static void http(struct fx *f, const char *method, const char *path, const char *auth,
                 const char *ctype, const char *body, struct simfix_resp *r)
{
    simfix_http(&f->w, f->api, method, path, auth, ctype, body, r);
}

static void post_call(struct fx *f, const char *body, struct simfix_resp *r)
{
    http(f, "POST", "/call", KEY, JSONCT, body, r);
}

static long long integer(const json_t *j, const char *path)
{
    long long v = -999;
    cg_json_int(j, path, &v);
    return v;
}

/* Runs until the gate has n messages (or 5 s). */
static void wait_msgs(struct fx *f, int n)
{
    uint64_t deadline = cg_mono_ms() + 5000;
    while (f->nmsgs < n && cg_mono_ms() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(f->nmsgs, n);
}

static long counter(struct fx *f, const char *name)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    sim_report_finish(f->w.report, 0, 0, mem);
    fclose(mem);
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    free(buf);
    assert_non_null(root);
    json_t *v = json_object_get(json_object_get(root, "counters"), name);
    if (!v)
        v = json_object_get(root, name);
    long n = v ? (long)json_integer_value(v) : 0;
    json_decref(root);
    return n;
}

static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return 0;
        }
    }
    return 1;
}

static void test_auth(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    struct simfix_resp r;
    http(&f, "POST", "/call", NULL, JSONCT, GOOD_BODY, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(str(r.json, "error"), "Unauthorized");
    assert_int_equal(integer(r.json, "statusCode"), 401);
    assert_non_null(strstr(str(r.json, "message"), "Invalid Key"));
    json_decref(r.json);
    http(&f, "POST", "/call", "Authorization: Bearer wrong", JSONCT, GOOD_BODY, &r);
    assert_int_equal(r.status, 401);
    json_decref(r.json);
    http(&f, "GET", "/call", "Authorization: Basic c2ltOnNpbQ==", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    json_decref(r.json);
    http(&f, "GET", "/call/00000000-0000-4000-8000-000000000000", NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    json_decref(r.json);
    assert_int_equal(sim_vapi_live(&f.w), 0);
    fx_free(&f);
}

/* GET /assistant/{id} and /phone-number/{id}: the scenario's accounts,
 * with the members the OpenAPI spec requires (Assistant: id, orgId,
 * createdAt, updatedAt; TwilioPhoneNumber: provider, id, orgId, createdAt,
 * updatedAt, number, twilioAccountSid). */
static void test_account_resources(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    struct simfix_resp r;
    http(&f, "GET", "/assistant/sim-assistant", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    static const char *const areq[] = {"id", "orgId", "createdAt", "updatedAt", NULL};
    for (size_t i = 0; areq[i]; i++)
        assert_non_null(cg_json_str(r.json, areq[i]));
    assert_string_equal(str(r.json, "id"), "sim-assistant");
    assert_string_equal(str(r.json, "server.url"), "https://gate.example.com/call-ended");
    json_t *msgs = json_object_get(r.json, "serverMessages");
    assert_true(json_is_array(msgs));
    int su = 0, eocr = 0;
    size_t i;
    json_t *it;
    json_array_foreach (msgs, i, it) {
        su |= strcmp(json_string_value(it), "status-update") == 0;
        eocr |= strcmp(json_string_value(it), "end-of-call-report") == 0;
    }
    assert_true(su && eocr);
    json_decref(r.json);
    http(&f, "GET", "/phone-number/sim-phone-number", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    static const char *const preq[] = {
        "provider", "id", "orgId", "createdAt", "updatedAt", "number", "twilioAccountSid", NULL};
    for (i = 0; preq[i]; i++)
        assert_non_null(cg_json_str(r.json, preq[i]));
    assert_string_equal(str(r.json, "provider"), "twilio");
    assert_string_equal(str(r.json, "number"), "+15550100000");
    assert_null(json_object_get(r.json, "assistantId"));
    json_decref(r.json);

    /* Unknown ids, a wrong key. */
    http(&f, "GET", "/assistant/other", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_int_equal(integer(r.json, "statusCode"), 404);
    json_decref(r.json);
    http(&f, "GET", "/phone-number/other", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    json_decref(r.json);
    http(&f, "GET", "/assistant/sim-assistant", "Authorization: Bearer wrong", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(str(r.json, "message"), "Invalid Key"));
    json_decref(r.json);
    http(&f, "GET", "/phone-number/sim-phone-number", NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    json_decref(r.json);
    fx_free(&f);

    /* What a scenario says instead. */
    fx_init(&f, "{\"accounts\":{\"vapi\":{\"assistant\":{\"id\":\"as-1\",\"name\":\"Front desk\","
                "\"server_url\":null,\"server_messages\":null},"
                "\"phone_number\":{\"id\":\"pn-1\",\"number\":\"+15550100007\","
                "\"assistant_id\":\"as-2\"}}}}");
    http(&f, "GET", "/assistant/as-1", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str(r.json, "name"), "Front desk");
    assert_null(json_object_get(r.json, "server"));
    assert_null(json_object_get(r.json, "serverMessages"));
    json_decref(r.json);
    http(&f, "GET", "/phone-number/pn-1", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str(r.json, "number"), "+15550100007");
    assert_string_equal(str(r.json, "assistantId"), "as-2");
    json_decref(r.json);
    fx_free(&f);
}

/* The response is 400 and its message array contains want. */
static void expect_400(struct fx *f, const char *ctype, const char *body, const char *want)
{
    struct simfix_resp r;
    http(f, "POST", "/call", KEY, ctype, body, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(r.json, "error"), "Bad Request");
    assert_int_equal(integer(r.json, "statusCode"), 400);
    json_t *m = json_object_get(r.json, "message");
    char *dump = cg_json_dumps(m);
    if (!strstr(dump, want))
        fail_msg("message %s lacks \"%s\"", dump, want);
    free(dump);
    json_decref(r.json);
}

static void test_validation(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    expect_400(&f, JSONCT, "{}", "phoneNumberId must be a string");
    expect_400(&f, JSONCT, "{}", "assistantId must be a string");
    expect_400(&f, JSONCT, "{}", "customer must be an object");
    expect_400(
        &f, JSONCT,
        "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"customer\":{\"number\":\"+1555\"}}",
        "phoneCallProviderBypassEnabled must be true");
    expect_400(&f, JSONCT,
               "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"phoneCallProviderBypassEnabled\":"
               "true,\"customer\":{\"number\":\"12\"}}",
               "customer.number must be longer than or equal to 3 characters");
    expect_400(&f, JSONCT,
               "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"phoneCallProviderBypassEnabled\":"
               "true,\"customer\":{\"number\":\"12345678901234567890123456789012345678901\"}}",
               "shorter than or equal to 40");
    expect_400(&f, JSONCT,
               "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"phoneCallProviderBypassEnabled\":"
               "true,\"customer\":{\"number\":\"+15551234567\"},\"assistantOverides\":{}}",
               "property assistantOverides should not exist");
    expect_400(&f, JSONCT,
               "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"phoneCallProviderBypassEnabled\":"
               "true,\"customer\":{\"number\":\"+15551234567\"},"
               "\"assistantOverrides\":{\"maxDurationSeconds\":5}}",
               "maxDurationSeconds must not be less than 10");
    /* Vapi's customer number pattern: with the E.164 check off only
     * ^\+?[a-zA-Z0-9]+$ (a Twilio Client or SIP From is refused), with it
     * on (the default) E.164. */
    expect_400(&f, JSONCT,
               "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"phoneCallProviderBypassEnabled\":"
               "true,\"customer\":{\"number\":\"client:alice\",\"numberE164CheckEnabled\":false}}",
               "customer.number must match /^");
    expect_400(&f, JSONCT,
               "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"phoneCallProviderBypassEnabled\":"
               "true,\"customer\":{\"number\":\"sip:bob@pbx.example.com\","
               "\"numberE164CheckEnabled\":false}}",
               "regular expression");
    expect_400(&f, JSONCT,
               "{\"phoneNumberId\":\"p\",\"assistantId\":\"a\",\"phoneCallProviderBypassEnabled\":"
               "true,\"customer\":{\"number\":\"anonymous\"}}",
               "customer.number must be a valid phone number in the E.164 format");
    expect_400(&f, JSONCT, "{\"phoneNumberId\":", "Invalid JSON body");
    expect_400(&f, "application/x-www-form-urlencoded", "phoneNumberId=p",
               "phoneNumberId must be a string");
    /* message is a plain string for a broken body. */
    struct simfix_resp r;
    http(&f, "POST", "/call", KEY, JSONCT, "[1]", &r);
    assert_int_equal(r.status, 400);
    assert_true(json_is_string(json_object_get(r.json, "message")));
    json_decref(r.json);
    assert_int_equal(sim_vapi_live(&f.w), 0);
    assert_int_equal(counter(&f, "other_rejections"), 14);
    fx_free(&f);
}

static void test_created(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    struct simfix_resp r;
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 201);
    const char *id = str(r.json, "id");
    assert_true(is_uuid(id));
    assert_true(strlen(str(r.json, "orgId")) > 0);
    assert_string_equal(str(r.json, "type"), "inboundPhoneCall");
    assert_string_equal(str(r.json, "status"), "queued");
    assert_string_equal(str(r.json, "phoneCallProvider"), "twilio");
    int b = 0;
    assert_int_equal(cg_json_bool(r.json, "phoneCallProviderBypassEnabled", &b), 0);
    assert_true(b);
    char twiml[256];
    snprintf(twiml, sizeof(twiml),
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream "
             "url=\"wss://sim.local/%s/transport\"/></Connect></Response>",
             id);
    assert_string_equal(str(r.json, "phoneCallProviderDetails.twiml"), twiml);
    assert_int_equal(cg_json_bool(r.json, "subscriptionLimits.concurrencyBlocked", &b), 0);
    assert_false(b);
    assert_int_equal(integer(r.json, "subscriptionLimits.concurrencyLimit"), 10);
    assert_int_equal(integer(r.json, "subscriptionLimits.remainingConcurrentCalls"), 9);
    assert_string_equal(str(r.json, "customer.number"), "+15551234567");
    assert_string_equal(str(r.json, "assistantId"), "as-1");
    assert_string_equal(str(r.json, "phoneNumberId"), "pn-1");
    assert_string_equal(str(r.json, "assistantOverrides.metadata.twilioCallSid"), "CA1");
    const char *created = str(r.json, "createdAt");
    assert_int_equal(strlen(created), 24);
    assert_int_equal(created[23], 'Z');
    assert_string_equal(str(r.json, "updatedAt"), created);
    assert_null(json_object_get(r.json, "phoneCallProviderId"));
    assert_int_equal(sim_vapi_live(&f.w), 1);
    assert_int_equal(sim_vapi_created(f.w.vapi), 1);
    assert_int_equal(sim_vapi_waiting_stream(f.w.vapi), 1);
    json_decref(r.json);
    fx_free(&f);

    /* Same seed, same ids: runs repeat. */
    char first[40];
    fx_init(&f, "{}");
    post_call(&f, GOOD_BODY, &r);
    snprintf(first, sizeof(first), "%s", str(r.json, "id"));
    json_decref(r.json);
    fx_free(&f);
    fx_init(&f, "{}");
    post_call(&f, GOOD_BODY, &r);
    assert_string_equal(str(r.json, "id"), first);
    json_decref(r.json);
    fx_free(&f);
}

static void test_overlimit_400(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"limit\":3,\"external_calls\":1}}");
    struct simfix_resp r;
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(integer(r.json, "subscriptionLimits.remainingConcurrentCalls"), 1);
    json_decref(r.json);
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(integer(r.json, "subscriptionLimits.remainingConcurrentCalls"), 0);
    json_decref(r.json);
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(r.json, "message"), "Over Concurrency Limit.");
    assert_string_equal(str(r.json, "error"), "Bad Request");
    assert_int_equal(integer(r.json, "statusCode"), 400);
    json_decref(r.json);
    assert_int_equal(sim_vapi_live(&f.w), 3);
    assert_int_equal(sim_vapi_peak(f.w.vapi), 3);
    assert_int_equal(counter(&f, "overlimit_rejections"), 1);
    assert_int_equal(counter(&f, "peak_vapi_concurrency"), 3);
    fx_free(&f);
}

static json_t *msg_of(struct fx *f, int i)
{
    return json_object_get(f->msgs[i].body, "message");
}

static void test_overlimit_blocked(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"limit\":1,\"overlimit_mode\":\"blocked\",\"end_lag_s\":0.05,"
                "\"report_lag_s\":0.05}}");
    struct simfix_resp r;
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 201);
    json_decref(r.json);
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 201);
    int b = 0;
    assert_int_equal(cg_json_bool(r.json, "subscriptionLimits.concurrencyBlocked", &b), 0);
    assert_true(b);
    assert_int_equal(integer(r.json, "subscriptionLimits.remainingConcurrentCalls"), 0);
    assert_null(json_object_get(r.json, "phoneCallProviderDetails"));
    char id[40], url[128];
    snprintf(id, sizeof(id), "%s", str(r.json, "id"));
    json_decref(r.json);
    snprintf(url, sizeof(url), "wss://sim.local/%s/transport", id);
    assert_int_equal(sim_vapi_stream_connect(&f.w, url, "CA2"), -1);
    assert_int_equal(sim_vapi_live(&f.w), 1);
    wait_msgs(&f, 2);
    json_t *m = msg_of(&f, 0);
    assert_string_equal(str(m, "type"), "status-update");
    assert_string_equal(str(m, "status"), "ended");
    assert_string_equal(str(m, "endedReason"),
                        "call.start.error-subscription-concurrency-limit-reached");
    assert_string_equal(str(m, "call.id"), id);
    m = msg_of(&f, 1);
    assert_string_equal(str(m, "type"), "end-of-call-report");
    assert_string_equal(str(m, "endedReason"),
                        "call.start.error-subscription-concurrency-limit-reached");
    assert_int_equal(sim_vapi_live(&f.w), 1);
    assert_int_equal(counter(&f, "overlimit_rejections"), 1);
    fx_free(&f);
}

static void test_injected_faults(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"rate_429\":1}}");
    int with = 0, without = 0;
    for (int i = 0; i < 16; i++) {
        struct simfix_resp r;
        post_call(&f, GOOD_BODY, &r);
        assert_int_equal(r.status, 429);
        assert_string_equal(str(r.json, "message"), "Too Many Requests");
        assert_string_equal(str(r.json, "error"), "Too Many Requests");
        assert_int_equal(integer(r.json, "statusCode"), 429);
        if (r.retry_after == 1)
            with++;
        else if (r.retry_after < 0)
            without++;
        json_decref(r.json);
    }
    assert_true(with > 0 && without > 0);
    assert_int_equal(sim_vapi_live(&f.w), 0);
    fx_free(&f);

    fx_init(&f, "{\"vapi\":{\"rate_500\":1}}");
    struct simfix_resp r;
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 500);
    assert_string_equal(str(r.json, "message"), "Internal server error");
    assert_int_equal(integer(r.json, "statusCode"), 500);
    assert_null(json_object_get(r.json, "error"));
    json_decref(r.json);
    assert_int_equal(sim_vapi_live(&f.w), 0);
    fx_free(&f);

    fx_init(&f, "{\"vapi\":{\"rate_overlimit\":1}}");
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(r.json, "message"), "Over Concurrency Limit.");
    json_decref(r.json);
    assert_int_equal(counter(&f, "overlimit_rejections"), 1);
    fx_free(&f);

    fx_init(&f, "{\"vapi\":{\"latency\":{\"dist\":\"const\",\"value_s\":0.2}}}");
    uint64_t t0 = cg_mono_ms();
    post_call(&f, GOOD_BODY, &r);
    assert_int_equal(r.status, 201);
    assert_true(cg_mono_ms() - t0 >= 195);
    json_decref(r.json);
    fx_free(&f);
}

static void test_no_stream_timeout(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"no_stream_timeout_s\":0.2,\"report_lag_s\":0.1}}");
    struct simfix_resp r;
    uint64_t t0 = cg_mono_ms();
    post_call(&f, GOOD_BODY, &r);
    char id[40];
    snprintf(id, sizeof(id), "%s", str(r.json, "id"));
    json_decref(r.json);
    wait_msgs(&f, 2);
    /* Lower bounds from the request, not between two deliveries: a busy
     * machine may deliver the first late and the second on time. */
    assert_true(f.msgs[0].at_ms - t0 >= 195);
    assert_true(f.msgs[1].at_ms - t0 >= 295);
    for (int i = 0; i < 2; i++) {
        assert_non_null(f.msgs[i].secret);
        assert_string_equal(f.msgs[i].secret, "sim-vapi-secret");
        json_t *m = msg_of(&f, i);
        assert_string_equal(str(m, "endedReason"),
                            "phone-call-provider-bypass-enabled-but-no-call-received");
        assert_string_equal(str(m, "call.id"), id);
        assert_string_equal(str(m, "call.status"), "ended");
        assert_true(integer(m, "timestamp") > 1600000000000LL);
    }
    assert_string_equal(str(msg_of(&f, 0), "type"), "status-update");
    assert_string_equal(str(msg_of(&f, 1), "type"), "end-of-call-report");
    assert_int_equal(sim_vapi_live(&f.w), 0);
    assert_int_equal(sim_vapi_waiting_stream(f.w.vapi), 0);
    assert_int_equal(counter(&f, "orphan_vapi_calls"), 1);
    char url[128];
    snprintf(url, sizeof(url), "wss://sim.local/%s/transport", id);
    assert_int_equal(sim_vapi_stream_connect(&f.w, url, "CA1"), -1);
    fx_free(&f);
}

static void test_stream_lifecycle(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"end_lag_s\":0.15,\"report_lag_s\":0.1}}");
    struct simfix_resp r;
    post_call(&f, GOOD_BODY, &r);
    char id[40], url[128], path[128];
    snprintf(id, sizeof(id), "%s", str(r.json, "id"));
    snprintf(url, sizeof(url), "%s", str(r.json, "phoneCallProviderDetails.twiml"));
    json_decref(r.json);
    snprintf(url, sizeof(url), "wss://sim.local/%s/transport", id);
    assert_int_equal(sim_vapi_stream_connect(&f.w, "wss://sim.local/nope/transport", "CA1"), -1);
    assert_int_equal(sim_vapi_stream_connect(&f.w, "", "CA1"), -1);
    assert_int_equal(sim_vapi_stream_connect(&f.w, url, "CA1"), 0);
    assert_int_equal(sim_vapi_stream_connect(&f.w, url, "CA1"), -1); /* only once */
    wait_msgs(&f, 1);
    json_t *m = msg_of(&f, 0);
    assert_string_equal(str(m, "type"), "status-update");
    assert_string_equal(str(m, "status"), "in-progress");
    assert_null(json_object_get(m, "endedReason"));
    assert_string_equal(str(m, "call.phoneCallProviderId"), "CA1");
    assert_string_equal(str(m, "customer.number"), "+15551234567");

    snprintf(path, sizeof(path), "/call/%s", id);
    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str(r.json, "status"), "in-progress");
    assert_string_equal(str(r.json, "phoneCallProviderId"), "CA1");
    assert_true(strlen(str(r.json, "startedAt")) == 24);
    json_decref(r.json);

    cgt_run_for(f.base, 100);
    uint64_t t0 = cg_mono_ms();
    sim_vapi_stream_closed(&f.w, id);
    sim_vapi_stream_closed(&f.w, id); /* idempotent */
    sim_vapi_stream_closed(&f.w, "unknown");
    assert_int_equal(sim_vapi_live(&f.w), 1); /* until the media stream closes */
    wait_msgs(&f, 3);
    /* Lower bounds from the hang-up (see test_no_stream_timeout). */
    assert_true(f.msgs[1].at_ms - t0 >= 145);
    assert_true(f.msgs[2].at_ms - t0 >= 245);
    m = msg_of(&f, 1);
    assert_string_equal(str(m, "type"), "status-update");
    assert_string_equal(str(m, "status"), "ended");
    assert_string_equal(str(m, "endedReason"), "customer-ended-call");
    m = msg_of(&f, 2);
    assert_string_equal(str(m, "type"), "end-of-call-report");
    assert_string_equal(str(m, "endedReason"), "customer-ended-call");
    assert_string_equal(str(m, "call.endedReason"), "customer-ended-call");
    assert_string_equal(str(m, "call.phoneCallProviderId"), "CA1");
    assert_true(strlen(str(m, "startedAt")) == 24 && strlen(str(m, "endedAt")) == 24);
    assert_true(integer(m, "durationMs") >= 240);
    double secs = 0;
    assert_int_equal(cg_json_num(m, "durationSeconds", &secs), 0);
    assert_true(secs >= 0.24);
    assert_non_null(json_object_get(m, "durationMinutes"));
    assert_true(json_is_object(json_object_get(m, "artifact")));
    assert_true(json_is_object(json_object_get(m, "analysis")));
    assert_int_equal(sim_vapi_live(&f.w), 0);
    assert_int_equal(ended_calls, 0);

    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_string_equal(str(r.json, "status"), "ended");
    assert_string_equal(str(r.json, "endedReason"), "customer-ended-call");
    json_decref(r.json);
    fx_free(&f);
}

static void test_max_duration_and_hang(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"max_duration_s\":0.8,\"report_lag_s\":0.05,\"hang_rate\":1}}");
    struct simfix_resp r;
    post_call(&f, GOOD_BODY, &r);
    char id[40], url[128];
    snprintf(id, sizeof(id), "%s", str(r.json, "id"));
    json_decref(r.json);
    snprintf(url, sizeof(url), "wss://sim.local/%s/transport", id);
    assert_int_equal(sim_vapi_stream_connect(&f.w, url, "CA77"), 0);
    /* The gate put it on CA77 while the metadata says CA1. */
    assert_int_equal(counter(&f, "vapi.stream_sid_mismatch"), 1);
    wait_msgs(&f, 4);
    assert_string_equal(str(msg_of(&f, 0), "status"), "in-progress");
    assert_string_equal(str(msg_of(&f, 1), "type"), "hang");
    assert_string_equal(str(msg_of(&f, 1), "call.status"), "in-progress");
    assert_string_equal(str(msg_of(&f, 2), "endedReason"), "exceeded-max-duration");
    assert_string_equal(str(msg_of(&f, 3), "type"), "end-of-call-report");
    assert_int_equal(ended_calls, 1);
    assert_string_equal(ended_sid, "CA77");
    assert_int_equal(sim_vapi_live(&f.w), 0);
    /* Twilio closing the leg afterwards changes nothing. */
    sim_vapi_stream_closed(&f.w, id);
    cgt_run_for(f.base, 100);
    assert_int_equal(f.nmsgs, 4);
    fx_free(&f);
}

/* transfers: an assistant whose call asked for phone-call-control hands
 * its caller on; one that did not never does. */
static void test_phone_call_control(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"end_lag_s\":0.05,\"report_lag_s\":0.05},"
                "\"transfers\":{\"share\":1,\"after_s\":0.1,\"weights\":{\"sip\":1},"
                "\"sip_uri\":\"sip:desk@pbx.example.com\"}}");
    const char *body =
        "{\"phoneNumberId\":\"pn-1\",\"assistantId\":\"as-1\",\"phoneCallProviderBypassEnabled\":"
        "true,\"customer\":{\"number\":\"+15551234567\"},\"assistantOverrides\":{\"metadata\":"
        "{\"twilioCallSid\":\"CA1\"},\"serverMessages\":[\"status-update\",\"phone-call-control\","
        "\"end-of-call-report\"]}}";
    struct simfix_resp r;
    post_call(&f, body, &r);
    char id[40], url[128];
    snprintf(id, sizeof(id), "%s", str(r.json, "id"));
    json_decref(r.json);
    snprintf(url, sizeof(url), "wss://sim.local/%s/transport", id);
    assert_int_equal(sim_vapi_stream_connect(&f.w, url, "CA1"), 0);
    wait_msgs(&f, 2);
    json_t *m = msg_of(&f, 1);
    assert_string_equal(str(m, "type"), "phone-call-control");
    assert_string_equal(str(m, "request"), "forward");
    assert_string_equal(str(m, "destination.type"), "sip");
    assert_string_equal(str(m, "destination.sipUri"), "sip:desk@pbx.example.com");
    assert_string_equal(str(m, "call.id"), id);
    assert_int_equal(counter(&f, "transfers.requested.sip"), 1);
    /* Twilio replaces the stream: Vapi ends the call as forwarded. */
    sim_vapi_stream_closed(&f.w, id);
    wait_msgs(&f, 4);
    assert_string_equal(str(msg_of(&f, 2), "endedReason"), "assistant-forwarded-call");
    fx_free(&f);

    /* Without phone-call-control in serverMessages: no control message. */
    fx_init(&f, "{\"transfers\":{\"share\":1,\"after_s\":0.05}}");
    post_call(&f, GOOD_BODY, &r);
    snprintf(id, sizeof(id), "%s", str(r.json, "id"));
    json_decref(r.json);
    snprintf(url, sizeof(url), "wss://sim.local/%s/transport", id);
    assert_int_equal(sim_vapi_stream_connect(&f.w, url, "CA1"), 0);
    wait_msgs(&f, 1);
    cgt_run_for(f.base, 200);
    assert_int_equal(f.nmsgs, 1);
    fx_free(&f);
}

static void test_get_one(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"visibility_lag_s\":0.3}}");
    struct simfix_resp r;
    http(&f, "GET", "/call/6f1c0000-0000-4000-8000-000000000000", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(str(r.json, "message"), "Not Found");
    assert_int_equal(integer(r.json, "statusCode"), 404);
    json_decref(r.json);
    http(&f, "GET", "/call/short", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    json_decref(r.json);
    post_call(&f, GOOD_BODY, &r);
    char path[128];
    snprintf(path, sizeof(path), "/call/%s", str(r.json, "id"));
    json_decref(r.json);
    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 404); /* not visible yet */
    json_decref(r.json);
    http(&f, "GET", "/call", KEY, NULL, NULL, &r);
    assert_int_equal(json_array_size(r.json), 0);
    json_decref(r.json);
    cgt_run_for(f.base, 320);
    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str(r.json, "status"), "queued");
    json_decref(r.json);
    fx_free(&f);
}

static void test_list(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    char ids[3][40], created[3][32];
    for (int i = 0; i < 3; i++) {
        struct simfix_resp r;
        post_call(&f, GOOD_BODY, &r);
        snprintf(ids[i], sizeof(ids[i]), "%s", str(r.json, "id"));
        snprintf(created[i], sizeof(created[i]), "%s", str(r.json, "createdAt"));
        json_decref(r.json);
        cgt_run_for(f.base, 5);
    }
    struct simfix_resp r;
    http(&f, "GET", "/call", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 3);
    /* Newest first. */
    assert_string_equal(str(json_array_get(r.json, 0), "id"), ids[2]);
    assert_string_equal(str(json_array_get(r.json, 2), "id"), ids[0]);
    json_decref(r.json);

    http(&f, "GET", "/call?limit=2", KEY, NULL, NULL, &r);
    assert_int_equal(json_array_size(r.json), 2);
    json_decref(r.json);

    char path[256];
    snprintf(path, sizeof(path), "/call?createdAtGt=%s", created[1]);
    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_int_equal(json_array_size(r.json), 1);
    assert_string_equal(str(json_array_get(r.json, 0), "id"), ids[2]);
    json_decref(r.json);
    snprintf(path, sizeof(path), "/call?createdAtLe=%s&createdAtGe=%s", created[1], created[0]);
    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_int_equal(json_array_size(r.json), 2);
    json_decref(r.json);
    snprintf(path, sizeof(path), "/call?createdAtLt=%s", created[0]);
    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_int_equal(json_array_size(r.json), 0);
    json_decref(r.json);
    /* Offsets and whole seconds are understood. */
    http(&f, "GET", "/call?createdAtGt=2000-01-01T00:00:00%2B02:00&createdAtLt=2999-01-01", KEY,
         NULL, NULL, &r);
    assert_int_equal(json_array_size(r.json), 3);
    json_decref(r.json);
    snprintf(path, sizeof(path), "/call?id=%s", ids[1]);
    http(&f, "GET", path, KEY, NULL, NULL, &r);
    assert_int_equal(json_array_size(r.json), 1);
    json_decref(r.json);

    http(&f, "GET", "/call?createdAtGt=yesterday", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    json_decref(r.json);
    http(&f, "GET", "/call?limit=5000", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    json_decref(r.json);
    http(&f, "GET", "/call?status=ended", KEY, NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    char *m = cg_json_dumps(json_object_get(r.json, "message"));
    assert_non_null(strstr(m, "property status should not exist"));
    free(m);
    json_decref(r.json);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_created),
        cmocka_unit_test(test_overlimit_400),
        cmocka_unit_test(test_overlimit_blocked),
        cmocka_unit_test(test_injected_faults),
        cmocka_unit_test(test_no_stream_timeout),
        cmocka_unit_test(test_stream_lifecycle),
        cmocka_unit_test(test_max_duration_and_hang),
        cmocka_unit_test(test_phone_call_control),
        cmocka_unit_test(test_get_one),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_account_resources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
