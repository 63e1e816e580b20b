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

struct fixture {
    struct cgt_redis_node master, replica, sentinel;
    struct cgt_fake *fake;
    struct cgt_proc gate;
    char base[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cgt_redis_node_start(&f->master, NULL, 0, NULL);
    char mport[16];
    snprintf(mport, sizeof mport, "%d", f->master.port);
    const char *rep[] = {"--replicaof", "127.0.0.1", mport, NULL};
    cgt_redis_node_start(&f->replica, NULL, 0, rep);
    if (cgt_node_wait(&f->replica, "INFO replication", "master_link_status:up", 10000) != 0)
        fail_msg("the replica did not sync");
    cgt_sentinel_start(&f->sentinel, "cgmaster", f->master.port, NULL);
    if (cgt_node_wait(&f->sentinel, "SENTINEL REPLICAS cgmaster", "127.0.0.1", 15000) != 0)
        fail_msg("the sentinel did not discover the replica");
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
    cgt_redis_node_stop(&f->sentinel);
    cgt_redis_node_stop(&f->replica);
    cgt_redis_node_stop(&f->master);
    free(f);
    return 0;
}

static void start_gate_limit(struct fixture *f, const char *limit)
{
    int port = cg_free_port();
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", port);
    char port_s[32], pub[96], sentinels[64], twbase[96], vbase[96];
    snprintf(port_s, sizeof port_s, "PORT=%d", port);
    snprintf(pub, sizeof pub, "PUBLIC_URL=%s", f->base);
    snprintf(sentinels, sizeof sentinels, "REDIS_SENTINELS=127.0.0.1:%d", f->sentinel.port);
    snprintf(twbase, sizeof twbase, "TWILIO_API_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(vbase, sizeof vbase, "VAPI_BASE_URL=%s", cgt_fake_url(f->fake));
    const char *const env[] = {
        port_s, pub, sentinels, twbase, vbase, "REDIS_SENTINEL_MASTER=cgmaster",
        /* Replaced by the master the sentinel names. */
        "REDIS_URL=redis://127.0.0.1:1", "BIND_ADDRESS=127.0.0.1",
        "TWILIO_ACCOUNT_SID=" ACCOUNT_SID, "TWILIO_AUTH_TOKEN=" AUTH_TOKEN,
        "TWILIO_QUEUE_SID=" QUEUE_SID, "VAPI_API_KEY=" VAPI_KEY,
        "VAPI_PHONE_NUMBER_ID=phone-number-id-1", "VAPI_ASSISTANT_ID=assistant-id-1",
        "VAPI_WEBHOOK_SECRET=" VAPI_SECRET, limit, "LOG_LEVEL=debug", "REDIS_RECONNECT_MIN_MS=20",
        "REDIS_RECONNECT_MAX_MS=200", "REDIS_COMMAND_TIMEOUT_MS=500", NULL};
    const char *const *lists[] = {env, NULL};
    cgt_spawn_callgate(&f->gate, lists);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    if (cgt_wait_status(url, 200, 15000) != 0) {
        cgt_dump_log_tail(&f->gate, "callgate", 6000);
        fail_msg("callgate behind Sentinel did not become healthy");
    }
    /* Admission waits for the first repair on a fresh Redis. */
    if (cgt_node_wait(&f->master, "EXISTS " P "intact", "1", 10000) != 0)
        fail_msg("no first repair on a fresh Redis");
}

static void start_gate(struct fixture *f)
{
    start_gate_limit(f, "MAX_CONCURRENCY=1");
}

/* /incoming for a new caller, signed as Twilio signs it; the body. */
static char *incoming(struct fixture *f, const char *sid)
{
    char url[128];
    snprintf(url, sizeof url, "%s/incoming", f->base);
    struct cg_form form;
    cg_form_init(&form);
    const char *kv[] = {"CallSid",    sid,
                        "AccountSid", ACCOUNT_SID,
                        "From",       "+15557770000",
                        "To",         "+15550002222",
                        "CallStatus", "ringing",
                        "Direction",  "inbound",
                        NULL};
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
    if (r.status != 200) {
        cgt_dump_log_tail(&f->gate, "callgate", 6000);
        fail_msg("/incoming answered %ld", r.status);
    }
    char *out = strdup(r.body ? r.body : "");
    cgt_resp_free(&r);
    return out;
}

static char *state_on(const struct cgt_redis_node *n, const char *sid)
{
    return cgt_node_cmd(n, "HGET " P "call:%s state", sid);
}

static void live_call(char *out, size_t n, const char *id, const char *sid);

static void test_failover_keeps_callers(void **state)
{
    struct fixture *f = *state;
    start_gate(f);

    /* One caller takes the only slot; two wait. */
    char *body = incoming(f, "CA00000000000000000000000000000001");
    assert_null(strstr(body, "<Enqueue"));
    free(body);
    const char *waiting[] = {"CA00000000000000000000000000000002",
                             "CA00000000000000000000000000000003"};
    for (int i = 0; i < 2; i++) {
        body = incoming(f, waiting[i]);
        assert_non_null(strstr(body, "<Enqueue"));
        free(body);
    }
    /* Vapi knows the connected caller's call. */
    char *id1 = cgt_fake_vapi_id(f->fake, "CA00000000000000000000000000000001");
    assert_non_null(id1);
    char e1[600], list1[700];
    live_call(e1, sizeof e1, id1, "CA00000000000000000000000000000001");
    snprintf(list1, sizeof list1, "[%s]", e1);
    cgt_fake_set_vapi_list(f->fake, list1);
    free(id1);
    /* Replicated before the failover, as a healthy replica would have. */
    char *out = cgt_node_cmd(&f->master, "WAIT 1 2000");
    assert_string_equal(out, "1");
    free(out);

    cgt_sentinel_failover(&f->sentinel, "cgmaster");
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
        body = incoming(f, sid);
        assert_non_null(strstr(body, "<Enqueue"));
        free(body);
        out = state_on(&f->replica, sid);
        written = strcmp(out, "waiting") == 0;
        free(out);
        if (!written)
            cgt_sleep_ms(100);
    }
    if (!written) {
        cgt_dump_log_tail(&f->gate, "callgate", 6000);
        fail_msg("no new caller reached the new master within 10 s");
    }
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
        log = cgt_proc_output(&f->gate);
        if (strstr(log, "\"restored_callers\":0,\"restored_orphans\":0,\"already_held\":1"))
            break;
        cgt_sleep_ms(50);
    }
    if (strstr(log, "\"restored_callers\":0,\"restored_orphans\":0,\"already_held\":1") == NULL) {
        cgt_dump_log_tail(&f->gate, "callgate", 6000);
        fail_msg("no repair found the connected caller's slot held after the failover");
    }
    free(log);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    assert_int_equal(cgt_wait_status(url, 200, 5000), 0);
    assert_int_equal(cgt_stop(&f->gate, SIGTERM, 10000), 0);
}

static long long node_int(const struct cgt_redis_node *n, const char *fmt, const char *arg)
{
    char *out = cgt_node_cmd(n, fmt, arg);
    long long v = strcmp(out, "(nil)") == 0 ? -1 : strtoll(out, NULL, 10);
    free(out);
    return v;
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
        if (cgt_now_ms() - t0 > 10000) {
            cgt_dump_log_tail(&f->gate, "callgate", 6000);
            fail_msg("%s never reached state %s", sid, want);
        }
        cgt_sleep_ms(10);
    }
}

/* One live call of Vapi's GET /call answer. */
static void live_call(char *out, size_t n, const char *id, const char *sid)
{
    char created[25];
    cg_iso8601_ms(cg_wall_ms() - 10000, created);
    snprintf(out, n,
             "{\"id\":\"%s\",\"orgId\":\"org-1\",\"status\":\"in-progress\",\"createdAt\":"
             "\"%s\",\"updatedAt\":\"%s\",\"assistantOverrides\":{\"metadata\":{"
             "\"twilioCallSid\":\"%s\",\"callgateAttempt\":1,\"callgateGate\":\"default\"}}}",
             id, created, created, sid);
}

static void test_killed_master_repaired(void **state)
{
    struct fixture *f = *state;
    start_gate_limit(f, "MAX_CONCURRENCY=2");
    const char *a = "CA00000000000000000000000000000001";
    const char *b = "CA00000000000000000000000000000002";
    const char *c = "CA00000000000000000000000000000003";

    /* A takes a slot, and the replica has it. */
    char *body = incoming(f, a);
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
    body = incoming(f, b);
    assert_null(strstr(body, "<Enqueue"));
    free(body);
    wait_node_state(f, &f->master, b, "connected");
    body = incoming(f, c);
    assert_non_null(strstr(body, "<Enqueue"));
    free(body);
    wait_node_state(f, &f->master, c, "waiting");

    /* Vapi knows both calls; Twilio's queue holds C. */
    char *ida = cgt_fake_vapi_id(f->fake, a), *idb = cgt_fake_vapi_id(f->fake, b);
    assert_non_null(ida);
    assert_non_null(idb);
    char ea[600], eb[600], list[1300], members[512];
    live_call(ea, sizeof ea, ida, a);
    live_call(eb, sizeof eb, idb, b);
    snprintf(list, sizeof list, "[%s,%s]", eb, ea);
    cgt_fake_set_vapi_list(f->fake, list);
    snprintf(members, sizeof members,
             "[{\"call_sid\":\"%s\",\"date_enqueued\":\"Tue, 07 Aug 2018 04:08:09 +0000\","
             "\"position\":1,\"queue_sid\":\"%s\",\"wait_time\":3}]",
             c, QUEUE_SID);
    cgt_fake_set_queue_members(f->fake, members);
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
        long long act = node_int(&f->replica, "ZCARD " P "%s", "active");
        if (act > max_active)
            max_active = act;
        /* B's call holds a slot again only once the repair ran (the
         * replica's copy of the marker predates the loss). */
        if (repaired_ms < 0 && node_int(&f->replica, "ZSCORE " P "active %s", slot) > 0)
            repaired_ms = (long long)(cgt_now_ms() - t0);
        if (adopted_ms < 0 && node_int(&f->replica, "ZRANK " P "waiting %s", c) >= 0)
            adopted_ms = (long long)(cgt_now_ms() - t0);
        if (written_ms < 0 && n % 10 == 0) {
            char sid[40];
            snprintf(sid, sizeof sid, "CA%032x", 0x100 + n);
            body = incoming(f, sid);
            assert_non_null(strstr(body, "<Enqueue")); /* both slots are held */
            free(body);
            out = state_on(&f->replica, sid);
            if (strcmp(out, "waiting") == 0)
                written_ms = (long long)(cgt_now_ms() - t0);
            free(out);
        }
        cgt_sleep_ms(10);
    }
    if (repaired_ms < 0 || written_ms < 0 || adopted_ms < 0) {
        cgt_dump_log_tail(&f->gate, "callgate", 8000);
        fail_msg("after the promotion: repaired %lld ms, new caller written %lld ms, waiting "
                 "caller adopted %lld ms (-1: not within 15 s)",
                 repaired_ms, written_ms, adopted_ms);
    }
    print_message("killed master: repaired %lld ms, new caller written %lld ms, waiting caller "
                  "adopted %lld ms after the promotion\n",
                  repaired_ms, written_ms, adopted_ms);
    /* A's slot kept, B's live call counted again, nobody admitted meanwhile. */
    assert_true(max_active <= 2);
    assert_int_equal(node_int(&f->replica, "ZCARD " P "%s", "active"), 2);
    assert_true(node_int(&f->replica, "ZSCORE " P "active %s", a) > 0);
    assert_int_equal(node_int(&f->replica, "EXISTS " P "%s", "intact"), 1);
    assert_true(node_int(&f->replica, "ZSCORE " P "active %s", slot) > 0);
    cgt_sleep_ms(500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), creates);
    free(ida);
    free(idb);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    assert_int_equal(cgt_wait_status(url, 200, 5000), 0);
    assert_int_equal(cgt_stop(&f->gate, SIGTERM, 10000), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_keeps_callers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_master_repaired, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
