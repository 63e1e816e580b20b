/*
 * http_parse.h - the HTTP/1.1 request parser of the inbound server
 * (net/httpd.c): request line, header section, message framing (RFC 9112)
 * and the chunked transfer coding. No I/O and no allocation: it reads bytes
 * the caller holds and reports offsets into them.
 *
 * It is strict where two HTTP implementations could read the same bytes
 * differently (request smuggling): a bare LF as a line end, obs-fold, NUL,
 * CR or another control character in a field value, a field name that is
 * not a token or is followed by whitespace, Content-Length that is not
 * plain digits or appears twice, Content-Length with Transfer-Encoding,
 * Transfer-Encoding on HTTP/1.0 or not ending in chunked, chunk sizes with
 * anything but hex digits (chunk extensions and trailers are accepted and
 * ignored), and a missing, repeated or malformed Host on HTTP/1.1. Each
 * refusal comes with the status to answer (400, 413, 417, 431, 501) and a
 * short reason for people; the connection is then to be closed.
 *
 * Ownership. Nothing is allocated; offsets refer to the caller's buffer,
 * which must stay put while they are used.
 */
#ifndef CG_HTTP_PARSE_H
#define CG_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "net/httpd.h"

/* At most this many header fields; more get 431. */
#define CG_HP_MAX_FIELDS 100

/* Scanning for the end of a head, kept between calls so that bytes that
 * arrive a few at a time are looked at once. Zero it for a new head. */
struct cg_hp_scan {
    size_t pos;        /* next byte to look at */
    size_t line_start; /* first byte of the current line */
    int seen_line;     /* a non-empty line (the request line) was seen */
};

/* Returns the length of the head (through the blank line ending it) once
 * buf[0..len) holds all of it, 0 while more is needed, or -1 when a line
 * ends in a bare LF. */
long cg_hp_head_end(struct cg_hp_scan *s, const char *buf, size_t len);

struct cg_hp_span {
    uint32_t off, len;
};

struct cg_hp_field {
    struct cg_hp_span name, value; /* value without surrounding whitespace */
};

enum cg_hp_body { CG_HP_BODY_NONE, CG_HP_BODY_LENGTH, CG_HP_BODY_CHUNKED };

struct cg_hp_request {
    enum cg_http_method method;
    struct cg_hp_span method_name, target;
    int minor; /* HTTP/1.<minor>: 0 or 1 */
    size_t nfields;
    struct cg_hp_field fields[CG_HP_MAX_FIELDS];
    size_t field_bytes; /* names plus values */
    enum cg_hp_body body;
    uint64_t content_length;
    int keep_alive;      /* the connection may carry another request */
    int expect_continue; /* "Expect: 100-continue" */
};

/* Parses a complete head (len as cg_hp_head_end() returned it). Returns 0,
 * or the status to answer with *why set. max_field_bytes bounds the names
 * plus values (431 beyond). */
int cg_hp_parse_head(const char *buf, size_t len, size_t max_field_bytes, struct cg_hp_request *rq,
                     const char **why);

/* The chunked transfer coding, decoded in place: bytes of chunk data are
 * moved down over the framing in front of them. Zero it for a new body. */
struct cg_hp_chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t in;          /* raw bytes consumed */
    size_t out;         /* data bytes decoded (at the start of the buffer) */
    size_t line;        /* bytes of the current size or trailer line */
    size_t trailer;     /* bytes of the trailer section */
    int digits;         /* significant hex digits of the size */
    int ws;             /* whitespace just seen in a chunk extension */
};

/* Decodes buf[st->in..len) (buf is the start of the body). Returns 1 when
 * the body ended (st->in raw bytes were the body, st->out decoded bytes are
 * at buf[0..out)), 0 when more bytes are needed, or a status with *why:
 * 400 (malformed), 413 (data beyond max_body), 431 (trailers beyond
 * max_trailer). */
int cg_hp_chunked(struct cg_hp_chunked *st, char *buf, size_t len, size_t max_body,
                  size_t max_trailer, const char **why);

/* Case-insensitive search of a comma-separated list of tokens (a
 * Connection value) for one token. */
int cg_hp_list_has(const char *list, size_t len, const char *token);

#endif
