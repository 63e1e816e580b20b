/*
 * runner.c - runs one simulator scenario end to end: a private Redis, one
 * or more callgate processes configured against callgate-sim, and the
 * simulator playing Twilio, Vapi and the callers. The simulator judges the
 * invariants (never over the limit, no lost caller, counters true at the
 * end) and exits non-zero when one fails; this runner adds the chaos the
 * scenario's plan asks for (Redis killed and restarted, Redis frozen, an
 * instance killed, a Sentinel failover of a master with one replica), checks the gate's own
 * counters in Redis against the simulator's truth, and checks that every instance that was not
 * killed is still alive and stops cleanly.
 *
 * Chaos is timed in scenario seconds: the runner waits until the simulator
 * reports the scenario running (GET /sim/status), however long the
 * processes took to start (sanitizers, valgrind, a loaded machine).
 * Outages of Twilio's and Vapi's APIs are the simulator's own
 * (twilio.outages, vapi.outages in the scenario file, sim/outage.h).
 *
 * When anything fails, the tail of every callgate log follows the
 * simulator's output and report, and the logs are kept (their paths are
 * printed); CG_SCENARIO_KEEP_LOGS=1 keeps them after a pass too.
 *
 * A scenario with "routes" (sim/scenario_routes.h) runs callgate with
 * ROUTES_FILE: the scenario's list with each route's simulator-only
 * "callers" member left out, and ADMIN_TOKEN set to the dialer's token.
 *
 * Usage: scenario_runner tests/scenarios/<name>.json
 */
#include "harness.h"
#include "redisx.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo/proc.h"

#define MAX_INSTANCES    3
#define MAX_ACTIONS      4
#define MAX_ENV          8
#define PUBLIC_URL       "http://gate.callgate.test"
#define KEYS             "cg:{default}:"
#define SIM_TIMEOUT_MS   170000
#define START_TIMEOUT_MS 45000
#define LOG_TAIL_BYTES   12000

static const char *scenario_path;

enum action_kind {
    ACT_NONE, /* end of the list */
    ACT_REDIS_RESTART,
    ACT_REDIS_FREEZE,
    ACT_REDIS_THAW,
    ACT_KILL_INSTANCE,
    ACT_SENTINEL_FAILOVER, /* SENTINEL FAILOVER: the replica becomes the master */
};

struct action {
    enum action_kind kind;
    double at_s;     /* scenario seconds */
    int instance;    /* ACT_KILL_INSTANCE: 1-based */
    double within_s; /* ACT_KILL_INSTANCE: how long past at_s to wait for an admission of that
                      * instance to be in flight, so the kill strands one (0: kill at at_s) */
};

/* What a scenario needs around it, by name. */
struct orchestration {
    const char *name;
    int instances;
    struct action actions[MAX_ACTIONS];
    /* callgate settings over the defaults in test_scenario(). */
    const char *env[MAX_ENV];
    /* Redis loses the gate's state mid-run: its counters cannot match the
     * simulator's totals (the final active and waiting still must). */
    int state_lost;
    /* Redis is a master with one replica behind one sentinel; the gates
     * find the master through REDIS_SENTINELS. */
    int sentinel;
};

static const struct orchestration plans[] = {
    {.name = "three_instances", .instances = 3},
    {.name = "redis_restart",
     .instances = 2,
     .actions = {{.kind = ACT_REDIS_RESTART, .at_s = 3.0}},
     .state_lost = 1},
    /* Instance 2 dies (SIGKILL) with an admission in flight; the others
     * recover its slots through the admission lease. */
    {.name = "chaos_kill_instance",
     .instances = 3,
     .actions = {{.kind = ACT_KILL_INSTANCE, .at_s = 3.0, .instance = 2, .within_s = 4.0}},
     /* Short leases, so the stranded slots come back well before the run
      * ends (the simulator waits only 5 s for the final counts); still far
      * longer than an admission takes here, and the hold outlasts the
      * simulated Vapi's wait for a stream (5 s from creation). */
     .env = {"ADMISSION_LEASE_SECONDS=5", "ORPHAN_HOLD_SECONDS=3"}},
    /* Redis stops answering for 5 s (SIGSTOP) and resumes with everything
     * it had, including commands its clients gave up on. */
    {.name = "chaos_redis_freeze",
     .instances = 2,
     .actions = {{.kind = ACT_REDIS_FREEZE, .at_s = 3.0}, {.kind = ACT_REDIS_THAW, .at_s = 8.0}}},
    /* The API outages are in the scenario files; shorter timeouts keep the
     * runs short (each request into the black hole costs one timeout). */
    {.name = "chaos_vapi_outage", .instances = 2, .env = {"VAPI_TIMEOUT_MS=2000"}},
    {.name = "chaos_vapi_late", .instances = 2, .env = {"VAPI_TIMEOUT_MS=2000"}},
    {.name = "chaos_twilio_outage", .instances = 2, .env = {"TWILIO_TIMEOUT_MS=2000"}},
    /* The master is switched to its replica mid-surge. The writes the
     * switch cuts off (a failover does not wait for them) count as lost
     * state: the gates repair them from Vapi's live calls and Twilio's
     * queue. */
    {.name = "chaos_sentinel_failover",
     .instances = 2,
     .sentinel = 1,
     .state_lost = 1,
     .actions = {{.kind = ACT_SENTINEL_FAILOVER, .at_s = 4.0}}},
    /* Queued callbacks: offered to every caller whose estimate is above
     * 10 s; retried after 5 s, at most three dials (the scenario's
     * callbacks.attempts); the simulator rings its customers for 5 s at
     * most before "no answer". */
    {.name = "callbacks",
     .instances = 2,
     .env = {"CALLBACK_OFFER_SECONDS=10", "CALLBACK_RETRY_SECONDS=5", "CALLBACK_ATTEMPTS=3",
             "CALLBACK_RING_SECONDS=5", "ANNOUNCE_INTERVAL_SECONDS=5"}},
    /* The assistant's forwards to the scenario's queue_number go to the
     * human queue (TaskRouter) rather than a call. */
    {.name = "transfers",
     .instances = 2,
     .env = {"HANDOFF_WORKFLOW_SID=WW0123456789abcdef0123456789abcdef",
             "HANDOFF_TASK_QUEUE_SID=WQ0123456789abcdef0123456789abcdef",
             "HANDOFF_NUMBERS=+15550009999"}},
};

static struct orchestration plan_for(const char *name)
{
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++)
        if (strcmp(plans[i].name, name) == 0)
            return plans[i];
    return (struct orchestration){.name = name, .instances = 1};
}

/* Everything the run started, so that the teardown can stop it whatever
 * happened (cmocka's failures leave the test function by longjmp). */
static struct {
    struct cg_redis_server rs; /* the (first) master */
    int redis_started;
    struct cgt_redis_node replica, sentinel; /* plans with .sentinel */
    int master_port;                         /* where the gate's keys are now */
    int redis_frozen;
    struct cgt_proc gates[MAX_INSTANCES];
    int ngates;
    int killed[MAX_INSTANCES];
    struct cgt_proc sim;
    int sim_rc; /* -1 while running */
    char report[512];
    char routes_file[512]; /* ROUTES_FILE written from the scenario's "routes" */
    json_t *sc;
    int keep_logs;     /* the run failed: the logs stay for a closer look */
    int tails_printed; /* the log tails were printed */
    int completed;     /* test_scenario() ran to its end (else a check left it early) */
} run;

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A command to the node that is the master now (the first one unless a
 * failover moved it); the reply as cgt_redis_cmd() gives it. */
static char *rcmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = cgt_redis_vcmd(run.master_port ? run.master_port : run.rs.port, fmt, ap);
    va_end(ap);
    return out;
}

/* Asks the sentinel where the master is now. */
static void follow_master(void)
{
    char *out = cgt_node_cmd(&run.sentinel, "SENTINEL get-master-addr-by-name cgmaster");
    const char *nl = strchr(out, '\n');
    if (nl && atoi(nl + 1) > 0)
        run.master_port = atoi(nl + 1);
    free(out);
}

/* Whether the simulator is still running; reaps it (and keeps its exit
 * code) once it has finished. */
static int sim_running(void)
{
    if (run.sim_rc != -1 || run.sim.pid <= 0)
        return 0;
    run.sim_rc = cgt_wait_exit(&run.sim, 0);
    return run.sim_rc == -1;
}

/* Waits until the simulator says the scenario runs; returns the monotonic
 * time it was seen (the scenario's time 0, within a poll), or 0 if the
 * simulator ended or never got there. */
static uint64_t wait_scenario_start(int sim_port)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/sim/status", sim_port);
    uint64_t deadline = cgt_now_ms() + START_TIMEOUT_MS;
    while (cgt_now_ms() < deadline && sim_running()) {
        struct cgt_resp r;
        cgt_http("GET", url, NULL, NULL, 0, &r);
        int started = 0;
        if (r.status == 200) {
            json_t *o = json_loadb(r.body, r.len, 0, NULL);
            const char *phase = json_string_value(json_object_get(o, "phase"));
            started = phase && strcmp(phase, "waiting-for-gate") != 0;
            json_decref(o);
        }
        cgt_resp_free(&r);
        if (started)
            return cgt_now_ms();
        sleep_ms(20);
    }
    return 0;
}

/* Sleeps until the monotonic time t (ms); 0 if the simulator ended first. */
static int sleep_until(uint64_t t)
{
    while (cgt_now_ms() < t) {
        if (!sim_running())
            return 0;
        uint64_t left = t - cgt_now_ms();
        sleep_ms(left > 20 ? 20 : (long)left + 1);
    }
    return sim_running();
}

/* Admissions of an instance in flight now: callers it claimed a slot for
 * and has not connected yet (state admitting, or gone when the caller hung
 * up meanwhile: the admission still holds the slot). */
static int admitting_by(const char *instance_id)
{
    char *members = rcmd("ZRANGE " KEYS "active 0 -1");
    int n = 0;
    char *save = NULL;
    char admitting[64], gone[64];
    snprintf(admitting, sizeof admitting, "admitting\n%s", instance_id);
    snprintf(gone, sizeof gone, "gone\n%s", instance_id);
    for (char *m = strtok_r(members, "\n", &save); m; m = strtok_r(NULL, "\n", &save)) {
        if (strncmp(m, "v:", 2) == 0 || strncmp(m, "u:", 2) == 0)
            continue;
        char *f = rcmd("HMGET " KEYS "call:%s state admitted_by", m);
        if (strcmp(f, admitting) == 0 || strcmp(f, gone) == 0)
            n++;
        free(f);
    }
    free(members);
    return n;
}

/* Runs one action; returns 0, or -1 with why in err. */
static int perform(const struct action *a, uint64_t t0, char *err, size_t errlen)
{
    char e[256];
    switch (a->kind) {
    case ACT_REDIS_RESTART:
        printf("runner: t=%.1f s: redis killed, restarted empty\n",
               (double)(cgt_now_ms() - t0) / 1000.0);
        cg_redis_server_kill(&run.rs, SIGKILL);
        sleep_ms(500);
        if (cg_redis_server_restart(&run.rs, e, sizeof e) != 0) {
            snprintf(err, errlen, "cannot restart redis: %s", e);
            return -1;
        }
        return 0;
    case ACT_REDIS_FREEZE:
        printf("runner: t=%.1f s: redis frozen (SIGSTOP)\n", (double)(cgt_now_ms() - t0) / 1000.0);
        cg_redis_server_kill(&run.rs, SIGSTOP);
        run.redis_frozen = 1;
        return 0;
    case ACT_REDIS_THAW:
        printf("runner: t=%.1f s: redis resumed (SIGCONT)\n", (double)(cgt_now_ms() - t0) / 1000.0);
        cg_redis_server_kill(&run.rs, SIGCONT);
        run.redis_frozen = 0;
        return 0;
    case ACT_KILL_INSTANCE: {
        int i = a->instance - 1;
        char id[32];
        snprintf(id, sizeof id, "gate-%d", a->instance);
        /* Kill it the moment one of its admissions is in flight, so that
         * the lease really has something to recover. */
        uint64_t until = cgt_now_ms() + (uint64_t)(a->within_s * 1000);
        int inflight = 0;
        while ((inflight = admitting_by(id)) == 0 && cgt_now_ms() < until && sim_running())
            sleep_ms(5);
        double at = (double)(cgt_now_ms() - t0) / 1000.0;
        kill(run.gates[i].pid, SIGKILL);
        int code = cgt_wait_exit(&run.gates[i], 5000);
        run.killed[i] = 1;
        printf("runner: t=%.1f s: %s killed (SIGKILL, exit %d) with %d admission%s in flight\n", at,
               id, code, inflight, inflight == 1 ? "" : "s");
        if (code != 128 + SIGKILL) {
            snprintf(err, errlen, "%s did not die of SIGKILL (exit %d)", id, code);
            return -1;
        }
        sleep_ms(50);
        int stranded = admitting_by(id);
        printf("runner: %d admission%s of %s stranded in redis for the lease to recover\n",
               stranded, stranded == 1 ? "" : "s", id);
        return 0;
    }
    case ACT_SENTINEL_FAILOVER: {
        printf("runner: t=%.1f s: SENTINEL FAILOVER\n", (double)(cgt_now_ms() - t0) / 1000.0);
        cgt_sentinel_failover(&run.sentinel, "cgmaster");
        if (cgt_node_wait(&run.replica, "ROLE", "master", 15000) != 0) {
            snprintf(err, errlen, "the replica was not promoted within 15 s");
            return -1;
        }
        follow_master();
        printf("runner: t=%.1f s: the replica (port %d) is the master\n",
               (double)(cgt_now_ms() - t0) / 1000.0, run.master_port);
        return 0;
    }
    case ACT_NONE:
    default:
        return 0;
    }
}

/* A field of the gate's stats hash, from HGETALL's "field\nvalue" lines;
 * -1 when absent. */
static long long stat_of(const char *all, const char *field)
{
    size_t fl = strlen(field);
    const char *p = all;
    int is_field = 1;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (is_field && n == fl && strncmp(p, field, fl) == 0 && nl)
            return strtoll(nl + 1, NULL, 10);
        is_field = !is_field;
        p += n + (nl ? 1 : 0);
    }
    return -1;
}

static long long report_int(const json_t *rep, const char *obj, const char *key)
{
    const json_t *o = obj ? json_object_get(rep, obj) : rep;
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static void print_log_tails(void)
{
    run.tails_printed = 1;
    for (int i = 0; i < run.ngates; i++) {
        char *log = cgt_proc_output(&run.gates[i]);
        size_t n = strlen(log);
        printf("--- callgate gate-%d log (tail)%s ---\n%s\n", i + 1,
               run.killed[i] ? ", killed" : "",
               n > LOG_TAIL_BYTES ? log + n - LOG_TAIL_BYTES : log);
        free(log);
    }
    fflush(stdout);
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        printf("runner: FAIL: " __VA_ARGS__);                                                      \
        printf("\n");                                                                              \
        failed++;                                                                                  \
    } while (0)

/* Writes ROUTES_FILE from the scenario's "routes" (each route without its
 * "callers" member) into run.routes_file, and the two settings into the
 * env lines; nothing when the scenario has no routes. */
static void write_routes_file(const char *name, char *e_routes, size_t n1, char *e_admin, size_t n2)
{
    e_routes[0] = e_admin[0] = '\0';
    json_t *routes = json_object_get(run.sc, "routes");
    if (!routes)
        return;
    json_t *list = json_array();
    size_t i;
    json_t *rt;
    json_array_foreach (routes, i, rt) {
        json_t *copy = json_deep_copy(rt);
        json_object_del(copy, "callers");
        json_array_append_new(list, copy);
    }
    json_t *file = json_object();
    json_object_set_new(file, "routes", list);
    snprintf(run.routes_file, sizeof run.routes_file, "%s/routes-%s-%d.json",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name, (int)getpid());
    int rc = json_dump_file(file, run.routes_file, JSON_INDENT(2));
    json_decref(file);
    if (rc != 0)
        fail_msg("cannot write %s", run.routes_file);
    const char *token =
        json_string_value(json_object_get(json_object_get(run.sc, "dialer"), "admin_token"));
    snprintf(e_routes, n1, "ROUTES_FILE=%s", run.routes_file);
    snprintf(e_admin, n2, "ADMIN_TOKEN=%s", token ? token : "sim-admin-token");
}

static void test_scenario(void **state)
{
    (void)state;
    json_error_t jerr;
    run.sc = json_load_file(scenario_path, 0, &jerr);
    if (run.sc == NULL)
        fail_msg("cannot read %s: %s", scenario_path, jerr.text);
    const char *name = json_string_value(json_object_get(run.sc, "name"));
    assert_non_null(name);
    struct orchestration plan = plan_for(name);
    json_t *vapi = json_object_get(run.sc, "vapi");
    json_t *jlimit = vapi ? json_object_get(vapi, "limit") : NULL;
    long limit = jlimit ? (long)json_integer_value(jlimit) : 10;
    int failed = 0;

    cgt_redis_start(&run.rs);
    run.redis_started = 1;
    char e_sentinels[64] = "", e_master[48] = "";
    if (plan.sentinel) {
        char mport[16];
        snprintf(mport, sizeof mport, "%d", run.rs.port);
        const char *rep_args[] = {"--replicaof", "127.0.0.1", mport, NULL};
        cgt_redis_node_start(&run.replica, NULL, 0, rep_args);
        if (cgt_node_wait(&run.replica, "INFO replication", "master_link_status:up", 10000) != 0)
            fail_msg("the replica did not sync");
        cgt_sentinel_start(&run.sentinel, "cgmaster", run.rs.port, NULL);
        if (cgt_node_wait(&run.sentinel, "SENTINEL REPLICAS cgmaster", "127.0.0.1", 15000) != 0)
            fail_msg("the sentinel did not discover the replica");
        snprintf(e_sentinels, sizeof e_sentinels, "REDIS_SENTINELS=127.0.0.1:%d",
                 run.sentinel.port);
        snprintf(e_master, sizeof e_master, "REDIS_SENTINEL_MASTER=cgmaster");
    }

    char e_routes[600], e_admin[300];
    write_routes_file(name, e_routes, sizeof e_routes, e_admin, sizeof e_admin);

    int sim_port = cg_free_port();
    char sim_url[64];
    snprintf(sim_url, sizeof sim_url, "http://127.0.0.1:%d", sim_port);

    char gate_urls[MAX_INSTANCES * 40] = "";
    for (int i = 0; i < plan.instances; i++) {
        int port = cg_free_port();
        char e_port[32], e_redis[96], e_twilio[96], e_vapi[96], e_limit[48], e_inst[48];
        snprintf(e_port, sizeof e_port, "PORT=%d", port);
        snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", run.rs.url);
        snprintf(e_twilio, sizeof e_twilio, "TWILIO_API_BASE_URL=%s", sim_url);
        snprintf(e_vapi, sizeof e_vapi, "VAPI_BASE_URL=%s", sim_url);
        snprintf(e_limit, sizeof e_limit, "MAX_CONCURRENCY=%ld", limit);
        snprintf(e_inst, sizeof e_inst, "INSTANCE_ID=gate-%d", i + 1);
        const char *env[36 + MAX_ENV] = {e_port,
                                         e_redis,
                                         e_twilio,
                                         e_vapi,
                                         e_limit,
                                         e_inst,
                                         "BIND_ADDRESS=127.0.0.1",
                                         "PUBLIC_URL=" PUBLIC_URL,
                                         "TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                         "TWILIO_AUTH_TOKEN=sim-auth-token",
                                         "VAPI_API_KEY=sim-vapi-key",
                                         "VAPI_WEBHOOK_SECRET=sim-vapi-secret",
                                         "VAPI_PHONE_NUMBER_ID=sim-phone-number",
                                         "VAPI_ASSISTANT_ID=sim-assistant",
                                         "LOG_LEVEL=info",
                                         "SWEEP_INTERVAL_MS=100",
                                         "END_GRACE_MS=500",
                                         "LEASE_SECONDS=10",
                                         "ORPHAN_HOLD_SECONDS=5",
                                         "OVERLIMIT_HOLD_SECONDS=2",
                                         "ADMISSION_LEASE_SECONDS=10",
                                         "ADMISSION_BACKOFF_MIN_MS=50",
                                         "ADMISSION_BACKOFF_MAX_MS=1000",
                                         "RECONCILE_INTERVAL_SECONDS=2",
                                         "EXPECTED_CALL_SECONDS=1",
                                         "TWILIO_TIMEOUT_MS=5000",
                                         "VAPI_TIMEOUT_MS=5000",
                                         "REDIS_RECONNECT_MIN_MS=20",
                                         "REDIS_RECONNECT_MAX_MS=300",
                                         "MAX_WAIT_SECONDS=0",
                                         NULL};
        /* The plan's settings come last, so they win. */
        size_t n = 0;
        while (env[n])
            n++;
        for (int k = 0; k < MAX_ENV && plan.env[k]; k++)
            env[n++] = plan.env[k];
        if (plan.sentinel) {
            env[n++] = e_sentinels;
            env[n++] = e_master;
        }
        if (e_routes[0]) {
            env[n++] = e_routes;
            env[n++] = e_admin;
        }
        env[n] = NULL;
        const char *argv[] = {cgt_bin("callgate"), "serve", NULL};
        cgt_spawn(&run.gates[i], argv, env);
        run.ngates = i + 1;
        size_t used = strlen(gate_urls);
        snprintf(gate_urls + used, sizeof gate_urls - used, "%shttp://127.0.0.1:%d", i ? "," : "",
                 port);
    }

    char sport[16];
    snprintf(run.report, sizeof run.report, "%s/scenario-%s-%d.json",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name, (int)getpid());
    snprintf(sport, sizeof sport, "%d", sim_port);
    const char *sargv[] = {cgt_bin("callgate-sim"),
                           "--scenario",
                           scenario_path,
                           "--public-url",
                           PUBLIC_URL,
                           "--gate",
                           gate_urls,
                           "--port",
                           sport,
                           "--report",
                           run.report,
                           NULL};
    uint64_t sim_started = cgt_now_ms();
    cgt_spawn(&run.sim, sargv, NULL);
    run.sim_rc = -1;

    if (plan.actions[0].kind != ACT_NONE) {
        uint64_t t0 = wait_scenario_start(sim_port);
        if (t0 == 0 && sim_running())
            FAIL("the scenario did not start within %d s", START_TIMEOUT_MS / 1000);
        for (int k = 0; t0 != 0 && k < MAX_ACTIONS && plan.actions[k].kind != ACT_NONE; k++) {
            const struct action *a = &plan.actions[k];
            if (!sleep_until(t0 + (uint64_t)(a->at_s * 1000))) {
                FAIL("the simulator ended before the planned chaos at %.1f s", a->at_s);
                break;
            }
            char err[512];
            if (perform(a, t0, err, sizeof err) != 0) {
                FAIL("%s", err);
                break;
            }
        }
    }

    if (sim_running()) {
        uint64_t spent = cgt_now_ms() - sim_started;
        run.sim_rc =
            cgt_wait_exit(&run.sim, spent < SIM_TIMEOUT_MS ? (int)(SIM_TIMEOUT_MS - spent) : 0);
        if (run.sim_rc == -1) {
            FAIL("the simulator did not finish in time");
            cgt_stop(&run.sim, SIGINT, 10000);
        }
    }
    char *out = cgt_proc_output(&run.sim);
    printf("%s\n", out);
    free(out);
    json_t *rep = json_load_file(run.report, 0, &jerr);
    FILE *f = fopen(run.report, "r");
    if (f) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(f);
    }
    if (run.sim_rc != 0)
        FAIL("scenario %s failed its invariants (simulator exit %d)", name, run.sim_rc);

    /* The gate's own record, straight from Redis: nothing left active or
     * waiting, and (unless Redis lost its state) every caller entered once
     * and every connection counted once. */
    if (run.redis_frozen) {
        cg_redis_server_kill(&run.rs, SIGCONT);
        run.redis_frozen = 0;
    }
    if (plan.sentinel)
        follow_master();
    char *active = rcmd("ZCARD " KEYS "active");
    char *waiting = rcmd("ZCARD " KEYS "waiting");
    char *stats = rcmd("HGETALL " KEYS "stats");
    if (strcmp(active, "0") != 0 || strcmp(waiting, "0") != 0)
        FAIL("redis holds %s active and %s waiting at the end", active, waiting);
    long long total = report_int(rep, "callers", "total");
    long long connected = report_int(rep, "callers", "connected");
    /* With routes, callgate also counts the outbound calls it placed
     * (connected once Vapi created them). */
    long long outbound = 0;
    size_t ri;
    json_t *rt;
    json_array_foreach (json_object_get(json_object_get(rep, "routes"), "list"), ri, rt)
        outbound += json_integer_value(json_object_get(rt, "outbound_calls"));
    long long entered = stat_of(stats, "entered"), sconnected = stat_of(stats, "connected");
    /* A caller connected by an instance that died before recording it
     * (Twilio applied the update, the connected step never ran) is counted
     * as a caller who hung up during admission when the call ends before
     * the admission lease does: the slot is right, that counter is not. */
    int killing = 0;
    for (int k = 0; k < MAX_ACTIONS; k++)
        killing |= plan.actions[k].kind == ACT_KILL_INSTANCE;
    if (rep != NULL && !plan.state_lost) {
        if (entered != total)
            FAIL("the gate counted %lld callers entered, the simulator %lld", entered, total);
        if (!killing && sconnected != connected + outbound)
            FAIL("the gate counted %lld connected, the simulator %lld callers and %lld outbound "
                 "calls",
                 sconnected, connected, outbound);
    }
    printf("runner: summary %s: peak %lld of %ld, lost %lld, over-limit rejections %lld, "
           "connected %lld of %lld (gate: entered %lld, connected %lld, admissions %lld, "
           "orphans %lld, released by lease %lld)\n",
           name, report_int(rep, NULL, "peak_vapi_concurrency"), limit,
           report_int(rep, "callers", "lost"), report_int(rep, NULL, "overlimit_rejections"),
           connected, total, entered, sconnected, stat_of(stats, "admissions"),
           stat_of(stats, "orphans"), stat_of(stats, "released_lease"));
    free(active);
    free(waiting);
    free(stats);
    json_decref(rep);

    /* Every instance survived the run and stops cleanly, except the one the
     * plan killed, which must have stayed dead. */
    for (int i = 0; i < run.ngates; i++) {
        if (run.killed[i]) {
            if (run.gates[i].pid > 0)
                FAIL("gate-%d was killed but is still running", i + 1);
            continue;
        }
        int alive = cgt_wait_exit(&run.gates[i], 0) == -1;
        int code = alive ? cgt_stop(&run.gates[i], SIGTERM, 10000) : -1;
        if (!alive)
            FAIL("gate-%d died during the run", i + 1);
        else if (code != 0)
            FAIL("gate-%d exited %d on SIGTERM", i + 1, code);
    }
    /* CG_SCENARIO_KEEP_LOGS=1 keeps them after a pass too. */
    const char *keep = getenv("CG_SCENARIO_KEEP_LOGS");
    run.keep_logs = failed > 0 || (keep && strcmp(keep, "1") == 0);
    run.completed = 1;
    if (failed) {
        print_log_tails();
        fail_msg("scenario %s: %d check%s failed", name, failed, failed == 1 ? "" : "s");
    }
}

/* Stops whatever is still running, whatever happened. */
static int teardown(void **state)
{
    (void)state;
    if (!run.completed) {
        run.keep_logs = 1;
        if (!run.tails_printed && run.ngates > 0)
            print_log_tails();
    }
    if (run.sim.pid > 0)
        cgt_stop(&run.sim, SIGKILL, 5000);
    for (int i = 0; i < run.ngates; i++)
        if (run.gates[i].pid > 0)
            cgt_stop(&run.gates[i], SIGKILL, 5000);
    cgt_redis_node_stop(&run.sentinel);
    cgt_redis_node_stop(&run.replica);
    if (run.redis_started) {
        /* Stops a frozen server too (proc.c resumes it first). */
        cg_redis_server_stop(&run.rs);
        run.redis_started = 0;
    }
    if (run.report[0])
        unlink(run.report);
    if (run.routes_file[0])
        unlink(run.routes_file);
    for (int i = 0; i < run.ngates; i++) {
        if (run.gates[i].log_path[0] == '\0')
            continue;
        if (run.keep_logs)
            printf("runner: gate-%d log kept in %s\n", i + 1, run.gates[i].log_path);
        else
            unlink(run.gates[i].log_path);
    }
    if (run.sim.log_path[0] && run.keep_logs)
        printf("runner: simulator log kept in %s\n", run.sim.log_path);
    else if (run.sim.log_path[0])
        unlink(run.sim.log_path);
    json_decref(run.sc);
    run.sc = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: scenario_runner SCENARIO.json\n");
        return 2;
    }
    scenario_path = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_scenario, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
