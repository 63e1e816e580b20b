/*
 * recheck.h - asking Vapi again, a moment later, about a call whose status
 * it would not vouch for (cg_vapi_get_call's DOUBTFUL: "not-found",
 * "deletion-failed", or a status unknown here). The lease sweep (engine.c)
 * releases such a slot only when the second answer agrees, and never
 * renews it: a call Vapi no longer counts must not hold a slot forever.
 *
 * Callback rules: gate_recheck_later either returns -1 (no callback) or
 * calls cb exactly once, from the loop: with Vapi's second answer, or with
 * state UNAVAILABLE when the request could not be sent or the gate is
 * being freed (gate_recheck_cancel_all, which calls back from inside).
 * Ownership: the waits live in g->rechecks; vapi_id is copied.
 */
#ifndef CG_GATE_RECHECK_H
#define CG_GATE_RECHECK_H

#include "vapi/api.h"

struct cg_gate;

/* Delay before the second question. */
#define GATE_RECHECK_DELAY_MS 1000

int gate_recheck_later(struct cg_gate *g, const char *vapi_id, cg_vapi_get_cb cb, void *arg);
/* Every wait still pending calls back with UNAVAILABLE, now. */
void gate_recheck_cancel_all(struct cg_gate *g);

#endif
