/*
 * test_twiml.c - exact TwiML documents from every builder, injection
 * attempts through every caller- or operator-controlled value, URL checks,
 * and the spoken position and wait phrases.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "twilio/twiml.h"
#include "base/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define INJECT "</Say><Dial>+1900</Dial>"
#define FFFD   "\xef\xbf\xbd"

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Checks the text of a node or attribute value: every '&' starts one of the
 * five entities, and no '<', '>' or (in attributes) '"' appears raw. */
static int text_ok(const char *s, size_t n, int attr)
{
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '<' || s[i] == '>' || (attr && s[i] == '"'))
            return 0;
        if (s[i] == '&') {
            int ok = 0;
            for (size_t e = 0; e < 5; e++)
                if (strncmp(s + i, ents[e], strlen(ents[e])) == 0)
                    ok = 1;
            if (!ok)
                return 0;
        }
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return 0;
    }
    return 1;
}

/* A tiny XML checker for our documents: the declaration, then properly
 * nested elements with quoted attributes and escaped text, valid UTF-8.
 * Returns the number of elements, or -1 when the document is malformed. */
static int count_elements(const char *doc)
{
    size_t n = strlen(doc);
    if (strncmp(doc, P, strlen(P)) != 0 || !cg_utf8_valid(doc, n))
        return -1;
    const char *p = doc + strlen(P);
    const char *stack[16];
    size_t stack_len[16];
    int depth = 0, elements = 0;
    while (*p) {
        if (*p != '<') {
            const char *t = p;
            while (*p && *p != '<')
                p++;
            if (depth == 0 || !text_ok(t, (size_t)(p - t), 0))
                return -1;
            continue;
        }
        p++;
        if (*p == '/') {
            p++;
            const char *name = p;
            while (is_name_char(*p))
                p++;
            size_t len = (size_t)(p - name);
            if (*p != '>' || depth == 0 || len != stack_len[depth - 1] ||
                strncmp(name, stack[depth - 1], len) != 0)
                return -1;
            depth--;
            p++;
            continue;
        }
        const char *name = p;
        while (is_name_char(*p))
            p++;
        size_t len = (size_t)(p - name);
        if (len == 0)
            return -1;
        elements++;
        for (;;) {
            if (*p == ' ') {
                p++;
                while (is_name_char(*p))
                    p++;
                if (p[0] != '=' || p[1] != '"')
                    return -1;
                p += 2;
                const char *v = p;
                while (*p && *p != '"')
                    p++;
                if (*p != '"' || !text_ok(v, (size_t)(p - v), 1))
                    return -1;
                p++;
            } else if (p[0] == '/' && p[1] == '>') {
                p += 2;
                break;
            } else if (*p == '>') {
                if (depth == 16)
                    return -1;
                stack[depth] = name;
                stack_len[depth] = len;
                depth++;
                p++;
                break;
            } else {
                return -1;
            }
        }
        if (depth == 0 && *p != '\0')
            return -1; /* one root */
    }
    return depth == 0 ? elements : -1;
}

static void check_doc(char *got, const char *want, int elements)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(count_elements(got), elements);
    free(got);
}

static void test_checker(void **state)
{
    (void)state;
    /* The checker itself must catch what it is there to catch. */
    assert_int_equal(count_elements(P "<Response/>"), 1);
    assert_int_equal(count_elements(P "<Response><Say>a &amp; b</Say></Response>"), 2);
    assert_int_equal(count_elements(P "<Response><Say>a & b</Say></Response>"), -1);
    assert_int_equal(count_elements(P "<Response><Say>a > b</Say></Response>"), -1);
    assert_int_equal(count_elements(P "<Response><Say></Response>"), -1);
    assert_int_equal(count_elements(P "<Response><Play a=\"x\"y\"/></Response>"), -1);
    assert_int_equal(count_elements(P "<Response/><Response/>"), -1);
    assert_int_equal(count_elements(P "<Response><Say>\xff</Say></Response>"), -1);
    assert_int_equal(count_elements(P "<Response><Say>\x01</Say></Response>"), -1);
}

static void test_enqueue(void **state)
{
    (void)state;
    check_doc(cg_twiml_enqueue("https://gate.example.com", "support"),
              P "<Response><Enqueue action=\"https://gate.example.com/queue-exit\" method=\"POST\" "
                "waitUrl=\"https://gate.example.com/queue-wait\" "
                "waitUrlMethod=\"POST\">support</Enqueue></Response>",
              2);
    check_doc(cg_twiml_enqueue("http://10.0.0.1:8080/cg", "q"),
              P "<Response><Enqueue action=\"http://10.0.0.1:8080/cg/queue-exit\" method=\"POST\" "
                "waitUrl=\"http://10.0.0.1:8080/cg/queue-wait\" "
                "waitUrlMethod=\"POST\">q</Enqueue></Response>",
              2);
    /* A public URL that is not http(s): Twilio still holds the caller. */
    check_doc(cg_twiml_enqueue("ftp://gate.example.com", "support"),
              P "<Response><Enqueue>support</Enqueue></Response>", 2);
    check_doc(cg_twiml_enqueue(NULL, NULL), P "<Response><Enqueue></Enqueue></Response>", 2);
}

static void test_wait(void **state)
{
    (void)state;
    struct cg_twiml_wait w = {.say = "You are next in line.",
                              .hold_music_url = "https://cdn.example.com/hold.mp3",
                              .pause_s = 10};
    check_doc(cg_twiml_wait(&w),
              P "<Response><Say>You are next in line.</Say>"
                "<Play>https://cdn.example.com/hold.mp3</Play></Response>",
              3);
    w.voice = "Polly.Joanna";
    w.hold_music_url = NULL;
    check_doc(cg_twiml_wait(&w),
              P "<Response><Say voice=\"Polly.Joanna\">You are next in line.</Say>"
                "<Pause length=\"10\"/></Response>",
              3);
    /* No announcement, empty music URL, pause clamped to [1, max]. */
    struct cg_twiml_wait q = {.say = "", .hold_music_url = "", .pause_s = 0, .voice = ""};
    check_doc(cg_twiml_wait(&q), P "<Response><Pause length=\"1\"/></Response>", 2);
    q.pause_s = -5;
    check_doc(cg_twiml_wait(&q), P "<Response><Pause length=\"1\"/></Response>", 2);
    q.pause_s = 100000;
    check_doc(cg_twiml_wait(&q), P "<Response><Pause length=\"600\"/></Response>", 2);
    /* A music URL that is not http(s) falls back to a pause. */
    q.pause_s = 20;
    q.hold_music_url = "file:///etc/passwd";
    check_doc(cg_twiml_wait(&q), P "<Response><Pause length=\"20\"/></Response>", 2);
    check_doc(cg_twiml_wait(NULL), P "<Response><Pause length=\"1\"/></Response>", 2);
}

static void test_wait_offer(void **state)
{
    (void)state;
    struct cg_twiml_wait w = {.say = "You are caller number 9 in line.",
                              .hold_music_url = "https://cdn.example.com/hold.mp3",
                              .pause_s = 10};
    struct cg_twiml_offer o = {.text = "Press 1 to keep your place and be called back.",
                               .action_url = "https://gate.example.com/callback-keypad",
                               .timeout_s = 5};
    check_doc(cg_twiml_wait_offer(&w, &o),
              P "<Response><Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" "
                "action=\"https://gate.example.com/callback-keypad\" method=\"POST\">"
                "<Say>You are caller number 9 in line.</Say>"
                "<Say>Press 1 to keep your place and be called back.</Say></Gather>"
                "<Play>https://cdn.example.com/hold.mp3</Play></Response>",
              5);
    /* Timeout clamped; the voice applies to both; no announcement: the
     * offer alone. */
    o.timeout_s = 0;
    w.voice = "Polly.Joanna";
    w.say = NULL;
    w.hold_music_url = NULL;
    check_doc(cg_twiml_wait_offer(&w, &o),
              P "<Response><Gather input=\"dtmf\" numDigits=\"1\" timeout=\"1\" "
                "action=\"https://gate.example.com/callback-keypad\" method=\"POST\">"
                "<Say voice=\"Polly.Joanna\">Press 1 to keep your place and be called back.</Say>"
                "</Gather><Pause length=\"10\"/></Response>",
              4);
    /* A number keyed up to #: no digit count. */
    o.keyed = 1;
    check_doc(cg_twiml_wait_offer(&w, &o),
              P "<Response><Gather input=\"dtmf\" finishOnKey=\"#\" timeout=\"1\" "
                "action=\"https://gate.example.com/callback-keypad\" method=\"POST\">"
                "<Say voice=\"Polly.Joanna\">Press 1 to keep your place and be called back.</Say>"
                "</Gather><Pause length=\"10\"/></Response>",
              4);
    o.keyed = 0;
    /* Injection through the offer and its URL. */
    o.text = INJECT;
    o.timeout_s = 99;
    char *doc = cg_twiml_wait_offer(&w, &o);
    assert_null(strstr(doc, "<Dial>"));
    assert_non_null(strstr(doc, "timeout=\"30\""));
    assert_int_equal(count_elements(doc), 4);
    free(doc);
    o.action_url = "https://gate.example.com/k\"><Dial>+1900</Dial>";
    check_doc(cg_twiml_wait_offer(&w, &o), P "<Response><Pause length=\"10\"/></Response>", 2);
    /* A bad action, no offer text or no offer: the plain hold answer. */
    o.text = "Press 1.";
    o.action_url = "javascript:alert(1)";
    w.say = "You are next in line.";
    w.voice = NULL;
    const char *plain =
        P "<Response><Say>You are next in line.</Say><Pause length=\"10\"/></Response>";
    check_doc(cg_twiml_wait_offer(&w, &o), plain, 3);
    o.action_url = NULL;
    check_doc(cg_twiml_wait_offer(&w, &o), plain, 3);
    o.text = "";
    o.action_url = "https://gate.example.com/callback-keypad";
    check_doc(cg_twiml_wait_offer(&w, &o), plain, 3);
    check_doc(cg_twiml_wait_offer(&w, NULL), plain, 3);
    check_doc(cg_twiml_wait_offer(NULL, &o), P "<Response><Pause length=\"1\"/></Response>", 2);
}

static void test_fixed(void **state)
{
    (void)state;
    check_doc(cg_twiml_leave(), P "<Response><Leave/></Response>", 2);
    check_doc(cg_twiml_empty(), P "<Response/>", 1);
}

static void test_say_hangup_dial_record(void **state)
{
    (void)state;
    check_doc(cg_twiml_say_hangup("We are busy. Goodbye."),
              P "<Response><Say>We are busy. Goodbye.</Say><Hangup/></Response>", 3);
    check_doc(cg_twiml_say_hangup(NULL), P "<Response><Hangup/></Response>", 2);
    check_doc(cg_twiml_say_hangup(""), P "<Response><Hangup/></Response>", 2);

    check_doc(cg_twiml_dial("Transferring you.", "+15551234567"),
              P "<Response><Say>Transferring you.</Say><Dial>+15551234567</Dial></Response>", 3);
    check_doc(cg_twiml_dial(NULL, "+15551234567"),
              P "<Response><Dial>+15551234567</Dial></Response>", 2);
    /* No number to dial: say the message and hang up rather than fail. */
    check_doc(cg_twiml_dial("Sorry.", ""), P "<Response><Say>Sorry.</Say><Hangup/></Response>", 3);
    check_doc(cg_twiml_dial("Sorry.", NULL), P "<Response><Say>Sorry.</Say><Hangup/></Response>",
              3);

    check_doc(cg_twiml_record("Leave a message.", "https://gate.example.com/voicemail", 120),
              P "<Response><Say>Leave a message.</Say>"
                "<Record action=\"https://gate.example.com/voicemail\" maxLength=\"120\"/>"
                "<Hangup/></Response>",
              4);
    check_doc(cg_twiml_record(NULL, "https://g.example/vm", 0),
              P "<Response><Record action=\"https://g.example/vm\" maxLength=\"1\"/>"
                "<Hangup/></Response>",
              3);
    check_doc(cg_twiml_record(NULL, "https://g.example/vm", 1000000),
              P "<Response><Record action=\"https://g.example/vm\" maxLength=\"14400\"/>"
                "<Hangup/></Response>",
              3);
    /* Without a usable action Twilio would loop on the document. */
    check_doc(cg_twiml_record("Bye.", "javascript:alert(1)", 60),
              P "<Response><Say>Bye.</Say><Hangup/></Response>", 3);
}

static void test_injection(void **state)
{
    (void)state;
    const char *esc = "&lt;/Say&gt;&lt;Dial&gt;+1900&lt;/Dial&gt;";
    char want[1024];

    snprintf(want, sizeof want,
             P "<Response><Enqueue action=\"https://g.example/queue-exit\" method=\"POST\" "
               "waitUrl=\"https://g.example/queue-wait\" waitUrlMethod=\"POST\">%s</Enqueue>"
               "</Response>",
             esc);
    check_doc(cg_twiml_enqueue("https://g.example", INJECT), want, 2);

    snprintf(want, sizeof want, P "<Response><Say>%s</Say><Hangup/></Response>", esc);
    check_doc(cg_twiml_say_hangup(INJECT), want, 3);

    snprintf(want, sizeof want, P "<Response><Say>%s</Say><Dial>%s</Dial></Response>", esc, esc);
    check_doc(cg_twiml_dial(INJECT, INJECT), want, 3);

    /* Quotes cannot close an attribute, nor add one. */
    struct cg_twiml_wait w = {.say = "it's \"fine\" & <ok>",
                              .voice = "alice\" loop=\"0",
                              .hold_music_url = "https://x.example/m.mp3?a=1&b='2'"};
    check_doc(cg_twiml_wait(&w),
              P "<Response><Say voice=\"alice&quot; loop=&quot;0\">it&apos;s &quot;fine&quot; "
                "&amp; &lt;ok&gt;</Say><Play>https://x.example/m.mp3?a=1&amp;b=&apos;2&apos;"
                "</Play></Response>",
              3);

    /* URLs carrying markup never reach an attribute. */
    check_doc(cg_twiml_enqueue("https://g.example\"><Dial>+1900</Dial><x a=\"", "q"),
              P "<Response><Enqueue>q</Enqueue></Response>", 2);
    w.say = NULL;
    w.voice = NULL;
    w.pause_s = 5;
    w.hold_music_url = "https://x.example/a.mp3</Play><Dial>+1900</Dial><Play>";
    check_doc(cg_twiml_wait(&w), P "<Response><Pause length=\"5\"/></Response>", 2);
    check_doc(cg_twiml_record("m", "https://g.example/vm\" maxLength=\"1", 60),
              P "<Response><Say>m</Say><Hangup/></Response>", 3);

    /* Control characters are dropped; tab, CR and LF stay. */
    check_doc(cg_twiml_say_hangup("a\x01"
                                  "b\x1b"
                                  "c\x7f"
                                  "d\te\nf"),
              P "<Response><Say>abcd\te\nf</Say><Hangup/></Response>", 3);

    /* Invalid UTF-8 and XML non-characters become U+FFFD; valid text stays. */
    check_doc(cg_twiml_say_hangup("caf\xc3\xa9 \xe2\x82\xac caf\xe9 \xff\xfe \xef\xbf\xbe |"
                                  "\xed\xa0\x80|\xc0\xaf"),
              P "<Response><Say>caf\xc3\xa9 \xe2\x82\xac caf" FFFD " " FFFD FFFD " " FFFD
                " |" FFFD FFFD FFFD "|" FFFD FFFD "</Say><Hangup/></Response>",
              3);
    check_doc(cg_twiml_enqueue("https://g.example", "\xf0\x9f\x93\x9e q\x80"),
              P "<Response><Enqueue action=\"https://g.example/queue-exit\" method=\"POST\" "
                "waitUrl=\"https://g.example/queue-wait\" waitUrlMethod=\"POST\">"
                "\xf0\x9f\x93\x9e q" FFFD "</Enqueue></Response>",
              2);
}

static void test_long_text(void **state)
{
    (void)state;
    size_t n = CG_TWIML_MAX_TEXT + 1000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '<', n);
    big[n] = '\0';
    char *doc = cg_twiml_say_hangup(big);
    assert_int_equal(count_elements(doc), 3);
    /* Cut to the cap, each '<' escaped. */
    const char *say = strstr(doc, "<Say>") + 5;
    const char *end = strstr(doc, "</Say>");
    assert_int_equal((size_t)(end - say), CG_TWIML_MAX_TEXT * 4);
    free(doc);

    /* A character straddling the cut is dropped whole, not replaced. */
    memset(big, 'a', CG_TWIML_MAX_TEXT - 1);
    memcpy(big + CG_TWIML_MAX_TEXT - 1, "\xe2\x82\xac", 4);
    doc = cg_twiml_say_hangup(big);
    assert_int_equal(count_elements(doc), 3);
    say = strstr(doc, "<Say>") + 5;
    end = strstr(doc, "</Say>");
    assert_int_equal((size_t)(end - say), CG_TWIML_MAX_TEXT - 1);
    assert_null(strstr(doc, FFFD));
    free(doc);

    /* Over-long numbers are refused rather than cut (a cut number dials
     * somebody else). */
    memset(big, '1', CG_TWIML_MAX_NUMBER + 1);
    big[CG_TWIML_MAX_NUMBER + 1] = '\0';
    check_doc(cg_twiml_dial(NULL, big), P "<Response><Hangup/></Response>", 2);
    free(big);
}

static void test_url_ok(void **state)
{
    (void)state;
    assert_int_equal(cg_twiml_url_ok("https://gate.example.com"), 0);
    assert_int_equal(cg_twiml_url_ok("http://gate.example.com/a/b?c=d&e=f#g"), 0);
    assert_int_equal(cg_twiml_url_ok("HTTPS://GATE.EXAMPLE.COM/x"), 0);
    assert_int_equal(cg_twiml_url_ok("https://user:pw@gate.example.com/x"), 0);
    assert_int_equal(cg_twiml_url_ok("http://[::1]:8080/x"), 0);
    assert_int_equal(cg_twiml_url_ok("https://x.example/%20'(ok)'"), 0);

    assert_int_equal(cg_twiml_url_ok(NULL), -1);
    assert_int_equal(cg_twiml_url_ok(""), -1);
    assert_int_equal(cg_twiml_url_ok("gate.example.com"), -1);
    assert_int_equal(cg_twiml_url_ok("ftp://gate.example.com"), -1);
    assert_int_equal(cg_twiml_url_ok("javascript:alert(1)"), -1);
    assert_int_equal(cg_twiml_url_ok("https://"), -1);
    assert_int_equal(cg_twiml_url_ok("https:///path"), -1);
    assert_int_equal(cg_twiml_url_ok("https://user@/path"), -1);
    assert_int_equal(cg_twiml_url_ok("https://a.example/b c"), -1);
    assert_int_equal(cg_twiml_url_ok("https://a.example/\"x"), -1);
    assert_int_equal(cg_twiml_url_ok("https://a.example/<x>"), -1);
    assert_int_equal(cg_twiml_url_ok("https://a.example/\n"), -1);
    assert_int_equal(cg_twiml_url_ok("https://a.example/caf\xc3\xa9"), -1);
    assert_int_equal(cg_twiml_url_ok("https://a.example/{x}"), -1);

    char url[CG_TWIML_MAX_URL + 2];
    memcpy(url, "https://a.example/", 18);
    memset(url + 18, 'x', sizeof url - 19);
    url[CG_TWIML_MAX_URL] = '\0';
    assert_int_equal(cg_twiml_url_ok(url), 0);
    url[CG_TWIML_MAX_URL] = 'x';
    url[CG_TWIML_MAX_URL + 1] = '\0';
    assert_int_equal(cg_twiml_url_ok(url), -1);
}

static void test_position_phrase(void **state)
{
    (void)state;
    char out[64];
    cg_twiml_position_phrase(1, out, sizeof out);
    assert_string_equal(out, "You are next in line.");
    cg_twiml_position_phrase(2, out, sizeof out);
    assert_string_equal(out, "You are caller number 2 in line.");
    cg_twiml_position_phrase(21, out, sizeof out);
    assert_string_equal(out, "You are caller number 21 in line.");
    cg_twiml_position_phrase(0, out, sizeof out);
    assert_string_equal(out, "You are next in line.");
    cg_twiml_position_phrase(-3, out, sizeof out);
    assert_string_equal(out, "You are next in line.");
    /* Always terminated, even when cut. */
    char small[8];
    cg_twiml_position_phrase(21, small, sizeof small);
    assert_string_equal(small, "You are");
    cg_twiml_position_phrase(21, NULL, 0);
}

static void test_wait_phrase(void **state)
{
    (void)state;
    static const struct {
        double s;
        const char *want;
    } cases[] = {
        {0, "less than a minute"},  {5, "less than a minute"},   {59, "less than a minute"},
        {60, "about 1 minute"},     {89, "about 1 minute"},      {90, "about 2 minutes"},
        {150, "about 3 minutes"},   {599, "about 10 minutes"},   {601, "about 10 minutes"},
        {660, "about 10 minutes"},  {900, "about 15 minutes"},   {1950, "about 35 minutes"},
        {3300, "about 55 minutes"}, {3599, "about 1 hour"},      {3600, "about 1 hour"},
        {5400, "about 1 hour"},     {5401, "more than an hour"}, {100000, "more than an hour"},
        {-5, "less than a minute"}, {NAN, "less than a minute"}, {INFINITY, "more than an hour"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_twiml_wait_phrase(cases[i].s, out, sizeof out);
        assert_string_equal(out, cases[i].want);
        assert_null(strstr(out, " 0 "));
    }
    /* No bucket ever says 0, whatever the input. */
    for (double s = 0; s < 20000; s += 7.5) {
        cg_twiml_wait_phrase(s, out, sizeof out);
        assert_null(strstr(out, "about 0"));
    }
    cg_twiml_wait_phrase(100, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker),
        cmocka_unit_test(test_enqueue),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_say_hangup_dial_record),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_long_text),
        cmocka_unit_test(test_wait_offer),
        cmocka_unit_test(test_url_ok),
        cmocka_unit_test(test_position_phrase),
        cmocka_unit_test(test_wait_phrase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
