/*
 * wtcg.h - a `callgate serve` process running the wait-time poller, for
 * the wait-time integration tests (test_waittime.c against the in-test
 * fake TaskRouter, test_waittime_sim.c against callgate-sim).
 *
 * Short intervals (WAIT_TIME_POLL_SECONDS=1, WAIT_TIME_LOCK_SECONDS=3,
 * fast Redis reconnects) and no Vapi settings: the gate's options that a
 * test does not set are left out of the environment. `extra` entries come
 * last, so they override (NAME=value) or remove (-NAME) any of these.
 *
 * Ownership: the caller owns struct cgt_wtcg; cgt_wtcg_start() fails the
 * test (fail_msg) with the process's output when it does not become
 * healthy.
 */
#ifndef CGT_WTCG_H
#define CGT_WTCG_H

#include "harness.h"

/* The intervals every instance runs with (seconds). */
#define CGT_WT_POLL_S 1 /* WAIT_TIME_POLL_SECONDS */
#define CGT_WT_LOCK_S 3 /* WAIT_TIME_LOCK_SECONDS */
/* The longest a takeover after kill -9 of the leader may take, until the
 * new leader's first write: the dead leader's lock expires (at most the
 * lock time after its last renewal), the next tick takes the lock, the
 * refresh is due within a poll interval; plus slack for a loaded machine
 * and the sanitizer build. */
#define CGT_WT_TAKEOVER_MAX_MS (1000 * CGT_WT_LOCK_S + 2 * 1000 * CGT_WT_POLL_S + 6000)

struct cgt_wtcg {
    struct cgt_proc proc;
    int port; /* 0 before the start: a free port is chosen */
    char base[64];
    char id[16];
};

struct cgt_wtcg_opts {
    const char *redis_url;
    const char *taskrouter_url;
    const char *account_sid;
    const char *auth_token;
    const char *workspace_sid;
};

/* Starts instance `index` (INSTANCE_ID=cg<index>) and waits for /health. */
void cgt_wtcg_start(struct cgt_wtcg *c, int index, const struct cgt_wtcg_opts *o,
                    const char *const *extra, int healthy_within_ms);

#endif
