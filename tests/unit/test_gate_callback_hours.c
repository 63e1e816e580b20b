/*
 * test_gate_callback_hours.c - CALLBACK_HOURS (src/gate/callback_hours.c):
 * the forms accepted and refused with their fixes, and the window at given
 * instants in its own zone, summer time and week-ends included.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gate/callback_hours.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds since the epoch of a UTC date and time. */
static time_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm t = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return timegm(&t);
}

static void parse_ok(const char *s, struct gate_callback_hours *h)
{
    char err[256] = "";
    if (gate_callback_hours_parse(s, h, err, sizeof err) != 0)
        fail_msg("%s: %s", s, err);
}

static void parse_bad(const char *s, const char *want_in_err)
{
    struct gate_callback_hours h;
    char err[256] = "";
    assert_int_equal(gate_callback_hours_parse(s, &h, err, sizeof err), -1);
    if (strstr(err, want_in_err) == NULL)
        fail_msg("%s: \"%s\" lacks \"%s\"", s ? s : "(null)", err, want_in_err);
}

static void test_parse(void **state)
{
    (void)state;
    struct gate_callback_hours h;
    parse_ok("Mon-Fri 09:00-18:00 Europe/Paris", &h);
    assert_int_equal(h.days, 0x3e);
    assert_int_equal(h.start_min, 540);
    assert_int_equal(h.end_min, 1080);
    assert_string_equal(h.zone, "Europe/Paris");
    parse_ok("daily 00:00-24:00 UTC", &h);
    assert_int_equal(h.days, 0x7f);
    assert_int_equal(h.end_min, 1440);
    parse_ok("Mon,Wed,fri 08:30-12:15 America/New_York", &h);
    assert_int_equal(h.days, (1u << 1) | (1u << 3) | (1u << 5));
    parse_ok("Fri-Mon 10:00-11:00 Asia/Tokyo", &h); /* wraps over the week-end */
    assert_int_equal(h.days, (1u << 5) | (1u << 6) | (1u << 0) | (1u << 1));

    parse_bad(NULL, "<days> <HH:MM>-<HH:MM> <zone>");
    parse_bad("Mon-Fri 09:00-18:00", "<days> <HH:MM>-<HH:MM> <zone>");
    parse_bad("Mon-Fri 09:00-18:00 Europe/Paris x", "<days>");
    parse_bad("Mon-Fry 09:00-18:00 Europe/Paris", "days \"Mon-Fry\"");
    parse_bad("Mon, 09:00-18:00 Europe/Paris", "days");
    parse_bad("Mon,,Tue 09:00-18:00 Europe/Paris", "days");
    parse_bad("Mon-Fri 18:00-09:00 Europe/Paris", "end after the start");
    parse_bad("Mon-Fri 9:00-18:00 Europe/Paris", "HH:MM-HH:MM");
    parse_bad("Mon-Fri 09:00-24:30 Europe/Paris", "HH:MM-HH:MM");
    parse_bad("Mon-Fri 09:60-18:00 Europe/Paris", "HH:MM-HH:MM");
    parse_bad("Mon-Fri 09:00-18:00 Mars/Olympus", "install the tzdata package");
    parse_bad("Mon-Fri 09:00-18:00 ../../etc/passwd", "not found");
    parse_bad("Mon-Fri 09:00-18:00 /etc/localtime", "not found");
}

static void test_window(void **state)
{
    (void)state;
    struct gate_callback_hours h;
    parse_ok("Mon-Fri 09:00-18:00 Europe/Paris", &h);
    time_t until = 0;
    /* Monday 7 December 2026, winter time (UTC+1). */
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 7, 8, 30), &until), 1);
    assert_int_equal(until, utc(2026, 12, 7, 17, 0));
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 7, 7, 59), &until), 0);
    assert_int_equal(until, utc(2026, 12, 7, 8, 0));
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 7, 8, 0), &until), 1);
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 7, 17, 0), &until), 0);
    assert_int_equal(until, utc(2026, 12, 8, 8, 0));
    /* Friday evening and Saturday: the next window is Monday's. */
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 11, 18, 0), &until), 0);
    assert_int_equal(until, utc(2026, 12, 14, 8, 0));
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 12, 12, 0), &until), 0);
    assert_int_equal(until, utc(2026, 12, 14, 8, 0));
    /* Summer time (UTC+2): Monday 6 July 2026. */
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 7, 6, 7, 30), &until), 1);
    assert_int_equal(until, utc(2026, 7, 6, 16, 0));
    /* Over the switch: Friday 27 March in winter time, Monday 30 March in
     * summer time. */
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 3, 27, 17, 30), &until), 0);
    assert_int_equal(until, utc(2026, 3, 30, 7, 0));
    /* New York, and the caller's TZ left as it was. */
    setenv("TZ", "Asia/Tokyo", 1);
    parse_ok("daily 08:00-20:00 America/New_York", &h);
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 7, 12, 59), &until), 0);
    assert_int_equal(until, utc(2026, 12, 7, 13, 0));
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 8, 0, 59), NULL), 1);
    assert_string_equal(getenv("TZ"), "Asia/Tokyo");
    unsetenv("TZ");
    parse_ok("daily 00:00-24:00 UTC", &h);
    assert_int_equal(gate_callback_hours_open(&h, utc(2026, 12, 7, 23, 59), &until), 1);
    assert_int_equal(until, utc(2026, 12, 8, 0, 0));
    assert_null(getenv("TZ"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
