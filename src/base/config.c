#include "base/fmacros.h"

#include "base/config.h"
#include "base/config_int.h"
#include "base/config_routes.h"

#include "base/alloc.h"
#include "base/log.h"
#include "base/url.h"
#include "base/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A .env file is a handful of lines; anything bigger is a mistake (a binary,
 * a log file) and is refused rather than read into memory. */
#define HELP_WIDTH 79

enum opt_type {
    T_STR,       /* free text, checked by the row's check function */
    T_INT,       /* int field, bounded */
    T_LONG,      /* long field, bounded (byte sizes) */
    T_LOG_LEVEL, /* enum cg_log_level */
    T_OVERFLOW,  /* enum cg_overflow_action */
    T_BASE_URL,  /* http(s) base URL, stored normalised */
    T_REDIS_URL, /* redis:// URL, stored as written */
};

enum {
    F_SECRET = 1 << 0,   /* masked in print, registered with the logger */
    F_OPTIONAL = 1 << 1, /* the empty string skips validation */
};

enum { SRC_DEFAULT, SRC_DOTENV, SRC_ENV };

static const char *const source_names[] = {"default", ".env", "env"};

/* Returns NULL when v is acceptable, else a reason that never quotes v. */
typedef const char *(*check_fn)(const char *v);

struct choice {
    const char *name;
    int value;
};

struct option {
    const char *section;
    const char *name;
    enum opt_type type;
    size_t offset;
    const char *def;
    long min, max;
    unsigned flags;
    check_fn check;
    const struct choice *choices;
    const char *label; /* type shown by --help when "string" says too little */
    const char *doc;
};

static const struct choice level_choices[] = {
    {"debug", CG_LOG_DEBUG},
    {"info", CG_LOG_INFO},
    {"warn", CG_LOG_WARN},
    {"error", CG_LOG_ERROR},
    {NULL, 0},
};

static const struct choice overflow_choices[] = {
    {"message", CG_OVERFLOW_MESSAGE},
    {"dial", CG_OVERFLOW_DIAL},
    {"voicemail", CG_OVERFLOW_VOICEMAIL},
    {NULL, 0},
};

/* ---- checks for string options ---- */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* 1 if s has a space or a control character (C0, DEL). */
static int has_space_or_ctl(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

/* Twilio SIDs are a two-letter prefix and 32 hex digits. */
static int sid_ok(const char *v, const char *prefix)
{
    if (strncmp(v, prefix, 2) != 0 || strlen(v) != 34)
        return 0;
    for (size_t i = 2; i < 34; i++)
        if (!is_hex((unsigned char)v[i]))
            return 0;
    return 1;
}

static const char *check_account_sid(const char *v)
{
    return sid_ok(v, "AC") ? NULL : "must be AC followed by 32 hex digits";
}

static const char *check_queue_sid(const char *v)
{
    return sid_ok(v, "QU") ? NULL : "must be QU followed by 32 hex digits";
}

static const char *check_workspace_sid(const char *v)
{
    return sid_ok(v, "WS") ? NULL : "must be WS followed by 32 hex digits";
}

static const char *check_workflow_sid(const char *v)
{
    return sid_ok(v, "WW") ? NULL : "must be WW followed by 32 hex digits";
}

static const char *check_task_queue_sid(const char *v)
{
    return sid_ok(v, "WQ") ? NULL : "must be WQ followed by 32 hex digits";
}

static const char *check_bind_address(const char *v)
{
    if (*v == '\0' || has_space_or_ctl(v))
        return "must be an IP address or host name";
    return NULL;
}

/* Identifiers callgate only passes on (INSTANCE_ID, Vapi's ids): short, and
 * nothing that could split a log line or a URL. */
static const char *check_plain_id(const char *v)
{
    if (strlen(v) > 128 || has_space_or_ctl(v))
        return "must be at most 128 characters without spaces or control characters";
    return NULL;
}

/* Certificates and keys are read when Redis is first connected; a path
 * that cannot be read is refused at start instead of failing every
 * connect. */
static const char *check_readable_file(const char *v)
{
    if (access(v, R_OK) != 0)
        return errno == ENOENT ? "no such file" : "file cannot be read";
    return NULL;
}

static const char *check_server_name(const char *v)
{
    if (strlen(v) > 253 || has_space_or_ctl(v))
        return "must be a host name or IP address";
    return NULL;
}

static const char *check_sentinels(const char *v)
{
    static char msg[160];
    struct cg_hostport *list;
    size_t n;
    char err[96];
    if (cg_sentinels_parse(v, &list, &n, err, sizeof err) != 0) {
        snprintf(msg, sizeof msg, "must be host:port[,host:port...]: %s", err);
        return msg;
    }
    cg_sentinels_free(list, n);
    return NULL;
}

static const char *check_gate_name(const char *v)
{
    size_t n = strlen(v);
    if (n < 1 || n > 64)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
            goto bad;
    }
    return NULL;
bad:
    return "must be 1 to 64 characters from A-Z a-z 0-9 _ . -";
}

/* The value is already known to be valid UTF-8, so counting the bytes that
 * are not continuation bytes counts characters. */
/* OUTBOUND_ORDER: where outbound calls wait among callers. */
static const char *check_outbound_order(const char *v)
{
    if (strcmp(v, "after-inbound") != 0 && strcmp(v, "arrival") != 0)
        return "must be after-inbound or arrival";
    return NULL;
}

static const char *check_queue_name(const char *v)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            goto bad;
        /* C1 controls U+0080-U+009F are encoded as C2 80 - C2 9F. */
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            goto bad;
        if ((*p & 0xc0) != 0x80)
            chars++;
    }
    if (chars >= 1 && chars <= 64)
        return NULL;
bad:
    return "must be 1 to 64 characters without control characters";
}

static const char *check_overflow_message(const char *v)
{
    return strlen(v) <= 4096 ? NULL : "must be at most 4096 bytes";
}

static const char *check_transfer_message(const char *v)
{
    return strlen(v) <= 1000 ? NULL : "must be at most 1000 bytes";
}

static const char *check_callback_message(const char *v)
{
    return strlen(v) <= 500 ? NULL : "must be at most 500 bytes";
}

/* The syntax only; the days, times and zone are checked by the gate
 * (cg_gate_check_config), which knows the zone files. */
static const char *check_callback_hours(const char *v)
{
    if (strlen(v) > 120)
        return "must be at most 120 characters, like Mon-Fri 09:00-18:00 Europe/Paris";
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "must not contain control characters";
    return NULL;
}

static const char *check_dial_number(const char *v)
{
    size_t n = strlen(v);
    if (v[0] != '+' || n < 7 || n > 16)
        goto bad;
    for (size_t i = 1; i < n; i++)
        if (!is_digit((unsigned char)v[i]))
            goto bad;
    return NULL;
bad:
    return "must be a phone number in E.164 form: + and 6 to 15 digits";
}

int cg_config_parse_services(const char *v, unsigned *out)
{
    if (strcmp(v, "auto") == 0) {
        *out = CG_SERVICES_AUTO;
        return 0;
    }
    if (strcmp(v, "none") == 0) {
        *out = 0;
        return 0;
    }
    unsigned s = 0;
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n == 4 && memcmp(p, "gate", 4) == 0)
            s |= CG_SERVICE_GATE;
        else if (n == 8 && memcmp(p, "waittime", 8) == 0)
            s |= CG_SERVICE_WAITTIME;
        else
            return -1; /* also an empty item: "", "gate,", ",gate" */
        p += n;
        if (*p == '\0')
            break;
        p++;
    }
    *out = s;
    return 0;
}

static const char *check_services(const char *v)
{
    unsigned s;
    return cg_config_parse_services(v, &s) == 0
               ? NULL
               : "must be auto, none, or a comma-separated list of gate "
                 "and waittime (e.g. gate,waittime)";
}

/* Twilio's public classical hold music (the collection its default <Enqueue>
 * wait experience plays): a caller should never hear dead air because an
 * option was left out. */
#define CG_DEFAULT_HOLD_MUSIC_URL                                                                  \
    "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"

/* Not a base URL: hold music is often a URL with a query string (Twilio's
 * own twimlets are), so only the scheme and the absence of spaces are
 * checked. Twilio fetches it, not callgate. */
static const char *check_hold_music_url(const char *v)
{
    size_t skip = 0;
    if (strncasecmp(v, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(v, "http://", 7) == 0)
        skip = 7;
    if (skip == 0 || v[skip] == '\0' || v[skip] == '/' || has_space_or_ctl(v) || strlen(v) > 2048)
        return "must be an http:// or https:// URL";
    return NULL;
}

static const char *check_hmac_algorithm(const char *v)
{
    if (strcmp(v, "sha256") != 0 && strcmp(v, "sha512") != 0 && strcmp(v, "sha1") != 0)
        return "must be sha256, sha512 or sha1";
    return NULL;
}

static const char *check_hmac_encoding(const char *v)
{
    if (strcmp(v, "hex") != 0 && strcmp(v, "base64") != 0)
        return "must be hex or base64";
    return NULL;
}

static const char *check_header_name(const char *v)
{
    if (*v == '\0' || strlen(v) > 64)
        return "must be a header name of 1 to 64 characters";
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return "must be a header name (letters, digits, '-' and '_')";
    return NULL;
}

/* VAPI_FORWARD_URL: the user's own server, exactly as written (a trailing
 * '/' or a query string may matter to it). The hop carries the webhook
 * secret and a fresh signature, so it is https, or http only to this
 * machine. */
static const char *check_forward_url(const char *v)
{
    if (strlen(v) > 2048 || has_space_or_ctl(v))
        return "must be an https:// URL of at most 2048 characters without spaces";
    size_t n = strcspn(v, "?#");
    if (strchr(v, '#') != NULL)
        return "must not have a #fragment";
    char *head = cg_strndup(v, n);
    struct cg_base_url u;
    char err[128];
    int rc = cg_base_url_parse(head, &u, err, sizeof err);
    free(head);
    if (rc != 0)
        return "must be an https:// URL (http:// only to 127.0.0.1, ::1 or localhost)";
    int ok = strcasecmp(u.scheme, "https") == 0 || cg_host_is_loopback(u.host);
    cg_base_url_free(&u);
    if (!ok)
        return "must be https://: the hop carries the Vapi webhook secret (http:// only to "
               "127.0.0.1, ::1 or localhost)";
    return NULL;
}

/* ---- the option table: the single source of truth ---- */

/* The offset of a field, with a compile-time check that it has type T, so a
 * row cannot point an int parser at a char * field. */
#define FIELD(f, T)                                                                                \
    (offsetof(struct cg_config, f) + 0 * sizeof(_Generic(((struct cg_config *)0)->f, T : 1)))

#define OPT_STR(sec, nm, f, d, fl, chk, dc)                                                        \
    {                                                                                              \
        .section = sec, .name = nm, .type = T_STR, .offset = FIELD(f, char *), .def = d,           \
        .flags = fl, .check = chk, .doc = dc                                                       \
    }
#define OPT_STRL(lbl, sec, nm, f, d, fl, chk, dc)                                                  \
    {                                                                                              \
        .section = sec, .name = nm, .type = T_STR, .offset = FIELD(f, char *), .def = d,           \
        .flags = fl, .check = chk, .label = lbl, .doc = dc                                         \
    }
#define OPT_INT(sec, nm, f, d, lo, hi, dc)                                                         \
    {                                                                                              \
        .section = sec, .name = nm, .type = T_INT, .offset = FIELD(f, int), .def = d, .min = lo,   \
        .max = hi, .doc = dc                                                                       \
    }
#define OPT_LONG(sec, nm, f, d, lo, hi, dc)                                                        \
    {                                                                                              \
        .section = sec, .name = nm, .type = T_LONG, .offset = FIELD(f, long), .def = d, .min = lo, \
        .max = hi, .doc = dc                                                                       \
    }
#define OPT_URL(sec, nm, f, d, fl, dc)                                                             \
    {                                                                                              \
        .section = sec, .name = nm, .type = T_BASE_URL, .offset = FIELD(f, char *), .def = d,      \
        .flags = fl, .doc = dc                                                                     \
    }

static const char S_SERVICES[] = "Services";
static const char S_HTTP[] = "HTTP server";
static const char S_REDIS[] = "Redis";
static const char S_TWILIO[] = "Twilio";
static const char S_VAPI[] = "Vapi";
static const char S_GATE[] = "Admission gate";
static const char S_WAIT[] = "Wait-time service";

static const struct option options[] = {
    OPT_STRL("services", S_SERVICES, "SERVICES", services_option, "auto", 0, check_services,
             "Which services run: auto (the admission gate when any of its options is set, "
             "the wait-time service when TWILIO_WORKSPACE_SID is), a list of gate and "
             "waittime, or none (only /health). A service that is on and misses a required "
             "option stops callgate from starting."),
    /* HTTP server */
    OPT_INT(S_HTTP, "PORT", port, "3000", 1, 65535, "TCP port the HTTP server listens on."),
    OPT_STRL("address", S_HTTP, "BIND_ADDRESS", bind_address, "0.0.0.0", 0, check_bind_address,
             "Address the HTTP server binds to: 0.0.0.0 for every IPv4 interface, :: for IPv6, "
             "127.0.0.1 behind a local reverse proxy."),
    OPT_URL(S_HTTP, "PUBLIC_URL", public_url, "", F_OPTIONAL,
            "Base URL Twilio uses to reach callgate, exactly as configured on the phone number "
            "(normally https://...). Twilio signs every webhook over this URL, so a mismatch "
            "makes every request fail validation. Empty: http://127.0.0.1:<PORT>, for local "
            "tests only."),
    OPT_LONG(S_HTTP, "HTTP_MAX_BODY_BYTES", http_max_body_bytes, "65536", 1024, 16777216,
             "Largest request body accepted; larger requests are refused with 413."),
    OPT_LONG(S_HTTP, "HTTP_MAX_HEADER_BYTES", http_max_header_bytes, "8192", 1024, 65536,
             "Largest total size of request header names and values; larger requests are "
             "refused with 431."),
    OPT_INT(S_HTTP, "HTTP_TIMEOUT_SECONDS", http_timeout_seconds, "30", 1, 3600,
            "Seconds an HTTP connection may stay idle or stuck in a request before it is "
            "closed."),
    OPT_INT(S_HTTP, "SHUTDOWN_GRACE_MS", shutdown_grace_ms, "5000", 0, 600000,
            "On SIGTERM or SIGINT, milliseconds allowed for requests in flight to finish before "
            "the process exits."),
    {.section = S_HTTP,
     .name = "LOG_LEVEL",
     .type = T_LOG_LEVEL,
     .offset = FIELD(log_level, enum cg_log_level),
     .def = "info",
     .choices = level_choices,
     .doc = "Least severe level written to the JSON log on stderr."},
    OPT_STR(S_HTTP, "ADMIN_TOKEN", admin_token, "", F_SECRET, NULL,
            "Bearer token required by the admin API. Empty: the admin API answers loopback "
            "clients only."),
    OPT_STR(S_HTTP, "INSTANCE_ID", instance_id, "", F_OPTIONAL, check_plain_id,
            "Name of this process in Redis leases, leader locks and logs; unique among the "
            "instances sharing a gate. Empty: <hostname>:<pid>."),

    /* Redis */
    {.section = S_REDIS,
     .name = "REDIS_URL",
     .type = T_REDIS_URL,
     .offset = FIELD(redis_url, char *),
     .def = "redis://127.0.0.1:6379",
     .doc = "Redis server as redis://[[user]:password@]host[:port][/db], or rediss://... for "
            "TLS; the password is kept out of logs. With REDIS_SENTINELS, the host and port "
            "are replaced by the master the sentinels name."},
    OPT_INT(S_REDIS, "REDIS_CONNECT_TIMEOUT_MS", redis_connect_timeout_ms, "2000", 50, 60000,
            "Milliseconds allowed to connect to Redis, authenticate and load the scripts."),
    OPT_INT(S_REDIS, "REDIS_COMMAND_TIMEOUT_MS", redis_command_timeout_ms, "2000", 50, 60000,
            "Milliseconds to wait for a Redis reply before the connection is deemed broken and "
            "reopened."),
    OPT_INT(S_REDIS, "REDIS_RECONNECT_MIN_MS", redis_reconnect_min_ms, "100", 10, 60000,
            "Shortest delay before reconnecting to Redis; the delay grows exponentially up to "
            "REDIS_RECONNECT_MAX_MS."),
    OPT_INT(S_REDIS, "REDIS_RECONNECT_MAX_MS", redis_reconnect_max_ms, "5000", 10, 600000,
            "Longest delay between Redis reconnection attempts; at least "
            "REDIS_RECONNECT_MIN_MS."),
    OPT_STRL("path", S_REDIS, "REDIS_TLS_CA_FILE", redis_tls_ca_file, "", F_OPTIONAL,
             check_readable_file,
             "PEM file of the CAs that sign the Redis server certificate (rediss:// only). "
             "Empty: the system's CA store."),
    OPT_STRL("path", S_REDIS, "REDIS_TLS_CERT_FILE", redis_tls_cert_file, "", F_OPTIONAL,
             check_readable_file,
             "PEM client certificate (chain) for Redis servers that require one; needs "
             "REDIS_TLS_KEY_FILE."),
    OPT_STRL("path", S_REDIS, "REDIS_TLS_KEY_FILE", redis_tls_key_file, "", F_OPTIONAL,
             check_readable_file, "PEM private key of REDIS_TLS_CERT_FILE."),
    OPT_STRL("name", S_REDIS, "REDIS_TLS_SERVER_NAME", redis_tls_server_name, "", F_OPTIONAL,
             check_server_name,
             "Name sent as SNI and required in the Redis server certificate. Empty: the host "
             "connected to (the REDIS_URL host, or the address a sentinel names)."),
    OPT_INT(S_REDIS, "REDIS_TLS_INSECURE", redis_tls_insecure, "0", 0, 1,
            "1 turns off the verification of the Redis server certificate, with a warning on "
            "every connect. For tests only: anyone on the path can read and change the "
            "traffic."),
    OPT_STRL("host:port,...", S_REDIS, "REDIS_SENTINELS", redis_sentinels, "", F_OPTIONAL,
             check_sentinels,
             "Redis Sentinels to ask for the master (port 26379 by default); needs "
             "REDIS_SENTINEL_MASTER. The master is asked for on every connect, and a "
             "+switch-master announcement moves the connection at once."),
    OPT_STRL("name", S_REDIS, "REDIS_SENTINEL_MASTER", redis_sentinel_master, "", F_OPTIONAL,
             check_plain_id, "Name of the master the sentinels monitor."),
    OPT_STR(S_REDIS, "REDIS_SENTINEL_PASSWORD", redis_sentinel_password, "", F_SECRET, NULL,
            "Password of the sentinels (requirepass of the sentinels). Empty: none."),
    OPT_STRL("name", S_REDIS, "GATE_NAME", gate_name, "default", 0, check_gate_name,
             "Name of the gate: instances with the same name share one concurrency limit and "
             "one queue. It is the Redis hash tag of every key (cg:{<GATE_NAME>}:...)."),

    /* Twilio */
    OPT_STRL("SID", S_TWILIO, "TWILIO_ACCOUNT_SID", twilio_account_sid, "", F_OPTIONAL,
             check_account_sid, "Twilio account SID (AC + 32 hex digits) for REST API calls."),
    OPT_STR(S_TWILIO, "TWILIO_AUTH_TOKEN", twilio_auth_token, "", F_SECRET, NULL,
            "Twilio auth token: validates X-Twilio-Signature on webhooks and authenticates REST "
            "API calls."),
    OPT_STRL("SID", S_TWILIO, "TWILIO_QUEUE_SID", twilio_queue_sid, "", F_OPTIONAL, check_queue_sid,
             "SID of the Twilio queue callers wait in (QU + 32 hex digits), used to reconcile "
             "with its members. Empty: reconciliation with Twilio is skipped."),
    OPT_STR(S_TWILIO, "TWILIO_QUEUE_NAME", twilio_queue_name, "customer-support", 0,
            check_queue_name,
            "Name of the Twilio queue in <Enqueue> (at most 64 characters); Twilio creates it on "
            "first use."),
    OPT_URL(S_TWILIO, "TWILIO_API_BASE_URL", twilio_api_base_url, "https://api.twilio.com", 0,
            "Base URL of Twilio's REST API; point it at callgate-sim for tests."),
    OPT_STRL("SID", S_TWILIO, "TWILIO_WORKSPACE_SID", twilio_workspace_sid, "", F_OPTIONAL,
             check_workspace_sid,
             "TaskRouter workspace SID (WS + 32 hex digits) whose TaskQueue statistics feed the "
             "wait-time service. Empty: the wait-time poller is off."),
    OPT_URL(S_TWILIO, "TASKROUTER_BASE_URL", taskrouter_base_url, "https://taskrouter.twilio.com",
            0, "Base URL of Twilio's TaskRouter API; point it at callgate-sim for tests."),

    /* Vapi */
    OPT_STR(S_VAPI, "VAPI_API_KEY", vapi_api_key, "", F_SECRET, NULL,
            "Vapi private API key, sent as a bearer token to create and look up calls."),
    OPT_STRL("ID", S_VAPI, "VAPI_PHONE_NUMBER_ID", vapi_phone_number_id, "", F_OPTIONAL,
             check_plain_id,
             "ID of the Vapi phone number (imported from Twilio) that admitted callers are "
             "connected through."),
    OPT_STRL("ID", S_VAPI, "VAPI_ASSISTANT_ID", vapi_assistant_id, "", F_OPTIONAL, check_plain_id,
             "ID of the Vapi assistant that answers admitted callers."),
    OPT_URL(S_VAPI, "VAPI_BASE_URL", vapi_base_url, "https://api.vapi.ai", 0,
            "Base URL of Vapi's API; point it at callgate-sim for tests."),
    OPT_STR(S_VAPI, "VAPI_WEBHOOK_SECRET", vapi_webhook_secret, "", F_SECRET, NULL,
            "Shared secret Vapi sends in the X-Vapi-Secret header of server messages (the "
            "assistant's server secret). The gate needs it or the HMAC secret below."),
    OPT_STR(S_VAPI, "VAPI_HMAC_SECRET", vapi_webhook_hmac_secret, "", F_SECRET, NULL,
            "Secret of a Vapi HMAC authentication plan (server.credentialId); when set, server "
            "messages must carry a valid HMAC signature (the static secret alone is refused "
            "unless VAPI_ACCEPT_STATIC_SECRET=1)."),
    OPT_INT(S_VAPI, "VAPI_ACCEPT_STATIC_SECRET", vapi_accept_static_secret, "0", 0, 1,
            "1 while switching an assistant from the static secret to the HMAC plan: with "
            "both secrets set, a message with either is accepted. Turn it off once every "
            "assistant signs."),
    OPT_STR(S_VAPI, "VAPI_HMAC_ALGORITHM", vapi_webhook_hmac_algorithm, "sha256", 0,
            check_hmac_algorithm, "HMAC plan algorithm: sha256, sha512 or sha1."),
    OPT_STR(S_VAPI, "VAPI_HMAC_SIGNATURE_HEADER", vapi_webhook_hmac_signature_header, "x-signature",
            0, check_header_name, "HMAC plan signature header."),
    OPT_STR(S_VAPI, "VAPI_HMAC_TIMESTAMP_HEADER", vapi_webhook_hmac_timestamp_header, "x-timestamp",
            0, check_header_name,
            "HMAC plan timestamp header; the signed payload is {timestamp}.{body}."),
    OPT_STR(S_VAPI, "VAPI_HMAC_PREFIX", vapi_webhook_hmac_prefix, "", F_OPTIONAL, NULL,
            "HMAC plan signature prefix, e.g. sha256= (empty: none)."),
    OPT_STR(S_VAPI, "VAPI_HMAC_ENCODING", vapi_webhook_hmac_encoding, "hex", 0, check_hmac_encoding,
            "HMAC plan signature encoding: hex or base64."),
    OPT_INT(S_VAPI, "VAPI_MAX_DURATION_SECONDS", vapi_max_duration_seconds, "600", 10, 43200,
            "Longest a Vapi call may last (maxDurationSeconds); bounds how long a leaked slot "
            "stays held."),
    OPT_STRL("URL", S_VAPI, "VAPI_FORWARD_URL", vapi_forward_url, "", F_OPTIONAL, check_forward_url,
             "Your own server for the assistant's other server messages (tool-calls, "
             "function-call, transfer-destination-request, assistant-request, "
             "conversation-update, ...): callgate forwards each one there, signed again with "
             "VAPI_WEBHOOK_SECRET and VAPI_HMAC_SECRET, and relays the answer to Vapi. https://, "
             "or http:// to this machine only. Empty: they are acknowledged and counted."),
    OPT_INT(S_VAPI, "VAPI_FORWARD_TIMEOUT_MS", vapi_forward_timeout_ms, "15000", 100, 290000,
            "Milliseconds VAPI_FORWARD_URL has to answer before Vapi is given an error the "
            "assistant can go on from. Keep it below the assistant's server timeoutSeconds "
            "(20 s by default)."),

    /* Admission gate */
    OPT_INT(S_GATE, "MAX_CONCURRENCY", max_concurrency, "5", 1, 100000,
            "Concurrent Vapi calls allowed; the starting limit, which the admin API can change "
            "at run time. Instances of one gate that differ obey the lowest among those "
            "running."),
    OPT_INT(S_GATE, "MAX_QUEUE_SIZE", max_queue_size, "1000", 1, 5000,
            "Callers allowed to wait at once (Twilio's queue maximum is 5000); callers beyond it "
            "get the overflow action."),
    OPT_INT(S_GATE, "MAX_WAIT_SECONDS", max_wait_seconds, "1800", 0, 86400,
            "Longest a caller waits before the overflow action; 0 means no limit."),
    OPT_STRL("path", S_GATE, "ROUTES_FILE", routes_file, "", F_OPTIONAL, check_readable_file,
             "JSON file of routes sharing MAX_CONCURRENCY (one Vapi organization): "
             "{\"routes\": [{\"name\", \"numbers\" (dialled, E.164), \"assistantId\", "
             "\"phoneNumberId\", \"queue\", \"max\", \"min\", \"priority\", \"vip\"}]}. "
             "Each freed slot goes to a route under its min with callers waiting, then the "
             "highest priority, then the longest wait; no route above its max. A number no route "
             "lists goes to the first route. Empty: one route from VAPI_ASSISTANT_ID, "
             "VAPI_PHONE_NUMBER_ID and TWILIO_QUEUE_NAME."),
    OPT_STR(S_GATE, "OUTBOUND_ORDER", outbound_order, "after-inbound", 0, check_outbound_order,
            "Where an outbound call (POST /calls/outbound) waits in its route's line: "
            "after-inbound (behind every inbound caller of the route, and behind routes of the "
            "same priority whose next caller is inbound) or arrival (in order of arrival with "
            "the callers)."),
    {.section = S_GATE,
     .name = "OVERFLOW_ACTION",
     .type = T_OVERFLOW,
     .offset = FIELD(overflow_action, enum cg_overflow_action),
     .def = "message",
     .choices = overflow_choices,
     .doc = "What happens to a caller who cannot wait: message (say OVERFLOW_MESSAGE and hang "
            "up), dial (connect to OVERFLOW_DIAL_NUMBER) or voicemail (say OVERFLOW_MESSAGE, then "
            "record)."},
    OPT_STR(S_GATE, "OVERFLOW_MESSAGE", overflow_message,
            "All of our agents are busy. Please call again later.", 0, check_overflow_message,
            "Text spoken to overflowed callers by the message and voicemail actions."),
    OPT_STRL("phone number", S_GATE, "OVERFLOW_DIAL_NUMBER", overflow_dial_number, "", F_OPTIONAL,
             check_dial_number,
             "Number dialled by the dial action, in E.164 form (+ and 6 to 15 digits); required "
             "when OVERFLOW_ACTION=dial."),
    OPT_STRL("URL", S_GATE, "HOLD_MUSIC_URL", hold_music_url, CG_DEFAULT_HOLD_MUSIC_URL, F_OPTIONAL,
             check_hold_music_url,
             "http(s) URL of the audio played to waiting callers between announcements (a "
             "track plays to its end before the next announcement). Default: a piece from "
             "Twilio's own classical hold-music collection. Set it empty for silence between "
             "announcements."),
    OPT_INT(S_GATE, "ANNOUNCE_INTERVAL_SECONDS", announce_interval_seconds, "30", 5, 600,
            "Seconds between announcements of a waiting caller's position and estimated wait."),
    OPT_INT(S_GATE, "FAST_PATH_DEADLINE_MS", fast_path_deadline_ms, "3000", 0, 10000,
            "When a slot is free and nobody waits, milliseconds allowed to connect the caller "
            "straight to Vapi before falling back to the queue; 0 disables the fast path."),
    OPT_INT(S_GATE, "LEASE_SECONDS", lease_seconds, "120", 10, 86400,
            "Seconds after which a slot with no end-of-call signal is checked with Vapi and "
            "released if the call has ended."),
    OPT_INT(S_GATE, "RECONCILE_INTERVAL_SECONDS", reconcile_interval_seconds, "15", 1, 3600,
            "Seconds between reconciliations of the waiting callers with Twilio's queue "
            "members."),
    OPT_INT(S_GATE, "SWEEP_INTERVAL_MS", sweep_interval_ms, "1000", 50, 60000,
            "Milliseconds between checks for expired leases and a safety run of admission."),
    OPT_INT(S_GATE, "END_GRACE_MS", end_grace_ms, "5000", 100, 600000,
            "After Twilio reports a connected caller gone, milliseconds the slot stays held for "
            "Vapi's own end of the call (Vapi counts the call until it ends); Vapi is asked "
            "250-500 ms after Twilio's end and again with backoff within it, and once more when "
            "it runs out."),
    OPT_INT(S_GATE, "ADMISSION_LEASE_SECONDS", admission_lease_seconds, "30", 5, 3600,
            "Seconds an admission in flight may hold a slot before another instance assumes "
            "its owner died."),
    OPT_INT(S_GATE, "ORPHAN_HOLD_SECONDS", orphan_hold_seconds, "60", 1, 86400,
            "Seconds a slot stays held for a Vapi call that will never carry a caller, until "
            "Vapi ends it or is asked."),
    OPT_INT(S_GATE, "OVERLIMIT_HOLD_SECONDS", overlimit_hold_seconds, "30", 1, 3600,
            "After Vapi answers over its limit, seconds the lowered admission cap lasts unless "
            "releases raise it back."),
    OPT_INT(S_GATE, "ADMISSION_BACKOFF_MIN_MS", admission_backoff_min_ms, "200", 10, 60000,
            "First pause of admission after a failed Vapi or Twilio request (doubles, jittered)."),
    OPT_INT(S_GATE, "ADMISSION_BACKOFF_MAX_MS", admission_backoff_max_ms, "10000", 10, 600000,
            "Longest pause of admission after repeated failures."),
    OPT_INT(S_GATE, "MAX_ADMISSION_ATTEMPTS", max_admission_attempts, "5", 1, 100,
            "Attempts for a caller whom Vapi refuses outright before the overflow treatment."),
    OPT_INT(S_GATE, "EXPECTED_CALL_SECONDS", expected_call_seconds, "180", 1, 43200,
            "Assumed mean call length for wait estimates until calls have been observed."),
    OPT_INT(S_GATE, "SERVICE_LEVEL_SECONDS", service_level_seconds, "20", 1, 3600,
            "Service-level threshold: the share of callers connected within this many seconds "
            "is the service level of /queue, /metrics and the wallboard."),
    OPT_INT(S_GATE, "SHORT_ABANDON_SECONDS", short_abandon_seconds, "5", 0, 600,
            "Callers who hang up within this many seconds of waiting are short abandons: "
            "counted apart and left out of the service level (0: none are)."),
    OPT_INT(S_GATE, "QUEUE_LOG_RETENTION_HOURS", queue_log_retention_hours, "48", 1, 8760,
            "Hours of queue log kept in Redis (the event export and the interval report read "
            "it); trimmed once a minute."),
    OPT_INT(S_GATE, "QUEUE_LOG_MAX_ENTRIES", queue_log_max_entries, "1000000", 10000, 5000000,
            "Most queue log entries kept in Redis, whatever their age (a call writes about 7, "
            "of about 150 bytes each)."),
    OPT_INT(S_GATE, "EVENTS_STREAM_MAX_SECONDS", events_stream_max_seconds, "600", 2, 86400,
            "Longest one GET /events stream lasts; the wallboard reconnects at once, so load "
            "balancers can rebalance and a changed ADMIN_TOKEN takes effect within this time."),
    OPT_INT(S_GATE, "VAPI_TIMEOUT_MS", vapi_timeout_ms, "10000", 100, 120000,
            "Timeout of one request to the Vapi API."),
    OPT_INT(S_GATE, "TWILIO_TIMEOUT_MS", twilio_timeout_ms, "10000", 100, 120000,
            "Timeout of one request to the Twilio API."),

    /* Wait-time service */
    /* Call control and hand-offs (gate/control.c) */
    OPT_STR(S_GATE, "VAPI_SERVER_MESSAGES", vapi_server_messages, "auto", 0,
            cg_config_check_server_messages,
            "The server messages each Vapi call asks for (assistantOverrides.serverMessages, "
            "comma separated). It replaces the assistant's own list; auto is Vapi's default "
            "list plus phone-call-control (Vapi then leaves forwards and hang-ups to "
            "callgate). A list must include phone-call-control, status-update and "
            "end-of-call-report."),
    OPT_STRL("SID", S_GATE, "HANDOFF_WORKFLOW_SID", handoff_workflow_sid, "", F_OPTIONAL,
             check_workflow_sid,
             "TaskRouter workflow (WW + 32 hex digits) that takes callers the assistant forwards "
             "to one of HANDOFF_NUMBERS: they are enqueued into it with a task carrying the Vapi "
             "call id, the summary and their wait. Empty: no hand-off; every forward dials."),
    OPT_STRL("SID", S_GATE, "HANDOFF_TASK_QUEUE_SID", handoff_task_queue_sid, "", F_OPTIONAL,
             check_task_queue_sid,
             "TaskQueue (WQ + 32 hex digits) the workflow places hand-offs in: their hold "
             "answer (/queue-wait?taskQueueSid=...) announces its wait from the wait-time "
             "service. Required with HANDOFF_WORKFLOW_SID."),
    OPT_STRL("list", S_GATE, "HANDOFF_NUMBERS", handoff_numbers, "", F_OPTIONAL,
             cg_config_check_handoff_numbers,
             "Destinations (phone numbers or sip: URIs, comma separated, as the assistant's "
             "transfer tool names them) that mean the human queue of HANDOFF_WORKFLOW_SID "
             "rather than a call. Required with HANDOFF_WORKFLOW_SID."),
    OPT_STR(S_GATE, "TRANSFER_FAILED_MESSAGE", transfer_failed_message,
            "Sorry, we could not connect your call. Please call again later.", 0,
            check_transfer_message,
            "Said to a caller whose transfer failed (Twilio refused the forward, or the "
            "number did not answer) before the call ends; at most 1000 bytes."),

    /* Queued callbacks (gate/callback*.c; docs/ARCHITECTURE.md, "Callbacks") */
    OPT_INT(S_GATE, "CALLBACK_OFFER_SECONDS", callback_offer_seconds, "0", 0, 86400,
            "Offer a callback (press 1 to keep your place and be called back) to a waiting "
            "caller whose estimated wait is above this many seconds and whose number can be "
            "called. 0: callbacks off."),
    OPT_INT(S_GATE, "CALLBACK_RETRY_SECONDS", callback_retry_seconds, "300", 5, 86400,
            "Seconds before a callback that was not answered (busy, no answer, a machine) is "
            "dialled again, in its place in line."),
    OPT_INT(S_GATE, "CALLBACK_ATTEMPTS", callback_attempts, "3", 1, 10,
            "Dials of one callback before it is given up (CALLBACK_FAILED in the queue log)."),
    OPT_STRL("window", S_GATE, "CALLBACK_HOURS", callback_hours, "", F_OPTIONAL,
             check_callback_hours,
             "When callbacks are dialled and offered: days, a time range and an IANA time zone, "
             "e.g. Mon-Fri 09:00-18:00 Europe/Paris (days: a range, a list like Mon,Wed,Fri, or "
             "daily). A callback due outside it waits for the next window. Empty: any time."),
    OPT_INT(S_GATE, "CALLBACK_RING_SECONDS", callback_ring_seconds, "25", 5, 120,
            "Seconds a callback rings before it counts as not answered (Twilio's Timeout)."),
    OPT_STR(S_GATE, "CALLBACK_OFFER_MESSAGE", callback_offer_message,
            "Press 1 to keep your place and get a call back at this number.", 0,
            check_callback_message,
            "The callback offer, said after the position and wait; at most 500 bytes."),
    OPT_STR(S_GATE, "CALLBACK_CONFIRM_MESSAGE", callback_confirm_message,
            "Thank you. You keep your place in line, and we will call you back.", 0,
            check_callback_message,
            "Said when a caller accepts the callback, before the expected time of the call and "
            "the hang-up; at most 500 bytes."),
    OPT_STR(S_GATE, "CALLBACK_MACHINE_MESSAGE", callback_machine_message, "", F_OPTIONAL,
            check_callback_message,
            "Left on an answering machine reached by a callback before hanging up (the "
            "callback is then retried or given up). Empty: hang up without a message."),
    OPT_STR(S_GATE, "CALLBACK_PENDING_MESSAGE", callback_pending_message,
            "A callback keeps your place: hang up to keep it, or press 2 to hold.", 0,
            check_callback_message,
            "Said to a caller who calls again while their callback is pending; at most 500 "
            "bytes."),
    OPT_STR(S_GATE, "CALLBACK_NUMBER_MESSAGE", callback_number_message,
            "Or press 2 to be called back at another number.", F_OPTIONAL, check_callback_message,
            "Said after the callback offer: pressing 2 lets the caller key another number to be "
            "called back at. Empty: no other number (2 does nothing); at most 500 bytes."),
    OPT_STR(S_GATE, "CALLBACK_NUMBER_PROMPT", callback_number_prompt,
            "Enter the number to call back, then press pound.", 0, check_callback_message,
            "Asks for the other number; the keys end with #. At most 500 bytes."),
    OPT_STR(S_GATE, "CALLBACK_NUMBER_INVALID_MESSAGE", callback_number_invalid_message,
            "Sorry, that number cannot be called back.", 0, check_callback_message,
            "Said when the number keyed cannot be called, before the prompt again; at most 500 "
            "bytes."),
    OPT_STR(S_GATE, "CALLBACK_NUMBER_CONFIRM_MESSAGE", callback_number_confirm_message,
            "Press 1 to confirm, or 2 to enter it again.", 0, check_callback_message,
            "Said after the other number is read back (\"We will call plus 4 4 ...\"); at most "
            "500 bytes."),

    OPT_INT(S_WAIT, "WAIT_TIME_POLL_SECONDS", wait_time_poll_seconds, "30", 1, 3600,
            "Seconds between reads of TaskRouter queue statistics (one leader polls for every "
            "instance). Values below 5 are meant for tests."),
    OPT_STR(S_WAIT, "WAIT_TIME_READ_TOKEN", wait_time_read_token, "", F_SECRET, NULL,
            "Bearer token required to read wait times (Authorization: Bearer, or ?token= for "
            "Studio's HTTP widget). Empty: wait times are public."),
    OPT_INT(S_WAIT, "WAIT_TIME_PAGE_SIZE", wait_time_page_size, "1000", 1, 1000,
            "TaskQueues per page of the statistics and TaskQueue list requests (Twilio allows "
            "up to 1000); a refresh makes ceil(queues / page size) statistics requests."),
    OPT_INT(S_WAIT, "WAIT_TIME_LOCK_SECONDS", wait_time_lock_seconds, "0", 0, 86400,
            "Expiry of the poller's leader lock in Redis: how long a dead leader keeps the "
            "others from taking over. 0: three poll intervals, at least 10 s; other values "
            "below 2 read as 2."),
};

#define NOPTS (sizeof options / sizeof options[0])

_Static_assert(NOPTS <= sizeof((struct cg_config *)0)->source_,
               "struct cg_config.source_ is too small for the option table");

/* ---- helpers ---- */

static void *field_of(struct cg_config *cfg, const struct option *o)
{
    return (char *)cfg + o->offset;
}

static const void *cfield_of(const struct cg_config *cfg, const struct option *o)
{
    return (const char *)cfg + o->offset;
}

static int is_string_type(enum opt_type t)
{
    return t == T_STR || t == T_BASE_URL || t == T_REDIS_URL;
}

static int find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

#define add_error cg_config_add_error

/* Decimal integer in [min, max], nothing else: no spaces, no trailing
 * garbage, no overflow. */
static int parse_long(const char *s, long min, long max, long *out)
{
    if (!is_digit((unsigned char)s[0]) && s[0] != '-' && s[0] != '+')
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static const struct choice *find_choice(const struct choice *c, const char *name)
{
    for (; c->name; c++)
        if (strcasecmp(c->name, name) == 0)
            return c;
    return NULL;
}

static const char *choice_name(const struct choice *c, int value)
{
    for (; c->name; c++)
        if (c->value == value)
            return c->name;
    return "?";
}

/* "a, b or c" into buf, for error messages. */
static void choice_list(const struct choice *c, const char *sep, const char *last, char *buf,
                        size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; c[i].name; i++) {
        const char *s = i == 0 ? "" : c[i + 1].name ? sep : last;
        int n = snprintf(buf + used, len - used, "%s%s", s, c[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

/* Locates the raw (still percent-encoded) password of a redis URL the same
 * way url.c splits it: userinfo ends at the last '@' before the path, the
 * password follows its first ':'. Returns 0 and the span, or -1. */
static int redis_password_span(const char *url, size_t *start, size_t *len)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return -1;
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/");
    const char *at = NULL;
    for (size_t i = auth_len; i > 0; i--) {
        if (auth[i - 1] == '@') {
            at = auth + i - 1;
            break;
        }
    }
    if (at == NULL)
        return -1;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL || colon + 1 == at)
        return -1;
    *start = (size_t)(colon + 1 - url);
    *len = (size_t)(at - colon - 1);
    return 0;
}

/* ---- loading ---- */

/* Validates raw and stores it in cfg. Returns 0, or -1 after recording the
 * problem; the field then holds the default (numbers, enums) or the raw
 * text (strings), so later checks and cg_config_free() still work. */
static int set_option(struct cg_config *cfg, const struct option *o, const char *raw,
                      struct cg_config_errors *errs)
{
    void *field = field_of(cfg, o);
    int rc = 0;
    switch (o->type) {
    case T_STR: {
        const char *why = NULL;
        if (*raw == '\0' && (o->flags & F_OPTIONAL))
            why = NULL;
        else if (!(o->flags & F_SECRET) && !cg_utf8_valid(raw, strlen(raw)))
            why = "must be valid UTF-8";
        else if (o->check)
            why = o->check(raw);
        if (why) {
            add_error(errs, "%s: %s", o->name, why);
            rc = -1;
        }
        *(char **)field = cg_strdup(raw);
        break;
    }
    case T_INT:
    case T_LONG: {
        long v;
        if (parse_long(raw, o->min, o->max, &v) != 0) {
            add_error(errs, "%s: must be an integer between %ld and %ld", o->name, o->min, o->max);
            rc = -1;
            if (parse_long(o->def, o->min, o->max, &v) != 0)
                v = o->min;
        }
        if (o->type == T_INT)
            *(int *)field = (int)v;
        else
            *(long *)field = v;
        break;
    }
    case T_LOG_LEVEL:
    case T_OVERFLOW: {
        const struct choice *c = find_choice(o->choices, raw);
        if (c == NULL) {
            char list[128];
            choice_list(o->choices, ", ", " or ", list, sizeof list);
            add_error(errs, "%s: must be one of %s", o->name, list);
            rc = -1;
            c = find_choice(o->choices, o->def);
        }
        if (o->type == T_LOG_LEVEL)
            *(enum cg_log_level *)field = (enum cg_log_level)c->value;
        else
            *(enum cg_overflow_action *)field = (enum cg_overflow_action)c->value;
        break;
    }
    case T_BASE_URL: {
        if (*raw == '\0') {
            if (!(o->flags & F_OPTIONAL)) {
                add_error(errs, "%s: must not be empty", o->name);
                rc = -1;
            }
            *(char **)field = cg_strdup(raw);
            break;
        }
        struct cg_base_url u;
        char err[128];
        if (cg_base_url_parse(raw, &u, err, sizeof err) != 0) {
            add_error(errs, "%s: %s", o->name, err);
            *(char **)field = cg_strdup(raw);
            rc = -1;
            break;
        }
        *(char **)field = cg_strdup(u.normalized);
        cg_base_url_free(&u);
        break;
    }
    case T_REDIS_URL: {
        struct cg_redis_url u;
        char err[128];
        if (*raw == '\0') {
            add_error(errs, "%s: must not be empty", o->name);
            rc = -1;
        } else if (cg_redis_url_parse(raw, &u, err, sizeof err) != 0) {
            add_error(errs, "%s: %s", o->name, err);
            rc = -1;
        } else {
            cg_redis_url_free(&u);
        }
        *(char **)field = cg_strdup(raw);
        break;
    }
    }
    return rc;
}

static void derive_defaults(struct cg_config *cfg)
{
    char buf[320];
    if (cfg->public_url[0] == '\0') {
        snprintf(buf, sizeof buf, "http://127.0.0.1:%d", cfg->port);
        free(cfg->public_url);
        cfg->public_url = cg_strdup(buf);
    }
    struct cg_base_url pu;
    char perr[64];
    cfg->public_url_loopback = 0;
    if (cg_base_url_parse(cfg->public_url, &pu, perr, sizeof perr) == 0) {
        cfg->public_url_loopback = cg_host_is_loopback(pu.host);
        cg_base_url_free(&pu);
    }
    if (cfg->instance_id[0] == '\0') {
        char host[256];
        if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
        snprintf(buf, sizeof buf, "%s:%ld", host, (long)getpid());
        free(cfg->instance_id);
        cfg->instance_id = cg_strdup(buf);
    }
}

int cg_config_known(const char *name, size_t len)
{
    return find_option(name, len) >= 0;
}

const char *cg_config_value_if_set(const struct cg_config *cfg, const char *name)
{
    int i = find_option(name, strlen(name));
    if (i < 0 || cfg->source_[i] == SRC_DEFAULT)
        return NULL;
    const struct option *o = &options[i];
    return is_string_type(o->type) ? *(char *const *)cfield_of(cfg, o) : "set";
}

/* Options that only make sense together. */
static void check_redis_combinations(const struct cg_config *cfg, struct cg_config_errors *errs)
{
    int have_cert = cfg->redis_tls_cert_file && cfg->redis_tls_cert_file[0];
    int have_key = cfg->redis_tls_key_file && cfg->redis_tls_key_file[0];
    if (have_cert && !have_key)
        add_error(errs, "REDIS_TLS_CERT_FILE: needs REDIS_TLS_KEY_FILE");
    if (have_key && !have_cert)
        add_error(errs, "REDIS_TLS_KEY_FILE: needs REDIS_TLS_CERT_FILE");
    struct cg_redis_url u;
    if (cfg->redis_url && cg_redis_url_parse(cfg->redis_url, &u, NULL, 0) == 0) {
        int tls = u.tls;
        cg_redis_url_free(&u);
        static const char *const tls_only[] = {"REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE",
                                               "REDIS_TLS_KEY_FILE", "REDIS_TLS_SERVER_NAME"};
        const char *vals[] = {cfg->redis_tls_ca_file, cfg->redis_tls_cert_file,
                              cfg->redis_tls_key_file, cfg->redis_tls_server_name};
        for (size_t i = 0; !tls && i < sizeof vals / sizeof vals[0]; i++)
            if (vals[i] && vals[i][0])
                add_error(errs, "%s: only used with TLS; REDIS_URL must start with rediss://",
                          tls_only[i]);
        if (!tls && cfg->redis_tls_insecure)
            add_error(
                errs,
                "REDIS_TLS_INSECURE: only used with TLS; REDIS_URL must start with rediss://");
    }
    int have_sentinels = cfg->redis_sentinels && cfg->redis_sentinels[0];
    int have_master = cfg->redis_sentinel_master && cfg->redis_sentinel_master[0];
    if (have_sentinels && !have_master)
        add_error(errs, "REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS");
    if (have_master && !have_sentinels)
        add_error(errs, "REDIS_SENTINELS: required with REDIS_SENTINEL_MASTER");
    if (!have_sentinels && !have_master && cfg->redis_sentinel_password &&
        cfg->redis_sentinel_password[0])
        add_error(errs, "REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS");
}

/* VAPI_FORWARD_URL pointing back at callgate's own /call-ended would send
 * every message round in a loop until the timeout; a timeout past Vapi's
 * own default means Vapi may stop waiting first. */
static void check_forward_loop(const struct cg_config *cfg, struct cg_config_errors *errs)
{
    const char *fw = cfg->vapi_forward_url;
    if (fw != NULL && fw[0] != '\0' && cfg->vapi_forward_timeout_ms >= 20000)
        cg_config_add_warning(errs,
                              "VAPI_FORWARD_TIMEOUT_MS=%d is not below Vapi's default server "
                              "timeout (20 s): Vapi may give up before callgate answers; lower "
                              "it, or raise the assistant's server timeoutSeconds above it",
                              cfg->vapi_forward_timeout_ms);
    size_t n = strlen(cfg->public_url);
    if (fw == NULL || fw[0] == '\0' || strncasecmp(fw, cfg->public_url, n) != 0)
        return;
    const char *path = fw + n;
    size_t plen = strcspn(path, "?");
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    if (plen == strlen("/call-ended") && strncmp(path, "/call-ended", plen) == 0)
        add_error(errs, "VAPI_FORWARD_URL: points at callgate's own /call-ended (PUBLIC_URL); "
                        "set it to your own server, the one the assistant's server URL named "
                        "before");
}

/* A hand-off needs the workflow, the TaskQueue it holds callers in, and
 * the destinations that mean it; one without the others is a mistake. */
static void check_handoff_combinations(const struct cg_config *cfg, struct cg_config_errors *errs)
{
    int wf = cfg->handoff_workflow_sid && cfg->handoff_workflow_sid[0];
    int tq = cfg->handoff_task_queue_sid && cfg->handoff_task_queue_sid[0];
    int nums = cfg->handoff_numbers && cfg->handoff_numbers[0];
    if (wf && !tq)
        add_error(errs, "HANDOFF_TASK_QUEUE_SID: required with HANDOFF_WORKFLOW_SID (the "
                        "TaskQueue, WQ..., its workflow places hand-offs in)");
    if (wf && !nums)
        add_error(errs, "HANDOFF_NUMBERS: required with HANDOFF_WORKFLOW_SID (the destinations "
                        "the assistant's transfer names for the human queue)");
    if (!wf && (tq || nums))
        add_error(errs,
                  "HANDOFF_WORKFLOW_SID: required with %s (the TaskRouter workflow, "
                  "WW..., that takes hand-offs)",
                  tq ? "HANDOFF_TASK_QUEUE_SID" : "HANDOFF_NUMBERS");
}

void cg_config_load_options(struct cg_config *cfg, const char *dotenv_path,
                            struct cg_config_errors *errs, struct cg_config_unknown *unknown)
{
    memset(cfg, 0, sizeof *cfg);

    char *dotenv[NOPTS];
    memset(dotenv, 0, sizeof dotenv);
    if (dotenv_path)
        cg_config_read_dotenv(dotenv_path, find_option, dotenv, errs, unknown);

    int ok[NOPTS];
    for (size_t i = 0; i < NOPTS; i++) {
        const struct option *o = &options[i];
        const char *raw = o->def;
        cfg->source_[i] = SRC_DEFAULT;
        if (dotenv[i]) {
            raw = dotenv[i];
            cfg->source_[i] = SRC_DOTENV;
        }
        /* Set in the environment, even to "", beats .env (dotenv's rule). */
        const char *env = getenv(o->name);
        if (env) {
            raw = env;
            cfg->source_[i] = SRC_ENV;
        }
        ok[i] = set_option(cfg, o, raw, errs) == 0;
    }

    int imin = find_option("REDIS_RECONNECT_MIN_MS", strlen("REDIS_RECONNECT_MIN_MS"));
    int imax = find_option("REDIS_RECONNECT_MAX_MS", strlen("REDIS_RECONNECT_MAX_MS"));
    if (ok[imin] && ok[imax] && cfg->redis_reconnect_min_ms > cfg->redis_reconnect_max_ms)
        add_error(errs, "REDIS_RECONNECT_MIN_MS: must not be greater than REDIS_RECONNECT_MAX_MS");
    check_redis_combinations(cfg, errs);
    int idial = find_option("OVERFLOW_DIAL_NUMBER", strlen("OVERFLOW_DIAL_NUMBER"));
    if (cfg->overflow_action == CG_OVERFLOW_DIAL && ok[idial] &&
        cfg->overflow_dial_number[0] == '\0')
        add_error(errs, "OVERFLOW_DIAL_NUMBER: required when OVERFLOW_ACTION=dial");
    check_handoff_combinations(cfg, errs);

    derive_defaults(cfg);
    check_forward_loop(cfg, errs);
    if (cfg->routes_file != NULL && cfg->routes_file[0] != '\0' &&
        access(cfg->routes_file, R_OK) == 0)
        cg_routes_load(cfg->routes_file, cfg->max_concurrency, &cfg->routes, errs);

    for (size_t i = 0; i < NOPTS; i++)
        cg_config_free_wiped(dotenv[i]);
}

void cg_config_free(struct cg_config *cfg)
{
    cg_routes_free(&cfg->routes);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct option *o = &options[i];
        if (!is_string_type(o->type))
            continue;
        char **slot = field_of(cfg, o);
        if (o->flags & F_SECRET || o->type == T_REDIS_URL)
            cg_config_free_wiped(*slot);
        else
            free(*slot);
        *slot = NULL;
    }
    memset(cfg->source_, 0, sizeof cfg->source_);
}

/* ---- printing ---- */

/* Writes n bytes of s with control characters as \xNN: a value may hold a
 * newline (a "\n" escape in .env, or the environment), and printed raw it
 * would start a line of its own that reads like another option. */
static void print_escaped(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

/* Writes the printable form of an option's value: secrets masked, and the
 * password inside REDIS_URL masked too. */
static void print_value(const struct cg_config *cfg, const struct option *o, FILE *out)
{
    const void *field = cfield_of(cfg, o);
    switch (o->type) {
    case T_INT:
        fprintf(out, "%d", *(const int *)field);
        return;
    case T_LONG:
        fprintf(out, "%ld", *(const long *)field);
        return;
    case T_LOG_LEVEL:
        fputs(choice_name(o->choices, (int)*(const enum cg_log_level *)field), out);
        return;
    case T_OVERFLOW:
        fputs(choice_name(o->choices, (int)*(const enum cg_overflow_action *)field), out);
        return;
    case T_STR:
    case T_BASE_URL:
    case T_REDIS_URL:
        break;
    }
    const char *s = *(char *const *)field;
    if (s == NULL)
        s = "";
    if (o->flags & F_SECRET) {
        fputs(s[0] ? "********" : "(unset)", out);
        return;
    }
    size_t start, len;
    if (o->type == T_REDIS_URL && redis_password_span(s, &start, &len) == 0) {
        print_escaped(out, s, start);
        fputs("********", out);
        print_escaped(out, s + start + len, strlen(s + start + len));
        return;
    }
    print_escaped(out, s, strlen(s));
}

void cg_config_print(const struct cg_config *cfg, FILE *out)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const struct option *o = &options[i];
        unsigned src = cfg->source_[i];
        fprintf(out, "%s=", o->name);
        print_value(cfg, o, out);
        fprintf(out, "  (%s)\n", source_names[src < 3 ? src : 0]);
    }
}

/* Prints text word-wrapped to width columns, each line indented. */
static void print_wrapped(FILE *out, const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        int avail = width - indent;
        size_t n = strlen(p);
        size_t cut = n;
        if (n > (size_t)avail) {
            cut = (size_t)avail;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0) /* one word longer than the line */
                cut = strcspn(p, " ");
        }
        fprintf(out, "%*s%.*s\n", indent, "", (int)cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
}

void cg_config_print_help(FILE *out)
{
    fputs("Configuration: environment variables, also read from a .env file in the working\n"
          "directory (a variable set in the environment, even empty, wins over .env).\n",
          out);
    const char *section = NULL;
    for (size_t i = 0; i < NOPTS; i++) {
        const struct option *o = &options[i];
        if (section != o->section) {
            section = o->section;
            fprintf(out, "\n%s\n", section);
        }
        char type[96];
        switch (o->type) {
        case T_INT:
        case T_LONG:
            snprintf(type, sizeof type, "integer %ld-%ld", o->min, o->max);
            break;
        case T_LOG_LEVEL:
        case T_OVERFLOW:
            choice_list(o->choices, "|", "|", type, sizeof type);
            break;
        case T_BASE_URL:
            snprintf(type, sizeof type, "URL");
            break;
        case T_REDIS_URL:
            snprintf(type, sizeof type, "redis URL");
            break;
        case T_STR:
            snprintf(type, sizeof type, "%s", o->flags & F_SECRET ? "secret" : "string");
            break;
        }
        if (o->label)
            snprintf(type, sizeof type, "%s", o->label);
        /* Defaults with spaces are quoted; long ones get their own line. */
        char def[160];
        if (o->def[0] == '\0')
            snprintf(def, sizeof def, "(empty)");
        else
            snprintf(def, sizeof def, strchr(o->def, ' ') ? "\"%s\"" : "%s", o->def);
        if (2 + 27 + 1 + 22 + 10 + strlen(def) <= HELP_WIDTH)
            fprintf(out, "  %-27s %-22s default: %s\n", o->name, type, def);
        else if (6 + 9 + strlen(def) <= HELP_WIDTH)
            fprintf(out, "  %-27s %s\n      default: %s\n", o->name, type, def);
        else /* a long URL: on a line of its own */
            fprintf(out, "  %-27s %s\n      default:\n        %s\n", o->name, type, def);
        print_wrapped(out, o->doc, 6, HELP_WIDTH);
    }
}

/* A number's or a choice's value as check-config prints it, malloc'd. */
static char *value_text(const struct cg_config *cfg, const struct option *o)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return cg_strdup("");
    print_value(cfg, o, f);
    if (fclose(f) != 0 || text == NULL) {
        free(text);
        return cg_strdup("");
    }
    return text;
}

void cg_config_diff(const struct cg_config *a, const struct cg_config *b, char *out, size_t outlen)
{
    size_t used = 0;
    if (outlen > 0)
        out[0] = '\0';
    for (size_t i = 0; i < NOPTS; i++) {
        const struct option *o = &options[i];
        int differ;
        if (is_string_type(o->type)) {
            /* Secrets and REDIS_URL's password are masked when printed:
             * strings are compared in full, never copied. */
            const char *sa = *(char *const *)cfield_of(a, o);
            const char *sb = *(char *const *)cfield_of(b, o);
            differ = strcmp(sa ? sa : "", sb ? sb : "") != 0;
        } else {
            char *va = value_text(a, o), *vb = value_text(b, o);
            differ = strcmp(va, vb) != 0;
            free(va);
            free(vb);
        }
        if (!differ)
            continue;
        int w = snprintf(out + used, outlen > used ? outlen - used : 0, "%s%s", used ? "," : "",
                         o->name);
        if (w > 0 && used + (size_t)w < outlen)
            used += (size_t)w;
    }
}

void cg_config_register_secrets(const struct cg_config *cfg)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const struct option *o = &options[i];
        if (o->type == T_REDIS_URL) {
            const char *url = *(char *const *)cfield_of(cfg, o);
            if (url == NULL)
                continue;
            struct cg_redis_url u;
            if (cg_redis_url_parse(url, &u, NULL, 0) == 0) {
                if (u.password)
                    cg_log_add_secret(u.password);
                cg_redis_url_free(&u);
            }
            /* The encoded form too, in case the URL itself is ever logged. */
            size_t start, len;
            if (redis_password_span(url, &start, &len) == 0) {
                char *raw = cg_strndup(url + start, len);
                cg_log_add_secret(raw);
                cg_config_free_wiped(raw);
            }
        } else if (o->flags & F_SECRET) {
            const char *s = *(char *const *)cfield_of(cfg, o);
            if (s && s[0])
                cg_log_add_secret(s);
        }
    }
}

const char *cg_config_option_name(size_t i)
{
    return i < NOPTS ? options[i].name : NULL;
}
