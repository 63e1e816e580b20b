/*
 * hist.c - see hist.h. Values below 2 * SUB are their own bucket (exact);
 * above, a value with its highest set bit at position m lands in the group
 * of shift s = m - 6, at sub-bucket (v >> s) - SUB, so the bucket width is
 * 2^s, at most 1/64 of the value.
 */
#include "base/fmacros.h"

#include "hist.h"

#include <math.h>
#include <string.h>

static size_t index_of(uint64_t v)
{
    if (v < 2 * CGB_HIST_SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6; /* v >> shift is in [64, 127] */
    size_t idx = 2 * CGB_HIST_SUB + (size_t)(shift - 1) * CGB_HIST_SUB +
                 (size_t)((v >> shift) - CGB_HIST_SUB);
    return idx < CGB_HIST_BUCKETS ? idx : CGB_HIST_BUCKETS - 1;
}

/* Midpoint of bucket idx. */
static uint64_t value_of(size_t idx)
{
    if (idx < 2 * CGB_HIST_SUB)
        return idx;
    size_t rel = idx - 2 * CGB_HIST_SUB;
    int shift = (int)(rel / CGB_HIST_SUB) + 1;
    uint64_t mant = (uint64_t)(rel % CGB_HIST_SUB) + CGB_HIST_SUB;
    uint64_t lo = mant << shift;
    return lo + ((1ULL << shift) >> 1);
}

void cgb_hist_init(struct cgb_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

void cgb_hist_record(struct cgb_hist *h, uint64_t ns)
{
    h->counts[index_of(ns)]++;
    h->n++;
    h->sum_ns += (double)ns;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

uint64_t cgb_hist_percentile(const struct cgb_hist *h, double p)
{
    if (h->n == 0)
        return 0;
    if (p >= 100.0)
        return h->max_ns;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < CGB_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            /* A bucket's midpoint can lie past the largest value seen. */
            uint64_t v = value_of(i);
            return v > h->max_ns ? h->max_ns : v;
        }
    }
    return h->max_ns;
}

double cgb_hist_mean(const struct cgb_hist *h)
{
    return h->n ? h->sum_ns / (double)h->n : 0;
}
