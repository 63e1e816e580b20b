/*
 * taskrouter_model.c - the TaskRouter model (see taskrouter.h, "The
 * model"): one heap of (time, event) over all queues, per-queue rings for
 * the pending FIFO and the history, the queue dynamics, the clock, and the
 * truth handed to the wait-time scorer.
 */
#include "base/fmacros.h"

#include "taskrouter_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "report.h"
#include "rng.h"
#include "scenario.h"
#include "sim.h"

/* ---- small helpers ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sim_tr_count(struct sim_taskrouter *tr, const char *name)
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
int64_t sim_tr_wall_ms_at(const struct sim_taskrouter *tr, double t)
{
    return (int64_t)tr->wall0_ms + (int64_t)llround(t * 1000.0);
}

/* "2015-08-04T01:31:41Z", as the v1 APIs write dates. */
void sim_tr_iso_date(int64_t wall_ms, char out[ISO_LEN])
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

static void hist_add(struct tq *q, double t, double wait, enum h_kind kind)
{
    if (q->hn == q->hcap) {
        if (q->hcap < q->hmax) {
            size_t cap = q->hcap ? q->hcap * 2 : 64;
            if (cap > q->hmax)
                cap = q->hmax;
            struct hrec *h = cg_malloc(cap * sizeof(*h));
            for (size_t i = 0; i < q->hn; i++)
                h[i] = *sim_tr_hist_at(q, i);
            free(q->h);
            q->h = h;
            q->hh = 0;
            q->hcap = cap;
        } else {
            /* Full: the oldest record goes; windows reaching past it are
             * undercounted, which sim_tr_cumulative() reports. */
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
size_t sim_tr_hist_lower(const struct tq *q, double from)
{
    size_t lo = 0, hi = q->hn;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sim_tr_hist_at(q, mid)->t < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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
            p[i] = *sim_tr_pend_at(q, i);
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
void sim_tr_pend_trim(struct tq *q)
{
    while (q->pn > 0 && sim_tr_pend_at(q, 0)->canceled)
        pend_pop(q);
}

static struct ptask *pend_find(const struct tq *q, uint64_t seq)
{
    size_t lo = 0, hi = q->pn;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s = sim_tr_pend_at(q, mid)->seq;
        if (s == seq)
            return sim_tr_pend_at(q, mid);
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
        sim_tr_count(tr, "taskrouter.tasks_refused");
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
    sim_tr_pend_trim(q);
    if (q->pn == 0 || q->stalled)
        return;
    double wait = t - sim_tr_pend_at(q, 0)->enq;
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
    sim_tr_pend_trim(q);
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
        const struct hrec *r = sim_tr_hist_at(q, j);
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
        const struct ptask *p = sim_tr_pend_at(q, j);
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
void sim_tr_task_sid(const struct sim_taskrouter *tr, size_t qi, uint64_t seq, char out[35])
{
    uint64_t x = tr->sid_key ^ ((uint64_t)qi << 40) ^ seq;
    unsigned long long a = mix64(x), b = mix64(x + 0x9e3779b97f4a7c15ULL);
    snprintf(out, 35, "WT%016llx%016llx", a, b);
}

/* ---- life ---- */

void sim_tr_model_init(struct sim_taskrouter *tr)
{
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
}

void sim_tr_model_free(struct sim_taskrouter *tr)
{
    for (size_t i = 0; i < tr->nq; i++) {
        sim_rng_free(tr->q[i].rng);
        free(tr->q[i].p);
        free(tr->q[i].h);
    }
    free(tr->q);
    free(tr->heap);
}
