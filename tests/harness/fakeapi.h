/*
 * fakeapi.h - a fake Twilio 2010 REST API and Vapi API for integration
 * tests, on 127.0.0.1 (a free port), served by evhttp on its own event_base
 * in its own thread, so that the test's main thread can make blocking
 * requests to a callgate process while that process calls the fake.
 *
 * Endpoints (everything else answers 404 and counts as CGT_EP_UNKNOWN):
 *   POST /call                                   Vapi create (Bearer key)
 *   GET  /call/{id}                              Vapi get
 *   GET  /call                                   Vapi list (the array set below)
 *   POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json   Calls update (Twiml or Status)
 *   GET  /2010-04-01/Accounts/{AC}/Calls/{CA}.json   Calls fetch
 *   POST /2010-04-01/Accounts/{AC}/Calls.json    Calls create (201, a new CA SID
 *                                                numbered from 1; body: last_body)
 *   GET  /2010-04-01/Accounts/{AC}/Queues/{QU}/Members.json
 *   GET  /2010-04-01/Accounts/{AC}/Queues.json
 * Twilio requests need Basic AccountSid:AuthToken, Vapi requests
 * "Bearer <key>"; anything else gets 401 and counts as CGT_EP_UNAUTHORIZED
 * (and not as the endpoint it was meant for).
 *
 * Threads: every function here may be called from any thread except the
 * fake's own; state is behind one mutex. Strings returned are malloc'd
 * copies the caller frees.
 */
#ifndef CG_FAKEAPI_H
#define CG_FAKEAPI_H

#include <stddef.h>

enum cgt_vapi_create_mode {
    CGT_VAPI_OK,         /* 201 with id, TwiML and subscriptionLimits */
    CGT_VAPI_OVERLIMIT,  /* 400 "Over Concurrency Limit." */
    CGT_VAPI_BLOCKED,    /* 201 with subscriptionLimits.concurrencyBlocked true */
    CGT_VAPI_ERROR500,   /* 500 */
    CGT_VAPI_RATE429,    /* 429 with Retry-After: 1 */
    CGT_VAPI_INVALID400, /* 400 validation error */
    CGT_VAPI_LONG_TWIML  /* 201 with a TwiML of over 4,000 characters */
};

enum cgt_vapi_get_mode {
    CGT_VGET_IN_PROGRESS, /* 200 status "in-progress" (the default) */
    CGT_VGET_ENDED,       /* 200 status "ended" */
    CGT_VGET_NOT_FOUND,   /* 404 */
    CGT_VGET_STATUS       /* 200 with cgt_fake_set_vapi_get_status's status */
};

enum cgt_tw_update_mode {
    CGT_TWU_OK,              /* 200 with the call's JSON (the default) */
    CGT_TWU_NOT_IN_PROGRESS, /* 400 code 21220 */
    CGT_TWU_NOT_FOUND,       /* 404 code 20404 */
    CGT_TWU_ERROR500,        /* 500 */
    CGT_TWU_REFUSE_DIAL      /* 400 code 13223 for a Twiml with <Dial>; others 200 */
};

enum cgt_fake_ep {
    CGT_EP_VAPI_CREATE,
    CGT_EP_VAPI_GET,
    CGT_EP_VAPI_LIST,
    CGT_EP_TW_UPDATE,
    CGT_EP_TW_FETCH,
    CGT_EP_TW_MEMBERS,
    CGT_EP_TW_QUEUES,
    CGT_EP_TW_CREATE,
    CGT_EP_UNAUTHORIZED,
    CGT_EP_UNKNOWN,
    CGT_EP_COUNT
};

struct cgt_fake;

struct cgt_fake_opts {
    const char *account_sid; /* AC + 32 hex */
    const char *auth_token;
    const char *vapi_key;
};

/* Starts the fake (fails the test on error). */
struct cgt_fake *cgt_fake_start(const struct cgt_fake_opts *o);
/* Stops its thread and frees it; requests still delayed are dropped. */
void cgt_fake_stop(struct cgt_fake *f);
/* "http://127.0.0.1:<port>" */
const char *cgt_fake_url(const struct cgt_fake *f);

/* ---- knobs ---- */
void cgt_fake_set_vapi_create(struct cgt_fake *f, enum cgt_vapi_create_mode m);
/* The next n POST /call get mode m whatever the mode set above (n <= 0:
 * none). */
void cgt_fake_set_vapi_create_next(struct cgt_fake *f, enum cgt_vapi_create_mode m, int n);
/* Milliseconds the fake waits (a timer on its loop) before answering POST /call. */
void cgt_fake_set_vapi_delay(struct cgt_fake *f, int ms);
void cgt_fake_set_vapi_get(struct cgt_fake *f, enum cgt_vapi_get_mode m);
/* GET /call/{id} answers 200 with this status (mode CGT_VGET_STATUS). */
void cgt_fake_set_vapi_get_status(struct cgt_fake *f, const char *status);
void cgt_fake_set_twilio_update(struct cgt_fake *f, enum cgt_tw_update_mode m);
/* The status GET Calls/{CA}.json reports (default "in-progress"). */
void cgt_fake_set_twilio_call_status(struct cgt_fake *f, const char *status);
/* JSON array text for the key queue_members (default "[]"). */
void cgt_fake_set_queue_members(struct cgt_fake *f, const char *json_array);
/* JSON array GET /call answers with (default "[]"), whatever the query. */
void cgt_fake_set_vapi_list(struct cgt_fake *f, const char *json_array);
/* JSON array text for the key queues (default "[]"). */
void cgt_fake_set_queues(struct cgt_fake *f, const char *json_array);

/* ---- records ---- */
int cgt_fake_count(struct cgt_fake *f, enum cgt_fake_ep ep);
/* Polls every 5 ms until count(ep) >= atleast; 0, or -1 after timeout_ms. */
int cgt_fake_wait_count(struct cgt_fake *f, enum cgt_fake_ep ep, int atleast, int timeout_ms);
/* Body of the last request to ep, or NULL when there was none. */
char *cgt_fake_last_body(struct cgt_fake *f, enum cgt_fake_ep ep);
/* Authorization header of the last request to ep (or of the last refused
 * one for CGT_EP_UNAUTHORIZED), or NULL. */
char *cgt_fake_last_auth(struct cgt_fake *f, enum cgt_fake_ep ep);

/* The id of the last Vapi call created for a CallSid (taken from
 * assistantOverrides.metadata.twilioCallSid), or NULL. */
char *cgt_fake_vapi_id(struct cgt_fake *f, const char *call_sid);
/* POST /call requests seen for a CallSid, whatever was answered. */
int cgt_fake_create_count(struct cgt_fake *f, const char *call_sid);
/* The TwiML the fake hands out for a Vapi call id. */
char *cgt_fake_twiml_for(const char *vapi_id);
/* Calls updates seen for a CallSid (whatever was answered), and the Twiml
 * parameter of the last one (malloc'd; NULL when absent). */
int cgt_fake_update_count(struct cgt_fake *f, const char *call_sid);
char *cgt_fake_update_twiml(struct cgt_fake *f, const char *call_sid);
/* The Status parameter of the last Calls update of a CallSid (malloc'd;
 * NULL when absent). */
char *cgt_fake_update_status(struct cgt_fake *f, const char *call_sid);
/* Polls until update_count(call_sid) >= atleast; 0, or -1 after timeout_ms. */
int cgt_fake_wait_update(struct cgt_fake *f, const char *call_sid, int atleast, int timeout_ms);

#endif
