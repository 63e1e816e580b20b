/*
 * Unit tests for form.c: parsing, encoding and percent coding.
 */
#include "harness.h"

#include "base/form.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a C string, asserting the expected outcome. */
static int parse(struct cg_form *f, const char *s)
{
    cg_form_init(f);
    const char *err = NULL;
    int rc = cg_form_parse(f, s, strlen(s), &err);
    if (rc == 0) {
        assert_null(err);
    } else {
        assert_non_null(err);
        assert_int_equal(f->n, 0);
        assert_null(f->pairs);
    }
    return rc;
}

static void assert_pair(const struct cg_form *f, size_t i, const char *k, const char *v)
{
    assert_true(i < f->n);
    assert_string_equal(f->pairs[i].key, k);
    assert_string_equal(f->pairs[i].value, v);
    assert_int_equal(f->pairs[i].key_len, strlen(k));
    assert_int_equal(f->pairs[i].value_len, strlen(v));
}

static void test_empty(void **state)
{
    (void)state;
    struct cg_form f;
    assert_int_equal(parse(&f, ""), 0);
    assert_int_equal(f.n, 0);
    assert_null(cg_form_get(&f, "a"));
    assert_int_equal(cgt_form_count(&f, "a"), 0);
    cg_form_free(&f);

    /* Only separators: every segment is empty. */
    assert_int_equal(parse(&f, "&&&"), 0);
    assert_int_equal(f.n, 0);
    cg_form_free(&f);

    /* NULL input with zero length is an empty form too. */
    cg_form_init(&f);
    assert_int_equal(cg_form_parse(&f, NULL, 0, NULL), 0);
    assert_int_equal(f.n, 0);
    cg_form_free(&f);
}

static void test_simple(void **state)
{
    (void)state;
    struct cg_form f;
    assert_int_equal(parse(&f, "a=1&b=two&c=3"), 0);
    assert_int_equal(f.n, 3);
    assert_pair(&f, 0, "a", "1");
    assert_pair(&f, 1, "b", "two");
    assert_pair(&f, 2, "c", "3");
    assert_string_equal(cg_form_get(&f, "b"), "two");
    assert_null(cg_form_get(&f, "B"));
    cg_form_free(&f);
    assert_int_equal(f.n, 0);
    assert_null(f.pairs);
}

static void test_empty_segments_and_values(void **state)
{
    (void)state;
    struct cg_form f;
    assert_int_equal(parse(&f, "a=1&&b="), 0);
    assert_int_equal(f.n, 2);
    assert_pair(&f, 0, "a", "1");
    assert_pair(&f, 1, "b", "");
    cg_form_free(&f);

    assert_int_equal(parse(&f, "&a=1&"), 0);
    assert_int_equal(f.n, 1);
    assert_pair(&f, 0, "a", "1");
    cg_form_free(&f);

    /* A key without '=' has the empty value. */
    assert_int_equal(parse(&f, "flag&x=1&other"), 0);
    assert_int_equal(f.n, 3);
    assert_pair(&f, 0, "flag", "");
    assert_pair(&f, 1, "x", "1");
    assert_pair(&f, 2, "other", "");
    cg_form_free(&f);

    /* Empty key, and '=' inside the value. */
    assert_int_equal(parse(&f, "=v&k=a=b"), 0);
    assert_int_equal(f.n, 2);
    assert_pair(&f, 0, "", "v");
    assert_pair(&f, 1, "k", "a=b");
    cg_form_free(&f);
}

static void test_plus_and_percent(void **state)
{
    (void)state;
    struct cg_form f;
    assert_int_equal(parse(&f, "msg=hello+world&to=%2B14155551212&lit=%2b&sp=%20"), 0);
    assert_pair(&f, 0, "msg", "hello world");
    assert_pair(&f, 1, "to", "+14155551212");
    assert_pair(&f, 2, "lit", "+");
    assert_pair(&f, 3, "sp", " ");
    cg_form_free(&f);

    assert_int_equal(parse(&f, "a+b=c+d+"), 0);
    assert_pair(&f, 0, "a b", "c d ");
    cg_form_free(&f);

    /* Encoded separators do not split. */
    assert_int_equal(parse(&f, "k%3D=v%26w"), 0);
    assert_int_equal(f.n, 1);
    assert_pair(&f, 0, "k=", "v&w");
    cg_form_free(&f);

    /* Valid multi-byte UTF-8, raw and encoded. */
    assert_int_equal(parse(&f, "name=Jos%C3%A9&city=K\xc3\xb6ln&e=%F0%9F%98%80"), 0);
    assert_pair(&f, 0, "name", "Jos\xc3\xa9");
    assert_pair(&f, 1, "city", "K\xc3\xb6ln");
    assert_pair(&f, 2, "e", "\xf0\x9f\x98\x80");
    cg_form_free(&f);
}

static void test_malformed(void **state)
{
    (void)state;
    struct cg_form f;
    const char *bad[] = {
        "a=%zz", "a=%4",       "a=%",          "a=1&b=%g0",
        "%zz=1", "a=%00",      "%00=1",        "a=%C3%28",
        "a=%C3", "a=\xc3\x28", "a=%ED%A0%80",  /* surrogate */ "a=%C0%AF", /* overlong */
        "a=%FF", "k%C3=1",     "a=1&b=2&c=%4", "a=%%41",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(&f, bad[i]) != -1)
            fail_msg("accepted malformed input #%zu", i);
        cg_form_free(&f);
    }
}

static void test_error_empties_form(void **state)
{
    (void)state;
    struct cg_form f;
    cg_form_init(&f);
    cg_form_add(&f, "pre", "existing");
    const char *s = "a=1&b=%zz";
    const char *err = NULL;
    assert_int_equal(cg_form_parse(&f, s, strlen(s), &err), -1);
    assert_non_null(err);
    assert_int_equal(f.n, 0);
    /* The form is usable again after a failed parse. */
    assert_int_equal(cg_form_parse(&f, "x=1", 3, NULL), 0);
    assert_pair(&f, 0, "x", "1");
    cg_form_free(&f);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    struct cg_form f;
    cg_form_init(&f);
    const char s[] = "a=1\0b=2";
    assert_int_equal(cg_form_parse(&f, s, sizeof(s) - 1, NULL), -1);
    cg_form_free(&f);
}

static void test_length_respected(void **state)
{
    (void)state;
    struct cg_form f;
    cg_form_init(&f);
    /* Only the first 3 bytes are input; no terminator is needed. */
    const char s[] = {'a', '=', '1', '&', 'b'};
    assert_int_equal(cg_form_parse(&f, s, 3, NULL), 0);
    assert_int_equal(f.n, 1);
    assert_pair(&f, 0, "a", "1");
    cg_form_free(&f);
    /* A '%' cut off by the length is malformed even if bytes follow. */
    cg_form_init(&f);
    assert_int_equal(cg_form_parse(&f, "a=%41", 4, NULL), -1);
    cg_form_free(&f);
}

static void test_repeated_keys(void **state)
{
    (void)state;
    struct cg_form f;
    assert_int_equal(parse(&f, "d=5678&x=1&d=1234&d=1234"), 0);
    assert_int_equal(f.n, 4);
    assert_int_equal(cgt_form_count(&f, "d"), 3);
    assert_int_equal(cgt_form_count(&f, "x"), 1);
    assert_int_equal(cgt_form_count(&f, "y"), 0);
    assert_string_equal(cg_form_get(&f, "d"), "5678");
    assert_pair(&f, 0, "d", "5678");
    assert_pair(&f, 2, "d", "1234");
    assert_pair(&f, 3, "d", "1234");
    cg_form_free(&f);
}

static void test_max_pairs(void **state)
{
    (void)state;
    struct cg_form f;
    char *s = malloc(CG_FORM_MAX_PAIRS * 8 + 16);
    assert_non_null(s);
    size_t len = 0;
    for (int i = 0; i < CG_FORM_MAX_PAIRS; i++)
        len += (size_t)sprintf(s + len, "%sk%d=1", i ? "&" : "", i);
    cg_form_init(&f);
    assert_int_equal(cg_form_parse(&f, s, len, NULL), 0);
    assert_int_equal(f.n, CG_FORM_MAX_PAIRS);
    assert_string_equal(f.pairs[CG_FORM_MAX_PAIRS - 1].key, "k511");
    cg_form_free(&f);

    /* Trailing empty segments do not count. */
    memcpy(s + len, "&&", 3);
    assert_int_equal(cg_form_parse(&f, s, len + 2, NULL), 0);
    assert_int_equal(f.n, CG_FORM_MAX_PAIRS);
    cg_form_free(&f);

    memcpy(s + len, "&x", 3);
    const char *err = NULL;
    assert_int_equal(cg_form_parse(&f, s, len + 2, &err), -1);
    assert_non_null(err);
    assert_int_equal(f.n, 0);
    cg_form_free(&f);
    free(s);
}

static void test_add_and_encode(void **state)
{
    (void)state;
    struct cg_form f;
    cg_form_init(&f);
    char *s = cg_form_encode(&f);
    assert_string_equal(s, "");
    free(s);

    cg_form_add(&f, "To", "+14155551212");
    cg_form_add(&f, "Url", "https://x.test/a?b=c&d=e f");
    cg_form_add(&f, "empty", "");
    cg_form_add(&f, "safe", "AZaz09-._~");
    cg_form_add(&f, "utf8", "\xc3\xa9");
    s = cg_form_encode(&f);
    assert_string_equal(s, "To=%2B14155551212&Url=https%3A%2F%2Fx.test%2Fa%3Fb%3Dc%26d%3De+f"
                           "&empty=&safe=AZaz09-._~&utf8=%C3%A9");
    free(s);
    assert_string_equal(cg_form_get(&f, "Url"), "https://x.test/a?b=c&d=e f");
    cg_form_free(&f);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct cg_form f, g;
    cg_form_init(&f);
    cg_form_add(&f, "a b", "c+d");
    cg_form_add(&f, "k", "=&%?#");
    cg_form_add(&f, "k", "");
    cg_form_add(&f, "", "empty key");
    cg_form_add(&f, "uni", "\xe2\x82\xac \xf0\x9f\x98\x80");
    char *s = cg_form_encode(&f);
    assert_int_equal(parse(&g, s), 0);
    assert_int_equal(g.n, f.n);
    for (size_t i = 0; i < f.n; i++)
        assert_pair(&g, i, f.pairs[i].key, f.pairs[i].value);
    /* Encoding the parsed form gives the same bytes again. */
    char *s2 = cg_form_encode(&g);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    cg_form_free(&f);
    cg_form_free(&g);
}

static void test_pct_decode(void **state)
{
    (void)state;
    size_t n = 99;
    char *s = cg_pct_decode("a+b%20c%2Fd", 11, 0, &n);
    assert_non_null(s);
    assert_string_equal(s, "a+b c/d");
    assert_int_equal(n, 7);
    free(s);
    s = cg_pct_decode("a+b", 3, 1, &n);
    assert_string_equal(s, "a b");
    free(s);
    s = cg_pct_decode("", 0, 1, &n);
    assert_string_equal(s, "");
    assert_int_equal(n, 0);
    free(s);
    /* out_len is optional. */
    s = cg_pct_decode("%41%62", 6, 0, NULL);
    assert_string_equal(s, "Ab");
    free(s);
    /* Invalid UTF-8 is not decode's concern; only the form parser checks. */
    s = cg_pct_decode("%FF", 3, 0, &n);
    assert_non_null(s);
    assert_int_equal((unsigned char)s[0], 0xff);
    assert_int_equal(n, 1);
    free(s);

    assert_null(cg_pct_decode("%zz", 3, 0, NULL));
    assert_null(cg_pct_decode("%4", 2, 0, NULL));
    assert_null(cg_pct_decode("%", 1, 0, NULL));
    assert_null(cg_pct_decode("a%00b", 5, 0, NULL));
    assert_null(cg_pct_decode("a\0b", 3, 0, NULL));
    assert_null(cg_pct_decode("%4g", 3, 0, NULL));
}

static void test_pct_encode(void **state)
{
    (void)state;
    char *s = cg_pct_encode("a b+c/d~e", 9);
    assert_string_equal(s, "a%20b%2Bc%2Fd~e");
    free(s);
    s = cg_pct_encode("", 0);
    assert_string_equal(s, "");
    free(s);
    s = cg_pct_encode("\xc3\xa9\x01\x7f", 4);
    assert_string_equal(s, "%C3%A9%01%7F");
    free(s);
    /* Only len bytes are read. */
    s = cg_pct_encode("abc", 2);
    assert_string_equal(s, "ab");
    free(s);

    /* Round trip through path-mode decoding. */
    const char *orig = "/p?q=1&r=\xe2\x82\xac+";
    s = cg_pct_encode(orig, strlen(orig));
    size_t n;
    char *d = cg_pct_decode(s, strlen(s), 0, &n);
    assert_string_equal(d, orig);
    assert_int_equal(n, strlen(orig));
    free(s);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_empty_segments_and_values),
        cmocka_unit_test(test_plus_and_percent),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_error_empties_form),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_length_respected),
        cmocka_unit_test(test_repeated_keys),
        cmocka_unit_test(test_max_pairs),
        cmocka_unit_test(test_add_and_encode),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_pct_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
