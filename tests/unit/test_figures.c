/*
 * test_figures.c - the service-level figures (gate/figures.h) against
 * values worked out by hand from a scripted queue log: short abandons at
 * and under their threshold, the service level's threshold and
 * denominator, nearest-rank percentiles, and 15-minute interval and UTC day
 * boundaries.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "gate/figures.h"

#define assert_near(a, b)                                                                          \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= 1e-9))                                                              \
            fail_msg("%.17g != %.17g", a_, b_);                                                    \
    } while (0)

static const struct gate_fig_params params = {.service_level_ms = 20000, .short_abandon_ms = 5000};

/* Two intervals of a queue log, times in ms from an interval boundary. */
static const struct gate_fig_event scripted[] = {
    {1000, 0, FIG_ENTER},         {2000, 0, FIG_ENTER},        {3000, 0, FIG_ENTER},
    {4000, 0, FIG_ENTER},         {5000, 0, FIG_ENTER},        {6000, 0, FIG_ENTER},
    {7000, 0, FIG_NONE},         /* an ADMIT: not a figure */
    {10000, 9000, FIG_CONNECT},  /* in the service level */
    {25000, 20000, FIG_CONNECT}, /* exactly the threshold: in */
    {30000, 27000, FIG_CONNECT}, /* out */
    {31000, 4999, FIG_ABANDON},  /* short */
    {32000, 5000, FIG_ABANDON},  /* at the short threshold: a real abandon */
    {40000, 0, FIG_OVERFLOW},     {899999, 1000, FIG_CONNECT}, /* the interval's last millisecond */
    {900000, 50000, FIG_CONNECT},                              /* the next interval's first */
    {900000, 0, FIG_ENTER},
};
#define NSCRIPTED (sizeof scripted / sizeof scripted[0])

static void test_first_interval(void **state)
{
    (void)state;
    struct gate_figures f;
    gate_figures_compute(scripted, NSCRIPTED, 0, GATE_FIG_INTERVAL_MS, &params, 30, 60, &f);
    assert_int_equal(f.offered, 6);
    assert_int_equal(f.connected, 4);
    assert_int_equal(f.connected_in_sl, 3); /* 9, 20 and 1 s */
    assert_int_equal(f.abandoned, 1);
    assert_int_equal(f.short_abandoned, 1);
    assert_int_equal(f.overflowed, 1);
    /* 3 in time over 4 connected + 1 abandoned + 1 overflowed. */
    assert_near(f.service_level, 0.5);
    assert_near(f.asa_s, (9.0 + 20 + 27 + 1) / 4);
    /* Nearest rank: ceil(0.9 * 4) = the 4th smallest, 27 s. */
    assert_near(f.p90_s, 27.0);
    assert_near(f.occupancy, 0.5);
}

static void test_second_interval_and_boundary(void **state)
{
    (void)state;
    struct gate_figures f;
    gate_figures_compute(scripted, NSCRIPTED, GATE_FIG_INTERVAL_MS, 2 * GATE_FIG_INTERVAL_MS,
                         &params, 0, 0, &f);
    assert_int_equal(f.offered, 1);
    assert_int_equal(f.connected, 1);
    assert_int_equal(f.connected_in_sl, 0);
    assert_near(f.service_level, 0.0);
    assert_near(f.asa_s, 50.0);
    assert_near(f.p90_s, 50.0);
    assert_near(f.occupancy, -1); /* no samples */
    /* Both intervals together. */
    gate_figures_compute(scripted, NSCRIPTED, 0, 2 * GATE_FIG_INTERVAL_MS, &params, 0, 0, &f);
    assert_int_equal(f.offered, 7);
    assert_int_equal(f.connected, 5);
    assert_near(f.service_level, 3.0 / 7);
    /* ceil(0.9 * 5) = 5th smallest of 1, 9, 20, 27, 50. */
    assert_near(f.p90_s, 50.0);
}

static void test_empty_window(void **state)
{
    (void)state;
    struct gate_figures f;
    gate_figures_compute(scripted, NSCRIPTED, 41000, 899999, &params, 0, 0, &f);
    assert_int_equal(f.offered + f.connected + f.abandoned + f.short_abandoned + f.overflowed, 0);
    assert_near(f.service_level, -1);
    assert_near(f.asa_s, -1);
    assert_near(f.p90_s, -1);
    gate_figures_compute(NULL, 0, 0, 1000, &params, 0, 0, &f);
    assert_int_equal(f.offered, 0);
    /* Only short abandons: no service level (they are left out). */
    static const struct gate_fig_event shorts[] = {{1, 100, FIG_ABANDON}};
    gate_figures_compute(shorts, 1, 0, 10, &params, 0, 0, &f);
    assert_int_equal(f.short_abandoned, 1);
    assert_near(f.service_level, -1);
    /* A zero short-abandon threshold makes every abandon count. */
    struct gate_fig_params none = {.service_level_ms = 20000, .short_abandon_ms = 0};
    static const struct gate_fig_event zero[] = {{1, 0, FIG_ABANDON}};
    gate_figures_compute(zero, 1, 0, 10, &none, 0, 0, &f);
    assert_int_equal(f.abandoned, 1);
    assert_int_equal(f.short_abandoned, 0);
    assert_near(f.service_level, 0.0);
}

static void test_percentile(void **state)
{
    (void)state;
    int64_t v[20];
    for (int i = 0; i < 10; i++)
        v[i] = 10 - i; /* unsorted: 10..1 */
    assert_int_equal(gate_fig_percentile(v, 10, 0.9), 9);
    assert_int_equal(gate_fig_percentile(v, 10, 1.0), 10);
    assert_int_equal(gate_fig_percentile(v, 10, 0.5), 5);
    assert_int_equal(gate_fig_percentile(v, 10, 0.01), 1);
    for (int i = 0; i < 20; i++)
        v[i] = i + 1;
    assert_int_equal(gate_fig_percentile(v, 20, 0.9), 18);
    assert_int_equal(gate_fig_percentile(v, 11, 0.9), 10); /* ceil(9.9) */
    v[0] = 42;
    assert_int_equal(gate_fig_percentile(v, 1, 0.9), 42);
    assert_int_equal(gate_fig_percentile(NULL, 0, 0.9), -1);
}

static void test_boundaries(void **state)
{
    (void)state;
    int64_t t = (int64_t)llround(cg_iso8601_parse("2026-12-07T07:47:13.250Z") * 1000);
    int64_t day = (int64_t)llround(cg_iso8601_parse("2026-12-07T00:00:00Z") * 1000);
    int64_t q = (int64_t)llround(cg_iso8601_parse("2026-12-07T07:45:00Z") * 1000);
    assert_true(t > 0);
    assert_int_equal(gate_fig_day_start(t), day);
    assert_int_equal(gate_fig_interval_start(t), q);
    assert_int_equal(gate_fig_interval_start(q), q);
    assert_int_equal(gate_fig_interval_start(q - 1), q - GATE_FIG_INTERVAL_MS);
    assert_int_equal(gate_fig_day_start(day), day);
    assert_int_equal(gate_fig_day_start(day - 1), day - GATE_FIG_DAY_MS);
}

static void test_kinds_and_output(void **state)
{
    (void)state;
    assert_int_equal(gate_fig_kind_of("ENTER"), FIG_ENTER);
    assert_int_equal(gate_fig_kind_of("CONNECT"), FIG_CONNECT);
    assert_int_equal(gate_fig_kind_of("ABANDON"), FIG_ABANDON);
    assert_int_equal(gate_fig_kind_of("OVERFLOW"), FIG_OVERFLOW);
    assert_int_equal(gate_fig_kind_of("RELEASE"), FIG_NONE);
    assert_int_equal(gate_fig_kind_of("enter"), FIG_NONE);
    assert_int_equal(gate_fig_kind_of(NULL), FIG_NONE);

    struct gate_figures f;
    gate_figures_compute(scripted, NSCRIPTED, 0, GATE_FIG_INTERVAL_MS, &params, 30, 60, &f);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    assert_int_equal(gate_figures_csv_row(&b, &f), 0);
    assert_string_equal(cg_buf_str(&b), "1970-01-01T00:00:00.000Z,1970-01-01T00:15:00.000Z,6,4,3,"
                                        "1,1,1,0.5000,14.25,27.00,0.5000\r\n");
    cg_buf_reset(&b);
    assert_int_equal(gate_figures_json(&b, &f), 0);
    assert_string_equal(
        cg_buf_str(&b),
        "{\"from\":\"1970-01-01T00:00:00.000Z\",\"to\":\"1970-01-01T00:15:00.000Z\","
        "\"offered\":6,\"connected\":4,\"connectedInServiceLevel\":3,"
        "\"abandoned\":1,\"shortAbandoned\":1,\"overflowed\":1,"
        "\"serviceLevel\":0.5000,\"asaSeconds\":14.25,\"p90AnswerSeconds\":27.00,"
        "\"occupancy\":0.5000}");
    cg_buf_reset(&b);
    gate_figures_compute(NULL, 0, 0, 1000, &params, 0, 0, &f);
    assert_int_equal(gate_figures_csv_row(&b, &f), 0);
    assert_string_equal(cg_buf_str(&b),
                        "1970-01-01T00:00:00.000Z,1970-01-01T00:00:01.000Z,0,0,0,0,0,0,,,,\r\n");
    cg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_interval), cmocka_unit_test(test_second_interval_and_boundary),
        cmocka_unit_test(test_empty_window),   cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_boundaries),     cmocka_unit_test(test_kinds_and_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
