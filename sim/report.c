/*
 * report.c - the truth of a run. Counts are kept from the simulator's own
 * events, never from what the gate says, so that the gate's mistakes show
 * up as failed invariants.
 *
 * Idle slot-seconds integrate, between consecutive events, the slots the
 * gate could have used (its share of the Vapi limit minus its live calls)
 * that had a waiting caller to go to: min(free, waiting). The state only
 * changes at events, so the integral is exact.
 *
 * The estimate's yardstick is the trailing-average estimator (what
 * TaskRouter's avg wait, and the seed's get-queue-times, announce): at a
 * caller's first announcement, the mean actual wait of the last
 * BASELINE_WINDOW callers connected before that moment, 0 while nobody
 * has connected yet (the seed's figure reads 0 then too). A count rather
 * than a time window keeps it independent of a scenario's time scale and
 * makes it as quick to follow the load as it can be without going noisy.
 * It is scored against the same actual waits as callgate's announcement.
 */
#include "base/fmacros.h"

#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "report_int.h"
#include "sim.h"

static void push(struct samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = cg_realloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

void sim_report_advance(struct sim_report *r)
{
    double t = sim_report_now(r);
    double dt = t - r->last_t;
    if (dt <= 0)
        return;
    long free_slots = sim_report_limit(r) - sim_report_external(r) - r->live;
    if (free_slots < 0)
        free_slots = 0;
    long idle = free_slots < r->waiting ? free_slots : r->waiting;
    r->idle_slot_s += (double)idle * dt;
    r->last_t = t;
}

static size_t fifo_len(const struct sim_report *r)
{
    return r->fifo.n - r->fifo_head;
}

static void fifo_drop_oldest(struct sim_report *r)
{
    if (fifo_len(r) == 0)
        return;
    r->fifo_head++;
    if (r->fifo_head == r->fifo.n) {
        r->fifo.n = 0;
        r->fifo_head = 0;
    } else if (r->fifo_head > 1024 && r->fifo_head * 2 > r->fifo.n) {
        size_t n = fifo_len(r);
        memmove(r->fifo.v, r->fifo.v + r->fifo_head, n * sizeof(double));
        r->fifo.n = n;
        r->fifo_head = 0;
    }
}

struct sim_report *sim_report_new(struct sim_world *w)
{
    struct sim_report *r = cg_calloc(1, sizeof(*r));
    r->w = w;
    r->last_announced = -1;
    return r;
}

void sim_report_free(struct sim_report *r)
{
    if (!r)
        return;
    free(r->waits.v);
    free(r->conn_at.v);
    free(r->refills.v);
    free(r->fifo.v);
    for (size_t i = 0; i < r->ntwiml_samples; i++)
        free(r->twiml_samples[i]);
    for (size_t i = 0; i < r->nfails; i++) {
        free(r->fails[i].name);
        free(r->fails[i].detail);
    }
    free(r);
}

void sim_report_set_clock(struct sim_report *r, double (*now_s)(void *arg), void *arg)
{
    r->clock = now_s;
    r->clock_arg = arg;
    r->last_t = now_s ? now_s(arg) : sim_now_s(r->w);
}

/* ---- events ---- */

void sim_report_caller_arrived(struct sim_report *r)
{
    r->total++;
}

void sim_report_caller_enqueued(struct sim_report *r)
{
    sim_report_advance(r);
    r->enqueued++;
    r->waiting++;
}

void sim_report_caller_dequeued(struct sim_report *r)
{
    sim_report_advance(r);
    if (r->waiting == 0) {
        sim_report_count(r, "report.dequeued_without_enqueue");
        return;
    }
    r->waiting--;
    /* A freed slot with nobody left to take it is not a refill waiting to
     * happen; the oldest such stamp goes first. */
    while (fifo_len(r) > (size_t)r->waiting)
        fifo_drop_oldest(r);
}

void sim_report_caller_done(struct sim_report *r, enum sim_outcome outcome, double waited_s)
{
    switch (outcome) {
    case SIM_OUT_CONNECTED:
        r->connected++;
        push(&r->waits, waited_s < 0 ? 0 : waited_s);
        push(&r->conn_at, sim_report_now(r));
        break;
    case SIM_OUT_ABANDONED:
        r->abandoned++;
        break;
    case SIM_OUT_OVERFLOW:
        r->overflowed++;
        break;
    case SIM_OUT_LOST:
        r->lost++;
        break;
    case SIM_OUT_NONE:
    default:
        sim_report_count(r, "report.done_without_outcome");
        break;
    }
}

/* The oldest slot freed while callers waited is put to use now. */
static void refilled(struct sim_report *r)
{
    if (fifo_len(r) > 0) {
        double freed = r->fifo.v[r->fifo_head];
        fifo_drop_oldest(r);
        double ms = (sim_report_now(r) - freed) * 1000.0;
        push(&r->refills, ms < 0 ? 0 : ms);
    }
}

static void created(struct sim_report *r, int refill)
{
    sim_report_advance(r);
    r->vapi_created++;
    r->live++;
    long concurrent = r->live + sim_report_external(r);
    if (concurrent > r->peak)
        r->peak = concurrent;
    if (refill)
        refilled(r);
}

void sim_report_vapi_created(struct sim_report *r)
{
    created(r, 1);
}

void sim_report_callback_created(struct sim_report *r)
{
    created(r, 0);
}

void sim_report_callback_dialed(struct sim_report *r)
{
    sim_report_advance(r);
    refilled(r);
}

void sim_report_vapi_ended(struct sim_report *r)
{
    sim_report_advance(r);
    if (r->live == 0) {
        sim_report_count(r, "report.vapi_ended_without_created");
        return;
    }
    r->live--;
    r->vapi_ended++;
    if (r->waiting > 0 && fifo_len(r) < (size_t)r->waiting)
        push(&r->fifo, sim_report_now(r));
}

void sim_report_vapi_rejected(struct sim_report *r, int overlimit)
{
    if (overlimit)
        r->overlimit++;
    else
        r->other_rejections++;
}

void sim_report_orphan(struct sim_report *r)
{
    r->orphans++;
}

/* The trailing-average estimate at time t: the mean wait of the last
 * BASELINE_WINDOW callers connected before t; -1 when none had. */
static double trailing_average(const struct sim_report *r, double t)
{
    /* conn_at grows with time: the callers connected before t are a prefix. */
    size_t lo = 0, hi = r->conn_at.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->conn_at.v[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    size_t from = lo > BASELINE_WINDOW ? lo - BASELINE_WINDOW : 0;
    double sum = 0;
    for (size_t i = from; i < lo; i++)
        sum += r->waits.v[i];
    return sum / (double)(lo - from);
}

void sim_report_estimate(struct sim_report *r, double announced_s, double actual_s)
{
    double e = announced_s - actual_s;
    r->est_n++;
    r->est_sum += e;
    r->est_abs_sum += fabs(e);
    r->last_announced = announced_s;
    /* actual_s runs from the first announcement to now. */
    double base = trailing_average(r, sim_report_now(r) - actual_s);
    if (base < 0) {
        r->base_cold++;
        base = 0;
    } else {
        r->base_warm_n++;
        r->base_warm_abs_sum += fabs(base - actual_s);
        r->gate_warm_abs_sum += fabs(e);
    }
    r->base_sum += base - actual_s;
    r->base_abs_sum += fabs(base - actual_s);
}

void sim_report_announced(struct sim_report *r, double announced_s)
{
    r->last_announced = announced_s;
}

void sim_report_twiml_error(struct sim_report *r, const char *what)
{
    r->twiml_errors++;
    if (r->ntwiml_samples < MAX_TWIML_SAMPLES && what)
        r->twiml_samples[r->ntwiml_samples++] = cg_strndup(what, MAX_DETAIL);
}

void sim_report_count(struct sim_report *r, const char *counter)
{
    char key[MAX_COUNTER_NAME];
    snprintf(key, sizeof(key), "%s", counter ? counter : "");
    /* Past the table's size, everything lands in one bucket, so a flood of
     * distinct names cannot grow the report. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < r->ncounters; i++) {
            if (strcmp(r->counters[i].name, key) == 0) {
                r->counters[i].n++;
                return;
            }
        }
        if (r->ncounters < MAX_COUNTERS - 1)
            break;
        snprintf(key, sizeof(key), "report.other_counters");
    }
    struct counter *c = &r->counters[r->ncounters++];
    snprintf(c->name, sizeof(c->name), "%s", key);
    c->n = 1;
}

void sim_report_fail(struct sim_report *r, const char *name, const char *detail)
{
    if (r->nfails == MAX_EXTRA_FAILS)
        return;
    r->fails[r->nfails].name = cg_strndup(name, MAX_DETAIL);
    r->fails[r->nfails].detail = cg_strndup(detail ? detail : "", MAX_DETAIL);
    r->nfails++;
}

long sim_report_waiting(const struct sim_report *r)
{
    return r->waiting;
}

long sim_report_vapi_live(const struct sim_report *r)
{
    return r->live;
}
