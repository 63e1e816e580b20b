/*
 * route_figures.h - each route's figures (ROUTES_FILE) read in one step
 * (route_figures.lua): waiting, active, its min and max, priority and its
 * counters, for /metrics (gate.c) and /health (health.c).
 *
 * Callback rules: cb runs exactly once, later, from the loop; the figures
 * and their names are valid only during the callback. ok is 0 when Redis
 * did not answer (n is then 0). Without routes, cb runs with n 0, ok 1.
 */
#ifndef CG_GATE_ROUTE_FIGURES_H
#define CG_GATE_ROUTE_FIGURES_H

#include <stddef.h>

struct cg_buf;
struct cg_gate;

/* The counters' names, in the order of gate_route_fig.events. */
#define GATE_ROUTE_EVENTS 10
extern const char *const gate_route_event_names[GATE_ROUTE_EVENTS];

struct gate_route_fig {
    const char *name;
    long long waiting, active, min, max, priority;
    long long events[GATE_ROUTE_EVENTS];
};

typedef void (*gate_route_figures_cb)(const struct gate_route_fig *v, size_t n, int ok, void *arg);

/* 0, or -1 (the store refused the command) without a callback. */
int gate_route_figures(struct cg_gate *g, gate_route_figures_cb cb, void *arg);

/* Appends the figures as a JSON array of {"name","waiting","active","min",
 * "max","priority","refusals",...counters} objects. */
int gate_route_figures_json(struct cg_buf *b, const struct gate_route_fig *v, size_t n);

#endif
