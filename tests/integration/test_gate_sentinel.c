/*
 * The admission gate behind Redis Sentinel: a callgate process started with
 * REDIS_SENTINELS and REDIS_SENTINEL_MASTER against a master, a replica and
 * one sentinel started by the test, with Twilio and Vapi played by the fake
 * API. Across SENTINEL FAILOVER the waiting callers stay waiting (their
 * records were replicated), new callers are written to the new master
 * within seconds, and the concurrency limit is never exceeded there.
 *
 * A killed master (kill -9) whose last writes never reached the replica (the
 * replica is stopped with SIGSTOP while they are made): after the sentinel
 * promotes the replica, the gate repairs what was lost (src/gate/repair.c):
 * the lost caller's live Vapi call holds a slot again, the lost waiting
 * caller is adopted again from Twilio's queue, nobody is admitted over the
 * limit, and new callers are written to the new master within seconds.
 */
#include "base/fmacros.h"

#include "redisx.h"

#include "gate_kit.h"

static char *state_on(const struct cgt_redis_node *n, const char *sid)
{
    return cgt_node_cmd(n, "HGET " P "call:%s state", sid);
}

/* One live call of Vapi's GET /call answer, placed ten seconds ago. */
static void live_call(char *out, size_t n, const char *id, const char *sid)
{
    vapi_call_json(out, n, id, "in-progress", sid, "default", 10000);
}

static void test_failover_keeps_callers(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});

    /* One caller takes the only slot; two wait. */
    char *body = incoming_body(f, 0, "CA00000000000000000000000000000001");
    assert_null(strstr(body, "<Enqueue"));
    free(body);
    const char *waiting[] = {"CA00000000000000000000000000000002",
                             "CA00000000000000000000000000000003"};
    for (int i = 0; i < 2; i++) {
        body = incoming_body(f, 0, waiting[i]);
        assert_non_null(strstr(body, "<Enqueue"));
        free(body);
    }
    /* Vapi knows the connected caller's call. */
    char *id1 = vapi_id_of(f, "CA00000000000000000000000000000001");
    char e1[700], list1[800];
    live_call(e1, sizeof e1, id1, "CA00000000000000000000000000000001");
    snprintf(list1, sizeof list1, "[%s]", e1);
    cgt_fake_set_vapi_list(f->fake, list1);
    free(id1);
    /* Replicated before the failover, as a healthy replica would have. */
    char *out = cgt_node_cmd(&f->master, "WAIT 1 2000");
    assert_string_equal(out, "1");
    free(out);

    cgt_sentinel_failover(&f->sentinel, SENTINEL_MASTER);
    if (cgt_node_wait(&f->replica, "ROLE", "master", 15000) != 0)
        fail_msg("the replica was not promoted");
    uint64_t t0 = cgt_now_ms();

    /* New callers are written to the new master within seconds (one that
     * arrives while callgate reconnects is answered with Enqueue and no
     * record, as in any Redis outage). */
    int written = 0;
    for (int n = 0; n < 100 && !written && cgt_now_ms() - t0 < 10000; n++) {
        char sid[40];
        snprintf(sid, sizeof sid, "CA%032x", 0x100 + n);
        body = incoming_body(f, 0, sid);
        assert_non_null(strstr(body, "<Enqueue"));
        free(body);
        out = state_on(&f->replica, sid);
        written = strcmp(out, "waiting") == 0;
        free(out);
        if (!written)
            cgt_sleep_ms(100);
    }
    must(f, written, "no new caller reached the new master within 10 s");
    print_message("failover: a new caller written to the new master %llu ms after the "
                  "promotion\n",
                  (unsigned long long)(cgt_now_ms() - t0));

    /* The callers that waited before still wait, and the limit holds. */
    for (int i = 0; i < 2; i++) {
        out = state_on(&f->replica, waiting[i]);
        assert_string_equal(out, "waiting");
        free(out);
    }
    out = cgt_node_cmd(&f->replica, "ZCARD " P "active");
    assert_true(strtoll(out, NULL, 10) <= 1);
    free(out);
    /* The switch lost nothing: the repair after it found the call held. */
    uint64_t until = cgt_now_ms() + 10000;
    char *log = NULL;
    while (cgt_now_ms() < until) {
        free(log);
        log = cgt_proc_output(&f->g[0].proc);
        if (strstr(log, "\"restored_callers\":0,\"restored_orphans\":0,\"already_held\":1"))
            break;
        cgt_sleep_ms(50);
    }
    must(f, strstr(log, "\"restored_callers\":0,\"restored_orphans\":0,\"already_held\":1"),
         "no repair found the connected caller's slot held after the failover");
    free(log);
    char url[128];
    url_of(f, 0, "/health", url, sizeof url);
    assert_int_equal(cgt_wait_status(url, 200, 5000), 0);
    stop_gate(f, 0);
}

static void wait_node_state(struct fixture *f, const struct cgt_redis_node *n, const char *sid,
                            const char *want)
{
    uint64_t t0 = cgt_now_ms();
    for (;;) {
        char *st = state_on(n, sid);
        int ok = strcmp(st, want) == 0;
        free(st);
        if (ok)
            return;
        must(f, cgt_now_ms() - t0 <= 10000, "%s never reached state %s", sid, want);
        cgt_sleep_ms(10);
    }
}

static void test_killed_master_repaired(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=2", NULL});
    const char *a = "CA00000000000000000000000000000001";
    const char *b = "CA00000000000000000000000000000002";
    const char *c = "CA00000000000000000000000000000003";

    /* A takes a slot, and the replica has it. */
    char *body = incoming_body(f, 0, a);
    assert_null(strstr(body, "<Enqueue"));
    free(body);
    wait_node_state(f, &f->master, a, "connected");
    char *out = cgt_node_cmd(&f->master, "WAIT 1 2000");
    assert_string_equal(out, "1");
    free(out);

    /* The replica stalls; B takes the second slot and C waits, on the
     * master only: writes a failover loses. */
    assert_int_equal(kill(f->replica.proc.pid, SIGSTOP), 0);
    /* Its link cut while it is stopped, so that nothing more reaches it
     * (data already in its socket would be read when it runs again). */
    out = cgt_node_cmd(&f->master, "CLIENT KILL TYPE replica");
    assert_string_equal(out, "1");
    free(out);
    body = incoming_body(f, 0, b);
    assert_null(strstr(body, "<Enqueue"));
    free(body);
    wait_node_state(f, &f->master, b, "connected");
    body = incoming_body(f, 0, c);
    assert_non_null(strstr(body, "<Enqueue"));
    free(body);
    wait_node_state(f, &f->master, c, "waiting");

    /* Vapi knows both calls; Twilio's queue holds C. */
    char *ida = vapi_id_of(f, a), *idb = vapi_id_of(f, b);
    char ea[700], eb[700], list[1500];
    live_call(ea, sizeof ea, ida, a);
    live_call(eb, sizeof eb, idb, b);
    snprintf(list, sizeof list, "[%s,%s]", eb, ea);
    cgt_fake_set_vapi_list(f->fake, list);
    set_queue_members(f, (const char *const[]){c, NULL}, 3);
    int creates = cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE);
    assert_int_equal(creates, 2);

    /* kill -9 the master, then let the replica run again: the sentinel
     * promotes it without B and C. */
    cgt_stop(&f->master.proc, SIGKILL, 2000);
    assert_int_equal(kill(f->replica.proc.pid, SIGCONT), 0);
    if (cgt_node_wait(&f->replica, "ROLE", "master", 20000) != 0)
        fail_msg("the replica was not promoted");
    uint64_t t0 = cgt_now_ms();
    out = state_on(&f->replica, b);
    assert_string_equal(out, "(nil)"); /* the write was lost indeed */
    free(out);

    char slot[80];
    snprintf(slot, sizeof slot, "v:%s", idb);
    long long max_active = 0, repaired_ms = -1, written_ms = -1, adopted_ms = -1;
    for (int n = 0;
         cgt_now_ms() - t0 < 15000 && (repaired_ms < 0 || written_ms < 0 || adopted_ms < 0); n++) {
        long long act = cgt_redis_int(f->replica.port, "ZCARD " P "active");
        if (act > max_active)
            max_active = act;
        /* B's call holds a slot again only once the repair ran (the
         * replica's copy of the marker predates the loss). */
        if (repaired_ms < 0 && cgt_redis_int(f->replica.port, "ZSCORE " P "active %s", slot) > 0)
            repaired_ms = (long long)(cgt_now_ms() - t0);
        if (adopted_ms < 0 && cgt_redis_int(f->replica.port, "ZRANK " P "waiting %s", c) >= 0)
            adopted_ms = (long long)(cgt_now_ms() - t0);
        if (written_ms < 0 && n % 10 == 0) {
            char sid[40];
            snprintf(sid, sizeof sid, "CA%032x", 0x100 + n);
            body = incoming_body(f, 0, sid);
            assert_non_null(strstr(body, "<Enqueue")); /* both slots are held */
            free(body);
            out = state_on(&f->replica, sid);
            if (strcmp(out, "waiting") == 0)
                written_ms = (long long)(cgt_now_ms() - t0);
            free(out);
        }
        cgt_sleep_ms(10);
    }
    must(f, repaired_ms >= 0 && written_ms >= 0 && adopted_ms >= 0,
         "after the promotion: repaired %lld ms, new caller written %lld ms, waiting "
         "caller adopted %lld ms (-1: not within 15 s)",
         repaired_ms, written_ms, adopted_ms);
    print_message("killed master: repaired %lld ms, new caller written %lld ms, waiting caller "
                  "adopted %lld ms after the promotion\n",
                  repaired_ms, written_ms, adopted_ms);
    /* A's slot kept, B's live call counted again, nobody admitted meanwhile. */
    assert_true(max_active <= 2);
    assert_int_equal(cgt_redis_int(f->replica.port, "ZCARD " P "active"), 2);
    assert_true(cgt_redis_int(f->replica.port, "ZSCORE " P "active %s", a) > 0);
    assert_int_equal(cgt_redis_int(f->replica.port, "EXISTS " P "intact"), 1);
    assert_true(cgt_redis_int(f->replica.port, "ZSCORE " P "active %s", slot) > 0);
    cgt_sleep_ms(500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), creates);
    free(ida);
    free(idb);
    char url[128];
    url_of(f, 0, "/health", url, sizeof url);
    assert_int_equal(cgt_wait_status(url, 200, 5000), 0);
    stop_gate(f, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_keeps_callers, setup_sentinel, teardown),
        cmocka_unit_test_setup_teardown(test_killed_master_repaired, setup_sentinel, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
