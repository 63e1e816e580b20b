/*
 * queue_view.h - the operator's live view of the gate, GET /queue: the
 * effective limit, every slot held, every caller waiting in order with
 * their wait and their estimated wait (the hold announcement's estimate),
 * read from Redis in one script (queue.lua), so that the lists and the
 * figures agree. Callers' numbers are shown as "***" and their last four
 * digits; the whole number never leaves Redis for this view.
 *
 * The app owns the route, because the answer joins the two services: the
 * gate writes its part and calls the app's extra callback to add members of
 * its own (the wait-time service's TaskQueues) before the object closes.
 * The answer is JSON; docs/ARCHITECTURE.md and README.md give its shape.
 *
 * Callback rules: extra (may be NULL) is called at most once, later, from
 * the loop, with the reply's buffer; it appends ","-led members and returns
 * 0, or -1 when the buffer refused them (the request is then answered 500).
 * extra_arg must stay valid until the request is answered.
 */
#ifndef CG_GATE_QUEUE_VIEW_H
#define CG_GATE_QUEUE_VIEW_H

#include "net/redis.h"

struct cg_buf;
struct cg_gate;
struct cg_http_req;

/* How many slots and how many waiting callers /queue lists at most; the
 * counts are always the totals. */
#define CG_GATE_VIEW_MAX_LISTED 500

typedef int (*cg_gate_view_extra)(struct cg_buf *out, void *arg);

/* Answers GET /queue: the access rule of access.h (a token also as
 * ?token=), then the view; 503 when Redis is unavailable. */
void cg_gate_queue_reply(struct cg_gate *g, struct cg_http_req *req, cg_gate_view_extra extra,
                         void *extra_arg);

/* ---- for the gate's own files ---- */

/* Writes the view of queue.lua's reply r as one JSON object into b (the
 * board's snapshot uses it too); with_time adds "generatedAt". brief, for
 * the board, leaves out identifiers a wallboard does not show (slot,
 * callSid, connectedAt, vapiCallId) and gives listMax as the callers
 * listed. extra as above, called before the object closes. 0, -1 when b
 * refused it, -2 when r is not a queue.lua reply. */
int gate_queue_view_json(struct cg_gate *g, const redisReply *r, int with_time, int brief,
                         cg_gate_view_extra extra, void *extra_arg, struct cg_buf *b);

/* What the wait estimate of one waiting caller is computed from: the
 * figures position.lua gives the hold announcement, and queue.lua /queue. */
struct gate_ewt_figures {
    long long position;   /* 1-based */
    long long limit;      /* effective limit */
    long long active;     /* slots held */
    long long service_ms; /* mean slot-hold time; <= 0 unknown */
    long long abandoned;  /* the stats hash's counts */
    long long connected;
    long long waited_ms;    /* this caller's wait */
    long long head_wait_ms; /* the head of the queue's wait */
    long long admit_ms;     /* mean admission latency; <= 0 unknown */
};

/* The caller's estimated wait in seconds (cg_ewt_seconds with the gate's
 * configuration): the one estimate announced and shown. */
double gate_estimate_seconds(const struct cg_gate *g, const struct gate_ewt_figures *f);
/* The same from position.lua's reply for a waiting caller. */
double gate_estimate_of_position(const struct cg_gate *g, const redisReply *r);
/* The wait such a caller will not exceed 9 times in 10
 * (cg_ewt_bound_seconds): what a callback's promise is made of. */
double gate_bound_of_position(const struct cg_gate *g, const redisReply *r);

#endif
