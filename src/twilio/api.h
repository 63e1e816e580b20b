/*
 * twilio/api.h - the Twilio REST calls the gate needs (2010 API): push TwiML
 * to a live call, fetch it, place an outbound call, list a queue's members
 * and find a queue by name. Runs on cg_httpc, so on the same libevent loop.
 *
 * Requests. Form-encoded POSTs and GETs under
 * {base_url}/2010-04-01/Accounts/{AccountSid}/..., HTTP Basic with
 * AccountSid:AuthToken, "Accept: application/json". SIDs are checked
 * (CA/QU + 32 hex digits) before a URL is built; a bad one makes the call
 * return -1.
 *
 * Retries happen in here: 429 (20429 is never processed, so always safe),
 * 5xx and transport failures (timeouts included, unless
 * no_transport_retry) are retried up to max_retries times, each after a
 * full-jitter delay (uniform in
 * [0, min(3000, 100 * 2^n)] ms, n = 0 for the first retry, as twilio-node)
 * or after Retry-After when the response carries one (capped at 10 s). The
 * delay runs on a libevent timer. A list follows next_page_uri page by
 * page; each page gets its own retry budget.
 *
 * Outcomes. OK on 2xx. GONE when Twilio answers 21220 (call not in
 * progress) or 20404 (unknown call or queue), whatever the HTTP status.
 * RETRY when the retries ran out. FATAL for 401 and every other 4xx (never
 * retried), for responses that cannot be understood, and for paging that
 * goes wrong (a next_page_uri outside this account, more than
 * CG_TWILIO_MAX_PAGES pages). CANCELLED when the client is freed first, or
 * when the cg_httpc underneath is freed while a request is in flight.
 *
 * Callback rules (as cg_httpc's). Each operation either returns -1 and never
 * calls back, or returns 0 and calls back exactly once, never from inside
 * the call that started it. The result and every string and array it
 * points to are valid only during the callback; copy what you keep. A
 * callback may start new operations and may call cg_twilio_free(). While
 * cg_twilio_free() is cancelling, new operations return -1.
 *
 * Secrets. The auth token is only handed to libcurl; it never appears in a
 * result, a log line or a URL. Free the client (and the cg_httpc) before
 * the event_base.
 */
#ifndef CG_TWILIO_API_H
#define CG_TWILIO_API_H

#include <stddef.h>

struct event_base;
struct cg_httpc;
struct cg_twilio;

/* Paging bounds: Twilio's page maximum, the largest queue Twilio allows,
 * and a ceiling that stops a server from leading us around forever. */
#define CG_TWILIO_PAGE_SIZE   1000
#define CG_TWILIO_MAX_MEMBERS 5000
#define CG_TWILIO_MAX_PAGES   64
/* Retry delays (ms). */
#define CG_TWILIO_BACKOFF_BASE_MS     100
#define CG_TWILIO_BACKOFF_CAP_MS      3000
#define CG_TWILIO_RETRY_AFTER_CAP_MS  10000
#define CG_TWILIO_DEFAULT_MAX_RETRIES 3
/* Largest TwiML document accepted by cg_twilio_update_call_twiml(), in
 * bytes, and Twilio's own limit on the Twiml parameter, in characters: a
 * longer one is refused with 400, error 32018. */
#define CG_TWILIO_MAX_TWIML        65536
#define CG_TWILIO_UPDATE_MAX_CHARS 4000

struct cg_twilio_opts {
    const char *base_url;    /* e.g. https://api.twilio.com; a trailing '/' is dropped */
    const char *account_sid; /* AC + 32 hex */
    const char *auth_token;  /* copied; never logged */
    long timeout_ms;         /* per HTTP attempt; 0: cg_httpc's default */
    int max_retries;         /* 0: 3 (the default); < 0: no retries */
    /* 1: a transport failure (timeout, connection lost mid-request) ends
     * the operation at once with RETRY, for requests that must not be sent
     * again when Twilio may have acted on the first (429 and 5xx are still
     * retried: Twilio answered). */
    int no_transport_retry;
};

/* Returns NULL when an option is missing or malformed. Copies the options. */
struct cg_twilio *cg_twilio_new(struct event_base *base, struct cg_httpc *httpc,
                                const struct cg_twilio_opts *o);
/* Pending operations complete with CG_TW_CANCELLED first (callbacks run
 * inside this call). NULL is a no-op. */
void cg_twilio_free(struct cg_twilio *t);

enum cg_twilio_outcome {
    CG_TW_OK,
    CG_TW_GONE,  /* 21220 or 20404: the call is not live / unknown */
    CG_TW_RETRY, /* retries exhausted on 429/5xx/transport */
    CG_TW_FATAL, /* 401 and other 4xx, unusable responses */
    CG_TW_CANCELLED,
};

struct cg_twilio_member {
    char call_sid[40];
    int position; /* as Twilio reports it (1 = front); 0 when absent */
    long wait_time_s;
};

struct cg_twilio_result {
    enum cg_twilio_outcome outcome;
    long http_status; /* of the last response; 0 when none arrived */
    int code;         /* Twilio error code or 0 */
    /* Twilio's message, a transport error or our own description; never a
     * secret. NULL on OK. */
    const char *message;
    int attempts; /* HTTP requests sent, over all pages */
    /* fetch_call (NULL when absent): */
    const char *call_status;
    const char *from;
    const char *to;
    /* list_members: in the order Twilio listed them, across pages. Members
     * with a malformed call_sid are skipped. */
    const struct cg_twilio_member *members;
    size_t nmembers;
    /* find_queue: the queue's SID, or NULL (with OK) when no queue has that
     * name; Twilio creates queues on the first <Enqueue>. */
    const char *queue_sid;
    /* create_call: the new call's SID (always a valid CA SID with OK). */
    const char *call_sid;
};

typedef void (*cg_twilio_cb)(const struct cg_twilio_result *res, void *arg);

/* POST Calls/{call_sid}.json with Twiml=<twiml>: not empty, at most
 * CG_TWILIO_MAX_TWIML bytes and CG_TWILIO_UPDATE_MAX_CHARS characters
 * (cg_twilio_twiml_chars), else -1: a document Twilio would refuse is never
 * sent. */
int cg_twilio_update_call_twiml(struct cg_twilio *t, const char *call_sid, const char *twiml,
                                cg_twilio_cb cb, void *arg);
/* An outbound call (a callback). */
#define CG_TWILIO_MAX_NUMBER 64
#define CG_TWILIO_MAX_URL    2048
struct cg_twilio_new_call {
    const char *to;              /* E.164 (checked by the caller), at most CG_TWILIO_MAX_NUMBER */
    const char *from;            /* a number of this account */
    const char *url;             /* fetched (POST) when answered; http(s) */
    const char *status_callback; /* POSTed when the call completes; NULL: none */
    int timeout_s;               /* ring time; clamped to [5, 600] */
    int machine_detection;       /* 1: MachineDetection=Enable (AnsweredBy on url) */
};
/* POST Calls.json: To, From, Url, Method=POST, Timeout, [MachineDetection=
 * Enable], [StatusCallback, StatusCallbackMethod=POST,
 * StatusCallbackEvent=completed]. -1 for a missing or over-long number or
 * a URL that is not http(s). Not idempotent, so never sent twice when
 * Twilio may have acted: a transport failure or a 5xx ends it at once
 * with RETRY (the call may or may not exist); only 429 is retried. OK
 * carries call_sid (and call_status); a 2xx without a valid SID is FATAL. */
int cg_twilio_create_call(struct cg_twilio *t, const struct cg_twilio_new_call *c, cg_twilio_cb cb,
                          void *arg);
/* POST Calls/{call_sid}.json with Status=completed: ends a live call. */
int cg_twilio_end_call(struct cg_twilio *t, const char *call_sid, cg_twilio_cb cb, void *arg);
/* GET Calls/{call_sid}.json; fills call_status, from and to. */
int cg_twilio_fetch_call(struct cg_twilio *t, const char *call_sid, cg_twilio_cb cb, void *arg);
/* GET Queues/{queue_sid}/Members.json?PageSize=1000, following next_page_uri;
 * one callback with every member. Stops (with OK) after
 * CG_TWILIO_MAX_MEMBERS members. */
int cg_twilio_list_members(struct cg_twilio *t, const char *queue_sid, cg_twilio_cb cb, void *arg);
/* Pages through Queues.json?PageSize=1000 until a queue's friendly_name
 * equals friendly_name exactly (1 to 64 bytes, else -1). */
int cg_twilio_find_queue(struct cg_twilio *t, const char *friendly_name, cg_twilio_cb cb,
                         void *arg);

/* 1 when a call status (CallStatus of a status callback, status of a
 * fetched call) says the call is over for good: completed, busy, failed,
 * no-answer or canceled. NULL is not terminal. */
int cg_twilio_status_is_terminal(const char *status);

/* The length of a TwiML document as Twilio counts characters (UTF-16 code
 * units: a character outside the Basic Multilingual Plane counts 2; a byte
 * that is not valid UTF-8 counts 1). NULL is 0. */
size_t cg_twilio_twiml_chars(const char *twiml);

/* 1 when s is prefix (two letters) followed by exactly 32 hex digits. */
int cg_twilio_sid_valid(const char *s, const char *prefix);

#endif
