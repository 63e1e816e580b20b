/*
 * Queued callbacks in the gate's Lua scripts (callback.lua and the
 * callback path of admit_batch) against a real redis-server: the ticket
 * kept, reservations in ticket order and within the limit, one dial per
 * attempt across connections, the answer turned into an admission, retries,
 * exhaustion and expiry with the slot freed and refilled, and a randomized
 * run checking order, the limit and that no callback is lost.
 */
#include "luafix.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/lua_scripts.h"

#define LIMIT "3"

static redisContext *rc2; /* a second instance's connection */

static int setup_callback_all(void **state)
{
    if (setup_all(state) != 0)
        return -1;
    rc2 = redisConnect("127.0.0.1", rs.port);
    return rc2 == NULL || rc2->err ? -1 : 0;
}

static int teardown_callback_all(void **state)
{
    redisFree(rc2);
    return teardown_all(state);
}

static int flush_open(void **state)
{
    flush(state);
    /* The callback window is open. */
    freeReplyObject(redisCommand(rc, "SET " PREFIX "cbwin 1"));
    return 0;
}

#define RUN2(script, ...)                                                                          \
    cgt_hi_eval(rc2, script, PREFIX, CGT_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})

/* How many queue log entries have event ev. */
static long long log_count(const char *ev)
{
    redisReply *lg = redisCommand(rc, "XRANGE " PREFIX "log - +");
    assert_non_null(lg);
    long long n = 0;
    for (size_t i = 0; i < lg->elements; i++) {
        const redisReply *fv = lg->element[i]->element[1];
        if (fv->elements >= 2 && strcmp(fv->element[1]->str, ev) == 0)
            n++;
    }
    freeReplyObject(lg);
    return n;
}

static void enter_waiting(const char *sid)
{
    redisReply *r = RUN(cg_lua_enter, sid, "+15550001", "+15559999", "incoming", "1000", LIMIT, "0",
                        "30000", "i1", "0");
    assert_string_equal(str_at(r, 0), "waiting");
    freeReplyObject(r);
}

static redisReply *admit(void)
{
    return RUN(cg_lua_admit, LIMIT, "100", "30000", "i1");
}

/* request: number, est_ms, max_dials, retry_ms, lease_ms */
static redisReply *request(const char *sid, const char *max, const char *retry_ms)
{
    return RUN(cg_lua_callback, "request", sid, "+15551234567", "90000", max, retry_ms, "70000");
}

static void request_ok(const char *sid, const char *max, const char *retry_ms)
{
    redisReply *r = request(sid, max, retry_ms);
    assert_string_equal(str_at(r, 0), "callback");
    freeReplyObject(r);
}

static redisReply *dial(const char *sid, const char *attempt)
{
    return RUN(cg_lua_callback, "dial", sid, attempt);
}

static redisReply *answered(const char *sid, const char *attempt, const char *leg)
{
    return RUN(cg_lua_callback, "answered", sid, attempt, leg, "30000", "i1");
}

/* failed/expire: attempt, leg, reason, final, limit, batch, lease, instance */
static redisReply *outcome(const char *op, const char *sid, const char *attempt, const char *leg,
                           const char *reason, const char *final)
{
    return RUN(cg_lua_callback, op, sid, attempt, leg, reason, final, LIMIT, "100", "30000", "i1");
}

/* Runs admit and expects exactly the given sids (in order), with the
 * attempts given (negative: a callback reservation, which carries no queue
 * context; a caller carries theirs). */
static void expect_admit(int n, const char **sids, const long long *attempts)
{
    redisReply *r = admit();
    assert_int_equal(r->elements, (size_t)n * 4);
    for (int i = 0; i < n; i++) {
        assert_string_equal(str_at(r, (size_t)i * 4), sids[i]);
        assert_int_equal(int_at(r, (size_t)i * 4 + 2), attempts[i]);
        const redisReply *c = r->element[(size_t)i * 4 + 3];
        assert_int_equal(c->type, REDIS_REPLY_ARRAY);
        if (attempts[i] < 0)
            assert_int_equal(c->elements, 0);
        else
            assert_int_equal(int_at(ctx_at(r, (size_t)i * 4 + 3), 3), 0);
    }
    freeReplyObject(r);
}

static void test_request_keeps_ticket(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    enter_waiting("CA3");
    long long ticket = cmd_int("ZSCORE " PREFIX "waiting CA2");
    redisReply *r = request("CA2", "3", "60000");
    assert_string_equal(str_at(r, 0), "callback");
    assert_int_equal(int_at(r, 1), 2);
    freeReplyObject(r);
    assert_state("CA2", "callback");
    /* Still in line with the same ticket: CA3 still counts it ahead. */
    assert_int_equal(cmd_int("ZSCORE " PREFIX "waiting CA2"), ticket);
    assert_int_equal(cmd_int("ZRANK " PREFIX "waiting CA3"), 2);
    char *num = cmd_str("HGET " PREFIX "call:CA2 cb_number");
    assert_string_equal(num, "+15551234567");
    free(num);
    assert_int_equal(log_count("CALLBACK_REQUEST"), 1);
    assert_int_equal(cmd_int("HGET " PREFIX "stats callbacks_requested"), 1);

    /* The keypad webhook retried: nothing changes. */
    r = request("CA2", "3", "60000");
    assert_string_equal(str_at(r, 0), "existing");
    assert_int_equal(int_at(r, 1), 2);
    freeReplyObject(r);
    assert_int_equal(log_count("CALLBACK_REQUEST"), 1);

    /* Only a waiting caller may ask. */
    r = request("CAX", "3", "60000");
    assert_string_equal(str_at(r, 0), "stale");
    assert_string_equal(str_at(r, 1), "unknown");
    freeReplyObject(r);
    freeReplyObject(admit()); /* CA1, CA2's reservation, CA3 */
    r = request("CA1", "3", "60000");
    assert_string_equal(str_at(r, 0), "stale");
    assert_string_equal(str_at(r, 1), "admitting");
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS " PREFIX "call:CAX"), 0);
}

/* Reconciliation lists only the callers Twilio should still hold. */
static void test_members_skip_callbacks(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    request_ok("CA1", "3", "60000");
    redisReply *r = RUN(cg_lua_members);
    assert_int_equal(r->elements, 2);
    assert_string_equal(str_at(r, 0), "CA2");
    freeReplyObject(r);
    /* Twilio's later end of the departed leg changes nothing. */
    r = RUN(cg_lua_end, "twilio", "CA1", "completed", "5000", LIMIT, "100", "30000", "i1", "0.2",
            "twilio-status", "60000");
    assert_string_equal(str_at(r, 0), "duplicate");
    freeReplyObject(r);
    assert_state("CA1", "callback");
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 2);
}

static void test_admit_orders_callbacks(void **state)
{
    (void)state;
    for (int i = 1; i <= 5; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "CA%d", i);
        enter_waiting(sid);
    }
    request_ok("CA2", "3", "60000");
    /* In ticket order, within the limit: the reservation counts. */
    expect_admit(3, (const char *[]){"CA1", "CA2", "CA3"}, (const long long[]){1, -1, 1});
    assert_state("CA2", "cb_reserved");
    /* Until the dial's claim, the admission lease. */
    assert_int_equal(cmd_int("ZSCORE " PREFIX "active CA2") -
                         cmd_int("HGET " PREFIX "call:CA2 cb_reserved_at"),
                     30000);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 3);
    expect_admit(0, NULL, NULL);
    /* A reservation is no admission: no ADMIT, no Vapi call. */
    assert_int_equal(log_count("ADMIT"), 2);
    assert_int_equal(cmd_int("HGET " PREFIX "stats admissions"), 2);
    /* The reply carries the number to call. */
    char *num = cmd_str("HGET " PREFIX "call:CA2 cb_number");
    assert_string_equal(num, "+15551234567");
    free(num);
}

static void test_admit_passes_callbacks_not_due(void **state)
{
    (void)state;
    for (int i = 1; i <= 4; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "CA%d", i);
        enter_waiting(sid);
    }
    request_ok("CA1", "3", "60000");
    request_ok("CA2", "3", "60000");
    /* Window closed: callers on the line go first; the callbacks keep
     * their place at the head. */
    freeReplyObject(redisCommand(rc, "DEL " PREFIX "cbwin"));
    expect_admit(2, (const char *[]){"CA3", "CA4"}, (const long long[]){1, 1});
    assert_int_equal(cmd_int("ZRANK " PREFIX "waiting CA1"), 0);
    assert_int_equal(cmd_int("ZRANK " PREFIX "waiting CA2"), 1);
    /* Window open, but CA1's retry time is ahead: CA2 goes. */
    freeReplyObject(redisCommand(rc, "SET " PREFIX "cbwin 1"));
    freeReplyObject(redisCommand(rc, "HSET " PREFIX "call:CA1 cb_due_at 99999999999999"));
    expect_admit(1, (const char *[]){"CA2"}, (const long long[]){-1});
    assert_state("CA1", "callback");
    /* Due again: CA1 next, once there is room. */
    freeReplyObject(redisCommand(rc, "HSET " PREFIX "call:CA1 cb_due_at 0"));
    expect_admit(0, NULL, NULL);
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 4"));
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-1});
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 0);
}

static void test_dial_claimed_once(void **state)
{
    (void)state;
    enter_waiting("CA1");
    request_ok("CA1", "3", "60000");
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-1});
    /* Before the claim: a wrong attempt is stale. */
    redisReply *r = dial("CA1", "2");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    /* Two instances ask at once: exactly one dials. */
    redisReply *a = dial("CA1", "1");
    redisReply *b = RUN2(cg_lua_callback, "dial", "CA1", "1");
    assert_string_equal(str_at(a, 0), "dial");
    assert_string_equal(str_at(a, 1), "+15551234567");
    assert_string_equal(str_at(a, 2), "+15559999"); /* from the number dialled */
    assert_int_equal(int_at(a, 3), 1);
    assert_string_equal(str_at(b, 0), "stale");
    assert_string_equal(str_at(b, 1), "cb_dialing");
    freeReplyObject(a);
    freeReplyObject(b);
    assert_state("CA1", "cb_dialing");
    assert_int_equal(log_count("CALLBACK_DIAL"), 1);
    assert_int_equal(cmd_int("HGET " PREFIX "call:CA1 cb_dials"), 1);
    /* The slot's lease is the dialling lease. */
    long long lease = cmd_int("ZSCORE " PREFIX "active CA1");
    long long at = cmd_int("HGET " PREFIX "call:CA1 cb_dialed_at");
    assert_int_equal(lease - at, 70000);
}

static void test_answered_becomes_admission(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    request_ok("CA1", "3", "60000");
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 1"));
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-1});
    freeReplyObject(dial("CA1", "1"));
    redisReply *r = RUN(cg_lua_callback, "ringing", "CA1", "1", "CBLEG1");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    assert_state("CA1", "cb_ringing");
    /* While the phone rings there is no Vapi call at all. */
    assert_int_equal(
        cmd_int("EVAL %s 0 %s", "return #redis.call('KEYS', ARGV[1])", PREFIX "vapi:*"), 0);
    /* A webhook for another leg is stale. */
    r = answered("CA1", "1", "CBOTHER");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);

    r = answered("CA1", "1", "CBLEG1");
    assert_string_equal(str_at(r, 0), "admit");
    assert_string_equal(str_at(r, 1), "CBLEG1");
    assert_string_equal(str_at(r, 2), "+15551234567");
    assert_int_equal(int_at(r, 3), 1);
    /* The leg's queue context in the same reply: a callback, the caller's
     * first call's time and place, the number they dialled. */
    assert_int_equal(r->elements, 5);
    const redisReply *c = ctx_at(r, 4);
    assert_true(int_at(c, 0) >= 0);
    assert_int_equal(int_at(c, 1), 1);
    assert_string_equal(str_at(c, 2), "+15559999");
    assert_int_equal(int_at(c, 3), 1);
    assert_int_equal(int_at(c, 4), cmd_int("HGET " PREFIX "call:CA1 enqueued_at"));
    freeReplyObject(r);
    /* The slot moved to the leg, still one slot in all. */
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_true(cmd_int("ZSCORE " PREFIX "active CBLEG1") > 0);
    assert_state("CBLEG1", "admitting");
    assert_state("CA1", "called-back");
    assert_true(cmd_int("TTL " PREFIX "call:CA1") > 0);
    char *s = cmd_str("HGET " PREFIX "call:CBLEG1 callback_of");
    assert_string_equal(s, "CA1");
    free(s);
    assert_int_equal(cmd_int("HGET " PREFIX "call:CBLEG1 enqueued_at"),
                     cmd_int("HGET " PREFIX "call:CA1 enqueued_at"));
    s = cmd_str("GET " PREFIX "cbleg:CBLEG1");
    assert_string_equal(s, "CA1");
    free(s);
    assert_int_equal(log_count("CALLBACK_CONNECT"), 1);
    assert_int_equal(cmd_int("HGET " PREFIX "stats callbacks_connected"), 1);

    /* Twilio retried the answer webhook: no second admission. */
    r = answered("CA1", "1", "CBLEG1");
    assert_string_equal(str_at(r, 0), "existing");
    assert_string_equal(str_at(r, 1), "admitting");
    freeReplyObject(r);
    assert_int_equal(log_count("CALLBACK_CONNECT"), 1);

    /* From here the leg is an ordinary caller. */
    r = RUN(cg_lua_vapi_created, "CBLEG1", "1", "V1", "60000");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    r = RUN(cg_lua_connected, "CBLEG1", "1", "120000", "5000");
    assert_string_equal(str_at(r, 0), "connected");
    freeReplyObject(r);
    r = RUN(cg_lua_end, "vapi", "V1", "customer-ended-call", "5000", "1", "100", "30000", "i1",
            "0.2", "vapi-status", "60000");
    assert_string_equal(str_at(r, 0), "released");
    /* ... and its release admits the next caller in the same step, with
     * their context (not a callback). */
    assert_int_equal(r->elements, 7);
    assert_string_equal(str_at(r, 3), "CA2");
    assert_int_equal(int_at(ctx_at(r, 6), 1), 2);
    assert_int_equal(int_at(ctx_at(r, 6), 3), 0);
    freeReplyObject(r);
    assert_state("CBLEG1", "ended");
}

static void test_failed_retry_then_exhausted(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    enter_waiting("CA3");
    request_ok("CA1", "2", "60000");
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 1"));
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-1});
    long long ticket = cmd_int("HGET " PREFIX "call:CA1 ticket");
    /* A failure Twilio reports before the dial claim is stale. */
    redisReply *r = outcome("failed", "CA1", "1", "", "busy", "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    freeReplyObject(dial("CA1", "1"));
    freeReplyObject(RUN(cg_lua_callback, "ringing", "CA1", "1", "CBLEG1"));
    /* Another leg's status is stale. */
    r = outcome("failed", "CA1", "1", "CBOTHER", "busy", "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);

    r = outcome("failed", "CA1", "1", "CBLEG1", "busy", "0");
    assert_string_equal(str_at(r, 0), "retry");
    assert_string_equal(str_at(r, 1), "CA1");
    /* The freed slot went to CA2 in the same step, not back to CA1. */
    assert_int_equal(r->elements, 7);
    assert_string_equal(str_at(r, 3), "CA2");
    assert_int_equal(int_at(r, 5), 1);
    assert_int_equal(int_at(ctx_at(r, 6), 1), 2);
    freeReplyObject(r);
    assert_state("CA1", "callback");
    assert_int_equal(cmd_int("ZSCORE " PREFIX "waiting CA1"), ticket);
    assert_int_equal(cmd_int("ZRANK " PREFIX "waiting CA1"), 0);
    long long due = cmd_int("HGET " PREFIX "call:CA1 cb_due_at");
    long long dialed = cmd_int("HGET " PREFIX "call:CA1 cb_dialed_at");
    assert_true(due >= dialed + 60000);
    assert_int_equal(log_count("CALLBACK_RETRY"), 1);
    /* A duplicate of the status changes nothing. */
    r = outcome("failed", "CA1", "1", "CBLEG1", "busy", "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    assert_int_equal(log_count("CALLBACK_RETRY"), 1);

    /* Due again (time passed): the next free slot is CA1's, before CA3. */
    freeReplyObject(redisCommand(rc, "HSET " PREFIX "call:CA1 cb_due_at 0"));
    freeReplyObject(redisCommand(rc, "ZREM " PREFIX "active CA2"));
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-2});
    r = dial("CA1", "2");
    assert_int_equal(int_at(r, 3), 2);
    freeReplyObject(r);
    /* A late status of the first attempt is stale. */
    r = outcome("failed", "CA1", "1", "", "no-answer", "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    r = outcome("failed", "CA1", "2", "", "machine", "0");
    assert_string_equal(str_at(r, 0), "failed");
    assert_string_equal(str_at(r, 2), "machine");
    assert_string_equal(str_at(r, 3), "CA3");
    freeReplyObject(r);
    assert_state("CA1", "cb_failed");
    assert_int_equal(cmd_int("ZSCORE " PREFIX "waiting CA1"), -1);
    assert_int_equal(cmd_int("ZSCORE " PREFIX "active CA1"), -1);
    assert_true(cmd_int("TTL " PREFIX "call:CA1") > 0);
    assert_int_equal(log_count("CALLBACK_FAILED"), 1);
    assert_int_equal(log_count("CALLBACK_DIAL"), 2);
    assert_int_equal(cmd_int("HGET " PREFIX "stats callbacks_failed"), 1);
    /* An answer after the end is stale and admits nobody. */
    r = answered("CA1", "2", "CBLEG2");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS " PREFIX "call:CBLEG2"), 0);
}

/* A number Twilio refuses: no retry, whatever attempts are left. */
static void test_failed_final(void **state)
{
    (void)state;
    enter_waiting("CA1");
    request_ok("CA1", "3", "60000");
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-1});
    freeReplyObject(dial("CA1", "1"));
    redisReply *r = outcome("failed", "CA1", "1", "", "refused-21211", "1");
    assert_string_equal(str_at(r, 0), "failed");
    freeReplyObject(r);
    assert_state("CA1", "cb_failed");
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
}

static void test_expire(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    request_ok("CA1", "3", "60000");
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 1"));
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-1});
    /* The reserving instance died before its claim: nobody dialled, so the
     * caller goes back in their place with nothing counted, and takes the
     * freed slot again at once (still the head). */
    redisReply *r = outcome("expire", "CA1", "1", "", "lease", "0");
    assert_string_equal(str_at(r, 0), "requeued");
    assert_int_equal(r->elements, 7);
    assert_string_equal(str_at(r, 3), "CA1");
    assert_int_equal(int_at(r, 5), -2);
    freeReplyObject(r);
    assert_int_equal(cmd_int("HGET " PREFIX "call:CA1 cb_dials"), 0);
    assert_int_equal(log_count("CALLBACK_RETRY"), 0);
    /* The old attempt can no longer dial. */
    r = dial("CA1", "1");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    freeReplyObject(dial("CA1", "2"));
    /* Expired after the claim: whether the phone rang is unknown; the
     * attempt counts and the retry waits. */
    r = outcome("expire", "CA1", "2", "", "lease", "0");
    assert_string_equal(str_at(r, 0), "retry");
    assert_string_equal(str_at(r, 3), "CA2");
    freeReplyObject(r);
    assert_state("CA1", "callback");
    assert_int_equal(cmd_int("HGET " PREFIX "call:CA1 cb_dials"), 1);
    /* The expiry repeated (another sweeper): stale. */
    r = outcome("expire", "CA1", "2", "", "lease", "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
}

/* The sweep settles a callback's expired slot itself: never a call's
 * release (which would lose the callback), and not handed to the engine. */
static void test_sweep_settles_expired_dial(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    request_ok("CA1", "3", "60000");
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 1"));
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-1});
    freeReplyObject(dial("CA1", "1"));
    /* The lease runs out (the outcome never came). */
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "active 1 CA1"));
    redisReply *r = RUN(cg_lua_sweep, "100", "5000");
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    assert_state("CA1", "callback");
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
    assert_int_equal(log_count("CALLBACK_RETRY"), 1);
    /* The next pass fills the slot: CA2, since CA1 retries later. */
    expect_admit(1, (const char *[]){"CA2"}, (const long long[]){1});
    /* A reservation never claimed goes back with nothing counted, and
     * other expired members are still listed as before. */
    freeReplyObject(redisCommand(rc, "HSET " PREFIX "call:CA1 cb_due_at 0"));
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "active 1 CA2"));
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 2"));
    expect_admit(1, (const char *[]){"CA1"}, (const long long[]){-2});
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "active 1 CA1"));
    r = RUN(cg_lua_sweep, "100", "5000");
    assert_int_equal(r->elements, 6);
    assert_string_equal(str_at(r, 0), "CA2");
    assert_string_equal(str_at(r, 1), "admitting");
    freeReplyObject(r);
    assert_state("CA1", "callback");
    assert_int_equal(cmd_int("HGET " PREFIX "call:CA1 cb_dials"), 1);
    assert_int_equal(cmd_int("ZSCORE " PREFIX "active CA1"), -1);
}

/* The random run's reservations not yet settled. */
static struct {
    char sid[16];
    long long attempt;
    int dialled;
} pend[64];
static int pending_n;

/* Takes the admission list of a reply from element first on: a caller on
 * the line is connected at once, a reservation is remembered for dialling. */
static void take(const redisReply *r, size_t first)
{
    assert_true(r->elements <= first || (r->elements - first) % 4 == 0);
    for (size_t i = first; i + 3 < r->elements; i += 4) {
        long long att = r->element[i + 2]->integer;
        if (att < 0) {
            assert_true(pending_n < 64);
            snprintf(pend[pending_n].sid, sizeof pend[pending_n].sid, "%s", r->element[i]->str);
            pend[pending_n].attempt = -att;
            pend[pending_n].dialled = 0;
            pending_n++;
        } else {
            redisReply *c = RUN(cg_lua_connected, r->element[i]->str, "1", "120000", "5000");
            assert_string_equal(str_at(c, 0), "connected");
            freeReplyObject(c);
        }
    }
}

/* Random callers, callbacks and outcomes: never over the limit, admission
 * and reservations in ticket order (the window open, retries due at once:
 * nothing is passed over), at most one dial per attempt, and every callback
 * is somewhere (waiting, holding a slot) or ended called back or failed. */
static void test_random_invariants(void **state)
{
    (void)state;
    srand(4321);
    enum { N = 200 };
    int ncallers = 0, asked[N] = {0};
    char legs[N][16];
    int nlegs = 0;
    pending_n = 0;
    for (int step = 0; step < 4000; step++) {
        int op = rand() % 8;
        if (op == 0 && ncallers < N) {
            char sid[16];
            snprintf(sid, sizeof sid, "CA%d", ncallers++);
            enter_waiting(sid);
        } else if (op == 1 && ncallers > 0) {
            int i = rand() % ncallers;
            char sid[16];
            snprintf(sid, sizeof sid, "CA%d", i);
            redisReply *r =
                RUN(cg_lua_callback, "request", sid, "+15551234567", "1000", "2", "0", "70000");
            if (strcmp(str_at(r, 0), "callback") == 0)
                asked[i] = 1;
            freeReplyObject(r);
        } else if (op == 2) {
            redisReply *r = admit();
            long long lowest_left = -1;
            redisReply *w = redisCommand(rc, "ZRANGE " PREFIX "waiting 0 0 WITHSCORES");
            if (w->elements == 2)
                lowest_left = atoll(w->element[1]->str);
            freeReplyObject(w);
            for (size_t i = 0; i + 3 < r->elements; i += 4) {
                long long ticket = cmd_int("HGET " PREFIX "call:%s ticket", r->element[i]->str);
                if (lowest_left >= 0)
                    assert_true(ticket < lowest_left);
            }
            take(r, 0);
            freeReplyObject(r);
        } else if (op == 3 && pending_n > 0) {
            int k = rand() % pending_n;
            char sid[16], att[16];
            snprintf(sid, sizeof sid, "%s", pend[k].sid);
            snprintf(att, sizeof att, "%lld", pend[k].attempt);
            if (!pend[k].dialled) {
                /* Two instances claim the same attempt: one dials. */
                redisReply *a = dial(sid, att);
                redisReply *b = RUN2(cg_lua_callback, "dial", sid, att);
                assert_string_equal(str_at(a, 0), "dial");
                assert_string_equal(str_at(b, 0), "stale");
                freeReplyObject(a);
                freeReplyObject(b);
                pend[k].dialled = 1;
                continue;
            }
            pend[k] = pend[--pending_n];
            int fate = rand() % 3;
            if (fate == 0 && nlegs < N) {
                snprintf(legs[nlegs], sizeof legs[nlegs], "LEG%d", nlegs);
                redisReply *r = answered(sid, att, legs[nlegs]);
                assert_string_equal(str_at(r, 0), "admit");
                freeReplyObject(r);
                r = RUN(cg_lua_connected, legs[nlegs], "1", "120000", "5000");
                assert_string_equal(str_at(r, 0), "connected");
                freeReplyObject(r);
                nlegs++;
            } else {
                redisReply *r =
                    outcome(fate == 1 ? "failed" : "expire", sid, att, "", "no-answer", "0");
                assert_true(strcmp(str_at(r, 0), "retry") == 0 ||
                            strcmp(str_at(r, 0), "failed") == 0);
                take(r, 3);
                freeReplyObject(r);
            }
        } else if (op == 4) {
            /* A connected call ends (its lease ran out: the simplest end). */
            redisReply *m = redisCommand(rc, "ZRANGE " PREFIX "active 0 -1");
            for (size_t i = 0; i < m->elements; i++) {
                char *st = cmd_str("HGET " PREFIX "call:%s state", m->element[i]->str);
                int conn = strcmp(st, "connected") == 0;
                free(st);
                if (conn) {
                    redisReply *e = RUN(cg_lua_end, "lease", m->element[i]->str, "test", "5000",
                                        LIMIT, "100", "30000", "i1", "0.2", "lease", "60000");
                    take(e, 3);
                    freeReplyObject(e);
                    break;
                }
            }
            freeReplyObject(m);
        }
        assert_true(cmd_int("ZCARD " PREFIX "active") <= 3);
    }
    /* No callback lost. */
    int ended = 0;
    for (int i = 0; i < ncallers; i++) {
        if (!asked[i])
            continue;
        char sid[16];
        snprintf(sid, sizeof sid, "CA%d", i);
        char *st = cmd_str("HGET " PREFIX "call:%s state", sid);
        int in_wait = cmd_int("ZSCORE " PREFIX "waiting %s", sid) >= 0;
        int in_act = cmd_int("ZSCORE " PREFIX "active %s", sid) >= 0;
        if (strcmp(st, "callback") == 0) {
            assert_true(in_wait && !in_act);
        } else if (strcmp(st, "called-back") == 0 || strcmp(st, "cb_failed") == 0) {
            assert_true(!in_wait && !in_act);
            ended++;
        } else {
            assert_true(strcmp(st, "cb_reserved") == 0 || strcmp(st, "cb_dialing") == 0);
            assert_true(in_act && !in_wait);
        }
        free(st);
    }
    assert_int_equal(log_count("CALLBACK_CONNECT"), nlegs);
    assert_int_equal(
        log_count("CALLBACK_CONNECT") + cmd_int("HGET " PREFIX "stats callbacks_failed"), ended);
    assert_true(nlegs > 5);
    assert_true(cmd_int("HGET " PREFIX "stats callbacks_failed") > 0);
    assert_true(cmd_int("HGET " PREFIX "stats callbacks_retried") > 0);
}

/* lookup and resume: a caller who calls again while their callback waits
 * is found by number; waiting on the line takes the callback's ticket. */
static void test_lookup_and_resume(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    enter_waiting("CA3");
    redisReply *r = RUN(cg_lua_callback, "lookup", "+15551234567");
    assert_string_equal(str_at(r, 0), "none");
    freeReplyObject(r);
    request_ok("CA2", "3", "60000");
    long long ticket = cmd_int("ZSCORE " PREFIX "waiting CA2");
    r = RUN(cg_lua_callback, "lookup", "+15551234567");
    assert_string_equal(str_at(r, 0), "pending");
    assert_string_equal(str_at(r, 1), "CA2");
    assert_int_equal(int_at(r, 2), 2);
    assert_string_equal(str_at(r, 3), "callback");
    freeReplyObject(r);
    /* Another number has nothing pending. */
    r = RUN(cg_lua_callback, "lookup", "+15550001");
    assert_string_equal(str_at(r, 0), "none");
    freeReplyObject(r);

    r = RUN(cg_lua_callback, "resume", "CA2", "CA9", "+15551234567", "+15559999");
    assert_string_equal(str_at(r, 0), "resumed");
    assert_int_equal(int_at(r, 1), 2);
    freeReplyObject(r);
    assert_state("CA9", "waiting");
    assert_state("CA2", "cb_resumed");
    assert_int_equal(cmd_int("ZSCORE " PREFIX "waiting CA9"), ticket);
    assert_int_equal(cmd_int("EXISTS " PREFIX "call:CA2"), 1);
    assert_int_equal(cmd_int("ZRANK " PREFIX "waiting CA3"), 2);
    assert_int_equal(log_count("CALLBACK_CANCEL"), 1);
    assert_int_equal(cmd_int("HGET " PREFIX "stats callbacks_resumed"), 1);
    /* Done once: the callback is over, the number has nothing pending. */
    r = RUN(cg_lua_callback, "resume", "CA2", "CA8", "+15551234567", "+15559999");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS " PREFIX "call:CA8"), 0);
    r = RUN(cg_lua_callback, "lookup", "+15551234567");
    assert_string_equal(str_at(r, 0), "none");
    freeReplyObject(r);

    /* A callback being dialled is not resumed: the phone rings. */
    request_ok("CA3", "3", "60000");
    freeReplyObject(admit()); /* CA1, CA9, CA3's reservation */
    assert_state("CA3", "cb_reserved");
    r = RUN(cg_lua_callback, "lookup", "+15551234567");
    assert_string_equal(str_at(r, 0), "pending");
    assert_string_equal(str_at(r, 3), "cb_reserved");
    freeReplyObject(r);
    r = RUN(cg_lua_callback, "resume", "CA3", "CA7", "+15551234567", "+15559999");
    assert_string_equal(str_at(r, 0), "stale");
    assert_string_equal(str_at(r, 1), "cb_reserved");
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS " PREFIX "call:CA7"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_request_keeps_ticket, flush_open),
        cmocka_unit_test_setup(test_members_skip_callbacks, flush_open),
        cmocka_unit_test_setup(test_admit_orders_callbacks, flush_open),
        cmocka_unit_test_setup(test_admit_passes_callbacks_not_due, flush_open),
        cmocka_unit_test_setup(test_dial_claimed_once, flush_open),
        cmocka_unit_test_setup(test_answered_becomes_admission, flush_open),
        cmocka_unit_test_setup(test_failed_retry_then_exhausted, flush_open),
        cmocka_unit_test_setup(test_failed_final, flush_open),
        cmocka_unit_test_setup(test_expire, flush_open),
        cmocka_unit_test_setup(test_sweep_settles_expired_dial, flush_open),
        cmocka_unit_test_setup(test_random_invariants, flush_open),
        cmocka_unit_test_setup(test_lookup_and_resume, flush_open),
    };
    return cmocka_run_group_tests(tests, setup_callback_all, teardown_callback_all);
}
