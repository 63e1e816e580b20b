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

#include "gate_kit.h"

/* /health answers 200 with admission in this state. */
static void assert_admission(struct fixture *f, const char *state, const char *what)
{
    char url[128], want[64];
    url_of(f, 0, "/health", url, sizeof url);
    snprintf(want, sizeof want, "\"admission\":\"%s\"", state);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    if (r.status != 200 || r.body == NULL || strstr(r.body, want) == NULL)
        print_message("/health: %ld %s\n", r.status, r.body ? r.body : "");
    must(f, r.status == 200 && r.body != NULL && strstr(r.body, want) != NULL, "%s", what);
    cgt_resp_free(&r);
}

static void test_flushall_rebuilds_slots(void **state)
{
    struct fixture *f = *state;
    /* start_gate waits for the first repair on the fresh Redis. */
    start_gate(f, 0, (const char *const[]){"SWEEP_INTERVAL_MS=200", NULL});

    /* Two callers take both slots on the fast path; two wait. */
    const char *on[] = {"CA00000000000000000000000000000001", "CA00000000000000000000000000000002"};
    const char *waiting[] = {"CA00000000000000000000000000000003",
                             "CA00000000000000000000000000000004"};
    for (int i = 0; i < 2; i++) {
        char *body = incoming_body(f, 0, on[i]);
        must(f, strstr(body, "<Enqueue") == NULL, "a caller was not admitted on the fast path");
        free(body);
        wait_state(f, on[i], "connected", LATER);
    }
    for (int i = 0; i < 2; i++) {
        char *body = incoming_body(f, 0, waiting[i]);
        must(f, strstr(body, "<Enqueue") != NULL, "a caller beyond the limit was not queued");
        free(body);
    }
    char *ids[2];
    for (int i = 0; i < 2; i++)
        ids[i] = vapi_id_of(f, on[i]);

    /* Vapi's view: both calls live, plus an ended call and another gate's
     * live call, neither of which this gate may count. */
    char e[4][700], list[3000];
    vapi_call_json(e[0], sizeof e[0], ids[0], "in-progress", on[0], "default", 30000);
    vapi_call_json(e[1], sizeof e[1], ids[1], "in-progress", on[1], "default", 30000);
    vapi_call_json(e[2], sizeof e[2], "0badc0de-0000-4000-8000-000000000001", "ended",
                   "CA00000000000000000000000000000009", "default", 30000);
    vapi_call_json(e[3], sizeof e[3], "0badc0de-0000-4000-8000-000000000002", "in-progress",
                   "CA0000000000000000000000000000000a", "other", 30000);
    snprintf(list, sizeof list, "[%s,%s,%s,%s]", e[0], e[1], e[2], e[3]);
    cgt_fake_set_vapi_list(f->fake, list);
    /* Twilio's queue still holds the two waiting callers. */
    set_queue_members(f, (const char *const[]){waiting[0], waiting[1], NULL}, 20);
    int creates = cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE);
    int lists = cgt_fake_count(f->fake, CGT_EP_VAPI_LIST);
    assert_int_equal(creates, 2);

    /* /health says admission runs. */
    assert_admission(f, "running", "/health does not say admission runs");

    /* The lost writes: everything the gate had in Redis. Another
     * instance's claim on the repair, taken at once, holds it back until
     * /health has been seen saying so. */
    char *out = cgt_redis_cmd(&f->rs, "FLUSHALL");
    assert_string_equal(out, "OK");
    free(out);
    free(cgt_redis_cmd(&f->rs, "SET " P "repairing other-instance PX 20000"));
    assert_admission(f, "repairing", "/health does not say admission waits for the repair");
    free(cgt_redis_cmd(&f->rs, "DEL " P "repairing"));
    uint64_t t0 = cgt_now_ms();

    /* A caller arriving now finds every slot "free" in Redis, but must not
     * be admitted: both are held by live calls. */
    char *body = incoming_body(f, 0, "CA00000000000000000000000000000005");
    must(f, strstr(body, "<Enqueue") != NULL, "a caller was admitted into a lost slot");
    free(body);

    long long max_active = 0, repaired_ms = -1;
    int adopted = 0;
    while (cgt_now_ms() - t0 < LATER && (repaired_ms < 0 || !adopted)) {
        long long a = redis_int(f, "ZCARD " P "active");
        if (a > max_active)
            max_active = a;
        if (repaired_ms < 0 && redis_int(f, "EXISTS " P "intact") == 1)
            repaired_ms = (long long)(cgt_now_ms() - t0);
        adopted = position_of(f, waiting[0]) > 0 && position_of(f, waiting[1]) > 0;
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
    assert_int_equal(zcard(f, "active"), 2);
    char slot[80];
    for (int i = 0; i < 2; i++) {
        snprintf(slot, sizeof slot, "v:%s", ids[i]);
        must(f, redis_int(f, "ZSCORE " P "active %s", slot) > 0, "a live call holds no slot");
    }
    /* Nobody was admitted while the two calls held the slots. */
    cgt_sleep_ms(500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), creates);
    assert_int_equal(zcard(f, "waiting"), 3);

    /* One call ends: its slot goes to the head of the queue, and only one. */
    free(vapi_end(f, 0, ids[0], 0));
    must(f, cgt_fake_wait_count(f->fake, CGT_EP_VAPI_CREATE, creates + 1, LATER) == 0,
         "the released slot was not refilled");
    cgt_sleep_ms(500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), creates + 1);
    assert_true(zcard(f, "active") <= 2);
    assert_int_equal(zcard(f, "waiting"), 2);
    free(ids[0]);
    free(ids[1]);
    /* /metrics: the repairs, and the two slots they counted again. */
    char url[128];
    url_of(f, 0, "/metrics", url, sizeof url);
    struct cgt_resp m;
    cgt_http("GET", url, NULL, NULL, 0, &m);
    must(f, m.status == 200 && m.body != NULL, "no /metrics");
    must(f, strstr(m.body, "callgate_repairs_total{outcome=\"repaired\"} 2") != NULL,
         "/metrics does not count two repairs (the fresh Redis, the FLUSHALL)");
    must(f, strstr(m.body, "callgate_repaired_slots_total 2") != NULL,
         "/metrics does not count the two slots repaired");
    cgt_resp_free(&m);
    /* The log's tone: the fresh Redis at start was no loss (information),
     * the FLUSHALL was (a warning, and the repair that restored calls). */
    char *log = cgt_proc_output(&f->g[0].proc);
    const char *fresh = strstr(log, "no record of this gate in redis yet");
    const char *lost = strstr(log, "\"level\":\"warn\",\"message\":\"the gate's slots may have "
                                   "lost writes");
    must(f, fresh != NULL, "a first start did not say it found no record of the gate");
    must(f, lost != NULL && lost > fresh, "the FLUSHALL was not warned about after the start");
    const char *first_lost = strstr(log, "may have lost writes");
    must(f, first_lost > lost && first_lost > fresh, "the first start was reported as lost writes");
    must(f, strstr(log, "\"level\":\"info\",\"message\":\"repaired the gate's slots") != NULL,
         "the first repair (nothing restored) was not information");
    must(f, strstr(lost, "\"level\":\"warn\",\"message\":\"repaired the gate's slots") != NULL,
         "the repair that restored two calls was not a warning");
    free(log);
    stop_gate(f, 0); /* also: no call to an unknown endpoint */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flushall_rebuilds_slots, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
