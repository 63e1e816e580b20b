/*
 * callback_dial.h - one dial of a queued callback (docs/ARCHITECTURE.md,
 * "Callbacks"): the claim (callback.lua dial: one dial per attempt, whoever
 * asks and however often), Twilio's Calls create with answering-machine
 * detection, then the outbound leg recorded (ringing) or, for a call
 * Twilio refuses, the callback settled as failed. No Vapi call is made
 * here: that waits for a person to answer.
 *
 * Callback rules: gate_callback_dial either returns -1 (nothing started,
 * no callback) or calls cb exactly once, from the loop. The reply given to
 * cb (the admission list of callback.lua failed, from element 3, when
 * the slot was refilled) and leg are valid only during the callback.
 * Ownership: the dialer's pointers are borrowed and must outlive every
 * dial in flight; sid is copied.
 */
#ifndef CG_GATE_CALLBACK_DIAL_H
#define CG_GATE_CALLBACK_DIAL_H

#include <hiredis/hiredis.h>

#include "gate/store.h"
#include "twilio/api.h"

struct gate_callback_dialer {
    struct gate_store *store;
    struct cg_twilio *twilio;
    const char *public_url; /* the gate's PUBLIC_URL, without a trailing '/' */
    int ring_s;             /* Twilio's Timeout */
    int machine_detection;  /* 1: MachineDetection=Enable */
    /* For the refill of a slot freed by a refused call (callback.lua failed). */
    long long limit;
    long long batch;
    long long lease_ms;
    const char *instance;
};

enum gate_callback_dialed {
    GATE_CB_DIALED_RINGING, /* Twilio placed the call; leg is its CallSid */
    GATE_CB_DIALED_STALE,   /* the claim was not this attempt's: nothing dialled (or, when
                             * the reservation ran out while Twilio answered, the leg is
                             * hung up at once) */
    GATE_CB_DIALED_FAILED,  /* Twilio refused the call (or the number): settled as failed */
    GATE_CB_DIALED_UNKNOWN, /* no answer from Twilio (5xx, transport): the call may exist;
                             * the slot's lease running out settles the attempt */
    GATE_CB_DIALED_ERROR,   /* Redis failed; the lease settles it */
};

typedef void (*gate_callback_dial_cb)(enum gate_callback_dialed d, const char *leg,
                                      const redisReply *settled, void *arg);

/* Dials attempt of the callback of sid (admit's sid, number, -attempt). */
int gate_callback_dial(const struct gate_callback_dialer *d, const char *sid, long long attempt,
                       gate_callback_dial_cb cb, void *arg);

#endif
