/*
 * cg:{g}:cbwin kept in step with CALLBACK_HOURS (src/gate/callback_window.c)
 * against a real redis-server: set with a short expiry while open, capped
 * at the window's end, deleted when closed.
 */
#include "harness.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate/callback_window.h"
#include "gate/keys.h"
#include "net/redis.h"

#define P "cg:{t}:"

struct fixture {
    struct cg_redis_server rs;
    struct event_base *base;
    struct cg_redis *redis;
    struct cg_keys keys;
};

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
    uint64_t until = cgt_now_ms() + 5000;
    while (cg_redis_state(f->redis) != CG_REDIS_READY && cgt_now_ms() < until)
        cgt_run_for(f->base, 10);
    assert_int_equal(cg_redis_state(f->redis), CG_REDIS_READY);
    cg_keys_init(&f->keys, "t");
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

static long long pttl(struct fixture *f)
{
    char *s = cgt_redis_cmd(&f->rs, "PTTL " P "cbwin");
    long long v = atoll(s);
    free(s);
    return v;
}

/* Runs the loop until cbwin's PTTL satisfies want (exists or not). */
static long long wait_key(struct fixture *f, int exists)
{
    uint64_t until = cgt_now_ms() + 5000;
    for (;;) {
        long long t = pttl(f);
        if ((exists && t > 0) || (!exists && t == -2))
            return t;
        if (cgt_now_ms() > until)
            fail_msg("cbwin PTTL %lld, wanted it %s", t, exists ? "set" : "absent");
        cgt_run_for(f->base, 10);
    }
}

static void test_always_open(void **state)
{
    struct fixture *f = *state;
    struct gate_callback_window *w =
        gate_callback_window_new(f->base, f->redis, &f->keys, NULL, 200);
    assert_non_null(w);
    gate_callback_window_kick(w);
    long long t = wait_key(f, 1);
    assert_true(t <= 600);
    gate_callback_window_free(w);
    /* Nobody refreshes it: gone within three intervals. */
    wait_key(f, 0);
}

static void test_capped_at_window_end(void **state)
{
    struct fixture *f = *state;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int min = tm.tm_hour * 60 + tm.tm_min;
    struct gate_callback_hours h = {.days = 0x7f, .start_min = 0, .end_min = min + 1};
    snprintf(h.zone, sizeof h.zone, "UTC");
    if (h.end_min > 1440)
        h.end_min = 1440;
    struct gate_callback_window *w =
        gate_callback_window_new(f->base, f->redis, &f->keys, &h, 60000);
    assert_non_null(w);
    gate_callback_window_kick(w);
    long long t = wait_key(f, 1);
    assert_true(t <= 60000); /* the window's end, not three minutes */
    gate_callback_window_free(w);
}

static void test_closed_deletes(void **state)
{
    struct fixture *f = *state;
    free(cgt_redis_cmd(&f->rs, "SET " P "cbwin 1"));
    struct gate_callback_hours h = {.days = 0, .start_min = 0, .end_min = 1}; /* never */
    snprintf(h.zone, sizeof h.zone, "UTC");
    struct gate_callback_window *w = gate_callback_window_new(f->base, f->redis, &f->keys, &h, 200);
    assert_non_null(w);
    gate_callback_window_kick(w);
    wait_key(f, 0);
    gate_callback_window_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_always_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capped_at_window_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_deletes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
