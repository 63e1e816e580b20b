/*
 * waittime.c - the wait-time service of waittime.h: its life cycle (set-up,
 * Redis state changes, shutdown) and the 1 s tick that drives it. The
 * other parts are listed in internal.h.
 *
 * Control flow. A 1 s tick (every instance) checks the version in Redis
 * and reloads the snapshot when it changed (store.c); on a poller-capable
 * instance it also applies for the lock (SET NX PX) or renews it
 * (compare-and-set), and the leader starts a refresh when the shared
 * schedule says so (poller.c). Reads are answered from the snapshot
 * (endpoints.c).
 */
#include "base/fmacros.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/log.h"
#include "base/metrics.h"
#include "net/periodic.h"
#include "waittime/internal.h"
#include "waittime/worker.h"
#include "waittime/lua_scripts.h"

#define TICK_MS          1000 /* version check and lock renewal */
#define LOCK_MIN_AUTO_MS 10000
#define LOCK_MIN_MS      2000   /* a lock shorter than two ticks would flap */
#define BACKOFF_MAX_MS   300000 /* the longest pause between refreshes */

/* ---- the tick ---- */

static void on_tick(void *arg)
{
    struct cg_waittime *w = arg;
    if (w->stopping || !wt_redis_ready(w))
        return;
    wt_read_step(w);
    wt_lock_step(w);
    /* The renewal's answer starts a due refresh; so does this, for a leader
     * whose renewal is still out. */
    wt_maybe_refresh(w);
}

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
    cg_list_init(&w->ops);
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
    w->page_timer = evtimer_new(base, wt_on_page_timer, w);
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
    w->worker = wt_worker_new(base, wt_on_parsed, w, err, errlen);
    if (w->worker == NULL) {
        cg_waittime_free(w);
        return NULL;
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
        wt_set_leader(w, 0);
        w->was_leader = 1;
        wt_refresh_abort(w);
    }
}

void cg_waittime_stop(struct cg_waittime *w)
{
    if (w == NULL || w->stopping)
        return;
    w->stopping = 1;
    wt_refresh_abort(w);
    wt_maybe_release(w);
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
    wt_ops_orphan(w);
    cg_periodic_free(w->tick);
    if (w->page_timer)
        event_free(w->page_timer);
    /* Joined first: a page it parses belongs to the refresh freed next. */
    wt_worker_free(w->worker);
    wt_refresh_free(w->rf);
    wt_snap_free(w->snap);
    wt_free_urls(w->page_urls, w->npage_urls);
    free(w);
}
