/*
 * gate.c - the admission engine: admit, create the Vapi call, push its TwiML
 * to Twilio, and every failure path; end signals; the lease sweep; and the
 * reconciliation with Twilio's queue members. The HTTP handlers that feed it
 * are in gate_http.c.
 */
#include "base/fmacros.h"

#include "base/err.h"
#include "gate/gate.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/config.h"
#include "gate/internal.h"
#include "net/httpd.h"
#include "gate/keys.h"
#include "base/log.h"
#include "gate/lua_scripts.h"
#include "base/metrics.h"
#include "net/periodic.h"
#include "twilio/api.h"
#include "twilio/twiml.h"
#include "vapi/api.h"

/* Most callers admitted by one admit step; larger bursts take several. */
#define ADMIT_BATCH 64
/* Expired leases looked at per sweep run. */
#define SWEEP_BATCH 50
/* How long a sweep claims an entry it is checking. */
#define SWEEP_CLAIM_MS 10000
/* Tries of the Twilio update while Twilio says the call is not in
 * progress yet (its Enqueue TwiML has not run), 250 ms apart. */
#define TWILIO_NOT_READY_TRIES    8
#define TWILIO_NOT_READY_DELAY_MS 250
/* Smoothing of the observed slot-hold time for wait estimates: the mean of
 * the first 33 holds, then an EWMA remembering about as many (end.lua).
 * Call lengths vary (a coefficient of variation cv of 0.5 to 1), so an
 * EWMA with alpha 0.2 (about 5 calls) is off by cv/3, 17-33%, and every
 * estimate with it; 0.03 brings that to cv/8, 6-12%, and still follows a
 * change of the call mix: 33 calls are 10 minutes on 10 slots with
 * 3-minute calls. On the accuracy scenarios of bench/run.sh (and a model
 * of them over 40 seeds) 0.01 to 0.03 do alike, 0.05 and above worse. */
#define SERVICE_EWMA_ALPHA "0.03"
/* A waiting caller missing from Twilio's queue this long is checked. */
#define GHOST_AGE_MS 60000
/* Twilio lookups per reconciliation run. */
#define RECONCILE_BATCH 50

/* ---- script arguments ---- */

void gate_args_init(struct gate_args *a, const struct cg_gate *g)
{
    a->n = 0;
    gate_args_str(a, g->keys->waiting);
    gate_args_str(a, g->keys->prefix);
}

void gate_args_str(struct gate_args *a, const char *s)
{
    if (a->n < GATE_MAX_ARGS)
        a->v[a->n++] = s ? s : "";
}

void gate_args_int(struct gate_args *a, long long v)
{
    if (a->n >= GATE_MAX_ARGS)
        return;
    snprintf(a->num[a->n], sizeof a->num[0], "%lld", v);
    a->v[a->n] = a->num[a->n];
    a->n++;
}

int gate_eval(struct cg_gate *g, enum gate_script s, struct gate_args *a, cg_redis_cb cb, void *arg)
{
    if (g->closing)
        return -1;
    return cg_redis_eval(g->redis, g->scripts[s], 1, a->n, a->v, NULL, cb, arg);
}

/* ---- reply helpers ---- */

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

void gate_reply_twiml(struct cg_http_req *req, char *twiml)
{
    cg_http_reply(req, 200, "text/xml", twiml, strlen(twiml));
    free(twiml);
}

char *gate_enqueue_twiml(const struct cg_gate *g)
{
    return cg_twiml_enqueue(g->cfg->public_url, g->cfg->twilio_queue_name);
}

char *gate_overflow_twiml(const struct cg_gate *g)
{
    const struct cg_config *c = g->cfg;
    switch (c->overflow_action) {
    case CG_OVERFLOW_DIAL:
        return cg_twiml_dial(c->overflow_message, c->overflow_dial_number);
    case CG_OVERFLOW_VOICEMAIL:
        return cg_twiml_record(c->overflow_message, NULL, 120);
    case CG_OVERFLOW_MESSAGE:
    default:
        return cg_twiml_say_hangup(c->overflow_message);
    }
}

/* ---- admissions in flight ---- */

static struct admission *adm_new(struct cg_gate *g, const char *sid, const char *from, int attempt)
{
    struct admission *a = cg_calloc(1, sizeof *a);
    a->g = g;
    snprintf(a->sid, sizeof a->sid, "%s", sid);
    a->from = cg_strdup(from ? from : "");
    a->attempt = attempt;
    a->started_us = cg_mono_us();
    a->next = g->admissions;
    if (g->admissions)
        g->admissions->prev = a;
    g->admissions = a;
    g->nadmissions++;
    return a;
}

static void adm_free(struct admission *a)
{
    struct cg_gate *g = a->g;
    if (a->prev)
        a->prev->next = a->next;
    else
        g->admissions = a->next;
    if (a->next)
        a->next->prev = a->prev;
    g->nadmissions--;
    if (a->timer)
        event_free(a->timer);
    if (a->fast_req) {
        /* Never leave Twilio's webhook unanswered: the caller waits in the
         * queue instead. */
        gate_reply_twiml(a->fast_req, gate_enqueue_twiml(g));
    }
    free(a->from);
    free(a->vapi_id);
    free(a->twiml);
    free(a);
}

static void metric_inc(struct cg_gate *g, const char *name, const char *key, const char *value)
{
    if (g->metrics == NULL)
        return;
    if (key == NULL) {
        cg_metrics_inc(g->metrics, name, NULL, 1);
        return;
    }
    struct cg_buf b;
    cg_buf_init(&b, 256);
    cg_metrics_label(&b, key, value);
    cg_metrics_inc(g->metrics, name, cg_buf_str(&b), 1);
    cg_buf_free(&b);
}

/* Full-jitter backoff after consecutive failures, at least what the peer
 * asked for with Retry-After. A single failure is retried at once: one
 * 500 among successes says nothing about the next request, and pausing
 * the whole gate for it leaves slots idle while callers wait. */
static long backoff_ms(struct cg_gate *g, double retry_after_s)
{
    if (g->fails <= 1 && !(retry_after_s > 0))
        return 0;
    unsigned attempt = g->fails > 1 ? g->fails - 1 : 0;
    return cg_backoff_ms(g->cfg->admission_backoff_min_ms, g->cfg->admission_backoff_max_ms,
                         attempt, retry_after_s);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gate_admit(arg);
}

static void schedule_retry(struct cg_gate *g, long delay_ms)
{
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000 + 5000};
    evtimer_add(g->retry_timer, &tv);
}

/* ---- requeue ---- */

struct requeue_ctx {
    struct admission *a;
    long backoff;
};

static void push_overflow(struct admission *a);

static void on_requeued(const redisReply *r, const char *err, void *arg)
{
    struct requeue_ctx *rc = arg;
    struct admission *a = rc->a;
    struct cg_gate *g = a->g;
    const char *verdict = err ? NULL : rstr(r, 0);
    if (verdict == NULL) {
        /* The admission lease will expire and the sweep requeues the caller. */
        cg_log_error("requeue failed; the lease sweep will recover the caller", "sid=%s error=%s",
                     a->sid, err ? err : "bad reply");
    } else {
        cg_log_info("admission requeued", "sid=%s verdict=%s backoff_ms=%ld", a->sid, verdict,
                    rc->backoff);
        metric_inc(g, "callgate_requeues_total", "verdict", verdict);
    }
    if (rc->backoff > 0)
        schedule_retry(g, rc->backoff);
    else if (verdict && strcmp(verdict, "stale") != 0)
        /* requeued, abandoned and overflow all freed the caller's slot. */
        gate_admit(g);
    free(rc);
    if (verdict && strcmp(verdict, "overflow") == 0) {
        push_overflow(a);
        return;
    }
    adm_free(a);
}

/* Puts the caller back at the head of the queue. overlimit lowers the
 * effective limit; permanent counts toward MAX_ADMISSION_ATTEMPTS; an
 * orphan Vapi call keeps its slot until Vapi ends it. */
static void requeue(struct admission *a, const char *reason, int overlimit, int permanent,
                    double retry_after_s, const char *orphan_vapi_id)
{
    struct cg_gate *g = a->g;
    /* A caller hanging up says nothing about Vapi or Twilio: only real
     * failures lengthen the backoff. */
    if (strcmp(reason, "caller-gone") != 0)
        g->fails++;
    struct requeue_ctx *rc = cg_malloc(sizeof *rc);
    rc->a = a;
    rc->backoff = backoff_ms(g, retry_after_s);
    struct gate_args args;
    gate_args_init(&args, g);
    gate_args_str(&args, a->sid);
    gate_args_int(&args, a->attempt);
    gate_args_str(&args, reason);
    gate_args_int(&args, overlimit);
    gate_args_int(&args, rc->backoff);
    gate_args_int(&args, g->cfg->max_concurrency);
    gate_args_str(&args, orphan_vapi_id ? orphan_vapi_id : "");
    gate_args_int(&args, (long long)g->cfg->orphan_hold_seconds * 1000);
    gate_args_int(&args, (long long)g->cfg->overlimit_hold_seconds * 1000);
    gate_args_int(&args, permanent);
    gate_args_int(&args, g->cfg->max_admission_attempts);
    if (a->fast_req) {
        /* The caller has not heard anything yet: into the queue they go. */
        gate_reply_twiml(a->fast_req, gate_enqueue_twiml(g));
        a->fast_req = NULL;
    }
    if (gate_eval(g, S_REQUEUE, &args, on_requeued, rc) != 0)
        on_requeued(NULL, "eval refused", rc);
}

/* ---- overflow pushed to a caller whom Vapi refuses for good ---- */

static void on_overflow_pushed(const struct cg_twilio_result *res, void *arg)
{
    struct admission *a = arg;
    if (res->outcome != CG_TW_OK)
        cg_log_warn("overflow TwiML not delivered", "sid=%s code=%d", a->sid, res->code);
    else
        metric_inc(a->g, "callgate_callers_total", "outcome", "overflowed");
    adm_free(a);
}

static void push_overflow(struct admission *a)
{
    char *twiml = gate_overflow_twiml(a->g);
    if (cg_twilio_update_call_twiml(a->g->twilio, a->sid, twiml, on_overflow_pushed, a) != 0) {
        cg_log_error("cannot push overflow TwiML", "sid=%s", a->sid);
        adm_free(a);
    }
    free(twiml);
}

/* ---- connected ---- */

static void on_connected(const redisReply *r, const char *err, void *arg)
{
    struct admission *a = arg;
    struct cg_gate *g = a->g;
    const char *verdict = err ? NULL : rstr(r, 0);
    if (verdict && strcmp(verdict, "connected") == 0) {
        g->fails = 0;
        double wait_s = (double)rint_at(r, 1, 0) / 1000.0;
        if (g->metrics) {
            cg_metrics_observe(g->metrics, "callgate_wait_seconds", NULL, wait_s);
            if (a->slot_freed_us)
                cg_metrics_observe(g->metrics, "callgate_refill_latency_seconds", NULL,
                                   (double)(cg_mono_us() - a->slot_freed_us) / 1e6);
        }
        metric_inc(g, "callgate_callers_total", "outcome", "connected");
        cg_log_info("caller connected", "sid=%s vapi=%s wait_s=%f attempt=%d", a->sid, a->vapi_id,
                    wait_s, a->attempt);
    } else {
        cg_log_warn("connected step did not apply", "sid=%s verdict=%s error=%s", a->sid,
                    verdict ? verdict : "", err ? err : "");
    }
    adm_free(a);
}

static void mark_connected(struct admission *a)
{
    struct cg_gate *g = a->g;
    struct gate_args args;
    gate_args_init(&args, g);
    gate_args_str(&args, a->sid);
    gate_args_int(&args, a->attempt);
    gate_args_int(&args, (long long)g->cfg->lease_seconds * 1000);
    gate_args_int(&args, g->cfg->end_grace_ms);
    if (gate_eval(g, S_CONNECTED, &args, on_connected, a) != 0)
        on_connected(NULL, "eval refused", a);
}

/* ---- the caller vanished during admission ---- */

static void on_vanished_marked(const char *verdict, void *arg)
{
    struct admission *a = arg;
    (void)verdict;
    /* The caller is now 'gone': requeue turns that into an abandon and
     * keeps the orphan Vapi call's slot. */
    requeue(a, "caller-gone", 0, 0, 0, a->vapi_id);
}

static void caller_vanished(struct admission *a)
{
    cg_log_info("caller gone before the assistant answered", "sid=%s vapi=%s", a->sid, a->vapi_id);
    metric_inc(a->g, "callgate_callers_total", "outcome", "abandoned");
    gate_end(a->g, "twilio", a->sid, "gone-during-admission", "twilio-api", on_vanished_marked, a);
}

/* ---- pushing the TwiML to Twilio ---- */

static void push_twiml(struct admission *a);

static void on_retry_push(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    push_twiml(arg);
}

static void on_call_fetched(const struct cg_twilio_result *res, void *arg)
{
    struct admission *a = arg;
    const char *st = res->outcome == CG_TW_OK ? res->call_status : NULL;
    int live = st && (strcmp(st, "queued") == 0 || strcmp(st, "ringing") == 0 ||
                      strcmp(st, "in-progress") == 0);
    if (live && a->twilio_tries < TWILIO_NOT_READY_TRIES) {
        /* Twilio has not started the Enqueue yet; the update will be
         * accepted in a moment. A fast-path admission still has its
         * (spent) deadline timer, whose callback would do nothing. */
        if (a->timer != NULL && event_get_callback(a->timer) != on_retry_push) {
            event_free(a->timer);
            a->timer = NULL;
        }
        if (a->timer == NULL)
            a->timer = evtimer_new(a->g->base, on_retry_push, a);
        struct timeval tv = {.tv_usec = TWILIO_NOT_READY_DELAY_MS * 1000};
        evtimer_add(a->timer, &tv);
        return;
    }
    if (live) {
        requeue(a, "twilio-not-ready", 0, 0, 0, a->vapi_id);
        return;
    }
    caller_vanished(a);
}

static void on_twiml_pushed(const struct cg_twilio_result *res, void *arg)
{
    struct admission *a = arg;
    struct cg_gate *g = a->g;
    a->twilio_tries++;
    switch (res->outcome) {
    case CG_TW_OK:
        mark_connected(a);
        return;
    case CG_TW_GONE:
        metric_inc(g, "callgate_twilio_errors_total", "code",
                   res->code == 21220 ? "21220" : "20404");
        if (res->code == 20404) {
            caller_vanished(a);
            return;
        }
        /* 21220 also answers a call that is not in progress yet: ask. */
        if (cg_twilio_fetch_call(g->twilio, a->sid, on_call_fetched, a) != 0)
            caller_vanished(a);
        return;
    case CG_TW_CANCELLED:
        adm_free(a);
        return;
    case CG_TW_RETRY:
    case CG_TW_FATAL:
    default: {
        char code[16];
        snprintf(code, sizeof code, "%d", res->code ? res->code : (int)res->http_status);
        metric_inc(g, "callgate_twilio_errors_total", "code", code);
        cg_log_warn("twilio update failed; caller requeued", "sid=%s status=%ld code=%d msg=%s",
                    a->sid, res->http_status, res->code, res->message ? res->message : "");
        requeue(a, "twilio-error", 0, 0, 0, a->vapi_id);
        return;
    }
    }
}

static void push_twiml(struct admission *a)
{
    if (cg_twilio_update_call_twiml(a->g->twilio_push, a->sid, a->twiml, on_twiml_pushed, a) != 0) {
        cg_log_error("cannot send the twilio update", "sid=%s", a->sid);
        requeue(a, "twilio-error", 0, 0, 0, a->vapi_id);
    }
}

/* ---- Vapi call created ---- */

static void on_vapi_recorded(const redisReply *r, const char *err, void *arg)
{
    struct admission *a = arg;
    const char *verdict = err ? NULL : rstr(r, 0);
    if (verdict == NULL) {
        /* Without the record the Vapi call could not be released by its id;
         * treat it as an orphan so its slot stays held until Vapi ends it. */
        requeue(a, "redis-error", 0, 0, 0, a->vapi_id);
        return;
    }
    if (strcmp(verdict, "orphan") == 0) {
        /* The caller hung up while Vapi answered. */
        if (a->fast_req) {
            gate_reply_twiml(a->fast_req, cg_twiml_empty());
            a->fast_req = NULL;
        }
        adm_free(a);
        return;
    }
    if (a->fast_req) {
        /* Fast path: the webhook is still open, so answer it with the
         * assistant's TwiML, unchanged. */
        cg_http_reply(a->fast_req, 200, "text/xml", a->twiml, strlen(a->twiml));
        a->fast_req = NULL;
        if (a->timer)
            evtimer_del(a->timer);
        mark_connected(a);
        return;
    }
    push_twiml(a);
}

static void on_vapi_created(const struct cg_vapi_create_result *res, void *arg)
{
    struct admission *a = arg;
    struct cg_gate *g = a->g;
    char code[16];
    snprintf(code, sizeof code, "%ld", res->http_status);
    switch (res->outcome) {
    case CG_VAPI_CREATED: {
        a->vapi_id = cg_strdup(res->call_id);
        a->twiml = cg_strdup(res->twiml);
        struct gate_args args;
        gate_args_init(&args, g);
        gate_args_str(&args, a->sid);
        gate_args_int(&args, a->attempt);
        gate_args_str(&args, a->vapi_id);
        gate_args_int(&args, (long long)g->cfg->orphan_hold_seconds * 1000);
        if (gate_eval(g, S_VAPI_CREATED, &args, on_vapi_recorded, a) != 0)
            on_vapi_recorded(NULL, "eval refused", a);
        return;
    }
    case CG_VAPI_OVERLIMIT:
        metric_inc(g, "callgate_vapi_errors_total", "code", "overlimit");
        cg_log_warn("vapi is over its concurrency limit; lowering the admission cap",
                    "sid=%s status=%ld remaining=%ld", a->sid, res->http_status, res->remaining);
        requeue(a, "vapi-overlimit", 1, 0, res->retry_after_s, NULL);
        return;
    case CG_VAPI_REJECTED:
        metric_inc(g, "callgate_vapi_errors_total", "code", code);
        cg_log_warn("vapi refused the call", "sid=%s status=%ld msg=%s", a->sid, res->http_status,
                    res->message ? res->message : "");
        requeue(a, "vapi-rejected", 0, 1, res->retry_after_s, NULL);
        return;
    case CG_VAPI_AUTH:
        metric_inc(g, "callgate_vapi_errors_total", "code", code);
        cg_log_error("vapi refused our credentials; check VAPI_API_KEY", "status=%ld",
                     res->http_status);
        requeue(a, "vapi-auth", 0, 0, res->retry_after_s, NULL);
        return;
    case CG_VAPI_CANCELLED:
        adm_free(a);
        return;
    case CG_VAPI_RETRY:
    default:
        metric_inc(g, "callgate_vapi_errors_total", "code", res->http_status ? code : "transport");
        cg_log_warn("vapi request failed; caller requeued", "sid=%s status=%ld msg=%s", a->sid,
                    res->http_status, res->message ? res->message : "");
        requeue(a, "vapi-error", 0, 0, res->retry_after_s, NULL);
        return;
    }
}

static void start_admission(struct admission *a)
{
    metric_inc(a->g, "callgate_admissions_total", NULL, NULL);
    if (cg_vapi_create_call(a->g->vapi, a->sid, a->from, a->attempt, on_vapi_created, a) != 0) {
        cg_log_error("cannot send the vapi request", "sid=%s", a->sid);
        requeue(a, "vapi-error", 0, 0, 0, NULL);
    }
}

void gate_start_admissions(struct cg_gate *g, const redisReply *r, size_t first,
                           uint64_t slot_freed_us)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = first; i + 2 < r->elements; i += 3) {
        const char *sid = rstr(r, i);
        const char *from = rstr(r, i + 1);
        long long attempt = rint_at(r, i + 2, 0);
        if (sid == NULL || from == NULL || attempt <= 0)
            continue;
        struct admission *a = adm_new(g, sid, from, (int)attempt);
        a->slot_freed_us = slot_freed_us;
        start_admission(a);
    }
}

/* ---- fast path ---- */

static void on_fast_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct admission *a = arg;
    if (a->fast_req == NULL)
        return;
    /* Vapi is slow: hold the caller in the queue meanwhile; the TwiML will
     * be pushed with a Calls update when it comes. */
    cg_log_info("fast path deadline passed; caller enqueued", "sid=%s", a->sid);
    gate_reply_twiml(a->fast_req, gate_enqueue_twiml(a->g));
    a->fast_req = NULL;
}

void gate_start_fast(struct cg_gate *g, struct cg_http_req *req, const char *sid, const char *from)
{
    struct admission *a = adm_new(g, sid, from, 1);
    a->fast_req = req;
    a->timer = evtimer_new(g->base, on_fast_deadline, a);
    int ms = g->cfg->fast_path_deadline_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (a->timer)
        evtimer_add(a->timer, &tv);
    start_admission(a);
}

/* ---- the admit step ---- */

static void on_admitted(const redisReply *r, const char *err, void *arg)
{
    struct cg_gate *g = arg;
    g->admit_running = 0;
    if (err == NULL)
        gate_start_admissions(g, r, 0, 0);
    if (g->admit_again) {
        g->admit_again = 0;
        gate_admit(g);
    }
}

void gate_admit(struct cg_gate *g)
{
    if (g->stopping || g->closing || cg_redis_state(g->redis) != CG_REDIS_READY)
        return;
    if (g->admit_running) {
        g->admit_again = 1;
        return;
    }
    struct gate_args args;
    gate_args_init(&args, g);
    gate_args_int(&args, g->cfg->max_concurrency);
    gate_args_int(&args, ADMIT_BATCH);
    gate_args_int(&args, (long long)g->cfg->admission_lease_seconds * 1000);
    gate_args_str(&args, g->cfg->instance_id);
    g->admit_running = 1;
    if (gate_eval(g, S_ADMIT, &args, on_admitted, g) != 0)
        g->admit_running = 0;
}

/* ---- end signals ---- */

struct end_ctx {
    struct cg_gate *g;
    gate_end_cb done;
    void *arg;
    uint64_t at_us;
    char signal[24];
};

static void on_end(const redisReply *r, const char *err, void *arg)
{
    struct end_ctx *e = arg;
    struct cg_gate *g = e->g;
    const char *verdict = err ? NULL : rstr(r, 0);
    if (verdict) {
        if (strcmp(verdict, "released") == 0 || strcmp(verdict, "released-orphan") == 0)
            metric_inc(g, "callgate_releases_total", "signal", e->signal);
        if (strcmp(verdict, "abandoned") == 0)
            metric_inc(g, "callgate_callers_total", "outcome", "abandoned");
        if (!g->stopping)
            gate_start_admissions(g, r, 3, e->at_us);
    } else {
        cg_log_warn("end signal not applied", "signal=%s error=%s", e->signal,
                    err ? err : "bad reply");
    }
    if (e->done)
        e->done(verdict, e->arg);
    free(e);
}

void gate_end(struct cg_gate *g, const char *kind, const char *id, const char *reason,
              const char *signal, gate_end_cb done, void *arg)
{
    struct end_ctx *e = cg_calloc(1, sizeof *e);
    e->g = g;
    e->done = done;
    e->arg = arg;
    e->at_us = cg_mono_us();
    snprintf(e->signal, sizeof e->signal, "%s", signal);
    struct gate_args args;
    gate_args_init(&args, g);
    gate_args_str(&args, kind);
    gate_args_str(&args, id);
    gate_args_str(&args, reason ? reason : "");
    gate_args_int(&args, g->cfg->end_grace_ms);
    gate_args_int(&args, g->cfg->max_concurrency);
    gate_args_int(&args, g->stopping ? 0 : ADMIT_BATCH);
    gate_args_int(&args, (long long)g->cfg->admission_lease_seconds * 1000);
    gate_args_str(&args, g->cfg->instance_id);
    gate_args_str(&args, SERVICE_EWMA_ALPHA);
    gate_args_str(&args, signal);
    gate_args_int(&args, (long long)g->cfg->orphan_hold_seconds * 1000);
    if (gate_eval(g, S_END, &args, on_end, e) != 0)
        on_end(NULL, "eval refused", e);
}

/* ---- lease sweep ---- */

struct check {
    struct cg_gate *g;
    char member[96];
    char state[16];
    char vapi_id[96];
    long long connected_at;
    long long attempt;
};

static void check_done(struct check *c)
{
    c->g->checks--;
    free(c);
}

static void on_extended(const redisReply *r, const char *err, void *arg)
{
    (void)r;
    if (err)
        cg_log_warn("lease not renewed; the next sweep asks again", "member=%s error=%s",
                    (const char *)arg, err);
    free(arg);
}

static void extend(struct cg_gate *g, const char *member, long long ms)
{
    struct gate_args args;
    gate_args_init(&args, g);
    gate_args_str(&args, member);
    gate_args_int(&args, ms);
    char *m = cg_strdup(member);
    if (gate_eval(g, S_EXTEND, &args, on_extended, m) != 0)
        free(m);
}

static void on_check_end(const char *verdict, void *arg)
{
    struct check *c = arg;
    cg_log_info("lease sweep released a slot", "member=%s state=%s verdict=%s", c->member, c->state,
                verdict ? verdict : "error");
    check_done(c);
}

static void on_vapi_checked(const struct cg_vapi_get_result *res, void *arg)
{
    struct check *c = arg;
    struct cg_gate *g = c->g;
    if (res->state == CG_VAPI_CALL_ENDED) {
        gate_end(g, "vapi", c->vapi_id, res->ended_reason ? res->ended_reason : "ended", "vapi-get",
                 on_check_end, c);
        return;
    }
    if (res->state == CG_VAPI_CALL_LIVE) {
        long long ms = strcmp(c->state, "connected") == 0 ? (long long)g->cfg->lease_seconds * 1000
                       : strcmp(c->state, "ending") == 0
                           ? g->cfg->end_grace_ms
                           : (long long)g->cfg->orphan_hold_seconds * 1000;
        extend(g, c->member, ms);
        check_done(c);
        return;
    }
    /* Not found or unavailable: Vapi cannot confirm either way. A call
     * Vapi no longer knows after its grace is treated as over once it is
     * past any length Vapi allows; until then it is asked again later. */
    long long hard = c->connected_at + ((long long)g->cfg->vapi_max_duration_seconds + 60) * 1000;
    int ending = strcmp(c->state, "ending") == 0 || strcmp(c->state, "orphan") == 0;
    if ((res->state == CG_VAPI_CALL_NOT_FOUND && ending) ||
        (c->connected_at > 0 && (long long)cg_wall_ms() > hard)) {
        gate_end(g, "lease", c->member, "vapi-unconfirmed", "lease", on_check_end, c);
        return;
    }
    check_done(c);
}

static void on_admission_connected(const redisReply *r, const char *err, void *arg)
{
    struct check *c = arg;
    const char *verdict = err ? NULL : rstr(r, 0);
    cg_log_info("admission lease expired on a caller already talking; marked connected",
                "sid=%s verdict=%s", c->member, verdict ? verdict : "error");
    check_done(c);
}

/* An admission whose lease ran out: its owner died, or a Redis blip lost
 * the connected step. If Vapi says the call is in progress the caller is
 * talking to the assistant, and requeueing them would cut them off. */
static void on_admission_checked(const struct cg_vapi_get_result *res, void *arg)
{
    struct check *c = arg;
    struct cg_gate *g = c->g;
    if (res->state == CG_VAPI_CALL_LIVE && res->status && strcmp(res->status, "in-progress") == 0 &&
        strcmp(c->state, "admitting") == 0) {
        struct gate_args args;
        gate_args_init(&args, g);
        gate_args_str(&args, c->member);
        gate_args_int(&args, c->attempt);
        gate_args_int(&args, (long long)g->cfg->lease_seconds * 1000);
        gate_args_int(&args, g->cfg->end_grace_ms);
        if (gate_eval(g, S_CONNECTED, &args, on_admission_connected, c) != 0)
            check_done(c);
        return;
    }
    gate_end(g, "expire-admission", c->member, "admission-lease-expired", "lease", on_check_end, c);
}

static void check_entry(struct cg_gate *g, const char *member, const char *state,
                        const char *vapi_id, long long connected_at, long long attempt)
{
    struct check *c = cg_calloc(1, sizeof *c);
    c->g = g;
    snprintf(c->member, sizeof c->member, "%s", member);
    snprintf(c->state, sizeof c->state, "%s", state);
    snprintf(c->vapi_id, sizeof c->vapi_id, "%s", vapi_id ? vapi_id : "");
    c->connected_at = connected_at;
    c->attempt = attempt;
    g->checks++;
    if (strcmp(state, "admitting") == 0 || strcmp(state, "gone") == 0) {
        /* The admission's owner did not finish in time. */
        if (c->vapi_id[0] != '\0' &&
            cg_vapi_get_call(g->vapi, c->vapi_id, on_admission_checked, c) == 0)
            return;
        gate_end(g, "expire-admission", member, "admission-lease-expired", "lease", on_check_end,
                 c);
        return;
    }
    if (c->vapi_id[0] == '\0') {
        gate_end(g, "lease", member, "lease-expired", "lease", on_check_end, c);
        return;
    }
    if (cg_vapi_get_call(g->vapi, c->vapi_id, on_vapi_checked, c) != 0)
        check_done(c);
}

static void on_swept(const redisReply *r, const char *err, void *arg)
{
    struct cg_gate *g = arg;
    g->sweep_running = 0;
    if (err || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 5 < r->elements; i += 6) {
        const char *member = rstr(r, i);
        const char *state = rstr(r, i + 1);
        const char *vid = rstr(r, i + 2);
        if (member == NULL || state == NULL)
            continue;
        check_entry(g, member, state, vid, rint_at(r, i + 3, 0), rint_at(r, i + 5, 0));
    }
}

static void on_sweep_tick(void *arg)
{
    struct cg_gate *g = arg;
    if (g->closing || cg_redis_state(g->redis) != CG_REDIS_READY)
        return;
    /* A safety run of admission: every other trigger is an event, and an
     * event can be lost (a process killed between two steps). */
    gate_admit(g);
    if (g->sweep_running)
        return;
    struct gate_args args;
    gate_args_init(&args, g);
    gate_args_int(&args, SWEEP_BATCH);
    gate_args_int(&args, SWEEP_CLAIM_MS);
    g->sweep_running = 1;
    if (gate_eval(g, S_SWEEP, &args, on_swept, g) != 0)
        g->sweep_running = 0;
}

/* ---- reconciliation with Twilio's queue ---- */

struct ghost {
    struct cg_gate *g;
    char sid[40];
    int adopt; /* 1: in Twilio's queue but not ours; 0: ours but not Twilio's */
    long wait_s;
};

static void on_adopted(const redisReply *r, const char *err, void *arg)
{
    struct ghost *gh = arg;
    const char *verdict = err ? NULL : rstr(r, 0);
    if (verdict && strcmp(verdict, "waiting") == 0)
        cg_log_info("adopted a caller from twilio's queue", "sid=%s wait_s=%ld", gh->sid,
                    gh->wait_s);
    gh->g->checks--;
    free(gh);
}

static void on_ghost_fetched(const struct cg_twilio_result *res, void *arg)
{
    struct ghost *gh = arg;
    struct cg_gate *g = gh->g;
    if (gh->adopt) {
        if (res->outcome == CG_TW_OK) {
            struct gate_args args;
            gate_args_init(&args, g);
            gate_args_str(&args, gh->sid);
            gate_args_str(&args, res->from ? res->from : "");
            gate_args_str(&args, res->to ? res->to : "");
            gate_args_str(&args, "adopt");
            gate_args_int(&args, g->cfg->max_queue_size);
            gate_args_int(&args, g->cfg->max_concurrency);
            gate_args_int(&args, 0);
            gate_args_int(&args, (long long)g->cfg->admission_lease_seconds * 1000);
            gate_args_str(&args, g->cfg->instance_id);
            gate_args_int(&args, (long long)gh->wait_s * 1000);
            if (gate_eval(g, S_ENTER, &args, on_adopted, gh) == 0)
                return;
        }
    } else {
        const char *st = res->call_status;
        int over = res->outcome == CG_TW_GONE ||
                   (res->outcome == CG_TW_OK && st &&
                    (strcmp(st, "completed") == 0 || strcmp(st, "canceled") == 0 ||
                     strcmp(st, "failed") == 0 || strcmp(st, "busy") == 0 ||
                     strcmp(st, "no-answer") == 0));
        if (over) {
            cg_log_info("dropping a caller twilio no longer holds", "sid=%s", gh->sid);
            gate_end(g, "twilio", gh->sid, "reconcile", "reconcile", NULL, NULL);
        }
    }
    g->checks--;
    free(gh);
}

static void ghost_check(struct cg_gate *g, const char *sid, int adopt, long wait_s)
{
    struct ghost *gh = cg_calloc(1, sizeof *gh);
    gh->g = g;
    snprintf(gh->sid, sizeof gh->sid, "%s", sid);
    gh->adopt = adopt;
    gh->wait_s = wait_s;
    g->checks++;
    if (cg_twilio_fetch_call(g->twilio, sid, on_ghost_fetched, gh) != 0) {
        g->checks--;
        free(gh);
    }
}

struct reconcile {
    struct cg_gate *g;
    struct cg_twilio_member *members;
    size_t n;
};

static int sid_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if sid is in sorted (n strings in strcmp order). */
static int sid_in(const char *sid, const char **sorted, size_t n)
{
    return n > 0 && bsearch(&sid, sorted, n, sizeof *sorted, sid_cmp) != NULL;
}

static void on_ours(const redisReply *r, const char *err, void *arg)
{
    struct reconcile *rc = arg;
    struct cg_gate *g = rc->g;
    g->reconcile_running = 0;
    if (err == NULL && r->type == REDIS_REPLY_ARRAY) {
        /* Both sides sorted once: the comparison costs n log n, not
         * waiting x members (5,000 each would be millions of comparisons
         * on the loop). The walks below keep each side's own order, so
         * the batch takes the front of the queue first. */
        size_t nours = r->elements / 2, nm = rc->n;
        const char **ours = cg_calloc(nours ? nours : 1, sizeof *ours);
        const char **theirs = cg_calloc(nm ? nm : 1, sizeof *theirs);
        size_t k = 0;
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            if (rstr(r, i) != NULL)
                ours[k++] = rstr(r, i);
        nours = k;
        for (size_t m = 0; m < nm; m++)
            theirs[m] = rc->members[m].call_sid;
        qsort(ours, nours, sizeof *ours, sid_cmp);
        qsort(theirs, nm, sizeof *theirs, sid_cmp);

        int budget = RECONCILE_BATCH;
        long long now = (long long)cg_wall_ms();
        /* Ours but not in Twilio's queue for a while: a ghost. */
        for (size_t i = 0; i + 1 < r->elements && budget > 0; i += 2) {
            const char *sid = rstr(r, i);
            long long enq = rint_at(r, i + 1, now);
            if (sid && !sid_in(sid, theirs, nm) && now - enq > GHOST_AGE_MS) {
                ghost_check(g, sid, 0, 0);
                budget--;
            }
        }
        /* In Twilio's queue but not waiting here: adopt (a no-op for callers
         * being admitted, whose record exists). */
        for (size_t m = 0; m < nm && budget > 0; m++) {
            if (!sid_in(rc->members[m].call_sid, ours, nours)) {
                ghost_check(g, rc->members[m].call_sid, 1, rc->members[m].wait_time_s);
                budget--;
            }
        }
        free(ours);
        free(theirs);
    }
    free(rc->members);
    free(rc);
}

static void on_members(const struct cg_twilio_result *res, void *arg)
{
    struct cg_gate *g = arg;
    if (res->outcome != CG_TW_OK || g->closing || cg_redis_state(g->redis) != CG_REDIS_READY) {
        g->reconcile_running = 0;
        return;
    }
    struct reconcile *rc = cg_calloc(1, sizeof *rc);
    rc->g = g;
    rc->n = res->nmembers;
    rc->members = cg_calloc(rc->n ? rc->n : 1, sizeof *rc->members);
    if (rc->n)
        memcpy(rc->members, res->members, rc->n * sizeof *rc->members);
    struct gate_args args;
    gate_args_init(&args, g);
    if (gate_eval(g, S_MEMBERS, &args, on_ours, rc) != 0) {
        g->reconcile_running = 0;
        free(rc->members);
        free(rc);
    }
}

static void on_queue_found(const struct cg_twilio_result *res, void *arg)
{
    struct cg_gate *g = arg;
    g->reconcile_running = 0;
    if (res->outcome == CG_TW_OK && res->queue_sid) {
        g->queue_sid = cg_strdup(res->queue_sid);
        cg_log_info("found the twilio queue", "name=%s sid=%s", g->cfg->twilio_queue_name,
                    g->queue_sid);
        cg_periodic_kick(g->reconcile_task);
    }
}

static void on_reconcile_tick(void *arg)
{
    struct cg_gate *g = arg;
    if (g->reconcile_running || g->stopping || g->closing ||
        cg_redis_state(g->redis) != CG_REDIS_READY || g->cfg->twilio_account_sid[0] == '\0')
        return;
    g->reconcile_running = 1;
    int rc = g->queue_sid
                 ? cg_twilio_list_members(g->twilio, g->queue_sid, on_members, g)
                 : cg_twilio_find_queue(g->twilio, g->cfg->twilio_queue_name, on_queue_found, g);
    if (rc != 0)
        g->reconcile_running = 0;
}

/* ---- lifecycle ---- */

void cg_gate_redis_state(struct cg_gate *g, enum cg_redis_state state)
{
    if (state != CG_REDIS_READY || g->stopping || g->closing)
        return;
    /* Back from an outage: callers may have arrived meanwhile (answered
     * with Enqueue and no record) and slots may have freed. */
    cg_periodic_kick(g->sweep_task);
    cg_periodic_kick(g->reconcile_task);
}

void cg_gate_stop(struct cg_gate *g)
{
    g->stopping = 1;
}

void cg_gate_detach(struct cg_gate *g)
{
    g->stopping = 1;
    g->closing = 1;
}

size_t cg_gate_inflight(const struct cg_gate *g)
{
    return g->nadmissions + g->checks;
}

static void declare_metrics(struct cg_metrics *m)
{
    static const double wait_buckets[] = {1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600};
    static const double refill_buckets[] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,  0.5,   1,    2.5,   5};
    cg_metrics_declare(m, "callgate_callers_total", CG_COUNTER,
                       "Callers by outcome, as seen by this instance.", NULL, 0);
    cg_metrics_declare(m, "callgate_admissions_total", CG_COUNTER,
                       "Admission attempts started by this instance.", NULL, 0);
    cg_metrics_declare(m, "callgate_requeues_total", CG_COUNTER,
                       "Failed admission attempts, by what became of the caller.", NULL, 0);
    cg_metrics_declare(m, "callgate_releases_total", CG_COUNTER,
                       "Slots released, by the signal that released them.", NULL, 0);
    cg_metrics_declare(m, "callgate_twilio_errors_total", CG_COUNTER,
                       "Twilio API errors, by Twilio error code or HTTP status.", NULL, 0);
    cg_metrics_declare(m, "callgate_vapi_errors_total", CG_COUNTER,
                       "Vapi API errors, by HTTP status.", NULL, 0);
    cg_metrics_declare(m, "callgate_wait_seconds", CG_HISTOGRAM,
                       "Time from entering the queue to being connected.", wait_buckets,
                       sizeof wait_buckets / sizeof wait_buckets[0]);
    cg_metrics_declare(m, "callgate_refill_latency_seconds", CG_HISTOGRAM,
                       "Time from a slot's release to the next caller's connection.",
                       refill_buckets, sizeof refill_buckets / sizeof refill_buckets[0]);
}

int cg_gate_missing_config(const struct cg_config *cfg, char *out, size_t outlen)
{
    const struct {
        const char *name;
        const char *value;
    } need[] = {
        {"TWILIO_ACCOUNT_SID", cfg->twilio_account_sid},
        {"TWILIO_AUTH_TOKEN", cfg->twilio_auth_token},
        {"VAPI_API_KEY", cfg->vapi_api_key},
        {"VAPI_PHONE_NUMBER_ID", cfg->vapi_phone_number_id},
        {"VAPI_ASSISTANT_ID", cfg->vapi_assistant_id},
        /* Either form of webhook authentication will do. */
        {"VAPI_WEBHOOK_SECRET", cfg->vapi_webhook_hmac_secret[0] != '\0'
                                    ? cfg->vapi_webhook_hmac_secret
                                    : cfg->vapi_webhook_secret},
    };
    int n = 0;
    size_t used = 0;
    if (outlen)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (need[i].value != NULL && need[i].value[0] != '\0')
            continue;
        int w = snprintf(out + used, outlen > used ? outlen - used : 0, "%s%s", n ? ", " : "",
                         need[i].name);
        if (w > 0 && used + (size_t)w < outlen)
            used += (size_t)w;
        n++;
    }
    return n;
}

struct cg_gate *cg_gate_new(const struct cg_gate_deps *d, char *err, size_t errlen)
{
    struct cg_gate *g = cg_calloc(1, sizeof *g);
    g->base = d->base;
    g->cfg = d->cfg;
    g->keys = d->keys;
    g->redis = d->redis;
    g->httpd = d->httpd;
    g->metrics = d->metrics;
    g->waittime = d->waittime;
    const struct cg_config *c = d->cfg;

    static const struct {
        enum gate_script id;
        const char *name;
        const char *src;
    } scripts[] = {
        {S_ENTER, "enter", cg_lua_enter},
        {S_ADMIT, "admit", cg_lua_admit},
        {S_VAPI_CREATED, "vapi_created", cg_lua_vapi_created},
        {S_CONNECTED, "connected", cg_lua_connected},
        {S_REQUEUE, "requeue", cg_lua_requeue},
        {S_END, "end", cg_lua_end},
        {S_POSITION, "position", cg_lua_position},
        {S_SWEEP, "sweep", cg_lua_sweep},
        {S_EXTEND, "extend", cg_lua_extend},
        {S_SNAPSHOT, "snapshot", cg_lua_snapshot},
        {S_MEMBERS, "members", cg_lua_members},
    };
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        g->scripts[scripts[i].id] = cg_redis_script(g->redis, scripts[i].name, scripts[i].src);
        if (g->scripts[scripts[i].id] < 0) {
            cg_err_set(err, errlen, "cannot register script %s", scripts[i].name);
            goto fail;
        }
    }

    struct cg_twilio_opts to = {
        .base_url = c->twilio_api_base_url,
        .account_sid = c->twilio_account_sid,
        .auth_token = c->twilio_auth_token,
        .timeout_ms = c->twilio_timeout_ms,
    };
    struct cg_vapi_opts vo = {
        .base_url = c->vapi_base_url,
        .api_key = c->vapi_api_key,
        .phone_number_id = c->vapi_phone_number_id,
        .assistant_id = c->vapi_assistant_id,
        .max_duration_s = c->vapi_max_duration_seconds,
        .timeout_ms = c->vapi_timeout_ms,
    };
    g->twilio = cg_twilio_new(d->base, d->httpc, &to);
    /* The assistant's TwiML is not pushed again after a timeout or a
     * connection lost mid-request. Twilio may have applied the first (the
     * TwiML would restart: the stream the first opened closes and Vapi ends
     * its call), and a retry sent into an outage lands only once it is
     * over, after Vapi stopped waiting for the stream: either way the caller
     * is connected to a call that is gone, and hangs up. Such a push instead
     * requeues the caller with the Vapi call held as an orphan, and the next
     * attempt brings a fresh Vapi call. (429 and 5xx, answered at once, are
     * retried as before.) */
    struct cg_twilio_opts po = to;
    po.no_transport_retry = 1;
    g->twilio_push = cg_twilio_new(d->base, d->httpc, &po);
    g->vapi = cg_vapi_new(d->httpc, &vo);
    if (g->twilio == NULL || g->twilio_push == NULL || g->vapi == NULL) {
        cg_err_set(err, errlen, "cannot create the Twilio and Vapi clients");
        goto fail;
    }
    if (c->twilio_queue_sid[0] != '\0')
        g->queue_sid = cg_strdup(c->twilio_queue_sid);
    if (g->metrics)
        declare_metrics(g->metrics);

    g->retry_timer = evtimer_new(d->base, on_retry_timer, g);
    g->sweep_task = cg_periodic_new(d->base, "sweep", c->sweep_interval_ms, 10, on_sweep_tick, g);
    g->reconcile_task = cg_periodic_new(d->base, "reconcile", c->reconcile_interval_seconds * 1000,
                                        10, on_reconcile_tick, g);
    if (g->retry_timer == NULL || g->sweep_task == NULL || g->reconcile_task == NULL) {
        cg_err_set(err, errlen, "cannot create the gate's timers");
        goto fail;
    }
    if (gate_http_register(g) != 0) {
        cg_err_set(err, errlen, "cannot register the gate's routes");
        goto fail;
    }
    return g;
fail:
    cg_gate_free(g);
    return NULL;
}

void cg_gate_free(struct cg_gate *g)
{
    if (g == NULL)
        return;
    cg_gate_detach(g);
    /* Cancelling the clients completes every admission's pending request
     * (with CANCELLED), which frees the admission. */
    cg_vapi_free(g->vapi);
    g->vapi = NULL;
    cg_twilio_free(g->twilio);
    g->twilio = NULL;
    cg_twilio_free(g->twilio_push);
    g->twilio_push = NULL;
    while (g->admissions)
        adm_free(g->admissions);
    cg_periodic_free(g->sweep_task);
    cg_periodic_free(g->reconcile_task);
    if (g->retry_timer)
        event_free(g->retry_timer);
    free(g->queue_sid);
    free(g);
}
