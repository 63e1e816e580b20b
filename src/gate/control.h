/*
 * control.h - call control delegated by Vapi (the phone-call-control server
 * message) and its aftermath: the assistant forwards its caller to a number
 * or a SIP address (<Dial>), hands them to the human queue (<Enqueue
 * workflowSid> into TaskRouter, for destinations in HANDOFF_NUMBERS), or
 * hangs up (Calls update Status=completed). Twilio's answer to the pushed
 * TwiML decides what follows:
 *   taken     the assistant has left: the call goes to 'ending' with the
 *             end grace as its lease (control.lua), and Vapi's own end
 *             releases the slot and admits the next caller (end.lua);
 *   gone      the caller hung up meanwhile: logged and counted; the status
 *             callback (or the sweep) settles the slot;
 *   refused   any other refusal: logged and counted, and the caller hears
 *             TRANSFER_FAILED_MESSAGE before the call ends (a second
 *             update); only if that too is refused do they stay with the
 *             assistant, whose TwiML Twilio never replaced.
 * A <Dial> or <Enqueue> that fails later (busy, no answer, queue error)
 * comes back on /transfer-status, Twilio's action URL for both verbs, and
 * gets the same message.
 *
 * Callbacks and ownership: gate_control_handle() answers the request
 * exactly once, possibly after returning, and takes the JSON root.
 */
#ifndef CG_GATE_CONTROL_H
#define CG_GATE_CONTROL_H

#include <jansson.h>

struct cg_gate;
struct cg_http_req;
struct cg_httpd;
struct cg_vapi_event;

/* An authenticated phone-call-control message for Vapi call ev->call_id.
 * Answers 400 (malformed; nothing changed), 503 (Redis unavailable), or
 * 200 {"ok":true,"result":word} with word forwarded, queued, hung-up,
 * refused, caller-gone, unknown or ignored (the call is not with the
 * assistant any more). */
void gate_control_handle(struct cg_gate *g, struct cg_http_req *req, const struct cg_vapi_event *ev,
                         json_t *root);

/* Registers /transfer-status and declares the control's metrics. 0, or -1
 * when the server refuses the route. */
int gate_control_register(struct cg_httpd *httpd, struct cg_gate *g);

#endif
