/*
 * dialer.c - the dialer client of callgate's admin API (see dialer.h). The
 * schedule is drawn up front; one timer per stream (outbound, slots) is
 * re-armed for the next request, one poll timer serves every open outbound
 * call, and each leased slot has a timer for its renewal and its end.
 */
#include "base/fmacros.h"

#include "dialer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/json.h"
#include "base/log.h"
#include "net/httpc.h"
#include "rcheck.h"
#include "report.h"
#include "rng.h"
#include "scenario.h"
#include "scenario_routes.h"
#include "sim.h"
#include "vapi.h"

#define MAX_GATES  16
#define DETAIL_LEN 256
#define TIMEOUT_MS 10000
#define MAX_ID     128
#define MAX_STATUS 32

struct ocall {
    struct sim_dialer *d;
    char number[20];
    char id[MAX_ID];
    int accepted, closed, polling;
    int vapi_ended_seen; /* the Vapi call had ended when the last poll went out */
    char status[MAX_STATUS];
    long polls;
};

/* SL_EXPIRING: the web call is over, the lease (never released) runs on. */
enum slot_phase { SL_ASKING, SL_HELD, SL_RENEWING, SL_EXPIRING, SL_ENDED };

struct slot {
    struct sim_dialer *d;
    char id[MAX_ID];
    enum slot_phase phase;
    int web;     /* the web call runs */
    int expire;  /* never released: the lease runs out */
    int renew;   /* renewed half way */
    int renewed; /* the renewal went out */
    int leased;  /* the lease counts for the route checker */
    double hold_s;
    double lease_from; /* when the request that set its expiry went out (scenario s) */
    double renew_sent; /* when the renewal went out */
    struct event *ev;
};

struct stream {
    double *at;
    size_t n, next;
    struct event *ev;
};

struct sim_dialer {
    struct sim_world *w;
    const struct sim_dialer_cfg *cfg;
    char *gates[MAX_GATES];
    size_t ngates, rr;
    struct sim_rng *rng;
    struct stream out, sl;
    struct event *poll_ev;
    struct ocall **oc;
    size_t noc;
    struct slot **slots;
    size_t nslots;
    size_t inflight; /* requests other than polls */
    int stopped;
    long out_accepted, out_refused, out_errors, polls, poll_errors;
    long sl_granted, sl_refused, sl_errors, sl_released, sl_expired, sl_renewed, web_refused;
    long api_failures;
    char api_first[DETAIL_LEN];
};

__attribute__((format(printf, 2, 3))) static void api_fail(struct sim_dialer *d, const char *fmt,
                                                           ...)
{
    if (d->api_failures++ > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->api_first, sizeof d->api_first, fmt, ap);
    va_end(ap);
}

static void count(struct sim_dialer *d, const char *name)
{
    if (d->w->report)
        sim_report_count(d->w->report, name);
}

static void arm(struct event *ev, double seconds)
{
    if (!(seconds > 0))
        seconds = 0;
    long long us = (long long)(seconds * 1e6);
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
    if (evtimer_add(ev, &tv) != 0)
        cg_log_error("sim dialer timer failed", "");
}

static const char *gate(struct sim_dialer *d)
{
    return d->gates[d->rr++ % d->ngates];
}

static const char *route_name(const struct sim_dialer *d, int route)
{
    return d->w->sc->routes->r[route].name;
}

static int api_send(struct sim_dialer *d, const char *method, const char *url, const char *body,
                    cg_httpc_cb cb, void *arg)
{
    struct cg_httpc_request req = {.method = method,
                                   .url = url,
                                   .body = body,
                                   .body_len = body ? strlen(body) : 0,
                                   .content_type = body ? "application/json" : NULL,
                                   .bearer = d->cfg->admin_token,
                                   .timeout_ms = TIMEOUT_MS};
    return cg_httpc_send(d->w->httpc, &req, cb, arg);
}

static void schedule(struct sim_dialer *d, struct stream *s, double rate, double until)
{
    double t = 0;
    size_t cap = 0;
    while (rate > 0) {
        t += sim_rng_exp(d->rng, 1.0 / rate);
        if (t >= until)
            break;
        if (s->n == cap) {
            cap = cap ? cap * 2 : 64;
            s->at = cg_realloc(s->at, cap * sizeof(double));
        }
        s->at[s->n++] = t;
    }
}

static void arm_next(struct sim_dialer *d, struct stream *s)
{
    if (s->next < s->n && !d->stopped)
        arm(s->ev, s->at[s->next] - sim_now_s(d->w));
}

static int terminal(const char *status)
{
    static const char *const fin[] = {"ended", "completed", "failed",  "canceled", "cancelled",
                                      "busy",  "no-answer", "expired", "rejected", NULL};
    for (size_t i = 0; fin[i]; i++)
        if (strcmp(status, fin[i]) == 0)
            return 1;
    return 0;
}

/* ---- outbound calls ---- */

static void on_poll_reply(const struct cg_httpc_result *res, void *arg)
{
    struct ocall *o = arg;
    struct sim_dialer *d = o->d;
    o->polling = 0;
    if (d->stopped || o->closed)
        return;
    d->polls++;
    if (res->error || res->status != 200) {
        d->poll_errors++;
        if (res->error)
            api_fail(d, "GET /calls/outbound/%s: %s", o->id, res->error);
        else
            api_fail(d, "GET /calls/outbound/%s answered %ld", o->id, res->status);
        return;
    }
    char err[128];
    json_t *j = cg_json_parse(res->body, res->body_len, CG_JSON_MAX_DEPTH, err, sizeof err);
    const char *id = j ? cg_json_str(j, "id") : NULL;
    /* callgate names it "state"; "status" is read too. */
    const char *st = j ? cg_json_str(j, "state") : NULL;
    if (!st && j)
        st = cg_json_str(j, "status");
    if (!json_is_object(j) || (id && strcmp(id, o->id) != 0))
        api_fail(d, "GET /calls/outbound/%s: not the call's JSON object: %.80s", o->id, res->body);
    if (st)
        snprintf(o->status, sizeof o->status, "%s", st);
    json_decref(j);
    if ((st && terminal(o->status)) || o->vapi_ended_seen)
        o->closed = 1;
}

static void poll_one(struct sim_dialer *d, struct ocall *o)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/calls/outbound/%s", gate(d), o->id);
    o->vapi_ended_seen = sim_vapi_outbound_state(d->w, o->number) == 2;
    if (api_send(d, "GET", url, NULL, on_poll_reply, o) == 0) {
        o->polling = 1;
        o->polls++;
    }
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_dialer *d = arg;
    if (d->stopped)
        return;
    for (size_t i = 0; i < d->noc; i++) {
        struct ocall *o = d->oc[i];
        if (o->accepted && !o->closed && !o->polling)
            poll_one(d, o);
    }
    arm(d->poll_ev, d->cfg->poll_s);
}

static void on_outbound_reply(const struct cg_httpc_result *res, void *arg)
{
    struct ocall *o = arg;
    struct sim_dialer *d = o->d;
    d->inflight--;
    if (d->stopped)
        return;
    if (res->error) {
        d->out_errors++;
        api_fail(d, "POST /calls/outbound: %s", res->error);
        o->closed = 1;
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "dialer.outbound.http_%ld", res->status);
    count(d, name);
    if (res->status != 202) {
        /* A full line may refuse; anything else is a broken API. */
        o->closed = 1;
        if (res->status == 429 || res->status == 503) {
            d->out_refused++;
            return;
        }
        d->out_errors++;
        api_fail(d, "POST /calls/outbound for %s answered %ld: %.100s", o->number, res->status,
                 res->body);
        return;
    }
    char err[128];
    json_t *j = cg_json_parse(res->body, res->body_len, CG_JSON_MAX_DEPTH, err, sizeof err);
    const char *id = j ? cg_json_str(j, "id") : NULL;
    long long pos = -1;
    if (!id || !id[0] || strlen(id) >= MAX_ID || cg_json_int(j, "position", &pos) != 0 || pos < 0) {
        d->out_errors++;
        o->closed = 1;
        api_fail(d, "POST /calls/outbound answered 202 without an id and a position: %.100s",
                 res->body);
        json_decref(j);
        return;
    }
    snprintf(o->id, sizeof o->id, "%s", id);
    json_decref(j);
    o->accepted = 1;
    d->out_accepted++;
}

static void on_outbound_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_dialer *d = arg;
    double now = sim_now_s(d->w);
    while (!d->stopped && d->out.next < d->out.n && d->out.at[d->out.next] <= now + 0.0005) {
        size_t k = d->out.next++;
        struct ocall *o = cg_calloc(1, sizeof(*o));
        o->d = d;
        snprintf(o->number, sizeof o->number, "+1777%07zu", k % 10000000u);
        d->oc = cg_realloc(d->oc, (d->noc + 1) * sizeof(*d->oc));
        d->oc[d->noc++] = o;
        json_t *b = json_object();
        json_object_set_new(b, "route", json_string(route_name(d, d->cfg->out_route)));
        json_object_set_new(b, "number", json_string(o->number));
        json_t *vars = json_object();
        json_object_set_new(vars, "campaign", json_string("sim"));
        json_object_set_new(vars, "n", json_integer((json_int_t)k));
        json_object_set_new(b, "variables", vars);
        char *body = cg_json_dumps(b);
        json_decref(b);
        char url[1024];
        snprintf(url, sizeof url, "%s/calls/outbound", gate(d));
        count(d, "dialer.outbound.requested");
        if (api_send(d, "POST", url, body, on_outbound_reply, o) == 0) {
            d->inflight++;
        } else {
            o->closed = 1;
            d->out_errors++;
            api_fail(d, "cannot send POST %s", url);
        }
        free(body);
    }
    arm_next(d, &d->out);
}

/* ---- leased slots ---- */

static void slot_step(struct slot *s);

/* The lease ends for the route checker: when its release goes out, or at
 * the expiry counted from when the request that set it went out. Both are
 * no later than callgate frees it, so the checker never counts a lease
 * callgate no longer does. */
static void lease_end(struct slot *s)
{
    struct sim_dialer *d = s->d;
    if (!s->leased)
        return;
    s->leased = 0;
    if (d->w->rcheck)
        sim_rcheck_ended(d->w->rcheck, sim_now_s(d->w), d->cfg->slot_route, SIM_RK_SLOT);
}

static void on_slot_delete(const struct cg_httpc_result *res, void *arg)
{
    struct slot *s = arg;
    struct sim_dialer *d = s->d;
    d->inflight--;
    if (d->stopped)
        return;
    if (res->status == 204) {
        d->sl_released++;
    } else {
        d->sl_errors++;
        api_fail(d, "DELETE /slots/%s answered %ld%s%s", s->id, res->status, res->error ? ": " : "",
                 res->error ? res->error : "");
    }
}

static void on_slot_renew(const struct cg_httpc_result *res, void *arg)
{
    struct slot *s = arg;
    struct sim_dialer *d = s->d;
    d->inflight--;
    if (d->stopped)
        return;
    if (res->status >= 200 && res->status < 300) {
        d->sl_renewed++;
        s->lease_from = s->renew_sent;
    } else {
        d->sl_errors++;
        api_fail(d, "POST /slots/%s/renew answered %ld%s%s", s->id, res->status,
                 res->error ? ": " : "", res->error ? res->error : "");
    }
    if (s->phase == SL_RENEWING)
        s->phase = SL_HELD;
}

/* The slot's timer: the renewal half way, then the end of the web call. */
static void on_slot_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slot_step(arg);
}

static void slot_step(struct slot *s)
{
    struct sim_dialer *d = s->d;
    if (d->stopped || s->phase == SL_ENDED)
        return;
    if (s->phase == SL_EXPIRING) {
        lease_end(s);
        s->phase = SL_ENDED;
        d->sl_expired++;
        return;
    }
    char url[1024];
    if (s->renew && !s->renewed) {
        s->renewed = 1;
        s->phase = SL_RENEWING;
        s->renew_sent = sim_now_s(d->w);
        snprintf(url, sizeof url, "%s/slots/%s/renew", gate(d), s->id);
        if (api_send(d, "POST", url, NULL, on_slot_renew, s) == 0)
            d->inflight++;
        arm(s->ev, s->hold_s / 2);
        return;
    }
    if (s->web) {
        s->web = 0;
        sim_vapi_web_end(d->w, d->cfg->slot_route);
    }
    if (s->expire) {
        s->phase = SL_EXPIRING;
        arm(s->ev, s->lease_from + d->cfg->slot_ttl_s - sim_now_s(d->w));
        return;
    }
    s->phase = SL_ENDED;
    lease_end(s);
    snprintf(url, sizeof url, "%s/slots/%s", gate(d), s->id);
    if (api_send(d, "DELETE", url, NULL, on_slot_delete, s) == 0)
        d->inflight++;
}

static void on_slot_reply(const struct cg_httpc_result *res, void *arg)
{
    struct slot *s = arg;
    struct sim_dialer *d = s->d;
    d->inflight--;
    if (d->stopped)
        return;
    s->phase = SL_ENDED;
    if (res->error) {
        d->sl_errors++;
        api_fail(d, "POST /slots: %s", res->error);
        return;
    }
    if (res->status == 429) {
        d->sl_refused++;
        if (res->retry_after_s < 0)
            api_fail(d, "POST /slots answered 429 without Retry-After");
        return;
    }
    char err[128];
    json_t *j = res->status == 201
                    ? cg_json_parse(res->body, res->body_len, CG_JSON_MAX_DEPTH, err, sizeof err)
                    : NULL;
    const char *id = j ? cg_json_str(j, "id") : NULL;
    if (!id || !id[0] || strlen(id) >= MAX_ID || !json_is_string(json_object_get(j, "expiresAt"))) {
        d->sl_errors++;
        api_fail(d, "POST /slots answered %ld (201 with id and expiresAt expected): %.100s",
                 res->status, res->body);
        json_decref(j);
        return;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    json_decref(j);
    d->sl_granted++;
    s->leased = 1;
    if (d->w->rcheck)
        sim_rcheck_started(d->w->rcheck, sim_now_s(d->w), d->cfg->slot_route, SIM_RK_SLOT, NULL,
                           NULL);
    /* The holder's web call starts now and counts at Vapi. */
    if (sim_vapi_web_start(d->w, d->cfg->slot_route) == 0)
        s->web = 1;
    else
        d->web_refused++;
    s->phase = SL_HELD;
    arm(s->ev, s->renew ? s->hold_s / 2 : s->hold_s);
}

static void on_slots_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_dialer *d = arg;
    double now = sim_now_s(d->w);
    const struct sim_dialer_cfg *cfg = d->cfg;
    while (!d->stopped && d->sl.next < d->sl.n && d->sl.at[d->sl.next] <= now + 0.0005) {
        d->sl.next++;
        struct slot *s = cg_calloc(1, sizeof(*s));
        s->d = d;
        s->expire = sim_rng_chance(d->rng, cfg->expire_share);
        s->renew = sim_rng_chance(d->rng, cfg->renew_share);
        s->hold_s = cfg->hold_min_s + (cfg->hold_max_s - cfg->hold_min_s) * sim_rng_unit(d->rng);
        s->lease_from = now;
        s->ev = evtimer_new(d->w->base, on_slot_timer, s);
        d->slots = cg_realloc(d->slots, (d->nslots + 1) * sizeof(*d->slots));
        d->slots[d->nslots++] = s;
        char body[300], url[1024];
        snprintf(body, sizeof body, "{\"route\":\"%s\",\"ttlSeconds\":%ld}",
                 route_name(d, cfg->slot_route), (long)cfg->slot_ttl_s);
        snprintf(url, sizeof url, "%s/slots", gate(d));
        count(d, "dialer.slots.requested");
        if (!s->ev || api_send(d, "POST", url, body, on_slot_reply, s) != 0) {
            s->phase = SL_ENDED;
            d->sl_errors++;
            api_fail(d, "cannot send POST %s", url);
        } else {
            d->inflight++;
        }
    }
    arm_next(d, &d->sl);
}

/* ---- life cycle ---- */

struct sim_dialer *sim_dialer_new(struct sim_world *w, const char *const *gates, size_t ngates)
{
    const struct sim_routes_cfg *rs = w->sc->routes;
    if (!rs || !rs->has_dialer || ngates == 0)
        return NULL;
    struct sim_dialer *d = cg_calloc(1, sizeof(*d));
    d->w = w;
    d->cfg = &rs->dialer;
    for (size_t i = 0; i < ngates && i < MAX_GATES; i++)
        d->gates[d->ngates++] = cg_strdup(gates[i]);
    d->rng = sim_rng_new(w->sc->seed ^ 0xd1a1ULL);
    if (d->cfg->out_route >= 0)
        schedule(d, &d->out, d->cfg->out_rate_per_s, d->cfg->out_until_s);
    if (d->cfg->slot_route >= 0)
        schedule(d, &d->sl, d->cfg->slot_rate_per_s, d->cfg->slot_until_s);
    d->out.ev = evtimer_new(w->base, on_outbound_timer, d);
    d->sl.ev = evtimer_new(w->base, on_slots_timer, d);
    d->poll_ev = evtimer_new(w->base, on_poll_timer, d);
    if (!d->out.ev || !d->sl.ev || !d->poll_ev) {
        sim_dialer_free(d);
        return NULL;
    }
    return d;
}

int sim_dialer_start(struct sim_dialer *d)
{
    if (!d)
        return 0;
    arm_next(d, &d->out);
    arm_next(d, &d->sl);
    arm(d->poll_ev, d->cfg->poll_s);
    return 0;
}

int sim_dialer_done(const struct sim_dialer *d)
{
    if (!d)
        return 1;
    if (d->out.next < d->out.n || d->sl.next < d->sl.n || d->inflight > 0)
        return 0;
    for (size_t i = 0; i < d->nslots; i++)
        if (d->slots[i]->phase != SL_ENDED)
            return 0;
    for (size_t i = 0; i < d->noc; i++)
        if (!d->oc[i]->closed)
            return 0;
    return 1;
}

void sim_dialer_stop(struct sim_dialer *d)
{
    if (!d || d->stopped)
        return;
    d->stopped = 1;
    evtimer_del(d->out.ev);
    evtimer_del(d->sl.ev);
    evtimer_del(d->poll_ev);
    for (size_t i = 0; i < d->nslots; i++) {
        struct slot *s = d->slots[i];
        if (s->ev)
            evtimer_del(s->ev);
        if (s->web) {
            s->web = 0;
            sim_vapi_web_end(d->w, d->cfg->slot_route);
        }
        lease_end(s);
    }
}

void sim_dialer_free(struct sim_dialer *d)
{
    if (!d)
        return;
    d->stopped = 1;
    struct event *evs[] = {d->out.ev, d->sl.ev, d->poll_ev};
    for (size_t i = 0; i < 3; i++)
        if (evs[i])
            event_free(evs[i]);
    for (size_t i = 0; i < d->nslots; i++) {
        if (d->slots[i]->ev)
            event_free(d->slots[i]->ev);
        free(d->slots[i]);
    }
    for (size_t i = 0; i < d->noc; i++)
        free(d->oc[i]);
    for (size_t i = 0; i < d->ngates; i++)
        free(d->gates[i]);
    free(d->slots);
    free(d->oc);
    free(d->out.at);
    free(d->sl.at);
    sim_rng_free(d->rng);
    free(d);
}

static int inv_add(json_t *inv, const char *name, int ok, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "detail", json_string(detail));
    json_array_append_new(inv, o);
    if (!ok)
        fprintf(stderr, "callgate-sim: invariant failed: %s: %s\n", name, detail);
    return ok ? 0 : 1;
}

int sim_dialer_report(struct sim_dialer *d, json_t *root, json_t *inv)
{
    if (!d)
        return 0;
    long placed = 0, unplaced = 0, closed = 0;
    char first_unplaced[32] = "";
    json_t *statuses = json_object();
    for (size_t i = 0; i < d->noc; i++) {
        const struct ocall *o = d->oc[i];
        if (!o->accepted)
            continue;
        closed += o->closed;
        const char *st = o->status[0] ? o->status : "(none)";
        json_t *n = json_object_get(statuses, st);
        json_object_set_new(statuses, st, json_integer(n ? json_integer_value(n) + 1 : 1));
        if (sim_vapi_outbound_state(d->w, o->number) != 0) {
            placed++;
        } else if (unplaced++ == 0) {
            snprintf(first_unplaced, sizeof first_unplaced, "%s", o->number);
        }
    }
    json_t *j = json_object();
    json_t *out = json_object();
    json_object_set_new(out, "requested", json_integer((json_int_t)d->noc));
    json_object_set_new(out, "accepted", json_integer(d->out_accepted));
    json_object_set_new(out, "refused", json_integer(d->out_refused));
    json_object_set_new(out, "errors", json_integer(d->out_errors));
    json_object_set_new(out, "placed_at_vapi", json_integer(placed));
    json_object_set_new(out, "final_status_seen", json_integer(closed));
    json_object_set_new(out, "polls", json_integer(d->polls));
    json_object_set_new(out, "last_status", statuses);
    json_object_set_new(j, "outbound", out);
    json_t *sl = json_object();
    json_object_set_new(sl, "requested", json_integer((json_int_t)d->nslots));
    json_object_set_new(sl, "granted", json_integer(d->sl_granted));
    json_object_set_new(sl, "refused_429", json_integer(d->sl_refused));
    json_object_set_new(sl, "errors", json_integer(d->sl_errors));
    json_object_set_new(sl, "renewed", json_integer(d->sl_renewed));
    json_object_set_new(sl, "released", json_integer(d->sl_released));
    json_object_set_new(sl, "left_to_expire", json_integer(d->sl_expired));
    json_object_set_new(sl, "web_calls_refused_by_vapi", json_integer(d->web_refused));
    json_object_set_new(j, "slots", sl);
    json_object_set_new(root, "dialer", j);

    char detail[DETAIL_LEN + 64];
    int failed = 0;
    if (d->api_failures)
        snprintf(detail, sizeof detail, "%ld failure%s; first: %s", d->api_failures,
                 d->api_failures == 1 ? "" : "s", d->api_first);
    else
        snprintf(detail, sizeof detail,
                 "%ld outbound calls accepted, %ld refused; %ld slots granted, %ld refused",
                 d->out_accepted, d->out_refused, d->sl_granted, d->sl_refused);
    failed += inv_add(inv, "dialer_api", d->api_failures == 0, detail);
    snprintf(detail, sizeof detail, "%ld of %ld accepted outbound calls placed at Vapi%s%s", placed,
             d->out_accepted, unplaced ? "; never placed: " : "", first_unplaced);
    failed += inv_add(inv, "dialer_outbound_placed", unplaced == 0, detail);
    return failed;
}
