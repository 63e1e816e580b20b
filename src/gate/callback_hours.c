/*
 * callback_hours.c - CALLBACK_HOURS: parsing and the window at a given
 * time, in the window's own time zone (callback_hours.h).
 */
#include "base/fmacros.h"

#include "gate/callback_hours.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const day_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static int day_index(const char *s, size_t n)
{
    for (int i = 0; i < 7; i++)
        if (n == 3 && strncasecmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

static int parse_days(const char *s, unsigned *days)
{
    if (strcasecmp(s, "daily") == 0) {
        *days = 0x7f;
        return 0;
    }
    *days = 0;
    const char *p = s;
    while (*p != '\0') {
        const char *end = p + strcspn(p, ",");
        const char *dash = memchr(p, '-', (size_t)(end - p));
        int a = day_index(p, (size_t)((dash ? dash : end) - p));
        int b = dash ? day_index(dash + 1, (size_t)(end - dash - 1)) : a;
        if (a < 0 || b < 0)
            return -1;
        for (int d = a;; d = (d + 1) % 7) {
            *days |= 1u << d;
            if (d == b)
                break;
        }
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0')
            return -1;
    }
    return *days != 0 ? 0 : -1;
}

static int parse_hhmm(const char *s, size_t n, int *min)
{
    if (n != 5 || s[2] != ':')
        return -1;
    for (size_t i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return -1;
    *min = h * 60 + m;
    return 0;
}

static int zone_name_ok(const char *z)
{
    /* An IANA name: letters, digits, '_', '-', '+', '/', no "..", not absolute. */
    if (z[0] == '\0' || z[0] == '/' || strstr(z, "..") != NULL)
        return 0;
    for (const char *p = z; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '+' || *p == '/'))
            return 0;
    return 1;
}

int gate_callback_hours_parse(const char *s, struct gate_callback_hours *out, char *err,
                              size_t errlen)
{
    char days[64], span[32], zone[sizeof out->zone], extra[2];
    memset(out, 0, sizeof *out);
    if (s == NULL || sscanf(s, "%63s %31s %63s %1s", days, span, zone, extra) != 3) {
        snprintf(err, errlen,
                 "CALLBACK_HOURS must be \"<days> <HH:MM>-<HH:MM> <zone>\", e.g. "
                 "\"Mon-Fri 09:00-18:00 Europe/Paris\"");
        return -1;
    }
    if (parse_days(days, &out->days) != 0) {
        snprintf(err, errlen,
                 "CALLBACK_HOURS: days \"%s\" must be a range (Mon-Fri), a list (Mon,Wed) or "
                 "daily",
                 days);
        return -1;
    }
    const char *dash = strchr(span, '-');
    if (dash == NULL || parse_hhmm(span, (size_t)(dash - span), &out->start_min) != 0 ||
        parse_hhmm(dash + 1, strlen(dash + 1), &out->end_min) != 0 ||
        out->end_min <= out->start_min) {
        snprintf(err, errlen,
                 "CALLBACK_HOURS: hours \"%s\" must be HH:MM-HH:MM with the end after the start "
                 "on the same day",
                 span);
        return -1;
    }
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
    if (!zone_name_ok(zone) || access(path, R_OK) != 0) {
        snprintf(err, errlen,
                 "CALLBACK_HOURS: time zone \"%s\" not found in /usr/share/zoneinfo (an IANA "
                 "name such as Europe/Paris; install the tzdata package)",
                 zone);
        return -1;
    }
    snprintf(out->zone, sizeof out->zone, "%s", zone);
    return 0;
}

/* TZ switched to the window's zone for the duration of one computation. */
struct tz_saved {
    char *old;
};

static void tz_enter(struct tz_saved *s, const char *zone)
{
    const char *old = getenv("TZ");
    s->old = old ? strdup(old) : NULL;
    setenv("TZ", zone, 1);
    tzset();
}

static void tz_leave(struct tz_saved *s)
{
    if (s->old) {
        setenv("TZ", s->old, 1);
        free(s->old);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

/* The instant of minute min on the local day of tm (plus add_days). */
static time_t at_minute(const struct tm *day, int add_days, int min)
{
    struct tm t = *day;
    t.tm_mday += add_days;
    t.tm_hour = min / 60;
    t.tm_min = min % 60;
    t.tm_sec = 0;
    t.tm_isdst = -1;
    return mktime(&t);
}

int gate_callback_hours_open(const struct gate_callback_hours *h, time_t now, time_t *until)
{
    struct tz_saved s;
    tz_enter(&s, h->zone);
    struct tm lt;
    int rc = -1;
    if (localtime_r(&now, &lt) != NULL) {
        rc = 0;
        for (int d = 0; d <= 7; d++) {
            struct tm day = lt;
            day.tm_mday += d;
            day.tm_hour = 12; /* normalised at noon: never in a DST gap */
            day.tm_isdst = -1;
            if (mktime(&day) == (time_t)-1) {
                rc = -1;
                break;
            }
            if (!(h->days & (1u << day.tm_wday)))
                continue;
            time_t open = at_minute(&day, 0, h->start_min);
            time_t close = at_minute(&day, 0, h->end_min);
            if (now >= open && now < close) {
                rc = 1;
                if (until)
                    *until = close;
                break;
            }
            if (now < open) {
                if (until)
                    *until = open;
                break;
            }
        }
    }
    tz_leave(&s);
    return rc;
}
