/*
 * report_json.c - the figures of a run as JSON: the final report with its
 * invariants, the one-line progress summary and the live status. It sits
 * above the truth it reads (report.c), the TaskRouter model (taskrouter.c)
 * and the wait-time scorer (wtscore.c); none of them calls back into it.
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
#include "dialer.h"
#include "rcheck.h"
#include "report_int.h"
#include "sim.h"
#include "taskrouter.h"
#include "wtscore.h"

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

/* A free-form counter's value (report.h sim_report_count). */
static long counter_of(const struct sim_report *r, const char *name)
{
    for (size_t i = 0; i < r->ncounters; i++)
        if (strcmp(r->counters[i].name, name) == 0)
            return r->counters[i].n;
    return 0;
}

/* Call control (scenario "transfers"): every forward the assistant asked
 * for reached its person or the human queue, every refusal and ring-out
 * was met, and every hand-off task named its Vapi call. */
static int transfer_invariants(const struct sim_report *r, json_t *inv)
{
    int failed = 0;
    static const char *const kinds[] = {"number", "sip", "queue"};
    for (size_t i = 0; i < 3; i++) {
        char req[64], got[64], name[64];
        snprintf(req, sizeof req, "transfers.requested.%s", kinds[i]);
        snprintf(got, sizeof got, "transfers.reached.%s", kinds[i]);
        snprintf(name, sizeof name, "forwarded_reached_%s", kinds[i]);
        long a = counter_of(r, req), b = counter_of(r, got);
        failed += invariant(inv, name, a == b, "%ld asked for, %ld reached", a, b);
    }
    long a = counter_of(r, "transfers.requested.refused");
    long b = counter_of(r, "transfers.refused_by_twilio");
    failed +=
        invariant(inv, "refused_forwards_seen", a == b,
                  "%ld forwards to the invalid number asked for, %ld refused by Twilio", a, b);
    a = counter_of(r, "transfers.requested.no_answer");
    b = counter_of(r, "transfers.no_answer");
    failed += invariant(inv, "unanswered_forwards_seen", a == b,
                        "%ld forwards to the no-answer number asked for, %ld rang out", a, b);
    b = counter_of(r, "transfers.task_bad_attributes");
    failed += invariant(inv, "handoff_task_attributes", b == 0,
                        "%ld hand-off tasks without vapiCallId or waitSoFarSeconds", b);
    return failed;
}

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
    sim_report_advance(r);
    const struct sim_scenario *sc = r->w ? r->w->sc : NULL;
    long limit = sim_report_limit(r);
    int failed = 0;

    json_t *root = json_object();
    json_object_set_new(root, "scenario", json_string(sc && sc->name ? sc->name : ""));
    json_object_set_new(root, "seed", json_integer(sc ? (json_int_t)sc->seed : 0));
    json_object_set_new(root, "limit", json_integer(limit));
    json_object_set_new(root, "external_calls", json_integer(sim_report_external(r)));
    json_object_set_new(root, "elapsed_s", json_real(sim_report_now(r)));
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
    if (sc && sc->transfers.share > 0)
        failed += transfer_invariants(r, inv);
    if (sc && sc->expect_max_refill_ms >= 0) {
        double worst = 0;
        for (size_t i = 0; i < r->refills.n; i++)
            worst = r->refills.v[i] > worst ? r->refills.v[i] : worst;
        failed +=
            invariant(inv, "slot_refilled_after_vapi_end", worst <= sc->expect_max_refill_ms,
                      "slowest refill after a Vapi end %.0f ms, allowed %.0f ms (%zu refills)",
                      worst, sc->expect_max_refill_ms, r->refills.n);
    }
    long accounted = r->connected + r->abandoned + r->overflowed + r->lost;
    failed += invariant(inv, "callers_accounted", accounted == r->total,
                        "total %ld, connected+abandoned+overflowed+lost %ld", r->total, accounted);
    for (size_t i = 0; i < r->nfails; i++)
        failed += invariant(inv, r->fails[i].name, 0, "%s", r->fails[i].detail);
    /* Routes: per-route figures and the route invariants (rcheck.h), and
     * the dialer's (dialer.h). */
    if (r->w && r->w->rcheck)
        failed += sim_rcheck_finish(r->w->rcheck, sim_report_now(r), root, inv);
    if (r->w && r->w->dialer)
        failed += sim_dialer_report(r->w->dialer, root, inv);
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
             sim_report_now(r), r->waiting, r->live + sim_report_external(r), sim_report_limit(r),
             r->connected, r->abandoned, r->overflowed, r->lost, ewt);
}

char *sim_report_status_json(const struct sim_report *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "t", json_real(round(sim_report_now(r) * 1000.0) / 1000.0));
    json_object_set_new(o, "waiting", json_integer(r->waiting));
    json_object_set_new(o, "active", json_integer(r->live + sim_report_external(r)));
    json_object_set_new(o, "limit", json_integer(sim_report_limit(r)));
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
    /* Queued callbacks (callbacks.c): requested, called back, given up. */
    json_object_set_new(o, "callbacksRequested",
                        json_integer(counter_of(r, "callbacks.requested")));
    json_object_set_new(o, "callbacksConnected",
                        json_integer(counter_of(r, "callbacks.connected")));
    json_object_set_new(o, "callbacksFailed", json_integer(counter_of(r, "callbacks.failed")));
    if (r->w && r->w->taskrouter)
        json_object_set_new(o, "taskrouter", taskrouter_json(r->w, 0));
    char *s = cg_json_dumps(o);
    json_decref(o);
    return s;
}
