/*
 * clock.h - time sources. Monotonic time measures durations and deadlines;
 * wall time is for timestamps that leave the process (logs, Redis records
 * shared between hosts, API fields).
 */
#ifndef CG_CLOCK_H
#define CG_CLOCK_H

#include <stddef.h>
#include <stdint.h>

uint64_t cg_mono_us(void);
uint64_t cg_mono_ms(void);
uint64_t cg_wall_ms(void);
/* CPU time of the calling thread, in microseconds (0 if unavailable): what
 * a step cost the loop, however long the machine kept it waiting. */
uint64_t cg_thread_cpu_us(void);
/* ISO-8601 UTC with milliseconds ("2026-11-21T16:49:12.123Z") into out[25]. */
void cg_iso8601_ms(uint64_t wall_ms, char out[25]);
/* Seconds since the epoch of an ISO-8601 UTC date-time as Twilio's v1 APIs
 * write it, "2015-08-18T08:46:15Z" (a fraction of a second and "+00:00"
 * accepted); -1 for anything else, NULL included. */
double cg_iso8601_parse(const char *s);
/* RFC 2822 date ("Tue, 04 Aug 2015 18:39:09 +0000") into out[32]. */
void cg_rfc2822(uint64_t wall_ms, char out[32]);
/* Random 64-bit value from a per-process generator seeded from the OS. */
uint64_t cg_random_u64(void);
/* One step of xoshiro256** over the state s (not all zero): the generator
 * behind cg_random_u64, and the simulator's seeded, reproducible one. */
uint64_t cg_xoshiro256ss(uint64_t s[4]);
/* Uniform in [0, n) (n > 0). */
uint64_t cg_random_below(uint64_t n);

#endif
