/*
 * httpc.h - the outbound HTTP client: libcurl's multi socket API driven by
 * the same libevent loop as everything else (no threads, no blocking).
 *
 * Callback rules (as libuv's): cg_httpc_send() either returns -1 and never
 * calls back, or returns 0 and calls back exactly once, never from inside
 * cg_httpc_send() itself. The result and everything it points to are valid
 * only during the callback. cg_httpc_free() completes every pending request
 * with error "cancelled" before it returns.
 *
 * A callback may call cg_httpc_send() on the same client (a new request that
 * calls back later, from the loop) and may call cg_httpc_free() on it (the
 * client is destroyed once that callback returns). While cg_httpc_free() is
 * cancelling, cg_httpc_send() on that client returns -1.
 *
 * When error is set, status is 0, body is "" and the header fields read as
 * absent. Redirects are not followed; the header fields come from the final
 * response (a 100 Continue before it does not count).
 *
 * Connections are reused (HTTP keep-alive) across requests to the same host.
 * Response bodies larger than the request's max_response_bytes fail the
 * request with error "response too large".
 */
#ifndef CG_HTTPC_H
#define CG_HTTPC_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct cg_httpc;

/* Used when neither the request nor the client's options set a value. */
#define CG_HTTPC_DEFAULT_MAX_RESPONSE (1024 * 1024)
#define CG_HTTPC_DEFAULT_TIMEOUT_MS   30000L

struct cg_httpc_opts {
    long max_connections_per_host; /* 0: libcurl's default */
    /* Idle connections kept for reuse (CURLMOPT_MAXCONNECTS); beyond it the
     * oldest is closed when a transfer ends. 0: libcurl's default, four per
     * transfer in progress, which after a burst of thousands keeps
     * thousands, and libcurl walks them all on every new request. */
    long max_idle_connections;
    /* Transfers handed to libcurl at once; more requests wait in order in
     * the client's own queue (their timeout still counts from the send).
     * libcurl walks its transfers and connections on every request and
     * completion, so thousands at once cost it quadratic time. 0: no bound. */
    long max_active;
    size_t default_max_response_bytes;
    long default_timeout_ms;
    const char *user_agent; /* NULL: "callgate/<version>" */
};

struct cg_httpc_request {
    const char *method; /* "GET", "POST", "DELETE"; NULL means GET */
    const char *url;
    const char *body;         /* copied; NULL for none */
    size_t body_len;          /* bytes of body */
    const char *content_type; /* e.g. "application/x-www-form-urlencoded" */
    const char *basic_user;   /* HTTP Basic when both are set */
    const char *basic_pass;
    const char *bearer;         /* Authorization: Bearer <token> when set */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
    long timeout_ms;            /* 0: the client's default */
    size_t max_response_bytes;  /* 0: the client's default */
    /* One more response header to capture (case-insensitive name), reported
     * in cg_httpc_result.captured; NULL for none. */
    const char *capture_header;
};

struct cg_httpc_result {
    const char *error; /* NULL when an HTTP response arrived (any status) */
    long status;       /* HTTP status, 0 when error is set */
    const char *body;  /* NUL-terminated, "" when empty */
    size_t body_len;
    const char *content_type;      /* NULL when absent */
    double retry_after_s;          /* Retry-After in seconds, -1 when absent */
    long rate_limit_limit;         /* X-Rate-Limit-Limit, -1 when absent */
    long rate_limit_remaining;     /* X-Rate-Limit-Remaining, -1 when absent */
    const char *rate_limit_config; /* X-Rate-Limit-Config, NULL when absent */
    const char *captured;          /* value of the request's capture_header, NULL when absent */
    uint64_t duration_us;
};

typedef void (*cg_httpc_cb)(const struct cg_httpc_result *res, void *arg);

/* opts may be NULL (all defaults). Calls curl_global_init() the first time;
 * nothing global is ever cleaned up. Returns NULL on failure. */
struct cg_httpc *cg_httpc_new(struct event_base *base, const struct cg_httpc_opts *opts);
/* Returns -1 without calling back when req is invalid (no url, a method of
 * 16 bytes or more) or setup fails. Transport failures are reported through
 * the callback: result.error is "timeout", "response too large",
 * "cancelled", or curl's description of the failure. */
int cg_httpc_send(struct cg_httpc *c, const struct cg_httpc_request *req, cg_httpc_cb cb,
                  void *arg);
/* Requests sent and not yet called back. */
size_t cg_httpc_inflight(const struct cg_httpc *c);
void cg_httpc_free(struct cg_httpc *c);

#endif
