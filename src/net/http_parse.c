#include "base/fmacros.h"

#include "net/http_parse.h"

#include <string.h>
#include <strings.h>

/*
 * Character classes, one table lookup per byte (RFC 9110 section 5.6.2 and
 * RFC 9112):
 *   TOKEN  tchar: field names, methods, codings, chunk extension names
 *   FV     field-vchar: VCHAR or obs-text (a field value, SP/HTAB aside)
 *   WS     SP or HTAB
 *   TGT    VCHAR: the request-target
 *   HEX    HEXDIG
 *   QD     qdtext: inside a quoted string
 *   HOST   what a Host value is made of (reg-name, IP literal, port)
 * NUL, CR, LF and the other controls belong to no class.
 */
enum { TOKEN = 1, FV = 2, WS = 4, TGT = 8, HEX = 16, QD = 32, HOST = 64 };

/* clang-format off */
static const unsigned char cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10 */
    0x24, 0x6b, 0x0a, 0x2b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6a, 0x6a, 0x6b, 0x6b, 0x6a, 0x6b, 0x6b, 0x2a, /* 20 */
    0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x6a, 0x6a, 0x2a, 0x6a, 0x2a, 0x2a, /* 30 */
    0x2a, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, /* 40 */
    0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6a, 0x0a, 0x6a, 0x2b, 0x6b, /* 50 */
    0x2b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, /* 60 */
    0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x2a, 0x2b, 0x2a, 0x6b, 0x00, /* 70 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 80 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 90 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* a0 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* b0 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* c0 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* d0 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* e0 */
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* f0 */
};
/* clang-format on */

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

/* Methods the router knows; any other token gets 501. */
static const struct {
    const char *name;
    size_t len;
    enum cg_http_method m;
} methods[] = {
    {"GET", 3, CG_HTTP_GET},     {"POST", 4, CG_HTTP_POST},     {"HEAD", 4, CG_HTTP_HEAD},
    {"PUT", 3, CG_HTTP_PUT},     {"DELETE", 6, CG_HTTP_DELETE}, {"OPTIONS", 7, CG_HTTP_OPTIONS},
    {"PATCH", 5, CG_HTTP_PATCH}, {"TRACE", 5, CG_HTTP_OTHER},   {"CONNECT", 7, CG_HTTP_OTHER},
};

long cg_hp_head_end(struct cg_hp_scan *s, const char *buf, size_t len)
{
    while (s->pos < len) {
        const char *lf = memchr(buf + s->pos, '\n', len - s->pos);
        if (lf == NULL) {
            s->pos = len;
            return 0;
        }
        size_t i = (size_t)(lf - buf);
        if (i == s->line_start || buf[i - 1] != '\r')
            return -1;
        int empty = i - s->line_start == 1;
        s->pos = s->line_start = i + 1;
        if (!empty)
            s->seen_line = 1;
        else if (s->seen_line)
            return (long)(i + 1);
        /* An empty line before the request line is skipped (RFC 9112
         * section 2.2). */
    }
    return 0;
}

static int fail(const char **why, const char *msg, int status)
{
    *why = msg;
    return status;
}

static int span_is(const char *buf, struct cg_hp_span sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp.len == n && strncasecmp(buf + sp.off, lit, n) == 0;
}

/* Content-Length: 1*DIGIT, at most 18 of them (beyond any limit). */
static int parse_length(const char *p, size_t n, uint64_t *out)
{
    if (n == 0 || n > 18)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Host = uri-host [ ":" port ]: an IP literal in brackets or reg-name /
 * IPv4 characters, then digits. Empty is allowed (RFC 9112 section 3.2). */
static int valid_host(const char *p, size_t n)
{
    size_t i = 0;
    if (n > 0 && p[0] == '[') {
        while (i < n && p[i] != ']')
            i++;
        if (i == n || i < 3)
            return 0;
        for (size_t j = 1; j < i; j++)
            if (!IS(p[j], HOST) || p[j] == '[' || p[j] == '%')
                return 0;
        i++;
    } else {
        while (i < n && p[i] != ':') {
            if (!IS(p[i], HOST) || p[i] == '[' || p[i] == ']')
                return 0;
            i++;
        }
    }
    if (i == n)
        return 1;
    if (p[i] != ':' || n - i - 1 > 5)
        return 0;
    for (i++; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* Iterates a comma-separated list: the next element (trimmed, possibly
 * empty) in [*s, *e); returns 0 at the end. */
static int list_next(const char *p, size_t n, size_t *pos, size_t *s, size_t *e)
{
    if (*pos > n)
        return 0;
    size_t i = *pos;
    while (i < n && IS(p[i], WS))
        i++;
    size_t start = i;
    while (i < n && p[i] != ',')
        i++;
    size_t end = i;
    while (end > start && IS(p[end - 1], WS))
        end--;
    *s = start;
    *e = end;
    *pos = i + 1;
    return 1;
}

static int all_token(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!IS(p[i], TOKEN))
            return 0;
    return 1;
}

int cg_hp_list_has(const char *list, size_t len, const char *token)
{
    size_t pos = 0, s, e, tl = strlen(token);
    while (list_next(list, len, &pos, &s, &e))
        if (e - s == tl && strncasecmp(list + s, token, tl) == 0)
            return 1;
    return 0;
}

/* Transfer-Encoding, all its fields as one list: the last coding must be
 * chunked and chunked must not come earlier (RFC 9112 section 6.3: 400);
 * a coding before it that callgate does not decode gets 501. */
static int check_te(const char *buf, const struct cg_hp_request *rq, const char **why)
{
    int codings = 0, last_chunked = 0, unknown = 0;
    for (size_t f = 0; f < rq->nfields; f++) {
        const struct cg_hp_field *fd = &rq->fields[f];
        if (!span_is(buf, fd->name, "Transfer-Encoding"))
            continue;
        const char *v = buf + fd->value.off;
        size_t pos = 0, s, e;
        while (list_next(v, fd->value.len, &pos, &s, &e)) {
            if (s == e)
                continue; /* empty elements are ignored (RFC 9110 5.6.1) */
            if (!all_token(v + s, e - s))
                return fail(why, "Transfer-Encoding is malformed", 400);
            if (last_chunked)
                return fail(why, "chunked is not the final Transfer-Encoding", 400);
            codings++;
            if (e - s == 7 && strncasecmp(v + s, "chunked", 7) == 0)
                last_chunked = 1;
            else
                unknown = 1;
        }
    }
    if (codings == 0)
        return fail(why, "Transfer-Encoding is empty", 400);
    if (!last_chunked)
        return fail(why, "chunked is not the final Transfer-Encoding", 400);
    if (unknown)
        return fail(why, "a Transfer-Encoding other than chunked", 501);
    return 0;
}

/* What the fields say about framing and the connection. */
static int check_fields(const char *buf, struct cg_hp_request *rq, const char **why)
{
    int lengths = 0, encodings = 0, hosts = 0, close = 0, keep = 0;
    rq->expect_continue = 0;
    for (size_t f = 0; f < rq->nfields; f++) {
        const struct cg_hp_field *fd = &rq->fields[f];
        const char *v = buf + fd->value.off;
        size_t vl = fd->value.len;
        switch (buf[fd->name.off] | 0x20) {
        case 'c':
            if (span_is(buf, fd->name, "Content-Length")) {
                if (++lengths > 1)
                    return fail(why, "more than one Content-Length", 400);
                if (parse_length(v, vl, &rq->content_length) != 0)
                    return fail(why, "Content-Length is not a number", 400);
            } else if (span_is(buf, fd->name, "Connection")) {
                size_t pos = 0, s, e;
                while (list_next(v, vl, &pos, &s, &e)) {
                    if (s == e)
                        continue;
                    if (!all_token(v + s, e - s))
                        return fail(why, "Connection is malformed", 400);
                    if (e - s == 5 && strncasecmp(v + s, "close", 5) == 0)
                        close = 1;
                    else if (e - s == 10 && strncasecmp(v + s, "keep-alive", 10) == 0)
                        keep = 1;
                }
            }
            break;
        case 't':
            if (span_is(buf, fd->name, "Transfer-Encoding"))
                encodings++;
            break;
        case 'h':
            if (span_is(buf, fd->name, "Host")) {
                if (++hosts > 1)
                    return fail(why, "more than one Host", 400);
                if (!valid_host(v, vl))
                    return fail(why, "Host is malformed", 400);
            }
            break;
        case 'e':
            if (span_is(buf, fd->name, "Expect")) {
                if (vl != 12 || strncasecmp(v, "100-continue", 12) != 0)
                    return fail(why, "unsupported expectation", 417);
                rq->expect_continue = 1;
            }
            break;
        default:
            break;
        }
    }
    if (rq->minor == 1 && hosts == 0)
        return fail(why, "Host is missing", 400);
    rq->body = CG_HP_BODY_NONE;
    if (encodings > 0) {
        if (rq->minor == 0)
            return fail(why, "Transfer-Encoding on HTTP/1.0", 400);
        if (lengths > 0)
            return fail(why, "both Content-Length and Transfer-Encoding", 400);
        int st = check_te(buf, rq, why);
        if (st != 0)
            return st;
        rq->body = CG_HP_BODY_CHUNKED;
    } else if (lengths > 0 && rq->content_length > 0) {
        rq->body = CG_HP_BODY_LENGTH;
    }
    rq->keep_alive = !close && (rq->minor == 1 || keep);
    return 0;
}

int cg_hp_parse_head(const char *buf, size_t len, size_t max_field_bytes, struct cg_hp_request *rq,
                     const char **why)
{
    size_t i = 0;
    /* Empty lines before the request line (cg_hp_head_end allowed them). */
    while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
        i += 2;

    /* request-line = method SP request-target SP HTTP-version CRLF */
    size_t m0 = i;
    while (i < len && IS(buf[i], TOKEN))
        i++;
    if (i == m0 || i >= len || buf[i] != ' ')
        return fail(why, "the request line is malformed", 400);
    rq->method_name.off = (uint32_t)m0;
    rq->method_name.len = (uint32_t)(i - m0);
    size_t t0 = ++i;
    while (i < len && IS(buf[i], TGT))
        i++;
    if (i == t0 || i >= len || buf[i] != ' ')
        return fail(why, "the request line is malformed", 400);
    rq->target.off = (uint32_t)t0;
    rq->target.len = (uint32_t)(i - t0);
    i++;
    if (len - i < 10 || memcmp(buf + i, "HTTP/1.", 7) != 0 ||
        (buf[i + 7] != '0' && buf[i + 7] != '1') || buf[i + 8] != '\r' || buf[i + 9] != '\n')
        return fail(why, "the HTTP version is not supported", 400);
    rq->minor = buf[i + 7] - '0';
    i += 10;

    /* field-line = field-name ":" OWS field-value OWS CRLF */
    rq->nfields = 0;
    rq->field_bytes = 0;
    while (i + 1 < len && !(buf[i] == '\r' && buf[i + 1] == '\n')) {
        if (IS(buf[i], WS))
            return fail(why, "obsolete line folding", 400);
        size_t n0 = i;
        while (i < len && IS(buf[i], TOKEN))
            i++;
        if (i == n0 || i >= len || buf[i] != ':')
            return fail(why, "a header field name is malformed", 400);
        size_t n1 = i++;
        while (i < len && IS(buf[i], WS))
            i++;
        size_t v0 = i, v1 = i;
        while (i < len && IS(buf[i], FV | WS)) {
            if (!IS(buf[i], WS))
                v1 = i + 1;
            i++;
        }
        if (i + 1 >= len || buf[i] != '\r' || buf[i + 1] != '\n')
            return fail(why, "a header field value holds a control character", 400);
        i += 2;
        if (rq->nfields == CG_HP_MAX_FIELDS)
            return fail(why, "too many header fields", 431);
        struct cg_hp_field *fd = &rq->fields[rq->nfields++];
        fd->name.off = (uint32_t)n0;
        fd->name.len = (uint32_t)(n1 - n0);
        fd->value.off = (uint32_t)v0;
        fd->value.len = (uint32_t)(v1 - v0);
        rq->field_bytes += (n1 - n0) + (v1 - v0);
        if (rq->field_bytes > max_field_bytes)
            return fail(why, "request headers are too large", 431);
    }
    if (i + 2 != len)
        return fail(why, "the header section is malformed", 400);

    int st = check_fields(buf, rq, why);
    if (st != 0)
        return st;
    rq->method = CG_HTTP_OTHER;
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        if (rq->method_name.len == methods[k].len &&
            memcmp(buf + rq->method_name.off, methods[k].name, methods[k].len) == 0) {
            rq->method = methods[k].m;
            return 0;
        }
    }
    return fail(why, "method not implemented", 501);
}

/* ---- chunked ---- */

enum {
    C_SIZE0,     /* first hex digit */
    C_SIZE,      /* more hex digits, ';', BWS or CR */
    C_EXT_BWS,   /* whitespace after the size or a value: BWS or ';' */
    C_EXT_NAME0, /* after ';': BWS, then the first name character */
    C_EXT_NAME,  /* name characters, BWS, '=', ';' or CR */
    C_EXT_EQ,    /* after the name and whitespace: '=' or ';' */
    C_EXT_VAL0,  /* after '=': BWS, a token or '"' */
    C_EXT_TOK,   /* token value characters, BWS, ';' or CR */
    C_EXT_QS,    /* inside a quoted value */
    C_EXT_QP,    /* after a backslash in a quoted value */
    C_EXT_QEND,  /* after a quoted value: BWS, ';' or CR */
    C_SIZE_LF,   /* LF ending the size line */
    C_DATA,      /* chunk data */
    C_DATA_CR,   /* CR after the data */
    C_DATA_LF,   /* LF after the data */
    C_TR_LINE,   /* start of a trailer line (or the final CRLF) */
    C_TR_NAME,   /* trailer field name */
    C_TR_VALUE,  /* trailer field value */
    C_TR_LF,     /* LF ending a trailer line */
    C_END_LF,    /* LF of the final CRLF */
};

/* Bytes one size line (size and extensions) may take. */
#define MAX_SIZE_LINE 4096

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

int cg_hp_chunked(struct cg_hp_chunked *st, char *buf, size_t len, size_t max_body,
                  size_t max_trailer, const char **why)
{
    while (st->in < len) {
        if (st->state == C_DATA) {
            size_t n = len - st->in;
            if (n > st->remaining)
                n = (size_t)st->remaining;
            if (st->out != st->in)
                memmove(buf + st->out, buf + st->in, n);
            st->out += n;
            st->in += n;
            st->remaining -= n;
            if (st->remaining == 0)
                st->state = C_DATA_CR;
            continue;
        }
        char c = buf[st->in++];
        if (st->state <= C_SIZE_LF && ++st->line > MAX_SIZE_LINE)
            return fail(why, "a chunk size line is too long", 400);
        switch (st->state) {
        case C_SIZE0:
            if (!IS(c, HEX))
                return fail(why, "a chunk size is malformed", 400);
            st->remaining = (uint64_t)hexval(c);
            st->digits = st->remaining != 0;
            st->state = C_SIZE;
            break;
        case C_SIZE:
            if (IS(c, HEX)) {
                if (st->digits > 0 || c != '0')
                    st->digits++;
                if (st->digits > 15)
                    return fail(why, "a chunk is larger than the body limit", 413);
                st->remaining = st->remaining * 16 + (uint64_t)hexval(c);
            } else if (c == ';') {
                st->state = C_EXT_NAME0;
            } else if (IS(c, WS)) {
                st->state = C_EXT_BWS;
            } else if (c == '\r') {
                st->state = C_SIZE_LF;
            } else {
                return fail(why, "a chunk size is malformed", 400);
            }
            if (st->remaining > max_body - st->out)
                return fail(why, "a chunk is larger than the body limit", 413);
            break;
        case C_EXT_BWS:
            if (c == ';')
                st->state = C_EXT_NAME0;
            else if (!IS(c, WS))
                return fail(why, "a chunk size is malformed", 400);
            break;
        case C_EXT_NAME0:
            if (IS(c, TOKEN))
                st->state = C_EXT_NAME;
            else if (!IS(c, WS))
                return fail(why, "a chunk extension is malformed", 400);
            break;
        case C_EXT_NAME:
        case C_EXT_EQ:
            if (IS(c, TOKEN) && st->state == C_EXT_NAME)
                break;
            if (IS(c, WS))
                st->state = C_EXT_EQ;
            else if (c == '=')
                st->state = C_EXT_VAL0;
            else if (c == ';')
                st->state = C_EXT_NAME0;
            else if (c == '\r' && st->state == C_EXT_NAME)
                st->state = C_SIZE_LF;
            else
                return fail(why, "a chunk extension is malformed", 400);
            break;
        case C_EXT_VAL0:
            if (c == '"')
                st->state = C_EXT_QS;
            else if (IS(c, TOKEN))
                st->state = C_EXT_TOK;
            else if (!IS(c, WS))
                return fail(why, "a chunk extension is malformed", 400);
            break;
        case C_EXT_TOK:
        case C_EXT_QEND:
            if (IS(c, TOKEN) && st->state == C_EXT_TOK)
                break;
            if (IS(c, WS))
                st->state = C_EXT_BWS;
            else if (c == ';')
                st->state = C_EXT_NAME0;
            else if (c == '\r')
                st->state = C_SIZE_LF;
            else
                return fail(why, "a chunk extension is malformed", 400);
            break;
        case C_EXT_QS:
            if (c == '"')
                st->state = C_EXT_QEND;
            else if (c == '\\')
                st->state = C_EXT_QP;
            else if (!IS(c, QD))
                return fail(why, "a chunk extension is malformed", 400);
            break;
        case C_EXT_QP:
            if (!IS(c, FV | WS))
                return fail(why, "a chunk extension is malformed", 400);
            st->state = C_EXT_QS;
            break;
        case C_SIZE_LF:
            if (c != '\n')
                return fail(why, "a chunk size line does not end in CRLF", 400);
            st->line = 0;
            st->digits = 0;
            st->state = st->remaining > 0 ? C_DATA : C_TR_LINE;
            break;
        case C_DATA_CR:
            if (c != '\r')
                return fail(why, "chunk data is longer than its size", 400);
            st->state = C_DATA_LF;
            break;
        case C_DATA_LF:
            if (c != '\n')
                return fail(why, "chunk data does not end in CRLF", 400);
            st->state = C_SIZE0;
            break;
        case C_TR_LINE:
            if (c == '\r') {
                st->state = C_END_LF;
                break;
            }
            if (!IS(c, TOKEN))
                return fail(why, "a trailer field is malformed", 400);
            st->state = C_TR_NAME;
            break;
        case C_TR_NAME:
            if (c == ':')
                st->state = C_TR_VALUE;
            else if (!IS(c, TOKEN))
                return fail(why, "a trailer field is malformed", 400);
            break;
        case C_TR_VALUE:
            if (c == '\r')
                st->state = C_TR_LF;
            else if (!IS(c, FV | WS))
                return fail(why, "a trailer field value holds a control character", 400);
            break;
        case C_TR_LF:
            if (c != '\n')
                return fail(why, "a trailer line does not end in CRLF", 400);
            st->state = C_TR_LINE;
            break;
        case C_END_LF:
            if (c != '\n')
                return fail(why, "the chunked body does not end in CRLF", 400);
            return 1;
        default:
            return fail(why, "chunked decoder state", 400);
        }
        if (st->state >= C_TR_LINE && ++st->trailer > max_trailer)
            return fail(why, "trailer fields are too large", 431);
    }
    return 0;
}
