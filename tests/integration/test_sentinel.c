/*
 * The Redis connection through Redis Sentinel, against a master, a replica
 * and one sentinel started by the test: the master is found by name, writes
 * keep flowing across SENTINEL FAILOVER and go to the new master within
 * seconds, an unknown master name never connects, and a sentinel with a
 * password is asked with AUTH.
 */
#include "redisx.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "net/redis.h"

struct fx {
    struct cgt_redis_node master, replica, sentinel;
    struct event_base *base;
    struct cg_redis *r;
    FILE *log;
    int ready;

    /* traffic */
    struct event *tick;
    long long sent, ok, failed;
    int last_ok_after_failover;
    int failover_started;
    char last_err[256];
};

static void start_nodes(struct fx *f, const char *sentinel_password, int wait_replica)
{
    cgt_sentinel_trio(&f->master, &f->replica, &f->sentinel, "cgmaster", sentinel_password,
                      wait_replica);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    signal(SIGPIPE, SIG_IGN);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->log = tmpfile();
    assert_non_null(f->log);
    cg_log_set_stream(f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    const char *show = getenv("CGT_SHOW_LOG");
    if (show && strcmp(show, "1") == 0) {
        char *log = cgt_stream_text(f->log);
        fputs(log, stderr);
        free(log);
    }
    cg_redis_free(f->r);
    if (f->tick)
        event_free(f->tick);
    cgt_redis_node_stop(&f->sentinel);
    cgt_redis_node_stop(&f->replica);
    cgt_redis_node_stop(&f->master);
    event_base_free(f->base);
    cg_log_set_stream(NULL);
    fclose(f->log);
    free(f);
    return 0;
}

static void on_state(enum cg_redis_state s, void *arg)
{
    struct fx *f = arg;
    if (s == CG_REDIS_READY)
        f->ready = 1;
}

static void open_sentinel(struct fx *f, const char *master_name, const char *password)
{
    char list[64];
    snprintf(list, sizeof list, "127.0.0.1:%d", f->sentinel.port);
    struct cg_redis_opts o = {
        /* The host and port are replaced by the master the sentinel names. */
        .url = "redis://127.0.0.1:1",   .connect_timeout_ms = 1000,    .command_timeout_ms = 1000,
        .backoff_min_ms = 50,           .backoff_max_ms = 300,         .sentinels = list,
        .sentinel_master = master_name, .sentinel_password = password,
    };
    char err[256] = "";
    f->r = cg_redis_new(f->base, &o, err, sizeof err);
    if (f->r == NULL)
        fail_msg("cg_redis_new: %s", err);
    cg_redis_set_state_cb(f->r, on_state, f);
}

static void on_incr(const redisReply *reply, const char *err, void *arg)
{
    struct fx *f = arg;
    (void)reply;
    if (err) {
        f->failed++;
        snprintf(f->last_err, sizeof f->last_err, "%s", err);
    } else {
        f->ok++;
        if (f->failover_started)
            f->last_ok_after_failover = 1;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fx *f = arg;
    f->sent++;
    assert_int_equal(cg_redis_command(f->r, on_incr, f, "INCR %s", "sentinel:writes"), 0);
}

static void test_failover_during_traffic(void **state)
{
    struct fx *f = *state;
    start_nodes(f, NULL, 1);
    open_sentinel(f, "cgmaster", NULL);
    if (cgt_run_until(f->base, &f->ready, 5000) != 0) {
        char *log = cgt_stream_text(f->log);
        fail_msg("never READY through the sentinel; log:\n%s", log);
    }

    /* A write every 10 ms. */
    f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f);
    assert_non_null(f->tick);
    struct timeval tv = {0, 10000};
    assert_int_equal(event_add(f->tick, &tv), 0);
    cgt_run_for(f->base, 300);
    assert_true(f->ok > 0);
    assert_int_equal(f->failed, 0);

    cgt_sentinel_failover(&f->sentinel, "cgmaster");
    char *out;
    uint64_t t0 = cgt_now_ms();
    /* The old replica becomes the master. */
    if (cgt_node_wait(&f->replica, "ROLE", "master", 15000) != 0)
        fail_msg("the replica was not promoted");
    /* Writes go to the new master within seconds: the connection was
     * dropped by the demotion (or a write hit -READONLY), the sentinel was
     * asked again, and writes succeed there. */
    char want[96];
    snprintf(want, sizeof want, "\"port\":%d,\"previous_host\"", f->replica.port);
    int switched = 0;
    long long ok_at_switch = 0;
    while (cgt_now_ms() - t0 < 15000) {
        cgt_run_for(f->base, 50);
        if (!switched) {
            char *log = cgt_stream_text(f->log);
            switched = strstr(log, want) != NULL;
            free(log);
            ok_at_switch = f->ok;
        } else if (f->ok >= ok_at_switch + 20) {
            break;
        }
    }
    event_del(f->tick);
    uint64_t took = cgt_now_ms() - t0;
    if (!switched || f->ok < ok_at_switch + 20) {
        char *log = cgt_stream_text(f->log);
        fail_msg("writes did not resume on the new master (ok=%lld failed=%lld last=%s); "
                 "log:\n%s",
                 f->ok, f->failed, f->last_err, log);
    }
    print_message("failover: writes on the new master after %llu ms; %lld writes failed "
                  "meanwhile (callers fall back)\n",
                  (unsigned long long)took, f->failed);

    /* Followed through the +switch-master subscription, not only when the
     * old master dropped its clients. */
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "redis sentinel announced a new master"));
    free(log);

    /* A write now lands on the new master. */
    uint64_t t2 = cgt_now_ms();
    while (cg_redis_pending(f->r) > 0 && cgt_now_ms() - t2 < 2000)
        cgt_run_for(f->base, 20);
    f->ok = 0;
    assert_int_equal(cg_redis_command(f->r, on_incr, f, "SET %s %s", "sentinel:marker", "new"), 0);
    uint64_t t1 = cgt_now_ms();
    while (f->ok == 0 && cgt_now_ms() - t1 < 2000)
        cgt_run_for(f->base, 20);
    assert_int_equal(f->ok, 1);
    out = cgt_node_cmd(&f->replica, "GET sentinel:marker");
    assert_string_equal(out, "new");
    free(out);
}

static void test_unknown_master_never_connects(void **state)
{
    struct fx *f = *state;
    start_nodes(f, NULL, 0);
    open_sentinel(f, "nosuchmaster", NULL);
    cgt_run_for(f->base, 1500);
    assert_int_equal(f->ready, 0);
    char *log = cgt_stream_text(f->log);
    if (strstr(log, "master name unknown to this sentinel") == NULL)
        fail_msg("expected the sentinel's answer in the log:\n%s", log);
    free(log);
}

static void test_sentinel_password(void **state)
{
    struct fx *f = *state;
    start_nodes(f, "s3ntinel-pw", 0);
    open_sentinel(f, "cgmaster", "wrong-pw");
    cgt_run_for(f->base, 1000);
    assert_int_equal(f->ready, 0);
    char *log = cgt_stream_text(f->log);
    if (strstr(log, "AUTH") == NULL)
        fail_msg("expected an AUTH failure in the log:\n%s", log);
    free(log);
    cg_redis_free(f->r);
    f->r = NULL;
    open_sentinel(f, "cgmaster", "s3ntinel-pw");
    if (cgt_run_until(f->base, &f->ready, 5000) != 0) {
        log = cgt_stream_text(f->log);
        fail_msg("never READY with the sentinel password; log:\n%s", log);
    }
}

static void test_frozen_sentinel_noticed(void **state)
{
    /* A sentinel that stops answering without closing the connection: the
     * +switch-master subscription is PINGed, found dead and made anew. */
    struct fx *f = *state;
    start_nodes(f, NULL, 0);
    open_sentinel(f, "cgmaster", NULL);
    assert_int_equal(cgt_run_until(f->base, &f->ready, 5000), 0);
    cgt_run_for(f->base, 200);
    kill(f->sentinel.proc.pid, SIGSTOP);
    uint64_t t0 = cgt_now_ms();
    int noticed = 0;
    while (!noticed && cgt_now_ms() - t0 < 10000) {
        cgt_run_for(f->base, 100);
        char *log = cgt_stream_text(f->log);
        noticed = strstr(log, "no answer to PING") != NULL;
        free(log);
    }
    kill(f->sentinel.proc.pid, SIGCONT);
    if (!noticed) {
        char *log = cgt_stream_text(f->log);
        fail_msg("a frozen sentinel went unnoticed; log:\n%s", log);
    }
    /* The data connection is not affected. */
    assert_int_equal(cg_redis_state(f->r), CG_REDIS_READY);
}

static int wait_tls(const struct cgt_redis_node *n, const char *pki, const char *args,
                    const char *want, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    while (cgt_now_ms() < deadline) {
        char *out = cgt_tls_cli(n, pki, args);
        int found = strstr(out, want) != NULL;
        free(out);
        if (found)
            return 0;
        cgt_sleep_ms(100);
    }
    return -1;
}

static void test_tls_sentinel(void **state)
{
    /* TLS everywhere: the sentinel and the data nodes speak TLS only, and
     * the same CA verifies both. */
    struct fx *f = *state;
    char *pki = cgt_tmpdir();
    cgt_tls_pki(pki);
    const char *tls_rep[] = {"--tls-replication", "yes", NULL};
    cgt_redis_node_start(&f->master, pki, 0, tls_rep);
    char mport[16];
    snprintf(mport, sizeof mport, "%d", f->master.port);
    const char *rep[] = {"--tls-replication", "yes", "--replicaof", "127.0.0.1", mport, NULL};
    cgt_redis_node_start(&f->replica, pki, 0, rep);
    if (wait_tls(&f->replica, pki, "INFO replication", "master_link_status:up", 10000) != 0)
        fail_msg("the TLS replica did not sync");
    cgt_sentinel_start_tls(&f->sentinel, "cgmaster", f->master.port, pki);
    if (wait_tls(&f->sentinel, pki, "SENTINEL REPLICAS cgmaster", "127.0.0.1", 15000) != 0)
        fail_msg("the TLS sentinel did not discover the replica");

    char list[64], ca[600];
    snprintf(list, sizeof list, "127.0.0.1:%d", f->sentinel.port);
    snprintf(ca, sizeof ca, "%s/ca.pem", pki);
    struct cg_redis_opts o = {
        .url = "rediss://127.0.0.1:1",
        .connect_timeout_ms = 1000,
        .command_timeout_ms = 1000,
        .backoff_min_ms = 50,
        .backoff_max_ms = 300,
        .tls_ca_file = ca,
        .sentinels = list,
        .sentinel_master = "cgmaster",
    };
    char err[256] = "";
    f->r = cg_redis_new(f->base, &o, err, sizeof err);
    if (f->r == NULL)
        fail_msg("cg_redis_new: %s", err);
    cg_redis_set_state_cb(f->r, on_state, f);
    if (cgt_run_until(f->base, &f->ready, 5000) != 0) {
        char *log = cgt_stream_text(f->log);
        fail_msg("never READY through a TLS sentinel; log:\n%s", log);
    }
    f->ok = 0;
    assert_int_equal(cg_redis_command(f->r, on_incr, f, "SET %s %s", "tls:sentinel", "yes"), 0);
    uint64_t t0 = cgt_now_ms();
    while (f->ok == 0 && f->failed == 0 && cgt_now_ms() - t0 < 2000)
        cgt_run_for(f->base, 20);
    assert_int_equal(f->ok, 1);
    char *out = cgt_tls_cli(&f->master, pki, "GET tls:sentinel");
    assert_non_null(strstr(out, "yes"));
    free(out);
    /* The subscription to +switch-master is up over TLS as well. */
    char *log = cgt_stream_text(f->log);
    assert_null(strstr(log, "subscription lost"));
    free(log);
    cg_redis_free(f->r);
    f->r = NULL;
    cgt_redis_node_stop(&f->sentinel);
    cgt_redis_node_stop(&f->replica);
    cgt_redis_node_stop(&f->master);
    cg_remove_tree(pki);
    free(pki);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_during_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_master_never_connects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinel_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_sentinel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_sentinel_noticed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
