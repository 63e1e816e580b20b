/*
 * scenario_routes.h - the scenario's routes: several lines sharing one Vapi
 * organization limit (vapi.limit), each with its own dialed numbers, Twilio
 * queue, assistant, cap, minimum and priority; the dialer client that places
 * outbound calls and takes leased slots through callgate's admin API; and
 * the tolerances of the route invariants (rcheck.h). Parsed by scenario.c
 * from three top-level members, all optional; without "routes" the
 * simulator behaves as it always has (one number, one queue).
 *
 *   "routes": [                     the list callgate reads as ROUTES_FILE
 *     {"name": "support", "numbers": ["+15550100000"], "assistantId": "as-support",
 *      "phoneNumberId": "pn-support", "queue": "support", "max": 6, "min": 2,
 *      "priority": 1, "vip": ["+15551234567"],
 *      "callers": {                   simulator only: who dials this route's numbers
 *        "arrivals": [{"until_s": 6, "rate_per_s": 1}, {"until_s": 12, "rate_per_s": 4}],
 *        "vip_share": 0}}           share of callers calling from a vip number
 *   ],
 *   "route_checks": {"baseline_until_s": null, "surge_until_s": null,
 *                    "min_tolerance_s": 0.25,
 *                    "overtake_tolerance_s": 0.25, "outbound_after_inbound": true},
 *   "dialer": {"admin_token": "sim-admin-token", "poll_s": 0.5,
 *     "outbound": {"route": "sales", "rate_per_s": 0, "until_s": duration_s},
 *     "slots": {"route": "sales", "rate_per_s": 0, "until_s": duration_s, "ttl_s": 4,
 *               "hold_min_s": 0.5, "hold_max_s": 2, "expire_share": 0.2, "renew_share": 0.2},
 *     "customers": {"answer": 0.8, "busy": 0.1, "dial_s": 0.1, "ring_min_s": 0.2,
 *                   "ring_max_s": 1, "no_answer_s": 2, "talk_min_s": 0.5, "talk_max_s": 2}}
 *
 * Per-route waits are reported for every connected caller and, with
 * baseline_until_s, apart for callers who arrived before it (the baseline)
 * and after it; with surge_until_s too, for those who arrived in
 * [baseline_until_s, surge_until_s) (the surge).
 *
 * ROUTES_FILE is the "routes" list with each route's "callers" member left
 * out (tests/scenario/runner.c writes it). Route names, numbers and phone
 * number ids are unique; min <= max; the sum of mins does not exceed
 * vapi.limit (checked by scenario.c once vapi is read).
 */
#ifndef SIM_SCENARIO_ROUTES_H
#define SIM_SCENARIO_ROUTES_H

#include <stddef.h>

struct json_t;
struct sim_segment;

#define SIM_MAX_ROUTES        16
#define SIM_ROUTE_MAX_NUMBERS 8
#define SIM_ROUTE_MAX_VIP     16

struct sim_route_cfg {
    char *name;
    char *numbers[SIM_ROUTE_MAX_NUMBERS];
    size_t nnumbers;
    char *assistant_id, *phone_number_id, *queue;
    int max; /* 0: the organization's limit */
    int min, priority;
    char *vip[SIM_ROUTE_MAX_VIP];
    size_t nvip;
    struct sim_segment *segments; /* arrivals: Poisson rate per segment */
    size_t nsegments;
    double vip_share;
};

/* The simulated customers Vapi dials for an outbound call. */
struct sim_customers_cfg {
    double answer, busy;           /* probabilities; the rest rings out */
    double dial_s;                 /* queued -> ringing */
    double ring_min_s, ring_max_s; /* ringing until answered or busy */
    double no_answer_s;            /* ringing until Vapi gives up */
    double talk_min_s, talk_max_s;
};

struct sim_dialer_cfg {
    char *admin_token;
    double poll_s;
    int out_route; /* index into routes, -1: no outbound calls */
    double out_rate_per_s, out_until_s;
    int slot_route; /* -1: no slots */
    double slot_rate_per_s, slot_until_s, slot_ttl_s, hold_min_s, hold_max_s;
    double expire_share, renew_share;
    struct sim_customers_cfg customers;
};

struct sim_routes_cfg {
    struct sim_route_cfg r[SIM_MAX_ROUTES];
    size_t n;
    double baseline_until_s; /* < 0: no baseline phase */
    double surge_until_s;    /* < 0: the surge runs from baseline_until_s to the end */
    double min_tolerance_s, overtake_tolerance_s;
    int outbound_after_inbound;
    int has_dialer;
    struct sim_dialer_cfg dialer;
};

/* Parses the three members of root (any may be absent). *out is NULL when
 * "routes" is absent ("route_checks" and "dialer" then are an error);
 * otherwise a new config the caller frees. duration_s is the scenario's
 * (the dialer's default until_s). 0, or -1 with a message naming the JSON
 * path in err. */
int sim_routes_cfg_parse(const struct json_t *root, double duration_s, struct sim_routes_cfg **out,
                         char *err, size_t errlen);
void sim_routes_cfg_free(struct sim_routes_cfg *cfg);
/* Index of the route with this name, or -1. */
int sim_routes_cfg_find(const struct sim_routes_cfg *cfg, const char *name);

#endif
