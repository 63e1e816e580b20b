/*
 * vapi/control.h - the phone-call-control server message and the call's
 * serverMessages list.
 *
 * When "phone-call-control" is among a call's serverMessages, Vapi stops
 * forwarding and hanging up calls itself and asks the server instead
 * (ServerMessagePhoneCallControl): {"message":{"type":"phone-call-control",
 * "request":"forward"|"hang-up","destination":{...},"call":{...}}}. The
 * destination is a TransferDestinationNumber ("type":"number", "number",
 * optional "extension", "callerId", "message") or a TransferDestinationSip
 * ("type":"sip", "sipUri", optional "callerId", "message"); "message" is a
 * string or a CustomMessage whose "content" is the text.
 *
 * Pure, no I/O: a fuzz target (tests/fuzz/fuzz_vapi_control.c).
 *
 * Ownership: the strings of a parsed struct cg_vapi_control point into the
 * JSON root given to the parser and live as long as it does.
 */
#ifndef CG_VAPI_CONTROL_H
#define CG_VAPI_CONTROL_H

#include <stddef.h>

#include <jansson.h>

/* TransferDestinationNumber: number 3..40, extension 1..10, callerId <= 40. */
#define CG_VAPI_DEST_NUMBER_MIN 3
#define CG_VAPI_DEST_NUMBER_MAX 40
#define CG_VAPI_EXTENSION_MAX   10
#define CG_VAPI_CALLER_ID_MAX   40
/* A SIP URI is sip: or sips: and at most this many bytes. */
#define CG_VAPI_SIP_URI_MAX 256
/* Longest destination message spoken before the transfer, and longest
 * summary carried into a hand-off task: longer ones are cut (at a UTF-8
 * character boundary) so the pushed TwiML stays under Twilio's limit. */
#define CG_VAPI_CONTROL_TEXT_MAX 1000

enum cg_vapi_control_request {
    CG_VAPI_CTL_FORWARD,
    CG_VAPI_CTL_HANGUP,
};

enum cg_vapi_dest_type {
    CG_VAPI_DEST_NONE, /* hang-up */
    CG_VAPI_DEST_NUMBER,
    CG_VAPI_DEST_SIP,
};

struct cg_vapi_control {
    enum cg_vapi_control_request request;
    enum cg_vapi_dest_type dest_type;
    const char *number;    /* DEST_NUMBER: as sent, checked by cg_vapi_number_ok */
    const char *extension; /* DEST_NUMBER, or NULL: digits, '*', '#', 'w' */
    const char *sip_uri;   /* DEST_SIP: sip: or sips:, printable ASCII, no space */
    const char *caller_id; /* or NULL */
    const char *message;   /* spoken first, or NULL; may be longer than the cut */
    const char *summary;   /* message.call.analysis.summary or message.analysis.summary */
};

/* Reads message.request and message.destination of a server message whose
 * message.type is "phone-call-control" (root as cg_vapi_parse_event gives
 * it). 0 with c filled; -1 with err (never quoting the input) when the type
 * is not phone-call-control, the request is missing or unknown, a forward
 * has no usable destination (unknown type, missing or malformed number or
 * sipUri, extension or callerId out of bounds). Bytes outside the bounds
 * above are never accepted. */
int cg_vapi_parse_control(const json_t *root, struct cg_vapi_control *c, char *err, size_t errlen);

/* 1 when s is a phone number a destination may carry: 3..40 bytes of
 * digits, '+', and the separators " -().", with at least 3 digits. */
int cg_vapi_number_ok(const char *s);

/* "forward" or "hang-up". Static storage. */
const char *cg_vapi_control_request_name(enum cg_vapi_control_request r);

#endif
