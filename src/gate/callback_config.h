/*
 * callback_config.h - the start-time checks of the callback options
 * (CALLBACK_*; docs/ARCHITECTURE.md, "Callbacks") that need more than one
 * option or the gate's own parsers: CALLBACK_HOURS parsed with its zone,
 * and options set while callbacks are off named as such.
 *
 * Ownership: nothing allocated; *out is the caller's. No callbacks.
 */
#ifndef CG_GATE_CALLBACK_CONFIG_H
#define CG_GATE_CALLBACK_CONFIG_H

#include "gate/callback_hours.h"

struct cg_config;
struct cg_config_errors;

/* Adds every problem (each naming its fix) to errs; warnings for options
 * that have no effect. 0, or -1 when there was a problem. */
int gate_callback_check_config(const struct cg_config *cfg, struct cg_config_errors *errs);

/* CALLBACK_HOURS into *out: 1 when a window is set, 0 when callbacks may be
 * made at any time, -1 when it does not parse (checked at start). */
int gate_callback_hours_of(const struct cg_config *cfg, struct gate_callback_hours *out);

/* The slot a callback's dial holds while it rings: the ring time, Twilio's
 * answering-machine detection (up to 30 s after the answer) and a margin
 * for the webhooks, in ms. */
long long gate_callback_dial_lease_ms(const struct cg_config *cfg);

#endif
