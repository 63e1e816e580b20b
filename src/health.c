#include "base/fmacros.h"

#include "health.h"

#include <stdlib.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "net/httpd.h"
#include "gate/keys.h"
#include "net/redis.h"

/* KEYS: waiting, active, limit. ARGV: the configured limit, used until an
 * operator changes it at runtime. */
static const char health_lua[] =
    "local waiting = redis.call('ZCARD', KEYS[1])\n"
    "local active = redis.call('ZCARD', KEYS[2])\n"
    "local limit = tonumber(redis.call('GET', KEYS[3])) or tonumber(ARGV[1])\n"
    "return {active, waiting, limit}\n";

struct cg_health {
    struct cg_redis *redis;
    const struct cg_keys *keys;
    const struct cg_config *cfg;
    int script;
};

static void reply_degraded(struct cg_http_req *req, const struct cg_health *h)
{
    struct cg_buf b;
    cg_buf_init(&b, 1024);
    cg_buf_printf(&b,
                  "{\"status\":\"degraded\",\"activeCalls\":null,\"callsInQueue\":null,"
                  "\"maxConcurrency\":%d,\"availableCapacity\":null,\"redis\":\"%s\"}",
                  h->cfg->max_concurrency,
                  cg_redis_state(h->redis) == CG_REDIS_READY ? "error" : "disconnected");
    cg_http_reply_json(req, 503, cg_buf_str(&b));
    cg_buf_free(&b);
}

struct pending {
    struct cg_http_req *req;
    struct cg_health *h;
};

static void on_stats(const redisReply *r, const char *err, void *arg)
{
    struct pending *p = arg;
    if (err != NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_INTEGER) {
        reply_degraded(p->req, p->h);
        free(p);
        return;
    }
    long long active = r->element[0]->integer;
    long long waiting = r->element[1]->integer;
    long long limit = r->element[2]->integer;
    long long avail = limit > active ? limit - active : 0;
    struct cg_buf b;
    cg_buf_init(&b, 1024);
    cg_buf_printf(&b,
                  "{\"status\":\"healthy\",\"activeCalls\":%lld,\"callsInQueue\":%lld,"
                  "\"maxConcurrency\":%lld,\"availableCapacity\":%lld,\"redis\":\"connected\"}",
                  active, waiting, limit, avail);
    cg_http_reply_json(p->req, 200, cg_buf_str(&b));
    cg_buf_free(&b);
    free(p);
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
    const char *args[] = {h->keys->waiting, h->keys->active, h->keys->limit, limit};
    struct pending *p = cg_malloc(sizeof *p);
    p->req = req;
    p->h = h;
    if (cg_redis_eval(h->redis, h->script, 3, 4, args, NULL, on_stats, p) != 0) {
        free(p);
        reply_degraded(req, h);
    }
}

struct cg_health *cg_health_new(struct cg_httpd *httpd, struct cg_redis *redis,
                                const struct cg_keys *keys, const struct cg_config *cfg)
{
    struct cg_health *h = cg_calloc(1, sizeof *h);
    h->redis = redis;
    h->keys = keys;
    h->cfg = cfg;
    h->script = cg_redis_script(redis, "health", health_lua);
    if (h->script < 0 || cg_httpd_route(httpd, "/health", CG_HTTP_GET, handle_health, h) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

void cg_health_free(struct cg_health *h)
{
    free(h);
}
