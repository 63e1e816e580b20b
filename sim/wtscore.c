/*
 * wtscore.c - sampling callgate's /wait-times and scoring it against the
 * simulated TaskRouter's truth (see wtscore.h).
 *
 * Samples wait per queue, in the order they were taken, until the task
 * that judges them has left the queue; then they are folded into running
 * sums and forgotten. Memory thus holds only what cannot be judged yet (a
 * stalled queue's samples, the last few seconds of the others), and one
 * resolution pass costs one read of each such queue's truth, not one per
 * sample: sim_taskrouter_actual_waits() from the queue's oldest sample on,
 * walked alongside the samples, gives each the first task at or after it,
 * exactly what sim_taskrouter_actual_wait_at() would (the unit test holds
 * the scorer to that).
 */
#include "base/fmacros.h"

#include "wtscore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "net/httpc.h"
#include "base/json.h"
#include "base/log.h"
#include "taskrouter.h"

#define SID_LEN            34
#define POLL_TIMEOUT_MS    10000
#define MAX_RESPONSE_BYTES (64 * 1024 * 1024) /* 10,000 queues of full records, with room */
#define MAX_URL            2048

struct sample {
    double t; /* model seconds */
    float est, seed;
    int stale;
};

/* Samples of one queue not judged yet, oldest first. */
struct qsamples {
    struct sample *v;
    size_t n, cap;
};

struct sid_ix {
    const char *sid;
    size_t qi;
};

/* The context of a request out: s is NULL once the scorer is gone. */
struct poll_op {
    struct sim_wtscore *s;
};

struct sim_wtscore {
    struct event_base *base;
    struct cg_httpc *httpc;
    struct sim_taskrouter *tr;
    char *url; /* .../wait-times */
    long sample_ms;
    size_t max_samples;
    struct event *tick;
    struct poll_op *op;

    struct qsamples *q;
    size_t nq;
    struct sid_ix *ix; /* sorted by SID */
    size_t held;       /* samples waiting to be judged, all queues */
    struct sim_tr_wait *buf;
    size_t bufcap;

    long samples, dropped, unknown, stale, polls, poll_errors;
    /* Judged for good. */
    long scored, canceled, cg_closer, seed_closer;
    double cg_abs, cg_sum, seed_abs, seed_sum;
    /* As of the last pass: samples whose truth is not known yet. */
    long awaiting, lower, below_cg, below_seed;
    long st_lower, st_below_cg, st_below_seed; /* the same, stalled queues only */
    double short_cg, short_seed;
};

static int ix_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sid_ix *)a)->sid, ((const struct sid_ix *)b)->sid);
}

static int ix_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct sid_ix *)elem)->sid);
}

static long queue_of(const struct sim_wtscore *s, const char *sid)
{
    if (!sid || strlen(sid) != SID_LEN || s->nq == 0)
        return -1;
    const struct sid_ix *e = bsearch(sid, s->ix, s->nq, sizeof(*s->ix), ix_key);
    return e ? (long)e->qi : -1;
}

int sim_wtscore_add(struct sim_wtscore *s, double t, const char *sid, double estimate_s,
                    double seed_s, int stale)
{
    long qi = queue_of(s, sid);
    if (qi < 0) {
        s->unknown++;
        return -1;
    }
    if (s->held >= s->max_samples) {
        s->dropped++;
        return -1;
    }
    struct qsamples *q = &s->q[qi];
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->v = cg_realloc(q->v, q->cap * sizeof(*q->v));
    }
    /* A figure we cannot read as a wait is scored as "no wait", which is
     * what a caller would be told. */
    struct sample *p = &q->v[q->n++];
    p->t = t;
    p->est = (float)(isfinite(estimate_s) && estimate_s > 0 ? estimate_s : 0);
    p->seed = (float)(isfinite(seed_s) && seed_s > 0 ? seed_s : 0);
    p->stale = stale != 0;
    s->held++;
    s->samples++;
    if (stale)
        s->stale++;
    return 0;
}

long sim_wtscore_ingest(struct sim_wtscore *s, const char *body, size_t len, double t)
{
    char err[128];
    json_t *root = cg_json_parse(body, len, CG_JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        return -1;
    const json_t *list = json_object_get(root, "queues");
    if (!json_is_array(list)) {
        json_decref(root);
        return -1;
    }
    long kept = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *r = json_array_get(list, i);
        double est = 0, seed = 0;
        int stale = 0;
        /* A record without figures is judged as announcing 0. */
        (void)cg_json_num(r, "estimateSeconds", &est);
        (void)cg_json_num(r, "waitTime", &seed);
        (void)cg_json_bool(r, "stale", &stale);
        if (sim_wtscore_add(s, t, cg_json_str(r, "sid"), est, seed, stale) == 0)
            kept++;
    }
    json_decref(root);
    return kept;
}

/* The truth of queue qi for tasks that entered at or after from, oldest
 * first, in s->buf; returns how many. */
static size_t truth(struct sim_wtscore *s, size_t qi, double from)
{
    for (;;) {
        long n = sim_taskrouter_actual_waits(s->tr, qi, from, INFINITY, s->buf, s->bufcap);
        if (n < 0)
            return 0;
        if ((size_t)n <= s->bufcap)
            return (size_t)n;
        /* More than room: grow and read again (the model may have moved on
         * by a task in between, hence the loop). */
        s->bufcap = (size_t)n + 64;
        s->buf = cg_realloc(s->buf, s->bufcap * sizeof(*s->buf));
    }
}

static void resolve_queue(struct sim_wtscore *s, size_t qi)
{
    struct qsamples *q = &s->q[qi];
    if (q->n == 0)
        return;
    size_t m = truth(s, qi, q->v[0].t);
    long stalled = sim_taskrouter_queue_stalled(s->tr, qi) != 0;
    size_t j = 0, k = 0;
    for (size_t i = 0; i < q->n; i++) {
        const struct sample *p = &q->v[i];
        /* Sample times only grow, so the first task at or after them does
         * too: one walk over both lists. */
        while (j < m && s->buf[j].entered_s < p->t)
            j++;
        if (j == m) {
            s->awaiting++;
            q->v[k++] = *p;
            continue;
        }
        const struct sim_tr_wait *tw = &s->buf[j];
        double est = p->est, seed = p->seed;
        switch (tw->outcome) {
        case SIM_TR_ACCEPTED:
            s->scored++;
            s->cg_abs += fabs(est - tw->wait_s);
            s->cg_sum += est - tw->wait_s;
            s->seed_abs += fabs(seed - tw->wait_s);
            s->seed_sum += seed - tw->wait_s;
            if (fabs(est - tw->wait_s) < fabs(seed - tw->wait_s))
                s->cg_closer++;
            else if (fabs(seed - tw->wait_s) < fabs(est - tw->wait_s))
                s->seed_closer++;
            s->held--;
            break;
        case SIM_TR_CANCELED:
            s->canceled++;
            s->held--;
            break;
        case SIM_TR_PENDING:
        default:
            s->lower++;
            s->st_lower += stalled;
            if (est < tw->wait_s) {
                s->below_cg++;
                s->st_below_cg += stalled;
                s->short_cg += tw->wait_s - est;
            }
            if (seed < tw->wait_s) {
                s->below_seed++;
                s->st_below_seed += stalled;
                s->short_seed += tw->wait_s - seed;
            }
            q->v[k++] = *p;
            break;
        }
    }
    q->n = k;
}

void sim_wtscore_resolve(struct sim_wtscore *s)
{
    s->awaiting = s->lower = s->below_cg = s->below_seed = 0;
    s->st_lower = s->st_below_cg = s->st_below_seed = 0;
    s->short_cg = s->short_seed = 0;
    for (size_t i = 0; i < s->nq; i++)
        resolve_queue(s, i);
}

/* Milliseconds are plenty for seconds of wait, and read better. */
static json_t *num(long n, double sum)
{
    return n > 0 ? json_real(round(sum / (double)n * 1000.0) / 1000.0) : json_null();
}

json_t *sim_wtscore_json(struct sim_wtscore *s)
{
    sim_wtscore_resolve(s);
    json_t *o = json_object();
    json_object_set_new(o, "samples", json_integer(s->samples));
    json_object_set_new(o, "scored", json_integer(s->scored));
    json_object_set_new(o, "mae_callgate_s", num(s->scored, s->cg_abs));
    json_object_set_new(o, "mae_seed_s", num(s->scored, s->seed_abs));
    json_object_set_new(o, "ratio",
                        s->scored > 0 && s->seed_abs > 0
                            ? json_real(round(s->cg_abs / s->seed_abs * 1000.0) / 1000.0)
                            : json_null());
    json_object_set_new(o, "bias_callgate_s", num(s->scored, s->cg_sum));
    json_object_set_new(o, "bias_seed_s", num(s->scored, s->seed_sum));
    json_object_set_new(o, "callgate_closer", json_integer(s->cg_closer));
    json_object_set_new(o, "seed_closer", json_integer(s->seed_closer));
    json_object_set_new(o, "canceled_skipped", json_integer(s->canceled));
    json_object_set_new(o, "awaiting", json_integer(s->awaiting));
    json_object_set_new(o, "pending_lower_bounds", json_integer(s->lower));
    json_object_set_new(o, "below_lower_bound_callgate", json_integer(s->below_cg));
    json_object_set_new(o, "below_lower_bound_seed", json_integer(s->below_seed));
    json_object_set_new(o, "stalled_lower_bounds", json_integer(s->st_lower));
    json_object_set_new(o, "below_lower_bound_stalled_callgate", json_integer(s->st_below_cg));
    json_object_set_new(o, "below_lower_bound_stalled_seed", json_integer(s->st_below_seed));
    json_object_set_new(o, "shortfall_callgate_s", num(s->lower, s->short_cg));
    json_object_set_new(o, "shortfall_seed_s", num(s->lower, s->short_seed));
    json_object_set_new(o, "stale_samples", json_integer(s->stale));
    json_object_set_new(o, "dropped", json_integer(s->dropped));
    json_object_set_new(o, "unknown_queue", json_integer(s->unknown));
    json_object_set_new(o, "polls", json_integer(s->polls));
    json_object_set_new(o, "poll_errors", json_integer(s->poll_errors));
    return o;
}

/* ---- sampling ---- */

static void on_answer(const struct cg_httpc_result *res, void *arg)
{
    struct poll_op *op = arg;
    struct sim_wtscore *s = op->s;
    free(op);
    if (!s)
        return;
    s->op = NULL;
    s->polls++;
    /* The time the answer arrived: when a caller asking would have heard
     * it. */
    double t = sim_taskrouter_now(s->tr);
    if (res->error || res->status != 200 ||
        sim_wtscore_ingest(s, res->body, res->body_len, t) < 0) {
        /* 503 before callgate's first refresh is normal; counted only. */
        s->poll_errors++;
        return;
    }
    sim_wtscore_resolve(s);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_wtscore *s = arg;
    if (s->op)
        return; /* the last answer is not in yet: one request at a time */
    struct cg_httpc_request req = {.method = "GET",
                                   .url = s->url,
                                   .timeout_ms = POLL_TIMEOUT_MS,
                                   .max_response_bytes = MAX_RESPONSE_BYTES};
    struct poll_op *op = cg_calloc(1, sizeof(*op));
    op->s = s;
    if (cg_httpc_send(s->httpc, &req, on_answer, op) != 0) {
        free(op);
        s->poll_errors++;
        return;
    }
    s->op = op;
}

struct sim_wtscore *sim_wtscore_new(struct event_base *base, struct cg_httpc *httpc,
                                    struct sim_taskrouter *tr, const char *url, long sample_ms,
                                    size_t max_samples)
{
    struct sim_wtscore *s = cg_calloc(1, sizeof(*s));
    s->base = base;
    s->httpc = httpc;
    s->tr = tr;
    s->sample_ms = sample_ms >= 1 ? sample_ms : SIM_WTSCORE_DEFAULT_SAMPLE_MS;
    s->max_samples = max_samples ? max_samples : SIM_WTSCORE_MAX_SAMPLES;
    s->nq = sim_taskrouter_queue_count(tr);
    s->q = cg_calloc(s->nq ? s->nq : 1, sizeof(*s->q));
    s->ix = cg_calloc(s->nq ? s->nq : 1, sizeof(*s->ix));
    for (size_t i = 0; i < s->nq; i++) {
        s->ix[i].sid = sim_taskrouter_queue_sid(tr, i);
        s->ix[i].qi = i;
    }
    qsort(s->ix, s->nq, sizeof(*s->ix), ix_cmp);
    if (!url)
        return s;
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (!base || !httpc || n == 0 || n > MAX_URL) {
        cg_log_error("sim wait-time scorer: bad setup", "");
        sim_wtscore_free(s);
        return NULL;
    }
    size_t len = n + sizeof("/wait-times");
    s->url = cg_malloc(len);
    memcpy(s->url, url, n);
    memcpy(s->url + n, "/wait-times", sizeof("/wait-times"));
    s->tick = event_new(base, -1, EV_PERSIST, on_tick, s);
    struct timeval tv = {.tv_sec = s->sample_ms / 1000, .tv_usec = (s->sample_ms % 1000) * 1000};
    if (!s->tick || event_add(s->tick, &tv) != 0) {
        cg_log_error("sim wait-time scorer: cannot arm the sampling timer", "");
        sim_wtscore_free(s);
        return NULL;
    }
    cg_log_info("sim wait-time scorer on", "url=%s sample_ms=%ld", s->url, s->sample_ms);
    return s;
}

void sim_wtscore_free(struct sim_wtscore *s)
{
    if (!s)
        return;
    if (s->tick)
        event_free(s->tick);
    if (s->op)
        s->op->s = NULL; /* freed by its callback */
    for (size_t i = 0; i < s->nq; i++)
        free(s->q[i].v);
    free(s->q);
    free(s->ix);
    free(s->buf);
    free(s->url);
    free(s);
}
