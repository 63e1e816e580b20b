/*
 * relay.c - the assistant's other server messages: forwarded to the user's
 * own server and its answer relayed to Vapi, or acknowledged and counted
 * (relay.h).
 */
#include "base/fmacros.h"

#include "gate/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/list.h"
#include "base/log.h"
#include "base/metrics.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "vapi/api.h"

#define METRIC "callgate_vapi_messages_total"
/* Tool calls answered one by one in an error answer. */
#define MAX_TOOL_CALLS 128
/* Distinct unknown type names warned about (each once). */
#define MAX_UNKNOWN_SEEN 32
/* At most one warning per this many ms about failing upstream answers. */
#define FAIL_LOG_EVERY_MS 10000

/* Vapi's server message types (the ServerMessage schema of the OpenAPI
 * spec): the label values of the metric. Anything else counts as other. */
static const char *const known_types[] = {
    "assistant-request",
    "conversation-update",
    "end-of-call-report",
    "function-call",
    "handoff-destination-request",
    "hang",
    "knowledge-base-request",
    "model-output",
    "phone-call-control",
    "speech-update",
    "status-update",
    "tool-calls",
    "transfer-destination-request",
    "transfer-update",
    "transcript",
    "user-interrupted",
    "language-change-detected",
    "voice-input",
    "assistant.started",
    "assistant.speechStarted",
    "voice-request",
    "call.endpointing.request",
    "chat.created",
    "chat.deleted",
    "session.created",
    "session.updated",
    "session.deleted",
    "call.deleted",
    "call.delete.failed",
    "call.artifact.upload",
    "campaign.predial",
};
#define NKNOWN (sizeof known_types / sizeof known_types[0])

struct gate_relay {
    struct cg_httpc *httpc;
    struct cg_metrics *metrics;
    char *url; /* NULL: acknowledge only */
    long timeout_ms;
    char *hop_header; /* "X-Callgate-Relay-Hop: <instance>" */
    struct cg_list ops;
    unsigned char seen[NKNOWN];
    char *unknown_seen[MAX_UNKNOWN_SEEN];
    size_t nunknown;
    uint64_t fail_logged_ms;
    unsigned long fail_suppressed;
};

/* One forwarded message between its start and the upstream's answer. */
struct relay_op {
    struct gate_relay *r;    /* NULL once detached (gate_relay_free) */
    struct cg_http_req *req; /* NULL once answered */
    json_t *root;            /* the message, for the error answer */
    const char *label;       /* static: a known type or "other" */
    char type[64];           /* as sent, for logs */
    uint64_t started_us;
    struct cg_list link;
};

static const char *type_label(const char *type, size_t *index)
{
    for (size_t i = 0; i < NKNOWN; i++)
        if (strcmp(type, known_types[i]) == 0) {
            *index = i;
            return known_types[i];
        }
    *index = NKNOWN;
    return "other";
}

static void count(struct gate_relay *r, const char *label, const char *outcome)
{
    if (r->metrics == NULL)
        return;
    struct cg_buf b;
    cg_buf_init(&b, 256);
    cg_metrics_label(&b, "outcome", outcome);
    cg_buf_appendc(&b, ',');
    cg_metrics_label(&b, "type", label);
    cg_metrics_inc(r->metrics, METRIC, cg_buf_str(&b), 1);
    cg_buf_free(&b);
}

/* 1 the first time this type arrives (known types by index, others by
 * name, up to MAX_UNKNOWN_SEEN names; past that, never again). */
static int first_of_type(struct gate_relay *r, const char *type, size_t index)
{
    if (index < NKNOWN) {
        if (r->seen[index])
            return 0;
        r->seen[index] = 1;
        return 1;
    }
    for (size_t i = 0; i < r->nunknown; i++)
        if (strcmp(r->unknown_seen[i], type) == 0)
            return 0;
    if (r->nunknown == MAX_UNKNOWN_SEEN)
        return 0;
    r->unknown_seen[r->nunknown++] = cg_strndup(type, 63);
    return 1;
}

/* ---- the answer when the upstream failed ---- */

static void add_tool_call(json_t *results, const json_t *call, const char *why)
{
    const char *id = json_string_value(json_object_get(call, "id"));
    if (id == NULL || id[0] == '\0' || json_array_size(results) >= MAX_TOOL_CALLS)
        return;
    json_t *res = json_object();
    json_object_set_new(res, "toolCallId", json_string(id));
    const char *name = json_string_value(cg_json_path(call, "function.name"));
    if (name != NULL)
        json_object_set_new(res, "name", json_string(name));
    json_object_set_new(res, "error", json_string(why));
    json_array_append_new(results, res);
}

char *gate_relay_error_answer(const json_t *root, const char *why)
{
    const json_t *msg = json_object_get(root, "message");
    const char *type = json_string_value(json_object_get(msg, "type"));
    json_t *out = json_object();
    if (type != NULL && strcmp(type, "tool-calls") == 0) {
        json_t *results = json_array();
        size_t i;
        const json_t *e;
        const json_t *list = json_object_get(msg, "toolCallList");
        if (json_is_array(list))
            json_array_foreach (list, i, e)
                add_tool_call(results, e, why);
        /* The same calls again, nested: only those not listed above. */
        list = json_object_get(msg, "toolWithToolCallList");
        if (json_array_size(results) == 0 && json_is_array(list))
            json_array_foreach (list, i, e)
                add_tool_call(results, json_object_get(e, "toolCall"), why);
        json_object_set_new(out, "results", results);
    } else if (type != NULL && strcmp(type, "knowledge-base-request") == 0) {
        json_object_set_new(out, "documents", json_array());
    } else {
        json_object_set_new(out, "error", json_string(why));
    }
    char *text = cg_json_dumps(out);
    json_decref(out);
    return text;
}

/* ---- answers ---- */

static void answer_failed(struct relay_op *op, const char *outcome, const char *why)
{
    char *body = gate_relay_error_answer(op->root, why);
    cg_http_set_header(op->req, "X-Callgate-Relay", outcome);
    cg_http_reply_json(op->req, 200, body);
    free(body);
    op->req = NULL;
}

/* Content-Type as the upstream sent it when it is one printable line. */
static const char *usable_content_type(const char *ct)
{
    if (ct == NULL || ct[0] == '\0' || strlen(ct) > 200)
        return "application/json";
    for (const char *p = ct; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return "application/json";
    return ct;
}

static void log_failure(struct gate_relay *r, const struct relay_op *op, const char *outcome,
                        long status, const char *error)
{
    uint64_t now = cg_mono_ms();
    if (r->fail_logged_ms != 0 && now - r->fail_logged_ms < FAIL_LOG_EVERY_MS) {
        r->fail_suppressed++;
        cg_log_debug("vapi message not relayed", "type=%s outcome=%s status=%ld", op->type, outcome,
                     status);
        return;
    }
    cg_log_warn("vapi message not relayed; vapi got an error answer",
                "type=%s outcome=%s status=%ld error=%s suppressed=%lu", op->type, outcome, status,
                error ? error : "", r->fail_suppressed);
    r->fail_logged_ms = now;
    r->fail_suppressed = 0;
}

static void on_upstream(const struct cg_httpc_result *res, void *arg)
{
    struct relay_op *op = arg;
    struct gate_relay *r = op->r;
    if (r == NULL) {
        /* Detached: the request was answered when the relay was freed. */
        json_decref(op->root);
        free(op);
        return;
    }
    cg_list_remove(&op->link);
    const char *outcome = NULL, *why = NULL;
    if (res->error != NULL) {
        if (strcmp(res->error, "timeout") == 0) {
            outcome = "timeout";
            why = "The server did not answer in time.";
        } else if (strcmp(res->error, "response too large") == 0) {
            outcome = "too_large";
            why = "The server's answer was too large.";
        } else if (strcmp(res->error, "cancelled") == 0) {
            outcome = "shutdown";
            why = "The server could not be reached.";
        } else {
            outcome = "unreachable";
            why = "The server could not be reached.";
        }
    } else if (res->status < 200 || res->status > 299) {
        outcome = "upstream_error";
        why = "The server failed to handle the request.";
    }
    if (outcome != NULL) {
        log_failure(r, op, outcome, res->status, res->error);
        count(r, op->label, outcome);
        if (op->req != NULL)
            answer_failed(op, outcome, why);
    } else if (op->req == NULL) {
        /* A copy: Vapi had callgate's own answer. */
        count(r, op->label, "relayed");
    } else {
        cg_log_debug("vapi message relayed", "type=%s status=%ld bytes=%zu ms=%.1f", op->type,
                     res->status, res->body_len, (double)(cg_mono_us() - op->started_us) / 1000.0);
        count(r, op->label, "relayed");
        cg_http_set_header(op->req, "X-Callgate-Relay", "relayed");
        cg_http_reply(op->req, (int)res->status, usable_content_type(res->content_type), res->body,
                      res->body_len);
        op->req = NULL;
    }
    json_decref(op->root);
    free(op);
}

/* The "{ts}" unit of Vapi's own signature: milliseconds unless the
 * timestamp header held seconds. */
static int timestamp_in_ms(struct cg_http_req *req, const struct cg_vapi_auth *auth)
{
    const char *name = auth->hmac_timestamp_header && auth->hmac_timestamp_header[0]
                           ? auth->hmac_timestamp_header
                           : "x-timestamp";
    const char *ts = cg_http_req_header(req, name);
    if (ts == NULL || ts[0] == '\0')
        return 1;
    return strlen(ts) >= 12 || strtoull(ts, NULL, 10) >= 100000000000ULL;
}

/* Sends op's message on; req (valid now) is the one it came with. */
static void forward(struct gate_relay *r, struct relay_op *op, struct cg_http_req *req,
                    const struct cg_vapi_auth *auth, const char *body, size_t len)
{
    char *signed_lines[CG_VAPI_SIGN_MAX + 1];
    int n = cg_vapi_sign(auth, body, len, cg_wall_ms(), timestamp_in_ms(req, auth), signed_lines);
    if (n < 0) {
        cg_log_error("cannot sign a vapi message for VAPI_FORWARD_URL", "type=%s", op->type);
        count(r, op->label, "unreachable");
        if (op->req != NULL)
            answer_failed(op, "unreachable", "The server could not be reached.");
        json_decref(op->root);
        free(op);
        return;
    }
    const char *headers[CG_VAPI_SIGN_MAX + 3];
    size_t k = 0;
    headers[k++] = "Accept: application/json";
    headers[k++] = r->hop_header;
    for (int i = 0; i < n; i++)
        headers[k++] = signed_lines[i];
    headers[k] = NULL;
    struct cg_httpc_request hr = {
        .method = "POST",
        .url = r->url,
        .body = body,
        .body_len = len,
        .content_type = "application/json",
        .headers = headers,
        .timeout_ms = r->timeout_ms,
        .max_response_bytes = GATE_RELAY_MAX_RESPONSE,
    };
    int rc = cg_httpc_send(r->httpc, &hr, on_upstream, op);
    cg_vapi_sign_free(signed_lines);
    if (rc != 0) {
        count(r, op->label, "unreachable");
        if (op->req != NULL)
            answer_failed(op, "unreachable", "The server could not be reached.");
        json_decref(op->root);
        free(op);
        return;
    }
    cg_list_push_front(&r->ops, &op->link);
}

void gate_relay_message(struct gate_relay *r, struct cg_http_req *req,
                        const struct cg_vapi_event *ev, json_t *root,
                        const struct cg_vapi_auth *auth, const char *body, size_t len)
{
    const char *type = ev->type_name ? ev->type_name : "";
    size_t index;
    const char *label = type_label(type, &index);
    int first = first_of_type(r, type, index);
    if (r->url == NULL) {
        if (first)
            cg_log_warn("vapi server message not consumed by callgate; acknowledged (set "
                        "VAPI_FORWARD_URL to relay such messages to your own server)",
                        "type=%s", type);
        count(r, label, "acknowledged");
        cg_http_reply_json(req, 200, "{\"ok\":true,\"result\":\"ignored\"}");
        return;
    }
    if (first)
        cg_log_info("relaying vapi server messages of a new type", "type=%s", type);
    struct relay_op *op = cg_calloc(1, sizeof *op);
    op->req = req;
    op->root = json_incref(root);
    op->label = label;
    op->r = r;
    op->started_us = cg_mono_us();
    snprintf(op->type, sizeof op->type, "%s", type);
    if (cg_http_req_header(req, GATE_RELAY_HOP_HEADER) != NULL) {
        cg_log_error("a relayed vapi message came back to callgate; VAPI_FORWARD_URL leads "
                     "here",
                     "type=%s hop=%s", op->type, cg_http_req_header(req, GATE_RELAY_HOP_HEADER));
        count(r, label, "loop");
        answer_failed(op, "loop", "The server could not be reached.");
        json_decref(op->root);
        free(op);
        return;
    }
    forward(r, op, req, auth, body, len);
}

void gate_relay_copy(struct gate_relay *r, struct cg_http_req *req, const struct cg_vapi_event *ev,
                     const struct cg_vapi_auth *auth, const char *body, size_t len)
{
    if (r->url == NULL || cg_http_req_header(req, GATE_RELAY_HOP_HEADER) != NULL)
        return;
    const char *type = ev->type_name ? ev->type_name : "";
    size_t index;
    struct relay_op *op = cg_calloc(1, sizeof *op);
    op->r = r;
    op->label = type_label(type, &index);
    op->started_us = cg_mono_us();
    snprintf(op->type, sizeof op->type, "%s", type);
    forward(r, op, req, auth, body, len);
}

struct gate_relay *gate_relay_new(const struct gate_relay_opts *o)
{
    if (o == NULL || o->httpc == NULL || o->timeout_ms <= 0)
        return NULL;
    struct gate_relay *r = cg_calloc(1, sizeof *r);
    r->httpc = o->httpc;
    r->metrics = o->metrics;
    r->timeout_ms = o->timeout_ms;
    cg_list_init(&r->ops);
    if (o->url != NULL && o->url[0] != '\0')
        r->url = cg_strdup(o->url);
    struct cg_buf b;
    cg_buf_init(&b, 512);
    cg_buf_printf(&b, "%s: %.200s", GATE_RELAY_HOP_HEADER,
                  o->instance && o->instance[0] ? o->instance : "callgate");
    r->hop_header = cg_buf_take(&b);
    if (r->metrics != NULL)
        cg_metrics_declare(r->metrics, METRIC, CG_COUNTER,
                           "Vapi server messages callgate does not consume, by type and what "
                           "became of them (acknowledged, relayed to VAPI_FORWARD_URL, or the "
                           "upstream's failure).",
                           NULL, 0);
    return r;
}

void gate_relay_free(struct gate_relay *r)
{
    if (r == NULL)
        return;
    struct cg_list *it;
    while ((it = cg_list_first(&r->ops)) != NULL) {
        struct relay_op *op = cg_list_entry(it, struct relay_op, link);
        cg_list_remove(&op->link);
        op->r = NULL;
        if (op->req != NULL)
            cg_http_reply_error(op->req, 503, "unavailable", "callgate is shutting down");
        op->req = NULL;
    }
    for (size_t i = 0; i < r->nunknown; i++)
        free(r->unknown_seen[i]);
    free(r->url);
    free(r->hop_header);
    free(r);
}
