/*
 * control.c - Vapi's phone-call-control message carried out on the Twilio
 * call (forward, hand-off to the human queue, hang-up), and Twilio's
 * report of how a transfer ended (/transfer-status). See control.h.
 */
#include "base/fmacros.h"

#include "gate/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "base/form.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/internal.h"
#include "gate/store.h"
#include "net/httpd.h"
#include "twilio/api.h"
#include "twilio/twiml.h"
#include "twilio/webhook.h"
#include "vapi/api.h"
#include "vapi/control.h"

/* What the assistant asked for, as the queue log and /metrics name it. */
enum ctl_kind { K_FORWARD, K_QUEUE, K_HANGUP };

static const char *const kind_names[] = {"forward", "queue", "hang-up"};

/* One phone-call-control message from its check to its answer. */
struct ctl {
    struct cg_gate *g;
    struct cg_http_req *req;
    enum ctl_kind kind;
    char vapi_id[CG_VAPI_MAX_ID + 1];
    char sid[40];
    char dest[CG_VAPI_SIP_URI_MAX + 1]; /* number or SIP URI; "" for a hang-up */
    char *twiml;                        /* the document to push (not for a hang-up) */
    char *message;                      /* said first, or NULL */
    char *summary;                      /* for the hand-off's task, or NULL */
    char *number, *extension, *sip_uri, *caller_id;
    const char *result; /* the word of the answer once settled */
};

static void ctl_free(struct ctl *c)
{
    free(c->twiml);
    free(c->message);
    free(c->summary);
    free(c->number);
    free(c->extension);
    free(c->sip_uri);
    free(c->caller_id);
    free(c);
}

static char *dup_or_null(const char *s)
{
    return s ? cg_strdup(s) : NULL;
}

static void count(struct cg_gate *g, const char *request, const char *outcome)
{
    if (g->metrics == NULL)
        return;
    struct cg_buf b;
    cg_buf_init(&b, 256);
    cg_metrics_label(&b, "request", request);
    cg_buf_appendc(&b, ',');
    cg_metrics_label(&b, "outcome", outcome);
    cg_metrics_inc(g->metrics, "callgate_call_control_total", cg_buf_str(&b), 1);
    cg_buf_free(&b);
}

static void count_failure(struct cg_gate *g, const char *reason)
{
    if (g->metrics == NULL)
        return;
    struct cg_buf b;
    cg_buf_init(&b, 128);
    cg_metrics_label(&b, "reason", reason);
    cg_metrics_inc(g->metrics, "callgate_transfer_failures_total", cg_buf_str(&b), 1);
    cg_buf_free(&b);
}

static void reply(struct ctl *c, const char *word)
{
    struct cg_buf b;
    cg_buf_init(&b, 128);
    cg_buf_appends(&b, "{\"ok\":true,\"result\":");
    cg_buf_append_json_str(&b, word, strlen(word));
    cg_buf_appendc(&b, '}');
    cg_http_reply_json(c->req, 200, cg_buf_str(&b));
    cg_buf_free(&b);
    ctl_free(c);
}

static void reply_unavailable(struct ctl *c)
{
    cg_http_reply_error(c->req, 503, "unavailable", "state store unavailable; retry later");
    ctl_free(c);
}

/* 1 when dest is one of HANDOFF_NUMBERS (items trimmed of spaces). */
static int is_handoff(const struct cg_config *cfg, const char *dest)
{
    if (cfg->handoff_workflow_sid == NULL || cfg->handoff_workflow_sid[0] == '\0' ||
        cfg->handoff_numbers == NULL)
        return 0;
    size_t dn = strlen(dest);
    const char *p = cfg->handoff_numbers;
    for (;;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ","), m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m == dn && memcmp(p, dest, m) == 0)
            return 1;
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

/* {public}/<path>, or NULL when it is no usable URL. */
static char *public_url(const struct cg_gate *g, const char *path, const char *query_sid)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_TWIML_MAX_URL + 1);
    int rc = cg_buf_printf(&b, "%s%s", g->cfg->public_url, path);
    if (query_sid)
        rc |= cg_buf_printf(&b, "?taskQueueSid=%s", query_sid);
    if (rc != 0 || cg_twiml_url_ok(cg_buf_str(&b)) != 0) {
        cg_buf_free(&b);
        return NULL;
    }
    return cg_buf_take(&b);
}

/* The hand-off task's attributes: the Vapi call id, the summary when there
 * is one (cut at CG_VAPI_CONTROL_TEXT_MAX bytes on a character boundary),
 * the wait in the queue before the assistant and the time with it. */
static char *task_json(const struct ctl *c, long long waited_ms, long long ai_ms, int with_summary)
{
    struct cg_buf b;
    cg_buf_init(&b, 16384);
    int rc = cg_buf_appends(&b, "{\"vapiCallId\":");
    rc |= cg_buf_append_json_str(&b, c->vapi_id, strlen(c->vapi_id));
    rc |= cg_buf_appends(&b, ",\"twilioCallSid\":");
    rc |= cg_buf_append_json_str(&b, c->sid, strlen(c->sid));
    rc |= cg_buf_printf(&b, ",\"queueWaitSeconds\":%lld,\"assistantSeconds\":%lld",
                        waited_ms / 1000, ai_ms / 1000);
    rc |= cg_buf_printf(&b, ",\"waitSoFarSeconds\":%lld", (waited_ms + ai_ms) / 1000);
    if (with_summary && c->summary) {
        size_t n = strlen(c->summary);
        if (n > CG_VAPI_CONTROL_TEXT_MAX) {
            n = CG_VAPI_CONTROL_TEXT_MAX;
            while (n > 0 && ((unsigned char)c->summary[n] & 0xc0) == 0x80)
                n--;
        }
        rc |= cg_buf_appends(&b, ",\"summary\":");
        rc |= cg_buf_append_json_str(&b, c->summary, n);
    }
    rc |= cg_buf_appendc(&b, '}');
    if (rc != 0) {
        cg_buf_free(&b);
        return cg_strdup("{}");
    }
    return cg_buf_take(&b);
}

/* The TwiML of a forward or hand-off. Within Twilio's 4,000 characters:
 * if the message or the summary make it longer, they are left out. */
static char *build_twiml(struct ctl *c, long long waited_ms, long long ai_ms)
{
    struct cg_gate *g = c->g;
    char *action = public_url(g, "/transfer-status", NULL);
    char *twiml = NULL;
    for (int full = 1; full >= 0 && twiml == NULL; full--) {
        if (c->kind == K_QUEUE) {
            char *wait = public_url(g, "/queue-wait", g->cfg->handoff_task_queue_sid);
            char *json = task_json(c, waited_ms, ai_ms, full);
            struct cg_twiml_task t = {
                .message = full ? c->message : NULL,
                .workflow_sid = g->cfg->handoff_workflow_sid,
                .wait_url = wait,
                .action_url = action,
                .task_json = json,
            };
            twiml = cg_twiml_enqueue_task(&t);
            free(wait);
            free(json);
        } else {
            struct cg_twiml_transfer t = {
                .message = full ? c->message : NULL,
                .number = c->number,
                .sip_uri = c->sip_uri,
                .extension = c->extension,
                .caller_id = c->caller_id,
                .action_url = action,
            };
            twiml = cg_twiml_transfer_dial(&t);
        }
    }
    free(action);
    return twiml;
}

/* ---- after Twilio's answer ---- */

static void on_recorded(const struct gate_reply *rep, void *arg)
{
    struct ctl *c = arg;
    long long ai_ms = rep->r ? cg_redis_reply_int(rep->r, 2, 0) : 0;
    if (rep->verdict == GV_NONE)
        cg_log_warn("transfer not recorded; the slot is settled by vapi's end or the sweep",
                    "sid=%s vapi=%s error=%s", c->sid, c->vapi_id, rep->err ? rep->err : "");
    else
        cg_log_info("assistant handed the caller on",
                    "sid=%s vapi=%s request=%s dest=%s "
                    "ai_s=%.1f outcome=%s verdict=%s",
                    c->sid, c->vapi_id, kind_names[c->kind], c->dest, (double)ai_ms / 1000.0,
                    c->result, gate_verdict_name(rep->verdict));
    reply(c, c->result);
}

static void record(struct ctl *c, const char *action)
{
    if (gate_store_control_record(&c->g->store, c->vapi_id, action, c->dest,
                                  c->g->cfg->end_grace_ms, on_recorded, c) != 0)
        on_recorded(&(struct gate_reply){.err = "eval refused"}, c);
}

static void on_fallback_pushed(const struct cg_twilio_result *res, void *arg)
{
    struct ctl *c = arg;
    gate_note_api(c->g, GATE_API_TWILIO, res->http_status);
    if (res->outcome == CG_TW_OK) {
        record(c, "failed");
        return;
    }
    /* Twilio applied nothing: the assistant's stream still runs. */
    cg_log_error("transfer-failed message refused too; the caller stays with the assistant",
                 "sid=%s status=%ld code=%d", c->sid, res->http_status, res->code);
    reply(c, c->result);
}

/* The forward was refused: the caller hears TRANSFER_FAILED_MESSAGE and
 * the call ends, rather than wait on an assistant that believes it has
 * handed them on. */
static void fallback(struct ctl *c)
{
    c->result = "refused";
    char *twiml = cg_twiml_say_hangup(c->g->cfg->transfer_failed_message);
    int rc = cg_twilio_update_call_twiml(c->g->twilio, c->sid, twiml, on_fallback_pushed, c);
    free(twiml);
    if (rc != 0)
        reply(c, c->result);
}

static void on_pushed(const struct cg_twilio_result *res, void *arg)
{
    struct ctl *c = arg;
    struct cg_gate *g = c->g;
    const char *request = kind_names[c->kind];
    gate_note_api(g, GATE_API_TWILIO, res->http_status);
    switch (res->outcome) {
    case CG_TW_OK:
        count(g, request, "ok");
        c->result = c->kind == K_HANGUP ? "hung-up" : c->kind == K_QUEUE ? "queued" : "forwarded";
        record(c, request);
        return;
    case CG_TW_GONE:
        count(g, request, "gone");
        count_failure(g, "caller-gone");
        cg_log_info("transfer not made: the caller's call is over",
                    "sid=%s vapi=%s request=%s "
                    "code=%d",
                    c->sid, c->vapi_id, request, res->code);
        reply(c, "caller-gone");
        return;
    case CG_TW_CANCELLED:
        cg_http_reply_error(c->req, 503, "unavailable", "shutting down; retry later");
        ctl_free(c);
        return;
    default: {
        char reason[32];
        snprintf(reason, sizeof reason, "twilio-%d", res->code ? res->code : (int)res->http_status);
        count(g, request, "refused");
        count_failure(g, reason);
        cg_log_warn("twilio refused the transfer; the caller hears the transfer-failed message",
                    "sid=%s vapi=%s request=%s dest=%s status=%ld code=%d msg=%s", c->sid,
                    c->vapi_id, request, c->dest, res->http_status, res->code,
                    res->message ? res->message : "");
        if (c->kind == K_HANGUP) {
            reply(c, "refused");
            return;
        }
        fallback(c);
        return;
    }
    }
}

/* ---- the check, then the push ---- */

static void on_checked(const struct gate_reply *rep, void *arg)
{
    struct ctl *c = arg;
    struct cg_gate *g = c->g;
    const char *request = kind_names[c->kind];
    if (rep->verdict == GV_NONE) {
        reply_unavailable(c);
        return;
    }
    if (rep->verdict != GV_CONNECTED) {
        const char *word =
            rep->verdict == GV_UNKNOWN || rep->verdict == GV_STALE ? "unknown" : "ignored";
        count(g, request, word);
        cg_log_info("call control for a call not with the assistant; nothing done",
                    "vapi=%s request=%s state=%s", c->vapi_id, request,
                    cg_redis_reply_str(rep->r, 0) ? cg_redis_reply_str(rep->r, 0) : "");
        reply(c, word);
        return;
    }
    const char *sid = cg_redis_reply_str(rep->r, 1);
    if (sid == NULL || !cg_twilio_sid_valid(sid, "CA")) {
        reply(c, "unknown");
        return;
    }
    snprintf(c->sid, sizeof c->sid, "%s", sid);
    int rc;
    if (c->kind == K_HANGUP) {
        rc = cg_twilio_end_call(g->twilio, c->sid, on_pushed, c);
    } else {
        c->twiml =
            build_twiml(c, cg_redis_reply_int(rep->r, 2, 0), cg_redis_reply_int(rep->r, 3, 0));
        if (c->twiml == NULL) {
            count(g, request, "refused");
            count_failure(g, "twiml");
            cg_log_warn("transfer twiml cannot be built; the caller hears the transfer-failed "
                        "message",
                        "sid=%s dest=%s", c->sid, c->dest);
            fallback(c);
            return;
        }
        rc = cg_twilio_update_call_twiml(g->twilio, c->sid, c->twiml, on_pushed, c);
    }
    if (rc != 0)
        reply_unavailable(c);
}

void gate_control_handle(struct cg_gate *g, struct cg_http_req *req, const struct cg_vapi_event *ev,
                         json_t *root)
{
    struct cg_vapi_control pc;
    char err[128];
    if (cg_vapi_parse_control(root, &pc, err, sizeof err) != 0) {
        count(g, "unknown", "bad_request");
        json_decref(root);
        cg_http_reply_error(req, 400, "bad_request", err);
        return;
    }
    if (ev->call_id == NULL || strlen(ev->call_id) > CG_VAPI_MAX_ID) {
        json_decref(root);
        cg_http_reply_error(req, 400, "bad_request", "message.call.id missing or too long");
        return;
    }
    if (!gate_redis_ready(g)) {
        json_decref(root);
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable; retry later");
        return;
    }
    struct ctl *c = cg_calloc(1, sizeof *c);
    c->g = g;
    c->req = req;
    snprintf(c->vapi_id, sizeof c->vapi_id, "%s", ev->call_id);
    c->message = dup_or_null(pc.message);
    c->summary = dup_or_null(pc.summary);
    c->number = dup_or_null(pc.number);
    c->extension = dup_or_null(pc.extension);
    c->sip_uri = dup_or_null(pc.sip_uri);
    c->caller_id = dup_or_null(pc.caller_id);
    const char *dest = pc.sip_uri ? pc.sip_uri : pc.number ? pc.number : "";
    snprintf(c->dest, sizeof c->dest, "%s", dest);
    c->kind = pc.request == CG_VAPI_CTL_HANGUP ? K_HANGUP
              : is_handoff(g->cfg, c->dest)    ? K_QUEUE
                                               : K_FORWARD;
    json_decref(root);
    if (gate_store_control_check(&g->store, c->vapi_id, on_checked, c) != 0)
        on_checked(&(struct gate_reply){.err = "eval refused"}, c);
}

/* ---- /transfer-status: how a <Dial> or hand-off <Enqueue> ended ---- */

static void reply_twiml(struct cg_http_req *req, char *twiml)
{
    cg_http_reply(req, 200, "text/xml", twiml, strlen(twiml));
    free(twiml);
}

static int one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static void handle_transfer_status(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = cg_twhook_check(req, g->cfg, &sid);
    if (form == NULL)
        return;
    const char *dial = cg_form_get(form, "DialCallStatus");
    const char *queue = cg_form_get(form, "QueueResult");
    static const char *const dial_ok[] = {"completed", "answered", NULL};
    static const char *const dial_failed[] = {"busy", "no-answer", "failed", "canceled", NULL};
    static const char *const queue_ok[] = {"bridged", "hangup", "redirected",
                                           "redirected-from-bridged", NULL};
    const char *status = dial ? dial : queue;
    if (status == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "DialCallStatus or QueueResult is missing");
        return;
    }
    if ((dial && one_of(dial, dial_ok)) || (!dial && one_of(queue, queue_ok))) {
        /* The caller reached the destination (or hung up): nothing follows,
         * and a document without verbs ends the call. */
        cg_log_debug("transfer ended", "sid=%s status=%s", sid, status);
        reply_twiml(req, cg_twiml_empty());
        return;
    }
    if (dial && !one_of(dial, dial_failed)) {
        cg_http_reply_error(req, 400, "bad_request", "unknown DialCallStatus");
        return;
    }
    char reason[48];
    snprintf(reason, sizeof reason, "%s-%s", dial ? "dial" : "queue", status);
    for (char *p = reason; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '-'))
            *p = '_';
    count_failure(g, reason);
    cg_log_warn("transfer failed; the caller hears the transfer-failed message", "sid=%s status=%s",
                sid, reason);
    reply_twiml(req, cg_twiml_say_hangup(g->cfg->transfer_failed_message));
}

int gate_control_register(struct cg_httpd *httpd, struct cg_gate *g)
{
    if (g->metrics) {
        cg_metrics_declare(g->metrics, "callgate_call_control_total", CG_COUNTER,
                           "Vapi phone-call-control requests, by request (forward, queue, "
                           "hang-up) and outcome.",
                           NULL, 0);
        cg_metrics_declare(g->metrics, "callgate_transfer_failures_total", CG_COUNTER,
                           "Transfers that did not reach their destination, by reason.", NULL, 0);
    }
    return cg_httpd_route(httpd, "/transfer-status", CG_HTTP_POST, handle_transfer_status, g);
}
