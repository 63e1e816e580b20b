/*
 * reports.h - the queue log export: GET /reports/events.json and
 * GET /reports/events.csv ?from=&to= (ISO-8601 UTC; default the last hour;
 * from inclusive, to exclusive), read from the stream cg:{g}:log by time
 * in pages of CG_GATE_REPORT_PAGE entries. One row per log entry: time,
 * event (ENTER, ADMIT, CONNECT, REQUEUE, ABANDON, OVERFLOW, RELEASE,
 * ORPHAN), CallSid, position, wait in seconds, reason. Callers' numbers,
 * which the log's ENTER entries hold, are never exported.
 *
 * The answer is streamed (net/httpd.h's streamed replies): each page's
 * rows are sent before the next page is read, and the next waits while the
 * client has not read most of them, so an export of any length holds about
 * one page in memory. The first page is read before the answer starts (a
 * Redis failure then is a 503); a failure later ends the answer early (in
 * JSON, "complete": false). JSON: {"from","to","events":[...],"count",
 * "complete"}.
 *
 * GET /reports/intervals.csv ?from=&to= (default today, 00:00 UTC, to now;
 * widened to whole 15-minute intervals; at most 7 days): one row per
 * interval with the figures of figures.h, from the same log and the
 * occupancy samples of board.lua.
 *
 * Access: access.h, the token also as ?token=. Every request is answered
 * exactly once, after the handler returned; the gate must outlive the
 * server's requests and streams.
 */
#ifndef CG_GATE_REPORTS_H
#define CG_GATE_REPORTS_H

struct cg_gate;
struct cg_httpd;

#define CG_GATE_REPORT_PAGE 500

/* Registers the three routes. 0, or -1 when the server refuses one. */
int gate_reports_register(struct cg_httpd *httpd, struct cg_gate *g);

#endif
