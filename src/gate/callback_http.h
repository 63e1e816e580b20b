/*
 * callback_http.h - the HTTP side of queued callbacks (docs/ARCHITECTURE.md,
 * "Callbacks"): the offer in the hold answer, the keypad (/callback-keypad),
 * the caller who calls again while a callback is pending (/incoming, then
 * /callback-pending), the callback caller leaving Twilio's queue
 * (/queue-exit with QueueResult=leave), and the outbound leg's answer
 * (/callback-answer) and status (/callback-status) webhooks.
 *
 * Every route is a Twilio webhook: the signature is checked before
 * anything else (403, nothing changed); a request without what it needs
 * gets 400. The decisions are callback.c's, the Redis steps callback.lua's.
 *
 * Ownership: returned TwiML is malloc'd for the caller. A function taking
 * req either answers it (now or later) and returns 0, or returns -1 having
 * done nothing with it.
 */
#ifndef CG_GATE_CALLBACK_HTTP_H
#define CG_GATE_CALLBACK_HTTP_H

struct cg_gate;
struct cg_httpd;
struct cg_http_req;

/* The hold answer with the callback offer around the announcement say,
 * when gate_callback_should_offer says so for a caller from `from` whose
 * estimate is ewt_s; NULL otherwise (callbacks off, no callable number,
 * outside CALLBACK_HOURS). */
char *gate_callback_hold_twiml(struct cg_gate *g, const char *from, double ewt_s, const char *say);

/* An arrival (/incoming) from a number with a callback pending hears so and
 * may wait on the line in the callback's place instead; any other arrival
 * goes on to gate_arrive. -1 when callbacks are off or from cannot be
 * called back (the caller then runs gate_arrive itself). */
int gate_callback_arrive(struct cg_gate *g, struct cg_http_req *req, const char *sid,
                         const char *from, const char *to);

/* /queue-exit with QueueResult=leave: a caller who accepted a callback is
 * hung up on (the confirmation was said), an overflowed one gets the
 * overflow treatment. -1 when the record cannot be asked for. */
int gate_callback_left(struct cg_gate *g, struct cg_http_req *req, const char *sid);

/* Registers /callback-keypad, /callback-pending, /callback-answer and
 * /callback-status. 0 or -1. */
int gate_callback_register(struct cg_httpd *httpd, struct cg_gate *g);

#endif
