/*
 * hooks.h - webhook delivery from the simulated Twilio and Vapi to the
 * gate, through the simulated load balancer, with injected faults.
 *
 * Each delivery may be dropped, duplicated, delayed (a draw from the delay
 * distribution) or reordered (held back behind the next delivery), with the
 * probabilities of the side's sim_webhook_faults. Faults are drawn from
 * w->fault_rng. A dropped webhook still calls cb, with status 0 and
 * dropped = 1, so that callers of hooks never wait forever.
 *
 * Twilio deliveries carry X-Twilio-Signature computed over the public URL
 * (and the form parameters for POST); Vapi deliveries carry x-vapi-secret.
 */
#ifndef SIM_HOOKS_H
#define SIM_HOOKS_H

#include <stddef.h>

#include "base/form.h"
#include "scenario.h"

struct sim_world;
struct sim_hooks;

struct sim_hook_result {
    long status;      /* 0: transport failure or dropped */
    int dropped;      /* the fault injector dropped it */
    const char *body; /* response body (TwiML, JSON), valid during the callback */
    size_t body_len;
    const char *content_type;
    const char *error; /* transport error text, or NULL */
    /* X-Callgate-Estimated-Wait response header, seconds, or -1. */
    double estimated_wait_s;
};

typedef void (*sim_hook_cb)(const struct sim_hook_result *res, void *arg);

/* instances: the gate's actual base URLs ("http://127.0.0.1:3001", ...);
 * public_url: what Twilio and Vapi are configured with. */
struct sim_hooks *sim_hooks_new(struct sim_world *w, const char *public_url,
                                const char *const *instances, size_t ninstances);
void sim_hooks_free(struct sim_hooks *h);
/* The public URL, without trailing slash. */
const char *sim_hooks_public_url(const struct sim_hooks *h);

/* A Twilio webhook. url is absolute (normally under the public URL);
 * method "POST" sends params form-encoded, "GET" appends them to the query.
 * faults selects the fault profile; NULL means none (used for TwiML
 * fetches that Twilio does not lose in practice). cb may be NULL. */
void sim_hooks_twilio(struct sim_hooks *h, const char *method, const char *url,
                      const struct cg_form *params, const struct sim_webhook_faults *faults,
                      sim_hook_cb cb, void *arg);
/* A Vapi server message: POST json to url with x-vapi-secret. */
void sim_hooks_vapi(struct sim_hooks *h, const char *url, const char *json,
                    const struct sim_webhook_faults *faults, sim_hook_cb cb, void *arg);

#endif
