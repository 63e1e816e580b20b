/*
 * poller.c - the elected poller: the leader lock (SET NX PX, renewed by a
 * compare-and-set script, released by a compare-and-delete one) and the
 * refresh, a small state machine driven by HTTP callbacks and one timer:
 * the statistics pages one after the other (never two requests at once),
 * then the TaskQueues list when names are due, then one fenced write
 * script. Only one refresh exists at a time (w->rf).
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

/* The seed's key, without a hash tag: its readers know it by this name. */
#define SEED_KEY "queue-times"

#define BACKOFF_BASE_MS      1000
#define ATTEMPTS_TRANSIENT   3    /* 429, 5xx, transport errors */
#define ATTEMPTS_BAD_CONTENT 2    /* 200 that is not the expected JSON */
#define PACE_EMPTY_MS        2000 /* X-Rate-Limit-Remaining: 0 */
#define PACE_LOW_MS          500  /* X-Rate-Limit-Remaining at or below a fifth */
#define NAMES_EVERY          10   /* refreshes between TaskQueues list reads */

/* ================================================================== */
/* The lock                                                             */
/* ================================================================== */

void wt_set_leader(struct cg_waittime *w, int leader)
{
    if (leader && !w->leader)
        cg_log_info("wait-time poller: this instance holds the lock", "workspace=%s lock_ms=%ld",
                    w->ws, w->lock_ms);
    w->leader = leader;
    wt_set_gauge(w, "callgate_waittime_leader", leader);
}

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

/* ================================================================== */
/* The refresh: start, end, pages                                       */
/* ================================================================== */

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
    free(rf->seed);
    free_records(rf->recs, rf->n);
    free(rf->seen);
    wt_idx_free(&rf->idx);
    wt_free_urls(rf->urls, rf->nurls);
    free_names(rf->names, rf->nnames);
    wt_snap_free(rf->result);
    free(rf);
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
            cg_backoff_ms(BACKOFF_BASE_MS, w->backoff_cap_ms,
                          w->rl_streak > 1 ? (unsigned)w->rl_streak - 1 : 0, rf->retry_after_s);
        w->hold_until = cg_mono_ms() + (uint64_t)d;
        cg_log_warn("wait-time refresh backing off", "delay_ms=%ld streak=%d", d, w->rl_streak);
    }
}

/* The end of a refresh, whatever happened: logs, schedules the next one. */
static void refresh_end(struct cg_waittime *w, int written)
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
        refresh_end(w, 0);
    }
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

static void refresh_write(struct cg_waittime *w);

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
    refresh_write(w);
}

/* Moves to the next page URL of the current list (or ends the list). A URL
 * on another host, or paging that does not end, ends the list too. */
static void next_page(struct cg_waittime *w, char *next_url, long delay_ms)
{
    struct wt_refresh *rf = w->rf;
    size_t max_pages = CG_WT_MAX_QUEUES / (size_t)w->cfg->wait_time_page_size + 2;
    const char *refused = NULL;
    if (next_url != NULL && !cg_url_same_origin(w->cfg->taskrouter_base_url, next_url)) {
        /* Following it would send our credentials to another host. */
        cg_log_error("twilio's next_page_url points to another host; not followed", "");
        refused = "origin";
    } else if (next_url != NULL && (rf->page + 1 >= max_pages || strcmp(next_url, rf->url) == 0)) {
        cg_log_error("twilio's paging does not end; stopping", "pages=%zu", rf->page + 1);
        refused = "loop";
    }
    if (refused != NULL) {
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

/* Parses a 200 page of the current list and folds it into the refresh.
 * OUT_BAD (nothing taken) when it is not the expected JSON. */
static enum outcome read_page(struct wt_refresh *rf, const struct cg_httpc_result *res,
                              char **next_url, char *err, size_t errlen)
{
    if (rf->phase == PH_STATS) {
        struct cg_wt_record *items = NULL;
        size_t n = 0, skipped = 0;
        if (cg_wt_parse_stats(res->body, res->body_len, CG_WT_MAX_QUEUES, &items, &n, &skipped,
                              next_url, err, errlen) != 0)
            return OUT_BAD;
        if (skipped)
            cg_log_warn("twilio statistics items skipped: no valid task_queue_sid, or "
                        "past the queue limit",
                        "page=%zu skipped=%zu max=%d", rf->page, skipped, CG_WT_MAX_QUEUES);
        apply_stats(rf, items, n, cg_wall_ms());
        free(items); /* the records moved into the working set hold no name */
        return OUT_OK;
    }
    struct cg_wt_name *names = NULL;
    size_t n = 0;
    if (cg_wt_parse_names(res->body, res->body_len, CG_WT_MAX_QUEUES, &names, &n, next_url, err,
                          errlen) != 0)
        return OUT_BAD;
    rf->names = cg_realloc(rf->names, (rf->nnames + n + 1) * sizeof *rf->names);
    memcpy(rf->names + rf->nnames, names, n * sizeof *names);
    rf->nnames += n;
    free(names);
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
    long d = cg_backoff_ms(BACKOFF_BASE_MS, w->backoff_cap_ms, attempt,
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
        refresh_end(w, 0);
        return;
    }
    char err[160] = "";
    char *next_url = NULL;
    enum outcome out = classify(res, err, sizeof err);
    if (out == OUT_OK)
        out = read_page(rf, res, &next_url, err, sizeof err);
    if (out != OUT_OK) {
        page_failed(w, res, out, err);
        return;
    }
    w->rl_streak = 0;
    rf->pages_ok++;
    next_page(w, next_url, pace_for(res, next_url != NULL));
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
        refresh_end(w, 0);
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

/* ================================================================== */
/* The refresh: the write                                               */
/* ================================================================== */

static void on_seed_written(const redisReply *r, const char *err, void *arg)
{
    (void)r;
    struct wt_op *op = arg;
    if (wt_op_done(op) != NULL && err != NULL)
        cg_log_warn("the seed's queue-times key was not written", "error=%s", err);
}

static void on_written(const redisReply *r, const char *err, void *arg)
{
    struct cg_waittime *w = wt_op_done(arg);
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
        wt_install(w, s);
        refresh_end(w, 0);
        return;
    }
    if (r->integer < 0) {
        cg_log_warn("wait-time write refused: the lock is no longer ours", "workspace=%s", w->ws);
        wt_set_leader(w, 0);
        rf->aborted = 1;
        refresh_end(w, 0);
        return;
    }
    /* The seed's mirror, right behind the fenced write on the same
     * connection, so no other leader can come in between. */
    if (rf->seed != NULL) {
        struct wt_op *sop = wt_op_new(w, OP_WRITE_SEED);
        if (cg_redis_command(w->redis, on_seed_written, sop, "SET %s %b", SEED_KEY, rf->seed,
                             rf->seed_len) != 0)
            wt_op_done(sop);
    }
    struct wt_snap *s = rf->result;
    rf->result = NULL;
    wt_install(w, s);
    w->known_version = s->version = (uint64_t)r->integer;
    wt_snap_set_version(s, s->version, s->refreshed_ms);
    if (rf->names_read)
        w->names_version = s->version;
    refresh_end(w, 1);
}

/* 1 when there is nothing to write: no queue at all, or nothing read and
 * every value already marked stale (readers must learn once that values
 * are stale; a storm of 429s then writes nothing). */
static int nothing_to_write(const struct wt_refresh *rf)
{
    if (rf->n == 0)
        return 1;
    if (rf->pages_ok > 0)
        return 0;
    for (size_t i = 0; i < rf->n; i++)
        if (!rf->recs[i].stale)
            return 0;
    return 1;
}

/* Friendly names from the list, when it was read. */
static void apply_names(struct wt_refresh *rf)
{
    if (rf->nnames == 0) {
        rf->names_read = rf->names_complete; /* an empty list, read in full */
        return;
    }
    rf->names_read = 1;
    for (size_t i = 0; i < rf->nnames; i++) {
        long at = wt_idx_find(&rf->idx, rf->recs, rf->names[i].sid);
        if (at < 0)
            continue;
        free(rf->recs[at].name);
        rf->recs[at].name = rf->names[i].name;
        rf->names[i].name = NULL;
    }
}

/* Queues missed by this refresh keep their values, marked stale; after a
 * complete walk, a queue Twilio no longer lists is gone. The SID index is
 * dropped: it does not survive the compaction. */
static void settle_missed(struct wt_refresh *rf)
{
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
    wt_idx_free(&rf->idx);
}

/* The snapshot this refresh will serve, made of the working set's records
 * (handed over, not copied; rf->n and rf->seen stay for the summary). */
static struct wt_snap *build_result(struct cg_waittime *w, struct wt_refresh *rf, uint64_t now)
{
    struct wt_snap *s = wt_snap_build(rf->recs, rf->n);
    rf->recs = NULL;
    rf->cap = 0;
    wt_snap_set_version(s, 0, now);
    s->next_ms = rf->started_ms + (uint64_t)w->poll_ms;
    return s;
}

/* The seed's queue-times value of s into rf; -1 when it is too large. */
static int build_seed(struct wt_refresh *rf, const struct wt_snap *s)
{
    struct cg_buf seed;
    cg_buf_init(&seed, WT_REPLY_MAX);
    if (cg_wt_seed_json(s->recs, s->n, &seed) != 0) {
        cg_log_error("wait-time seed value too large", "queues=%zu", s->n);
        cg_buf_free(&seed);
        return -1;
    }
    free(rf->seed);
    rf->seed_len = seed.len;
    rf->seed = cg_buf_take(&seed);
    return 0;
}

/* Sends the fenced write of rf->result; -1 when the client refused it. */
static int send_write(struct cg_waittime *w, struct wt_refresh *rf, uint64_t now)
{
    struct wt_args a;
    wt_write_args(&a, w, rf, rf->result, now);
    struct wt_op *op = wt_op_new(w, OP_WRITE);
    int rc = cg_redis_eval(w->redis, w->s_write, 5, (int)a.n, a.v, a.len, on_written, op);
    if (rc != 0) {
        wt_op_done(op);
        cg_log_error("wait-time write refused by the redis client", "args=%zu", a.n);
    }
    wt_args_free(&a);
    return rc;
}

/* Builds the new snapshot and writes it with one fenced script; it is
 * installed when the write returns (on_written). */
static void refresh_write(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (nothing_to_write(rf)) {
        refresh_end(w, 0);
        return;
    }
    apply_names(rf);
    settle_missed(rf);
    uint64_t now = cg_wall_ms();
    rf->result = build_result(w, rf, now);
    if (build_seed(rf, rf->result) != 0 || send_write(w, rf, now) != 0) {
        refresh_end(w, 0);
        return;
    }
    rf->phase = PH_WRITE;
    rf->busy = 1;
}
