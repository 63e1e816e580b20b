/*
 * periodic.h - repeating tasks on the event loop (after redis' serverCron):
 * sweeps, reconciliation and pollers.
 *
 * A task runs every interval_ms, each delay spread by up to jitter_pct
 * percent so that many instances sharing one Redis do not fire in step. A
 * task can be run early with cg_periodic_kick(); the next run is then
 * scheduled a full interval later. Tasks never overlap: the callback is
 * synchronous, and an asynchronous task tracks its own in-flight state.
 *
 * The callback runs on the loop thread with the arg given to
 * cg_periodic_new(). It may call cg_periodic_kick() or cg_periodic_delay()
 * on its own task; it must not free it.
 *
 * Ownership: the caller owns the task (cg_periodic_new .. cg_periodic_free)
 * and arg; the task copies name. Free the task before the event_base.
 */
#ifndef CG_PERIODIC_H
#define CG_PERIODIC_H

struct event_base;
struct cg_periodic;

typedef void (*cg_periodic_fn)(void *arg);

/* NULL when the timer cannot be created. interval_ms below 1 counts as 1;
 * jitter_pct is clamped to 0..50. The first run comes one (jittered)
 * interval from now. */
struct cg_periodic *cg_periodic_new(struct event_base *base, const char *name, int interval_ms,
                                    int jitter_pct, cg_periodic_fn fn, void *arg);
/* Runs the task on the next loop iteration. */
void cg_periodic_kick(struct cg_periodic *p);
/* Stops and frees the task (NULL is fine); not from its own callback. */
void cg_periodic_free(struct cg_periodic *p);

#endif
