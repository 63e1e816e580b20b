/*
 * redis_sentinel.h - finding the Redis master through Redis Sentinel: asks
 * the sentinels in turn (SENTINEL get-master-addr-by-name) over the same
 * transport as the data connection (redis_conn.h, TLS included), starting
 * with the one that answered last.
 *
 * One query at a time. cg_redis_sentinel_ask() calls back exactly once,
 * always from the event loop, unless cg_redis_sentinel_cancel() or _free()
 * comes first; the callback may start a new query or free the object. Each
 * sentinel gets timeout_ms to answer before the next one is tried.
 *
 * A query is made on every connect of the data connection, so a failover is
 * followed even without the subscription; the subscription makes it prompt
 * (the demoted master may keep accepting writes until the sentinels
 * reconfigure it, which can take several seconds).
 *
 * Ownership: borrows the event base, resolver and TLS context (which must
 * outlive it); copies the strings. The host passed to the callback is
 * valid during the callback only.
 */
#ifndef CG_REDIS_SENTINEL_H
#define CG_REDIS_SENTINEL_H

#include <stddef.h>

struct event_base;
struct evdns_base;
struct cg_redis_tls;
struct cg_redis_sentinel;

/* host NULL and err set when no sentinel named the master. */
typedef void (*cg_redis_sentinel_cb)(const char *host, int port, const char *err, void *arg);

/* list: REDIS_SENTINELS syntax. NULL with err filled when it is malformed. */
struct cg_redis_sentinel *cg_redis_sentinel_new(struct event_base *base, struct evdns_base *dns,
                                                struct cg_redis_tls *tls, const char *server_name,
                                                const char *list, const char *master,
                                                const char *password, int timeout_ms, char *err,
                                                size_t errlen);
void cg_redis_sentinel_ask(struct cg_redis_sentinel *s, cg_redis_sentinel_cb cb, void *arg);
/* Drops the query in progress, if any; no callback. */
void cg_redis_sentinel_cancel(struct cg_redis_sentinel *s);
void cg_redis_sentinel_free(struct cg_redis_sentinel *s);

/* Keeps a subscription to +switch-master on one sentinel (the next one
 * after a failure, with backoff) and calls cb with the new master's address
 * whenever the sentinels switch this master. cb may not free s. */
typedef void (*cg_redis_sentinel_switch_cb)(const char *host, int port, void *arg);
void cg_redis_sentinel_watch(struct cg_redis_sentinel *s, cg_redis_sentinel_switch_cb cb,
                             void *arg);

#endif
