/*
 * hold.h - the hold answer for a TaskRouter caller's <Enqueue> waitUrl
 * (?taskQueueSid=WQ...): hold TwiML announcing that TaskQueue's estimated
 * wait from the wait-time service, or plain hold music when the queue is
 * unknown or nothing is known yet. Uses only the public API of waittime.h.
 */
#ifndef CG_WAITTIME_HOLD_H
#define CG_WAITTIME_HOLD_H

struct cg_config;
struct cg_http_req;
struct cg_waittime;

/* Answers req (which passed the Twilio webhook checks) for queue_sid, with
 * the header X-Callgate-Estimated-Wait when an estimate is announced. wt
 * may be NULL: hold music. */
void cg_waittime_hold_reply(const struct cg_config *cfg, struct cg_waittime *wt,
                            struct cg_http_req *req, const char *queue_sid);

#endif
