/*
 * dialer.h - the dialer API, behind the admin token like the admin API
 * (access.h): slots leased from a route's budget for calls callgate does
 * not place (POST /slots, POST /slots/{id}/renew, DELETE /slots/{id}) and
 * outbound calls callgate places in a route's line (POST /calls/outbound,
 * GET /calls/outbound/{id}). Bodies: dialer_parse.h; state: slots.lua and
 * outbound.lua; placing a call: outbound.h.
 */
#ifndef CG_GATE_DIALER_H
#define CG_GATE_DIALER_H

struct cg_httpd;
struct cg_gate;

/* 0, or -1 when a route cannot be registered. */
int gate_dialer_register(struct cg_httpd *httpd, struct cg_gate *g);

#endif
