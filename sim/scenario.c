/*
 * scenario.c - scenario files. Every object is checked against the list of
 * members it may have, so that a typo fails loudly instead of silently
 * running a different scenario; errors name the JSON path.
 */
#include "base/fmacros.h"

#include "scenario.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/json.h"
#include "scenario_json.h"
#include "scenario_routes.h"

/* Files are small; this bounds what a mistaken path can make us read. */
#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_SECONDS    1e6 /* any duration: beyond this is a typo */
#define MAX_RATE       1e5
#define MAX_SEGMENTS   1000
#define MAX_BURST      1000000

static int get_seconds(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                       double *out)
{
    return sim_json_num(c, obj, path, key, 0.0, MAX_SECONDS, out);
}

static int get_prob(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                    double *out)
{
    return sim_json_num(c, obj, path, key, 0.0, 1.0, out);
}

/* An expectation: a non-negative integer, or null for "not checked" (-1). */
static int get_expect(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                      long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (json_is_null(v)) {
        *out = -1;
        return 0;
    }
    long long n = 0;
    if (sim_json_int(c, obj, path, key, 0, 1000000000LL, &n) != 0)
        return -1;
    *out = (long)n;
    return 0;
}

/* ---- distributions ---- */

/* Parses v into d (replacing the default entirely). allow_null: null means
 * "none" (infinite patience, no delay). */
static int parse_dist(struct sim_jctx *c, const json_t *v, const char *path, int allow_null,
                      struct sim_dist *d)
{
    if (json_is_null(v)) {
        if (!allow_null)
            return sim_json_fail(c, path, "must be a distribution, not null");
        memset(d, 0, sizeof(*d));
        d->kind = SIM_DIST_NONE;
        return 0;
    }
    if (!json_is_object(v))
        return sim_json_fail(c, path, "expected a distribution object%s",
                             allow_null ? " or null" : "");
    json_t *kind = json_object_get(v, "dist");
    char p[SIM_JSON_PATH_LEN];
    sim_json_join(p, path, "dist");
    if (!kind)
        return sim_json_fail(c, path, "missing required member \"dist\"");
    if (!json_is_string(kind))
        return sim_json_fail(c, p, "expected a string");
    const char *k = json_string_value(kind);

    struct sim_dist nd = {0};
    if (strcmp(k, "const") == 0) {
        static const char *const allowed[] = {"dist", "value_s", "min_s", "max_s", NULL};
        nd.kind = SIM_DIST_CONST;
        if (sim_json_object(c, v, path, allowed) || sim_json_require(c, v, path, "value_s") ||
            get_seconds(c, v, path, "value_s", &nd.a) ||
            get_seconds(c, v, path, "min_s", &nd.min_s) ||
            get_seconds(c, v, path, "max_s", &nd.max_s))
            return -1;
    } else if (strcmp(k, "uniform") == 0) {
        static const char *const allowed[] = {"dist", "min_s", "max_s", NULL};
        nd.kind = SIM_DIST_UNIFORM;
        if (sim_json_object(c, v, path, allowed) || sim_json_require(c, v, path, "min_s") ||
            sim_json_require(c, v, path, "max_s") || get_seconds(c, v, path, "min_s", &nd.a) ||
            get_seconds(c, v, path, "max_s", &nd.b))
            return -1;
        if (nd.b < nd.a) {
            sim_json_join(p, path, "max_s");
            return sim_json_fail(c, p, "must not be less than min_s");
        }
        nd.min_s = nd.a;
        nd.max_s = nd.b; /* 0 with min_s 0: the constant 0, as written */
    } else if (strcmp(k, "exp") == 0) {
        static const char *const allowed[] = {"dist", "mean_s", "min_s", "max_s", NULL};
        nd.kind = SIM_DIST_EXP;
        if (sim_json_object(c, v, path, allowed) || sim_json_require(c, v, path, "mean_s") ||
            get_seconds(c, v, path, "mean_s", &nd.a) ||
            get_seconds(c, v, path, "min_s", &nd.min_s) ||
            get_seconds(c, v, path, "max_s", &nd.max_s))
            return -1;
        if (!(nd.a > 0)) {
            sim_json_join(p, path, "mean_s");
            return sim_json_fail(c, p, "must be positive");
        }
    } else if (strcmp(k, "lognormal") == 0) {
        static const char *const allowed[] = {"dist", "median_s", "sigma", "min_s", "max_s", NULL};
        nd.kind = SIM_DIST_LOGNORMAL;
        if (sim_json_object(c, v, path, allowed) || sim_json_require(c, v, path, "median_s") ||
            sim_json_require(c, v, path, "sigma") || get_seconds(c, v, path, "median_s", &nd.a) ||
            sim_json_num(c, v, path, "sigma", 0.0, 10.0, &nd.b) ||
            get_seconds(c, v, path, "min_s", &nd.min_s) ||
            get_seconds(c, v, path, "max_s", &nd.max_s))
            return -1;
        if (!(nd.a > 0)) {
            sim_json_join(p, path, "median_s");
            return sim_json_fail(c, p, "must be positive");
        }
    } else {
        return sim_json_fail(c, p, "unknown distribution \"%s\" (const, uniform, exp, lognormal)",
                             k);
    }
    if (nd.max_s > 0 && nd.max_s < nd.min_s) {
        sim_json_join(p, path, "max_s");
        return sim_json_fail(c, p, "must not be less than min_s");
    }
    *d = nd;
    return 0;
}

static int get_dist(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                    int allow_null, struct sim_dist *d)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    char p[SIM_JSON_PATH_LEN];
    sim_json_join(p, path, key);
    return parse_dist(c, v, p, allow_null, d);
}

/* ---- sections ---- */

static int parse_arrivals(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    const char *path = "callers.arrivals";
    if (!json_is_object(v))
        return sim_json_fail(c, path, "expected an object");
    json_t *proc = json_object_get(v, "process");
    if (!proc)
        return sim_json_fail(c, path, "missing required member \"process\"");
    if (!json_is_string(proc))
        return sim_json_fail(c, "callers.arrivals.process", "expected a string");
    const char *k = json_string_value(proc);
    if (strcmp(k, "poisson") == 0) {
        static const char *const allowed[] = {"process", "rate_per_s", NULL};
        sc->arrival = SIM_ARRIVAL_POISSON;
        return sim_json_object(c, v, path, allowed) ||
               sim_json_num(c, v, path, "rate_per_s", 0.0, MAX_RATE, &sc->rate_per_s);
    }
    if (strcmp(k, "burst") == 0) {
        static const char *const allowed[] = {"process", "count", "at_s", "spread_s", NULL};
        sc->arrival = SIM_ARRIVAL_BURST;
        sc->burst_at_s = 0;
        sc->burst_spread_s = 0;
        return sim_json_object(c, v, path, allowed) || sim_json_require(c, v, path, "count") ||
               sim_json_int_field(c, v, path, "count", 0, MAX_BURST, &sc->burst_count) ||
               get_seconds(c, v, path, "at_s", &sc->burst_at_s) ||
               get_seconds(c, v, path, "spread_s", &sc->burst_spread_s);
    }
    if (strcmp(k, "schedule") == 0) {
        static const char *const allowed[] = {"process", "segments", NULL};
        static const char *const seg_allowed[] = {"until_s", "rate_per_s", NULL};
        sc->arrival = SIM_ARRIVAL_SCHEDULE;
        if (sim_json_object(c, v, path, allowed) || sim_json_require(c, v, path, "segments"))
            return -1;
        json_t *segs = json_object_get(v, "segments");
        if (!json_is_array(segs))
            return sim_json_fail(c, "callers.arrivals.segments", "expected an array");
        size_t n = json_array_size(segs);
        if (n == 0 || n > MAX_SEGMENTS)
            return sim_json_fail(c, "callers.arrivals.segments", "needs 1 to %d segments",
                                 MAX_SEGMENTS);
        struct sim_segment *out = cg_calloc(n, sizeof(*out));
        double prev = 0;
        for (size_t i = 0; i < n; i++) {
            char p[SIM_JSON_PATH_LEN];
            snprintf(p, sizeof(p), "callers.arrivals.segments[%zu]", i);
            json_t *s = json_array_get(segs, i);
            out[i].until_s = -1;
            if (sim_json_object(c, s, p, seg_allowed) || sim_json_require(c, s, p, "until_s") ||
                sim_json_require(c, s, p, "rate_per_s") ||
                get_seconds(c, s, p, "until_s", &out[i].until_s) ||
                sim_json_num(c, s, p, "rate_per_s", 0.0, MAX_RATE, &out[i].rate_per_s)) {
                free(out);
                return -1;
            }
            if (out[i].until_s <= prev) {
                free(out);
                char q[SIM_JSON_PATH_LEN];
                sim_json_join(q, p, "until_s");
                return sim_json_fail(c, q,
                                     "must be greater than the previous segment's (and than 0)");
            }
            prev = out[i].until_s;
        }
        free(sc->segments);
        sc->segments = out;
        sc->nsegments = n;
        return 0;
    }
    return sim_json_fail(c, "callers.arrivals.process",
                         "unknown process \"%s\" (poisson, burst, schedule)", k);
}

static int parse_callers(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"arrivals", "duration", "patience", NULL};
    if (sim_json_object(c, v, "callers", allowed))
        return -1;
    json_t *arr = json_object_get(v, "arrivals");
    if (arr && parse_arrivals(c, arr, sc) != 0)
        return -1;
    return get_dist(c, v, "callers", "duration", 0, &sc->duration) ||
           get_dist(c, v, "callers", "patience", 1, &sc->patience);
}

static int parse_hooks(struct sim_jctx *c, const json_t *obj, const char *parent,
                       struct sim_webhook_faults *f)
{
    static const char *const allowed[] = {"drop", "duplicate", "delay", "reorder", NULL};
    json_t *v = json_object_get(obj, "webhooks");
    if (!v)
        return 0;
    char path[SIM_JSON_PATH_LEN];
    sim_json_join(path, parent, "webhooks");
    return sim_json_object(c, v, path, allowed) || get_prob(c, v, path, "drop", &f->drop) ||
           get_prob(c, v, path, "duplicate", &f->duplicate) ||
           get_prob(c, v, path, "reorder", &f->reorder) ||
           get_dist(c, v, path, "delay", 1, &f->delay);
}

/* parent.outages: windows during which that API is unreachable. */
static int parse_outages(struct sim_jctx *c, const json_t *obj, const char *parent,
                         struct sim_outages *out)
{
    static const char *const allowed[] = {"at_s", "for_s", "mode", NULL};
    json_t *v = json_object_get(obj, "outages");
    if (!v)
        return 0;
    char path[SIM_JSON_PATH_LEN];
    sim_json_join(path, parent, "outages");
    if (!json_is_array(v))
        return sim_json_fail(c, path, "expected an array");
    if (json_array_size(v) > SIM_MAX_OUTAGES)
        return sim_json_fail(c, path, "at most %d windows", SIM_MAX_OUTAGES);
    out->n = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *o = json_array_get(v, i);
        char p[SIM_JSON_PATH_LEN];
        int n = snprintf(p, sizeof(p), "%s[%zu]", path, i);
        if (n < 0 || (size_t)n >= sizeof(p))
            p[0] = '\0';
        struct sim_outage w = {.at_s = -1, .for_s = -1, .mode = SIM_OUTAGE_HANG};
        if (sim_json_object(c, o, p, allowed) || sim_json_require(c, o, p, "at_s") ||
            sim_json_require(c, o, p, "for_s") || get_seconds(c, o, p, "at_s", &w.at_s) ||
            get_seconds(c, o, p, "for_s", &w.for_s))
            return -1;
        if (!(w.for_s > 0))
            return sim_json_fail(c, p, "for_s must be positive");
        json_t *m = json_object_get(o, "mode");
        if (m) {
            const char *s = json_string_value(m);
            if (s && strcmp(s, "hang") == 0)
                w.mode = SIM_OUTAGE_HANG;
            else if (s && strcmp(s, "503") == 0)
                w.mode = SIM_OUTAGE_503;
            else if (s && strcmp(s, "late") == 0)
                w.mode = SIM_OUTAGE_LATE;
            else
                return sim_json_fail(c, p, "mode must be \"hang\", \"503\" or \"late\"");
        }
        out->w[out->n++] = w;
    }
    return 0;
}

static int parse_balancer(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"retry_empty_response", NULL};
    return sim_json_object(c, v, "balancer", allowed) ||
           sim_json_bool(c, v, "balancer", "retry_empty_response", &sc->balancer_retry_empty);
}

static int parse_twilio(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"account_sid",
                                          "auth_token",
                                          "queue_max_size",
                                          "say_s_per_char",
                                          "play_s",
                                          "redirect_posts_action",
                                          "completed_again",
                                          "latency",
                                          "rate_429",
                                          "rate_5xx",
                                          "webhooks",
                                          "outages",
                                          NULL};
    const char *p = "twilio";
    if (sim_json_object(c, v, p, allowed) ||
        sim_json_str(c, v, p, "account_sid", &sc->twilio_account_sid) ||
        sim_json_str(c, v, p, "auth_token", &sc->twilio_auth_token) ||
        sim_json_int_field(c, v, p, "queue_max_size", 1, 5000, &sc->queue_max_size) ||
        sim_json_num(c, v, p, "say_s_per_char", 0.0, 10.0, &sc->say_s_per_char) ||
        get_seconds(c, v, p, "play_s", &sc->play_s) ||
        sim_json_bool(c, v, p, "redirect_posts_action", &sc->redirect_posts_action) ||
        get_dist(c, v, p, "latency", 1, &sc->twilio_latency) ||
        get_prob(c, v, p, "rate_429", &sc->twilio_rate_429) ||
        get_prob(c, v, p, "rate_5xx", &sc->twilio_rate_5xx) ||
        parse_hooks(c, v, p, &sc->twilio_hooks) || parse_outages(c, v, p, &sc->twilio_outages))
        return -1;
    if (strncmp(sc->twilio_account_sid, "AC", 2) != 0 || strlen(sc->twilio_account_sid) != 34)
        return sim_json_fail(c, "twilio.account_sid", "must be \"AC\" followed by 32 characters");
    json_t *ca = json_object_get(v, "completed_again");
    if (ca) {
        const char *s = json_string_value(ca);
        if (s && strcmp(s, "21220") == 0)
            sc->completed_again_200 = 0;
        else if (s && strcmp(s, "200") == 0)
            sc->completed_again_200 = 1;
        else
            return sim_json_fail(c, "twilio.completed_again", "must be \"21220\" or \"200\"");
    }
    return 0;
}

static int parse_vapi(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"api_key",        "limit",
                                          "server_secret",  "overlimit_mode",
                                          "external_calls", "end_lag_s",
                                          "report_lag_s",   "no_stream_timeout_s",
                                          "max_duration_s", "visibility_lag_s",
                                          "latency",        "rate_429",
                                          "rate_500",       "rate_overlimit",
                                          "hang_rate",      "webhooks",
                                          "outages",        NULL};
    const char *p = "vapi";
    if (sim_json_object(c, v, p, allowed) || sim_json_str(c, v, p, "api_key", &sc->vapi_api_key) ||
        sim_json_int_field(c, v, p, "limit", 1, 100000, &sc->vapi_limit) ||
        sim_json_str(c, v, p, "server_secret", &sc->vapi_server_secret) ||
        sim_json_int_field(c, v, p, "external_calls", 0, 100000, &sc->vapi_external_calls) ||
        get_seconds(c, v, p, "end_lag_s", &sc->vapi_end_lag_s) ||
        get_seconds(c, v, p, "report_lag_s", &sc->vapi_report_lag_s) ||
        get_seconds(c, v, p, "no_stream_timeout_s", &sc->vapi_no_stream_timeout_s) ||
        get_seconds(c, v, p, "max_duration_s", &sc->vapi_max_duration_s) ||
        get_seconds(c, v, p, "visibility_lag_s", &sc->vapi_visibility_lag_s) ||
        get_dist(c, v, p, "latency", 1, &sc->vapi_latency) ||
        get_prob(c, v, p, "rate_429", &sc->vapi_rate_429) ||
        get_prob(c, v, p, "rate_500", &sc->vapi_rate_500) ||
        get_prob(c, v, p, "rate_overlimit", &sc->vapi_rate_overlimit) ||
        get_prob(c, v, p, "hang_rate", &sc->vapi_hang_rate) ||
        parse_hooks(c, v, p, &sc->vapi_hooks) || parse_outages(c, v, p, &sc->vapi_outages))
        return -1;
    json_t *m = json_object_get(v, "overlimit_mode");
    if (m) {
        const char *s = json_string_value(m);
        if (s && strcmp(s, "400") == 0)
            sc->vapi_overlimit_blocked = 0;
        else if (s && strcmp(s, "blocked") == 0)
            sc->vapi_overlimit_blocked = 1;
        else
            return sim_json_fail(c, "vapi.overlimit_mode", "must be \"400\" or \"blocked\"");
    }
    if (sc->vapi_external_calls > sc->vapi_limit)
        return sim_json_fail(c, "vapi.external_calls", "must not exceed vapi.limit");
    return 0;
}

/* A member that is either a plain number (the constant) or a distribution:
 * workers_per_queue and task_rate_per_s, whose values are not seconds but
 * read through the same shapes. integer: the plain form must be an integer. */
static int get_num_or_dist(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                           double max, int integer, struct sim_dist *d)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (json_is_object(v)) {
        char p[SIM_JSON_PATH_LEN];
        sim_json_join(p, path, key);
        return parse_dist(c, v, p, 0, d);
    }
    double x = 0;
    if (integer) {
        long long n = 0;
        if (sim_json_int(c, obj, path, key, 0, (long long)max, &n) != 0)
            return -1;
        x = (double)n;
    } else if (sim_json_num(c, obj, path, key, 0.0, max, &x) != 0) {
        return -1;
    }
    *d = (struct sim_dist){.kind = SIM_DIST_CONST, .a = x};
    return 0;
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return 0;
    }
    return 1;
}

static int parse_taskrouter(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"workspace_sid",    "queues",   "workers_per_queue",
                                          "task_rate_per_s",  "handle_s", "abandon_s",
                                          "stalled_queues",   "warmup_s", "bulk_wait_durations",
                                          "rate_limit_per_s", "rate_429", "fail_page",
                                          "fail_mode",        "latency",  NULL};
    const char *p = "taskrouter";
    if (sim_json_object(c, v, p, allowed) ||
        sim_json_str(c, v, p, "workspace_sid", &sc->tr_workspace_sid) ||
        sim_json_int_field(c, v, p, "queues", 0, SIM_TR_MAX_QUEUES, &sc->tr_queues) ||
        get_num_or_dist(c, v, p, "workers_per_queue", SIM_TR_MAX_WORKERS, 1, &sc->tr_workers) ||
        get_num_or_dist(c, v, p, "task_rate_per_s", SIM_TR_MAX_RATE, 0, &sc->tr_task_rate) ||
        get_dist(c, v, p, "handle_s", 0, &sc->tr_handle) ||
        get_dist(c, v, p, "abandon_s", 1, &sc->tr_abandon) ||
        sim_json_int_field(c, v, p, "stalled_queues", 0, SIM_TR_MAX_QUEUES,
                           &sc->tr_stalled_queues) ||
        sim_json_num(c, v, p, "warmup_s", 0.0, SIM_TR_MAX_WARMUP_S, &sc->tr_warmup_s) ||
        sim_json_bool(c, v, p, "bulk_wait_durations", &sc->tr_bulk_wait_durations) ||
        sim_json_num(c, v, p, "rate_limit_per_s", 0.001, MAX_RATE, &sc->tr_rate_limit_per_s) ||
        get_prob(c, v, p, "rate_429", &sc->tr_rate_429) ||
        sim_json_int_field(c, v, p, "fail_page", -1, 1000000, &sc->tr_fail_page) ||
        get_dist(c, v, p, "latency", 1, &sc->tr_latency))
        return -1;
    const char *ws = sc->tr_workspace_sid;
    if (strlen(ws) != 34 || strncmp(ws, "WS", 2) != 0 || !is_hex(ws + 2, 32))
        return sim_json_fail(c, "taskrouter.workspace_sid",
                             "must be \"WS\" followed by 32 hex digits");
    if (sc->tr_stalled_queues > sc->tr_queues)
        return sim_json_fail(c, "taskrouter.stalled_queues", "must not exceed taskrouter.queues");
    json_t *m = json_object_get(v, "fail_mode");
    if (m) {
        const char *s = json_string_value(m);
        if (s && strcmp(s, "500") == 0)
            sc->tr_fail_garbage = 0;
        else if (s && strcmp(s, "garbage") == 0)
            sc->tr_fail_garbage = 1;
        else
            return sim_json_fail(c, "taskrouter.fail_mode", "must be \"500\" or \"garbage\"");
    }
    return 0;
}

/* ---- accounts ---- */

/* A string member that may be null: null stores "" (none). */
static int get_str_or_null(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                           char **out)
{
    json_t *v = json_object_get(obj, key);
    if (v && json_is_null(v)) {
        free(*out);
        *out = cg_strdup("");
        return 0;
    }
    return sim_json_str(c, obj, path, key, out);
}

/* "GET" or "POST", as Twilio spells them. */
static int get_method(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                      char **out)
{
    if (sim_json_str(c, obj, path, key, out) != 0)
        return -1;
    if (strcmp(*out, "GET") != 0 && strcmp(*out, "POST") != 0) {
        char p[SIM_JSON_PATH_LEN];
        sim_json_join(p, path, key);
        return sim_json_fail(c, p, "must be \"GET\" or \"POST\"");
    }
    return 0;
}

static void number_free(struct sim_number *n)
{
    free(n->phone_number);
    free(n->voice_url);
    free(n->voice_method);
    free(n->status_callback);
    free(n->status_callback_method);
    memset(n, 0, sizeof(*n));
}

static void number_default(struct sim_number *n, const char *phone_number)
{
    n->phone_number = cg_strdup(phone_number);
    n->voice_method = cg_strdup("POST");
    n->status_callback_method = cg_strdup("POST");
}

static int parse_numbers(struct sim_jctx *c, const json_t *arr, struct sim_accounts *a)
{
    static const char *const allowed[] = {"phone_number",           "voice_url",
                                          "voice_method",           "status_callback",
                                          "status_callback_method", NULL};
    if (!json_is_array(arr))
        return sim_json_fail(c, "accounts.twilio.numbers", "expected an array");
    if (json_array_size(arr) > SIM_MAX_NUMBERS)
        return sim_json_fail(c, "accounts.twilio.numbers", "at most %d numbers", SIM_MAX_NUMBERS);
    for (size_t i = 0; i < a->nnumbers; i++)
        number_free(&a->numbers[i]);
    a->nnumbers = 0;
    size_t i;
    json_t *o;
    json_array_foreach (arr, i, o) {
        char p[SIM_JSON_PATH_LEN];
        snprintf(p, sizeof(p), "accounts.twilio.numbers[%zu]", i);
        struct sim_number *n = &a->numbers[a->nnumbers++];
        number_default(n, "+15550100000");
        if (sim_json_object(c, o, p, allowed) || sim_json_require(c, o, p, "phone_number") ||
            sim_json_str(c, o, p, "phone_number", &n->phone_number) ||
            get_str_or_null(c, o, p, "voice_url", &n->voice_url) ||
            get_method(c, o, p, "voice_method", &n->voice_method) ||
            get_str_or_null(c, o, p, "status_callback", &n->status_callback) ||
            get_method(c, o, p, "status_callback_method", &n->status_callback_method))
            return -1;
        if (!sim_json_is_e164(n->phone_number))
            return sim_json_fail(c, p, "phone_number must be E.164 (+ and up to 15 digits)");
        for (size_t k = 0; k + 1 < a->nnumbers; k++)
            if (strcmp(a->numbers[k].phone_number, n->phone_number) == 0)
                return sim_json_fail(c, p, "phone_number %s is listed twice", n->phone_number);
    }
    return 0;
}

static int parse_assistant(struct sim_jctx *c, const json_t *v, struct sim_accounts *a)
{
    static const char *const allowed[] = {"id", "name", "server_url", "server_messages", NULL};
    const char *p = "accounts.vapi.assistant";
    if (sim_json_object(c, v, p, allowed) || sim_json_str(c, v, p, "id", &a->assistant_id) ||
        sim_json_str(c, v, p, "name", &a->assistant_name) ||
        get_str_or_null(c, v, p, "server_url", &a->assistant_server_url))
        return -1;
    json_t *m = json_object_get(v, "server_messages");
    if (!m)
        return 0;
    if (json_is_null(m)) {
        a->server_messages_mode = -1;
        return 0;
    }
    if (!json_is_array(m) || json_array_size(m) > SIM_MAX_SERVER_MESSAGES)
        return sim_json_fail(c, "accounts.vapi.assistant.server_messages",
                             "expected null or an array of at most %d strings",
                             SIM_MAX_SERVER_MESSAGES);
    a->server_messages_mode = 1;
    size_t i;
    json_t *it;
    json_array_foreach (m, i, it) {
        if (!json_is_string(it) || json_string_length(it) == 0 ||
            json_string_length(it) > SIM_JSON_MAX_STRING)
            return sim_json_fail(c, "accounts.vapi.assistant.server_messages",
                                 "expected non-empty strings");
        a->server_messages[a->nserver_messages++] = cg_strdup(json_string_value(it));
    }
    return 0;
}

static int parse_accounts(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"twilio", "vapi", NULL};
    static const char *const tw_allowed[] = {"friendly_name", "status", "numbers", NULL};
    static const char *const vapi_allowed[] = {"assistant", "phone_number", NULL};
    static const char *const pn_allowed[] = {"id", "number", "assistant_id", NULL};
    struct sim_accounts *a = &sc->acc;
    if (sim_json_object(c, v, "accounts", allowed))
        return -1;
    json_t *tw = json_object_get(v, "twilio");
    if (tw) {
        const char *p = "accounts.twilio";
        if (sim_json_object(c, tw, p, tw_allowed) ||
            sim_json_str(c, tw, p, "friendly_name", &a->twilio_friendly_name) ||
            sim_json_str(c, tw, p, "status", &a->twilio_status))
            return -1;
        if (strcmp(a->twilio_status, "active") != 0 && strcmp(a->twilio_status, "suspended") != 0 &&
            strcmp(a->twilio_status, "closed") != 0)
            return sim_json_fail(c, "accounts.twilio.status",
                                 "must be \"active\", \"suspended\" or \"closed\"");
        json_t *nums = json_object_get(tw, "numbers");
        if (nums && parse_numbers(c, nums, a) != 0)
            return -1;
    }
    json_t *vp = json_object_get(v, "vapi");
    if (!vp)
        return 0;
    if (sim_json_object(c, vp, "accounts.vapi", vapi_allowed))
        return -1;
    json_t *as = json_object_get(vp, "assistant");
    if (as && parse_assistant(c, as, a) != 0)
        return -1;
    json_t *pn = json_object_get(vp, "phone_number");
    if (pn) {
        const char *p = "accounts.vapi.phone_number";
        if (sim_json_object(c, pn, p, pn_allowed) ||
            sim_json_str(c, pn, p, "id", &a->phone_number_id) ||
            sim_json_str(c, pn, p, "number", &a->phone_number) ||
            get_str_or_null(c, pn, p, "assistant_id", &a->phone_assistant_id))
            return -1;
        if (a->phone_number && !sim_json_is_e164(a->phone_number))
            return sim_json_fail(c, "accounts.vapi.phone_number.number",
                                 "must be E.164 (+ and up to 15 digits)");
    }
    return 0;
}

static void accounts_defaults(struct sim_accounts *a)
{
    memset(a, 0, sizeof(*a));
    a->twilio_friendly_name = cg_strdup("callgate-sim");
    a->twilio_status = cg_strdup("active");
    number_default(&a->numbers[0], "+15550100000");
    a->nnumbers = 1;
    a->assistant_id = cg_strdup("sim-assistant");
    a->assistant_name = cg_strdup("callgate-sim assistant");
    a->phone_number_id = cg_strdup("sim-phone-number");
}

static void accounts_free(struct sim_accounts *a)
{
    free(a->twilio_friendly_name);
    free(a->twilio_status);
    for (size_t i = 0; i < a->nnumbers; i++)
        number_free(&a->numbers[i]);
    free(a->assistant_id);
    free(a->assistant_name);
    free(a->assistant_server_url);
    for (size_t i = 0; i < a->nserver_messages; i++)
        free(a->server_messages[i]);
    free(a->phone_number_id);
    free(a->phone_number);
    free(a->phone_assistant_id);
    memset(a, 0, sizeof(*a));
}

static int parse_expect(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"lost",
                                          "max_overlimit_rejections",
                                          "final_active",
                                          "final_waiting",
                                          "max_idle_slot_s",
                                          "min_connected",
                                          "max_refill_ms",
                                          NULL};
    const char *p = "expect";
    if (sim_json_object(c, v, p, allowed) || get_expect(c, v, p, "lost", &sc->expect_lost) ||
        get_expect(c, v, p, "max_overlimit_rejections", &sc->expect_max_overlimit) ||
        get_expect(c, v, p, "final_active", &sc->expect_final_active) ||
        get_expect(c, v, p, "final_waiting", &sc->expect_final_waiting) ||
        get_expect(c, v, p, "min_connected", &sc->expect_min_connected))
        return -1;
    json_t *idle = json_object_get(v, "max_idle_slot_s");
    if (idle && json_is_null(idle))
        sc->expect_max_idle_slot_s = -1;
    else if (idle && get_seconds(c, v, p, "max_idle_slot_s", &sc->expect_max_idle_slot_s))
        return -1;
    if (json_object_get(v, "max_refill_ms") &&
        sim_json_num(c, v, p, "max_refill_ms", 0, 1e9, &sc->expect_max_refill_ms))
        return -1;
    return 0;
}

/* A destination number as Vapi allows it: 3 to 40 of digits and '+'. */
static int bad_number(const char *s)
{
    size_t n = strlen(s);
    return n < 3 || n > 40 || strspn(s, "+0123456789") != n;
}

static int parse_callbacks(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {"press1", "answer",   "busy",       "machine",
                                          "ring_s", "attempts", "min_within", NULL};
    const char *p = "callbacks";
    struct sim_callbacks *k = &sc->callbacks;
    long long attempts = k->attempts;
    if (sim_json_object(c, v, p, allowed) || get_prob(c, v, p, "press1", &k->press1) ||
        get_prob(c, v, p, "answer", &k->answer) || get_prob(c, v, p, "busy", &k->busy) ||
        get_prob(c, v, p, "machine", &k->machine) || get_seconds(c, v, p, "ring_s", &k->ring_s) ||
        sim_json_int(c, v, p, "attempts", 1, 10, &attempts) ||
        get_prob(c, v, p, "min_within", &k->min_within))
        return -1;
    k->attempts = (long)attempts;
    if (k->answer + k->busy + k->machine > 1.0)
        return sim_json_fail(c, p, "answer + busy + machine must be at most 1");
    return 0;
}

static int parse_transfers(struct sim_jctx *c, const json_t *v, struct sim_scenario *sc)
{
    static const char *const allowed[] = {
        "share",          "after_s",          "weights",  "number", "sip_uri", "queue_number",
        "invalid_number", "no_answer_number", "answer_s", "talk_s", NULL};
    static const char *const kinds[] = {"number",  "sip",       "queue", "hangup",
                                        "refused", "no_answer", NULL};
    const char *p = "transfers";
    struct sim_transfers *t = &sc->transfers;
    if (sim_json_object(c, v, p, allowed) || get_prob(c, v, p, "share", &t->share) ||
        get_seconds(c, v, p, "after_s", &t->after_s) ||
        sim_json_str(c, v, p, "number", &t->number) ||
        sim_json_str(c, v, p, "sip_uri", &t->sip_uri) ||
        sim_json_str(c, v, p, "queue_number", &t->queue_number) ||
        sim_json_str(c, v, p, "invalid_number", &t->invalid_number) ||
        sim_json_str(c, v, p, "no_answer_number", &t->no_answer_number) ||
        get_seconds(c, v, p, "answer_s", &t->answer_s) ||
        get_seconds(c, v, p, "talk_s", &t->talk_s))
        return -1;
    const json_t *w = json_object_get(v, "weights");
    if (w) {
        double *slots[] = {&t->w_number, &t->w_sip,     &t->w_queue,
                           &t->w_hangup, &t->w_refused, &t->w_no_answer};
        if (sim_json_object(c, w, "transfers.weights", kinds))
            return -1;
        for (size_t i = 0; kinds[i]; i++) {
            *slots[i] = 0;
            if (sim_json_num(c, w, "transfers.weights", kinds[i], 0, 1e6, slots[i]))
                return -1;
        }
    }
    double sum = t->w_number + t->w_sip + t->w_queue + t->w_hangup + t->w_refused + t->w_no_answer;
    if (t->share > 0 && !(sum > 0))
        return sim_json_fail(c, "transfers.weights", "at least one weight must be above 0");
    const char *nums[] = {t->number, t->queue_number, t->invalid_number, t->no_answer_number};
    const char *names[] = {"number", "queue_number", "invalid_number", "no_answer_number"};
    for (size_t i = 0; i < 4; i++)
        if (bad_number(nums[i]))
            return sim_json_fail(c, "transfers", "%s must be 3 to 40 digits or '+'", names[i]);
    for (size_t i = 0; i < 4; i++)
        for (size_t k = i + 1; k < 4; k++)
            if (strcmp(nums[i], nums[k]) == 0)
                return sim_json_fail(c, "transfers", "%s and %s must differ", names[i], names[k]);
    if (strncmp(t->sip_uri, "sip:", 4) != 0 || strlen(t->sip_uri) > 256 ||
        strpbrk(t->sip_uri, " \"<>'") != NULL)
        return sim_json_fail(c, "transfers.sip_uri", "must be a sip: URI without spaces or quotes");
    return 0;
}

static void set_defaults(struct sim_scenario *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->name = cg_strdup("scenario");
    sc->seed = 1;
    sc->duration_s = 10;
    sc->drain_s = 30;
    sc->arrival = SIM_ARRIVAL_POISSON;
    sc->rate_per_s = 1;
    sc->duration = (struct sim_dist){.kind = SIM_DIST_EXP, .a = 2, .min_s = 0.2, .max_s = 30};
    sc->patience = (struct sim_dist){.kind = SIM_DIST_NONE};

    sc->twilio_account_sid = cg_strdup("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    sc->twilio_auth_token = cg_strdup("sim-auth-token");
    sc->callbacks =
        (struct sim_callbacks){.answer = 1, .ring_s = 2, .attempts = 3, .min_within = -1};
    sc->transfers = (struct sim_transfers){.after_s = 0.3,
                                           .w_number = 1,
                                           .w_sip = 1,
                                           .w_queue = 1,
                                           .w_hangup = 1,
                                           .number = cg_strdup("+15557770100"),
                                           .sip_uri = cg_strdup("sip:desk@pbx.sim.local"),
                                           .queue_number = cg_strdup("+15550009999"),
                                           .invalid_number = cg_strdup("+15550000000"),
                                           .no_answer_number = cg_strdup("+15550000001"),
                                           .answer_s = 0.2,
                                           .talk_s = 0.5};
    sc->expect_max_refill_ms = -1;
    sc->queue_max_size = 1000;
    sc->say_s_per_char = 0.001;
    sc->play_s = 0.5;
    sc->redirect_posts_action = 1;
    sc->completed_again_200 = 0;
    sc->twilio_latency.kind = SIM_DIST_NONE;
    sc->twilio_hooks.delay.kind = SIM_DIST_NONE;

    sc->vapi_api_key = cg_strdup("sim-vapi-key");
    sc->vapi_limit = 10;
    sc->vapi_server_secret = cg_strdup("sim-vapi-secret");
    sc->vapi_overlimit_blocked = 0;
    sc->vapi_end_lag_s = 0.2;
    sc->vapi_report_lag_s = 0.3;
    sc->vapi_no_stream_timeout_s = 5;
    sc->vapi_max_duration_s = 600;
    sc->vapi_visibility_lag_s = 0;
    sc->vapi_latency.kind = SIM_DIST_NONE;
    sc->vapi_hooks.delay.kind = SIM_DIST_NONE;

    sc->tr_workspace_sid = cg_strdup("WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    sc->tr_queues = 0;
    sc->tr_workers = (struct sim_dist){.kind = SIM_DIST_CONST, .a = 3};
    sc->tr_task_rate = (struct sim_dist){.kind = SIM_DIST_CONST, .a = 0.08};
    sc->tr_handle = (struct sim_dist){.kind = SIM_DIST_EXP, .a = 30, .min_s = 1, .max_s = 600};
    sc->tr_abandon.kind = SIM_DIST_NONE;
    sc->tr_stalled_queues = 0;
    sc->tr_warmup_s = 0;
    sc->tr_bulk_wait_durations = 1;
    sc->tr_rate_limit_per_s = 50;
    sc->tr_rate_429 = 0;
    sc->tr_fail_page = -1;
    sc->tr_fail_garbage = 0;
    sc->tr_latency.kind = SIM_DIST_NONE;

    accounts_defaults(&sc->acc);

    sc->expect_lost = 0;
    sc->expect_max_overlimit = 0;
    sc->expect_final_active = 0;
    sc->expect_final_waiting = 0;
    sc->expect_max_idle_slot_s = -1;
    sc->expect_min_connected = -1;
}

/* "routes", "route_checks", "dialer" (scenario_routes.h): one organization
 * limit shared by every route, so the minimums must fit in it; arrivals are
 * per route then. */
static int parse_routes(struct sim_jctx *c, const json_t *root, struct sim_scenario *sc)
{
    if (sim_routes_cfg_parse(root, sc->duration_s, &sc->routes, c->err, c->errlen) != 0)
        return -1;
    if (!sc->routes)
        return 0;
    const json_t *callers = json_object_get(root, "callers");
    if (callers && json_object_get(callers, "arrivals"))
        return sim_json_fail(c, "callers.arrivals",
                             "with routes, arrivals are per route "
                             "(routes[].callers.arrivals)");
    long mins = 0;
    for (size_t i = 0; i < sc->routes->n; i++) {
        mins += sc->routes->r[i].min;
        if (sc->routes->r[i].max > sc->vapi_limit)
            return sim_json_fail(c, "routes", "route %s: max %d is above vapi.limit %d",
                                 sc->routes->r[i].name, sc->routes->r[i].max, sc->vapi_limit);
    }
    if (mins > sc->vapi_limit)
        return sim_json_fail(c, "routes", "the sum of the mins (%ld) is above vapi.limit %d", mins,
                             sc->vapi_limit);
    /* The Twilio account holds every route's numbers, set up right, unless
     * the scenario lists its own. */
    const json_t *tw = json_object_get(json_object_get(root, "accounts"), "twilio");
    if (!json_object_get(tw, "numbers")) {
        struct sim_accounts *a = &sc->acc;
        for (size_t i = 0; i < a->nnumbers; i++)
            number_free(&a->numbers[i]);
        a->nnumbers = 0;
        for (size_t i = 0; i < sc->routes->n; i++)
            for (size_t k = 0; k < sc->routes->r[i].nnumbers && a->nnumbers < SIM_MAX_NUMBERS; k++)
                number_default(&a->numbers[a->nnumbers++], sc->routes->r[i].numbers[k]);
    }
    return 0;
}

static int parse(struct sim_scenario *sc, const char *json, size_t len, char *err, size_t errlen,
                 int *named)
{
    struct sim_jctx c = {err, errlen};
    *named = 0;
    if (errlen > 0)
        err[0] = '\0';
    set_defaults(sc);

    char jerr[160];
    json_t *root = cg_json_parse(json, len, CG_JSON_MAX_DEPTH, jerr, sizeof(jerr));
    if (!root) {
        sim_json_fail(&c, "", "invalid JSON: %s", jerr);
        sim_scenario_free(sc);
        set_defaults(sc); /* leave a usable value behind */
        return -1;
    }
    static const char *const allowed[] = {
        "name",      "description", "seed",         "duration_s", "drain_s",   "callers",
        "twilio",    "vapi",        "expect",       "taskrouter", "balancer",  "accounts",
        "transfers", "routes",      "route_checks", "dialer",     "callbacks", NULL};
    long long seed = 1;
    int rc = sim_json_object(&c, root, "", allowed) ||
             sim_json_str(&c, root, "", "name", &sc->name) ||
             sim_json_int(&c, root, "", "seed", 0, 0x7fffffffffffffffLL, &seed) ||
             get_seconds(&c, root, "", "duration_s", &sc->duration_s) ||
             get_seconds(&c, root, "", "drain_s", &sc->drain_s);
    if (rc == 0) {
        sc->seed = (unsigned long long)seed;
        json_t *d = json_object_get(root, "description");
        if (d && !json_is_string(d))
            rc = sim_json_fail(&c, "description", "expected a string");
    }
    json_t *v;
    if (rc == 0 && (v = json_object_get(root, "callers")) != NULL)
        rc = parse_callers(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "twilio")) != NULL)
        rc = parse_twilio(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "vapi")) != NULL)
        rc = parse_vapi(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "expect")) != NULL)
        rc = parse_expect(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "callbacks")) != NULL)
        rc = parse_callbacks(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "taskrouter")) != NULL)
        rc = parse_taskrouter(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "transfers")) != NULL)
        rc = parse_transfers(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "balancer")) != NULL)
        rc = parse_balancer(&c, v, sc);
    if (rc == 0 && (v = json_object_get(root, "accounts")) != NULL)
        rc = parse_accounts(&c, v, sc);
    if (rc == 0)
        rc = parse_routes(&c, root, sc);
    *named = json_object_get(root, "name") != NULL;
    json_decref(root);
    if (rc != 0) {
        sim_scenario_free(sc);
        set_defaults(sc);
        return -1;
    }
    return 0;
}

int sim_scenario_parse(struct sim_scenario *sc, const char *json, size_t len, char *err,
                       size_t errlen)
{
    int named;
    return parse(sc, json, len, err, errlen, &named);
}

int sim_scenario_load(struct sim_scenario *sc, const char *path, char *err, size_t errlen)
{
    set_defaults(sc);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = cg_malloc(MAX_FILE_BYTES + 1);
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || n > MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: %s", path, rerr ? "read error" : "file too large");
        free(buf);
        return -1;
    }
    sim_scenario_free(sc);
    char sub[256];
    int named = 0;
    int rc = parse(sc, buf, n, sub, sizeof(sub), &named);
    free(buf);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, sub);
        return -1;
    }
    /* Without a name, the file's base name (sans .json) names the run. */
    if (!named) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t bl = strlen(base);
        if (bl > 5 && strcmp(base + bl - 5, ".json") == 0)
            bl -= 5;
        if (bl > 0 && bl <= SIM_JSON_MAX_STRING) {
            free(sc->name);
            sc->name = cg_strndup(base, bl);
        }
    }
    return 0;
}

void sim_scenario_free(struct sim_scenario *sc)
{
    free(sc->name);
    free(sc->segments);
    free(sc->twilio_account_sid);
    free(sc->twilio_auth_token);
    free(sc->vapi_api_key);
    free(sc->vapi_server_secret);
    free(sc->tr_workspace_sid);
    sc->tr_workspace_sid = NULL;
    free(sc->transfers.number);
    free(sc->transfers.sip_uri);
    free(sc->transfers.queue_number);
    free(sc->transfers.invalid_number);
    free(sc->transfers.no_answer_number);
    memset(&sc->transfers, 0, sizeof sc->transfers);
    accounts_free(&sc->acc);
    sim_routes_cfg_free(sc->routes);
    sc->routes = NULL;
    sc->name = NULL;
    sc->segments = NULL;
    sc->nsegments = 0;
    sc->twilio_account_sid = NULL;
    sc->twilio_auth_token = NULL;
    sc->vapi_api_key = NULL;
    sc->vapi_server_secret = NULL;
}
