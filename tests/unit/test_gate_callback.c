/*
 * test_gate_callback.c - the callback decisions of src/gate/callback.c:
 * callable numbers, when the hold answer offers a callback, keypad digits,
 * and Twilio's reports on the outbound leg.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gate/callback.h"

static void test_number_ok(void **state)
{
    (void)state;
    assert_int_equal(gate_callback_number_ok("+15551234567"), 1);
    assert_int_equal(gate_callback_number_ok("+33123456789"), 1);
    assert_int_equal(gate_callback_number_ok("+12345678"), 1);        /* 8 digits */
    assert_int_equal(gate_callback_number_ok("+123456789012345"), 1); /* 15 */
    assert_int_equal(gate_callback_number_ok("+1234567890123456"), 0);
    assert_int_equal(gate_callback_number_ok("+1234567"), 0);
    assert_int_equal(gate_callback_number_ok("+0123456789"), 0);
    assert_int_equal(gate_callback_number_ok("15551234567"), 0);
    assert_int_equal(gate_callback_number_ok("+1555123456x"), 0);
    assert_int_equal(gate_callback_number_ok("+1 555 123 4567"), 0);
    assert_int_equal(gate_callback_number_ok("client:alice"), 0);
    assert_int_equal(gate_callback_number_ok("sip:alice@example.com"), 0);
    assert_int_equal(gate_callback_number_ok("anonymous"), 0);
    assert_int_equal(gate_callback_number_ok(""), 0);
    assert_int_equal(gate_callback_number_ok("+"), 0);
    assert_int_equal(gate_callback_number_ok(NULL), 0);
    /* Twilio's stand-ins for a withheld number. */
    assert_int_equal(gate_callback_number_ok("+266696687"), 0);
    assert_int_equal(gate_callback_number_ok("+7378742833"), 0);
    assert_int_equal(gate_callback_number_ok("+86282452253"), 0);
}

static void test_should_offer(void **state)
{
    (void)state;
    struct gate_callback_offer o = {.offer_s = 120,
                                    .estimate_s = 300,
                                    .from = "+15551234567",
                                    .window_open = 1,
                                    .state_waiting = 1};
    assert_int_equal(gate_callback_should_offer(&o), 1);
    o.estimate_s = 120; /* not above */
    assert_int_equal(gate_callback_should_offer(&o), 0);
    o.estimate_s = 121;
    assert_int_equal(gate_callback_should_offer(&o), 1);
    o.offer_s = 0; /* off */
    assert_int_equal(gate_callback_should_offer(&o), 0);
    o.offer_s = 120;
    o.window_open = 0;
    assert_int_equal(gate_callback_should_offer(&o), 0);
    o.window_open = 1;
    o.state_waiting = 0;
    assert_int_equal(gate_callback_should_offer(&o), 0);
    o.state_waiting = 1;
    o.from = "+266696687";
    assert_int_equal(gate_callback_should_offer(&o), 0);
    o.from = NULL;
    assert_int_equal(gate_callback_should_offer(&o), 0);
    assert_int_equal(gate_callback_should_offer(NULL), 0);
}

static void test_key(void **state)
{
    (void)state;
    assert_int_equal(gate_callback_key("1"), GATE_CB_KEY_ACCEPT);
    assert_int_equal(gate_callback_key("2"), GATE_CB_KEY_NUMBER);
    assert_int_equal(gate_callback_key("3"), GATE_CB_KEY_OTHER);
    assert_int_equal(gate_callback_key("*"), GATE_CB_KEY_OTHER);
    assert_int_equal(gate_callback_key("11"), GATE_CB_KEY_OTHER);
    assert_int_equal(gate_callback_key("1#"), GATE_CB_KEY_OTHER);
    assert_int_equal(gate_callback_key(""), GATE_CB_KEY_NONE);
    assert_int_equal(gate_callback_key(NULL), GATE_CB_KEY_NONE);
}

static void test_keyed_number(void **state)
{
    (void)state;
    char out[32];
    /* From a North American number. */
    assert_int_equal(gate_callback_keyed_number("2025550123", "+15557770000", out, sizeof out), 0);
    assert_string_equal(out, "+12025550123");
    assert_int_equal(gate_callback_keyed_number("12025550123", "+15557770000", out, sizeof out), 0);
    assert_string_equal(out, "+12025550123");
    assert_int_equal(gate_callback_keyed_number("011442079460000", "+15557770000", out, sizeof out),
                     0);
    assert_string_equal(out, "+442079460000");
    /* From France: a national number with its 0, and one abroad. */
    assert_int_equal(gate_callback_keyed_number("0612345678", "+33142685300", out, sizeof out), 0);
    assert_string_equal(out, "+33612345678");
    assert_int_equal(gate_callback_keyed_number("00442079460000", "+33142685300", out, sizeof out),
                     0);
    assert_string_equal(out, "+442079460000");
    assert_int_equal(gate_callback_keyed_number("442079460000", "+33142685300", out, sizeof out),
                     0);
    assert_string_equal(out, "+442079460000");
    /* Three-digit country codes (Ireland) and one digit (Russia). */
    assert_int_equal(gate_callback_keyed_number("0871234567", "+35312345678", out, sizeof out), 0);
    assert_string_equal(out, "+353871234567");
    assert_int_equal(gate_callback_keyed_number("09161234567", "+74951234567", out, sizeof out), 0);
    assert_string_equal(out, "+79161234567");
    /* Refused: out unchanged. */
    strcpy(out, "same");
    const char *bad[] = {"",
                         "0123",
                         "1",
                         "00",
                         "*44",
                         "12a4567890",
                         "0044123456789012345678",
                         "+442079460000",
                         "002662533",
                         NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(gate_callback_keyed_number(bad[i], "+15557770000", out, sizeof out), -1);
    /* A national number from a caller whose country is not known. */
    assert_int_equal(gate_callback_keyed_number("0612345678", "anonymous", out, sizeof out), -1);
    assert_int_equal(gate_callback_keyed_number("0612345678", NULL, out, sizeof out), -1);
    assert_int_equal(gate_callback_keyed_number(NULL, "+15557770000", out, sizeof out), -1);
    assert_int_equal(gate_callback_keyed_number("442079460000", "+1555", out, 5), -1);
    assert_string_equal(out, "same");
    assert_int_equal(gate_callback_country_code_len("+15557770000"), 1);
    assert_int_equal(gate_callback_country_code_len("+442079460000"), 2);
    assert_int_equal(gate_callback_country_code_len("+353871234567"), 3);
    assert_int_equal(gate_callback_country_code_len("15557770000"), 0);
}

static void test_promise(void **state)
{
    (void)state;
    char p[48];
    assert_true(gate_callback_promise(1, p, sizeof p) == 60);
    assert_string_equal(p, "within a minute");
    assert_true(gate_callback_promise(60, p, sizeof p) == 60);
    assert_true(gate_callback_promise(60.5, p, sizeof p) == 120);
    assert_string_equal(p, "within 2 minutes");
    assert_true(gate_callback_promise(599, p, sizeof p) == 600);
    assert_string_equal(p, "within 10 minutes");
    assert_true(gate_callback_promise(601, p, sizeof p) == 900);
    assert_string_equal(p, "within 15 minutes");
    assert_true(gate_callback_promise(3500, p, sizeof p) == 3600);
    assert_string_equal(p, "within an hour");
    assert_true(gate_callback_promise(3601, p, sizeof p) == 7200);
    assert_string_equal(p, "within 2 hours");
    assert_true(gate_callback_promise(1e9, p, sizeof p) == 86400);
    assert_string_equal(p, "within 24 hours");
    assert_true(gate_callback_promise(0.0 / 0.0, NULL, 0) == 60);
    assert_true(gate_callback_promise(-5, p, sizeof p) == 60);
}

static void test_leg(void **state)
{
    (void)state;
    const char *why = "x";
    /* The answer webhook (no CallStatus to go by). */
    assert_int_equal(gate_callback_leg(NULL, "human", &why), GATE_CB_LEG_ANSWERED);
    assert_string_equal(why, "");
    assert_int_equal(gate_callback_leg(NULL, "unknown", &why), GATE_CB_LEG_ANSWERED);
    assert_int_equal(gate_callback_leg(NULL, NULL, &why), GATE_CB_LEG_ANSWERED);
    assert_int_equal(gate_callback_leg(NULL, "", &why), GATE_CB_LEG_ANSWERED);
    assert_int_equal(gate_callback_leg(NULL, "machine_start", &why), GATE_CB_LEG_FAILED);
    assert_string_equal(why, "machine");
    assert_int_equal(gate_callback_leg(NULL, "machine_end_beep", &why), GATE_CB_LEG_FAILED);
    assert_int_equal(gate_callback_leg(NULL, "fax", &why), GATE_CB_LEG_FAILED);
    assert_string_equal(why, "fax");
    /* The status callback. */
    assert_int_equal(gate_callback_leg("busy", NULL, &why), GATE_CB_LEG_FAILED);
    assert_string_equal(why, "busy");
    assert_int_equal(gate_callback_leg("no-answer", NULL, &why), GATE_CB_LEG_FAILED);
    assert_string_equal(why, "no-answer");
    assert_int_equal(gate_callback_leg("failed", NULL, &why), GATE_CB_LEG_FAILED);
    assert_int_equal(gate_callback_leg("canceled", NULL, &why), GATE_CB_LEG_FAILED);
    assert_int_equal(gate_callback_leg("completed", NULL, &why), GATE_CB_LEG_PENDING);
    assert_string_equal(why, "");
    assert_int_equal(gate_callback_leg("completed", "human", &why), GATE_CB_LEG_PENDING);
    assert_int_equal(gate_callback_leg("completed", "machine_start", &why), GATE_CB_LEG_FAILED);
    assert_int_equal(gate_callback_leg("ringing", NULL, &why), GATE_CB_LEG_PENDING);
    assert_int_equal(gate_callback_leg("in-progress", NULL, NULL), GATE_CB_LEG_PENDING);
}

/* The sid and attempt of callgate's own callback URLs, as they come back. */
static void test_url_parts(void **state)
{
    (void)state;
    assert_true(gate_callback_sid_ok("CA0123456789abcdef0123456789abcdef"));
    assert_true(gate_callback_sid_ok("x"));
    assert_false(gate_callback_sid_ok(NULL));
    assert_false(gate_callback_sid_ok(""));
    assert_false(gate_callback_sid_ok("CA01&attempt=2"));
    assert_false(gate_callback_sid_ok("CA 01"));
    assert_false(gate_callback_sid_ok("../CA01"));
    char longsid[80];
    memset(longsid, 'a', sizeof longsid - 1);
    longsid[sizeof longsid - 1] = '\0';
    assert_false(gate_callback_sid_ok(longsid));
    longsid[63] = '\0';
    assert_true(gate_callback_sid_ok(longsid));
    longsid[64 - 1] = 'a';
    longsid[64] = '\0';
    assert_false(gate_callback_sid_ok(longsid));

    long long a = -1;
    assert_int_equal(gate_callback_attempt("1", &a), 0);
    assert_int_equal(a, 1);
    assert_int_equal(gate_callback_attempt("1000", &a), 0);
    assert_int_equal(a, 1000);
    static const char *const bad[] = {NULL,  "",    "0",  "01",   "-1",
                                      "+1",  " 1",  "1 ", "1001", "99999999999999999999",
                                      "1e2", "0x1", "2a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = 7;
        assert_int_equal(gate_callback_attempt(bad[i], &a), -1);
        assert_int_equal(a, 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_ok), cmocka_unit_test(test_should_offer),
        cmocka_unit_test(test_key),       cmocka_unit_test(test_leg),
        cmocka_unit_test(test_url_parts), cmocka_unit_test(test_keyed_number),
        cmocka_unit_test(test_promise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
