/*
 * harness.h - shared test helpers: cmocka, a private redis-server, child
 * processes (callgate, callgate-sim), blocking loopback HTTP for assertions,
 * and running an event loop until a condition holds.
 *
 * Every helper that can fail fails the current cmocka test (fail_msg), so
 * tests read as straight-line code.
 */
#ifndef CG_HARNESS_H
#define CG_HARNESS_H

#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <cmocka.h>

#include "demo/proc.h"

struct event_base;

/* ---- private redis-server ---- */
/* Starts one on a free port (asserts on failure). */
void cgt_redis_start(struct cg_redis_server *rs);
/* Runs a command synchronously (hiredis blocking client) and returns the
 * reply as text: integers in decimal, nil as "(nil)", arrays as their
 * elements joined by '\n', errors as "ERR ...". malloc'd. */
char *cgt_redis_cmd(const struct cg_redis_server *rs, const char *fmt, ...);
/* The same against any plain Redis on 127.0.0.1:port. */
char *cgt_redis_vcmd(int port, const char *fmt, va_list ap);
/* A command's integer answer (a number in a string answer read as one) on
 * the plain Redis at 127.0.0.1:port; -1 for nil. */
long long cgt_redis_int(int port, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long long cgt_redis_vint(int port, const char *fmt, va_list ap);
/* Waits up to ms for key to exist: 0, or -1 when it never did. A gate
 * started on a fresh Redis admits nobody before its first repair of the
 * slots from Vapi's live calls, which ends by setting cg:{g}:intact. */
int cgt_redis_wait_key(const struct cg_redis_server *rs, const char *key, int ms);

/* ---- child processes ---- */
struct cgt_proc {
    pid_t pid;
    char log_path[512]; /* stderr and stdout of the child */
};
/* Starts argv[0] (a path) with the current environment plus env overrides
 * ("NAME=value", NULL-terminated; "NAME=" sets it empty, "-NAME" unsets it).
 * Output goes to a temporary log file. Under CG_VALGRIND=1 the child runs in
 * valgrind --leak-check=full --error-exitcode=99. */
void cgt_spawn(struct cgt_proc *p, const char *const *argv, const char *const *env);
/* Sends sig, waits up to timeout_ms, then SIGKILLs. Returns the exit code
 * (128 + signal when killed by one). */
int cgt_stop(struct cgt_proc *p, int sig, int timeout_ms);
/* Waits for the child to exit by itself; returns its exit code, or -1 on
 * timeout. */
int cgt_wait_exit(struct cgt_proc *p, int timeout_ms);
/* 1 when the callgate processes run under valgrind (CG_VALGRIND=1, make
 * valgrind), else 0. */
int cgt_under_valgrind(void);
/* The child's output so far (malloc'd). */
char *cgt_proc_output(const struct cgt_proc *p);
/* Waits up to timeout_ms for text to appear in the child's output: 0, or
 * -1 when it did not. */
int cgt_wait_output(const struct cgt_proc *p, const char *text, int timeout_ms);
/* Path of a built binary: CG_BIN_DIR "/" name. */
const char *cgt_bin(const char *name);

/* ---- blocking HTTP for assertions (libcurl easy) ---- */
struct cgt_resp {
    long status; /* 0 if the request failed at transport level */
    char *body;
    size_t len;
    char *headers; /* raw response headers */
};
/* headers: "Name: value" lines, NULL-terminated, may be NULL. body may be
 * NULL. Never fails the test by itself: check status. */
void cgt_http(const char *method, const char *url, const char *const *headers, const char *body,
              size_t body_len, struct cgt_resp *out);
void cgt_resp_free(struct cgt_resp *r);
/* Polls GET url every 20 ms until it answers want_status; returns 0, or -1
 * after timeout_ms. */
int cgt_wait_status(const char *url, long want_status, int timeout_ms);
/* Value of a response header (case-insensitive), malloc'd, or NULL. */
char *cgt_resp_header(const struct cgt_resp *r, const char *name);

/* ---- event loop helpers for unit tests of async modules ---- */
/* Runs the loop until *flag becomes non-zero or timeout_ms passes; returns 0
 * when the flag was set, -1 on timeout. */
int cgt_run_until(struct event_base *base, const int *flag, int timeout_ms);
/* Runs the loop for ms milliseconds. */
void cgt_run_for(struct event_base *base, int ms);
/* Runs the loop until *calls is non-zero (fails the test after timeout_ms),
 * then 20 ms more so that a second call would show: fails unless *calls is
 * then exactly 1. For a callback that must come once. */
void cgt_run_once(struct event_base *base, const int *calls, int timeout_ms);

/* ---- misc ---- */
/* Milliseconds since an arbitrary start (monotonic). */
uint64_t cgt_now_ms(void);
/* A fresh temporary directory (malloc'd path). */
char *cgt_tmpdir(void);

/* The port a process wrote to a --port-file, or 0 while the file is
 * missing or incomplete. */
int cgt_read_port_file(const char *path);

/* Starts `callgate serve` with none of the test's own callgate settings:
 * every option is unset first, then the NULL-terminated lists are applied
 * in order (a later NAME=value wins); `lists` ends at its first NULL. */
void cgt_spawn_callgate(struct cgt_proc *p, const char *const *const *lists);

/* How many pairs of a parsed form have this key (a repeated key keeps
 * every value). */
struct cg_form;
size_t cgt_form_count(const struct cg_form *f, const char *key);

/* Fails the test unless got has the shape of the spec's example ex: every
 * member of the example, of the same JSON type (a string may be null; an
 * example null matches anything), in the same relative order; arrays are
 * compared through their first elements. A member named real_key (or
 * none: NULL) must be a JSON real whatever the example shows (TaskRouter's
 * documented quirk). where names the value in messages. */
typedef struct json_t json_t;
void cgt_assert_like_spec(const char *where, const json_t *ex, const json_t *got,
                          const char *real_key);

/* Everything written so far to a stream the test captures (a log set with
 * cg_log_set_stream), malloc'd; the stream is left at its end. */
char *cgt_stream_text(FILE *f);

/* A malloc'd copy of s, or NULL for NULL. */
char *cgt_strdup_or_null(const char *s);

/* Sleeps ms milliseconds (nanosleep). */
void cgt_sleep_ms(int ms);

/* The last `max` bytes of a process's output on stderr, under a label:
 * what a failing test shows of the callgate it drove. */
void cgt_dump_log_tail(struct cgt_proc *p, const char *label, size_t max);

#endif
