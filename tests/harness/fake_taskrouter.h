/*
 * fake_taskrouter.h - a fake Twilio TaskRouter for the wait-time tests, on
 * 127.0.0.1 (a free port), served by evhttp on its own event_base in its
 * own thread (as fakeapi.h), so that the test thread can make blocking
 * requests to callgate processes while they poll the fake.
 *
 * Endpoints (Basic AccountSid:AuthToken required; anything else 401):
 *   GET /v1/Workspaces/{WS}/TaskQueues/Statistics?PageSize=N[&Page=k&PageToken=PTk]
 *   GET /v1/Workspaces/{WS}/TaskQueues?PageSize=N[&Page=k&PageToken=PTk]
 * Both page through N queues with v1 "meta" paging and an absolute
 * next_page_url, in the shape of the OpenAPI spec's examples. Queue i has
 * the SID cgt_tr_sid(i) and the friendly name cgt_tr_name(i); its figures
 * are a function of i and the generation (cgt_tr_set_gen), or what
 * cgt_tr_set_stats() gave it.
 *
 * Threads: every function may be called from any thread but the fake's
 * own; state is behind one mutex.
 */
#ifndef CG_FAKE_TASKROUTER_H
#define CG_FAKE_TASKROUTER_H

#include <stddef.h>

struct cgt_tr;

struct cgt_tr_opts {
    const char *account_sid;
    const char *auth_token;
    const char *workspace_sid;
    int nqueues;
};

struct cgt_tr_stats {
    int has_wait;    /* cumulative.wait_duration_in_queue_until_accepted present */
    double wait_avg; /* its avg */
    double accept;   /* cumulative.avg_task_acceptance_time */
    long longest;    /* realtime.longest_task_waiting_age */
    long pending;    /* realtime.tasks_by_status.pending */
    long available;  /* realtime.total_available_workers */
    long eligible;   /* realtime.total_eligible_workers */
};

enum cgt_tr_bad { CGT_TR_BAD_NONE, CGT_TR_BAD_HTML, CGT_TR_BAD_500, CGT_TR_BAD_SHAPE };

struct cgt_tr_counts {
    int stats;         /* statistics requests answered (any status) */
    int names;         /* TaskQueues list requests answered */
    int walks;         /* last statistics page served with 200 */
    int rate_limited;  /* 429 answers */
    int unauthorized;  /* 401 answers */
    int in_flight;     /* requests received and not yet answered */
    int max_in_flight; /* most at once since the last reset */
    int max_page_size; /* largest PageSize asked for */
};

struct cgt_tr *cgt_tr_start(const struct cgt_tr_opts *o);
void cgt_tr_stop(struct cgt_tr *t);
const char *cgt_tr_url(const struct cgt_tr *t);

/* "WQ" + 32 hex digits of i + 1. */
void cgt_tr_sid(int i, char out[35]);
/* "Queue <i>" (queue 0 is "Sales & Support", to exercise escaping). */
void cgt_tr_name(int i, char *out, size_t n);

void cgt_tr_set_nqueues(struct cgt_tr *t, int n);
void cgt_tr_set_gen(struct cgt_tr *t, int gen);
void cgt_tr_get_stats(struct cgt_tr *t, int i, struct cgt_tr_stats *out);
/* The figures of queue i in generation gen, overrides aside. */
void cgt_tr_formula(int i, int gen, struct cgt_tr_stats *out);
/* Fixed figures for queue i (i < 16) whatever the generation. */
void cgt_tr_set_stats(struct cgt_tr *t, int i, const struct cgt_tr_stats *s);
/* While on, every request answers 429 {"code":20429,...} with Retry-After
 * (when retry_after_s > 0). */
void cgt_tr_set_429(struct cgt_tr *t, int on, int retry_after_s);
/* Statistics page `page` (0-based) answers badly; page -1: none. */
void cgt_tr_set_bad_page(struct cgt_tr *t, int page, enum cgt_tr_bad how);
/* X-Rate-Limit-Limit / -Remaining on every answer (-1: not sent). */
void cgt_tr_set_rate_headers(struct cgt_tr *t, long limit, long remaining);
/* Milliseconds every answer is held back (a timer on the fake's loop). */
void cgt_tr_set_delay(struct cgt_tr *t, int ms);

void cgt_tr_counts(struct cgt_tr *t, struct cgt_tr_counts *out);
/* Zeroes the counters (max_in_flight included). */
void cgt_tr_reset(struct cgt_tr *t);
/* Polls until walks >= atleast; 0, or -1 after timeout_ms. */
int cgt_tr_wait_walks(struct cgt_tr *t, int atleast, int timeout_ms);

#endif
