/*
 * test_estimate.c - the per-caller estimated wait (queue-length estimator
 * with abandonment correction and the head-of-line bound), the EWMA, and
 * the TaskQueue estimate of the wait-time service.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/estimate.h"

#include <limits.h>
#include <math.h>

#define EPS 1e-9

/* cmocka 1.1.5 has no assert_double_equal (its float one loses precision). */
#define assert_near(a, b, eps)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (eps)))                                                             \
            fail_msg("%.17g != %.17g", a_, b_);                                                    \
    } while (0)

/* All slots busy, observed mean call length 120 s, no abandonment. */
static struct cg_ewt_input full(long ahead, long slots)
{
    struct cg_ewt_input in = {.ahead = ahead,
                              .slots = slots,
                              .busy = slots,
                              .mean_service_s = 120,
                              .prior_service_s = 180};
    return in;
}

/* The 90th-percentile bound: never below the mean, a margin that grows
 * as sqrt(releases), and close to the exponential's exact quantile for one
 * release. */
static void test_bound(void **state)
{
    (void)state;
    struct cg_ewt_input in = {
        .ahead = 0, .slots = 1, .busy = 1, .mean_service_s = 100, .admit_s = 1};
    /* One release of mean 100 s: the exact 90th percentile is 230 s. */
    double b = cg_ewt_bound_seconds(&in);
    assert_true(b > 1 + 220 && b < 1 + 235);
    in.slots = 10;
    in.busy = 10;
    in.mean_service_s = 10;
    for (long ahead = 0; ahead < 200; ahead += 7) {
        in.ahead = ahead;
        double mean = cg_ewt_seconds(&in), bound = cg_ewt_bound_seconds(&in);
        double r = (double)ahead + 1;
        assert_true(bound >= mean);
        /* mean + z sqrt(r) S/c, within 15% of the margin. */
        double margin = bound - mean, want = CG_EWT_BOUND_Z * sqrt(r);
        assert_true(margin > 0.85 * want && margin < 1.3 * want);
    }
    /* A free slot: the admission alone, as the mean. */
    in.busy = 5;
    in.ahead = 0;
    assert_true(cg_ewt_bound_seconds(&in) == cg_ewt_seconds(&in));
    assert_true(cg_ewt_bound_seconds(NULL) == CG_EWT_DEFAULT_PRIOR_S);
}

static void test_queue_length(void **state)
{
    (void)state;
    /* (k + 1) * S / c, plus the caller's own admission */
    struct cg_ewt_input in = full(0, 2);
    assert_near(cg_ewt_seconds(&in), 60 + CG_EWT_ADMIT_S, EPS);
    in = full(9, 2);
    assert_near(cg_ewt_seconds(&in), 600 + CG_EWT_ADMIT_S, EPS);
    in = full(4, 1);
    assert_near(cg_ewt_seconds(&in), 600 + CG_EWT_ADMIT_S, EPS);
}

static void test_monotonic_in_ahead(void **state)
{
    (void)state;
    for (long slots = 1; slots <= 8; slots++) {
        double prev = 0;
        for (long ahead = 0; ahead <= 200; ahead++) {
            struct cg_ewt_input in = full(ahead, slots);
            in.abandon_ratio = 0.2;
            double e = cg_ewt_seconds(&in);
            assert_true(e > prev);
            prev = e;
        }
    }
    /* With free slots too: non-decreasing, then increasing. */
    double prev = 0;
    for (long ahead = 0; ahead <= 50; ahead++) {
        struct cg_ewt_input in = full(ahead, 10);
        in.busy = 6;
        double e = cg_ewt_seconds(&in);
        assert_true(e >= prev);
        prev = e;
    }
}

static void test_scales_with_slots(void **state)
{
    (void)state;
    struct cg_ewt_input one = full(19, 1);
    double base = cg_ewt_seconds(&one);
    assert_near(base, 2400 + CG_EWT_ADMIT_S, EPS);
    for (long c = 2; c <= 10; c++) {
        struct cg_ewt_input in = full(19, c);
        assert_near(cg_ewt_seconds(&in), 2400 / (double)c + CG_EWT_ADMIT_S, EPS);
    }
    /* slots < 1 reads as 1. */
    struct cg_ewt_input zero = full(19, 0);
    zero.busy = 1;
    assert_near(cg_ewt_seconds(&zero), base, EPS);
    zero.slots = -4;
    assert_near(cg_ewt_seconds(&zero), base, EPS);
}

static void test_free_slots(void **state)
{
    (void)state;
    /* Two free slots: the next two callers are being admitted now. */
    struct cg_ewt_input in = full(0, 5);
    in.busy = 3;
    assert_near(cg_ewt_seconds(&in), CG_EWT_ADMIT_S, EPS);
    in.ahead = 1;
    assert_near(cg_ewt_seconds(&in), CG_EWT_ADMIT_S, EPS);
    /* The third needs one release: S / c. */
    in.ahead = 2;
    assert_near(cg_ewt_seconds(&in), 120.0 / 5 + CG_EWT_ADMIT_S, EPS);
    /* Far more free than waiting (the limit was raised). */
    in.busy = 0;
    in.ahead = 3;
    assert_near(cg_ewt_seconds(&in), CG_EWT_ADMIT_S, EPS);
    /* busy above slots (limit lowered at runtime) counts as no free slot. */
    in = full(0, 2);
    in.busy = 5;
    assert_near(cg_ewt_seconds(&in), 60 + CG_EWT_ADMIT_S, EPS);
    in.busy = -3;
    assert_near(cg_ewt_seconds(&in), CG_EWT_ADMIT_S, EPS);
}

static void test_abandonment(void **state)
{
    (void)state;
    struct cg_ewt_input in = full(9, 2);
    double none = cg_ewt_seconds(&in);
    in.abandon_ratio = 0.5;
    double half = cg_ewt_seconds(&in);
    assert_true(half < none);
    /* 9 * 0.5 + 1 releases at S/c = 60 s. */
    assert_near(half, 5.5 * 60 + CG_EWT_ADMIT_S, EPS);
    /* The ratio is capped: a handful of samples cannot wipe out the queue. */
    in.abandon_ratio = 0.99;
    assert_near(cg_ewt_seconds(&in), (9 * (1 - CG_EWT_MAX_ABANDON) + 1) * 60 + CG_EWT_ADMIT_S, EPS);
    in.abandon_ratio = 7;
    assert_near(cg_ewt_seconds(&in), (9 * (1 - CG_EWT_MAX_ABANDON) + 1) * 60 + CG_EWT_ADMIT_S, EPS);
    /* Nonsense ratios read as 0. */
    in.abandon_ratio = -0.5;
    assert_near(cg_ewt_seconds(&in), none, EPS);
    in.abandon_ratio = NAN;
    assert_near(cg_ewt_seconds(&in), none, EPS);
    /* Abandonment of others never affects the caller who is next. */
    in = full(0, 2);
    in.abandon_ratio = 0.5;
    assert_near(cg_ewt_seconds(&in), 60 + CG_EWT_ADMIT_S, EPS);
}

static void test_no_data(void **state)
{
    (void)state;
    /* No call has ended: the prior stands in for S. */
    struct cg_ewt_input in = full(0, 1);
    in.mean_service_s = 0;
    assert_near(cg_ewt_seconds(&in), 180 + CG_EWT_ADMIT_S, EPS);
    in.mean_service_s = -1;
    assert_near(cg_ewt_seconds(&in), 180 + CG_EWT_ADMIT_S, EPS);
    in.mean_service_s = NAN;
    assert_near(cg_ewt_seconds(&in), 180 + CG_EWT_ADMIT_S, EPS);
    /* No prior either: the built-in default, never 0. */
    in.prior_service_s = 0;
    assert_near(cg_ewt_seconds(&in), CG_EWT_DEFAULT_PRIOR_S + CG_EWT_ADMIT_S, EPS);
    struct cg_ewt_input zero = {0};
    assert_true(cg_ewt_seconds(&zero) >= 1);
    assert_true(cg_ewt_seconds(NULL) >= 1);
}

static void test_head_of_line_bound(void **state)
{
    (void)state;
    /* Before any call has ended, the head has waited 20 minutes with every
     * slot busy: the calls in progress are at least that long. */
    struct cg_ewt_input in = full(0, 1);
    in.mean_service_s = 0;
    in.head_wait_s = 1200;
    in.waited_s = 300;
    assert_near(cg_ewt_seconds(&in), 1200 + CG_EWT_ADMIT_S, EPS);
    in.ahead = 3;
    in.slots = in.busy = 2;
    assert_near(cg_ewt_seconds(&in), 4 * 1200 / 2.0 + CG_EWT_ADMIT_S, EPS);
    /* The caller's own wait is evidence too (the head value may be stale). */
    in.head_wait_s = 0;
    in.waited_s = 600;
    assert_near(cg_ewt_seconds(&in), 4 * 600 / 2.0 + CG_EWT_ADMIT_S, EPS);
    /* A short head wait never lowers the prior. */
    in.head_wait_s = 10;
    in.waited_s = 5;
    assert_near(cg_ewt_seconds(&in), 4 * 180 / 2.0 + CG_EWT_ADMIT_S, EPS);
    /* Once calls have ended the observed mean rules: no bound. */
    in.mean_service_s = 120;
    in.head_wait_s = 5000;
    assert_near(cg_ewt_seconds(&in), 4 * 120 / 2.0 + CG_EWT_ADMIT_S, EPS);
    /* A free slot means nothing is stuck: no bound. */
    in.mean_service_s = 0;
    in.busy = 1;
    assert_near(cg_ewt_seconds(&in), 3 * 180 / 2.0 + CG_EWT_ADMIT_S, EPS);
}

static void test_observed_admission(void **state)
{
    (void)state;
    /* The observed admission latency replaces the default, in both cases:
     * being admitted now, and after the releases ahead. */
    struct cg_ewt_input in = full(0, 2);
    in.admit_s = 0.8;
    assert_near(cg_ewt_seconds(&in), 60 + 0.8, EPS);
    in.busy = 0;
    assert_near(cg_ewt_seconds(&in), CG_EWT_MIN_S, EPS); /* 0.8 s, clamped to 1 */
    in.admit_s = 2.5;
    assert_near(cg_ewt_seconds(&in), 2.5, EPS);
    in.admit_s = NAN;
    assert_near(cg_ewt_seconds(&in), CG_EWT_ADMIT_S, EPS);
}

static void test_clamps(void **state)
{
    (void)state;
    struct cg_ewt_input in = full(LONG_MAX, 1);
    in.mean_service_s = 1e12;
    assert_near(cg_ewt_seconds(&in), CG_EWT_MAX_S, EPS);
    in.mean_service_s = INFINITY;
    double e = cg_ewt_seconds(&in);
    assert_true(e >= CG_EWT_MIN_S && e <= CG_EWT_MAX_S);
    /* Tiny service times still give at least a few seconds. */
    in = full(0, 1000);
    in.mean_service_s = 0.001;
    assert_near(cg_ewt_seconds(&in), CG_EWT_ADMIT_S + 0.001 / 1000, EPS);
    /* Negative ahead reads as 0; NaN everywhere stays finite and >= 1. */
    in = full(-5, 2);
    assert_near(cg_ewt_seconds(&in), 60 + CG_EWT_ADMIT_S, EPS);
    struct cg_ewt_input nan_in = {.ahead = 3,
                                  .slots = 2,
                                  .busy = 2,
                                  .mean_service_s = NAN,
                                  .prior_service_s = NAN,
                                  .abandon_ratio = NAN,
                                  .waited_s = NAN,
                                  .head_wait_s = NAN};
    e = cg_ewt_seconds(&nan_in);
    assert_true(isfinite(e) && e >= CG_EWT_MIN_S);
}

static void test_taskqueue(void **state)
{
    (void)state;
    /* Stalled: backlog, nobody busy or available, nothing accepted in the
     * window (the seed's average reads 0 here): never shorter than the
     * longest wait so far. */
    struct cg_tq_input stalled = {.pending_tasks = 3, .longest_waiting_s = 300};
    assert_true(cg_tq_estimate_seconds(&stalled) >= 300);
    /* Workers went offline after serving: a throughput in the window, but
     * nobody to give it now. */
    stalled.accepted = 400;
    stalled.canceled = 10;
    assert_true(cg_tq_estimate_seconds(&stalled) >= 300);
    /* No throughput figure, workers busy: the prior handle time per busy
     * worker. */
    struct cg_tq_input prior = {.pending_tasks = 3, .busy_workers = 2, .longest_waiting_s = 10};
    assert_near(cg_tq_estimate_seconds(&prior), 4 * CG_TQ_DEFAULT_SVC_S / 2, EPS);

    /* Idle: a worker free, no backlog: the quickest acceptance, never 0. */
    struct cg_tq_input idle = {.available_workers = 3, .accepted = 100};
    assert_near(cg_tq_estimate_seconds(&idle), CG_TQ_FLOOR_S, EPS);
    idle.accept_min_s = 4;
    assert_near(cg_tq_estimate_seconds(&idle), 4, EPS);
    /* One odd slow acceptance does not make an idle queue look busy. */
    idle.accept_min_s = 500;
    assert_near(cg_tq_estimate_seconds(&idle), CG_TQ_IDLE_CAP_S, EPS);
    /* Free workers cover the backlog (offers in flight): still idle. */
    idle.accept_min_s = 0;
    idle.pending_tasks = 2;
    assert_near(cg_tq_estimate_seconds(&idle), CG_TQ_FLOOR_S, EPS);

    /* All busy, nobody waiting: one release, at the window's throughput.
     * 450 accepted in 900 s: a worker frees up every 2 s. */
    struct cg_tq_input busy = {.busy_workers = 4, .accepted = 450, .window_s = 900};
    assert_near(cg_tq_estimate_seconds(&busy), 2, EPS);
    /* The window defaults to TaskRouter's 15 minutes. */
    busy.window_s = 0;
    assert_near(cg_tq_estimate_seconds(&busy), 2, EPS);
    busy.window_s = 450;
    assert_near(cg_tq_estimate_seconds(&busy), 1, EPS);
    busy.window_s = 900;

    /* A backlog: queue length at that rate, averaged with the head's age.
     * 5 ahead, no abandonment: 6 releases = 12 s; head 20 s: 16 s. */
    busy.pending_tasks = 5;
    busy.longest_waiting_s = 20;
    assert_near(cg_tq_estimate_seconds(&busy), (12 + 20) / 2.0, EPS);
    /* Longer with a longer backlog, shorter with a faster queue. */
    double e = cg_tq_estimate_seconds(&busy);
    busy.pending_tasks = 20;
    assert_true(cg_tq_estimate_seconds(&busy) > e);
    busy.pending_tasks = 5;
    busy.accepted = 900;
    assert_true(cg_tq_estimate_seconds(&busy) < e);
    busy.accepted = 450;
    /* Abandonment: a quarter of the tasks give up, so of the 5 ahead 3.75
     * stay: 4.75 releases = 9.5 s. */
    busy.canceled = 150;
    assert_near(cg_tq_estimate_seconds(&busy), (9.5 + 20) / 2.0, EPS);
    /* The ratio is capped: a queue where nearly all give up still counts
     * the ones ahead. */
    busy.canceled = 1000000;
    assert_near(cg_tq_estimate_seconds(&busy), ((5 * (1 - CG_EWT_MAX_ABANDON) + 1) * 2 + 20) / 2.0,
                EPS);
    busy.canceled = 0;
    /* Backlog with a worker available (an offer in flight): queue length
     * on the remainder, no head-of-line term (the head is being taken). */
    busy.available_workers = 2;
    assert_near(cg_tq_estimate_seconds(&busy), 4 * 2, EPS);

    /* Never 0: empty input, NaN and negatives. */
    struct cg_tq_input zero = {0};
    assert_true(cg_tq_estimate_seconds(&zero) >= CG_TQ_FLOOR_S);
    struct cg_tq_input junk = {.pending_tasks = -4,
                               .available_workers = -1,
                               .busy_workers = -3,
                               .longest_waiting_s = NAN,
                               .accepted = -5,
                               .canceled = -1,
                               .window_s = NAN,
                               .accept_min_s = -3};
    e = cg_tq_estimate_seconds(&junk);
    assert_true(isfinite(e) && e >= CG_TQ_FLOOR_S);
    junk.window_s = INFINITY;
    junk.accepted = 10;
    junk.busy_workers = 1;
    e = cg_tq_estimate_seconds(&junk);
    assert_true(isfinite(e) && e >= CG_TQ_FLOOR_S);
    assert_true(cg_tq_estimate_seconds(NULL) >= CG_TQ_FLOOR_S);
    /* Clamped to 24 h. */
    struct cg_tq_input huge = {.pending_tasks = LONG_MAX, .longest_waiting_s = 1e12};
    assert_near(cg_tq_estimate_seconds(&huge), CG_EWT_MAX_S, EPS);
    huge.accepted = 1;
    huge.busy_workers = 1;
    assert_near(cg_tq_estimate_seconds(&huge), CG_EWT_MAX_S, EPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_length),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_monotonic_in_ahead),
        cmocka_unit_test(test_scales_with_slots),
        cmocka_unit_test(test_free_slots),
        cmocka_unit_test(test_abandonment),
        cmocka_unit_test(test_no_data),
        cmocka_unit_test(test_head_of_line_bound),
        cmocka_unit_test(test_observed_admission),
        cmocka_unit_test(test_clamps),
        cmocka_unit_test(test_taskqueue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
