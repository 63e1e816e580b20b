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

/* z of the 90th percentile of a normal law. */
#define CG_EWT_BOUND_Z 1.2816

/*
 * A wait the caller will not exceed 9 times in 10 under the same model: the
 * 90th percentile of the time r releases take (a Gamma(r, S/c) law: each
 * release comes after an exponential time of mean S/c), plus A; never below
 * cg_ewt_seconds(). It is the time a promise can keep (a callback's "we
 * will call you within"), where the mean is missed about half the time.
 * The margin grows as sqrt(r): about 1.28 * sqrt(r) * S/c beyond the mean.
 */
double cg_ewt_bound_seconds(const struct cg_ewt_input *in);

#define CG_TQ_FLOOR_S       1.0   /* never "no wait": see cg_tq_estimate_seconds() */
#define CG_TQ_IDLE_CAP_S    60.0  /* see cg_tq_estimate_seconds() */
#define CG_TQ_DEFAULT_SVC_S 60.0  /* a worker's handle time while there is no throughput figure */
#define CG_TQ_WINDOW_S      900.0 /* TaskRouter's default cumulative window: 15 minutes */

/* One TaskQueue's statistics as TaskQueues/Statistics gives them. Counts
 * below 0 and figures that are negative or not finite read as 0. */
struct cg_tq_input {
    long pending_tasks;       /* realtime tasks_by_status.pending */
    long available_workers;   /* realtime total_available_workers */
    long busy_workers;        /* realtime tasks_by_status assigned + reserved + wrapping */
    double longest_waiting_s; /* realtime longest_task_waiting_age */
    long accepted;            /* cumulative reservations_accepted */
    long canceled;            /* cumulative tasks_canceled */
    double window_s;          /* cumulative end_time - start_time; <= 0: CG_TQ_WINDOW_S */
    double accept_min_s;      /* cumulative wait_duration_until_accepted.min */
};

/*
 * Estimated wait in seconds for a NEW task entering the TaskQueue, in
 * [CG_TQ_FLOOR_S, CG_EWT_MAX_S]. TaskRouter gives no handle time, so the
 * model works with what it does give: the queue now (realtime) and what
 * the queue got done over the cumulative window.
 *
 *   a    = canceled / (accepted + canceled), capped at CG_EWT_MAX_ABANDON:
 *          the share of tasks that give up before a worker takes them
 *   need = pending * (1 - a) + 1 - available
 *          worker releases this task waits for: the tasks ahead that will
 *          still be there, itself, minus the workers free now
 *
 *   need <= 0 (a worker is free for it): the offer and the acceptance,
 *       EWT = clamp(accept_min_s, CG_TQ_FLOOR_S, CG_TQ_IDLE_CAP_S): the
 *       quickest acceptance of the window is the best figure of that (an
 *       average would hold every wait in the queue, which a free worker
 *       does not impose); capped, one slow acceptance must not make an
 *       idle queue look busy.
 *
 *   need > 0, tasks were accepted in the window and workers are on duty:
 *       QL  = need / (accepted / window)
 *       The throughput over the window is how fast this queue's workers
 *       free up (Little's law for the workers: releases per second = busy
 *       workers / handle time, which the accepted count measures when the
 *       queue kept them busy). This is the queue-length estimator (Whitt
 *       1999) with its service rate measured rather than assumed. A queue
 *       that was not kept busy, or is younger than the window, reads as
 *       slower than it is, which errs long.
 *       With a backlog nobody is taking (pending > 0, available == 0):
 *       EWT = (QL + longest_waiting_s) / 2
 *       The head-of-line estimator (Ibrahim & Whitt 2009: a new task
 *       waits about as long as the oldest has so far) answers from the
 *       last minutes, QL from the queue now and the window's rate; their
 *       errors are largely independent, and against the simulator's truth
 *       their mean beats either alone. Else EWT = QL.
 *
 *   need > 0 and no throughput: nothing accepted in the window, or no
 *       worker busy nor available (all offline):
 *       EWT = need * CG_TQ_DEFAULT_SVC_S / max(busy, 1), and with a
 *       backlog at least longest_waiting_s: nobody serves it, so a new
 *       task waits at least as long as the oldest already has. This is
 *       exactly when the trailing averages read 0 (nothing accepted) and
 *       the seed's figure announces no wait at all.
 *
 * Never 0 for lack of data: no figure at all gives CG_TQ_FLOOR_S at the
 * least. Measured against the simulator's truth by callgate-sim serve
 * --wait-times (tests/integration/test_waittime_sim.c).
 */
double cg_tq_estimate_seconds(const struct cg_tq_input *in);

#endif
