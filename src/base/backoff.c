#include "base/fmacros.h"

#include "base/backoff.h"

#include <math.h>
#include <stdint.h>

#include "base/clock.h"

long cg_backoff_ms(long base_ms, long cap_ms, unsigned attempt, double retry_after_s)
{
    if (base_ms < 1)
        base_ms = 1;
    if (cap_ms < base_ms)
        cap_ms = base_ms;
    /* Doubling stops at the cap, so no attempt count can overflow. */
    long c = base_ms;
    for (unsigned i = 0; i < attempt && c < cap_ms; i++)
        c = c > cap_ms / 2 ? cap_ms : c * 2;
    long lo = c / 2;
    long d = lo + (long)cg_random_below((uint64_t)(c - lo) + 1);
    if (retry_after_s > 0 && isfinite(retry_after_s)) {
        double ra = ceil(retry_after_s * 1000.0);
        if (ra > (double)CG_BACKOFF_RETRY_AFTER_MAX_MS)
            ra = (double)CG_BACKOFF_RETRY_AFTER_MAX_MS;
        if ((double)d < ra)
            d = (long)ra;
    }
    return d;
}
