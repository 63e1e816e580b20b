/*
 * test_config.c - configuration loading: defaults, .env parsing, the
 * environment's precedence, validation of every kind of option, error
 * collection and the masking of secrets.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/config.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SID_AC "AC0123456789abcdef0123456789ABCDEF"
#define SID_QU "QU0123456789abcdef0123456789abcdef"
#define SID_WS "WSffffffffffffffffffffffffffffffff"

static char tmpdir[256];
static char envpath[300];

/* Every test starts from a clean slate: no callgate variable in the
 * environment and no .env file. */
static void clear_env(void)
{
    for (size_t i = 0; cg_config_option_name(i); i++)
        unsetenv(cg_config_option_name(i));
}

/* Option checks are tested with no service on, so that an option of the
 * gate does not also bring in every other option the gate needs; the
 * services have tests of their own. */
static int setup(void **state)
{
    (void)state;
    clear_env();
    setenv("SERVICES", "none", 1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cg-test-config-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(envpath, sizeof envpath, "%s/.env", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_env();
    /* One test puts a directory where the file goes. */
    if (unlink(envpath) != 0)
        rmdir(envpath);
    rmdir(tmpdir);
    return 0;
}

static void write_dotenv_n(const char *text, size_t len)
{
    FILE *f = fopen(envpath, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_dotenv(const char *text)
{
    write_dotenv_n(text, strlen(text));
}

static void set(const char *name, const char *value)
{
    assert_int_equal(setenv(name, value, 1), 0);
}

/* Index of the error that is exactly msg, or -1. */
static int find_error(const struct cg_config_errors *errs, const char *msg)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strcmp(errs->msgs[i], msg) == 0)
            return (int)i;
    return -1;
}

/* Index of the first error starting with prefix, or -1. */
static int find_error_prefix(const struct cg_config_errors *errs, const char *prefix)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strncmp(errs->msgs[i], prefix, strlen(prefix)) == 0)
            return (int)i;
    return -1;
}

static void dump_errors(const struct cg_config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        print_message("  error: %s\n", errs->msgs[i]);
}

/* Loads and expects success. */
static void load_ok(struct cg_config *cfg, const char *dotenv)
{
    struct cg_config_errors errs;
    int rc = cg_config_load(cfg, dotenv, &errs);
    if (rc != 0)
        dump_errors(&errs);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.n, 0);
    cg_config_errors_free(&errs);
}

/* Loads and expects exactly one error, equal to msg. */
static void expect_one_error(const char *msg)
{
    struct cg_config cfg;
    struct cg_config_errors errs;
    int rc = cg_config_load(&cfg, NULL, &errs);
    if (errs.n != 1 || find_error(&errs, msg) != 0) {
        print_message("expected only: %s\n", msg);
        dump_errors(&errs);
        fail();
    }
    assert_int_equal(rc, -1);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
}

/* Loads with name=value and expects success (ok) or one error naming it. */
static void check_value(const char *name, const char *value, int ok)
{
    set(name, value);
    struct cg_config cfg;
    struct cg_config_errors errs;
    int rc = cg_config_load(&cfg, NULL, &errs);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s: ", name);
    if (ok ? rc != 0 : (rc != -1 || errs.n != 1 || find_error_prefix(&errs, prefix) != 0)) {
        print_message("%s=\"%s\" should be %s\n", name, value, ok ? "accepted" : "refused");
        dump_errors(&errs);
        fail();
    }
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
    unsetenv(name);
}

/* The print output as a malloc'd string. */
static char *print_to_string(const struct cg_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cg_config_print(cfg, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

/* 1 if text contains line as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

/* 1 if some line of text starts with prefix. */
static int has_line_prefix(const char *text, const char *prefix)
{
    for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++)
        if (p == text || p[-1] == '\n')
            return 1;
    return 0;
}

static void test_defaults(void **state)
{
    unsetenv("SERVICES");
    (void)state;
    struct cg_config cfg;
    /* A .env path that does not exist is not an error. */
    load_ok(&cfg, envpath);

    assert_int_equal(cfg.port, 3000);
    assert_string_equal(cfg.bind_address, "0.0.0.0");
    assert_string_equal(cfg.public_url, "http://127.0.0.1:3000");
    assert_int_equal(cfg.http_max_body_bytes, 65536);
    assert_int_equal(cfg.http_max_header_bytes, 8192);
    assert_int_equal(cfg.http_timeout_seconds, 30);
    assert_int_equal(cfg.shutdown_grace_ms, 5000);
    assert_int_equal(cfg.log_level, CG_LOG_INFO);
    assert_string_equal(cfg.admin_token, "");

    char suffix[32];
    snprintf(suffix, sizeof suffix, ":%ld", (long)getpid());
    size_t il = strlen(cfg.instance_id), sl = strlen(suffix);
    assert_true(il > sl);
    assert_string_equal(cfg.instance_id + il - sl, suffix);

    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379");
    assert_int_equal(cfg.redis_connect_timeout_ms, 2000);
    assert_int_equal(cfg.redis_command_timeout_ms, 2000);
    assert_int_equal(cfg.redis_reconnect_min_ms, 100);
    assert_int_equal(cfg.redis_reconnect_max_ms, 5000);
    assert_string_equal(cfg.gate_name, "default");

    assert_string_equal(cfg.twilio_account_sid, "");
    assert_string_equal(cfg.twilio_auth_token, "");
    assert_string_equal(cfg.twilio_queue_sid, "");
    assert_string_equal(cfg.twilio_queue_name, "customer-support");
    assert_string_equal(cfg.twilio_api_base_url, "https://api.twilio.com");
    assert_string_equal(cfg.twilio_workspace_sid, "");
    assert_string_equal(cfg.taskrouter_base_url, "https://taskrouter.twilio.com");

    assert_string_equal(cfg.vapi_api_key, "");
    assert_string_equal(cfg.vapi_phone_number_id, "");
    assert_string_equal(cfg.vapi_assistant_id, "");
    assert_string_equal(cfg.vapi_base_url, "https://api.vapi.ai");
    assert_string_equal(cfg.vapi_webhook_secret, "");
    assert_int_equal(cfg.vapi_max_duration_seconds, 600);

    assert_int_equal(cfg.max_concurrency, 5);
    assert_int_equal(cfg.max_queue_size, 1000);
    assert_int_equal(cfg.max_wait_seconds, 1800);
    assert_int_equal(cfg.overflow_action, CG_OVERFLOW_MESSAGE);
    assert_string_equal(cfg.overflow_message,
                        "All of our agents are busy. Please call again later.");
    assert_string_equal(cfg.overflow_dial_number, "");
    /* Never dead air: Twilio's own hold music unless the operator says. */
    assert_string_equal(cfg.hold_music_url,
                        "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3");
    assert_int_equal(cfg.announce_interval_seconds, 30);
    assert_int_equal(cfg.fast_path_deadline_ms, 3000);
    assert_int_equal(cfg.lease_seconds, 120);
    assert_int_equal(cfg.reconcile_interval_seconds, 15);

    assert_int_equal(cfg.wait_time_poll_seconds, 30);
    assert_string_equal(cfg.wait_time_read_token, "");

    /* Every option is printed, from its default. */
    char *text = print_to_string(&cfg);
    size_t lines = 0;
    for (size_t i = 0; cg_config_option_name(i); i++) {
        char want[128];
        snprintf(want, sizeof want, "%s=", cg_config_option_name(i));
        assert_true(has_line_prefix(text, want));
        lines++;
    }
    size_t nl = 0;
    for (const char *p = text; *p; p++)
        nl += *p == '\n';
    assert_int_equal(nl, lines);
    assert_null(strstr(text, "(env)"));
    assert_null(strstr(text, "(.env)"));
    assert_true(has_line(text, "PORT=3000  (default)"));
    assert_true(has_line(text, "LOG_LEVEL=info  (default)"));
    assert_true(has_line(text, "OVERFLOW_ACTION=message  (default)"));
    assert_true(has_line(text, "ADMIN_TOKEN=(unset)  (default)"));
    free(text);
    cg_config_free(&cfg);
}

static void test_env_overrides_dotenv(void **state)
{
    (void)state;
    write_dotenv("PORT=4000\nGATE_NAME=fromfile\nMAX_CONCURRENCY=7\nLOG_LEVEL=debug\n");
    set("PORT", "5000");
    set("LOG_LEVEL", "warn");
    struct cg_config cfg;
    load_ok(&cfg, envpath);
    assert_int_equal(cfg.port, 5000);
    assert_string_equal(cfg.gate_name, "fromfile");
    assert_int_equal(cfg.max_concurrency, 7);
    assert_int_equal(cfg.log_level, CG_LOG_WARN);
    assert_string_equal(cfg.public_url, "http://127.0.0.1:5000");

    char *text = print_to_string(&cfg);
    assert_true(has_line(text, "PORT=5000  (env)"));
    assert_true(has_line(text, "GATE_NAME=fromfile  (.env)"));
    assert_true(has_line(text, "MAX_CONCURRENCY=7  (.env)"));
    assert_true(has_line(text, "LOG_LEVEL=warn  (env)"));
    assert_true(has_line(text, "MAX_QUEUE_SIZE=1000  (default)"));
    free(text);
    cg_config_free(&cfg);
}

static void test_empty_env_wins(void **state)
{
    (void)state;
    write_dotenv("TWILIO_ACCOUNT_SID=" SID_AC "\n"
                 "HOLD_MUSIC_URL=https://example.com/hold.mp3\n"
                 "ADMIN_TOKEN=from-dotenv-token\n");
    set("TWILIO_ACCOUNT_SID", "");
    set("ADMIN_TOKEN", "");
    struct cg_config cfg;
    load_ok(&cfg, envpath);
    assert_string_equal(cfg.twilio_account_sid, "");
    assert_string_equal(cfg.admin_token, "");
    assert_string_equal(cfg.hold_music_url, "https://example.com/hold.mp3");
    char *text = print_to_string(&cfg);
    assert_true(has_line(text, "TWILIO_ACCOUNT_SID=  (env)"));
    assert_true(has_line(text, "ADMIN_TOKEN=(unset)  (env)"));
    free(text);
    cg_config_free(&cfg);

    /* An empty PORT in the environment is taken as given, and refused. */
    set("PORT", "");
    expect_one_error("PORT: must be an integer between 1 and 65535");
}

static void test_dotenv_syntax(void **state)
{
    (void)state;
    write_dotenv("# a comment line\n"
                 "\n"
                 "   \t  \n"
                 "   # an indented comment\n"
                 "export PORT=4001\n"
                 "  GATE_NAME   =   spaced   \n"
                 "OVERFLOW_MESSAGE=\"Line1\\nLine2\\t\\\"q\\\" \\\\ \\r# end\"   # comment\n"
                 "TWILIO_QUEUE_NAME='single $literal \\n # not a comment'\n"
                 "VAPI_ASSISTANT_ID=asst#1   # a comment\n"
                 "VAPI_PHONE_NUMBER_ID=\n"
                 "ADMIN_TOKEN=\"keep\\qunknown\"\n"
                 "VAPI_API_KEY=''\n"
                 "UNRELATED_VARIABLE=whatever at all\n"
                 "CALLGATE_TYPO_PORT=1\n"
                 "HOLD_MUSIC_URL=https://example.com/music.mp3?x=1\r\n"
                 "export\tLOG_LEVEL = error\n"
                 "TWILIO_WORKSPACE_SID=" SID_WS " #trailing\n"
                 "MAX_CONCURRENCY=1\n"
                 "MAX_CONCURRENCY=9\n"
                 "WAIT_TIME_READ_TOKEN= # only a comment\n"
                 "OVERFLOW_DIAL_NUMBER=+14155550100"); /* no final newline */
    struct cg_config cfg;
    load_ok(&cfg, envpath);
    assert_int_equal(cfg.port, 4001);
    assert_string_equal(cfg.gate_name, "spaced");
    assert_string_equal(cfg.overflow_message, "Line1\nLine2\t\"q\" \\ \r# end");
    assert_string_equal(cfg.twilio_queue_name, "single $literal \\n # not a comment");
    assert_string_equal(cfg.vapi_assistant_id, "asst#1");
    assert_string_equal(cfg.vapi_phone_number_id, "");
    assert_string_equal(cfg.admin_token, "keep\\qunknown");
    assert_string_equal(cfg.vapi_api_key, "");
    assert_string_equal(cfg.hold_music_url, "https://example.com/music.mp3?x=1");
    assert_int_equal(cfg.log_level, CG_LOG_ERROR);
    assert_string_equal(cfg.twilio_workspace_sid, SID_WS);
    assert_int_equal(cfg.max_concurrency, 9); /* the last line wins */
    assert_string_equal(cfg.wait_time_read_token, "");
    assert_string_equal(cfg.overflow_dial_number, "+14155550100");
    cg_config_free(&cfg);

    /* A byte order mark and CRLF line ends are tolerated. */
    write_dotenv("\xef\xbb\xbfPORT=4002\r\nGATE_NAME=crlf\r\n");
    load_ok(&cfg, envpath);
    assert_int_equal(cfg.port, 4002);
    assert_string_equal(cfg.gate_name, "crlf");
    cg_config_free(&cfg);
}

static void test_dotenv_broken_lines(void **state)
{
    (void)state;
    write_dotenv("PORT=4003\n"
                 "this is not an assignment\n"
                 "1BAD=x\n"
                 "ADMIN_TOKEN=\"unterminated s3cretvalue\n"
                 "VAPI_API_KEY='closed's3cretvalue\n"
                 "GATE_NAME=fine\n"
                 "NAME-WITH-DASH=1\n"
                 "KEY s3cretvalue\n"
                 "TWILIO_AUTH_TOKEN='s3cretvalue\n");
    struct cg_config cfg;
    struct cg_config_errors errs;
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    if (errs.n != 7)
        dump_errors(&errs);
    assert_int_equal(errs.n, 7);
    const int lines[] = {2, 3, 4, 5, 7, 8, 9};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, ".env line %d: ", lines[i]);
        assert_int_equal(find_error_prefix(&errs, prefix), (int)i);
        /* The reason never quotes the line, which may hold a secret. */
        assert_null(strstr(errs.msgs[i], "s3cretvalue"));
    }
    /* The good lines still apply, so the report is about the broken ones. */
    assert_int_equal(cfg.port, 4003);
    assert_string_equal(cfg.gate_name, "fine");
    assert_string_equal(cfg.admin_token, "");
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
}

static void test_dotenv_limits(void **state)
{
    (void)state;
    struct cg_config cfg;
    struct cg_config_errors errs;

    /* A line longer than the limit. */
    size_t n = 20000;
    char *big = malloc(n + 32);
    assert_non_null(big);
    memcpy(big, "OVERFLOW_MESSAGE=", 17);
    memset(big + 17, 'a', n);
    memcpy(big + 17 + n, "\nPORT=4004\n", 12);
    write_dotenv(big);
    free(big);
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_int_equal(find_error_prefix(&errs, ".env line 1: "), 0);
    assert_int_equal(cfg.port, 4004);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* A file over 1 MiB is refused as a whole. */
    n = 1024 * 1024 + 1;
    big = malloc(n);
    assert_non_null(big);
    memset(big, '#', n);
    write_dotenv_n(big, n);
    free(big);
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_int_equal(find_error_prefix(&errs, ".env: "), 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* A NUL byte inside a line. */
    write_dotenv_n("PORT=40\0005\n", 10);
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_int_equal(find_error_prefix(&errs, ".env line 1: "), 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* A directory where the file should be cannot be read. */
    unlink(envpath);
    assert_int_equal(mkdir(envpath, 0700), 0);
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_int_equal(find_error_prefix(&errs, ".env: "), 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
    assert_int_equal(rmdir(envpath), 0);
}

static void test_int_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
        int ok;
    } cases[] = {
        {"PORT", "1", 1},
        {"PORT", "65535", 1},
        {"PORT", "+8080", 1},
        {"PORT", "0", 0},
        {"PORT", "65536", 0},
        {"PORT", "-1", 0},
        {"PORT", "abc", 0},
        {"PORT", "12x", 0},
        {"PORT", " 12", 0},
        {"PORT", "12 ", 0},
        {"PORT", "0x50", 0},
        {"PORT", "", 0},
        {"PORT", "99999999999999999999999", 0},
        {"HTTP_MAX_BODY_BYTES", "16777216", 1},
        {"HTTP_MAX_BODY_BYTES", "16777217", 0},
        {"HTTP_MAX_BODY_BYTES", "1023", 0},
        {"HTTP_MAX_HEADER_BYTES", "65536", 1},
        {"HTTP_MAX_HEADER_BYTES", "65537", 0},
        {"SHUTDOWN_GRACE_MS", "0", 1},
        {"MAX_WAIT_SECONDS", "0", 1},
        {"MAX_WAIT_SECONDS", "86401", 0},
        {"FAST_PATH_DEADLINE_MS", "0", 1},
        {"FAST_PATH_DEADLINE_MS", "10001", 0},
        {"MAX_QUEUE_SIZE", "5000", 1},
        {"MAX_QUEUE_SIZE", "5001", 0},
        {"MAX_CONCURRENCY", "0", 0},
        {"MAX_CONCURRENCY", "100000", 1},
        {"VAPI_MAX_DURATION_SECONDS", "9", 0},
        {"VAPI_MAX_DURATION_SECONDS", "43200", 1},
        {"ANNOUNCE_INTERVAL_SECONDS", "4", 0},
        {"WAIT_TIME_POLL_SECONDS", "3601", 0},
        {"REDIS_CONNECT_TIMEOUT_MS", "49", 0},
        {"LEASE_SECONDS", "86400", 1},
        {"RECONCILE_INTERVAL_SECONDS", "0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_value(cases[i].name, cases[i].value, cases[i].ok);

    set("PORT", "70000");
    expect_one_error("PORT: must be an integer between 1 and 65535");
    set("PORT", "8080");
    set("HTTP_MAX_BODY_BYTES", "1000");
    expect_one_error("HTTP_MAX_BODY_BYTES: must be an integer between 1024 and 16777216");

    /* Valid values land in their fields, long ones included. */
    set("HTTP_MAX_BODY_BYTES", "16777216");
    set("SHUTDOWN_GRACE_MS", "0");
    struct cg_config cfg;
    load_ok(&cfg, NULL);
    assert_int_equal(cfg.port, 8080);
    assert_int_equal(cfg.http_max_body_bytes, 16777216L);
    assert_int_equal(cfg.shutdown_grace_ms, 0);
    cg_config_free(&cfg);
}

static void test_enums(void **state)
{
    (void)state;
    set("LOG_LEVEL", "verbose");
    expect_one_error("LOG_LEVEL: must be one of debug, info, warn or error");
    set("LOG_LEVEL", "");
    expect_one_error("LOG_LEVEL: must be one of debug, info, warn or error");
    set("LOG_LEVEL", "info");
    set("OVERFLOW_ACTION", "transfer");
    expect_one_error("OVERFLOW_ACTION: must be one of message, dial or voicemail");

    set("LOG_LEVEL", "DEBUG");
    set("OVERFLOW_ACTION", "voicemail");
    struct cg_config cfg;
    load_ok(&cfg, NULL);
    assert_int_equal(cfg.log_level, CG_LOG_DEBUG);
    assert_int_equal(cfg.overflow_action, CG_OVERFLOW_VOICEMAIL);
    char *text = print_to_string(&cfg);
    assert_true(has_line(text, "LOG_LEVEL=debug  (env)"));
    assert_true(has_line(text, "OVERFLOW_ACTION=voicemail  (env)"));
    free(text);
    cg_config_free(&cfg);
}

/* Loads with the environment as set and expects exactly the given error
 * message (whole text). */
static void expect_error(const char *msg)
{
    struct cg_config cfg;
    struct cg_config_errors errs;
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), -1);
    if (errs.n != 1 || strcmp(errs.msgs[0], msg) != 0) {
        print_message("expected only: %s\n", msg);
        dump_errors(&errs);
        fail();
    }
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
}

static void test_redis_tls_and_sentinel(void **state)
{
    (void)state;
    struct cg_config cfg;
    /* A readable file: the .env of the fixture. */
    write_dotenv("# empty\n");

    set("REDIS_URL", "rediss://:pw@cache.example.com:6380");
    check_value("REDIS_TLS_CA_FILE", envpath, 1);
    check_value("REDIS_TLS_CA_FILE", "/nonexistent/ca.pem", 0);
    check_value("REDIS_TLS_SERVER_NAME", "redis.internal", 1);
    check_value("REDIS_TLS_SERVER_NAME", "two words", 0);
    check_value("REDIS_TLS_INSECURE", "1", 1);
    check_value("REDIS_TLS_INSECURE", "2", 0);
    set("REDIS_TLS_CERT_FILE", envpath);
    expect_error("REDIS_TLS_CERT_FILE: needs REDIS_TLS_KEY_FILE");
    set("REDIS_TLS_KEY_FILE", envpath);
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.redis_tls_cert_file, envpath);
    cg_config_free(&cfg);
    unsetenv("REDIS_TLS_CERT_FILE");
    expect_error("REDIS_TLS_KEY_FILE: needs REDIS_TLS_CERT_FILE");
    unsetenv("REDIS_TLS_KEY_FILE");

    /* TLS options with a plain redis:// URL would silently do nothing. */
    set("REDIS_URL", "redis://127.0.0.1:6379");
    set("REDIS_TLS_CA_FILE", envpath);
    expect_error("REDIS_TLS_CA_FILE: only used with TLS; REDIS_URL must start with rediss://");
    unsetenv("REDIS_TLS_CA_FILE");
    set("REDIS_TLS_INSECURE", "1");
    expect_error("REDIS_TLS_INSECURE: only used with TLS; REDIS_URL must start with rediss://");
    unsetenv("REDIS_TLS_INSECURE");

    set("REDIS_SENTINELS", "10.0.0.1:26379, 10.0.0.2,[::1]:26380");
    expect_error("REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS");
    set("REDIS_SENTINEL_MASTER", "mymaster");
    set("REDIS_SENTINEL_PASSWORD", "s3ntinel-pw");
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.redis_sentinel_master, "mymaster");
    char *text = print_to_string(&cfg);
    assert_null(strstr(text, "s3ntinel-pw"));
    free(text);
    cg_config_free(&cfg);
    check_value("REDIS_SENTINELS", "10.0.0.1:0", 0);
    check_value("REDIS_SENTINELS", "a,,b", 0);
    unsetenv("REDIS_SENTINELS");
    expect_error("REDIS_SENTINELS: required with REDIS_SENTINEL_MASTER");
    unsetenv("REDIS_SENTINEL_MASTER");
    expect_error("REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS");
    unsetenv("REDIS_SENTINEL_PASSWORD");
    unsetenv("REDIS_URL");
}

static void test_urls(void **state)
{
    (void)state;
    struct cg_config cfg;
    struct cg_config_errors errs;

    /* A refused REDIS_URL never echoes it. */
    set("REDIS_URL", "rediss://:hunter2pw@cache.example.com:0");
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_int_equal(find_error_prefix(&errs, "REDIS_URL: "), 0);
    assert_null(strstr(errs.msgs[0], "hunter2pw"));
    assert_null(strstr(errs.msgs[0], "cache.example.com"));
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    check_value("REDIS_URL", "rediss://:pw@cache.example.com:6380", 1);
    check_value("REDIS_URL", "http://127.0.0.1:6379", 0);
    check_value("REDIS_URL", "redis://127.0.0.1:0", 0);
    check_value("REDIS_URL", "", 0);
    check_value("REDIS_URL", "redis://:pw@[::1]:6380/3", 1);

    check_value("PUBLIC_URL", "ftp://example.com", 0);
    check_value("PUBLIC_URL", "https://example.com/hook?x=1", 0);
    check_value("PUBLIC_URL", "example.com", 0);
    check_value("VAPI_BASE_URL", "", 0);
    check_value("TWILIO_API_BASE_URL", "http://127.0.0.1:9999/twilio", 1);
    check_value("TASKROUTER_BASE_URL", "https://", 0);
    check_value("HOLD_MUSIC_URL", "ftp://example.com/a.mp3", 0);
    check_value("HOLD_MUSIC_URL", "https://", 0);
    check_value("HOLD_MUSIC_URL", "https://example.com/a b.mp3", 0);
    check_value("HOLD_MUSIC_URL", "http://twimlets.com/holdmusic?Bucket=com.twilio.music.classical",
                1);

    /* A bad base URL is reported without the URL, which may carry
     * credentials. */
    set("PUBLIC_URL", "https://user:pa55word@example.com/hook");
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_int_equal(find_error_prefix(&errs, "PUBLIC_URL: "), 0);
    assert_null(strstr(errs.msgs[0], "pa55word"));
    assert_null(strstr(errs.msgs[0], "example.com"));
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* Base URLs are stored normalised, without the trailing slash. */
    set("PUBLIC_URL", "HTTPS://gate.example.com/base/");
    set("VAPI_BASE_URL", "http://127.0.0.1:8089/");
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.public_url, "https://gate.example.com/base");
    assert_string_equal(cfg.vapi_base_url, "http://127.0.0.1:8089");
    cg_config_free(&cfg);
}

static void test_sid_patterns(void **state)
{
    (void)state;
    check_value("TWILIO_ACCOUNT_SID", SID_AC, 1);
    check_value("TWILIO_ACCOUNT_SID", "", 1);
    check_value("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcde", 0);   /* 31 */
    check_value("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef0", 0); /* 33 */
    check_value("TWILIO_ACCOUNT_SID", "ac0123456789abcdef0123456789abcdef", 0);
    check_value("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdeg", 0);
    check_value("TWILIO_ACCOUNT_SID", SID_QU, 0);
    check_value("TWILIO_QUEUE_SID", SID_QU, 1);
    check_value("TWILIO_QUEUE_SID", SID_AC, 0);
    check_value("TWILIO_QUEUE_SID", "QU123", 0);
    check_value("TWILIO_WORKSPACE_SID", SID_WS, 1);
    check_value("TWILIO_WORKSPACE_SID", "WS 123456789abcdef0123456789abcdef", 0);

    set("TWILIO_QUEUE_SID", "QU123");
    expect_one_error("TWILIO_QUEUE_SID: must be QU followed by 32 hex digits");
}

static void test_strings(void **state)
{
    (void)state;
    char name[80];
    memset(name, 'g', 64);
    name[64] = '\0';
    check_value("GATE_NAME", name, 1);
    name[64] = 'g';
    name[65] = '\0';
    check_value("GATE_NAME", name, 0);
    check_value("GATE_NAME", "", 0);
    check_value("GATE_NAME", "tag{x}", 0);
    check_value("GATE_NAME", "has space", 0);
    check_value("GATE_NAME", "prod-eu_1.a", 1);

    /* 64 characters of two bytes each is within the queue name's limit. */
    char qn[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(qn, "\xc3\xa9");
    check_value("TWILIO_QUEUE_NAME", qn, 1);
    strcat(qn, "x");
    check_value("TWILIO_QUEUE_NAME", qn, 0);
    check_value("TWILIO_QUEUE_NAME", "", 0);
    check_value("TWILIO_QUEUE_NAME", "tab\there", 0);
    check_value("TWILIO_QUEUE_NAME", "c1\xc2\x85", 0);
    check_value("TWILIO_QUEUE_NAME", "bad\xff utf8", 0);

    check_value("OVERFLOW_MESSAGE", "\xed\xa0\x80", 0);
    check_value("BIND_ADDRESS", "", 0);
    check_value("BIND_ADDRESS", "::", 1);
    check_value("INSTANCE_ID", "has space", 0);
    check_value("VAPI_ASSISTANT_ID", "6f1c2d9e-0000-4000-8000-0123456789ab", 1);
    check_value("VAPI_ASSISTANT_ID", "two words", 0);

    set("GATE_NAME", "a b");
    expect_one_error("GATE_NAME: must be 1 to 64 characters from A-Z a-z 0-9 _ . -");

    /* An explicit INSTANCE_ID is kept as written. */
    set("GATE_NAME", "g");
    set("INSTANCE_ID", "worker-7");
    struct cg_config cfg;
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.instance_id, "worker-7");
    cg_config_free(&cfg);
}

static void test_dial_required(void **state)
{
    (void)state;
    set("OVERFLOW_ACTION", "dial");
    expect_one_error("OVERFLOW_DIAL_NUMBER: required when OVERFLOW_ACTION=dial");

    check_value("OVERFLOW_DIAL_NUMBER", "+14155550100", 1);
    check_value("OVERFLOW_DIAL_NUMBER", "+123456", 1);
    check_value("OVERFLOW_DIAL_NUMBER", "+123456789012345", 1);
    check_value("OVERFLOW_DIAL_NUMBER", "+12345", 0);
    check_value("OVERFLOW_DIAL_NUMBER", "+1234567890123456", 0);
    check_value("OVERFLOW_DIAL_NUMBER", "14155550100", 0);
    check_value("OVERFLOW_DIAL_NUMBER", "+1 415 555 0100", 0);

    /* A bad number is reported once, not also as missing. */
    set("OVERFLOW_DIAL_NUMBER", "555-0100");
    expect_one_error("OVERFLOW_DIAL_NUMBER: must be a phone number in E.164 form: + and 6 to 15 "
                     "digits");

    set("OVERFLOW_DIAL_NUMBER", "+442071838750");
    struct cg_config cfg;
    load_ok(&cfg, NULL);
    assert_int_equal(cfg.overflow_action, CG_OVERFLOW_DIAL);
    assert_string_equal(cfg.overflow_dial_number, "+442071838750");
    cg_config_free(&cfg);

    /* Without the dial action the number is optional. */
    unsetenv("OVERFLOW_DIAL_NUMBER");
    set("OVERFLOW_ACTION", "message");
    load_ok(&cfg, NULL);
    cg_config_free(&cfg);
}

static void test_reconnect_cross_check(void **state)
{
    (void)state;
    set("REDIS_RECONNECT_MIN_MS", "6000");
    expect_one_error("REDIS_RECONNECT_MIN_MS: must not be greater than REDIS_RECONNECT_MAX_MS");
    set("REDIS_RECONNECT_MAX_MS", "6000");
    struct cg_config cfg;
    load_ok(&cfg, NULL);
    assert_int_equal(cfg.redis_reconnect_min_ms, 6000);
    assert_int_equal(cfg.redis_reconnect_max_ms, 6000);
    cg_config_free(&cfg);
    /* A bound that is itself invalid is not compared as well. */
    set("REDIS_RECONNECT_MAX_MS", "5");
    expect_one_error("REDIS_RECONNECT_MAX_MS: must be an integer between 10 and 600000");
}

static void test_multiple_errors(void **state)
{
    (void)state;
    write_dotenv("GATE_NAME=ok\n"
                 "=novalue\n"
                 "MAX_QUEUE_SIZE=0\n");
    set("PORT", "0");
    set("LOG_LEVEL", "loud");
    set("TWILIO_QUEUE_SID", "QU1");
    set("REDIS_URL", "rediss://h:0");
    set("VAPI_BASE_URL", "api.vapi.ai");
    set("REDIS_RECONNECT_MIN_MS", "9000");
    set("OVERFLOW_ACTION", "dial");
    struct cg_config cfg;
    struct cg_config_errors errs;
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    static const char *const named[] = {
        ".env line 2: ",
        "PORT: ",
        "LOG_LEVEL: ",
        "REDIS_URL: ",
        "REDIS_RECONNECT_MIN_MS: ",
        "TWILIO_QUEUE_SID: ",
        "VAPI_BASE_URL: ",
        "MAX_QUEUE_SIZE: ",
        "OVERFLOW_DIAL_NUMBER: ",
    };
    size_t want = sizeof named / sizeof named[0];
    if (errs.n != want)
        dump_errors(&errs);
    assert_int_equal(errs.n, want);
    for (size_t i = 0; i < want; i++)
        assert_true(find_error_prefix(&errs, named[i]) >= 0);
    cg_config_errors_free(&errs);
    /* The partly loaded config is still freed normally. */
    cg_config_free(&cfg);

    /* A NULL error list is allowed: only the return value is wanted. */
    assert_int_equal(cg_config_load(&cfg, envpath, NULL), -1);
    cg_config_free(&cfg);
}

static const char *const secret_values[] = {
    "admin-t0ken-value",   "twilio-auth-t0ken", "vapi-api-k3y-value",
    "vapi-webhook-s3cret", "wait-read-t0ken",   "redis-pa55word",
};

static void set_all_secrets(void)
{
    set("ADMIN_TOKEN", secret_values[0]);
    set("TWILIO_AUTH_TOKEN", secret_values[1]);
    set("VAPI_API_KEY", secret_values[2]);
    set("VAPI_WEBHOOK_SECRET", secret_values[3]);
    set("WAIT_TIME_READ_TOKEN", secret_values[4]);
    set("REDIS_URL", "redis://app:redis-pa55word@db.internal:6380/2");
}

static void test_secrets_masked_in_print(void **state)
{
    (void)state;
    set_all_secrets();
    struct cg_config cfg;
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.admin_token, secret_values[0]);
    char *text = print_to_string(&cfg);
    for (size_t i = 0; i < sizeof secret_values / sizeof secret_values[0]; i++)
        assert_null(strstr(text, secret_values[i]));
    assert_true(has_line(text, "ADMIN_TOKEN=********  (env)"));
    assert_true(has_line(text, "TWILIO_AUTH_TOKEN=********  (env)"));
    assert_true(has_line(text, "VAPI_API_KEY=********  (env)"));
    assert_true(has_line(text, "VAPI_WEBHOOK_SECRET=********  (env)"));
    assert_true(has_line(text, "WAIT_TIME_READ_TOKEN=********  (env)"));
    assert_true(has_line(text, "REDIS_URL=redis://app:********@db.internal:6380/2  (env)"));
    free(text);
    cg_config_free(&cfg);

    /* Without a password the Redis URL prints as is; unset secrets say so. */
    clear_env();
    set("REDIS_URL", "redis://db.internal");
    load_ok(&cfg, NULL);
    text = print_to_string(&cfg);
    assert_true(has_line(text, "REDIS_URL=redis://db.internal  (env)"));
    assert_true(has_line(text, "VAPI_API_KEY=(unset)  (default)"));
    free(text);
    cg_config_free(&cfg);
}

static void test_secrets_not_in_errors(void **state)
{
    (void)state;
    set_all_secrets();
    /* Make errors out of values that carry the secrets. */
    set("REDIS_URL", "rediss://app:redis-pa55word@db.internal:0");
    set("GATE_NAME", "admin-t0ken-value with space");
    set("PORT", "twilio-auth-t0ken");
    write_dotenv("VAPI_API_KEY=\"vapi-api-k3y-value\n"
                 "vapi-webhook-s3cret\n");
    struct cg_config cfg;
    struct cg_config_errors errs;
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    assert_int_equal(errs.n, 5);
    for (size_t i = 0; i < errs.n; i++)
        for (size_t k = 0; k < sizeof secret_values / sizeof secret_values[0]; k++)
            assert_null(strstr(errs.msgs[i], secret_values[k]));
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
}

static void test_register_secrets(void **state)
{
    (void)state;
    set_all_secrets();
    set("REDIS_URL", "redis://:redis%2Dpa55word@db.internal");
    struct cg_config cfg;
    load_ok(&cfg, NULL);
    cg_log_clear_secrets();
    cg_config_register_secrets(&cfg);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cg_log_set_stream(f);
    for (size_t i = 0; i < sizeof secret_values / sizeof secret_values[0]; i++)
        cg_log_error("leak test", "value=%s", secret_values[i]);
    cg_log_error("leak test", "url=%s", cfg.redis_url);
    cg_log_set_stream(NULL);
    assert_int_equal(fclose(f), 0);
    for (size_t i = 0; i < sizeof secret_values / sizeof secret_values[0]; i++)
        assert_null(strstr(text, secret_values[i]));
    assert_null(strstr(text, "redis%2Dpa55word"));
    assert_non_null(strstr(text, "***"));
    free(text);
    cg_log_clear_secrets();
    cg_config_free(&cfg);
}

/* Found by fuzzing (tests/fuzz/corpus/dotenv/regress-print-newline): a
 * value holding a newline, valid as it is, made check-config print a line
 * of its own that read like another option, here a secret in clear. */
static void test_print_one_line_per_option(void **state)
{
    (void)state;
    write_dotenv("OVERFLOW_MESSAGE=\"Busy.\\nTWILIO_AUTH_TOKEN=forged\"\n");
    set("REDIS_URL", "redis://us\ter:pw@db.internal");
    struct cg_config cfg;
    load_ok(&cfg, envpath);
    assert_string_equal(cfg.overflow_message, "Busy.\nTWILIO_AUTH_TOKEN=forged");
    char *text = print_to_string(&cfg);

    size_t lines = 0, options = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    while (cg_config_option_name(options))
        options++;
    assert_int_equal(lines, options);
    assert_true(has_line(text, "OVERFLOW_MESSAGE=Busy.\\x0aTWILIO_AUTH_TOKEN=forged  (.env)"));
    assert_false(has_line_prefix(text, "TWILIO_AUTH_TOKEN=forged"));
    assert_true(has_line(text, "TWILIO_AUTH_TOKEN=(unset)  (default)"));
    /* The REDIS_URL line, whose password is masked, is escaped too. */
    assert_true(has_line(text, "REDIS_URL=redis://us\\x09er:********@db.internal  (env)"));
    free(text);
    cg_config_free(&cfg);
}

static void test_derived_public_url(void **state)
{
    (void)state;
    struct cg_config cfg;
    set("PORT", "8080");
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.public_url, "http://127.0.0.1:8080");
    char *text = print_to_string(&cfg);
    assert_true(has_line(text, "PUBLIC_URL=http://127.0.0.1:8080  (default)"));
    free(text);
    cg_config_free(&cfg);

    /* An explicit PUBLIC_URL is used as given, not derived from PORT. */
    set("PUBLIC_URL", "https://gate.example.com");
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.public_url, "https://gate.example.com");
    cg_config_free(&cfg);

    /* So is one from .env. */
    unsetenv("PUBLIC_URL");
    write_dotenv("PUBLIC_URL=https://tunnel.example.net:8443/\n");
    load_ok(&cfg, envpath);
    assert_string_equal(cfg.public_url, "https://tunnel.example.net:8443");
    cg_config_free(&cfg);
}

static void test_print_help(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cg_config_print_help(f);
    assert_int_equal(fclose(f), 0);
    for (size_t i = 0; cg_config_option_name(i); i++) {
        char want[80];
        snprintf(want, sizeof want, "  %s ", cg_config_option_name(i));
        assert_non_null(strstr(text, want));
    }
    assert_non_null(strstr(text, "\nRedis\n"));
    assert_non_null(strstr(text, "\nTwilio\n"));
    assert_non_null(strstr(text, "integer 1-65535"));
    assert_non_null(strstr(text, "debug|info|warn|error"));
    assert_non_null(strstr(text, "message|dial|voicemail"));
    assert_non_null(strstr(text, "default: redis://127.0.0.1:6379"));
    /* Every line fits a terminal. */
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        assert_true(n <= 79);
        p += n + (p[n] == '\n');
    }
    free(text);
}

/* Index of the warning containing text, or -1. */
static int find_warning(const struct cg_config_errors *errs, const char *text)
{
    for (size_t i = 0; i < errs->nwarnings; i++)
        if (strstr(errs->warnings[i], text) != NULL)
            return (int)i;
    return -1;
}

/* The .env of Vapi's queue guide, as a migrating user has it. */
static const char *const guide_env = "VAPI_API_KEY=your_vapi_api_key_here\n"
                                     "VAPI_PHONE_NUMBER_ID=your_phone_number_id\n"
                                     "VAPI_ASSISTANT_ID=your_assistant_id\n"
                                     "TWILIO_ACCOUNT_SID=" SID_AC "\n"
                                     "TWILIO_AUTH_TOKEN=your_twilio_auth_token\n"
                                     "TWILIO_QUEUE_SID=" SID_QU "\n"
                                     "REDIS_URL=redis://localhost:6379\n"
                                     "PORT=3000\n"
                                     "MAX_CONCURRENCY=5\n";

static void test_services_gate_needs_everything(void **state)
{
    (void)state;
    unsetenv("SERVICES");
    struct cg_config cfg;
    struct cg_config_errors errs;

    /* The guide's .env lacks the webhook secret: refused, naming it and
     * where it comes from, not run with the gate silently off. */
    write_dotenv(guide_env);
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), -1);
    if (errs.n != 1)
        dump_errors(&errs);
    assert_int_equal(errs.n, 1);
    assert_int_equal(find_error_prefix(&errs, "VAPI_WEBHOOK_SECRET: required by the admission "
                                              "gate (on because VAPI_API_KEY is set)"),
                     0);
    assert_non_null(strstr(errs.msgs[0], "x-vapi-secret"));
    assert_non_null(strstr(errs.msgs[0], "Server URL"));
    assert_true(find_warning(&errs, "PUBLIC_URL is not set") >= 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* With the secret and the public URL the gate runs, quietly. */
    set("VAPI_WEBHOOK_SECRET", "s3cret");
    set("PUBLIC_URL", "https://gate.example.com");
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), 0);
    assert_int_equal(cfg.services, CG_SERVICE_GATE);
    assert_int_equal(errs.nwarnings, 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* An HMAC plan instead of the static secret will do too. */
    unsetenv("VAPI_WEBHOOK_SECRET");
    set("VAPI_HMAC_SECRET", "hmac-s3cret");
    load_ok(&cfg, envpath);
    assert_int_equal(cfg.services, CG_SERVICE_GATE);
    cg_config_free(&cfg);

    /* One gate option alone: every missing one is named, each once. */
    unlink(envpath);
    clear_env();
    set("VAPI_ASSISTANT_ID", "asst");
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), -1);
    assert_int_equal(errs.n, 5);
    const char *names[] = {"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "VAPI_API_KEY",
                           "VAPI_PHONE_NUMBER_ID", "VAPI_WEBHOOK_SECRET"};
    for (size_t i = 0; i < 5; i++) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "%s: required by the admission gate", names[i]);
        assert_true(find_error_prefix(&errs, prefix) >= 0);
    }
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* SERVICES=gate with nothing set asks for all six. */
    clear_env();
    set("SERVICES", "gate");
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), -1);
    assert_int_equal(errs.n, 6);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
}

static void test_services_waittime_and_none(void **state)
{
    (void)state;
    unsetenv("SERVICES");
    struct cg_config cfg;
    struct cg_config_errors errs;

    /* A wait-time-only deployment: the workspace and the credentials. */
    set("TWILIO_WORKSPACE_SID", SID_WS);
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), -1);
    assert_int_equal(errs.n, 2);
    assert_true(find_error_prefix(&errs, "TWILIO_ACCOUNT_SID: required by the wait-time") >= 0);
    assert_true(find_error_prefix(&errs, "TWILIO_AUTH_TOKEN: required by the wait-time") >= 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
    set("TWILIO_ACCOUNT_SID", SID_AC);
    set("TWILIO_AUTH_TOKEN", "tok");
    load_ok(&cfg, NULL);
    assert_int_equal(cfg.services, CG_SERVICE_WAITTIME);
    cg_config_free(&cfg);

    /* A gate tuning option while the gate is off is a warning. */
    set("MAX_CONCURRENCY", "8");
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), 0);
    assert_true(find_warning(&errs, "MAX_CONCURRENCY is set but the admission gate is off") >= 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* SERVICES=waittime keeps the gate off even with its options, and says so. */
    set("SERVICES", "waittime");
    set("VAPI_API_KEY", "key");
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), 0);
    assert_int_equal(cfg.services, CG_SERVICE_WAITTIME);
    assert_true(find_warning(&errs, "VAPI_API_KEY is set but SERVICES=waittime") >= 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* SERVICES=waittime without a workspace is an error. */
    unsetenv("TWILIO_WORKSPACE_SID");
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), -1);
    assert_true(find_error_prefix(&errs, "TWILIO_WORKSPACE_SID: required") >= 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    /* Nothing configured: runs (health only) with a warning. */
    clear_env();
    assert_int_equal(cg_config_load(&cfg, NULL, &errs), 0);
    assert_int_equal(cfg.services, 0);
    assert_true(find_warning(&errs, "no service is on") >= 0);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);

    check_value("SERVICES", "gate,bogus", 0);
    check_value("SERVICES", "wait-time", 0);
    check_value("SERVICES", "", 0);
    check_value("SERVICES", "none", 1);
    check_value("SERVICES", "gate,", 0);
}

static void test_unknown_names(void **state)
{
    (void)state;
    struct cg_config cfg;
    struct cg_config_errors errs;
    write_dotenv("MAX_CONCURENCY=5\nVAPI_ASISTANT_ID=x\nSOMETHING_ELSE=1\nPORT=3001\n");
    set("TWILIO_ACOUNT_SID", SID_AC);
    set("REDIS_HOST", "localhost");
    set("HOME_DIRECTORY_OF_NOBODY", "x"); /* not a callgate prefix: not ours */
    assert_int_equal(cg_config_load(&cfg, envpath, &errs), 0);
    assert_int_equal(cfg.port, 3001);
    assert_true(find_warning(&errs, ".env line 1: unknown option MAX_CONCURENCY, ignored (did "
                                    "you mean MAX_CONCURRENCY?)") >= 0);
    assert_true(find_warning(&errs, ".env line 2: unknown option VAPI_ASISTANT_ID, ignored (did "
                                    "you mean VAPI_ASSISTANT_ID?)") >= 0);
    assert_true(find_warning(&errs, ".env line 3: unknown option SOMETHING_ELSE, ignored "
                                    "(callgate --help lists them)") >= 0);
    assert_true(find_warning(&errs, "environment: unknown option TWILIO_ACOUNT_SID, ignored (did "
                                    "you mean TWILIO_ACCOUNT_SID?)") >= 0);
    assert_true(find_warning(&errs, "environment: unknown option REDIS_HOST") >= 0);
    assert_int_equal(find_warning(&errs, "HOME_DIRECTORY"), -1);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
    unsetenv("TWILIO_ACOUNT_SID");
    unsetenv("REDIS_HOST");
    unsetenv("HOME_DIRECTORY_OF_NOBODY");

    assert_string_equal(cg_config_closest_name("PUBLICURL"), "PUBLIC_URL");
    assert_string_equal(cg_config_closest_name("LOGLEVEL"), "LOG_LEVEL");
    assert_null(cg_config_closest_name("X"));
    assert_null(cg_config_closest_name("COMPLETELY_UNRELATED_NAME"));
}

/* Call control and hand-off options: each value checked, and the hand-off
 * options only together. */
static void test_handoff_options(void **state)
{
    (void)state;
    check_value("VAPI_SERVER_MESSAGES", "auto", 1);
    check_value("VAPI_SERVER_MESSAGES", "phone-call-control, status-update,end-of-call-report", 1);
    check_value("VAPI_SERVER_MESSAGES",
                "phone-call-control,status-update,end-of-call-report,tool-calls,"
                "transcript[transcriptType=\"final\"]",
                1);
    check_value("VAPI_SERVER_MESSAGES", "status-update,end-of-call-report", 0);
    check_value("VAPI_SERVER_MESSAGES", "phone-call-control,status-update", 0);
    check_value("VAPI_SERVER_MESSAGES", "phone-call-control,status-update,end-of-call-report,x", 0);
    check_value("VAPI_SERVER_MESSAGES",
                "phone-call-control,status-update,end-of-call-report,status-update", 0);
    check_value("VAPI_SERVER_MESSAGES", "phone-call-control,,status-update,end-of-call-report", 0);
    check_value("VAPI_SERVER_MESSAGES", "", 0);
    check_value("TRANSFER_FAILED_MESSAGE", "Sorry.", 1);

    struct cg_config cfg;
    load_ok(&cfg, NULL);
    assert_string_equal(cg_config_server_messages(&cfg), CG_SERVER_MESSAGES_AUTO);
    assert_string_equal(cfg.handoff_workflow_sid, "");
    cg_config_free(&cfg);

    set("HANDOFF_WORKFLOW_SID", "WW0123456789abcdef0123456789abcdef");
    set("HANDOFF_TASK_QUEUE_SID", "WQ0123456789abcdef0123456789abcdef");
    set("HANDOFF_NUMBERS", "+15550001000, sip:desk@example.com,(555) 000-2000");
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.handoff_numbers, "+15550001000, sip:desk@example.com,(555) 000-2000");
    cg_config_free(&cfg);
    /* check_value unsets the option it checks: put it back after each. */
    static const char *const bad_numbers[] = {"+1555,,+1666", "call me", "sip:a b@c", "12"};
    for (size_t i = 0; i < sizeof bad_numbers / sizeof bad_numbers[0]; i++) {
        check_value("HANDOFF_NUMBERS", bad_numbers[i], 0);
        set("HANDOFF_NUMBERS", "+15550001000");
    }
    check_value("HANDOFF_WORKFLOW_SID", "WQ0123456789abcdef0123456789abcdef", 0);
    set("HANDOFF_WORKFLOW_SID", "WW0123456789abcdef0123456789abcdef");
    check_value("HANDOFF_TASK_QUEUE_SID", "WW0123456789abcdef0123456789abcdef", 0);

    unsetenv("HANDOFF_TASK_QUEUE_SID");
    expect_one_error("HANDOFF_TASK_QUEUE_SID: required with HANDOFF_WORKFLOW_SID (the "
                     "TaskQueue, WQ..., its workflow places hand-offs in)");
    set("HANDOFF_TASK_QUEUE_SID", "WQ0123456789abcdef0123456789abcdef");
    unsetenv("HANDOFF_NUMBERS");
    expect_one_error("HANDOFF_NUMBERS: required with HANDOFF_WORKFLOW_SID (the destinations "
                     "the assistant's transfer names for the human queue)");
    unsetenv("HANDOFF_WORKFLOW_SID");
    expect_one_error("HANDOFF_WORKFLOW_SID: required with HANDOFF_TASK_QUEUE_SID (the "
                     "TaskRouter workflow, WW..., that takes hand-offs)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_tls_and_sentinel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_dotenv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_env_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv_broken_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sid_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dial_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_cross_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_masked_in_print, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_not_in_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_one_line_per_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derived_public_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_services_gate_needs_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_services_waittime_and_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
