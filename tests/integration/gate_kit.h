/*
 * gate_kit.h - what the gate's integration tests share (test_gate.c,
 * test_gate_callback.c): the fixture (a private redis-server, the Twilio
 * and Vapi fakes, two callgate instances), starting and stopping callgate,
 * signed Twilio and Vapi requests, and reads of the gate's Redis state.
 * Included once per test file: every helper is static, and those a file
 * does not use are no warning (KIT_FN). GATE_KIT_SID_FORMAT may be defined
 * before the include to give a file's CallSids a prefix of its own.
 */
#ifndef CG_TEST_GATE_KIT_H
#define CG_TEST_GATE_KIT_H

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

static KIT_FN int setup(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
    *state = f;
    return 0;
}

static KIT_FN int teardown(void **state)
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
static KIT_FN void spawn_gate(struct fixture *f, int i, const char *const *extra)
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

static KIT_FN void start_gate(struct fixture *f, int i, const char *const *extra)
{
    spawn_gate(f, i, extra);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->g[i].base);
    must(f, cgt_wait_status(url, 200, 15000) == 0, "callgate %d did not become healthy", i);
    /* Admission waits for the first repair of the slots from Vapi's live
     * calls (a fresh Redis has no marker); the tests expect it done. */
    must(f, cgt_redis_wait_key(&f->rs, P "intact", 10000) == 0, "the first repair never ended");
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

/* POSTs a form signed as Twilio signs it; kv is name, value, ..., NULL.
 * sign_kv, when not NULL, is what the signature covers instead. */
static KIT_FN void twilio_post_as(struct fixture *f, int i, const char *path, const char *const *kv,
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

static KIT_FN void twilio_post(struct fixture *f, int i, const char *path, const char *const *kv,
                               struct cgt_resp *r)
{
    twilio_post_as(f, i, path, kv, NULL, r);
}

static KIT_FN void incoming(struct fixture *f, int i, const char *sid, struct cgt_resp *r)
{
    const char *kv[] = {
        "CallSid",      sid,          "AccountSid", ACCOUNT_SID, "From",    CALLER, "To",
        "+15550002222", "CallStatus", "ringing",    "Direction", "inbound", NULL};
    twilio_post(f, i, "/incoming", kv, r);
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

/* Sends Vapi's end of a call (status-update "ended", or the end-of-call
 * report) and returns the gate's "result" (malloc'd). */
static KIT_FN char *vapi_end(struct fixture *f, int i, const char *vapi_id, int report)
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

static KIT_FN json_t *resp_json(const struct cgt_resp *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (j == NULL)
        fail_msg("not JSON (status %ld): %s", r->status, r->body ? r->body : "");
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
 * (instances, instances_min, inst:<id>), which every running instance
 * keeps up to date whatever requests it gets. malloc'd. */
#define GATE_KIT_KEYS_LUA                                                                          \
    "local o = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "                             \
    "if not string.find(k, ':inst', 1, true) then o[#o + 1] = k end end "                          \
    "table.sort(o) return o"
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

#endif
