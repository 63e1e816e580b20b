/*
 * taskrouter_int.h - the state of the simulated TaskRouter, shared by the
 * files that implement taskrouter.h. Internal to them and never included
 * elsewhere. Dependencies point one way, lowest first:
 *
 *   taskrouter_model.c  the event-driven queue/worker/task model, its
 *                       clock and its truth (sim_taskrouter_now(), the
 *                       queue accessors, sim_taskrouter_actual_waits())
 *   taskrouter_stats.c  the statistics the v1 resources report: the time
 *                       window a request asks for, cumulative figures over
 *                       the history, real-time figures over the FIFO
 *   taskrouter_rest.c   the HTTP resources of TaskRouter v1: routing,
 *                       Basic auth, paging, rate limits, injected faults
 *   taskrouter.c        creation and teardown of the whole, the counters
 *                       and the report sections
 *
 * Field names, order and types follow the examples of OAI-TR
 * (specs/twilio_taskrouter_v1.json); where the spec and the examples
 * disagree (avg_task_acceptance_time is typed integer, printed 0.0) the
 * examples win, as the live API is what they were taken from.
 */
#ifndef SIM_TASKROUTER_INT_H
#define SIM_TASKROUTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "taskrouter.h"
#include "twapi.h"

struct cg_form;
struct cg_http_req;
struct event;
struct sim_rng;
struct sim_scenario;

#define API_ROOT "/v1/Workspaces/"
#define MAX_SEGS 5
#define ISO_LEN  48 /* room for any int year, so the compiler sees no truncation */

#define CODE_BAD_REQUEST 20001
#define CODE_METHOD      20004
#define CODE_NOT_FOUND   20404
#define CODE_BAD_TOKEN   21481

/* Bounds: a stalled queue or a heavy scenario must not grow memory
 * without limit. Arrivals past the pending bounds are refused (counted);
 * the history is a ring sized so that all queues together stay under the
 * budget; stale cancel events past the heap bound are not scheduled. */
#define MAX_PENDING_QUEUE 100000
#define MAX_PENDING_TOTAL 1000000
#define MAX_WORKERS_TOTAL 1000000
#define HISTORY_BUDGET    4000000
#define HISTORY_MIN       512
#define HISTORY_MAX       262144
#define MAX_HEAP          4000000
#define MAX_SPLITS        10
#define MAX_MINUTES       43200 /* 30 days */
#define MAX_LATENCY_S     60.0
#define TICK_US           1000000
/* The TaskQueues list with EvaluateWorkerAttributes is limited to 3 RPS
 * (2024 changelog, twilio-wire.md §8). */
#define EVAL_ATTR_RPS 3.0

/* ---- the model ---- */

enum ev_kind { EV_ARRIVAL, EV_DONE, EV_ABANDON };

struct ev {
    double t;
    uint64_t order; /* creation order: breaks ties so processing is deterministic */
    uint64_t task;  /* EV_ABANDON: the task's sequence number */
    uint32_t q;
    uint32_t kind;
};

/* A pending task. The FIFO holds tasks in arrival order, so sequence
 * numbers rise along it; a canceled task stays, marked, until it reaches
 * the head. */
struct ptask {
    double enq;
    uint64_t seq;
    int canceled;
};

enum h_kind { H_ENTERED, H_ACCEPTED, H_CANCELED, H_COMPLETED };

/* One event of a queue's history, in time order: what cumulative
 * statistics and the truth are computed from. wait: for ACCEPTED and
 * CANCELED, how long the task had waited. */
struct hrec {
    double t;
    float wait;
    uint32_t kind;
};

struct tq {
    char sid[35];
    char name[32];
    struct sim_rng *rng;
    double rate;
    int workers, busy, stalled;
    struct ptask *p; /* ring */
    size_t ph, pn, pcap;
    size_t npending; /* not canceled */
    uint64_t next_seq;
    struct hrec *h; /* ring */
    size_t hh, hn, hcap, hmax;
    double h_lost_t; /* time of the newest record the ring dropped */
    long entered, accepted, canceled, completed, refused;
};

enum endpoint {
    EP_QUEUES_LIST,
    EP_QUEUE_FETCH,
    EP_STATS_LIST,
    EP_STATS_FETCH,
    EP_RT_FETCH,
    EP_CUM_FETCH,
    EP_WORKSPACE_FETCH,
    EP_UNKNOWN,
    EP_COUNT
};

/* Endpoint names, as sim_taskrouter_requests() takes them
 * (taskrouter_rest.c). */
extern const char *const sim_tr_ep_names[EP_COUNT];

struct bucket {
    double tokens, last;
    int started;
};

/* What was decided about a request when it arrived. */
struct reqinfo {
    enum endpoint ep;
    long qi;    /* per-queue endpoints */
    int status; /* 0: serve; 404, 405, 429: answer that */
    long limit, remaining;
};

struct pending {
    struct cg_list link; /* sim_taskrouter.held */
    struct sim_taskrouter *tr;
    struct cg_http_req *req;
    struct event *ev;
    struct reqinfo info;
};

struct activity {
    const char *name;
    char sid[35];
};

enum { ACT_OFFLINE, ACT_IDLE, ACT_RESERVED, ACT_BUSY, ACT_COUNT };

struct sim_taskrouter {
    struct sim_world *w;
    const struct sim_scenario *sc;
    double (*clock)(void *);
    void *clock_arg;
    uint64_t t0_us;     /* monotonic clock at creation: model time 0 */
    uint64_t wall0_ms;  /* wall clock at model time 0 */
    double last_now;    /* time never goes backwards */
    double created_rel; /* model time the queues were created (start of the warm-up) */
    uint64_t sid_key;   /* task SIDs derive from it */

    struct tq *q;
    size_t nq;
    size_t nstalled;
    struct activity act[ACT_COUNT];

    struct ev *heap;
    size_t nheap, heapcap;
    uint64_t order;
    size_t pending_total;
    long heap_skipped;

    struct sim_rng *fault_rng;
    struct bucket bucket, eval_bucket;
    struct event *tick;
    struct cg_list held; /* requests held back by latency, newest first */

    long requests[EP_COUNT];
    long inflight, max_inflight;
    long sent_429, rate_limited, injected_429, failed_pages, unauthorized;
};

/* ---- taskrouter_model.c ---- */

static inline struct hrec *sim_tr_hist_at(const struct tq *q, size_t i)
{
    return &q->h[(q->hh + i) % q->hcap];
}

static inline struct ptask *sim_tr_pend_at(const struct tq *q, size_t i)
{
    return &q->p[(q->ph + i) % q->pcap];
}

/* Builds the queues from tr->sc and simulates the warm-up (history before
 * model time 0). tr->w, tr->sc, tr->t0_us and tr->wall0_ms must be set. */
void sim_tr_model_init(struct sim_taskrouter *tr);
/* Frees the queues and the event heap (not tr). */
void sim_tr_model_free(struct sim_taskrouter *tr);
/* Bumps a report counter, if there is a report. */
void sim_tr_count(struct sim_taskrouter *tr, const char *name);
/* Model time t as wall milliseconds. */
int64_t sim_tr_wall_ms_at(const struct sim_taskrouter *tr, double t);
/* "2015-08-04T01:31:41Z", as the v1 APIs write dates. */
void sim_tr_iso_date(int64_t wall_ms, char out[ISO_LEN]);
/* First history index of q with t >= from. */
size_t sim_tr_hist_lower(const struct tq *q, double from);
/* Canceled tasks at the head of q's FIFO are gone for good. */
void sim_tr_pend_trim(struct tq *q);
/* A task's SID, derived from its queue and number: nothing to store. */
void sim_tr_task_sid(const struct sim_taskrouter *tr, size_t qi, uint64_t seq, char out[35]);

/* ---- taskrouter_stats.c ---- */

struct window {
    double from, to; /* model seconds */
    long splits[MAX_SPLITS];
    size_t nsplits;
    int split; /* SplitByWaitTime was given */
};

struct waits {
    long n;
    double sum, min, max;
};

struct cum {
    long entered, accepted, canceled, completed;
    struct waits acc, can;
    long acc_above[MAX_SPLITS], acc_below[MAX_SPLITS];
    long can_above[MAX_SPLITS], can_below[MAX_SPLITS];
};

struct rt {
    long pending, busy, eligible, available, offline, age;
    char sid[35];
    int has_sid;
};

/* A number that must read as a JSON real ("12.0", never "12"). */
void sim_tr_jw_real(struct sim_jw *j, const char *k, double v);
void sim_tr_jw_date(struct sim_jw *j, const char *k, int64_t wall_ms);
/* Minutes, StartDate, EndDate, TaskChannel, SplitByWaitTime into *win.
 * Replies 400 and returns -1 on a bad value. */
int sim_tr_parse_window(struct sim_taskrouter *tr, struct cg_http_req *req, const struct cg_form *f,
                        double now, struct window *win);
/* Figures of queue qi over the window; returns 1 when the window reaches
 * back past what the bounded history still holds. */
int sim_tr_cumulative(struct sim_taskrouter *tr, size_t qi, const struct window *win,
                      struct cum *c);
double sim_tr_avg_acceptance(const struct cum *c);
void sim_tr_waits_json(struct sim_jw *j, const char *k, const struct waits *w);
void sim_tr_split_json(struct sim_jw *j, const struct window *win, const struct cum *c);
/* The "cumulative" member of the Statistics resources; sets *truncated
 * when the history did not reach back far enough. */
void sim_tr_cumulative_member(struct sim_taskrouter *tr, struct sim_jw *j, size_t qi,
                              const struct window *win, int *truncated);
/* Queue qi's real-time figures at model time now. */
void sim_tr_realtime(struct sim_taskrouter *tr, size_t qi, double now, struct rt *r);
/* How many of the workers in r are in activity a (ACT_*). */
long sim_tr_act_workers(const struct rt *r, int a);
/* The "realtime" member of the Statistics resources. */
void sim_tr_realtime_member(struct sim_taskrouter *tr, struct sim_jw *j, size_t qi, double now);

/* ---- taskrouter_rest.c ---- */

/* Registers /v1/Workspaces/ * on tr->w->httpd. */
int sim_tr_rest_init(struct sim_taskrouter *tr);
/* Answers 503 to the requests still held back by injected latency. */
void sim_tr_rest_shutdown(struct sim_taskrouter *tr);

#endif
