/*
 * metrics.h - a small Prometheus registry rendered in the text exposition
 * format 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8).
 *
 * Families are declared once at startup; series (one per label set) are
 * created on first use and found through a hash table, since updates run on
 * every webhook. Label sets are canonicalised (pairs sorted by name), so
 * `a="1",b="2"` and `b="2",a="1"` are one series and the output never holds
 * a duplicate that would fail the whole scrape.
 *
 * Bounds: at most CG_METRICS_MAX_FAMILIES families and
 * CG_METRICS_MAX_SERIES series per family. Past that, updates go to one
 * extra series labelled `overflow="true"` (logged once per family), so a
 * flood of distinct label values (error codes, peer input) cannot grow
 * memory. A label set longer than CG_METRICS_MAX_LABELS bytes or not of the
 * form `name="escaped value",...` is dropped (logged once per family).
 *
 * Misuse is ignored and logged once, never fatal: updating an undeclared
 * family (logged once per name, for the first 32 names), set on a
 * histogram, observe on a counter or gauge, inc of a counter by a negative
 * or non-finite amount, observing NaN.
 *
 * Ownership: the registry copies every string it keeps; callers keep
 * theirs. Single-threaded, like the rest of callgate.
 */
#ifndef CG_METRICS_H
#define CG_METRICS_H

#include <stddef.h>

#include "base/buf.h"

#define CG_METRICS_MAX_FAMILIES 256
#define CG_METRICS_MAX_SERIES   1000
#define CG_METRICS_MAX_BUCKETS  64
#define CG_METRICS_MAX_NAME     200
#define CG_METRICS_MAX_HELP     1024
#define CG_METRICS_MAX_LABELS   1024

struct cg_metrics;
enum cg_metric_type { CG_COUNTER, CG_GAUGE, CG_HISTOGRAM };

struct cg_metrics *cg_metrics_new(void);
/* NULL is a no-op. */
void cg_metrics_free(struct cg_metrics *m);

/* Declares a family. name matches [a-zA-Z_:][a-zA-Z0-9_:]*; help may be NULL
 * (rendered empty). buckets only for histograms: finite, strictly ascending,
 * at most CG_METRICS_MAX_BUCKETS, +Inf implied (NULL/0 gives only +Inf); the
 * array is copied. Returns 0, or -1 for a bad argument, a duplicate name or
 * a full registry. Declaring creates no series: call
 * cg_metrics_inc(m, name, NULL, 0) to export an unlabelled 0 before the
 * first event. */
int cg_metrics_declare(struct cg_metrics *m, const char *name, enum cg_metric_type type,
                       const char *help, const double *buckets, size_t nbuckets);

/* labels: NULL/"" or a rendered set like `outcome="connected",signal="vapi"`
 * (build it with cg_metrics_label()). Histograms may not use the label `le`.
 * inc: counters and gauges (counters only by v >= 0). set: gauges, and
 * counters that mirror a total kept elsewhere (Redis). observe: histograms. */
void cg_metrics_inc(struct cg_metrics *m, const char *name, const char *labels, double v);
void cg_metrics_set(struct cg_metrics *m, const char *name, const char *labels, double v);
void cg_metrics_observe(struct cg_metrics *m, const char *name, const char *labels, double v);

/* Appends `key="escaped value"` to b (join several with ','): backslash,
 * double quote and newline are escaped as the format requires, invalid
 * UTF-8 becomes U+FFFD, value NULL reads as "". key is written as given.
 * If b cannot take it all, b is left unchanged. */
void cg_metrics_label(struct cg_buf *b, const char *key, const char *value);

/* Appends every family to out, families sorted by name, series by label set
 * (byte order): # HELP, # TYPE, then samples; histograms as cumulative
 * _bucket{...,le=".."} lines ending with le="+Inf", then _sum and _count.
 * Integral values print without decimals, others as the shortest %.17g-exact
 * decimal; +Inf, -Inf and NaN as Prometheus spells them. Stops at out's
 * ceiling (the output is then cut at a line boundary). */
void cg_metrics_render(const struct cg_metrics *m, struct cg_buf *out);

#endif
