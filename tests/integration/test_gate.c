/*
 * The admission gate end to end: real callgate processes and a real
 * redis-server, with Twilio's and Vapi's APIs played by the fake in
 * tests/harness/fakeapi.c (its own thread and event loop in this process).
 * The test signs Twilio webhooks as Twilio does, posts Vapi server messages
 * with the shared secret, and reads the gate's state straight from Redis.
 *
 * Everything that happens asynchronously is awaited by polling with a
 * timeout; no assertion depends on how fast anything is.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "fake_taskrouter.h"
#include "fakeapi.h"
#include "base/form.h"
#include "demo/proc.h"
#include "twilio/signature.h"

#include "gate_kit.h"

static long long health_active(struct fixture *f, int i)
{
    char url[256];
    url_of(f, i, "/health", url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    long long v = json_num(j, "activeCalls");
    json_decref(j);
    cgt_resp_free(&r);
    return v;
}

/* A webhook sent from a second thread, for what happens while it is open.
 * Everything that can fail the test is done by bg_incoming(), on the test's
 * thread. */
struct bg {
    pthread_t thread;
    char url[256];
    char sig[64];
    char *body;
    struct cgt_resp r;
};

static void *bg_run(void *arg)
{
    struct bg *b = arg;
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", b->sig, NULL};
    cgt_http("POST", b->url, h, b->body, strlen(b->body), &b->r);
    return NULL;
}

static void bg_incoming(struct fixture *f, int i, const char *sid, struct bg *b)
{
    memset(b, 0, sizeof *b);
    url_of(f, i, "/incoming", b->url, sizeof b->url);
    struct cg_form form;
    cg_form_init(&form);
    cg_form_add(&form, "CallSid", sid);
    cg_form_add(&form, "AccountSid", ACCOUNT_SID);
    cg_form_add(&form, "From", CALLER);
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(AUTH_TOKEN, b->url, &form, sig), 0);
    snprintf(b->sig, sizeof b->sig, "X-Twilio-Signature: %s", sig);
    b->body = cg_form_encode(&form);
    cg_form_free(&form);
    assert_int_equal(pthread_create(&b->thread, NULL, bg_run, b), 0);
}

static void bg_join(struct bg *b)
{
    pthread_join(b->thread, NULL);
    free(b->body);
    b->body = NULL;
}

/* Polls until the fake has seen n POST /call for sid. */
static void wait_creates(struct fixture *f, const char *sid, int n, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    while (cgt_fake_create_count(f->fake, sid) < n) {
        must(f, cgt_now_ms() < deadline, "%d vapi creates for %s, wanted %d",
             cgt_fake_create_count(f->fake, sid), sid, n);
        cgt_sleep_ms(5);
    }
}

static void wait_in_active(struct fixture *f, const char *member, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    while (!in_active(f, member)) {
        must(f, cgt_now_ms() < deadline, "%s never held a slot", member);
        cgt_sleep_ms(5);
    }
}

/* ---- callgate's log ---- */

/* Lines of callgate i's log that contain every string of parts
 * (NULL-terminated). */
static int log_lines(struct fixture *f, int i, const char *const *parts)
{
    char *out = cgt_proc_output(&f->g[i].proc);
    int n = 0;
    for (char *line = out; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        int all = 1;
        for (const char *const *p = parts; *p && all; p++)
            all = strstr(line, *p) != NULL;
        n += all;
        line = nl ? nl + 1 : NULL;
    }
    free(out);
    return n;
}

/* Waits until a line with every part appears. */
static void wait_log(struct fixture *f, int i, const char *const *parts, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    while (log_lines(f, i, parts) == 0) {
        if (cgt_now_ms() >= deadline) {
            dump_logs(f);
            fail_msg("no log line with \"%s\" \"%s\" \"%s\"", parts[0], parts[1] ? parts[1] : "",
                     parts[1] && parts[2] ? parts[2] : "");
        }
        cgt_sleep_ms(10);
    }
}

#define LOG_PARTS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Redis' clock in ms, as the scripts see it. */
static long long redis_now_ms(struct fixture *f)
{
    char *t = cgt_redis_cmd(&f->rs, "TIME");
    long long sec = strtoll(t, NULL, 10);
    char *nl = strchr(t, '\n');
    long long usec = nl ? strtoll(nl + 1, NULL, 10) : 0;
    free(t);
    return sec * 1000 + usec / 1000;
}

/* A plain HTTP/1.1 connection of the test's own, kept open across
 * requests (a keep-alive connection a load balancer holds). */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* GET path on fd; returns the status (0 on failure), body into out. */
static long raw_get(int fd, const char *path, char *out, size_t outlen)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return 0;
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0)
            return 0;
        len += (size_t)k;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *cl = strstr(buf, "Content-Length:");
        size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
        if (len - (size_t)(end + 4 - buf) < want)
            continue;
        snprintf(out, outlen, "%.*s", (int)want, end + 4);
        return strtol(buf + 9, NULL, 10);
    }
}

/* ---- tests ---- */

static void test_rejects_bad_requests(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    char sid[40];
    new_sid(sid);
    char url[256];
    struct cgt_resp r;
    url_of(f, 0, "/incoming", url, sizeof url);
    const char *form_h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    char body[256];
    snprintf(body, sizeof body, "CallSid=%s&From=%%2B15557770000", sid);

    /* No signature, a wrong one, one over other parameters: 403. */
    cgt_http("POST", url, form_h, body, strlen(body), &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    const char *bad_h[] = {"Content-Type: application/x-www-form-urlencoded",
                           "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL};
    cgt_http("POST", url, bad_h, body, strlen(body), &r);
    assert_int_equal(r.status, 403);
    json_t *j = resp_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "bad_signature");
    json_decref(j);
    cgt_resp_free(&r);
    const char *sent[] = {"CallSid", sid, "From", CALLER, NULL};
    const char *signed_kv[] = {"CallSid", sid, "From", "+15550009999", NULL};
    twilio_post_as(f, 0, "/incoming", sent, signed_kv, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    /* The same, correctly signed, for the other Twilio endpoints. */
    const char *paths[] = {"/queue-wait", "/queue-exit", "/call-status"};
    for (size_t k = 0; k < 3; k++) {
        twilio_post_as(f, 0, paths[k], sent, signed_kv, &r);
        assert_int_equal(r.status, 403);
        cgt_resp_free(&r);
    }

    /* Malformed form, a JSON body, no CallSid: 400. */
    const char *bad_form = "CallSid=%zz&From=1";
    cgt_http("POST", url, bad_h, bad_form, strlen(bad_form), &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    char jbody[128];
    snprintf(jbody, sizeof jbody, "{\"CallSid\":\"%s\"}", sid);
    const char *json_h[] = {"Content-Type: application/json", NULL};
    cgt_http("POST", url, json_h, jbody, strlen(jbody), &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    const char *no_sid[] = {"From", CALLER, "To", "+15550002222", NULL};
    twilio_post(f, 0, "/incoming", no_sid, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    const char *bad_sid[] = {"CallSid", "CA123", "From", CALLER, NULL};
    twilio_post(f, 0, "/incoming", bad_sid, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);

    /* Vapi messages: no secret or a wrong one, 403; bad JSON or types, 400. */
    char end_body[256];
    snprintf(end_body, sizeof end_body,
             "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"call\":{\"id\":"
             "\"11111111-2222-4333-8444-555555555555\"}}}");
    vapi_post(f, 0, NULL, end_body, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    vapi_post(f, 0, "not-the-secret", end_body, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    const char *bad_json[] = {
        "{\"message\":",
        "[1,2,3]",
        "{\"message\":{\"type\":5}}",
        "{\"message\":\"status-update\"}",
        "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\",\"call\":{\"id\":12}}}",
        "{\"message\":{\"type\":\"end-of-call-report\",\"call\":[]}}",
    };
    for (size_t k = 0; k < sizeof bad_json / sizeof bad_json[0]; k++) {
        vapi_post(f, 0, VAPI_SECRET, bad_json[k], &r);
        must(f, r.status == 400, "%s answered %ld", bad_json[k], r.status);
        cgt_resp_free(&r);
    }
    /* Messages about calls the gate does not know: 200, nothing changes. */
    char *res = vapi_end(f, 0, "11111111-2222-4333-8444-555555555555", 0);
    assert_string_equal(res, "unknown");
    free(res);
    res = vapi_end(f, 0, "11111111-2222-4333-8444-555555555555", 1);
    assert_string_equal(res, "unknown");
    free(res);
    assert_int_equal(call_status(f, 0, sid, "completed"), 200);
    assert_int_equal(call_status(f, 0, sid, "in-progress"), 200);
    queue_exit(f, 0, sid, "hangup", &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);

    /* Vapi messages that are not the end of a call are acknowledged. */
    const char *not_end[] = {
        "{\"message\":{\"type\":\"status-update\",\"status\":\"in-progress\",\"call\":{}}}",
        "{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"x\"}}}",
        "{\"message\":{\"type\":\"end-of-call-report\"}}",
    };
    for (size_t k = 0; k < sizeof not_end / sizeof not_end[0]; k++) {
        vapi_post(f, 0, VAPI_SECRET, not_end[k], &r);
        assert_int_equal(r.status, 200);
        assert_contains(r.body, "\"ignored\"");
        cgt_resp_free(&r);
    }

    /* Wrong method, oversized body. */
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    cgt_resp_free(&r);
    size_t big_len = 70000;
    char *big = cg_malloc(big_len + 1);
    memset(big, 'a', big_len);
    big[big_len] = '\0';
    memcpy(big, "CallSid=", 8);
    cgt_http("POST", url, bad_h, big, big_len, &r);
    assert_int_equal(r.status, 413);
    cgt_resp_free(&r);
    free(big);

    /* None of it reached Redis (the gate's keys; the queue claim is the
     * gate's own, from its start) or the APIs. */
    char *keys = state_keys(f);
    must(f, keys[0] == '\0' || strcmp(keys, P "intact") == 0, "keys after refused requests: %s",
         keys);
    free(keys);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 0);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_TW_UPDATE), 0);
    stop_gate(f, 0);
}

static void test_fast_path(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    char sid[40];
    new_sid(sid);
    struct cgt_resp r;
    incoming(f, 0, sid, &r);
    assert_int_equal(r.status, 200);
    assert_content_type(&r, "text/xml");
    char *id = vapi_id_of(f, sid);
    char *want = cgt_fake_twiml_for(id);
    assert_string_equal(r.body, want);
    free(want);
    cgt_resp_free(&r);

    /* What Vapi was asked for. */
    char *body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "phoneNumberId")), PHONE_ID);
    assert_string_equal(json_string_value(json_object_get(j, "assistantId")), ASSISTANT_ID);
    assert_true(json_is_true(json_object_get(j, "phoneCallProviderBypassEnabled")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "customer"), "number")), CALLER);
    json_t *meta = json_object_get(json_object_get(j, "assistantOverrides"), "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "twilioCallSid")), sid);
    json_decref(j);
    free(body);
    char *auth = cgt_fake_last_auth(f->fake, CGT_EP_VAPI_CREATE);
    assert_string_equal(auth, "Bearer " VAPI_KEY);
    free(auth);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED), 0);

    wait_state(f, sid, "connected", SOON);
    char *vid = field_of(f, sid, "vapi_id");
    assert_string_equal(vid, id);
    free(vid);
    free(id);
    assert_true(in_active(f, sid));
    assert_int_equal(health_active(f, 0), 1);
    /* Fast path: no Calls update was needed. */
    assert_int_equal(cgt_fake_update_count(f->fake, sid), 0);
    stop_gate(f, 0);
}

static void test_fast_path_deadline(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"FAST_PATH_DEADLINE_MS=200", NULL});
    cgt_fake_set_vapi_delay(f->fake, 700);
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    /* Vapi's TwiML arrives later, by a Calls update, unchanged. */
    wait_update(f, a, 1, SOON);
    assert_pushed_vapi_twiml(f, a);
    wait_state(f, a, "connected", SOON);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED), 0);

    /* Twilio has not started the Enqueue yet when the TwiML comes: 21220
     * while the call is live, so the update is tried again. */
    char b[40];
    new_sid(b);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_NOT_IN_PROGRESS);
    cgt_fake_set_twilio_call_status(f->fake, "in-progress");
    enqueue(f, 0, b);
    wait_update(f, b, 1, SOON);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_OK);
    wait_update(f, b, 2, SOON);
    assert_pushed_vapi_twiml(f, b);
    wait_state(f, b, "connected", SOON);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 1);
    stop_gate(f, 0);
}

static void test_queue_then_release(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    assert_state(f, b, "waiting");
    assert_int_equal(position_of(f, b), 1);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 0);

    char *va = vapi_id_of(f, a);
    char *res = vapi_end(f, 0, va, 0);
    assert_string_equal(res, "released");
    free(res);
    wait_update(f, b, 1, SOON);
    assert_pushed_vapi_twiml(f, b);
    wait_state(f, b, "connected", SOON);
    assert_state(f, a, "ended");
    assert_false(in_active(f, a));

    /* Vapi's second end message and Twilio's status callback change nothing. */
    res = vapi_end(f, 0, va, 1);
    assert_string_equal(res, "duplicate");
    free(res);
    assert_int_equal(stat_of(f, "released"), 1);
    assert_int_equal(call_status(f, 0, a, "completed"), 200);
    assert_state(f, a, "ended");
    assert_state(f, b, "connected");
    assert_int_equal(stat_of(f, "released"), 1);
    assert_int_equal(zcard(f, "active"), 1);
    assert_true(in_active(f, b));
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 2);
    free(va);
    stop_gate(f, 0);
}

static void test_twilio_end_first(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40], c[40], d[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    new_sid(d);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    enqueue(f, 0, c);
    enqueue(f, 0, d);

    /* Twilio reports the end first: Vapi still counts the call, so the
     * slot stays held while Vapi says the call is live. */
    assert_int_equal(call_status(f, 0, a, "completed"), 200);
    assert_state(f, a, "ending");
    assert_true(in_active(f, a));
    int gets = cgt_fake_count(f->fake, CGT_EP_VAPI_GET);
    wait_fake(f, CGT_EP_VAPI_GET, gets + 2, SOON);
    assert_state(f, a, "ending");
    assert_state(f, b, "waiting");
    assert_int_equal(cgt_fake_create_count(f->fake, b), 0);

    char *va = vapi_id_of(f, a);
    char *res = vapi_end(f, 0, va, 1);
    assert_string_equal(res, "released");
    free(res);
    free(va);
    wait_update(f, b, 1, SOON);
    wait_state(f, b, "connected", SOON);
    assert_state(f, a, "ended");
    assert_state(f, c, "waiting");

    /* Vapi's messages are lost: after the end grace the sweep asks Vapi,
     * which says the call ended, and the slot goes to the next caller. */
    cgt_fake_set_vapi_get(f->fake, CGT_VGET_ENDED);
    assert_int_equal(call_status(f, 0, b, "completed"), 200);
    wait_update(f, c, 1, SOON);
    wait_state(f, c, "connected", SOON);
    assert_state(f, b, "ended");
    char *by = field_of(f, b, "released_by");
    assert_string_equal(by, "vapi-get");
    free(by);
    assert_int_equal(stat_of(f, "released"), 2);
    assert_int_equal(zcard(f, "active"), 1);
    assert_state(f, d, "waiting");

    /* Vapi no longer knows the call Twilio says is over: released too. */
    cgt_fake_set_vapi_get(f->fake, CGT_VGET_NOT_FOUND);
    assert_int_equal(call_status(f, 0, c, "completed"), 200);
    wait_update(f, d, 1, SOON);
    wait_state(f, d, "connected", SOON);
    assert_state(f, c, "ended");
    char *reason = field_of(f, c, "ended_reason");
    assert_string_equal(reason, "vapi-unconfirmed");
    free(reason);
    assert_int_equal(stat_of(f, "released"), 3);
    stop_gate(f, 0);
}

/* Vapi's end messages are lost: the caller's Twilio leg ended, and with a
 * grace and a sweep interval of a minute only the early ask of Vapi can
 * free the slot within seconds. */
static void test_twilio_end_asks_vapi_early(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0,
               (const char *const[]){"MAX_CONCURRENCY=1", "END_GRACE_MS=60000",
                                     "SWEEP_INTERVAL_MS=60000", NULL});
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);

    /* Vapi still counts the call: asked early, then again after a pause,
     * and the slot stays held. */
    cgt_fake_set_vapi_get(f->fake, CGT_VGET_IN_PROGRESS);
    int gets = cgt_fake_count(f->fake, CGT_EP_VAPI_GET);
    assert_int_equal(call_status(f, 0, a, "completed"), 200);
    assert_state(f, a, "ending");
    wait_fake(f, CGT_EP_VAPI_GET, gets + 1, SOON);
    wait_fake(f, CGT_EP_VAPI_GET, gets + 2, SOON);
    assert_state(f, a, "ending");
    assert_state(f, b, "waiting");
    assert_true(in_active(f, a));

    /* Vapi says the call ended: the slot goes to the next caller. */
    cgt_fake_set_vapi_get(f->fake, CGT_VGET_ENDED);
    wait_state(f, a, "ended", LATER);
    char *by = field_of(f, a, "released_by");
    assert_string_equal(by, "vapi-get");
    free(by);
    wait_update(f, b, 1, SOON);
    wait_state(f, b, "connected", SOON);
    assert_int_equal(stat_of(f, "released"), 1);

    /* Vapi's own end message stops the asking: no more GETs for b's call
     * (one may have been out already). */
    cgt_fake_set_vapi_get(f->fake, CGT_VGET_IN_PROGRESS);
    assert_int_equal(call_status(f, 0, b, "completed"), 200);
    assert_state(f, b, "ending");
    char *vb = vapi_id_of(f, b);
    char *res = vapi_end(f, 0, vb, 1);
    assert_string_equal(res, "released");
    free(res);
    free(vb);
    gets = cgt_fake_count(f->fake, CGT_EP_VAPI_GET);
    /* A probe still running would ask at least twice in three seconds. */
    cgt_sleep_ms(3000);
    assert_true(cgt_fake_count(f->fake, CGT_EP_VAPI_GET) <= gets + 1);
    stop_gate(f, 0);
}

/* The early ask learns when Vapi's end messages come after Twilio's end:
 * after GATE_PROBE_LEARN_SAMPLES (4) calls whose message followed at once,
 * the first ask's delay (a gauge) is the learned one, below the 0.25-0.5 s
 * used before anything is known. */
static void test_probe_learns_vapi_lag(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0,
               (const char *const[]){"MAX_CONCURRENCY=1", "END_GRACE_MS=60000",
                                     "SWEEP_INTERVAL_MS=60000", NULL});
    char url[256];
    url_of(f, 0, "/metrics", url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    /* Nothing learned yet: the gauge has no value. */
    assert_null(strstr(r.body, "\ncallgate_end_probe_first_ask_seconds "));
    cgt_resp_free(&r);
    cgt_fake_set_vapi_get(f->fake, CGT_VGET_IN_PROGRESS);
    /* Four calls whose Vapi message follows their Twilio end; a few more
     * when a loaded machine makes one of these lags exceed what is learned
     * (0.5 s). */
    const char *g = NULL;
    for (int i = 0; i < 20 && g == NULL; i++) {
        char a[40];
        new_sid(a);
        connect_fast(f, 0, a);
        assert_int_equal(call_status(f, 0, a, "completed"), 200);
        assert_state(f, a, "ending");
        char *v = vapi_id_of(f, a);
        char *res = vapi_end(f, 0, v, 1);
        assert_string_equal(res, "released");
        free(res);
        free(v);
        if (i < 3)
            continue;
        cgt_http("GET", url, NULL, NULL, 0, &r);
        g = strstr(r.body, "\ncallgate_end_probe_first_ask_seconds ");
        if (g == NULL)
            cgt_resp_free(&r);
    }
    must(f, g != NULL, "no first-ask gauge after 20 calls");
    double v = strtod(g + strlen("\ncallgate_end_probe_first_ask_seconds "), NULL);
    must(f, v >= 0.02 && v < 0.5, "first ask after %f s", v);
    cgt_resp_free(&r);
    stop_gate(f, 0);
}

static void test_abandon_while_waiting(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    queue_exit(f, 0, b, "hangup", &r);
    assert_int_equal(r.status, 200);
    assert_content_type(&r, "text/xml");
    cgt_resp_free(&r);
    assert_state(f, b, "abandoned");
    assert_int_equal(position_of(f, b), 0);
    assert_int_equal(zcard(f, "waiting"), 0);
    assert_int_equal(stat_of(f, "abandoned"), 1);
    char *log = cgt_redis_cmd(&f->rs, "XRANGE " P "log - +");
    char want[96];
    snprintf(want, sizeof want, "ABANDON\nsid\n%s", b);
    assert_contains(log, want);
    free(log);

    /* The slot A frees goes to nobody: B is gone. */
    char *va = vapi_id_of(f, a);
    char *res = vapi_end(f, 0, va, 0);
    assert_string_equal(res, "released");
    free(res);
    free(va);
    assert_int_equal(zcard(f, "active"), 0);
    assert_int_equal(cgt_fake_create_count(f->fake, b), 0);
    stop_gate(f, 0);
}

static void test_queue_wait_announces(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40], c[40], d[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    new_sid(d);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    enqueue(f, 0, c);

    struct cgt_resp r;
    queue_wait(f, 0, b, &r);
    assert_int_equal(r.status, 200);
    assert_content_type(&r, "text/xml");
    assert_contains(r.body, "<Say>You are next in line. Your estimated wait time is ");
    char *ewt = cgt_resp_header(&r, "X-Callgate-Estimated-Wait");
    assert_non_null(ewt);
    assert_true(atof(ewt) >= 1);
    free(ewt);
    cgt_resp_free(&r);

    queue_wait(f, 0, c, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Say>You are caller number 2 in line.");
    cgt_resp_free(&r);

    /* Within the announce interval: music only, and with HOLD_MUSIC_URL
     * unset it is Twilio's own hold music, never dead air. */
    queue_wait(f, 0, b, &r);
    assert_int_equal(r.status, 200);
    assert_lacks(r.body, "<Say>");
    assert_contains(r.body, "<Play>http://com.twilio.music.classical.s3.amazonaws.com/");
    assert_lacks(r.body, "<Pause");
    cgt_resp_free(&r);

    /* A caller found in Twilio's queue without a record is adopted. */
    queue_wait(f, 0, d, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Response>");
    cgt_resp_free(&r);
    assert_state(f, d, "waiting");
    assert_int_equal(position_of(f, d), 3);

    /* A TaskRouter caller (?taskQueueSid=) is the wait-time service's, not
     * the gate's: hold music for an unknown TaskQueue, and no record. */
    char e[40];
    new_sid(e);
    const char *kv[] = {"CallSid", e,      "AccountSid", ACCOUNT_SID, "QueueTime",
                        "3",       "From", CALLER,       NULL};
    twilio_post(f, 0, "/queue-wait?taskQueueSid=WQffffffffffffffffffffffffffffffff", kv, &r);
    assert_int_equal(r.status, 200);
    assert_content_type(&r, "text/xml");
    assert_contains(r.body, "<Response>");
    assert_lacks(r.body, "<Say>");
    cgt_resp_free(&r);
    char *rec = cgt_redis_cmd(&f->rs, "EXISTS " P "call:%s", e);
    assert_string_equal(rec, "0");
    free(rec);
    assert_int_equal(zcard(f, "waiting"), 3);
    stop_gate(f, 0);
}

static void test_overflow_message(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0,
               (const char *const[]){"MAX_CONCURRENCY=1", "MAX_QUEUE_SIZE=1", "MAX_WAIT_SECONDS=1",
                                     "OVERFLOW_MESSAGE=Sorry, we are full.", NULL});
    const char *overflow = "<Say>Sorry, we are full.</Say><Hangup/>";
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    incoming(f, 0, c, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, overflow);
    assert_lacks(r.body, "<Enqueue");
    cgt_resp_free(&r);
    assert_state(f, c, "overflowed");

    /* B waits past MAX_WAIT_SECONDS: <Leave/>, then the overflow treatment
     * from the Enqueue action. */
    uint64_t deadline = cgt_now_ms() + SOON;
    int left = 0;
    while (!left && cgt_now_ms() < deadline) {
        queue_wait(f, 0, b, &r);
        assert_int_equal(r.status, 200);
        left = strstr(r.body, "<Leave/>") != NULL;
        cgt_resp_free(&r);
        if (!left)
            cgt_sleep_ms(100);
    }
    must(f, left, "B never got <Leave/>");
    assert_state(f, b, "overflowed");
    assert_int_equal(position_of(f, b), 0);
    queue_exit(f, 0, b, "leave", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, overflow);
    cgt_resp_free(&r);
    assert_int_equal(stat_of(f, "overflowed"), 2);
    stop_gate(f, 0);
}

static void test_overflow_dial(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0,
               (const char *const[]){"MAX_CONCURRENCY=1", "MAX_QUEUE_SIZE=1",
                                     "OVERFLOW_ACTION=dial", "OVERFLOW_DIAL_NUMBER=+15559876543",
                                     NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    incoming(f, 0, c, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Dial>+15559876543</Dial>");
    cgt_resp_free(&r);
    assert_state(f, c, "overflowed");
    stop_gate(f, 0);
}

static void test_vapi_overlimit(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=2", "OVERLIMIT_HOLD_SECONDS=1", NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);

    /* Vapi's pool is fuller than ours says: B goes back to the head and the
     * cap drops to what is active. */
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_OVERLIMIT);
    enqueue(f, 0, b);
    wait_state(f, b, "waiting", SOON);
    assert_int_equal(position_of(f, b), 1);
    char *cap = cgt_redis_cmd(&f->rs, "GET " P "cap");
    assert_string_equal(cap, "1");
    free(cap);
    enqueue(f, 0, c);
    assert_int_equal(position_of(f, b), 1);
    assert_int_equal(position_of(f, c), 2);

    /* Vapi has room again: once the cap expires, B (not C) is admitted. */
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_OK);
    wait_update(f, b, 1, LATER);
    assert_pushed_vapi_twiml(f, b);
    wait_state(f, b, "connected", SOON);
    assert_state(f, c, "waiting");
    assert_int_equal(position_of(f, c), 1);
    assert_int_equal(zcard(f, "active"), 2);
    stop_gate(f, 0);
}

static void test_vapi_concurrency_blocked(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=2", "OVERLIMIT_HOLD_SECONDS=1", NULL});
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_BLOCKED);
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    wait_state(f, a, "waiting", SOON);
    assert_int_equal(position_of(f, a), 1);
    char *cap = cgt_redis_cmd(&f->rs, "GET " P "cap");
    assert_string_equal(cap, "0");
    free(cap);
    assert_int_equal(zcard(f, "active"), 0);

    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_OK);
    wait_update(f, a, 1, LATER);
    assert_pushed_vapi_twiml(f, a);
    wait_state(f, a, "connected", SOON);
    stop_gate(f, 0);
}

static void test_vapi_errors_retried(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_ERROR500);
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    /* Retried after backoffs while Vapi fails... */
    wait_fake(f, CGT_EP_VAPI_CREATE, 3, LATER);
    assert_int_equal(cgt_fake_update_count(f->fake, a), 0);
    /* ...and connected when it recovers. */
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_OK);
    wait_update(f, a, 1, LATER);
    assert_pushed_vapi_twiml(f, a);
    wait_state(f, a, "connected", SOON);
    assert_true(stat_of(f, "admission_failures") >= 2);
    assert_int_equal(zcard(f, "active"), 1);
    assert_int_equal(zcard(f, "waiting"), 0);

    /* 429 with Retry-After: 1 is honoured before the next try. */
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_RATE429);
    char b[40];
    new_sid(b);
    int before = cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE);
    enqueue(f, 0, b);
    wait_fake(f, CGT_EP_VAPI_CREATE, before + 1, SOON);
    uint64_t t0 = cgt_now_ms();
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_OK);
    wait_update(f, b, 1, LATER);
    must(f, cgt_now_ms() - t0 >= 900, "retried %llu ms after a Retry-After of 1 s",
         (unsigned long long)(cgt_now_ms() - t0));
    wait_state(f, b, "connected", SOON);
    stop_gate(f, 0);
}

static void test_vapi_rejects_overflow(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_ADMISSION_ATTEMPTS=3", NULL});
    cgt_fake_set_vapi_create(f->fake, CGT_VAPI_INVALID400);
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    wait_update(f, a, 1, LATER);
    wait_state(f, a, "overflowed", SOON);
    char *twiml = cgt_fake_update_twiml(f->fake, a);
    assert_contains(twiml, "<Say>All of our agents are busy. Please call again later.</Say>");
    assert_contains(twiml, "<Hangup/>");
    free(twiml);
    assert_int_equal(cgt_fake_create_count(f->fake, a), 3);
    assert_int_equal(zcard(f, "active"), 0);
    assert_int_equal(zcard(f, "waiting"), 0);
    stop_gate(f, 0);
}

static void test_twilio_gone_orphan(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    enqueue(f, 0, c);

    /* B hung up while Vapi was answering: Twilio refuses the update and
     * says the call is over. B is abandoned; Vapi's call keeps the slot. */
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_NOT_IN_PROGRESS);
    cgt_fake_set_twilio_call_status(f->fake, "completed");
    char *va = vapi_id_of(f, a);
    char *res = vapi_end(f, 0, va, 0);
    assert_string_equal(res, "released");
    free(res);
    free(va);
    wait_state(f, b, "abandoned", SOON);
    char *vb = vapi_id_of(f, b);
    char orphan[96];
    snprintf(orphan, sizeof orphan, "v:%s", vb);
    assert_true(in_active(f, orphan));
    assert_false(in_active(f, b));
    assert_int_equal(zcard(f, "active"), 1);
    assert_state(f, c, "waiting");
    assert_int_equal(cgt_fake_create_count(f->fake, c), 0);

    /* Vapi ends its call: the slot goes to C. */
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_OK);
    cgt_fake_set_twilio_call_status(f->fake, "in-progress");
    res = vapi_end(f, 0, vb, 0);
    assert_string_equal(res, "released-orphan");
    free(res);
    assert_false(in_active(f, orphan));
    wait_update(f, c, 1, SOON);
    wait_state(f, c, "connected", SOON);
    assert_state(f, b, "abandoned");
    free(vb);
    stop_gate(f, 0);
}

static json_t *admin(struct fixture *f, const char *method, const char *path, const char *auth,
                     const char *ctype, const char *body, long want_status)
{
    char url[256], ah[128], ch[128];
    url_of(f, 0, path, url, sizeof url);
    snprintf(ah, sizeof ah, "Authorization: %s", auth ? auth : "");
    snprintf(ch, sizeof ch, "Content-Type: %s", ctype ? ctype : "");
    const char *h[3] = {NULL, NULL, NULL};
    int n = 0;
    if (auth)
        h[n++] = ah;
    if (ctype)
        h[n++] = ch;
    struct cgt_resp r;
    cgt_http(method, url, h, body, body ? strlen(body) : 0, &r);
    must(f, r.status == want_status, "%s %s answered %ld, wanted %ld: %s", method, path, r.status,
         want_status, r.body ? r.body : "");
    json_t *j = r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    cgt_resp_free(&r);
    return j;
}

static void test_admin_endpoints(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    json_t *j = admin(f, "POST", "/process-queue", NULL, NULL, NULL, 200);
    assert_non_null(j);
    assert_non_null(json_string_value(json_object_get(j, "message")));
    assert_int_equal(json_num(j, "activeCalls"), 0);
    assert_int_equal(json_num(j, "callsInQueue"), 0);
    assert_int_equal(json_num(j, "maxConcurrency"), 1);
    json_decref(j);

    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    j = admin(f, "POST", "/process-queue", NULL, NULL, NULL, 200);
    assert_int_equal(json_num(j, "activeCalls"), 1);
    assert_int_equal(json_num(j, "callsInQueue"), 1);
    json_decref(j);

    /* Raising the limit admits the waiting caller. */
    j = admin(f, "PUT", "/admin/limit", NULL, "application/json", "{\"limit\":2}", 200);
    assert_int_equal(json_num(j, "limit"), 2);
    json_decref(j);
    wait_update(f, b, 1, SOON);
    wait_state(f, b, "connected", SOON);
    j = admin(f, "GET", "/admin/limit", NULL, NULL, NULL, 200);
    assert_int_equal(json_num(j, "limit"), 2);
    assert_int_equal(json_num(j, "configuredLimit"), 1);
    assert_int_equal(json_num(j, "activeCalls"), 2);
    json_decref(j);

    const char *bad[] = {
        "{\"limit\":0}",   "{\"limit\":-3}", "{\"limit\":\"3\"}", "{\"limit\":100001}",
        "{\"limit\":2.5}", "{\"lim\":2}",    "{\"limit\":",       "[2]"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        json_decref(admin(f, "PUT", "/admin/limit", NULL, "application/json", bad[k], 400));
    json_decref(admin(f, "POST", "/admin/limit", NULL, "application/x-www-form-urlencoded",
                      "limit=abc", 400));
    json_decref(
        admin(f, "POST", "/admin/limit", NULL, "application/x-www-form-urlencoded", "limit=", 400));
    j = admin(f, "GET", "/admin/limit", NULL, NULL, NULL, 200);
    assert_int_equal(json_num(j, "limit"), 2);
    json_decref(j);
    j = admin(f, "POST", "/process-queue", NULL, NULL, NULL, 200);
    assert_int_equal(json_num(j, "maxConcurrency"), 2);
    assert_int_equal(json_num(j, "activeCalls"), 2);
    assert_int_equal(json_num(j, "callsInQueue"), 0);
    json_decref(j);
    stop_gate(f, 0);
}

static void test_admin_token(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"ADMIN_TOKEN=admin-token-0123456789", NULL});
    json_decref(admin(f, "POST", "/process-queue", NULL, NULL, NULL, 401));
    json_decref(admin(f, "POST", "/process-queue", "Bearer wrong-token", NULL, NULL, 401));
    json_decref(admin(f, "POST", "/process-queue", "admin-token-0123456789", NULL, NULL, 401));
    json_decref(admin(f, "GET", "/admin/limit", NULL, NULL, NULL, 401));
    json_decref(admin(f, "PUT", "/admin/limit", NULL, "application/json", "{\"limit\":3}", 401));
    json_t *j =
        admin(f, "POST", "/process-queue", "Bearer admin-token-0123456789", NULL, NULL, 200);
    assert_int_equal(json_num(j, "maxConcurrency"), 2);
    json_decref(j);
    j = admin(f, "PUT", "/admin/limit", "Bearer admin-token-0123456789", "application/json",
              "{\"limit\":3}", 200);
    assert_int_equal(json_num(j, "limit"), 3);
    json_decref(j);
    /* The scheme name in any case, more than one space (RFC 9110 11.1);
     * a longer or shorter token is not the token. */
    json_decref(admin(f, "GET", "/admin/limit", "bearer admin-token-0123456789", NULL, NULL, 200));
    json_decref(admin(f, "GET", "/admin/limit", "BEARER  admin-token-0123456789", NULL, NULL, 200));
    json_decref(admin(f, "GET", "/admin/limit", "Bearer admin-token-01234567890", NULL, NULL, 401));
    json_decref(admin(f, "GET", "/admin/limit", "Bearer admin-token-012345678", NULL, NULL, 401));
    json_decref(admin(f, "GET", "/admin/limit", "Bearer", NULL, NULL, 401));
    json_decref(admin(f, "GET", "/admin/limit", "Bearerx admin-token-0123456789", NULL, NULL, 401));
    stop_gate(f, 0);
}

/* Behind a reverse proxy on the same host every request comes from
 * loopback: with a public PUBLIC_URL and no ADMIN_TOKEN, a loopback peer is
 * not trusted, the limit cannot be changed, and the log says why. */
static void test_admin_behind_proxy_needs_token(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"PUBLIC_URL=https://gate.example.com", NULL});
    json_t *j = admin(f, "PUT", "/admin/limit", NULL, "application/json", "{\"limit\":1}", 403);
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "ADMIN_TOKEN"));
    json_decref(j);
    json_decref(admin(f, "POST", "/process-queue", NULL, NULL, NULL, 403));
    char *limit = cgt_redis_cmd(&f->rs, "GET " P "limit");
    assert_string_equal(limit, "(nil)");
    free(limit);
    char *log = cgt_proc_output(&f->g[0].proc);
    assert_non_null(strstr(log, "admin endpoints refuse every request"));
    free(log);
    stop_gate(f, 0);
}

/* SIGHUP never ends the daemon: it reads the configuration again, applies
 * LOG_LEVEL and names what needs a restart. */
static void test_sighup_reloads(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    assert_int_equal(kill(f->g[0].proc.pid, SIGHUP), 0);
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        free(log);
        log = cgt_proc_output(&f->g[0].proc);
        if (strstr(log, "SIGHUP: configuration reloaded"))
            break;
        cgt_sleep_ms(50);
    }
    must(f, strstr(log, "SIGHUP: configuration reloaded") != NULL, "no reload logged");
    free(log);
    char url[256];
    url_of(f, 0, "/health", url, sizeof url);
    must(f, cgt_wait_status(url, 200, SOON) == 0, "callgate died on SIGHUP");
    stop_gate(f, 0);
}

/* Two gates on one Twilio queue would adopt each other's callers: the
 * second gate refuses to run (exit 2, naming the other gate), while a
 * second instance of the same gate runs beside the first. */
static void test_second_gate_on_queue_refused(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    char *owner = NULL;
    for (int i = 0; i < 100; i++) {
        free(owner);
        owner = cgt_redis_cmd(&f->rs, "GET cg:queue-claim:" ACCOUNT_SID ":" QUEUE_NAME);
        if (strcmp(owner, P) == 0)
            break;
        cgt_sleep_ms(50);
    }
    must(f, strcmp(owner, P) == 0, "the first gate did not claim its queue: %s", owner);
    free(owner);
    spawn_gate(f, 1, (const char *const[]){"GATE_NAME=another-line", NULL});
    int rc = cgt_wait_exit(&f->g[1].proc, 15000);
    must(f, rc == 2, "a second gate on the same queue exited with %d, not 2", rc);
    char *log = cgt_proc_output(&f->g[1].proc);
    must(f, strstr(log, "another gate (cg:{default}:) already uses the Twilio queue") != NULL,
         "no reason logged");
    free(log);
    f->g[1].proc.pid = 0;
    /* The first gate is untouched and still serves. */
    char url[256];
    url_of(f, 0, "/health", url, sizeof url);
    must(f, cgt_wait_status(url, 200, SOON) == 0, "the first gate stopped");
    stop_gate(f, 0);
}

static void test_metrics(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    char a[40];
    new_sid(a);
    connect_fast(f, 0, a);
    char url[256];
    url_of(f, 0, "/metrics", url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_content_type(&r, "text/plain");
    assert_contains(r.body, "callgate_http_requests_total");
    assert_contains(r.body, "callgate_active 1");
    assert_contains(r.body, "callgate_redis_up 1");
    cgt_resp_free(&r);
    stop_gate(f, 0);
}

static void test_redis_outage(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    char url[256];
    url_of(f, 0, "/health", url, sizeof url);
    cg_redis_server_kill(&f->rs, SIGKILL);
    must(f, cgt_wait_status(url, 503, LATER) == 0, "health never went 503");

    /* Callers are still held in Twilio's queue; state changes are refused
     * so that Twilio retries them. */
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    assert_int_equal(call_status(f, 0, a, "completed"), 503);
    struct cgt_resp r;
    char body[256];
    snprintf(body, sizeof body,
             "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":\"abc-123\"}}}");
    vapi_post(f, 0, VAPI_SECRET, body, &r);
    assert_int_equal(r.status, 503);
    cgt_resp_free(&r);
    queue_wait(f, 0, a, &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Response>");
    cgt_resp_free(&r);

    /* Redis is back: reconciliation finds A in Twilio's queue and the gate
     * connects them. */
    set_queue_members(f, (const char *const[]){a, NULL}, 4);
    int lists = cgt_fake_count(f->fake, CGT_EP_TW_MEMBERS);
    char err[256];
    assert_int_equal(cg_redis_server_restart(&f->rs, err, sizeof err), 0);
    must(f, cgt_wait_status(url, 200, LATER) == 0, "health never came back");
    wait_fake(f, CGT_EP_TW_MEMBERS, lists + 1, LATER);
    wait_update(f, a, 1, LATER);
    assert_pushed_vapi_twiml(f, a);
    wait_state(f, a, "connected", SOON);
    char *by = field_of(f, a, "entered_by");
    assert_string_equal(by, "gate0");
    free(by);
    assert_int_equal(health_active(f, 0), 1);
    stop_gate(f, 0);
}

static void test_two_instances(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    start_gate(f, 1, NULL);
    enum { N = 6, LIMIT = 2 };
    char sids[N][40];
    for (int k = 0; k < N; k++) {
        new_sid(sids[k]);
        struct cgt_resp r;
        incoming(f, k % 2, sids[k], &r);
        assert_int_equal(r.status, 200);
        cgt_resp_free(&r);
        must(f, zcard(f, "active") <= LIMIT, "limit exceeded after caller %d", k);
    }
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), LIMIT);

    /* Release every call through the instance that did not admit it. */
    int seen_admitted_by[2] = {0, 0};
    uint64_t deadline = cgt_now_ms() + 20000;
    for (;;) {
        long long active = zcard(f, "active");
        must(f, active <= LIMIT, "%lld slots held, limit %d", active, LIMIT);
        int ended = 0;
        for (int k = 0; k < N; k++) {
            char *st = field_of(f, sids[k], "state");
            if (strcmp(st, "ended") == 0) {
                ended++;
            } else if (strcmp(st, "connected") == 0) {
                char *by = field_of(f, sids[k], "admitted_by");
                int other = strcmp(by, "gate0") == 0 ? 1 : 0;
                seen_admitted_by[1 - other] = 1;
                char *vid = field_of(f, sids[k], "vapi_id");
                char *res = vapi_end(f, other, vid, k % 2);
                must(f, strcmp(res, "released") == 0, "end of %s: %s", sids[k], res);
                free(res);
                free(vid);
                free(by);
                active = zcard(f, "active");
                must(f, active <= LIMIT, "%lld slots held, limit %d", active, LIMIT);
            }
            free(st);
        }
        if (ended == N)
            break;
        must(f, cgt_now_ms() < deadline, "only %d of %d calls ended", ended, N);
        cgt_sleep_ms(5);
    }
    assert_true(seen_admitted_by[0] && seen_admitted_by[1]);
    for (int k = 0; k < N; k++) {
        char *by = field_of(f, sids[k], "entered_by");
        assert_string_equal(by, k % 2 ? "gate1" : "gate0");
        free(by);
        assert_int_equal(cgt_fake_create_count(f->fake, sids[k]), 1);
        /* The first two took the fast path, the rest a Calls update each. */
        assert_int_equal(cgt_fake_update_count(f->fake, sids[k]), k < LIMIT ? 0 : 1);
    }
    assert_int_equal(stat_of(f, "released"), N);
    assert_int_equal(zcard(f, "active"), 0);
    assert_int_equal(zcard(f, "waiting"), 0);
    stop_gate(f, 0);
    stop_gate(f, 1);
}

static void test_hangup_during_fast_path(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    cgt_fake_set_vapi_delay(f->fake, 800);
    char a[40];
    new_sid(a);
    struct bg b;
    bg_incoming(f, 0, a, &b);
    wait_creates(f, a, 1, SOON);
    /* The caller hangs up while Vapi is answering. */
    assert_int_equal(call_status(f, 0, a, "canceled"), 200);
    bg_join(&b);
    assert_int_equal(b.r.status, 200);
    assert_contains(b.r.body, "<Response/>");
    cgt_resp_free(&b.r);
    assert_state(f, a, "abandoned");
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller abandoned\"", a, "hung-up-during-admission"),
             SOON);
    /* Vapi's call exists and counts against its limit until Vapi ends it. */
    char *va = vapi_id_of(f, a);
    char orphan[96];
    snprintf(orphan, sizeof orphan, "v:%s", va);
    assert_true(in_active(f, orphan));
    assert_false(in_active(f, a));
    char *res = vapi_end(f, 0, va, 0);
    assert_string_equal(res, "released-orphan");
    free(res);
    free(va);
    assert_int_equal(zcard(f, "active"), 0);
    stop_gate(f, 0);
}

static void test_shutdown_finishes_admissions(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    cgt_fake_set_vapi_delay(f->fake, 600);
    char a[40];
    new_sid(a);
    struct bg b;
    bg_incoming(f, 0, a, &b);
    wait_creates(f, a, 1, SOON);
    /* SIGTERM while the admission waits for Vapi: it is finished, the
     * webhook gets the assistant's TwiML, and the process exits cleanly. */
    kill(f->g[0].proc.pid, SIGTERM);
    bg_join(&b);
    assert_int_equal(b.r.status, 200);
    char *va = vapi_id_of(f, a);
    char *want = cgt_fake_twiml_for(va);
    assert_string_equal(b.r.body, want);
    free(want);
    free(va);
    cgt_resp_free(&b.r);
    int rc = cgt_wait_exit(&f->g[0].proc, LATER);
    must(f, rc == 0, "callgate exited with %d", rc);
    assert_state(f, a, "connected");
}

static void test_twilio_error_requeues(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"FAST_PATH_DEADLINE_MS=0", NULL});
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_ERROR500);
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    /* Twilio fails the update (after its client's retries): the caller goes
     * back to the head and Vapi's call keeps a slot as an orphan. */
    wait_update(f, a, 1, SOON);
    cgt_fake_set_vapi_delay(f->fake, 1500);
    char *v1 = vapi_id_of(f, a);
    char orphan[96];
    snprintf(orphan, sizeof orphan, "v:%s", v1);
    wait_in_active(f, orphan, LATER);
    cgt_fake_set_twilio_update(f->fake, CGT_TWU_OK);

    /* The second attempt is under way when Vapi reports the orphan's end,
     * twice (status-update, then the end-of-call report), as Vapi does. */
    wait_creates(f, a, 2, LATER);
    assert_state(f, a, "admitting");
    char *res = vapi_end(f, 0, v1, 0);
    assert_string_equal(res, "released-orphan");
    free(res);
    res = vapi_end(f, 0, v1, 1);
    must(f, strcmp(res, "requeued") != 0,
         "a late end message for the orphan call %s disturbed the caller's new admission", v1);
    free(res);

    int updates = cgt_fake_update_count(f->fake, a);
    wait_update(f, a, updates + 1, LATER);
    wait_state(f, a, "connected", SOON);
    assert_pushed_vapi_twiml(f, a);
    char *v2 = vapi_id_of(f, a);
    assert_string_not_equal(v1, v2);
    assert_int_equal(cgt_fake_create_count(f->fake, a), 2);
    assert_int_equal(zcard(f, "active"), 1);
    assert_true(in_active(f, a));
    free(v1);
    free(v2);
    stop_gate(f, 0);
}

static void test_instance_dies_mid_admission(void **state)
{
    struct fixture *f = *state;
    const char *const env[] = {"MAX_CONCURRENCY=1", "FAST_PATH_DEADLINE_MS=0",
                               "ADMISSION_LEASE_SECONDS=5", "ORPHAN_HOLD_SECONDS=1", NULL};
    start_gate(f, 0, env);
    start_gate(f, 1, env);
    cgt_fake_set_vapi_delay(f->fake, 60000);
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    wait_creates(f, a, 1, SOON);
    /* gate0 dies while its Vapi request is open. */
    cgt_stop(&f->g[0].proc, SIGKILL, 1000);
    cgt_fake_set_vapi_delay(f->fake, 0);
    /* gate1 finds the admission lease expired, keeps a slot for the Vapi
     * call gate0 may have created, requeues the caller, and connects them
     * when that slot's hold ends. */
    wait_update(f, a, 1, 20000);
    wait_state(f, a, "connected", SOON);
    assert_pushed_vapi_twiml(f, a);
    char *by = field_of(f, a, "admitted_by");
    assert_string_equal(by, "gate1");
    free(by);
    assert_int_equal(cgt_fake_create_count(f->fake, a), 2);
    assert_int_equal(zcard(f, "active"), 1);
    char *log = cgt_redis_cmd(&f->rs, "XRANGE " P "log - +");
    assert_contains(log, "admission-lease-expired");
    free(log);
    stop_gate(f, 1);
}

static void test_queue_exit_results(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    enqueue(f, 0, c);
    struct cgt_resp r;
    /* Twilio's own queue was full: the overflow treatment. */
    queue_exit(f, 0, b, "queue-full", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Hangup/>");
    cgt_resp_free(&r);
    assert_state(f, b, "overflowed");
    assert_int_equal(position_of(f, c), 1);
    /* Twilio could not run the hold music: back into the queue. */
    queue_exit(f, 0, c, "error", &r);
    assert_enqueue(f, 0, &r);
    cgt_resp_free(&r);
    assert_state(f, c, "waiting");
    /* The Calls update took the caller: nothing to say, nothing changes. */
    queue_exit(f, 0, c, "redirected", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "<Response/>");
    cgt_resp_free(&r);
    assert_state(f, c, "waiting");
    const char *kv[] = {"CallSid", c, "AccountSid", ACCOUNT_SID, NULL};
    twilio_post(f, 0, "/queue-exit", kv, &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);
    stop_gate(f, 0);
}

static void test_reconcile_adopts(void **state)
{
    struct fixture *f = *state;
    char a[40];
    new_sid(a);
    char queues[512], members[512];
    snprintf(queues, sizeof queues,
             "[{\"sid\":\"QUffffffffffffffffffffffffffffffff\",\"friendly_name\":\"other\"},"
             "{\"sid\":\"%s\",\"friendly_name\":\"%s\",\"current_size\":1}]",
             QUEUE_SID, QUEUE_NAME);
    snprintf(members, sizeof members,
             "[{\"call_sid\":\"%s\",\"position\":1,\"queue_sid\":\"%s\",\"wait_time\":30}]", a,
             QUEUE_SID);
    cgt_fake_set_queues(f->fake, queues);
    cgt_fake_set_queue_members(f->fake, members);
    /* No TWILIO_QUEUE_SID: the gate finds the queue by name, then adopts the
     * caller Twilio holds and it does not know, and connects them. */
    start_gate(f, 0, (const char *const[]){"TWILIO_QUEUE_SID=", NULL});
    wait_fake(f, CGT_EP_TW_QUEUES, 1, SOON);
    wait_fake(f, CGT_EP_TW_MEMBERS, 1, SOON);
    wait_update(f, a, 1, SOON);
    assert_pushed_vapi_twiml(f, a);
    wait_state(f, a, "connected", SOON);
    char *from = field_of(f, a, "from");
    assert_string_equal(from, "+15550001111");
    free(from);
    /* Its wait counts from when Twilio queued it. */
    char *body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    assert_contains(body, "+15550001111");
    free(body);
    assert_true(stat_of(f, "wait_ms_total") >= 30000);
    stop_gate(f, 0);
}

static void test_vapi_wrong_key(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"VAPI_API_KEY=not-the-key", NULL});
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    /* Refused credentials are a configuration problem, not the caller's:
     * the caller keeps waiting at the head while admission retries. */
    wait_fake(f, CGT_EP_UNAUTHORIZED, 3, LATER);
    char *auth = cgt_fake_last_auth(f->fake, CGT_EP_UNAUTHORIZED);
    assert_string_equal(auth, "Bearer not-the-key");
    free(auth);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), 0);
    char *st = field_of(f, a, "state");
    must(f, strcmp(st, "waiting") == 0 || strcmp(st, "admitting") == 0, "state %s", st);
    free(st);
    assert_int_equal(stat_of(f, "overflowed"), 0);
    /* /health says the gate cannot work, and why. */
    char url[256];
    url_of(f, 0, "/health", url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
    assert_contains(json_string_value(json_object_get(j, "reason")), "VAPI_API_KEY");
    json_decref(j);
    cgt_resp_free(&r);
    /* The operator's view (and the wallboard's banner) says it too. */
    long qst;
    j = get_json_of(f, 0, "/queue", &qst);
    assert_int_equal(qst, 200);
    json_t *problems = json_object_get(j, "problems");
    assert_int_equal(json_array_size(problems), 1);
    assert_contains(json_string_value(json_array_get(problems, 0)), "VAPI_API_KEY");
    json_decref(j);
    int rc = cgt_stop(&f->g[0].proc, SIGTERM, 10000);
    must(f, rc == 0, "callgate exited with %d", rc);
}

/* /livez and /readyz stay 200 while Redis is down (the gate still holds
 * callers in Twilio's queue); /health says why it is 503. */
static void test_probes_redis_down(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    long st;
    json_t *j = get_json_of(f, 0, "/livez", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "alive");
    json_decref(j);
    j = get_json_of(f, 0, "/readyz", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "ready");
    assert_string_equal(json_s(j, "redis"), "connected");
    json_decref(j);

    char url[256];
    url_of(f, 0, "/health", url, sizeof url);
    cg_redis_server_kill(&f->rs, SIGKILL);
    must(f, cgt_wait_status(url, 503, LATER) == 0, "health never went 503");
    j = get_json_of(f, 0, "/health", &st);
    assert_int_equal(st, 503);
    assert_string_equal(json_s(j, "status"), "degraded");
    assert_string_equal(json_s(j, "redis"), "disconnected");
    assert_contains(json_s(j, "reason"), "redis");
    json_decref(j);
    j = get_json_of(f, 0, "/livez", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "alive");
    json_decref(j);
    j = get_json_of(f, 0, "/readyz", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "ready");
    assert_string_equal(json_s(j, "redis"), "disconnected");
    json_decref(j);
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    stop_gate(f, 0);
}

/* From SIGTERM on, /readyz answers 503 on a connection a load balancer
 * already holds, while the work in flight drains. */
static void test_readyz_draining(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    int fd = raw_connect(f->g[0].port);
    char body[512];
    assert_int_equal(raw_get(fd, "/readyz", body, sizeof body), 200);
    assert_contains(body, "\"ready\"");
    cgt_fake_set_vapi_delay(f->fake, 1500);
    char a[40];
    new_sid(a);
    struct bg b;
    bg_incoming(f, 0, a, &b);
    wait_creates(f, a, 1, SOON);
    kill(f->g[0].proc.pid, SIGTERM);
    wait_log(f, 0, LOG_PARTS("shutting down"), SOON);
    long st = raw_get(fd, "/readyz", body, sizeof body);
    must(f, st == 503, "/readyz answered %ld while draining: %s", st, body);
    assert_contains(body, "\"draining\"");
    close(fd);
    bg_join(&b);
    assert_int_equal(b.r.status, 200);
    cgt_resp_free(&b.r);
    int rc = cgt_wait_exit(&f->g[0].proc, LATER);
    must(f, rc == 0, "callgate exited with %d", rc);
}

/* /health names the services; callers waiting beside a free slot (here:
 * admission paused by a backoff) make it degraded, still 200. */
static void test_health_stuck(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    long st;
    json_t *j = get_json_of(f, 0, "/health", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "healthy");
    json_t *svc = json_object_get(j, "services");
    assert_true(json_is_array(svc));
    assert_int_equal(json_array_size(svc), 1);
    assert_string_equal(json_string_value(json_array_get(svc, 0)), "gate");
    assert_null(json_object_get(j, "reason"));
    json_decref(j);

    /* Admission paused for a minute: the caller waits with both slots free. */
    free(cgt_redis_cmd(&f->rs, "SET " P "backoff %lld PX 60000", redis_now_ms(f) + 60000));
    char a[40];
    new_sid(a);
    enqueue(f, 0, a);
    j = get_json_of(f, 0, "/health", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "healthy");
    json_decref(j);
    /* ... for longer than a few seconds. */
    free(cgt_redis_cmd(&f->rs, "HSET " P "call:%s enqueued_at %lld", a, redis_now_ms(f) - 20000));
    j = get_json_of(f, 0, "/health", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "degraded");
    assert_contains(json_s(j, "reason"), "free slot");
    assert_int_equal(json_num(j, "callsInQueue"), 1);
    assert_int_equal(json_num(j, "availableCapacity"), 2);
    assert_true(json_num(j, "oldestWaitSeconds") >= 20);
    assert_string_equal(json_s(j, "redis"), "connected");
    json_decref(j);

    /* The metric says the same. */
    char url[256];
    url_of(f, 0, "/metrics", url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    const char *g = strstr(r.body, "\ncallgate_oldest_waiting_seconds ");
    must(f, g != NULL, "no oldest-wait gauge");
    assert_true(strtod(g + strlen("\ncallgate_oldest_waiting_seconds "), NULL) >= 20);
    cgt_resp_free(&r);

    /* Admission resumes: healthy again. */
    free(cgt_redis_cmd(&f->rs, "DEL " P "backoff"));
    wait_update(f, a, 1, LATER);
    wait_state(f, a, "connected", SOON);
    j = get_json_of(f, 0, "/health", &st);
    assert_string_equal(json_s(j, "status"), "healthy");
    json_decref(j);
    stop_gate(f, 0);
}

/* Refused credentials show in /health until an API accepts them again. */
static void test_health_refused_credentials(void **state)
{
    struct fixture *f = *state;
    start_gate(
        f, 0,
        (const char *const[]){"VAPI_API_KEY=not-the-key", "TWILIO_AUTH_TOKEN=wrong-token", NULL});
    /* Twilio's queue lookup at start is refused. */
    wait_fake(f, CGT_EP_UNAUTHORIZED, 1, LATER);
    long st;
    json_t *j = NULL;
    uint64_t deadline = cgt_now_ms() + SOON;
    for (;;) {
        j = get_json_of(f, 0, "/health", &st);
        if (strstr(json_s(j, "reason"), "TWILIO_AUTH_TOKEN") || cgt_now_ms() > deadline)
            break;
        json_decref(j);
        cgt_sleep_ms(20);
    }
    assert_int_equal(st, 200);
    assert_string_equal(json_s(j, "status"), "degraded");
    assert_contains(json_s(j, "reason"), "twilio refused the credentials");
    json_decref(j);
    int rc = cgt_stop(&f->g[0].proc, SIGTERM, 10000);
    must(f, rc == 0, "callgate exited with %d", rc);
}

/* /metrics: the age of the oldest waiting caller. */
static void test_metrics_oldest_wait(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char url[256];
    url_of(f, 0, "/metrics", url, sizeof url);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_contains(r.body, "\ncallgate_oldest_waiting_seconds 0\n");
    cgt_resp_free(&r);
    char a[40], b[40];
    new_sid(a);
    new_sid(b);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    cgt_sleep_ms(1200);
    cgt_http("GET", url, NULL, NULL, 0, &r);
    const char *g = strstr(r.body, "\ncallgate_oldest_waiting_seconds ");
    must(f, g != NULL, "no oldest-wait gauge");
    double v = strtod(g + strlen("\ncallgate_oldest_waiting_seconds "), NULL);
    must(f, v >= 1.0 && v < 30, "oldest wait %f", v);
    cgt_resp_free(&r);
    stop_gate(f, 0);
}

/* A bad signature says which URL it was checked against; webhooks sent to
 * a path callgate does not serve say what to fix, once a minute a path. */
static void test_misrouted_webhooks_logged(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    char a[40];
    new_sid(a);
    const char *kv[] = {"CallSid", a, "AccountSid", ACCOUNT_SID, "From", CALLER, NULL};
    struct cgt_resp r;
    /* Signed for another URL, as when PUBLIC_URL is not the URL Twilio calls. */
    char url[256], sigh[64], sig[CG_TWSIG_LEN + 1];
    struct cg_form form;
    cg_form_init(&form);
    for (size_t k = 0; kv[k]; k += 2)
        cg_form_add(&form, kv[k], kv[k + 1]);
    assert_int_equal(cg_twsig_compute(AUTH_TOKEN, "https://elsewhere.example/incoming", &form, sig),
                     0);
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(&form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    url_of(f, 0, "/incoming", url, sizeof url);
    cgt_http("POST", url, h, body, strlen(body), &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    char checked[300];
    snprintf(checked, sizeof checked, "\"checked_url\":\"%s/incoming\"", f->g[0].base);
    wait_log(f, 0, LOG_PARTS("bad signature", "PUBLIC_URL", checked), SOON);
    must(f, log_lines(f, 0, LOG_PARTS(AUTH_TOKEN)) == 0, "the auth token was logged");

    /* A Twilio webhook on a path callgate does not serve: 404 and a hint,
     * logged once however often it comes. */
    url_of(f, 0, "/voice", url, sizeof url);
    for (int k = 0; k < 3; k++) {
        cgt_http("POST", url, h, body, strlen(body), &r);
        assert_int_equal(r.status, 404);
        cgt_resp_free(&r);
    }
    wait_log(f, 0, LOG_PARTS("a Twilio webhook reached /voice", "/incoming", "\"warn\""), SOON);
    assert_int_equal(log_lines(f, 0, LOG_PARTS("a Twilio webhook reached /voice")), 1);
    free(body);
    cg_form_free(&form);

    /* A Vapi server message on the wrong path. */
    url_of(f, 0, "/vapi/webhook", url, sizeof url);
    const char *vbody = "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\"}}";
    const char *vh[] = {"Content-Type: application/json", NULL};
    cgt_http("POST", url, vh, vbody, strlen(vbody), &r);
    assert_int_equal(r.status, 404);
    cgt_resp_free(&r);
    wait_log(f, 0, LOG_PARTS("a Vapi webhook reached /vapi/webhook", "/call-ended"), SOON);

    /* Anything else on an unknown path is not a webhook: no hint. */
    url_of(f, 0, "/nothing", url, sizeof url);
    cgt_http("POST", url, vh, "{\"x\":1}", 7, &r);
    assert_int_equal(r.status, 404);
    cgt_resp_free(&r);
    assert_int_equal(log_lines(f, 0, LOG_PARTS("reached /nothing")), 0);
    stop_gate(f, 0);
}

/* One info line per caller step, each with the CallSid; repeated end
 * signals that change nothing only at debug. */
static void test_caller_steps_logged(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller entered\"", a, "\"position\":1"), SOON);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller admitted\"", a), SOON);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller connected\"", a), SOON);
    enqueue(f, 0, b);
    enqueue(f, 0, c);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller entered\"", c, "\"position\":2"), SOON);

    /* C hangs up while waiting, second in line. */
    struct cgt_resp r;
    queue_exit(f, 0, c, "hangup", &r);
    cgt_resp_free(&r);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller abandoned\"", c, "\"position\":2", "wait_s"),
             SOON);

    /* A's call ends: released with its hold time; B admitted and connected. */
    char *va = vapi_id_of(f, a);
    char *res = vapi_end(f, 0, va, 0);
    assert_string_equal(res, "released");
    free(res);
    wait_log(f, 0,
             LOG_PARTS("\"info\"", "\"caller released\"", a, "\"reason\":\"customer-ended-call\"",
                       "hold_s"),
             SOON);
    wait_update(f, b, 1, LATER);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller admitted\"", b), SOON);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller connected\"", b), SOON);

    /* The end-of-call report repeats the end: debug only. */
    res = vapi_end(f, 0, va, 1);
    free(res);
    wait_log(f, 0, LOG_PARTS("\"debug\"", "changed nothing", a), SOON);
    assert_int_equal(log_lines(f, 0, LOG_PARTS("\"info\"", "changed nothing")), 0);
    assert_int_equal(log_lines(f, 0, LOG_PARTS("\"caller released\"", a)), 1);
    free(va);
    stop_gate(f, 0);
}

/* Overflow is one info line with the CallSid too. */
static void test_overflow_logged(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", "MAX_QUEUE_SIZE=1", NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    struct cgt_resp r;
    incoming(f, 0, c, &r);
    cgt_resp_free(&r);
    wait_log(f, 0, LOG_PARTS("\"info\"", "\"caller overflowed\"", c, "queue-full"), SOON);
    stop_gate(f, 0);
}

/* A limit set through the admin API outlives restarts: the start says so. */
static void test_runtime_limit_logged_at_start(void **state)
{
    struct fixture *f = *state;
    free(cgt_redis_cmd(&f->rs, "SET " P "limit 7"));
    start_gate(f, 0, NULL);
    wait_log(f, 0,
             LOG_PARTS("runtime limit 7 (set through /admin/limit) in force instead of "
                       "MAX_CONCURRENCY=2"),
             SOON);
    stop_gate(f, 0);
    free(cgt_redis_cmd(&f->rs, "DEL " P "limit"));
    start_gate(f, 1, NULL);
    wait_log(f, 1, LOG_PARTS("redis ready"), SOON);
    assert_int_equal(log_lines(f, 1, LOG_PARTS("runtime limit")), 0);
    stop_gate(f, 1);
}

static void test_failed_admission_refills(void **state)
{
    struct fixture *f = *state;
    /* The periodic safety run of admission is out of the picture: every
     * refill below must come from the event that freed the slot. */
    start_gate(f, 0,
               (const char *const[]){"MAX_CONCURRENCY=1", "MAX_ADMISSION_ATTEMPTS=1",
                                     "SWEEP_INTERVAL_MS=60000", NULL});
    char a[40], b[40], c[40], d[40], e[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    new_sid(d);
    new_sid(e);
    connect_fast(f, 0, a);
    enqueue(f, 0, b);
    enqueue(f, 0, c);
    enqueue(f, 0, d);
    enqueue(f, 0, e);

    /* Vapi refuses B for good: B gets the overflow treatment and B's slot
     * goes to C. */
    cgt_fake_set_vapi_create_next(f->fake, CGT_VAPI_INVALID400, 1);
    char *va = vapi_id_of(f, a);
    char *res = vapi_end(f, 0, va, 0);
    assert_string_equal(res, "released");
    free(res);
    free(va);
    wait_state(f, b, "overflowed", SOON);
    wait_update(f, c, 1, SOON);
    wait_state(f, c, "connected", SOON);

    /* D hangs up while Vapi is failing its admission: D is abandoned and
     * D's slot goes to E. */
    cgt_fake_set_vapi_delay(f->fake, 500);
    cgt_fake_set_vapi_create_next(f->fake, CGT_VAPI_ERROR500, 1);
    char *vc = vapi_id_of(f, c);
    res = vapi_end(f, 0, vc, 0);
    assert_string_equal(res, "released");
    free(res);
    free(vc);
    wait_creates(f, d, 1, SOON);
    cgt_fake_set_vapi_delay(f->fake, 0);
    assert_int_equal(call_status(f, 0, d, "canceled"), 200);
    wait_state(f, d, "abandoned", SOON);
    wait_update(f, e, 1, SOON);
    wait_state(f, e, "connected", SOON);
    assert_int_equal(zcard(f, "active"), 1);
    stop_gate(f, 0);
}

/* ---- the operator's view ---- */

#define VIEW_TOKEN "view-token-0123456789"

/* GET path on instance 0 with an Authorization header (NULL: none). */
static void get_as(struct fixture *f, const char *path, const char *auth, struct cgt_resp *r)
{
    char url[512], ah[128];
    url_of(f, 0, path, url, sizeof url);
    snprintf(ah, sizeof ah, "Authorization: %s", auth ? auth : "");
    const char *h[] = {auth ? ah : NULL, NULL};
    cgt_http("GET", url, h, NULL, 0, r);
}

static long get_status(struct fixture *f, const char *path, const char *auth)
{
    struct cgt_resp r;
    get_as(f, path, auth, &r);
    long st = r.status;
    cgt_resp_free(&r);
    return st;
}

/* A caller from the given number who must wait. */
static void enqueue_from(struct fixture *f, const char *sid, const char *from)
{
    const char *kv[] = {
        "CallSid",      sid,          "AccountSid", ACCOUNT_SID, "From",    from, "To",
        "+15550002222", "CallStatus", "ringing",    "Direction", "inbound", NULL};
    struct cgt_resp r;
    twilio_post(f, 0, "/incoming", kv, &r);
    assert_enqueue(f, 0, &r);
    cgt_resp_free(&r);
}

static const char *jstr(const json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    if (v == NULL)
        fail_msg("%s is not a string", key);
    return v;
}

/* With callers connected and waiting, /queue lists them in order with
 * masked numbers, their waits and the estimate the hold announcement
 * gives; the event export has their ENTER rows; both need the token. */
static void test_queue_view(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"MAX_CONCURRENCY=1", "ADMIN_TOKEN=" VIEW_TOKEN, NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    connect_fast(f, 0, a);
    enqueue_from(f, b, "+15551231111");
    enqueue_from(f, c, "+15551232222");

    assert_int_equal(get_status(f, "/queue", NULL), 401);
    assert_int_equal(get_status(f, "/queue", "Bearer wrong"), 401);
    assert_int_equal(get_status(f, "/queue?token=wrong", NULL), 401);
    assert_int_equal(get_status(f, "/queue?token=" VIEW_TOKEN, NULL), 200);

    /* The estimate the hold announcement gives B. */
    struct cgt_resp r;
    queue_wait(f, 0, b, &r);
    assert_int_equal(r.status, 200);
    char *ewt = cgt_resp_header(&r, "X-Callgate-Estimated-Wait");
    assert_non_null(ewt);
    long long announced = atoll(ewt);
    free(ewt);
    cgt_resp_free(&r);

    get_as(f, "/queue", "Bearer " VIEW_TOKEN, &r);
    must(f, r.status == 200, "/queue answered %ld: %s", r.status, r.body ? r.body : "");
    assert_content_type(&r, "application/json");
    /* No caller's whole number anywhere in the answer. */
    assert_lacks(r.body, "5551231111");
    assert_lacks(r.body, "5551232222");
    assert_lacks(r.body, "5557770000");
    json_t *j = resp_json(&r);
    assert_int_equal(json_num(j, "limit"), 1);
    assert_int_equal(json_num(j, "activeCount"), 1);
    assert_int_equal(json_num(j, "waitingCount"), 2);
    assert_true(json_num(j, "oldestWaitSeconds") >= 0);
    assert_true(json_is_null(json_object_get(j, "taskQueues"))); /* no wait-time service */

    json_t *act = json_object_get(j, "active");
    assert_int_equal(json_array_size(act), 1);
    json_t *s0 = json_array_get(act, 0);
    assert_string_equal(jstr(s0, "callSid"), a);
    assert_string_equal(jstr(s0, "kind"), "call");
    assert_string_equal(jstr(s0, "state"), "connected");
    assert_string_equal(jstr(s0, "number"), "***0000");
    char *va = vapi_id_of(f, a);
    assert_string_equal(jstr(s0, "vapiCallId"), va);
    free(va);
    assert_true(cg_iso8601_parse(jstr(s0, "connectedAt")) > 0);
    assert_true(json_num(s0, "connectedSeconds") >= 0);

    json_t *wl = json_object_get(j, "waiting");
    assert_int_equal(json_array_size(wl), 2);
    json_t *w0 = json_array_get(wl, 0), *w1 = json_array_get(wl, 1);
    assert_int_equal(json_num(w0, "position"), 1);
    assert_string_equal(jstr(w0, "callSid"), b);
    assert_string_equal(jstr(w0, "number"), "***1111");
    assert_true(json_num(w0, "waitedSeconds") >= 0);
    assert_int_equal(json_num(w0, "estimatedWaitSeconds"), announced);
    assert_true(json_is_false(json_object_get(w0, "requeued")));
    assert_int_equal(json_num(w1, "position"), 2);
    assert_string_equal(jstr(w1, "callSid"), c);
    assert_string_equal(jstr(w1, "number"), "***2222");
    assert_true(json_num(w1, "estimatedWaitSeconds") > json_num(w0, "estimatedWaitSeconds"));
    json_decref(j);
    cgt_resp_free(&r);

    /* The queue log: the callers' ENTER rows, in CSV (RFC 4180) and JSON. */
    assert_int_equal(get_status(f, "/reports/events.csv", NULL), 401);
    assert_int_equal(get_status(f, "/reports/events.json", "Bearer wrong"), 401);
    get_as(f, "/reports/events.csv?token=" VIEW_TOKEN, NULL, &r);
    must(f, r.status == 200, "events.csv answered %ld: %s", r.status, r.body ? r.body : "");
    assert_content_type(&r, "text/csv");
    assert_true(strncmp(r.body, "time,event,callSid,position,waitSeconds,reason\r\n", 48) == 0);
    char want[128];
    snprintf(want, sizeof want, "Z,ENTER,%s,1,,\r\n", a);
    assert_contains(r.body, want);
    snprintf(want, sizeof want, "Z,ENTER,%s,1,,\r\n", b);
    assert_contains(r.body, want);
    snprintf(want, sizeof want, "Z,ENTER,%s,2,,\r\n", c);
    assert_contains(r.body, want);
    snprintf(want, sizeof want, "Z,CONNECT,%s,,", a);
    assert_contains(r.body, want);
    assert_lacks(r.body, "5551231111");
    assert_lacks(r.body, "+1555");
    cgt_resp_free(&r);

    get_as(f, "/reports/events.json", "Bearer " VIEW_TOKEN, &r);
    must(f, r.status == 200, "events.json answered %ld: %s", r.status, r.body ? r.body : "");
    assert_lacks(r.body, "5551232222");
    j = resp_json(&r);
    json_t *ev = json_object_get(j, "events");
    int entered_c = 0;
    for (size_t k = 0; k < json_array_size(ev); k++) {
        json_t *e = json_array_get(ev, k);
        assert_true(cg_iso8601_parse(jstr(e, "time")) > 0);
        if (strcmp(jstr(e, "event"), "ENTER") == 0 && strcmp(jstr(e, "callSid"), c) == 0) {
            entered_c++;
            assert_int_equal(json_num(e, "position"), 2);
            assert_true(json_is_null(json_object_get(e, "waitSeconds")));
        }
    }
    assert_int_equal(entered_c, 1);
    assert_int_equal(json_num(j, "count"), (long long)json_array_size(ev));
    assert_true(json_is_true(json_object_get(j, "complete")));
    json_decref(j);
    cgt_resp_free(&r);

    /* A range with nothing in it: the header line alone. */
    get_as(f, "/reports/events.csv?from=2001-01-01T00:00:00Z&to=2001-01-01T01:00:00Z",
           "Bearer " VIEW_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "time,event,callSid,position,waitSeconds,reason\r\n");
    cgt_resp_free(&r);
    /* Malformed and reversed ranges. */
    const char *bad[] = {"/reports/events.csv?from=yesterday",
                         "/reports/events.json?to=2026-13-01T00:00:00Z",
                         "/reports/events.json?from=2026-01-01",
                         "/reports/events.csv?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        must(f, get_status(f, bad[k], "Bearer " VIEW_TOKEN) == 400, "%s was not refused", bad[k]);
    stop_gate(f, 0);
}

/* Behind a reverse proxy (PUBLIC_URL is not loopback) without a token, the
 * operator's view is off, as the admin API is. */
static void test_queue_view_needs_token_behind_proxy(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"PUBLIC_URL=https://gate.example.com", NULL});
    assert_int_equal(get_status(f, "/queue", NULL), 403);
    assert_int_equal(get_status(f, "/reports/events.csv", NULL), 403);
    assert_int_equal(get_status(f, "/reports/events.json?token=x", NULL), 403);
    stop_gate(f, 0);
}

/* A range of more rows than any page or buffer holds is streamed in one
 * answer, every row in order; CSV quoting and formula cells. The log is
 * written straight into Redis, an hour back: older entries would fall to
 * the board's retention trim in the middle of the export. */
static void test_events_export_pages(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, NULL);
    static const char script[] =
        "local base = tonumber(ARGV[1]) "
        "for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do "
        "  local ms, seq = base + i, 0 "
        "  if i == 10001 then ms, seq = base + 10000, 1 end "
        "  redis.call('XADD', KEYS[1], ms .. '-' .. seq, 'ev', 'ENTER', 'sid', 'CA' .. i, "
        "             't', ms, 'pos', i, 'from', '+15554443333') "
        "end "
        "if tonumber(ARGV[3]) < 30050 then return 1 end "
        "redis.call('XADD', KEYS[1], (base + 30051) .. '-0', 'ev', 'ABANDON', 'sid', 'CAq', "
        "           'pos', 1, 'wait', 1500, 'reason', 'a,\"b\"') "
        "redis.call('XADD', KEYS[1], (base + 30052) .. '-0', 'ev', 'RELEASE', 'sid', '', "
        "           'reason', '=HYPERLINK()') "
        "return 1";
    /* base: a whole second an hour ago; the entries span 31 s after it. */
    uint64_t base = (cg_wall_ms() / 1000 - 3600) * 1000;
    char bases[24], from1[25], from2[25], to[25], path[160], line[128];
    snprintf(bases, sizeof bases, "%llu", (unsigned long long)base);
    cg_iso8601_ms(base + 1, from1);
    cg_iso8601_ms(base + 10002, from2);
    cg_iso8601_ms(base + 200000, to);
    /* In slices: one script of 30,000 writes blocks Redis longer than
     * callgate's command timeout in a slow (sanitizer) build, and callgate
     * would rightly call Redis unavailable. */
    for (int first = 1; first <= 30050; first += 2500) {
        char a[16], b[16];
        snprintf(a, sizeof a, "%d", first);
        snprintf(b, sizeof b, "%d", first + 2499 < 30050 ? first + 2499 : 30050);
        free(cgt_redis_cmd(&f->rs, "EVAL %s 1 %s %s %s %s", script, P "log", bases, a, b));
    }

    struct cgt_resp r;
    snprintf(path, sizeof path, "/reports/events.json?from=%s&to=%s", from1, to);
    get_as(f, path, NULL, &r);
    must(f, r.status == 200, "events.json answered %ld", r.status);
    char *te = cgt_resp_header(&r, "Transfer-Encoding");
    assert_non_null(te);
    assert_string_equal(te, "chunked");
    free(te);
    json_t *j = resp_json(&r);
    assert_int_equal(json_num(j, "count"), 30052);
    json_t *ev = json_object_get(j, "events");
    assert_int_equal(json_array_size(ev), 30052);
    assert_true(json_is_true(json_object_get(j, "complete")));
    /* In the log's order: the entry that shares a millisecond comes after
     * its neighbour. */
    assert_string_equal(jstr(json_array_get(ev, 9999), "callSid"), "CA10000");
    assert_string_equal(jstr(json_array_get(ev, 10000), "callSid"), "CA10001");
    assert_string_equal(jstr(json_array_get(ev, 30051), "event"), "RELEASE");
    json_decref(j);
    assert_lacks(r.body, "4443333");
    cgt_resp_free(&r);

    snprintf(path, sizeof path, "/reports/events.csv?from=%s&to=%s", from2, to);
    get_as(f, path, NULL, &r);
    must(f, r.status == 200, "events.csv answered %ld", r.status);
    size_t lines = 0;
    for (const char *p = r.body; (p = strstr(p, "\r\n")) != NULL; p += 2)
        lines++;
    assert_int_equal(lines, 1 + 20049 + 2);
    snprintf(line, sizeof line,
             "time,event,callSid,position,waitSeconds,reason\r\n%s,ENTER,CA10002,10002,,\r\n",
             from2);
    assert_contains(r.body, line);
    assert_contains(r.body, ",ABANDON,CAq,1,1.500,\"a,\"\"b\"\"\"\r\n");
    assert_contains(r.body, ",RELEASE,,,,\"'=HYPERLINK()\"\r\n");
    cgt_resp_free(&r);
    stop_gate(f, 0);
}

/* With the wait-time service running, /queue carries its TaskQueues; a
 * loopback client needs no token while PUBLIC_URL is loopback and none is
 * configured. */
static void test_queue_view_task_queues(void **state)
{
    struct fixture *f = *state;
    struct cgt_tr_opts o = {.account_sid = ACCOUNT_SID,
                            .auth_token = AUTH_TOKEN,
                            .workspace_sid = "WS00000000000000000000000000000001",
                            .nqueues = 2};
    struct cgt_tr *tr = cgt_tr_start(&o);
    char tq[160];
    snprintf(tq, sizeof tq, "TASKROUTER_BASE_URL=%s", cgt_tr_url(tr));
    start_gate(
        f, 0,
        (const char *const[]){"TWILIO_WORKSPACE_SID=WS00000000000000000000000000000001", tq, NULL});
    uint64_t deadline = cgt_now_ms() + LATER;
    while (get_status(f, "/wait-times", NULL) != 200 && cgt_now_ms() < deadline)
        cgt_sleep_ms(20);
    struct cgt_resp r;
    get_as(f, "/queue", NULL, &r);
    must(f, r.status == 200, "/queue answered %ld: %s", r.status, r.body ? r.body : "");
    json_t *j = resp_json(&r);
    json_t *q = json_object_get(j, "taskQueues");
    assert_true(json_is_array(q));
    assert_int_equal(json_array_size(q), 2);
    char sid[35];
    cgt_tr_sid(0, sid);
    assert_string_equal(jstr(json_array_get(q, 0), "sid"), sid);
    assert_int_equal(json_num(j, "waitingCount"), 0);
    assert_int_equal(json_array_size(json_object_get(j, "waiting")), 0);
    json_decref(j);
    cgt_resp_free(&r);
    stop_gate(f, 0);
    cgt_tr_stop(tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rejects_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_then_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_end_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_end_asks_vapi_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_learns_vapi_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandon_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_exit_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_wait_announces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_dial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vapi_overlimit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vapi_concurrency_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vapi_errors_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vapi_rejects_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vapi_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_gone_orphan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_behind_proxy_needs_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_view_needs_token_behind_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_export_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_view_task_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_adopts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_gate_on_queue_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hangup_during_fast_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_finishes_admissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_error_requeues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_admission_refills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_dies_mid_admission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes_redis_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_draining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_stuck, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_refused_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_oldest_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misrouted_webhooks_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caller_steps_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_limit_logged_at_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
