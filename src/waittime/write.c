/*
 * write.c - the last step of a refresh: friendly names applied, queues
 * missed by the walk kept (marked stale) or dropped, the new snapshot
 * built from the working set, and one fenced write script (lua/write.lua)
 * followed by the seed's queue-times mirror. The snapshot is installed
 * when the write returns.
 */
#include "base/fmacros.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "waittime/internal.h"
#include "waittime/worker.h"

/* The seed's key, without a hash tag: its readers know it by this name. */
#define SEED_KEY "queue-times"

static void on_seed_written(const redisReply *r, const char *err, void *arg)
{
    (void)r;
    struct wt_op *op = arg;
    if (wt_op_done(op) != NULL && err != NULL)
        cg_log_warn("the seed's queue-times key was not written", "error=%s", err);
}

static void on_written(const redisReply *r, const char *err, void *arg)
{
    uint64_t t0 = cg_thread_cpu_us();
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
        wt_refresh_end(w, 0);
        return;
    }
    if (r->integer < 0) {
        cg_log_warn("wait-time write refused: the lock is no longer ours", "workspace=%s", w->ws);
        wt_set_leader(w, 0);
        rf->aborted = 1;
        wt_refresh_end(w, 0);
        return;
    }
    /* The seed's mirror, right behind the fenced write on the same
     * connection, so no other leader can come in between. */
    if (rf->encoded != NULL && rf->encoded->seed != NULL) {
        struct wt_op *sop = wt_op_new(w, OP_WRITE_SEED);
        if (cg_redis_command(w->redis, on_seed_written, sop, "SET %s %b", SEED_KEY,
                             rf->encoded->seed, rf->encoded->seed_len) != 0)
            wt_op_done(sop);
    }
    struct wt_snap *s = rf->result;
    rf->result = NULL;
    wt_install(w, s);
    w->known_version = s->version = (uint64_t)r->integer;
    wt_snap_set_version(s, s->version, s->refreshed_ms);
    if (rf->names_read)
        w->names_version = s->version;
    wt_note_loop_time(rf, t0);
    wt_refresh_end(w, 1);
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

/* Sends the fenced write of rf->result with its encoded records; -1 when
 * the client refused it. */
static int send_write(struct cg_waittime *w, struct wt_refresh *rf, const struct wt_job *enc)
{
    struct wt_args a;
    wt_write_args(&a, w, rf, rf->result, rf->write_ms, enc->enc, enc->enc_len);
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
void wt_refresh_write(struct cg_waittime *w)
{
    struct wt_refresh *rf = w->rf;
    if (nothing_to_write(rf)) {
        wt_refresh_end(w, 0);
        return;
    }
    uint64_t t0 = cg_thread_cpu_us();
    apply_names(rf);
    settle_missed(rf);
    rf->write_ms = cg_wall_ms();
    rf->result = build_result(w, rf, rf->write_ms);
    rf->phase = PH_WRITE;
    rf->busy = 1;
    /* Encoding the records is most of the write's work: the worker does it
     * while the snapshot, lent to it, waits (worker.h). */
    struct wt_job *job = wt_job_encode(rf->result->recs, rf->result->n);
    wt_note_loop_time(rf, t0);
    if (wt_worker_submit(w->worker, job) != 0) {
        wt_job_run(job);
        wt_refresh_encoded(w, job);
    }
}

void wt_refresh_encoded(struct cg_waittime *w, struct wt_job *job)
{
    uint64_t t0 = cg_thread_cpu_us();
    struct wt_refresh *rf = w->rf;
    rf->busy = 0;
    rf->worker_us += job->parse_us;
    rf->encoded = job; /* given back to the worker when the refresh ends */
    if (rf->aborted || w->stopping || !w->leader) {
        rf->aborted = 1;
        wt_refresh_end(w, 0);
        return;
    }
    if (job->rc != 0) {
        cg_log_error("wait-time seed value too large", "queues=%zu", rf->result->n);
        wt_refresh_end(w, 0);
        return;
    }
    if (send_write(w, rf, job) != 0) {
        wt_refresh_end(w, 0);
        return;
    }
    rf->busy = 1;
    wt_note_loop_time(rf, t0);
}
