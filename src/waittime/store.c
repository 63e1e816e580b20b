/*
 * store.c - the Redis side every instance shares: the contexts of requests
 * that may outlive the service, the version-checked read that reloads the
 * snapshot when another instance (or this one) wrote a newer version,
 * installing a snapshot, and the argument list of the fenced write. The
 * keys are cg:{wt:<WS>}:version, :meta, :queues, :names and :lock
 * (docs/ARCHITECTURE.md, "Wait-time service").
 */
#include "base/fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "waittime/internal.h"

#define META_PAIRS 9 /* fields of the meta hash written by each refresh */

/* ---- request contexts ---- */

struct wt_op *wt_op_new(struct cg_waittime *w, enum wt_op_kind kind)
{
    struct wt_op *op = cg_calloc(1, sizeof *op);
    op->w = w;
    op->kind = kind;
    cg_list_push_back(&w->ops, &op->link);
    return op;
}

struct cg_waittime *wt_op_done(struct wt_op *op)
{
    struct cg_waittime *w = op->w;
    cg_list_remove(&op->link); /* harmless when orphaned (self-linked) */
    free(op);
    return w;
}

void wt_ops_orphan(struct cg_waittime *w)
{
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &w->ops) {
        struct wt_op *op = cg_list_entry(it, struct wt_op, link);
        op->w = NULL;
        cg_list_remove(&op->link);
    }
}

int wt_redis_ready(const struct cg_waittime *w)
{
    return cg_redis_state(w->redis) == CG_REDIS_READY;
}

void wt_set_gauge(struct cg_waittime *w, const char *name, double v)
{
    if (w->metrics)
        cg_metrics_set(w->metrics, name, NULL, v);
}

void wt_install(struct cg_waittime *w, struct wt_snap *s)
{
    wt_snap_free(w->snap);
    w->snap = s;
    w->installs++;
    wt_set_gauge(w, "callgate_waittime_queues", (double)s->n);
    wt_set_gauge(w, "callgate_waittime_stale_queues", (double)wt_snap_stale(s));
    wt_set_gauge(w, "callgate_waittime_last_refresh_timestamp_seconds",
                 (double)s->refreshed_ms / 1000.0);
}

/* ---- the reload ---- */

static const char *rstr(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? r->str : NULL;
}

static uint64_t ustr(const char *s)
{
    return s ? strtoull(s, NULL, 10) : 0;
}

/* What the meta hash says of the stored version. */
struct stored_meta {
    uint64_t refreshed_ms, next_ms, names_version;
};

static void read_meta(const redisReply *meta, struct stored_meta *m)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i + 1 < meta->elements; i += 2) {
        const char *k = rstr(meta->element[i]), *val = rstr(meta->element[i + 1]);
        if (k == NULL || val == NULL)
            continue;
        if (strcmp(k, "refreshed_ms") == 0)
            m->refreshed_ms = ustr(val);
        else if (strcmp(k, "next_ms") == 0)
            m->next_ms = ustr(val);
        else if (strcmp(k, "names_version") == 0)
            m->names_version = ustr(val);
    }
}

/* The records of the queues hash (SID, record pairs); a record that cannot
 * be read is left out and logged. */
static struct cg_wt_record *read_records(const redisReply *qs, size_t *n)
{
    size_t cap = qs->elements / 2;
    if (cap > CG_WT_MAX_QUEUES)
        cap = CG_WT_MAX_QUEUES;
    struct cg_wt_record *recs = cg_calloc(cap ? cap : 1, sizeof *recs);
    size_t bad = 0;
    *n = 0;
    for (size_t i = 0; i + 1 < qs->elements && *n < cap; i += 2) {
        const redisReply *e = qs->element[i + 1];
        if (e->type != REDIS_REPLY_STRING || cg_wt_record_decode(e->str, e->len, &recs[*n]) != 0) {
            bad++;
            continue;
        }
        (*n)++;
    }
    if (bad)
        cg_log_warn("wait-time records in redis could not be read", "bad=%zu", bad);
    return recs;
}

static void on_read(const redisReply *r, const char *err, void *arg)
{
    struct wt_op *op = arg;
    uint64_t sent_installs = op->installs;
    struct cg_waittime *w = wt_op_done(op);
    if (w == NULL)
        return;
    w->read_pending = 0;
    if (err != NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return;
    uint64_t v = ustr(rstr(r->element[0]));
    if (v == 0) {
        /* Nothing in Redis (a new or restarted Redis): keep serving what we
         * have; the next refresh writes it back. */
        w->known_version = 0;
        return;
    }
    if (r->elements < 3 || v == w->known_version)
        return;
    /* A newer snapshot was installed while this read was out (our own
     * refresh): this answer may be older than what we serve. */
    if (w->installs != sent_installs)
        return;
    const redisReply *meta = r->element[1], *qs = r->element[2];
    if (meta->type != REDIS_REPLY_ARRAY || qs->type != REDIS_REPLY_ARRAY)
        return;
    struct stored_meta m;
    read_meta(meta, &m);
    size_t n;
    struct cg_wt_record *recs = read_records(qs, &n);
    struct wt_snap *s = wt_snap_build(recs, n);
    wt_snap_set_version(s, v, m.refreshed_ms);
    s->next_ms = m.next_ms;
    wt_install(w, s);
    w->known_version = v;
    w->next_ms = m.next_ms;
    w->names_version = m.names_version;
    cg_log_debug("wait times reloaded from redis", "version=%llu queues=%zu", (unsigned long long)v,
                 n);
}

void wt_read_step(struct cg_waittime *w)
{
    if (w->read_pending || !w->serving || w->stopping || !wt_redis_ready(w))
        return;
    struct wt_op *op = wt_op_new(w, OP_READ);
    op->installs = w->installs;
    char known[24];
    snprintf(known, sizeof known, "%llu", (unsigned long long)w->known_version);
    const char *args[] = {w->k_version, w->k_meta, w->k_queues, known};
    if (cg_redis_eval(w->redis, w->s_read, 3, 4, args, NULL, on_read, op) != 0) {
        wt_op_done(op);
        return;
    }
    w->read_pending = 1;
}

/* ---- the fenced write's arguments ---- */

/* A borrowed argument of len bytes: it must outlive a. */
static void arg_refn(struct wt_args *a, const char *p, size_t len)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = cg_realloc(a->v, a->cap * sizeof *a->v);
        a->len = cg_realloc(a->len, a->cap * sizeof *a->len);
    }
    a->v[a->n] = p;
    a->len[a->n] = len;
    a->n++;
}

/* A borrowed string: it must outlive a. */
static void arg_ref(struct wt_args *a, const char *p)
{
    arg_refn(a, p, strlen(p));
}

/* An argument a owns (p is malloc'd). */
static void arg_own(struct wt_args *a, char *p)
{
    if (a->nowned == a->owned_cap) {
        a->owned_cap = a->owned_cap ? a->owned_cap * 2 : 64;
        a->owned = cg_realloc(a->owned, a->owned_cap * sizeof *a->owned);
    }
    a->owned[a->nowned++] = p;
    arg_ref(a, p);
}

static void arg_u64(struct wt_args *a, unsigned long long v)
{
    char s[24];
    snprintf(s, sizeof s, "%llu", v);
    arg_own(a, cg_strdup(s));
}

/* One meta field: its name, then its value. */
static void meta_u64(struct wt_args *a, const char *name, unsigned long long v)
{
    arg_ref(a, name);
    arg_u64(a, v);
}

void wt_write_args(struct wt_args *a, const struct cg_waittime *w, const struct wt_refresh *rf,
                   const struct wt_snap *s, uint64_t now_ms, char *const *enc,
                   const size_t *enc_len)
{
    memset(a, 0, sizeof *a);
    /* KEYS */
    arg_ref(a, w->k_lock);
    arg_ref(a, w->k_version);
    arg_ref(a, w->k_meta);
    arg_ref(a, w->k_queues);
    arg_ref(a, w->k_names);
    /* token, names flag, then three counted lists of pairs */
    arg_ref(a, w->token);
    arg_ref(a, rf->names_read ? "1" : "0");

    char iso[25];
    cg_iso8601_ms(now_ms, iso);
    arg_u64(a, META_PAIRS);
    meta_u64(a, "refreshed_ms", now_ms);
    arg_ref(a, "refreshed_at");
    arg_own(a, cg_strdup(iso));
    meta_u64(a, "next_ms", s->next_ms);
    meta_u64(a, "interval_s", (unsigned long long)(w->poll_ms / 1000));
    arg_ref(a, "leader");
    arg_ref(a, w->cfg->instance_id);
    meta_u64(a, "queues", s->n);
    meta_u64(a, "stale_queues", wt_snap_stale(s));
    meta_u64(a, "requests", (unsigned long long)(rf->stats_requests + rf->names_requests));
    meta_u64(a, "pages_failed", (unsigned long long)rf->pages_failed);

    arg_u64(a, s->n);
    struct cg_buf rec;
    cg_buf_init(&rec, 1 << 20);
    for (size_t i = 0; i < s->n; i++) {
        arg_ref(a, s->recs[i].sid);
        if (enc != NULL) {
            arg_refn(a, enc[i], enc_len[i]);
            continue;
        }
        cg_buf_reset(&rec);
        cg_wt_record_encode(&s->recs[i], &rec);
        arg_own(a, cg_buf_take(&rec));
    }
    cg_buf_free(&rec);

    arg_u64(a, s->nnames);
    for (size_t i = 0; i < s->nnames; i++) {
        arg_ref(a, s->by_name[i]->name);
        arg_ref(a, s->by_name[i]->sid);
    }
}

void wt_args_free(struct wt_args *a)
{
    for (size_t i = 0; i < a->nowned; i++)
        free(a->owned[i]);
    free(a->owned);
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof *a);
}
