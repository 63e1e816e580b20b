/*
 * vapi.c - the simulated Vapi API and call lifecycle (see vapi.h and
 * docs vapi-wire.md). Validation follows CreateCallDTO of the OpenAPI spec
 * with NestJS's whitelist behaviour, so a gate that sends a misspelt field
 * finds out here rather than in production.
 *
 * Call states: WAITING (created, no stream yet) -> LIVE (stream connected)
 * -> CLOSING (Twilio leg gone, end_lag_s) -> ENDED. A blocked call (over
 * the limit in "blocked" mode) goes straight to ENDED after end_lag_s and
 * never counts against the limit.
 */
#include "base/fmacros.h"

#include "vapi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/crypto.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/clock.h"
#include "base/form.h"
#include "hooks.h"
#include "net/httpd.h"
#include "base/json.h"
#include "base/log.h"
#include "outage.h"
#include "rcheck.h"
#include "callbacks.h"
#include "report.h"
#include "rng.h"
#include "scenario_routes.h"
#include "sim.h"
#include "twilio/signature.h"
#include "vapi_dto.h"

#define NBUCKETS        4096
#define MAX_KEEP        200000 /* calls kept for GET; older ended ones are pruned */
#define MAX_URL         2048
#define STREAM_PREFIX   "wss://sim.local/"
#define STREAM_SUFFIX   "/transport"
#define ORG_ID          "5e4d0000-0000-4000-8000-00000000516d"
#define HANG_AFTER_S    0.5
#define COST_PER_MINUTE 0.07

/* V_DIALING and V_RINGING: an outbound call before the customer answers. */
enum vstate { V_WAITING, V_LIVE, V_CLOSING, V_ENDED, V_DIALING, V_RINGING };
enum answer { ANSWERS, BUSY, NO_ANSWER };

struct vcall {
    struct sim_vapi *v;
    struct vcall *hnext;
    char id[37];
    enum vstate st;
    int blocked;
    int counted; /* counts against the limit now */
    char *customer;
    char *assistant_id;
    char *phone_number_id;
    char *provider_id; /* Twilio CallSid, known once the stream connects */
    char *meta_sid;    /* assistantOverrides.metadata.twilioCallSid */
    char *server_url;
    json_t *overrides;
    uint64_t created_ms, updated_ms, started_ms, ended_ms; /* wall */
    uint64_t created_mono_ms;
    long limit_at_create, remaining_at_create;
    const char *ended_reason;
    double max_duration_s;
    struct event *timer;  /* lifecycle: no stream, max duration, end lag */
    struct event *report; /* end-of-call-report */
    struct event *hang;
    struct event *control;      /* the assistant's phone-call-control, when it sends one */
    const char *control_reason; /* endedReason once it has handed the caller on */
    int outbound;               /* Vapi dials the customer (no bypass) */
    int route;                  /* of the scenario's routes, by phoneNumberId; -1: none */
    enum answer answer;         /* outbound: what the customer's phone does */
    double ring_s, talk_s;
};

struct pending {
    struct sim_vapi *v;
    struct cg_list link; /* v->pending */
    struct cg_http_req *req;
    struct event *timer;
    int f429, retry_after, f500, foverlimit;
};

struct sim_vapi {
    struct sim_world *w;
    struct vcall *buckets[NBUCKETS];
    struct vcall **calls; /* creation order */
    size_t ncalls, cap;
    size_t live, peak, created, waiting_stream;
    struct cg_list pending;         /* requests held back by latency, newest first */
    struct sim_outage_hold *outage; /* requests held by an outage window (outage.h) */
    uint64_t created_ms;            /* wall: createdAt of the assistant and phone number */
    struct sim_rng *cust_rng;       /* outbound customers, kept off w->rng so callers repeat */
    size_t web_live;                /* web calls held under leased slots (sim_vapi_web_start) */
};

/* ---- small helpers ---- */

static void count(struct sim_vapi *v, const char *what)
{
    if (v->w->report)
        sim_report_count(v->w->report, what);
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

static struct vcall *find(const struct sim_vapi *v, const char *id)
{
    for (struct vcall *c = v->buckets[hash(id)]; c; c = c->hnext)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static void arm(struct event *ev, double seconds)
{
    if (!ev)
        return;
    if (seconds < 0)
        seconds = 0;
    long long us = (long long)(seconds * 1e6);
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
    if (evtimer_add(ev, &tv) != 0)
        cg_log_error("sim vapi timer failed", "");
}

static void set_str(json_t *o, const char *k, const char *s)
{
    if (s)
        json_object_set_new(o, k, json_string(s));
}

static void set_time(json_t *o, const char *k, uint64_t ms)
{
    if (ms == 0)
        return;
    char iso[25];
    cg_iso8601_ms(ms, iso);
    json_object_set_new(o, k, json_string(iso));
}

static void reply(struct cg_http_req *req, int status, json_t *body)
{
    char *s = cg_json_dumps(body);
    json_decref(body);
    cg_http_reply_json(req, status, s);
    free(s);
}

/* NestJS's error shape; message is a string or an array of strings. */
static void reply_error(struct cg_http_req *req, int status, json_t *message, const char *error)
{
    json_t *o = json_object();
    json_object_set_new(o, "message", message);
    if (error)
        json_object_set_new(o, "error", json_string(error));
    json_object_set_new(o, "statusCode", json_integer(status));
    reply(req, status, o);
}

static int authorized(struct sim_vapi *v, struct cg_http_req *req)
{
    const char *h = cg_http_req_header(req, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0 && cg_ct_streq(h + 7, v->w->sc->vapi_api_key))
        return 1;
    reply_error(req, 401,
                json_string("Invalid Key. Hot tip, you may be using the private key instead of "
                            "the public key, or vice versa."),
                "Unauthorized");
    return 0;
}

static const char *status_name(const struct vcall *c)
{
    switch (c->st) {
    case V_WAITING:
    case V_DIALING:
        return "queued";
    case V_RINGING:
        return "ringing";
    case V_LIVE:
    case V_CLOSING:
        return "in-progress";
    case V_ENDED:
    default:
        return "ended";
    }
}

static double duration_s(const struct vcall *c)
{
    if (!c->started_ms)
        return 0;
    uint64_t end = c->ended_ms ? c->ended_ms : cg_wall_ms();
    return end > c->started_ms ? (double)(end - c->started_ms) / 1000.0 : 0;
}

static const char *v_account_sid(const struct vcall *c)
{
    const char *sid = c->v->w->sc->twilio_account_sid;
    return sid ? sid : "AC00000000000000000000000000000000";
}

static json_t *call_json(const struct vcall *c)
{
    char buf[256];
    json_t *o = json_object();
    set_str(o, "id", c->id);
    set_str(o, "orgId", ORG_ID);
    set_str(o, "type", c->outbound ? "outboundPhoneCall" : "inboundPhoneCall");
    set_str(o, "status", status_name(c));
    if (c->st == V_ENDED)
        set_str(o, "endedReason", c->ended_reason);
    set_time(o, "createdAt", c->created_ms);
    set_time(o, "updatedAt", c->updated_ms);
    set_time(o, "startedAt", c->started_ms);
    set_time(o, "endedAt", c->ended_ms);
    json_object_set_new(o, "cost",
                        json_real(round(duration_s(c) / 60.0 * COST_PER_MINUTE * 1e4) / 1e4));
    set_str(o, "phoneCallProvider", "twilio");
    set_str(o, "phoneCallTransport", "pstn");
    if (c->outbound) {
        /* As a real outbound call's 201 shows it. */
        json_t *tr = json_object();
        set_str(tr, "conversationType", "voice");
        set_str(tr, "provider", "twilio");
        set_str(tr, "accountSid", v_account_sid(c));
        json_object_set_new(o, "transport", tr);
    } else {
        json_object_set_new(o, "phoneCallProviderBypassEnabled", json_true());
    }
    if (!c->blocked && !c->outbound) {
        json_t *d = json_object();
        snprintf(buf, sizeof(buf),
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream "
                 "url=\"" STREAM_PREFIX "%s" STREAM_SUFFIX "\"/></Connect></Response>",
                 c->id);
        set_str(d, "twiml", buf);
        json_object_set_new(o, "phoneCallProviderDetails", d);
    }
    set_str(o, "phoneCallProviderId", c->provider_id);
    set_str(o, "assistantId", c->assistant_id);
    set_str(o, "phoneNumberId", c->phone_number_id);
    json_t *cust = json_object();
    set_str(cust, "number", c->customer);
    json_object_set_new(o, "customer", cust);
    if (c->overrides)
        json_object_set(o, "assistantOverrides", c->overrides);
    json_t *mon = json_object();
    snprintf(buf, sizeof(buf), STREAM_PREFIX "%s/listen", c->id);
    set_str(mon, "listenUrl", buf);
    snprintf(buf, sizeof(buf), "https://sim.local/%s/control", c->id);
    set_str(mon, "controlUrl", buf);
    json_object_set_new(o, "monitor", mon);
    json_t *lim = json_object();
    json_object_set_new(lim, "concurrencyBlocked", json_boolean(c->blocked));
    json_object_set_new(lim, "concurrencyLimit", json_integer(c->limit_at_create));
    json_object_set_new(lim, "remainingConcurrentCalls", json_integer(c->remaining_at_create));
    json_object_set_new(o, "subscriptionLimits", lim);
    return o;
}

/* ---- server messages ---- */

static void on_hook_done(const struct sim_hook_result *res, void *arg, const char *type)
{
    struct sim_vapi *v = arg;
    char name[64];
    const char *what = res->dropped                                ? "dropped"
                       : res->error                                ? "failed"
                       : (res->status >= 200 && res->status < 300) ? "ok"
                                                                   : "rejected";
    snprintf(name, sizeof(name), "vapi.webhook.%s.%s", type, what);
    count(v, name);
}

static void on_status_done(const struct sim_hook_result *res, void *arg)
{
    on_hook_done(res, arg, "status-update");
}

static void on_report_done(const struct sim_hook_result *res, void *arg)
{
    on_hook_done(res, arg, "end-of-call-report");
}

static void on_hang_done(const struct sim_hook_result *res, void *arg)
{
    on_hook_done(res, arg, "hang");
}

static void on_control_done(const struct sim_hook_result *res, void *arg)
{
    on_hook_done(res, arg, "phone-call-control");
}

/* Wraps msg as {"message": msg} with the common members and posts it. */
static void post_message(struct vcall *c, json_t *msg, sim_hook_cb cb)
{
    struct sim_vapi *v = c->v;
    json_object_set_new(msg, "timestamp", json_integer((json_int_t)cg_wall_ms()));
    json_object_set_new(msg, "call", call_json(c));
    json_t *pn = json_object();
    set_str(pn, "id", c->phone_number_id);
    json_object_set_new(msg, "phoneNumber", pn);
    json_t *cust = json_object();
    set_str(cust, "number", c->customer);
    json_object_set_new(msg, "customer", cust);
    json_t *env = json_object();
    json_object_set_new(env, "message", msg);
    char *s = cg_json_dumps(env);
    json_decref(env);
    if (v->w->hooks)
        sim_hooks_vapi(v->w->hooks, c->server_url, s, &v->w->sc->vapi_hooks, cb, v);
    free(s);
}

static void send_status(struct vcall *c)
{
    json_t *m = json_object();
    set_str(m, "type", "status-update");
    set_str(m, "status", status_name(c));
    if (c->st == V_ENDED)
        set_str(m, "endedReason", c->ended_reason);
    post_message(c, m, on_status_done);
}

static void on_report_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct vcall *c = arg;
    double d = duration_s(c);
    json_t *m = json_object();
    set_str(m, "type", "end-of-call-report");
    set_str(m, "endedReason", c->ended_reason);
    set_time(m, "startedAt", c->started_ms);
    set_time(m, "endedAt", c->ended_ms);
    json_object_set_new(m, "durationMs", json_integer((json_int_t)llround(d * 1000)));
    json_object_set_new(m, "durationSeconds", json_real(d));
    json_object_set_new(m, "durationMinutes", json_real(round(d / 60.0 * 1e4) / 1e4));
    json_object_set_new(m, "cost", json_real(round(d / 60.0 * COST_PER_MINUTE * 1e4) / 1e4));
    set_str(m, "summary", "");
    set_str(m, "transcript", "");
    json_t *art = json_object();
    set_str(art, "transcript", "");
    json_object_set_new(art, "messages", json_array());
    json_object_set_new(m, "artifact", art);
    json_object_set_new(m, "analysis", json_object());
    post_message(c, m, on_report_done);
}

static void on_hang_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct vcall *c = arg;
    if (c->st != V_LIVE)
        return;
    json_t *m = json_object();
    set_str(m, "type", "hang");
    post_message(c, m, on_hang_done);
}

/* 1 when the call asked for phone-call-control in its serverMessages. */
static int wants_control(const struct vcall *c)
{
    const json_t *list = json_object_get(c->overrides, "serverMessages");
    size_t i;
    const json_t *e;
    json_array_foreach (list, i, e)
        if (json_is_string(e) && strcmp(json_string_value(e), "phone-call-control") == 0)
            return 1;
    return 0;
}

static json_t *number_dest(const char *number, const char *message)
{
    json_t *d = json_object();
    set_str(d, "type", "number");
    set_str(d, "number", number);
    if (message)
        set_str(d, "message", message);
    return d;
}

/* The assistant hands its caller on: Vapi leaves the forward or hang-up
 * to the server (ServerMessagePhoneCallControl). The request is drawn by
 * the scenario's weights; the report counts what was asked. */
static void on_control_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct vcall *c = arg;
    struct sim_world *w = c->v->w;
    const struct sim_transfers *t = &w->sc->transfers;
    if (c->st != V_LIVE)
        return;
    double wts[] = {t->w_number, t->w_sip, t->w_queue, t->w_hangup, t->w_refused, t->w_no_answer};
    static const char *const names[] = {"number", "sip", "queue", "hangup", "refused", "no_answer"};
    double sum = 0;
    for (size_t i = 0; i < 6; i++)
        sum += wts[i];
    double x = sim_rng_unit(w->rng) * sum;
    size_t k = 0;
    while (k < 5 && (x >= wts[k] || wts[k] <= 0)) {
        x -= wts[k];
        k++;
    }
    json_t *m = json_object();
    set_str(m, "type", "phone-call-control");
    set_str(m, "request", k == 3 ? "hang-up" : "forward");
    if (k == 0)
        json_object_set_new(m, "destination", number_dest(t->number, "Connecting you now."));
    else if (k == 2)
        json_object_set_new(m, "destination",
                            number_dest(t->queue_number, "Let me get you a specialist."));
    else if (k == 4)
        json_object_set_new(m, "destination", number_dest(t->invalid_number, NULL));
    else if (k == 5)
        json_object_set_new(m, "destination", number_dest(t->no_answer_number, NULL));
    if (k == 1) {
        json_t *d = json_object();
        set_str(d, "type", "sip");
        set_str(d, "sipUri", t->sip_uri);
        json_object_set_new(m, "destination", d);
    }
    c->control_reason = k == 3 ? "assistant-ended-call" : "assistant-forwarded-call";
    char name[64];
    snprintf(name, sizeof name, "transfers.requested.%s", names[k]);
    count(c->v, name);
    post_message(c, m, on_control_done);
}

/* ---- lifecycle ---- */

static void end_call(struct vcall *c, const char *reason)
{
    struct sim_vapi *v = c->v;
    if (c->st == V_ENDED)
        return;
    if (c->st == V_WAITING && !c->blocked)
        v->waiting_stream--;
    c->st = V_ENDED;
    c->ended_reason = reason;
    c->ended_ms = c->updated_ms = cg_wall_ms();
    if (c->timer)
        evtimer_del(c->timer);
    if (c->hang)
        evtimer_del(c->hang);
    if (c->control)
        evtimer_del(c->control);
    if (c->counted) {
        c->counted = 0;
        v->live--;
        if (v->w->report)
            sim_report_vapi_ended(v->w->report);
        if (v->w->rcheck)
            sim_rcheck_ended(v->w->rcheck, sim_now_s(v->w), c->route,
                             c->outbound ? SIM_RK_OUTBOUND : SIM_RK_INBOUND);
    }
    send_status(c);
    arm(c->report, v->w->sc->vapi_report_lag_s);
}

static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct vcall *c = arg;
    struct sim_vapi *v = c->v;
    switch (c->st) {
    case V_WAITING:
        if (c->blocked) {
            end_call(c, "call.start.error-subscription-concurrency-limit-reached");
        } else {
            if (v->w->report)
                sim_report_orphan(v->w->report);
            end_call(c, "phone-call-provider-bypass-enabled-but-no-call-received");
        }
        break;
    case V_DIALING:
        c->st = V_RINGING;
        c->updated_ms = cg_wall_ms();
        send_status(c);
        arm(c->timer, c->ring_s);
        break;
    case V_RINGING:
        if (c->answer != ANSWERS) {
            end_call(c, c->answer == BUSY ? "customer-busy" : "customer-did-not-answer");
            break;
        }
        c->st = V_LIVE;
        c->started_ms = c->updated_ms = cg_wall_ms();
        send_status(c);
        arm(c->timer, c->talk_s < c->max_duration_s ? c->talk_s : c->max_duration_s);
        break;
    case V_LIVE: {
        if (c->outbound) {
            end_call(c, c->talk_s < c->max_duration_s ? "customer-ended-call"
                                                      : "exceeded-max-duration");
            break;
        }
        end_call(c, "exceeded-max-duration");
        /* The caller is still on the line: Twilio's <Connect> finishes. */
        if (c->provider_id && v->w->stream_ended) {
            char *sid = cg_strdup(c->provider_id);
            v->w->stream_ended(v->w, sid);
            free(sid);
        }
        break;
    }
    case V_CLOSING:
        end_call(c, c->control_reason ? c->control_reason : "customer-ended-call");
        break;
    case V_ENDED:
        break;
    }
}

static void call_free(struct vcall *c)
{
    if (c->timer)
        event_free(c->timer);
    if (c->report)
        event_free(c->report);
    if (c->hang)
        event_free(c->hang);
    if (c->control)
        event_free(c->control);
    free(c->customer);
    free(c->assistant_id);
    free(c->phone_number_id);
    free(c->provider_id);
    free(c->meta_sid);
    free(c->server_url);
    json_decref(c->overrides);
    free(c);
}

static void unhash(struct sim_vapi *v, struct vcall *c)
{
    struct vcall **pp = &v->buckets[hash(c->id)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
}

/* Drops the oldest ended calls whose report has gone, to bound memory in
 * long `serve` sessions. */
static void prune(struct sim_vapi *v)
{
    size_t keep = 0;
    for (size_t i = 0; i < v->ncalls; i++) {
        struct vcall *c = v->calls[i];
        if (i < v->ncalls / 2 && c->st == V_ENDED &&
            !(c->report && evtimer_pending(c->report, NULL))) {
            unhash(v, c);
            call_free(c);
        } else {
            v->calls[keep++] = c;
        }
    }
    v->ncalls = keep;
}

static struct vcall *call_new(struct sim_vapi *v)
{
    if (v->ncalls >= MAX_KEEP)
        prune(v);
    struct vcall *c = cg_calloc(1, sizeof(*c));
    c->v = v;
    /* UUID-shaped (version 4 layout), from the run's generator. */
    char hex[33];
    do {
        sim_rng_hex(v->w->rng, hex, 32);
        snprintf(c->id, sizeof(c->id), "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8, hex + 13,
                 hex + 17, hex + 20);
    } while (find(v, c->id));
    c->timer = evtimer_new(v->w->base, on_call_timer, c);
    c->report = evtimer_new(v->w->base, on_report_timer, c);
    c->created_ms = c->updated_ms = cg_wall_ms();
    c->created_mono_ms = cg_mono_ms();
    unsigned b = hash(c->id);
    c->hnext = v->buckets[b];
    v->buckets[b] = c;
    if (v->ncalls == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->calls = cg_realloc(v->calls, v->cap * sizeof(*v->calls));
    }
    v->calls[v->ncalls++] = c;
    return c;
}

/* Web calls count against the limit like any call; over it, Vapi refuses
 * to start one. */
int sim_vapi_web_start(struct sim_world *w, int route)
{
    struct sim_vapi *v = w->vapi;
    if (!v)
        return -1;
    if (sim_vapi_live(w) >= (size_t)w->sc->vapi_limit) {
        count(v, "vapi.web.refused_overlimit");
        if (w->report)
            sim_report_vapi_rejected(w->report, 1);
        if (w->rcheck)
            sim_rcheck_refused(w->rcheck, sim_now_s(w), route, SIM_RK_SLOT);
        return -1;
    }
    v->live++;
    v->web_live++;
    if (sim_vapi_live(w) > v->peak)
        v->peak = sim_vapi_live(w);
    count(v, "vapi.web.started");
    return 0;
}

void sim_vapi_web_end(struct sim_world *w, int route)
{
    struct sim_vapi *v = w->vapi;
    if (!v || v->web_live == 0)
        return;
    (void)route;
    v->live--;
    v->web_live--;
}

int sim_vapi_outbound_state(const struct sim_world *w, const char *number)
{
    const struct sim_vapi *v = w->vapi;
    int state = 0;
    for (size_t i = 0; v && number && i < v->ncalls; i++) {
        const struct vcall *c = v->calls[i];
        if (c->outbound && !c->blocked && c->customer && strcmp(c->customer, number) == 0)
            state = c->st == V_ENDED ? (state ? state : 2) : 1;
    }
    return state;
}

size_t sim_vapi_live(const struct sim_world *w)
{
    size_t ext = w->sc ? (size_t)w->sc->vapi_external_calls : 0;
    return (w->vapi ? w->vapi->live : 0) + ext;
}

int sim_vapi_stream_connect(struct sim_world *w, const char *stream_url, const char *call_sid)
{
    struct sim_vapi *v = w->vapi;
    if (!v || !stream_url)
        return -1;
    size_t pl = strlen(STREAM_PREFIX), sl = strlen(STREAM_SUFFIX);
    size_t n = strlen(stream_url);
    char id[37];
    if (n != pl + 36 + sl || strncmp(stream_url, STREAM_PREFIX, pl) != 0 ||
        strcmp(stream_url + pl + 36, STREAM_SUFFIX) != 0) {
        count(v, "vapi.stream_bad_url");
        return -1;
    }
    memcpy(id, stream_url + pl, 36);
    id[36] = '\0';
    struct vcall *c = find(v, id);
    if (!c || c->st != V_WAITING || c->blocked) {
        count(v, c ? "vapi.stream_not_waiting" : "vapi.stream_unknown_call");
        return -1;
    }
    if (c->meta_sid && call_sid && strcmp(c->meta_sid, call_sid) != 0) {
        /* The gate put this Vapi call on another caller's line. */
        count(v, "vapi.stream_sid_mismatch");
        cg_log_warn("sim vapi stream on another call", "vapi_id=%s expected=%s got=%s", c->id,
                    c->meta_sid, call_sid);
    }
    v->waiting_stream--;
    c->st = V_LIVE;
    free(c->provider_id);
    c->provider_id = call_sid ? cg_strndup(call_sid, 64) : NULL;
    c->started_ms = c->updated_ms = cg_wall_ms();
    evtimer_del(c->timer);
    arm(c->timer, c->max_duration_s);
    send_status(c);
    if (sim_rng_chance(w->fault_rng, w->sc->vapi_hang_rate)) {
        c->hang = evtimer_new(w->base, on_hang_timer, c);
        arm(c->hang, HANG_AFTER_S);
    }
    if (w->sc->transfers.share > 0 && wants_control(c) &&
        sim_rng_chance(w->rng, w->sc->transfers.share)) {
        c->control = evtimer_new(w->base, on_control_timer, c);
        arm(c->control, w->sc->transfers.after_s);
    }
    return 0;
}

void sim_vapi_stream_closed(struct sim_world *w, const char *vapi_id)
{
    struct sim_vapi *v = w->vapi;
    if (!v || !vapi_id)
        return;
    struct vcall *c = find(v, vapi_id);
    if (!c || c->st != V_LIVE)
        return;
    c->st = V_CLOSING;
    evtimer_del(c->timer);
    arm(c->timer, w->sc->vapi_end_lag_s);
}

/* ---- POST /call ---- */

static char *copy_json_str(const json_t *root, const char *path, size_t max)
{
    const char *s = cg_json_str(root, path);
    return s ? cg_strndup(s, max) : NULL;
}

/* An outbound call: Vapi dials the customer, whose phone rings and is
 * answered, busy or not answered (dialer.customers), drawn from the
 * customers' own generator. The call counts from creation. */
static void dial(struct vcall *c)
{
    struct sim_vapi *v = c->v;
    const struct sim_customers_cfg *k = &v->w->sc->routes->dialer.customers;
    struct sim_rng *rng = v->cust_rng;
    double x = sim_rng_unit(rng);
    c->answer = x < k->answer ? ANSWERS : x < k->answer + k->busy ? BUSY : NO_ANSWER;
    double ring = k->ring_min_s + (k->ring_max_s - k->ring_min_s) * sim_rng_unit(rng);
    c->ring_s = c->answer == NO_ANSWER ? k->no_answer_s : ring;
    c->talk_s = k->talk_min_s + (k->talk_max_s - k->talk_min_s) * sim_rng_unit(rng);
    char hex[33];
    sim_rng_hex(rng, hex, 32);
    c->provider_id = cg_malloc(35);
    snprintf(c->provider_id, 35, "CA%s", hex);
    c->st = V_DIALING;
    count(v, "vapi.outbound.created");
    count(v, c->answer == ANSWERS ? "vapi.outbound.answers"
             : c->answer == BUSY  ? "vapi.outbound.busy"
                                  : "vapi.outbound.no_answer");
    arm(c->timer, k->dial_s);
}

static void create(struct sim_vapi *v, struct cg_http_req *req, const json_t *body,
                   int forced_overlimit)
{
    struct sim_world *w = v->w;
    const struct sim_scenario *sc = w->sc;
    size_t live = sim_vapi_live(w);
    int over = forced_overlimit || live >= (size_t)sc->vapi_limit;
    int outbound = sc->routes && sim_vapi_is_outbound(body);
    int route =
        w->rcheck ? sim_rcheck_route_of_phone(w->rcheck, cg_json_str(body, "phoneNumberId")) : -1;
    if (over && w->rcheck)
        sim_rcheck_refused(w->rcheck, sim_now_s(w), route,
                           outbound ? SIM_RK_OUTBOUND : SIM_RK_INBOUND);
    if (over && !sc->vapi_overlimit_blocked) {
        count(v, "vapi.rejected.overlimit_400");
        if (w->report)
            sim_report_vapi_rejected(w->report, 1);
        reply_error(req, 400, json_string("Over Concurrency Limit."), "Bad Request");
        return;
    }
    struct vcall *c = call_new(v);
    c->outbound = outbound;
    c->route = route;
    c->customer = copy_json_str(body, "customer.number", 64);
    c->assistant_id = copy_json_str(body, "assistantId", 256);
    c->phone_number_id = copy_json_str(body, "phoneNumberId", 256);
    json_t *ov = json_object_get(body, "assistantOverrides");
    if (ov)
        c->overrides = json_deep_copy(ov);
    c->meta_sid = copy_json_str(body, "assistantOverrides.metadata.twilioCallSid", 64);
    double md = 0;
    c->max_duration_s = cg_json_num(body, "assistantOverrides.maxDurationSeconds", &md) == 0
                            ? md
                            : sc->vapi_max_duration_s;
    const char *surl = cg_json_str(body, "assistantOverrides.server.url");
    if (surl && strlen(surl) < MAX_URL) {
        count(v, "vapi.server_url_override");
        c->server_url = cg_strdup(surl);
    } else {
        const char *pub = w->hooks ? sim_hooks_public_url(w->hooks) : "";
        size_t n = strlen(pub) + sizeof("/call-ended");
        c->server_url = cg_malloc(n);
        snprintf(c->server_url, n, "%s/call-ended", pub);
    }
    c->limit_at_create = sc->vapi_limit;
    c->st = V_WAITING;
    if (over) {
        /* "blocked" mode: a 201 that admits nothing, then an ended call. */
        c->blocked = 1;
        c->remaining_at_create = 0;
        count(v, "vapi.rejected.overlimit_blocked");
        if (w->report)
            sim_report_vapi_rejected(w->report, 1);
        arm(c->timer, sc->vapi_end_lag_s);
    } else {
        c->counted = 1;
        if (!outbound)
            v->waiting_stream++;
        v->live++;
        v->created++;
        size_t now_live = sim_vapi_live(w);
        if (now_live > v->peak)
            v->peak = now_live;
        c->remaining_at_create = (long)sc->vapi_limit - (long)now_live;
        int callback = !outbound && sim_cb_vapi_created(w, c->meta_sid);
        if (w->report) {
            if (callback)
                sim_report_callback_created(w->report);
            else
                sim_report_vapi_created(w->report);
        }
        if (w->rcheck)
            sim_rcheck_started(w->rcheck, sim_now_s(w), route,
                               outbound ? SIM_RK_OUTBOUND : SIM_RK_INBOUND, c->meta_sid,
                               c->assistant_id);
        if (outbound)
            dial(c);
        else
            arm(c->timer, sc->vapi_no_stream_timeout_s);
    }
    reply(req, 201, call_json(c));
}

static void process_post(struct sim_vapi *v, struct cg_http_req *req, const struct pending *f)
{
    struct sim_world *w = v->w;
    if (f->f429) {
        count(v, "vapi.rejected.429");
        if (w->report)
            sim_report_vapi_rejected(w->report, 0);
        if (f->retry_after)
            cg_http_set_header(req, "Retry-After", "1");
        reply_error(req, 429, json_string("Too Many Requests"), "Too Many Requests");
        return;
    }
    size_t len = 0;
    const char *raw = cg_http_req_body(req, &len);
    const char *ct = cg_http_req_header(req, "Content-Type");
    json_t *body;
    if (ct && strncasecmp(ct, "application/json", 16) == 0) {
        char err[160];
        body = cg_json_parse(raw, len, CG_JSON_MAX_DEPTH, err, sizeof(err));
        if (!body || !json_is_object(body)) {
            char m[200];
            snprintf(m, sizeof(m), "Invalid JSON body: %s", body ? "not an object" : err);
            json_decref(body);
            count(v, "vapi.rejected.400_json");
            if (w->report)
                sim_report_vapi_rejected(w->report, 0);
            reply_error(req, 400, json_string(m), "Bad Request");
            return;
        }
    } else {
        /* Express parses no other body type: the DTO sees nothing. */
        body = json_object();
    }
    json_t *msgs = json_array();
    sim_vapi_validate(body, w->sc->routes != NULL, msgs);
    if (json_array_size(msgs) > 0) {
        count(v, "vapi.rejected.400_validation");
        if (w->report)
            sim_report_vapi_rejected(w->report, 0);
        reply_error(req, 400, msgs, "Bad Request");
        json_decref(body);
        return;
    }
    json_decref(msgs);
    if (f->f500) {
        count(v, "vapi.rejected.500");
        if (w->report)
            sim_report_vapi_rejected(w->report, 0);
        reply_error(req, 500, json_string("Internal server error"), NULL);
    } else {
        create(v, req, body, f->foverlimit);
    }
    json_decref(body);
}

static void pending_unlink(struct pending *p)
{
    cg_list_remove(&p->link);
}

static void on_latency(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    pending_unlink(p);
    process_post(p->v, p->req, p);
    event_free(p->timer);
    free(p);
}

static void handle_post(struct sim_vapi *v, struct cg_http_req *req)
{
    struct sim_world *w = v->w;
    const struct sim_scenario *sc = w->sc;
    count(v, "vapi.post_call");
    if (!authorized(v, req)) {
        count(v, "vapi.rejected.401");
        if (w->report)
            sim_report_vapi_rejected(w->report, 0);
        return;
    }
    /* Always the same draws in the same order. */
    struct sim_rng *rng = w->fault_rng;
    struct pending f = {0};
    double latency = sim_rng_draw(rng, &sc->vapi_latency);
    f.f429 = sim_rng_chance(rng, sc->vapi_rate_429);
    f.retry_after = sim_rng_chance(rng, 0.5);
    f.f500 = sim_rng_chance(rng, sc->vapi_rate_500);
    f.foverlimit = sim_rng_chance(rng, sc->vapi_rate_overlimit);
    if (latency > 0) {
        struct pending *p = cg_malloc(sizeof(*p));
        *p = f;
        p->v = v;
        p->req = req;
        p->timer = evtimer_new(w->base, on_latency, p);
        if (p->timer) {
            cg_list_push_front(&v->pending, &p->link);
            arm(p->timer, latency);
            return;
        }
        free(p);
    }
    process_post(v, req, &f);
}

/* ---- GET /call, GET /call/{id} ---- */

static int visible(const struct sim_vapi *v, const struct vcall *c)
{
    double lag_ms = v->w->sc->vapi_visibility_lag_s * 1000.0;
    return (double)(cg_mono_ms() - c->created_mono_ms) >= lag_ms;
}

static void handle_get_one(struct sim_vapi *v, struct cg_http_req *req)
{
    count(v, "vapi.get_call");
    if (!authorized(v, req))
        return;
    const char *id = cg_http_req_path_rest(req);
    struct vcall *c = id && strlen(id) == 36 ? find(v, id) : NULL;
    if (!c || !visible(v, c)) {
        reply_error(req, 404, json_string("Not Found"), NULL);
        return;
    }
    reply(req, 200, call_json(c));
}

static int digits(const char *s, int n, int *out)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153LL * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* ISO 8601: YYYY-MM-DD[THH:MM[:SS[.fff...]]][Z|+HH:MM|-HH:MM|+HHMM]. */
static int parse_iso(const char *s, long long *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    size_t n = strlen(s);
    if (n < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    const char *p = s + 10;
    long long offset_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (strlen(p) < 5 || digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &mi))
            return -1;
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec))
                return -1;
            p += 3;
            if (*p == '.') {
                p++;
                int nd = 0;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 3)
                        frac = frac * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (nd == 0)
                    return -1;
                for (; nd < 3; nd++)
                    frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (digits(p, 2, &oh))
                return -1;
            p += 2;
            if (*p == ':')
                p++;
            if (digits(p, 2, &om))
                return -1;
            p += 2;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0')
        return -1;
    long long secs =
        days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec - offset_min * 60;
    *ms = secs * 1000 + frac;
    return 0;
}

struct filter {
    const char *id, *assistant_id, *phone_number_id;
    long long c_gt, c_lt, c_ge, c_le, u_gt, u_lt, u_ge, u_le; /* LLONG_MIN/MAX: none */
    long limit;
};

static int matches(const struct filter *f, const struct vcall *c)
{
    long long cr = (long long)c->created_ms, up = (long long)c->updated_ms;
    if (f->id && strcmp(f->id, c->id) != 0)
        return 0;
    if (f->assistant_id && (!c->assistant_id || strcmp(f->assistant_id, c->assistant_id) != 0))
        return 0;
    if (f->phone_number_id &&
        (!c->phone_number_id || strcmp(f->phone_number_id, c->phone_number_id) != 0))
        return 0;
    return cr > f->c_gt && cr < f->c_lt && cr >= f->c_ge && cr <= f->c_le && up > f->u_gt &&
           up < f->u_lt && up >= f->u_ge && up <= f->u_le;
}

static void handle_list(struct sim_vapi *v, struct cg_http_req *req)
{
    count(v, "vapi.list_calls");
    if (!authorized(v, req))
        return;
    const struct cg_form *q = cg_http_req_query(req);
    if (!q) {
        reply_error(req, 400, json_string("Malformed query string"), "Bad Request");
        return;
    }
    static const char *const dates[] = {"createdAtGt", "createdAtLt", "createdAtGe", "createdAtLe",
                                        "updatedAtGt", "updatedAtLt", "updatedAtGe", "updatedAtLe"};
    struct filter f = {.limit = 100};
    long long *slots[] = {&f.c_gt, &f.c_lt, &f.c_ge, &f.c_le, &f.u_gt, &f.u_lt, &f.u_ge, &f.u_le};
    const long long lo = -(1LL << 62), hi = 1LL << 62;
    f.c_gt = f.c_ge = f.u_gt = f.u_ge = lo;
    f.c_lt = f.c_le = f.u_lt = f.u_le = hi;
    json_t *msgs = json_array();
    for (size_t i = 0; i < q->n; i++) {
        const char *k = q->pairs[i].key, *val = q->pairs[i].value;
        char m[200];
        int known = 0;
        for (size_t j = 0; j < sizeof(dates) / sizeof(dates[0]); j++) {
            if (strcmp(k, dates[j]) == 0) {
                known = 1;
                if (parse_iso(val, slots[j]) != 0) {
                    snprintf(m, sizeof(m), "%s must be a valid ISO 8601 date string", k);
                    json_array_append_new(msgs, json_string(m));
                }
            }
        }
        if (known)
            continue;
        if (strcmp(k, "limit") == 0) {
            char *end = NULL;
            double lim = strtod(val, &end);
            if (!val[0] || !end || *end || !(lim >= 0 && lim <= 1000)) {
                json_array_append_new(
                    msgs, json_string(lim > 1000 ? "limit must not be greater than 1000"
                                                 : "limit must be a number between 0 and 1000"));
            } else {
                f.limit = (long)lim;
            }
        } else if (strcmp(k, "id") == 0) {
            f.id = val;
        } else if (strcmp(k, "assistantId") == 0) {
            f.assistant_id = val;
        } else if (strcmp(k, "phoneNumberId") == 0) {
            f.phone_number_id = val;
        } else {
            snprintf(m, sizeof(m), "property %.100s should not exist", k);
            json_array_append_new(msgs, json_string(m));
        }
    }
    if (json_array_size(msgs) > 0) {
        reply_error(req, 400, msgs, "Bad Request");
        return;
    }
    json_decref(msgs);
    json_t *arr = json_array();
    /* Newest first. */
    for (size_t i = v->ncalls; i > 0 && (long)json_array_size(arr) < f.limit; i--) {
        const struct vcall *c = v->calls[i - 1];
        if (visible(v, c) && matches(&f, c))
            json_array_append_new(arr, call_json(c));
    }
    reply(req, 200, arr);
}

/* ---- GET /assistant/{id}, GET /phone-number/{id} (scenario
 * "accounts.vapi"), read by `callgate doctor` ---- */

/* The scenario's URL: NULL is the default under the public URL. */
static char *account_url(const struct sim_vapi *v, const char *given, const char *path)
{
    if (given)
        return cg_strdup(given);
    const char *pub = v->w->hooks ? sim_hooks_public_url(v->w->hooks) : "";
    size_t n = strlen(pub) + strlen(path) + 1;
    char *u = cg_malloc(n);
    snprintf(u, n, "%s%s", pub, path);
    return u;
}

/* The date the account's resources were made: when the simulator started. */
static void set_account_dates(const struct sim_vapi *v, json_t *o)
{
    set_time(o, "createdAt", v->created_ms);
    set_time(o, "updatedAt", v->created_ms);
}

/* The route (scenario routes) whose assistant (phone number) id this is,
 * or -1: each route's resources exist in the account too. */
static int route_resource(const struct sim_vapi *v, const char *id, int phone)
{
    const struct sim_routes_cfg *rs = v->w->sc->routes;
    for (size_t i = 0; rs && id && i < rs->n; i++)
        if (strcmp(id, phone ? rs->r[i].phone_number_id : rs->r[i].assistant_id) == 0)
            return (int)i;
    return -1;
}

/* Assistant (OpenAPI "Assistant"): the required members and what the gate
 * depends on, server.url and serverMessages. */
static void handle_assistant(struct sim_vapi *v, struct cg_http_req *req)
{
    count(v, "vapi.get_assistant");
    if (!authorized(v, req))
        return;
    const struct sim_accounts *a = &v->w->sc->acc;
    const char *id = cg_http_req_path_rest(req);
    int route = route_resource(v, id, 0);
    if (!id || (strcmp(id, a->assistant_id) != 0 && route < 0)) {
        reply_error(req, 404, json_string("Not Found"), NULL);
        return;
    }
    json_t *o = json_object();
    set_str(o, "id", id);
    set_str(o, "orgId", ORG_ID);
    set_str(o, "name", a->assistant_name);
    if (a->server_messages_mode >= 0) {
        static const char *const dflt[] = {"conversation-update",
                                           "end-of-call-report",
                                           "function-call",
                                           "hang",
                                           "speech-update",
                                           "status-update",
                                           "tool-calls",
                                           "transfer-destination-request",
                                           "handoff-destination-request",
                                           "user-interrupted",
                                           "assistant.started"};
        json_t *arr = json_array();
        if (a->server_messages_mode == 0)
            for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
                json_array_append_new(arr, json_string(dflt[i]));
        else
            for (size_t i = 0; i < a->nserver_messages; i++)
                json_array_append_new(arr, json_string(a->server_messages[i]));
        json_object_set_new(o, "serverMessages", arr);
    }
    char *url = account_url(v, a->assistant_server_url, "/call-ended");
    if (url[0]) {
        json_t *server = json_object();
        set_str(server, "url", url);
        json_object_set_new(server, "timeoutSeconds", json_integer(20));
        json_object_set_new(o, "server", server);
    }
    free(url);
    set_account_dates(v, o);
    reply(req, 200, o);
}

/* TwilioPhoneNumber (OpenAPI): provider "twilio" and its required members. */
static void handle_phone_number(struct sim_vapi *v, struct cg_http_req *req)
{
    count(v, "vapi.get_phone_number");
    if (!authorized(v, req))
        return;
    const struct sim_accounts *a = &v->w->sc->acc;
    const char *id = cg_http_req_path_rest(req);
    int route = route_resource(v, id, 1);
    if (!id || (strcmp(id, a->phone_number_id) != 0 && route < 0)) {
        reply_error(req, 404, json_string("Not Found"), NULL);
        return;
    }
    const char *number = route >= 0        ? v->w->sc->routes->r[route].numbers[0]
                         : a->phone_number ? a->phone_number
                         : a->nnumbers > 0 ? a->numbers[0].phone_number
                                           : "+15550100000";
    json_t *o = json_object();
    set_str(o, "provider", "twilio");
    set_str(o, "id", id);
    set_str(o, "orgId", ORG_ID);
    set_account_dates(v, o);
    set_str(o, "status", "active");
    set_str(o, "name", "callgate-sim number");
    if (a->phone_assistant_id && a->phone_assistant_id[0])
        set_str(o, "assistantId", a->phone_assistant_id);
    set_str(o, "number", number);
    set_str(o, "twilioAccountSid", v->w->sc->twilio_account_sid);
    reply(req, 200, o);
}

static void unavailable(struct cg_http_req *req, void *arg)
{
    (void)arg;
    reply_error(req, 503, json_string("Service Unavailable"), "Service Unavailable");
}

/* Either route, by path: also serves requests an outage held. */
static void serve(struct cg_http_req *req, void *arg)
{
    struct sim_vapi *v = arg;
    const char *path = cg_http_req_path(req);
    if (strncmp(path, "/call/", 6) == 0)
        handle_get_one(v, req);
    else if (strncmp(path, "/assistant/", 11) == 0)
        handle_assistant(v, req);
    else if (strncmp(path, "/phone-number/", 14) == 0)
        handle_phone_number(v, req);
    else if (cg_http_req_method(req) == CG_HTTP_POST)
        handle_post(v, req);
    else
        handle_list(v, req);
}

static void on_call(struct cg_http_req *req, void *arg)
{
    struct sim_vapi *v = arg;
    /* Unreachable: not counted, authenticated or drawn for faults. */
    if (sim_outage_take(v->outage, req))
        return;
    serve(req, v);
}

/* ---- lifetime ---- */

struct sim_vapi *sim_vapi_new(struct sim_world *w)
{
    struct sim_vapi *v = cg_calloc(1, sizeof(*v));
    v->w = w;
    cg_list_init(&v->pending);
    v->created_ms = cg_wall_ms();
    v->cust_rng = sim_rng_new(w->sc->seed ^ 0xca11ULL);
    if (cg_httpd_route(w->httpd, "/call", CG_HTTP_GET | CG_HTTP_POST, on_call, v) != 0 ||
        cg_httpd_route(w->httpd, "/call/*", CG_HTTP_GET, on_call, v) != 0 ||
        cg_httpd_route(w->httpd, "/assistant/*", CG_HTTP_GET, on_call, v) != 0 ||
        cg_httpd_route(w->httpd, "/phone-number/*", CG_HTTP_GET, on_call, v) != 0) {
        sim_rng_free(v->cust_rng);
        free(v);
        return NULL;
    }
    if (w->sc->vapi_outages.n > 0)
        v->outage = sim_outage_hold_new(w, "vapi", &w->sc->vapi_outages, unavailable, serve, v);
    return v;
}

void sim_vapi_free(struct sim_vapi *v)
{
    if (!v)
        return;
    sim_outage_hold_free(v->outage);
    struct cg_list *it;
    while ((it = cg_list_first(&v->pending)) != NULL) {
        struct pending *p = cg_list_entry(it, struct pending, link);
        cg_list_remove(it);
        event_free(p->timer);
        free(p);
    }
    for (size_t i = 0; i < v->ncalls; i++)
        call_free(v->calls[i]);
    free(v->calls);
    sim_rng_free(v->cust_rng);
    free(v);
}

size_t sim_vapi_peak(const struct sim_vapi *v)
{
    return v->peak;
}

size_t sim_vapi_created(const struct sim_vapi *v)
{
    return v->created;
}

size_t sim_vapi_waiting_stream(const struct sim_vapi *v)
{
    return v->waiting_stream;
}
