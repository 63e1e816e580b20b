/*
 * routes.h - the gate's routes (ROUTES_FILE, base/config_routes.h) at run
 * time: the route a dialled number takes, and the routes published in
 * Redis (routes.lua, cg:{g}:routes) where every admission script reads
 * them. Without ROUTES_FILE the gate has one route and nothing is
 * published (an earlier publication is removed).
 *
 * Ownership: routes returned point into the configuration, which outlives
 * the gate. Publishing is asynchronous and fire-and-forget: a failure is
 * logged and the next tick (every 10 s, and at every return of Redis)
 * publishes again.
 */
#ifndef CG_GATE_ROUTES_H
#define CG_GATE_ROUTES_H

struct cg_config;
struct cg_route;
struct gate_store;

/* The route that serves dialled number to: the route listing it, else the
 * first route (a number the file does not list still reaches an
 * assistant). NULL without routes. */
const struct cg_route *gate_route_for(const struct cg_config *cfg, const char *to);
/* The route named name, or NULL (without routes, or no such route). */
const struct cg_route *gate_route_named(const struct cg_config *cfg, const char *name);
/* The Twilio queue of a route, or TWILIO_QUEUE_NAME for NULL. */
const char *gate_route_queue(const struct cg_config *cfg, const struct cg_route *rt);

/* Publishes the routes (or removes a publication without them). 0, or -1
 * when the script could not be sent. */
int gate_routes_publish(struct gate_store *s, const struct cg_config *cfg);

#endif
