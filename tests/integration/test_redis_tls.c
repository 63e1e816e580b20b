/*
 * callgate serve against Redis over TLS (rediss://) with a PKI made at test
 * time: with the right CA it serves /health 200 and keeps serving across a
 * Redis restart; with the wrong CA, or a server name the certificate does
 * not carry, it never connects (/health stays 503) and says why in its log.
 */
#include "redisx.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
    char *pki;
    struct cgt_redis_node node;
    struct cgt_proc cg;
    char health[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->pki = cgt_tmpdir();
    cgt_tls_pki(f->pki);
    cgt_redis_node_start(&f->node, f->pki, 0, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->cg.pid > 0)
        cgt_stop(&f->cg, SIGKILL, 1000);
    cgt_redis_node_stop(&f->node);
    cg_remove_tree(f->pki);
    free(f->pki);
    free(f);
    return 0;
}

static void start_callgate(struct fixture *f, const char *ca_file, const char *server_name)
{
    int port = cg_free_port();
    snprintf(f->health, sizeof f->health, "http://127.0.0.1:%d/health", port);
    char port_s[32], redis[96], ca[700], name[160];
    snprintf(port_s, sizeof port_s, "PORT=%d", port);
    snprintf(redis, sizeof redis, "REDIS_URL=rediss://127.0.0.1:%d", f->node.port);
    snprintf(ca, sizeof ca, "REDIS_TLS_CA_FILE=%s/%s", f->pki, ca_file);
    snprintf(name, sizeof name, "REDIS_TLS_SERVER_NAME=%s", server_name ? server_name : "");
    const char *env[] = {port_s,
                         redis,
                         ca,
                         name,
                         "BIND_ADDRESS=127.0.0.1",
                         "LOG_LEVEL=debug",
                         "REDIS_RECONNECT_MIN_MS=20",
                         "REDIS_RECONNECT_MAX_MS=200",
                         "REDIS_COMMAND_TIMEOUT_MS=500",
                         NULL};
    const char *const *lists[] = {env, NULL};
    cgt_spawn_callgate(&f->cg, lists);
}

/* The refusal is waited for in the log (a slow start, under valgrind, may
 * not have tried Redis yet), then /health must still not be 200. */
static void expect_never_healthy(struct fixture *f, const char *why)
{
    if (cgt_wait_output(&f->cg, why, 20000) != 0) {
        char *out = cgt_proc_output(&f->cg);
        fail_msg("expected \"%s\" in callgate's log:\n%s", why, out);
    }
    assert_int_not_equal(cgt_wait_status(f->health, 200, 1500), 0);
    struct cgt_resp r;
    cgt_http("GET", f->health, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 503);
    cgt_resp_free(&r);
}

static void test_right_ca_serves_health(void **state)
{
    struct fixture *f = *state;
    start_callgate(f, "ca.pem", NULL);
    if (cgt_wait_status(f->health, 200, 15000) != 0) {
        cgt_dump_log_tail(&f->cg, "callgate", 4000);
        fail_msg("callgate over rediss:// did not become healthy");
    }
    /* A Redis restart underneath: degraded, then healthy again over TLS. */
    int port = f->node.port;
    cgt_redis_node_stop(&f->node);
    assert_int_equal(cgt_wait_status(f->health, 503, 5000), 0);
    /* Same port, so the configured REDIS_URL still points at it. */
    struct cgt_redis_node again;
    cgt_redis_node_start_on(&again, f->pki, 0, port, NULL);
    f->node = again;
    if (cgt_wait_status(f->health, 200, 10000) != 0) {
        cgt_dump_log_tail(&f->cg, "callgate", 4000);
        fail_msg("callgate did not reconnect over TLS after a restart");
    }
}

static void test_wrong_ca_never_connects(void **state)
{
    struct fixture *f = *state;
    start_callgate(f, "other-ca.pem", NULL);
    expect_never_healthy(f, "certificate verification failed");
    assert_int_equal(cgt_wait_output(&f->cg, "fix: REDIS_TLS_CA_FILE must name the CA", 0), 0);
}

static void test_wrong_server_name_never_connects(void **state)
{
    struct fixture *f = *state;
    start_callgate(f, "ca.pem", "redis.example.com");
    expect_never_healthy(f, "certificate verification failed");
    assert_int_equal(cgt_wait_output(&f->cg, "set REDIS_TLS_SERVER_NAME", 0), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_right_ca_serves_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_ca_never_connects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_server_name_never_connects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
