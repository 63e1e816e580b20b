/* Periodic tasks: cadence, kick, one-shot delay, rescheduling from inside
 * the callback. */
#include "harness.h"

#include <event2/event.h>

#include "net/periodic.h"

struct counter {
    int runs;
    int done;
    int stop_after;
    struct cg_periodic *self;
    int delay_once;
};

static void tick(void *arg)
{
    struct counter *c = arg;
    c->runs++;
    if (c->delay_once && c->runs == 1)
        cg_periodic_delay(c->self, c->delay_once);
    if (c->runs >= c->stop_after)
        c->done = 1;
}

static void test_runs_repeatedly(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct counter c = {.stop_after = 5};
    struct cg_periodic *p = cg_periodic_new(base, "t", 10, 10, tick, &c);
    assert_non_null(p);
    assert_string_equal(cg_periodic_name(p), "t");
    uint64_t t0 = cgt_now_ms();
    assert_int_equal(cgt_run_until(base, &c.done, 5000), 0);
    assert_int_equal(c.runs, 5);
    /* Five runs at ~10 ms cannot take less than ~40 ms (jitter is 10%). */
    assert_true(cgt_now_ms() - t0 >= 40);
    cg_periodic_free(p);
    event_base_free(base);
}

static void test_kick_runs_early(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct counter c = {.stop_after = 1};
    struct cg_periodic *p = cg_periodic_new(base, "slow", 60000, 0, tick, &c);
    cg_periodic_kick(p);
    assert_int_equal(cgt_run_until(base, &c.done, 2000), 0);
    assert_int_equal(c.runs, 1);
    cg_periodic_free(p);
    event_base_free(base);
}

static void test_delay_from_callback(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct counter c = {.stop_after = 2, .delay_once = 300};
    struct cg_periodic *p = cg_periodic_new(base, "d", 5, 0, tick, &c);
    c.self = p;
    uint64_t t0 = cgt_now_ms();
    assert_int_equal(cgt_run_until(base, &c.done, 5000), 0);
    /* The second run waited for the one-shot delay, not the 5 ms interval. */
    assert_true(cgt_now_ms() - t0 >= 290);
    cg_periodic_free(p);
    event_base_free(base);
}

static void test_free_null(void **state)
{
    (void)state;
    cg_periodic_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_repeatedly),
        cmocka_unit_test(test_kick_runs_early),
        cmocka_unit_test(test_delay_from_callback),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
