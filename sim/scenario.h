/*
 * scenario.h - a scenario file: who calls, how the APIs behave, which
 * faults to inject, and what the run must prove. JSON, every member
 * optional with the defaults below; unknown members are an error (a typo
 * must not silently test something else).
 *
 * {
 *   "name": "steady", "seed": 42,
 *   "duration_s": 10,          arrivals happen in [0, duration_s)
 *   "drain_s": 20,             then at most this long for everyone to finish
 *   "callers": {
 *     "arrivals": {"process": "poisson", "rate_per_s": 5}
 *               | {"process": "burst", "count": 200, "at_s": 1, "spread_s": 0.5}
 *               | {"process": "schedule", "segments": [{"until_s": 5, "rate_per_s": 2}, ...]},
 *     "duration": {"dist": "exp", "mean_s": 2, "min_s": 0.2, "max_s": 10}
 *               | {"dist": "lognormal", "median_s": 2, "sigma": 0.5, ...}
 *               | {"dist": "uniform", "min_s": 1, "max_s": 3} | {"dist": "const", "value_s": 2},
 *     "patience": same shapes, or null for callers who never give up (default null)
 *   },
 *   "twilio": {
 *     "account_sid": "AC...", "auth_token": "...", "queue_max_size": 1000,
 *     "say_s_per_char": 0.001, "play_s": 0.5,   simulated media durations
 *     "redirect_posts_action": true,            on REST dequeue, POST action
 * (QueueResult=redirected) first "completed_again": "21220" | "200",       Status=completed on a
 * completed call "latency": {dist...}, "rate_429": 0, "rate_5xx": 0,   REST faults "webhooks":
 * {"drop": 0, "duplicate": 0, "delay": {dist...} | null, "reorder": 0},
 *     "outages": [{"at_s": 3, "for_s": 10, "mode": "hang" | "503" | "late"}, ...]
 *                                               REST API unreachable (outage.h); default none
 *   },
 *   "vapi": {
 *     "api_key": "...", "limit": 10, "server_secret": "...",
 *     "overlimit_mode": "400" | "blocked", "external_calls": 0,  calls in the pool callgate does
 * not see "end_lag_s": 0.2, "report_lag_s": 0.3, "no_stream_timeout_s": 5, "max_duration_s": 600,
 *     "visibility_lag_s": 0,                   GET /call/{id} answers 404 this long after creation
 *     "latency": {dist...}, "rate_429": 0, "rate_500": 0, "rate_overlimit": 0, "hang_rate": 0,
 *     "webhooks": {"drop": 0, "duplicate": 0, "delay": null, "reorder": 0},
 *     "outages": [{"at_s": 3, "for_s": 10, "mode": "hang"}, ...]   API unreachable, as Twilio
 *   },
 *   "balancer": {                             the load balancer in front of the instances
 *     "retry_empty_response": false           also send a webhook to the next instance when
 *   },                                        the connection closed with no answer at all
 *                                             (an instance killed while handling it), as
 *                                             HAProxy's retry-on empty-response; connection
 *                                             refused always fails over (hooks.c)
 *   "expect": {"lost": 0, "max_overlimit_rejections": 0, "final_active": 0, "final_waiting": 0,
 *              "max_idle_slot_s": null, "min_connected": null},
 *   "taskrouter": {                           TaskRouter v1 (taskrouter.c); off with 0 queues
 *     "workspace_sid": "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "queues": 0,
 *     "workers_per_queue": 3 | {dist...},       drawn per queue, rounded
 *     "task_rate_per_s": 0.08 | {dist...},      per-queue Poisson rate; a dist's values are
 *                                               read as tasks/s, drawn per queue from the seed
 *     "handle_s": {"dist": "exp", "mean_s": 30, "min_s": 1, "max_s": 600},
 *     "abandon_s": null | {dist...},            a pending task is canceled after this long
 *     "stalled_queues": 0,                      queues whose workers are all offline
 *     "warmup_s": 0,                            simulated history before the start
 *     "bulk_wait_durations": true,              wait_duration_* in TaskQueues/Statistics
 *     "rate_limit_per_s": 50, "rate_429": 0, "latency": null,
 *     "fail_page": -1, "fail_mode": "500" | "garbage"   a Statistics list page (0-based) fails
 *   },
 *   "accounts": {                             what the accounts hold, read by `callgate doctor`;
 *                                             every member defaults to a deployment set up
 *                                             right for --public-url
 *     "twilio": {                             GET Accounts/{AC}.json, IncomingPhoneNumbers.json
 *       "friendly_name": "callgate-sim", "status": "active" | "suspended" | "closed",
 *       "numbers": [{"phone_number": "+15550100000",   E.164; sid PN000...0001 by position
 *                    "voice_url": "<public_url>/incoming" | null,   null: none set
 *                    "voice_method": "POST" | "GET",
 *                    "status_callback": "<public_url>/call-status" | null,
 *                    "status_callback_method": "POST" | "GET"}]   default: the one above
 *     },
 *     "vapi": {
 *       "assistant": {"id": "sim-assistant", "name": "callgate-sim assistant",
 *                     "server_url": "<public_url>/call-ended" | null,    null: no server
 *                     "server_messages": ["status-update", "end-of-call-report"] | null},
 *                                             null: the member is absent (Vapi's defaults)
 *       "phone_number": {"id": "sim-phone-number",
 *                        "number": the first Twilio number, "assistant_id": null | "..."}
 *     }
 *   }
 * }
 * "routes", "route_checks" and "dialer": several lines sharing the Vapi
 * limit, and a dialer client; see scenario_routes.h.
 * Twilio queues are the ones `--queue` or <Enqueue> creates, with
 * twilio.queue_max_size; the TaskRouter workspace is taskrouter.workspace_sid.
 */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stddef.h>

struct sim_routes_cfg;

/* Bounds of the taskrouter member: beyond these a value is a typo, and they
 * bound what the model can allocate. */
#define SIM_TR_MAX_QUEUES   10000
#define SIM_TR_MAX_WORKERS  10000 /* per queue */
#define SIM_TR_MAX_RATE     100.0 /* tasks per second per queue */
#define SIM_TR_MAX_WARMUP_S 86400.0

enum sim_dist_kind {
    SIM_DIST_NONE,
    SIM_DIST_CONST,
    SIM_DIST_UNIFORM,
    SIM_DIST_EXP,
    SIM_DIST_LOGNORMAL
};

struct sim_dist {
    enum sim_dist_kind kind; /* NONE: "null" (no value: infinite patience, no delay) */
    double a;                /* const value, uniform min, exp mean, lognormal median */
    double b;                /* uniform max, lognormal sigma */
    double min_s, max_s;     /* clamps; max_s 0 = none */
};

enum sim_arrival_kind { SIM_ARRIVAL_POISSON, SIM_ARRIVAL_BURST, SIM_ARRIVAL_SCHEDULE };

struct sim_segment {
    double until_s;
    double rate_per_s;
};

/* API outage windows (outage.h), in scenario seconds. */
#define SIM_MAX_OUTAGES 16
enum sim_outage_mode { SIM_OUTAGE_HANG, SIM_OUTAGE_503, SIM_OUTAGE_LATE };
struct sim_outage {
    double at_s, for_s;
    enum sim_outage_mode mode;
};
struct sim_outages {
    struct sim_outage w[SIM_MAX_OUTAGES];
    size_t n;
};

struct sim_webhook_faults {
    double drop, duplicate, reorder;
    struct sim_dist delay;
};

#define SIM_MAX_NUMBERS         16
#define SIM_MAX_SERVER_MESSAGES 32

/* One IncomingPhoneNumber. A URL is NULL for the default (under the
 * public URL) and "" when the scenario set it to null (none). */
struct sim_number {
    char *phone_number;
    char *voice_url;
    char *voice_method; /* "GET" or "POST" */
    char *status_callback;
    char *status_callback_method;
};

/* The "accounts" member: the read-only resources of the Twilio and Vapi
 * accounts. Strings as for struct sim_number: NULL default, "" none. */
struct sim_accounts {
    char *twilio_friendly_name;
    char *twilio_status;
    struct sim_number numbers[SIM_MAX_NUMBERS];
    size_t nnumbers;
    char *assistant_id;
    char *assistant_name;
    char *assistant_server_url;
    int server_messages_mode; /* 0: the default list; -1: absent; 1: server_messages[] */
    char *server_messages[SIM_MAX_SERVER_MESSAGES];
    size_t nserver_messages;
    char *phone_number_id;
    char *phone_number;       /* NULL: the first Twilio number's (or +15550100000) */
    char *phone_assistant_id; /* NULL or "": no inbound assistant */
};

/* "transfers": the simulated assistant's phone-call-control messages and
 * the simulated people they reach (vapi.c sends, twilio_voice.c runs the
 * <Dial>, <Sip> and <Enqueue workflowSid>). Weights pick the request. */
struct sim_transfers {
    double share;   /* of connected calls whose assistant sends one (0: none) */
    double after_s; /* into the conversation */
    double w_number, w_sip, w_queue, w_hangup, w_refused, w_no_answer;
    char *number;           /* a person's number: answers */
    char *sip_uri;          /* a person's SIP address: answers */
    char *queue_number;     /* the number callgate maps to its human queue */
    char *invalid_number;   /* Twilio refuses a <Dial> to it (13223) */
    char *no_answer_number; /* rings out: DialCallStatus no-answer */
    double answer_s;        /* a person (or a TaskRouter agent) answers after */
    double talk_s;          /* and talks this long, then hangs up */
};

/* Queued callbacks (callbacks.c, twilio_outbound.c): callers who hear the
 * offer press 1 with probability press1; the gate's outbound call to them
 * is answered by a person, busy, a machine, or rings out (the rest), after
 * ring_s. attempts is the gate's CALLBACK_ATTEMPTS; min_within the share of
 * connected callbacks that must come within the estimate given (< 0: not
 * checked). */
struct sim_callbacks {
    double press1;
    double answer, busy, machine;
    double ring_s;
    long attempts;
    double min_within;
};

struct sim_scenario {
    char *name;
    unsigned long long seed;
    double duration_s;
    double drain_s;

    enum sim_arrival_kind arrival;
    double rate_per_s;
    int burst_count;
    double burst_at_s, burst_spread_s;
    struct sim_segment *segments;
    size_t nsegments;
    struct sim_dist duration;
    struct sim_dist patience;

    char *twilio_account_sid;
    char *twilio_auth_token;
    int queue_max_size;
    double say_s_per_char;
    double play_s;
    int redirect_posts_action;
    int completed_again_200;
    struct sim_dist twilio_latency;
    double twilio_rate_429, twilio_rate_5xx;
    struct sim_webhook_faults twilio_hooks;
    struct sim_outages twilio_outages;

    char *vapi_api_key;
    int vapi_limit;
    char *vapi_server_secret;
    int vapi_overlimit_blocked; /* 0: 400 body; 1: 201 concurrencyBlocked */
    int vapi_external_calls;
    double vapi_end_lag_s, vapi_report_lag_s, vapi_no_stream_timeout_s, vapi_max_duration_s;
    double vapi_visibility_lag_s;
    struct sim_dist vapi_latency;
    double vapi_rate_429, vapi_rate_500, vapi_rate_overlimit;
    double vapi_hang_rate; /* "hang_rate": share of connected calls that get one "hang"
                            * server message (slow model; must not release a slot); 0 */
    struct sim_webhook_faults vapi_hooks;
    struct sim_outages vapi_outages;

    int balancer_retry_empty; /* balancer.retry_empty_response */

    /* TaskRouter; tr_queues 0 turns it off. */
    char *tr_workspace_sid;
    int tr_queues;
    struct sim_dist tr_workers;   /* per queue, rounded to an integer */
    struct sim_dist tr_task_rate; /* per queue, tasks per second */
    struct sim_dist tr_handle;
    struct sim_dist tr_abandon; /* NONE: tasks wait forever */
    int tr_stalled_queues;
    double tr_warmup_s;
    int tr_bulk_wait_durations;
    double tr_rate_limit_per_s;
    double tr_rate_429;
    int tr_fail_page;    /* -1: none */
    int tr_fail_garbage; /* 0: the failing page answers 500; 1: 200 with a cut body */
    struct sim_dist tr_latency;

    struct sim_accounts acc;

    long expect_lost;
    long expect_max_overlimit;
    long expect_final_active;
    long expect_final_waiting;
    double expect_max_idle_slot_s; /* < 0: not checked */
    long expect_min_connected;     /* < 0: not checked */
    struct sim_transfers transfers;
    struct sim_callbacks callbacks;
    /* expect.max_refill_ms: slowest refill of a freed slot allowed (< 0: none). */
    double expect_max_refill_ms;
    /* "routes", "route_checks", "dialer" (scenario_routes.h); NULL: one
     * route, as callgate runs without ROUTES_FILE. */
    struct sim_routes_cfg *routes;
};

/* Parses a scenario from JSON text; NULL-terminated err on failure. */
int sim_scenario_parse(struct sim_scenario *sc, const char *json, size_t len, char *err,
                       size_t errlen);
int sim_scenario_load(struct sim_scenario *sc, const char *path, char *err, size_t errlen);
void sim_scenario_free(struct sim_scenario *sc);

#endif
