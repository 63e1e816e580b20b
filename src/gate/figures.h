/*
 * figures.h - the gate's service-level figures, computed from the queue
 * log (cg:{g}:log) and the slot-occupancy samples: pure functions, no I/O,
 * so that the definitions are written once and tested against hand-made
 * logs. The board (board.h) and the interval report (reports.c) feed them.
 *
 * Definitions (README.md "Service-level figures" says the same to users).
 * An event counts in the window that holds its time: an arrival at its
 * ENTER, an answer at its CONNECT, an abandon at its ABANDON.
 *   offered          ENTER entries (every caller who reached the gate,
 *                    those refused at once for a full queue included)
 *   connected        CONNECT entries; their wait is the speed of answer
 *   connectedInSL    connected with a wait at or under the service-level
 *                    threshold
 *   abandoned        ABANDON entries with a wait at or over the short-
 *                    abandon threshold
 *   shortAbandoned   ABANDON entries under it (callers who hung up at once:
 *                    counted apart, left out of the service level)
 *   overflowed       OVERFLOW entries (queue full, waited too long, or
 *                    admission refused for good)
 *   serviceLevel     connectedInSL / (connected + abandoned + overflowed),
 *                    null while that is 0
 *   asa              mean speed of answer in seconds, null without answers
 *   p90              90th percentile of the speed of answer, nearest rank
 *                    (the smallest wait that at least 90% of answers did
 *                    not exceed), null without answers
 *   occupancy        slot-seconds in use / slot-seconds of the limit, from
 *                    one sample per second (null without samples)
 *
 * Time is Redis' (the log's stream ids); days and 15-minute intervals are
 * UTC (a quarter hour is the same in every time zone of whole quarter
 * hours; "today" starts at 00:00 UTC).
 *
 * Ownership: nothing returned is allocated.
 */
#ifndef CG_GATE_FIGURES_H
#define CG_GATE_FIGURES_H

#include <stddef.h>
#include <stdint.h>

struct cg_buf;

#define GATE_FIG_INTERVAL_MS (15LL * 60 * 1000)
#define GATE_FIG_DAY_MS      (24LL * 3600 * 1000)

enum gate_fig_kind {
    FIG_NONE = 0, /* a log entry the figures do not use */
    FIG_ENTER,
    FIG_CONNECT,
    FIG_ABANDON,
    FIG_OVERFLOW,
};

/* One log entry as the figures see it. */
struct gate_fig_event {
    int64_t ms;      /* the entry's time (its stream id) */
    int64_t wait_ms; /* CONNECT, ABANDON, OVERFLOW: the wait; else 0 */
    int kind;        /* enum gate_fig_kind */
};

struct gate_fig_params {
    int64_t service_level_ms; /* SERVICE_LEVEL_SECONDS */
    int64_t short_abandon_ms; /* SHORT_ABANDON_SECONDS */
};

struct gate_figures {
    int64_t from_ms, to_ms; /* [from, to) */
    long offered, connected, connected_in_sl, abandoned, short_abandoned, overflowed;
    double service_level; /* 0..1, or -1 when undefined */
    double asa_s;         /* -1 when undefined */
    double p90_s;         /* -1 when undefined */
    double occupancy;     /* 0..1, or -1 without samples */
};

/* The kind of a log entry from its "ev" field (NULL reads as FIG_NONE). */
enum gate_fig_kind gate_fig_kind_of(const char *ev);

/* Figures over events [from, to). events are sorted by time (as the log
 * is); busy and cap are the occupancy samples' sums over the window (slot
 * counts, one sample per second), cap 0 for none. */
void gate_figures_compute(const struct gate_fig_event *events, size_t n, int64_t from_ms,
                          int64_t to_ms, const struct gate_fig_params *p, double busy, double cap,
                          struct gate_figures *out);

/* The nearest-rank percentile q (0 < q <= 1) of n values, which are sorted
 * in place; -1 when n is 0. */
int64_t gate_fig_percentile(int64_t *values, size_t n, double q);

/* The start of the 15-minute interval and of the (UTC) day holding ms. */
int64_t gate_fig_interval_start(int64_t ms);
int64_t gate_fig_day_start(int64_t ms);

/* Appends the figures as a JSON object (no surrounding comma):
 * {"from":..,"to":..,"offered":..,...}. Returns 0 or -1 (buffer full). */
int gate_figures_json(struct cg_buf *b, const struct gate_figures *f);
/* The CSV header line of gate_figures_csv_row, CRLF-terminated. */
extern const char gate_figures_csv_header[];
/* Appends one CSV row (CRLF-terminated). Returns 0 or -1. */
int gate_figures_csv_row(struct cg_buf *b, const struct gate_figures *f);

#endif
