/*
 * Unit tests for sim/hooks.c: signing over the public URL while the request
 * goes to an instance, round robin, failover past a dead instance, and the
 * injected faults, against in-process fake gate instances.
 */
#include "harness.h"

#include "hooks.h"
#include "report.h"
#include "rng.h"
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/form.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "twilio/signature.h"

#define PUBLIC  "https://gate.example.com/base"
#define MAXSEEN 64

struct seen {
    int instance;
    char *method, *uri, *path, *sig, *token, *ua, *ctype, *secret, *body;
    int sig_ok_public;   /* validates over PUBLIC + uri */
    int sig_ok_instance; /* validates over the URL actually requested */
    uint64_t at_ms;
};

struct gate {
    struct cg_httpd *httpd;
    int index;
    int port;
    char base[64];
    struct fx *fx;
};

struct fx {
    struct event_base *base;
    struct sim_scenario sc;
    struct sim_world w;
    struct gate gates[2];
    struct seen seen[MAXSEEN];
    int nseen;
    /* One request to /slow... is answered 300 ms late. */
    struct event *slow_timer;
    struct cg_http_req *slow_req;
};

static void on_slow(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fx *f = arg;
    cg_http_reply(f->slow_req, 200, "text/plain", "slow", 4);
    f->slow_req = NULL;
}

static void on_gate(struct cg_http_req *req, void *arg)
{
    struct gate *g = arg;
    struct fx *f = g->fx;
    if (f->nseen == MAXSEEN) {
        cg_http_reply(req, 500, "text/plain", "full", 4);
        return;
    }
    struct seen *s = &f->seen[f->nseen++];
    s->instance = g->index;
    s->at_ms = cg_mono_ms();
    s->method = cg_strdup(cg_http_req_method(req) == CG_HTTP_GET ? "GET" : "POST");
    s->uri = cgt_strdup_or_null(cg_http_req_uri(req));
    s->path = cgt_strdup_or_null(cg_http_req_path(req));
    s->sig = cgt_strdup_or_null(cg_http_req_header(req, "X-Twilio-Signature"));
    s->token = cgt_strdup_or_null(cg_http_req_header(req, "I-Twilio-Idempotency-Token"));
    s->ua = cgt_strdup_or_null(cg_http_req_header(req, "User-Agent"));
    s->ctype = cgt_strdup_or_null(cg_http_req_header(req, "Content-Type"));
    s->secret = cgt_strdup_or_null(cg_http_req_header(req, "x-vapi-secret"));
    size_t len;
    s->body = cg_strdup(cg_http_req_body(req, &len));
    if (s->sig) {
        char pub[512], inst[512];
        snprintf(pub, sizeof(pub), "%s%s", PUBLIC, s->uri);
        snprintf(inst, sizeof(inst), "%s%s", g->base, s->uri);
        const struct cg_form *form = NULL;
        if (strcmp(s->method, "POST") == 0) {
            const char *err;
            form = cg_http_req_form(req, &err);
            assert_non_null(form);
        }
        s->sig_ok_public = cg_twsig_validate(f->sc.twilio_auth_token, pub, form, s->sig);
        s->sig_ok_instance = cg_twsig_validate(f->sc.twilio_auth_token, inst, form, s->sig);
    }
    if (strncmp(s->path, "/slow", 5) == 0 && !f->slow_req) {
        f->slow_req = req;
        f->slow_timer = evtimer_new(f->base, on_slow, f);
        struct timeval tv = {0, 300000};
        evtimer_add(f->slow_timer, &tv);
        return;
    }
    char body[64];
    snprintf(body, sizeof(body), "<Response>%d</Response>", f->nseen);
    cg_http_reply(req, 200, "text/xml", body, strlen(body));
}

static void gate_start(struct fx *f, int i)
{
    struct gate *g = &f->gates[i];
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1",
                              .port = 0,
                              .max_body_bytes = 65536,
                              .max_header_bytes = 16384,
                              .timeout_seconds = 10};
    g->fx = f;
    g->index = i;
    g->httpd = cg_httpd_new(f->base, &o);
    assert_non_null(g->httpd);
    assert_int_equal(cg_httpd_route(g->httpd, "/*", CG_HTTP_GET | CG_HTTP_POST, on_gate, g), 0);
    char err[128];
    assert_int_equal(cg_httpd_listen(g->httpd, err, sizeof(err)), 0);
    g->port = cg_httpd_port(g->httpd);
    snprintf(g->base, sizeof(g->base), "http://127.0.0.1:%d", g->port);
}

/* instances: "01" both live gates, "d1" a dead port then gate 1, ... */
static void fx_init(struct fx *f, const char *layout, const char *scenario)
{
    memset(f, 0, sizeof(*f));
    char err[256];
    if (sim_scenario_parse(&f->sc, scenario, strlen(scenario), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    f->base = event_base_new();
    f->w.base = f->base;
    f->w.sc = &f->sc;
    f->w.httpc = cg_httpc_new(f->base, NULL);
    f->w.rng = sim_rng_new(1);
    f->w.fault_rng = sim_rng_new(2);
    f->w.report = sim_report_new(&f->w);
    gate_start(f, 0);
    gate_start(f, 1);
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/", cg_free_port());
    const char *inst[4];
    size_t n = 0;
    for (const char *p = layout; *p && n < 4; p++)
        inst[n++] = *p == 'd' ? dead : f->gates[*p - '0'].base;
    f->w.hooks = sim_hooks_new(&f->w, PUBLIC "/", inst, n);
}

static void fx_free(struct fx *f)
{
    if (f->slow_timer)
        event_free(f->slow_timer);
    sim_hooks_free(f->w.hooks);
    cg_httpc_free(f->w.httpc);
    for (int i = 0; i < 2; i++)
        cg_httpd_free(f->gates[i].httpd);
    sim_report_free(f->w.report);
    sim_rng_free(f->w.rng);
    sim_rng_free(f->w.fault_rng);
    event_base_free(f->base);
    sim_scenario_free(&f->sc);
    for (int i = 0; i < f->nseen; i++) {
        struct seen *s = &f->seen[i];
        free(s->method);
        free(s->uri);
        free(s->path);
        free(s->sig);
        free(s->token);
        free(s->ua);
        free(s->ctype);
        free(s->secret);
        free(s->body);
    }
}

struct result {
    int calls;
    long status;
    int dropped;
    char body[128];
    char error[128];
    double ewt;
    uint64_t at_ms;
};

static void on_result(const struct sim_hook_result *res, void *arg)
{
    struct result *r = arg;
    r->calls++;
    r->status = res->status;
    r->dropped = res->dropped;
    r->ewt = res->estimated_wait_s;
    r->at_ms = cg_mono_ms();
    snprintf(r->body, sizeof(r->body), "%.*s", (int)res->body_len, res->body ? res->body : "");
    snprintf(r->error, sizeof(r->error), "%s", res->error ? res->error : "");
}

static void run_until_calls(struct fx *f, struct result *r, int want)
{
    uint64_t deadline = cg_mono_ms() + 5000;
    while (r->calls < want && cg_mono_ms() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(r->calls, want);
}

static long counter(struct fx *f, const char *name)
{
    /* Counters are only visible in the report; parse it. */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    sim_report_finish(f->w.report, -1, -1, mem);
    fclose(mem);
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    free(buf);
    assert_non_null(root);
    json_t *v = json_object_get(json_object_get(root, "counters"), name);
    long n = v ? (long)json_integer_value(v) : 0;
    json_decref(root);
    return n;
}

static void test_twilio_post_signed(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "0", "{}");
    struct cg_form p;
    cg_form_init(&p);
    cg_form_add(&p, "CallSid", "CA0123");
    cg_form_add(&p, "From", "+1 555 0100");
    cg_form_add(&p, "Digits", "1&2=3");
    struct result r = {0};
    sim_hooks_twilio(f.w.hooks, "POST", PUBLIC "/twilio/voice?x=1&y=a%20b", &p, NULL, on_result,
                     &r);
    cg_form_free(&p);
    assert_int_equal(r.calls, 0); /* never from inside the call */
    run_until_calls(&f, &r, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "<Response>1</Response>");
    assert_true(r.ewt == -1);
    assert_int_equal(f.nseen, 1);
    struct seen *s = &f.seen[0];
    assert_string_equal(s->method, "POST");
    assert_string_equal(s->uri, "/twilio/voice?x=1&y=a%20b");
    assert_true(s->sig_ok_public);
    assert_false(s->sig_ok_instance);
    assert_string_equal(s->ua, "TwilioProxy/1.1");
    assert_string_equal(s->ctype, "application/x-www-form-urlencoded");
    assert_non_null(s->token);
    assert_true(strlen(s->token) >= 32);
    assert_null(s->secret);
    assert_non_null(strstr(s->body, "From=%2B1+555+0100"));
    fx_free(&f);
}

static void test_twilio_get_signed(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "0", "{}");
    struct cg_form p;
    cg_form_init(&p);
    cg_form_add(&p, "QueueTime", "12");
    cg_form_add(&p, "CallSid", "CA9");
    struct result r = {0};
    sim_hooks_twilio(f.w.hooks, "GET", PUBLIC "/twilio/wait?q=1", &p, NULL, on_result, &r);
    sim_hooks_twilio(f.w.hooks, "GET", PUBLIC "/twilio/wait", NULL, NULL, on_result, &r);
    cg_form_free(&p);
    run_until_calls(&f, &r, 2);
    assert_int_equal(f.nseen, 2);
    for (int i = 0; i < 2; i++) {
        struct seen *s = &f.seen[i];
        assert_string_equal(s->method, "GET");
        assert_true(s->sig_ok_public);
        assert_null(s->ctype);
        if (strstr(s->uri, "q=1"))
            assert_string_equal(s->uri, "/twilio/wait?q=1&QueueTime=12&CallSid=CA9");
        else
            assert_string_equal(s->uri, "/twilio/wait");
    }
    fx_free(&f);
}

static void test_round_robin(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "01", "{}");
    struct result r = {0};
    for (int i = 0; i < 6; i++)
        sim_hooks_vapi(f.w.hooks, PUBLIC "/call-ended", "{\"message\":{}}", NULL, on_result, &r);
    run_until_calls(&f, &r, 6);
    int per[2] = {0, 0};
    for (int i = 0; i < f.nseen; i++) {
        per[f.seen[i].instance]++;
        assert_string_equal(f.seen[i].path, "/call-ended");
        assert_string_equal(f.seen[i].secret, "sim-vapi-secret");
        assert_string_equal(f.seen[i].ctype, "application/json");
        assert_string_equal(f.seen[i].body, "{\"message\":{}}");
        assert_null(f.seen[i].sig);
    }
    assert_int_equal(per[0], 3);
    assert_int_equal(per[1], 3);
    fx_free(&f);
}

static void test_failover(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "d1", "{}");
    struct result r = {0};
    for (int i = 0; i < 4; i++)
        sim_hooks_twilio(f.w.hooks, "POST", PUBLIC "/twilio/status", NULL, NULL, on_result, &r);
    run_until_calls(&f, &r, 4);
    assert_int_equal(r.status, 200);
    assert_int_equal(f.nseen, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f.seen[i].instance, 1);
        assert_true(f.seen[i].sig_ok_public);
    }
    assert_int_equal(counter(&f, "hooks.twilio.failover"), 2);
    fx_free(&f);

    /* A single dead instance: nowhere to fail over to. */
    fx_init(&f, "d", "{}");
    memset(&r, 0, sizeof(r));
    sim_hooks_twilio(f.w.hooks, "POST", PUBLIC "/twilio/status", NULL, NULL, on_result, &r);
    run_until_calls(&f, &r, 1);
    assert_int_equal(r.status, 0);
    assert_true(r.error[0] != '\0');
    assert_int_equal(r.dropped, 0);
    fx_free(&f);
}

static void test_outside_public_url(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "0", "{}");
    char url[128];
    snprintf(url, sizeof(url), "%s/elsewhere?a=1", f.gates[1].base);
    struct result r = {0};
    sim_hooks_twilio(f.w.hooks, "POST", url, NULL, NULL, on_result, &r);
    run_until_calls(&f, &r, 1);
    assert_int_equal(f.nseen, 1);
    assert_int_equal(f.seen[0].instance, 1);
    assert_false(f.seen[0].sig_ok_public);
    assert_true(f.seen[0].sig_ok_instance); /* signed over what was requested */
    fx_free(&f);
}

static void test_drop(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "0", "{\"twilio\":{\"webhooks\":{\"drop\":1}}}");
    struct result r = {0};
    sim_hooks_twilio(f.w.hooks, "POST", PUBLIC "/twilio/status", NULL, &f.sc.twilio_hooks,
                     on_result, &r);
    assert_int_equal(r.calls, 0);
    run_until_calls(&f, &r, 1);
    assert_int_equal(r.dropped, 1);
    assert_int_equal(r.status, 0);
    cgt_run_for(f.base, 100);
    assert_int_equal(f.nseen, 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(counter(&f, "hooks.twilio.dropped"), 1);
    fx_free(&f);
}

static void test_duplicate(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "01", "{\"vapi\":{\"webhooks\":{\"duplicate\":1}}}");
    struct result r = {0};
    sim_hooks_vapi(f.w.hooks, PUBLIC "/call-ended", "{\"n\":1}", &f.sc.vapi_hooks, on_result, &r);
    run_until_calls(&f, &r, 1);
    cgt_run_for(f.base, 200);
    assert_int_equal(r.calls, 1);
    assert_int_equal(f.nseen, 2);
    assert_string_equal(f.seen[0].body, f.seen[1].body);
    assert_int_equal(r.status, 200);
    fx_free(&f);

    /* Twilio duplicates carry the same idempotency token and signature. */
    fx_init(&f, "0", "{\"twilio\":{\"webhooks\":{\"duplicate\":1}}}");
    memset(&r, 0, sizeof(r));
    struct cg_form p;
    cg_form_init(&p);
    cg_form_add(&p, "CallStatus", "completed");
    sim_hooks_twilio(f.w.hooks, "POST", PUBLIC "/twilio/status", &p, &f.sc.twilio_hooks, on_result,
                     &r);
    cg_form_free(&p);
    run_until_calls(&f, &r, 1);
    cgt_run_for(f.base, 200);
    assert_int_equal(r.calls, 1);
    assert_int_equal(f.nseen, 2);
    assert_string_equal(f.seen[0].token, f.seen[1].token);
    assert_string_equal(f.seen[0].sig, f.seen[1].sig);
    assert_true(f.seen[0].sig_ok_public && f.seen[1].sig_ok_public);
    fx_free(&f);
}

static void test_delay(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "0",
            "{\"twilio\":{\"webhooks\":{\"delay\":{\"dist\":\"const\",\"value_s\":0.3}}}}");
    struct result r = {0};
    uint64_t t0 = cg_mono_ms();
    sim_hooks_twilio(f.w.hooks, "POST", PUBLIC "/twilio/status", NULL, &f.sc.twilio_hooks,
                     on_result, &r);
    run_until_calls(&f, &r, 1);
    assert_int_equal(r.status, 200);
    assert_true(f.seen[0].at_ms - t0 >= 290);
    fx_free(&f);
}

static void test_reorder(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "0", "{\"vapi\":{\"webhooks\":{\"reorder\":1}}}");
    struct result a = {0}, b = {0};
    uint64_t t0 = cg_mono_ms();
    /* The first is held back; the second (no faults) overtakes it. */
    sim_hooks_vapi(f.w.hooks, PUBLIC "/call-ended", "{\"n\":1}", &f.sc.vapi_hooks, on_result, &a);
    sim_hooks_vapi(f.w.hooks, PUBLIC "/call-ended", "{\"n\":2}", NULL, on_result, &b);
    run_until_calls(&f, &a, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(f.nseen, 2);
    assert_string_equal(f.seen[0].body, "{\"n\":2}");
    assert_string_equal(f.seen[1].body, "{\"n\":1}");
    assert_true(a.at_ms - t0 < 900); /* released by the overtaker, not the cap */

    /* Nothing overtakes: sent after the 1 s cap. */
    struct result c = {0};
    t0 = cg_mono_ms();
    sim_hooks_vapi(f.w.hooks, PUBLIC "/call-ended", "{\"n\":3}", &f.sc.vapi_hooks, on_result, &c);
    run_until_calls(&f, &c, 1);
    assert_true(c.at_ms - t0 >= 990);
    assert_int_equal(c.status, 200);
    /* The other side is not held behind. */
    fx_free(&f);
}

static void test_free_with_pending(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "0",
            "{\"twilio\":{\"webhooks\":{\"delay\":{\"dist\":\"const\",\"value_s\":5}}},"
            "\"vapi\":{\"webhooks\":{\"reorder\":1}}}");
    struct result r = {0};
    sim_hooks_twilio(f.w.hooks, "POST", PUBLIC "/a", NULL, &f.sc.twilio_hooks, on_result, &r);
    sim_hooks_vapi(f.w.hooks, PUBLIC "/b", "{}", &f.sc.vapi_hooks, on_result, &r);
    sim_hooks_vapi(f.w.hooks, PUBLIC "/slow", "{}", NULL, on_result, &r);
    /* Let /slow reach the gate, then free while it is in flight. */
    uint64_t deadline = cg_mono_ms() + 2000;
    while (f.nseen == 0 && cg_mono_ms() < deadline)
        event_base_loop(f.base, EVLOOP_ONCE);
    assert_int_equal(f.nseen, 1);
    sim_hooks_free(f.w.hooks);
    f.w.hooks = NULL;
    cgt_run_for(f.base, 500); /* the slow answer comes back to nobody */
    assert_int_equal(r.calls, 0);
    assert_null(f.slow_req);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twilio_post_signed),
        cmocka_unit_test(test_twilio_get_signed),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_outside_public_url),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_free_with_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
