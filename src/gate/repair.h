/*
 * repair.h - the gate's slots rebuilt from Vapi's live calls when Redis has
 * lost writes: a failover that promoted a replica before it had the old
 * master's last writes (replication is asynchronous), a Redis restarted
 * without its data, a FLUSHALL.
 *
 * How a loss is seen: repair.lua sets the marker cg:{g}:intact when the
 * slots agree with Vapi; a Redis that lost the gate's keys has no marker,
 * and an instance that reconnects drops it (writes may have been lost in
 * between: a failover). Without the marker no admission runs (admit_batch,
 * enter.lua's fast path), so a lost slot can never be filled twice.
 *
 * The repair, every GATE_REPAIR_TICK_MS while the marker is absent: one
 * instance takes the claim (repair_begin.lua), lists the calls on the gate's
 * Vapi number created within the longest call Vapi allows
 * (VAPI_MAX_DURATION_SECONDS) plus a margin (GET /call, newest first, pages
 * of GATE_REPAIR_PAGE continued by date), keeps the live ones that carry
 * this gate's CallSid metadata, and counts each again (repair.lua): a
 * caller's slot when the record says so, else an orphan slot v:<id> held
 * until Vapi ends the call. Waiting callers lost with the writes are
 * adopted again by the reconciliation with Twilio's queue, which the done
 * callback starts. When Vapi cannot be listed for GATE_REPAIR_MAX_PAUSE_MS,
 * admission resumes without the repair (an error is logged and counted):
 * Vapi's own limit, answered as over-limit, is then the bound.
 *
 * Ownership: borrows base, store, vapi, cfg and metrics (they outlive it).
 * done runs from the loop after each completed repair, with the numbers
 * counted again.
 */
#ifndef CG_GATE_REPAIR_H
#define CG_GATE_REPAIR_H

struct event_base;
struct cg_config;
struct cg_metrics;
struct cg_vapi;
struct gate_store;
struct gate_repair;

#define GATE_REPAIR_TICK_MS      1000
#define GATE_REPAIR_HOLD_MS      30000 /* one instance's claim on a repair */
#define GATE_REPAIR_MAX_PAUSE_MS 30000
#define GATE_REPAIR_PAGE         100
#define GATE_REPAIR_MAX_PAGES    50
#define GATE_REPAIR_MARGIN_S     120 /* beyond the longest call: clocks, Vapi's own end */

typedef void (*gate_repaired_cb)(long callers, long orphans, void *arg);

/* NULL when the timer cannot be created. */
struct gate_repair *gate_repair_new(struct event_base *base, struct gate_store *store,
                                    struct cg_vapi *vapi, const struct cg_config *cfg,
                                    struct cg_metrics *metrics, gate_repaired_cb done, void *arg);
/* Redis became ready. A reconnect (not the first connection) may have lost
 * writes: the slots are suspect until the next repair. */
void gate_repair_redis_ready(struct gate_repair *r);
/* Work in flight finishes on its own, calling nobody. NULL is a no-op. */
void gate_repair_free(struct gate_repair *r);

#endif
