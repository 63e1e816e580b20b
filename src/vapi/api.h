/*
 * vapi/api.h - the Vapi side of the gate: POST /call with provider bypass
 * (which hands back the TwiML that bridges a Twilio call into the
 * assistant), GET /call/{id} for reconciliation, GET /call (the list) for
 * the repair of lost slots, and parsing and
 * authentication of the server messages Vapi posts to us.
 *
 * Requests go to {base_url}/call... with "Authorization: Bearer <api_key>"
 * over cg_httpc, on the same libevent loop. Nothing here retries: whether
 * and when to try again is the gate's decision.
 *
 * create_call outcomes:
 *   CREATED     2xx with an id and phoneCallProviderDetails.twiml.
 *   OVERLIMIT   2xx with subscriptionLimits.concurrencyBlocked true (call_id
 *               set when present); a 2xx shaped as a batch answer
 *               (CallBatchResponse, the only schema documenting
 *               subscriptionLimits) with no results and an errors[].error
 *               that mentions "concurrency"; or any 4xx other than 401/403
 *               (400 and 429 in practice) whose message (a string, or any
 *               element of an array) or error mentions "concurrency", in any
 *               case. subscriptionLimits.remainingConcurrentCalls is reported
 *               (remaining) but refuses nothing: third-party reports say it
 *               often reads -1 on calls that went through.
 *   RETRY       408, 429, 5xx, timeouts and transport failures.
 *   REJECTED    any other 4xx, and a 2xx without TwiML or id, or not JSON
 *               ("no TwiML in response" and the like): permanent for this
 *               caller.
 *   AUTH        401 and 403: the API key is wrong.
 *   CANCELLED   cg_vapi_free() (or the cg_httpc's free) came first.
 *
 * get_call states (after the reference gateway: only "ended" is ended):
 *   LIVE        200 with a status of a call that goes on: scheduled,
 *               queued, ringing, in-progress, forwarding.
 *   ENDED       200 with status "ended".
 *   DOUBTFUL    200 with any other status: "not-found", "deletion-failed"
 *               (the Call schema's enum) or one this build does not know.
 *               Vapi does not say the call goes on: the gate asks again
 *               and treats a second such answer as the end.
 *   NOT_FOUND   404. Right after creation this usually means "not visible
 *               yet", not "over": do not release on it alone.
 *   UNAVAILABLE anything else: a 200 without status, transport errors, and
 *               cancellation (http_status 0).
 *
 * Callback rules (as cg_httpc's). cg_vapi_create_call() and
 * cg_vapi_get_call() either return -1 and never call back, or return 0 and
 * call back exactly once, never from inside the call that started them. A
 * result and every string it points to are valid only during the callback.
 * A callback may start new requests and may call cg_vapi_free(); while
 * cg_vapi_free() is cancelling, new requests return -1.
 *
 * Secrets. The API key only goes into the Authorization header; it never
 * appears in a result or a log line.
 */
#ifndef CG_VAPI_API_H
#define CG_VAPI_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cg_httpc;
struct cg_vapi;

/* CreateCustomerDTO.number is 3 to 40 characters. */
#define CG_VAPI_NUMBER_MIN 3
#define CG_VAPI_NUMBER_MAX 40
/* maxDurationSeconds: Vapi's default and bounds. */
#define CG_VAPI_DEFAULT_MAX_DURATION 600
#define CG_VAPI_MIN_MAX_DURATION     10
#define CG_VAPI_MAX_MAX_DURATION     43200
/* Longest Vapi call id accepted by cg_vapi_get_call() (they are UUIDs). */
#define CG_VAPI_MAX_ID 64
/* The endedReason of a call Vapi refused over the concurrency limit after
 * creating it (documented in call-ended-reason.mdx). */
#define CG_VAPI_REASON_OVERLIMIT "call.start.error-subscription-concurrency-limit-reached"
/* Webhook bodies larger than this are never authenticated. */
#define CG_VAPI_MAX_WEBHOOK_BODY (8 * 1024 * 1024)

struct cg_vapi_opts {
    const char *base_url;        /* e.g. https://api.vapi.ai; a trailing '/' is dropped */
    const char *api_key;         /* copied; never logged */
    const char *phone_number_id; /* required */
    const char *assistant_id;    /* required */
    /* Optional: sent as assistantOverrides.metadata.callgateGate, so that a
     * gate's repair counts only its own calls (GATE_NAME). */
    const char *gate;
    int max_duration_s; /* 0: 600; otherwise 10..43200 */
    long timeout_ms;    /* per request; 0: cg_httpc's default */
    /* assistantOverrides.serverMessages, comma separated (the
     * configuration checks the names); NULL or "": the field is not sent. */
    const char *server_messages;
};

/* Returns NULL when an option is missing or out of range. Copies the options. */
struct cg_vapi *cg_vapi_new(struct cg_httpc *httpc, const struct cg_vapi_opts *o);
/* Pending requests complete first (create: CANCELLED; get: UNAVAILABLE),
 * their callbacks running inside this call. NULL is a no-op. */
void cg_vapi_free(struct cg_vapi *v);

enum cg_vapi_outcome {
    CG_VAPI_CREATED,
    CG_VAPI_OVERLIMIT, /* 400 over-limit body, or 201 concurrencyBlocked */
    CG_VAPI_RETRY,     /* 429, 5xx, timeout, transport */
    CG_VAPI_REJECTED,  /* other 4xx: permanent for this caller */
    CG_VAPI_AUTH,      /* 401/403: configuration */
    CG_VAPI_CANCELLED,
};

struct cg_vapi_create_result {
    enum cg_vapi_outcome outcome;
    long http_status;     /* 0 when no response arrived */
    const char *call_id;  /* NULL when absent */
    const char *twiml;    /* CREATED only; opaque, pass to Twilio unchanged */
    double retry_after_s; /* Retry-After, -1 when absent */
    /* subscriptionLimits.concurrencyLimit / remainingConcurrentCalls, -1 if absent. */
    long concurrency_limit;
    long remaining;
    /* Vapi's error text (a string message, the first element of an array
     * message, or error), a transport error or our own description; NULL on
     * CREATED. */
    const char *message;
    uint64_t duration_us;
};

typedef void (*cg_vapi_create_cb)(const struct cg_vapi_create_result *res, void *arg);

/*
 * POSTs {"phoneNumberId","phoneCallProviderBypassEnabled":true,
 * "customer":{"number":<from>,"numberE164CheckEnabled":false},"assistantId",
 * "assistantOverrides":{"metadata":{"twilioCallSid":sid,"callgateAttempt":attempt
 * [,"callgateGate":gate]},
 * "variableValues":{"twilioCallSid":sid},"maxDurationSeconds":N[,
 * "serverMessages":[...]]}} (serverMessages when configured).
 * customer.number is cg_vapi_customer_number(from): a From Vapi would
 * refuse (a Twilio Client or SIP caller) must not cost the caller the call.
 * Such a caller's From goes as customer.name instead (cut to 40 bytes),
 * for reference. -1 when call_sid is not a CA SID.
 */
int cg_vapi_create_call(struct cg_vapi *v, const char *call_sid, const char *from, int attempt,
                        cg_vapi_create_cb cb, void *arg);

/* The customer number Vapi accepts for a Twilio From: From itself when it
 * is 3 to 40 characters matching ^\+?[a-zA-Z0-9]+$ (CreateCustomerDTO with
 * numberE164CheckEnabled false), else "anonymous" (client:alice,
 * sip:bob@host, a withheld or empty From). Returns a pointer to from or to
 * a static string. Pure; NULL reads as empty. */
const char *cg_vapi_customer_number(const char *from);

/* What the assistant may know of the caller's time in the queue. */
struct cg_vapi_call_context {
    long waited_s;      /* seconds waited before this admission; < 0: unknown */
    long position;      /* position when the caller entered the queue; <= 0: unknown */
    int requeued;       /* an earlier admission of this caller failed */
    const char *dialed; /* the number the caller dialled (Twilio's To); NULL or "": unknown */
    /* The caller's route (ROUTES_FILE): its assistant and phone number in
     * place of the client's own; NULL or "": the client's. */
    const char *assistant_id;
    const char *phone_number_id;
};

/* cg_vapi_create_call() with the context added to
 * assistantOverrides.variableValues as callgateWaitSeconds (number),
 * callgatePosition (number), callgateRequeued (boolean) and
 * callgateDialedNumber (string, at most 64 bytes), each only when known.
 * ctx NULL: none of them. */
int cg_vapi_create_call_ctx(struct cg_vapi *v, const char *call_sid, const char *from, int attempt,
                            const struct cg_vapi_call_context *ctx, cg_vapi_create_cb cb,
                            void *arg);

/* An outbound call callgate places for POST /calls/outbound. */
struct cg_vapi_outbound {
    const char *id;              /* callgate's outbound id (metadata.callgateOutbound) */
    int attempt;                 /* metadata.callgateAttempt */
    const char *number;          /* the customer's number, E.164 */
    const char *assistant_id;    /* NULL or "": the client's */
    const char *phone_number_id; /* NULL or "": the client's */
    const char *variables_json;  /* a JSON object for variableValues; NULL: {} */
};

/* POSTs {"phoneNumberId","customer":{"number"},"assistantId",
 * "assistantOverrides":{"metadata":{"callgateOutbound":id,"callgateAttempt",
 * "callgateGate"},"variableValues":<variables>,"maxDurationSeconds"[,
 * "serverMessages"]}}: Vapi dials the customer (no bypass). Answers as
 * cg_vapi_create_call. -1 when id or number is empty. */
int cg_vapi_create_outbound(struct cg_vapi *v, const struct cg_vapi_outbound *o,
                            cg_vapi_create_cb cb, void *arg);

enum cg_vapi_call_state {
    CG_VAPI_CALL_LIVE,
    CG_VAPI_CALL_ENDED,
    CG_VAPI_CALL_NOT_FOUND,
    CG_VAPI_CALL_UNAVAILABLE,
    CG_VAPI_CALL_DOUBTFUL, /* a status neither live nor ended */
};

struct cg_vapi_get_result {
    enum cg_vapi_call_state state;
    long http_status;
    const char *status;       /* NULL when absent */
    const char *ended_reason; /* NULL when absent */
};

typedef void (*cg_vapi_get_cb)(const struct cg_vapi_get_result *res, void *arg);

/* GET /call/{call_id}. -1 when call_id is empty, longer than CG_VAPI_MAX_ID
 * or has characters other than letters, digits, '-' and '_'. */
int cg_vapi_get_call(struct cg_vapi *v, const char *call_id, cg_vapi_get_cb cb, void *arg);

/* GET /call?phoneNumberId=<ours>&limit=N[&createdAtGt=..][&createdAtLe=..]:
 * the calls on our Vapi number created in a time window (0: no bound).
 * The endpoint has no status filter and no paging but the dates: a full page
 * (ncalls + skipped == limit) is continued with createdAtLe set to its oldest
 * createdAt (Vapi answers newest first). */
struct cg_vapi_listed_call;
struct cg_vapi_list_result {
    int ok;                                  /* a 200 with a parsable list */
    long http_status;                        /* 0 when no response arrived */
    const char *error;                       /* when !ok: a transport error or what was wrong */
    double retry_after_s;                    /* Retry-After, -1 when absent */
    const struct cg_vapi_listed_call *calls; /* vapi/call_list.h */
    size_t ncalls;
    size_t skipped; /* entries without an id */
};
typedef void (*cg_vapi_list_cb)(const struct cg_vapi_list_result *res, void *arg);
/* -1 (no callback) when limit is outside 1..CG_VAPI_LIST_MAX. */
int cg_vapi_list_calls(struct cg_vapi *v, uint64_t created_gt_ms, uint64_t created_le_ms, int limit,
                       cg_vapi_list_cb cb, void *arg);

/* ---- webhooks (server messages): pure, no I/O, fuzz targets ---- */

enum cg_vapi_event_type {
    CG_VAPI_EV_STATUS_UPDATE,
    CG_VAPI_EV_END_OF_CALL_REPORT,
    CG_VAPI_EV_HANG,
    CG_VAPI_EV_OTHER,
};

struct cg_vapi_event {
    enum cg_vapi_event_type type;
    const char *type_name; /* message.type as sent */
    const char *call_id;   /* message.call.id, NULL when absent */
    const char *status;    /* message.status, NULL when absent */
    /* message.endedReason, else message.call.endedReason, else NULL. */
    const char *ended_reason;
    /* The first of message.call.phoneCallProviderId and
     * message.call.assistantOverrides.metadata.twilioCallSid that is a valid
     * CA SID, else NULL. */
    const char *twilio_call_sid;
    /* status-update with status "ended", or end-of-call-report. Never
     * forwarding (a warm transfer still holds the line), never hang (a slow
     * model, not a hang-up). */
    int is_end;
};

/* Parses a server message. On success returns 0, fills ev with strings that
 * point into *root, and the caller json_decref()s *root. Returns -1 with
 * err filled (and *root NULL) for malformed JSON (nesting deeper than
 * CG_JSON_MAX_DEPTH included), a non-object, a missing or non-object
 * message, a missing or non-string message.type, a non-object message.call
 * or a non-string message.call.id. err never quotes the input. */
int cg_vapi_parse_event(const char *body, size_t len, struct cg_vapi_event *ev, json_t **root,
                        char *err, size_t errlen);

/*
 * Webhook authentication settings. NULL or "" leaves a field unset.
 *   secret                 legacy: header x-vapi-secret must equal it.
 *   hmac_secret            HMAC plan: a valid signature is required.
 *   hmac_algorithm         sha256 (default), sha512 or sha1; anything else
 *                          never authenticates.
 *   hmac_signature_header  default x-signature.
 *   hmac_timestamp_header  default x-timestamp.
 *   hmac_prefix            e.g. "sha256="; the header must start with it.
 *   hmac_encoding          hex (default; either case accepted) or base64
 *                          (standard or URL-safe alphabet, padding optional).
 *   max_skew_s             allowed clock difference; <= 0: 300.
 * The signed payload is "{timestamp}.{body}" with the timestamp header's
 * text as sent (decimal digits only). The timestamp is read as milliseconds
 * when it is at least 10^11, else as seconds.
 */
struct cg_vapi_auth {
    const char *secret;
    const char *hmac_secret;
    const char *hmac_algorithm;
    const char *hmac_signature_header;
    const char *hmac_timestamp_header;
    const char *hmac_prefix;
    const char *hmac_encoding;
    int max_skew_s;
    /* With both secrets set: also accept the static secret alone (an
     * operator switching an assistant over to the HMAC plan). */
    int accept_secret_with_hmac;
};

/* Returns 1 when the request is authentic, else 0. header_get(name, arg)
 * returns the value of a request header (case-insensitive name) or NULL.
 * With only secret set, a matching x-vapi-secret is required; with
 * hmac_secret set, a valid HMAC, and the static secret alone only when
 * accept_secret_with_hmac says so (a migration): otherwise a leaked static
 * secret would still open the door the HMAC plan closed. With neither,
 * nothing is authentic. Comparisons are
 * constant-time and do not leak the secret's length. now_ms is wall time. */
int cg_vapi_authenticate(const struct cg_vapi_auth *a,
                         const char *(*header_get)(const char *name, void *arg), void *arg,
                         const char *body, size_t len, uint64_t now_ms);

/*
 * Signs a server message for another hop, as Vapi signs it with these
 * settings, so that a server that authenticated Vapi's messages
 * authenticates the forwarded ones unchanged: "x-vapi-secret: <secret>"
 * when secret is set; with hmac_secret, "<timestamp header>: <ts>" and
 * "<signature header>: <prefix><signature>", the HMAC of "{ts}.{body}" in
 * the configured algorithm and encoding. ts is now_ms in milliseconds when
 * ts_ms, else in seconds. Writes up to CG_VAPI_SIGN_MAX malloc'd
 * "Name: value" lines into out, then NULL; returns how many (0 when neither
 * secret is set), or -1 (out all NULL) for an algorithm or encoding
 * cg_vapi_authenticate() would refuse. Free with cg_vapi_sign_free(),
 * which wipes them.
 */
#define CG_VAPI_SIGN_MAX 3
int cg_vapi_sign(const struct cg_vapi_auth *a, const char *body, size_t len, uint64_t now_ms,
                 int ts_ms, char *out[CG_VAPI_SIGN_MAX + 1]);
void cg_vapi_sign_free(char *out[CG_VAPI_SIGN_MAX + 1]);

#endif
