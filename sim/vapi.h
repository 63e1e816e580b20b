/*
 * vapi.h - the simulated Vapi: POST /call (provider bypass only), GET /call,
 * GET /call/{id}, the call lifecycle and its server messages; and, read-only
 * from the scenario's "accounts.vapi", GET /assistant/{id} and
 * GET /phone-number/{id} (what `callgate doctor` checks).
 *
 * A call counts against the concurrency limit from creation until it ends:
 * when its stream never arrives (no_stream_timeout_s), a moment after the
 * Twilio leg hangs up (end_lag_s), or at maxDurationSeconds. On the end it
 * posts status-update "ended" at once and end-of-call-report report_lag_s
 * later, to <public_url>/call-ended (or assistantOverrides.server.url), with
 * x-vapi-secret and the scenario's Vapi webhook faults.
 *
 * Outbound calls (scenarios with routes only): POST /call without bypass
 * dials customer.number; status-update queued -> ringing -> in-progress ->
 * ended (customer-ended-call, customer-busy, customer-did-not-answer) as
 * dialer.customers draws it, counting against the limit from creation.
 *
 * The world entry points are in sim.h: sim_vapi_stream_connect(),
 * sim_vapi_stream_closed(), sim_vapi_live().
 */
#ifndef SIM_VAPI_H
#define SIM_VAPI_H

#include <stddef.h>

struct sim_world;
struct sim_vapi;

/* Registers the routes on w->httpd. Needs w->sc, w->rng, w->fault_rng,
 * w->hooks; w->report may be NULL. NULL if a route cannot be added. */
struct sim_vapi *sim_vapi_new(struct sim_world *w);
/* Cancels every timer (no more webhooks) and answers nothing: requests
 * still delayed by injected latency are left to cg_httpd_free(), which must
 * come later. */
void sim_vapi_free(struct sim_vapi *v);

/* Highest sim_vapi_live() seen. */
size_t sim_vapi_peak(const struct sim_vapi *v);
/* Calls created (admitted) so far, and calls alive and waiting for their
 * stream. */
size_t sim_vapi_created(const struct sim_vapi *v);
size_t sim_vapi_waiting_stream(const struct sim_vapi *v);

/* A web call held under a slot leased from route (of the scenario's
 * routes; -1: none) starts now: 0, or -1 when Vapi is at its limit and
 * refuses it (counted as an over-limit refusal, also to w->rcheck).
 * sim_vapi_web_end(): it ended. Web calls send no server messages; they
 * count against Vapi's limit (sim_vapi_live()) while they last. The lease
 * around one is the dialer's to tell the route checker: it lasts longer. */
int sim_vapi_web_start(struct sim_world *w, int route);
void sim_vapi_web_end(struct sim_world *w, int route);
/* Outbound calls to number: 0 none was created, 1 one is live, 2 every
 * one has ended. */
int sim_vapi_outbound_state(const struct sim_world *w, const char *number);

#endif
