/*
 * Unit tests for twilio_api.c against a scripted loopback evhttp server on
 * the test's own event_base. The server records every request and answers
 * the next scripted response, with bodies taken from twilio-wire.md.
 */
#include "base/fmacros.h"

#include "fakescript.h"
#include "fakesrv.h"
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "base/alloc.h"
#include "base/form.h"
#include "net/httpc.h"
#include "base/log.h"
#include "twilio/api.h"

#define AC    "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TOKEN "tok_9f8e7d6c5b4a"
#define CA1   "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CA2   "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CA3   "CAcccccccccccccccccccccccccccccccc"
#define CA4   "CAdddddddddddddddddddddddddddddddd"
#define CA5   "CAeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
#define QU    "QUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define QU2   "QUbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ACCT  "/2010-04-01/Accounts/" AC

/* ---- wire bodies (twilio-wire.md §2, §8) ---- */

#define BODY_21220                                                                                 \
    "{\"code\":21220,\"message\":\"Call is not in-progress. Cannot redirect.\",\"more_info\":"     \
    "\"https://www.twilio.com/docs/errors/21220\",\"status\":400}"
#define BODY_20404                                                                                 \
    "{\"code\": 20404, \"message\": \"The requested resource /2010-04-01/Accounts/" AC             \
    "/Calls/" CA1 ".json was not found\", \"more_info\": "                                         \
    "\"https://www.twilio.com/docs/errors/20404\", \"status\": 404}"
#define BODY_401                                                                                   \
    "{\"code\":20003,\"detail\":\"Your AccountSid or AuthToken was incorrect.\",\"message\":"      \
    "\"Authenticate\",\"more_info\":\"https://www.twilio.com/docs/errors/20003\",\"status\":401}"
#define BODY_429                                                                                   \
    "{\"code\":20429,\"message\":\"Too Many Requests\",\"more_info\":"                             \
    "\"https://www.twilio.com/docs/errors/20429\",\"status\":429}"
#define BODY_CALL                                                                                  \
    "{\"account_sid\":\"" AC "\",\"sid\":\"" CA1 "\",\"from\":\"+15551234567\",\"to\":"            \
    "\"+15557654321\",\"status\":\"in-progress\",\"direction\":\"inbound\",\"duration\":null,"     \
    "\"price\":null,\"queue_time\":\"0\",\"uri\":\"" ACCT "/Calls/" CA1 ".json\"}"

/* ---- helpers ---- */

/* ---- fixture and result capture ---- */

struct fx {
    struct event_base *base;
    struct cgt_script srv;
    struct cg_httpc *httpc;
    struct cg_twilio *tw;
};

struct got {
    int calls;
    enum cg_twilio_outcome outcome;
    long http_status;
    int code;
    char *message;
    int attempts;
    char *call_status, *from, *to;
    struct cg_twilio_member *members;
    size_t nmembers;
    char *queue_sid;
    char *call_sid;
    /* Re-entrancy tests: free this client from inside the callback. */
    struct cg_twilio **free_me;
};

static void on_result(const struct cg_twilio_result *res, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->outcome = res->outcome;
    g->http_status = res->http_status;
    g->code = res->code;
    free(g->message);
    g->message = cgt_strdup_or_null(res->message);
    g->attempts = res->attempts;
    g->call_status = cgt_strdup_or_null(res->call_status);
    g->from = cgt_strdup_or_null(res->from);
    g->to = cgt_strdup_or_null(res->to);
    g->nmembers = res->nmembers;
    if (res->nmembers > 0) {
        g->members = cg_malloc(res->nmembers * sizeof *g->members);
        memcpy(g->members, res->members, res->nmembers * sizeof *g->members);
    }
    g->queue_sid = cgt_strdup_or_null(res->queue_sid);
    g->call_sid = cgt_strdup_or_null(res->call_sid);
    if (g->free_me != NULL) {
        cg_twilio_free(*g->free_me);
        *g->free_me = NULL;
    }
}

static void got_free(struct got *g)
{
    free(g->message);
    free(g->call_status);
    free(g->from);
    free(g->to);
    free(g->members);
    free(g->queue_sid);
    free(g->call_sid);
    memset(g, 0, sizeof *g);
}

static struct cg_twilio *new_client(struct fx *f, const char *base_url, int max_retries)
{
    struct cg_twilio_opts o = {.base_url = base_url,
                               .account_sid = AC,
                               .auth_token = TOKEN,
                               .timeout_ms = 2000,
                               .max_retries = max_retries};
    struct cg_twilio *t = cg_twilio_new(f->base, f->httpc, &o);
    assert_non_null(t);
    return t;
}

static int setup(void **state)
{
    struct fx *f = cg_calloc(1, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    cgt_script_start(&f->srv, f->base, "twilio", "{\"message\":\"unscripted\"}");
    f->httpc = cg_httpc_new(f->base, NULL);
    assert_non_null(f->httpc);
    f->tw = new_client(f, f->srv.base_url, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cg_twilio_free(f->tw);
    cg_httpc_free(f->httpc);
    cgt_script_stop(&f->srv);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void assert_basic_auth(const char *header)
{
    char *want = cgt_srv_basic(AC, TOKEN);
    assert_non_null(header);
    assert_string_equal(header, want);
    free(want);
}

/* ---- calls ---- */

static void test_update_ok(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200, BODY_CALL);
    const char *twiml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect>"
                        "<Stream url=\"wss://sim.local/6f1c/transport?a=1&b=2\"/></Connect>"
                        "</Response>";
    struct got g = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, twiml, on_result, &g), 0);
    assert_int_equal(g.calls, 0); /* never synchronous */
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.http_status, 200);
    assert_int_equal(g.attempts, 1);
    assert_int_equal(g.code, 0);

    assert_int_equal(f->srv.nseen, 1);
    struct cgt_seen *w = &f->srv.seen[0];
    assert_string_equal(w->method, "POST");
    assert_string_equal(w->path, ACCT "/Calls/" CA1 ".json");
    assert_basic_auth(w->authorization);
    assert_string_equal(w->accept, "application/json");
    assert_string_equal(w->content_type, "application/x-www-form-urlencoded");
    struct cg_form form;
    cg_form_init(&form);
    assert_int_equal(cg_form_parse(&form, w->body, strlen(w->body), NULL), 0);
    assert_int_equal(form.n, 1);
    assert_string_equal(cg_form_get(&form, "Twiml"), twiml);
    cg_form_free(&form);
    got_free(&g);
}

#define BODY_CREATED                                                                               \
    "{\"account_sid\":\"" AC "\",\"sid\":\"" CA2 "\",\"from\":\"+15557654321\",\"to\":"            \
    "\"+15551234567\",\"status\":\"queued\",\"direction\":\"outbound-api\",\"uri\":\"" ACCT        \
    "/Calls/" CA2 ".json\"}"

static int closed_port(void);

static const struct cg_twilio_new_call new_call = {
    .to = "+15551234567",
    .from = "+15557654321",
    .url = "https://gate.example.com/callback-answer?sid=" CA1 "&attempt=2",
    .status_callback = "https://gate.example.com/callback-status?sid=" CA1 "&attempt=2",
    .timeout_s = 25,
    .machine_detection = 1,
};

static void test_create_call(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 201, BODY_CREATED);
    struct got g = {0};
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, on_result, &g), 0);
    assert_int_equal(g.calls, 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.http_status, 201);
    assert_string_equal(g.call_sid, CA2);
    assert_string_equal(g.call_status, "queued");
    assert_int_equal(f->srv.nseen, 1);
    struct cgt_seen *w = &f->srv.seen[0];
    assert_string_equal(w->method, "POST");
    assert_string_equal(w->path, ACCT "/Calls.json");
    assert_basic_auth(w->authorization);
    struct cg_form form;
    cg_form_init(&form);
    assert_int_equal(cg_form_parse(&form, w->body, strlen(w->body), NULL), 0);
    assert_int_equal(form.n, 9);
    assert_string_equal(cg_form_get(&form, "To"), "+15551234567");
    assert_string_equal(cg_form_get(&form, "From"), "+15557654321");
    assert_string_equal(cg_form_get(&form, "Url"), new_call.url);
    assert_string_equal(cg_form_get(&form, "Method"), "POST");
    assert_string_equal(cg_form_get(&form, "Timeout"), "25");
    assert_string_equal(cg_form_get(&form, "MachineDetection"), "Enable");
    assert_string_equal(cg_form_get(&form, "StatusCallback"), new_call.status_callback);
    assert_string_equal(cg_form_get(&form, "StatusCallbackMethod"), "POST");
    assert_string_equal(cg_form_get(&form, "StatusCallbackEvent"), "completed");
    cg_form_free(&form);
    got_free(&g);

    /* Without detection or status callback; the ring time clamped. */
    struct cg_twilio_new_call c = new_call;
    c.machine_detection = 0;
    c.status_callback = NULL;
    c.timeout_s = 1;
    cgt_script(&f->srv, 201, BODY_CREATED);
    assert_int_equal(cg_twilio_create_call(f->tw, &c, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    cg_form_init(&form);
    w = &f->srv.seen[1];
    assert_int_equal(cg_form_parse(&form, w->body, strlen(w->body), NULL), 0);
    assert_int_equal(form.n, 5);
    assert_string_equal(cg_form_get(&form, "Timeout"), "5");
    assert_null(cg_form_get(&form, "MachineDetection"));
    cg_form_free(&form);
    got_free(&g);
}

/* Never sent twice when Twilio may have placed the call. */
static void test_create_call_no_double_dial(void **state)
{
    struct fx *f = *state;
    /* 5xx: Twilio may have acted. */
    cgt_script(&f->srv, 503, "Service Unavailable");
    cgt_script(&f->srv, 201, BODY_CREATED);
    struct got g = {0};
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_RETRY);
    assert_int_equal(g.http_status, 503);
    assert_int_equal(g.attempts, 1);
    assert_null(g.call_sid);
    got_free(&g);
    /* (The scripted 201 is still unanswered: consume it.) */
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    got_free(&g);

    /* 429 is never processed: retried. */
    cgt_script(&f->srv, 429, BODY_429);
    cgt_script(&f->srv, 201, BODY_CREATED);
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.attempts, 2);
    got_free(&g);

    /* A 2xx without a call SID: nothing to follow. */
    cgt_script(&f->srv, 201, "{\"status\":\"queued\"}");
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_FATAL);
    got_free(&g);

    /* A refused number: FATAL with Twilio's code, not retried. */
    cgt_script(&f->srv, 400,
               "{\"code\":21211,\"message\":\"The 'To' number is not a valid phone number.\","
               "\"status\":400}");
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_FATAL);
    assert_int_equal(g.code, 21211);
    assert_int_equal(g.attempts, 1);
    got_free(&g);
    assert_int_equal(f->srv.nseen, 6);

    /* A transport failure: the request may have arrived. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port());
    cg_twilio_free(f->tw);
    f->tw = new_client(f, url, 0);
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_RETRY);
    assert_int_equal(g.attempts, 1);
    got_free(&g);

    /* Bad input is never sent. */
    struct cg_twilio_new_call c = new_call;
    c.to = "";
    assert_int_equal(cg_twilio_create_call(f->tw, &c, on_result, &g), -1);
    c = new_call;
    c.from = NULL;
    assert_int_equal(cg_twilio_create_call(f->tw, &c, on_result, &g), -1);
    c = new_call;
    c.url = "ftp://gate.example.com/a";
    assert_int_equal(cg_twilio_create_call(f->tw, &c, on_result, &g), -1);
    c = new_call;
    c.status_callback = "javascript:1";
    assert_int_equal(cg_twilio_create_call(f->tw, &c, on_result, &g), -1);
    assert_int_equal(cg_twilio_create_call(f->tw, NULL, on_result, &g), -1);
    assert_int_equal(cg_twilio_create_call(f->tw, &new_call, NULL, &g), -1);
    assert_int_equal(g.calls, 0);
}

static void test_21220_gone(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 400, BODY_21220);
    struct got g = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_GONE);
    assert_int_equal(g.http_status, 400);
    assert_int_equal(g.code, 21220);
    assert_string_equal(g.message, "Call is not in-progress. Cannot redirect.");
    assert_int_equal(g.attempts, 1);
    assert_int_equal(f->srv.nseen, 1);
    got_free(&g);
}

static void test_20404_gone(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 404, BODY_20404);
    struct got g = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_GONE);
    assert_int_equal(g.http_status, 404);
    assert_int_equal(g.code, 20404);
    assert_non_null(strstr(g.message, "was not found"));
    got_free(&g);
}

static void test_401_fatal_no_retry(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 401, BODY_401);
    cgt_script(&f->srv, 200, BODY_CALL);
    /* The token must not reach the log, even at debug level. */
    FILE *logf = tmpfile();
    assert_non_null(logf);
    cg_log_set_stream(logf);
    cg_log_set_level(CG_LOG_DEBUG);
    struct got g = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    cgt_run_for(f->base, 300);
    cg_log_set_level(CG_LOG_ERROR);
    cg_log_set_stream(NULL);
    assert_int_equal(g.outcome, CG_TW_FATAL);
    assert_int_equal(g.http_status, 401);
    assert_int_equal(g.code, 20003);
    assert_string_equal(g.message, "Authenticate");
    assert_int_equal(g.attempts, 1);
    assert_int_equal(f->srv.nseen, 1);

    char logbuf[8192];
    rewind(logf);
    size_t n = fread(logbuf, 1, sizeof logbuf - 1, logf);
    logbuf[n] = '\0';
    fclose(logf);
    assert_non_null(strstr(logbuf, "twilio request failed"));
    assert_null(strstr(logbuf, TOKEN));
    got_free(&g);
}

static void test_other_4xx_fatal(void **state)
{
    struct fx *f = *state;
    /* Non-JSON error bodies are tolerated. */
    cgt_script(&f->srv, 400, "<html>Bad Request</html>");
    struct got g = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_FATAL);
    assert_int_equal(g.code, 0);
    assert_non_null(g.message);
    got_free(&g);
}

static void test_429_then_ok(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 429, BODY_429);
    cgt_script(&f->srv, 200, BODY_CALL);
    struct got g = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.attempts, 2);
    assert_int_equal(f->srv.nseen, 2);
    /* The retry is the same request. */
    assert_string_equal(f->srv.seen[0].body, f->srv.seen[1].body);
    assert_string_equal(f->srv.seen[1].path, ACCT "/Calls/" CA1 ".json");
    got_free(&g);
}

static void test_503_exhausts(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 5; i++)
        cgt_script(&f->srv, 503, "Service Unavailable");
    struct got g = {0};
    uint64_t t0 = cgt_now_ms();
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 10000);
    /* Full jitter: at most 100 + 200 + 400 ms of waiting. */
    assert_true(cgt_now_ms() - t0 < 3000);
    assert_int_equal(g.outcome, CG_TW_RETRY);
    assert_int_equal(g.http_status, 503);
    assert_int_equal(g.attempts, 4);
    assert_int_equal(f->srv.nseen, 4);
    got_free(&g);
}

static void test_max_retries_configurable(void **state)
{
    struct fx *f = *state;
    cg_twilio_free(f->tw);
    f->tw = new_client(f, f->srv.base_url, -1);
    cgt_script(&f->srv, 500, "{}");
    cgt_script(&f->srv, 200, BODY_CALL);
    struct got g = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_RETRY);
    assert_int_equal(g.attempts, 1);
    got_free(&g);

    cg_twilio_free(f->tw);
    f->tw = new_client(f, f->srv.base_url, 1);
    f->srv.nsteps = f->srv.next = 0;
    cgt_script(&f->srv, 502, "{}");
    cgt_script(&f->srv, 502, "{}");
    cgt_script(&f->srv, 200, BODY_CALL);
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_RETRY);
    assert_int_equal(g.attempts, 2);
    got_free(&g);
}

static void test_retry_after_honoured(void **state)
{
    struct fx *f = *state;
    cgt_script_step(&f->srv,
                    (struct cgt_step){.status = 429, .body = BODY_429, .retry_after = "1"});
    cgt_script(&f->srv, 200, BODY_CALL);
    struct got g = {0};
    uint64_t t0 = cgt_now_ms();
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    uint64_t elapsed = cgt_now_ms() - t0;
    assert_true(elapsed >= 900);
    assert_true(elapsed < 3000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.attempts, 2);
    got_free(&g);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void test_transport_error_retry(void **state)
{
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port());
    cg_twilio_free(f->tw);
    f->tw = new_client(f, url, 0);
    struct got g = {0};
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA1, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 10000);
    assert_int_equal(g.outcome, CG_TW_RETRY);
    assert_int_equal(g.http_status, 0);
    assert_int_equal(g.attempts, 4);
    assert_non_null(g.message);
    got_free(&g);
}

static void test_timeout_retry(void **state)
{
    struct fx *f = *state;
    cg_twilio_free(f->tw);
    struct cg_twilio_opts o = {.base_url = f->srv.base_url,
                               .account_sid = AC,
                               .auth_token = TOKEN,
                               .timeout_ms = 150,
                               .max_retries = 1};
    f->tw = cg_twilio_new(f->base, f->httpc, &o);
    assert_non_null(f->tw);
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    cgt_script(&f->srv, 200, BODY_CALL);
    struct got g = {0};
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA1, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.attempts, 2);
    assert_string_equal(g.call_status, "in-progress");
    got_free(&g);
}

static void test_fetch_call(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200, BODY_CALL);
    struct got g = {0};
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA1, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_string_equal(g.call_status, "in-progress");
    assert_string_equal(g.from, "+15551234567");
    assert_string_equal(g.to, "+15557654321");
    struct cgt_seen *w = &f->srv.seen[0];
    assert_string_equal(w->method, "GET");
    assert_string_equal(w->path, ACCT "/Calls/" CA1 ".json");
    assert_basic_auth(w->authorization);
    assert_string_equal(w->accept, "application/json");
    got_free(&g);
}

static void test_fetch_call_malformed(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200, "<Response><Call/></Response>");
    struct got g = {0};
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA1, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_FATAL);
    assert_null(g.call_status);
    got_free(&g);
}

/* ---- lists ---- */

#define MEMBER(sid, pos, wait)                                                                     \
    "{\"queue_sid\":\"" QU "\",\"call_sid\":\"" sid "\",\"date_enqueued\":"                        \
    "\"Mon, 17 Dec 2018 18:36:39 +0000\",\"position\":" #pos ",\"uri\":\"" ACCT "/Queues/" QU      \
    "/Members/" sid ".json\",\"wait_time\":" #wait "}"
#define MEMBERS_URI ACCT "/Queues/" QU "/Members.json"

static const char page0[] =
    "{\"end\":1,\"first_page_uri\":\"" MEMBERS_URI "?PageSize=2&Page=0\","
    "\"next_page_uri\":\"" MEMBERS_URI "?PageSize=2&Page=1&PageToken=PAQUaaaa1\","
    "\"page\":0,\"page_size\":2,\"previous_page_uri\":null,\"queue_members\":[" MEMBER(
        CA1, 1, 124) "," MEMBER(CA2, 2, 100) "],\"start\":0,\"uri\":\"" MEMBERS_URI
                                             "?PageSize=2&Page=0\"}";
static const char page1[] =
    "{\"end\":3,\"first_page_uri\":\"" MEMBERS_URI "?PageSize=2&Page=0\","
    "\"next_page_uri\":\"" MEMBERS_URI "?PageSize=2&Page=2&PageToken=PAQUaaaa3\","
    "\"page\":1,\"page_size\":2,\"previous_page_uri\":\"" MEMBERS_URI "?PageSize=2&Page=0\","
    "\"queue_members\":[" MEMBER(CA3, 3, 80) "," MEMBER(
        CA4, 4, 61) "],\"start\":2,"
                    "\"uri\":\"" MEMBERS_URI "?PageSize=2&Page=1&PageToken=PAQUaaaa1\"}";
static const char page2[] =
    "{\"end\":4,\"first_page_uri\":\"" MEMBERS_URI "?PageSize=2&Page=0\",\"next_page_uri\":null,"
    "\"page\":2,\"page_size\":2,\"previous_page_uri\":\"" MEMBERS_URI "?PageSize=2&Page=1\","
    "\"queue_members\":[" MEMBER(CA5, 5, 3) "],\"start\":4,"
                                            "\"uri\":\"" MEMBERS_URI
                                            "?PageSize=2&Page=2&PageToken=PAQUaaaa3\"}";

static void test_list_members_pages(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200, page0);
    cgt_script(&f->srv, 200, page1);
    cgt_script(&f->srv, 200, page2);
    struct got g = {0};
    assert_int_equal(cg_twilio_list_members(f->tw, QU, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.attempts, 3);
    assert_int_equal(g.nmembers, 5);
    const char *sids[] = {CA1, CA2, CA3, CA4, CA5};
    const long waits[] = {124, 100, 80, 61, 3};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(g.members[i].call_sid, sids[i]);
        assert_int_equal(g.members[i].position, i + 1);
        assert_int_equal(g.members[i].wait_time_s, waits[i]);
    }
    assert_int_equal(f->srv.nseen, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(f->srv.seen[i].method, "GET");
        assert_string_equal(f->srv.seen[i].path, MEMBERS_URI);
        assert_basic_auth(f->srv.seen[i].authorization);
    }
    assert_string_equal(f->srv.seen[0].query, "PageSize=1000");
    assert_string_equal(f->srv.seen[1].query, "PageSize=2&Page=1&PageToken=PAQUaaaa1");
    assert_string_equal(f->srv.seen[2].query, "PageSize=2&Page=2&PageToken=PAQUaaaa3");
    got_free(&g);
}

static void test_list_members_page_retry(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200, page0);
    cgt_script(&f->srv, 429, BODY_429);
    cgt_script(&f->srv, 200, page1);
    cgt_script(&f->srv, 200, page2);
    struct got g = {0};
    assert_int_equal(cg_twilio_list_members(f->tw, QU, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.attempts, 4);
    assert_int_equal(g.nmembers, 5);
    assert_string_equal(f->srv.seen[2].query, "PageSize=2&Page=1&PageToken=PAQUaaaa1");
    got_free(&g);
}

static void test_list_members_empty(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200,
               "{\"end\":0,\"first_page_uri\":\"" MEMBERS_URI "?PageSize=50&Page=0\","
               "\"next_page_uri\":null,\"page\":0,\"page_size\":50,\"previous_page_uri\":null,"
               "\"queue_members\":[],\"start\":0,\"uri\":\"" MEMBERS_URI "?PageSize=50&Page=0\"}");
    struct got g = {0};
    assert_int_equal(cg_twilio_list_members(f->tw, QU, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_int_equal(g.nmembers, 0);
    got_free(&g);
}

static void run_bad_next(struct fx *f, const char *next_uri)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"next_page_uri\":\"%s\",\"page\":0,\"queue_members\":[" MEMBER(CA1, 1, 5) "]}",
             next_uri);
    f->srv.nsteps = f->srv.next = 0;
    int before = f->srv.nseen;
    cgt_script(&f->srv, 200, body);
    struct got g = {0};
    assert_int_equal(cg_twilio_list_members(f->tw, QU, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_FATAL);
    assert_int_equal(f->srv.nseen, before + 1);
    got_free(&g);
}

static void test_list_members_refuses_foreign_next(void **state)
{
    struct fx *f = *state;
    run_bad_next(f, "/2010-04-01/Accounts/ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/Queues/" QU
                    "/Members.json?Page=1");
    run_bad_next(f, "https://evil.example/" ACCT "/Queues.json");
    run_bad_next(f, "//evil.example" ACCT "/Queues.json");
    run_bad_next(f, ACCT "/../../other/Members.json?Page=1");
    run_bad_next(f, ACCT "/%2e%2e/x?Page=1");
    run_bad_next(f, ACCT "/Queues/" QU "/Members.json?Page=1#frag");
}

static void test_list_members_page_loop_bounded(void **state)
{
    struct fx *f = *state;
    /* A server whose next page is always the same page. */
    static const char loop[] =
        "{\"next_page_uri\":\"" MEMBERS_URI "?Page=1\",\"queue_members\":[" MEMBER(CA1, 1, 5) "]}";
    cgt_script_step(&f->srv, (struct cgt_step){.status = 200, .body = loop, .sticky = 1});
    struct got g = {0};
    assert_int_equal(cg_twilio_list_members(f->tw, QU, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 10000);
    assert_int_equal(g.outcome, CG_TW_FATAL);
    assert_string_equal(g.message, "too many pages");
    assert_int_equal(f->srv.nreq, CG_TWILIO_MAX_PAGES);
    got_free(&g);
}

#define QUEUE(sid, name)                                                                           \
    "{\"account_sid\":\"" AC "\",\"average_wait_time\":0,\"current_size\":0,\"date_created\":"     \
    "\"Tue, 04 Aug 2015 18:39:09 +0000\",\"date_updated\":\"Tue, 04 Aug 2015 18:39:09 +0000\","    \
    "\"friendly_name\":\"" name "\",\"max_size\":100,\"sid\":\"" sid "\",\"uri\":\"" ACCT          \
    "/Queues/" sid ".json\"}"

static void test_find_queue_across_pages(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200,
               "{\"end\":0,\"first_page_uri\":\"" ACCT "/Queues.json?PageSize=1&Page=0\","
               "\"next_page_uri\":\"" ACCT "/Queues.json?PageSize=1&Page=1&PageToken=PAQUaaaa\","
               "\"page\":0,\"page_size\":1,\"previous_page_uri\":null,\"queues\":[" QUEUE(
                   QU, "customer-support-2") "],\"start\":0,\"uri\":\"" ACCT
                                             "/Queues.json?PageSize=1&Page=0\"}");
    cgt_script(&f->srv, 200,
               "{\"end\":1,\"next_page_uri\":null,\"page\":1,\"page_size\":1,\"queues\":[" QUEUE(
                   QU2, "customer-support") "],\"start\":1}");
    struct got g = {0};
    assert_int_equal(cg_twilio_find_queue(f->tw, "customer-support", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_string_equal(g.queue_sid, QU2);
    assert_int_equal(f->srv.nseen, 2);
    assert_string_equal(f->srv.seen[0].path, ACCT "/Queues.json");
    assert_string_equal(f->srv.seen[0].query, "PageSize=1000");
    assert_string_equal(f->srv.seen[1].query, "PageSize=1&Page=1&PageToken=PAQUaaaa");
    got_free(&g);
}

static void test_find_queue_stops_when_found(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200,
               "{\"next_page_uri\":\"" ACCT
               "/Queues.json?Page=1\",\"queues\":[" QUEUE(QU, "support") "]}");
    struct got g = {0};
    assert_int_equal(cg_twilio_find_queue(f->tw, "support", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_string_equal(g.queue_sid, QU);
    assert_int_equal(f->srv.nseen, 1);
    got_free(&g);
}

static void test_find_queue_missing(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 200,
               "{\"next_page_uri\":null,\"queues\":[" QUEUE(QU, "Support") "," QUEUE(
                   QU2, "support ") "]}");
    struct got g = {0};
    assert_int_equal(cg_twilio_find_queue(f->tw, "support", on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_null(g.queue_sid);
    got_free(&g);
}

static void test_list_unknown_queue_gone(void **state)
{
    struct fx *f = *state;
    cgt_script(&f->srv, 404,
               "{\"code\": 20404, \"message\": \"The requested resource " MEMBERS_URI
               " was not found\", \"more_info\": \"https://www.twilio.com/docs/errors/20404\", "
               "\"status\": 404}");
    struct got g = {0};
    assert_int_equal(cg_twilio_list_members(f->tw, QU, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_GONE);
    assert_int_equal(g.nmembers, 0);
    got_free(&g);
}

/* ---- validation and lifecycle ---- */

/* Twilio's 4,000-character limit on the Twiml of a call update (error
 * 32018), counted as Twilio counts: characters, a character outside the
 * BMP as two. At the limit the update goes; one over, it is never sent. */
static void test_update_twiml_character_limit(void **state)
{
    struct fx *f = *state;
    assert_int_equal(cg_twilio_twiml_chars(NULL), 0);
    assert_int_equal(cg_twilio_twiml_chars("abc"), 3);
    assert_int_equal(cg_twilio_twiml_chars("\xc3\xa9\xe2\x82\xac"), 2); /* é € */
    assert_int_equal(cg_twilio_twiml_chars("\xf0\x9f\x98\x80"), 2);     /* an emoji */
    assert_int_equal(cg_twilio_twiml_chars("\xff\xfe"), 2);             /* not UTF-8 */
    /* 4,000 characters in 7,999 bytes: "é" x 3999 and one "x". */
    size_t n = 2 * 3999 + 1;
    char *doc = cg_malloc(n + 3);
    for (size_t i = 0; i < 3999; i++)
        memcpy(doc + 2 * i, "\xc3\xa9", 2);
    doc[n - 1] = 'x';
    doc[n] = '\0';
    assert_int_equal(cg_twilio_twiml_chars(doc), 4000);
    struct got g = {0};
    cgt_script(&f->srv, 200, BODY_CALL);
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, doc, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    got_free(&g);
    memcpy(doc + n, "y", 2);
    assert_int_equal(cg_twilio_twiml_chars(doc), 4001);
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, doc, on_result, &g), -1);
    assert_int_equal(f->srv.nseen, 1);
    free(doc);
}

static void test_invalid_input(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    const char *bad[] = {NULL,
                         "",
                         "CA123",
                         "QUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaag",
                         "CAaaaaaaaaaaaaaaa/../aaaaaaaaaaaaa",
                         "caaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cg_twilio_update_call_twiml(f->tw, bad[i], "<Response/>", on_result, &g),
                         -1);
        assert_int_equal(cg_twilio_fetch_call(f->tw, bad[i], on_result, &g), -1);
    }
    assert_int_equal(cg_twilio_list_members(f->tw, CA1, on_result, &g), -1);
    assert_int_equal(cg_twilio_list_members(f->tw, "QU12", on_result, &g), -1);
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "", on_result, &g), -1);
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, NULL, on_result, &g), -1);
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA1, NULL, &g), -1);
    assert_int_equal(cg_twilio_fetch_call(NULL, CA1, on_result, &g), -1);
    assert_int_equal(cg_twilio_find_queue(f->tw, "", on_result, &g), -1);
    assert_int_equal(cg_twilio_find_queue(f->tw, NULL, on_result, &g), -1);
    char longname[66];
    memset(longname, 'q', 65);
    longname[65] = '\0';
    assert_int_equal(cg_twilio_find_queue(f->tw, longname, on_result, &g), -1);
    size_t big = CG_TWILIO_MAX_TWIML + 1;
    char *huge = cg_malloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = '\0';
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, huge, on_result, &g), -1);
    free(huge);
    /* Lower-case hex is fine. */
    assert_true(cg_twilio_sid_valid("CA0123456789abcdefABCDEF0123456789", "CA"));
    cgt_run_for(f->base, 20);
    assert_int_equal(g.calls, 0);
    assert_int_equal(f->srv.nseen, 0);
}

static void test_new_rejects_bad_opts(void **state)
{
    struct fx *f = *state;
    struct cg_twilio_opts o = {.base_url = f->srv.base_url, .account_sid = AC, .auth_token = TOKEN};
    struct cg_twilio *t = cg_twilio_new(f->base, f->httpc, &o);
    assert_non_null(t);
    cg_twilio_free(t);
    o.account_sid = "AC123";
    assert_null(cg_twilio_new(f->base, f->httpc, &o));
    o.account_sid = AC;
    o.auth_token = "";
    assert_null(cg_twilio_new(f->base, f->httpc, &o));
    o.auth_token = TOKEN;
    o.base_url = "ftp://api.twilio.com";
    assert_null(cg_twilio_new(f->base, f->httpc, &o));
    o.base_url = NULL;
    assert_null(cg_twilio_new(f->base, f->httpc, &o));
    assert_null(cg_twilio_new(f->base, f->httpc, NULL));
    cg_twilio_free(NULL);
}

static void test_trailing_slash_base(void **state)
{
    struct fx *f = *state;
    char url[80];
    snprintf(url, sizeof url, "%s/", f->srv.base_url);
    cg_twilio_free(f->tw);
    f->tw = new_client(f, url, 0);
    cgt_script(&f->srv, 200, BODY_CALL);
    struct got g = {0};
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA1, on_result, &g), 0);
    cgt_run_once(f->base, &g.calls, 5000);
    assert_int_equal(g.outcome, CG_TW_OK);
    assert_string_equal(f->srv.seen[0].path, ACCT "/Calls/" CA1 ".json");
    got_free(&g);
}

static void test_free_with_pending_cancels(void **state)
{
    struct fx *f = *state;
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    /* The second op sits in a retry timer when the client goes. */
    cgt_script_step(&f->srv,
                    (struct cgt_step){.status = 429, .body = BODY_429, .retry_after = "5"});
    struct got g1 = {0}, g2 = {0}, g3 = {0};
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g1), 0);
    assert_true(cgt_script_wait_seen(&f->srv, f->base, 1));
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA2, "<Response/>", on_result, &g2), 0);
    assert_true(cgt_script_wait_seen(&f->srv, f->base, 2));
    cgt_run_for(f->base, 50);
    assert_int_equal(g1.calls, 0);
    assert_int_equal(g2.calls, 0);
    /* Not yet sent at all. */
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA3, on_result, &g3), 0);

    cg_twilio_free(f->tw);
    f->tw = NULL;
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g1.outcome, CG_TW_CANCELLED);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g2.outcome, CG_TW_CANCELLED);
    assert_int_equal(g3.calls, 1);
    assert_int_equal(g3.outcome, CG_TW_CANCELLED);
    /* The in-flight requests finish later without a second callback. */
    cgt_run_for(f->base, 100);
    cg_httpc_free(f->httpc);
    f->httpc = NULL;
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g3.calls, 1);
    got_free(&g1);
    got_free(&g2);
    got_free(&g3);
}

static void test_free_inside_callback(void **state)
{
    struct fx *f = *state;
    /* Whichever request arrives first hangs; the other is answered, and its
     * callback frees the client with the hung one still pending. */
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    cgt_script(&f->srv, 400, BODY_21220);
    struct got g1 = {0}, g2 = {0};
    g1.free_me = &f->tw;
    g2.free_me = &f->tw;
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA1, "<Response/>", on_result, &g1), 0);
    assert_int_equal(cg_twilio_update_call_twiml(f->tw, CA2, "<Response/>", on_result, &g2), 0);
    int done = 0;
    for (int i = 0; i < 500 && !done; i++) {
        cgt_run_for(f->base, 10);
        done = g1.calls && g2.calls;
    }
    assert_true(done);
    assert_null(f->tw);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    assert_true((g1.outcome == CG_TW_GONE && g2.outcome == CG_TW_CANCELLED) ||
                (g1.outcome == CG_TW_CANCELLED && g2.outcome == CG_TW_GONE));
    cgt_run_for(f->base, 50);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    got_free(&g1);
    got_free(&g2);
}

static void test_httpc_freed_under_us(void **state)
{
    struct fx *f = *state;
    cgt_script_step(&f->srv, (struct cgt_step){.hang = 1});
    struct got g = {0};
    assert_int_equal(cg_twilio_fetch_call(f->tw, CA1, on_result, &g), 0);
    assert_true(cgt_script_wait_seen(&f->srv, f->base, 1));
    cg_httpc_free(f->httpc);
    f->httpc = NULL;
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.outcome, CG_TW_CANCELLED);
    cgt_run_for(f->base, 20);
    assert_int_equal(g.calls, 1);
    got_free(&g);
}

int main(void)
{
    cg_log_set_level(CG_LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_update_ok),
        T(test_create_call),
        T(test_create_call_no_double_dial),
        T(test_21220_gone),
        T(test_20404_gone),
        T(test_401_fatal_no_retry),
        T(test_other_4xx_fatal),
        T(test_429_then_ok),
        T(test_503_exhausts),
        T(test_max_retries_configurable),
        T(test_retry_after_honoured),
        T(test_transport_error_retry),
        T(test_timeout_retry),
        T(test_fetch_call),
        T(test_fetch_call_malformed),
        T(test_list_members_pages),
        T(test_list_members_page_retry),
        T(test_list_members_empty),
        T(test_list_members_refuses_foreign_next),
        T(test_list_members_page_loop_bounded),
        T(test_find_queue_across_pages),
        T(test_find_queue_stops_when_found),
        T(test_find_queue_missing),
        T(test_list_unknown_queue_gone),
        T(test_invalid_input),
        T(test_update_twiml_character_limit),
        T(test_new_rejects_bad_opts),
        T(test_trailing_slash_base),
        T(test_free_with_pending_cancels),
        T(test_free_inside_callback),
        T(test_httpc_freed_under_us),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
