/*
 * access.h - who may use the gate's operator endpoints: the admin API
 * (/process-queue, /admin/limit) and the operator's view (/queue,
 * /reports/events.*), which shows callers' numbers (masked) and business
 * figures. One rule for all of them, written once in access.c.
 */
#ifndef CG_GATE_ACCESS_H
#define CG_GATE_ACCESS_H

struct cg_gate;
struct cg_http_req;

/* 1 when req may use an operator endpoint. Otherwise req has been answered
 * (401 with WWW-Authenticate, or 403) and 0 is returned. With ADMIN_TOKEN
 * set, the request must carry it as "Authorization: Bearer", or, when
 * query_token_ok, as ?token= (a wallboard on a TV browser cannot set
 * headers). Without ADMIN_TOKEN, loopback peers only, and only while
 * PUBLIC_URL is itself a loopback address. */
int gate_admin_ok(struct cg_gate *g, struct cg_http_req *req, int query_token_ok);

#endif
