/*
 * vapi/api.h - the Vapi side of the gate: POST /call with provider bypass
 * (which hands back the TwiML that bridges a Twilio call into the
 * assistant), GET /call/{id} for reconciliation, and parsing and
 * authentication of the server messages Vapi posts to us.
 *
 * Requests go to {base_url}/call... with "Authorization: Bearer <api_key>"
 * over cg_httpc, on the same libevent loop. Nothing here retries: whether
 * and when to try again is the gate's decision.
 *
 * create_call outcomes:
 *   CREATED     2xx with an id and phoneCallProviderDetails.twiml.
 *   OVERLIMIT   2xx with subscriptionLimits.concurrencyBlocked true (call_id
 *               set when present), or any 4xx other than 401/403 (400 and
 *               429 in practice) whose message (a string, or any element of
 *               an array) or error mentions "concurrency", in any case.
 *   RETRY       408, 429, 5xx, timeouts and transport failures.
 *   REJECTED    any other 4xx, and a 2xx without TwiML or id, or not JSON
 *               ("no TwiML in response" and the like): permanent for this
 *               caller.
 *   AUTH        401 and 403: the API key is wrong.
 *   CANCELLED   cg_vapi_free() (or the cg_httpc's free) came first.
 *
 * get_call states (after the reference gateway: only "ended" is ended):
 *   LIVE        200 with any status other than "ended".
 *   ENDED       200 with status "ended".
 *   NOT_FOUND   404. Right after creation this usually means "not visible
 *               yet", not "over": do not release on it alone.
 *   UNAVAILABLE anything else: other statuses, a 200 without status,
 *               transport errors, and cancellation (http_status 0).
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
/* Webhook bodies larger than this are never authenticated. */
#define CG_VAPI_MAX_WEBHOOK_BODY (8 * 1024 * 1024)

struct cg_vapi_opts {
    const char *base_url;        /* e.g. https://api.vapi.ai; a trailing '/' is dropped */
    const char *api_key;         /* copied; never logged */
    const char *phone_number_id; /* required */
    const char *assistant_id;    /* required */
    int max_duration_s;          /* 0: 600; otherwise 10..43200 */
    long timeout_ms;             /* per request; 0: cg_httpc's default */
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
 * "assistantOverrides":{"metadata":{"twilioCallSid":sid,"callgateAttempt":attempt},
 * "variableValues":{"twilioCallSid":sid},"maxDurationSeconds":N[,
 * "serverMessages":[...]]}} (serverMessages when configured).
 * customer.number is the caller's From; "anonymous" when From is NULL, or
 * shorter than 3 or longer than 40 bytes (Vapi would refuse it, and that
 * must not cost the caller the call). -1 when call_sid is not a CA SID.
 */
int cg_vapi_create_call(struct cg_vapi *v, const char *call_sid, const char *from, int attempt,
                        cg_vapi_create_cb cb, void *arg);

/* What the assistant may know of the caller's time in the queue. */
struct cg_vapi_call_context {
    long waited_s;      /* seconds waited before this admission; < 0: unknown */
    long position;      /* position when the caller entered the queue; <= 0: unknown */
    int requeued;       /* an earlier admission of this caller failed */
    const char *dialed; /* the number the caller dialled (Twilio's To); NULL or "": unknown */
};

/* cg_vapi_create_call() with the context added to
 * assistantOverrides.variableValues as callgateWaitSeconds (number),
 * callgatePosition (number), callgateRequeued (boolean) and
 * callgateDialedNumber (string, at most 64 bytes), each only when known.
 * ctx NULL: none of them. */
int cg_vapi_create_call_ctx(struct cg_vapi *v, const char *call_sid, const char *from, int attempt,
                            const struct cg_vapi_call_context *ctx, cg_vapi_create_cb cb,
                            void *arg);

enum cg_vapi_call_state {
    CG_VAPI_CALL_LIVE,
    CG_VAPI_CALL_ENDED,
    CG_VAPI_CALL_NOT_FOUND,
    CG_VAPI_CALL_UNAVAILABLE,
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

#endif
