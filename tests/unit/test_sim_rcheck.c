/*
 * Unit tests for sim/rcheck.c (the route invariants, fed synthetic event
 * sequences: one that passes everything, and for each invariant one that
 * must fail it) and sim/scenario_routes.c (the scenario's routes, route
 * checks and dialer, and what it refuses).
 */
#include "harness.h"

#include "rcheck.h"
#include "scenario.h"
#include "scenario_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Two routes under a limit of 4: support (max 3, min 2, priority 1, one
 * VIP number) and sales (max 3, min 1, priority 2). */
#define ROUTES                                                                                     \
    "\"vapi\":{\"limit\":4},"                                                                      \
    "\"routes\":[{\"name\":\"support\",\"numbers\":[\"+15550100000\"],\"assistantId\":"            \
    "\"as-support\",\"phoneNumberId\":\"pn-support\",\"queue\":\"support\",\"max\":3,\"min\":2,"   \
    "\"priority\":1,\"vip\":[\"+15551234567\"]},"                                                  \
    "{\"name\":\"sales\",\"numbers\":[\"+15550100001\"],\"assistantId\":\"as-sales\","             \
    "\"phoneNumberId\":\"pn-sales\",\"queue\":\"sales\",\"max\":3,\"min\":1,\"priority\":2}]"

#define SUP  "+15550100000"
#define SAL  "+15550100001"
#define VIP  "+15551234567"
#define ANON "+15557654321"

struct fx {
    struct sim_scenario sc;
    struct sim_rcheck *rc;
};

static void fx_init(struct fx *f, const char *json)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    if (sim_scenario_parse(&f->sc, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    assert_non_null(f->sc.routes);
    f->rc = sim_rcheck_new(f->sc.routes, f->sc.vapi_limit, f->sc.vapi_external_calls);
}

static void fx_free(struct fx *f)
{
    sim_rcheck_free(f->rc);
    sim_scenario_free(&f->sc);
}

/* Finishes at t; returns the report's invariants (caller decrefs root). */
static json_t *finish(struct fx *f, double t, json_t **root, int *failed)
{
    *root = json_object();
    json_t *inv = json_array();
    *failed = sim_rcheck_finish(f->rc, t, *root, inv);
    json_object_set_new(*root, "invariants", inv);
    return inv;
}

static int ok_of(json_t *inv, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach (inv, i, o) {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return json_is_true(json_object_get(o, "ok"));
    }
    fail_msg("no invariant %s", name);
    return -1;
}

/* Exactly the named invariant failed. */
static void expect_only_failure(struct fx *f, double t, const char *name)
{
    json_t *root;
    int failed;
    json_t *inv = finish(f, t, &root, &failed);
    size_t i;
    json_t *o;
    json_array_foreach (inv, i, o) {
        const char *n = json_string_value(json_object_get(o, "name"));
        int ok = json_is_true(json_object_get(o, "ok"));
        if (strcmp(n, name) == 0 && ok)
            fail_msg("%s passed; it must fail", n);
        if (strcmp(n, name) != 0 && !ok)
            fail_msg("%s failed too: %s", n, json_string_value(json_object_get(o, "detail")));
    }
    assert_int_equal(failed, 1);
    json_decref(root);
}

/* One inbound caller's whole story: arrives, waits in its queue, is
 * admitted (Vapi call created), leaves the queue connected. */
static void queued(struct fx *f, double t, const char *sid, const char *to, const char *from,
                   const char *queue)
{
    sim_rcheck_arrived(f->rc, t, sid, to, from);
    sim_rcheck_enqueued(f->rc, t, sid, to, from, queue, t);
}

static void admit(struct fx *f, double t, const char *sid, int route, const char *assistant)
{
    sim_rcheck_started(f->rc, t, route, SIM_RK_INBOUND, sid, assistant);
    sim_rcheck_dequeued(f->rc, t + 0.01, sid);
}

static void connect_(struct fx *f, double t, const char *sid, double arrived)
{
    sim_rcheck_connected(f->rc, t, sid, t - arrived);
}

/* A run that keeps every rule: both routes at their min, FIFO in each, a
 * VIP ahead of an earlier caller, outbound and slots only when nobody of
 * their route waits, every call ended. */
static void test_clean_run(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{" ROUTES ",\"route_checks\":{\"baseline_until_s\":3.5,\"surge_until_s\":3.9}}");
    assert_int_equal(sim_rcheck_route_of_number(f.rc, SAL), 1);
    assert_int_equal(sim_rcheck_route_of_number(f.rc, ANON), -1);
    assert_int_equal(sim_rcheck_route_of_phone(f.rc, "pn-support"), 0);
    /* Support callers 1 and 2 arrive and are admitted at once. */
    queued(&f, 1.0, "CA1", SUP, ANON, "support");
    admit(&f, 1.05, "CA1", 0, "as-support");
    connect_(&f, 1.1, "CA1", 1.0);
    queued(&f, 1.2, "CA2", SUP, ANON, "support");
    admit(&f, 1.25, "CA2", 0, "as-support");
    connect_(&f, 1.3, "CA2", 1.2);
    /* Sales: one inbound, then an outbound call and a slot. */
    queued(&f, 1.4, "CA3", SAL, ANON, "sales");
    admit(&f, 1.45, "CA3", 1, "as-sales");
    connect_(&f, 1.5, "CA3", 1.4);
    sim_rcheck_started(f.rc, 2.0, 1, SIM_RK_OUTBOUND, NULL, "as-sales");
    assert_int_equal(sim_rcheck_live(f.rc, -1), 4);
    assert_int_equal(sim_rcheck_live(f.rc, 1), 2);
    /* The organization is full: support callers 4 and 5 (a VIP, later)
     * wait; the VIP goes first when a sales call ends. */
    queued(&f, 3.0, "CA4", SUP, ANON, "support");
    queued(&f, 4.0, "CA5", SUP, VIP, "support");
    sim_rcheck_ended(f.rc, 6.0, 1, SIM_RK_OUTBOUND);
    admit(&f, 6.05, "CA5", 0, "as-support");
    connect_(&f, 6.1, "CA5", 4.0);
    /* Support is at its max (3): CA4 waits for one of its own calls. */
    sim_rcheck_ended(f.rc, 7.0, 0, SIM_RK_INBOUND);
    admit(&f, 7.05, "CA4", 0, "as-support");
    connect_(&f, 7.1, "CA4", 3.0);
    sim_rcheck_ended(f.rc, 7.5, 1, SIM_RK_INBOUND);
    /* A slot while nobody waits. */
    sim_rcheck_started(f.rc, 8.0, 1, SIM_RK_SLOT, NULL, NULL);
    sim_rcheck_ended(f.rc, 9.0, 1, SIM_RK_SLOT);
    for (int i = 0; i < 3; i++)
        sim_rcheck_ended(f.rc, 10.0 + i * 0.1, 0, SIM_RK_INBOUND);
    assert_int_equal(sim_rcheck_live(f.rc, -1), 0);
    json_t *root;
    int failed;
    json_t *inv = finish(&f, 11.0, &root, &failed);
    assert_int_equal(failed, 0);
    assert_int_equal(ok_of(inv, "routes_org_limit"), 1);
    assert_int_equal(ok_of(inv, "routes_fifo"), 1);
    /* The figures: per-route waits, split at the baseline. */
    json_t *list = json_object_get(json_object_get(root, "routes"), "list");
    assert_int_equal(json_array_size(list), 2);
    json_t *sup = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(sup, "name")), "support");
    assert_int_equal(json_integer_value(json_object_get(sup, "callers")), 4);
    assert_int_equal(json_integer_value(json_object_get(sup, "connected")), 4);
    assert_int_equal(json_integer_value(json_object_get(sup, "peak")), 3);
    json_t *w = json_object_get(sup, "wait_s");
    assert_int_equal(json_integer_value(json_object_get(w, "n")), 4);
    assert_true(json_number_value(json_object_get(w, "p90")) > 4.0);
    json_t *b = json_object_get(sup, "wait_baseline_s");
    assert_int_equal(json_integer_value(json_object_get(b, "n")), 3);
    json_t *a = json_object_get(sup, "wait_after_baseline_s");
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 1);
    /* The surge phase, [3.5, 3.9): nobody; after it, CA5 (2.1 s). */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sup, "wait_surge_s"), "n")),
                     0);
    json_t *as = json_object_get(sup, "wait_after_surge_s");
    assert_int_equal(json_integer_value(json_object_get(as, "n")), 1);
    assert_true(json_number_value(json_object_get(as, "mean")) > 2.0);
    json_t *sal = json_array_get(list, 1);
    assert_int_equal(json_integer_value(json_object_get(sal, "outbound_calls")), 1);
    assert_int_equal(json_integer_value(json_object_get(sal, "slot_calls")), 1);
    json_decref(root);
    fx_free(&f);
}

static void test_org_limit_fails(void **state)
{
    (void)state;
    struct fx f;
    /* More calls at Vapi than the limit (a slot's web call on top). */
    fx_init(&f, "{" ROUTES "}");
    for (int i = 0; i < 2; i++)
        sim_rcheck_started(f.rc, 1.0, 0, SIM_RK_SLOT, NULL, NULL);
    for (int i = 0; i < 3; i++)
        sim_rcheck_started(f.rc, 1.0, 1, SIM_RK_SLOT, NULL, NULL);
    expect_only_failure(&f, 2.0, "routes_org_limit");
    fx_free(&f);
    /* Vapi refused a call for the limit. */
    fx_init(&f, "{" ROUTES "}");
    sim_rcheck_refused(f.rc, 1.0, 1, SIM_RK_SLOT);
    expect_only_failure(&f, 2.0, "routes_org_limit");
    fx_free(&f);
}

static void test_max_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{" ROUTES "}");
    for (int i = 0; i < 4; i++)
        sim_rcheck_started(f.rc, 1.0 + i * 0.1, 1, SIM_RK_OUTBOUND, NULL, "as-sales");
    expect_only_failure(&f, 2.0, "routes_max");
    fx_free(&f);
}

/* Below its min with a caller waiting while the organization has room,
 * past the tolerance; and within it, no failure. */
static void test_min_with_room_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{" ROUTES ",\"route_checks\":{\"min_tolerance_s\":0.25}}");
    queued(&f, 1.0, "CA1", SUP, ANON, "support");
    admit(&f, 1.2, "CA1", 0, "as-support");
    connect_(&f, 1.3, "CA1", 1.0);
    sim_rcheck_ended(f.rc, 2.0, 0, SIM_RK_INBOUND);
    json_t *root;
    int failed;
    finish(&f, 3.0, &root, &failed);
    assert_int_equal(failed, 0);
    json_decref(root);
    fx_free(&f);

    fx_init(&f, "{" ROUTES ",\"route_checks\":{\"min_tolerance_s\":0.25}}");
    queued(&f, 1.0, "CA1", SUP, ANON, "support");
    admit(&f, 1.5, "CA1", 0, "as-support");
    connect_(&f, 1.6, "CA1", 1.0);
    sim_rcheck_ended(f.rc, 2.0, 0, SIM_RK_INBOUND);
    expect_only_failure(&f, 3.0, "routes_min_guarantee");
    fx_free(&f);

    /* Still waiting at the end of the run counts too; the free slot it
     * could have had all along is idle for those 2 s. */
    fx_init(&f, "{" ROUTES "}");
    queued(&f, 1.0, "CA1", SUP, ANON, "support");
    json_t *inv = finish(&f, 3.0, &root, &failed);
    assert_int_equal(ok_of(inv, "routes_min_guarantee"), 0);
    assert_int_equal(failed, 1);
    double idle =
        json_number_value(json_object_get(json_object_get(root, "routes"), "idle_slot_seconds"));
    assert_true(idle > 1.99 && idle < 2.01);
    json_decref(root);
    fx_free(&f);
}

/* The organization full, support below its min with a caller waiting: a
 * slot freed by sales must go to support, not back to sales. */
static void test_min_slot_elsewhere_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{" ROUTES ",\"route_checks\":{\"outbound_after_inbound\":false}}");
    for (int i = 0; i < 3; i++)
        sim_rcheck_started(f.rc, 0.5, 1, SIM_RK_OUTBOUND, NULL, "as-sales");
    sim_rcheck_started(f.rc, 0.5, 0, SIM_RK_SLOT, NULL, NULL);
    queued(&f, 1.0, "CA1", SUP, ANON, "support");
    /* A sales call ends and at once another sales call takes its slot. */
    sim_rcheck_ended(f.rc, 2.0, 1, SIM_RK_OUTBOUND);
    sim_rcheck_started(f.rc, 2.0, 1, SIM_RK_OUTBOUND, NULL, "as-sales");
    sim_rcheck_ended(f.rc, 3.0, 0, SIM_RK_SLOT);
    admit(&f, 3.05, "CA1", 0, "as-support");
    connect_(&f, 3.1, "CA1", 1.0);
    expect_only_failure(&f, 4.0, "routes_min_guarantee");
    fx_free(&f);
}

static void test_fifo_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{" ROUTES "}");
    /* Two callers hold support's min; CA3 then CA4 wait. */
    queued(&f, 0.1, "CA1", SUP, ANON, "support");
    admit(&f, 0.1, "CA1", 0, "as-support");
    queued(&f, 0.2, "CA2", SUP, ANON, "support");
    admit(&f, 0.2, "CA2", 0, "as-support");
    queued(&f, 1.0, "CA3", SUP, ANON, "support");
    queued(&f, 2.0, "CA4", SUP, ANON, "support");
    /* CA4 is admitted first; CA3 a second later. */
    admit(&f, 2.5, "CA4", 0, "as-support");
    connect_(&f, 2.6, "CA4", 2.0);
    sim_rcheck_ended(f.rc, 3.4, 0, SIM_RK_INBOUND);
    admit(&f, 3.5, "CA3", 0, "as-support");
    connect_(&f, 3.6, "CA3", 1.0);
    expect_only_failure(&f, 5.0, "routes_fifo");
    fx_free(&f);

    /* The same order with CA4 a VIP: allowed. A caller overtaken by one of
     * another route is no concern of the route's line either. */
    fx_init(&f, "{" ROUTES "}");
    queued(&f, 0.1, "CA1", SUP, ANON, "support");
    admit(&f, 0.1, "CA1", 0, "as-support");
    queued(&f, 0.2, "CA2", SUP, ANON, "support");
    admit(&f, 0.2, "CA2", 0, "as-support");
    queued(&f, 1.0, "CA3", SUP, ANON, "support");
    queued(&f, 2.0, "CA4", SUP, VIP, "support");
    admit(&f, 2.5, "CA4", 0, "as-support");
    connect_(&f, 2.6, "CA4", 2.0);
    sim_rcheck_ended(f.rc, 3.4, 0, SIM_RK_INBOUND);
    admit(&f, 3.5, "CA3", 0, "as-support");
    connect_(&f, 3.6, "CA3", 1.0);
    json_t *root;
    int failed;
    json_t *inv = finish(&f, 5.0, &root, &failed);
    assert_int_equal(ok_of(inv, "routes_fifo"), 1);
    json_decref(root);
    fx_free(&f);

    /* An earlier caller who hung up after a later one got the slot was
     * overtaken too. */
    fx_init(&f, "{" ROUTES "}");
    queued(&f, 0.1, "CA1", SUP, ANON, "support");
    admit(&f, 0.1, "CA1", 0, "as-support");
    queued(&f, 0.2, "CA2", SUP, ANON, "support");
    admit(&f, 0.2, "CA2", 0, "as-support");
    queued(&f, 1.0, "CA3", SUP, ANON, "support");
    queued(&f, 2.0, "CA4", SUP, ANON, "support");
    admit(&f, 2.5, "CA4", 0, "as-support");
    sim_rcheck_dequeued(f.rc, 4.0, "CA3");
    expect_only_failure(&f, 5.0, "routes_fifo");
    fx_free(&f);
}

static void test_outbound_after_inbound_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{" ROUTES "}");
    sim_rcheck_started(f.rc, 0.1, 1, SIM_RK_INBOUND, NULL, "as-sales");
    queued(&f, 1.0, "CA1", SAL, ANON, "sales");
    /* sales is at its min (1); an outbound sales call while CA1 waits. */
    sim_rcheck_started(f.rc, 2.0, 1, SIM_RK_OUTBOUND, NULL, "as-sales");
    admit(&f, 2.1, "CA1", 1, "as-sales");
    connect_(&f, 2.2, "CA1", 1.0);
    expect_only_failure(&f, 3.0, "routes_outbound_after_inbound");
    fx_free(&f);
}

static void test_outbound_pushes_inbound_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{" ROUTES "}");
    sim_rcheck_started(f.rc, 0.1, 1, SIM_RK_OUTBOUND, NULL, "as-sales");
    sim_rcheck_refused(f.rc, 0.2, 0, SIM_RK_INBOUND);
    json_t *root;
    int failed;
    json_t *inv = finish(&f, 1.0, &root, &failed);
    assert_int_equal(ok_of(inv, "routes_outbound_never_pushes_inbound"), 0);
    assert_int_equal(ok_of(inv, "routes_org_limit"), 0);
    assert_int_equal(failed, 2);
    json_decref(root);
    fx_free(&f);
}

static void test_placement_fails(void **state)
{
    (void)state;
    struct fx f;
    /* The wrong queue. */
    fx_init(&f, "{" ROUTES "}");
    queued(&f, 1.0, "CA1", SUP, ANON, "customer-support");
    admit(&f, 1.05, "CA1", 0, "as-support");
    connect_(&f, 1.1, "CA1", 1.0);
    expect_only_failure(&f, 2.0, "routes_placement");
    fx_free(&f);
    /* The wrong assistant. */
    fx_init(&f, "{" ROUTES "}");
    queued(&f, 1.0, "CA1", SUP, ANON, "support");
    admit(&f, 1.05, "CA1", 0, "as-sales");
    connect_(&f, 1.1, "CA1", 1.0);
    expect_only_failure(&f, 2.0, "routes_placement");
    fx_free(&f);
    /* A number no route serves. */
    fx_init(&f, "{" ROUTES "}");
    sim_rcheck_arrived(f.rc, 1.0, "CA1", ANON, ANON);
    expect_only_failure(&f, 2.0, "routes_placement");
    fx_free(&f);
}

/* ---- the scenario's members ---- */

static void parse_fails(const char *json, const char *fragment)
{
    struct sim_scenario sc;
    char err[256];
    assert_int_not_equal(sim_scenario_parse(&sc, json, strlen(json), err, sizeof err), 0);
    if (!strstr(err, fragment))
        fail_msg("error \"%s\" lacks \"%s\"", err, fragment);
    sim_scenario_free(&sc);
}

static void test_scenario_routes(void **state)
{
    (void)state;
    struct sim_scenario sc;
    char err[256];
    const char *json =
        "{" ROUTES ",\"dialer\":{\"admin_token\":\"tok\",\"outbound\":{\"route\":\"sales\","
        "\"rate_per_s\":0.5},\"slots\":{\"route\":\"support\",\"rate_per_s\":1,\"ttl_s\":5,"
        "\"hold_min_s\":1,\"hold_max_s\":2,\"expire_share\":0.5},\"customers\":{\"answer\":0.5,"
        "\"busy\":0.5}},\"duration_s\":7}";
    assert_int_equal(sim_scenario_parse(&sc, json, strlen(json), err, sizeof err), 0);
    const struct sim_routes_cfg *rs = sc.routes;
    assert_non_null(rs);
    assert_int_equal(rs->n, 2);
    assert_string_equal(rs->r[1].name, "sales");
    assert_int_equal(rs->r[0].min, 2);
    assert_int_equal(rs->r[0].nvip, 1);
    assert_true(rs->has_dialer);
    assert_string_equal(rs->dialer.admin_token, "tok");
    assert_int_equal(rs->dialer.out_route, 1);
    assert_int_equal(rs->dialer.slot_route, 0);
    /* until_s defaults to the scenario's duration, wherever it is given. */
    assert_true(rs->dialer.out_until_s == 7.0);
    assert_true(rs->min_tolerance_s == 0.25);
    assert_true(rs->outbound_after_inbound);
    assert_int_equal(sim_routes_cfg_find(rs, "support"), 0);
    assert_int_equal(sim_routes_cfg_find(rs, "nope"), -1);
    /* The Twilio account holds the routes' numbers. */
    assert_int_equal(sc.acc.nnumbers, 2);
    assert_string_equal(sc.acc.numbers[1].phone_number, SAL);
    sim_scenario_free(&sc);
    /* Without routes nothing changes. */
    assert_int_equal(sim_scenario_parse(&sc, "{}", 2, err, sizeof err), 0);
    assert_null(sc.routes);
    sim_scenario_free(&sc);

    parse_fails("{\"dialer\":{}}", "needs a \"routes\" list");
    parse_fails("{\"routes\":[]}", "1 to 16 routes");
    parse_fails("{\"routes\":[{\"name\":\"a\",\"numbers\":[\"5550100\"],\"assistantId\":\"x\","
                "\"phoneNumberId\":\"p\",\"queue\":\"q\"}]}",
                "E.164");
    parse_fails("{\"routes\":[{\"name\":\"a\",\"numbers\":[\"+15550100000\"],\"assistantId\":"
                "\"x\",\"phoneNumberId\":\"p\",\"queue\":\"q\",\"max\":2,\"min\":3}]}",
                "min 3 is above max 2");
    parse_fails("{\"routes\":[{\"name\":\"a\",\"numbers\":[\"+15550100000\"],\"assistantId\":"
                "\"x\",\"phoneNumberId\":\"p\",\"queue\":\"q\"},{\"name\":\"b\",\"numbers\":"
                "[\"+15550100000\"],\"assistantId\":\"x\",\"phoneNumberId\":\"p2\",\"queue\":"
                "\"q2\"}]}",
                "listed twice");
    parse_fails("{\"vapi\":{\"limit\":3},\"routes\":[{\"name\":\"a\",\"numbers\":"
                "[\"+15550100000\"],\"assistantId\":\"x\",\"phoneNumberId\":\"p\",\"queue\":\"q\","
                "\"min\":2},{\"name\":\"b\",\"numbers\":[\"+15550100001\"],\"assistantId\":\"x\","
                "\"phoneNumberId\":\"p2\",\"queue\":\"q2\",\"min\":2}]}",
                "sum of the mins");
    parse_fails("{" ROUTES ",\"callers\":{\"arrivals\":{\"process\":\"poisson\"}}}",
                "arrivals are per route");
    parse_fails("{\"routes\":[{\"name\":\"a\",\"numbers\":[\"+15550100000\"],\"assistantId\":"
                "\"x\",\"phoneNumberId\":\"p\",\"queue\":\"q\",\"colour\":1}]}",
                "unknown member \"colour\"");
    parse_fails("{" ROUTES ",\"dialer\":{\"outbound\":{\"route\":\"billing\"}}}",
                "no route named \"billing\"");
    parse_fails("{" ROUTES ",\"dialer\":{\"slots\":{\"route\":\"sales\",\"ttl_s\":2,"
                "\"hold_max_s\":2}}}",
                "hold_max_s < ttl_s");
    parse_fails("{" ROUTES ",\"dialer\":{\"customers\":{\"answer\":0.8,\"busy\":0.5}}}",
                "answer + busy");
    parse_fails("{" ROUTES ",\"route_checks\":{\"min_tolerance_s\":-1}}", "min_tolerance_s");
    parse_fails("{" ROUTES ",\"route_checks\":{\"surge_until_s\":3}}", "needs a baseline_until_s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_run),
        cmocka_unit_test(test_org_limit_fails),
        cmocka_unit_test(test_max_fails),
        cmocka_unit_test(test_min_with_room_fails),
        cmocka_unit_test(test_min_slot_elsewhere_fails),
        cmocka_unit_test(test_fifo_fails),
        cmocka_unit_test(test_outbound_after_inbound_fails),
        cmocka_unit_test(test_outbound_pushes_inbound_fails),
        cmocka_unit_test(test_placement_fails),
        cmocka_unit_test(test_scenario_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
