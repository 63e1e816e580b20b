/*
 * main.c - callgate-sim's command line: builds the world, waits for the
 * gate to be ready, runs the scenario, lets it settle and writes the
 * report. Exit status: 0 every invariant holds, 1 some failed, 2 usage or
 * scenario error.
 */
#include "base/fmacros.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/alloc.h"
#include "callers.h"
#include "base/clock.h"
#include "dialer.h"
#include "hooks.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "base/json.h"
#include "base/log.h"
#include "rcheck.h"
#include "callbacks.h"
#include "report.h"
#include "rng.h"
#include "scenario.h"
#include "scenario_routes.h"
#include "sim.h"
#include "taskrouter.h"
#include "vapi.h"
#include "wtscore.h"

#define MAX_GATES         16
#define READY_POLL_MS     50
#define READY_TIMEOUT_MS  30000
#define SETTLE_POLL_MS    100
#define SETTLE_TIMEOUT_MS 5000
#define TICK_MS           100
#define HEALTH_TIMEOUT_MS 2000
/* Requests the simulator's client has in libcurl at once (below). */
#define SIM_MAX_ACTIVE 256

enum phase { PH_READY, PH_RUN, PH_SETTLE, PH_DONE };

struct opts {
    int serve;
    const char *scenario;
    const char *public_url;
    char *gates[MAX_GATES];
    size_t ngates;
    int port;
    const char *port_file;
    const char *report;
    int progress;
    const char *health_url;
    const char *queue_name;
    const char *queue_file;
    const char *wait_times_url; /* serve: a callgate whose /wait-times is scored */
    long sample_ms;
};

struct run {
    struct opts o;
    struct sim_scenario sc;
    struct sim_world w;
    enum phase phase;
    char health_url[1024];
    int polling;        /* a health request is in flight */
    uint64_t deadline;  /* mono ms: end of the ready wait or of the settle */
    struct event *poll; /* one-shot: next health poll */
    struct event *tick;
    struct event *progress;
    struct event *sigint, *sigterm;
    long final_active, final_waiting;
    int exit_code;
    int shutting_down;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: callgate-sim --scenario FILE --public-url URL --gate URL[,URL...]\n"
               "                    [--port N] [--port-file FILE] [--report FILE] [--progress]\n"
               "                    [--gate-health URL] [--queue NAME [--queue-file FILE]]\n"
               "       callgate-sim serve [--port N] [--port-file FILE] [--scenario FILE]\n"
               "                    [--public-url URL] [--gate URL[,URL...]] [--report FILE]\n"
               "                    [--wait-times URL [--sample-ms N]]\n"
               "\n"
               "Plays Twilio, Vapi and the callers against callgate. The scenario starts when\n"
               "the gate's health URL (default <first gate>/health) answers 200; the JSON\n"
               "report goes to --report or stdout. Exit status: 0 all invariants hold,\n"
               "1 some failed, 2 usage or scenario error.\n"
               "\n"
               "`serve` runs the APIs only, until SIGTERM or SIGINT; with --report it then\n"
               "writes the report (and exits 1 if an invariant failed). --wait-times URL\n"
               "GETs URL/wait-times every --sample-ms (default 1000) and scores each\n"
               "TaskQueue's estimateSeconds (callgate) and waitTime (the seed's average)\n"
               "against the wait of the next task that entered that queue: the report's and\n"
               "/sim/status's taskrouter.accuracy. It needs a scenario with taskrouter queues.\n");
}

static int parse_port(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
    int i = 1;
    if (argc > 1 && strcmp(argv[1], "serve") == 0) {
        o->serve = 1;
        i = 2;
    }
    const char *gates = NULL;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--progress") == 0) {
            o->progress = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!val) {
            fprintf(stderr, "callgate-sim: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--scenario") == 0)
            o->scenario = val;
        else if (strcmp(a, "--public-url") == 0)
            o->public_url = val;
        else if (strcmp(a, "--gate") == 0)
            gates = val;
        else if (strcmp(a, "--port") == 0) {
            if (parse_port(val, &o->port) != 0) {
                fprintf(stderr, "callgate-sim: bad --port %s\n", val);
                return -1;
            }
        } else if (strcmp(a, "--port-file") == 0)
            o->port_file = val;
        else if (strcmp(a, "--report") == 0)
            o->report = val;
        else if (strcmp(a, "--gate-health") == 0)
            o->health_url = val;
        else if (strcmp(a, "--queue") == 0)
            o->queue_name = val;
        else if (strcmp(a, "--queue-file") == 0)
            o->queue_file = val;
        else if (strcmp(a, "--wait-times") == 0)
            o->wait_times_url = val;
        else if (strcmp(a, "--sample-ms") == 0) {
            char *end = NULL;
            errno = 0;
            long v = strtol(val, &end, 10);
            if (errno || !end || *end || v < 1 || v > 3600000) {
                fprintf(stderr, "callgate-sim: bad --sample-ms %s (1 to 3600000)\n", val);
                return -1;
            }
            o->sample_ms = v;
        } else {
            fprintf(stderr, "callgate-sim: unknown option %s\n", a);
            return -1;
        }
    }
    if (gates) {
        const char *p = gates;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            while (n > 0 && p[n - 1] == '/')
                n--;
            if (n > 0) {
                if (o->ngates == MAX_GATES) {
                    fprintf(stderr, "callgate-sim: at most %d gates\n", MAX_GATES);
                    return -1;
                }
                o->gates[o->ngates++] = cg_strndup(p, n);
            }
            p += n + (comma ? 1 : 0);
        }
    }
    if (!o->serve && (!o->scenario || !o->public_url || o->ngates == 0)) {
        fprintf(stderr, "callgate-sim: --scenario, --public-url and --gate are required\n");
        return -1;
    }
    if (!o->serve && (o->wait_times_url || o->sample_ms)) {
        fprintf(stderr, "callgate-sim: --wait-times and --sample-ms are for serve mode\n");
        return -1;
    }
    if (o->sample_ms && !o->wait_times_url) {
        fprintf(stderr, "callgate-sim: --sample-ms needs --wait-times\n");
        return -1;
    }
    if (o->serve && !o->public_url)
        o->public_url = o->ngates ? o->gates[0] : "http://127.0.0.1:3000";
    if (o->ngates == 0)
        o->gates[o->ngates++] = cg_strdup(o->public_url);
    return 0;
}

/* Writes text to path through a temporary file, so readers never see half. */
static int write_file_atomic(const char *path, const char *text)
{
    size_t n = strlen(path) + 8;
    char *tmp = cg_malloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "callgate-sim: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

static uint64_t ms_left(uint64_t deadline)
{
    uint64_t now = cg_mono_ms();
    return deadline > now ? deadline - now : 0;
}

static void arm_ms(struct event *ev, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (evtimer_add(ev, &tv) != 0)
        cg_log_error("sim timer failed", "");
}

/* ---- the end ---- */

static void finalize(struct run *r)
{
    if (r->phase == PH_DONE)
        return;
    r->phase = PH_DONE;
    struct sim_world *w = &r->w;
    w->finished = 1;
    if (w->twilio)
        sim_twilio_finish(w);
    sim_dialer_stop(w->dialer);
    FILE *out = stdout;
    char *tmp = NULL;
    if (r->o.report) {
        size_t n = strlen(r->o.report) + 8;
        tmp = cg_malloc(n);
        snprintf(tmp, n, "%s.tmp", r->o.report);
        out = fopen(tmp, "w");
        if (!out) {
            fprintf(stderr, "callgate-sim: cannot write %s: %s\n", tmp, strerror(errno));
            out = stdout;
            free(tmp);
            tmp = NULL;
        }
    }
    sim_cb_finish(w, stderr);
    int failed = sim_report_finish(w->report, r->final_active, r->final_waiting, out);
    if (tmp) {
        if (fclose(out) != 0 || rename(tmp, r->o.report) != 0) {
            fprintf(stderr, "callgate-sim: cannot write %s: %s\n", r->o.report, strerror(errno));
            failed++;
        }
        free(tmp);
    }
    r->exit_code = failed ? 1 : 0;
    fprintf(stderr, "callgate-sim: %s (%d invariant%s failed)\n", failed ? "FAIL" : "PASS", failed,
            failed == 1 ? "" : "s");
    event_base_loopbreak(w->base);
}

/* ---- gate health ---- */

static void poll_health(struct run *r);

static void read_counts(struct run *r, const struct cg_httpc_result *res)
{
    r->final_active = r->final_waiting = -1;
    if (res->error || res->status != 200)
        return;
    char err[128];
    json_t *root = cg_json_parse(res->body, res->body_len, CG_JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        return;
    long long v;
    if (cg_json_int(root, "activeCalls", &v) == 0)
        r->final_active = (long)v;
    if (cg_json_int(root, "callsInQueue", &v) == 0)
        r->final_waiting = (long)v;
    json_decref(root);
}

/* 1 while the gate's /health says admission waits for the repair of its
 * slots (a fresh Redis: the repair lists this simulator's Vapi calls first):
 * callers arriving then would wait for it, which no scenario means to
 * measure. */
static int admission_paused(const struct cg_httpc_result *res)
{
    char err[128];
    json_t *root = cg_json_parse(res->body, res->body_len, CG_JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        return 0;
    json_t *a = json_object_get(root, "admission");
    int paused = json_is_string(a) && strcmp(json_string_value(a), "repairing") == 0;
    json_decref(root);
    return paused;
}

static void start_scenario(struct run *r)
{
    struct sim_world *w = &r->w;
    r->phase = PH_RUN;
    w->start_ms = cg_mono_ms();
    if (w->start_ms == 0)
        w->start_ms = 1;
    fprintf(stderr, "callgate-sim: gate ready, scenario \"%s\" starts (%zu callers)\n", r->sc.name,
            sim_callers_count(w->callers));
    /* The report integrates from the start, not from process start. */
    sim_report_set_clock(w->report, NULL, NULL);
    if (sim_callers_start(w->callers) != 0 || sim_dialer_start(w->dialer) != 0) {
        sim_report_fail(w->report, "arrivals", "could not arm the arrival timer");
        finalize(r);
        return;
    }
    arm_ms(r->tick, TICK_MS);
    if (r->o.progress)
        arm_ms(r->progress, 1000);
}

static int settled(const struct run *r)
{
    const struct sim_scenario *sc = &r->sc;
    return (sc->expect_final_active < 0 || r->final_active == sc->expect_final_active) &&
           (sc->expect_final_waiting < 0 || r->final_waiting == sc->expect_final_waiting) &&
           r->final_active >= 0 && r->final_waiting >= 0;
}

static void on_health(const struct cg_httpc_result *res, void *arg)
{
    struct run *r = arg;
    r->polling = 0;
    if (r->shutting_down || r->phase == PH_DONE)
        return;
    if (r->phase == PH_READY) {
        if (res->status == 200 && !admission_paused(res)) {
            start_scenario(r);
            return;
        }
        if (ms_left(r->deadline) == 0) {
            char last[96], d[512];
            if (res->error)
                snprintf(last, sizeof(last), "%.80s", res->error);
            else if (res->status == 200)
                snprintf(last, sizeof(last), "200, but admission still waits for its repair");
            else
                snprintf(last, sizeof(last), "HTTP %ld", res->status);
            snprintf(d, sizeof(d),
                     "%.300s did not answer 200 with admission running within %d s (last: %s)",
                     r->health_url, READY_TIMEOUT_MS / 1000, last);
            sim_report_fail(r->w.report, "gate_ready", d);
            finalize(r);
            return;
        }
        arm_ms(r->poll, READY_POLL_MS);
        return;
    }
    if (r->phase == PH_SETTLE) {
        read_counts(r, res);
        if (settled(r) || ms_left(r->deadline) == 0) {
            finalize(r);
            return;
        }
        arm_ms(r->poll, SETTLE_POLL_MS);
    }
}

static void poll_health(struct run *r)
{
    if (r->polling || r->phase == PH_DONE)
        return;
    struct cg_httpc_request req = {
        .method = "GET", .url = r->health_url, .timeout_ms = HEALTH_TIMEOUT_MS};
    if (cg_httpc_send(r->w.httpc, &req, on_health, r) != 0) {
        sim_report_fail(r->w.report, "gate_health", "cannot send the health request");
        finalize(r);
        return;
    }
    r->polling = 1;
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poll_health(arg);
}

static void begin_settle(struct run *r, long timeout_ms)
{
    if (r->phase == PH_SETTLE || r->phase == PH_DONE)
        return;
    r->phase = PH_SETTLE;
    evtimer_del(r->tick);
    r->deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    evtimer_del(r->poll);
    poll_health(r);
}

/* ---- the run ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    struct sim_world *w = &r->w;
    if (r->phase != PH_RUN)
        return;
    double now = sim_now_s(w);
    int arrivals_done = sim_callers_done(w->callers);
    size_t own_vapi = sim_vapi_live(w) - (size_t)r->sc.vapi_external_calls;
    if (arrivals_done && sim_twilio_live(w) == 0 && own_vapi == 0 && sim_cb_pending(w) == 0 &&
        sim_dialer_done(w->dialer)) {
        begin_settle(r, SETTLE_TIMEOUT_MS);
        return;
    }
    if (now >= sim_callers_end_s(w->callers) + r->sc.drain_s) {
        sim_report_count(w->report, "run.drain_timeout");
        fprintf(stderr,
                "callgate-sim: drain time over with %zu Twilio and %zu Vapi calls live, %zu "
                "callbacks owed\n",
                sim_twilio_live(w), own_vapi, sim_cb_pending(w));
        begin_settle(r, SETTLE_TIMEOUT_MS);
        return;
    }
    arm_ms(r->tick, TICK_MS);
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    if (r->phase != PH_RUN && r->phase != PH_SETTLE)
        return;
    char line[256];
    sim_report_progress(r->w.report, line, sizeof(line));
    fprintf(stderr, "%s\n", line);
    arm_ms(r->progress, 1000);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct run *r = arg;
    fprintf(stderr, "callgate-sim: signal %d, finishing\n", (int)sig);
    if (r->o.serve) {
        /* Nothing to settle: no callers were played. The report judges the
         * simulated sides only; serve mode knows no gate to read the final
         * counts from. */
        if (r->o.report) {
            r->sc.expect_final_active = r->sc.expect_final_waiting = -1;
            finalize(r);
        }
        event_base_loopbreak(r->w.base);
        return;
    }
    if (r->phase == PH_READY) {
        sim_report_fail(r->w.report, "interrupted", "stopped before the gate was ready");
        finalize(r);
    } else if (r->phase == PH_RUN) {
        sim_report_fail(r->w.report, "interrupted", "stopped by a signal before the end");
        begin_settle(r, 0);
    } else {
        finalize(r);
    }
}

static const char *phase_name(enum phase p)
{
    switch (p) {
    case PH_READY:
        return "waiting-for-gate";
    case PH_RUN:
        return "running";
    case PH_SETTLE:
        return "settling";
    case PH_DONE:
    default:
        return "done";
    }
}

static void on_status(struct cg_http_req *req, void *arg)
{
    struct run *r = arg;
    struct sim_world *w = &r->w;
    char *s = sim_report_status_json(w->report);
    char err[64];
    json_t *o = cg_json_parse(s, strlen(s), CG_JSON_MAX_DEPTH, err, sizeof(err));
    free(s);
    if (!o)
        o = json_object();
    json_object_set_new(o, "phase", json_string(r->o.serve ? "serve" : phase_name(r->phase)));
    json_object_set_new(o, "scenario", json_string(r->sc.name));
    json_object_set_new(o, "twilioLive",
                        json_integer((json_int_t)(w->twilio ? sim_twilio_live(w) : 0)));
    json_object_set_new(o, "twilioWaiting",
                        json_integer((json_int_t)(w->twilio ? sim_twilio_waiting(w) : 0)));
    json_object_set_new(o, "vapiLive", json_integer((json_int_t)sim_vapi_live(w)));
    json_object_set_new(o, "vapiPeak",
                        json_integer((json_int_t)(w->vapi ? sim_vapi_peak(w->vapi) : 0)));
    json_object_set_new(
        o, "arrived", json_integer((json_int_t)(w->callers ? sim_callers_arrived(w->callers) : 0)));
    json_object_set_new(o, "callers",
                        json_integer((json_int_t)(w->callers ? sim_callers_count(w->callers) : 0)));
    char *body = cg_json_dumps(o);
    json_decref(o);
    cg_http_reply_json(req, 200, body);
    free(body);
}

/* ---- setup and teardown ---- */

static int build(struct run *r)
{
    struct sim_world *w = &r->w;
    char err[512];
    w->sc = &r->sc;
    w->base = event_base_new();
    if (!w->base) {
        fprintf(stderr, "callgate-sim: cannot create the event loop\n");
        return -1;
    }
    struct cg_httpd_opts ho = {.bind_address = "127.0.0.1",
                               .port = r->o.port,
                               .max_body_bytes = 1024 * 1024,
                               .max_header_bytes = 32 * 1024,
                               .timeout_seconds = 60};
    w->httpd = cg_httpd_new(w->base, &ho);
    /* Requests in libcurl at once are bounded (the rest wait in the
     * client's queue, in order): libcurl walks its transfers and its
     * connections to a host on each request and completion, so a burst of
     * thousands of callers, each webhook on a connection of its own, made
     * the simulator quadratic and slower than the gate it measures (the
     * gate's replies sat unread for seconds). */
    struct cg_httpc_opts co = {.user_agent = "callgate-sim/" CG_VERSION,
                               .default_timeout_ms = 20000,
                               .max_active = SIM_MAX_ACTIVE,
                               .max_idle_connections = SIM_MAX_ACTIVE};
    w->httpc = cg_httpc_new(w->base, &co);
    if (!w->httpd || !w->httpc) {
        fprintf(stderr, "callgate-sim: cannot create the HTTP server or client\n");
        return -1;
    }
    w->rng = sim_rng_new(r->sc.seed);
    w->fault_rng = sim_rng_new(r->sc.seed ^ 0x5eedULL);
    w->report = sim_report_new(w);
    w->callbacks = sim_cb_new(w, r->sc.seed ^ 0xcbcbULL);
    w->hooks = sim_hooks_new(w, r->o.public_url, (const char *const *)r->o.gates, r->o.ngates);
    if (!r->o.serve) {
        /* Callers first: their draws come before any other use of w->rng. */
        w->callers = sim_callers_new(w, err, sizeof(err));
        if (!w->callers) {
            fprintf(stderr, "callgate-sim: %s\n", err);
            return -1;
        }
    }
    /* Routes: one organization limit shared by every route, judged by the
     * route checker; the dialer (when the scenario has one) calls the
     * gates' admin API. */
    if (r->sc.routes)
        w->rcheck = sim_rcheck_new(r->sc.routes, r->sc.vapi_limit, r->sc.vapi_external_calls);
    if (!r->o.serve && r->sc.routes && r->sc.routes->has_dialer &&
        (w->dialer = sim_dialer_new(w, (const char *const *)r->o.gates, r->o.ngates)) == NULL) {
        fprintf(stderr, "callgate-sim: cannot set up the dialer\n");
        return -1;
    }
    w->vapi = sim_vapi_new(w);
    w->twilio = sim_twilio_new(w);
    if (!w->vapi || !w->twilio) {
        fprintf(stderr, "callgate-sim: cannot set up the simulated APIs\n");
        return -1;
    }
    /* TaskRouter runs from now on, in serve mode too, until the process
     * stops; no callers are needed for it. */
    if (r->sc.tr_queues > 0 && (w->taskrouter = sim_taskrouter_new(w)) == NULL) {
        fprintf(stderr, "callgate-sim: cannot set up TaskRouter\n");
        return -1;
    }
    if (r->o.wait_times_url) {
        if (!w->taskrouter) {
            fprintf(stderr, "callgate-sim: --wait-times needs a scenario with taskrouter queues\n");
            return -1;
        }
        w->wtscore = sim_wtscore_new(w->base, w->httpc, w->taskrouter, r->o.wait_times_url,
                                     r->o.sample_ms, 0);
        if (!w->wtscore) {
            fprintf(stderr, "callgate-sim: cannot set up the wait-time scorer\n");
            return -1;
        }
    }
    if (cg_httpd_route(w->httpd, "/sim/status", CG_HTTP_GET, on_status, r) != 0) {
        fprintf(stderr, "callgate-sim: cannot add /sim/status\n");
        return -1;
    }
    if (cg_httpd_listen(w->httpd, err, sizeof(err)) != 0) {
        fprintf(stderr, "callgate-sim: cannot listen: %s\n", err);
        return -1;
    }
    int port = cg_httpd_port(w->httpd);
    fprintf(stderr, "callgate-sim listening on http://127.0.0.1:%d\n", port);
    if (r->o.port_file) {
        char text[16];
        snprintf(text, sizeof(text), "%d\n", port);
        if (write_file_atomic(r->o.port_file, text) != 0)
            return -1;
    }
    if (r->o.queue_name) {
        const char *sid = sim_twilio_queue_sid(w, r->o.queue_name);
        if (!sid) {
            fprintf(stderr, "callgate-sim: bad --queue name\n");
            return -1;
        }
        fprintf(stderr, "callgate-sim queue %s %s\n", r->o.queue_name, sid);
        if (r->o.queue_file) {
            char text[64];
            snprintf(text, sizeof(text), "%s\n", sid);
            if (write_file_atomic(r->o.queue_file, text) != 0)
                return -1;
        }
    }
    r->poll = evtimer_new(w->base, on_poll_timer, r);
    r->tick = evtimer_new(w->base, on_tick, r);
    r->progress = evtimer_new(w->base, on_progress, r);
    r->sigint = evsignal_new(w->base, SIGINT, on_signal, r);
    r->sigterm = evsignal_new(w->base, SIGTERM, on_signal, r);
    if (!r->poll || !r->tick || !r->progress || !r->sigint || !r->sigterm ||
        evsignal_add(r->sigint, NULL) != 0 || evsignal_add(r->sigterm, NULL) != 0) {
        fprintf(stderr, "callgate-sim: cannot set up timers\n");
        return -1;
    }
    return 0;
}

static void teardown(struct run *r)
{
    struct sim_world *w = &r->w;
    r->shutting_down = 1;
    sim_dialer_stop(w->dialer);
    struct event *evs[] = {r->poll, r->tick, r->progress, r->sigint, r->sigterm};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    sim_callers_free(w->callers);
    w->callers = NULL;
    /* Hooks first: nothing calls back into the modules being freed. */
    sim_hooks_free(w->hooks);
    w->hooks = NULL;
    if (w->twilio)
        sim_twilio_free(w->twilio);
    w->twilio = NULL;
    sim_vapi_free(w->vapi);
    w->vapi = NULL;
    /* The scorer before the client (its request out is cancelled there)
     * and before the model it reads. */
    sim_wtscore_free(w->wtscore);
    w->wtscore = NULL;
    sim_taskrouter_free(w->taskrouter);
    w->taskrouter = NULL;
    if (w->httpc)
        cg_httpc_free(w->httpc);
    /* After the client: its cancelled requests still call back into it. */
    sim_dialer_free(w->dialer);
    w->dialer = NULL;
    if (w->httpd)
        cg_httpd_free(w->httpd);
    sim_report_free(w->report);
    sim_rcheck_free(w->rcheck);
    w->rcheck = NULL;
    sim_cb_free(w->callbacks);
    w->callbacks = NULL;
    if (w->rng)
        sim_rng_free(w->rng);
    if (w->fault_rng)
        sim_rng_free(w->fault_rng);
    if (w->base)
        event_base_free(w->base);
    sim_scenario_free(&r->sc);
    for (size_t i = 0; i < r->o.ngates; i++)
        free(r->o.gates[i]);
}

int main(int argc, char **argv)
{
    static struct run run; /* zeroed; lives as long as the process */
    struct run *r = &run;
    signal(SIGPIPE, SIG_IGN);
    r->final_active = r->final_waiting = -1;
    if (parse_args(&r->o, argc, argv) != 0) {
        usage(stderr);
        for (size_t i = 0; i < r->o.ngates; i++)
            free(r->o.gates[i]);
        return 2;
    }
    char err[512];
    int rc = r->o.scenario ? sim_scenario_load(&r->sc, r->o.scenario, err, sizeof(err))
                           : sim_scenario_parse(&r->sc, "{}", 2, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "callgate-sim: scenario: %s\n", err);
        sim_scenario_free(&r->sc);
        for (size_t i = 0; i < r->o.ngates; i++)
            free(r->o.gates[i]);
        return 2;
    }
    if (build(r) != 0) {
        teardown(r);
        return 2;
    }
    if (!r->o.serve) {
        if (r->o.health_url)
            snprintf(r->health_url, sizeof(r->health_url), "%s", r->o.health_url);
        else
            snprintf(r->health_url, sizeof(r->health_url), "%s/health", r->o.gates[0]);
        r->phase = PH_READY;
        r->deadline = cg_mono_ms() + READY_TIMEOUT_MS;
        poll_health(r);
    } else {
        /* APIs only: time runs from now for the modules' timestamps. */
        r->w.start_ms = cg_mono_ms();
        sim_report_set_clock(r->w.report, NULL, NULL);
    }
    if (event_base_dispatch(r->w.base) < 0)
        fprintf(stderr, "callgate-sim: event loop failed\n");
    /* serve: 0 unless a report was asked for, which then gives the verdict. */
    int code = r->o.serve && !r->o.report ? 0 : r->exit_code;
    if (r->phase != PH_DONE && (!r->o.serve || r->o.report))
        code = 1;
    teardown(r);
    return code;
}
