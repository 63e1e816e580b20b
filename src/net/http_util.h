/*
 * http_util.h - the pieces of the inbound HTTP server (net/httpd.c) that
 * need none of its state: the listening socket, the text of response
 * heads (reason phrases, Date, header checks), route patterns and request
 * targets. No allocation; strings returned are static or point into the
 * argument.
 */
#ifndef CG_HTTP_UTIL_H
#define CG_HTTP_UTIL_H

#include <stddef.h>

struct sockaddr;

/* A nonblocking, close-on-exec socket bound to bind_address ("::1" or
 * "[::1]" alike) and port and listening (SO_REUSEPORT with reuseport).
 * Returns it, or -1 with err naming the step that failed. */
int cg_http_listen_socket(const char *bind_address, int port_opt, int reuseport, char *err,
                          size_t errlen);
/* The client's address as text; an IPv4 client of a dual-stack listener
 * ("::ffff:192.0.2.1") shows as plain IPv4. */
void cg_http_peer_text(const struct sockaddr *sa, char *out, size_t outlen);
/* The "Date:" value for now (static, formatted once a second; loop thread
 * only). */
const char *cg_http_date(void);
/* 1 when s is an RFC 9110 token (a field name). */
int cg_http_is_token(const char *s);
/* 1 when s holds no control character but HTAB (a response field value
 * that cannot split the response). */
int cg_http_valid_value(const char *s);
/* 1 for a route pattern: an absolute path of visible ASCII, optionally
 * ending in "/\*" (then *is_prefix is 1). */
int cg_http_valid_pattern(const char *p, int *is_prefix);
/* The Allow value for a route's methods ("GET, HEAD, POST"). */
void cg_http_allow_header(unsigned methods, char *out, size_t outlen);
/* The raw path of a request-target: origin-form "/a/b?q" up to the query,
 * absolute-form "http://host/a/b" after the authority ("/" when there is
 * none). NULL when the target is neither. */
const char *cg_http_target_path(const char *t, size_t *len);

#endif
