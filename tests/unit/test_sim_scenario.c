/*
 * Unit tests for sim/scenario.c: defaults, every shape, and errors that
 * name the JSON path.
 */
#include "harness.h"

#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(struct sim_scenario *sc, const char *json, char *err, size_t errlen)
{
    return sim_scenario_parse(sc, json, strlen(json), err, errlen);
}

static void expect_ok(struct sim_scenario *sc, const char *json)
{
    char err[256];
    int rc = parse(sc, json, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse failed: %s", err);
}

/* The error must mention every fragment given. */
static void expect_err(const char *json, const char *frag1, const char *frag2)
{
    struct sim_scenario sc;
    char err[256];
    assert_int_equal(parse(&sc, json, err, sizeof(err)), -1);
    if (frag1 && !strstr(err, frag1))
        fail_msg("error \"%s\" lacks \"%s\"", err, frag1);
    if (frag2 && !strstr(err, frag2))
        fail_msg("error \"%s\" lacks \"%s\"", err, frag2);
    /* On failure the struct still holds freeable defaults. */
    assert_non_null(sc.name);
    sim_scenario_free(&sc);
}

static void test_defaults(void **state)
{
    (void)state;
    struct sim_scenario sc;
    expect_ok(&sc, "{}");
    assert_string_equal(sc.name, "scenario");
    assert_true(sc.seed == 1);
    assert_true(sc.duration_s == 10 && sc.drain_s == 30);
    assert_int_equal(sc.arrival, SIM_ARRIVAL_POISSON);
    assert_true(sc.rate_per_s == 1);
    assert_int_equal(sc.duration.kind, SIM_DIST_EXP);
    assert_true(sc.duration.a == 2 && sc.duration.min_s == 0.2 && sc.duration.max_s == 30);
    assert_int_equal(sc.patience.kind, SIM_DIST_NONE);
    assert_string_equal(sc.twilio_account_sid, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(strlen(sc.twilio_account_sid), 34);
    assert_string_equal(sc.twilio_auth_token, "sim-auth-token");
    assert_int_equal(sc.queue_max_size, 1000);
    assert_true(sc.say_s_per_char == 0.001 && sc.play_s == 0.5);
    assert_int_equal(sc.redirect_posts_action, 1);
    assert_int_equal(sc.completed_again_200, 0);
    assert_int_equal(sc.twilio_latency.kind, SIM_DIST_NONE);
    assert_true(sc.twilio_rate_429 == 0 && sc.twilio_rate_5xx == 0);
    assert_true(sc.twilio_hooks.drop == 0 && sc.twilio_hooks.duplicate == 0 &&
                sc.twilio_hooks.reorder == 0);
    assert_int_equal(sc.twilio_hooks.delay.kind, SIM_DIST_NONE);
    assert_string_equal(sc.vapi_api_key, "sim-vapi-key");
    assert_int_equal(sc.vapi_limit, 10);
    assert_string_equal(sc.vapi_server_secret, "sim-vapi-secret");
    assert_int_equal(sc.vapi_overlimit_blocked, 0);
    assert_int_equal(sc.vapi_external_calls, 0);
    assert_true(sc.vapi_end_lag_s == 0.2 && sc.vapi_report_lag_s == 0.3);
    assert_true(sc.vapi_no_stream_timeout_s == 5 && sc.vapi_max_duration_s == 600);
    assert_true(sc.vapi_visibility_lag_s == 0);
    assert_true(sc.vapi_rate_429 == 0 && sc.vapi_rate_500 == 0 && sc.vapi_rate_overlimit == 0);
    assert_true(sc.vapi_hang_rate == 0);
    assert_int_equal(sc.vapi_latency.kind, SIM_DIST_NONE);
    assert_int_equal(sc.vapi_hooks.delay.kind, SIM_DIST_NONE);
    assert_int_equal(sc.expect_lost, 0);
    assert_int_equal(sc.expect_max_overlimit, 0);
    assert_int_equal(sc.expect_final_active, 0);
    assert_int_equal(sc.expect_final_waiting, 0);
    assert_true(sc.expect_max_idle_slot_s < 0);
    assert_int_equal(sc.expect_min_connected, -1);
    sim_scenario_free(&sc);
}

static void test_full(void **state)
{
    (void)state;
    struct sim_scenario sc;
    expect_ok(&sc, "{\"name\":\"steady\",\"seed\":42,\"duration_s\":5.5,\"drain_s\":20,"
                   "\"description\":\"x\","
                   "\"callers\":{\"arrivals\":{\"process\":\"poisson\",\"rate_per_s\":5},"
                   "\"duration\":{\"dist\":\"lognormal\",\"median_s\":2,\"sigma\":0.5,"
                   "\"min_s\":0.5,\"max_s\":9},"
                   "\"patience\":{\"dist\":\"uniform\",\"min_s\":1,\"max_s\":3}},"
                   "\"twilio\":{\"account_sid\":\"AC0123456789abcdef0123456789abcdef\","
                   "\"auth_token\":\"tok\",\"queue_max_size\":50,\"say_s_per_char\":0,"
                   "\"play_s\":1,\"redirect_posts_action\":false,\"completed_again\":\"200\","
                   "\"latency\":{\"dist\":\"const\",\"value_s\":0.01},\"rate_429\":0.1,"
                   "\"rate_5xx\":0.2,\"webhooks\":{\"drop\":0.1,\"duplicate\":0.2,"
                   "\"delay\":{\"dist\":\"exp\",\"mean_s\":0.1},\"reorder\":0.3}},"
                   "\"vapi\":{\"api_key\":\"k\",\"limit\":3,\"server_secret\":\"s\","
                   "\"overlimit_mode\":\"blocked\",\"external_calls\":1,\"end_lag_s\":0,"
                   "\"report_lag_s\":1,\"no_stream_timeout_s\":2,\"max_duration_s\":60,"
                   "\"visibility_lag_s\":0.5,\"latency\":null,\"rate_429\":0.01,"
                   "\"rate_500\":0.02,\"rate_overlimit\":0.03,\"hang_rate\":0.5,"
                   "\"webhooks\":{\"drop\":1,\"delay\":null}},"
                   "\"expect\":{\"lost\":2,\"max_overlimit_rejections\":null,\"final_active\":null,"
                   "\"final_waiting\":1,\"max_idle_slot_s\":3.5,\"min_connected\":10}}");
    assert_string_equal(sc.name, "steady");
    assert_true(sc.seed == 42 && sc.duration_s == 5.5 && sc.drain_s == 20);
    assert_true(sc.rate_per_s == 5);
    assert_int_equal(sc.duration.kind, SIM_DIST_LOGNORMAL);
    assert_true(sc.duration.a == 2 && sc.duration.b == 0.5 && sc.duration.min_s == 0.5 &&
                sc.duration.max_s == 9);
    assert_int_equal(sc.patience.kind, SIM_DIST_UNIFORM);
    assert_true(sc.patience.a == 1 && sc.patience.b == 3);
    assert_string_equal(sc.twilio_account_sid, "AC0123456789abcdef0123456789abcdef");
    assert_string_equal(sc.twilio_auth_token, "tok");
    assert_int_equal(sc.queue_max_size, 50);
    assert_true(sc.say_s_per_char == 0 && sc.play_s == 1);
    assert_int_equal(sc.redirect_posts_action, 0);
    assert_int_equal(sc.completed_again_200, 1);
    assert_int_equal(sc.twilio_latency.kind, SIM_DIST_CONST);
    assert_true(sc.twilio_rate_429 == 0.1 && sc.twilio_rate_5xx == 0.2);
    assert_true(sc.twilio_hooks.drop == 0.1 && sc.twilio_hooks.duplicate == 0.2 &&
                sc.twilio_hooks.reorder == 0.3);
    assert_int_equal(sc.twilio_hooks.delay.kind, SIM_DIST_EXP);
    assert_true(sc.twilio_hooks.delay.a == 0.1 && sc.twilio_hooks.delay.max_s == 0);
    assert_string_equal(sc.vapi_api_key, "k");
    assert_int_equal(sc.vapi_limit, 3);
    assert_string_equal(sc.vapi_server_secret, "s");
    assert_int_equal(sc.vapi_overlimit_blocked, 1);
    assert_int_equal(sc.vapi_external_calls, 1);
    assert_true(sc.vapi_end_lag_s == 0 && sc.vapi_report_lag_s == 1);
    assert_true(sc.vapi_no_stream_timeout_s == 2 && sc.vapi_max_duration_s == 60);
    assert_true(sc.vapi_visibility_lag_s == 0.5);
    assert_int_equal(sc.vapi_latency.kind, SIM_DIST_NONE);
    assert_true(sc.vapi_rate_429 == 0.01 && sc.vapi_rate_500 == 0.02 &&
                sc.vapi_rate_overlimit == 0.03 && sc.vapi_hang_rate == 0.5);
    assert_true(sc.vapi_hooks.drop == 1);
    assert_int_equal(sc.expect_lost, 2);
    assert_int_equal(sc.expect_max_overlimit, -1);
    assert_int_equal(sc.expect_final_active, -1);
    assert_int_equal(sc.expect_final_waiting, 1);
    assert_true(sc.expect_max_idle_slot_s == 3.5);
    assert_int_equal(sc.expect_min_connected, 10);
    sim_scenario_free(&sc);
}

static void test_arrival_shapes(void **state)
{
    (void)state;
    struct sim_scenario sc;
    expect_ok(&sc, "{\"callers\":{\"arrivals\":{\"process\":\"burst\",\"count\":200,"
                   "\"at_s\":1,\"spread_s\":0.5}}}");
    assert_int_equal(sc.arrival, SIM_ARRIVAL_BURST);
    assert_int_equal(sc.burst_count, 200);
    assert_true(sc.burst_at_s == 1 && sc.burst_spread_s == 0.5);
    sim_scenario_free(&sc);

    expect_ok(&sc, "{\"callers\":{\"arrivals\":{\"process\":\"burst\",\"count\":3}}}");
    assert_true(sc.burst_at_s == 0 && sc.burst_spread_s == 0);
    sim_scenario_free(&sc);

    expect_ok(&sc, "{\"callers\":{\"arrivals\":{\"process\":\"schedule\",\"segments\":["
                   "{\"until_s\":5,\"rate_per_s\":2},{\"until_s\":10,\"rate_per_s\":0},"
                   "{\"until_s\":12.5,\"rate_per_s\":7}]}}}");
    assert_int_equal(sc.arrival, SIM_ARRIVAL_SCHEDULE);
    assert_int_equal(sc.nsegments, 3);
    assert_true(sc.segments[0].until_s == 5 && sc.segments[0].rate_per_s == 2);
    assert_true(sc.segments[1].until_s == 10 && sc.segments[1].rate_per_s == 0);
    assert_true(sc.segments[2].until_s == 12.5 && sc.segments[2].rate_per_s == 7);
    sim_scenario_free(&sc);
}

static void test_dist_shapes(void **state)
{
    (void)state;
    struct sim_scenario sc;
    expect_ok(&sc, "{\"callers\":{\"duration\":{\"dist\":\"const\",\"value_s\":2},"
                   "\"patience\":{\"dist\":\"exp\",\"mean_s\":4,\"min_s\":1}}}");
    assert_int_equal(sc.duration.kind, SIM_DIST_CONST);
    assert_true(sc.duration.a == 2 && sc.duration.min_s == 0 && sc.duration.max_s == 0);
    assert_int_equal(sc.patience.kind, SIM_DIST_EXP);
    assert_true(sc.patience.a == 4 && sc.patience.min_s == 1 && sc.patience.max_s == 0);
    sim_scenario_free(&sc);

    expect_ok(&sc, "{\"callers\":{\"patience\":null}}");
    assert_int_equal(sc.patience.kind, SIM_DIST_NONE);
    sim_scenario_free(&sc);
}

static void test_unknown_members(void **state)
{
    (void)state;
    expect_err("{\"durration_s\":3}", "unknown member", "\"durration_s\"");
    expect_err("{\"callers\":{\"arrival\":{}}}", "callers:", "\"arrival\"");
    expect_err("{\"callers\":{\"arrivals\":{\"process\":\"poisson\",\"rate\":3}}}",
               "callers.arrivals:", "\"rate\"");
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"exp\",\"mean_s\":1,\"median_s\":1}}}",
               "callers.duration:", "\"median_s\"");
    expect_err("{\"twilio\":{\"webhooks\":{\"dropp\":0.1}}}", "twilio.webhooks:", "\"dropp\"");
    expect_err("{\"vapi\":{\"webhooks\":{\"delay\":{\"dist\":\"const\",\"value_s\":1,\"x\":1}}}}",
               "vapi.webhooks.delay:", "\"x\"");
    expect_err("{\"expect\":{\"lostt\":0}}", "expect:", "\"lostt\"");
    expect_err("{\"callers\":{\"arrivals\":{\"process\":\"schedule\",\"segments\":["
               "{\"until_s\":1,\"rate_per_s\":1,\"z\":0}]}}}",
               "callers.arrivals.segments[0]:", "\"z\"");
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_err("not json", "invalid JSON", NULL);
    expect_err("[]", "expected an object", NULL);
    expect_err("{\"seed\":\"42\"}", "seed:", "integer");
    expect_err("{\"seed\":-1}", "seed:", "negative");
    expect_err("{\"duration_s\":\"10\"}", "duration_s:", "number");
    expect_err("{\"drain_s\":-1}", "drain_s:", "negative");
    expect_err("{\"name\":7}", "name:", "string");
    expect_err("{\"name\":\"\"}", "name:", "empty");
    expect_err("{\"callers\":{\"arrivals\":{\"rate_per_s\":1}}}", "callers.arrivals",
               "\"process\"");
    expect_err("{\"callers\":{\"arrivals\":{\"process\":\"zipf\"}}}", "callers.arrivals.process",
               "zipf");
    expect_err("{\"callers\":{\"arrivals\":{\"process\":\"burst\"}}}", "callers.arrivals",
               "\"count\"");
    expect_err("{\"callers\":{\"arrivals\":{\"process\":\"burst\",\"count\":1.5}}}",
               "callers.arrivals.count", "integer");
    expect_err("{\"callers\":{\"arrivals\":{\"process\":\"schedule\",\"segments\":[]}}}",
               "callers.arrivals.segments", NULL);
    expect_err("{\"callers\":{\"arrivals\":{\"process\":\"schedule\",\"segments\":["
               "{\"until_s\":5,\"rate_per_s\":1},{\"until_s\":4,\"rate_per_s\":1}]}}}",
               "callers.arrivals.segments[1].until_s", NULL);
    expect_err("{\"callers\":{\"duration\":null}}", "callers.duration", "null");
    expect_err("{\"callers\":{\"duration\":{\"mean_s\":1}}}", "callers.duration", "\"dist\"");
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"gamma\"}}}", "callers.duration.dist",
               "gamma");
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"exp\",\"mean_s\":-2}}}",
               "callers.duration.mean_s", "negative");
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"exp\",\"mean_s\":0}}}",
               "callers.duration.mean_s", "positive");
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"exp\"}}}", "callers.duration", "mean_s");
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"uniform\",\"min_s\":3,\"max_s\":1}}}",
               "callers.duration.max_s", NULL);
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"exp\",\"mean_s\":1,\"min_s\":3,"
               "\"max_s\":1}}}",
               "callers.duration.max_s", NULL);
    expect_err("{\"callers\":{\"duration\":{\"dist\":\"lognormal\",\"median_s\":1}}}",
               "callers.duration", "sigma");
    expect_err("{\"callers\":{\"patience\":5}}", "callers.patience", "distribution");
    expect_err("{\"twilio\":{\"webhooks\":{\"drop\":1.5}}}", "twilio.webhooks.drop", "[0, 1]");
    expect_err("{\"twilio\":{\"webhooks\":{\"duplicate\":-0.1}}}", "twilio.webhooks.duplicate",
               "[0, 1]");
    expect_err("{\"twilio\":{\"rate_429\":2}}", "twilio.rate_429", "[0, 1]");
    expect_err("{\"twilio\":{\"account_sid\":\"XX123\"}}", "twilio.account_sid", NULL);
    expect_err("{\"twilio\":{\"completed_again\":\"404\"}}", "twilio.completed_again", NULL);
    expect_err("{\"twilio\":{\"redirect_posts_action\":1}}", "twilio.redirect_posts_action",
               "true or false");
    expect_err("{\"twilio\":{\"queue_max_size\":0}}", "twilio.queue_max_size", NULL);
    expect_err("{\"vapi\":{\"limit\":0}}", "vapi.limit", NULL);
    expect_err("{\"vapi\":{\"limit\":\"10\"}}", "vapi.limit", "integer");
    expect_err("{\"vapi\":{\"overlimit_mode\":\"429\"}}", "vapi.overlimit_mode", NULL);
    expect_err("{\"vapi\":{\"end_lag_s\":-0.1}}", "vapi.end_lag_s", "negative");
    expect_err("{\"vapi\":{\"rate_overlimit\":1.01}}", "vapi.rate_overlimit", "[0, 1]");
    expect_err("{\"vapi\":{\"limit\":2,\"external_calls\":3}}", "vapi.external_calls", NULL);
    expect_err("{\"expect\":{\"lost\":-1}}", "expect.lost", "negative");
    expect_err("{\"expect\":{\"max_idle_slot_s\":\"x\"}}", "expect.max_idle_slot_s", "number");
    expect_err("{\"vapi\":[]}", "vapi", "object");
}

/* The "accounts" member: defaults that describe a correct deployment,
 * null as "none", and errors that name the path. */
static void test_accounts(void **state)
{
    (void)state;
    struct sim_scenario sc;
    expect_ok(&sc, "{}");
    const struct sim_accounts *a = &sc.acc;
    assert_string_equal(a->twilio_friendly_name, "callgate-sim");
    assert_string_equal(a->twilio_status, "active");
    assert_int_equal(a->nnumbers, 1);
    assert_string_equal(a->numbers[0].phone_number, "+15550100000");
    assert_null(a->numbers[0].voice_url); /* the default, under the public URL */
    assert_null(a->numbers[0].status_callback);
    assert_string_equal(a->numbers[0].voice_method, "POST");
    assert_string_equal(a->numbers[0].status_callback_method, "POST");
    assert_string_equal(a->assistant_id, "sim-assistant");
    assert_null(a->assistant_server_url);
    assert_int_equal(a->server_messages_mode, 0);
    assert_string_equal(a->phone_number_id, "sim-phone-number");
    assert_null(a->phone_number);
    assert_null(a->phone_assistant_id);
    sim_scenario_free(&sc);

    expect_ok(&sc, "{\"accounts\":{\"twilio\":{\"status\":\"suspended\",\"numbers\":["
                   "{\"phone_number\":\"+15550100001\",\"voice_url\":\"https://x/in\","
                   "\"voice_method\":\"GET\",\"status_callback\":null},"
                   "{\"phone_number\":\"+15550100002\"}]},"
                   "\"vapi\":{\"assistant\":{\"id\":\"as-1\",\"server_url\":null,"
                   "\"server_messages\":[\"status-update\"]},"
                   "\"phone_number\":{\"id\":\"pn-1\",\"number\":\"+15550100002\","
                   "\"assistant_id\":\"as-2\"}}}}");
    assert_string_equal(a->twilio_status, "suspended");
    assert_int_equal(a->nnumbers, 2);
    assert_string_equal(a->numbers[0].voice_url, "https://x/in");
    assert_string_equal(a->numbers[0].voice_method, "GET");
    assert_string_equal(a->numbers[0].status_callback, "");
    assert_null(a->numbers[1].voice_url);
    assert_string_equal(a->assistant_id, "as-1");
    assert_string_equal(a->assistant_server_url, "");
    assert_int_equal(a->server_messages_mode, 1);
    assert_int_equal(a->nserver_messages, 1);
    assert_string_equal(a->server_messages[0], "status-update");
    assert_string_equal(a->phone_number_id, "pn-1");
    assert_string_equal(a->phone_number, "+15550100002");
    assert_string_equal(a->phone_assistant_id, "as-2");
    sim_scenario_free(&sc);

    expect_ok(&sc, "{\"accounts\":{\"twilio\":{\"numbers\":[]},"
                   "\"vapi\":{\"assistant\":{\"server_messages\":null}}}}");
    assert_int_equal(a->nnumbers, 0);
    assert_int_equal(a->server_messages_mode, -1);
    sim_scenario_free(&sc);

    expect_err("{\"accounts\":{\"stripe\":{}}}", "accounts", "stripe");
    expect_err("{\"accounts\":{\"twilio\":{\"status\":\"gone\"}}}", "accounts.twilio.status", NULL);
    expect_err("{\"accounts\":{\"twilio\":{\"numbers\":[{\"voice_url\":\"x\"}]}}}",
               "accounts.twilio.numbers[0]", "phone_number");
    expect_err("{\"accounts\":{\"twilio\":{\"numbers\":[{\"phone_number\":\"5550100\"}]}}}",
               "accounts.twilio.numbers[0]", "E.164");
    expect_err("{\"accounts\":{\"twilio\":{\"numbers\":[{\"phone_number\":\"+1555\","
               "\"voice_method\":\"PUT\"}]}}}",
               "voice_method", "GET");
    expect_err("{\"accounts\":{\"twilio\":{\"numbers\":[{\"phone_number\":\"+1555\"},"
               "{\"phone_number\":\"+1555\"}]}}}",
               "numbers[1]", "twice");
    expect_err("{\"accounts\":{\"vapi\":{\"assistant\":{\"server_messages\":[1]}}}}",
               "server_messages", NULL);
    expect_err("{\"accounts\":{\"vapi\":{\"phone_number\":{\"sid\":\"x\"}}}}",
               "accounts.vapi.phone_number", "sid");
}

static void test_load(void **state)
{
    (void)state;
    char *dir = cgt_tmpdir();
    char path[600];
    snprintf(path, sizeof(path), "%s/burst-200.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"seed\":7}", f);
    fclose(f);
    struct sim_scenario sc;
    char err[512];
    assert_int_equal(sim_scenario_load(&sc, path, err, sizeof(err)), 0);
    assert_string_equal(sc.name, "burst-200"); /* unnamed: the file's name */
    assert_true(sc.seed == 7);
    sim_scenario_free(&sc);

    f = fopen(path, "w");
    fputs("{\"name\":\"given\",\"vapi\":{\"limitt\":1}}", f);
    fclose(f);
    assert_int_equal(sim_scenario_load(&sc, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "vapi: unknown member \"limitt\""));
    sim_scenario_free(&sc);
    unlink(path);

    snprintf(path, sizeof(path), "%s/missing.json", dir);
    assert_int_equal(sim_scenario_load(&sc, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing.json"));
    sim_scenario_free(&sc);
    rmdir(dir);
    free(dir);
}

/* "transfers": the assistant's call control, validated like the rest. */
static void test_transfers(void **state)
{
    (void)state;
    struct sim_scenario sc;
    expect_ok(&sc, "{}");
    assert_true(sc.transfers.share == 0);
    assert_string_equal(sc.transfers.number, "+15557770100");
    assert_true(sc.expect_max_refill_ms < 0);
    sim_scenario_free(&sc);

    expect_ok(&sc, "{\"transfers\":{\"share\":0.5,\"after_s\":0.2,\"weights\":{\"sip\":2,"
                   "\"refused\":1},\"sip_uri\":\"sip:a@b\",\"talk_s\":1.5},"
                   "\"expect\":{\"max_refill_ms\":800}}");
    assert_true(sc.transfers.share == 0.5);
    assert_true(sc.transfers.after_s == 0.2);
    assert_true(sc.transfers.w_sip == 2 && sc.transfers.w_refused == 1);
    /* A weights object names every weight it wants: the others are 0. */
    assert_true(sc.transfers.w_number == 0 && sc.transfers.w_queue == 0);
    assert_string_equal(sc.transfers.sip_uri, "sip:a@b");
    assert_true(sc.transfers.talk_s == 1.5);
    assert_true(sc.expect_max_refill_ms == 800);
    sim_scenario_free(&sc);

    expect_err("{\"transfers\":{\"share\":2}}", "transfers.share", "probability");
    expect_err("{\"transfers\":{\"shares\":1}}", "transfers", "shares");
    expect_err("{\"transfers\":{\"after_s\":-1}}", "transfers.after_s", "negative");
    expect_err("{\"transfers\":{\"weights\":{\"fax\":1}}}", "transfers.weights", "fax");
    expect_err("{\"transfers\":{\"weights\":{\"sip\":-1}}}", "transfers.weights.sip", "negative");
    expect_err("{\"transfers\":{\"share\":0.5,\"weights\":{\"sip\":0}}}", "transfers.weights",
               "above 0");
    expect_err("{\"transfers\":{\"number\":\"call me\"}}", "transfers", "number");
    expect_err("{\"transfers\":{\"queue_number\":\"+15557770100\"}}", "transfers", "differ");
    expect_err("{\"transfers\":{\"sip_uri\":\"tel:1\"}}", "transfers.sip_uri", "sip:");
    expect_err("{\"expect\":{\"max_refill_ms\":-5}}", "expect.max_refill_ms", "negative");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_full),
        cmocka_unit_test(test_arrival_shapes),  cmocka_unit_test(test_dist_shapes),
        cmocka_unit_test(test_unknown_members), cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_accounts),        cmocka_unit_test(test_load),
        cmocka_unit_test(test_transfers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
