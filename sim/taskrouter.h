/*
 * taskrouter.h - the simulated TaskRouter v1: a workspace of TaskQueues
 * whose workers and tasks evolve, and the read-only REST resources a wait
 * time poller uses (docs twilio-wire.md §6-§8):
 *
 *   GET /v1/Workspaces/{WS}                                 the workspace
 *   GET /v1/Workspaces/{WS}/TaskQueues                      list, key task_queues
 *   GET /v1/Workspaces/{WS}/TaskQueues/{WQ}                 one queue
 *   GET /v1/Workspaces/{WS}/TaskQueues/Statistics           list, key task_queues_statistics
 *   GET /v1/Workspaces/{WS}/TaskQueues/{WQ}/Statistics
 *   GET /v1/Workspaces/{WS}/TaskQueues/{WQ}/RealTimeStatistics
 *   GET /v1/Workspaces/{WS}/TaskQueues/{WQ}/CumulativeStatistics
 *
 * JSON only (no ".json" suffix), HTTP Basic with the scenario's Twilio
 * account SID and auth token, v1 `meta` paging with absolute URLs built
 * from the request's Host, a token bucket over every TaskRouter request
 * (429 / 20429 beyond it) and X-Rate-Limit-* headers on every answer.
 *
 * The model. Each queue has a fixed number of workers and a Poisson stream
 * of tasks; a task waits FIFO for a free worker, is handled for a drawn
 * time, or is canceled after its drawn patience. A stalled queue's workers
 * are all offline, so its backlog only grows. Everything is event driven
 * over one heap of (time, event) for all queues, advanced lazily up to
 * "now" on every request and once a second, so 2,500 queues cost only
 * their events. Each queue draws from its own generator seeded from the
 * scenario's seed, and events are processed in (time, order of creation)
 * order, so the state at model time t depends on the seed alone, never on
 * when it was looked at.
 *
 * Time. Model seconds count from sim_taskrouter_new() (warm-up history
 * lies before 0); API dates are the wall clock at creation plus model
 * time. Tests replace the clock with sim_taskrouter_set_clock().
 *
 * Truth. Every task that left its queue (accepted or canceled) is kept, in
 * a bounded per-queue history, with the time it entered and its actual
 * wait; sim_taskrouter_actual_waits() hands them out so an estimate
 * announced at time t can be scored against tasks that entered near t.
 */
#ifndef SIM_TASKROUTER_H
#define SIM_TASKROUTER_H

#include <stddef.h>

#include <jansson.h>

struct sim_world;
struct sim_taskrouter;

/* Builds the queues from w->sc (taskrouter.*), simulates the warm-up, and
 * registers /v1/Workspaces/ * on w->httpd (if any). w->report may be NULL.
 * NULL if the routes cannot be registered. */
struct sim_taskrouter *sim_taskrouter_new(struct sim_world *w);
/* Stops the model; requests still held back by injected latency are
 * answered 503. The routes stay registered on w->httpd: free it next. */
void sim_taskrouter_free(struct sim_taskrouter *tr);

/* Replaces the clock (model seconds); NULL restores the monotonic one.
 * Time must not go backwards. */
void sim_taskrouter_set_clock(struct sim_taskrouter *tr, double (*now_s)(void *arg), void *arg);
/* Model seconds now, and processes every event up to then. */
double sim_taskrouter_now(struct sim_taskrouter *tr);

/* ---- the queues ---- */
size_t sim_taskrouter_queue_count(const struct sim_taskrouter *tr);
const char *sim_taskrouter_queue_sid(const struct sim_taskrouter *tr, size_t i);
const char *sim_taskrouter_queue_name(const struct sim_taskrouter *tr, size_t i);
/* 1 if the queue's workers are all offline. */
int sim_taskrouter_queue_stalled(const struct sim_taskrouter *tr, size_t i);
/* Index of the queue with this SID, or -1. */
long sim_taskrouter_queue_index(const struct sim_taskrouter *tr, const char *sid);

/* ---- truth ---- */
enum sim_tr_outcome {
    SIM_TR_ACCEPTED, /* a worker took it after wait_s */
    SIM_TR_CANCELED, /* it gave up after wait_s */
    SIM_TR_PENDING,  /* still waiting: wait_s is its age so far (a lower bound) */
};

struct sim_tr_wait {
    double entered_s; /* model time the task entered the queue */
    double wait_s;
    enum sim_tr_outcome outcome;
};

/* Tasks of queue i that entered in [from_s, to_s] (model seconds), oldest
 * first, pending ones included; at most max are written to out. Returns
 * how many there are in all (which may exceed max), or -1 for a bad index.
 * Advances the model to now first. Tasks older than the queue's bounded
 * history are gone. */
long sim_taskrouter_actual_waits(struct sim_taskrouter *tr, size_t i, double from_s, double to_s,
                                 struct sim_tr_wait *out, size_t max);
/* The actual wait of the first task that entered queue i at or after t:
 * what a caller arriving at t would have waited. 0 with *wait_s and
 * *outcome set; -1 when no task entered after t yet, or bad index. */
int sim_taskrouter_actual_wait_at(struct sim_taskrouter *tr, size_t i, double t, double *wait_s,
                                  enum sim_tr_outcome *outcome);

/* ---- counters ---- */
/* Requests by endpoint name: "task_queues_list", "task_queue_fetch",
 * "statistics_list", "statistics_fetch", "realtime_fetch",
 * "cumulative_fetch", "unknown"; the report counters carry the same names
 * with a "taskrouter." prefix. */
long sim_taskrouter_requests(const struct sim_taskrouter *tr, const char *endpoint);
/* Most requests being served at once (received and not yet answered);
 * above 1 only when latency holds requests back. */
long sim_taskrouter_max_concurrent(const struct sim_taskrouter *tr);
long sim_taskrouter_sent_429(const struct sim_taskrouter *tr);

/* The report's "taskrouter" section and the /sim/status member (new
 * references). */
json_t *sim_taskrouter_report_json(struct sim_taskrouter *tr);
json_t *sim_taskrouter_status_json(struct sim_taskrouter *tr);

#endif
