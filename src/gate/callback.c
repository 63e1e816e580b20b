/*
 * callback.c - the decisions of queued callbacks that need neither Redis
 * nor the network (callback.h).
 */
#include "base/fmacros.h"

#include "gate/callback.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

int gate_callback_number_ok(const char *number)
{
    /* What Twilio sends as From for a caller who withheld their number:
     * valid E.164 to look at, and nobody's phone. */
    static const char *const withheld[] = {"+266696687", "+7378742833", "+8656696", "+2562533",
                                           "+86282452253"};
    if (number == NULL || number[0] != '+' || number[1] < '1' || number[1] > '9')
        return 0;
    size_t n = 0;
    for (const char *p = number + 1; *p != '\0'; p++, n++)
        if (*p < '0' || *p > '9' || n >= 15)
            return 0;
    if (n < 8)
        return 0;
    for (size_t i = 0; i < sizeof withheld / sizeof withheld[0]; i++)
        if (strcmp(number, withheld[i]) == 0)
            return 0;
    return 1;
}

int gate_callback_should_offer(const struct gate_callback_offer *o)
{
    return o != NULL && o->offer_s > 0 && o->state_waiting && o->window_open &&
           o->estimate_s > (double)o->offer_s && gate_callback_number_ok(o->from);
}

enum gate_callback_key gate_callback_key(const char *digits)
{
    if (digits == NULL || digits[0] == '\0')
        return GATE_CB_KEY_NONE;
    /* numDigits="1": anything longer is not what the offer asked for. */
    if (strcmp(digits, "1") == 0)
        return GATE_CB_KEY_ACCEPT;
    return strcmp(digits, "2") == 0 ? GATE_CB_KEY_NUMBER : GATE_CB_KEY_OTHER;
}

enum gate_callback_leg gate_callback_leg(const char *call_status, const char *answered_by,
                                         const char **reason)
{
    static const char *const failed[] = {"busy", "no-answer", "failed", "canceled"};
    const char *why = "";
    enum gate_callback_leg verdict = GATE_CB_LEG_PENDING;
    if (answered_by != NULL && answered_by[0] != '\0') {
        if (strncmp(answered_by, "machine", 7) == 0) {
            why = "machine";
            verdict = GATE_CB_LEG_FAILED;
        } else if (strcmp(answered_by, "fax") == 0) {
            why = "fax";
            verdict = GATE_CB_LEG_FAILED;
        } else if (call_status == NULL) {
            /* human, or unknown: detection could not tell, and hanging up
             * on a person is worse than an assistant greeting a machine. */
            verdict = GATE_CB_LEG_ANSWERED;
        }
    } else if (call_status == NULL) {
        /* The answer webhook without a detection result (detection off
         * or not reported): someone picked up. */
        verdict = GATE_CB_LEG_ANSWERED;
    }
    if (verdict == GATE_CB_LEG_PENDING && call_status != NULL) {
        for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++)
            if (strcmp(call_status, failed[i]) == 0) {
                why = failed[i];
                verdict = GATE_CB_LEG_FAILED;
            }
    }
    if (reason != NULL)
        *reason = why;
    return verdict;
}

int gate_callback_sid_ok(const char *sid)
{
    if (sid == NULL)
        return 0;
    size_t n = 0;
    for (; sid[n] != '\0'; n++) {
        char c = sid[n];
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum || n >= 63)
            return 0;
    }
    return n > 0;
}

int gate_callback_attempt(const char *s, long long *out)
{
    if (s == NULL || s[0] < '1' || s[0] > '9')
        return -1;
    long long v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > 1000)
            return -1;
    }
    *out = v;
    return 0;
}

double gate_callback_promise(double bound_s, char *phrase, size_t n)
{
    /* !(x > 0) also catches NaN. */
    double s = !(bound_s > 0) ? 1 : bound_s > 86400 ? 86400 : bound_s;
    double minutes = ceil(s / 60);
    char buf[64];
    if (minutes <= 1) {
        minutes = 1;
        snprintf(buf, sizeof buf, "within a minute");
    } else if (minutes <= 10) {
        snprintf(buf, sizeof buf, "within %.0f minutes", minutes);
    } else if (minutes <= 60) {
        /* Nobody promises "within 23 minutes": the next five. */
        minutes = 5 * ceil(minutes / 5);
        if (minutes < 60)
            snprintf(buf, sizeof buf, "within %.0f minutes", minutes);
        else
            snprintf(buf, sizeof buf, "within an hour");
    } else {
        double hours = ceil(minutes / 60);
        minutes = 60 * hours;
        snprintf(buf, sizeof buf, "within %.0f hours", hours);
    }
    if (phrase != NULL && n > 0)
        snprintf(phrase, n, "%s", buf);
    return minutes * 60;
}

size_t gate_callback_country_code_len(const char *e164)
{
    if (e164 == NULL || e164[0] != '+' || e164[1] < '1' || e164[1] > '9' || e164[2] < '0' ||
        e164[2] > '9')
        return 0;
    /* ITU-T E.164 country codes are prefix-free: 1 and 7 alone; among the
     * others, these two-digit ones, and three digits for the rest. */
    static const char *const two[] = {
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};
    if (e164[1] == '1' || e164[1] == '7')
        return 1;
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
        if (strncmp(e164 + 1, two[i], 2) == 0)
            return 2;
    return e164[3] >= '0' && e164[3] <= '9' ? 3 : 0;
}

int gate_callback_keyed_number(const char *digits, const char *from, char *out, size_t n)
{
    if (digits == NULL || out == NULL || n == 0)
        return -1;
    size_t len = strlen(digits);
    if (len == 0 || len > GATE_CB_KEYED_MAX || strspn(digits, "0123456789") != len)
        return -1;
    char num[GATE_CB_KEYED_MAX + 8];
    size_t cc = gate_callback_number_ok(from) ? gate_callback_country_code_len(from) : 0;
    if (strncmp(digits, "00", 2) == 0) {
        /* The international prefix of most of the world. */
        snprintf(num, sizeof num, "+%s", digits + 2);
    } else if (cc == 1 && from[1] == '1' && strncmp(digits, "011", 3) == 0) {
        /* North America's. */
        snprintf(num, sizeof num, "+%s", digits + 3);
    } else if (digits[0] == '0') {
        /* A national number with its trunk 0: in the caller's country. */
        if (cc == 0)
            return -1;
        snprintf(num, sizeof num, "+%.*s%s", (int)cc, from + 1, digits + 1);
    } else if (cc == 1 && from[1] == '1' && len == 10) {
        /* North America dials its national numbers without a trunk prefix. */
        snprintf(num, sizeof num, "+1%s", digits);
    } else {
        /* Anything else already starts with its country code. */
        snprintf(num, sizeof num, "+%s", digits);
    }
    if (!gate_callback_number_ok(num) || strlen(num) + 1 > n)
        return -1;
    memcpy(out, num, strlen(num) + 1);
    return 0;
}
