#include "base/fmacros.h"

#include "demo/bredis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"

struct cg_bredis {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    redisReader *reader;
    char err[200];
};

static int is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The first OpenSSL error queued, or what. */
static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[160] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    cg_err_set(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

static int connect_tcp(const char *host, int port, long timeout_ms, char *err, size_t errlen)
{
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0) {
        cg_err_set(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int fd = -1, last = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        /* On Linux the send timeout bounds connect() too. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            last = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        cg_err_set(err, errlen, "cannot connect to %s:%d: %s", host, port,
                   last ? strerror(last) : "no address");
    return fd;
}

static int start_tls(struct cg_bredis *b, const char *host, const struct cg_bredis_tls *t,
                     char *err, size_t errlen)
{
    b->ctx = SSL_CTX_new(TLS_client_method());
    if (b->ctx == NULL || SSL_CTX_set_min_proto_version(b->ctx, TLS1_2_VERSION) != 1) {
        ssl_err(err, errlen, "cannot set up TLS");
        return -1;
    }
    if (t->ca_file && t->ca_file[0]) {
        if (SSL_CTX_load_verify_locations(b->ctx, t->ca_file, NULL) != 1) {
            ssl_err(err, errlen, "cannot load REDIS_TLS_CA_FILE");
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(b->ctx) != 1) {
        ssl_err(err, errlen, "cannot load the system's CA store");
        return -1;
    }
    if (t->cert_file && t->cert_file[0] &&
        (SSL_CTX_use_certificate_chain_file(b->ctx, t->cert_file) != 1 ||
         SSL_CTX_use_PrivateKey_file(b->ctx, t->key_file, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(b->ctx) != 1)) {
        ssl_err(err, errlen, "cannot load REDIS_TLS_CERT_FILE / REDIS_TLS_KEY_FILE");
        return -1;
    }
    SSL_CTX_set_verify(b->ctx, t->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    b->ssl = SSL_new(b->ctx);
    const char *name = t->server_name && t->server_name[0] ? t->server_name : host;
    int ok = b->ssl != NULL;
    if (ok && !t->insecure) {
        if (is_ip_literal(name)) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(b->ssl), name) == 1;
        } else {
            SSL_set_hostflags(b->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(b->ssl, name) == 1;
        }
    }
    if (ok && !is_ip_literal(name))
        ok = SSL_set_tlsext_host_name(b->ssl, name) == 1;
    if (!ok || SSL_set_fd(b->ssl, b->fd) != 1) {
        ssl_err(err, errlen, "cannot set up TLS");
        return -1;
    }
    if (SSL_connect(b->ssl) != 1) {
        long vr = SSL_get_verify_result(b->ssl);
        if (vr != X509_V_OK)
            cg_err_set(err, errlen, "TLS: the certificate of %s was refused: %s", name,
                       X509_verify_cert_error_string(vr));
        else
            ssl_err(err, errlen, "TLS handshake failed");
        return -1;
    }
    return 0;
}

struct cg_bredis *cg_bredis_open(const char *host, int port, const struct cg_bredis_tls *tls,
                                 long timeout_ms, char *err, size_t errlen)
{
    int fd = connect_tcp(host, port, timeout_ms, err, errlen);
    if (fd < 0)
        return NULL;
    struct cg_bredis *b = cg_calloc(1, sizeof *b);
    b->fd = fd;
    b->reader = redisReaderCreate();
    if (b->reader == NULL) {
        cg_err_set(err, errlen, "out of memory");
        cg_bredis_close(b);
        return NULL;
    }
    if (tls != NULL && start_tls(b, host, tls, err, errlen) != 0) {
        cg_bredis_close(b);
        return NULL;
    }
    return b;
}

static int write_all(struct cg_bredis *b, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = b->ssl ? SSL_write(b->ssl, p, (int)n) : write(b->fd, p, n);
        if (w <= 0) {
            if (!b->ssl && w < 0 && errno == EINTR)
                continue;
            if (b->ssl) {
                /* The server's alert (a client certificate it wanted, say)
                 * may be waiting to be read: reading surfaces it. */
                char alert[64];
                ERR_clear_error();
                (void)SSL_read(b->ssl, alert, sizeof alert);
                ssl_err(b->err, sizeof b->err, "cannot send over TLS");
            } else {
                cg_err_set(b->err, sizeof b->err, "cannot send: %s", strerror(errno));
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static redisReply *read_reply(struct cg_bredis *b)
{
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(b->reader, &reply) != REDIS_OK) {
            cg_err_set(b->err, sizeof b->err, "protocol error: %s", b->reader->errstr);
            return NULL;
        }
        if (reply != NULL)
            return reply;
        char buf[16384];
        ssize_t n = b->ssl ? SSL_read(b->ssl, buf, sizeof buf) : read(b->fd, buf, sizeof buf);
        if (n <= 0) {
            if (!b->ssl && n < 0 && errno == EINTR)
                continue;
            if (b->ssl && n < 0)
                /* E.g. "tlsv13 alert certificate required": with TLS 1.3 the
                 * server judges the client's certificate after the handshake. */
                ssl_err(b->err, sizeof b->err, "TLS read failed (or timed out)");
            else
                cg_err_set(b->err, sizeof b->err, "%s",
                           n == 0                                    ? "the connection was closed"
                           : errno == EAGAIN || errno == EWOULDBLOCK ? "timed out"
                                                                     : strerror(errno));
            return NULL;
        }
        if (redisReaderFeed(b->reader, buf, (size_t)n) != REDIS_OK) {
            cg_err_set(b->err, sizeof b->err, "protocol error");
            return NULL;
        }
    }
}

redisReply *cg_bredis_cmd(struct cg_bredis *b, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        cg_err_set(b->err, sizeof b->err, "cannot format a command");
        return NULL;
    }
    int rc = write_all(b, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc == 0 ? read_reply(b) : NULL;
}

int cg_bredis_login(struct cg_bredis *b, const char *user, const char *password, int db, char *err,
                    size_t errlen)
{
    redisReply *r;
    if (password && password[0]) {
        r = user && user[0] ? cg_bredis_cmd(b, "AUTH %s %s", user, password)
                            : cg_bredis_cmd(b, "AUTH %s", password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            cg_err_set(err, errlen, "AUTH failed: %s", r ? r->str : b->err);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (db != 0) {
        r = cg_bredis_cmd(b, "SELECT %d", db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            cg_err_set(err, errlen, "SELECT %d failed: %s", db, r ? r->str : b->err);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

const char *cg_bredis_error(const struct cg_bredis *b)
{
    return b->err;
}

void cg_bredis_close(struct cg_bredis *b)
{
    if (b == NULL)
        return;
    if (b->ssl) {
        SSL_shutdown(b->ssl);
        SSL_free(b->ssl);
    }
    SSL_CTX_free(b->ctx);
    if (b->reader)
        redisReaderFree(b->reader);
    if (b->fd >= 0)
        close(b->fd);
    free(b);
}
