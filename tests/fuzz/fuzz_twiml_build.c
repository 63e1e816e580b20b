/*
 * Fuzz target: the TwiML callgate writes (src/twilio/twiml.c) with caller- and
 * operator-controlled text in it, read back by the simulator's parser
 * (sim/twiml.c). This checks twiml.h's promise end to end: no value can add
 * an element or an attribute, and every document is well-formed.
 *
 * Input: "message\nvalue\nvoice": the message goes into <Say>, the value
 * serves as queue name, number, hold-music URL and action URL in turn.
 *
 * Invariants: every document parses, with exactly the verbs its builder
 * writes; clean text (valid UTF-8 without control characters, within the
 * limits) comes back unchanged.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/log.h"
#include "twilio/twiml.h"
#include "base/utf8.h"

#include "../../sim/twiml_reader.h"

#define PUBLIC_URL "https://gate.example.com"

/* Text put_text() writes unchanged: valid UTF-8, no control characters, no
 * U+FFFE/U+FFFF, within max bytes. */
static int clean(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max || !cg_utf8_valid(s, n) || strstr(s, "\xef\xbf\xbe") || strstr(s, "\xef\xbf\xbf"))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* s without leading and trailing spaces, as the simulator reads text. */
static int equals_trimmed(const char *got, const char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    return strlen(got) == n && memcmp(got, s, n) == 0;
}

/* Nothing but spaces and control characters, which put_text() drops or the
 * simulator trims. */
static int blank(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s > 0x20 && *s != 0x7f)
            return 0;
    return 1;
}

/* Parses doc and checks its verb kinds against want[0..nwant). */
static void expect(char *doc, const enum sim_twiml_kind *want, size_t nwant, struct sim_twiml *t)
{
    char err[256] = "";
    if (sim_twiml_parse(doc, strlen(doc), t, err, sizeof err) != 0) {
        fprintf(stderr, "document refused: %s\n%s\n", err, doc);
        FZ_CHECK(0);
    }
    FZ_CHECK(t->n == nwant);
    for (size_t i = 0; i < nwant; i++)
        FZ_CHECK(t->verbs[i].kind == want[i]);
    free(doc);
}

/* [Say] then the rest: the kinds a builder with message msg writes. */
static size_t with_say(const char *msg, enum sim_twiml_kind *out, const enum sim_twiml_kind *rest,
                       size_t nrest)
{
    size_t n = 0;
    if (msg[0] != '\0')
        out[n++] = SIM_TW_SAY;
    for (size_t i = 0; i < nrest; i++)
        out[n++] = rest[i];
    return n;
}

static void check_say(const struct sim_twiml *t, const char *msg)
{
    if (msg[0] != '\0' && clean(msg, CG_TWIML_MAX_TEXT))
        FZ_CHECK(equals_trimmed(t->verbs[0].text, msg));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        /* Builders log what they degrade; that is not what is tested. */
        cg_log_set_level(CG_LOG_ERROR);
        quiet = 1;
    }
    struct fz_reader rd;
    fz_reader_init(&rd, data, size);
    char *msg = fz_field(&rd), *value = fz_field(&rd), *voice = fz_field(&rd);
    enum sim_twiml_kind want[4];
    struct sim_twiml t;

    /* Overflow message then hang-up. */
    static const enum sim_twiml_kind hangup[] = {SIM_TW_HANGUP};
    expect(cg_twiml_say_hangup(msg), want, with_say(msg, want, hangup, 1), &t);
    check_say(&t, msg);
    sim_twiml_free(&t);

    /* Hold: announcement then music, or a pause when value is no URL. */
    struct cg_twiml_wait w = {msg, value, (int)(size % 700), voice};
    static const enum sim_twiml_kind play[] = {SIM_TW_PLAY}, pause[] = {SIM_TW_PAUSE};
    int music = value[0] != '\0' && cg_twiml_url_ok(value) == 0;
    expect(cg_twiml_wait(&w), want, with_say(msg, want, music ? play : pause, 1), &t);
    check_say(&t, msg);
    if (music)
        FZ_CHECK(strcmp(t.verbs[t.n - 1].text, value) == 0);
    sim_twiml_free(&t);

    /* Dial, or hang-up when value is no usable number. A blank number (only
     * spaces and control characters) is written as given: the config only
     * lets E.164 numbers through, so the builder does not look for it, and
     * the document is well-formed TwiML that the simulator refuses as such. */
    static const enum sim_twiml_kind dial[] = {SIM_TW_DIAL};
    int dials = value[0] != '\0' && strlen(value) <= CG_TWIML_MAX_NUMBER;
    if (dials && blank(value)) {
        char *doc = cg_twiml_dial(msg, value);
        char err[256] = "";
        FZ_CHECK(sim_twiml_parse(doc, strlen(doc), &t, err, sizeof err) != 0);
        FZ_CHECK(strstr(err, "<Dial> needs a number") != NULL);
        free(doc);
    } else {
        expect(cg_twiml_dial(msg, value), want, with_say(msg, want, dials ? dial : hangup, 1), &t);
        if (dials && clean(value, CG_TWIML_MAX_NUMBER))
            FZ_CHECK(equals_trimmed(t.verbs[t.n - 1].text, value));
        sim_twiml_free(&t);
    }

    /* Voicemail, or hang-up when value is no usable action URL. */
    static const enum sim_twiml_kind record[] = {SIM_TW_RECORD, SIM_TW_HANGUP};
    int records = cg_twiml_url_ok(value) == 0;
    expect(cg_twiml_record(msg, value, (int)size - 300), want,
           with_say(msg, want, records ? record : hangup, records ? 2 : 1), &t);
    if (records)
        FZ_CHECK(strcmp(t.verbs[t.n - 2].action, value) == 0);
    sim_twiml_free(&t);

    /* Enqueue: Twilio refuses names outside 1-63 characters (TwiML errors
     * 14204/14205, the config's job); those must still be well-formed XML,
     * which the simulator reports as a queue name error, not a syntax one. */
    char *doc = cg_twiml_enqueue(PUBLIC_URL, value);
    char err[256] = "";
    if (sim_twiml_parse(doc, strlen(doc), &t, err, sizeof err) == 0) {
        FZ_CHECK(t.n == 1 && t.verbs[0].kind == SIM_TW_ENQUEUE);
        FZ_CHECK(strcmp(t.verbs[0].action, PUBLIC_URL "/queue-exit") == 0);
        if (clean(value, SIM_TWIML_MAX_QUEUE_NAME))
            FZ_CHECK(equals_trimmed(t.verbs[0].text, value));
        sim_twiml_free(&t);
    } else {
        FZ_CHECK(strstr(err, "Queue name too") != NULL);
    }
    free(doc);

    free(voice);
    free(value);
    free(msg);
    return 0;
}
