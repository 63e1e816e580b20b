/*
 * doctor.h - `callgate doctor`: checks the live accounts and Redis that a
 * configuration points at, before callers find what is wrong. Read-only:
 * every request is a GET (Twilio, Vapi, TaskRouter) or a read command
 * (Redis). One line per check, OK, WARN or FAIL, each WARN and FAIL with
 * the fix. A foreground tool: it blocks (bclient.h).
 */
#ifndef CG_DOCTOR_H
#define CG_DOCTOR_H

#include <stdio.h>

struct cg_config;

/* Runs every check that applies to cfg's services and prints them to out.
 * Returns 0 when nothing failed (warnings allowed), 1 otherwise. */
int cg_doctor_run(const struct cg_config *cfg, FILE *out);

#endif
