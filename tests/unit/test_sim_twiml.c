/*
 * Unit tests for sim/twiml.c, the simulator's TwiML parser: every verb and
 * attribute, XML details (prolog, comments, entities, CDATA), TwiML rules,
 * malformed documents, limits, and random mutations (must never crash).
 *
 * The path is explicit: src/ has a twiml.h of its own (the gate's builder).
 */
#include "harness.h"

#include "../../sim/twiml_reader.h"
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *xml, struct sim_twiml *t, char *err, size_t errlen)
{
    int rc = sim_twiml_parse(xml, strlen(xml), t, err, errlen);
    if (rc != 0) {
        assert_int_equal(t->n, 0);
        assert_null(t->verbs);
    }
    return rc;
}

#define WW "WW0123456789abcdef0123456789abcdef"

static void parse_ok(const char *xml, struct sim_twiml *t)
{
    char err[256];
    int rc = parse(xml, t, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected parse error: %s\n%s", err, xml);
}

/* The document must fail, with a message containing want (may be NULL). */
static void parse_bad(const char *xml, const char *want)
{
    struct sim_twiml t;
    char err[256];
    int rc = parse(xml, &t, err, sizeof(err));
    if (rc == 0) {
        sim_twiml_free(&t);
        fail_msg("accepted a bad document: %s", xml);
    }
    assert_true(strlen(err) > 0);
    if (want && !strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\" for %s", err, want, xml);
}

static void test_every_verb(void **state)
{
    (void)state;
    const char *xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!-- greeting first -->\n"
        "<Response>\n"
        "  <Say voice=\"alice\" loop=\"2\">Hello there</Say>\n"
        "  <Play loop='0'>https://example.com/music.mp3</Play>\n"
        "  <Pause length=\"3\"/>\n"
        "  <Redirect method=\"get\">/next?x=1&amp;y=2</Redirect>\n"
        "  <Enqueue action=\"/queue-exit\" method=\"GET\" waitUrl=\"/queue-wait\"\n"
        "           waitUrlMethod=\"GET\" maxQueueSize=\"50\">  support  </Enqueue>\n"
        "  <Connect action=\"/after\"><Stream url=\"wss://sim.local/abc/transport\">"
        "<Parameter name=\"a\" value=\"b\"/></Stream></Connect>\n"
        "  <Dial action=\"/dial-done\"> +15551234567 </Dial>\n"
        "  <Dial timeout=\"10\"><Number>+15557654321</Number></Dial>\n"
        "  <Record action=\"/vm\" maxLength=\"30\"/>\n"
        "  <Gather input=\"dtmf speech\" timeout=\"4\" action=\"/g\"><Say>Press 1</Say>"
        "<Pause length=\"1\"/></Gather>\n"
        "  <Leave/>\n"
        "  <Hangup></Hangup>\n"
        "  <Reject reason=\"busy\"/>\n"
        "</Response>\n"
        "<!-- trailing comment -->\n";
    struct sim_twiml t;
    parse_ok(xml, &t);
    assert_int_equal(t.n, 15);
    const struct sim_twiml_verb *v = t.verbs;

    assert_int_equal(v[0].kind, SIM_TW_SAY);
    assert_string_equal(v[0].text, "Hello there");
    assert_int_equal(v[0].loop, 2);

    assert_int_equal(v[1].kind, SIM_TW_PLAY);
    assert_string_equal(v[1].text, "https://example.com/music.mp3");
    assert_int_equal(v[1].loop, 0);

    assert_int_equal(v[2].kind, SIM_TW_PAUSE);
    assert_true(v[2].seconds == 3.0);

    assert_int_equal(v[3].kind, SIM_TW_REDIRECT);
    assert_string_equal(v[3].text, "/next?x=1&y=2");
    assert_string_equal(v[3].method, "GET");

    assert_int_equal(v[4].kind, SIM_TW_ENQUEUE);
    assert_string_equal(v[4].text, "support");
    assert_string_equal(v[4].action, "/queue-exit");
    assert_string_equal(v[4].method, "GET");
    assert_string_equal(v[4].wait_url, "/queue-wait");
    assert_string_equal(v[4].wait_url_method, "GET");
    assert_int_equal(v[4].max_queue_size, 50);

    assert_int_equal(v[5].kind, SIM_TW_CONNECT_STREAM);
    assert_string_equal(v[5].text, "wss://sim.local/abc/transport");
    assert_string_equal(v[5].action, "/after");

    assert_int_equal(v[6].kind, SIM_TW_DIAL);
    assert_string_equal(v[6].text, "+15551234567");
    assert_string_equal(v[6].action, "/dial-done");
    assert_int_equal(v[7].kind, SIM_TW_DIAL);
    assert_string_equal(v[7].text, "+15557654321");
    assert_null(v[7].action);

    assert_int_equal(v[8].kind, SIM_TW_RECORD);
    assert_string_equal(v[8].action, "/vm");
    assert_true(v[8].seconds == 30.0);

    /* <Gather>'s nested verbs come first, then the Gather itself. */
    assert_int_equal(v[9].kind, SIM_TW_SAY);
    assert_string_equal(v[9].text, "Press 1");
    assert_int_equal(v[10].kind, SIM_TW_PAUSE);
    assert_int_equal(v[11].kind, SIM_TW_GATHER);
    assert_true(v[11].seconds == 4.0);
    assert_string_equal(v[11].action, "/g");

    assert_int_equal(v[12].kind, SIM_TW_LEAVE);
    assert_int_equal(v[13].kind, SIM_TW_HANGUP);
    assert_int_equal(v[14].kind, SIM_TW_REJECT);
    assert_string_equal(v[14].reason, "busy");

    assert_string_equal(sim_twiml_kind_name(SIM_TW_CONNECT_STREAM), "Connect");
    assert_string_equal(sim_twiml_kind_name(SIM_TW_ENQUEUE), "Enqueue");
    sim_twiml_free(&t);
    assert_int_equal(t.n, 0);
    sim_twiml_free(&t); /* twice is harmless */
}

static void test_defaults(void **state)
{
    (void)state;
    struct sim_twiml t;
    parse_ok("<Response><Pause/><Enqueue>q</Enqueue><Enqueue waitUrl=\"\">q</Enqueue>"
             "<Record/><Gather/><Reject/><Say>x</Say><Redirect>u</Redirect></Response>",
             &t);
    assert_int_equal(t.n, 8);
    assert_true(t.verbs[0].seconds == 1.0);
    assert_null(t.verbs[1].action);
    assert_null(t.verbs[1].wait_url);
    assert_string_equal(t.verbs[1].method, "POST");
    assert_string_equal(t.verbs[1].wait_url_method, "POST");
    assert_int_equal(t.verbs[1].max_queue_size, -1);
    assert_string_equal(t.verbs[2].wait_url, "");
    assert_true(t.verbs[3].seconds == 3600.0);
    assert_true(t.verbs[4].seconds == 5.0);
    assert_string_equal(t.verbs[5].reason, "rejected");
    assert_int_equal(t.verbs[6].loop, 1);
    assert_string_equal(t.verbs[7].method, "POST");
    sim_twiml_free(&t);

    /* Empty responses in both spellings, with a BOM and blank space. */
    parse_ok("\xEF\xBB\xBF<Response/>", &t);
    assert_int_equal(t.n, 0);
    sim_twiml_free(&t);
    parse_ok("<?xml version='1.0'?><Response>\r\n\t </Response>\n\n", &t);
    assert_int_equal(t.n, 0);
    sim_twiml_free(&t);
    /* Fractional pause: the simulator runs scaled time. */
    parse_ok("<Response><Pause length=\"0.25\"/></Response>", &t);
    assert_true(t.verbs[0].seconds == 0.25);
    sim_twiml_free(&t);
}

static void test_entities_and_cdata(void **state)
{
    (void)state;
    struct sim_twiml t;
    parse_ok("<Response><Say>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#65;&#x42;"
             "&#233;&#x1F600;<![CDATA[<raw & text>]]></Say>"
             "<Play>http://x/?a=1&amp;b=&#x32;</Play></Response>",
             &t);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.verbs[0].text,
                        "a & b <c> \"d\" 'e' AB\xC3\xA9\xF0\x9F\x98\x80<raw & text>");
    assert_string_equal(t.verbs[1].text, "http://x/?a=1&b=2");
    sim_twiml_free(&t);

    /* Entities in attributes; '>' is fine in text and attribute values. */
    parse_ok("<Response><Enqueue action=\"/exit?a=1&amp;b=2\" waitUrl='/w?q=&quot;x&quot;'>"
             "a&gt;b</Enqueue></Response>",
             &t);
    assert_string_equal(t.verbs[0].action, "/exit?a=1&b=2");
    assert_string_equal(t.verbs[0].wait_url, "/w?q=\"x\"");
    assert_string_equal(t.verbs[0].text, "a>b");
    sim_twiml_free(&t);

    /* Comments inside elements and between verbs are skipped. */
    parse_ok("<Response><!-- a --><Say>he<!-- b -->llo</Say><!--c--></Response>", &t);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.verbs[0].text, "hello");
    sim_twiml_free(&t);
}

static void test_ssml_in_say(void **state)
{
    (void)state;
    struct sim_twiml t;
    parse_ok("<Response><Say>Hi <break time=\"1s\"/>there <emphasis level=\"strong\">now"
             "</emphasis><prosody rate=\"slow\"><say-as interpret-as=\"digits\">42"
             "</say-as></prosody></Say></Response>",
             &t);
    assert_string_equal(t.verbs[0].text, "Hi there now42");
    sim_twiml_free(&t);
    parse_bad("<Response><Say><Play>x</Play></Say></Response>", "not allowed in <Say>");
}

static void test_queue_names(void **state)
{
    (void)state;
    char name[80];
    memset(name, 'q', 63);
    name[63] = '\0';
    char xml[256];
    snprintf(xml, sizeof(xml), "<Response><Enqueue>%s</Enqueue></Response>", name);
    struct sim_twiml t;
    parse_ok(xml, &t);
    assert_int_equal(strlen(t.verbs[0].text), 63);
    sim_twiml_free(&t);

    memset(name, 'q', 64);
    name[64] = '\0';
    snprintf(xml, sizeof(xml), "<Response><Enqueue>%s</Enqueue></Response>", name);
    parse_bad(xml, "14205");
    parse_bad("<Response><Enqueue></Enqueue></Response>", "14204");
    parse_bad("<Response><Enqueue>   </Enqueue></Response>", "14204");
    parse_bad("<Response><Enqueue/></Response>", "14204");
    parse_bad("<Response><Enqueue workflowSid=\"WW1\">x</Enqueue></Response>", "WW and 32 hex");
    parse_bad("<Response><Enqueue workflowSid=\"" WW "\">x</Enqueue></Response>",
              "text outside <Task>");
    parse_bad("<Response><Enqueue workflowSid=\"" WW "\"><Task>a</Task><Task>b</Task>"
              "</Enqueue></Response>",
              "one <Task>");
    parse_ok("<Response><Enqueue workflowSid=\"" WW "\" waitUrl=\"http://h/w?taskQueueSid=WQ1\">"
             "<Task> {&quot;a&quot;:1} </Task></Enqueue></Response>",
             &t);
    assert_int_equal(t.verbs[0].kind, SIM_TW_ENQUEUE);
    assert_string_equal(t.verbs[0].workflow_sid, WW);
    assert_string_equal(t.verbs[0].text, "{\"a\":1}");
    assert_string_equal(t.verbs[0].wait_url, "http://h/w?taskQueueSid=WQ1");
    sim_twiml_free(&t);
    parse_ok("<Response><Dial callerId=\"+1555\"><Sip>sip:a@b</Sip></Dial>"
             "<Dial><Number sendDigits=\"ww1\">+1555</Number></Dial></Response>",
             &t);
    assert_int_equal(t.verbs[0].sip, 1);
    assert_string_equal(t.verbs[0].text, "sip:a@b");
    assert_int_equal(t.verbs[1].sip, 0);
    assert_string_equal(t.verbs[1].text, "+1555");
    sim_twiml_free(&t);
    parse_bad("<Response><Enqueue maxQueueSize=\"0\">x</Enqueue></Response>", "maxQueueSize");
    parse_bad("<Response><Enqueue maxQueueSize=\"5001\">x</Enqueue></Response>", "maxQueueSize");
    parse_bad("<Response><Enqueue waitUrlMethod=\"PUT\">x</Enqueue></Response>", "GET or POST");
}

static void test_xml_errors(void **state)
{
    (void)state;
    parse_bad("", "no root");
    parse_bad("   <!-- only a comment -->  ", "no root");
    parse_bad("<Response><Say>hi", "unclosed element <Say>");
    parse_bad("<Response><Say>hi</Say>", "unclosed element <Response>");
    parse_bad("<Response><Pause length=\"1\"", "unclosed start tag");
    parse_bad("<Response><Say>hi</Play></Response>", "mismatched end tag </Play>");
    parse_bad("<Response><Say>hi</Say ></Response", "malformed end tag");
    parse_bad("<Response><Pause length=3/></Response>", "must be quoted");
    parse_bad("<Response><Pause length/></Response>", "expected '='");
    parse_bad("<Response><Pause length=\"1\"loop=\"2\"/></Response>", "whitespace");
    parse_bad("<Response><Pause length=\"1\" length=\"2\"/></Response>", "duplicate attribute");
    parse_bad("<Response><Play a=\"<\">x</Play></Response>", "'<' in an attribute value");
    parse_bad("<Response><Pause length=\"1/></Response>", NULL);
    parse_bad("hello<Response/>", "text outside the root");
    parse_bad("<Response/>junk", "content after the root");
    parse_bad("<Response/><Response/>", "a second root");
    parse_bad("<!DOCTYPE Response><Response/>", "DOCTYPE");
    parse_bad("<Response><?pi x?></Response>", "processing instruction");
    parse_bad("<?pi x?><Response/>", "processing instruction");
    parse_bad(" <?xml version=\"1.0\"?><Response/>", "processing instruction");
    parse_bad("<?xml version=\"1.0\"<Response/>", "unterminated XML declaration");
    parse_bad("<Response><!-- open </Response>", "unterminated comment");
    parse_bad("<Response><Say><![CDATA[x</Say></Response>", "unterminated CDATA");
    parse_bad("<Response><1Say/></Response>", "expected a name");
    parse_bad("<Response>< Say/></Response>", NULL);
    parse_bad("<Response><Say>a\x01</Say></Response>", "control character");
    parse_bad("<Response><Say>\xC3\x28</Say></Response>", "UTF-8");

    /* Entities. */
    parse_bad("<Response><Say>&foo;</Say></Response>", "unknown entity");
    parse_bad("<Response><Say>a & b</Say></Response>", "entity");
    parse_bad("<Response><Say>&amp</Say></Response>", "malformed entity");
    parse_bad("<Response><Say>&#;</Say></Response>", "malformed character reference");
    parse_bad("<Response><Say>&#x;</Say></Response>", "malformed character reference");
    parse_bad("<Response><Say>&#x4G;</Say></Response>", "malformed character reference");
    parse_bad("<Response><Say>&#0;</Say></Response>", "invalid character");
    parse_bad("<Response><Say>&#xD800;</Say></Response>", "invalid character");
    parse_bad("<Response><Say>&#x110000;</Say></Response>", "out of range");
    parse_bad("<Response><Say>&#99999999999999;</Say></Response>", NULL);
    parse_bad("<Response><Play a=\"&bogus;\">x</Play></Response>", "unknown entity");

    /* NUL anywhere. */
    struct sim_twiml t;
    char err[128];
    const char nul[] = "<Response><Say>a\0b</Say></Response>";
    assert_int_equal(sim_twiml_parse(nul, sizeof(nul) - 1, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL"));
    /* A NULL err buffer is allowed; so is a tiny one. */
    assert_int_equal(sim_twiml_parse("<x", 2, &t, NULL, 0), -1);
    char tiny[8];
    assert_int_equal(sim_twiml_parse("<x", 2, &t, tiny, sizeof(tiny)), -1);
    assert_true(strlen(tiny) < sizeof(tiny));

    /* Positions are reported as line and column. */
    assert_int_equal(parse("<Response>\n  <Foo/>\n</Response>", &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2 col 3"));
    assert_non_null(strstr(err, "unknown verb <Foo>"));
}

static void test_twiml_errors(void **state)
{
    (void)state;
    parse_bad("<Foo/>", "expected <Response>");
    parse_bad("<response/>", "expected <Response>");
    parse_bad("<Response><Foo/></Response>", "unknown verb <Foo>");
    parse_bad("<Response><say>x</say></Response>", "unknown verb <say>");
    parse_bad("<Response>hello<Hangup/></Response>", "takes no text");
    parse_bad("<Response><Hangup/>tail</Response>", "takes no text");
    parse_bad("<Response><Pause>3</Pause></Response>", "takes no text");
    parse_bad("<Response><Pause length=\"abc\"/></Response>", "not a number");
    parse_bad("<Response><Pause length=\"-1\"/></Response>", "not a number");
    parse_bad("<Response><Pause length=\" 1\"/></Response>", "not a number");
    parse_bad("<Response><Pause length=\"nan\"/></Response>", "not a number");
    parse_bad("<Response><Hangup><Say>x</Say></Hangup></Response>", "not allowed in <Hangup>");
    parse_bad("<Response><Leave>x</Leave></Response>", "takes no text");
    parse_bad("<Response><Redirect></Redirect></Response>", "needs a URL");
    parse_bad("<Response><Redirect method=\"PUT\">/x</Redirect></Response>", "GET or POST");
    parse_bad("<Response><Play></Play></Response>", "needs a URL or digits");
    parse_bad("<Response><Say loop=\"x\">a</Say></Response>", "integer");
    parse_bad("<Response><Say loop=\"1001\">a</Say></Response>", "integer");
    parse_bad("<Response><Reject reason=\"nope\"/></Response>", "rejected or busy");
    parse_bad("<Response><Connect/></Response>", "needs a <Stream>");
    parse_bad("<Response><Connect><Room>r</Room></Connect></Response>", "not simulated");
    parse_bad("<Response><Connect><Stream url=\"wss://a/b\"/><Stream url=\"wss://a/c\"/>"
              "</Connect></Response>",
              "one noun");
    parse_bad("<Response><Connect><Stream url=\"https://a/b\"/></Connect></Response>",
              "ws:// or wss://");
    parse_bad("<Response><Connect><Stream/></Connect></Response>", "ws:// or wss://");
    parse_bad("<Response><Connect><Stream url=\"wss://a\"><Say>x</Say></Stream></Connect>"
              "</Response>",
              "not allowed in <Stream>");
    parse_bad("<Response><Stream url=\"wss://a\"/></Response>", "unknown verb <Stream>");
    parse_bad("<Response><Dial></Dial></Response>", "needs a number");
    parse_bad("<Response><Dial><Client>bob</Client></Dial></Response>", "not simulated");
    parse_bad("<Response><Dial><Queue>q</Queue></Dial></Response>", "not simulated");
    parse_bad("<Response><Dial>+1555<Number>+1556</Number></Dial></Response>", "both");
    parse_bad("<Response><Dial><Number></Number></Dial></Response>", "empty <Number>");
    parse_bad("<Response><Record maxLength=\"0\"/></Response>", "at least 1");
    parse_bad("<Response><Gather><Dial>+1</Dial></Gather></Response>", "not allowed in <Gather>");
    parse_bad("<Response><Gather><Gather/></Gather></Response>", "not allowed in <Gather>");
    parse_bad("<Response><Gather input=\"video\"/></Response>", "dtmf or speech");
    parse_bad("<Response><Gather input=\"\"/></Response>", "dtmf or speech");
    parse_bad("<Response><Gather>text</Gather></Response>", "takes no text");
}

static void test_limits(void **state)
{
    (void)state;
    struct sim_twiml t;
    /* Depth 8 is allowed, 9 is not. */
    parse_ok("<Response><Say><p><s><p><s><p><s>deep</s></p></s></p></s></p></Say></Response>", &t);
    assert_string_equal(t.verbs[0].text, "deep");
    sim_twiml_free(&t);
    parse_bad("<Response><Say><p><s><p><s><p><s><p>x</p></s></p></s></p></s></p></Say>"
              "</Response>",
              "nested deeper than 8");

    /* A depth bomb is refused at depth 9, without recursing further. */
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    for (int i = 0; i < 10000; i++)
        cg_buf_appends(&b, "<a>");
    parse_bad(cg_buf_str(&b), "nested deeper");
    cg_buf_reset(&b);

    /* 256 verbs are fine, 257 are not (Gather's children count too). */
    cg_buf_appends(&b, "<Response>");
    for (int i = 0; i < 256; i++)
        cg_buf_appends(&b, "<Hangup/>");
    cg_buf_appends(&b, "</Response>");
    parse_ok(cg_buf_str(&b), &t);
    assert_int_equal(t.n, 256);
    sim_twiml_free(&t);
    cg_buf_reset(&b);
    cg_buf_appends(&b, "<Response>");
    for (int i = 0; i < 128; i++)
        cg_buf_appends(&b, "<Gather><Pause/></Gather>");
    cg_buf_appends(&b, "<Hangup/></Response>");
    parse_bad(cg_buf_str(&b), "more than 256 verbs");
    cg_buf_reset(&b);

    /* Too many elements, even where verbs would be fine. */
    cg_buf_appends(&b, "<Response><Say>");
    for (int i = 0; i < 3000; i++)
        cg_buf_appends(&b, "<break/>");
    cg_buf_appends(&b, "</Say></Response>");
    parse_bad(cg_buf_str(&b), "more than 2048 elements");
    cg_buf_reset(&b);

    /* Input size: exactly 64 KiB is read, one byte more is refused. */
    cg_buf_appends(&b, "<Response><Say>");
    const char *tail = "</Say></Response>";
    while (b.len < SIM_TWIML_MAX_BYTES - strlen(tail))
        cg_buf_appendc(&b, 'x');
    cg_buf_appends(&b, tail);
    assert_int_equal(b.len, SIM_TWIML_MAX_BYTES);
    parse_ok(cg_buf_str(&b), &t);
    sim_twiml_free(&t);
    cg_buf_reset(&b);
    cg_buf_appends(&b, "<Response><Say>");
    while (b.len < SIM_TWIML_MAX_BYTES + 1 - strlen(tail))
        cg_buf_appendc(&b, 'x');
    cg_buf_appends(&b, tail);
    parse_bad(cg_buf_str(&b), "larger than");

    /* Too many attributes on one element. */
    cg_buf_reset(&b);
    cg_buf_appends(&b, "<Response><Pause");
    for (int i = 0; i < 40; i++)
        cg_buf_printf(&b, " a%d=\"1\"", i);
    cg_buf_appends(&b, "/></Response>");
    parse_bad(cg_buf_str(&b), "too many attributes");
    cg_buf_free(&b);
}

/* xorshift64*: a fixed stream so failures repeat. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void test_mutations_never_crash(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "<?xml version=\"1.0\"?><Response><Say loop=\"2\">Hi &amp; bye</Say><Enqueue "
        "action=\"/a\" waitUrl=\"/w\">q</Enqueue></Response>",
        "<Response><Connect><Stream url=\"wss://sim.local/x/transport\"/></Connect></Response>",
        "<Response><Gather input=\"dtmf\"><Say>x</Say><Pause length=\"2\"/></Gather>"
        "<Dial><Number>+1</Number></Dial><!-- c --><![CDATA[z]]></Response>",
    };
    static const char alphabet[] = "<>/=\"'&;#x!-?[] \nabSayResponse\xC3\xA9\0";
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    char buf[512];
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[iter % 3];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + (int)(rnd(&s) % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = (size_t)(rnd(&s) % n);
            char c = alphabet[rnd(&s) % (sizeof(alphabet) - 1)];
            switch (rnd(&s) % 3) {
            case 0: /* replace */
                buf[pos] = c;
                break;
            case 1: /* delete */
                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                n--;
                break;
            default: /* insert */
                if (n + 1 < sizeof(buf)) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = c;
                    n++;
                }
                break;
            }
            if (n == 0)
                break;
        }
        /* Also cut it short now and then. */
        if (rnd(&s) % 5 == 0 && n > 0)
            n = (size_t)(rnd(&s) % n);
        struct sim_twiml t;
        char err[128];
        if (sim_twiml_parse(buf, n, &t, err, sizeof(err)) == 0) {
            accepted++;
            for (size_t i = 0; i < t.n; i++)
                assert_true(t.verbs[i].kind <= SIM_TW_REJECT);
            sim_twiml_free(&t);
        } else {
            assert_int_equal(t.n, 0);
        }
    }
    /* Some mutants stay valid (inside text, say): the parser was exercised
     * on both paths. */
    assert_true(accepted > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_verb),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_entities_and_cdata),
        cmocka_unit_test(test_ssml_in_say),
        cmocka_unit_test(test_queue_names),
        cmocka_unit_test(test_xml_errors),
        cmocka_unit_test(test_twiml_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
