/*
 * Queued callbacks end to end (docs/ARCHITECTURE.md, "Callbacks"): real
 * callgate processes and a real redis-server, Twilio's and Vapi's APIs
 * played by the fake in tests/harness/fakeapi.c (which places outbound
 * calls). The test plays Twilio's side of the calls: it signs the hold
 * answer's requests, the keypad, and the outbound leg's answer and status
 * webhooks as Twilio does, and reads the gate's state from Redis.
 *
 * Everything that happens asynchronously is awaited by polling with a
 * timeout; no assertion depends on how fast anything is.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "fakeapi.h"
#include "base/form.h"
#include "demo/proc.h"
#include "twilio/signature.h"

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

struct gate {
    struct cgt_proc proc;
    int port;
    char base[64];
};

struct fixture {
    struct cg_redis_server rs;
    struct cgt_fake *fake;
    struct gate g[2];
};

static unsigned sid_counter;

static void new_sid(char out[40])
{
    snprintf(out, 40, "CAf%031x", ++sid_counter);
}

/* ---- failure reports ---- */

/* The tail of every callgate's log, for failure messages. */
static void dump_logs(struct fixture *f)
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

static int setup(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 2; i++)
        if (f->g[i].proc.pid > 0)
            cgt_stop(&f->g[i].proc, SIGKILL, 1000);
    cgt_fake_stop(f->fake);
    cg_redis_server_stop(&f->rs);
    free(f);
    return 0;
}

/* Starts callgate instance i without waiting for it. */
static void spawn_gate(struct fixture *f, int i, const char *const *extra)
{
    struct gate *g = &f->g[i];
    g->port = cg_free_port();
    snprintf(g->base, sizeof g->base, "http://127.0.0.1:%d", g->port);
    char port[32], pub[96], redis[96], twbase[96], vbase[96], inst[32];
    snprintf(port, sizeof port, "PORT=%d", g->port);
    snprintf(pub, sizeof pub, "PUBLIC_URL=%s", g->base);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->rs.url);
    snprintf(twbase, sizeof twbase, "TWILIO_API_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(vbase, sizeof vbase, "VAPI_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(inst, sizeof inst, "INSTANCE_ID=gate%d", i);
    static const char *const base_env[] = {"BIND_ADDRESS=127.0.0.1",
                                           "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
                                           "TWILIO_AUTH_TOKEN=" AUTH_TOKEN,
                                           "TWILIO_QUEUE_SID=" QUEUE_SID,
                                           "TWILIO_QUEUE_NAME=" QUEUE_NAME,
                                           "VAPI_API_KEY=" VAPI_KEY,
                                           "VAPI_PHONE_NUMBER_ID=" PHONE_ID,
                                           "VAPI_ASSISTANT_ID=" ASSISTANT_ID,
                                           "VAPI_WEBHOOK_SECRET=" VAPI_SECRET,
                                           "MAX_CONCURRENCY=2",
                                           "SWEEP_INTERVAL_MS=100",
                                           "END_GRACE_MS=300",
                                           "ADMISSION_BACKOFF_MIN_MS=50",
                                           "ADMISSION_BACKOFF_MAX_MS=400",
                                           "LOG_LEVEL=debug",
                                           "REDIS_RECONNECT_MIN_MS=20",
                                           "REDIS_RECONNECT_MAX_MS=200",
                                           "REDIS_COMMAND_TIMEOUT_MS=500",
                                           "SHUTDOWN_GRACE_MS=2000",
                                           NULL};
    /* Nothing from the test's own environment; the test's own settings last. */
    const char *const mine[] = {port, pub, redis, twbase, vbase, inst, NULL};
    const char *const *lists[] = {mine, base_env, extra, NULL};
    cgt_spawn_callgate(&g->proc, lists);
}

static void start_gate(struct fixture *f, int i, const char *const *extra)
{
    spawn_gate(f, i, extra);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->g[i].base);
    must(f, cgt_wait_status(url, 200, 15000) == 0, "callgate %d did not become healthy", i);
    /* Admission waits for the first repair of the slots from Vapi's live
     * calls (a fresh Redis has no marker); the tests expect it done. */
    uint64_t until = cgt_now_ms() + 10000;
    for (;;) {
        char *ok = cgt_redis_cmd(&f->rs, "EXISTS " P "intact");
        int done = strcmp(ok, "1") == 0;
        free(ok);
        if (done || cgt_now_ms() > until)
            break;
        cgt_sleep_ms(10);
    }
}

/* Graceful stop; a leak or crash (sanitizer builds) fails the test. */
static void stop_gate(struct fixture *f, int i)
{
    int rc = cgt_stop(&f->g[i].proc, SIGTERM, 10000);
    must(f, rc == 0, "callgate %d exited with %d", i, rc);
    /* Every API call callgate made was to an endpoint that exists, with the
     * right credentials. */
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED), 0);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNKNOWN), 0);
}

/* ---- HTTP ---- */

static void url_of(const struct fixture *f, int i, const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s%s", f->g[i].base, path);
}

/* POSTs a form signed as Twilio signs it; kv is name, value, ..., NULL.
 * sign_kv, when not NULL, is what the signature covers instead. */
static void twilio_post_as(struct fixture *f, int i, const char *path, const char *const *kv,
                           const char *const *sign_kv, struct cgt_resp *r)
{
    char url[256];
    url_of(f, i, path, url, sizeof url);
    struct cg_form form, signed_form;
    cg_form_init(&form);
    cg_form_init(&signed_form);
    for (size_t k = 0; kv[k] && kv[k + 1]; k += 2)
        cg_form_add(&form, kv[k], kv[k + 1]);
    const char *const *skv = sign_kv ? sign_kv : kv;
    for (size_t k = 0; skv[k] && skv[k + 1]; k += 2)
        cg_form_add(&signed_form, skv[k], skv[k + 1]);
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(AUTH_TOKEN, url, &signed_form, sig), 0);
    char sigh[64];
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(&form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
    free(body);
    cg_form_free(&form);
    cg_form_free(&signed_form);
}

static void twilio_post(struct fixture *f, int i, const char *path, const char *const *kv,
                        struct cgt_resp *r)
{
    twilio_post_as(f, i, path, kv, NULL, r);
}

static void incoming(struct fixture *f, int i, const char *sid, struct cgt_resp *r)
{
    const char *kv[] = {
        "CallSid",      sid,          "AccountSid", ACCOUNT_SID, "From",    CALLER, "To",
        "+15550002222", "CallStatus", "ringing",    "Direction", "inbound", NULL};
    twilio_post(f, i, "/incoming", kv, r);
}

static void queue_wait(struct fixture *f, int i, const char *sid, struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,         "AccountSid", ACCOUNT_SID,     "QueueSid",
                        QUEUE_SID, "QueueTime", "3",          "QueuePosition", "1",
                        "From",    CALLER,      NULL};
    twilio_post(f, i, "/queue-wait", kv, r);
}

static void queue_exit(struct fixture *f, int i, const char *sid, const char *result,
                       struct cgt_resp *r)
{
    const char *kv[] = {"CallSid",  sid,       "AccountSid", ACCOUNT_SID, "QueueResult", result,
                        "QueueSid", QUEUE_SID, "QueueTime",  "4",         NULL};
    twilio_post(f, i, "/queue-exit", kv, r);
}

static void vapi_post(struct fixture *f, int i, const char *secret, const char *body,
                      struct cgt_resp *r)
{
    char url[256], sec[128];
    url_of(f, i, "/call-ended", url, sizeof url);
    snprintf(sec, sizeof sec, "x-vapi-secret: %s", secret ? secret : "");
    const char *h[] = {"Content-Type: application/json", secret ? sec : NULL, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
}

/* Sends Vapi's end of a call (status-update "ended", or the end-of-call
 * report) and returns the gate's "result" (malloc'd). */
static char *vapi_end(struct fixture *f, int i, const char *vapi_id, int report)
{
    char body[512];
    if (report)
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":"
                 "\"customer-ended-call\",\"call\":{\"id\":\"%s\"}}}",
                 vapi_id);
    else
        snprintf(body, sizeof body,
                 "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"endedReason\":"
                 "\"customer-ended-call\",\"call\":{\"id\":\"%s\"}}}",
                 vapi_id);
    struct cgt_resp r;
    vapi_post(f, i, VAPI_SECRET, body, &r);
    must(f, r.status == 200, "vapi end for %s answered %ld: %s", vapi_id, r.status,
         r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *res = json_string_value(json_object_get(j, "result"));
    char *out = cg_strdup(res ? res : "");
    json_decref(j);
    cgt_resp_free(&r);
    return out;
}

static void assert_content_type(const struct cgt_resp *r, const char *want)
{
    char *ct = cgt_resp_header(r, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, want, strlen(want)) == 0);
    free(ct);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (hay == NULL || strstr(hay, needle) == NULL)
        fail_msg("expected to find \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (hay != NULL && strstr(hay, needle) != NULL)
        fail_msg("did not expect \"%s\" in \"%s\"", needle, hay);
}

/* The Enqueue TwiML any instance answers with. */
static void assert_enqueue(struct fixture *f, int i, const struct cgt_resp *r)
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

static char *field_of(struct fixture *f, const char *sid, const char *field)
{
    return cgt_redis_cmd(&f->rs, "HGET " P "call:%s %s", sid, field);
}

static long long num_reply(char *s)
{
    long long v = strcmp(s, "(nil)") == 0 ? 0 : strtoll(s, NULL, 10);
    free(s);
    return v;
}

static long long stat_of(struct fixture *f, const char *field)
{
    return num_reply(cgt_redis_cmd(&f->rs, "HGET " P "stats %s", field));
}

static long long zcard(struct fixture *f, const char *key)
{
    return num_reply(cgt_redis_cmd(&f->rs, "ZCARD " P "%s", key));
}

static int in_active(struct fixture *f, const char *member)
{
    char *s = cgt_redis_cmd(&f->rs, "ZSCORE " P "active %s", member);
    int yes = strcmp(s, "(nil)") != 0;
    free(s);
    return yes;
}

/* 1-based position in the waiting queue, 0 when not waiting. */
static long long position_of(struct fixture *f, const char *sid)
{
    char *s = cgt_redis_cmd(&f->rs, "ZRANK " P "waiting %s", sid);
    long long v = strcmp(s, "(nil)") == 0 ? 0 : strtoll(s, NULL, 10) + 1;
    free(s);
    return v;
}

/* Polls the caller's record until field equals want. */
static void wait_field(struct fixture *f, const char *sid, const char *field, const char *want,
                       int timeout_ms)
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

static void wait_state(struct fixture *f, const char *sid, const char *want, int timeout_ms)
{
    wait_field(f, sid, "state", want, timeout_ms);
}

static void assert_state(struct fixture *f, const char *sid, const char *want)
{
    char *v = field_of(f, sid, "state");
    must(f, strcmp(v, want) == 0, "state of %s is \"%s\", expected \"%s\"", sid, v, want);
    free(v);
}

static void wait_fake(struct fixture *f, enum cgt_fake_ep ep, int n, int timeout_ms)
{
    must(f, cgt_fake_wait_count(f->fake, ep, n, timeout_ms) == 0,
         "fake endpoint %d reached %d requests, wanted %d", (int)ep, cgt_fake_count(f->fake, ep),
         n);
}

/* The Vapi call the fake created last for sid (malloc'd). */
static char *vapi_id_of(struct fixture *f, const char *sid)
{
    char *id = cgt_fake_vapi_id(f->fake, sid);
    must(f, id != NULL, "no vapi call was created for %s", sid);
    return id;
}

/* A caller that arrives while a slot is free and nobody waits: the webhook
 * answers with the assistant's TwiML itself. */
static void connect_fast(struct fixture *f, int i, const char *sid)
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
static void enqueue(struct fixture *f, int i, const char *sid)
{
    struct cgt_resp r;
    incoming(f, i, sid, &r);
    assert_enqueue(f, i, &r);
    cgt_resp_free(&r);
}

/* ---- callbacks ---- */

#define DIALED "+15550002222"

static const char *const cb_env[] = {"MAX_CONCURRENCY=1",
                                     "CALLBACK_OFFER_SECONDS=10",
                                     "CALLBACK_RETRY_SECONDS=5",
                                     "CALLBACK_ATTEMPTS=2",
                                     "CALLBACK_MACHINE_MESSAGE=Sorry we missed you.",
                                     NULL};

/* The outbound CallSid the fake gave its n-th Calls create. */
/* A caller from another number than CALLER's (CALLER has a callback
 * pending in most tests, and calling again is its own case). */
static void enqueue_other(struct fixture *f, int i, const char *sid)
{
    const char *kv[] = {"CallSid",      sid,  "AccountSid", ACCOUNT_SID, "From",
                        "+15557771111", "To", DIALED,       NULL};
    struct cgt_resp r;
    twilio_post(f, i, "/incoming", kv, &r);
    assert_enqueue(f, i, &r);
    cgt_resp_free(&r);
}

static void leg_sid(int n, char out[40])
{
    snprintf(out, 40, "CA%032x", (unsigned)n);
}

static void keypad(struct fixture *f, int i, const char *sid, const char *digits,
                   struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,    "AccountSid", ACCOUNT_SID, "From", CALLER,
                        "To",      DIALED, "Digits",     digits,      NULL};
    twilio_post(f, i, "/callback-keypad", kv, r);
}

static void leg_answer(struct fixture *f, int i, const char *sid, int attempt, const char *leg,
                       const char *answered_by, struct cgt_resp *r)
{
    char path[160];
    snprintf(path, sizeof path, "/callback-answer?sid=%s&attempt=%d", sid, attempt);
    const char *kv[] = {"CallSid",    leg,           "AccountSid", ACCOUNT_SID,
                        "From",       DIALED,        "To",         CALLER,
                        "CallStatus", "in-progress", "Direction",  "outbound-api",
                        "AnsweredBy", answered_by,   NULL};
    twilio_post(f, i, path, kv, r);
}

static long leg_status(struct fixture *f, int i, const char *sid, int attempt, const char *leg,
                       const char *status)
{
    char path[160];
    snprintf(path, sizeof path, "/callback-status?sid=%s&attempt=%d", sid, attempt);
    const char *kv[] = {"CallSid", leg,    "AccountSid", ACCOUNT_SID, "CallStatus", status,
                        "From",    DIALED, "To",         CALLER,      NULL};
    struct cgt_resp r;
    twilio_post(f, i, path, kv, &r);
    long st = r.status;
    cgt_resp_free(&r);
    return st;
}

static void wait_cbwin(struct fixture *f)
{
    uint64_t until = cgt_now_ms() + LATER;
    for (;;) {
        char *v = cgt_redis_cmd(&f->rs, "EXISTS " P "cbwin");
        int ok = strcmp(v, "1") == 0;
        free(v);
        if (ok)
            return;
        must(f, cgt_now_ms() < until, "the callback window was never published");
        cgt_sleep_ms(20);
    }
}

/* A caller is held, hears the offer, presses 1: their record keeps its
 * ticket in state callback, and their leaving the queue is a hang-up. */
static void accept_callback(struct fixture *f, int i, const char *sid)
{
    enqueue(f, i, sid);
    struct cgt_resp r;
    queue_wait(f, i, sid, &r);
    must(f, r.status == 200, "/queue-wait answered %ld", r.status);
    assert_contains(r.body, "<Gather");
    assert_contains(r.body, "/callback-keypad");
    assert_contains(r.body, "Press 1 to keep your place");
    cgt_resp_free(&r);
    long long pos = position_of(f, sid);
    keypad(f, i, sid, "1", &r);
    must(f, r.status == 200, "/callback-keypad answered %ld", r.status);
    assert_contains(r.body, "we will call you back");
    assert_contains(r.body, "We will call you within");
    assert_contains(r.body, "<Leave/>");
    cgt_resp_free(&r);
    assert_state(f, sid, "callback");
    assert_int_equal(position_of(f, sid), pos);
    char *num = field_of(f, sid, "cb_number");
    assert_string_equal(num, CALLER);
    free(num);
    queue_exit(f, i, sid, "leave", &r);
    must(f, r.status == 200, "/queue-exit answered %ld", r.status);
    assert_contains(r.body, "<Hangup/>");
    assert_lacks(r.body, "All of our agents are busy");
    cgt_resp_free(&r);
    assert_state(f, sid, "callback");
    /* The inbound call's end (Twilio's status callback) keeps the ticket. */
    const char *kv[] = {"CallSid", sid, "AccountSid", ACCOUNT_SID, "CallStatus", "completed", NULL};
    twilio_post(f, i, "/call-status", kv, &r);
    must(f, r.status == 200, "/call-status answered %ld", r.status);
    cgt_resp_free(&r);
    assert_state(f, sid, "callback");
    assert_int_equal(position_of(f, sid), pos);
}

/* Caller A holds the only slot; returns A's Vapi call id (malloc'd). */
static char *occupy(struct fixture *f, const char *a)
{
    connect_fast(f, 0, a);
    return vapi_id_of(f, a);
}

/* GET path on instance i: the body (malloc'd); 200 required. */
static char *http_body(struct fixture *f, int i, const char *path)
{
    char url[256];
    url_of(f, i, path, url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    must(f, r.status == 200, "GET %s answered %ld", path, r.status);
    char *out = cg_strdup(r.body ? r.body : "");
    cgt_resp_free(&r);
    return out;
}

static int log_has(struct fixture *f, const char *needle)
{
    char *log = cgt_redis_cmd(&f->rs, "XRANGE " P "log - +");
    int yes = strstr(log, needle) != NULL;
    free(log);
    return yes;
}

static void test_full_path(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40], c[40], leg[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    char *va = occupy(f, a);
    accept_callback(f, 0, b);
    enqueue_other(f, 0, c); /* arrived after B */
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    /* /queue shows B in line as a callback, C as a caller on the line. */
    char *q = http_body(f, 0, "/queue");
    assert_contains(q, "\"position\":1,");
    assert_contains(q, "\"callback\":true");
    assert_contains(q, "\"callback\":false");
    free(q);

    /* A's call ends: the slot is B's (ticket order), reserved and dialled;
     * C waits; no Vapi call while the phone rings. */
    free(vapi_end(f, 0, va, 0));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    char *body = cgt_fake_last_body(f->fake, CGT_EP_TW_CREATE);
    assert_contains(body, "To=%2B15557770000");
    assert_contains(body, "From=%2B15550002222");
    assert_contains(body, "MachineDetection=Enable");
    assert_contains(body, "callback-answer");
    free(body);
    leg_sid(1, leg);
    wait_state(f, b, "cb_ringing", SOON);
    assert_int_equal(zcard(f, "active"), 1);
    assert_true(in_active(f, b));
    assert_int_equal(position_of(f, c), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 1);
    cgt_sleep_ms(300);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);

    /* A person answers: only now the Vapi call, on the leg, answered with
     * its TwiML; the assistant is told it is a callback. */
    struct cgt_resp r;
    leg_answer(f, 0, b, 1, leg, "human", &r);
    must(f, r.status == 200, "/callback-answer answered %ld", r.status);
    char *vl = vapi_id_of(f, leg);
    char *want = cgt_fake_twiml_for(vl);
    must(f, r.body && strcmp(r.body, want) == 0, "callback answer: %s", r.body);
    free(want);
    cgt_resp_free(&r);
    body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    assert_contains(body, "\"callgateCallback\":true");
    assert_contains(body, "callgateOriginalTime");
    free(body);
    assert_state(f, b, "called-back");
    wait_state(f, leg, "connected", SOON);
    assert_int_equal(zcard(f, "active"), 1);
    assert_true(in_active(f, leg));
    assert_int_equal(position_of(f, c), 1);
    assert_true(log_has(f, "CALLBACK_REQUEST"));
    assert_true(log_has(f, "CALLBACK_DIAL"));
    assert_true(log_has(f, "CALLBACK_CONNECT"));
    assert_int_equal(stat_of(f, "callbacks_requested"), 1);
    assert_int_equal(stat_of(f, "callbacks_connected"), 1);
    assert_true(stat_of(f, "callbacks_offered") >= 1);
    assert_int_equal(stat_of(f, "callbacks_within_estimate"), 1);
    assert_true(stat_of(f, "callbacks_hold_saved_ms") > 0);
    char *m = http_body(f, 0, "/metrics");
    assert_contains(m, "callgate_gate_events{event=\"callbacks_connected\"} 1");
    assert_contains(m, "callgate_gate_events{event=\"callbacks_within_estimate\"} 1");
    assert_contains(m, "callgate_callbacks_total{event=\"callbacks_accepted\"} 1");
    free(m);

    /* The callback's call ends as any: C is admitted next. */
    assert_int_equal(leg_status(f, 0, b, 1, leg, "completed"), 200);
    free(vapi_end(f, 0, vl, 0));
    wait_state(f, c, "connected", LATER);
    free(vl);
    free(va);
    stop_gate(f, 0);
}

static void test_no_answer_then_failed(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40], leg[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    accept_callback(f, 0, b);
    free(vapi_end(f, 0, va, 0));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    leg_sid(1, leg);
    wait_state(f, b, "cb_ringing", SOON);
    assert_int_equal(leg_status(f, 0, b, 1, leg, "no-answer"), 200);
    /* Back in place for a retry after CALLBACK_RETRY_SECONDS; the slot is
     * free meanwhile. */
    assert_state(f, b, "callback");
    assert_int_equal(position_of(f, b), 1);
    assert_int_equal(zcard(f, "active"), 0);
    assert_true(log_has(f, "CALLBACK_RETRY"));
    cgt_sleep_ms(1500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);
    wait_fake(f, CGT_EP_TW_CREATE, 2, 15000);
    leg_sid(2, leg);
    wait_state(f, b, "cb_ringing", SOON);
    /* A late status of the first leg changes nothing. */
    char old[40];
    leg_sid(1, old);
    assert_int_equal(leg_status(f, 0, b, 1, old, "busy"), 200);
    assert_state(f, b, "cb_ringing");
    assert_int_equal(leg_status(f, 0, b, 2, leg, "busy"), 200);
    assert_state(f, b, "cb_failed");
    assert_int_equal(position_of(f, b), 0);
    assert_int_equal(zcard(f, "active"), 0);
    assert_true(log_has(f, "CALLBACK_FAILED"));
    assert_int_equal(stat_of(f, "callbacks_failed"), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 1);
    cgt_sleep_ms(6000);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 2);
    free(va);
    stop_gate(f, 0);
}

static void test_machine(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40], leg[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    accept_callback(f, 0, b);
    free(vapi_end(f, 0, va, 0));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    leg_sid(1, leg);
    wait_state(f, b, "cb_ringing", SOON);
    struct cgt_resp r;
    leg_answer(f, 0, b, 1, leg, "machine_end_beep", &r);
    must(f, r.status == 200, "/callback-answer answered %ld", r.status);
    assert_contains(r.body, "Sorry we missed you.");
    assert_contains(r.body, "<Hangup/>");
    cgt_resp_free(&r);
    assert_state(f, b, "callback");
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 1);
    assert_int_equal(zcard(f, "active"), 0);
    /* Its status callback after the hang-up is the same attempt: stale. */
    assert_int_equal(leg_status(f, 0, b, 1, leg, "completed"), 200);
    assert_state(f, b, "callback");
    free(va);
    stop_gate(f, 0);
}

/* CALLBACK_HOURS on a day that is not today (in UTC): no offer, and a
 * callback already accepted waits while later callers go first. */
static void test_outside_hours(void **state)
{
    struct fixture *f = *state;
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char hours[64];
    snprintf(hours, sizeof hours, "CALLBACK_HOURS=%s 00:00-23:59 UTC", days[(tm.tm_wday + 2) % 7]);
    const char *env[] = {"MAX_CONCURRENCY=1", "CALLBACK_OFFER_SECONDS=10", hours, NULL};
    start_gate(f, 0, env);
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    char *va = occupy(f, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    queue_wait(f, 0, b, &r);
    must(f, r.status == 200, "/queue-wait answered %ld", r.status);
    assert_lacks(r.body, "<Gather");
    cgt_resp_free(&r);
    /* A key pressed anyway (an offer heard before the window closed). */
    keypad(f, 0, b, "1", &r);
    assert_contains(r.body, "<Leave/>");
    cgt_resp_free(&r);
    assert_state(f, b, "callback");
    enqueue_other(f, 0, c);
    free(vapi_end(f, 0, va, 0));
    wait_state(f, c, "connected", LATER);
    assert_state(f, b, "callback");
    assert_int_equal(position_of(f, b), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    char *w = cgt_redis_cmd(&f->rs, "EXISTS " P "cbwin");
    assert_string_equal(w, "0");
    free(w);
    free(va);
    stop_gate(f, 0);
}

/* The same number calls again while its callback waits: told so; 2 waits
 * on the line in the callback's place, the callback ends. */
static void test_repeat_caller(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40], c[40], d[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    new_sid(d);
    char *va = occupy(f, a);
    accept_callback(f, 0, b);
    enqueue_other(f, 0, c); /* another number, behind B */
    char *ticket = field_of(f, b, "ticket");
    struct cgt_resp r;
    incoming(f, 0, d, &r);
    must(f, r.status == 200, "/incoming answered %ld", r.status);
    char want[128];
    snprintf(want, sizeof want, "/callback-pending?sid=%s", b);
    assert_contains(r.body, want);
    assert_contains(r.body, "A callback keeps your place");
    cgt_resp_free(&r);
    char *none = field_of(f, d, "state");
    assert_string_equal(none, "(nil)");
    free(none);
    const char *kv[] = {"CallSid", d,      "AccountSid", ACCOUNT_SID, "From", CALLER,
                        "To",      DIALED, "Digits",     "2",         NULL};
    twilio_post(f, 0, want, kv, &r);
    assert_enqueue(f, 0, &r);
    cgt_resp_free(&r);
    assert_state(f, d, "waiting");
    assert_state(f, b, "cb_resumed");
    char *t2 = field_of(f, d, "ticket");
    assert_string_equal(ticket, t2);
    assert_int_equal(position_of(f, d), 1);
    assert_int_equal(position_of(f, c), 2);
    free(t2);
    free(ticket);
    /* The slot frees: D (B's place) goes before C, and nobody is dialled. */
    free(vapi_end(f, 0, va, 0));
    wait_state(f, d, "admitting", LATER);
    assert_int_equal(position_of(f, c), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    free(va);
    stop_gate(f, 0);
}

/* Two instances see the same release: one dial. */
static void test_two_instances(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    start_gate(f, 1, cb_env);
    wait_cbwin(f);
    char a[40], b[40], leg[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    accept_callback(f, 1, b);
    /* Both instances are told of the end; both run admission. */
    free(vapi_end(f, 0, va, 0));
    free(vapi_end(f, 1, va, 1));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    leg_sid(1, leg);
    wait_state(f, b, "cb_ringing", SOON);
    cgt_sleep_ms(1500);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);
    /* The answer reaches the other instance: still one admission. */
    struct cgt_resp r;
    leg_answer(f, 0, b, 1, leg, "human", &r);
    must(f, r.status == 200, "/callback-answer answered %ld", r.status);
    cgt_resp_free(&r);
    leg_answer(f, 1, b, 1, leg, "human", &r);
    must(f, r.status == 200, "/callback-answer again answered %ld", r.status);
    cgt_resp_free(&r);
    wait_state(f, leg, "connected", LATER);
    assert_int_equal(cgt_fake_create_count(f->fake, leg), 1);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 1);
    free(va);
    stop_gate(f, 0);
    stop_gate(f, 1);
}

/* Bad signatures: 403 and nothing changed; malformed: 400. */
static void test_bad_requests(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    enqueue(f, 0, b);
    const char *kv[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                        CALLER,    "Digits", "1",          NULL};
    const char *forged[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                            CALLER,    "Digits", "2",          NULL};
    struct cgt_resp r;
    twilio_post_as(f, 0, "/callback-keypad", kv, forged, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");
    char path[160];
    snprintf(path, sizeof path, "/callback-answer?sid=%s&attempt=1", b);
    const char *leg[] = {"CallSid",    "CA00000000000000000000000000000099",
                         "AccountSid", ACCOUNT_SID,
                         "AnsweredBy", "human",
                         NULL};
    const char *leg2[] = {"CallSid",    "CA00000000000000000000000000000099",
                          "AccountSid", ACCOUNT_SID,
                          "AnsweredBy", "machine_start",
                          NULL};
    twilio_post_as(f, 0, path, leg, leg2, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    twilio_post(f, 0, "/callback-answer?attempt=1", leg, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    snprintf(path, sizeof path, "/callback-status?sid=%s&attempt=x", b);
    twilio_post(f, 0, path, leg, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    snprintf(path, sizeof path, "/callback-status?sid=%s&attempt=1", b);
    twilio_post(f, 0, path, leg, &r); /* no CallStatus */
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_CREATE), 0);
    free(va);
    stop_gate(f, 0);
}

/* POSTs keys to /callback-number (or path) for sid, from CALLER. */
static void keyed(struct fixture *f, int i, const char *path, const char *sid, const char *digits,
                  struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,    "AccountSid", ACCOUNT_SID, "From", CALLER,
                        "To",      DIALED, "Digits",     digits,      NULL};
    twilio_post(f, i, path, kv, r);
}

/* Another number: 2 at the offer, the number keyed, read back and
 * confirmed; bad numbers are refused with a re-prompt; the callback dials
 * the number keyed. */
static void test_other_number(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, cb_env);
    wait_cbwin(f);
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    char *va = occupy(f, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    queue_wait(f, 0, b, &r);
    assert_contains(r.body, "press 2 to be called back at another number");
    cgt_resp_free(&r);

    keypad(f, 0, b, "2", &r);
    must(f, r.status == 200, "/callback-keypad answered %ld", r.status);
    assert_contains(r.body, "finishOnKey=\"#\"");
    assert_contains(r.body, "/callback-number\"");
    assert_contains(r.body, "Enter the number to call back");
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");

    /* Numbers that cannot be called: the phrase, and the prompt again. */
    const char *bad[] = {"0123", "1", "*44", "00", "0044123456789012345678", NULL};
    for (size_t k = 0; bad[k]; k++) {
        keyed(f, 0, "/callback-number", b, bad[k], &r);
        must(f, r.status == 200, "/callback-number %s answered %ld", bad[k], r.status);
        must(f,
             r.body && strstr(r.body, "cannot be called back") &&
                 strstr(r.body, "finishOnKey=\"#\""),
             "/callback-number %s: %s", bad[k], r.body);
        assert_lacks(r.body, "callback-number-confirm");
        cgt_resp_free(&r);
    }
    assert_state(f, b, "waiting");

    /* A national number of the caller's country (+1, ten digits), read
     * back with its country code. */
    keyed(f, 0, "/callback-number", b, "2025550123", &r);
    assert_contains(r.body, "We will call plus 1 2 0 2 5 5 5 0 1 2 3.");
    assert_contains(r.body, "/callback-number-confirm?n=12025550123\"");
    cgt_resp_free(&r);
    /* 2: enter it again. */
    keyed(f, 0, "/callback-number-confirm?n=12025550123", b, "2", &r);
    assert_contains(r.body, "finishOnKey=\"#\"");
    assert_contains(r.body, "/callback-number\"");
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");

    /* International, with 00. */
    keyed(f, 0, "/callback-number", b, "00442079460000", &r);
    assert_contains(r.body, "We will call plus 4 4 2 0 7 9 4 6 0 0 0 0.");
    assert_contains(r.body, "/callback-number-confirm?n=442079460000\"");
    cgt_resp_free(&r);

    /* A forged confirmation (signed for another number), and one whose
     * signed number is not callable: refused, nothing changed. */
    const char *kv[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                        CALLER,    "Digits", "1",          NULL};
    const char *forged[] = {"CallSid", b,        "AccountSid", ACCOUNT_SID, "From",
                            CALLER,    "Digits", "2",          NULL};
    twilio_post_as(f, 0, "/callback-number-confirm?n=442079460000", kv, forged, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    twilio_post(f, 0, "/callback-number-confirm?n=12", kv, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    twilio_post(f, 0, "/callback-number-confirm", kv, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    twilio_post_as(f, 0, "/callback-number", kv, forged, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    assert_state(f, b, "waiting");
    char *num = field_of(f, b, "cb_number");
    must(f, num == NULL || num[0] == '\0' || strcmp(num, "(nil)") == 0, "cb_number %s", num);
    free(num);

    /* 1 confirms: the callback keeps B's place, at the number keyed. */
    long long pos = position_of(f, b);
    keyed(f, 0, "/callback-number-confirm?n=442079460000", b, "1", &r);
    must(f, r.status == 200, "/callback-number-confirm answered %ld", r.status);
    assert_contains(r.body, "We will call you within");
    assert_contains(r.body, "<Leave/>");
    cgt_resp_free(&r);
    assert_state(f, b, "callback");
    assert_int_equal(position_of(f, b), pos);
    num = field_of(f, b, "cb_number");
    assert_string_equal(num, "+442079460000");
    free(num);
    queue_exit(f, 0, b, "leave", &r);
    assert_contains(r.body, "<Hangup/>");
    cgt_resp_free(&r);

    /* A's call ends: Twilio calls the number keyed. */
    free(vapi_end(f, 0, va, 0));
    wait_fake(f, CGT_EP_TW_CREATE, 1, LATER);
    char *body = cgt_fake_last_body(f->fake, CGT_EP_TW_CREATE);
    assert_contains(body, "To=%2B442079460000");
    assert_contains(body, "From=%2B15550002222");
    free(body);
    free(va);
    stop_gate(f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_answer_then_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_caller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_number, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
