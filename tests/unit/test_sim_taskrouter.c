/*
 * Unit tests for the simulated TaskRouter (sim/taskrouter.c): the REST
 * resources over a real cg_httpd on 127.0.0.1, driven by the test's own
 * cg_httpc on one event loop, and the queue model directly.
 *
 * Most tests replace the model's clock with a fake one (fake_t), so time
 * only moves when the test says so: rate limits and queue dynamics are then
 * exact. Field names, order and types are checked against hard-coded
 * tables taken from the spec's examples and against the examples
 * themselves (tests/data/twilio_taskrouter_v1_examples.json, copied from
 * the spec; its source is in tests/data/README.md).
 *
 * The sim header paths are explicit: src/ has a twiml.h of its own.
 */
#include "harness.h"

#include "../../sim/report.h"
#include "../../sim/scenario.h"
#include "../../sim/sim.h"
#include "../../sim/taskrouter.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "base/json.h"

#include <event2/event.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCOUNT  "AC0123456789abcdef0123456789abcdef"
#define TOKEN    "tr-auth-token-5678"
#define WS       "WS0123456789abcdef0123456789abcdef"
#define TWILIO   "\"twilio\":{\"account_sid\":\"" ACCOUNT "\",\"auth_token\":\"" TOKEN "\"}"
#define MAX_BODY (32 * 1024 * 1024)

static double fake_t;

static double fake_clock(void *arg)
{
    (void)arg;
    return fake_t;
}

struct fx {
    struct event_base *base;
    struct sim_scenario sc;
    int have_sc;
    struct sim_world w;
    struct cg_httpc *client;
    char sim_base[64];
};

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fx *fx = cg_calloc(1, sizeof(*fx));
    fx->base = event_base_new();
    assert_non_null(fx->base);
    fake_t = 0;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    struct sim_world *w = &fx->w;
    sim_taskrouter_free(w->taskrouter);
    if (fx->client)
        cg_httpc_free(fx->client);
    if (w->httpd)
        cg_httpd_free(w->httpd);
    sim_report_free(w->report);
    if (fx->have_sc)
        sim_scenario_free(&fx->sc);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* Parses the scenario's taskrouter member (plus the Twilio credentials)
 * and starts the simulated TaskRouter on a fresh port. fake: the model
 * runs on fake_t. */
static void start(struct fx *fx, const char *taskrouter, int fake)
{
    char json[2048];
    snprintf(json, sizeof(json), "{\"name\":\"tr-unit\",\"seed\":11," TWILIO ",\"taskrouter\":%s}",
             taskrouter);
    char err[256];
    if (sim_scenario_parse(&fx->sc, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    fx->have_sc = 1;
    struct sim_world *w = &fx->w;
    w->base = fx->base;
    w->sc = &fx->sc;
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1",
                              .port = 0,
                              .max_body_bytes = 1 << 20,
                              .max_header_bytes = 16384,
                              .timeout_seconds = 10};
    w->httpd = cg_httpd_new(fx->base, &o);
    assert_non_null(w->httpd);
    w->report = sim_report_new(w);
    w->start_ms = cg_mono_ms();
    w->taskrouter = sim_taskrouter_new(w);
    assert_non_null(w->taskrouter);
    if (fake)
        sim_taskrouter_set_clock(w->taskrouter, fake_clock, NULL);
    assert_int_equal(cg_httpd_listen(w->httpd, err, sizeof(err)), 0);
    snprintf(fx->sim_base, sizeof(fx->sim_base), "http://127.0.0.1:%d", cg_httpd_port(w->httpd));
    struct cg_httpc_opts co = {.default_max_response_bytes = MAX_BODY};
    fx->client = cg_httpc_new(fx->base, &co);
    assert_non_null(fx->client);
}

/* A model without HTTP, on the fake clock (for truth and determinism). */
static struct sim_taskrouter *model(struct sim_scenario *sc, struct sim_world *w,
                                    const char *taskrouter, unsigned long long seed)
{
    char json[2048];
    snprintf(json, sizeof(json), "{\"seed\":%llu,\"taskrouter\":%s}", seed, taskrouter);
    char err[256];
    if (sim_scenario_parse(sc, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    memset(w, 0, sizeof(*w));
    w->sc = sc;
    struct sim_taskrouter *tr = sim_taskrouter_new(w);
    assert_non_null(tr);
    sim_taskrouter_set_clock(tr, fake_clock, NULL);
    return tr;
}

/* ---- HTTP ---- */

struct resp {
    int done;
    long status;
    char *body;
    size_t len;
    double retry_after;
    long rl_limit, rl_remaining;
    char *rl_config;
    char *error;
};

static void on_resp(const struct cg_httpc_result *res, void *arg)
{
    struct resp *r = arg;
    r->status = res->status;
    r->body = cg_strndup(res->body ? res->body : "", res->body_len);
    r->len = res->body_len;
    r->retry_after = res->retry_after_s;
    r->rl_limit = res->rate_limit_limit;
    r->rl_remaining = res->rate_limit_remaining;
    r->rl_config = res->rate_limit_config ? cg_strdup(res->rate_limit_config) : NULL;
    r->error = res->error ? cg_strdup(res->error) : NULL;
    r->done = 1;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    free(r->rl_config);
    free(r->error);
    memset(r, 0, sizeof(*r));
}

static void send_req(struct fx *fx, const char *method, const char *url, const char *user,
                     const char *pass, struct resp *out)
{
    memset(out, 0, sizeof(*out));
    struct cg_httpc_request req = {
        .method = method, .url = url, .basic_user = user, .basic_pass = pass, .timeout_ms = 10000};
    assert_int_equal(cg_httpc_send(fx->client, &req, on_resp, out), 0);
}

static long http(struct fx *fx, const char *method, const char *url, const char *user,
                 const char *pass, struct resp *out)
{
    send_req(fx, method, url, user, pass, out);
    assert_int_equal(cgt_run_until(fx->base, &out->done, 15000), 0);
    if (out->error)
        fail_msg("%s %s: %s", method, url, out->error);
    return out->status;
}

/* GET of a path under the workspace, with the right credentials. */
static long tr_get(struct fx *fx, const char *rest, struct resp *out)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/v1/Workspaces/" WS "/%s", fx->sim_base, rest);
    return http(fx, "GET", url, ACCOUNT, TOKEN, out);
}

static json_t *json_of(const struct resp *r)
{
    char err[128];
    json_t *j = cg_json_parse(r->body, r->len, 32, err, sizeof(err));
    if (!j)
        fail_msg("not JSON (%s): %.300s", err, r->body);
    return j;
}

static json_t *get_json(struct fx *fx, const char *rest)
{
    struct resp r;
    long st = tr_get(fx, rest, &r);
    if (st != 200)
        fail_msg("GET %s: %ld %.300s", rest, st, r.body);
    json_t *j = json_of(&r);
    resp_free(&r);
    return j;
}

static long jint(const json_t *j, const char *path)
{
    json_t *v = cg_json_path(j, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return (long)json_integer_value(v);
}

/* ---- shapes ---- */

/* One expected member: name and type: i integer, r real, s string, S
 * string or null, o object, a array, n null. */
struct field {
    const char *key;
    char type;
};

static void assert_type(const char *where, const char *key, const json_t *v, char type)
{
    int ok = 0;
    switch (type) {
    case 'i':
        ok = json_is_integer(v);
        break;
    case 'r':
        ok = json_is_real(v);
        break;
    case 's':
        ok = json_is_string(v);
        break;
    case 'S':
        ok = json_is_string(v) || json_is_null(v);
        break;
    case 'o':
        ok = json_is_object(v);
        break;
    case 'a':
        ok = json_is_array(v);
        break;
    case 'n':
        ok = json_is_null(v);
        break;
    default:
        break;
    }
    if (!ok)
        fail_msg("%s.%s: expected type %c", where, key, type);
}

/* Every field present with its type, in this order, and nothing else. */
static void assert_fields(const char *where, const json_t *o, const struct field *f)
{
    if (!json_is_object(o))
        fail_msg("%s is not an object", where);
    size_t n = 0;
    void *it = json_object_iter((json_t *)o);
    for (; f[n].key; n++, it = json_object_iter_next((json_t *)o, it)) {
        json_t *v = json_object_get(o, f[n].key);
        if (!v)
            fail_msg("%s lacks %s", where, f[n].key);
        assert_type(where, f[n].key, v, f[n].type);
        if (!it || strcmp(json_object_iter_key(it), f[n].key) != 0)
            fail_msg("%s: %s out of order", where, f[n].key);
    }
    if (json_object_size(o) != n)
        fail_msg("%s has %zu members, expected %zu", where, json_object_size(o), n);
}

static const struct field META[] = {{"first_page_url", 's'},
                                    {"key", 's'},
                                    {"next_page_url", 'S'},
                                    {"page", 'i'},
                                    {"page_size", 'i'},
                                    {"previous_page_url", 'S'},
                                    {"url", 's'},
                                    {NULL, 0}};

static const struct field QUEUE[] = {{"account_sid", 's'},
                                     {"assignment_activity_name", 's'},
                                     {"assignment_activity_sid", 's'},
                                     {"date_created", 's'},
                                     {"date_updated", 's'},
                                     {"friendly_name", 's'},
                                     {"max_reserved_workers", 'i'},
                                     {"links", 'o'},
                                     {"reservation_activity_name", 's'},
                                     {"reservation_activity_sid", 's'},
                                     {"sid", 's'},
                                     {"target_workers", 'n'},
                                     {"task_order", 's'},
                                     {"url", 's'},
                                     {"workspace_sid", 's'},
                                     {NULL, 0}};

static const struct field LINKS[] = {{"assignment_activity", 's'},
                                     {"reservation_activity", 's'},
                                     {"workspace", 's'},
                                     {"statistics", 's'},
                                     {"real_time_statistics", 's'},
                                     {"cumulative_statistics", 's'},
                                     {"list_statistics", 's'},
                                     {"bulk_real_time_statistics", 's'},
                                     {NULL, 0}};

static const struct field STATS_ITEM[] = {{"account_sid", 's'},   {"cumulative", 'o'},
                                          {"realtime", 'o'},      {"task_queue_sid", 's'},
                                          {"workspace_sid", 's'}, {NULL, 0}};

static const struct field STATS_ONE[] = {{"account_sid", 's'},
                                         {"url", 's'},
                                         {"cumulative", 'o'},
                                         {"realtime", 'o'},
                                         {"task_queue_sid", 's'},
                                         {"workspace_sid", 's'},
                                         {NULL, 0}};

static const struct field CUMULATIVE[] = {{"avg_task_acceptance_time", 'r'},
                                          {"end_time", 's'},
                                          {"reservations_accepted", 'i'},
                                          {"reservations_canceled", 'i'},
                                          {"reservations_created", 'i'},
                                          {"reservations_rejected", 'i'},
                                          {"reservations_rescinded", 'i'},
                                          {"reservations_timed_out", 'i'},
                                          {"start_time", 's'},
                                          {"tasks_canceled", 'i'},
                                          {"tasks_completed", 'i'},
                                          {"tasks_deleted", 'i'},
                                          {"tasks_entered", 'i'},
                                          {"tasks_moved", 'i'},
                                          {"wait_duration_in_queue_until_accepted", 'o'},
                                          {"wait_duration_until_accepted", 'o'},
                                          {"wait_duration_until_canceled", 'o'},
                                          {NULL, 0}};

/* The same without the wait durations (bulk_wait_durations false). */
static const struct field CUMULATIVE_BARE[] = {{"avg_task_acceptance_time", 'r'},
                                               {"end_time", 's'},
                                               {"reservations_accepted", 'i'},
                                               {"reservations_canceled", 'i'},
                                               {"reservations_created", 'i'},
                                               {"reservations_rejected", 'i'},
                                               {"reservations_rescinded", 'i'},
                                               {"reservations_timed_out", 'i'},
                                               {"start_time", 's'},
                                               {"tasks_canceled", 'i'},
                                               {"tasks_completed", 'i'},
                                               {"tasks_deleted", 'i'},
                                               {"tasks_entered", 'i'},
                                               {"tasks_moved", 'i'},
                                               {NULL, 0}};

static const struct field REALTIME[] = {{"activity_statistics", 'a'},
                                        {"longest_relative_task_age_in_queue", 'i'},
                                        {"longest_relative_task_sid_in_queue", 'S'},
                                        {"longest_task_waiting_age", 'i'},
                                        {"longest_task_waiting_sid", 'S'},
                                        {"tasks_by_priority", 'o'},
                                        {"tasks_by_status", 'o'},
                                        {"total_available_workers", 'i'},
                                        {"total_eligible_workers", 'i'},
                                        {"total_tasks", 'i'},
                                        {NULL, 0}};

static const struct field BY_STATUS[] = {
    {"assigned", 'i'}, {"pending", 'i'}, {"reserved", 'i'}, {"wrapping", 'i'}, {NULL, 0}};

static const struct field ACTIVITY[] = {
    {"friendly_name", 's'}, {"sid", 's'}, {"workers", 'i'}, {NULL, 0}};

static const struct field WAITS[] = {
    {"avg", 'i'}, {"min", 'i'}, {"max", 'i'}, {"total", 'i'}, {NULL, 0}};

static const struct field RT_ONE[] = {{"longest_task_waiting_age", 'i'},
                                      {"longest_task_waiting_sid", 'S'},
                                      {"longest_relative_task_age_in_queue", 'i'},
                                      {"longest_relative_task_sid_in_queue", 'S'},
                                      {"task_queue_sid", 's'},
                                      {"tasks_by_status", 'o'},
                                      {"total_eligible_workers", 'i'},
                                      {"activity_statistics", 'a'},
                                      {"tasks_by_priority", 'o'},
                                      {"total_tasks", 'i'},
                                      {"account_sid", 's'},
                                      {"workspace_sid", 's'},
                                      {"total_available_workers", 'i'},
                                      {"url", 's'},
                                      {NULL, 0}};

static const struct field CUM_ONE[] = {{"reservations_created", 'i'},
                                       {"account_sid", 's'},
                                       {"reservations_rejected", 'i'},
                                       {"tasks_completed", 'i'},
                                       {"end_time", 's'},
                                       {"tasks_entered", 'i'},
                                       {"tasks_canceled", 'i'},
                                       {"reservations_accepted", 'i'},
                                       {"task_queue_sid", 's'},
                                       {"reservations_timed_out", 'i'},
                                       {"url", 's'},
                                       {"wait_duration_until_canceled", 'o'},
                                       {"wait_duration_until_accepted", 'o'},
                                       {"wait_duration_in_queue_until_accepted", 'o'},
                                       {"split_by_wait_time", 'n'},
                                       {"start_time", 's'},
                                       {"tasks_moved", 'i'},
                                       {"reservations_canceled", 'i'},
                                       {"workspace_sid", 's'},
                                       {"tasks_deleted", 'i'},
                                       {"reservations_rescinded", 'i'},
                                       {"avg_task_acceptance_time", 'r'},
                                       {NULL, 0}};

static int is_sid(const char *s, const char *prefix)
{
    if (!s || strlen(s) != 34 || strncmp(s, prefix, 2) != 0)
        return 0;
    for (size_t i = 2; i < 34; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return 0;
    return 1;
}

static int is_iso(const char *s)
{
    /* "2015-08-04T01:31:41Z" */
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    if (!s || strlen(s) != sizeof(pat) - 1)
        return 0;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return 0;
    return 1;
}

static void assert_stats_item(const json_t *item, const struct field *top, int waits)
{
    assert_fields("statistics", item, top);
    const json_t *cum = json_object_get(item, "cumulative");
    assert_fields("cumulative", cum, waits ? CUMULATIVE : CUMULATIVE_BARE);
    assert_true(is_iso(cg_json_str(cum, "start_time")));
    assert_true(is_iso(cg_json_str(cum, "end_time")));
    if (waits) {
        assert_fields("wait_duration_until_accepted",
                      json_object_get(cum, "wait_duration_until_accepted"), WAITS);
        assert_fields("wait_duration_until_canceled",
                      json_object_get(cum, "wait_duration_until_canceled"), WAITS);
        assert_fields("wait_duration_in_queue_until_accepted",
                      json_object_get(cum, "wait_duration_in_queue_until_accepted"), WAITS);
    }
    const json_t *rt = json_object_get(item, "realtime");
    assert_fields("realtime", rt, REALTIME);
    assert_fields("tasks_by_status", json_object_get(rt, "tasks_by_status"), BY_STATUS);
    const json_t *acts = json_object_get(rt, "activity_statistics");
    assert_int_equal(json_array_size(acts), 4);
    for (size_t i = 0; i < json_array_size(acts); i++) {
        assert_fields("activity", json_array_get(acts, i), ACTIVITY);
        assert_true(is_sid(cg_json_str(json_array_get(acts, i), "sid"), "WA"));
    }
    assert_true(is_sid(cg_json_str(item, "task_queue_sid"), "WQ"));
    assert_string_equal(cg_json_str(item, "workspace_sid"), WS);
    assert_string_equal(cg_json_str(item, "account_sid"), ACCOUNT);
}

/* ---- the spec's examples ---- */

#define SPEC_EXAMPLES "tests/data/twilio_taskrouter_v1_examples.json"

/* The examples file is part of the tree: a missing one fails the test. */
static json_t *load_spec(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/" SPEC_EXAMPLES, CG_SOURCE_DIR);
    json_error_t e;
    json_t *spec = json_load_file(path, 0, &e);
    if (!spec)
        fail_msg("%s: %s (line %d)", path, e.text, e.line);
    return spec;
}

static json_t *spec_example(json_t *spec, const char *path, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "/v1/Workspaces/{WorkspaceSid}/%s", path);
    json_t *v = json_object_get(json_object_get(json_object_get(spec, "examples"), p), name);
    if (!v)
        fail_msg("%s has no example %s for %s", SPEC_EXAMPLES, name, p);
    return v;
}

/* ---- paging ---- */

/* Follows next_page_url from the first page; checks meta on every page.
 * Returns the number of pages; the SIDs seen go to sids (n of them). */
static size_t walk(struct fx *fx, const char *first, const char *key, long page_size,
                   char (*sids)[35], size_t max, size_t *n)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s/v1/Workspaces/" WS "/%s", fx->sim_base, first);
    size_t pages = 0;
    *n = 0;
    for (;;) {
        struct resp r;
        long st = http(fx, "GET", url, ACCOUNT, TOKEN, &r);
        if (st != 200)
            fail_msg("GET %s: %ld %.200s", url, st, r.body);
        json_t *j = json_of(&r);
        resp_free(&r);
        json_t *meta = json_object_get(j, "meta");
        assert_fields("meta", meta, META);
        assert_string_equal(cg_json_str(meta, "key"), key);
        assert_int_equal(jint(meta, "page_size"), page_size);
        assert_int_equal(jint(meta, "page"), (long)pages);
        /* Absolute URLs, back to the simulator. */
        assert_true(strncmp(cg_json_str(meta, "url"), fx->sim_base, strlen(fx->sim_base)) == 0);
        assert_true(
            strncmp(cg_json_str(meta, "first_page_url"), fx->sim_base, strlen(fx->sim_base)) == 0);
        json_t *items = json_object_get(j, key);
        assert_true(json_is_array(items));
        assert_true(json_array_size(items) <= (size_t)page_size);
        for (size_t i = 0; i < json_array_size(items); i++) {
            const char *sid = cg_json_str(json_array_get(items, i),
                                          strcmp(key, "task_queues") ? "task_queue_sid" : "sid");
            assert_true(is_sid(sid, "WQ"));
            if (*n < max)
                snprintf(sids[*n], 35, "%s", sid);
            (*n)++;
        }
        if (pages > 0)
            assert_true(json_is_string(json_object_get(meta, "previous_page_url")));
        else
            assert_true(json_is_null(json_object_get(meta, "previous_page_url")));
        pages++;
        json_t *next = json_object_get(meta, "next_page_url");
        if (json_is_null(next)) {
            json_decref(j);
            return pages;
        }
        assert_true(json_array_size(items) == (size_t)page_size);
        const char *nu = json_string_value(next);
        assert_non_null(nu);
        assert_true(strncmp(nu, fx->sim_base, strlen(fx->sim_base)) == 0);
        snprintf(url, sizeof(url), "%s", nu);
        json_decref(j);
        if (pages > 100)
            fail_msg("paging does not end");
    }
}

static void assert_unique(char (*sids)[35], size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(sids[i], sids[k]) == 0)
                fail_msg("SID %s listed twice", sids[i]);
}

/* ---- tests ---- */

static void test_scenario_member(void **state)
{
    (void)state;
    struct sim_scenario sc;
    char err[256];
    assert_int_equal(sim_scenario_parse(&sc, "{}", 2, err, sizeof(err)), 0);
    assert_string_equal(sc.tr_workspace_sid, "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(sc.tr_queues, 0);
    assert_int_equal(sc.tr_workers.kind, SIM_DIST_CONST);
    assert_true(sc.tr_workers.a == 3);
    assert_true(sc.tr_task_rate.kind == SIM_DIST_CONST && sc.tr_task_rate.a == 0.08);
    assert_int_equal(sc.tr_handle.kind, SIM_DIST_EXP);
    assert_int_equal(sc.tr_abandon.kind, SIM_DIST_NONE);
    assert_int_equal(sc.tr_stalled_queues, 0);
    assert_int_equal(sc.tr_bulk_wait_durations, 1);
    assert_true(sc.tr_rate_limit_per_s == 50 && sc.tr_rate_429 == 0);
    assert_int_equal(sc.tr_fail_page, -1);
    assert_int_equal(sc.tr_fail_garbage, 0);
    assert_int_equal(sc.tr_latency.kind, SIM_DIST_NONE);
    sim_scenario_free(&sc);

    const char *full =
        "{\"taskrouter\":{\"workspace_sid\":\"" WS "\",\"queues\":7,"
        "\"workers_per_queue\":{\"dist\":\"uniform\",\"min_s\":1,\"max_s\":4},"
        "\"task_rate_per_s\":0.5,\"handle_s\":{\"dist\":\"const\",\"value_s\":3},"
        "\"abandon_s\":{\"dist\":\"exp\",\"mean_s\":60},\"stalled_queues\":2,\"warmup_s\":30,"
        "\"bulk_wait_durations\":false,\"rate_limit_per_s\":10,\"rate_429\":0.1,"
        "\"fail_page\":2,\"fail_mode\":\"garbage\",\"latency\":{\"dist\":\"const\","
        "\"value_s\":0.01}}}";
    if (sim_scenario_parse(&sc, full, strlen(full), err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(sc.tr_workspace_sid, WS);
    assert_int_equal(sc.tr_queues, 7);
    assert_int_equal(sc.tr_workers.kind, SIM_DIST_UNIFORM);
    assert_true(sc.tr_task_rate.a == 0.5);
    assert_int_equal(sc.tr_abandon.kind, SIM_DIST_EXP);
    assert_int_equal(sc.tr_stalled_queues, 2);
    assert_true(sc.tr_warmup_s == 30);
    assert_int_equal(sc.tr_bulk_wait_durations, 0);
    assert_int_equal(sc.tr_fail_page, 2);
    assert_int_equal(sc.tr_fail_garbage, 1);
    assert_int_equal(sc.tr_latency.kind, SIM_DIST_CONST);
    sim_scenario_free(&sc);

    static const char *const bad[][2] = {
        {"{\"taskrouter\":{\"queuez\":1}}", "unknown member \"queuez\""},
        {"{\"taskrouter\":{\"workspace_sid\":\"WSxyz\"}}", "taskrouter.workspace_sid"},
        {"{\"taskrouter\":{\"queues\":2,\"stalled_queues\":3}}", "taskrouter.stalled_queues"},
        {"{\"taskrouter\":{\"fail_mode\":\"404\"}}", "taskrouter.fail_mode"},
        {"{\"taskrouter\":{\"queues\":10001}}", "taskrouter.queues"},
        {"{\"taskrouter\":{\"workers_per_queue\":1.5}}", "taskrouter.workers_per_queue"},
        {"{\"taskrouter\":{\"task_rate_per_s\":-1}}", "taskrouter.task_rate_per_s"},
        {"{\"taskrouter\":{\"rate_limit_per_s\":0}}", "taskrouter.rate_limit_per_s"},
        {"{\"taskrouter\":{\"handle_s\":null}}", "taskrouter.handle_s"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sim_scenario_parse(&sc, bad[i][0], strlen(bad[i][0]), err, sizeof(err)),
                         -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("error \"%s\" lacks \"%s\"", err, bad[i][1]);
        sim_scenario_free(&sc);
    }
}

static void test_auth_and_not_found(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":2}", 1);
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/Workspaces/" WS "/TaskQueues", fx->sim_base);
    static const char *const body401 =
        "{\"code\":20003,\"detail\":\"Your AccountSid or AuthToken was incorrect.\","
        "\"message\":\"Authenticate\",\"more_info\":\"https://www.twilio.com/docs/errors/20003\","
        "\"status\":401}";
    struct resp r;
    assert_int_equal(http(fx, "GET", url, NULL, NULL, &r), 401);
    assert_string_equal(r.body, body401);
    resp_free(&r);
    assert_int_equal(http(fx, "GET", url, ACCOUNT, "wrong", &r), 401);
    assert_string_equal(r.body, body401);
    resp_free(&r);
    assert_int_equal(http(fx, "GET", url, "ACffffffffffffffffffffffffffffffff", TOKEN, &r), 401);
    resp_free(&r);

    /* Unknown workspace: 404 with the path minus the version prefix. */
    snprintf(url, sizeof(url),
             "%s/v1/Workspaces/WSffffffffffffffffffffffffffffffff/TaskQueues/Statistics",
             fx->sim_base);
    assert_int_equal(http(fx, "GET", url, ACCOUNT, TOKEN, &r), 404);
    assert_string_equal(r.body,
                        "{\"code\":20404,\"message\":\"The requested resource "
                        "/Workspaces/WSffffffffffffffffffffffffffffffff/TaskQueues/Statistics "
                        "was not found\",\"more_info\":\"https://www.twilio.com/docs/errors/"
                        "20404\",\"status\":404}");
    assert_true(r.rl_limit == 50 && r.rl_config != NULL);
    resp_free(&r);
    /* Unknown queue, unknown subresource, the 2010 ".json" suffix. */
    assert_int_equal(tr_get(fx, "TaskQueues/WQffffffffffffffffffffffffffffffff/Statistics", &r),
                     404);
    resp_free(&r);
    char rest[256];
    snprintf(rest, sizeof(rest), "TaskQueues/%s/Workers",
             sim_taskrouter_queue_sid(fx->w.taskrouter, 0));
    assert_int_equal(tr_get(fx, rest, &r), 404);
    resp_free(&r);
    assert_int_equal(tr_get(fx, "TaskQueues.json", &r), 404);
    resp_free(&r);
    /* The write side is not simulated. */
    snprintf(url, sizeof(url), "%s/v1/Workspaces/" WS "/TaskQueues", fx->sim_base);
    assert_int_equal(http(fx, "POST", url, ACCOUNT, TOKEN, &r), 405);
    assert_non_null(strstr(r.body, "\"code\":20004"));
    resp_free(&r);
    assert_int_equal(sim_taskrouter_requests(fx->w.taskrouter, "unknown"), 4);
}

static void test_paging_small(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":50}", 1);
    char sids[64][35];
    size_t n;
    /* 50 queues fit the default page of 50. */
    assert_int_equal(walk(fx, "TaskQueues", "task_queues", 50, sids, 64, &n), 1);
    assert_int_equal(n, 50);
    assert_unique(sids, n);
    /* Pages of 20: 20, 20, 10, each following next_page_url. */
    assert_int_equal(walk(fx, "TaskQueues?PageSize=20", "task_queues", 20, sids, 64, &n), 3);
    assert_int_equal(n, 50);
    assert_unique(sids, n);
    assert_int_equal(
        walk(fx, "TaskQueues/Statistics?PageSize=20", "task_queues_statistics", 20, sids, 64, &n),
        3);
    assert_int_equal(n, 50);
    assert_unique(sids, n);

    /* The first page's URLs, exactly. */
    json_t *j = get_json(fx, "TaskQueues/Statistics?PageSize=20&Minutes=5");
    char want[1024];
    snprintf(want, sizeof(want),
             "%s/v1/Workspaces/" WS "/TaskQueues/Statistics?Minutes=5&PageSize=20&Page=0",
             fx->sim_base);
    assert_string_equal(cg_json_str(j, "meta.first_page_url"), want);
    assert_string_equal(cg_json_str(j, "meta.url"), want);
    snprintf(want, sizeof(want),
             "%s/v1/Workspaces/" WS
             "/TaskQueues/Statistics?Minutes=5&PageSize=20&Page=1&PageToken=PA%s",
             fx->sim_base, sim_taskrouter_queue_sid(fx->w.taskrouter, 19));
    assert_string_equal(cg_json_str(j, "meta.next_page_url"), want);
    json_decref(j);

    /* PageSize bounds and a malformed token. */
    struct resp r;
    assert_int_equal(tr_get(fx, "TaskQueues?PageSize=1001", &r), 400);
    resp_free(&r);
    assert_int_equal(tr_get(fx, "TaskQueues?PageSize=0", &r), 400);
    resp_free(&r);
    assert_int_equal(tr_get(fx, "TaskQueues?PageToken=PAnope", &r), 400);
    assert_non_null(strstr(r.body, "21481"));
    resp_free(&r);
    assert_int_equal(
        tr_get(fx, "TaskQueues/Statistics?PageToken=PAWQffffffffffffffffffffffffffffffff", &r),
        400);
    resp_free(&r);
}

static void test_paging_one(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":1}", 1);
    char sids[4][35];
    size_t n;
    assert_int_equal(walk(fx, "TaskQueues", "task_queues", 50, sids, 4, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(walk(fx, "TaskQueues/Statistics", "task_queues_statistics", 50, sids, 4, &n),
                     1);
    assert_int_equal(n, 1);
    assert_string_equal(sids[0], sim_taskrouter_queue_sid(fx->w.taskrouter, 0));
}

static void test_paging_2500(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":2500,\"warmup_s\":120}", 1);
    fake_t = 30;
    static char sids[2600][35];
    size_t n;
    assert_int_equal(walk(fx, "TaskQueues?PageSize=1000", "task_queues", 1000, sids, 2600, &n), 3);
    assert_int_equal(n, 2500);
    assert_unique(sids, n);
    assert_int_equal(walk(fx, "TaskQueues/Statistics?PageSize=1000", "task_queues_statistics", 1000,
                          sids, 2600, &n),
                     3);
    assert_int_equal(n, 2500);
    assert_unique(sids, n);
    assert_int_equal(sim_taskrouter_requests(fx->w.taskrouter, "statistics_list"), 3);
    assert_int_equal(sim_taskrouter_requests(fx->w.taskrouter, "task_queues_list"), 3);
}

static void test_shapes(void **state)
{
    struct fx *fx = *state;
    start(fx,
          "{\"workspace_sid\":\"" WS "\",\"queues\":3,\"stalled_queues\":1,\"warmup_s\":600,"
          "\"task_rate_per_s\":0.2,\"workers_per_queue\":2,"
          "\"abandon_s\":{\"dist\":\"exp\",\"mean_s\":60}}",
          1);
    struct sim_taskrouter *tr = fx->w.taskrouter;
    fake_t = 5;

    json_t *j = get_json(fx, "TaskQueues");
    assert_fields("page", j,
                  (const struct field[]){{"meta", 'o'}, {"task_queues", 'a'}, {NULL, 0}});
    json_t *items = json_object_get(j, "task_queues");
    assert_int_equal(json_array_size(items), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *q = json_array_get(items, i);
        assert_fields("task_queue", q, QUEUE);
        assert_fields("links", json_object_get(q, "links"), LINKS);
        assert_true(is_sid(cg_json_str(q, "sid"), "WQ"));
        assert_true(is_iso(cg_json_str(q, "date_created")));
        assert_string_equal(cg_json_str(q, "friendly_name"), sim_taskrouter_queue_name(tr, i));
        assert_string_equal(cg_json_str(q, "task_order"), "FIFO");
        char want[512];
        snprintf(want, sizeof(want), "%s/v1/Workspaces/" WS "/TaskQueues/%s", fx->sim_base,
                 cg_json_str(q, "sid"));
        assert_string_equal(cg_json_str(q, "url"), want);
    }
    json_decref(j);

    j = get_json(fx, "TaskQueues/Statistics");
    assert_fields(
        "page", j,
        (const struct field[]){{"meta", 'o'}, {"task_queues_statistics", 'a'}, {NULL, 0}});
    items = json_object_get(j, "task_queues_statistics");
    assert_int_equal(json_array_size(items), 3);
    long entered = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *it = json_array_get(items, i);
        assert_stats_item(it, STATS_ITEM, 1);
        entered += jint(it, "cumulative.tasks_entered");
        /* The realtime figures agree with each other. */
        long total = jint(it, "realtime.total_tasks");
        assert_int_equal(total, jint(it, "realtime.tasks_by_status.pending") +
                                    jint(it, "realtime.tasks_by_status.assigned"));
        json_t *sid = cg_json_path(it, "realtime");
        sid = json_object_get(sid, "longest_task_waiting_sid");
        if (jint(it, "realtime.tasks_by_status.pending") > 0)
            assert_true(is_sid(json_string_value(sid), "WT"));
        else
            assert_true(json_is_null(sid));
    }
    assert_true(entered > 0);
    json_decref(j);

    /* Without the wait durations in the Statistics resources. */
    struct sim_scenario *sc = &fx->sc;
    sc->tr_bulk_wait_durations = 0;
    j = get_json(fx, "TaskQueues/Statistics?PageSize=1");
    assert_stats_item(json_array_get(json_object_get(j, "task_queues_statistics"), 0), STATS_ITEM,
                      0);
    json_decref(j);
    sc->tr_bulk_wait_durations = 1;

    /* Per queue. */
    const char *sid = sim_taskrouter_queue_sid(tr, 1);
    char rest[256], want[512];
    snprintf(rest, sizeof(rest), "TaskQueues/%s/Statistics", sid);
    j = get_json(fx, rest);
    assert_stats_item(j, STATS_ONE, 1);
    snprintf(want, sizeof(want), "%s/v1/Workspaces/" WS "/%s", fx->sim_base, rest);
    assert_string_equal(cg_json_str(j, "url"), want);
    assert_string_equal(cg_json_str(j, "task_queue_sid"), sid);
    json_decref(j);

    snprintf(rest, sizeof(rest), "TaskQueues/%s/RealTimeStatistics", sid);
    j = get_json(fx, rest);
    assert_fields("RealTimeStatistics", j, RT_ONE);
    assert_fields(
        "tasks_by_status", json_object_get(j, "tasks_by_status"),
        (const struct field[]){
            {"reserved", 'i'}, {"pending", 'i'}, {"assigned", 'i'}, {"wrapping", 'i'}, {NULL, 0}});
    json_t *act0 = json_array_get(json_object_get(j, "activity_statistics"), 0);
    assert_fields(
        "activity", act0,
        (const struct field[]){{"friendly_name", 's'}, {"workers", 'i'}, {"sid", 's'}, {NULL, 0}});
    snprintf(want, sizeof(want), "%s/v1/Workspaces/" WS "/%s", fx->sim_base, rest);
    assert_string_equal(cg_json_str(j, "url"), want);
    json_decref(j);

    snprintf(rest, sizeof(rest), "TaskQueues/%s/CumulativeStatistics?Minutes=30", sid);
    j = get_json(fx, rest);
    assert_fields("CumulativeStatistics", j, CUM_ONE);
    assert_fields("waits", json_object_get(j, "wait_duration_until_accepted"), WAITS);
    /* 30 minutes between start_time and end_time. */
    json_decref(j);

    snprintf(rest, sizeof(rest), "TaskQueues/%s/CumulativeStatistics?SplitByWaitTime=5,30", sid);
    j = get_json(fx, rest);
    json_t *split = json_object_get(j, "split_by_wait_time");
    assert_int_equal(json_object_size(split), 2);
    long acc = jint(j, "reservations_accepted");
    assert_int_equal(jint(split, "5.above.reservations_accepted") +
                         jint(split, "5.below.reservations_accepted"),
                     acc);
    assert_int_equal(jint(split, "30.above.tasks_canceled") +
                         jint(split, "30.below.tasks_canceled"),
                     jint(j, "tasks_canceled"));
    json_decref(j);

    snprintf(rest, sizeof(rest), "TaskQueues/%s", sid);
    j = get_json(fx, rest);
    assert_fields("task_queue", j, QUEUE);
    json_decref(j);

    /* Bad statistics parameters. */
    struct resp r;
    static const char *const bad[] = {
        "TaskQueues/Statistics?Minutes=0", "TaskQueues/Statistics?Minutes=x",
        "TaskQueues/Statistics?StartDate=yesterday",
        "TaskQueues/Statistics?StartDate=2030-01-02T00:00:00Z&EndDate=2030-01-01T00:00:00Z",
        "TaskQueues/Statistics?SplitByWaitTime=a,b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tr_get(fx, bad[i], &r), 400);
        assert_non_null(strstr(r.body, "\"code\":20001"));
        resp_free(&r);
    }
}

/* The bodies against the spec's own examples. */
static void test_spec_examples(void **state)
{
    struct fx *fx = *state;
    json_t *spec = load_spec();
    start(fx,
          "{\"workspace_sid\":\"" WS "\",\"queues\":2,\"warmup_s\":300,\"task_rate_per_s\":0.5,"
          "\"workers_per_queue\":3}",
          1);
    const char *sid = sim_taskrouter_queue_sid(fx->w.taskrouter, 0);
    char rest[256];
    json_t *j = get_json(fx, "TaskQueues");
    cgt_assert_like_spec("TaskQueues", spec_example(spec, "TaskQueues", "readFull"), j,
                         "avg_task_acceptance_time");
    json_decref(j);
    j = get_json(fx, "TaskQueues/Statistics");
    cgt_assert_like_spec("TaskQueues/Statistics",
                         spec_example(spec, "TaskQueues/Statistics", "readFull"), j,
                         "avg_task_acceptance_time");
    json_decref(j);
    snprintf(rest, sizeof(rest), "TaskQueues/%s", sid);
    j = get_json(fx, rest);
    cgt_assert_like_spec("TaskQueue", spec_example(spec, "TaskQueues/{Sid}", "fetch"), j,
                         "avg_task_acceptance_time");
    json_decref(j);
    snprintf(rest, sizeof(rest), "TaskQueues/%s/Statistics", sid);
    j = get_json(fx, rest);
    cgt_assert_like_spec("Statistics",
                         spec_example(spec, "TaskQueues/{TaskQueueSid}/Statistics", "fetch"), j,
                         "avg_task_acceptance_time");
    json_decref(j);
    snprintf(rest, sizeof(rest), "TaskQueues/%s/RealTimeStatistics", sid);
    j = get_json(fx, rest);
    cgt_assert_like_spec(
        "RealTimeStatistics",
        spec_example(spec, "TaskQueues/{TaskQueueSid}/RealTimeStatistics", "fetch"), j,
        "avg_task_acceptance_time");
    json_decref(j);
    snprintf(rest, sizeof(rest), "TaskQueues/%s/CumulativeStatistics?SplitByWaitTime=5,10", sid);
    j = get_json(fx, rest);
    cgt_assert_like_spec(
        "CumulativeStatistics",
        spec_example(spec, "TaskQueues/{TaskQueueSid}/CumulativeStatistics", "fetch"), j,
        "avg_task_acceptance_time");
    json_decref(j);
    /* The workspace itself, as `callgate doctor` reads it. */
    struct resp r;
    char url[1024];
    snprintf(url, sizeof(url), "%s/v1/Workspaces/" WS, fx->sim_base);
    assert_int_equal(http(fx, "GET", url, ACCOUNT, TOKEN, &r), 200);
    j = json_of(&r);
    resp_free(&r);
    assert_int_equal(sim_taskrouter_requests(fx->w.taskrouter, "workspace_fetch"), 1);
    json_t *ws = json_object_get(
        json_object_get(json_object_get(spec, "examples"), "/v1/Workspaces/{Sid}"), "fetch");
    assert_non_null(ws);
    cgt_assert_like_spec("Workspace", ws, j, "avg_task_acceptance_time");
    assert_string_equal(json_string_value(json_object_get(j, "sid")), WS);
    json_decref(j);
    json_decref(spec);
}

static void test_friendly_name(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":12}", 1);
    struct sim_taskrouter *tr = fx->w.taskrouter;
    json_t *j = get_json(fx, "TaskQueues?FriendlyName=queue-0007");
    json_t *items = json_object_get(j, "task_queues");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(cg_json_str(json_array_get(items, 0), "sid"),
                        sim_taskrouter_queue_sid(tr, 7));
    assert_non_null(strstr(cg_json_str(j, "meta.url"), "FriendlyName=queue-0007"));
    json_decref(j);
    j = get_json(fx, "TaskQueues/Statistics?FriendlyName=queue-0011");
    items = json_object_get(j, "task_queues_statistics");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(cg_json_str(json_array_get(items, 0), "task_queue_sid"),
                        sim_taskrouter_queue_sid(tr, 11));
    json_decref(j);
    j = get_json(fx, "TaskQueues?FriendlyName=nope");
    assert_int_equal(json_array_size(json_object_get(j, "task_queues")), 0);
    assert_true(json_is_null(json_object_get(json_object_get(j, "meta"), "next_page_url")));
    json_decref(j);
}

static void test_rate_limit(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":2,\"rate_limit_per_s\":5}", 1);
    struct resp r;
    /* The fake clock stands still: the bucket holds 5 and never refills. */
    for (long i = 0; i < 5; i++) {
        assert_int_equal(tr_get(fx, "TaskQueues/Statistics", &r), 200);
        assert_int_equal(r.rl_limit, 5);
        assert_int_equal(r.rl_remaining, 4 - i);
        assert_string_equal(r.rl_config, "TaskQueueStatistics-List");
        resp_free(&r);
    }
    assert_int_equal(tr_get(fx, "TaskQueues/Statistics", &r), 429);
    assert_string_equal(r.body, "{\"code\":20429,\"message\":\"Too Many Requests\",\"more_info\":"
                                "\"https://www.twilio.com/docs/errors/20429\",\"status\":429}");
    assert_true(r.retry_after == 1.0);
    assert_int_equal(r.rl_limit, 5);
    assert_int_equal(r.rl_remaining, 0);
    resp_free(&r);
    /* Every TaskRouter request shares the bucket. */
    assert_int_equal(tr_get(fx, "TaskQueues", &r), 429);
    assert_string_equal(r.rl_config, "TaskQueue-List");
    resp_free(&r);
    fake_t = 0.5; /* 2.5 tokens back */
    assert_int_equal(tr_get(fx, "TaskQueues", &r), 200);
    resp_free(&r);
    assert_int_equal(tr_get(fx, "TaskQueues", &r), 200);
    resp_free(&r);
    assert_int_equal(tr_get(fx, "TaskQueues", &r), 429);
    resp_free(&r);
    assert_int_equal(sim_taskrouter_sent_429(fx->w.taskrouter), 3);

    /* EvaluateWorkerAttributes has its own 3 RPS on top. */
    fake_t = 100;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tr_get(fx, "TaskQueues?EvaluateWorkerAttributes=%7B%7D", &r), 200);
        resp_free(&r);
    }
    assert_int_equal(tr_get(fx, "TaskQueues?EvaluateWorkerAttributes=%7B%7D", &r), 429);
    resp_free(&r);
    assert_int_equal(tr_get(fx, "TaskQueues", &r), 200);
    resp_free(&r);
}

static void test_injected_429(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":1,\"rate_429\":1}", 1);
    struct resp r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tr_get(fx, "TaskQueues/Statistics", &r), 429);
        assert_true(r.retry_after == 1.0);
        assert_true(r.rl_limit == 50 && r.rl_config != NULL);
        resp_free(&r);
    }
    assert_int_equal(sim_taskrouter_sent_429(fx->w.taskrouter), 3);
}

static void test_fail_page(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":3,\"fail_page\":1}", 1);
    struct sim_taskrouter *tr = fx->w.taskrouter;
    json_t *j = get_json(fx, "TaskQueues/Statistics?PageSize=1");
    const char *next = cg_json_str(j, "meta.next_page_url");
    assert_non_null(next);
    struct resp r;
    assert_int_equal(http(fx, "GET", next, ACCOUNT, TOKEN, &r), 500);
    assert_non_null(strstr(r.body, "\"status\":500"));
    resp_free(&r);
    json_decref(j);
    /* Page 2, reached with a token past queue 1: fine again. */
    char rest[256];
    snprintf(rest, sizeof(rest), "TaskQueues/Statistics?PageSize=1&Page=2&PageToken=PA%s",
             sim_taskrouter_queue_sid(tr, 1));
    j = get_json(fx, rest);
    assert_int_equal(json_array_size(json_object_get(j, "task_queues_statistics")), 1);
    assert_true(json_is_null(json_object_get(json_object_get(j, "meta"), "next_page_url")));
    json_decref(j);
    /* Only the Statistics list fails. */
    char sids[4][35];
    size_t n = 0;
    assert_int_equal(walk(fx, "TaskQueues?PageSize=1", "task_queues", 1, sids, 4, &n), 3);
    assert_int_equal(n, 3);

    /* Garbage: 200 with a body cut short. */
    fx->sc.tr_fail_garbage = 1;
    j = get_json(fx, "TaskQueues/Statistics?PageSize=1");
    next = cg_json_str(j, "meta.next_page_url");
    assert_int_equal(http(fx, "GET", next, ACCOUNT, TOKEN, &r), 200);
    char err[128];
    json_t *bad = cg_json_parse(r.body, r.len, 32, err, sizeof(err));
    assert_null(bad);
    assert_true(r.len > 10);
    resp_free(&r);
    json_decref(j);
}

/* A queue whose workers are all offline: its backlog and its oldest
 * task's age only grow. */
static void test_stalled_queue(void **state)
{
    struct fx *fx = *state;
    start(fx,
          "{\"workspace_sid\":\"" WS "\",\"queues\":4,\"stalled_queues\":1,"
          "\"task_rate_per_s\":1,\"workers_per_queue\":5}",
          1);
    struct sim_taskrouter *tr = fx->w.taskrouter;
    size_t st = 0;
    while (st < 4 && !sim_taskrouter_queue_stalled(tr, st))
        st++;
    assert_true(st < 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sim_taskrouter_queue_stalled(tr, i), i == st);
    char rest[256];
    snprintf(rest, sizeof(rest), "TaskQueues/%s/RealTimeStatistics",
             sim_taskrouter_queue_sid(tr, st));
    fake_t = 30;
    json_t *a = get_json(fx, rest);
    fake_t = 120;
    json_t *b = get_json(fx, rest);
    assert_int_equal(jint(a, "total_available_workers"), 0);
    assert_int_equal(jint(b, "total_available_workers"), 0);
    assert_int_equal(jint(b, "total_eligible_workers"), 5);
    assert_true(jint(a, "tasks_by_status.pending") > 0);
    assert_true(jint(b, "tasks_by_status.pending") > jint(a, "tasks_by_status.pending"));
    long age_a = jint(a, "longest_task_waiting_age"), age_b = jint(b, "longest_task_waiting_age");
    assert_true(age_a > 0 && age_a <= 30);
    /* The same oldest task, 90 s older. */
    assert_int_equal(age_b - age_a, 90);
    assert_string_equal(cg_json_str(a, "longest_task_waiting_sid"),
                        cg_json_str(b, "longest_task_waiting_sid"));
    json_t *offline = json_array_get(json_object_get(b, "activity_statistics"), 2);
    assert_string_equal(cg_json_str(offline, "friendly_name"), "Offline");
    assert_int_equal(jint(offline, "workers"), 5);
    json_decref(a);
    json_decref(b);
    /* The queue next to it does serve its tasks. */
    size_t other = (st + 1) % 4;
    snprintf(rest, sizeof(rest), "TaskQueues/%s/Statistics", sim_taskrouter_queue_sid(tr, other));
    json_t *c = get_json(fx, rest);
    assert_true(jint(c, "cumulative.reservations_accepted") > 0);
    assert_true(jint(c, "realtime.total_eligible_workers") == 5);
    json_decref(c);
}

/* The statistics are computed from the truth: counts agree exactly. */
static void test_statistics_match_truth(void **state)
{
    struct fx *fx = *state;
    start(fx,
          "{\"workspace_sid\":\"" WS "\",\"queues\":2,\"task_rate_per_s\":0.3,"
          "\"workers_per_queue\":2,\"handle_s\":{\"dist\":\"exp\",\"mean_s\":6},"
          "\"abandon_s\":{\"dist\":\"uniform\",\"min_s\":5,\"max_s\":20},\"warmup_s\":900}",
          1);
    struct sim_taskrouter *tr = fx->w.taskrouter;
    fake_t = 100;
    char rest[256];
    snprintf(rest, sizeof(rest), "TaskQueues/%s/CumulativeStatistics?Minutes=10",
             sim_taskrouter_queue_sid(tr, 0));
    json_t *j = get_json(fx, rest);
    static struct sim_tr_wait v[20000];
    long n = sim_taskrouter_actual_waits(tr, 0, -1e9, 1e9, v, 20000);
    assert_true(n > 100 && n <= 20000);
    double from = 100 - 600, to = 100;
    long entered = 0, accepted = 0, canceled = 0;
    double acc_sum = 0;
    for (long i = 0; i < n; i++) {
        if (i)
            assert_true(v[i].entered_s >= v[i - 1].entered_s);
        assert_true(v[i].wait_s >= 0);
        if (v[i].entered_s >= from && v[i].entered_s <= to)
            entered++;
        double left = v[i].entered_s + v[i].wait_s;
        if (left < from || left > to)
            continue;
        if (v[i].outcome == SIM_TR_ACCEPTED) {
            accepted++;
            acc_sum += v[i].wait_s;
        } else if (v[i].outcome == SIM_TR_CANCELED) {
            canceled++;
            assert_true(v[i].wait_s >= 5 - 1e-3 && v[i].wait_s <= 20 + 1e-3);
        }
    }
    /* Entered counts tasks refused by nothing here; float waits make the
     * reconstructed entry times inexact by microseconds, hence the slack. */
    assert_true(labs(jint(j, "tasks_entered") - entered) <= 1);
    assert_true(labs(jint(j, "reservations_accepted") - accepted) <= 1);
    assert_true(labs(jint(j, "tasks_canceled") - canceled) <= 1);
    assert_true(canceled > 0 && accepted > 0);
    double avg = json_real_value(json_object_get(j, "avg_task_acceptance_time"));
    assert_true(fabs(avg - acc_sum / (double)accepted) < 0.5);
    assert_true(labs(jint(j, "wait_duration_until_accepted.total") - lround(acc_sum)) <= 1);
    json_decref(j);

    /* What a caller arriving at t would have waited. */
    double w;
    enum sim_tr_outcome oc;
    assert_int_equal(sim_taskrouter_actual_wait_at(tr, 0, -300, &w, &oc), 0);
    long first = 0;
    while (first < n && v[first].entered_s < -300)
        first++;
    assert_true(first < n);
    assert_true(fabs(w - v[first].wait_s) < 1e-9 && oc == v[first].outcome);
    assert_int_equal(sim_taskrouter_actual_wait_at(tr, 0, 1e6, &w, &oc), -1);
    assert_int_equal(sim_taskrouter_actual_waits(tr, 9, 0, 1, v, 1), -1);
}

/* FIFO with one worker and a constant handle time: each task is taken
 * exactly when the previous one is done. */
static void test_model_fifo(void **state)
{
    (void)state;
    struct sim_scenario sc;
    struct sim_world w;
    struct sim_taskrouter *tr =
        model(&sc, &w,
              "{\"queues\":1,\"workers_per_queue\":1,\"task_rate_per_s\":0.15,"
              "\"handle_s\":{\"dist\":\"const\",\"value_s\":10}}",
              3);
    fake_t = 5000;
    static struct sim_tr_wait v[5000];
    long n = sim_taskrouter_actual_waits(tr, 0, 0, 5000, v, 5000);
    assert_true(n > 500 && n < 5000);
    double prev_start = -1e9;
    long waited = 0;
    for (long i = 0; i < n; i++) {
        if (v[i].outcome == SIM_TR_PENDING)
            continue;
        assert_int_equal(v[i].outcome, SIM_TR_ACCEPTED);
        double s = v[i].entered_s + v[i].wait_s;
        assert_true(s - prev_start >= 10 - 1e-3);
        if (v[i].wait_s > 1e-6) {
            assert_true(fabs(s - prev_start - 10) < 1e-3);
            waited++;
        }
        prev_start = s;
    }
    assert_true(waited > 50);
    sim_taskrouter_free(tr);
    sim_scenario_free(&sc);
}

static int same_truth(struct sim_taskrouter *a, struct sim_taskrouter *b, double to)
{
    static struct sim_tr_wait va[8000], vb[8000];
    for (size_t i = 0; i < sim_taskrouter_queue_count(a); i++) {
        long na = sim_taskrouter_actual_waits(a, i, -1e9, to, va, 8000);
        long nb = sim_taskrouter_actual_waits(b, i, -1e9, to, vb, 8000);
        assert_true(na <= 8000 && nb <= 8000);
        if (na != nb)
            return 0;
        for (long k = 0; k < na; k++)
            if (va[k].entered_s != vb[k].entered_s || va[k].wait_s != vb[k].wait_s ||
                va[k].outcome != vb[k].outcome)
                return 0;
    }
    return 1;
}

/* The same seed gives the same queues and the same history, however often
 * the model was looked at on the way. */
static void test_determinism(void **state)
{
    (void)state;
    const char *cfg = "{\"queues\":20,\"stalled_queues\":3,\"task_rate_per_s\":{\"dist\":"
                      "\"uniform\",\"min_s\":0.05,\"max_s\":0.4},\"workers_per_queue\":{\"dist\":"
                      "\"uniform\",\"min_s\":1,\"max_s\":4},\"abandon_s\":{\"dist\":\"exp\","
                      "\"mean_s\":40},\"warmup_s\":200}";
    struct sim_scenario sa, sb, sd;
    struct sim_world wa, wb, wd;
    fake_t = 0;
    struct sim_taskrouter *a = model(&sa, &wa, cfg, 42);
    struct sim_taskrouter *b = model(&sb, &wb, cfg, 42);
    struct sim_taskrouter *d = model(&sd, &wd, cfg, 43);
    for (size_t i = 0; i < 20; i++) {
        assert_string_equal(sim_taskrouter_queue_sid(a, i), sim_taskrouter_queue_sid(b, i));
        assert_int_equal(sim_taskrouter_queue_stalled(a, i), sim_taskrouter_queue_stalled(b, i));
    }
    assert_string_not_equal(sim_taskrouter_queue_sid(a, 0), sim_taskrouter_queue_sid(d, 0));
    /* a is looked at every 0.7 s, b only at the end. */
    for (fake_t = 0; fake_t < 600; fake_t += 0.7)
        sim_taskrouter_now(a);
    fake_t = 600;
    assert_true(same_truth(a, b, 600));
    assert_false(same_truth(a, d, 600));
    sim_taskrouter_free(a);
    sim_taskrouter_free(b);
    sim_taskrouter_free(d);
    sim_scenario_free(&sa);
    sim_scenario_free(&sb);
    sim_scenario_free(&sd);
}

/* Latency holds requests: concurrency is what the clients make of it. */
static void test_concurrency(void **state)
{
    struct fx *fx = *state;
    start(fx,
          "{\"workspace_sid\":\"" WS "\",\"queues\":2,"
          "\"latency\":{\"dist\":\"const\",\"value_s\":0.1}}",
          1);
    struct sim_taskrouter *tr = fx->w.taskrouter;
    struct resp r[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tr_get(fx, "TaskQueues/Statistics", &r[i]), 200);
        resp_free(&r[i]);
    }
    assert_int_equal(sim_taskrouter_max_concurrent(tr), 1);
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/Workspaces/" WS "/TaskQueues/Statistics", fx->sim_base);
    for (int i = 0; i < 3; i++)
        send_req(fx, "GET", url, ACCOUNT, TOKEN, &r[i]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cgt_run_until(fx->base, &r[i].done, 5000), 0);
        assert_int_equal(r[i].status, 200);
        resp_free(&r[i]);
    }
    assert_int_equal(sim_taskrouter_max_concurrent(tr), 3);
    /* Teardown answers what is still held. */
    send_req(fx, "GET", url, ACCOUNT, TOKEN, &r[0]);
    cgt_run_for(fx->base, 20);
    sim_taskrouter_free(tr);
    fx->w.taskrouter = NULL;
    assert_int_equal(cgt_run_until(fx->base, &r[0].done, 5000), 0);
    assert_int_equal(r[0].status, 503);
    resp_free(&r[0]);
}

static void test_report_and_status(void **state)
{
    struct fx *fx = *state;
    start(fx, "{\"workspace_sid\":\"" WS "\",\"queues\":5,\"rate_limit_per_s\":2,\"warmup_s\":300}",
          1);
    struct resp r;
    for (int i = 0; i < 3; i++) {
        tr_get(fx, "TaskQueues/Statistics", &r);
        resp_free(&r);
    }
    char rest[256];
    fake_t = 10;
    snprintf(rest, sizeof(rest), "TaskQueues/%s/RealTimeStatistics",
             sim_taskrouter_queue_sid(fx->w.taskrouter, 0));
    assert_int_equal(tr_get(fx, rest, &r), 200);
    resp_free(&r);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    sim_report_finish(fx->w.report, -1, -1, f);
    fclose(f);
    char err[128];
    json_t *j = cg_json_parse(buf, len, 32, err, sizeof(err));
    free(buf);
    assert_non_null(j);
    json_t *t = json_object_get(j, "taskrouter");
    assert_non_null(t);
    assert_int_equal(jint(t, "queues"), 5);
    assert_true(jint(t, "tasks.entered") > 0);
    assert_int_equal(jint(t, "requests.statistics_list"), 3);
    assert_int_equal(jint(t, "requests.realtime_fetch"), 1);
    assert_int_equal(jint(t, "max_concurrent_requests"), 1);
    assert_int_equal(jint(t, "sent_429"), 1);
    json_t *counters = json_object_get(j, "counters");
    assert_int_equal(json_integer_value(json_object_get(counters, "taskrouter.statistics_list")),
                     3);
    assert_int_equal(json_integer_value(json_object_get(counters, "taskrouter.429")), 1);
    json_decref(j);

    char *s = sim_report_status_json(fx->w.report);
    j = cg_json_parse(s, strlen(s), 32, err, sizeof(err));
    free(s);
    assert_non_null(j);
    assert_int_equal(jint(j, "taskrouter.queues"), 5);
    assert_int_equal(jint(j, "taskrouter.requests.statistics_list"), 3);
    assert_int_equal(jint(j, "taskrouter.maxConcurrent"), 1);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenario_member),
        cmocka_unit_test_setup_teardown(test_auth_and_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_2500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_friendly_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statistics_match_truth, setup, teardown),
        cmocka_unit_test(test_model_fifo),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_and_status, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
