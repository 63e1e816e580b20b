/*
 * outage.h - windows of scenario time during which a simulated API
 * (Twilio REST, Vapi) is unreachable for the gate: scenario members
 * "twilio.outages" and "vapi.outages", [{"at_s": 3, "for_s": 10,
 * "mode": "hang" | "503" | "late"}, ...].
 *
 * "hang" (the default) is a black hole: the request is accepted and held
 * unanswered, unprocessed, until the window closes, so the gate's request
 * runs into its own timeout (TWILIO_TIMEOUT_MS, VAPI_TIMEOUT_MS) exactly as
 * it would during a network partition; whatever is still held when the
 * window closes is answered 503 (normally to a client that has given up).
 * "503" answers every request at once with 503, like a provider-side
 * outage behind a healthy front end. In neither mode is a request acted
 * upon, so the gate never sees a side effect it was not told about.
 * "late" holds requests like "hang" but then processes them normally when
 * the window closes (a partition whose packets are delivered once it
 * heals, or an API that is merely very slow): the API acts on requests
 * whose answers nobody reads any more.
 *
 * The simulator serves every API on one port, so refusing connections per
 * API is not possible; the black hole is the harsher case anyway (the
 * gate's requests hold their slots for the whole timeout). Only the API
 * side is cut: webhooks from Twilio and Vapi to the gate keep flowing.
 * Windows are in scenario time and never apply before the scenario starts.
 */
#ifndef SIM_OUTAGE_H
#define SIM_OUTAGE_H

#include <stddef.h>

#include "scenario.h"

struct event_base;
struct cg_http_req;
struct sim_world;
struct sim_outage_hold;

/* How an API refuses a request (503), and how it serves one held by a
 * "late" window once the window closes. */
typedef void (*sim_outage_reply)(struct cg_http_req *req, void *arg);

/* name ("twilio", "vapi") prefixes the counters it adds to the report:
 * <name>.outage_held, <name>.outage_503, <name>.outage_late. */
struct sim_outage_hold *sim_outage_hold_new(struct sim_world *w, const char *name,
                                            const struct sim_outages *windows,
                                            sim_outage_reply unavailable, sim_outage_reply serve,
                                            void *arg);
/* Answers 503 to every request still held and frees the holder. */
void sim_outage_hold_free(struct sim_outage_hold *h);

/* Returns 1 when the API is down now: the request has been taken (held, or
 * answered 503) and the caller must not touch it again; 0 otherwise. */
int sim_outage_take(struct sim_outage_hold *h, struct cg_http_req *req);

/* The window containing scenario time now_s, or NULL. */
const struct sim_outage *sim_outage_at(const struct sim_outages *o, double now_s);

#endif
