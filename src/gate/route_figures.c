#include "base/fmacros.h"

#include "gate/route_figures.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "gate/internal.h"
#include "gate/store.h"

const char *const gate_route_event_names[GATE_ROUTE_EVENTS] = {
    "entered", "admissions", "released", "abandoned", "overflowed",
    "refused", "slots",      "expired",  "outbound",  "failed",
};

#define FIELDS (6 + GATE_ROUTE_EVENTS)

struct fetch {
    gate_route_figures_cb cb;
    void *arg;
};

static void on_figures(const struct gate_reply *rep, void *arg)
{
    struct fetch f = *(struct fetch *)arg;
    free(arg);
    const redisReply *r = rep->r;
    if (rep->err != NULL || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        f.cb(NULL, 0, 0, f.arg);
        return;
    }
    size_t n = r->elements / FIELDS;
    struct gate_route_fig *v = cg_calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        size_t at = i * FIELDS;
        const char *name = cg_redis_reply_str(r, at);
        v[i].name = name ? name : "";
        v[i].waiting = cg_redis_reply_int(r, at + 1, 0);
        v[i].active = cg_redis_reply_int(r, at + 2, 0);
        v[i].min = cg_redis_reply_int(r, at + 3, 0);
        v[i].max = cg_redis_reply_int(r, at + 4, 0);
        v[i].priority = cg_redis_reply_int(r, at + 5, 0);
        for (size_t k = 0; k < GATE_ROUTE_EVENTS; k++)
            v[i].events[k] = cg_redis_reply_int(r, at + 6 + k, 0);
    }
    f.cb(v, n, 1, f.arg);
    free(v);
}

int gate_route_figures(struct cg_gate *g, gate_route_figures_cb cb, void *arg)
{
    struct fetch *f = cg_calloc(1, sizeof *f);
    f->cb = cb;
    f->arg = arg;
    if (gate_store_route_figures(&g->store, on_figures, f) != 0) {
        free(f);
        return -1;
    }
    return 0;
}

int gate_route_figures_json(struct cg_buf *b, const struct gate_route_fig *v, size_t n)
{
    int rc = cg_buf_appendc(b, '[');
    for (size_t i = 0; i < n; i++) {
        rc |= cg_buf_appends(b, i ? ",{\"name\":" : "{\"name\":");
        rc |= cg_buf_append_json_str(b, v[i].name, strlen(v[i].name));
        rc |= cg_buf_printf(b,
                            ",\"waiting\":%lld,\"active\":%lld,\"min\":%lld,\"cap\":%lld,"
                            "\"priority\":%lld,\"refusals\":%lld",
                            v[i].waiting, v[i].active, v[i].min, v[i].max, v[i].priority,
                            v[i].events[4] + v[i].events[5]);
        for (size_t k = 0; k < GATE_ROUTE_EVENTS; k++)
            rc |= cg_buf_printf(b, ",\"%s\":%lld", gate_route_event_names[k], v[i].events[k]);
        rc |= cg_buf_appendc(b, '}');
    }
    rc |= cg_buf_appendc(b, ']');
    return rc;
}
