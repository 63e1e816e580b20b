/*
 * twiml.h - TwiML documents callgate answers Twilio with, and the spoken
 * phrases of the hold announcement.
 *
 * Injection: every caller- or operator-controlled value (queue name, Say
 * text, phone number, URL, voice) is written as XML text or as a quoted
 * attribute value with & < > " ' escaped, control characters dropped and
 * invalid UTF-8 replaced with U+FFFD, so no value can add an element or an
 * attribute, and the document is always well-formed XML 1.0.
 *
 * Ownership: every builder returns a malloc'd NUL-terminated document
 * starting with the XML declaration, never NULL; the caller frees it with
 * free(). Bad input never fails a builder: it degrades to a safe document
 * (documented per function) and is logged, because Twilio plays "an
 * application error has occurred" on anything but valid TwiML.
 *
 * Bounds: Say text longer than CG_TWIML_MAX_TEXT bytes is cut at a
 * character boundary (logged); URLs longer than CG_TWIML_MAX_URL fail
 * cg_twiml_url_ok().
 */
#ifndef CG_TWIML_H
#define CG_TWIML_H

#include <stddef.h>

#define CG_TWIML_MAX_TEXT   4000 /* bytes of one <Say> (Twilio's limit is 4096 characters) */
#define CG_TWIML_MAX_URL    2048
#define CG_TWIML_MAX_NUMBER 256 /* E.164 numbers, SIP URIs, client names */
#define CG_TWIML_MAX_PAUSE  600 /* seconds; keeps position updates coming */

/* <Response><Enqueue action="{public}/queue-exit" method="POST"
 * waitUrl="{public}/queue-wait" waitUrlMethod="POST">{name}</Enqueue></Response>
 * public_url has no trailing slash (config normalises it). If it fails
 * cg_twiml_url_ok() the attributes are omitted (logged): Twilio then holds
 * the caller with its default music, and admission still works because it
 * redirects calls by CallSid. Keeping the name within Twilio's 64 characters
 * is the config's job. */
char *cg_twiml_enqueue(const char *public_url, const char *queue_name);

struct cg_twiml_wait {
    const char *say;            /* NULL or "": no announcement */
    const char *hold_music_url; /* NULL, "" or not http(s): <Pause length="pause_s"/> */
    int pause_s;                /* clamped to [1, CG_TWIML_MAX_PAUSE] */
    const char *voice;          /* <Say voice=".."> attribute; NULL or "": none */
};
/* <Response>[<Say>..</Say>]<Play>url</Play> | <Pause length="N"/></Response>
 * The waitUrl answer: Twilio re-requests the waitUrl when it runs out of
 * verbs, which refreshes the announcement. */
char *cg_twiml_wait(const struct cg_twiml_wait *w);

/* A keypad offer in the hold answer (a callback). */
struct cg_twiml_offer {
    const char *text;       /* said after the announcement, with its voice */
    const char *action_url; /* where Twilio posts the digit */
    int timeout_s;          /* seconds to wait for the key after the offer; clamped to [1, 30] */
    int keyed;              /* 0: one key (numDigits="1"); 1: keys up to # (finishOnKey="#"),
                               a number keyed on the phone */
};
/* cg_twiml_wait with the announcement and the offer inside a <Gather>:
 * <Response><Gather input="dtmf" numDigits="1" (keyed: finishOnKey="#")
 * timeout="T" action="url" method="POST">[<Say>..</Say>]<Say>offer</Say>
 * </Gather><Play>|<Pause></Response>. A key pressed during either goes to the action; without one
 * the hold music follows as usual. NULL o, an empty text or an action_url
 * failing cg_twiml_url_ok() (logged) give cg_twiml_wait(w). */
char *cg_twiml_wait_offer(const struct cg_twiml_wait *w, const struct cg_twiml_offer *o);
/* <Response><Leave/></Response> */
char *cg_twiml_leave(void);
/* <Response/> */
char *cg_twiml_empty(void);
/* <Response><Say>m</Say><Hangup/></Response>; no <Say> when m is NULL or "". */
char *cg_twiml_say_hangup(const char *message);
/* <Response>[<Say>m</Say>]<Leave/></Response>: a waitUrl answer that says
 * m, then takes the caller out of the queue (on to the Enqueue action). */
char *cg_twiml_say_leave(const char *message);
/* <Response>[<Say>m</Say>]<Dial>number</Dial></Response>. A NULL, empty or
 * over-long number gives cg_twiml_say_hangup(message) (logged). */
char *cg_twiml_dial(const char *message, const char *number);
/* <Response>[<Say>m</Say>]<Record action=".." maxLength="N"/><Hangup/></Response>
 * max_length_s is clamped to [1, 14400]. Without a valid action URL Twilio
 * would re-request the current document and loop, so a bad action_url gives
 * cg_twiml_say_hangup(message) (logged). */
char *cg_twiml_record(const char *message, const char *action_url, int max_length_s);

/* 0 when url is usable in an attribute: http:// or https:// (any case), a
 * non-empty host, at most CG_TWIML_MAX_URL bytes, printable ASCII without
 * space, '"', '<', '>', '\\', '{', '}', '|', '^', '`'. -1 otherwise (NULL too). */
int cg_twiml_url_ok(const char *url);

/* "You are caller number 3 in line." / "You are next in line." for a
 * position <= 1. out is always NUL-terminated when n > 0. */
void cg_twiml_position_phrase(long position, char *out, size_t n);
/* Spoken wait bucket: < 60 s "less than a minute"; < 90 s "about 1 minute";
 * then "about N minutes" to the nearest minute up to 10, to the nearest 5
 * up to 55; "about 1 hour" up to 90 minutes; beyond, "more than an hour".
 * Never "0": negative and NaN read "less than a minute". */
void cg_twiml_wait_phrase(double seconds, char *out, size_t n);

/* ---- transfers (call control) ---- */

/* Twilio refuses a Calls update whose Twiml is longer than this (32018). */
#define CG_TWIML_UPDATE_MAX 4000
/* Bytes of the message said before a transfer (cut at a character). */
#define CG_TWIML_TRANSFER_MAX_SAY 1000

struct cg_twiml_transfer {
    const char *message;    /* said first; NULL or "": nothing */
    const char *number;     /* a phone number, or */
    const char *sip_uri;    /* a SIP URI (wins when both are set) */
    const char *extension;  /* number only: digits sent once answered, or NULL */
    const char *caller_id;  /* <Dial callerId>, or NULL */
    const char *action_url; /* <Dial action> (method POST), or NULL */
};
/* <Response>[<Say>m</Say>]<Dial [action method] [callerId]><Number
 * [sendDigits="ww<ext>"]>n</Number> | <Sip>uri</Sip></Dial></Response>.
 * Unlike the builders above it refuses rather than degrades: NULL when the
 * destination is missing or longer than CG_TWIML_MAX_NUMBER, the action is
 * not a usable URL, or the document would exceed CG_TWIML_UPDATE_MAX.
 * Otherwise malloc'd; the caller frees it. */
char *cg_twiml_transfer_dial(const struct cg_twiml_transfer *t);

struct cg_twiml_task {
    const char *message;      /* said first; NULL or "": nothing */
    const char *workflow_sid; /* required */
    const char *wait_url;     /* NULL: Twilio's default hold music */
    const char *action_url;   /* NULL: none */
    const char *task_json;    /* the task's attributes (escaped as text); NULL: {} */
};
/* <Response>[<Say>m</Say>]<Enqueue workflowSid=".." [waitUrl ..
 * waitUrlMethod="POST"] [action .. method="POST"]><Task>json</Task>
 * </Enqueue></Response>. NULL as cg_twiml_transfer_dial. */
char *cg_twiml_enqueue_task(const struct cg_twiml_task *t);

#endif
