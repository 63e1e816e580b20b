/*
 * scenario_routes.c - the "routes", "route_checks" and "dialer" members of a
 * scenario (see scenario_routes.h). Like scenario.c, every object is checked
 * against the members it may have and errors name the JSON path.
 */
#include "base/fmacros.h"

#include "scenario_routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "scenario.h"
#include "scenario_json.h"

#define MAX_SECONDS  1e6
#define MAX_RATE     1e4
#define MAX_SEGMENTS 100

/* An array of E.164 numbers into out[max]. */
static int numbers(struct sim_jctx *c, const json_t *o, const char *path, const char *key,
                   int required, char **out, size_t max, size_t *n)
{
    json_t *a = json_object_get(o, key);
    if (!a)
        return required ? sim_json_fail(c, path, "missing required member \"%s\"", key) : 0;
    if (!json_is_array(a) || json_array_size(a) > max || (required && json_array_size(a) == 0))
        return sim_json_fail(c, path, "\"%s\" must be an array of %s%zu numbers", key,
                             required ? "1 to " : "at most ", max);
    size_t i;
    json_t *e;
    json_array_foreach (a, i, e) {
        if (!json_is_string(e) || !sim_json_is_e164(json_string_value(e)))
            return sim_json_fail(c, path, "\"%s\"[%zu] is not an E.164 number", key, i);
        out[(*n)++] = cg_strdup(json_string_value(e));
    }
    return 0;
}

static int parse_arrivals(struct sim_jctx *c, const json_t *a, const char *path,
                          struct sim_route_cfg *rt)
{
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > MAX_SEGMENTS)
        return sim_json_fail(c, path, "expected an array of 1 to %d segments", MAX_SEGMENTS);
    rt->nsegments = json_array_size(a);
    rt->segments = cg_calloc(rt->nsegments, sizeof(*rt->segments));
    double prev = 0;
    for (size_t i = 0; i < rt->nsegments; i++) {
        static const char *const allowed[] = {"until_s", "rate_per_s", NULL};
        char p[SIM_JSON_PATH_LEN + 64];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        const json_t *s = json_array_get(a, i);
        struct sim_segment *seg = &rt->segments[i];
        seg->until_s = -1;
        if (sim_json_object(c, s, p, allowed) ||
            sim_json_num(c, s, p, "until_s", 0, MAX_SECONDS, &seg->until_s) ||
            sim_json_num(c, s, p, "rate_per_s", 0, MAX_RATE, &seg->rate_per_s))
            return -1;
        if (seg->until_s <= prev)
            return sim_json_fail(c, p, "until_s missing or not after the previous segment's");
        prev = seg->until_s;
    }
    return 0;
}

static int parse_route(struct sim_jctx *c, const json_t *o, const char *p, struct sim_route_cfg *rt)
{
    static const char *const allowed[] = {"name",  "numbers", "assistantId", "phoneNumberId",
                                          "queue", "max",     "min",         "priority",
                                          "vip",   "callers", NULL};
    static const char *const callers_allowed[] = {"arrivals", "vip_share", NULL};
    if (sim_json_object(c, o, p, allowed) || sim_json_required_str(c, o, p, "name", &rt->name) ||
        numbers(c, o, p, "numbers", 1, rt->numbers, SIM_ROUTE_MAX_NUMBERS, &rt->nnumbers) ||
        sim_json_required_str(c, o, p, "assistantId", &rt->assistant_id) ||
        sim_json_required_str(c, o, p, "phoneNumberId", &rt->phone_number_id) ||
        sim_json_required_str(c, o, p, "queue", &rt->queue) ||
        sim_json_int_field(c, o, p, "max", 1, 100000, &rt->max) ||
        sim_json_int_field(c, o, p, "min", 0, 100000, &rt->min) ||
        sim_json_int_field(c, o, p, "priority", -1000000, 1000000, &rt->priority) ||
        numbers(c, o, p, "vip", 0, rt->vip, SIM_ROUTE_MAX_VIP, &rt->nvip))
        return -1;
    if (rt->max > 0 && rt->min > rt->max)
        return sim_json_fail(c, p, "min %d is above max %d", rt->min, rt->max);
    const json_t *cl = json_object_get(o, "callers");
    if (cl) {
        char q[SIM_JSON_PATH_LEN + 16];
        snprintf(q, sizeof q, "%s.callers", p);
        if (sim_json_object(c, cl, q, callers_allowed) ||
            sim_json_num(c, cl, q, "vip_share", 0, 1, &rt->vip_share))
            return -1;
        const json_t *a = json_object_get(cl, "arrivals");
        char ap[SIM_JSON_PATH_LEN + 32];
        snprintf(ap, sizeof ap, "%s.arrivals", q);
        if (a && parse_arrivals(c, a, ap, rt) != 0)
            return -1;
        if (rt->vip_share > 0 && rt->nvip == 0)
            return sim_json_fail(c, q, "vip_share needs the route's vip numbers");
    }
    return 0;
}

static int route_index(struct sim_jctx *c, const struct sim_routes_cfg *cfg, const json_t *o,
                       const char *path, int *out)
{
    char *name = NULL;
    if (sim_json_required_str(c, o, path, "route", &name) != 0)
        return -1;
    *out = sim_routes_cfg_find(cfg, name);
    int rc = *out < 0 ? sim_json_fail(c, path, "no route named \"%s\"", name) : 0;
    free(name);
    return rc;
}

static int parse_dialer(struct sim_jctx *c, const json_t *o, double duration_s,
                        struct sim_routes_cfg *cfg)
{
    static const char *const allowed[] = {"admin_token", "poll_s",    "outbound",
                                          "slots",       "customers", NULL};
    static const char *const out_allowed[] = {"route", "rate_per_s", "until_s", NULL};
    static const char *const slot_allowed[] = {"route",        "rate_per_s",  "until_s",
                                               "ttl_s",        "hold_min_s",  "hold_max_s",
                                               "expire_share", "renew_share", NULL};
    static const char *const cust_allowed[] = {"answer",     "busy",       "dial_s",
                                               "ring_min_s", "ring_max_s", "no_answer_s",
                                               "talk_min_s", "talk_max_s", NULL};
    struct sim_dialer_cfg *d = &cfg->dialer;
    cfg->has_dialer = 1;
    if (sim_json_object(c, o, "dialer", allowed) ||
        sim_json_str(c, o, "dialer", "admin_token", &d->admin_token) ||
        sim_json_num(c, o, "dialer", "poll_s", 0.01, 60, &d->poll_s))
        return -1;
    const json_t *ob = json_object_get(o, "outbound");
    if (ob) {
        const char *p = "dialer.outbound";
        d->out_until_s = duration_s;
        if (sim_json_object(c, ob, p, out_allowed) || route_index(c, cfg, ob, p, &d->out_route) ||
            sim_json_num(c, ob, p, "rate_per_s", 0, MAX_RATE, &d->out_rate_per_s) ||
            sim_json_num(c, ob, p, "until_s", 0, MAX_SECONDS, &d->out_until_s))
            return -1;
    }
    const json_t *sl = json_object_get(o, "slots");
    if (sl) {
        const char *p = "dialer.slots";
        d->slot_until_s = duration_s;
        if (sim_json_object(c, sl, p, slot_allowed) || route_index(c, cfg, sl, p, &d->slot_route) ||
            sim_json_num(c, sl, p, "rate_per_s", 0, MAX_RATE, &d->slot_rate_per_s) ||
            sim_json_num(c, sl, p, "until_s", 0, MAX_SECONDS, &d->slot_until_s) ||
            sim_json_num(c, sl, p, "ttl_s", 1, 86400, &d->slot_ttl_s) ||
            sim_json_num(c, sl, p, "hold_min_s", 0, MAX_SECONDS, &d->hold_min_s) ||
            sim_json_num(c, sl, p, "hold_max_s", 0, MAX_SECONDS, &d->hold_max_s) ||
            sim_json_num(c, sl, p, "expire_share", 0, 1, &d->expire_share) ||
            sim_json_num(c, sl, p, "renew_share", 0, 1, &d->renew_share))
            return -1;
        if (d->hold_min_s > d->hold_max_s || d->hold_max_s >= d->slot_ttl_s)
            return sim_json_fail(c, p,
                                 "needs hold_min_s <= hold_max_s < ttl_s (a web call ends before "
                                 "its lease does)");
        /* ttlSeconds on the wire is an integer. */
        if (d->slot_ttl_s != (double)(long)d->slot_ttl_s)
            return sim_json_fail(c, p, "ttl_s must be a whole number of seconds");
    }
    const json_t *cu = json_object_get(o, "customers");
    if (cu) {
        const char *p = "dialer.customers";
        struct sim_customers_cfg *k = &d->customers;
        if (sim_json_object(c, cu, p, cust_allowed) ||
            sim_json_num(c, cu, p, "answer", 0, 1, &k->answer) ||
            sim_json_num(c, cu, p, "busy", 0, 1, &k->busy) ||
            sim_json_num(c, cu, p, "dial_s", 0, MAX_SECONDS, &k->dial_s) ||
            sim_json_num(c, cu, p, "ring_min_s", 0, MAX_SECONDS, &k->ring_min_s) ||
            sim_json_num(c, cu, p, "ring_max_s", 0, MAX_SECONDS, &k->ring_max_s) ||
            sim_json_num(c, cu, p, "no_answer_s", 0, MAX_SECONDS, &k->no_answer_s) ||
            sim_json_num(c, cu, p, "talk_min_s", 0, MAX_SECONDS, &k->talk_min_s) ||
            sim_json_num(c, cu, p, "talk_max_s", 0, MAX_SECONDS, &k->talk_max_s))
            return -1;
        if (k->answer + k->busy > 1.0 + 1e-9)
            return sim_json_fail(c, p, "answer + busy must not exceed 1");
        if (k->ring_min_s > k->ring_max_s || k->talk_min_s > k->talk_max_s)
            return sim_json_fail(c, p, "a min is above its max");
    }
    return 0;
}

static void defaults(struct sim_routes_cfg *cfg)
{
    cfg->baseline_until_s = -1;
    cfg->surge_until_s = -1;
    cfg->min_tolerance_s = 0.25;
    cfg->overtake_tolerance_s = 0.25;
    cfg->outbound_after_inbound = 1;
    struct sim_dialer_cfg *d = &cfg->dialer;
    d->admin_token = cg_strdup("sim-admin-token");
    d->poll_s = 0.5;
    d->out_route = d->slot_route = -1;
    d->slot_ttl_s = 4;
    d->hold_min_s = 0.5;
    d->hold_max_s = 2;
    d->customers = (struct sim_customers_cfg){.answer = 0.8,
                                              .busy = 0.1,
                                              .dial_s = 0.1,
                                              .ring_min_s = 0.2,
                                              .ring_max_s = 1,
                                              .no_answer_s = 2,
                                              .talk_min_s = 0.5,
                                              .talk_max_s = 2};
}

static int unique(struct sim_jctx *c, const struct sim_routes_cfg *cfg)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const struct sim_route_cfg *a = &cfg->r[i];
        for (size_t j = i + 1; j < cfg->n; j++) {
            const struct sim_route_cfg *b = &cfg->r[j];
            if (strcmp(a->name, b->name) == 0)
                return sim_json_fail(c, "routes", "two routes are named \"%s\"", a->name);
            if (strcmp(a->phone_number_id, b->phone_number_id) == 0)
                return sim_json_fail(c, "routes", "routes %s and %s share phoneNumberId %s",
                                     a->name, b->name, a->phone_number_id);
            if (strcmp(a->queue, b->queue) == 0)
                return sim_json_fail(c, "routes", "routes %s and %s share queue %s", a->name,
                                     b->name, a->queue);
        }
        for (size_t k = 0; k < a->nnumbers; k++)
            for (size_t j = i; j < cfg->n; j++)
                for (size_t m = j == i ? k + 1 : 0; m < cfg->r[j].nnumbers; m++)
                    if (strcmp(a->numbers[k], cfg->r[j].numbers[m]) == 0)
                        return sim_json_fail(c, "routes", "number %s is listed twice",
                                             a->numbers[k]);
    }
    return 0;
}

int sim_routes_cfg_parse(const struct json_t *root, double duration_s, struct sim_routes_cfg **out,
                         char *err, size_t errlen)
{
    struct sim_jctx c = {err, errlen};
    *out = NULL;
    const json_t *routes = json_object_get(root, "routes");
    const json_t *checks = json_object_get(root, "route_checks");
    const json_t *dialer = json_object_get(root, "dialer");
    if (!routes) {
        if (checks || dialer)
            return sim_json_fail(&c, checks ? "route_checks" : "dialer", "needs a \"routes\" list");
        return 0;
    }
    if (!json_is_array(routes) || json_array_size(routes) == 0 ||
        json_array_size(routes) > SIM_MAX_ROUTES)
        return sim_json_fail(&c, "routes", "expected an array of 1 to %d routes", SIM_MAX_ROUTES);
    struct sim_routes_cfg *cfg = cg_calloc(1, sizeof(*cfg));
    defaults(cfg);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(routes); i++) {
        char p[SIM_JSON_PATH_LEN];
        snprintf(p, sizeof p, "routes[%zu]", i);
        cfg->n = i + 1;
        rc = parse_route(&c, json_array_get(routes, i), p, &cfg->r[i]);
    }
    if (rc == 0)
        rc = unique(&c, cfg);
    if (rc == 0 && checks) {
        static const char *const allowed[] = {"baseline_until_s",       "surge_until_s",
                                              "min_tolerance_s",        "overtake_tolerance_s",
                                              "outbound_after_inbound", NULL};
        const char *p = "route_checks";
        rc = sim_json_object(&c, checks, p, allowed) ||
             (json_is_null(json_object_get(checks, "baseline_until_s"))
                  ? 0
                  : sim_json_num(&c, checks, p, "baseline_until_s", 0, MAX_SECONDS,
                                 &cfg->baseline_until_s)) ||
             (json_is_null(json_object_get(checks, "surge_until_s"))
                  ? 0
                  : sim_json_num(&c, checks, p, "surge_until_s", 0, MAX_SECONDS,
                                 &cfg->surge_until_s)) ||
             sim_json_num(&c, checks, p, "min_tolerance_s", 0, 60, &cfg->min_tolerance_s) ||
             sim_json_num(&c, checks, p, "overtake_tolerance_s", 0, 60,
                          &cfg->overtake_tolerance_s) ||
             sim_json_bool(&c, checks, p, "outbound_after_inbound", &cfg->outbound_after_inbound);
    }
    if (rc == 0 && cfg->surge_until_s >= 0 &&
        !(cfg->baseline_until_s >= 0 && cfg->surge_until_s > cfg->baseline_until_s))
        rc = sim_json_fail(&c, "route_checks", "surge_until_s needs a baseline_until_s before it");
    if (rc == 0 && dialer)
        rc = parse_dialer(&c, dialer, duration_s, cfg);
    if (rc != 0) {
        sim_routes_cfg_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

void sim_routes_cfg_free(struct sim_routes_cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        struct sim_route_cfg *rt = &cfg->r[i];
        free(rt->name);
        for (size_t k = 0; k < rt->nnumbers; k++)
            free(rt->numbers[k]);
        for (size_t k = 0; k < rt->nvip; k++)
            free(rt->vip[k]);
        free(rt->assistant_id);
        free(rt->phone_number_id);
        free(rt->queue);
        free(rt->segments);
    }
    free(cfg->dialer.admin_token);
    free(cfg);
}

int sim_routes_cfg_find(const struct sim_routes_cfg *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n; i++)
        if (strcmp(cfg->r[i].name, name) == 0)
            return (int)i;
    return -1;
}
