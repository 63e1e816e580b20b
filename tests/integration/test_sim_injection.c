/*
 * Injection through every value callgate writes into TwiML or JSON: the
 * caller's number (From) on its way into Vapi's customer (as the number
 * when Vapi's pattern allows it, else as the name), the queue
 * name, the overflow message, PUBLIC_URL and HOLD_MUSIC_URL in attributes
 * and text, the hold announcement, /call-ended's answers, /health, the
 * label values of /metrics, and the log lines themselves.
 *
 * Real callgate processes configured with hostile values (quotes,
 * ampersands, angle brackets, "</Say><Dial>+1900</Dial>", CR LF, control
 * characters, U+FFFE) answer webhooks from callers whose numbers are
 * hostile too. Every TwiML document is parsed with the simulator's strict
 * parser (sim/twiml_reader.c)
 * and must hold exactly the expected verbs, whose text and attributes must
 * read back as exactly the configured values (less what TwiML cannot
 * carry: control characters and XML non-characters, as twiml.h documents).
 * Every JSON document is parsed with jansson and its strings must round
 * trip byte for byte.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../sim/twiml_reader.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "demo/proc.h"

#include "gate_kit.h"

/* Callers' numbers: each 3 to 40 bytes, so Vapi gets them as they are. */
static const char *const hostile_from[] = {
    "</Say><Dial>+1900</Dial>",
    "+1\",\"customer\":{\"number\":\"+1900\"}}",
    "\\\"\x01\x1f\x7f\r\n\t'&<>+1",
    "+1555\xe2\x98\x8e\xe2\x80\xa8\xe2\x80\xa9\xef\xbf\xbe",
};

/* A second connection to the fixture's Redis, for values no text reply
 * carries whole. */
static redisContext *rc;

/* callgate's defaults but for these. */
static const char *const injection_env[] = {"INSTANCE_ID=injection",
                                            "RECONCILE_INTERVAL_SECONDS=3600", "LEASE_SECONDS=3600",
                                            "SHUTDOWN_GRACE_MS=3000", NULL};

static int setup_injection(void **state)
{
    setup(state);
    struct fixture *f = *state;
    f->env = injection_env;
    f->callgate_defaults = 1;
    struct timeval tv = {.tv_sec = 5};
    rc = redisConnectWithTimeout("127.0.0.1", f->rs.port, tv);
    if (rc == NULL || rc->err)
        fail_msg("cannot connect to redis");
    return 0;
}

static int teardown_injection(void **state)
{
    redisFree(rc);
    rc = NULL;
    return teardown(state);
}

/* Every line callgate logged is a JSON object: no value broke a line. */
static void assert_log_lines_json(struct fixture *f)
{
    char *out = cgt_proc_output(&f->g[0].proc);
    char *line = out;
    int n = 0;
    while (line && *line) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 0) {
            json_error_t je;
            json_t *j = json_loadb(line, len, 0, &je);
            if (!json_is_object(j)) {
                fprintf(stderr, "not a JSON log line (%s): %.*s\n", je.text,
                        (int)(len > 500 ? 500 : len), line);
                free(out);
                fail_msg("a log line is not a JSON object");
            }
            json_decref(j);
            n++;
        }
        line = end ? end + 1 : NULL;
    }
    free(out);
    assert_true(n > 0);
}

/* Graceful stop (the sanitizer build fails the exit on a leak), and every
 * log line whole. */
static void stop_injection_gate(struct fixture *f)
{
    stop_gate(f, 0);
    assert_log_lines_json(f);
}

/* ---- requests ---- */

/* A caller from `from` (which is also the number dialled); NULL: a webhook
 * without From and To. */
static void arrive_from(struct fixture *f, const char *sid, const char *from, struct cgt_resp *r)
{
    if (from != NULL) {
        const char *kv[] = {"CallSid", sid,  "AccountSid", ACCOUNT_SID, "From",
                            from,      "To", from,         NULL};
        twilio_post(f, 0, "/incoming", kv, r);
    } else {
        const char *kv[] = {"CallSid", sid, "AccountSid", ACCOUNT_SID, NULL};
        twilio_post(f, 0, "/incoming", kv, r);
    }
    must(f, r->status == 200, "/incoming answered %ld: %s", r->status, r->body ? r->body : "");
}

static void post_queue_wait(struct fixture *f, const char *sid, struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid,         "AccountSid", ACCOUNT_SID, "QueueSid",
                        QUEUE_SID, "QueueTime", "2",          NULL};
    twilio_post(f, 0, "/queue-wait", kv, r);
    must(f, r->status == 200, "/queue-wait answered %ld", r->status);
}

static void post_queue_exit(struct fixture *f, const char *sid, const char *result,
                            struct cgt_resp *r)
{
    const char *kv[] = {"CallSid", sid, "AccountSid", ACCOUNT_SID, "QueueResult", result, NULL};
    twilio_post(f, 0, "/queue-exit", kv, r);
    must(f, r->status == 200, "/queue-exit answered %ld", r->status);
}

/* POSTs a Vapi message; returns the parsed answer (JSON object). */
static json_t *vapi_json(struct fixture *f, const char *body)
{
    struct cgt_resp r;
    vapi_post(f, 0, VAPI_SECRET, body, &r);
    must(f, r.status == 200, "/call-ended answered %ld: %s", r.status, r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    must(f,
         json_is_object(j) && json_is_true(json_object_get(j, "ok")) &&
             json_is_string(json_object_get(j, "result")),
         "/call-ended body: %s", r.body);
    cgt_resp_free(&r);
    return j;
}

/* Vapi's end of the call sid was connected to. */
static void vapi_end_of(struct fixture *f, const char *sid)
{
    char *id = vapi_id_of(f, sid);
    json_t *msg = json_pack("{s:{s:s,s:s,s:{s:s}}}", "message", "type", "end-of-call-report",
                            "endedReason", "customer-ended-call", "call", "id", id);
    char *body = json_dumps(msg, JSON_COMPACT);
    json_t *j = vapi_json(f, body);
    must(f, strcmp(json_string_value(json_object_get(j, "result")), "released") == 0,
         "end of %s: %s", sid, json_string_value(json_object_get(j, "result")));
    json_decref(j);
    free(body);
    json_decref(msg);
    free(id);
}

static char *call_field(const char *sid, const char *field, size_t *len)
{
    redisReply *r = redisCommand(rc, "HGET " P "call:%s %s", sid, field);
    if (r == NULL)
        fail_msg("redis: %s", rc->errstr);
    char *v = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        v = cg_strndup(r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    return v;
}

/* ---- TwiML ---- */

/* Parses a TwiML answer strictly; its verbs must be exactly want
 * ("Say,Hangup"). The caller frees *t. */
static void twiml_expect(struct fixture *f, const struct cgt_resp *r, const char *want,
                         struct sim_twiml *t)
{
    char *ct = cgt_resp_header(r, "Content-Type");
    must(f, ct != NULL && strncmp(ct, "text/xml", 8) == 0, "Content-Type %s", ct ? ct : "");
    free(ct);
    char err[256];
    must(f, sim_twiml_parse(r->body, r->len, t, err, sizeof err) == 0,
         "TwiML does not parse (%s): %s", err, r->body);
    char verbs[256] = "";
    for (size_t i = 0; i < t->n; i++) {
        size_t l = strlen(verbs);
        snprintf(verbs + l, sizeof verbs - l, "%s%s", i ? "," : "",
                 sim_twiml_kind_name(t->verbs[i].kind));
    }
    must(f, strcmp(verbs, want) == 0, "verbs [%s], wanted [%s]: %s", verbs, want, r->body);
}

/* What a configured text reads as once in TwiML: control characters but
 * tab, CR and LF dropped, U+FFFE and U+FFFF replaced with U+FFFD (twiml.h),
 * surrounding white space trimmed (the parser's reading of element text). */
static char *as_twiml_text(const char *s)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\t' && *p != '\r' && *p != '\n') || *p == 0x7f)
            continue;
        if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
            cg_buf_appends(&b, "\xef\xbf\xbd");
            p += 2;
            continue;
        }
        cg_buf_appendc(&b, (char)*p);
    }
    char *full = cg_buf_take(&b);
    const char *start = full;
    while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')
        start++;
    size_t n = strlen(start);
    while (n > 0 && strchr(" \t\r\n", start[n - 1]) != NULL)
        n--;
    char *out = cg_strndup(start, n);
    free(full);
    return out;
}

static void assert_say(struct fixture *f, const struct sim_twiml_verb *v, const char *configured)
{
    char *want = as_twiml_text(configured);
    must(f, v->kind == SIM_TW_SAY && strcmp(v->text, want) == 0, "Say reads \"%s\", wanted \"%s\"",
         v->text, want);
    free(want);
}

static void assert_enqueue_at(struct fixture *f, const struct cgt_resp *r, const char *queue_name,
                              int with_urls)
{
    struct sim_twiml t;
    twiml_expect(f, r, "Enqueue", &t);
    const struct sim_twiml_verb *v = &t.verbs[0];
    must(f, strcmp(v->text, queue_name) == 0, "queue name reads \"%s\"", v->text);
    if (with_urls) {
        char action[512], wait[512];
        snprintf(action, sizeof action, "%s/queue-exit", f->g[0].public);
        snprintf(wait, sizeof wait, "%s/queue-wait", f->g[0].public);
        must(f, v->action != NULL && strcmp(v->action, action) == 0, "action reads %s",
             v->action ? v->action : "(none)");
        must(f, v->wait_url != NULL && strcmp(v->wait_url, wait) == 0, "waitUrl reads %s",
             v->wait_url ? v->wait_url : "(none)");
    } else {
        /* PUBLIC_URL cannot be an attribute: no URLs, Twilio's defaults. */
        must(f, v->action == NULL && v->wait_url == NULL, "URLs from an unusable PUBLIC_URL: %s",
             r->body);
    }
    sim_twiml_free(&t);
}

/* ---- JSON ---- */

/* The body of the last POST /call: customer.number must be want_number
 * exactly, customer.name want_name (NULL: no name) byte for byte, and the
 * CallSid the caller's. A From that Vapi's pattern refuses goes as
 * "anonymous" with the From as the name, never as the number. */
static void assert_vapi_number(struct fixture *f, const char *sid, const char *want_number,
                               const char *want_name)
{
    char *body = cgt_fake_last_body(f->fake, CGT_EP_VAPI_CREATE);
    must(f, body != NULL, "no POST /call");
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    must(f, json_is_object(j), "POST /call body is not JSON (%s): %s", je.text, body);
    json_t *num = json_object_get(json_object_get(j, "customer"), "number");
    json_t *name = json_object_get(json_object_get(j, "customer"), "name");
    const char *csid = json_string_value(json_object_get(
        json_object_get(json_object_get(j, "assistantOverrides"), "metadata"), "twilioCallSid"));
    must(f, csid != NULL && strcmp(csid, sid) == 0, "POST /call for %s, wanted %s",
         csid ? csid : "(none)", sid);
    must(f,
         json_is_string(num) && json_string_length(num) == strlen(want_number) &&
             memcmp(json_string_value(num), want_number, strlen(want_number)) == 0,
         "customer.number is not %s for %s: %s", want_number, sid, body);
    if (want_name == NULL)
        must(f, name == NULL, "customer.name for %s: %s", sid, body);
    else
        must(f,
             json_is_string(name) && json_string_length(name) == strlen(want_name) &&
                 memcmp(json_string_value(name), want_name, strlen(want_name)) == 0,
             "customer.name does not round-trip for %s: %s", sid, body);
    /* Nothing else crept in at the top level or into customer. */
    must(f,
         json_object_size(j) == 5 &&
             json_object_size(json_object_get(j, "customer")) == (want_name ? 3u : 2u),
         "POST /call has extra members: %s", body);
    json_decref(j);
    free(body);
}

static void wait_creates(struct fixture *f, int n)
{
    must(f, cgt_fake_wait_count(f->fake, CGT_EP_VAPI_CREATE, n, LATER) == 0,
         "%d POST /call, wanted %d", cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE), n);
}

/* Unescapes a Prometheus label value starting after its opening quote;
 * returns the offset past the closing quote, or 0 if malformed. */
static size_t prom_label_value(const char *s, struct cg_buf *out)
{
    size_t i = 0;
    while (s[i] != '\0' && s[i] != '"') {
        if (s[i] == '\n')
            return 0;
        if (s[i] == '\\') {
            char e = s[i + 1];
            if (e == 'n')
                cg_buf_appendc(out, '\n');
            else if (e == '\\' || e == '"')
                cg_buf_appendc(out, e);
            else
                return 0;
            i += 2;
        } else {
            cg_buf_appendc(out, s[i++]);
        }
    }
    return s[i] == '"' ? i + 1 : 0;
}

/* A sample line of the text format: name, optional {k="v",...}, value.
 * Returns 1 when well-formed; label values are appended to values, each
 * followed by a NUL. */
static int prom_sample_ok(const char *line, struct cg_buf *values)
{
    size_t i = 0;
    while ((line[i] >= 'a' && line[i] <= 'z') || (line[i] >= 'A' && line[i] <= 'Z') ||
           line[i] == '_' || line[i] == ':' || (i > 0 && line[i] >= '0' && line[i] <= '9'))
        i++;
    if (i == 0)
        return 0;
    if (line[i] == '{') {
        i++;
        while (line[i] != '}') {
            size_t k = i;
            while ((line[i] >= 'a' && line[i] <= 'z') || (line[i] >= 'A' && line[i] <= 'Z') ||
                   line[i] == '_' || (i > k && line[i] >= '0' && line[i] <= '9'))
                i++;
            if (i == k || line[i] != '=' || line[i + 1] != '"')
                return 0;
            size_t used = prom_label_value(line + i + 2, values);
            if (used == 0)
                return 0;
            cg_buf_append(values, "", 1);
            i += 2 + used;
            if (line[i] == ',')
                i++;
            else if (line[i] != '}')
                return 0;
        }
        i++;
    }
    if (line[i] != ' ')
        return 0;
    const char *v = line + i + 1;
    if (strcmp(v, "+Inf") == 0 || strcmp(v, "-Inf") == 0 || strcmp(v, "NaN") == 0)
        return 1;
    char *end;
    strtod(v, &end);
    return end != v && *end == '\0';
}

/* ---- the tests ---- */

/* Queue path (no fast path): hostile PUBLIC_URL path, queue name, hold
 * music URL and overflow message; hostile callers admitted one by one. */
static void test_queue_path(void **state)
{
    struct fixture *f = *state;
    const char *queue_name = "Q\"1\"&<2>'x'</Enqueue><Dial>+1900</Dial>";
    const char *hold = "http://127.0.0.1:9/hold.mp3?a=1&b='2'&c=%22";
    const char *message = "Sorry </Say><Dial>+1900</Dial><Say> \"full\" & 'closed' <now>\r\n"
                          "\tbye \x01\x7f\xe2\x98\x8e \xef\xbf\xbe!";
    char qn[128], hm[128], om[256];
    snprintf(qn, sizeof qn, "TWILIO_QUEUE_NAME=%s", queue_name);
    snprintf(hm, sizeof hm, "HOLD_MUSIC_URL=%s", hold);
    snprintf(om, sizeof om, "OVERFLOW_MESSAGE=%s", message);
    start_gate_at(f, 0, "/cg&x='y'",
                  (const char *const[]){qn, hm, om, "FAST_PATH_DEADLINE_MS=0", "MAX_CONCURRENCY=1",
                                        "MAX_QUEUE_SIZE=2", "OVERFLOW_ACTION=message",
                                        "ANNOUNCE_INTERVAL_SECONDS=5", NULL});

    /* Three hostile callers: the first is admitted, two wait. */
    char sid[3][40];
    struct cgt_resp r;
    for (int i = 0; i < 3; i++) {
        new_sid(sid[i]);
        arrive_from(f, sid[i], hostile_from[i], &r);
        assert_enqueue_at(f, &r, queue_name, 1);
        cgt_resp_free(&r);
        if (i == 0) {
            wait_creates(f, 1);
            assert_vapi_number(f, sid[0], "anonymous", hostile_from[0]);
            wait_state(f, sid[0], "connected", LATER);
        }
    }
    /* The number is kept as it came, byte for byte. */
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        char *from = call_field(sid[i], "from", &n);
        must(f,
             from != NULL && n == strlen(hostile_from[i]) && memcmp(from, hostile_from[i], n) == 0,
             "from of caller %d does not round-trip", i);
        free(from);
    }

    /* The hold answer: the announcement, then the hold music URL as is. */
    post_queue_wait(f, sid[1], &r);
    struct sim_twiml t;
    twiml_expect(f, &r, "Say,Play", &t);
    must(f,
         strncmp(t.verbs[0].text, "You are ", 8) == 0 &&
             strstr(t.verbs[0].text, "Your estimated wait time is ") != NULL,
         "announcement: %s", t.verbs[0].text);
    must(f, strcmp(t.verbs[1].text, hold) == 0, "Play reads %s", t.verbs[1].text);
    sim_twiml_free(&t);
    cgt_resp_free(&r);

    /* A fourth caller finds the queue full: the message, then hang up. */
    char full[40];
    new_sid(full);
    arrive_from(f, full, "</Say><Redirect>http://evil/</Redirect>", &r);
    twiml_expect(f, &r, "Say,Hangup", &t);
    assert_say(f, &t.verbs[0], message);
    sim_twiml_free(&t);
    cgt_resp_free(&r);
    /* And so does a caller the queue gives up on (the Enqueue action). */
    post_queue_exit(f, sid[2], "leave", &r);
    twiml_expect(f, &r, "Say,Hangup", &t);
    assert_say(f, &t.verbs[0], message);
    sim_twiml_free(&t);
    cgt_resp_free(&r);
    /* Unknown results are acknowledged with an empty document. */
    post_queue_exit(f, sid[2], "</Say><Dial>+1900</Dial>", &r);
    twiml_expect(f, &r, "", &t);
    sim_twiml_free(&t);
    cgt_resp_free(&r);

    /* Each release admits the next hostile caller: their numbers reach
     * Vapi intact. */
    vapi_end_of(f, sid[0]);
    wait_creates(f, 2);
    assert_vapi_number(f, sid[1], "anonymous", hostile_from[1]);
    wait_state(f, sid[1], "connected", LATER);
    vapi_end_of(f, sid[1]);
    wait_creates(f, 3);
    assert_vapi_number(f, sid[2], "anonymous", hostile_from[2]);
    wait_state(f, sid[2], "connected", LATER);
    stop_injection_gate(f);
}

/* Fast path: numbers Vapi would refuse become "anonymous"; a PUBLIC_URL
 * and a hold music URL that cannot be attributes are left out, never
 * written half-escaped; the voicemail action without a recording URL falls
 * back to the message. */
static void test_fast_path(void **state)
{
    struct fixture *f = *state;
    const char *queue_name = "名前 & <queue> \"☎\"";
    const char *message = "</Say><Record action=\"http://evil/\"/><Say>";
    char qn[128], om[128];
    snprintf(qn, sizeof qn, "TWILIO_QUEUE_NAME=%s", queue_name);
    snprintf(om, sizeof om, "OVERFLOW_MESSAGE=%s", message);
    start_gate_at(f, 0, "/p\"q<r>",
                  (const char *const[]){qn, om, "HOLD_MUSIC_URL=http://127.0.0.1:9/h.mp3?x=\"<y>\"",
                                        "MAX_CONCURRENCY=4", "MAX_QUEUE_SIZE=1",
                                        "OVERFLOW_ACTION=voicemail", "ANNOUNCE_INTERVAL_SECONDS=5",
                                        NULL});
    struct {
        const char *from; /* NULL: no From at all */
        const char *vapi_gets;
        const char *name; /* customer.name, NULL: none */
    } callers[] = {
        {hostile_from[3], "anonymous", hostile_from[3]},
        /* 42 bytes: the name is the first 40. */
        {"+12345678901234567890123456789012345678901", "anonymous",
         "+123456789012345678901234567890123456789"},
        {"+1", "anonymous", "+1"},
        {NULL, "anonymous", NULL},
    };
    struct cgt_resp r;
    struct sim_twiml t;
    for (size_t i = 0; i < sizeof callers / sizeof callers[0]; i++) {
        char sid[40];
        new_sid(sid);
        arrive_from(f, sid, callers[i].from, &r);
        /* The fast path answers with Vapi's TwiML, passed through. */
        twiml_expect(f, &r, "Connect", &t);
        sim_twiml_free(&t);
        cgt_resp_free(&r);
        wait_creates(f, (int)i + 1);
        assert_vapi_number(f, sid, callers[i].vapi_gets, callers[i].name);
    }
    /* The gate is full: the next caller waits, the one after overflows. */
    char waiting[40], over[40];
    new_sid(waiting);
    new_sid(over);
    arrive_from(f, waiting, "</Enqueue>", &r);
    assert_enqueue_at(f, &r, queue_name, 0);
    cgt_resp_free(&r);
    post_queue_wait(f, waiting, &r);
    twiml_expect(f, &r, "Say,Pause", &t);
    sim_twiml_free(&t);
    cgt_resp_free(&r);
    arrive_from(f, over, "+15550001111", &r);
    twiml_expect(f, &r, "Say,Hangup", &t);
    assert_say(f, &t.verbs[0], message);
    sim_twiml_free(&t);
    cgt_resp_free(&r);
    stop_injection_gate(f);
}

/* The dial action: the message is text, the number is the configured one. */
static void test_overflow_dial(void **state)
{
    struct fixture *f = *state;
    const char *message = "</Say><Dial>+1900</Dial><Say>&amp;&#x3C;";
    char om[128];
    snprintf(om, sizeof om, "OVERFLOW_MESSAGE=%s", message);
    start_gate_at(f, 0, "",
                  (const char *const[]){om, "OVERFLOW_ACTION=dial",
                                        "OVERFLOW_DIAL_NUMBER=+15559876543", "MAX_CONCURRENCY=1",
                                        "MAX_QUEUE_SIZE=1", "FAST_PATH_DEADLINE_MS=0", NULL});
    char a[40], b[40], c[40];
    new_sid(a);
    new_sid(b);
    new_sid(c);
    struct cgt_resp r;
    arrive_from(f, a, "+15550000001", &r);
    cgt_resp_free(&r);
    wait_state(f, a, "connected", LATER);
    arrive_from(f, b, "+15550000002", &r);
    cgt_resp_free(&r);
    arrive_from(f, c, "</Say><Dial>+1900</Dial>", &r);
    struct sim_twiml t;
    twiml_expect(f, &r, "Say,Dial", &t);
    assert_say(f, &t.verbs[0], message);
    must(f, strcmp(t.verbs[1].text, "+15559876543") == 0, "Dial reads %s", t.verbs[1].text);
    sim_twiml_free(&t);
    cgt_resp_free(&r);
    stop_injection_gate(f);
}

/* JSON answers: /call-ended with hostile ids and reasons, /health, and
 * /metrics label values from a hostile counter name. */
static void test_json_answers(void **state)
{
    struct fixture *f = *state;
    start_gate_at(f, 0, "", (const char *const[]){"MAX_CONCURRENCY=2", NULL});
    static const char *const ids[] = {
        "</Say><Dial>+1900</Dial>",
        "\"},\"result\":\"released",
        "\\u0022\\\\\r\n\t'&<>",
        "\xe2\x80\xa8\xef\xbf\xbe",
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        json_t *msg =
            json_pack("{s:{s:s,s:s,s:s,s:{s:s}}}", "message", "type", "end-of-call-report",
                      "endedReason", ids[i], "status", ids[i], "call", "id", ids[i]);
        char *body = json_dumps(msg, JSON_COMPACT);
        json_t *j = vapi_json(f, body);
        must(f,
             strcmp(json_string_value(json_object_get(j, "result")), "unknown") == 0 &&
                 json_object_size(j) == 2,
             "/call-ended for a hostile id: %s", json_dumps(j, 0));
        json_decref(j);
        free(body);
        json_decref(msg);
        /* An unknown message type is acknowledged, whatever it says. */
        msg = json_pack("{s:{s:s,s:{s:s}}}", "message", "type", ids[i], "call", "id", ids[i]);
        body = json_dumps(msg, JSON_COMPACT);
        j = vapi_json(f, body);
        must(f, strcmp(json_string_value(json_object_get(j, "result")), "ignored") == 0,
             "/call-ended for a hostile type");
        json_decref(j);
        free(body);
        json_decref(msg);
    }

    /* /health: numbers where numbers belong. */
    char url[256];
    snprintf(url, sizeof url, "%s/health", f->g[0].base);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    json_t *h = json_loadb(r.body, r.len, 0, NULL);
    must(f,
         json_is_object(h) && json_is_integer(json_object_get(h, "activeCalls")) &&
             json_is_integer(json_object_get(h, "callsInQueue")) &&
             strcmp(json_string_value(json_object_get(h, "redis")), "connected") == 0,
         "/health: %s", r.body);
    json_decref(h);
    cgt_resp_free(&r);

    /* A counter name that would break the exposition format if written as
     * is (the gate's counters live in a shared Redis hash). */
    const char *field = "x\"} 1\nevil_metric{a=\"b\\\\c\"} 2\r=,\xc3\xa9";
    redisReply *rr = redisCommand(rc, "HINCRBY " P "stats %s 7", field);
    assert_non_null(rr);
    freeReplyObject(rr);
    snprintf(url, sizeof url, "%s/metrics", f->g[0].base);
    cgt_http("GET", url, NULL, NULL, 0, &r);
    must(f, r.status == 200, "/metrics answered %ld", r.status);
    int found = 0, samples = 0;
    char *line = r.body;
    while (line && *line) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (line[0] != '#' && line[0] != '\0') {
            struct cg_buf values;
            cg_buf_init(&values, CG_BUF_UNBOUNDED);
            must(f, prom_sample_ok(line, &values), "malformed /metrics line: %s", line);
            samples++;
            must(f, strncmp(line, "evil_metric", 11) != 0, "a label value added a sample");
            if (strncmp(line, "callgate_gate_events{", 21) == 0 && values.len > 0 &&
                strcmp(values.data, field) == 0) {
                found = 1;
                must(f, strcmp(line + strlen(line) - 2, " 7") == 0, "value of %s", line);
            }
            cg_buf_free(&values);
        }
        line = end ? end + 1 : NULL;
    }
    cgt_resp_free(&r);
    must(f, samples > 10 && found, "the hostile counter is not in /metrics as it is named");
    stop_injection_gate(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_path, setup_injection, teardown_injection),
        cmocka_unit_test_setup_teardown(test_fast_path, setup_injection, teardown_injection),
        cmocka_unit_test_setup_teardown(test_overflow_dial, setup_injection, teardown_injection),
        cmocka_unit_test_setup_teardown(test_json_answers, setup_injection, teardown_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
