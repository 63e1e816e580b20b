/*
 * backoff.h - the one retry delay: capped exponential backoff with jitter,
 * at least what the peer asked for.
 *
 * Retry number `attempt` (0 for the first retry after a failure) waits a
 * uniform random time in [c/2, c], where c = min(cap_ms, base_ms * 2^attempt)
 * ("equal jitter": instances that failed together do not retry in step, and
 * no retry comes at once). When the peer sent Retry-After (retry_after_s > 0,
 * from cg_httpc or a Redis LOADING answer), the delay is at least that, even
 * above cap_ms, up to CG_BACKOFF_RETRY_AFTER_MAX_MS: a peer that says "in two
 * minutes" is not helped by a request every thirty seconds, and one that says
 * "in a week" is not believed.
 *
 * Used by every retry loop in callgate: the Redis reconnect, the Twilio and
 * Vapi clients, admission after failures, the TaskRouter poller.
 */
#ifndef CG_BACKOFF_H
#define CG_BACKOFF_H

#define CG_BACKOFF_RETRY_AFTER_MAX_MS 300000L

/* base_ms < 1 counts as 1, cap_ms < base_ms as base_ms. */
long cg_backoff_ms(long base_ms, long cap_ms, unsigned attempt, double retry_after_s);

#endif
