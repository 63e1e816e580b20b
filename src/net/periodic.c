#include "base/fmacros.h"

#include "net/periodic.h"

#include <event2/event.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

struct cg_periodic {
    struct event *ev;
    char *name;
    int interval_ms;
    int jitter_pct;
    cg_periodic_fn fn;
    void *arg;
};

static void schedule(struct cg_periodic *p, int delay_ms)
{
    if (delay_ms < 0)
        delay_ms = 0;
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
    event_add(p->ev, &tv);
}

/* The interval with up to jitter_pct percent added or removed, so that
 * instances started together drift apart instead of hitting Redis and the
 * APIs in step. */
static int jittered(const struct cg_periodic *p)
{
    int spread = p->interval_ms / 100 * p->jitter_pct;
    if (spread <= 0)
        return p->interval_ms;
    return p->interval_ms - spread + (int)cg_random_below((uint64_t)spread * 2 + 1);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_periodic *p = arg;
    p->fn(p->arg);
    /* The callback may have rescheduled us (kick or delay); respect it. */
    if (!event_pending(p->ev, EV_TIMEOUT, NULL))
        schedule(p, jittered(p));
}

struct cg_periodic *cg_periodic_new(struct event_base *base, const char *name, int interval_ms,
                                    int jitter_pct, cg_periodic_fn fn, void *arg)
{
    struct cg_periodic *p = cg_calloc(1, sizeof *p);
    p->ev = evtimer_new(base, on_timer, p);
    if (p->ev == NULL) {
        free(p);
        return NULL;
    }
    p->name = cg_strdup(name);
    p->interval_ms = interval_ms > 0 ? interval_ms : 1;
    p->jitter_pct = jitter_pct < 0 ? 0 : jitter_pct > 50 ? 50 : jitter_pct;
    p->fn = fn;
    p->arg = arg;
    schedule(p, jittered(p));
    return p;
}

void cg_periodic_kick(struct cg_periodic *p)
{
    schedule(p, 0);
}

void cg_periodic_free(struct cg_periodic *p)
{
    if (p == NULL)
        return;
    event_free(p->ev);
    free(p->name);
    free(p);
}
