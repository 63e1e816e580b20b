/*
 * worker.c - the thread that parses TaskRouter's pages (worker.h has the
 * threading rule). Two pipes carry job pointers: jobs[] to the worker,
 * done[] back to the loop, whose read event delivers them. Only one job is
 * out at a time in practice (a refresh fetches one page at a time), far
 * below what a pipe holds, so the worker's blocking write never waits.
 */
#include "base/fmacros.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "waittime/internal.h"
#include "waittime/worker.h"

/* How much nicer than the loop the worker runs. */
#define WORKER_NICE 10

struct wt_worker {
    int jobs[2]; /* [0] the worker reads, [1] the loop writes */
    int done[2]; /* [0] the loop reads (non-blocking), [1] the worker writes */
    struct event *ev;
    pthread_t thread;
    int started;
    wt_job_done_cb cb;
    void *arg;
};

/* ---- jobs ---- */

struct wt_job *wt_job_new(enum wt_job_kind kind, const char *body, size_t len, size_t max_items)
{
    struct wt_job *job = cg_calloc(1, sizeof *job);
    job->kind = kind;
    job->body = cg_malloc(len + 1);
    memcpy(job->body, body, len);
    job->body[len] = '\0';
    job->len = len;
    job->max_items = max_items;
    job->retry_after_s = -1;
    job->rate_limit_limit = job->rate_limit_remaining = -1;
    return job;
}

/* What the parse allocated. */
static void job_free_parsed(struct wt_job *job)
{
    free(job->items);
    job->items = NULL;
    job->n = 0;
    for (size_t i = 0; i < job->nnames; i++)
        free(job->names[i].name);
    free(job->names);
    job->names = NULL;
    job->nnames = 0;
    free(job->next_url);
    job->next_url = NULL;
    for (size_t i = 0; job->enc != NULL && i < job->nrecs; i++)
        free(job->enc[i]);
    free(job->enc);
    job->enc = NULL;
    free(job->enc_len);
    job->enc_len = NULL;
    free(job->seed);
    job->seed = NULL;
}

/* The Redis records and the seed's value of the job's records. */
static void encode(struct wt_job *job)
{
    size_t n = job->nrecs;
    job->enc = cg_calloc(n ? n : 1, sizeof *job->enc);
    job->enc_len = cg_calloc(n ? n : 1, sizeof *job->enc_len);
    struct cg_buf b;
    cg_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        cg_buf_reset(&b);
        cg_wt_record_encode(&job->recs[i], &b);
        job->enc_len[i] = b.len;
        job->enc[i] = cg_strndup(cg_buf_str(&b), b.len);
    }
    cg_buf_free(&b);
    struct cg_buf seed;
    cg_buf_init(&seed, WT_REPLY_MAX);
    if (cg_wt_seed_json(job->recs, n, &seed) == 0) {
        job->seed_len = seed.len;
        job->seed = cg_buf_take(&seed);
        job->rc = 0;
    } else {
        cg_buf_free(&seed);
        job->rc = -1;
    }
}

struct wt_job *wt_job_encode(const struct cg_wt_record *recs, size_t n)
{
    struct wt_job *job = cg_calloc(1, sizeof *job);
    job->kind = WT_JOB_ENCODE;
    job->recs = recs;
    job->nrecs = n;
    job->retry_after_s = -1;
    job->rate_limit_limit = job->rate_limit_remaining = -1;
    return job;
}

void wt_job_free(struct wt_job *job)
{
    if (job == NULL)
        return;
    free(job->body);
    job_free_parsed(job);
    free(job);
}

void wt_job_run(struct wt_job *job)
{
    uint64_t t0 = cg_thread_cpu_us();
    if (job->kind == WT_JOB_ENCODE)
        encode(job);
    else if (job->kind == WT_JOB_STATS)
        job->rc = cg_wt_parse_stats(job->body, job->len, job->max_items, &job->items, &job->n,
                                    &job->skipped, &job->next_url, job->err, sizeof job->err);
    else
        job->rc = cg_wt_parse_names(job->body, job->len, job->max_items, &job->names, &job->nnames,
                                    &job->next_url, job->err, sizeof job->err);
    job->parsed = 1;
    job->parse_us = cg_thread_cpu_us() - t0;
}

/* ---- the pipes ---- */

/* One pointer through a pipe, whole (a pointer is below PIPE_BUF: the
 * write is atomic). 0, or -1 when the pipe is closed or broken. */
static int put_ptr(int fd, struct wt_job *job)
{
    for (;;) {
        ssize_t w = write(fd, &job, sizeof job);
        if (w == (ssize_t)sizeof job)
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/* 1 with *job read, 0 at the end of the pipe (or nothing there yet, on the
 * non-blocking end), -1 on an error. */
static int get_ptr(int fd, struct wt_job **job)
{
    for (;;) {
        ssize_t r = read(fd, job, sizeof *job);
        if (r == (ssize_t)sizeof *job)
            return 1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
            return 0;
        return -1;
    }
}

/* The thread: reads jobs until the loop closes its pipe. It reads only
 * the two descriptors, set before it started and closed after it ends. */
static void *run(void *arg)
{
    const struct wt_worker *k = arg;
    int in = k->jobs[0], out = k->done[1];
    /* Below the loop: when the two compete for a core, the reads the loop
     * answers come first and the refresh waits. Linux takes a thread id
     * here (the nice value is per thread); if it cannot be lowered, the
     * parse runs at the loop's priority, as it did on the loop. */
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    if (errno == 0)
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), prio + WORKER_NICE);
    struct wt_job *job;
    while (get_ptr(in, &job) == 1) {
        if (job->parsed) {
            /* Given back by the loop (its body already freed there): what
             * the parse allocated is freed here, on the thread that
             * allocated it. */
            wt_job_free(job);
            continue;
        }
        wt_job_run(job);
        if (put_ptr(out, job) != 0) {
            /* Cannot happen while the loop holds its end; the job is ours. */
            wt_job_free(job);
            break;
        }
    }
    return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct wt_worker *k = arg;
    struct wt_job *job;
    while (get_ptr(fd, &job) == 1)
        k->cb(job, k->arg);
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++) {
        if (p[i] >= 0)
            close(p[i]);
        p[i] = -1;
    }
}

static int set_flags(int fd, int nonblock)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, nonblock ? fl | O_NONBLOCK : fl) != 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

struct wt_worker *wt_worker_new(struct event_base *base, wt_job_done_cb done, void *arg, char *err,
                                size_t errlen)
{
    struct wt_worker *k = cg_calloc(1, sizeof *k);
    k->jobs[0] = k->jobs[1] = k->done[0] = k->done[1] = -1;
    k->cb = done;
    k->arg = arg;
    if (pipe(k->jobs) != 0 || pipe(k->done) != 0) {
        cg_err_set(err, errlen, "cannot create the wait-time worker's pipes: %s", strerror(errno));
        wt_worker_free(k);
        return NULL;
    }
    if (set_flags(k->jobs[0], 0) != 0 || set_flags(k->jobs[1], 0) != 0 ||
        set_flags(k->done[0], 1) != 0 || set_flags(k->done[1], 0) != 0) {
        cg_err_set(err, errlen, "cannot set up the wait-time worker's pipes: %s", strerror(errno));
        wt_worker_free(k);
        return NULL;
    }
    k->ev = event_new(base, k->done[0], EV_READ | EV_PERSIST, on_done, k);
    if (k->ev == NULL || event_add(k->ev, NULL) != 0) {
        cg_err_set(err, errlen, "cannot watch the wait-time worker's pipe");
        wt_worker_free(k);
        return NULL;
    }
    int rc = pthread_create(&k->thread, NULL, run, k);
    if (rc != 0) {
        cg_err_set(err, errlen, "cannot start the wait-time worker thread: %s", strerror(rc));
        wt_worker_free(k);
        return NULL;
    }
    k->started = 1;
    return k;
}

void wt_worker_release(struct wt_worker *k, struct wt_job *job)
{
    if (job == NULL)
        return;
    /* The loop's own allocation, freed by the loop. */
    free(job->body);
    job->body = NULL;
    if (!job->parsed || wt_worker_submit(k, job) != 0)
        wt_job_free(job);
}

int wt_worker_submit(struct wt_worker *k, struct wt_job *job)
{
    if (k == NULL || !k->started || put_ptr(k->jobs[1], job) != 0)
        return -1;
    return 0;
}

void wt_worker_free(struct wt_worker *k)
{
    if (k == NULL)
        return;
    /* The end of its pipe ends the thread, after the job in hand. */
    if (k->jobs[1] >= 0)
        close(k->jobs[1]);
    k->jobs[1] = -1;
    if (k->started) {
        int rc = pthread_join(k->thread, NULL);
        if (rc != 0)
            cg_log_error("wait-time worker thread not joined", "error=%s", strerror(rc));
    }
    if (k->ev)
        event_free(k->ev);
    struct wt_job *job;
    while (k->done[0] >= 0 && get_ptr(k->done[0], &job) == 1)
        wt_job_free(job);
    /* Jobs the thread never took (it only stops early on a broken pipe). */
    if (k->jobs[0] >= 0 && set_flags(k->jobs[0], 1) == 0)
        while (get_ptr(k->jobs[0], &job) == 1)
            wt_job_free(job);
    close_pair(k->jobs);
    close_pair(k->done);
    free(k);
}
