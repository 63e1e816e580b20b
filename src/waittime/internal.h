/*
 * internal.h - what the files of the wait-time service share. Not for other
 * modules: waittime.h is the service's interface.
 *
 * The files and what each owns:
 *   record.c     one TaskQueue's figures and their formats: the seed's
 *                queue-times value and answer, the HTTP API record, the
 *                Redis record
 *   parse.c      TaskRouter's pages: TaskQueues/Statistics and the
 *                TaskQueues list
 *   snapshot.c   the immutable snapshot every instance serves from, and the
 *                SID index of a refresh's working set
 *   store.c      the Redis side every instance shares: request contexts that
 *                may outlive the service, the version-checked reload,
 *                installing a snapshot, the fenced write's arguments
 *   poller.c     applying for and renewing the leader lock; the refresh's
 *                start and its walk through the pages
 *   write.c      the refresh's write: names, stale or gone queues, the new
 *                snapshot, the fenced write and the seed's mirror
 *   refresh.c    the end of a refresh (log, schedule, backoff) and giving
 *                up leadership (leader flag, the lock's release)
 *   worker.c     the thread that parses pages off the loop (worker.h)
 *   endpoints.c  /get-queue-times, /wait-times, ETags, and the hold TwiML
 *   waittime.c   the life cycle and the 1 s tick
 *
 * Everything runs on the event loop of cg_waittime_new(); nothing here is
 * thread-safe. The one exception is worker.c's thread, which parses a
 * page's body handed to it and hands the result back (worker.h: it shares
 * nothing else). Records in a snapshot own their names; a snapshot owns its
 * records; the service owns the snapshot it serves and the refresh in
 * progress.
 */
#ifndef CG_WT_INTERNAL_H
#define CG_WT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>
#include <jansson.h>

#include "base/clock.h"
#include "base/list.h"
#include "net/redis.h"
#include "waittime/waittime.h"

struct event;
struct cg_periodic;
struct wt_job;
struct wt_worker;

/* The largest answer or Redis value the service builds (all queues). */
#define WT_REPLY_MAX (64 * 1024 * 1024)
/* The first step of every retry and refresh backoff (cg_backoff_ms). */
#define WT_BACKOFF_BASE_MS 1000

/* ---- record.c ---- */

/* A figure from TaskRouter or a record: any JSON number; absent, null,
 * negative or absurd values read as 0. */
double wt_fig(const json_t *o, const char *path);
/* The same as a count, at most 10^9. */
long wt_count_fig(const json_t *o, const char *path);
/* Fills r->estimate_s from r's other figures (cg_tq_estimate_seconds). */
void wt_estimate(struct cg_wt_record *r);

/* ---- snapshot.c ---- */

struct wt_snap {
    struct cg_wt_record *recs; /* sorted by SID, case-insensitively */
    size_t n;
    const struct cg_wt_record **by_name; /* sorted by name, one per name */
    size_t nnames;
    uint64_t version;
    uint64_t refreshed_ms; /* wall clock of the write */
    uint64_t next_ms;      /* wall clock of the next scheduled refresh */
    char etag[64];
};

/* Takes ownership of recs (n of them; may be NULL when n is 0). */
struct wt_snap *wt_snap_build(struct cg_wt_record *recs, size_t n);
void wt_snap_free(struct wt_snap *s); /* NULL is a no-op */
/* Sets the version and the refresh time, and the ETag made of both. */
void wt_snap_set_version(struct wt_snap *s, uint64_t version, uint64_t refreshed_ms);
/* Lookups; NULL when s is NULL or has no such queue. */
const struct cg_wt_record *wt_snap_find(const struct wt_snap *s, const char *sid);
const struct cg_wt_record *wt_snap_find_name(const struct wt_snap *s, const char *name);
/* Records marked stale. */
size_t wt_snap_stale(const struct wt_snap *s);

/* SID -> index into a record array (open addressing, never shrinks). */
struct wt_index {
    uint32_t *slot; /* record index + 1; 0 is empty */
    size_t mask;
};
void wt_idx_init(struct wt_index *x, size_t entries);
void wt_idx_free(struct wt_index *x);
/* The index of sid in recs, or -1. */
long wt_idx_find(const struct wt_index *x, const struct cg_wt_record *recs, const char *sid);
void wt_idx_put(struct wt_index *x, const char *sid, size_t at);

/* ---- the service ---- */

enum wt_op_kind { OP_READ, OP_LOCK, OP_RELEASE, OP_WRITE, OP_WRITE_SEED, OP_HTTP };

/* Context of one Redis command or HTTP request. cg_waittime_free() sets w
 * to NULL in those still out (and unlinks them), so their late callbacks
 * only free them. */
struct wt_op {
    struct cg_waittime *w;
    enum wt_op_kind kind;
    uint64_t installs;   /* OP_READ: w->installs when sent */
    struct cg_list link; /* in w->ops */
};

enum wt_phase { PH_STATS, PH_NAMES, PH_WRITE };

/* The refresh in progress (w->rf): walk, names, write. */
struct wt_refresh {
    enum wt_phase phase;
    uint64_t started_ms; /* wall */
    uint64_t started_mono;
    char *url; /* page to fetch next */
    size_t page;
    int attempt;
    int busy;    /* a request, a page's parse or the write is out */
    int aborted; /* leadership lost or shutdown: end at the next step */
    int stats_requests, names_requests, retries;
    int pages_ok, pages_failed;
    int broken;       /* a statistics page was not read: the walk is incomplete */
    int rate_limited; /* a page ended in 429s */
    int unnamed;      /* a queue without a friendly name showed up */
    double retry_after_s;
    uint64_t worker_us;   /* the worker's CPU time on this refresh (parse, encode) */
    uint64_t loop_max_us; /* longest step of this refresh on the loop (CPU) */
    /* Working set: the last snapshot's records, updated page by page. Handed
     * to the result snapshot when the write is built (recs is then NULL;
     * n and seen stay for the summary). */
    struct cg_wt_record *recs;
    size_t n, cap;
    unsigned char *seen;
    struct wt_index idx;
    size_t dropped;
    char **urls; /* statistics page URLs of this walk, by page index */
    size_t nurls;
    struct cg_wt_name *names;
    size_t nnames;
    int names_complete;
    struct wt_job *encoded; /* the worker's encoding of result: records, seed */
    uint64_t write_ms;      /* wall clock of the write */
    int names_read;
    struct wt_snap *result; /* built for the write, installed after it */
};

struct cg_waittime {
    struct event_base *base;
    const struct cg_config *cfg;
    struct cg_redis *redis;
    struct cg_httpc *httpc;
    struct cg_metrics *metrics;

    int serving; /* a workspace is configured */
    int polling; /* ... and the credentials to poll it */
    const char *off_reason;
    char ws[CG_WT_SID_LEN + 1];
    char k_lock[96], k_version[96], k_meta[96], k_queues[96], k_names[96];
    char token[224];
    char stats_url[CG_WT_MAX_URL];
    char names_url[CG_WT_MAX_URL];
    long poll_ms, lock_ms, backoff_cap_ms;
    int s_renew, s_release, s_write, s_read;

    struct cg_periodic *tick;
    struct event *page_timer;
    struct cg_list ops; /* struct wt_op, every request out */

    int redis_up;
    int stopping;
    int leader;
    int was_leader; /* held the lock when Redis went away: try to reclaim it */
    int lock_pending, read_pending, release_pending;

    struct wt_snap *snap;
    uint64_t known_version; /* in Redis, as last seen; 0 none */
    uint64_t installs;
    uint64_t next_ms;       /* shared schedule (meta), wall clock */
    uint64_t names_version; /* version whose refresh read the names */
    uint64_t hold_until;    /* monotonic: no refresh before (backoff) */
    int rl_streak;          /* consecutive 429 / 5xx / transport failures */
    unsigned long refreshes;

    struct wt_refresh *rf;
    struct wt_worker *worker; /* parses pages off the loop; NULL unless polling */
    char **page_urls;         /* statistics page URLs of the last walk */
    size_t npage_urls;
};

/* ---- store.c ---- */

struct wt_op *wt_op_new(struct cg_waittime *w, enum wt_op_kind kind);
/* Unlinks and frees op; returns the service it belonged to, or NULL when
 * the service is gone. */
struct cg_waittime *wt_op_done(struct wt_op *op);
/* Every op out loses its service (cg_waittime_free). */
void wt_ops_orphan(struct cg_waittime *w);
int wt_redis_ready(const struct cg_waittime *w);
void wt_set_gauge(struct cg_waittime *w, const char *name, double v);
/* Serves s from now on (takes ownership; the old snapshot is freed). */
void wt_install(struct cg_waittime *w, struct wt_snap *s);
/* Sends the version-checked read unless one is out; the answer reloads the
 * snapshot when Redis holds a newer version. */
void wt_read_step(struct cg_waittime *w);

/* The arguments of the fenced write script (lua/write.lua) for snapshot s
 * of refresh rf, written at now_ms. enc (with enc_len) are s's records
 * already encoded (cg_wt_record_encode), borrowed; NULL encodes them here.
 * Owns what it points to but enc. */
struct wt_args {
    const char **v;
    size_t *len;
    size_t n, cap;
    char **owned;
    size_t nowned, owned_cap;
};
void wt_write_args(struct wt_args *a, const struct cg_waittime *w, const struct wt_refresh *rf,
                   const struct wt_snap *s, uint64_t now_ms, char *const *enc,
                   const size_t *enc_len);
void wt_args_free(struct wt_args *a);

/* ---- refresh.c ---- */

void wt_set_leader(struct cg_waittime *w, int leader);
/* On shutdown, once no request of ours is out, hands the lock over. */
void wt_maybe_release(struct cg_waittime *w);
/* The end of w->rf, whatever happened (written: the write succeeded): logs,
 * counts, schedules the next refresh, frees it, and releases the lock when
 * shutting down. */
void wt_refresh_end(struct cg_waittime *w, int written);
/* Leadership lost or shutdown: the request out (if any) finishes, then the
 * refresh ends without writing. */
void wt_refresh_abort(struct cg_waittime *w);
void wt_refresh_free(struct wt_refresh *rf); /* NULL is a no-op */
/* Notes a step of rf on the loop that began at since_us (cg_thread_cpu_us)
 * for the summary's longest step. */
void wt_note_loop_time(struct wt_refresh *rf, uint64_t since_us);
void wt_free_urls(char **urls, size_t n);

/* ---- write.c ---- */

/* Builds the new snapshot of w->rf, has the worker encode it, and writes
 * it with one fenced script (wt_refresh_encoded); ends the refresh when
 * there is nothing to write or it cannot be sent. */
void wt_refresh_write(struct cg_waittime *w);
/* The worker's encoding of w->rf's snapshot is back (job taken). */
void wt_refresh_encoded(struct cg_waittime *w, struct wt_job *job);

/* ---- poller.c ---- */

/* Applies for the lock, or renews it when held. */
void wt_lock_step(struct cg_waittime *w);
/* Starts a refresh when this instance leads and one is due. */
void wt_maybe_refresh(struct cg_waittime *w);
/* The page timer's callback (arg: the service). */
void wt_on_page_timer(evutil_socket_t fd, short what, void *arg);
/* The worker's done callback (arg: the service): a page came back parsed. */
void wt_on_parsed(struct wt_job *job, void *arg);

/* ---- endpoints.c ---- */

/* Registers the service's routes; -1 with err filled when one cannot be. */
int wt_routes_register(struct cg_waittime *w, struct cg_httpd *httpd, char *err, size_t errlen);

#endif
