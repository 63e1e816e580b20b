/*
 * estimate.h - estimated wait: per caller for the gate's own queue, and per
 * TaskQueue for the wait-time service. Pure functions of their inputs, no
 * state, no I/O.
 *
 * Both follow prior-art.md §5-§6: the queue-length (QL) estimator, which is
 * the most accurate when its inputs are right (Whitt 1999; Ibrahim & Whitt
 * 2009), corrected for abandonment and checked against head-of-line (HOL)
 * evidence. Neither ever returns 0 or NaN: a missing figure falls back to a
 * prior or a floor, never to "no wait".
 */
#ifndef CG_ESTIMATE_H
#define CG_ESTIMATE_H

#define CG_EWT_MIN_S           1.0
#define CG_EWT_MAX_S           86400.0 /* 24 h */
#define CG_EWT_ADMIT_S         5.0     /* admission latency until one is observed */
#define CG_EWT_DEFAULT_PRIOR_S 180.0
#define CG_EWT_MAX_ABANDON     0.75 /* see cg_ewt_seconds() */

struct cg_ewt_input {
    long ahead;             /* callers ahead of this one in the gate's queue (0 = next) */
    long slots;             /* effective concurrency limit c (values < 1 read as 1) */
    long busy;              /* slots in use now */
    double mean_service_s;  /* EWMA of observed call lengths; <= 0 when no call has ended yet */
    double prior_service_s; /* used while there is no observation; <= 0: CG_EWT_DEFAULT_PRIOR_S */
    double abandon_ratio;   /* fraction of callers who abandon before service, observed [0,1) */
    double waited_s;        /* how long this caller has already waited */
    double head_wait_s;     /* how long the head of the queue has waited */
    double admit_s;         /* observed time from admission to connection; <= 0: unknown */
};

/*
 * Estimated remaining wait in seconds, in [CG_EWT_MIN_S, CG_EWT_MAX_S].
 *
 *   A    = admit_s when observed, else CG_EWT_ADMIT_S: the caller's own
 *          admission (Vapi POST and Twilio redirect) once a slot is theirs
 *   S    = mean_service_s (how long a slot stays taken), or while no call
 *          has ended yet
 *          max(prior_service_s, head_wait_s, waited_s) when every slot is
 *          busy (the HOL bound below), else prior_service_s
 *   c    = max(slots, 1);  free = max(slots - busy, 0)
 *   a    = abandon_ratio clamped to [0, CG_EWT_MAX_ABANDON]
 *   k    = ahead * (1 - a)            callers ahead expected to stay
 *   r    = k + 1 - free               slot releases this caller needs
 *   EWT  = r <= 0 ? A : r * S / c + A
 *
 * With c busy slots and exponential call lengths of mean S, releases come
 * every S/c on average, so r releases take r*S/c (Whitt's QL estimator).
 *
 * Head-of-line bound, applied only before the first call has ended: then no
 * slot has been released since the head arrived, so every call in progress
 * has already lasted at least as long as the head (and this caller) has
 * waited, and S cannot be less than that. A configured prior of 3 minutes
 * would otherwise keep promising a short wait to a queue that has been
 * stuck for 20. No cap from the head's wait is applied: during a burst the
 * head has waited little while many callers arrived behind it, and a cap
 * would announce "less than a minute" to the 50th caller; an estimate that
 * is too short does more harm than one that is too long.
 *
 * The abandonment ratio is capped because it comes from few samples early
 * on (one abandon in one call reads 1.0), and a ratio near 1 would announce
 * "next" to everybody.
 */
double cg_ewt_seconds(const struct cg_ewt_input *in);

/* Exponentially weighted mean: old + alpha * (sample - old). old <= 0 (or
 * NaN) means "none yet": the sample becomes the mean. A negative or
 * non-finite sample is ignored (old is returned); alpha outside (0, 1] reads
 * as 0.1. */
double cg_ewma(double old_mean, double sample, double alpha);

#define CG_TQ_FLOOR_S       5.0 /* an available worker still has to be offered the task and accept */
#define CG_TQ_IDLE_CAP_S    60.0 /* see cg_tq_estimate_seconds() */
#define CG_TQ_DEFAULT_SVC_S 60.0

struct cg_tq_input {
    long pending_tasks;       /* realtime tasks_by_status.pending */
    long available_workers;   /* realtime total_available_workers */
    long eligible_workers;    /* realtime total_eligible_workers */
    double longest_waiting_s; /* realtime longest_task_waiting_age */
    double avg_accept_s;      /* cumulative avg_task_acceptance_time */
    double
        avg_wait_accepted_s; /* cumulative wait_duration_in_queue_until_accepted.avg (the seed's) */
};

/*
 * Estimated wait in seconds for a NEW task entering the TaskQueue, in
 * [CG_TQ_FLOOR_S, CG_EWT_MAX_S]:
 *
 *   need = pending + 1 - available    workers that must free up first
 *   need <= 0 (a worker is free for it):
 *       EWT = clamp(avg_accept_s, CG_TQ_FLOOR_S, CG_TQ_IDLE_CAP_S)
 *       (CG_TQ_FLOOR_S when avg_accept_s is 0). The cumulative average
 *       covers 15 minutes and may hold an earlier backlog; with a worker
 *       free now the wait is offer + acceptance, so it is capped.
 *   need > 0:
 *       svc = max(avg_wait_accepted_s, avg_accept_s), or
 *             CG_TQ_DEFAULT_SVC_S when both are 0
 *       EWT = need * svc / max(eligible, 1)
 *       TaskRouter reports no handle time; the recent wait until
 *       acceptance is the only per-task duration it gives, so it stands in
 *       for the time one worker takes to free up. It errs long (it includes
 *       queueing), which is the safe side.
 *   pending > 0 and available == 0 (backlog nobody is taking):
 *       EWT = max(EWT, longest_waiting_s). The HOL estimator: a new task
 *       waits about as long as the oldest has (Ibrahim & Whitt 2009). This
 *       is exactly when the trailing averages read 0 (nothing accepted in
 *       the window) and the seed's figure announces no wait at all.
 */
double cg_tq_estimate_seconds(const struct cg_tq_input *in);

#endif
