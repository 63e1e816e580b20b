/*
 * callback_dial.c - one dial of a queued callback: claim, Calls create,
 * ringing or failed (callback_dial.h).
 */
#include "base/fmacros.h"

#include "gate/callback_dial.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "net/redis.h"

struct dial {
    const struct gate_callback_dialer *d;
    char sid[64];
    long long attempt;
    char leg[40];
    gate_callback_dial_cb cb;
    void *arg;
};

static void finish(struct dial *x, enum gate_callback_dialed v, const char *leg,
                   const redisReply *settled)
{
    x->cb(v, leg, settled, x->arg);
    free(x);
}

static void on_leg_ended(const struct cg_twilio_result *res, void *arg)
{
    (void)arg;
    if (res->outcome != CG_TW_OK && res->outcome != CG_TW_GONE)
        cg_log_warn("a stale callback leg could not be hung up; its answer is refused",
                    "outcome=%d", (int)res->outcome);
}

static void on_ringing(const struct gate_reply *rep, void *arg)
{
    struct dial *x = arg;
    if (rep->err != NULL) {
        finish(x, GATE_CB_DIALED_ERROR, x->leg, NULL);
        return;
    }
    if (rep->verdict != GV_OK) {
        /* The reservation ran out while Twilio answered (the attempt was
         * settled meanwhile): the leg is nobody's; hang it up. */
        cg_log_warn("callback leg placed after its attempt ended; hanging it up", "sid=%s leg=%s",
                    x->sid, x->leg);
        if (cg_twilio_end_call(x->d->twilio, x->leg, on_leg_ended, NULL) != 0)
            cg_log_warn("callback leg hang-up not sent", "leg=%s", x->leg);
        finish(x, GATE_CB_DIALED_STALE, x->leg, NULL);
        return;
    }
    finish(x, GATE_CB_DIALED_RINGING, x->leg, NULL);
}

static void on_settled(const struct gate_reply *rep, void *arg)
{
    struct dial *x = arg;
    if (rep->err != NULL)
        finish(x, GATE_CB_DIALED_ERROR, NULL, NULL);
    else
        finish(x, rep->verdict == GV_STALE ? GATE_CB_DIALED_STALE : GATE_CB_DIALED_FAILED, NULL,
               rep->r);
}

static void settle_failed(struct dial *x, const char *reason)
{
    const struct gate_callback_dialer *d = x->d;
    struct gate_callback_outcome o = {
        .sid = x->sid,
        .attempt = x->attempt,
        .reason = reason,
        .final = 1,
        .limit = d->limit,
        .batch = d->batch,
        .lease_ms = d->lease_ms,
        .instance = d->instance,
    };
    if (gate_store_callback_outcome(d->store, &o, on_settled, x) != 0)
        finish(x, GATE_CB_DIALED_ERROR, NULL, NULL);
}

static void on_created(const struct cg_twilio_result *res, void *arg)
{
    struct dial *x = arg;
    if (res->outcome == CG_TW_OK) {
        snprintf(x->leg, sizeof x->leg, "%s", res->call_sid);
        if (gate_store_callback_ringing(x->d->store, x->sid, x->attempt, x->leg, on_ringing, x) !=
            0)
            finish(x, GATE_CB_DIALED_ERROR, x->leg, NULL);
        return;
    }
    if (res->outcome == CG_TW_FATAL || res->outcome == CG_TW_GONE) {
        /* Refused (a number Twilio will not call, permissions): asking
         * again later would be refused again. */
        char reason[32];
        snprintf(reason, sizeof reason, "refused-%d", res->code);
        cg_log_warn("twilio refused a callback", "sid=%s status=%ld code=%d", x->sid,
                    res->http_status, res->code);
        settle_failed(x, reason);
        return;
    }
    cg_log_warn("callback dial without an answer from twilio; its lease settles it", "sid=%s",
                x->sid);
    finish(x, GATE_CB_DIALED_UNKNOWN, NULL, NULL);
}

static void on_claimed(const struct gate_reply *rep, void *arg)
{
    struct dial *x = arg;
    if (rep->err != NULL) {
        finish(x, GATE_CB_DIALED_ERROR, NULL, NULL);
        return;
    }
    if (rep->verdict != GV_DIAL) {
        finish(x, GATE_CB_DIALED_STALE, NULL, NULL);
        return;
    }
    const char *number = cg_redis_reply_str(rep->r, 1);
    const char *from = cg_redis_reply_str(rep->r, 2);
    char answer_url[CG_TWILIO_MAX_URL + 1], status_url[CG_TWILIO_MAX_URL + 1];
    int n1 = snprintf(answer_url, sizeof answer_url, "%s/callback-answer?sid=%s&attempt=%lld",
                      x->d->public_url, x->sid, x->attempt);
    int n2 = snprintf(status_url, sizeof status_url, "%s/callback-status?sid=%s&attempt=%lld",
                      x->d->public_url, x->sid, x->attempt);
    struct cg_twilio_new_call c = {
        .to = number,
        .from = from,
        .url = answer_url,
        .status_callback = status_url,
        .timeout_s = x->d->ring_s,
        .machine_detection = x->d->machine_detection,
    };
    if (n1 < 0 || (size_t)n1 >= sizeof answer_url || n2 < 0 || (size_t)n2 >= sizeof status_url ||
        cg_twilio_create_call(x->d->twilio, &c, on_created, x) != 0) {
        /* A number or URL the client will not send: never callable. */
        cg_log_warn("callback not dialable", "sid=%s", x->sid);
        settle_failed(x, "not-dialable");
    }
}

/* The CallSid goes into URLs unescaped: letters and digits only. */
static int sid_ok(const char *sid)
{
    size_t n = 0;
    for (; sid[n] != '\0'; n++)
        if (!isalnum((unsigned char)sid[n]))
            return 0;
    return n > 0 && n < 64;
}

int gate_callback_dial(const struct gate_callback_dialer *d, const char *sid, long long attempt,
                       gate_callback_dial_cb cb, void *arg)
{
    if (d == NULL || sid == NULL || cb == NULL || attempt <= 0 || !sid_ok(sid))
        return -1;
    struct dial *x = cg_calloc(1, sizeof *x);
    x->d = d;
    snprintf(x->sid, sizeof x->sid, "%s", sid);
    x->attempt = attempt;
    x->cb = cb;
    x->arg = arg;
    if (gate_store_callback_dial(d->store, x->sid, attempt, on_claimed, x) != 0) {
        free(x);
        return -1;
    }
    return 0;
}
