/*
 * app.h - one callgate process: owns the event loop's long-lived objects
 * (HTTP server, Redis connection, HTTP client, the gate and wait-time
 * services) and the shutdown sequence.
 *
 * Routes: the app registers the gate's routes (gate/endpoints.h) and owns
 * the two shared ones: /metrics (its own figures, plus the gate's from
 * cg_gate_collect_metrics) and /queue-wait (TaskRouter callers get the
 * wait-time service's hold answer, waittime/hold.h; everyone else the
 * gate's). /health and the wait-time service register their own.
 *
 * Shutdown (SIGINT/SIGTERM): stop accepting connections; let requests in
 * flight and work in flight (admissions that already created a Vapi call)
 * finish, up to SHUTDOWN_GRACE_MS; then close Redis gracefully (pending
 * commands complete) and leave the loop. A second signal skips the grace
 * period. The process never exits because Redis went away: it keeps
 * serving and reconnects.
 *
 * Ownership: the app borrows cfg and base (both outlive it) and owns
 * everything else it creates.
 */
#ifndef CG_APP_H
#define CG_APP_H

#include <stddef.h>

struct event_base;
struct cg_app;
struct cg_config;

struct cg_app *cg_app_new(const struct cg_config *cfg, struct event_base *base, char *err,
                          size_t errlen);
/* Binds the HTTP port and installs signal handlers. 0, or -1 with err. */
int cg_app_start(struct cg_app *app, char *err, size_t errlen);
/* After the loop ended: the process's exit status (0; 2 when the gate found
 * another gate on its Twilio queue). */
int cg_app_exit_status(const struct cg_app *app);
void cg_app_free(struct cg_app *app);

#endif
