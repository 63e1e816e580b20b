#include "base/fmacros.h"

#include "gate/dialer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"
#include "gate/access.h"
#include "gate/dialer_parse.h"
#include "gate/internal.h"
#include "gate/routes.h"
#include "gate/store.h"
#include "net/httpd.h"

/* The route a request names: one of ROUTES_FILE, or "default" for a gate
 * of one route. */
static int route_known(const struct cg_gate *g, const char *name)
{
    if (g->cfg->routes.n == 0)
        return strcmp(name, "default") == 0;
    return gate_route_named(g->cfg, name) != NULL;
}

static int jstr(struct cg_buf *b, const char *s)
{
    s = s ? s : "";
    return cg_buf_append_json_str(b, s, strlen(s));
}

static void mint_id(char out[33])
{
    snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, cg_random_u64(), cg_random_u64());
}

struct pending {
    struct cg_gate *g;
    struct cg_http_req *req;
    char id[GATE_DIALER_ID_MAX + 1];
};

static struct pending *pending_new(struct cg_gate *g, struct cg_http_req *req, const char *id)
{
    struct pending *p = cg_calloc(1, sizeof *p);
    p->g = g;
    p->req = req;
    snprintf(p->id, sizeof p->id, "%s", id);
    return p;
}

static int unavailable(struct cg_http_req *req, const struct gate_reply *rep)
{
    if (rep->err == NULL && rep->r != NULL && rep->r->type == REDIS_REPLY_ARRAY &&
        rep->r->elements > 0)
        return 0;
    cg_http_reply_error(req, 503, "unavailable", "state store unavailable");
    return 1;
}

static int verdict_is(const struct gate_reply *rep, const char *v)
{
    const char *s = cg_redis_reply_str(rep->r, 0);
    return s != NULL && strcmp(s, v) == 0;
}

static void reply_lease(struct cg_http_req *req, int status, const char *id, long long expires_ms)
{
    char when[25];
    cg_iso8601_ms((uint64_t)expires_ms, when);
    char body[160];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"expiresAt\":\"%s\"}", id, when);
    cg_http_reply_json(req, status, body);
}

/* ---- POST /slots ---- */

static void on_slot_taken(const struct gate_reply *rep, void *arg)
{
    struct pending *p = arg;
    if (!unavailable(p->req, rep)) {
        if (verdict_is(rep, "ok")) {
            cg_log_info("slot leased", "id=%s", p->id);
            reply_lease(p->req, 201, p->id, cg_redis_reply_int(rep->r, 1, 0));
        } else if (verdict_is(rep, "full")) {
            long long ms = cg_redis_reply_int(rep->r, 1, 1000);
            char ra[24];
            snprintf(ra, sizeof ra, "%lld", (ms + 999) / 1000);
            cg_http_set_header(p->req, "Retry-After", ra);
            cg_http_reply_error(p->req, 429, "no_room",
                                "no slot free in the route's budget now; try again later");
        } else if (verdict_is(rep, "unknown-route")) {
            cg_http_reply_error(p->req, 400, "bad_request", "unknown route");
        } else {
            cg_http_reply_error(p->req, 409, "conflict", "slot id in use; try again");
        }
    }
    free(p);
}

static void handle_slots(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!gate_admin_ok(g, req, 0))
        return;
    size_t len;
    const char *body = cg_http_req_body(req, &len);
    struct gate_slot_req s;
    char err[128];
    if (gate_parse_slot_req(body, len, &s, err, sizeof err) != 0) {
        cg_http_reply_error(req, 400, "bad_request", err);
        return;
    }
    if (!route_known(g, s.route)) {
        cg_http_reply_error(req, 400, "bad_request", "unknown route");
        return;
    }
    char id[33];
    mint_id(id);
    struct pending *p = pending_new(g, req, id);
    const struct cg_config *c = g->cfg;
    if (gate_store_slots(&g->store, "take", id, s.route, (long long)s.ttl_s * 1000,
                         c->max_concurrency, 100, (long long)c->admission_lease_seconds * 1000,
                         c->instance_id, on_slot_taken, p) != 0)
        on_slot_taken(&(struct gate_reply){.err = "eval refused"}, p);
}

/* ---- POST /slots/{id}/renew, DELETE /slots/{id} ---- */

static void on_slot_changed(const struct gate_reply *rep, void *arg)
{
    struct pending *p = arg;
    if (!unavailable(p->req, rep)) {
        if (verdict_is(rep, "ok")) {
            reply_lease(p->req, 200, p->id, cg_redis_reply_int(rep->r, 1, 0));
        } else if (verdict_is(rep, "released")) {
            cg_log_info("slot released", "id=%s", p->id);
            gate_start_admitted(p->g, rep->r, 3);
            cg_http_reply(p->req, 204, NULL, "", 0);
        } else {
            cg_http_reply_error(p->req, 404, "not_found", "no such slot (expired or released)");
        }
    }
    free(p);
}

static void handle_slot(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!gate_admin_ok(g, req, 0))
        return;
    const char *rest = cg_http_req_path_rest(req);
    size_t idlen = strcspn(rest, "/");
    const char *tail = rest + idlen;
    enum cg_http_method m = cg_http_req_method(req);
    const char *op = NULL;
    if (m == CG_HTTP_DELETE && tail[0] == '\0')
        op = "release";
    else if (m == CG_HTTP_POST && strcmp(tail, "/renew") == 0)
        op = "renew";
    if (op == NULL || !gate_dialer_id_valid(rest, idlen)) {
        cg_http_reply_error(req, 404, "not_found",
                            "use POST /slots/{id}/renew or DELETE /slots/{id}");
        return;
    }
    char id[GATE_DIALER_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)idlen, rest);
    long long ttl_ms = (long long)GATE_SLOT_TTL_DEFAULT * 1000;
    if (strcmp(op, "renew") == 0) {
        size_t len;
        const char *body = cg_http_req_body(req, &len);
        long ttl_s = GATE_SLOT_TTL_DEFAULT;
        char err[128];
        if (gate_parse_renew_req(body, len, &ttl_s, err, sizeof err) != 0) {
            cg_http_reply_error(req, 400, "bad_request", err);
            return;
        }
        ttl_ms = (long long)ttl_s * 1000;
    }
    struct pending *p = pending_new(g, req, id);
    const struct cg_config *c = g->cfg;
    if (gate_store_slots(&g->store, op, id, "", ttl_ms, c->max_concurrency, 100,
                         (long long)c->admission_lease_seconds * 1000, c->instance_id,
                         on_slot_changed, p) != 0)
        on_slot_changed(&(struct gate_reply){.err = "eval refused"}, p);
}

/* ---- POST /calls/outbound ---- */

static void on_outbound_created(const struct gate_reply *rep, void *arg)
{
    struct pending *p = arg;
    if (!unavailable(p->req, rep)) {
        if (verdict_is(rep, "queued")) {
            char body[128];
            snprintf(body, sizeof body, "{\"id\":\"%s\",\"position\":%lld}", p->id,
                     cg_redis_reply_int(rep->r, 1, 0));
            cg_log_info("outbound call queued", "id=%s position=%lld", p->id,
                        cg_redis_reply_int(rep->r, 1, 0));
            cg_http_reply_json(p->req, 202, body);
            gate_start_admitted(p->g, rep->r, 3);
        } else if (verdict_is(rep, "full")) {
            cg_http_set_header(p->req, "Retry-After", "30");
            cg_http_reply_error(p->req, 429, "queue_full",
                                "the route's line is full (MAX_QUEUE_SIZE)");
        } else {
            cg_http_reply_error(p->req, 409, "conflict", "call id in use; try again");
        }
    }
    free(p);
}

static void handle_outbound(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!gate_admin_ok(g, req, 0))
        return;
    size_t len;
    const char *body = cg_http_req_body(req, &len);
    struct gate_outbound_req o;
    char err[128];
    if (gate_parse_outbound_req(body, len, &o, err, sizeof err) != 0) {
        cg_http_reply_error(req, 400, "bad_request", err);
        return;
    }
    if (!route_known(g, o.route)) {
        gate_outbound_req_free(&o);
        cg_http_reply_error(req, 400, "bad_request", "unknown route");
        return;
    }
    if (g->stopping) {
        gate_outbound_req_free(&o);
        cg_http_reply_error(req, 503, "unavailable", "shutting down");
        return;
    }
    char id[33];
    mint_id(id);
    struct pending *p = pending_new(g, req, id);
    const struct cg_config *c = g->cfg;
    struct gate_outbound_op op = {
        .op = "create",
        .id = id,
        .route = o.route,
        .number = o.number,
        .variables = o.variables,
        .max_queue = c->max_queue_size,
        .limit = c->max_concurrency,
        .batch = 100,
        .admit_lease_ms = (long long)c->admission_lease_seconds * 1000,
        .instance = c->instance_id,
    };
    if (gate_store_outbound(&g->store, &op, on_outbound_created, p) != 0)
        on_outbound_created(&(struct gate_reply){.err = "eval refused"}, p);
    gate_outbound_req_free(&o);
}

/* ---- GET /calls/outbound/{id} ---- */

static void on_outbound_status(const struct gate_reply *rep, void *arg)
{
    struct pending *p = arg;
    if (!unavailable(p->req, rep)) {
        const redisReply *r = rep->r;
        if (verdict_is(rep, "unknown") || r->elements < 10) {
            cg_http_reply_error(p->req, 404, "not_found", "no such outbound call");
        } else {
            struct cg_buf b;
            cg_buf_init(&b, 4096);
            int rc = cg_buf_printf(&b, "{\"id\":\"%s\",\"state\":", p->id);
            rc |= jstr(&b, cg_redis_reply_str(r, 0));
            rc |= cg_buf_printf(&b, ",\"position\":%lld,\"route\":", cg_redis_reply_int(r, 1, 0));
            rc |= jstr(&b, cg_redis_reply_str(r, 2));
            const char *vid = cg_redis_reply_str(r, 3);
            rc |= cg_buf_appends(&b, ",\"vapiCallId\":");
            rc |= vid && vid[0] ? jstr(&b, vid) : cg_buf_appends(&b, "null");
            const char *why = cg_redis_reply_str(r, 4);
            rc |= cg_buf_appends(&b, ",\"endedReason\":");
            rc |= why && why[0] ? jstr(&b, why) : cg_buf_appends(&b, "null");
            rc |= cg_buf_printf(&b, ",\"attempts\":%lld", cg_redis_reply_int(r, 5, 0));
            static const char *const times[] = {"enqueuedAt", "admittedAt", "connectedAt",
                                                "endedAt"};
            for (size_t i = 0; i < 4; i++) {
                long long ms = cg_redis_reply_int(r, 6 + i, 0);
                if (ms > 0) {
                    char when[25];
                    cg_iso8601_ms((uint64_t)ms, when);
                    rc |= cg_buf_printf(&b, ",\"%s\":\"%s\"", times[i], when);
                } else {
                    rc |= cg_buf_printf(&b, ",\"%s\":null", times[i]);
                }
            }
            rc |= cg_buf_appends(&b, "}");
            if (rc != 0)
                cg_http_reply_error(p->req, 500, "internal", "answer too large");
            else
                cg_http_reply_json(p->req, 200, cg_buf_str(&b));
            cg_buf_free(&b);
        }
    }
    free(p);
}

static void handle_outbound_one(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!gate_admin_ok(g, req, 0))
        return;
    const char *id = cg_http_req_path_rest(req);
    if (!gate_dialer_id_valid(id, strlen(id))) {
        cg_http_reply_error(req, 404, "not_found", "no such outbound call");
        return;
    }
    struct pending *p = pending_new(g, req, id);
    struct gate_outbound_op op = {.op = "status", .id = id};
    if (gate_store_outbound(&g->store, &op, on_outbound_status, p) != 0)
        on_outbound_status(&(struct gate_reply){.err = "eval refused"}, p);
}

int gate_dialer_register(struct cg_httpd *httpd, struct cg_gate *g)
{
    if (cg_httpd_route(httpd, "/slots", CG_HTTP_POST, handle_slots, g) != 0 ||
        cg_httpd_route(httpd, "/slots/*", CG_HTTP_POST | CG_HTTP_DELETE, handle_slot, g) != 0 ||
        cg_httpd_route(httpd, "/calls/outbound", CG_HTTP_POST, handle_outbound, g) != 0 ||
        cg_httpd_route(httpd, "/calls/outbound/*", CG_HTTP_GET, handle_outbound_one, g) != 0)
        return -1;
    return 0;
}
