/*
 * sim.h - callgate-sim: a stand-in for Twilio (REST, voice engine,
 * TaskRouter), Vapi (bypass calls, webhooks) and the callers, in one
 * single-threaded process on the same stack as callgate.
 *
 * One HTTP server serves every API the gate calls, on one port:
 *   /2010-04-01/Accounts/{AC}/...   Twilio Voice REST (twilio_rest.c)
 *   /v1/Workspaces/{WS}/...         TaskRouter (taskrouter.c)
 *   /call, /call/{id}               Vapi (vapi.c)
 *   /assistant/{id}, /phone-number/{id}  Vapi, read-only (vapi.c)
 *   /sim/status                     live figures for the demo's progress line
 * One HTTP client delivers every webhook (hooks.c), to the gate's
 * PUBLIC_URL, acting as the load balancer in front of one or more callgate
 * instances: a URL under public_url is sent to one of the instance base URLs
 * (round robin, skipping an instance that refuses connections) while the
 * signature is computed over the public URL, as Twilio would.
 *
 * Module map:
 *   main.c        command line, builds the world, runs the loop, writes the report
 *   world.c       the world's clock (sim_now_s)
 *   scenario.c    scenario file (JSON) -> struct sim_scenario
 *   rng.c         seeded PRNG and distributions: a run repeats exactly
 *   callers.c     arrival process; each arrival starts a Twilio call
 *   twiml_reader.c TwiML parser (pure; fuzz target)
 *   twilio.c      the simulated Twilio as one object: engine plus REST API
 *   twilio_voice.c per-call state machine: webhooks, TwiML execution,
 *                 <Enqueue> and the waitUrl loop, status callbacks; a
 *                 transfer's <Dial>/<Sip> to a simulated person and the
 *                 hand-off's <Enqueue workflowSid> to a simulated agent
 *   twilio_rest.c Queues, Members, Calls REST resources; the Account and its
 *                 IncomingPhoneNumbers, read-only from the scenario
 *   twapi.c       what twilio_rest.c and the TaskRouter share: JSON writer,
 *                 Twilio error bodies, Basic auth header, paging parameters
 *   vapi.c        POST /call, GET /call, call lifecycle, server webhooks,
 *                 the assistant's phone-call-control (scenario "transfers")
 *   hooks.c       webhook delivery with faults (drop, duplicate, delay, reorder)
 *   outage.c      API outage windows: Twilio REST or Vapi unreachable for a while
 *   taskrouter.c  TaskRouter v1 as a whole, over taskrouter_model.c (queue
 *                 model and truth), taskrouter_stats.c (statistics) and
 *                 taskrouter_rest.c (HTTP resources); see taskrouter_int.h
 *   wtscore.c     samples callgate's /wait-times (serve --wait-times) and
 *                 scores them against the TaskRouter model's truth
 *   report.c      truth bookkeeping: every side records its events here
 *   report_json.c the JSON report, invariants and the live status
 *   scenario_routes.c the scenario's routes, route checks and dialer
 *   vapi_dto.c    POST /call body validation (CreateCallDTO)
 *   rcheck.c      route truth and the route invariants (scenarios with routes)
 *   dialer.c      the dialer client of callgate's /calls/outbound and /slots
 *
 * Who calls whom. Calls go one way only, from a module to those below it;
 * no set of files calls into each other in a loop (scripts/check-layout.sh
 * checks it on the objects). Lowest first:
 *   1. world, rng, scenario, twiml_reader, twapi,  (use nothing of sim/ but
 *      scenario_routes, vapi_dto                   the scenario types)
 *   2. report, rcheck                              (world)
 *   3. hooks, outage                               (report, rng, world)
 *   4. vapi                                        (hooks, outage, report, rng)
 *   5. twilio_voice                                (vapi, hooks, report, rng,
 *                                                   twiml_reader, world)
 *   6. twilio_rest                                 (twilio_voice, hooks, outage,
 *                                                   report, rng, twapi)
 *   7. twilio                                      (twilio_rest, twilio_voice)
 *   8. callers                                     (twilio_voice, report, rng)
 *      dialer                                      (vapi, rcheck, report, rng)
 *   9. taskrouter_model < taskrouter_stats < taskrouter_rest < taskrouter
 *                                                  (report, rng, twapi)
 *  10. wtscore                                     (taskrouter)
 *  11. report_json                                 (report, taskrouter, wtscore,
 *                                                   rcheck, dialer, world)
 *  and main.c, the composition root, over everything.
 * Where a lower module must tell an upper one something, it calls back
 * through a function pointer the upper one registered: Vapi reports the
 * end of a bridged stream through w->stream_ended (set by
 * sim_twilio_new()); hooks.c, outage.c and the HTTP server answer through
 * the callbacks their users pass in.
 *
 * Time: real time on the loop. Scenarios are short (seconds); every duration
 * in a scenario file is in seconds and may be fractional.
 */
#ifndef SIM_H
#define SIM_H

#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

struct event_base;
struct cg_httpd;
struct cg_httpc;
struct sim_rng;
struct sim_twilio;
struct sim_vapi;
struct sim_report;
struct sim_hooks;
struct sim_callers;
struct sim_taskrouter;
struct sim_wtscore;
struct sim_call; /* a Twilio call (twilio_voice.c) */
struct sim_rcheck;
struct sim_dialer;

struct sim_callbacks_truth;

struct sim_world {
    struct event_base *base;
    struct cg_httpd *httpd;
    struct cg_httpc *httpc;
    const struct sim_scenario *sc;
    struct sim_rng *rng;       /* caller parameters only, so they repeat exactly */
    struct sim_rng *fault_rng; /* faults, so changing faults does not change callers */
    struct sim_hooks *hooks;
    struct sim_twilio *twilio;
    struct sim_vapi *vapi;
    struct sim_callers *callers;
    struct sim_report *report;
    struct sim_taskrouter *taskrouter; /* NULL when the scenario has no TaskRouter queues */
    struct sim_wtscore *wtscore;       /* NULL unless serve --wait-times */
    struct sim_rcheck *rcheck;         /* route truth (rcheck.h); NULL without routes */
    struct sim_dialer *dialer;         /* the dialer client (dialer.h); NULL without one */

    /* Queued callbacks' truth and invariants (callbacks.h). */
    struct sim_callbacks_truth *callbacks;
    /* The Vapi call bridged to Twilio call call_sid ended on Vapi's side.
     * Set by sim_twilio_new() to sim_twilio_stream_ended(); NULL: nobody
     * listens. Vapi sits below the Twilio engine and reaches it only
     * through this hook. */
    void (*stream_ended)(struct sim_world *w, const char *call_sid);
    uint64_t start_ms; /* monotonic ms when the scenario started */
    int finished;      /* set when the scenario is over; the loop then exits */
};

/* Seconds since the scenario started. */
double sim_now_s(const struct sim_world *w);

/* ---- Twilio voice side (twilio_voice.c) ---- */
/* Starts an inbound call from a new caller: duration_s is how long the
 * caller talks once connected, patience_s how long they wait in a queue
 * before hanging up (< 0: forever). Returns the call. */
struct sim_call *sim_twilio_new_call(struct sim_world *w, const char *from, double duration_s,
                                     double patience_s);
/* The same, dialing number to (NULL: the one number of a scenario without
 * routes). */
struct sim_call *sim_twilio_new_call_to(struct sim_world *w, const char *from, const char *to,
                                        double duration_s, double patience_s);
/* The Vapi call bridged to this Twilio call ended on Vapi's side (max
 * duration, assistant ended): the <Connect> verb finishes and execution
 * continues with the next verb (normally: none, so the call completes). */
void sim_twilio_stream_ended(struct sim_world *w, const char *call_sid);
/* Number of callers currently in any Twilio queue. */
size_t sim_twilio_waiting(const struct sim_world *w);
/* Live (not completed) Twilio calls. */
size_t sim_twilio_live(const struct sim_world *w);
/* ---- additions (twilio half) ---- */
/* The simulated Twilio (twilio.c): voice engine, plus the 2010 REST API
 * registered on w->httpd (which must exist; w->hooks, w->rng, w->fault_rng
 * and w->sc must be set before the first call). Sets w->stream_ended.
 * NULL on failure. Store it in w->twilio. */
struct sim_twilio *sim_twilio_new(struct sim_world *w);
/* Frees every call and queue; REST replies still held back are answered
 * 503. Free the hooks first and set w->hooks to NULL: webhooks still in
 * flight are then released here; with the hooks still alive they are
 * dropped when they call back. The REST routes stay registered on w->httpd
 * (it has no way to remove them): free the httpd next, without serving
 * new requests in between. */
void sim_twilio_free(struct sim_twilio *tw);
/* The scenario is over: every caller without an outcome yet (still queued,
 * still listening, still fetching) is recorded as LOST, queued ones are
 * dequeued in the report, and the engine stops (no more webhooks). */
void sim_twilio_finish(struct sim_world *w);
/* The SID of the queue with this friendly name, created with the
 * scenario's queue_max_size if it does not exist; NULL if the name is
 * empty or longer than 64. Lets main.c hand TWILIO_QUEUE_SID to the gate. */
const char *sim_twilio_queue_sid(struct sim_world *w, const char *friendly_name);

/* ---- Vapi side (vapi.c) ---- */
/* A Twilio call executed <Connect><Stream url=...>. Returns 0 if the URL
 * names a Vapi call that is waiting for its stream (it becomes in-progress
 * and is now bridged to call_sid), -1 otherwise (the stream fails at once). */
int sim_vapi_stream_connect(struct sim_world *w, const char *stream_url, const char *call_sid);
/* The Twilio leg of a bridged call hung up: the Vapi call ends a moment
 * later (scenario vapi.end_lag_s), as the media stream closes. */
void sim_vapi_stream_closed(struct sim_world *w, const char *vapi_id);
/* Vapi calls alive now (created and not ended): Vapi's concurrency count. */
size_t sim_vapi_live(const struct sim_world *w);

/* ---- TaskRouter (taskrouter.c) ---- */
/* The model and its API are in taskrouter.h; main.c creates it when the
 * scenario's taskrouter.queues > 0 and stores it in w->taskrouter. */

#endif
