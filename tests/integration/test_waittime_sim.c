/*
 * The wait-time service against the project's own simulator: real callgate
 * processes and a real Redis, with `callgate-sim serve` playing TaskRouter
 * from a scenario written by each test (test_waittime.c keeps the in-test
 * fake for what the simulator cannot do: exact figures, slow answers on
 * demand, rate-limit headers).
 *
 * Covered: the seed's answer and Redis key against the simulator's own
 * figures; the request count per refresh from the simulator's counters
 * (2,500 queues in pages of 1,000, and 120 in pages of 50); a 429 storm, a
 * failing page (500, then a cut body), leader failover with one poller at
 * a time, a Redis restart; and the accuracy of callgate's estimate against
 * the simulator's truth (`serve --wait-times`), compared with the seed's
 * trailing average.
 *
 * A fault that a scenario cannot switch off (a storm, a failing page)
 * starts and ends by restarting the simulator on the same port with
 * another scenario: the same seed gives the same queue SIDs, so callgate
 * sees one TaskRouter whose behaviour changes.
 *
 * Time. The accuracy run needs about 40 s of samples; it runs in the
 * background (its own Redis, simulator and callgate) from the group set-up
 * while the other tests run, and is judged by the last test. Timing
 * assertions are lower bounds or generous deadlines: the machine may be
 * loaded and the sanitizer build is slow.
 */
#include "harness.h"
#include "wtcg.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "demo/proc.h"
#include "waittime/waittime.h"

/* The simulator's default credentials and workspace. */
#define ACCOUNT_SID "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define AUTH_TOKEN  "sim-auth-token"
#define WS          "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define K(suffix)   "cg:{wt:" WS "}:" suffix
/* Base64 of ACCOUNT_SID ":" AUTH_TOKEN. */
#define AUTH                                                                                       \
    "Authorization: Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTpzaW0tYXV0aC10b2tlbg=="

#define ACCURACY_S 40 /* seconds of samples before the accuracy is judged */

struct sim {
    struct cgt_proc proc;
    int port;
    char base[64];
};

struct fixture {
    struct cg_redis_server rs;
    char *dir;
    struct sim sim;
    struct cgt_wtcg cg[2];
};

/* The accuracy run, started by the group set-up. */
static struct fixture acc;
static uint64_t acc_started_ms;
static char acc_report[512];

/* ---- small helpers ---- */

/* GET base+path; the status in *status, the body parsed (NULL when not
 * JSON). */
static json_t *get_json(const char *base, const char *path, const char *const *headers,
                        long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct cgt_resp r;
    cgt_http("GET", url, headers, NULL, 0, &r);
    *status = r.status;
    json_t *j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    cgt_resp_free(&r);
    return j;
}

static json_t *must_json(const char *base, const char *path)
{
    long st;
    json_t *j = get_json(base, path, NULL, &st);
    if (st != 200 || j == NULL)
        fail_msg("GET %s%s: %ld", base, path, st);
    return j;
}

static double jnum(const json_t *o, const char *path)
{
    double v = 0;
    if (cg_json_num(o, path, &v) != 0)
        fail_msg("no number at %s", path);
    return v;
}

static long jlong(const json_t *o, const char *path)
{
    return (long)jnum(o, path);
}

/* ---- the simulator ---- */

/* callgate-sim serve with the taskrouter member tr (and the seed), on the
 * fixture's port (the same across restarts). wait_times: a callgate to
 * score; report: where the report goes on SIGTERM. */
static void start_sim(struct fixture *f, const char *tr, const char *wait_times, const char *report)
{
    char scen[600], portf[600];
    snprintf(scen, sizeof scen, "%s/scenario.json", f->dir);
    snprintf(portf, sizeof portf, "%s/port", f->dir);
    FILE *fp = fopen(scen, "w");
    assert_non_null(fp);
    fprintf(fp, "{\"name\":\"waittime-sim\",\"seed\":7,\"taskrouter\":%s}", tr);
    assert_int_equal(fclose(fp), 0);
    remove(portf);
    if (f->sim.port == 0)
        f->sim.port = cg_free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", f->sim.port);
    snprintf(f->sim.base, sizeof f->sim.base, "http://127.0.0.1:%d", f->sim.port);
    const char *argv[16] = {cgt_bin("callgate-sim"), "serve", "--port",     port,
                            "--port-file",           portf,   "--scenario", scen};
    size_t n = 8;
    if (wait_times) {
        argv[n++] = "--wait-times";
        argv[n++] = wait_times;
        argv[n++] = "--sample-ms";
        argv[n++] = "1000";
    }
    if (report) {
        argv[n++] = "--report";
        argv[n++] = report;
    }
    argv[n] = NULL;
    cgt_spawn(&f->sim.proc, argv, (const char *const[]){"LOG_LEVEL=warn", NULL});
    uint64_t deadline = cgt_now_ms() + 15000;
    while (cgt_read_port_file(portf) == 0) {
        if (cgt_now_ms() > deadline || cgt_wait_exit(&f->sim.proc, 0) != -1) {
            char *out = cgt_proc_output(&f->sim.proc);
            fail_msg("callgate-sim did not start; output:\n%s", out);
        }
        cgt_sleep_ms(10);
    }
}

static void stop_sim(struct fixture *f)
{
    int rc = cgt_stop(&f->sim.proc, SIGTERM, 10000);
    if (rc != 0) {
        char *out = cgt_proc_output(&f->sim.proc);
        fail_msg("callgate-sim exited %d; output:\n%s", rc, out);
    }
    remove(f->sim.proc.log_path);
}

static long sim_counter(struct fixture *f, const char *path)
{
    json_t *j = must_json(f->sim.base, "/sim/status");
    long v = jlong(j, path);
    json_decref(j);
    return v;
}

/* ---- callgate ---- */

static void start_cg(struct fixture *f, int i, const char *const *extra)
{
    struct cgt_wtcg_opts o = {
        .redis_url = f->rs.url,
        .taskrouter_url = f->sim.base,
        .account_sid = ACCOUNT_SID,
        .auth_token = AUTH_TOKEN,
        .workspace_sid = WS,
    };
    cgt_wtcg_start(&f->cg[i], i, &o, extra, 20000);
}

static void stop_cg(struct cgt_wtcg *c)
{
    int rc = cgt_stop(&c->proc, SIGTERM, 10000);
    if (rc != 0) {
        char *out = cgt_proc_output(&c->proc);
        fail_msg("callgate exited %d; output:\n%s", rc, out);
    }
    remove(c->proc.log_path);
}

/* Sum of the /metrics samples whose line starts with prefix. */
static double metric(const struct cgt_wtcg *c, const char *prefix)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", c->base);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    if (r.status != 200)
        fail_msg("/metrics: %ld", r.status);
    double sum = 0;
    size_t pl = strlen(prefix);
    for (char *line = r.body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, prefix, pl) == 0) {
            const char *sp = strrchr(line, ' ');
            if (sp)
                sum += strtod(sp + 1, NULL);
        }
        line = nl ? nl + 1 : NULL;
    }
    cgt_resp_free(&r);
    return sum;
}

#define M_OK      "callgate_waittime_refreshes_total{result=\"ok\"}"
#define M_PARTIAL "callgate_waittime_refreshes_total{result=\"partial\"}"
#define M_STATS   "callgate_waittime_twilio_requests_total{endpoint=\"statistics\""

/* Waits until callgate serves n queues (its first refresh is done). */
static void wait_queues(const struct cgt_wtcg *c, size_t n, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    size_t got = 0;
    for (;;) {
        long st;
        json_t *j = get_json(c->base, "/wait-times", NULL, &st);
        got = st == 200 && j ? json_array_size(json_object_get(j, "queues")) : 0;
        json_decref(j);
        if (got == n)
            return;
        if (cgt_now_ms() > deadline)
            fail_msg("callgate serves %zu queues, want %zu", got, n);
        cgt_sleep_ms(50);
    }
}

/* The record of the queue named name (the simulator names them
 * queue-0000, queue-0001, ...), from /wait-times?name=. */
static json_t *record_by_name(const struct cgt_wtcg *c, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/wait-times?name=%s", name);
    long st;
    json_t *j = get_json(c->base, path, NULL, &st);
    if (st != 200 || !j)
        fail_msg("%s: %ld", path, st);
    return j;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cgt_redis_start(&f->rs);
    f->dir = cgt_tmpdir();
    *state = f;
    return 0;
}

static void fixture_stop(struct fixture *f)
{
    for (int i = 0; i < 2; i++)
        if (f->cg[i].proc.pid > 0)
            cgt_stop(&f->cg[i].proc, SIGKILL, 1000);
    if (f->sim.proc.pid > 0)
        cgt_stop(&f->sim.proc, SIGKILL, 1000);
    cg_redis_server_stop(&f->rs);
    if (f->dir) {
        char p[600];
        snprintf(p, sizeof p, "%s/scenario.json", f->dir);
        remove(p);
        snprintf(p, sizeof p, "%s/port", f->dir);
        remove(p);
        snprintf(p, sizeof p, "%s/report.json", f->dir);
        remove(p);
        rmdir(f->dir);
        free(f->dir);
        f->dir = NULL;
    }
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fixture_stop(f);
    free(f);
    return 0;
}

/* ---- tests ---- */

/* One queue: the seed's answer and Redis key against the simulator's own
 * figure; the other read paths and bad input. */
static void test_one_queue(void **state)
{
    struct fixture *f = *state;
    start_sim(f,
              "{\"queues\":1,\"workers_per_queue\":3,\"task_rate_per_s\":0.3,"
              "\"handle_s\":{\"dist\":\"exp\",\"mean_s\":8,\"min_s\":1,\"max_s\":60},"
              "\"warmup_s\":900}",
              NULL, NULL);
    start_cg(f, 0, NULL);
    struct cgt_wtcg *c = &f->cg[0];
    wait_queues(c, 1, 15000);
    json_t *rec = record_by_name(c, "queue-0000");
    char sid[40];
    snprintf(sid, sizeof sid, "%s", json_string_value(json_object_get(rec, "sid")));
    assert_true(cg_wt_sid_valid(sid));
    assert_true(jlong(rec, "estimateSeconds") >= 1);
    assert_true(jlong(rec, "eligibleWorkers") == 3);
    json_decref(rec);

    /* callgate serves the figure the simulator gives now: read the
     * simulator before and after callgate, until the three agree (the
     * model moves on; callgate follows within a refresh). */
    char sim_path[256], rec_path[128], qt_path[128];
    snprintf(sim_path, sizeof sim_path, "/v1/Workspaces/" WS "/TaskQueues/%s/Statistics", sid);
    snprintf(rec_path, sizeof rec_path, "/wait-times/%s", sid);
    snprintf(qt_path, sizeof qt_path, "/get-queue-times?queueSid=%s", sid);
    const char *auth[] = {AUTH, NULL};
    uint64_t deadline = cgt_now_ms() + 20000;
    double served = -1;
    for (;;) {
        long st;
        json_t *s1 = get_json(f->sim.base, sim_path, auth, &st);
        assert_int_equal(st, 200);
        json_t *r = must_json(c->base, rec_path);
        json_t *s2 = get_json(f->sim.base, sim_path, auth, &st);
        double a = jnum(s1, "cumulative.wait_duration_in_queue_until_accepted.avg");
        double b = jnum(s2, "cumulative.wait_duration_in_queue_until_accepted.avg");
        served = jnum(r, "waitTime");
        json_decref(s1);
        json_decref(s2);
        json_decref(r);
        if (a == b && served == a)
            break;
        if (cgt_now_ms() > deadline)
            fail_msg("callgate serves %g, the simulator says %g then %g", served, a, b);
        cgt_sleep_ms(100);
    }

    /* The seed's answer, byte for byte, from the same snapshot as the
     * record around it. */
    for (int tries = 0;; tries++) {
        json_t *r1 = must_json(c->base, rec_path);
        struct cgt_resp r;
        char url[256];
        snprintf(url, sizeof url, "%s%s", c->base, qt_path);
        cgt_http("GET", url, NULL, NULL, 0, &r);
        json_t *r2 = must_json(c->base, rec_path);
        int same = strcmp(json_string_value(json_object_get(r1, "fetchedAt")),
                          json_string_value(json_object_get(r2, "fetchedAt"))) == 0;
        char want[64];
        snprintf(want, sizeof want, "{\"waittime\":\"%lld\"}",
                 cg_wt_seed_seconds(jnum(r1, "waitTime")));
        json_decref(r1);
        json_decref(r2);
        if (same) {
            if (r.status != 200 || r.len != strlen(want) || memcmp(r.body, want, r.len) != 0)
                fail_msg("get-queue-times: %ld %.*s, want %s", r.status, (int)r.len, r.body, want);
            char *ct = cgt_resp_header(&r, "Content-Type");
            assert_string_equal(ct, "application/json");
            free(ct);
            cgt_resp_free(&r);
            break;
        }
        cgt_resp_free(&r);
        if (tries > 50)
            fail_msg("no two reads of one snapshot in 50 tries");
    }

    /* The seed's Redis key, byte for byte: rebuilt from the shared record
     * of the same refresh (the key is written right behind it). */
    deadline = cgt_now_ms() + 10000;
    for (;;) {
        char *v1 = cgt_redis_cmd(&f->rs, "GET " K("version"));
        char *rj = cgt_redis_cmd(&f->rs, "HGET " K("queues") " %s", sid);
        char *qt = cgt_redis_cmd(&f->rs, "GET queue-times");
        char *v2 = cgt_redis_cmd(&f->rs, "GET " K("version"));
        json_t *r = json_loads(rj, 0, NULL);
        int ok = 0;
        char want[256] = "";
        if (r && strcmp(v1, v2) == 0) {
            snprintf(want, sizeof want,
                     "{\"queues\":{\"%s\":{\"waittime\":%lld,\"timestamp\":\"%s\"}}}", sid,
                     cg_wt_seed_seconds(jnum(r, "wait")),
                     json_string_value(json_object_get(r, "fetched_at")));
            ok = strcmp(qt, want) == 0;
        }
        json_decref(r);
        if (ok) {
            free(v1);
            free(rj);
            free(qt);
            free(v2);
            break;
        }
        if (cgt_now_ms() > deadline)
            fail_msg("queue-times differs:\n got  %s\n want %s", qt, want);
        free(v1);
        free(rj);
        free(qt);
        free(v2);
        cgt_sleep_ms(50);
    }

    /* By SID and by name; unknown and malformed SIDs: 404 and 400, JSON,
     * never 500. */
    json_t *by_sid = must_json(c->base, rec_path);
    assert_string_equal(json_string_value(json_object_get(by_sid, "friendlyName")), "queue-0000");
    json_decref(by_sid);
    long st;
    json_t *j = get_json(c->base, "/wait-times/WQffffffffffffffffffffffffffffffff", NULL, &st);
    assert_int_equal(st, 404);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "not_found");
    json_decref(j);
    j = get_json(c->base, "/get-queue-times?queueSid=WQffffffffffffffffffffffffffffffff", NULL,
                 &st);
    assert_int_equal(st, 404);
    json_decref(j);
    j = get_json(c->base, "/wait-times?name=queue-9999", NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
    static const char *const bad[] = {
        "/wait-times/WQ123",
        "/wait-times/wq0123456789abcdef0123456789abcdef",
        "/get-queue-times",
        "/get-queue-times?queueSid=WQ0000000000000000000000000000000g",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = get_json(c->base, bad[i], NULL, &st);
        if (st != 400 || !j)
            fail_msg("%s: %ld", bad[i], st);
        assert_string_equal(json_string_value(json_object_get(j, "error")), "bad_request");
        json_decref(j);
    }
    stop_cg(c);
    stop_sim(f);
}

/* Waits for a moment when the simulator has answered exactly per_refresh
 * statistics requests for each refresh callgate completed (at least
 * `refreshes` of them), callgate counted the same answers, and no refresh
 * was halfway: proof that every refresh made exactly per_refresh requests.
 * Any other count per refresh never meets it. */
static void expect_requests_per_refresh(struct fixture *f, const struct cgt_wtcg *c,
                                        long per_refresh, long refreshes, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    long k = 0, s = 0, got = 0;
    for (;;) {
        k = (long)metric(c, M_OK);
        s = sim_counter(f, "taskrouter.requests.statistics_list");
        got = (long)metric(c, M_STATS);
        long k2 = (long)metric(c, M_OK);
        if (k == k2 && k >= refreshes && s == got && s == per_refresh * k)
            break;
        if (cgt_now_ms() > deadline)
            fail_msg("%ld statistics requests (callgate counted %ld) for %ld refreshes, want %ld "
                     "each",
                     s, got, k, per_refresh);
        cgt_sleep_ms(20);
    }
    cg_log_info("requests per refresh", "refreshes=%ld requests=%ld", k, s);
    /* Nothing failed on the way, and one request at a time. */
    assert_int_equal((long)metric(c, M_PARTIAL), 0);
    assert_int_equal(sim_counter(f, "taskrouter.maxConcurrent"), 1);
    assert_int_equal(sim_counter(f, "taskrouter.sent429"), 0);
}

static void test_paging(void **state)
{
    struct fixture *f = *state;
    /* 2,500 queues in pages of 1,000: ceil(2500/1000) = 3 per refresh. */
    start_sim(f, "{\"queues\":2500,\"task_rate_per_s\":0.01,\"warmup_s\":120}", NULL, NULL);
    start_cg(f, 0, (const char *const[]){"WAIT_TIME_PAGE_SIZE=1000", NULL});
    struct cgt_wtcg *c = &f->cg[0];
    wait_queues(c, 2500, 30000);
    expect_requests_per_refresh(f, c, 3, 3, 40000);
    /* Every queue, in SID order, named. */
    json_t *all = must_json(c->base, "/wait-times");
    json_t *qs = json_object_get(all, "queues");
    assert_int_equal(json_array_size(qs), 2500);
    for (size_t i = 1; i < json_array_size(qs); i++) {
        const char *a = json_string_value(json_object_get(json_array_get(qs, i - 1), "sid"));
        const char *b = json_string_value(json_object_get(json_array_get(qs, i), "sid"));
        assert_true(strcasecmp(a, b) < 0);
    }
    assert_non_null(json_string_value(json_object_get(json_array_get(qs, 1234), "friendlyName")));
    json_decref(all);
    char *n = cgt_redis_cmd(&f->rs, "HLEN " K("queues"));
    assert_string_equal(n, "2500");
    free(n);
    stop_cg(c);
    stop_sim(f);

    /* 120 queues in pages of 50: ceil(120/50) = 3 as well. */
    char *fl = cgt_redis_cmd(&f->rs, "FLUSHALL");
    free(fl);
    start_sim(f, "{\"queues\":120,\"task_rate_per_s\":0.05,\"warmup_s\":120}", NULL, NULL);
    start_cg(f, 1, (const char *const[]){"WAIT_TIME_PAGE_SIZE=50", NULL});
    wait_queues(&f->cg[1], 120, 15000);
    expect_requests_per_refresh(f, &f->cg[1], 3, 3, 30000);
    stop_cg(&f->cg[1]);
    stop_sim(f);
}

static const char five[] = "{\"queues\":5,\"workers_per_queue\":2,\"task_rate_per_s\":0.2,"
                           "\"handle_s\":{\"dist\":\"exp\",\"mean_s\":8,\"min_s\":1,\"max_s\":60},"
                           "\"warmup_s\":600";

static int rec_stale(const struct cgt_wtcg *c, const char *name, char *fetched, size_t n)
{
    json_t *r = record_by_name(c, name);
    int stale = json_is_true(json_object_get(r, "stale"));
    if (fetched)
        snprintf(fetched, n, "%s", json_string_value(json_object_get(r, "fetchedAt")));
    json_decref(r);
    return stale;
}

/* Every read endpoint answers 200 (or 304/404 as asked), never 500. */
static void assert_serving(const struct cgt_wtcg *c, const char *name)
{
    long st;
    json_t *j = get_json(c->base, "/wait-times", NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    json_t *r = record_by_name(c, name);
    char path[128];
    snprintf(path, sizeof path, "/get-queue-times?queueSid=%s",
             json_string_value(json_object_get(r, "sid")));
    json_decref(r);
    j = get_json(c->base, path, NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
}

static void test_429_storm(void **state)
{
    struct fixture *f = *state;
    char scen[512];
    snprintf(scen, sizeof scen, "%s}", five);
    start_sim(f, scen, NULL, NULL);
    start_cg(f, 0, NULL);
    struct cgt_wtcg *c = &f->cg[0];
    wait_queues(c, 5, 15000);
    json_t *before = record_by_name(c, "queue-0003");
    double wait_before = jnum(before, "waitTime");
    long est_before = jlong(before, "estimateSeconds");
    json_decref(before);
    stop_sim(f);

    /* The storm: every TaskRouter request answers 429. */
    snprintf(scen, sizeof scen, "%s,\"rate_429\":1}", five);
    start_sim(f, scen, NULL, NULL);
    uint64_t t0 = cgt_now_ms();
    uint64_t deadline = t0 + 15000;
    while (!rec_stale(c, "queue-0003", NULL, 0)) {
        if (cgt_now_ms() > deadline)
            fail_msg("queue-0003 not marked stale during the storm");
        assert_serving(c, "queue-0003");
        cgt_sleep_ms(100);
    }
    if (cgt_now_ms() - t0 < 6000)
        cgt_sleep_ms((int)(6000 - (cgt_now_ms() - t0)));
    long requests = sim_counter(f, "taskrouter.requests.statistics_list");
    long sent = sim_counter(f, "taskrouter.sent429");
    uint64_t span = cgt_now_ms() - t0;
    cg_log_info("429 storm", "requests=%ld sent429=%ld ms=%llu", requests, sent,
                (unsigned long long)span);
    assert_true(sent > 0);
    /* Backing off: at the poll cadence with three attempts a page it would
     * be 3 a second; a tight loop hundreds. */
    if (requests > 2 + (long)(span / 1000))
        fail_msg("%ld statistics requests in %llu ms of 429s", requests, (unsigned long long)span);
    /* The last good values stay, with their age, marked stale. */
    json_t *during = record_by_name(c, "queue-0003");
    assert_true(jnum(during, "waitTime") == wait_before);
    assert_int_equal(jlong(during, "estimateSeconds"), est_before);
    assert_true(jlong(during, "ageSeconds") >= 3);
    assert_true(json_is_true(json_object_get(during, "stale")));
    json_decref(during);
    char path[128];
    json_t *r = record_by_name(c, "queue-0003");
    snprintf(path, sizeof path, "%s/get-queue-times?queueSid=%s", c->base,
             json_string_value(json_object_get(r, "sid")));
    json_decref(r);
    struct cgt_resp resp;
    cgt_http("GET", path, NULL, NULL, 0, &resp);
    assert_int_equal(resp.status, 200);
    char *hs = cgt_resp_header(&resp, "X-Callgate-Stale");
    assert_string_equal(hs, "true");
    free(hs);
    cgt_resp_free(&resp);
    stop_sim(f);

    /* The storm ends: fresh values again. */
    snprintf(scen, sizeof scen, "%s}", five);
    start_sim(f, scen, NULL, NULL);
    deadline = cgt_now_ms() + 20000;
    while (rec_stale(c, "queue-0003", NULL, 0)) {
        if (cgt_now_ms() > deadline)
            fail_msg("queue-0003 still stale 20 s after the storm ended");
        cgt_sleep_ms(100);
    }
    json_t *after = record_by_name(c, "queue-0003");
    assert_true(jlong(after, "ageSeconds") <= 2);
    json_decref(after);
    assert_true(sim_counter(f, "taskrouter.requests.statistics_list") >= 1);
    stop_cg(c);
    stop_sim(f);
}

static void test_failing_page(void **state)
{
    struct fixture *f = *state;
    static const char thirty[] = "{\"queues\":30,\"task_rate_per_s\":0.1,\"warmup_s\":300";
    char scen[256];
    snprintf(scen, sizeof scen, "%s}", thirty);
    start_sim(f, scen, NULL, NULL);
    start_cg(f, 0, (const char *const[]){"WAIT_TIME_PAGE_SIZE=10", NULL});
    struct cgt_wtcg *c = &f->cg[0];
    wait_queues(c, 30, 15000);
    uint64_t deadline = cgt_now_ms() + 10000;
    while (rec_stale(c, "queue-0015", NULL, 0) || rec_stale(c, "queue-0005", NULL, 0)) {
        if (cgt_now_ms() > deadline)
            fail_msg("not fresh at the start");
        cgt_sleep_ms(50);
    }
    json_t *good = record_by_name(c, "queue-0015");
    double wait15 = jnum(good, "waitTime");
    json_decref(good);
    stop_sim(f);

    /* Page 1 (queues 10-19 of the simulator's order) answers 500, then a
     * body cut in the middle with a 200. */
    static const char *const modes[] = {"500", "garbage"};
    for (size_t m = 0; m < 2; m++) {
        snprintf(scen, sizeof scen, "%s,\"fail_page\":1,\"fail_mode\":\"%s\"}", thirty, modes[m]);
        start_sim(f, scen, NULL, NULL);
        char t_switch[32], fetched[32];
        rec_stale(c, "queue-0025", t_switch, sizeof t_switch);
        /* Counted after the fetch time above: the second of these
         * refreshes starts after it. */
        long partial0 = (long)metric(c, M_PARTIAL);
        deadline = cgt_now_ms() + 20000;
        while ((long)metric(c, M_PARTIAL) < partial0 + 2) {
            if (cgt_now_ms() > deadline)
                fail_msg("%s: no two partial refreshes", modes[m]);
            assert_serving(c, "queue-0015");
            cgt_sleep_ms(100);
        }
        /* The other pages were read: their queues are fresh. */
        assert_false(rec_stale(c, "queue-0005", NULL, 0));
        assert_false(rec_stale(c, "queue-0025", fetched, sizeof fetched));
        assert_true(strcmp(fetched, t_switch) > 0);
        /* The failing page's queues keep their last good values, stale,
         * with their age. */
        json_t *r = record_by_name(c, "queue-0015");
        assert_true(json_is_true(json_object_get(r, "stale")));
        assert_true(jnum(r, "waitTime") == wait15);
        assert_true(jlong(r, "ageSeconds") >= 1);
        json_decref(r);
        assert_serving(c, "queue-0015");
        assert_true(sim_counter(f, "taskrouter.requests.statistics_list") >= 6);
        stop_sim(f);
    }
    /* callgate saw the 500s as such. */
    assert_true(metric(c, M_STATS ",status=\"500\"}") > 0);
    stop_cg(c);
}

static int leader_of(struct fixture *f)
{
    char *l = cgt_redis_cmd(&f->rs, "HGET " K("meta") " leader");
    int i = -1;
    for (int k = 0; k < 2; k++)
        if (strcmp(l, f->cg[k].id) == 0)
            i = k;
    free(l);
    return i;
}

static void test_failover(void **state)
{
    struct fixture *f = *state;
    /* Slow answers: two pollers at once would show at the simulator. */
    start_sim(f,
              "{\"queues\":3,\"task_rate_per_s\":0.1,\"warmup_s\":300,"
              "\"latency\":{\"dist\":\"const\",\"value_s\":0.3}}",
              NULL, NULL);
    start_cg(f, 0, NULL);
    start_cg(f, 1, NULL);
    wait_queues(&f->cg[0], 3, 15000);
    wait_queues(&f->cg[1], 3, 15000);
    int lead = leader_of(f);
    assert_true(lead == 0 || lead == 1);
    int other = 1 - lead;
    /* Only the leader polls: every request the simulator answered is one
     * of the leader's refreshes (one page each). */
    uint64_t deadline = cgt_now_ms() + 15000;
    for (;;) {
        long k = (long)metric(&f->cg[lead], M_OK);
        long s = sim_counter(f, "taskrouter.requests.statistics_list");
        long mine = (long)metric(&f->cg[lead], M_STATS);
        long k2 = (long)metric(&f->cg[lead], M_OK);
        if (k == k2 && k >= 3 && s == mine && s == k)
            break;
        if (cgt_now_ms() > deadline)
            fail_msg("%ld requests at the simulator for %ld refreshes of the leader", s, k);
        cgt_sleep_ms(20);
    }
    assert_int_equal((long)metric(&f->cg[other], M_STATS), 0);
    assert_int_equal((long)metric(&f->cg[other], M_OK), 0);

    /* kill -9 the leader: the other takes over once the lock's 3 s are up,
     * within CGT_WT_TAKEOVER_MAX_MS, and the values keep refreshing. */
    char before[32];
    rec_stale(&f->cg[other], "queue-0001", before, sizeof before);
    assert_int_equal(cgt_stop(&f->cg[lead].proc, SIGKILL, 1000), 128 + SIGKILL);
    remove(f->cg[lead].proc.log_path);
    uint64_t killed = cgt_now_ms();
    while (leader_of(f) != other) {
        if (cgt_now_ms() - killed > CGT_WT_TAKEOVER_MAX_MS)
            fail_msg("no takeover within %d ms", CGT_WT_TAKEOVER_MAX_MS);
        cgt_sleep_ms(20);
    }
    uint64_t took = cgt_now_ms() - killed;
    if (took > CGT_WT_TAKEOVER_MAX_MS)
        fail_msg("takeover took %llu ms (at most %d)", (unsigned long long)took,
                 CGT_WT_TAKEOVER_MAX_MS);
    cg_log_info("failover", "took_ms=%llu", (unsigned long long)took);
    /* Not before the dead leader's lock expired. */
    assert_true(took >= 1500);
    char after[32];
    deadline = cgt_now_ms() + 10000;
    for (;;) {
        int stale = rec_stale(&f->cg[other], "queue-0001", after, sizeof after);
        if (!stale && strcmp(after, before) > 0 && metric(&f->cg[other], M_OK) >= 2)
            break;
        if (cgt_now_ms() > deadline)
            fail_msg("values not refreshed after the takeover (%s, was %s)", after, before);
        cgt_sleep_ms(50);
    }
    /* Never two requests at once, through all of it. */
    assert_int_equal(sim_counter(f, "taskrouter.maxConcurrent"), 1);
    stop_cg(&f->cg[other]);
    stop_sim(f);
}

static void test_redis_restart(void **state)
{
    struct fixture *f = *state;
    start_sim(f, "{\"queues\":20,\"task_rate_per_s\":0.1,\"warmup_s\":300}", NULL, NULL);
    start_cg(f, 0, NULL);
    struct cgt_wtcg *c = &f->cg[0];
    wait_queues(c, 20, 15000);
    char *n = cgt_redis_cmd(&f->rs, "HLEN " K("queues"));
    assert_string_equal(n, "20");
    free(n);

    /* Stopped, and started again empty on the same port. */
    cg_redis_server_kill(&f->rs, SIGKILL);
    char err[256];
    assert_int_equal(cg_redis_server_restart(&f->rs, err, sizeof err), 0);
    char *empty = cgt_redis_cmd(&f->rs, "EXISTS queue-times");
    assert_string_equal(empty, "0");
    free(empty);
    /* Still served from memory meanwhile. */
    assert_serving(c, "queue-0007");
    uint64_t t0 = cgt_now_ms();
    for (;;) {
        char *hl = cgt_redis_cmd(&f->rs, "HLEN " K("queues"));
        char *qt = cgt_redis_cmd(&f->rs, "EXISTS queue-times");
        char *nm = cgt_redis_cmd(&f->rs, "HLEN " K("names"));
        int back = strcmp(hl, "20") == 0 && strcmp(qt, "1") == 0 && strcmp(nm, "20") == 0;
        free(hl);
        free(qt);
        free(nm);
        if (back)
            break;
        if (cgt_now_ms() - t0 > 15000)
            fail_msg("the poller did not write everything back within 15 s");
        cgt_sleep_ms(50);
    }
    cg_log_info("redis restart", "rewritten_ms=%llu", (unsigned long long)(cgt_now_ms() - t0));
    /* Every queue in the seed's key, and the endpoints on a connected
     * Redis again. */
    char *qt = cgt_redis_cmd(&f->rs, "GET queue-times");
    json_t *j = json_loads(qt, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(json_object_get(j, "queues")), 20);
    json_decref(j);
    free(qt);
    uint64_t deadline = cgt_now_ms() + 10000;
    for (;;) {
        json_t *all = must_json(c->base, "/wait-times");
        int ok = strcmp(json_string_value(json_object_get(all, "redis")), "connected") == 0;
        json_decref(all);
        if (ok)
            break;
        if (cgt_now_ms() > deadline)
            fail_msg("/wait-times does not say redis connected");
        cgt_sleep_ms(50);
    }
    assert_serving(c, "queue-0007");
    assert_false(rec_stale(c, "queue-0007", NULL, 0));
    stop_cg(c);
    stop_sim(f);
}

/* ---- accuracy ---- */

/* About 50 queues of varied load: 2 to 12 workers, 0.2 to 1.5 tasks a
 * second, handle times of 8 s on average (exponential), patience of a
 * minute on average; so some queues idle, some busy with a backlog, some
 * overloaded (kept in check by abandonment), and 5 stalled (every worker
 * offline). The warm-up fills TaskRouter's 15-minute window. */
static const char accuracy_tr[] =
    "{\"queues\":50,\"stalled_queues\":5,\"warmup_s\":900,"
    "\"workers_per_queue\":{\"dist\":\"uniform\",\"min_s\":2,\"max_s\":12},"
    "\"task_rate_per_s\":{\"dist\":\"uniform\",\"min_s\":0.2,\"max_s\":1.5},"
    "\"handle_s\":{\"dist\":\"exp\",\"mean_s\":8,\"min_s\":1,\"max_s\":60},"
    "\"abandon_s\":{\"dist\":\"exp\",\"mean_s\":60,\"min_s\":10,\"max_s\":600}}";

static int group_setup(void **state)
{
    (void)state;
    struct fixture *f = &acc;
    cgt_redis_start(&f->rs);
    f->dir = cgt_tmpdir();
    snprintf(acc_report, sizeof acc_report, "%s/report.json", f->dir);
    /* callgate's port first: the simulator samples it from the start. */
    f->cg[0].port = cg_free_port();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->cg[0].port);
    start_sim(f, accuracy_tr, url, acc_report);
    start_cg(f, 0, NULL);
    acc_started_ms = cgt_now_ms();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_stop(&acc);
    return 0;
}

static void test_accuracy(void **state)
{
    (void)state;
    struct fixture *f = &acc;
    uint64_t ran = cgt_now_ms() - acc_started_ms;
    if (ran < ACCURACY_S * 1000)
        cgt_sleep_ms((int)(ACCURACY_S * 1000 - ran));
    /* Live, in /sim/status. */
    json_t *st = must_json(f->sim.base, "/sim/status");
    json_t *live = json_object_get(st, "taskrouter");
    live = json_object_get(live, "accuracy");
    if (!live)
        fail_msg("no taskrouter.accuracy in /sim/status");
    long live_samples = jlong(live, "samples");
    assert_true(live_samples > 0);
    json_decref(st);

    /* The report, written when serve mode is stopped. */
    stop_sim(f);
    FILE *fp = fopen(acc_report, "r");
    if (!fp)
        fail_msg("no report at %s", acc_report);
    json_t *rep = json_loadf(fp, 0, NULL);
    fclose(fp);
    assert_non_null(rep);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    json_t *a = json_object_get(json_object_get(rep, "taskrouter"), "accuracy");
    assert_non_null(a);
    long samples = jlong(a, "samples"), scored = jlong(a, "scored");
    double mae_cg = jnum(a, "mae_callgate_s"), mae_seed = jnum(a, "mae_seed_s");
    print_message("accuracy over %.0f s: %ld samples, %ld scored against accepted tasks; "
                  "MAE callgate %.3f s, seed %.3f s (ratio %.3f); bias callgate %+.3f s, seed "
                  "%+.3f s; closer: callgate %ld, seed %ld; canceled %ld, awaiting %ld\n",
                  (double)(cgt_now_ms() - acc_started_ms) / 1000.0, samples, scored, mae_cg,
                  mae_seed, jnum(a, "ratio"), jnum(a, "bias_callgate_s"), jnum(a, "bias_seed_s"),
                  jlong(a, "callgate_closer"), jlong(a, "seed_closer"),
                  jlong(a, "canceled_skipped"), jlong(a, "awaiting"));
    print_message("lower bounds (task still waiting): %ld, below it: callgate %ld, seed %ld "
                  "(shortfall %.3f s vs %.3f s); on stalled queues %ld, below: callgate %ld, "
                  "seed %ld; %ld stale, %ld dropped, %ld polls, %ld poll errors\n",
                  jlong(a, "pending_lower_bounds"), jlong(a, "below_lower_bound_callgate"),
                  jlong(a, "below_lower_bound_seed"), jnum(a, "shortfall_callgate_s"),
                  jnum(a, "shortfall_seed_s"), jlong(a, "stalled_lower_bounds"),
                  jlong(a, "below_lower_bound_stalled_callgate"),
                  jlong(a, "below_lower_bound_stalled_seed"), jlong(a, "stale_samples"),
                  jlong(a, "dropped"), jlong(a, "polls"), jlong(a, "poll_errors"));
    assert_true(samples >= live_samples);
    assert_true(scored >= 300);
    assert_int_equal(jlong(a, "unknown_queue"), 0);
    assert_int_equal(jlong(a, "dropped"), 0);
    /* callgate's estimate is closer to what tasks went on to wait than the
     * seed's trailing average. */
    if (!(mae_cg < mae_seed))
        fail_msg("callgate's MAE %.3f s is not below the seed's %.3f s", mae_cg, mae_seed);
    /* On a queue nobody serves, the seed's average announces (next to)
     * nothing while tasks wait on; callgate's estimate never falls below
     * the wait already reached. */
    assert_true(jlong(a, "stalled_lower_bounds") > 0);
    assert_true(jlong(a, "below_lower_bound_stalled_seed") > 0);
    assert_int_equal(jlong(a, "below_lower_bound_stalled_callgate"), 0);
    assert_true(jlong(a, "below_lower_bound_callgate") < jlong(a, "below_lower_bound_seed"));
    json_decref(rep);
    stop_cg(&f->cg[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
        cmocka_unit_test(test_accuracy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
