#include "base/fmacros.h"

#include "gate/routes.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/log.h"
#include "gate/store.h"

const struct cg_route *gate_route_for(const struct cg_config *cfg, const char *to)
{
    if (cfg->routes.n == 0)
        return NULL;
    const struct cg_route *rt = cg_routes_by_number(&cfg->routes, to);
    return rt ? rt : &cfg->routes.v[0];
}

const struct cg_route *gate_route_named(const struct cg_config *cfg, const char *name)
{
    return cg_routes_by_name(&cfg->routes, name);
}

const char *gate_route_queue(const struct cg_config *cfg, const struct cg_route *rt)
{
    return rt ? rt->queue : cfg->twilio_queue_name;
}

static void on_published(const struct gate_reply *rep, void *arg)
{
    (void)arg;
    if (rep->err != NULL)
        cg_log_warn("cannot publish the routes; trying again in 10 s", "error=%s", rep->err);
}

int gate_routes_publish(struct gate_store *s, const struct cg_config *cfg)
{
    size_t n = cfg->routes.n;
    const char **names = cg_calloc(n + 1, sizeof *names);
    const char **specs = cg_calloc(n + 1, sizeof *specs);
    char *text = cg_calloc(n + 1, 48);
    for (size_t i = 0; i < n; i++) {
        const struct cg_route *rt = &cfg->routes.v[i];
        names[i] = rt->name;
        snprintf(text + 48 * i, 48, "%d %d %d", rt->min, rt->max, rt->priority);
        specs[i] = text + 48 * i;
    }
    int rc = gate_store_routes(s, cfg->outbound_order ? cfg->outbound_order : "after-inbound", n,
                               names, specs, on_published, NULL);
    free(names);
    free(specs);
    free(text);
    return rc;
}
