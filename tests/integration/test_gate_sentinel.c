/*
 * The admission gate behind Redis Sentinel: a callgate process started with
 * REDIS_SENTINELS and REDIS_SENTINEL_MASTER against a master, a replica and
 * one sentinel started by the test, with Twilio and Vapi played by the fake
 * API. Across SENTINEL FAILOVER the waiting callers stay waiting (their
 * records were replicated), new callers are written to the new master
 * within seconds, and the concurrency limit is never exceeded there.
 */
#include "base/fmacros.h"

#include "redisx.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void start_gate(struct fixture *f)
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
        "VAPI_WEBHOOK_SECRET=" VAPI_SECRET, "MAX_CONCURRENCY=1", "LOG_LEVEL=debug",
        "REDIS_RECONNECT_MIN_MS=20", "REDIS_RECONNECT_MAX_MS=200", "REDIS_COMMAND_TIMEOUT_MS=500",
        NULL};
    const char *const *lists[] = {env, NULL};
    cgt_spawn_callgate(&f->gate, lists);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    if (cgt_wait_status(url, 200, 15000) != 0) {
        cgt_dump_log_tail(&f->gate, "callgate", 6000);
        fail_msg("callgate behind Sentinel did not become healthy");
    }
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
