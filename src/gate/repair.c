#include "base/fmacros.h"

#include "gate/repair.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/store.h"
#include "net/periodic.h"
#include "vapi/api.h"
#include "vapi/call_list.h"

/* The list of live calls passed to repair.lua: bounded by the pages read. */
#define CALLS_MAX_BYTES (GATE_REPAIR_PAGE * GATE_REPAIR_MAX_PAGES * 128)

struct gate_repair {
    struct gate_store *store;
    struct cg_vapi *vapi;
    const struct cg_config *cfg;
    struct cg_metrics *metrics;
    gate_repaired_cb done;
    void *arg;
    struct cg_periodic *tick;

    int inflight;        /* a script or a list page has not answered yet */
    int orphaned;        /* freed while in flight: the answer frees it */
    int connected_once;  /* a later ready is a reconnect */
    int lost;            /* a reconnect not yet reported by a begin */
    int lost_sent;       /* the begin in flight reports one */
    int forcing;         /* the repair in flight sets the marker without a list */
    char token[96];      /* this instance's claim on a repair */
    uint64_t missing_ms; /* monotonic: when the marker was first seen missing; 0: present */
    uint64_t window_gt_ms;
    int pages;
    struct cg_buf calls; /* lines for repair.lua */
};

static void count(struct gate_repair *r, const char *outcome)
{
    if (r->metrics == NULL)
        return;
    struct cg_buf l;
    cg_buf_init(&l, 64);
    cg_metrics_label(&l, "outcome", outcome);
    cg_metrics_inc(r->metrics, "callgate_repairs_total", cg_buf_str(&l), 1);
    cg_buf_free(&l);
}

/* Ends a step; 1 when the repair was freed meanwhile (and is now gone). */
static int settle(struct gate_repair *r)
{
    r->inflight = 0;
    if (!r->orphaned)
        return 0;
    cg_buf_free(&r->calls);
    free(r);
    return 1;
}

static void on_repaired(const struct gate_reply *rep, void *arg);

/* Vapi stayed unreadable past the pause allowed: admission resumes. */
static void force(struct gate_repair *r)
{
    cg_log_error("cannot read vapi's live calls to repair the gate's slots; admission resumes "
                 "without the repair",
                 "paused_ms=%" PRIu64, cg_mono_ms() - r->missing_ms);
    count(r, "forced");
    if (gate_store_repair(r->store, r->token, 0, 0, "", 1, on_repaired, r) == 0) {
        r->inflight = 1;
        r->forcing = 1;
    }
}

/* A step failed: try again on a later tick, or give up pausing. */
static void failed(struct gate_repair *r, const char *what, const char *detail)
{
    cg_log_warn("the repair of the gate's slots failed; trying again", "step=%s error=%s", what,
                detail ? detail : "");
    count(r, "failed");
    if (r->missing_ms && cg_mono_ms() - r->missing_ms >= GATE_REPAIR_MAX_PAUSE_MS)
        force(r);
}

static void on_repaired(const struct gate_reply *rep, void *arg)
{
    struct gate_repair *r = arg;
    if (settle(r))
        return;
    int forced = r->forcing;
    r->forcing = 0;
    const char *word = rep->err == NULL ? cg_redis_reply_str(rep->r, 0) : NULL;
    if (word == NULL) {
        failed(r, "repair", rep->err);
        return;
    }
    if (forced) {
        /* Logged and counted by force(); admission runs again. */
        r->missing_ms = 0;
        r->done(0, 0, r->arg);
        return;
    }
    if (strcmp(word, "repaired") != 0) {
        /* stale: a new loss, or the claim ran out; the next tick begins anew */
        cg_log_info("the repair of the gate's slots began again", "reason=%s", word);
        cg_periodic_kick(r->tick);
        return;
    }
    long callers = (long)cg_redis_reply_int(rep->r, 1, 0);
    long orphans = (long)cg_redis_reply_int(rep->r, 2, 0);
    long held = (long)cg_redis_reply_int(rep->r, 3, 0);
    /* Calls counted again are writes Redis had lost: worth a warning. */
    cg_log((callers + orphans) > 0 ? CG_LOG_WARN : CG_LOG_INFO,
           "repaired the gate's slots from vapi's live calls",
           "restored_callers=%ld restored_orphans=%ld already_held=%ld paused_ms=%" PRIu64, callers,
           orphans, held, r->missing_ms ? cg_mono_ms() - r->missing_ms : 0);
    if (r->metrics)
        cg_metrics_inc(r->metrics, "callgate_repaired_slots_total", NULL,
                       (double)(callers + orphans));
    count(r, "repaired");
    r->missing_ms = 0;
    r->done(callers, orphans, r->arg);
}

static void on_page(const struct cg_vapi_list_result *res, void *arg);

static int list_page(struct gate_repair *r, uint64_t le_ms)
{
    if (cg_vapi_list_calls(r->vapi, r->window_gt_ms, le_ms, GATE_REPAIR_PAGE, on_page, r) != 0)
        return -1;
    r->inflight = 1;
    r->pages++;
    return 0;
}

static void on_page(const struct cg_vapi_list_result *res, void *arg)
{
    struct gate_repair *r = arg;
    if (settle(r))
        return;
    if (!res->ok) {
        char detail[200];
        snprintf(detail, sizeof detail, "%s (http %ld)", res->error ? res->error : "?",
                 res->http_status);
        failed(r, "vapi list", detail);
        /* A refused key refuses every POST /call as well: waiting protects
         * nothing, and the admission's own failure reports the key
         * (/health). */
        if ((res->http_status == 401 || res->http_status == 403) && !r->inflight)
            force(r);
        return;
    }
    if (r->lost) {
        /* Redis reconnected since the begin: the list may predate a loss. */
        cg_periodic_kick(r->tick);
        return;
    }
    uint64_t oldest = 0;
    for (size_t i = 0; i < res->ncalls; i++) {
        const struct cg_vapi_listed_call *c = &res->calls[i];
        if (c->created_ms && (oldest == 0 || c->created_ms < oldest))
            oldest = c->created_ms;
        /* Only calls callgate made carry the CallSid; another gate's (its
         * GATE_NAME in the metadata) count against that gate's limit. */
        if (!c->live || c->twilio_call_sid == NULL ||
            (c->gate != NULL && strcmp(c->gate, r->cfg->gate_name) != 0))
            continue;
        /* Ids are checked like GET /call/{id}'s: no tab or newline. */
        if (strcspn(c->id, "\t\n") != strlen(c->id))
            continue;
        /* Streaming: Vapi has the caller's audio (the call went past
         * queued and ringing). */
        int streaming = c->status != NULL && (strcmp(c->status, "in-progress") == 0 ||
                                              strcmp(c->status, "forwarding") == 0);
        if (cg_buf_printf(&r->calls, "%s\t%s\t%ld\t%d\n", c->id, c->twilio_call_sid, c->attempt,
                          streaming) != 0) {
            failed(r, "vapi list", "too many live calls");
            return;
        }
    }
    /* A full page: the rest are older (newest first). The page's oldest
     * date is included again, so calls sharing it are not missed; the
     * script counts a call once however often it is listed. */
    if (res->ncalls + res->skipped >= GATE_REPAIR_PAGE && oldest > r->window_gt_ms) {
        if (r->pages >= GATE_REPAIR_MAX_PAGES) {
            failed(r, "vapi list", "more pages than allowed");
            return;
        }
        if (list_page(r, oldest) != 0)
            failed(r, "vapi list", "cannot send the request");
        return;
    }
    long long lease_ms = (long long)r->cfg->lease_seconds * 1000;
    long long hold_ms = (long long)r->cfg->orphan_hold_seconds * 1000;
    if (gate_store_repair(r->store, r->token, lease_ms, hold_ms, cg_buf_str(&r->calls), 0,
                          on_repaired, r) == 0)
        r->inflight = 1;
}

static void on_begun(const struct gate_reply *rep, void *arg)
{
    struct gate_repair *r = arg;
    if (settle(r))
        return;
    const char *word = rep->err == NULL ? cg_redis_reply_str(rep->r, 0) : NULL;
    if (word == NULL) {
        r->lost |= r->lost_sent; /* not reported: report it with the next begin */
        failed(r, "begin", rep->err);
        return;
    }
    if (strcmp(word, "intact") == 0) {
        r->missing_ms = 0;
        return;
    }
    if (r->missing_ms == 0) {
        r->missing_ms = cg_mono_ms();
        if (r->missing_ms == 0)
            r->missing_ms = 1;
        /* A first start finds no trace of the gate: nothing was lost, but
         * the first admission still waits for Vapi's count (a Redis that lost
         * everything looks the same, and the repair's result says so). */
        if (cg_redis_reply_int(rep->r, 1, 0) == 1)
            cg_log_info("no record of this gate in redis yet; the first admission waits until "
                        "vapi's live calls are counted",
                        "");
        else
            cg_log_warn("the gate's slots may have lost writes; admission waits for their "
                        "repair from vapi's live calls",
                        "");
    }
    if (strcmp(word, "begin") != 0) {
        /* busy: another instance repairs; it may have died */
        if (cg_mono_ms() - r->missing_ms >= GATE_REPAIR_MAX_PAUSE_MS)
            force(r);
        return;
    }
    int dur = r->cfg->vapi_max_duration_seconds > 0 ? r->cfg->vapi_max_duration_seconds
                                                    : CG_VAPI_DEFAULT_MAX_DURATION;
    r->window_gt_ms = cg_wall_ms() - (uint64_t)(dur + GATE_REPAIR_MARGIN_S) * 1000;
    r->pages = 0;
    cg_buf_free(&r->calls);
    cg_buf_init(&r->calls, CALLS_MAX_BYTES);
    if (cg_buf_appends(&r->calls, "") != 0 || list_page(r, 0) != 0)
        failed(r, "vapi list", "cannot send the request");
}

static void on_tick(void *arg)
{
    struct gate_repair *r = arg;
    if (r->inflight || cg_redis_state(r->store->redis) != CG_REDIS_READY)
        return;
    if (gate_store_repair_begin(r->store, r->token, GATE_REPAIR_HOLD_MS, r->lost, on_begun, r) ==
        0) {
        r->inflight = 1;
        r->lost_sent = r->lost;
        r->lost = 0;
    }
}

void gate_repair_redis_ready(struct gate_repair *r)
{
    if (r == NULL)
        return;
    if (r->connected_once)
        r->lost = 1;
    r->connected_once = 1;
    cg_periodic_kick(r->tick);
}

struct gate_repair *gate_repair_new(struct event_base *base, struct gate_store *store,
                                    struct cg_vapi *vapi, const struct cg_config *cfg,
                                    struct cg_metrics *metrics, gate_repaired_cb done, void *arg)
{
    struct gate_repair *r = cg_calloc(1, sizeof *r);
    r->store = store;
    r->vapi = vapi;
    r->cfg = cfg;
    r->metrics = metrics;
    r->done = done;
    r->arg = arg;
    snprintf(r->token, sizeof r->token, "%.64s/%016" PRIx64,
             cfg->instance_id ? cfg->instance_id : "", cg_random_u64());
    cg_buf_init(&r->calls, CALLS_MAX_BYTES);
    if (metrics) {
        cg_metrics_declare(metrics, "callgate_repairs_total", CG_COUNTER,
                           "Repairs of the gate's slots from Vapi's live calls after Redis "
                           "lost writes, by outcome (repaired, failed, forced).",
                           NULL, 0);
        cg_metrics_declare(metrics, "callgate_repaired_slots_total", CG_COUNTER,
                           "Slots counted again by repairs (live Vapi calls Redis had lost).", NULL,
                           0);
    }
    r->tick = cg_periodic_new(base, "repair", GATE_REPAIR_TICK_MS, 10, on_tick, r);
    if (r->tick == NULL) {
        cg_buf_free(&r->calls);
        free(r);
        return NULL;
    }
    return r;
}

void gate_repair_free(struct gate_repair *r)
{
    if (r == NULL)
        return;
    cg_periodic_free(r->tick);
    r->tick = NULL;
    if (r->inflight) {
        r->orphaned = 1;
        return;
    }
    cg_buf_free(&r->calls);
    free(r);
}
