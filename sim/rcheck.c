/*
 * rcheck.c - route truth and invariants (see rcheck.h). State changes only
 * at events, so every duration condition (below the min while the
 * organization has room) is judged exactly by looking at the time elapsed
 * since it began, at each event and at the end.
 */
#include "base/fmacros.h"

#include "rcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "scenario.h"
#include "scenario_routes.h"

#define NBUCKETS   1024
#define DETAIL_LEN 256

struct rcaller {
    char sid[40];
    int route, vip, next; /* next: hash chain, -1 ends */
    int waiting, connected;
    /* arrived_s: when the caller dialed (its place in the route's line);
     * enq_t: when it last entered the Twilio queue; adm_t: its admission
     * (Vapi call created); left_t: when it last left the queue. */
    double arrived_s, enq_t, adm_t, left_t, waited_s; /* < 0: not (yet) */
};

/* One invariant's record: how often it failed and the first failure. */
struct verdict {
    long n;
    char first[DETAIL_LEN];
};

struct rroute {
    long live[SIM_RK_NKINDS];
    long live_total, peak, waiting;
    long started[SIM_RK_NKINDS], refused[SIM_RK_NKINDS];
    long callers, connected;
    double below_since; /* waiting and below min since; < 0: not */
    int starve_flagged; /* this episode already counted */
    double worst_starve_s;
};

struct sim_rcheck {
    const struct sim_routes_cfg *cfg;
    long limit, external;
    struct rroute r[SIM_MAX_ROUTES];
    long org_live, org_peak, unrouted_live, refused;
    double free_since; /* the organization has a free slot since; < 0: full */
    double last_t;     /* idle slots integrated up to here */
    double idle_s;     /* slot-seconds free while a caller who could use one waited */
    struct rcaller *c;
    size_t nc, cap;
    int buckets[NBUCKETS];
    long unrouted_callers;
    struct verdict org, max, min, fifo, out_after, pushed, placement;
};

__attribute__((format(printf, 2, 3))) static void note(struct verdict *v, const char *fmt, ...)
{
    if (v->n++ > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->first, sizeof v->first, fmt, ap);
    va_end(ap);
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

static struct rcaller *find(struct sim_rcheck *rc, const char *sid)
{
    if (!sid)
        return NULL;
    for (int i = rc->buckets[hash(sid)]; i >= 0; i = rc->c[i].next)
        if (strcmp(rc->c[i].sid, sid) == 0)
            return &rc->c[i];
    return NULL;
}

static const char *rname(const struct sim_rcheck *rc, int route)
{
    return route >= 0 ? rc->cfg->r[route].name : "(none)";
}

static long route_max(const struct sim_rcheck *rc, int route)
{
    int m = rc->cfg->r[route].max;
    return m > 0 ? m : rc->limit;
}

struct sim_rcheck *sim_rcheck_new(const struct sim_routes_cfg *cfg, int limit, int external)
{
    struct sim_rcheck *rc = cg_calloc(1, sizeof(*rc));
    rc->cfg = cfg;
    rc->limit = limit;
    rc->external = external;
    rc->org_live = rc->org_peak = external;
    rc->free_since = external < limit ? 0 : -1;
    for (size_t i = 0; i < NBUCKETS; i++)
        rc->buckets[i] = -1;
    for (size_t i = 0; i < SIM_MAX_ROUTES; i++)
        rc->r[i].below_since = -1;
    return rc;
}

void sim_rcheck_free(struct sim_rcheck *rc)
{
    if (!rc)
        return;
    free(rc->c);
    free(rc);
}

int sim_rcheck_route_of_number(const struct sim_rcheck *rc, const char *to)
{
    for (size_t i = 0; to && i < rc->cfg->n; i++)
        for (size_t k = 0; k < rc->cfg->r[i].nnumbers; k++)
            if (strcmp(rc->cfg->r[i].numbers[k], to) == 0)
                return (int)i;
    return -1;
}

int sim_rcheck_route_of_phone(const struct sim_rcheck *rc, const char *phone_number_id)
{
    for (size_t i = 0; phone_number_id && i < rc->cfg->n; i++)
        if (strcmp(rc->cfg->r[i].phone_number_id, phone_number_id) == 0)
            return (int)i;
    return -1;
}

long sim_rcheck_live(const struct sim_rcheck *rc, int route)
{
    return route < 0 ? rc->org_live : rc->r[route].live_total;
}

/* ---- the minimum guarantee, judged on elapsed time ---- */

/* Before the state changes at t: a route below its min with callers
 * waiting while the organization had room, for longer than the tolerance. */
static void advance(struct sim_rcheck *rc, double t)
{
    /* Idle slot-seconds: free slots that waiting callers of routes below
     * their max could have taken (state is constant between events). */
    if (t > rc->last_t) {
        long usable = 0;
        for (size_t i = 0; i < rc->cfg->n; i++) {
            long room = route_max(rc, (int)i) - rc->r[i].live_total;
            usable += room < rc->r[i].waiting ? (room > 0 ? room : 0) : rc->r[i].waiting;
        }
        long free_slots = rc->limit - rc->org_live;
        if (free_slots > 0 && usable > 0)
            rc->idle_s += (double)(usable < free_slots ? usable : free_slots) * (t - rc->last_t);
        rc->last_t = t;
    }
    if (rc->free_since < 0)
        return;
    for (size_t i = 0; i < rc->cfg->n; i++) {
        struct rroute *r = &rc->r[i];
        if (r->below_since < 0)
            continue;
        double since = r->below_since > rc->free_since ? r->below_since : rc->free_since;
        double d = t - since;
        if (d > rc->cfg->min_tolerance_s) {
            if (d > r->worst_starve_s)
                r->worst_starve_s = d;
            if (!r->starve_flagged) {
                r->starve_flagged = 1;
                note(&rc->min,
                     "route %s: %ld live of min %d with %ld waiting and a free slot in the "
                     "organization for %.3f s from t=%.3f",
                     rc->cfg->r[i].name, r->live_total, rc->cfg->r[i].min, r->waiting, d, since);
            }
        }
    }
}

/* After the state changed at t: when each condition began. */
static void settle(struct sim_rcheck *rc, double t)
{
    for (size_t i = 0; i < rc->cfg->n; i++) {
        struct rroute *r = &rc->r[i];
        int below = r->waiting > 0 && r->live_total < rc->cfg->r[i].min;
        if (below && r->below_since < 0) {
            r->below_since = t;
            r->starve_flagged = 0;
        } else if (!below) {
            r->below_since = -1;
        }
    }
    int room = rc->org_live < rc->limit;
    if (room && rc->free_since < 0) {
        rc->free_since = t;
        /* A new chance to be served: the episode starts over. */
        for (size_t i = 0; i < rc->cfg->n; i++)
            rc->r[i].starve_flagged = 0;
    } else if (!room) {
        rc->free_since = -1;
    }
}

/* ---- Twilio side ---- */

/* The caller's record, made at its first sight. */
static struct rcaller *caller(struct sim_rcheck *rc, const char *sid, const char *to,
                              const char *from, double arrived_s)
{
    struct rcaller *k = find(rc, sid);
    if (k)
        return k;
    int route = sim_rcheck_route_of_number(rc, to);
    if (rc->nc == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 256;
        rc->c = cg_realloc(rc->c, rc->cap * sizeof(*rc->c));
    }
    k = &rc->c[rc->nc];
    memset(k, 0, sizeof(*k));
    snprintf(k->sid, sizeof k->sid, "%s", sid);
    k->route = route;
    k->arrived_s = arrived_s;
    k->enq_t = k->adm_t = k->left_t = k->waited_s = -1;
    unsigned h = hash(k->sid);
    k->next = rc->buckets[h];
    rc->buckets[h] = (int)rc->nc;
    rc->nc++;
    if (route < 0) {
        rc->unrouted_callers++;
        note(&rc->placement, "caller %s dialed %s, which no route serves", sid, to ? to : "(none)");
        return k;
    }
    rc->r[route].callers++;
    const struct sim_route_cfg *rt = &rc->cfg->r[route];
    for (size_t i = 0; from && i < rt->nvip; i++)
        if (strcmp(rt->vip[i], from) == 0)
            k->vip = 1;
    return k;
}

void sim_rcheck_arrived(struct sim_rcheck *rc, double t, const char *sid, const char *to,
                        const char *from)
{
    if (sid)
        caller(rc, sid, to, from, t);
}

void sim_rcheck_enqueued(struct sim_rcheck *rc, double t, const char *sid, const char *to,
                         const char *from, const char *queue, double arrived_s)
{
    if (!sid)
        return;
    advance(rc, t);
    struct rcaller *k = caller(rc, sid, to, from, arrived_s);
    int route = k->route;
    if (route >= 0 && (!queue || strcmp(queue, rc->cfg->r[route].queue) != 0))
        note(&rc->placement, "caller %s of route %s waited in queue %s, not %s", sid,
             rname(rc, route), queue ? queue : "(none)", rc->cfg->r[route].queue);
    if (!k->waiting) {
        k->waiting = 1;
        k->enq_t = t;
        if (route >= 0)
            rc->r[route].waiting++;
    }
    settle(rc, t);
}

void sim_rcheck_dequeued(struct sim_rcheck *rc, double t, const char *sid)
{
    struct rcaller *k = find(rc, sid);
    if (!k || !k->waiting)
        return;
    advance(rc, t);
    k->waiting = 0;
    k->left_t = t;
    if (k->route >= 0)
        rc->r[k->route].waiting--;
    settle(rc, t);
}

void sim_rcheck_connected(struct sim_rcheck *rc, double t, const char *sid, double waited_s)
{
    struct rcaller *k = find(rc, sid);
    if (!k || k->connected)
        return;
    k->connected = 1;
    k->waited_s = waited_s < 0 ? 0 : waited_s;
    /* No Vapi call named this caller: its admission is when it left. */
    if (k->adm_t < 0)
        k->adm_t = k->left_t >= 0 ? k->left_t : t;
    if (k->route >= 0)
        rc->r[k->route].connected++;
}

/* ---- Vapi side ---- */

/* With its article, as the messages use it. */
static const char *kind_name(enum sim_rkind k)
{
    return k == SIM_RK_INBOUND ? "an inbound" : k == SIM_RK_OUTBOUND ? "an outbound" : "a slot";
}

void sim_rcheck_started(struct sim_rcheck *rc, double t, int route, enum sim_rkind kind,
                        const char *caller_sid, const char *assistant_id)
{
    advance(rc, t);
    struct rcaller *k = kind == SIM_RK_INBOUND ? find(rc, caller_sid) : NULL;
    if (k) {
        if (k->adm_t < 0)
            k->adm_t = t;
        if (route != k->route && k->route >= 0)
            note(&rc->placement, "caller %s of route %s reached the phone number of route %s",
                 k->sid, rname(rc, k->route), rname(rc, route));
        /* Counted where Vapi counts it, by its phone number (the call ends
         * there too); the caller's route judges the assistant. */
        int mine = k->route >= 0 ? k->route : route;
        if (mine >= 0 && (!assistant_id || strcmp(assistant_id, rc->cfg->r[mine].assistant_id)))
            note(&rc->placement, "caller %s of route %s reached assistant %s, not %s", k->sid,
                 rname(rc, mine), assistant_id ? assistant_id : "(none)",
                 rc->cfg->r[mine].assistant_id);
    }
    /* The slot goes to this route: fair only if no route below its min
     * with callers waiting has been so past the tolerance (unless this one
     * is below its min too). */
    int self_below = route >= 0 && rc->r[route].below_since >= 0;
    for (size_t i = 0; route >= 0 && !self_below && i < rc->cfg->n; i++) {
        const struct rroute *o = &rc->r[i];
        if ((int)i != route && o->below_since >= 0 && t - o->below_since > rc->cfg->min_tolerance_s)
            note(&rc->min,
                 "t=%.3f: %s call of route %s started while route %s had %ld waiting and "
                 "%ld live of min %d for %.3f s",
                 t, kind_name(kind), rname(rc, route), rc->cfg->r[i].name, o->waiting,
                 o->live_total, rc->cfg->r[i].min, t - o->below_since);
    }
    if (kind == SIM_RK_OUTBOUND && route >= 0 && rc->cfg->outbound_after_inbound) {
        for (size_t i = 0; i < rc->nc; i++) {
            const struct rcaller *w = &rc->c[i];
            if (w->route == route && w->waiting && w->adm_t < 0 &&
                t - w->enq_t > rc->cfg->min_tolerance_s) {
                note(&rc->out_after,
                     "t=%.3f: an outbound call of route %s started while caller %s of that "
                     "route had waited %.3f s",
                     t, rname(rc, route), w->sid, t - w->enq_t);
                break;
            }
        }
    }
    rc->org_live++;
    if (rc->org_live > rc->org_peak)
        rc->org_peak = rc->org_live;
    if (rc->org_live > rc->limit)
        note(&rc->org, "t=%.3f: %ld calls at Vapi with %s call of route %s, limit %ld", t,
             rc->org_live, kind_name(kind), rname(rc, route), rc->limit);
    if (route >= 0) {
        struct rroute *r = &rc->r[route];
        r->live[kind]++;
        r->live_total++;
        r->started[kind]++;
        if (r->live_total > r->peak)
            r->peak = r->live_total;
        if (r->live_total > route_max(rc, route))
            note(&rc->max, "t=%.3f: route %s has %ld live calls, max %ld (%s call started)", t,
                 rname(rc, route), r->live_total, route_max(rc, route), kind_name(kind));
    } else {
        rc->unrouted_live++;
    }
    settle(rc, t);
}

void sim_rcheck_ended(struct sim_rcheck *rc, double t, int route, enum sim_rkind kind)
{
    advance(rc, t);
    if (rc->org_live > rc->external)
        rc->org_live--;
    if (route >= 0 && rc->r[route].live[kind] > 0) {
        rc->r[route].live[kind]--;
        rc->r[route].live_total--;
    } else if (route < 0 && rc->unrouted_live > 0) {
        rc->unrouted_live--;
    }
    settle(rc, t);
}

void sim_rcheck_refused(struct sim_rcheck *rc, double t, int route, enum sim_rkind kind)
{
    rc->refused++;
    if (route >= 0)
        rc->r[route].refused[kind]++;
    note(&rc->org, "t=%.3f: Vapi refused %s call of route %s for the limit (%ld live of %ld)", t,
         kind_name(kind), rname(rc, route), rc->org_live, rc->limit);
    long held = 0;
    for (size_t i = 0; i < rc->cfg->n; i++)
        held += rc->r[i].live[SIM_RK_OUTBOUND] + rc->r[i].live[SIM_RK_SLOT];
    if (kind == SIM_RK_INBOUND && held > 0)
        note(&rc->pushed,
             "t=%.3f: an inbound call of route %s was refused for the limit while %ld "
             "outbound calls and slots held part of it",
             t, rname(rc, route), held);
}

/* ---- the end ---- */

/* Callers of a route admitted (or gone) in an order the route's line does
 * not allow. O(n^2) per route: runs are small. */
static void judge_fifo(struct sim_rcheck *rc, double t)
{
    double tol = rc->cfg->overtake_tolerance_s;
    for (size_t i = 0; i < rc->nc; i++) {
        const struct rcaller *y = &rc->c[i];
        if (y->route < 0)
            continue;
        double ref = y->adm_t >= 0 ? y->adm_t : y->left_t >= 0 ? y->left_t : t;
        for (size_t j = 0; j < rc->nc; j++) {
            const struct rcaller *x = &rc->c[j];
            if (x->route != y->route || x->adm_t < 0 || x->arrived_s <= y->arrived_s + tol)
                continue;
            if (x->vip && !y->vip)
                continue;
            if (x->adm_t < ref - tol) {
                note(&rc->fifo,
                     "route %s: caller %s (arrived at t=%.3f) admitted at t=%.3f, before "
                     "caller %s (arrived at t=%.3f, %s at t=%.3f)",
                     rname(rc, y->route), x->sid, x->arrived_s, x->adm_t, y->sid, y->arrived_s,
                     y->adm_t >= 0    ? "admitted"
                     : y->left_t >= 0 ? "gone"
                                      : "still waiting",
                     ref);
                break;
            }
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* {"n", "mean", "p90"} of the connected callers of a route who arrived in
 * [from, until). */
static json_t *waits(const struct sim_rcheck *rc, int route, double from, double until,
                     double *mean_out, double *p90_out)
{
    double *v = cg_malloc((rc->nc + 1) * sizeof(double));
    size_t n = 0;
    double sum = 0;
    for (size_t i = 0; i < rc->nc; i++) {
        const struct rcaller *k = &rc->c[i];
        if (k->route == route && k->connected && k->arrived_s >= from && k->arrived_s < until) {
            v[n++] = k->waited_s;
            sum += k->waited_s;
        }
    }
    qsort(v, n, sizeof(double), cmp_double);
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)n));
    double mean = n ? sum / (double)n : 0, p90 = 0;
    if (n) {
        size_t rank = (size_t)ceil(0.9 * (double)n);
        p90 = v[(rank < 1 ? 1 : rank) - 1];
    }
    json_object_set_new(o, "mean", n ? json_real(round(mean * 1000) / 1000) : json_null());
    json_object_set_new(o, "p90", n ? json_real(round(p90 * 1000) / 1000) : json_null());
    free(v);
    if (mean_out)
        *mean_out = mean;
    if (p90_out)
        *p90_out = p90;
    return o;
}

static int verdict(json_t *inv, const char *name, const struct verdict *v, const char *ok_detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "ok", json_boolean(v->n == 0));
    char d[DETAIL_LEN + 64];
    if (v->n == 0)
        snprintf(d, sizeof d, "%s", ok_detail);
    else
        snprintf(d, sizeof d, "%ld time%s; first: %s", v->n, v->n == 1 ? "" : "s", v->first);
    json_object_set_new(o, "detail", json_string(d));
    json_array_append_new(inv, o);
    if (v->n)
        fprintf(stderr, "callgate-sim: invariant failed: %s: %s\n", name, d);
    return v->n ? 1 : 0;
}

int sim_rcheck_finish(struct sim_rcheck *rc, double t, json_t *root, json_t *inv)
{
    advance(rc, t);
    judge_fifo(rc, t);
    const struct sim_routes_cfg *cfg = rc->cfg;
    json_t *list = json_array();
    double base = cfg->baseline_until_s, surge = cfg->surge_until_s;
    for (size_t i = 0; i < cfg->n; i++) {
        const struct rroute *r = &rc->r[i];
        const struct sim_route_cfg *rt = &cfg->r[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(rt->name));
        json_object_set_new(o, "max", json_integer(route_max(rc, (int)i)));
        json_object_set_new(o, "min", json_integer(rt->min));
        json_object_set_new(o, "priority", json_integer(rt->priority));
        json_object_set_new(o, "peak", json_integer(r->peak));
        json_object_set_new(o, "callers", json_integer(r->callers));
        json_object_set_new(o, "connected", json_integer(r->connected));
        json_object_set_new(o, "inbound_calls", json_integer(r->started[SIM_RK_INBOUND]));
        json_object_set_new(o, "outbound_calls", json_integer(r->started[SIM_RK_OUTBOUND]));
        json_object_set_new(o, "slot_calls", json_integer(r->started[SIM_RK_SLOT]));
        json_object_set_new(o, "worst_below_min_s",
                            json_real(round(r->worst_starve_s * 1000) / 1000));
        double mean, p90, m1 = 0, q1 = 0, m2 = 0, q2 = 0, m3 = 0, q3 = 0;
        json_object_set_new(o, "wait_s", waits(rc, (int)i, -1e18, 1e18, &mean, &p90));
        char phases[256] = "";
        if (base >= 0) {
            json_object_set_new(o, "wait_baseline_s", waits(rc, (int)i, -1e18, base, &m1, &q1));
            json_object_set_new(o, "wait_after_baseline_s",
                                waits(rc, (int)i, base, 1e18, &m2, &q2));
            snprintf(phases, sizeof phases, "; arrived before t=%.1f s: mean %.2f p90 %.2f", base,
                     m1, q1);
        }
        if (base >= 0 && surge >= 0) {
            json_object_set_new(o, "wait_surge_s", waits(rc, (int)i, base, surge, &m2, &q2));
            json_object_set_new(o, "wait_after_surge_s", waits(rc, (int)i, surge, 1e18, &m3, &q3));
            size_t n = strlen(phases);
            snprintf(phases + n, sizeof phases - n,
                     ", in the surge: mean %.2f p90 %.2f, after it: mean %.2f p90 %.2f", m2, q2, m3,
                     q3);
        } else if (base >= 0) {
            size_t n = strlen(phases);
            snprintf(phases + n, sizeof phases - n, ", after: mean %.2f p90 %.2f", m2, q2);
        }
        fprintf(stderr,
                "callgate-sim: route %s: %ld callers, %ld connected, peak %ld of max %ld (min %d); "
                "calls: %ld inbound, %ld outbound, %ld slots; wait mean %.2f s p90 %.2f s%s\n",
                rt->name, r->callers, r->connected, r->peak, route_max(rc, (int)i), rt->min,
                r->started[SIM_RK_INBOUND], r->started[SIM_RK_OUTBOUND], r->started[SIM_RK_SLOT],
                mean, p90, phases);
        json_array_append_new(list, o);
    }
    json_t *routes = json_object();
    json_object_set_new(routes, "limit", json_integer(rc->limit));
    json_object_set_new(routes, "org_peak", json_integer(rc->org_peak));
    json_object_set_new(routes, "refused_for_limit", json_integer(rc->refused));
    json_object_set_new(routes, "idle_slot_seconds", json_real(round(rc->idle_s * 1000) / 1000));
    json_object_set_new(routes, "unrouted_callers", json_integer(rc->unrouted_callers));
    json_object_set_new(routes, "min_tolerance_s", json_real(cfg->min_tolerance_s));
    json_object_set_new(routes, "overtake_tolerance_s", json_real(cfg->overtake_tolerance_s));
    json_object_set_new(routes, "baseline_until_s", base >= 0 ? json_real(base) : json_null());
    json_object_set_new(routes, "surge_until_s", surge >= 0 ? json_real(surge) : json_null());
    json_object_set_new(routes, "list", list);
    json_object_set_new(root, "routes", routes);

    char ok[DETAIL_LEN];
    int failed = 0;
    snprintf(ok, sizeof ok, "peak %ld of limit %ld, no refusal", rc->org_peak, rc->limit);
    failed += verdict(inv, "routes_org_limit", &rc->org, ok);
    failed += verdict(inv, "routes_max", &rc->max, "no route over its max");
    failed += verdict(inv, "routes_min_guarantee", &rc->min,
                      "no route left below its min with callers waiting");
    failed += verdict(inv, "routes_fifo", &rc->fifo, "no caller overtaken within its route");
    if (cfg->outbound_after_inbound)
        failed += verdict(inv, "routes_outbound_after_inbound", &rc->out_after,
                          "no outbound call ahead of a waiting inbound caller");
    failed += verdict(inv, "routes_outbound_never_pushes_inbound", &rc->pushed,
                      "no inbound call refused for the limit");
    failed += verdict(inv, "routes_placement", &rc->placement,
                      "every caller in its route's queue, with its route's assistant");
    return failed;
}
