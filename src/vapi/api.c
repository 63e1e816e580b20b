#include "base/fmacros.h"

#include "vapi/api.h"

#include "base/err.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/crypto.h"
#include "net/httpc.h"
#include "base/json.h"
#include "base/list.h"
#include "base/log.h"
#include "base/clock.h"
#include "base/form.h"
#include "base/utf8.h"
#include "twilio/api.h"
#include "vapi/call_list.h"
#include "twilio/signature.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RESPONSE (1024 * 1024)
/* A list page holds whole Call objects, transcripts of ended calls included. */
#define MAX_LIST_RESPONSE (32 * 1024 * 1024)
/* Bounds on configured identifiers and the request body. */
#define MAX_OPT_LEN  1024
#define MAX_BODY_LEN 16384

enum op_kind { OP_CREATE, OP_GET, OP_LIST };

/* One request between its start and its callback. */
struct vp_op {
    struct cg_vapi *v; /* NULL once reported (cancelled while in flight) */
    enum op_kind kind;
    cg_vapi_create_cb create_cb;
    cg_vapi_get_cb get_cb;
    cg_vapi_list_cb list_cb;
    void *arg;
    struct cg_list link; /* in cg_vapi.ops while v is set */
    int outbound;        /* create: Vapi dials out, no TwiML in the answer */
};

struct cg_vapi {
    struct cg_httpc *httpc;
    char *base_url;
    char *api_key;
    char *phone_number_id;
    char *assistant_id;
    char *gate; /* metadata.callgateGate, or NULL */
    int max_duration_s;
    long timeout_ms;
    char *server_messages; /* NULL: not sent */
    struct cg_list ops;    /* requests not yet reported (struct vp_op), newest first */
    int closing;
};

static const char *const request_headers[] = {"Accept: application/json", NULL};

static int nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Case-insensitive substring test (strcasestr is a GNU extension). */
static int ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++) {
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    }
    return 0;
}

/* ---- operation list ---- */

static void op_link(struct cg_vapi *v, struct vp_op *op)
{
    op->v = v;
    cg_list_push_front(&v->ops, &op->link);
}

static void op_unlink(struct vp_op *op)
{
    struct cg_vapi *v = op->v;
    if (v == NULL)
        return;
    cg_list_remove(&op->link);
    op->v = NULL;
}

/* Calls back with the result; the callback may free the client. */
static void deliver_create(struct vp_op *op, struct cg_vapi_create_result *res)
{
    op_unlink(op);
    op->create_cb(res, op->arg);
}

static void deliver_get(struct vp_op *op, struct cg_vapi_get_result *res)
{
    op_unlink(op);
    op->get_cb(res, op->arg);
}

static void deliver_list(struct vp_op *op, struct cg_vapi_list_result *res)
{
    op_unlink(op);
    op->list_cb(res, op->arg);
}

static void cancel(struct vp_op *op)
{
    if (op->kind == OP_LIST) {
        struct cg_vapi_list_result res = {.error = "cancelled", .retry_after_s = -1};
        deliver_list(op, &res);
    } else if (op->kind == OP_CREATE) {
        struct cg_vapi_create_result res = {.outcome = CG_VAPI_CANCELLED,
                                            .retry_after_s = -1,
                                            .concurrency_limit = -1,
                                            .remaining = -1,
                                            .message = "cancelled"};
        deliver_create(op, &res);
    } else {
        struct cg_vapi_get_result res = {.state = CG_VAPI_CALL_UNAVAILABLE};
        deliver_get(op, &res);
    }
}

/* ---- create ---- */

/* Vapi's error text: message as a string, or the first string of a message
 * array, else error. *concurrency is set when any of them mentions the
 * concurrency limit. */
static const char *error_text(const json_t *root, int *concurrency)
{
    *concurrency = 0;
    const char *text = NULL;
    const json_t *m = json_object_get(root, "message");
    if (json_is_string(m)) {
        text = json_string_value(m);
        *concurrency |= ci_contains(text, "concurrency");
    } else if (json_is_array(m)) {
        size_t i;
        const json_t *e;
        json_array_foreach (m, i, e) {
            if (!json_is_string(e))
                continue;
            if (text == NULL)
                text = json_string_value(e);
            *concurrency |= ci_contains(json_string_value(e), "concurrency");
        }
    }
    const char *error = cg_json_str(root, "error");
    if (error != NULL) {
        *concurrency |= ci_contains(error, "concurrency");
        if (text == NULL)
            text = error;
    }
    return text;
}

static void fill_limits(const json_t *root, struct cg_vapi_create_result *res)
{
    long long v;
    if (cg_json_int(root, "subscriptionLimits.concurrencyLimit", &v) == 0 && v >= LONG_MIN &&
        v <= LONG_MAX)
        res->concurrency_limit = (long)v;
    if (cg_json_int(root, "subscriptionLimits.remainingConcurrentCalls", &v) == 0 &&
        v >= LONG_MIN && v <= LONG_MAX)
        res->remaining = (long)v;
}

/* A 2xx in the shape of a batch answer (CallBatchResponse: the only schema
 * the spec gives subscriptionLimits in) that created nothing and whose
 * errors[].error mentions the concurrency limit. */
static int batch_overlimit(const json_t *root)
{
    const json_t *results = json_object_get(root, "results");
    const json_t *errors = json_object_get(root, "errors");
    if (!json_is_array(results) || json_array_size(results) > 0 || !json_is_array(errors))
        return 0;
    size_t i;
    const json_t *e;
    json_array_foreach (errors, i, e) {
        const char *text = cg_json_str(e, "error");
        if (text != NULL && ci_contains(text, "concurrency"))
            return 1;
    }
    return 0;
}

static void on_create(const struct cg_httpc_result *hres, void *arg)
{
    struct vp_op *op = arg;
    if (op->v == NULL) {
        free(op);
        return;
    }
    struct cg_vapi_create_result res = {
        .http_status = hres->status,
        .retry_after_s = hres->retry_after_s,
        .concurrency_limit = -1,
        .remaining = -1,
        .duration_us = hres->duration_us,
    };
    json_t *root = NULL;
    long st = hres->status;
    if (hres->error != NULL) {
        res.outcome = strcmp(hres->error, "cancelled") == 0 ? CG_VAPI_CANCELLED : CG_VAPI_RETRY;
        res.message = hres->error;
        goto done;
    }
    root = cg_json_parse(hres->body, hres->body_len, CG_JSON_MAX_DEPTH, NULL, 0);
    if (root != NULL && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    if (root != NULL)
        fill_limits(root, &res);

    if (st >= 200 && st < 300) {
        if (root == NULL) {
            res.outcome = CG_VAPI_REJECTED;
            res.message = "malformed response";
            goto done;
        }
        res.call_id = cg_json_str(root, "id");
        int blocked = 0;
        if (cg_json_bool(root, "subscriptionLimits.concurrencyBlocked", &blocked) == 0 && blocked) {
            res.outcome = CG_VAPI_OVERLIMIT;
            res.message = "concurrency blocked";
            goto done;
        }
        if (batch_overlimit(root)) {
            res.outcome = CG_VAPI_OVERLIMIT;
            res.message = "concurrency limit (batch-shaped answer)";
            goto done;
        }
        const char *twiml = cg_json_str(root, "phoneCallProviderDetails.twiml");
        if (!op->outbound && (twiml == NULL || twiml[0] == '\0')) {
            res.outcome = CG_VAPI_REJECTED;
            res.message = "no TwiML in response";
        } else if (res.call_id == NULL || res.call_id[0] == '\0') {
            res.outcome = CG_VAPI_REJECTED;
            res.message = "no call id in response";
            res.call_id = NULL;
        } else {
            res.outcome = CG_VAPI_CREATED;
            res.twiml = twiml;
        }
        goto done;
    }

    int concurrency = 0;
    if (root != NULL)
        res.message = error_text(root, &concurrency);
    if (st == 401 || st == 403) {
        res.outcome = CG_VAPI_AUTH;
    } else if (st >= 400 && st < 500 && concurrency) {
        res.outcome = CG_VAPI_OVERLIMIT;
    } else if (st == 408 || st == 429 || st >= 500) {
        res.outcome = CG_VAPI_RETRY;
    } else {
        res.outcome = CG_VAPI_REJECTED;
    }
    if (res.message == NULL)
        res.message = st >= 500 ? "server error" : "request failed";

done:
    if (res.outcome != CG_VAPI_CREATED && res.outcome != CG_VAPI_CANCELLED)
        cg_log_debug("vapi create call not admitted", "status=%ld outcome=%d", st,
                     (int)res.outcome);
    deliver_create(op, &res);
    json_decref(root);
    free(op);
}

/* ---- get ---- */

/* The Call schema's statuses: five of a call that goes on, "ended", and
 * "not-found" and "deletion-failed", which say no such thing. */
static enum cg_vapi_call_state call_state_of(const char *status)
{
    static const char *const live[] = {"scheduled", "queued", "ringing", "in-progress",
                                       "forwarding"};
    if (strcmp(status, "ended") == 0)
        return CG_VAPI_CALL_ENDED;
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (strcmp(status, live[i]) == 0)
            return CG_VAPI_CALL_LIVE;
    return CG_VAPI_CALL_DOUBTFUL;
}

static void on_get(const struct cg_httpc_result *hres, void *arg)
{
    struct vp_op *op = arg;
    if (op->v == NULL) {
        free(op);
        return;
    }
    struct cg_vapi_get_result res = {.state = CG_VAPI_CALL_UNAVAILABLE,
                                     .http_status = hres->status};
    json_t *root = NULL;
    if (hres->error == NULL && hres->status == 404) {
        res.state = CG_VAPI_CALL_NOT_FOUND;
    } else if (hres->error == NULL && hres->status == 200) {
        root = cg_json_parse(hres->body, hres->body_len, CG_JSON_MAX_DEPTH, NULL, 0);
        if (root != NULL && json_is_object(root)) {
            res.status = cg_json_str(root, "status");
            res.ended_reason = cg_json_str(root, "endedReason");
            if (res.status != NULL)
                res.state = call_state_of(res.status);
        }
    }
    deliver_get(op, &res);
    json_decref(root);
    free(op);
}

/* ---- list ---- */

static void on_list(const struct cg_httpc_result *hres, void *arg)
{
    struct vp_op *op = arg;
    if (op->v == NULL) {
        free(op);
        return;
    }
    struct cg_vapi_list_result res = {.http_status = hres->status,
                                      .retry_after_s = hres->retry_after_s};
    json_t *root = NULL;
    struct cg_vapi_listed_call *calls = NULL;
    char err[160];
    if (hres->error != NULL) {
        res.error = hres->error;
    } else if (hres->status != 200) {
        res.error = "unexpected status";
    } else if (cg_vapi_parse_call_list(hres->body, hres->body_len, &calls, &res.ncalls,
                                       &res.skipped, &root, err, sizeof err) != 0) {
        res.error = err;
    } else {
        res.ok = 1;
        res.calls = calls;
    }
    deliver_list(op, &res);
    free(calls);
    json_decref(root);
    free(op);
}

/* ---- public API ---- */

static char *dup_opt(const char *s)
{
    return nonempty(s) && strlen(s) <= MAX_OPT_LEN ? cg_strdup(s) : NULL;
}

struct cg_vapi *cg_vapi_new(struct cg_httpc *httpc, const struct cg_vapi_opts *o)
{
    if (httpc == NULL || o == NULL || o->base_url == NULL)
        return NULL;
    int dur = o->max_duration_s == 0 ? CG_VAPI_DEFAULT_MAX_DURATION : o->max_duration_s;
    if (dur < CG_VAPI_MIN_MAX_DURATION || dur > CG_VAPI_MAX_MAX_DURATION)
        return NULL;
    size_t n = strlen(o->base_url);
    while (n > 0 && o->base_url[n - 1] == '/')
        n--;
    if (n == 0 || n > MAX_OPT_LEN ||
        (strncmp(o->base_url, "http://", 7) != 0 && strncmp(o->base_url, "https://", 8) != 0))
        return NULL;
    struct cg_vapi *v = cg_calloc(1, sizeof *v);
    cg_list_init(&v->ops);
    v->httpc = httpc;
    v->base_url = cg_strndup(o->base_url, n);
    v->api_key = dup_opt(o->api_key);
    v->phone_number_id = dup_opt(o->phone_number_id);
    v->assistant_id = dup_opt(o->assistant_id);
    v->gate = o->gate != NULL ? dup_opt(o->gate) : NULL;
    v->max_duration_s = dur;
    v->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 0;
    if (nonempty(o->server_messages) && strlen(o->server_messages) <= MAX_OPT_LEN)
        v->server_messages = cg_strdup(o->server_messages);
    if (v->api_key == NULL || v->phone_number_id == NULL || v->assistant_id == NULL) {
        cg_vapi_free(v);
        return NULL;
    }
    return v;
}

void cg_vapi_free(struct cg_vapi *v)
{
    if (v == NULL || v->closing)
        return;
    v->closing = 1;
    /* Each op stays allocated until cg_httpc reports its request. */
    struct cg_list *it;
    while ((it = cg_list_first(&v->ops)) != NULL)
        cancel(cg_list_entry(it, struct vp_op, link));
    free(v->base_url);
    cg_free_secret(v->api_key);
    free(v->phone_number_id);
    free(v->assistant_id);
    free(v->gate);
    free(v->server_messages);
    free(v);
}

static int send_op(struct cg_vapi *v, struct vp_op *op, const char *method, const char *url,
                   const char *body, cg_httpc_cb cb)
{
    struct cg_httpc_request req = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .content_type = body ? "application/json" : NULL,
        .bearer = v->api_key,
        .headers = request_headers,
        .timeout_ms = v->timeout_ms,
        .max_response_bytes = MAX_RESPONSE,
    };
    if (cg_httpc_send(v->httpc, &req, cb, op) != 0) {
        free(op);
        return -1;
    }
    op_link(v, op);
    return 0;
}

/* Appends "key": followed by s as a JSON string. */
static int json_kv(struct cg_buf *b, const char *key, const char *s)
{
    if (cg_buf_printf(b, "\"%s\":", key) != 0)
        return -1;
    return cg_buf_append_json_str(b, s, strlen(s));
}

const char *cg_vapi_customer_number(const char *from)
{
    size_t n = from ? strlen(from) : 0;
    size_t start = n > 0 && from[0] == '+' ? 1 : 0;
    if (n < CG_VAPI_NUMBER_MIN || n > CG_VAPI_NUMBER_MAX || start == n)
        return "anonymous";
    for (size_t i = start; i < n; i++)
        if (!isalnum((unsigned char)from[i]))
            return "anonymous";
    return from;
}

/* customer.name: at most 40 bytes of From, cut on a UTF-8 boundary. */
static int customer_name(struct cg_buf *b, const char *from)
{
    size_t n = strlen(from), cut = 0;
    while (cut < n) {
        size_t k = cg_utf8_seq_len(from + cut, n - cut);
        if (k == 0 || cut + k > CG_VAPI_NUMBER_MAX)
            break;
        cut += k;
    }
    if (cut == 0)
        return 0;
    if (cg_buf_appends(b, ",\"name\":") != 0)
        return -1;
    return cg_buf_append_json_str(b, from, cut);
}

/* Appends the serverMessages list as a JSON array (items trimmed). */
static int server_messages_json(struct cg_buf *b, const char *list)
{
    int rc = cg_buf_appends(b, ",\"serverMessages\":[");
    const char *p = list;
    for (int first = 1;; first = 0) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ","), m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (!first)
            rc |= cg_buf_appendc(b, ',');
        rc |= cg_buf_append_json_str(b, p, m);
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    return rc | cg_buf_appendc(b, ']');
}

/* The queue context as variableValues members (after twilioCallSid). */
static int context_json(struct cg_buf *b, const struct cg_vapi_call_context *ctx)
{
    if (ctx == NULL)
        return 0;
    int rc = 0;
    if (ctx->waited_s >= 0)
        rc |= cg_buf_printf(b, ",\"callgateWaitSeconds\":%ld", ctx->waited_s);
    if (ctx->position > 0)
        rc |= cg_buf_printf(b, ",\"callgatePosition\":%ld", ctx->position);
    rc |= cg_buf_printf(b, ",\"callgateRequeued\":%s", ctx->requeued ? "true" : "false");
    if (nonempty(ctx->dialed) && strlen(ctx->dialed) <= 64) {
        rc |= cg_buf_appendc(b, ',');
        rc |= json_kv(b, "callgateDialedNumber", ctx->dialed);
    }
    if (ctx->callback) {
        rc |= cg_buf_appends(b, ",\"callgateCallback\":true");
        if (ctx->original_ms > 0) {
            char iso[25];
            cg_iso8601_ms((uint64_t)ctx->original_ms, iso);
            rc |= cg_buf_printf(b, ",\"callgateOriginalTime\":\"%s\"", iso);
        }
    }
    return rc;
}

static char *create_body(const struct cg_vapi *v, const char *call_sid, const char *from,
                         int attempt, const struct cg_vapi_call_context *ctx)
{
    const char *number = cg_vapi_customer_number(from);
    struct cg_buf b;
    cg_buf_init(&b, MAX_BODY_LEN);
    int rc = cg_buf_appends(&b, "{");
    rc |=
        json_kv(&b, "phoneNumberId",
                ctx && nonempty(ctx->phone_number_id) ? ctx->phone_number_id : v->phone_number_id);
    rc |= cg_buf_appends(&b, ",\"phoneCallProviderBypassEnabled\":true,\"customer\":{");
    rc |= json_kv(&b, "number", number);
    rc |= cg_buf_appends(&b, ",\"numberE164CheckEnabled\":false");
    if (number != from && from != NULL)
        rc |= customer_name(&b, from);
    rc |= cg_buf_appends(&b, "},");
    rc |= json_kv(&b, "assistantId",
                  ctx && nonempty(ctx->assistant_id) ? ctx->assistant_id : v->assistant_id);
    rc |= cg_buf_appends(&b, ",\"assistantOverrides\":{\"metadata\":{");
    rc |= json_kv(&b, "twilioCallSid", call_sid);
    rc |= cg_buf_printf(&b, ",\"callgateAttempt\":%d", attempt);
    if (v->gate != NULL) {
        rc |= cg_buf_appends(&b, ",");
        rc |= json_kv(&b, "callgateGate", v->gate);
    }
    rc |= cg_buf_appends(&b, "},\"variableValues\":{");
    rc |= json_kv(&b, "twilioCallSid", call_sid);
    rc |= context_json(&b, ctx);
    rc |= cg_buf_printf(&b, "},\"maxDurationSeconds\":%d", v->max_duration_s);
    if (v->server_messages != NULL)
        rc |= server_messages_json(&b, v->server_messages);
    rc |= cg_buf_appends(&b, "}}");
    if (rc != 0) {
        cg_buf_free(&b);
        return NULL;
    }
    return cg_buf_take(&b);
}

/* POST /call with body (taken: freed here, NULL when it could not be
 * built); outbound: Vapi dials the customer (no bypass). -1 when nothing
 * was sent (cb not called). */
static int post_call(struct cg_vapi *v, char *body, int outbound, cg_vapi_create_cb cb, void *arg)
{
    struct cg_buf u;
    cg_buf_init(&u, MAX_OPT_LEN + 16);
    if (body == NULL || cg_buf_printf(&u, "%s/call", v->base_url) != 0) {
        free(body);
        cg_buf_free(&u);
        return -1;
    }
    struct vp_op *op = cg_calloc(1, sizeof *op);
    op->kind = OP_CREATE;
    op->create_cb = cb;
    op->arg = arg;
    op->outbound = outbound;
    int rc = send_op(v, op, "POST", cg_buf_str(&u), body, on_create);
    free(body);
    cg_buf_free(&u);
    return rc;
}

int cg_vapi_create_call(struct cg_vapi *v, const char *call_sid, const char *from, int attempt,
                        cg_vapi_create_cb cb, void *arg)
{
    return cg_vapi_create_call_ctx(v, call_sid, from, attempt, NULL, cb, arg);
}

int cg_vapi_create_call_ctx(struct cg_vapi *v, const char *call_sid, const char *from, int attempt,
                            const struct cg_vapi_call_context *ctx, cg_vapi_create_cb cb, void *arg)
{
    if (v == NULL || v->closing || cb == NULL || !cg_twilio_sid_valid(call_sid, "CA"))
        return -1;
    return post_call(v, create_body(v, call_sid, from, attempt, ctx), 0, cb, arg);
}

/* An outbound call: no bypass (Vapi dials the customer through the
 * route's number), the outbound id in metadata, the caller's variables. */
static char *outbound_body(const struct cg_vapi *v, const struct cg_vapi_outbound *o)
{
    struct cg_buf b;
    cg_buf_init(&b, MAX_BODY_LEN);
    int rc = cg_buf_appends(&b, "{");
    rc |= json_kv(&b, "phoneNumberId",
                  nonempty(o->phone_number_id) ? o->phone_number_id : v->phone_number_id);
    rc |= cg_buf_appends(&b, ",\"customer\":{");
    rc |= json_kv(&b, "number", o->number);
    rc |= cg_buf_appends(&b, "},");
    rc |= json_kv(&b, "assistantId", nonempty(o->assistant_id) ? o->assistant_id : v->assistant_id);
    rc |= cg_buf_appends(&b, ",\"assistantOverrides\":{\"metadata\":{");
    rc |= json_kv(&b, "callgateOutbound", o->id);
    rc |= cg_buf_printf(&b, ",\"callgateAttempt\":%d", o->attempt);
    if (v->gate != NULL) {
        rc |= cg_buf_appends(&b, ",");
        rc |= json_kv(&b, "callgateGate", v->gate);
    }
    rc |= cg_buf_appends(&b, "},\"variableValues\":");
    rc |= cg_buf_appends(&b, nonempty(o->variables_json) ? o->variables_json : "{}");
    rc |= cg_buf_printf(&b, ",\"maxDurationSeconds\":%d", v->max_duration_s);
    if (v->server_messages != NULL)
        rc |= server_messages_json(&b, v->server_messages);
    rc |= cg_buf_appends(&b, "}}");
    if (rc != 0) {
        cg_buf_free(&b);
        return NULL;
    }
    return cg_buf_take(&b);
}

int cg_vapi_create_outbound(struct cg_vapi *v, const struct cg_vapi_outbound *o,
                            cg_vapi_create_cb cb, void *arg)
{
    if (v == NULL || v->closing || cb == NULL || o == NULL || !nonempty(o->id) ||
        !nonempty(o->number))
        return -1;
    return post_call(v, outbound_body(v, o), 1, cb, arg);
}

int cg_vapi_get_call(struct cg_vapi *v, const char *call_id, cg_vapi_get_cb cb, void *arg)
{
    if (v == NULL || v->closing || cb == NULL || call_id == NULL)
        return -1;
    size_t n = strlen(call_id);
    if (n == 0 || n > CG_VAPI_MAX_ID)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)call_id[i];
        if (!isalnum(c) && c != '-' && c != '_')
            return -1;
    }
    struct cg_buf u;
    cg_buf_init(&u, MAX_OPT_LEN + CG_VAPI_MAX_ID + 16);
    if (cg_buf_printf(&u, "%s/call/%s", v->base_url, call_id) != 0) {
        cg_buf_free(&u);
        return -1;
    }
    struct vp_op *op = cg_calloc(1, sizeof *op);
    op->kind = OP_GET;
    op->get_cb = cb;
    op->arg = arg;
    int rc = send_op(v, op, "GET", cg_buf_str(&u), NULL, on_get);
    cg_buf_free(&u);
    return rc;
}

/* Appends &name=<ISO-8601 of ms> to the query. */
static int query_date(struct cg_buf *u, const char *name, uint64_t ms)
{
    char iso[25];
    cg_iso8601_ms(ms, iso);
    return cg_buf_printf(u, "&%s=%s", name, iso);
}

int cg_vapi_list_calls(struct cg_vapi *v, uint64_t created_gt_ms, uint64_t created_le_ms, int limit,
                       cg_vapi_list_cb cb, void *arg)
{
    if (v == NULL || v->closing || cb == NULL || limit < 1 || limit > CG_VAPI_LIST_MAX)
        return -1;
    char *pn = cg_pct_encode(v->phone_number_id, strlen(v->phone_number_id));
    struct cg_buf u;
    cg_buf_init(&u, 3 * MAX_OPT_LEN + 256);
    int rc = cg_buf_printf(&u, "%s/call?phoneNumberId=%s&limit=%d", v->base_url, pn, limit);
    free(pn);
    if (rc == 0 && created_gt_ms > 0)
        rc = query_date(&u, "createdAtGt", created_gt_ms);
    if (rc == 0 && created_le_ms > 0)
        rc = query_date(&u, "createdAtLe", created_le_ms);
    if (rc != 0) {
        cg_buf_free(&u);
        return -1;
    }
    struct vp_op *op = cg_calloc(1, sizeof *op);
    op->kind = OP_LIST;
    op->list_cb = cb;
    op->arg = arg;
    struct cg_httpc_request req = {
        .method = "GET",
        .url = cg_buf_str(&u),
        .bearer = v->api_key,
        .headers = request_headers,
        .timeout_ms = v->timeout_ms,
        .max_response_bytes = MAX_LIST_RESPONSE,
    };
    rc = cg_httpc_send(v->httpc, &req, on_list, op);
    cg_buf_free(&u);
    if (rc != 0) {
        free(op);
        return -1;
    }
    op_link(v, op);
    return 0;
}

/* ---- webhook parsing ---- */

int cg_vapi_parse_event(const char *body, size_t len, struct cg_vapi_event *ev, json_t **root,
                        char *err, size_t errlen)
{
    if (ev == NULL || root == NULL) {
        cg_err_set(err, errlen, "invalid arguments");
        return -1;
    }
    memset(ev, 0, sizeof *ev);
    *root = NULL;
    if (body == NULL) {
        cg_err_set(err, errlen, "no body");
        return -1;
    }
    json_t *r = cg_json_parse(body, len, CG_JSON_MAX_DEPTH, err, errlen);
    if (r == NULL)
        return -1;
    const char *why = NULL;
    const json_t *msg = NULL, *type = NULL, *call = NULL;
    if (!json_is_object(r)) {
        why = "body is not a JSON object";
        goto fail;
    }
    msg = json_object_get(r, "message");
    if (!json_is_object(msg)) {
        why = "message missing or not an object";
        goto fail;
    }
    type = json_object_get(msg, "type");
    if (!json_is_string(type)) {
        why = "message.type missing or not a string";
        goto fail;
    }
    call = json_object_get(msg, "call");
    if (call != NULL && !json_is_object(call)) {
        why = "message.call is not an object";
        goto fail;
    }
    if (call != NULL) {
        const json_t *id = json_object_get(call, "id");
        if (id != NULL && !json_is_string(id)) {
            why = "message.call.id is not a string";
            goto fail;
        }
        if (id != NULL && json_string_value(id)[0] != '\0')
            ev->call_id = json_string_value(id);
    }

    ev->type_name = json_string_value(type);
    if (strcmp(ev->type_name, "status-update") == 0)
        ev->type = CG_VAPI_EV_STATUS_UPDATE;
    else if (strcmp(ev->type_name, "end-of-call-report") == 0)
        ev->type = CG_VAPI_EV_END_OF_CALL_REPORT;
    else if (strcmp(ev->type_name, "hang") == 0)
        ev->type = CG_VAPI_EV_HANG;
    else
        ev->type = CG_VAPI_EV_OTHER;
    ev->status = cg_json_str(msg, "status");
    ev->ended_reason = cg_json_str(msg, "endedReason");
    if (ev->ended_reason == NULL)
        ev->ended_reason = cg_json_str(msg, "call.endedReason");
    const char *sid = cg_json_str(msg, "call.phoneCallProviderId");
    if (!cg_twilio_sid_valid(sid, "CA"))
        sid = cg_json_str(msg, "call.assistantOverrides.metadata.twilioCallSid");
    if (cg_twilio_sid_valid(sid, "CA"))
        ev->twilio_call_sid = sid;
    ev->is_end = ev->type == CG_VAPI_EV_END_OF_CALL_REPORT ||
                 (ev->type == CG_VAPI_EV_STATUS_UPDATE && ev->status != NULL &&
                  strcmp(ev->status, "ended") == 0);
    *root = r;
    return 0;

fail:
    cg_err_set(err, errlen, "%s", why);
    json_decref(r);
    memset(ev, 0, sizeof *ev);
    return -1;
}

/* ---- webhook authentication ---- */

/* Parses 1 to 19 decimal digits. */
static int parse_ts(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int hmac_valid(const struct cg_vapi_auth *a,
                      const char *(*header_get)(const char *name, void *arg), void *arg,
                      const char *body, size_t len, uint64_t now_ms)
{
    enum cg_digest md;
    const char *alg = nonempty(a->hmac_algorithm) ? a->hmac_algorithm : "sha256";
    if (strcasecmp(alg, "sha256") == 0)
        md = CG_SHA256;
    else if (strcasecmp(alg, "sha512") == 0)
        md = CG_SHA512;
    else if (strcasecmp(alg, "sha1") == 0)
        md = CG_SHA1;
    else
        return 0;
    const char *enc = nonempty(a->hmac_encoding) ? a->hmac_encoding : "hex";
    int base64 = 0;
    if (strcasecmp(enc, "base64") == 0)
        base64 = 1;
    else if (strcasecmp(enc, "hex") != 0)
        return 0;

    const char *ts_name =
        nonempty(a->hmac_timestamp_header) ? a->hmac_timestamp_header : "x-timestamp";
    const char *sig_name =
        nonempty(a->hmac_signature_header) ? a->hmac_signature_header : "x-signature";
    const char *ts = header_get(ts_name, arg);
    const char *sig = header_get(sig_name, arg);
    uint64_t ts_val;
    if (ts == NULL || sig == NULL || parse_ts(ts, &ts_val) != 0)
        return 0;
    /* 10^11 ms is 1973; 10^11 s is the year 5138. */
    uint64_t ts_ms = ts_val >= 100000000000ULL ? ts_val : ts_val * 1000;
    uint64_t skew_ms = (uint64_t)(a->max_skew_s > 0 ? a->max_skew_s : 300) * 1000;
    uint64_t diff = now_ms > ts_ms ? now_ms - ts_ms : ts_ms - now_ms;
    if (diff > skew_ms)
        return 0;

    const char *prefix = nonempty(a->hmac_prefix) ? a->hmac_prefix : "";
    size_t plen = strlen(prefix);
    if (strncmp(sig, prefix, plen) != 0)
        return 0;
    sig += plen;
    size_t slen = strlen(sig);
    while (slen > 0 && isspace((unsigned char)sig[slen - 1]))
        slen--;
    size_t md_len = cg_digest_size(md);
    unsigned char want[CG_DIGEST_MAX];
    if (md_len == 0 || md_len > sizeof want)
        return 0;
    int drc =
        base64 ? cg_base64_decode(sig, slen, want, md_len) : cg_hex_decode(sig, slen, want, md_len);
    if (drc != 0)
        return 0;

    struct cg_buf payload;
    cg_buf_init(&payload, CG_VAPI_MAX_WEBHOOK_BODY + 64);
    if (cg_buf_appends(&payload, ts) != 0 || cg_buf_appendc(&payload, '.') != 0 ||
        (len > 0 && cg_buf_append(&payload, body, len) != 0)) {
        cg_buf_free(&payload);
        return 0;
    }
    unsigned char got[CG_DIGEST_MAX];
    size_t got_len =
        cg_hmac(md, a->hmac_secret, strlen(a->hmac_secret), payload.data, payload.len, got);
    cg_buf_free(&payload);
    if (got_len != md_len)
        return 0;
    return cg_ct_memeq(got, want, md_len);
}

int cg_vapi_authenticate(const struct cg_vapi_auth *a,
                         const char *(*header_get)(const char *name, void *arg), void *arg,
                         const char *body, size_t len, uint64_t now_ms)
{
    if (a == NULL || header_get == NULL || (body == NULL && len > 0) ||
        len > CG_VAPI_MAX_WEBHOOK_BODY)
        return 0;
    int has_secret = nonempty(a->secret), has_hmac = nonempty(a->hmac_secret);
    if (has_hmac && hmac_valid(a, header_get, arg, body, len, now_ms))
        return 1;
    if (has_hmac && !a->accept_secret_with_hmac)
        return 0;
    if (has_secret && cg_ct_streq(header_get("x-vapi-secret", arg), a->secret))
        return 1;
    return 0;
}

/* ---- signing for another hop ---- */

void cg_vapi_sign_free(char *out[CG_VAPI_SIGN_MAX + 1])
{
    for (size_t i = 0; i <= CG_VAPI_SIGN_MAX; i++) {
        if (out[i] != NULL) {
            cg_free_secret(out[i]);
            out[i] = NULL;
        }
    }
}

static int sign_digest(const char *alg, enum cg_digest *md)
{
    alg = nonempty(alg) ? alg : "sha256";
    if (strcasecmp(alg, "sha256") == 0)
        *md = CG_SHA256;
    else if (strcasecmp(alg, "sha512") == 0)
        *md = CG_SHA512;
    else if (strcasecmp(alg, "sha1") == 0)
        *md = CG_SHA1;
    else
        return -1;
    return 0;
}

int cg_vapi_sign(const struct cg_vapi_auth *a, const char *body, size_t len, uint64_t now_ms,
                 int ts_ms, char *out[CG_VAPI_SIGN_MAX + 1])
{
    for (size_t i = 0; i <= CG_VAPI_SIGN_MAX; i++)
        out[i] = NULL;
    if (a == NULL || (body == NULL && len > 0) || len > CG_VAPI_MAX_WEBHOOK_BODY)
        return -1;
    size_t k = 0;
    struct cg_buf line;
    if (nonempty(a->secret)) {
        cg_buf_init(&line, strlen(a->secret) + 32);
        if (cg_buf_printf(&line, "x-vapi-secret: %s", a->secret) != 0)
            goto fail_line;
        out[k++] = cg_buf_take(&line);
    }
    if (!nonempty(a->hmac_secret))
        return (int)k;
    enum cg_digest md;
    const char *enc = nonempty(a->hmac_encoding) ? a->hmac_encoding : "hex";
    int base64 = strcasecmp(enc, "base64") == 0;
    if (sign_digest(a->hmac_algorithm, &md) != 0 || (!base64 && strcasecmp(enc, "hex") != 0))
        goto fail;
    char ts[32];
    snprintf(ts, sizeof ts, "%llu", (unsigned long long)(ts_ms ? now_ms : now_ms / 1000));
    struct cg_buf payload;
    cg_buf_init(&payload, CG_VAPI_MAX_WEBHOOK_BODY + 64);
    if (cg_buf_appends(&payload, ts) != 0 || cg_buf_appendc(&payload, '.') != 0 ||
        (len > 0 && cg_buf_append(&payload, body, len) != 0)) {
        cg_buf_free(&payload);
        goto fail;
    }
    unsigned char mac[CG_DIGEST_MAX];
    size_t mac_len =
        cg_hmac(md, a->hmac_secret, strlen(a->hmac_secret), payload.data, payload.len, mac);
    cg_buf_free(&payload);
    if (mac_len == 0)
        goto fail;
    char sig[2 * CG_DIGEST_MAX + 8];
    if (base64)
        cg_base64_encode(mac, mac_len, sig);
    else
        cg_hex_encode(mac, mac_len, sig);
    const char *ts_name =
        nonempty(a->hmac_timestamp_header) ? a->hmac_timestamp_header : "x-timestamp";
    const char *sig_name =
        nonempty(a->hmac_signature_header) ? a->hmac_signature_header : "x-signature";
    const char *prefix = nonempty(a->hmac_prefix) ? a->hmac_prefix : "";
    cg_buf_init(&line, 256);
    if (cg_buf_printf(&line, "%s: %s", ts_name, ts) != 0)
        goto fail_line;
    out[k++] = cg_buf_take(&line);
    cg_buf_init(&line, strlen(prefix) + sizeof sig + 96);
    if (cg_buf_printf(&line, "%s: %s%s", sig_name, prefix, sig) != 0)
        goto fail_line;
    out[k++] = cg_buf_take(&line);
    return (int)k;

fail_line:
    cg_buf_free(&line);
fail:
    cg_vapi_sign_free(out);
    return -1;
}
