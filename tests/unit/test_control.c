/*
 * test_control.c - Vapi's phone-call-control message (vapi/control.c) and
 * the TwiML of transfers (twilio/twiml.c): every destination form, the
 * refusals, injection through every field, and Twilio's 4,000-character
 * bound on a Calls update.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "twilio/twiml.h"
#include "vapi/api.h"
#include "vapi/control.h"

#define P "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"

/* Parses a server message body and its phone-call-control part. Returns
 * the parser's result; *root is to be freed by the caller. */
static int parse(const char *body, struct cg_vapi_control *c, json_t **root, char *err,
                 size_t errlen)
{
    struct cg_vapi_event ev;
    char e1[128];
    assert_int_equal(cg_vapi_parse_event(body, strlen(body), &ev, root, e1, sizeof e1), 0);
    assert_string_equal(ev.type_name, "phone-call-control");
    return cg_vapi_parse_control(*root, c, err, errlen);
}

static void expect_refused(const char *body, const char *why)
{
    struct cg_vapi_control c;
    json_t *root = NULL;
    char err[128] = "";
    if (parse(body, &c, &root, err, sizeof err) != -1) {
        print_message("accepted: %s\n", body);
        fail();
    }
    assert_string_equal(err, why);
    assert_null(c.number);
    assert_null(c.sip_uri);
    json_decref(root);
}

static void test_parse_forward_number(void **state)
{
    (void)state;
    const char *body =
        "{\"message\":{\"type\":\"phone-call-control\",\"request\":\"forward\","
        "\"destination\":{\"type\":\"number\",\"number\":\"+15557770100\",\"extension\":\"12#\","
        "\"callerId\":\"+15550001111\",\"message\":\"Connecting you to a specialist.\"},"
        "\"call\":{\"id\":\"c-1\",\"analysis\":{\"summary\":\"Wants a refund.\"}},"
        "\"timestamp\":1733500000000}}";
    struct cg_vapi_control c;
    json_t *root = NULL;
    char err[128];
    assert_int_equal(parse(body, &c, &root, err, sizeof err), 0);
    assert_int_equal(c.request, CG_VAPI_CTL_FORWARD);
    assert_int_equal(c.dest_type, CG_VAPI_DEST_NUMBER);
    assert_string_equal(c.number, "+15557770100");
    assert_string_equal(c.extension, "12#");
    assert_string_equal(c.caller_id, "+15550001111");
    assert_string_equal(c.message, "Connecting you to a specialist.");
    assert_string_equal(c.summary, "Wants a refund.");
    assert_null(c.sip_uri);
    assert_string_equal(cg_vapi_control_request_name(c.request), "forward");
    json_decref(root);
}

static void test_parse_forward_sip_custom_message(void **state)
{
    (void)state;
    const char *body = "{\"message\":{\"type\":\"phone-call-control\",\"request\":\"forward\","
                       "\"destination\":{\"type\":\"sip\",\"sipUri\":\"sip:desk@pbx.example.com\","
                       "\"message\":{\"type\":\"custom-message\",\"content\":\"One moment.\"},"
                       "\"sipHeaders\":{\"X-A\":\"b\"}},\"call\":{\"id\":\"c-2\"}}}";
    struct cg_vapi_control c;
    json_t *root = NULL;
    char err[128];
    assert_int_equal(parse(body, &c, &root, err, sizeof err), 0);
    assert_int_equal(c.dest_type, CG_VAPI_DEST_SIP);
    assert_string_equal(c.sip_uri, "sip:desk@pbx.example.com");
    assert_string_equal(c.message, "One moment.");
    assert_null(c.number);
    assert_null(c.caller_id);
    assert_null(c.summary);
    json_decref(root);
}

static void test_parse_hangup(void **state)
{
    (void)state;
    const char *body = "{\"message\":{\"type\":\"phone-call-control\",\"request\":\"hang-up\","
                       "\"call\":{\"id\":\"c-3\"}}}";
    struct cg_vapi_control c;
    json_t *root = NULL;
    char err[128];
    assert_int_equal(parse(body, &c, &root, err, sizeof err), 0);
    assert_int_equal(c.request, CG_VAPI_CTL_HANGUP);
    assert_int_equal(c.dest_type, CG_VAPI_DEST_NONE);
    assert_string_equal(cg_vapi_control_request_name(c.request), "hang-up");
    json_decref(root);
}

#define PCC "{\"message\":{\"type\":\"phone-call-control\","

static void test_parse_refusals(void **state)
{
    (void)state;
    expect_refused(PCC "\"call\":{\"id\":\"x\"}}}", "message.request missing or not a string");
    expect_refused(PCC "\"request\":\"transfer\"}}", "message.request must be forward or hang-up");
    expect_refused(PCC "\"request\":\"forward\"}}",
                   "a forward needs message.destination with a type");
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"assistant\"}}}",
                   "destination.type must be number or sip");
    const char *bad_number = "destination.number must be a phone number of 3 to 40 characters";
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"number\"}}}",
                   bad_number);
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"number\","
                       "\"number\":\"+1</Number><Dial>+1900\"}}}",
                   bad_number);
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"number\","
                       "\"number\":\"12345678901234567890123456789012345678901\"}}}",
                   bad_number);
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"number\","
                       "\"number\":\"+15550001000\",\"extension\":\"12345678901\"}}}",
                   "destination.extension must be 1 to 10 digits, '*', '#' or 'w'");
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"number\","
                       "\"number\":\"+15550001000\",\"extension\":\"1\\\"/>\"}}}",
                   "destination.extension must be 1 to 10 digits, '*', '#' or 'w'");
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"number\","
                       "\"number\":\"+15550001000\",\"callerId\":\"a\\\" b\"}}}",
                   "destination.callerId must be at most 40 printable characters");
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"number\","
                       "\"number\":\"+15550001000\",\"message\":7}}}",
                   "destination.message must be a string or a custom message");
    const char *bad_sip =
        "destination.sipUri must be a sip: or sips: URI of at most 256 characters";
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"sip\","
                       "\"sipUri\":\"http://x\"}}}",
                   bad_sip);
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"sip\","
                       "\"sipUri\":\"sip:a b@c\"}}}",
                   bad_sip);
    expect_refused(PCC "\"request\":\"forward\",\"destination\":{\"type\":\"sip\","
                       "\"sipUri\":\"sip:a<b@c\"}}}",
                   bad_sip);

    /* Another message type is not a control message. */
    const char *su = "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\"}}";
    json_t *root = cg_json_parse(su, strlen(su), 8, NULL, 0);
    struct cg_vapi_control c;
    char err[64];
    assert_int_equal(cg_vapi_parse_control(root, &c, err, sizeof err), -1);
    assert_string_equal(err, "not a phone-call-control message");
    json_decref(root);
}

static void test_number_ok(void **state)
{
    (void)state;
    assert_true(cg_vapi_number_ok("+15550001000"));
    assert_true(cg_vapi_number_ok("(555) 000-1000"));
    assert_true(cg_vapi_number_ok("911"));
    assert_false(cg_vapi_number_ok("91"));
    assert_false(cg_vapi_number_ok("+1-"));
    assert_false(cg_vapi_number_ok("client:alice"));
    assert_false(cg_vapi_number_ok(NULL));
}

/* ---- TwiML ---- */

static void test_twiml_dial_number(void **state)
{
    (void)state;
    struct cg_twiml_transfer t = {.message = "Connecting you & co.",
                                  .number = "+15557770100",
                                  .extension = "12#",
                                  .caller_id = "+15550001111",
                                  .action_url = "https://cg.example.com/transfer-status"};
    char *x = cg_twiml_transfer_dial(&t);
    assert_string_equal(x, P "<Response><Say>Connecting you &amp; co.</Say>"
                             "<Dial action=\"https://cg.example.com/transfer-status\" "
                             "method=\"POST\" callerId=\"+15550001111\"><Number "
                             "sendDigits=\"ww12#\">+15557770100</Number></Dial></Response>");
    free(x);
    struct cg_twiml_transfer plain = {.number = "+15557770100"};
    x = cg_twiml_transfer_dial(&plain);
    assert_string_equal(x, P "<Response><Dial><Number>+15557770100</Number></Dial></Response>");
    free(x);
}

static void test_twiml_dial_sip(void **state)
{
    (void)state;
    struct cg_twiml_transfer t = {.sip_uri = "sip:desk@pbx.example.com;transport=tls",
                                  .message = "</Say><Hangup/>"};
    char *x = cg_twiml_transfer_dial(&t);
    assert_string_equal(x, P "<Response><Say>&lt;/Say&gt;&lt;Hangup/&gt;</Say><Dial><Sip>"
                             "sip:desk@pbx.example.com;transport=tls</Sip></Dial></Response>");
    free(x);
}

static void test_twiml_dial_refusals(void **state)
{
    (void)state;
    struct cg_twiml_transfer none = {.message = "hi"};
    assert_null(cg_twiml_transfer_dial(&none));
    struct cg_twiml_transfer bad_action = {.number = "+15550001000", .action_url = "ftp://x"};
    assert_null(cg_twiml_transfer_dial(&bad_action));
    /* 1,000 apostrophes become 6,000 bytes: over Twilio's 4,000. */
    char msg[1001];
    memset(msg, '\'', 1000);
    msg[1000] = '\0';
    struct cg_twiml_transfer big = {.number = "+15550001000", .message = msg};
    assert_null(cg_twiml_transfer_dial(&big));
    /* A long plain message is cut at CG_TWIML_TRANSFER_MAX_SAY bytes. */
    char longmsg[3001];
    memset(longmsg, 'a', 3000);
    longmsg[3000] = '\0';
    struct cg_twiml_transfer cut = {.number = "+15550001000", .message = longmsg};
    char *x = cg_twiml_transfer_dial(&cut);
    assert_non_null(x);
    assert_true(strlen(x) <= CG_TWIML_UPDATE_MAX);
    const char *say = strstr(x, "<Say>") + 5;
    assert_int_equal(strstr(x, "</Say>") - say, CG_TWIML_TRANSFER_MAX_SAY);
    free(x);
}

static void test_twiml_enqueue_task(void **state)
{
    (void)state;
    struct cg_twiml_task t = {
        .message = "Please hold for an agent.",
        .workflow_sid = "WW0123456789abcdef0123456789abcdef",
        .wait_url =
            "https://cg.example.com/queue-wait?taskQueueSid=WQ0123456789abcdef0123456789abcdef",
        .action_url = "https://cg.example.com/transfer-status",
        .task_json = "{\"vapiCallId\":\"c-1\",\"summary\":\"<b>&\"}",
    };
    char *x = cg_twiml_enqueue_task(&t);
    assert_string_equal(
        x, P "<Response><Say>Please hold for an agent.</Say><Enqueue "
             "workflowSid=\"WW0123456789abcdef0123456789abcdef\" "
             "waitUrl=\"https://cg.example.com/queue-wait?taskQueueSid="
             "WQ0123456789abcdef0123456789abcdef\" waitUrlMethod=\"POST\" "
             "action=\"https://cg.example.com/transfer-status\" method=\"POST\"><Task>"
             "{&quot;vapiCallId&quot;:&quot;c-1&quot;,&quot;summary&quot;:&quot;&lt;b&gt;&amp;"
             "&quot;}</Task></Enqueue></Response>");
    free(x);
    struct cg_twiml_task bare = {.workflow_sid = "WW0123456789abcdef0123456789abcdef"};
    x = cg_twiml_enqueue_task(&bare);
    assert_string_equal(x,
                        P "<Response><Enqueue workflowSid=\"WW0123456789abcdef0123456789abcdef\">"
                          "<Task>{}</Task></Enqueue></Response>");
    free(x);
    struct cg_twiml_task nowf = {.task_json = "{}"};
    assert_null(cg_twiml_enqueue_task(&nowf));
    struct cg_twiml_task badwait = {.workflow_sid = "WW1", .wait_url = "javascript:x"};
    assert_null(cg_twiml_enqueue_task(&badwait));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forward_number),
        cmocka_unit_test(test_parse_forward_sip_custom_message),
        cmocka_unit_test(test_parse_hangup),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_number_ok),
        cmocka_unit_test(test_twiml_dial_number),
        cmocka_unit_test(test_twiml_dial_sip),
        cmocka_unit_test(test_twiml_dial_refusals),
        cmocka_unit_test(test_twiml_enqueue_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
