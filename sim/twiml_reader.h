/*
 * twiml.h - a small, strict, non-validating XML parser for the TwiML subset
 * the simulated Twilio voice engine executes.
 *
 * Pure function of its input, no I/O: a fuzz target. The document is
 * parsed into a flat list of verbs (the children of <Response>), each with
 * the attributes the engine needs already checked and converted.
 *
 * XML accepted: an optional UTF-8 byte order mark, an optional
 * <?xml ...?> declaration, comments anywhere outside tags, CDATA sections
 * inside elements, one root element, attributes in single or double
 * quotes, self-closing tags, the five predefined entities and numeric
 * character references. Refused: DOCTYPE and other processing
 * instructions, NUL bytes, text outside the root, a second root, unclosed
 * or mismatched tags, duplicate attributes, '<' in attribute values, an
 * unknown or malformed entity.
 *
 * TwiML accepted: <Response> containing Say, Play, Pause, Redirect, Leave,
 * Hangup, Enqueue (a named queue, or workflowSid with an optional <Task>),
 * Connect (with one <Stream>), Dial (number text, <Number> or <Sip>), Record, Gather (a pause; its
 * nested Say/Play/Pause are flattened in front of it, which is what the caller hears when they
 * press nothing) and Reject. Unknown verbs, nouns in the wrong place, non-space text where no text
 * belongs and bad attribute values are errors. Unknown attributes are ignored, as Twilio does.
 *
 * Limits: input <= SIM_TWIML_MAX_BYTES, element depth <= SIM_TWIML_MAX_DEPTH,
 * verbs <= SIM_TWIML_MAX_VERBS.
 */
#ifndef SIM_TWIML_H
#define SIM_TWIML_H

#include <stddef.h>

#define SIM_TWIML_MAX_BYTES 65536
#define SIM_TWIML_MAX_DEPTH 8
#define SIM_TWIML_MAX_VERBS 256
/* Twilio: the queue name must be under 64 characters (14205). */
#define SIM_TWIML_MAX_QUEUE_NAME 63

enum sim_twiml_kind {
    SIM_TW_SAY,
    SIM_TW_PLAY,
    SIM_TW_PAUSE,
    SIM_TW_REDIRECT,
    SIM_TW_LEAVE,
    SIM_TW_HANGUP,
    SIM_TW_ENQUEUE,
    SIM_TW_CONNECT_STREAM,
    SIM_TW_DIAL,
    SIM_TW_RECORD,
    SIM_TW_GATHER,
    SIM_TW_REJECT,
};

/* Strings are NUL-terminated, entity-decoded and owned by the document;
 * NULL means the attribute or text is absent. */
struct sim_twiml_verb {
    enum sim_twiml_kind kind;
    /* Say: the spoken text (all descendant text, SSML markup dropped; a
     * parent's text comes before its children's, as only the length is
     * used); Play: the media URL;
     * Redirect: the URL; Enqueue: the queue name (trimmed); Dial: the
     * number (trimmed, from the text or the <Number> noun); Connect: the
     * <Stream> url attribute. */
    char *text;
    /* Enqueue, Dial, Record, Gather, Connect: the action URL. */
    char *action;
    /* Upper-case "GET" or "POST": Redirect's and action's method; defaults
     * to "POST". */
    const char *method;
    /* Enqueue only. wait_url NULL: no waitUrl attribute (Twilio's default
     * hold music); "": silence. */
    char *wait_url;
    const char *wait_url_method; /* "GET" or "POST"; default "POST" */
    int max_queue_size;          /* Enqueue maxQueueSize, or -1 */
    /* Say and Play: repetitions (0 means Twilio's "until hung up", which
     * the engine caps). */
    int loop;
    /* Pause: length (default 1); Record: maxLength (default 3600); Gather:
     * timeout (default 5). Seconds. */
    double seconds;
    /* Reject: the reason attribute ("rejected" or "busy"). */
    const char *reason;
    /* Dial: the destination is a <Sip> URI (in text), not a number. */
    int sip;
    /* Enqueue into TaskRouter: the workflowSid attribute (text is then the
     * <Task> attributes, trimmed; "" when there is no <Task>); NULL for a
     * named queue. */
    char *workflow_sid;
};

struct sim_twiml {
    struct sim_twiml_verb *verbs;
    size_t n;
};

/* Parses len bytes of xml. Returns 0 with *out filled, or -1 with *out
 * empty and err holding a one-line description (NUL-terminated, truncated to
 * errlen). err may be NULL. */
int sim_twiml_parse(const char *xml, size_t len, struct sim_twiml *out, char *err, size_t errlen);
/* Frees the verbs; *t becomes empty. Safe on an empty or zeroed document. */
void sim_twiml_free(struct sim_twiml *t);
/* "Say", "Play", ... */
const char *sim_twiml_kind_name(enum sim_twiml_kind kind);

#endif
