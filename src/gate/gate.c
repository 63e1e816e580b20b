/*
 * gate.c - the gate's life cycle (gate.h): its clients, periodic tasks,
 * claim and repair are made and freed here; what a return of Redis starts;
 * and the gate's figures for /metrics. Admission itself is engine.c.
 */
#include "base/fmacros.h"

#include "base/err.h"
#include "gate/gate.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "base/list.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/callback_config.h"
#include "gate/callback_dial.h"
#include "gate/callback_window.h"
#include "gate/claim.h"
#include "gate/route_figures.h"
#include "gate/routes.h"
#include "gate/endprobe.h"
#include "gate/instances.h"
#include "gate/internal.h"
#include "gate/recheck.h"
#include "gate/relay.h"
#include "gate/repair.h"
#include "gate/store.h"
#include "net/periodic.h"
#include "net/redis.h"
#include "twilio/api.h"
#include "vapi/api.h"

/* An early ask of Vapi after a Twilio end (endprobe.h) was answered. */
static void on_probe_answer(void *owner, const char *vapi_id, const struct cg_vapi_get_result *res)
{
    struct cg_gate *g = owner;
    gate_note_api(g, GATE_API_VAPI, res->http_status);
    if (res->state == CG_VAPI_CALL_ENDED && !g->closing)
        gate_end(g, "vapi", vapi_id, res->ended_reason ? res->ended_reason : "ended", "vapi-get",
                 NULL, NULL);
}

/* The slots agree with Vapi again: admit into what is free, and adopt the
 * waiting callers Redis lost from Twilio's queue. */
static void on_repaired(long callers, long orphans, void *arg)
{
    struct cg_gate *g = arg;
    (void)callers;
    (void)orphans;
    gate_admit(g);
    cg_periodic_kick(g->reconcile_task);
}

/* The routes published again (routes.h): a Redis that lost them, or an
 * instance that started with another file, is set right within 10 s. */
static void routes_tick(void *arg)
{
    struct cg_gate *g = arg;
    if (!g->stopping && !g->closing && gate_redis_ready(g))
        gate_routes_publish(&g->store, g->cfg);
}

void cg_gate_redis_state(struct cg_gate *g, enum cg_redis_state state)
{
    if (state != CG_REDIS_READY || g->stopping || g->closing)
        return;
    /* Back from an outage: callers may have arrived meanwhile (answered
     * with Enqueue and no record) and slots may have freed. */
    gate_claim_check(g->claim);
    for (size_t i = 0; g->route_claims != NULL && i < g->cfg->routes.n; i++)
        gate_claim_check(g->route_claims[i]);
    gate_routes_publish(&g->store, g->cfg);
    cg_periodic_kick(g->sweep_task);
    cg_periodic_kick(g->reconcile_task);
    gate_callback_window_kick(g->callback_window);
    gate_repair_redis_ready(g->repair);
    gate_instances_kick(g->instances);
}

void cg_gate_stop(struct cg_gate *g)
{
    g->stopping = 1;
    /* Out of the registry at once: its limit no longer counts. */
    gate_instances_leave(g->instances);
}

void cg_gate_detach(struct cg_gate *g)
{
    g->stopping = 1;
    g->closing = 1;
    gate_probes_stop(g->probes);
    gate_callback_window_free(g->callback_window);
    g->callback_window = NULL;
    gate_store_close(&g->store);
}

size_t cg_gate_inflight(const struct cg_gate *g)
{
    return g->nadmissions + g->checks + gate_probes_asking(g->probes) +
           gate_instances_busy(g->instances);
}

static void declare_metrics(struct cg_metrics *m)
{
    static const double wait_buckets[] = {1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600};
    static const double refill_buckets[] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,  0.5,   1,    2.5,   5};
    cg_metrics_declare(m, "callgate_callers_total", CG_COUNTER,
                       "Callers by outcome, as seen by this instance.", NULL, 0);
    cg_metrics_declare(m, "callgate_admissions_total", CG_COUNTER,
                       "Admission attempts started by this instance.", NULL, 0);
    cg_metrics_declare(m, "callgate_requeues_total", CG_COUNTER,
                       "Failed admission attempts, by what became of the caller.", NULL, 0);
    cg_metrics_declare(m, "callgate_releases_total", CG_COUNTER,
                       "Slots released, by the signal that released them.", NULL, 0);
    cg_metrics_declare(m, "callgate_twilio_errors_total", CG_COUNTER,
                       "Twilio API errors, by Twilio error code or HTTP status.", NULL, 0);
    cg_metrics_declare(m, "callgate_vapi_errors_total", CG_COUNTER,
                       "Vapi API errors, by HTTP status.", NULL, 0);
    cg_metrics_declare(m, "callgate_wait_seconds", CG_HISTOGRAM,
                       "Time from entering the queue to being connected.", wait_buckets,
                       sizeof wait_buckets / sizeof wait_buckets[0]);
    cg_metrics_declare(m, "callgate_refill_latency_seconds", CG_HISTOGRAM,
                       "Time from a slot's release to the next caller's connection.",
                       refill_buckets, sizeof refill_buckets / sizeof refill_buckets[0]);
    /* The figures cg_gate_collect_metrics() sets at each scrape. */
    cg_metrics_declare(m, "callgate_waiting", CG_GAUGE, "Callers waiting now.", NULL, 0);
    cg_metrics_declare(m, "callgate_active", CG_GAUGE,
                       "Slots held now (callers being admitted or connected, and Vapi "
                       "calls that never got a caller).",
                       NULL, 0);
    cg_metrics_declare(m, "callgate_limit", CG_GAUGE,
                       "Concurrency limit (runtime value, else MAX_CONCURRENCY).", NULL, 0);
    cg_metrics_declare(m, "callgate_effective_limit", CG_GAUGE,
                       "Limit admission obeys now (lowered after Vapi over-limit answers).", NULL,
                       0);
    cg_metrics_declare(m, "callgate_redis_up", CG_GAUGE, "1 when Redis answered this scrape.", NULL,
                       0);
    cg_metrics_declare(m, "callgate_admissions_in_flight", CG_GAUGE,
                       "Admissions this instance is working on.", NULL, 0);
    cg_metrics_declare(m, "callgate_oldest_waiting_seconds", CG_GAUGE,
                       "How long the longest-waiting caller has waited (0: nobody waits).", NULL,
                       0);
    cg_metrics_declare(m, "callgate_gate_events", CG_GAUGE,
                       "Gate-wide event counts kept in Redis (all instances).", NULL, 0);
}

/* Routes (ROUTES_FILE), one series per route; declared only with routes,
 * so a gate of one route shows the families it always did. */
static void declare_route_metrics(struct cg_metrics *m)
{
    cg_metrics_declare(m, "callgate_route_waiting", CG_GAUGE,
                       "Callers and outbound calls waiting in the route's line.", NULL, 0);
    cg_metrics_declare(m, "callgate_route_active", CG_GAUGE, "Slots the route holds now.", NULL, 0);
    cg_metrics_declare(m, "callgate_route_cap", CG_GAUGE, "The route's max.", NULL, 0);
    cg_metrics_declare(m, "callgate_route_min", CG_GAUGE,
                       "Slots kept for the route while it has callers waiting.", NULL, 0);
    cg_metrics_declare(m, "callgate_route_events", CG_GAUGE,
                       "Per-route event counts kept in Redis (refused: leases and outbound "
                       "calls refused; overflowed: callers turned away).",
                       NULL, 0);
}

/* ---- the gate's figures for /metrics ---- */

struct collect {
    struct cg_gate *g;
    void (*done)(void *arg);
    void *arg;
};

static void route_gauge(struct cg_metrics *m, const char *name, const char *route, double v)
{
    struct cg_buf l;
    cg_buf_init(&l, 256);
    cg_metrics_label(&l, "route", route);
    cg_metrics_set(m, name, cg_buf_str(&l), v);
    cg_buf_free(&l);
}

static void on_route_figures(const struct gate_route_fig *v, size_t n, int ok, void *arg)
{
    struct collect *co = arg;
    struct cg_metrics *m = co->g->metrics;
    for (size_t i = 0; ok && i < n; i++) {
        route_gauge(m, "callgate_route_waiting", v[i].name, (double)v[i].waiting);
        route_gauge(m, "callgate_route_active", v[i].name, (double)v[i].active);
        route_gauge(m, "callgate_route_cap", v[i].name, (double)v[i].max);
        route_gauge(m, "callgate_route_min", v[i].name, (double)v[i].min);
        for (size_t k = 0; k < GATE_ROUTE_EVENTS; k++) {
            struct cg_buf l;
            cg_buf_init(&l, 256);
            cg_metrics_label(&l, "route", v[i].name);
            cg_buf_appendc(&l, ',');
            cg_metrics_label(&l, "event", gate_route_event_names[k]);
            cg_metrics_set(m, "callgate_route_events", cg_buf_str(&l), (double)v[i].events[k]);
            cg_buf_free(&l);
        }
    }
    co->done(co->arg);
    free(co);
}

static void on_collected(const struct gate_reply *rep, void *arg)
{
    struct collect *co = arg;
    struct cg_metrics *m = co->g->metrics;
    const redisReply *r = rep->r;
    if (rep->err != NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 6) {
        cg_metrics_set(m, "callgate_redis_up", NULL, 0);
    } else {
        long long active = cg_redis_reply_int(r, 0, 0), waiting = cg_redis_reply_int(r, 1, 0);
        long long limit = cg_redis_reply_int(r, 2, co->g->cfg->max_concurrency);
        long long eff = cg_redis_reply_int(r, 3, limit);
        cg_metrics_set(m, "callgate_waiting", NULL, (double)waiting);
        cg_metrics_set(m, "callgate_active", NULL, (double)active);
        cg_metrics_set(m, "callgate_limit", NULL, (double)limit);
        cg_metrics_set(m, "callgate_effective_limit", NULL, (double)eff);
        cg_metrics_set(m, "callgate_redis_up", NULL, 1);
        gate_instances_set_metrics(co->g->instances);
        cg_metrics_set(m, "callgate_admissions_in_flight", NULL, (double)co->g->nadmissions);
        cg_metrics_set(m, "callgate_oldest_waiting_seconds", NULL,
                       (double)cg_redis_reply_int(r, 5, 0) / 1000.0);
        /* The shared counters kept in Redis, for every instance at once. */
        for (size_t i = 6; i + 1 < r->elements; i += 2) {
            const char *field = cg_redis_reply_str(r, i);
            const char *value = cg_redis_reply_str(r, i + 1);
            /* The smoothed means (service_ms_ewma, admit_ms_ewma) are the
             * wait estimate's inputs, not event counts. */
            size_t flen = field ? strlen(field) : 0;
            if (field == NULL || value == NULL ||
                (flen > 5 && strcmp(field + flen - 5, "_ewma") == 0))
                continue;
            struct cg_buf l;
            cg_buf_init(&l, 256);
            cg_metrics_label(&l, "event", field);
            cg_metrics_set(m, "callgate_gate_events", cg_buf_str(&l), strtod(value, NULL));
            cg_buf_free(&l);
        }
    }
    if (co->g->cfg->routes.n > 0 && rep->err == NULL &&
        gate_route_figures(co->g, on_route_figures, co) == 0)
        return;
    co->done(co->arg);
    free(co);
}

void cg_gate_collect_metrics(struct cg_gate *g, void (*done)(void *arg), void *arg)
{
    if (g->metrics == NULL) {
        done(arg);
        return;
    }
    struct collect *co = cg_calloc(1, sizeof *co);
    co->g = g;
    co->done = done;
    co->arg = arg;
    if (gate_store_snapshot(&g->store, g->cfg->max_concurrency, on_collected, co) != 0)
        on_collected(&(struct gate_reply){.err = "eval refused"}, co);
}

/* How often each instance refreshes cg:{g}:cbwin (callback_window.h). */
#define CALLBACK_WINDOW_INTERVAL_MS 10000

/* Callbacks on (CALLBACK_OFFER_SECONDS > 0): the dialer and the window's
 * publisher. 0, or -1 with err. */
static int callbacks_new(struct cg_gate *g, char *err, size_t errlen)
{
    const struct cg_config *c = g->cfg;
    if (c->callback_offer_seconds <= 0)
        return 0;
    struct gate_callback_hours h;
    int set = gate_callback_hours_of(c, &h);
    if (set < 0) {
        cg_err_set(err, errlen, "CALLBACK_HOURS does not parse (run callgate check-config)");
        return -1;
    }
    if (set == 1) {
        g->callback_hours = cg_calloc(1, sizeof *g->callback_hours);
        *g->callback_hours = h;
    }
    struct gate_callback_dialer *d = cg_calloc(1, sizeof *d);
    d->store = &g->store;
    d->twilio = g->twilio;
    d->public_url = c->public_url;
    d->ring_s = c->callback_ring_seconds;
    d->machine_detection = 1;
    d->limit = c->max_concurrency;
    d->batch = 64;
    d->lease_ms = (long long)c->admission_lease_seconds * 1000;
    d->instance = c->instance_id;
    g->callback_dialer = d;
    g->callback_window = gate_callback_window_new(g->base, g->redis, g->keys, g->callback_hours,
                                                  CALLBACK_WINDOW_INTERVAL_MS);
    if (g->callback_window == NULL) {
        cg_err_set(err, errlen, "cannot create the callback window's timer");
        return -1;
    }
    return 0;
}

struct cg_gate *cg_gate_new(const struct cg_gate_deps *d, char *err, size_t errlen)
{
    struct cg_gate *g = cg_calloc(1, sizeof *g);
    g->base = d->base;
    g->cfg = d->cfg;
    g->keys = d->keys;
    g->redis = d->redis;
    g->metrics = d->metrics;
    cg_list_init(&g->rechecks);
    if (gate_engine_init(g) != 0) {
        cg_err_set(err, errlen, "cannot create the gate's timers");
        goto fail;
    }
    const struct cg_config *c = d->cfg;
    if (gate_store_init(&g->store, d->redis, d->keys, err, errlen) != 0)
        goto fail;

    struct cg_twilio_opts to = {
        .base_url = c->twilio_api_base_url,
        .account_sid = c->twilio_account_sid,
        .auth_token = c->twilio_auth_token,
        .timeout_ms = c->twilio_timeout_ms,
    };
    struct cg_vapi_opts vo = {
        .base_url = c->vapi_base_url,
        .api_key = c->vapi_api_key,
        .phone_number_id = c->vapi_phone_number_id,
        .assistant_id = c->vapi_assistant_id,
        .max_duration_s = c->vapi_max_duration_seconds,
        .timeout_ms = c->vapi_timeout_ms,
        .gate = c->gate_name,
        .server_messages = cg_config_server_messages(c),
    };
    g->twilio = cg_twilio_new(d->base, d->httpc, &to);
    /* The assistant's TwiML is not pushed again after a timeout or a
     * connection lost mid-request. Twilio may have applied the first (the
     * TwiML would restart: the stream the first opened closes and Vapi ends
     * its call), and a retry sent into an outage lands only once it is
     * over, after Vapi stopped waiting for the stream: either way the caller
     * is connected to a call that is gone, and hangs up. Such a push instead
     * requeues the caller with the Vapi call held as an orphan, and the next
     * attempt brings a fresh Vapi call. (429 and 5xx, answered at once, are
     * retried as before.) */
    struct cg_twilio_opts po = to;
    po.no_transport_retry = 1;
    g->twilio_push = cg_twilio_new(d->base, d->httpc, &po);
    /* With ROUTES_FILE each call names its route's assistant and number;
     * the first route's stand in where the environment names none. */
    if (c->routes.n > 0 && (vo.phone_number_id == NULL || vo.phone_number_id[0] == '\0'))
        vo.phone_number_id = c->routes.v[0].phone_number_id;
    if (c->routes.n > 0 && (vo.assistant_id == NULL || vo.assistant_id[0] == '\0'))
        vo.assistant_id = c->routes.v[0].assistant_id;
    g->vapi = cg_vapi_new(d->httpc, &vo);
    struct gate_relay_opts ro = {.httpc = d->httpc,
                                 .metrics = d->metrics,
                                 .url = c->vapi_forward_url,
                                 .timeout_ms = c->vapi_forward_timeout_ms,
                                 .instance = c->instance_id};
    g->relay = gate_relay_new(&ro);
    g->probes = gate_probes_new(d->base, g->vapi, g->metrics, on_probe_answer, g);
    if (g->twilio == NULL || g->twilio_push == NULL || g->vapi == NULL || g->relay == NULL) {
        cg_err_set(err, errlen, "cannot create the Twilio and Vapi clients");
        goto fail;
    }
    if (c->twilio_queue_sid[0] != '\0')
        g->queue_sid = cg_strdup(c->twilio_queue_sid);
    if (c->routes.n > 0)
        g->route_queue_sids = cg_calloc(c->routes.n, sizeof *g->route_queue_sids);
    if (g->metrics)
        declare_metrics(g->metrics);
    if (g->metrics && c->routes.n > 0)
        declare_route_metrics(g->metrics);

    g->sweep_task = cg_periodic_new(d->base, "sweep", c->sweep_interval_ms, 10, gate_sweep_tick, g);
    g->reconcile_task = cg_periodic_new(d->base, "reconcile", c->reconcile_interval_seconds * 1000,
                                        10, gate_reconcile_tick, g);
    g->routes_task = cg_periodic_new(d->base, "routes", 10000, 10, routes_tick, g);
    /* With routes, the routes' queues are the gate's, not TWILIO_QUEUE_NAME. */
    if (d->on_conflict != NULL && c->routes.n == 0)
        g->claim = gate_claim_new(d->base, &g->store, c, d->on_conflict, d->conflict_arg);
    /* With routes, each route's queue is claimed too: another gate taking
     * one of them would adopt this gate's callers. */
    int claims_ok = 1;
    if (d->on_conflict != NULL && c->routes.n > 0) {
        g->route_claims = cg_calloc(c->routes.n, sizeof *g->route_claims);
        for (size_t i = 0; i < c->routes.n; i++) {
            g->route_claims[i] = gate_claim_new_queue(d->base, &g->store, c, c->routes.v[i].queue,
                                                      d->on_conflict, d->conflict_arg);
            claims_ok &= g->route_claims[i] != NULL;
        }
    }
    g->repair = gate_repair_new(d->base, &g->store, g->vapi, c, g->metrics, on_repaired, g);
    g->instances = gate_instances_new(g);
    if (g->instances != NULL)
        gate_instances_declare_metrics(g->instances);
    if (g->sweep_task == NULL || g->reconcile_task == NULL || g->routes_task == NULL ||
        g->repair == NULL || g->instances == NULL ||
        (d->on_conflict != NULL && c->routes.n == 0 && g->claim == NULL) || !claims_ok) {
        cg_err_set(err, errlen, "cannot create the gate's timers");
        goto fail;
    }
    if (callbacks_new(g, err, errlen) != 0)
        goto fail;
    return g;
fail:
    cg_gate_free(g);
    return NULL;
}

void cg_gate_free(struct cg_gate *g)
{
    if (g == NULL)
        return;
    cg_gate_detach(g);
    /* Cancelling the clients completes every admission's pending request
     * (with CANCELLED), which frees the admission (and a repair's list). */
    gate_repair_free(g->repair);
    g->repair = NULL;
    gate_recheck_cancel_all(g);
    cg_vapi_free(g->vapi);
    g->vapi = NULL;
    gate_relay_free(g->relay);
    g->relay = NULL;
    /* After the client: a GET it cancelled has ended its probe. */
    gate_probes_free(g->probes);
    g->probes = NULL;
    cg_twilio_free(g->twilio);
    g->twilio = NULL;
    cg_twilio_free(g->twilio_push);
    g->twilio_push = NULL;
    gate_engine_free(g);
    cg_periodic_free(g->sweep_task);
    cg_periodic_free(g->reconcile_task);
    cg_periodic_free(g->routes_task);
    gate_claim_free(g->claim);
    gate_instances_free(g->instances);
    free(g->callback_dialer);
    free(g->callback_hours);
    for (size_t i = 0; g->route_claims != NULL && i < g->cfg->routes.n; i++)
        gate_claim_free(g->route_claims[i]);
    free(g->route_claims);
    free(g->queue_sid);
    for (size_t i = 0; g->route_queue_sids != NULL && i < g->cfg->routes.n; i++)
        free(g->route_queue_sids[i]);
    free(g->route_queue_sids);
    free(g);
}
