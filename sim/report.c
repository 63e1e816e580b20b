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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/json.h"
#include "sim.h"
#include "taskrouter.h"
#include "wtscore.h"

#define MAX_COUNTERS      256
#define MAX_COUNTER_NAME  64
#define MAX_TWIML_SAMPLES 20
#define MAX_EXTRA_FAILS   16
#define MAX_DETAIL        256
#define BASELINE_WINDOW   20

struct samples {
    double *v;
    size_t n, cap;
};

struct counter {
    char name[MAX_COUNTER_NAME];
    long n;
};

struct extra_fail {
    char *name;
    char *detail;
};

struct sim_report {
    struct sim_world *w;
    double (*clock)(void *);
    void *clock_arg;

    double last_t; /* time up to which idle slots are integrated */
    double idle_slot_s;
    long waiting;
    long live; /* the gate's live Vapi calls */
    long peak; /* including external calls */

    long total, connected, abandoned, overflowed, lost;
    long enqueued, vapi_created, vapi_ended;
    long overlimit, other_rejections, orphans, twiml_errors;
    char *twiml_samples[MAX_TWIML_SAMPLES];
    size_t ntwiml_samples;

    struct samples waits;   /* connected callers' waits, s */
    struct samples conn_at; /* when each of them connected, parallel to waits */
    struct samples refills; /* slot-refill latencies, ms */
    /* End times of Vapi calls that freed a slot while callers waited, oldest
     * first; a ring of at most `waiting` entries. */
    struct samples fifo;
    size_t fifo_head;

    long est_n;
    double est_abs_sum, est_sum;
    double last_announced;
    /* The trailing-average baseline on the same callers; "warm" are those
     * announced after someone had connected, with callgate's error on
     * them alongside. */
    long base_cold, base_warm_n;
    double base_abs_sum, base_sum, base_warm_abs_sum, gate_warm_abs_sum;

    struct counter counters[MAX_COUNTERS];
    size_t ncounters;
    struct extra_fail fails[MAX_EXTRA_FAILS];
    size_t nfails;
};

static void push(struct samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = cg_realloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

static double now_of(const struct sim_report *r)
{
    if (r->clock)
        return r->clock(r->clock_arg);
    return sim_now_s(r->w);
}

static long limit_total(const struct sim_report *r)
{
    return r->w && r->w->sc ? r->w->sc->vapi_limit : 0;
}

static long external(const struct sim_report *r)
{
    return r->w && r->w->sc ? r->w->sc->vapi_external_calls : 0;
}

/* Integrates idle slots up to now. Called before every state change. */
static void advance(struct sim_report *r)
{
    double t = now_of(r);
    double dt = t - r->last_t;
    if (dt <= 0)
        return;
    long free_slots = limit_total(r) - external(r) - r->live;
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
    advance(r);
    r->enqueued++;
    r->waiting++;
}

void sim_report_caller_dequeued(struct sim_report *r)
{
    advance(r);
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
        push(&r->conn_at, now_of(r));
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

void sim_report_vapi_created(struct sim_report *r)
{
    advance(r);
    r->vapi_created++;
    r->live++;
    long concurrent = r->live + external(r);
    if (concurrent > r->peak)
        r->peak = concurrent;
    if (fifo_len(r) > 0) {
        double freed = r->fifo.v[r->fifo_head];
        fifo_drop_oldest(r);
        double ms = (now_of(r) - freed) * 1000.0;
        push(&r->refills, ms < 0 ? 0 : ms);
    }
}

void sim_report_vapi_ended(struct sim_report *r)
{
    advance(r);
    if (r->live == 0) {
        sim_report_count(r, "report.vapi_ended_without_created");
        return;
    }
    r->live--;
    r->vapi_ended++;
    if (r->waiting > 0 && fifo_len(r) < (size_t)r->waiting)
        push(&r->fifo, now_of(r));
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
    double base = trailing_average(r, now_of(r) - actual_s);
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

/* ---- figures ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array; p in (0, 1]. */
static double pct(const double *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static json_t *num_or_null(size_t n, double v)
{
    return n ? json_real(v) : json_null();
}

static json_t *percentiles(const struct samples *s, double p1, const char *k1, double p2,
                           const char *k2, const char *k3, int max_or_samples)
{
    double *v = NULL;
    if (s->n) {
        v = cg_malloc(s->n * sizeof(double));
        memcpy(v, s->v, s->n * sizeof(double));
        qsort(v, s->n, sizeof(double), cmp_double);
    }
    json_t *o = json_object();
    json_object_set_new(o, k1, num_or_null(s->n, s->n ? pct(v, s->n, p1) : 0));
    json_object_set_new(o, k2, num_or_null(s->n, s->n ? pct(v, s->n, p2) : 0));
    if (max_or_samples)
        json_object_set_new(o, k3, num_or_null(s->n, s->n ? v[s->n - 1] : 0));
    else
        json_object_set_new(o, k3, json_integer((json_int_t)s->n));
    free(v);
    return o;
}

/* The TaskRouter section (report or live status), with the wait-time
 * scorer's figures as its "accuracy" member when it runs. */
static json_t *taskrouter_json(struct sim_world *w, int report)
{
    json_t *o = report ? sim_taskrouter_report_json(w->taskrouter)
                       : sim_taskrouter_status_json(w->taskrouter);
    if (w->wtscore)
        json_object_set_new(o, "accuracy", sim_wtscore_json(w->wtscore));
    return o;
}

static int invariant(json_t *list, const char *name, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int invariant(json_t *list, const char *name, int ok, const char *fmt, ...)
{
    char detail[MAX_DETAIL];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "detail", json_string(detail));
    json_array_append_new(list, o);
    if (!ok)
        fprintf(stderr, "callgate-sim: invariant failed: %s: %s\n", name, detail);
    return ok ? 0 : 1;
}

static int check_final(json_t *inv, const char *name, long expected, long got)
{
    if (expected < 0)
        return 0;
    if (got < 0)
        return invariant(inv, name, 0, "expected %ld, the gate's health could not be read",
                         expected);
    return invariant(inv, name, got == expected, "expected %ld, gate reports %ld", expected, got);
}

int sim_report_finish(struct sim_report *r, long gate_active, long gate_waiting, FILE *out)
{
    advance(r);
    const struct sim_scenario *sc = r->w ? r->w->sc : NULL;
    long limit = limit_total(r);
    int failed = 0;

    json_t *root = json_object();
    json_object_set_new(root, "scenario", json_string(sc && sc->name ? sc->name : ""));
    json_object_set_new(root, "seed", json_integer(sc ? (json_int_t)sc->seed : 0));
    json_object_set_new(root, "limit", json_integer(limit));
    json_object_set_new(root, "external_calls", json_integer(external(r)));
    json_object_set_new(root, "elapsed_s", json_real(now_of(r)));
    json_object_set_new(root, "peak_vapi_concurrency", json_integer(r->peak));
    json_object_set_new(root, "overlimit_rejections", json_integer(r->overlimit));
    json_object_set_new(root, "other_rejections", json_integer(r->other_rejections));
    json_object_set_new(root, "vapi_calls_created", json_integer(r->vapi_created));

    json_t *callers = json_object();
    json_object_set_new(callers, "total", json_integer(r->total));
    json_object_set_new(callers, "connected", json_integer(r->connected));
    json_object_set_new(callers, "abandoned", json_integer(r->abandoned));
    json_object_set_new(callers, "overflowed", json_integer(r->overflowed));
    json_object_set_new(callers, "lost", json_integer(r->lost));
    json_object_set_new(callers, "enqueued", json_integer(r->enqueued));
    json_object_set_new(root, "callers", callers);
    json_object_set_new(root, "orphan_vapi_calls", json_integer(r->orphans));
    json_object_set_new(root, "wait_s", percentiles(&r->waits, 0.5, "p50", 0.95, "p95", "max", 1));
    json_object_set_new(root, "idle_slot_seconds", json_real(r->idle_slot_s));
    json_object_set_new(root, "refill_latency_ms",
                        percentiles(&r->refills, 0.5, "p50", 0.99, "p99", "samples", 0));
    json_t *est = json_object();
    json_object_set_new(est, "samples", json_integer(r->est_n));
    json_object_set_new(
        est, "mae_s",
        num_or_null((size_t)r->est_n, r->est_n ? r->est_abs_sum / (double)r->est_n : 0));
    json_object_set_new(
        est, "bias_s", num_or_null((size_t)r->est_n, r->est_n ? r->est_sum / (double)r->est_n : 0));
    json_t *base = json_object();
    json_object_set_new(base, "method",
                        json_string("trailing average of the actual waits of the last 20 callers "
                                    "connected before each caller's first announcement (0 before "
                                    "any caller connected)"));
    json_object_set_new(base, "window_callers", json_integer(BASELINE_WINDOW));
    json_object_set_new(
        base, "mae_s",
        num_or_null((size_t)r->est_n, r->est_n ? r->base_abs_sum / (double)r->est_n : 0));
    json_object_set_new(
        base, "bias_s",
        num_or_null((size_t)r->est_n, r->est_n ? r->base_sum / (double)r->est_n : 0));
    json_object_set_new(base, "cold_samples", json_integer(r->base_cold));
    json_object_set_new(base, "warm_samples", json_integer(r->base_warm_n));
    json_object_set_new(
        base, "warm_mae_s",
        num_or_null((size_t)r->base_warm_n,
                    r->base_warm_n ? r->base_warm_abs_sum / (double)r->base_warm_n : 0));
    json_object_set_new(
        base, "warm_callgate_mae_s",
        num_or_null((size_t)r->base_warm_n,
                    r->base_warm_n ? r->gate_warm_abs_sum / (double)r->base_warm_n : 0));
    json_object_set_new(est, "baseline", base);
    json_object_set_new(root, "estimate", est);
    json_object_set_new(root, "twiml_errors", json_integer(r->twiml_errors));
    json_t *samples = json_array();
    for (size_t i = 0; i < r->ntwiml_samples; i++)
        json_array_append_new(samples, json_string(r->twiml_samples[i]));
    json_object_set_new(root, "twiml_error_samples", samples);
    json_t *gf = json_object();
    json_object_set_new(gf, "active", gate_active >= 0 ? json_integer(gate_active) : json_null());
    json_object_set_new(gf, "waiting",
                        gate_waiting >= 0 ? json_integer(gate_waiting) : json_null());
    json_object_set_new(root, "gate_final", gf);
    json_t *counters = json_object();
    for (size_t i = 0; i < r->ncounters; i++)
        json_object_set_new(counters, r->counters[i].name, json_integer(r->counters[i].n));
    json_object_set_new(root, "counters", counters);
    if (r->w && r->w->taskrouter)
        json_object_set_new(root, "taskrouter", taskrouter_json(r->w, 1));

    json_t *inv = json_array();
    failed += invariant(inv, "peak_within_limit", r->peak <= limit, "peak %ld, limit %ld", r->peak,
                        limit);
    if (sc && sc->expect_lost >= 0)
        failed += invariant(inv, "lost_callers", r->lost <= sc->expect_lost,
                            "lost %ld, allowed %ld", r->lost, sc->expect_lost);
    if (sc && sc->expect_max_overlimit >= 0)
        failed += invariant(inv, "overlimit_rejections", r->overlimit <= sc->expect_max_overlimit,
                            "%ld over-limit rejections, allowed %ld", r->overlimit,
                            sc->expect_max_overlimit);
    if (sc) {
        failed += check_final(inv, "gate_final_active", sc->expect_final_active, gate_active);
        failed += check_final(inv, "gate_final_waiting", sc->expect_final_waiting, gate_waiting);
    }
    if (sc && sc->expect_max_idle_slot_s >= 0)
        failed += invariant(inv, "idle_slot_seconds", r->idle_slot_s <= sc->expect_max_idle_slot_s,
                            "%.3f idle slot-seconds, allowed %.3f", r->idle_slot_s,
                            sc->expect_max_idle_slot_s);
    if (sc && sc->expect_min_connected >= 0)
        failed += invariant(inv, "min_connected", r->connected >= sc->expect_min_connected,
                            "%ld connected, required %ld", r->connected, sc->expect_min_connected);
    long accounted = r->connected + r->abandoned + r->overflowed + r->lost;
    failed += invariant(inv, "callers_accounted", accounted == r->total,
                        "total %ld, connected+abandoned+overflowed+lost %ld", r->total, accounted);
    for (size_t i = 0; i < r->nfails; i++)
        failed += invariant(inv, r->fails[i].name, 0, "%s", r->fails[i].detail);
    json_object_set_new(root, "invariants", inv);
    json_object_set_new(root, "ok", json_boolean(failed == 0));

    if (out) {
        if (json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0 ||
            fputc('\n', out) == EOF || fflush(out) != 0)
            fprintf(stderr, "callgate-sim: could not write the report\n");
    }
    json_decref(root);
    return failed;
}

void sim_report_progress(const struct sim_report *r, char *out, size_t outlen)
{
    char ewt[32];
    if (r->last_announced >= 0)
        snprintf(ewt, sizeof(ewt), "%.0fs", r->last_announced);
    else
        snprintf(ewt, sizeof(ewt), "-");
    snprintf(out, outlen,
             "t=%.1fs waiting=%ld active=%ld/%ld connected=%ld abandoned=%ld overflow=%ld "
             "lost=%ld ewt=%s",
             now_of(r), r->waiting, r->live + external(r), limit_total(r), r->connected,
             r->abandoned, r->overflowed, r->lost, ewt);
}

char *sim_report_status_json(const struct sim_report *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "t", json_real(round(now_of(r) * 1000.0) / 1000.0));
    json_object_set_new(o, "waiting", json_integer(r->waiting));
    json_object_set_new(o, "active", json_integer(r->live + external(r)));
    json_object_set_new(o, "limit", json_integer(limit_total(r)));
    json_object_set_new(o, "peak", json_integer(r->peak));
    json_object_set_new(o, "total", json_integer(r->total));
    json_object_set_new(o, "connected", json_integer(r->connected));
    json_object_set_new(o, "abandoned", json_integer(r->abandoned));
    json_object_set_new(o, "overflowed", json_integer(r->overflowed));
    json_object_set_new(o, "lost", json_integer(r->lost));
    json_object_set_new(o, "orphans", json_integer(r->orphans));
    json_object_set_new(o, "overlimitRejections", json_integer(r->overlimit));
    json_object_set_new(o, "idleSlotSeconds", json_real(r->idle_slot_s));
    json_object_set_new(o, "ewt",
                        r->last_announced >= 0 ? json_real(r->last_announced) : json_null());
    if (r->w && r->w->taskrouter)
        json_object_set_new(o, "taskrouter", taskrouter_json(r->w, 0));
    char *s = cg_json_dumps(o);
    json_decref(o);
    return s;
}
