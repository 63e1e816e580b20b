/*
 * waittime.h - the wait-time service: TaskRouter TaskQueue statistics for
 * every queue of one workspace, kept fresh in Redis by one elected poller,
 * served from memory by every instance.
 *
 * Poller. On when TWILIO_WORKSPACE_SID (and the Twilio credentials) are set.
 * One instance at a time holds the Redis lock cg:{wt:<WS>}:lock (SET NX PX
 * with a random token, renewed every second by a compare-and-set script,
 * released on shutdown by a compare-and-delete script, expiring after
 * WAIT_TIME_LOCK_SECONDS, by default three poll intervals and at least 10 s,
 * so that a dead leader is replaced). Every WAIT_TIME_POLL_SECONDS the
 * leader walks GET /v1/Workspaces/{WS}/TaskQueues/Statistics?PageSize=N
 * through meta.next_page_url (ceil(queues / N) requests), and the TaskQueues
 * list for friendly names on the first refresh, every 10th refresh and when
 * a queue without a name shows up. 429, Retry-After and a low
 * X-Rate-Limit-Remaining slow it down (capped exponential backoff with full
 * jitter). A page that cannot be had keeps its queues' last good values,
 * marked stale; the other pages are still used. The result is written to
 * Redis by one script, fenced by the lock (a deposed leader cannot write).
 *
 * Serving. Every instance keeps an immutable in-memory snapshot, reloaded
 * when the version in Redis changes (checked every second; the leader
 * installs its own result at once), so reads touch neither Redis nor the
 * network and keep working while Redis is down. Routes (registered whether
 * or not the poller is on; without it they answer 503):
 *   GET /get-queue-times?queueSid=WQ...   {"waittime":"N"} (the seed's answer)
 *   GET /wait-times                       every queue, full records
 *   GET /wait-times/{sid}                 one queue
 *   GET /wait-times?name=<friendly name>  one queue by name
 * docs/ARCHITECTURE.md ("Wait-time service") has the keys and the formats.
 *
 * Ownership and callbacks. The service borrows everything passed to
 * cg_waittime_new() (all outlive it). Its HTTP handlers answer
 * synchronously. Its Redis and HTTP client callbacks may still run after
 * cg_waittime_free() (when Redis and the client are freed after it): they
 * then only free their own context.
 *
 * The pure helpers below (parsing, formats) are exposed for the unit tests.
 */
#ifndef CG_WAITTIME_H
#define CG_WAITTIME_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "net/redis.h"

struct event_base;
struct cg_config;
struct cg_httpc;
struct cg_httpd;
struct cg_metrics;
struct cg_waittime;

#define CG_WT_SID_LEN        34 /* "WQ" + 32 hex digits */
#define CG_WT_MAX_QUEUES     10000
#define CG_WT_MAX_NAME       256                /* bytes of a friendly name kept */
#define CG_WT_MAX_PAGE_BYTES (32 * 1024 * 1024) /* one statistics or list page */
#define CG_WT_MAX_URL        4096

/* Creates the service and registers its routes. The poller runs when the
 * workspace and the Twilio credentials are configured. metrics may be NULL.
 * NULL with err filled on failure (a route cannot be registered). */
struct cg_waittime *cg_waittime_new(struct event_base *base, const struct cg_config *cfg,
                                    struct cg_redis *redis, struct cg_httpc *httpc,
                                    struct cg_httpd *httpd, struct cg_metrics *metrics, char *err,
                                    size_t errlen);
/* The app forwards Redis state changes: READY reloads and (re)applies for
 * the lock at once; DISCONNECTED drops leadership (the lock cannot be
 * renewed, so another instance may take it) and abandons a refresh in
 * progress after its current request. */
void cg_waittime_redis_state(struct cg_waittime *w, enum cg_redis_state state);
/* Shutdown: no new refresh, page or lock request; once the request in
 * flight (if any) has returned, the lock is released (compare-and-delete)
 * so that another instance takes over at once. */
void cg_waittime_stop(struct cg_waittime *w);
/* Work shutdown waits for: a refresh in progress, a lock release pending. */
size_t cg_waittime_inflight(const struct cg_waittime *w);
/* NULL is a no-op. Call before the Redis connection and the HTTP client are
 * freed (their pending callbacks are disarmed here). */
void cg_waittime_free(struct cg_waittime *w);

/* Hold TwiML for a caller waiting for a TaskQueue:
 * <Response><Say>Your estimated wait time is about N minutes.</Say>
 * <Play>HOLD_MUSIC_URL</Play></Response> (a <Pause> without hold music),
 * spoken in the gate's buckets (cg_twiml_wait_phrase) from callgate's own
 * estimate. NULL when the SID is malformed or unknown or nothing is known
 * yet. The caller frees the document; *estimate_out (may be NULL) gets the
 * estimate in seconds. */
char *cg_waittime_hold_twiml(struct cg_waittime *w, const char *queue_sid, double *estimate_out);

/* Appends every TaskQueue's record (the objects of /wait-times' "queues")
 * to out as one JSON array, from the in-memory snapshot: an empty array
 * while nothing is known yet. Returns 1 and appends nothing when the
 * service does not run (no workspace configured, or w is NULL), -1 when
 * out refused the text, else 0. */
int cg_waittime_queues_json(struct cg_waittime *w, struct cg_buf *out);

/* ---- pure parts, exposed for tests ---- */

/* One TaskQueue's figures. */
struct cg_wt_record {
    char sid[CG_WT_SID_LEN + 1];
    char *name;          /* friendly name, owned; NULL when unknown */
    double wait_s;       /* the seed's figure: cumulative wait_duration_in_queue_until_accepted
                            .avg when present, else avg_task_acceptance_time */
    int wait_in_queue;   /* 1 when wait_s is wait_duration_in_queue_until_accepted.avg */
    double avg_accept_s; /* cumulative avg_task_acceptance_time */
    double longest_s;    /* realtime longest_task_waiting_age */
    long pending;        /* realtime tasks_by_status.pending */
    long available;      /* realtime total_available_workers */
    long eligible;       /* realtime total_eligible_workers */
    long busy;           /* realtime tasks_by_status assigned + reserved + wrapping */
    long accepted;       /* cumulative reservations_accepted */
    long canceled;       /* cumulative tasks_canceled */
    double window_s;     /* cumulative end_time - start_time; 0 when not given */
    double accept_min_s; /* cumulative wait_duration_until_accepted.min */
    double estimate_s;   /* cg_tq_estimate_seconds() of the figures above */
    uint64_t fetched_ms; /* wall clock when its page arrived; 0 unknown */
    int stale;           /* 1: the last refresh could not read it */
};

/* 1 when s matches ^WQ[0-9a-fA-F]{32}$. */
int cg_wt_sid_valid(const char *s);

/* Parses one page of TaskQueues/Statistics. Items are appended to *items
 * (realloc'd; *n counts them) up to max_items in total; an item without a
 * valid task_queue_sid is skipped and counted in *skipped. Numbers are read
 * as numbers (integers or reals, 0.0 included); absent, null or negative
 * figures read as 0. estimate_s is filled in. *next_url is the malloc'd
 * meta.next_page_url, or NULL on the last page. Returns 0, or -1 with err
 * filled when the page is not JSON or not of the expected shape (then
 * nothing is appended). */
int cg_wt_parse_stats(const char *body, size_t len, size_t max_items, struct cg_wt_record **items,
                      size_t *n, size_t *skipped, char **next_url, char *err, size_t errlen);

struct cg_wt_name {
    char sid[CG_WT_SID_LEN + 1];
    char *name; /* owned */
};
/* Parses one page of the TaskQueues list (key task_queues): sid and
 * friendly_name pairs, as cg_wt_parse_stats() does. */
int cg_wt_parse_names(const char *body, size_t len, size_t max_items, struct cg_wt_name **items,
                      size_t *n, char **next_url, char *err, size_t errlen);

/* The seed's integer wait: wait_s rounded half up (as JavaScript's
 * Math.round), 0 for negative or non-finite values. */
long long cg_wt_seed_seconds(double wait_s);
/* The seed's Redis value, byte for byte:
 * {"queues":{"WQ...":{"waittime":N,"timestamp":"2022-01-25T21:49:52.812Z"},...}}
 * in the order given. Returns 0, or -1 when out is full. */
int cg_wt_seed_json(const struct cg_wt_record *recs, size_t n, struct cg_buf *out);
/* The seed's /get-queue-times answer: {"waittime":"N"}. Returns the length,
 * or -1 when it does not fit. */
int cg_wt_seed_answer(double wait_s, char *out, size_t outlen);
/* The full record of the HTTP API (camelCase): sid, friendlyName, waitTime,
 * estimateSeconds, avgTaskAcceptanceTime, longestTaskWaitingAge,
 * pendingTasks, availableWorkers, eligibleWorkers, fetchedAt, ageSeconds,
 * stale. */
int cg_wt_record_json(const struct cg_wt_record *r, uint64_t now_ms, int stale, struct cg_buf *out);
/* The record as stored in Redis (snake_case JSON), and back. decode returns
 * 0, or -1 for anything malformed (r is then untouched). */
int cg_wt_record_encode(const struct cg_wt_record *r, struct cg_buf *out);
int cg_wt_record_decode(const char *json, size_t len, struct cg_wt_record *r);
void cg_wt_record_clear(struct cg_wt_record *r);

/* 1 when an If-None-Match header value matches etag (weak comparison, a
 * list of tags, or "*"). */
int cg_wt_etag_matches(const char *if_none_match, const char *etag);
#endif
