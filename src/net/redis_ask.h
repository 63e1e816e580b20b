/*
 * redis_ask.h - one command redirected by a Redis Cluster -ASK answer: the
 * slot is being migrated and this key already lives on the importing node,
 * which serves it only to a connection that says ASKING first. A short-lived
 * connection of its own (redis_conn.c: the same TLS settings and resolver)
 * sends AUTH when a password is set, ASKING, then the command, and reports
 * the command's reply. The main connection stays where it is: the slot still
 * belongs to the old node until the migration ends (then -MOVED moves it).
 *
 * Callback rules: after cg_redis_ask_new() returns an object, cb runs
 * exactly once from the event loop (never inside cg_redis_ask_new()), with
 * the reply (owned by the object, valid during the call) or a failure, and
 * the object frees itself after cb returns. cg_redis_ask_free() before that
 * cancels without a callback. The object borrows base, dns and tls, which
 * must outlive it; strings and the command bytes are copied.
 */
#ifndef CG_REDIS_ASK_H
#define CG_REDIS_ASK_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct event_base;
struct evdns_base;
struct cg_redis_tls;
struct cg_redis_ask;

enum cg_redis_ask_fail {
    CG_ASK_OK,           /* reply set */
    CG_ASK_DISCONNECTED, /* could not connect, or the node closed */
    CG_ASK_TIMEOUT,      /* no reply within timeout_ms */
    CG_ASK_REFUSED,      /* AUTH or ASKING refused: reply is that error */
};

typedef void (*cg_redis_ask_cb)(const redisReply *reply, enum cg_redis_ask_fail fail, void *arg);

struct cg_redis_ask_opts {
    const char *host;
    int port;
    const char *server_name; /* TLS: the name to verify (NULL: host) */
    const char *user;        /* NULL: AUTH password alone */
    const char *password;    /* NULL: no AUTH */
    int timeout_ms;          /* connect and reply */
};

/* cmd: the formatted command (RESP), len bytes. NULL when nothing could be
 * started (no callback then). */
struct cg_redis_ask *cg_redis_ask_new(struct event_base *base, struct evdns_base *dns,
                                      struct cg_redis_tls *tls, const struct cg_redis_ask_opts *o,
                                      const char *cmd, size_t len, cg_redis_ask_cb cb, void *arg);
/* Cancels without a callback. NULL is a no-op. */
void cg_redis_ask_free(struct cg_redis_ask *a);

#endif
