/*
 * twilio_rest.c - the simulated Twilio 2010 REST API: Queues, Queue
 * Members and Calls, JSON only (".json" suffix), HTTP Basic auth, the 2010
 * paging envelope, Twilio's error bodies, and injected faults (latency,
 * 429, 5xx) drawn from w->fault_rng.
 *
 * A request held back by latency is processed when its timer fires, not
 * when it arrives: that is when "Twilio" acts on it. Faulted requests are
 * never processed, as Twilio promises for 429.
 */
#include "base/fmacros.h"

#include "twilio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "base/crypto.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/form.h"
#include "net/httpd.h"
#include "base/log.h"
#include "hooks.h"
#include "outage.h"
#include "rng.h"
#include "twapi.h"
#include "twilio/signature.h"

#define API_ROOT "/2010-04-01/Accounts/"
#define MAX_SEGS 6
/* Not confirmed against Twilio: the code for a request Twilio refuses as
 * malformed (missing or invalid parameter). */
#define CODE_BAD_REQUEST 20001
#define CODE_NOT_FOUND   20404
#define CODE_CALL_STATE  21220
#define CODE_BAD_URL     21205
/* A call update whose Twiml is over TWIML_MAX_CHARS characters (the
 * spec's documented maximum). The code is the one reported for it, the
 * message ours (unconfirmed). */
#define CODE_TWIML_TOO_LONG 32018
#define TWIML_MAX_CHARS     4000
#define CODE_DIAL_NUMBER    13223

struct sim_rest_pending {
    struct cg_list link; /* tw->rest */
    struct sim_twilio *tw;
    struct cg_http_req *req;
    struct event *ev;
    int fault; /* 0, 429, 500 or 503 */
    int retry_after;
};

static const struct sim_scenario *scen(const struct sim_twilio *tw)
{
    return tw->w->sc;
}

static const char *acct(const struct sim_twilio *tw)
{
    const struct sim_scenario *sc = scen(tw);
    return sc && sc->twilio_account_sid ? sc->twilio_account_sid
                                        : "AC00000000000000000000000000000000";
}

static void count(struct sim_twilio *tw, const char *name)
{
    if (tw->w->report)
        sim_report_count(tw->w->report, name);
}

/* ---- errors ---- */

static void not_found(struct cg_http_req *req)
{
    char msg[600];
    snprintf(msg, sizeof(msg), "The requested resource %.500s was not found",
             cg_http_req_path(req));
    sim_api_error(req, 404, CODE_NOT_FOUND, msg);
}

static void call_state(struct cg_http_req *req)
{
    sim_api_error(req, 400, CODE_CALL_STATE, "Call is not in-progress. Cannot redirect.");
}

static void method_not_allowed(struct cg_http_req *req)
{
    sim_api_error(req, 405, 20004, "Method not allowed");
}

/* ---- auth ---- */

/* Standard Base64 of credentials into out (NUL-terminated); -1 if malformed,
 * longer than outlen - 1, or holding a NUL. */
static int b64_decode(const char *s, char *out, size_t outlen)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4 != 0)
        return -1;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    size_t want = n / 4 * 3 - pad;
    if (want + 1 > outlen || cg_base64_decode(s, n, (unsigned char *)out, want) != 0 ||
        memchr(out, '\0', want))
        return -1;
    out[want] = '\0';
    return 0;
}

static int authorized(const struct sim_twilio *tw, struct cg_http_req *req)
{
    /* The offered credentials are decoded and compared part by part, so
     * that any Base64 spelling of them is accepted. */
    const char *h = sim_api_basic_credentials(req);
    const char *token = scen(tw) ? scen(tw)->twilio_auth_token : NULL;
    if (!h || !token)
        return 0;
    char cred[512];
    if (b64_decode(h, cred, sizeof(cred)) < 0)
        return 0;
    char *colon = strchr(cred, ':');
    if (!colon)
        return 0;
    *colon = '\0';
    int user_ok = cg_ct_streq(cred, acct(tw));
    int pass_ok = cg_ct_streq(colon + 1, token);
    return user_ok & pass_ok;
}

/* ---- JSON ---- */

static void jw_date(struct sim_jw *j, const char *k, uint64_t wall_ms)
{
    if (!wall_ms) {
        sim_jw_str(j, k, NULL);
        return;
    }
    char d[32];
    cg_rfc2822(wall_ms, d);
    sim_jw_str(j, k, d);
}

static void queue_uri(const struct sim_twilio *tw, const struct sim_queue *q, struct cg_buf *b)
{
    cg_buf_printf(b, API_ROOT "%s/Queues/%s.json", acct(tw), q->sid);
}

static void queue_json(const struct sim_twilio *tw, const struct sim_queue *q, struct cg_buf *b)
{
    struct sim_jw j = {b, 1};
    cg_buf_appendc(b, '{');
    sim_jw_str(&j, "account_sid", acct(tw));
    sim_jw_long(&j, "average_wait_time", sim_tw_queue_avg_wait(q));
    sim_jw_long(&j, "current_size", (long)q->n);
    jw_date(&j, "date_created", q->created_ms);
    jw_date(&j, "date_updated", q->updated_ms);
    sim_jw_str(&j, "friendly_name", q->name);
    sim_jw_long(&j, "max_size", q->max_size);
    sim_jw_str(&j, "sid", q->sid);
    sim_jw_key(&j, "uri");
    struct cg_buf u;
    cg_buf_init(&u, CG_BUF_UNBOUNDED);
    queue_uri(tw, q, &u);
    cg_buf_append_json_str(b, u.data ? u.data : "", u.len);
    cg_buf_free(&u);
    cg_buf_appendc(b, '}');
}

static void member_json(const struct sim_twilio *tw, const struct sim_queue *q,
                        const struct sim_call *c, struct cg_buf *b)
{
    struct sim_jw j = {b, 1};
    cg_buf_appendc(b, '{');
    sim_jw_str(&j, "queue_sid", q->sid);
    sim_jw_str(&j, "call_sid", c->sid);
    jw_date(&j, "date_enqueued", c->enq_ms);
    sim_jw_long(&j, "position", (long)sim_tw_queue_position(q, c));
    sim_jw_key(&j, "uri");
    struct cg_buf u;
    cg_buf_init(&u, CG_BUF_UNBOUNDED);
    cg_buf_printf(&u, API_ROOT "%s/Queues/%s/Members/%s.json", acct(tw), q->sid, c->sid);
    cg_buf_append_json_str(b, u.data ? u.data : "", u.len);
    cg_buf_free(&u);
    sim_jw_long(&j, "wait_time", sim_tw_call_queue_time(c));
    cg_buf_appendc(b, '}');
}

/* "+15551234567" -> "(555) 123-4567", as Twilio formats NANP numbers. */
static void format_number(const char *n, char *out, size_t outlen)
{
    size_t len = strlen(n);
    int nanp = len == 12 && n[0] == '+' && n[1] == '1';
    for (size_t i = 2; nanp && i < len; i++)
        if (n[i] < '0' || n[i] > '9')
            nanp = 0;
    if (nanp)
        snprintf(out, outlen, "(%.3s) %.3s-%.4s", n + 2, n + 5, n + 8);
    else
        snprintf(out, outlen, "%s", n);
}

static void call_json(const struct sim_twilio *tw, const struct sim_call *c, struct cg_buf *b)
{
    struct sim_jw j = {b, 1};
    char tmp[64];
    const char *a = acct(tw);
    uint64_t updated = c->ended_ms ? c->ended_ms : c->answered_ms ? c->answered_ms : c->created_ms;
    cg_buf_appendc(b, '{');
    sim_jw_str(&j, "account_sid", a);
    sim_jw_str(&j, "answered_by", NULL);
    sim_jw_str(&j, "api_version", "2010-04-01");
    sim_jw_str(&j, "caller_name", NULL);
    jw_date(&j, "date_created", c->created_ms);
    jw_date(&j, "date_updated", updated);
    sim_jw_str(&j, "direction", "inbound");
    if (c->ended_ms && c->answered_ms) {
        snprintf(tmp, sizeof(tmp), "%llu",
                 (unsigned long long)((c->ended_ms - c->answered_ms + 500) / 1000));
        sim_jw_str(&j, "duration", tmp);
    } else if (c->ended_ms) {
        sim_jw_str(&j, "duration", "0");
    } else {
        sim_jw_str(&j, "duration", NULL);
    }
    jw_date(&j, "end_time", c->ended_ms);
    sim_jw_str(&j, "forwarded_from", NULL);
    sim_jw_str(&j, "from", c->from);
    format_number(c->from, tmp, sizeof(tmp));
    sim_jw_str(&j, "from_formatted", tmp);
    sim_jw_str(&j, "group_sid", NULL);
    sim_jw_str(&j, "parent_call_sid", NULL);
    sim_jw_str(&j, "phone_number_sid", "PN00000000000000000000000000000001");
    sim_jw_str(&j, "price", NULL);
    sim_jw_str(&j, "price_unit", "USD");
    sim_jw_str(&j, "sid", c->sid);
    jw_date(&j, "start_time", c->created_ms);
    sim_jw_str(&j, "status", sim_tw_status_name(c->status));
    {
        static const char *const subs[][2] = {
            {"notifications", "Notifications"},
            {"recordings", "Recordings"},
            {"payments", "Payments"},
            {"events", "Events"},
            {"siprec", "Siprec"},
            {"streams", "Streams"},
            {"transcriptions", "Transcriptions"},
            {"user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"},
            {"user_defined_messages", "UserDefinedMessages"},
        };
        struct sim_jw s = sim_jw_open(&j, "subresource_uris", '{');
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            char u[256];
            snprintf(u, sizeof(u), API_ROOT "%s/Calls/%s/%s.json", a, c->sid, subs[i][1]);
            sim_jw_str(&s, subs[i][0], u);
        }
        sim_jw_close(&s, '}');
    }
    sim_jw_str(&j, "to", c->to);
    format_number(c->to, tmp, sizeof(tmp));
    sim_jw_str(&j, "to_formatted", tmp);
    sim_jw_str(&j, "trunk_sid", NULL);
    char u[160];
    snprintf(u, sizeof(u), API_ROOT "%s/Calls/%s.json", a, c->sid);
    sim_jw_str(&j, "uri", u);
    sim_jw_str(&j, "queue_time", "0");
    cg_buf_appendc(b, '}');
}

/* ---- request helpers ---- */

/* The form body of a POST; an empty body is an empty form. NULL after
 * replying 400. */
static const struct cg_form *post_form(struct cg_http_req *req, struct cg_form *empty)
{
    size_t len = 0;
    cg_http_req_body(req, &len);
    cg_form_init(empty);
    if (len == 0)
        return empty;
    const char *err = NULL;
    const struct cg_form *f = cg_http_req_form(req, &err);
    if (!f) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Invalid request body: %s", err ? err : "not form-encoded");
        sim_api_error(req, 400, CODE_BAD_REQUEST, msg);
    }
    return f;
}

static int http_url(const char *u)
{
    return (strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]);
}

/* GET or POST (case-insensitive), default POST; NULL when invalid. */
static const char *http_method(const char *m)
{
    if (!m)
        return "POST";
    if (strcasecmp(m, "GET") == 0)
        return "GET";
    if (strcasecmp(m, "POST") == 0)
        return "POST";
    return NULL;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* ---- paging ---- */

/* ---- paging ---- */

/* Reads PageSize, Page and PageToken; replies 400 and returns -1 when one
 * is invalid. A token may name any 2010 resource (two capitals and 32 hex
 * digits). */
static int paging_parse(struct cg_http_req *req, struct sim_paging *pg)
{
    const struct cg_form *q = cg_http_req_query(req);
    if (!q) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Invalid query string");
        return -1;
    }
    return sim_paging_parse(req, q, NULL, pg);
}

/* Places the page over n items named by sids[]: a token continues after
 * (PA) or before (PB) the item it names; when that item is gone, Page
 * decides. */
static void paging_place(struct sim_paging *pg, const char *const *sids, size_t n)
{
    size_t start = (size_t)pg->page * (size_t)pg->size;
    if (pg->token) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(sids[i], pg->token + 2) == 0) {
                start = sim_paging_token_start(pg, i);
                break;
            }
        }
    }
    sim_paging_set(pg, start, n);
}

/* Opens the envelope up to and including the list key's '['. */
static void envelope_open(struct cg_buf *b, const char *base, const struct sim_paging *pg,
                          const char *const *sids, size_t n, const char *key)
{
    struct sim_jw j = {b, 1};
    struct cg_buf u;
    cg_buf_init(&u, CG_BUF_UNBOUNDED);
    cg_buf_appendc(b, '{');
    sim_jw_long(&j, "end", pg->count ? (long)(pg->start + pg->count - 1) : (long)pg->start);
    cg_buf_printf(&u, "%s?PageSize=%ld&Page=0", base, pg->size);
    sim_jw_str(&j, "first_page_uri", cg_buf_str(&u));
    cg_buf_reset(&u);
    if (pg->start + pg->count < n) {
        cg_buf_printf(&u, "%s?PageSize=%ld&Page=%ld&PageToken=PA%s", base, pg->size, pg->page + 1,
                      sids[pg->start + pg->count - 1]);
        sim_jw_str(&j, "next_page_uri", cg_buf_str(&u));
        cg_buf_reset(&u);
    } else {
        sim_jw_str(&j, "next_page_uri", NULL);
    }
    sim_jw_long(&j, "page", pg->page);
    sim_jw_long(&j, "page_size", pg->size);
    if (pg->page > 0 && pg->count > 0) {
        cg_buf_printf(&u, "%s?PageSize=%ld&Page=%ld&PageToken=PB%s", base, pg->size, pg->page - 1,
                      sids[pg->start]);
        sim_jw_str(&j, "previous_page_uri", cg_buf_str(&u));
        cg_buf_reset(&u);
    } else {
        sim_jw_str(&j, "previous_page_uri", NULL);
    }
    sim_jw_key(&j, key);
    cg_buf_appendc(b, '[');
    cg_buf_free(&u);
}

static void envelope_close(struct cg_buf *b, const char *base, const struct sim_paging *pg)
{
    cg_buf_appendc(b, ']');
    struct sim_jw j = {b, 0};
    sim_jw_long(&j, "start", (long)pg->start);
    struct cg_buf u;
    cg_buf_init(&u, CG_BUF_UNBOUNDED);
    cg_buf_printf(&u, "%s?PageSize=%ld&Page=%ld", base, pg->size, pg->page);
    if (pg->token)
        cg_buf_printf(&u, "&PageToken=%s", pg->token);
    sim_jw_str(&j, "uri", cg_buf_str(&u));
    cg_buf_free(&u);
    cg_buf_appendc(b, '}');
}

/* The whole envelope around items (the list's members, already written),
 * every member in alphabetical order as in the spec's examples: the list's
 * key need not come after previous_page_uri. The same page URIs as
 * envelope_open() and envelope_close(), with filter (query parameters of a
 * filtered list, each followed by '&': "PhoneNumber=%2B1...&"; "" for
 * none) in each, as Twilio repeats a list's filters in them. */
static void envelope_sorted(struct cg_buf *b, const char *base, const char *filter,
                            const struct sim_paging *pg, const char *const *sids, size_t n,
                            const char *key, const char *items)
{
    static const char *const members[] = {"end",       "first_page_uri",    "next_page_uri", "page",
                                          "page_size", "previous_page_uri", "start",         "uri"};
    struct sim_jw j = {b, 1};
    struct cg_buf u;
    cg_buf_init(&u, CG_BUF_UNBOUNDED);
    int listed = 0;
    cg_buf_appendc(b, '{');
    for (size_t m = 0; m <= sizeof(members) / sizeof(members[0]); m++) {
        const char *name = m < sizeof(members) / sizeof(members[0]) ? members[m] : NULL;
        if (!listed && (name == NULL || strcmp(key, name) < 0)) {
            sim_jw_key(&j, key);
            cg_buf_appendc(b, '[');
            cg_buf_appends(b, items);
            cg_buf_appendc(b, ']');
            listed = 1;
        }
        if (name == NULL)
            break;
        cg_buf_reset(&u);
        if (strcmp(name, "end") == 0) {
            sim_jw_long(&j, name, pg->count ? (long)(pg->start + pg->count - 1) : (long)pg->start);
        } else if (strcmp(name, "first_page_uri") == 0) {
            cg_buf_printf(&u, "%s?%sPageSize=%ld&Page=0", base, filter, pg->size);
            sim_jw_str(&j, name, cg_buf_str(&u));
        } else if (strcmp(name, "next_page_uri") == 0) {
            if (pg->start + pg->count < n) {
                cg_buf_printf(&u, "%s?%sPageSize=%ld&Page=%ld&PageToken=PA%s", base, filter,
                              pg->size, pg->page + 1, sids[pg->start + pg->count - 1]);
                sim_jw_str(&j, name, cg_buf_str(&u));
            } else {
                sim_jw_str(&j, name, NULL);
            }
        } else if (strcmp(name, "page") == 0) {
            sim_jw_long(&j, name, pg->page);
        } else if (strcmp(name, "page_size") == 0) {
            sim_jw_long(&j, name, pg->size);
        } else if (strcmp(name, "previous_page_uri") == 0) {
            if (pg->page > 0 && pg->count > 0) {
                cg_buf_printf(&u, "%s?%sPageSize=%ld&Page=%ld&PageToken=PB%s", base, filter,
                              pg->size, pg->page - 1, sids[pg->start]);
                sim_jw_str(&j, name, cg_buf_str(&u));
            } else {
                sim_jw_str(&j, name, NULL);
            }
        } else if (strcmp(name, "start") == 0) {
            sim_jw_long(&j, name, (long)pg->start);
        } else {
            cg_buf_printf(&u, "%s?%sPageSize=%ld&Page=%ld", base, filter, pg->size, pg->page);
            if (pg->token)
                cg_buf_printf(&u, "&PageToken=%s", pg->token);
            sim_jw_str(&j, name, cg_buf_str(&u));
        }
    }
    cg_buf_appendc(b, '}');
    cg_buf_free(&u);
}

/* ---- resources ---- */

static void queues_list(struct sim_twilio *tw, struct cg_http_req *req)
{
    struct sim_paging pg;
    if (paging_parse(req, &pg) < 0)
        return;
    const char **sids = cg_calloc(tw->nqueues + 1, sizeof(*sids));
    struct sim_queue **qs = cg_calloc(tw->nqueues + 1, sizeof(*qs));
    size_t n = 0;
    for (struct cg_list *it = tw->queues.next; it != &tw->queues; it = it->next) {
        struct sim_queue *q = sim_tw_queue_of(it);
        qs[n] = q;
        sids[n++] = q->sid;
    }
    paging_place(&pg, sids, n);
    char base[128];
    snprintf(base, sizeof(base), API_ROOT "%s/Queues.json", acct(tw));
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_open(&b, base, &pg, sids, n, "queues");
    for (size_t i = 0; i < pg.count; i++) {
        if (i)
            cg_buf_appendc(&b, ',');
        queue_json(tw, qs[pg.start + i], &b);
    }
    envelope_close(&b, base, &pg);
    free(sids);
    free(qs);
    sim_api_reply_buf(req, 200, &b);
}

/* FriendlyName and MaxSize of a create or update; replies 400 on error. */
static int queue_params(struct sim_twilio *tw, struct cg_http_req *req, const struct cg_form *f,
                        const struct sim_queue *self, const char **name, long *max)
{
    *name = cg_form_get(f, "FriendlyName");
    if (*name) {
        size_t chars = utf8_chars(*name);
        if (chars == 0 || chars > 64) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "FriendlyName must be 1 to 64 characters");
            return -1;
        }
        const struct sim_queue *other = sim_tw_queue_by_name(tw, *name);
        if (other && other != self) {
            sim_api_error(req, 400, CODE_BAD_REQUEST,
                          "A queue with this FriendlyName already exists");
            return -1;
        }
    }
    const char *m = cg_form_get(f, "MaxSize");
    if (m && sim_api_parse_long(m, 1, SIM_TWILIO_MAX_QUEUE_SIZE, max) < 0) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "MaxSize must be an integer from 1 to 5000");
        return -1;
    }
    return 0;
}

static void queue_create(struct sim_twilio *tw, struct cg_http_req *req)
{
    struct cg_form empty;
    const struct cg_form *f = post_form(req, &empty);
    if (!f)
        return;
    const char *name;
    long max = scen(tw) && scen(tw)->queue_max_size > 0 ? scen(tw)->queue_max_size
                                                        : SIM_TWILIO_DEFAULT_QUEUE_MAX;
    if (max > SIM_TWILIO_MAX_QUEUE_SIZE)
        max = SIM_TWILIO_MAX_QUEUE_SIZE;
    if (queue_params(tw, req, f, NULL, &name, &max) < 0)
        return;
    if (!name) {
        sim_api_error(req, 400, CODE_BAD_REQUEST,
                      "Missing required parameter FriendlyName in the post body");
        return;
    }
    struct sim_queue *q = sim_tw_queue_create(tw, name, (int)max);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    queue_json(tw, q, &b);
    sim_api_reply_buf(req, 201, &b);
}

static void queue_one(struct sim_twilio *tw, struct cg_http_req *req, struct sim_queue *q)
{
    enum cg_http_method m = cg_http_req_method(req);
    if (m == CG_HTTP_DELETE) {
        if (sim_tw_queue_delete(tw, q) < 0) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "Queue is not empty");
            return;
        }
        cg_http_reply(req, 204, NULL, NULL, 0);
        return;
    }
    if (m == CG_HTTP_POST) {
        struct cg_form empty;
        const struct cg_form *f = post_form(req, &empty);
        if (!f)
            return;
        const char *name;
        long max = q->max_size;
        if (queue_params(tw, req, f, q, &name, &max) < 0)
            return;
        if (name) {
            free(q->name);
            q->name = cg_strdup(name);
        }
        q->max_size = (int)max;
        q->updated_ms = cg_wall_ms();
    }
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    queue_json(tw, q, &b);
    sim_api_reply_buf(req, 200, &b);
}

static void members_list(struct sim_twilio *tw, struct cg_http_req *req, struct sim_queue *q)
{
    struct sim_paging pg;
    if (paging_parse(req, &pg) < 0)
        return;
    const char **sids = cg_calloc(q->n + 1, sizeof(*sids));
    for (size_t i = 0; i < q->n; i++)
        sids[i] = q->members[i]->sid;
    paging_place(&pg, sids, q->n);
    char base[160];
    snprintf(base, sizeof(base), API_ROOT "%s/Queues/%s/Members.json", acct(tw), q->sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_open(&b, base, &pg, sids, q->n, "queue_members");
    for (size_t i = 0; i < pg.count; i++) {
        if (i)
            cg_buf_appendc(&b, ',');
        member_json(tw, q, q->members[pg.start + i], &b);
    }
    envelope_close(&b, base, &pg);
    free(sids);
    sim_api_reply_buf(req, 200, &b);
}

static void member_one(struct sim_twilio *tw, struct cg_http_req *req, struct sim_queue *q,
                       const char *which)
{
    struct sim_call *c = NULL;
    if (strcmp(which, "Front") == 0) {
        c = q->n ? q->members[0] : NULL;
    } else {
        c = sim_tw_find_call(tw, which);
        if (c && c->queue != q) {
            /* Documented: a second dequeue of the same CallSid fails with a
             * 400 (code and message not confirmed). */
            if (c->left_queue == q && cg_http_req_method(req) == CG_HTTP_POST) {
                count(tw, "twilio.rest_second_dequeue");
                sim_api_error(req, 400, CODE_CALL_STATE, "Call is not in queue");
                return;
            }
            c = NULL;
        }
    }
    if (!c) {
        not_found(req);
        return;
    }
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    if (cg_http_req_method(req) != CG_HTTP_POST) {
        member_json(tw, q, c, &b);
        sim_api_reply_buf(req, 200, &b);
        return;
    }
    struct cg_form empty;
    const struct cg_form *f = post_form(req, &empty);
    if (!f) {
        cg_buf_free(&b);
        return;
    }
    const char *url = cg_form_get(f, "Url");
    const char *method = http_method(cg_form_get(f, "Method"));
    if (!url) {
        cg_buf_free(&b);
        sim_api_error(req, 400, CODE_BAD_REQUEST,
                      "Missing required parameter Url in the post body");
        return;
    }
    if (!http_url(url)) {
        cg_buf_free(&b);
        sim_api_error(req, 400, CODE_BAD_URL, "Url is not a valid URL");
        return;
    }
    if (!method) {
        cg_buf_free(&b);
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Method must be GET or POST");
        return;
    }
    /* The member as it was when dequeued. */
    member_json(tw, q, c, &b);
    if (sim_tw_call_redirect(tw, c, NULL, 0, url, method) < 0) {
        cg_buf_free(&b);
        call_state(req);
        return;
    }
    count(tw, "twilio.rest_dequeue");
    sim_api_reply_buf(req, 200, &b);
}

static void calls_list(struct sim_twilio *tw, struct cg_http_req *req)
{
    struct sim_paging pg;
    if (paging_parse(req, &pg) < 0)
        return;
    const struct cg_form *qf = cg_http_req_query(req);
    const char *status = qf ? cg_form_get(qf, "Status") : NULL;
    /* Newest first, as Twilio lists calls. */
    const char **sids = cg_calloc(tw->ncalls + 1, sizeof(*sids));
    const struct sim_call **cs = cg_calloc(tw->ncalls + 1, sizeof(*cs));
    size_t n = 0;
    for (const struct cg_list *it = tw->calls.next; it != &tw->calls; it = it->next) {
        const struct sim_call *c = sim_tw_call_of(it);
        if (status && strcmp(status, sim_tw_status_name(c->status)) != 0)
            continue;
        cs[n++] = c;
    }
    for (size_t i = 0; i < n / 2; i++) {
        const struct sim_call *t = cs[i];
        cs[i] = cs[n - 1 - i];
        cs[n - 1 - i] = t;
    }
    for (size_t i = 0; i < n; i++)
        sids[i] = cs[i]->sid;
    paging_place(&pg, sids, n);
    char base[128];
    snprintf(base, sizeof(base), API_ROOT "%s/Calls.json", acct(tw));
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_open(&b, base, &pg, sids, n, "calls");
    for (size_t i = 0; i < pg.count; i++) {
        if (i)
            cg_buf_appendc(&b, ',');
        call_json(tw, cs[pg.start + i], &b);
    }
    envelope_close(&b, base, &pg);
    free(sids);
    free(cs);
    sim_api_reply_buf(req, 200, &b);
}

/* Characters as Twilio counts them (UTF-16 code units): a 4-byte UTF-8
 * sequence counts 2, any other lead byte 1, continuation bytes 0. */
static size_t twiml_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        if ((b & 0xc0) != 0x80)
            n += b >= 0xf0 ? 2 : 1;
    }
    return n;
}

/* 1 when twiml dials the scenario's transfers.invalid_number. */
static int dials_invalid(const struct sim_twilio *tw, const char *twiml)
{
    const char *num = scen(tw)->transfers.invalid_number;
    if (num == NULL || strstr(twiml, "<Dial") == NULL)
        return 0;
    for (const char *p = strstr(twiml, num); p; p = strstr(p + 1, num)) {
        size_t n = strlen(num);
        if (p > twiml && p[-1] == '>' && p[n] == '<')
            return 1;
    }
    return 0;
}

static void call_one(struct sim_twilio *tw, struct cg_http_req *req, struct sim_call *c)
{
    if (cg_http_req_method(req) == CG_HTTP_POST) {
        struct cg_form empty;
        const struct cg_form *f = post_form(req, &empty);
        if (!f)
            return;
        const char *twiml = cg_form_get(f, "Twiml");
        const char *url = cg_form_get(f, "Url");
        const char *method = http_method(cg_form_get(f, "Method"));
        const char *status = cg_form_get(f, "Status");
        if (twiml && url) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "Twiml and Url are mutually exclusive");
            return;
        }
        if (!method) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "Method must be GET or POST");
            return;
        }
        if (url && !http_url(url)) {
            sim_api_error(req, 400, CODE_BAD_URL, "Url is not a valid URL");
            return;
        }
        if (twiml && twiml_chars(twiml, strlen(twiml)) > TWIML_MAX_CHARS) {
            count(tw, "twilio.rest_twiml_too_long");
            sim_api_error(req, 400, CODE_TWIML_TOO_LONG,
                          "Twiml exceeds the maximum length of 4000 characters");
            return;
        }
        if (status && strcmp(status, "completed") != 0 && strcmp(status, "canceled") != 0) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "Status must be completed or canceled");
            return;
        }
        if (status) {
            if (!sim_tw_call_live(c) && !scen(tw)->completed_again_200) {
                call_state(req);
                return;
            }
            sim_tw_call_end(tw, c, strcmp(status, "canceled") == 0);
            count(tw, "twilio.rest_status_update");
        } else if (twiml && dials_invalid(tw, twiml)) {
            /* The scenario's invalid number: Twilio refuses the document. */
            count(tw, "transfers.refused_by_twilio");
            sim_api_error(req, 400, CODE_DIAL_NUMBER, "Dial: Invalid phone number format");
            return;
        } else if (twiml || url) {
            size_t len = 0;
            if (twiml) {
                for (size_t i = 0; i < f->n; i++)
                    if (strcmp(f->pairs[i].key, "Twiml") == 0) {
                        len = f->pairs[i].value_len;
                        break;
                    }
            }
            if (sim_tw_call_redirect(tw, c, twiml, len, url, method) < 0) {
                count(tw, "twilio.rest_redirect_not_live");
                call_state(req);
                return;
            }
            count(tw, "twilio.rest_redirect");
        }
    }
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    call_json(tw, c, &b);
    sim_api_reply_buf(req, 200, &b);
}

/* ---- the account and its phone numbers (scenario "accounts.twilio") ---- */

static const struct sim_accounts *accounts(const struct sim_twilio *tw)
{
    return &scen(tw)->acc;
}

/* A URL of the scenario: NULL is the default under the public URL, ""
 * none. */
static void acct_url(const struct sim_twilio *tw, const char *given, const char *path, char *out,
                     size_t outlen)
{
    if (given)
        snprintf(out, outlen, "%s", given);
    else
        snprintf(out, outlen, "%s%s", tw->w->hooks ? sim_hooks_public_url(tw->w->hooks) : "", path);
}

static void jw_raw(struct sim_jw *j, const char *k, const char *raw)
{
    sim_jw_key(j, k);
    cg_buf_appends(j->b, raw);
}

/* GET /2010-04-01/Accounts/{AC}.json (OAI-2010 api.v2010.account). */
static void account_fetch(struct sim_twilio *tw, struct cg_http_req *req)
{
    static const char *const subs[][2] = {
        {"available_phone_numbers", "AvailablePhoneNumbers"},
        {"calls", "Calls"},
        {"conferences", "Conferences"},
        {"incoming_phone_numbers", "IncomingPhoneNumbers"},
        {"notifications", "Notifications"},
        {"outgoing_caller_ids", "OutgoingCallerIds"},
        {"recordings", "Recordings"},
        {"transcriptions", "Transcriptions"},
        {"addresses", "Addresses"},
        {"signing_keys", "SigningKeys"},
        {"connect_apps", "ConnectApps"},
        {"sip", "SIP"},
        {"authorized_connect_apps", "AuthorizedConnectApps"},
        {"usage", "Usage"},
        {"keys", "Keys"},
        {"applications", "Applications"},
        {"short_codes", "SMS/ShortCodes"},
        {"queues", "Queues"},
        {"messages", "Messages"},
        {"balance", "Balance"},
    };
    const char *a = acct(tw);
    const struct sim_accounts *ac = accounts(tw);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    struct sim_jw j = {&b, 1};
    cg_buf_appendc(&b, '{');
    sim_jw_str(&j, "auth_token", scen(tw)->twilio_auth_token);
    jw_date(&j, "date_created", tw->created_ms);
    jw_date(&j, "date_updated", tw->created_ms);
    sim_jw_str(&j, "friendly_name", ac->twilio_friendly_name);
    sim_jw_str(&j, "owner_account_sid", a);
    sim_jw_str(&j, "sid", a);
    sim_jw_str(&j, "status", ac->twilio_status);
    struct sim_jw su = sim_jw_open(&j, "subresource_uris", '{');
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char u[160];
        snprintf(u, sizeof(u), API_ROOT "%s/%s.json", a, subs[i][1]);
        sim_jw_str(&su, subs[i][0], u);
    }
    sim_jw_close(&su, '}');
    sim_jw_str(&j, "type", "Full");
    char u[128];
    snprintf(u, sizeof(u), API_ROOT "%s.json", a);
    sim_jw_str(&j, "uri", u);
    cg_buf_appendc(&b, '}');
    count(tw, "twilio.rest_account");
    sim_api_reply_buf(req, 200, &b);
}

/* One IncomingPhoneNumber (OAI-2010 api.v2010.account.incoming_phone_number,
 * members in the order of its example). */
static void number_json(const struct sim_twilio *tw, const struct sim_number *n, const char *sid,
                        struct cg_buf *b)
{
    struct sim_jw j = {b, 1};
    const char *a = acct(tw);
    char tmp[2100];
    cg_buf_appendc(b, '{');
    sim_jw_str(&j, "account_sid", a);
    sim_jw_str(&j, "address_requirements", "none");
    sim_jw_str(&j, "address_sid", NULL);
    sim_jw_str(&j, "api_version", "2010-04-01");
    jw_raw(&j, "beta", "false");
    jw_raw(&j, "capabilities", "{\"voice\":true,\"sms\":true,\"mms\":true,\"fax\":false}");
    jw_date(&j, "date_created", tw->created_ms);
    jw_date(&j, "date_updated", tw->created_ms);
    sim_jw_str(&j, "emergency_status", "Inactive");
    sim_jw_str(&j, "emergency_address_sid", NULL);
    sim_jw_str(&j, "emergency_address_status", "unregistered");
    format_number(n->phone_number, tmp, sizeof(tmp));
    sim_jw_str(&j, "friendly_name", tmp);
    sim_jw_str(&j, "identity_sid", NULL);
    sim_jw_str(&j, "origin", "twilio");
    sim_jw_str(&j, "phone_number", n->phone_number);
    sim_jw_str(&j, "sid", sid);
    sim_jw_str(&j, "sms_application_sid", "");
    sim_jw_str(&j, "sms_fallback_method", "POST");
    sim_jw_str(&j, "sms_fallback_url", "");
    sim_jw_str(&j, "sms_method", "POST");
    sim_jw_str(&j, "sms_url", "");
    acct_url(tw, n->status_callback, "/call-status", tmp, sizeof(tmp));
    sim_jw_str(&j, "status_callback", tmp); /* "" when none, as in the example */
    sim_jw_str(&j, "status_callback_method", n->status_callback_method);
    sim_jw_str(&j, "trunk_sid", NULL);
    snprintf(tmp, sizeof(tmp), API_ROOT "%s/IncomingPhoneNumbers/%s.json", a, sid);
    sim_jw_str(&j, "uri", tmp);
    sim_jw_str(&j, "voice_application_sid", "");
    jw_raw(&j, "voice_caller_id_lookup", "false");
    sim_jw_str(&j, "voice_fallback_method", "POST");
    sim_jw_str(&j, "voice_fallback_url", NULL);
    sim_jw_str(&j, "voice_method", n->voice_method);
    acct_url(tw, n->voice_url, "/incoming", tmp, sizeof(tmp));
    sim_jw_str(&j, "voice_url", tmp[0] ? tmp : NULL); /* null when none, as in the example */
    sim_jw_str(&j, "bundle_sid", NULL);
    sim_jw_str(&j, "voice_receive_mode", "voice");
    sim_jw_str(&j, "status", "in-use");
    sim_jw_str(&j, "type", "local");
    cg_buf_appendc(b, '}');
}

/* GET IncomingPhoneNumbers.json[?PhoneNumber=...]: the scenario's numbers,
 * PNs numbered by position; PhoneNumber selects the one with that exact
 * E.164 number (the real filter may also match partial numbers). */
static void numbers_list(struct sim_twilio *tw, struct cg_http_req *req)
{
    struct sim_paging pg;
    if (paging_parse(req, &pg) < 0)
        return;
    const struct sim_accounts *ac = accounts(tw);
    const struct cg_form *qf = cg_http_req_query(req);
    const char *want = qf ? cg_form_get(qf, "PhoneNumber") : NULL;
    char sids[SIM_MAX_NUMBERS][35];
    const char *sidp[SIM_MAX_NUMBERS + 1];
    const struct sim_number *ns[SIM_MAX_NUMBERS + 1];
    size_t n = 0;
    for (size_t i = 0; i < ac->nnumbers && i < SIM_MAX_NUMBERS; i++) {
        if (want && strcmp(want, ac->numbers[i].phone_number) != 0)
            continue;
        snprintf(sids[n], sizeof(sids[n]), "PN%032zx", i + 1);
        sidp[n] = sids[n];
        ns[n++] = &ac->numbers[i];
    }
    paging_place(&pg, sidp, n);
    char base[128];
    snprintf(base, sizeof(base), API_ROOT "%s/IncomingPhoneNumbers.json", acct(tw));
    struct cg_buf filter;
    cg_buf_init(&filter, CG_BUF_UNBOUNDED);
    if (want) {
        char *enc = cg_pct_encode(want, strlen(want));
        cg_buf_printf(&filter, "PhoneNumber=%s&", enc);
        free(enc);
    }
    struct cg_buf items, b;
    cg_buf_init(&items, CG_BUF_UNBOUNDED);
    for (size_t i = 0; i < pg.count; i++) {
        if (i)
            cg_buf_appendc(&items, ',');
        number_json(tw, ns[pg.start + i], sidp[pg.start + i], &items);
    }
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_sorted(&b, base, cg_buf_str(&filter), &pg, sidp, n, "incoming_phone_numbers",
                    cg_buf_str(&items));
    cg_buf_free(&items);
    cg_buf_free(&filter);
    count(tw, "twilio.rest_numbers");
    sim_api_reply_buf(req, 200, &b);
}

/* ---- routing ---- */

static void route(struct sim_twilio *tw, struct cg_http_req *req)
{
    char buf[512];
    char *seg[MAX_SEGS];
    long nseg = sim_api_split_path(cg_http_req_path_rest(req), buf, sizeof(buf), seg, MAX_SEGS);
    if (nseg < 0) {
        not_found(req);
        return;
    }
    size_t n = (size_t)nseg;
    /* JSON only: the 2010 API's XML representation is not simulated. */
    size_t last = strlen(seg[n - 1]);
    if (last <= 5 || strcmp(seg[n - 1] + last - 5, ".json") != 0) {
        not_found(req);
        return;
    }
    seg[n - 1][last - 5] = '\0';
    if (strcmp(seg[0], acct(tw)) != 0) {
        not_found(req);
        return;
    }
    enum cg_http_method m = cg_http_req_method(req);
    int get = m == CG_HTTP_GET || m == CG_HTTP_HEAD;
    int post = m == CG_HTTP_POST;
    int del = m == CG_HTTP_DELETE;

    /* Read-only: the account and its numbers are the scenario's. */
    if (n == 1) {
        if (get)
            account_fetch(tw, req);
        else
            method_not_allowed(req);
        return;
    }
    if (n == 2 && strcmp(seg[1], "IncomingPhoneNumbers") == 0) {
        if (get)
            numbers_list(tw, req);
        else
            method_not_allowed(req);
        return;
    }

    if (strcmp(seg[1], "Queues") == 0) {
        if (n == 2) {
            if (get)
                queues_list(tw, req);
            else if (post)
                queue_create(tw, req);
            else
                method_not_allowed(req);
            return;
        }
        struct sim_queue *q = sim_tw_find_queue(tw, seg[2]);
        if (!q || (n >= 4 && strcmp(seg[3], "Members") != 0) || n > 5) {
            not_found(req);
            return;
        }
        if (n == 3) {
            if (get || post || del)
                queue_one(tw, req, q);
            else
                method_not_allowed(req);
        } else if (n == 4) {
            if (get)
                members_list(tw, req, q);
            else
                method_not_allowed(req);
        } else {
            if (get || post)
                member_one(tw, req, q, seg[4]);
            else
                method_not_allowed(req);
        }
        return;
    }
    if (strcmp(seg[1], "Calls") == 0 && n <= 3) {
        if (n == 2) {
            if (get)
                calls_list(tw, req);
            else if (post)
                sim_tw_outbound_create(tw, req);
            else
                method_not_allowed(req);
            return;
        }
        struct sim_call *c = sim_tw_find_call(tw, seg[2]);
        if (!c) {
            not_found(req);
            return;
        }
        if (get || post)
            call_one(tw, req, c);
        else
            method_not_allowed(req);
        return;
    }
    not_found(req);
}

static void serve(struct sim_twilio *tw, struct cg_http_req *req, int fault, int retry_after)
{
    if (fault == 429) {
        count(tw, "twilio.rest_429");
        if (retry_after)
            cg_http_set_header(req, "Retry-After", "1");
        sim_api_error(req, 429, 20429, "Too Many Requests");
        return;
    }
    if (fault == 500 || fault == 503) {
        count(tw, "twilio.rest_5xx");
        sim_api_error(req, fault, fault == 500 ? 20500 : 20503,
                      fault == 500 ? "Internal Server Error" : "Service Unavailable");
        return;
    }
    route(tw, req);
}

static void pending_unlink(struct sim_rest_pending *p)
{
    cg_list_remove(&p->link);
}

static void on_delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_rest_pending *p = arg;
    pending_unlink(p);
    struct sim_twilio *tw = p->tw;
    struct cg_http_req *req = p->req;
    int fault = p->fault, retry_after = p->retry_after;
    event_free(p->ev);
    free(p);
    serve(tw, req, fault, retry_after);
}

static void unavailable(struct cg_http_req *req, void *arg)
{
    (void)arg;
    sim_api_error(req, 503, 20503, "Service Unavailable");
}

static void process(struct cg_http_req *req, void *arg);

static void on_request(struct cg_http_req *req, void *arg)
{
    struct sim_twilio *tw = arg;
    /* Unreachable: nothing behind the network sees the request, not even
     * authentication, and no fault is drawn (the fault stream stays as it
     * would be without the outage for the requests that do get through). */
    if (sim_outage_take(tw->outage, req))
        return;
    process(req, tw);
}

static void process(struct cg_http_req *req, void *arg)
{
    struct sim_twilio *tw = arg;
    if (!authorized(tw, req)) {
        count(tw, "twilio.rest_401");
        sim_api_unauthorized(req);
        return;
    }
    const struct sim_scenario *sc = scen(tw);
    struct sim_rng *rng = tw->w->fault_rng;
    int fault = 0, retry_after = 0;
    double delay = 0;
    if (sc && rng) {
        if (sc->twilio_rate_429 > 0 && sim_rng_chance(rng, sc->twilio_rate_429)) {
            fault = 429;
            retry_after = sim_rng_chance(rng, 0.5);
        } else if (sc->twilio_rate_5xx > 0 && sim_rng_chance(rng, sc->twilio_rate_5xx)) {
            fault = sim_rng_chance(rng, 0.5) ? 500 : 503;
        }
        if (sc->twilio_latency.kind != SIM_DIST_NONE)
            delay = sim_rng_draw(rng, &sc->twilio_latency);
    }
    if (!(delay > 0)) {
        serve(tw, req, fault, retry_after);
        return;
    }
    struct sim_rest_pending *p = cg_calloc(1, sizeof(*p));
    p->tw = tw;
    p->req = req;
    p->fault = fault;
    p->retry_after = retry_after;
    p->ev = evtimer_new(tw->w->base, on_delayed, p);
    if (!p->ev) {
        free(p);
        serve(tw, req, fault, retry_after);
        return;
    }
    cg_list_push_front(&tw->rest, &p->link);
    if (sim_api_hold_timer(p->ev, delay, 60) != 0) {
        /* No timer: answer now rather than never. */
        pending_unlink(p);
        event_free(p->ev);
        free(p);
        serve(tw, req, fault, retry_after);
    }
}

int sim_twilio_rest_init(struct sim_twilio *tw)
{
    tw->created_ms = cg_wall_ms();
    unsigned methods = CG_HTTP_GET | CG_HTTP_POST | CG_HTTP_DELETE | CG_HTTP_PUT | CG_HTTP_PATCH;
    if (cg_httpd_route(tw->w->httpd, API_ROOT "*", methods, on_request, tw) < 0) {
        cg_log_error("sim twilio: cannot register the REST routes", "");
        return -1;
    }
    const struct sim_scenario *sc = scen(tw);
    if (sc && sc->twilio_outages.n > 0)
        tw->outage =
            sim_outage_hold_new(tw->w, "twilio", &sc->twilio_outages, unavailable, process, tw);
    return 0;
}

void sim_twilio_rest_shutdown(struct sim_twilio *tw)
{
    sim_outage_hold_free(tw->outage);
    tw->outage = NULL;
    struct cg_list *it;
    while ((it = cg_list_first(&tw->rest)) != NULL) {
        struct sim_rest_pending *p = cg_list_entry(it, struct sim_rest_pending, link);
        pending_unlink(p);
        event_free(p->ev);
        sim_api_error(p->req, 503, 20503, "Service Unavailable");
        free(p);
    }
}
