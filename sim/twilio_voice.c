/*
 * twilio_voice.c - the simulated Twilio voice engine: one state machine per
 * inbound call. It fetches TwiML from the gate, executes it verb by verb in
 * real time, runs <Enqueue> with its waitUrl loop and action callbacks,
 * bridges <Connect><Stream> to the simulated Vapi, and sends the completed
 * status callback. Every caller's outcome is reported exactly once.
 *
 * Re-entrancy: sim_hooks_twilio() may call back before it returns; such
 * results are parked and processed from the loop, so a webhook's answer
 * never runs inside the code that sent it.
 */
#include "base/fmacros.h"

#include "twilio.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/form.h"
#include "callbacks.h"
#include "hooks.h"
#include "base/log.h"
#include "rcheck.h"
#include "rng.h"

enum fetch_kind {
    FK_INCOMING, /* the voice webhook: the call's first document */
    FK_MAIN,     /* a document that replaces the call's program */
    FK_WAIT,     /* a waitUrl document */
    FK_NOTIFY,   /* the answer is ignored (status callback, action after the fact) */
};

enum step { CONTINUE, STOP };

struct sim_fetch {
    struct cg_list link;   /* tw->fetches; self-linked once orphaned */
    struct sim_twilio *tw; /* NULL once orphaned by sim_twilio_free() */
    struct sim_call *call;
    unsigned gen;
    enum fetch_kind kind;
    char *url; /* base for relative URLs in the answer */
    const char *what;
    double sent_s;
    int in_send;
    /* A result delivered from inside sim_hooks_twilio(), kept for later. */
    int parked;
    struct event *park_ev;
    long status;
    int dropped;
    char *body;
    size_t body_len;
    char *ctype;
    char *error;
    double est;
};

static void run(struct sim_call *c);

/* ---- small helpers ---- */

static double now_s(const struct sim_twilio *tw)
{
    return sim_now_s(tw->w);
}

static const struct sim_scenario *scen(const struct sim_twilio *tw)
{
    return tw->w->sc;
}

static void count(struct sim_twilio *tw, const char *name)
{
    if (tw->w->report)
        sim_report_count(tw->w->report, name);
}

__attribute__((format(printf, 3, 4))) static void
twiml_error(struct sim_call *c, const char *context, const char *fmt, ...)
{
    char what[300];
    int n = snprintf(what, sizeof(what), "%s: ", context);
    if (n < 0 || (size_t)n >= sizeof(what))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what + n, sizeof(what) - (size_t)n, fmt, ap);
    va_end(ap);
    if (c->tw->w->report)
        sim_report_twiml_error(c->tw->w->report, what);
    cg_log_warn("sim twilio: twiml error", "call=%s what=%s", c->sid, what);
}

static void arm(struct event *ev, double seconds)
{
    if (!(seconds > 0))
        seconds = 0;
    if (seconds > 1e7)
        seconds = 1e7;
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    evtimer_add(ev, &tv);
}

static const char *account_sid(const struct sim_twilio *tw)
{
    const struct sim_scenario *sc = scen(tw);
    return sc && sc->twilio_account_sid ? sc->twilio_account_sid
                                        : "AC00000000000000000000000000000000";
}

static const char *public_url(const struct sim_twilio *tw)
{
    return sim_hooks_public_url(tw->w->hooks);
}

static char *public_path(const struct sim_twilio *tw, const char *path)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appends(&b, public_url(tw));
    cg_buf_appends(&b, path);
    return cg_buf_take(&b);
}

const char *sim_tw_status_name(enum sim_call_status s)
{
    switch (s) {
    case SIM_CALL_RINGING:
        return "ringing";
    case SIM_CALL_IN_PROGRESS:
        return "in-progress";
    case SIM_CALL_COMPLETED:
        return "completed";
    case SIM_CALL_BUSY:
        return "busy";
    case SIM_CALL_CANCELED:
        return "canceled";
    case SIM_CALL_NO_ANSWER:
        return "no-answer";
    }
    return "failed";
}

int sim_tw_call_live(const struct sim_call *c)
{
    return c->status == SIM_CALL_RINGING || c->status == SIM_CALL_IN_PROGRESS;
}

/* Resolves a TwiML URL against the document it came from (RFC 3986 in
 * the forms TwiML uses: absolute, "//host", "/path", "?query", relative). */
static char *resolve(const char *ref, const char *base)
{
    const char *p = ref;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '+' || *p == '-' ||
           *p == '.')
        p++;
    if (p > ref && strncmp(p, "://", 3) == 0)
        return cg_strdup(ref);
    const char *sep = base ? strstr(base, "://") : NULL;
    if (!sep)
        return cg_strdup(ref);
    const char *auth = sep + 3;
    const char *path = auth + strcspn(auth, "/?#");
    size_t keep;
    if (ref[0] == '/' && ref[1] == '/')
        keep = (size_t)(sep + 1 - base); /* "scheme:" */
    else if (ref[0] == '/')
        keep = (size_t)(path - base);
    else if (ref[0] == '?')
        keep = (size_t)(path - base) + strcspn(path, "?#");
    else {
        size_t plen = strcspn(path, "?#");
        const char *slash = NULL;
        for (const char *q = path; q < path + plen; q++)
            if (*q == '/')
                slash = q;
        keep = slash ? (size_t)(slash + 1 - base) : (size_t)(path - base);
        if (!slash) {
            struct cg_buf b;
            cg_buf_init(&b, CG_BUF_UNBOUNDED);
            cg_buf_append(&b, base, keep);
            cg_buf_appendc(&b, '/');
            cg_buf_appends(&b, ref);
            return cg_buf_take(&b);
        }
    }
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_append(&b, base, keep);
    cg_buf_appends(&b, ref);
    return cg_buf_take(&b);
}

/* An attribute URL: NULL or "" (Twilio: nothing to request) -> NULL. */
static char *resolve_opt(const char *ref, const char *base)
{
    return ref && ref[0] ? resolve(ref, base) : NULL;
}

/* The Vapi call id in wss://host/<id>/transport: the first path segment. */
static char *stream_id(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    p += strcspn(p, "/");
    if (*p == '/')
        p++;
    return cg_strndup(p, strcspn(p, "/?#"));
}

/* ---- calls and queues ---- */

static unsigned hash_sid(const char *sid)
{
    uint32_t h = 2166136261u;
    for (; *sid; sid++) {
        h ^= (unsigned char)*sid;
        h *= 16777619u;
    }
    return h % SIM_TWILIO_BUCKETS;
}

struct sim_call *sim_tw_find_call(struct sim_twilio *tw, const char *sid)
{
    if (!tw || !sid)
        return NULL;
    for (struct sim_call *c = tw->buckets[hash_sid(sid)]; c; c = c->hnext)
        if (strcmp(c->sid, sid) == 0)
            return c;
    return NULL;
}

long sim_tw_call_queue_time(const struct sim_call *c)
{
    if (!c->queue)
        return 0;
    double t = now_s(c->tw) - c->enq_s;
    return t > 0 ? (long)t : 0;
}

/* ---- webhooks ---- */

static void std_params(const struct sim_call *c, struct cg_form *f)
{
    cg_form_init(f);
    cg_form_add(f, "CallSid", c->sid);
    cg_form_add(f, "AccountSid", account_sid(c->tw));
    cg_form_add(f, "From", c->from);
    cg_form_add(f, "To", c->to);
    cg_form_add(f, "CallStatus", sim_tw_status_name(c->status));
    cg_form_add(f, "ApiVersion", "2010-04-01");
    cg_form_add(f, "Direction", c->outbound ? "outbound-api" : "inbound");
    if (c->answered_by)
        cg_form_add(f, "AnsweredBy", c->answered_by);
    cg_form_add(f, "Caller", c->from);
    cg_form_add(f, "Called", c->to);
    cg_form_add(f, "FromCountry", "US");
    cg_form_add(f, "ToCountry", "US");
    cg_form_add(f, "CallerCountry", "US");
    cg_form_add(f, "CalledCountry", "US");
}

static void add_long(struct cg_form *f, const char *key, long v)
{
    char s[32];
    snprintf(s, sizeof(s), "%ld", v);
    cg_form_add(f, key, s);
}

static void fetch_unlink(struct sim_fetch *f)
{
    /* An orphaned fetch is already off the list (and self-linked). */
    cg_list_remove(&f->link);
}

static void fetch_free(struct sim_fetch *f)
{
    if (f->park_ev)
        event_free(f->park_ev);
    free(f->url);
    free(f->body);
    free(f->ctype);
    free(f->error);
    free(f);
}

static void fetch_result(struct sim_fetch *f, long status, int dropped, const char *body,
                         size_t body_len, const char *ctype, const char *error, double est);

static void on_parked(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_fetch *f = arg;
    fetch_result(f, f->status, f->dropped, f->body, f->body_len, f->ctype, f->error, f->est);
}

static void on_hook(const struct sim_hook_result *res, void *arg)
{
    struct sim_fetch *f = arg;
    const char *body = res->body ? res->body : "";
    size_t len = res->body ? res->body_len : 0;
    if (f->in_send) {
        f->parked = 1;
        f->status = res->status;
        f->dropped = res->dropped;
        f->body = cg_strndup(body, len);
        f->body_len = len;
        f->ctype = res->content_type ? cg_strdup(res->content_type) : NULL;
        f->error = res->error ? cg_strdup(res->error) : NULL;
        f->est = res->estimated_wait_s;
        return;
    }
    fetch_result(f, res->status, res->dropped, body, len, res->content_type, res->error,
                 res->estimated_wait_s);
}

/* Sends a webhook for c. For TwiML kinds the call enters SIM_PH_FETCH with
 * Twilio's fetch timeout. params is consumed. */
static void send_hook(struct sim_call *c, enum fetch_kind kind, const char *url, const char *method,
                      struct cg_form *params, const struct sim_webhook_faults *faults,
                      const char *what)
{
    struct sim_twilio *tw = c->tw;
    struct sim_fetch *f = cg_calloc(1, sizeof(*f));
    f->tw = tw;
    f->call = c;
    f->gen = c->gen;
    f->kind = kind;
    f->url = cg_strdup(url);
    f->what = what;
    f->sent_s = now_s(tw);
    cg_list_push_front(&tw->fetches, &f->link);
    if (kind != FK_NOTIFY) {
        c->phase = SIM_PH_FETCH;
        c->fetch_kind = (int)kind;
        arm(c->timer, SIM_TWILIO_FETCH_TIMEOUT_S);
    }
    cg_log_debug("sim twilio: webhook", "call=%s what=%s method=%s url=%s", c->sid, what, method,
                 url);
    f->in_send = 1;
    sim_hooks_twilio(tw->w->hooks, method, url, params, faults, on_hook, f);
    f->in_send = 0;
    cg_form_free(params);
    if (f->parked) {
        static const struct timeval zero = {0, 0};
        f->park_ev = evtimer_new(tw->w->base, on_parked, f);
        if (!f->park_ev || evtimer_add(f->park_ev, &zero) != 0)
            on_parked(-1, 0, f); /* no memory for an event: answer now */
    }
}

static void fetch_doc(struct sim_call *c, enum fetch_kind kind, const char *url, const char *method,
                      struct cg_form *params, const char *what)
{
    /* TwiML fetches get no faults: Twilio does not lose its own requests
     * for instructions in practice, and a lost one would only test the
     * simulator. */
    send_hook(c, kind, url, method, params, NULL, what);
}

static void fetch_main(struct sim_call *c, const char *url, const char *method, const char *what)
{
    struct cg_form f;
    std_params(c, &f);
    fetch_doc(c, FK_MAIN, url, method, &f, what);
}

static void queue_params(const struct sim_call *c, struct cg_form *f)
{
    const struct sim_queue *q = c->queue;
    add_long(f, "QueuePosition", (long)sim_tw_queue_position(q, c));
    cg_form_add(f, "QueueSid", q->sid);
    add_long(f, "QueueTime", sim_tw_call_queue_time(c));
    add_long(f, "AvgQueueTime", sim_tw_queue_avg_wait(q));
    add_long(f, "CurrentQueueSize", (long)q->n);
    add_long(f, "MaxQueueSize", q->max_size);
}

static void request_wait(struct sim_call *c, const char *url, const char *method, const char *what)
{
    struct cg_form f;
    std_params(c, &f);
    queue_params(c, &f);
    c->wait_cycle_s = now_s(c->tw);
    fetch_doc(c, FK_WAIT, url, method, &f, what);
}

/* The <Enqueue> action, when its answer does not matter (the call is gone
 * or was redirected): the scenario's webhook faults apply. */
static void notify_action(struct sim_call *c, const char *result, const char *queue_sid,
                          long queue_time)
{
    struct cg_form f;
    std_params(c, &f);
    cg_form_add(&f, "QueueResult", result);
    if (queue_sid) {
        cg_form_add(&f, "QueueSid", queue_sid);
        add_long(&f, "QueueTime", queue_time);
    }
    send_hook(c, FK_NOTIFY, c->enq_action, c->enq_method, &f, &scen(c->tw)->twilio_hooks, "action");
}

static void status_callback(struct sim_call *c)
{
    struct sim_twilio *tw = c->tw;
    struct cg_form f;
    std_params(c, &f);
    long secs = 0;
    if (c->answered_ms && c->ended_ms >= c->answered_ms)
        secs = (long)((c->ended_ms - c->answered_ms + 500) / 1000);
    add_long(&f, "CallDuration", secs);
    /* Billed in whole minutes, at least one once answered. */
    long minutes = c->answered_ms ? (secs + 59) / 60 : 0;
    if (c->answered_ms && minutes == 0)
        minutes = 1;
    add_long(&f, "Duration", minutes);
    char ts[32];
    cg_rfc2822(c->ended_ms, ts);
    cg_form_add(&f, "Timestamp", ts);
    cg_form_add(&f, "CallbackSource", "call-progress-events");
    cg_form_add(&f, "SequenceNumber", "0");
    char *url = c->status_cb ? cg_strdup(c->status_cb) : public_path(tw, "/call-status");
    send_hook(c, FK_NOTIFY, url, "POST", &f, &scen(tw)->twilio_hooks, "status callback");
    free(url);
}

/* ---- outcomes and ends ---- */

static void decide(struct sim_call *c, enum sim_outcome outcome)
{
    if (c->done || outcome == SIM_OUT_NONE)
        return;
    struct sim_twilio *tw = c->tw;
    c->done = 1;
    c->outcome = outcome;
    if (c->outbound || c->cb_pressed) {
        /* The callback's story is callbacks.c's. */
        if (c->outbound && outcome == SIM_OUT_CONNECTED)
            sim_cb_leg_connected(tw->w, c->sid);
        return;
    }
    double now = now_s(tw);
    if (tw->w->report) {
        sim_report_caller_done(tw->w->report, outcome, now - c->arrived_s);
        if (outcome == SIM_OUT_CONNECTED && c->est_have)
            sim_report_estimate(tw->w->report, c->est_s, now - c->est_at_s);
    }
    if (tw->w->rcheck && outcome == SIM_OUT_CONNECTED)
        sim_rcheck_connected(tw->w->rcheck, now, c->sid, now - c->arrived_s);
    cg_log_debug("sim twilio: outcome", "call=%s outcome=%d waited=%f", c->sid, (int)outcome,
                 now - c->arrived_s);
}

/* Takes c out of its queue (bookkeeping only: no callback). */
static void leave_queue(struct sim_call *c)
{
    struct sim_queue *q = c->queue;
    if (!q)
        return;
    struct sim_twilio *tw = c->tw;
    size_t pos = sim_tw_queue_position(q, c);
    if (pos > 0) {
        memmove(&q->members[pos - 1], &q->members[pos], (q->n - pos) * sizeof(*q->members));
        q->n--;
    }
    c->queued_total_s += now_s(tw) - c->enq_s;
    c->queue = NULL;
    c->left_queue = q;
    tw->waiting--;
    sim_cb_line(tw->w, c->sid, c->arrived_s, 0);
    evtimer_del(c->patience);
    sim_twiml_free(&c->wait);
    c->wait_pc = 0;
    c->wait_loaded = 0;
    free(c->wait_doc);
    c->wait_doc = NULL;
    if (tw->w->report)
        sim_report_caller_dequeued(tw->w->report);
    if (tw->w->rcheck)
        sim_rcheck_dequeued(tw->w->rcheck, now_s(tw), c->sid);
}

/* Ends the call. outcome applies if none was decided yet. */
static void complete(struct sim_call *c, enum sim_call_status status, enum sim_outcome outcome)
{
    if (c->phase == SIM_PH_DONE || !sim_tw_call_live(c))
        return;
    struct sim_twilio *tw = c->tw;
    enum sim_call_phase was = c->phase;
    c->gen++;
    evtimer_del(c->timer);
    evtimer_del(c->patience);
    c->phase = SIM_PH_DONE;
    c->status = status;
    c->ended_ms = cg_wall_ms();
    c->ended_s = now_s(tw);
    tw->live--;
    decide(c, outcome);
    if (was == SIM_PH_TALK && c->talk_kind == SIM_TALK_STREAM && c->vapi_id) {
        char *id = c->vapi_id;
        c->vapi_id = NULL;
        sim_vapi_stream_closed(tw->w, id);
        free(id);
    }
    if (c->queue) {
        struct sim_queue *q = c->queue;
        long qt = sim_tw_call_queue_time(c);
        leave_queue(c);
        if (c->enq_action)
            notify_action(c, "hangup", q->sid, qt);
    }
    cg_log_debug("sim twilio: call ended", "call=%s status=%s", c->sid, sim_tw_status_name(status));
    status_callback(c);
    sim_twiml_free(&c->main);
    c->main_pc = 0;
}

static void answer(struct sim_call *c)
{
    if (c->status != SIM_CALL_RINGING)
        return;
    c->status = SIM_CALL_IN_PROGRESS;
    c->answered_ms = cg_wall_ms();
}

/* Twilio's "an application error has occurred": the call ends. */
static void app_error(struct sim_call *c)
{
    complete(c, SIM_CALL_COMPLETED, SIM_OUT_LOST);
}

/* Leaves the queue with a QueueResult the app must hear about and
 * continues with the action's document, or with the next verb. */
static enum step leave_with_result(struct sim_call *c, const char *result)
{
    struct sim_queue *q = c->queue;
    long qt = sim_tw_call_queue_time(c);
    char qsid[35];
    snprintf(qsid, sizeof(qsid), "%s", q->sid);
    leave_queue(c);
    if (!c->enq_action)
        return CONTINUE;
    struct cg_form f;
    std_params(c, &f);
    cg_form_add(&f, "QueueResult", result);
    cg_form_add(&f, "QueueSid", qsid);
    add_long(&f, "QueueTime", qt);
    fetch_doc(c, FK_MAIN, c->enq_action, c->enq_method, &f, "action");
    return STOP;
}

static void queue_error(struct sim_call *c)
{
    if (!c->queue)
        return;
    count(c->tw, "twilio.queue_result_error");
    if (leave_with_result(c, "error") == CONTINUE)
        run(c);
}

/* ---- documents ---- */

static void set_main(struct sim_call *c, struct sim_twiml *doc, char *url)
{
    sim_twiml_free(&c->main);
    c->main = *doc;
    c->main_pc = 0;
    free(c->main_doc);
    c->main_doc = url;
    c->main_said = 0;
}

static int wait_verb_allowed(enum sim_twiml_kind k)
{
    return k == SIM_TW_PLAY || k == SIM_TW_SAY || k == SIM_TW_PAUSE || k == SIM_TW_HANGUP ||
           k == SIM_TW_REDIRECT || k == SIM_TW_LEAVE || k == SIM_TW_GATHER;
}

static int xml_type(const char *ctype)
{
    static const char *const ok[] = {"text/xml", "application/xml", "text/html"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n = strlen(ok[i]);
        if (strncasecmp(ctype, ok[i], n) == 0 && (ctype[n] == '\0' || ctype[n] == ';'))
            return 1;
    }
    return 0;
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case FK_INCOMING:
        return "incoming";
    case FK_WAIT:
        return "waitUrl";
    default:
        return "document";
    }
}

static void fetch_failed(struct sim_call *c, int kind)
{
    if (kind == FK_WAIT)
        queue_error(c);
    else
        app_error(c);
}

static void fetch_result(struct sim_fetch *f, long status, int dropped, const char *body,
                         size_t body_len, const char *ctype, const char *error, double est)
{
    struct sim_twilio *tw = f->tw;
    struct sim_call *c = f->call;
    fetch_unlink(f);
    if (!tw) {
        fetch_free(f);
        return;
    }
    if (f->kind == FK_NOTIFY) {
        if (!dropped && (status < 200 || status > 299)) {
            count(tw, "twilio.webhook_not_2xx");
            cg_log_warn("sim twilio: webhook refused", "call=%s what=%s status=%ld error=%s",
                        c->sid, f->what, status, error ? error : "");
        }
        fetch_free(f);
        return;
    }
    if (tw->finished || c->phase == SIM_PH_DONE || f->gen != c->gen) {
        fetch_free(f);
        return;
    }
    evtimer_del(c->timer);
    c->phase = SIM_PH_IDLE;
    enum fetch_kind kind = f->kind;
    char *url = f->url;
    f->url = NULL;
    double sent_s = f->sent_s;
    const char *what = f->what;

    struct sim_twiml doc = {NULL, 0};
    char err[200];
    int ok = 0;
    if (status < 200 || status > 299) {
        if (status == 0)
            snprintf(err, sizeof(err), "%s", error ? error : (dropped ? "dropped" : "no answer"));
        else
            snprintf(err, sizeof(err), "HTTP %ld", status);
    } else if (ctype && !xml_type(ctype)) {
        snprintf(err, sizeof(err), "Content-Type %.60s is not TwiML", ctype);
    } else if (sim_twiml_parse(body, body_len, &doc, err, sizeof(err)) == 0) {
        ok = 1;
        if (!ctype)
            count(tw, "twilio.twiml_without_content_type");
    }
    if (!ok) {
        twiml_error(c, what, "%s: %s", url, err);
        free(url);
        fetch_free(f);
        fetch_failed(c, kind);
        return;
    }
    fetch_free(f);

    switch (kind) {
    case FK_INCOMING:
        if (doc.n == 0 || doc.verbs[0].kind != SIM_TW_REJECT)
            answer(c);
        set_main(c, &doc, url);
        run(c);
        return;
    case FK_MAIN:
        set_main(c, &doc, url);
        run(c);
        return;
    case FK_WAIT:
        break;
    case FK_NOTIFY:
    default:
        sim_twiml_free(&doc);
        free(url);
        return;
    }
    if (!c->queue) {
        /* Not reachable (leaving the queue bumps the generation), but
         * never leave a call stalled. */
        sim_twiml_free(&doc);
        free(url);
        run(c);
        return;
    }
    if (c->cb_pressing) {
        /* The keypad's answer: <Leave> confirms the callback. */
        c->cb_pressing = 0;
        for (size_t i = 0; i < doc.n && !c->cb_pressed; i++)
            c->cb_pressed = doc.verbs[i].kind == SIM_TW_LEAVE;
        if (c->cb_pressed)
            sim_cb_pressed(tw->w, c->from, c->sid, c->arrived_s, est, c->duration_s);
    }
    /* The confirmation of a callback gives the time promised (a bound),
     * not the wait announced: callbacks.c measures it. */
    if (est >= 0 && !c->cb_pressed) {
        if (tw->w->report)
            sim_report_announced(tw->w->report, est);
        if (!c->est_have) {
            c->est_have = 1;
            c->est_s = est;
            c->est_at_s = sent_s;
        }
    }
    for (size_t i = 0; i < doc.n; i++) {
        if (!wait_verb_allowed(doc.verbs[i].kind)) {
            twiml_error(c, what, "%s: <%s> is not allowed in a waitUrl document", url,
                        sim_twiml_kind_name(doc.verbs[i].kind));
            sim_twiml_free(&doc);
            free(url);
            queue_error(c);
            return;
        }
    }
    sim_twiml_free(&c->wait);
    c->wait = doc;
    c->wait_pc = 0;
    c->wait_loaded = 1;
    c->wait_said = 0;
    free(c->wait_doc);
    c->wait_doc = url;
    if (doc.n == 0)
        count(tw, "twilio.waiturl_empty");
    run(c);
}

/* ---- verbs ---- */

static enum step timed(struct sim_call *c, double seconds)
{
    c->phase = SIM_PH_VERB;
    arm(c->timer, seconds);
    return STOP;
}

static double loops(const struct sim_twiml_verb *v)
{
    /* loop="0" is "until hung up"; Twilio stops after 1000 rounds. */
    return v->loop == 0 ? 1000.0 : (double)v->loop;
}

static double say_seconds(const struct sim_twilio *tw, const struct sim_twiml_verb *v)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)v->text; p && *p; p++)
        if ((*p & 0xC0) != 0x80)
            chars++;
    return (double)chars * scen(tw)->say_s_per_char * loops(v);
}

static enum step enqueue(struct sim_call *c, const struct sim_twiml_verb *v)
{
    struct sim_twilio *tw = c->tw;
    const struct sim_scenario *sc = scen(tw);
    struct sim_queue *q = sim_tw_queue_by_name(tw, v->text);
    if (!q) {
        int max = v->max_queue_size > 0 ? v->max_queue_size : sc->queue_max_size;
        if (max <= 0)
            max = SIM_TWILIO_DEFAULT_QUEUE_MAX;
        if (max > SIM_TWILIO_MAX_QUEUE_SIZE)
            max = SIM_TWILIO_MAX_QUEUE_SIZE;
        q = sim_tw_queue_create(tw, v->text, max);
    }
    free(c->enq_action);
    free(c->enq_wait_url);
    c->enq_action = resolve_opt(v->action, c->main_doc);
    c->enq_method = v->method;
    c->enq_wait_url =
        v->wait_url ? (v->wait_url[0] ? resolve(v->wait_url, c->main_doc) : cg_strdup("")) : NULL;
    c->enq_wait_method = v->wait_url_method;
    snprintf(c->queue_sid, sizeof(c->queue_sid), "%s", q->sid);
    /* What was said before <Enqueue> is a greeting, not an overflow message. */
    c->main_said = 0;
    if (q->n >= (size_t)q->max_size) {
        count(tw, "twilio.queue_full");
        if (!c->enq_action)
            return CONTINUE;
        struct cg_form f;
        std_params(c, &f);
        cg_form_add(&f, "QueueResult", "queue-full");
        fetch_doc(c, FK_MAIN, c->enq_action, c->enq_method, &f, "action");
        return STOP;
    }
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->members = cg_realloc(q->members, q->cap * sizeof(*q->members));
    }
    q->members[q->n++] = c;
    c->queue = q;
    c->enq_s = now_s(tw);
    c->enq_ms = cg_wall_ms();
    tw->waiting++;
    sim_cb_line(tw->w, c->sid, c->arrived_s, 1);
    if (tw->w->report)
        sim_report_caller_enqueued(tw->w->report);
    if (tw->w->rcheck)
        sim_rcheck_enqueued(tw->w->rcheck, now_s(tw), c->sid, c->to, c->from, q->name,
                            c->arrived_s);
    if (c->patience_s >= 0)
        arm(c->patience, c->patience_s - c->queued_total_s);
    c->wait_loaded = 0;
    c->wait_pc = 0;
    if (c->enq_wait_url && c->enq_wait_url[0]) {
        request_wait(c, c->enq_wait_url, c->enq_wait_method, "waitUrl");
    } else {
        /* Twilio's default hold music, or silence: nothing to fetch. */
        c->phase = SIM_PH_HOLD;
    }
    return STOP;
}

static enum step connect_stream(struct sim_call *c, const struct sim_twiml_verb *v)
{
    struct sim_twilio *tw = c->tw;
    if (sim_vapi_stream_connect(tw->w, v->text, c->sid) != 0) {
        count(tw, "twilio.stream_connect_failed");
        cg_log_warn("sim twilio: stream refused", "call=%s url=%s", c->sid, v->text);
        return CONTINUE;
    }
    free(c->vapi_id);
    c->vapi_id = stream_id(v->text);
    free(c->talk_action);
    c->talk_action = resolve_opt(v->action, c->main_doc);
    c->talk_method = v->method;
    decide(c, SIM_OUT_CONNECTED);
    c->bridged = 1;
    c->phase = SIM_PH_TALK;
    c->talk_kind = SIM_TALK_STREAM;
    c->talk_start_s = now_s(tw);
    arm(c->timer, c->duration_s - c->talked_s);
    return STOP;
}

static enum step overflow_talk(struct sim_call *c, const struct sim_twiml_verb *v,
                               enum sim_talk_kind kind)
{
    struct sim_twilio *tw = c->tw;
    count(tw, kind == SIM_TALK_DIAL ? "twilio.overflow_dial" : "twilio.overflow_voicemail");
    decide(c, SIM_OUT_OVERFLOW);
    free(c->talk_action);
    c->talk_action = resolve_opt(v->action, c->main_doc);
    c->talk_method = v->method;
    c->phase = SIM_PH_TALK;
    c->talk_kind = kind;
    c->talk_start_s = now_s(tw);
    double secs =
        kind == SIM_TALK_DIAL ? c->duration_s - c->talked_s : fmin(v->seconds, SIM_TWILIO_RECORD_S);
    arm(c->timer, secs);
    return STOP;
}

/* ---- transfers: the assistant handed its caller on (call control) ---- */

/* <Dial> after the caller talked with an assistant: the person answers
 * after transfers.answer_s and talks transfers.talk_s, then the caller
 * hangs up. The scenario's no-answer number rings out: the Dial action
 * says so, and its answer is what the caller hears next. */
static enum step transfer_dial(struct sim_call *c, const struct sim_twiml_verb *v)
{
    struct sim_twilio *tw = c->tw;
    const struct sim_transfers *t = &scen(tw)->transfers;
    if (!v->sip && t->no_answer_number && strcmp(v->text, t->no_answer_number) == 0) {
        count(tw, "transfers.no_answer");
        char *url = resolve_opt(v->action, c->main_doc);
        if (url == NULL)
            return CONTINUE;
        struct cg_form f;
        std_params(c, &f);
        cg_form_add(&f, "DialCallStatus", "no-answer");
        fetch_doc(c, FK_MAIN, url, v->method, &f, "Dial action");
        free(url);
        return STOP;
    }
    count(tw, v->sip ? "transfers.reached.sip" : "transfers.reached.number");
    free(c->talk_action);
    c->talk_action = resolve_opt(v->action, c->main_doc);
    c->talk_method = v->method;
    c->phase = SIM_PH_TALK;
    c->talk_kind = SIM_TALK_DIAL;
    c->talk_start_s = now_s(tw);
    arm(c->timer, t->answer_s + t->talk_s);
    return STOP;
}

/* <Enqueue workflowSid>: the caller becomes a TaskRouter task. Its
 * attributes must name the Vapi call; the hold answer (waitUrl) is asked
 * for once; an agent answers after transfers.answer_s and talks
 * transfers.talk_s. */
static enum step handoff(struct sim_call *c, const struct sim_twiml_verb *v)
{
    struct sim_twilio *tw = c->tw;
    const struct sim_transfers *t = &scen(tw)->transfers;
    count(tw, "transfers.reached.queue");
    json_t *attrs = json_loads(v->text ? v->text : "", 0, NULL);
    if (!json_is_string(json_object_get(attrs, "vapiCallId")) ||
        !json_is_integer(json_object_get(attrs, "waitSoFarSeconds")))
        count(tw, "transfers.task_bad_attributes");
    json_decref(attrs);
    if (v->wait_url && v->wait_url[0]) {
        char *url = resolve(v->wait_url, c->main_doc);
        struct cg_form f;
        std_params(c, &f);
        send_hook(c, FK_NOTIFY, url, v->wait_url_method, &f, NULL, "TaskRouter waitUrl");
        free(url);
    }
    free(c->talk_action);
    c->talk_action = resolve_opt(v->action, c->main_doc);
    c->talk_method = v->method;
    c->phase = SIM_PH_TALK;
    c->talk_kind = SIM_TALK_TASK;
    c->talk_start_s = now_s(tw);
    arm(c->timer, t->answer_s + t->talk_s);
    return STOP;
}

/* The caller hangs up at the end of a conversation, a dial or a message. */
static void talk_over(struct sim_call *c)
{
    struct sim_twilio *tw = c->tw;
    enum sim_talk_kind kind = c->talk_kind;
    double talked = now_s(tw) - c->talk_start_s;
    c->talked_s += talked;
    char *action = c->talk_action;
    c->talk_action = NULL;
    const char *method = c->talk_method;
    complete(c, SIM_CALL_COMPLETED, SIM_OUT_LOST);
    if (action && kind != SIM_TALK_STREAM) {
        /* Twilio still requests the action; nobody hears its answer. */
        struct cg_form f;
        std_params(c, &f);
        if (kind == SIM_TALK_DIAL) {
            cg_form_add(&f, "DialCallStatus", "completed");
            add_long(&f, "DialCallDuration", (long)talked);
        } else if (kind == SIM_TALK_TASK) {
            cg_form_add(&f, "QueueResult", "bridged");
        } else {
            char sid[35] = "RE";
            sim_rng_hex(tw->sid_rng, sid + 2, 32);
            char *rec = public_path(tw, "/sim/recordings/");
            struct cg_buf b;
            cg_buf_init(&b, CG_BUF_UNBOUNDED);
            cg_buf_printf(&b, "%s%s", rec, sid);
            free(rec);
            cg_form_add(&f, "RecordingUrl", cg_buf_str(&b));
            cg_buf_free(&b);
            cg_form_add(&f, "RecordingSid", sid);
            add_long(&f, "RecordingDuration", (long)talked);
            cg_form_add(&f, "Digits", "hangup");
        }
        send_hook(c, FK_NOTIFY, action, method, &f, NULL, "action");
    }
    free(action);
}

static enum step exec_main(struct sim_call *c, const struct sim_twiml_verb *v)
{
    struct sim_twilio *tw = c->tw;
    switch (v->kind) {
    case SIM_TW_SAY:
        c->main_said = 1;
        return timed(c, say_seconds(tw, v));
    case SIM_TW_PLAY:
        return timed(c, scen(tw)->play_s * loops(v));
    case SIM_TW_PAUSE:
    case SIM_TW_GATHER:
        return timed(c, v->seconds);
    case SIM_TW_REDIRECT: {
        char *url = resolve(v->text, c->main_doc);
        fetch_main(c, url, v->method, "Redirect");
        free(url);
        return STOP;
    }
    case SIM_TW_HANGUP:
        complete(c, SIM_CALL_COMPLETED, c->main_said ? SIM_OUT_OVERFLOW : SIM_OUT_LOST);
        return STOP;
    case SIM_TW_REJECT:
        if (c->status == SIM_CALL_RINGING)
            complete(c, SIM_CALL_BUSY, SIM_OUT_LOST);
        else
            complete(c, SIM_CALL_COMPLETED, c->main_said ? SIM_OUT_OVERFLOW : SIM_OUT_LOST);
        return STOP;
    case SIM_TW_LEAVE:
        /* Twilio ignores <Leave> outside a waitUrl document. */
        count(tw, "twilio.leave_outside_queue");
        return CONTINUE;
    case SIM_TW_ENQUEUE:
        return v->workflow_sid ? handoff(c, v) : enqueue(c, v);
    case SIM_TW_CONNECT_STREAM:
        return connect_stream(c, v);
    case SIM_TW_DIAL:
        return c->bridged ? transfer_dial(c, v) : overflow_talk(c, v, SIM_TALK_DIAL);
    case SIM_TW_RECORD:
        return overflow_talk(c, v, SIM_TALK_RECORD);
    }
    return CONTINUE;
}

/* The callback offer (a <Gather> to /callback-keypad): the caller draws
 * once whether they take callbacks, and presses 1 at the first offer. */
static int press_for_callback(struct sim_call *c, const struct sim_twiml_verb *v)
{
    double p = scen(c->tw)->callbacks.press1;
    if (p <= 0 || !v->action || !strstr(v->action, "/callback-keypad") || c->cb_roll == 2)
        return 0;
    if (c->cb_roll == 0)
        c->cb_roll = sim_cb_unit(c->tw->w) < p ? 1 : 2;
    if (c->cb_roll != 1)
        return 0;
    struct cg_form f;
    std_params(c, &f);
    queue_params(c, &f);
    cg_form_add(&f, "Digits", "1");
    char *url = resolve(v->action, c->wait_doc);
    c->cb_pressing = 1;
    fetch_doc(c, FK_WAIT, url, v->method, &f, "Gather action");
    free(url);
    return 1;
}

static enum step exec_wait(struct sim_call *c, const struct sim_twiml_verb *v)
{
    struct sim_twilio *tw = c->tw;
    if (v->kind == SIM_TW_GATHER && press_for_callback(c, v))
        return STOP;
    switch (v->kind) {
    case SIM_TW_SAY:
        c->wait_said = 1;
        return timed(c, say_seconds(tw, v));
    case SIM_TW_PLAY:
        return timed(c, scen(tw)->play_s * loops(v));
    case SIM_TW_PAUSE:
    case SIM_TW_GATHER:
        return timed(c, v->seconds);
    case SIM_TW_REDIRECT: {
        char *url = resolve(v->text, c->wait_doc);
        request_wait(c, url, v->method, "waitUrl Redirect");
        free(url);
        return STOP;
    }
    case SIM_TW_HANGUP:
        /* The app ends the call from the hold loop: an overflow if it gave
         * a message first, else the caller is simply dropped. */
        complete(c, SIM_CALL_COMPLETED, c->wait_said ? SIM_OUT_OVERFLOW : SIM_OUT_LOST);
        return STOP;
    case SIM_TW_LEAVE:
        return leave_with_result(c, "leave");
    default:
        /* Refused when the document arrived. */
        return CONTINUE;
    }
}

/* The waitUrl document ran out: request it again. */
static void wait_cycle_end(struct sim_call *c)
{
    if (!c->enq_wait_url || !c->enq_wait_url[0]) {
        c->phase = SIM_PH_HOLD;
        return;
    }
    double since = now_s(c->tw) - c->wait_cycle_s;
    if (c->wait_loaded && since < SIM_TWILIO_MIN_WAIT_CYCLE_S) {
        c->phase = SIM_PH_HOLD;
        arm(c->timer, SIM_TWILIO_MIN_WAIT_CYCLE_S - since);
        return;
    }
    request_wait(c, c->enq_wait_url, c->enq_wait_method, "waitUrl");
}

static void run(struct sim_call *c)
{
    while (c->phase != SIM_PH_DONE && !c->tw->finished) {
        c->phase = SIM_PH_IDLE;
        enum step s;
        if (c->queue) {
            if (!c->wait_loaded || c->wait_pc >= c->wait.n) {
                wait_cycle_end(c);
                return;
            }
            s = exec_wait(c, &c->wait.verbs[c->wait_pc++]);
        } else {
            if (c->main_pc >= c->main.n) {
                /* Twilio hangs up when the TwiML runs out. */
                complete(c, SIM_CALL_COMPLETED, c->main_said ? SIM_OUT_OVERFLOW : SIM_OUT_LOST);
                return;
            }
            s = exec_main(c, &c->main.verbs[c->main_pc++]);
        }
        if (s == STOP)
            return;
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_call *c = arg;
    if (c->tw->finished)
        return;
    switch (c->phase) {
    case SIM_PH_FETCH:
        /* Whatever answers later belongs to a request Twilio gave up on. */
        c->gen++;
        c->phase = SIM_PH_IDLE;
        twiml_error(c, kind_name(c->fetch_kind), "no answer within %.0f s",
                    SIM_TWILIO_FETCH_TIMEOUT_S);
        fetch_failed(c, c->fetch_kind);
        break;
    case SIM_PH_VERB:
        c->phase = SIM_PH_IDLE;
        run(c);
        break;
    case SIM_PH_TALK:
        talk_over(c);
        break;
    case SIM_PH_HOLD:
        c->phase = SIM_PH_IDLE;
        if (c->queue && c->enq_wait_url && c->enq_wait_url[0])
            request_wait(c, c->enq_wait_url, c->enq_wait_method, "waitUrl");
        break;
    case SIM_PH_IDLE:
    case SIM_PH_DONE:
        break;
    }
}

static void on_patience(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_call *c = arg;
    if (c->tw->finished || !c->queue)
        return;
    count(c->tw, "twilio.caller_gave_up");
    complete(c, SIM_CALL_COMPLETED, SIM_OUT_ABANDONED);
}

/* ---- REST-driven changes ---- */

/* Stops whatever c is doing, for a REST redirect. */
static void interrupt(struct sim_call *c)
{
    struct sim_twilio *tw = c->tw;
    enum sim_call_phase was = c->phase;
    c->gen++;
    evtimer_del(c->timer);
    c->phase = SIM_PH_IDLE;
    if (was == SIM_PH_TALK) {
        c->talked_s += now_s(tw) - c->talk_start_s;
        if (c->talk_kind == SIM_TALK_STREAM && c->vapi_id) {
            char *id = c->vapi_id;
            c->vapi_id = NULL;
            sim_vapi_stream_closed(tw->w, id);
            free(id);
        }
    }
    free(c->talk_action);
    c->talk_action = NULL;
    if (c->queue) {
        char qsid[35];
        snprintf(qsid, sizeof(qsid), "%s", c->queue->sid);
        long qt = sim_tw_call_queue_time(c);
        leave_queue(c);
        if (scen(tw)->redirect_posts_action && c->enq_action)
            notify_action(c, "redirected", qsid, qt);
    }
}

int sim_tw_call_redirect(struct sim_twilio *tw, struct sim_call *c, const char *twiml,
                         size_t twiml_len, const char *url, const char *method)
{
    if (tw->finished || !sim_tw_call_live(c) || c->phase == SIM_PH_DONE)
        return -1;
    interrupt(c);
    answer(c);
    if (twiml) {
        struct sim_twiml doc;
        char err[200];
        if (sim_twiml_parse(twiml, twiml_len, &doc, err, sizeof(err)) < 0) {
            twiml_error(c, "REST Twiml", "%s", err);
            app_error(c);
            return 0;
        }
        char *base = public_path(tw, "/");
        set_main(c, &doc, base);
        run(c);
        return 0;
    }
    fetch_main(c, url, method ? method : "POST", "REST Url");
    return 0;
}

int sim_tw_call_end(struct sim_twilio *tw, struct sim_call *c, int canceled)
{
    if (tw->finished || !sim_tw_call_live(c) || c->phase == SIM_PH_DONE)
        return 0;
    if (canceled) {
        /* canceled only affects calls that are not answered yet. */
        if (c->status != SIM_CALL_RINGING)
            return 0;
        complete(c, SIM_CALL_CANCELED, SIM_OUT_LOST);
        return 1;
    }
    complete(c, SIM_CALL_COMPLETED, c->main_said ? SIM_OUT_OVERFLOW : SIM_OUT_LOST);
    return 1;
}

/* ---- the engine's life (twilio.c) ---- */

struct sim_twilio *sim_tw_engine_new(struct sim_world *w)
{
    struct sim_twilio *tw = cg_calloc(1, sizeof(*tw));
    tw->w = w;
    uint64_t seed = w->sc ? (uint64_t)w->sc->seed : 0;
    tw->sid_rng = sim_rng_new(seed ^ 0x51554555455349ULL);
    cg_list_init(&tw->calls);
    cg_list_init(&tw->queues);
    cg_list_init(&tw->fetches);
    cg_list_init(&tw->rest);
    return tw;
}

static void call_free(struct sim_call *c)
{
    if (c->timer)
        event_free(c->timer);
    if (c->patience)
        event_free(c->patience);
    sim_twiml_free(&c->main);
    sim_twiml_free(&c->wait);
    free(c->main_doc);
    free(c->wait_doc);
    free(c->enq_action);
    free(c->enq_wait_url);
    free(c->vapi_id);
    free(c->talk_action);
    free(c->from);
    free(c->to);
    free(c->status_cb);
    free(c);
}

void sim_tw_engine_free(struct sim_twilio *tw)
{
    /* Webhooks still in flight: once the hooks are gone (w->hooks NULL)
     * nothing will call back, so their state goes now; otherwise they call
     * back into nothing and free themselves. */
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &tw->fetches) {
        struct sim_fetch *f = cg_list_entry(it, struct sim_fetch, link);
        cg_list_remove(&f->link);
        f->tw = NULL;
        f->call = NULL;
        if (!tw->w->hooks || f->parked)
            fetch_free(f);
    }
    cg_list_foreach_safe (it, tmp, &tw->calls) {
        call_free(sim_tw_call_of(it));
    }
    cg_list_foreach_safe (it, tmp, &tw->queues) {
        sim_tw_queue_free(sim_tw_queue_of(it));
    }
    sim_rng_free(tw->sid_rng);
    free(tw);
}

/* ---- sim.h ---- */

struct sim_call *sim_tw_call_new(struct sim_twilio *tw, const char *from, const char *to,
                                 int outbound)
{
    struct sim_world *w = tw->w;
    struct sim_call *c = cg_calloc(1, sizeof(*c));
    c->tw = tw;
    c->outbound = outbound;
    c->sid[0] = 'C';
    c->sid[1] = 'A';
    sim_rng_hex(c->outbound ? tw->sid_rng : w->rng, c->sid + 2, 32);
    c->from = cg_strdup(from ? from : "+15550000000");
    c->to = cg_strdup(to ? to : SIM_TWILIO_TO);
    c->status = SIM_CALL_RINGING;
    c->created_ms = cg_wall_ms();
    c->arrived_s = now_s(tw);
    c->outcome = SIM_OUT_NONE;
    c->timer = evtimer_new(w->base, on_timer, c);
    c->patience = evtimer_new(w->base, on_patience, c);
    if (!c->timer || !c->patience) {
        call_free(c);
        return NULL;
    }
    unsigned h = hash_sid(c->sid);
    c->hnext = tw->buckets[h];
    tw->buckets[h] = c;
    cg_list_push_back(&tw->calls, &c->link_all);
    tw->ncalls++;
    tw->live++;
    return c;
}

void sim_tw_call_answered(struct sim_call *c, const char *url, const char *answered_by)
{
    if (!sim_tw_call_live(c) || c->phase == SIM_PH_DONE)
        return;
    answer(c);
    c->answered_by = answered_by;
    fetch_main(c, url, "POST", "callback answer");
}

void sim_tw_call_unanswered(struct sim_call *c, enum sim_call_status status)
{
    complete(c, status, SIM_OUT_NONE);
}

struct sim_call *sim_twilio_new_call(struct sim_world *w, const char *from, double duration_s,
                                     double patience_s)
{
    return sim_twilio_new_call_to(w, from, NULL, duration_s, patience_s);
}

struct sim_call *sim_twilio_new_call_to(struct sim_world *w, const char *from, const char *to,
                                        double duration_s, double patience_s)
{
    struct sim_twilio *tw = w->twilio;
    if (!tw || tw->finished)
        return NULL;
    struct sim_call *c = sim_tw_call_new(tw, from, to ? to : SIM_TWILIO_TO, 0);
    if (!c)
        return NULL;
    if (w->rcheck)
        sim_rcheck_arrived(w->rcheck, c->arrived_s, c->sid, c->to, c->from);
    c->duration_s = duration_s;
    c->patience_s = patience_s;
    struct cg_form f;
    std_params(c, &f);
    char *url = public_path(tw, "/incoming");
    fetch_doc(c, FK_INCOMING, url, "POST", &f, "incoming");
    free(url);
    return c;
}

void sim_twilio_stream_ended(struct sim_world *w, const char *call_sid)
{
    struct sim_twilio *tw = w->twilio;
    struct sim_call *c = sim_tw_find_call(tw, call_sid);
    if (!c || tw->finished || c->phase != SIM_PH_TALK || c->talk_kind != SIM_TALK_STREAM) {
        if (tw)
            count(tw, "twilio.stream_ended_unbridged");
        return;
    }
    evtimer_del(c->timer);
    c->gen++;
    c->talked_s += now_s(tw) - c->talk_start_s;
    free(c->vapi_id);
    c->vapi_id = NULL;
    c->phase = SIM_PH_IDLE;
    char *action = c->talk_action;
    c->talk_action = NULL;
    if (action) {
        /* <Connect action> is requested when the stream ends. */
        fetch_main(c, action, c->talk_method, "Connect action");
        free(action);
        return;
    }
    run(c);
}

size_t sim_twilio_waiting(const struct sim_world *w)
{
    return w->twilio ? w->twilio->waiting : 0;
}

size_t sim_twilio_live(const struct sim_world *w)
{
    return w->twilio ? w->twilio->live : 0;
}

void sim_twilio_finish(struct sim_world *w)
{
    struct sim_twilio *tw = w->twilio;
    if (!tw || tw->finished)
        return;
    for (struct cg_list *it = tw->calls.next; it != &tw->calls; it = it->next) {
        struct sim_call *c = sim_tw_call_of(it);
        if (c->phase == SIM_PH_DONE || !sim_tw_call_live(c))
            continue;
        c->gen++;
        evtimer_del(c->timer);
        evtimer_del(c->patience);
        if (c->queue)
            leave_queue(c);
        if (!c->done)
            count(tw, "twilio.unfinished_at_end");
        decide(c, SIM_OUT_LOST);
    }
    tw->finished = 1;
}

const char *sim_twilio_queue_sid(struct sim_world *w, const char *friendly_name)
{
    struct sim_twilio *tw = w->twilio;
    if (!tw || !friendly_name || !friendly_name[0] || strlen(friendly_name) > 64)
        return NULL;
    struct sim_queue *q = sim_tw_queue_by_name(tw, friendly_name);
    if (!q) {
        int max = w->sc && w->sc->queue_max_size > 0 ? w->sc->queue_max_size
                                                     : SIM_TWILIO_DEFAULT_QUEUE_MAX;
        if (max > SIM_TWILIO_MAX_QUEUE_SIZE)
            max = SIM_TWILIO_MAX_QUEUE_SIZE;
        q = sim_tw_queue_create(tw, friendly_name, max);
    }
    return q->sid;
}
