/*
 * The relay of the assistant's other server messages (src/gate/relay.c)
 * end to end: real callgate processes and a real redis-server, Twilio and
 * Vapi played by tests/harness/fakeapi.c, and the user's own server played
 * by a loopback server on a thread of this process that answers tool calls
 * (tests/harness/fakesrv.c). The test posts Vapi server messages signed as
 * Vapi signs them and checks what the user's server received (the body
 * byte for byte, the headers signed again for that hop) and what Vapi got
 * back: the tool's answer, or an error answer the assistant can go on from
 * when the server is slow, fails, is not there or answers too much.
 * Without VAPI_FORWARD_URL the messages are acknowledged and counted per
 * type in /metrics, with one warning per type.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "demo/proc.h"
#include "fakesrv.h"

#include "gate_kit.h"

#define STATIC_SEC  "relay-static-secret"
#define HMAC_SEC    "relay-hmac-secret"
#define SIG_PREFIX  "sha256="
#define TOOL_ANSWER "{\"results\":[{\"toolCallId\":\"call_1\",\"result\":\"order 42 shipped\"}]}"
#define TOOL_MESSAGE                                                                               \
    "{\"message\":{\"type\":\"tool-calls\",\"timestamp\":1750183823822,"                           \
    "\"toolCallList\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"           \
    "\"lookup_order\",\"arguments\":{\"order\":\"42\"}}}],"                                        \
    "\"call\":{\"id\":\"0b6a4a6c-relay-test\"}}}"

/* ---- the user's own server ---- */

enum up_mode { UP_TOOL, UP_SLOW, UP_FAIL500, UP_HUGE };

struct upstream {
    struct cgt_srv *srv;
    pthread_mutex_t mu;
    enum up_mode mode;
    int requests;
    char *body;
    char *secret, *timestamp, *signature, *hop, *content_type;
};

static struct upstream up;

static char *hdup(struct evkeyvalq *h, const char *name)
{
    const char *v = evhttp_find_header(h, name);
    return v ? cg_strdup(v) : NULL;
}

static void send_up(struct evhttp_request *req, int status, const char *body, int retry_after,
                    void *arg)
{
    (void)retry_after;
    (void)arg;
    cgt_srv_header(req, "Content-Type", "application/json; charset=utf-8");
    cgt_srv_send(req, status, body);
}

static void on_upstream(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    pthread_mutex_lock(&up.mu);
    up.requests++;
    free(up.body);
    free(up.secret);
    free(up.timestamp);
    free(up.signature);
    free(up.hop);
    free(up.content_type);
    up.body = cgt_srv_body(req);
    up.secret = hdup(in, "x-vapi-secret");
    up.timestamp = hdup(in, "x-timestamp");
    up.signature = hdup(in, "x-signature");
    up.hop = hdup(in, "X-Callgate-Relay-Hop");
    up.content_type = hdup(in, "Content-Type");
    enum up_mode mode = up.mode;
    pthread_mutex_unlock(&up.mu);
    switch (mode) {
    case UP_TOOL:
        cgt_srv_answer(up.srv, req, 0, 200, cg_strdup(TOOL_ANSWER), 0, send_up, NULL);
        break;
    case UP_SLOW:
        cgt_srv_answer(up.srv, req, 4000, 200, cg_strdup(TOOL_ANSWER), 0, send_up, NULL);
        break;
    case UP_FAIL500:
        cgt_srv_answer(up.srv, req, 0, 500, cg_strdup("{\"error\":\"boom\"}"), 0, send_up, NULL);
        break;
    case UP_HUGE: {
        /* 1.5 MiB of a valid answer: over GATE_RELAY_MAX_RESPONSE. */
        size_t n = 1536 * 1024;
        char *big = cg_malloc(n + 64);
        int k = snprintf(big, 64, "{\"results\":[{\"toolCallId\":\"call_1\",\"result\":\"");
        memset(big + k, 'x', n);
        strcpy(big + k + n, "\"}]}");
        cgt_srv_answer(up.srv, req, 0, 200, big, 0, send_up, NULL);
        break;
    }
    }
}

static void set_mode(enum up_mode m)
{
    pthread_mutex_lock(&up.mu);
    up.mode = m;
    pthread_mutex_unlock(&up.mu);
}

static int up_requests(void)
{
    pthread_mutex_lock(&up.mu);
    int n = up.requests;
    pthread_mutex_unlock(&up.mu);
    return n;
}

/* ---- fixture ---- */

/* The relay's settings (callgate's defaults for the others). */
static const char *const relay_env[] = {"VAPI_WEBHOOK_SECRET=" STATIC_SEC,
                                        "VAPI_HMAC_SECRET=" HMAC_SEC,
                                        "VAPI_ACCEPT_STATIC_SECRET=1",
                                        "VAPI_HMAC_PREFIX=" SIG_PREFIX,
                                        "INSTANCE_ID=relay-gate",
                                        "SHUTDOWN_GRACE_MS=2000",
                                        NULL};

static int setup_relay(void **state)
{
    setup(state);
    struct fixture *f = *state;
    f->env = relay_env;
    f->callgate_defaults = 1;
    memset(&up, 0, sizeof up);
    pthread_mutex_init(&up.mu, NULL);
    up.srv = cgt_srv_new("user's server");
    cgt_srv_run(up.srv, on_upstream, NULL, 1);
    return 0;
}

static int teardown_relay(void **state)
{
    cgt_srv_stop(up.srv);
    free(up.body);
    free(up.secret);
    free(up.timestamp);
    free(up.signature);
    free(up.hop);
    free(up.content_type);
    pthread_mutex_destroy(&up.mu);
    return teardown(state);
}

/* HMAC-SHA256 of "{ts}.{body}" under HMAC_SEC, as SIG_PREFIX + hex. */
static void sign(const char *ts, const char *body, char *out, size_t n)
{
    struct cg_buf p;
    cg_buf_init(&p, CG_BUF_UNBOUNDED);
    cg_buf_printf(&p, "%s.%s", ts, body);
    unsigned char mac[CG_DIGEST_MAX];
    size_t len = cg_hmac(CG_SHA256, HMAC_SEC, strlen(HMAC_SEC), p.data, p.len, mac);
    cg_buf_free(&p);
    char hex[2 * CG_DIGEST_MAX + 1];
    cg_hex_encode(mac, len, hex);
    snprintf(out, n, "%s%s", SIG_PREFIX, hex);
}

/* Posts a server message to /call-ended signed with the HMAC plan; the
 * timestamp in seconds (ts_ms 0) or milliseconds. extra: one more header
 * line or NULL. */
static void post_message(struct fixture *f, const char *body, int ts_ms, const char *extra,
                         struct cgt_resp *r)
{
    char url[128], ts[32], sig[200], tsh[64], sigh[256];
    snprintf(url, sizeof url, "%s/call-ended", f->g[0].base);
    uint64_t now = cg_wall_ms();
    snprintf(ts, sizeof ts, "%llu", (unsigned long long)(ts_ms ? now : now / 1000));
    sign(ts, body, sig, sizeof sig);
    snprintf(tsh, sizeof tsh, "x-timestamp: %s", ts);
    snprintf(sigh, sizeof sigh, "x-signature: %s", sig);
    const char *h[] = {"Content-Type: application/json", tsh, sigh, extra, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
}

static char *header_of(const struct cgt_resp *r, const char *name)
{
    char *v = cgt_resp_header(r, name);
    if (v == NULL)
        fail_msg("no %s header in the answer (status %ld): %s", name, r->status,
                 r->body ? r->body : "");
    return v;
}

/* The answer Vapi gets when the upstream failed: 200, the outcome in
 * X-Callgate-Relay, an error for tool call call_1. */
static void assert_error_answer(struct fixture *f, const struct cgt_resp *r, const char *outcome)
{
    if (r->status != 200) {
        cgt_dump_log_tail(&f->g[0].proc, "callgate", 4000);
        fail_msg("expected 200, got %ld: %s", r->status, r->body ? r->body : "");
    }
    char *o = header_of(r, "X-Callgate-Relay");
    assert_string_equal(o, outcome);
    free(o);
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    assert_non_null(j);
    json_t *res = json_array_get(json_object_get(j, "results"), 0);
    assert_string_equal(json_string_value(json_object_get(res, "toolCallId")), "call_1");
    assert_string_equal(json_string_value(json_object_get(res, "name")), "lookup_order");
    const char *err = json_string_value(json_object_get(res, "error"));
    assert_non_null(err);
    assert_true(strlen(err) > 0);
    assert_null(json_object_get(res, "result"));
    json_decref(j);
}

/* The value of one /metrics sample (0 when absent). */
static double metric(struct fixture *f, const char *sample)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", f->g[0].base);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    double v = 0;
    const char *p = r.body ? strstr(r.body, sample) : NULL;
    if (p != NULL && p[strlen(sample)] == ' ')
        v = strtod(p + strlen(sample) + 1, NULL);
    cgt_resp_free(&r);
    return v;
}

/* Lines of the log holding both parts. */
static int log_lines(struct fixture *f, const char *a, const char *b)
{
    char *out = cgt_proc_output(&f->g[0].proc);
    int n = 0;
    for (char *line = out; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, a) && strstr(line, b))
            n++;
        line = nl ? nl + 1 : NULL;
    }
    free(out);
    return n;
}

/* ---- tests ---- */

/* A tool call goes to the user's server byte for byte, signed again for
 * that hop with the same secrets (the timestamp in the unit Vapi used),
 * and the tool's answer comes back to Vapi unchanged. */
static void test_tool_call_relayed_and_signed(void **state)
{
    struct fixture *f = *state;
    char fw[160];
    snprintf(fw, sizeof fw, "VAPI_FORWARD_URL=%s/vapi/tools?tenant=7", cgt_srv_url(up.srv));
    const char *extra[] = {fw, NULL};
    start_gate(f, 0, extra);
    set_mode(UP_TOOL);

    for (int ts_ms = 0; ts_ms <= 1; ts_ms++) {
        struct cgt_resp r;
        post_message(f, TOOL_MESSAGE, ts_ms, NULL, &r);
        if (r.status != 200) {
            cgt_dump_log_tail(&f->g[0].proc, "callgate", 4000);
            fail_msg("tool call answered %ld: %s", r.status, r.body ? r.body : "");
        }
        assert_string_equal(r.body, TOOL_ANSWER);
        char *ct = header_of(&r, "Content-Type");
        assert_string_equal(ct, "application/json; charset=utf-8");
        free(ct);
        char *o = header_of(&r, "X-Callgate-Relay");
        assert_string_equal(o, "relayed");
        free(o);
        cgt_resp_free(&r);

        pthread_mutex_lock(&up.mu);
        assert_int_equal(up.requests, ts_ms + 1);
        assert_string_equal(up.body, TOOL_MESSAGE);
        assert_non_null(up.content_type);
        assert_true(strncmp(up.content_type, "application/json", 16) == 0);
        assert_non_null(up.secret);
        assert_string_equal(up.secret, STATIC_SEC);
        assert_non_null(up.hop);
        assert_string_equal(up.hop, "relay-gate");
        assert_non_null(up.timestamp);
        assert_non_null(up.signature);
        /* A fresh signature over the forwarded body, checked here with
         * HMAC itself rather than with callgate's own verifier. */
        char want[200];
        sign(up.timestamp, up.body, want, sizeof want);
        assert_string_equal(up.signature, want);
        unsigned long long ts = strtoull(up.timestamp, NULL, 10);
        unsigned long long now = cg_wall_ms();
        if (ts_ms) {
            assert_true(ts >= 100000000000ULL);
            assert_true(ts + 60000 >= now && ts <= now + 60000);
        } else {
            assert_true(ts < 100000000000ULL);
            assert_true(ts + 60 >= now / 1000 && ts <= now / 1000 + 60);
        }
        pthread_mutex_unlock(&up.mu);
    }

    /* A forged message is refused before anything is forwarded. */
    char url[128];
    snprintf(url, sizeof url, "%s/call-ended", f->g[0].base);
    const char *h[] = {"Content-Type: application/json", "x-timestamp: 1", "x-signature: sha256=00",
                       NULL};
    struct cgt_resp r;
    cgt_http("POST", url, h, TOOL_MESSAGE, strlen(TOOL_MESSAGE), &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_int_equal(up_requests(), 2);

    /* A message that already went through a callgate (a forward URL
     * leading back) is not sent round again. */
    post_message(f, TOOL_MESSAGE, 1, "X-Callgate-Relay-Hop: elsewhere", &r);
    assert_error_answer(f, &r, "loop");
    cgt_resp_free(&r);
    assert_int_equal(up_requests(), 2);

    /* The gate's own messages: Vapi gets the gate's answer, and the
     * user's server still receives a copy, signed alike. */
    const char *report = "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":"
                         "\"customer-ended-call\",\"call\":{\"id\":\"0b6a4a6c-no-such-call\"}}}";
    post_message(f, report, 1, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "unknown");
    json_decref(j);
    cgt_resp_free(&r);
    uint64_t until = cgt_srv_deadline(5000);
    while (up_requests() < 3)
        if (cgt_srv_nap_until(until) != 0)
            fail_msg("no copy of the end-of-call report reached the user's server");
    pthread_mutex_lock(&up.mu);
    assert_string_equal(up.body, report);
    assert_string_equal(up.secret, STATIC_SEC);
    char want[200];
    sign(up.timestamp, up.body, want, sizeof want);
    assert_string_equal(up.signature, want);
    pthread_mutex_unlock(&up.mu);

    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"relayed\",type=\"tool-calls\"}"), 2);
    assert_int_equal(metric(f, "callgate_vapi_messages_total{outcome=\"relayed\",type="
                               "\"end-of-call-report\"}"),
                     1);
    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"loop\",type=\"tool-calls\"}"), 1);
    stop_gate(f, 0);
}

/* Slow, failing, absent and over-talkative servers: Vapi always gets an
 * answer the assistant can go on from, in time. */
static void test_upstream_failures(void **state)
{
    struct fixture *f = *state;
    char fw[160];
    snprintf(fw, sizeof fw, "VAPI_FORWARD_URL=%s/tools", cgt_srv_url(up.srv));
    const char *extra[] = {fw, "VAPI_FORWARD_TIMEOUT_MS=500", NULL};
    start_gate(f, 0, extra);
    struct cgt_resp r;

    set_mode(UP_SLOW);
    post_message(f, TOOL_MESSAGE, 1, NULL, &r);
    assert_error_answer(f, &r, "timeout");
    cgt_resp_free(&r);

    set_mode(UP_FAIL500);
    post_message(f, TOOL_MESSAGE, 1, NULL, &r);
    assert_error_answer(f, &r, "upstream_error");
    cgt_resp_free(&r);

    set_mode(UP_HUGE);
    post_message(f, TOOL_MESSAGE, 1, NULL, &r);
    assert_error_answer(f, &r, "too_large");
    cgt_resp_free(&r);

    /* Other request types get {"error":...}; informational ones too (Vapi
     * needs only a 2xx for those). */
    set_mode(UP_FAIL500);
    const char *transfer = "{\"message\":{\"type\":\"transfer-destination-request\","
                           "\"call\":{\"id\":\"0b6a4a6c-relay-test\"}}}";
    post_message(f, transfer, 1, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    assert_non_null(json_string_value(json_object_get(j, "error")));
    json_decref(j);
    cgt_resp_free(&r);

    /* And the server works again: the relay never got stuck. */
    set_mode(UP_TOOL);
    post_message(f, TOOL_MESSAGE, 1, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, TOOL_ANSWER);
    cgt_resp_free(&r);

    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"timeout\",type=\"tool-calls\"}"), 1);
    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"upstream_error\",type=\"tool-calls\"}"),
        1);
    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"too_large\",type=\"tool-calls\"}"), 1);
    assert_int_equal(metric(f, "callgate_vapi_messages_total{outcome=\"upstream_error\",type="
                               "\"transfer-destination-request\"}"),
                     1);
    /* One warning for the burst of failures, not one per message. */
    assert_int_equal(log_lines(f, "vapi message not relayed; vapi got an error answer", "\""), 1);
    stop_gate(f, 0);
}

/* Nothing listens at the forward URL: connection refused. */
static void test_upstream_refused(void **state)
{
    struct fixture *f = *state;
    char fw[160];
    snprintf(fw, sizeof fw, "VAPI_FORWARD_URL=http://127.0.0.1:%d/tools", cg_free_port());
    /* A timeout past Vapi's own default is allowed, with a warning. */
    const char *extra[] = {fw, "VAPI_FORWARD_TIMEOUT_MS=25000", NULL};
    start_gate(f, 0, extra);
    assert_true(log_lines(f, "VAPI_FORWARD_TIMEOUT_MS=25000 is not below Vapi's default", "") >= 1);
    struct cgt_resp r;
    post_message(f, TOOL_MESSAGE, 1, NULL, &r);
    assert_error_answer(f, &r, "unreachable");
    cgt_resp_free(&r);
    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"unreachable\",type=\"tool-calls\"}"), 1);
    stop_gate(f, 0);
}

/* Without a forward URL: acknowledged as before, counted per type, one
 * warning per type; the gate's own messages are not counted here. */
static void test_acknowledged_and_counted(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    const char *conv = "{\"message\":{\"type\":\"conversation-update\",\"messages\":[]}}";
    const char *odd = "{\"message\":{\"type\":\"brand-new-type\"}}";
    const char *status = "{\"message\":{\"type\":\"status-update\",\"status\":\"in-progress\","
                         "\"call\":{\"id\":\"0b6a4a6c-relay-test\"}}}";
    const char *bodies[] = {TOOL_MESSAGE, TOOL_MESSAGE, TOOL_MESSAGE, conv, odd, odd, status};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct cgt_resp r;
        post_message(f, bodies[i], 1, NULL, &r);
        assert_int_equal(r.status, 200);
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(j, "result")), "ignored");
        json_decref(j);
        cgt_resp_free(&r);
    }
    assert_int_equal(up_requests(), 0);
    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"acknowledged\",type=\"tool-calls\"}"), 3);
    assert_int_equal(metric(f, "callgate_vapi_messages_total{outcome=\"acknowledged\",type="
                               "\"conversation-update\"}"),
                     1);
    assert_int_equal(
        metric(f, "callgate_vapi_messages_total{outcome=\"acknowledged\",type=\"other\"}"), 2);
    assert_int_equal(metric(f, "callgate_vapi_messages_total{outcome=\"acknowledged\",type="
                               "\"status-update\"}"),
                     0);
    const char *warning = "not consumed by callgate";
    assert_int_equal(log_lines(f, warning, "\"type\":\"tool-calls\""), 1);
    assert_int_equal(log_lines(f, warning, "\"type\":\"conversation-update\""), 1);
    assert_int_equal(log_lines(f, warning, "\"type\":\"brand-new-type\""), 1);
    assert_int_equal(log_lines(f, warning, "\"type\":\"status-update\""), 0);
    stop_gate(f, 0);
}

/* A forward URL that would send the secret in clear, or lead back to
 * callgate itself, stops callgate at start, naming the option. */
static void test_bad_forward_url_refused(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"VAPI_FORWARD_URL=http://tools.example.com/vapi",
                         "VAPI_FORWARD_URL=ftp://127.0.0.1/x",
                         "VAPI_FORWARD_URL=https://tools.example.com/vapi#frag", NULL};
    for (size_t i = 0; bad[i]; i++) {
        const char *extra[] = {bad[i], NULL};
        spawn_gate(f, 0, extra);
        int rc = cgt_wait_exit(&f->g[0].proc, 15000);
        char *out = cgt_proc_output(&f->g[0].proc);
        if (rc != 2 || strstr(out, "VAPI_FORWARD_URL") == NULL)
            fail_msg("%s: exit %d, output: %s", bad[i], rc, out);
        free(out);
        f->g[0].proc.pid = 0;
    }
    /* PUBLIC_URL's own /call-ended: the spawn sets PUBLIC_URL to f->g[0].base. */
    char loop[160];
    int port = cg_free_port();
    snprintf(loop, sizeof loop, "VAPI_FORWARD_URL=http://127.0.0.1:%d/call-ended/", port);
    char pub[96], sport[32];
    snprintf(pub, sizeof pub, "PUBLIC_URL=http://127.0.0.1:%d", port);
    snprintf(sport, sizeof sport, "PORT=%d", port);
    const char *extra[] = {loop, pub, sport, NULL};
    spawn_gate(f, 0, extra);
    int rc = cgt_wait_exit(&f->g[0].proc, 15000);
    char *out = cgt_proc_output(&f->g[0].proc);
    if (rc != 2 || strstr(out, "points at callgate's own /call-ended") == NULL)
        fail_msg("loop: exit %d, output: %s", rc, out);
    free(out);
    f->g[0].proc.pid = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tool_call_relayed_and_signed, setup_relay,
                                        teardown_relay),
        cmocka_unit_test_setup_teardown(test_upstream_failures, setup_relay, teardown_relay),
        cmocka_unit_test_setup_teardown(test_upstream_refused, setup_relay, teardown_relay),
        cmocka_unit_test_setup_teardown(test_acknowledged_and_counted, setup_relay, teardown_relay),
        cmocka_unit_test_setup_teardown(test_bad_forward_url_refused, setup_relay, teardown_relay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
