/*
 * callbacks.c - the truth of queued callbacks and their invariants
 * (callbacks.h).
 */
#include "base/fmacros.h"

#include "callbacks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "report.h"
#include "rng.h"
#include "scenario.h"
#include "sim.h"

/* Callers who arrived this much earlier than a callback still waiting on
 * the line when it is dialled break its order (tickets are taken at the
 * gate, a few milliseconds after arrival, in any order within that). */
#define ORDER_SLACK_S 1.0
#define MAX_ATTEMPTS  32

enum cb_state { CB_PENDING, CB_CONNECTED, CB_FAILED };

struct cb_entry {
    char *number;
    char *sid;
    double arrived_s, pressed_s, est_s, duration_s;
    enum cb_state state;
    unsigned dialled; /* bit a-1: attempt a dialled */
    long dials, failures;
    double connected_s;
};

struct cb_leg {
    char *leg;
    size_t entry;
    int detected;
};

struct cb_line {
    char *sid;
    double arrived_s;
};

struct sim_callbacks_truth {
    struct sim_world *w;
    struct sim_rng *rng;
    struct cb_entry *e;
    size_t n, cap;
    struct cb_leg *legs;
    size_t nlegs, legcap;
    struct cb_line *line; /* callers waiting on the line now */
    size_t nline, linecap;
    long twice, out_of_order, vapi_early, unknown_dials, within, connected, failed, lost;
    /* Callbacks later than the estimate given: after a retry (the wait for
     * CALLBACK_RETRY_SECONDS is not in any estimate) or on the first dial,
     * and by how much the latest first-dial one was late. */
    long late_retry, late_first;
    double late_first_max_s;
    char first_problem[256];
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
note(struct sim_callbacks_truth *t, const char *fmt, ...)
{
    if (t->first_problem[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->first_problem, sizeof t->first_problem, fmt, ap);
    va_end(ap);
}

struct sim_callbacks_truth *sim_cb_new(struct sim_world *w, unsigned long long seed)
{
    struct sim_callbacks_truth *t = cg_calloc(1, sizeof *t);
    t->w = w;
    t->rng = sim_rng_new(seed);
    return t;
}

double sim_cb_unit(struct sim_world *w)
{
    return w && w->callbacks ? sim_rng_unit(w->callbacks->rng) : 0.5;
}

void sim_cb_free(struct sim_callbacks_truth *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].number);
        free(t->e[i].sid);
    }
    for (size_t i = 0; i < t->nlegs; i++)
        free(t->legs[i].leg);
    for (size_t i = 0; i < t->nline; i++)
        free(t->line[i].sid);
    free(t->e);
    free(t->legs);
    free(t->line);
    if (t->rng)
        sim_rng_free(t->rng);
    free(t);
}

static struct sim_callbacks_truth *truth(struct sim_world *w)
{
    return w ? w->callbacks : NULL;
}

void sim_cb_pressed(struct sim_world *w, const char *number, const char *sid, double arrived_s,
                    double est_s, double duration_s)
{
    struct sim_callbacks_truth *t = truth(w);
    if (t == NULL)
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->e = cg_realloc(t->e, t->cap * sizeof *t->e);
    }
    struct cb_entry *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    e->number = cg_strdup(number);
    e->sid = cg_strdup(sid);
    e->arrived_s = arrived_s;
    e->pressed_s = sim_now_s(w);
    e->est_s = est_s;
    e->duration_s = duration_s;
    if (w->report)
        sim_report_count(w->report, "callbacks.requested");
}

void sim_cb_line(struct sim_world *w, const char *sid, double arrived_s, int waiting)
{
    struct sim_callbacks_truth *t = truth(w);
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nline; i++)
        if (strcmp(t->line[i].sid, sid) == 0) {
            if (!waiting) {
                free(t->line[i].sid);
                t->line[i] = t->line[--t->nline];
            }
            return;
        }
    if (!waiting)
        return;
    if (t->nline == t->linecap) {
        t->linecap = t->linecap ? 2 * t->linecap : 64;
        t->line = cg_realloc(t->line, t->linecap * sizeof *t->line);
    }
    t->line[t->nline].sid = cg_strdup(sid);
    t->line[t->nline].arrived_s = arrived_s;
    t->nline++;
}

/* The pending callback of a number (the latest, should one number press 1
 * twice). */
static struct cb_entry *by_number(struct sim_callbacks_truth *t, const char *number, size_t *at)
{
    for (size_t i = t->n; i-- > 0;)
        if (strcmp(t->e[i].number, number) == 0 && t->e[i].state == CB_PENDING) {
            *at = i;
            return &t->e[i];
        }
    return NULL;
}

static struct cb_leg *leg_of(struct sim_callbacks_truth *t, const char *leg)
{
    for (size_t i = 0; i < t->nlegs; i++)
        if (strcmp(t->legs[i].leg, leg) == 0)
            return &t->legs[i];
    return NULL;
}

double sim_cb_dialed(struct sim_world *w, const char *number, long attempt, const char *leg)
{
    struct sim_callbacks_truth *t = truth(w);
    size_t at = 0;
    struct cb_entry *e = t ? by_number(t, number, &at) : NULL;
    if (e == NULL) {
        if (t)
            t->unknown_dials++;
        return -1;
    }
    if (w->report) {
        sim_report_count(w->report, "callbacks.dialled");
        /* The gate dials a callback into a slot it keeps for it: that is
         * when a freed slot was put to use, not when the customer answers. */
        sim_report_callback_dialed(w->report);
    }
    e->dials++;
    if (attempt >= 1 && attempt <= MAX_ATTEMPTS) {
        unsigned bit = 1u << (attempt - 1);
        if (e->dialled & bit) {
            t->twice++;
            note(t, "callback of %s dialled twice for one attempt (leg %s)", e->sid, leg);
        }
        e->dialled |= bit;
    }
    if (e->dials == 1) {
        for (size_t i = 0; i < t->nline; i++)
            if (t->line[i].arrived_s + ORDER_SLACK_S < e->arrived_s) {
                t->out_of_order++;
                note(t, "callback of %s dialled while %s, who arrived earlier, waited on the line",
                     e->sid, t->line[i].sid);
                break;
            }
    }
    if (t->nlegs == t->legcap) {
        t->legcap = t->legcap ? 2 * t->legcap : 64;
        t->legs = cg_realloc(t->legs, t->legcap * sizeof *t->legs);
    }
    t->legs[t->nlegs++] = (struct cb_leg){.leg = cg_strdup(leg), .entry = at};
    return e->duration_s;
}

void sim_cb_detected(struct sim_world *w, const char *leg)
{
    struct sim_callbacks_truth *t = truth(w);
    struct cb_leg *l = t ? leg_of(t, leg) : NULL;
    if (l)
        l->detected = 1;
}

int sim_cb_vapi_created(struct sim_world *w, const char *sid)
{
    struct sim_callbacks_truth *t = truth(w);
    struct cb_leg *l = t && sid ? leg_of(t, sid) : NULL;
    if (l && !l->detected) {
        t->vapi_early++;
        note(t, "a Vapi call was created for callback leg %s before it was answered", sid);
    }
    return l != NULL;
}

/* The callback still owed that leg dials, or NULL (an unknown leg, or its
 * callback already settled). */
static struct cb_entry *pending_of(struct sim_world *w, const char *leg,
                                   struct sim_callbacks_truth **tp)
{
    struct sim_callbacks_truth *t = truth(w);
    struct cb_leg *l = t ? leg_of(t, leg) : NULL;
    if (l == NULL || t->e[l->entry].state != CB_PENDING)
        return NULL;
    *tp = t;
    return &t->e[l->entry];
}

void sim_cb_leg_connected(struct sim_world *w, const char *leg)
{
    struct sim_callbacks_truth *t;
    struct cb_entry *e = pending_of(w, leg, &t);
    if (e == NULL)
        return;
    double now = sim_now_s(w);
    e->state = CB_CONNECTED;
    e->connected_s = now;
    t->connected++;
    if (e->est_s >= 0 && now - e->pressed_s <= e->est_s) {
        t->within++;
        if (w->report)
            sim_report_count(w->report, "callbacks.within_estimate");
    } else if (e->est_s >= 0 && e->dials > 1) {
        t->late_retry++;
    } else if (e->est_s >= 0) {
        t->late_first++;
        if (now - e->pressed_s - e->est_s > t->late_first_max_s)
            t->late_first_max_s = now - e->pressed_s - e->est_s;
    }
    if (w->report) {
        sim_report_caller_done(w->report, SIM_OUT_CONNECTED, now - e->arrived_s);
        sim_report_count(w->report, "callbacks.connected");
    }
}

void sim_cb_leg_failed(struct sim_world *w, const char *leg)
{
    struct sim_callbacks_truth *t;
    struct cb_entry *e = pending_of(w, leg, &t);
    if (e == NULL)
        return;
    e->failures++;
    if (w->report)
        sim_report_count(w->report, "callbacks.attempt_failed");
    if (e->failures >= w->sc->callbacks.attempts) {
        /* Given up by the gate after its attempts: the caller is not lost,
         * they did not answer. */
        e->state = CB_FAILED;
        t->failed++;
        if (w->report) {
            sim_report_caller_done(w->report, SIM_OUT_ABANDONED, sim_now_s(w) - e->arrived_s);
            sim_report_count(w->report, "callbacks.failed");
        }
    }
}

size_t sim_cb_pending(struct sim_world *w)
{
    struct sim_callbacks_truth *t = truth(w);
    size_t n = 0;
    for (size_t i = 0; t && i < t->n; i++)
        n += t->e[i].state == CB_PENDING;
    return n;
}

void sim_cb_finish(struct sim_world *w, FILE *out)
{
    struct sim_callbacks_truth *t = truth(w);
    if (t == NULL || (t->n == 0 && w->sc->callbacks.press1 <= 0))
        return;
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].state == CB_PENDING) {
            t->lost++;
            note(t, "callback of %s (%s) neither connected nor given up", t->e[i].sid,
                 t->e[i].number);
            if (w->report)
                sim_report_caller_done(w->report, SIM_OUT_LOST, sim_now_s(w) - t->e[i].arrived_s);
        }
    double share = t->connected ? (double)t->within / (double)t->connected : 1.0;
    if (out)
        fprintf(out,
                "callgate-sim: callbacks: requested %zu, connected %ld, failed %ld, lost %ld; "
                "within the estimate given %ld of %ld (%.0f%%)\n",
                t->n, t->connected, t->failed, t->lost, t->within, t->connected, share * 100.0);
    if (out && (t->late_retry || t->late_first))
        fprintf(out,
                "callgate-sim: callbacks later than the estimate: %ld after a retry, %ld on the "
                "first dial (the latest by %.1f s)\n",
                t->late_retry, t->late_first, t->late_first_max_s);
    struct sim_report *r = w->report;
    if (r == NULL)
        return;
    char d[320];
    if (t->twice) {
        snprintf(d, sizeof d, "%ld: %s", t->twice, t->first_problem);
        sim_report_fail(r, "callback_dialled_once_per_attempt", d);
    }
    if (t->out_of_order) {
        snprintf(d, sizeof d, "%ld: %s", t->out_of_order, t->first_problem);
        sim_report_fail(r, "callbacks_in_ticket_order", d);
    }
    if (t->vapi_early) {
        snprintf(d, sizeof d, "%ld: %s", t->vapi_early, t->first_problem);
        sim_report_fail(r, "no_vapi_call_while_ringing", d);
    }
    if (t->lost) {
        snprintf(d, sizeof d, "%ld: %s", t->lost, t->first_problem);
        sim_report_fail(r, "no_callback_lost", d);
    }
    if (t->unknown_dials) {
        snprintf(d, sizeof d, "%ld outbound calls to numbers that asked for no callback",
                 t->unknown_dials);
        sim_report_fail(r, "callbacks_only_when_asked", d);
    }
    double min = w->sc->callbacks.min_within;
    if (min >= 0 && share < min) {
        snprintf(d, sizeof d, "%ld of %ld callbacks within the estimate (%.0f%%), required %.0f%%",
                 t->within, t->connected, share * 100.0, min * 100.0);
        sim_report_fail(r, "callbacks_within_estimate", d);
    }
}
