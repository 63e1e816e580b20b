/*
 * runner.c - runs one simulator scenario end to end: a private Redis, one
 * or more callgate processes configured against callgate-sim, and the
 * simulator playing Twilio, Vapi and the callers. The simulator judges the
 * invariants (never over the limit, no lost caller, counters true at the
 * end) and exits non-zero when one fails; this runner adds the chaos the
 * scenario asks for (Redis restarted mid-run) and checks that every
 * callgate instance is still alive and stops cleanly.
 *
 * Usage: scenario_runner tests/scenarios/<name>.json
 */
#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#define MAX_INSTANCES 3
#define PUBLIC_URL    "http://gate.callgate.test"

static const char *scenario_path;

/* What a scenario needs around it, by name. */
struct orchestration {
    const char *name;
    int instances;
    double redis_restart_at_s; /* 0: never */
};

static const struct orchestration plans[] = {
    {"three_instances", 3, 0},
    {"redis_restart", 2, 3.0},
};

static struct orchestration plan_for(const char *name)
{
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++)
        if (strcmp(plans[i].name, name) == 0)
            return plans[i];
    return (struct orchestration){name, 1, 0};
}

static void test_scenario(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *sc = json_load_file(scenario_path, 0, &jerr);
    if (sc == NULL)
        fail_msg("cannot read %s: %s", scenario_path, jerr.text);
    const char *name = json_string_value(json_object_get(sc, "name"));
    assert_non_null(name);
    struct orchestration plan = plan_for(name);
    json_t *vapi = json_object_get(sc, "vapi");
    json_t *jlimit = vapi ? json_object_get(vapi, "limit") : NULL;
    long limit = jlimit ? (long)json_integer_value(jlimit) : 10;

    struct cg_redis_server rs;
    cgt_redis_start(&rs);

    int sim_port = cg_free_port();
    char sim_url[64];
    snprintf(sim_url, sizeof sim_url, "http://127.0.0.1:%d", sim_port);

    struct cgt_proc gates[MAX_INSTANCES];
    char gate_urls[MAX_INSTANCES * 40] = "";
    for (int i = 0; i < plan.instances; i++) {
        int port = cg_free_port();
        char e_port[32], e_redis[96], e_twilio[96], e_vapi[96], e_limit[48], e_inst[48];
        snprintf(e_port, sizeof e_port, "PORT=%d", port);
        snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", rs.url);
        snprintf(e_twilio, sizeof e_twilio, "TWILIO_API_BASE_URL=%s", sim_url);
        snprintf(e_vapi, sizeof e_vapi, "VAPI_BASE_URL=%s", sim_url);
        snprintf(e_limit, sizeof e_limit, "MAX_CONCURRENCY=%ld", limit);
        snprintf(e_inst, sizeof e_inst, "INSTANCE_ID=gate-%d", i + 1);
        const char *env[] = {e_port,
                             e_redis,
                             e_twilio,
                             e_vapi,
                             e_limit,
                             e_inst,
                             "BIND_ADDRESS=127.0.0.1",
                             "PUBLIC_URL=" PUBLIC_URL,
                             "TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                             "TWILIO_AUTH_TOKEN=sim-auth-token",
                             "VAPI_API_KEY=sim-vapi-key",
                             "VAPI_WEBHOOK_SECRET=sim-vapi-secret",
                             "VAPI_PHONE_NUMBER_ID=sim-phone-number",
                             "VAPI_ASSISTANT_ID=sim-assistant",
                             "LOG_LEVEL=info",
                             "SWEEP_INTERVAL_MS=100",
                             "END_GRACE_MS=500",
                             "LEASE_SECONDS=10",
                             "ORPHAN_HOLD_SECONDS=5",
                             "OVERLIMIT_HOLD_SECONDS=2",
                             "ADMISSION_LEASE_SECONDS=10",
                             "ADMISSION_BACKOFF_MIN_MS=50",
                             "ADMISSION_BACKOFF_MAX_MS=1000",
                             "RECONCILE_INTERVAL_SECONDS=2",
                             "EXPECTED_CALL_SECONDS=1",
                             "TWILIO_TIMEOUT_MS=5000",
                             "VAPI_TIMEOUT_MS=5000",
                             "REDIS_RECONNECT_MIN_MS=20",
                             "REDIS_RECONNECT_MAX_MS=300",
                             "MAX_WAIT_SECONDS=0",
                             NULL};
        const char *argv[] = {cgt_bin("callgate"), "serve", NULL};
        cgt_spawn(&gates[i], argv, env);
        size_t used = strlen(gate_urls);
        snprintf(gate_urls + used, sizeof gate_urls - used, "%shttp://127.0.0.1:%d", i ? "," : "",
                 port);
    }

    char report[512], sport[16];
    snprintf(report, sizeof report, "%s/scenario-%s-%d.json",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name, (int)getpid());
    snprintf(sport, sizeof sport, "%d", sim_port);
    struct cgt_proc sim;
    const char *sargv[] = {cgt_bin("callgate-sim"),
                           "--scenario",
                           scenario_path,
                           "--public-url",
                           PUBLIC_URL,
                           "--gate",
                           gate_urls,
                           "--port",
                           sport,
                           "--report",
                           report,
                           NULL};
    cgt_spawn(&sim, sargv, NULL);

    if (plan.redis_restart_at_s > 0) {
        /* The scenario starts once the gates answer (about a second);
         * then comes the planned moment. */
        usleep((useconds_t)(plan.redis_restart_at_s * 1e6) + 1500000);
        cg_redis_server_kill(&rs, SIGKILL);
        usleep(500000);
        char err[256];
        if (cg_redis_server_restart(&rs, err, sizeof err) != 0)
            fail_msg("cannot restart redis: %s", err);
    }

    int rc = cgt_wait_exit(&sim, 170000);
    char *out = cgt_proc_output(&sim);
    printf("%s\n", out);
    free(out);
    FILE *f = fopen(report, "r");
    if (f) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(f);
        unlink(report);
    }
    if (rc == -1) {
        cgt_stop(&sim, SIGKILL, 1000);
        fail_msg("the simulator did not finish in time");
    }

    /* Every instance survived the run and stops cleanly. */
    for (int i = 0; i < plan.instances; i++) {
        int alive = cgt_wait_exit(&gates[i], 0) == -1;
        int code = alive ? cgt_stop(&gates[i], SIGTERM, 10000) : -1;
        if (!alive || code != 0) {
            char *log = cgt_proc_output(&gates[i]);
            printf("--- callgate %d log (tail) ---\n%s\n", i + 1,
                   strlen(log) > 20000 ? log + strlen(log) - 20000 : log);
            free(log);
        }
        assert_true(alive);
        assert_int_equal(code, 0);
    }
    cg_redis_server_stop(&rs);
    json_decref(sc);
    if (rc != 0)
        fail_msg("scenario %s failed its invariants (simulator exit %d)", name, rc);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: scenario_runner SCENARIO.json\n");
        return 2;
    }
    scenario_path = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_scenario)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
