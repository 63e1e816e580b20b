/*
 * redisx.h - redis-server set-ups the plain private Redis (demo/proc.h)
 * does not cover: a test PKI made at test time, Redis over TLS, replicas
 * and sentinels. Every node is a child process (struct cgt_proc) in a
 * temporary directory of its own, on 127.0.0.1; helpers fail the test when
 * something cannot be set up.
 */
#ifndef CGT_REDISX_H
#define CGT_REDISX_H

#include "harness.h"

/* Makes, with the openssl CLI, in dir: ca.pem/ca.key (the test CA),
 * other-ca.pem (an unrelated CA), server.pem/server.key (signed by the CA
 * for DNS:localhost and IP:127.0.0.1) and client.pem/client.key (a client
 * certificate signed by the CA). */
void cgt_tls_pki(const char *dir);

struct cgt_redis_node {
    struct cgt_proc proc;
    int port;
    char *dir; /* malloc'd, removed by cgt_redis_node_stop() */
    int tls;   /* listens with TLS only */
};

/* Starts redis-server on a free port with extra arguments (NULL-terminated,
 * may be NULL). pki non-NULL: TLS only, with the PKI's server certificate
 * and CA; client_auth requires client certificates. Waits until it accepts
 * connections. */
void cgt_redis_node_start(struct cgt_redis_node *n, const char *pki, int client_auth,
                          const char *const *extra);
/* The same on a given port (a restart where the old node was). */
void cgt_redis_node_start_on(struct cgt_redis_node *n, const char *pki, int client_auth, int port,
                             const char *const *extra);
/* Starts a sentinel monitoring 127.0.0.1:master_port as `name` (quorum 1,
 * down after 1 s); password non-NULL: the sentinel requires it. */
void cgt_sentinel_start(struct cgt_redis_node *n, const char *name, int master_port,
                        const char *password);
/* The same over TLS with the PKI's server certificate (tls-port only;
 * outgoing connections to the monitored nodes use TLS too). */
void cgt_sentinel_start_tls(struct cgt_redis_node *n, const char *name, int master_port,
                            const char *pki);
/* A master, a replica in sync with it, and a sentinel monitoring the
 * master as name (password as cgt_sentinel_start's); wait_replica: until
 * the sentinel knows the replica too, which it must before it can fail
 * over to it. */
void cgt_sentinel_trio(struct cgt_redis_node *master, struct cgt_redis_node *replica,
                       struct cgt_redis_node *sentinel, const char *name, const char *password,
                       int wait_replica);
/* Runs redis-cli --tls (trusting the PKI's CA) with args against a TLS node;
 * its output, malloc'd. */
char *cgt_tls_cli(const struct cgt_redis_node *n, const char *pki, const char *args);
/* SENTINEL FAILOVER name, retried while the sentinel has no replica it
 * deems suitable yet (its view of a new replica needs a few seconds). */
void cgt_sentinel_failover(const struct cgt_redis_node *sentinel, const char *name);
void cgt_redis_node_stop(struct cgt_redis_node *n);
/* A command to a plain (non-TLS) node, as cgt_redis_cmd() answers. */
char *cgt_node_cmd(const struct cgt_redis_node *n, const char *fmt, ...);
/* Polls the command every 100 ms until its answer contains want; 0, or -1
 * after timeout_ms. */
int cgt_node_wait(const struct cgt_redis_node *n, const char *cmd, const char *want,
                  int timeout_ms);

#endif
