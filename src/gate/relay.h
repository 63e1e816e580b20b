/*
 * relay.h - the assistant's server messages that the gate does not consume
 * (tool-calls, function-call, transfer-destination-request,
 * assistant-request, conversation-update, hang, ...): pointing the
 * assistant's server URL at callgate must not break its tools.
 *
 * With a forward URL (VAPI_FORWARD_URL) each such message is POSTed there,
 * byte for byte, with the authentication headers signed again for that hop
 * (cg_vapi_sign: the same secrets the message was authenticated with, a
 * fresh timestamp in the unit Vapi's own had), and the answer is relayed
 * to Vapi: a 2xx with its status, content type and body. When the upstream
 * does not answer within the timeout, refuses the connection, answers
 * anything but a 2xx, or answers more than GATE_RELAY_MAX_RESPONSE bytes,
 * Vapi gets 200 with an answer the assistant can go on from
 * (gate_relay_error_answer). The messages the gate consumes
 * (status-update, end-of-call-report) go there too, as copies whose answer
 * only counts (gate_relay_copy). Without a forward URL the message is
 * acknowledged as before ({"ok":true,"result":"ignored"}), with a warning
 * the first time each type arrives.
 *
 * Every message is counted in callgate_vapi_messages_total{type,outcome}
 * (outcome: acknowledged, relayed, timeout, unreachable, upstream_error,
 * too_large, loop, shutdown); types outside Vapi's published list count as
 * type="other".
 *
 * Ownership and callbacks. The relay borrows the HTTP client and the
 * metrics registry (they outlive it). gate_relay_message answers the
 * request exactly once, possibly after it returned; it keeps a reference
 * to root (json_incref) until then. gate_relay_free answers every request
 * still waiting with 503 and detaches it; the HTTP client's cancellation
 * later frees what is left.
 */
#ifndef CG_GATE_RELAY_H
#define CG_GATE_RELAY_H

#include <stddef.h>

#include <jansson.h>

struct cg_http_req;
struct cg_httpc;
struct cg_metrics;
struct cg_vapi_auth;
struct cg_vapi_event;
struct gate_relay;

/* Largest answer relayed from the forward URL. */
#define GATE_RELAY_MAX_RESPONSE (1024 * 1024)
/* Sent with every forwarded message; a message that arrives with it came
 * round from callgate itself (a forward URL leading back here). */
#define GATE_RELAY_HOP_HEADER "X-Callgate-Relay-Hop"

struct gate_relay_opts {
    struct cg_httpc *httpc;
    struct cg_metrics *metrics; /* may be NULL */
    const char *url;            /* NULL or "": acknowledge only; copied */
    long timeout_ms;            /* > 0 */
    const char *instance;       /* sent in GATE_RELAY_HOP_HEADER; copied */
};

/* NULL when an option is unusable (no client, a timeout <= 0). */
struct gate_relay *gate_relay_new(const struct gate_relay_opts *o);
/* NULL is a no-op. */
void gate_relay_free(struct gate_relay *r);

/* Handles one authenticated server message the gate does not consume. ev
 * and root come from cg_vapi_parse_event over body; auth is what
 * authenticated it and signs the forwarded copy. */
void gate_relay_message(struct gate_relay *r, struct cg_http_req *req,
                        const struct cg_vapi_event *ev, json_t *root,
                        const struct cg_vapi_auth *auth, const char *body, size_t len);

/* A copy of a message the gate consumes (status-update,
 * end-of-call-report) for the forward URL, signed as above, whose answer
 * is only counted: the user's server keeps receiving what it received
 * before the assistant's server URL pointed at callgate. Vapi gets the
 * gate's own answer; nothing happens without a forward URL or when the
 * message came round from callgate (GATE_RELAY_HOP_HEADER). req is read
 * now only. */
void gate_relay_copy(struct gate_relay *r, struct cg_http_req *req, const struct cg_vapi_event *ev,
                     const struct cg_vapi_auth *auth, const char *body, size_t len);

/* The answer Vapi gets when the upstream failed (malloc'd JSON): for
 * tool-calls, {"results":[{"toolCallId":id,"error":why},...]} with every
 * id of message.toolCallList and message.toolWithToolCallList[].toolCall
 * (at most 128; ids that are not non-empty strings are skipped); for
 * knowledge-base-request, {"documents":[]}; for anything else,
 * {"error":why}. root may be anything (NULL too). Pure: a fuzz target. */
char *gate_relay_error_answer(const json_t *root, const char *why);

#endif
