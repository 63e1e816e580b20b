/*
 * callback.c - the decisions of queued callbacks that need neither Redis
 * nor the network (callback.h).
 */
#include "base/fmacros.h"

#include "gate/callback.h"

#include <stddef.h>
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
    return strcmp(digits, "1") == 0 ? GATE_CB_KEY_ACCEPT : GATE_CB_KEY_OTHER;
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
