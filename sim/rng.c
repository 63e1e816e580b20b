/*
 * rng.c - xoshiro256** (Blackman and Vigna) seeded through splitmix64, as
 * its authors recommend: the same 64-bit seed gives the same stream on every
 * platform, which is what makes a scenario repeat exactly.
 */
#include "base/fmacros.h"

#include "rng.h"

#include "base/clock.h"

#include <math.h>
#include <stdlib.h>

#include "base/alloc.h"

struct sim_rng {
    uint64_t s[4];
    /* Box-Muller yields normals in pairs; the second is kept for the next
     * lognormal draw. Deterministic, since it depends only on the stream. */
    int have_spare;
    double spare;
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct sim_rng *sim_rng_new(uint64_t seed)
{
    struct sim_rng *r = cg_calloc(1, sizeof(*r));
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    return r;
}

void sim_rng_free(struct sim_rng *r)
{
    free(r);
}

uint64_t sim_rng_u64(struct sim_rng *r)
{
    return cg_xoshiro256ss(r->s);
}

double sim_rng_unit(struct sim_rng *r)
{
    /* The top 53 bits fill a double's mantissa exactly. */
    return (double)(sim_rng_u64(r) >> 11) * 0x1.0p-53;
}

int sim_rng_chance(struct sim_rng *r, double p)
{
    /* Always consume one draw, so that changing one probability does not
     * shift every later draw of the stream. */
    double u = sim_rng_unit(r);
    if (!(p > 0.0))
        return 0;
    if (p >= 1.0)
        return 1;
    return u < p;
}

double sim_rng_exp(struct sim_rng *r, double mean)
{
    /* 1 - u is in (0, 1], so the log is finite. */
    double u = sim_rng_unit(r);
    if (!(mean > 0.0))
        return 0.0;
    return -mean * log(1.0 - u);
}

static double normal(struct sim_rng *r)
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - sim_rng_unit(r); /* (0, 1]: log(u1) finite */
    double u2 = sim_rng_unit(r);
    double mag = sqrt(-2.0 * log(u1));
    double ang = 2.0 * M_PI * u2;
    r->spare = mag * sin(ang);
    r->have_spare = 1;
    return mag * cos(ang);
}

double sim_rng_draw(struct sim_rng *r, const struct sim_dist *d)
{
    double v;
    switch (d->kind) {
    case SIM_DIST_CONST:
        v = d->a;
        break;
    case SIM_DIST_UNIFORM:
        v = d->a + (d->b - d->a) * sim_rng_unit(r);
        break;
    case SIM_DIST_EXP:
        v = sim_rng_exp(r, d->a);
        break;
    case SIM_DIST_LOGNORMAL:
        v = d->a * exp(d->b * normal(r));
        break;
    case SIM_DIST_NONE:
    default:
        return -1.0;
    }
    if (v < d->min_s)
        v = d->min_s;
    if (d->max_s > 0.0 && v > d->max_s)
        v = d->max_s;
    return v;
}

void sim_rng_hex(struct sim_rng *r, char *out, int n)
{
    static const char digits[] = "0123456789abcdef";
    uint64_t bits = 0;
    int left = 0;
    for (int i = 0; i < n; i++) {
        if (left == 0) {
            bits = sim_rng_u64(r);
            left = 16;
        }
        out[i] = digits[bits & 0xf];
        bits >>= 4;
        left--;
    }
    out[n < 0 ? 0 : n] = '\0';
}
