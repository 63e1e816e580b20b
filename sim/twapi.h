/*
 * twapi.h - request plumbing shared by the two simulated Twilio APIs: the
 * 2010 REST API (twilio_rest.c) and TaskRouter v1 (taskrouter.c). Owned by
 * those two modules; nothing else in sim/ needs it.
 *
 * Only what both APIs do the same way to the byte lives here: the JSON
 * writer, Twilio's error and 401 bodies, the HTTP Basic header prefix,
 * integer and paging query parameters, path segments and the timer of a
 * request held back by latency. What differs between them (the 2010 paging
 * envelope against v1's "meta", how a page is placed, which credentials
 * are accepted) stays in each module. Wire formats: twilio-wire.md.
 */
#ifndef SIM_TWAPI_H
#define SIM_TWAPI_H

#include <stddef.h>

struct cg_buf;
struct cg_form;
struct cg_http_req;
struct event;

/* ---- JSON writer ---- */

/* Writes the members of one object or array into b; first is 1 until the
 * first member is written (no comma before it). */
struct sim_jw {
    struct cg_buf *b;
    int first;
};

/* "key": (with the comma that separates it from the member before). */
void sim_jw_key(struct sim_jw *j, const char *k);
/* "key":"value", or "key":null when v is NULL. */
void sim_jw_str(struct sim_jw *j, const char *k, const char *v);
void sim_jw_long(struct sim_jw *j, const char *k, long v);
/* Opens a member object ('{') or array ('['): the returned writer fills
 * it; sim_jw_close with the matching brace ends it. */
struct sim_jw sim_jw_open(struct sim_jw *j, const char *k, char brace);
void sim_jw_close(struct sim_jw *j, char brace);

/* ---- replies ---- */

/* Twilio's error body: {"code":..,"message":..,"more_info":..,"status":..}. */
void sim_api_error(struct cg_http_req *req, int status, int code, const char *message);
/* 401 with WWW-Authenticate and the 20003 body (twilio-wire.md "401 body"). */
void sim_api_unauthorized(struct cg_http_req *req);
/* Replies b as JSON and frees it. */
void sim_api_reply_buf(struct cg_http_req *req, int status, struct cg_buf *b);

/* ---- request parameters ---- */

/* The credentials of an "Authorization: Basic ..." header (leading spaces
 * skipped); NULL when there is no such header. */
const char *sim_api_basic_credentials(struct cg_http_req *req);
/* A decimal integer in [lo, hi], nothing else around it (no sign, no
 * spaces); -1 otherwise. */
int sim_api_parse_long(const char *s, long lo, long hi, long *out);
/* Splits rest ("A/B/C") into at most max segments in buf (a copy):
 * returns their number, or -1 when rest does not fit, has more segments
 * or an empty one. Every such path is a 404 in both APIs. */
long sim_api_split_path(const char *rest, char *buf, size_t buflen, char **seg, size_t max);
/* Arms a one-shot timer for a request held back delay seconds, clamped to
 * max_s; evtimer_add's result. */
int sim_api_hold_timer(struct event *ev, double delay, double max_s);

/* ---- paging (PageSize, Page, PageToken) ---- */

struct sim_paging {
    long size, page;
    int has_page;      /* Page was given */
    const char *token; /* PageToken, NULL when absent */
    size_t start, count;
};

/* Reads PageSize (default 50), Page and PageToken from q; replies 400 and
 * returns -1 when one is invalid. A token is "PA" (after) or "PB" (before)
 * and a SID whose two letters are sid_prefix, or any two capitals when
 * sid_prefix is NULL. */
int sim_paging_parse(struct cg_http_req *req, const struct cg_form *q, const char *sid_prefix,
                     struct sim_paging *pg);
/* Where a page starts when the token names item i of the list. */
size_t sim_paging_token_start(const struct sim_paging *pg, size_t i);
/* Sets the page to start at start in a list of n items. */
void sim_paging_set(struct sim_paging *pg, size_t start, size_t n);

#endif
