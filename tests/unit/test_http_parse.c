#include "base/fmacros.h"

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parse.h"

/*
 * The request parser on its own: each case is a whole request as bytes and
 * the status the server answers (0: accepted), with the decoded body where
 * one is accepted. Every case runs twice, once with all bytes at hand and
 * once fed a byte at a time, as a slow client sends them; both must agree.
 */

#define MAX_FIELDS_BYTES 256
#define MAX_BODY         64

struct outcome {
    int status;
    const char *why;
    struct cg_hp_request rq;
    char body[256];
    size_t body_len;
    size_t consumed; /* bytes of the request, head and body */
};

/* What net/httpd.c does with the bytes: find the head, parse it, read the
 * body. avail grows from step to len; returns 0 when more is needed. */
static int run(const char *in, size_t len, size_t step, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    memcpy(buf, in, len);
    struct cg_hp_scan scan;
    memset(&scan, 0, sizeof scan);
    struct cg_hp_chunked ch;
    memset(&ch, 0, sizeof ch);
    size_t head = 0;
    int done = 0;
    for (size_t avail = step < len ? step : len; !done;
         avail = avail + step < len ? avail + step : len) {
        if (head == 0) {
            long end = cg_hp_head_end(&scan, buf, avail);
            if (end < 0) {
                o->status = 400;
                o->why = "bare LF";
                done = 1;
                break;
            }
            if (end > 0) {
                head = (size_t)end;
                o->status = cg_hp_parse_head(buf, head, MAX_FIELDS_BYTES, &o->rq, &o->why);
                if (o->status != 0) {
                    done = 1;
                    break;
                }
                if (o->rq.body == CG_HP_BODY_LENGTH && o->rq.content_length > MAX_BODY) {
                    o->status = 413;
                    o->why = "body too large";
                    done = 1;
                    break;
                }
            }
        }
        if (head > 0) {
            if (o->rq.body == CG_HP_BODY_NONE) {
                o->consumed = head;
                done = 1;
            } else if (o->rq.body == CG_HP_BODY_LENGTH) {
                if (avail >= head + o->rq.content_length) {
                    o->body_len = (size_t)o->rq.content_length;
                    memcpy(o->body, buf + head, o->body_len);
                    o->consumed = head + o->body_len;
                    done = 1;
                }
            } else {
                int st = cg_hp_chunked(&ch, buf + head, avail - head, MAX_BODY, 128, &o->why);
                if (st == 1) {
                    o->body_len = ch.out;
                    memcpy(o->body, buf + head, ch.out);
                    o->consumed = head + ch.in;
                    done = 1;
                } else if (st != 0) {
                    o->status = st;
                    done = 1;
                }
            }
        }
        if (!done && avail == len)
            break;
    }
    free(buf);
    return done;
}

struct tcase {
    const char *name;
    const char *req;
    int status;       /* -1: incomplete */
    const char *body; /* expected decoded body, when accepted */
};

#define H "Host: h\r\n"

static const struct tcase cases[] = {
    /* accepted */
    {"plain GET", "GET / HTTP/1.1\r\n" H "\r\n", 0, ""},
    {"leading empty line", "\r\nGET / HTTP/1.1\r\n" H "\r\n", 0, ""},
    {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 0, ""},
    {"length body", "POST /x HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello", 0, "hello"},
    {"length with leading zeros", "POST /x HTTP/1.1\r\n" H "Content-Length: 003\r\n\r\nabc", 0,
     "abc"},
    {"chunked",
     "POST /x HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
     0, "abcde"},
    {"chunked, upper-case hex",
     "POST /x HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 0,
     "0123456789"},
    {"chunk extension",
     "POST /x HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0;last\r\n\r\n",
     0, "abc"},
    {"chunk extension, quoted",
     "POST /x HTTP/1.1\r\n" H
     "Transfer-Encoding: chunked\r\n\r\n3;a=\"x;y \\\"z\\\"\";b\r\nabc\r\n0\r\n\r\n",
     0, "abc"},
    {"chunk extension with BWS",
     "POST /x HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3 ; a = 1 ; b\r\nabc\r\n0\r\n\r\n",
     0, "abc"},
    {"trailers",
     "POST /x HTTP/1.1\r\n" H
     "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Two:\r\n\r\n",
     0, "abc"},
    {"chunked after an empty list element",
     "POST /x HTTP/1.1\r\n" H "Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 0, ""},
    {"field value with obs-text and tabs", "GET / HTTP/1.1\r\n" H "X-A: \t\xff v\xe9 \t\r\n\r\n", 0,
     ""},
    {"empty Host on 1.1", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, ""},
    {"Host with port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 0, ""},
    {"Host IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 0, ""},
    {"Expect 100-continue",
     "POST / HTTP/1.1\r\n" H "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx", 0, "x"},
    {"absolute-form target", "GET http://h/a?b HTTP/1.1\r\n" H "\r\n", 0, ""},
    /* incomplete */
    {"head not ended", "GET / HTTP/1.1\r\n" H, -1, NULL},
    {"body short", "POST /x HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhel", -1, NULL},
    {"chunked without last chunk",
     "POST /x HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", -1, NULL},
    /* line ends */
    {"bare LF in the request line", "GET / HTTP/1.1\n" H "\r\n", 400, NULL},
    {"bare LF ends a field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400, NULL},
    {"bare LF ends the head", "GET / HTTP/1.1\r\n" H "\n", 400, NULL},
    {"bare CR in a value", "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", 400, NULL},
    {"NUL in a value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 400, NULL},
    {"NUL after Content-Length", "POST / HTTP/1.1\r\n" H "Content-Length: 1\0junk\r\n\r\nx", 400,
     NULL},
    {"DEL in a value", "GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", 400, NULL},
    {"obs-fold", "GET / HTTP/1.1\r\n" H "X: a\r\n  b\r\n\r\n", 400, NULL},
    {"obs-fold with tab", "GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", 400, NULL},
    /* request line */
    {"no version", "GET /\r\n" H "\r\n", 400, NULL},
    {"HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", 400, NULL},
    {"HTTP/1.2", "GET / HTTP/1.2\r\n" H "\r\n", 400, NULL},
    {"space after the version", "GET / HTTP/1.1 \r\n" H "\r\n", 400, NULL},
    {"lower-case version", "GET / http/1.1\r\n" H "\r\n", 400, NULL},
    {"two spaces", "GET  / HTTP/1.1\r\n" H "\r\n", 400, NULL},
    {"space in target", "GET /a b HTTP/1.1\r\n" H "\r\n", 400, NULL},
    {"tab separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", 400, NULL},
    {"unknown method", "BREW / HTTP/1.1\r\n" H "\r\n", 501, NULL},
    {"lower-case method", "get / HTTP/1.1\r\n" H "\r\n", 501, NULL},
    /* field names */
    {"space before colon", "GET / HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n", 400, NULL},
    {"no colon", "GET / HTTP/1.1\r\n" H "NoColon\r\n\r\n", 400, NULL},
    {"empty name", "GET / HTTP/1.1\r\n" H ": v\r\n\r\n", 400, NULL},
    {"name with '@'", "GET / HTTP/1.1\r\n" H "X@Y: v\r\n\r\n", 400, NULL},
    {"name with UTF-8", "GET / HTTP/1.1\r\n" H "X\xc3\xa9: v\r\n\r\n", 400, NULL},
    /* Host */
    {"no Host on 1.1", "GET / HTTP/1.1\r\n\r\n", 400, NULL},
    {"two Hosts", "GET / HTTP/1.1\r\n" H H "\r\n", 400, NULL},
    {"two Hosts on 1.0", "GET / HTTP/1.0\r\n" H H "\r\n", 400, NULL},
    {"Host with a path", "GET / HTTP/1.1\r\nHost: h/x\r\n\r\n", 400, NULL},
    {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400, NULL},
    {"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, NULL},
    {"Host with bad port", "GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", 400, NULL},
    {"Host with long port", "GET / HTTP/1.1\r\nHost: h:123456\r\n\r\n", 400, NULL},
    {"Host, unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, NULL},
    /* Content-Length */
    {"two lengths", "POST / HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400,
     NULL},
    {"length list", "POST / HTTP/1.1\r\n" H "Content-Length: 1, 1\r\n\r\nx", 400, NULL},
    {"length +1", "POST / HTTP/1.1\r\n" H "Content-Length: +1\r\n\r\nx", 400, NULL},
    {"length -1", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400, NULL},
    {"length hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x1\r\n\r\nx", 400, NULL},
    {"empty length", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400, NULL},
    {"huge length", "POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999\r\n\r\n", 400,
     NULL},
    {"length over the limit", "POST / HTTP/1.1\r\n" H "Content-Length: 65\r\n\r\n", 413, NULL},
    /* Transfer-Encoding */
    {"TE and CL",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
     400, NULL},
    {"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, NULL},
    {"TE identity", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", 400, NULL},
    {"TE chunked then gzip", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n",
     400, NULL},
    {"TE chunked twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n", 400,
     NULL},
    {"TE chunked in two fields",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, NULL},
    {"TE gzip then chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n",
     501, NULL},
    {"TE empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", 400, NULL},
    {"TE with parameters", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n", 400,
     NULL},
    {"TE chunkedx", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunkedx\r\n\r\n", 400, NULL},
    /* chunk sizes */
    {"chunk size 0x3",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400,
     NULL},
    {"chunk size +3",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", 400, NULL},
    {"chunk size ' 3'",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", 400, NULL},
    {"chunk size '3 junk'",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3 junk\r\nabc\r\n0\r\n\r\n", 400,
     NULL},
    {"chunk size '3 '",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400, NULL},
    {"chunk size -3",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", 400, NULL},
    {"empty chunk size",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n", 400, NULL},
    {"chunk size, bare LF",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400, NULL},
    {"chunk data too long",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400, NULL},
    {"chunk data, bare LF",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400, NULL},
    {"chunk over the limit", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n41\r\n",
     413, NULL},
    {"chunks over the limit",
     "POST / HTTP/1.1\r\n" H
     "Transfer-Encoding: chunked\r\n\r\n20\r\n01234567890123456789012345678901\r\n21\r\n",
     413, NULL},
    {"chunk size overflow",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", 413,
     NULL},
    {"chunk extension, bad name",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;=1\r\nabc\r\n0\r\n\r\n", 400,
     NULL},
    {"chunk extension, bad value",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;a=@\r\nabc\r\n0\r\n\r\n", 400,
     NULL},
    {"chunk extension, unclosed quote",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;a=\"x\r\nabc\r\n0\r\n\r\n", 400,
     NULL},
    {"chunk extension, text after quote",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;a=\"x\"y\r\nabc\r\n0\r\n\r\n",
     400, NULL},
    {"chunk extension, NUL",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;a\0\r\nabc\r\n0\r\n\r\n", 400,
     NULL},
    {"trailer obs-fold",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400,
     NULL},
    {"trailer name with space",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nX : a\r\n\r\n", 400, NULL},
    {"trailer NUL", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\0\r\n\r\n",
     400, NULL},
    {"trailer bare LF", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n",
     400, NULL},
    {"trailers too large",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n"
     "X-1: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
     "X-2: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
     431, NULL},
    /* other fields */
    {"Expect other", "POST / HTTP/1.1\r\n" H "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417,
     NULL},
    {"Connection not tokens", "GET / HTTP/1.1\r\n" H "Connection: a b\r\n\r\n", 400, NULL},
    {"too many fields",
     "GET / HTTP/1.1\r\n" H "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:"
     "\r\nA:\r\nA:\r\nA:\r\nA:\r\n"
     "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:"
     "\r\n"
     "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:"
     "\r\n"
     "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:"
     "\r\n"
     "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:"
     "\r\n"
     "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:"
     "\r\n"
     "A:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:\r\nA:"
     "\r\n"
     "\r\n",
     431, NULL},
    {"field bytes over the limit",
     "GET / HTTP/1.1\r\n" H "X: "
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "012345678901234567890123456789\r\n"
     "Y: "
     "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012"
     "3456789\r\n"
     "Z: "
     "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012"
     "3456789\r\n"
     "\r\n",
     431, NULL},
};

/* The request's length: cases hold NULs, so the literal's size is used
 * where it is known; the table stores C strings, so a NUL case is marked
 * by its name and measured up to the last "\r\n\r\n" and beyond. */
static size_t case_len(const struct tcase *t)
{
    if (strstr(t->name, "NUL") == NULL)
        return strlen(t->req);
    /* NUL cases: the request continues after the embedded NUL. */
    size_t n = strlen(t->req);
    return n + 1 + strlen(t->req + n + 1);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tcase *t = &cases[i];
        size_t len = case_len(t);
        for (size_t step = len; step >= 1; step = step == len ? 1 : 0) {
            struct outcome o;
            int done = run(t->req, len, step, &o);
            int got = done ? o.status : -1;
            if (got != t->status)
                fail_msg("%s (step %zu): status %d (%s), wanted %d", t->name, step, got,
                         o.why ? o.why : "-", t->status);
            if (t->status == 0) {
                if (o.body_len != strlen(t->body) || memcmp(o.body, t->body, o.body_len) != 0)
                    fail_msg("%s (step %zu): body \"%.*s\", wanted \"%s\"", t->name, step,
                             (int)o.body_len, o.body, t->body);
                if (o.consumed != len)
                    fail_msg("%s: %zu bytes consumed of %zu", t->name, o.consumed, len);
            } else if (t->status > 0) {
                assert_non_null(o.why);
            }
        }
    }
}

static void test_fields_and_framing(void **state)
{
    (void)state;
    struct outcome o;
    const char *req = "POST /p?q=1 HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Pad:  a b  \r\n"
                      "Content-Length: 2\r\nConnection: Keep-Alive, Close\r\n\r\nab";
    assert_true(run(req, strlen(req), strlen(req), &o));
    assert_int_equal(o.status, 0);
    assert_int_equal(o.rq.method, CG_HTTP_POST);
    assert_int_equal(o.rq.minor, 1);
    assert_int_equal(o.rq.nfields, 5);
    assert_int_equal(o.rq.fields[1].value.len, 0);
    assert_memory_equal(req + o.rq.fields[2].value.off, "a b", 3);
    assert_int_equal(o.rq.fields[2].value.len, 3);
    assert_memory_equal(req + o.rq.target.off, "/p?q=1", 6);
    assert_int_equal(o.rq.target.len, 6);
    assert_int_equal(o.rq.field_bytes, 4 + 1 + 7 + 0 + 5 + 3 + 14 + 1 + 10 + 17);
    /* "close" wins over "keep-alive" in one Connection field. */
    assert_int_equal(o.rq.keep_alive, 0);

    const char *k10 = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert_true(run(k10, strlen(k10), strlen(k10), &o));
    assert_int_equal(o.rq.keep_alive, 1);
    const char *c10 = "GET / HTTP/1.0\r\n\r\n";
    assert_true(run(c10, strlen(c10), strlen(c10), &o));
    assert_int_equal(o.rq.keep_alive, 0);
    const char *k11 = "GET / HTTP/1.1\r\nHost: h\r\nConnection: x, ,upgrade\r\n\r\n";
    assert_true(run(k11, strlen(k11), strlen(k11), &o));
    assert_int_equal(o.rq.keep_alive, 1);
    const char *c11 =
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n";
    assert_true(run(c11, strlen(c11), strlen(c11), &o));
    assert_int_equal(o.rq.keep_alive, 0);
    const char *head = "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_true(run(head, strlen(head), strlen(head), &o));
    assert_int_equal(o.rq.method, CG_HTTP_HEAD);
    const char *trace = "TRACE / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_true(run(trace, strlen(trace), strlen(trace), &o));
    assert_int_equal(o.status, 0);
    assert_int_equal(o.rq.method, CG_HTTP_OTHER);

    assert_true(cg_hp_list_has("a, Close ,b", 11, "close"));
    assert_false(cg_hp_list_has("closed", 6, "close"));
    assert_false(cg_hp_list_has("", 0, "close"));
}

/* Two pipelined requests: the first ends where the second begins. */
static void test_pipelined_boundary(void **state)
{
    (void)state;
    const char *two = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\nab\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    struct outcome o;
    assert_true(run(two, strlen(two), strlen(two), &o));
    assert_int_equal(o.status, 0);
    assert_string_equal(two + o.consumed, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(o.body_len, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fields_and_framing),
        cmocka_unit_test(test_pipelined_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
