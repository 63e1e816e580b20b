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

#include "gate_kit.h"

#define DIALED     "+15550002222"
#define WORKFLOW   "WW0123456789abcdef0123456789abcdef"
#define TASK_QUEUE "WQ0123456789abcdef0123456789abcdef"
#define HUMANS     "+15550009999"
#define FAILED_MSG "We could not reach them. Goodbye."

/* One gate, one slot, running through each test (teardown_graceful). */
static int setup_control(void **state)
{
    setup(state);
    static const char *const env[] = {"MAX_CONCURRENCY=1",
                                      /* Long enough that only Vapi's end releases in a test. */
                                      "END_GRACE_MS=60000", "HANDOFF_WORKFLOW_SID=" WORKFLOW,
                                      "HANDOFF_TASK_QUEUE_SID=" TASK_QUEUE,
                                      "HANDOFF_NUMBERS=" HUMANS ", sip:humans@example.com",
                                      "TRANSFER_FAILED_MESSAGE=" FAILED_MSG, NULL};
    start_gate(*state, 0, env);
    return 0;
}

/* ---- requests ---- */

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
    return vapi_message(f, 0, body, "control");
}

/* Vapi's end of a call the assistant forwarded. */
static char *vapi_end_forwarded(struct fixture *f, const char *vapi_id)
{
    return vapi_end_for(f, 0, vapi_id, 1, "assistant-forwarded-call");
}

/* ---- state ---- */

/* The queue log's last entries as text. */
static char *log_tail(struct fixture *f)
{
    return cgt_redis_cmd(&f->rs, "XREVRANGE " P "log + - COUNT 8");
}

static char *metrics(struct fixture *f)
{
    char url[128];
    url_of(f, 0, "/metrics", url, sizeof url);
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
    free(incoming_body(f, 0, sid));
    wait_state(f, sid, "connected", SOON);
    return vapi_id_of(f, sid);
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
    incoming(f, 0, b, &r);
    assert_contains(r.body, "<Enqueue");
    cgt_resp_free(&r);
    wait_state(f, b, "waiting", SOON);

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
             f->g[0].base);
    assert_contains(twiml, want);
    free(twiml);

    /* The assistant has left, but Vapi still counts the call: the slot is
     * held and B still waits. */
    wait_state(f, a, "ending", SOON);
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
    res = vapi_end_forwarded(f, vid);
    assert_string_equal(res, "released");
    free(res);
    assert_false(in_active(f, a));
    wait_state(f, b, "connected", SOON);
    create = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    assert_contains(create, "\"callgateWaitSeconds\":");
    assert_contains(create, "\"callgatePosition\":1");
    assert_contains(create, "\"callgateRequeued\":false");
    assert_contains(create, "\"twilioCallSid\":\"");
    assert_contains(create, b);
    free(create);

    /* The caller's own hang-up later changes nothing. */
    const char *kv[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, "CallStatus", "completed", NULL};
    twilio_post(f, 0, "/call-status", kv, &r);
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
    res = vapi_end_forwarded(f, vid);
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
             f->g[0].base, f->g[0].base, vid);
    assert_contains(twiml, want);
    assert_contains(twiml, "&quot;summary&quot;:&quot;Wants a &lt;refund&gt;.&quot;");
    assert_contains(twiml, "&quot;waitSoFarSeconds&quot;:");
    free(twiml);
    char *lg = log_tail(f);
    assert_contains(lg, "queue:" HUMANS);
    free(lg);
    wait_state(f, b, "ending", SOON);
    res = vapi_end_forwarded(f, vid);
    assert_string_equal(res, "released");
    free(res);
    free(vid);

    /* The TaskQueue's hold answer for those callers. */
    const char *kv[] = {"CallSid", b, "AccountSid", ACCOUNT_SID, NULL};
    struct cgt_resp r;
    twilio_post(f, 0, "/queue-wait?taskQueueSid=" TASK_QUEUE, kv, &r);
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
    wait_state(f, a, "ending", SOON);
    assert_true(in_active(f, a));
    char *lg = log_tail(f);
    assert_contains(lg, "HANGUP");
    free(lg);
    res = vapi_end_forwarded(f, vid);
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
    wait_state(f, a, "ending", SOON);
    char *lg = log_tail(f);
    assert_contains(lg, "failed:+15550000001");
    free(lg);
    char *m = metrics(f);
    assert_contains(m, "callgate_transfer_failures_total{reason=\"twilio-13223\"} 1");
    assert_contains(m, "callgate_call_control_total{outcome=\"refused\",request=\"forward\"} 1");
    free(m);
    res = vapi_end_forwarded(f, vid);
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
    res = vapi_end_forwarded(f, vid);
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
        vapi_post(f, 0, VAPI_SECRET, body, &r);
        must(f, r.status == 400, "bad message %zu answered %ld", i, r.status);
        cgt_resp_free(&r);
    }
    snprintf(body, sizeof body,
             "{\"message\":{\"type\":\"phone-call-control\",\"request\":\"hang-up\","
             "\"call\":{\"id\":\"%s\"}}}",
             vid);
    struct cgt_resp r;
    vapi_post(f, 0, "wrong-secret", body, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_int_equal(cgt_fake_update_count(f->fake, a), before);
    char *st = field_of(f, a, "state");
    assert_string_equal(st, "connected");
    free(st);
    char *res = control(f, "no-such-call", "hang-up", NULL);
    assert_string_equal(res, "unknown");
    free(res);
    res = vapi_end_forwarded(f, vid);
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
    twilio_post(f, 0, "/transfer-status", busy, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Say>" FAILED_MSG "</Say><Hangup/>");
    cgt_resp_free(&r);
    const char *done[] = {"CallSid",        a,           "AccountSid", ACCOUNT_SID,
                          "DialCallStatus", "completed", NULL};
    twilio_post(f, 0, "/transfer-status", done, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Response/>");
    cgt_resp_free(&r);
    const char *qerr[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, "QueueResult", "error", NULL};
    twilio_post(f, 0, "/transfer-status", qerr, &r);
    assert_contains(r.body, FAILED_MSG);
    cgt_resp_free(&r);
    const char *none[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, NULL};
    twilio_post(f, 0, "/transfer-status", none, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    twilio_send(f, 0, "/transfer-status", busy, NULL, "not-the-token", &r);
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
        cmocka_unit_test_setup_teardown(test_forward_number_then_next_caller, setup_control,
                                        teardown_graceful),
        cmocka_unit_test_setup_teardown(test_forward_sip_and_handoff, setup_control,
                                        teardown_graceful),
        cmocka_unit_test_setup_teardown(test_hangup, setup_control, teardown_graceful),
        cmocka_unit_test_setup_teardown(test_refused_and_gone, setup_control, teardown_graceful),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup_control, teardown_graceful),
        cmocka_unit_test_setup_teardown(test_transfer_status, setup_control, teardown_graceful),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
