/*
 * rcheck.h - the truth of a run with routes (scenario_routes.h), and the
 * route invariants judged on it. The Twilio side tells it where each caller
 * waits, the Vapi side which calls count against the organization's limit
 * (inbound bypass calls, outbound calls, the dialer's web calls held under
 * a leased slot); it never reads what callgate says.
 *
 * Invariants (each one entry of the report's "invariants", prefixed
 * "routes_"):
 *   org_limit            Vapi never refused a call for the limit and the
 *                        calls of every kind never exceeded it;
 *   max                  no route ever had more live calls than its max;
 *   min_guarantee        a route with callers waiting and fewer live calls
 *                        than its min did not stay so for longer than
 *                        min_tolerance_s while the organization had a free
 *                        slot, and no other route (itself not below its min
 *                        with callers waiting) started a call while it had
 *                        been so for longer than min_tolerance_s;
 *   fifo                 no caller was admitted (its Vapi call created) more
 *                        than overtake_tolerance_s before an earlier caller
 *                        of the same route (arrived more than
 *                        overtake_tolerance_s before it) was admitted, hung
 *                        up or the run ended; a VIP overtaking a non-VIP is
 *                        allowed;
 *   outbound_after_inbound  (route_checks.outbound_after_inbound) no
 *                        outbound call of a route started while an inbound
 *                        caller of that route had waited, not yet admitted,
 *                        for longer than min_tolerance_s;
 *   outbound_never_pushes_inbound  no inbound call was refused for the
 *                        limit while outbound calls or leased slots held
 *                        part of it;
 *   placement            every caller waited in its route's Twilio queue and
 *                        reached its route's assistant and phone number.
 *
 * Figures (the report's "routes"): the organization's peak and refusals,
 * idle slot-seconds (free slots that waiting callers of routes below their
 * max could have taken, integrated over time), and per route its peak,
 * calls by kind, worst time below its min and the waits (rcheck.c).
 *
 * Time is passed in by the caller (scenario seconds), so unit tests feed
 * synthetic sequences. Strings are copied; nothing is retained.
 */
#ifndef SIM_RCHECK_H
#define SIM_RCHECK_H

#include <stddef.h>

struct sim_routes_cfg;
struct sim_rcheck;
struct json_t;

enum sim_rkind { SIM_RK_INBOUND, SIM_RK_OUTBOUND, SIM_RK_SLOT, SIM_RK_NKINDS };

/* limit: the organization's (vapi.limit); external: calls in the pool
 * nobody here places (vapi.external_calls), counted throughout. cfg must
 * outlive the checker. */
struct sim_rcheck *sim_rcheck_new(const struct sim_routes_cfg *cfg, int limit, int external);
void sim_rcheck_free(struct sim_rcheck *rc);

/* The route serving a dialed number / a Vapi phone number id; -1: none. */
int sim_rcheck_route_of_number(const struct sim_rcheck *rc, const char *to);
int sim_rcheck_route_of_phone(const struct sim_rcheck *rc, const char *phone_number_id);

/* Twilio side. A caller (CallSid sid, dialed to, calling from) arrived at
 * t (its place in its route's line); entered the Twilio queue named queue
 * at t (arrived_s: when it arrived, should it not have been seen yet); left
 * it at t; connected to an assistant after waiting waited_s since arrival. */
void sim_rcheck_arrived(struct sim_rcheck *rc, double t, const char *sid, const char *to,
                        const char *from);
void sim_rcheck_enqueued(struct sim_rcheck *rc, double t, const char *sid, const char *to,
                         const char *from, const char *queue, double arrived_s);
void sim_rcheck_dequeued(struct sim_rcheck *rc, double t, const char *sid);
void sim_rcheck_connected(struct sim_rcheck *rc, double t, const char *sid, double waited_s);

/* Vapi side. A call of this kind began counting against the limit at t
 * (route -1: none of the routes'); caller_sid names the Twilio caller of an
 * inbound call (its admission), assistant_id what it was created with (both
 * may be NULL). ended: it no longer counts. refused: Vapi refused a call of
 * this kind for the limit. */
void sim_rcheck_started(struct sim_rcheck *rc, double t, int route, enum sim_rkind kind,
                        const char *caller_sid, const char *assistant_id);
void sim_rcheck_ended(struct sim_rcheck *rc, double t, int route, enum sim_rkind kind);
void sim_rcheck_refused(struct sim_rcheck *rc, double t, int route, enum sim_rkind kind);

/* Live calls now: of a route (-1: the organization, external included). */
long sim_rcheck_live(const struct sim_rcheck *rc, int route);

/* Closes the run at t: adds "routes" (per-route figures) to root, appends
 * the invariants to inv (a JSON array of {name, ok, detail}), prints one
 * line per route and every failure on stderr; returns the failures. */
int sim_rcheck_finish(struct sim_rcheck *rc, double t, struct json_t *root, struct json_t *inv);

#endif
