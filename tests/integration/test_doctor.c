/*
 * `callgate doctor` against the project's simulator (`callgate-sim serve`,
 * whose scenario "accounts" member describes what the Twilio and Vapi
 * accounts hold) and a real Redis: every check passing, then each way a
 * deployment can be wrong, with the line doctor must print and its exit
 * status (0 when nothing failed, warnings allowed; 1 otherwise).
 *
 * Each test writes its own scenario and starts its own simulator (a few
 * tens of milliseconds); the Redis is shared and every test that changes
 * it puts it back.
 */
#include "redisx.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/config.h"
#include "demo/proc.h"

#define ACCOUNT_SID "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define WS          "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PUBLIC      "https://gate.callgate.test"
#define NUMBER      "+15550100000"
#define QUEUE       "support"

struct fixture {
    struct cg_redis_server rs;
    char *dir;
    struct cgt_proc sim;
    char sim_url[64];
    char queue_sid[64];
};

static struct fixture fx;

/* ---- the simulator ---- */

/* callgate-sim serve with the scenario members given (JSON text after
 * the name, may be ""), a queue named QUEUE and PUBLIC as its public URL. */
static void start_sim(const char *members)
{
    char scen[600], portf[600], queuef[600];
    snprintf(scen, sizeof scen, "%s/scenario.json", fx.dir);
    snprintf(portf, sizeof portf, "%s/port", fx.dir);
    snprintf(queuef, sizeof queuef, "%s/queue", fx.dir);
    FILE *fp = fopen(scen, "w");
    assert_non_null(fp);
    fprintf(fp, "{\"name\":\"doctor\",\"taskrouter\":{\"queues\":1}%s%s}", *members ? "," : "",
            members);
    assert_int_equal(fclose(fp), 0);
    remove(portf);
    remove(queuef);
    const char *argv[] = {cgt_bin("callgate-sim"), "serve", "--port",     "0",
                          "--port-file",           portf,   "--scenario", scen,
                          "--public-url",          PUBLIC,  "--queue",    QUEUE,
                          "--queue-file",          queuef,  NULL};
    cgt_spawn(&fx.sim, argv, (const char *const[]){"LOG_LEVEL=warn", NULL});
    uint64_t deadline = cgt_now_ms() + 15000;
    int port = 0;
    fx.queue_sid[0] = '\0';
    /* Both files are written whole (renamed into place), the queue's last. */
    for (;;) {
        if (port == 0)
            port = cgt_read_port_file(portf);
        FILE *q = port ? fopen(queuef, "r") : NULL;
        if (q != NULL) {
            if (fgets(fx.queue_sid, sizeof fx.queue_sid, q) == NULL)
                fx.queue_sid[0] = '\0';
            fclose(q);
            fx.queue_sid[strcspn(fx.queue_sid, "\n")] = '\0';
            if (fx.queue_sid[0])
                break;
        }
        if (cgt_now_ms() > deadline || cgt_wait_exit(&fx.sim, 0) != -1) {
            char *out = cgt_proc_output(&fx.sim);
            fail_msg("callgate-sim did not start; output:\n%s", out);
        }
        cgt_sleep_ms(10);
    }
    snprintf(fx.sim_url, sizeof fx.sim_url, "http://127.0.0.1:%d", port);
    assert_int_equal(strlen(fx.queue_sid), 34);
}

static void stop_sim(void)
{
    int rc = cgt_stop(&fx.sim, SIGTERM, 10000);
    if (rc != 0) {
        char *out = cgt_proc_output(&fx.sim);
        fail_msg("callgate-sim exited %d; output:\n%s", rc, out);
    }
    remove(fx.sim.log_path);
}

/* ---- callgate doctor ---- */

struct run {
    int rc;
    char *out;
};

/* Runs `callgate doctor` with none of the test's own settings, then the
 * settings of a correct deployment against the simulator, then extra
 * (NULL-terminated, may be NULL; later ones win). */
static void doctor(const char *const *extra, struct run *r)
{
    char redis[128], tw[128], vapi[128], tr[128], qsid[128];
    snprintf(redis, sizeof redis, "REDIS_URL=%s", fx.rs.url);
    snprintf(tw, sizeof tw, "TWILIO_API_BASE_URL=%s", fx.sim_url);
    snprintf(vapi, sizeof vapi, "VAPI_BASE_URL=%s", fx.sim_url);
    snprintf(tr, sizeof tr, "TASKROUTER_BASE_URL=%s", fx.sim_url);
    snprintf(qsid, sizeof qsid, "TWILIO_QUEUE_SID=%s", fx.queue_sid);
    const char *base[] = {redis,
                          tw,
                          vapi,
                          tr,
                          qsid,
                          "SERVICES=gate,waittime",
                          "PUBLIC_URL=" PUBLIC,
                          "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
                          "TWILIO_AUTH_TOKEN=sim-auth-token",
                          "TWILIO_WORKSPACE_SID=" WS,
                          "VAPI_API_KEY=sim-vapi-key",
                          "VAPI_WEBHOOK_SECRET=sim-vapi-secret",
                          "VAPI_PHONE_NUMBER_ID=sim-phone-number",
                          "VAPI_ASSISTANT_ID=sim-assistant",
                          "MAX_QUEUE_SIZE=100",
                          "MAX_CONCURRENCY=10",
                          "LOG_LEVEL=warn",
                          NULL};
    size_t nopt = 0, n = 0;
    while (cg_config_option_name(nopt))
        nopt++;
    size_t nextra = 0;
    while (extra && extra[nextra])
        nextra++;
    const char **env = cg_calloc(nopt + sizeof base / sizeof base[0] + nextra + 1, sizeof *env);
    char **unset = cg_calloc(nopt + 1, sizeof *unset);
    for (size_t k = 0; k < nopt; k++) {
        const char *name = cg_config_option_name(k);
        size_t len = strlen(name) + 2;
        unset[k] = cg_malloc(len);
        snprintf(unset[k], len, "-%s", name);
        env[n++] = unset[k];
    }
    for (size_t k = 0; base[k]; k++)
        env[n++] = base[k];
    for (size_t k = 0; k < nextra; k++)
        env[n++] = extra[k];
    env[n] = NULL;
    const char *argv[] = {cgt_bin("callgate"), "doctor", NULL};
    struct cgt_proc p;
    cgt_spawn(&p, argv, env);
    for (size_t k = 0; k < nopt; k++)
        free(unset[k]);
    free(unset);
    free(env);
    r->rc = cgt_wait_exit(&p, 30000);
    r->out = cgt_proc_output(&p);
    if (r->rc == -1) {
        cgt_stop(&p, SIGKILL, 1000);
        fail_msg("callgate doctor did not finish; output:\n%s", r->out);
    }
    remove(p.log_path);
}

static void run_free(struct run *r)
{
    free(r->out);
    r->out = NULL;
}

/* Fails the test, with doctor's whole output on stderr (cmocka cuts long
 * messages). */
__attribute__((format(printf, 2, 3))) static void fail_out(const struct run *r, const char *fmt,
                                                           ...)
{
    char msg[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "---- callgate doctor output ----\n%s---- end ----\n", r->out);
    fflush(stderr);
    fail_msg("%s", msg);
}

/* The output has this line, exactly, in doctor's format. */
static void expect_line(const struct run *r, const char *verdict, const char *check,
                        const char *msg)
{
    char line[1400];
    snprintf(line, sizeof line, "\n%s  %-22s %s\n", verdict, check, msg);
    if (strstr(r->out, line) == NULL)
        fail_out(r, "no line \"%.*s\"", (int)strlen(line) - 2, line + 1);
}

/* The output's line for check starts with the verdict and contains frag. */
static void expect_verdict(const struct run *r, const char *verdict, const char *check,
                           const char *frag)
{
    char head[128];
    snprintf(head, sizeof head, "\n%s  %-22s ", verdict, check);
    const char *at = strstr(r->out, head);
    if (at == NULL)
        fail_out(r, "no %s line for %s", verdict, check);
    const char *end = strchr(at + 1, '\n');
    size_t len = end ? (size_t)(end - at) : strlen(at);
    char *line = cg_strndup(at, len);
    int found = strstr(line, frag) != NULL;
    free(line);
    if (!found)
        fail_out(r, "the %s line for %s lacks \"%s\"", verdict, check, frag);
}

static void expect_absent(const struct run *r, const char *frag)
{
    if (strstr(r->out, frag) != NULL)
        fail_out(r, "unexpected \"%s\"", frag);
}

static void expect_rc(const struct run *r, int rc)
{
    if (r->rc != rc)
        fail_out(r, "callgate doctor exited %d, not %d", r->rc, rc);
}

/* Runs doctor against a simulator with these scenario members. */
static void doctor_with(const char *members, const char *const *extra, struct run *r)
{
    start_sim(members);
    doctor(extra, r);
    stop_sim();
}

/* ---- tests ---- */

static void test_all_pass(void **state)
{
    (void)state;
    struct run r;
    doctor_with("", NULL, &r);
    expect_rc(&r, 0);
    char msg[512];
    expect_line(&r, "OK  ", "twilio.credentials",
                "account " ACCOUNT_SID " (callgate-sim) is active");
    expect_line(&r, "OK  ", "vapi.credentials", "Vapi accepts VAPI_API_KEY");
    expect_line(&r, "OK  ", "vapi.assistant", "assistant sim-assistant (callgate-sim assistant)");
    expect_line(&r, "OK  ", "vapi.assistant.server", "server URL " PUBLIC "/call-ended");
    expect_line(&r, "OK  ", "vapi.assistant.messages",
                "server messages include status-update and end-of-call-report");
    expect_line(&r, "OK  ", "vapi.number", "phone number sim-phone-number (" NUMBER ")");
    snprintf(msg, sizeof msg, "queue " QUEUE " (%s), max_size 1000 >= MAX_QUEUE_SIZE=100",
             fx.queue_sid);
    expect_line(&r, "OK  ", "twilio.queue", msg);
    expect_line(&r, "OK  ", "twilio.number.voice",
                NUMBER ": a call comes in -> POST " PUBLIC "/incoming");
    expect_line(&r, "OK  ", "twilio.number.status",
                NUMBER ": call status changes -> POST " PUBLIC "/call-status");
    expect_line(&r, "OK  ", "taskrouter.workspace", "workspace " WS " (callgate-sim)");
    expect_verdict(&r, "OK  ", "redis", " answers");
    expect_line(&r, "OK  ", "redis.eviction", "maxmemory-policy noeviction");
    expect_line(&r, "OK  ", "gate.limit", "MAX_CONCURRENCY=10 is in force");
    assert_non_null(strstr(r.out, "\n0 failed, 0 warnings\n"));
    expect_absent(&r, "WARN");
    expect_absent(&r, "FAIL");
    run_free(&r);
}

/* The queue found by name instead of SID; a name not there yet warns. */
static void test_queue_by_name(void **state)
{
    (void)state;
    struct run r;
    start_sim("");
    doctor((const char *const[]){"TWILIO_QUEUE_SID=", "TWILIO_QUEUE_NAME=" QUEUE, NULL}, &r);
    expect_rc(&r, 0);
    char msg[512];
    snprintf(msg, sizeof msg, "queue " QUEUE " (%s), max_size 1000 >= MAX_QUEUE_SIZE=100",
             fx.queue_sid);
    expect_line(&r, "OK  ", "twilio.queue", msg);
    run_free(&r);
    doctor((const char *const[]){"TWILIO_QUEUE_SID=", "TWILIO_QUEUE_NAME=sales", NULL}, &r);
    expect_rc(&r, 0);
    expect_verdict(&r, "WARN", "twilio.queue", "no queue named sales yet");
    assert_non_null(strstr(r.out, "--friendly-name 'sales' --max-size 100"));
    run_free(&r);
    stop_sim();
}

/* ROUTES_FILE: every route's assistant, phone number and queue checked,
 * each under its route's name. */
static void test_routes(void **state)
{
    (void)state;
    char path[600], env[640];
    snprintf(path, sizeof path, "%s/routes.json", fx.dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "{\"routes\":[{\"name\":\"support\",\"numbers\":[\"" NUMBER "\"],"
                "\"assistantId\":\"sim-assistant\",\"phoneNumberId\":\"sim-phone-number\","
                "\"queue\":\"" QUEUE "\"},{\"name\":\"sales\",\"numbers\":[\"+15550100009\"],"
                "\"assistantId\":\"no-such-assistant\",\"phoneNumberId\":\"sim-phone-number\","
                "\"queue\":\"sales\"}]}");
    assert_int_equal(fclose(fp), 0);
    snprintf(env, sizeof env, "ROUTES_FILE=%s", path);
    struct run r;
    doctor_with("", (const char *const[]){env, "VAPI_ASSISTANT_ID=", "VAPI_PHONE_NUMBER_ID=", NULL},
                &r);
    expect_rc(&r, 1);
    const char *support = strstr(r.out, "route support:\n");
    const char *sales = strstr(r.out, "route sales:\n");
    if (support == NULL || sales == NULL || sales < support)
        fail_out(&r, "no route headings");
    expect_line(&r, "OK  ", "vapi.assistant", "assistant sim-assistant (callgate-sim assistant)");
    expect_line(&r, "FAIL", "vapi.assistant",
                "assistant no-such-assistant not found (HTTP 404: Not Found)");
    if (strstr(sales, "assistant no-such-assistant not found") == NULL)
        fail_out(&r, "the sales route's failure is not under its heading");
    expect_verdict(&r, "WARN", "twilio.queue", "no queue named sales yet");
    remove(path);
    run_free(&r);
}

static void test_wrong_twilio_token(void **state)
{
    (void)state;
    struct run r;
    doctor_with("", (const char *const[]){"TWILIO_AUTH_TOKEN=wrong-token", NULL}, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "twilio.credentials",
                "Twilio refused TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN (HTTP 401: Authenticate: "
                "Your AccountSid or AuthToken was incorrect.)");
    assert_non_null(strstr(r.out, "fix: copy the Account SID and the primary Auth Token"));
    /* What needs the account is not asked. */
    expect_absent(&r, "twilio.queue");
    expect_absent(&r, "twilio.number");
    expect_absent(&r, "taskrouter.workspace");
    run_free(&r);
}

static void test_account_suspended(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"accounts\":{\"twilio\":{\"status\":\"suspended\"}}", NULL, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "twilio.credentials", "account " ACCOUNT_SID " is suspended");
    run_free(&r);
}

static void test_wrong_vapi_key(void **state)
{
    (void)state;
    struct run r;
    doctor_with("", (const char *const[]){"VAPI_API_KEY=wrong-key", NULL}, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "vapi.credentials",
                "Vapi refused VAPI_API_KEY (HTTP 401: Invalid Key. Hot tip, you may be using the "
                "private key instead of the public key, or vice versa.)");
    expect_absent(&r, "vapi.assistant");
    expect_absent(&r, "OK    vapi.number");
    /* Without the Vapi number, the Twilio number cannot be looked up. */
    expect_line(&r, "WARN", "twilio.number",
                "not checked: the phone number's E.164 number is unknown");
    run_free(&r);
}

static void test_unknown_assistant(void **state)
{
    (void)state;
    struct run r;
    doctor_with("", (const char *const[]){"VAPI_ASSISTANT_ID=no-such-assistant", NULL}, &r);
    expect_rc(&r, 1);
    expect_line(&r, "OK  ", "vapi.credentials", "Vapi accepts VAPI_API_KEY");
    expect_line(&r, "FAIL", "vapi.assistant",
                "assistant no-such-assistant not found (HTTP 404: Not Found)");
    run_free(&r);
}

static void test_assistant_server_url_wrong(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"accounts\":{\"vapi\":{\"assistant\":{\"server_url\":"
                "\"https://old.example.com/vapi\"}}}",
                NULL, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "vapi.assistant.server",
                "the assistant's server URL is https://old.example.com/vapi, not " PUBLIC
                "/call-ended: callgate never hears that a call ended, and slots free only when "
                "leases expire");
    /* That URL may be the one answering the assistant's tools. */
    if (strstr(r.out, "if the present URL answers the assistant's tools, put it in "
                      "VAPI_FORWARD_URL") == NULL)
        fail_msg("no hint at VAPI_FORWARD_URL: %s", r.out);
    run_free(&r);
    doctor_with("\"accounts\":{\"vapi\":{\"assistant\":{\"server_url\":null}}}", NULL, &r);
    expect_rc(&r, 1);
    expect_verdict(&r, "FAIL", "vapi.assistant.server", "server URL is (none), not");
    run_free(&r);
}

static void test_server_messages(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"accounts\":{\"vapi\":{\"assistant\":{\"server_messages\":"
                "[\"status-update\",\"hang\"]}}}",
                NULL, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "vapi.assistant.messages",
                "server messages lack end-of-call-report: slots are freed late");
    run_free(&r);
    /* Not set at all: Vapi's defaults include both. */
    doctor_with("\"accounts\":{\"vapi\":{\"assistant\":{\"server_messages\":null}}}", NULL, &r);
    expect_rc(&r, 0);
    expect_verdict(&r, "OK  ", "vapi.assistant.messages", "server messages not set");
    run_free(&r);
}

static void test_queue_too_small(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"twilio\":{\"queue_max_size\":50}", NULL, &r);
    expect_rc(&r, 1);
    char msg[512];
    snprintf(msg, sizeof msg,
             "queue " QUEUE " (%s) holds at most 50 callers, fewer than MAX_QUEUE_SIZE=100: "
             "Twilio would refuse every caller beyond 50",
             fx.queue_sid);
    expect_line(&r, "FAIL", "twilio.queue", msg);
    snprintf(msg, sizeof msg, "twilio api:core:queues:update --sid %s --max-size 100",
             fx.queue_sid);
    assert_non_null(strstr(r.out, msg));
    run_free(&r);
}

static void test_queue_sid_unknown(void **state)
{
    (void)state;
    struct run r;
    doctor_with(
        "", (const char *const[]){"TWILIO_QUEUE_SID=QU00000000000000000000000000000000", NULL}, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "twilio.queue",
                "queue QU00000000000000000000000000000000 does not exist in account " ACCOUNT_SID);
    run_free(&r);
}

static void test_voice_url_wrong(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"accounts\":{\"twilio\":{\"numbers\":[{\"phone_number\":\"" NUMBER "\","
                "\"voice_url\":\"https://demo.twilio.com/welcome/voice/\"}]}}",
                NULL, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "twilio.number.voice",
                NUMBER
                " sends calls to POST https://demo.twilio.com/welcome/voice/, not POST " PUBLIC
                "/incoming: callers never reach callgate");
    expect_line(&r, "OK  ", "twilio.number.status",
                NUMBER ": call status changes -> POST " PUBLIC "/call-status");
    run_free(&r);
    /* The right URL with GET is wrong too. */
    doctor_with("\"accounts\":{\"twilio\":{\"numbers\":[{\"phone_number\":\"" NUMBER "\","
                "\"voice_method\":\"GET\"}]}}",
                NULL, &r);
    expect_rc(&r, 1);
    expect_verdict(&r, "FAIL", "twilio.number.voice", "sends calls to GET " PUBLIC "/incoming");
    run_free(&r);
}

static void test_status_callback_missing(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"accounts\":{\"twilio\":{\"numbers\":[{\"phone_number\":\"" NUMBER "\","
                "\"status_callback\":null}]}}",
                NULL, &r);
    expect_rc(&r, 0);
    expect_line(&r, "WARN", "twilio.number.status",
                NUMBER " reports call status to POST (nothing), not POST " PUBLIC
                       "/call-status: callgate learns of hang-ups later, from Vapi or its sweep");
    assert_non_null(strstr(r.out, "\n0 failed, 1 warning\n"));
    run_free(&r);
}

static void test_number_not_in_twilio(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"accounts\":{\"vapi\":{\"phone_number\":{\"number\":\"+15550100099\"}}}", NULL,
                &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "twilio.number",
                "+15550100099 is not a number of account " ACCOUNT_SID);
    run_free(&r);
}

static void test_inbound_assistant(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"accounts\":{\"vapi\":{\"phone_number\":{\"assistant_id\":\"as-inbound\"}}}",
                NULL, &r);
    expect_rc(&r, 0);
    expect_line(&r, "WARN", "vapi.number",
                NUMBER " has the inbound assistant as-inbound: calls Twilio sends to Vapi "
                       "directly would skip the queue");
    /* The number is still known, so Twilio's side is checked. */
    expect_line(&r, "OK  ", "twilio.number.voice",
                NUMBER ": a call comes in -> POST " PUBLIC "/incoming");
    run_free(&r);
}

/* Vapi answering 503: neither the key nor the assistant can be judged. */
static void test_vapi_unavailable(void **state)
{
    (void)state;
    struct run r;
    doctor_with("\"vapi\":{\"outages\":[{\"at_s\":0,\"for_s\":600,\"mode\":\"503\"}]}", NULL, &r);
    expect_rc(&r, 1);
    expect_verdict(&r, "FAIL", "vapi.credentials", "(HTTP 503: Service Unavailable)");
    expect_absent(&r, "Vapi accepts");
    expect_absent(&r, "vapi.assistant");
    run_free(&r);
}

static void test_unknown_vapi_number(void **state)
{
    (void)state;
    struct run r;
    doctor_with("", (const char *const[]){"VAPI_PHONE_NUMBER_ID=no-such-number", NULL}, &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "vapi.number",
                "phone number no-such-number not found (HTTP 404: Not Found)");
    expect_line(&r, "WARN", "twilio.number",
                "not checked: the phone number's E.164 number is unknown");
    run_free(&r);
}

static void test_workspace_unknown(void **state)
{
    (void)state;
    struct run r;
    doctor_with(
        "", (const char *const[]){"TWILIO_WORKSPACE_SID=WSbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", NULL},
        &r);
    expect_rc(&r, 1);
    expect_line(&r, "FAIL", "taskrouter.workspace",
                "workspace WSbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb cannot be read (HTTP 404: The "
                "requested resource /Workspaces/WSbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb was not found)");
    run_free(&r);
}

static void test_redis_unreachable(void **state)
{
    (void)state;
    struct run r;
    char url[64];
    snprintf(url, sizeof url, "REDIS_URL=redis://127.0.0.1:%d", cg_free_port());
    doctor_with("", (const char *const[]){url, NULL}, &r);
    expect_rc(&r, 1);
    expect_verdict(&r, "FAIL", "redis", "cannot connect to 127.0.0.1:");
    assert_non_null(strstr(r.out, "fix: start Redis or correct REDIS_URL"));
    /* The accounts are still checked. */
    expect_line(&r, "OK  ", "twilio.credentials",
                "account " ACCOUNT_SID " (callgate-sim) is active");
    run_free(&r);
}

static void test_redis_eviction_policy(void **state)
{
    (void)state;
    char *rep = cgt_redis_cmd(&fx.rs, "CONFIG SET maxmemory-policy allkeys-lru");
    assert_string_equal(rep, "OK");
    free(rep);
    struct run r;
    doctor_with("", NULL, &r);
    rep = cgt_redis_cmd(&fx.rs, "CONFIG SET maxmemory-policy noeviction");
    assert_string_equal(rep, "OK");
    free(rep);
    expect_rc(&r, 0);
    expect_line(&r, "WARN", "redis.eviction",
                "maxmemory-policy is allkeys-lru: under memory pressure Redis may evict a waiting "
                "caller's record");
    assert_non_null(strstr(r.out, "fix: CONFIG SET maxmemory-policy noeviction"));
    run_free(&r);
}

static void test_runtime_limit(void **state)
{
    (void)state;
    char *rep = cgt_redis_cmd(&fx.rs, "SET cg:{doctor}:limit 4");
    assert_string_equal(rep, "OK");
    free(rep);
    struct run r;
    doctor_with("", (const char *const[]){"GATE_NAME=doctor", NULL}, &r);
    rep = cgt_redis_cmd(&fx.rs, "DEL cg:{doctor}:limit");
    free(rep);
    expect_rc(&r, 0);
    expect_line(&r, "INFO", "gate.limit",
                "runtime limit 4 set through the admin API is in force, not MAX_CONCURRENCY=10 "
                "(DELETE /admin/limit returns to it)");
    run_free(&r);
}

/* A running instance of the gate with a lower MAX_CONCURRENCY holds the
 * gate's limit down (gate/instances.h): doctor says so. */
static void test_lower_instance_limit(void **state)
{
    (void)state;
    char *rep = cgt_redis_cmd(&fx.rs, "SET cg:{doctor}:instances_min 3 PX 60000");
    assert_string_equal(rep, "OK");
    free(rep);
    struct run r;
    doctor_with("", (const char *const[]){"GATE_NAME=doctor", NULL}, &r);
    rep = cgt_redis_cmd(&fx.rs, "DEL cg:{doctor}:instances_min");
    free(rep);
    expect_rc(&r, 0);
    expect_line(&r, "WARN", "gate.limit",
                "a running instance of this gate has MAX_CONCURRENCY=3: the gate admits no more "
                "than that, not MAX_CONCURRENCY=10");
    assert_non_null(strstr(r.out, "fix: give every instance of the gate the same MAX_CONCURRENCY"));
    run_free(&r);
}

/* rediss://: doctor speaks TLS itself and verifies as the daemon does. */
static void test_redis_tls(void **state)
{
    (void)state;
    char *pki = cgt_tmpdir();
    cgt_tls_pki(pki);
    struct cgt_redis_node node, mtls;
    cgt_redis_node_start(&node, pki, 0, NULL);
    cgt_redis_node_start(&mtls, pki, 1, NULL);
    char url[96], ca[700], other[700], cert[700], key[700], murl[96];
    snprintf(url, sizeof url, "REDIS_URL=rediss://127.0.0.1:%d", node.port);
    snprintf(murl, sizeof murl, "REDIS_URL=rediss://127.0.0.1:%d", mtls.port);
    snprintf(ca, sizeof ca, "REDIS_TLS_CA_FILE=%s/ca.pem", pki);
    snprintf(other, sizeof other, "REDIS_TLS_CA_FILE=%s/other-ca.pem", pki);
    snprintf(cert, sizeof cert, "REDIS_TLS_CERT_FILE=%s/client.pem", pki);
    snprintf(key, sizeof key, "REDIS_TLS_KEY_FILE=%s/client.key", pki);
    start_sim("");

    struct run r;
    doctor((const char *const[]){url, ca, NULL}, &r);
    expect_verdict(&r, "OK  ", "redis", " answers over TLS");
    expect_line(&r, "OK  ", "redis.eviction", "maxmemory-policy noeviction");
    expect_absent(&r, "not checked");
    run_free(&r);
    /* The certificate's name: localhost is in it, another name is not. */
    doctor((const char *const[]){url, ca, "REDIS_TLS_SERVER_NAME=localhost", NULL}, &r);
    expect_verdict(&r, "OK  ", "redis", " answers over TLS");
    run_free(&r);
    doctor((const char *const[]){url, ca, "REDIS_TLS_SERVER_NAME=redis.example.com", NULL}, &r);
    expect_rc(&r, 1);
    expect_verdict(&r, "FAIL", "redis", "certificate of redis.example.com was refused");
    assert_non_null(strstr(r.out, "REDIS_TLS_SERVER_NAME"));
    run_free(&r);
    /* Another CA: refused. */
    doctor((const char *const[]){url, other, NULL}, &r);
    expect_rc(&r, 1);
    expect_verdict(&r, "FAIL", "redis", "certificate of 127.0.0.1 was refused");
    assert_non_null(strstr(r.out, "REDIS_TLS_CA_FILE"));
    run_free(&r);
    /* A Redis that requires a client certificate: refused without, fine with. */
    doctor((const char *const[]){murl, ca, NULL}, &r);
    expect_rc(&r, 1);
    /* With TLS 1.3 the server refuses the missing certificate after the
     * handshake: the connection closes (with its alert, when it arrives
     * before the close). */
    expect_verdict(&r, "FAIL", "redis", "closed the connection");
    assert_non_null(strstr(r.out, "give REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE"));
    run_free(&r);
    doctor((const char *const[]){murl, ca, cert, key, NULL}, &r);
    expect_verdict(&r, "OK  ", "redis", " answers over TLS");
    run_free(&r);

    stop_sim();
    cgt_redis_node_stop(&mtls);
    cgt_redis_node_stop(&node);
    cg_remove_tree(pki);
    free(pki);
}

/* Sentinel: doctor asks the sentinels for the master and checks its role. */
static void test_redis_sentinel(void **state)
{
    (void)state;
    struct cgt_redis_node master, sentinel;
    cgt_redis_node_start(&master, NULL, 0, NULL);
    cgt_sentinel_start(&sentinel, "cgmaster", master.port, NULL);
    char sentinels[96], want[160];
    /* The first sentinel listed is down: the next one answers. */
    snprintf(sentinels, sizeof sentinels, "REDIS_SENTINELS=127.0.0.1:%d,127.0.0.1:%d",
             cg_free_port(), sentinel.port);
    start_sim("");

    struct run r;
    doctor((const char *const[]){sentinels, "REDIS_SENTINEL_MASTER=cgmaster",
                                 "REDIS_URL=redis://127.0.0.1:1", NULL},
           &r);
    snprintf(want, sizeof want, "names 127.0.0.1:%d as master \"cgmaster\"", master.port);
    expect_verdict(&r, "OK  ", "redis.sentinel", want);
    snprintf(want, sizeof want, "127.0.0.1:%d is the master", master.port);
    expect_line(&r, "OK  ", "redis.role", want);
    expect_verdict(&r, "OK  ", "redis", " answers");
    expect_absent(&r, "not checked");
    run_free(&r);

    doctor((const char *const[]){sentinels, "REDIS_SENTINEL_MASTER=nosuchmaster",
                                 "REDIS_URL=redis://127.0.0.1:1", NULL},
           &r);
    expect_rc(&r, 1);
    expect_verdict(&r, "FAIL", "redis.sentinel", "no sentinel named the master \"nosuchmaster\"");
    assert_non_null(strstr(r.out, "REDIS_SENTINEL_MASTER"));
    run_free(&r);

    stop_sim();
    cgt_redis_node_stop(&sentinel);
    cgt_redis_node_stop(&master);
}

/* ---- set-up ---- */

static int group_setup(void **state)
{
    (void)state;
    cgt_redis_start(&fx.rs);
    fx.dir = cgt_tmpdir();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cg_redis_server_stop(&fx.rs);
    char path[600];
    const char *files[] = {"scenario.json", "port", "queue"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fx.dir, files[i]);
        remove(path);
    }
    remove(fx.dir);
    free(fx.dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_pass),
        cmocka_unit_test(test_queue_by_name),
        cmocka_unit_test(test_wrong_twilio_token),
        cmocka_unit_test(test_account_suspended),
        cmocka_unit_test(test_wrong_vapi_key),
        cmocka_unit_test(test_unknown_assistant),
        cmocka_unit_test(test_assistant_server_url_wrong),
        cmocka_unit_test(test_server_messages),
        cmocka_unit_test(test_queue_too_small),
        cmocka_unit_test(test_queue_sid_unknown),
        cmocka_unit_test(test_voice_url_wrong),
        cmocka_unit_test(test_status_callback_missing),
        cmocka_unit_test(test_number_not_in_twilio),
        cmocka_unit_test(test_inbound_assistant),
        cmocka_unit_test(test_unknown_vapi_number),
        cmocka_unit_test(test_vapi_unavailable),
        cmocka_unit_test(test_workspace_unknown),
        cmocka_unit_test(test_redis_unreachable),
        cmocka_unit_test(test_redis_eviction_policy),
        cmocka_unit_test(test_runtime_limit),
        cmocka_unit_test(test_lower_instance_limit),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_redis_tls),
        cmocka_unit_test(test_redis_sentinel),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
