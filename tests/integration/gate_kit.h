/*
 * gate_kit.h - what the gate's integration tests share: the fixture (a
 * private redis-server, or a master, a replica and a sentinel; the Twilio
 * and Vapi fakes; up to two callgate instances), starting and stopping
 * callgate, signed Twilio and Vapi requests, the answers the fakes give for
 * Twilio's queue and Vapi's list of calls, and reads of the gate's Redis
 * state.
 *
 * Use: include it after the test's own headers; use setup/teardown (or
 * setup_sentinel, teardown_graceful) as the cmocka fixture, then
 * start_gate(f, i, extra) for instance i (0 or 1). Every gate gets the
 * kit's settings (spawn_gate below: credentials, a limit of 2 and quick
 * timers, unless f->callgate_defaults), then the file's (f->env, set by
 * its setup), then the test's own (extra), each "NAME=value" or "-NAME"
 * to leave an option unset; the last one wins.
 * start_gate waits until the gate serves (healthy, first repair done,
 * routes published); spawn_gate does not wait. The fixture owns every
 * process and file it starts or writes; teardown ends and removes them.
 * What needs no fixture (signing, the fakes' JSON) is the harness
 * library's (gatereq.h), which the helpers here wrap.
 *
 * Included once per test file: every helper is static, and those a file
 * does not use are no warning (KIT_FN). Defined before the include,
 * GATE_KIT_SID_FORMAT gives a file's CallSids a prefix of its own, and
 * GATE_KIT_FIXTURE_MEMBERS adds the file's own members to struct fixture
 * (zeroed by setup; the file frees what it puts there before teardown).
 */
#ifndef CG_TEST_GATE_KIT_H
#define CG_TEST_GATE_KIT_H

#include "base/fmacros.h"

#include "gatereq.h"
#include "redisx.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "demo/proc.h"
#include "fakeapi.h"

#define KIT_FN __attribute__((unused))
#ifndef GATE_KIT_SID_FORMAT
#define GATE_KIT_SID_FORMAT "CA%032x"
#endif

#define ACCOUNT_SID  "AC0123456789abcdef0123456789abcdef"
#define AUTH_TOKEN   "test-twilio-auth-token-42"
#define QUEUE_SID    "QU0123456789abcdef0123456789abcdef"
#define VAPI_KEY     "test-vapi-api-key-7"
#define PHONE_ID     "phone-number-id-1"
#define ASSISTANT_ID "assistant-id-1"
#define VAPI_SECRET  "test-vapi-webhook-secret"
#define CALLER       "+15557770000"
#define QUEUE_NAME   "customer-support"
#define P            "cg:{default}:"

/* Generous bounds for things that take milliseconds when all is well. */
#define SOON  5000
#define LATER 10000

/* The sentinels' name for the master (setup_sentinel). */
#define SENTINEL_MASTER "cgmaster"

/* Two routes under one limit (ROUTES_FILE, see routes_file()): support
 * and sales, the higher priority, each of min 1 and max 2. */
#define SUPPORT "+15550100000"
#define SALES   "+15550100001"
#define TWO_ROUTES                                                                                 \
    "{\"routes\": ["                                                                               \
    "{\"name\": \"support\", \"numbers\": [\"" SUPPORT "\"], \"assistantId\": \"asst-support\", "  \
    "\"phoneNumberId\": \"pn-support\", \"queue\": \"support\", \"max\": 2, \"min\": 1, "          \
    "\"priority\": 1},"                                                                            \
    "{\"name\": \"sales\", \"numbers\": [\"" SALES "\"], \"assistantId\": \"asst-sales\", "        \
    "\"phoneNumberId\": \"pn-sales\", \"queue\": \"sales\", \"max\": 2, \"min\": 1, "              \
    "\"priority\": 2}]}"

struct gate {
    struct cgt_proc proc;
    int port;
    char base[64];    /* where the test connects */
    char public[256]; /* PUBLIC_URL, what Twilio signs: base and a path prefix */
};

struct fixture {
    struct cg_redis_server rs; /* setup's Redis */
    /* setup_sentinel's instead: the gates find the master through the
     * sentinel. */
    int behind_sentinel;
    struct cgt_redis_node master, replica, sentinel;
    struct cgt_fake *fake;
    struct gate g[2];
    /* The test file's own settings for all its gates (NULL-terminated, or
     * NULL), set by its setup: after the kit's, before start_gate's extra. */
    const char *const *env;
    /* Set by its setup: the gates keep callgate's defaults for the limit,
     * the queue's name and the timers the kit otherwise sets. */
    int callgate_defaults;
#ifdef GATE_KIT_FIXTURE_MEMBERS
    GATE_KIT_FIXTURE_MEMBERS
#endif
    char *tmp;                /* files the test writes (routes_file), or NULL */
    char routes_setting[600]; /* ROUTES_FILE=... */
};

static unsigned sid_counter;

static KIT_FN void new_sid(char out[40])
{
    snprintf(out, 40, GATE_KIT_SID_FORMAT, ++sid_counter);
}

/* ---- failure reports ---- */

/* The tail of every callgate's log, for failure messages. */
static KIT_FN void dump_logs(struct fixture *f)
{
    for (int i = 0; i < 2; i++) {
        char label[32];
        snprintf(label, sizeof label, "callgate %d", i);
        cgt_dump_log_tail(&f->g[i].proc, label, 6000);
    }
}

#define must(f, cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            dump_logs(f);                                                                          \
            fail_msg(__VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)

/* ---- processes ---- */

static KIT_FN void start_fake(struct fixture *f)
{
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
}

static KIT_FN int setup(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    start_fake(f);
    *state = f;
    return 0;
}

/* A master, a replica in sync with it, and one sentinel that knows both
 * (name SENTINEL_MASTER), instead of the private Redis. */
static KIT_FN int setup_sentinel(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    f->behind_sentinel = 1;
    *state = f;
    cgt_sentinel_trio(&f->master, &f->replica, &f->sentinel, SENTINEL_MASTER, NULL, 1);
    start_fake(f);
    return 0;
}

static KIT_FN int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 2; i++)
        if (f->g[i].proc.pid > 0)
            cgt_stop(&f->g[i].proc, SIGKILL, 1000);
    if (f->fake)
        cgt_fake_stop(f->fake);
    if (f->behind_sentinel) {
        cgt_redis_node_stop(&f->sentinel);
        cgt_redis_node_stop(&f->replica);
        cgt_redis_node_stop(&f->master);
    } else {
        cg_redis_server_stop(&f->rs);
    }
    if (f->tmp) {
        cg_remove_tree(f->tmp);
        free(f->tmp);
    }
    free(f);
    return 0;
}

/* For fixtures whose gates run until the end of each test: every gate
 * still running must exit well on SIGTERM (a leak or crash fails under
 * the sanitizers), and callgate's API calls were all to endpoints that
 * exist, with the right credentials. Everything is torn down first. */
static KIT_FN int teardown_graceful(void **state)
{
    struct fixture *f = *state;
    int rc[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        if (f->g[i].proc.pid <= 0)
            continue;
        rc[i] = cgt_stop(&f->g[i].proc, SIGTERM, 10000);
        if (rc[i] != 0)
            cgt_dump_log_tail(&f->g[i].proc, i ? "callgate 1" : "callgate 0", 6000);
    }
    int unauthorized = cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED);
    int unknown = cgt_fake_count(f->fake, CGT_EP_UNKNOWN);
    teardown(state);
    assert_int_equal(rc[0], 0);
    assert_int_equal(rc[1], 0);
    assert_int_equal(unauthorized, 0);
    assert_int_equal(unknown, 0);
    return 0;
}

/* Writes doc to a file removed by teardown; the ROUTES_FILE setting that
 * names it (for start_gate's extra). */
static KIT_FN const char *routes_file(struct fixture *f, const char *doc)
{
    if (f->tmp == NULL)
        f->tmp = cgt_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/routes.json", f->tmp);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(doc, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    snprintf(f->routes_setting, sizeof f->routes_setting, "ROUTES_FILE=%s", path);
    return f->routes_setting;
}

/* Starts callgate instance i without waiting for it. public_path is
 * appended to PUBLIC_URL (a reverse proxy's prefix, which it strips). */
static KIT_FN void spawn_gate_at(struct fixture *f, int i, const char *public_path,
                                 const char *const *extra)
{
    struct gate *g = &f->g[i];
    g->port = cg_free_port();
    snprintf(g->base, sizeof g->base, "http://127.0.0.1:%d", g->port);
    char public[sizeof g->public];
    snprintf(public, sizeof public, "%s%s", g->base, public_path);
    memcpy(g->public, public, sizeof public);
    char port[32], pub[300], redis[96], sentinels[64], twbase[96], vbase[96], inst[32];
    snprintf(port, sizeof port, "PORT=%d", g->port);
    snprintf(pub, sizeof pub, "PUBLIC_URL=%s", g->public);
    /* Behind the sentinel, REDIS_URL is replaced by the master it names. */
    snprintf(redis, sizeof redis, "REDIS_URL=%s",
             f->behind_sentinel ? "redis://127.0.0.1:1" : f->rs.url);
    snprintf(sentinels, sizeof sentinels, "REDIS_SENTINELS=127.0.0.1:%d", f->sentinel.port);
    snprintf(twbase, sizeof twbase, "TWILIO_API_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(vbase, sizeof vbase, "VAPI_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(inst, sizeof inst, "INSTANCE_ID=gate%d", i);
    static const char *const base_env[] = {"BIND_ADDRESS=127.0.0.1",
                                           "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
                                           "TWILIO_AUTH_TOKEN=" AUTH_TOKEN,
                                           "TWILIO_QUEUE_SID=" QUEUE_SID,
                                           "VAPI_API_KEY=" VAPI_KEY,
                                           "VAPI_PHONE_NUMBER_ID=" PHONE_ID,
                                           "VAPI_ASSISTANT_ID=" ASSISTANT_ID,
                                           "VAPI_WEBHOOK_SECRET=" VAPI_SECRET,
                                           "LOG_LEVEL=debug",
                                           NULL};
    /* Unless f->callgate_defaults: a small limit, quick timers. */
    static const char *const tuning_env[] = {"TWILIO_QUEUE_NAME=" QUEUE_NAME,
                                             "MAX_CONCURRENCY=2",
                                             "SWEEP_INTERVAL_MS=100",
                                             "END_GRACE_MS=300",
                                             "ADMISSION_BACKOFF_MIN_MS=50",
                                             "ADMISSION_BACKOFF_MAX_MS=400",
                                             "REDIS_RECONNECT_MIN_MS=20",
                                             "REDIS_RECONNECT_MAX_MS=200",
                                             "REDIS_COMMAND_TIMEOUT_MS=500",
                                             "SHUTDOWN_GRACE_MS=2000",
                                             NULL};
    const char *const sentinel_env[] = {sentinels, "REDIS_SENTINEL_MASTER=" SENTINEL_MASTER, NULL};
    static const char *const none[] = {NULL};
    /* Nothing from the test's own environment; the test's own settings last. */
    const char *const mine[] = {port, pub, redis, twbase, vbase, inst, NULL};
    const char *const *lists[] = {mine,
                                  f->behind_sentinel ? sentinel_env : none,
                                  base_env,
                                  f->callgate_defaults ? none : tuning_env,
                                  f->env ? f->env : none,
                                  extra ? extra : none,
                                  NULL};
    cgt_spawn_callgate(&g->proc, lists);
}

static KIT_FN void spawn_gate(struct fixture *f, int i, const char *const *extra)
{
    spawn_gate_at(f, i, "", extra);
}

/* Starts callgate instance i and waits until it serves: healthy, the
 * first repair of the slots done, and its routes published when extra
 * sets ROUTES_FILE. */
static KIT_FN void start_gate_at(struct fixture *f, int i, const char *public_path,
                                 const char *const *extra)
{
    spawn_gate_at(f, i, public_path, extra);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->g[i].base);
    must(f, cgt_wait_status(url, 200, 15000) == 0, "callgate %d did not become healthy", i);
    /* Admission waits for the first repair of the slots from Vapi's live
     * calls (a fresh Redis has no marker); the tests expect it done. */
    if (f->behind_sentinel)
        must(f, cgt_node_wait(&f->master, "EXISTS " P "intact", "1", 15000) == 0,
             "the first repair never ended");
    else
        must(f, cgt_redis_wait_key(&f->rs, P "intact", 15000) == 0, "the first repair never ended");
    for (size_t k = 0; extra && extra[k]; k++)
        if (strncmp(extra[k], "ROUTES_FILE=", 12) == 0 && !f->behind_sentinel)
            must(f, cgt_redis_wait_key(&f->rs, P "routes", 15000) == 0,
                 "the routes were never published");
}

static KIT_FN void start_gate(struct fixture *f, int i, const char *const *extra)
{
    start_gate_at(f, i, "", extra);
}

/* Graceful stop; a leak or crash (sanitizer builds) fails the test. */
static KIT_FN void stop_gate(struct fixture *f, int i)
{
    int rc = cgt_stop(&f->g[i].proc, SIGTERM, 10000);
    must(f, rc == 0, "callgate %d exited with %d", i, rc);
    /* Every API call callgate made was to an endpoint that exists, with the
     * right credentials. */
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED), 0);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNKNOWN), 0);
}

/* ---- HTTP ---- */

static KIT_FN void url_of(const struct fixture *f, int i, const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s%s", f->g[i].base, path);
}

/* POSTs a form signed as Twilio signs it (over PUBLIC_URL and path) with
 * token; kv is name, value, ..., NULL. sign_kv, when not NULL, is what the
 * signature covers instead. */
static KIT_FN void twilio_send(struct fixture *f, int i, const char *path, const char *const *kv,
                               const char *const *sign_kv, const char *token, struct cgt_resp *r)
{
    char url[512], signed_url[768];
    url_of(f, i, path, url, sizeof url);
    snprintf(signed_url, sizeof signed_url, "%s%s", f->g[i].public, path);
    cgt_twilio_post(url, signed_url, token, kv, sign_kv, r);
}

/* Signed with the account's token, over other values than those sent. */
static KIT_FN void twilio_post_as(struct fixture *f, int i, const char *path, const char *const *kv,
                                  const char *const *sign_kv, struct cgt_resp *r)
{
    twilio_send(f, i, path, kv, sign_kv, AUTH_TOKEN, r);
}

static KIT_FN void twilio_post(struct fixture *f, int i, const char *path, const char *const *kv,
                               struct cgt_resp *r)
{
    twilio_send(f, i, path, kv, NULL, AUTH_TOKEN, r);
}

/* A caller from `from` dialled `to` (a route's number, with routes). */
static KIT_FN void incoming_call(struct fixture *f, int i, const char *sid, const char *from,
                                 const char *to, struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,          "AccountSid", ACCOUNT_SID, "From",    from, "To",
                        to,        "CallStatus", "ringing",    "Direction", "inbound", NULL};
    twilio_post(f, i, "/incoming", kv, r);
}

static KIT_FN void incoming(struct fixture *f, int i, const char *sid, struct cgt_resp *r)
{
    incoming_call(f, i, sid, CALLER, "+15550002222", r);
}

/* /incoming for sid, which must answer 200; the body (malloc'd). */
static KIT_FN char *incoming_body(struct fixture *f, int i, const char *sid)
{
    struct cgt_resp r;
    incoming(f, i, sid, &r);
    must(f, r.status == 200, "/incoming for %s answered %ld", sid, r.status);
    char *out = cg_strdup(r.body ? r.body : "");
    cgt_resp_free(&r);
    return out;
}

static KIT_FN void queue_wait(struct fixture *f, int i, const char *sid, struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,         "AccountSid", ACCOUNT_SID,     "QueueSid",
                        QUEUE_SID, "QueueTime", "3",          "QueuePosition", "1",
                        "From",    CALLER,      NULL};
    twilio_post(f, i, "/queue-wait", kv, r);
}

static KIT_FN void queue_exit(struct fixture *f, int i, const char *sid, const char *result,
                              struct cgt_resp *r)
{
    const char *kv[] = {"CallSid",  sid,       "AccountSid", ACCOUNT_SID, "QueueResult", result,
                        "QueueSid", QUEUE_SID, "QueueTime",  "4",         NULL};
    twilio_post(f, i, "/queue-exit", kv, r);
}

static KIT_FN long call_status(struct fixture *f, int i, const char *sid, const char *status)
{
    const char *kv[] = {"CallSid", sid, "AccountSid", ACCOUNT_SID, "CallStatus", status, NULL};
    struct cgt_resp r;
    twilio_post(f, i, "/call-status", kv, &r);
    long st = r.status;
    cgt_resp_free(&r);
    return st;
}

static KIT_FN void vapi_post(struct fixture *f, int i, const char *secret, const char *body,
                             struct cgt_resp *r)
{
    char url[256], sec[128];
    url_of(f, i, "/call-ended", url, sizeof url);
    snprintf(sec, sizeof sec, "x-vapi-secret: %s", secret ? secret : "");
    const char *h[] = {"Content-Type: application/json", secret ? sec : NULL, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
}

/* Posts a Vapi server message, which must be answered 200; the answer's
 * "result" (malloc'd, "" when it has none). what names it in a failure. */
static KIT_FN char *vapi_message(struct fixture *f, int i, const char *body, const char *what)
{
    struct cgt_resp r;
    vapi_post(f, i, VAPI_SECRET, body, &r);
    must(f, r.status == 200, "%s answered %ld: %s", what, r.status, r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *res = json_string_value(json_object_get(j, "result"));
    char *out = cg_strdup(res ? res : "");
    json_decref(j);
    cgt_resp_free(&r);
    return out;
}

/* Sends Vapi's end of a call (status-update "ended", or the end-of-call
 * report) for the reason given and returns the gate's "result"
 * (malloc'd). */
static KIT_FN char *vapi_end_for(struct fixture *f, int i, const char *vapi_id, int report,
                                 const char *reason)
{
    char body[512];
    if (report)
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":"
                 "\"%s\",\"call\":{\"id\":\"%s\"}}}",
                 reason, vapi_id);
    else
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"endedReason\":"
                 "\"%s\",\"call\":{\"id\":\"%s\"}}}",
                 reason, vapi_id);
    char what[128];
    snprintf(what, sizeof what, "vapi end for %s", vapi_id);
    return vapi_message(f, i, body, what);
}

/* The same for a caller who hung up. */
static KIT_FN char *vapi_end(struct fixture *f, int i, const char *vapi_id, int report)
{
    return vapi_end_for(f, i, vapi_id, report, "customer-ended-call");
}

static KIT_FN json_t *resp_json(const struct cgt_resp *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (j == NULL)
        fail_msg("not JSON (status %ld): %s", r->status, r->body ? r->body : "");
    return j;
}

/* A string member of j, "" when absent or not a string. */
static KIT_FN const char *json_s(const json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v ? v : "";
}

/* GET path of instance i, without credentials: its JSON answer, and the
 * status in *status. */
static KIT_FN json_t *get_json_of(struct fixture *f, int i, const char *path, long *status)
{
    char url[256];
    url_of(f, i, path, url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    *status = r.status;
    json_t *j = resp_json(&r);
    cgt_resp_free(&r);
    return j;
}

static KIT_FN long long json_num(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static KIT_FN void assert_content_type(const struct cgt_resp *r, const char *want)
{
    char *ct = cgt_resp_header(r, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, want, strlen(want)) == 0);
    free(ct);
}

static KIT_FN void assert_contains(const char *hay, const char *needle)
{
    if (hay == NULL || strstr(hay, needle) == NULL)
        fail_msg("expected to find \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

static KIT_FN void assert_lacks(const char *hay, const char *needle)
{
    if (hay != NULL && strstr(hay, needle) != NULL)
        fail_msg("did not expect \"%s\" in \"%s\"", needle, hay);
}

/* The Enqueue TwiML any instance answers with. */
static KIT_FN void assert_enqueue(struct fixture *f, int i, const struct cgt_resp *r)
{
    must(f, r->status == 200, "expected 200, got %ld: %s", r->status, r->body ? r->body : "");
    assert_content_type(r, "text/xml");
    char want[256];
    snprintf(want, sizeof want, "<Enqueue action=\"%s/queue-exit\"", f->g[i].base);
    assert_contains(r->body, want);
    snprintf(want, sizeof want, "waitUrl=\"%s/queue-wait\"", f->g[i].base);
    assert_contains(r->body, want);
    assert_contains(r->body, ">" QUEUE_NAME "</Enqueue>");
}

/* ---- Redis ---- */

static KIT_FN char *field_of(struct fixture *f, const char *sid, const char *field)
{
    return cgt_redis_cmd(&f->rs, "HGET " P "call:%s %s", sid, field);
}

static KIT_FN long long num_reply(char *s)
{
    long long v = strcmp(s, "(nil)") == 0 ? 0 : strtoll(s, NULL, 10);
    free(s);
    return v;
}

/* A command's integer answer on the fixture's Redis; -1 for nil. */
static KIT_FN __attribute__((format(printf, 2, 3))) long long redis_int(struct fixture *f,
                                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long long v = cgt_redis_vint(f->rs.port, fmt, ap);
    va_end(ap);
    return v;
}

static KIT_FN long long stat_of(struct fixture *f, const char *field)
{
    return num_reply(cgt_redis_cmd(&f->rs, "HGET " P "stats %s", field));
}

static KIT_FN long long zcard(struct fixture *f, const char *key)
{
    return num_reply(cgt_redis_cmd(&f->rs, "ZCARD " P "%s", key));
}

static KIT_FN int in_active(struct fixture *f, const char *member)
{
    char *s = cgt_redis_cmd(&f->rs, "ZSCORE " P "active %s", member);
    int yes = strcmp(s, "(nil)") != 0;
    free(s);
    return yes;
}

/* The gate's keys (KEYS output, sorted) but the instance registry's
 * (instances, instances_min, inst:<id>) and the board's occupancy samples,
 * which every running instance keeps up to date whatever requests it gets.
 * malloc'd. */
#define GATE_KIT_KEYS_LUA                                                                          \
    "local o = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "                             \
    "if not string.find(k, ':inst', 1, true) and not string.find(k, ':occupancy', 1, true) "       \
    "then o[#o + 1] = k end end table.sort(o) return o"
static KIT_FN char *state_keys(struct fixture *f)
{
    return cgt_redis_cmd(&f->rs, "EVAL %s 0 %s", GATE_KIT_KEYS_LUA, P "*");
}

/* 1-based position in the waiting queue, 0 when not waiting. */
static KIT_FN long long position_of(struct fixture *f, const char *sid)
{
    char *s = cgt_redis_cmd(&f->rs, "ZRANK " P "waiting %s", sid);
    long long v = strcmp(s, "(nil)") == 0 ? 0 : strtoll(s, NULL, 10) + 1;
    free(s);
    return v;
}

/* Polls the caller's record until field equals want. */
static KIT_FN void wait_field(struct fixture *f, const char *sid, const char *field,
                              const char *want, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *v = field_of(f, sid, field);
        int ok = strcmp(v, want) == 0;
        if (ok) {
            free(v);
            return;
        }
        if (cgt_now_ms() >= deadline) {
            dump_logs(f);
            char msg[256];
            snprintf(msg, sizeof msg, "%s of %s is \"%s\", wanted \"%s\"", field, sid, v, want);
            free(v);
            fail_msg("%s", msg);
        }
        free(v);
        cgt_sleep_ms(10);
    }
}

static KIT_FN void wait_state(struct fixture *f, const char *sid, const char *want, int timeout_ms)
{
    wait_field(f, sid, "state", want, timeout_ms);
}

static KIT_FN void assert_state(struct fixture *f, const char *sid, const char *want)
{
    char *v = field_of(f, sid, "state");
    must(f, strcmp(v, want) == 0, "state of %s is \"%s\", expected \"%s\"", sid, v, want);
    free(v);
}

static KIT_FN void wait_update(struct fixture *f, const char *sid, int n, int timeout_ms)
{
    must(f, cgt_fake_wait_update(f->fake, sid, n, timeout_ms) == 0,
         "no Calls update #%d for %s (saw %d)", n, sid, cgt_fake_update_count(f->fake, sid));
}

static KIT_FN void wait_fake(struct fixture *f, enum cgt_fake_ep ep, int n, int timeout_ms)
{
    must(f, cgt_fake_wait_count(f->fake, ep, n, timeout_ms) == 0,
         "fake endpoint %d reached %d requests, wanted %d", (int)ep, cgt_fake_count(f->fake, ep),
         n);
}

/* The Vapi call the fake created last for sid (malloc'd). */
static KIT_FN char *vapi_id_of(struct fixture *f, const char *sid)
{
    char *id = cgt_fake_vapi_id(f->fake, sid);
    must(f, id != NULL, "no vapi call was created for %s", sid);
    return id;
}

/* The caller's last Calls update carried exactly the TwiML Vapi gave for
 * its call. */
static KIT_FN void assert_pushed_vapi_twiml(struct fixture *f, const char *sid)
{
    char *id = vapi_id_of(f, sid);
    char *want = cgt_fake_twiml_for(id);
    char *got = cgt_fake_update_twiml(f->fake, sid);
    must(f, got != NULL && strcmp(got, want) == 0, "pushed TwiML for %s: %s", sid,
         got ? got : "(none)");
    char *rec = field_of(f, sid, "vapi_id");
    assert_string_equal(rec, id);
    free(rec);
    free(got);
    free(want);
    free(id);
}

/* A caller that arrives while a slot is free and nobody waits: the webhook
 * answers with the assistant's TwiML itself. */
static KIT_FN void connect_fast(struct fixture *f, int i, const char *sid)
{
    struct cgt_resp r;
    incoming(f, i, sid, &r);
    must(f, r.status == 200, "/incoming answered %ld", r.status);
    char *id = vapi_id_of(f, sid);
    char *want = cgt_fake_twiml_for(id);
    must(f, r.body && strcmp(r.body, want) == 0, "fast path answered: %s", r.body);
    free(want);
    free(id);
    cgt_resp_free(&r);
    wait_state(f, sid, "connected", SOON);
}

/* A caller that must wait: the webhook answers Enqueue. */
static KIT_FN void enqueue(struct fixture *f, int i, const char *sid)
{
    struct cgt_resp r;
    incoming(f, i, sid, &r);
    assert_enqueue(f, i, &r);
    cgt_resp_free(&r);
}

/* ---- what the fakes answer ---- */

/* One call of Vapi's GET /call answer (cgt_vapi_call_json) from the
 * kit's phone number and caller: created age_ms ago, placed by gate
 * `gate` for the caller sid. */
static KIT_FN void vapi_call_json(char *out, size_t n, const char *id, const char *status,
                                  const char *sid, const char *gate, int age_ms)
{
    cgt_vapi_call_json(out, n, id, status, sid, gate, PHONE_ID, CALLER, age_ms);
}

/* Twilio's queue (GET .../Members) holds the callers sids (NULL-
 * terminated) in this order, the first enqueued first and waiting
 * wait_s, each next one a second less. */
static KIT_FN void set_queue_members(struct fixture *f, const char *const *sids, int wait_s)
{
    char *members = cgt_queue_members_json(QUEUE_SID, sids, wait_s);
    cgt_fake_set_queue_members(f->fake, members);
    free(members);
}

#endif
