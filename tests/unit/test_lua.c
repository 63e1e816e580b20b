/*
 * The gate's Lua scripts against a real redis-server: every state
 * transition, its edge cases (duplicates, stale attempts, orphans, caps,
 * backoff), and a randomized run checking that the active set never
 * exceeds the limit and that no caller disappears.
 */
#include "luafix.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/lua_scripts.h"

#define LIMIT "3"

/* enter: ARGV 2 sid 3 from 4 to 5 mode 6 max_queue 7 limit 8 fast 9 lease 10 inst 11 waited */
static redisReply *enter(const char *sid, const char *fast)
{
    return RUN(cg_lua_enter, sid, "+15550001", "+15559999", "incoming", "5", LIMIT, fast, "30000",
               "i1", "0");
}

static void enter_waiting(const char *sid)
{
    redisReply *r = enter(sid, "0");
    assert_string_equal(str_at(r, 0), "waiting");
    freeReplyObject(r);
}

/* admit: ARGV 2 limit 3 batch 4 lease 5 inst */
static redisReply *admit(void)
{
    return RUN(cg_lua_admit, LIMIT, "100", "30000", "i1");
}

/* end: ARGV 2 kind 3 id 4 reason 5 grace 6 limit 7 batch 8 lease 9 inst 10 alpha
 * 11 signal 12 orphan_hold */
static redisReply *end_signal(const char *kind, const char *id, const char *signal)
{
    return RUN(cg_lua_end, kind, id, "test", "5000", LIMIT, "100", "30000", "i1", "0.2", signal,
               "60000");
}

/* requeue: ARGV 2 sid 3 attempt 4 reason 5 overlimit 6 backoff 7 limit 8 orphan 9 hold
 * 10 overlimit_hold 11 permanent 12 max_attempts */
static redisReply *requeue(const char *sid, const char *attempt, const char *overlimit,
                           const char *backoff, const char *orphan, const char *permanent)
{
    return RUN(cg_lua_requeue, sid, attempt, "test", overlimit, backoff, LIMIT, orphan, "60000",
               "30000", permanent, "3");
}

static void connect_call(const char *sid, const char *attempt, const char *vid)
{
    redisReply *r = RUN(cg_lua_vapi_created, sid, attempt, vid, "60000");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    r = RUN(cg_lua_connected, sid, attempt, "120000", "5000");
    assert_string_equal(str_at(r, 0), "connected");
    freeReplyObject(r);
}

static void test_enter_fast_path(void **state)
{
    (void)state;
    redisReply *r = enter("CA1", "1");
    assert_string_equal(str_at(r, 0), "fast");
    /* The queue context comes with the admission: no wait, first, the
     * number dialled, no callback, entered now, no route. */
    assert_int_equal(r->elements, 3);
    const redisReply *c = ctx_at(r, 2);
    assert_int_equal(int_at(c, 0), 0);
    assert_int_equal(int_at(c, 1), 1);
    assert_string_equal(str_at(c, 2), "+15559999");
    assert_int_equal(int_at(c, 3), 0);
    assert_int_equal(int_at(c, 4), cmd_int("HGET " PREFIX "call:CA1 enqueued_at"));
    assert_true(int_at(c, 4) > 0);
    assert_string_equal(str_at(c, 5), "");
    freeReplyObject(r);
    assert_state("CA1", "admitting");
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 0);
    /* Idempotent on CallSid: the retry changes nothing. */
    r = enter("CA1", "1");
    assert_string_equal(str_at(r, 0), "existing");
    assert_string_equal(str_at(r, 1), "admitting");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_int_equal(cmd_int("XLEN " PREFIX "log"), 2); /* ENTER, ADMIT */
}

static void test_enter_queues_when_someone_waits(void **state)
{
    (void)state;
    enter_waiting("CA1");
    /* A slot is free but CA1 waits: CA2 must not jump the queue. */
    redisReply *r = enter("CA2", "1");
    assert_string_equal(str_at(r, 0), "waiting");
    assert_int_equal(int_at(r, 1), 2);
    /* A slot is free: the caller of enter must run an admission pass. */
    assert_int_equal(int_at(r, 2), 1);
    freeReplyObject(r);
    r = admit();
    assert_int_equal(r->elements, 8);
    assert_string_equal(str_at(r, 0), "CA1");
    assert_string_equal(str_at(r, 1), "+15550001");
    assert_int_equal(int_at(r, 2), 1);
    assert_string_equal(str_at(r, 4), "CA2");
    /* Each with its queue context: the place each had on entering. */
    assert_int_equal(int_at(ctx_at(r, 3), 1), 1);
    assert_int_equal(int_at(ctx_at(r, 7), 1), 2);
    assert_string_equal(str_at(ctx_at(r, 7), 2), "+15559999");
    assert_true(int_at(ctx_at(r, 7), 0) >= 0);
    freeReplyObject(r);
}

/* With every slot taken, enter says so: an admission pass would place
 * nobody, and the release admits in its own step. */
static void test_enter_reports_no_room_when_full(void **state)
{
    (void)state;
    for (int i = 1; i <= 3; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "CA%d", i);
        redisReply *r = enter(sid, "1");
        assert_string_equal(str_at(r, 0), "fast");
        freeReplyObject(r);
    }
    redisReply *r = enter("CA4", "1");
    assert_string_equal(str_at(r, 0), "waiting");
    assert_int_equal(int_at(r, 1), 1);
    assert_int_equal(int_at(r, 2), 0);
    freeReplyObject(r);
    /* The release of one slot admits CA4 in the same script. */
    connect_call("CA1", "1", "v1");
    r = end_signal("vapi", "v1", "end");
    freeReplyObject(r);
    assert_state("CA4", "admitting");
}

static void test_enter_overflow(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "CA%d", i);
        enter_waiting(sid);
    }
    redisReply *r = enter("CAX", "1");
    assert_string_equal(str_at(r, 0), "overflow");
    assert_int_equal(int_at(r, 1), 6);
    freeReplyObject(r);
    assert_state("CAX", "overflowed");
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 5);
    assert_true(cmd_int("TTL " PREFIX "call:CAX") > 0);
}

static void test_admit_respects_limits(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "CA%d", i);
        enter_waiting(sid);
    }
    redisReply *r = admit();
    assert_int_equal(r->elements, 12); /* limit 3 */
    freeReplyObject(r);
    r = admit();
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    /* The runtime limit wins over MAX_CONCURRENCY. */
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 4"));
    r = admit();
    assert_int_equal(r->elements, 4);
    assert_string_equal(str_at(r, 0), "CA3");
    freeReplyObject(r);
    /* An adaptive cap below it stops admission. */
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 10"));
    freeReplyObject(redisCommand(rc, "SET " PREFIX "cap 4 PX 60000"));
    r = admit();
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    /* So does a backoff. */
    freeReplyObject(redisCommand(rc, "DEL " PREFIX "cap"));
    freeReplyObject(redisCommand(rc, "SET " PREFIX "backoff 99999999999999 PX 60000"));
    r = admit();
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
}

static void test_vapi_created_orphan_when_gone(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    /* The caller hangs up while Vapi is creating the call. */
    redisReply *r = end_signal("twilio", "CA1", "twilio-status");
    assert_string_equal(str_at(r, 0), "gone");
    freeReplyObject(r);
    r = RUN(cg_lua_vapi_created, "CA1", "1", "V1", "60000");
    assert_string_equal(str_at(r, 0), "orphan");
    freeReplyObject(r);
    assert_state("CA1", "abandoned");
    /* The Vapi call still counts against the limit under its own name. */
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_true(cmd_int("ZSCORE " PREFIX "active v:V1") > 0);
    /* Vapi's end of that call frees the slot. */
    r = end_signal("vapi", "V1", "vapi-status");
    assert_string_equal(str_at(r, 0), "released-orphan");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
}

static void test_full_lifecycle_and_dedupe(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    enter_waiting("CA2");
    connect_call("CA1", "1", "V1");
    assert_state("CA1", "connected");

    /* Twilio's hang-up does not free the slot: Vapi still counts the call. */
    redisReply *r = end_signal("twilio", "CA1", "twilio-status");
    assert_string_equal(str_at(r, 0), "ending");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);

    /* Vapi's end frees it and admits CA2 in the same step. */
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 1"));
    r = end_signal("vapi", "V1", "vapi-status");
    assert_string_equal(str_at(r, 0), "released");
    assert_string_equal(str_at(r, 1), "CA1");
    assert_int_equal(r->elements, 7);
    assert_string_equal(str_at(r, 3), "CA2");
    /* CA2's queue context in the same reply: first in line on entering. */
    assert_int_equal(int_at(ctx_at(r, 6), 1), 1);
    assert_string_equal(str_at(ctx_at(r, 6), 2), "+15559999");
    freeReplyObject(r);
    assert_state("CA1", "ended");
    assert_state("CA2", "admitting");

    /* The end-of-call-report that follows is a duplicate: nothing changes. */
    r = end_signal("vapi", "V1", "vapi-report");
    assert_string_equal(str_at(r, 0), "duplicate");
    assert_int_equal(r->elements, 3);
    freeReplyObject(r);
    r = end_signal("twilio", "CA1", "twilio-status");
    assert_string_equal(str_at(r, 0), "duplicate");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_int_equal(cmd_int("HGET " PREFIX "stats released"), 1);
    /* Unknown ids change nothing. */
    r = end_signal("vapi", "nope", "vapi-status");
    assert_string_equal(str_at(r, 0), "unknown");
    freeReplyObject(r);
    r = end_signal("twilio", "CAnope", "twilio-status");
    assert_string_equal(str_at(r, 0), "unknown");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_true(cmd_int("HEXISTS " PREFIX "stats service_ms_ewma") == 1);
}

static long long redis_now_ms(void)
{
    redisReply *r = redisCommand(rc, "TIME");
    assert_non_null(r);
    assert_true(r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    long long ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
}

static double stat_num(const char *field)
{
    char *s = cmd_str("HGET " PREFIX "stats %s", field);
    double v = strtod(s, NULL);
    free(s);
    return v;
}

/* A caller admitted hold_ms ago (by Redis' clock) whose call Vapi ends now. */
static void release_after(const char *sid, const char *vid, long long hold_ms)
{
    freeReplyObject(enter(sid, "1"));
    connect_call(sid, "1", vid);
    freeReplyObject(
        redisCommand(rc, "HSET " PREFIX "call:%s admitted_at %lld", sid, redis_now_ms() - hold_ms));
    redisReply *r = end_signal("vapi", vid, "vapi-status");
    assert_string_equal(str_at(r, 0), "released");
    freeReplyObject(r);
}

/* Within the few ms between reading Redis' clock and the script's run. */
static void assert_about(double v, double want)
{
    if (!(v > want - 50 && v < want + 50))
        fail_msg("%.1f is not about %.1f", v, want);
}

static void test_service_mean_warms_up(void **state)
{
    (void)state;
    /* The plain mean of the first 1/alpha holds (alpha 0.2 here: five)... */
    release_after("CA1", "V1", 10000);
    assert_about(stat_num("service_ms_ewma"), 10000);
    release_after("CA2", "V2", 20000);
    assert_about(stat_num("service_ms_ewma"), 15000);
    release_after("CA3", "V3", 60000);
    assert_about(stat_num("service_ms_ewma"), 30000);
    release_after("CA4", "V4", 70000);
    assert_about(stat_num("service_ms_ewma"), 40000);
    release_after("CA5", "V5", 40000);
    assert_about(stat_num("service_ms_ewma"), 40000);
    assert_int_equal(cmd_int("HGET " PREFIX "stats service_samples"), 5);
    /* ... then the EWMA: 40 + 0.2 * (100 - 40), not the mean of six (50). */
    release_after("CA6", "V6", 100000);
    assert_about(stat_num("service_ms_ewma"), 52000);
    /* A mean kept without a count (before the count existed) goes on as an
     * EWMA rather than being replaced by the next sample. */
    freeReplyObject(redisCommand(rc, "HDEL " PREFIX "stats service_samples"));
    release_after("CA7", "V7", 2000);
    assert_about(stat_num("service_ms_ewma"), 42000);
    assert_int_equal(cmd_int("HGET " PREFIX "stats service_samples"), 1);
}

static void test_abandon_while_waiting(void **state)
{
    (void)state;
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 0"));
    enter_waiting("CA1");
    enter_waiting("CA2");
    enter_waiting("CA3");
    redisReply *r = end_signal("twilio", "CA2", "queue-exit");
    assert_string_equal(str_at(r, 0), "abandoned");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 2);
    assert_int_equal(cmd_int("ZRANK " PREFIX "waiting CA3"), 1);
    assert_state("CA2", "abandoned");
    r = end_signal("twilio", "CA2", "twilio-status");
    assert_string_equal(str_at(r, 0), "duplicate");
    freeReplyObject(r);
}

static void test_requeue_keeps_place_and_caps(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    redisReply *r = RUN(cg_lua_admit, LIMIT, "1", "30000", "i1"); /* batch of one */
    assert_string_equal(str_at(r, 0), "CA1");
    freeReplyObject(r);
    enter_waiting("CA3");
    /* Vapi says over limit: CA1 goes back to the head, ahead of CA2 and CA3. */
    r = requeue("CA1", "1", "1", "1000", "", "0");
    assert_string_equal(str_at(r, 0), "requeued");
    assert_int_equal(int_at(r, 1), 1);
    freeReplyObject(r);
    assert_state("CA1", "waiting");
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
    /* The cap is what was active besides CA1 (nothing), and admission backs
     * off. */
    assert_int_equal(cmd_int("GET " PREFIX "cap"), 0);
    assert_true(cmd_int("PTTL " PREFIX "backoff") > 0);
    r = admit();
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    /* A stale attempt changes nothing. */
    r = requeue("CA1", "7", "0", "0", "", "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 3);
}

static void test_requeue_permanent_gives_up(void **state)
{
    (void)state;
    enter_waiting("CA1");
    for (int attempt = 1; attempt <= 3; attempt++) {
        redisReply *r = admit();
        assert_string_equal(str_at(r, 0), "CA1");
        assert_int_equal(int_at(r, 2), attempt);
        freeReplyObject(r);
        char a[8];
        snprintf(a, sizeof a, "%d", attempt);
        r = requeue("CA1", a, "0", "0", "", "1");
        assert_string_equal(str_at(r, 0), attempt < 3 ? "requeued" : "overflow");
        freeReplyObject(r);
    }
    assert_state("CA1", "overflowed");
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 0);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
}

static void test_requeue_with_orphan_holds_slot(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    /* Vapi created the call but the Twilio update never got through. */
    redisReply *r = requeue("CA1", "1", "0", "0", "V9", "0");
    assert_string_equal(str_at(r, 0), "requeued");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_true(cmd_int("ZSCORE " PREFIX "active v:V9") > 0);
}

static void test_vapi_end_before_connect_requeues(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    redisReply *r = RUN(cg_lua_vapi_created, "CA1", "1", "V1", "60000");
    freeReplyObject(r);
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 0"));
    r = end_signal("vapi", "V1", "vapi-status");
    assert_string_equal(str_at(r, 0), "requeued");
    freeReplyObject(r);
    assert_state("CA1", "waiting");
    /* The late Twilio success of that attempt is stale now. */
    r = RUN(cg_lua_connected, "CA1", "1", "120000", "5000");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
}

static void test_no_orphan_slot_after_vapi_end(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    redisReply *r = RUN(cg_lua_vapi_created, "CA1", "1", "V5", "60000");
    freeReplyObject(r);
    /* Vapi ended the call before the caller reached it (the caller is
     * requeued), and then the admission gives up on the Twilio update: no
     * slot may be held for a call that is already over. */
    r = end_signal("vapi", "V5", "vapi-status");
    assert_string_equal(str_at(r, 0), "requeued");
    freeReplyObject(r);
    r = requeue("CA1", "1", "0", "0", "V5", "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    /* An unknown id leaves no trace at all. */
    r = end_signal("vapi", "V6", "vapi-status");
    assert_string_equal(str_at(r, 0), "unknown");
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS " PREFIX "vend:V6"), 0);
    /* (CA1 itself was admitted again into the freed slot.) */
    assert_int_equal(cmd_int("ZSCORE " PREFIX "active v:V5"), -1);
}

static void test_cap_rises_with_releases(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    connect_call("CA1", "1", "V1");
    freeReplyObject(enter("CA2", "1"));
    connect_call("CA2", "1", "V2");
    freeReplyObject(redisCommand(rc, "SET " PREFIX "cap 1 PX 60000"));
    redisReply *r = end_signal("vapi", "V1", "vapi-status");
    freeReplyObject(r);
    assert_int_equal(cmd_int("GET " PREFIX "cap"), 2);
    r = end_signal("vapi", "V2", "vapi-status");
    freeReplyObject(r);
    /* Back at the limit: the cap is gone. */
    assert_int_equal(cmd_int("EXISTS " PREFIX "cap"), 0);
}

static void test_position_and_overflow(void **state)
{
    (void)state;
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 0"));
    enter_waiting("CA1");
    enter_waiting("CA2");
    /* position: ARGV 2 sid 3 max_wait 4 announce_every 5 limit */
    redisReply *r = RUN(cg_lua_position, "CA2", "0", "60000", LIMIT);
    assert_string_equal(str_at(r, 0), "waiting");
    assert_int_equal(int_at(r, 1), 2);
    assert_int_equal(int_at(r, 9), 1);   /* first time: announce */
    assert_int_equal(int_at(r, 5), -1);  /* no call length observed yet */
    assert_int_equal(int_at(r, 10), -1); /* nor an admission */
    freeReplyObject(r);
    r = RUN(cg_lua_position, "CA2", "0", "60000", LIMIT);
    assert_int_equal(int_at(r, 9), 0); /* not again before the interval */
    freeReplyObject(r);
    /* Means in whole ms; one under a millisecond is still an observation. */
    freeReplyObject(
        redisCommand(rc, "HSET " PREFIX "stats service_ms_ewma 12345.6 admit_ms_ewma 0.0"));
    r = RUN(cg_lua_position, "CA2", "0", "60000", LIMIT);
    assert_int_equal(int_at(r, 5), 12346);
    assert_int_equal(int_at(r, 10), 1);
    freeReplyObject(r);
    r = RUN(cg_lua_position, "CAnope", "0", "60000", LIMIT);
    assert_string_equal(str_at(r, 0), "unknown");
    freeReplyObject(r);
    /* Past the maximum wait the caller overflows, atomically. */
    freeReplyObject(redisCommand(rc, "HINCRBY " PREFIX "call:CA1 enqueued_at %d", -10000));
    r = RUN(cg_lua_position, "CA1", "5000", "60000", LIMIT);
    assert_string_equal(str_at(r, 0), "overflow");
    freeReplyObject(r);
    assert_state("CA1", "overflowed");
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 1);
}

static void test_sweep_claims_expired(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    connect_call("CA1", "1", "V1");
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "active 1 CA1"));
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "active 1 v:V7"));
    redisReply *r = RUN(cg_lua_sweep, "10", "10000");
    assert_int_equal(r->elements, 12);
    freeReplyObject(r);
    /* Claimed: a second sweep right away sees nothing. */
    r = RUN(cg_lua_sweep, "10", "10000");
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    r = RUN(cg_lua_extend, "CA1", "120000");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = end_signal("lease", "v:V7", "lease");
    assert_string_equal(str_at(r, 0), "released-orphan");
    freeReplyObject(r);
    r = end_signal("lease", "CA1", "lease");
    assert_string_equal(str_at(r, 0), "released");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
}

static void test_expire_admission_requeues_and_holds(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 1"));
    redisReply *r = end_signal("expire-admission", "CA1", "lease");
    assert_string_equal(str_at(r, 0), "requeued");
    freeReplyObject(r);
    assert_state("CA1", "waiting");
    /* The unknowable Vapi call keeps its slot: the caller waits for it. */
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 1);
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 1);
}

static void test_snapshot(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    enter_waiting("CA2");
    redisReply *r = RUN(cg_lua_snapshot, LIMIT);
    assert_int_equal(int_at(r, 0), 1);
    assert_int_equal(int_at(r, 1), 1);
    assert_int_equal(int_at(r, 2), 3);
    assert_int_equal(int_at(r, 3), 3);
    freeReplyObject(r);
}

/* queue: ARGV 2 limit 3 max_listed. The operator's view: slots of every
 * kind, callers in order, numbers as their last four digits only. */
static void test_queue_view(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    connect_call("CA1", "1", "V1");
    /* A Vapi call without a caller, and an admission whose owner died. */
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "active 1 v:V9 2 u:CA7:1"));
    enter_waiting("CA2");
    enter_waiting("CA3");
    freeReplyObject(RUN(cg_lua_enter, "CA4", "anonymous", "+15559999", "incoming", "5", LIMIT, "0",
                        "30000", "i1", "0"));
    freeReplyObject(redisCommand(rc, "HINCRBY " PREFIX "call:CA2 enqueued_at %d", -5000));
    freeReplyObject(redisCommand(rc, "HSET " PREFIX "call:CA3 attempts 1"));

    redisReply *r = RUN(cg_lua_queue, LIMIT, "10");
    assert_true(int_at(r, 0) > 0);      /* Redis' clock */
    assert_int_equal(int_at(r, 1), 3);  /* effective limit */
    assert_int_equal(int_at(r, 2), 3);  /* slots held */
    assert_int_equal(int_at(r, 3), 3);  /* callers waiting */
    assert_true(int_at(r, 4) >= 5000);  /* the oldest wait: CA2's */
    assert_int_equal(int_at(r, 5), -1); /* no call length observed yet */
    /* CA1's admission: under a ms counts as 1 (a slow build may take a few) */
    assert_true(int_at(r, 8) >= 1 && int_at(r, 8) < 1000);
    assert_true(int_at(r, 9) >= 5000);  /* the head's wait */
    assert_int_equal(int_at(r, 10), 3); /* slots listed */
    assert_int_equal(int_at(r, 11), 3); /* callers listed */
    assert_int_equal(r->elements, 12 + 3 * 7 + 3 * 5);
    /* Slots by lease deadline: the orphan, the unknown admission, CA1. */
    assert_string_equal(str_at(r, 12), "v:V9");
    assert_string_equal(str_at(r, 13), "orphan");
    assert_string_equal(str_at(r, 14), "");
    assert_string_equal(str_at(r, 17), "V9");
    assert_string_equal(str_at(r, 19), "u:CA7:1");
    assert_string_equal(str_at(r, 20), "unknown");
    assert_string_equal(str_at(r, 21), "CA7");
    assert_int_equal(int_at(r, 23), 0);
    assert_string_equal(str_at(r, 26), "CA1");
    assert_string_equal(str_at(r, 27), "call");
    assert_string_equal(str_at(r, 28), "CA1");
    assert_string_equal(str_at(r, 29), "0001");
    assert_true(int_at(r, 30) > 0); /* connected_at */
    assert_string_equal(str_at(r, 31), "V1");
    assert_string_equal(str_at(r, 32), "connected");
    /* Callers in order: sid, last four, enqueued_at, attempts, callback. */
    assert_string_equal(str_at(r, 33), "CA2");
    assert_string_equal(str_at(r, 34), "0001");
    assert_int_equal(int_at(r, 36), 0);
    assert_int_equal(int_at(r, 37), 0); /* on the line, not a callback */
    assert_string_equal(str_at(r, 38), "CA3");
    assert_int_equal(int_at(r, 41), 1); /* requeued once */
    assert_string_equal(str_at(r, 43), "CA4");
    assert_string_equal(str_at(r, 44), ""); /* not a number: nothing shown */
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            assert_null(strstr(r->element[i]->str, "5550001"));
    freeReplyObject(r);

    /* Bounded lists; the counts stay the totals. */
    r = RUN(cg_lua_queue, LIMIT, "2");
    assert_int_equal(int_at(r, 2), 3);
    assert_int_equal(int_at(r, 3), 3);
    assert_int_equal(int_at(r, 10), 2);
    assert_int_equal(int_at(r, 11), 2);
    assert_int_equal(r->elements, 12 + 2 * 7 + 2 * 5);
    freeReplyObject(r);
    /* A read: nothing changed. */
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 3);
    assert_state("CA2", "waiting");
}

/* Random operations from many simulated instances, checking after each step
 * that the limit holds and that every caller is in exactly one place. */
static void test_random_invariants(void **state)
{
    (void)state;
    srand(1234);
    int ncallers = 0;
    char vids[400][16];
    int nv = 0;
    for (int step = 0; step < 3000; step++) {
        int op = rand() % 8;
        if (op == 0 && ncallers < 300) {
            char sid[16];
            snprintf(sid, sizeof sid, "CA%d", ncallers++);
            freeReplyObject(enter(sid, rand() % 2 ? "1" : "0"));
        } else if (op == 1) {
            redisReply *r = admit();
            assert_int_equal(r->elements % 4, 0);
            for (size_t i = 0; i + 3 < r->elements; i += 4) {
                const char *sid = r->element[i]->str;
                /* Every admitted caller's context, read in the same step. */
                const redisReply *c = ctx_at(r, i + 3);
                assert_true(int_at(c, 0) >= 0 && int_at(c, 1) >= 1);
                char att[16];
                snprintf(att, sizeof att, "%lld", r->element[i + 2]->integer);
                int fate = rand() % 3;
                if (fate == 0 && nv < 400) {
                    snprintf(vids[nv], sizeof vids[nv], "V%d", nv);
                    redisReply *x = RUN(cg_lua_vapi_created, sid, att, vids[nv], "60000");
                    freeReplyObject(x);
                    x = RUN(cg_lua_connected, sid, att, "120000", "5000");
                    freeReplyObject(x);
                    nv++;
                } else if (fate == 1) {
                    freeReplyObject(requeue(sid, att, rand() % 2 ? "1" : "0", "0", "", "0"));
                }
            }
            freeReplyObject(r);
        } else if (op == 2 && nv > 0) {
            freeReplyObject(end_signal("vapi", vids[rand() % nv], "vapi-status"));
        } else if (op == 3 && ncallers > 0) {
            char sid[16];
            snprintf(sid, sizeof sid, "CA%d", rand() % ncallers);
            freeReplyObject(end_signal("twilio", sid, "twilio-status"));
        } else if (op == 4) {
            freeReplyObject(redisCommand(rc, "DEL " PREFIX "cap " PREFIX "backoff"));
        }
        long long active = cmd_int("ZCARD " PREFIX "active");
        long long cap = cmd_int("EXISTS " PREFIX "cap") ? cmd_int("GET " PREFIX "cap") : 3;
        (void)cap;
        /* Orphan slots may be added on top of callers' slots only when Vapi
         * made a call the gate cannot use; they never come from admission,
         * so callers in admitting/connected/ending never exceed the limit. */
        long long callers_active = 0;
        redisReply *m = redisCommand(rc, "ZRANGE " PREFIX "active 0 -1");
        for (size_t i = 0; i < m->elements; i++)
            if (strncmp(m->element[i]->str, "v:", 2) != 0 &&
                strncmp(m->element[i]->str, "u:", 2) != 0)
                callers_active++;
        freeReplyObject(m);
        assert_true(callers_active <= 3);
        assert_true(active >= callers_active);
        /* Nobody is both waiting and active. */
        redisReply *w = redisCommand(rc, "ZRANGE " PREFIX "waiting 0 -1");
        for (size_t i = 0; i < w->elements; i++)
            assert_int_equal(cmd_int("ZSCORE " PREFIX "active %s", w->element[i]->str), -1);
        freeReplyObject(w);
    }
}

/* One gate per Twilio queue: the first gate's claim holds, is renewed by
 * it, and refuses a second gate with the first one's name and time left. */
static void test_claim_one_gate_per_queue(void **state)
{
    (void)state;
    const char *key = "cg:queue-claim:AC1:customer-support";
    redisReply *r = redisCommand(rc, "EVAL %s 1 %s %s %s", cg_lua_claim, key, "cg:{a}:", "30000");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* Renewed by the same gate. */
    r = redisCommand(rc, "EVAL %s 1 %s %s %s", cg_lua_claim, key, "cg:{a}:", "60000");
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = redisCommand(rc, "PTTL %s", key);
    assert_true(r->integer > 30000 && r->integer <= 60000);
    freeReplyObject(r);
    /* Another gate is told who holds it and for how long. */
    r = redisCommand(rc, "EVAL %s 1 %s %s %s", cg_lua_claim, key, "cg:{b}:", "30000");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(str_at(r, 0), "cg:{a}:");
    assert_true(r->element[1]->integer > 30000);
    freeReplyObject(r);
    r = redisCommand(rc, "GET %s", key);
    assert_string_equal(r->str, "cg:{a}:");
    freeReplyObject(r);
    /* Once the first gate's claim has expired, the second one may take it. */
    freeReplyObject(redisCommand(rc, "PEXPIRE %s 1", key));
    cgt_sleep_ms(20);
    r = redisCommand(rc, "EVAL %s 1 %s %s %s", cg_lua_claim, key, "cg:{b}:", "30000");
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
}

/* ---- repair after lost writes ---- */

/* repair_begin: ARGV 2 token 3 hold 4 lost */
static char *repair_begin(const char *token, const char *lost)
{
    redisReply *r = RUN(cg_lua_repair_begin, token, "30000", lost);
    char *w = strdup(str_at(r, 0));
    freeReplyObject(r);
    return w;
}

/* repair: ARGV 2 token 3 lease 4 orphan_hold 5 calls 6 force */
static redisReply *repair(const char *token, const char *calls)
{
    return RUN(cg_lua_repair, token, "120000", "60000", calls, "0");
}

static void expect_word(char *got, const char *want)
{
    assert_string_equal(got, want);
    free(got);
}

/* A Redis with no trace of the gate (a first start) says so, for the log's
 * tone; one where the gate has lived does not. */
static void test_repair_begin_fresh(void **state)
{
    (void)state;
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    redisReply *r = RUN(cg_lua_repair_begin, "t1", "30000", "0");
    assert_string_equal(str_at(r, 0), "begin");
    assert_int_equal(r->element[1]->integer, 1);
    freeReplyObject(r);
    r = RUN(cg_lua_repair_begin, "t2", "30000", "0");
    assert_string_equal(str_at(r, 0), "busy");
    assert_int_equal(r->element[1]->integer, 1);
    freeReplyObject(r);
    cgt_hi_flush(rc, PREFIX);
    freeReplyObject(enter("CA1", "1"));
    r = RUN(cg_lua_repair_begin, "t1", "30000", "1");
    assert_string_equal(str_at(r, 0), "begin");
    assert_int_equal(r->element[1]->integer, 0);
    freeReplyObject(r);
}

/* Admission waits for the marker; a lost write (a reconnect) drops it. */
static void test_repair_marker_gates_admission(void **state)
{
    (void)state;
    expect_word(repair_begin("t1", "0"), "intact");
    expect_word(repair_begin("t1", "1"), "begin"); /* reconnected: suspect */
    assert_int_equal(cmd_int("EXISTS " PREFIX "intact"), 0);
    /* Nobody is admitted, not even on the fast path, until the repair. */
    redisReply *r = enter("CA1", "1");
    assert_string_equal(str_at(r, 0), "waiting");
    freeReplyObject(r);
    r = admit();
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    /* Another instance finds the repair claimed. */
    expect_word(repair_begin("t2", "0"), "busy");
    /* The holder takes its claim up again (its last attempt failed). */
    expect_word(repair_begin("t1", "0"), "begin");
    /* Someone else's claim (t2 never got it) cannot complete it. */
    r = repair("t2", "");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    r = repair("t1", "");
    assert_string_equal(str_at(r, 0), "repaired");
    freeReplyObject(r);
    expect_word(repair_begin("t3", "0"), "intact");
    r = admit();
    assert_int_equal(r->elements, 4);
    assert_string_equal(str_at(r, 0), "CA1");
    freeReplyObject(r);
}

/* A wipe between begin and repair (FLUSHALL) invalidates the list read. */
static void test_repair_stale_after_wipe(void **state)
{
    (void)state;
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    expect_word(repair_begin("t1", "0"), "begin");
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    redisReply *r = repair("t1", "v1\tCA1\t1\n");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS " PREFIX "intact"), 0);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
}

/* Every live call is counted once, whatever Redis kept of it. */
static void test_repair_counts_live_calls(void **state)
{
    (void)state;
    /* CA1 connected and intact; CA2 rolled back to waiting (its admission
     * lost); CA3 held as an orphan v:v3 after a requeue; CA4 lost entirely;
     * CA5 mid-admission (no Vapi id recorded yet); v6's end was seen; CA7's
     * record kept, its slot lost. */
    enter_waiting("CA1");
    enter_waiting("CA2");
    redisReply *r = admit();
    assert_int_equal(r->elements, 8);
    freeReplyObject(r);
    connect_call("CA1", "1", "v1");
    r = requeue("CA2", "1", "0", "0", "", "0"); /* back to waiting, attempts 1 */
    freeReplyObject(r);
    enter_waiting("CA3");
    enter_waiting("CA5");
    enter_waiting("CA7");
    r = admit(); /* CA2 (attempt 2), CA3; LIMIT 3 */
    freeReplyObject(r);
    r = RUN(cg_lua_vapi_created, "CA3", "1", "v3", "60000");
    freeReplyObject(r);
    r = requeue("CA3", "1", "0", "0", "v3", "0");
    assert_string_equal(str_at(r, 0), "requeued");
    freeReplyObject(r);
    /* CA2's attempt 2 lost: back to waiting with attempts 1, as before it. */
    freeReplyObject(redisCommand(rc, "ZREM " PREFIX "active CA2"));
    freeReplyObject(redisCommand(rc, "HSET " PREFIX "call:CA2 state waiting attempts 1"));
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "waiting 2 CA2"));
    /* CA5 and CA7 admitted now, CA7 connected, then its slot lost. */
    freeReplyObject(redisCommand(rc, "DEL " PREFIX "cap " PREFIX "backoff"));
    freeReplyObject(redisCommand(rc, "ZREM " PREFIX "waiting CA2 CA3"));
    r = RUN(cg_lua_admit, "10", "100", "30000", "i1");
    freeReplyObject(r);
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "waiting 2 CA2"));
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "waiting 3 CA3"));
    connect_call("CA7", "1", "v7");
    freeReplyObject(redisCommand(rc, "ZREM " PREFIX "active CA7"));
    freeReplyObject(redisCommand(rc, "SET " PREFIX "vend:v6 1"));
    assert_state("CA5", "admitting");

    enter_waiting("CA9"); /* its admission (attempt 2) may be in flight */
    expect_word(repair_begin("tok", "1"), "begin");
    r = repair("tok", "v1\tCA1\t1\t1\n"
                      "v2\tCA2\t2\t1\n"
                      "v3\tCA3\t1\t1\n"
                      "v4\tCA4\t1\t1\n"
                      "v5\tCA5\t1\t0\n"
                      "v6\tCA6\t1\t1\n"
                      "v7\tCA7\t1\t1\n"
                      "v8\t\t\t0\n"
                      "v9\tCA9\t2\t0\n"
                      "v1\tCA1\t1\t1\n");
    /* listed twice (pages overlap) */ /* listed twice (pages overlap) */
    assert_string_equal(str_at(r, 0), "repaired");
    assert_int_equal(int_at(r, 1), 2); /* CA2, CA7 */
    assert_int_equal(int_at(r, 2), 3); /* v:v4, v:v8, v:v9 */
    assert_int_equal(int_at(r, 3), 4); /* CA1 twice, v:v3, CA5 */
    freeReplyObject(r);

    /* CA2 talks to the assistant: connected, out of the queue, not
     * admitted again. */
    assert_state("CA2", "connected");
    assert_int_equal(cmd_int("ZRANK " PREFIX "waiting CA2"), -1);
    assert_true(cmd_int("ZSCORE " PREFIX "active CA2") > 0);
    char *v = cmd_str("GET " PREFIX "vapi:v2");
    assert_string_equal(v, "CA2");
    free(v);
    /* CA9's newer call is not streaming yet: its admission may still be in
     * flight, so the call counts as an orphan and CA9 waits on. */
    assert_state("CA9", "waiting");
    assert_true(cmd_int("ZSCORE " PREFIX "active v:v9") > 0);
    /* CA3 still waits; its old call stays an orphan. */
    assert_state("CA3", "waiting");
    assert_true(cmd_int("ZSCORE " PREFIX "active v:v3") > 0);
    assert_true(cmd_int("ZSCORE " PREFIX "active v:v4") > 0);
    assert_true(cmd_int("ZSCORE " PREFIX "active v:v8") > 0);
    assert_true(cmd_int("ZSCORE " PREFIX "active CA7") > 0);
    assert_int_equal(cmd_int("ZSCORE " PREFIX "active v:v6"), -1);
    assert_int_equal(cmd_int("ZSCORE " PREFIX "active v:v5"), -1);
    /* CA1, CA2, CA5, CA7, v:v3, v:v4, v:v8, v:v9 */
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 8);
    assert_int_equal(cmd_int("EXISTS " PREFIX "intact"), 1);
    /* Over the limit (3) now: nobody is admitted until calls end. */
    r = admit();
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    /* v4's end releases its orphan slot. */
    r = end_signal("vapi", "v4", "vapi");
    assert_string_equal(str_at(r, 0), "released-orphan");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 7);
}

/* A requeued caller's next admission carries the context of their first
 * entry (their wait counted from then, their place then), with attempt 2
 * (the gate says callgateRequeued from it); a record without those fields
 * reads as unknown. */
static void test_admission_context_after_requeue(void **state)
{
    (void)state;
    enter_waiting("CA1");
    enter_waiting("CA2");
    freeReplyObject(redisCommand(rc, "HINCRBY " PREFIX "call:CA2 enqueued_at -4000"));
    redisReply *r = admit();
    assert_int_equal(r->elements, 8);
    freeReplyObject(r);
    r = requeue("CA2", "1", "0", "0", "", "0");
    assert_string_equal(str_at(r, 0), "requeued");
    freeReplyObject(r);
    r = admit();
    assert_int_equal(r->elements, 4);
    assert_string_equal(str_at(r, 0), "CA2");
    assert_int_equal(int_at(r, 2), 2);
    const redisReply *c = ctx_at(r, 3);
    assert_true(int_at(c, 0) >= 4000 && int_at(c, 0) < 60000);
    assert_int_equal(int_at(c, 1), 2);
    assert_string_equal(str_at(c, 2), "+15559999");
    assert_int_equal(int_at(c, 3), 0);
    assert_int_equal(int_at(c, 4), cmd_int("HGET " PREFIX "call:CA2 enqueued_at"));
    freeReplyObject(r);

    /* A caller whose record lacks the context's fields (an older record):
     * unknown wait, no position, no number, still admitted. */
    enter_waiting("CA3");
    freeReplyObject(redisCommand(rc, "HDEL " PREFIX "call:CA3 enqueued_at entry_pos to"));
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 4"));
    r = admit();
    assert_int_equal(r->elements, 4);
    assert_string_equal(str_at(r, 0), "CA3");
    c = ctx_at(r, 3);
    assert_int_equal(int_at(c, 0), -1);
    assert_int_equal(int_at(c, 1), 0);
    assert_string_equal(str_at(c, 2), "");
    assert_int_equal(int_at(c, 4), 0);
    freeReplyObject(r);
}

/* control.lua: the assistant hands its caller on. check claims the call,
 * record moves it to ending with the end grace as lease (the slot stays
 * until Vapi's end), once. */
static void test_control(void **state)
{
    (void)state;
    freeReplyObject(enter("CA1", "1"));
    enter_waiting("CA2");
    connect_call("CA1", "1", "V1");
    redisReply *r;

    /* ARGV 2 mode 3 vapi id 4 action 5 dest 6 grace */
    r = RUN(cg_lua_control, "check", "V1", "", "", "0");
    assert_string_equal(str_at(r, 0), "connected");
    assert_string_equal(str_at(r, 1), "CA1");
    assert_true(int_at(r, 2) >= 0 && int_at(r, 3) >= 0);
    freeReplyObject(r);
    r = RUN(cg_lua_control, "check", "V1", "", "", "0");
    assert_string_equal(str_at(r, 0), "duplicate");
    freeReplyObject(r);
    r = RUN(cg_lua_control, "check", "V9", "", "", "0");
    assert_string_equal(str_at(r, 0), "unknown");
    freeReplyObject(r);

    long long before = redis_now_ms();
    r = RUN(cg_lua_control, "record", "V1", "forward", "+15557770100", "5000");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    assert_state("CA1", "ending");
    long long lease = cmd_int("ZSCORE " PREFIX "active CA1");
    assert_true(lease >= before + 5000 && lease < before + 60000);
    char *to = cmd_str("HGET " PREFIX "call:CA1 transfer_to");
    assert_string_equal(to, "+15557770100");
    free(to);
    assert_int_equal(cmd_int("HGET " PREFIX "stats transfers_forward"), 1);
    r = RUN(cg_lua_control, "record", "V1", "forward", "+15557770100", "5000");
    assert_string_equal(str_at(r, 0), "duplicate");
    freeReplyObject(r);
    assert_int_equal(cmd_int("HGET " PREFIX "stats transfers_forward"), 1);

    /* The caller's own hang-up changes nothing; Vapi's end releases and
     * admits CA2 in the same step. */
    r = end_signal("twilio", "CA1", "twilio-status");
    assert_string_equal(str_at(r, 0), "duplicate");
    freeReplyObject(r);
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 1"));
    r = end_signal("vapi", "V1", "vapi-report");
    assert_string_equal(str_at(r, 0), "released");
    assert_string_equal(str_at(r, 3), "CA2");
    freeReplyObject(r);
    r = RUN(cg_lua_control, "check", "V1", "", "", "0");
    assert_string_equal(str_at(r, 0), "ended");
    freeReplyObject(r);
    redisReply *lg = redisCommand(rc, "XREVRANGE " PREFIX "log + - COUNT 10");
    int found = 0;
    for (size_t i = 0; i < lg->elements; i++) {
        const redisReply *fv = lg->element[i]->element[1];
        for (size_t k = 0; k + 1 < fv->elements; k += 2)
            if (strcmp(fv->element[k]->str, "reason") == 0 &&
                strncmp(fv->element[k + 1]->str, "forward:+15557770100 ai=", 24) == 0)
                found = 1;
    }
    freeReplyObject(lg);
    assert_true(found);
}

/* board.lua: one occupancy sample a second for the whole gate, however
 * many instances tick; the log after a given id; retention by age and by
 * count once a minute. */
static void test_board(void **state)
{
    (void)state;
    /* Two slots held of a limit of 3; a log with entries two days old,
     * an hour old and new. */
    freeReplyObject(redisCommand(rc, "ZADD " PREFIX "active 99999999999999 a 99999999999999 b"));
    redisReply *t = redisCommand(rc, "TIME");
    long long now = atoll(t->element[0]->str) * 1000;
    freeReplyObject(t);
    char id[64];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "%lld-%d", now - 2 * 86400000LL, i);
        freeReplyObject(redisCommand(rc, "XADD " PREFIX "log %s ev ENTER sid old", id));
    }
    snprintf(id, sizeof id, "%lld-0", now - 3600000LL);
    freeReplyObject(redisCommand(rc, "XADD " PREFIX "log %s ev ENTER sid hour", id));
    freeReplyObject(redisCommand(rc, "XADD " PREFIX "log * ev CONNECT sid new wait 1500"));

    long long minute = now / 60000;
    char first[32], start[64];
    snprintf(first, sizeof first, "%lld", minute - 1);
    snprintf(start, sizeof start, "%lld-0", now - 7200000LL);
    /* Retention 24 h, at most 10 entries. */
    redisReply *r = RUN(cg_lua_board, LIMIT, start, "100", first, "86400000", "10");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 8);
    assert_int_equal(int_at(r, 1), 2);
    assert_int_equal(int_at(r, 2), 3);
    /* The log from two hours ago: the hour-old entry and the new one, as
     * id, ev, wait triples ('0' when the entry has no wait). */
    const redisReply *log = r->element[3];
    assert_int_equal(log->elements, 6);
    assert_string_equal(log->element[1]->str, "ENTER");
    assert_string_equal(log->element[2]->str, "0");
    assert_string_equal(log->element[4]->str, "CONNECT");
    assert_string_equal(log->element[5]->str, "1500");
    /* The last id read, and how many entries were read. */
    assert_int_equal(r->element[6]->type, REDIS_REPLY_STRING);
    assert_string_equal(r->element[6]->str, log->element[3]->str);
    assert_int_equal(int_at(r, 7), 2);
    /* Occupancy from the minute before: 0 then this minute's one sample
     * (unless the minute turned between, then the sample is in the last). */
    const redisReply *occ = r->element[4];
    assert_true(occ->elements >= 4);
    long long busy = 0, cap = 0;
    for (size_t i = 0; i + 1 < occ->elements; i += 2) {
        busy += occ->element[i]->integer;
        cap += occ->element[i + 1]->integer;
    }
    assert_int_equal(busy, 2);
    assert_int_equal(cap, 3);
    freeReplyObject(r);
    /* The first sample began a minute: the two-day-old entries are gone. */
    r = redisCommand(rc, "XLEN " PREFIX "log");
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);

    /* A second instance in the same second takes no second sample. */
    r = redisCommand(rc, "GET " PREFIX "occupancy:sec");
    long long sec = atoll(r->str);
    freeReplyObject(r);
    if (now / 1000 == sec) {
        r = RUN(cg_lua_board, LIMIT, start, "100", first, "86400000", "10");
        long long again = 0;
        const redisReply *o = r->element[4];
        for (size_t i = 0; i < o->elements; i += 2)
            again += o->element[i]->integer;
        t = redisCommand(rc, "GET " PREFIX "occupancy:sec");
        if (atoll(t->str) == sec)
            assert_int_equal(again, 2);
        freeReplyObject(t);
        freeReplyObject(r);
    }
    /* The count bound, at the next minute's first sample. */
    freeReplyObject(redisCommand(rc, "DEL " PREFIX "occupancy:sec"));
    freeReplyObject(RUN(cg_lua_board, LIMIT, start, "100", first, "86400000", "1"));
    r = redisCommand(rc, "XLEN " PREFIX "log");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_claim_one_gate_per_queue, flush),
        cmocka_unit_test_setup(test_enter_fast_path, flush),
        cmocka_unit_test_setup(test_enter_queues_when_someone_waits, flush),
        cmocka_unit_test_setup(test_enter_reports_no_room_when_full, flush),
        cmocka_unit_test_setup(test_enter_overflow, flush),
        cmocka_unit_test_setup(test_admit_respects_limits, flush),
        cmocka_unit_test_setup(test_vapi_created_orphan_when_gone, flush),
        cmocka_unit_test_setup(test_full_lifecycle_and_dedupe, flush),
        cmocka_unit_test_setup(test_admission_context_after_requeue, flush),
        cmocka_unit_test_setup(test_control, flush),
        cmocka_unit_test_setup(test_service_mean_warms_up, flush),
        cmocka_unit_test_setup(test_abandon_while_waiting, flush),
        cmocka_unit_test_setup(test_requeue_keeps_place_and_caps, flush),
        cmocka_unit_test_setup(test_requeue_permanent_gives_up, flush),
        cmocka_unit_test_setup(test_requeue_with_orphan_holds_slot, flush),
        cmocka_unit_test_setup(test_vapi_end_before_connect_requeues, flush),
        cmocka_unit_test_setup(test_no_orphan_slot_after_vapi_end, flush),
        cmocka_unit_test_setup(test_cap_rises_with_releases, flush),
        cmocka_unit_test_setup(test_position_and_overflow, flush),
        cmocka_unit_test_setup(test_sweep_claims_expired, flush),
        cmocka_unit_test_setup(test_expire_admission_requeues_and_holds, flush),
        cmocka_unit_test_setup(test_snapshot, flush),
        cmocka_unit_test_setup(test_queue_view, flush),
        cmocka_unit_test_setup(test_random_invariants, flush),
        cmocka_unit_test_setup(test_repair_begin_fresh, flush),
        cmocka_unit_test_setup(test_repair_marker_gates_admission, flush),
        cmocka_unit_test_setup(test_repair_stale_after_wipe, flush),
        cmocka_unit_test_setup(test_repair_counts_live_calls, flush),
        cmocka_unit_test_setup(test_board, flush),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
