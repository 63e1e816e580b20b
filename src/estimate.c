#include "fmacros.h"

#include "estimate.h"

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

double cg_ewt_seconds(const struct cg_ewt_input *in)
{
    if (in == NULL)
        return CG_EWT_DEFAULT_PRIOR_S;
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
    double admit = sane(in->admit_s);
    if (admit == 0)
        admit = CG_EWT_ADMIT_S;
    double releases = ahead * (1 - a) + 1 - free_slots;
    double ewt = releases <= 0 ? admit : releases * s / c + admit;
    return clamp(ewt, CG_EWT_MIN_S, CG_EWT_MAX_S);
}

double cg_ewma(double old_mean, double sample, double alpha)
{
    if (!isfinite(sample) || sample < 0)
        return old_mean;
    if (!(alpha > 0 && alpha <= 1))
        alpha = 0.1;
    if (!(old_mean > 0) || !isfinite(old_mean))
        return sample;
    return old_mean + alpha * (sample - old_mean);
}

double cg_tq_estimate_seconds(const struct cg_tq_input *in)
{
    if (in == NULL)
        return CG_TQ_DEFAULT_SVC_S;
    double pending = in->pending_tasks < 0 ? 0 : (double)in->pending_tasks;
    double avail = in->available_workers < 0 ? 0 : (double)in->available_workers;
    double eligible = in->eligible_workers < 1 ? 1 : (double)in->eligible_workers;
    double accept = sane(in->avg_accept_s);
    double waited = sane(in->avg_wait_accepted_s);

    double need = pending + 1 - avail;
    double ewt;
    if (need <= 0) {
        ewt = clamp(accept, CG_TQ_FLOOR_S, CG_TQ_IDLE_CAP_S);
    } else {
        double svc = fmax(waited, accept);
        if (svc == 0)
            svc = CG_TQ_DEFAULT_SVC_S;
        ewt = need * svc / eligible;
    }
    if (pending > 0 && avail == 0)
        ewt = fmax(ewt, sane(in->longest_waiting_s));
    return clamp(ewt, CG_TQ_FLOOR_S, CG_EWT_MAX_S);
}
