#include "base/fmacros.h"

#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "gate/gate.h"
#include "gate/keys.h"
#include "gate/route_figures.h"
#include "net/httpd.h"
#include "net/redis.h"

/* KEYS: waiting, active, limit. ARGV: 1 the configured limit, used until an
 * operator changes it at runtime (or lowered to the lowest of the gate's
 * live instances: gate/instances.h); 2 the gate's key prefix. Returns active,
 * waiting, limit, the limit admission obeys now (lowered after Vapi said
 * it is over its own limit), and the longest wait of the first callers in
 * line in ms (an adopted caller's wait began before their ticket), and 1
 * when the slots are known to agree with Vapi (the marker repair.h sets; 0:
 * admission waits for their repair). */
static const char health_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local waiting = redis.call('ZCARD', KEYS[1])\n"
    "local active = redis.call('ZCARD', KEYS[2])\n"
    "local limit = tonumber(redis.call('GET', KEYS[3]))\n"
    "if not limit then\n"
    "  limit = tonumber(ARGV[1])\n"
    "  local lowest = tonumber(redis.call('GET', ARGV[2] .. 'instances_min'))\n"
    "  if lowest and lowest < limit then limit = lowest end\n"
    "end\n"
    "local eff = limit\n"
    "local cap = tonumber(redis.call('GET', ARGV[2] .. 'cap'))\n"
    "if cap and cap < eff then eff = cap end\n"
    "local oldest = 0\n"
    "for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, 15)) do\n"
    "  local enq = tonumber(redis.call('HGET', ARGV[2] .. 'call:' .. sid, 'enqueued_at'))\n"
    "  if enq and now - enq > oldest then oldest = now - enq end\n"
    "end\n"
    "local intact = redis.call('EXISTS', ARGV[2] .. 'intact')\n"
    "return {active, waiting, limit, eff, oldest, intact}\n";

struct cg_health {
    struct cg_redis *redis;
    const struct cg_keys *keys;
    const struct cg_config *cfg;
    const struct cg_gate *gate;
    int script;
    int ready;
};

static void append_services(struct cg_buf *b, unsigned services)
{
    cg_buf_appends(b, ",\"services\":[");
    int first = 1;
    if (services & CG_SERVICE_GATE) {
        cg_buf_appends(b, "\"gate\"");
        first = 0;
    }
    if (services & CG_SERVICE_WAITTIME)
        cg_buf_appends(b, first ? "\"waittime\"" : ",\"waittime\"");
    cg_buf_appends(b, "]");
}

static void reply_degraded(struct cg_http_req *req, const struct cg_health *h)
{
    int up = cg_redis_state(h->redis) == CG_REDIS_READY;
    struct cg_buf b;
    cg_buf_init(&b, 1024);
    cg_buf_printf(&b,
                  "{\"status\":\"degraded\",\"activeCalls\":null,\"callsInQueue\":null,"
                  "\"maxConcurrency\":%d,\"availableCapacity\":null,\"redis\":\"%s\","
                  "\"reason\":\"%s\"",
                  h->cfg->max_concurrency, up ? "error" : "disconnected",
                  up ? "redis answered with an error" : "redis is unavailable");
    append_services(&b, h->cfg->services);
    cg_buf_appends(&b, "}");
    cg_http_reply_json(req, 503, cg_buf_str(&b));
    cg_buf_free(&b);
}

struct pending {
    struct cg_http_req *req;
    struct cg_health *h;
    long long active, waiting, limit, eff, oldest_ms, intact;
};

/* The answer, with each route's figures when the gate has routes
 * (ROUTES_FILE; v NULL and routes_ok 0 otherwise or when Redis did not
 * give them). */
static void answer(struct pending *p, const struct gate_route_fig *v, size_t n, int routes_ok)
{
    struct cg_health *h = p->h;
    long long active = p->active, waiting = p->waiting, limit = p->limit, eff = p->eff;
    long long oldest_ms = p->oldest_ms;
    long long avail = limit > active ? limit - active : 0;

    /* Why the gate cannot do its work though Redis answers. A caller
     * beside a free slot is admitted in the same step that frees it, so
     * one who has waited a while while a slot is free means admission is
     * not running (every instance backing off, or none alive with the
     * gate on). With routes, a caller may wait beside a free slot because
     * their route is at its max: stuck only when a route with callers
     * waiting is below its max. */
    char reason[1536] = "";
    const char *auth = h->gate ? cg_gate_auth_problem(h->gate) : NULL;
    int stuck = h->gate && waiting > 0 && eff > active && oldest_ms >= CG_HEALTH_STUCK_MS;
    if (stuck && h->cfg->routes.n > 0 && routes_ok) {
        int room = 0;
        for (size_t i = 0; i < n; i++)
            room |= v[i].waiting > 0 && v[i].active < v[i].max;
        stuck = room;
    }
    if (stuck)
        snprintf(reason, sizeof reason,
                 "callers wait beside a free slot: the oldest for %llds with %lld of %lld slots "
                 "free",
                 oldest_ms / 1000, eff - active, eff);
    if (auth != NULL)
        snprintf(reason + strlen(reason), sizeof reason - strlen(reason), "%s%s",
                 reason[0] ? "; " : "", auth);
    /* Instances of the gate that disagree on its settings: the gate works
     * (at the lowest MAX_CONCURRENCY), but one of them is misconfigured. */
    struct cg_gate_instances_view inst = {0};
    if (h->gate != NULL)
        cg_gate_instances_state(h->gate, &inst);
    if (inst.problem != NULL)
        snprintf(reason + strlen(reason), sizeof reason - strlen(reason), "%s%s",
                 reason[0] ? "; " : "", inst.problem);

    struct cg_buf b;
    cg_buf_init(&b, 16384);
    cg_buf_printf(&b,
                  "{\"status\":\"%s\",\"activeCalls\":%lld,\"callsInQueue\":%lld,"
                  "\"maxConcurrency\":%lld,\"availableCapacity\":%lld,\"redis\":\"connected\","
                  "\"oldestWaitSeconds\":%lld",
                  reason[0] ? "degraded" : "healthy", active, waiting, limit, avail,
                  oldest_ms / 1000);
    /* Admission waits for the slots' repair from Vapi's live calls after
     * Redis lost writes (or on a fresh Redis): healthy, but nobody is
     * admitted until it ends (repair.h), usually within a second. */
    if (h->gate != NULL)
        cg_buf_printf(&b, ",\"admission\":\"%s\"", p->intact ? "running" : "repairing");
    if (h->gate != NULL)
        cg_buf_printf(&b, ",\"instances\":%ld,\"instancesDisagreeing\":%ld", inst.live,
                      inst.disagreeing);
    if (reason[0]) {
        cg_buf_appends(&b, ",\"reason\":");
        cg_buf_append_json_str(&b, reason, strlen(reason));
    }
    append_services(&b, h->cfg->services);
    if (h->gate != NULL && h->cfg->routes.n > 0) {
        cg_buf_appends(&b, ",\"routes\":");
        if (routes_ok)
            gate_route_figures_json(&b, v, n);
        else
            cg_buf_appends(&b, "null");
    }
    cg_buf_appends(&b, "}");
    cg_http_reply_json(p->req, 200, cg_buf_str(&b));
    cg_buf_free(&b);
    free(p);
}

static void on_routes(const struct gate_route_fig *v, size_t n, int ok, void *arg)
{
    answer(arg, v, n, ok);
}

static void on_stats(const redisReply *r, const char *err, void *arg)
{
    struct pending *p = arg;
    struct cg_health *h = p->h;
    if (err != NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        reply_degraded(p->req, h);
        free(p);
        return;
    }
    for (size_t i = 0; i < 6; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER) {
            reply_degraded(p->req, h);
            free(p);
            return;
        }
    }
    p->active = r->element[0]->integer;
    p->waiting = r->element[1]->integer;
    p->limit = r->element[2]->integer;
    p->eff = r->element[3]->integer;
    p->oldest_ms = r->element[4]->integer;
    p->intact = r->element[5]->integer;
    /* The gate's own figures are only read here: the cast lends it the
     * store for one read. */
    if (h->gate != NULL && h->cfg->routes.n > 0 &&
        gate_route_figures((struct cg_gate *)h->gate, on_routes, p) == 0)
        return;
    answer(p, NULL, 0, 0);
}

static void handle_health(struct cg_http_req *req, void *arg)
{
    struct cg_health *h = arg;
    if (cg_redis_state(h->redis) != CG_REDIS_READY) {
        reply_degraded(req, h);
        return;
    }
    char limit[16];
    snprintf(limit, sizeof limit, "%d", h->cfg->max_concurrency);
    const char *args[] = {h->keys->waiting, h->keys->active, h->keys->limit, limit,
                          h->keys->prefix};
    struct pending *p = cg_malloc(sizeof *p);
    p->req = req;
    p->h = h;
    if (cg_redis_eval(h->redis, h->script, 3, 5, args, NULL, on_stats, p) != 0) {
        free(p);
        reply_degraded(req, h);
    }
}

/* The loop turned and answered: nothing else is asked of a liveness probe,
 * so that a restart is never the answer to a dependency's outage. */
static void handle_livez(struct cg_http_req *req, void *arg)
{
    (void)arg;
    cg_http_reply_json(req, 200, "{\"status\":\"alive\"}");
}

static void handle_readyz(struct cg_http_req *req, void *arg)
{
    struct cg_health *h = arg;
    if (h->ready != 1) {
        cg_http_reply_json(
            req, 503, h->ready == 0 ? "{\"status\":\"starting\"}" : "{\"status\":\"draining\"}");
        return;
    }
    cg_http_reply_json(req, 200,
                       cg_redis_state(h->redis) == CG_REDIS_READY
                           ? "{\"status\":\"ready\",\"redis\":\"connected\"}"
                           : "{\"status\":\"ready\",\"redis\":\"disconnected\"}");
}

struct cg_health *cg_health_new(struct cg_httpd *httpd, struct cg_redis *redis,
                                const struct cg_keys *keys, const struct cg_config *cfg,
                                const struct cg_gate *gate)
{
    struct cg_health *h = cg_calloc(1, sizeof *h);
    h->redis = redis;
    h->keys = keys;
    h->cfg = cfg;
    h->gate = gate;
    h->script = cg_redis_script(redis, "health", health_lua);
    if (h->script < 0 || cg_httpd_route(httpd, "/health", CG_HTTP_GET, handle_health, h) != 0 ||
        cg_httpd_route(httpd, "/livez", CG_HTTP_GET, handle_livez, h) != 0 ||
        cg_httpd_route(httpd, "/readyz", CG_HTTP_GET, handle_readyz, h) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

void cg_health_set_ready(struct cg_health *h, int ready)
{
    /* 0 before the first "ready", -1 once draining: never ready again. */
    if (h->ready == -1)
        return;
    h->ready = ready ? 1 : (h->ready == 1 ? -1 : 0);
}

void cg_health_free(struct cg_health *h)
{
    free(h);
}
