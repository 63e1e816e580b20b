/*
 * `callgate-sim serve --scenario FILE` with a taskrouter member: the
 * simulated TaskRouter runs with no callers and no gate, answers on the
 * sim's port, shows in /sim/status, and the process stops cleanly on
 * SIGTERM. This is how callgate's poller is pointed at the simulator.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/json.h"

/* Base64 of the scenario defaults "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:sim-auth-token". */
#define AUTH                                                                                       \
    "Authorization: Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTpzaW0tYXV0aC10b2tlbg=="
#define WS "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static json_t *get_json(const char *url, const char *const *headers, long want)
{
    struct cgt_resp r;
    cgt_http("GET", url, headers, NULL, 0, &r);
    if (r.status != want)
        fail_msg("GET %s: %ld %.300s", url, r.status, r.body ? r.body : "");
    char err[128];
    json_t *j = cg_json_parse(r.body, r.len, 32, err, sizeof(err));
    if (!j)
        fail_msg("GET %s: not JSON: %s", url, err);
    cgt_resp_free(&r);
    return j;
}

static void test_serve_runs_taskrouter(void **state)
{
    (void)state;
    char *dir = cgt_tmpdir();
    char scen[512], portf[512];
    snprintf(scen, sizeof(scen), "%s/tr.json", dir);
    snprintf(portf, sizeof(portf), "%s/port", dir);
    FILE *f = fopen(scen, "w");
    assert_non_null(f);
    fputs("{\"name\":\"tr-serve\",\"seed\":3,\"taskrouter\":{\"queues\":30,\"stalled_queues\":2,"
          "\"warmup_s\":300,\"task_rate_per_s\":0.2}}",
          f);
    assert_int_equal(fclose(f), 0);

    struct cgt_proc p;
    const char *argv[] = {cgt_bin("callgate-sim"),
                          "serve",
                          "--port",
                          "0",
                          "--port-file",
                          portf,
                          "--scenario",
                          scen,
                          NULL};
    cgt_spawn(&p, argv, NULL);
    int port = 0;
    for (int i = 0; i < 500 && (port = cgt_read_port_file(portf)) == 0; i++)
        usleep(10000);
    if (!port) {
        char *out = cgt_proc_output(&p);
        fail_msg("no port file; output:\n%s", out);
    }
    char url[512];
    const char *auth[] = {AUTH, NULL};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/Workspaces/" WS "/TaskQueues/Statistics",
             port);
    json_t *j = get_json(url, auth, 200);
    json_t *items = json_object_get(j, "task_queues_statistics");
    assert_int_equal(json_array_size(items), 30);
    long long entered = 0, pending = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        long long v = 0;
        assert_int_equal(cg_json_int(json_array_get(items, i), "cumulative.tasks_entered", &v), 0);
        entered += v;
        assert_int_equal(
            cg_json_int(json_array_get(items, i), "realtime.tasks_by_status.pending", &v), 0);
        pending += v;
    }
    /* The warm-up left history and, on the stalled queues, a backlog. */
    assert_true(entered > 100);
    assert_true(pending > 0);
    json_decref(j);
    /* Without credentials: 401. */
    json_decref(get_json(url, NULL, 401));

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/sim/status", port);
    j = get_json(url, NULL, 200);
    long long v = 0;
    assert_int_equal(cg_json_int(j, "taskrouter.queues", &v), 0);
    assert_int_equal(v, 30);
    assert_int_equal(cg_json_int(j, "taskrouter.requests.statistics_list", &v), 0);
    assert_int_equal(v, 1);
    assert_string_equal(cg_json_str(j, "phase"), "serve");
    json_decref(j);

    assert_int_equal(cgt_stop(&p, SIGTERM, 5000), 0);
    remove(scen);
    remove(portf);
    rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_runs_taskrouter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
