/*
 * callback_hours.h - CALLBACK_HOURS, the daily window in which callbacks
 * are dialled (docs/ARCHITECTURE.md, "Callbacks"): "<days> <HH:MM>-<HH:MM>
 * <IANA zone>", e.g. "Mon-Fri 09:00-18:00 Europe/Paris". Days are a range
 * ("Mon-Fri", "Sat-Sun", "Fri-Mon" wraps), a list ("Mon,Wed,Fri") or
 * "daily"; the window ends after it starts on the same day; the zone's
 * rules (summer time included) come from the system's zoneinfo files.
 *
 * Local time is computed by switching TZ for the call and restoring it:
 * callgate runs its logic on one thread and never uses local time
 * elsewhere (logs are UTC), so nothing sees the switch.
 *
 * Ownership: the struct holds its own copy of the zone name; no
 * allocation. No callbacks.
 */
#ifndef CG_GATE_CALLBACK_HOURS_H
#define CG_GATE_CALLBACK_HOURS_H

#include <stddef.h>
#include <time.h>

struct gate_callback_hours {
    unsigned days; /* bit 0 Sunday .. bit 6 Saturday (struct tm's tm_wday) */
    int start_min; /* minutes after local midnight */
    int end_min;   /* > start_min */
    char zone[64];
};

/* 0, or -1 with a message naming the fix in err (a zone without its
 * zoneinfo file says so: the tzdata package). */
int gate_callback_hours_parse(const char *s, struct gate_callback_hours *out, char *err,
                              size_t errlen);

/* 1 when callbacks may be dialled at now: *until (may be NULL) gets the
 * end of this window. 0 when not: *until gets the start of the next
 * window (within a week). -1 when local time cannot be computed. */
int gate_callback_hours_open(const struct gate_callback_hours *h, time_t now, time_t *until);

#endif
