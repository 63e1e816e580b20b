/*
 * callback_window.c - cg:{g}:cbwin kept in step with CALLBACK_HOURS
 * (callback_window.h).
 */
#include "base/fmacros.h"

#include "gate/callback_window.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "gate/keys.h"
#include "net/periodic.h"
#include "net/redis.h"

struct gate_callback_window {
    struct cg_redis *redis;
    char key[CG_KEY_MAX + 8];
    struct gate_callback_hours hours;
    int always;
    int interval_ms;
    struct cg_periodic *task;
};

static void on_written(const redisReply *reply, const char *err, void *arg)
{
    (void)reply;
    (void)arg;
    if (err != NULL)
        cg_log_warn("callback window not published; the next run tries again", "error=%s", err);
}

static void publish(void *arg)
{
    struct gate_callback_window *w = arg;
    time_t now = time(NULL), until = 0;
    int open = w->always ? 1 : gate_callback_hours_open(&w->hours, now, &until);
    if (open < 0) {
        cg_log_warn("callback window not computed; callbacks pause", "zone=%s", w->hours.zone);
        open = 0;
    }
    if (!open) {
        if (cg_redis_command(w->redis, on_written, NULL, "DEL %s", w->key) != 0)
            cg_log_warn("callback window not cleared", "");
        return;
    }
    /* Three intervals: callbacks stop soon after the last publisher. */
    long long ttl_ms = 3LL * w->interval_ms;
    if (!w->always && (long long)(until - now) * 1000 < ttl_ms)
        ttl_ms = (long long)(until - now) * 1000;
    if (ttl_ms < 1)
        ttl_ms = 1;
    if (cg_redis_command(w->redis, on_written, NULL, "SET %s %lld PX %lld", w->key,
                         (long long)until * 1000, ttl_ms) != 0)
        cg_log_warn("callback window not published", "");
}

struct gate_callback_window *gate_callback_window_new(struct event_base *base,
                                                      struct cg_redis *redis,
                                                      const struct cg_keys *keys,
                                                      const struct gate_callback_hours *hours,
                                                      int interval_ms)
{
    struct gate_callback_window *w = cg_calloc(1, sizeof *w);
    w->redis = redis;
    snprintf(w->key, sizeof w->key, "%scbwin", keys->prefix);
    w->always = hours == NULL;
    if (hours != NULL)
        w->hours = *hours;
    w->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    w->task = cg_periodic_new(base, "callback-window", w->interval_ms, 10, publish, w);
    if (w->task == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

void gate_callback_window_kick(struct gate_callback_window *w)
{
    if (w != NULL)
        cg_periodic_kick(w->task);
}

void gate_callback_window_free(struct gate_callback_window *w)
{
    if (w == NULL)
        return;
    cg_periodic_free(w->task);
    free(w);
}
