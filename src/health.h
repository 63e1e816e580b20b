/*
 * health.h - GET /health, with the Vapi guide's fields so its users'
 * monitors keep working: status, activeCalls, callsInQueue, maxConcurrency,
 * availableCapacity, redis.
 *
 * 200 {"status":"healthy",...,"redis":"connected"} when Redis answers;
 * 503 {"status":"degraded",...,"redis":"disconnected"} with the counts as
 * null when it does not. The figures come from one Lua call, so they are a
 * consistent snapshot.
 */
#ifndef CG_HEALTH_H
#define CG_HEALTH_H

struct cg_httpd;
struct cg_redis;
struct cg_keys;
struct cg_config;

struct cg_health;

struct cg_health *cg_health_new(struct cg_httpd *httpd, struct cg_redis *redis,
                                const struct cg_keys *keys, const struct cg_config *cfg);
void cg_health_free(struct cg_health *h);

#endif
