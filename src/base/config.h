/*
 * config.h - callgate's configuration: one table of options (config.c) with
 * name, type, default, bounds, secrecy and a one-line doc, read from the
 * environment and from a .env file in the working directory. The
 * environment wins, as with dotenv: a variable set in the environment, even
 * to the empty string, is never overridden by .env.
 *
 * Loading validates every option and collects every problem before
 * returning, each as "NAME: reason", so an operator fixes them in one pass.
 * The process then exits 2 (see main.c).
 *
 * Ownership: the strings in struct cg_config are owned by it and freed by
 * cg_config_free(). A loaded config is never modified afterwards; runtime
 * changes (the admin limit) live in Redis.
 */
#ifndef CG_CONFIG_H
#define CG_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "base/config_routes.h"
#include "base/log.h"

enum cg_overflow_action {
    CG_OVERFLOW_MESSAGE,   /* say OVERFLOW_MESSAGE, then hang up */
    CG_OVERFLOW_DIAL,      /* <Dial> OVERFLOW_DIAL_NUMBER */
    CG_OVERFLOW_VOICEMAIL, /* say OVERFLOW_MESSAGE, then <Record> */
};

struct cg_config {
    /* HTTP server */
    char *bind_address;
    int port;
    char *public_url;        /* normalised, no trailing slash */
    int public_url_loopback; /* its host is this machine: a local test, no proxy */
    long http_max_body_bytes;
    long http_max_header_bytes;
    int http_timeout_seconds;
    int shutdown_grace_ms;
    enum cg_log_level log_level;
    char *admin_token;
    char *instance_id;

    /* Redis */
    char *redis_url;
    int redis_connect_timeout_ms;
    int redis_command_timeout_ms;
    int redis_reconnect_min_ms;
    int redis_reconnect_max_ms;
    char *redis_tls_ca_file;     /* "": the system store */
    char *redis_tls_cert_file;   /* "": no client certificate */
    char *redis_tls_key_file;    /* "" unless redis_tls_cert_file is set */
    char *redis_tls_server_name; /* "": the host connected to */
    int redis_tls_insecure;
    char *redis_sentinels;         /* "": no Sentinel */
    char *redis_sentinel_master;   /* set exactly when redis_sentinels is */
    char *redis_sentinel_password; /* "": sentinels without AUTH */
    char *gate_name;               /* the hash tag: keys are cg:{<gate_name>}:... */

    /* Twilio */
    char *twilio_account_sid;
    char *twilio_auth_token;
    char *twilio_queue_sid;
    char *twilio_queue_name;
    char *twilio_api_base_url;
    char *twilio_workspace_sid;
    char *taskrouter_base_url;

    /* Vapi */
    char *vapi_api_key;
    char *vapi_phone_number_id;
    char *vapi_assistant_id;
    char *vapi_base_url;
    char *vapi_webhook_secret;
    char *vapi_webhook_hmac_secret;
    char *vapi_webhook_hmac_algorithm;
    char *vapi_webhook_hmac_signature_header;
    char *vapi_webhook_hmac_timestamp_header;
    char *vapi_webhook_hmac_prefix;
    char *vapi_webhook_hmac_encoding;
    int vapi_max_duration_seconds;
    int vapi_accept_static_secret; /* with VAPI_HMAC_SECRET too: a migration */
    char *vapi_forward_url;        /* "" or the user's server for other messages */
    int vapi_forward_timeout_ms;   /* its answer's deadline */

    /* Admission gate */
    int max_concurrency;
    int max_queue_size;
    int max_wait_seconds;
    char *routes_file;       /* "": one route from the environment */
    char *outbound_order;    /* after-inbound | arrival */
    struct cg_routes routes; /* from routes_file; n == 0 without it */
    enum cg_overflow_action overflow_action;
    char *overflow_message;
    char *overflow_dial_number;
    char *hold_music_url;
    int announce_interval_seconds;
    int fast_path_deadline_ms;
    int lease_seconds;
    int reconcile_interval_seconds;
    int sweep_interval_ms;
    int end_grace_ms;
    int admission_lease_seconds;
    int orphan_hold_seconds;
    int overlimit_hold_seconds;
    int admission_backoff_min_ms;
    int admission_backoff_max_ms;
    int max_admission_attempts;
    int expected_call_seconds;
    int service_level_seconds;
    int short_abandon_seconds;
    int queue_log_retention_hours;
    int queue_log_max_entries;
    int events_stream_max_seconds;
    int vapi_timeout_ms;
    int twilio_timeout_ms;

    /* Call control and hand-offs (gate/control.c) */
    char *vapi_server_messages;   /* assistantOverrides.serverMessages, comma separated */
    char *handoff_workflow_sid;   /* "": no hand-off to a human queue */
    char *handoff_task_queue_sid; /* the TaskQueue its callers hold in (waitUrl) */
    char *handoff_numbers;        /* destinations that mean the human queue, comma separated */
    char *transfer_failed_message;

    /* Queued callbacks (gate/callback*.c) */
    int callback_offer_seconds; /* 0: callbacks off */
    int callback_retry_seconds;
    int callback_attempts;
    char *callback_hours; /* "": always */
    int callback_ring_seconds;
    char *callback_offer_message;
    char *callback_confirm_message;
    char *callback_machine_message; /* "": hang up on a machine */
    char *callback_pending_message;
    char *callback_number_message; /* "": no other number */
    char *callback_number_prompt;
    char *callback_number_invalid_message;
    char *callback_number_confirm_message;

    /* Wait-time service */
    int wait_time_poll_seconds;
    char *wait_time_read_token;
    int wait_time_page_size;    /* TaskQueues per statistics / list page */
    int wait_time_lock_seconds; /* poller lock expiry; 0: 3 intervals, at least 10 s */

    /* Services (SERVICES, config_services.c) */
    char *services_option; /* as written: auto, or a list */
    unsigned services;     /* CG_SERVICE_* bits, resolved */

    /* Private to config.c: where each option's value came from. */
    unsigned char source_[192];
};

struct cg_config_errors {
    char **msgs; /* "NAME: reason" */
    size_t n;
    char **warnings; /* not fatal: unknown names, settings that only a test uses */
    size_t nwarnings;
};

#define CG_SERVICE_GATE     1u
#define CG_SERVICE_WAITTIME 2u
#define CG_SERVICES_AUTO    0x100u /* SERVICES=auto before resolution */

/* Loads defaults, then .env at dotenv_path (NULL: none; a missing file is
 * not an error), then the environment. Returns 0, or -1 with every problem
 * in errs (which the caller frees with cg_config_errors_free). On -1 the
 * config is still freed by cg_config_free(). Either way errs->warnings
 * holds what the operator should know but does not stop callgate: names
 * in .env (or CALLGATE_, TWILIO_, VAPI_, REDIS_ names in the environment)
 * that are no option, with the closest option's name. */
int cg_config_load(struct cg_config *cfg, const char *dotenv_path, struct cg_config_errors *errs);
void cg_config_free(struct cg_config *cfg);
void cg_config_errors_free(struct cg_config_errors *errs);
/* Records a problem (load fails) or a warning (load goes on), for checks
 * made above this layer once the options are loaded (the gate's TwiML
 * limits, main.c). */
#if defined(__GNUC__)
#define CG_CONFIG_ERR_PRINTF __attribute__((format(printf, 2, 3)))
#else
#define CG_CONFIG_ERR_PRINTF
#endif
void cg_config_add_error(struct cg_config_errors *errs, const char *fmt, ...) CG_CONFIG_ERR_PRINTF;
void cg_config_add_warning(struct cg_config_errors *errs, const char *fmt,
                           ...) CG_CONFIG_ERR_PRINTF;

/* The .env file read from the working directory (by serve, check-config,
 * doctor, and again on SIGHUP). */
#define CG_DOTENV_PATH ".env"

/* VAPI_SERVER_MESSAGES=auto: Vapi's default serverMessages with
 * phone-call-control added. */
#define CG_SERVER_MESSAGES_AUTO                                                                    \
    "phone-call-control,status-update,end-of-call-report,hang,tool-calls,function-call,"           \
    "transfer-destination-request,handoff-destination-request,conversation-update,"                \
    "speech-update,user-interrupted,assistant.started"
/* The serverMessages list each Vapi call asks for (config_handoff.c):
 * VAPI_SERVER_MESSAGES, or CG_SERVER_MESSAGES_AUTO for auto. Static or
 * owned by cfg. */
const char *cg_config_server_messages(const struct cg_config *cfg);

/* Names of the options whose values differ between a and b, comma
 * separated, into out ("" when none). */
void cg_config_diff(const struct cg_config *a, const struct cg_config *b, char *out, size_t outlen);
/* Prints the effective configuration, one "NAME=value  (source)" line per
 * option, secrets masked, control characters in values written as \xNN. */
void cg_config_print(const struct cg_config *cfg, FILE *out);
/* Prints the option table (name, type, default, doc) for --help. */
void cg_config_print_help(FILE *out);
/* Registers every non-empty secret with the logger's mask list. */
void cg_config_register_secrets(const struct cg_config *cfg);
/* "gate, waittime", "gate", "waittime" or "none" into out. */
void cg_config_services_text(unsigned services, char *out, size_t outlen);
/* The known option closest to name (a likely misspelling), or NULL. */
const char *cg_config_closest_name(const char *name);
/* Name of the i-th option in table order, or NULL past the last one (tests
 * use it to clear every variable; docs to list them). */
const char *cg_config_option_name(size_t i);

#endif
