/*
 * redis_conn.h - one Redis transport: a libevent bufferevent (a plain socket
 * or OpenSSL over it) carrying RESP, with hiredis used only for the protocol
 * (redisReader to parse replies, redisFormatCommand* to format commands).
 *
 * Why not hiredis' own connection: hiredis 0.14 (Debian 12) has no TLS and
 * resolves names with a blocking getaddrinfo(). Here names are resolved with
 * libevent's asynchronous resolver (evdns) and every address it returns is
 * tried in turn until one connects.
 *
 * TLS. A cg_redis_tls context holds the CA (REDIS_TLS_CA_FILE, or the
 * system store), the optional client certificate and key, and whether
 * verification is off. The server certificate is always verified, host name
 * included: against the server name given to cg_redis_conn_new() (an IP
 * address is matched against the certificate's IP entries), which is also
 * sent as SNI when it is a name.
 *
 * Callbacks. After cg_redis_conn_new() returns a connection, exactly one of
 * these sequences follows, always from the event loop (never from inside a
 * call of this API): failed(); or connected() then any number of reply()
 * then possibly failed(). Nothing is delivered after failed(). A reply is
 * owned by the connection and freed when reply() returns. The owner may call
 * cg_redis_conn_free() from inside any callback; nothing is delivered after
 * it.
 *
 * Ownership: the connection borrows the event base, resolver and TLS
 * context, which must outlive it. The strings passed in are copied.
 */
#ifndef CG_REDIS_CONN_H
#define CG_REDIS_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct event_base;
struct evdns_base;
struct cg_redis_conn;
struct cg_redis_tls;

struct cg_redis_tls_opts {
    const char *ca_file;   /* NULL or "": the system store */
    const char *cert_file; /* client certificate chain, PEM; NULL: none */
    const char *key_file;  /* its private key, PEM; required with cert_file */
    int insecure;          /* skip verification (the caller warns) */
};

/* NULL with err filled when a file cannot be loaded. */
struct cg_redis_tls *cg_redis_tls_new(const struct cg_redis_tls_opts *o, char *err, size_t errlen);
void cg_redis_tls_free(struct cg_redis_tls *t);
int cg_redis_tls_insecure(const struct cg_redis_tls *t);

struct cg_redis_conn_cbs {
    void (*connected)(void *arg);
    void (*reply)(redisReply *reply, void *arg);
    /* why: one short phrase (a resolver, socket or TLS error) */
    void (*failed)(const char *why, void *arg);
};

/* Starts resolving and connecting. tls NULL: plain TCP. server_name: the
 * name to verify and send as SNI (NULL: host). NULL with err filled when
 * nothing could be started (out of resources); no callback then. */
struct cg_redis_conn *cg_redis_conn_new(struct event_base *base, struct evdns_base *dns,
                                        struct cg_redis_tls *tls, const char *host, int port,
                                        const char *server_name,
                                        const struct cg_redis_conn_cbs *cbs, void *arg, char *err,
                                        size_t errlen);

/* Formats and queues one command (argvlen NULL: NUL-terminated
 * arguments). 0, or -1 when the connection is not connected or formatting
 * failed. */
int cg_redis_conn_send_argv(struct cg_redis_conn *c, int argc, const char **argv,
                            const size_t *argvlen);
/* Queues an already formatted command. */
int cg_redis_conn_send_raw(struct cg_redis_conn *c, const char *cmd, size_t len);

/* Closes at once; unsent output is dropped. NULL is a no-op. */
void cg_redis_conn_free(struct cg_redis_conn *c);

#endif
