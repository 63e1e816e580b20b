/*
 * Instances of one gate that disagree on its settings, end to end: two
 * callgate processes on one real redis-server, Twilio and Vapi played by
 * the fake (tests/harness/fakeapi.c). An instance configured with a higher
 * MAX_CONCURRENCY never raises the gate's limit (the lowest of the live
 * instances holds), /health reports the disagreement naming the setting,
 * /metrics counts it, each log warns once; the low instance gone (a clean
 * stop, or killed and its entry expired), the other's limit applies.
 * Instances that agree are healthy and warn of nothing.
 *
 * Everything asynchronous is awaited by polling with generous deadlines;
 * no assertion depends on how fast anything is.
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

#define GATE_KIT_SID_FORMAT "CA%08xaaaaaaaaaaaaaaaaaaaaaaaa"
#include "gate_kit.h"

/* The announcement's expiry (gate/instances.h) and more, for a loaded
 * machine. */
#define EXPIRY_BOUND 30000

static json_t *health_of(struct fixture *f, int i)
{
    long st;
    json_t *j = get_json_of(f, i, "/health", &st);
    must(f, st == 200, "/health of callgate %d answered %ld", i, st);
    return j;
}

/* Polls /health of instance i until it reports `live` instances and
 * the status want ("healthy" or "degraded"); returns the last answer. */
static json_t *wait_health(struct fixture *f, int i, long long live, const char *want)
{
    uint64_t deadline = cgt_now_ms() + EXPIRY_BOUND;
    for (;;) {
        json_t *j = health_of(f, i);
        if (json_num(j, "instances") == live && strcmp(json_s(j, "status"), want) == 0)
            return j;
        if (cgt_now_ms() >= deadline) {
            char *text = json_dumps(j, 0);
            dump_logs(f);
            fail_msg("/health of callgate %d never showed %lld instances, %s: %s", i, live, want,
                     text);
        }
        json_decref(j);
        cgt_sleep_ms(100);
    }
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static char *metrics_of(struct fixture *f, int i)
{
    char url[256];
    url_of(f, i, "/metrics", url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    must(f, r.status == 200, "/metrics answered %ld", r.status);
    char *body = cg_strdup(r.body ? r.body : "");
    cgt_resp_free(&r);
    return body;
}

/* Polls until exactly want slots are held, checking on every look that
 * no more than bound ever are. */
static void wait_active(struct fixture *f, long long want, long long bound, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        long long active = zcard(f, "active");
        must(f, active <= bound, "%lld slots held, the limit is %lld", active, bound);
        if (active == want)
            return;
        must(f, cgt_now_ms() < deadline, "%lld slots held, wanted %lld", active, want);
        cgt_sleep_ms(20);
    }
}

#define WARNING "disagree on gate-wide settings"

/* Callers through the instance with the higher limit: no more than the
 * lower limit are admitted. Returns with two callers connected and the
 * rest waiting. */
static void drive_callers(struct fixture *f, char sids[][40], int n)
{
    for (int k = 0; k < n; k++) {
        new_sid(sids[k]);
        struct cgt_resp r;
        incoming(f, 1, sids[k], &r);
        must(f, r.status == 200, "/incoming answered %ld", r.status);
        cgt_resp_free(&r);
        long long active = zcard(f, "active");
        must(f, active <= 2, "%lld slots held after caller %d, the limit is 2", active, k);
    }
    wait_state(f, sids[0], "connected", LATER);
    wait_state(f, sids[1], "connected", LATER);
    /* Give admission every chance to overstep: a few sweeps and
     * announcements later, still two. */
    uint64_t until = cgt_now_ms() + 3000;
    while (cgt_now_ms() < until) {
        long long active = zcard(f, "active");
        must(f, active <= 2, "%lld slots held, the limit is 2", active);
        cgt_sleep_ms(50);
    }
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 2);
    assert_int_equal(zcard(f, "waiting"), n - 2);
}

static void start_pair(struct fixture *f)
{
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=2", NULL});
    start_gate(f, 1, (const char *const[]){"MAX_CONCURRENCY=4", NULL});
}

static void test_lowest_limit_holds_and_is_reported(void **state)
{
    struct fixture *f = *state;
    start_pair(f);
    /* Both instances see the disagreement. */
    json_t *h0 = wait_health(f, 0, 2, "degraded");
    json_decref(h0);
    json_t *h = wait_health(f, 1, 2, "degraded");
    assert_contains(json_s(h, "reason"), "MAX_CONCURRENCY");
    assert_lacks(json_s(h, "reason"), "VAPI_API_KEY");
    assert_int_equal(json_num(h, "instancesDisagreeing"), 1);
    assert_int_equal(json_num(h, "maxConcurrency"), 2);
    json_decref(h);
    char *min = cgt_redis_cmd(&f->rs, "GET " P "instances_min");
    assert_string_equal(min, "2");
    free(min);

    enum { N = 5 };
    char sids[N][40];
    drive_callers(f, sids, N);

    char *m = metrics_of(f, 1);
    assert_contains(m, "\ncallgate_instances 2");
    assert_contains(m, "\ncallgate_instances_disagreeing 1");
    assert_contains(m, "\ncallgate_limit 2");
    free(m);
    /* Each instance warned, once, naming the instances and the setting,
     * however many announcements followed. */
    for (int i = 0; i < 2; i++) {
        char *log = cgt_proc_output(&f->g[i].proc);
        must(f, occurrences(log, WARNING) == 1, "callgate %d warned %d times", i,
             occurrences(log, WARNING));
        assert_contains(log, "\"differ\":\"MAX_CONCURRENCY\"");
        assert_contains(log, "gate0 (version");
        assert_contains(log, "gate1 (version");
        free(log);
    }
    /* No value of a setting is in Redis, secrets least of all. */
    /* Entries are "<INSTANCE_ID>#<token>". */
    char *key = cgt_redis_cmd(&f->rs, "KEYS " P "inst:gate1#*");
    must(f, strchr(key, '\n') == NULL && key[0] != '\0', "gate1's entries: %s", key);
    char *rec = cgt_redis_cmd(&f->rs, "HGETALL %s", key);
    free(key);
    assert_contains(rec, "MAX_CONCURRENCY=");
    assert_lacks(rec, AUTH_TOKEN);
    assert_lacks(rec, VAPI_KEY);
    assert_lacks(rec, VAPI_SECRET);
    assert_lacks(rec, ASSISTANT_ID);
    free(rec);

    /* The 2-instance stops cleanly: it leaves the registry, and the gate's
     * limit becomes the 4-instance's at its next announcement. */
    stop_gate(f, 0);
    f->g[0].proc.pid = 0;
    wait_active(f, 4, 4, EXPIRY_BOUND);
    h = wait_health(f, 1, 1, "healthy");
    assert_int_equal(json_num(h, "maxConcurrency"), 4);
    assert_int_equal(json_num(h, "instancesDisagreeing"), 0);
    assert_null(json_object_get(h, "reason"));
    json_decref(h);
    char *log = cgt_proc_output(&f->g[1].proc);
    assert_contains(log, "agree on their settings again");
    free(log);
    stop_gate(f, 1);
    f->g[1].proc.pid = 0;
    /* The last instance gone, the registry is empty. */
    char *keys = cgt_redis_cmd(&f->rs, "KEYS " P "inst*");
    assert_string_equal(keys, "");
    free(keys);
}

/* The 2-instance dies without a word: its entry expires, and the gate's
 * limit becomes the 4-instance's. */
static void test_dead_instance_expires(void **state)
{
    struct fixture *f = *state;
    start_pair(f);
    json_decref(wait_health(f, 1, 2, "degraded"));
    enum { N = 4 };
    char sids[N][40];
    drive_callers(f, sids, N);
    cgt_stop(&f->g[0].proc, SIGKILL, 1000);
    f->g[0].proc.pid = 0;
    wait_active(f, 4, 4, EXPIRY_BOUND);
    for (int k = 0; k < N; k++)
        wait_state(f, sids[k], "connected", LATER);
    json_t *h = wait_health(f, 1, 1, "healthy");
    assert_int_equal(json_num(h, "maxConcurrency"), 4);
    json_decref(h);
    stop_gate(f, 1);
}

/* A difference in another gate-wide setting is named the same way; the
 * limit is not in question. */
static void test_other_setting_named(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    start_gate(f, 1, (const char *const[]){"VAPI_ASSISTANT_ID=assistant-id-2", NULL});
    json_t *h = wait_health(f, 0, 2, "degraded");
    assert_contains(json_s(h, "reason"), "VAPI_ASSISTANT_ID");
    assert_lacks(json_s(h, "reason"), "MAX_CONCURRENCY");
    assert_lacks(json_s(h, "reason"), "assistant-id-2");
    json_decref(h);
    char *log = cgt_proc_output(&f->g[0].proc);
    assert_contains(log, "\"differ\":\"VAPI_ASSISTANT_ID\"");
    assert_lacks(log, "assistant-id-2");
    free(log);
    stop_gate(f, 0);
    stop_gate(f, 1);
}

/* Two processes given one INSTANCE_ID: both entries count (the lower limit
 * holds), and the mistake is reported. */
static void test_duplicate_instance_id(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"INSTANCE_ID=web", "MAX_CONCURRENCY=1", NULL});
    start_gate(f, 1, (const char *const[]){"INSTANCE_ID=web", NULL});
    json_t *h = wait_health(f, 1, 2, "degraded");
    assert_contains(json_s(h, "reason"), "several processes announce INSTANCE_ID web");
    assert_int_equal(json_num(h, "maxConcurrency"), 1);
    json_decref(h);
    char *log = cgt_proc_output(&f->g[1].proc);
    assert_contains(log, "several processes announce one INSTANCE_ID");
    free(log);
    stop_gate(f, 0);
    stop_gate(f, 1);
}

/* Instances that agree: healthy, counted, no warning. */
static void test_agreeing_instances_healthy(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    start_gate(f, 1, NULL);
    for (int i = 0; i < 2; i++) {
        json_t *h = wait_health(f, i, 2, "healthy");
        assert_int_equal(json_num(h, "instancesDisagreeing"), 0);
        assert_null(json_object_get(h, "reason"));
        json_decref(h);
    }
    char *m = metrics_of(f, 0);
    assert_contains(m, "\ncallgate_instances 2");
    assert_contains(m, "\ncallgate_instances_disagreeing 0");
    free(m);
    for (int i = 0; i < 2; i++) {
        char *log = cgt_proc_output(&f->g[i].proc);
        assert_lacks(log, WARNING);
        free(log);
    }
    stop_gate(f, 0);
    stop_gate(f, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lowest_limit_holds_and_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_instance_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_setting_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_instance_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agreeing_instances_healthy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
