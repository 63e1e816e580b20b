/*
 * callback_http.c - the HTTP side of queued callbacks (callback_http.h).
 */
#include "base/fmacros.h"

#include "gate/callback_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/form.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/callback.h"
#include "gate/callback_config.h"
#include "gate/callback_hours.h"
#include "gate/internal.h"
#include "gate/keys.h"
#include "gate/queue_view.h"
#include "gate/store.h"
#include "net/httpd.h"
#include "net/redis.h"
#include "twilio/api.h"
#include "twilio/twiml.h"
#include "twilio/webhook.h"

/* Seconds the keypad waits after the offer (or the pending question). */
#define OFFER_KEY_TIMEOUT_S   5
#define PENDING_KEY_TIMEOUT_S 8
/* Seconds between two keys of a number being keyed (Gather's timeout). */
#define NUMBER_KEY_TIMEOUT_S 10

static int callbacks_on(const struct cg_gate *g)
{
    return g->callback_dialer != NULL;
}

static void reply_twiml(struct cg_http_req *req, char *twiml)
{
    cg_http_reply(req, 200, "text/xml", twiml, strlen(twiml));
    free(twiml);
}

/* Holding on: the music (or silence) without an announcement. */
static void reply_hold(struct cg_gate *g, struct cg_http_req *req)
{
    struct cg_twiml_wait w = {
        .hold_music_url = g->cfg->hold_music_url,
        .pause_s = g->cfg->announce_interval_seconds,
    };
    reply_twiml(req, cg_twiml_wait(&w));
}

static const char *form_str(const struct cg_form *f, const char *key)
{
    const char *v = cg_form_get(f, key);
    return v ? v : "";
}

static int sid_ok(const char *s)
{
    return gate_callback_sid_ok(s);
}

/* ?sid=<CallSid>[&attempt=<n>] of our own callback URLs; 0, or -1 (the
 * request has been answered with 400). */
static int query_of(struct cg_http_req *req, int want_attempt, const char **sid, long long *attempt)
{
    const struct cg_form *q = cg_http_req_query(req);
    const char *s = q ? cg_form_get(q, "sid") : NULL;
    if (!sid_ok(s)) {
        cg_http_reply_error(req, 400, "bad_request", "sid is missing or malformed");
        return -1;
    }
    *sid = s;
    if (!want_attempt)
        return 0;
    if (gate_callback_attempt(cg_form_get(q, "attempt"), attempt) != 0) {
        cg_http_reply_error(req, 400, "bad_request", "attempt is missing or malformed");
        return -1;
    }
    return 0;
}

/* Callbacks can be made now, or the window opens within the caller's
 * estimate (the call would come then). */
static int window_open_within(const struct cg_gate *g, double ewt_s)
{
    if (g->callback_hours == NULL)
        return 1;
    time_t now = time(NULL), until = 0;
    int open = gate_callback_hours_open(g->callback_hours, now, &until);
    return open == 1 || (open == 0 && (double)(until - now) <= ewt_s);
}

static void on_counted(const redisReply *r, const char *err, void *arg)
{
    (void)r;
    (void)arg;
    if (err != NULL)
        cg_log_debug("callback offer not counted", "error=%s", err);
}

/* An event of this instance in /metrics; shared (all instances, in
 * cg:{g}:stats) too when the scripts do not count it themselves. */
static void count_event(struct cg_gate *g, const char *event, int shared)
{
    if (shared && cg_redis_command(g->redis, on_counted, NULL, "HINCRBY %sstats %s 1",
                                   g->keys->prefix, event) != 0)
        cg_log_debug("callback offer not counted", "");
    if (g->metrics) {
        char label[80];
        snprintf(label, sizeof label, "event=\"%s\"", event);
        cg_metrics_inc(g->metrics, "callgate_callbacks_total", label, 1);
    }
}

static void url_of(const struct cg_gate *g, const char *path, const char *sid, char *out, size_t n)
{
    if (sid != NULL)
        snprintf(out, n, "%s%s?sid=%s", g->cfg->public_url, path, sid);
    else
        snprintf(out, n, "%s%s", g->cfg->public_url, path);
}

char *gate_callback_hold_twiml(struct cg_gate *g, const char *from, double ewt_s, const char *say)
{
    if (!callbacks_on(g))
        return NULL;
    struct gate_callback_offer o = {
        .offer_s = g->cfg->callback_offer_seconds,
        .estimate_s = ewt_s,
        .from = from,
        .window_open = window_open_within(g, ewt_s),
        .state_waiting = 1,
    };
    if (!gate_callback_should_offer(&o))
        return NULL;
    char action[CG_TWIML_MAX_URL + 1];
    url_of(g, "/callback-keypad", NULL, action, sizeof action);
    struct cg_twiml_wait w = {
        .say = say,
        .hold_music_url = g->cfg->hold_music_url,
        .pause_s = g->cfg->announce_interval_seconds,
    };
    char text[1024];
    if (g->cfg->callback_number_message[0] != '\0')
        snprintf(text, sizeof text, "%s %s", g->cfg->callback_offer_message,
                 g->cfg->callback_number_message);
    else
        snprintf(text, sizeof text, "%s", g->cfg->callback_offer_message);
    struct cg_twiml_offer off = {
        .text = text,
        .action_url = action,
        .timeout_s = OFFER_KEY_TIMEOUT_S,
    };
    count_event(g, "callbacks_offered", 1);
    return cg_twiml_wait_offer(&w, &off);
}

/* ---- the keypad: /callback-keypad ---- */

struct keypad {
    struct cg_gate *g;
    struct cg_http_req *req;
    char sid[40];
    char *from;
    double est_s;     /* the mean estimate, plus the ring */
    double bound_s;   /* the 90th percentile, plus the ring */
    double promise_s; /* what the caller is told: the bound, rounded up */
    char promise[48]; /* "within 3 minutes" */
};

static void keypad_free(struct keypad *k)
{
    free(k->from);
    free(k);
}

static void reply_confirm(struct keypad *k, int with_time)
{
    char text[800];
    if (with_time) {
        /* The time promised, for whoever measures it (Twilio ignores the
         * header). */
        char hdr[32];
        snprintf(hdr, sizeof hdr, "%.0f", k->promise_s);
        cg_http_set_header(k->req, "X-Callgate-Estimated-Wait", hdr);
        snprintf(text, sizeof text, "%s We will call you %s.", k->g->cfg->callback_confirm_message,
                 k->promise);
    } else {
        snprintf(text, sizeof text, "%s", k->g->cfg->callback_confirm_message);
    }
    reply_twiml(k->req, cg_twiml_say_leave(text));
}

static void on_requested(const struct gate_reply *rep, void *arg)
{
    struct keypad *k = arg;
    if (rep->err == NULL && (rep->verdict == GV_CALLBACK || rep->verdict == GV_EXISTING)) {
        cg_log_info("callback requested",
                    "sid=%s position=%lld estimate_s=%lld bound_s=%lld promised_s=%lld", k->sid,
                    cg_redis_reply_int(rep->r, 1, 0), (long long)(k->est_s + 0.5),
                    (long long)(k->bound_s + 0.5), (long long)k->promise_s);
        if (rep->verdict == GV_CALLBACK)
            count_event(k->g, "callbacks_accepted", 0);
        reply_confirm(k, 1);
    } else {
        /* Admitted meanwhile, or gone: nothing to keep. */
        cg_log_info("callback request changed nothing", "sid=%s verdict=%s error=%s", k->sid,
                    cg_redis_reply_str(rep->r, 0) ? cg_redis_reply_str(rep->r, 0) : "",
                    rep->err ? rep->err : "");
        reply_hold(k->g, k->req);
    }
    keypad_free(k);
}

static void on_keypad_position(const struct gate_reply *rep, void *arg)
{
    struct keypad *k = arg;
    struct cg_gate *g = k->g;
    if (rep->err == NULL && rep->verdict == GV_WAITING) {
        /* The call comes when the caller's turn does, and then rings. What
         * the caller is promised is a time the gate can keep: the 90th
         * percentile of their wait plus the ring, rounded up to what a
         * person would say ("within 3 minutes"). The mean would be missed
         * about half the time. */
        double ring = (double)g->cfg->callback_ring_seconds;
        k->est_s = gate_estimate_of_position(g, rep->r) + ring;
        k->bound_s = gate_bound_of_position(g, rep->r) + ring;
        k->promise_s = gate_callback_promise(k->bound_s, k->promise, sizeof k->promise);
        struct gate_callback_request q = {
            .sid = k->sid,
            .number = k->from,
            .est_ms = (long long)(k->promise_s * 1000.0),
            .max_dials = g->cfg->callback_attempts,
            .retry_ms = (long long)g->cfg->callback_retry_seconds * 1000,
            .lease_ms = gate_callback_dial_lease_ms(g->cfg),
        };
        if (gate_store_callback_request(&g->store, &q, on_requested, k) != 0)
            on_requested(&(struct gate_reply){.err = "eval refused"}, k);
        return;
    }
    if (rep->err == NULL && rep->verdict == GV_CALLBACK) {
        reply_confirm(k, 0); /* pressed twice */
    } else if (rep->err == NULL && rep->verdict == GV_OVERFLOW) {
        reply_twiml(k->req, cg_twiml_leave());
    } else {
        reply_hold(g, k->req);
    }
    keypad_free(k);
}

/* The callback at number (the caller's own, or one they keyed): the
 * caller keeps their place if they are still waiting. */
static void accept(struct cg_gate *g, struct cg_http_req *req, const char *sid, const char *number)
{
    struct keypad *k = cg_calloc(1, sizeof *k);
    k->g = g;
    k->req = req;
    snprintf(k->sid, sizeof k->sid, "%s", sid);
    k->from = cg_strdup(number);
    if (gate_store_position(&g->store, sid, (long long)g->cfg->max_wait_seconds * 1000,
                            (long long)g->cfg->announce_interval_seconds * 1000,
                            g->cfg->max_concurrency, on_keypad_position, k) != 0)
        on_keypad_position(&(struct gate_reply){.err = "eval refused"}, k);
}

/* Asks for another number (after before, when not NULL: why it is asked
 * again); the keys go to /callback-number. Without a key, holding goes on. */
static void reply_number_prompt(struct cg_gate *g, struct cg_http_req *req, const char *before)
{
    char action[CG_TWIML_MAX_URL + 1];
    url_of(g, "/callback-number", NULL, action, sizeof action);
    struct cg_twiml_wait w = {
        .say = before,
        .hold_music_url = g->cfg->hold_music_url,
        .pause_s = g->cfg->announce_interval_seconds,
    };
    struct cg_twiml_offer off = {
        .text = g->cfg->callback_number_prompt,
        .action_url = action,
        .timeout_s = NUMBER_KEY_TIMEOUT_S,
        .keyed = 1,
    };
    reply_twiml(req, cg_twiml_wait_offer(&w, &off));
}

static void handle_keypad(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = cg_twhook_check(req, g->cfg, &sid);
    if (form == NULL)
        return;
    const char *from = form_str(form, "From");
    const char *digits = cg_form_get(form, "Digits");
    if (digits == NULL) {
        /* Gather's action always carries Digits (empty without a key). */
        cg_http_reply_error(req, 400, "bad_request", "Digits is missing");
        return;
    }
    enum gate_callback_key key = gate_callback_key(digits);
    if (key == GATE_CB_KEY_NUMBER && callbacks_on(g) &&
        g->cfg->callback_number_message[0] != '\0') {
        reply_number_prompt(g, req, NULL);
        return;
    }
    if (key != GATE_CB_KEY_ACCEPT || !callbacks_on(g) || !gate_callback_number_ok(from) ||
        !gate_redis_ready(g)) {
        reply_hold(g, req);
        return;
    }
    accept(g, req, sid, from);
}

/* ---- another number: /callback-number, /callback-number-confirm ---- */

/* "plus 4 4 2 0 ...": a number read back digit by digit. */
static void spoken_number(const char *e164, char *out, size_t n)
{
    size_t at = (size_t)snprintf(out, n, "plus");
    for (const char *p = e164 + 1; *p != '\0' && at + 3 < n; p++) {
        out[at++] = ' ';
        out[at++] = *p;
        out[at] = '\0';
    }
}

static void handle_number(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = cg_twhook_check(req, g->cfg, &sid);
    if (form == NULL)
        return;
    const char *digits = cg_form_get(form, "Digits");
    if (digits == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "Digits is missing");
        return;
    }
    if (!callbacks_on(g) || g->cfg->callback_number_message[0] == '\0' || digits[0] == '\0') {
        reply_hold(g, req);
        return;
    }
    char number[GATE_CB_KEYED_MAX + 8];
    if (gate_callback_keyed_number(digits, form_str(form, "From"), number, sizeof number) != 0) {
        cg_log_info("callback number keyed cannot be called", "sid=%s keys=%zu", sid,
                    strlen(digits));
        count_event(g, "callback_numbers_refused", 0);
        reply_number_prompt(g, req, g->cfg->callback_number_invalid_message);
        return;
    }
    char action[CG_TWIML_MAX_URL + 1], path[64], say[600], spoken[80];
    /* The number rides in our own URL, which Twilio signs: nothing to
     * store, and nothing anyone else can change. Digits only ('+' would
     * need escaping). */
    snprintf(path, sizeof path, "/callback-number-confirm?n=%s", number + 1);
    url_of(g, path, NULL, action, sizeof action);
    spoken_number(number, spoken, sizeof spoken);
    snprintf(say, sizeof say, "We will call %s.", spoken);
    struct cg_twiml_wait w = {
        .say = say,
        .hold_music_url = g->cfg->hold_music_url,
        .pause_s = g->cfg->announce_interval_seconds,
    };
    struct cg_twiml_offer off = {
        .text = g->cfg->callback_number_confirm_message,
        .action_url = action,
        .timeout_s = OFFER_KEY_TIMEOUT_S,
    };
    reply_twiml(req, cg_twiml_wait_offer(&w, &off));
}

static void handle_number_confirm(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid;
    const struct cg_form *form = cg_twhook_check(req, g->cfg, &sid);
    if (form == NULL)
        return;
    const struct cg_form *q = cg_http_req_query(req);
    const char *n = q ? cg_form_get(q, "n") : NULL;
    char number[GATE_CB_KEYED_MAX + 8];
    if (n == NULL || strlen(n) > GATE_CB_KEYED_MAX || strspn(n, "0123456789") != strlen(n) ||
        snprintf(number, sizeof number, "+%s", n) < 0 || !gate_callback_number_ok(number)) {
        cg_http_reply_error(req, 400, "bad_request", "n is missing or not a callable number");
        return;
    }
    const char *digits = cg_form_get(form, "Digits");
    if (digits == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "Digits is missing");
        return;
    }
    if (!callbacks_on(g) || g->cfg->callback_number_message[0] == '\0') {
        reply_hold(g, req);
        return;
    }
    enum gate_callback_key key = gate_callback_key(digits);
    if (key == GATE_CB_KEY_NUMBER) {
        reply_number_prompt(g, req, NULL); /* enter it again */
        return;
    }
    if (key != GATE_CB_KEY_ACCEPT || !gate_redis_ready(g)) {
        reply_hold(g, req);
        return;
    }
    cg_log_info("callback to another number confirmed", "sid=%s", sid);
    accept(g, req, sid, number);
}

/* ---- /queue-exit with QueueResult=leave ---- */

struct left {
    struct cg_gate *g;
    struct cg_http_req *req;
};

static int callback_state(const char *s)
{
    return s != NULL && (strcmp(s, "callback") == 0 || strncmp(s, "cb_", 3) == 0 ||
                         strcmp(s, "called-back") == 0);
}

static void on_left(const struct gate_reply *rep, void *arg)
{
    struct left *l = arg;
    if (rep->err == NULL && callback_state(cg_redis_reply_str(rep->r, 0)))
        reply_twiml(l->req, cg_twiml_say_hangup(NULL));
    else
        reply_twiml(l->req, gate_overflow_twiml(l->g));
    free(l);
}

int gate_callback_left(struct cg_gate *g, struct cg_http_req *req, const char *sid)
{
    if (!gate_redis_ready(g))
        return -1;
    struct left *l = cg_calloc(1, sizeof *l);
    l->g = g;
    l->req = req;
    if (gate_store_position(&g->store, sid, (long long)g->cfg->max_wait_seconds * 1000,
                            (long long)g->cfg->announce_interval_seconds * 1000,
                            g->cfg->max_concurrency, on_left, l) != 0) {
        free(l);
        return -1;
    }
    return 0;
}

/* ---- a caller who calls again: /incoming, /callback-pending ---- */

struct again {
    struct cg_gate *g;
    struct cg_http_req *req;
    char sid[40];
    char old[64];
    char *from;
    char *to;
};

static void again_free(struct again *a)
{
    free(a->from);
    free(a->to);
    free(a);
}

static void on_arrival_answer(char *twiml, void *arg)
{
    reply_twiml(arg, twiml);
}

static void arrive_plainly(struct again *a)
{
    gate_arrive(a->g, a->sid, a->from, a->to, on_arrival_answer, a->req);
    again_free(a);
}

static void on_lookup(const struct gate_reply *rep, void *arg)
{
    struct again *a = arg;
    const char *word = rep->err == NULL ? cg_redis_reply_str(rep->r, 0) : NULL;
    const char *old = word && strcmp(word, "pending") == 0 ? cg_redis_reply_str(rep->r, 1) : NULL;
    if (old == NULL || !sid_ok(old)) {
        arrive_plainly(a);
        return;
    }
    struct cg_gate *g = a->g;
    cg_log_info("caller with a pending callback called again", "sid=%s callback=%s state=%s",
                a->sid, old, cg_redis_reply_str(rep->r, 3) ? cg_redis_reply_str(rep->r, 3) : "");
    char action[CG_TWIML_MAX_URL + 1];
    url_of(g, "/callback-pending", old, action, sizeof action);
    /* The question, then the end of the document: Twilio hangs up, and the
     * callback stays as it was. */
    struct cg_twiml_wait w = {.pause_s = 1};
    struct cg_twiml_offer off = {
        .text = g->cfg->callback_pending_message,
        .action_url = action,
        .timeout_s = PENDING_KEY_TIMEOUT_S,
    };
    reply_twiml(a->req, cg_twiml_wait_offer(&w, &off));
    again_free(a);
}

static struct again *again_new(struct cg_gate *g, struct cg_http_req *req, const char *sid,
                               const char *from, const char *to)
{
    struct again *a = cg_calloc(1, sizeof *a);
    a->g = g;
    a->req = req;
    snprintf(a->sid, sizeof a->sid, "%s", sid);
    a->from = cg_strdup(from);
    a->to = cg_strdup(to);
    return a;
}

int gate_callback_arrive(struct cg_gate *g, struct cg_http_req *req, const char *sid,
                         const char *from, const char *to)
{
    if (!callbacks_on(g) || !gate_callback_number_ok(from) || !gate_redis_ready(g))
        return -1;
    struct again *a = again_new(g, req, sid, from, to);
    if (gate_store_callback_lookup(&g->store, from, on_lookup, a) != 0) {
        again_free(a);
        return -1;
    }
    return 0;
}

static void on_resumed(const struct gate_reply *rep, void *arg)
{
    struct again *a = arg;
    const char *word = rep->err == NULL ? cg_redis_reply_str(rep->r, 0) : NULL;
    if (word == NULL || strcmp(word, "resumed") != 0) {
        /* Already dialled, or ended: this call is a new arrival. */
        cg_log_info("pending callback not resumed; the call enters as new", "sid=%s callback=%s",
                    a->sid, a->old);
        arrive_plainly(a);
        return;
    }
    cg_log_info("caller waits on the line in their callback's place",
                "sid=%s callback=%s "
                "position=%lld",
                a->sid, a->old, cg_redis_reply_int(rep->r, 1, 0));
    reply_twiml(a->req, gate_enqueue_twiml(a->g));
    gate_admit(a->g);
    again_free(a);
}

static void handle_pending(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *sid, *old;
    const struct cg_form *form = cg_twhook_check(req, g->cfg, &sid);
    if (form == NULL || query_of(req, 0, &old, NULL) != 0)
        return;
    const char *digits = cg_form_get(form, "Digits");
    if (digits == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "Digits is missing");
        return;
    }
    if (strcmp(digits, "2") != 0) {
        /* Keeps the callback. */
        reply_twiml(req, cg_twiml_say_hangup(NULL));
        return;
    }
    struct again *a = again_new(g, req, sid, form_str(form, "From"), form_str(form, "To"));
    snprintf(a->old, sizeof a->old, "%s", old);
    if (!gate_redis_ready(g) ||
        gate_store_callback_resume(&g->store, old, sid, a->from, a->to, on_resumed, a) != 0)
        on_resumed(&(struct gate_reply){.err = "eval refused"}, a);
}

/* ---- the outbound leg: /callback-answer, /callback-status ---- */

struct leg {
    struct cg_gate *g;
    struct cg_http_req *req;
    char sid[64];
    char leg[40];
    long long attempt;
    int status; /* the status callback (200 empty), not the answer webhook */
};

static void on_leg_failed(const struct gate_reply *rep, void *arg)
{
    struct leg *l = arg;
    struct cg_gate *g = l->g;
    if (rep->err != NULL) {
        if (l->status)
            cg_http_reply_error(l->req, 503, "unavailable", "state store unavailable; retry later");
        else
            reply_twiml(l->req, cg_twiml_say_hangup(NULL));
        free(l);
        return;
    }
    const char *word = cg_redis_reply_str(rep->r, 0);
    cg_log_info("callback attempt ended without a person", "sid=%s leg=%s attempt=%lld verdict=%s",
                l->sid, l->leg, l->attempt, word ? word : "");
    if (word != NULL && strcmp(word, "failed") == 0)
        count_event(g, "callbacks_failed", 0);
    gate_start_admitted(g, rep->r, 3);
    if (l->status)
        reply_twiml(l->req, cg_twiml_empty());
    else
        reply_twiml(l->req, cg_twiml_say_hangup(g->cfg->callback_machine_message));
    free(l);
}

static void leg_failed(struct leg *l, const char *reason)
{
    struct cg_gate *g = l->g;
    struct gate_callback_outcome o = {
        .sid = l->sid,
        .attempt = l->attempt,
        .leg = l->leg,
        .reason = reason,
        .limit = g->cfg->max_concurrency,
        .batch = 64,
        .lease_ms = (long long)g->cfg->admission_lease_seconds * 1000,
        .instance = g->cfg->instance_id,
    };
    if (gate_store_callback_outcome(&g->store, &o, on_leg_failed, l) != 0)
        on_leg_failed(&(struct gate_reply){.err = "eval refused"}, l);
}

static void on_answered(const struct gate_reply *rep, void *arg)
{
    struct leg *l = arg;
    struct cg_gate *g = l->g;
    if (rep->err == NULL && rep->verdict == GV_ADMIT) {
        cg_log_info("callback answered; the assistant takes the call", "sid=%s leg=%s", l->sid,
                    l->leg);
        count_event(g, "callbacks_connected", 0);
        struct gate_queue_context qc;
        gate_queue_context_at(rep->r, 4, &qc);
        gate_admit_answered(g, l->leg, cg_redis_reply_str(rep->r, 2), &qc, on_arrival_answer,
                            l->req);
    } else if (rep->err == NULL && rep->verdict == GV_EXISTING) {
        /* A repeated answer webhook: the admission in flight pushes the
         * assistant's TwiML by Calls update. */
        reply_twiml(l->req, gate_enqueue_twiml(g));
    } else {
        cg_log_info("callback leg answered for an attempt that is over; hanging up",
                    "sid=%s leg=%s error=%s", l->sid, l->leg, rep->err ? rep->err : "");
        reply_twiml(l->req, cg_twiml_say_hangup(NULL));
    }
    free(l);
}

static struct leg *leg_of(struct cg_gate *g, struct cg_http_req *req, const char **legsid,
                          const struct cg_form **form, int status)
{
    const char *sid;
    long long attempt;
    *form = cg_twhook_check(req, g->cfg, legsid);
    if (*form == NULL || query_of(req, 1, &sid, &attempt) != 0)
        return NULL;
    struct leg *l = cg_calloc(1, sizeof *l);
    l->g = g;
    l->req = req;
    l->attempt = attempt;
    l->status = status;
    snprintf(l->sid, sizeof l->sid, "%s", sid);
    snprintf(l->leg, sizeof l->leg, "%s", *legsid);
    return l;
}

static void handle_answer(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *legsid;
    const struct cg_form *form;
    struct leg *l = leg_of(g, req, &legsid, &form, 0);
    if (l == NULL)
        return;
    const char *reason = "";
    enum gate_callback_leg v = gate_callback_leg(NULL, cg_form_get(form, "AnsweredBy"), &reason);
    if (!gate_redis_ready(g)) {
        /* The reservation's lease settles the attempt. */
        reply_twiml(req, cg_twiml_say_hangup(NULL));
        free(l);
        return;
    }
    if (v == GATE_CB_LEG_FAILED) {
        leg_failed(l, reason);
        return;
    }
    if (gate_store_callback_answered(&g->store, l->sid, l->attempt, l->leg,
                                     (long long)g->cfg->admission_lease_seconds * 1000,
                                     g->cfg->instance_id, on_answered, l) != 0)
        on_answered(&(struct gate_reply){.err = "eval refused"}, l);
}

static void on_leg_ended(enum gate_verdict verdict, void *arg)
{
    struct leg *l = arg;
    if (verdict == GV_NONE)
        cg_http_reply_error(l->req, 503, "unavailable", "state store unavailable; retry later");
    else
        reply_twiml(l->req, cg_twiml_empty());
    free(l);
}

static void handle_status(struct cg_http_req *req, void *arg)
{
    struct cg_gate *g = arg;
    const char *legsid;
    const struct cg_form *form;
    struct leg *l = leg_of(g, req, &legsid, &form, 1);
    if (l == NULL)
        return;
    const char *status = cg_form_get(form, "CallStatus");
    if (status == NULL) {
        cg_http_reply_error(req, 400, "bad_request", "CallStatus is missing");
        free(l);
        return;
    }
    const char *reason = "";
    enum gate_callback_leg v = gate_callback_leg(status, cg_form_get(form, "AnsweredBy"), &reason);
    if (v != GATE_CB_LEG_FAILED && !cg_twilio_status_is_terminal(status)) {
        reply_twiml(req, cg_twiml_empty());
        free(l);
        return;
    }
    if (!gate_redis_ready(g)) {
        cg_http_reply_error(req, 503, "unavailable", "state store unavailable; retry later");
        free(l);
        return;
    }
    if (v == GATE_CB_LEG_FAILED) {
        leg_failed(l, reason);
        return;
    }
    /* The leg was handed to the assistant: it ends as any caller's call. */
    gate_end(g, "twilio", l->leg, status, "twilio-status", on_leg_ended, l);
}

int gate_callback_register(struct cg_httpd *httpd, struct cg_gate *g)
{
    if (g->metrics)
        cg_metrics_declare(g->metrics, "callgate_callbacks_total", CG_COUNTER,
                           "Callback events seen by this instance (offered, accepted, ...).", NULL,
                           0);
    if (cg_httpd_route(httpd, "/callback-keypad", CG_HTTP_POST, handle_keypad, g) != 0 ||
        cg_httpd_route(httpd, "/callback-pending", CG_HTTP_POST, handle_pending, g) != 0 ||
        cg_httpd_route(httpd, "/callback-number", CG_HTTP_POST, handle_number, g) != 0 ||
        cg_httpd_route(httpd, "/callback-number-confirm", CG_HTTP_POST, handle_number_confirm, g) !=
            0 ||
        cg_httpd_route(httpd, "/callback-answer", CG_HTTP_POST, handle_answer, g) != 0 ||
        cg_httpd_route(httpd, "/callback-status", CG_HTTP_POST, handle_status, g) != 0)
        return -1;
    return 0;
}
