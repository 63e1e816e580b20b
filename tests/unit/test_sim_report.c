/*
 * Unit tests for sim/report.c, on a fake clock: idle slot-seconds, the
 * refill-latency FIFO, waits, estimates, invariants and the JSON report.
 */
#include "harness.h"

#include "report.h"
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static double fake_now;

static double fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

struct fx {
    struct sim_scenario sc;
    struct sim_world w;
    struct sim_report *r;
};

static void fx_init(struct fx *f, const char *json)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    if (sim_scenario_parse(&f->sc, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    f->w.sc = &f->sc;
    fake_now = 0;
    f->r = sim_report_new(&f->w);
    sim_report_set_clock(f->r, fake_clock, NULL);
}

static void fx_free(struct fx *f)
{
    sim_report_free(f->r);
    sim_scenario_free(&f->sc);
}

/* Runs finish into memory and parses the report. */
static json_t *finish(struct fx *f, long active, long waiting, int *failed)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    *failed = sim_report_finish(f->r, active, waiting, mem);
    fclose(mem);
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    if (!root)
        fail_msg("report is not JSON: %s\n%s", je.text, buf);
    free(buf);
    return root;
}

static json_t *invariant(json_t *root, const char *name)
{
    json_t *inv = json_object_get(root, "invariants");
    size_t i;
    json_t *v;
    json_array_foreach (inv, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return v;
    }
    return NULL;
}

static int inv_ok(json_t *root, const char *name)
{
    json_t *v = invariant(root, name);
    if (!v)
        fail_msg("no invariant %s", name);
    return json_is_true(json_object_get(v, "ok"));
}

static double num(json_t *root, const char *path)
{
    json_t *v = root;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, "."))
        v = json_object_get(v, tok);
    if (!json_is_number(v))
        fail_msg("%s is not a number", path);
    return json_number_value(v);
}

static void test_idle_slot_seconds(void **state)
{
    (void)state;
    struct fx f;
    /* limit 3, one external call: the gate's share is 2 slots. */
    fx_init(&f, "{\"vapi\":{\"limit\":3,\"external_calls\":1}}");
    struct sim_report *r = f.r;
    /* t=0..1: nobody waits: nothing idle. */
    fake_now = 1;
    sim_report_caller_arrived(r);
    sim_report_caller_enqueued(r);
    /* t=1..2: 1 waiting, 2 free slots: 1 idle slot. */
    fake_now = 2;
    sim_report_caller_arrived(r);
    sim_report_caller_enqueued(r);
    sim_report_caller_arrived(r);
    sim_report_caller_enqueued(r);
    /* t=2..4: 3 waiting, 2 free: 2 idle. */
    fake_now = 4;
    sim_report_vapi_created(r);
    /* t=4..5: 3 waiting (not yet dequeued), 1 free: 1 idle. */
    fake_now = 5;
    sim_report_caller_dequeued(r);
    sim_report_vapi_created(r);
    sim_report_caller_dequeued(r);
    /* t=5..7: 1 waiting, 0 free: 0. */
    fake_now = 7;
    assert_int_equal(sim_report_waiting(r), 1);
    assert_int_equal(sim_report_vapi_live(r), 2);
    sim_report_vapi_ended(r);
    /* t=7..8: 1 waiting, 1 free: 1. */
    fake_now = 8;
    int failed;
    json_t *root = finish(&f, -1, -1, &failed);
    assert_true(fabs(num(root, "idle_slot_seconds") - (1 + 4 + 1 + 1)) < 1e-9);
    assert_int_equal((int)num(root, "peak_vapi_concurrency"), 3);
    assert_int_equal((int)num(root, "limit"), 3);
    json_decref(root);
    fx_free(&f);
}

static void test_refill_fifo(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"limit\":2}}");
    struct sim_report *r = f.r;
    sim_report_vapi_created(r);
    sim_report_vapi_created(r);
    for (int i = 0; i < 3; i++) {
        sim_report_caller_arrived(r);
        sim_report_caller_enqueued(r);
    }
    /* Slots free up at 1.0 and 1.5 while callers wait; refilled at 1.2
     * (200 ms) and 2.0 (500 ms). */
    fake_now = 1.0;
    sim_report_vapi_ended(r);
    fake_now = 1.2;
    sim_report_vapi_created(r);
    sim_report_caller_dequeued(r);
    fake_now = 1.5;
    sim_report_vapi_ended(r);
    fake_now = 2.0;
    sim_report_vapi_created(r);
    sim_report_caller_dequeued(r);
    /* No slot freed with anyone waiting: a new call is no refill. */
    fake_now = 3.0;
    sim_report_vapi_ended(r); /* 1 waiting: pushed */
    fake_now = 3.1;
    sim_report_caller_dequeued(r); /* they leave (abandon): stamp dropped */
    sim_report_caller_done(r, SIM_OUT_ABANDONED, 2.0);
    fake_now = 4.0;
    sim_report_vapi_created(r); /* not a refill */
    /* A slot ending while nobody waits is not pushed. */
    sim_report_vapi_ended(r);
    sim_report_vapi_created(r);

    int failed;
    json_t *root = finish(&f, -1, -1, &failed);
    assert_int_equal((int)num(root, "refill_latency_ms.samples"), 2);
    assert_true(fabs(num(root, "refill_latency_ms.p50") - 200) < 1e-6);
    assert_true(fabs(num(root, "refill_latency_ms.p99") - 500) < 1e-6);
    json_decref(root);
    fx_free(&f);
}

/* A slot kept for a callback is put to use when the gate dials the
 * customer: the refill ends there, and the call Vapi creates once they
 * answer (the ring later) takes no second stamp. */
static void test_refill_callback_dialed(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"limit\":1}}");
    struct sim_report *r = f.r;
    sim_report_vapi_created(r);
    for (int i = 0; i < 2; i++) {
        sim_report_caller_arrived(r);
        sim_report_caller_enqueued(r);
    }
    fake_now = 1.0;
    sim_report_vapi_ended(r); /* 2 waiting: pushed */
    fake_now = 1.01;
    sim_report_callback_dialed(r); /* the refill: 10 ms */
    fake_now = 1.5;
    sim_report_callback_created(r); /* answered 490 ms later: no refill */
    fake_now = 2.0;
    sim_report_vapi_ended(r); /* pushed again */
    fake_now = 2.003;
    sim_report_vapi_created(r); /* a caller of the queue: 3 ms */
    sim_report_caller_dequeued(r);

    int failed;
    json_t *root = finish(&f, -1, -1, &failed);
    assert_int_equal((int)num(root, "refill_latency_ms.samples"), 2);
    assert_true(fabs(num(root, "refill_latency_ms.p50") - 3) < 1e-6);
    assert_true(fabs(num(root, "refill_latency_ms.p99") - 10) < 1e-6);
    assert_int_equal((int)num(root, "vapi_calls_created"), 3);
    json_decref(root);
    fx_free(&f);
}

static void test_waits_estimates_counters(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"name\":\"w\",\"seed\":9}");
    struct sim_report *r = f.r;
    for (int i = 1; i <= 100; i++) {
        sim_report_caller_arrived(r);
        sim_report_caller_done(r, SIM_OUT_CONNECTED, (double)i);
    }
    sim_report_estimate(r, 10, 12); /* -2 */
    sim_report_estimate(r, 30, 26); /* +4 */
    sim_report_twiml_error(r, "bad verb <Foo>");
    sim_report_count(r, "x");
    sim_report_count(r, "x");
    sim_report_count(r, "y");
    sim_report_orphan(r);
    sim_report_vapi_rejected(r, 1);
    sim_report_vapi_rejected(r, 0);
    sim_report_vapi_rejected(r, 0);

    char line[256];
    sim_report_progress(r, line, sizeof(line));
    assert_string_equal(line, "t=0.0s waiting=0 active=0/10 connected=100 abandoned=0 "
                              "overflow=0 lost=0 ewt=30s");
    char *status = sim_report_status_json(r);
    json_error_t je;
    json_t *st = json_loads(status, 0, &je);
    assert_non_null(st);
    assert_int_equal(json_integer_value(json_object_get(st, "connected")), 100);
    json_decref(st);
    free(status);

    int failed;
    json_t *root = finish(&f, 0, 0, &failed);
    assert_string_equal(json_string_value(json_object_get(root, "scenario")), "w");
    assert_int_equal((int)num(root, "seed"), 9);
    assert_true(num(root, "wait_s.p50") == 50);
    assert_true(num(root, "wait_s.p95") == 95);
    assert_true(num(root, "wait_s.max") == 100);
    assert_int_equal((int)num(root, "estimate.samples"), 2);
    assert_true(fabs(num(root, "estimate.mae_s") - 3) < 1e-9);
    assert_true(fabs(num(root, "estimate.bias_s") - 1) < 1e-9);
    assert_int_equal((int)num(root, "twiml_errors"), 1);
    assert_int_equal((int)num(root, "counters.x"), 2);
    assert_int_equal((int)num(root, "counters.y"), 1);
    assert_int_equal((int)num(root, "orphan_vapi_calls"), 1);
    assert_int_equal((int)num(root, "overlimit_rejections"), 1);
    assert_int_equal((int)num(root, "other_rejections"), 2);
    assert_int_equal((int)num(root, "callers.total"), 100);
    assert_int_equal((int)num(root, "callers.connected"), 100);
    assert_int_equal((int)num(root, "gate_final.active"), 0);
    /* One over-limit rejection, none allowed. */
    assert_int_equal(failed, 1);
    assert_false(inv_ok(root, "overlimit_rejections"));
    assert_true(inv_ok(root, "callers_accounted"));
    assert_true(json_is_false(json_object_get(root, "ok")));
    json_decref(root);
    fx_free(&f);
}

static void test_empty_report(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    int failed;
    json_t *root = finish(&f, 0, 0, &failed);
    assert_int_equal(failed, 0);
    assert_true(json_is_null(json_object_get(json_object_get(root, "wait_s"), "p50")));
    assert_true(json_is_null(json_object_get(json_object_get(root, "estimate"), "mae_s")));
    assert_true(json_is_true(json_object_get(root, "ok")));
    char line[256];
    sim_report_progress(f.r, line, sizeof(line));
    assert_non_null(strstr(line, "ewt=-"));
    json_decref(root);
    fx_free(&f);
}

static void test_invariants(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{\"vapi\":{\"limit\":1},\"expect\":{\"lost\":0,\"final_active\":0,"
                "\"final_waiting\":0,\"max_idle_slot_s\":0.5,\"min_connected\":2}}");
    struct sim_report *r = f.r;
    sim_report_caller_arrived(r);
    sim_report_caller_arrived(r);
    sim_report_caller_arrived(r);
    sim_report_caller_enqueued(r);
    sim_report_caller_done(r, SIM_OUT_LOST, 0);
    sim_report_caller_done(r, SIM_OUT_CONNECTED, 1);
    /* The third has no outcome: not accounted. */
    fake_now = 1; /* 1 waiting, 1 free slot for 1 s */
    sim_report_vapi_created(r);
    sim_report_vapi_created(r); /* peak 2 > limit 1 */
    sim_report_fail(r, "gate_ready", "never answered");
    int failed;
    json_t *root = finish(&f, 1, -1, &failed);
    assert_false(inv_ok(root, "peak_within_limit"));
    assert_false(inv_ok(root, "lost_callers"));
    assert_false(inv_ok(root, "gate_final_active"));
    assert_false(inv_ok(root, "gate_final_waiting")); /* unknown counts as failed */
    assert_false(inv_ok(root, "idle_slot_seconds"));
    assert_false(inv_ok(root, "min_connected"));
    assert_false(inv_ok(root, "callers_accounted"));
    assert_false(inv_ok(root, "gate_ready"));
    assert_true(inv_ok(root, "overlimit_rejections"));
    assert_int_equal(failed, 8);
    assert_true(json_is_null(json_object_get(json_object_get(root, "gate_final"), "waiting")));
    json_decref(root);
    fx_free(&f);

    /* Unchecked expectations produce no invariant. */
    fx_init(&f, "{\"expect\":{\"lost\":null,\"max_overlimit_rejections\":null,"
                "\"final_active\":null,\"final_waiting\":null}}");
    sim_report_caller_arrived(f.r);
    sim_report_caller_done(f.r, SIM_OUT_LOST, 0);
    sim_report_vapi_rejected(f.r, 1);
    root = finish(&f, -1, -1, &failed);
    assert_int_equal(failed, 0);
    assert_null(invariant(root, "lost_callers"));
    assert_null(invariant(root, "gate_final_active"));
    assert_null(invariant(root, "overlimit_rejections"));
    json_decref(root);
    fx_free(&f);
}

static void test_counter_flood_bounded(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        sim_report_count(f.r, name);
    }
    /* Names longer than the table's slot are truncated, not overflowed. */
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    sim_report_count(f.r, longname);
    int failed;
    json_t *root = finish(&f, 0, 0, &failed);
    json_t *c = json_object_get(root, "counters");
    assert_true(json_object_size(c) <= 256);
    assert_true(json_integer_value(json_object_get(c, "report.other_counters")) > 700);
    json_decref(root);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_slot_seconds),
        cmocka_unit_test(test_refill_fifo),
        cmocka_unit_test(test_refill_callback_dialed),
        cmocka_unit_test(test_waits_estimates_counters),
        cmocka_unit_test(test_empty_report),
        cmocka_unit_test(test_invariants),
        cmocka_unit_test(test_counter_flood_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
