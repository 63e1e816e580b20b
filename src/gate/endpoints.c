/*
 * endpoints.c - the gate's HTTP endpoints: Twilio's voice webhook
 * (/incoming), the <Enqueue> waitUrl (/queue-wait, for the gate's callers)
 * and action (/queue-exit), Twilio's status callback (/call-status), Vapi's
 * server messages (/call-ended), and the operator's endpoints
 * (/process-queue, /admin/limit; the queue log's export is reports.c's).
 * They own each request and its answer; the engine (engine.c) does the
 * work.
 *
 * Every Twilio request is checked against X-Twilio-Signature and every Vapi
 * request against its secret before anything else happens: a forged request
 * gets 403 and touches no state. Callbacks about calls the gate does not
 * know get 200 (so that Twilio and Vapi stop retrying) and change nothing.
 */
#include "base/fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/endpoints.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/form.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/access.h"
#include "gate/callback_http.h"
#include "gate/control.h"
#include "gate/dialer.h"
#include "gate/internal.h"
#include "gate/keys.h"
#include "gate/queue_view.h"
#include "gate/relay.h"
#include "gate/routes.h"
#include "gate/reports.h"
#include "gate/store.h"
#include "net/httpd.h"
#include "twilio/api.h"
#include "twilio/twiml.h"
#include "twilio/webhook.h"
#include "vapi/api.h"

/* Answers a request with a TwiML document (takes ownership of twiml). */
static void reply_twiml(struct cg_http_req *req, char *twiml)
{
    cg_http_reply(req, 200, "text/xml", twiml, strlen(twiml));
    free(twiml);
}

/* The engine's answer for a voice webhook. */
static void on_answer(char *twiml, void *arg)
{
    reply_twiml(arg, twiml);
}

static const struct cg_form *twilio_request(struct cg_gate *g, struct cg_http_req *req,
                                            const char **sid)
{
    return cg_twhook_check(req, g->cfg, sid);
}

static const char *form_str(const struct cg_form *f, const char *key)
{
    const char *v = cg_form_get(f, key);
    return v ? v : "";
}

/* ---- /incoming ---- */

static void handle_incoming(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = twilio_request(g, req, &sid);
    if (form == NULL)
        return;
    if (gate_callback_arrive(g, req, sid, form_str(form, "From"), form_str(form, "To")) == 0)
        return;
    gate_arrive(g, sid, form_str(form, "From"), form_str(form, "To"), on_answer, req);
}

/* ---- /queue-wait ---- */

struct waiting {
    struct cg_gate *g;
    struct cg_http_req *req;
    char sid[40];
    char *from;
    char *to;
    long queue_time_s;
    int adopting;
};

static void reply_hold(struct cg_gate *g, struct cg_http_req *req, const char *say)
{
    struct cg_twiml_wait w = {
        .say = say,
        .hold_music_url = g->cfg->hold_music_url,
        .pause_s = g->cfg->announce_interval_seconds,
    };
    reply_twiml(req, cg_twiml_wait(&w));
}

static void on_position(const struct gate_reply *rep, void *arg);

static void adopt(struct waiting *w)
{
    w->adopting = 1;
    if (gate_adopt(w->g, w->sid, w->from, w->to, w->queue_time_s, on_position, w) != 0)
        on_position(&(struct gate_reply){.err = "eval refused"}, w);
}

static void free_waiting(struct waiting *w)
{
    free(w->from);
    free(w->to);
    free(w);
}

static void announce(struct waiting *w, const redisReply *r)
{
    struct cg_gate *g = w->g;
    long long position = cg_redis_reply_int(r, 1, 1);
    double ewt = gate_estimate_of_position(g, r);
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%.0f", ewt);
    cg_http_set_header(w->req, "X-Callgate-Estimated-Wait", hdr);
    if (cg_redis_reply_int(r, 9, 0) == 1) {
        char pos[128], wait[96], say[300];
        cg_twiml_position_phrase((long)position, pos, sizeof pos);
        cg_twiml_wait_phrase(ewt, wait, sizeof wait);
        snprintf(say, sizeof say, "%s Your estimated wait time is %s.", pos, wait);
        char *offer = gate_callback_hold_twiml(g, w->from, ewt, say);
        if (offer != NULL)
            reply_twiml(w->req, offer);
        else
            reply_hold(g, w->req, say);
    } else {
        reply_hold(g, w->req, NULL);
    }
}

static void on_position(const struct gate_reply *rep, void *arg)
{
    struct waiting *w = arg;
    struct cg_gate *g = w->g;
    enum gate_verdict state = rep->verdict;
    if (state == GV_NONE) {
        reply_hold(g, w->req, NULL);
    } else if (w->adopting) {
        /* enter's verdict for an adopted caller: they hear their position
         * from the next waitUrl request on. */
        cg_log_info("adopted a caller found waiting", "sid=%s verdict=%s", w->sid,
                    cg_redis_reply_str(rep->r, 0));
        reply_hold(g, w->req, NULL);
        if (state == GV_WAITING)
            gate_admit(g);
    } else if (state == GV_WAITING) {
        announce(w, rep->r);
    } else if (state == GV_OVERFLOW || state == GV_OVERFLOWED) {
        /* <Leave> sends the caller to the Enqueue action, which answers with
         * the overflow treatment (Dial and Record are not allowed here). */
        if (state == GV_OVERFLOW)
            cg_log_info("caller overflowed", "sid=%s reason=%s position=%lld wait_s=%.1f", w->sid,
                        "max-wait", cg_redis_reply_int(rep->r, 1, 0),
                        (double)cg_redis_reply_int(rep->r, 2, 0) / 1000.0);
        else
            cg_log_debug("caller already overflowed", "sid=%s", w->sid);
        if (g->metrics && state == GV_OVERFLOW)
            cg_metrics_inc(g->metrics, "callgate_callers_total", "outcome=\"overflowed\"", 1);
        reply_twiml(w->req, cg_twiml_leave());
    } else if (state == GV_UNKNOWN) {
        adopt(w);
        return;
    } else {
        reply_hold(g, w->req, NULL);
    }
    free_waiting(w);
}

void cg_gate_queue_wait(struct cg_gate *g, struct cg_http_req *req, const struct cg_form *form,
                        const char *sid)
{
    if (!gate_redis_ready(g)) {
        reply_hold(g, req, NULL);
        return;
    }
    struct waiting *w = cg_calloc(1, sizeof *w);
    w->g = g;
    w->req = req;
    snprintf(w->sid, sizeof w->sid, "%s", sid);
    w->from = cg_strdup(form_str(form, "From"));
    w->to = cg_strdup(form_str(form, "To"));
    w->queue_time_s = strtol(form_str(form, "QueueTime"), NULL, 10);
    if (w->queue_time_s < 0 || w->queue_time_s > 86400)
        w->queue_time_s = 0;
    if (gate_store_position(&g->store, sid, (long long)g->cfg->max_wait_seconds * 1000,
                            (long long)g->cfg->announce_interval_seconds * 1000,
                            g->cfg->max_concurrency, on_position, w) != 0)
        on_position(&(struct gate_reply){.err = "eval refused"}, w);
}

/* ---- /queue-exit (the Enqueue action) ---- */

struct reply_ctx {
    struct cg_http_req *req;
    char *twiml; /* answered on success; NULL: 200 with empty TwiML */
    int unavailable_503;
};

static void on_end_replied(enum gate_verdict verdict, void *arg)
{
    struct reply_ctx *rc = arg;
    if (verdict == GV_NONE && rc->unavailable_503) {
        cg_http_reply_error(rc->req, 503, "unavailable", "state store unavailable; retry later");
        free(rc->twiml);
    } else {
        reply_twiml(rc->req, rc->twiml ? rc->twiml : cg_twiml_empty());
    }
    free(rc);
}

static void end_then_reply(struct cg_gate *g, struct cg_http_req *req, const char *kind,
                           const char *id, const char *reason, const char *signal, char *twiml,
                           int unavailable_503)
{
    struct reply_ctx *rc = cg_calloc(1, sizeof *rc);
    rc->req = req;
    rc->twiml = twiml;
    rc->unavailable_503 = unavailable_503;
    gate_end(g, kind, id, reason, signal, on_end_replied, rc);
}

static void handle_queue_exit(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = twilio_request(g, req, &sid);
    if (form == NULL)
        return;
    const char *result = cg_form_get(form, "QueueResult");
    if (result == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "QueueResult is missing");
        return;
    }
    cg_log_debug("queue exit", "sid=%s result=%s", sid, result);
    int up = gate_redis_ready(g);
    if (strcmp(result, "hangup") == 0) {
        if (!up) {
            reply_twiml(req, cg_twiml_empty());
            return;
        }
        end_then_reply(g, req, "twilio", sid, "hangup", "queue-exit", NULL, 0);
    } else if (strcmp(result, "leave") == 0) {
        /* The overflow path sends <Leave>, and so does a callback's
         * confirmation: the record tells them apart. */
        if (!up || gate_callback_left(g, req, sid) != 0)
            reply_twiml(req, gate_overflow_twiml(g));
    } else if (strcmp(result, "queue-full") == 0) {
        if (!up) {
            reply_twiml(req, gate_overflow_twiml(g));
            return;
        }
        end_then_reply(g, req, "overflow", sid, "twilio-queue-full", "queue-exit",
                       gate_overflow_twiml(g), 0);
    } else if (strcmp(result, "error") == 0 || strcmp(result, "system-error") == 0) {
        /* Twilio could not run the hold TwiML; keep the caller in line. */
        cg_log_warn("twilio reported a queue error; re-enqueueing", "sid=%s result=%s", sid,
                    result);
        const struct cg_route *rt = gate_route_for(g->cfg, cg_form_get(form, "To"));
        reply_twiml(req,
                    rt ? cg_twiml_enqueue(g->cfg->public_url, rt->queue) : gate_enqueue_twiml(g));
    } else {
        /* redirected and bridged: the Calls update took the caller on;
         * Twilio discards this answer. */
        reply_twiml(req, cg_twiml_empty());
    }
}

/* ---- /call-status ---- */

static void handle_call_status(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = twilio_request(g, req, &sid);
    if (form == NULL)
        return;
    const char *status = cg_form_get(form, "CallStatus");
    if (status == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "CallStatus is missing");
        return;
    }
    if (!cg_twilio_status_is_terminal(status)) {
        reply_twiml(req, cg_twiml_empty());
        return;
    }
    if (!gate_redis_ready(g)) {
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable; retry later");
        return;
    }
    end_then_reply(g, req, "twilio", sid, status, "twilio-status", NULL, 1);
}

/* ---- /call-ended (Vapi server messages) ---- */

static const char *header_of(const char *name, void *arg)
{
    return cg_http_req_header(arg, name);
}

struct vapi_reply {
    struct cg_http_req *req;
    char call_id[96];
};

static void on_vapi_end(enum gate_verdict verdict, void *arg)
{
    struct vapi_reply *vr = arg;
    if (verdict == GV_NONE) {
        cg_http_reply_error(vr->req, 503, "unavailable", "state store unavailable; retry later");
    } else {
        const char *word = gate_verdict_name(verdict);
        if (verdict == GV_UNKNOWN || verdict == GV_DUPLICATE || verdict == GV_STALE)
            cg_log_debug("vapi end signal changed nothing", "vapi=%s verdict=%s", vr->call_id,
                         word);
        struct cg_buf b;
        cg_buf_init(&b, 256);
        cg_buf_appends(&b, "{\"ok\":true,\"result\":");
        cg_buf_append_json_str(&b, word, strlen(word));
        cg_buf_appends(&b, "}");
        cg_http_reply_json(vr->req, 200, cg_buf_str(&b));
        cg_buf_free(&b);
    }
    free(vr);
}

static void handle_call_ended(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    size_t len;
    const char *body = cg_http_req_body(req, &len);
    const struct cg_config *c = g->cfg;
    struct cg_vapi_auth auth = {
        .secret = c->vapi_webhook_secret[0] ? c->vapi_webhook_secret : NULL,
        .hmac_secret = c->vapi_webhook_hmac_secret[0] ? c->vapi_webhook_hmac_secret : NULL,
        .hmac_algorithm = c->vapi_webhook_hmac_algorithm,
        .hmac_signature_header = c->vapi_webhook_hmac_signature_header,
        .hmac_timestamp_header = c->vapi_webhook_hmac_timestamp_header,
        .hmac_prefix = c->vapi_webhook_hmac_prefix,
        .hmac_encoding = c->vapi_webhook_hmac_encoding,
        .accept_secret_with_hmac = c->vapi_accept_static_secret,
    };
    if (!cg_vapi_authenticate(&auth, header_of, req, body, len, cg_wall_ms())) {
        cg_log_warn("rejected a vapi request with a bad secret", "peer=%s", cg_http_req_peer(req));
        cg_http_reply_error(req, 403, "bad_secret",
                            "the x-vapi-secret header or HMAC signature does not match");
        return;
    }
    struct cg_vapi_event ev;
    json_t *root = NULL;
    char err[128];
    if (cg_vapi_parse_event(body, len, &ev, &root, err, sizeof err) != 0) {
        cg_http_reply_error(req, 400, "bad_request", err);
        return;
    }
    if (strcmp(ev.type_name, "phone-call-control") == 0) {
        gate_control_handle(g, req, &ev, root);
        return;
    }
    if (ev.type == CG_VAPI_EV_OTHER || ev.type == CG_VAPI_EV_HANG) {
        /* Not the gate's: to the user's own server, or acknowledged. */
        gate_relay_message(g->relay, req, &ev, root, &auth, body, len);
        json_decref(root);
        return;
    }
    /* The user's server still hears of the call's progress and end. */
    gate_relay_copy(g->relay, req, &ev, &auth, body, len);
    if (!ev.is_end || ev.call_id == NULL) {
        if (ev.is_end)
            cg_log_warn("vapi end message without a call id", "type=%s", ev.type_name);
        json_decref(root);
        cg_http_reply_json(req, 200, "{\"ok\":true,\"result\":\"ignored\"}");
        return;
    }
    if (!gate_redis_ready(g)) {
        json_decref(root);
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable; retry later");
        return;
    }
    struct vapi_reply *vr = cg_calloc(1, sizeof *vr);
    vr->req = req;
    snprintf(vr->call_id, sizeof vr->call_id, "%s", ev.call_id);
    const char *signal = ev.type == CG_VAPI_EV_END_OF_CALL_REPORT ? "vapi-report" : "vapi-status";
    gate_end(g, "vapi", ev.call_id, ev.ended_reason ? ev.ended_reason : "ended", signal,
             on_vapi_end, vr);
    json_decref(root);
}

/* ---- operator endpoints ---- */

enum snap_use { SNAP_PROCESS, SNAP_LIMIT };

struct snap {
    struct cg_gate *g;
    struct cg_http_req *req;
    enum snap_use use;
};

static void reply_snapshot(struct snap *s, const redisReply *r)
{
    struct cg_gate *g = s->g;
    long long active = cg_redis_reply_int(r, 0, 0), waiting = cg_redis_reply_int(r, 1, 0);
    long long limit = cg_redis_reply_int(r, 2, g->cfg->max_concurrency);
    long long eff = cg_redis_reply_int(r, 3, limit);
    struct cg_buf b;
    cg_buf_init(&b, 1024);
    if (s->use == SNAP_PROCESS)
        cg_buf_printf(&b,
                      "{\"message\":\"Queue processing triggered\",\"activeCalls\":%lld,"
                      "\"callsInQueue\":%lld,\"maxConcurrency\":%lld}",
                      active, waiting, limit);
    else
        cg_buf_printf(&b,
                      "{\"limit\":%lld,\"effectiveLimit\":%lld,\"configuredLimit\":%d,"
                      "\"activeCalls\":%lld,\"callsInQueue\":%lld,\"backoffMs\":%lld}",
                      limit, eff, g->cfg->max_concurrency, active, waiting,
                      cg_redis_reply_int(r, 4, 0));
    cg_http_reply_json(s->req, 200, cg_buf_str(&b));
    cg_buf_free(&b);
}

static void on_snapshot(const struct gate_reply *rep, void *arg)
{
    struct snap *s = arg;
    const redisReply *r = rep->r;
    if (rep->err != NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 5)
        cg_http_reply_error(s->req, 503, "unavailable", "state store unavailable");
    else
        reply_snapshot(s, r);
    free(s);
}

static void snapshot(struct cg_gate *g, struct cg_http_req *req, enum snap_use use)
{
    struct snap *s = cg_calloc(1, sizeof *s);
    s->g = g;
    s->req = req;
    s->use = use;
    if (gate_store_snapshot(&g->store, g->cfg->max_concurrency, on_snapshot, s) != 0)
        on_snapshot(&(struct gate_reply){.err = "eval refused"}, s);
}

static void handle_process_queue(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!gate_admin_ok(g, req, 0))
        return;
    gate_admit(g);
    snapshot(g, req, SNAP_PROCESS);
}

struct limit_set {
    struct cg_gate *g;
    struct cg_http_req *req;
};

static void on_limit_set(const redisReply *r, const char *err, void *arg)
{
    struct limit_set *ls = arg;
    (void)r;
    if (err != NULL) {
        cg_http_reply_error(ls->req, 503, "unavailable", "state store unavailable");
    } else {
        gate_admit(ls->g);
        snapshot(ls->g, ls->req, SNAP_LIMIT);
    }
    free(ls);
}

/* The new limit from a JSON body {"limit":N} or a form body limit=N. */
static long long parse_limit(struct cg_http_req *req)
{
    const char *ct = cg_http_req_header(req, "Content-Type");
    if (ct && strncasecmp(ct, "application/json", 16) == 0 &&
        (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ')) {
        size_t len;
        const char *body = cg_http_req_body(req, &len);
        char err[64];
        json_t *j = cg_json_parse(body, len, 4, err, sizeof err);
        long long v = -1;
        if (j == NULL || cg_json_int(j, "limit", &v) != 0)
            v = -1;
        json_decref(j);
        return v;
    }
    const struct cg_form *f = cg_http_req_form(req, NULL);
    const char *s = f ? cg_form_get(f, "limit") : NULL;
    if (s == NULL || *s == '\0')
        return -1;
    char *end;
    long long v = strtoll(s, &end, 10);
    return *end == '\0' ? v : -1;
}

static void handle_admin_limit(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!gate_admin_ok(g, req, 0))
        return;
    enum cg_http_method m = cg_http_req_method(req);
    if (m == CG_HTTP_GET || m == CG_HTTP_HEAD) {
        snapshot(g, req, SNAP_LIMIT);
        return;
    }
    struct limit_set *ls = cg_calloc(1, sizeof *ls);
    ls->g = g;
    ls->req = req;
    int rc;
    if (m == CG_HTTP_DELETE) {
        cg_log_info("runtime limit cleared; back to MAX_CONCURRENCY", "limit=%d",
                    g->cfg->max_concurrency);
        rc = cg_redis_command(g->redis, on_limit_set, ls, "DEL %s", g->keys->limit);
    } else {
        long long v = parse_limit(req);
        if (v < 1 || v > 100000) {
            free(ls);
            cg_http_reply_error(req, 400, "bad_request",
                                "limit must be an integer between 1 and 100000");
            return;
        }
        cg_log_info("runtime limit changed", "limit=%lld peer=%s", v, cg_http_req_peer(req));
        rc = cg_redis_command(g->redis, on_limit_set, ls, "SET %s %lld", g->keys->limit, v);
    }
    if (rc != 0)
        on_limit_set(NULL, "command refused", ls);
}

int cg_gate_endpoints_register(struct cg_httpd *httpd, struct cg_gate *g)
{
    struct {
        const char *path;
        unsigned methods;
        cg_http_handler fn;
    } routes[] = {
        {"/incoming", CG_HTTP_POST, handle_incoming},
        {"/queue-exit", CG_HTTP_POST, handle_queue_exit},
        {"/call-status", CG_HTTP_POST, handle_call_status},
        {"/call-ended", CG_HTTP_POST, handle_call_ended},
        {"/process-queue", CG_HTTP_POST, handle_process_queue},
        {"/admin/limit", CG_HTTP_GET | CG_HTTP_PUT | CG_HTTP_POST | CG_HTTP_DELETE,
         handle_admin_limit},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (cg_httpd_route(httpd, routes[i].path, routes[i].methods, routes[i].fn, g) != 0)
            return -1;
    if (gate_control_register(httpd, g) != 0 || gate_dialer_register(httpd, g) != 0 ||
        gate_callback_register(httpd, g) != 0)
        return -1;
    return gate_reports_register(httpd, g);
}
