/*
 * Unit tests for the simulated Vapi's outbound calls and the organization
 * limit over every kind of call (sim/vapi.c with routes): POST /call
 * without bypass dials the customer (status-update ringing, in-progress,
 * ended with the customer's endedReason, then end-of-call-report), counting
 * from creation; web calls held under leased slots count too; over the
 * limit every kind is refused and the route checker (sim/rcheck.c) says
 * so. No callgate: the API on a loopback cg_httpd in this process, with a
 * fake gate receiving the server messages.
 */
#include "harness.h"
#include "simfix.h"

#include "hooks.h"
#include "rcheck.h"
#include "report.h"
#include "rng.h"
#include "scenario_routes.h"
#include "sim.h"
#include "vapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/json.h"
#include "net/httpc.h"
#include "net/httpd.h"

#define MAXMSG 16
#define KEY    "Authorization: Bearer sim-vapi-key"

#define ROUTES(limit, external, customers)                                                         \
    "{\"vapi\":{\"limit\":" limit ",\"external_calls\":" external "},"                             \
    "\"routes\":[{\"name\":\"support\",\"numbers\":[\"+15550100000\"],\"assistantId\":"            \
    "\"as-support\",\"phoneNumberId\":\"pn-support\",\"queue\":\"support\"},"                      \
    "{\"name\":\"sales\",\"numbers\":[\"+15550100001\"],\"assistantId\":\"as-sales\","             \
    "\"phoneNumberId\":\"pn-sales\",\"queue\":\"sales\"}],"                                        \
    "\"dialer\":{\"customers\":" customers "}}"

#define FAST                                                                                       \
    "\"dial_s\":0.05,\"ring_min_s\":0.1,\"ring_max_s\":0.1,\"talk_min_s\":0.2,\"talk_max_s\":0.2"

#define OUTBOUND_BODY(number)                                                                      \
    "{\"phoneNumberId\":\"pn-sales\",\"assistantId\":\"as-sales\",\"customer\":{\"number\":"       \
    "\"" number "\"},\"assistantOverrides\":{\"variableValues\":{\"campaign\":\"sim\"}}}"

#define BYPASS_BODY                                                                                \
    "{\"phoneNumberId\":\"pn-support\",\"assistantId\":\"as-support\","                            \
    "\"phoneCallProviderBypassEnabled\":true,\"customer\":{\"number\":\"+15551234567\"},"          \
    "\"assistantOverrides\":{\"metadata\":{\"twilioCallSid\":\"CA1\"}}}"

struct fx {
    struct event_base *base;
    struct sim_scenario sc;
    struct sim_world w;
    struct cg_httpd *gate;
    char api[64];
    json_t *msgs[MAXMSG];
    int nmsgs;
};

static void on_gate(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    if (f->nmsgs < MAXMSG) {
        size_t len;
        const char *b = cg_http_req_body(req, &len);
        char err[128];
        f->msgs[f->nmsgs++] = cg_json_parse(b, len, CG_JSON_MAX_DEPTH, err, sizeof(err));
    }
    cg_http_reply_json(req, 200, "{}");
}

static void fx_init(struct fx *f, const char *scenario)
{
    memset(f, 0, sizeof(*f));
    struct sim_world *w = &f->w;
    simfix_world(w, &f->sc, scenario);
    f->base = w->base;
    if (f->sc.routes)
        w->rcheck = sim_rcheck_new(f->sc.routes, f->sc.vapi_limit, f->sc.vapi_external_calls);
    f->gate = simfix_httpd(f->base);
    assert_int_equal(cg_httpd_route(f->gate, "/call-ended", CG_HTTP_POST, on_gate, f), 0);
    char gate_url[64];
    simfix_listen(f->gate, gate_url, sizeof(gate_url));
    const char *inst[1] = {gate_url};
    w->hooks = sim_hooks_new(w, "https://gate.example.com", inst, 1);
    w->httpd = simfix_httpd(f->base);
    w->vapi = sim_vapi_new(w);
    assert_non_null(w->vapi);
    simfix_listen(w->httpd, f->api, sizeof(f->api));
}

static void fx_free(struct fx *f)
{
    struct sim_world *w = &f->w;
    sim_hooks_free(w->hooks);
    sim_vapi_free(w->vapi);
    cg_httpd_free(w->httpd);
    cg_httpd_free(f->gate);
    simfix_world_free(w, &f->sc);
    for (int i = 0; i < f->nmsgs; i++)
        json_decref(f->msgs[i]);
}

static void http(struct fx *f, const char *method, const char *path, const char *body,
                 struct simfix_resp *r)
{
    simfix_http(&f->w, f->api, method, path, KEY, body ? "application/json" : NULL, body, r);
}

static void wait_msgs(struct fx *f, int n)
{
    uint64_t deadline = cg_mono_ms() + 5000;
    while (f->nmsgs < n && cg_mono_ms() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(f->nmsgs, n);
}

/* The status-updates' statuses and the end's reasons, in arrival order. */
static void expect_story(struct fx *f, const char *const *statuses, const char *reason)
{
    int n = 0;
    while (statuses[n])
        n++;
    wait_msgs(f, n + 1);
    for (int i = 0; i < n; i++) {
        assert_string_equal(str(f->msgs[i], "message.type"), "status-update");
        assert_string_equal(str(f->msgs[i], "message.status"), statuses[i]);
        assert_string_equal(str(f->msgs[i], "message.call.type"), "outboundPhoneCall");
        assert_string_equal(str(f->msgs[i], "message.customer.number"), "+15557770001");
    }
    assert_string_equal(str(f->msgs[n - 1], "message.endedReason"), reason);
    assert_string_equal(str(f->msgs[n], "message.type"), "end-of-call-report");
    assert_string_equal(str(f->msgs[n], "message.endedReason"), reason);
    assert_string_equal(str(f->msgs[n], "message.call.status"), "ended");
}

/* Without routes an outbound call is refused as before: the simulator
 * simulates bypass calls only. */
static void test_outbound_refused_without_routes(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "{}");
    struct simfix_resp r;
    http(&f, "POST", "/call", OUTBOUND_BODY("+15557770001"), &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(json_string_value(json_array_get(json_object_get(r.json, "message"), 0)),
                           "phoneCallProviderBypassEnabled must be true"));
    json_decref(r.json);
    assert_int_equal(sim_vapi_live(&f.w), 0);
    fx_free(&f);
}

static void test_outbound_answered(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, ROUTES("4", "0", "{\"answer\":1,\"busy\":0," FAST "}"));
    struct simfix_resp r;
    http(&f, "POST", "/call", OUTBOUND_BODY("+15557770001"), &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(str(r.json, "type"), "outboundPhoneCall");
    assert_string_equal(str(r.json, "status"), "queued");
    assert_string_equal(str(r.json, "transport.provider"), "twilio");
    assert_string_equal(str(r.json, "phoneNumberId"), "pn-sales");
    assert_null(json_object_get(r.json, "phoneCallProviderDetails"));
    assert_null(json_object_get(r.json, "phoneCallProviderBypassEnabled"));
    assert_int_equal(strncmp(str(r.json, "phoneCallProviderId"), "CA", 2), 0);
    char id[64];
    snprintf(id, sizeof id, "%s", str(r.json, "id"));
    json_decref(r.json);
    /* It counts from creation, for its route too. */
    assert_int_equal(sim_vapi_live(&f.w), 1);
    assert_int_equal(sim_rcheck_live(f.w.rcheck, 1), 1);
    assert_int_equal(sim_vapi_outbound_state(&f.w, "+15557770001"), 1);
    /* A type that is not outboundPhoneCall is refused. */
    http(&f, "POST", "/call",
         "{\"phoneNumberId\":\"pn-sales\",\"assistantId\":\"as-sales\",\"type\":"
         "\"inboundPhoneCall\",\"customer\":{\"number\":\"+15557770002\"}}",
         &r);
    assert_int_equal(r.status, 400);
    json_decref(r.json);
    static const char *const story[] = {"ringing", "in-progress", "ended", NULL};
    expect_story(&f, story, "customer-ended-call");
    assert_int_equal(sim_vapi_live(&f.w), 0);
    assert_int_equal(sim_rcheck_live(f.w.rcheck, 1), 0);
    assert_int_equal(sim_vapi_outbound_state(&f.w, "+15557770001"), 2);
    assert_int_equal(sim_vapi_outbound_state(&f.w, "+15557770009"), 0);
    char path[80];
    snprintf(path, sizeof path, "/call/%s", id);
    http(&f, "GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str(r.json, "status"), "ended");
    assert_string_equal(str(r.json, "endedReason"), "customer-ended-call");
    assert_non_null(cg_json_str(r.json, "startedAt"));
    json_decref(r.json);
    fx_free(&f);
}

static void test_outbound_busy_and_no_answer(void **state)
{
    (void)state;
    struct fx f;
    struct simfix_resp r;
    fx_init(&f, ROUTES("4", "0", "{\"answer\":0,\"busy\":1," FAST "}"));
    http(&f, "POST", "/call", OUTBOUND_BODY("+15557770001"), &r);
    assert_int_equal(r.status, 201);
    json_decref(r.json);
    static const char *const busy[] = {"ringing", "ended", NULL};
    expect_story(&f, busy, "customer-busy");
    assert_int_equal(sim_vapi_live(&f.w), 0);
    fx_free(&f);

    fx_init(&f, ROUTES("4", "0", "{\"answer\":0,\"busy\":0,\"no_answer_s\":0.3," FAST "}"));
    uint64_t t0 = cg_mono_ms();
    http(&f, "POST", "/call", OUTBOUND_BODY("+15557770001"), &r);
    assert_int_equal(r.status, 201);
    json_decref(r.json);
    static const char *const none[] = {"ringing", "ended", NULL};
    expect_story(&f, none, "customer-did-not-answer");
    /* It rang for no_answer_s, counted all along. */
    assert_true(cg_mono_ms() - t0 >= 300);
    assert_int_equal(sim_vapi_live(&f.w), 0);
    fx_free(&f);
}

/* One limit for every kind: an external call, a web call under a slot,
 * an outbound call, then the inbound bypass call and another web call are
 * refused; the route checker fails the organization limit and sees the
 * inbound caller pushed out by the outbound call and the slot. */
static void test_org_limit_every_kind(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, ROUTES("3", "1",
                       "{\"answer\":1,\"busy\":0,\"ring_min_s\":0.1,\"ring_max_s\":0.1,"
                       "\"talk_min_s\":5,\"talk_max_s\":5}"));
    assert_int_equal(sim_vapi_live(&f.w), 1);
    /* A lease of sales is granted (the dialer tells the checker) and its
     * holder's web call starts at Vapi. */
    sim_rcheck_started(f.w.rcheck, sim_now_s(&f.w), 1, SIM_RK_SLOT, NULL, NULL);
    assert_int_equal(sim_vapi_web_start(&f.w, 1), 0);
    assert_int_equal(sim_vapi_live(&f.w), 2);
    struct simfix_resp r;
    http(&f, "POST", "/call", OUTBOUND_BODY("+15557770001"), &r);
    assert_int_equal(r.status, 201);
    json_decref(r.json);
    assert_int_equal(sim_vapi_live(&f.w), 3);
    assert_int_equal(sim_rcheck_live(f.w.rcheck, 1), 2);
    assert_int_equal(sim_rcheck_live(f.w.rcheck, -1), 3);
    http(&f, "POST", "/call", BYPASS_BODY, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(r.json, "message"), "Over Concurrency Limit.");
    json_decref(r.json);
    assert_int_equal(sim_vapi_web_start(&f.w, 0), -1);
    assert_int_equal(sim_vapi_live(&f.w), 3);
    sim_vapi_web_end(&f.w, 1);
    sim_rcheck_ended(f.w.rcheck, sim_now_s(&f.w), 1, SIM_RK_SLOT);
    assert_int_equal(sim_vapi_live(&f.w), 2);
    assert_int_equal(sim_rcheck_live(f.w.rcheck, 1), 1);
    /* Room again: the bypass call goes through, for its route. */
    http(&f, "POST", "/call", BYPASS_BODY, &r);
    assert_int_equal(r.status, 201);
    json_decref(r.json);
    assert_int_equal(sim_rcheck_live(f.w.rcheck, 0), 1);

    json_t *root = json_object(), *inv = json_array();
    int failed = sim_rcheck_finish(f.w.rcheck, sim_now_s(&f.w), root, inv);
    int org = -1, pushed = -1;
    size_t i;
    json_t *o;
    json_array_foreach (inv, i, o) {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (strcmp(n, "routes_org_limit") == 0)
            org = json_is_true(json_object_get(o, "ok"));
        if (strcmp(n, "routes_outbound_never_pushes_inbound") == 0)
            pushed = json_is_true(json_object_get(o, "ok"));
    }
    assert_int_equal(org, 0);
    assert_int_equal(pushed, 0);
    assert_int_equal(failed, 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(root, "routes"), "refused_for_limit")),
        2);
    json_decref(inv);
    json_decref(root);
    fx_free(&f);
}

/* Each route's assistant and phone number exist in the account. */
static void test_route_resources(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, ROUTES("4", "0", "{}"));
    struct simfix_resp r;
    http(&f, "GET", "/assistant/as-sales", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str(r.json, "id"), "as-sales");
    json_decref(r.json);
    http(&f, "GET", "/phone-number/pn-sales", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str(r.json, "number"), "+15550100001");
    json_decref(r.json);
    http(&f, "GET", "/phone-number/pn-other", NULL, &r);
    assert_int_equal(r.status, 404);
    json_decref(r.json);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbound_refused_without_routes),
        cmocka_unit_test(test_outbound_answered),
        cmocka_unit_test(test_outbound_busy_and_no_answer),
        cmocka_unit_test(test_org_limit_every_kind),
        cmocka_unit_test(test_route_resources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
