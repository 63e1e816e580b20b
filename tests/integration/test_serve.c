/*
 * The callgate process end to end: command line, configuration errors,
 * /health against a real Redis that is killed and restarted underneath a
 * running callgate, HTTP error shapes, and graceful shutdown.
 */
#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo/proc.h"

struct fixture {
    struct cg_redis_server rs;
    struct cgt_proc cg;
    int port;
    char base[64];
};

static void start_callgate(struct fixture *f, const char *const *extra_env)
{
    f->port = cg_free_port();
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    char port[32], redis[96];
    snprintf(port, sizeof port, "PORT=%d", f->port);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->rs.url);
    const char *env[32] = {port,
                           redis,
                           "BIND_ADDRESS=127.0.0.1",
                           "LOG_LEVEL=debug",
                           "REDIS_RECONNECT_MIN_MS=20",
                           "REDIS_RECONNECT_MAX_MS=200",
                           "REDIS_COMMAND_TIMEOUT_MS=500"};
    size_t n = 7;
    for (; extra_env && *extra_env && n < 31; extra_env++)
        env[n++] = *extra_env;
    env[n] = NULL;
    const char *argv[] = {cgt_bin("callgate"), "serve", NULL};
    cgt_spawn(&f->cg, argv, env);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    if (cgt_wait_status(url, 200, 15000) != 0) {
        char *out = cgt_proc_output(&f->cg);
        fail_msg("callgate did not become healthy; output:\n%s", out);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->cg.pid > 0)
        cgt_stop(&f->cg, SIGKILL, 1000);
    cg_redis_server_stop(&f->rs);
    free(f);
    return 0;
}

static json_t *get_json(const char *url, long *status)
{
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    *status = r.status;
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    cgt_resp_free(&r);
    return j;
}

static void test_version_and_help(void **state)
{
    (void)state;
    struct cgt_proc p;
    const char *argv[] = {cgt_bin("callgate"), "--version", NULL};
    cgt_spawn(&p, argv, NULL);
    assert_int_equal(cgt_wait_exit(&p, 5000), 0);
    char *out = cgt_proc_output(&p);
    assert_non_null(strstr(out, "callgate "));
    free(out);

    const char *argv2[] = {cgt_bin("callgate"), "--help", NULL};
    cgt_spawn(&p, argv2, NULL);
    assert_int_equal(cgt_wait_exit(&p, 5000), 0);
    out = cgt_proc_output(&p);
    assert_non_null(strstr(out, "MAX_CONCURRENCY"));
    assert_non_null(strstr(out, "REDIS_URL"));
    free(out);

    const char *argv3[] = {cgt_bin("callgate"), "no-such-command", NULL};
    cgt_spawn(&p, argv3, NULL);
    assert_int_equal(cgt_wait_exit(&p, 5000), 2);
}

static void test_config_errors_all_reported(void **state)
{
    (void)state;
    struct cgt_proc p;
    const char *argv[] = {cgt_bin("callgate"), "check-config", NULL};
    const char *env[] = {"PORT=0", "MAX_CONCURRENCY=lots", "REDIS_URL=rediss://h:0",
                         "LOG_LEVEL=chatty", NULL};
    cgt_spawn(&p, argv, env);
    assert_int_equal(cgt_wait_exit(&p, 5000), 2);
    char *out = cgt_proc_output(&p);
    assert_non_null(strstr(out, "PORT"));
    assert_non_null(strstr(out, "MAX_CONCURRENCY"));
    assert_non_null(strstr(out, "REDIS_URL"));
    assert_non_null(strstr(out, "LOG_LEVEL"));
    free(out);
}

static void test_check_config_masks_secrets(void **state)
{
    (void)state;
    struct cgt_proc p;
    const char *argv[] = {cgt_bin("callgate"), "check-config", NULL};
    const char *env[] = {"TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef",
                         "TWILIO_AUTH_TOKEN=supersecrettoken",
                         "VAPI_API_KEY=vapikey-12345",
                         "VAPI_PHONE_NUMBER_ID=pn-1",
                         "VAPI_ASSISTANT_ID=asst-1",
                         "VAPI_WEBHOOK_SECRET=webhooksecret-abc",
                         "PUBLIC_URL=https://gate.example.com",
                         "ADMIN_TOKEN=admintoken-xyz",
                         NULL};
    cgt_spawn(&p, argv, env);
    assert_int_equal(cgt_wait_exit(&p, 5000), 0);
    char *out = cgt_proc_output(&p);
    assert_non_null(strstr(out, "TWILIO_AUTH_TOKEN"));
    assert_non_null(strstr(out, "services: gate\n"));
    assert_null(strstr(out, "supersecrettoken"));
    assert_null(strstr(out, "vapikey-12345"));
    assert_null(strstr(out, "admintoken-xyz"));
    assert_null(strstr(out, "webhooksecret-abc"));
    assert_null(strstr(out, "warning"));
    free(out);
}

/* Twilio refuses a call update whose Twiml is over 4,000 characters
 * (error 32018), and the overflow treatment reaches a caller whom Vapi
 * refuses for good by exactly such an update: an OVERFLOW_MESSAGE whose
 * TwiML would not fit stops check-config and serve, naming it; one that
 * fits (escapes counted) passes. */
static void test_overflow_twiml_over_limit_refused(void **state)
{
    (void)state;
    static char fits[3920], over[3990], escaped[1000];
    memset(fits, 'a', sizeof fits - 1);
    memset(over, 'a', sizeof over - 1);
    memset(escaped, '&', sizeof escaped - 1); /* 999 bytes, 4995 characters as &amp; */
    const char *msgs[] = {fits, over, escaped};
    for (size_t m = 0; m < 3; m++) {
        char env_msg[4200];
        snprintf(env_msg, sizeof env_msg, "OVERFLOW_MESSAGE=%s", msgs[m]);
        const char *env[] = {"TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef",
                             "TWILIO_AUTH_TOKEN=supersecrettoken",
                             "VAPI_API_KEY=vapikey-12345",
                             "VAPI_PHONE_NUMBER_ID=pn-1",
                             "VAPI_ASSISTANT_ID=asst-1",
                             "VAPI_WEBHOOK_SECRET=webhooksecret-abc",
                             "PUBLIC_URL=https://gate.example.com",
                             "REDIS_URL=redis://127.0.0.1:1",
                             env_msg,
                             NULL};
        const char *cmds[] = {"check-config", "serve"};
        for (size_t i = 0; i < (m == 0 ? 1u : 2u); i++) {
            struct cgt_proc p;
            const char *argv[] = {cgt_bin("callgate"), cmds[i], NULL};
            cgt_spawn(&p, argv, env);
            int rc = cgt_wait_exit(&p, 5000);
            char *out = cgt_proc_output(&p);
            if (m == 0) {
                if (rc != 0)
                    fail_msg("a fitting message refused (%d): %s", rc, out);
            } else {
                if (rc != 2 || strstr(out, "OVERFLOW_MESSAGE: the overflow TwiML") == NULL ||
                    strstr(out, "error 32018") == NULL)
                    fail_msg("message %zu with %s: exit %d: %s", m, cmds[i], rc, out);
            }
            free(out);
        }
    }
}

/* The callback options: every mistake is named with its fix (a bad
 * CALLBACK_HOURS, an offer threshold that would offer callers about to be
 * connected, numbers out of range), and a window set while callbacks are
 * off is a warning, not an error. */
static void test_callback_options_checked(void **state)
{
    (void)state;
    const char *base[] = {"TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef",
                          "TWILIO_AUTH_TOKEN=supersecrettoken",
                          "VAPI_API_KEY=vapikey-12345",
                          "VAPI_PHONE_NUMBER_ID=pn-1",
                          "VAPI_ASSISTANT_ID=asst-1",
                          "VAPI_WEBHOOK_SECRET=webhooksecret-abc",
                          "PUBLIC_URL=https://gate.example.com"};
    const char *bad[] = {base[0],
                         base[1],
                         base[2],
                         base[3],
                         base[4],
                         base[5],
                         base[6],
                         "CALLBACK_OFFER_SECONDS=5",
                         "CALLBACK_HOURS=Mon-Fri 9:00-18:00 Mars/Olympus",
                         "CALLBACK_ATTEMPTS=0",
                         "CALLBACK_RING_SECONDS=500",
                         NULL};
    struct cgt_proc p;
    const char *argv[] = {cgt_bin("callgate"), "check-config", NULL};
    cgt_spawn(&p, argv, bad);
    assert_int_equal(cgt_wait_exit(&p, 5000), 2);
    char *out = cgt_proc_output(&p);
    if (strstr(out, "CALLBACK_ATTEMPTS") == NULL || strstr(out, "CALLBACK_RING_SECONDS") == NULL)
        fail_msg("not every callback problem named: %s", out);
    free(out);
    /* The window's own mistakes, once the numbers are right. */
    const char *hours[] = {base[0],
                           base[1],
                           base[2],
                           base[3],
                           base[4],
                           base[5],
                           base[6],
                           "CALLBACK_OFFER_SECONDS=60",
                           "CALLBACK_HOURS=Mon-Fri 9:00-18:00 Mars/Olympus",
                           NULL};
    cgt_spawn(&p, argv, hours);
    assert_int_equal(cgt_wait_exit(&p, 5000), 2);
    out = cgt_proc_output(&p);
    if (strstr(out, "CALLBACK_HOURS") == NULL)
        fail_msg("CALLBACK_HOURS not named: %s", out);
    free(out);
    /* The gate's own checks (the option table's pass first). */
    const char *low[] = {base[0],
                         base[1],
                         base[2],
                         base[3],
                         base[4],
                         base[5],
                         base[6],
                         "CALLBACK_OFFER_SECONDS=5",
                         "CALLBACK_HOURS=Mon-Fry 09:00-18:00 UTC",
                         NULL};
    cgt_spawn(&p, argv, low);
    assert_int_equal(cgt_wait_exit(&p, 5000), 2);
    out = cgt_proc_output(&p);
    if (strstr(out, "CALLBACK_OFFER_SECONDS: 5 s") == NULL || strstr(out, "Mon-Fri") == NULL)
        fail_msg("not every callback problem named: %s", out);
    free(out);
    const char *good[] = {base[0],
                          base[1],
                          base[2],
                          base[3],
                          base[4],
                          base[5],
                          base[6],
                          "CALLBACK_OFFER_SECONDS=60",
                          "CALLBACK_HOURS=Mon-Fri 09:00-18:00 UTC",
                          "CALLBACK_MACHINE_MESSAGE=Sorry we missed you.",
                          NULL};
    cgt_spawn(&p, argv, good);
    assert_int_equal(cgt_wait_exit(&p, 5000), 0);
    out = cgt_proc_output(&p);
    if (strstr(out, "CALLBACK_HOURS=Mon-Fri 09:00-18:00 UTC") == NULL ||
        strstr(out, "warning") != NULL)
        fail_msg("a good callback configuration: %s", out);
    free(out);
    const char *off[] = {base[0], base[1], base[2], base[3],
                         base[4], base[5], base[6], "CALLBACK_HOURS=daily 09:00-18:00 UTC",
                         NULL};
    cgt_spawn(&p, argv, off);
    assert_int_equal(cgt_wait_exit(&p, 5000), 0);
    out = cgt_proc_output(&p);
    if (strstr(out, "warning: CALLBACK_HOURS is set but callbacks are off") == NULL)
        fail_msg("no warning for a window without callbacks: %s", out);
    free(out);
}

/* The configuration of Vapi's queue guide, as a migrating user has it: no
 * webhook secret. Neither check-config nor serve may run a gate that
 * cannot hear Vapi's end-of-call messages (every /incoming would then
 * have no gate behind it): both exit 2 naming the option and where to
 * find it, with the misspelt option pointed out too. */
static void test_half_configured_gate_refused(void **state)
{
    (void)state;
    const char *env[] = {"VAPI_API_KEY=vapikey-12345",
                         "VAPI_PHONE_NUMBER_ID=pn-1",
                         "VAPI_ASSISTANT_ID=asst-1",
                         "TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef",
                         "TWILIO_AUTH_TOKEN=supersecrettoken",
                         "TWILIO_QUEUE_SID=QU0123456789abcdef0123456789abcdef",
                         "REDIS_URL=redis://127.0.0.1:1",
                         "VAPI_WEBHOOK_SECRT=typo",
                         NULL};
    const char *cmds[] = {"check-config", "serve"};
    for (size_t i = 0; i < 2; i++) {
        struct cgt_proc p;
        const char *argv[] = {cgt_bin("callgate"), cmds[i], NULL};
        cgt_spawn(&p, argv, env);
        assert_int_equal(cgt_wait_exit(&p, 5000), 2);
        char *out = cgt_proc_output(&p);
        assert_non_null(strstr(out, "invalid configuration (1 problem)"));
        assert_non_null(strstr(out, "VAPI_WEBHOOK_SECRET: required by the admission gate"));
        assert_non_null(strstr(out, "unknown option VAPI_WEBHOOK_SECRT, ignored (did you mean "
                                    "VAPI_WEBHOOK_SECRET?)"));
        assert_null(strstr(out, "supersecrettoken"));
        assert_null(strstr(out, "configuration OK"));
        free(out);
    }
}

static void test_health_fields(void **state)
{
    struct fixture *f = *state;
    start_callgate(f, NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    long status;
    json_t *j = get_json(url, &status);
    assert_int_equal(status, 200);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "healthy");
    assert_int_equal(json_integer_value(json_object_get(j, "activeCalls")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "callsInQueue")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "maxConcurrency")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "availableCapacity")), 5);
    assert_string_equal(json_string_value(json_object_get(j, "redis")), "connected");
    /* Neither service is configured: none runs, and /health says so. */
    assert_true(json_is_array(json_object_get(j, "services")));
    assert_int_equal(json_array_size(json_object_get(j, "services")), 0);
    json_decref(j);

    /* The runtime limit in Redis wins over MAX_CONCURRENCY. */
    free(cgt_redis_cmd(&f->rs, "SET cg:{default}:limit 7"));
    j = get_json(url, &status);
    assert_int_equal(json_integer_value(json_object_get(j, "maxConcurrency")), 7);
    json_decref(j);
    assert_int_equal(cgt_stop(&f->cg, SIGTERM, 10000), 0);
}

static void test_redis_restart(void **state)
{
    struct fixture *f = *state;
    start_callgate(f, NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);

    cg_redis_server_kill(&f->rs, SIGKILL);
    assert_int_equal(cgt_wait_status(url, 503, 10000), 0);
    long status;
    json_t *j = get_json(url, &status);
    assert_int_equal(status, 503);
    assert_string_equal(json_string_value(json_object_get(j, "redis")), "disconnected");
    assert_true(json_is_null(json_object_get(j, "activeCalls")));
    json_decref(j);

    char err[256];
    assert_int_equal(cg_redis_server_restart(&f->rs, err, sizeof err), 0);
    assert_int_equal(cgt_wait_status(url, 200, 15000), 0);
    /* Same process all along: it never exited because Redis went away. */
    assert_int_equal(cgt_wait_exit(&f->cg, 0), -1);
    assert_int_equal(cgt_stop(&f->cg, SIGTERM, 10000), 0);
}

static void test_http_errors(void **state)
{
    struct fixture *f = *state;
    start_callgate(f, (const char *const[]){"HTTP_MAX_BODY_BYTES=2048", NULL});
    char url[128];
    struct cgt_resp r;

    snprintf(url, sizeof url, "%s/no-such-path", f->base);
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "not_found");
    json_decref(j);
    cgt_resp_free(&r);

    snprintf(url, sizeof url, "%s/health", f->base);
    cgt_http("DELETE", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    char *allow = cgt_resp_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    free(allow);
    cgt_resp_free(&r);

    char *big = malloc(4096);
    memset(big, 'a', 4096);
    cgt_http("POST", url, (const char *const[]){"Content-Type: text/plain", NULL}, big, 4096, &r);
    assert_int_equal(r.status, 413);
    cgt_resp_free(&r);
    free(big);

    /* Still alive and healthy after all of that. */
    assert_int_equal(cgt_wait_status(url, 200, 2000), 0);
    assert_int_equal(cgt_stop(&f->cg, SIGTERM, 10000), 0);
}

static void test_serves_while_redis_down_at_start(void **state)
{
    struct fixture *f = *state;
    /* Redis gone before callgate starts: it must come up, report degraded
     * and recover by itself. */
    cg_redis_server_kill(&f->rs, SIGKILL);
    f->port = cg_free_port();
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    char port[32], redis[96], url[128];
    snprintf(port, sizeof port, "PORT=%d", f->port);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->rs.url);
    const char *env[] = {port,
                         redis,
                         "BIND_ADDRESS=127.0.0.1",
                         "REDIS_RECONNECT_MIN_MS=20",
                         "REDIS_RECONNECT_MAX_MS=200",
                         NULL};
    const char *argv[] = {cgt_bin("callgate"), "serve", NULL};
    cgt_spawn(&f->cg, argv, env);
    snprintf(url, sizeof url, "%s/health", f->base);
    assert_int_equal(cgt_wait_status(url, 503, 10000), 0);
    /* Alive and ready all the same: a Redis outage must not take every
     * instance out of a load balancer, nor get it restarted. */
    long status;
    snprintf(url, sizeof url, "%s/livez", f->base);
    json_t *j = get_json(url, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "alive");
    json_decref(j);
    snprintf(url, sizeof url, "%s/readyz", f->base);
    j = get_json(url, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ready");
    assert_string_equal(json_string_value(json_object_get(j, "redis")), "disconnected");
    json_decref(j);
    snprintf(url, sizeof url, "%s/health", f->base);
    char err[256];
    assert_int_equal(cg_redis_server_restart(&f->rs, err, sizeof err), 0);
    assert_int_equal(cgt_wait_status(url, 200, 15000), 0);
    assert_int_equal(cgt_stop(&f->cg, SIGINT, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_config_errors_all_reported),
        cmocka_unit_test(test_check_config_masks_secrets),
        cmocka_unit_test(test_half_configured_gate_refused),
        cmocka_unit_test(test_overflow_twiml_over_limit_refused),
        cmocka_unit_test(test_callback_options_checked),
        cmocka_unit_test_setup_teardown(test_health_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serves_while_redis_down_at_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
