/*
 * test_prims.c - the primitives every module shares: the intrusive list,
 * the retry delay, the crypto helpers (digests, HMAC, hex, Base64, the
 * constant-time comparison) and the error-buffer setter.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/backoff.h"
#include "base/crypto.h"
#include "base/err.h"
#include "base/list.h"

#include <string.h>

struct item {
    int v;
    struct cg_list link;
};

static void collect(struct cg_list *head, int *out, int *n)
{
    struct cg_list *it, *tmp;
    *n = 0;
    cg_list_foreach_safe (it, tmp, head) {
        out[(*n)++] = cg_list_entry(it, struct item, link)->v;
    }
}

static void test_list(void **state)
{
    (void)state;
    struct cg_list head;
    cg_list_init(&head);
    assert_true(cg_list_empty(&head));
    assert_null(cg_list_first(&head));
    struct item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        cg_list_init(&it[i].link);
        assert_false(cg_list_linked(&it[i].link));
    }
    cg_list_push_back(&head, &it[1].link);
    cg_list_push_back(&head, &it[2].link);
    cg_list_push_front(&head, &it[0].link);
    cg_list_push_back(&head, &it[3].link);
    assert_true(cg_list_linked(&it[2].link));
    int got[8], n;
    collect(&head, got, &n);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(got[i], i);
    assert_ptr_equal(cg_list_entry(cg_list_first(&head), struct item, link), &it[0]);

    /* Removing the current element while iterating is allowed. */
    struct cg_list *p, *tmp;
    cg_list_foreach_safe (p, tmp, &head) {
        struct item *x = cg_list_entry(p, struct item, link);
        if (x->v % 2 == 1)
            cg_list_remove(p);
    }
    collect(&head, got, &n);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 2);
    /* A removed element is self-linked: removing it again changes nothing. */
    assert_false(cg_list_linked(&it[1].link));
    cg_list_remove(&it[1].link);
    collect(&head, got, &n);
    assert_int_equal(n, 2);
    cg_list_remove(&it[0].link);
    cg_list_remove(&it[2].link);
    assert_true(cg_list_empty(&head));
}

static void test_backoff(void **state)
{
    (void)state;
    int saw_low = 0, saw_high = 0;
    for (unsigned attempt = 0; attempt < 70; attempt++) {
        long c = 100;
        for (unsigned i = 0; i < attempt && c < 5000; i++)
            c *= 2;
        if (c > 5000)
            c = 5000;
        for (int k = 0; k < 200; k++) {
            long d = cg_backoff_ms(100, 5000, attempt, -1);
            assert_true(d >= c / 2);
            assert_true(d <= c);
            if (attempt >= 10 && d < 2600)
                saw_low = 1;
            if (attempt >= 10 && d > 4900)
                saw_high = 1;
        }
    }
    /* The jitter spreads over the whole range at the cap. */
    assert_true(saw_low);
    assert_true(saw_high);
    /* Bad bounds are repaired, not trusted. */
    for (int k = 0; k < 50; k++) {
        long d = cg_backoff_ms(300, 100, 5, 0);
        assert_true(d >= 150 && d <= 300);
        assert_true(cg_backoff_ms(0, 0, 1000, 0) <= 1);
    }
    /* Retry-After is a floor, above the cap too, up to its own bound. */
    assert_int_equal(cg_backoff_ms(1000, 5000, 0, 7), 7000);
    assert_int_equal(cg_backoff_ms(1000, 5000, 3, 1e9), CG_BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(cg_backoff_ms(10, 10, 0, 1.5), 1500);
    long d = cg_backoff_ms(1000, 5000, 0, 0.2);
    assert_true(d >= 500 && d <= 1000);
}

static void test_crypto(void **state)
{
    (void)state;
    char hex[129];
    cg_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cg_sha256_hex(NULL, 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cg_sha1_hex("abc", 3, hex);
    assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* RFC 4231 test case 2 (HMAC-SHA-256), RFC 2202 test case 2 (SHA-1). */
    unsigned char mac[CG_DIGEST_MAX];
    const char *data = "what do ya want for nothing?";
    assert_int_equal(cg_hmac(CG_SHA256, "Jefe", 4, data, strlen(data), mac), 32);
    cg_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(cg_hmac(CG_SHA1, "Jefe", 4, data, strlen(data), mac), 20);
    cg_hex_encode(mac, 20, hex);
    assert_string_equal(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    assert_int_equal(cg_hmac(CG_SHA512, "Jefe", 4, data, strlen(data), mac), 64);
    assert_int_equal(cg_digest_size(CG_SHA512), 64);
    /* PBKDF2-HMAC-SHA256 vectors (P = "password", S = "salt"; the
     * published vectors for c = 1, 2 and 4096, dkLen 32). */
    assert_int_equal(cg_pbkdf2_sha256("password", 8, "salt", 4, 1, mac, 32), 0);
    cg_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
    assert_int_equal(cg_pbkdf2_sha256("password", 8, "salt", 4, 2, mac, 32), 0);
    cg_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43");
    assert_int_equal(cg_pbkdf2_sha256("password", 8, "salt", 4, 4096, mac, 32), 0);
    cg_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
    assert_int_equal(cg_pbkdf2_sha256("password", 8, "salt", 4, 0, mac, 32), -1);

    unsigned char raw[4];
    assert_int_equal(cg_hex_decode("DEadbeef", 8, raw, 4), 0);
    assert_int_equal(raw[0], 0xde);
    assert_int_equal(raw[3], 0xef);
    assert_int_equal(cg_hex_decode("deadbee", 7, raw, 4), -1);
    assert_int_equal(cg_hex_decode("deadbeeg", 8, raw, 4), -1);
    assert_int_equal(cg_hexval('F'), 15);
    assert_int_equal(cg_hexval('g'), -1);

    char b64[16];
    assert_int_equal(cg_base64_encode((const unsigned char *)"abcd", 4, b64), 8);
    assert_string_equal(b64, "YWJjZA==");
    unsigned char back[4];
    assert_int_equal(cg_base64_decode("YWJjZA==", 8, back, 4), 0);
    assert_memory_equal(back, "abcd", 4);
    assert_int_equal(cg_base64_decode("YWJjZA", 6, back, 4), 0);    /* no padding */
    assert_int_equal(cg_base64_decode("YWJjZB==", 8, back, 4), -1); /* stray bits */
    assert_int_equal(cg_base64_decode("YWJjZA==", 8, back, 3), -1);
}

static void test_ct_streq(void **state)
{
    (void)state;
    assert_true(cg_ct_streq("", ""));
    assert_true(cg_ct_streq("abc", "abc"));
    assert_false(cg_ct_streq("abc", "abd"));
    assert_false(cg_ct_streq("abc", "ab"));
    assert_false(cg_ct_streq("ab", "abc"));
    assert_false(cg_ct_streq("", "abc"));
    assert_false(cg_ct_streq("abc", ""));
    /* A guess that is the secret followed by more is not the secret. */
    assert_false(cg_ct_streq("secret\x01", "secret"));
    assert_false(cg_ct_streq(NULL, "a"));
    assert_false(cg_ct_streq("a", NULL));
    assert_false(cg_ct_streq(NULL, NULL));
    assert_true(cg_ct_memeq("a\0b", "a\0b", 3));
    assert_false(cg_ct_memeq("a\0b", "a\0c", 3));
}

static void test_err_set(void **state)
{
    (void)state;
    char err[8];
    cg_err_set(err, sizeof err, "%s %d", "code", 12345);
    assert_string_equal(err, "code 12");
    cg_err_set(NULL, 0, "ignored %d", 1);
    err[0] = 'x';
    cg_err_set(err, 0, "not written");
    assert_int_equal(err[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),    cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_crypto),  cmocka_unit_test(test_ct_streq),
        cmocka_unit_test(test_err_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
