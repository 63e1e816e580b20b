/*
 * url.h - parsing of the URLs callgate is configured with.
 *
 * REDIS_URL: redis[s]://[[user]:password@]host[:port][/db]. Host may be a
 * name, an IPv4 address or a bracketed IPv6 address; port defaults to 6379
 * and db to 0; userinfo is percent-decoded. "rediss://" asks for TLS; any
 * other scheme is refused.
 *
 * Base URLs (PUBLIC_URL, *_BASE_URL): http:// or https://, a host, optional
 * port and path, no query or fragment. The trailing '/' is removed so that
 * paths can be appended.
 *
 * Pure functions, no I/O: fuzz targets. Errors are written to err as one
 * short sentence without the URL itself (it may carry a password).
 *
 * Ownership: a parse returns 0 and fills *out with malloc'd strings, which
 * the matching _free() releases (the password is wiped first); on -1 *out
 * holds nothing to free.
 */
#ifndef CG_URL_H
#define CG_URL_H

#include <stddef.h>

struct cg_redis_url {
    char *host;     /* without brackets */
    int port;       /* 1-65535 */
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent */
    int db;         /* >= 0 */
    int tls;        /* 1 for rediss:// */
};

int cg_redis_url_parse(const char *url, struct cg_redis_url *out, char *err, size_t errlen);
void cg_redis_url_free(struct cg_redis_url *u);

/* REDIS_SENTINELS: host[:port][,host[:port]...], port 26379 by default,
 * hosts as in REDIS_URL; spaces around the commas are allowed. At most
 * CG_SENTINELS_MAX entries. */
#define CG_SENTINELS_MAX 16
struct cg_hostport {
    char *host; /* without brackets */
    int port;
};
int cg_sentinels_parse(const char *list, struct cg_hostport **out, size_t *n, char *err,
                       size_t errlen);
void cg_sentinels_free(struct cg_hostport *list, size_t n);

struct cg_base_url {
    char *scheme;     /* "http" or "https" */
    char *host;       /* as written, brackets kept for IPv6 */
    int port;         /* explicit port, or 0 when absent */
    char *path;       /* "" or "/prefix" without trailing slash */
    char *normalized; /* scheme://host[:port]path, no trailing slash */
};

int cg_base_url_parse(const char *url, struct cg_base_url *out, char *err, size_t errlen);

/* Whether a host (an IPv4 or IPv6 address as text, bracketed or not, or a
 * name) is this machine's loopback: 127.0.0.0/8, ::1, IPv4-mapped
 * 127.x, or the name localhost. */
int cg_host_is_loopback(const char *host);
void cg_base_url_free(struct cg_base_url *u);

/* 1 when url has the same scheme, host and port as base (compared without
 * regard to case, default ports made explicit; any path, query or fragment
 * allowed), so that following a URL an API handed back (a next page) never
 * sends the credentials anywhere else. 0 for anything but http(s), for user
 * information in the authority and for a malformed host or port. */
int cg_url_same_origin(const char *base, const char *url);

#endif
