/*
 * Routes sharing one limit (ROUTES_FILE) in the gate's Lua scripts, against
 * a real redis-server: each rule of the one decision per freed slot (a
 * route under its min first, never a route over its max, priority, the
 * longest wait, VIP callers at the head of their line, the organization's
 * limit), the fast path's respect of a route's max, the per-route figures,
 * and a randomized run checking the caps and that no caller is lost or
 * overtaken within a route.
 */
#include "luafix.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate/lua_scripts.h"

/* Two routes: "a" and "b", as "min max priority". */
static void publish(const char *a, const char *b, const char *order)
{
    freeReplyObject(RUN(cg_lua_routes, order, "a", a, "b", b));
}

/* enter: ARGV 2 sid 3 from 4 to 5 mode 6 max_queue 7 limit 8 fast 9 lease 10 inst 11 waited
 * 12 route 13 vip */
static redisReply *enter_full(const char *sid, const char *route, const char *limit,
                              const char *fast, const char *vip)
{
    return RUN(cg_lua_enter, sid, "+15550001", "+15559999", "incoming", "100", limit, fast, "30000",
               "i1", "0", route, vip);
}

static void enter_waiting(const char *sid, const char *route, const char *limit)
{
    redisReply *r = enter_full(sid, route, limit, "0", "0");
    assert_string_equal(str_at(r, 0), "waiting");
    freeReplyObject(r);
}

static redisReply *admit(const char *limit)
{
    return RUN(cg_lua_admit, limit, "100", "30000", "i1");
}

/* Element i of an admission list carries the queue context of the caller
 * admitted, with their route (the engine picks the route's assistant from
 * it); an outbound call carries none (it reads its own record). */
static void expect_context(const redisReply *r, size_t i)
{
    const char *sid = str_at(r, i);
    if (strncmp(sid, "o:", 2) == 0) {
        assert_int_equal(r->element[i + 3]->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->element[i + 3]->elements, 0);
        return;
    }
    const redisReply *c = ctx_at(r, i + 3);
    char *route = cmd_str("HGET " PREFIX "call:%s route", sid);
    assert_string_equal(str_at(c, 5), strcmp(route, "(nil)") == 0 ? "" : route);
    free(route);
    assert_int_equal(int_at(c, 4), cmd_int("HGET " PREFIX "call:%s enqueued_at", sid));
    assert_string_equal(str_at(c, 2), "+15559999");
}

/* The sids admitted by a reply (the admission list from element first),
 * joined by spaces, into out; each entry's context checked. */
static void admitted(const redisReply *r, size_t first, char *out, size_t outlen)
{
    out[0] = '\0';
    assert_true(r->elements <= first || (r->elements - first) % 4 == 0);
    for (size_t i = first; i + 3 < r->elements; i += 4) {
        if (out[0])
            strncat(out, " ", outlen - strlen(out) - 1);
        strncat(out, r->element[i]->str, outlen - strlen(out) - 1);
        expect_context(r, i);
    }
}

static void expect_admit(const char *limit, const char *want)
{
    redisReply *r = admit(limit);
    char got[256];
    admitted(r, 0, got, sizeof got);
    assert_string_equal(got, want);
    freeReplyObject(r);
}

/* An end signal for a lease (the simplest release of a slot). */
static void expect_release(const char *sid, const char *limit, const char *want)
{
    redisReply *r = RUN(cg_lua_end, "lease", sid, "test", "5000", limit, "100", "30000", "i1",
                        "0.2", "lease", "60000");
    assert_string_equal(str_at(r, 0), "released");
    char got[256];
    admitted(r, 3, got, sizeof got);
    assert_string_equal(got, want);
    freeReplyObject(r);
}

/* A route under its min with callers waiting takes freed slots first,
 * whatever the other route's priority and however long its callers
 * waited. */
static void test_min_protection(void **state)
{
    (void)state;
    publish("2 5 1", "0 5 9", "after-inbound");
    enter_waiting("b1", "b", "3");
    enter_waiting("b2", "b", "3");
    enter_waiting("b3", "b", "3");
    enter_waiting("a1", "a", "3");
    enter_waiting("a2", "a", "3");
    enter_waiting("a3", "a", "3");
    expect_admit("3", "a1 a2 b1");
    /* At its min, a takes its turn by priority again: b first. */
    expect_release("b1", "3", "b2");
    /* One of a's calls ends: a is under its min and takes the slot back. */
    expect_release("a1", "3", "a3");
    assert_int_equal(cmd_int("HGET " PREFIX "rstats:a admissions"), 3);
    assert_int_equal(cmd_int("HGET " PREFIX "rstats:b admissions"), 2);
}

/* A route at its max takes no more slots, free as the organization's are. */
static void test_max_cap(void **state)
{
    (void)state;
    publish("0 1 9", "0 5 1", "after-inbound");
    enter_waiting("a1", "a", "3");
    enter_waiting("a2", "a", "3");
    enter_waiting("a3", "a", "3");
    enter_waiting("b1", "b", "3");
    expect_admit("3", "a1 b1");
    expect_admit("3", "");
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 2);
    expect_release("a1", "3", "a2");
}

static void test_priority(void **state)
{
    (void)state;
    publish("0 5 1", "0 5 2", "after-inbound");
    enter_waiting("a1", "a", "1");
    enter_waiting("a2", "a", "1");
    enter_waiting("b1", "b", "1");
    expect_admit("1", "b1");
    expect_release("b1", "1", "a1");
}

static void test_longest_wait(void **state)
{
    (void)state;
    publish("0 5 1", "0 5 1", "after-inbound");
    enter_waiting("b1", "b", "1");
    enter_waiting("a1", "a", "1");
    enter_waiting("b2", "b", "1");
    expect_admit("1", "b1");
    expect_release("b1", "1", "a1");
    expect_release("a1", "1", "b2");
}

/* A VIP caller goes to the head of their route's line, not of the others. */
static void test_vip(void **state)
{
    (void)state;
    publish("0 5 1", "0 5 1", "after-inbound");
    enter_waiting("a1", "a", "1");
    enter_waiting("a2", "a", "1");
    redisReply *r = enter_full("a-vip", "a", "1", "0", "1");
    assert_string_equal(str_at(r, 0), "waiting");
    assert_int_equal(int_at(r, 1), 1); /* first in the route's line */
    freeReplyObject(r);
    expect_admit("1", "a-vip");
    expect_release("a-vip", "1", "a1");
}

/* The organization's limit bounds every route together. */
static void test_org_limit(void **state)
{
    (void)state;
    publish("1 5 1", "1 5 1", "after-inbound");
    for (int i = 0; i < 4; i++) {
        char sid[8];
        snprintf(sid, sizeof sid, "a%d", i);
        enter_waiting(sid, "a", "2");
        snprintf(sid, sizeof sid, "b%d", i);
        enter_waiting(sid, "b", "2");
    }
    expect_admit("2", "a0 b0");
    expect_admit("2", "");
    /* The runtime limit (admin API) is the organization's too. */
    freeReplyObject(redisCommand(rc, "SET " PREFIX "limit 3"));
    expect_admit("2", "a1");
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 3);
}

/* The fast path respects the route's max; a route with room takes it. */
static void test_fast_path_route_max(void **state)
{
    (void)state;
    publish("0 1 1", "0 5 1", "after-inbound");
    redisReply *r = enter_full("a1", "a", "5", "1", "0");
    assert_string_equal(str_at(r, 0), "fast");
    /* The fast path's reply carries the context, with the route. */
    assert_string_equal(str_at(ctx_at(r, 2), 5), "a");
    assert_int_equal(int_at(ctx_at(r, 2), 1), 1);
    freeReplyObject(r);
    r = enter_full("a2", "a", "5", "1", "0");
    assert_string_equal(str_at(r, 0), "waiting");
    freeReplyObject(r);
    assert_field("a2", "route", "a");
    expect_admit("5", "");
    expect_release("a1", "5", "a2");
}

/* A caller who hangs up leaves the route's line at once; a requeued one
 * goes back to its head. */
static void test_leave_and_requeue(void **state)
{
    (void)state;
    publish("0 5 1", "0 5 1", "after-inbound");
    enter_waiting("a1", "a", "1");
    enter_waiting("a2", "a", "1");
    enter_waiting("a3", "a", "1");
    redisReply *r = RUN(cg_lua_end, "twilio", "a2", "hangup", "5000", "1", "100", "30000", "i1",
                        "0.2", "twilio", "60000");
    assert_string_equal(str_at(r, 0), "abandoned");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "rq:a"), 2);
    assert_int_equal(cmd_int("HGET " PREFIX "rstats:a abandoned"), 1);
    expect_admit("1", "a1");
    /* requeue: ARGV 2 sid 3 attempt 4 reason 5 overlimit 6 backoff 7 limit 8 orphan 9 hold
     * 10 overlimit_hold 11 permanent 12 max_attempts */
    r = RUN(cg_lua_requeue, "a1", "1", "test", "0", "0", "1", "", "60000", "30000", "0", "3");
    assert_string_equal(str_at(r, 0), "requeued");
    freeReplyObject(r);
    expect_admit("1", "a1");
}

/* Routes unpublished (a gate of one route): the order of tickets, as
 * before, whatever the calls' routes. */
static void test_unpublished_is_single_route(void **state)
{
    (void)state;
    publish("0 1 1", "0 1 9", "after-inbound");
    freeReplyObject(RUN(cg_lua_routes, "after-inbound"));
    assert_int_equal(cmd_int("EXISTS " PREFIX "routes"), 0);
    enter_waiting("a1", "a", "3");
    enter_waiting("a2", "a", "3");
    enter_waiting("b1", "b", "3");
    expect_admit("3", "a1 a2 b1");
}

/* Callers who entered before the gate had routes join the first route
 * and are admitted in their order. */
static void test_unrouted_callers_join_first_route(void **state)
{
    (void)state;
    enter_waiting("u1", "", "1");
    enter_waiting("u2", "", "1");
    publish("0 5 1", "0 5 9", "after-inbound");
    expect_admit("1", "u1");
    assert_field("u2", "route", "a");
    expect_release("u1", "1", "u2");
}

/* Random arrivals, hang-ups and releases on three routes: never a route
 * over its max, never the organization over its limit, a route with
 * room and callers waiting left with a slot free after a decision (so
 * never below its min either), admissions in ticket order within a route,
 * every caller accounted for. */
static void test_random_invariants(void **state)
{
    (void)state;
    freeReplyObject(RUN(cg_lua_routes, "after-inbound", "a", "2 3 1", "b", "1 4 2", "c", "0 6 0"));
    const char *routes[] = {"a", "b", "c"};
    const int maxes[] = {3, 4, 6};
    const char *limit = "6";
    unsigned seed = 12345;
    int next = 0;
    long long last_ticket[3] = {0, 0, 0};
    char active[64][16];
    int nactive = 0;
    for (int step = 0; step < 600; step++) {
        seed = seed * 1103515245u + 12345u;
        int op = (int)((seed >> 16) % 10);
        redisReply *r = NULL;
        size_t first = 0;
        if (op < 5) {
            char sid[16];
            snprintf(sid, sizeof sid, "s%d", next++);
            r = enter_full(sid, routes[(seed >> 8) % 3], limit, "0", "0");
            freeReplyObject(r);
            r = admit(limit);
        } else if (nactive > 0) {
            int k = (int)((seed >> 4) % (unsigned)nactive);
            char sid[16];
            snprintf(sid, sizeof sid, "%s", active[k]);
            memmove(active[k], active[k + 1], (size_t)(nactive - k - 1) * sizeof active[0]);
            nactive--;
            r = RUN(cg_lua_end, "lease", sid, "test", "5000", limit, "100", "30000", "i1", "0.2",
                    "lease", "60000");
            first = 3;
        } else {
            continue;
        }
        assert_true(r->elements <= first || (r->elements - first) % 4 == 0);
        for (size_t i = first; i + 3 < r->elements; i += 4) {
            const char *sid = r->element[i]->str;
            expect_context(r, i);
            assert_true(nactive < 64);
            snprintf(active[nactive++], sizeof active[0], "%s", sid);
            char *route = cmd_str("HGET " PREFIX "call:%s route", sid);
            long long ticket = cmd_int("HGET " PREFIX "call:%s ticket", sid);
            int ri = route[0] - 'a';
            assert_true(ticket > last_ticket[ri]); /* nobody overtaken in a route */
            last_ticket[ri] = ticket;
            free(route);
        }
        freeReplyObject(r);
        assert_true(cmd_int("ZCARD " PREFIX "active") <= 6);
        int counts[3] = {0, 0, 0};
        for (int i = 0; i < nactive; i++) {
            char *route = cmd_str("HGET " PREFIX "call:%s route", active[i]);
            counts[route[0] - 'a']++;
            free(route);
        }
        int free_slots = 6 - nactive;
        for (int i = 0; i < 3; i++) {
            assert_true(counts[i] <= maxes[i]);
            long long waiting = cmd_int("ZCARD " PREFIX "rq:%s", routes[i]);
            /* A slot free while a route under its max has callers waiting
             * never survives a decision. */
            if (waiting > 0 && counts[i] < maxes[i])
                assert_int_equal(free_slots, 0);
        }
        assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), cmd_int("ZCARD " PREFIX "rq:a") +
                                                                 cmd_int("ZCARD " PREFIX "rq:b") +
                                                                 cmd_int("ZCARD " PREFIX "rq:c"));
    }
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting") + nactive +
                         cmd_int("HGET " PREFIX "stats released"),
                     next);
}

/* slots: ARGV 2 op 3 id 4 route 5 ttl_ms 6 limit 7 batch 8 lease 9 inst */
static redisReply *slot(const char *op, const char *id, const char *route, const char *ttl,
                        const char *limit)
{
    return RUN(cg_lua_slots, op, id, route, ttl, limit, "100", "30000", "i1");
}

/* A lease takes spare room only: never a slot a waiting caller can use,
 * never past the route's max; released, its slot is refilled at once; an
 * expired one is freed by the sweep. */
static void test_slots(void **state)
{
    (void)state;
    publish("1 3 1", "0 1 1", "after-inbound");
    redisReply *r = slot("take", "L1", "b", "60000", "3");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    /* b is at its max. */
    r = slot("take", "L2", "b", "60000", "3");
    assert_string_equal(str_at(r, 0), "full");
    assert_true(int_at(r, 1) >= 1000);
    freeReplyObject(r);
    assert_int_equal(cmd_int("HGET " PREFIX "rstats:b refused"), 1);
    r = slot("take", "L3", "c", "60000", "3");
    assert_string_equal(str_at(r, 0), "unknown-route");
    freeReplyObject(r);
    /* Two callers of a wait for room (a backoff holds admission): the two
     * free slots are theirs, not a lease's. */
    freeReplyObject(redisCommand(rc, "SET " PREFIX "backoff 99999999999999 PX 60000"));
    enter_waiting("a1", "a", "3");
    enter_waiting("a2", "a", "3");
    freeReplyObject(redisCommand(rc, "DEL " PREFIX "backoff"));
    r = slot("take", "L4", "a", "60000", "3");
    assert_string_equal(str_at(r, 0), "full");
    freeReplyObject(r);
    /* The lease released: its slot goes to the first caller... */
    expect_admit("3", "a1 a2");
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 3);
    enter_waiting("a3", "a", "3");
    r = slot("release", "L1", "", "0", "3");
    assert_string_equal(str_at(r, 0), "released");
    assert_int_equal(r->elements, 7);
    assert_string_equal(str_at(r, 3), "a3");
    assert_string_equal(str_at(ctx_at(r, 6), 5), "a");
    freeReplyObject(r);
    r = slot("release", "L1", "", "0", "3");
    assert_string_equal(str_at(r, 0), "gone");
    freeReplyObject(r);
    /* ...and an expired lease is freed by the sweep. */
    expect_release("a1", "3", "");
    r = slot("take", "L5", "b", "1", "3");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    r = slot("renew", "L5", "", "1", "3");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    freeReplyObject(RUN(cg_lua_sweep, "100", "30000"));
    assert_int_equal(cmd_int("ZSCORE " PREFIX "active s:L5"), -1);
    assert_int_equal(cmd_int("EXISTS " PREFIX "slot:L5"), 0);
    r = slot("renew", "L5", "", "60000", "3");
    assert_string_equal(str_at(r, 0), "gone");
    freeReplyObject(r);
}

/* A gate of one route: leases name the route "default". */
static void test_slots_single_route(void **state)
{
    (void)state;
    redisReply *r = slot("take", "L1", "default", "60000", "1");
    assert_string_equal(str_at(r, 0), "ok");
    freeReplyObject(r);
    r = slot("take", "L2", "default", "60000", "1");
    assert_string_equal(str_at(r, 0), "full");
    freeReplyObject(r);
    r = slot("take", "L3", "sales", "60000", "1");
    assert_string_equal(str_at(r, 0), "unknown-route");
    freeReplyObject(r);
}

/* outbound create: ARGV 2 op 3 id 4 route 5 number 6 variables 7 max_queue 8 limit 9 batch
 * 10 lease 11 inst */
static redisReply *outbound_create(const char *id, const char *route, const char *limit)
{
    return RUN(cg_lua_outbound, "create", id, route, "+15550104444", "{\"k\":1}", "100", limit,
               "100", "30000", "i1");
}

/* An outbound call waits after the inbound callers of its route (the
 * default), is admitted as 'o:<id>', connected once Vapi created it, and
 * released by Vapi's end like any call; it never enters the waiting set
 * Twilio's queue is reconciled with. */
static void test_outbound(void **state)
{
    (void)state;
    publish("0 5 1", "0 5 1", "after-inbound");
    freeReplyObject(redisCommand(rc, "SET " PREFIX "backoff 99999999999999 PX 60000"));
    redisReply *r = outbound_create("X1", "a", "1");
    assert_string_equal(str_at(r, 0), "queued");
    assert_int_equal(int_at(r, 1), 1);
    assert_int_equal(r->elements, 3);
    freeReplyObject(r);
    enter_waiting("a1", "a", "1");
    enter_waiting("b1", "b", "1");
    assert_int_equal(cmd_int("ZCARD " PREFIX "waiting"), 2);
    freeReplyObject(redisCommand(rc, "DEL " PREFIX "backoff"));
    /* Inbound first, in both routes of equal priority; then the call. */
    expect_admit("1", "a1");
    expect_release("a1", "1", "b1");
    expect_release("b1", "1", "o:X1");
    assert_field("o:X1", "from", "+15550104444");
    r = RUN(cg_lua_outbound, "status", "X1");
    assert_string_equal(str_at(r, 0), "admitting");
    assert_string_equal(str_at(r, 2), "a");
    assert_string_equal(str_at(r, 10), "{\"k\":1}");
    freeReplyObject(r);
    /* created: 3 id 4 attempt 5 vapi id 6 lease */
    r = RUN(cg_lua_outbound, "created", "X1", "1", "VX1", "120000");
    assert_string_equal(str_at(r, 0), "connected");
    freeReplyObject(r);
    r = RUN(cg_lua_end, "vapi", "VX1", "customer-ended-call", "5000", "1", "100", "30000", "i1",
            "0.2", "vapi", "60000");
    assert_string_equal(str_at(r, 0), "released");
    freeReplyObject(r);
    r = RUN(cg_lua_outbound, "status", "X1");
    assert_string_equal(str_at(r, 0), "ended");
    assert_string_equal(str_at(r, 4), "customer-ended-call");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 0);
    r = RUN(cg_lua_outbound, "status", "nope");
    assert_string_equal(str_at(r, 0), "unknown");
    freeReplyObject(r);
}

/* OUTBOUND_ORDER=arrival: in order of arrival with the callers; a failed
 * attempt goes back to the line (not to the waiting set), the last one
 * ends it. */
static void test_outbound_arrival_and_failure(void **state)
{
    (void)state;
    publish("0 5 1", "0 5 1", "arrival");
    freeReplyObject(redisCommand(rc, "SET " PREFIX "backoff 99999999999999 PX 60000"));
    freeReplyObject(outbound_create("X1", "a", "1"));
    enter_waiting("a1", "a", "1");
    freeReplyObject(redisCommand(rc, "DEL " PREFIX "backoff"));
    expect_admit("1", "o:X1");
    /* failed: 3 id 4 attempt 5 reason 6 final 7 max_attempts 8 limit 9 batch 10 lease 11 inst
     * 12 backoff */
    redisReply *r = RUN(cg_lua_outbound, "failed", "X1", "1", "vapi-error", "0", "2", "1", "100",
                        "30000", "i1", "0");
    assert_string_equal(str_at(r, 0), "requeued");
    /* Back at the head of its line, ahead of a1 (its ticket is older). */
    assert_string_equal(str_at(r, 3), "o:X1");
    freeReplyObject(r);
    assert_int_equal(cmd_int("ZSCORE " PREFIX "waiting o:X1"), -1);
    r = RUN(cg_lua_outbound, "failed", "X1", "2", "vapi-error", "0", "2", "1", "100", "30000", "i1",
            "0");
    assert_string_equal(str_at(r, 0), "failed");
    assert_string_equal(str_at(r, 3), "a1");
    freeReplyObject(r);
    r = RUN(cg_lua_outbound, "failed", "X1", "2", "vapi-error", "0", "2", "1", "100", "30000", "i1",
            "0");
    assert_string_equal(str_at(r, 0), "stale");
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_min_protection, flush),
        cmocka_unit_test_setup(test_max_cap, flush),
        cmocka_unit_test_setup(test_priority, flush),
        cmocka_unit_test_setup(test_longest_wait, flush),
        cmocka_unit_test_setup(test_vip, flush),
        cmocka_unit_test_setup(test_org_limit, flush),
        cmocka_unit_test_setup(test_fast_path_route_max, flush),
        cmocka_unit_test_setup(test_leave_and_requeue, flush),
        cmocka_unit_test_setup(test_unpublished_is_single_route, flush),
        cmocka_unit_test_setup(test_random_invariants, flush),
        cmocka_unit_test_setup(test_unrouted_callers_join_first_route, flush),
        cmocka_unit_test_setup(test_slots, flush),
        cmocka_unit_test_setup(test_slots_single_route, flush),
        cmocka_unit_test_setup(test_outbound, flush),
        cmocka_unit_test_setup(test_outbound_arrival_and_failure, flush),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
