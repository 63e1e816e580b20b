/*
 * fakescript.h - a scripted JSON API fake for the unit tests of the REST
 * clients (test_twilio_api, test_vapi_api), built on fakesrv's loopback
 * server on the test's own event_base: each request is recorded, then
 * answered with the next scripted step (or, when the script has run out, a
 * 500 with the body given at start).
 *
 * Ownership: the test owns its struct cgt_script (usually inside its
 * fixture); cgt_script_start fills it, cgt_script_stop frees the server,
 * the requests still hung and the recorded copies. Step bodies and
 * retry_after are borrowed and must outlive the server.
 *
 * Threads: none. Requests are served from the test's loop, on the test
 * thread, so the test reads seen/nseen/nreq directly between loop runs.
 */
#ifndef CG_FAKESCRIPT_H
#define CG_FAKESCRIPT_H

#include <event2/event.h>

#define CGT_MAX_STEPS 16
#define CGT_MAX_SEEN  16

struct cgt_step {
    int status;
    const char *body;
    const char *retry_after; /* NULL: no header */
    int hang;                /* never answer */
    int sticky;              /* answer every later request the same way */
};

/* One recorded request; strings malloc'd, NULL for an absent header. */
struct cgt_seen {
    char *method; /* "GET", "POST" or "?" */
    char *path;
    char *query;
    char *authorization;
    char *content_type;
    char *accept;
    char *body;
};

struct cgt_script {
    struct cgt_srv *srv;
    const char *base_url; /* "http://127.0.0.1:<port>", the server's */
    const char *unscripted;
    struct cgt_step steps[CGT_MAX_STEPS];
    int nsteps;
    int next;
    struct cgt_seen seen[CGT_MAX_SEEN]; /* the first CGT_MAX_SEEN requests */
    int nseen;
    int nreq; /* all requests, recorded or not */
};

/* Serves GET and POST on base; unscripted is the body of the 500 answered
 * once the script has run out. */
void cgt_script_start(struct cgt_script *s, struct event_base *base, const char *name,
                      const char *unscripted);
void cgt_script_stop(struct cgt_script *s);

/* Appends a step answering status with body. */
void cgt_script(struct cgt_script *s, int status, const char *body);
/* Appends any step. */
void cgt_script_step(struct cgt_script *s, struct cgt_step st);
/* Runs base until the server has seen n requests, for up to 2 s: 1 when
 * it has, else 0. */
int cgt_script_wait_seen(struct cgt_script *s, struct event_base *base, int n);

#endif
