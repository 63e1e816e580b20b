/*
 * test_buf.c - the bounded buffer (appends, printf, take, reset), its JSON
 * and XML escaping, and strict UTF-8 validation.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/utf8.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FFFD "\xef\xbf\xbd"

/* Asserts that b holds exactly the n bytes of want, NUL-terminated. */
static void assert_buf(const struct cg_buf *b, const char *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(cg_buf_str(b), want, n);
    assert_int_equal(cg_buf_str(b)[n], '\0');
}

#define assert_buf_str(b, s) assert_buf((b), (s), strlen(s))

static void test_empty(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 16);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_string_equal(cg_buf_str(&b), "");
    /* An empty append still gives a valid, terminated buffer. */
    assert_int_equal(cg_buf_append(&b, "", 0), 0);
    assert_non_null(b.data);
    assert_buf_str(&b, "");
    cg_buf_free(&b);
    assert_null(b.data);
    /* Freeing twice is harmless. */
    cg_buf_free(&b);
}

static void test_bounded(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 10);
    assert_int_equal(cg_buf_appends(&b, "hello"), 0);
    /* Past the ceiling: refused, contents untouched. */
    assert_int_equal(cg_buf_appends(&b, "world!"), -1);
    assert_buf_str(&b, "hello");
    /* Exactly up to the ceiling is fine. */
    assert_int_equal(cg_buf_append(&b, "world", 5), 0);
    assert_buf_str(&b, "helloworld");
    assert_int_equal(cg_buf_appendc(&b, 'x'), -1);
    assert_int_equal(cg_buf_append(&b, "", 0), 0);
    assert_int_equal(cg_buf_printf(&b, "%d", 1), -1);
    assert_int_equal(cg_buf_append(&b, "x", (size_t)-1), -1);
    assert_buf_str(&b, "helloworld");
    cg_buf_free(&b);

    /* A zero ceiling admits nothing but the empty string. */
    cg_buf_init(&b, 0);
    assert_int_equal(cg_buf_appendc(&b, 'a'), -1);
    assert_int_equal(cg_buf_appends(&b, ""), 0);
    assert_buf_str(&b, "");
    cg_buf_free(&b);

    /* Embedded NULs are data like any other byte. */
    cg_buf_init(&b, 10);
    assert_int_equal(cg_buf_append(&b, "a\0b", 3), 0);
    assert_buf(&b, "a\0b", 3);
    cg_buf_free(&b);
}

static void test_growth(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    for (size_t i = 0; i < 100000; i++)
        assert_int_equal(cg_buf_appendc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    for (size_t i = 0; i < 100000; i++)
        assert_int_equal(b.data[i], (char)('a' + i % 26));
    assert_int_equal(b.data[100000], '\0');
    cg_buf_free(&b);
}

static int buf_printf_wrapper(struct cg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int buf_printf_wrapper(struct cg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_printf(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 64);
    assert_int_equal(cg_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(cg_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(buf_printf_wrapper(&b, "/%05.1f/%c", 3.14159, 'z'), 0);
    assert_buf_str(&b, "42-x/003.1/z");
    /* Too long for the ceiling: refused whole, not truncated. */
    assert_int_equal(cg_buf_printf(&b, "%060d", 7), -1);
    assert_buf_str(&b, "42-x/003.1/z");
    cg_buf_free(&b);

    /* An empty first printf still yields a terminated buffer. */
    cg_buf_init(&b, 64);
    assert_int_equal(cg_buf_printf(&b, "%s", ""), 0);
    assert_buf_str(&b, "");
    cg_buf_free(&b);

    /* Output longer than the initial allocation grows the buffer. */
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    assert_int_equal(cg_buf_appends(&b, "<"), 0);
    assert_int_equal(cg_buf_printf(&b, "%0500d", 1), 0);
    assert_int_equal(b.len, 501);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[499], '0');
    assert_int_equal(b.data[500], '1');
    assert_int_equal(b.data[501], '\0');
    cg_buf_free(&b);
}

static void test_take_reset(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 32);
    /* Taking an empty buffer still returns a string to free. */
    char *s = cg_buf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);

    assert_int_equal(cg_buf_appends(&b, "owned"), 0);
    s = cg_buf_take(&b);
    assert_string_equal(s, "owned");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 32);
    assert_string_equal(cg_buf_str(&b), "");
    free(s);

    /* The buffer is reusable after take, and reset keeps the ceiling. */
    assert_int_equal(cg_buf_appends(&b, "again"), 0);
    cg_buf_reset(&b);
    assert_buf_str(&b, "");
    assert_non_null(b.data);
    assert_int_equal(cg_buf_appends(&b, "0123456789012345678901234567890"), 0);
    assert_int_equal(cg_buf_appends(&b, "12"), -1);
    assert_int_equal(b.len, 31);
    cg_buf_free(&b);

    /* Reset of a never-used buffer is harmless. */
    cg_buf_init(&b, 8);
    cg_buf_reset(&b);
    assert_string_equal(cg_buf_str(&b), "");
    cg_buf_free(&b);
}

/* Escapes n bytes of s as JSON, checks the literal text and that jansson
 * parses it back to want (want_len bytes). */
static void check_json(const char *s, size_t n, const char *literal, const char *want,
                       size_t want_len)
{
    struct cg_buf b;
    cg_buf_init(&b, 4096);
    assert_int_equal(cg_buf_append_json_str(&b, s, n), 0);
    if (literal)
        assert_string_equal(cg_buf_str(&b), literal);
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", err.text, cg_buf_str(&b));
    assert_true(json_is_string(j));
    assert_int_equal(json_string_length(j), want_len);
    assert_memory_equal(json_string_value(j), want, want_len);
    json_decref(j);
    cg_buf_free(&b);
}

#define CHECK_JSON(in, literal, want)                                                              \
    check_json((in), sizeof(in) - 1, (literal), (want), sizeof(want) - 1)

static void test_json_escaping(void **state)
{
    (void)state;
    CHECK_JSON("", "\"\"", "");
    CHECK_JSON("plain text/</script>", "\"plain text/</script>\"", "plain text/</script>");
    CHECK_JSON("q\"b\\", "\"q\\\"b\\\\\"", "q\"b\\");
    CHECK_JSON("n\nr\rt\t", "\"n\\nr\\rt\\t\"", "n\nr\rt\t");
    CHECK_JSON("\x01\x1f\x7f\b\f", "\"\\u0001\\u001f\\u007f\\u0008\\u000c\"", "\x01\x1f\x7f\b\f");
    CHECK_JSON("nul\0byte", "\"nul\\u0000byte\"", "nul\0byte");

    /* Valid multi-byte sequences pass through unchanged. */
    CHECK_JSON("\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\x9e\xf4\x8f\xbf\xbf",
               "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\x9e\xf4\x8f\xbf\xbf\"",
               "\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\x9e\xf4\x8f\xbf\xbf");
    /* Each invalid byte becomes one U+FFFD. */
    CHECK_JSON("a\xff-b", "\"a" FFFD "-b\"", "a" FFFD "-b");
    CHECK_JSON("\xc0\xaf", NULL, FFFD FFFD);                   /* overlong '/' */
    CHECK_JSON("\xed\xa0\x80", NULL, FFFD FFFD FFFD);          /* surrogate */
    CHECK_JSON("\xf4\x90\x80\x80", NULL, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
    CHECK_JSON("x\xe2\x82", NULL, "x" FFFD FFFD);              /* truncated */
    CHECK_JSON("\x80\xbf", NULL, FFFD FFFD);                   /* lone continuations */
    CHECK_JSON("\xe2\x82\xac\xe2\x82", NULL, "\xe2\x82\xac" FFFD FFFD);

    /* Only n bytes are read: a sequence cut by n is invalid. */
    check_json("\xe2\x82\xac", 2, NULL, FFFD FFFD, 6);

    /* Failure leaves what was there before, not half a string. */
    struct cg_buf b;
    cg_buf_init(&b, 12);
    assert_int_equal(cg_buf_appends(&b, "k:"), 0);
    assert_int_equal(cg_buf_append_json_str(&b, "abcdefghij", 10), -1);
    assert_buf_str(&b, "k:");
    /* Five bytes that escape to eleven. */
    assert_int_equal(cg_buf_append_json_str(&b, "a\"\n\t\\", 5), -1);
    assert_buf_str(&b, "k:");
    assert_int_equal(cg_buf_append_json_str(&b, "abcdefgh", 8), 0);
    assert_buf_str(&b, "k:\"abcdefgh\"");
    cg_buf_free(&b);
    /* Even when the failure happens on the very first append. */
    cg_buf_init(&b, 1);
    assert_int_equal(cg_buf_append_json_str(&b, "", 0), -1);
    assert_string_equal(cg_buf_str(&b), "");
    assert_int_equal(b.len, 0);
    cg_buf_free(&b);
}

static void check_xml(const char *s, size_t n, const char *want)
{
    struct cg_buf b;
    cg_buf_init(&b, 4096);
    assert_int_equal(cg_buf_append_xml(&b, s, n), 0);
    assert_buf_str(&b, want);
    cg_buf_free(&b);
}

#define CHECK_XML(in, want) check_xml((in), sizeof(in) - 1, (want))

static void test_xml_escaping(void **state)
{
    (void)state;
    CHECK_XML("", "");
    CHECK_XML("Tom & Jerry <b>\"hi\"</b> it's",
              "Tom &amp; Jerry &lt;b&gt;&quot;hi&quot;&lt;/b&gt; it&apos;s");
    CHECK_XML("&amp;", "&amp;amp;");
    /* Tab, LF and CR are allowed in XML 1.0; other controls are dropped. */
    CHECK_XML("a\tb\nc\rd", "a\tb\nc\rd");
    CHECK_XML("x\x01\x08\x0b\x0c\x1f\x7fy\0z", "xyz");
    CHECK_XML("caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac");

    /* Failure leaves the buffer as it was. */
    struct cg_buf b;
    cg_buf_init(&b, 8);
    assert_int_equal(cg_buf_appends(&b, "<a>"), 0);
    assert_int_equal(cg_buf_append_xml(&b, "x&y", 3), -1); /* "x&amp;y" is 7 */
    assert_buf_str(&b, "<a>");
    assert_int_equal(cg_buf_append_xml(&b, "x<y", 3), -1);
    assert_buf_str(&b, "<a>");
    assert_int_equal(cg_buf_append_xml(&b, "\x01xy\x02", 4), 0);
    assert_buf_str(&b, "<a>xy");
    cg_buf_free(&b);
}

struct utf8_case {
    const char *s;
    size_t n;
    size_t len; /* expected cg_utf8_seq_len */
};

#define U(str, want)                                                                               \
    {                                                                                              \
        (str), sizeof(str) - 1, (want)                                                             \
    }

static void test_utf8(void **state)
{
    (void)state;
    static const struct utf8_case cases[] = {
        U("A", 1),
        U("\x7f", 1),
        U("\xc2\x80", 2),         /* U+0080 */
        U("\xdf\xbf", 2),         /* U+07FF */
        U("\xc0\x80", 0),         /* overlong NUL */
        U("\xc1\xbf", 0),         /* overlong U+007F */
        U("\xe0\xa0\x80", 3),     /* U+0800 */
        U("\xe0\x9f\xbf", 0),     /* overlong U+07FF */
        U("\xe0\x80\x80", 0),     /* overlong NUL */
        U("\xed\x9f\xbf", 3),     /* U+D7FF, last before the surrogates */
        U("\xed\xa0\x80", 0),     /* U+D800 */
        U("\xed\xbf\xbf", 0),     /* U+DFFF */
        U("\xee\x80\x80", 3),     /* U+E000 */
        U("\xef\xbf\xbf", 3),     /* U+FFFF */
        U("\xf0\x90\x80\x80", 4), /* U+10000 */
        U("\xf0\x8f\xbf\xbf", 0), /* overlong U+FFFF */
        U("\xf0\x80\x80\x80", 0), /* overlong NUL */
        U("\xf4\x8f\xbf\xbf", 4), /* U+10FFFF */
        U("\xf4\x90\x80\x80", 0), /* U+110000 */
        U("\xf5\x80\x80\x80", 0), /* lead byte past U+10FFFF */
        U("\xf8\x88\x80\x80\x80", 0),
        U("\xfe", 0),
        U("\xff", 0),
        U("\x80", 0), /* lone continuation */
        U("\xbf", 0),
        U("\xc2", 0), /* truncated */
        U("\xe2\x82", 0),
        U("\xf0\x9f\x93", 0),
        U("\xc2\x41", 0), /* second byte not a continuation */
        U("\xe2\x28\xa1", 0),
        U("\xe2\x82\x28", 0),
        U("\xf0\x9f\x93\x28", 0),
        U("\xf0\x9f\x93\xc0", 0),
        U("\xe2\x82\xac-tail", 3), /* only the first sequence counts */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = cg_utf8_seq_len(cases[i].s, cases[i].n);
        if (got != cases[i].len)
            fail_msg("case %zu: seq_len %zu, want %zu", i, got, cases[i].len);
        /* A valid single sequence is valid as a whole; an invalid one not. */
        if (cases[i].len == cases[i].n)
            assert_int_equal(cg_utf8_valid(cases[i].s, cases[i].n), 1);
        else if (cases[i].len == 0)
            assert_int_equal(cg_utf8_valid(cases[i].s, cases[i].n), 0);
    }

    /* n bounds the read even when the bytes beyond would complete it. */
    assert_int_equal(cg_utf8_seq_len("\xe2\x82\xac", 2), 0);
    assert_int_equal(cg_utf8_seq_len("\xf0\x9f\x93\x9e", 3), 0);
    assert_int_equal(cg_utf8_seq_len("A", 0), 0);

    assert_int_equal(cg_utf8_valid("", 0), 1);
    assert_int_equal(cg_utf8_valid("plain ASCII", 11), 1);
    static const char mixed[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e \xf4\x8f\xbf\xbf.";
    assert_int_equal(cg_utf8_valid(mixed, sizeof mixed - 1), 1);
    /* NUL is a valid character: validity is about the bytes given. */
    assert_int_equal(cg_utf8_valid("a\0b", 3), 1);
    static const char mid[] = "valid \xed\xa0\x80 then valid";
    assert_int_equal(cg_utf8_valid(mid, sizeof mid - 1), 0);
    static const char cut[] = "ends in a cut \xf0\x9f\x93";
    assert_int_equal(cg_utf8_valid(cut, sizeof cut - 1), 0);
    assert_int_equal(cg_utf8_valid(mixed, sizeof mixed - 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_growth),       cmocka_unit_test(test_printf),
        cmocka_unit_test(test_take_reset),   cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_xml_escaping), cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
