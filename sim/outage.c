/*
 * outage.c - API outage windows (see outage.h): requests held in a black
 * hole until the window closes, or refused with 503.
 */
#include "base/fmacros.h"

#include "outage.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "report.h"
#include "sim.h"

struct held {
    struct sim_outage_hold *h;
    struct cg_list link; /* sim_outage_hold.held */
    struct cg_http_req *req;
    struct event *timer;
    int late; /* served, not refused, when the window closes */
};

struct sim_outage_hold {
    struct sim_world *w;
    char name[16];
    const struct sim_outages *windows;
    sim_outage_reply unavailable, serve;
    void *arg;
    struct cg_list held; /* newest first */
};

const struct sim_outage *sim_outage_at(const struct sim_outages *o, double now_s)
{
    for (size_t i = 0; o && i < o->n; i++)
        if (now_s >= o->w[i].at_s && now_s < o->w[i].at_s + o->w[i].for_s)
            return &o->w[i];
    return NULL;
}

struct sim_outage_hold *sim_outage_hold_new(struct sim_world *w, const char *name,
                                            const struct sim_outages *windows,
                                            sim_outage_reply unavailable, sim_outage_reply serve,
                                            void *arg)
{
    struct sim_outage_hold *h = cg_calloc(1, sizeof(*h));
    h->w = w;
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->windows = windows;
    h->unavailable = unavailable;
    h->serve = serve;
    h->arg = arg;
    cg_list_init(&h->held);
    return h;
}

static void count(struct sim_outage_hold *h, const char *what)
{
    if (!h->w->report)
        return;
    char name[48];
    snprintf(name, sizeof(name), "%s.%s", h->name, what);
    sim_report_count(h->w->report, name);
}

/* Frees x and answers its request: refused (it was never acted upon), or
 * served now when serve is set. */
static void release(struct held *x, int serve)
{
    struct sim_outage_hold *h = x->h;
    struct cg_http_req *req = x->req;
    cg_list_remove(&x->link);
    event_free(x->timer);
    free(x);
    if (serve)
        h->serve(req, h->arg);
    else
        h->unavailable(req, h->arg);
}

static void on_window_closed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct held *x = arg;
    release(x, x->late);
}

int sim_outage_take(struct sim_outage_hold *h, struct cg_http_req *req)
{
    if (!h || h->windows->n == 0 || h->w->start_ms == 0)
        return 0;
    double now = sim_now_s(h->w);
    const struct sim_outage *o = sim_outage_at(h->windows, now);
    if (!o)
        return 0;
    if (o->mode == SIM_OUTAGE_503) {
        count(h, "outage_503");
        h->unavailable(req, h->arg);
        return 1;
    }
    struct held *x = cg_calloc(1, sizeof(*x));
    x->h = h;
    x->req = req;
    x->timer = evtimer_new(h->w->base, on_window_closed, x);
    if (!x->timer) {
        /* Without a timer the request could be held for ever: refuse it. */
        free(x);
        cg_log_error("sim outage timer failed", "");
        h->unavailable(req, h->arg);
        return 1;
    }
    x->late = o->mode == SIM_OUTAGE_LATE;
    cg_list_push_front(&h->held, &x->link);
    double left = o->at_s + o->for_s - now;
    if (left < 0)
        left = 0;
    long long us = (long long)(left * 1e6);
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
    evtimer_add(x->timer, &tv);
    count(h, x->late ? "outage_late" : "outage_held");
    return 1;
}

void sim_outage_hold_free(struct sim_outage_hold *h)
{
    if (!h)
        return;
    /* Shutting down: nothing is served any more. */
    struct cg_list *it;
    while ((it = cg_list_first(&h->held)) != NULL)
        release(cg_list_entry(it, struct held, link), 0);
    free(h);
}
