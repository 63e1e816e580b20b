/*
 * Unit tests for sim/dialer.c against a fake admin API on a loopback
 * cg_httpd (no callgate): the requests it makes (Bearer token, bodies,
 * methods and paths), polling to a final status, web calls at the
 * simulated Vapi for each granted slot, renewals, releases and leases left
 * to expire; and its invariants: an API that answers wrongly (a 429
 * without Retry-After) or accepts outbound calls it never places fails
 * them.
 */
#include "harness.h"

#include "dialer.h"
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

#include "base/clock.h"
#include "base/json.h"
#include "net/httpc.h"
#include "net/httpd.h"

#define SCENARIO                                                                                   \
    "{\"vapi\":{\"limit\":50},"                                                                    \
    "\"routes\":[{\"name\":\"sales\",\"numbers\":[\"+15550100001\"],\"assistantId\":"              \
    "\"as-sales\",\"phoneNumberId\":\"pn-sales\",\"queue\":\"sales\"}],"                           \
    "\"dialer\":{\"admin_token\":\"tok\",\"poll_s\":0.05,"                                         \
    "\"outbound\":{\"route\":\"sales\",\"rate_per_s\":20,\"until_s\":0.4},"                        \
    "\"slots\":{\"route\":\"sales\",\"rate_per_s\":20,\"until_s\":0.4,\"ttl_s\":2,"                \
    "\"hold_min_s\":0.1,\"hold_max_s\":0.2,\"expire_share\":0.4,\"renew_share\":0.5},"             \
    "\"customers\":{\"answer\":1,\"busy\":0,\"dial_s\":0.02,\"ring_min_s\":0.05,"                  \
    "\"ring_max_s\":0.05,\"talk_min_s\":0.1,\"talk_max_s\":0.1}}}"

struct fx {
    struct event_base *base;
    struct sim_scenario sc;
    struct sim_world w;
    struct cg_httpd *gate; /* the fake admin API, and the Vapi server URL */
    char gate_url[64], api[64];
    int place;          /* the fake gate places each outbound call at Vapi */
    int no_retry_after; /* its 429s lack Retry-After */
    int bad_auth, outbound, polls, slots, refused, renews, deletes;
    char last_number[32];
};

static int authorized(struct fx *f, struct cg_http_req *req)
{
    const char *h = cg_http_req_header(req, "Authorization");
    if (h && strcmp(h, "Bearer tok") == 0)
        return 1;
    f->bad_auth++;
    cg_http_reply_json(req, 401, "{}");
    return 0;
}

static void on_placed(const struct cg_httpc_result *res, void *arg)
{
    (void)arg;
    if (!res->error)
        if (res->status != 201)
            fail_msg("Vapi answered %ld: %s", res->status, res->body);
}

static void on_outbound(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    if (!authorized(f, req))
        return;
    size_t len;
    const char *b = cg_http_req_body(req, &len);
    char err[128];
    json_t *j = cg_json_parse(b, len, CG_JSON_MAX_DEPTH, err, sizeof err);
    assert_non_null(j);
    assert_string_equal(cg_json_str(j, "route"), "sales");
    assert_non_null(cg_json_str(j, "variables.campaign"));
    snprintf(f->last_number, sizeof f->last_number, "%s", cg_json_str(j, "number"));
    if (f->place) {
        char body[512], url[96];
        snprintf(body, sizeof body,
                 "{\"phoneNumberId\":\"pn-sales\",\"assistantId\":\"as-sales\","
                 "\"customer\":{\"number\":\"%s\"}}",
                 f->last_number);
        snprintf(url, sizeof url, "%s/call", f->api);
        const char *hdrs[] = {"Authorization: Bearer sim-vapi-key", NULL};
        struct cg_httpc_request r = {.method = "POST",
                                     .url = url,
                                     .body = body,
                                     .body_len = strlen(body),
                                     .content_type = "application/json",
                                     .headers = hdrs};
        assert_int_equal(cg_httpc_send(f->w.httpc, &r, on_placed, f), 0);
    }
    json_decref(j);
    char out[96];
    snprintf(out, sizeof out, "{\"id\":\"ob-%d\",\"position\":%d}", f->outbound, f->outbound % 3);
    f->outbound++;
    cg_http_reply_json(req, 202, out);
}

static void on_outbound_get(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    if (!authorized(f, req))
        return;
    f->polls++;
    char out[128];
    /* Queued on the first poll, ended on the later ones. */
    snprintf(out, sizeof out, "{\"id\":\"%s\",\"status\":\"%s\"}", cg_http_req_path_rest(req),
             f->polls % 2 ? "queued" : "ended");
    cg_http_reply_json(req, 200, out);
}

static void on_slots(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    if (!authorized(f, req))
        return;
    size_t len;
    const char *b = cg_http_req_body(req, &len);
    char err[128];
    json_t *j = cg_json_parse(b, len, CG_JSON_MAX_DEPTH, err, sizeof err);
    assert_non_null(j);
    assert_string_equal(cg_json_str(j, "route"), "sales");
    long long ttl = 0;
    assert_int_equal(cg_json_int(j, "ttlSeconds", &ttl), 0);
    assert_int_equal(ttl, 2);
    json_decref(j);
    if (++f->slots % 3 == 0) {
        f->refused++;
        if (!f->no_retry_after)
            cg_http_set_header(req, "Retry-After", "1");
        cg_http_reply_json(req, 429, "{\"error\":\"no room\"}");
        return;
    }
    char out[128];
    snprintf(out, sizeof out, "{\"id\":\"sl-%d\",\"expiresAt\":\"2030-01-01T00:00:02.000Z\"}",
             f->slots);
    cg_http_reply_json(req, 201, out);
}

static void on_slot(struct cg_http_req *req, void *arg)
{
    struct fx *f = arg;
    if (!authorized(f, req))
        return;
    const char *rest = cg_http_req_path_rest(req);
    if (cg_http_req_method(req) == CG_HTTP_DELETE) {
        assert_int_equal(strncmp(rest, "sl-", 3), 0);
        f->deletes++;
        cg_http_reply(req, 204, NULL, NULL, 0);
        return;
    }
    assert_non_null(strstr(rest, "/renew"));
    f->renews++;
    cg_http_reply_json(req, 200, "{\"expiresAt\":\"2030-01-01T00:00:04.000Z\"}");
}

static void fx_init(struct fx *f, int place, int no_retry_after)
{
    memset(f, 0, sizeof(*f));
    f->place = place;
    f->no_retry_after = no_retry_after;
    char err[256];
    if (sim_scenario_parse(&f->sc, SCENARIO, strlen(SCENARIO), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    f->base = event_base_new();
    struct sim_world *w = &f->w;
    w->base = f->base;
    w->sc = &f->sc;
    w->httpc = cg_httpc_new(f->base, NULL);
    w->rng = sim_rng_new(f->sc.seed);
    w->fault_rng = sim_rng_new(f->sc.seed ^ 0x5eed);
    w->report = sim_report_new(w);
    w->rcheck = sim_rcheck_new(f->sc.routes, f->sc.vapi_limit, 0);
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1",
                              .port = 0,
                              .max_body_bytes = 1 << 20,
                              .max_header_bytes = 16384,
                              .timeout_seconds = 10};
    f->gate = cg_httpd_new(f->base, &o);
    assert_int_equal(cg_httpd_route(f->gate, "/calls/outbound", CG_HTTP_POST, on_outbound, f), 0);
    assert_int_equal(cg_httpd_route(f->gate, "/calls/outbound/*", CG_HTTP_GET, on_outbound_get, f),
                     0);
    assert_int_equal(cg_httpd_route(f->gate, "/slots", CG_HTTP_POST, on_slots, f), 0);
    assert_int_equal(cg_httpd_route(f->gate, "/slots/*", CG_HTTP_POST | CG_HTTP_DELETE, on_slot, f),
                     0);
    assert_int_equal(cg_httpd_listen(f->gate, err, sizeof(err)), 0);
    snprintf(f->gate_url, sizeof(f->gate_url), "http://127.0.0.1:%d", cg_httpd_port(f->gate));
    const char *inst[1] = {f->gate_url};
    w->hooks = sim_hooks_new(w, f->gate_url, inst, 1);
    w->httpd = cg_httpd_new(f->base, &o);
    w->vapi = sim_vapi_new(w);
    assert_non_null(w->vapi);
    assert_int_equal(cg_httpd_listen(w->httpd, err, sizeof(err)), 0);
    snprintf(f->api, sizeof(f->api), "http://127.0.0.1:%d", cg_httpd_port(w->httpd));
    w->dialer = sim_dialer_new(w, inst, 1);
    assert_non_null(w->dialer);
    w->start_ms = cg_mono_ms();
    assert_int_equal(sim_dialer_start(w->dialer), 0);
}

static void fx_free(struct fx *f)
{
    struct sim_world *w = &f->w;
    sim_dialer_stop(w->dialer);
    sim_hooks_free(w->hooks);
    sim_vapi_free(w->vapi);
    w->vapi = NULL;
    cg_httpc_free(w->httpc);
    sim_dialer_free(w->dialer);
    cg_httpd_free(w->httpd);
    cg_httpd_free(f->gate);
    sim_rcheck_free(w->rcheck);
    sim_report_free(w->report);
    sim_rng_free(w->rng);
    sim_rng_free(w->fault_rng);
    event_base_free(f->base);
    sim_scenario_free(&f->sc);
}

/* Runs until the dialer is done and Vapi idle (or 10 s). */
static void run_out(struct fx *f)
{
    uint64_t deadline = cg_mono_ms() + 10000;
    while (!(sim_dialer_done(f->w.dialer) && sim_vapi_live(&f->w) == 0) && cg_mono_ms() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_true(sim_dialer_done(f->w.dialer));
    assert_int_equal(sim_vapi_live(&f->w), 0);
}

/* The report: the dialer's figures and its two invariants. */
static json_t *report(struct fx *f, int *api_ok, int *placed_ok)
{
    json_t *root = json_object(), *inv = json_array();
    sim_dialer_report(f->w.dialer, root, inv);
    size_t i;
    json_t *o;
    json_array_foreach (inv, i, o) {
        const char *n = json_string_value(json_object_get(o, "name"));
        int ok = json_is_true(json_object_get(o, "ok"));
        if (strcmp(n, "dialer_api") == 0)
            *api_ok = ok;
        if (strcmp(n, "dialer_outbound_placed") == 0)
            *placed_ok = ok;
    }
    json_decref(inv);
    return root;
}

static long figure(json_t *root, const char *path)
{
    long long v = -1;
    cg_json_int(root, path, &v);
    return (long)v;
}

static void test_dialer_against_a_good_api(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 1, 0);
    run_out(&f);
    assert_int_equal(f.bad_auth, 0);
    assert_true(f.outbound >= 2);
    assert_true(f.slots >= 3);
    assert_true(f.refused >= 1);
    /* Every granted slot is released or left to expire, after its
     * renewal if it had one. */
    int api_ok = -1, placed_ok = -1;
    json_t *root = report(&f, &api_ok, &placed_ok);
    assert_int_equal(api_ok, 1);
    assert_int_equal(placed_ok, 1);
    long granted = figure(root, "dialer.slots.granted");
    assert_int_equal(granted, f.slots - f.refused);
    assert_int_equal(figure(root, "dialer.slots.released") +
                         figure(root, "dialer.slots.left_to_expire"),
                     granted);
    assert_int_equal(figure(root, "dialer.slots.released"), f.deletes);
    assert_int_equal(figure(root, "dialer.slots.renewed"), f.renews);
    assert_int_equal(figure(root, "dialer.slots.web_calls_refused_by_vapi"), 0);
    assert_int_equal(figure(root, "dialer.outbound.accepted"), f.outbound);
    assert_int_equal(figure(root, "dialer.outbound.placed_at_vapi"), f.outbound);
    assert_int_equal(figure(root, "dialer.outbound.final_status_seen"), f.outbound);
    /* Closed on a final status, or on a poll answered after the Vapi call
     * ended (the fake still says queued on odd polls). */
    long ended = figure(root, "dialer.outbound.last_status.ended");
    long queued = figure(root, "dialer.outbound.last_status.queued");
    assert_true(ended >= 1);
    assert_int_equal(ended + (queued > 0 ? queued : 0), f.outbound);
    json_decref(root);
    /* Every lease counted for its route while it lasted, and all ended. */
    assert_int_equal(sim_rcheck_live(f.w.rcheck, 0), 0);
    json_t *rroot = json_object(), *rinv = json_array();
    assert_int_equal(sim_rcheck_finish(f.w.rcheck, sim_now_s(&f.w), rroot, rinv), 0);
    json_t *sales = json_array_get(json_object_get(json_object_get(rroot, "routes"), "list"), 0);
    assert_int_equal(json_integer_value(json_object_get(sales, "slot_calls")), granted);
    assert_int_equal(json_integer_value(json_object_get(sales, "outbound_calls")), f.outbound);
    json_decref(rinv);
    json_decref(rroot);
    fx_free(&f);
}

static void test_dialer_sees_a_bad_api(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0, 1);
    run_out(&f);
    int api_ok = -1, placed_ok = -1;
    json_t *root = report(&f, &api_ok, &placed_ok);
    /* A 429 without Retry-After; outbound calls accepted, never placed. */
    assert_int_equal(api_ok, 0);
    assert_int_equal(placed_ok, 0);
    assert_int_equal(figure(root, "dialer.outbound.placed_at_vapi"), 0);
    json_decref(root);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dialer_against_a_good_api),
        cmocka_unit_test(test_dialer_sees_a_bad_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
