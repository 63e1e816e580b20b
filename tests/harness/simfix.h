/*
 * simfix.h - what the simulator's unit tests that drive its APIs over
 * loopback share (test_sim_vapi.c, test_sim_vapi_outbound.c): a world
 * (sim.h) around a new event base, loopback HTTP servers, and requests sent
 * with the world's HTTP client, run to their answer.
 *
 * Use: simfix_world() fills the world's common parts from a scenario; the
 * test adds the modules it tests (hooks, vapi, ...) and frees them before
 * simfix_world_free(). A response's json is the test's to json_decref.
 * Included once per test file (the simulator's headers are not the
 * harness library's): every helper is static, and those a file does not
 * use are no warning (SIMFIX_FN).
 */
#ifndef CGT_SIMFIX_H
#define CGT_SIMFIX_H

#include "harness.h"

#include "report.h"
#include "rcheck.h"
#include "rng.h"
#include "sim.h"

#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/clock.h"
#include "base/json.h"
#include "net/httpc.h"
#include "net/httpd.h"

#define SIMFIX_FN __attribute__((unused))

/* Parses scenario into sc and sets up w around a new event base (w->base):
 * the clock's start, the HTTP client, the random streams and the report. */
static SIMFIX_FN void simfix_world(struct sim_world *w, struct sim_scenario *sc,
                                   const char *scenario)
{
    char err[256];
    if (sim_scenario_parse(sc, scenario, strlen(scenario), err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    w->base = event_base_new();
    assert_non_null(w->base);
    w->sc = sc;
    w->start_ms = cg_mono_ms();
    w->httpc = cg_httpc_new(w->base, NULL);
    w->rng = sim_rng_new(sc->seed);
    w->fault_rng = sim_rng_new(sc->seed ^ 0x5eed);
    w->report = sim_report_new(w);
}

/* Frees what simfix_world() made, the route checker (if any) and the
 * scenario; the modules must be freed before. */
static SIMFIX_FN void simfix_world_free(struct sim_world *w, struct sim_scenario *sc)
{
    cg_httpc_free(w->httpc);
    sim_rcheck_free(w->rcheck);
    sim_report_free(w->report);
    sim_rng_free(w->rng);
    sim_rng_free(w->fault_rng);
    event_base_free(w->base);
    sim_scenario_free(sc);
}

/* A loopback HTTP server on a free port, not yet listening. */
static SIMFIX_FN struct cg_httpd *simfix_httpd(struct event_base *base)
{
    struct cg_httpd_opts o = {.bind_address = "127.0.0.1",
                              .port = 0,
                              .max_body_bytes = 1 << 20,
                              .max_header_bytes = 16384,
                              .timeout_seconds = 10};
    struct cg_httpd *h = cg_httpd_new(base, &o);
    assert_non_null(h);
    return h;
}

/* Listens (routes added before); its base URL in url. */
static SIMFIX_FN void simfix_listen(struct cg_httpd *h, char *url, size_t n)
{
    char err[256];
    if (cg_httpd_listen(h, err, sizeof(err)) != 0)
        fail_msg("listen: %s", err);
    snprintf(url, n, "http://127.0.0.1:%d", cg_httpd_port(h));
}

/* ---- requests with the world's client, run to their answer ---- */

struct simfix_resp {
    int done;
    long status;
    json_t *json; /* the body parsed, or NULL */
    double retry_after;
    uint64_t ms;
};

static SIMFIX_FN void simfix_on_resp(const struct cg_httpc_result *res, void *arg)
{
    struct simfix_resp *r = arg;
    r->done = 1;
    r->status = res->status;
    r->retry_after = res->retry_after_s;
    r->ms = res->duration_us / 1000;
    char err[128];
    r->json = res->body_len
                  ? cg_json_parse(res->body, res->body_len, CG_JSON_MAX_DEPTH, err, sizeof(err))
                  : NULL;
}

/* method base_url+path with one header line (or NULL) and a body of
 * content type ctype (or none); fails the test after 5 s unanswered. */
static SIMFIX_FN void simfix_http(struct sim_world *w, const char *base_url, const char *method,
                                  const char *path, const char *header, const char *ctype,
                                  const char *body, struct simfix_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    const char *hdrs[2] = {header, NULL};
    struct cg_httpc_request req = {.method = method,
                                   .url = url,
                                   .body = body,
                                   .body_len = body ? strlen(body) : 0,
                                   .content_type = ctype,
                                   .headers = header ? hdrs : NULL};
    memset(r, 0, sizeof(*r));
    assert_int_equal(cg_httpc_send(w->httpc, &req, simfix_on_resp, r), 0);
    assert_int_equal(cgt_run_until(w->base, &r->done, 5000), 0);
}

/* A string member at a path of j (cg_json_str), "(absent)" when missing. */
static SIMFIX_FN const char *str(const json_t *j, const char *path)
{
    const char *s = cg_json_str(j, path);
    return s ? s : "(absent)";
}

#endif
