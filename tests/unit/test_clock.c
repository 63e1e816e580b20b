/*
 * Unit tests for clock.c: the ISO-8601 dates callgate writes and reads.
 */
#include "harness.h"

#include "base/clock.h"

#include <math.h>
#include <string.h>

static void test_iso8601_parse(void **state)
{
    (void)state;
    /* 2015-08-18T08:46:15Z, the date of Twilio's documented examples. */
    assert_true(cg_iso8601_parse("2015-08-18T08:46:15Z") == 1439887575.0);
    assert_true(cg_iso8601_parse("2015-08-18T08:46:15+00:00") == 1439887575.0);
    assert_true(fabs(cg_iso8601_parse("2015-08-18T08:46:15.25Z") - 1439887575.25) < 1e-6);
    assert_true(cg_iso8601_parse("1970-01-01T00:00:00Z") == 0.0);
    /* What cg_iso8601_ms writes reads back. */
    char out[25];
    cg_iso8601_ms(1643147392812ULL, out);
    assert_string_equal(out, "2022-01-25T21:49:52.812Z");
    assert_true(fabs(cg_iso8601_parse(out) - 1643147392.812) < 1e-6);

    static const char *const bad[] = {
        "",
        "2015-08-18",
        "2015-08-18T08:46:15",
        "2015-08-18T08:46:15+01:00",
        "2015-08-18 08:46:15Z",
        "2015-13-18T08:46:15Z",
        "2015-00-18T08:46:15Z",
        "2015-08-00T08:46:15Z",
        "2015-08-32T08:46:15Z",
        "2015-08-18T24:46:15Z",
        "2015-08-18T08:60:15Z",
        "2015-08-18T08:46:61Z",
        "2015-8-18T08:46:15Z",
        "2015-08-18T08:46:15Zjunk",
        "x015-08-18T08:46:15Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cg_iso8601_parse(bad[i]) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_true(cg_iso8601_parse(NULL) == -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso8601_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
