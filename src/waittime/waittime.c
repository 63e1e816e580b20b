/*
 * waittime.c - the wait-time service of waittime.h: the elected TaskRouter
 * poller, its Redis records, and the in-memory snapshot every instance
 * serves from.
 *
 * Control flow. A 1 s tick (every instance) checks the version in Redis
 * and reloads the snapshot when it changed; on a poller-capable instance it
 * also applies for the lock (SET NX PX) or renews it (compare-and-set), and
 * the leader starts a refresh when the shared schedule says so. A refresh
 * is a small state machine driven by HTTP callbacks and one timer: the
 * statistics pages one after the other (never two requests at once), then
 * the TaskQueues list when names are due, then one fenced write script.
 * Only one refresh exists at a time (w->rf).
 */
#include "base/fmacros.h"

#include "base/err.h"
#include "waittime/internal.h"

#include <ctype.h>
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/crypto.h"
#include "base/alloc.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/estimate.h"
#include "base/form.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "base/json.h"
#include "base/log.h"
#include "base/url.h"
#include "base/metrics.h"
#include "net/periodic.h"
#include "waittime/lua_scripts.h"
#include "twilio/twiml.h"
#include "twilio/signature.h"

/* The seed's key, without a hash tag: its readers know it by this name. */
#define SEED_KEY "queue-times"

#define TICK_MS              1000 /* version check and lock renewal */
#define LOCK_MIN_AUTO_MS     10000
#define LOCK_MIN_MS          2000 /* a lock shorter than two ticks would flap */
#define BACKOFF_BASE_MS      1000
#define BACKOFF_MAX_MS       300000 /* the longest pause between refreshes */
#define ATTEMPTS_TRANSIENT   3      /* 429, 5xx, transport errors */
#define ATTEMPTS_BAD_CONTENT 2      /* 200 that is not the expected JSON */
#define PACE_EMPTY_MS        2000   /* X-Rate-Limit-Remaining: 0 */
#define PACE_LOW_MS          500    /* X-Rate-Limit-Remaining at or below a fifth */
#define NAMES_EVERY          10     /* refreshes between TaskQueues list reads */
#define META_PAIRS           9

/* ================================================================== */
/* The service                                                          */
/* ================================================================== */

static struct wt_op *op_new(struct cg_waittime *w, enum wt_op_kind kind)
{
    struct wt_op *op = cg_calloc(1, sizeof *op);
    op->w = w;
    op->kind = kind;
    op->next = w->ops;
    if (w->ops)
        w->ops->prev = op;
    w->ops = op;
    return op;
}

/* Unlinks and frees op; returns the service it belonged to, or NULL when
 * the service is gone. */
static struct cg_waittime *op_done(struct wt_op *op)
{
    struct cg_waittime *w = op->w;
    if (w) {
        if (op->prev)
            op->prev->next = op->next;
        else
            w->ops = op->next;
        if (op->next)
            op->next->prev = op->prev;
    }
    free(op);
    return w;
}

static int redis_ready(const struct cg_waittime *w)
{
    return cg_redis_state(w->redis) == CG_REDIS_READY;
}

static void set_gauge(struct cg_waittime *w, const char *name, double v)
{
    if (w->metrics)
        cg_metrics_set(w->metrics, name, NULL, v);
}

static void count_request(struct cg_waittime *w, const char *endpoint, long status)
{
    if (w->metrics == NULL)
        return;
    struct cg_buf b;
    cg_buf_init(&b, 256);
    char code[24];
    if (status > 0)
        snprintf(code, sizeof code, "%ld", status);
    else
        snprintf(code, sizeof code, "error");
    cg_metrics_label(&b, "endpoint", endpoint);
    cg_buf_appendc(&b, ',');
    cg_metrics_label(&b, "status", code);
    cg_metrics_inc(w->metrics, "callgate_waittime_twilio_requests_total", cg_buf_str(&b), 1);
    cg_buf_free(&b);
}

static void install(struct cg_waittime *w, struct wt_snap *s)
{
    wt_snap_free(w->snap);
    w->snap = s;
    w->installs++;
    size_t stale = 0;
    for (size_t i = 0; i < s->n; i++)
        stale += s->recs[i].stale != 0;
    set_gauge(w, "callgate_waittime_queues", (double)s->n);
    set_gauge(w, "callgate_waittime_stale_queues", (double)stale);
    set_gauge(w, "callgate_waittime_last_refresh_timestamp_seconds",
              (double)s->refreshed_ms / 1000.0);
}

/* ---- the lock ---- */

static void set_leader(struct cg_waittime *w, int leader)
{
    if (leader && !w->leader)
        cg_log_info("wait-time poller: this instance holds the lock", "workspace=%s lock_ms=%ld",
                    w->ws, w->lock_ms);
    w->leader = leader;
    set_gauge(w, "callgate_waittime_leader", leader);
}

static void refresh_abort(struct cg_waittime *w);
static void maybe_refresh(struct cg_waittime *w);
static void maybe_release(struct cg_waittime *w);

static void on_lock(const redisReply *r, const char *err, void *arg)
{
    struct wt_op *op = arg;
    struct cg_waittime *w = op_done(op);
    if (w == NULL)
        return;
    w->lock_pending = 0;
    if (err != NULL) {
        /* Redis went away or answered an error: the state callback drops the
         * leadership if the connection is gone; a refused command changes
         * nothing (the lock will be tried again in a second). */
        cg_log_debug("wait-time lock command failed", "error=%s", err);
        return;
    }
    int held = (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) ||
               (r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    if (held) {
        w->was_leader = 0;
        set_leader(w, 1);
        if (w->stopping)
            maybe_release(w);
        else
            maybe_refresh(w);
        return;
    }
    if (w->leader) {
        cg_log_warn("wait-time poller lost its lock; another instance polls now", "workspace=%s",
                    w->ws);
        set_leader(w, 0);
        refresh_abort(w);
    }
    w->was_leader = 0;
}

static void lock_step(struct cg_waittime *w)
{
    if (w->lock_pending || !w->polling || w->stopping || !redis_ready(w))
        return;
    struct wt_op *op = op_new(w, OP_LOCK);
    w->lock_pending = 1;
    int rc;
    if (w->leader || w->was_leader) {
        char ms[24];
        snprintf(ms, sizeof ms, "%ld", w->lock_ms);
        const char *args[] = {w->k_lock, w->token, ms};
        rc = cg_redis_eval(w->redis, w->s_renew, 1, 3, args, NULL, on_lock, op);
    } else {
        rc = cg_redis_command(w->redis, on_lock, op, "SET %s %s NX PX %ld", w->k_lock, w->token,
                              w->lock_ms);
    }
    if (rc != 0) {
        op_done(op);
        w->lock_pending = 0;
        cg_log_error("wait-time lock command refused", "");
    }
}

static void on_released(const redisReply *r, const char *err, void *arg)
{
    struct wt_op *op = arg;
    struct cg_waittime *w = op_done(op);
    if (w == NULL)
        return;
    w->release_pending = 0;
    if (err == NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        cg_log_info("wait-time poller released its lock", "workspace=%s", w->ws);
    else
        cg_log_warn("wait-time lock not released; it expires by itself", "error=%s",
                    err ? err : "not held");
}

/* On shutdown, once no request of ours is out, hand the lock over. */
static void maybe_release(struct cg_waittime *w)
{
    if (!w->stopping || w->rf != NULL || w->release_pending || !(w->leader || w->was_leader))
        return;
    set_leader(w, 0);
    w->was_leader = 0;
    if (!redis_ready(w))
        return;
    struct wt_op *op = op_new(w, OP_RELEASE);
    const char *args[] = {w->k_lock, w->token};
    if (cg_redis_eval(w->redis, w->s_release, 1, 2, args, NULL, on_released, op) != 0) {
        op_done(op);
        return;
    }
    w->release_pending = 1;
}

/* ---- reading the shared records ---- */

static const char *rstr(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? r->str : NULL;
}

static uint64_t ustr(const char *s)
{
    return s ? strtoull(s, NULL, 10) : 0;
}

static void on_read(const redisReply *r, const char *err, void *arg)
{
    struct wt_op *op = arg;
    uint64_t sent_installs = op->installs;
    struct cg_waittime *w = op_done(op);
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
    uint64_t refreshed = 0, next = 0, names_v = 0;
    for (size_t i = 0; i + 1 < meta->elements; i += 2) {
        const char *k = rstr(meta->element[i]), *val = rstr(meta->element[i + 1]);
        if (k == NULL || val == NULL)
            continue;
        if (strcmp(k, "refreshed_ms") == 0)
            refreshed = ustr(val);
        else if (strcmp(k, "next_ms") == 0)
            next = ustr(val);
        else if (strcmp(k, "names_version") == 0)
            names_v = ustr(val);
    }
    size_t cap = qs->elements / 2;
    if (cap > CG_WT_MAX_QUEUES)
        cap = CG_WT_MAX_QUEUES;
    struct cg_wt_record *recs = cg_calloc(cap ? cap : 1, sizeof *recs);
    size_t n = 0, bad = 0;
    for (size_t i = 0; i + 1 < qs->elements && n < cap; i += 2) {
        const redisReply *e = qs->element[i + 1];
        if (e->type != REDIS_REPLY_STRING || cg_wt_record_decode(e->str, e->len, &recs[n]) != 0) {
            bad++;
            continue;
        }
        n++;
    }
    if (bad)
        cg_log_warn("wait-time records in redis could not be read", "bad=%zu", bad);
    struct wt_snap *s = wt_snap_build(recs, n);
    wt_snap_set_version(s, v, refreshed);
    s->next_ms = next;
    install(w, s);
    w->known_version = v;
    w->next_ms = next;
    w->names_version = names_v;
    cg_log_debug("wait times reloaded from redis", "version=%llu queues=%zu", (unsigned long long)v,
                 n);
}

static void read_step(struct cg_waittime *w)
{
    if (w->read_pending || !w->serving || w->stopping || !redis_ready(w))
        return;
    struct wt_op *op = op_new(w, OP_READ);
    op->installs = w->installs;
    char known[24];
    snprintf(known, sizeof known, "%llu", (unsigned long long)w->known_version);
    const char *args[] = {w->k_version, w->k_meta, w->k_queues, known};
    if (cg_redis_eval(w->redis, w->s_read, 3, 4, args, NULL, on_read, op) != 0) {
        op_done(op);
        return;
    }
    w->read_pending = 1;
}

/* ---- the refresh ---- */

static void refresh_free(struct wt_refresh *rf)
{
    if (rf == NULL)
        return;
    free(rf->url);
    free(rf->seed);
    for (size_t i = 0; i < rf->n; i++)
        free(rf->recs[i].name);
    free(rf->recs);
    free(rf->seen);
    free(rf->idx.slot);
    for (size_t i = 0; i < rf->nurls; i++)
        free(rf->urls[i]);
    free(rf->urls);
    for (size_t i = 0; i < rf->nnames; i++)
        free(rf->names[i].name);
    free(rf->names);
    wt_snap_free(rf->result);
    free(rf);
}

static void free_urls(char **urls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
}

static void schedule_page(struct cg_waittime *w, long delay_ms)
{
    if (delay_ms < 0)
        delay_ms = 0;
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
    evtimer_add(w->page_timer, &tv);
}

static const char *result_name(const struct wt_refresh *rf, int written)
{
    if (rf->aborted)
        return "aborted";
    if (!written || rf->pages_ok == 0)
        return "failed";
    return rf->pages_failed ? "partial" : "ok";
}

/* The end of a refresh, whatever happened: logs, schedules the next one. */
static void refresh_end(struct cg_waittime *w, int written)
{
    struct wt_refresh *rf = w->rf;
    uint64_t now = cg_wall_ms();
    const char *result = result_name(rf, written);
    size_t stale = 0;
    for (size_t i = 0; i < rf->n; i++)
        stale += rf->seen[i] == 0;
    if (!rf->aborted) {
        uint64_t next = rf->started_ms + (uint64_t)w->poll_ms;
        if (next < now + 1000)
            next = now + 1000;
        w->next_ms = next;
        if (rf->rate_limited || rf->pages_ok == 0) {
            /* Twilio pushed back or nothing worked: the next refresh waits for
             * the backoff too, which grows while this goes on. */
            long d =
                cg_backoff_ms(BACKOFF_BASE_MS, w->backoff_cap_ms,
                              w->rl_streak > 1 ? (unsigned)w->rl_streak - 1 : 0, rf->retry_after_s);
            w->hold_until = cg_mono_ms() + (uint64_t)d;
            cg_log_warn("wait-time refresh backing off", "delay_ms=%ld streak=%d", d, w->rl_streak);
        }
    }
    int level = strcmp(result, "ok") == 0 ? CG_LOG_INFO : CG_LOG_WARN;
    cg_log((enum cg_log_level)level, "wait-time refresh done",
           "result=%s queues=%zu stale=%zu stats_requests=%d names_requests=%d retries=%d "
           "pages_failed=%d ms=%llu",
           result, rf->n, stale, rf->stats_requests, rf->names_requests, rf->retries,
           rf->pages_failed, (unsigned long long)(cg_mono_ms() - rf->started_mono));
    if (w->metrics) {
        struct cg_buf b;
        cg_buf_init(&b, 128);
        cg_metrics_label(&b, "result", result);
        cg_metrics_inc(w->metrics, "callgate_waittime_refreshes_total", cg_buf_str(&b), 1);
        cg_buf_free(&b);
    }
    refresh_free(rf);
    w->rf = NULL;
    maybe_release(w);
}

/* Leadership lost or shutdown: the request out (if any) finishes, then the
 * refresh ends without writing. A refresh waiting on its timer ends now. */
static void refresh_abort(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (rf == NULL)
        return;
    rf->aborted = 1;
    if (!rf->busy) {
        evtimer_del(w->page_timer);
        refresh_end(w, 0);
    }
}

static void page_send(struct cg_waittime *w);

static void on_page_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    page_send(arg);
}

/* Folds one statistics page into the working set. */
static void apply_stats(struct cg_waittime *w, struct cg_wt_record *items, size_t n,
                        uint64_t fetched_ms)
{
    struct wt_refresh *rf = w->rf;
    for (size_t i = 0; i < n; i++) {
        struct cg_wt_record *it = &items[i];
        it->fetched_ms = fetched_ms;
        long at = wt_idx_find(&rf->idx, rf->recs, it->sid);
        if (at < 0) {
            if (rf->n >= CG_WT_MAX_QUEUES) {
                rf->dropped++;
                continue;
            }
            if (rf->n == rf->cap) {
                rf->cap = rf->cap ? rf->cap * 2 : 64;
                rf->recs = cg_realloc(rf->recs, rf->cap * sizeof *rf->recs);
                rf->seen = cg_realloc(rf->seen, rf->cap);
            }
            at = (long)rf->n++;
            memset(&rf->recs[at], 0, sizeof rf->recs[at]);
            wt_idx_put(&rf->idx, it->sid, (size_t)at);
        }
        struct cg_wt_record *r = &rf->recs[at];
        char *name = r->name;
        *r = *it;
        r->name = name;
        r->stale = 0;
        rf->seen[at] = 1;
        if (name == NULL)
            rf->unnamed = 1;
    }
}

static int names_due(const struct cg_waittime *w)
{
    const struct wt_refresh *rf = w->rf;
    if (w->names_version == 0)
        return 1;
    if (w->known_version + 1 >= w->names_version + NAMES_EVERY)
        return 1;
    /* A queue without a name: read the list again, but not on two refreshes
     * in a row, in case Twilio lists a queue's statistics before the queue. */
    return rf->unnamed && w->names_version < w->known_version;
}

static void refresh_write(struct cg_waittime *w);

/* The current list (statistics or names) is done, read or not. */
static void phase_done(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (rf->phase == PH_STATS) {
        /* Remember where each page began, so that a page that fails next time
         * can be stepped over. Pages not reached keep their old URL. */
        size_t keep = rf->nurls > w->npage_urls ? rf->nurls : w->npage_urls;
        if (!rf->broken)
            keep = rf->nurls;
        char **urls = cg_calloc(keep ? keep : 1, sizeof *urls);
        for (size_t i = 0; i < keep; i++) {
            if (i < rf->nurls && rf->urls[i]) {
                urls[i] = rf->urls[i];
                rf->urls[i] = NULL;
            } else if (i < w->npage_urls && w->page_urls[i]) {
                urls[i] = w->page_urls[i];
                w->page_urls[i] = NULL;
            }
        }
        free_urls(w->page_urls, w->npage_urls);
        w->page_urls = urls;
        w->npage_urls = keep;
        if (rf->dropped)
            cg_log_warn("more task queues than callgate keeps; the rest are ignored",
                        "max=%d ignored=%zu", CG_WT_MAX_QUEUES, rf->dropped);
        if (!rf->rate_limited && rf->pages_ok > 0 && names_due(w)) {
            rf->phase = PH_NAMES;
            free(rf->url);
            rf->url = cg_strdup(w->names_url);
            rf->page = 0;
            rf->attempt = 1;
            schedule_page(w, 0);
            return;
        }
    }
    refresh_write(w);
}

enum outcome { OUT_OK, OUT_RATE, OUT_TRANSIENT, OUT_BAD, OUT_FATAL };

/* Moves to the next page URL of the current list (or ends the list). */
static void next_page(struct cg_waittime *w, char *next_url, long delay_ms)
{
    struct wt_refresh *rf = w->rf;
    const char *base = w->cfg->taskrouter_base_url;
    size_t max_pages = CG_WT_MAX_QUEUES / (size_t)w->cfg->wait_time_page_size + 2;
    if (next_url != NULL && !cg_url_same_origin(base, next_url)) {
        /* Following it would send our credentials to another host. */
        cg_log_error("twilio's next_page_url points to another host; not followed", "");
        free(next_url);
        next_url = NULL;
        if (rf->phase == PH_STATS)
            rf->broken = 1;
    } else if (next_url != NULL && (rf->page + 1 >= max_pages || strcmp(next_url, rf->url) == 0)) {
        cg_log_error("twilio's paging does not end; stopping", "pages=%zu", rf->page + 1);
        free(next_url);
        next_url = NULL;
        if (rf->phase == PH_STATS)
            rf->broken = 1;
    }
    if (next_url == NULL) {
        if (rf->phase == PH_NAMES && rf->pages_failed == 0)
            rf->names_complete = 1;
        phase_done(w);
        return;
    }
    free(rf->url);
    rf->url = next_url;
    rf->page++;
    rf->attempt = 1;
    schedule_page(w, delay_ms);
}

static void on_page(const struct cg_httpc_result *res, void *arg)
{
    struct wt_op *op = arg;
    struct cg_waittime *w = op_done(op);
    if (w == NULL)
        return;
    struct wt_refresh *rf = w->rf;
    rf->busy = 0;
    const char *what = rf->phase == PH_STATS ? "statistics" : "names";
    count_request(w, rf->phase == PH_STATS ? "statistics" : "task_queues",
                  res->error ? 0 : res->status);
    if (rf->aborted || w->stopping || !w->leader) {
        rf->aborted = 1;
        refresh_end(w, 0);
        return;
    }

    enum outcome out = OUT_OK;
    char err[160] = "";
    char *next_url = NULL;
    struct cg_wt_record *items = NULL;
    size_t nitems = 0, skipped = 0;
    struct cg_wt_name *names = NULL;
    size_t nnames = 0;
    if (res->error != NULL) {
        out = OUT_TRANSIENT;
        snprintf(err, sizeof err, "%s", res->error);
    } else if (res->status == 429) {
        out = OUT_RATE;
        snprintf(err, sizeof err, "429 too many requests");
    } else if (res->status >= 500) {
        out = OUT_TRANSIENT;
        snprintf(err, sizeof err, "HTTP %ld", res->status);
    } else if (res->status != 200) {
        /* 401, 403, 404: configuration, not weather; retrying will not help. */
        out = OUT_FATAL;
        snprintf(err, sizeof err, "HTTP %ld: %.100s", res->status, res->body);
    } else if (rf->phase == PH_STATS) {
        if (cg_wt_parse_stats(res->body, res->body_len, CG_WT_MAX_QUEUES, &items, &nitems, &skipped,
                              &next_url, err, sizeof err) != 0)
            out = OUT_BAD;
    } else if (cg_wt_parse_names(res->body, res->body_len, CG_WT_MAX_QUEUES, &names, &nnames,
                                 &next_url, err, sizeof err) != 0) {
        out = OUT_BAD;
    }

    if (out == OUT_OK) {
        w->rl_streak = 0;
        rf->pages_ok++;
        if (rf->phase == PH_STATS) {
            if (skipped)
                cg_log_warn("twilio statistics items skipped: no valid task_queue_sid, or "
                            "past the queue limit",
                            "page=%zu skipped=%zu max=%d", rf->page, skipped, CG_WT_MAX_QUEUES);
            apply_stats(w, items, nitems, cg_wall_ms());
        } else {
            rf->names = cg_realloc(rf->names, (rf->nnames + nnames + 1) * sizeof *rf->names);
            memcpy(rf->names + rf->nnames, names, nnames * sizeof *names);
            rf->nnames += nnames;
            nnames = 0;
        }
        free(items);
        free(names);
        /* Slow down before Twilio has to say so. */
        long pace = 0;
        long lim = res->rate_limit_limit, rem = res->rate_limit_remaining;
        if (rem == 0)
            pace = PACE_EMPTY_MS;
        else if (rem > 0 && lim > 0 && rem * 5 <= lim)
            pace = PACE_LOW_MS;
        if (pace && next_url)
            cg_log_info("twilio rate limit nearly used; pacing the next page",
                        "remaining=%ld limit=%ld pause_ms=%ld", rem, lim, pace);
        next_page(w, next_url, pace);
        return;
    }
    free(items);
    for (size_t i = 0; i < nnames; i++)
        free(names[i].name);
    free(names);
    free(next_url);

    if (out == OUT_RATE || out == OUT_TRANSIENT) {
        if (w->rl_streak < 30)
            w->rl_streak++;
        if (res->retry_after_s >= 0)
            rf->retry_after_s = res->retry_after_s;
    }
    int attempts = out == OUT_FATAL ? 1
                   : out == OUT_BAD ? ATTEMPTS_BAD_CONTENT
                                    : ATTEMPTS_TRANSIENT;
    if (rf->attempt < attempts) {
        unsigned attempt = out == OUT_BAD || w->rl_streak <= 1 ? 0 : (unsigned)w->rl_streak - 1;
        long d = cg_backoff_ms(BACKOFF_BASE_MS, w->backoff_cap_ms, attempt,
                               out == OUT_RATE ? res->retry_after_s : -1);
        cg_log_warn("twilio page failed; retrying",
                    "list=%s page=%zu attempt=%d error=%s delay_ms=%ld", what, rf->page,
                    rf->attempt, err, d);
        rf->attempt++;
        rf->retries++;
        schedule_page(w, d);
        return;
    }
    cg_log_warn("twilio page failed; its queues keep their last values",
                "list=%s page=%zu attempts=%d error=%s", what, rf->page, rf->attempt, err);
    rf->pages_failed++;
    if (rf->phase == PH_STATS)
        rf->broken = 1;
    if (out == OUT_RATE)
        rf->rate_limited = 1;
    /* A bad page does not hide the ones after it: step over it with the URL
     * that page had last time, unless Twilio asks us to slow down. */
    if (rf->phase == PH_STATS && (out == OUT_TRANSIENT || out == OUT_BAD) &&
        rf->page + 1 < w->npage_urls && w->page_urls[rf->page + 1] != NULL) {
        cg_log_info("stepping over the failed page with last refresh's next url", "page=%zu",
                    rf->page + 1);
        free(rf->url);
        rf->url = cg_strdup(w->page_urls[rf->page + 1]);
        rf->page++;
        rf->attempt = 1;
        schedule_page(w, 0);
        return;
    }
    phase_done(w);
}

static void page_send(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (rf == NULL)
        return;
    if (rf->aborted || w->stopping || !w->leader) {
        rf->aborted = 1;
        refresh_end(w, 0);
        return;
    }
    if (rf->phase == PH_STATS) {
        if (rf->page >= rf->nurls) {
            size_t n = rf->page + 1;
            rf->urls = cg_realloc(rf->urls, n * sizeof *rf->urls);
            for (size_t i = rf->nurls; i < n; i++)
                rf->urls[i] = NULL;
            rf->nurls = n;
        }
        free(rf->urls[rf->page]);
        rf->urls[rf->page] = cg_strdup(rf->url);
    }
    static const char *const headers[] = {"Accept: application/json", NULL};
    struct cg_httpc_request rq = {
        .method = "GET",
        .url = rf->url,
        .basic_user = w->cfg->twilio_account_sid,
        .basic_pass = w->cfg->twilio_auth_token,
        .headers = headers,
        .timeout_ms = w->cfg->twilio_timeout_ms,
        .max_response_bytes = CG_WT_MAX_PAGE_BYTES,
    };
    struct wt_op *op = op_new(w, OP_HTTP);
    if (cg_httpc_send(w->httpc, &rq, on_page, op) != 0) {
        op_done(op);
        cg_log_error("wait-time page request refused by the http client", "");
        rf->pages_failed++;
        if (rf->phase == PH_STATS)
            rf->broken = 1;
        phase_done(w);
        return;
    }
    rf->busy = 1;
    if (rf->phase == PH_STATS)
        rf->stats_requests++;
    else
        rf->names_requests++;
}

static void refresh_start(struct cg_waittime *w)
{
    struct wt_refresh *rf = cg_calloc(1, sizeof *rf);
    rf->started_ms = cg_wall_ms();
    rf->started_mono = cg_mono_ms();
    rf->phase = PH_STATS;
    rf->url = cg_strdup(w->stats_url);
    rf->attempt = 1;
    rf->retry_after_s = -1;
    /* Start from what is served now: queues not read this time keep it. */
    const struct wt_snap *s = w->snap;
    size_t n = s ? s->n : 0;
    rf->cap = n > 64 ? n : 64;
    rf->recs = cg_calloc(rf->cap, sizeof *rf->recs);
    rf->seen = cg_calloc(rf->cap, 1);
    wt_idx_init(&rf->idx, CG_WT_MAX_QUEUES);
    for (size_t i = 0; i < n; i++) {
        rf->recs[i] = s->recs[i];
        rf->recs[i].name = s->recs[i].name ? cg_strdup(s->recs[i].name) : NULL;
        wt_idx_put(&rf->idx, rf->recs[i].sid, i);
    }
    rf->n = n;
    w->rf = rf;
    w->refreshes++;
    cg_log_debug("wait-time refresh starting", "queues_known=%zu", n);
    page_send(w);
}

static void maybe_refresh(struct cg_waittime *w)
{
    if (!w->leader || w->rf != NULL || w->stopping || !redis_ready(w))
        return;
    if (cg_wall_ms() < w->next_ms || cg_mono_ms() < w->hold_until)
        return;
    refresh_start(w);
}

static void on_seed_written(const redisReply *r, const char *err, void *arg)
{
    (void)r;
    struct wt_op *op = arg;
    if (op_done(op) != NULL && err != NULL)
        cg_log_warn("the seed's queue-times key was not written", "error=%s", err);
}

static void on_written(const redisReply *r, const char *err, void *arg)
{
    struct wt_op *op = arg;
    struct cg_waittime *w = op_done(op);
    if (w == NULL)
        return;
    struct wt_refresh *rf = w->rf;
    rf->busy = 0;
    if (err != NULL || r->type != REDIS_REPLY_INTEGER) {
        cg_log_warn("wait-time write to redis failed; serving the new figures from memory only",
                    "error=%s", err ? err : "unexpected reply");
        /* The figures are still better than what we serve; Redis gets them
         * with the next refresh. The version stays: followers keep theirs. */
        struct wt_snap *s = rf->result;
        rf->result = NULL;
        wt_snap_set_version(s, w->snap ? w->snap->version : 0, cg_wall_ms());
        s->next_ms = rf->started_ms + (uint64_t)w->poll_ms;
        install(w, s);
        refresh_end(w, 0);
        return;
    }
    if (r->integer < 0) {
        cg_log_warn("wait-time write refused: the lock is no longer ours", "workspace=%s", w->ws);
        set_leader(w, 0);
        rf->aborted = 1;
        refresh_end(w, 0);
        return;
    }
    /* The seed's mirror, right behind the fenced write on the same
     * connection, so no other leader can come in between. */
    if (rf->seed != NULL) {
        struct wt_op *sop = op_new(w, OP_WRITE_SEED);
        if (cg_redis_command(w->redis, on_seed_written, sop, "SET %s %b", SEED_KEY, rf->seed,
                             rf->seed_len) != 0)
            op_done(sop);
    }
    struct wt_snap *s = rf->result;
    rf->result = NULL;
    install(w, s);
    w->known_version = s->version = (uint64_t)r->integer;
    wt_snap_set_version(s, s->version, s->refreshed_ms);
    if (rf->names_read)
        w->names_version = s->version;
    refresh_end(w, 1);
}

/* Builds the new snapshot and writes it with one fenced script. */
static void refresh_write(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (rf->n == 0) {
        refresh_end(w, 0);
        return;
    }
    if (rf->pages_ok == 0) {
        /* Nothing read: the values stay, but readers must learn they are
         * stale. Once is enough; a storm of 429s then writes nothing. */
        int all_stale = 1;
        for (size_t i = 0; i < rf->n && all_stale; i++)
            all_stale = rf->recs[i].stale;
        if (all_stale) {
            refresh_end(w, 0);
            return;
        }
    }
    /* Friendly names from the list, when it was read. */
    if (rf->nnames > 0) {
        rf->names_read = 1;
        for (size_t i = 0; i < rf->nnames; i++) {
            long at = wt_idx_find(&rf->idx, rf->recs, rf->names[i].sid);
            if (at < 0)
                continue;
            free(rf->recs[at].name);
            rf->recs[at].name = rf->names[i].name;
            rf->names[i].name = NULL;
        }
    } else if (rf->names_complete) {
        rf->names_read = 1; /* an empty list, read in full */
    }
    /* Queues missed by this refresh keep their values, marked stale; after a
     * complete walk, a queue Twilio no longer lists is gone. */
    size_t k = 0;
    for (size_t i = 0; i < rf->n; i++) {
        if (!rf->seen[i] && !rf->broken) {
            free(rf->recs[i].name);
            continue;
        }
        struct cg_wt_record r = rf->recs[i];
        r.stale = !rf->seen[i];
        rf->recs[k] = r;
        rf->seen[k] = rf->seen[i];
        k++;
    }
    rf->n = k;
    free(rf->idx.slot);
    rf->idx.slot = NULL;

    /* The snapshot takes a copy: rf keeps its array for the log line. */
    struct cg_wt_record *copy = cg_calloc(rf->n, sizeof *copy);
    for (size_t i = 0; i < rf->n; i++) {
        copy[i] = rf->recs[i];
        copy[i].name = rf->recs[i].name ? cg_strdup(rf->recs[i].name) : NULL;
    }
    struct wt_snap *s = wt_snap_build(copy, rf->n);
    uint64_t now = cg_wall_ms();
    wt_snap_set_version(s, 0, now);
    s->next_ms = rf->started_ms + (uint64_t)w->poll_ms;
    rf->result = s;

    struct cg_buf seed;
    cg_buf_init(&seed, WT_REPLY_MAX);
    size_t stale = 0;
    for (size_t i = 0; i < s->n; i++)
        stale += s->recs[i].stale != 0;
    if (cg_wt_seed_json(s->recs, s->n, &seed) != 0) {
        cg_log_error("wait-time seed value too large", "queues=%zu", s->n);
        cg_buf_free(&seed);
        refresh_end(w, 0);
        return;
    }

    /* keys (5), token, names flag, then the three counted lists */
    size_t nargs = 5 + 2 + 1 + 2 * META_PAIRS + 1 + 2 * s->n + 1 + 2 * s->nnames;
    const char **args = cg_calloc(nargs, sizeof *args);
    size_t *lens = cg_calloc(nargs, sizeof *lens);
    char **owned = cg_calloc(s->n + 2 * META_PAIRS + 3, sizeof *owned);
    size_t nowned = 0, a = 0;
#define ARG(p, l)                                                                                  \
    do {                                                                                           \
        args[a] = (p);                                                                             \
        lens[a] = (l);                                                                             \
        a++;                                                                                       \
    } while (0)
#define ARGS(p) ARG((p), strlen(p))
#define ARGF(...)                                                                                  \
    do {                                                                                           \
        char tmp_[160];                                                                            \
        snprintf(tmp_, sizeof tmp_, __VA_ARGS__);                                                  \
        owned[nowned] = cg_strdup(tmp_);                                                           \
        ARGS(owned[nowned]);                                                                       \
        nowned++;                                                                                  \
    } while (0)
    ARGS(w->k_lock);
    ARGS(w->k_version);
    ARGS(w->k_meta);
    ARGS(w->k_queues);
    ARGS(w->k_names);
    ARGS(w->token);
    ARGS(rf->names_read ? "1" : "0");
    char iso[25];
    cg_iso8601_ms(now, iso);
    ARGF("%d", META_PAIRS);
    ARGS("refreshed_ms");
    ARGF("%llu", (unsigned long long)now);
    ARGS("refreshed_at");
    ARGF("%s", iso);
    ARGS("next_ms");
    ARGF("%llu", (unsigned long long)s->next_ms);
    ARGS("interval_s");
    ARGF("%ld", w->poll_ms / 1000);
    ARGS("leader");
    ARGF("%s", w->cfg->instance_id);
    ARGS("queues");
    ARGF("%zu", s->n);
    ARGS("stale_queues");
    ARGF("%zu", stale);
    ARGS("requests");
    ARGF("%d", rf->stats_requests + rf->names_requests);
    ARGS("pages_failed");
    ARGF("%d", rf->pages_failed);
    ARGF("%zu", s->n);
    struct cg_buf rec;
    cg_buf_init(&rec, 1 << 20);
    for (size_t i = 0; i < s->n; i++) {
        cg_buf_reset(&rec);
        cg_wt_record_encode(&s->recs[i], &rec);
        owned[nowned] = cg_buf_take(&rec);
        ARGS(s->recs[i].sid);
        ARGS(owned[nowned]);
        nowned++;
    }
    cg_buf_free(&rec);
    ARGF("%zu", s->nnames);
    for (size_t i = 0; i < s->nnames; i++) {
        ARGS(s->by_name[i]->name);
        ARGS(s->by_name[i]->sid);
    }
#undef ARGF
#undef ARGS
#undef ARG
    struct wt_op *op = op_new(w, OP_WRITE);
    int rc = cg_redis_eval(w->redis, w->s_write, 5, (int)a, args, lens, on_written, op);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(args);
    free(lens);
    free(rf->seed);
    rf->seed_len = seed.len;
    rf->seed = cg_buf_take(&seed);
    if (rc != 0) {
        op_done(op);
        cg_log_error("wait-time write refused by the redis client", "args=%zu", a);
        refresh_end(w, 0);
        return;
    }
    rf->phase = PH_WRITE;
    rf->busy = 1;
}

/* ---- the tick ---- */

static void on_tick(void *arg)
{
    struct cg_waittime *w = arg;
    if (w->stopping || !redis_ready(w))
        return;
    read_step(w);
    lock_step(w);
    /* The renewal's answer starts a due refresh; so does this, for a leader
     * whose renewal is still out. */
    maybe_refresh(w);
}

/* ================================================================== */
/* Life cycle                                                           */
/* ================================================================== */

static void declare_metrics(struct cg_metrics *m)
{
    if (m == NULL)
        return;
    cg_metrics_declare(m, "callgate_waittime_refreshes_total", CG_COUNTER,
                       "Wait-time refreshes by result (ok, partial, failed, aborted).", NULL, 0);
    cg_metrics_declare(m, "callgate_waittime_twilio_requests_total", CG_COUNTER,
                       "TaskRouter requests of the wait-time poller, by endpoint and status.", NULL,
                       0);
    cg_metrics_declare(m, "callgate_waittime_queues", CG_GAUGE, "TaskQueues served.", NULL, 0);
    cg_metrics_declare(m, "callgate_waittime_stale_queues", CG_GAUGE,
                       "TaskQueues whose last refresh could not read them.", NULL, 0);
    cg_metrics_declare(m, "callgate_waittime_leader", CG_GAUGE,
                       "1 while this instance holds the wait-time poller lock.", NULL, 0);
    cg_metrics_declare(m, "callgate_waittime_last_refresh_timestamp_seconds", CG_GAUGE,
                       "Unix time of the refresh whose figures are served.", NULL, 0);
}

struct cg_waittime *cg_waittime_new(struct event_base *base, const struct cg_config *cfg,
                                    struct cg_redis *redis, struct cg_httpc *httpc,
                                    struct cg_httpd *httpd, struct cg_metrics *metrics, char *err,
                                    size_t errlen)
{
    struct cg_waittime *w = cg_calloc(1, sizeof *w);
    w->base = base;
    w->cfg = cfg;
    w->redis = redis;
    w->httpc = httpc;
    w->metrics = metrics;
    w->redis_up = cg_redis_state(redis) == CG_REDIS_READY;
    w->s_renew = w->s_release = w->s_write = w->s_read = -1;
    declare_metrics(metrics);

    if (wt_routes_register(w, httpd, err, errlen) != 0) {
        cg_waittime_free(w);
        return NULL;
    }

    const char *ws = cfg->twilio_workspace_sid ? cfg->twilio_workspace_sid : "";
    if (ws[0] == '\0') {
        w->off_reason = "the wait-time poller is off: TWILIO_WORKSPACE_SID is not set";
        cg_log_info("wait-time service off: TWILIO_WORKSPACE_SID is not set", "");
        return w;
    }
    snprintf(w->ws, sizeof w->ws, "%s", ws);
    w->serving = 1;
    w->off_reason = "";
    snprintf(w->k_lock, sizeof w->k_lock, "cg:{wt:%s}:lock", ws);
    snprintf(w->k_version, sizeof w->k_version, "cg:{wt:%s}:version", ws);
    snprintf(w->k_meta, sizeof w->k_meta, "cg:{wt:%s}:meta", ws);
    snprintf(w->k_queues, sizeof w->k_queues, "cg:{wt:%s}:queues", ws);
    snprintf(w->k_names, sizeof w->k_names, "cg:{wt:%s}:names", ws);
    snprintf(w->token, sizeof w->token, "%s/%016llx", cfg->instance_id,
             (unsigned long long)cg_random_u64());
    const char *tr = cfg->taskrouter_base_url;
    int page = cfg->wait_time_page_size;
    snprintf(w->stats_url, sizeof w->stats_url,
             "%s/v1/Workspaces/%s/TaskQueues/Statistics?PageSize=%d", tr, ws, page);
    snprintf(w->names_url, sizeof w->names_url, "%s/v1/Workspaces/%s/TaskQueues?PageSize=%d", tr,
             ws, page);
    w->poll_ms = (long)cfg->wait_time_poll_seconds * 1000;
    if (cfg->wait_time_lock_seconds > 0) {
        w->lock_ms = (long)cfg->wait_time_lock_seconds * 1000;
        if (w->lock_ms < LOCK_MIN_MS)
            w->lock_ms = LOCK_MIN_MS;
    } else {
        w->lock_ms = 3 * w->poll_ms;
        if (w->lock_ms < LOCK_MIN_AUTO_MS)
            w->lock_ms = LOCK_MIN_AUTO_MS;
    }
    w->backoff_cap_ms = 4 * w->poll_ms;
    if (w->backoff_cap_ms < 5000)
        w->backoff_cap_ms = 5000;
    if (w->backoff_cap_ms > BACKOFF_MAX_MS)
        w->backoff_cap_ms = BACKOFF_MAX_MS;

    w->s_read = cg_redis_script(redis, "wt_read", cg_wt_lua_read);
    w->s_renew = cg_redis_script(redis, "wt_renew", cg_wt_lua_renew);
    w->s_release = cg_redis_script(redis, "wt_release", cg_wt_lua_release);
    w->s_write = cg_redis_script(redis, "wt_write", cg_wt_lua_write);
    if (w->s_read < 0 || w->s_renew < 0 || w->s_release < 0 || w->s_write < 0) {
        cg_err_set(err, errlen, "cannot register the wait-time scripts");
        cg_waittime_free(w);
        return NULL;
    }
    w->page_timer = evtimer_new(base, on_page_timer, w);
    w->tick = cg_periodic_new(base, "waittime", TICK_MS, 10, on_tick, w);
    if (w->page_timer == NULL || w->tick == NULL) {
        cg_err_set(err, errlen, "cannot create the wait-time timers");
        cg_waittime_free(w);
        return NULL;
    }
    cg_periodic_kick(w->tick);

    const char *sid = cfg->twilio_account_sid, *tok = cfg->twilio_auth_token;
    if (sid == NULL || sid[0] == '\0' || tok == NULL || tok[0] == '\0') {
        /* Another instance may poll; this one serves what it writes. */
        cg_log_warn("wait-time poller off here: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are "
                    "needed; serving what other instances poll",
                    "workspace=%s", ws);
        return w;
    }
    w->polling = 1;
    cg_log_info("wait-time poller on", "workspace=%s interval_s=%d page_size=%d lock_ms=%ld", ws,
                cfg->wait_time_poll_seconds, page, w->lock_ms);
    return w;
}

void cg_waittime_redis_state(struct cg_waittime *w, enum cg_redis_state state)
{
    if (w == NULL)
        return;
    w->redis_up = state == CG_REDIS_READY;
    if (state == CG_REDIS_READY) {
        if (w->tick && !w->stopping)
            cg_periodic_kick(w->tick);
    } else if (w->leader) {
        /* The lock cannot be renewed from here: another instance may hold it
         * once it expires. Stop polling now; try to reclaim it on return. */
        cg_log_warn("redis unavailable: wait-time poller pauses", "workspace=%s", w->ws);
        set_leader(w, 0);
        w->was_leader = 1;
        refresh_abort(w);
    }
}

void cg_waittime_stop(struct cg_waittime *w)
{
    if (w == NULL || w->stopping)
        return;
    w->stopping = 1;
    refresh_abort(w);
    maybe_release(w);
}

size_t cg_waittime_inflight(const struct cg_waittime *w)
{
    if (w == NULL)
        return 0;
    return (w->rf != NULL) + (size_t)w->release_pending;
}

void cg_waittime_free(struct cg_waittime *w)
{
    if (w == NULL)
        return;
    for (struct wt_op *op = w->ops; op != NULL; op = op->next)
        op->w = NULL;
    cg_periodic_free(w->tick);
    if (w->page_timer)
        event_free(w->page_timer);
    refresh_free(w->rf);
    wt_snap_free(w->snap);
    free_urls(w->page_urls, w->npage_urls);
    free(w);
}
