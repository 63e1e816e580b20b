/*
 * taskrouter.c - the simulated TaskRouter v1 (see taskrouter.h): the queue
 * model first, then the REST resources over it.
 *
 * Field names, order and types follow the examples of OAI-TR
 * (specs/twilio_taskrouter_v1.json); where the spec and the examples
 * disagree (avg_task_acceptance_time is typed integer, printed 0.0) the
 * examples win, as the live API is what they were taken from.
 */
#include "base/fmacros.h"

#include "taskrouter.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "base/crypto.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/form.h"
#include "net/httpd.h"
#include "base/log.h"
#include "report.h"
#include "rng.h"
#include "scenario.h"
#include "sim.h"
#include "twapi.h"
#include "twilio/signature.h"

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
    EP_UNKNOWN,
    EP_COUNT
};

static const char *const ep_names[EP_COUNT] = {
    "task_queues_list", "task_queue_fetch", "statistics_list", "statistics_fetch",
    "realtime_fetch",   "cumulative_fetch", "unknown"};

/* X-Rate-Limit-Config: the resource key, as in the Event Streams example
 * ("TaskQueueStatistics-List"). The real key names are unconfirmed. */
static const char *const ep_config[EP_COUNT] = {"TaskQueue-List",
                                                "TaskQueue-Fetch",
                                                "TaskQueueStatistics-List",
                                                "TaskQueueStatistics-Fetch",
                                                "TaskQueueRealTimeStatistics-Fetch",
                                                "TaskQueueCumulativeStatistics-Fetch",
                                                "TaskRouter"};

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
    struct pending *prev, *next;
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
    struct pending *held;

    long requests[EP_COUNT];
    long inflight, max_inflight;
    long sent_429, rate_limited, injected_429, failed_pages, unauthorized;
};

/* ---- small helpers ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void count(struct sim_taskrouter *tr, const char *name)
{
    if (tr->w && tr->w->report)
        sim_report_count(tr->w->report, name);
}

static double raw_now(const struct sim_taskrouter *tr)
{
    if (tr->clock)
        return tr->clock(tr->clock_arg);
    return (double)(cg_mono_us() - tr->t0_us) / 1e6;
}

/* Model time t as wall milliseconds. */
static int64_t wall_ms_at(const struct sim_taskrouter *tr, double t)
{
    return (int64_t)tr->wall0_ms + (int64_t)llround(t * 1000.0);
}

/* "2015-08-04T01:31:41Z", as the v1 APIs write dates. */
static void iso_date(int64_t wall_ms, char out[ISO_LEN])
{
    time_t s = (time_t)(wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm)) {
        snprintf(out, ISO_LEN, "1970-01-01T00:00:00Z");
        return;
    }
    snprintf(out, ISO_LEN, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- the event heap ---- */

static int ev_before(const struct ev *a, const struct ev *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    return a->order < b->order;
}

static void heap_push(struct sim_taskrouter *tr, double t, uint32_t q, enum ev_kind kind,
                      uint64_t task)
{
    if (tr->nheap == tr->heapcap) {
        tr->heapcap = tr->heapcap ? tr->heapcap * 2 : 1024;
        tr->heap = cg_realloc(tr->heap, tr->heapcap * sizeof(*tr->heap));
    }
    struct ev e = {.t = t, .order = tr->order++, .task = task, .q = q, .kind = (uint32_t)kind};
    size_t i = tr->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&e, &tr->heap[parent]))
            break;
        tr->heap[i] = tr->heap[parent];
        i = parent;
    }
    tr->heap[i] = e;
}

static struct ev heap_pop(struct sim_taskrouter *tr)
{
    struct ev top = tr->heap[0];
    struct ev last = tr->heap[--tr->nheap];
    size_t n = tr->nheap, i = 0;
    while (n > 0) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ev *best = &last;
        if (l < n && ev_before(&tr->heap[l], best)) {
            m = l;
            best = &tr->heap[l];
        }
        if (r < n && ev_before(&tr->heap[r], best))
            m = r;
        if (m == i)
            break;
        tr->heap[i] = tr->heap[m];
        i = m;
    }
    if (n > 0)
        tr->heap[i] = last;
    return top;
}

/* ---- per-queue rings ---- */

static struct hrec *hist_at(const struct tq *q, size_t i)
{
    return &q->h[(q->hh + i) % q->hcap];
}

static void hist_add(struct tq *q, double t, double wait, enum h_kind kind)
{
    if (q->hn == q->hcap) {
        if (q->hcap < q->hmax) {
            size_t cap = q->hcap ? q->hcap * 2 : 64;
            if (cap > q->hmax)
                cap = q->hmax;
            struct hrec *h = cg_malloc(cap * sizeof(*h));
            for (size_t i = 0; i < q->hn; i++)
                h[i] = *hist_at(q, i);
            free(q->h);
            q->h = h;
            q->hh = 0;
            q->hcap = cap;
        } else {
            /* Full: the oldest record goes; windows reaching past it are
             * undercounted, which statistics() notices. */
            q->h_lost_t = q->h[q->hh].t;
            q->hh = (q->hh + 1) % q->hcap;
            q->hn--;
        }
    }
    struct hrec *r = &q->h[(q->hh + q->hn) % q->hcap];
    r->t = t;
    r->wait = (float)wait;
    r->kind = (uint32_t)kind;
    q->hn++;
}

/* First history index with t >= from. */
static size_t hist_lower(const struct tq *q, double from)
{
    size_t lo = 0, hi = q->hn;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hist_at(q, mid)->t < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct ptask *pend_at(const struct tq *q, size_t i)
{
    return &q->p[(q->ph + i) % q->pcap];
}

/* Appends a pending task; -1 when the queue is at its bound. */
static int pend_push(struct tq *q, double enq, uint64_t seq)
{
    if (q->pn == q->pcap) {
        if (q->pcap >= MAX_PENDING_QUEUE)
            return -1;
        size_t cap = q->pcap ? q->pcap * 2 : 16;
        if (cap > MAX_PENDING_QUEUE)
            cap = MAX_PENDING_QUEUE;
        struct ptask *p = cg_malloc(cap * sizeof(*p));
        for (size_t i = 0; i < q->pn; i++)
            p[i] = *pend_at(q, i);
        free(q->p);
        q->p = p;
        q->ph = 0;
        q->pcap = cap;
    }
    struct ptask *t = &q->p[(q->ph + q->pn) % q->pcap];
    t->enq = enq;
    t->seq = seq;
    t->canceled = 0;
    q->pn++;
    return 0;
}

static void pend_pop(struct tq *q)
{
    q->ph = (q->ph + 1) % q->pcap;
    q->pn--;
}

/* Canceled tasks at the head are gone for good. */
static void pend_trim(struct tq *q)
{
    while (q->pn > 0 && pend_at(q, 0)->canceled)
        pend_pop(q);
}

static struct ptask *pend_find(const struct tq *q, uint64_t seq)
{
    size_t lo = 0, hi = q->pn;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s = pend_at(q, mid)->seq;
        if (s == seq)
            return pend_at(q, mid);
        if (s < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- the queue dynamics ---- */

static void accept_task(struct sim_taskrouter *tr, uint32_t qi, double t, double wait)
{
    struct tq *q = &tr->q[qi];
    q->busy++;
    q->accepted++;
    hist_add(q, t, wait, H_ACCEPTED);
    double handle = sim_rng_draw(q->rng, &tr->sc->tr_handle);
    heap_push(tr, t + (handle > 0 ? handle : 0), qi, EV_DONE, 0);
}

static void on_arrival(struct sim_taskrouter *tr, uint32_t qi, double t)
{
    struct tq *q = &tr->q[qi];
    /* The next arrival is drawn first, so the arrival stream does not
     * depend on what happens to the tasks. */
    if (q->rate > 0)
        heap_push(tr, t + sim_rng_exp(q->rng, 1.0 / q->rate), qi, EV_ARRIVAL, 0);
    double patience = -1;
    if (tr->sc->tr_abandon.kind != SIM_DIST_NONE)
        patience = sim_rng_draw(q->rng, &tr->sc->tr_abandon);
    if (!q->stalled && q->busy < q->workers && q->npending == 0) {
        q->next_seq++; /* the task's number, for its SID */
        q->entered++;
        hist_add(q, t, 0, H_ENTERED);
        accept_task(tr, qi, t, 0);
        return;
    }
    if (tr->pending_total >= MAX_PENDING_TOTAL || pend_push(q, t, q->next_seq) < 0) {
        q->refused++;
        count(tr, "taskrouter.tasks_refused");
        return;
    }
    uint64_t seq = q->next_seq++;
    q->entered++;
    q->npending++;
    tr->pending_total++;
    hist_add(q, t, 0, H_ENTERED);
    if (patience >= 0) {
        if (tr->nheap < MAX_HEAP)
            heap_push(tr, t + patience, qi, EV_ABANDON, seq);
        else
            tr->heap_skipped++;
    }
}

static void on_done(struct sim_taskrouter *tr, uint32_t qi, double t)
{
    struct tq *q = &tr->q[qi];
    q->busy--;
    q->completed++;
    hist_add(q, t, 0, H_COMPLETED);
    pend_trim(q);
    if (q->pn == 0 || q->stalled)
        return;
    double wait = t - pend_at(q, 0)->enq;
    pend_pop(q);
    q->npending--;
    tr->pending_total--;
    accept_task(tr, qi, t, wait);
}

static void on_abandon(struct sim_taskrouter *tr, uint32_t qi, double t, uint64_t seq)
{
    struct tq *q = &tr->q[qi];
    struct ptask *p = pend_find(q, seq);
    if (!p || p->canceled)
        return; /* taken by a worker before it gave up */
    p->canceled = 1;
    q->npending--;
    tr->pending_total--;
    q->canceled++;
    hist_add(q, t, t - p->enq, H_CANCELED);
    pend_trim(q);
}

/* Processes every event up to t, in (time, creation) order. */
static void advance(struct sim_taskrouter *tr, double t)
{
    while (tr->nheap > 0 && tr->heap[0].t <= t) {
        struct ev e = heap_pop(tr);
        switch ((enum ev_kind)e.kind) {
        case EV_ARRIVAL:
            on_arrival(tr, e.q, e.t);
            break;
        case EV_DONE:
            on_done(tr, e.q, e.t);
            break;
        case EV_ABANDON:
        default:
            on_abandon(tr, e.q, e.t, e.task);
            break;
        }
    }
}

double sim_taskrouter_now(struct sim_taskrouter *tr)
{
    double t = raw_now(tr);
    if (t < tr->last_now)
        t = tr->last_now;
    tr->last_now = t;
    advance(tr, t);
    return t;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    /* Keeps the model current between requests, so a request never has
     * to catch up on a long stretch of events. */
    sim_taskrouter_now(arg);
}

static int rest_init(struct sim_taskrouter *tr);

/* ---- building the workspace ---- */

static void build_queues(struct sim_taskrouter *tr)
{
    const struct sim_scenario *sc = tr->sc;
    size_t n = sc->tr_queues > 0 ? (size_t)sc->tr_queues : 0;
    uint64_t seed = (uint64_t)sc->seed;
    /* Setup draws (SIDs, sizes, rates, stalled picks) come from their own
     * stream, so they are the same whatever the queues later do. */
    struct sim_rng *setup = sim_rng_new(seed ^ 0x74726f7574657221ULL);
    tr->sid_key = sim_rng_u64(setup);
    static const char *const act_names[ACT_COUNT] = {"Offline", "Idle", "Reserved", "Busy"};
    for (int a = 0; a < ACT_COUNT; a++) {
        tr->act[a].name = act_names[a];
        tr->act[a].sid[0] = 'W';
        tr->act[a].sid[1] = 'A';
        sim_rng_hex(setup, tr->act[a].sid + 2, 32);
    }
    tr->q = cg_calloc(n ? n : 1, sizeof(*tr->q));
    tr->nq = n;
    size_t hmax = n ? HISTORY_BUDGET / n : HISTORY_MAX;
    if (hmax < HISTORY_MIN)
        hmax = HISTORY_MIN;
    if (hmax > HISTORY_MAX)
        hmax = HISTORY_MAX;
    long workers_left = MAX_WORKERS_TOTAL;
    for (size_t i = 0; i < n; i++) {
        struct tq *q = &tr->q[i];
        q->sid[0] = 'W';
        q->sid[1] = 'Q';
        sim_rng_hex(setup, q->sid + 2, 32);
        snprintf(q->name, sizeof(q->name), "queue-%04zu", i);
        double wk = sim_rng_draw(setup, &sc->tr_workers);
        long workers = wk > 0 ? lround(wk) : 0;
        if (workers > SIM_TR_MAX_WORKERS)
            workers = SIM_TR_MAX_WORKERS;
        if (workers > workers_left)
            workers = workers_left;
        workers_left -= workers;
        q->workers = (int)workers;
        double rate = sim_rng_draw(setup, &sc->tr_task_rate);
        q->rate = rate > 0 ? (rate < SIM_TR_MAX_RATE ? rate : SIM_TR_MAX_RATE) : 0;
        q->hmax = hmax;
        q->h_lost_t = -INFINITY;
        q->rng = sim_rng_new(seed ^ mix64(0x7461736b71756575ULL + (uint64_t)i));
    }
    if (workers_left == 0)
        cg_log_warn("sim taskrouter: workers capped", "max=%d", MAX_WORKERS_TOTAL);
    /* Stalled queues: a partial Fisher-Yates pick over the indices. */
    size_t k = sc->tr_stalled_queues > 0 ? (size_t)sc->tr_stalled_queues : 0;
    if (k > n)
        k = n;
    size_t *idx = cg_malloc((n ? n : 1) * sizeof(*idx));
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)(sim_rng_u64(setup) % (uint64_t)(n - i));
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        tr->q[idx[i]].stalled = 1;
    }
    tr->nstalled = k;
    free(idx);
    sim_rng_free(setup);
}

struct sim_taskrouter *sim_taskrouter_new(struct sim_world *w)
{
    struct sim_taskrouter *tr = cg_calloc(1, sizeof(*tr));
    tr->w = w;
    tr->sc = w->sc;
    tr->t0_us = cg_mono_us();
    tr->wall0_ms = cg_wall_ms();
    tr->fault_rng = sim_rng_new((uint64_t)w->sc->seed ^ 0x74726661756c74ULL);
    build_queues(tr);
    /* The warm-up is simulated at once: history before model time 0. */
    double start = -tr->sc->tr_warmup_s;
    tr->created_rel = start;
    for (size_t i = 0; i < tr->nq; i++) {
        struct tq *q = &tr->q[i];
        if (q->rate > 0)
            heap_push(tr, start + sim_rng_exp(q->rng, 1.0 / q->rate), (uint32_t)i, EV_ARRIVAL, 0);
    }
    advance(tr, 0);
    if (w->httpd && rest_init(tr) != 0) {
        sim_taskrouter_free(tr);
        return NULL;
    }
    if (w->base) {
        tr->tick = event_new(w->base, -1, EV_PERSIST, on_tick, tr);
        struct timeval tv = {.tv_sec = TICK_US / 1000000, .tv_usec = TICK_US % 1000000};
        if (!tr->tick || event_add(tr->tick, &tv) != 0) {
            cg_log_error("sim taskrouter: cannot arm the model timer", "");
            sim_taskrouter_free(tr);
            return NULL;
        }
    }
    size_t workers = 0;
    for (size_t i = 0; i < tr->nq; i++)
        workers += (size_t)tr->q[i].workers;
    cg_log_info("sim taskrouter ready", "workspace=%s queues=%zu stalled=%zu workers=%zu",
                tr->sc->tr_workspace_sid, tr->nq, tr->nstalled, workers);
    return tr;
}

void sim_taskrouter_set_clock(struct sim_taskrouter *tr, double (*now_s)(void *arg), void *arg)
{
    tr->clock = now_s;
    tr->clock_arg = arg;
}

/* ---- queues and truth ---- */

size_t sim_taskrouter_queue_count(const struct sim_taskrouter *tr)
{
    return tr->nq;
}

const char *sim_taskrouter_queue_sid(const struct sim_taskrouter *tr, size_t i)
{
    return i < tr->nq ? tr->q[i].sid : NULL;
}

const char *sim_taskrouter_queue_name(const struct sim_taskrouter *tr, size_t i)
{
    return i < tr->nq ? tr->q[i].name : NULL;
}

int sim_taskrouter_queue_stalled(const struct sim_taskrouter *tr, size_t i)
{
    return i < tr->nq ? tr->q[i].stalled : 0;
}

long sim_taskrouter_queue_index(const struct sim_taskrouter *tr, const char *sid)
{
    if (!sid || strlen(sid) != 34)
        return -1;
    for (size_t i = 0; i < tr->nq; i++)
        if (memcmp(tr->q[i].sid, sid, 34) == 0)
            return (long)i;
    return -1;
}

static int cmp_entered(const void *a, const void *b)
{
    const struct sim_tr_wait *x = a, *y = b;
    if (x->entered_s != y->entered_s)
        return x->entered_s < y->entered_s ? -1 : 1;
    return (x->wait_s > y->wait_s) - (x->wait_s < y->wait_s);
}

/* Every task of queue i that entered in [from, to]: left ones from the
 * history, pending ones from the FIFO. malloc'd; *n set. */
static struct sim_tr_wait *collect(struct sim_taskrouter *tr, size_t i, double from, double to,
                                   double now, size_t *n)
{
    struct tq *q = &tr->q[i];
    struct sim_tr_wait *v = cg_malloc((q->hn + q->pn + 1) * sizeof(*v));
    size_t k = 0;
    for (size_t j = 0; j < q->hn; j++) {
        const struct hrec *r = hist_at(q, j);
        if (r->kind != H_ACCEPTED && r->kind != H_CANCELED)
            continue;
        double entered = r->t - (double)r->wait;
        if (entered < from || entered > to)
            continue;
        v[k].entered_s = entered;
        v[k].wait_s = (double)r->wait;
        v[k].outcome = r->kind == H_ACCEPTED ? SIM_TR_ACCEPTED : SIM_TR_CANCELED;
        k++;
    }
    for (size_t j = 0; j < q->pn; j++) {
        const struct ptask *p = pend_at(q, j);
        if (p->canceled || p->enq < from || p->enq > to)
            continue;
        v[k].entered_s = p->enq;
        v[k].wait_s = now - p->enq;
        v[k].outcome = SIM_TR_PENDING;
        k++;
    }
    qsort(v, k, sizeof(*v), cmp_entered);
    *n = k;
    return v;
}

long sim_taskrouter_actual_waits(struct sim_taskrouter *tr, size_t i, double from_s, double to_s,
                                 struct sim_tr_wait *out, size_t max)
{
    if (i >= tr->nq)
        return -1;
    double now = sim_taskrouter_now(tr);
    size_t n = 0;
    struct sim_tr_wait *v = collect(tr, i, from_s, to_s, now, &n);
    for (size_t j = 0; j < n && j < max; j++)
        out[j] = v[j];
    free(v);
    return (long)n;
}

int sim_taskrouter_actual_wait_at(struct sim_taskrouter *tr, size_t i, double t, double *wait_s,
                                  enum sim_tr_outcome *outcome)
{
    if (i >= tr->nq)
        return -1;
    double now = sim_taskrouter_now(tr);
    size_t n = 0;
    struct sim_tr_wait *v = collect(tr, i, t, INFINITY, now, &n);
    int rc = -1;
    if (n > 0) {
        *wait_s = v[0].wait_s;
        *outcome = v[0].outcome;
        rc = 0;
    }
    free(v);
    return rc;
}

/* A task's SID, derived from its queue and number: nothing to store. */
static void task_sid(const struct sim_taskrouter *tr, size_t qi, uint64_t seq, char out[35])
{
    uint64_t x = tr->sid_key ^ ((uint64_t)qi << 40) ^ seq;
    unsigned long long a = mix64(x), b = mix64(x + 0x9e3779b97f4a7c15ULL);
    snprintf(out, 35, "WT%016llx%016llx", a, b);
}

/* ---- JSON ---- */

/* A number that must read as a JSON real ("12.0", never "12"). */
static void jw_real(struct sim_jw *j, const char *k, double v)
{
    sim_jw_key(j, k);
    cg_buf_printf(j->b, "%.1f", isfinite(v) ? v : 0.0);
}

static void jw_date(struct sim_jw *j, const char *k, int64_t wall_ms)
{
    char d[ISO_LEN];
    iso_date(wall_ms, d);
    sim_jw_str(j, k, d);
}

/* ---- errors ---- */

static void not_found(struct cg_http_req *req)
{
    /* v1 products name the path without the version (twilio-wire.md §2). */
    const char *path = cg_http_req_path(req);
    if (strncmp(path, "/v1/", 4) == 0)
        path += 3;
    char msg[600];
    snprintf(msg, sizeof(msg), "The requested resource %.500s was not found", path);
    sim_api_error(req, 404, CODE_NOT_FOUND, msg);
}

/* ---- auth ---- */

static void b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 <= outlen; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

/* HTTP Basic with the account SID and auth token. The expected header is
 * encoded and compared, rather than the offered one decoded: clients all
 * send canonical Base64. */
static int authorized(const struct sim_taskrouter *tr, struct cg_http_req *req)
{
    const char *h = sim_api_basic_credentials(req);
    const struct sim_scenario *sc = tr->sc;
    if (!h || !sc->twilio_account_sid || !sc->twilio_auth_token)
        return 0;
    char cred[1100], want[1500];
    int n = snprintf(cred, sizeof(cred), "%s:%s", sc->twilio_account_sid, sc->twilio_auth_token);
    if (n < 0 || (size_t)n >= sizeof(cred))
        return 0;
    b64_encode((const unsigned char *)cred, (size_t)n, want, sizeof(want));
    return cg_ct_streq(h, want);
}

/* ---- statistics ---- */

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

static void waits_add(struct waits *w, double v)
{
    if (w->n == 0 || v < w->min)
        w->min = v;
    if (w->n == 0 || v > w->max)
        w->max = v;
    w->n++;
    w->sum += v;
}

/* Figures of queue qi over the window; returns 1 when the window reaches
 * back past what the bounded history still holds. */
static int cumulative(struct sim_taskrouter *tr, size_t qi, const struct window *win, struct cum *c)
{
    const struct tq *q = &tr->q[qi];
    memset(c, 0, sizeof(*c));
    for (size_t i = hist_lower(q, win->from); i < q->hn; i++) {
        const struct hrec *r = hist_at(q, i);
        if (r->t > win->to)
            break;
        double wait = (double)r->wait;
        switch ((enum h_kind)r->kind) {
        case H_ENTERED:
            c->entered++;
            break;
        case H_ACCEPTED:
            c->accepted++;
            waits_add(&c->acc, wait);
            for (size_t s = 0; s < win->nsplits; s++) {
                if (wait >= (double)win->splits[s])
                    c->acc_above[s]++;
                else
                    c->acc_below[s]++;
            }
            break;
        case H_CANCELED:
            c->canceled++;
            waits_add(&c->can, wait);
            for (size_t s = 0; s < win->nsplits; s++) {
                if (wait >= (double)win->splits[s])
                    c->can_above[s]++;
                else
                    c->can_below[s]++;
            }
            break;
        case H_COMPLETED:
        default:
            c->completed++;
            break;
        }
    }
    return win->from < q->h_lost_t;
}

static void waits_json(struct sim_jw *j, const char *k, const struct waits *w)
{
    struct sim_jw o = sim_jw_open(j, k, '{');
    sim_jw_long(&o, "avg", w->n ? lround(w->sum / (double)w->n) : 0);
    sim_jw_long(&o, "min", w->n ? lround(w->min) : 0);
    sim_jw_long(&o, "max", w->n ? lround(w->max) : 0);
    sim_jw_long(&o, "total", lround(w->sum));
    sim_jw_close(&o, '}');
}

static void split_json(struct sim_jw *j, const struct window *win, const struct cum *c)
{
    if (!win->split) {
        sim_jw_str(j, "split_by_wait_time", NULL);
        return;
    }
    struct sim_jw o = sim_jw_open(j, "split_by_wait_time", '{');
    for (size_t s = 0; s < win->nsplits; s++) {
        char k[24];
        snprintf(k, sizeof(k), "%ld", win->splits[s]);
        struct sim_jw t = sim_jw_open(&o, k, '{');
        struct sim_jw a = sim_jw_open(&t, "above", '{');
        sim_jw_long(&a, "tasks_canceled", c->can_above[s]);
        sim_jw_long(&a, "reservations_accepted", c->acc_above[s]);
        sim_jw_close(&a, '}');
        struct sim_jw b = sim_jw_open(&t, "below", '{');
        sim_jw_long(&b, "tasks_canceled", c->can_below[s]);
        sim_jw_long(&b, "reservations_accepted", c->acc_below[s]);
        sim_jw_close(&b, '}');
        sim_jw_close(&t, '}');
    }
    sim_jw_close(&o, '}');
}

static double avg_acceptance(const struct cum *c)
{
    return c->acc.n ? c->acc.sum / (double)c->acc.n : 0.0;
}

/* The "cumulative" object of the Statistics resources: keys sorted as in
 * the spec's examples; the wait durations only when the scenario says the
 * live API sends them (unconfirmed), split_by_wait_time only when asked. */
static void cumulative_member(struct sim_taskrouter *tr, struct sim_jw *j, size_t qi,
                              const struct window *win, int *truncated)
{
    struct cum c;
    if (cumulative(tr, qi, win, &c))
        *truncated = 1;
    struct sim_jw o = sim_jw_open(j, "cumulative", '{');
    jw_real(&o, "avg_task_acceptance_time", avg_acceptance(&c));
    jw_date(&o, "end_time", wall_ms_at(tr, win->to));
    sim_jw_long(&o, "reservations_accepted", c.accepted);
    sim_jw_long(&o, "reservations_canceled", 0);
    sim_jw_long(&o, "reservations_created", c.accepted);
    sim_jw_long(&o, "reservations_rejected", 0);
    sim_jw_long(&o, "reservations_rescinded", 0);
    sim_jw_long(&o, "reservations_timed_out", 0);
    if (win->split)
        split_json(&o, win, &c);
    jw_date(&o, "start_time", wall_ms_at(tr, win->from));
    sim_jw_long(&o, "tasks_canceled", c.canceled);
    sim_jw_long(&o, "tasks_completed", c.completed);
    sim_jw_long(&o, "tasks_deleted", 0);
    sim_jw_long(&o, "tasks_entered", c.entered);
    sim_jw_long(&o, "tasks_moved", 0);
    if (tr->sc->tr_bulk_wait_durations) {
        waits_json(&o, "wait_duration_in_queue_until_accepted", &c.acc);
        waits_json(&o, "wait_duration_until_accepted", &c.acc);
        waits_json(&o, "wait_duration_until_canceled", &c.can);
    }
    sim_jw_close(&o, '}');
}

struct rt {
    long pending, busy, eligible, available, offline, age;
    char sid[35];
    int has_sid;
};

static void realtime(struct sim_taskrouter *tr, size_t qi, double now, struct rt *r)
{
    struct tq *q = &tr->q[qi];
    pend_trim(q);
    memset(r, 0, sizeof(*r));
    r->pending = (long)q->npending;
    r->busy = q->busy;
    r->eligible = q->workers;
    r->available = q->stalled ? 0 : q->workers - q->busy;
    r->offline = q->stalled ? q->workers : 0;
    if (q->pn > 0) {
        const struct ptask *head = pend_at(q, 0);
        double age = now - head->enq;
        r->age = age > 0 ? (long)floor(age) : 0;
        task_sid(tr, qi, head->seq, r->sid);
        r->has_sid = 1;
    }
}

static long act_workers(const struct rt *r, int a)
{
    switch (a) {
    case ACT_OFFLINE:
        return r->offline;
    case ACT_IDLE:
        return r->available;
    case ACT_BUSY:
        return r->busy;
    case ACT_RESERVED:
    default:
        return 0;
    }
}

/* The "realtime" object of the Statistics resources (sorted keys). */
static void realtime_member(struct sim_taskrouter *tr, struct sim_jw *j, size_t qi, double now)
{
    struct rt r;
    realtime(tr, qi, now, &r);
    struct sim_jw o = sim_jw_open(j, "realtime", '{');
    struct sim_jw acts = sim_jw_open(&o, "activity_statistics", '[');
    for (int a = 0; a < ACT_COUNT; a++) {
        if (a)
            cg_buf_appendc(acts.b, ',');
        cg_buf_appendc(acts.b, '{');
        struct sim_jw e = {acts.b, 1};
        sim_jw_str(&e, "friendly_name", tr->act[a].name);
        sim_jw_str(&e, "sid", tr->act[a].sid);
        sim_jw_long(&e, "workers", act_workers(&r, a));
        cg_buf_appendc(acts.b, '}');
    }
    sim_jw_close(&acts, ']');
    sim_jw_long(&o, "longest_relative_task_age_in_queue", r.age);
    sim_jw_str(&o, "longest_relative_task_sid_in_queue", r.has_sid ? r.sid : NULL);
    sim_jw_long(&o, "longest_task_waiting_age", r.age);
    sim_jw_str(&o, "longest_task_waiting_sid", r.has_sid ? r.sid : NULL);
    struct sim_jw prio = sim_jw_open(&o, "tasks_by_priority", '{');
    sim_jw_close(&prio, '}');
    struct sim_jw st = sim_jw_open(&o, "tasks_by_status", '{');
    sim_jw_long(&st, "assigned", r.busy);
    sim_jw_long(&st, "pending", r.pending);
    sim_jw_long(&st, "reserved", 0);
    sim_jw_long(&st, "wrapping", 0);
    sim_jw_close(&st, '}');
    sim_jw_long(&o, "total_available_workers", r.available);
    sim_jw_long(&o, "total_eligible_workers", r.eligible);
    sim_jw_long(&o, "total_tasks", r.pending + r.busy);
    sim_jw_close(&o, '}');
}

/* ---- request parameters ---- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ISO-8601 in UTC: "2015-08-04T01:31:41Z" (fractions and "+00:00" accepted)
 * or a bare date. */
static int parse_iso(const char *s, int64_t *wall_ms)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    const char *p = s + 10;
    if (*p == 'T') {
        if (strlen(p) < 9 || digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) ||
            p[6] != ':' || digits(p + 7, 2, &se))
            return -1;
        p += 9;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p == 'Z')
            p++;
        else if (strcmp(p, "+00:00") == 0)
            p += 6;
    }
    if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    errno = 0;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && errno)
        return -1;
    *wall_ms = (int64_t)t * 1000;
    return 0;
}

/* Minutes, StartDate, EndDate, TaskChannel, SplitByWaitTime. StartDate
 * wins over Minutes; the window ends at EndDate or now. TaskChannel is
 * accepted and ignored: every simulated task is on one channel. Replies
 * 400 and returns -1 on a bad value. */
static int parse_window(struct sim_taskrouter *tr, struct cg_http_req *req, const struct cg_form *f,
                        double now, struct window *win)
{
    memset(win, 0, sizeof(*win));
    long minutes = 15;
    const char *s = cg_form_get(f, "Minutes");
    if (s && sim_api_parse_long(s, 1, MAX_MINUTES, &minutes) < 0) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Minutes must be an integer from 1 to 43200");
        return -1;
    }
    int64_t ms;
    win->to = now;
    if ((s = cg_form_get(f, "EndDate")) != NULL) {
        if (parse_iso(s, &ms) < 0) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "EndDate must be an ISO 8601 date-time");
            return -1;
        }
        win->to = (double)(ms - (int64_t)tr->wall0_ms) / 1000.0;
    }
    win->from = win->to - (double)minutes * 60.0;
    if ((s = cg_form_get(f, "StartDate")) != NULL) {
        if (parse_iso(s, &ms) < 0) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "StartDate must be an ISO 8601 date-time");
            return -1;
        }
        win->from = (double)(ms - (int64_t)tr->wall0_ms) / 1000.0;
    }
    if (win->from > win->to) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "StartDate must not be after EndDate");
        return -1;
    }
    s = cg_form_get(f, "TaskChannel");
    if (s && (!*s || strlen(s) > 64)) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Invalid TaskChannel");
        return -1;
    }
    if ((s = cg_form_get(f, "SplitByWaitTime")) != NULL) {
        win->split = 1;
        char buf[256];
        if (strlen(s) >= sizeof(buf))
            goto bad_split;
        snprintf(buf, sizeof(buf), "%s", s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            if (win->nsplits == MAX_SPLITS ||
                sim_api_parse_long(t, 1, 86400, &win->splits[win->nsplits]))
                goto bad_split;
            win->nsplits++;
        }
        if (win->nsplits == 0)
            goto bad_split;
    }
    return 0;
bad_split:
    sim_api_error(req, 400, CODE_BAD_REQUEST,
                  "SplitByWaitTime must be up to 10 comma-separated positive integers");
    return -1;
}

/* PageSize, Page and a token naming a TaskQueue (WQ...); replies 400 and
 * returns -1 when one is invalid. */
static int parse_paging(struct sim_taskrouter *tr, struct cg_http_req *req, const struct cg_form *f,
                        struct sim_paging *pg)
{
    if (sim_paging_parse(req, f, "WQ", pg) < 0)
        return -1;
    /* "Don't use the page query parameter with this resource. Pagination
     * isn't supported" (twilio-wire.md §6): without a token, Page does not
     * move the page, it is only echoed. */
    if (pg->has_page && pg->page > 0 && !pg->token)
        count(tr, "taskrouter.page_without_token");
    return 0;
}

/* Places the page over the listed queues idx[0..n); -1 (after replying
 * 21481) when the token names a queue that is not in the list. */
static int paging_place(struct sim_taskrouter *tr, struct cg_http_req *req, const size_t *idx,
                        size_t n, struct sim_paging *pg)
{
    size_t start = 0;
    if (pg->token) {
        size_t i = 0;
        while (i < n && memcmp(tr->q[idx[i]].sid, pg->token + 2, 34) != 0)
            i++;
        if (i == n) {
            sim_api_error(req, 400, CODE_BAD_TOKEN, "Invalid PageToken");
            return -1;
        }
        start = sim_paging_token_start(pg, i);
    }
    sim_paging_set(pg, start, n);
    if (!pg->has_page)
        pg->page = (long)(start / (size_t)pg->size);
    return 0;
}

/* ---- URLs ---- */

/* Absolute URLs point back at the simulator: from the Host the client
 * used, or the server's own address. */
static void base_url(const struct sim_taskrouter *tr, struct cg_http_req *req, char *out,
                     size_t outlen)
{
    const char *host = cg_http_req_header(req, "Host");
    int ok = host && *host && strlen(host) <= 255;
    for (const char *p = host; ok && *p; p++) {
        char c = *p;
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
    }
    if (ok)
        snprintf(out, outlen, "http://%s", host);
    else
        snprintf(out, outlen, "http://127.0.0.1:%d",
                 tr->w->httpd ? cg_httpd_port(tr->w->httpd) : 0);
}

static void add_param(struct cg_buf *u, int *first, const char *k, const char *v)
{
    cg_buf_appendc(u, *first ? '?' : '&');
    *first = 0;
    cg_buf_appends(u, k);
    cg_buf_appendc(u, '=');
    char *enc = cg_pct_encode(v, strlen(v));
    cg_buf_appends(u, enc);
    free(enc);
}

/* A page's URL: the list URL, the request's filters (in the spec
 * examples' order), PageSize, Page and an optional token. */
static void page_url(struct cg_buf *u, const char *list_url, const struct cg_form *f,
                     const char *const *carry, long size, long page, char tok, const char *sid)
{
    cg_buf_reset(u);
    cg_buf_appends(u, list_url);
    int first = 1;
    for (; *carry; carry++) {
        const char *v = cg_form_get(f, *carry);
        if (v)
            add_param(u, &first, *carry, v);
    }
    char n[24];
    snprintf(n, sizeof(n), "%ld", size);
    add_param(u, &first, "PageSize", n);
    snprintf(n, sizeof(n), "%ld", page);
    add_param(u, &first, "Page", n);
    if (tok && sid) {
        char t[40];
        snprintf(t, sizeof(t), "P%c%s", tok, sid);
        add_param(u, &first, "PageToken", t);
    }
}

/* {"meta":{...},"<key>":[ */
static void envelope_open(struct sim_taskrouter *tr, struct cg_buf *b, const char *list_url,
                          const struct cg_form *f, const char *const *carry,
                          const struct sim_paging *pg, const size_t *idx, size_t n, const char *key)
{
    struct cg_buf u;
    cg_buf_init(&u, CG_BUF_UNBOUNDED);
    cg_buf_appendc(b, '{');
    struct sim_jw top = {b, 1};
    struct sim_jw m = sim_jw_open(&top, "meta", '{');
    page_url(&u, list_url, f, carry, pg->size, 0, 0, NULL);
    sim_jw_str(&m, "first_page_url", cg_buf_str(&u));
    sim_jw_str(&m, "key", key);
    if (pg->start + pg->count < n && pg->count > 0) {
        page_url(&u, list_url, f, carry, pg->size, pg->page + 1, 'A',
                 tr->q[idx[pg->start + pg->count - 1]].sid);
        sim_jw_str(&m, "next_page_url", cg_buf_str(&u));
    } else {
        sim_jw_str(&m, "next_page_url", NULL);
    }
    sim_jw_long(&m, "page", pg->page);
    sim_jw_long(&m, "page_size", pg->size);
    if (pg->start > 0 && pg->count > 0) {
        page_url(&u, list_url, f, carry, pg->size, pg->page > 0 ? pg->page - 1 : 0, 'B',
                 tr->q[idx[pg->start]].sid);
        sim_jw_str(&m, "previous_page_url", cg_buf_str(&u));
    } else {
        sim_jw_str(&m, "previous_page_url", NULL);
    }
    page_url(&u, list_url, f, carry, pg->size, pg->page, pg->token ? pg->token[1] : 0,
             pg->token ? pg->token + 2 : NULL);
    sim_jw_str(&m, "url", cg_buf_str(&u));
    sim_jw_close(&m, '}');
    sim_jw_key(&top, key);
    cg_buf_appendc(b, '[');
    cg_buf_free(&u);
}

/* ---- resources ---- */

static void queue_json(struct sim_taskrouter *tr, const char *ws_url, size_t qi, struct cg_buf *b)
{
    const struct tq *q = &tr->q[qi];
    const char *acct = tr->sc->twilio_account_sid;
    char u[512];
    struct sim_jw j = {b, 1};
    cg_buf_appendc(b, '{');
    sim_jw_str(&j, "account_sid", acct);
    sim_jw_str(&j, "assignment_activity_name", tr->act[ACT_BUSY].name);
    sim_jw_str(&j, "assignment_activity_sid", tr->act[ACT_BUSY].sid);
    jw_date(&j, "date_created", wall_ms_at(tr, tr->created_rel));
    jw_date(&j, "date_updated", wall_ms_at(tr, tr->created_rel));
    sim_jw_str(&j, "friendly_name", q->name);
    sim_jw_long(&j, "max_reserved_workers", 1);
    struct sim_jw l = sim_jw_open(&j, "links", '{');
    snprintf(u, sizeof(u), "%s/Activities/%s", ws_url, tr->act[ACT_BUSY].sid);
    sim_jw_str(&l, "assignment_activity", u);
    snprintf(u, sizeof(u), "%s/Activities/%s", ws_url, tr->act[ACT_RESERVED].sid);
    sim_jw_str(&l, "reservation_activity", u);
    sim_jw_str(&l, "workspace", ws_url);
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/Statistics", ws_url, q->sid);
    sim_jw_str(&l, "statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/RealTimeStatistics", ws_url, q->sid);
    sim_jw_str(&l, "real_time_statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/CumulativeStatistics", ws_url, q->sid);
    sim_jw_str(&l, "cumulative_statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/Statistics", ws_url);
    sim_jw_str(&l, "list_statistics", u);
    snprintf(u, sizeof(u), "%s/TaskQueues/RealTimeStatistics", ws_url);
    sim_jw_str(&l, "bulk_real_time_statistics", u);
    sim_jw_close(&l, '}');
    sim_jw_str(&j, "reservation_activity_name", tr->act[ACT_RESERVED].name);
    sim_jw_str(&j, "reservation_activity_sid", tr->act[ACT_RESERVED].sid);
    sim_jw_str(&j, "sid", q->sid);
    sim_jw_str(&j, "target_workers", NULL);
    sim_jw_str(&j, "task_order", "FIFO");
    snprintf(u, sizeof(u), "%s/TaskQueues/%s", ws_url, q->sid);
    sim_jw_str(&j, "url", u);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    cg_buf_appendc(b, '}');
}

/* Queue indices matching FriendlyName (all when absent); malloc'd. */
static size_t *select_queues(const struct sim_taskrouter *tr, const char *name, size_t *n)
{
    size_t *idx = cg_malloc((tr->nq ? tr->nq : 1) * sizeof(*idx));
    size_t k = 0;
    for (size_t i = 0; i < tr->nq; i++)
        if (!name || strcmp(tr->q[i].name, name) == 0)
            idx[k++] = i;
    *n = k;
    return idx;
}

static void queues_list(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                        const struct cg_form *f)
{
    static const char *const carry[] = {"EvaluateWorkerAttributes", "FriendlyName", "WorkerSid",
                                        "Ordering", NULL};
    struct sim_paging pg;
    if (parse_paging(tr, req, f, &pg) < 0)
        return;
    size_t n = 0;
    size_t *idx = select_queues(tr, cg_form_get(f, "FriendlyName"), &n);
    /* Simulated workers have no SIDs, so no queue lists one of them. */
    if (cg_form_get(f, "WorkerSid"))
        n = 0;
    if (paging_place(tr, req, idx, n, &pg) < 0) {
        free(idx);
        return;
    }
    char list_url[448];
    snprintf(list_url, sizeof(list_url), "%s/TaskQueues", ws_url);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_open(tr, &b, list_url, f, carry, &pg, idx, n, "task_queues");
    for (size_t i = 0; i < pg.count; i++) {
        if (i)
            cg_buf_appendc(&b, ',');
        queue_json(tr, ws_url, idx[pg.start + i], &b);
    }
    cg_buf_appends(&b, "]}");
    free(idx);
    sim_api_reply_buf(req, 200, &b);
}

static void stats_list(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                       const struct cg_form *f, double now)
{
    static const char *const carry[] = {"FriendlyName", "StartDate",       "EndDate", "Minutes",
                                        "TaskChannel",  "SplitByWaitTime", NULL};
    struct sim_paging pg;
    struct window win;
    if (parse_paging(tr, req, f, &pg) < 0 || parse_window(tr, req, f, now, &win) < 0)
        return;
    size_t n = 0;
    size_t *idx = select_queues(tr, cg_form_get(f, "FriendlyName"), &n);
    if (paging_place(tr, req, idx, n, &pg) < 0) {
        free(idx);
        return;
    }
    int failing =
        tr->sc->tr_fail_page >= 0 && pg.start / (size_t)pg.size == (size_t)tr->sc->tr_fail_page;
    if (failing && !tr->sc->tr_fail_garbage) {
        free(idx);
        tr->failed_pages++;
        count(tr, "taskrouter.fail_page");
        sim_api_error(req, 500, 20500, "Internal Server Error");
        return;
    }
    char list_url[448];
    snprintf(list_url, sizeof(list_url), "%s/TaskQueues/Statistics", ws_url);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    envelope_open(tr, &b, list_url, f, carry, &pg, idx, n, "task_queues_statistics");
    int truncated = 0;
    for (size_t i = 0; i < pg.count; i++) {
        size_t qi = idx[pg.start + i];
        if (i)
            cg_buf_appendc(&b, ',');
        cg_buf_appendc(&b, '{');
        struct sim_jw j = {&b, 1};
        sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
        cumulative_member(tr, &j, qi, &win, &truncated);
        realtime_member(tr, &j, qi, now);
        sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
        sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
        cg_buf_appendc(&b, '}');
    }
    cg_buf_appends(&b, "]}");
    free(idx);
    if (truncated)
        count(tr, "taskrouter.history_truncated");
    if (failing) {
        /* A body cut in the middle, with a 200: what a proxy dropping the
         * connection mid-transfer looks like to the client. */
        tr->failed_pages++;
        count(tr, "taskrouter.fail_page");
        size_t cut = b.len / 2 ? b.len / 2 : b.len;
        cg_http_reply(req, 200, "application/json", cg_buf_str(&b), cut);
        cg_buf_free(&b);
        return;
    }
    sim_api_reply_buf(req, 200, &b);
}

static void stats_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                        const struct cg_form *f, size_t qi, double now)
{
    struct window win;
    if (parse_window(tr, req, f, now, &win) < 0)
        return;
    char u[512];
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/Statistics", ws_url, tr->q[qi].sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&b, '{');
    struct sim_jw j = {&b, 1};
    int truncated = 0;
    sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
    sim_jw_str(&j, "url", u);
    cumulative_member(tr, &j, qi, &win, &truncated);
    realtime_member(tr, &j, qi, now);
    sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    cg_buf_appendc(&b, '}');
    if (truncated)
        count(tr, "taskrouter.history_truncated");
    sim_api_reply_buf(req, 200, &b);
}

/* RealTimeStatistics: the keys in the order of the spec's example. */
static void realtime_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                           const struct cg_form *f, size_t qi, double now)
{
    const char *ch = cg_form_get(f, "TaskChannel");
    if (ch && (!*ch || strlen(ch) > 64)) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Invalid TaskChannel");
        return;
    }
    struct rt r;
    realtime(tr, qi, now, &r);
    char u[512];
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/RealTimeStatistics", ws_url, tr->q[qi].sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&b, '{');
    struct sim_jw j = {&b, 1};
    sim_jw_long(&j, "longest_task_waiting_age", r.age);
    sim_jw_str(&j, "longest_task_waiting_sid", r.has_sid ? r.sid : NULL);
    sim_jw_long(&j, "longest_relative_task_age_in_queue", r.age);
    sim_jw_str(&j, "longest_relative_task_sid_in_queue", r.has_sid ? r.sid : NULL);
    sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
    struct sim_jw st = sim_jw_open(&j, "tasks_by_status", '{');
    sim_jw_long(&st, "reserved", 0);
    sim_jw_long(&st, "pending", r.pending);
    sim_jw_long(&st, "assigned", r.busy);
    sim_jw_long(&st, "wrapping", 0);
    sim_jw_close(&st, '}');
    sim_jw_long(&j, "total_eligible_workers", r.eligible);
    static const int order[ACT_COUNT] = {ACT_IDLE, ACT_BUSY, ACT_OFFLINE, ACT_RESERVED};
    struct sim_jw acts = sim_jw_open(&j, "activity_statistics", '[');
    for (int k = 0; k < ACT_COUNT; k++) {
        int a = order[k];
        if (k)
            cg_buf_appendc(&b, ',');
        cg_buf_appendc(&b, '{');
        struct sim_jw e = {&b, 1};
        sim_jw_str(&e, "friendly_name", tr->act[a].name);
        sim_jw_long(&e, "workers", act_workers(&r, a));
        sim_jw_str(&e, "sid", tr->act[a].sid);
        cg_buf_appendc(&b, '}');
    }
    sim_jw_close(&acts, ']');
    struct sim_jw prio = sim_jw_open(&j, "tasks_by_priority", '{');
    sim_jw_close(&prio, '}');
    sim_jw_long(&j, "total_tasks", r.pending + r.busy);
    sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    sim_jw_long(&j, "total_available_workers", r.available);
    sim_jw_str(&j, "url", u);
    cg_buf_appendc(&b, '}');
    sim_api_reply_buf(req, 200, &b);
}

/* CumulativeStatistics: the keys in the order of the spec's example; the
 * wait durations always (the example has them). */
static void cumulative_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                             const struct cg_form *f, size_t qi, double now)
{
    struct window win;
    if (parse_window(tr, req, f, now, &win) < 0)
        return;
    struct cum c;
    if (cumulative(tr, qi, &win, &c))
        count(tr, "taskrouter.history_truncated");
    char u[512];
    snprintf(u, sizeof(u), "%s/TaskQueues/%s/CumulativeStatistics", ws_url, tr->q[qi].sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&b, '{');
    struct sim_jw j = {&b, 1};
    sim_jw_long(&j, "reservations_created", c.accepted);
    sim_jw_str(&j, "account_sid", tr->sc->twilio_account_sid);
    sim_jw_long(&j, "reservations_rejected", 0);
    sim_jw_long(&j, "tasks_completed", c.completed);
    jw_date(&j, "end_time", wall_ms_at(tr, win.to));
    sim_jw_long(&j, "tasks_entered", c.entered);
    sim_jw_long(&j, "tasks_canceled", c.canceled);
    sim_jw_long(&j, "reservations_accepted", c.accepted);
    sim_jw_str(&j, "task_queue_sid", tr->q[qi].sid);
    sim_jw_long(&j, "reservations_timed_out", 0);
    sim_jw_str(&j, "url", u);
    waits_json(&j, "wait_duration_until_canceled", &c.can);
    waits_json(&j, "wait_duration_until_accepted", &c.acc);
    waits_json(&j, "wait_duration_in_queue_until_accepted", &c.acc);
    split_json(&j, &win, &c);
    jw_date(&j, "start_time", wall_ms_at(tr, win.from));
    sim_jw_long(&j, "tasks_moved", 0);
    sim_jw_long(&j, "reservations_canceled", 0);
    sim_jw_str(&j, "workspace_sid", tr->sc->tr_workspace_sid);
    sim_jw_long(&j, "tasks_deleted", 0);
    sim_jw_long(&j, "reservations_rescinded", 0);
    jw_real(&j, "avg_task_acceptance_time", avg_acceptance(&c));
    cg_buf_appendc(&b, '}');
    sim_api_reply_buf(req, 200, &b);
}

static void queue_fetch(struct sim_taskrouter *tr, struct cg_http_req *req, const char *ws_url,
                        size_t qi)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    queue_json(tr, ws_url, qi, &b);
    sim_api_reply_buf(req, 200, &b);
}

/* ---- routing ---- */

/* Which resource a request names; info->status 404 or 405 when it names
 * none or the method is wrong. */
static void classify(const struct sim_taskrouter *tr, struct cg_http_req *req, struct reqinfo *info)
{
    info->ep = EP_UNKNOWN;
    info->qi = -1;
    info->status = 404;
    char buf[512];
    char *seg[MAX_SEGS];
    long nseg = sim_api_split_path(cg_http_req_path_rest(req), buf, sizeof(buf), seg, MAX_SEGS);
    if (nseg < 0)
        return;
    size_t n = (size_t)nseg;
    if (n < 2 || strcmp(seg[0], tr->sc->tr_workspace_sid) != 0 || strcmp(seg[1], "TaskQueues"))
        return;
    if (n == 2) {
        info->ep = EP_QUEUES_LIST;
    } else if (n == 3 && strcmp(seg[2], "Statistics") == 0) {
        info->ep = EP_STATS_LIST;
    } else {
        info->qi = sim_taskrouter_queue_index(tr, seg[2]);
        if (info->qi < 0)
            return;
        if (n == 3)
            info->ep = EP_QUEUE_FETCH;
        else if (n == 4 && strcmp(seg[3], "Statistics") == 0)
            info->ep = EP_STATS_FETCH;
        else if (n == 4 && strcmp(seg[3], "RealTimeStatistics") == 0)
            info->ep = EP_RT_FETCH;
        else if (n == 4 && strcmp(seg[3], "CumulativeStatistics") == 0)
            info->ep = EP_CUM_FETCH;
        else
            return;
    }
    enum cg_http_method m = cg_http_req_method(req);
    /* Only the read side is simulated: creating or changing queues is not
     * something the gate does. */
    info->status = (m == CG_HTTP_GET || m == CG_HTTP_HEAD) ? 0 : 405;
}

static void rate_headers(struct cg_http_req *req, const struct reqinfo *info)
{
    char v[32];
    snprintf(v, sizeof(v), "%ld", info->limit);
    cg_http_set_header(req, "X-Rate-Limit-Limit", v);
    snprintf(v, sizeof(v), "%ld", info->remaining);
    cg_http_set_header(req, "X-Rate-Limit-Remaining", v);
    cg_http_set_header(req, "X-Rate-Limit-Config", ep_config[info->ep]);
}

static void serve(struct sim_taskrouter *tr, struct cg_http_req *req, const struct reqinfo *info)
{
    /* The model answers as of now: a request held back by latency sees
     * the state when its answer leaves. */
    double now = sim_taskrouter_now(tr);
    rate_headers(req, info);
    const struct cg_form *f = NULL;
    if (info->status == 0 && (f = cg_http_req_query(req)) == NULL) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Invalid query string");
    } else if (info->status == 404) {
        not_found(req);
    } else if (info->status == 405) {
        sim_api_error(req, 405, CODE_METHOD, "Method not allowed");
    } else if (info->status == 429) {
        tr->sent_429++;
        count(tr, "taskrouter.429");
        cg_http_set_header(req, "Retry-After", "1");
        sim_api_error(req, 429, 20429, "Too Many Requests");
    } else {
        char base[300], ws_url[400];
        base_url(tr, req, base, sizeof(base));
        snprintf(ws_url, sizeof(ws_url), "%s" API_ROOT "%s", base, tr->sc->tr_workspace_sid);
        size_t qi = info->qi >= 0 ? (size_t)info->qi : 0;
        switch (info->ep) {
        case EP_QUEUES_LIST:
            queues_list(tr, req, ws_url, f);
            break;
        case EP_QUEUE_FETCH:
            queue_fetch(tr, req, ws_url, qi);
            break;
        case EP_STATS_LIST:
            stats_list(tr, req, ws_url, f, now);
            break;
        case EP_STATS_FETCH:
            stats_fetch(tr, req, ws_url, f, qi, now);
            break;
        case EP_RT_FETCH:
            realtime_fetch(tr, req, ws_url, f, qi, now);
            break;
        case EP_CUM_FETCH:
            cumulative_fetch(tr, req, ws_url, f, qi, now);
            break;
        case EP_UNKNOWN:
        case EP_COUNT:
        default:
            not_found(req);
            break;
        }
    }
    tr->inflight--;
}

static void pending_unlink(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->tr->held = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void on_delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    pending_unlink(p);
    struct sim_taskrouter *tr = p->tr;
    struct cg_http_req *req = p->req;
    struct reqinfo info = p->info;
    event_free(p->ev);
    free(p);
    serve(tr, req, &info);
}

static int bucket_take(struct bucket *b, double now, double rate)
{
    double burst = rate < 1 ? 1 : rate;
    if (!b->started) {
        b->tokens = burst;
        b->last = now;
        b->started = 1;
    }
    if (now > b->last) {
        b->tokens += (now - b->last) * rate;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last = now;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 1;
    }
    return 0;
}

static void on_request(struct cg_http_req *req, void *arg)
{
    struct sim_taskrouter *tr = arg;
    double now = sim_taskrouter_now(tr);
    const struct sim_scenario *sc = tr->sc;
    if (++tr->inflight > tr->max_inflight)
        tr->max_inflight = tr->inflight;
    struct reqinfo info = {.ep = EP_UNKNOWN, .qi = -1};
    info.limit = (long)ceil(sc->tr_rate_limit_per_s);
    if (!authorized(tr, req)) {
        tr->unauthorized++;
        count(tr, "taskrouter.401");
        info.remaining = tr->bucket.started ? (long)floor(tr->bucket.tokens) : info.limit;
        rate_headers(req, &info);
        sim_api_unauthorized(req);
        tr->inflight--;
        return;
    }
    classify(tr, req, &info);
    tr->requests[info.ep]++;
    char name[64];
    snprintf(name, sizeof(name), "taskrouter.%s", ep_names[info.ep]);
    count(tr, name);
    /* Both draws happen for every request, so one fault's rate does not
     * shift the other's stream. */
    int inject = sim_rng_chance(tr->fault_rng, sc->tr_rate_429);
    double delay =
        sc->tr_latency.kind != SIM_DIST_NONE ? sim_rng_draw(tr->fault_rng, &sc->tr_latency) : 0;
    if (!bucket_take(&tr->bucket, now, sc->tr_rate_limit_per_s)) {
        tr->rate_limited++;
        info.status = 429;
    } else if (info.ep == EP_QUEUES_LIST && info.status == 0) {
        const struct cg_form *f = cg_http_req_query(req);
        if (f && cg_form_get(f, "EvaluateWorkerAttributes") &&
            !bucket_take(&tr->eval_bucket, now, EVAL_ATTR_RPS)) {
            tr->rate_limited++;
            info.status = 429;
        }
    }
    if (info.status != 429 && inject) {
        tr->injected_429++;
        info.status = 429;
    }
    info.remaining = (long)floor(tr->bucket.tokens);
    if (!(delay > 0)) {
        serve(tr, req, &info);
        return;
    }
    struct pending *p = cg_calloc(1, sizeof(*p));
    p->tr = tr;
    p->req = req;
    p->info = info;
    p->ev = evtimer_new(tr->w->base, on_delayed, p);
    if (!p->ev) {
        free(p);
        serve(tr, req, &info);
        return;
    }
    p->next = tr->held;
    if (tr->held)
        tr->held->prev = p;
    tr->held = p;
    if (sim_api_hold_timer(p->ev, delay, MAX_LATENCY_S) != 0) {
        pending_unlink(p);
        event_free(p->ev);
        free(p);
        serve(tr, req, &info);
    }
}

static int rest_init(struct sim_taskrouter *tr)
{
    unsigned methods = CG_HTTP_GET | CG_HTTP_POST | CG_HTTP_DELETE | CG_HTTP_PUT | CG_HTTP_PATCH;
    if (cg_httpd_route(tr->w->httpd, API_ROOT "*", methods, on_request, tr) < 0) {
        cg_log_error("sim taskrouter: cannot register the routes", "");
        return -1;
    }
    return 0;
}

/* ---- counters and teardown ---- */

long sim_taskrouter_requests(const struct sim_taskrouter *tr, const char *endpoint)
{
    for (int i = 0; i < EP_COUNT; i++)
        if (endpoint && strcmp(endpoint, ep_names[i]) == 0)
            return tr->requests[i];
    return 0;
}

long sim_taskrouter_max_concurrent(const struct sim_taskrouter *tr)
{
    return tr->max_inflight;
}

long sim_taskrouter_sent_429(const struct sim_taskrouter *tr)
{
    return tr->sent_429;
}

static json_t *requests_json(const struct sim_taskrouter *tr)
{
    json_t *o = json_object();
    for (int i = 0; i < EP_COUNT; i++)
        json_object_set_new(o, ep_names[i], json_integer(tr->requests[i]));
    return o;
}

json_t *sim_taskrouter_report_json(struct sim_taskrouter *tr)
{
    sim_taskrouter_now(tr);
    long entered = 0, accepted = 0, canceled = 0, completed = 0, refused = 0, pending = 0;
    for (size_t i = 0; i < tr->nq; i++) {
        const struct tq *q = &tr->q[i];
        entered += q->entered;
        accepted += q->accepted;
        canceled += q->canceled;
        completed += q->completed;
        refused += q->refused;
        pending += (long)q->npending;
    }
    json_t *o = json_object();
    json_object_set_new(o, "workspace_sid", json_string(tr->sc->tr_workspace_sid));
    json_object_set_new(o, "queues", json_integer((json_int_t)tr->nq));
    json_object_set_new(o, "stalled_queues", json_integer((json_int_t)tr->nstalled));
    json_t *t = json_object();
    json_object_set_new(t, "entered", json_integer(entered));
    json_object_set_new(t, "accepted", json_integer(accepted));
    json_object_set_new(t, "canceled", json_integer(canceled));
    json_object_set_new(t, "completed", json_integer(completed));
    json_object_set_new(t, "pending", json_integer(pending));
    json_object_set_new(t, "refused", json_integer(refused));
    json_object_set_new(o, "tasks", t);
    json_object_set_new(o, "requests", requests_json(tr));
    json_object_set_new(o, "unauthorized", json_integer(tr->unauthorized));
    json_object_set_new(o, "max_concurrent_requests", json_integer(tr->max_inflight));
    json_object_set_new(o, "sent_429", json_integer(tr->sent_429));
    json_object_set_new(o, "rate_limited", json_integer(tr->rate_limited));
    json_object_set_new(o, "injected_429", json_integer(tr->injected_429));
    json_object_set_new(o, "failed_pages", json_integer(tr->failed_pages));
    return o;
}

json_t *sim_taskrouter_status_json(struct sim_taskrouter *tr)
{
    sim_taskrouter_now(tr);
    json_t *o = json_object();
    json_object_set_new(o, "queues", json_integer((json_int_t)tr->nq));
    json_object_set_new(o, "pending", json_integer((json_int_t)tr->pending_total));
    json_object_set_new(o, "requests", requests_json(tr));
    json_object_set_new(o, "maxConcurrent", json_integer(tr->max_inflight));
    json_object_set_new(o, "sent429", json_integer(tr->sent_429));
    return o;
}

void sim_taskrouter_free(struct sim_taskrouter *tr)
{
    if (!tr)
        return;
    if (tr->tick)
        event_free(tr->tick);
    while (tr->held) {
        struct pending *p = tr->held;
        pending_unlink(p);
        event_free(p->ev);
        sim_api_error(p->req, 503, 20503, "Service Unavailable");
        tr->inflight--;
        free(p);
    }
    for (size_t i = 0; i < tr->nq; i++) {
        sim_rng_free(tr->q[i].rng);
        free(tr->q[i].p);
        free(tr->q[i].h);
    }
    free(tr->q);
    free(tr->heap);
    sim_rng_free(tr->fault_rng);
    free(tr);
}
