#include "base/fmacros.h"

#include "demo/doctor.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/form.h"
#include "base/json.h"
#include "base/url.h"
#include "demo/bclient.h"
#include "demo/bredis.h"

#define TIMEOUT_MS 8000
#define MAX_BODY   (4 * 1024 * 1024)

enum verdict { OK, WARN, FAIL, INFO };

struct doctor {
    const struct cg_config *cfg;
    FILE *out;
    int fails, warns;
    char *vapi_number; /* the E.164 number of VAPI_PHONE_NUMBER_ID, once read */
    /* What is checked: the environment's, or one route's (ROUTES_FILE). */
    const char *assistant_id;
    const char *phone_number_id;
    const char *queue_sid; /* "": found by name */
    const char *queue_name;
};

static void report(struct doctor *d, enum verdict v, const char *check, const char *fix,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(struct doctor *d, enum verdict v, const char *check, const char *fix,
                   const char *fmt, ...)
{
    static const char *const names[] = {"OK  ", "WARN", "FAIL", "INFO"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(d->out, "%s  %-22s %s\n", names[v], check, msg);
    if (fix != NULL && (v == WARN || v == FAIL))
        fprintf(d->out, "      %-22s fix: %s\n", "", fix);
    d->fails += v == FAIL;
    d->warns += v == WARN;
}

/* What an API said about a failed request, after "HTTP nnn": Twilio's
 * message and detail ({"code","message","detail",...}), Vapi's message
 * (NestJS: a string or an array of strings). Nothing for a 2xx. */
static void api_error_text(const json_t *j, long status, char *err, size_t errlen)
{
    const json_t *m = j ? json_object_get(j, "message") : NULL;
    if (json_is_array(m))
        m = json_array_get(m, 0);
    const char *msg = json_is_string(m) ? json_string_value(m) : NULL;
    const char *detail = j ? cg_json_str(j, "detail") : NULL;
    if (status >= 200 && status < 300)
        snprintf(err, errlen, "HTTP %ld", status);
    else if (msg && detail)
        snprintf(err, errlen, "HTTP %ld: %.200s: %.200s", status, msg, detail);
    else if (msg)
        snprintf(err, errlen, "HTTP %ld: %.200s", status, msg);
    else
        snprintf(err, errlen, "HTTP %ld", status);
}

/* GETs base+path as JSON with Twilio's basic credentials or Vapi's bearer
 * key. Returns the parsed body (NULL when not JSON) and the status in
 * *status (0: no answer, err says why; otherwise err is "HTTP nnn" and,
 * for an error, what the API said). */
static json_t *get_json(struct doctor *d, int twilio, const char *base, const char *path,
                        long *status, char *err, size_t errlen)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct cg_bhttp_resp r;
    const struct cg_config *c = d->cfg;
    int rc = twilio ? cg_bhttp_get(url, c->twilio_account_sid, c->twilio_auth_token, NULL,
                                   TIMEOUT_MS, MAX_BODY, &r)
                    : cg_bhttp_get(url, NULL, NULL, c->vapi_api_key, TIMEOUT_MS, MAX_BODY, &r);
    *status = r.status;
    json_t *j = NULL;
    if (rc != 0) {
        snprintf(err, errlen, "%s", r.err);
    } else {
        j = json_loadb(r.body, r.len, 0, NULL);
        api_error_text(j, r.status, err, errlen);
    }
    cg_bhttp_free(&r);
    return j;
}

static const char *str_or(const json_t *j, const char *path, const char *dflt)
{
    const char *s = cg_json_str(j, path);
    return s ? s : dflt;
}

/* ---- Twilio ---- */

static int check_twilio_account(struct doctor *d)
{
    const struct cg_config *c = d->cfg;
    char path[128], err[512];
    long st;
    snprintf(path, sizeof path, "/2010-04-01/Accounts/%s.json", c->twilio_account_sid);
    json_t *j = get_json(d, 1, c->twilio_api_base_url, path, &st, err, sizeof err);
    int ok = 0;
    if (st == 200 && j) {
        const char *status = str_or(j, "status", "unknown");
        if (strcmp(status, "active") == 0) {
            report(d, OK, "twilio.credentials", NULL, "account %s (%s) is active",
                   c->twilio_account_sid, str_or(j, "friendly_name", "no name"));
            ok = 1;
        } else {
            report(d, FAIL, "twilio.credentials",
                   "reactivate the account in the Twilio console, or use another one",
                   "account %s is %s", c->twilio_account_sid, status);
        }
    } else if (st == 401 || st == 403 || st == 404) {
        report(d, FAIL, "twilio.credentials",
               "copy the Account SID and the primary Auth Token from the Twilio console "
               "(Account Info) into TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
               "Twilio refused TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN (%s)", err);
    } else {
        report(d, FAIL, "twilio.credentials",
               "check the network path to TWILIO_API_BASE_URL and try again",
               "no answer from Twilio at %s (%s)", c->twilio_api_base_url, err);
    }
    json_decref(j);
    return ok;
}

static void check_twilio_queue(struct doctor *d)
{
    const struct cg_config *c = d->cfg;
    char path[256], err[512], fix[512];
    long st;
    json_t *q = NULL, *list = NULL;
    if (d->queue_sid[0] != '\0') {
        snprintf(path, sizeof path, "/2010-04-01/Accounts/%s/Queues/%s.json", c->twilio_account_sid,
                 d->queue_sid);
        q = get_json(d, 1, c->twilio_api_base_url, path, &st, err, sizeof err);
        if (st != 200) {
            /* An error body is not a queue. */
            json_decref(q);
            q = NULL;
        }
        if (st == 404) {
            report(d, FAIL, "twilio.queue",
                   "create the queue (twilio api:core:queues:create --friendly-name NAME) and "
                   "put its QU... SID in TWILIO_QUEUE_SID, or empty TWILIO_QUEUE_SID",
                   "queue %s does not exist in account %s", d->queue_sid, c->twilio_account_sid);
            return;
        }
    } else {
        snprintf(path, sizeof path, "/2010-04-01/Accounts/%s/Queues.json?PageSize=1000",
                 c->twilio_account_sid);
        list = get_json(d, 1, c->twilio_api_base_url, path, &st, err, sizeof err);
        json_t *arr = list ? json_object_get(list, "queues") : NULL;
        size_t i;
        json_t *it;
        json_array_foreach (arr, i, it) {
            if (strcmp(str_or(it, "friendly_name", ""), d->queue_name) == 0)
                q = json_incref(it);
        }
        if (st == 200 && q == NULL) {
            snprintf(fix, sizeof fix,
                     "create it now with room for MAX_QUEUE_SIZE callers: twilio "
                     "api:core:queues:create --friendly-name '%s' --max-size %d",
                     d->queue_name, c->max_queue_size);
            report(d, WARN, "twilio.queue", fix,
                   "no queue named %s yet: Twilio creates it on the first caller with its "
                   "default max_size (1000 in the API reference, 100 on some of its pages), "
                   "which may be below MAX_QUEUE_SIZE=%d",
                   d->queue_name, c->max_queue_size);
            json_decref(list);
            return;
        }
    }
    if (q == NULL) {
        report(d, FAIL, "twilio.queue", "run doctor again once Twilio answers",
               "cannot read the queue (%s)", err);
        json_decref(list);
        return;
    }
    long long max_size = 0;
    cg_json_int(q, "max_size", &max_size);
    const char *sid = str_or(q, "sid", "?");
    if (max_size < c->max_queue_size) {
        snprintf(fix, sizeof fix,
                 "twilio api:core:queues:update --sid %s --max-size %d (Twilio allows up to "
                 "5000)",
                 sid, c->max_queue_size);
        report(d, FAIL, "twilio.queue", fix,
               "queue %s (%s) holds at most %lld callers, fewer than MAX_QUEUE_SIZE=%d: "
               "Twilio would refuse every caller beyond %lld",
               str_or(q, "friendly_name", "?"), sid, max_size, c->max_queue_size, max_size);
    } else {
        report(d, OK, "twilio.queue", NULL, "queue %s (%s), max_size %lld >= MAX_QUEUE_SIZE=%d",
               str_or(q, "friendly_name", "?"), sid, max_size, c->max_queue_size);
    }
    json_decref(q);
    json_decref(list);
}

/* Whether url (as configured on Twilio or Vapi) is PUBLIC_URL + path. */
static int url_is(const char *url, const char *public_url, const char *path)
{
    size_t n = strlen(public_url);
    return url != NULL && strncmp(url, public_url, n) == 0 && strcmp(url + n, path) == 0;
}

static void check_twilio_number(struct doctor *d)
{
    const struct cg_config *c = d->cfg;
    if (d->vapi_number == NULL) {
        report(d, WARN, "twilio.number", "fix the Vapi phone number check above first",
               "not checked: the phone number's E.164 number is unknown");
        return;
    }
    char path[256], err[512], fix[768];
    long st;
    char *enc = cg_pct_encode(d->vapi_number, strlen(d->vapi_number));
    snprintf(path, sizeof path, "/2010-04-01/Accounts/%s/IncomingPhoneNumbers.json?PhoneNumber=%s",
             c->twilio_account_sid, enc);
    free(enc);
    json_t *j = get_json(d, 1, c->twilio_api_base_url, path, &st, err, sizeof err);
    json_t *n = j ? json_array_get(json_object_get(j, "incoming_phone_numbers"), 0) : NULL;
    if (st == 200 && j != NULL && n == NULL) {
        report(d, FAIL, "twilio.number",
               "VAPI_PHONE_NUMBER_ID must be a number of this Twilio account, imported into Vapi",
               "%s is not a number of account %s", d->vapi_number, c->twilio_account_sid);
        json_decref(j);
        return;
    }
    if (n == NULL || st != 200) {
        report(d, FAIL, "twilio.number", "run doctor again once Twilio answers",
               "cannot read the phone numbers of account %s (%s)", c->twilio_account_sid, err);
        json_decref(j);
        return;
    }
    const char *voice = cg_json_str(n, "voice_url");
    const char *vmethod = str_or(n, "voice_method", "POST");
    const char *status = cg_json_str(n, "status_callback");
    const char *smethod = str_or(n, "status_callback_method", "POST");
    int voice_ok = url_is(voice, c->public_url, "/incoming") && strcmp(vmethod, "POST") == 0;
    int status_ok = url_is(status, c->public_url, "/call-status") && strcmp(smethod, "POST") == 0;
    if (voice_ok) {
        report(d, OK, "twilio.number.voice", NULL, "%s: a call comes in -> POST %s", d->vapi_number,
               voice);
    } else {
        snprintf(fix, sizeof fix,
                 "Twilio console, Phone Numbers, %s, A call comes in: Webhook %s/incoming, "
                 "HTTP POST",
                 d->vapi_number, c->public_url);
        report(d, FAIL, "twilio.number.voice", fix,
               "%s sends calls to %s %s, not POST %s/incoming: callers never reach callgate",
               d->vapi_number, vmethod, voice && *voice ? voice : "(nothing)", c->public_url);
    }
    if (status_ok) {
        report(d, OK, "twilio.number.status", NULL, "%s: call status changes -> POST %s",
               d->vapi_number, status);
    } else {
        snprintf(fix, sizeof fix,
                 "Twilio console, Phone Numbers, %s, Call status changes: %s/call-status, "
                 "HTTP POST",
                 d->vapi_number, c->public_url);
        report(d, WARN, "twilio.number.status", fix,
               "%s reports call status to %s %s, not POST %s/call-status: callgate learns of "
               "hang-ups later, from Vapi or its sweep",
               d->vapi_number, smethod, status && *status ? status : "(nothing)", c->public_url);
    }
    json_decref(j);
}

/* ---- Vapi ---- */

static int has_message(const json_t *arr, const char *type)
{
    size_t i;
    json_t *it;
    json_array_foreach (arr, i, it) {
        if (json_is_string(it) && strcmp(json_string_value(it), type) == 0)
            return 1;
    }
    return 0;
}

static void check_vapi_assistant(struct doctor *d, int *key_ok)
{
    const struct cg_config *c = d->cfg;
    char path[256], err[512], fix[512];
    long st;
    snprintf(path, sizeof path, "/assistant/%s", d->assistant_id);
    json_t *a = get_json(d, 0, c->vapi_base_url, path, &st, err, sizeof err);
    *key_ok = st != 401 && st != 403 && st != 0;
    if (st == 401 || st == 403) {
        report(d, FAIL, "vapi.credentials",
               "copy the private API key from the Vapi dashboard (Organization Settings, API "
               "Keys) into VAPI_API_KEY; the public key cannot create calls",
               "Vapi refused VAPI_API_KEY (%s)", err);
        json_decref(a);
        return;
    }
    if (st == 0) {
        report(d, FAIL, "vapi.credentials", "check the network path to VAPI_BASE_URL",
               "no answer from Vapi at %s (%s)", c->vapi_base_url, err);
        json_decref(a);
        return;
    }
    if (st != 200 && st != 404 && st != 400) {
        /* A 5xx or 429 says nothing about the key. */
        *key_ok = 0;
        report(d, FAIL, "vapi.credentials", "run doctor again once Vapi answers",
               "Vapi did not answer at %s (%s)", c->vapi_base_url, err);
        json_decref(a);
        return;
    }
    report(d, OK, "vapi.credentials", NULL, "Vapi accepts VAPI_API_KEY");
    if (st != 200 || a == NULL) {
        report(d, FAIL, "vapi.assistant",
               "copy the assistant's id from the Vapi dashboard (Assistants) into "
               "VAPI_ASSISTANT_ID",
               "assistant %s not found (%s)", d->assistant_id, err);
        json_decref(a);
        return;
    }
    report(d, OK, "vapi.assistant", NULL, "assistant %s (%s)", d->assistant_id,
           str_or(a, "name", "no name"));

    const char *server = cg_json_str(a, "server.url");
    if (server == NULL)
        server = cg_json_str(a, "serverUrl"); /* older assistants */
    if (url_is(server, c->public_url, "/call-ended")) {
        report(d, OK, "vapi.assistant.server", NULL, "server URL %s", server);
    } else {
        snprintf(fix, sizeof fix,
                 "Vapi dashboard, the assistant, Advanced, Server URL: %s/call-ended, with the "
                 "secret in VAPI_WEBHOOK_SECRET%s",
                 c->public_url,
                 server && *server && c->vapi_forward_url[0] == '\0'
                     ? "; if the present URL answers the assistant's tools, put it in "
                       "VAPI_FORWARD_URL"
                     : "");
        report(d, FAIL, "vapi.assistant.server", fix,
               "the assistant's server URL is %s, not %s/call-ended: callgate never hears "
               "that a call ended, and slots free only when leases expire",
               server && *server ? server : "(none)", c->public_url);
    }
    const json_t *msgs = json_object_get(a, "serverMessages");
    int su = has_message(msgs, "status-update"), eocr = has_message(msgs, "end-of-call-report");
    if (!json_is_array(msgs)) {
        report(d, OK, "vapi.assistant.messages", NULL,
               "server messages not set: Vapi's defaults include status-update and "
               "end-of-call-report");
    } else if (su && eocr) {
        report(d, OK, "vapi.assistant.messages", NULL,
               "server messages include status-update and end-of-call-report");
    } else {
        report(d, FAIL, "vapi.assistant.messages",
               "Vapi dashboard, the assistant, Advanced, Server Messages: tick status-update "
               "and end-of-call-report",
               "server messages lack %s%s%s: slots are freed late", su ? "" : "status-update",
               !su && !eocr ? " and " : "", eocr ? "" : "end-of-call-report");
    }
    json_decref(a);
}

static void check_vapi_number(struct doctor *d)
{
    const struct cg_config *c = d->cfg;
    char path[256], err[512];
    long st;
    snprintf(path, sizeof path, "/phone-number/%s", d->phone_number_id);
    json_t *n = get_json(d, 0, c->vapi_base_url, path, &st, err, sizeof err);
    const char *number = n && st == 200 ? cg_json_str(n, "number") : NULL;
    if (st != 200 && st != 404 && st != 400) {
        report(d, FAIL, "vapi.number", "run doctor again once Vapi answers",
               "cannot read phone number %s (%s)", d->phone_number_id, err);
        json_decref(n);
        return;
    }
    if (number == NULL) {
        report(d, FAIL, "vapi.number",
               "import the Twilio number into Vapi (Phone Numbers, Import) and copy its id "
               "into VAPI_PHONE_NUMBER_ID",
               "phone number %s not found (%s)", d->phone_number_id, err);
        json_decref(n);
        return;
    }
    free(d->vapi_number);
    d->vapi_number = cg_strdup(number);
    const char *assistant = cg_json_str(n, "assistantId");
    if (assistant != NULL && *assistant != '\0')
        report(d, WARN, "vapi.number",
               "Vapi dashboard, Phone Numbers, the number: remove its inbound assistant",
               "%s has the inbound assistant %s: calls Twilio sends to Vapi directly would skip "
               "the queue",
               number, assistant);
    else
        report(d, OK, "vapi.number", NULL, "phone number %s (%s)", d->phone_number_id, number);
    json_decref(n);
}

/* ---- TaskRouter ---- */

static void check_workspace(struct doctor *d)
{
    const struct cg_config *c = d->cfg;
    char path[128], err[512];
    long st;
    snprintf(path, sizeof path, "/v1/Workspaces/%s", c->twilio_workspace_sid);
    json_t *w = get_json(d, 1, c->taskrouter_base_url, path, &st, err, sizeof err);
    if (st == 200 && w)
        report(d, OK, "taskrouter.workspace", NULL, "workspace %s (%s)", c->twilio_workspace_sid,
               str_or(w, "friendly_name", "no name"));
    else
        report(d, FAIL, "taskrouter.workspace",
               "copy the workspace's WS... SID from the Twilio console (TaskRouter, Workspaces) "
               "into TWILIO_WORKSPACE_SID",
               "workspace %s cannot be read (%s)", c->twilio_workspace_sid, err);
    json_decref(w);
}

/* ---- Redis ---- */

/* The first element of a ROLE answer ("master", "slave", "sentinel"). */
static const char *role_of(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                   r->element[0]->type == REDIS_REPLY_STRING
               ? r->element[0]->str
               : NULL;
}

static const char REDIS_FIX[] = "start Redis or correct REDIS_URL (its password included)";

/* Asks the sentinels in turn for the master's address, as the daemon does
 * (src/net/redis_sentinel.c). 0 with host (malloc'd) and *port, or -1 after
 * a FAIL line. */
static int sentinel_master(struct doctor *d, const struct cg_bredis_tls *tls, char **host,
                           int *port)
{
    const struct cg_config *c = d->cfg;
    struct cg_hostport *list = NULL;
    size_t n = 0;
    char err[256], why[512] = "";
    if (cg_sentinels_parse(c->redis_sentinels, &list, &n, err, sizeof err) != 0) {
        report(d, FAIL, "redis.sentinel", "correct REDIS_SENTINELS", "%s", err);
        return -1;
    }
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        size_t used = strlen(why);
        struct cg_bredis *b =
            cg_bredis_open(list[i].host, list[i].port, tls, TIMEOUT_MS, err, sizeof err);
        if (b == NULL ||
            cg_bredis_login(b, NULL, c->redis_sentinel_password, 0, err, sizeof err) != 0) {
            snprintf(why + used, sizeof why - used, "%s%s:%d: %s", used ? "; " : "", list[i].host,
                     list[i].port, err);
            cg_bredis_close(b);
            continue;
        }
        redisReply *r =
            cg_bredis_cmd(b, "SENTINEL get-master-addr-by-name %s", c->redis_sentinel_master);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING && atoi(r->element[1]->str) > 0) {
            *host = cg_strdup(r->element[0]->str);
            *port = atoi(r->element[1]->str);
            found = 1;
            report(d, OK, "redis.sentinel", NULL, "sentinel %s:%d names %s:%d as master \"%s\"",
                   list[i].host, list[i].port, *host, *port, c->redis_sentinel_master);
        } else {
            snprintf(why + used, sizeof why - used, "%s%s:%d: %s", used ? "; " : "", list[i].host,
                     list[i].port,
                     r == NULL                      ? cg_bredis_error(b)
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "no master by that name");
        }
        if (r)
            freeReplyObject(r);
        cg_bredis_close(b);
    }
    if (!found)
        report(d, FAIL, "redis.sentinel",
               "start the sentinels, or correct REDIS_SENTINELS, REDIS_SENTINEL_MASTER (the "
               "name in `sentinel monitor`) and REDIS_SENTINEL_PASSWORD",
               "no sentinel named the master \"%s\" (%s)", c->redis_sentinel_master, why);
    cg_sentinels_free(list, n);
    return found ? 0 : -1;
}

/* Without a runtime limit, admission obeys the lowest MAX_CONCURRENCY of
 * the gate's live instances (gate/instances.h): a running instance with a
 * lower one holds this one's down. */
static void report_lowest_limit(struct doctor *d, struct cg_bredis *r, const struct cg_config *c)
{
    redisReply *rep = cg_bredis_cmd(r, "GET cg:{%s}:instances_min", c->gate_name);
    long lowest = rep && rep->type == REDIS_REPLY_STRING ? strtol(rep->str, NULL, 10) : 0;
    if (rep)
        freeReplyObject(rep);
    if (lowest > 0 && lowest < c->max_concurrency)
        report(d, WARN, "gate.limit",
               "give every instance of the gate the same MAX_CONCURRENCY (docs/DEPLOY.md "
               "section 6)",
               "a running instance of this gate has MAX_CONCURRENCY=%ld: the gate admits no more "
               "than that, not MAX_CONCURRENCY=%d",
               lowest, c->max_concurrency);
    else
        report(d, OK, "gate.limit", NULL, "MAX_CONCURRENCY=%d is in force", c->max_concurrency);
}

static void check_redis(struct doctor *d)
{
    const struct cg_config *c = d->cfg;
    char err[256];
    struct cg_redis_url u;
    if (cg_redis_url_parse(c->redis_url, &u, err, sizeof err) != 0) {
        report(d, FAIL, "redis", "correct REDIS_URL", "%s", err);
        return;
    }
    /* TLS as the daemon does it: for the sentinels and the data node alike. */
    struct cg_bredis_tls tls = {
        .ca_file = c->redis_tls_ca_file,
        .cert_file = c->redis_tls_cert_file,
        .key_file = c->redis_tls_key_file,
        .server_name = c->redis_tls_server_name,
        .insecure = c->redis_tls_insecure,
    };
    const struct cg_bredis_tls *t = u.tls ? &tls : NULL;
    char *host = NULL;
    int port = u.port;
    int sentinel = c->redis_sentinels[0] != '\0';
    if (sentinel && sentinel_master(d, t, &host, &port) != 0) {
        cg_redis_url_free(&u);
        return;
    }
    if (host == NULL)
        host = cg_strdup(u.host);
    struct cg_bredis *r = cg_bredis_open(host, port, t, TIMEOUT_MS, err, sizeof err);
    if (r == NULL || cg_bredis_login(r, u.user, u.password, u.db, err, sizeof err) != 0) {
        report(d, FAIL, "redis",
               u.tls ? "correct REDIS_URL, or REDIS_TLS_CA_FILE (the CA that signed Redis' "
                       "certificate) and REDIS_TLS_SERVER_NAME (a name in it)"
                     : REDIS_FIX,
               "%s", err);
        goto done;
    }
    redisReply *rep;
    if (sentinel) {
        /* The daemon writes only to a node that says it is the master. */
        rep = cg_bredis_cmd(r, "ROLE");
        const char *role = role_of(rep);
        if (role == NULL || strcmp(role, "master") != 0) {
            report(d, FAIL, "redis.role",
                   "wait for the failover to finish, or check the sentinels' configuration",
                   "%s:%d is %s, not the master the sentinels named", host, port,
                   role ? role : "unknown");
            if (rep)
                freeReplyObject(rep);
            goto done;
        }
        report(d, OK, "redis.role", NULL, "%s:%d is the master", host, port);
        freeReplyObject(rep);
    }
    rep = cg_bredis_cmd(r, "INFO server");
    if (rep == NULL) {
        report(d, FAIL, "redis",
               u.tls ? "give REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE if Redis requires client "
                       "certificates (tls-auth-clients), or correct REDIS_URL"
                     : REDIS_FIX,
               "%s:%d closed the connection: %s", host, port, cg_bredis_error(r));
        goto done;
    }
    const char *v =
        rep && rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "redis_version:") : NULL;
    char version[32] = "unknown";
    if (v)
        sscanf(v + strlen("redis_version:"), "%31[0-9.]", version);
    int major = atoi(version);
    if (major > 0 && major < 6)
        report(d, FAIL, "redis", "use Redis 6 or newer", "Redis %s is too old", version);
    else
        report(d, OK, "redis", NULL, "Redis %s answers%s", version, u.tls ? " over TLS" : "");
    if (rep)
        freeReplyObject(rep);

    rep = cg_bredis_cmd(r, "CONFIG GET maxmemory-policy");
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        const char *policy = rep->element[1]->str;
        if (strcmp(policy, "noeviction") == 0)
            report(d, OK, "redis.eviction", NULL, "maxmemory-policy noeviction");
        else
            report(d, WARN, "redis.eviction",
                   "CONFIG SET maxmemory-policy noeviction (and in redis.conf), or your "
                   "provider's parameter group",
                   "maxmemory-policy is %s: under memory pressure Redis may evict a waiting "
                   "caller's record",
                   policy);
    } else {
        report(d, WARN, "redis.eviction",
               "ask your provider which maxmemory-policy applies; noeviction is needed",
               "CONFIG GET is not allowed (%s): the eviction policy is unknown",
               rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no answer");
    }
    if (rep)
        freeReplyObject(rep);

    if (c->services & CG_SERVICE_GATE) {
        rep = cg_bredis_cmd(r, "GET cg:{%s}:limit", c->gate_name);
        if (rep && rep->type == REDIS_REPLY_STRING)
            report(d, INFO, "gate.limit", NULL,
                   "runtime limit %s set through the admin API is in force, not "
                   "MAX_CONCURRENCY=%d (DELETE /admin/limit returns to it)",
                   rep->str, c->max_concurrency);
        else
            report_lowest_limit(d, r, c);
        if (rep)
            freeReplyObject(rep);
    }
done:
    cg_bredis_close(r);
    free(host);
    cg_redis_url_free(&u);
}

int cg_doctor_run(const struct cg_config *cfg, FILE *out)
{
    struct doctor d = {.cfg = cfg, .out = out};
    char services[32];
    cg_config_services_text(cfg->services, services, sizeof services);
    fprintf(out, "callgate doctor: services %s, PUBLIC_URL %s\n", services, cfg->public_url);
    check_redis(&d);
    if (cfg->services & (CG_SERVICE_GATE | CG_SERVICE_WAITTIME)) {
        int tw_ok = check_twilio_account(&d);
        /* Each route's assistant, number and queue (ROUTES_FILE), else the
         * environment's. */
        size_t nroutes = cfg->routes.n ? cfg->routes.n : 1;
        for (size_t i = 0; (cfg->services & CG_SERVICE_GATE) && i < nroutes; i++) {
            const struct cg_route *rt = cfg->routes.n ? &cfg->routes.v[i] : NULL;
            d.assistant_id = rt ? rt->assistant_id : cfg->vapi_assistant_id;
            d.phone_number_id = rt ? rt->phone_number_id : cfg->vapi_phone_number_id;
            d.queue_sid = rt ? "" : cfg->twilio_queue_sid;
            d.queue_name = rt ? rt->queue : cfg->twilio_queue_name;
            if (rt != NULL)
                fprintf(out, "route %s:\n", rt->name);
            int vapi_ok = 0;
            check_vapi_assistant(&d, &vapi_ok);
            if (vapi_ok)
                check_vapi_number(&d);
            if (tw_ok) {
                check_twilio_queue(&d);
                check_twilio_number(&d);
            }
        }
        if ((cfg->services & CG_SERVICE_WAITTIME) && tw_ok)
            check_workspace(&d);
    }
    fprintf(out, "%d failed, %d warning%s\n", d.fails, d.warns, d.warns == 1 ? "" : "s");
    free(d.vapi_number);
    return d.fails ? 1 : 0;
}
