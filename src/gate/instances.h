/*
 * instances.h - the registry of the instances sharing one gate, and their
 * agreement on the gate-wide settings.
 *
 * Every instance announces itself (instances.lua) when Redis becomes ready
 * and every GATE_INSTANCES_INTERVAL_MS after: its INSTANCE_ID, version,
 * start time, MAX_CONCURRENCY and a fingerprint of the settings that must
 * agree across a gate's instances (GATE_INSTANCES_SETTINGS below), kept as
 * a map setting name -> short digest so that a difference can be named
 * without any value being readable in Redis (secrets included: only a
 * truncated salted SHA-256 of each value is stored, PBKDF2 for the
 * secrets). An entry expires
 * GATE_INSTANCES_TTL_MS after its last announcement; an instance that
 * stops cleanly removes its own at once.
 *
 * The limit: the script keeps the lowest MAX_CONCURRENCY among the live
 * instances in cg:{g}:instances_min, and admission (common.lua base_limit)
 * obeys the lower of it and its own, unless an operator set the limit at
 * runtime (/admin/limit): an instance configured with a higher limit never
 * raises the gate's.
 *
 * Disagreement: each announcement's reply lists the live instances; when
 * their settings differ, a warning names the instances and the settings,
 * once per change, and /health and /metrics report it
 * (cg_gate_instances_state in gate.h). An entry is
 * "<INSTANCE_ID>#<token>", the token drawn at start: two processes given
 * one INSTANCE_ID are two entries (both limits count), reported the same
 * way.
 *
 * Ownership: the registry borrows the gate (it outlives it). An
 * announcement in flight when the registry is freed finishes on its own.
 */
#ifndef CG_GATE_INSTANCES_H
#define CG_GATE_INSTANCES_H

#include <stddef.h>

struct cg_gate;
struct cg_config;
struct cg_buf;
struct gate_instances;

#define GATE_INSTANCES_INTERVAL_MS 2000
/* A dead instance's entry (and its limit) lasts this long at most. */
#define GATE_INSTANCES_TTL_MS 8000

/* The options that must agree across a gate's instances, in the order the
 * settings map lists them (README.md and docs/DEPLOY.md name the same). */
#define GATE_INSTANCES_SETTINGS                                                                    \
    "MAX_CONCURRENCY, MAX_QUEUE_SIZE, MAX_WAIT_SECONDS, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "   \
    "TWILIO_QUEUE_SID, TWILIO_QUEUE_NAME, VAPI_API_KEY, VAPI_ASSISTANT_ID, "                       \
    "VAPI_PHONE_NUMBER_ID, VAPI_WEBHOOK_SECRET, VAPI_HMAC_SECRET, ROUTES_FILE (its content), "     \
    "OUTBOUND_ORDER, OVERFLOW_ACTION, OVERFLOW_MESSAGE, OVERFLOW_DIAL_NUMBER, "                    \
    "OVERLIMIT_HOLD_SECONDS, ADMISSION_LEASE_SECONDS, CALLBACK_OFFER_SECONDS, "                    \
    "CALLBACK_RETRY_SECONDS, CALLBACK_ATTEMPTS, CALLBACK_HOURS"

/* The settings map of cfg ("NAME=digest,..." into settings) and its
 * fingerprint (12 hex digits). Each digest is the first 12 hex digits of
 * SHA-256 over "callgate-setting", the name and the value; for the four
 * secrets, of PBKDF2-HMAC-SHA256 (10,000 rounds, salted with the name). */
void gate_instances_settings(const struct cg_config *cfg, struct cg_buf *settings,
                             char fingerprint[13]);

/* One live instance as the registry lists it (strings borrowed). */
struct gate_instance_view {
    const char *id;
    const char *version;
    long long started_ms;
    long long limit;
    const char *fingerprint;
    const char *settings;
};

/* The names of the settings whose digests differ between any two of the
 * n instances, comma separated, into names ("" when all agree; a setting
 * only some list, as across versions, is not compared), and how many
 * instances are outside the largest group sharing one fingerprint (0 when
 * no setting is named). */
void gate_instances_compare(const struct gate_instance_view *v, size_t n, char *names,
                            size_t nameslen, size_t *disagreeing);

/* NULL when the timer cannot be created. The first announcement goes out
 * on the next loop turn. */
struct gate_instances *gate_instances_new(struct cg_gate *g);
/* Announces now (Redis became ready). */
void gate_instances_kick(struct gate_instances *r);
/* Clean stop: no more announcements, and this instance's entry removed. */
void gate_instances_leave(struct gate_instances *r);
/* 1 while the removal is in flight (shutdown waits for it). */
size_t gate_instances_busy(const struct gate_instances *r);
/* Declares and sets the registry's gauges (callgate_instances,
 * callgate_instances_disagreeing). */
void gate_instances_declare_metrics(struct gate_instances *r);
void gate_instances_set_metrics(struct gate_instances *r);
void gate_instances_free(struct gate_instances *r);

#endif
