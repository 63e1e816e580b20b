#include "base/fmacros.h"

#include "net/redis_ask.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "net/redis_conn.h"

struct cg_redis_ask {
    struct cg_redis_conn *conn;
    struct event *timer;
    char *cmd;
    size_t len;
    char *user;
    char *password;
    int before; /* replies still due before the command's (AUTH, ASKING) */
    cg_redis_ask_cb cb;
    void *arg;
};

static void ask_free(struct cg_redis_ask *a)
{
    cg_redis_conn_free(a->conn);
    if (a->timer)
        event_free(a->timer);
    free(a->cmd);
    free(a->user);
    cg_free_secret(a->password);
    free(a);
}

static void finish(struct cg_redis_ask *a, const redisReply *reply, enum cg_redis_ask_fail fail)
{
    a->cb(reply, fail, a->arg);
    ask_free(a);
}

static void on_connected(void *arg)
{
    struct cg_redis_ask *a = arg;
    int rc = 0;
    if (a->password) {
        const char *argv[] = {"AUTH", a->user ? a->user : a->password, a->password};
        rc |= a->user ? cg_redis_conn_send_argv(a->conn, 3, argv, NULL)
                      : cg_redis_conn_send_argv(a->conn, 2, argv + 1, NULL);
        a->before++;
    }
    const char *asking[] = {"ASKING"};
    rc |= cg_redis_conn_send_argv(a->conn, 1, asking, NULL);
    a->before++;
    rc |= cg_redis_conn_send_raw(a->conn, a->cmd, a->len);
    if (rc != 0)
        finish(a, NULL, CG_ASK_DISCONNECTED);
}

static void on_reply(redisReply *reply, void *arg)
{
    struct cg_redis_ask *a = arg;
    if (a->before > 0) {
        a->before--;
        if (reply->type == REDIS_REPLY_ERROR)
            finish(a, reply, CG_ASK_REFUSED);
        return;
    }
    finish(a, reply, CG_ASK_OK);
}

static void on_failed(const char *why, void *arg)
{
    struct cg_redis_ask *a = arg;
    cg_log_warn("redis ask redirect failed", "why=%s", why);
    finish(a, NULL, CG_ASK_DISCONNECTED);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish(arg, NULL, CG_ASK_TIMEOUT);
}

struct cg_redis_ask *cg_redis_ask_new(struct event_base *base, struct evdns_base *dns,
                                      struct cg_redis_tls *tls, const struct cg_redis_ask_opts *o,
                                      const char *cmd, size_t len, cg_redis_ask_cb cb, void *arg)
{
    static const struct cg_redis_conn_cbs cbs = {
        .connected = on_connected,
        .reply = on_reply,
        .failed = on_failed,
    };
    struct cg_redis_ask *a = cg_calloc(1, sizeof *a);
    a->cb = cb;
    a->arg = arg;
    a->cmd = cg_malloc(len ? len : 1);
    memcpy(a->cmd, cmd, len);
    a->len = len;
    a->user = o->user ? cg_strdup(o->user) : NULL;
    a->password = o->password ? cg_strdup(o->password) : NULL;
    a->timer = evtimer_new(base, on_timeout, a);
    char err[128];
    if (a->timer != NULL)
        a->conn = cg_redis_conn_new(base, dns, tls, o->host, o->port, o->server_name, &cbs, a, err,
                                    sizeof err);
    if (a->conn == NULL) {
        ask_free(a);
        return NULL;
    }
    struct timeval tv = {.tv_sec = o->timeout_ms / 1000, .tv_usec = (o->timeout_ms % 1000) * 1000};
    if (evtimer_add(a->timer, &tv) != 0) {
        ask_free(a);
        return NULL;
    }
    return a;
}

void cg_redis_ask_free(struct cg_redis_ask *a)
{
    if (a != NULL)
        ask_free(a);
}
