/*
 * The admission engine (src/gate/engine.c) on its own: no HTTP server and
 * no callgate process. A real redis-server holds the gate's state, the
 * threaded fake in tests/harness plays Twilio's and Vapi's APIs, and the
 * test drives the engine through its entry points (gate_arrive, gate_end)
 * on its own event loop, reading the answers the engine hands back and the
 * state it leaves in Redis.
 */
#include "harness.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "base/form.h"
#include "base/log.h"
#include "base/metrics.h"
#include "fakeapi.h"
#include "gate/callback_dial.h"
#include "gate/gate.h"
#include "gate/internal.h"
#include "gate/keys.h"
#include "net/httpc.h"
#include "net/redis.h"
#include "twilio/twiml.h"
#include "vapi/api.h"

#define ACCOUNT_SID "AC0123456789abcdef0123456789abcdef"
#define AUTH_TOKEN  "test-twilio-auth-token-42"
#define QUEUE_SID   "QU0123456789abcdef0123456789abcdef"
#define QUEUE_NAME  "customer-support"
#define VAPI_KEY    "test-vapi-api-key-7"
#define CALLER      "+15557770000"
#define CALLED      "+15550001111"
#define P           "cg:{default}:"

/* Generous bounds for things that take milliseconds when all is well. */
#define SOON  5000
#define LATER 10000

/* What the engine answered one caller's webhook with. */
struct answer {
    int done;
    char *twiml;
};

struct fixture {
    struct cg_redis_server rs;
    struct cgt_fake *fake;
    struct cg_config cfg;
    int cfg_loaded;
    struct event_base *base;
    struct cg_redis *redis;
    struct cg_httpc *httpc;
    struct cg_metrics *metrics;
    struct cg_keys keys;
    struct cg_gate *g;
    /* Owned here, not by the tests' frames: the engine may answer during
     * teardown. */
    struct answer answers[8];
};

static unsigned sid_counter;

static void new_sid(char out[40])
{
    snprintf(out, 40, "CA%032x", ++sid_counter);
}

static void on_answer(char *twiml, void *arg)
{
    struct answer *a = arg;
    if (a->done)
        fail_msg("the engine answered one webhook twice");
    a->done = 1;
    a->twiml = twiml;
}

static int setup(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
    f->base = event_base_new();
    assert_non_null(f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->g)
        cg_gate_detach(f->g);
    cg_redis_free(f->redis);
    cg_gate_free(f->g);
    cg_httpc_free(f->httpc);
    cg_metrics_free(f->metrics);
    event_base_free(f->base);
    for (size_t i = 0; i < sizeof f->answers / sizeof f->answers[0]; i++)
        free(f->answers[i].twiml);
    if (f->cfg_loaded)
        cg_config_free(&f->cfg);
    cgt_fake_stop(f->fake);
    cg_redis_server_stop(&f->rs);
    free(f);
    return 0;
}

static void set(const char *name, const char *value)
{
    assert_int_equal(setenv(name, value, 1), 0);
}

/* Loads a configuration from the environment (every option unset first,
 * then the test's settings, then extra "NAME=value" pairs), connects to
 * Redis and creates the gate. */
static void start_gate(struct fixture *f, const char *const *extra)
{
    for (size_t i = 0; cg_config_option_name(i); i++)
        unsetenv(cg_config_option_name(i));
    set("TWILIO_ACCOUNT_SID", ACCOUNT_SID);
    set("TWILIO_AUTH_TOKEN", AUTH_TOKEN);
    set("TWILIO_QUEUE_SID", QUEUE_SID);
    set("TWILIO_QUEUE_NAME", QUEUE_NAME);
    set("TWILIO_API_BASE_URL", cgt_fake_url(f->fake));
    set("VAPI_BASE_URL", cgt_fake_url(f->fake));
    set("VAPI_API_KEY", VAPI_KEY);
    set("VAPI_PHONE_NUMBER_ID", "phone-number-id-1");
    set("VAPI_ASSISTANT_ID", "assistant-id-1");
    set("VAPI_WEBHOOK_SECRET", "test-vapi-webhook-secret");
    set("PUBLIC_URL", "https://gate.example.com");
    set("REDIS_URL", f->rs.url);
    set("SWEEP_INTERVAL_MS", "100");
    set("END_GRACE_MS", "300");
    set("ADMISSION_BACKOFF_MIN_MS", "50");
    set("ADMISSION_BACKOFF_MAX_MS", "400");
    cg_log_set_level(CG_LOG_WARN);
    for (size_t i = 0; extra && extra[i]; i++) {
        char name[64];
        const char *eq = strchr(extra[i], '=');
        assert_non_null(eq);
        snprintf(name, sizeof name, "%.*s", (int)(eq - extra[i]), extra[i]);
        set(name, eq + 1);
    }
    struct cg_config_errors errs;
    if (cg_config_load(&f->cfg, NULL, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            print_message("config: %s\n", errs.msgs[i]);
        cg_config_errors_free(&errs);
        fail_msg("the test's configuration was refused");
    }
    cg_config_errors_free(&errs);
    f->cfg_loaded = 1;

    char err[256];
    struct cg_redis_opts ro = {.url = f->cfg.redis_url};
    f->redis = cg_redis_new(f->base, &ro, err, sizeof err);
    assert_non_null(f->redis);
    struct cg_httpc_opts co = {.default_max_response_bytes = 1024 * 1024,
                               .default_timeout_ms = 10000};
    f->httpc = cg_httpc_new(f->base, &co);
    assert_non_null(f->httpc);
    f->metrics = cg_metrics_new();
    cg_keys_init(&f->keys, f->cfg.gate_name);
    assert_true(f->cfg.services & CG_SERVICE_GATE);
    struct cg_gate_deps d = {
        .base = f->base,
        .cfg = &f->cfg,
        .keys = &f->keys,
        .redis = f->redis,
        .httpc = f->httpc,
        .metrics = f->metrics,
    };
    f->g = cg_gate_new(&d, err, sizeof err);
    if (f->g == NULL)
        fail_msg("cg_gate_new: %s", err);
    uint64_t until = cgt_now_ms() + SOON;
    while (cg_redis_state(f->redis) != CG_REDIS_READY && cgt_now_ms() < until)
        cgt_run_for(f->base, 10);
    assert_int_equal(cg_redis_state(f->redis), CG_REDIS_READY);
    /* A fresh Redis: admission waits for the first repair from Vapi's
     * (here empty) list of live calls. */
    until = cgt_now_ms() + SOON;
    for (;;) {
        char *ok = cgt_redis_cmd(&f->rs, "EXISTS " P "intact");
        int done = strcmp(ok, "1") == 0;
        free(ok);
        if (done)
            break;
        if (cgt_now_ms() > until)
            fail_msg("the gate never repaired its slots on a fresh Redis");
        cgt_run_for(f->base, 10);
    }
}

/* ---- Redis, read with a blocking client ---- */

static char *call_state(struct fixture *f, const char *sid)
{
    return cgt_redis_cmd(&f->rs, "HGET " P "call:%s state", sid);
}

/* Runs the loop until sid's record has state want. */
static void wait_state(struct fixture *f, const char *sid, const char *want, int timeout_ms)
{
    uint64_t until = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *st = call_state(f, sid);
        int ok = strcmp(st, want) == 0;
        if (ok || cgt_now_ms() > until) {
            if (!ok)
                fail_msg("%s is %s, not %s", sid, st, want);
            free(st);
            return;
        }
        free(st);
        cgt_run_for(f->base, 10);
    }
}

/* The caller's place in the waiting queue: 1 at the head, 0 when absent. */
static long position_of(struct fixture *f, const char *sid)
{
    char *r = cgt_redis_cmd(&f->rs, "ZRANK " P "waiting %s", sid);
    long pos = strcmp(r, "(nil)") == 0 ? 0 : strtol(r, NULL, 10) + 1;
    free(r);
    return pos;
}

static long zcard(struct fixture *f, const char *key)
{
    char *r = cgt_redis_cmd(&f->rs, "ZCARD " P "%s", key);
    long n = strtol(r, NULL, 10);
    free(r);
    return n;
}

/* ---- driving the engine ---- */

/* A caller rings: the engine records them and answers slot's webhook. */
static struct answer *arrive(struct fixture *f, int slot, const char *sid)
{
    struct answer *a = &f->answers[slot];
    gate_arrive(f->g, sid, CALLER, CALLED, on_answer, a);
    if (cgt_run_until(f->base, &a->done, SOON) != 0)
        fail_msg("no answer for %s", sid);
    assert_non_null(a->twiml);
    return a;
}

/* The TwiML the fake Vapi handed out for sid's last call (malloc'd). */
static char *vapi_twiml_of(struct fixture *f, const char *sid)
{
    char *id = cgt_fake_vapi_id(f->fake, sid);
    if (id == NULL)
        fail_msg("no Vapi call was created for %s", sid);
    char *twiml = cgt_fake_twiml_for(id);
    free(id);
    return twiml;
}

/* The last Vapi create's body has each of the strings of want (NULL
 * ended) and none of not (NULL ended, or NULL). */
static void assert_last_create(struct fixture *f, const char *const *want, const char *const * not )
{
    char *body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    assert_non_null(body);
    for (size_t i = 0; want[i]; i++)
        if (strstr(body, want[i]) == NULL)
            fail_msg("the Vapi create lacks %s: %s", want[i], body);
    for (size_t i = 0; not != NULL && not [i]; i++)
        if (strstr(body, not [i]) != NULL)
            fail_msg("the Vapi create has %s: %s", not [i], body);
    free(body);
}

static void assert_enqueue(struct fixture *f, const struct answer *a)
{
    char *want = gate_enqueue_twiml(f->g);
    assert_string_equal(a->twiml, want);
    assert_non_null(strstr(a->twiml, "<Enqueue"));
    free(want);
}

static void wait_update(struct fixture *f, const char *sid, int n, int timeout_ms)
{
    uint64_t until = cgt_now_ms() + (uint64_t)timeout_ms;
    while (cgt_fake_update_count(f->fake, sid) < n) {
        if (cgt_now_ms() > until)
            fail_msg("no Calls update #%d for %s", n, sid);
        cgt_run_for(f->base, 10);
    }
}

/* The caller rings while a slot is free and gets the assistant at once. */
static void connect_fast(struct fixture *f, int slot, const char *sid)
{
    struct answer *a = arrive(f, slot, sid);
    char *want = vapi_twiml_of(f, sid);
    assert_string_equal(a->twiml, want);
    free(want);
    wait_state(f, sid, "connected", SOON);
}

struct end_result {
    int done;
    enum gate_verdict verdict;
};

static void on_end(enum gate_verdict verdict, void *arg)
{
    struct end_result *e = arg;
    e->done = 1;
    e->verdict = verdict;
}

/* ---- tests ---- */

static void metrics_done(void *arg)
{
    *(int *)arg = 1;
}

/* A free slot: the webhook is answered with the assistant's TwiML itself
 * (no Calls update), the caller is connected and holds the slot. */
static void test_fast_path_free_slot(void **state)
{
    struct fixture *f = *state;
    start_gate(f, (const char *const[]){"MAX_CONCURRENCY=2", "FAST_PATH_DEADLINE_MS=5000", NULL});
    char a[40];
    new_sid(a);
    connect_fast(f, 0, a);
    assert_int_equal(cgt_fake_create_count(f->fake, a), 1);
    assert_int_equal(cgt_fake_update_count(f->fake, a), 0);
    /* The queue context came with the enter step's own reply. */
    assert_last_create(f,
                       (const char *const[]){a, "\"callgateWaitSeconds\":0",
                                             "\"callgatePosition\":1", "\"callgateRequeued\":false",
                                             "\"callgateDialedNumber\":\"" CALLED "\"", NULL},
                       (const char *const[]){"callgateCallback", NULL});
    assert_int_equal(zcard(f, "active"), 1);
    assert_int_equal(zcard(f, "waiting"), 0);

    /* The figures the app's /metrics shows. */
    int collected = 0;
    cg_gate_collect_metrics(f->g, metrics_done, &collected);
    assert_int_equal(cgt_run_until(f->base, &collected, SOON), 0);
    struct cg_buf b;
    cg_buf_init(&b, 1 << 20);
    cg_metrics_render(f->metrics, &b);
    assert_non_null(strstr(cg_buf_str(&b), "\ncallgate_active 1\n"));
    assert_non_null(strstr(cg_buf_str(&b), "\ncallgate_waiting 0\n"));
    assert_non_null(strstr(cg_buf_str(&b), "\ncallgate_redis_up 1\n"));
    cg_buf_free(&b);
}

/* Every slot taken: the caller is answered with Enqueue, waits at the
 * head, and Vapi is not asked. */
static void test_full_enqueues(void **state)
{
    struct fixture *f = *state;
    start_gate(f, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    struct answer *ab = arrive(f, 1, b);
    assert_enqueue(f, ab);
    assert_string_equal(ab->twiml,
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Enqueue "
                        "action=\"https://gate.example.com/queue-exit\" method=\"POST\" "
                        "waitUrl=\"https://gate.example.com/queue-wait\" waitUrlMethod=\"POST\">"
                        "customer-support</Enqueue></Response>");
    char *st = call_state(f, b);
    assert_string_equal(st, "waiting");
    free(st);
    assert_int_equal(position_of(f, b), 1);
    cgt_run_for(f->base, 300);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 0);
    assert_int_equal(zcard(f, "active"), 1);
}

/* Vapi reports the connected caller's call ended: the slot is released
 * and the next caller admitted into it (Vapi call, TwiML pushed with a
 * Calls update, connected). */
static void test_end_admits_next(void **state)
{
    struct fixture *f = *state;
    /* No sweep meanwhile: its safety run of admission would hide an end
     * signal that admits nobody. */
    start_gate(f, (const char *const[]){"MAX_CONCURRENCY=1", "SWEEP_INTERVAL_MS=60000", NULL});
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    assert_enqueue(f, arrive(f, 1, b));
    assert_int_equal(cgt_fake_create_count(f->fake, b), 0);

    char *vid = cgt_fake_vapi_id(f->fake, a);
    assert_non_null(vid);
    struct end_result e = {0};
    gate_end(f->g, "vapi", vid, "customer-ended-call", "vapi-report", on_end, &e);
    free(vid);
    assert_int_equal(cgt_run_until(f->base, &e.done, SOON), 0);
    assert_int_equal(e.verdict, GV_RELEASED);
    assert_string_equal(gate_verdict_name(e.verdict), "released");

    wait_update(f, b, 1, SOON);
    char *want = vapi_twiml_of(f, b);
    char *got = cgt_fake_update_twiml(f->fake, b);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
    /* Admitted by end.lua: the context came with that step's reply. */
    assert_last_create(f,
                       (const char *const[]){b, "\"callgateWaitSeconds\":",
                                             "\"callgatePosition\":1", "\"callgateRequeued\":false",
                                             "\"callgateDialedNumber\":\"" CALLED "\"", NULL},
                       NULL);
    wait_state(f, b, "connected", SOON);
    char *st = call_state(f, a);
    assert_string_equal(st, "ended");
    free(st);
    assert_int_equal(position_of(f, b), 0);
    assert_int_equal(zcard(f, "active"), 1);

    /* The same end again changes nothing. */
    vid = cgt_fake_vapi_id(f->fake, a);
    struct end_result again = {0};
    gate_end(f->g, "vapi", vid, "customer-ended-call", "vapi-status", on_end, &again);
    free(vid);
    assert_int_equal(cgt_run_until(f->base, &again.done, SOON), 0);
    assert_int_equal(again.verdict, GV_DUPLICATE);
    assert_int_equal(zcard(f, "active"), 1);
}

/* Vapi says it is over its own limit: the caller the fast path was
 * admitting hears Enqueue and goes back to the head of the queue, the cap
 * drops to what is active, and once Vapi has room that caller (not the
 * one behind) is admitted first. */
static void test_vapi_overlimit_requeues_at_head(void **state)
{
    struct fixture *f = *state;
    start_gate(f, (const char *const[]){"MAX_CONCURRENCY=2", "OVERLIMIT_HOLD_SECONDS=1",
                                        "FAST_PATH_DEADLINE_MS=5000", NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);

    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_OVERLIMIT);
    struct answer *ab = arrive(f, 1, b);
    assert_enqueue(f, ab);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 1);
    wait_state(f, b, "waiting", SOON);
    assert_int_equal(position_of(f, b), 1);
    char *cap = cgt_redis_cmd(&f->rs, "GET " P "cap");
    assert_string_equal(cap, "1");
    free(cap);

    assert_enqueue(f, arrive(f, 2, c));
    assert_int_equal(position_of(f, b), 1);
    assert_int_equal(position_of(f, c), 2);

    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_OK);
    wait_update(f, b, 1, LATER);
    char *want = vapi_twiml_of(f, b);
    char *got = cgt_fake_update_twiml(f->fake, b);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
    /* The second attempt says so, with the position b had on entering. */
    assert_int_equal(cgt_fake_create_count(f->fake, b), 2);
    assert_last_create(f,
                       (const char *const[]){b, "\"callgateRequeued\":true",
                                             "\"callgatePosition\":1",
                                             "\"callgateDialedNumber\":\"" CALLED "\"", NULL},
                       NULL);
    wait_state(f, b, "connected", SOON);
    char *st = call_state(f, c);
    assert_string_equal(st, "waiting");
    free(st);
    assert_int_equal(position_of(f, c), 1);
    assert_int_equal(cgt_fake_create_count(f->fake, c), 0);
    assert_int_equal(zcard(f, "active"), 2);
}

/* Vapi is slower than the fast path's deadline: the webhook is answered
 * with Enqueue when the deadline passes, and the assistant's TwiML is
 * pushed with a Calls update once Vapi answers. */
static void test_fast_path_deadline(void **state)
{
    struct fixture *f = *state;
    start_gate(f, (const char *const[]){"FAST_PATH_DEADLINE_MS=100", NULL});
    cgt_fake_set_vapi_delay(f->fake, 600);
    char a[40];
    new_sid(a);
    uint64_t t0 = cgt_now_ms();
    struct answer *aa = arrive(f, 0, a);
    assert_true(cgt_now_ms() - t0 < 550);
    assert_enqueue(f, aa);
    wait_update(f, a, 1, SOON);
    char *want = vapi_twiml_of(f, a);
    char *got = cgt_fake_update_twiml(f->fake, a);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
    wait_state(f, a, "connected", SOON);
}

/* Twilio refuses the update while the call's Enqueue has not started
 * (21220, the call still in progress): the push is tried again after a
 * delay until it lands. */
static void test_twilio_not_ready_retried(void **state)
{
    struct fixture *f = *state;
    start_gate(f, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    assert_enqueue(f, arrive(f, 1, b));
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_NOT_IN_PROGRESS);
    char *vid = cgt_fake_vapi_id(f->fake, a);
    gate_end(f->g, "vapi", vid, "customer-ended-call", "vapi-report", NULL, NULL);
    free(vid);
    wait_update(f, b, 2, SOON);
    char *st = call_state(f, b);
    assert_string_equal(st, "admitting");
    free(st);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_OK);
    wait_state(f, b, "connected", SOON);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 1);
}

/* Runs the loop until the gate holds n slots; fails after timeout_ms. */
static void wait_active(struct fixture *f, long n, int timeout_ms)
{
    uint64_t until = cgt_now_ms() + (uint64_t)timeout_ms;
    while (zcard(f, "active") != n) {
        if (cgt_now_ms() > until)
            fail_msg("%ld slots held, not %ld", zcard(f, "active"), n);
        cgt_run_for(f->base, 10);
    }
}

/* GET /call/{id} says not-found, deletion-failed or a status unknown here
 * for a caller whose Twilio call ended: Vapi no longer vouches for the
 * call. The slot is not renewed as if live (it used to be, for ever) but
 * released once a second answer, a moment later, agrees. */
static void test_doubtful_status_released_after_confirming(void **state)
{
    struct fixture *f = *state;
    start_gate(f, NULL);
    const char *statuses[] = {"not-found", "deletion-failed", "archived"};
    for (int i = 0; i < 3; i++) {
        char sid[40];
        new_sid(sid);
        cgt_fake_set_vapi_get(f->fake, CGT_VGET_IN_PROGRESS);
        connect_fast(f, i, sid);
        wait_active(f, 1, SOON);
        cgt_fake_set_vapi_get_status(f->fake, statuses[i]);
        int gets = cgt_fake_count(f->fake, CGT_EP_VAPI_GET);
        struct end_result e = {0};
        gate_end(f->g, "twilio", sid, "completed", "twilio-status", on_end, &e);
        assert_int_equal(cgt_run_until(f->base, &e.done, SOON), 0);
        assert_string_equal(gate_verdict_name(e.verdict), "ending");
        wait_active(f, 0, LATER);
        /* Asked at least twice: the release was confirmed. */
        assert_true(cgt_fake_count(f->fake, CGT_EP_VAPI_GET) >= gets + 2);
        char *last = cgt_redis_cmd(&f->rs, "XREVRANGE " P "log + - COUNT 1");
        assert_non_null(strstr(last, "RELEASE"));
        assert_non_null(strstr(last, i < 2 ? statuses[i] : "unknown-status"));
        free(last);
    }

    /* The control: a call Vapi says is live keeps its slot, renewed. */
    char sid[40];
    new_sid(sid);
    cgt_fake_set_vapi_get(f->fake, CGT_VGET_IN_PROGRESS);
    connect_fast(f, 3, sid);
    int gets = cgt_fake_count(f->fake, CGT_EP_VAPI_GET);
    struct end_result e = {0};
    gate_end(f->g, "twilio", sid, "completed", "twilio-status", on_end, &e);
    assert_int_equal(cgt_run_until(f->base, &e.done, SOON), 0);
    uint64_t until = cgt_now_ms() + LATER;
    while (cgt_fake_count(f->fake, CGT_EP_VAPI_GET) < gets + 3 && cgt_now_ms() < until)
        cgt_run_for(f->base, 10);
    assert_true(cgt_fake_count(f->fake, CGT_EP_VAPI_GET) >= gets + 3);
    assert_int_equal(zcard(f, "active"), 1);
}

/* Vapi ends a call with call.start.error-subscription-concurrency-limit-
 * reached (a 201 that did not say it was over the limit): the slot is
 * released as for any end, and the refusal is counted with Vapi's
 * over-limit answers. */
static void test_overlimit_end_reason_counted(void **state)
{
    struct fixture *f = *state;
    start_gate(f, NULL);
    char sid[40];
    new_sid(sid);
    connect_fast(f, 0, sid);
    char *vid = cgt_fake_vapi_id(f->fake, sid);
    assert_non_null(vid);
    struct end_result e = {0};
    gate_end(f->g, "vapi", vid, CG_VAPI_REASON_OVERLIMIT, "vapi-status", on_end, &e);
    assert_int_equal(cgt_run_until(f->base, &e.done, SOON), 0);
    assert_string_equal(gate_verdict_name(e.verdict), "released");
    free(vid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_metrics_render(f->metrics, &b);
    assert_non_null(
        strstr(cg_buf_str(&b), "callgate_vapi_errors_total{code=\"overlimit-ended\"} 1"));
    cg_buf_free(&b);
}

/* Vapi hands out a TwiML over Twilio's 4,000-character limit on a call
 * update: it is never pushed (Twilio would refuse it with 32018), each such
 * attempt counts as a refusal for the caller, and after
 * MAX_ADMISSION_ATTEMPTS the caller gets the overflow treatment, which
 * fits. */
static void test_long_twiml_never_pushed(void **state)
{
    struct fixture *f = *state;
    const char *extra[] = {"FAST_PATH_DEADLINE_MS=0", "MAX_ADMISSION_ATTEMPTS=2", NULL};
    start_gate(f, extra);
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_LONG_TWIML);
    char sid[40];
    new_sid(sid);
    struct answer *a = arrive(f, 0, sid);
    assert_enqueue(f, a);
    wait_update(f, sid, 1, LATER);
    char *pushed = cgt_fake_update_twiml(f->fake, sid);
    assert_non_null(pushed);
    assert_non_null(strstr(pushed, "<Hangup/>"));
    assert_true(strlen(pushed) < 4000);
    free(pushed);
    cgt_run_for(f->base, 300);
    assert_int_equal(cgt_fake_update_count(f->fake, sid), 1);
    assert_int_equal(cgt_fake_create_count(f->fake, sid), 2);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_metrics_render(f->metrics, &b);
    assert_non_null(strstr(cg_buf_str(&b), "callgate_twilio_errors_total{code=\"32018\"} 2"));
    cg_buf_free(&b);
}

/* ---- callbacks ---- */

struct store_done {
    int done;
    enum gate_verdict verdict;
    /* Set: the admission a callback.lua answered reply asks for starts
     * from within the reply's callback, as callback_http.c does. */
    struct fixture *f;
    const char *leg;
    struct answer *answer;
};

static void on_store_done(const struct gate_reply *rep, void *arg)
{
    struct store_done *d = arg;
    d->done = 1;
    d->verdict = rep->verdict;
    if (d->answer != NULL && rep->verdict == GV_ADMIT) {
        struct gate_queue_context qc;
        gate_queue_context_at(rep->r, 4, &qc);
        assert_true(qc.known);
        gate_admit_answered(d->f->g, d->leg, cg_redis_reply_str(rep->r, 2), &qc, on_answer,
                            d->answer);
    }
}

static enum gate_verdict store_wait(struct fixture *f, struct store_done *d)
{
    if (cgt_run_until(f->base, &d->done, SOON) != 0)
        fail_msg("no store reply");
    return d->verdict;
}

/* A callback's turn reserves the slot without any Vapi call (the engine
 * starts no admission for it); a person answering the outbound leg gets
 * the assistant on that leg's webhook, in that slot. */
static void test_callback_answer_gets_the_assistant(void **state)
{
    struct fixture *f = *state;
    start_gate(f, (const char *const[]){"MAX_CONCURRENCY=1", "FAST_PATH_DEADLINE_MS=5000", NULL});
    char a[40], b[40], leg[40];
    new_sid(a);
    new_sid(b);
    new_sid(leg);
    connect_fast(f, 0, a);
    assert_enqueue(f, arrive(f, 1, b));
    struct gate_callback_request q = {.sid = b,
                                      .number = "+15550009999",
                                      .est_ms = 60000,
                                      .max_dials = 3,
                                      .retry_ms = 60000,
                                      .lease_ms = 70000};
    struct store_done d = {0};
    assert_int_equal(gate_store_callback_request(&f->g->store, &q, on_store_done, &d), 0);
    assert_int_equal(store_wait(f, &d), GV_CALLBACK);
    free(cgt_redis_cmd(&f->rs, "SET " P "cbwin 1"));

    /* a's call ends: the slot is b's turn, reserved, and Vapi is not asked. */
    char *vid = cgt_fake_vapi_id(f->fake, a);
    struct end_result e = {0};
    gate_end(f->g, "vapi", vid, "customer-ended-call", "vapi-report", on_end, &e);
    free(vid);
    assert_int_equal(cgt_run_until(f->base, &e.done, SOON), 0);
    assert_int_equal(e.verdict, GV_RELEASED);
    wait_state(f, b, "cb_reserved", SOON);
    cgt_run_for(f->base, 100);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 0);
    assert_int_equal(zcard(f, "active"), 1);

    /* The dial (its claim), the leg ringing, a person answering. */
    memset(&d, 0, sizeof d);
    assert_int_equal(gate_store_callback_dial(&f->g->store, b, 1, on_store_done, &d), 0);
    assert_int_equal(store_wait(f, &d), GV_DIAL);
    memset(&d, 0, sizeof d);
    assert_int_equal(gate_store_callback_ringing(&f->g->store, b, 1, leg, on_store_done, &d), 0);
    assert_int_equal(store_wait(f, &d), GV_OK);
    assert_int_equal(cgt_fake_create_count(f->fake, leg), 0);
    memset(&d, 0, sizeof d);
    struct answer *an = &f->answers[2];
    d.f = f;
    d.leg = leg;
    d.answer = an;
    assert_int_equal(
        gate_store_callback_answered(&f->g->store, b, 1, leg, 30000, "test", on_store_done, &d), 0);
    assert_int_equal(store_wait(f, &d), GV_ADMIT);
    assert_int_equal(cgt_run_until(f->base, &an->done, SOON), 0);
    char *want = vapi_twiml_of(f, leg);
    assert_string_equal(an->twiml, want);
    free(want);
    wait_state(f, leg, "connected", SOON);
    assert_int_equal(cgt_fake_create_count(f->fake, leg), 1);
    /* The leg's context came with callback.lua answered's reply: the
     * callback, the caller's first call, the place they had. */
    assert_last_create(f,
                       (const char *const[]){leg, "\"callgateCallback\":true",
                                             "\"callgateOriginalTime\":\"",
                                             "\"callgatePosition\":1", "\"callgateRequeued\":false",
                                             "\"callgateDialedNumber\":\"" CALLED "\"", NULL},
                       NULL);
    char *st = call_state(f, b);
    assert_string_equal(st, "called-back");
    free(st);
    /* Still one slot in all: the reservation became the leg's. */
    assert_int_equal(zcard(f, "active"), 1);
    assert_int_equal(zcard(f, "waiting"), 0);
}

/* With callbacks on, the engine dials a callback whose turn came: one
 * Calls create, from the number the caller dialled, with machine detection;
 * still no Vapi call; the leg recorded. */
static void test_callback_turn_dials(void **state)
{
    struct fixture *f = *state;
    start_gate(f, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    struct gate_callback_dialer dialer = {.store = &f->g->store,
                                          .twilio = f->g->twilio,
                                          .public_url = f->cfg.public_url,
                                          .ring_s = 25,
                                          .machine_detection = 1,
                                          .limit = 1,
                                          .batch = 10,
                                          .lease_ms = 30000,
                                          .instance = "test"};
    f->g->callback_dialer = &dialer;
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    assert_enqueue(f, arrive(f, 1, b));
    struct gate_callback_request q = {.sid = b,
                                      .number = "+15550009999",
                                      .est_ms = 60000,
                                      .max_dials = 3,
                                      .retry_ms = 60000,
                                      .lease_ms = 70000};
    struct store_done d = {0};
    assert_int_equal(gate_store_callback_request(&f->g->store, &q, on_store_done, &d), 0);
    assert_int_equal(store_wait(f, &d), GV_CALLBACK);
    free(cgt_redis_cmd(&f->rs, "SET " P "cbwin 1"));

    char *vid = cgt_fake_vapi_id(f->fake, a);
    struct end_result e = {0};
    gate_end(f->g, "vapi", vid, "customer-ended-call", "vapi-report", on_end, &e);
    free(vid);
    assert_int_equal(cgt_run_until(f->base, &e.done, SOON), 0);
    wait_state(f, b, "cb_ringing", SOON);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 0);
    char *body = cgt_fake_last_body(f->fake, CGT_EP_TW_CREATE);
    struct cg_form form;
    cg_form_init(&form);
    assert_int_equal(cg_form_parse(&form, body, strlen(body), NULL), 0);
    assert_string_equal(cg_form_get(&form, "To"), "+15550009999");
    assert_string_equal(cg_form_get(&form, "From"), CALLED);
    assert_string_equal(cg_form_get(&form, "MachineDetection"), "Enable");
    assert_non_null(strstr(cg_form_get(&form, "Url"), "/callback-answer?sid="));
    cg_form_free(&form);
    free(body);
    char *leg = cgt_redis_cmd(&f->rs, "HGET " P "call:%s cb_leg", b);
    assert_string_equal(leg, "CA00000000000000000000000000000001");
    free(leg);
    assert_int_equal(zcard(f, "active"), 1);
    f->g->callback_dialer = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fast_path_free_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_enqueues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_admits_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vapi_overlimit_requeues_at_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_not_ready_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlimit_end_reason_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_twiml_never_pushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_answer_gets_the_assistant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_turn_dials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doubtful_status_released_after_confirming, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
