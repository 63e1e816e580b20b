/*
 * refresh.c - the end of a refresh, whatever ends it (written, failed,
 * aborted): the summary log and metric, the next refresh's place in the
 * shared schedule and the backoff, freeing it; and giving up leadership,
 * which ends one: the leader flag, and the lock's hand-over on shutdown
 * (compare-and-delete) once no request of ours is out.
 */
#include "base/fmacros.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/backoff.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
#include "waittime/internal.h"
#include "waittime/worker.h"

/* ---- leadership ---- */

void wt_set_leader(struct cg_waittime *w, int leader)
{
    if (leader && !w->leader)
        cg_log_info("wait-time poller: this instance holds the lock", "workspace=%s lock_ms=%ld",
                    w->ws, w->lock_ms);
    w->leader = leader;
    wt_set_gauge(w, "callgate_waittime_leader", leader);
}

static void on_released(const redisReply *r, const char *err, void *arg)
{
    struct wt_op *op = arg;
    struct cg_waittime *w = wt_op_done(op);
    if (w == NULL)
        return;
    w->release_pending = 0;
    if (err == NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        cg_log_info("wait-time poller released its lock", "workspace=%s", w->ws);
    else
        cg_log_warn("wait-time lock not released; it expires by itself", "error=%s",
                    err ? err : "not held");
}

void wt_maybe_release(struct cg_waittime *w)
{
    if (!w->stopping || w->rf != NULL || w->release_pending || !(w->leader || w->was_leader))
        return;
    wt_set_leader(w, 0);
    w->was_leader = 0;
    if (!wt_redis_ready(w))
        return;
    struct wt_op *op = wt_op_new(w, OP_RELEASE);
    const char *args[] = {w->k_lock, w->token};
    if (cg_redis_eval(w->redis, w->s_release, 1, 2, args, NULL, on_released, op) != 0) {
        wt_op_done(op);
        return;
    }
    w->release_pending = 1;
}

/* ---- the end of a refresh ---- */

static void free_records(struct cg_wt_record *recs, size_t n)
{
    for (size_t i = 0; recs != NULL && i < n; i++)
        free(recs[i].name);
    free(recs);
}

void wt_free_urls(char **urls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
}

static void free_names(struct cg_wt_name *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i].name);
    free(names);
}

void wt_refresh_free(struct wt_refresh *rf)
{
    if (rf == NULL)
        return;
    free(rf->url);
    wt_job_free(rf->encoded); /* only at shutdown: wt_refresh_end gave it back */
    free_records(rf->recs, rf->n);
    free(rf->seen);
    wt_idx_free(&rf->idx);
    wt_free_urls(rf->urls, rf->nurls);
    free_names(rf->names, rf->nnames);
    wt_snap_free(rf->result);
    free(rf);
}

void wt_note_loop_time(struct wt_refresh *rf, uint64_t since_us)
{
    uint64_t d = cg_thread_cpu_us() - since_us;
    if (d > rf->loop_max_us)
        rf->loop_max_us = d;
}

static const char *result_name(const struct wt_refresh *rf, int written)
{
    if (rf->aborted)
        return "aborted";
    if (!written || rf->pages_ok == 0)
        return "failed";
    return rf->pages_failed ? "partial" : "ok";
}

/* The shared schedule after a refresh that was not aborted; the backoff
 * when Twilio pushed back or nothing worked (it grows while this goes on). */
static void schedule_next(struct cg_waittime *w, const struct wt_refresh *rf, uint64_t now)
{
    uint64_t next = rf->started_ms + (uint64_t)w->poll_ms;
    if (next < now + 1000)
        next = now + 1000;
    w->next_ms = next;
    if (rf->rate_limited || rf->pages_ok == 0) {
        long d =
            cg_backoff_ms(WT_BACKOFF_BASE_MS, w->backoff_cap_ms,
                          w->rl_streak > 1 ? (unsigned)w->rl_streak - 1 : 0, rf->retry_after_s);
        w->hold_until = cg_mono_ms() + (uint64_t)d;
        cg_log_warn("wait-time refresh backing off", "delay_ms=%ld streak=%d", d, w->rl_streak);
    }
}

/* The end of a refresh, whatever happened: logs, schedules the next one. */
void wt_refresh_end(struct cg_waittime *w, int written)
{
    struct wt_refresh *rf = w->rf;
    const char *result = result_name(rf, written);
    size_t stale = 0;
    for (size_t i = 0; i < rf->n; i++)
        stale += rf->seen[i] == 0;
    if (!rf->aborted)
        schedule_next(w, rf, cg_wall_ms());
    int level = strcmp(result, "ok") == 0 ? CG_LOG_INFO : CG_LOG_WARN;
    cg_log((enum cg_log_level)level, "wait-time refresh done",
           "result=%s queues=%zu stale=%zu stats_requests=%d names_requests=%d retries=%d "
           "pages_failed=%d ms=%llu worker_ms=%f loop_cpu_max_ms=%f",
           result, rf->n, stale, rf->stats_requests, rf->names_requests, rf->retries,
           rf->pages_failed, (unsigned long long)(cg_mono_ms() - rf->started_mono),
           (double)rf->worker_us / 1000.0, (double)rf->loop_max_us / 1000.0);
    if (w->metrics) {
        struct cg_buf b;
        cg_buf_init(&b, 128);
        cg_metrics_label(&b, "result", result);
        cg_metrics_inc(w->metrics, "callgate_waittime_refreshes_total", cg_buf_str(&b), 1);
        cg_buf_free(&b);
    }
    /* The worker frees what it encoded. */
    wt_worker_release(w->worker, rf->encoded);
    rf->encoded = NULL;
    wt_refresh_free(rf);
    w->rf = NULL;
    wt_maybe_release(w);
}

void wt_refresh_abort(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (rf == NULL)
        return;
    rf->aborted = 1;
    /* A refresh waiting on its timer ends now. */
    if (!rf->busy) {
        evtimer_del(w->page_timer);
        wt_refresh_end(w, 0);
    }
}
