/*
 * twilio.h - the simulated Twilio: per-call state (twilio_voice.c) and the
 * 2010 REST API over it (twilio_rest.c), put together by twilio.c. Internal
 * to those files and their tests; the rest of the simulator uses the sim.h
 * functions.
 *
 * Dependencies point one way: twilio.c uses twilio_rest.c and
 * twilio_voice.c; twilio_rest.c uses twilio_voice.c; the engine calls
 * neither.
 *
 * Objects. Calls live until sim_twilio_free(), completed ones included, so
 * that REST can still answer for them (fetch, 21220). Queues live until
 * deleted through REST or sim_twilio_free(). A queue holds its members in
 * FIFO order; position 1 is the front.
 *
 * Asynchrony. Every TwiML fetch and timer of a call is stamped with the
 * call's generation; interrupting a call (REST redirect, hang-up) bumps the
 * generation, so late responses and timers of what ran before are dropped.
 */
#ifndef SIM_TWILIO_H
#define SIM_TWILIO_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "report.h"
#include "sim.h"
#include "twiml_reader.h"

struct event;
struct sim_fetch;
struct sim_rest_pending;
struct sim_outage_hold;
struct cg_http_req;

/* Twilio waits this long for a TwiML document. */
#define SIM_TWILIO_FETCH_TIMEOUT_S 15.0
/* The number every simulated caller dials. */
#define SIM_TWILIO_TO "+15005550006"
/* A voicemail left by an overflowed caller lasts this long at most. */
#define SIM_TWILIO_RECORD_S 3.0
/* A waitUrl that plays nothing is not re-requested faster than this. */
#define SIM_TWILIO_MIN_WAIT_CYCLE_S 0.2
/* Default queue size when the scenario gives none (Twilio's current). */
#define SIM_TWILIO_DEFAULT_QUEUE_MAX 1000
#define SIM_TWILIO_MAX_QUEUE_SIZE    5000

enum sim_call_status {
    SIM_CALL_RINGING,
    SIM_CALL_IN_PROGRESS,
    SIM_CALL_COMPLETED,
    SIM_CALL_BUSY,
    SIM_CALL_CANCELED,
    SIM_CALL_NO_ANSWER, /* an outbound call nobody answered */
};

struct sim_queue {
    struct cg_list link; /* sim_twilio.queues, creation order */
    char sid[35];
    char *name;
    int max_size;
    uint64_t created_ms, updated_ms; /* wall clock */
    struct sim_call **members;       /* FIFO; [0] is position 1 */
    size_t n, cap;
};

/* What the engine is doing for a call right now. */
enum sim_call_phase {
    SIM_PH_IDLE,  /* between steps */
    SIM_PH_FETCH, /* waiting for TwiML (timer: fetch timeout) */
    SIM_PH_VERB,  /* a timed verb plays (timer: its end) */
    SIM_PH_TALK,  /* bridged: Vapi stream, <Dial> or <Record> (timer: caller hangs up) */
    SIM_PH_HOLD,  /* queued, nothing to play (timer: next waitUrl request, if any) */
    SIM_PH_DONE,
};

/* SIM_TALK_TASK: with a TaskRouter agent after <Enqueue workflowSid>. */
enum sim_talk_kind { SIM_TALK_STREAM, SIM_TALK_DIAL, SIM_TALK_RECORD, SIM_TALK_TASK };

struct sim_call {
    struct sim_twilio *tw;
    struct cg_list link_all; /* sim_twilio.calls, creation order */
    struct sim_call *hnext;  /* hash chain */
    char sid[35];
    char *from, *to;
    enum sim_call_status status;
    uint64_t created_ms, answered_ms, ended_ms; /* wall clock, 0 = not yet */
    double arrived_s, ended_s;                  /* sim_now_s() */
    double duration_s, patience_s;

    enum sim_call_phase phase;
    unsigned gen;
    struct event *timer;    /* the phase's timer */
    struct event *patience; /* runs only while queued */
    int fetch_kind;         /* SIM_PH_FETCH: what the document is for */

    /* The call's program, and while queued the waitUrl program. doc is the
     * URL each was fetched from, for relative URLs. */
    struct sim_twiml main;
    size_t main_pc;
    char *main_doc;
    struct sim_twiml wait;
    size_t wait_pc;
    char *wait_doc;
    int wait_loaded;
    double wait_cycle_s; /* when the current waitUrl request went out */
    /* A <Say> played in the current main / wait program: a hang-up after
     * it counts as an overflow with a message. */
    int main_said, wait_said;

    /* <Enqueue> in force: from the verb until its action is requested. */
    struct sim_queue *queue; /* non-NULL while a member */
    char queue_sid[35];      /* the queue of the last <Enqueue> */
    char *enq_action;        /* resolved; NULL when none */
    const char *enq_method;
    char *enq_wait_url; /* resolved; NULL: default hold music; "": silence */
    const char *enq_wait_method;
    double enq_s;
    uint64_t enq_ms;
    double queued_total_s;
    struct sim_queue *left_queue; /* the queue it was last dequeued from */

    /* The first estimated wait the gate announced (X-Callgate-Estimated-Wait). */
    int est_have;
    double est_s, est_at_s;

    /* Bridged state (SIM_PH_TALK). */
    enum sim_talk_kind talk_kind;
    double talk_start_s, talked_s;
    char *vapi_id;
    int bridged;       /* talked with an assistant: a later <Dial> is a transfer */
    char *talk_action; /* <Connect>/<Dial>/<Record> action, resolved */
    const char *talk_method;

    int done; /* outcome reported */
    enum sim_outcome outcome;

    /* Queued callbacks (callbacks.h): an outbound call the gate placed,
     * its StatusCallback and what detection said; an inbound caller and
     * the offer (cb_roll 0: not drawn yet, 1: presses 1, 2: does not),
     * pressing, then confirmed: its outcome is the callback's. */
    int outbound;
    char *status_cb;
    const char *answered_by;
    int cb_roll, cb_pressing, cb_pressed;
};

#define SIM_TWILIO_BUCKETS 4096

struct sim_twilio {
    struct sim_world *w;
    struct sim_rng *sid_rng; /* queue SIDs: kept off w->rng so callers repeat */
    struct cg_list calls;    /* every call (struct sim_call.link_all) */
    struct sim_call *buckets[SIM_TWILIO_BUCKETS];
    size_t ncalls;
    struct cg_list queues; /* struct sim_queue.link */
    size_t nqueues;
    size_t live, waiting;
    struct cg_list fetches;         /* outstanding webhooks (struct sim_fetch), newest first */
    struct cg_list rest;            /* REST replies held back by latency, newest first */
    struct sim_outage_hold *outage; /* REST requests held by an outage window (outage.h) */
    uint64_t created_ms;            /* wall: date_created of the account and its numbers */
    struct cg_list outbound;        /* outbound calls' next step (twilio_outbound.c) */
    int finished;
};

/* ---- twilio_voice.c, for twilio.c ---- */
/* The engine alone: no routes, no calls yet. */
struct sim_twilio *sim_tw_engine_new(struct sim_world *w);
/* Frees every call and queue and the webhooks in flight (see
 * sim_twilio_free()), then tw itself. */
void sim_tw_engine_free(struct sim_twilio *tw);

/* ---- twilio_voice.c, for twilio_rest.c ---- */
struct sim_call *sim_tw_find_call(struct sim_twilio *tw, const char *sid);
/* ---- twilio_queues.c ---- */
struct sim_queue *sim_tw_find_queue(struct sim_twilio *tw, const char *sid);
struct sim_queue *sim_tw_queue_by_name(struct sim_twilio *tw, const char *name);
/* A new queue (name copied; max_size already validated). */
struct sim_queue *sim_tw_queue_create(struct sim_twilio *tw, const char *name, int max_size);
/* Deletes an empty queue; -1 if it has members. */
int sim_tw_queue_delete(struct sim_twilio *tw, struct sim_queue *q);
/* Frees q (the engine's end: members are not touched). */
void sim_tw_queue_free(struct sim_queue *q);
/* 1-based position of c in q, 0 if not a member. */
size_t sim_tw_queue_position(const struct sim_queue *q, const struct sim_call *c);
/* Average time the current members have waited, whole seconds. */
long sim_tw_queue_avg_wait(const struct sim_queue *q);
/* ---- twilio_voice.c ---- */
/* Seconds c has been in its current queue, whole seconds. */
long sim_tw_call_queue_time(const struct sim_call *c);
int sim_tw_call_live(const struct sim_call *c);
/* REST redirect (Calls update with Twiml or Url, Member dequeue): stops
 * whatever runs, leaves the queue (POSTing the action with
 * QueueResult=redirected if the scenario says so) and runs the new TwiML
 * (twiml, len bytes) or fetches url with method. -1 if the call is over. */
int sim_tw_call_redirect(struct sim_twilio *tw, struct sim_call *c, const char *twiml,
                         size_t twiml_len, const char *url, const char *method);
/* REST Status=completed (hang up now) or canceled (only while ringing).
 * Returns 1 if the call changed. */
int sim_tw_call_end(struct sim_twilio *tw, struct sim_call *c, int canceled);
const char *sim_tw_status_name(enum sim_call_status s);
/* A call not yet started (ringing, registered, counted live): the
 * outbound calls' (twilio_outbound.c). */
struct sim_call *sim_tw_call_new(struct sim_twilio *tw, const char *from, const char *to,
                                 int outbound);
/* An outbound call answered and detected (answered_by: human,
 * machine_start...): its Url is fetched (AnsweredBy), and the TwiML runs. */
void sim_tw_call_answered(struct sim_call *c, const char *url, const char *answered_by);
/* An outbound call ends without an answer (busy, no-answer). */
void sim_tw_call_unanswered(struct sim_call *c, enum sim_call_status status);
/* The call or queue of a list link (tw->calls, tw->queues). */
#define sim_tw_call_of(it)  cg_list_entry((it), struct sim_call, link_all)
#define sim_tw_queue_of(it) cg_list_entry((it), struct sim_queue, link)

/* ---- twilio_outbound.c, for twilio_rest.c and twilio.c ---- */
/* POST Calls.json: an outbound call (a queued callback), answered 201. */
void sim_tw_outbound_create(struct sim_twilio *tw, struct cg_http_req *req);
/* Drops the outbound calls' pending steps (before the engine is freed). */
void sim_tw_outbound_free(struct sim_twilio *tw);

/* ---- twilio_rest.c ---- */
/* Registers the REST routes on w->httpd. */
int sim_twilio_rest_init(struct sim_twilio *tw);
/* Answers (503) and frees replies still held back. */
void sim_twilio_rest_shutdown(struct sim_twilio *tw);

#endif
