/*
 * wtscore.h - the simulator as judge of callgate's wait-time service: it
 * samples callgate's GET /wait-times while serving, and scores each
 * figure against the simulated TaskRouter's truth.
 *
 * Sampling (`callgate-sim serve --wait-times URL --sample-ms N`). Every N
 * ms one GET URL/wait-times (never two at once) over the sim's own async
 * HTTP client. Each record of the answer becomes a sample: the model time
 * the answer arrived, the queue, callgate's estimate (estimateSeconds), the
 * seed's figure (waitTime: the cumulative average wait until accepted) and
 * whether callgate marked it stale. At most max_samples wait to be scored;
 * beyond that new ones are dropped and counted.
 *
 * Scoring. A sample taken at model time t is judged by the actual wait of
 * the first task that entered its queue at or after t
 * (sim_taskrouter_actual_wait_at): what a caller told the figure at t
 * went on to wait. Accepted: scored (absolute and signed error of both
 * figures), then forgotten. Canceled: skipped (that caller's wait is
 * unknown). Still pending: its age so far is a lower bound of the truth;
 * the sample is counted as a lower bound, and as "below" for each figure
 * smaller than that age (a figure that is already wrong whatever happens:
 * the seed's 0 for a queue nobody serves). No task yet: awaiting. Pending
 * and awaiting samples are looked at again at the next scoring; samples
 * resolve in the sampling tick, so that the truth is read long before the
 * model's bounded history forgets it.
 *
 * Ownership and callbacks. The scorer borrows base, httpc and tr (they
 * must outlive it). Its HTTP callback fires from the loop; a request still
 * out when sim_wtscore_free() runs completes later (httpc cancels it when
 * freed) and then only frees its own context. Free the scorer before the
 * HTTP client and the TaskRouter.
 */
#ifndef SIM_WTSCORE_H
#define SIM_WTSCORE_H

#include <stddef.h>

#include <jansson.h>

struct event_base;
struct cg_httpc;
struct sim_taskrouter;
struct sim_wtscore;

#define SIM_WTSCORE_DEFAULT_SAMPLE_MS 1000
#define SIM_WTSCORE_MAX_SAMPLES       500000

/* A scorer over tr. url: a callgate's base URL to sample (trailing slashes
 * ignored); NULL samples nothing by itself (samples come from
 * sim_wtscore_add() and sim_wtscore_ingest(): unit tests). base and httpc
 * may be NULL when url is. sample_ms < 1 reads as the default; max_samples
 * 0 as SIM_WTSCORE_MAX_SAMPLES. NULL when the timer cannot be armed. */
struct sim_wtscore *sim_wtscore_new(struct event_base *base, struct cg_httpc *httpc,
                                    struct sim_taskrouter *tr, const char *url, long sample_ms,
                                    size_t max_samples);
/* NULL is a no-op. */
void sim_wtscore_free(struct sim_wtscore *s);

/* One sample at model time t (times of one queue must not go backwards).
 * 0 when kept; -1 when sid is not a simulated queue (counted as unknown) or
 * the bound is reached (counted as dropped). */
int sim_wtscore_add(struct sim_wtscore *s, double t, const char *sid, double estimate_s,
                    double seed_s, int stale);
/* A body of GET /wait-times: one sample per record, at model time t.
 * Returns the records kept, or -1 when the body is not that JSON. */
long sim_wtscore_ingest(struct sim_wtscore *s, const char *body, size_t len, double t);
/* Resolves what can be resolved now (the sampling tick does this too). */
void sim_wtscore_resolve(struct sim_wtscore *s);

/* The figures, resolved as of now (a new reference): samples, scored,
 * mae_callgate_s, mae_seed_s, ratio, bias_callgate_s, bias_seed_s,
 * callgate_closer, seed_closer, canceled_skipped, awaiting,
 * pending_lower_bounds, below_lower_bound_callgate, below_lower_bound_seed,
 * stalled_lower_bounds, below_lower_bound_stalled_callgate and _seed (the
 * same on queues whose workers are all offline), shortfall_callgate_s,
 * shortfall_seed_s (mean of how far each figure is below the age reached,
 * over the lower bounds), stale_samples, dropped,
 * unknown_queue, polls, poll_errors. Means are null without samples. */
json_t *sim_wtscore_json(struct sim_wtscore *s);

#endif
