/*
 * board.h - the operator's live board: one shared tick per process reads
 * the gate's state and figures from Redis (queue.lua and board.lua: two
 * scripts a tick, however many viewers watch; with routes and viewers,
 * route_figures.lua too, for the snapshot's "routes"), keeps the queue log of
 * today and the last hour in memory (read incrementally, entry ids after
 * the last one seen), computes the service-level figures (figures.h), sets
 * them in /metrics, and sends one JSON snapshot to every viewer of
 * GET /events (server-sent events) when it changed. GET /wallboard serves
 * the page (wallboard.html, compiled in) that shows it.
 *
 * /events: "retry: 2000", then the latest snapshot ("event: snapshot",
 * one JSON document on one data line), then each changed snapshot; an
 * "event: stale" (data {"reason":...}) when Redis cannot be read; a
 * comment line and an "event: ping" (the page sees events, not comments)
 * every BOARD_HEARTBEAT_MS of silence; "event: bye", then the stream's
 * end, after EVENTS_STREAM_MAX_SECONDS (EventSource reconnects by itself,
 * so a load balancer can move viewers and a changed ADMIN_TOKEN is asked
 * for again). A viewer whose unsent
 * bytes would exceed BOARD_VIEWER_MAX_PENDING (besides the socket's own
 * buffer, capped at BOARD_VIEWER_SNDBUF) is dropped and counted in
 * callgate_events_viewers_dropped_total. Access: the rule
 * of access.h, the token also as ?token= (EventSource cannot set headers).
 *
 * Ownership: the board borrows the gate, the server and the registry; it
 * must be freed (cg_gate_board_free, which ends every viewer's stream)
 * before the gate and the Redis connection. extra (may be NULL) adds
 * members to the snapshot's queue object as in queue_view.h, once a tick.
 */
#ifndef CG_GATE_BOARD_H
#define CG_GATE_BOARD_H

#include <stddef.h>

#include "gate/queue_view.h"

struct cg_buf;
struct cg_gate;
struct cg_httpd;
struct cg_metrics;
struct gate_board;

#define BOARD_TICK_MS      1000
#define BOARD_HEARTBEAT_MS 10000
/* A snapshot is a few KB to a few tens of KB: 256 KiB is tens of seconds
 * of them, past which the viewer shows stale figures anyway. */
#define BOARD_VIEWER_MAX_PENDING (256u << 10)
/* The kernel's share of a viewer's unsent bytes (SO_SNDBUF). */
#define BOARD_VIEWER_SNDBUF (64 << 10)

/* Registers GET /events and GET /wallboard and starts the tick. NULL when
 * a route or the timer cannot be set up. */
struct gate_board *cg_gate_board_new(struct cg_gate *g, struct cg_httpd *httpd,
                                     struct cg_metrics *metrics, cg_gate_view_extra extra,
                                     void *extra_arg);
void cg_gate_board_free(struct gate_board *b);

/* Appends ,"figures":{...} (today, the last 15 minutes, the last hour, as
 * of the last tick) for GET /queue. 0, or -1 when b refused it. */
int cg_gate_board_figures_json(const struct gate_board *b, struct cg_buf *out);

/* Viewers connected to /events now. */
size_t cg_gate_board_viewers(const struct gate_board *b);

#endif
