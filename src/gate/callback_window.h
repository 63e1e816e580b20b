/*
 * callback_window.h - keeps cg:{g}:cbwin in step with CALLBACK_HOURS
 * (docs/ARCHITECTURE.md, "Callbacks"): while the window is open the key is
 * set, every interval, to expire at the window's end or three intervals
 * from now, whichever comes first; when it is closed the key is deleted.
 * admit_batch (common.lua) reserves slots for callbacks only while the key
 * exists, so callbacks stop soon after the last instance that dials them
 * stops refreshing it.
 *
 * Ownership: redis and keys are borrowed and must outlive the publisher;
 * hours is copied. Free before the event_base. No callbacks to the caller.
 */
#ifndef CG_GATE_CALLBACK_WINDOW_H
#define CG_GATE_CALLBACK_WINDOW_H

#include "gate/callback_hours.h"

struct event_base;
struct cg_redis;
struct cg_keys;
struct gate_callback_window;

/* hours NULL: always open. NULL when the timer cannot be created. */
struct gate_callback_window *gate_callback_window_new(struct event_base *base,
                                                      struct cg_redis *redis,
                                                      const struct cg_keys *keys,
                                                      const struct gate_callback_hours *hours,
                                                      int interval_ms);
/* Publishes at the next loop iteration. */
void gate_callback_window_kick(struct gate_callback_window *w);
/* Stops publishing (NULL is fine). A write in flight completes harmlessly. */
void gate_callback_window_free(struct gate_callback_window *w);

#endif
