#include "base/fmacros.h"

#include "twilio/api.h"

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/form.h"
#include "base/list.h"
#include "net/httpc.h"
#include "base/json.h"
#include "base/log.h"
#include "base/utf8.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

/* Response ceilings: a members page of 1000 is about 300 KiB. */
#define MAX_RESPONSE_SMALL (256 * 1024)
#define MAX_RESPONSE_LIST  (8 * 1024 * 1024)
/* Longest next_page_uri we follow. */
#define MAX_PAGE_URI 2048
#define MAX_FRIENDLY 64

enum op_kind { OP_UPDATE, OP_FETCH, OP_MEMBERS, OP_FIND_QUEUE, OP_CREATE };

/* One operation between its start and its callback. */
struct tw_op {
    struct cg_twilio *t; /* NULL once completed or cancelled */
    enum op_kind kind;
    cg_twilio_cb cb;
    void *arg;
    char *url;  /* the resource or the current page */
    char *body; /* form body (POST), NULL for GET */
    int in_flight;
    int attempts;   /* all requests sent */
    int page_tries; /* requests sent for url */
    int pages;      /* pages received */
    struct event *timer;
    char *friendly_name;
    struct cg_twilio_member *members;
    size_t nmembers;
    size_t members_cap;
    struct cg_list link; /* in cg_twilio.ops while t is set */
};

struct cg_twilio {
    struct event_base *base;
    struct cg_httpc *httpc;
    char *base_url;
    char *account_sid;
    char *auth_token;
    char *account_path; /* "/2010-04-01/Accounts/AC.../" */
    long timeout_ms;
    int max_retries;
    int no_transport_retry;
    struct cg_list ops; /* operations not yet completed (struct tw_op), newest first */
    int closing;
};

static const char *const request_headers[] = {"Accept: application/json", "Accept-Charset: utf-8",
                                              NULL};

static const char *kind_name(enum op_kind k)
{
    switch (k) {
    case OP_UPDATE:
        return "update_call";
    case OP_FETCH:
        return "fetch_call";
    case OP_MEMBERS:
        return "list_members";
    case OP_FIND_QUEUE:
        return "find_queue";
    case OP_CREATE:
        return "create_call";
    }
    return "?";
}

int cg_twilio_sid_valid(const char *s, const char *prefix)
{
    if (s == NULL || prefix == NULL || strlen(prefix) != 2 || strncmp(s, prefix, 2) != 0)
        return 0;
    for (size_t i = 2; i < 34; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    }
    return s[34] == '\0';
}

/* ---- operation list ---- */

static void op_link(struct cg_twilio *t, struct tw_op *op)
{
    op->t = t;
    cg_list_push_front(&t->ops, &op->link);
}

static void op_unlink(struct tw_op *op)
{
    struct cg_twilio *t = op->t;
    if (t == NULL)
        return;
    cg_list_remove(&op->link);
    op->t = NULL;
}

static void op_free(struct tw_op *op)
{
    if (op->timer)
        event_free(op->timer);
    free(op->url);
    free(op->body);
    free(op->friendly_name);
    free(op->members);
    free(op);
}

/* Delivers the result and ends the operation. The callback may free the
 * client, so neither the client nor the list is touched afterwards. */
static void complete(struct tw_op *op, struct cg_twilio_result *res)
{
    res->attempts = op->attempts;
    if (res->outcome == CG_TW_RETRY || res->outcome == CG_TW_FATAL)
        cg_log_warn("twilio request failed", "op=%s status=%ld code=%d attempts=%d error=%s",
                    kind_name(op->kind), res->http_status, res->code, op->attempts,
                    res->message ? res->message : "");
    op_unlink(op);
    if (op->timer)
        event_del(op->timer);
    op->cb(res, op->arg);
    /* A request still in flight (cancellation) frees op when it returns. */
    if (!op->in_flight)
        op_free(op);
}

static void complete_simple(struct tw_op *op, enum cg_twilio_outcome outcome, long status, int code,
                            const char *message)
{
    struct cg_twilio_result res = {
        .outcome = outcome, .http_status = status, .code = code, .message = message};
    complete(op, &res);
}

/* ---- sending ---- */

static void on_response(const struct cg_httpc_result *hres, void *arg);

static int send_request(struct tw_op *op)
{
    struct cg_twilio *t = op->t;
    int list = op->kind == OP_MEMBERS || op->kind == OP_FIND_QUEUE;
    struct cg_httpc_request req = {
        .method = op->body ? "POST" : "GET",
        .url = op->url,
        .body = op->body,
        .body_len = op->body ? strlen(op->body) : 0,
        .content_type = op->body ? "application/x-www-form-urlencoded" : NULL,
        .basic_user = t->account_sid,
        .basic_pass = t->auth_token,
        .headers = request_headers,
        .timeout_ms = t->timeout_ms,
        .max_response_bytes = list ? MAX_RESPONSE_LIST : MAX_RESPONSE_SMALL,
    };
    if (cg_httpc_send(t->httpc, &req, on_response, op) != 0)
        return -1;
    op->in_flight = 1;
    op->attempts++;
    op->page_tries++;
    return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tw_op *op = arg;
    if (send_request(op) != 0)
        complete_simple(op, CG_TW_RETRY, 0, 0, "request could not be sent");
}

/* Schedules another attempt for a retryable failure, or reports RETRY when
 * the budget is spent. */
static void retry_or_fail(struct tw_op *op, long status, int code, const char *message,
                          double retry_after_s)
{
    struct cg_twilio *t = op->t;
    if (op->page_tries > t->max_retries) {
        complete_simple(op, CG_TW_RETRY, status, code, message);
        return;
    }
    /* A Retry-After beyond the cap is not waited for here: the caller of
     * the client (admission, reconciliation) has its own, longer, backoff. */
    if (retry_after_s * 1000.0 > CG_TWILIO_RETRY_AFTER_CAP_MS)
        retry_after_s = CG_TWILIO_RETRY_AFTER_CAP_MS / 1000.0;
    long delay = cg_backoff_ms(CG_TWILIO_BACKOFF_BASE_MS, CG_TWILIO_BACKOFF_CAP_MS,
                               (unsigned)(op->page_tries - 1), retry_after_s);
    cg_log_debug("twilio request retry", "op=%s status=%ld code=%d attempt=%d delay_ms=%ld",
                 kind_name(op->kind), status, code, op->attempts, delay);
    if (op->timer == NULL)
        op->timer = evtimer_new(t->base, on_timer, op);
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    if (op->timer == NULL || evtimer_add(op->timer, &tv) != 0) {
        cg_log_error("twilio retry timer failed", "");
        complete_simple(op, CG_TW_RETRY, status, code, message);
    }
}

/* ---- responses ---- */

/* Reads a Twilio error body; tolerates missing fields and non-JSON. */
static json_t *parse_error(const struct cg_httpc_result *hres, int *code, const char **message)
{
    *code = 0;
    *message = NULL;
    json_t *root = cg_json_parse(hres->body, hres->body_len, CG_JSON_MAX_DEPTH, NULL, 0);
    if (root == NULL)
        return NULL;
    long long c;
    if (cg_json_int(root, "code", &c) == 0 && c > 0 && c <= INT_MAX)
        *code = (int)c;
    *message = cg_json_str(root, "message");
    return root;
}

/* Absolute URL of a next_page_uri, or NULL when it is not a plain path
 * under this account (never follow a server elsewhere or up the tree). */
static char *next_page_url(struct cg_twilio *t, const char *uri)
{
    size_t n = strlen(uri);
    if (n == 0 || n > MAX_PAGE_URI || strncmp(uri, t->account_path, strlen(t->account_path)) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
            return NULL;
    }
    size_t qpos = strcspn(uri, "?");
    for (size_t i = 0; i + 1 < qpos; i++) {
        if (uri[i] == '/' && uri[i + 1] == '/')
            return NULL;
        if (uri[i] == '.' && uri[i + 1] == '.')
            return NULL;
        if (uri[i] == '%' && (uri[i + 1] == '2' || uri[i + 1] == '5'))
            return NULL; /* encoded '.', '/' or '%' in the path */
    }
    struct cg_buf b;
    cg_buf_init(&b, MAX_PAGE_URI + 1024);
    if (cg_buf_printf(&b, "%s%s", t->base_url, uri) != 0) {
        cg_buf_free(&b);
        return NULL;
    }
    return cg_buf_take(&b);
}

static void add_member(struct tw_op *op, const json_t *m)
{
    const char *sid = cg_json_str(m, "call_sid");
    if (!cg_twilio_sid_valid(sid, "CA")) {
        cg_log_warn("twilio member without a valid call_sid", "");
        return;
    }
    if (op->nmembers == op->members_cap) {
        size_t cap = op->members_cap ? op->members_cap * 2 : 64;
        if (cap > CG_TWILIO_MAX_MEMBERS)
            cap = CG_TWILIO_MAX_MEMBERS;
        op->members = cg_realloc(op->members, cap * sizeof *op->members);
        op->members_cap = cap;
    }
    struct cg_twilio_member *out = &op->members[op->nmembers++];
    memset(out, 0, sizeof *out);
    memcpy(out->call_sid, sid, 35);
    long long v;
    if (cg_json_int(m, "position", &v) == 0 && v >= INT_MIN && v <= INT_MAX)
        out->position = (int)v;
    if (cg_json_int(m, "wait_time", &v) == 0 && v >= 0 && v <= LONG_MAX)
        out->wait_time_s = (long)v;
}

/* Handles one 2xx page of a list: collect, then finish or fetch the next. */
static void handle_page(struct tw_op *op, const struct cg_httpc_result *hres)
{
    struct cg_twilio *t = op->t;
    json_t *root = cg_json_parse(hres->body, hres->body_len, CG_JSON_MAX_DEPTH, NULL, 0);
    const json_t *list = NULL;
    if (root != NULL)
        list = json_object_get(root, op->kind == OP_MEMBERS ? "queue_members" : "queues");
    if (list == NULL || !json_is_array(list)) {
        json_decref(root);
        complete_simple(op, CG_TW_FATAL, hres->status, 0, "malformed list response");
        return;
    }
    op->pages++;
    size_t i;
    const json_t *item;
    json_array_foreach (list, i, item) {
        if (!json_is_object(item))
            continue;
        if (op->kind == OP_FIND_QUEUE) {
            const char *name = cg_json_str(item, "friendly_name");
            const char *sid = cg_json_str(item, "sid");
            if (name != NULL && strcmp(name, op->friendly_name) == 0 &&
                cg_twilio_sid_valid(sid, "QU")) {
                struct cg_twilio_result res = {
                    .outcome = CG_TW_OK, .http_status = hres->status, .queue_sid = sid};
                complete(op, &res);
                json_decref(root);
                return;
            }
        } else if (op->nmembers < CG_TWILIO_MAX_MEMBERS) {
            add_member(op, item);
        }
    }

    const char *next = cg_json_str(root, "next_page_uri");
    int full = op->kind == OP_MEMBERS && op->nmembers >= CG_TWILIO_MAX_MEMBERS;
    if (full && next != NULL)
        cg_log_warn("twilio queue listing truncated", "members=%zu", op->nmembers);
    if (next == NULL || full) {
        struct cg_twilio_result res = {.outcome = CG_TW_OK, .http_status = hres->status};
        res.members = op->members;
        res.nmembers = op->nmembers;
        complete(op, &res);
        json_decref(root);
        return;
    }
    if (op->pages >= CG_TWILIO_MAX_PAGES) {
        json_decref(root);
        complete_simple(op, CG_TW_FATAL, hres->status, 0, "too many pages");
        return;
    }
    char *url = next_page_url(t, next);
    json_decref(root);
    if (url == NULL) {
        complete_simple(op, CG_TW_FATAL, hres->status, 0, "next_page_uri outside the account");
        return;
    }
    free(op->url);
    op->url = url;
    op->page_tries = 0;
    if (send_request(op) != 0)
        complete_simple(op, CG_TW_RETRY, hres->status, 0, "request could not be sent");
}

static void handle_success(struct tw_op *op, const struct cg_httpc_result *hres)
{
    if (op->kind == OP_MEMBERS || op->kind == OP_FIND_QUEUE) {
        handle_page(op, hres);
        return;
    }
    struct cg_twilio_result res = {.outcome = CG_TW_OK, .http_status = hres->status};
    json_t *root = NULL;
    if (op->kind == OP_FETCH) {
        root = cg_json_parse(hres->body, hres->body_len, CG_JSON_MAX_DEPTH, NULL, 0);
        if (root == NULL || !json_is_object(root)) {
            json_decref(root);
            complete_simple(op, CG_TW_FATAL, hres->status, 0, "malformed call response");
            return;
        }
        res.call_status = cg_json_str(root, "status");
        res.from = cg_json_str(root, "from");
        res.to = cg_json_str(root, "to");
    } else if (op->kind == OP_CREATE) {
        root = cg_json_parse(hres->body, hres->body_len, CG_JSON_MAX_DEPTH, NULL, 0);
        res.call_sid = root != NULL && json_is_object(root) ? cg_json_str(root, "sid") : NULL;
        if (!cg_twilio_sid_valid(res.call_sid, "CA")) {
            /* The call may exist; without its SID nothing can follow it. */
            json_decref(root);
            complete_simple(op, CG_TW_FATAL, hres->status, 0, "malformed call response");
            return;
        }
        res.call_status = cg_json_str(root, "status");
    }
    complete(op, &res);
    json_decref(root);
}

static void on_response(const struct cg_httpc_result *hres, void *arg)
{
    struct tw_op *op = arg;
    op->in_flight = 0;
    if (op->t == NULL) {
        /* Cancelled while this request was in flight; already reported. */
        op_free(op);
        return;
    }
    if (hres->error != NULL) {
        if (strcmp(hres->error, "cancelled") == 0)
            complete_simple(op, CG_TW_CANCELLED, 0, 0, hres->error);
        else if (op->t->no_transport_retry || op->kind == OP_CREATE)
            complete_simple(op, CG_TW_RETRY, 0, 0, hres->error);
        else
            retry_or_fail(op, 0, 0, hres->error, -1);
        return;
    }
    long status = hres->status;
    if (status >= 200 && status < 300) {
        handle_success(op, hres);
        return;
    }
    int code;
    const char *message;
    json_t *root = parse_error(hres, &code, &message);
    if (message == NULL)
        message = status >= 500 ? "server error" : "request failed";
    if (status >= 500 && op->kind == OP_CREATE) {
        /* Twilio may have placed the call: sent again, the phone could
         * ring twice. 429 (20429) is never processed, so that one is. */
        complete_simple(op, CG_TW_RETRY, status, code, message);
    } else if (status == 429 || status >= 500) {
        retry_or_fail(op, status, code, message, hres->retry_after_s);
    } else if (code == 21220 || code == 20404) {
        complete_simple(op, CG_TW_GONE, status, code, message);
    } else {
        complete_simple(op, CG_TW_FATAL, status, code, message);
    }
    json_decref(root);
}

/* ---- public API ---- */

struct cg_twilio *cg_twilio_new(struct event_base *base, struct cg_httpc *httpc,
                                const struct cg_twilio_opts *o)
{
    if (base == NULL || httpc == NULL || o == NULL || o->base_url == NULL ||
        o->auth_token == NULL || o->auth_token[0] == '\0' ||
        !cg_twilio_sid_valid(o->account_sid, "AC"))
        return NULL;
    size_t n = strlen(o->base_url);
    while (n > 0 && o->base_url[n - 1] == '/')
        n--;
    if (n == 0 || n > 1024 ||
        (strncmp(o->base_url, "http://", 7) != 0 && strncmp(o->base_url, "https://", 8) != 0))
        return NULL;
    struct cg_twilio *t = cg_calloc(1, sizeof *t);
    t->base = base;
    cg_list_init(&t->ops);
    t->httpc = httpc;
    t->base_url = cg_strndup(o->base_url, n);
    t->account_sid = cg_strdup(o->account_sid);
    t->auth_token = cg_strdup(o->auth_token);
    t->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 0;
    t->no_transport_retry = o->no_transport_retry != 0;
    if (o->max_retries == 0)
        t->max_retries = CG_TWILIO_DEFAULT_MAX_RETRIES;
    else
        t->max_retries = o->max_retries < 0 ? 0 : o->max_retries;
    struct cg_buf b;
    cg_buf_init(&b, 256);
    if (cg_buf_printf(&b, "/2010-04-01/Accounts/%s/", t->account_sid) != 0) {
        cg_buf_free(&b);
        cg_twilio_free(t);
        return NULL;
    }
    t->account_path = cg_buf_take(&b);
    return t;
}

void cg_twilio_free(struct cg_twilio *t)
{
    if (t == NULL || t->closing)
        return;
    t->closing = 1;
    struct cg_list *it;
    while ((it = cg_list_first(&t->ops)) != NULL) {
        struct tw_op *op = cg_list_entry(it, struct tw_op, link);
        /* An orphaned op may outlive the event_base; its timer must not. */
        if (op->timer) {
            event_free(op->timer);
            op->timer = NULL;
        }
        complete_simple(op, CG_TW_CANCELLED, 0, 0, "cancelled");
    }
    free(t->base_url);
    free(t->account_sid);
    cg_free_secret(t->auth_token);
    free(t->account_path);
    free(t);
}

static char *account_url(const struct cg_twilio *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Builds {base}{account_path}{suffix}. */
static char *account_url(const struct cg_twilio *t, const char *fmt, ...)
{
    struct cg_buf b;
    cg_buf_init(&b, 4096);
    int rc = cg_buf_printf(&b, "%s%s", t->base_url, t->account_path);
    if (rc == 0) {
        va_list ap;
        va_start(ap, fmt);
        rc = cg_buf_vprintf(&b, fmt, ap);
        va_end(ap);
    }
    if (rc != 0) {
        cg_buf_free(&b);
        return NULL;
    }
    return cg_buf_take(&b);
}

/* Starts op (taking ownership); -1 (op freed) when it could not be sent. */
static int start(struct cg_twilio *t, struct tw_op *op)
{
    if (op->url == NULL) {
        op_free(op);
        return -1;
    }
    op_link(t, op);
    if (send_request(op) != 0) {
        op_unlink(op);
        op_free(op);
        return -1;
    }
    return 0;
}

static struct tw_op *op_new(enum op_kind kind, cg_twilio_cb cb, void *arg)
{
    struct tw_op *op = cg_calloc(1, sizeof *op);
    op->kind = kind;
    op->cb = cb;
    op->arg = arg;
    return op;
}

static int call_post(struct cg_twilio *t, enum op_kind kind, const char *call_sid, const char *key,
                     const char *value, cg_twilio_cb cb, void *arg)
{
    struct tw_op *op = op_new(kind, cb, arg);
    op->url = account_url(t, "Calls/%s.json", call_sid);
    struct cg_form f;
    cg_form_init(&f);
    cg_form_add(&f, key, value);
    op->body = cg_form_encode(&f);
    cg_form_free(&f);
    return start(t, op);
}

size_t cg_twilio_twiml_chars(const char *twiml)
{
    size_t n = twiml ? strlen(twiml) : 0, chars = 0;
    for (size_t i = 0; i < n;) {
        size_t k = cg_utf8_seq_len(twiml + i, n - i);
        if (k == 0)
            k = 1;
        chars += k == 4 ? 2 : 1;
        i += k;
    }
    return chars;
}

int cg_twilio_update_call_twiml(struct cg_twilio *t, const char *call_sid, const char *twiml,
                                cg_twilio_cb cb, void *arg)
{
    if (t == NULL || t->closing || cb == NULL || !cg_twilio_sid_valid(call_sid, "CA") ||
        twiml == NULL || twiml[0] == '\0' || strlen(twiml) > CG_TWILIO_MAX_TWIML ||
        cg_twilio_twiml_chars(twiml) > CG_TWILIO_UPDATE_MAX_CHARS)
        return -1;
    return call_post(t, OP_UPDATE, call_sid, "Twiml", twiml, cb, arg);
}

static int number_ok(const char *n)
{
    return n != NULL && n[0] != '\0' && strlen(n) <= CG_TWILIO_MAX_NUMBER;
}

static int url_ok(const char *u)
{
    return u != NULL && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) &&
           strlen(u) <= CG_TWILIO_MAX_URL;
}

int cg_twilio_create_call(struct cg_twilio *t, const struct cg_twilio_new_call *c, cg_twilio_cb cb,
                          void *arg)
{
    if (t == NULL || t->closing || cb == NULL || c == NULL || !number_ok(c->to) ||
        !number_ok(c->from) || !url_ok(c->url) ||
        (c->status_callback != NULL && !url_ok(c->status_callback)))
        return -1;
    struct tw_op *op = op_new(OP_CREATE, cb, arg);
    op->url = account_url(t, "Calls.json");
    char timeout[16];
    int ring = c->timeout_s < 5 ? 5 : c->timeout_s > 600 ? 600 : c->timeout_s;
    snprintf(timeout, sizeof timeout, "%d", ring);
    struct cg_form f;
    cg_form_init(&f);
    cg_form_add(&f, "To", c->to);
    cg_form_add(&f, "From", c->from);
    cg_form_add(&f, "Url", c->url);
    cg_form_add(&f, "Method", "POST");
    cg_form_add(&f, "Timeout", timeout);
    if (c->machine_detection)
        cg_form_add(&f, "MachineDetection", "Enable");
    if (c->status_callback != NULL) {
        cg_form_add(&f, "StatusCallback", c->status_callback);
        cg_form_add(&f, "StatusCallbackMethod", "POST");
        cg_form_add(&f, "StatusCallbackEvent", "completed");
    }
    op->body = cg_form_encode(&f);
    cg_form_free(&f);
    return start(t, op);
}

int cg_twilio_end_call(struct cg_twilio *t, const char *call_sid, cg_twilio_cb cb, void *arg)
{
    if (t == NULL || t->closing || cb == NULL || !cg_twilio_sid_valid(call_sid, "CA"))
        return -1;
    return call_post(t, OP_UPDATE, call_sid, "Status", "completed", cb, arg);
}

int cg_twilio_fetch_call(struct cg_twilio *t, const char *call_sid, cg_twilio_cb cb, void *arg)
{
    if (t == NULL || t->closing || cb == NULL || !cg_twilio_sid_valid(call_sid, "CA"))
        return -1;
    struct tw_op *op = op_new(OP_FETCH, cb, arg);
    op->url = account_url(t, "Calls/%s.json", call_sid);
    return start(t, op);
}

int cg_twilio_list_members(struct cg_twilio *t, const char *queue_sid, cg_twilio_cb cb, void *arg)
{
    if (t == NULL || t->closing || cb == NULL || !cg_twilio_sid_valid(queue_sid, "QU"))
        return -1;
    struct tw_op *op = op_new(OP_MEMBERS, cb, arg);
    op->url = account_url(t, "Queues/%s/Members.json?PageSize=%d", queue_sid, CG_TWILIO_PAGE_SIZE);
    return start(t, op);
}

int cg_twilio_find_queue(struct cg_twilio *t, const char *friendly_name, cg_twilio_cb cb, void *arg)
{
    if (t == NULL || t->closing || cb == NULL || friendly_name == NULL ||
        friendly_name[0] == '\0' || strlen(friendly_name) > MAX_FRIENDLY)
        return -1;
    struct tw_op *op = op_new(OP_FIND_QUEUE, cb, arg);
    op->friendly_name = cg_strdup(friendly_name);
    op->url = account_url(t, "Queues.json?PageSize=%d", CG_TWILIO_PAGE_SIZE);
    return start(t, op);
}

int cg_twilio_status_is_terminal(const char *status)
{
    static const char *const terminal[] = {"completed", "busy", "failed", "no-answer", "canceled"};
    if (status == NULL)
        return 0;
    for (size_t i = 0; i < sizeof terminal / sizeof terminal[0]; i++)
        if (strcmp(status, terminal[i]) == 0)
            return 1;
    return 0;
}
