/*
 * endpoints.h - the gate's HTTP face: Twilio's voice webhook (/incoming),
 * the <Enqueue> action (/queue-exit), Twilio's status callback
 * (/call-status), Vapi's server messages (/call-ended), the operator's
 * /process-queue and /admin/limit, the queue log's export
 * (/reports/events.json and .csv, reports.h), and the gate's half of the
 * <Enqueue> waitUrl (/queue-wait).
 *
 * The app owns the routing: it registers these routes on its server, and
 * registers /queue-wait and /queue (queue_view.h) itself (TaskRouter callers get the wait-time
 * service's hold answer, everyone else cg_gate_queue_wait). Every request
 * is answered exactly once; the gate must outlive the server's requests.
 */
#ifndef CG_GATE_ENDPOINTS_H
#define CG_GATE_ENDPOINTS_H

struct cg_form;
struct cg_gate;
struct cg_http_req;
struct cg_httpd;

/* Registers every route above but /queue-wait and /queue. 0, or -1 when the server
 * refuses one. */
int cg_gate_endpoints_register(struct cg_httpd *httpd, struct cg_gate *g);

/* Answers a gate caller's waitUrl request: their position and estimated
 * wait, hold music, <Leave> once they waited too long. req must have passed
 * the Twilio webhook checks (cg_twhook_check), which gave form and sid. */
void cg_gate_queue_wait(struct cg_gate *g, struct cg_http_req *req, const struct cg_form *form,
                        const char *sid);

#endif
