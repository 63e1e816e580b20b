/* The Redis connection over TLS against a real redis-server with a PKI made
 * at test time: the right CA connects (by address and by name), a wrong CA,
 * a wrong server name and a missing client certificate never reach READY,
 * a required client certificate is presented, REDIS_TLS_INSECURE connects
 * with a warning, a killed TLS server is a disconnect like any other, and
 * bad TLS options are refused by cg_redis_new(). */
#include "redisx.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "net/redis.h"

static char *pki;

struct fx {
    struct cgt_redis_node node;
    struct event_base *base;
    struct cg_redis *r;
    FILE *log;
    int ready;
    int disconnected;
    int done;
    char reply[256];
    const char *err;
};

static char *path(const char *file)
{
    static char buf[4][600];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", pki, file);
    return p;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    pki = cgt_tmpdir();
    cgt_tls_pki(pki);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cg_remove_tree(pki);
    free(pki);
    return 0;
}

static struct fx *fx_new(int client_auth)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cgt_redis_node_start(&f->node, pki, client_auth, NULL);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->log = tmpfile();
    assert_non_null(f->log);
    cg_log_set_stream(f->log);
    return f;
}

static int setup(void **state)
{
    *state = fx_new(0);
    return 0;
}

static int setup_client_auth(void **state)
{
    *state = fx_new(1);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cg_redis_free(f->r);
    cgt_redis_node_stop(&f->node);
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
    else if (s == CG_REDIS_DISCONNECTED)
        f->disconnected = 1;
}

static struct cg_redis *open_tls(struct fx *f, const char *host, const char *ca, const char *cert,
                                 const char *key, const char *server_name, int insecure)
{
    char url[128];
    snprintf(url, sizeof url, "rediss://%s:%d", host, f->node.port);
    struct cg_redis_opts o = {
        .url = url,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = 1000,
        .backoff_min_ms = 50,
        .backoff_max_ms = 200,
        .tls_ca_file = ca,
        .tls_cert_file = cert,
        .tls_key_file = key,
        .tls_server_name = server_name,
        .tls_insecure = insecure,
    };
    char err[256] = "";
    f->r = cg_redis_new(f->base, &o, err, sizeof err);
    if (f->r == NULL)
        fail_msg("cg_redis_new: %s", err);
    cg_redis_set_state_cb(f->r, on_state, f);
    return f->r;
}

static void on_reply(const redisReply *reply, const char *err, void *arg)
{
    struct fx *f = arg;
    f->err = err;
    snprintf(f->reply, sizeof f->reply, "%s", reply && reply->str ? reply->str : "");
    f->done = 1;
}

/* READY within 3 s, then a SET and GET round trip. */
static void expect_ready(struct fx *f)
{
    if (cgt_run_until(f->base, &f->ready, 3000) != 0) {
        char *log = cgt_stream_text(f->log);
        fail_msg("never READY over TLS; log:\n%s", log);
    }
    f->done = 0;
    assert_int_equal(cg_redis_command(f->r, on_reply, f, "SET %s %s", "tls:k", "v1"), 0);
    assert_int_equal(cgt_run_until(f->base, &f->done, 2000), 0);
    assert_null(f->err);
    f->done = 0;
    assert_int_equal(cg_redis_command(f->r, on_reply, f, "GET %s", "tls:k"), 0);
    assert_int_equal(cgt_run_until(f->base, &f->done, 2000), 0);
    assert_null(f->err);
    assert_string_equal(f->reply, "v1");
}

/* Never READY for 1.5 s (several attempts), and the log says why. */
static void expect_logged(struct fx *f, const char *text)
{
    char *log = cgt_stream_text(f->log);
    if (strstr(log, text) == NULL)
        fail_msg("expected \"%s\" in the log:\n%s", text, log);
    free(log);
}

static void expect_refused(struct fx *f, const char *why)
{
    cgt_run_for(f->base, 1500);
    assert_int_equal(f->ready, 0);
    assert_int_equal(cg_redis_state(f->r) == CG_REDIS_READY, 0);
    expect_logged(f, why);
}

static void test_right_ca(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("ca.pem"), NULL, NULL, NULL, 0);
    expect_ready(f);
    char *log = cgt_stream_text(f->log);
    assert_null(strstr(log, "verification is off"));
    free(log);
}

static void test_by_name(void **state)
{
    /* "localhost" is resolved by evdns (hosts file); it may yield ::1 first,
     * where nothing listens, and the next address must be tried. */
    struct fx *f = *state;
    open_tls(f, "localhost", path("ca.pem"), NULL, NULL, NULL, 0);
    expect_ready(f);
}

static void test_server_name_matches(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("ca.pem"), NULL, NULL, "localhost", 0);
    expect_ready(f);
}

static void test_wrong_ca(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("other-ca.pem"), NULL, NULL, NULL, 0);
    expect_refused(f, "certificate verification failed");
    expect_logged(f, "fix: REDIS_TLS_CA_FILE must name the CA");
}

static void test_wrong_server_name(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("ca.pem"), NULL, NULL, "redis.example.com", 0);
    expect_refused(f, "certificate verification failed");
    expect_logged(f, "set REDIS_TLS_SERVER_NAME");
}

static void test_system_store_refuses_test_ca(void **state)
{
    /* Without REDIS_TLS_CA_FILE the system store is used, which does not
     * know the test CA. */
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", NULL, NULL, NULL, NULL, 0);
    expect_refused(f, "certificate verification failed");
}

static void test_client_cert_required(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("ca.pem"), NULL, NULL, NULL, 0);
    expect_refused(f, "redis connect failed");
}

static void test_client_cert_given(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("ca.pem"), path("client.pem"), path("client.key"), NULL, 0);
    expect_ready(f);
}

static void test_insecure_warns(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("other-ca.pem"), NULL, NULL, "wrong.example.com", 1);
    expect_ready(f);
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "verification is off"));
    free(log);
}

static void test_kill_is_a_disconnect(void **state)
{
    struct fx *f = *state;
    open_tls(f, "127.0.0.1", path("ca.pem"), NULL, NULL, NULL, 0);
    expect_ready(f);
    f->done = 0;
    f->err = NULL;
    kill(f->node.proc.pid, SIGKILL);
    assert_int_equal(cgt_run_until(f->base, &f->disconnected, 3000), 0);
    assert_int_equal(cg_redis_command(f->r, on_reply, f, "PING"), 0);
    assert_int_equal(cgt_run_until(f->base, &f->done, 2000), 0);
    assert_ptr_equal(f->err, cg_redis_err_disconnected);
}

static void test_bad_options(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct cg_redis_opts o = {.url = "rediss://127.0.0.1:1", .tls_ca_file = "/nonexistent/ca.pem"};
    assert_null(cg_redis_new(f->base, &o, err, sizeof err));
    assert_non_null(strstr(err, "CA file"));
    o.tls_ca_file = path("ca.pem");
    o.tls_cert_file = path("client.pem");
    assert_null(cg_redis_new(f->base, &o, err, sizeof err));
    assert_non_null(strstr(err, "key"));
    /* A key that is not the certificate's. */
    o.tls_key_file = path("server.key");
    assert_null(cg_redis_new(f->base, &o, err, sizeof err));
    assert_non_null(strstr(err, "client certificate"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_right_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_name_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_server_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_store_refuses_test_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_required, setup_client_auth, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_given, setup_client_auth, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_warns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_is_a_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
