/*
 * keys.h - the Redis key layout of one gate. Every key of a gate shares the
 * hash tag {<GATE_NAME>}, so that the Lua scripts, which touch several keys
 * at once, also run on Redis Cluster and managed Redis (all keys of a script
 * must hash to one slot). The scripts build every key from the prefix
 * (src/gate/lua/common.lua); C names only the few it reads directly.
 *
 *   cg:{g}:waiting      ZSET  CallSid -> ticket (admission order)
 *   cg:{g}:active       ZSET  slot -> lease deadline (epoch ms); slots are
 *                             CallSids, v:<vapi id> (a Vapi call without a
 *                             caller) and u:<CallSid>:<attempt> (an
 *                             admission whose owner died)
 *   cg:{g}:call:<sid>   HASH  one caller's record
 *   cg:{g}:vapi:<id>    STR   Vapi call id -> CallSid
 *   cg:{g}:vend:<id>    STR   a Vapi call whose end was seen (no slot may be
 *                             held for it afterwards)
 *   cg:{g}:limit        STR   runtime concurrency limit
 *   cg:{g}:cap          STR   lowered limit after Vapi's over-limit answers
 *                             (expires)
 *   cg:{g}:backoff      STR   admission paused until this time, ms (expires)
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
    char prefix[96];          /* "cg:{<gate>}:"; ARGV[1] of every script */
    char waiting[CG_KEY_MAX]; /* KEYS[1] of every script (routing), /health */
    char active[CG_KEY_MAX];  /* /health */
    char limit[CG_KEY_MAX];   /* /admin/limit, /health */
    char log[CG_KEY_MAX];     /* /reports/events */
};

/* gate_name is validated by config (1-64 safe characters). */
void cg_keys_init(struct cg_keys *k, const char *gate_name);

#endif
