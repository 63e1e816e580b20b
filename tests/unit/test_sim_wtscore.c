/*
 * Unit tests for the wait-time scorer (sim/wtscore.c) over the TaskRouter
 * model on a fixed clock: every figure is recomputed here from
 * sim_taskrouter_actual_wait_at(), one sample at a time, which is the
 * definition the scorer's batched reads must agree with; the bounds and
 * counters; the /wait-times body; sampling over HTTP; and the accuracy
 * member of the report and of /sim/status.
 *
 * The sim header paths are explicit: src/ has a twiml.h of its own.
 */
#include "harness.h"

#include "../../sim/report.h"
#include "../../sim/scenario.h"
#include "../../sim/sim.h"
#include "../../sim/taskrouter.h"
#include "../../sim/wtscore.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "base/json.h"

#include <event2/event.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double fake_t;

static double fake_clock(void *arg)
{
    (void)arg;
    return fake_t;
}

/* A busy queue, a stalled one and a quiet one, with abandonment so that
 * every outcome shows up. */
#define MODEL                                                                                      \
    "{\"seed\":5,\"taskrouter\":{\"queues\":3,\"stalled_queues\":1,\"workers_per_queue\":1,"       \
    "\"task_rate_per_s\":{\"dist\":\"uniform\",\"min_s\":0.2,\"max_s\":0.6},"                      \
    "\"handle_s\":{\"dist\":\"exp\",\"mean_s\":3,\"min_s\":0.5,\"max_s\":20},"                     \
    "\"abandon_s\":{\"dist\":\"exp\",\"mean_s\":6,\"min_s\":1,\"max_s\":60},\"warmup_s\":60}}"

struct fx {
    struct sim_scenario sc;
    struct sim_world w;
};

static void fx_init(struct fx *f, const char *json)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    if (sim_scenario_parse(&f->sc, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    f->w.sc = &f->sc;
    fake_t = 0;
    f->w.taskrouter = sim_taskrouter_new(&f->w);
    assert_non_null(f->w.taskrouter);
    sim_taskrouter_set_clock(f->w.taskrouter, fake_clock, NULL);
}

static void fx_free(struct fx *f)
{
    sim_wtscore_free(f->w.wtscore);
    sim_report_free(f->w.report);
    sim_taskrouter_free(f->w.taskrouter);
    sim_scenario_free(&f->sc);
}

static double jnum(const json_t *o, const char *k)
{
    double v;
    if (cg_json_num(o, k, &v) != 0)
        fail_msg("no number %s", k);
    return v;
}

static long jlong(const json_t *o, const char *k)
{
    long long v;
    if (cg_json_int(o, k, &v) != 0)
        fail_msg("no integer %s", k);
    return (long)v;
}

/* The scorer's rounding: milliseconds. */
static double ms(double v)
{
    return round(v * 1000.0) / 1000.0;
}

#define assert_close(a, b)                                                                         \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= 1e-9))                                                              \
            fail_msg("%.9g != %.9g", a_, b_);                                                      \
    } while (0)

/* What every sample should count, recomputed sample by sample. */
struct expect {
    long scored, canceled, awaiting, lower, below_cg, below_seed, st_lower, st_below_cg,
        st_below_seed, cg_closer, seed_closer;
    double cg_abs, cg_sum, seed_abs, seed_sum;
};

struct smp {
    double t;
    size_t q;
    double est, seed;
};

static void expect_of(struct sim_taskrouter *tr, const struct smp *v, size_t n, struct expect *e)
{
    memset(e, 0, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        double w;
        enum sim_tr_outcome o;
        if (sim_taskrouter_actual_wait_at(tr, v[i].q, v[i].t, &w, &o) != 0) {
            e->awaiting++;
            continue;
        }
        int st = sim_taskrouter_queue_stalled(tr, v[i].q);
        /* The scorer keeps figures as floats: compare like with like. */
        double est = (float)v[i].est, seed = (float)v[i].seed;
        if (o == SIM_TR_ACCEPTED) {
            e->scored++;
            e->cg_abs += fabs(est - w);
            e->cg_sum += est - w;
            e->seed_abs += fabs(seed - w);
            e->seed_sum += seed - w;
            e->cg_closer += fabs(est - w) < fabs(seed - w);
            e->seed_closer += fabs(seed - w) < fabs(est - w);
        } else if (o == SIM_TR_CANCELED) {
            e->canceled++;
        } else {
            e->lower++;
            e->st_lower += st;
            e->below_cg += est < w;
            e->below_seed += seed < w;
            e->st_below_cg += st && est < w;
            e->st_below_seed += st && seed < w;
        }
    }
}

static void check(json_t *j, const struct expect *e, long samples)
{
    assert_int_equal(jlong(j, "samples"), samples);
    assert_int_equal(jlong(j, "scored"), e->scored);
    assert_int_equal(jlong(j, "canceled_skipped"), e->canceled);
    assert_int_equal(jlong(j, "awaiting"), e->awaiting);
    assert_int_equal(jlong(j, "pending_lower_bounds"), e->lower);
    assert_int_equal(jlong(j, "below_lower_bound_callgate"), e->below_cg);
    assert_int_equal(jlong(j, "below_lower_bound_seed"), e->below_seed);
    assert_int_equal(jlong(j, "stalled_lower_bounds"), e->st_lower);
    assert_int_equal(jlong(j, "below_lower_bound_stalled_callgate"), e->st_below_cg);
    assert_int_equal(jlong(j, "below_lower_bound_stalled_seed"), e->st_below_seed);
    assert_int_equal(jlong(j, "callgate_closer"), e->cg_closer);
    assert_int_equal(jlong(j, "seed_closer"), e->seed_closer);
    assert_true(e->scored > 0);
    double n = (double)e->scored;
    assert_close(jnum(j, "mae_callgate_s"), ms(e->cg_abs / n));
    assert_close(jnum(j, "mae_seed_s"), ms(e->seed_abs / n));
    assert_close(jnum(j, "bias_callgate_s"), ms(e->cg_sum / n));
    assert_close(jnum(j, "bias_seed_s"), ms(e->seed_sum / n));
    assert_close(jnum(j, "ratio"), ms(e->cg_abs / e->seed_abs));
}

/* Samples every second on every queue, judged after the model moved on,
 * and again as the scorer would see them in its sampling tick. */
static void test_scoring_matches_truth(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, MODEL);
    struct sim_taskrouter *tr = f.w.taskrouter;
    struct sim_wtscore *s = sim_wtscore_new(NULL, NULL, tr, NULL, 0, 0);
    f.w.wtscore = s;
    static struct smp v[600];
    size_t n = 0;
    for (int k = 1; k <= 120; k++) {
        fake_t = k;
        for (size_t q = 0; q < 3; q++) {
            /* Two made-up estimators: one follows the clock, one is flat. */
            v[n] = (struct smp){.t = fake_t, .q = q, .est = 1 + (k % 7) * 0.5, .seed = 2.25};
            assert_int_equal(
                sim_wtscore_add(s, v[n].t, sim_taskrouter_queue_sid(tr, q), v[n].est, v[n].seed, 0),
                0);
            n++;
        }
        /* Resolving as it goes (as the sampling tick does) must not judge
         * a sample twice or differently. */
        if (k % 10 == 0)
            sim_wtscore_resolve(s);
    }
    /* Judged at the last sample's time: those have no task yet. */
    struct expect e;
    expect_of(tr, v, n, &e);
    /* Every kind of outcome is in this run. */
    assert_true(e.scored > 50 && e.canceled > 0 && e.lower > 0 && e.st_lower > 0);
    assert_true(e.awaiting > 0);
    json_t *j = sim_wtscore_json(s);
    check(j, &e, (long)n);
    assert_int_equal(jlong(j, "dropped"), 0);
    assert_int_equal(jlong(j, "unknown_queue"), 0);
    assert_int_equal(jlong(j, "stale_samples"), 0);
    json_decref(j);

    /* Later, the pending ones of the busy queues have been judged (a
     * stalled queue's stay lower bounds), and the totals still agree. */
    fake_t = 400;
    expect_of(tr, v, n, &e);
    j = sim_wtscore_json(s);
    check(j, &e, (long)n);
    assert_int_equal(e.lower, e.st_lower);
    /* A flat 2.25 s says nothing about a queue nobody serves: once its
     * tasks have waited longer, every one of its samples is below. */
    assert_int_equal(e.st_below_seed, e.st_lower);
    json_decref(j);
    fx_free(&f);
}

static void test_bounds_and_unknown(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, MODEL);
    struct sim_taskrouter *tr = f.w.taskrouter;
    struct sim_wtscore *s = sim_wtscore_new(NULL, NULL, tr, NULL, 0, 4);
    f.w.wtscore = s;
    size_t q = 0;
    while (sim_taskrouter_queue_stalled(tr, q))
        q++;
    const char *sid = sim_taskrouter_queue_sid(tr, q);
    assert_int_equal(sim_wtscore_add(s, 1, "WQffffffffffffffffffffffffffffffff", 1, 1, 0), -1);
    assert_int_equal(sim_wtscore_add(s, 1, NULL, 1, 1, 0), -1);
    assert_int_equal(sim_wtscore_add(s, 1, "WQ", 1, 1, 0), -1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(sim_wtscore_add(s, 1 + i, sid, NAN, -3, i == 0), 0);
    assert_int_equal(sim_wtscore_add(s, 6, sid, 1, 1, 0), -1);
    json_t *j = sim_wtscore_json(s);
    assert_int_equal(jlong(j, "samples"), 4);
    assert_int_equal(jlong(j, "dropped"), 1);
    assert_int_equal(jlong(j, "unknown_queue"), 3);
    assert_int_equal(jlong(j, "stale_samples"), 1);
    json_decref(j);
    /* Once judged (a served queue's tasks all leave it), samples make
     * room again. */
    fake_t = 500;
    sim_wtscore_resolve(s);
    j = sim_wtscore_json(s);
    assert_int_equal(jlong(j, "pending_lower_bounds") + jlong(j, "awaiting"), 0);
    assert_int_equal(jlong(j, "scored") + jlong(j, "canceled_skipped"), 4);
    json_decref(j);
    assert_int_equal(sim_wtscore_add(s, 600, sid, 1, 1, 0), 0);
    /* Nothing scored yet reads as null, not as 0 s of error. */
    struct sim_wtscore *empty = sim_wtscore_new(NULL, NULL, tr, NULL, 0, 0);
    j = sim_wtscore_json(empty);
    assert_true(json_is_null(json_object_get(j, "mae_callgate_s")));
    assert_true(json_is_null(json_object_get(j, "ratio")));
    assert_int_equal(jlong(j, "samples"), 0);
    json_decref(j);
    sim_wtscore_free(empty);
    fx_free(&f);
}

/* A /wait-times body as callgate writes it. */
static char *body_for(struct sim_taskrouter *tr, double est, double seed)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appends(&b, "{\"version\":3,\"refreshedAt\":\"2026-01-01T00:00:00.000Z\",\"queues\":[");
    for (size_t q = 0; q < sim_taskrouter_queue_count(tr); q++)
        cg_buf_printf(&b,
                      "%s{\"sid\":\"%s\",\"friendlyName\":\"queue\",\"waitTime\":%g,"
                      "\"estimateSeconds\":%g,\"pendingTasks\":1,\"stale\":%s}",
                      q ? "," : "", sim_taskrouter_queue_sid(tr, q), seed, est,
                      q == 1 ? "true" : "false");
    cg_buf_appends(&b, ",{\"sid\":\"WQ00000000000000000000000000000000\",\"estimateSeconds\":1}]}");
    return cg_buf_take(&b);
}

static void test_ingest(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, MODEL);
    struct sim_taskrouter *tr = f.w.taskrouter;
    struct sim_wtscore *s = sim_wtscore_new(NULL, NULL, tr, NULL, 0, 0);
    f.w.wtscore = s;
    char *body = body_for(tr, 4, 1.5);
    fake_t = 2;
    assert_int_equal(sim_wtscore_ingest(s, body, strlen(body), 2), 3);
    static const char *const bad[] = {"", "[]", "{\"queues\":{}}", "<html>", "{\"queues\":[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sim_wtscore_ingest(s, bad[i], strlen(bad[i]), 2), -1);
    assert_int_equal(sim_wtscore_ingest(s, "{\"queues\":[]}", 13, 2), 0);
    fake_t = 300;
    struct smp v[3];
    for (size_t q = 0; q < 3; q++)
        v[q] = (struct smp){.t = 2, .q = q, .est = 4, .seed = 1.5};
    struct expect e;
    expect_of(tr, v, 3, &e);
    json_t *j = sim_wtscore_json(s);
    assert_int_equal(jlong(j, "samples"), 3);
    assert_int_equal(jlong(j, "unknown_queue"), 1);
    assert_int_equal(jlong(j, "stale_samples"), 1);
    assert_int_equal(jlong(j, "scored"), e.scored);
    assert_int_equal(jlong(j, "pending_lower_bounds"), e.lower);
    json_decref(j);
    free(body);
    fx_free(&f);
}

/* ---- sampling over HTTP ---- */

struct served {
    char *body;
    int hits;
};

static void on_wait_times(struct cg_http_req *req, void *arg)
{
    struct served *sv = arg;
    sv->hits++;
    if (sv->hits == 1) {
        /* Before callgate's first refresh: counted, not scored. */
        cg_http_reply_json(req, 503, "{\"error\":\"not_ready\"}");
        return;
    }
    cg_http_reply_json(req, 200, sv->body);
}

static void test_sampling(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, MODEL);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1",
                              .port = 0,
                              .max_body_bytes = 1 << 20,
                              .max_header_bytes = 16384,
                              .timeout_seconds = 10};
    struct cg_httpd *httpd = cg_httpd_new(base, &o);
    assert_non_null(httpd);
    struct served sv = {.body = body_for(f.w.taskrouter, 3, 2)};
    assert_int_equal(cg_httpd_route(httpd, "/wait-times", CG_HTTP_GET, on_wait_times, &sv), 0);
    char err[128];
    assert_int_equal(cg_httpd_listen(httpd, err, sizeof(err)), 0);
    struct cg_httpc *client = cg_httpc_new(base, NULL);
    assert_non_null(client);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d//", cg_httpd_port(httpd));
    f.w.wtscore = sim_wtscore_new(base, client, f.w.taskrouter, url, 50, 0);
    assert_non_null(f.w.wtscore);
    fake_t = 1;
    cgt_run_for(base, 400);
    assert_true(sv.hits >= 3);
    /* Live in the status and the report, under taskrouter.accuracy. */
    f.sc.expect_final_active = f.sc.expect_final_waiting = -1;
    f.w.report = sim_report_new(&f.w);
    char *st = sim_report_status_json(f.w.report);
    json_t *j = cg_json_parse(st, strlen(st), 32, err, sizeof(err));
    free(st);
    assert_non_null(j);
    long polls = jlong(j, "taskrouter.accuracy.polls");
    assert_true(polls >= 2);
    assert_int_equal(jlong(j, "taskrouter.accuracy.poll_errors"), 1);
    assert_int_equal(jlong(j, "taskrouter.accuracy.samples"), 3 * (polls - 1));
    json_decref(j);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    sim_report_finish(f.w.report, -1, -1, mem);
    fclose(mem);
    j = cg_json_parse(buf, len, 32, err, sizeof(err));
    free(buf);
    assert_non_null(j);
    assert_true(jlong(j, "taskrouter.accuracy.samples") >= 3);
    json_decref(j);
    /* Freed with a request possibly out: the client cancels it later and
     * the callback only frees its context. */
    sim_wtscore_free(f.w.wtscore);
    f.w.wtscore = NULL;
    cg_httpc_free(client);
    cg_httpd_free(httpd);
    free(sv.body);
    fx_free(&f);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scoring_matches_truth),
        cmocka_unit_test(test_bounds_and_unknown),
        cmocka_unit_test(test_ingest),
        cmocka_unit_test(test_sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
