/*
 * poller.c - the elected poller: applying for the leader lock (SET NX PX)
 * and renewing it (compare-and-set), and the refresh it leads, a small
 * state machine driven by HTTP callbacks and one timer: the statistics
 * pages one after the other (never two requests at once), then the
 * TaskQueues list when names are due, then the write (write.c); its end
 * and the lock's release are in refresh.c. Only one refresh exists at a
 * time (w->rf). A page's body is parsed by the worker thread (worker.h),
 * off the loop; the refresh stays busy until the parsed page comes back.
 */
#include "base/fmacros.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/url.h"
#include "net/httpc.h"
#include "waittime/internal.h"
#include "waittime/worker.h"

#define ATTEMPTS_TRANSIENT   3    /* 429, 5xx, transport errors */
#define ATTEMPTS_BAD_CONTENT 2    /* 200 that is not the expected JSON */
#define PACE_EMPTY_MS        2000 /* X-Rate-Limit-Remaining: 0 */
#define PACE_LOW_MS          500  /* X-Rate-Limit-Remaining at or below a fifth */
#define NAMES_EVERY          10   /* refreshes between TaskQueues list reads */

/* ================================================================== */
/* The lock                                                             */
/* ================================================================== */

static void on_lock(const redisReply *r, const char *err, void *arg)
{
    struct wt_op *op = arg;
    struct cg_waittime *w = wt_op_done(op);
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
        wt_set_leader(w, 1);
        if (w->stopping)
            wt_maybe_release(w);
        else
            wt_maybe_refresh(w);
        return;
    }
    if (w->leader) {
        cg_log_warn("wait-time poller lost its lock; another instance polls now", "workspace=%s",
                    w->ws);
        wt_set_leader(w, 0);
        wt_refresh_abort(w);
    }
    w->was_leader = 0;
}

void wt_lock_step(struct cg_waittime *w)
{
    if (w->lock_pending || !w->polling || w->stopping || !wt_redis_ready(w))
        return;
    struct wt_op *op = wt_op_new(w, OP_LOCK);
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
        wt_op_done(op);
        w->lock_pending = 0;
        cg_log_error("wait-time lock command refused", "");
    }
}

/* ================================================================== */
/* The refresh: start and pages                                         */
/* ================================================================== */

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

static void schedule_page(struct cg_waittime *w, long delay_ms)
{
    if (delay_ms < 0)
        delay_ms = 0;
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
    evtimer_add(w->page_timer, &tv);
}

/* The next page is fetched from url (taken), with a fresh attempt count. */
static void go_to_page(struct cg_waittime *w, char *url, size_t page, long delay_ms)
{
    struct wt_refresh *rf = w->rf;
    free(rf->url);
    rf->url = url;
    rf->page = page;
    rf->attempt = 1;
    schedule_page(w, delay_ms);
}

static void page_send(struct cg_waittime *w);

void wt_on_page_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    page_send(arg);
}

/* The working set's slot for sid, appended when new; -1 when the queue
 * limit is reached. */
static long working_slot(struct wt_refresh *rf, const char *sid)
{
    long at = wt_idx_find(&rf->idx, rf->recs, sid);
    if (at >= 0)
        return at;
    if (rf->n >= CG_WT_MAX_QUEUES)
        return -1;
    if (rf->n == rf->cap) {
        rf->cap = rf->cap ? rf->cap * 2 : 64;
        rf->recs = cg_realloc(rf->recs, rf->cap * sizeof *rf->recs);
        rf->seen = cg_realloc(rf->seen, rf->cap);
    }
    at = (long)rf->n++;
    memset(&rf->recs[at], 0, sizeof rf->recs[at]);
    wt_idx_put(&rf->idx, sid, (size_t)at);
    return at;
}

/* Folds one statistics page into the working set; a queue keeps its name. */
static void apply_stats(struct wt_refresh *rf, const struct cg_wt_record *items, size_t n,
                        uint64_t fetched_ms)
{
    for (size_t i = 0; i < n; i++) {
        long at = working_slot(rf, items[i].sid);
        if (at < 0) {
            rf->dropped++;
            continue;
        }
        struct cg_wt_record *r = &rf->recs[at];
        char *name = r->name;
        *r = items[i];
        r->name = name;
        r->fetched_ms = fetched_ms;
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

/* Remembers where each statistics page began, so that a page that fails
 * next time can be stepped over. Pages not reached keep their old URL. */
static void keep_page_urls(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
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
    wt_free_urls(w->page_urls, w->npage_urls);
    w->page_urls = urls;
    w->npage_urls = keep;
}

/* The current list (statistics or names) is done, read or not. */
static void phase_done(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (rf->phase == PH_STATS) {
        keep_page_urls(w);
        if (rf->dropped)
            cg_log_warn("more task queues than callgate keeps; the rest are ignored",
                        "max=%d ignored=%zu", CG_WT_MAX_QUEUES, rf->dropped);
        if (!rf->rate_limited && rf->pages_ok > 0 && names_due(w)) {
            rf->phase = PH_NAMES;
            go_to_page(w, cg_strdup(w->names_url), 0, 0);
            return;
        }
    }
    wt_refresh_write(w);
}

/* Moves to the next page URL of the current list (or ends the list). A URL
 * on another host, or paging that does not end, ends the list too. */
static void next_page(struct cg_waittime *w, char *next_url, long delay_ms)
{
    struct wt_refresh *rf = w->rf;
    size_t max_pages = CG_WT_MAX_QUEUES / (size_t)w->cfg->wait_time_page_size + 2;
    int refused = 0;
    if (next_url != NULL && !cg_url_same_origin(w->cfg->taskrouter_base_url, next_url)) {
        /* Following it would send our credentials to another host. */
        cg_log_error("twilio's next_page_url points to another host; not followed", "");
        refused = 1;
    } else if (next_url != NULL && (rf->page + 1 >= max_pages || strcmp(next_url, rf->url) == 0)) {
        cg_log_error("twilio's paging does not end; stopping", "pages=%zu", rf->page + 1);
        refused = 1;
    }
    if (refused) {
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
    go_to_page(w, next_url, rf->page + 1, delay_ms);
}

/* ---- one page's answer ---- */

enum outcome { OUT_OK, OUT_RATE, OUT_TRANSIENT, OUT_BAD, OUT_FATAL };

/* What the status of an answer says, before its body is read. */
static enum outcome classify(const struct cg_httpc_result *res, char *err, size_t errlen)
{
    if (res->error != NULL) {
        snprintf(err, errlen, "%s", res->error);
        return OUT_TRANSIENT;
    }
    if (res->status == 429) {
        snprintf(err, errlen, "429 too many requests");
        return OUT_RATE;
    }
    if (res->status >= 500) {
        snprintf(err, errlen, "HTTP %ld", res->status);
        return OUT_TRANSIENT;
    }
    if (res->status != 200) {
        /* 401, 403, 404: configuration, not weather; retrying will not help. */
        snprintf(err, errlen, "HTTP %ld: %.100s", res->status, res->body);
        return OUT_FATAL;
    }
    return OUT_OK;
}

/* Folds a parsed 200 page of the current list into the refresh. OUT_BAD
 * (nothing taken) when it was not the expected JSON. */
static enum outcome take_page(struct wt_refresh *rf, struct wt_job *job, char **next_url, char *err,
                              size_t errlen)
{
    if (job->rc != 0) {
        snprintf(err, errlen, "%s", job->err);
        return OUT_BAD;
    }
    *next_url = job->next_url;
    job->next_url = NULL;
    if (rf->phase == PH_STATS) {
        if (job->skipped)
            cg_log_warn("twilio statistics items skipped: no valid task_queue_sid, or "
                        "past the queue limit",
                        "page=%zu skipped=%zu max=%d", rf->page, job->skipped, CG_WT_MAX_QUEUES);
        /* The records move into the working set; they hold no name. */
        apply_stats(rf, job->items, job->n, cg_wall_ms());
        return OUT_OK;
    }
    rf->names = cg_realloc(rf->names, (rf->nnames + job->nnames + 1) * sizeof *rf->names);
    memcpy(rf->names + rf->nnames, job->names, job->nnames * sizeof *job->names);
    rf->nnames += job->nnames;
    job->nnames = 0; /* the names now belong to the refresh */
    return OUT_OK;
}

/* The pause before the next page: slow down before Twilio has to say so. */
static long pace_for(const struct cg_httpc_result *res, int has_next)
{
    long pace = 0;
    long lim = res->rate_limit_limit, rem = res->rate_limit_remaining;
    if (rem == 0)
        pace = PACE_EMPTY_MS;
    else if (rem > 0 && lim > 0 && rem * 5 <= lim)
        pace = PACE_LOW_MS;
    if (pace && has_next)
        cg_log_info("twilio rate limit nearly used; pacing the next page",
                    "remaining=%ld limit=%ld pause_ms=%ld", rem, lim, pace);
    return pace;
}

/* Retries the page after a delay when attempts are left; 1 when it will. */
static int retry_page(struct cg_waittime *w, const struct cg_httpc_result *res, enum outcome out,
                      const char *err)
{
    struct wt_refresh *rf = w->rf;
    int attempts = out == OUT_FATAL ? 1
                   : out == OUT_BAD ? ATTEMPTS_BAD_CONTENT
                                    : ATTEMPTS_TRANSIENT;
    if (rf->attempt >= attempts)
        return 0;
    unsigned attempt = out == OUT_BAD || w->rl_streak <= 1 ? 0 : (unsigned)w->rl_streak - 1;
    long d = cg_backoff_ms(WT_BACKOFF_BASE_MS, w->backoff_cap_ms, attempt,
                           out == OUT_RATE ? res->retry_after_s : -1);
    cg_log_warn("twilio page failed; retrying", "list=%s page=%zu attempt=%d error=%s delay_ms=%ld",
                rf->phase == PH_STATS ? "statistics" : "names", rf->page, rf->attempt, err, d);
    rf->attempt++;
    rf->retries++;
    schedule_page(w, d);
    return 1;
}

/* A bad page does not hide the ones after it: steps over it with the URL
 * that page had last time, unless Twilio asks us to slow down. 1 when it
 * does. */
static int step_over(struct cg_waittime *w, enum outcome out)
{
    struct wt_refresh *rf = w->rf;
    if (rf->phase != PH_STATS || !(out == OUT_TRANSIENT || out == OUT_BAD) ||
        rf->page + 1 >= w->npage_urls || w->page_urls[rf->page + 1] == NULL)
        return 0;
    cg_log_info("stepping over the failed page with last refresh's next url", "page=%zu",
                rf->page + 1);
    go_to_page(w, cg_strdup(w->page_urls[rf->page + 1]), rf->page + 1, 0);
    return 1;
}

/* A page that could not be had: retried, stepped over, or the end of its
 * list; its queues keep their last values, marked stale. */
static void page_failed(struct cg_waittime *w, const struct cg_httpc_result *res, enum outcome out,
                        const char *err)
{
    struct wt_refresh *rf = w->rf;
    if (out == OUT_RATE || out == OUT_TRANSIENT) {
        if (w->rl_streak < 30)
            w->rl_streak++;
        if (res->retry_after_s >= 0)
            rf->retry_after_s = res->retry_after_s;
    }
    if (retry_page(w, res, out, err))
        return;
    cg_log_warn("twilio page failed; its queues keep their last values",
                "list=%s page=%zu attempts=%d error=%s",
                rf->phase == PH_STATS ? "statistics" : "names", rf->page, rf->attempt, err);
    rf->pages_failed++;
    if (rf->phase == PH_STATS)
        rf->broken = 1;
    if (out == OUT_RATE)
        rf->rate_limited = 1;
    if (!step_over(w, out))
        phase_done(w);
}

/* The rest of a 200 page, once parsed (by the worker, or here when it
 * could not take the job). */
static void page_parsed(struct cg_waittime *w, struct wt_job *job)
{
    uint64_t t0 = cg_thread_cpu_us();
    struct wt_refresh *rf = w->rf;
    rf->busy = 0;
    rf->worker_us += job->parse_us;
    /* What page_failed() and pace_for() read of the answer. */
    struct cg_httpc_result res = {
        .status = 200,
        .body = "",
        .retry_after_s = job->retry_after_s,
        .rate_limit_limit = job->rate_limit_limit,
        .rate_limit_remaining = job->rate_limit_remaining,
    };
    if (rf->aborted || w->stopping || !w->leader) {
        wt_worker_release(w->worker, job);
        rf->aborted = 1;
        wt_refresh_end(w, 0);
        return;
    }
    char err[160] = "";
    char *next_url = NULL;
    enum outcome out = take_page(rf, job, &next_url, err, sizeof err);
    wt_worker_release(w->worker, job);
    if (out != OUT_OK) {
        page_failed(w, &res, out, err);
        return;
    }
    w->rl_streak = 0;
    rf->pages_ok++;
    wt_note_loop_time(rf, t0);
    /* The last page goes on to the write, which notes its own time. */
    next_page(w, next_url, pace_for(&res, next_url != NULL));
}

void wt_on_parsed(struct wt_job *job, void *arg)
{
    struct cg_waittime *w = arg;
    if (w->rf == NULL) {
        /* Cannot happen: a refresh with a job out is busy and stays. */
        wt_worker_release(w->worker, job);
        return;
    }
    if (job->kind == WT_JOB_ENCODE)
        wt_refresh_encoded(w, job);
    else
        page_parsed(w, job);
}

static void on_page(const struct cg_httpc_result *res, void *arg)
{
    struct cg_waittime *w = wt_op_done(arg);
    if (w == NULL)
        return;
    struct wt_refresh *rf = w->rf;
    rf->busy = 0;
    count_request(w, rf->phase == PH_STATS ? "statistics" : "task_queues",
                  res->error ? 0 : res->status);
    if (rf->aborted || w->stopping || !w->leader) {
        rf->aborted = 1;
        wt_refresh_end(w, 0);
        return;
    }
    char err[160] = "";
    enum outcome out = classify(res, err, sizeof err);
    if (out != OUT_OK) {
        page_failed(w, res, out, err);
        return;
    }
    /* The page is parsed off the loop (worker.h); the refresh stays busy
     * until it comes back. */
    struct wt_job *job = wt_job_new(rf->phase == PH_STATS ? WT_JOB_STATS : WT_JOB_NAMES, res->body,
                                    res->body_len, CG_WT_MAX_QUEUES);
    job->retry_after_s = res->retry_after_s;
    job->rate_limit_limit = res->rate_limit_limit;
    job->rate_limit_remaining = res->rate_limit_remaining;
    rf->busy = 1;
    if (wt_worker_submit(w->worker, job) != 0) {
        wt_job_run(job);
        page_parsed(w, job);
    }
}

/* Records the URL of the statistics page about to be fetched. */
static void note_page_url(struct wt_refresh *rf)
{
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

static void page_send(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (rf == NULL)
        return;
    if (rf->aborted || w->stopping || !w->leader) {
        rf->aborted = 1;
        wt_refresh_end(w, 0);
        return;
    }
    if (rf->phase == PH_STATS)
        note_page_url(rf);
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
    struct wt_op *op = wt_op_new(w, OP_HTTP);
    if (cg_httpc_send(w->httpc, &rq, on_page, op) != 0) {
        wt_op_done(op);
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

void wt_maybe_refresh(struct cg_waittime *w)
{
    if (!w->leader || w->rf != NULL || w->stopping || !wt_redis_ready(w))
        return;
    if (cg_wall_ms() < w->next_ms || cg_mono_ms() < w->hold_until)
        return;
    refresh_start(w);
}
