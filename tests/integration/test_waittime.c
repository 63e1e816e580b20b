/*
 * The wait-time service end to end: real callgate processes and a real
 * Redis against a fake TaskRouter (tests/harness/fake_taskrouter.c) in this
 * process. Paging and the request count per refresh, the seed's Redis key
 * and /get-queue-times byte for byte, bad input, a 429 storm, a failing
 * page, pacing on X-Rate-Limit-Remaining, leader failover between two
 * instances, a Redis restart, the first refresh not done yet, ETag/304 and
 * the read token.
 *
 * Intervals are short (WAIT_TIME_POLL_SECONDS=1, WAIT_TIME_LOCK_SECONDS=3)
 * so that the whole file runs in well under a minute.
 */
#include "harness.h"
#include "wtcg.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/estimate.h"
#include "fake_taskrouter.h"
#include "base/log.h"
#include "demo/proc.h"
#include "twilio/signature.h"
#include "waittime/waittime.h"

#define ACCOUNT_SID "AC0123456789abcdef0123456789abcdef"
#define AUTH_TOKEN  "wt-test-auth-token-0123"
#define WS          "WS00000000000000000000000000000001"
#define K(suffix)   "cg:{wt:" WS "}:" suffix

struct fixture {
    struct cg_redis_server rs;
    struct cgt_tr *tr;
    struct cgt_wtcg cg[3];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    struct cgt_tr_opts o = {
        .account_sid = ACCOUNT_SID,
        .auth_token = AUTH_TOKEN,
        .workspace_sid = WS,
        .nqueues = 1,
    };
    f->tr = cgt_tr_start(&o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 3; i++)
        if (f->cg[i].proc.pid > 0)
            cgt_stop(&f->cg[i].proc, SIGKILL, 1000);
    cgt_tr_stop(f->tr);
    cg_redis_server_stop(&f->rs);
    free(f);
    return 0;
}

static void start_cg(struct fixture *f, int i, const char *const *extra)
{
    struct cgt_wtcg_opts o = {
        .redis_url = f->rs.url,
        .taskrouter_url = cgt_tr_url(f->tr),
        .account_sid = ACCOUNT_SID,
        .auth_token = AUTH_TOKEN,
        .workspace_sid = WS,
    };
    /* Tighter than the harness's defaults: the fake answers at once. */
    const char *env[48] = {"LOG_LEVEL=debug", "REDIS_COMMAND_TIMEOUT_MS=1000",
                           "TWILIO_TIMEOUT_MS=3000", NULL};
    size_t n = 3;
    for (; extra && *extra && n < 47; extra++)
        env[n++] = *extra;
    env[n] = NULL;
    f->cg[i].port = 0; /* a new port each start */
    cgt_wtcg_start(&f->cg[i], i, &o, env, 15000);
}

/* ---- helpers ---- */

static void get(const struct cgt_wtcg *c, const char *path, const char *const *headers,
                struct cgt_resp *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    cgt_http("GET", url, headers, NULL, 0, r);
}

static long get_status(const struct cgt_wtcg *c, const char *path)
{
    struct cgt_resp r;
    get(c, path, NULL, &r);
    long s = r.status;
    cgt_resp_free(&r);
    return s;
}

static json_t *body_json(const struct cgt_resp *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (j == NULL)
        fail_msg("not JSON (status %ld): %.*s", r->status, (int)r->len, r->body);
    return j;
}

static void assert_json_error(const struct cgt_resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("status %ld, want %ld: %.*s", r->status, status, (int)r->len, r->body);
    json_t *j = body_json(r);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
    assert_string_equal(json_string_value(json_object_get(j, "error")), code);
    assert_non_null(json_string_value(json_object_get(j, "message")));
    json_decref(j);
}

static long long seed_of(const struct cgt_tr_stats *s)
{
    return cg_wt_seed_seconds(s->has_wait ? s->wait_avg : s->accept);
}

/* The seed's answer for queue i as the fake has it now. */
static void expected_answer(struct cgt_tr *tr, int i, char *out, size_t n)
{
    struct cgt_tr_stats s;
    cgt_tr_get_stats(tr, i, &s);
    snprintf(out, n, "{\"waittime\":\"%lld\"}", seed_of(&s));
}

static void qt_path(int i, char *out, size_t n)
{
    char sid[35];
    cgt_tr_sid(i, sid);
    snprintf(out, n, "/get-queue-times?queueSid=%s", sid);
}

/* Polls /get-queue-times for queue i until it answers want (exactly). */
static int wait_answer(const struct cgt_wtcg *c, int i, const char *want, int timeout_ms)
{
    char path[128];
    qt_path(i, path, sizeof path);
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct cgt_resp r;
        get(c, path, NULL, &r);
        int ok = r.status == 200 && r.len == strlen(want) && memcmp(r.body, want, r.len) == 0;
        cgt_resp_free(&r);
        if (ok)
            return 0;
        if (cgt_now_ms() >= deadline)
            return -1;
        cgt_sleep_ms(20);
    }
}

static void must_answer(const struct cgt_wtcg *c, int i, const char *want, int timeout_ms)
{
    if (wait_answer(c, i, want, timeout_ms) != 0) {
        char path[128];
        qt_path(i, path, sizeof path);
        struct cgt_resp r;
        get(c, path, NULL, &r);
        fail_msg("queue %d: want %s, got %ld %.*s", i, want, r.status, (int)r.len, r.body);
    }
}

/* The full record of queue i from /wait-times/{sid}. */
static json_t *record(const struct cgt_wtcg *c, int i)
{
    char sid[35], path[128];
    cgt_tr_sid(i, sid);
    snprintf(path, sizeof path, "/wait-times/%s", sid);
    struct cgt_resp r;
    get(c, path, NULL, &r);
    if (r.status != 200)
        fail_msg("/wait-times/%s: %ld %.*s", sid, r.status, (int)r.len, r.body);
    json_t *j = body_json(&r);
    cgt_resp_free(&r);
    return j;
}

static int rec_stale(const struct cgt_wtcg *c, int i)
{
    json_t *j = record(c, i);
    int stale = json_is_true(json_object_get(j, "stale"));
    json_decref(j);
    return stale;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static int iso_ms_ok(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (s == NULL || strlen(s) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return 0;
    return 1;
}

/* The seed's key must be exactly {"queues":{"WQ..":{"waittime":N,
 * "timestamp":"..."},...}} with the queues in SID order: rebuilt here from
 * the fake's figures (gens[i]: queue i still has that generation's; NULL:
 * every queue has the fake's current figures) and the timestamps found,
 * then compared byte for byte. */
static void check_seed_key(struct fixture *f, int nqueues, const int *gens)
{
    char *raw = cgt_redis_cmd(&f->rs, "GET queue-times");
    json_t *j = json_loads(raw, 0, NULL);
    if (j == NULL)
        fail_msg("queue-times is not JSON: %.200s", raw);
    json_t *qs = json_object_get(j, "queues");
    assert_int_equal(json_object_size(qs), nqueues);
    struct cg_buf want;
    cg_buf_init(&want, CG_BUF_UNBOUNDED);
    cg_buf_appends(&want, "{\"queues\":{");
    for (int i = 0; i < nqueues; i++) {
        char sid[35];
        cgt_tr_sid(i, sid);
        const char *ts = json_string_value(json_object_get(json_object_get(qs, sid), "timestamp"));
        if (!iso_ms_ok(ts))
            fail_msg("queue %d: bad timestamp %s", i, ts ? ts : "(none)");
        struct cgt_tr_stats s;
        if (gens)
            cgt_tr_formula(i, gens[i], &s);
        else
            cgt_tr_get_stats(f->tr, i, &s);
        cg_buf_printf(&want, "%s\"%s\":{\"waittime\":%lld,\"timestamp\":\"%s\"}", i ? "," : "", sid,
                      seed_of(&s), ts);
    }
    cg_buf_appends(&want, "}}");
    if (strcmp(raw, cg_buf_str(&want)) != 0)
        fail_msg("queue-times differs:\n got  %.300s\n want %.300s", raw, cg_buf_str(&want));
    cg_buf_free(&want);
    json_decref(j);
    free(raw);
}

/* ---- tests ---- */

static void test_one_queue(void **state)
{
    struct fixture *f = *state;
    struct cgt_tr_stats s = {.has_wait = 1,
                             .wait_avg = 12.5,
                             .accept = 3,
                             .longest = 40,
                             .pending = 3,
                             .available = 0,
                             .eligible = 2};
    cgt_tr_set_stats(f->tr, 0, &s);
    /* The first refresh is held back: before it, nothing is known. */
    cgt_tr_set_delay(f->tr, 1500);
    start_cg(f, 0, (const char *const[]){"WAIT_TIME_POLL_SECONDS=2", NULL});
    struct cgt_wtcg *c = &f->cg[0];
    char path[128], sid[35];
    cgt_tr_sid(0, sid);
    qt_path(0, path, sizeof path);
    struct cgt_resp r;
    get(c, path, NULL, &r);
    assert_json_error(&r, 503, "not_ready");
    cgt_resp_free(&r);
    get(c, "/wait-times", NULL, &r);
    assert_json_error(&r, 503, "not_ready");
    cgt_resp_free(&r);
    cgt_tr_set_delay(f->tr, 0);

    /* The seed's answer, byte for byte: the figure as a string. */
    must_answer(c, 0, "{\"waittime\":\"13\"}", 10000);
    get(c, path, NULL, &r);
    char *ct = cgt_resp_header(&r, "Content-Type");
    assert_string_equal(ct, "application/json");
    free(ct);
    char *cc = cgt_resp_header(&r, "Cache-Control");
    int max_age = -1;
    assert_int_equal(sscanf(cc, "max-age=%d", &max_age), 1);
    assert_true(max_age >= 1 && max_age <= 2);
    free(cc);
    char *etag = cgt_resp_header(&r, "ETag");
    assert_non_null(etag);
    char *stale = cgt_resp_header(&r, "X-Callgate-Stale");
    assert_string_equal(stale, "false");
    free(stale);
    cgt_resp_free(&r);

    /* ETag and If-None-Match. */
    char inm[128];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    get(c, path, (const char *const[]){inm, NULL}, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    cgt_resp_free(&r);
    get(c, path, (const char *const[]){"If-None-Match: W/\"nope\"", NULL}, &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);

    /* The seed's Redis key, byte for byte. */
    check_seed_key(f, 1, NULL);

    /* The shared records. */
    char *v = cgt_redis_cmd(&f->rs, "GET " K("version"));
    assert_true(atol(v) >= 1);
    free(v);
    char *nm = cgt_redis_cmd(&f->rs, "HGET %s %s", K("names"), "Sales & Support");
    assert_string_equal(nm, sid);
    free(nm);
    char *rec = cgt_redis_cmd(&f->rs, "HGET %s %s", K("queues"), sid);
    json_t *rj = json_loads(rec, 0, NULL);
    assert_non_null(rj);
    assert_string_equal(json_string_value(json_object_get(rj, "friendly_name")), "Sales & Support");
    assert_true(json_number_value(json_object_get(rj, "wait")) == 12.5);
    assert_int_equal(json_integer_value(json_object_get(rj, "pending_tasks")), 3);
    assert_true(iso_ms_ok(json_string_value(json_object_get(rj, "fetched_at"))));
    json_decref(rj);
    free(rec);

    /* Full records: by SID, by name, all. */
    json_t *j = record(c, 0);
    assert_string_equal(json_string_value(json_object_get(j, "sid")), sid);
    assert_string_equal(json_string_value(json_object_get(j, "friendlyName")), "Sales & Support");
    assert_true(json_number_value(json_object_get(j, "waitTime")) == 12.5);
    assert_true(json_number_value(json_object_get(j, "avgTaskAcceptanceTime")) == 3);
    assert_true(json_number_value(json_object_get(j, "longestTaskWaitingAge")) == 40);
    assert_int_equal(json_integer_value(json_object_get(j, "pendingTasks")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "availableWorkers")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "eligibleWorkers")), 2);
    /* The fake reports nothing accepted and nobody busy over its
     * 15-minute window: the estimate has no throughput to go by. */
    struct cg_tq_input in = {
        .pending_tasks = 3, .available_workers = 0, .longest_waiting_s = 40, .window_s = 900};
    assert_int_equal(json_integer_value(json_object_get(j, "estimateSeconds")),
                     cg_wt_seed_seconds(cg_tq_estimate_seconds(&in)));
    assert_true(iso_ms_ok(json_string_value(json_object_get(j, "fetchedAt"))));
    assert_true(json_integer_value(json_object_get(j, "ageSeconds")) >= 0);
    assert_true(json_is_false(json_object_get(j, "stale")));
    json_decref(j);

    get(c, "/wait-times?name=Sales%20%26%20Support", NULL, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "sid")), sid);
    json_decref(j);
    cgt_resp_free(&r);
    get(c, "/wait-times?name=Nobody", NULL, &r);
    assert_json_error(&r, 404, "not_found");
    cgt_resp_free(&r);

    get(c, "/wait-times", NULL, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "queues")), 1);
    assert_true(json_integer_value(json_object_get(j, "version")) >= 1);
    assert_string_equal(json_string_value(json_object_get(j, "redis")), "connected");
    json_decref(j);
    cgt_resp_free(&r);

    /* Bad input: 400 or 404 with a JSON error, never 500. */
    get(c, "/get-queue-times?queueSid=WQffffffffffffffffffffffffffffffff", NULL, &r);
    assert_json_error(&r, 404, "not_found");
    cgt_resp_free(&r);
    static const char *const bad[] = {
        "/get-queue-times",
        "/get-queue-times?queueSid=",
        "/get-queue-times?queueSid=WQ123",
        "/get-queue-times?queueSid=wq00000000000000000000000000000001",
        "/get-queue-times?queueSid=WQ0000000000000000000000000000000g",
        "/get-queue-times?queueSid=WQ000000000000000000000000000000011",
        "/get-queue-times?queueSid=%00",
        "/wait-times/WQ123",
        "/wait-times/..%2Fetc",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get(c, bad[i], NULL, &r);
        if (r.status != 400)
            fail_msg("%s: %ld %.*s", bad[i], r.status, (int)r.len, r.body);
        assert_json_error(&r, 400, "bad_request");
        cgt_resp_free(&r);
    }
    get(c, "/wait-times/WQffffffffffffffffffffffffffffffff", NULL, &r);
    assert_json_error(&r, 404, "not_found");
    cgt_resp_free(&r);

    /* New figures reach the answer; the old ETag no longer matches. */
    s.wait_avg = 20.4;
    cgt_tr_set_stats(f->tr, 0, &s);
    must_answer(c, 0, "{\"waittime\":\"20\"}", 10000);
    get(c, path, (const char *const[]){inm, NULL}, &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);
    free(etag);

    /* POST with a form body, as the seed's Function accepted. */
    char url[256], form[64];
    snprintf(url, sizeof url, "%s/get-queue-times", c->base);
    snprintf(form, sizeof form, "queueSid=%s", sid);
    cgt_http("POST", url,
             (const char *const[]){"Content-Type: application/x-www-form-urlencoded", NULL}, form,
             strlen(form), &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 17);
    assert_memory_equal(r.body, "{\"waittime\":\"20\"}", 17);
    cgt_resp_free(&r);
    assert_int_equal(cgt_stop(&c->proc, SIGTERM, 10000), 0);
}

static void test_paging_2500(void **state)
{
    struct fixture *f = *state;
    cgt_tr_set_nqueues(f->tr, 2500);
    start_cg(f, 0, NULL);
    struct cgt_wtcg *c = &f->cg[0];
    assert_int_equal(cgt_tr_wait_walks(f->tr, 3, 15000), 0);
    struct cgt_tr_counts k;
    cgt_tr_counts(f->tr, &k);
    /* ceil(2500 / 1000) = 3 statistics requests per refresh (a fourth walk
     * may have begun); the names list was read once, on the first. */
    if (k.stats < 3 * k.walks || k.stats > 3 * k.walks + 2)
        fail_msg("%d statistics requests for %d refreshes", k.stats, k.walks);
    assert_int_equal(k.names, 3);
    assert_int_equal(k.max_page_size, 1000);
    assert_int_equal(k.rate_limited + k.unauthorized, 0);
    assert_int_equal(k.max_in_flight, 1);

    for (int i = 0; i < 2500; i += 313) {
        char want[64];
        expected_answer(f->tr, i, want, sizeof want);
        must_answer(c, i, want, 10000);
    }
    struct cgt_resp r;
    get(c, "/wait-times", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    json_t *qs = json_object_get(j, "queues");
    assert_int_equal(json_array_size(qs), 2500);
    /* SID order; names from the TaskQueues list. */
    char sid[35], name[64];
    cgt_tr_sid(1999, sid);
    cgt_tr_name(1999, name, sizeof name);
    json_t *q = json_array_get(qs, 1999);
    assert_string_equal(json_string_value(json_object_get(q, "sid")), sid);
    assert_string_equal(json_string_value(json_object_get(q, "friendlyName")), name);
    json_decref(j);
    cgt_resp_free(&r);
    check_seed_key(f, 2500, NULL);
    assert_int_equal(cgt_stop(&c->proc, SIGTERM, 10000), 0);

    /* Another page size: ceil(2500 / 300) = 9. */
    char *v0 = cgt_redis_cmd(&f->rs, "GET " K("version"));
    long version0 = atol(v0);
    free(v0);
    cgt_tr_reset(f->tr);
    start_cg(f, 1, (const char *const[]){"WAIT_TIME_PAGE_SIZE=300", NULL});
    assert_int_equal(cgt_tr_wait_walks(f->tr, 2, 15000), 0);
    cgt_tr_counts(f->tr, &k);
    if (k.stats < 9 * k.walks || k.stats > 9 * k.walks + 8)
        fail_msg("%d statistics requests for %d refreshes", k.stats, k.walks);
    assert_int_equal(k.max_page_size, 300);
    /* The names are in Redis from the first instance: not read again until
     * the 10th refresh comes round. */
    if (version0 + k.walks + 1 < 10)
        assert_int_equal(k.names, 0);
    else
        assert_true(k.names == 0 || k.names == 9);
    assert_int_equal(cgt_stop(&f->cg[1].proc, SIGTERM, 10000), 0);
}

static void test_429_storm(void **state)
{
    struct fixture *f = *state;
    cgt_tr_set_nqueues(f->tr, 5);
    start_cg(f, 0, NULL);
    struct cgt_wtcg *c = &f->cg[0];
    char want0[64], want3[64];
    expected_answer(f->tr, 0, want0, sizeof want0);
    expected_answer(f->tr, 3, want3, sizeof want3);
    must_answer(c, 3, want3, 10000);

    cgt_tr_set_429(f->tr, 1, 1);
    cgt_tr_reset(f->tr);
    cgt_sleep_ms(5000);
    struct cgt_tr_counts k;
    cgt_tr_counts(f->tr, &k);
    /* Backing off, not hammering: a tight loop would make hundreds. */
    if (k.stats < 2 || k.stats > 9)
        fail_msg("%d statistics requests during a 5 s storm of 429s", k.stats);
    assert_int_equal(k.names, 0);
    /* The last values stay, marked stale. */
    must_answer(c, 0, want0, 5000);
    must_answer(c, 3, want3, 5000);
    assert_true(rec_stale(c, 3));
    char path[128];
    qt_path(3, path, sizeof path);
    struct cgt_resp r;
    get(c, path, NULL, &r);
    char *st = cgt_resp_header(&r, "X-Callgate-Stale");
    assert_string_equal(st, "true");
    free(st);
    char *cc = cgt_resp_header(&r, "Cache-Control");
    assert_string_equal(cc, "max-age=1");
    free(cc);
    cgt_resp_free(&r);

    /* Recovery. */
    cgt_tr_set_429(f->tr, 0, 0);
    cgt_tr_set_gen(f->tr, 1);
    expected_answer(f->tr, 3, want3, sizeof want3);
    must_answer(c, 3, want3, 12000);
    uint64_t deadline = cgt_now_ms() + 3000;
    while (rec_stale(c, 3) && cgt_now_ms() < deadline)
        cgt_sleep_ms(50);
    assert_false(rec_stale(c, 3));
    assert_int_equal(cgt_stop(&c->proc, SIGTERM, 10000), 0);
}

/* X-Rate-Limit-Remaining at 0 spaces the pages out before Twilio has to
 * answer 429; with room left they follow each other at once. */
static void test_rate_limit_pacing(void **state)
{
    struct fixture *f = *state;
    cgt_tr_set_nqueues(f->tr, 3);
    start_cg(f, 0, (const char *const[]){"WAIT_TIME_PAGE_SIZE=1", NULL});
    assert_int_equal(cgt_tr_wait_walks(f->tr, 1, 10000), 0);
    cgt_tr_set_rate_headers(f->tr, 10, 0);
    cgt_tr_reset(f->tr);
    cgt_sleep_ms(4000);
    struct cgt_tr_counts k;
    cgt_tr_counts(f->tr, &k);
    /* 2 s between pages: at most 3 in 4 s (unpaced: about 12). */
    if (k.stats > 3)
        fail_msg("%d statistics requests in 4 s with no rate limit left", k.stats);
    assert_int_equal(k.rate_limited, 0);

    cgt_tr_set_rate_headers(f->tr, 10, 9);
    cgt_sleep_ms(2100); /* the pause in progress ends */
    cgt_tr_reset(f->tr);
    cgt_sleep_ms(2000);
    cgt_tr_counts(f->tr, &k);
    if (k.stats < 3)
        fail_msg("only %d statistics requests in 2 s with room left", k.stats);
    assert_int_equal(cgt_stop(&f->cg[0].proc, SIGTERM, 10000), 0);
}

static void test_failing_page(void **state)
{
    struct fixture *f = *state;
    cgt_tr_set_nqueues(f->tr, 30);
    cgt_tr_set_gen(f->tr, 1);
    start_cg(f, 0, (const char *const[]){"WAIT_TIME_PAGE_SIZE=10", NULL});
    struct cgt_wtcg *c = &f->cg[0];
    char want[64];
    expected_answer(f->tr, 15, want, sizeof want);
    must_answer(c, 15, want, 10000);
    assert_int_equal(cgt_tr_wait_walks(f->tr, 1, 5000), 0);

    /* Page 1 (queues 10-19) turns to HTML; everything else moves on. */
    cgt_tr_set_bad_page(f->tr, 1, CGT_TR_BAD_HTML);
    cgt_tr_set_gen(f->tr, 2);
    struct cgt_tr_counts k;
    cgt_tr_counts(f->tr, &k);
    assert_int_equal(cgt_tr_wait_walks(f->tr, k.walks + 2, 15000), 0);
    char w2[64];
    expected_answer(f->tr, 5, w2, sizeof w2);
    must_answer(c, 5, w2, 10000);
    expected_answer(f->tr, 25, w2, sizeof w2);
    must_answer(c, 25, w2, 10000);
    /* The failing page's queues keep their last good (generation 1)
     * values, marked stale; the pages after it were still read. */
    must_answer(c, 15, want, 5000);
    assert_true(rec_stale(c, 15));
    assert_false(rec_stale(c, 25));
    assert_false(rec_stale(c, 5));
    char sid[35];
    cgt_tr_sid(15, sid);
    char *rec = cgt_redis_cmd(&f->rs, "HGET %s %s", K("queues"), sid);
    assert_non_null(strstr(rec, "\"stale\":true"));
    free(rec);
    int gens[30];
    for (int i = 0; i < 30; i++)
        gens[i] = i >= 10 && i < 20 ? 1 : 2;
    check_seed_key(f, 30, gens);

    /* A page of the wrong shape counts as bad too, and recovery is whole. */
    cgt_tr_set_bad_page(f->tr, 1, CGT_TR_BAD_NONE);
    cgt_tr_set_gen(f->tr, 3);
    expected_answer(f->tr, 15, want, sizeof want);
    must_answer(c, 15, want, 10000);
    uint64_t deadline = cgt_now_ms() + 3000;
    while (rec_stale(c, 15) && cgt_now_ms() < deadline)
        cgt_sleep_ms(50);
    assert_false(rec_stale(c, 15));
    assert_int_equal(cgt_stop(&c->proc, SIGTERM, 10000), 0);
}

static int leader_index(struct fixture *f)
{
    char *l = cgt_redis_cmd(&f->rs, "HGET " K("meta") " leader");
    int i = -1;
    for (int k = 0; k < 3; k++)
        if (strcmp(l, f->cg[k].id) == 0)
            i = k;
    free(l);
    return i;
}

static void test_failover(void **state)
{
    struct fixture *f = *state;
    cgt_tr_set_nqueues(f->tr, 3);
    /* Slow answers make two pollers at once visible at the fake. */
    cgt_tr_set_delay(f->tr, 150);
    start_cg(f, 0, NULL);
    start_cg(f, 1, NULL);
    assert_int_equal(cgt_tr_wait_walks(f->tr, 2, 10000), 0);
    int lead = leader_index(f);
    assert_true(lead == 0 || lead == 1);
    int other = 1 - lead;
    char want[64];
    expected_answer(f->tr, 2, want, sizeof want);
    must_answer(&f->cg[other], 2, want, 10000);

    /* kill -9 the leader: the lock expires (3 s) and the other takes over,
     * within CGT_WT_TAKEOVER_MAX_MS. */
    assert_int_equal(cgt_stop(&f->cg[lead].proc, SIGKILL, 1000), 128 + SIGKILL);
    f->cg[lead].proc.pid = 0;
    uint64_t killed = cgt_now_ms();
    cgt_tr_set_gen(f->tr, 1);
    /* (The dead leader's last request may still complete a walk at the
     * fake: the record of who wrote last is what tells.) */
    while (leader_index(f) != other && cgt_now_ms() - killed <= CGT_WT_TAKEOVER_MAX_MS)
        cgt_sleep_ms(20);
    uint64_t took = cgt_now_ms() - killed;
    if (leader_index(f) != other)
        fail_msg("no takeover within %d ms", CGT_WT_TAKEOVER_MAX_MS);
    if (took > CGT_WT_TAKEOVER_MAX_MS)
        fail_msg("takeover took %llu ms (at most %d)", (unsigned long long)took,
                 CGT_WT_TAKEOVER_MAX_MS);

    cg_log_info("failover", "took_ms=%llu", (unsigned long long)took);
    expected_answer(f->tr, 2, want, sizeof want);
    must_answer(&f->cg[other], 2, want, 10000);
    struct cgt_tr_counts k;

    /* A third instance joins; the leader's graceful stop hands the lock
     * over at once (compare-and-delete), long before it would expire. */
    start_cg(f, 2, NULL);
    cgt_sleep_ms(300);
    assert_int_equal(cgt_stop(&f->cg[other].proc, SIGTERM, 10000), 0);
    f->cg[other].proc.pid = 0;
    char *lk = cgt_redis_cmd(&f->rs, "GET " K("lock"));
    assert_true(strcmp(lk, "(nil)") == 0 || strncmp(lk, "cg2/", 4) == 0);
    free(lk);
    uint64_t t0 = cgt_now_ms();
    while (leader_index(f) != 2 && cgt_now_ms() - t0 < 5000)
        cgt_sleep_ms(20);
    assert_int_equal(leader_index(f), 2);

    /* Never two pollers at once, through all of it. */
    cgt_tr_counts(f->tr, &k);
    assert_int_equal(k.max_in_flight, 1);
    assert_int_equal(cgt_stop(&f->cg[2].proc, SIGTERM, 10000), 0);
}

static void test_redis_restart(void **state)
{
    struct fixture *f = *state;
    cgt_tr_set_nqueues(f->tr, 3);
    start_cg(f, 0, NULL);
    struct cgt_wtcg *c = &f->cg[0];
    char want[64];
    expected_answer(f->tr, 1, want, sizeof want);
    must_answer(c, 1, want, 10000);

    cg_redis_server_kill(&f->rs, SIGKILL);
    /* Served from memory, marked as such. */
    char path[128];
    qt_path(1, path, sizeof path);
    uint64_t deadline = cgt_now_ms() + 5000;
    int marked = 0;
    while (!marked && cgt_now_ms() < deadline) {
        struct cgt_resp r;
        get(c, path, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, strlen(want));
        assert_memory_equal(r.body, want, r.len);
        char *h = cgt_resp_header(&r, "X-Callgate-Redis");
        marked = h && strcmp(h, "unavailable") == 0;
        free(h);
        cgt_resp_free(&r);
        if (!marked)
            cgt_sleep_ms(20);
    }
    assert_true(marked);
    struct cgt_resp r;
    get(c, "/wait-times", NULL, &r);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "redis")), "unavailable");
    json_decref(j);
    cgt_resp_free(&r);
    /* No polling without the lock. */
    cgt_sleep_ms(300);
    struct cgt_tr_counts k0, k1;
    cgt_tr_counts(f->tr, &k0);
    cgt_sleep_ms(1500);
    cgt_tr_counts(f->tr, &k1);
    assert_int_equal(k1.stats, k0.stats);

    char err[256];
    assert_int_equal(cg_redis_server_restart(&f->rs, err, sizeof err), 0);
    cgt_tr_set_gen(f->tr, 1);
    expected_answer(f->tr, 1, want, sizeof want);
    must_answer(c, 1, want, 10000);
    /* Redis got everything back, the seed's key included. */
    check_seed_key(f, 3, NULL);
    assert_int_equal(cgt_stop(&c->proc, SIGTERM, 10000), 0);
}

/* POSTs a signed waitUrl request for a TaskRouter caller. */
static void post_queue_wait(const struct cgt_wtcg *c, const char *query, const char *token,
                            struct cgt_resp *r)
{
    struct cg_form f;
    cg_form_init(&f);
    cg_form_add(&f, "CallSid", "CA0123456789abcdef0123456789abcdef");
    cg_form_add(&f, "AccountSid", ACCOUNT_SID);
    cg_form_add(&f, "From", "+15550001111");
    cg_form_add(&f, "QueuePosition", "1");
    char *body = cg_form_encode(&f);
    char signed_url[512], url[512], sig[CG_TWSIG_LEN + 1], hdr[64];
    snprintf(signed_url, sizeof signed_url, "http://gate.test/queue-wait?%s", query);
    assert_int_equal(cg_twsig_compute(token, signed_url, &f, sig), 0);
    snprintf(hdr, sizeof hdr, "X-Twilio-Signature: %s", sig);
    snprintf(url, sizeof url, "%s/queue-wait?%s", c->base, query);
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", hdr, NULL};
    cgt_http("POST", url, headers, body, strlen(body), r);
    free(body);
    cg_form_free(&f);
}

static void test_taskqueue_hold(void **state)
{
    struct fixture *f = *state;
    struct cgt_tr_stats s = {.has_wait = 1,
                             .wait_avg = 200,
                             .accept = 30,
                             .longest = 400,
                             .pending = 6,
                             .available = 0,
                             .eligible = 2};
    cgt_tr_set_stats(f->tr, 0, &s);
    /* The gate is off (no Vapi account): /queue-wait serves TaskRouter
     * callers alone, with the same signature check as every webhook. */
    start_cg(f, 0, (const char *const[]){"PUBLIC_URL=http://gate.test", NULL});
    struct cgt_wtcg *c = &f->cg[0];
    char sid[35], query[64], want[64];
    cgt_tr_sid(0, sid);
    expected_answer(f->tr, 0, want, sizeof want);
    must_answer(c, 0, want, 10000);
    snprintf(query, sizeof query, "taskQueueSid=%s", sid);

    struct cgt_resp r;
    post_queue_wait(c, query, AUTH_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<Say>"));
    assert_non_null(strstr(r.body, "estimated wait"));
    char *ewt = cgt_resp_header(&r, "X-Callgate-Estimated-Wait");
    assert_non_null(ewt);
    /* A stalled queue (backlog, nobody available) is never announced as
     * shorter than its longest wait. */
    assert_true(atof(ewt) >= 400);
    free(ewt);
    cgt_resp_free(&r);

    /* An unknown queue gets hold music and no promise. */
    post_queue_wait(c, "taskQueueSid=WQffffffffffffffffffffffffffffffff", AUTH_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "<Say>"));
    cgt_resp_free(&r);

    /* A forged request is refused. */
    post_queue_wait(c, query, "not-the-token", &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_int_equal(cgt_stop(&c->proc, SIGTERM, 10000), 0);
}

static void test_read_token_and_off(void **state)
{
    struct fixture *f = *state;
    cgt_tr_set_nqueues(f->tr, 2);
    start_cg(f, 0, (const char *const[]){"WAIT_TIME_READ_TOKEN=read-token-0123", NULL});
    struct cgt_wtcg *c = &f->cg[0];
    char path[160], sid[35];
    cgt_tr_sid(1, sid);
    snprintf(path, sizeof path, "/get-queue-times?queueSid=%s&token=read-token-0123", sid);
    uint64_t deadline = cgt_now_ms() + 10000;
    while (get_status(c, path) != 200 && cgt_now_ms() < deadline)
        cgt_sleep_ms(20);
    assert_int_equal(get_status(c, path), 200);
    struct cgt_resp r;
    char plain[128];
    qt_path(1, plain, sizeof plain);
    get(c, plain, NULL, &r);
    assert_json_error(&r, 401, "unauthorized");
    cgt_resp_free(&r);
    get(c, plain, (const char *const[]){"Authorization: Bearer read-token-0123", NULL}, &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);
    get(c, plain, (const char *const[]){"Authorization: Bearer read-token-0124", NULL}, &r);
    assert_json_error(&r, 401, "unauthorized");
    cgt_resp_free(&r);
    /* The scheme name is case-insensitive (RFC 9110 section 11.1). */
    get(c, plain, (const char *const[]){"Authorization: bearer read-token-0123", NULL}, &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);
    snprintf(path, sizeof path, "/get-queue-times?queueSid=%s&token=wrong", sid);
    assert_int_equal(get_status(c, path), 401);
    assert_int_equal(get_status(c, "/wait-times"), 401);
    assert_int_equal(get_status(c, "/wait-times?token=read-token-0123"), 200);
    /* Unauthenticated clients learn nothing, not even that a SID is bad. */
    assert_int_equal(get_status(c, "/get-queue-times?queueSid=bad"), 401);
    assert_int_equal(cgt_stop(&c->proc, SIGTERM, 10000), 0);

    /* Without a workspace the routes exist and say the poller is off. */
    start_cg(f, 1, (const char *const[]){"-TWILIO_WORKSPACE_SID", NULL});
    get(&f->cg[1], plain, NULL, &r);
    assert_json_error(&r, 503, "poller_off");
    json_t *j = body_json(&r);
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "poller is off"));
    json_decref(j);
    cgt_resp_free(&r);
    get(&f->cg[1], "/wait-times", NULL, &r);
    assert_json_error(&r, 503, "poller_off");
    cgt_resp_free(&r);
    assert_int_equal(cgt_stop(&f->cg[1].proc, SIGTERM, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_2500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_pacing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_token_and_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taskqueue_hold, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
