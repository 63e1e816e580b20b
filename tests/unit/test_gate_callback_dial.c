/*
 * One dial of a queued callback (src/gate/callback_dial.c) against a real
 * redis-server and a scripted loopback Twilio: the claim before the call,
 * one Twilio request per attempt even when two dialers race, the leg
 * recorded, a refused call settled as failed with the slot refilled, and
 * no answer from Twilio left to the lease.
 */
#include "base/fmacros.h"

#include "fakescript.h"
#include "harness.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/form.h"
#include "gate/callback_dial.h"
#include "gate/keys.h"
#include "gate/lua_scripts.h"
#include "gate/store.h"
#include "net/httpc.h"
#include "net/redis.h"
#include "twilio/api.h"

#define P   "cg:{t}:"
#define AC  "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CA1 "CA11111111111111111111111111111111"
#define CA2 "CA22222222222222222222222222222222"
#define LEG "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define BODY_CREATED                                                                               \
    "{\"account_sid\":\"" AC "\",\"sid\":\"" LEG "\",\"status\":\"queued\","                       \
    "\"direction\":\"outbound-api\"}"

struct fixture {
    struct cg_redis_server rs;
    struct event_base *base;
    struct cg_redis *redis, *redis2;
    struct cg_keys keys;
    struct gate_store store, store2;
    struct cgt_script srv;
    struct cg_httpc *httpc;
    struct cg_twilio *tw;
    struct gate_callback_dialer d, d2;
};

struct result {
    int done;
    enum gate_callback_dialed v;
    char leg[40];
    size_t settled_elements;
    char admitted[40];
};

static void on_dialed(enum gate_callback_dialed v, const char *leg, const redisReply *settled,
                      void *arg)
{
    struct result *r = arg;
    r->done++;
    r->v = v;
    snprintf(r->leg, sizeof r->leg, "%s", leg ? leg : "");
    r->settled_elements = settled ? settled->elements : 0;
    const char *a = settled ? cg_redis_reply_str(settled, 3) : NULL;
    snprintf(r->admitted, sizeof r->admitted, "%s", a ? a : "");
}

/* A store reply, copied out. */
struct sres {
    int done;
    enum gate_verdict verdict;
    size_t elements;
    long long n[8];
};

static void on_store(const struct gate_reply *rep, void *arg)
{
    struct sres *r = arg;
    r->done = 1;
    r->verdict = rep->verdict;
    if (rep->r == NULL || rep->r->type != REDIS_REPLY_ARRAY)
        return;
    r->elements = rep->r->elements;
    for (size_t i = 0; i < r->elements && i < 8; i++)
        r->n[i] = cg_redis_reply_int(rep->r, i, -999);
}

static struct cg_redis *connect_redis(struct fixture *f, struct gate_store *st)
{
    char err[256];
    struct cg_redis_opts ro = {.url = f->rs.url};
    struct cg_redis *r = cg_redis_new(f->base, &ro, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(gate_store_init(st, r, &f->keys, err, sizeof err), 0);
    uint64_t until = cgt_now_ms() + 5000;
    while (cg_redis_state(r) != CG_REDIS_READY && cgt_now_ms() < until)
        cgt_run_for(f->base, 10);
    assert_int_equal(cg_redis_state(r), CG_REDIS_READY);
    return r;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cgt_redis_start(&f->rs);
    f->base = event_base_new();
    cg_keys_init(&f->keys, "t");
    f->redis = connect_redis(f, &f->store);
    f->redis2 = connect_redis(f, &f->store2);
    cgt_script_start(&f->srv, f->base, "twilio", "{\"message\":\"unscripted\"}");
    f->httpc = cg_httpc_new(f->base, NULL);
    struct cg_twilio_opts o = {
        .base_url = f->srv.base_url, .account_sid = AC, .auth_token = "tok", .timeout_ms = 2000};
    f->tw = cg_twilio_new(f->base, f->httpc, &o);
    assert_non_null(f->tw);
    f->d = (struct gate_callback_dialer){.store = &f->store,
                                         .twilio = f->tw,
                                         .public_url = "https://gate.example.com",
                                         .ring_s = 25,
                                         .machine_detection = 1,
                                         .limit = 1,
                                         .batch = 10,
                                         .lease_ms = 30000,
                                         .instance = "inst-a"};
    f->d2 = f->d;
    f->d2.store = &f->store2;
    f->d2.instance = "inst-b";

    free(cgt_redis_cmd(&f->rs, "SET " P "intact 1"));
    free(cgt_redis_cmd(&f->rs, "SET " P "cbwin 1"));
    /* CA1 waits and asks for a callback; CA2 waits behind on the line. */
    const char *sids[] = {CA1, CA2};
    for (int i = 0; i < 2; i++) {
        free(cgt_redis_cmd(&f->rs,
                           "HSET " P "call:%s state waiting from +15550000001 to +15550000002 "
                           "ticket %d enqueued_at 1 attempts 0",
                           sids[i], i + 1));
        free(cgt_redis_cmd(&f->rs, "ZADD " P "waiting %d %s", i + 1, sids[i]));
    }
    struct gate_callback_request q = {.sid = CA1,
                                      .number = "+15550000009",
                                      .est_ms = 60000,
                                      .max_dials = 3,
                                      .retry_ms = 60000,
                                      .lease_ms = 70000};
    struct sres r = {0};
    assert_int_equal(gate_store_callback_request(&f->store, &q, on_store, &r), 0);
    assert_int_equal(cgt_run_until(f->base, &r.done, 5000), 0);
    assert_int_equal(r.verdict, GV_CALLBACK);
    /* Its turn: the slot reserved (admit's sid, number, -attempt, {}). */
    memset(&r, 0, sizeof r);
    assert_int_equal(gate_store_admit(&f->store, 1, 10, 30000, "inst-a", on_store, &r), 0);
    assert_int_equal(cgt_run_until(f->base, &r.done, 5000), 0);
    assert_int_equal(r.elements, GATE_ADMITTED_WIDTH);
    assert_int_equal(r.n[2], -1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cg_twilio_free(f->tw);
    cg_httpc_free(f->httpc);
    cgt_script_stop(&f->srv);
    cg_redis_free(f->redis);
    cg_redis_free(f->redis2);
    event_base_free(f->base);
    cg_redis_server_stop(&f->rs);
    free(f);
    return 0;
}

static void assert_field(struct fixture *f, const char *sid, const char *field, const char *want)
{
    char *v = cgt_redis_cmd(&f->rs, "HGET " P "call:%s %s", sid, field);
    assert_string_equal(v, want);
    free(v);
}

static void test_dial_ringing(void **state)
{
    struct fixture *f = *state;
    cgt_script(&f->srv, 201, BODY_CREATED);
    struct result r = {0};
    assert_int_equal(gate_callback_dial(&f->d, CA1, 1, on_dialed, &r), 0);
    assert_int_equal(cgt_run_until(f->base, &r.done, 5000), 0);
    assert_int_equal(r.v, GATE_CB_DIALED_RINGING);
    assert_string_equal(r.leg, LEG);
    assert_field(f, CA1, "state", "cb_ringing");
    assert_field(f, CA1, "cb_leg", LEG);
    /* What Twilio was asked: the callback number, from the number the
     * caller dialled, with detection and this attempt in the URLs. */
    assert_int_equal(f->srv.nseen, 1);
    struct cg_form form;
    cg_form_init(&form);
    const char *body = f->srv.seen[0].body;
    assert_int_equal(cg_form_parse(&form, body, strlen(body), NULL), 0);
    assert_string_equal(cg_form_get(&form, "To"), "+15550000009");
    assert_string_equal(cg_form_get(&form, "From"), "+15550000002");
    assert_string_equal(cg_form_get(&form, "Url"),
                        "https://gate.example.com/callback-answer?sid=" CA1 "&attempt=1");
    assert_string_equal(cg_form_get(&form, "StatusCallback"),
                        "https://gate.example.com/callback-status?sid=" CA1 "&attempt=1");
    assert_string_equal(cg_form_get(&form, "MachineDetection"), "Enable");
    assert_string_equal(cg_form_get(&form, "Timeout"), "25");
    cg_form_free(&form);
    /* No Vapi call while it rings. */
    char *n = cgt_redis_cmd(&f->rs, "EXISTS " P "vapi:" LEG);
    assert_string_equal(n, "0");
    free(n);

    /* The same attempt again: claimed already, nothing sent. */
    memset(&r, 0, sizeof r);
    assert_int_equal(gate_callback_dial(&f->d, CA1, 1, on_dialed, &r), 0);
    assert_int_equal(cgt_run_until(f->base, &r.done, 5000), 0);
    assert_int_equal(r.v, GATE_CB_DIALED_STALE);
    cgt_run_for(f->base, 50);
    assert_int_equal(f->srv.nseen, 1);
}

/* Two instances asked to dial the same attempt at once: one call. */
static void test_two_dialers_one_call(void **state)
{
    struct fixture *f = *state;
    cgt_script(&f->srv, 201, BODY_CREATED);
    cgt_script(&f->srv, 201, BODY_CREATED);
    struct result a = {0}, b = {0};
    assert_int_equal(gate_callback_dial(&f->d, CA1, 1, on_dialed, &a), 0);
    assert_int_equal(gate_callback_dial(&f->d2, CA1, 1, on_dialed, &b), 0);
    assert_int_equal(cgt_run_until(f->base, &a.done, 5000), 0);
    assert_int_equal(cgt_run_until(f->base, &b.done, 5000), 0);
    cgt_run_for(f->base, 50);
    assert_int_equal((a.v == GATE_CB_DIALED_RINGING) + (b.v == GATE_CB_DIALED_RINGING), 1);
    assert_int_equal((a.v == GATE_CB_DIALED_STALE) + (b.v == GATE_CB_DIALED_STALE), 1);
    assert_int_equal(f->srv.nseen, 1);
    assert_int_equal(a.done + b.done, 2);
}

/* Twilio refuses the number: the callback ends failed at once (retrying
 * would be refused again), and the freed slot goes to CA2. */
static void test_refused_settles_failed(void **state)
{
    struct fixture *f = *state;
    cgt_script(&f->srv, 400, "{\"code\":21215,\"message\":\"Geo permissions\",\"status\":400}");
    struct result r = {0};
    assert_int_equal(gate_callback_dial(&f->d, CA1, 1, on_dialed, &r), 0);
    assert_int_equal(cgt_run_until(f->base, &r.done, 5000), 0);
    assert_int_equal(r.v, GATE_CB_DIALED_FAILED);
    assert_field(f, CA1, "state", "cb_failed");
    assert_field(f, CA1, "ended_reason", "refused-21215");
    assert_string_equal(r.admitted, CA2);
    assert_field(f, CA2, "admitted_by", "inst-a");
    assert_int_equal(f->srv.nseen, 1);
}

/* No answer from Twilio: the call may exist, so nothing is settled and
 * nothing is sent again; the slot's lease decides. */
static void test_no_answer_left_to_lease(void **state)
{
    struct fixture *f = *state;
    cgt_script(&f->srv, 503, "Service Unavailable");
    struct result r = {0};
    assert_int_equal(gate_callback_dial(&f->d, CA1, 1, on_dialed, &r), 0);
    assert_int_equal(cgt_run_until(f->base, &r.done, 5000), 0);
    cgt_run_for(f->base, 50);
    assert_int_equal(r.v, GATE_CB_DIALED_UNKNOWN);
    assert_field(f, CA1, "state", "cb_dialing");
    assert_int_equal(f->srv.nseen, 1);
}

/* The reservation ran out (settled by the sweep) while Twilio placed the
 * call: the leg is nobody's and is hung up. */
static void test_leg_after_expiry_hung_up(void **state)
{
    struct fixture *f = *state;
    cgt_script(&f->srv, 201, BODY_CREATED);
    cgt_script(&f->srv, 200, BODY_CREATED); /* the hang-up */
    struct result r = {0};
    assert_int_equal(gate_callback_dial(&f->d, CA1, 1, on_dialed, &r), 0);
    /* One loop turn at a time until the claim is in: Twilio has not yet
     * seen the request, so the leg cannot be recorded before the expiry
     * below, which runs at once on its own connection, as the sweep of
     * another instance would. */
    uint64_t until = cgt_now_ms() + 5000;
    for (;;) {
        char *st = cgt_redis_cmd(&f->rs, "HGET " P "call:" CA1 " state");
        int dialing = strcmp(st, "cb_dialing") == 0;
        free(st);
        if (dialing)
            break;
        assert_true(cgt_now_ms() < until);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_int_equal(f->srv.nseen, 0);
    char *v = cgt_redis_cmd(&f->rs, "EVAL %s 1 %s %s %s %s %s %s %s %s %s %s %s %s",
                            cg_lua_callback, P "waiting", P, "expire", CA1, "1", "",
                            "lease-expired", "0", "1", "0", "30000", "sweep");
    free(v);
    assert_field(f, CA1, "state", "callback");
    assert_int_equal(cgt_run_until(f->base, &r.done, 5000), 0);
    assert_int_equal(r.v, GATE_CB_DIALED_STALE);
    until = cgt_now_ms() + 5000;
    while (f->srv.nseen < 2 && cgt_now_ms() < until)
        cgt_run_for(f->base, 10);
    assert_int_equal(f->srv.nseen, 2);
    assert_string_equal(f->srv.seen[1].path, "/2010-04-01/Accounts/" AC "/Calls/" LEG ".json");
    assert_non_null(strstr(f->srv.seen[1].body, "Status=completed"));
    assert_field(f, CA1, "state", "callback");
    assert_field(f, CA1, "cb_dials", "1");
}

static void test_bad_input(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    assert_int_equal(gate_callback_dial(&f->d, "CA1&x=1", 1, on_dialed, &r), -1);
    assert_int_equal(gate_callback_dial(&f->d, CA1, 0, on_dialed, &r), -1);
    assert_int_equal(gate_callback_dial(&f->d, CA1, 1, NULL, &r), -1);
    assert_int_equal(gate_callback_dial(NULL, CA1, 1, on_dialed, &r), -1);
    cgt_run_for(f->base, 20);
    assert_int_equal(r.done, 0);
    assert_int_equal(f->srv.nseen, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dial_ringing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_dialers_one_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_settles_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_answer_left_to_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leg_after_expiry_hung_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
