/*
 * Fuzz target: what the callback endpoints read from Twilio's requests
 * (src/gate/callback.c): the keypad's Digits, the outbound leg's CallStatus
 * and AnsweredBy, the caller's From, and the sid and attempt of callgate's
 * own callback URLs as they come back, and a number keyed on the phone
 * (Digits of /callback-number, read with the From of the fourth field).
 * The input is split at newlines into those six fields.
 *
 * Invariants: 1 and 2 alone are the keys that mean something; a failed
 * leg always has a reason and any other verdict none; the answer webhook
 * (no CallStatus) is never PENDING; a callable number is '+' and 8 to 15
 * digits; a sid accepted is letters and digits only; an attempt accepted
 * is 1..1000 and prints back to its input; a keyed number accepted is
 * callable, and keyed again in its international form (00 and its
 * digits) gives itself.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/callback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *field[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    char *p = buf;
    for (int i = 0; i < 6 && p != NULL; i++) {
        field[i] = p;
        p = strchr(p, '\n');
        if (p != NULL)
            *p++ = '\0';
    }

    enum gate_callback_key k = gate_callback_key(field[0]);
    FZ_CHECK(k == GATE_CB_KEY_NONE || k == GATE_CB_KEY_ACCEPT || k == GATE_CB_KEY_NUMBER ||
             k == GATE_CB_KEY_OTHER);
    if (k == GATE_CB_KEY_ACCEPT)
        FZ_CHECK(strcmp(field[0], "1") == 0);
    if (k == GATE_CB_KEY_NUMBER)
        FZ_CHECK(strcmp(field[0], "2") == 0);

    const char *reason = NULL;
    enum gate_callback_leg v = gate_callback_leg(field[1], field[2], &reason);
    FZ_CHECK(reason != NULL);
    FZ_CHECK((v == GATE_CB_LEG_FAILED) == (reason[0] != '\0'));
    v = gate_callback_leg(NULL, field[2], &reason);
    FZ_CHECK(v != GATE_CB_LEG_PENDING);

    if (gate_callback_number_ok(field[3])) {
        size_t n = strlen(field[3]);
        FZ_CHECK(field[3][0] == '+' && n >= 9 && n <= 16);
        FZ_CHECK(strspn(field[3] + 1, "0123456789") == n - 1);
    }

    if (gate_callback_sid_ok(field[4])) {
        size_t n = strlen(field[4]);
        FZ_CHECK(n >= 1 && n <= 63);
        FZ_CHECK(strspn(field[4], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789") == n);
    }
    long long attempt = 0;
    if (gate_callback_attempt(field[4], &attempt) == 0) {
        char back[32];
        snprintf(back, sizeof back, "%lld", attempt);
        FZ_CHECK(attempt >= 1 && attempt <= 1000 && strcmp(back, field[4]) == 0);
    }
    char num[64], again[64], intl[80];
    if (gate_callback_keyed_number(field[5], field[3], num, sizeof num) == 0) {
        FZ_CHECK(gate_callback_number_ok(num));
        FZ_CHECK(strlen(field[5]) <= GATE_CB_KEYED_MAX);
        snprintf(intl, sizeof intl, "00%s", num + 1);
        if (strlen(intl) <= GATE_CB_KEYED_MAX) {
            FZ_CHECK(gate_callback_keyed_number(intl, NULL, again, sizeof again) == 0);
            FZ_CHECK(strcmp(again, num) == 0);
        }
    }
    size_t cc = gate_callback_country_code_len(field[3]);
    FZ_CHECK(cc <= 3);
    free(buf);
    return 0;
}
