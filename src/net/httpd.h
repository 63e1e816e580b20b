/*
 * httpd.h - the inbound HTTP/1.1 server: callgate's own connection layer on
 * libevent's plain event API, its strict request parser (net/http_parse.h),
 * a routing table, bounded requests, uniform JSON errors and streamed
 * replies.
 *
 * Protocol. Requests are parsed as RFC 9112 says and refused where two
 * implementations could frame the same bytes differently (request
 * smuggling behind a proxy): a bare LF as a line end, obs-fold, NUL, CR or
 * another control character in a field value, a field name that is not a
 * token (or "Name :"), Content-Length that is not plain digits or comes
 * twice, Content-Length with Transfer-Encoding, Transfer-Encoding on
 * HTTP/1.0 or not ending in chunked, a chunk size that is not bare hex
 * ("0x3", "+3", " 3", "3 junk"), and on HTTP/1.1 a missing, repeated or
 * malformed Host. These get 400 (a coding before chunked that callgate does
 * not decode, 501; an unknown method, 501; an Expect other than
 * 100-continue, 417) and the connection is closed, so that no smuggled
 * bytes are read as a request. Chunk extensions and trailer fields are
 * accepted and ignored. Connection tokens are honoured ("keep-alive, close"
 * closes; HTTP/1.0 stays open only when it asks for keep-alive), and every
 * response says HTTP/1.1.
 *
 * Limits. Bodies over max_body_bytes get 413 (as soon as Content-Length
 * says so, or when the chunks pass it). Header names plus values over
 * max_header_bytes, more than 100 fields, or a head (request line included)
 * past max(4 x max_header_bytes, 64 KiB) get 431. Each connection's next
 * request must arrive in full (line, headers, body) within timeout_seconds
 * of the connection opening or of the previous reply, however steadily its
 * bytes trickle in, and an idle connection is closed at the same deadline;
 * a client that stops reading a response is dropped after timeout_seconds
 * without progress. While a handler holds a request there is no deadline.
 * Options left at 0 select defaults: 1 MiB bodies, 8 KiB headers, 30 s.
 * When accept() fails for want of descriptors, accepting pauses for 100 ms
 * instead of spinning.
 *
 * Errors. Every error is JSON, {"status":N,"error":"<code>","message":...},
 * those of the protocol layer included (no HTML). Requests refused before
 * routing (400, 413, 417, 431, 501) reach the observer with route "".
 *
 * Routing. Exact paths ("/incoming"), or prefixes ending in "/ *" written
 * without the space ("/wait-times/ *" matches "/wait-times/WQ1"; the part
 * after the prefix is cg_http_req_path_rest(), possibly ""). Routes match
 * the percent-decoded path; an exact route beats any prefix, and the longest
 * prefix wins among prefixes. Unknown paths get 404, a
 * known path with another method 405 with an Allow header. HEAD is served
 * wherever GET is.
 *
 * Connections. Pipelined requests are answered in order, one at a time:
 * bytes that arrive while a handler holds a request wait in the
 * connection's buffer. Each response goes out with one writev() straight
 * from the reply call; what the socket does not take is queued.
 *
 * Callback rules. A handler runs on the loop thread with a request that
 * stays valid until it is answered. Every request is answered exactly once
 * with one of the cg_http_reply*() calls (or cg_http_stream_start()),
 * either inside the handler or later (asynchronous handlers keep the
 * pointer). If the client went away meanwhile, the reply is dropped and the
 * request freed all the same. Writing to a vanished client can raise
 * SIGPIPE: the process must ignore it. After the reply the request pointer
 * is invalid. Asynchronous owners must stop (cancel their timers) before
 * cg_httpd_free(), which answers what they still hold (503).
 *
 * Ownership. The server owns its requests. Strings returned by request
 * getters live until the reply.
 */
#ifndef CG_HTTPD_H
#define CG_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "base/form.h"

struct event_base;
struct cg_httpd;
struct cg_http_req;

enum cg_http_method {
    CG_HTTP_GET = 1 << 0,
    CG_HTTP_POST = 1 << 1,
    CG_HTTP_HEAD = 1 << 2,
    CG_HTTP_PUT = 1 << 3,
    CG_HTTP_DELETE = 1 << 4,
    CG_HTTP_OPTIONS = 1 << 5,
    CG_HTTP_PATCH = 1 << 6,
    CG_HTTP_OTHER = 1 << 7,
};

typedef void (*cg_http_handler)(struct cg_http_req *req, void *arg);

/* Called after each reply is written (or queued), for metrics and access
 * logs. route is the pattern that matched ("" when none did). */
typedef void (*cg_http_observer)(const char *route, enum cg_http_method method, int status,
                                 uint64_t duration_us, void *arg);

struct cg_httpd_opts {
    const char *bind_address; /* "127.0.0.1", "0.0.0.0", "::" */
    int port;                 /* 0 picks a free port; see cg_httpd_port() */
    size_t max_body_bytes;
    size_t max_header_bytes;
    int timeout_seconds;
    int reuseport; /* SO_REUSEPORT, for several worker processes */
};

struct cg_httpd *cg_httpd_new(struct event_base *base, const struct cg_httpd_opts *opts);
/* Returns 0, or -1 for a malformed pattern or a duplicate route. */
int cg_httpd_route(struct cg_httpd *h, const char *pattern, unsigned methods, cg_http_handler fn,
                   void *arg);
void cg_httpd_set_observer(struct cg_httpd *h, cg_http_observer fn, void *arg);
/* Called with a request no route matches, before the 404 it gets (which
 * stays): the hook may read the request with the getters, to say what was
 * probably meant, but must not answer it. */
typedef void (*cg_http_unmatched_cb)(struct cg_http_req *req, void *arg);
void cg_httpd_set_unmatched(struct cg_httpd *h, cg_http_unmatched_cb fn, void *arg);
/* Binds and starts accepting. Returns 0, or -1 with err filled. */
int cg_httpd_listen(struct cg_httpd *h, char *err, size_t errlen);
/* The bound port (useful after listening on port 0), or 0 if not listening. */
int cg_httpd_port(const struct cg_httpd *h);
/* Stops accepting new connections; requests already received continue. */
void cg_httpd_stop_accepting(struct cg_httpd *h);
/* Requests handed to a handler and not yet answered. */
size_t cg_httpd_inflight(const struct cg_httpd *h);
/* Frees the server; unanswered requests are answered 503 first. */
void cg_httpd_free(struct cg_httpd *h);

/* ---- request getters ---- */
enum cg_http_method cg_http_req_method(const struct cg_http_req *req);
/* Decoded path without the query string. */
const char *cg_http_req_path(const struct cg_http_req *req);
/* For prefix routes, the decoded remainder after the prefix ("" otherwise). */
const char *cg_http_req_path_rest(const struct cg_http_req *req);
/* The request-target exactly as received (path and raw query). */
const char *cg_http_req_uri(const struct cg_http_req *req);
/* First value of a header (case-insensitive name), or NULL. */
const char *cg_http_req_header(const struct cg_http_req *req, const char *name);
/* Raw body (NUL-terminated copy; *len excludes the terminator). Never NULL. */
const char *cg_http_req_body(struct cg_http_req *req, size_t *len);
/* Parsed query string (empty when there is none), or NULL if malformed. */
const struct cg_form *cg_http_req_query(struct cg_http_req *req);
/* Parsed application/x-www-form-urlencoded body. NULL with *err set when the
 * Content-Type is not form-encoded or the body is malformed. */
const struct cg_form *cg_http_req_form(struct cg_http_req *req, const char **err);
/* Peer address as text, and whether it is a loopback address. */
const char *cg_http_req_peer(const struct cg_http_req *req);
int cg_http_req_is_loopback(const struct cg_http_req *req);
/* The credentials of an "Authorization: Bearer <token>" header (the scheme
 * name in any case, RFC 9110 section 11.1), or NULL. Borrowed. */
const char *cg_http_req_bearer(const struct cg_http_req *req);

/* ---- replies: exactly one per request ---- */
/* Adds a response header; call before the reply. */
void cg_http_set_header(struct cg_http_req *req, const char *name, const char *value);
void cg_http_reply(struct cg_http_req *req, int status, const char *content_type, const char *body,
                   size_t len);
/* Replies with a NUL-terminated JSON text, Content-Type application/json. */
void cg_http_reply_json(struct cg_http_req *req, int status, const char *json);
/* Replies {"status":N,"error":"<code>","message":"<message>"}. code is a
 * short machine word ("not_found", "bad_signature"); message is for people
 * and must not contain secrets. */
void cg_http_reply_error(struct cg_http_req *req, int status, const char *code,
                         const char *message);

/* ---- streamed replies (server-sent events, long reports) ---- */
struct cg_http_stream;
/* Called at most once, from the loop and never inside a cg_http_stream_*()
 * call, when the client goes away (or cg_httpd_free() runs) while the
 * stream is open. The stream is freed after the callback returns. */
typedef void (*cg_http_stream_closed_cb)(struct cg_http_stream *s, void *arg);
/* Answers req with status, the headers set so far and content_type, then
 * keeps the connection for cg_http_stream_write(): chunked transfer coding
 * to HTTP/1.1 clients, a close-delimited body to HTTP/1.0 ones. A HEAD
 * request gets the headers and the stream ends at once (NULL returned, req
 * answered). max_pending bounds the bytes queued and not yet sent: a write
 * that would exceed it ends the stream (a client that stops reading is
 * dropped and holds no more memory). After this call req is invalid.
 * Returns NULL when the stream could not start (req is answered anyway). */
struct cg_http_stream *cg_http_stream_start(struct cg_http_req *req, int status,
                                            const char *content_type, size_t max_pending,
                                            cg_http_stream_closed_cb closed, void *arg);
/* Queues len bytes. Returns 0, or -1 when the stream ended here (peer gone,
 * or max_pending exceeded): it is freed, closed is NOT called, and the
 * owner must forget the pointer. */
int cg_http_stream_write(struct cg_http_stream *s, const void *data, size_t len);
/* Bytes queued and not yet sent. */
size_t cg_http_stream_pending(const struct cg_http_stream *s);
/* Caps the kernel's send buffer of the stream's socket at about bytes
 * (SO_SNDBUF; Linux doubles it): otherwise it may grow up to
 * net.ipv4.tcp_wmem's maximum (4 MiB by default) behind a client that
 * stops reading, before max_pending is ever reached. Returns 0 or -1. */
int cg_http_stream_sndbuf(struct cg_http_stream *s, int bytes);
/* Ends the stream normally (the last chunk is written, the connection is
 * kept alive or closed as the request asked); closed is not called and
 * the pointer is invalid afterwards. */
void cg_http_stream_end(struct cg_http_stream *s);

/* Standard reason phrase for a status code ("OK", "Not Found", ...). */
const char *cg_http_reason(int status);

#endif
