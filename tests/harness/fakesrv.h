/*
 * fakesrv.h - the server scaffolding shared by every fake upstream: an
 * evhttp listener on 127.0.0.1 (a free port). The threaded fakes
 * (fakeapi.c, fake_taskrouter.c) get their own event_base, run by their own
 * thread and stopped through a pipe (cgt_srv_new, cgt_srv_run); the unit
 * tests of the API clients (test_httpc, test_twilio_api, test_vapi_api)
 * serve on the test's own event_base instead, with no thread
 * (cgt_srv_new_on). Also: replies held back for a delay; Basic
 * credentials; and the polling the tests use to wait for the fake to see
 * something.
 *
 * Ownership: a fake owns its struct cgt_srv (cgt_srv_new .. cgt_srv_stop)
 * and its own state and mutex; the server knows nothing of that state.
 * cgt_srv_stop() frees the server, its connections and the replies still
 * held back; the fake frees its own state after it.
 *
 * Threads: for a server made by cgt_srv_new_on everything below runs on the
 * test thread, from the test's loop. Otherwise cgt_srv_new, cgt_srv_run and cgt_srv_stop belong to
 * the test thread and fail the current test (fail_msg) when they cannot do their job; the string
 * cgt_srv_url returns is fixed from cgt_srv_new on, so any thread may read it until cgt_srv_stop.
 * The request handler and the send callbacks of cgt_srv_answer run on the server's thread only, one
 * at a time; whatever they share with the test thread must be behind the fake's mutex. They must
 * not call fail_msg (that longjmps on the test thread's stack): a failure there that cannot be
 * answered as HTTP aborts with a message instead. The loop thread is joined before cgt_srv_stop
 * returns, so no callback runs after it.
 */
#ifndef CG_FAKESRV_H
#define CG_FAKESRV_H

#include <stdint.h>

#include <event2/http.h>

struct cgt_srv;

/* Called on the server's thread for each request; arg as given to run. */
typedef void cgt_srv_handler(struct evhttp_request *req, void *arg);

/* Sends a reply that cgt_srv_answer held back (server thread). body stays
 * the server's. */
typedef void cgt_srv_send_fn(struct evhttp_request *req, int status, const char *body,
                             int retry_after, void *arg);

/* Binds 127.0.0.1:0 for the fake called name (in messages). No thread runs
 * yet, so the caller can keep the pointer where its handler finds it before
 * cgt_srv_run starts serving. */
struct cgt_srv *cgt_srv_new(const char *name);

/* Binds 127.0.0.1:0 on the caller's event_base for the fake called name:
 * whoever runs that base serves requests with handler(req, arg); no thread.
 * methods: the evhttp_cmd_type bits evhttp lets through (0: its default,
 * GET POST HEAD PUT DELETE). Not for cgt_srv_run; cgt_srv_stop frees the
 * server but leaves the base to the caller. */
struct cgt_srv *cgt_srv_new_on(struct event_base *base, const char *name, int methods,
                               cgt_srv_handler *handler, void *arg);

/* Starts the thread that serves requests with handler(req, arg). With
 * wait_idle, returns only once that thread idles in its loop. */
void cgt_srv_run(struct cgt_srv *s, cgt_srv_handler *handler, void *arg, int wait_idle);

/* "http://127.0.0.1:<port>" */
const char *cgt_srv_url(const struct cgt_srv *s);

/* Stops and joins the thread, then frees the server (NULL is fine). */
void cgt_srv_stop(struct cgt_srv *s);

/* Server thread: sends status/body through send now (delay_ms <= 0) or
 * after delay_ms; takes body (malloc'd). */
void cgt_srv_answer(struct cgt_srv *s, struct evhttp_request *req, int delay_ms, int status,
                    char *body, int retry_after, cgt_srv_send_fn *send, void *arg);

/* ---- request and reply helpers (server thread) ---- */

struct cgt_srv_req {
    enum evhttp_cmd_type cmd;
    const char *uri;   /* as sent */
    const char *path;  /* NULL when the URI does not parse */
    const char *query; /* NULL when none */
    const char *auth;  /* the Authorization header, NULL when none */
};

/* Fills r from req; the strings belong to req. */
void cgt_srv_parse(struct evhttp_request *req, struct cgt_srv_req *r);

/* The request body as a malloc'd string. */
char *cgt_srv_body(struct evhttp_request *req);

/* Whether the Authorization header auth (may be NULL) is exactly want. */
int cgt_srv_auth_ok(const char *auth, const char *want);

/* Adds the reply header name: value (value in decimal for _long); headers
 * go out in the order they were added. */
void cgt_srv_header(struct evhttp_request *req, const char *name, const char *value);
void cgt_srv_header_long(struct evhttp_request *req, const char *name, long value);

/* Sends body with status and its usual reason, after the headers added. */
void cgt_srv_send(struct evhttp_request *req, int status, const char *body);

/* ---- test thread ---- */

/* "Basic base64(user:password)", malloc'd. */
char *cgt_srv_basic(const char *user, const char *password);

/* The deadline timeout_ms from now, for cgt_srv_nap_until. */
uint64_t cgt_srv_deadline(int timeout_ms);

/* -1 when deadline has passed, else sleeps a little (5 ms) and returns 0:
 * the step of a loop that polls the fake until it has seen something. */
int cgt_srv_nap_until(uint64_t deadline);

#endif
