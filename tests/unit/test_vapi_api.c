/*
 * Unit tests for vapi_api.c: POST /call and GET /call/{id} against a
 * scripted loopback evhttp server (bodies from vapi-wire.md), server-message
 * parsing, and webhook authentication.
 */
#include "base/fmacros.h"

#include "fakescript.h"
#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/crypto.h"
#include "net/httpc.h"
#include "base/json.h"
#include "vapi/call_list.h"
#include "base/log.h"
#include "vapi/api.h"

#define KEY     "vapi-private-key-0123"
#define PHONE   "pn_7d0c2b4e"
#define ASSIST  "asst_5e1f9a"
#define CA1     "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CALL_ID "73a6da0f-c455-4bb6-bf4a-5f0634871430"
#define TWIML                                                                                      \
    "<?xml version=\\\"1.0\\\" encoding=\\\"UTF-8\\\"?><Response><Connect><Stream "                \
    "url=\\\"wss://sim.local/6f1c/transport\\\"/></Connect></Response>"
#define TWIML_PLAIN                                                                                \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream "                        \
    "url=\"wss://sim.local/6f1c/transport\"/></Connect></Response>"

/* ---- wire bodies (vapi-wire.md §1, §4) ---- */

static const char body_created[] =
    "{\"id\":\"" CALL_ID "\",\"orgId\":\"org_1\",\"type\":\"inboundPhoneCall\",\"status\":"
    "\"queued\",\"phoneCallProvider\":\"twilio\",\"phoneCallProviderBypassEnabled\":true,"
    "\"phoneCallProviderDetails\":{\"twiml\":\"" TWIML "\"},"
    "\"subscriptionLimits\":{\"concurrencyBlocked\":false,\"concurrencyLimit\":10,"
    "\"remainingConcurrentCalls\":9},\"createdAt\":\"2026-03-26T15:43:16.145Z\","
    "\"updatedAt\":\"2026-03-26T15:43:16.145Z\"}";
static const char body_blocked[] =
    "{\"id\":\"" CALL_ID "\",\"orgId\":\"org_1\",\"type\":\"inboundPhoneCall\",\"status\":"
    "\"queued\",\"phoneCallProvider\":\"twilio\",\"phoneCallProviderBypassEnabled\":true,"
    "\"subscriptionLimits\":{\"concurrencyBlocked\":true,\"concurrencyLimit\":10,"
    "\"remainingConcurrentCalls\":0},\"createdAt\":\"2026-03-26T15:43:16.145Z\","
    "\"updatedAt\":\"2026-03-26T15:43:16.145Z\"}";
/* An ordinary outbound 201: no phoneCallProviderDetails. */
static const char body_no_twiml[] =
    "{\"subscriptionLimits\":{\"concurrencyBlocked\":false,\"concurrencyLimit\":10,"
    "\"remainingConcurrentCalls\":8},\"id\":\"019d2ad0-6eb1-7aac-9377-0fc25d8bc1ad\","
    "\"assistantId\":\"a\",\"phoneNumberId\":\"p\",\"type\":\"outboundPhoneCall\",\"createdAt\":"
    "\"2026-03-26T15:43:16.145Z\",\"updatedAt\":\"2026-03-26T15:43:16.145Z\",\"orgId\":\"o\","
    "\"cost\":0,\"customer\":{\"number\":\"+52\"},\"status\":\"queued\",\"phoneCallProvider\":"
    "\"twilio\",\"transport\":{\"conversationType\":\"voice\",\"provider\":\"twilio\","
    "\"accountSid\":\"AC\"}}";
static const char body_overlimit_str[] =
    "{\"message\":\"Over Concurrency Limit.\",\"error\":\"Bad Request\",\"statusCode\":400}";
static const char body_overlimit_arr[] = "{\"message\":[\"Over Concurrency Limit.\"],\"error\":"
                                         "\"Bad Request\",\"statusCode\":400}";
static const char body_overlimit_err[] = "{\"error\": \"Over Concurrency Limit\"}";
static const char body_validation[] =
    "{\"message\":[\"customer.number must be longer than or equal to 3 characters\","
    "\"assistantId must be a UUID\"],\"error\":\"Bad Request\",\"statusCode\":400}";
static const char body_401[] = "{\"message\":\"Unauthorized\",\"statusCode\":401}";
static const char body_429[] =
    "{\"message\":\"Too Many Requests\",\"error\":\"Too Many Requests\",\"statusCode\":429}";
static const char body_429_conc[] =
    "{\"message\":\"Call concurrency limit reached\",\"statusCode\":429}";
static const char body_500[] = "{\"statusCode\":500,\"message\":\"Internal server error\"}";

/* ---- helpers ---- */

/* ---- fixture and capture ---- */

struct fx {
    struct event_base *base;
    struct cgt_script srv;
    struct cg_httpc *httpc;
    struct cg_vapi *v;
};

struct got {
    int calls;
    enum cg_vapi_outcome outcome;
    long http_status;
    char *call_id;
    char *twiml;
    double retry_after_s;
    long limit;
    long remaining;
    char *message;
    uint64_t duration_us;
};

static void on_created(const struct cg_vapi_create_result *res, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->outcome = res->outcome;
    g->http_status = res->http_status;
    g->call_id = cgt_strdup_or_null(res->call_id);
    g->twiml = cgt_strdup_or_null(res->twiml);
    g->retry_after_s = res->retry_after_s;
    g->limit = res->concurrency_limit;
    g->remaining = res->remaining;
    g->message = cgt_strdup_or_null(res->message);
    g->duration_us = res->duration_us;
}

static void got_free(struct got *g)
{
    free(g->call_id);
    free(g->twiml);
    free(g->message);
    memset(g, 0, sizeof *g);
}

struct got_get {
    int calls;
    enum cg_vapi_call_state state;
    long http_status;
    char *status;
    char *ended_reason;
};

static void on_got(const struct cg_vapi_get_result *res, void *arg)
{
    struct got_get *g = arg;
    g->calls++;
    g->state = res->state;
    g->http_status = res->http_status;
    g->status = cgt_strdup_or_null(res->status);
    g->ended_reason = cgt_strdup_or_null(res->ended_reason);
}

static void got_get_free(struct got_get *g)
{
    free(g->status);
    free(g->ended_reason);
    memset(g, 0, sizeof *g);
}

static struct cg_vapi *new_client(struct fx *f, long timeout_ms, int max_duration)
{
    struct cg_vapi_opts o = {.base_url = f->srv.base_url,
                             .api_key = KEY,
                             .phone_number_id = PHONE,
                             .assistant_id = ASSIST,
                             .max_duration_s = max_duration,
                             .timeout_ms = timeout_ms};
    struct cg_vapi *v = cg_vapi_new(f->httpc, &o);
    assert_non_null(v);
    return v;
}

static int setup(void **state)
{
    struct fx *f = cg_calloc(1, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    cgt_script_start(&f->srv, f->base, "vapi", body_500);
    f->httpc = cg_httpc_new(f->base, NULL);
    assert_non_null(f->httpc);
    f->v = new_client(f, 2000, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cg_vapi_free(f->v);
    cg_httpc_free(f->httpc);
    cgt_script_stop(&f->srv);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Creates a call answered by one scripted response. */
static void create_with(struct fx *f, int status, const char *body, struct got *g)
{
    cgt_script(&f->srv, status, body);
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 1, on_created, g), 0);
    assert_int_equal(g->calls, 0);
    cgt_run_once(f->base, &g->calls, 5000);
}

/* The JSON body of the n-th request. */
static json_t *sent_json(struct fx *f, int n)
{
    assert_true(n < f->srv.nseen);
    const char *b = f->srv.seen[n].body;
    json_t *root = cg_json_parse(b, strlen(b), CG_JSON_MAX_DEPTH, NULL, 0);
    assert_non_null(root);
    return root;
}

/* ---- POST /call ---- */

static void test_create_ok(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    cgt_script(&f->srv, 201, body_created);
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 2, on_created, &g), 0);
    assert_int_equal(g.calls, 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_VAPI_CREATED);
    assert_int_equal(g.http_status, 201);
    assert_string_equal(g.call_id, CALL_ID);
    assert_string_equal(g.twiml, TWIML_PLAIN);
    assert_int_equal(g.limit, 10);
    assert_int_equal(g.remaining, 9);
    assert_true(g.retry_after_s == -1);
    assert_null(g.message);
    assert_true(g.duration_us > 0);

    struct cgt_seen *w = &f->srv.seen[0];
    assert_string_equal(w->method, "POST");
    assert_string_equal(w->path, "/call");
    assert_string_equal(w->authorization, "Bearer " KEY);
    assert_string_equal(w->content_type, "application/json");
    json_t *b = sent_json(f, 0);
    assert_string_equal(cg_json_str(b, "phoneNumberId"), PHONE);
    int flag = 0;
    assert_int_equal(cg_json_bool(b, "phoneCallProviderBypassEnabled", &flag), 0);
    assert_true(flag);
    assert_string_equal(cg_json_str(b, "customer.number"), "+15551234567");
    assert_int_equal(cg_json_bool(b, "customer.numberE164CheckEnabled", &flag), 0);
    assert_false(flag);
    assert_string_equal(cg_json_str(b, "assistantId"), ASSIST);
    assert_string_equal(cg_json_str(b, "assistantOverrides.metadata.twilioCallSid"), CA1);
    long long n = 0;
    assert_int_equal(cg_json_int(b, "assistantOverrides.metadata.callgateAttempt", &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(cg_json_str(b, "assistantOverrides.variableValues.twilioCallSid"), CA1);
    assert_int_equal(cg_json_int(b, "assistantOverrides.maxDurationSeconds", &n), 0);
    assert_int_equal(n, 600);
    /* Nothing beyond the documented fields. */
    assert_int_equal(json_object_size(b), 5);
    assert_int_equal(json_object_size(json_object_get(b, "customer")), 2);
    assert_int_equal(json_object_size(json_object_get(b, "assistantOverrides")), 3);
    json_decref(b);
    got_free(&g);
}

static void test_create_max_duration(void **state)
{
    struct fx *f = *state;
    cg_vapi_free(f->v);
    f->v = new_client(f, 2000, 900);
    struct got g = {0};
    create_with(f, 201, body_created, &g);
    json_t *b = sent_json(f, 0);
    long long n = 0;
    assert_int_equal(cg_json_int(b, "assistantOverrides.maxDurationSeconds", &n), 0);
    assert_int_equal(n, 900);
    json_decref(b);
    got_free(&g);
}

/* serverMessages and the queue context in assistantOverrides. */
static void test_create_context_and_server_messages(void **state)
{
    struct fx *f = *state;
    cg_vapi_free(f->v);
    struct cg_vapi_opts o = {.base_url = f->srv.base_url,
                             .api_key = KEY,
                             .phone_number_id = PHONE,
                             .assistant_id = ASSIST,
                             .timeout_ms = 2000,
                             .server_messages = "phone-call-control, status-update,"
                                                "end-of-call-report"};
    f->v = cg_vapi_new(f->httpc, &o);
    assert_non_null(f->v);
    struct got g = {0};
    cgt_script(&f->srv, 201, body_created);
    struct cg_vapi_call_context ctx = {
        .waited_s = 42, .position = 3, .requeued = 1, .dialed = "+1555\"0100"};
    assert_int_equal(cg_vapi_create_call_ctx(f->v, CA1, "+15551234567", 2, &ctx, on_created, &g),
                     0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_VAPI_CREATED);
    json_t *b = sent_json(f, 0);
    const json_t *sm = cg_json_path(b, "assistantOverrides");
    sm = json_object_get(sm, "serverMessages");
    assert_true(json_is_array(sm));
    assert_int_equal(json_array_size(sm), 3);
    assert_string_equal(json_string_value(json_array_get(sm, 0)), "phone-call-control");
    assert_string_equal(json_string_value(json_array_get(sm, 1)), "status-update");
    assert_string_equal(json_string_value(json_array_get(sm, 2)), "end-of-call-report");
    long long n = 0;
    assert_int_equal(cg_json_int(b, "assistantOverrides.variableValues.callgateWaitSeconds", &n),
                     0);
    assert_int_equal(n, 42);
    assert_int_equal(cg_json_int(b, "assistantOverrides.variableValues.callgatePosition", &n), 0);
    assert_int_equal(n, 3);
    int flag = 0;
    assert_int_equal(cg_json_bool(b, "assistantOverrides.variableValues.callgateRequeued", &flag),
                     0);
    assert_true(flag);
    assert_string_equal(cg_json_str(b, "assistantOverrides.variableValues.callgateDialedNumber"),
                        "+1555\"0100");
    assert_string_equal(cg_json_str(b, "assistantOverrides.variableValues.twilioCallSid"), CA1);
    json_decref(b);
    got_free(&g);

    /* Unknown figures are left out; the flag is always there. */
    struct got g2 = {0};
    cgt_script(&f->srv, 201, body_created);
    struct cg_vapi_call_context none = {.waited_s = -1};
    assert_int_equal(cg_vapi_create_call_ctx(f->v, CA1, "+15551234567", 1, &none, on_created, &g2),
                     0);
    cgt_run_once(f->base, &g2.calls, 5000);
    b = sent_json(f, 1);
    const json_t *vv = cg_json_path(b, "assistantOverrides.variableValues");
    assert_int_equal(json_object_size(vv), 2);
    assert_int_equal(cg_json_bool(b, "assistantOverrides.variableValues.callgateRequeued", &flag),
                     0);
    assert_false(flag);
    json_decref(b);
    got_free(&g2);
}

static void test_create_overlimit_string(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 400, body_overlimit_str, &g);
    assert_int_equal(g.outcome, CG_VAPI_OVERLIMIT);
    assert_int_equal(g.http_status, 400);
    assert_string_equal(g.message, "Over Concurrency Limit.");
    assert_null(g.twiml);
    assert_int_equal(g.limit, -1);
    assert_int_equal(g.remaining, -1);
    got_free(&g);
}

static void test_create_overlimit_array(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 400, body_overlimit_arr, &g);
    assert_int_equal(g.outcome, CG_VAPI_OVERLIMIT);
    assert_string_equal(g.message, "Over Concurrency Limit.");
    got_free(&g);
    /* Concurrency named in a later array element. */
    create_with(f, 400,
                "{\"message\":[\"request refused\",\"CONCURRENCY limit reached\"],\"error\":"
                "\"Bad Request\",\"statusCode\":400}",
                &g);
    assert_int_equal(g.outcome, CG_VAPI_OVERLIMIT);
    assert_string_equal(g.message, "request refused");
    got_free(&g);
}

static void test_create_overlimit_error_field(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 400, body_overlimit_err, &g);
    assert_int_equal(g.outcome, CG_VAPI_OVERLIMIT);
    assert_string_equal(g.message, "Over Concurrency Limit");
    got_free(&g);
}

static void test_create_concurrency_blocked(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 201, body_blocked, &g);
    assert_int_equal(g.outcome, CG_VAPI_OVERLIMIT);
    assert_int_equal(g.http_status, 201);
    assert_string_equal(g.call_id, CALL_ID);
    assert_null(g.twiml);
    assert_int_equal(g.limit, 10);
    assert_int_equal(g.remaining, 0);
    got_free(&g);
}

/* subscriptionLimits is documented only on CallBatchResponse: an answer
 * in that shape that created nothing for the concurrency limit is over
 * the limit; other batch-shaped failures, a call created without
 * subscriptionLimits, and remainingConcurrentCalls -1 on a created call
 * are not. */
static void test_create_overlimit_batch_shape(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 201,
                "{\"subscriptionLimits\":{\"concurrencyBlocked\":false,\"concurrencyLimit\":10,"
                "\"remainingConcurrentCalls\":0},\"results\":[],\"errors\":[{\"customer\":{"
                "\"number\":\"+15551234567\"},\"error\":\"Concurrency limit reached\"}]}",
                &g);
    assert_int_equal(g.outcome, CG_VAPI_OVERLIMIT);
    assert_int_equal(g.limit, 10);
    assert_int_equal(g.remaining, 0);
    got_free(&g);
    create_with(f, 201,
                "{\"results\":[],\"errors\":[{\"customer\":{\"number\":\"x\"},\"error\":"
                "\"customer.number is invalid\"}]}",
                &g);
    assert_int_equal(g.outcome, CG_VAPI_REJECTED);
    got_free(&g);
    /* Created without subscriptionLimits, and with remaining -1: admitted. */
    create_with(f, 201,
                "{\"id\":\"" CALL_ID "\",\"phoneCallProviderDetails\":{\"twiml\":\"<Response/>\"}}",
                &g);
    assert_int_equal(g.outcome, CG_VAPI_CREATED);
    assert_int_equal(g.remaining, -1);
    got_free(&g);
    create_with(f, 201,
                "{\"id\":\"" CALL_ID "\",\"phoneCallProviderDetails\":{\"twiml\":\"<Response/>\"},"
                "\"subscriptionLimits\":{\"remainingConcurrentCalls\":-1}}",
                &g);
    assert_int_equal(g.outcome, CG_VAPI_CREATED);
    got_free(&g);
}

static void test_create_validation_rejected(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 400, body_validation, &g);
    assert_int_equal(g.outcome, CG_VAPI_REJECTED);
    assert_string_equal(g.message, "customer.number must be longer than or equal to 3 characters");
    got_free(&g);
    create_with(f, 404, "Not Found", &g);
    assert_int_equal(g.outcome, CG_VAPI_REJECTED);
    assert_non_null(g.message);
    got_free(&g);
}

static void test_create_no_twiml(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 201, body_no_twiml, &g);
    assert_int_equal(g.outcome, CG_VAPI_REJECTED);
    assert_string_equal(g.message, "no TwiML in response");
    assert_int_equal(g.remaining, 8);
    got_free(&g);
    create_with(f, 201, "not json", &g);
    assert_int_equal(g.outcome, CG_VAPI_REJECTED);
    got_free(&g);
}

static void test_create_auth(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 401, body_401, &g);
    assert_int_equal(g.outcome, CG_VAPI_AUTH);
    assert_string_equal(g.message, "Unauthorized");
    got_free(&g);
    create_with(f, 403,
                "{\"message\":\"Forbidden resource\",\"error\":\"Forbidden\","
                "\"statusCode\":403}",
                &g);
    assert_int_equal(g.outcome, CG_VAPI_AUTH);
    got_free(&g);
    assert_int_equal(f->srv.nseen, 2); /* no retries here */
}

static void test_create_retry(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    cgt_script_step(&f->srv,
                    (struct cgt_step){.status = 429, .body = body_429, .retry_after = "2"});
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 1, on_created, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_VAPI_RETRY);
    assert_int_equal(g.http_status, 429);
    assert_true(g.retry_after_s == 2);
    assert_string_equal(g.message, "Too Many Requests");
    got_free(&g);

    create_with(f, 500, body_500, &g);
    assert_int_equal(g.outcome, CG_VAPI_RETRY);
    assert_string_equal(g.message, "Internal server error");
    got_free(&g);
    create_with(f, 502, "<html>Bad Gateway</html>", &g);
    assert_int_equal(g.outcome, CG_VAPI_RETRY);
    assert_non_null(g.message);
    got_free(&g);
    assert_int_equal(f->srv.nseen, 3); /* no retries here */
}

static void test_create_429_concurrency(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    create_with(f, 429, body_429_conc, &g);
    assert_int_equal(g.outcome, CG_VAPI_OVERLIMIT);
    got_free(&g);
}

static void test_create_timeout(void **state)
{
    struct fx *f = *state;
    cg_vapi_free(f->v);
    f->v = new_client(f, 150, 0);
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    struct got g = {0};
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 1, on_created, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_VAPI_RETRY);
    assert_int_equal(g.http_status, 0);
    assert_string_equal(g.message, "timeout");
    got_free(&g);
}

static const char *sent_number(struct fx *f, int n, json_t **hold)
{
    *hold = sent_json(f, n);
    return cg_json_str(*hold, "customer.number");
}

static void test_create_anonymous(void **state)
{
    struct fx *f = *state;
    const char *froms[] = {"", NULL, "12", "sip:a-very-long-caller-id@pbx.example.com:5060"};
    for (int i = 0; i < 4; i++) {
        struct got g = {0};
        cgt_script(&f->srv, 201, body_created);
        assert_int_equal(cg_vapi_create_call(f->v, CA1, froms[i], 1, on_created, &g), 0);
        cgt_run_once(f->base, &g.calls, 5000);
        json_t *hold;
        assert_string_equal(sent_number(f, i, &hold), "anonymous");
        json_decref(hold);
        got_free(&g);
    }
    /* Exactly 3 characters is kept, and so is Twilio's own "anonymous". */
    struct got g = {0};
    cgt_script(&f->srv, 201, body_created);
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "266", 1, on_created, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    json_t *hold;
    assert_string_equal(sent_number(f, 4, &hold), "266");
    json_decref(hold);
    got_free(&g);
    /* Twilio Client and SIP callers, and anything else outside Vapi's
     * pattern ^\+?[a-zA-Z0-9]+$ (numberE164CheckEnabled false), go as
     * "anonymous", their From as customer.name (at most 40 bytes, JSON
     * escaped). */
    const char *odd[] = {"client:alice", "sip:bob@pbx.example.com",
                         "\"quoted\"\\", "+1 555 0100",
                         "++15550100",   "+"};
    for (int i = 0; i < 6; i++) {
        cgt_script(&f->srv, 201, body_created);
        assert_int_equal(cg_vapi_create_call(f->v, CA1, odd[i], 1, on_created, &g), 0);
        cgt_run_once(f->base, &g.calls, 5000);
        assert_string_equal(sent_number(f, 5 + i, &hold), "anonymous");
        const char *name = cg_json_str(hold, "customer.name");
        assert_string_equal(name, odd[i]);
        json_decref(hold);
        got_free(&g);
    }
    /* A long SIP From is cut to 40 bytes on a character boundary. */
    cgt_script(&f->srv, 201, body_created);
    assert_int_equal(cg_vapi_create_call(
                         f->v, CA1, "sip:\xc3\xa9\xc3\xa9\xc3\xa9-very-long-caller@pbx.example.com",
                         1, on_created, &g),
                     0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_string_equal(sent_number(f, 11, &hold), "anonymous");
    const char *name = cg_json_str(hold, "customer.name");
    assert_non_null(name);
    assert_true(strlen(name) <= 40);
    assert_true(strncmp(name, "sip:\xc3\xa9\xc3\xa9\xc3\xa9-very", 15) == 0);
    json_decref(hold);
    got_free(&g);
    /* A number Vapi accepts goes unchanged, without a name. */
    cgt_script(&f->srv, 201, body_created);
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 1, on_created, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_string_equal(sent_number(f, 12, &hold), "+15551234567");
    assert_null(cg_json_str(hold, "customer.name"));
    json_decref(hold);
    got_free(&g);
}

static void test_customer_number(void **state)
{
    (void)state;
    const char *ok[] = {"+15551234567", "266", "anonymous", "Restricted", "abc123", "+1a2"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_ptr_equal(cg_vapi_customer_number(ok[i]), ok[i]);
    const char *bad[] = {NULL,
                         "",
                         "12",
                         "client:alice",
                         "sip:bob@host",
                         "+1 555",
                         "+",
                         "++123",
                         "1234567890123456789012345678901234567890X",
                         "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_string_equal(cg_vapi_customer_number(bad[i]), "anonymous");
}

static void test_create_invalid_input(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    assert_int_equal(cg_vapi_create_call(f->v, "CA123", "+15551234567", 1, on_created, &g), -1);
    assert_int_equal(cg_vapi_create_call(f->v, NULL, "+15551234567", 1, on_created, &g), -1);
    assert_int_equal(cg_vapi_create_call(f->v, "\"}injected", "+1555", 1, on_created, &g), -1);
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 1, NULL, &g), -1);
    assert_int_equal(cg_vapi_create_call(NULL, CA1, "+15551234567", 1, on_created, &g), -1);
    struct got_get gg = {0};
    assert_int_equal(cg_vapi_get_call(f->v, "", on_got, &gg), -1);
    assert_int_equal(cg_vapi_get_call(f->v, NULL, on_got, &gg), -1);
    assert_int_equal(cg_vapi_get_call(f->v, "../admin", on_got, &gg), -1);
    assert_int_equal(cg_vapi_get_call(f->v, "abc?x=1", on_got, &gg), -1);
    char longid[CG_VAPI_MAX_ID + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(cg_vapi_get_call(f->v, longid, on_got, &gg), -1);
    cgt_run_for(f->base, 20);
    assert_int_equal(g.calls, 0);
    assert_int_equal(gg.calls, 0);
    assert_int_equal(f->srv.nseen, 0);
}

static void test_new_rejects_bad_opts(void **state)
{
    struct fx *f = *state;
    struct cg_vapi_opts o = {.base_url = f->srv.base_url,
                             .api_key = KEY,
                             .phone_number_id = PHONE,
                             .assistant_id = ASSIST};
    struct cg_vapi *v = cg_vapi_new(f->httpc, &o);
    assert_non_null(v);
    cg_vapi_free(v);
    o.api_key = "";
    assert_null(cg_vapi_new(f->httpc, &o));
    o.api_key = KEY;
    o.assistant_id = NULL;
    assert_null(cg_vapi_new(f->httpc, &o));
    o.assistant_id = ASSIST;
    o.max_duration_s = 5;
    assert_null(cg_vapi_new(f->httpc, &o));
    o.max_duration_s = 43201;
    assert_null(cg_vapi_new(f->httpc, &o));
    o.max_duration_s = 0;
    o.base_url = "api.vapi.ai";
    assert_null(cg_vapi_new(f->httpc, &o));
    assert_null(cg_vapi_new(NULL, &o));
    cg_vapi_free(NULL);
}

static void test_free_with_pending(void **state)
{
    struct fx *f = *state;
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    struct got g = {0};
    struct got_get gg = {0};
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 1, on_created, &g), 0);
    assert_int_equal(cg_vapi_get_call(f->v, CALL_ID, on_got, &gg), 0);
    assert_true(cgt_script_wait_seen(&f->srv, f->base, 2));
    assert_int_equal(f->srv.nseen, 2);
    cg_vapi_free(f->v);
    f->v = NULL;
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.outcome, CG_VAPI_CANCELLED);
    assert_int_equal(gg.calls, 1);
    assert_int_equal(gg.state, CG_VAPI_CALL_UNAVAILABLE);
    cgt_run_for(f->base, 50);
    cg_httpc_free(f->httpc);
    f->httpc = NULL;
    assert_int_equal(g.calls, 1);
    assert_int_equal(gg.calls, 1);
    got_free(&g);
    got_get_free(&gg);
}

/* ---- GET /call (the list) ---- */

struct got_list {
    int calls;
    int ok;
    long http_status;
    size_t n, skipped;
    char ids[4][64];
    char sids[4][40];
    long attempts[4];
    int live[4];
    char gate[4][16];
    unsigned long long created[4];
};

static void on_list(const struct cg_vapi_list_result *res, void *arg)
{
    struct got_list *g = arg;
    g->calls++;
    g->ok = res->ok;
    g->http_status = res->http_status;
    g->n = res->ncalls;
    g->skipped = res->skipped;
    for (size_t i = 0; i < res->ncalls && i < 4; i++) {
        const struct cg_vapi_listed_call *c = &res->calls[i];
        snprintf(g->ids[i], sizeof g->ids[i], "%s", c->id);
        snprintf(g->sids[i], sizeof g->sids[i], "%s", c->twilio_call_sid ? c->twilio_call_sid : "");
        snprintf(g->gate[i], sizeof g->gate[i], "%s", c->gate ? c->gate : "");
        g->attempts[i] = c->attempt;
        g->live[i] = c->live;
        g->created[i] = (unsigned long long)c->created_ms;
    }
}

static void test_list_calls(void **state)
{
    struct fx *f = *state;
    cg_vapi_free(f->v);
    struct cg_vapi_opts o = {.base_url = f->srv.base_url,
                             .api_key = KEY,
                             .phone_number_id = PHONE,
                             .assistant_id = ASSIST,
                             .gate = "main",
                             .timeout_ms = 2000};
    f->v = cg_vapi_new(f->httpc, &o);
    assert_non_null(f->v);
    cgt_script(&f->srv, 200,
               "[{\"id\":\"c-1\",\"orgId\":\"o\",\"status\":\"in-progress\","
               "\"createdAt\":\"2026-12-07T07:00:00.250Z\",\"assistantOverrides\":{\"metadata\":"
               "{\"twilioCallSid\":\"" CA1 "\",\"callgateAttempt\":3,\"callgateGate\":\"main\"}}},"
               "{\"id\":\"c-2\",\"status\":\"ended\",\"phoneCallProviderId\":\"" CA1 "\"},"
               "{\"status\":\"queued\"},"
               "{\"id\":\"c-3\",\"assistantOverrides\":{\"metadata\":{\"twilioCallSid\":\"x\"}}}]");
    struct got_list g = {0};
    /* 2026-12-07T06:50:00.000Z, and no upper bound */
    assert_int_equal(cg_vapi_list_calls(f->v, 1796626200000ULL, 0, 100, on_list, &g), 0);
    assert_int_equal(g.calls, 0); /* never from inside the call */
    cgt_run_once(f->base, &g.calls, 5000);
    assert_true(g.ok);
    assert_int_equal(g.http_status, 200);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.skipped, 1);
    assert_string_equal(g.ids[0], "c-1");
    assert_string_equal(g.sids[0], CA1);
    assert_int_equal(g.attempts[0], 3);
    assert_string_equal(g.gate[0], "main");
    assert_true(g.live[0]);
    assert_true(g.created[0] == 1796626800250ULL);
    assert_string_equal(g.ids[1], "c-2");
    assert_false(g.live[1]);
    assert_string_equal(g.sids[1], CA1); /* phoneCallProviderId */
    assert_string_equal(g.sids[2], "");  /* not a CallSid: not callgate's */
    assert_true(g.live[2]);              /* no status: not known to be over */

    struct cgt_seen *w = &f->srv.seen[0];
    assert_string_equal(w->method, "GET");
    assert_string_equal(w->path, "/call");
    assert_string_equal(w->authorization, "Bearer " KEY);
    assert_non_null(w->query);
    assert_non_null(strstr(w->query, "phoneNumberId=" PHONE));
    assert_non_null(strstr(w->query, "limit=100"));
    assert_non_null(strstr(w->query, "createdAtGt=2026-12-07T06:50:00.000Z"));
    assert_null(strstr(w->query, "createdAtLe"));

    /* The next page: bounded above by the last page's oldest date. */
    cgt_script(&f->srv, 200, "[]");
    memset(&g, 0, sizeof g);
    assert_int_equal(cg_vapi_list_calls(f->v, 1796626200000ULL, 1796626800250ULL, 100, on_list, &g),
                     0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_true(g.ok);
    assert_int_equal(g.n, 0);
    assert_non_null(strstr(f->srv.seen[1].query, "createdAtLe=2026-12-07T07:00:00.250Z"));

    /* Failures: an error status, a body that is not an array. */
    cgt_script(&f->srv, 500, body_500);
    memset(&g, 0, sizeof g);
    assert_int_equal(cg_vapi_list_calls(f->v, 0, 0, 100, on_list, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_false(g.ok);
    assert_int_equal(g.http_status, 500);
    cgt_script(&f->srv, 200, "{\"results\":[]}");
    memset(&g, 0, sizeof g);
    assert_int_equal(cg_vapi_list_calls(f->v, 0, 0, 100, on_list, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_false(g.ok);
    /* Bad limits never call back. */
    assert_int_equal(cg_vapi_list_calls(f->v, 0, 0, 0, on_list, &g), -1);
    assert_int_equal(cg_vapi_list_calls(f->v, 0, 0, CG_VAPI_LIST_MAX + 1, on_list, &g), -1);

    /* The gate's name goes into every call's metadata. */
    struct got c = {0};
    cgt_script(&f->srv, 201, body_created);
    assert_int_equal(cg_vapi_create_call(f->v, CA1, "+15551234567", 1, on_created, &c), 0);
    cgt_run_once(f->base, &c.calls, 5000);
    json_t *b = sent_json(f, 4);
    assert_string_equal(cg_json_str(b, "assistantOverrides.metadata.callgateGate"), "main");
    json_decref(b);
    got_free(&c);

    /* Cancelled by cg_vapi_free: called back once, not ok. */
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    memset(&g, 0, sizeof g);
    assert_int_equal(cg_vapi_list_calls(f->v, 0, 0, 100, on_list, &g), 0);
    cgt_run_for(f->base, 50);
    cg_vapi_free(f->v);
    f->v = NULL;
    assert_int_equal(g.calls, 1);
    assert_false(g.ok);
}

/* ---- GET /call/{id} ---- */

static void get_with(struct fx *f, int status, const char *body, struct got_get *g)
{
    cgt_script(&f->srv, status, body);
    assert_int_equal(cg_vapi_get_call(f->v, CALL_ID, on_got, g), 0);
    assert_int_equal(g->calls, 0);
    cgt_run_once(f->base, &g->calls, 5000);
}

static void test_get_call(void **state)
{
    struct fx *f = *state;
    struct got_get g = {0};
    get_with(f, 200,
             "{\"id\":\"" CALL_ID "\",\"orgId\":\"o\",\"createdAt\":\"2026-03-26T15:43:16.145Z\","
             "\"updatedAt\":\"2026-03-26T15:43:16.145Z\",\"status\":\"in-progress\","
             "\"phoneCallProviderId\":\"" CA1 "\"}",
             &g);
    assert_int_equal(g.state, CG_VAPI_CALL_LIVE);
    assert_string_equal(g.status, "in-progress");
    assert_null(g.ended_reason);
    assert_string_equal(f->srv.seen[0].method, "GET");
    assert_string_equal(f->srv.seen[0].path, "/call/" CALL_ID);
    assert_string_equal(f->srv.seen[0].authorization, "Bearer " KEY);
    got_get_free(&g);

    get_with(f, 200,
             "{\"id\":\"" CALL_ID "\",\"orgId\":\"o\",\"status\":\"ended\",\"endedReason\":"
             "\"customer-ended-call\",\"endedAt\":\"2025-04-11T09:49:41.358Z\"}",
             &g);
    assert_int_equal(g.state, CG_VAPI_CALL_ENDED);
    assert_string_equal(g.ended_reason, "customer-ended-call");
    got_get_free(&g);

    /* not-found, deletion-failed and statuses unknown here do not say
     * the call goes on. */
    const char *doubtful[] = {"not-found", "deletion-failed", "archived"};
    for (size_t i = 0; i < 3; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"id\":\"" CALL_ID "\",\"status\":\"%s\"}", doubtful[i]);
        get_with(f, 200, body, &g);
        assert_int_equal(g.state, CG_VAPI_CALL_DOUBTFUL);
        assert_string_equal(g.status, doubtful[i]);
        got_get_free(&g);
    }
    const char *live[] = {"scheduled", "queued", "ringing"};
    for (size_t i = 0; i < 3; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"id\":\"" CALL_ID "\",\"status\":\"%s\"}", live[i]);
        get_with(f, 200, body, &g);
        assert_int_equal(g.state, CG_VAPI_CALL_LIVE);
        got_get_free(&g);
    }

    /* forwarding still holds the line */
    get_with(f, 200, "{\"id\":\"" CALL_ID "\",\"status\":\"forwarding\"}", &g);
    assert_int_equal(g.state, CG_VAPI_CALL_LIVE);
    got_get_free(&g);

    get_with(f, 404, "{\"message\":\"Not Found\",\"statusCode\":404}", &g);
    assert_int_equal(g.state, CG_VAPI_CALL_NOT_FOUND);
    assert_int_equal(g.http_status, 404);
    got_get_free(&g);

    get_with(f, 500, body_500, &g);
    assert_int_equal(g.state, CG_VAPI_CALL_UNAVAILABLE);
    assert_int_equal(g.http_status, 500);
    got_get_free(&g);

    /* A missing status is not "ended". */
    get_with(f, 200, "{\"id\":\"" CALL_ID "\"}", &g);
    assert_int_equal(g.state, CG_VAPI_CALL_UNAVAILABLE);
    got_get_free(&g);

    get_with(f, 401, body_401, &g);
    assert_int_equal(g.state, CG_VAPI_CALL_UNAVAILABLE);
    got_get_free(&g);
}

/* ---- server messages ---- */

static const char ev_ended[] =
    "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"endedReason\":"
    "\"customer-ended-call\",\"timestamp\":1750183823822,\"call\":{\"id\":\"" CALL_ID "\","
    "\"orgId\":\"o\",\"type\":\"inboundPhoneCall\",\"status\":\"ended\",\"phoneCallProvider\":"
    "\"twilio\",\"phoneCallProviderId\":\"" CA1 "\",\"createdAt\":\"x\",\"updatedAt\":\"y\"},"
    "\"phoneNumber\":{\"id\":\"p\"},\"customer\":{\"number\":\"+15551234567\"}}}";
static const char ev_report[] =
    "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":\"customer-ended-call\","
    "\"timestamp\":1744364983000,\"startedAt\":\"2025-04-11T09:49:33.624Z\",\"endedAt\":"
    "\"2025-04-11T09:49:41.358Z\",\"durationMs\":7734,\"durationSeconds\":7.734,"
    "\"durationMinutes\":0.1289,\"cost\":0.01,\"summary\":\"s\",\"transcript\":\"AI: "
    "Hello.\\nUser: "
    "Yes.\\n\",\"recordingUrl\":\"https://storage.vapi.ai/"
    "x-mono.wav\",\"artifact\":{\"transcript\":"
    "\"t\",\"messages\":[],\"recording\":{\"mono\":{\"combinedUrl\":\"u\"}}},\"analysis\":{"
    "\"summary\":\"s\",\"successEvaluation\":\"true\"},\"call\":{\"id\":\"" CALL_ID "\","
    "\"status\":\"ended\",\"endedReason\":\"silence-timed-out\"}}}";
static const char ev_report_min[] =
    "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":\"" CALL_ID "\",\"status\":"
    "\"ended\",\"endedReason\":\"assistant-ended-call\"}}}";

static void parse_ok(const char *body, struct cg_vapi_event *ev, json_t **root)
{
    char err[128] = "";
    int rc = cg_vapi_parse_event(body, strlen(body), ev, root, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed: %s", err);
    assert_non_null(*root);
}

static void parse_bad(const char *body, size_t len)
{
    struct cg_vapi_event ev;
    json_t *root = (json_t *)1;
    char err[128] = "";
    assert_int_equal(cg_vapi_parse_event(body, len, &ev, &root, err, sizeof err), -1);
    assert_null(root);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "+1555")); /* never quotes the input */
}

static void test_parse_status_ended(void **state)
{
    (void)state;
    struct cg_vapi_event ev;
    json_t *root;
    parse_ok(ev_ended, &ev, &root);
    assert_int_equal(ev.type, CG_VAPI_EV_STATUS_UPDATE);
    assert_string_equal(ev.type_name, "status-update");
    assert_string_equal(ev.call_id, CALL_ID);
    assert_string_equal(ev.status, "ended");
    assert_string_equal(ev.ended_reason, "customer-ended-call");
    assert_string_equal(ev.twilio_call_sid, CA1);
    assert_true(ev.is_end);
    json_decref(root);
}

static void test_parse_status_live(void **state)
{
    (void)state;
    const char *statuses[] = {"in-progress", "forwarding", "queued", "ringing"};
    for (int i = 0; i < 4; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"status-update\",\"status\":\"%s\",\"call\":{\"id\":"
                 "\"" CALL_ID "\",\"assistantOverrides\":{\"metadata\":{\"twilioCallSid\":"
                 "\"" CA1 "\"}}}}}",
                 statuses[i]);
        struct cg_vapi_event ev;
        json_t *root;
        parse_ok(body, &ev, &root);
        assert_int_equal(ev.type, CG_VAPI_EV_STATUS_UPDATE);
        assert_string_equal(ev.status, statuses[i]);
        assert_false(ev.is_end);
        assert_null(ev.ended_reason);
        /* Falls back to the metadata we sent. */
        assert_string_equal(ev.twilio_call_sid, CA1);
        json_decref(root);
    }
}

static void test_parse_end_of_call_report(void **state)
{
    (void)state;
    struct cg_vapi_event ev;
    json_t *root;
    parse_ok(ev_report, &ev, &root);
    assert_int_equal(ev.type, CG_VAPI_EV_END_OF_CALL_REPORT);
    assert_true(ev.is_end);
    /* The message-level reason wins over call.endedReason. */
    assert_string_equal(ev.ended_reason, "customer-ended-call");
    assert_string_equal(ev.call_id, CALL_ID);
    assert_null(ev.twilio_call_sid);
    assert_null(ev.status);
    json_decref(root);

    parse_ok(ev_report_min, &ev, &root);
    assert_int_equal(ev.type, CG_VAPI_EV_END_OF_CALL_REPORT);
    assert_true(ev.is_end);
    assert_string_equal(ev.ended_reason, "assistant-ended-call");
    assert_string_equal(ev.call_id, CALL_ID);
    json_decref(root);
}

static void test_parse_hang_and_other(void **state)
{
    (void)state;
    struct cg_vapi_event ev;
    json_t *root;
    parse_ok("{\"message\":{\"type\":\"hang\",\"timestamp\":1750183800000,\"call\":{\"id\":"
             "\"" CALL_ID "\"}}}",
             &ev, &root);
    assert_int_equal(ev.type, CG_VAPI_EV_HANG);
    assert_false(ev.is_end);
    assert_string_equal(ev.call_id, CALL_ID);
    json_decref(root);

    parse_ok("{\"message\":{\"type\":\"speech-update\",\"status\":\"ended\",\"role\":"
             "\"assistant\"}}",
             &ev, &root);
    assert_int_equal(ev.type, CG_VAPI_EV_OTHER);
    assert_string_equal(ev.type_name, "speech-update");
    assert_false(ev.is_end);
    assert_null(ev.call_id);
    json_decref(root);

    /* A phoneCallProviderId that is not a Twilio SID is not one. */
    parse_ok("{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"call\":{\"id\":"
             "\"x\",\"phoneCallProviderId\":\"vonage-123\"}}}",
             &ev, &root);
    assert_null(ev.twilio_call_sid);
    assert_true(ev.is_end);
    json_decref(root);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "{",
        "not json",
        "[]",
        "\"message\"",
        "{}",
        "{\"message\":null}",
        "{\"message\":\"status-update\"}",
        "{\"message\":{}}",
        "{\"message\":{\"type\":7}}",
        "{\"message\":{\"type\":null}}",
        "{\"message\":{\"type\":\"hang\",\"call\":[]}}",
        "{\"message\":{\"type\":\"hang\",\"call\":{\"id\":42}}}",
        "{\"message\":{\"type\":\"hang\",\"call\":{\"id\":null}}}",
        "{\"message\":{\"type\":\"hang\"}} trailing",
        "{\"message\":{\"type\":\"hang\",\"type\":\"status-update\"}}",
        "{\"message\":{\"type\":\"status-update\",\"customer\":{\"number\":\"+15551234567\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(bad[i], strlen(bad[i]));
    /* An embedded NUL. */
    parse_bad("{\"message\":{\"type\":\"hang\"}}\0x", 29);
    struct cg_vapi_event ev;
    json_t *root;
    assert_int_equal(cg_vapi_parse_event(NULL, 0, &ev, &root, NULL, 0), -1);
}

static void test_parse_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 10000;
    char *body = cg_malloc(depth * 2 + 64);
    size_t n = 0;
    n += (size_t)sprintf(body, "{\"message\":{\"type\":\"hang\",\"x\":");
    for (size_t i = 0; i < depth; i++)
        body[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        body[n++] = ']';
    body[n++] = '}';
    body[n++] = '}';
    body[n] = '\0';
    parse_bad(body, n);
    free(body);
}

/* ---- webhook authentication ---- */

#define HMAC_KEY "whsec_test_key"
#define HOOK_BODY                                                                                  \
    "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"call\":{\"id\":\"" CALL_ID    \
    "\"}}}"
/* HMAC-SHA256 hex of "1750183823822." HOOK_BODY under HMAC_KEY, computed
 * with Python's hmac module. */
#define HOOK_SIG_HEX "6fc2e957c33737dad77bc39c4537c647588b34a7626d5e196b8294be7cf53ee7"
/* HMAC-SHA512 Base64 of "1750183823." HOOK_BODY, likewise. */
#define HOOK_SIG_B64_512                                                                           \
    "7hpR1MIDM0tk1MPLTm71seYuMVmgW14oJSQs+nKeI4blE0Z8U5JRuSVsDBIxVHQgfYE79h8UFlr5+qdc/c45fQ=="
#define NOW_MS 1750183830000ULL

struct hdrs {
    const char *names[4];
    const char *values[4];
    int n;
    int lookups;
};

static const char *hdr_get(const char *name, void *arg)
{
    struct hdrs *h = arg;
    h->lookups++;
    for (int i = 0; i < h->n; i++) {
        if (strcasecmp(h->names[i], name) == 0)
            return h->values[i];
    }
    return NULL;
}

static void hdr_set(struct hdrs *h, const char *name, const char *value)
{
    for (int i = 0; i < h->n; i++) {
        if (strcasecmp(h->names[i], name) == 0) {
            h->values[i] = value;
            return;
        }
    }
    assert_true(h->n < 4);
    h->names[h->n] = name;
    h->values[h->n++] = value;
}

static int auth(const struct cg_vapi_auth *a, struct hdrs *h, const char *body, uint64_t now)
{
    return cg_vapi_authenticate(a, hdr_get, h, body, strlen(body), now);
}

static void test_auth_secret(void **state)
{
    (void)state;
    struct cg_vapi_auth a = {.secret = "s3cr3t-webhook-value"};
    struct hdrs h = {0};
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0); /* missing */
    hdr_set(&h, "X-Vapi-Secret", "s3cr3t-webhook-value");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    hdr_set(&h, "X-Vapi-Secret", "s3cr3t-webhook-valuf"); /* same length */
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    hdr_set(&h, "X-Vapi-Secret", "s3cr3t"); /* a prefix */
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    hdr_set(&h, "X-Vapi-Secret", "s3cr3t-webhook-value-and-more");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    hdr_set(&h, "X-Vapi-Secret", "");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* The secret is not an HMAC key: a signature header does not help. */
    hdr_set(&h, "x-signature", HOOK_SIG_HEX);
    hdr_set(&h, "x-timestamp", "1750183823822");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
}

static void test_auth_nothing_configured(void **state)
{
    (void)state;
    struct cg_vapi_auth a = {.secret = "", .hmac_secret = NULL};
    struct hdrs h = {0};
    hdr_set(&h, "x-vapi-secret", "");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    assert_int_equal(cg_vapi_authenticate(NULL, hdr_get, &h, "", 0, NOW_MS), 0);
    struct cg_vapi_auth b = {.secret = "x-secret"};
    assert_int_equal(cg_vapi_authenticate(&b, NULL, NULL, "", 0, NOW_MS), 0);
}

static void test_auth_hmac_hex_vector(void **state)
{
    (void)state;
    struct cg_vapi_auth a = {.hmac_secret = HMAC_KEY};
    struct hdrs h = {0};
    hdr_set(&h, "x-signature", HOOK_SIG_HEX);
    hdr_set(&h, "x-timestamp", "1750183823822");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* Upper-case hex is the same signature. */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)toupper((unsigned char)HOOK_SIG_HEX[i]);
    hdr_set(&h, "x-signature", upper);
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* Tampered body. */
    hdr_set(&h, "x-signature", HOOK_SIG_HEX);
    char tampered[] = HOOK_BODY;
    tampered[strlen(tampered) - 5] ^= 1;
    assert_int_equal(auth(&a, &h, tampered, NOW_MS), 0);
    /* A timestamp other than the signed one. */
    hdr_set(&h, "x-timestamp", "1750183823823");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* Truncated or garbage signatures. */
    hdr_set(&h, "x-timestamp", "1750183823822");
    hdr_set(&h, "x-signature", "6fc2e957");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    hdr_set(&h, "x-signature", "");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* Wrong key. */
    struct cg_vapi_auth b = {.hmac_secret = "whsec_other"};
    hdr_set(&h, "x-signature", HOOK_SIG_HEX);
    assert_int_equal(auth(&b, &h, HOOK_BODY, NOW_MS), 0);
    /* Missing timestamp. */
    struct hdrs only_sig = {0};
    hdr_set(&only_sig, "x-signature", HOOK_SIG_HEX);
    assert_int_equal(auth(&a, &only_sig, HOOK_BODY, NOW_MS), 0);
}

/* Signs ts "." body as a Vapi webhook would (base/crypto; the fixed vectors
 * above check those primitives against values computed elsewhere). */
static void sign(enum cg_digest md, const char *key, const char *ts, const char *body, int base64,
                 const char *prefix, char *out, size_t outlen)
{
    char payload[4096];
    int plen = snprintf(payload, sizeof payload, "%s.%s", ts, body);
    assert_true(plen > 0 && (size_t)plen < sizeof payload);
    unsigned char mac[CG_DIGEST_MAX];
    size_t mlen = cg_hmac(md, key, strlen(key), payload, (size_t)plen, mac);
    assert_true(mlen > 0);
    size_t n = (size_t)snprintf(out, outlen, "%s", prefix);
    if (base64) {
        assert_true(outlen - n > 4 * ((mlen + 2) / 3));
        cg_base64_encode(mac, mlen, out + n);
    } else {
        assert_true(outlen - n > 2 * mlen);
        cg_hex_encode(mac, mlen, out + n);
    }
}

static void test_auth_hmac_prefix_and_headers(void **state)
{
    (void)state;
    struct cg_vapi_auth a = {.hmac_secret = HMAC_KEY,
                             .hmac_algorithm = "sha256",
                             .hmac_signature_header = "x-vapi-signature",
                             .hmac_timestamp_header = "x-vapi-timestamp",
                             .hmac_prefix = "sha256=",
                             .hmac_encoding = "hex"};
    char sig[256];
    sign(CG_SHA256, HMAC_KEY, "1750183823822", HOOK_BODY, 0, "sha256=", sig, sizeof sig);
    assert_string_equal(sig, "sha256=" HOOK_SIG_HEX);
    struct hdrs h = {0};
    hdr_set(&h, "X-Vapi-Signature", sig);
    hdr_set(&h, "X-Vapi-Timestamp", "1750183823822");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* Without the prefix. */
    hdr_set(&h, "X-Vapi-Signature", HOOK_SIG_HEX);
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* The default header names are not consulted. */
    struct hdrs d = {0};
    hdr_set(&d, "x-signature", sig);
    hdr_set(&d, "x-timestamp", "1750183823822");
    assert_int_equal(auth(&a, &d, HOOK_BODY, NOW_MS), 0);
}

static void test_auth_hmac_base64(void **state)
{
    (void)state;
    struct cg_vapi_auth a = {
        .hmac_secret = HMAC_KEY, .hmac_algorithm = "sha512", .hmac_encoding = "base64"};
    struct hdrs h = {0};
    hdr_set(&h, "x-signature", HOOK_SIG_B64_512);
    hdr_set(&h, "x-timestamp", "1750183823"); /* seconds */
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* Unpadded and URL-safe forms decode to the same bytes. */
    char unpadded[] = HOOK_SIG_B64_512;
    unpadded[strlen(unpadded) - 2] = '\0';
    hdr_set(&h, "x-signature", unpadded);
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    char urlsafe[] = HOOK_SIG_B64_512;
    for (char *p = urlsafe; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    hdr_set(&h, "x-signature", urlsafe);
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* Hex where Base64 is configured. */
    char hex[256];
    sign(CG_SHA512, HMAC_KEY, "1750183823", HOOK_BODY, 0, "", hex, sizeof hex);
    hdr_set(&h, "x-signature", hex);
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);

    /* sha1 + base64 */
    struct cg_vapi_auth s1 = {
        .hmac_secret = HMAC_KEY, .hmac_algorithm = "sha1", .hmac_encoding = "base64"};
    char sig[256];
    sign(CG_SHA1, HMAC_KEY, "1750183829", HOOK_BODY, 1, "", sig, sizeof sig);
    hdr_set(&h, "x-signature", sig);
    hdr_set(&h, "x-timestamp", "1750183829");
    assert_int_equal(auth(&s1, &h, HOOK_BODY, NOW_MS), 1);
    /* An unknown algorithm never authenticates. */
    s1.hmac_algorithm = "md5";
    assert_int_equal(auth(&s1, &h, HOOK_BODY, NOW_MS), 0);
}

static void test_auth_hmac_timestamps(void **state)
{
    (void)state;
    struct cg_vapi_auth a = {.hmac_secret = HMAC_KEY};
    char sig[256];
    struct hdrs h = {0};
    /* Milliseconds within the default 300 s. */
    sign(CG_SHA256, HMAC_KEY, "1750183600000", HOOK_BODY, 0, "", sig, sizeof sig);
    hdr_set(&h, "x-signature", sig);
    hdr_set(&h, "x-timestamp", "1750183600000");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* Seconds, slightly in the future. */
    sign(CG_SHA256, HMAC_KEY, "1750183900", HOOK_BODY, 0, "", sig, sizeof sig);
    hdr_set(&h, "x-timestamp", "1750183900");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* Stale: 301 s old, correctly signed. */
    sign(CG_SHA256, HMAC_KEY, "1750183529", HOOK_BODY, 0, "", sig, sizeof sig);
    hdr_set(&h, "x-timestamp", "1750183529");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* ... accepted with a wider window. */
    a.max_skew_s = 600;
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    a.max_skew_s = 0;
    /* Too far in the future. */
    sign(CG_SHA256, HMAC_KEY, "1750184200000", HOOK_BODY, 0, "", sig, sizeof sig);
    hdr_set(&h, "x-timestamp", "1750184200000");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* Malformed timestamps. */
    const char *bad[] = {
        "", "-1750183823", "1750183823.5", " 1750183823", "17501838x3", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sign(CG_SHA256, HMAC_KEY, bad[i], HOOK_BODY, 0, "", sig, sizeof sig);
        hdr_set(&h, "x-timestamp", bad[i]);
        assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    }
}

static void test_auth_both_configured(void **state)
{
    (void)state;
    struct cg_vapi_auth a = {.secret = "legacy-secret-1", .hmac_secret = HMAC_KEY};
    struct hdrs h = {0};
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* Legacy header alone: refused while the HMAC plan is in force... */
    hdr_set(&h, "x-vapi-secret", "legacy-secret-1");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
    /* ...unless the operator allows both for a migration. */
    a.accept_secret_with_hmac = 1;
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    /* HMAC alone. */
    struct hdrs m = {0};
    hdr_set(&m, "x-signature", HOOK_SIG_HEX);
    hdr_set(&m, "x-timestamp", "1750183823822");
    assert_int_equal(auth(&a, &m, HOOK_BODY, NOW_MS), 1);
    /* A bad HMAC with a good secret still passes (migration); two bad do not. */
    hdr_set(&h, "x-signature", "00");
    hdr_set(&h, "x-timestamp", "1750183823822");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 1);
    hdr_set(&h, "x-vapi-secret", "legacy-secret-2");
    assert_int_equal(auth(&a, &h, HOOK_BODY, NOW_MS), 0);
}

static const char *sign_hdr(const char *name, void *arg)
{
    char **lines = arg;
    size_t n = strlen(name);
    for (; *lines; lines++)
        if (strncasecmp(*lines, name, n) == 0 && (*lines)[n] == ':')
            return *lines + n + 2;
    return NULL;
}

/* What cg_vapi_sign writes, the verifier (configured alike) accepts, for
 * every algorithm and encoding and both timestamp units; a changed body
 * or another secret is refused. */
static void test_sign_round_trip(void **state)
{
    (void)state;
    const char *body = "{\"message\":{\"type\":\"tool-calls\"}}";
    const char *algs[] = {"sha256", "sha512", "sha1"};
    const char *encs[] = {"hex", "base64"};
    uint64_t now = 1750183823822ULL;
    for (int a = 0; a < 3; a++)
        for (int e = 0; e < 2; e++)
            for (int unit = 0; unit < 2; unit++) {
                struct cg_vapi_auth au = {.secret = "static-1",
                                          .hmac_secret = "hmac-1",
                                          .hmac_algorithm = algs[a],
                                          .hmac_encoding = encs[e],
                                          .hmac_prefix = "v1=",
                                          .hmac_signature_header = "x-vapi-signature",
                                          .hmac_timestamp_header = "x-vapi-ts"};
                char *lines[CG_VAPI_SIGN_MAX + 1];
                assert_int_equal(cg_vapi_sign(&au, body, strlen(body), now, unit, lines), 3);
                assert_string_equal(sign_hdr("x-vapi-secret", lines), "static-1");
                const char *ts = sign_hdr("x-vapi-ts", lines);
                assert_non_null(ts);
                assert_string_equal(ts, unit ? "1750183823822" : "1750183823");
                assert_true(strncmp(sign_hdr("x-vapi-signature", lines), "v1=", 3) == 0);
                struct cg_vapi_auth only_hmac = au;
                only_hmac.secret = NULL;
                assert_int_equal(
                    cg_vapi_authenticate(&only_hmac, sign_hdr, lines, body, strlen(body), now), 1);
                assert_int_equal(cg_vapi_authenticate(&only_hmac, sign_hdr, lines, "{}", 2, now),
                                 0);
                only_hmac.hmac_secret = "hmac-2";
                assert_int_equal(
                    cg_vapi_authenticate(&only_hmac, sign_hdr, lines, body, strlen(body), now), 0);
                cg_vapi_sign_free(lines);
                for (int i = 0; i <= CG_VAPI_SIGN_MAX; i++)
                    assert_null(lines[i]);
            }
    /* The static secret alone; nothing configured; a bad algorithm. */
    char *lines[CG_VAPI_SIGN_MAX + 1];
    struct cg_vapi_auth st = {.secret = "static-1"};
    assert_int_equal(cg_vapi_sign(&st, body, strlen(body), now, 1, lines), 1);
    assert_string_equal(lines[0], "x-vapi-secret: static-1");
    assert_null(lines[1]);
    cg_vapi_sign_free(lines);
    struct cg_vapi_auth none = {0};
    assert_int_equal(cg_vapi_sign(&none, body, strlen(body), now, 1, lines), 0);
    assert_null(lines[0]);
    struct cg_vapi_auth bad = {.hmac_secret = "h", .hmac_algorithm = "md5"};
    assert_int_equal(cg_vapi_sign(&bad, body, strlen(body), now, 1, lines), -1);
    assert_null(lines[0]);
}

int main(void)
{
    cg_log_set_level(CG_LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_ok),
        T(test_create_max_duration),
        T(test_create_context_and_server_messages),
        T(test_create_overlimit_string),
        T(test_create_overlimit_array),
        T(test_create_overlimit_error_field),
        T(test_create_concurrency_blocked),
        T(test_create_overlimit_batch_shape),
        T(test_create_validation_rejected),
        T(test_create_no_twiml),
        T(test_create_auth),
        T(test_create_retry),
        T(test_create_429_concurrency),
        T(test_create_timeout),
        T(test_create_anonymous),
        T(test_create_invalid_input),
        T(test_new_rejects_bad_opts),
        T(test_free_with_pending),
        T(test_get_call),
        T(test_list_calls),
        cmocka_unit_test(test_parse_status_ended),
        cmocka_unit_test(test_parse_status_live),
        cmocka_unit_test(test_parse_end_of_call_report),
        cmocka_unit_test(test_parse_hang_and_other),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_deep_nesting),
        cmocka_unit_test(test_auth_secret),
        cmocka_unit_test(test_auth_nothing_configured),
        cmocka_unit_test(test_auth_hmac_hex_vector),
        cmocka_unit_test(test_auth_hmac_prefix_and_headers),
        cmocka_unit_test(test_auth_hmac_base64),
        cmocka_unit_test(test_auth_hmac_timestamps),
        cmocka_unit_test(test_auth_both_configured),
        cmocka_unit_test(test_sign_round_trip),
        cmocka_unit_test(test_customer_number),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
