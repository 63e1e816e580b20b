/*
 * gate_http.c - the gate's HTTP endpoints: Twilio's voice webhook
 * (/incoming), the <Enqueue> waitUrl (/queue-wait) and action (/queue-exit),
 * Twilio's status callback (/call-status), Vapi's server messages
 * (/call-ended), and the operator's endpoints (/process-queue,
 * /admin/limit, /metrics).
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

#include "base/crypto.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/estimate.h"
#include "gate/internal.h"
#include "net/httpd.h"
#include "base/json.h"
#include "gate/keys.h"
#include "base/log.h"
#include "base/metrics.h"
#include "twilio/api.h"
#include "twilio/twiml.h"
#include "waittime/waittime.h"
#include "twilio/webhook.h"
#include "twilio/signature.h"
#include "vapi/api.h"

static const char *rstr(const redisReply *r, size_t i)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : NULL;
}

static long long rint_at(const redisReply *r, size_t i, long long dflt)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return dflt;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return dflt;
}

static int redis_ready(const struct cg_gate *g)
{
    return !g->closing && cg_redis_state(g->redis) == CG_REDIS_READY;
}

/* ---- Twilio request validation ---- */

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

struct incoming {
    struct cg_gate *g;
    struct cg_http_req *req;
    char sid[40];
    char *from;
};

static void on_entered(const redisReply *r, const char *err, void *arg)
{
    struct incoming *in = arg;
    struct cg_gate *g = in->g;
    const char *verdict = err ? NULL : rstr(r, 0);
    if (verdict == NULL) {
        /* Redis failed mid-way: Twilio holds the caller; reconciliation
         * adopts them when Redis answers again. */
        cg_log_warn("caller enqueued without a record", "sid=%s error=%s", in->sid,
                    err ? err : "bad reply");
        gate_reply_twiml(in->req, gate_enqueue_twiml(g));
    } else if (strcmp(verdict, "fast") == 0) {
        gate_start_fast(g, in->req, in->sid, in->from);
    } else if (strcmp(verdict, "waiting") == 0) {
        cg_log_info("caller waiting", "sid=%s position=%lld", in->sid, rint_at(r, 1, 0));
        gate_reply_twiml(in->req, gate_enqueue_twiml(g));
        /* Every slot taken: the next release admits (end.lua). */
        if (rint_at(r, 2, 1) != 0)
            gate_admit(g);
    } else if (strcmp(verdict, "overflow") == 0) {
        cg_log_info("caller overflowed: queue full", "sid=%s", in->sid);
        if (g->metrics) {
            cg_metrics_inc(g->metrics, "callgate_callers_total", "outcome=\"overflowed\"", 1);
        }
        gate_reply_twiml(in->req, gate_overflow_twiml(g));
    } else {
        /* A repeated webhook for a known call: answer consistently. */
        const char *state = rstr(r, 1);
        if (state && (strcmp(state, "waiting") == 0 || strcmp(state, "admitting") == 0))
            gate_reply_twiml(in->req, gate_enqueue_twiml(g));
        else if (state && strcmp(state, "overflowed") == 0)
            gate_reply_twiml(in->req, gate_overflow_twiml(g));
        else
            gate_reply_twiml(in->req, cg_twiml_empty());
    }
    free(in->from);
    free(in);
}

static void handle_incoming(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = twilio_request(g, req, &sid);
    if (form == NULL)
        return;
    if (!redis_ready(g) || g->stopping) {
        cg_log_warn("redis unavailable: caller held in twilio's queue", "sid=%s", sid);
        gate_reply_twiml(req, gate_enqueue_twiml(g));
        return;
    }
    struct incoming *in = cg_calloc(1, sizeof *in);
    in->g = g;
    in->req = req;
    snprintf(in->sid, sizeof in->sid, "%s", sid);
    in->from = cg_strdup(form_str(form, "From"));
    struct gate_args a;
    gate_args_init(&a, g);
    gate_args_str(&a, sid);
    gate_args_str(&a, in->from);
    gate_args_str(&a, form_str(form, "To"));
    gate_args_str(&a, "incoming");
    gate_args_int(&a, g->cfg->max_queue_size);
    gate_args_int(&a, g->cfg->max_concurrency);
    gate_args_int(&a, g->cfg->fast_path_deadline_ms > 0);
    gate_args_int(&a, (long long)g->cfg->admission_lease_seconds * 1000);
    gate_args_str(&a, g->cfg->instance_id);
    gate_args_int(&a, 0);
    if (gate_eval(g, S_ENTER, &a, on_entered, in) != 0)
        on_entered(NULL, "eval refused", in);
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
    gate_reply_twiml(req, cg_twiml_wait(&w));
}

static void on_position(const redisReply *r, const char *err, void *arg);

static void adopt(struct waiting *w)
{
    struct cg_gate *g = w->g;
    struct gate_args a;
    gate_args_init(&a, g);
    gate_args_str(&a, w->sid);
    gate_args_str(&a, w->from);
    gate_args_str(&a, w->to);
    gate_args_str(&a, "adopt");
    gate_args_int(&a, g->cfg->max_queue_size);
    gate_args_int(&a, g->cfg->max_concurrency);
    gate_args_int(&a, 0);
    gate_args_int(&a, (long long)g->cfg->admission_lease_seconds * 1000);
    gate_args_str(&a, g->cfg->instance_id);
    gate_args_int(&a, (long long)w->queue_time_s * 1000);
    w->adopting = 1;
    if (gate_eval(g, S_ENTER, &a, on_position, w) != 0)
        on_position(NULL, "eval refused", w);
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
    long long position = rint_at(r, 1, 1);
    long long svc_ms = rint_at(r, 5, -1);
    long long abandoned = rint_at(r, 6, 0), connected = rint_at(r, 7, 0);
    struct cg_ewt_input in = {
        .ahead = position > 0 ? position - 1 : 0,
        .slots = rint_at(r, 3, g->cfg->max_concurrency),
        .busy = rint_at(r, 4, 0),
        .mean_service_s = svc_ms > 0 ? (double)svc_ms / 1000.0 : -1,
        .prior_service_s = g->cfg->expected_call_seconds,
        /* Too few outcomes say nothing about abandonment yet. */
        .abandon_ratio =
            abandoned + connected >= 20 ? (double)abandoned / (double)(abandoned + connected) : 0,
        .waited_s = (double)rint_at(r, 2, 0) / 1000.0,
        .head_wait_s = (double)rint_at(r, 8, 0) / 1000.0,
        .admit_s = rint_at(r, 10, -1) > 0 ? (double)rint_at(r, 10, -1) / 1000.0 : -1,
    };
    if (in.slots < 1)
        in.slots = 1;
    double ewt = cg_ewt_seconds(&in);
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%.0f", ewt);
    cg_http_set_header(w->req, "X-Callgate-Estimated-Wait", hdr);
    if (rint_at(r, 9, 0) == 1) {
        char pos[128], wait[96], say[300];
        cg_twiml_position_phrase((long)position, pos, sizeof pos);
        cg_twiml_wait_phrase(ewt, wait, sizeof wait);
        snprintf(say, sizeof say, "%s Your estimated wait time is %s.", pos, wait);
        reply_hold(g, w->req, say);
    } else {
        reply_hold(g, w->req, NULL);
    }
}

static void on_position(const redisReply *r, const char *err, void *arg)
{
    struct waiting *w = arg;
    struct cg_gate *g = w->g;
    const char *state = err ? NULL : rstr(r, 0);
    if (state == NULL) {
        reply_hold(g, w->req, NULL);
    } else if (w->adopting) {
        /* enter's verdict for an adopted caller: they hear their position
         * from the next waitUrl request on. */
        cg_log_info("adopted a caller found waiting", "sid=%s verdict=%s", w->sid, state);
        reply_hold(g, w->req, NULL);
        if (strcmp(state, "waiting") == 0)
            gate_admit(g);
    } else if (strcmp(state, "waiting") == 0) {
        announce(w, r);
    } else if (strcmp(state, "overflow") == 0 || strcmp(state, "overflowed") == 0) {
        /* <Leave> sends the caller to the Enqueue action, which answers with
         * the overflow treatment (Dial and Record are not allowed here). */
        cg_log_info("caller overflowed: waited too long", "sid=%s", w->sid);
        if (g->metrics && strcmp(state, "overflow") == 0)
            cg_metrics_inc(g->metrics, "callgate_callers_total", "outcome=\"overflowed\"", 1);
        gate_reply_twiml(w->req, cg_twiml_leave());
    } else if (strcmp(state, "unknown") == 0) {
        adopt(w);
        return;
    } else {
        reply_hold(g, w->req, NULL);
    }
    free_waiting(w);
}

static void handle_queue_wait(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = twilio_request(g, req, &sid);
    if (form == NULL)
        return;
    const struct cg_form *q = cg_http_req_query(req);
    const char *tq = q ? cg_form_get(q, "taskQueueSid") : NULL;
    if (tq != NULL) {
        /* A TaskRouter caller (<Enqueue workflowSid>): the TaskQueue's
         * estimate from the wait-time service, not the gate's queue. */
        cg_gate_taskqueue_hold(g->cfg, g->waittime, req, tq);
        return;
    }
    if (!redis_ready(g)) {
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
    struct gate_args a;
    gate_args_init(&a, g);
    gate_args_str(&a, sid);
    gate_args_int(&a, (long long)g->cfg->max_wait_seconds * 1000);
    gate_args_int(&a, (long long)g->cfg->announce_interval_seconds * 1000);
    gate_args_int(&a, g->cfg->max_concurrency);
    if (gate_eval(g, S_POSITION, &a, on_position, w) != 0)
        on_position(NULL, "eval refused", w);
}

void cg_gate_taskqueue_hold(const struct cg_config *cfg, struct cg_waittime *wt,
                            struct cg_http_req *req, const char *queue_sid)
{
    double ewt = -1;
    char *twiml = wt ? cg_waittime_hold_twiml(wt, queue_sid, &ewt) : NULL;
    if (twiml == NULL) {
        /* Unknown queue or nothing known yet: hold music, no promise. */
        struct cg_twiml_wait w = {.hold_music_url = cfg->hold_music_url,
                                  .pause_s = cfg->announce_interval_seconds};
        twiml = cg_twiml_wait(&w);
    } else if (ewt >= 0) {
        char hdr[32];
        snprintf(hdr, sizeof hdr, "%.0f", ewt);
        cg_http_set_header(req, "X-Callgate-Estimated-Wait", hdr);
    }
    gate_reply_twiml(req, twiml);
}

/* ---- /queue-exit (the Enqueue action) ---- */

struct reply_ctx {
    struct cg_http_req *req;
    char *twiml; /* answered on success; NULL: 200 with empty TwiML */
    int unavailable_503;
};

static void on_end_replied(const char *verdict, void *arg)
{
    struct reply_ctx *rc = arg;
    if (verdict == NULL && rc->unavailable_503) {
        cg_http_reply_error(rc->req, 503, "unavailable", "state store unavailable; retry later");
        free(rc->twiml);
    } else {
        gate_reply_twiml(rc->req, rc->twiml ? rc->twiml : cg_twiml_empty());
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
    int up = redis_ready(g);
    if (strcmp(result, "hangup") == 0) {
        if (!up) {
            gate_reply_twiml(req, cg_twiml_empty());
            return;
        }
        end_then_reply(g, req, "twilio", sid, "hangup", "queue-exit", NULL, 0);
    } else if (strcmp(result, "leave") == 0) {
        /* Only the overflow path sends <Leave>. */
        gate_reply_twiml(req, gate_overflow_twiml(g));
    } else if (strcmp(result, "queue-full") == 0) {
        if (!up) {
            gate_reply_twiml(req, gate_overflow_twiml(g));
            return;
        }
        end_then_reply(g, req, "overflow", sid, "twilio-queue-full", "queue-exit",
                       gate_overflow_twiml(g), 0);
    } else if (strcmp(result, "error") == 0 || strcmp(result, "system-error") == 0) {
        /* Twilio could not run the hold TwiML; keep the caller in line. */
        cg_log_warn("twilio reported a queue error; re-enqueueing", "sid=%s result=%s", sid,
                    result);
        gate_reply_twiml(req, gate_enqueue_twiml(g));
    } else {
        /* redirected and bridged: the Calls update took the caller on;
         * Twilio discards this answer. */
        gate_reply_twiml(req, cg_twiml_empty());
    }
}

/* ---- /call-status ---- */

static int terminal_status(const char *s)
{
    static const char *const terminal[] = {"completed", "busy", "failed", "no-answer", "canceled"};
    for (size_t i = 0; i < sizeof terminal / sizeof terminal[0]; i++)
        if (strcmp(s, terminal[i]) == 0)
            return 1;
    return 0;
}

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
    if (!terminal_status(status)) {
        gate_reply_twiml(req, cg_twiml_empty());
        return;
    }
    if (!redis_ready(g)) {
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

static void on_vapi_end(const char *verdict, void *arg)
{
    struct vapi_reply *vr = arg;
    if (verdict == NULL) {
        cg_http_reply_error(vr->req, 503, "unavailable", "state store unavailable; retry later");
    } else {
        if (strcmp(verdict, "unknown") == 0 || strcmp(verdict, "duplicate") == 0 ||
            strcmp(verdict, "stale") == 0)
            cg_log_info("vapi end signal changed nothing", "vapi=%s verdict=%s", vr->call_id,
                        verdict);
        struct cg_buf b;
        cg_buf_init(&b, 256);
        cg_buf_appends(&b, "{\"ok\":true,\"result\":");
        cg_buf_append_json_str(&b, verdict, strlen(verdict));
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
    if (!ev.is_end || ev.call_id == NULL) {
        if (ev.is_end)
            cg_log_warn("vapi end message without a call id", "type=%s", ev.type_name);
        json_decref(root);
        cg_http_reply_json(req, 200, "{\"ok\":true,\"result\":\"ignored\"}");
        return;
    }
    if (!redis_ready(g)) {
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

/* ADMIN_TOKEN as a bearer token; without one, loopback clients only. */
static int admin_ok(struct cg_gate *g, struct cg_http_req *req)
{
    const char *token = g->cfg->admin_token;
    if (token[0] == '\0') {
        if (cg_http_req_is_loopback(req))
            return 1;
        cg_http_reply_error(req, 403, "forbidden",
                            "admin endpoints are loopback-only until ADMIN_TOKEN is set");
        return 0;
    }
    /* The scheme name is case-insensitive (RFC 9110 section 11.1). */
    const char *h = cg_http_req_header(req, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0 && cg_ct_streq(h + 7, token))
        return 1;
    cg_http_set_header(req, "WWW-Authenticate", "Bearer");
    cg_http_reply_error(req, 401, "unauthorized", "a valid admin bearer token is required");
    return 0;
}

enum snap_use { SNAP_PROCESS, SNAP_LIMIT, SNAP_METRICS };

struct snap {
    struct cg_gate *g;
    struct cg_http_req *req;
    enum snap_use use;
};

static void reply_snapshot(struct snap *s, const redisReply *r)
{
    struct cg_gate *g = s->g;
    long long active = rint_at(r, 0, 0), waiting = rint_at(r, 1, 0);
    long long limit = rint_at(r, 2, g->cfg->max_concurrency), eff = rint_at(r, 3, limit);
    struct cg_buf b;
    cg_buf_init(&b, 1 << 20);
    if (s->use == SNAP_PROCESS) {
        cg_buf_printf(&b,
                      "{\"message\":\"Queue processing triggered\",\"activeCalls\":%lld,"
                      "\"callsInQueue\":%lld,\"maxConcurrency\":%lld}",
                      active, waiting, limit);
        cg_http_reply_json(s->req, 200, cg_buf_str(&b));
    } else if (s->use == SNAP_LIMIT) {
        cg_buf_printf(&b,
                      "{\"limit\":%lld,\"effectiveLimit\":%lld,\"configuredLimit\":%d,"
                      "\"activeCalls\":%lld,\"callsInQueue\":%lld,\"backoffMs\":%lld}",
                      limit, eff, g->cfg->max_concurrency, active, waiting, rint_at(r, 4, 0));
        cg_http_reply_json(s->req, 200, cg_buf_str(&b));
    } else {
        struct cg_metrics *m = g->metrics;
        cg_metrics_set(m, "callgate_waiting", NULL, (double)waiting);
        cg_metrics_set(m, "callgate_active", NULL, (double)active);
        cg_metrics_set(m, "callgate_limit", NULL, (double)limit);
        cg_metrics_set(m, "callgate_effective_limit", NULL, (double)eff);
        cg_metrics_set(m, "callgate_redis_up", NULL, 1);
        cg_metrics_set(m, "callgate_admissions_in_flight", NULL, (double)g->nadmissions);
        /* The shared counters kept in Redis, for every instance at once. */
        for (size_t i = 5; r && i + 1 < r->elements; i += 2) {
            const char *field = rstr(r, i);
            const char *value = rstr(r, i + 1);
            /* The smoothed means (service_ms_ewma, admit_ms_ewma) are the
             * wait estimate's inputs, not event counts. */
            size_t flen = field ? strlen(field) : 0;
            if (field == NULL || value == NULL ||
                (flen > 5 && strcmp(field + flen - 5, "_ewma") == 0))
                continue;
            struct cg_buf l;
            cg_buf_init(&l, 256);
            cg_metrics_label(&l, "event", field);
            cg_metrics_set(m, "callgate_gate_events", cg_buf_str(&l), strtod(value, NULL));
            cg_buf_free(&l);
        }
        cg_metrics_render(m, &b);
        cg_http_reply(s->req, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    }
    cg_buf_free(&b);
}

static void on_snapshot(const redisReply *r, const char *err, void *arg)
{
    struct snap *s = arg;
    if (err != NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 5) {
        if (s->use == SNAP_METRICS) {
            cg_metrics_set(s->g->metrics, "callgate_redis_up", NULL, 0);
            struct cg_buf b;
            cg_buf_init(&b, 1 << 20);
            cg_metrics_render(s->g->metrics, &b);
            cg_http_reply(s->req, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
            cg_buf_free(&b);
        } else {
            cg_http_reply_error(s->req, 503, "unavailable", "state store unavailable");
        }
    } else {
        reply_snapshot(s, r);
    }
    free(s);
}

static void snapshot(struct cg_gate *g, struct cg_http_req *req, enum snap_use use)
{
    struct snap *s = cg_calloc(1, sizeof *s);
    s->g = g;
    s->req = req;
    s->use = use;
    struct gate_args a;
    gate_args_init(&a, g);
    gate_args_int(&a, g->cfg->max_concurrency);
    if (gate_eval(g, S_SNAPSHOT, &a, on_snapshot, s) != 0)
        on_snapshot(NULL, "eval refused", s);
}

static void handle_process_queue(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    if (!admin_ok(g, req))
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
    if (!admin_ok(g, req))
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

static void handle_metrics(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    snapshot(g, req, SNAP_METRICS);
}

int gate_http_register(struct cg_gate *g)
{
    if (g->metrics) {
        cg_metrics_declare(g->metrics, "callgate_waiting", CG_GAUGE, "Callers waiting now.", NULL,
                           0);
        cg_metrics_declare(g->metrics, "callgate_active", CG_GAUGE,
                           "Slots held now (callers being admitted or connected, and Vapi "
                           "calls that never got a caller).",
                           NULL, 0);
        cg_metrics_declare(g->metrics, "callgate_limit", CG_GAUGE,
                           "Concurrency limit (runtime value, else MAX_CONCURRENCY).", NULL, 0);
        cg_metrics_declare(g->metrics, "callgate_effective_limit", CG_GAUGE,
                           "Limit admission obeys now (lowered after Vapi over-limit answers).",
                           NULL, 0);
        cg_metrics_declare(g->metrics, "callgate_redis_up", CG_GAUGE,
                           "1 when Redis answered this scrape.", NULL, 0);
        cg_metrics_declare(g->metrics, "callgate_admissions_in_flight", CG_GAUGE,
                           "Admissions this instance is working on.", NULL, 0);
        cg_metrics_declare(g->metrics, "callgate_gate_events", CG_GAUGE,
                           "Gate-wide event counts kept in Redis (all instances).", NULL, 0);
    }
    struct {
        const char *path;
        unsigned methods;
        cg_http_handler fn;
    } routes[] = {
        {"/incoming", CG_HTTP_POST, handle_incoming},
        {"/queue-wait", CG_HTTP_POST, handle_queue_wait},
        {"/queue-exit", CG_HTTP_POST, handle_queue_exit},
        {"/call-status", CG_HTTP_POST, handle_call_status},
        {"/call-ended", CG_HTTP_POST, handle_call_ended},
        {"/process-queue", CG_HTTP_POST, handle_process_queue},
        {"/admin/limit", CG_HTTP_GET | CG_HTTP_PUT | CG_HTTP_POST | CG_HTTP_DELETE,
         handle_admin_limit},
        {"/metrics", CG_HTTP_GET, handle_metrics},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (cg_httpd_route(g->httpd, routes[i].path, routes[i].methods, routes[i].fn, g) != 0)
            return -1;
    return 0;
}
