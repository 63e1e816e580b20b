/*
 * keys.h - the Redis key layout of one gate. Every key of a gate shares the
 * hash tag {<GATE_NAME>}, so that the Lua scripts, which touch several keys
 * at once, also run on Redis Cluster and managed Redis (all keys of a script
 * must hash to one slot).
 *
 *   cg:{g}:waiting      ZSET  CallSid -> ticket (admission order)
 *   cg:{g}:active       ZSET  CallSid -> lease deadline (epoch ms)
 *   cg:{g}:call:<sid>   HASH  one caller's record
 *   cg:{g}:vapi:<id>    STR   Vapi call id -> CallSid
 *   cg:{g}:limit        STR   runtime concurrency limit
 *   cg:{g}:seq          STR   ticket sequence
 *   cg:{g}:stats        HASH  counters and estimator state
 *   cg:{g}:log          STREAM the queue log (capped)
 *
 * docs/ARCHITECTURE.md keeps the authoritative table, with field lists.
 */
#ifndef CG_KEYS_H
#define CG_KEYS_H

#include <stddef.h>

#define CG_KEY_MAX 160

struct cg_keys {
    char prefix[96]; /* "cg:{<gate>}:" */
    char waiting[CG_KEY_MAX];
    char active[CG_KEY_MAX];
    char limit[CG_KEY_MAX];
    char seq[CG_KEY_MAX];
    char stats[CG_KEY_MAX];
    char log[CG_KEY_MAX];
};

/* gate_name is validated by config (1-64 safe characters). */
void cg_keys_init(struct cg_keys *k, const char *gate_name);
/* prefix + kind + ":" + id into out; returns 0, or -1 if it does not fit. */
int cg_keys_item(const struct cg_keys *k, const char *kind, const char *id, char *out,
                 size_t outlen);

#endif
