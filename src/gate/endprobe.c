/*
 * endprobe.c - the early asks of Vapi after a Twilio end (endprobe.h): one
 * timer per probe, at most one GET /call out per probe, a list the size of
 * the calls that ended in the last few seconds.
 */
#include "base/fmacros.h"

#include "gate/endprobe.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/metrics.h"
#include "vapi/api.h"

struct probe {
    struct gate_probes *set; /* NULL once the set let go of it (its GET is out) */
    struct cg_list link;     /* in set->probes, while set is not NULL */
    char id[CG_VAPI_MAX_ID + 1];
    struct event *timer;
    uint64_t started;  /* monotonic ms: Twilio's end */
    uint64_t deadline; /* monotonic ms */
    unsigned attempt;
    int learned;   /* the first ask came after the learned lag */
    int asking;    /* a GET is out */
    int cancelled; /* ended by other means while the GET was out */
};

struct gate_probes {
    struct event_base *base;
    struct cg_vapi *vapi;
    struct cg_metrics *metrics;
    gate_probe_answer_cb answer;
    void *owner;
    struct cg_list probes;
    size_t n, asking;
    int stopped;
    /* How long after Twilio's end Vapi's own end message arrives, learned
     * from the probes it ended (as TCP learns a round trip: a smoothed mean
     * and a smoothed deviation, in ms). */
    double lag_ms, lag_dev_ms;
    unsigned lag_samples;
};

static void count(struct gate_probes *p, const char *result)
{
    if (p->metrics == NULL)
        return;
    struct cg_buf b;
    cg_buf_init(&b, 64);
    cg_metrics_label(&b, "result", result);
    cg_metrics_inc(p->metrics, "callgate_end_probes_total", cg_buf_str(&b), 1);
    cg_buf_free(&b);
}

struct gate_probes *gate_probes_new(struct event_base *base, struct cg_vapi *vapi,
                                    struct cg_metrics *metrics, gate_probe_answer_cb answer,
                                    void *owner)
{
    struct gate_probes *p = cg_calloc(1, sizeof *p);
    p->base = base;
    p->vapi = vapi;
    p->metrics = metrics;
    p->answer = answer;
    p->owner = owner;
    cg_list_init(&p->probes);
    if (metrics)
        cg_metrics_declare(metrics, "callgate_end_probes_total", CG_COUNTER,
                           "Early asks of Vapi (GET /call) after a call's Twilio leg ended, by "
                           "what Vapi said: ended, live, or unknown (not found, no answer).",
                           NULL, 0);
    if (metrics)
        cg_metrics_declare(metrics, "callgate_end_probe_first_ask_seconds", CG_GAUGE,
                           "When the first early ask of Vapi goes after a call's Twilio end: "
                           "the learned lag of Vapi's own end messages (0.25-0.5 s until "
                           "enough are seen).",
                           NULL, 0);
    return p;
}

static struct probe *find(struct gate_probes *p, const char *id)
{
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &p->probes) {
        struct probe *pr = cg_list_entry(it, struct probe, link);
        if (strcmp(pr->id, id) == 0)
            return pr;
    }
    return NULL;
}

/* Takes pr off the set's list; it is freed now, or by its GET's answer. */
static void drop(struct probe *pr)
{
    struct gate_probes *p = pr->set;
    if (p != NULL) {
        cg_list_remove(&pr->link);
        p->n--;
        pr->set = NULL;
    }
    if (pr->timer)
        evtimer_del(pr->timer);
    if (pr->asking)
        return;
    if (pr->timer)
        event_free(pr->timer);
    free(pr);
}

/* A probe Vapi's own message ended after ms: one sample of the lag. */
static void learn_lag(struct gate_probes *p, double ms)
{
    /* Longer lags (an orphan's call ending on its own, a stalled Vapi) are
     * not learned: the first ask would come at the bound anyway. */
    if (ms > GATE_PROBE_BASE_MS)
        return;
    if (p->lag_samples == 0) {
        p->lag_ms = ms;
        p->lag_dev_ms = ms / 2;
    } else {
        double err = ms - p->lag_ms;
        p->lag_dev_ms += ((err < 0 ? -err : err) - p->lag_dev_ms) / 4;
        p->lag_ms += err / 8;
    }
    if (p->lag_samples < GATE_PROBE_LEARN_SAMPLES)
        p->lag_samples++;
    long first = gate_probe_first_ms(p);
    if (p->metrics != NULL && first >= 0)
        cg_metrics_set(p->metrics, "callgate_end_probe_first_ask_seconds", NULL,
                       (double)first / 1000.0);
}

long gate_probe_first_ms(const struct gate_probes *p)
{
    if (p == NULL || p->lag_samples < GATE_PROBE_LEARN_SAMPLES)
        return -1;
    double d = p->lag_ms + p->lag_dev_ms + GATE_PROBE_MARGIN_MS;
    if (d < GATE_PROBE_MIN_MS)
        d = GATE_PROBE_MIN_MS;
    if (d > GATE_PROBE_BASE_MS)
        d = GATE_PROBE_BASE_MS;
    return (long)d;
}

/* Arms the next ask, or ends the probe when it would come after its
 * deadline (the sweep takes over then). The first ask comes when Vapi's
 * message usually has arrived (learned), so that a lost one costs the slot
 * little more than that; later asks, and every ask before anything was
 * learned, back off from GATE_PROBE_BASE_MS. */
static void schedule(struct probe *pr)
{
    long d;
    if (pr->attempt == 0 && (d = gate_probe_first_ms(pr->set)) >= 0)
        pr->learned = 1;
    else if (pr->learned)
        d = cg_backoff_ms(GATE_PROBE_RETRY_MS, GATE_PROBE_CAP_MS, pr->attempt - 1, -1);
    else
        d = cg_backoff_ms(GATE_PROBE_BASE_MS, GATE_PROBE_CAP_MS, pr->attempt, -1);
    if (pr->set->stopped || cg_mono_ms() + (uint64_t)d >= pr->deadline) {
        drop(pr);
        return;
    }
    pr->attempt++;
    struct timeval tv = {.tv_sec = d / 1000, .tv_usec = (d % 1000) * 1000};
    evtimer_add(pr->timer, &tv);
}

static void on_answer(const struct cg_vapi_get_result *res, void *arg)
{
    struct probe *pr = arg;
    struct gate_probes *p = pr->set;
    pr->asking = 0;
    if (p != NULL)
        p->asking--;
    if (p == NULL || pr->cancelled || p->stopped) {
        drop(pr);
        return;
    }
    int ended = res->state == CG_VAPI_CALL_ENDED;
    count(p, ended ? "ended" : res->state == CG_VAPI_CALL_LIVE ? "live" : "unknown");
    char id[sizeof pr->id];
    memcpy(id, pr->id, sizeof id);
    if (ended) {
        cg_log_info("vapi says the call ended; its slot is released without waiting for the grace",
                    "vapi=%s asks=%u", id, pr->attempt);
        drop(pr);
    } else {
        schedule(pr); /* or its end, past the deadline */
    }
    p->answer(p->owner, id, res);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct probe *pr = arg;
    struct gate_probes *p = pr->set;
    if (p == NULL || p->stopped) {
        drop(pr);
        return;
    }
    if (cg_vapi_get_call(p->vapi, pr->id, on_answer, pr) != 0) {
        drop(pr);
        return;
    }
    pr->asking = 1;
    p->asking++;
}

void gate_probe_start(struct gate_probes *p, const char *vapi_id, long deadline_ms)
{
    if (p == NULL || p->stopped || vapi_id == NULL || vapi_id[0] == '\0' ||
        strlen(vapi_id) > CG_VAPI_MAX_ID)
        return;
    uint64_t deadline = cg_mono_ms() + (uint64_t)(deadline_ms > 0 ? deadline_ms : 0);
    struct probe *pr = find(p, vapi_id);
    if (pr != NULL) {
        if (deadline > pr->deadline)
            pr->deadline = deadline;
        return;
    }
    pr = cg_calloc(1, sizeof *pr);
    pr->set = p;
    snprintf(pr->id, sizeof pr->id, "%s", vapi_id);
    pr->started = cg_mono_ms();
    pr->deadline = deadline;
    pr->timer = evtimer_new(p->base, on_timer, pr);
    if (pr->timer == NULL) {
        free(pr);
        return;
    }
    cg_list_push_back(&p->probes, &pr->link);
    p->n++;
    schedule(pr);
}

void gate_probe_cancel(struct gate_probes *p, const char *vapi_id)
{
    if (p == NULL || vapi_id == NULL)
        return;
    struct probe *pr = find(p, vapi_id);
    if (pr == NULL)
        return;
    /* Vapi's message for a call still being asked about (no ask found it
     * ended yet): how long after Twilio's end such messages come. */
    learn_lag(p, (double)(cg_mono_ms() - pr->started));
    if (pr->asking) {
        /* Its answer frees it. */
        pr->cancelled = 1;
        evtimer_del(pr->timer);
        return;
    }
    drop(pr);
}

size_t gate_probes_asking(const struct gate_probes *p)
{
    return p ? p->asking : 0;
}

size_t gate_probes_count(const struct gate_probes *p)
{
    return p ? p->n : 0;
}

void gate_probes_stop(struct gate_probes *p)
{
    if (p == NULL)
        return;
    p->stopped = 1;
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &p->probes) {
        struct probe *pr = cg_list_entry(it, struct probe, link);
        if (!pr->asking)
            drop(pr);
        else
            evtimer_del(pr->timer);
    }
}

void gate_probes_free(struct gate_probes *p)
{
    if (p == NULL)
        return;
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &p->probes) {
        /* A GET still out keeps its probe (unlinked) until it answers. */
        drop(cg_list_entry(it, struct probe, link));
    }
    free(p);
}
