/*
 * callers.c - the arrival process. The population is drawn up front so that
 * it depends only on the seed and the scenario; one timer, re-armed for the
 * next arrival, releases it on the loop.
 */
#include "base/fmacros.h"

#include "callers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "base/log.h"
#include "report.h"
#include "rng.h"
#include "scenario_routes.h"
#include "sim.h"

struct sim_callers {
    struct sim_world *w;
    struct sim_caller *v;
    size_t n, cap;
    size_t next; /* first caller not yet arrived */
    struct event *timer;
    double end_s;
};

static int add(struct sim_callers *c, double at_s, char *err, size_t errlen)
{
    if (c->n == SIM_CALLERS_MAX) {
        snprintf(err, errlen, "the scenario makes more than %d callers", SIM_CALLERS_MAX);
        return -1;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->v = cg_realloc(c->v, c->cap * sizeof(*c->v));
    }
    struct sim_rng *rng = c->w->rng;
    struct sim_caller *k = &c->v[c->n++];
    k->at_s = at_s;
    k->seq = c->n - 1;
    snprintf(k->from, sizeof(k->from), "+1555%07" PRIu64, sim_rng_u64(rng) % 10000000u);
    k->duration_s = sim_rng_draw(rng, &c->w->sc->duration);
    if (k->duration_s < 0)
        k->duration_s = 0;
    k->patience_s = sim_rng_draw(rng, &c->w->sc->patience);
    k->to = NULL;
    k->route = -1;
    k->vip = 0;
    return 0;
}

/* A caller of route ri (scenario routes): one of its numbers, and a VIP
 * number as often as the route's vip_share says. */
static int add_routed(struct sim_callers *c, double at_s, size_t ri, char *err, size_t errlen)
{
    if (add(c, at_s, err, errlen) != 0)
        return -1;
    const struct sim_route_cfg *rt = &c->w->sc->routes->r[ri];
    struct sim_caller *k = &c->v[c->n - 1];
    k->route = (int)ri;
    k->to = rt->numbers[sim_rng_u64(c->w->rng) % rt->nnumbers];
    if (rt->nvip > 0 && sim_rng_chance(c->w->rng, rt->vip_share)) {
        k->vip = 1;
        snprintf(k->from, sizeof(k->from), "%s", rt->vip[sim_rng_u64(c->w->rng) % rt->nvip]);
    }
    return 0;
}

/* Every route's arrivals, Poisson per segment, one route after another. */
static int routed(struct sim_callers *c, char *err, size_t errlen)
{
    const struct sim_routes_cfg *rs = c->w->sc->routes;
    for (size_t ri = 0; ri < rs->n; ri++) {
        double from = 0;
        for (size_t s = 0; s < rs->r[ri].nsegments; s++) {
            const struct sim_segment *seg = &rs->r[ri].segments[s];
            double t = from;
            while (seg->rate_per_s > 0) {
                t += sim_rng_exp(c->w->rng, 1.0 / seg->rate_per_s);
                if (t >= seg->until_s)
                    break;
                if (add_routed(c, t, ri, err, errlen) != 0)
                    return -1;
            }
            from = seg->until_s;
        }
    }
    return 0;
}

/* Poisson arrivals at rate over [from_s, until_s): exponential gaps. */
static int poisson(struct sim_callers *c, double from_s, double until_s, double rate, char *err,
                   size_t errlen)
{
    if (!(rate > 0))
        return 0;
    double t = from_s;
    for (;;) {
        t += sim_rng_exp(c->w->rng, 1.0 / rate);
        if (t >= until_s)
            return 0;
        if (add(c, t, err, errlen) != 0)
            return -1;
    }
}

static int by_time(const void *a, const void *b)
{
    const struct sim_caller *x = a, *y = b;
    if (x->at_s != y->at_s)
        return x->at_s < y->at_s ? -1 : 1;
    /* Equal times (a burst with no spread): keep draw order. */
    return (x->seq > y->seq) - (x->seq < y->seq);
}

struct sim_callers *sim_callers_new(struct sim_world *w, char *err, size_t errlen)
{
    const struct sim_scenario *sc = w->sc;
    struct sim_callers *c = cg_calloc(1, sizeof(*c));
    c->w = w;
    int rc = 0;
    if (sc->routes) {
        rc = routed(c, err, errlen);
        if (rc == 0 && c->n > 1)
            qsort(c->v, c->n, sizeof(*c->v), by_time);
    } else {
        switch (sc->arrival) {
        case SIM_ARRIVAL_POISSON:
            rc = poisson(c, 0, sc->duration_s, sc->rate_per_s, err, errlen);
            break;
        case SIM_ARRIVAL_BURST:
            for (int i = 0; rc == 0 && i < sc->burst_count; i++)
                rc =
                    add(c, sc->burst_at_s + sc->burst_spread_s * sim_rng_unit(w->rng), err, errlen);
            if (rc == 0 && c->n > 1)
                qsort(c->v, c->n, sizeof(*c->v), by_time);
            break;
        case SIM_ARRIVAL_SCHEDULE: {
            double from = 0;
            for (size_t i = 0; rc == 0 && i < sc->nsegments; i++) {
                rc = poisson(c, from, sc->segments[i].until_s, sc->segments[i].rate_per_s, err,
                             errlen);
                from = sc->segments[i].until_s;
            }
            break;
        }
        }
    }
    if (rc != 0) {
        sim_callers_free(c);
        return NULL;
    }
    c->end_s = sc->duration_s;
    if (c->n > 0 && c->v[c->n - 1].at_s > c->end_s)
        c->end_s = c->v[c->n - 1].at_s;
    return c;
}

void sim_callers_free(struct sim_callers *c)
{
    if (!c)
        return;
    if (c->timer)
        event_free(c->timer);
    free(c->v);
    free(c);
}

static void arm(struct sim_callers *c)
{
    if (c->next >= c->n)
        return;
    double wait_s = c->v[c->next].at_s - sim_now_s(c->w);
    if (wait_s < 0)
        wait_s = 0;
    long us = (long)(wait_s * 1e6);
    struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};
    if (evtimer_add(c->timer, &tv) != 0)
        cg_log_error("sim arrival timer failed", "");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_callers *c = arg;
    /* Timers fire up to a loop iteration late: release everyone due. A
     * caller is never released early, so at_s is a lower bound. */
    double now = sim_now_s(c->w);
    while (c->next < c->n && c->v[c->next].at_s <= now + 0.0005) {
        const struct sim_caller *k = &c->v[c->next++];
        if (c->w->report)
            sim_report_caller_arrived(c->w->report);
        sim_twilio_new_call_to(c->w, k->from, k->to, k->duration_s, k->patience_s);
    }
    arm(c);
}

int sim_callers_start(struct sim_callers *c)
{
    if (c->timer)
        return 0;
    c->timer = evtimer_new(c->w->base, on_timer, c);
    if (!c->timer)
        return -1;
    arm(c);
    return 0;
}

size_t sim_callers_count(const struct sim_callers *c)
{
    return c->n;
}

const struct sim_caller *sim_callers_get(const struct sim_callers *c, size_t i)
{
    return i < c->n ? &c->v[i] : NULL;
}

size_t sim_callers_arrived(const struct sim_callers *c)
{
    return c->next;
}

int sim_callers_done(const struct sim_callers *c)
{
    return c->next >= c->n;
}

double sim_callers_end_s(const struct sim_callers *c)
{
    return c->end_s;
}
