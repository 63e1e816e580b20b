/*
 * Unit tests for twsig.c, built around the request-validation vectors that
 * Twilio's own helper libraries test against.
 */
#include "harness.h"

#include "base/crypto.h"
#include "twilio/signature.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN    "12345"
#define BASE_URL "https://mycompany.com/myapp.php?foo=1&bar=2"
#define BASE_SIG "RSOYDt4T1cUTdK1PDd93/VVr8B8="

#define JSON_BODY      "{\"property\": \"value\", \"boolean\": true}"
#define JSON_BODY_HASH "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
#define EMPTY_OBJ_HASH "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

static void base_params(struct cg_form *f)
{
    cg_form_init(f);
    cg_form_add(f, "CallSid", "CA1234567890ABCDE");
    cg_form_add(f, "Caller", "+14158675309");
    cg_form_add(f, "Digits", "1234");
    cg_form_add(f, "From", "+14158675309");
    cg_form_add(f, "To", "+18005551212");
}

static void assert_sig(const char *url, const struct cg_form *params, const char *want)
{
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(TOKEN, url, params, sig), 0);
    assert_string_equal(sig, want);
    assert_int_equal(strlen(sig), CG_TWSIG_LEN);
}

static void test_base_vector(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    assert_sig(BASE_URL, &f, BASE_SIG);
    assert_true(cg_twsig_validate(TOKEN, BASE_URL, &f, BASE_SIG));
    cg_form_free(&f);
}

/* The signed string is the URL followed by sorted names and values; with
 * no params the same HMAC over that exact string must come out. */
static void test_base_signed_string(void **state)
{
    (void)state;
    const char *signed_str = "https://mycompany.com/myapp.php?foo=1&bar=2"
                             "CallSidCA1234567890ABCDECaller+14158675309Digits1234"
                             "From+14158675309To+18005551212";
    assert_sig(signed_str, NULL, BASE_SIG);
}

/* Param order in the request must not matter. */
static void test_param_order_irrelevant(void **state)
{
    (void)state;
    struct cg_form f;
    cg_form_init(&f);
    cg_form_add(&f, "To", "+18005551212");
    cg_form_add(&f, "From", "+14158675309");
    cg_form_add(&f, "Digits", "1234");
    cg_form_add(&f, "Caller", "+14158675309");
    cg_form_add(&f, "CallSid", "CA1234567890ABCDE");
    assert_sig(BASE_URL, &f, BASE_SIG);
    cg_form_free(&f);
}

static void test_parsed_body_vector(void **state)
{
    (void)state;
    const char *body = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234"
                       "&From=%2B14158675309&To=%2B18005551212";
    struct cg_form f;
    cg_form_init(&f);
    assert_int_equal(cg_form_parse(&f, body, strlen(body), NULL), 0);
    assert_true(cg_twsig_validate(TOKEN, BASE_URL, &f, BASE_SIG));
    cg_form_free(&f);
}

static void test_https_explicit_443(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    const char *url = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    assert_sig(url, &f, "kvajT1Ptam85bY51eRf/AJRuM3w=");
    /* Either form of the URL validates either signature. */
    assert_true(cg_twsig_validate(TOKEN, url, &f, "kvajT1Ptam85bY51eRf/AJRuM3w="));
    assert_true(cg_twsig_validate(TOKEN, url, &f, BASE_SIG));
    assert_true(cg_twsig_validate(TOKEN, BASE_URL, &f, "kvajT1Ptam85bY51eRf/AJRuM3w="));
    cg_form_free(&f);
}

static void test_http_custom_port(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    const char *url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert_sig(url, &f, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
    assert_true(cg_twsig_validate(TOKEN, url, &f, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
    cg_form_free(&f);
}

static void test_http_explicit_80(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    const char *url = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
    assert_sig(url, &f, "0ZXoZLH/DfblKGATFgpif+LLRf4=");
    assert_true(cg_twsig_validate(TOKEN, url, &f, "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    /* The port-less http URL validates through the added ":80". */
    assert_true(cg_twsig_validate(TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", &f,
                                  "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    cg_form_free(&f);
}

static void test_https_custom_port_validates_base(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    assert_true(
        cg_twsig_validate(TOKEN, "https://mycompany.com:1234/myapp.php?foo=1&bar=2", &f, BASE_SIG));
    cg_form_free(&f);
}

static void array_params(struct cg_form *f, int third_duplicate)
{
    cg_form_init(f);
    cg_form_add(f, "Sid", "CA123");
    cg_form_add(f, "SidAccount", "AC123");
    cg_form_add(f, "Digits", "5678");
    cg_form_add(f, "Digits", "1234");
    if (third_duplicate)
        cg_form_add(f, "Digits", "1234");
}

static void test_repeated_params(void **state)
{
    (void)state;
    const char *want = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";
    for (int dup = 0; dup <= 1; dup++) {
        struct cg_form f;
        array_params(&f, dup);
        assert_sig(BASE_URL, &f, want);
        assert_true(cg_twsig_validate(TOKEN, BASE_URL, &f, want));
        cg_form_free(&f);
    }
    assert_sig("https://mycompany.com/myapp.php?foo=1&bar=2"
               "Digits1234Digits5678SidCA123SidAccountAC123",
               NULL, want);
}

static void test_userinfo(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    const char *u1 = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    const char *u2 = "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2";
    const char *u3 = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
    assert_sig(u1, &f, "CukzLTc1tT5dXEDIHm/tKBanW10=");
    assert_sig(u2, &f, "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=");
    assert_sig(u3, &f, "2YRLlVAflCqxaNicjMpJcSTgzSs=");
    assert_true(cg_twsig_validate(TOKEN, u1, &f, "CukzLTc1tT5dXEDIHm/tKBanW10="));
    /* Port variants keep the userinfo. */
    assert_true(cg_twsig_validate(TOKEN, u1, &f, "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="));
    assert_true(cg_twsig_validate(TOKEN, u2, &f, "CukzLTc1tT5dXEDIHm/tKBanW10="));
    assert_true(cg_twsig_validate(TOKEN, u3, &f, "2YRLlVAflCqxaNicjMpJcSTgzSs="));
    /* Userinfo is part of what is signed. */
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, "CukzLTc1tT5dXEDIHm/tKBanW10="));
    assert_false(cg_twsig_validate(TOKEN, u1, &f, BASE_SIG));
    cg_form_free(&f);
}

static void test_encoded_query_not_reencoded(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    const char *url = "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing";
    assert_sig(url, &f, "TfZzewPq8wqrGlMfyAud8+/IvJ0=");
    assert_true(cg_twsig_validate(TOKEN, url, &f, "TfZzewPq8wqrGlMfyAud8+/IvJ0="));
    cg_form_free(&f);
}

static void test_dotted_repeated_params(void **state)
{
    (void)state;
    const char *want = "83O6e2vORAoJHUNzJjDWN1jz+BA=";
    for (int order = 0; order <= 1; order++) {
        struct cg_form f;
        cg_form_init(&f);
        cg_form_add(&f, "MessagingBinding.Address", order ? "+1415xxxxxxx" : "+1325xxxxxxx");
        cg_form_add(&f, "MessagingBinding.Address", order ? "+1325xxxxxxx" : "+1415xxxxxxx");
        assert_sig(BASE_URL, &f, want);
        assert_true(cg_twsig_validate(TOKEN, BASE_URL, &f, want));
        cg_form_free(&f);
    }
}

static void test_sha256_hex(void **state)
{
    (void)state;
    char out[65];
    cg_sha256_hex(JSON_BODY, strlen(JSON_BODY), out);
    assert_string_equal(out, JSON_BODY_HASH);
    cg_sha256_hex("{}", 2, out);
    assert_string_equal(out, EMPTY_OBJ_HASH);
    cg_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cg_sha256_hex(NULL, 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_json_body_vectors(void **state)
{
    (void)state;
    const char *u1 = BASE_URL "&bodySHA256=" JSON_BODY_HASH;
    const char *u2 = "https://mycompany.com/myapp.php?bodySHA256=" JSON_BODY_HASH;
    assert_sig(u1, NULL, "a9nBmqA0ju/hNViExpshrM61xv4=");
    assert_sig(u2, NULL, "y77kIzt2vzLz71DgmJGsen2scGs=");
}

static void test_json_empty_object_default_port(void **state)
{
    (void)state;
    const char *plain = BASE_URL "&bodySHA256=" EMPTY_OBJ_HASH;
    const char *with_port =
        "https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256=" EMPTY_OBJ_HASH;
    assert_sig(with_port, NULL, "Ldidvp12m26NI7eqEvxnEpkd9Hc=");
    assert_sig(plain, NULL, "rw/jVviOgicj2+kHZULvebnA4ag=");
}

static void test_negative(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8="));
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, "rSOYDt4T1cUTdK1PDd93/VVr8B8="));
    assert_false(cg_twsig_validate("54321", BASE_URL, &f, BASE_SIG));
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, NULL));
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, ""));
    assert_false(cg_twsig_validate(NULL, BASE_URL, &f, BASE_SIG));
    assert_false(cg_twsig_validate("", BASE_URL, &f, BASE_SIG));
    assert_false(cg_twsig_validate(TOKEN, NULL, &f, BASE_SIG));
    /* Params are signed, so dropping them fails. */
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, NULL, BASE_SIG));
    /* Different path or query fails. */
    assert_false(
        cg_twsig_validate(TOKEN, "https://mycompany.com/myapp.php?foo=1&bar=3", &f, BASE_SIG));
    /* The scheme is signed: http instead of https fails. */
    assert_false(
        cg_twsig_validate(TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", &f, BASE_SIG));
    cg_form_free(&f);

    /* A changed param value fails. */
    base_params(&f);
    free(f.pairs[2].value);
    f.pairs[2].value = strdup("1235");
    assert_non_null(f.pairs[2].value);
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, BASE_SIG));
    cg_form_free(&f);

    /* An extra param fails. */
    base_params(&f);
    cg_form_add(&f, "Extra", "");
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, BASE_SIG));
    cg_form_free(&f);

    /* A repeated value with a new distinct value fails. */
    base_params(&f);
    cg_form_add(&f, "Digits", "9");
    assert_false(cg_twsig_validate(TOKEN, BASE_URL, &f, BASE_SIG));
    cg_form_free(&f);
}

/* An exact duplicate of a pair (same name, same value) is signed once. */
static void test_exact_duplicate_ignored(void **state)
{
    (void)state;
    struct cg_form f;
    base_params(&f);
    cg_form_add(&f, "To", "+18005551212");
    cg_form_add(&f, "CallSid", "CA1234567890ABCDE");
    assert_sig(BASE_URL, &f, BASE_SIG);
    cg_form_free(&f);
}

/* IPv6 hosts: the port is found after the closing bracket. */
static void test_ipv6_port_variants(void **state)
{
    (void)state;
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(TOKEN, "https://[::1]/x", NULL, sig), 0);
    assert_true(cg_twsig_validate(TOKEN, "https://[::1]:443/x", NULL, sig));
    assert_true(cg_twsig_validate(TOKEN, "https://[::1]:8443/x", NULL, sig));
    assert_int_equal(cg_twsig_compute(TOKEN, "https://[::1]:443/x", NULL, sig), 0);
    assert_true(cg_twsig_validate(TOKEN, "https://[::1]/x", NULL, sig));
    /* Port variants also work with no path at all. */
    assert_int_equal(cg_twsig_compute(TOKEN, "https://example.com:443", NULL, sig), 0);
    assert_true(cg_twsig_validate(TOKEN, "https://example.com", NULL, sig));
    /* A URL without a scheme is only checked as given. */
    assert_int_equal(cg_twsig_compute(TOKEN, "example.com/x", NULL, sig), 0);
    assert_true(cg_twsig_validate(TOKEN, "example.com/x", NULL, sig));
}

/* Names sort bytewise: "CallSid" < "Caller" since 'S' < 'e', and a name
 * that is a prefix of another sorts first. */
static void test_bytewise_sort(void **state)
{
    (void)state;
    struct cg_form f;
    char a[CG_TWSIG_LEN + 1], b[CG_TWSIG_LEN + 1];
    cg_form_init(&f);
    cg_form_add(&f, "b", "1");
    cg_form_add(&f, "B", "2");
    cg_form_add(&f, "a", "3");
    cg_form_add(&f, "ab", "4");
    cg_form_add(&f, "\xc3\xa9", "5");
    assert_int_equal(cg_twsig_compute(TOKEN, "u", &f, a), 0);
    assert_int_equal(cg_twsig_compute(TOKEN,
                                      "uB2a3ab4b1\xc3\xa9"
                                      "5",
                                      NULL, b),
                     0);
    assert_string_equal(a, b);
    cg_form_free(&f);
}

static void test_compute_errors(void **state)
{
    (void)state;
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(NULL, BASE_URL, NULL, sig), -1);
    assert_string_equal(sig, "");
    assert_int_equal(cg_twsig_compute(TOKEN, NULL, NULL, sig), -1);
    /* An empty token is a valid HMAC key; only validation refuses it. */
    assert_int_equal(cg_twsig_compute("", BASE_URL, NULL, sig), 0);
    assert_int_equal(strlen(sig), CG_TWSIG_LEN);
    assert_false(cg_twsig_validate("", BASE_URL, NULL, sig));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_vector),
        cmocka_unit_test(test_base_signed_string),
        cmocka_unit_test(test_param_order_irrelevant),
        cmocka_unit_test(test_parsed_body_vector),
        cmocka_unit_test(test_https_explicit_443),
        cmocka_unit_test(test_http_custom_port),
        cmocka_unit_test(test_http_explicit_80),
        cmocka_unit_test(test_https_custom_port_validates_base),
        cmocka_unit_test(test_repeated_params),
        cmocka_unit_test(test_userinfo),
        cmocka_unit_test(test_encoded_query_not_reencoded),
        cmocka_unit_test(test_dotted_repeated_params),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_json_body_vectors),
        cmocka_unit_test(test_json_empty_object_default_port),
        cmocka_unit_test(test_negative),
        cmocka_unit_test(test_exact_duplicate_ignored),
        cmocka_unit_test(test_ipv6_port_variants),
        cmocka_unit_test(test_bytewise_sort),
        cmocka_unit_test(test_compute_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
