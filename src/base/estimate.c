#include "base/fmacros.h"

#include "base/estimate.h"

#include <math.h>
#include <stddef.h>

/* Inputs come from Redis and from Twilio's JSON: treat anything non-finite
 * or negative as 0 so one bad figure cannot turn the estimate into NaN. */
static double sane(double v)
{
    return isfinite(v) && v > 0 ? v : 0;
}

static double clamp(double v, double lo, double hi)
{
    if (!(v >= lo)) /* NaN too */
        return lo;
    return v > hi ? hi : v;
}

/* The QL estimator's parts: releases needed, seconds between releases
 * (S/c), and the admission latency. */
static void ewt_parts(const struct cg_ewt_input *in, double *releases, double *step, double *admit)
{
    double c = in->slots < 1 ? 1 : (double)in->slots;
    double busy = in->busy < 0 ? 0 : (double)in->busy;
    double free_slots = c - busy > 0 ? c - busy : 0;
    double ahead = in->ahead < 0 ? 0 : (double)in->ahead;

    double s = sane(in->mean_service_s);
    if (s == 0) {
        s = sane(in->prior_service_s);
        if (s == 0)
            s = CG_EWT_DEFAULT_PRIOR_S;
        /* Head-of-line bound (see estimate.h): with every slot busy and no
         * call ended yet, the calls in progress have outlasted these waits. */
        if (free_slots == 0) {
            s = fmax(s, sane(in->head_wait_s));
            s = fmax(s, sane(in->waited_s));
        }
    }

    double a = clamp(sane(in->abandon_ratio), 0, CG_EWT_MAX_ABANDON);
    *admit = sane(in->admit_s);
    if (*admit == 0)
        *admit = CG_EWT_ADMIT_S;
    *releases = ahead * (1 - a) + 1 - free_slots;
    *step = s / c;
}

double cg_ewt_seconds(const struct cg_ewt_input *in)
{
    if (in == NULL)
        return CG_EWT_DEFAULT_PRIOR_S;
    double releases, step, admit;
    ewt_parts(in, &releases, &step, &admit);
    double ewt = releases <= 0 ? admit : releases * step + admit;
    return clamp(ewt, CG_EWT_MIN_S, CG_EWT_MAX_S);
}

double cg_ewt_bound_seconds(const struct cg_ewt_input *in)
{
    if (in == NULL)
        return CG_EWT_DEFAULT_PRIOR_S;
    double releases, step, admit;
    ewt_parts(in, &releases, &step, &admit);
    if (releases <= 0)
        return clamp(admit, CG_EWT_MIN_S, CG_EWT_MAX_S);
    /* r releases of c exponential slots of mean S: Gamma(r, S/c). Its
     * quantile by Wilson-Hilferty (chi-square with 2r degrees of freedom):
     * r * (1 - 1/(9r) + z/(3 sqrt r))^3, within a few percent even at r = 1
     * (2.28 against the exact 2.30 of an exponential's 90th percentile). */
    double r = releases;
    double f = 1 - 1 / (9 * r) + CG_EWT_BOUND_Z / (3 * sqrt(r));
    double bound = step * r * f * f * f + admit;
    return clamp(fmax(bound, cg_ewt_seconds(in)), CG_EWT_MIN_S, CG_EWT_MAX_S);
}

static double count_in(long v)
{
    return v > 0 ? (double)v : 0;
}

double cg_tq_estimate_seconds(const struct cg_tq_input *in)
{
    if (in == NULL)
        return CG_TQ_DEFAULT_SVC_S;
    double pending = count_in(in->pending_tasks);
    double avail = count_in(in->available_workers);
    double busy = count_in(in->busy_workers);
    double acc = count_in(in->accepted);
    double can = count_in(in->canceled);
    double head = sane(in->longest_waiting_s);
    double window = sane(in->window_s);
    if (window == 0)
        window = CG_TQ_WINDOW_S;

    double a = acc + can > 0 ? clamp(can / (acc + can), 0, CG_EWT_MAX_ABANDON) : 0;
    double need = pending * (1 - a) + 1 - avail;
    if (need <= 0)
        return clamp(sane(in->accept_min_s), CG_TQ_FLOOR_S, CG_TQ_IDLE_CAP_S);
    double ewt;
    if (acc > 0 && busy + avail > 0) {
        ewt = need * window / acc;
        if (pending > 0 && avail == 0)
            ewt = (ewt + head) / 2;
    } else {
        ewt = need * CG_TQ_DEFAULT_SVC_S / (busy > 1 ? busy : 1);
        if (pending > 0)
            ewt = fmax(ewt, head);
    }
    return clamp(ewt, CG_TQ_FLOOR_S, CG_EWT_MAX_S);
}
