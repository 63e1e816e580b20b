/*
 * context.h - the queue context an admitted caller brings to the assistant
 * (assistantOverrides.variableValues: seconds waited, position at entry,
 * requeued or not, the number dialled), read from the caller's record in
 * one step (context.lua) just before the Vapi call is created.
 *
 * Callback rules: gate_context_fetch() calls cb exactly once, later, from
 * the loop; the context and its strings are valid only during the
 * callback. When Redis cannot answer, cb still runs with what is known
 * without it (the requeue flag), so an admission never waits on context.
 */
#ifndef CG_GATE_CONTEXT_H
#define CG_GATE_CONTEXT_H

struct cg_gate;
struct cg_vapi_call_context;

typedef void (*gate_context_cb)(const struct cg_vapi_call_context *ctx, void *arg);

/* attempt > 1 means an earlier admission of this caller failed. 0, or -1
 * (the store refused the command) without a callback. */
int gate_context_fetch(struct cg_gate *g, const char *sid, int attempt, gate_context_cb cb,
                       void *arg);

#endif
