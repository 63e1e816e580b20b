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

#endif
