/*
 * engine.c - the admission engine: arrivals, admit, create the Vapi call,
 * push its TwiML to Twilio, and every failure path; end signals. It knows
 * no HTTP: the endpoints that feed it (endpoints.c) pass callbacks for the
 * answers they owe. The gate's life cycle and figures are gate.c, the
 * lease sweep sweep.c, the reconciliation with Twilio's queue reconcile.c.
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
#include "base/list.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/endprobe.h"
#include "gate/callback_dial.h"
#include "gate/internal.h"
#include "gate/keys.h"
#include "gate/outbound.h"
#include "gate/routes.h"
#include "gate/store.h"
#include "twilio/api.h"
#include "twilio/twiml.h"
#include "vapi/api.h"

/* Most callers admitted by one admit step; larger bursts take several. */
#define ADMIT_BATCH 64
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

int gate_redis_ready(const struct cg_gate *g)
{
    return !g->closing && cg_redis_state(g->redis) == CG_REDIS_READY;
}

char *gate_enqueue_twiml(const struct cg_gate *g)
{
    return cg_twiml_enqueue(g->cfg->public_url, g->cfg->twilio_queue_name);
}

/* Enqueue into the route's own Twilio queue (TWILIO_QUEUE_NAME without
 * routes). */
static char *enqueue_route(const struct cg_gate *g, const struct cg_route *rt)
{
    return cg_twiml_enqueue(g->cfg->public_url, gate_route_queue(g->cfg, rt));
}

char *gate_overflow_twiml(const struct cg_gate *g)
{
    return gate_overflow_twiml_for(g->cfg);
}

/* ---- what the APIs said of the credentials ---- */

void gate_note_api(struct cg_gate *g, int api, long http_status)
{
    if (http_status == 401 || http_status == 403)
        g->auth_refused_ms[api] = cg_mono_ms();
    else if ((http_status >= 200 && http_status < 300) ||
             (http_status >= 400 && http_status < 500 && http_status != 429))
        /* Answered past the authentication: the credentials work. */
        g->auth_accepted_ms[api] = cg_mono_ms();
}

static int auth_refused(const struct cg_gate *g, int api, uint64_t now)
{
    uint64_t at = g->auth_refused_ms[api];
    return at != 0 && now - at < CG_GATE_AUTH_RECENT_MS && at >= g->auth_accepted_ms[api];
}

const char *cg_gate_auth_problem(const struct cg_gate *g)
{
    uint64_t now = cg_mono_ms();
    int vapi = auth_refused(g, GATE_API_VAPI, now), twilio = auth_refused(g, GATE_API_TWILIO, now);
    if (vapi && twilio)
        return "vapi and twilio refused the credentials: check VAPI_API_KEY, TWILIO_ACCOUNT_SID "
               "and TWILIO_AUTH_TOKEN";
    if (vapi)
        return "vapi refused the credentials: check VAPI_API_KEY";
    if (twilio)
        return "twilio refused the credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN";
    return NULL;
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
    cg_list_push_front(&g->admissions, &a->link);
    g->nadmissions++;
    return a;
}

/* Answers the fast path's webhook, once. */
static void answer_fast(struct admission *a, char *twiml)
{
    gate_answer_cb answer = a->answer;
    a->answer = NULL;
    if (a->fast_deadline)
        evtimer_del(a->fast_deadline);
    answer(twiml, a->answer_arg);
}

static void adm_free(struct admission *a)
{
    struct cg_gate *g = a->g;
    cg_list_remove(&a->link);
    g->nadmissions--;
    if (a->answer) {
        /* Never leave Twilio's webhook unanswered: the caller waits in the
         * queue instead. */
        answer_fast(a, enqueue_route(g, a->route));
    }
    if (a->fast_deadline)
        event_free(a->fast_deadline);
    if (a->push_retry)
        event_free(a->push_retry);
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

static void on_requeued(const struct gate_reply *rep, void *arg)
{
    struct requeue_ctx *rc = arg;
    struct admission *a = rc->a;
    struct cg_gate *g = a->g;
    enum gate_verdict verdict = rep->verdict;
    if (verdict == GV_NONE) {
        /* The admission lease will expire and the sweep requeues the caller. */
        cg_log_error("requeue failed; the lease sweep will recover the caller", "sid=%s error=%s",
                     a->sid, rep->err ? rep->err : "bad reply");
    } else {
        cg_log_info("admission requeued", "sid=%s verdict=%s backoff_ms=%ld", a->sid,
                    gate_verdict_name(verdict), rc->backoff);
        if (verdict == GV_OVERFLOW)
            cg_log_info("caller overflowed", "sid=%s reason=%s attempts=%d", a->sid,
                        "admission-refused", a->attempt);
        else if (verdict == GV_ABANDONED)
            cg_log_info("caller abandoned", "sid=%s reason=%s attempt=%d", a->sid,
                        "hung-up-during-admission", a->attempt);
        metric_inc(g, "callgate_requeues_total", "verdict", gate_verdict_name(verdict));
    }
    if (rc->backoff > 0)
        schedule_retry(g, rc->backoff);
    else if (verdict != GV_NONE && verdict != GV_STALE)
        /* requeued, abandoned and overflow all freed the caller's slot. */
        gate_admit(g);
    free(rc);
    if (verdict == GV_OVERFLOW) {
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
    struct gate_requeue q = {
        .sid = a->sid,
        .attempt = a->attempt,
        .reason = reason,
        .overlimit = overlimit,
        .backoff_ms = rc->backoff,
        .limit = g->cfg->max_concurrency,
        .orphan_vapi_id = orphan_vapi_id,
        .orphan_hold_ms = (long long)g->cfg->orphan_hold_seconds * 1000,
        .overlimit_hold_ms = (long long)g->cfg->overlimit_hold_seconds * 1000,
        .permanent = permanent,
        .max_attempts = g->cfg->max_admission_attempts,
    };
    if (a->answer) {
        /* The caller has not heard anything yet: into the queue they go. */
        answer_fast(a, enqueue_route(g, a->route));
    }
    /* The orphan's slot is held until Vapi ends its call: ask early. */
    if (orphan_vapi_id != NULL && !g->stopping)
        gate_probe_start(g->probes, orphan_vapi_id, (long)g->cfg->orphan_hold_seconds * 1000);
    if (gate_store_requeue(&g->store, &q, on_requeued, rc) != 0)
        on_requeued(&(struct gate_reply){.err = "eval refused"}, rc);
}

/* ---- overflow pushed to a caller whom Vapi refuses for good ---- */

static void on_overflow_pushed(const struct cg_twilio_result *res, void *arg)
{
    struct admission *a = arg;
    gate_note_api(a->g, GATE_API_TWILIO, res->http_status);
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

static void on_connected(const struct gate_reply *rep, void *arg)
{
    struct admission *a = arg;
    struct cg_gate *g = a->g;
    if (rep->verdict == GV_CONNECTED) {
        g->fails = 0;
        double wait_s = (double)cg_redis_reply_int(rep->r, 1, 0) / 1000.0;
        if (g->metrics) {
            cg_metrics_observe(g->metrics, "callgate_wait_seconds", NULL, wait_s);
            if (a->slot_freed_us)
                cg_metrics_observe(g->metrics, "callgate_refill_latency_seconds", NULL,
                                   (double)(cg_mono_us() - a->slot_freed_us) / 1e6);
        }
        metric_inc(g, "callgate_callers_total", "outcome", "connected");
        cg_log_info("caller connected", "sid=%s vapi=%s wait_s=%f attempt=%d", a->sid, a->vapi_id,
                    wait_s, a->attempt);
    } else if (rep->verdict == GV_ENDING) {
        /* The caller hung up while the TwiML was on its way: Vapi ends its
         * call in a moment; ask early in case its end message is lost. */
        cg_log_info("caller hung up as the assistant answered; slot held until vapi's end",
                    "sid=%s vapi=%s", a->sid, a->vapi_id ? a->vapi_id : "");
        gate_probe_start(g->probes, a->vapi_id, g->cfg->end_grace_ms);
    } else {
        cg_log_warn("connected step did not apply", "sid=%s verdict=%s error=%s", a->sid,
                    gate_verdict_name(rep->verdict), rep->err ? rep->err : "");
    }
    adm_free(a);
}

static void mark_connected(struct admission *a)
{
    struct cg_gate *g = a->g;
    if (gate_store_connected(&g->store, a->sid, a->attempt, (long long)g->cfg->lease_seconds * 1000,
                             g->cfg->end_grace_ms, on_connected, a) != 0)
        on_connected(&(struct gate_reply){.err = "eval refused"}, a);
}

/* ---- the caller vanished during admission ---- */

static void on_vanished_marked(enum gate_verdict verdict, void *arg)
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
    gate_note_api(a->g, GATE_API_TWILIO, res->http_status);
    const char *st = res->outcome == CG_TW_OK ? res->call_status : NULL;
    int live = st && (strcmp(st, "queued") == 0 || strcmp(st, "ringing") == 0 ||
                      strcmp(st, "in-progress") == 0);
    if (live && a->twilio_tries < TWILIO_NOT_READY_TRIES) {
        /* Twilio has not started the Enqueue yet; the update will be
         * accepted in a moment. */
        if (a->push_retry == NULL)
            a->push_retry = evtimer_new(a->g->base, on_retry_push, a);
        struct timeval tv = {.tv_usec = TWILIO_NOT_READY_DELAY_MS * 1000};
        if (a->push_retry != NULL && evtimer_add(a->push_retry, &tv) == 0)
            return;
        requeue(a, "twilio-not-ready", 0, 0, 0, a->vapi_id);
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
    gate_note_api(g, GATE_API_TWILIO, res->http_status);
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
        requeue(a, "twilio-error", 0, res->code == 32018, 0, a->vapi_id);
        return;
    }
    }
}

static void push_twiml(struct admission *a)
{
    if (cg_twilio_twiml_chars(a->twiml) > CG_TWILIO_UPDATE_MAX_CHARS) {
        /* Twilio would refuse it (32018): a refusal for this caller. */
        cg_log_error("the assistant's TwiML is over twilio's limit on a call update",
                     "sid=%s chars=%zu", a->sid, cg_twilio_twiml_chars(a->twiml));
        metric_inc(a->g, "callgate_twilio_errors_total", "code", "32018");
        requeue(a, "twiml-too-long", 0, 1, 0, a->vapi_id);
        return;
    }
    if (cg_twilio_update_call_twiml(a->g->twilio_push, a->sid, a->twiml, on_twiml_pushed, a) != 0) {
        cg_log_error("cannot send the twilio update", "sid=%s", a->sid);
        requeue(a, "twilio-error", 0, 0, 0, a->vapi_id);
    }
}

/* ---- Vapi call created ---- */

static void on_vapi_recorded(const struct gate_reply *rep, void *arg)
{
    struct admission *a = arg;
    if (rep->verdict == GV_NONE) {
        /* Without the record the Vapi call could not be released by its id;
         * treat it as an orphan so its slot stays held until Vapi ends it. */
        requeue(a, "redis-error", 0, 0, 0, a->vapi_id);
        return;
    }
    if (rep->verdict == GV_ORPHAN) {
        /* The caller hung up while Vapi answered. */
        cg_log_info("caller abandoned", "sid=%s reason=%s attempt=%d", a->sid,
                    "hung-up-during-admission", a->attempt);
        if (a->answer)
            answer_fast(a, cg_twiml_empty());
        adm_free(a);
        return;
    }
    if (a->answer) {
        /* Fast path: the webhook is still open, so answer it with the
         * assistant's TwiML, unchanged. */
        answer_fast(a, cg_strdup(a->twiml));
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
    gate_note_api(g, GATE_API_VAPI, res->http_status);
    switch (res->outcome) {
    case CG_VAPI_CREATED: {
        a->vapi_id = cg_strdup(res->call_id);
        a->twiml = cg_strdup(res->twiml);
        if (gate_store_vapi_created(&g->store, a->sid, a->attempt, a->vapi_id,
                                    (long long)g->cfg->orphan_hold_seconds * 1000, on_vapi_recorded,
                                    a) != 0)
            on_vapi_recorded(&(struct gate_reply){.err = "eval refused"}, a);
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

/* Creates the Vapi call of an admitted caller at once, with the queue
 * context the admitting step returned (qc: read in that same step, so the
 * refill waits on no further Redis round trip). */
static void start_admission(struct admission *a, const struct gate_queue_context *qc)
{
    cg_log_info("caller admitted", "sid=%s attempt=%d", a->sid, a->attempt);
    metric_inc(a->g, "callgate_admissions_total", NULL, NULL);
    struct cg_vapi_call_context ctx = {.waited_s = -1, .requeued = a->attempt > 1};
    if (qc->known) {
        ctx.waited_s = qc->waited_ms >= 0 ? (long)(qc->waited_ms / 1000) : -1;
        ctx.position = (long)qc->entry_pos;
        ctx.dialed = qc->dialed;
        ctx.callback = qc->callback;
        ctx.original_ms = qc->enqueued_at_ms;
        const struct cg_route *rt = gate_route_named(a->g->cfg, qc->route);
        if (rt != NULL) {
            ctx.assistant_id = rt->assistant_id;
            ctx.phone_number_id = rt->phone_number_id;
        }
    }
    if (a->route != NULL && (ctx.assistant_id == NULL || ctx.assistant_id[0] == '\0')) {
        /* Redis did not say the route: the one known from the arrival. */
        ctx.assistant_id = a->route->assistant_id;
        ctx.phone_number_id = a->route->phone_number_id;
    }
    if (cg_vapi_create_call_ctx(a->g->vapi, a->sid, a->from, a->attempt, &ctx, on_vapi_created,
                                a) != 0) {
        cg_log_error("cannot send the vapi request", "sid=%s", a->sid);
        requeue(a, "vapi-error", 0, 0, 0, NULL);
    }
}

static void start_admissions(struct cg_gate *g, const redisReply *r, size_t first,
                             uint64_t slot_freed_us);

/* A callback's dial is over; a refused one's freed slot is refilled. */
static void on_callback_dialed(enum gate_callback_dialed d, const char *leg,
                               const redisReply *settled, void *arg)
{
    (void)d;
    (void)leg;
    struct cg_gate *g = arg;
    g->checks--;
    if (settled != NULL)
        start_admissions(g, settled, 3, 0);
}

/* Starts admissions for the admission list of a script reply (store.h),
 * beginning at element first. A negative attempt is a callback's reserved
 * slot: dialled (when callbacks are on), never a Vapi call. */
static void start_admissions(struct cg_gate *g, const redisReply *r, size_t first,
                             uint64_t slot_freed_us)
{
    struct gate_admitted ad;
    for (size_t i = first; gate_admitted_at(r, i, &ad) == 0; i += GATE_ADMITTED_WIDTH) {
        const char *sid = ad.sid, *from = ad.from;
        long long attempt = ad.attempt;
        if (sid != NULL && attempt < 0 && g->callback_dialer != NULL &&
            gate_callback_dial(g->callback_dialer, sid, -attempt, on_callback_dialed, g) == 0)
            g->checks++;
        if (sid == NULL || from == NULL || attempt <= 0)
            continue;
        if (strncmp(sid, "o:", 2) == 0) {
            /* An outbound call (outbound.lua): Vapi dials the customer. */
            /* A failure that frees its slot refills it as any release does. */
            gate_outbound_place(g, sid, from, (int)attempt, gate_start_admitted);
            continue;
        }
        struct admission *a = adm_new(g, sid, from, (int)attempt);
        a->slot_freed_us = slot_freed_us;
        start_admission(a, &ad.ctx);
    }
}

void gate_start_admitted(struct cg_gate *g, const redisReply *r, size_t first)
{
    start_admissions(g, r, first, 0);
}

/* ---- fast path ---- */

static void on_fast_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct admission *a = arg;
    if (a->answer == NULL)
        return;
    /* Vapi is slow: hold the caller in the queue meanwhile; the TwiML will
     * be pushed with a Calls update when it comes. */
    cg_log_info("fast path deadline passed; caller enqueued", "sid=%s", a->sid);
    answer_fast(a, enqueue_route(a->g, a->route));
}

/* The enter step admitted the caller at once: their webhook waits for the
 * assistant's TwiML, up to FAST_PATH_DEADLINE_MS. */
static void start_fast(struct cg_gate *g, const char *sid, const char *from,
                       const struct gate_queue_context *qc, gate_answer_cb answer, void *arg,
                       const struct cg_route *route)
{
    struct admission *a = adm_new(g, sid, from, 1);
    a->route = route;
    a->answer = answer;
    a->answer_arg = arg;
    a->fast_deadline = evtimer_new(g->base, on_fast_deadline, a);
    int ms = g->cfg->fast_path_deadline_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (a->fast_deadline)
        evtimer_add(a->fast_deadline, &tv);
    start_admission(a, qc);
}

void gate_admit_answered(struct cg_gate *g, const char *sid, const char *from,
                         const struct gate_queue_context *qc, gate_answer_cb answer, void *arg)
{
    start_fast(g, sid, from, qc, answer, arg, NULL);
}

/* ---- arrivals ---- */

struct arrival {
    struct cg_gate *g;
    gate_answer_cb answer;
    void *arg;
    char sid[40];
    char *from;
    const struct cg_route *route; /* NULL: one route */
};

static void on_entered(const struct gate_reply *rep, void *arg)
{
    struct arrival *in = arg;
    struct cg_gate *g = in->g;
    switch (rep->verdict) {
    case GV_NONE:
        /* Redis failed mid-way: Twilio holds the caller; reconciliation
         * adopts them when Redis answers again. */
        cg_log_warn("caller enqueued without a record", "sid=%s error=%s", in->sid,
                    rep->err ? rep->err : "bad reply");
        in->answer(enqueue_route(g, in->route), in->arg);
        break;
    case GV_FAST: {
        cg_log_info("caller entered", "sid=%s position=%d fast_path=%d", in->sid, 1, 1);
        struct gate_queue_context qc;
        gate_queue_context_at(rep->r, 2, &qc);
        start_fast(g, in->sid, in->from, &qc, in->answer, in->arg, in->route);
        break;
    }
    case GV_WAITING:
        cg_log_info("caller entered", "sid=%s position=%lld fast_path=%d", in->sid,
                    cg_redis_reply_int(rep->r, 1, 0), 0);
        in->answer(enqueue_route(g, in->route), in->arg);
        /* Every slot taken: the next release admits (end.lua). */
        if (cg_redis_reply_int(rep->r, 2, 1) != 0)
            gate_admit(g);
        break;
    case GV_OVERFLOW:
        cg_log_info("caller overflowed", "sid=%s reason=%s position=%lld wait_s=%d", in->sid,
                    "queue-full", cg_redis_reply_int(rep->r, 1, 0), 0);
        metric_inc(g, "callgate_callers_total", "outcome", "overflowed");
        in->answer(gate_overflow_twiml(g), in->arg);
        break;
    default: {
        /* A repeated webhook for a known call: answer consistently. */
        enum gate_verdict state = gate_verdict_at(rep->r, 1);
        cg_log_debug("repeated arrival changed nothing", "sid=%s state=%s", in->sid,
                     gate_verdict_name(state));
        if (state == GV_WAITING || state == GV_ADMITTING)
            in->answer(enqueue_route(g, in->route), in->arg);
        else if (state == GV_OVERFLOWED)
            in->answer(gate_overflow_twiml(g), in->arg);
        else
            in->answer(cg_twiml_empty(), in->arg);
        break;
    }
    }
    free(in->from);
    free(in);
}

void gate_arrive(struct cg_gate *g, const char *sid, const char *from, const char *to,
                 gate_answer_cb answer, void *arg)
{
    if (!gate_redis_ready(g) || g->stopping) {
        cg_log_warn("redis unavailable: caller held in twilio's queue", "sid=%s", sid);
        /* The route's own queue, which its reconciliation reads later. */
        answer(enqueue_route(g, gate_route_for(g->cfg, to)), arg);
        return;
    }
    struct arrival *in = cg_calloc(1, sizeof *in);
    in->g = g;
    in->answer = answer;
    in->arg = arg;
    snprintf(in->sid, sizeof in->sid, "%s", sid);
    in->from = cg_strdup(from ? from : "");
    in->route = gate_route_for(g->cfg, to);
    struct gate_enter e = {
        .sid = sid,
        .from = in->from,
        .to = to,
        .adopt = 0,
        .max_queue = g->cfg->max_queue_size,
        .limit = g->cfg->max_concurrency,
        .fast_ok = g->cfg->fast_path_deadline_ms > 0,
        .lease_ms = (long long)g->cfg->admission_lease_seconds * 1000,
        .instance = g->cfg->instance_id,
        .waited_ms = 0,
        .route = in->route ? in->route->name : NULL,
        .vip = cg_route_is_vip(in->route, from),
    };
    if (gate_store_enter(&g->store, &e, on_entered, in) != 0)
        on_entered(&(struct gate_reply){.err = "eval refused"}, in);
}

int gate_adopt(struct cg_gate *g, const char *sid, const char *from, const char *to, long waited_s,
               gate_store_cb cb, void *arg)
{
    struct gate_enter e = {
        .sid = sid,
        .from = from,
        .to = to,
        .adopt = 1,
        .max_queue = g->cfg->max_queue_size,
        .limit = g->cfg->max_concurrency,
        .fast_ok = 0,
        .lease_ms = (long long)g->cfg->admission_lease_seconds * 1000,
        .instance = g->cfg->instance_id,
        .waited_ms = (long long)waited_s * 1000,
        .route = gate_route_for(g->cfg, to) ? gate_route_for(g->cfg, to)->name : NULL,
        .vip = cg_route_is_vip(gate_route_for(g->cfg, to), from),
    };
    return gate_store_enter(&g->store, &e, cb, arg);
}

/* ---- the admit step ---- */

static void on_admitted(const struct gate_reply *rep, void *arg)
{
    struct cg_gate *g = arg;
    g->admit_running = 0;
    if (rep->err == NULL)
        start_admissions(g, rep->r, 0, 0);
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
    g->admit_running = 1;
    if (gate_store_admit(&g->store, g->cfg->max_concurrency, ADMIT_BATCH,
                         (long long)g->cfg->admission_lease_seconds * 1000, g->cfg->instance_id,
                         on_admitted, g) != 0)
        g->admit_running = 0;
}

/* ---- end signals ---- */

struct end_ctx {
    struct cg_gate *g;
    gate_end_cb done;
    void *arg;
    uint64_t at_us;
    char signal[24];
    char reason[64];
    char id[96];
};

/* One line per caller step an end signal took (info), or a debug line when
 * it changed nothing (a repeated or late signal). */
static void log_end(const struct end_ctx *e, enum gate_verdict verdict, const redisReply *r)
{
    const char *sid = cg_redis_reply_str(r, 1);
    const char *detail = cg_redis_reply_str(r, 2);
    const char *colon = detail ? strchr(detail, ':') : NULL;
    double ms = (double)cg_redis_reply_int(r, 2, 0);
    long pos = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (sid == NULL || sid[0] == '\0')
        sid = e->id;
    switch (verdict) {
    case GV_RELEASED:
        cg_log_info("caller released", "sid=%s reason=%s signal=%s hold_s=%.1f", sid, e->reason,
                    e->signal, ms / 1000.0);
        break;
    case GV_RELEASED_ORPHAN:
        cg_log_info("slot of a vapi call without a caller released", "id=%s sid=%s signal=%s",
                    e->id, sid, e->signal);
        break;
    case GV_ABANDONED:
        if (colon)
            cg_log_info("caller abandoned", "sid=%s position=%ld wait_s=%.1f reason=%s", sid, pos,
                        ms / 1000.0, e->reason);
        else
            cg_log_info("caller abandoned", "sid=%s reason=%s", sid, e->reason);
        break;
    case GV_OVERFLOWED:
        if (colon)
            cg_log_info("caller overflowed", "sid=%s reason=%s position=%ld wait_s=%.1f", sid,
                        e->reason, pos, ms / 1000.0);
        else
            cg_log_debug("end signal changed nothing", "sid=%s signal=%s verdict=%s", sid,
                         e->signal, gate_verdict_name(verdict));
        break;
    case GV_REQUEUED:
        cg_log_info("caller requeued", "sid=%s reason=%s", sid, e->reason);
        break;
    case GV_ENDING:
        cg_log_info("caller hung up; slot held until vapi's end", "sid=%s signal=%s", sid,
                    e->signal);
        break;
    case GV_GONE:
        cg_log_info("caller hung up during admission", "sid=%s signal=%s", sid, e->signal);
        break;
    default:
        cg_log_debug("end signal changed nothing", "sid=%s signal=%s verdict=%s", sid, e->signal,
                     gate_verdict_name(verdict));
        break;
    }
}

static void on_end(const struct gate_reply *rep, void *arg)
{
    struct end_ctx *e = arg;
    struct cg_gate *g = e->g;
    enum gate_verdict verdict = rep->verdict;
    if (verdict != GV_NONE) {
        log_end(e, verdict, rep->r);
        if (verdict == GV_RELEASED || verdict == GV_RELEASED_ORPHAN)
            metric_inc(g, "callgate_releases_total", "signal", e->signal);
        if (verdict == GV_ABANDONED)
            metric_inc(g, "callgate_callers_total", "outcome", "abandoned");
        if (verdict == GV_ENDING && !g->stopping)
            /* Twilio's end came first: Vapi's should follow in a moment;
             * when it is lost, this finds out long before the grace. */
            gate_probe_start(g->probes, cg_redis_reply_str(rep->r, 2), g->cfg->end_grace_ms);
        if (!g->stopping)
            start_admissions(g, rep->r, 3, e->at_us);
    } else {
        cg_log_warn("end signal not applied", "signal=%s error=%s", e->signal,
                    rep->err ? rep->err : "bad reply");
    }
    if (e->done)
        e->done(verdict, e->arg);
    free(e);
}

void gate_end(struct cg_gate *g, const char *kind, const char *id, const char *reason,
              const char *signal, gate_end_cb done, void *arg)
{
    if (strcmp(reason, CG_VAPI_REASON_OVERLIMIT) == 0) {
        /* Over the limit after all, with a 201 that did not say so. */
        cg_log_warn("vapi ended a call over its concurrency limit", "id=%s", id);
        metric_inc(g, "callgate_vapi_errors_total", "code", "overlimit-ended");
    }
    if (strcmp(kind, "vapi") == 0)
        gate_probe_cancel(g->probes, id); /* Vapi said it: no need to ask */
    struct end_ctx *e = cg_calloc(1, sizeof *e);
    e->g = g;
    e->done = done;
    e->arg = arg;
    e->at_us = cg_mono_us();
    snprintf(e->signal, sizeof e->signal, "%s", signal);
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    snprintf(e->id, sizeof e->id, "%s", id);
    struct gate_end_signal es = {
        .kind = kind,
        .id = id,
        .reason = reason,
        .end_grace_ms = g->cfg->end_grace_ms,
        .limit = g->cfg->max_concurrency,
        .batch = g->stopping ? 0 : ADMIT_BATCH,
        .lease_ms = (long long)g->cfg->admission_lease_seconds * 1000,
        .instance = g->cfg->instance_id,
        .ewma_alpha = SERVICE_EWMA_ALPHA,
        .signal = signal,
        .orphan_hold_ms = (long long)g->cfg->orphan_hold_seconds * 1000,
    };
    if (gate_store_end(&g->store, &es, on_end, e) != 0)
        on_end(&(struct gate_reply){.err = "eval refused"}, e);
}

/* ---- the engine's own resources (gate.c creates and frees the gate) ---- */

int gate_engine_init(struct cg_gate *g)
{
    cg_list_init(&g->admissions);
    g->retry_timer = evtimer_new(g->base, on_retry_timer, g);
    return g->retry_timer != NULL ? 0 : -1;
}

void gate_engine_free(struct cg_gate *g)
{
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &g->admissions) {
        adm_free(cg_list_entry(it, struct admission, link));
    }
    if (g->retry_timer)
        event_free(g->retry_timer);
    g->retry_timer = NULL;
}
