#include "base/fmacros.h"

#include "net/redis.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "base/err.h"
#include "base/alloc.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "base/url.h"
#include "net/redis_ask.h"
#include "net/redis_conn.h"
#include "net/redis_sentinel.h"

/*
 * How the pieces fit.
 *
 * Every command sent to Redis has a record (struct cmd) in the in-flight
 * FIFO, in the order it was written; Redis answers in order, so the head is
 * always the command the next reply belongs to. The FIFO is
 * the source of truth: timeouts look at its head, and when the connection
 * goes away its records are failed by this file.
 *
 * The transport (redis_conn.c) delivers parsed replies in order and at most
 * one failure, and nothing once it is freed; this file frees it before it
 * fails its records, so a dead connection can never reach a record again.
 * Records are popped from their list before their callback runs and freed
 * before it is called, so no path can reach a record twice.
 *
 * User callbacks may re-enter this API. Commands issued from them see the
 * state as already updated (a failing connection is DISCONNECTED before its
 * commands are failed), so they are sent or queued for a deferred failure,
 * never delivered inline. cg_redis_free() from a callback is supported: the
 * object is only released when the outermost entry from the event loop
 * (counted in busy) unwinds, and every path that runs user code checks
 * r->freeing afterwards and stops touching the object.
 */

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_COMMAND_TIMEOUT_MS 2000
#define DEFAULT_BACKOFF_MIN_MS     100
#define DEFAULT_BACKOFF_MAX_MS     5000

const char cg_redis_err_disconnected[] = "redis disconnected";
const char cg_redis_err_timeout[] = "redis timeout";
const char cg_redis_err_closed[] = "redis closed";
const char cg_redis_err_protocol[] = "redis protocol error";

enum cmd_kind {
    CMD_USER,   /* a caller's command or script */
    CMD_AUTH,   /* handshake steps, in the order they are sent */
    CMD_SELECT, /* */
    CMD_LOAD,   /* SCRIPT LOAD during the handshake */
    CMD_ROLE,   /* with Sentinel: the node must still be the master */
    CMD_PING,   /* last handshake step: its answer means READY */
    CMD_BGLOAD, /* SCRIPT LOAD of a script registered while READY */
};

struct cmd {
    struct cmd *next;
    enum cmd_kind kind;
    cg_redis_cb cb;
    void *arg;
    uint64_t deadline; /* monotonic ms; only meaningful once READY */
    const char *err;   /* failure to deliver, while on a failure list */
    int script_id;     /* eval and script loads; -1 otherwise */
    int retried;       /* eval already resent as EVAL after NOSCRIPT */
    /* Eval only: a private copy of the arguments, so that the call can be
     * resent as EVAL after NOSCRIPT. Slots 0 and 1 (command and SHA or
     * source) are filled in at send time. One allocation. */
    int argc;
    const char **argv;
    size_t *argvlen;
    /* Other user commands: the formatted bytes, kept for an -ASK redirect. */
    char *raw;
    size_t rawlen;
    struct cg_redis *owner;   /* while an -ASK redirect runs */
    struct cg_redis_ask *ask; /* that redirect */
};

struct cmdq {
    struct cmd *head;
    struct cmd *tail;
};

struct script {
    char *name;
    char *lua;
    char sha[41];
    unsigned noscript_conn; /* conn_serial of the last NOSCRIPT logged */
};

struct cg_redis {
    struct event_base *base;
    struct cg_redis_url url;
    int connect_timeout_ms;
    int command_timeout_ms;
    int backoff_min_ms;
    int backoff_max_ms;

    enum cg_redis_state state;
    cg_redis_state_cb state_cb;
    void *state_arg;

    struct evdns_base *dns;             /* asynchronous name resolution */
    struct cg_redis_tls *tls;           /* rediss://, or NULL */
    char *tls_server_name;              /* REDIS_TLS_SERVER_NAME, or NULL */
    struct cg_redis_conn *conn;         /* the current transport, or NULL */
    struct cg_redis_sentinel *sentinel; /* REDIS_SENTINELS, or NULL */
    uint64_t connect_deadline;
    unsigned attempt;     /* failed connects since the last READY */
    unsigned conn_serial; /* counts connection attempts; 0 is never used */

    struct cmdq inflight; /* sent, in reply order */
    size_t inflight_user; /* user records in inflight */
    struct cmdq deferred; /* refused commands waiting for the kick */
    struct cmdq failing;  /* being failed right now */
    struct cmdq asking;   /* sent again to another node after -ASK */
    size_t npending;      /* user callbacks still owed */

    struct script *scripts;
    int nscripts;

    struct event *ev_timer; /* connect deadline or oldest command's deadline */
    struct event *ev_retry; /* reconnect backoff */
    struct event *ev_kick;  /* zero-delay: deferred failures, graceful close */

    int closing; /* cg_redis_close() called: refuse new commands */
    int freeing; /* cg_redis_free() called: release when busy drops to 0 */
    int busy;    /* nesting depth of entries from the event loop */
};

/* ---- small helpers ---- */

static void q_push(struct cmdq *q, struct cmd *c)
{
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
}

static struct cmd *q_pop(struct cmdq *q)
{
    struct cmd *c = q->head;
    if (c) {
        q->head = c->next;
        if (q->head == NULL)
            q->tail = NULL;
        c->next = NULL;
    }
    return c;
}

/* Appends every record of src to dst, leaving src empty. */
static void q_splice(struct cmdq *dst, struct cmdq *src)
{
    if (src->head == NULL)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/* Takes c out of q wherever it is (the -ASK list: short, rarely used). */
static void q_remove(struct cmdq *q, struct cmd *c)
{
    struct cmd *prev = NULL;
    for (struct cmd *it = q->head; it; prev = it, it = it->next) {
        if (it != c)
            continue;
        if (prev)
            prev->next = c->next;
        else
            q->head = c->next;
        if (q->tail == c)
            q->tail = prev;
        c->next = NULL;
        return;
    }
}

static struct cmd *cmd_new(enum cmd_kind kind)
{
    struct cmd *c = cg_calloc(1, sizeof *c);
    c->kind = kind;
    c->script_id = -1;
    return c;
}

static void cmd_free(struct cmd *c)
{
    /* argvlen and the argument bytes live in the argv block. */
    free(c->argv);
    free(c->raw);
    free(c);
}

static void timer_add_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    if (evtimer_add(ev, &tv) != 0)
        cg_log_error("redis: cannot arm a timer", "delay_ms=%llu", (unsigned long long)ms);
}

const char *cg_redis_state_name(enum cg_redis_state s)
{
    switch (s) {
    case CG_REDIS_DISCONNECTED:
        return "disconnected";
    case CG_REDIS_CONNECTING:
        return "connecting";
    case CG_REDIS_READY:
        return "ready";
    case CG_REDIS_CLOSED:
        return "closed";
    }
    return "unknown";
}

/* ---- entry bookkeeping (see the comment at the top) ---- */

static void destroy(struct cg_redis *r)
{
    event_free(r->ev_timer);
    event_free(r->ev_retry);
    event_free(r->ev_kick);
    for (int i = 0; i < r->nscripts; i++) {
        free(r->scripts[i].name);
        free(r->scripts[i].lua);
    }
    free(r->scripts);
    cg_redis_url_free(&r->url);
    if (r->dns)
        evdns_base_free(r->dns, 1);
    cg_redis_sentinel_free(r->sentinel);
    cg_redis_tls_free(r->tls);
    free(r->tls_server_name);
    free(r);
}

static void enter(struct cg_redis *r)
{
    r->busy++;
}

static void leave(struct cg_redis *r)
{
    if (--r->busy == 0 && r->freeing)
        destroy(r);
}

/* Runs the state callback; returns -1 when it freed the object. */
static int notify(struct cg_redis *r, enum cg_redis_state s)
{
    if (r->state_cb)
        r->state_cb(s, r->state_arg);
    return r->freeing ? -1 : 0;
}

/* Calls a user callback exactly once and frees its record first, so the
 * callback may do anything, including freeing the connection. */
static void deliver(struct cg_redis *r, struct cmd *c, const redisReply *reply, const char *err)
{
    cg_redis_cb cb = c->cb;
    void *arg = c->arg;
    r->npending--;
    cmd_free(c);
    cb(reply, err, arg);
}

/* Delivers the failing list; returns -1 when a callback freed the object. */
static int drain_failing(struct cg_redis *r)
{
    struct cmd *c;
    while ((c = q_pop(&r->failing)) != NULL) {
        deliver(r, c, NULL, c->err);
        if (r->freeing)
            return -1;
    }
    return 0;
}

static void kick(struct cg_redis *r)
{
    if (!evtimer_pending(r->ev_kick, NULL))
        timer_add_ms(r->ev_kick, 0);
}

/* Queues a failure to be delivered from the loop: callers never get a
 * callback before their call returns. */
static void defer_fail(struct cg_redis *r, struct cmd *c, const char *err)
{
    c->err = err;
    q_push(&r->deferred, c);
    kick(r);
}

/* ---- the in-flight FIFO and the deadline timer ---- */

static void inflight_push(struct cg_redis *r, struct cmd *c)
{
    q_push(&r->inflight, c);
    if (c->kind == CMD_USER)
        r->inflight_user++;
    /* Deadlines are assigned in send order with one fixed timeout, so the
     * head always has the earliest one and a pending timer never fires
     * later than the new record's deadline. */
    if (r->state == CG_REDIS_READY && !evtimer_pending(r->ev_timer, NULL)) {
        uint64_t now = cg_mono_ms();
        timer_add_ms(r->ev_timer,
                     r->inflight.head->deadline > now ? r->inflight.head->deadline - now : 0);
    }
}

static struct cmd *inflight_pop(struct cg_redis *r)
{
    struct cmd *c = q_pop(&r->inflight);
    if (c && c->kind == CMD_USER)
        r->inflight_user--;
    return c;
}

/* Moves in-flight records to the failing list. Internal ones are dropped.
 * Records whose deadline is at or before expired_at (0: none) fail with
 * cg_redis_err_timeout, the others with err. */
static void fail_inflight(struct cg_redis *r, uint64_t expired_at, const char *err)
{
    struct cmd *c;
    while ((c = inflight_pop(r)) != NULL) {
        if (c->kind != CMD_USER) {
            cmd_free(c);
            continue;
        }
        c->err = expired_at && c->deadline <= expired_at ? cg_redis_err_timeout : err;
        q_push(&r->failing, c);
    }
}

/* ---- connection lifecycle ---- */

static void on_conn_connected(void *arg);
static void on_conn_reply(redisReply *reply, void *arg);
static void on_conn_failed(const char *why, void *arg);

/* Closes the current transport; it delivers nothing afterwards, even when
 * this runs inside one of its callbacks. */
static void drop_conn(struct cg_redis *r)
{
    cg_redis_sentinel_cancel(r->sentinel);
    struct cg_redis_conn *c = r->conn;
    r->conn = NULL;
    cg_redis_conn_free(c);
}

static void schedule_retry(struct cg_redis *r)
{
    int delay = (int)cg_backoff_ms(r->backoff_min_ms, r->backoff_max_ms, r->attempt, 0);
    if (r->attempt < UINT_MAX)
        r->attempt++;
    cg_log_debug("redis reconnect scheduled", "delay_ms=%d attempt=%u", delay, r->attempt);
    timer_add_ms(r->ev_retry, (uint64_t)delay);
}

/* The connection is gone or being abandoned: fail what was in flight and
 * either back off and retry or, when closing, finish as CLOSED. */
static void conn_down(struct cg_redis *r, uint64_t expired_at)
{
    drop_conn(r);
    evtimer_del(r->ev_timer);
    enum cg_redis_state next = r->closing ? CG_REDIS_CLOSED : CG_REDIS_DISCONNECTED;
    /* The new state is in place before any callback runs, so commands
     * issued from those callbacks are refused rather than sent. */
    r->state = next;
    if (next == CG_REDIS_DISCONNECTED)
        schedule_retry(r);
    fail_inflight(r, expired_at, cg_redis_err_disconnected);
    if (drain_failing(r) != 0)
        return;
    notify(r, next);
}

/* Cancels the -ASK redirects and moves their records to the failing list. */
static void fail_asking(struct cg_redis *r, const char *err)
{
    struct cmd *c;
    while ((c = q_pop(&r->asking)) != NULL) {
        cg_redis_ask_free(c->ask);
        c->ask = NULL;
        c->err = err;
        q_push(&r->failing, c);
    }
}

static void finish_close(struct cg_redis *r)
{
    drop_conn(r);
    evtimer_del(r->ev_timer);
    evtimer_del(r->ev_retry);
    r->state = CG_REDIS_CLOSED;
    fail_inflight(r, 0, cg_redis_err_closed);
    fail_asking(r, cg_redis_err_closed);
    if (drain_failing(r) != 0)
        return;
    cg_log_info("redis closed", "host=%s port=%d", r->url.host, r->url.port);
    notify(r, CG_REDIS_CLOSED);
}

static int send_internal(struct cg_redis *r, enum cmd_kind kind, int script_id, int argc,
                         const char **argv)
{
    struct cmd *c = cmd_new(kind);
    c->script_id = script_id;
    c->deadline = cg_mono_ms() + (uint64_t)r->command_timeout_ms;
    if (cg_redis_conn_send_argv(r->conn, argc, argv, NULL) != 0) {
        cg_log_error("redis: cannot queue a command", "host=%s port=%d", r->url.host, r->url.port);
        cmd_free(c);
        return -1;
    }
    inflight_push(r, c);
    return 0;
}

/* AUTH, SELECT, SCRIPT LOAD of every script, PING; pipelined. The PING
 * answer marks the end of the handshake, and it also proves that a server
 * which accepted the TCP connection is actually serving. */
static void send_handshake(struct cg_redis *r)
{
    int rc = 0;
    if (r->url.password) {
        if (r->url.user) {
            const char *argv[] = {"AUTH", r->url.user, r->url.password};
            rc |= send_internal(r, CMD_AUTH, -1, 3, argv);
        } else {
            const char *argv[] = {"AUTH", r->url.password};
            rc |= send_internal(r, CMD_AUTH, -1, 2, argv);
        }
    }
    if (r->url.db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *argv[] = {"SELECT", db};
        rc |= send_internal(r, CMD_SELECT, -1, 2, argv);
    }
    for (int i = 0; i < r->nscripts; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", r->scripts[i].lua};
        rc |= send_internal(r, CMD_LOAD, i, 3, argv);
    }
    if (r->sentinel) {
        /* A sentinel's answer may be stale (a failover in progress). */
        const char *role[] = {"ROLE"};
        rc |= send_internal(r, CMD_ROLE, -1, 1, role);
    }
    const char *ping[] = {"PING"};
    rc |= send_internal(r, CMD_PING, -1, 1, ping);
    if (rc != 0) {
        cg_log_error("redis handshake could not be sent", "host=%s port=%d", r->url.host,
                     r->url.port);
        conn_down(r, 0);
    }
}

/* Connects to r->url's host and port (with Sentinel: the master named). */
static void connect_node(struct cg_redis *r)
{
    r->connect_deadline = cg_mono_ms() + (uint64_t)r->connect_timeout_ms;
    static const struct cg_redis_conn_cbs cbs = {
        .connected = on_conn_connected,
        .reply = on_conn_reply,
        .failed = on_conn_failed,
    };
    char err[128];
    r->conn = cg_redis_conn_new(r->base, r->dns, r->tls, r->url.host, r->url.port,
                                r->tls_server_name, &cbs, r, err, sizeof err);
    if (r->conn == NULL) {
        cg_log_warn("redis connect failed", "host=%s port=%d attempt=%u err=%s", r->url.host,
                    r->url.port, r->attempt + 1, err);
        conn_down(r, 0);
        return;
    }
    timer_add_ms(r->ev_timer, (uint64_t)r->connect_timeout_ms);
}

static void on_master(const char *host, int port, const char *err, void *arg)
{
    struct cg_redis *r = arg;
    enter(r);
    if (host == NULL) {
        cg_log_warn("redis master not found", "attempt=%u err=%s", r->attempt + 1, err);
        conn_down(r, 0);
    } else {
        if (strcmp(host, r->url.host) != 0 || port != r->url.port)
            cg_log_info("redis master from sentinel",
                        "host=%s port=%d previous_host=%s previous_port=%d", host, port,
                        r->url.host, r->url.port);
        free(r->url.host);
        r->url.host = cg_strdup(host);
        r->url.port = port;
        connect_node(r);
    }
    leave(r);
}

/* +switch-master: leave the old master at once. Until the sentinels
 * reconfigure it, it may still accept writes that the new master never
 * sees. */
static void on_switch(const char *host, int port, void *arg)
{
    struct cg_redis *r = arg;
    if (r->conn == NULL || r->closing || (strcmp(host, r->url.host) == 0 && port == r->url.port))
        return;
    enter(r);
    cg_log_warn("redis master switched; reconnecting", "host=%s port=%d new_host=%s new_port=%d",
                r->url.host, r->url.port, host, port);
    conn_down(r, 0);
    leave(r);
}

static void start_connect(struct cg_redis *r)
{
    r->state = CG_REDIS_CONNECTING;
    if (notify(r, CG_REDIS_CONNECTING) != 0 || r->closing)
        return; /* the kick queued by cg_redis_close() finishes the close */

    if (++r->conn_serial == 0)
        r->conn_serial = 1;
    /* With Sentinel the master is asked for on every connect: after a
     * failover, a lost connection or -READONLY, the next one goes to the
     * new master. The sentinels have their own timeout each; the connect
     * timeout starts with the node. */
    if (r->sentinel)
        cg_redis_sentinel_ask(r->sentinel, on_master, r);
    else
        connect_node(r);
}

static void handshake_failed(struct cg_redis *r, const char *step, const redisReply *reply)
{
    /* The error text comes from Redis and never contains the password. */
    cg_log_error("redis handshake failed", "host=%s port=%d step=%s err=%.*s", r->url.host,
                 r->url.port, step, (int)reply->len, reply->str);
    conn_down(r, 0);
}

static void become_ready(struct cg_redis *r)
{
    evtimer_del(r->ev_timer);
    r->attempt = 0;
    if (r->closing) {
        finish_close(r);
        return;
    }
    r->state = CG_REDIS_READY;
    cg_log_info("redis connected", "host=%s port=%d db=%d", r->url.host, r->url.port, r->url.db);
    notify(r, CG_REDIS_READY);
}

static void check_script_load(struct cg_redis *r, int id, const redisReply *reply)
{
    const struct script *s = &r->scripts[id];
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Not fatal: evals of this script will fall back to EVAL and
         * return the same error to their callers. */
        cg_log_error("redis script load failed", "script=%s err=%.*s", s->name, (int)reply->len,
                     reply->str);
    } else if (reply->type != REDIS_REPLY_STRING || reply->len != 40 ||
               memcmp(reply->str, s->sha, 40) != 0) {
        cg_log_error("redis script load returned an unexpected SHA", "script=%s expected=%s",
                     s->name, s->sha);
    }
}

static void handshake_reply(struct cg_redis *r, enum cmd_kind kind, int script_id,
                            const redisReply *reply)
{
    int is_err = reply->type == REDIS_REPLY_ERROR;
    switch (kind) {
    case CMD_AUTH:
        if (is_err)
            handshake_failed(r, "AUTH", reply);
        break;
    case CMD_SELECT:
        if (is_err)
            handshake_failed(r, "SELECT", reply);
        break;
    case CMD_LOAD:
    case CMD_BGLOAD:
        check_script_load(r, script_id, reply);
        break;
    case CMD_ROLE:
        if (is_err) {
            handshake_failed(r, "ROLE", reply);
        } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
                   reply->element[0]->type != REDIS_REPLY_STRING ||
                   strcmp(reply->element[0]->str, "master") != 0) {
            cg_log_warn("redis node is not the master (a failover in progress?); asking the "
                        "sentinels again",
                        "host=%s port=%d role=%s", r->url.host, r->url.port,
                        cg_redis_reply_str(reply, 0) ? cg_redis_reply_str(reply, 0) : "?");
            conn_down(r, 0);
        }
        break;
    case CMD_PING:
        if (is_err)
            handshake_failed(r, "PING", reply);
        else
            become_ready(r);
        break;
    case CMD_USER:
        break;
    }
}

/* Sends an eval record: EVALSHA the first time, EVAL after NOSCRIPT. */
static int send_eval(struct cg_redis *r, struct cmd *c)
{
    const struct script *s = &r->scripts[c->script_id];
    c->argv[0] = c->retried ? "EVAL" : "EVALSHA";
    c->argvlen[0] = strlen(c->argv[0]);
    c->argv[1] = c->retried ? s->lua : s->sha;
    c->argvlen[1] = strlen(c->argv[1]);
    return cg_redis_conn_send_argv(r->conn, c->argc, c->argv, c->argvlen);
}

static int is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
           memcmp(reply->str, "NOSCRIPT", 8) == 0;
}

static int is_readonly(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
           memcmp(reply->str, "READONLY", 8) == 0;
}

/* "MOVED <slot> <host>:<port>" (the slot now lives on another node of a
 * Redis Cluster) or "ASK <slot> <host>:<port>" (this key of a slot being
 * migrated is there already), as word says. Fills host and *port; 0, or -1
 * for any other reply. The host may be an IPv6 address: the port follows
 * the last ':'. */
static int parse_redirect(const redisReply *reply, const char *word, char *host, size_t hostlen,
                          int *port)
{
    size_t wl = strlen(word);
    if (reply->type != REDIS_REPLY_ERROR || reply->len < wl || memcmp(reply->str, word, wl) != 0)
        return -1;
    const char *addr = strchr(reply->str + wl, ' ');
    if (addr == NULL)
        return -1;
    addr++;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= hostlen)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (int)p;
    return 0;
}

static void on_ask_reply(const redisReply *reply, enum cg_redis_ask_fail fail, void *arg)
{
    struct cmd *c = arg;
    struct cg_redis *r = c->owner;
    enter(r);
    q_remove(&r->asking, c);
    c->ask = NULL;
    const char *err = fail == CG_ASK_TIMEOUT             ? cg_redis_err_timeout
                      : fail == CG_ASK_DISCONNECTED      ? cg_redis_err_disconnected
                      : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                         : NULL;
    deliver(r, c, fail == CG_ASK_OK || fail == CG_ASK_REFUSED ? reply : NULL, err);
    leave(r);
}

/* -ASK: the command once more, on the node named, after ASKING (a Redis
 * Cluster slot in the middle of a migration). A script goes as EVAL with its
 * source: that node may not have it cached. 0 when the redirect runs. */
static int start_ask(struct cg_redis *r, struct cmd *c, const char *host, int port)
{
    char *fmt = NULL;
    const char *cmd = c->raw;
    long long len = (long long)c->rawlen;
    if (c->argv) {
        const struct script *s = &r->scripts[c->script_id];
        c->argv[0] = "EVAL";
        c->argvlen[0] = 4;
        c->argv[1] = s->lua;
        c->argvlen[1] = strlen(s->lua);
        len = redisFormatCommandArgv(&fmt, c->argc, c->argv, c->argvlen);
        cmd = fmt;
    }
    if (cmd == NULL || len <= 0) {
        free(fmt);
        return -1;
    }
    struct cg_redis_ask_opts o = {
        .host = host,
        .port = port,
        .server_name = r->tls_server_name,
        .user = r->url.user,
        .password = r->url.password,
        .timeout_ms = r->command_timeout_ms,
    };
    c->ask = cg_redis_ask_new(r->base, r->dns, r->tls, &o, cmd, (size_t)len, on_ask_reply, c);
    free(fmt);
    if (c->ask == NULL)
        return -1;
    c->owner = r;
    q_push(&r->asking, c);
    cg_log_info("redis slot migrating; the command goes to the importing node (ASK)",
                "host=%s port=%d ask_host=%s ask_port=%d", r->url.host, r->url.port, host, port);
    return 0;
}

static void user_reply(struct cg_redis *r, struct cmd *c, const redisReply *reply)
{
    if (c->argv && !c->retried && is_noscript(reply) && r->conn) {
        /* The script cache was flushed or Redis restarted behind our back:
         * resend the same call with the source. EVAL also caches the
         * script, so later EVALSHAs of it succeed again. */
        struct script *s = &r->scripts[c->script_id];
        /* Once per script and connection: after a flush, every eval of it
         * already in the pipeline comes back NOSCRIPT. */
        if (s->noscript_conn != r->conn_serial) {
            s->noscript_conn = r->conn_serial;
            cg_log_info("redis script missing; resending with EVAL", "script=%s", s->name);
        }
        c->retried = 1;
        if (send_eval(r, c) == 0) {
            c->deadline = cg_mono_ms() + (uint64_t)r->command_timeout_ms;
            inflight_push(r, c);
            return;
        }
        /* Could not resend: the caller gets the NOSCRIPT reply itself. */
    }
    char ask_host[256];
    int ask_port = 0;
    if (c->owner == NULL && r->sentinel == NULL &&
        parse_redirect(reply, "ASK ", ask_host, sizeof ask_host, &ask_port) == 0 &&
        start_ask(r, c, ask_host, ask_port) == 0)
        return;
    int readonly = is_readonly(reply);
    char moved_host[256];
    int moved_port = 0;
    int moved = r->sentinel == NULL &&
                parse_redirect(reply, "MOVED ", moved_host, sizeof moved_host, &moved_port) == 0 &&
                (strcmp(moved_host, r->url.host) != 0 || moved_port != r->url.port);
    unsigned serial = r->conn_serial;
    deliver(r, c, reply, reply->type == REDIS_REPLY_ERROR ? reply->str : NULL);
    if (r->freeing)
        return;
    if (readonly && r->conn && r->conn_serial == serial && r->state == CG_REDIS_READY) {
        /* A replica now: the master moved (a Sentinel failover, or a
         * managed Redis whose name now points elsewhere). Reconnecting asks
         * the sentinels or the resolver again. Later commands on this
         * connection fail as disconnected, which callers already handle. */
        cg_log_warn("redis node is read-only (failover); reconnecting", "host=%s port=%d",
                    r->url.host, r->url.port);
        conn_down(r, 0);
        return;
    }
    if (moved && r->conn && r->conn_serial == serial && r->state == CG_REDIS_READY) {
        /* Redis Cluster moved the slot. Every key of a gate shares one hash
         * tag, so one connection to the slot's owner serves them all:
         * follow it (the caller got the MOVED reply, like any error, and
         * retries as it does after an outage). */
        cg_log_warn("redis slot moved; reconnecting to its owner",
                    "host=%s port=%d new_host=%s new_port=%d", r->url.host, r->url.port, moved_host,
                    moved_port);
        free(r->url.host);
        r->url.host = cg_strdup(moved_host);
        r->url.port = moved_port;
        conn_down(r, 0);
        return;
    }
    if (r->closing && r->state != CG_REDIS_CLOSED && r->inflight_user == 0)
        finish_close(r);
}

/* ---- transport callbacks ---- */

static void on_conn_reply(redisReply *reply, void *arg)
{
    struct cg_redis *r = arg;
    enter(r);
    struct cmd *c = inflight_pop(r);
    if (c == NULL) {
        /* Redis answers each command once; a reply nobody asked for means
         * no reply on this connection can be trusted. */
        cg_log_error("redis sent a reply no command was waiting for", "host=%s port=%d",
                     r->url.host, r->url.port);
        conn_down(r, 0);
    } else if (c->kind == CMD_USER) {
        user_reply(r, c, reply);
    } else {
        enum cmd_kind kind = c->kind;
        int id = c->script_id;
        cmd_free(c);
        handshake_reply(r, kind, id, reply);
    }
    leave(r);
}

static void on_conn_connected(void *arg)
{
    struct cg_redis *r = arg;
    enter(r);
    if (cg_redis_tls_insecure(r->tls))
        cg_log_warn("redis TLS certificate verification is off (REDIS_TLS_INSECURE); the "
                    "connection can be intercepted",
                    "host=%s port=%d", r->url.host, r->url.port);
    send_handshake(r);
    leave(r);
}

static void on_conn_failed(const char *why, void *arg)
{
    struct cg_redis *r = arg;
    enter(r);
    if (r->state == CG_REDIS_CONNECTING)
        cg_log_warn("redis connect failed", "host=%s port=%d attempt=%u err=%s", r->url.host,
                    r->url.port, r->attempt + 1, why);
    else
        cg_log_warn("redis disconnected", "host=%s port=%d err=%s", r->url.host, r->url.port, why);
    conn_down(r, 0);
    leave(r);
}

/* ---- libevent callbacks ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_redis *r = arg;
    enter(r);
    uint64_t now = cg_mono_ms();
    if (r->state == CG_REDIS_CONNECTING) {
        if (now >= r->connect_deadline) {
            cg_log_warn("redis connect timed out", "host=%s port=%d timeout_ms=%d", r->url.host,
                        r->url.port, r->connect_timeout_ms);
            conn_down(r, 0);
        } else {
            timer_add_ms(r->ev_timer, r->connect_deadline - now);
        }
    } else if (r->state == CG_REDIS_READY && r->inflight.head) {
        uint64_t deadline = r->inflight.head->deadline;
        if (deadline <= now) {
            cg_log_warn("redis command timed out; dropping the connection",
                        "host=%s port=%d timeout_ms=%d pending=%zu", r->url.host, r->url.port,
                        r->command_timeout_ms, r->inflight_user);
            conn_down(r, now);
        } else {
            timer_add_ms(r->ev_timer, deadline - now);
        }
    }
    leave(r);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_redis *r = arg;
    enter(r);
    if (!r->closing && r->state == CG_REDIS_DISCONNECTED)
        start_connect(r);
    leave(r);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_redis *r = arg;
    enter(r);
    /* Only the failures queued so far: a caller that retries from its
     * failure callback gets the next one on a later loop turn instead of
     * spinning here. */
    q_splice(&r->failing, &r->deferred);
    if (drain_failing(r) == 0 && r->closing && r->state != CG_REDIS_CLOSED && r->inflight_user == 0)
        finish_close(r);
    leave(r);
}

/* ---- public API ---- */

struct cg_redis *cg_redis_new(struct event_base *base, const struct cg_redis_opts *opts, char *err,
                              size_t errlen)
{
    char dummy[1];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (base == NULL || opts == NULL || opts->url == NULL) {
        cg_err_set(err, errlen, "redis: missing event loop or URL");
        return NULL;
    }
    struct cg_redis *r = cg_calloc(1, sizeof *r);
    if (cg_redis_url_parse(opts->url, &r->url, err, errlen) != 0) {
        free(r);
        return NULL;
    }
    if (r->url.tls) {
        struct cg_redis_tls_opts to = {
            .ca_file = opts->tls_ca_file,
            .cert_file = opts->tls_cert_file,
            .key_file = opts->tls_key_file,
            .insecure = opts->tls_insecure,
        };
        r->tls = cg_redis_tls_new(&to, err, errlen);
        if (r->tls == NULL) {
            cg_redis_url_free(&r->url);
            free(r);
            return NULL;
        }
        if (opts->tls_server_name && opts->tls_server_name[0])
            r->tls_server_name = cg_strdup(opts->tls_server_name);
    }
    r->base = base;
    r->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->command_timeout_ms =
        opts->command_timeout_ms > 0 ? opts->command_timeout_ms : DEFAULT_COMMAND_TIMEOUT_MS;
    r->backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms : DEFAULT_BACKOFF_MIN_MS;
    r->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (r->backoff_max_ms < r->backoff_min_ms)
        r->backoff_max_ms = r->backoff_min_ms;
    r->state = CG_REDIS_DISCONNECTED;

    r->ev_timer = evtimer_new(base, on_timer, r);
    r->ev_retry = evtimer_new(base, on_retry, r);
    r->ev_kick = evtimer_new(base, on_kick, r);
    /* Inactive when no lookup is pending, so an idle resolver never keeps
     * the loop alive; nameservers and the hosts file come from the
     * system's configuration. */
    r->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (r->ev_timer == NULL || r->ev_retry == NULL || r->ev_kick == NULL || r->dns == NULL) {
        cg_err_set(err, errlen, "redis: cannot create timers or the resolver");
        if (r->dns)
            evdns_base_free(r->dns, 0);
        if (r->ev_timer)
            event_free(r->ev_timer);
        if (r->ev_retry)
            event_free(r->ev_retry);
        if (r->ev_kick)
            event_free(r->ev_kick);
        cg_redis_url_free(&r->url);
        cg_redis_tls_free(r->tls);
        free(r->tls_server_name);
        free(r);
        return NULL;
    }
    if (opts->sentinels && opts->sentinels[0]) {
        r->sentinel = cg_redis_sentinel_new(
            base, r->dns, r->tls, r->tls_server_name, opts->sentinels, opts->sentinel_master,
            opts->sentinel_password, r->connect_timeout_ms, err, errlen);
        if (r->sentinel == NULL) {
            destroy(r);
            return NULL;
        }
        cg_redis_sentinel_watch(r->sentinel, on_switch, r);
    }
    start_connect(r);
    return r;
}

void cg_redis_set_state_cb(struct cg_redis *r, cg_redis_state_cb cb, void *arg)
{
    r->state_cb = cb;
    r->state_arg = arg;
}

enum cg_redis_state cg_redis_state(const struct cg_redis *r)
{
    return r->state;
}

size_t cg_redis_pending(const struct cg_redis *r)
{
    return r->npending;
}

/* A record for a new user command, or NULL when it was refused and queued
 * for a deferred failure. */
static struct cmd *admit(struct cg_redis *r, cg_redis_cb cb, void *arg)
{
    struct cmd *c = cmd_new(CMD_USER);
    c->cb = cb;
    c->arg = arg;
    r->npending++;
    if (r->closing || r->state == CG_REDIS_CLOSED) {
        defer_fail(r, c, cg_redis_err_closed);
        return NULL;
    }
    if (r->state != CG_REDIS_READY || r->conn == NULL) {
        defer_fail(r, c, cg_redis_err_disconnected);
        return NULL;
    }
    return c;
}

static void after_send(struct cg_redis *r, struct cmd *c, int rc)
{
    if (rc != 0) {
        cg_log_warn("redis refused a command", "host=%s port=%d", r->url.host, r->url.port);
        defer_fail(r, c, cg_redis_err_disconnected);
        return;
    }
    c->deadline = cg_mono_ms() + (uint64_t)r->command_timeout_ms;
    inflight_push(r, c);
}

int cg_redis_command(struct cg_redis *r, cg_redis_cb cb, void *arg, const char *fmt, ...)
{
    if (r == NULL || cb == NULL || fmt == NULL || r->freeing)
        return -1;
    /* Formatting first rejects a bad format string in every state. */
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return -1;
    struct cmd *c = admit(r, cb, arg);
    if (c) {
        c->raw = cmd; /* kept for an -ASK redirect */
        c->rawlen = (size_t)len;
        after_send(r, c, cg_redis_conn_send_raw(r->conn, cmd, (size_t)len));
    } else {
        redisFreeCommand(cmd);
    }
    return 0;
}

int cg_redis_command_argv(struct cg_redis *r, cg_redis_cb cb, void *arg, int argc,
                          const char **argv, const size_t *argvlen)
{
    if (r == NULL || cb == NULL || argc <= 0 || argv == NULL || r->freeing)
        return -1;
    for (int i = 0; i < argc; i++)
        if (argv[i] == NULL)
            return -1;
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return -1;
    struct cmd *c = admit(r, cb, arg);
    if (c) {
        c->raw = cmd; /* kept for an -ASK redirect */
        c->rawlen = (size_t)len;
        after_send(r, c, cg_redis_conn_send_raw(r->conn, cmd, (size_t)len));
    } else {
        redisFreeCommand(cmd);
    }
    return 0;
}

int cg_redis_script(struct cg_redis *r, const char *name, const char *lua)
{
    if (r == NULL || name == NULL || lua == NULL || r->freeing || r->nscripts == INT_MAX)
        return -1;
    r->scripts = cg_realloc(r->scripts, ((size_t)r->nscripts + 1) * sizeof *r->scripts);
    struct script *s = &r->scripts[r->nscripts];
    s->name = cg_strdup(name);
    s->lua = cg_strdup(lua);
    cg_sha1_hex(lua, strlen(lua), s->sha);
    s->noscript_conn = 0;
    int id = r->nscripts++;
    /* Connected already: load it now. Registered mid-handshake: the next
     * connect loads it, and until then the NOSCRIPT fallback covers it. */
    if (r->state == CG_REDIS_READY && r->conn && !r->closing) {
        const char *argv[] = {"SCRIPT", "LOAD", s->lua};
        send_internal(r, CMD_BGLOAD, id, 3, argv);
    }
    return id;
}

int cg_redis_eval(struct cg_redis *r, int script_id, int nkeys, int nargs, const char **args,
                  const size_t *argvlen, cg_redis_cb cb, void *arg)
{
    if (r == NULL || cb == NULL || r->freeing || script_id < 0 || script_id >= r->nscripts ||
        nkeys < 0 || nargs < nkeys || nargs > INT_MAX - 3 || (nargs > 0 && args == NULL))
        return -1;
    size_t bytes = 0;
    for (int i = 0; i < nargs; i++) {
        if (args[i] == NULL)
            return -1;
        bytes += (argvlen ? argvlen[i] : strlen(args[i])) + 1;
    }
    struct cmd *c = admit(r, cb, arg);
    if (c == NULL)
        return 0;

    /* One block: argv pointers, lengths, nkeys as text, argument bytes. */
    int argc = nargs + 3;
    char nk[16];
    int nklen = snprintf(nk, sizeof nk, "%d", nkeys);
    size_t head = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    char *blk = cg_malloc(head + (size_t)nklen + 1 + bytes);
    c->script_id = script_id;
    c->argc = argc;
    c->argv = (const char **)(void *)blk;
    c->argvlen = (size_t *)(void *)(blk + (size_t)argc * sizeof(char *));
    char *p = blk + head;
    memcpy(p, nk, (size_t)nklen + 1);
    c->argv[2] = p;
    c->argvlen[2] = (size_t)nklen;
    p += nklen + 1;
    for (int i = 0; i < nargs; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(args[i]);
        memcpy(p, args[i], n);
        p[n] = '\0';
        c->argv[3 + i] = p;
        c->argvlen[3 + i] = n;
        p += n + 1;
    }
    after_send(r, c, send_eval(r, c));
    return 0;
}

void cg_redis_close(struct cg_redis *r)
{
    if (r == NULL || r->freeing || r->closing || r->state == CG_REDIS_CLOSED)
        return;
    r->closing = 1;
    evtimer_del(r->ev_retry);
    /* The kick closes at once when nothing is in flight; otherwise the last
     * reply (or a timeout or disconnect) does. */
    kick(r);
}

void cg_redis_free(struct cg_redis *r)
{
    if (r == NULL || r->freeing)
        return;
    /* From here on new commands are refused with -1: a callback that
     * retried on every failure would otherwise never let this return. */
    r->freeing = 1;
    r->closing = 1;
    r->state = CG_REDIS_CLOSED;
    drop_conn(r);
    evtimer_del(r->ev_timer);
    evtimer_del(r->ev_retry);
    evtimer_del(r->ev_kick);
    fail_inflight(r, 0, cg_redis_err_closed);
    fail_asking(r, cg_redis_err_closed);
    q_splice(&r->failing, &r->deferred);
    struct cmd *c;
    while ((c = q_pop(&r->failing)) != NULL)
        deliver(r, c, NULL, cg_redis_err_closed);
    if (r->busy == 0)
        destroy(r);
}

const char *cg_redis_reply_str(const redisReply *r, size_t i)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : NULL;
}

long long cg_redis_reply_int(const redisReply *r, size_t i, long long dflt)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return dflt;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return dflt;
}
