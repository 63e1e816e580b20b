/*
 * callbacks.h - the truth of queued callbacks in a run, and their
 * invariants: which callers pressed 1 (and the estimate they were then
 * given), each outbound call the gate placed for them (by attempt), and how
 * each callback ended. Judged at the end (sim_cb_finish): every callback
 * dialled at most once per attempt, never before a caller who arrived
 * earlier and still waits on the line, no Vapi call created for an outbound
 * leg before its answering-machine detection said a person answered, no
 * callback lost (connected, or failed after all its attempts); and the
 * share of connected callbacks that came within the estimate given.
 *
 * twilio_voice.c reports presses and the legs' outcomes, twilio_outbound.c
 * the dials, vapi.c the Vapi calls. The callers' outcomes go to report.c:
 * a callback connected counts as the caller connected (waited from their
 * first call), one given up after all its attempts as abandoned, one still
 * pending at the end as lost.
 *
 * Ownership: the table lives in the world (sim_cb_new/free); strings are
 * copied. No callbacks.
 */
#ifndef SIM_CALLBACKS_H
#define SIM_CALLBACKS_H

#include <stdio.h>

struct sim_world;
struct sim_callbacks_truth;

/* seed: the callbacks' own draws (sim_cb_unit), apart from the callers'. */
struct sim_callbacks_truth *sim_cb_new(struct sim_world *w, unsigned long long seed);
void sim_cb_free(struct sim_callbacks_truth *t);

/* A draw in [0, 1) from the callbacks' own generator. */
double sim_cb_unit(struct sim_world *w);
/* A caller (number, CallSid, arrival) pressed 1 and the gate confirmed,
 * announcing est_s (< 0: not told); they talk duration_s once called. */
void sim_cb_pressed(struct sim_world *w, const char *number, const char *sid, double arrived_s,
                    double est_s, double duration_s);
/* A caller still on the line entered the queue (for the order check), or
 * left it. */
void sim_cb_line(struct sim_world *w, const char *sid, double arrived_s, int waiting);
/* The gate placed an outbound call to number for attempt (from its Url;
 * <= 0: unknown), as leg. Returns the caller's talk time, or -1 when
 * nobody pressed 1 from that number. */
double sim_cb_dialed(struct sim_world *w, const char *number, long attempt, const char *leg);
/* The leg's detection finished (a person or a machine answered). */
void sim_cb_detected(struct sim_world *w, const char *leg);
/* The leg reached the assistant / ended without it (busy, no answer, a
 * machine). */
void sim_cb_leg_connected(struct sim_world *w, const char *leg);
void sim_cb_leg_failed(struct sim_world *w, const char *leg);
/* Vapi created a call for Twilio CallSid sid. 1 when sid is a callback's
 * leg, else 0. */
int sim_cb_vapi_created(struct sim_world *w, const char *sid);
/* Callbacks the gate still owes (pressed 1, neither connected nor given
 * up): the run is not over while there are any, since nobody is on a line
 * meanwhile. */
size_t sim_cb_pending(struct sim_world *w);
/* The end: outcomes of the callbacks still pending, the invariants
 * (sim_report_fail), and a summary line on out. */
void sim_cb_finish(struct sim_world *w, FILE *out);

#endif
