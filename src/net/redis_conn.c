#include "base/fmacros.h"

#include "net/redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/alloc.h"
#include "base/err.h"

/*
 * Life of a connection: RESOLVING (evdns_getaddrinfo) -> CONNECTING to
 * each address in turn (a new bufferevent per address; with TLS the
 * handshake is part of connecting) -> CONNECTED -> DEAD after failed().
 *
 * Re-entrancy: callbacks into the owner run with depth > 0; a free from
 * inside them only marks the connection, and the outermost entry releases
 * it. The resolver's callback gets a separate token, because a cancelled
 * request still calls back later, possibly after the connection is gone.
 */

struct cg_redis_tls {
    SSL_CTX *ctx;
    int insecure;
};

enum conn_phase { PH_RESOLVING, PH_CONNECTING, PH_CONNECTED, PH_DEAD };

struct resolve_token {
    struct cg_redis_conn *conn; /* NULL once the connection gave up on it */
};

struct cg_redis_conn {
    struct event_base *base;
    struct evdns_base *dns;
    struct cg_redis_tls *tls;
    char *host;
    char *server_name;
    int port;
    struct cg_redis_conn_cbs cbs;
    void *arg;

    enum conn_phase phase;
    struct resolve_token *token;
    struct evutil_addrinfo *addrs;
    struct evutil_addrinfo *next_addr;
    struct bufferevent *bev;
    redisReader *reader;

    struct event *ev_fail; /* reports a failure from the loop */
    char why[320];

    int depth;
    int freed;
};

/* ---- TLS context ---- */

static void ssl_err_text(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, len, "unknown error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

struct cg_redis_tls *cg_redis_tls_new(const struct cg_redis_tls_opts *o, char *err, size_t errlen)
{
    char e[160];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        cg_err_set(err, errlen, "redis TLS: cannot create a context");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto ssl_fail;
    if (o->ca_file && o->ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
            ssl_err_text(e, sizeof e);
            cg_err_set(err, errlen, "redis TLS: cannot load the CA file %s: %s", o->ca_file, e);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        goto ssl_fail;
    }
    if (o->cert_file && o->cert_file[0]) {
        if (o->key_file == NULL || o->key_file[0] == '\0') {
            cg_err_set(err, errlen, "redis TLS: a client certificate needs its key file");
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            ssl_err_text(e, sizeof e);
            cg_err_set(err, errlen, "redis TLS: cannot load the client certificate and key: %s", e);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    SSL_CTX_set_verify(ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    struct cg_redis_tls *t = cg_calloc(1, sizeof *t);
    t->ctx = ctx;
    t->insecure = o->insecure;
    return t;

ssl_fail:
    ssl_err_text(e, sizeof e);
    cg_err_set(err, errlen, "redis TLS: %s", e);
    SSL_CTX_free(ctx);
    return NULL;
}

void cg_redis_tls_free(struct cg_redis_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

int cg_redis_tls_insecure(const struct cg_redis_tls *t)
{
    return t && t->insecure;
}

/* ---- lifetime ---- */

static void release(struct cg_redis_conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->addrs)
        evutil_freeaddrinfo(c->addrs);
    if (c->reader)
        redisReaderFree(c->reader);
    event_free(c->ev_fail);
    free(c->host);
    free(c->server_name);
    free(c);
}

static void enter(struct cg_redis_conn *c)
{
    c->depth++;
}

/* Returns -1 when the connection was released. */
static int leave(struct cg_redis_conn *c)
{
    if (--c->depth == 0 && c->freed) {
        release(c);
        return -1;
    }
    return 0;
}

void cg_redis_conn_free(struct cg_redis_conn *c)
{
    if (c == NULL || c->freed)
        return;
    c->freed = 1;
    c->phase = PH_DEAD;
    if (c->token) {
        /* The resolver calls back later all the same (with
         * EVUTIL_EAI_CANCEL); the orphaned token is freed then. */
        c->token->conn = NULL;
        c->token = NULL;
    }
    if (c->bev) {
        /* Safe inside the bufferevent's own callback: libevent defers the
         * release until it returns. */
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    evtimer_del(c->ev_fail);
    if (c->depth == 0)
        release(c);
}

/* ---- failure ---- */

/* Reports a failure from the loop; the first reason wins. */
static void fail_later(struct cg_redis_conn *c, const char *why)
{
    if (c->phase == PH_DEAD)
        return;
    c->phase = PH_DEAD;
    snprintf(c->why, sizeof c->why, "%s", why);
    if (c->bev) {
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    }
    struct timeval tv = {0, 0};
    if (evtimer_add(c->ev_fail, &tv) != 0)
        snprintf(c->why, sizeof c->why, "cannot arm a timer");
}

static void on_fail_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_redis_conn *c = arg;
    enter(c);
    if (!c->freed && c->cbs.failed)
        c->cbs.failed(c->why, c->arg);
    leave(c);
}

/* ---- connecting ---- */

static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_read(struct bufferevent *bev, void *arg);

static int is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A TLS session for one attempt, verifying server_name. */
static SSL *new_ssl(struct cg_redis_conn *c)
{
    SSL *ssl = SSL_new(c->tls->ctx);
    if (ssl == NULL)
        return NULL;
    const char *name = c->server_name ? c->server_name : c->host;
    int ok = 1;
    if (!c->tls->insecure) {
        if (is_ip_literal(name)) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
        } else {
            /* No partial wildcards such as "re*.example.com". */
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, name) == 1;
        }
    }
    /* SNI carries names only, never addresses (RFC 6066). */
    if (ok && !is_ip_literal(name))
        ok = SSL_set_tlsext_host_name(ssl, name) == 1;
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* Connects to the next address; failures are reported from the loop. */
static void connect_next(struct cg_redis_conn *c, const char *last_err)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    struct evutil_addrinfo *ai = c->next_addr;
    if (ai == NULL) {
        fail_later(c, last_err ? last_err : "no address to connect to");
        return;
    }
    c->next_addr = ai->ai_next;
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (c->tls) {
        SSL *ssl = new_ssl(c);
        if (ssl == NULL) {
            fail_later(c, "cannot set up a TLS session");
            return;
        }
        c->bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
        if (c->bev == NULL) {
            SSL_free(ssl);
            fail_later(c, "cannot create a TLS connection");
            return;
        }
        /* A server killed mid-stream sends no close_notify; that is a
         * disconnect like any other, not a protocol violation. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(c->base, -1, opts);
        if (c->bev == NULL) {
            fail_later(c, "cannot create a connection");
            return;
        }
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    c->phase = PH_CONNECTING;
    if (bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "connect: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        connect_next(c, msg);
    }
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct resolve_token *tok = arg;
    struct cg_redis_conn *c = tok->conn;
    free(tok);
    if (c == NULL) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    c->token = NULL;
    if (result != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot resolve %s: %s", c->host, evutil_gai_strerror(result));
        if (res)
            evutil_freeaddrinfo(res);
        fail_later(c, msg);
        return;
    }
    c->addrs = res;
    c->next_addr = res;
    connect_next(c, NULL);
}

struct cg_redis_conn *cg_redis_conn_new(struct event_base *base, struct evdns_base *dns,
                                        struct cg_redis_tls *tls, const char *host, int port,
                                        const char *server_name,
                                        const struct cg_redis_conn_cbs *cbs, void *arg, char *err,
                                        size_t errlen)
{
    struct cg_redis_conn *c = cg_calloc(1, sizeof *c);
    c->base = base;
    c->dns = dns;
    c->tls = tls;
    c->host = cg_strdup(host);
    c->server_name = server_name && server_name[0] ? cg_strdup(server_name) : NULL;
    c->port = port;
    c->cbs = *cbs;
    c->arg = arg;
    c->phase = PH_RESOLVING;
    c->reader = redisReaderCreate();
    c->ev_fail = evtimer_new(base, on_fail_event, c);
    if (c->reader == NULL || c->ev_fail == NULL) {
        cg_err_set(err, errlen, "out of memory");
        release(c);
        return NULL;
    }

    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* No AI_ADDRCONFIG: it would refuse a literal ::1 on a host without a
     * global IPv6 address; an unreachable family just moves on to the next
     * address. */
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    /* A literal address or a hosts-file entry is answered inside this call
     * (the callback then runs before it returns, and connecting starts
     * here); a name goes out to DNS without blocking the loop. Either way
     * the owner hears back only from the loop. */
    struct resolve_token *tok = cg_calloc(1, sizeof *tok);
    tok->conn = c;
    c->token = tok;
    enter(c);
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(dns, c->host, portstr, &hints, on_resolved, tok);
    (void)req; /* cancellation goes through the token */
    leave(c);
    return c;
}

/* ---- I/O ---- */

/* The operator's next step for a refused certificate: a repeated connect
 * failure at 3 a.m. should name the setting to change, not only OpenSSL's
 * words. */
static const char *verify_fix(long vr)
{
    switch (vr) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "fix: connect by a name the certificate lists, or set REDIS_TLS_SERVER_NAME "
               "to it";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "fix: renew the server's certificate, or check this machine's clock";
    default:
        return "fix: REDIS_TLS_CA_FILE must name the CA that signed the server's certificate "
               "(empty: the system store)";
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct cg_redis_conn *c = arg;
    if (c->freed || c->phase == PH_DEAD)
        return;
    enter(c);
    if (what & BEV_EVENT_CONNECTED) {
        c->phase = PH_CONNECTED;
        if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
            fail_later(c, "cannot watch the socket");
        else if (c->cbs.connected)
            c->cbs.connected(c->arg);
        leave(c);
        return;
    }
    char msg[320];
    unsigned long sslerr = c->tls ? bufferevent_get_openssl_error(c->bev) : 0;
    if (sslerr) {
        char e[160];
        ERR_error_string_n(sslerr, e, sizeof e);
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (vr != X509_V_OK)
            snprintf(msg, sizeof msg, "TLS: certificate verification failed: %s (%s)",
                     X509_verify_cert_error_string(vr), verify_fix(vr));
        else
            snprintf(msg, sizeof msg, "TLS: %s", e);
        while (bufferevent_get_openssl_error(c->bev) != 0)
            ;
    } else if (what & BEV_EVENT_EOF) {
        snprintf(msg, sizeof msg, "connection closed by the server");
    } else {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(msg, sizeof msg, "%s", e ? evutil_socket_error_to_string(e) : "I/O error");
    }
    if (c->phase == PH_CONNECTING && !sslerr)
        connect_next(c, msg); /* the next address, if any */
    else
        fail_later(c, msg);
    leave(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct cg_redis_conn *c = arg;
    if (c->freed || c->phase != PH_CONNECTED)
        return;
    enter(c);
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[16384];
    int n;
    while (!c->freed && c->phase == PH_CONNECTED &&
           (n = evbuffer_remove(in, buf, sizeof buf)) > 0) {
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
            fail_later(c, "protocol error");
            break;
        }
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
                fail_later(c, c->reader->errstr[0] ? c->reader->errstr : "protocol error");
                break;
            }
            if (reply == NULL)
                break;
            c->cbs.reply(reply, c->arg);
            freeReplyObject(reply);
            if (c->freed || c->phase != PH_CONNECTED)
                break;
        }
    }
    leave(c);
}

int cg_redis_conn_send_raw(struct cg_redis_conn *c, const char *cmd, size_t len)
{
    if (c == NULL || c->freed || c->phase != PH_CONNECTED)
        return -1;
    return bufferevent_write(c->bev, cmd, len) == 0 ? 0 : -1;
}

int cg_redis_conn_send_argv(struct cg_redis_conn *c, int argc, const char **argv,
                            const size_t *argvlen)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return -1;
    int rc = cg_redis_conn_send_raw(c, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}
