/*
 * The registry of a gate's instances (instances.lua, gate/instances.h)
 * against a real redis-server: announcements and the lowest limit of the
 * live instances, admission held to it (and the runtime limit still the
 * operator's word), a clean leave, an expired entry and a lost record
 * dropped; and the settings map and its comparison (digests only, no
 * value in clear, the differing settings named).
 */
#include "luafix.h"

#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/crypto.h"
#include "gate/instances.h"
#include "gate/lua_scripts.h"
#include "gate/store.h"

/* instances: ARGV 2 op 3 id 4 ttl 5 version 6 started 7 limit 8 fp 9 settings */
static redisReply *announce(const char *id, const char *limit, const char *ttl, const char *fp)
{
    return RUN(cg_lua_instances, "announce", id, ttl, "0.1.0", "1700000000000", limit, fp,
               "MAX_CONCURRENCY=abc,VAPI_API_KEY=def");
}

static void expect_announce(const char *id, const char *limit, long long lowest, long long live)
{
    redisReply *r = announce(id, limit, "10000", "fp");
    assert_int_equal(int_at(r, 0), lowest);
    assert_int_equal(int_at(r, 1), live);
    assert_int_equal(r->elements, 2 + 6 * (size_t)live);
    freeReplyObject(r);
}

static void leave(const char *id)
{
    freeReplyObject(RUN(cg_lua_instances, "leave", id, "10000"));
}

static void enter_waiting(const char *sid)
{
    redisReply *r = RUN(cg_lua_enter, sid, "+15550001", "+15559999", "incoming", "100", "4", "0",
                        "30000", "i1", "0", "", "0");
    assert_string_equal(str_at(r, 0), "waiting");
    freeReplyObject(r);
}

/* How many callers admit.lua admits at this instance's own limit. */
static size_t admit_count(const char *limit)
{
    redisReply *r = RUN(cg_lua_admit, limit, "100", "30000", "i1");
    size_t n = r->elements / GATE_ADMITTED_WIDTH;
    freeReplyObject(r);
    return n;
}

static void test_announce_lists_live_instances(void **state)
{
    (void)state;
    expect_announce("a", "4", 4, 1);
    expect_announce("b", "2", 2, 2);
    redisReply *r = announce("a", "4", "10000", "fpa");
    /* Every live instance with its fields (in the order of their expiry). */
    size_t a = strcmp(str_at(r, 2), "a") == 0 ? 2 : 8, b = a == 2 ? 8 : 2;
    assert_string_equal(str_at(r, b), "b");
    assert_int_equal(int_at(r, b + 3), 2);
    assert_string_equal(str_at(r, a), "a");
    assert_string_equal(str_at(r, a + 1), "0.1.0");
    assert_string_equal(str_at(r, a + 2), "1700000000000");
    assert_int_equal(int_at(r, a + 3), 4);
    assert_string_equal(str_at(r, a + 4), "fpa");
    assert_string_equal(str_at(r, a + 5), "MAX_CONCURRENCY=abc,VAPI_API_KEY=def");
    freeReplyObject(r);
    assert_int_equal(cmd_int("GET " PREFIX "instances_min"), 2);
    /* Every key of the registry expires: a gate whose instances all died
     * leaves nothing behind. */
    long long ttl = cmd_int("PTTL " PREFIX "instances_min");
    assert_true(ttl > 0 && ttl <= 10000);
    ttl = cmd_int("PTTL " PREFIX "inst:a");
    assert_true(ttl > 0 && ttl <= 10000);
    ttl = cmd_int("PTTL " PREFIX "instances");
    assert_true(ttl > 0 && ttl <= 10000);
}

/* An instance whose own MAX_CONCURRENCY is 4 admits no more than the
 * lowest of the live instances, 2. */
static void test_admission_obeys_lowest_limit(void **state)
{
    (void)state;
    free(cmd_str("SET " PREFIX "intact 1"));
    for (int i = 0; i < 6; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "c%d", i);
        enter_waiting(sid);
    }
    expect_announce("four", "4", 4, 1);
    expect_announce("two", "2", 2, 2);
    assert_int_equal(admit_count("4"), 2);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 2);
    /* The snapshot (/metrics, /admin) reports the limit in force. */
    redisReply *s = RUN(cg_lua_snapshot, "4");
    assert_int_equal(int_at(s, 2), 2);
    assert_int_equal(int_at(s, 3), 2);
    freeReplyObject(s);
    /* An instance's own lower limit still holds under a higher minimum. */
    leave("two");
    assert_int_equal(cmd_int("EXISTS " PREFIX "inst:two"), 0);
    assert_int_equal(cmd_int("GET " PREFIX "instances_min"), 4);
    assert_int_equal(admit_count("3"), 1);
    /* The 2-instance gone: the gate's limit is the 4-instance's. */
    assert_int_equal(admit_count("4"), 1);
    assert_int_equal(cmd_int("ZCARD " PREFIX "active"), 4);
}

/* A limit set through /admin/limit is the operator's word: the lowest
 * instance's limit does not lower it. */
static void test_runtime_limit_wins(void **state)
{
    (void)state;
    free(cmd_str("SET " PREFIX "intact 1"));
    for (int i = 0; i < 5; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "r%d", i);
        enter_waiting(sid);
    }
    expect_announce("two", "2", 2, 1);
    free(cmd_str("SET " PREFIX "limit 3"));
    assert_int_equal(admit_count("4"), 3);
}

/* A dead instance's entry expires; the next announcement of any live one
 * recomputes the lowest limit without it. The last to leave removes the
 * minimum. */
static void test_expired_and_lost_entries_dropped(void **state)
{
    (void)state;
    redisReply *r = announce("dead", "1", "150", "fp");
    freeReplyObject(r);
    expect_announce("live", "5", 1, 2);
    cgt_sleep_ms(400);
    expect_announce("live", "5", 5, 1);
    char *score = cmd_str("ZSCORE " PREFIX "instances dead");
    assert_string_equal(score, "(nil)");
    free(score);
    /* A record Redis lost (the entry without its hash) is dropped too. */
    expect_announce("other", "3", 3, 2);
    assert_int_equal(cmd_int("DEL " PREFIX "inst:other"), 1);
    expect_announce("live", "5", 5, 1);
    leave("live");
    assert_int_equal(cmd_int("EXISTS " PREFIX "instances_min"), 0);
    assert_int_equal(cmd_int("EXISTS " PREFIX "instances"), 0);
}

static void test_unknown_op_refused(void **state)
{
    (void)state;
    redisReply *r =
        redisCommand(rc, "EVAL %s 0 %s %s %s %s", cg_lua_instances, PREFIX, "bogus", "x", "1000");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS " PREFIX "inst:x"), 0);
}

/* ---- the settings map ---- */

static void base_config(struct cg_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_concurrency = 10;
    c->max_queue_size = 50;
    c->twilio_account_sid = "AC0123456789abcdef0123456789abcdef";
    c->twilio_auth_token = "secret-twilio-token";
    c->twilio_queue_name = "support";
    c->vapi_api_key = "secret-vapi-key";
    c->vapi_assistant_id = "assistant-1";
    c->vapi_webhook_secret = "secret-webhook";
    c->callback_hours = "";
}

static char *settings_of(const struct cg_config *c, char fp[13])
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    gate_instances_settings(c, &b, fp);
    return cg_buf_take(&b);
}

static void test_settings_hold_no_secret(void **state)
{
    (void)state;
    struct cg_config c;
    base_config(&c);
    char fp[13];
    char *s = settings_of(&c, fp);
    assert_int_equal(strlen(fp), 12);
    assert_non_null(strstr(s, "MAX_CONCURRENCY="));
    assert_non_null(strstr(s, "TWILIO_AUTH_TOKEN="));
    assert_non_null(strstr(s, "ROUTES_FILE="));
    assert_null(strstr(s, "secret"));
    assert_null(strstr(s, "assistant-1"));
    assert_null(strstr(s, "support"));
    /* Every value is a 12-digit digest. */
    for (const char *p = s; p && *p;) {
        const char *eq = strchr(p, '=');
        assert_non_null(eq);
        const char *end = strchr(eq, ',');
        size_t len = end ? (size_t)(end - eq - 1) : strlen(eq + 1);
        assert_int_equal(len, 12);
        p = end ? end + 1 : NULL;
    }
    /* A secret's digest is the slow one (PBKDF2, salted with the name),
     * never a fast hash a dictionary could be run against. */
    unsigned char k[6];
    char want[13], got[13];
    const char *salt = "callgate-secret:VAPI_WEBHOOK_SECRET";
    assert_int_equal(cg_pbkdf2_sha256(c.vapi_webhook_secret, strlen(c.vapi_webhook_secret), salt,
                                      strlen(salt), 10000, k, sizeof k),
                     0);
    cg_hex_encode(k, sizeof k, want);
    const char *at = strstr(s, "VAPI_WEBHOOK_SECRET=");
    assert_non_null(at);
    snprintf(got, sizeof got, "%.12s", at + strlen("VAPI_WEBHOOK_SECRET="));
    assert_string_equal(got, want);
    /* The same settings, the same map. */
    char fp2[13];
    char *s2 = settings_of(&c, fp2);
    assert_string_equal(s, s2);
    assert_string_equal(fp, fp2);
    free(s);
    free(s2);
}

static void test_compare_names_differences(void **state)
{
    (void)state;
    struct cg_config a, b;
    base_config(&a);
    base_config(&b);
    b.max_concurrency = 20;
    b.vapi_api_key = "another-key";
    char fpa[13], fpb[13], fpc[13];
    char *sa = settings_of(&a, fpa), *sb = settings_of(&b, fpb), *sc = settings_of(&a, fpc);
    assert_string_not_equal(fpa, fpb);
    struct gate_instance_view v[3] = {
        {.id = "a", .limit = 10, .fingerprint = fpa, .settings = sa},
        {.id = "b", .limit = 20, .fingerprint = fpb, .settings = sb},
        {.id = "c", .limit = 10, .fingerprint = fpc, .settings = sc},
    };
    char names[256];
    size_t dis = 99;
    gate_instances_compare(v, 3, names, sizeof names, &dis);
    assert_string_equal(names, "MAX_CONCURRENCY,VAPI_API_KEY");
    assert_int_equal(dis, 1);
    /* All alike: nothing named, nobody disagrees. */
    v[1] = v[2];
    gate_instances_compare(v, 3, names, sizeof names, &dis);
    assert_string_equal(names, "");
    assert_int_equal(dis, 0);
    /* A setting only one instance lists (another version) is not compared. */
    struct gate_instance_view w[2] = {
        {.id = "old", .fingerprint = "x", .settings = "MAX_CONCURRENCY=aaa"},
        {.id = "new", .fingerprint = "y", .settings = "MAX_CONCURRENCY=aaa,NEW_OPTION=bbb"},
    };
    gate_instances_compare(w, 2, names, sizeof names, &dis);
    assert_string_equal(names, "");
    assert_int_equal(dis, 0);
    /* A lone instance agrees with itself. */
    gate_instances_compare(v, 1, names, sizeof names, &dis);
    assert_string_equal(names, "");
    assert_int_equal(dis, 0);
    free(sa);
    free(sb);
    free(sc);
}

/* The routes count by content; a route's max that follows MAX_CONCURRENCY
 * (its default) does not make a limit difference a routes difference. */
static void test_routes_compared_by_content(void **state)
{
    (void)state;
    char *numbers[] = {"+15550001"};
    struct cg_route ra = {.name = "sales",
                          .numbers = numbers,
                          .nnumbers = 1,
                          .assistant_id = "as-1",
                          .queue = "q-sales",
                          .max = 10},
                    rb = ra;
    struct cg_config a, b;
    base_config(&a);
    base_config(&b);
    a.routes = (struct cg_routes){.v = &ra, .n = 1};
    b.routes = (struct cg_routes){.v = &rb, .n = 1};
    b.max_concurrency = 20;
    rb.max = 20;
    char fpa[13], fpb[13];
    char *sa = settings_of(&a, fpa), *sb = settings_of(&b, fpb);
    struct gate_instance_view v[2] = {
        {.id = "a", .fingerprint = fpa, .settings = sa},
        {.id = "b", .fingerprint = fpb, .settings = sb},
    };
    char names[256];
    size_t dis = 0;
    gate_instances_compare(v, 2, names, sizeof names, &dis);
    assert_string_equal(names, "MAX_CONCURRENCY");
    free(sb);
    /* The same limit, a route's min changed in one file. */
    b.max_concurrency = 10;
    rb.max = 10;
    rb.min = 2;
    sb = settings_of(&b, fpb);
    v[1].settings = sb;
    gate_instances_compare(v, 2, names, sizeof names, &dis);
    assert_string_equal(names, "ROUTES_FILE");
    free(sa);
    free(sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_announce_lists_live_instances, flush),
        cmocka_unit_test_setup(test_admission_obeys_lowest_limit, flush),
        cmocka_unit_test_setup(test_runtime_limit_wins, flush),
        cmocka_unit_test_setup(test_expired_and_lost_entries_dropped, flush),
        cmocka_unit_test_setup(test_unknown_op_refused, flush),
        cmocka_unit_test(test_settings_hold_no_secret),
        cmocka_unit_test(test_compare_names_differences),
        cmocka_unit_test(test_routes_compared_by_content),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
