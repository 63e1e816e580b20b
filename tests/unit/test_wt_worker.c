/*
 * test_wt_worker.c - the wait-time service's worker thread (worker.h): a
 * page handed over comes back parsed on the loop's thread, never from
 * inside the submit; a bad page comes back with its error; an encode job
 * gives the same bytes as encoding on the loop; jobs still out when the
 * worker is freed are freed with it.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "waittime/waittime.h"
#include "waittime/worker.h"

#define QUEUES 1500

struct got {
    struct wt_job *jobs[8];
    int n;
    pthread_t thread;
    int other_thread; /* a callback ran on another thread */
};

static void on_done(struct wt_job *job, void *arg)
{
    struct got *g = arg;
    if (!pthread_equal(pthread_self(), g->thread))
        g->other_thread = 1;
    assert_true(g->n < 8);
    g->jobs[g->n++] = job;
}

/* Runs the loop until `want` jobs came back (a few seconds at most). */
static void wait_jobs(struct event_base *base, struct got *g, int want)
{
    for (int i = 0; i < 500 && g->n < want; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    assert_int_equal(g->n, want);
    assert_false(g->other_thread);
}

static void sid_of(size_t i, char sid[CG_WT_SID_LEN + 1])
{
    snprintf(sid, CG_WT_SID_LEN + 1, "WQ%032zx", i);
}

/* A statistics page of n queues with a next page. */
static char *big_page(size_t n, size_t *len)
{
    struct cg_buf b;
    cg_buf_init(&b, 64 * 1024 * 1024);
    cg_buf_appends(&b, "{\"meta\":{\"key\":\"task_queues_statistics\",\"next_page_url\":"
                       "\"https://taskrouter.twilio.com/v1/next\"},"
                       "\"task_queues_statistics\":[");
    for (size_t i = 0; i < n; i++) {
        char sid[CG_WT_SID_LEN + 1];
        sid_of(i, sid);
        cg_buf_printf(&b,
                      "%s{\"task_queue_sid\":\"%s\",\"cumulative\":{\"avg_task_acceptance_time\":"
                      "%zu,\"reservations_accepted\":%zu},\"realtime\":{"
                      "\"longest_task_waiting_age\":4,\"tasks_by_status\":{\"pending\":%zu}}}",
                      i ? "," : "", sid, i % 60, i, i % 7);
    }
    cg_buf_appends(&b, "]}");
    *len = b.len;
    return cg_buf_take(&b);
}

static void test_page_parsed_off_the_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct got g = {.thread = pthread_self()};
    char err[128];
    struct wt_worker *k = wt_worker_new(base, on_done, &g, err, sizeof err);
    assert_non_null(k);

    size_t len;
    char *page = big_page(QUEUES, &len);
    struct wt_job *job = wt_job_new(WT_JOB_STATS, page, len, CG_WT_MAX_QUEUES);
    free(page); /* the job has its own copy */
    assert_int_equal(wt_worker_submit(k, job), 0);
    assert_int_equal(g.n, 0); /* never from inside the submit */
    wait_jobs(base, &g, 1);
    job = g.jobs[0];
    assert_true(job->parsed);
    assert_int_equal(job->rc, 0);
    assert_int_equal(job->n, QUEUES);
    assert_int_equal(job->skipped, 0);
    assert_string_equal(job->next_url, "https://taskrouter.twilio.com/v1/next");
    for (size_t i = 0; i < QUEUES; i++) {
        char sid[CG_WT_SID_LEN + 1];
        sid_of(i, sid);
        assert_string_equal(job->items[i].sid, sid);
        assert_int_equal(job->items[i].accepted, (long)i);
        assert_int_equal(job->items[i].pending, (long)(i % 7));
    }
    wt_worker_release(k, job);

    /* Not JSON: back with the parser's error, nothing taken. */
    job = wt_job_new(WT_JOB_STATS, "{\"meta\":", 8, CG_WT_MAX_QUEUES);
    assert_int_equal(wt_worker_submit(k, job), 0);
    wait_jobs(base, &g, 2);
    job = g.jobs[1];
    assert_int_equal(job->rc, -1);
    assert_true(job->err[0] != '\0');
    assert_int_equal(job->n, 0);
    assert_null(job->next_url);
    wt_worker_release(k, job);

    /* The names list. */
    const char *names = "{\"meta\":{\"key\":\"task_queues\",\"next_page_url\":null},"
                        "\"task_queues\":[{\"sid\":\"WQ0123456789abcdef0123456789abcdef\","
                        "\"friendly_name\":\"Sales\"}]}";
    job = wt_job_new(WT_JOB_NAMES, names, strlen(names), CG_WT_MAX_QUEUES);
    assert_int_equal(wt_worker_submit(k, job), 0);
    wait_jobs(base, &g, 3);
    job = g.jobs[2];
    assert_int_equal(job->rc, 0);
    assert_int_equal(job->nnames, 1);
    assert_string_equal(job->names[0].name, "Sales");
    assert_null(job->next_url);
    wt_worker_release(k, job);

    wt_worker_free(k);
    event_base_free(base);
}

static void test_encode_same_bytes(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct got g = {.thread = pthread_self()};
    char err[128];
    struct wt_worker *k = wt_worker_new(base, on_done, &g, err, sizeof err);
    assert_non_null(k);

    struct cg_wt_record recs[3];
    memset(recs, 0, sizeof recs);
    for (size_t i = 0; i < 3; i++) {
        sid_of(i + 7, recs[i].sid);
        recs[i].wait_s = 10.5 * (double)i;
        recs[i].pending = (long)i;
        recs[i].fetched_ms = 1700000000000ULL + i;
        recs[i].stale = i == 2;
    }
    char name[] = "Support \"EU\"";
    recs[1].name = name;
    struct wt_job *job = wt_job_encode(recs, 3);
    assert_int_equal(wt_worker_submit(k, job), 0);
    wait_jobs(base, &g, 1);
    job = g.jobs[0];
    assert_int_equal(job->rc, 0);
    for (size_t i = 0; i < 3; i++) {
        struct cg_buf b;
        cg_buf_init(&b, 1 << 20);
        assert_int_equal(cg_wt_record_encode(&recs[i], &b), 0);
        assert_int_equal(job->enc_len[i], b.len);
        assert_memory_equal(job->enc[i], cg_buf_str(&b), b.len);
        cg_buf_free(&b);
    }
    struct cg_buf seed;
    cg_buf_init(&seed, 1 << 20);
    assert_int_equal(cg_wt_seed_json(recs, 3, &seed), 0);
    assert_int_equal(job->seed_len, seed.len);
    assert_memory_equal(job->seed, cg_buf_str(&seed), seed.len);
    cg_buf_free(&seed);
    wt_worker_release(k, job);
    wt_worker_free(k);
    event_base_free(base);
}

/* Freed with a page in hand and one parsed but not delivered: both are
 * freed with the worker (the sanitizer build sees a leak otherwise), and no
 * callback runs. */
static void test_free_with_jobs_out(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct got g = {.thread = pthread_self()};
    char err[128];
    struct wt_worker *k = wt_worker_new(base, on_done, &g, err, sizeof err);
    assert_non_null(k);
    size_t len;
    char *page = big_page(200, &len);
    assert_int_equal(wt_worker_submit(k, wt_job_new(WT_JOB_STATS, page, len, 100)), 0);
    assert_int_equal(wt_worker_submit(k, wt_job_new(WT_JOB_STATS, page, len, 100)), 0);
    free(page);
    wt_worker_free(k);
    assert_int_equal(g.n, 0);
    /* Without a worker a job is parsed in place and freed by the release. */
    struct wt_job *job = wt_job_new(WT_JOB_STATS, "[]", 2, 10);
    wt_job_run(job);
    assert_int_equal(job->rc, -1);
    wt_worker_release(NULL, job);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_parsed_off_the_loop),
        cmocka_unit_test(test_encode_same_bytes),
        cmocka_unit_test(test_free_with_jobs_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
