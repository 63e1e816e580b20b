/*
 * report_int.h - the state behind struct sim_report, shared by the two
 * files that implement report.h: report.c (events and bookkeeping, used by
 * every simulated side) and report_json.c (the JSON report and the live
 * status, which also read TaskRouter and the wait-time scorer). Internal to
 * those two files.
 */
#ifndef SIM_REPORT_INT_H
#define SIM_REPORT_INT_H

#include <stddef.h>

#include "report.h"
#include "sim.h"

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

static inline double sim_report_now(const struct sim_report *r)
{
    if (r->clock)
        return r->clock(r->clock_arg);
    return sim_now_s(r->w);
}

static inline long sim_report_limit(const struct sim_report *r)
{
    return r->w && r->w->sc ? r->w->sc->vapi_limit : 0;
}

static inline long sim_report_external(const struct sim_report *r)
{
    return r->w && r->w->sc ? r->w->sc->vapi_external_calls : 0;
}

/* Integrates idle slots up to now. Called before every state change and
 * before the figures are read. */
void sim_report_advance(struct sim_report *r);

#endif
