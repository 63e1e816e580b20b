/*
 * Call control end to end (gate/control.c): a real callgate and a real
 * redis-server, Twilio's and Vapi's APIs played by tests/harness/fakeapi.c.
 * The assistant's phone-call-control messages are posted as Vapi posts
 * them; the test reads what callgate pushed to Twilio, the caller's record
 * and the queue log in Redis, and /metrics.
 *
 * Covered: a forward to a number (extension, caller id, message), to SIP,
 * to the human queue (<Enqueue workflowSid> with the task's attributes and
 * the TaskQueue's hold URL), a hang-up, a forward Twilio refuses (the
 * caller hears the transfer-failed message), a caller already gone, the
 * slot held until Vapi's end and the next caller admitted at once with
 * the queue context in variableValues, bad messages (400, nothing
 * changed), and /transfer-status.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/form.h"
#include "demo/proc.h"
#include "fakeapi.h"
#include "twilio/signature.h"

#define ACCOUNT_SID "AC0123456789abcdef0123456789abcdef"
#define AUTH_TOKEN  "test-twilio-auth-token-42"
#define QUEUE_SID   "QU0123456789abcdef0123456789abcdef"
#define VAPI_KEY    "test-vapi-api-key-7"
#define VAPI_SECRET "test-vapi-webhook-secret"
#define CALLER      "+15557770000"
#define DIALED      "+15550002222"
#define WORKFLOW    "WW0123456789abcdef0123456789abcdef"
#define TASK_QUEUE  "WQ0123456789abcdef0123456789abcdef"
#define HUMANS      "+15550009999"
#define FAILED_MSG  "We could not reach them. Goodbye."
#define P           "cg:{default}:"
#define SOON        5000

struct fixture {
    struct cg_redis_server rs;
    struct cgt_fake *fake;
    struct cgt_proc proc;
    char base[64];
};

static unsigned sid_counter;

static void new_sid(char out[40])
{
    snprintf(out, 40, "CA%032x", 0xc0000 + ++sid_counter);
}

#define must(f, cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            cgt_dump_log_tail(&(f)->proc, "callgate", 6000);                                       \
            fail_msg(__VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)

static int setup(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
    int port = cg_free_port();
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", port);
    char portv[32], pub[96], redis[96], twbase[96], vbase[96];
    snprintf(portv, sizeof portv, "PORT=%d", port);
    snprintf(pub, sizeof pub, "PUBLIC_URL=%s", f->base);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->rs.url);
    snprintf(twbase, sizeof twbase, "TWILIO_API_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(vbase, sizeof vbase, "VAPI_BASE_URL=%s", cgt_fake_url(f->fake));
    static const char *const env[] = {
        "BIND_ADDRESS=127.0.0.1", "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN=" AUTH_TOKEN, "TWILIO_QUEUE_SID=" QUEUE_SID, "VAPI_API_KEY=" VAPI_KEY,
        "VAPI_PHONE_NUMBER_ID=phone-1", "VAPI_ASSISTANT_ID=assistant-1",
        "VAPI_WEBHOOK_SECRET=" VAPI_SECRET, "MAX_CONCURRENCY=1", "SWEEP_INTERVAL_MS=100",
        /* Long enough that only Vapi's end releases in a test. */
        "END_GRACE_MS=60000", "HANDOFF_WORKFLOW_SID=" WORKFLOW,
        "HANDOFF_TASK_QUEUE_SID=" TASK_QUEUE, "HANDOFF_NUMBERS=" HUMANS ", sip:humans@example.com",
        "TRANSFER_FAILED_MESSAGE=" FAILED_MSG, "LOG_LEVEL=debug", NULL};
    const char *const mine[] = {portv, pub, redis, twbase, vbase, NULL};
    const char *const *lists[] = {mine, env, NULL};
    cgt_spawn_callgate(&f->proc, lists);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    must(f, cgt_wait_status(url, 200, 15000) == 0, "callgate did not become healthy");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = cgt_stop(&f->proc, SIGTERM, 10000);
    if (rc != 0)
        cgt_dump_log_tail(&f->proc, "callgate", 6000);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED), 0);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNKNOWN), 0);
    cgt_fake_stop(f->fake);
    cg_redis_server_stop(&f->rs);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* ---- requests ---- */

static void twilio_post(struct fixture *f, const char *path, const char *const *kv,
                        const char *token, struct cgt_resp *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    struct cg_form form;
    cg_form_init(&form);
    for (size_t k = 0; kv[k] && kv[k + 1]; k += 2)
        cg_form_add(&form, kv[k], kv[k + 1]);
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(token, url, &form, sig), 0);
    char sigh[64];
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(&form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
    free(body);
    cg_form_free(&form);
}

static void incoming(struct fixture *f, const char *sid, struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,    "AccountSid", ACCOUNT_SID, "From", CALLER,
                        "To",      DIALED, "CallStatus", "ringing",   NULL};
    twilio_post(f, "/incoming", kv, AUTH_TOKEN, r);
}

static void vapi_post(struct fixture *f, const char *secret, const char *body, struct cgt_resp *r)
{
    char url[256], sec[128];
    snprintf(url, sizeof url, "%s/call-ended", f->base);
    snprintf(sec, sizeof sec, "x-vapi-secret: %s", secret);
    const char *h[] = {"Content-Type: application/json", sec, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
}

/* Posts a phone-call-control message; returns the answer's "result"
 * (malloc'd) and expects 200. */
static char *control(struct fixture *f, const char *vapi_id, const char *request,
                     const char *destination)
{
    char body[2048];
    if (destination)
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"phone-call-control\",\"request\":\"%s\","
                 "\"destination\":%s,\"call\":{\"id\":\"%s\",\"analysis\":{\"summary\":"
                 "\"Wants a <refund>.\"}},\"timestamp\":1733500000000}}",
                 request, destination, vapi_id);
    else
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"phone-call-control\",\"request\":\"%s\","
                 "\"call\":{\"id\":\"%s\"}}}",
                 request, vapi_id);
    struct cgt_resp r;
    vapi_post(f, VAPI_SECRET, body, &r);
    must(f, r.status == 200, "control answered %ld: %s", r.status, r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *res = json_string_value(json_object_get(j, "result"));
    char *out = cg_strdup(res ? res : "");
    json_decref(j);
    cgt_resp_free(&r);
    return out;
}

static char *vapi_end(struct fixture *f, const char *vapi_id)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":"
             "\"assistant-forwarded-call\",\"call\":{\"id\":\"%s\"}}}",
             vapi_id);
    struct cgt_resp r;
    vapi_post(f, VAPI_SECRET, body, &r);
    must(f, r.status == 200, "vapi end answered %ld", r.status);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *res = json_string_value(json_object_get(j, "result"));
    char *out = cg_strdup(res ? res : "");
    json_decref(j);
    cgt_resp_free(&r);
    return out;
}

/* ---- state ---- */

static char *field_of(struct fixture *f, const char *sid, const char *field)
{
    return cgt_redis_cmd(&f->rs, "HGET " P "call:%s %s", sid, field);
}

static void wait_state(struct fixture *f, const char *sid, const char *want)
{
    uint64_t deadline = cgt_now_ms() + SOON;
    for (;;) {
        char *v = field_of(f, sid, "state");
        int ok = strcmp(v, want) == 0;
        if (!ok && cgt_now_ms() >= deadline) {
            cgt_dump_log_tail(&f->proc, "callgate", 6000);
            fail_msg("state of %s is %s, wanted %s", sid, v, want);
        }
        free(v);
        if (ok)
            return;
        cgt_sleep_ms(10);
    }
}

static int in_active(struct fixture *f, const char *member)
{
    char *s = cgt_redis_cmd(&f->rs, "ZSCORE " P "active %s", member);
    int yes = strcmp(s, "(nil)") != 0;
    free(s);
    return yes;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (hay == NULL || strstr(hay, needle) == NULL)
        fail_msg("expected to find \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

/* The queue log's last entries as text. */
static char *log_tail(struct fixture *f)
{
    return cgt_redis_cmd(&f->rs, "XREVRANGE " P "log + - COUNT 8");
}

static char *metrics(struct fixture *f)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", f->base);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    char *out = cg_strdup(r.body ? r.body : "");
    cgt_resp_free(&r);
    return out;
}

/* A caller connected by the fast path (the slot was free); returns the
 * Vapi call id (malloc'd). */
static char *connect_caller(struct fixture *f, const char *sid)
{
    struct cgt_resp r;
    incoming(f, sid, &r);
    must(f, r.status == 200, "/incoming answered %ld", r.status);
    cgt_resp_free(&r);
    wait_state(f, sid, "connected");
    char *id = cgt_fake_vapi_id(f->fake, sid);
    must(f, id != NULL, "no vapi call for %s", sid);
    return id;
}

/* ---- tests ---- */

/* A forward to a number: <Dial> with the destination's rules, the slot
 * held until Vapi's end, then the waiting caller admitted at once with
 * their queue context. */
static void test_forward_number_then_next_caller(void **state)
{
    struct fixture *f = *state;
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    char *vid = connect_caller(f, a);
    int before = cgt_fake_update_count(f->fake, a);

    /* The Vapi call asked for call control. */
    char *create = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    assert_contains(create, "\"serverMessages\":[\"phone-call-control\",\"status-update\","
                            "\"end-of-call-report\"");
    assert_contains(create, "\"callgateDialedNumber\":\"" DIALED "\"");
    assert_contains(create, "\"callgatePosition\":1");
    assert_contains(create, "\"callgateRequeued\":false");
    free(create);

    /* B waits: the only slot is A's. */
    struct cgt_resp r;
    incoming(f, b, &r);
    assert_contains(r.body, "<Enqueue");
    cgt_resp_free(&r);
    wait_state(f, b, "waiting");

    char *res = control(f, vid, "forward",
                        "{\"type\":\"number\",\"number\":\"+15557770100\",\"extension\":\"12\","
                        "\"callerId\":\"+15550001111\",\"message\":\"Connecting you & co.\"}");
    assert_string_equal(res, "forwarded");
    free(res);
    assert_int_equal(cgt_fake_update_count(f->fake, a), before + 1);
    char *twiml = cgt_fake_update_twiml(f->fake, a);
    char want[512];
    snprintf(want, sizeof want,
             "<Say>Connecting you &amp; co.</Say><Dial action=\"%s/transfer-status\" "
             "method=\"POST\" callerId=\"+15550001111\"><Number sendDigits=\"ww12\">"
             "+15557770100</Number></Dial>",
             f->base);
    assert_contains(twiml, want);
    free(twiml);

    /* The assistant has left, but Vapi still counts the call: the slot is
     * held and B still waits. */
    wait_state(f, a, "ending");
    assert_true(in_active(f, a));
    cgt_sleep_ms(300);
    char *bs = field_of(f, b, "state");
    assert_string_equal(bs, "waiting");
    free(bs);
    char *lg = log_tail(f);
    assert_contains(lg, "TRANSFER");
    assert_contains(lg, "forward:+15557770100 ai=");
    free(lg);
    char *to = field_of(f, a, "transfer_to");
    assert_string_equal(to, "+15557770100");
    free(to);

    /* Vapi's end frees the slot and admits B in the same step. */
    res = vapi_end(f, vid);
    assert_string_equal(res, "released");
    free(res);
    assert_false(in_active(f, a));
    wait_state(f, b, "connected");
    create = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    assert_contains(create, "\"callgateWaitSeconds\":");
    assert_contains(create, "\"callgatePosition\":1");
    assert_contains(create, "\"callgateRequeued\":false");
    assert_contains(create, "\"twilioCallSid\":\"");
    assert_contains(create, b);
    free(create);

    /* The caller's own hang-up later changes nothing. */
    const char *kv[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, "CallStatus", "completed", NULL};
    twilio_post(f, "/call-status", kv, AUTH_TOKEN, &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);
    char *st = field_of(f, a, "state");
    assert_string_equal(st, "ended");
    free(st);

    char *m = metrics(f);
    assert_contains(m, "callgate_call_control_total{outcome=\"ok\",request=\"forward\"} 1");
    free(m);
    free(vid);
}

static void test_forward_sip_and_handoff(void **state)
{
    struct fixture *f = *state;
    char a[40];
    new_sid(a);
    char *vid = connect_caller(f, a);
    char *res =
        control(f, vid, "forward", "{\"type\":\"sip\",\"sipUri\":\"sip:desk@pbx.example.com\"}");
    assert_string_equal(res, "forwarded");
    free(res);
    char *twiml = cgt_fake_update_twiml(f->fake, a);
    assert_contains(twiml, "<Sip>sip:desk@pbx.example.com</Sip></Dial>");
    free(twiml);
    /* A second message for the same call changes nothing. */
    res = control(f, vid, "hang-up", NULL);
    assert_string_equal(res, "ignored");
    free(res);
    res = vapi_end(f, vid);
    assert_string_equal(res, "released");
    free(res);
    free(vid);

    /* A forward to one of HANDOFF_NUMBERS goes to the human queue. */
    char b[40];
    new_sid(b);
    vid = connect_caller(f, b);
    res = control(f, vid, "forward",
                  "{\"type\":\"number\",\"number\":\"" HUMANS "\",\"message\":\"Please hold.\"}");
    assert_string_equal(res, "queued");
    free(res);
    twiml = cgt_fake_update_twiml(f->fake, b);
    char want[512];
    snprintf(want, sizeof want,
             "<Say>Please hold.</Say><Enqueue workflowSid=\"" WORKFLOW "\" waitUrl=\"%s"
             "/queue-wait?taskQueueSid=" TASK_QUEUE "\" waitUrlMethod=\"POST\" action=\"%s"
             "/transfer-status\" method=\"POST\"><Task>{&quot;vapiCallId&quot;:&quot;%s&quot;",
             f->base, f->base, vid);
    assert_contains(twiml, want);
    assert_contains(twiml, "&quot;summary&quot;:&quot;Wants a &lt;refund&gt;.&quot;");
    assert_contains(twiml, "&quot;waitSoFarSeconds&quot;:");
    free(twiml);
    char *lg = log_tail(f);
    assert_contains(lg, "queue:" HUMANS);
    free(lg);
    wait_state(f, b, "ending");
    res = vapi_end(f, vid);
    assert_string_equal(res, "released");
    free(res);
    free(vid);

    /* The TaskQueue's hold answer for those callers. */
    const char *kv[] = {"CallSid", b, "AccountSid", ACCOUNT_SID, NULL};
    struct cgt_resp r;
    twilio_post(f, "/queue-wait?taskQueueSid=" TASK_QUEUE, kv, AUTH_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Response>");
    cgt_resp_free(&r);
}

static void test_hangup(void **state)
{
    struct fixture *f = *state;
    char a[40];
    new_sid(a);
    char *vid = connect_caller(f, a);
    int before = cgt_fake_update_count(f->fake, a);
    char *res = control(f, vid, "hang-up", NULL);
    assert_string_equal(res, "hung-up");
    free(res);
    assert_int_equal(cgt_fake_update_count(f->fake, a), before + 1);
    char *st = cgt_fake_update_status(f->fake, a);
    assert_string_equal(st, "completed");
    free(st);
    wait_state(f, a, "ending");
    assert_true(in_active(f, a));
    char *lg = log_tail(f);
    assert_contains(lg, "HANGUP");
    free(lg);
    res = vapi_end(f, vid);
    assert_string_equal(res, "released");
    free(res);
    assert_false(in_active(f, a));
    free(vid);
}

/* Twilio refuses the <Dial>: the caller hears the transfer-failed message
 * and the call ends; refused and counted. A caller already gone: counted,
 * nothing pushed after. */
static void test_refused_and_gone(void **state)
{
    struct fixture *f = *state;
    char a[40];
    new_sid(a);
    char *vid = connect_caller(f, a);
    int before = cgt_fake_update_count(f->fake, a);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_REFUSE_DIAL);
    char *res = control(f, vid, "forward", "{\"type\":\"number\",\"number\":\"+15550000001\"}");
    assert_string_equal(res, "refused");
    free(res);
    assert_int_equal(cgt_fake_update_count(f->fake, a), before + 2);
    char *twiml = cgt_fake_update_twiml(f->fake, a);
    assert_contains(twiml, "<Say>" FAILED_MSG "</Say><Hangup/>");
    free(twiml);
    wait_state(f, a, "ending");
    char *lg = log_tail(f);
    assert_contains(lg, "failed:+15550000001");
    free(lg);
    char *m = metrics(f);
    assert_contains(m, "callgate_transfer_failures_total{reason=\"twilio-13223\"} 1");
    assert_contains(m, "callgate_call_control_total{outcome=\"refused\",request=\"forward\"} 1");
    free(m);
    res = vapi_end(f, vid);
    assert_string_equal(res, "released");
    free(res);
    free(vid);

    char b[40];
    new_sid(b);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_OK);
    vid = connect_caller(f, b);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_NOT_FOUND);
    before = cgt_fake_update_count(f->fake, b);
    res = control(f, vid, "forward", "{\"type\":\"number\",\"number\":\"+15550000001\"}");
    assert_string_equal(res, "caller-gone");
    free(res);
    assert_int_equal(cgt_fake_update_count(f->fake, b), before + 1);
    char *st = field_of(f, b, "state");
    assert_string_equal(st, "connected");
    free(st);
    /* The same message again (a retry) pushes nothing. */
    res = control(f, vid, "forward", "{\"type\":\"number\",\"number\":\"+15550000001\"}");
    assert_string_equal(res, "ignored");
    free(res);
    assert_int_equal(cgt_fake_update_count(f->fake, b), before + 1);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_OK);
    res = vapi_end(f, vid);
    assert_string_equal(res, "released");
    free(res);
    free(vid);
}

/* Malformed messages: 400 and nothing changed; a forged one 403; a call
 * callgate does not know: 200 unknown. */
static void test_bad_messages(void **state)
{
    struct fixture *f = *state;
    char a[40];
    new_sid(a);
    char *vid = connect_caller(f, a);
    int before = cgt_fake_update_count(f->fake, a);
    char body[512];
    const char *bad[] = {
        "\"request\":\"transfer\"",
        "\"request\":\"forward\"",
        "\"request\":\"forward\",\"destination\":{\"type\":\"number\",\"number\":\"+1<Dial>\"}",
        "\"request\":\"forward\",\"destination\":{\"type\":\"sip\",\"sipUri\":\"tel:1\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"phone-call-control\",%s,\"call\":{\"id\":\"%s\"}}}",
                 bad[i], vid);
        struct cgt_resp r;
        vapi_post(f, VAPI_SECRET, body, &r);
        must(f, r.status == 400, "bad message %zu answered %ld", i, r.status);
        cgt_resp_free(&r);
    }
    snprintf(body, sizeof body,
             "{\"message\":{\"type\":\"phone-call-control\",\"request\":\"hang-up\","
             "\"call\":{\"id\":\"%s\"}}}",
             vid);
    struct cgt_resp r;
    vapi_post(f, "wrong-secret", body, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_int_equal(cgt_fake_update_count(f->fake, a), before);
    char *st = field_of(f, a, "state");
    assert_string_equal(st, "connected");
    free(st);
    char *res = control(f, "no-such-call", "hang-up", NULL);
    assert_string_equal(res, "unknown");
    free(res);
    res = vapi_end(f, vid);
    assert_string_equal(res, "released");
    free(res);
    free(vid);
}

/* How a transfer ended, from Twilio's action URL. */
static void test_transfer_status(void **state)
{
    struct fixture *f = *state;
    char a[40];
    new_sid(a);
    struct cgt_resp r;
    const char *busy[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, "DialCallStatus", "busy", NULL};
    twilio_post(f, "/transfer-status", busy, AUTH_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Say>" FAILED_MSG "</Say><Hangup/>");
    cgt_resp_free(&r);
    const char *done[] = {"CallSid",        a,           "AccountSid", ACCOUNT_SID,
                          "DialCallStatus", "completed", NULL};
    twilio_post(f, "/transfer-status", done, AUTH_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Response/>");
    cgt_resp_free(&r);
    const char *qerr[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, "QueueResult", "error", NULL};
    twilio_post(f, "/transfer-status", qerr, AUTH_TOKEN, &r);
    assert_contains(r.body, FAILED_MSG);
    cgt_resp_free(&r);
    const char *none[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, NULL};
    twilio_post(f, "/transfer-status", none, AUTH_TOKEN, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    twilio_post(f, "/transfer-status", busy, "not-the-token", &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    char *m = metrics(f);
    assert_contains(m, "callgate_transfer_failures_total{reason=\"dial-busy\"} 1");
    assert_contains(m, "callgate_transfer_failures_total{reason=\"queue-error\"} 1");
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward_number_then_next_caller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_sip_and_handoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_status, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
