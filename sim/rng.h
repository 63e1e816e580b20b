/*
 * rng.h - deterministic random numbers for the simulator: the same seed
 * gives the same callers, whatever the machine or the timing.
 */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

#include "scenario.h"

struct sim_rng;

struct sim_rng *sim_rng_new(uint64_t seed);
void sim_rng_free(struct sim_rng *r);
uint64_t sim_rng_u64(struct sim_rng *r);
/* Uniform in [0, 1). */
double sim_rng_unit(struct sim_rng *r);
/* 1 with probability p. */
int sim_rng_chance(struct sim_rng *r, double p);
/* A draw from d (seconds), clamped to [min_s, max_s]; -1 for SIM_DIST_NONE. */
double sim_rng_draw(struct sim_rng *r, const struct sim_dist *d);
/* Exponential with the given mean. */
double sim_rng_exp(struct sim_rng *r, double mean);
/* n random hex digits into out (NUL-terminated; out has n + 1 bytes). */
void sim_rng_hex(struct sim_rng *r, char *out, int n);

#endif
