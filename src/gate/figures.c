/*
 * figures.c - the service-level figures (figures.h): pure computation.
 */
#include "base/fmacros.h"

#include "gate/figures.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"

enum gate_fig_kind gate_fig_kind_of(const char *ev)
{
    if (ev == NULL)
        return FIG_NONE;
    if (strcmp(ev, "ENTER") == 0)
        return FIG_ENTER;
    if (strcmp(ev, "CONNECT") == 0)
        return FIG_CONNECT;
    if (strcmp(ev, "ABANDON") == 0)
        return FIG_ABANDON;
    if (strcmp(ev, "OVERFLOW") == 0)
        return FIG_OVERFLOW;
    return FIG_NONE;
}

int64_t gate_fig_interval_start(int64_t ms)
{
    int64_t r = ms % GATE_FIG_INTERVAL_MS;
    return ms - (r < 0 ? r + GATE_FIG_INTERVAL_MS : r);
}

int64_t gate_fig_day_start(int64_t ms)
{
    int64_t r = ms % GATE_FIG_DAY_MS;
    return ms - (r < 0 ? r + GATE_FIG_DAY_MS : r);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t gate_fig_percentile(int64_t *values, size_t n, double q)
{
    if (n == 0)
        return -1;
    qsort(values, n, sizeof *values, cmp_i64);
    /* Nearest rank: the ceil(q * n)-th smallest, 1-based. A little slack
     * keeps 0.9 * 10 from becoming 9.000000000000002 and rank 10. */
    double r = q * (double)n - 1e-9;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return values[rank - 1];
}

/* The first event at or after ms (events sorted by time). */
static size_t lower_bound(const struct gate_fig_event *ev, size_t n, int64_t ms)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ev[mid].ms < ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void gate_figures_compute(const struct gate_fig_event *events, size_t n, int64_t from_ms,
                          int64_t to_ms, const struct gate_fig_params *p, double busy, double cap,
                          struct gate_figures *out)
{
    memset(out, 0, sizeof *out);
    out->from_ms = from_ms;
    out->to_ms = to_ms;
    size_t a = lower_bound(events, n, from_ms), b = lower_bound(events, n, to_ms);
    int64_t *waits = NULL;
    size_t nwaits = 0;
    double wait_sum = 0;
    for (size_t i = a; i < b; i++) {
        const struct gate_fig_event *e = &events[i];
        switch (e->kind) {
        case FIG_ENTER:
            out->offered++;
            break;
        case FIG_CONNECT:
            if (waits == NULL)
                waits = cg_malloc((b - i) * sizeof *waits);
            waits[nwaits++] = e->wait_ms;
            wait_sum += (double)e->wait_ms;
            out->connected++;
            if (e->wait_ms <= p->service_level_ms)
                out->connected_in_sl++;
            break;
        case FIG_ABANDON:
            if (e->wait_ms < p->short_abandon_ms)
                out->short_abandoned++;
            else
                out->abandoned++;
            break;
        case FIG_OVERFLOW:
            out->overflowed++;
            break;
        default:
            break;
        }
    }
    long denom = out->connected + out->abandoned + out->overflowed;
    out->service_level = denom > 0 ? (double)out->connected_in_sl / (double)denom : -1;
    out->asa_s = nwaits > 0 ? wait_sum / (double)nwaits / 1000.0 : -1;
    int64_t p90 = gate_fig_percentile(waits, nwaits, 0.9);
    out->p90_s = p90 >= 0 ? (double)p90 / 1000.0 : -1;
    out->occupancy = cap > 0 ? busy / cap : -1;
    if (out->occupancy > 1)
        out->occupancy = 1;
    free(waits);
}

static int num_or_null(struct cg_buf *b, const char *key, double v, int decimals)
{
    if (v < 0)
        return cg_buf_printf(b, ",\"%s\":null", key);
    return cg_buf_printf(b, ",\"%s\":%.*f", key, decimals, v);
}

int gate_figures_json(struct cg_buf *b, const struct gate_figures *f)
{
    char from[25], to[25];
    cg_iso8601_ms((uint64_t)f->from_ms, from);
    cg_iso8601_ms((uint64_t)f->to_ms, to);
    int rc = cg_buf_printf(b,
                           "{\"from\":\"%s\",\"to\":\"%s\",\"offered\":%ld,\"connected\":%ld,"
                           "\"connectedInServiceLevel\":%ld,\"abandoned\":%ld,"
                           "\"shortAbandoned\":%ld,\"overflowed\":%ld",
                           from, to, f->offered, f->connected, f->connected_in_sl, f->abandoned,
                           f->short_abandoned, f->overflowed);
    rc |= num_or_null(b, "serviceLevel", f->service_level, 4);
    rc |= num_or_null(b, "asaSeconds", f->asa_s, 2);
    rc |= num_or_null(b, "p90AnswerSeconds", f->p90_s, 2);
    rc |= num_or_null(b, "occupancy", f->occupancy, 4);
    return rc | cg_buf_appendc(b, '}');
}

const char gate_figures_csv_header[] =
    "intervalStart,intervalEnd,offered,connected,connectedInServiceLevel,abandoned,"
    "shortAbandoned,overflowed,serviceLevel,asaSeconds,p90AnswerSeconds,occupancy\r\n";

static int csv_num(struct cg_buf *b, double v, int decimals)
{
    if (v < 0)
        return cg_buf_appendc(b, ',');
    return cg_buf_printf(b, ",%.*f", decimals, v);
}

int gate_figures_csv_row(struct cg_buf *b, const struct gate_figures *f)
{
    char from[25], to[25];
    cg_iso8601_ms((uint64_t)f->from_ms, from);
    cg_iso8601_ms((uint64_t)f->to_ms, to);
    int rc = cg_buf_printf(b, "%s,%s,%ld,%ld,%ld,%ld,%ld,%ld", from, to, f->offered, f->connected,
                           f->connected_in_sl, f->abandoned, f->short_abandoned, f->overflowed);
    rc |= csv_num(b, f->service_level, 4);
    rc |= csv_num(b, f->asa_s, 2);
    rc |= csv_num(b, f->p90_s, 2);
    rc |= csv_num(b, f->occupancy, 4);
    return rc | cg_buf_appends(b, "\r\n");
}
