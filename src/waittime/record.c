/*
 * record.c - one TaskQueue's figures (struct cg_wt_record) and their
 * formats: the seed's queue-times value and /get-queue-times answer, the
 * record of the HTTP API (camelCase), and the record as stored in Redis
 * (snake_case), with the figure reading and the estimate they share with
 * parse.c. Pure functions, no I/O.
 */
#include "base/fmacros.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/estimate.h"
#include "base/json.h"
#include "waittime/internal.h"

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int cg_wt_sid_valid(const char *s)
{
    if (s == NULL || s[0] != 'W' || s[1] != 'Q')
        return 0;
    for (int i = 2; i < CG_WT_SID_LEN; i++)
        if (!is_hex((unsigned char)s[i]))
            return 0;
    return s[CG_WT_SID_LEN] == '\0';
}

/* A figure from TaskRouter: any JSON number; absent, null, negative or
 * absurd values read as 0 (a figure we cannot trust must not become a wait). */
double wt_fig(const json_t *o, const char *path)
{
    double v;
    if (cg_json_num(o, path, &v) != 0 || !isfinite(v) || v < 0 || v > 1e12)
        return 0;
    return v;
}

long wt_count_fig(const json_t *o, const char *path)
{
    double v = wt_fig(o, path);
    return v > 1e9 ? 1000000000L : (long)v;
}

/* Shortest text that reads back as the same double; integral values
 * without a fraction. Non-finite values (never valid JSON) print as 0. */
static int put_num(struct cg_buf *b, double v)
{
    if (!isfinite(v))
        v = 0;
    v += 0.0; /* -0.0 prints as 0 */
    if (v == floor(v) && fabs(v) < 1e15)
        return cg_buf_printf(b, "%.0f", v);
    char s[40];
    snprintf(s, sizeof s, "%.15g", v);
    if (strtod(s, NULL) != v)
        snprintf(s, sizeof s, "%.17g", v);
    return cg_buf_appends(b, s);
}

void wt_estimate(struct cg_wt_record *r)
{
    struct cg_tq_input in = {
        .pending_tasks = r->pending,
        .available_workers = r->available,
        .busy_workers = r->busy,
        .longest_waiting_s = r->longest_s,
        .accepted = r->accepted,
        .canceled = r->canceled,
        .window_s = r->window_s,
        .accept_min_s = r->accept_min_s,
    };
    r->estimate_s = cg_tq_estimate_seconds(&in);
}

void cg_wt_record_clear(struct cg_wt_record *r)
{
    if (r == NULL)
        return;
    free(r->name);
    memset(r, 0, sizeof *r);
}

long long cg_wt_seed_seconds(double wait_s)
{
    if (!isfinite(wait_s) || wait_s <= 0)
        return 0;
    if (wait_s > 1e15)
        return 1000000000000000LL;
    return (long long)floor(wait_s + 0.5);
}

int cg_wt_seed_json(const struct cg_wt_record *recs, size_t n, struct cg_buf *out)
{
    size_t mark = out->len;
    int rc = cg_buf_appends(out, "{\"queues\":{");
    for (size_t i = 0; i < n && rc == 0; i++) {
        char ts[25];
        cg_iso8601_ms(recs[i].fetched_ms, ts);
        rc = cg_buf_printf(out, "%s\"%s\":{\"waittime\":%lld,\"timestamp\":\"%s\"}", i ? "," : "",
                           recs[i].sid, cg_wt_seed_seconds(recs[i].wait_s), ts);
    }
    if (rc == 0)
        rc = cg_buf_appends(out, "}}");
    if (rc != 0) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}

int cg_wt_seed_answer(double wait_s, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "{\"waittime\":\"%lld\"}", cg_wt_seed_seconds(wait_s));
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

static int put_str_or_null(struct cg_buf *b, const char *s)
{
    return s ? cg_buf_append_json_str(b, s, strlen(s)) : cg_buf_appends(b, "null");
}

int cg_wt_record_json(const struct cg_wt_record *r, uint64_t now_ms, int stale, struct cg_buf *out)
{
    char ts[25];
    cg_iso8601_ms(r->fetched_ms, ts);
    long long age = now_ms > r->fetched_ms ? (long long)((now_ms - r->fetched_ms) / 1000) : 0;
    int rc = cg_buf_printf(out, "{\"sid\":\"%s\",\"friendlyName\":", r->sid);
    rc |= put_str_or_null(out, r->name);
    rc |= cg_buf_appends(out, ",\"waitTime\":");
    rc |= put_num(out, r->wait_s);
    rc |= cg_buf_printf(out, ",\"estimateSeconds\":%lld", cg_wt_seed_seconds(r->estimate_s));
    rc |= cg_buf_appends(out, ",\"avgTaskAcceptanceTime\":");
    rc |= put_num(out, r->avg_accept_s);
    rc |= cg_buf_appends(out, ",\"longestTaskWaitingAge\":");
    rc |= put_num(out, r->longest_s);
    rc |= cg_buf_printf(out,
                        ",\"pendingTasks\":%ld,\"availableWorkers\":%ld,\"eligibleWorkers\":%ld,"
                        "\"fetchedAt\":\"%s\",\"ageSeconds\":%lld,\"stale\":%s}",
                        r->pending, r->available, r->eligible, ts, age, stale ? "true" : "false");
    return rc ? -1 : 0;
}

int cg_wt_record_encode(const struct cg_wt_record *r, struct cg_buf *out)
{
    char ts[25];
    cg_iso8601_ms(r->fetched_ms, ts);
    int rc = cg_buf_printf(out, "{\"sid\":\"%s\",\"friendly_name\":", r->sid);
    rc |= put_str_or_null(out, r->name);
    rc |= cg_buf_appends(out, ",\"wait\":");
    rc |= put_num(out, r->wait_s);
    rc |= cg_buf_printf(out, ",\"wait_in_queue\":%s,\"avg_task_acceptance_time\":",
                        r->wait_in_queue ? "true" : "false");
    rc |= put_num(out, r->avg_accept_s);
    rc |= cg_buf_appends(out, ",\"longest_task_waiting_age\":");
    rc |= put_num(out, r->longest_s);
    rc |= cg_buf_printf(out,
                        ",\"pending_tasks\":%ld,\"total_available_workers\":%ld,"
                        "\"total_eligible_workers\":%ld,\"busy_workers\":%ld,"
                        "\"reservations_accepted\":%ld,\"tasks_canceled\":%ld,\"window\":",
                        r->pending, r->available, r->eligible, r->busy, r->accepted, r->canceled);
    rc |= put_num(out, r->window_s);
    rc |= cg_buf_appends(out, ",\"accept_min\":");
    rc |= put_num(out, r->accept_min_s);
    rc |= cg_buf_appends(out, ",\"estimate\":");
    rc |= put_num(out, r->estimate_s);
    rc |= cg_buf_printf(out, ",\"fetched_at\":\"%s\",\"fetched_ms\":%llu,\"stale\":%s}", ts,
                        (unsigned long long)r->fetched_ms, r->stale ? "true" : "false");
    return rc ? -1 : 0;
}

int cg_wt_record_decode(const char *json, size_t len, struct cg_wt_record *r)
{
    char err[128];
    json_t *j = cg_json_parse(json, len, 4, err, sizeof err);
    if (j == NULL)
        return -1;
    const char *sid = cg_json_str(j, "sid");
    const char *name = cg_json_str(j, "friendly_name");
    long long ms = 0;
    int stale = 0, inq = 0;
    if (sid == NULL || !cg_wt_sid_valid(sid) || cg_json_int(j, "fetched_ms", &ms) != 0 || ms < 0 ||
        (name != NULL && strlen(name) > CG_WT_MAX_NAME)) {
        json_decref(j);
        return -1;
    }
    (void)cg_json_bool(j, "stale", &stale);
    (void)cg_json_bool(j, "wait_in_queue", &inq);
    memset(r, 0, sizeof *r);
    memcpy(r->sid, sid, CG_WT_SID_LEN + 1);
    r->name = name && name[0] ? cg_strdup(name) : NULL;
    r->wait_s = wt_fig(j, "wait");
    r->wait_in_queue = inq;
    r->avg_accept_s = wt_fig(j, "avg_task_acceptance_time");
    r->longest_s = wt_fig(j, "longest_task_waiting_age");
    r->pending = wt_count_fig(j, "pending_tasks");
    r->available = wt_count_fig(j, "total_available_workers");
    r->eligible = wt_count_fig(j, "total_eligible_workers");
    /* Absent in records of older writers: read as 0, which the estimator
     * takes as "no throughput figure". */
    r->busy = wt_count_fig(j, "busy_workers");
    r->accepted = wt_count_fig(j, "reservations_accepted");
    r->canceled = wt_count_fig(j, "tasks_canceled");
    r->window_s = wt_fig(j, "window");
    r->accept_min_s = wt_fig(j, "accept_min");
    r->fetched_ms = (uint64_t)ms;
    r->stale = stale;
    /* Recomputed rather than trusted: an older writer may have used an
     * older estimator. */
    wt_estimate(r);
    json_decref(j);
    return 0;
}
