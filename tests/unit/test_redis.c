/* The Redis connection against a real redis-server: handshake (AUTH, SELECT,
 * SCRIPT LOAD), replies and error replies, deferred failures, the NOSCRIPT
 * fallback, outages (kill, SIGSTOP, a listener that never accepts), backoff,
 * graceful close, free with commands pending, pipelining and re-entrancy.
 *
 * Timing assertions are loose upper bounds; ordering and exactly-once are
 * asserted strictly. */
#include "redisx.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "net/redis.h"

#define MAX_STATES 512

/* ---- fixture ---- */

struct fx {
    struct cg_redis_server rs;
    struct event_base *base;
    struct cg_redis *r;
    int server_stopped; /* SIGSTOPped: continue it before stopping it */
    FILE *log;

    int nstates;
    enum cg_redis_state states[MAX_STATES];
    uint64_t when[MAX_STATES];
    int seen_ready;        /* flags for cgt_run_until; tests reset them */
    int seen_disconnected; /* */
    int seen_closed;       /* */
    int in_state_cb;
    int ready_ping; /* issue a PING from the READY callback */
    int ready_replies;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cgt_redis_start(&f->rs);
    f->base = event_base_new();
    assert_non_null(f->base);
    /* The log goes to a file so tests can look at it (and stay quiet). */
    f->log = tmpfile();
    assert_non_null(f->log);
    cg_log_set_stream(f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cg_redis_free(f->r);
    /* CGT_SHOW_LOG=1 prints what the module logged during the test. */
    const char *show = getenv("CGT_SHOW_LOG");
    if (show && strcmp(show, "1") == 0) {
        char *log = cgt_stream_text(f->log);
        fputs(log, stderr);
        free(log);
    }
    if (f->server_stopped && f->rs.pid > 0)
        kill(f->rs.pid, SIGCONT);
    cg_redis_server_stop(&f->rs);
    event_base_free(f->base);
    cg_log_set_stream(NULL);
    fclose(f->log);
    free(f);
    return 0;
}

static void on_ready_reply(const redisReply *reply, const char *err, void *arg)
{
    struct fx *f = arg;
    assert_null(err);
    assert_non_null(reply);
    f->ready_replies++;
}

static void on_state(enum cg_redis_state s, void *arg)
{
    struct fx *f = arg;
    /* State callbacks never nest. */
    assert_int_equal(f->in_state_cb, 0);
    f->in_state_cb = 1;
    if (f->nstates < MAX_STATES) {
        f->states[f->nstates] = s;
        f->when[f->nstates] = cgt_now_ms();
        f->nstates++;
    }
    assert_int_equal(cg_redis_state(f->r), s);
    if (s == CG_REDIS_READY) {
        f->seen_ready = 1;
        /* Issuing commands from the state callback is allowed. */
        if (f->ready_ping)
            assert_int_equal(cg_redis_command(f->r, on_ready_reply, f, "PING"), 0);
    } else if (s == CG_REDIS_DISCONNECTED) {
        f->seen_disconnected = 1;
    } else if (s == CG_REDIS_CLOSED) {
        f->seen_closed = 1;
    }
    f->in_state_cb = 0;
}

static struct cg_redis *open_redis(struct fx *f, const char *url, int connect_ms, int command_ms,
                                   int bmin, int bmax)
{
    struct cg_redis_opts o = {
        .url = url,
        .connect_timeout_ms = connect_ms,
        .command_timeout_ms = command_ms,
        .backoff_min_ms = bmin,
        .backoff_max_ms = bmax,
    };
    char err[256] = "";
    struct cg_redis *r = cg_redis_new(f->base, &o, err, sizeof err);
    if (r == NULL)
        fail_msg("cg_redis_new: %s", err);
    f->r = r;
    cg_redis_set_state_cb(r, on_state, f);
    return r;
}

static void wait_ready(struct fx *f, int timeout_ms)
{
    f->seen_ready = 0;
    if (cg_redis_state(f->r) == CG_REDIS_READY)
        return;
    if (cgt_run_until(f->base, &f->seen_ready, timeout_ms) != 0)
        fail_msg("redis did not become READY within %d ms", timeout_ms);
}

static int count_state(const struct fx *f, enum cg_redis_state s)
{
    int n = 0;
    for (int i = 0; i < f->nstates; i++)
        n += f->states[i] == s;
    return n;
}

/* ---- command results ---- */

enum kind { K_NONE, K_OK, K_REPLY_ERR, K_DISC, K_TIMEOUT, K_CLOSED, K_BAD };

struct batch {
    int target;
    int done;
    int finished;       /* flag for cgt_run_until */
    long long next_int; /* for ordered INCR checks */
    int out_of_order;
};

struct res {
    int calls;
    enum kind kind;
    int type;
    long long integer;
    char str[256];
    struct batch *batch;
    int *sync_guard; /* non-zero while the issuing call is running */
    int was_sync;
};

static enum kind classify(const redisReply *reply, const char *err)
{
    if (err == NULL)
        return reply && reply->type != REDIS_REPLY_ERROR ? K_OK : K_BAD;
    if (reply == NULL) {
        if (err == cg_redis_err_disconnected)
            return K_DISC;
        if (err == cg_redis_err_timeout)
            return K_TIMEOUT;
        if (err == cg_redis_err_closed)
            return K_CLOSED;
        return K_BAD;
    }
    /* An error reply: err is the reply's own text. */
    return reply->type == REDIS_REPLY_ERROR && err == reply->str ? K_REPLY_ERR : K_BAD;
}

static void on_res(const redisReply *reply, const char *err, void *arg)
{
    struct res *x = arg;
    x->calls++;
    x->kind = classify(reply, err);
    if (x->sync_guard && *x->sync_guard)
        x->was_sync = 1;
    if (reply) {
        x->type = reply->type;
        x->integer = reply->integer;
        if (reply->str)
            snprintf(x->str, sizeof x->str, "%.*s", (int)reply->len, reply->str);
    } else {
        x->type = -1;
    }
    if (x->batch) {
        struct batch *b = x->batch;
        if (reply && reply->type == REDIS_REPLY_INTEGER) {
            if (reply->integer != b->next_int)
                b->out_of_order = 1;
            b->next_int++;
        }
        if (++b->done == b->target)
            b->finished = 1;
    }
}

static void run_until_called(struct fx *f, struct res *x, int timeout_ms)
{
    if (cgt_run_until(f->base, &x->calls, timeout_ms) != 0)
        fail_msg("no callback within %d ms", timeout_ms);
}

/* One command, run to completion. */
static void cmd_sync(struct fx *f, struct res *x, const char *fmt, const char *a1, const char *a2)
{
    memset(x, 0, sizeof *x);
    int rc;
    if (a2)
        rc = cg_redis_command(f->r, on_res, x, fmt, a1, a2);
    else if (a1)
        rc = cg_redis_command(f->r, on_res, x, fmt, a1);
    else
        rc = cg_redis_command(f->r, on_res, x, fmt);
    assert_int_equal(rc, 0);
    run_until_called(f, x, 3000);
    assert_int_equal(x->calls, 1);
}

static void eval_sync(struct fx *f, struct res *x, int id, int nkeys, int nargs, const char **args,
                      const size_t *lens)
{
    memset(x, 0, sizeof *x);
    assert_int_equal(cg_redis_eval(f->r, id, nkeys, nargs, args, lens, on_res, x), 0);
    run_until_called(f, x, 3000);
    /* Give a stray second callback the chance to show up. */
    cgt_run_for(f->base, 20);
    assert_int_equal(x->calls, 1);
}

static char *url_with(const struct fx *f, const char *userinfo, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "redis://%s%s127.0.0.1:%d%s", userinfo ? userinfo : "",
             userinfo ? "@" : "", f->rs.port, path ? path : "");
    return strdup(buf);
}

/* ---- tests ---- */

static void test_connect_ready_and_states(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    /* cg_redis_new() started connecting before the callback was set. */
    assert_int_equal(cg_redis_state(r), CG_REDIS_CONNECTING);
    wait_ready(f, 3000);
    assert_int_equal(f->nstates, 1);
    assert_int_equal(f->states[0], CG_REDIS_READY);
    assert_int_equal(cg_redis_pending(r), 0);
    assert_string_equal(cg_redis_state_name(CG_REDIS_DISCONNECTED), "disconnected");
    assert_string_equal(cg_redis_state_name(CG_REDIS_CONNECTING), "connecting");
    assert_string_equal(cg_redis_state_name(CG_REDIS_READY), "ready");
    assert_string_equal(cg_redis_state_name(CG_REDIS_CLOSED), "closed");
}

static void test_set_get_and_error_reply(void **state)
{
    struct fx *f = *state;
    f->ready_ping = 1;
    open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    /* The READY callback's own PING was answered too. */
    cgt_run_for(f->base, 20);
    assert_int_equal(f->ready_replies, 1);

    struct res x;
    cmd_sync(f, &x, "SET %s %s", "k1", "hello world");
    assert_int_equal(x.kind, K_OK);
    assert_string_equal(x.str, "OK");
    cmd_sync(f, &x, "GET %s", "k1", NULL);
    assert_int_equal(x.kind, K_OK);
    assert_int_equal(x.type, REDIS_REPLY_STRING);
    assert_string_equal(x.str, "hello world");

    /* Binary-safe argv with explicit lengths. */
    const char *argv[] = {"SET", "bin", "a\0b"};
    const size_t lens[] = {3, 3, 3};
    memset(&x, 0, sizeof x);
    assert_int_equal(cg_redis_command_argv(f->r, on_res, &x, 3, argv, lens), 0);
    run_until_called(f, &x, 3000);
    assert_int_equal(x.kind, K_OK);
    cmd_sync(f, &x, "STRLEN bin", NULL, NULL);
    assert_int_equal(x.integer, 3);

    /* An error reply: err is reply->str. */
    cmd_sync(f, &x, "INCR %s", "k1", NULL);
    assert_int_equal(x.kind, K_REPLY_ERR);
    assert_int_equal(x.type, REDIS_REPLY_ERROR);
    assert_true(strncmp(x.str, "ERR", 3) == 0);
    assert_int_equal(cg_redis_pending(f->r), 0);
}

static void test_bad_arguments(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    struct res x = {0};
    const char *args[] = {"a", "b"};
    assert_int_equal(cg_redis_command(r, NULL, NULL, "PING"), -1);
    assert_int_equal(cg_redis_command(NULL, on_res, &x, "PING"), -1);
    assert_int_equal(cg_redis_command_argv(r, on_res, &x, 0, args, NULL), -1);
    assert_int_equal(cg_redis_eval(r, 0, 0, 0, NULL, NULL, on_res, &x), -1); /* no script */
    int id = cg_redis_script(r, "s", "return 1");
    assert_true(id >= 0);
    assert_int_equal(cg_redis_eval(r, id, 3, 2, args, NULL, on_res, &x), -1);
    assert_int_equal(cg_redis_eval(r, id, -1, 2, args, NULL, on_res, &x), -1);
    assert_int_equal(cg_redis_eval(r, id + 1, 0, 0, NULL, NULL, on_res, &x), -1);
    assert_int_equal(cg_redis_script(r, NULL, "return 1"), -1);
    cgt_run_for(f->base, 50);
    assert_int_equal(x.calls, 0);
    assert_int_equal(cg_redis_pending(r), 0);

    char err[128] = "";
    struct cg_redis_opts o = {.url = "http://127.0.0.1:1"};
    assert_null(cg_redis_new(f->base, &o, err, sizeof err));
    assert_true(err[0] != '\0');
}

static void test_command_while_disconnected_is_deferred(void **state)
{
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", cg_free_port());
    struct cg_redis *r = open_redis(f, url, 500, 500, 200, 400);
    int id = cg_redis_script(r, "s", "return 1");
    assert_int_not_equal(cg_redis_state(r), CG_REDIS_READY);

    int guard = 1;
    struct res a = {.sync_guard = &guard}, b = {.sync_guard = &guard};
    assert_int_equal(cg_redis_command(r, on_res, &a, "GET %s", "x"), 0);
    assert_int_equal(cg_redis_eval(r, id, 0, 0, NULL, NULL, on_res, &b), 0);
    /* Not called back from inside the call. */
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 0);
    assert_int_equal(cg_redis_pending(r), 2);
    guard = 0;
    run_until_called(f, &a, 1000);
    run_until_called(f, &b, 1000);
    cgt_run_for(f->base, 20);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.was_sync, 0);
    assert_int_equal(a.kind, K_DISC);
    assert_int_equal(b.kind, K_DISC);
    assert_int_equal(cg_redis_pending(r), 0);
}

static void test_auth_password(void **state)
{
    struct fx *f = *state;
    /* A user for the ACL form, then a default-user password. */
    free(cgt_redis_cmd(&f->rs, "ACL SETUSER alice on >alice-pw-42 ~* &* +@all"));
    char *ok = cgt_redis_cmd(&f->rs, "CONFIG SET requirepass %s", "s3cret-pw-77");
    assert_string_equal(ok, "OK");
    free(ok);

    char *url = url_with(f, ":s3cret-pw-77", NULL);
    open_redis(f, url, 1000, 1000, 50, 200);
    free(url);
    wait_ready(f, 3000);
    struct res x;
    cmd_sync(f, &x, "SET %s %s", "authed", "1");
    assert_int_equal(x.kind, K_OK);
    cg_redis_free(f->r);
    f->r = NULL;

    url = url_with(f, "alice:alice-pw-42", NULL);
    open_redis(f, url, 1000, 1000, 50, 200);
    free(url);
    wait_ready(f, 3000);
    cmd_sync(f, &x, "ACL WHOAMI", NULL, NULL);
    assert_string_equal(x.str, "alice");
    cg_redis_free(f->r);
    f->r = NULL;

    /* Wrong password: retried with backoff, never READY, logged without
     * the password. */
    f->nstates = 0;
    url = url_with(f, ":wrong-pw-99", NULL);
    open_redis(f, url, 1000, 1000, 30, 60);
    free(url);
    cgt_run_for(f->base, 500);
    assert_int_equal(count_state(f, CG_REDIS_READY), 0);
    assert_true(count_state(f, CG_REDIS_CONNECTING) >= 2);
    cg_redis_free(f->r);
    f->r = NULL;

    /* No password at all: the handshake's PING is refused. */
    f->nstates = 0;
    open_redis(f, f->rs.url, 1000, 1000, 30, 60);
    cgt_run_for(f->base, 300);
    assert_int_equal(count_state(f, CG_REDIS_READY), 0);

    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "redis handshake failed"));
    assert_non_null(strstr(log, "WRONGPASS"));
    assert_non_null(strstr(log, "NOAUTH"));
    assert_null(strstr(log, "wrong-pw-99"));
    assert_null(strstr(log, "s3cret-pw-77"));
    assert_null(strstr(log, "alice-pw-42"));
    free(log);
}

static void test_select_db(void **state)
{
    struct fx *f = *state;
    char *url = url_with(f, NULL, "/3");
    open_redis(f, url, 2000, 2000, 50, 200);
    free(url);
    wait_ready(f, 3000);
    struct res x;
    cmd_sync(f, &x, "SET %s %s", "in-db-3", "yes");
    assert_int_equal(x.kind, K_OK);
    cmd_sync(f, &x, "CLIENT INFO", NULL, NULL);
    assert_non_null(strstr(x.str, " db=3 "));
    char *ks = cgt_redis_cmd(&f->rs, "INFO keyspace");
    assert_non_null(strstr(ks, "db3:keys=1"));
    assert_null(strstr(ks, "db0:"));
    free(ks);
}

static void test_scripts_and_noscript_fallback(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    int concat = cg_redis_script(r, "concat", "return KEYS[1] .. ':' .. ARGV[1]");
    int broken = cg_redis_script(r, "broken", "this is not lua");
    assert_true(concat >= 0 && broken >= 0 && concat != broken);
    /* A script that does not compile is logged but does not block READY. */
    wait_ready(f, 3000);

    const char *args[] = {"key", "val"};
    struct res x;
    eval_sync(f, &x, concat, 1, 2, args, NULL);
    assert_int_equal(x.kind, K_OK);
    assert_string_equal(x.str, "key:val");

    /* The script cache is flushed behind our back: EVALSHA gets NOSCRIPT
     * and the call is resent as EVAL; the caller sees one callback. */
    char *fl = cgt_redis_cmd(&f->rs, "SCRIPT FLUSH");
    assert_string_equal(fl, "OK");
    free(fl);
    eval_sync(f, &x, concat, 1, 2, args, NULL);
    assert_int_equal(x.kind, K_OK);
    assert_string_equal(x.str, "key:val");
    /* EVAL cached it again: a second call needs no fallback. */
    eval_sync(f, &x, concat, 1, 2, args, NULL);
    assert_string_equal(x.str, "key:val");

    /* Binary arguments with lengths. */
    int len = cg_redis_script(r, "len", "return string.len(ARGV[1])");
    const char *bargs[] = {"a\0b\0c"};
    const size_t blens[] = {5};
    eval_sync(f, &x, len, 0, 1, bargs, blens);
    assert_int_equal(x.kind, K_OK);
    assert_int_equal(x.integer, 5);

    /* The broken script: one callback with Redis' compile error. */
    eval_sync(f, &x, broken, 0, 0, NULL, NULL);
    assert_int_equal(x.kind, K_REPLY_ERR);
    assert_non_null(strstr(x.str, "compiling"));

    /* A runtime error inside a script is an ordinary error reply. */
    int incr = cg_redis_script(r, "incr", "return redis.call('INCR', KEYS[1])");
    cmd_sync(f, &x, "SET %s %s", "str", "abc");
    const char *ikeys[] = {"str"};
    eval_sync(f, &x, incr, 1, 1, ikeys, NULL);
    assert_int_equal(x.kind, K_REPLY_ERR);

    /* Many evals pipelined across a flush: each called back once. */
    fl = cgt_redis_cmd(&f->rs, "SCRIPT FLUSH");
    free(fl);
    struct batch b = {.target = 50};
    struct res many[50];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 50; i++) {
        many[i].batch = &b;
        assert_int_equal(cg_redis_eval(r, concat, 1, 2, args, NULL, on_res, &many[i]), 0);
    }
    assert_int_equal(cgt_run_until(f->base, &b.finished, 3000), 0);
    cgt_run_for(f->base, 20);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_string_equal(many[i].str, "key:val");
    }
    assert_int_equal(cg_redis_pending(r), 0);
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "redis script load failed"));
    /* Logged once per script and connection, not once per eval. */
    int fallbacks = 0;
    for (const char *q = log; (q = strstr(q, "resending with EVAL\",\"script\":\"concat\"")); q++)
        fallbacks++;
    assert_int_equal(fallbacks, 1);
    free(log);
}

static void test_kill_and_restart(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 1000, 1000, 50, 200);
    int id = cg_redis_script(r, "one", "return 1");
    wait_ready(f, 3000);
    f->nstates = 0;

    struct batch b = {.target = 50};
    struct res xs[50];
    memset(xs, 0, sizeof xs);
    for (int i = 0; i < 50; i++) {
        xs[i].batch = &b;
        assert_int_equal(cg_redis_command(r, on_res, &xs[i], "INCR %s", "n"), 0);
    }
    assert_int_equal(cg_redis_pending(r), 50);
    /* Killed before the loop wrote anything: every command is lost. */
    cg_redis_server_kill(&f->rs, SIGKILL);
    assert_int_equal(cgt_run_until(f->base, &b.finished, 3000), 0);
    cgt_run_for(f->base, 30);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(xs[i].calls, 1);
        assert_int_equal(xs[i].kind, K_DISC);
    }
    assert_int_equal(cg_redis_pending(r), 0);
    assert_true(f->nstates >= 1);
    assert_int_equal(f->states[0], CG_REDIS_DISCONNECTED);
    assert_int_not_equal(cg_redis_state(r), CG_REDIS_READY);

    /* Same port: reconnects by itself, scripts loaded again. */
    char err[256];
    if (cg_redis_server_restart(&f->rs, err, sizeof err) != 0)
        fail_msg("restart: %s", err);
    wait_ready(f, 5000);
    struct res x;
    eval_sync(f, &x, id, 0, 0, NULL, NULL);
    assert_int_equal(x.kind, K_OK);
    assert_int_equal(x.integer, 1);
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "redis disconnected"));
    assert_null(strstr(log, "redis script missing"));
    free(log);
}

static void test_command_timeout_and_recovery(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 250, 200, 50, 100);
    wait_ready(f, 3000);
    f->nstates = 0;
    f->seen_disconnected = 0;

    cg_redis_server_kill(&f->rs, SIGSTOP);
    f->server_stopped = 1;
    uint64_t t0 = cgt_now_ms();
    struct res a = {0}, b = {0};
    assert_int_equal(cg_redis_command(r, on_res, &a, "SET %s %s", "a", "1"), 0);
    cgt_run_for(f->base, 100);
    assert_int_equal(a.calls, 0);
    assert_int_equal(cg_redis_command(r, on_res, &b, "SET %s %s", "b", "1"), 0);
    run_until_called(f, &a, 3000);
    uint64_t elapsed = cgt_now_ms() - t0;
    run_until_called(f, &b, 1000);
    assert_int_equal(a.kind, K_TIMEOUT);
    /* The later command had not reached its own deadline. */
    assert_int_equal(b.kind, K_DISC);
    assert_true(elapsed >= 150);
    assert_true(elapsed < 1500);
    assert_int_equal(f->states[0], CG_REDIS_DISCONNECTED);

    /* While stopped, reconnects reach the listen backlog but the handshake
     * is never answered: each attempt times out. */
    cgt_run_for(f->base, 1000);
    assert_int_equal(count_state(f, CG_REDIS_READY), 0);
    assert_true(count_state(f, CG_REDIS_CONNECTING) >= 2);

    cg_redis_server_kill(&f->rs, SIGCONT);
    f->server_stopped = 0;
    wait_ready(f, 3000);
    struct res x;
    cmd_sync(f, &x, "GET %s", "a", NULL);
    assert_int_equal(x.kind, K_OK);
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "redis command timed out"));
    assert_non_null(strstr(log, "redis connect timed out"));
    free(log);
}

static void test_connect_timeout_on_silent_listener(void **state)
{
    struct fx *f = *state;
    /* Accepts TCP connections into its backlog and never reads. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(sa.sin_port));

    uint64_t t0 = cgt_now_ms();
    struct cg_redis *r = open_redis(f, url, 200, 200, 30, 60);
    struct res x = {0};
    assert_int_equal(cg_redis_command(r, on_res, &x, "PING"), 0);
    assert_int_equal(cgt_run_until(f->base, &f->seen_disconnected, 3000), 0);
    uint64_t first = cgt_now_ms() - t0;
    assert_true(first >= 180);
    assert_true(first < 1500);
    cgt_run_for(f->base, 800);
    assert_int_equal(count_state(f, CG_REDIS_READY), 0);
    assert_true(count_state(f, CG_REDIS_CONNECTING) >= 2);
    assert_true(count_state(f, CG_REDIS_DISCONNECTED) >= 2);
    /* The command sent while CONNECTING failed at once, not at a timeout. */
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.kind, K_DISC);
    cg_redis_free(f->r);
    f->r = NULL;
    close(fd);
}

static void test_backoff_while_down(void **state)
{
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", cg_free_port());
    open_redis(f, url, 500, 500, 20, 80);
    cgt_run_for(f->base, 900);
    uint64_t prev = 0, max_gap = 0;
    int n = 0;
    for (int i = 0; i < f->nstates; i++) {
        if (f->states[i] != CG_REDIS_CONNECTING)
            continue;
        if (n > 0) {
            uint64_t gap = f->when[i] - prev;
            /* Never shorter than the minimum (libevent's coarse clock may
             * fire a few ms early), never much past the cap. */
            assert_true(gap >= 12);
            assert_true(gap <= 80 + 100);
            if (gap > max_gap)
                max_gap = gap;
        }
        prev = f->when[i];
        n++;
    }
    assert_true(n >= 5);
    /* Grown beyond the minimum at some point (jitter makes the exact value
     * random; that every delay stayed below 40 ms is vanishingly unlikely). */
    assert_true(max_gap > 40);
    assert_int_equal(count_state(f, CG_REDIS_READY), 0);
}

static void test_close_drains_pending(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    struct batch b = {.target = 100, .next_int = 1};
    struct res xs[100];
    memset(xs, 0, sizeof xs);
    for (int i = 0; i < 100; i++) {
        xs[i].batch = &b;
        assert_int_equal(cg_redis_command(r, on_res, &xs[i], "INCR %s", "c"), 0);
    }
    cg_redis_close(r);
    cg_redis_close(r); /* idempotent */
    struct res late = {0};
    assert_int_equal(cg_redis_command(r, on_res, &late, "PING"), 0);
    assert_int_equal(late.calls, 0);
    assert_int_equal(cgt_run_until(f->base, &f->seen_closed, 3000), 0);
    assert_int_equal(b.done, 100);
    assert_int_equal(b.out_of_order, 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(xs[i].calls, 1);
        assert_int_equal(xs[i].kind, K_OK);
    }
    cgt_run_for(f->base, 30);
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.kind, K_CLOSED);
    assert_int_equal(cg_redis_state(r), CG_REDIS_CLOSED);
    assert_int_equal(count_state(f, CG_REDIS_CLOSED), 1);
    assert_int_equal(f->states[f->nstates - 1], CG_REDIS_CLOSED);
    assert_int_equal(cg_redis_pending(r), 0);
    char *n = cgt_redis_cmd(&f->rs, "GET c");
    assert_string_equal(n, "100");
    free(n);
}

static void test_close_while_disconnected(void **state)
{
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", cg_free_port());
    struct cg_redis *r = open_redis(f, url, 500, 500, 20, 40);
    cgt_run_for(f->base, 50);
    cg_redis_close(r);
    assert_int_equal(cgt_run_until(f->base, &f->seen_closed, 1000), 0);
    int before = f->nstates;
    cgt_run_for(f->base, 200);
    /* No reconnect attempts after CLOSED. */
    assert_int_equal(f->nstates, before);
    assert_int_equal(cg_redis_state(r), CG_REDIS_CLOSED);
}

static void test_free_with_pending(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    struct res xs[20];
    memset(xs, 0, sizeof xs);
    for (int i = 0; i < 20; i++)
        assert_int_equal(cg_redis_command(r, on_res, &xs[i], "PING"), 0);
    cg_redis_free(r);
    f->r = NULL;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(xs[i].calls, 1);
        assert_int_equal(xs[i].kind, K_CLOSED);
    }
    cgt_run_for(f->base, 50);
    for (int i = 0; i < 20; i++)
        assert_int_equal(xs[i].calls, 1);

    /* Deferred failures not yet delivered become closed too. */
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", cg_free_port());
    r = open_redis(f, url, 500, 500, 50, 100);
    struct res d = {0};
    assert_int_equal(cg_redis_command(r, on_res, &d, "PING"), 0);
    cg_redis_free(r);
    f->r = NULL;
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.kind, K_CLOSED);
    cgt_run_for(f->base, 50);
    assert_int_equal(d.calls, 1);
    cg_redis_free(NULL);
    cg_redis_close(NULL);
}

static void test_pipeline_10k(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 5000, 50, 200);
    wait_ready(f, 3000);
    enum { N = 10000 };
    struct res *xs = calloc(N, sizeof *xs);
    assert_non_null(xs);
    struct batch b = {.target = N, .next_int = 1};
    for (int i = 0; i < N; i++) {
        xs[i].batch = &b;
        assert_int_equal(cg_redis_command(r, on_res, &xs[i], "INCR %s", "p"), 0);
    }
    assert_int_equal(cg_redis_pending(r), N);
    assert_int_equal(cgt_run_until(f->base, &b.finished, 10000), 0);
    cgt_run_for(f->base, 20);
    assert_int_equal(b.out_of_order, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(xs[i].calls, 1);
        assert_int_equal(xs[i].kind, K_OK);
    }
    assert_int_equal(cg_redis_pending(r), 0);
    free(xs);
}

/* ---- re-entrancy ---- */

struct chain {
    struct fx *f;
    int remaining;
    int replies;
    int in_cb;
    int nested;
    int done;
    int failures;
};

static void chain_cb(const redisReply *reply, const char *err, void *arg)
{
    struct chain *c = arg;
    if (c->in_cb)
        c->nested = 1;
    c->in_cb = 1;
    if (err == NULL && reply && reply->type == REDIS_REPLY_INTEGER)
        c->replies++;
    else
        c->failures++;
    if (c->remaining > 0) {
        c->remaining--;
        assert_int_equal(cg_redis_command(c->f->r, chain_cb, c, "INCR %s", "chain"), 0);
    } else {
        c->done = 1;
    }
    c->in_cb = 0;
}

static void test_commands_from_callbacks(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    struct chain c = {.f = f, .remaining = 199};
    assert_int_equal(cg_redis_command(r, chain_cb, &c, "INCR %s", "chain"), 0);
    assert_int_equal(cgt_run_until(f->base, &c.done, 5000), 0);
    assert_int_equal(c.replies, 200);
    assert_int_equal(c.failures, 0);
    assert_int_equal(c.nested, 0);

    /* From failure callbacks too: with the server gone, each new command
     * fails on a later loop turn, never inside the failing callback. */
    cg_redis_server_kill(&f->rs, SIGKILL);
    struct chain d = {.f = f, .remaining = 20};
    assert_int_equal(cg_redis_command(r, chain_cb, &d, "INCR %s", "chain"), 0);
    assert_int_equal(cgt_run_until(f->base, &d.done, 5000), 0);
    assert_int_equal(d.failures, 21);
    assert_int_equal(d.nested, 0);
    assert_int_equal(cg_redis_pending(r), 0);
}

struct freer {
    struct fx *f;
    int calls;
};

static void free_in_cb(const redisReply *reply, const char *err, void *arg)
{
    (void)reply;
    (void)err;
    struct freer *x = arg;
    x->calls++;
    cg_redis_free(x->f->r);
    x->f->r = NULL;
}

static void close_in_cb(const redisReply *reply, const char *err, void *arg)
{
    (void)reply;
    (void)err;
    struct freer *x = arg;
    x->calls++;
    cg_redis_close(x->f->r);
}

static void test_free_and_close_from_callbacks(void **state)
{
    struct fx *f = *state;
    struct cg_redis *r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    struct freer fr = {.f = f};
    struct res xs[10];
    memset(xs, 0, sizeof xs);
    assert_int_equal(cg_redis_command(r, free_in_cb, &fr, "PING"), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cg_redis_command(r, on_res, &xs[i], "PING"), 0);
    assert_int_equal(cgt_run_until(f->base, &fr.calls, 3000), 0);
    assert_null(f->r);
    cgt_run_for(f->base, 50);
    assert_int_equal(fr.calls, 1);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(xs[i].calls, 1);
        assert_int_equal(xs[i].kind, K_CLOSED);
    }

    /* Free from inside a failure callback of a dropped connection. */
    r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    struct freer fr2 = {.f = f};
    struct res ys[5];
    memset(ys, 0, sizeof ys);
    assert_int_equal(cg_redis_command(r, free_in_cb, &fr2, "PING"), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cg_redis_command(r, on_res, &ys[i], "PING"), 0);
    char *cl = cgt_redis_cmd(&f->rs, "CLIENT KILL TYPE normal");
    free(cl);
    assert_int_equal(cgt_run_until(f->base, &fr2.calls, 3000), 0);
    cgt_run_for(f->base, 50);
    assert_null(f->r);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ys[i].calls, 1);

    /* Close from inside a reply callback: the rest still complete. */
    f->seen_closed = 0;
    r = open_redis(f, f->rs.url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    struct freer cr = {.f = f};
    struct res zs[5];
    memset(zs, 0, sizeof zs);
    assert_int_equal(cg_redis_command(r, close_in_cb, &cr, "PING"), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cg_redis_command(r, on_res, &zs[i], "PING"), 0);
    assert_int_equal(cgt_run_until(f->base, &f->seen_closed, 3000), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(zs[i].calls, 1);
        assert_int_equal(zs[i].kind, K_OK);
    }
}

static void test_host_name_resolved(void **state)
{
    /* "localhost" goes through the asynchronous resolver (hosts file); it
     * may yield ::1 first, where nothing listens, and the next address is
     * tried. */
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof url, "redis://localhost:%d", f->rs.port);
    open_redis(f, url, 2000, 2000, 50, 200);
    wait_ready(f, 3000);
    struct res x;
    cmd_sync(f, &x, "PING", NULL, NULL);
    assert_int_equal(x.kind, K_OK);
}

static void test_ipv6_literal(void **state)
{
    /* The private Redis listens on 127.0.0.1 only: [::1] is refused (or
     * has no route), which must read as an ordinary connect failure. */
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof url, "redis://[::1]:%d", f->rs.port);
    open_redis(f, url, 500, 500, 50, 200);
    if (cgt_run_until(f->base, &f->seen_disconnected, 3000) != 0)
        fail_msg("no connect failure for [::1]");
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "\"host\":\"::1\""));
    assert_null(strstr(log, "cannot resolve"));
    free(log);
}

static void test_unresolvable_name_never_blocks(void **state)
{
    struct fx *f = *state;
    uint64_t t0 = cgt_now_ms();
    open_redis(f, "redis://no-such-host.invalid:6379", 500, 500, 50, 200);
    /* Resolution never runs inside the call. */
    assert_true(cgt_now_ms() - t0 < 200);
    if (cgt_run_until(f->base, &f->seen_disconnected, 3000) != 0)
        fail_msg("an unresolvable name did not fail within 3 s");
    assert_int_equal(f->seen_ready, 0);
    struct res x;
    cmd_sync(f, &x, "PING", NULL, NULL);
    assert_int_equal(x.kind, K_DISC);
}

static void test_readonly_reconnects(void **state)
{
    /* A node that became a replica answers writes with -READONLY: the
     * caller gets that reply, and the connection is dropped and made
     * anew (with Sentinel or a moved DNS name, to the new master). */
    struct fx *f = *state;
    struct cgt_redis_node replica;
    char mport[16];
    snprintf(mport, sizeof mport, "%d", f->rs.port);
    const char *extra[] = {"--replicaof", "127.0.0.1", mport, NULL};
    cgt_redis_node_start(&replica, NULL, 0, extra);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", replica.port);
    open_redis(f, url, 2000, 2000, 20, 50);
    wait_ready(f, 3000);
    struct res x;
    cmd_sync(f, &x, "SET %s %s", "ro", "1");
    assert_int_equal(x.kind, K_REPLY_ERR);
    assert_true(strncmp(x.str, "READONLY", 8) == 0);
    assert_int_equal(cg_redis_state(f->r), CG_REDIS_DISCONNECTED);
    f->seen_ready = 0;
    if (cgt_run_until(f->base, &f->seen_ready, 3000) != 0)
        fail_msg("no reconnect after -READONLY");
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "read-only"));
    free(log);
    cg_redis_free(f->r);
    f->r = NULL;
    cgt_redis_node_stop(&replica);
}

/* Polls a node until the reply to cmd contains want. */
static void node_wait(const struct cgt_redis_node *n, const char *cmd, const char *want)
{
    uint64_t deadline = cgt_now_ms() + 10000;
    for (;;) {
        char *out = cgt_node_cmd(n, cmd);
        int found = strstr(out, want) != NULL;
        free(out);
        if (found)
            return;
        if (cgt_now_ms() > deadline)
            fail_msg("no \"%s\" in the reply to %s", want, cmd);
        cgt_sleep_ms(50);
    }
}

/* Two Redis Cluster nodes that know each other; A owns every slot. */
static void cluster_pair(struct cgt_redis_node *a, struct cgt_redis_node *b, char **a_id,
                         char **b_id)
{
    /* The bus port is given: the default (port + 10000) may not exist. */
    char bus_a[16], bus_b[16];
    snprintf(bus_a, sizeof bus_a, "%d", cg_free_port());
    snprintf(bus_b, sizeof bus_b, "%d", cg_free_port());
    const char *cluster_a[] = {"--cluster-enabled",
                               "yes",
                               "--cluster-config-file",
                               "nodes.conf",
                               "--cluster-port",
                               bus_a,
                               NULL};
    const char *cluster_b[] = {"--cluster-enabled",
                               "yes",
                               "--cluster-config-file",
                               "nodes.conf",
                               "--cluster-port",
                               bus_b,
                               NULL};
    cgt_redis_node_start(a, NULL, 0, cluster_a);
    cgt_redis_node_start(b, NULL, 0, cluster_b);
    *a_id = cgt_node_cmd(a, "CLUSTER MYID");
    *b_id = cgt_node_cmd(b, "CLUSTER MYID");
    char *out = cgt_node_cmd(a, "CLUSTER ADDSLOTSRANGE 0 16383");
    assert_string_equal(out, "OK");
    free(out);
    out = cgt_node_cmd(a, "CLUSTER MEET 127.0.0.1 %d %s", b->port, bus_b);
    assert_string_equal(out, "OK");
    free(out);
    node_wait(a, "CLUSTER NODES", *b_id);
    node_wait(b, "CLUSTER NODES", *a_id);
    node_wait(a, "CLUSTER INFO", "cluster_state:ok");
    node_wait(b, "CLUSTER INFO", "cluster_state:ok");
}

static void test_moved_follows_slot_owner(void **state)
{
    /* A owns every slot until the slot of the hash tag {cgtest} is handed
     * to B. A's MOVED reply reaches the caller and the connection follows
     * the slot to B. */
    struct fx *f = *state;
    struct cgt_redis_node a, b;
    char *a_id, *b_id, *out;
    cluster_pair(&a, &b, &a_id, &b_id);

    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", a.port);
    open_redis(f, url, 2000, 2000, 20, 50);
    wait_ready(f, 3000);
    struct res x;
    cmd_sync(f, &x, "SET %s %s", "{cgtest}k", "on-a");
    assert_int_equal(x.kind, K_OK);
    cmd_sync(f, &x, "DEL %s", "{cgtest}k", NULL);

    out = cgt_node_cmd(&a, "CLUSTER KEYSLOT {cgtest}");
    long slot = strtol(out, NULL, 10);
    free(out);
    out = cgt_node_cmd(&b, "CLUSTER SETSLOT %ld NODE %s", slot, b_id);
    assert_string_equal(out, "OK");
    free(out);
    out = cgt_node_cmd(&a, "CLUSTER SETSLOT %ld NODE %s", slot, b_id);
    assert_string_equal(out, "OK");
    free(out);
    node_wait(&b, "CLUSTER INFO", "cluster_state:ok");

    cmd_sync(f, &x, "SET %s %s", "{cgtest}k", "v");
    assert_int_equal(x.kind, K_REPLY_ERR);
    assert_true(strncmp(x.str, "MOVED", 5) == 0);
    f->seen_ready = 0;
    if (cgt_run_until(f->base, &f->seen_ready, 3000) != 0)
        fail_msg("no reconnect to the slot's owner after MOVED");
    cmd_sync(f, &x, "SET %s %s", "{cgtest}k", "on-b");
    assert_int_equal(x.kind, K_OK);
    out = cgt_node_cmd(&b, "GET {cgtest}k");
    assert_string_equal(out, "on-b");
    free(out);
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "redis slot moved"));
    free(log);

    cg_redis_free(f->r);
    f->r = NULL;
    free(a_id);
    free(b_id);
    cgt_redis_node_stop(&a);
    cgt_redis_node_stop(&b);
}

static void test_ask_follows_migrating_slot(void **state)
{
    /* The slot of {cgtest} is being migrated from A to B. A key already on
     * B makes A answer -ASK: the command (a plain command, then a script,
     * which B has never seen) is sent once to B after ASKING, and its reply
     * is the caller's. The connection stays on A, which still owns the slot
     * and serves the keys it has. */
    struct fx *f = *state;
    struct cgt_redis_node a, b;
    char *a_id, *b_id, *out;
    cluster_pair(&a, &b, &a_id, &b_id);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", a.port);
    open_redis(f, url, 2000, 2000, 20, 50);
    int id = cg_redis_script(
        f->r, "setget", "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])");
    assert_true(id >= 0);
    wait_ready(f, 3000);
    struct res x;
    cmd_sync(f, &x, "SET %s %s", "{cgtest}old", "on-a");
    assert_int_equal(x.kind, K_OK);

    out = cgt_node_cmd(&a, "CLUSTER KEYSLOT {cgtest}");
    long slot = strtol(out, NULL, 10);
    free(out);
    out = cgt_node_cmd(&b, "CLUSTER SETSLOT %ld IMPORTING %s", slot, a_id);
    assert_string_equal(out, "OK");
    free(out);
    out = cgt_node_cmd(&a, "CLUSTER SETSLOT %ld MIGRATING %s", slot, b_id);
    assert_string_equal(out, "OK");
    free(out);

    /* A new key: A does not have it, so B takes it (ASK). */
    cmd_sync(f, &x, "SET %s %s", "{cgtest}new", "on-b");
    if (x.kind != K_OK)
        fail_msg("SET through ASK: %s", x.str);
    /* A script on a key A does not have: sent as EVAL (B has no cache). */
    const char *args[] = {"{cgtest}script", "from-script"};
    eval_sync(f, &x, id, 1, 2, args, NULL);
    assert_int_equal(x.kind, K_OK);
    assert_string_equal(x.str, "from-script");
    /* A key A still has is served by A, on the same connection. */
    cmd_sync(f, &x, "GET %s", "{cgtest}old", NULL);
    assert_int_equal(x.kind, K_OK);
    assert_string_equal(x.str, "on-a");
    /* A has not got the new key: it sends anyone asking for it to B. */
    out = cgt_node_cmd(&a, "EXISTS {cgtest}new");
    assert_true(strncmp(out, "ASK ", 4) == 0);
    free(out);

    /* The migration ends: B owns the slot and has both keys. */
    out = cgt_node_cmd(&b, "CLUSTER SETSLOT %ld NODE %s", slot, b_id);
    assert_string_equal(out, "OK");
    free(out);
    out = cgt_node_cmd(&b, "GET {cgtest}new");
    assert_string_equal(out, "on-b");
    free(out);
    out = cgt_node_cmd(&b, "GET {cgtest}script");
    assert_string_equal(out, "from-script");
    free(out);
    char *log = cgt_stream_text(f->log);
    assert_non_null(strstr(log, "the command goes to the importing node (ASK)"));
    assert_null(strstr(log, "redis slot moved"));
    free(log);

    cg_redis_free(f->r);
    f->r = NULL;
    free(a_id);
    free(b_id);
    cgt_redis_node_stop(&a);
    cgt_redis_node_stop(&b);
}

int main(void)
{
    /* hiredis 0.14 writes with write(2): a dead server must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_ready_and_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_get_and_error_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_while_disconnected_is_deferred, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auth_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scripts_and_noscript_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_timeout_and_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout_on_silent_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_while_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_while_disconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_10k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands_from_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_and_close_from_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_name_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unresolvable_name_never_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_follows_slot_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ask_follows_migrating_slot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
