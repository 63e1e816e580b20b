/*
 * test_waittime.c - the pure parts of the wait-time service: parsing
 * TaskRouter statistics and TaskQueue list pages (the OpenAPI spec's
 * example shape), the seed's Redis value and /get-queue-times answer byte
 * for byte, the API record, the Redis record round trip, ETag matching,
 * and the next_page_url origin check.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/estimate.h"
#include "waittime/waittime.h"

#define assert_near(a, b)                                                                          \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= 1e-9))                                                              \
            fail_msg("%.17g != %.17g", a_, b_);                                                    \
    } while (0)

#define WQ_A "WQaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define WQ_B "WQ0123456789abcdef0123456789abcdef"

/* The spec's readFull example of GET .../TaskQueues/Statistics, verbatim. */
static const char spec_page[] =
    "{\"meta\":{\"first_page_url\":\"https://taskrouter.twilio.com/v1/Workspaces/"
    "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/TaskQueues/Statistics?FriendlyName=friendly_name&"
    "StartDate=2008-01-02T00%3A00%3A00Z&EndDate=2008-01-02T00%3A00%3A00Z&Minutes=1&PageSize=50&"
    "Page=0\",\"key\":\"task_queues_statistics\",\"next_page_url\":null,\"page\":0,"
    "\"page_size\":50,\"previous_page_url\":null,\"url\":\"https://taskrouter.twilio.com/v1/"
    "Workspaces/WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/TaskQueues/Statistics?FriendlyName="
    "friendly_name&StartDate=2008-01-02T00%3A00%3A00Z&EndDate=2008-01-02T00%3A00%3A00Z&Minutes="
    "1&PageSize=50&Page=0\"},\"task_queues_statistics\":[{\"account_sid\":"
    "\"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"cumulative\":{\"avg_task_acceptance_time\":0.0,"
    "\"end_time\":\"2015-08-18T08:46:15Z\",\"reservations_accepted\":0,\"reservations_canceled\":0,"
    "\"reservations_created\":0,\"reservations_rejected\":0,\"reservations_rescinded\":0,"
    "\"reservations_timed_out\":0,\"start_time\":\"2015-08-18T08:31:15Z\",\"tasks_canceled\":0,"
    "\"tasks_deleted\":0,\"tasks_entered\":0,\"tasks_moved\":0},\"realtime\":{"
    "\"activity_statistics\":[{\"friendly_name\":\"Offline\",\"sid\":"
    "\"WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"workers\":0},{\"friendly_name\":\"Idle\",\"sid\":"
    "\"WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"workers\":0},{\"friendly_name\":"
    "\"80fa2beb-3a05-11e5-8fc8-98e0d9a1eb73\",\"sid\":\"WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
    "\"workers\":0},{\"friendly_name\":\"Reserved\",\"sid\":\"WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
    "\"workers\":0},{\"friendly_name\":\"Busy\",\"sid\":\"WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
    "\"workers\":0},{\"friendly_name\":\"817ca1c5-3a05-11e5-9292-98e0d9a1eb73\",\"sid\":"
    "\"WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"workers\":0}],\"longest_task_waiting_age\":0,"
    "\"longest_task_waiting_sid\":\"WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"tasks_by_status\":{"
    "\"assigned\":0,\"pending\":0,\"reserved\":0,\"wrapping\":0},\"total_available_workers\":0,"
    "\"total_eligible_workers\":0,\"total_tasks\":0},\"task_queue_sid\":"
    "\"WQaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"workspace_sid\":"
    "\"WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"
    "]}";

static void free_recs(struct cg_wt_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cg_wt_record_clear(&r[i]);
    free(r);
}

static void test_sid_valid(void **state)
{
    (void)state;
    assert_true(cg_wt_sid_valid(WQ_A));
    assert_true(cg_wt_sid_valid("WQ0123456789ABCDEF0123456789abcdef"));
    assert_false(cg_wt_sid_valid(NULL));
    assert_false(cg_wt_sid_valid(""));
    assert_false(cg_wt_sid_valid("WQ"));
    assert_false(cg_wt_sid_valid("WQ0123456789abcdef0123456789abcde"));   /* 31 */
    assert_false(cg_wt_sid_valid("WQ0123456789abcdef0123456789abcdef0")); /* 33 */
    assert_false(cg_wt_sid_valid("WQ0123456789abcdef0123456789abcdeg"));
    assert_false(cg_wt_sid_valid("wq0123456789abcdef0123456789abcdef"));
    assert_false(cg_wt_sid_valid("WS0123456789abcdef0123456789abcdef"));
    assert_false(cg_wt_sid_valid("WQ0123456789abcdef 123456789abcdef"));
}

static void test_parse_spec_example(void **state)
{
    (void)state;
    struct cg_wt_record *items = NULL;
    size_t n = 0, skipped = 0;
    char *next = (char *)"sentinel", err[128];
    assert_int_equal(cg_wt_parse_stats(spec_page, strlen(spec_page), 100, &items, &n, &skipped,
                                       &next, err, sizeof err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(skipped, 0);
    assert_null(next);
    assert_string_equal(items[0].sid, WQ_A);
    assert_null(items[0].name);
    /* No wait_duration_* in the example: the seed figure falls back to the
     * acceptance time, 0.0 read as a number. */
    assert_int_equal(items[0].wait_in_queue, 0);
    assert_near(items[0].wait_s, 0);
    assert_near(items[0].avg_accept_s, 0);
    assert_near(items[0].longest_s, 0);
    assert_int_equal(items[0].pending, 0);
    assert_int_equal(items[0].available, 0);
    assert_int_equal(items[0].eligible, 0);
    assert_int_equal(items[0].busy, 0);
    assert_int_equal(items[0].accepted, 0);
    assert_int_equal(items[0].canceled, 0);
    /* The window from start_time and end_time: 15 minutes. */
    assert_near(items[0].window_s, 900);
    assert_near(items[0].accept_min_s, 0);
    /* callgate's own estimate is never 0 for lack of data. */
    struct cg_tq_input in = {.window_s = 900};
    assert_near(items[0].estimate_s, cg_tq_estimate_seconds(&in));
    assert_true(items[0].estimate_s >= CG_TQ_FLOOR_S);
    free_recs(items, n);
}

/* The statistics fields the spec leaves untyped or optional
 * (wait_duration_in_queue_until_accepted, wait_duration_until_accepted,
 * tasks_by_status, cumulative itself) absent, null or of another JSON
 * type: each spec-shaped case of tests/data/taskrouter_statistics_partial.json
 * parses, and reads the figures the case expects (the fallbacks: the
 * acceptance time for the seed's figure, 0 for a count). */
static void test_parse_untyped_fields_absent(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/taskrouter_statistics_partial.json", CG_SOURCE_DIR);
    json_error_t jerr;
    json_t *data = json_load_file(path, 0, &jerr);
    if (data == NULL)
        fail_msg("%s: %s", path, jerr.text);
    json_t *cases = json_object_get(data, "cases");
    assert_true(json_array_size(cases) >= 5);
    json_t *all = json_deep_copy(json_object_get(data, "page"));
    json_t *items_all = json_array();
    size_t i;
    json_t *c;
    json_array_foreach (cases, i, c) {
        json_t *page = json_deep_copy(json_object_get(data, "page"));
        json_t *list = json_array();
        json_array_append(list, json_object_get(c, "item"));
        json_array_append(items_all, json_object_get(c, "item"));
        json_object_set_new(page, "task_queues_statistics", list);
        char *text = json_dumps(page, JSON_COMPACT);
        json_decref(page);
        struct cg_wt_record *items = NULL;
        size_t n = 0, skipped = 0;
        char *next = NULL, err[128];
        const char *what = json_string_value(json_object_get(c, "what"));
        if (cg_wt_parse_stats(text, strlen(text), 10, &items, &n, &skipped, &next, err,
                              sizeof err) != 0)
            fail_msg("%s: %s", what, err);
        free(text);
        if (n != 1 || skipped != 0)
            fail_msg("%s: %zu records, %zu skipped", what, n, skipped);
        const json_t *e = json_object_get(c, "expect");
        struct {
            const char *key;
            double got;
        } figs[] = {
            {"wait_in_queue", items[0].wait_in_queue}, {"wait_s", items[0].wait_s},
            {"avg_accept_s", items[0].avg_accept_s},   {"pending", (double)items[0].pending},
            {"busy", (double)items[0].busy},           {"available", (double)items[0].available},
            {"eligible", (double)items[0].eligible},   {"longest_s", items[0].longest_s},
            {"accepted", (double)items[0].accepted},   {"window_s", items[0].window_s},
            {"accept_min_s", items[0].accept_min_s},
        };
        for (size_t k = 0; k < sizeof figs / sizeof figs[0]; k++) {
            const json_t *want = json_object_get(e, figs[k].key);
            if (!json_is_number(want))
                fail_msg("%s: no expected %s", what, figs[k].key);
            if (fabs(json_number_value(want) - figs[k].got) > 1e-9)
                fail_msg("%s: %s is %.17g, not %.17g", what, figs[k].key, figs[k].got,
                         json_number_value(want));
        }
        /* Whatever is missing, the estimate is a real figure. */
        assert_true(items[0].estimate_s >= CG_TQ_FLOOR_S);
        free_recs(items, n);
    }
    /* All of them on one page too. */
    json_object_set_new(all, "task_queues_statistics", items_all);
    char *text = json_dumps(all, JSON_COMPACT);
    json_decref(all);
    struct cg_wt_record *items = NULL;
    size_t n = 0, skipped = 0;
    char *next = NULL, err[128];
    assert_int_equal(
        cg_wt_parse_stats(text, strlen(text), 100, &items, &n, &skipped, &next, err, sizeof err),
        0);
    assert_int_equal(n, json_array_size(cases));
    assert_int_equal(skipped, 0);
    free(text);
    free_recs(items, n);
    json_decref(data);
}

static void test_parse_figures_and_paging(void **state)
{
    (void)state;
    const char *page =
        "{\"meta\":{\"key\":\"task_queues_statistics\",\"next_page_url\":"
        "\"https://taskrouter.twilio.com/v1/Workspaces/WSx/TaskQueues/Statistics?PageSize=2&"
        "Page=1&PageToken=PA1\"},\"task_queues_statistics\":["
        "{\"task_queue_sid\":\"" WQ_A "\",\"cumulative\":{\"avg_task_acceptance_time\":3,"
        "\"wait_duration_in_queue_until_accepted\":{\"avg\":12.5,\"min\":1,\"max\":30,\"total\":25}"
        ",\"wait_duration_until_accepted\":{\"avg\":14.5,\"min\":2.5,\"max\":31,\"total\":29},"
        "\"reservations_accepted\":120,\"tasks_canceled\":8,"
        "\"start_time\":\"2015-08-18T08:41:15Z\",\"end_time\":\"2015-08-18T08:46:15.500Z\"},"
        "\"realtime\":{\"longest_task_waiting_age\":40,\"tasks_by_status\":{\"pending\":3,"
        "\"assigned\":1,\"reserved\":1,\"wrapping\":0},"
        "\"total_available_workers\":0,\"total_eligible_workers\":2}},"
        "{\"task_queue_sid\":\"not-a-sid\"},"
        "42,"
        "{\"task_queue_sid\":\"" WQ_B "\",\"cumulative\":null,\"realtime\":{"
        "\"longest_task_waiting_age\":-5,\"tasks_by_status\":{\"pending\":\"7\"}}}]}";
    struct cg_wt_record *items = NULL;
    size_t n = 0, skipped = 0;
    char *next = NULL, err[128];
    assert_int_equal(
        cg_wt_parse_stats(page, strlen(page), 100, &items, &n, &skipped, &next, err, sizeof err),
        0);
    assert_int_equal(n, 2);
    assert_int_equal(skipped, 2);
    assert_string_equal(next, "https://taskrouter.twilio.com/v1/Workspaces/WSx/TaskQueues/"
                              "Statistics?PageSize=2&Page=1&PageToken=PA1");
    free(next);
    assert_string_equal(items[0].sid, WQ_A);
    assert_int_equal(items[0].wait_in_queue, 1);
    assert_near(items[0].wait_s, 12.5);
    assert_near(items[0].avg_accept_s, 3);
    assert_near(items[0].longest_s, 40);
    assert_int_equal(items[0].pending, 3);
    assert_int_equal(items[0].available, 0);
    assert_int_equal(items[0].eligible, 2);
    assert_int_equal(items[0].busy, 2);
    assert_int_equal(items[0].accepted, 120);
    assert_int_equal(items[0].canceled, 8);
    assert_near(items[0].window_s, 300.5);
    /* The quickest acceptance: wait_duration_until_accepted (offer and
     * acceptance included) when present. */
    assert_near(items[0].accept_min_s, 2.5);
    struct cg_tq_input in = {.pending_tasks = 3,
                             .available_workers = 0,
                             .busy_workers = 2,
                             .longest_waiting_s = 40,
                             .accepted = 120,
                             .canceled = 8,
                             .window_s = 300.5,
                             .accept_min_s = 2.5};
    assert_near(items[0].estimate_s, cg_tq_estimate_seconds(&in));
    /* The queue-length and head-of-line terms are both in it. */
    assert_true(items[0].estimate_s > 3 && items[0].estimate_s < 40);
    /* Null cumulative, a negative age and a string count read as 0. */
    assert_string_equal(items[1].sid, WQ_B);
    assert_near(items[1].wait_s, 0);
    assert_near(items[1].longest_s, 0);
    assert_int_equal(items[1].pending, 0);
    assert_near(items[1].window_s, 0);

    /* A second page appends; max_items bounds the total. */
    skipped = 0;
    assert_int_equal(cg_wt_parse_stats(spec_page, strlen(spec_page), 2, &items, &n, &skipped, &next,
                                       err, sizeof err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(skipped, 1);
    free_recs(items, n);
}

static void test_parse_bad_pages(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "<html><body>502 Bad Gateway</body></html>",
        "",
        "[]",
        "{\"meta\":{},\"task_queues\":[]}",
        "{\"meta\":{\"key\":\"task_queues_statistics\"},\"task_queues_statistics\":{}}",
        "{\"meta\":[],\"task_queues_statistics\":[]}",
        "{\"meta\":{\"next_page_url\":5},\"task_queues_statistics\":[]}",
        "{\"task_queues_statistics\":[] ",
        "{\"task_queues_statistics\":[]}{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cg_wt_record *items = NULL;
        size_t n = 0, skipped = 0;
        char *next = NULL, err[128] = "";
        int rc = cg_wt_parse_stats(bad[i], strlen(bad[i]), 10, &items, &n, &skipped, &next, err,
                                   sizeof err);
        if (rc != -1)
            fail_msg("page %zu was accepted: %s", i, bad[i]);
        assert_int_equal(n, 0);
        assert_null(next);
        assert_true(err[0] != '\0');
        free(items);
    }
    /* Without meta the list key defaults and there is no next page. */
    const char *ok = "{\"task_queues_statistics\":[]}";
    struct cg_wt_record *items = NULL;
    size_t n = 0, skipped = 0;
    char *next = NULL, err[128];
    assert_int_equal(
        cg_wt_parse_stats(ok, strlen(ok), 10, &items, &n, &skipped, &next, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_null(next);
    free(items);
}

static void test_parse_names(void **state)
{
    (void)state;
    const char *page =
        "{\"meta\":{\"key\":\"task_queues\",\"next_page_url\":null,\"page\":0,\"page_size\":50},"
        "\"task_queues\":[{\"sid\":\"" WQ_A "\",\"friendly_name\":\"Sales & Support\","
        "\"task_order\":\"FIFO\"},{\"sid\":\"" WQ_B "\"},{\"sid\":\"WQbad\",\"friendly_name\":"
        "\"x\"},{\"sid\":\"" WQ_B "\",\"friendly_name\":\"\\u00c9quipe \\\"B\\\"\"}]}";
    struct cg_wt_name *names = NULL;
    size_t n = 0;
    char *next = (char *)"x", err[128];
    assert_int_equal(cg_wt_parse_names(page, strlen(page), 100, &names, &n, &next, err, sizeof err),
                     0);
    assert_null(next);
    assert_int_equal(n, 2);
    assert_string_equal(names[0].sid, WQ_A);
    assert_string_equal(names[0].name, "Sales & Support");
    assert_string_equal(names[1].sid, WQ_B);
    assert_string_equal(names[1].name, "\xc3\x89quipe \"B\"");
    for (size_t i = 0; i < n; i++)
        free(names[i].name);
    free(names);

    names = NULL;
    n = 0;
    assert_int_equal(cg_wt_parse_names("{\"task_queues_statistics\":[]}", 29, 100, &names, &n,
                                       &next, err, sizeof err),
                     -1);
    free(names);
}

static void test_seed_rounding(void **state)
{
    (void)state;
    assert_int_equal(cg_wt_seed_seconds(0), 0);
    assert_int_equal(cg_wt_seed_seconds(0.49), 0);
    assert_int_equal(cg_wt_seed_seconds(0.5), 1);
    assert_int_equal(cg_wt_seed_seconds(12.5), 13);
    assert_int_equal(cg_wt_seed_seconds(12.4999), 12);
    assert_int_equal(cg_wt_seed_seconds(120), 120);
    assert_int_equal(cg_wt_seed_seconds(-3), 0);
    assert_int_equal(cg_wt_seed_seconds(NAN), 0);
    assert_int_equal(cg_wt_seed_seconds(INFINITY), 0);
}

static void test_seed_value_bytes(void **state)
{
    (void)state;
    struct cg_wt_record r[2];
    memset(r, 0, sizeof r);
    strcpy(r[0].sid, WQ_A);
    r[0].wait_s = 12.5;
    r[0].fetched_ms = 1643147392812ULL; /* 2022-01-25T21:49:52.812Z */
    strcpy(r[1].sid, WQ_B);
    r[1].wait_s = 0;
    r[1].fetched_ms = 1643147393319ULL;
    r[1].stale = 1;
    struct cg_buf b;
    cg_buf_init(&b, 1 << 20);
    assert_int_equal(cg_wt_seed_json(r, 2, &b), 0);
    assert_string_equal(cg_buf_str(&b),
                        "{\"queues\":{\"" WQ_A "\":{\"waittime\":13,\"timestamp\":"
                        "\"2022-01-25T21:49:52.812Z\"},\"" WQ_B "\":{\"waittime\":0,"
                        "\"timestamp\":\"2022-01-25T21:49:53.319Z\"}}}");
    cg_buf_reset(&b);
    assert_int_equal(cg_wt_seed_json(r, 0, &b), 0);
    assert_string_equal(cg_buf_str(&b), "{\"queues\":{}}");
    cg_buf_free(&b);

    /* A full buffer leaves it as it was. */
    cg_buf_init(&b, 40);
    assert_int_equal(cg_buf_appends(&b, "x"), 0);
    assert_int_equal(cg_wt_seed_json(r, 2, &b), -1);
    assert_string_equal(cg_buf_str(&b), "x");
    cg_buf_free(&b);
}

static void test_seed_answer_bytes(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(cg_wt_seed_answer(12.5, out, sizeof out), 17);
    assert_string_equal(out, "{\"waittime\":\"13\"}");
    assert_int_equal(cg_wt_seed_answer(0, out, sizeof out), 16);
    assert_string_equal(out, "{\"waittime\":\"0\"}");
    assert_int_equal(cg_wt_seed_answer(3600.2, out, sizeof out), 19);
    assert_string_equal(out, "{\"waittime\":\"3600\"}");
    assert_int_equal(cg_wt_seed_answer(1, out, 10), -1);
}

static void test_record_json(void **state)
{
    (void)state;
    struct cg_wt_record r = {0};
    strcpy(r.sid, WQ_A);
    r.name = (char *)"Sales \"East\"";
    r.wait_s = 12.5;
    r.wait_in_queue = 1;
    r.avg_accept_s = 0.1;
    r.longest_s = 40;
    r.pending = 3;
    r.available = 0;
    r.eligible = 2;
    r.estimate_s = 44.6;
    r.fetched_ms = 1643147392812ULL;
    struct cg_buf b;
    cg_buf_init(&b, 1 << 16);
    assert_int_equal(cg_wt_record_json(&r, 1643147392812ULL + 7999, 1, &b), 0);
    assert_string_equal(cg_buf_str(&b),
                        "{\"sid\":\"" WQ_A "\",\"friendlyName\":\"Sales \\\"East\\\"\","
                        "\"waitTime\":12.5,\"estimateSeconds\":45,\"avgTaskAcceptanceTime\":0.1,"
                        "\"longestTaskWaitingAge\":40,\"pendingTasks\":3,\"availableWorkers\":0,"
                        "\"eligibleWorkers\":2,\"fetchedAt\":\"2022-01-25T21:49:52.812Z\","
                        "\"ageSeconds\":7,\"stale\":true}");
    cg_buf_reset(&b);
    r.name = NULL;
    assert_int_equal(cg_wt_record_json(&r, 0, 0, &b), 0);
    assert_non_null(strstr(cg_buf_str(&b), "\"friendlyName\":null"));
    assert_non_null(strstr(cg_buf_str(&b), "\"ageSeconds\":0,\"stale\":false}"));
    cg_buf_free(&b);
}

static void test_record_round_trip(void **state)
{
    (void)state;
    struct cg_wt_record r = {0};
    strcpy(r.sid, WQ_B);
    r.name = (char *)"\xc3\x89quipe B";
    r.wait_s = 0.30000000000000004;
    r.wait_in_queue = 1;
    r.avg_accept_s = 7;
    r.longest_s = 61;
    r.pending = 4;
    r.available = 0;
    r.eligible = 3;
    r.busy = 3;
    r.accepted = 250;
    r.canceled = 12;
    r.window_s = 899.5;
    r.accept_min_s = 1.25;
    r.fetched_ms = 1643147392812ULL;
    r.stale = 1;
    struct cg_tq_input in = {.pending_tasks = 4,
                             .available_workers = 0,
                             .busy_workers = 3,
                             .longest_waiting_s = 61,
                             .accepted = 250,
                             .canceled = 12,
                             .window_s = 899.5,
                             .accept_min_s = 1.25};
    r.estimate_s = cg_tq_estimate_seconds(&in);
    struct cg_buf b;
    cg_buf_init(&b, 1 << 16);
    assert_int_equal(cg_wt_record_encode(&r, &b), 0);
    struct cg_wt_record back;
    assert_int_equal(cg_wt_record_decode(b.data, b.len, &back), 0);
    assert_string_equal(back.sid, r.sid);
    assert_string_equal(back.name, r.name);
    assert_true(back.wait_s == r.wait_s); /* exact: shortest round-trip text */
    assert_int_equal(back.wait_in_queue, 1);
    assert_near(back.avg_accept_s, 7);
    assert_near(back.longest_s, 61);
    assert_int_equal(back.pending, 4);
    assert_int_equal(back.available, 0);
    assert_int_equal(back.eligible, 3);
    assert_int_equal(back.busy, 3);
    assert_int_equal(back.accepted, 250);
    assert_int_equal(back.canceled, 12);
    assert_near(back.window_s, 899.5);
    assert_near(back.accept_min_s, 1.25);
    /* Recomputed from the figures, so the same as the writer's. */
    assert_near(back.estimate_s, r.estimate_s);
    assert_true(back.fetched_ms == r.fetched_ms);
    assert_int_equal(back.stale, 1);
    cg_wt_record_clear(&back);
    cg_buf_free(&b);

    /* A record of an older writer, without the throughput figures: they
     * read as 0, and the estimate is computed from what there is. */
    const char *old = "{\"sid\":\"" WQ_A "\",\"pending_tasks\":2,\"longest_task_waiting_age\":30,"
                      "\"fetched_ms\":5}";
    assert_int_equal(cg_wt_record_decode(old, strlen(old), &back), 0);
    assert_int_equal(back.busy, 0);
    assert_int_equal(back.accepted, 0);
    assert_near(back.window_s, 0);
    struct cg_tq_input old_in = {.pending_tasks = 2, .longest_waiting_s = 30};
    assert_near(back.estimate_s, cg_tq_estimate_seconds(&old_in));
    cg_wt_record_clear(&back);

    static const char *const bad[] = {
        "",
        "{}",
        "{\"sid\":\"WQx\",\"fetched_ms\":1}",
        "{\"sid\":\"" WQ_A "\"}",
        "{\"sid\":\"" WQ_A "\",\"fetched_ms\":-1}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cg_wt_record_decode(bad[i], strlen(bad[i]), &back), -1);
}

static void test_etag(void **state)
{
    (void)state;
    const char *tag = "W/\"12-18d9a\"";
    assert_true(cg_wt_etag_matches("W/\"12-18d9a\"", tag));
    assert_true(cg_wt_etag_matches("\"12-18d9a\"", tag));
    assert_true(cg_wt_etag_matches("\"x\", W/\"12-18d9a\" ", tag));
    assert_true(cg_wt_etag_matches("*", tag));
    assert_false(cg_wt_etag_matches("W/\"11-18d9a\"", tag));
    assert_false(cg_wt_etag_matches("", tag));
    assert_false(cg_wt_etag_matches(",", tag));
    assert_false(cg_wt_etag_matches(NULL, tag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid_valid),
        cmocka_unit_test(test_parse_spec_example),
        cmocka_unit_test(test_parse_figures_and_paging),
        cmocka_unit_test(test_parse_untyped_fields_absent),
        cmocka_unit_test(test_parse_bad_pages),
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_seed_rounding),
        cmocka_unit_test(test_seed_value_bytes),
        cmocka_unit_test(test_seed_answer_bytes),
        cmocka_unit_test(test_record_json),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
