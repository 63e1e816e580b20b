/*
 * dialer_parse.h - the bodies of the dialer API (dialer.c): POST /slots
 * {"route", "ttlSeconds"} and POST /calls/outbound {"route", "number",
 * "variables"}, and the ids in their paths. Strict: unknown members, wrong
 * types and values out of bounds are refused with a reason for the 400.
 * Pure: no I/O; fuzz target dialer.
 *
 * Ownership: gate_outbound_req.variables is malloc'd (compact JSON, "{}"
 * when absent) and freed by gate_outbound_req_free().
 */
#ifndef CG_GATE_DIALER_PARSE_H
#define CG_GATE_DIALER_PARSE_H

#include <stddef.h>

#define GATE_SLOT_TTL_MIN     5
#define GATE_SLOT_TTL_MAX     86400
#define GATE_SLOT_TTL_DEFAULT 600
/* variableValues of an outbound call, serialised. */
#define GATE_VARIABLES_MAX 8192
/* Ids callgate mints: 32 hex digits; paths accept 1-64 of [A-Za-z0-9_-]. */
#define GATE_DIALER_ID_MAX 64

struct gate_slot_req {
    char route[33];
    long ttl_s;
};

struct gate_outbound_req {
    char route[33];
    char number[17];
    char *variables;
};

/* 0, or -1 with a reason in err. */
int gate_parse_slot_req(const char *body, size_t len, struct gate_slot_req *out, char *err,
                        size_t errlen);
int gate_parse_outbound_req(const char *body, size_t len, struct gate_outbound_req *out, char *err,
                            size_t errlen);
void gate_outbound_req_free(struct gate_outbound_req *r);
/* POST /slots/{id}/renew: an empty body, or {"ttlSeconds": N}; *ttl_s
 * keeps its value when none is given. */
int gate_parse_renew_req(const char *body, size_t len, long *ttl_s, char *err, size_t errlen);
/* Whether id may name a slot or an outbound call. */
int gate_dialer_id_valid(const char *id, size_t len);

#endif
