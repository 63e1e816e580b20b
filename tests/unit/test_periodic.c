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
};

static void tick(void *arg)
{
    struct counter *c = arg;
    c->runs++;
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
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
