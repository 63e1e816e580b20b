/*
 * test_log.c - the JSON line logger: every line parses back as one JSON
 * object, fields keep their types, text is escaped, secrets are masked and
 * errno survives.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/log.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output of the test in progress, captured with open_memstream. */
static char *out_text;
static size_t out_len;
static FILE *out_f;

static int setup(void **state)
{
    (void)state;
    out_text = NULL;
    out_len = 0;
    out_f = open_memstream(&out_text, &out_len);
    if (out_f == NULL)
        return -1;
    cg_log_set_stream(out_f);
    cg_log_set_level(CG_LOG_DEBUG);
    cg_log_clear_secrets();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cg_log_set_stream(NULL);
    cg_log_set_level(CG_LOG_INFO);
    cg_log_clear_secrets();
    if (out_f)
        fclose(out_f);
    out_f = NULL;
    free(out_text);
    out_text = NULL;
    return 0;
}

/* Everything logged so far (the stream is flushed by every cg_log call). */
static const char *output(void)
{
    assert_int_equal(fflush(out_f), 0);
    return out_text ? out_text : "";
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* Parses line number idx (0-based) of the output as a JSON object, after
 * checking that the output is exactly whole lines. */
static json_t *line_json(size_t idx)
{
    const char *text = output();
    size_t len = strlen(text);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    const char *p = text;
    for (size_t i = 0; i < idx; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    size_t n = strcspn(p, "\n");
    json_error_t err;
    json_t *j = json_loadb(p, n, 0, &err);
    if (j == NULL)
        fail_msg("line %zu is not JSON (%s): %.*s", idx, err.text, (int)n, p);
    assert_true(json_is_object(j));
    return j;
}

static json_t *last_json(void)
{
    size_t n = count_lines(output());
    assert_true(n > 0);
    return line_json(n - 1);
}

static const char *jstr(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("field %s is not a string", key);
    return json_string_value(v);
}

static json_int_t jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("field %s is not an integer", key);
    return json_integer_value(v);
}

static void test_json_lines(void **state)
{
    (void)state;
    cg_log_debug("first", "");
    cg_log_info("redis connected", "host=%s port=%d", "127.0.0.1", 6379);
    cg_log_warn("slow", "ms=%d", 1500);
    cg_log_error("failed", "reason=%s", "timeout");
    assert_int_equal(count_lines(output()), 4);

    static const char *const levels[] = {"debug", "info", "warn", "error"};
    static const char *const msgs[] = {"first", "redis connected", "slow", "failed"};
    for (size_t i = 0; i < 4; i++) {
        json_t *j = line_json(i);
        assert_string_equal(jstr(j, "level"), levels[i]);
        assert_string_equal(jstr(j, "message"), msgs[i]);
        /* "2026-11-21T16:49:12.123Z" */
        const char *t = jstr(j, "time");
        assert_int_equal(strlen(t), 24);
        assert_int_equal(t[10], 'T');
        assert_int_equal(t[19], '.');
        assert_int_equal(t[23], 'Z');
        json_decref(j);
    }
    json_t *j = line_json(1);
    assert_int_equal(json_object_size(j), 5);
    assert_string_equal(jstr(j, "host"), "127.0.0.1");
    assert_int_equal(jint(j, "port"), 6379);
    json_decref(j);
    j = line_json(0);
    assert_int_equal(json_object_size(j), 3);
    json_decref(j);
}

static void test_level_filtering(void **state)
{
    (void)state;
    cg_log_set_level(CG_LOG_WARN);
    cg_log_debug("hidden debug", "");
    cg_log_info("hidden info", "");
    cg_log_warn("shown warn", "");
    cg_log_error("shown error", "");
    const char *text = output();
    assert_int_equal(count_lines(text), 2);
    assert_null(strstr(text, "hidden"));
    json_t *j = line_json(0);
    assert_string_equal(jstr(j, "level"), "warn");
    json_decref(j);

    cg_log_set_level(CG_LOG_ERROR);
    cg_log_warn("hidden warn", "");
    assert_int_equal(count_lines(output()), 2);
}

static void test_field_types(void **state)
{
    (void)state;
    /* volatile: gcc -O2 would otherwise reject a %s it can prove is NULL. */
    const char *volatile nothing = NULL;
    cg_log_info("types",
                "d=%d neg=%d i=%i u=%u ld=%ld lu=%lu lld=%lld llu=%llu zu=%zu zd=%zd "
                "g=%g f=%f s=%s c=%c cut=%.*s whole=%.*s nul=%s",
                42, -7, 3, 4000000000u, -1234567890123L, 1234567890123UL, -9000000000000000000LL,
                9000000000000000000ULL, (size_t)123456789, (ssize_t)-5, 1.5, -0.25, "text", 'x', 3,
                "abcdef", 10, "abc", nothing);
    json_t *j = last_json();
    assert_int_equal(jint(j, "d"), 42);
    assert_int_equal(jint(j, "neg"), -7);
    assert_int_equal(jint(j, "i"), 3);
    assert_int_equal(jint(j, "u"), 4000000000LL);
    assert_int_equal(jint(j, "ld"), -1234567890123LL);
    assert_int_equal(jint(j, "lu"), 1234567890123LL);
    assert_true(jint(j, "lld") == -9000000000000000000LL);
    assert_true(jint(j, "llu") == 9000000000000000000LL);
    assert_int_equal(jint(j, "zu"), 123456789);
    assert_int_equal(jint(j, "zd"), -5);
    assert_true(json_is_real(json_object_get(j, "g")));
    assert_true(json_real_value(json_object_get(j, "g")) == 1.5);
    assert_true(json_is_real(json_object_get(j, "f")));
    assert_true(json_real_value(json_object_get(j, "f")) == -0.25);
    assert_string_equal(jstr(j, "s"), "text");
    assert_string_equal(jstr(j, "c"), "x");
    assert_string_equal(jstr(j, "cut"), "abc");
    assert_string_equal(jstr(j, "whole"), "abc");
    assert_true(json_is_null(json_object_get(j, "nul")));
    json_decref(j);

    /* NaN and infinities are not JSON numbers: they become null. Large
     * finite numbers stay numbers. */
    cg_log_info("floats", "nan=%g inf=%g ninf=%f big=%g", NAN, INFINITY, -INFINITY, 1.5e308);
    j = last_json();
    assert_true(json_is_null(json_object_get(j, "nan")));
    assert_true(json_is_null(json_object_get(j, "inf")));
    assert_true(json_is_null(json_object_get(j, "ninf")));
    assert_true(json_is_number(json_object_get(j, "big")));
    json_decref(j);
}

static void test_unsupported_format_stays_json(void **state)
{
    (void)state;
    /* A conversion the logger does not know ends the fields, and whatever
     * it emitted is still one valid JSON line. */
    cg_log_info("odd", "w=%5d after=%d", 7, 8);
    cg_log_info("odd", "not a field list");
    cg_log_info("odd", "pct=%% x=%d", 1);
    cg_log_info("odd", "a=%d trailing", 1);
    for (size_t i = 0; i < 4; i++)
        json_decref(line_json(i));
    json_t *j = line_json(3);
    assert_int_equal(jint(j, "a"), 1);
    json_decref(j);
}

static void test_escaping(void **state)
{
    (void)state;
    const char *msg = "quote\" backslash\\ nl\n cr\r tab\t ctl\x01\x1f del\x7f end";
    cg_log_info(msg, "s=%s", "</script>\"'\n");
    const char *text = output();
    /* One line: the embedded newlines are escaped. */
    assert_int_equal(count_lines(text), 1);
    json_t *j = last_json();
    assert_string_equal(jstr(j, "message"), msg);
    assert_string_equal(jstr(j, "s"), "</script>\"'\n");
    json_decref(j);

    /* Valid multi-byte UTF-8 is kept, invalid bytes become U+FFFD. */
    cg_log_info("utf8", "ok=%s bad=%s cut=%s sur=%s over=%s",
                "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e", "a\xff-\xfe", "x\xe2\x82",
                "\xed\xa0\x80", "\xc0\xaf");
    j = last_json();
    assert_string_equal(jstr(j, "ok"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e");
    assert_string_equal(jstr(j, "bad"), "a\xef\xbf\xbd-\xef\xbf\xbd");
    assert_string_equal(jstr(j, "cut"), "x\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(jstr(j, "sur"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(jstr(j, "over"), "\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
}

static void test_secret_masking(void **state)
{
    (void)state;
    cg_log_add_secret("s3cr3t-token-value");
    cg_log_add_secret("abc"); /* too short to mask: ignored */
    cg_log_add_secret(NULL);
    cg_log_info("auth failed for s3cr3t-token-value", "header=%s tail=%.*s c=%s",
                "Bearer s3cr3t-token-value", 30, "xs3cr3t-token-valuex", "abc");
    const char *text = output();
    assert_null(strstr(text, "s3cr3t-token-value"));
    json_t *j = last_json();
    assert_string_equal(jstr(j, "message"), "auth failed for ***");
    assert_string_equal(jstr(j, "header"), "Bearer ***");
    assert_string_equal(jstr(j, "tail"), "x***x");
    assert_string_equal(jstr(j, "c"), "abc");
    json_decref(j);

    /* When one secret is a prefix of another, the longer one is masked
     * whole: no tail of it may leak. */
    cg_log_add_secret("pass1234");
    cg_log_add_secret("pass1234-longer-secret");
    cg_log_info("m", "v=%s", "[pass1234-longer-secret] [pass1234]");
    j = last_json();
    assert_string_equal(jstr(j, "v"), "[***] [***]");
    json_decref(j);

    /* Secrets next to invalid UTF-8 are still found. */
    cg_log_info("m", "v=%s", "\xffs3cr3t-token-value\xff");
    j = last_json();
    assert_string_equal(jstr(j, "v"), "\xef\xbf\xbd***\xef\xbf\xbd");
    json_decref(j);

    cg_log_clear_secrets();
    cg_log_info("m", "v=%s", "s3cr3t-token-value");
    j = last_json();
    assert_string_equal(jstr(j, "v"), "s3cr3t-token-value");
    json_decref(j);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    errno = EACCES;
    cg_log_info("with errno", "e=%d", errno);
    assert_int_equal(errno, EACCES);

    /* Filtered out. */
    cg_log_set_level(CG_LOG_ERROR);
    errno = ENOENT;
    cg_log_debug("filtered", "");
    assert_int_equal(errno, ENOENT);

    /* Even when the write itself fails and sets errno. */
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    cg_log_set_stream(ro);
    errno = ETIMEDOUT;
    cg_log_error("to a read-only stream", "");
    assert_int_equal(errno, ETIMEDOUT);
    cg_log_set_stream(out_f);
    fclose(ro);

    json_t *j = line_json(0);
    assert_int_equal(jint(j, "e"), EACCES);
    json_decref(j);
}

static void test_long_values_stay_json(void **state)
{
    (void)state;
    /* Values past the 64 KiB line limit must never produce a broken line. */
    size_t n = 70000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'v', n);
    big[n] = '\0';
    cg_log_info("big value", "a=%d big=%s b=%d", 1, big, 2);
    cg_log_info(big, "a=%d", 1);
    cg_log_add_secret("vvvvvvvv-not-present");
    cg_log_info("big masked value", "big=%s", big);
    /* Just under the limit, the value is logged in full. */
    cg_log_info("fits", "v=%.*s", 60000, big);
    free(big);
    assert_int_equal(count_lines(output()), 4);
    for (size_t i = 0; i < 3; i++) {
        json_t *j = line_json(i);
        assert_string_equal(jstr(j, "level"), "info");
        json_decref(j);
    }
    json_t *j = line_json(3);
    assert_int_equal(strlen(jstr(j, "v")), 60000);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_format_stays_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_masking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_values_stay_json, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
