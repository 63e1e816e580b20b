/*
 * bclient.h - blocking clients for the foreground tools (`callgate demo`,
 * `callgate doctor`): one HTTP request at a time with libcurl's easy
 * interface, and a Redis connection with hiredis' blocking context. Never
 * used by the daemon, whose every wait is on its event loop.
 *
 * Every call has a timeout; nothing here retries.
 */
#ifndef CG_BCLIENT_H
#define CG_BCLIENT_H

#include <stddef.h>

struct redisContext;

struct cg_bhttp_resp {
    long status; /* 0 when no answer came (err says why) */
    char *body;  /* NUL-terminated, malloc'd; may hold fewer bytes than sent */
    size_t len;
    char err[160];
};

/* GET url with, when set, HTTP basic credentials (user:password) or a
 * bearer token; at most max_body bytes are kept. Returns 0 when an answer
 * came (whatever its status), -1 otherwise. Free with cg_bhttp_free. */
int cg_bhttp_get(const char *url, const char *basic_user, const char *basic_password,
                 const char *bearer, long timeout_ms, size_t max_body, struct cg_bhttp_resp *out);
void cg_bhttp_free(struct cg_bhttp_resp *r);

/* Connects to a REDIS_URL (AUTH and SELECT included) with a timeout for
 * the connection and every command. NULL with err on failure; free with
 * redisFree(). */
struct redisContext *cg_bredis_connect(const char *url, long timeout_ms, char *err, size_t errlen);

#endif
