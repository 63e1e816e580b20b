/*
 * Unit tests for json.c: bounded parsing and the path getters.
 */
#include "harness.h"

#include "base/json.h"

#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *s, int depth, char *err, size_t errlen)
{
    return cg_json_parse(s, strlen(s), depth, err, errlen);
}

static void assert_refused(const char *s, int depth)
{
    char err[256] = "";
    json_t *v = parse(s, depth, err, sizeof(err));
    if (v != NULL) {
        json_decref(v);
        fail_msg("accepted invalid JSON #%s#", s);
    }
    assert_true(strlen(err) > 0);
}

static void test_parse_ok(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *v =
        parse("{\"a\": 1, \"b\": [true, null, \"x\"]}", CG_JSON_MAX_DEPTH, err, sizeof(err));
    assert_non_null(v);
    assert_true(json_is_object(v));
    json_decref(v);
    v = parse("  [ ]  \n", CG_JSON_MAX_DEPTH, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    /* Only len bytes are parsed; what follows is not trailing garbage. */
    const char *s = "{\"k\":1}garbage";
    v = cg_json_parse(s, 7, CG_JSON_MAX_DEPTH, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
}

static void test_parse_errors(void **state)
{
    (void)state;
    assert_refused("", CG_JSON_MAX_DEPTH);
    assert_refused("   ", CG_JSON_MAX_DEPTH);
    assert_refused("{", CG_JSON_MAX_DEPTH);
    assert_refused("{\"a\":1", CG_JSON_MAX_DEPTH);
    assert_refused("{\"a\":1}}", CG_JSON_MAX_DEPTH);
    assert_refused("{\"a\":1} x", CG_JSON_MAX_DEPTH);
    assert_refused("{\"a\":1}{\"b\":2}", CG_JSON_MAX_DEPTH);
    assert_refused("[1,]", CG_JSON_MAX_DEPTH);
    assert_refused("{'a':1}", CG_JSON_MAX_DEPTH);
    assert_refused("{\"a\":NaN}", CG_JSON_MAX_DEPTH);
    assert_refused("{\"a\":\"\xc3\x28\"}", CG_JSON_MAX_DEPTH);
    assert_refused("{\"a\":\"\\u0000\"}", CG_JSON_MAX_DEPTH);
    /* The top level must be an object or an array. */
    assert_refused("42", CG_JSON_MAX_DEPTH);
    assert_refused("\"s\"", CG_JSON_MAX_DEPTH);

    char err[256] = "";
    const char nul[] = "{\"a\":1}\0";
    assert_null(cg_json_parse(nul, sizeof(nul) - 1, CG_JSON_MAX_DEPTH, err, sizeof(err)));
    assert_null(cg_json_parse(NULL, 0, CG_JSON_MAX_DEPTH, err, sizeof(err)));
    /* A NULL error buffer is allowed. */
    assert_null(cg_json_parse("{", 1, CG_JSON_MAX_DEPTH, NULL, 0));
}

static void test_error_text_has_no_input(void **state)
{
    (void)state;
    char err[256] = "";
    const char *s = "{\"From\": \"+14155551212\", oops}";
    assert_null(parse(s, CG_JSON_MAX_DEPTH, err, sizeof(err)));
    assert_null(strstr(err, "14155551212"));
    assert_null(strstr(err, "oops"));
    assert_non_null(strstr(err, "line 1"));
}

static void test_duplicates(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(parse("{\"a\":1,\"a\":2}", CG_JSON_MAX_DEPTH, err, sizeof(err)));
    assert_non_null(strstr(err, "duplicate"));
    assert_refused("{\"x\":{\"a\":1,\"b\":2,\"a\":1}}", CG_JSON_MAX_DEPTH);
    /* Same key in different objects is fine. */
    json_t *v = parse("[{\"a\":1},{\"a\":2}]", CG_JSON_MAX_DEPTH, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
}

/* Builds depth levels of nesting alternating '[' and '{"k":'. */
static char *nested(int depth)
{
    size_t cap = (size_t)depth * 6 + 8;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        if (i % 2 == 0) {
            s[n++] = '[';
        } else {
            memcpy(s + n, "{\"k\":", 5);
            n += 5;
        }
    }
    s[n++] = '1';
    for (int i = depth - 1; i >= 0; i--)
        s[n++] = (i % 2 == 0) ? ']' : '}';
    s[n] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    char err[256] = "";
    char *s = nested(CG_JSON_MAX_DEPTH);
    json_t *v = parse(s, CG_JSON_MAX_DEPTH, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    free(s);

    s = nested(CG_JSON_MAX_DEPTH + 1);
    assert_null(parse(s, CG_JSON_MAX_DEPTH, err, sizeof(err)));
    assert_non_null(strstr(err, "nesting"));
    free(s);

    /* Far beyond jansson's own limit: refused before jansson sees it. */
    s = nested(100000);
    assert_null(parse(s, CG_JSON_MAX_DEPTH, err, sizeof(err)));
    assert_non_null(strstr(err, "nesting"));
    free(s);

    /* Siblings do not add up: depth is nesting, not count. */
    v = parse("[[1],[2],[3],{\"a\":4},[]]", 2, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    assert_refused("[[[1]]]", 2);
    assert_refused("[]", 0);
}

static void test_depth_ignores_strings(void **state)
{
    (void)state;
    char err[256] = "";
    /* Brackets inside strings, including after escaped quotes and
     * backslashes, do not count. */
    json_t *v = parse("{\"a\":\"[[[[{{{{\"}", 1, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    v = parse("{\"a\":\"\\\"[[[[\"}", 1, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    v = parse("{\"a\":\"\\\\\",\"b\":\"[[\"}", 1, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    /* After an escaped backslash the quote does close the string, so the
     * bracket that follows counts. */
    assert_refused("{\"a\":\"\\\\\",\"b\":[[1]]}", 2);
    /* Closing brackets in strings do not lower the count either. */
    assert_refused("[\"]]]]\",[[1]]]", 2);
}

static const char *doc = "{\"message\": {\"type\": \"status-update\", \"call\": {\"id\": \"c-1\", "
                         "\"n\": 3, \"r\": 3.0, \"f\": 2.5, \"big\": 1e300, \"neg\": -7, "
                         "\"ok\": true, \"no\": false, \"nil\": null, \"arr\": [1], "
                         "\"s\": \"12\"}}, \"top\": 1, \"a.b\": 5}";

static json_t *load_doc(void)
{
    char err[256] = "";
    json_t *v = parse(doc, CG_JSON_MAX_DEPTH, err, sizeof(err));
    if (v == NULL)
        fail_msg("doc did not parse: %s", err);
    return v;
}

static void test_path_and_str(void **state)
{
    (void)state;
    json_t *root = load_doc();
    assert_string_equal(cg_json_str(root, "message.type"), "status-update");
    assert_string_equal(cg_json_str(root, "message.call.id"), "c-1");
    assert_ptr_equal(cg_json_path(root, ""), root);
    assert_non_null(cg_json_path(root, "message.call"));
    assert_true(json_is_object(cg_json_path(root, "message.call")));
    /* Missing steps, non-objects along the way, empty segments. */
    assert_null(cg_json_path(root, "message.nope"));
    assert_null(cg_json_path(root, "message.call.id.more"));
    assert_null(cg_json_path(root, "message.call.arr.0"));
    assert_null(cg_json_path(root, "message..type"));
    assert_null(cg_json_path(root, ".message"));
    assert_null(cg_json_path(root, "message."));
    assert_null(cg_json_path(root, "a.b")); /* dots always split */
    assert_null(cg_json_path(NULL, "message"));
    assert_null(cg_json_path(root, NULL));
    /* Wrong types read as absent. */
    assert_null(cg_json_str(root, "message.call.n"));
    assert_null(cg_json_str(root, "message.call.nil"));
    assert_null(cg_json_str(root, "message.call"));
    assert_null(cg_json_str(root, "missing"));
    assert_null(cg_json_str(NULL, "x"));
    json_decref(root);

    /* A path into an array root finds nothing. */
    json_t *arr = json_array();
    assert_null(cg_json_path(arr, "x"));
    json_decref(arr);
}

static void test_int(void **state)
{
    (void)state;
    json_t *root = load_doc();
    long long n = 99;
    assert_int_equal(cg_json_int(root, "message.call.n", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(cg_json_int(root, "message.call.neg", &n), 0);
    assert_int_equal(n, -7);
    /* An integral real counts. */
    n = 99;
    assert_int_equal(cg_json_int(root, "message.call.r", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(cg_json_int(root, "top", &n), 0);
    assert_int_equal(n, 1);
    /* Fractions, out-of-range reals and other types do not; out is kept. */
    n = 42;
    assert_int_equal(cg_json_int(root, "message.call.f", &n), -1);
    assert_int_equal(cg_json_int(root, "message.call.big", &n), -1);
    assert_int_equal(cg_json_int(root, "message.call.s", &n), -1);
    assert_int_equal(cg_json_int(root, "message.call.ok", &n), -1);
    assert_int_equal(cg_json_int(root, "message.call.nil", &n), -1);
    assert_int_equal(cg_json_int(root, "message.call.arr", &n), -1);
    assert_int_equal(cg_json_int(root, "missing", &n), -1);
    assert_int_equal(n, 42);
    json_decref(root);

    /* The edges of the long long range. */
    json_t *o = json_object();
    assert_int_equal(json_object_set_new(o, "min", json_real(-9223372036854775808.0)), 0);
    assert_int_equal(json_object_set_new(o, "over", json_real(9223372036854775808.0)), 0);
    assert_int_equal(json_object_set_new(o, "negz", json_real(-0.0)), 0);
    assert_int_equal(cg_json_int(o, "min", &n), 0);
    assert_true(n == (-9223372036854775807LL - 1));
    assert_int_equal(cg_json_int(o, "over", &n), -1);
    assert_int_equal(cg_json_int(o, "negz", &n), 0);
    assert_int_equal(n, 0);
    json_decref(o);
}

static void test_num_and_bool(void **state)
{
    (void)state;
    json_t *root = load_doc();
    double d = 0;
    assert_int_equal(cg_json_num(root, "message.call.f", &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(cg_json_num(root, "message.call.n", &d), 0);
    assert_true(d == 3.0);
    assert_int_equal(cg_json_num(root, "message.call.s", &d), -1);
    assert_int_equal(cg_json_num(root, "message.call.ok", &d), -1);
    assert_int_equal(cg_json_num(root, "missing", &d), -1);

    int b = 7;
    assert_int_equal(cg_json_bool(root, "message.call.ok", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(cg_json_bool(root, "message.call.no", &b), 0);
    assert_int_equal(b, 0);
    b = 7;
    assert_int_equal(cg_json_bool(root, "message.call.n", &b), -1);
    assert_int_equal(cg_json_bool(root, "message.call.nil", &b), -1);
    assert_int_equal(cg_json_bool(root, "message.call.s", &b), -1);
    assert_int_equal(cg_json_bool(root, "missing", &b), -1);
    assert_int_equal(b, 7);
    json_decref(root);
}

static void test_dumps(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *v =
        parse("{ \"a\" : [ 1 , 2 ] , \"b\" : \"x\\u00e9\" }", CG_JSON_MAX_DEPTH, err, sizeof(err));
    assert_non_null(v);
    char *s = cg_json_dumps(v);
    assert_string_equal(s, "{\"a\":[1,2],\"b\":\"x\xc3\xa9\"}");
    free(s);
    json_decref(v);

    /* Scalars and NULL serialise too. */
    json_t *n = json_integer(5);
    s = cg_json_dumps(n);
    assert_string_equal(s, "5");
    free(s);
    json_decref(n);
    json_t *str = json_string("q\"");
    s = cg_json_dumps(str);
    assert_string_equal(s, "\"q\\\"\"");
    free(s);
    json_decref(str);
    s = cg_json_dumps(NULL);
    assert_string_equal(s, "null");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_error_text_has_no_input),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_depth_ignores_strings),
        cmocka_unit_test(test_path_and_str),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_num_and_bool),
        cmocka_unit_test(test_dumps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
