/*
 * Queued callbacks end to end (docs/ARCHITECTURE.md, "Callbacks"): real
 * callgate processes and a real redis-server, Twilio's and Vapi's APIs
 * played by the fake in tests/harness/fakeapi.c (which places outbound
 * calls). The test plays Twilio's side of the calls: it signs the hold
 * answer's requests, the keypad, and the outbound leg's answer and status
 * webhooks as Twilio does, and reads the gate's state from Redis.
 *
 * Everything that happens asynchronously is awaited by polling with a
 * timeout; no assertion depends on how fast anything is.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "fakeapi.h"
#include "base/form.h"
#include "demo/proc.h"
#include "twilio/signature.h"

#define GATE_KIT_SID_FORMAT "CAf%031x"
#include "gate_kit.h"

/* ---- callbacks ---- */

#define DIALED "+15550002222"

static const char *const cb_env[] = {"MAX_CONCURRENCY=1",
                                     "CALLBACK_OFFER_SECONDS=10",
                                     "CALLBACK_RETRY_SECONDS=5",
                                     "CALLBACK_ATTEMPTS=2",
                                     "CALLBACK_MACHINE_MESSAGE=Sorry we missed you.",
                                     NULL};

/* The outbound CallSid the fake gave its n-th Calls create. */
/* A caller from another number than CALLER's (CALLER has a callback
 * pending in most tests, and calling again is its own case). */
static void enqueue_other(struct fixture *f, int i, const char *sid)
{
    const char *kv[] = {"CallSid",      sid,  "AccountSid", ACCOUNT_SID, "From",
                        "+15557771111", "To", DIALED,       NULL};
    struct cgt_resp r;
    twilio_post(f, i, "/incoming", kv, &r);
    assert_enqueue(f, i, &r);
    cgt_resp_free(&r);
}

static void leg_sid(int n, char out[40])
{
    snprintf(out, 40, "CA%032x", (unsigned)n);
}

static void keypad(struct fixture *f, int i, const char *sid, const char *digits,
                   struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,    "AccountSid", ACCOUNT_SID, "From", CALLER,
                        "To",      DIALED, "Digits",     digits,      NULL};
    twilio_post(f, i, "/callback-keypad", kv, r);
}

static void leg_answer(struct fixture *f, int i, const char *sid, int attempt, const char *leg,
                       const char *answered_by, struct cgt_resp *r)
{
    char path[160];
    snprintf(path, sizeof path, "/callback-answer?sid=%s&attempt=%d", sid, attempt);
    const char *kv[] = {"CallSid",    leg,           "AccountSid", ACCOUNT_SID,
                        "From",       DIALED,        "To",         CALLER,
                        "CallStatus", "in-progress", "Direction",  "outbound-api",
                        "AnsweredBy", answered_by,   NULL};
    twilio_post(f, i, path, kv, r);
}

static long leg_status(struct fixture *f, int i, const char *sid, int attempt, const char *leg,
                       const char *status)
{
    char path[160];
    snprintf(path, sizeof path, "/callback-status?sid=%s&attempt=%d", sid, attempt);
    const char *kv[] = {"CallSid", leg,    "AccountSid", ACCOUNT_SID, "CallStatus", status,
                        "From",    DIALED, "To",         CALLER,      NULL};
    struct cgt_resp r;
    twilio_post(f, i, path, kv, &r);
    long st = r.status;
    cgt_resp_free(&r);
    return st;
}

static void wait_cbwin(struct fixture *f)
{
    uint64_t until = cgt_now_ms() + LATER;
    for (;;) {
        char *v = cgt_redis_cmd(&f->rs, "EXISTS " P "cbwin");
        int ok = strcmp(v, "1") == 0;
        free(v);
        if (ok)
            return;
        must(f, cgt_now_ms() < until, "the callback window was never published");
        cgt_sleep_ms(20);
    }
}

/* A caller is held, hears the offer, presses 1: their record keeps its
 * ticket in state callback, and their leaving the queue is a hang-up. */
static void accept_callback(struct fixture *f, int i, const char *sid)
{
    enqueue(f, i, sid);
    struct cgt_resp r;
    queue_wait(f, i, sid, &r);
    must(f, r.status == 200, "/queue-wait answered %ld", r.status);
    assert_contains(r.body, "<Gather");
    assert_contains(r.body, "/callback-keypad");
    assert_contains(r.body, "Press 1 to keep your place");
    cgt_resp_free(&r);
    long long pos = position_of(f, sid);
    keypad(f, i, sid, "1", &r);
    must(f, r.status == 200, "/callback-keypad answered %ld", r.status);
    assert_contains(r.body, "we will call you back");
    assert_contains(r.body, "We will call you within");
    assert_contains(r.body, "<Leave/>");
    cgt_resp_free(&r);
    assert_state(f, sid, "callback");
    assert_int_equal(position_of(f, sid), pos);
    char *num = field_of(f, sid, "cb_number");
    assert_string_equal(num, CALLER);
    free(num);
    queue_exit(f, i, sid, "leave", &r);
    must(f, r.status == 200, "/queue-exit answered %ld", r.status);
    assert_contains(r.body, "<Hangup/>");
    assert_lacks(r.body, "All of our agents are busy");
    cgt_resp_free(&r);
    assert_state(f, sid, "callback");
    /* The inbound call's end (Twilio's status callback) keeps the ticket. */
    const char *kv[] = {"CallSid", sid, "AccountSid", ACCOUNT_SID, "CallStatus", "completed", NULL};
    twilio_post(f, i, "/call-status", kv, &r);
    must(f, r.status == 200, "/call-status answered %ld", r.status);
    cgt_resp_free(&r);
    assert_state(f, sid, "callback");
    assert_int_equal(position_of(f, sid), pos);
}

/* Caller A holds the only slot; returns A's Vapi call id (malloc'd). */
static char *occupy(struct fixture *f, const char *a)
{
    connect_fast(f, 0, a);
    return vapi_id_of(f, a);
}

/* GET path on instance i: the body (malloc'd); 200 required. */
static char *http_body(struct fixture *f, int i, const char *path)
{
    char url[256];
    url_of(f, i, path, url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    must(f, r.status == 200, "GET %s answered %ld", path, r.status);
    char *out = cg_strdup(r.body ? r.body : "");
    cgt_resp_free(&r);
    return out;
}

static int log_has(struct fixture *f, const char *needle)
{
    char *log = cgt_redis_cmd(&f->rs, "XRANGE " P "log - +");
    int yes = strstr(log, needle) != NULL;
    free(log);
    return yes;
}

static void test_full_path(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40], c[40], leg[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    char *va = occupy(f, a);
    accept_callback(f, 0, b);
    enqueue_other(f, 0, c); /* arrived after B */
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    /* /queue shows B in line as a callback, C as a caller on the line. */
    char *q = http_body(f, 0, "/queue");
    assert_contains(q, "\"position\":1,");
    assert_contains(q, "\"callback\":true");
    assert_contains(q, "\"callback\":false");
    free(q);

    /* A's call ends: the slot is B's (ticket order), reserved and dialled;
     * C waits; no Vapi call while the phone rings. */
    free(vapi_end(f, 0, va, 0));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    char *body = cgt_fake_last_body(f->fake, CGT_EP_TW_CREATE);
    assert_contains(body, "To=%2B15557770000");
    assert_contains(body, "From=%2B15550002222");
    assert_contains(body, "MachineDetection=Enable");
    assert_contains(body, "callback-answer");
    free(body);
    leg_sid(1, leg);
    wait_state(f, b, "cb_ringing", SOON);
    assert_int_equal(zcard(f, "active"), 1);
    assert_true(in_active(f, b));
    assert_int_equal(position_of(f, c), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 1);
    cgt_sleep_ms(300);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);

    /* A person answers: only now the Vapi call, on the leg, answered with
     * its TwiML; the assistant is told it is a callback. */
    struct cgt_resp r;
    leg_answer(f, 0, b, 1, leg, "human", &r);
    must(f, r.status == 200, "/callback-answer answered %ld", r.status);
    char *vl = vapi_id_of(f, leg);
    char *want = cgt_fake_twiml_for(vl);
    must(f, r.body && strcmp(r.body, want) == 0, "callback answer: %s", r.body);
    free(want);
    cgt_resp_free(&r);
    body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    assert_contains(body, "\"callgateCallback\":true");
    assert_contains(body, "callgateOriginalTime");
    free(body);
    assert_state(f, b, "called-back");
    wait_state(f, leg, "connected", SOON);
    assert_int_equal(zcard(f, "active"), 1);
    assert_true(in_active(f, leg));
    assert_int_equal(position_of(f, c), 1);
    assert_true(log_has(f, "CALLBACK_REQUEST"));
    assert_true(log_has(f, "CALLBACK_DIAL"));
    assert_true(log_has(f, "CALLBACK_CONNECT"));
    assert_int_equal(stat_of(f, "callbacks_requested"), 1);
    assert_int_equal(stat_of(f, "callbacks_connected"), 1);
    assert_true(stat_of(f, "callbacks_offered") >= 1);
    assert_int_equal(stat_of(f, "callbacks_within_estimate"), 1);
    assert_true(stat_of(f, "callbacks_hold_saved_ms") > 0);
    char *m = http_body(f, 0, "/metrics");
    assert_contains(m, "callgate_gate_events{event=\"callbacks_connected\"} 1");
    assert_contains(m, "callgate_gate_events{event=\"callbacks_within_estimate\"} 1");
    assert_contains(m, "callgate_callbacks_total{event=\"callbacks_accepted\"} 1");
    free(m);

    /* The callback's call ends as any: C is admitted next. */
    assert_int_equal(leg_status(f, 0, b, 1, leg, "completed"), 200);
    free(vapi_end(f, 0, vl, 0));
    wait_state(f, c, "connected", LATER);
    free(vl);
    free(va);
    stop_gate(f, 0);
}

/* A gate with callbacks whose one slot A holds; B takes a callback, A's
 * call ends, and B's first leg (leg) rings. Returns A's Vapi call id
 * (malloc'd). */
static char *callback_ringing(struct fixture *f, char b[40], char leg[40])
{
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    accept_callback(f, 0, b);
    free(vapi_end(f, 0, va, 0));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    leg_sid(1, leg);
    wait_state(f, b, "cb_ringing", SOON);
    return va;
}

static void test_no_answer_then_failed(void **state)
{
    struct fixture *f = *state;
    char b[40], leg[40];
    char *va = callback_ringing(f, b, leg);
    assert_int_equal(leg_status(f, 0, b, 1, leg, "no-answer"), 200);
    /* Back in place for a retry after CALLBACK_RETRY_SECONDS; the slot is
     * free meanwhile. */
    assert_state(f, b, "callback");
    assert_int_equal(position_of(f, b), 1);
    assert_int_equal(zcard(f, "active"), 0);
    assert_true(log_has(f, "CALLBACK_RETRY"));
    cgt_sleep_ms(1500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);
    wait_fake(f, CGT_EP_TW_CREATE, 2, 15000);
    leg_sid(2, leg);
    wait_state(f, b, "cb_ringing", SOON);
    /* A late status of the first leg changes nothing. */
    char old[40];
    leg_sid(1, old);
    assert_int_equal(leg_status(f, 0, b, 1, old, "busy"), 200);
    assert_state(f, b, "cb_ringing");
    assert_int_equal(leg_status(f, 0, b, 2, leg, "busy"), 200);
    assert_state(f, b, "cb_failed");
    assert_int_equal(position_of(f, b), 0);
    assert_int_equal(zcard(f, "active"), 0);
    assert_true(log_has(f, "CALLBACK_FAILED"));
    assert_int_equal(stat_of(f, "callbacks_failed"), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 1);
    cgt_sleep_ms(6000);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 2);
    free(va);
    stop_gate(f, 0);
}

static void test_machine(void **state)
{
    struct fixture *f = *state;
    char b[40], leg[40];
    char *va = callback_ringing(f, b, leg);
    struct cgt_resp r;
    leg_answer(f, 0, b, 1, leg, "machine_end_beep", &r);
    must(f, r.status == 200, "/callback-answer answered %ld", r.status);
    assert_contains(r.body, "Sorry we missed you.");
    assert_contains(r.body, "<Hangup/>");
    cgt_resp_free(&r);
    assert_state(f, b, "callback");
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 1);
    assert_int_equal(zcard(f, "active"), 0);
    /* Its status callback after the hang-up is the same attempt: stale. */
    assert_int_equal(leg_status(f, 0, b, 1, leg, "completed"), 200);
    assert_state(f, b, "callback");
    free(va);
    stop_gate(f, 0);
}

/* CALLBACK_HOURS on a day that is not today (in UTC): no offer, and a
 * callback already accepted waits while later callers go first. */
static void test_outside_hours(void **state)
{
    struct fixture *f = *state;
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char hours[64];
    snprintf(hours, sizeof hours, "CALLBACK_HOURS=%s 00:00-23:59 UTC", days[(tm.tm_wday + 2) % 7]);
    const char *env[] = {"MAX_CONCURRENCY=1", "CALLBACK_OFFER_SECONDS=10", hours, NULL};
    start_gate(f, 0, env);
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    char *va = occupy(f, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    queue_wait(f, 0, b, &r);
    must(f, r.status == 200, "/queue-wait answered %ld", r.status);
    assert_lacks(r.body, "<Gather");
    cgt_resp_free(&r);
    /* A key pressed anyway (an offer heard before the window closed). */
    keypad(f, 0, b, "1", &r);
    assert_contains(r.body, "<Leave/>");
    cgt_resp_free(&r);
    assert_state(f, b, "callback");
    enqueue_other(f, 0, c);
    free(vapi_end(f, 0, va, 0));
    wait_state(f, c, "connected", LATER);
    assert_state(f, b, "callback");
    assert_int_equal(position_of(f, b), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    char *w = cgt_redis_cmd(&f->rs, "EXISTS " P "cbwin");
    assert_string_equal(w, "0");
    free(w);
    free(va);
    stop_gate(f, 0);
}

/* The same number calls again while its callback waits: told so; 2 waits
 * on the line in the callback's place, the callback ends. */
static void test_repeat_caller(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40], c[40], d[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    new_sid(d);
    char *va = occupy(f, a);
    accept_callback(f, 0, b);
    enqueue_other(f, 0, c); /* another number, behind B */
    char *ticket = field_of(f, b, "ticket");
    struct cgt_resp r;
    incoming(f, 0, d, &r);
    must(f, r.status == 200, "/incoming answered %ld", r.status);
    char want[128];
    snprintf(want, sizeof want, "/callback-pending?sid=%s", b);
    assert_contains(r.body, want);
    assert_contains(r.body, "A callback keeps your place");
    cgt_resp_free(&r);
    char *none = field_of(f, d, "state");
    assert_string_equal(none, "(nil)");
    free(none);
    const char *kv[] = {"CallSid", d,      "AccountSid", ACCOUNT_SID, "From", CALLER,
                        "To",      DIALED, "Digits",     "2",         NULL};
    twilio_post(f, 0, want, kv, &r);
    assert_enqueue(f, 0, &r);
    cgt_resp_free(&r);
    assert_state(f, d, "waiting");
    assert_state(f, b, "cb_resumed");
    char *t2 = field_of(f, d, "ticket");
    assert_string_equal(ticket, t2);
    assert_int_equal(position_of(f, d), 1);
    assert_int_equal(position_of(f, c), 2);
    free(t2);
    free(ticket);
    /* The slot frees: D (B's place) goes before C, and nobody is dialled.
     * D's admission goes on to the assistant at once (the fake APIs answer
     * without delay), so the state to wait for is its end: connected. */
    free(vapi_end(f, 0, va, 0));
    wait_state(f, d, "connected", LATER);
    assert_int_equal(position_of(f, c), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    free(va);
    stop_gate(f, 0);
}

/* Two instances see the same release: one dial. */
static void test_two_instances(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    start_gate(f, 1, cb_env);
    wait_cbwin(f);
    char a[40], b[40], leg[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    accept_callback(f, 1, b);
    /* Both instances are told of the end; both run admission. */
    free(vapi_end(f, 0, va, 0));
    free(vapi_end(f, 1, va, 1));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    leg_sid(1, leg);
    wait_state(f, b, "cb_ringing", SOON);
    cgt_sleep_ms(1500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);
    /* The answer reaches the other instance: still one admission. */
    struct cgt_resp r;
    leg_answer(f, 0, b, 1, leg, "human", &r);
    must(f, r.status == 200, "/callback-answer answered %ld", r.status);
    cgt_resp_free(&r);
    leg_answer(f, 1, b, 1, leg, "human", &r);
    must(f, r.status == 200, "/callback-answer again answered %ld", r.status);
    cgt_resp_free(&r);
    wait_state(f, leg, "connected", LATER);
    assert_int_equal(cgt_fake_create_count(f->fake, leg), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);
    free(va);
    stop_gate(f, 0);
    stop_gate(f, 1);
}

/* Bad signatures: 403 and nothing changed; malformed: 400. */
static void test_bad_requests(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    enqueue(f, 0, b);
    const char *kv[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                        CALLER,    "Digits", "1",          NULL};
    const char *forged[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                            CALLER,    "Digits", "2",          NULL};
    struct cgt_resp r;
    twilio_post_as(f, 0, "/callback-keypad", kv, forged, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");
    char path[160];
    snprintf(path, sizeof path, "/callback-answer?sid=%s&attempt=1", b);
    const char *leg[] = {"CallSid",    "CA00000000000000000000000000000099",
                         "AccountSid", ACCOUNT_SID,
                         "AnsweredBy", "human",
                         NULL};
    const char *leg2[] = {"CallSid",    "CA00000000000000000000000000000099",
                          "AccountSid", ACCOUNT_SID,
                          "AnsweredBy", "machine_start",
                          NULL};
    twilio_post_as(f, 0, path, leg, leg2, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    twilio_post(f, 0, "/callback-answer?attempt=1", leg, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    snprintf(path, sizeof path, "/callback-status?sid=%s&attempt=x", b);
    twilio_post(f, 0, path, leg, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    snprintf(path, sizeof path, "/callback-status?sid=%s&attempt=1", b);
    twilio_post(f, 0, path, leg, &r); /* no CallStatus */
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    free(va);
    stop_gate(f, 0);
}

/* POSTs keys to /callback-number (or path) for sid, from CALLER. */
static void keyed(struct fixture *f, int i, const char *path, const char *sid, const char *digits,
                  struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,    "AccountSid", ACCOUNT_SID, "From", CALLER,
                        "To",      DIALED, "Digits",     digits,      NULL};
    twilio_post(f, i, path, kv, r);
}

/* Another number: 2 at the offer, the number keyed, read back and
 * confirmed; bad numbers are refused with a re-prompt; the callback dials
 * the number keyed. */
static void test_other_number(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    queue_wait(f, 0, b, &r);
    assert_contains(r.body, "press 2 to be called back at another number");
    cgt_resp_free(&r);

    keypad(f, 0, b, "2", &r);
    must(f, r.status == 200, "/callback-keypad answered %ld", r.status);
    assert_contains(r.body, "finishOnKey=\"#\"");
    assert_contains(r.body, "/callback-number\"");
    assert_contains(r.body, "Enter the number to call back");
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");

    /* Numbers that cannot be called: the phrase, and the prompt again. */
    const char *bad[] = {"0123", "1", "*44", "00", "0044123456789012345678", NULL};
    for (size_t k = 0; bad[k]; k++) {
        keyed(f, 0, "/callback-number", b, bad[k], &r);
        must(f, r.status == 200, "/callback-number %s answered %ld", bad[k], r.status);
        must(f,
             r.body && strstr(r.body, "cannot be called back") &&
                 strstr(r.body, "finishOnKey=\"#\""),
             "/callback-number %s: %s", bad[k], r.body);
        assert_lacks(r.body, "callback-number-confirm");
        cgt_resp_free(&r);
    }
    assert_state(f, b, "waiting");

    /* A national number of the caller's country (+1, ten digits), read
     * back with its country code. */
    keyed(f, 0, "/callback-number", b, "2025550123", &r);
    assert_contains(r.body, "We will call plus 1 2 0 2 5 5 5 0 1 2 3.");
    assert_contains(r.body, "/callback-number-confirm?n=12025550123\"");
    cgt_resp_free(&r);
    /* 2: enter it again. */
    keyed(f, 0, "/callback-number-confirm?n=12025550123", b, "2", &r);
    assert_contains(r.body, "finishOnKey=\"#\"");
    assert_contains(r.body, "/callback-number\"");
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");

    /* International, with 00. */
    keyed(f, 0, "/callback-number", b, "00442079460000", &r);
    assert_contains(r.body, "We will call plus 4 4 2 0 7 9 4 6 0 0 0 0.");
    assert_contains(r.body, "/callback-number-confirm?n=442079460000\"");
    cgt_resp_free(&r);

    /* A forged confirmation (signed for another number), and one whose
     * signed number is not callable: refused, nothing changed. */
    const char *kv[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                        CALLER,    "Digits", "1",          NULL};
    const char *forged[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                            CALLER,    "Digits", "2",          NULL};
    twilio_post_as(f, 0, "/callback-number-confirm?n=442079460000", kv, forged, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    twilio_post(f, 0, "/callback-number-confirm?n=12", kv, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    twilio_post(f, 0, "/callback-number-confirm", kv, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    twilio_post_as(f, 0, "/callback-number", kv, forged, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");
    char *num = field_of(f, b, "cb_number");
    must(f, num == NULL || num[0] == '\0' || strcmp(num, "(nil)") == 0, "cb_number %s", num);
    free(num);

    /* 1 confirms: the callback keeps B's place, at the number keyed. */
    long long pos = position_of(f, b);
    keyed(f, 0, "/callback-number-confirm?n=442079460000", b, "1", &r);
    must(f, r.status == 200, "/callback-number-confirm answered %ld", r.status);
    assert_contains(r.body, "We will call you within");
    assert_contains(r.body, "<Leave/>");
    cgt_resp_free(&r);
    assert_state(f, b, "callback");
    assert_int_equal(position_of(f, b), pos);
    num = field_of(f, b, "cb_number");
    assert_string_equal(num, "+442079460000");
    free(num);
    queue_exit(f, 0, b, "leave", &r);
    assert_contains(r.body, "<Hangup/>");
    cgt_resp_free(&r);

    /* A's call ends: Twilio calls the number keyed. */
    free(vapi_end(f, 0, va, 0));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    char *body = cgt_fake_last_body(f->fake, CGT_EP_TW_CREATE);
    assert_contains(body, "To=%2B442079460000");
    assert_contains(body, "From=%2B15550002222");
    free(body);
    free(va);
    stop_gate(f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_answer_then_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_caller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_number, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
