/*
 * callers.h - the arrival process: who calls, when, for how long, and how
 * patiently. Every caller is drawn from w->rng when the module is created,
 * in a fixed order (arrival time, From number, talk duration, patience), so
 * the population is the same for a seed whatever the timing of the run.
 * With routes (scenario_routes.h), each route's arrivals are drawn in turn
 * (then its number and VIP draw after the four above) and merged by time.
 */
#ifndef SIM_CALLERS_H
#define SIM_CALLERS_H

#include <stddef.h>

struct sim_world;
struct sim_callers;

/* A caller, as drawn. */
struct sim_caller {
    double at_s;       /* arrival, seconds after the scenario starts */
    char from[16];     /* "+1555" and 7 digits */
    double duration_s; /* talk time once connected */
    double patience_s; /* < 0: waits forever */
    size_t seq;        /* draw order */
    const char *to;    /* the number dialed (the scenario's routes); NULL: the default */
    int route;         /* index into the scenario's routes; -1 without routes */
    int vip;           /* calls from one of the route's vip numbers */
};

/* At most this many callers per run. */
#define SIM_CALLERS_MAX 1000000

/* Draws the whole population from w->rng and w->sc. NULL with err filled
 * when it would exceed SIM_CALLERS_MAX. */
struct sim_callers *sim_callers_new(struct sim_world *w, char *err, size_t errlen);
void sim_callers_free(struct sim_callers *c);
/* Arms the arrivals, relative to w->start_ms (set it first). Each arrival
 * reports sim_report_caller_arrived() and calls sim_twilio_new_call(). */
int sim_callers_start(struct sim_callers *c);
size_t sim_callers_count(const struct sim_callers *c);
/* The i-th caller in arrival order, or NULL. */
const struct sim_caller *sim_callers_get(const struct sim_callers *c, size_t i);
/* Callers who have arrived so far. */
size_t sim_callers_arrived(const struct sim_callers *c);
/* 1 once every caller has arrived. */
int sim_callers_done(const struct sim_callers *c);
/* When the arrival period ends: the later of duration_s and the last arrival. */
double sim_callers_end_s(const struct sim_callers *c);

#endif
