/*
 * outbound.h - one outbound call callgate places (POST /calls/outbound),
 * once admission gave it a slot: its record read (route, variables), Vapi's
 * POST /call with the route's phone number and assistant and the
 * customer's number (no bypass: Vapi dials), then outbound.lua 'created'
 * (the slot now holds a live Vapi call, released by Vapi's end signals
 * like any other) or 'failed' (back in its line with a backoff, or failed
 * for good after MAX_ADMISSION_ATTEMPTS or a refusal).
 *
 * Callback rules: refill runs (at most once) with the script's reply when a
 * failure freed the slot and admission filled it; its admission list
 * starts at element 3. Nothing else calls back. The operation owns its
 * state and frees it; an operation cut off by shutdown leaves the slot to
 * its admission lease (the sweep).
 */
#ifndef CG_GATE_OUTBOUND_H
#define CG_GATE_OUTBOUND_H

#include <stddef.h>

#include "net/redis.h"

struct cg_gate;

typedef void (*gate_outbound_refill_fn)(struct cg_gate *g, const redisReply *r, size_t first);

/* sid is "o:<id>" as admit_batch returned it. */
void gate_outbound_place(struct cg_gate *g, const char *sid, const char *number, int attempt,
                         gate_outbound_refill_fn refill);

#endif
