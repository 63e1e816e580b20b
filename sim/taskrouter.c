/*
 * taskrouter.c - the simulated TaskRouter v1 (see taskrouter.h) as a
 * whole: creation and teardown of the model (taskrouter_model.c) with its
 * REST resources (taskrouter_rest.c), the timer that keeps the model
 * current, the request counters and the report sections. The layering of
 * the parts is described in taskrouter_int.h.
 */
#include "base/fmacros.h"

#include "taskrouter_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "rng.h"
#include "scenario.h"
#include "sim.h"

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    /* Keeps the model current between requests, so a request never has
     * to catch up on a long stretch of events. */
    sim_taskrouter_now(arg);
}

struct sim_taskrouter *sim_taskrouter_new(struct sim_world *w)
{
    struct sim_taskrouter *tr = cg_calloc(1, sizeof(*tr));
    tr->w = w;
    tr->sc = w->sc;
    cg_list_init(&tr->held);
    tr->t0_us = cg_mono_us();
    tr->wall0_ms = cg_wall_ms();
    tr->fault_rng = sim_rng_new((uint64_t)w->sc->seed ^ 0x74726661756c74ULL);
    sim_tr_model_init(tr);
    if (w->httpd && sim_tr_rest_init(tr) != 0) {
        sim_taskrouter_free(tr);
        return NULL;
    }
    if (w->base) {
        tr->tick = event_new(w->base, -1, EV_PERSIST, on_tick, tr);
        struct timeval tv = {.tv_sec = TICK_US / 1000000, .tv_usec = TICK_US % 1000000};
        if (!tr->tick || event_add(tr->tick, &tv) != 0) {
            cg_log_error("sim taskrouter: cannot arm the model timer", "");
            sim_taskrouter_free(tr);
            return NULL;
        }
    }
    size_t workers = 0;
    for (size_t i = 0; i < tr->nq; i++)
        workers += (size_t)tr->q[i].workers;
    cg_log_info("sim taskrouter ready", "workspace=%s queues=%zu stalled=%zu workers=%zu",
                tr->sc->tr_workspace_sid, tr->nq, tr->nstalled, workers);
    return tr;
}

/* ---- counters and teardown ---- */

long sim_taskrouter_requests(const struct sim_taskrouter *tr, const char *endpoint)
{
    for (int i = 0; i < EP_COUNT; i++)
        if (endpoint && strcmp(endpoint, sim_tr_ep_names[i]) == 0)
            return tr->requests[i];
    return 0;
}

long sim_taskrouter_max_concurrent(const struct sim_taskrouter *tr)
{
    return tr->max_inflight;
}

long sim_taskrouter_sent_429(const struct sim_taskrouter *tr)
{
    return tr->sent_429;
}

static json_t *requests_json(const struct sim_taskrouter *tr)
{
    json_t *o = json_object();
    for (int i = 0; i < EP_COUNT; i++)
        json_object_set_new(o, sim_tr_ep_names[i], json_integer(tr->requests[i]));
    return o;
}

json_t *sim_taskrouter_report_json(struct sim_taskrouter *tr)
{
    sim_taskrouter_now(tr);
    long entered = 0, accepted = 0, canceled = 0, completed = 0, refused = 0, pending = 0;
    for (size_t i = 0; i < tr->nq; i++) {
        const struct tq *q = &tr->q[i];
        entered += q->entered;
        accepted += q->accepted;
        canceled += q->canceled;
        completed += q->completed;
        refused += q->refused;
        pending += (long)q->npending;
    }
    json_t *o = json_object();
    json_object_set_new(o, "workspace_sid", json_string(tr->sc->tr_workspace_sid));
    json_object_set_new(o, "queues", json_integer((json_int_t)tr->nq));
    json_object_set_new(o, "stalled_queues", json_integer((json_int_t)tr->nstalled));
    json_t *t = json_object();
    json_object_set_new(t, "entered", json_integer(entered));
    json_object_set_new(t, "accepted", json_integer(accepted));
    json_object_set_new(t, "canceled", json_integer(canceled));
    json_object_set_new(t, "completed", json_integer(completed));
    json_object_set_new(t, "pending", json_integer(pending));
    json_object_set_new(t, "refused", json_integer(refused));
    json_object_set_new(o, "tasks", t);
    json_object_set_new(o, "requests", requests_json(tr));
    json_object_set_new(o, "unauthorized", json_integer(tr->unauthorized));
    json_object_set_new(o, "max_concurrent_requests", json_integer(tr->max_inflight));
    json_object_set_new(o, "sent_429", json_integer(tr->sent_429));
    json_object_set_new(o, "rate_limited", json_integer(tr->rate_limited));
    json_object_set_new(o, "injected_429", json_integer(tr->injected_429));
    json_object_set_new(o, "failed_pages", json_integer(tr->failed_pages));
    return o;
}

json_t *sim_taskrouter_status_json(struct sim_taskrouter *tr)
{
    sim_taskrouter_now(tr);
    json_t *o = json_object();
    json_object_set_new(o, "queues", json_integer((json_int_t)tr->nq));
    json_object_set_new(o, "pending", json_integer((json_int_t)tr->pending_total));
    json_object_set_new(o, "requests", requests_json(tr));
    json_object_set_new(o, "maxConcurrent", json_integer(tr->max_inflight));
    json_object_set_new(o, "sent429", json_integer(tr->sent_429));
    return o;
}

void sim_taskrouter_free(struct sim_taskrouter *tr)
{
    if (!tr)
        return;
    if (tr->tick)
        event_free(tr->tick);
    sim_tr_rest_shutdown(tr);
    sim_tr_model_free(tr);
    sim_rng_free(tr->fault_rng);
    free(tr);
}
