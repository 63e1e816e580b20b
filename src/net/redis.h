/*
 * redis.h - the Redis connection on the libevent loop: its own transport
 * (redis_conn.h: a bufferevent, plain or TLS, with hiredis' reply parser),
 * timeouts, reconnection and script handling.
 *
 * States. CONNECTING (name resolution, TCP connect, TLS for rediss://, then
 * AUTH, SELECT and SCRIPT LOAD of every registered script) -> READY -> (connection lost or command
 * timed out) -> DISCONNECTED -> after a backoff delay, CONNECTING again. Backoff is capped
 * exponential with full jitter between backoff_min_ms and backoff_max_ms; it resets once READY.
 * cg_redis_close() moves to CLOSED.
 *
 * Timeouts. A connect (including the handshake) that takes longer than
 * connect_timeout_ms is abandoned and retried. A command not answered
 * within command_timeout_ms means the connection is unusable: it is torn
 * down, every pending command fails (the late one with cg_redis_err_timeout,
 * the others with cg_redis_err_disconnected), and reconnection starts.
 *
 * Callback rules. cg_redis_command*() and cg_redis_eval() never call back
 * synchronously and always call back exactly once: with the reply, or with
 * an error. Commands issued while not READY fail with
 * cg_redis_err_disconnected (delivered from the loop, not inline), so that
 * callers can fall back at once instead of queueing behind an outage. The
 * reply is owned by hiredis and valid only during the callback.
 *
 * Errors are exported constants compared by pointer (as h2o does), or, for
 * an error reply from Redis itself, the reply's own text:
 *   err == NULL                   success; reply is not an error reply
 *   err == cg_redis_err_*         transport failure; reply is NULL
 *   otherwise                     Redis answered an error; reply->str == err
 *
 * Scripts. Register Lua scripts before or after connecting; each is loaded
 * with SCRIPT LOAD on every (re)connect and run with EVALSHA. A NOSCRIPT
 * reply (a Redis restarted or flushed behind our back) is handled by
 * resending the script with EVAL, invisibly to the caller.
 *
 * TLS (rediss://). The server certificate is always verified against the
 * CA file (or the system store) and the host name (tls_server_name, or the
 * host connected to); tls_insecure turns that off and logs a warning on
 * every connect.
 *
 * Moving masters. With sentinels, every connect first asks them for the
 * master (the URL's host and port are not used), and the handshake checks
 * ROLE; a +switch-master announcement drops the connection at once. In
 * every mode a -READONLY reply (the node became a replica) and a Redis
 * Cluster MOVED reply (the slot moved; the connection follows it) are
 * delivered to their caller like any error reply, and the connection is
 * then dropped and made anew, failing the other commands in flight with
 * cg_redis_err_disconnected.
 *
 * Options. A timeout or backoff value <= 0 takes the default (connect and
 * command timeouts 2000 ms, backoff 100 ms to 5000 ms); backoff_max_ms below
 * backoff_min_ms is raised to it.
 *
 * Return values. cg_redis_command*() and cg_redis_eval() return -1 only for
 * programming errors, and then never call back: NULL connection or callback,
 * a malformed format string, a NULL argument, a bad script id or key count,
 * or use of a connection inside cg_redis_free(). Every other outcome,
 * including a refused command, is reported through the callback.
 *
 * Re-entrancy. From a command or state callback it is safe to issue
 * commands, register scripts, call cg_redis_close(), and call
 * cg_redis_free(); after cg_redis_free() the callback must not touch the
 * connection again (commands issued by callbacks that cg_redis_free()
 * itself runs return -1).
 *
 * Process requirements. Host names are resolved with libevent's
 * asynchronous resolver (the system's nameservers and hosts file), so a
 * slow DNS never stalls the loop; every address of a name is tried in turn.
 * Sockets are written with write(2), so the process must ignore SIGPIPE
 * (main.c does). Free the connection before its event_base.
 */
#ifndef CG_REDIS_H
#define CG_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct event_base;
struct cg_redis;

enum cg_redis_state {
    CG_REDIS_DISCONNECTED,
    CG_REDIS_CONNECTING,
    CG_REDIS_READY,
    CG_REDIS_CLOSED,
};

extern const char cg_redis_err_disconnected[];
extern const char cg_redis_err_timeout[];
extern const char cg_redis_err_closed[];
extern const char cg_redis_err_protocol[]; /* unexpected reply type */

struct cg_redis_opts {
    const char *url; /* redis[s]://[[user]:password@]host[:port][/db] */
    int connect_timeout_ms;
    int command_timeout_ms;
    int backoff_min_ms;
    int backoff_max_ms;
    /* TLS, for rediss:// (sentinels included): NULL or "" means unset. */
    const char *tls_ca_file;     /* unset: the system store */
    const char *tls_cert_file;   /* client certificate, with tls_key_file */
    const char *tls_key_file;    /* */
    const char *tls_server_name; /* SNI and verified name; unset: the host */
    int tls_insecure;            /* no verification; warned on every connect */
    /* Sentinel: unset sentinels means the URL's host and port are used. */
    const char *sentinels;         /* host[:port][,...] */
    const char *sentinel_master;   /* required with sentinels */
    const char *sentinel_password; /* AUTH for the sentinels */
};

typedef void (*cg_redis_cb)(const redisReply *reply, const char *err, void *arg);
/* Called on every state change (not re-entrantly from a command callback). */
typedef void (*cg_redis_state_cb)(enum cg_redis_state state, void *arg);

/* Parses the URL and starts connecting. NULL with err filled on a bad URL,
 * bad sentinel list, or TLS files that cannot be loaded. */
struct cg_redis *cg_redis_new(struct event_base *base, const struct cg_redis_opts *opts, char *err,
                              size_t errlen);
void cg_redis_set_state_cb(struct cg_redis *r, cg_redis_state_cb cb, void *arg);
enum cg_redis_state cg_redis_state(const struct cg_redis *r);
const char *cg_redis_state_name(enum cg_redis_state s);
/* Number of commands sent and not yet called back. This includes commands
 * refused while not READY whose failure callback has not run yet. */
size_t cg_redis_pending(const struct cg_redis *r);

/* hiredis format string ("%s" and "%b" with pointer and length). */
int cg_redis_command(struct cg_redis *r, cg_redis_cb cb, void *arg, const char *fmt, ...);
int cg_redis_command_argv(struct cg_redis *r, cg_redis_cb cb, void *arg, int argc,
                          const char **argv, const size_t *argvlen);

/* Registers a script; returns its id (>= 0). The source is copied. When
 * READY it is loaded at once; registered mid-handshake, it is loaded on the
 * next connect and served by the NOSCRIPT fallback until then. */
int cg_redis_script(struct cg_redis *r, const char *name, const char *lua);
/* Runs a registered script: EVALSHA sha nkeys keys... args... . argvlen may
 * be NULL for NUL-terminated arguments. */
int cg_redis_eval(struct cg_redis *r, int script_id, int nkeys, int nargs, const char **args,
                  const size_t *argvlen, cg_redis_cb cb, void *arg);

/* Graceful close: no new commands are accepted; pending ones complete, then
 * the connection is closed and the state becomes CLOSED. Commands issued
 * afterwards fail with cg_redis_err_closed (from the loop). CLOSED is
 * reached on a later loop turn even when nothing is pending, and no
 * reconnect happens after it. */
void cg_redis_close(struct cg_redis *r);
/* Immediate: pending commands fail with cg_redis_err_closed. NULL is a no-op.
 * Their callbacks run inside this call; the state callback does not. */
void cg_redis_free(struct cg_redis *r);

/* Reading array replies (a script's return value): element i of r as a
 * string (a bulk or status element), or NULL when r is no array, i is out
 * of range or the element is of another type. The pointer is r's: valid
 * while r is. */
const char *cg_redis_reply_str(const redisReply *r, size_t i);
/* Element i as an integer (an integer element, or a string holding one),
 * or dflt when there is none. */
long long cg_redis_reply_int(const redisReply *r, size_t i, long long dflt);

#endif
