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

#include "gate_kit.h"

#define ADMIN "routes-admin-token-1"

/* callgate with the routes (TWO_ROUTES) under a limit of 3, with one extra
 * setting (or NULL); wait: until it serves. */
static void start_routes_gate(struct fixture *f, int i, const char *extra, int wait)
{
    /* Each route has its own queue, assistant and phone number. */
    const char *const env[] = {"-TWILIO_QUEUE_SID",
                               "-TWILIO_QUEUE_NAME",
                               "-VAPI_PHONE_NUMBER_ID",
                               "-VAPI_ASSISTANT_ID",
                               "ADMIN_TOKEN=" ADMIN,
                               "MAX_CONCURRENCY=3",
                               "INSTANCE_ID=routes0",
                               "RECONCILE_INTERVAL_SECONDS=1",
                               f->routes_setting,
                               extra,
                               NULL};
    if (wait)
        start_gate(f, i, env);
    else
        spawn_gate(f, i, env);
}

static int setup_routes(void **state)
{
    setup(state);
    struct fixture *f = *state;
    routes_file(f, TWO_ROUTES);
    start_routes_gate(f, 0, NULL, 1);
    uint64_t until = cgt_now_ms() + 10000;
    for (;;) {
        char *pub_ok = cgt_redis_cmd(&f->rs, "HGET " P "routes sales");
        int done = strcmp(pub_ok, "1 2 2") == 0;
        free(pub_ok);
        if (done)
            break;
        must(f, cgt_now_ms() < until, "routes not published, or no repair");
        cgt_sleep_ms(10);
    }
    return 0;
}

/* ---- requests ---- */

static void admin(struct fixture *f, const char *method, const char *path, const char *body,
                  struct cgt_resp *r)
{
    char url[256];
    url_of(f, 0, path, url, sizeof url);
    const char *h[] = {"Authorization: Bearer " ADMIN, "Content-Type: application/json", NULL};
    cgt_http(method, url, h, body, body ? strlen(body) : 0, r);
}

/* Vapi's end-of-call report. */
static void vapi_ended(struct fixture *f, const char *vapi_id)
{
    free(vapi_end(f, 0, vapi_id, 1));
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
    incoming_call(f, 0, sid, CALLER, to, &r);
    must(f, r.status == 200, "/incoming answered %ld", r.status);
    cgt_resp_free(&r);
    wait_state(f, sid, "connected", LATER);
    return field_of(f, sid, "vapi_id");
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
    incoming_call(f, 0, s3, CALLER, SALES, &r);
    must(f, r.status == 200 && strstr(r.body, ">sales</Enqueue>") != NULL,
         "third sales caller not enqueued into sales: %s", r.body);
    cgt_resp_free(&r);
    new_sid(s4);
    incoming_call(f, 0, s4, CALLER, SALES, &r);
    cgt_resp_free(&r);
    /* A slot is free, and stays free: sales is at its max. */
    cgt_sleep_ms(500);
    wait_state(f, s3, "waiting", LATER);
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
    vapi_ended(f, vp);
    cgt_sleep_ms(300);
    wait_state(f, s3, "waiting", LATER);
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
        char *st = field_of(f, o_sid, "state");
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
    vapi_ended(f, v1);
    wait_state(f, s3, "connected", LATER);
    char *vo = field_of(f, o_sid, "vapi_id");
    vapi_ended(f, vo);
    wait_state(f, o_sid, "ended", LATER);
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
    url_of(f, 0, "/slots", url, sizeof url);
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
        url_of(f, 0, cases[i].path, url, sizeof url);
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
    wait_state(f, a, "connected", LATER);
    char *route = field_of(f, a, "route");
    assert_string_equal(route, "support");
    free(route);
    assert_last_create(f, "asst-support", "pn-support", 1);
}

/* Each route's Twilio queue is claimed for the gate: a second gate using
 * one of them refuses to run (exit 2, naming the queue). */
static void test_route_queues_claimed(void **state)
{
    struct fixture *f = *state;
    uint64_t until = cgt_now_ms() + LATER;
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
    start_routes_gate(f, 1, "GATE_NAME=another-line", 0);
    int rc = cgt_wait_exit(&f->g[1].proc, 15000);
    if (rc == -1)
        cgt_stop(&f->g[1].proc, SIGKILL, 1000);
    char *log = cgt_proc_output(&f->g[1].proc);
    must(f, rc == 2 && strstr(log, "already uses the Twilio queue s") != NULL,
         "a second gate on the routes' queues exited %d: %s", rc, log);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_routes, setup_routes, teardown_graceful),
        cmocka_unit_test_setup_teardown(test_slot_delete, setup_routes, teardown_graceful),
        cmocka_unit_test_setup_teardown(test_dialer_hostile, setup_routes, teardown_graceful),
        cmocka_unit_test_setup_teardown(test_reconcile_per_route, setup_routes, teardown_graceful),
        cmocka_unit_test_setup_teardown(test_route_queues_claimed, setup_routes, teardown_graceful),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
