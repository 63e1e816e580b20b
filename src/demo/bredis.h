/*
 * bredis.h - a blocking Redis client for the foreground tools (`callgate
 * doctor`), plain or over TLS, where hiredis 0.14's blocking context has no
 * TLS. The socket is a plain blocking one with send and receive timeouts;
 * TLS is OpenSSL's, verified as the daemon verifies (src/net/redis_conn.c):
 * the CA file or the system store, TLS 1.2 or newer, the server name
 * checked (an address against the certificate's IP entries, no partial
 * wildcards), SNI for names, an optional client certificate. Commands are
 * formatted and replies parsed by hiredis (redisFormatCommand, redisReader).
 *
 * Ownership: cg_bredis_cmd's replies are the caller's (freeReplyObject).
 * Every call blocks for at most the timeout given at open (per step).
 */
#ifndef CG_BREDIS_H
#define CG_BREDIS_H

#include <stddef.h>

struct redisReply;
struct cg_bredis;

struct cg_bredis_tls {
    const char *ca_file;     /* NULL or "": the system store */
    const char *cert_file;   /* NULL or "": no client certificate */
    const char *key_file;    /* with cert_file */
    const char *server_name; /* NULL or "": the host connected to */
    int insecure;            /* no verification at all */
};

/* Connects (and completes the TLS handshake when tls is set). NULL with
 * err filled (the verification error included) on failure. */
struct cg_bredis *cg_bredis_open(const char *host, int port, const struct cg_bredis_tls *tls,
                                 long timeout_ms, char *err, size_t errlen);
/* AUTH [user] password when password is set, then SELECT db when db != 0.
 * 0, or -1 with err. */
int cg_bredis_login(struct cg_bredis *b, const char *user, const char *password, int db, char *err,
                    size_t errlen);
/* One command (hiredis format); its reply, or NULL when the connection
 * failed (cg_bredis_error says why). */
struct redisReply *cg_bredis_cmd(struct cg_bredis *b, const char *fmt, ...);
const char *cg_bredis_error(const struct cg_bredis *b);
void cg_bredis_close(struct cg_bredis *b);

#endif
