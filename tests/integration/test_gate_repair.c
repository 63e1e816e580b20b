/*
 * The gate's slots rebuilt from Vapi's live calls after Redis lost the
 * gate's keys (src/gate/repair.c): a callgate process on a real
 * redis-server, Twilio and Vapi played by the fake API. The test FLUSHALLs
 * Redis while two calls hold the only two slots and two callers wait: no
 * caller is admitted meanwhile (the limit holds), the two calls are counted
 * again within seconds from Vapi's list (GET /call), the waiting callers are
 * adopted again from Twilio's queue, and the next release admits one.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/form.h"
#include "fakeapi.h"
#include "twilio/signature.h"

#define ACCOUNT_SID "AC0123456789abcdef0123456789abcdef"
#define AUTH_TOKEN  "test-twilio-auth-token-42"
#define QUEUE_SID   "QU0123456789abcdef0123456789abcdef"
#define VAPI_KEY    "test-vapi-api-key-7"
#define VAPI_SECRET "test-vapi-webhook-secret"
#define P           "cg:{default}:"
#define SOON        10000

struct fixture {
    struct cg_redis_server rs;
    struct cgt_fake *fake;
    struct cgt_proc gate;
    char base[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cgt_redis_start(&f->rs);
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->gate.pid > 0)
        cgt_stop(&f->gate, SIGKILL, 1000);
    cgt_fake_stop(f->fake);
    cg_redis_server_stop(&f->rs);
    free(f);
    return 0;
}

static void must(struct fixture *f, int ok, const char *what)
{
    if (ok)
        return;
    cgt_dump_log_tail(&f->gate, "callgate", 8000);
    fail_msg("%s", what);
}

static long long rint_of(struct fixture *f, const char *fmt, const char *arg)
{
    char *out = cgt_redis_cmd(&f->rs, fmt, arg);
    long long v = strcmp(out, "(nil)") == 0 ? -1 : strtoll(out, NULL, 10);
    free(out);
    return v;
}

static void start_gate(struct fixture *f)
{
    int port = cg_free_port();
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", port);
    char port_s[32], pub[96], redis[96], twbase[96], vbase[96];
    snprintf(port_s, sizeof port_s, "PORT=%d", port);
    snprintf(pub, sizeof pub, "PUBLIC_URL=%s", f->base);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->rs.url);
    snprintf(twbase, sizeof twbase, "TWILIO_API_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(vbase, sizeof vbase, "VAPI_BASE_URL=%s", cgt_fake_url(f->fake));
    const char *const env[] = {port_s,
                               pub,
                               redis,
                               twbase,
                               vbase,
                               "BIND_ADDRESS=127.0.0.1",
                               "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
                               "TWILIO_AUTH_TOKEN=" AUTH_TOKEN,
                               "TWILIO_QUEUE_SID=" QUEUE_SID,
                               "VAPI_API_KEY=" VAPI_KEY,
                               "VAPI_PHONE_NUMBER_ID=phone-number-id-1",
                               "VAPI_ASSISTANT_ID=assistant-id-1",
                               "VAPI_WEBHOOK_SECRET=" VAPI_SECRET,
                               "MAX_CONCURRENCY=2",
                               "LOG_LEVEL=debug",
                               "SWEEP_INTERVAL_MS=200",
                               "REDIS_RECONNECT_MIN_MS=20",
                               "REDIS_RECONNECT_MAX_MS=200",
                               "REDIS_COMMAND_TIMEOUT_MS=500",
                               NULL};
    const char *const *lists[] = {env, NULL};
    cgt_spawn_callgate(&f->gate, lists);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    must(f, cgt_wait_status(url, 200, 15000) == 0, "callgate did not become healthy");
}

/* Polls until the marker of a completed repair is in Redis; its ms, or -1. */
static long long wait_intact(struct fixture *f, int timeout_ms)
{
    uint64_t t0 = cgt_now_ms();
    while (cgt_now_ms() - t0 < (uint64_t)timeout_ms) {
        if (rint_of(f, "EXISTS " P "%s", "intact") == 1)
            return (long long)(cgt_now_ms() - t0);
        cgt_sleep_ms(10);
    }
    return -1;
}

/* /incoming for a new caller, signed as Twilio signs it; the body. */
static char *incoming(struct fixture *f, const char *sid)
{
    char url[128];
    snprintf(url, sizeof url, "%s/incoming", f->base);
    struct cg_form form;
    cg_form_init(&form);
    const char *kv[] = {
        "CallSid",      sid,          "AccountSid", ACCOUNT_SID, "From", "+15557770000", "To",
        "+15550002222", "CallStatus", "ringing",    NULL};
    for (size_t k = 0; kv[k]; k += 2)
        cg_form_add(&form, kv[k], kv[k + 1]);
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(AUTH_TOKEN, url, &form, sig), 0);
    char sigh[64];
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(&form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    struct cgt_resp r;
    cgt_http("POST", url, h, body, strlen(body), &r);
    free(body);
    cg_form_free(&form);
    must(f, r.status == 200, "/incoming did not answer 200");
    char *out = strdup(r.body ? r.body : "");
    cgt_resp_free(&r);
    return out;
}

static void vapi_end(struct fixture *f, const char *vapi_id)
{
    char url[128], body[512];
    snprintf(url, sizeof url, "%s/call-ended", f->base);
    snprintf(body, sizeof body,
             "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"endedReason\":"
             "\"customer-ended-call\",\"call\":{\"id\":\"%s\"}}}",
             vapi_id);
    const char *h[] = {"Content-Type: application/json", "x-vapi-secret: " VAPI_SECRET, NULL};
    struct cgt_resp r;
    cgt_http("POST", url, h, body, strlen(body), &r);
    must(f, r.status == 200, "/call-ended did not answer 200");
    cgt_resp_free(&r);
}

/* One entry of Vapi's GET /call answer, as Vapi writes a Call. */
static void list_entry(char *out, size_t n, const char *id, const char *status, const char *sid,
                       const char *gate)
{
    char created[25];
    cg_iso8601_ms(cg_wall_ms() - 30000, created);
    snprintf(out, n,
             "{\"id\":\"%s\",\"orgId\":\"org-1\",\"type\":\"inboundPhoneCall\",\"status\":\"%s\","
             "\"createdAt\":\"%s\",\"updatedAt\":\"%s\",\"phoneNumberId\":\"phone-number-id-1\","
             "\"customer\":{\"number\":\"+15557770000\"},\"assistantOverrides\":{\"metadata\":"
             "{\"twilioCallSid\":\"%s\",\"callgateAttempt\":1,\"callgateGate\":\"%s\"}}}",
             id, status, created, created, sid, gate);
}

static void wait_state(struct fixture *f, const char *sid, const char *want)
{
    uint64_t t0 = cgt_now_ms();
    for (;;) {
        char *st = cgt_redis_cmd(&f->rs, "HGET " P "call:%s state", sid);
        int ok = strcmp(st, want) == 0;
        free(st);
        if (ok)
            return;
        if (cgt_now_ms() - t0 > SOON) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s never reached state %s", sid, want);
            must(f, 0, msg);
        }
        cgt_sleep_ms(10);
    }
}

static void test_flushall_rebuilds_slots(void **state)
{
    struct fixture *f = *state;
    start_gate(f);
    must(f, wait_intact(f, SOON) >= 0, "no first repair on a fresh Redis");

    /* Two callers take both slots on the fast path; two wait. */
    const char *on[] = {"CA00000000000000000000000000000001", "CA00000000000000000000000000000002"};
    const char *waiting[] = {"CA00000000000000000000000000000003",
                             "CA00000000000000000000000000000004"};
    for (int i = 0; i < 2; i++) {
        char *body = incoming(f, on[i]);
        must(f, strstr(body, "<Enqueue") == NULL, "a caller was not admitted on the fast path");
        free(body);
        wait_state(f, on[i], "connected");
    }
    for (int i = 0; i < 2; i++) {
        char *body = incoming(f, waiting[i]);
        must(f, strstr(body, "<Enqueue") != NULL, "a caller beyond the limit was not queued");
        free(body);
    }
    char *ids[2];
    for (int i = 0; i < 2; i++) {
        ids[i] = cgt_fake_vapi_id(f->fake, on[i]);
        must(f, ids[i] != NULL, "no Vapi call for a connected caller");
    }

    /* Vapi's view: both calls live, plus an ended call and another gate's
     * live call, neither of which this gate may count. */
    char e[4][700], list[3000];
    list_entry(e[0], sizeof e[0], ids[0], "in-progress", on[0], "default");
    list_entry(e[1], sizeof e[1], ids[1], "in-progress", on[1], "default");
    list_entry(e[2], sizeof e[2], "0badc0de-0000-4000-8000-000000000001", "ended",
               "CA00000000000000000000000000000009", "default");
    list_entry(e[3], sizeof e[3], "0badc0de-0000-4000-8000-000000000002", "in-progress",
               "CA0000000000000000000000000000000a", "other");
    snprintf(list, sizeof list, "[%s,%s,%s,%s]", e[0], e[1], e[2], e[3]);
    cgt_fake_set_vapi_list(f->fake, list);
    /* Twilio's queue still holds the two waiting callers. */
    char members[1024];
    snprintf(members, sizeof members,
             "[{\"call_sid\":\"%s\",\"date_enqueued\":\"Tue, 07 Aug 2018 04:08:09 +0000\","
             "\"position\":1,\"queue_sid\":\"%s\",\"wait_time\":20},"
             "{\"call_sid\":\"%s\",\"date_enqueued\":\"Tue, 07 Aug 2018 04:08:10 +0000\","
             "\"position\":2,\"queue_sid\":\"%s\",\"wait_time\":19}]",
             waiting[0], QUEUE_SID, waiting[1], QUEUE_SID);
    cgt_fake_set_queue_members(f->fake, members);
    int creates = cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE);
    int lists = cgt_fake_count(f->fake, CGT_EP_VAPI_LIST);
    assert_int_equal(creates, 2);

    /* /health says admission runs. */
    char hurl[128];
    snprintf(hurl, sizeof hurl, "%s/health", f->base);
    struct cgt_resp hr;
    cgt_http("GET", hurl, NULL, NULL, 0, &hr);
    if (hr.status != 200 || strstr(hr.body, "\"admission\":\"running\"") == NULL)
        print_message("/health: %ld %s\n", hr.status, hr.body ? hr.body : "");
    must(f, hr.status == 200 && strstr(hr.body, "\"admission\":\"running\"") != NULL,
         "/health does not say admission runs");
    cgt_resp_free(&hr);

    /* The lost writes: everything the gate had in Redis. Another
     * instance's claim on the repair, taken at once, holds it back until
     * /health has been seen saying so. */
    char *out = cgt_redis_cmd(&f->rs, "FLUSHALL");
    assert_string_equal(out, "OK");
    free(out);
    free(cgt_redis_cmd(&f->rs, "SET " P "repairing other-instance PX 20000"));
    cgt_http("GET", hurl, NULL, NULL, 0, &hr);
    if (hr.status != 200 || strstr(hr.body, "\"admission\":\"repairing\"") == NULL)
        print_message("/health: %ld %s\n", hr.status, hr.body ? hr.body : "");
    must(f, hr.status == 200 && strstr(hr.body, "\"admission\":\"repairing\"") != NULL,
         "/health does not say admission waits for the repair");
    cgt_resp_free(&hr);
    free(cgt_redis_cmd(&f->rs, "DEL " P "repairing"));
    uint64_t t0 = cgt_now_ms();

    /* A caller arriving now finds every slot "free" in Redis, but must not
     * be admitted: both are held by live calls. */
    char *body = incoming(f, "CA00000000000000000000000000000005");
    must(f, strstr(body, "<Enqueue") != NULL, "a caller was admitted into a lost slot");
    free(body);

    long long max_active = 0, repaired_ms = -1;
    int adopted = 0;
    while (cgt_now_ms() - t0 < SOON && (repaired_ms < 0 || !adopted)) {
        long long a = rint_of(f, "ZCARD " P "%s", "active");
        if (a > max_active)
            max_active = a;
        if (repaired_ms < 0 && rint_of(f, "EXISTS " P "%s", "intact") == 1)
            repaired_ms = (long long)(cgt_now_ms() - t0);
        adopted = rint_of(f, "ZRANK " P "waiting %s", waiting[0]) >= 0 &&
                  rint_of(f, "ZRANK " P "waiting %s", waiting[1]) >= 0;
        cgt_sleep_ms(5);
    }
    must(f, repaired_ms >= 0, "the slots were not repaired within 10 s");
    must(f, adopted, "the waiting callers were not adopted again within 10 s");
    print_message("repair: slots rebuilt %lld ms after the FLUSHALL, most active %lld\n",
                  repaired_ms, max_active);
    must(f, cgt_fake_count(f->fake, CGT_EP_VAPI_LIST) > lists, "Vapi's list was not read");
    /* Both live calls hold a slot again (as orphans: their records are
     * gone); the ended one and the other gate's do not. */
    must(f, max_active <= 2, "more slots held than the limit");
    assert_int_equal(rint_of(f, "ZCARD " P "%s", "active"), 2);
    char slot[80];
    for (int i = 0; i < 2; i++) {
        snprintf(slot, sizeof slot, "v:%s", ids[i]);
        must(f, rint_of(f, "ZSCORE " P "active %s", slot) > 0, "a live call holds no slot");
    }
    /* Nobody was admitted while the two calls held the slots. */
    cgt_sleep_ms(500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), creates);
    assert_int_equal(rint_of(f, "ZCARD " P "%s", "waiting"), 3);

    /* One call ends: its slot goes to the head of the queue, and only one. */
    vapi_end(f, ids[0]);
    must(f, cgt_fake_wait_count(f->fake, CGT_EP_VAPI_CREATE, creates + 1, SOON) == 0,
         "the released slot was not refilled");
    cgt_sleep_ms(500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), creates + 1);
    assert_true(rint_of(f, "ZCARD " P "%s", "active") <= 2);
    assert_int_equal(rint_of(f, "ZCARD " P "%s", "waiting"), 2);
    free(ids[0]);
    free(ids[1]);
    /* /metrics: the repairs, and the two slots they counted again. */
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", f->base);
    struct cgt_resp m;
    cgt_http("GET", url, NULL, NULL, 0, &m);
    must(f, m.status == 200 && m.body != NULL, "no /metrics");
    must(f, strstr(m.body, "callgate_repairs_total{outcome=\"repaired\"} 2") != NULL,
         "/metrics does not count two repairs (the fresh Redis, the FLUSHALL)");
    must(f, strstr(m.body, "callgate_repaired_slots_total 2") != NULL,
         "/metrics does not count the two slots repaired");
    cgt_resp_free(&m);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNKNOWN), 0);
    assert_int_equal(cgt_stop(&f->gate, SIGTERM, 10000), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flushall_rebuilds_slots, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
