#include "base/fmacros.h"

#include "twilio/twiml.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define FFFD     "\xef\xbf\xbd"

/* Worst case per input byte is 6 output bytes (' -> &apos;); the largest
 * document is a Say, two URLs and a name, all capped, so this ceiling is
 * never reached. It is still a ceiling. */
#define DOC_MAX (64 * 1024)

/* A document under construction; the first failed append sticks. */
struct doc {
    struct cg_buf b;
    int err;
};

static void doc_init(struct doc *d)
{
    cg_buf_init(&d->b, DOC_MAX);
    d->err = 0;
    if (cg_buf_appends(&d->b, XML_DECL "<Response>") != 0)
        d->err = 1;
}

static void put(struct doc *d, const char *s)
{
    if (!d->err && cg_buf_appends(&d->b, s) != 0)
        d->err = 1;
}

static void putf_long(struct doc *d, const char *prefix, long v, const char *suffix)
{
    if (!d->err && cg_buf_printf(&d->b, "%s%ld%s", prefix, v, suffix) != 0)
        d->err = 1;
}

/* Bytes U+FFFE and U+FFFF: valid UTF-8 but not XML 1.0 characters. */
static int xml_nonchar(const unsigned char *p, size_t len)
{
    return len == 3 && p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf);
}

/* Writes s as XML text or attribute content: at most max input bytes (cut at
 * a character boundary), specials escaped, control characters dropped,
 * invalid UTF-8 and XML non-characters replaced with U+FFFD. */
static void put_text(struct doc *d, const char *s, size_t max)
{
    if (s == NULL || d->err)
        return;
    size_t full = strlen(s), n = full;
    if (n > max) {
        cg_log_warn("twiml text cut", "bytes=%zu max=%zu", n, max);
        n = max;
    }
    size_t i = 0;
    while (i < n && !d->err) {
        size_t run = i;
        while (run < n && (unsigned char)s[run] < 0x80)
            run++;
        if (run > i) {
            if (cg_buf_append_xml(&d->b, s + i, run - i) != 0)
                d->err = 1;
            i = run;
            continue;
        }
        size_t len = cg_utf8_seq_len(s + i, n - i);
        if (len == 0 || xml_nonchar((const unsigned char *)s + i, len)) {
            /* A valid sequence that straddles the cut is dropped, not
             * replaced: the cut is ours, not the sender's error. */
            if (len == 0 && cg_utf8_seq_len(s + i, full - i) > n - i)
                break;
            put(d, FFFD);
            i += len ? len : 1;
        } else {
            if (cg_buf_append(&d->b, s + i, len) != 0)
                d->err = 1;
            i += len;
        }
    }
}

static char *doc_finish(struct doc *d)
{
    put(d, "</Response>");
    if (d->err) {
        /* Unreachable with the caps above; an empty Response ends the call
         * cleanly instead of Twilio's application-error message. */
        cg_log_error("twiml document over its ceiling", "max=%d", DOC_MAX);
        cg_buf_free(&d->b);
        return cg_twiml_empty();
    }
    return cg_buf_take(&d->b);
}

static int nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static void put_say(struct doc *d, const char *message, const char *voice)
{
    if (!nonempty(message))
        return;
    if (nonempty(voice)) {
        put(d, "<Say voice=\"");
        put_text(d, voice, 64);
        put(d, "\">");
    } else {
        put(d, "<Say>");
    }
    put_text(d, message, CG_TWIML_MAX_TEXT);
    put(d, "</Say>");
}

static long clamp_long(long v, long lo, long hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int cg_twiml_url_ok(const char *url)
{
    if (url == NULL)
        return -1;
    size_t n = strnlen(url, CG_TWIML_MAX_URL + 1);
    if (n > CG_TWIML_MAX_URL)
        return -1;
    size_t skip;
    if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\{}|^`", c) != NULL)
            return -1;
    }
    /* The host is what follows the scheme (and any userinfo) up to the path,
     * query or fragment; it must not be empty. */
    size_t end = skip + strcspn(url + skip, "/?#");
    size_t host = skip;
    for (size_t i = skip; i < end; i++)
        if (url[i] == '@')
            host = i + 1;
    return end > host ? 0 : -1;
}

char *cg_twiml_enqueue(const char *public_url, const char *queue_name)
{
    static int warned;
    struct doc d;
    doc_init(&d);
    /* Leave room for the longest suffix so the full URLs pass too. */
    if (cg_twiml_url_ok(public_url) == 0 && strlen(public_url) + 11 <= CG_TWIML_MAX_URL) {
        put(&d, "<Enqueue action=\"");
        put_text(&d, public_url, CG_TWIML_MAX_URL);
        put(&d, "/queue-exit\" method=\"POST\" waitUrl=\"");
        put_text(&d, public_url, CG_TWIML_MAX_URL);
        put(&d, "/queue-wait\" waitUrlMethod=\"POST\">");
    } else {
        if (!warned)
            cg_log_error("enqueue without waitUrl/action: PUBLIC_URL is not an http(s) URL", "");
        warned = 1;
        put(&d, "<Enqueue>");
    }
    put_text(&d, queue_name, CG_TWIML_MAX_TEXT);
    put(&d, "</Enqueue>");
    return doc_finish(&d);
}

char *cg_twiml_wait(const struct cg_twiml_wait *w)
{
    return cg_twiml_wait_offer(w, NULL);
}

char *cg_twiml_wait_offer(const struct cg_twiml_wait *w, const struct cg_twiml_offer *o)
{
    struct doc d;
    doc_init(&d);
    if (w == NULL) {
        put(&d, "<Pause length=\"1\"/>");
        return doc_finish(&d);
    }
    int gather = o != NULL && nonempty(o->text);
    if (gather && cg_twiml_url_ok(o->action_url) != 0) {
        cg_log_warn("keypad offer dropped: its action URL is not http(s)", "");
        gather = 0;
    }
    if (gather) {
        putf_long(&d,
                  o->keyed ? "<Gather input=\"dtmf\" finishOnKey=\"#\" timeout=\""
                           : "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"",
                  clamp_long(o->timeout_s, 1, 30), "\" action=\"");
        put_text(&d, o->action_url, CG_TWIML_MAX_URL);
        put(&d, "\" method=\"POST\">");
    }
    put_say(&d, w->say, w->voice);
    if (gather) {
        put_say(&d, o->text, w->voice);
        put(&d, "</Gather>");
    }
    if (nonempty(w->hold_music_url) && cg_twiml_url_ok(w->hold_music_url) == 0) {
        put(&d, "<Play>");
        put_text(&d, w->hold_music_url, CG_TWIML_MAX_URL);
        put(&d, "</Play>");
    } else {
        static int warned;
        if (nonempty(w->hold_music_url) && !warned) {
            cg_log_warn("hold music URL is not http(s); pausing instead", "");
            warned = 1;
        }
        putf_long(&d, "<Pause length=\"", clamp_long(w->pause_s, 1, CG_TWIML_MAX_PAUSE), "\"/>");
    }
    return doc_finish(&d);
}

char *cg_twiml_leave(void)
{
    return cg_strdup(XML_DECL "<Response><Leave/></Response>");
}

char *cg_twiml_empty(void)
{
    return cg_strdup(XML_DECL "<Response/>");
}

char *cg_twiml_say_hangup(const char *message)
{
    struct doc d;
    doc_init(&d);
    put_say(&d, message, NULL);
    put(&d, "<Hangup/>");
    return doc_finish(&d);
}

char *cg_twiml_say_leave(const char *message)
{
    struct doc d;
    doc_init(&d);
    put_say(&d, message, NULL);
    put(&d, "<Leave/>");
    return doc_finish(&d);
}

char *cg_twiml_dial(const char *message, const char *number)
{
    if (!nonempty(number) || strlen(number) > CG_TWIML_MAX_NUMBER) {
        cg_log_warn("dial without a usable number; hanging up instead", "");
        return cg_twiml_say_hangup(message);
    }
    struct doc d;
    doc_init(&d);
    put_say(&d, message, NULL);
    put(&d, "<Dial>");
    put_text(&d, number, CG_TWIML_MAX_NUMBER);
    put(&d, "</Dial>");
    return doc_finish(&d);
}

char *cg_twiml_record(const char *message, const char *action_url, int max_length_s)
{
    if (cg_twiml_url_ok(action_url) != 0) {
        cg_log_warn("record without a usable action URL; hanging up instead", "");
        return cg_twiml_say_hangup(message);
    }
    struct doc d;
    doc_init(&d);
    put_say(&d, message, NULL);
    put(&d, "<Record action=\"");
    put_text(&d, action_url, CG_TWIML_MAX_URL);
    putf_long(&d, "\" maxLength=\"", clamp_long(max_length_s, 1, 14400), "\"/><Hangup/>");
    return doc_finish(&d);
}

void cg_twiml_position_phrase(long position, char *out, size_t n)
{
    if (out == NULL || n == 0)
        return;
    if (position <= 1)
        snprintf(out, n, "You are next in line.");
    else
        snprintf(out, n, "You are caller number %ld in line.", position);
}

void cg_twiml_wait_phrase(double seconds, char *out, size_t n)
{
    if (out == NULL || n == 0)
        return;
    /* !(x >= 60) also catches NaN. */
    if (!(seconds >= 60)) {
        snprintf(out, n, "less than a minute");
        return;
    }
    if (seconds < 90) {
        snprintf(out, n, "about 1 minute");
        return;
    }
    double minutes = seconds / 60;
    long m;
    if (minutes < 10.5)
        m = (long)floor(minutes + 0.5); /* 2..10 */
    else if (minutes < 57.5)
        m = 5 * (long)floor(minutes / 5 + 0.5); /* 10..55 */
    else
        m = 0;
    if (m > 0)
        snprintf(out, n, "about %ld minutes", m);
    else if (minutes <= 90)
        snprintf(out, n, "about 1 hour");
    else
        snprintf(out, n, "more than an hour");
}

/* ---- transfers (call control) ---- */

/* A Calls update's document is all or nothing: Twilio refuses one over
 * CG_TWIML_UPDATE_MAX characters (32018), so these builders refuse it
 * here rather than cut it. */
static char *doc_finish_bounded(struct doc *d)
{
    char *twiml = doc_finish(d);
    if (strlen(twiml) > CG_TWIML_UPDATE_MAX) {
        cg_log_warn("transfer twiml over twilio's update limit", "bytes=%zu max=%d", strlen(twiml),
                    CG_TWIML_UPDATE_MAX);
        free(twiml);
        return NULL;
    }
    return twiml;
}

char *cg_twiml_transfer_dial(const struct cg_twiml_transfer *t)
{
    int sip = nonempty(t->sip_uri);
    const char *dest = sip ? t->sip_uri : t->number;
    if (!nonempty(dest) || strlen(dest) > CG_TWIML_MAX_NUMBER ||
        (nonempty(t->action_url) && cg_twiml_url_ok(t->action_url) != 0))
        return NULL;
    struct doc d;
    doc_init(&d);
    if (nonempty(t->message)) {
        put(&d, "<Say>");
        put_text(&d, t->message, CG_TWIML_TRANSFER_MAX_SAY);
        put(&d, "</Say>");
    }
    put(&d, "<Dial");
    if (nonempty(t->action_url)) {
        put(&d, " action=\"");
        put_text(&d, t->action_url, CG_TWIML_MAX_URL);
        put(&d, "\" method=\"POST\"");
    }
    if (nonempty(t->caller_id)) {
        put(&d, " callerId=\"");
        put_text(&d, t->caller_id, 64);
        put(&d, "\"");
    }
    if (sip) {
        put(&d, "><Sip>");
        put_text(&d, dest, CG_TWIML_MAX_NUMBER);
        put(&d, "</Sip></Dial>");
    } else {
        put(&d, "><Number");
        if (nonempty(t->extension)) {
            /* Two half-second waits let the far end answer before the
             * digits (Twilio's sendDigits convention for extensions). */
            put(&d, " sendDigits=\"ww");
            put_text(&d, t->extension, 16);
            put(&d, "\"");
        }
        put(&d, ">");
        put_text(&d, dest, CG_TWIML_MAX_NUMBER);
        put(&d, "</Number></Dial>");
    }
    return doc_finish_bounded(&d);
}

char *cg_twiml_enqueue_task(const struct cg_twiml_task *t)
{
    if (!nonempty(t->workflow_sid) || strlen(t->workflow_sid) > 64 ||
        (nonempty(t->wait_url) && cg_twiml_url_ok(t->wait_url) != 0) ||
        (nonempty(t->action_url) && cg_twiml_url_ok(t->action_url) != 0))
        return NULL;
    struct doc d;
    doc_init(&d);
    if (nonempty(t->message)) {
        put(&d, "<Say>");
        put_text(&d, t->message, CG_TWIML_TRANSFER_MAX_SAY);
        put(&d, "</Say>");
    }
    put(&d, "<Enqueue workflowSid=\"");
    put_text(&d, t->workflow_sid, 64);
    put(&d, "\"");
    if (nonempty(t->wait_url)) {
        put(&d, " waitUrl=\"");
        put_text(&d, t->wait_url, CG_TWIML_MAX_URL);
        put(&d, "\" waitUrlMethod=\"POST\"");
    }
    if (nonempty(t->action_url)) {
        put(&d, " action=\"");
        put_text(&d, t->action_url, CG_TWIML_MAX_URL);
        put(&d, "\" method=\"POST\"");
    }
    put(&d, "><Task>");
    put_text(&d, nonempty(t->task_json) ? t->task_json : "{}", CG_TWIML_UPDATE_MAX);
    put(&d, "</Task></Enqueue>");
    return doc_finish_bounded(&d);
}
