/*
 * reports.h - the queue log export: GET /reports/events.json and
 * GET /reports/events.csv ?from=&to= (ISO-8601 UTC; default the last hour;
 * from inclusive, to exclusive), read from the stream cg:{g}:log by time
 * in pages of CG_GATE_REPORT_PAGE entries. One row per log entry: time,
 * event (ENTER, ADMIT, CONNECT, REQUEUE, ABANDON, OVERFLOW, RELEASE,
 * ORPHAN), CallSid, position, wait in seconds, reason. Callers' numbers,
 * which the log's ENTER entries hold, are never exported.
 *
 * The HTTP server answers with whole bodies (no streaming), so one answer
 * holds at most CG_GATE_REPORT_MAX_ROWS rows, cut between two milliseconds;
 * a longer range is answered in part, with X-Callgate-Truncated: true and
 * X-Callgate-Next-From naming where the next request starts (in the JSON
 * also as "truncated" and "nextFrom"). Access: access.h, the token also as
 * ?token=. Every request is answered exactly once, after the handler
 * returned; the gate must outlive the server's requests.
 */
#ifndef CG_GATE_REPORTS_H
#define CG_GATE_REPORTS_H

struct cg_gate;
struct cg_httpd;

#define CG_GATE_REPORT_PAGE     500
#define CG_GATE_REPORT_MAX_ROWS 10000

/* Registers both routes. 0, or -1 when the server refuses one. */
int gate_reports_register(struct cg_httpd *httpd, struct cg_gate *g);

#endif
