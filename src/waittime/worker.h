/*
 * worker.h - parsing TaskRouter's pages, and encoding a refresh's records,
 * off the event loop. A statistics page of 1,000 queues is about 1.4 MB of
 * JSON, some 30-40 ms of CPU to parse and free, and encoding the records
 * for the write a few more: done on the loop, every read that arrives
 * meanwhile waits for it. The service owns one worker thread; the poller
 * hands it a page's body and gets the parsed records back on the loop, and
 * the write lends it the new snapshot's records and gets their encodings
 * back.
 *
 * The threading rule: the worker shares no mutable state with the loop.
 * A job is owned by exactly one side at a time and changes hands through
 * two pipes (the pointer is the message):
 *   - wt_worker_submit() writes the job's pointer to the worker's pipe:
 *     from then on only the worker touches the job;
 *   - the worker parses (cg_wt_parse_stats or cg_wt_parse_names) or
 *     encodes (cg_wt_record_encode, cg_wt_seed_json): pure functions that
 *     touch only the job, the records lent to it (read only) and their own
 *     allocations; then it writes the pointer to the loop's pipe and
 *     never touches the job again;
 *   - the loop's read event takes it back and calls the done callback
 *     with it, on the loop; the callback owns the job, takes what it
 *     wants of the result (moving it out of the job), and gives the job
 *     back with wt_worker_release(): the same pipe takes it to the worker
 *     once more, which frees what it allocated for the job.
 * Each thread frees the large blocks it allocated: glibc merges an arena's
 * freed small chunks in whichever thread next frees a large block of that
 * arena, and for a page's JSON tree that is 10-15 ms of CPU the loop must
 * not spend.
 * The pipe's write and read order the job's memory (and the records lent
 * with it) between the two threads. The worker never logs, never touches
 * libevent, Redis or the service, and reads nothing of the loop's but the
 * records of an encode job, which the loop leaves alone until it is back.
 *
 * The thread runs 10 nice levels below the loop (Linux keeps a nice value
 * per thread): when the two compete for a core, the loop's reads come
 * first and the refresh waits.
 *
 * wt_worker_free() closes the worker's pipe, which ends the thread once
 * the job in hand (if any) is parsed, joins it, and frees every job not
 * yet delivered without calling back.
 */
#ifndef CG_WT_WORKER_H
#define CG_WT_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "waittime/waittime.h"

struct event_base;

/* WT_JOB_STATS, WT_JOB_NAMES: a page to parse. WT_JOB_ENCODE: the records
 * of a refresh's new snapshot to encode for the write (cg_wt_record_encode
 * each, and the seed's value, cg_wt_seed_json). */
enum wt_job_kind { WT_JOB_STATS, WT_JOB_NAMES, WT_JOB_ENCODE };

/* One page to parse, or one snapshot to encode, and the result. */
struct wt_job {
    enum wt_job_kind kind;
    /* in */
    char *body; /* owned, NUL-terminated */
    size_t len;
    size_t max_items;
    /* WT_JOB_ENCODE: the records, lent to the job: the loop leaves them
     * alone until the job is back. */
    const struct cg_wt_record *recs;
    size_t nrecs;
    /* out */
    int parsed; /* set by wt_job_run() */
    int rc;     /* cg_wt_parse_*'s result */
    char err[160];
    struct cg_wt_record *items; /* WT_JOB_STATS (owned; the records hold no name) */
    size_t n, skipped;
    struct cg_wt_name *names; /* WT_JOB_NAMES (owned, and each name) */
    size_t nnames;
    char *next_url; /* owned; NULL on the last page */
    char **enc;     /* WT_JOB_ENCODE: nrecs Redis records (owned) */
    size_t *enc_len;
    char *seed; /* WT_JOB_ENCODE: the seed's value (owned); rc -1 when too large */
    size_t seed_len;
    uint64_t parse_us; /* the worker's CPU time on it */
    /* What the loop keeps of the page's answer for after the parse;
     * the worker leaves it alone. */
    double retry_after_s;
    long rate_limit_limit, rate_limit_remaining;
};

/* A job for body (copied), with nothing parsed yet. */
struct wt_job *wt_job_new(enum wt_job_kind kind, const char *body, size_t len, size_t max_items);
/* A job encoding n records (lent: they must stay as they are until the job
 * is back). */
struct wt_job *wt_job_encode(const struct cg_wt_record *recs, size_t n);
void wt_job_free(struct wt_job *job); /* NULL is a no-op */
/* Parses (or encodes) the job into its result, on the calling thread. */
void wt_job_run(struct wt_job *job);

/* Receives a parsed job on the loop; owns it. */
typedef void (*wt_job_done_cb)(struct wt_job *job, void *arg);

struct wt_worker;
/* Starts the thread; NULL (err filled) when it cannot be. */
struct wt_worker *wt_worker_new(struct event_base *base, wt_job_done_cb done, void *arg, char *err,
                                size_t errlen);
/* Hands job to the worker: done receives it later, never from inside this
 * call. -1 when it could not be handed over (the job is still the
 * caller's). */
int wt_worker_submit(struct wt_worker *k, struct wt_job *job);
/* Gives back a job the done callback received (or one parsed here with
 * wt_job_run): the body is freed at once, the parse's memory by the
 * worker, or here when k is NULL or cannot take it. */
void wt_worker_release(struct wt_worker *k, struct wt_job *job);
/* Stops and joins the thread; jobs not yet delivered are freed. NULL is a
 * no-op. */
void wt_worker_free(struct wt_worker *k);

#endif
