/*
 * Routes sharing one Vapi limit (ROUTES_FILE) end to end: a real callgate
 * and redis-server, Twilio's and Vapi's APIs played by tests/harness/fakeapi.c.
 * Two routes (support: min 1, max 2; sales: min 1, max 2, the higher
 * priority) under MAX_CONCURRENCY=3: each route's assistant, phone number
 * and queue; a surge on sales held to its max while support keeps its
 * min; leased slots that take spare room only, refused with Retry-After
 * otherwise, freed on DELETE or when they expire; an outbound call placed
 * through /calls/outbound with the route's number and assistant, after the
 * inbound callers, and released by Vapi's end.
 *
 * Everything asynchronous is awaited by polling with generous deadlines.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/form.h"
#include "fakeapi.h"
#include "twilio/signature.h"

#define ACCOUNT_SID "AC0123456789abcdef0123456789abcdef"
#define AUTH_TOKEN  "test-twilio-auth-token-42"
#define VAPI_KEY    "test-vapi-api-key-7"
#define VAPI_SECRET "test-vapi-webhook-secret"
#define ADMIN       "routes-admin-token-1"
#define SUPPORT     "+15550100000"
#define SALES       "+15550100001"
#define P           "cg:{default}:"
#define SOON        8000

#define ROUTES                                                                                     \
    "{\"routes\": ["                                                                               \
    "{\"name\": \"support\", \"numbers\": [\"" SUPPORT "\"], \"assistantId\": \"asst-support\", "  \
    "\"phoneNumberId\": \"pn-support\", \"queue\": \"support\", \"max\": 2, \"min\": 1, "          \
    "\"priority\": 1},"                                                                            \
    "{\"name\": \"sales\", \"numbers\": [\"" SALES "\"], \"assistantId\": \"asst-sales\", "        \
    "\"phoneNumberId\": \"pn-sales\", \"queue\": \"sales\", \"max\": 2, \"min\": 1, "              \
    "\"priority\": 2}]}"

struct fixture {
    struct cg_redis_server rs;
    struct cgt_fake *fake;
    struct cgt_proc proc;
    int port;
    char base[64];
    char routes_path[64];
};

static unsigned sid_counter;

static void new_sid(char out[40])
{
    snprintf(out, 40, "CA%032x", ++sid_counter);
}

#define must(f, cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            cgt_dump_log_tail(&(f)->proc, "callgate", 8000);                                       \
            fail_msg(__VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)

/* callgate with the routes, on port, with one extra setting (or NULL). */
static void spawn(struct fixture *f, struct cgt_proc *proc, int port_no, const char *extra)
{
    char port[32], pub[96], redis[96], twbase[96], vbase[96], routes[96];
    snprintf(port, sizeof port, "PORT=%d", port_no);
    snprintf(pub, sizeof pub, "PUBLIC_URL=http://127.0.0.1:%d", port_no);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->rs.url);
    snprintf(twbase, sizeof twbase, "TWILIO_API_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(vbase, sizeof vbase, "VAPI_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(routes, sizeof routes, "ROUTES_FILE=%s", f->routes_path);
    static const char *const env[] = {"BIND_ADDRESS=127.0.0.1",
                                      "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
                                      "TWILIO_AUTH_TOKEN=" AUTH_TOKEN,
                                      "VAPI_API_KEY=" VAPI_KEY,
                                      "VAPI_WEBHOOK_SECRET=" VAPI_SECRET,
                                      "ADMIN_TOKEN=" ADMIN,
                                      "MAX_CONCURRENCY=3",
                                      "SWEEP_INTERVAL_MS=100",
                                      "END_GRACE_MS=300",
                                      "ADMISSION_BACKOFF_MIN_MS=50",
                                      "ADMISSION_BACKOFF_MAX_MS=400",
                                      "LOG_LEVEL=debug",
                                      "INSTANCE_ID=routes0",
                                      "RECONCILE_INTERVAL_SECONDS=1",
                                      NULL};
    const char *const mine[] = {port, pub, redis, twbase, vbase, routes, extra, NULL};
    const char *const *lists[] = {mine, env, NULL};
    cgt_spawn_callgate(proc, lists);
}

static int setup(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
    snprintf(f->routes_path, sizeof f->routes_path, "/tmp/cg-routes-it-XXXXXX");
    int fd = mkstemp(f->routes_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, ROUTES, strlen(ROUTES)), (ssize_t)strlen(ROUTES));
    close(fd);

    f->port = cg_free_port();
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    spawn(f, &f->proc, f->port, NULL);
    *state = f;
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->base);
    must(f, cgt_wait_status(url, 200, 15000) == 0, "callgate did not become healthy");
    uint64_t until = cgt_now_ms() + 10000;
    for (;;) {
        char *ok = cgt_redis_cmd(&f->rs, "EXISTS " P "intact");
        char *pub_ok = cgt_redis_cmd(&f->rs, "HGET " P "routes sales");
        int done = strcmp(ok, "1") == 0 && strcmp(pub_ok, "1 2 2") == 0;
        free(ok);
        free(pub_ok);
        if (done)
            break;
        must(f, cgt_now_ms() < until, "routes not published, or no repair");
        cgt_sleep_ms(10);
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = cgt_stop(&f->proc, SIGTERM, 10000);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED), 0);
    cgt_fake_stop(f->fake);
    cg_redis_server_stop(&f->rs);
    unlink(f->routes_path);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* ---- requests ---- */

static void incoming(struct fixture *f, const char *sid, const char *to, struct cgt_resp *r)
{
    char url[160];
    snprintf(url, sizeof url, "%s/incoming", f->base);
    struct cg_form form;
    cg_form_init(&form);
    const char *kv[] = {"CallSid",      sid,       "AccountSid", ACCOUNT_SID,  "From",
                        "+15557770000", "To",      to,           "CallStatus", "ringing",
                        "Direction",    "inbound", NULL};
    for (size_t k = 0; kv[k]; k += 2)
        cg_form_add(&form, kv[k], kv[k + 1]);
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(AUTH_TOKEN, url, &form, sig), 0);
    char sigh[64];
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(&form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
    free(body);
    cg_form_free(&form);
}

static void admin(struct fixture *f, const char *method, const char *path, const char *body,
                  struct cgt_resp *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    const char *h[] = {"Authorization: Bearer " ADMIN, "Content-Type: application/json", NULL};
    cgt_http(method, url, h, body, body ? strlen(body) : 0, r);
}

static void vapi_end(struct fixture *f, const char *vapi_id)
{
    char url[160], body[512];
    snprintf(url, sizeof url, "%s/call-ended", f->base);
    snprintf(body, sizeof body,
             "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":"
             "\"customer-ended-call\",\"call\":{\"id\":\"%s\"}}}",
             vapi_id);
    const char *h[] = {"Content-Type: application/json", "x-vapi-secret: " VAPI_SECRET, NULL};
    struct cgt_resp r;
    cgt_http("POST", url, h, body, strlen(body), &r);
    must(f, r.status == 200, "vapi end answered %ld", r.status);
    cgt_resp_free(&r);
}

static char *field(struct fixture *f, const char *sid, const char *name)
{
    return cgt_redis_cmd(&f->rs, "HGET " P "call:%s %s", sid, name);
}

static void wait_state(struct fixture *f, const char *sid, const char *want)
{
    uint64_t until = cgt_now_ms() + SOON;
    for (;;) {
        char *s = field(f, sid, "state");
        int ok = strcmp(s, want) == 0;
        if (ok || cgt_now_ms() > until) {
            must(f, ok, "%s is %s, not %s", sid, s, want);
            free(s);
            return;
        }
        free(s);
        cgt_sleep_ms(20);
    }
}

static long long zcard(struct fixture *f, const char *key)
{
    char *s = cgt_redis_cmd(&f->rs, "ZCARD " P "%s", key);
    long long n = atoll(s);
    free(s);
    return n;
}

/* The assistant and phone number of Vapi's last POST /call. */
static void assert_last_create(struct fixture *f, const char *assistant, const char *phone,
                               int bypass)
{
    char *body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    json_t *j = json_loads(body, 0, NULL);
    must(f, j != NULL, "create body not JSON: %s", body);
    assert_string_equal(json_string_value(json_object_get(j, "assistantId")), assistant);
    assert_string_equal(json_string_value(json_object_get(j, "phoneNumberId")), phone);
    assert_int_equal(json_is_true(json_object_get(j, "phoneCallProviderBypassEnabled")), bypass);
    json_decref(j);
    free(body);
}

/* A connected caller: connected through the fast path or the queue. */
static char *arrive_connected(struct fixture *f, const char *to, char sid[40])
{
    new_sid(sid);
    struct cgt_resp r;
    incoming(f, sid, to, &r);
    must(f, r.status == 200, "/incoming answered %ld", r.status);
    cgt_resp_free(&r);
    wait_state(f, sid, "connected");
    return field(f, sid, "vapi_id");
}

static void test_two_routes(void **state)
{
    struct fixture *f = *state;
    char s1[40], s2[40], s3[40], s4[40], p1[40];

    /* A surge on sales: two connect (its max), the others wait in sales'
     * own queue with the sales assistant's... nothing yet. */
    char *v1 = arrive_connected(f, SALES, s1);
    assert_last_create(f, "asst-sales", "pn-sales", 1);
    char *v2 = arrive_connected(f, SALES, s2);
    new_sid(s3);
    struct cgt_resp r;
    incoming(f, s3, SALES, &r);
    must(f, r.status == 200 && strstr(r.body, ">sales</Enqueue>") != NULL,
         "third sales caller not enqueued into sales: %s", r.body);
    cgt_resp_free(&r);
    new_sid(s4);
    incoming(f, s4, SALES, &r);
    cgt_resp_free(&r);
    /* A slot is free, and stays free: sales is at its max. */
    cgt_sleep_ms(500);
    wait_state(f, s3, "waiting");
    assert_int_equal(zcard(f, "active"), 2);
    /* Waiting beside a free slot because the route is at its max is not
     * a stuck gate: /health stays healthy past the stuck threshold. */
    admin(f, "GET", "/queue", NULL, &r);
    must(f,
         r.status == 200 && strstr(r.body, "\"position\":1,\"route\":\"sales\"") &&
             strstr(r.body, "\"kind\":\"call\"") && strstr(r.body, "{\"slot\":"),
         "queue: %s", r.body);
    cgt_resp_free(&r);
    cgt_sleep_ms(5500);
    admin(f, "GET", "/health", NULL, &r);
    must(f,
         r.status == 200 && strstr(r.body, "\"status\":\"healthy\"") &&
             strstr(r.body, "{\"name\":\"sales\",\"waiting\":2,\"active\":2"),
         "health: %s", r.body);
    cgt_resp_free(&r);

    /* Support's caller takes the free slot at once, with its assistant. */
    char *vp = arrive_connected(f, SUPPORT, p1);
    assert_last_create(f, "asst-support", "pn-support", 1);
    assert_int_equal(zcard(f, "active"), 3);

    /* Leases: none while the organization is full. */
    admin(f, "POST", "/slots", "{\"route\":\"support\",\"ttlSeconds\":60}", &r);
    must(f, r.status == 429, "slot answered %ld", r.status);
    cgt_resp_free(&r);
    admin(f, "POST", "/slots", "{\"route\":\"nope\"}", &r);
    assert_int_equal(r.status, 400);
    cgt_resp_free(&r);

    /* Support's call ends: the slot is free but sales stays at its max;
     * a support lease may take it (nobody can use it now). */
    vapi_end(f, vp);
    cgt_sleep_ms(300);
    wait_state(f, s3, "waiting");
    admin(f, "POST", "/slots", "{\"route\":\"support\",\"ttlSeconds\":5}", &r);
    must(f, r.status == 201, "slot answered %ld %s", r.status, r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    char slot_id[80];
    snprintf(slot_id, sizeof slot_id, "%s", json_string_value(json_object_get(j, "id")));
    must(f, json_string_value(json_object_get(j, "expiresAt")) != NULL, "no expiresAt");
    json_decref(j);
    cgt_resp_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/slots/%s/renew", slot_id);
    admin(f, "POST", path, "{\"ttlSeconds\":5}", &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);
    /* Full again: a second lease is refused with a Retry-After. */
    admin(f, "POST", "/slots", "{\"route\":\"support\"}", &r);
    assert_int_equal(r.status, 429);
    cgt_resp_free(&r);

    /* An outbound call waits behind, under the same limit. */
    admin(f, "POST", "/calls/outbound",
          "{\"route\":\"support\",\"number\":\"+15550109999\",\"variables\":{\"name\":\"Ada\"}}",
          &r);
    must(f, r.status == 202, "outbound answered %ld %s", r.status, r.body ? r.body : "");
    j = json_loadb(r.body, r.len, 0, NULL);
    char out_id[80];
    snprintf(out_id, sizeof out_id, "%s", json_string_value(json_object_get(j, "id")));
    assert_int_equal(json_integer_value(json_object_get(j, "position")), 1);
    json_decref(j);
    cgt_resp_free(&r);
    snprintf(path, sizeof path, "/calls/outbound/%s", out_id);
    admin(f, "GET", path, NULL, &r);
    must(f, r.status == 200 && strstr(r.body, "\"state\":\"waiting\"") != NULL, "status %s",
         r.body);
    cgt_resp_free(&r);

    /* The lease expires (nobody renews it): its slot goes to the
     * outbound call (sales is still at its max). */
    char o_sid[100];
    snprintf(o_sid, sizeof o_sid, "o:%s", out_id);
    uint64_t until = cgt_now_ms() + 15000;
    for (;;) {
        char *st = field(f, o_sid, "state");
        int ok = strcmp(st, "connected") == 0;
        free(st);
        if (ok)
            break;
        must(f, cgt_now_ms() < until, "outbound call not connected after the lease expired");
        cgt_sleep_ms(50);
    }
    char *m = cgt_redis_cmd(&f->rs, "ZSCORE " P "active s:%s", slot_id);
    assert_string_equal(m, "(nil)");
    free(m);
    assert_last_create(f, "asst-support", "pn-support", 0);
    char *body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    must(f, strstr(body, "\"number\":\"+15550109999\"") && strstr(body, "\"name\":\"Ada\""),
         "outbound body: %s", body);
    free(body);
    admin(f, "GET", path, NULL, &r);
    must(f, r.status == 200 && strstr(r.body, "\"state\":\"connected\""), "status %s", r.body);
    cgt_resp_free(&r);
    assert_int_equal(zcard(f, "active"), 3);

    /* Sales' call ends: its next caller takes the slot (never the other
     * route's); then the outbound call ends with Vapi's end. */
    vapi_end(f, v1);
    wait_state(f, s3, "connected");
    char *vo = field(f, o_sid, "vapi_id");
    vapi_end(f, vo);
    wait_state(f, o_sid, "ended");
    admin(f, "GET", path, NULL, &r);
    must(f, strstr(r.body, "\"endedReason\":\"customer-ended-call\""), "status %s", r.body);
    cgt_resp_free(&r);
    admin(f, "GET", "/calls/outbound/unknown-id", NULL, &r);
    assert_int_equal(r.status, 404);
    cgt_resp_free(&r);
    assert_true(zcard(f, "active") <= 3);
    free(v1);
    free(v2);
    free(vp);
    free(vo);
}

/* A lease released with DELETE frees its slot at once; released twice,
 * 404. */
static void test_slot_delete(void **state)
{
    struct fixture *f = *state;
    struct cgt_resp r;
    admin(f, "POST", "/slots", "{\"route\":\"sales\",\"ttlSeconds\":600}", &r);
    must(f, r.status == 201, "slot answered %ld", r.status);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    char path[160];
    snprintf(path, sizeof path, "/slots/%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    cgt_resp_free(&r);
    assert_int_equal(zcard(f, "active"), 1);
    /* Per route in /health and /metrics. */
    admin(f, "GET", "/health", NULL, &r);
    must(f,
         r.status == 200 && strstr(r.body, "\"routes\":[{\"name\":\"support\"") &&
             strstr(r.body, "{\"name\":\"sales\",\"waiting\":0,\"active\":1,\"min\":1,"
                            "\"cap\":2,\"priority\":2"),
         "health: %s", r.body);
    cgt_resp_free(&r);
    admin(f, "GET", "/metrics", NULL, &r);
    must(f,
         r.status == 200 && strstr(r.body, "callgate_route_active{route=\"sales\"} 1") &&
             strstr(r.body, "callgate_route_cap{route=\"support\"} 2") &&
             strstr(r.body, "callgate_route_events{event=\"slots\",route=\"sales\"} 1"),
         "metrics: %s", r.body);
    cgt_resp_free(&r);
    admin(f, "DELETE", path, NULL, &r);
    assert_int_equal(r.status, 204);
    cgt_resp_free(&r);
    assert_int_equal(zcard(f, "active"), 0);
    admin(f, "DELETE", path, NULL, &r);
    assert_int_equal(r.status, 404);
    cgt_resp_free(&r);
    /* Without the admin token: refused. */
    char url[160];
    snprintf(url, sizeof url, "%s/slots", f->base);
    const char *h[] = {"Content-Type: application/json", NULL};
    cgt_http("POST", url, h, "{\"route\":\"sales\"}", 17, &r);
    assert_int_equal(r.status, 401);
    cgt_resp_free(&r);
    assert_int_equal(zcard(f, "active"), 0);
}

/* A digest of the gate's state in Redis, less the occupancy samples the
 * board writes every second. */
static char *state_digest(struct fixture *f)
{
    return cgt_redis_cmd(&f->rs, "EVAL %s 0",
                         "local t = {} "
                         "for _, k in ipairs(redis.call('KEYS', 'cg:*')) do "
                         "  if not string.find(k, 'occupancy', 1, true) then "
                         "    t[#t + 1] = k .. redis.call('DUMP', k) "
                         "  end "
                         "end "
                         "table.sort(t) "
                         "return redis.sha1hex(table.concat(t, '|'))");
}

/* Hostile requests to the dialer API on a gate with routes, beyond those of
 * the main hostile table (tests/integration/test_hostile.c: credentials,
 * framing, methods, types, sizes, ids of the wrong shape, on a gate of one
 * route): bodies of the right types but wrong content and route names
 * this gate does not have. Each refused with its documented status,
 * nothing changed in Redis, nothing sent to Vapi. */
static void test_dialer_hostile(void **state)
{
    struct fixture *f = *state;
    const struct {
        const char *method, *path, *body;
        int auth; /* 0 none, 1 the token, 2 a wrong one */
        long want;
    } cases[] = {
        {"POST", "/slots", "[\"sales\"]", 1, 400},
        {"POST", "/slots", "{\"route\":\"sales\",\"extra\":1}", 1, 400},
        {"POST", "/slots", "{\"route\":\"Sales\"}", 1, 400},
        {"POST", "/slots", "{\"route\":\"billing\"}", 1, 400},
        {"POST", "/slots", "{\"route\":\"default\"}", 1, 400},
        {"POST", "/slots", "{\"route\":\"sales\",\"ttlSeconds\":0}", 1, 400},
        {"POST", "/slots", "{\"route\":\"sales\",\"ttlSeconds\":86401}", 1, 400},
        {"POST", "/calls/outbound", "{\"route\":\"sales\",\"number\":\"5550109999\"}", 1, 400},
        {"POST", "/calls/outbound",
         "{\"route\":\"sales\",\"number\":\"+15550109999\",\"variables\":[1]}", 1, 400},
        {"POST", "/calls/outbound",
         "{\"route\":\"nope\",\"number\":\"+15550109999\",\"variables\":{}}", 1, 400},
        {"POST", "/calls/outbound", "{\"route\":\"sales\",\"number\":\"+15550109999\",\"x\":1}", 1,
         400},
        {"POST", "/slots/abc/renew", "{\"route\":\"sales\"}", 1, 400},
        {"POST", "/slots/abc/other", NULL, 1, 404},
        {"DELETE", "/slots/abc/renew", NULL, 1, 404},
        {"GET", "/slots/abc", NULL, 1, 405},
        {"GET", "/calls/outbound/a.b", NULL, 1, 404},
        {"GET",
         "/calls/outbound/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         NULL, 1, 404},
    };
    int creates = cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE);
    char *before = state_digest(f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char url[512];
        snprintf(url, sizeof url, "%s%s", f->base, cases[i].path);
        const char *h[] = {"Content-Type: application/json",
                           cases[i].auth == 1   ? "Authorization: Bearer " ADMIN
                           : cases[i].auth == 2 ? "Authorization: Bearer " ADMIN "x"
                                                : NULL,
                           NULL};
        struct cgt_resp r;
        const char *body = cases[i].body;
        cgt_http(cases[i].method, url, h, body, body ? strlen(body) : 0, &r);
        must(f, r.status == cases[i].want, "case %zu (%s %s): %ld, not %ld: %s", i, cases[i].method,
             cases[i].path, r.status, cases[i].want, r.body ? r.body : "");
        must(f, r.body != NULL && r.body[0] == '{', "case %zu: not a JSON error", i);
        cgt_resp_free(&r);
        char *after = state_digest(f);
        must(f, strcmp(before, after) == 0, "case %zu (%s %s) changed the state", i,
             cases[i].method, cases[i].path);
        free(after);
    }
    free(before);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), creates);
}

/* Reconciliation per route: each route's Twilio queue found by its name,
 * and a caller Twilio holds there that the gate has no record of adopted
 * into the route of the number they dialled (the first route for a number
 * no route lists), then admitted. */
static void test_reconcile_per_route(void **state)
{
    struct fixture *f = *state;
    char a[40];
    new_sid(a);
    char members[512];
    cgt_fake_set_queues(f->fake,
                        "[{\"sid\":\"QU000000000000000000000000000000aa\",\"friendly_name\":"
                        "\"support\",\"current_size\":1},{\"sid\":"
                        "\"QU000000000000000000000000000000bb\",\"friendly_name\":\"sales\"}]");
    snprintf(members, sizeof members,
             "[{\"call_sid\":\"%s\",\"position\":1,\"queue_sid\":"
             "\"QU000000000000000000000000000000aa\",\"wait_time\":12}]",
             a);
    cgt_fake_set_queue_members(f->fake, members);
    must(f, cgt_fake_wait_count(f->fake, CGT_EP_TW_MEMBERS, 1, 15000) == 0,
         "no route's queue members read");
    wait_state(f, a, "connected");
    char *route = field(f, a, "route");
    assert_string_equal(route, "support");
    free(route);
    assert_last_create(f, "asst-support", "pn-support", 1);
}

/* Each route's Twilio queue is claimed for the gate: a second gate using
 * one of them refuses to run (exit 2, naming the queue). */
static void test_route_queues_claimed(void **state)
{
    struct fixture *f = *state;
    uint64_t until = cgt_now_ms() + SOON;
    for (;;) {
        char *a = cgt_redis_cmd(&f->rs, "GET cg:queue-claim:" ACCOUNT_SID ":support");
        char *b = cgt_redis_cmd(&f->rs, "GET cg:queue-claim:" ACCOUNT_SID ":sales");
        int ok = strcmp(a, P) == 0 && strcmp(b, P) == 0;
        free(a);
        free(b);
        if (ok)
            break;
        must(f, cgt_now_ms() < until, "the routes' queues are not claimed");
        cgt_sleep_ms(50);
    }
    char *other = cgt_redis_cmd(&f->rs, "EXISTS cg:queue-claim:" ACCOUNT_SID ":customer-support");
    assert_string_equal(other, "0");
    free(other);
    struct cgt_proc second;
    memset(&second, 0, sizeof second);
    spawn(f, &second, cg_free_port(), "GATE_NAME=another-line");
    int rc = cgt_wait_exit(&second, 15000);
    if (rc == -1)
        cgt_stop(&second, SIGKILL, 1000);
    char *log = cgt_proc_output(&second);
    must(f, rc == 2 && strstr(log, "already uses the Twilio queue s") != NULL,
         "a second gate on the routes' queues exited %d: %s", rc, log);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dialer_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_per_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_queues_claimed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
