/*
 * dialer.h - the simulated dialer: a client of callgate's admin API that
 * shares the Vapi budget with the inbound callers (scenario "dialer",
 * scenario_routes.h).
 *
 * Outbound calls: at a Poisson rate, POST /calls/outbound
 * {"route", "number", "variables"} with the admin Bearer token; a 202
 * {"id", "position"} is then polled with GET /calls/outbound/{id} every
 * poll_s until its "state" (or "status") is final (ended, completed, failed, canceled,
 * cancelled, busy, no-answer, expired, rejected) or the simulated Vapi's
 * outbound call to that number has ended and a poll answered after that.
 * Each number is dialed once ("+1777" and 7 digits, by request order).
 *
 * Leased slots: at a Poisson rate, POST /slots {"route", "ttlSeconds"};
 * a 201 {"id", "expiresAt"} starts a web call at the simulated Vapi
 * (sim_vapi_web_start()) that lasts hold_min_s..hold_max_s (always less
 * than the ttl); renew_share of them are renewed half way
 * (POST /slots/{id}/renew, 200); at the end the web call ends and the
 * lease is released (DELETE /slots/{id}, 204), except expire_share of
 * them, left to expire. A 429 must carry Retry-After. For the route
 * checker (rcheck.h) a lease counts as a call of its route from its 201
 * until its release goes out, or until its ttl has run from when the
 * request that last set it (the grant or the renewal) went out.
 *
 * Requests go to the gates round robin. Draws come from the dialer's own
 * generator (seed-derived), so callers repeat whatever the dialer does.
 */
#ifndef SIM_DIALER_H
#define SIM_DIALER_H

#include <stddef.h>

struct sim_world;
struct sim_dialer;
struct json_t;

/* Needs w->sc->routes with a dialer, w->base, w->httpc, w->vapi. The gate
 * base URLs are copied. NULL when the scenario has no dialer. */
struct sim_dialer *sim_dialer_new(struct sim_world *w, const char *const *gates, size_t ngates);
/* Arms the schedule, relative to w->start_ms (set it first). */
int sim_dialer_start(struct sim_dialer *d);
/* 1 when nothing is left to do: every request made and answered, every
 * web call ended, every accepted outbound call's status final. */
int sim_dialer_done(const struct sim_dialer *d);
/* Stops timers and polling; requests in flight complete into nothing. */
void sim_dialer_stop(struct sim_dialer *d);
/* Frees everything; call after cg_httpc_free() of w->httpc (its cancelled
 * callbacks still reach the dialer). */
void sim_dialer_free(struct sim_dialer *d);
/* Adds "dialer" (figures) to root and its invariants to inv; returns the
 * number failed. */
int sim_dialer_report(struct sim_dialer *d, struct json_t *root, struct json_t *inv);

#endif
