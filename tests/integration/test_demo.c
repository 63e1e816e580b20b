/*
 * `callgate demo` end to end, shortened with CALLGATE_DEMO_SECONDS: it
 * finishes by itself with a readable summary and exit 0, and however it
 * ends (by itself, SIGTERM, SIGKILL) it leaves no process and, unless
 * killed outright, no temporary directory behind. With REDIS_URL it uses
 * that Redis, clears what an earlier run left under its gate name and
 * removes its own keys, even when interrupted.
 *
 * Each run gets a TMPDIR of its own, so "nothing left behind" is simply
 * "that directory is empty". The demo's descendants are recorded while it
 * runs (every process whose parent is the demo, and their process groups),
 * so that afterwards each can be checked to be gone.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "demo/proc.h"

#define MAX_TRACKED 32

struct tracked {
    pid_t pid[MAX_TRACKED];
    unsigned long long start[MAX_TRACKED]; /* start time: tells a reused pid apart */
    size_t n;
};

/* Reads ppid, process group and start time from /proc/<pid>/stat. */
static int proc_stat(pid_t pid, pid_t *ppid, pid_t *pgrp, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name is in parentheses and may hold anything; the
     * fields after the last ')' are fixed. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    char state;
    int pp, pg;
    unsigned long long st = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice threads itrealvalue starttime */
    if (sscanf(p + 1,
               " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &state, &pp, &pg, &st) != 4)
        return -1;
    if (state == 'Z' || state == 'X')
        return -1; /* exited; only its parent's wait is missing */
    *ppid = pp;
    *pgrp = pg;
    *start = st;
    return 0;
}

static void track(struct tracked *t, pid_t pid, unsigned long long start)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->pid[i] == pid && t->start[i] == start)
            return;
    if (t->n < MAX_TRACKED) {
        t->pid[t->n] = pid;
        t->start[t->n] = start;
        t->n++;
    }
}

/* Records every live process whose parent is `parent` or whose process
 * group is one of a tracked child's. */
static void scan_descendants(struct tracked *t, pid_t parent)
{
    DIR *dir = opendir("/proc");
    if (!dir)
        fail_msg("cannot read /proc: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end != '\0' || v <= 0)
            continue;
        pid_t ppid, pgrp;
        unsigned long long start;
        if (proc_stat((pid_t)v, &ppid, &pgrp, &start) != 0)
            continue;
        int mine = ppid == parent;
        for (size_t i = 0; !mine && i < t->n; i++)
            mine = pgrp == t->pid[i];
        if (mine)
            track(t, (pid_t)v, start);
    }
    closedir(dir);
}

/* Number of tracked processes still alive, after waiting up to timeout_ms
 * for them to go. */
static size_t survivors(const struct tracked *t, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        size_t alive = 0;
        for (size_t i = 0; i < t->n; i++) {
            pid_t ppid, pgrp;
            unsigned long long start;
            if (proc_stat(t->pid[i], &ppid, &pgrp, &start) == 0 && start == t->start[i])
                alive++;
        }
        if (alive == 0 || cgt_now_ms() >= deadline)
            return alive;
        usleep(50000);
    }
}

/* Entries left in dir (not counting . and ..), printed when any. */
static int dir_entries(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        printf("left behind: %s/%s\n", path, e->d_name);
        n++;
    }
    closedir(dir);
    return n;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        printf("could not remove %s\n", path);
}

struct run {
    char *tmp;
    struct cgt_proc p;
    struct tracked kids;
};

static void start_demo(struct run *r, const char *seconds, const char *redis_url)
{
    memset(r, 0, sizeof *r);
    r->tmp = cgt_tmpdir();
    char e_tmp[600], e_secs[64], e_redis[128];
    snprintf(e_tmp, sizeof e_tmp, "TMPDIR=%s", r->tmp);
    snprintf(e_secs, sizeof e_secs, "CALLGATE_DEMO_SECONDS=%s", seconds);
    snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", redis_url ? redis_url : "");
    const char *env[] = {e_tmp, e_secs, redis_url ? e_redis : "-REDIS_URL", "-CALLGATE_DEMO_KEEP",
                         NULL};
    const char *argv[] = {cgt_bin("callgate"), "demo", NULL};
    cgt_spawn(&r->p, argv, env);
}

/* Waits for the demo to exit by itself, tracking its descendants. */
static int wait_demo(struct run *r, int timeout_ms)
{
    pid_t pid = r->p.pid;
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        scan_descendants(&r->kids, pid);
        int rc = cgt_wait_exit(&r->p, 100);
        if (rc != -1)
            return rc;
        if (cgt_now_ms() >= deadline) {
            cgt_stop(&r->p, SIGKILL, 1000);
            return -1;
        }
    }
}

/* Tracks descendants until the demo has its `want` children (Redis, when
 * private, callgate-sim and callgate), then a moment more so that callers
 * are arriving. */
static void wait_running(struct run *r, size_t want, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    while (r->kids.n < want) {
        scan_descendants(&r->kids, r->p.pid);
        if (cgt_now_ms() >= deadline) {
            char *out = cgt_proc_output(&r->p);
            printf("%s\n", out);
            free(out);
            fail_msg("the demo did not start its processes in time");
        }
        usleep(20000);
    }
    uint64_t until = cgt_now_ms() + 3000;
    while (cgt_now_ms() < until) {
        scan_descendants(&r->kids, r->p.pid);
        usleep(50000);
    }
}

static void finish(struct run *r)
{
    rm_rf(r->tmp);
    free(r->tmp);
    unlink(r->p.log_path);
}

/* A figure from a summary line such as "  lost            0". */
static long figure(const char *out, const char *label)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\n  %s ", label);
    const char *p = strstr(out, pat);
    if (!p)
        fail_msg("no \"%s\" line in the summary:\n%s", label, out);
    return strtol(p + strlen(pat), NULL, 10);
}

static void test_runs_to_the_end(void **state)
{
    (void)state;
    struct run r;
    start_demo(&r, "4", NULL);
    int rc = wait_demo(&r, 60000);
    char *out = cgt_proc_output(&r.p);
    printf("%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "private Redis at redis://127.0.0.1:"));
    /* The wallboard's address, with the run's admin token. */
    assert_non_null(strstr(out, "watch the queue live: http://127.0.0.1:"));
    assert_non_null(strstr(out, "/wallboard?token="));
    assert_non_null(strstr(out, "callers in"));
    assert_non_null(strstr(out, "never over the limit"));
    assert_non_null(strstr(out, "All invariants held."));
    assert_null(strstr(out, "FAILED"));
    assert_int_equal(figure(out, "lost"), 0);
    assert_true(figure(out, "connected") > 0);
    /* Progress lines every 5 s when the output is not a terminal. */
    assert_non_null(strstr(out, "t=  "));
    assert_non_null(strstr(out, "active "));
    /* Redis, callgate-sim and callgate, all gone, and their files too. */
    assert_true(r.kids.n >= 3);
    assert_int_equal(survivors(&r.kids, 2000), 0);
    assert_int_equal(dir_entries(r.tmp), 0);
    free(out);
    finish(&r);
}

static void test_sigterm_with_redis_url(void **state)
{
    (void)state;
    struct cg_redis_server rs;
    cgt_redis_start(&rs);
    /* Left over by an earlier, interrupted run: must not disturb this one. */
    free(cgt_redis_cmd(&rs, "ZADD cg:{demo}:waiting 1 CAstale"));
    free(cgt_redis_cmd(&rs, "SET unrelated:key keep"));
    struct run r;
    start_demo(&r, "30", rs.url);
    wait_running(&r, 2, 20000);
    int rc = cgt_stop(&r.p, SIGTERM, 30000);
    char *out = cgt_proc_output(&r.p);
    printf("%s\n", out);
    assert_int_equal(rc, 130);
    assert_non_null(strstr(out, "using REDIS_URL"));
    assert_null(strstr(out, "private Redis"));
    assert_non_null(strstr(out, "interrupted after"));
    assert_non_null(strstr(out, "never over the limit"));
    assert_int_equal(figure(out, "lost"), 0);
    /* The demo's keys are gone, the user's are not. */
    char *keys = cgt_redis_cmd(&rs, "KEYS cg:*");
    assert_string_equal(keys, "");
    free(keys);
    char *kept = cgt_redis_cmd(&rs, "GET unrelated:key");
    assert_string_equal(kept, "keep");
    free(kept);
    assert_int_equal(survivors(&r.kids, 2000), 0);
    assert_int_equal(dir_entries(r.tmp), 0);
    free(out);
    finish(&r);
    cg_redis_server_stop(&rs);
}

static void test_sigkill_leaves_no_process(void **state)
{
    (void)state;
    struct run r;
    start_demo(&r, "30", NULL);
    wait_running(&r, 3, 20000);
    cgt_stop(&r.p, SIGKILL, 5000);
    /* Nobody is left to remove the directory, but the parent-death signal
     * takes every child down, the private Redis included. */
    assert_int_equal(survivors(&r.kids, 10000), 0);
    finish(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_to_the_end),
        cmocka_unit_test(test_sigterm_with_redis_url),
        cmocka_unit_test(test_sigkill_leaves_no_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
