/*
 * demo.h - `callgate demo`: the whole flow on this machine, with no account
 * and no configuration.
 *
 * It starts a private redis-server (or uses REDIS_URL, under its own
 * GATE_NAME "demo"), callgate-sim (found next to the callgate binary)
 * playing Twilio, Vapi and a morning surge of callers, and callgate itself
 * (`<this binary> serve`) configured against the simulator. While the
 * scenario runs it shows a live progress line read from the simulator's
 * /sim/status; at the end it stops callgate gracefully and prints the
 * simulator's report in plain words.
 *
 * Every child runs in its own process group with a parent-death signal, so
 * none outlives the demo, however it ends. The work directory (scenario,
 * report, logs) is removed on exit, unless the run failed or
 * CALLGATE_DEMO_KEEP=1, so its logs can be read.
 *
 * Environment:
 *   REDIS_URL              use this Redis instead of a private one
 *   CALLGATE_DEMO_SECONDS  arrivals last this long instead of 60 s (1-3600),
 *                          the schedule's shape kept; for a quick look and
 *                          the tests
 *   CALLGATE_DEMO_KEEP     1: keep the work directory and its logs
 */
#ifndef CG_DEMO_H
#define CG_DEMO_H

/* The demo scenario (scenarios/demo.json), compiled in. */
extern const char cg_demo_scenario_json[];

/* Runs the demo in the foreground. Returns the exit status: 0 when every
 * invariant held, 1 when one failed or the demo could not run, 130 when
 * interrupted (SIGINT, SIGTERM, SIGHUP). */
int cg_demo_run(void);

#endif
