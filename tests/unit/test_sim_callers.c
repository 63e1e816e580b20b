/*
 * Unit tests for sim/callers.c: the population depends only on the seed,
 * each arrival process has its shape, and arrivals are released on time.
 */
#include "harness.h"

#include "callers.h"
#include "report.h"
#include "rng.h"
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/clock.h"

/* The Twilio engine is not linked in: record the calls it would start. */
static int started;
static double started_late_max;

struct sim_call *sim_twilio_new_call_to(struct sim_world *w, const char *from, const char *to,
                                        double duration_s, double patience_s)
{
    (void)from;
    (void)duration_s;
    (void)patience_s;
    const struct sim_caller *k = sim_callers_get(w->callers, (size_t)started);
    assert_non_null(k);
    assert_string_equal(k->from, from);
    /* Without routes every caller dials the one default number. */
    if (k->route < 0)
        assert_null(to);
    else
        assert_string_equal(k->to, to);
    double late = sim_now_s(w) - k->at_s;
    assert_true(late >= -0.001);
    if (late > started_late_max)
        started_late_max = late;
    started++;
    return NULL;
}

struct fx {
    struct sim_scenario sc;
    struct sim_world w;
};

static struct sim_callers *make(struct fx *f, const char *json)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    if (sim_scenario_parse(&f->sc, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    f->w.sc = &f->sc;
    f->w.rng = sim_rng_new(f->sc.seed);
    struct sim_callers *c = sim_callers_new(&f->w, err, sizeof(err));
    if (!c)
        fail_msg("callers: %s", err);
    f->w.callers = c;
    return c;
}

static void fx_free(struct fx *f)
{
    sim_callers_free(f->w.callers);
    sim_rng_free(f->w.rng);
    sim_scenario_free(&f->sc);
}

static void test_deterministic(void **state)
{
    (void)state;
    const char *json = "{\"seed\":5,\"callers\":{\"arrivals\":{\"process\":\"poisson\","
                       "\"rate_per_s\":20},\"patience\":{\"dist\":\"exp\",\"mean_s\":3}}}";
    struct fx a, b;
    struct sim_callers *ca = make(&a, json), *cb = make(&b, json);
    assert_true(sim_callers_count(ca) > 0);
    assert_int_equal(sim_callers_count(ca), sim_callers_count(cb));
    for (size_t i = 0; i < sim_callers_count(ca); i++) {
        const struct sim_caller *x = sim_callers_get(ca, i), *y = sim_callers_get(cb, i);
        assert_true(x->at_s == y->at_s && x->duration_s == y->duration_s &&
                    x->patience_s == y->patience_s);
        assert_string_equal(x->from, y->from);
        assert_int_equal(strlen(x->from), 12);
        assert_memory_equal(x->from, "+1555", 5);
        assert_true(x->duration_s >= 0.2 && x->duration_s <= 30);
        assert_true(x->patience_s >= 0);
        if (i > 0)
            assert_true(x->at_s >= sim_callers_get(ca, i - 1)->at_s);
    }
    assert_null(sim_callers_get(ca, sim_callers_count(ca)));
    fx_free(&a);
    fx_free(&b);

    /* Another seed, another population. */
    struct fx c;
    struct sim_callers *cc = make(&c, "{\"seed\":6,\"callers\":{\"arrivals\":{\"process\":"
                                      "\"poisson\",\"rate_per_s\":20}}}");
    assert_true(sim_callers_get(cc, 0)->at_s != 0);
    assert_true(sim_callers_get(cc, 0)->patience_s < 0); /* null: forever */
    fx_free(&c);
}

static void test_poisson_rate(void **state)
{
    (void)state;
    struct fx f;
    struct sim_callers *c =
        make(&f, "{\"duration_s\":1000,\"callers\":{\"arrivals\":{\"process\":\"poisson\","
                 "\"rate_per_s\":10}}}");
    size_t n = sim_callers_count(c);
    assert_true(fabs((double)n - 10000) < 400); /* 4 sigma */
    assert_true(sim_callers_get(c, n - 1)->at_s < 1000);
    assert_true(sim_callers_end_s(c) == 1000);
    fx_free(&f);
}

static void test_burst(void **state)
{
    (void)state;
    struct fx f;
    struct sim_callers *c = make(&f, "{\"duration_s\":1,\"callers\":{\"arrivals\":{\"process\":"
                                     "\"burst\",\"count\":200,\"at_s\":2,\"spread_s\":0.5}}}");
    assert_int_equal(sim_callers_count(c), 200);
    for (size_t i = 0; i < 200; i++) {
        double t = sim_callers_get(c, i)->at_s;
        assert_true(t >= 2 && t <= 2.5);
        if (i > 0)
            assert_true(t >= sim_callers_get(c, i - 1)->at_s);
    }
    assert_true(sim_callers_end_s(c) > 2); /* the burst lies past duration_s */
    fx_free(&f);

    c = make(&f, "{\"callers\":{\"arrivals\":{\"process\":\"burst\",\"count\":5}}}");
    for (size_t i = 0; i < 5; i++) {
        assert_true(sim_callers_get(c, i)->at_s == 0);
        assert_int_equal(sim_callers_get(c, i)->seq, i);
    }
    fx_free(&f);
}

static void test_schedule(void **state)
{
    (void)state;
    struct fx f;
    struct sim_callers *c =
        make(&f, "{\"callers\":{\"arrivals\":{\"process\":\"schedule\",\"segments\":["
                 "{\"until_s\":100,\"rate_per_s\":1},{\"until_s\":200,\"rate_per_s\":0},"
                 "{\"until_s\":300,\"rate_per_s\":10}]}}}");
    size_t a = 0, b = 0, d = 0;
    for (size_t i = 0; i < sim_callers_count(c); i++) {
        double t = sim_callers_get(c, i)->at_s;
        if (t < 100)
            a++;
        else if (t < 200)
            b++;
        else if (t < 300)
            d++;
        else
            fail_msg("arrival at %f past the schedule", t);
    }
    assert_true(a > 60 && a < 140);
    assert_int_equal(b, 0);
    assert_true(d > 880 && d < 1120);
    fx_free(&f);
}

static void test_cap(void **state)
{
    (void)state;
    struct fx f;
    char err[256];
    memset(&f, 0, sizeof(f));
    const char *json = "{\"duration_s\":100000,\"callers\":{\"arrivals\":{\"process\":"
                       "\"poisson\",\"rate_per_s\":100}}}";
    assert_int_equal(sim_scenario_parse(&f.sc, json, strlen(json), err, sizeof(err)), 0);
    f.w.sc = &f.sc;
    f.w.rng = sim_rng_new(1);
    assert_null(sim_callers_new(&f.w, err, sizeof(err)));
    assert_non_null(strstr(err, "more than"));
    fx_free(&f);
}

static void test_released_on_time(void **state)
{
    (void)state;
    struct fx f;
    struct sim_callers *c = make(&f, "{\"duration_s\":0.5,\"callers\":{\"arrivals\":{\"process\":"
                                     "\"poisson\",\"rate_per_s\":40}}}");
    f.w.base = event_base_new();
    f.w.report = sim_report_new(&f.w);
    f.w.start_ms = cg_mono_ms();
    started = 0;
    started_late_max = 0;
    assert_int_equal(sim_callers_start(c), 0);
    assert_int_equal(started, 0);
    size_t n = sim_callers_count(c);
    assert_true(n > 5);
    uint64_t deadline = cg_mono_ms() + 3000;
    while (!sim_callers_done(c) && cg_mono_ms() < deadline)
        event_base_loop(f.w.base, EVLOOP_ONCE);
    assert_true(sim_callers_done(c));
    assert_int_equal((size_t)started, n);
    assert_int_equal(sim_callers_arrived(c), n);
    assert_true(started_late_max < 0.05);
    char *st = sim_report_status_json(f.w.report);
    char want[32];
    snprintf(want, sizeof(want), "\"total\":%zu", n);
    assert_non_null(strstr(st, want));
    free(st);
    sim_report_free(f.w.report);
    fx_free(&f);
    event_base_free(f.w.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_poisson_rate),
        cmocka_unit_test(test_burst),         cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_cap),           cmocka_unit_test(test_released_on_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
