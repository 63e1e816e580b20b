/*
 * vapi/call_list.h - the answer of Vapi's GET /call (CallController_findAll):
 * a plain JSON array of Call objects, read into the few fields the gate's
 * repair needs (which calls are live, and the Twilio CallSid and gate each
 * carries in its metadata). Pure: no I/O; a fuzz target
 * (tests/fuzz/fuzz_vapi_list.c).
 *
 * Ownership: every string of a parsed entry points into *root, which the
 * caller json_decref()s after it is done with the entries; the entry array
 * is malloc'd and freed by the caller with free().
 */
#ifndef CG_VAPI_CALL_LIST_H
#define CG_VAPI_CALL_LIST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Most entries one page may hold (the endpoint's own maximum "limit"). */
#define CG_VAPI_LIST_MAX 1000

struct cg_vapi_listed_call {
    const char *id;     /* never NULL or empty */
    const char *status; /* NULL when absent */
    /* status present and not "ended": Vapi still counts the call. A call
     * without a status is counted too (unknown is not over). */
    int live;
    uint64_t created_ms; /* createdAt; 0 when absent or not a date */
    /* assistantOverrides.metadata.twilioCallSid, else phoneCallProviderId,
     * when it is a CA SID; NULL for calls callgate did not create. */
    const char *twilio_call_sid;
    long attempt;                /* assistantOverrides.metadata.callgateAttempt, 0 when absent */
    const char *gate;            /* assistantOverrides.metadata.callgateGate, or NULL */
    const char *customer_number; /* customer.number, or NULL */
};

/* Parses a list answer. Entries that are not objects or have no string id
 * are skipped (counted in *skipped). Returns 0 with *calls (malloc'd, NULL
 * when *n is 0), *n and *root set; -1 with err filled (nothing to free) when
 * the body is not JSON, nests deeper than CG_JSON_MAX_DEPTH, is not an
 * array, or holds more than CG_VAPI_LIST_MAX entries. */
int cg_vapi_parse_call_list(const char *body, size_t len, struct cg_vapi_listed_call **calls,
                            size_t *n, size_t *skipped, json_t **root, char *err, size_t errlen);

#endif
