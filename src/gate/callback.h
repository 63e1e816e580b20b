/*
 * callback.h - queued callbacks (docs/ARCHITECTURE.md, "Callbacks"): the
 * decisions taken on the way in and out of a callback that need neither
 * Redis nor the network: whether a number can be called back, whether the
 * hold answer offers a callback, what a keypad digit means, and what
 * Twilio's report on the outbound leg means for callback.lua.
 *
 * Ownership: nothing allocated; returned strings are static. No callbacks.
 */
#ifndef CG_GATE_CALLBACK_H
#define CG_GATE_CALLBACK_H

#include <stddef.h>

/* 1 when number can be dialled back: E.164 ('+', 8 to 15 digits, the
 * first not 0) and none of the numbers Twilio puts in From for a caller
 * who withheld theirs (anonymous, restricted, unknown, blocked). 0
 * otherwise, NULL included. */
int gate_callback_number_ok(const char *number);

struct gate_callback_offer {
    long long offer_s; /* CALLBACK_OFFER_SECONDS; 0: callbacks off */
    double estimate_s; /* the caller's own estimated wait */
    const char *from;  /* the caller's number */
    int window_open;   /* callbacks can be made now (CALLBACK_HOURS) */
    int state_waiting; /* the caller is waiting (not being admitted, not a callback already) */
};
/* 1 when the hold answer should carry the offer: callbacks on, the
 * estimate above offer_s, a callable number, the window open, the caller
 * waiting. */
int gate_callback_should_offer(const struct gate_callback_offer *o);

enum gate_callback_key {
    GATE_CB_KEY_NONE,   /* no digit (the Gather timed out): keep holding */
    GATE_CB_KEY_ACCEPT, /* 1: the callback */
    GATE_CB_KEY_NUMBER, /* 2: the callback, at a number the caller keys */
    GATE_CB_KEY_OTHER,  /* any other key: keep holding */
};
/* The meaning of Gather's Digits (NULL: none). */
enum gate_callback_key gate_callback_key(const char *digits);

enum gate_callback_leg {
    GATE_CB_LEG_PENDING,  /* nothing final yet (queued, ringing, in progress, completed after an
                             answer) */
    GATE_CB_LEG_ANSWERED, /* a person (or an unknown) answered: create the Vapi call */
    GATE_CB_LEG_FAILED,   /* busy, no answer, failed, canceled, a machine or a fax */
};
/* What Twilio's report on an outbound leg means: call_status is CallStatus
 * (status callback; NULL on the answer webhook), answered_by is AnsweredBy
 * (answering-machine detection; NULL when absent). *reason (may be NULL)
 * gets the word for callback.lua's failed (static), or "" otherwise.
 * A 'completed' leg after an answer is PENDING: the call was handed to the
 * assistant and ends as any call. */
enum gate_callback_leg gate_callback_leg(const char *call_status, const char *answered_by,
                                         const char **reason);

/* Our own callback URLs (callback_dial.c writes them; Twilio echoes them
 * back): 1 when sid is a CallSid we could have written (letters and
 * digits, 1 to 63 of them); 0 otherwise, NULL included. */
int gate_callback_sid_ok(const char *sid);
/* The attempt of such a URL: a decimal 1..1000 without sign, spaces or
 * leading zeros into *out, 0; -1 otherwise (NULL included). */
int gate_callback_attempt(const char *s, long long *out);

/* A number keyed on the phone: 1 to GATE_CB_KEYED_MAX digits (Twilio's
 * Digits without the finishing #). */
#define GATE_CB_KEYED_MAX 20
/* The length of the country code of an E.164 number (1 to 3), 0 when it
 * is not one. */
size_t gate_callback_country_code_len(const char *e164);
/* The E.164 form of a number the caller keyed, as they would dial it from
 * their own phone (from: their number, E.164 or anything else):
 *   00 + number          international: "+" and the rest;
 *   011 + number         the same from a North American number (+1);
 *   0 + national number  their own country's code in place of the 0;
 *   10 digits            from a +1 number: +1 and the 10 digits;
 *   anything else        the country code comes first: "+" and the digits.
 * Then it must pass gate_callback_number_ok(). out (n bytes) gets it, 0;
 * -1 (out unchanged) for anything else: other characters, too long, a
 * national number from a caller whose country is unknown, an uncallable
 * result. */
int gate_callback_keyed_number(const char *digits, const char *from, char *out, size_t n);

/* The promise made to a caller who chose a callback, from the bound of
 * their wait in seconds (the 90th percentile, plus the ring), rounded up as
 * a person says it: whole minutes up to 10, then the next 5 minutes up to
 * an hour, then whole hours. phrase (may be NULL) gets "within a minute",
 * "within 4 minutes", "within an hour", "within 2 hours". Returns the
 * promised seconds (60 at least; bounds above a day count as a day). */
double gate_callback_promise(double bound_s, char *phrase, size_t n);

#endif
