/*
 * hist.h - a latency histogram in the manner of HdrHistogram: log-linear
 * buckets (every power of two split into 64 linear sub-buckets), so any
 * recorded value is known to within 1/64 (1.6%) from 1 ns to hours, in a
 * fixed 19 KiB array, with O(1) recording. Percentiles are read by walking
 * the buckets, so recording never allocates or sorts.
 */
#ifndef CGB_HIST_H
#define CGB_HIST_H

#include <stddef.h>
#include <stdint.h>

#define CGB_HIST_SUB     64 /* linear sub-buckets per power of two */
#define CGB_HIST_BUCKETS (2 * CGB_HIST_SUB + 58 * CGB_HIST_SUB)

struct cgb_hist {
    uint64_t counts[CGB_HIST_BUCKETS];
    uint64_t n;
    uint64_t min_ns, max_ns;
    double sum_ns;
};

void cgb_hist_init(struct cgb_hist *h);
void cgb_hist_record(struct cgb_hist *h, uint64_t ns);
/* Value at percentile p (0 < p <= 100), nearest rank, as the midpoint of
 * its bucket (the exact maximum for p = 100); 0 when empty. */
uint64_t cgb_hist_percentile(const struct cgb_hist *h, double p);
double cgb_hist_mean(const struct cgb_hist *h);

#endif
