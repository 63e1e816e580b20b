/*
 * The gate's typed script wrappers (src/gate/store.c) against a real
 * redis-server: each wrapper's arguments reach its script in the order the
 * script reads them, and the scripts' words come back as enum
 * gate_verdict. (tests/unit/test_lua.c tests the scripts themselves.)
 */
#include "harness.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/keys.h"
#include "gate/store.h"
#include "net/redis.h"

#define P "cg:{t}:"

struct fixture {
    struct cg_redis_server rs;
    struct event_base *base;
    struct cg_redis *redis;
    struct cg_keys keys;
    struct gate_store store;
};

/* A queue context (gate_queue_context_at), copied out of the reply. */
struct qctx {
    int known;
    long long waited_ms, entry_pos, enqueued_at_ms;
    int callback;
    char dialed[64], route[32];
};

static void copy_ctx(const struct gate_queue_context *c, struct qctx *out)
{
    out->known = c->known;
    out->waited_ms = c->waited_ms;
    out->entry_pos = c->entry_pos;
    out->enqueued_at_ms = c->enqueued_at_ms;
    out->callback = c->callback;
    snprintf(out->dialed, sizeof out->dialed, "%s", c->dialed);
    snprintf(out->route, sizeof out->route, "%s", c->route);
}

/* The last reply, copied out of the callback. */
struct result {
    int done;
    int failed;
    enum gate_verdict verdict;
    long long n[12];
    char s[12][64];
    size_t elements;
    /* Set before the call: the reply holds an admission list from element
     * list_from on (decoded into ad by gate_admitted_at). */
    int want_list;
    size_t list_from;
    struct {
        char sid[64], from[64];
        long long attempt;
        struct qctx ctx;
    } ad[4];
    size_t nad;
    /* The context of a fast (element 2) or admit (element 4) verdict. */
    struct qctx ctx;
};

static void on_reply(const struct gate_reply *rep, void *arg)
{
    struct result *res = arg;
    res->done = 1;
    res->failed = rep->err != NULL;
    res->verdict = rep->verdict;
    const redisReply *r = rep->r;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_INTEGER) {
        res->n[0] = r->integer;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    res->elements = r->elements;
    for (size_t i = 0; i < r->elements && i < 12; i++) {
        res->n[i] = cg_redis_reply_int(r, i, -999);
        const char *s = cg_redis_reply_str(r, i);
        snprintf(res->s[i], sizeof res->s[i], "%s", s ? s : "");
    }
    struct gate_queue_context c;
    if (rep->verdict == GV_FAST || rep->verdict == GV_ADMIT) {
        gate_queue_context_at(r, rep->verdict == GV_FAST ? 2 : 4, &c);
        copy_ctx(&c, &res->ctx);
    }
    struct gate_admitted ad;
    for (size_t i = res->list_from;
         res->want_list && res->nad < 4 && gate_admitted_at(r, i, &ad) == 0;
         i += GATE_ADMITTED_WIDTH) {
        snprintf(res->ad[res->nad].sid, sizeof res->ad[0].sid, "%s", ad.sid ? ad.sid : "");
        snprintf(res->ad[res->nad].from, sizeof res->ad[0].from, "%s", ad.from ? ad.from : "");
        res->ad[res->nad].attempt = ad.attempt;
        copy_ctx(&ad.ctx, &res->ad[res->nad].ctx);
        res->nad++;
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cgt_redis_start(&f->rs);
    f->base = event_base_new();
    char err[256];
    struct cg_redis_opts ro = {.url = f->rs.url};
    f->redis = cg_redis_new(f->base, &ro, err, sizeof err);
    assert_non_null(f->redis);
    cg_keys_init(&f->keys, "t");
    assert_int_equal(gate_store_init(&f->store, f->redis, &f->keys, err, sizeof err), 0);
    uint64_t until = cgt_now_ms() + 5000;
    while (cg_redis_state(f->redis) != CG_REDIS_READY && cgt_now_ms() < until)
        cgt_run_for(f->base, 10);
    assert_int_equal(cg_redis_state(f->redis), CG_REDIS_READY);
    free(cgt_redis_cmd(&f->rs, "SET " P "intact 1")); /* repair.lua's marker */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cg_redis_free(f->redis);
    event_base_free(f->base);
    cg_redis_server_stop(&f->rs);
    free(f);
    return 0;
}

static void wait_for(struct fixture *f, struct result *res)
{
    assert_int_equal(cgt_run_until(f->base, &res->done, 5000), 0);
}

static void enter(struct fixture *f, const char *sid, int fast_ok, long long limit,
                  struct result *res)
{
    struct gate_enter e = {
        .sid = sid,
        .from = "+15550000001",
        .to = "+15550000002",
        .adopt = 0,
        .max_queue = 10,
        .limit = limit,
        .fast_ok = fast_ok,
        .lease_ms = 30000,
        .instance = "inst-a",
        .waited_ms = 0,
    };
    memset(res, 0, sizeof *res);
    assert_int_equal(gate_store_enter(&f->store, &e, on_reply, res), 0);
    wait_for(f, res);
}

static void test_verdict_words(void **state)
{
    (void)state;
    /* Every word round-trips; GV_NONE and GV_OTHER have none. */
    for (int v = GV_FAST; v <= GV_FAILED; v++) {
        const char *name = gate_verdict_name((enum gate_verdict)v);
        assert_true(name[0] != '\0');
        redisReply e = {.type = REDIS_REPLY_STRING, .str = (char *)name, .len = strlen(name)};
        redisReply *elems[] = {&e};
        redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = elems};
        assert_int_equal(gate_verdict_at(&r, 0), v);
        assert_int_equal(gate_verdict_at(&r, 1), GV_NONE);
    }
    assert_string_equal(gate_verdict_name(GV_RELEASED_ORPHAN), "released-orphan");
    assert_string_equal(gate_verdict_name(GV_FAILED), "failed");
    assert_string_equal(gate_verdict_name(GV_NONE), "");
    redisReply e = {.type = REDIS_REPLY_STRING, .str = (char *)"nonsense", .len = 8};
    redisReply *elems[] = {&e};
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = elems};
    assert_int_equal(gate_verdict_at(&r, 0), GV_OTHER);
    assert_int_equal(gate_verdict_at(NULL, 0), GV_NONE);
}

/* The admission list's decoders on replies of every shape: a context is
 * known only as the six typed elements admission_context returns. */
static void test_admitted_decoding(void **state)
{
    (void)state;
    redisReply e[6] = {
        {.type = REDIS_REPLY_INTEGER, .integer = 4200},
        {.type = REDIS_REPLY_INTEGER, .integer = 7},
        {.type = REDIS_REPLY_STRING, .str = (char *)"+15550000002", .len = 12},
        {.type = REDIS_REPLY_INTEGER, .integer = 1},
        {.type = REDIS_REPLY_INTEGER, .integer = 1700000000000},
        {.type = REDIS_REPLY_STRING, .str = (char *)"sales", .len = 5},
    };
    redisReply *ep[6] = {&e[0], &e[1], &e[2], &e[3], &e[4], &e[5]};
    redisReply ctx = {.type = REDIS_REPLY_ARRAY, .elements = 6, .element = ep};
    redisReply sid = {.type = REDIS_REPLY_STRING, .str = (char *)"CA1", .len = 3};
    redisReply from = {.type = REDIS_REPLY_STRING, .str = (char *)"+15550000001", .len = 12};
    redisReply att = {.type = REDIS_REPLY_INTEGER, .integer = 2};
    redisReply *lp[] = {&sid, &from, &att, &ctx, &sid, &from};
    redisReply list = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = lp};

    struct gate_admitted ad;
    assert_int_equal(gate_admitted_at(&list, 0, &ad), 0);
    assert_string_equal(ad.sid, "CA1");
    assert_string_equal(ad.from, "+15550000001");
    assert_int_equal(ad.attempt, 2);
    assert_true(ad.ctx.known);
    assert_int_equal(ad.ctx.waited_ms, 4200);
    assert_int_equal(ad.ctx.entry_pos, 7);
    assert_string_equal(ad.ctx.dialed, "+15550000002");
    assert_true(ad.ctx.callback);
    assert_int_equal(ad.ctx.enqueued_at_ms, 1700000000000);
    assert_string_equal(ad.ctx.route, "sales");
    /* No whole entry further on (a truncated one included), none in
     * something that is no array. */
    assert_int_equal(gate_admitted_at(&list, 4, &ad), -1);
    list.elements = 6;
    assert_int_equal(gate_admitted_at(&list, 4, &ad), -1);
    assert_int_equal(gate_admitted_at(NULL, 0, &ad), -1);
    assert_int_equal(gate_admitted_at(&sid, 0, &ad), -1);

    /* Unknown: an empty context (a reservation), a short one, a string
     * where the number dialled should be, no array, out of range. */
    struct gate_queue_context c;
    redisReply empty = {.type = REDIS_REPLY_ARRAY, .elements = 0, .element = NULL};
    redisReply *hp[] = {&empty, &ctx, &sid};
    redisReply holder = {.type = REDIS_REPLY_ARRAY, .elements = 3, .element = hp};
    gate_queue_context_at(&holder, 0, &c);
    assert_false(c.known);
    assert_int_equal(c.waited_ms, -1);
    assert_int_equal(c.entry_pos, 0);
    assert_string_equal(c.dialed, "");
    assert_string_equal(c.route, "");
    ctx.elements = 5;
    gate_queue_context_at(&holder, 1, &c);
    assert_false(c.known);
    ctx.elements = 6;
    ep[2] = &att;
    gate_queue_context_at(&holder, 1, &c);
    assert_false(c.known);
    ep[2] = &e[2];
    gate_queue_context_at(&holder, 1, &c);
    assert_true(c.known);
    gate_queue_context_at(&holder, 2, &c);
    assert_false(c.known);
    gate_queue_context_at(&holder, 3, &c);
    assert_false(c.known);
    gate_queue_context_at(NULL, 0, &c);
    assert_false(c.known);
}

/* enter, position, connected, snapshot, members and end, with their
 * arguments where each script expects them. */
static void test_wrappers(void **state)
{
    struct fixture *f = *state;
    struct result res;

    /* limit 1: the first caller is admitted at once, the second waits. */
    enter(f, "CA1", 1, 1, &res);
    assert_false(res.failed);
    assert_int_equal(res.verdict, GV_FAST);
    /* With the caller's queue context: first, no wait, the number dialled. */
    assert_true(res.ctx.known);
    assert_int_equal(res.ctx.waited_ms, 0);
    assert_int_equal(res.ctx.entry_pos, 1);
    assert_string_equal(res.ctx.dialed, "+15550000002");
    assert_false(res.ctx.callback);
    assert_true(res.ctx.enqueued_at_ms > 0);
    assert_string_equal(res.ctx.route, "");
    char *by = cgt_redis_cmd(&f->rs, "HGET " P "call:CA1 admitted_by");
    assert_string_equal(by, "inst-a");
    free(by);
    char *to = cgt_redis_cmd(&f->rs, "HGET " P "call:CA1 to");
    assert_string_equal(to, "+15550000002");
    free(to);
    enter(f, "CA2", 1, 1, &res);
    assert_int_equal(res.verdict, GV_WAITING);
    assert_int_equal(res.n[1], 1); /* position */
    assert_int_equal(res.n[2], 0); /* no room */
    enter(f, "CA2", 1, 1, &res);
    assert_int_equal(res.verdict, GV_EXISTING);
    assert_string_equal(res.s[1], "waiting");

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_position(&f->store, "CA2", 0, 1000, 1, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_WAITING);
    assert_int_equal(res.n[1], 1);
    assert_int_equal(res.n[3], 1); /* limit */
    assert_int_equal(res.n[4], 1); /* active */

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_connected(&f->store, "CA1", 2, 60000, 300, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_STALE); /* attempt 2 is not CA1's */

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_vapi_created(&f->store, "CA1", 1, "v-1", 5000, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_OK);

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_connected(&f->store, "CA1", 1, 60000, 300, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_CONNECTED);

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_snapshot(&f->store, 1, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_NONE);
    assert_int_equal(res.n[0], 1); /* active */
    assert_int_equal(res.n[1], 1); /* waiting */
    assert_int_equal(res.n[2], 1); /* limit */

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_members(&f->store, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.elements, 2);
    assert_string_equal(res.s[0], "CA2");

    /* CA1's Vapi call ends: released, and CA2 admitted into the slot. */
    struct gate_end_signal es = {
        .kind = "vapi",
        .id = "v-1",
        .reason = "customer-ended-call",
        .end_grace_ms = 300,
        .limit = 1,
        .batch = 10,
        .lease_ms = 30000,
        .instance = "inst-b",
        .ewma_alpha = "0.03",
        .signal = "vapi-report",
        .orphan_hold_ms = 5000,
    };
    memset(&res, 0, sizeof res);
    res.want_list = 1;
    res.list_from = 3;
    assert_int_equal(gate_store_end(&f->store, &es, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_RELEASED);
    assert_string_equal(res.s[1], "CA1");
    assert_int_equal(res.nad, 1);
    assert_string_equal(res.ad[0].sid, "CA2");
    assert_string_equal(res.ad[0].from, "+15550000001");
    assert_int_equal(res.ad[0].attempt, 1);
    assert_true(res.ad[0].ctx.known);
    assert_true(res.ad[0].ctx.waited_ms >= 0);
    assert_int_equal(res.ad[0].ctx.entry_pos, 1);
    assert_string_equal(res.ad[0].ctx.dialed, "+15550000002");
    assert_false(res.ad[0].ctx.callback);
    char *admitted_by = cgt_redis_cmd(&f->rs, "HGET " P "call:CA2 admitted_by");
    assert_string_equal(admitted_by, "inst-b");
    free(admitted_by);

    /* A closed store runs nothing and calls nobody back. */
    gate_store_close(&f->store);
    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_members(&f->store, on_reply, &res), -1);
    cgt_run_for(f->base, 50);
    assert_int_equal(res.done, 0);
}

/* callback.lua's wrappers: each step with its arguments where the script
 * reads them (tests/unit/test_lua_callback.c tests the script). */
static void test_callback_wrappers(void **state)
{
    struct fixture *f = *state;
    struct result res;
    enter(f, "CA1", 1, 0, &res);
    assert_int_equal(res.verdict, GV_WAITING);
    enter(f, "CA2", 1, 0, &res);
    assert_int_equal(res.verdict, GV_WAITING);

    struct gate_callback_request q = {.sid = "CA1",
                                      .number = "+15550000009",
                                      .est_ms = 90000,
                                      .max_dials = 2,
                                      .retry_ms = 60000,
                                      .lease_ms = 70000};
    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_callback_request(&f->store, &q, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_CALLBACK);
    assert_int_equal(res.n[1], 1);
    static const char *const fields[][2] = {{"cb_number", "+15550000009"},
                                            {"cb_est_ms", "90000"},
                                            {"cb_max", "2"},
                                            {"cb_retry_ms", "60000"},
                                            {"cb_lease_ms", "70000"}};
    char *v;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        v = cgt_redis_cmd(&f->rs, "HGET " P "call:CA1 %s", fields[i][0]);
        assert_string_equal(v, fields[i][1]);
        free(v);
    }
    free(cgt_redis_cmd(&f->rs, "SET " P "cbwin 1"));

    memset(&res, 0, sizeof res);
    res.want_list = 1;
    assert_int_equal(gate_store_admit(&f->store, 1, 10, 30000, "inst-a", on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.elements, GATE_ADMITTED_WIDTH);
    assert_int_equal(res.nad, 1);
    assert_string_equal(res.ad[0].sid, "CA1");
    assert_string_equal(res.ad[0].from, "+15550000009");
    assert_int_equal(res.ad[0].attempt, -1);
    assert_false(res.ad[0].ctx.known); /* a reservation: no Vapi call, no context */

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_callback_dial(&f->store, "CA1", 1, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_DIAL);
    assert_string_equal(res.s[1], "+15550000009");
    assert_string_equal(res.s[2], "+15550000002");
    assert_int_equal(res.n[3], 1);

    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_callback_ringing(&f->store, "CA1", 1, "CB1", on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_OK);

    /* Busy: retried later; the slot goes to CA2 in the same step. */
    struct gate_callback_outcome o = {.sid = "CA1",
                                      .attempt = 1,
                                      .leg = "CB1",
                                      .reason = "busy",
                                      .limit = 1,
                                      .batch = 10,
                                      .lease_ms = 30000,
                                      .instance = "inst-b"};
    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_callback_outcome(&f->store, &o, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_RETRY);
    assert_string_equal(res.s[3], "CA2");
    v = cgt_redis_cmd(&f->rs, "HGET " P "call:CA2 admitted_by");
    assert_string_equal(v, "inst-b");
    free(v);

    /* The next attempt answered by a person. */
    free(cgt_redis_cmd(&f->rs, "HSET " P "call:CA1 cb_due_at 0"));
    free(cgt_redis_cmd(&f->rs, "ZREM " P "active CA2"));
    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_admit(&f->store, 1, 10, 30000, "inst-a", on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.n[2], -2);
    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_callback_dial(&f->store, "CA1", 2, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_DIAL);
    memset(&res, 0, sizeof res);
    assert_int_equal(
        gate_store_callback_answered(&f->store, "CA1", 2, "CB2", 30000, "inst-c", on_reply, &res),
        0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_ADMIT);
    assert_string_equal(res.s[1], "CB2");
    assert_int_equal(res.n[3], 1);
    /* The leg's context: a callback, from the caller's first entry. */
    assert_true(res.ctx.known);
    assert_true(res.ctx.callback);
    assert_int_equal(res.ctx.entry_pos, 1);
    assert_string_equal(res.ctx.dialed, "+15550000002");
    char *enq = cgt_redis_cmd(&f->rs, "HGET " P "call:CA1 enqueued_at");
    assert_int_equal(res.ctx.enqueued_at_ms, atoll(enq));
    free(enq);
    v = cgt_redis_cmd(&f->rs, "HGET " P "call:CB2 admitted_by");
    assert_string_equal(v, "inst-c");
    free(v);

    /* An expiry of the old attempt is stale. */
    o.expire = 1;
    o.attempt = 1;
    o.leg = NULL;
    memset(&res, 0, sizeof res);
    assert_int_equal(gate_store_callback_outcome(&f->store, &o, on_reply, &res), 0);
    wait_for(f, &res);
    assert_int_equal(res.verdict, GV_STALE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_words),
        cmocka_unit_test(test_admitted_decoding),
        cmocka_unit_test_setup_teardown(test_wrappers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_wrappers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
