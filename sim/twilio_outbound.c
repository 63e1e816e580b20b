/*
 * twilio_outbound.c - the simulated Twilio's outbound calls (Calls create,
 * as callgate places queued callbacks): ringing, then a person, a machine
 * (answering-machine detection: AnsweredBy machine_start), busy, or no
 * answer after the request's Timeout, drawn per dial from the scenario's
 * callbacks knobs. An answered call fetches its Url with AnsweredBy (after
 * detection) and runs the TwiML like any call; every outbound call ends
 * with a status callback to its StatusCallback. The people called are the
 * callers who pressed 1 (callbacks.c); they talk as long as they would
 * have on their first call.
 */
#include "base/fmacros.h"

#include "twilio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/form.h"
#include "base/log.h"
#include "callbacks.h"
#include "net/httpd.h"
#include "scenario.h"
#include "twapi.h"

enum ob_kind { OB_HUMAN, OB_MACHINE, OB_BUSY, OB_NO_ANSWER };

struct ob {
    struct cg_list link; /* the pending ones, for sim_tw_outbound_free */
    struct sim_twilio *tw;
    char sid[35];
    char *url;
    enum ob_kind kind;
    struct event *ev;
};

/* tw->outbound, set up at the first outbound call (the engine is
 * calloc'd). */
static struct cg_list *pending_of(struct sim_twilio *tw)
{
    if (tw->outbound.next == NULL)
        cg_list_init(&tw->outbound);
    return &tw->outbound;
}

static void ob_free(struct ob *o)
{
    cg_list_remove(&o->link);
    if (o->ev)
        event_free(o->ev);
    free(o->url);
    free(o);
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ob *o = arg;
    struct sim_world *w = o->tw->w;
    struct sim_call *c = sim_tw_find_call(o->tw, o->sid);
    if (c != NULL && sim_tw_call_live(c)) {
        switch (o->kind) {
        case OB_HUMAN:
            sim_cb_detected(w, c->sid);
            sim_tw_call_answered(c, o->url, "human");
            break;
        case OB_MACHINE:
            sim_cb_detected(w, c->sid);
            sim_cb_leg_failed(w, c->sid);
            sim_tw_call_answered(c, o->url, "machine_start");
            break;
        case OB_BUSY:
            sim_cb_leg_failed(w, c->sid);
            sim_tw_call_unanswered(c, SIM_CALL_BUSY);
            break;
        case OB_NO_ANSWER:
            sim_cb_leg_failed(w, c->sid);
            sim_tw_call_unanswered(c, SIM_CALL_NO_ANSWER);
            break;
        }
    }
    ob_free(o);
}

/* attempt=<n> in callgate's answer URL; 0 when absent. */
static long attempt_of(const char *url)
{
    const char *p = strstr(url, "attempt=");
    return p ? strtol(p + 8, NULL, 10) : 0;
}

void sim_tw_outbound_create(struct sim_twilio *tw, struct cg_http_req *req)
{
    const struct cg_form *f = cg_http_req_form(req, NULL);
    const char *to = f ? cg_form_get(f, "To") : NULL;
    const char *from = f ? cg_form_get(f, "From") : NULL;
    const char *url = f ? cg_form_get(f, "Url") : NULL;
    if (to == NULL || from == NULL || url == NULL || to[0] == '\0' || url[0] == '\0') {
        sim_api_error(req, 400, 21201, "To, From and Url are required");
        return;
    }
    long timeout = 60;
    const char *t = cg_form_get(f, "Timeout");
    if (t && sim_api_parse_long(t, 1, 600, &timeout) != 0) {
        sim_api_error(req, 400, 21210, "Timeout must be 1 to 600 seconds");
        return;
    }
    struct sim_call *c = sim_tw_call_new(tw, from, to, 1);
    if (c == NULL) {
        sim_api_error(req, 500, 20500, "cannot place the call");
        return;
    }
    const char *sc_url = cg_form_get(f, "StatusCallback");
    c->status_cb = sc_url && sc_url[0] ? cg_strdup(sc_url) : NULL;
    c->duration_s = sim_cb_dialed(tw->w, to, attempt_of(url), c->sid);
    c->patience_s = -1;

    const struct sim_callbacks *k = &tw->w->sc->callbacks;
    double u = sim_cb_unit(tw->w), ring = k->ring_s * (0.5 + sim_cb_unit(tw->w));
    struct ob *o = cg_calloc(1, sizeof *o);
    o->tw = tw;
    snprintf(o->sid, sizeof o->sid, "%s", c->sid);
    o->url = cg_strdup(url);
    if (c->duration_s < 0)
        o->kind = OB_NO_ANSWER; /* nobody there asked for a call */
    else if (u < k->answer)
        o->kind = OB_HUMAN;
    else if (u < k->answer + k->busy)
        o->kind = OB_BUSY;
    else if (u < k->answer + k->busy + k->machine)
        o->kind = OB_MACHINE;
    else
        o->kind = OB_NO_ANSWER;
    double at = o->kind == OB_BUSY ? 0.5 : o->kind == OB_NO_ANSWER ? (double)timeout : ring;
    o->ev = evtimer_new(tw->w->base, on_due, o);
    cg_list_push_back(pending_of(tw), &o->link);
    struct timeval tv = {.tv_sec = (long)at, .tv_usec = (long)((at - (long)at) * 1e6)};
    if (o->ev == NULL || evtimer_add(o->ev, &tv) != 0)
        cg_log_warn("sim twilio: outbound call timer not armed", "call=%s", c->sid);
    cg_log_debug("sim twilio: outbound call", "call=%s to=%s kind=%d at=%f", c->sid, to,
                 (int)o->kind, at);

    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    struct sim_jw j = {&b, 1};
    cg_buf_appendc(&b, '{');
    sim_jw_str(&j, "sid", c->sid);
    sim_jw_str(&j, "status", "queued");
    sim_jw_str(&j, "direction", "outbound-api");
    sim_jw_str(&j, "to", to);
    sim_jw_str(&j, "from", from);
    cg_buf_appendc(&b, '}');
    sim_api_reply_buf(req, 201, &b);
}

void sim_tw_outbound_free(struct sim_twilio *tw)
{
    struct cg_list *l = pending_of(tw);
    while (!cg_list_empty(l))
        ob_free(cg_list_entry(l->next, struct ob, link));
}
