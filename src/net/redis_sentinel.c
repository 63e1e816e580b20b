#include "base/fmacros.h"

#include "net/redis_sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/err.h"
#include "base/log.h"
#include "base/url.h"
#include "net/redis_conn.h"

enum ev_mode { MODE_START, MODE_TIMEOUT };

struct cg_redis_sentinel {
    struct event_base *base;
    struct evdns_base *dns;
    struct cg_redis_tls *tls;
    char *server_name;
    struct cg_hostport *nodes;
    size_t n;
    char *master;
    char *password;
    int timeout_ms;

    /* the query in progress */
    int active;
    cg_redis_sentinel_cb cb;
    void *arg;
    size_t current; /* index of the sentinel asked; kept when it answers */
    size_t tried;
    struct cg_redis_conn *conn;
    int expect_auth; /* the next reply is AUTH's */
    struct event *ev;
    enum ev_mode mode;
    char last_err[200];

    /* the +switch-master subscription */
    cg_redis_sentinel_switch_cb watch_cb;
    void *watch_arg;
    struct cg_redis_conn *watch_conn;
    struct event *watch_ev; /* reconnects the subscription */
    size_t watch_idx;
    int watch_expect_auth;
    int watch_subscribed; /* SUBSCRIBE confirmed */
    int watch_awaiting;   /* a PING sent, its answer not yet seen */
    unsigned watch_failures;
};

static void arm(struct cg_redis_sentinel *s, enum ev_mode mode, int ms)
{
    s->mode = mode;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (evtimer_add(s->ev, &tv) != 0)
        cg_log_error("redis sentinel: cannot arm a timer", "");
}

static void drop_conn(struct cg_redis_sentinel *s)
{
    struct cg_redis_conn *c = s->conn;
    s->conn = NULL;
    cg_redis_conn_free(c);
}

/* Ends the query; the callback is the last thing that touches s. */
static void finish(struct cg_redis_sentinel *s, const char *host, int port, const char *err)
{
    s->active = 0;
    drop_conn(s);
    evtimer_del(s->ev);
    cg_redis_sentinel_cb cb = s->cb;
    void *arg = s->arg;
    s->cb = NULL;
    cb(host, port, err, arg);
}

static void try_current(struct cg_redis_sentinel *s);

static void next_sentinel(struct cg_redis_sentinel *s, const char *why)
{
    const struct cg_hostport *hp = &s->nodes[s->current];
    cg_log_warn("redis sentinel gave no master",
                "sentinel_host=%s sentinel_port=%d master=%s err=%s", hp->host, hp->port, s->master,
                why);
    snprintf(s->last_err, sizeof s->last_err, "%s:%d: %s", hp->host, hp->port, why);
    drop_conn(s);
    evtimer_del(s->ev);
    s->current = (s->current + 1) % s->n;
    s->tried++;
    try_current(s);
}

static void on_connected(void *arg)
{
    struct cg_redis_sentinel *s = arg;
    int rc = 0;
    if (s->password) {
        const char *auth[] = {"AUTH", s->password};
        rc |= cg_redis_conn_send_argv(s->conn, 2, auth, NULL);
        s->expect_auth = 1;
    }
    const char *ask[] = {"SENTINEL", "get-master-addr-by-name", s->master};
    rc |= cg_redis_conn_send_argv(s->conn, 3, ask, NULL);
    if (rc != 0)
        next_sentinel(s, "cannot send the query");
}

static void on_reply(redisReply *reply, void *arg)
{
    struct cg_redis_sentinel *s = arg;
    char why[200];
    if (s->expect_auth) {
        s->expect_auth = 0;
        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(why, sizeof why, "AUTH: %s", reply->str);
            next_sentinel(s, why);
        }
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        char host[256];
        snprintf(host, sizeof host, "%s", reply->element[0]->str);
        long port = strtol(reply->element[1]->str, NULL, 10);
        if (host[0] && port > 0 && port <= 65535) {
            finish(s, host, (int)port, NULL);
            return;
        }
        next_sentinel(s, "malformed master address");
    } else if (reply->type == REDIS_REPLY_NIL) {
        next_sentinel(s, "master name unknown to this sentinel");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        next_sentinel(s, reply->str);
    } else {
        next_sentinel(s, "unexpected reply");
    }
}

static void on_failed(const char *why, void *arg)
{
    next_sentinel(arg, why);
}

static void try_current(struct cg_redis_sentinel *s)
{
    if (s->tried >= s->n) {
        char err[260];
        snprintf(err, sizeof err, "no sentinel named master %s (last: %s)", s->master, s->last_err);
        finish(s, NULL, 0, err);
        return;
    }
    static const struct cg_redis_conn_cbs cbs = {
        .connected = on_connected,
        .reply = on_reply,
        .failed = on_failed,
    };
    const struct cg_hostport *hp = &s->nodes[s->current];
    char err[128];
    s->expect_auth = 0;
    s->conn = cg_redis_conn_new(s->base, s->dns, s->tls, hp->host, hp->port, s->server_name, &cbs,
                                s, err, sizeof err);
    if (s->conn == NULL) {
        next_sentinel(s, err);
        return;
    }
    arm(s, MODE_TIMEOUT, s->timeout_ms);
}

/* ---- the +switch-master subscription ---- */

#define WATCH_RETRY_MIN_MS 200
#define WATCH_RETRY_MAX_MS 5000
/* A quiet subscription is PINGed this often, so that a sentinel that
 * vanished without closing the connection is noticed. */
#define WATCH_PING_MS 5000

static void watch_arm(struct cg_redis_sentinel *s, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (evtimer_add(s->watch_ev, &tv) != 0)
        cg_log_error("redis sentinel: cannot arm a timer", "");
}

static void watch_start(struct cg_redis_sentinel *s);

static void watch_retry(struct cg_redis_sentinel *s, const char *why)
{
    const struct cg_hostport *hp = &s->nodes[s->watch_idx];
    cg_log_warn("redis sentinel subscription lost", "sentinel_host=%s sentinel_port=%d err=%s",
                hp->host, hp->port, why);
    struct cg_redis_conn *c = s->watch_conn;
    s->watch_conn = NULL;
    cg_redis_conn_free(c);
    s->watch_idx = (s->watch_idx + 1) % s->n;
    int ms = (int)cg_backoff_ms(WATCH_RETRY_MIN_MS, WATCH_RETRY_MAX_MS, s->watch_failures, 0);
    if (s->watch_failures < 30)
        s->watch_failures++;
    watch_arm(s, ms);
}

static void watch_connected(void *arg)
{
    struct cg_redis_sentinel *s = arg;
    int rc = 0;
    if (s->password) {
        const char *auth[] = {"AUTH", s->password};
        rc |= cg_redis_conn_send_argv(s->watch_conn, 2, auth, NULL);
        s->watch_expect_auth = 1;
    }
    const char *sub[] = {"SUBSCRIBE", "+switch-master"};
    rc |= cg_redis_conn_send_argv(s->watch_conn, 2, sub, NULL);
    if (rc != 0)
        watch_retry(s, "cannot subscribe");
}

/* "<name> <old ip> <old port> <new ip> <new port>" */
static void watch_message(struct cg_redis_sentinel *s, const char *msg)
{
    char name[256], oldip[256], newip[256];
    int oldport, newport;
    if (sscanf(msg, "%255s %255s %d %255s %d", name, oldip, &oldport, newip, &newport) != 5)
        return;
    if (strcmp(name, s->master) != 0 || newport <= 0 || newport > 65535)
        return;
    cg_log_info("redis sentinel announced a new master", "master=%s host=%s port=%d", name, newip,
                newport);
    s->watch_cb(newip, newport, s->watch_arg);
}

static void watch_reply(redisReply *reply, void *arg)
{
    struct cg_redis_sentinel *s = arg;
    char why[200];
    if (s->watch_expect_auth) {
        s->watch_expect_auth = 0;
        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(why, sizeof why, "AUTH: %s", reply->str);
            watch_retry(s, why);
        }
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        watch_retry(s, reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        s->watch_failures = 0;
        s->watch_subscribed = 1;
        watch_arm(s, WATCH_PING_MS);
    } else if (strcmp(kind, "pong") == 0) {
        s->watch_awaiting = 0;
        watch_arm(s, WATCH_PING_MS);
    } else if (reply->elements == 3 && strcmp(kind, "message") == 0 &&
               reply->element[2]->type == REDIS_REPLY_STRING) {
        watch_message(s, reply->element[2]->str);
    }
}

static void watch_failed(const char *why, void *arg)
{
    watch_retry(arg, why);
}

static void watch_start(struct cg_redis_sentinel *s)
{
    static const struct cg_redis_conn_cbs cbs = {
        .connected = watch_connected,
        .reply = watch_reply,
        .failed = watch_failed,
    };
    const struct cg_hostport *hp = &s->nodes[s->watch_idx];
    char err[128];
    s->watch_expect_auth = 0;
    s->watch_subscribed = 0;
    s->watch_awaiting = 0;
    s->watch_conn = cg_redis_conn_new(s->base, s->dns, s->tls, hp->host, hp->port, s->server_name,
                                      &cbs, s, err, sizeof err);
    if (s->watch_conn == NULL)
        watch_retry(s, err);
    else
        watch_arm(s, s->timeout_ms); /* connect and subscribe by then */
}

static void on_watch_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_redis_sentinel *s = arg;
    if (s->watch_cb == NULL)
        return;
    if (s->watch_conn == NULL) {
        watch_start(s);
    } else if (!s->watch_subscribed) {
        watch_retry(s, "timed out");
    } else if (s->watch_awaiting) {
        watch_retry(s, "no answer to PING");
    } else {
        const char *ping[] = {"PING"};
        if (cg_redis_conn_send_argv(s->watch_conn, 1, ping, NULL) != 0) {
            watch_retry(s, "cannot send PING");
            return;
        }
        s->watch_awaiting = 1;
        watch_arm(s, s->timeout_ms);
    }
}

void cg_redis_sentinel_watch(struct cg_redis_sentinel *s, cg_redis_sentinel_switch_cb cb, void *arg)
{
    s->watch_cb = cb;
    s->watch_arg = arg;
    watch_arm(s, 0);
}

static void on_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_redis_sentinel *s = arg;
    if (!s->active)
        return;
    if (s->mode == MODE_START)
        try_current(s);
    else
        next_sentinel(s, "timed out");
}

struct cg_redis_sentinel *cg_redis_sentinel_new(struct event_base *base, struct evdns_base *dns,
                                                struct cg_redis_tls *tls, const char *server_name,
                                                const char *list, const char *master,
                                                const char *password, int timeout_ms, char *err,
                                                size_t errlen)
{
    if (master == NULL || master[0] == '\0') {
        cg_err_set(err, errlen, "redis: a sentinel list needs the master's name");
        return NULL;
    }
    struct cg_redis_sentinel *s = cg_calloc(1, sizeof *s);
    char perr[128];
    if (cg_sentinels_parse(list, &s->nodes, &s->n, perr, sizeof perr) != 0) {
        cg_err_set(err, errlen, "redis: bad sentinel list: %s", perr);
        free(s);
        return NULL;
    }
    s->ev = evtimer_new(base, on_ev, s);
    s->watch_ev = evtimer_new(base, on_watch_ev, s);
    if (s->ev == NULL || s->watch_ev == NULL) {
        cg_err_set(err, errlen, "redis: cannot create a timer");
        if (s->ev)
            event_free(s->ev);
        if (s->watch_ev)
            event_free(s->watch_ev);
        cg_sentinels_free(s->nodes, s->n);
        free(s);
        return NULL;
    }
    s->base = base;
    s->dns = dns;
    s->tls = tls;
    s->server_name = server_name && server_name[0] ? cg_strdup(server_name) : NULL;
    s->master = cg_strdup(master);
    s->password = password && password[0] ? cg_strdup(password) : NULL;
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    return s;
}

void cg_redis_sentinel_ask(struct cg_redis_sentinel *s, cg_redis_sentinel_cb cb, void *arg)
{
    cg_redis_sentinel_cancel(s);
    s->active = 1;
    s->cb = cb;
    s->arg = arg;
    s->tried = 0;
    s->last_err[0] = '\0';
    /* From the loop, never inside this call. */
    arm(s, MODE_START, 0);
}

void cg_redis_sentinel_cancel(struct cg_redis_sentinel *s)
{
    if (s == NULL)
        return;
    s->active = 0;
    s->cb = NULL;
    drop_conn(s);
    evtimer_del(s->ev);
}

void cg_redis_sentinel_free(struct cg_redis_sentinel *s)
{
    if (s == NULL)
        return;
    cg_redis_sentinel_cancel(s);
    cg_redis_conn_free(s->watch_conn);
    event_free(s->ev);
    event_free(s->watch_ev);
    cg_sentinels_free(s->nodes, s->n);
    free(s->server_name);
    free(s->master);
    cg_free_secret(s->password);
    free(s);
}
