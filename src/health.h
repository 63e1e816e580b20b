/*
 * health.h - the probes: GET /health, GET /livez and GET /readyz.
 *
 * /health keeps the Vapi guide's fields so its users' monitors keep
 * working (status, activeCalls, callsInQueue, maxConcurrency,
 * availableCapacity, redis) and adds services (the services this process
 * runs: "gate", "waittime") and oldestWaitSeconds:
 *   200 {"status":"healthy",...,"redis":"connected"} when Redis answers;
 *   200 {"status":"degraded","reason":"...",...} when Redis answers but the
 *       gate is stuck (callers have waited over CG_HEALTH_STUCK_MS while a
 *       slot is free) or Vapi or Twilio refused the credentials recently;
 *   503 {"status":"degraded","reason":"...",...,"redis":"disconnected"}
 *       with the counts as null when Redis does not answer.
 * The figures come from one Lua call, so they are a consistent snapshot.
 *
 * /livez: 200 {"status":"alive"} whenever the loop answers; never touches
 * Redis. /readyz: whether this process can take calls: 200
 * {"status":"ready","redis":"connected"|"disconnected"} while it serves
 * webhooks (with Redis down the gate still holds callers in Twilio's
 * queue), 503 {"status":"draining"} from the start of the shutdown, and
 * 503 {"status":"starting"} until the app says it listens. So a Redis
 * blip does not take every instance out of a load balancer.
 *
 * Ownership: borrows httpd, redis, keys, cfg and gate (NULL when the gate
 * is off); all outlive it.
 */
#ifndef CG_HEALTH_H
#define CG_HEALTH_H

/* Callers waiting this long beside a free slot make /health degraded. */
#define CG_HEALTH_STUCK_MS 5000

struct cg_httpd;
struct cg_redis;
struct cg_keys;
struct cg_config;
struct cg_gate;

struct cg_health;

struct cg_health *cg_health_new(struct cg_httpd *httpd, struct cg_redis *redis,
                                const struct cg_keys *keys, const struct cg_config *cfg,
                                const struct cg_gate *gate);
/* /readyz: 1 once the app listens; 0 again when it begins to drain. */
void cg_health_set_ready(struct cg_health *h, int ready);
void cg_health_free(struct cg_health *h);

#endif
