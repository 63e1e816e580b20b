/*
 * app.h - one callgate process: owns the event loop's long-lived objects
 * (HTTP server, Redis connection, HTTP client, the gate and wait-time
 * services) and the shutdown sequence.
 *
 * Shutdown (SIGINT/SIGTERM, or cg_app_shutdown): stop accepting
 * connections; let requests in flight and work in flight (admissions that
 * already created a Vapi call) finish, up to SHUTDOWN_GRACE_MS; then close
 * Redis gracefully (pending commands complete) and leave the loop. A second
 * signal skips the grace period. The process never exits because Redis went
 * away: it keeps serving and reconnects.
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
/* The bound HTTP port. */
int cg_app_port(const struct cg_app *app);
/* Begins the graceful shutdown; the loop exits when it is done. */
void cg_app_shutdown(struct cg_app *app);
void cg_app_free(struct cg_app *app);

#endif
