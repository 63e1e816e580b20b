/*
 * taskrouter_stats.c - the statistics of the TaskRouter v1 resources,
 * computed from the model: the window a request asks for (Minutes,
 * StartDate, EndDate, SplitByWaitTime), the cumulative figures over the
 * queue's history, and the real-time figures over its FIFO, with the JSON
 * members the Statistics resources embed.
 */
#include "base/fmacros.h"

#include "taskrouter_int.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/form.h"
#include "scenario.h"

/* ---- JSON ---- */

/* A number that must read as a JSON real ("12.0", never "12"). */
void sim_tr_jw_real(struct sim_jw *j, const char *k, double v)
{
    sim_jw_key(j, k);
    cg_buf_printf(j->b, "%.1f", isfinite(v) ? v : 0.0);
}

void sim_tr_jw_date(struct sim_jw *j, const char *k, int64_t wall_ms)
{
    char d[ISO_LEN];
    sim_tr_iso_date(wall_ms, d);
    sim_jw_str(j, k, d);
}

/* ---- statistics ---- */

static void waits_add(struct waits *w, double v)
{
    if (w->n == 0 || v < w->min)
        w->min = v;
    if (w->n == 0 || v > w->max)
        w->max = v;
    w->n++;
    w->sum += v;
}

/* Figures of queue qi over the window; returns 1 when the window reaches
 * back past what the bounded history still holds. */
int sim_tr_cumulative(struct sim_taskrouter *tr, size_t qi, const struct window *win, struct cum *c)
{
    const struct tq *q = &tr->q[qi];
    memset(c, 0, sizeof(*c));
    for (size_t i = sim_tr_hist_lower(q, win->from); i < q->hn; i++) {
        const struct hrec *r = sim_tr_hist_at(q, i);
        if (r->t > win->to)
            break;
        double wait = (double)r->wait;
        switch ((enum h_kind)r->kind) {
        case H_ENTERED:
            c->entered++;
            break;
        case H_ACCEPTED:
            c->accepted++;
            waits_add(&c->acc, wait);
            for (size_t s = 0; s < win->nsplits; s++) {
                if (wait >= (double)win->splits[s])
                    c->acc_above[s]++;
                else
                    c->acc_below[s]++;
            }
            break;
        case H_CANCELED:
            c->canceled++;
            waits_add(&c->can, wait);
            for (size_t s = 0; s < win->nsplits; s++) {
                if (wait >= (double)win->splits[s])
                    c->can_above[s]++;
                else
                    c->can_below[s]++;
            }
            break;
        case H_COMPLETED:
        default:
            c->completed++;
            break;
        }
    }
    return win->from < q->h_lost_t;
}

void sim_tr_waits_json(struct sim_jw *j, const char *k, const struct waits *w)
{
    struct sim_jw o = sim_jw_open(j, k, '{');
    sim_jw_long(&o, "avg", w->n ? lround(w->sum / (double)w->n) : 0);
    sim_jw_long(&o, "min", w->n ? lround(w->min) : 0);
    sim_jw_long(&o, "max", w->n ? lround(w->max) : 0);
    sim_jw_long(&o, "total", lround(w->sum));
    sim_jw_close(&o, '}');
}

void sim_tr_split_json(struct sim_jw *j, const struct window *win, const struct cum *c)
{
    if (!win->split) {
        sim_jw_str(j, "split_by_wait_time", NULL);
        return;
    }
    struct sim_jw o = sim_jw_open(j, "split_by_wait_time", '{');
    for (size_t s = 0; s < win->nsplits; s++) {
        char k[24];
        snprintf(k, sizeof(k), "%ld", win->splits[s]);
        struct sim_jw t = sim_jw_open(&o, k, '{');
        struct sim_jw a = sim_jw_open(&t, "above", '{');
        sim_jw_long(&a, "tasks_canceled", c->can_above[s]);
        sim_jw_long(&a, "reservations_accepted", c->acc_above[s]);
        sim_jw_close(&a, '}');
        struct sim_jw b = sim_jw_open(&t, "below", '{');
        sim_jw_long(&b, "tasks_canceled", c->can_below[s]);
        sim_jw_long(&b, "reservations_accepted", c->acc_below[s]);
        sim_jw_close(&b, '}');
        sim_jw_close(&t, '}');
    }
    sim_jw_close(&o, '}');
}

double sim_tr_avg_acceptance(const struct cum *c)
{
    return c->acc.n ? c->acc.sum / (double)c->acc.n : 0.0;
}

/* The "cumulative" object of the Statistics resources: keys sorted as in
 * the spec's examples; the wait durations only when the scenario says the
 * live API sends them (unconfirmed), split_by_wait_time only when asked. */
void sim_tr_cumulative_member(struct sim_taskrouter *tr, struct sim_jw *j, size_t qi,
                              const struct window *win, int *truncated)
{
    struct cum c;
    if (sim_tr_cumulative(tr, qi, win, &c))
        *truncated = 1;
    struct sim_jw o = sim_jw_open(j, "cumulative", '{');
    sim_tr_jw_real(&o, "avg_task_acceptance_time", sim_tr_avg_acceptance(&c));
    sim_tr_jw_date(&o, "end_time", sim_tr_wall_ms_at(tr, win->to));
    sim_jw_long(&o, "reservations_accepted", c.accepted);
    sim_jw_long(&o, "reservations_canceled", 0);
    sim_jw_long(&o, "reservations_created", c.accepted);
    sim_jw_long(&o, "reservations_rejected", 0);
    sim_jw_long(&o, "reservations_rescinded", 0);
    sim_jw_long(&o, "reservations_timed_out", 0);
    if (win->split)
        sim_tr_split_json(&o, win, &c);
    sim_tr_jw_date(&o, "start_time", sim_tr_wall_ms_at(tr, win->from));
    sim_jw_long(&o, "tasks_canceled", c.canceled);
    sim_jw_long(&o, "tasks_completed", c.completed);
    sim_jw_long(&o, "tasks_deleted", 0);
    sim_jw_long(&o, "tasks_entered", c.entered);
    sim_jw_long(&o, "tasks_moved", 0);
    if (tr->sc->tr_bulk_wait_durations) {
        sim_tr_waits_json(&o, "wait_duration_in_queue_until_accepted", &c.acc);
        sim_tr_waits_json(&o, "wait_duration_until_accepted", &c.acc);
        sim_tr_waits_json(&o, "wait_duration_until_canceled", &c.can);
    }
    sim_jw_close(&o, '}');
}

void sim_tr_realtime(struct sim_taskrouter *tr, size_t qi, double now, struct rt *r)
{
    struct tq *q = &tr->q[qi];
    sim_tr_pend_trim(q);
    memset(r, 0, sizeof(*r));
    r->pending = (long)q->npending;
    r->busy = q->busy;
    r->eligible = q->workers;
    r->available = q->stalled ? 0 : q->workers - q->busy;
    r->offline = q->stalled ? q->workers : 0;
    if (q->pn > 0) {
        const struct ptask *head = sim_tr_pend_at(q, 0);
        double age = now - head->enq;
        r->age = age > 0 ? (long)floor(age) : 0;
        sim_tr_task_sid(tr, qi, head->seq, r->sid);
        r->has_sid = 1;
    }
}

long sim_tr_act_workers(const struct rt *r, int a)
{
    switch (a) {
    case ACT_OFFLINE:
        return r->offline;
    case ACT_IDLE:
        return r->available;
    case ACT_BUSY:
        return r->busy;
    case ACT_RESERVED:
    default:
        return 0;
    }
}

/* The "realtime" object of the Statistics resources (sorted keys). */
void sim_tr_realtime_member(struct sim_taskrouter *tr, struct sim_jw *j, size_t qi, double now)
{
    struct rt r;
    sim_tr_realtime(tr, qi, now, &r);
    struct sim_jw o = sim_jw_open(j, "realtime", '{');
    struct sim_jw acts = sim_jw_open(&o, "activity_statistics", '[');
    for (int a = 0; a < ACT_COUNT; a++) {
        if (a)
            cg_buf_appendc(acts.b, ',');
        cg_buf_appendc(acts.b, '{');
        struct sim_jw e = {acts.b, 1};
        sim_jw_str(&e, "friendly_name", tr->act[a].name);
        sim_jw_str(&e, "sid", tr->act[a].sid);
        sim_jw_long(&e, "workers", sim_tr_act_workers(&r, a));
        cg_buf_appendc(acts.b, '}');
    }
    sim_jw_close(&acts, ']');
    sim_jw_long(&o, "longest_relative_task_age_in_queue", r.age);
    sim_jw_str(&o, "longest_relative_task_sid_in_queue", r.has_sid ? r.sid : NULL);
    sim_jw_long(&o, "longest_task_waiting_age", r.age);
    sim_jw_str(&o, "longest_task_waiting_sid", r.has_sid ? r.sid : NULL);
    struct sim_jw prio = sim_jw_open(&o, "tasks_by_priority", '{');
    sim_jw_close(&prio, '}');
    struct sim_jw st = sim_jw_open(&o, "tasks_by_status", '{');
    sim_jw_long(&st, "assigned", r.busy);
    sim_jw_long(&st, "pending", r.pending);
    sim_jw_long(&st, "reserved", 0);
    sim_jw_long(&st, "wrapping", 0);
    sim_jw_close(&st, '}');
    sim_jw_long(&o, "total_available_workers", r.available);
    sim_jw_long(&o, "total_eligible_workers", r.eligible);
    sim_jw_long(&o, "total_tasks", r.pending + r.busy);
    sim_jw_close(&o, '}');
}

/* ---- request parameters ---- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ISO-8601 in UTC: "2015-08-04T01:31:41Z" (fractions and "+00:00" accepted)
 * or a bare date. */
static int parse_iso(const char *s, int64_t *wall_ms)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    const char *p = s + 10;
    if (*p == 'T') {
        if (strlen(p) < 9 || digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) ||
            p[6] != ':' || digits(p + 7, 2, &se))
            return -1;
        p += 9;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p == 'Z')
            p++;
        else if (strcmp(p, "+00:00") == 0)
            p += 6;
    }
    if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    errno = 0;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && errno)
        return -1;
    *wall_ms = (int64_t)t * 1000;
    return 0;
}

/* Minutes, StartDate, EndDate, TaskChannel, SplitByWaitTime. StartDate
 * wins over Minutes; the window ends at EndDate or now. TaskChannel is
 * accepted and ignored: every simulated task is on one channel. Replies
 * 400 and returns -1 on a bad value. */
int sim_tr_parse_window(struct sim_taskrouter *tr, struct cg_http_req *req, const struct cg_form *f,
                        double now, struct window *win)
{
    memset(win, 0, sizeof(*win));
    long minutes = 15;
    const char *s = cg_form_get(f, "Minutes");
    if (s && sim_api_parse_long(s, 1, MAX_MINUTES, &minutes) < 0) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Minutes must be an integer from 1 to 43200");
        return -1;
    }
    int64_t ms;
    win->to = now;
    if ((s = cg_form_get(f, "EndDate")) != NULL) {
        if (parse_iso(s, &ms) < 0) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "EndDate must be an ISO 8601 date-time");
            return -1;
        }
        win->to = (double)(ms - (int64_t)tr->wall0_ms) / 1000.0;
    }
    win->from = win->to - (double)minutes * 60.0;
    if ((s = cg_form_get(f, "StartDate")) != NULL) {
        if (parse_iso(s, &ms) < 0) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "StartDate must be an ISO 8601 date-time");
            return -1;
        }
        win->from = (double)(ms - (int64_t)tr->wall0_ms) / 1000.0;
    }
    if (win->from > win->to) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "StartDate must not be after EndDate");
        return -1;
    }
    s = cg_form_get(f, "TaskChannel");
    if (s && (!*s || strlen(s) > 64)) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "Invalid TaskChannel");
        return -1;
    }
    if ((s = cg_form_get(f, "SplitByWaitTime")) != NULL) {
        win->split = 1;
        char buf[256];
        if (strlen(s) >= sizeof(buf))
            goto bad_split;
        snprintf(buf, sizeof(buf), "%s", s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            if (win->nsplits == MAX_SPLITS ||
                sim_api_parse_long(t, 1, 86400, &win->splits[win->nsplits]))
                goto bad_split;
            win->nsplits++;
        }
        if (win->nsplits == 0)
            goto bad_split;
    }
    return 0;
bad_split:
    sim_api_error(req, 400, CODE_BAD_REQUEST,
                  "SplitByWaitTime must be up to 10 comma-separated positive integers");
    return -1;
}
