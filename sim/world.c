/*
 * world.c - what every module shares about the running world: its clock.
 * Kept apart from main.c so that the modules link into unit tests.
 */
#include "base/fmacros.h"

#include "sim.h"

#include "base/clock.h"

double sim_now_s(const struct sim_world *w)
{
    /* Before the scenario starts (and without a world) time stands at 0. */
    if (!w || w->start_ms == 0)
        return 0.0;
    return ((double)cg_mono_us() / 1000.0 - (double)w->start_ms) / 1000.0;
}
