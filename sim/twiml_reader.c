/*
 * twiml.c - TwiML parser: bytes -> element tree (generic, strict XML
 * subset) -> verb list (TwiML rules). Two stages keep the XML rules and the
 * TwiML rules apart, and the tree is small (bounded depth and node count).
 */
#include "base/fmacros.h"

#include "twiml_reader.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/utf8.h"

/* Enough for any real TwiML document; bounds the tree's memory together
 * with SIM_TWIML_MAX_BYTES. */
#define MAX_NODES 2048
#define MAX_ATTRS 32

struct xattr {
    char *name;
    char *value;
};

struct xnode {
    char *name;
    size_t offset; /* of the '<', for messages */
    struct xattr attrs[MAX_ATTRS];
    size_t nattrs;
    struct xnode **kids;
    size_t nkids, kcap;
    char *text; /* direct text content, decoded; NULL when none */
    size_t text_len, text_cap;
};

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    size_t nodes;
    char *err;
    size_t errlen;
    int failed;
};

/* ---- errors ---- */

static void where(const char *s, size_t pos, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

__attribute__((format(printf, 3, 4))) static void fail_at(struct parser *p, size_t pos,
                                                          const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (!p->err || p->errlen == 0)
        return;
    size_t line, col;
    where(p->s, pos < p->len ? pos : p->len, &line, &col);
    int n = snprintf(p->err, p->errlen, "line %zu col %zu: ", line, col);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- tree ---- */

static void node_free(struct xnode *n)
{
    if (!n)
        return;
    free(n->name);
    for (size_t i = 0; i < n->nattrs; i++) {
        free(n->attrs[i].name);
        free(n->attrs[i].value);
    }
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static void text_append(struct xnode *n, const char *s, size_t len)
{
    if (len == 0)
        return;
    if (n->text_len + len + 1 > n->text_cap) {
        size_t cap = n->text_cap ? n->text_cap : 32;
        while (cap < n->text_len + len + 1)
            cap *= 2;
        n->text = cg_realloc(n->text, cap);
        n->text_cap = cap;
    }
    memcpy(n->text + n->text_len, s, len);
    n->text_len += len;
    n->text[n->text_len] = '\0';
}

static void kid_append(struct xnode *n, struct xnode *kid)
{
    if (n->nkids == n->kcap) {
        size_t cap = n->kcap ? n->kcap * 2 : 4;
        n->kids = cg_realloc(n->kids, cap * sizeof(*n->kids));
        n->kcap = cap;
    }
    n->kids[n->nkids++] = kid;
}

static const char *attr_get(const struct xnode *n, const char *name)
{
    for (size_t i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return n->attrs[i].value;
    return NULL;
}

/* ---- lexing ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int at(const struct parser *p, const char *lit)
{
    size_t n = strlen(lit);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0;
}

static void skip_space(struct parser *p)
{
    while (p->pos < p->len && is_space(p->s[p->pos]))
        p->pos++;
}

/* Reads a name at pos into a new string, or fails. */
static char *read_name(struct parser *p)
{
    size_t start = p->pos;
    if (p->pos >= p->len || !is_name_start(p->s[p->pos])) {
        fail_at(p, p->pos, "expected a name");
        return NULL;
    }
    while (p->pos < p->len && is_name_char(p->s[p->pos]))
        p->pos++;
    return cg_strndup(p->s + start, p->pos - start);
}

/* Appends the UTF-8 encoding of code point cp (already validated). */
static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* XML 1.0 Char production. */
static int valid_xml_char(unsigned long cp)
{
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
           (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* Decodes the entity at p->pos ('&') and appends it to n. */
static int read_entity(struct parser *p, struct xnode *n)
{
    size_t start = p->pos;
    size_t end = start + 1;
    /* The longest legal reference is "&#x10FFFF;" (10 bytes); allow leading
     * zeros up to a small bound. */
    while (end < p->len && end - start < 16 && p->s[end] != ';')
        end++;
    if (end >= p->len || p->s[end] != ';') {
        fail_at(p, start, "malformed entity reference");
        return -1;
    }
    const char *e = p->s + start + 1;
    size_t elen = end - start - 1;
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        if (elen == strlen(named[i].name) && memcmp(e, named[i].name, elen) == 0) {
            text_append(n, &named[i].c, 1);
            p->pos = end + 1;
            return 0;
        }
    }
    if (elen >= 1 && e[0] == '#') {
        int hex = elen > 1 && e[1] == 'x';
        size_t i = hex ? 2 : 1;
        if (i >= elen) {
            fail_at(p, start, "malformed character reference");
            return -1;
        }
        unsigned long cp = 0;
        for (; i < elen; i++) {
            char c = e[i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else {
                fail_at(p, start, "malformed character reference");
                return -1;
            }
            cp = cp * (hex ? 16 : 10) + (unsigned long)d;
            if (cp > 0x10FFFF) {
                fail_at(p, start, "character reference out of range");
                return -1;
            }
        }
        if (!valid_xml_char(cp)) {
            fail_at(p, start, "character reference to an invalid character");
            return -1;
        }
        char buf[4];
        text_append(n, buf, utf8_encode(cp, buf));
        p->pos = end + 1;
        return 0;
    }
    fail_at(p, start, "unknown entity &%.*s;", (int)elen, e);
    return -1;
}

/* Appends raw character data [pos, stop) to n, decoding entities. Control
 * characters other than tab, CR and LF are not XML. */
static int read_chars(struct parser *p, struct xnode *n, char stop, int in_attr)
{
    while (p->pos < p->len && p->s[p->pos] != stop) {
        char c = p->s[p->pos];
        if (c == '&') {
            if (read_entity(p, n) < 0)
                return -1;
            continue;
        }
        if (in_attr && c == '<') {
            fail_at(p, p->pos, "'<' in an attribute value");
            return -1;
        }
        if ((unsigned char)c < 0x20 && !is_space(c)) {
            fail_at(p, p->pos, "control character");
            return -1;
        }
        size_t run = p->pos;
        while (run < p->len && p->s[run] != stop && p->s[run] != '&' && p->s[run] != '<' &&
               ((unsigned char)p->s[run] >= 0x20 || is_space(p->s[run])))
            run++;
        if (run == p->pos) {
            /* '<' outside attributes is the caller's stop. */
            break;
        }
        text_append(n, p->s + p->pos, run - p->pos);
        p->pos = run;
    }
    return 0;
}

static int skip_comment(struct parser *p)
{
    size_t start = p->pos;
    p->pos += 4; /* "<!--" */
    while (p->pos + 3 <= p->len) {
        if (memcmp(p->s + p->pos, "-->", 3) == 0) {
            p->pos += 3;
            return 0;
        }
        p->pos++;
    }
    fail_at(p, start, "unterminated comment");
    return -1;
}

/* Whitespace, comments; refuses DOCTYPE and processing instructions. */
static int skip_misc(struct parser *p)
{
    for (;;) {
        skip_space(p);
        if (at(p, "<!--")) {
            if (skip_comment(p) < 0)
                return -1;
            continue;
        }
        if (at(p, "<?")) {
            fail_at(p, p->pos, "processing instruction not allowed here");
            return -1;
        }
        if (at(p, "<!")) {
            fail_at(p, p->pos, "DOCTYPE and declarations are not allowed");
            return -1;
        }
        return 0;
    }
}

static struct xnode *read_element(struct parser *p, int depth);

static int read_attrs(struct parser *p, struct xnode *n, int *self_closing)
{
    for (;;) {
        size_t before = p->pos;
        skip_space(p);
        if (p->pos >= p->len) {
            fail_at(p, n->offset, "unclosed start tag <%s>", n->name);
            return -1;
        }
        if (at(p, "/>")) {
            p->pos += 2;
            *self_closing = 1;
            return 0;
        }
        if (p->s[p->pos] == '>') {
            p->pos++;
            *self_closing = 0;
            return 0;
        }
        if (p->pos == before) {
            fail_at(p, p->pos, "expected whitespace before an attribute");
            return -1;
        }
        size_t aoff = p->pos;
        char *name = read_name(p);
        if (!name)
            return -1;
        if (attr_get(n, name)) {
            fail_at(p, aoff, "duplicate attribute %s", name);
            free(name);
            return -1;
        }
        if (n->nattrs == MAX_ATTRS) {
            fail_at(p, aoff, "too many attributes");
            free(name);
            return -1;
        }
        skip_space(p);
        if (p->pos >= p->len || p->s[p->pos] != '=') {
            fail_at(p, p->pos, "expected '=' after attribute %s", name);
            free(name);
            return -1;
        }
        p->pos++;
        skip_space(p);
        if (p->pos >= p->len || (p->s[p->pos] != '"' && p->s[p->pos] != '\'')) {
            fail_at(p, p->pos, "attribute %s: value must be quoted", name);
            free(name);
            return -1;
        }
        char q = p->s[p->pos++];
        /* Decode into a scratch node's text, then take it. */
        struct xnode scratch;
        memset(&scratch, 0, sizeof(scratch));
        if (read_chars(p, &scratch, q, 1) < 0) {
            free(scratch.text);
            free(name);
            return -1;
        }
        if (p->pos >= p->len) {
            fail_at(p, aoff, "unterminated value of attribute %s", name);
            free(scratch.text);
            free(name);
            return -1;
        }
        p->pos++; /* closing quote */
        n->attrs[n->nattrs].name = name;
        n->attrs[n->nattrs].value = scratch.text ? scratch.text : cg_strdup("");
        n->nattrs++;
    }
}

/* Content up to and including the matching end tag. */
static int read_content(struct parser *p, struct xnode *n, int depth)
{
    for (;;) {
        if (p->pos >= p->len) {
            fail_at(p, n->offset, "unclosed element <%s>", n->name);
            return -1;
        }
        if (p->s[p->pos] != '<') {
            if (read_chars(p, n, '<', 0) < 0)
                return -1;
            continue;
        }
        if (at(p, "</")) {
            size_t off = p->pos;
            p->pos += 2;
            char *name = read_name(p);
            if (!name)
                return -1;
            int same = strcmp(name, n->name) == 0;
            skip_space(p);
            if (!same) {
                fail_at(p, off, "mismatched end tag </%s>, expected </%s>", name, n->name);
                free(name);
                return -1;
            }
            free(name);
            if (p->pos >= p->len || p->s[p->pos] != '>') {
                fail_at(p, off, "malformed end tag </%s>", n->name);
                return -1;
            }
            p->pos++;
            return 0;
        }
        if (at(p, "<!--")) {
            if (skip_comment(p) < 0)
                return -1;
            continue;
        }
        if (at(p, "<![CDATA[")) {
            size_t start = p->pos;
            p->pos += 9;
            const char *end = NULL;
            for (size_t i = p->pos; i + 3 <= p->len; i++) {
                if (memcmp(p->s + i, "]]>", 3) == 0) {
                    end = p->s + i;
                    break;
                }
            }
            if (!end) {
                fail_at(p, start, "unterminated CDATA section");
                return -1;
            }
            for (const char *c = p->s + p->pos; c < end; c++) {
                if ((unsigned char)*c < 0x20 && !is_space(*c)) {
                    fail_at(p, (size_t)(c - p->s), "control character");
                    return -1;
                }
            }
            text_append(n, p->s + p->pos, (size_t)(end - (p->s + p->pos)));
            p->pos = (size_t)(end - p->s) + 3;
            continue;
        }
        if (at(p, "<?") || at(p, "<!")) {
            fail_at(p, p->pos, "declaration or processing instruction inside an element");
            return -1;
        }
        struct xnode *kid = read_element(p, depth + 1);
        if (!kid)
            return -1;
        kid_append(n, kid);
    }
}

static struct xnode *read_element(struct parser *p, int depth)
{
    size_t off = p->pos;
    if (depth > SIM_TWIML_MAX_DEPTH) {
        fail_at(p, off, "elements nested deeper than %d", SIM_TWIML_MAX_DEPTH);
        return NULL;
    }
    if (++p->nodes > MAX_NODES) {
        fail_at(p, off, "more than %d elements", MAX_NODES);
        return NULL;
    }
    p->pos++; /* '<' */
    char *name = read_name(p);
    if (!name)
        return NULL;
    struct xnode *n = cg_calloc(1, sizeof(*n));
    n->name = name;
    n->offset = off;
    int self_closing = 0;
    if (read_attrs(p, n, &self_closing) < 0 || (!self_closing && read_content(p, n, depth) < 0)) {
        node_free(n);
        return NULL;
    }
    return n;
}

static struct xnode *read_document(struct parser *p)
{
    if (at(p, "\xEF\xBB\xBF"))
        p->pos += 3;
    if (at(p, "<?xml") && p->pos + 5 < p->len &&
        (is_space(p->s[p->pos + 5]) || p->s[p->pos + 5] == '?')) {
        size_t start = p->pos;
        while (p->pos + 2 <= p->len && memcmp(p->s + p->pos, "?>", 2) != 0)
            p->pos++;
        if (p->pos + 2 > p->len) {
            fail_at(p, start, "unterminated XML declaration");
            return NULL;
        }
        p->pos += 2;
    }
    if (skip_misc(p) < 0)
        return NULL;
    if (p->pos >= p->len) {
        fail_at(p, p->pos, "no root element");
        return NULL;
    }
    if (p->s[p->pos] != '<' || p->pos + 1 >= p->len || !is_name_start(p->s[p->pos + 1])) {
        fail_at(p, p->pos, "text outside the root element");
        return NULL;
    }
    struct xnode *root = read_element(p, 1);
    if (!root)
        return NULL;
    if (skip_misc(p) < 0) {
        node_free(root);
        return NULL;
    }
    if (p->pos < p->len) {
        fail_at(p, p->pos,
                p->s[p->pos] == '<' ? "a second root element" : "content after the root element");
        node_free(root);
        return NULL;
    }
    return root;
}

/* ---- TwiML ---- */

struct builder {
    struct parser *p;
    struct sim_twiml *out;
    size_t cap;
};

static int only_space(const char *s)
{
    if (!s)
        return 1;
    for (; *s; s++)
        if (!is_space(*s))
            return 0;
    return 1;
}

static char *trimmed(const char *s)
{
    if (!s)
        return cg_strdup("");
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        n--;
    return cg_strndup(s, n);
}

static struct sim_twiml_verb *push_verb(struct builder *b, const struct xnode *n,
                                        enum sim_twiml_kind kind)
{
    if (b->out->n == SIM_TWIML_MAX_VERBS) {
        fail_at(b->p, n->offset, "more than %d verbs", SIM_TWIML_MAX_VERBS);
        return NULL;
    }
    if (b->out->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->out->verbs = cg_realloc(b->out->verbs, b->cap * sizeof(*b->out->verbs));
    }
    struct sim_twiml_verb *v = &b->out->verbs[b->out->n++];
    memset(v, 0, sizeof(*v));
    v->kind = kind;
    v->method = "POST";
    v->wait_url_method = "POST";
    v->max_queue_size = -1;
    v->loop = 1;
    return v;
}

static int no_children(struct builder *b, const struct xnode *n)
{
    if (n->nkids > 0) {
        fail_at(b->p, n->kids[0]->offset, "<%s> not allowed in <%s>", n->kids[0]->name, n->name);
        return -1;
    }
    return 0;
}

static int no_text(struct builder *b, const struct xnode *n)
{
    if (!only_space(n->text)) {
        fail_at(b->p, n->offset, "<%s> takes no text", n->name);
        return -1;
    }
    return 0;
}

static int attr_method(struct builder *b, const struct xnode *n, const char *name, const char **out)
{
    const char *v = attr_get(n, name);
    if (!v)
        return 0;
    if (strcasecmp(v, "GET") == 0)
        *out = "GET";
    else if (strcasecmp(v, "POST") == 0)
        *out = "POST";
    else {
        fail_at(b->p, n->offset, "<%s %s=\"%s\">: method must be GET or POST", n->name, name, v);
        return -1;
    }
    return 0;
}

static int attr_seconds(struct builder *b, const struct xnode *n, const char *name, double *out)
{
    const char *v = attr_get(n, name);
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(d) || d < 0 || d > 86400 ||
        is_space(*v)) {
        fail_at(b->p, n->offset, "<%s %s=\"%s\">: not a number of seconds", n->name, name, v);
        return -1;
    }
    *out = d;
    return 0;
}

static int attr_int(struct builder *b, const struct xnode *n, const char *name, long lo, long hi,
                    int *out)
{
    const char *v = attr_get(n, name);
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || l < lo || l > hi || is_space(*v)) {
        fail_at(b->p, n->offset, "<%s %s=\"%s\">: expected an integer in [%ld, %ld]", n->name, name,
                v, lo, hi);
        return -1;
    }
    *out = (int)l;
    return 0;
}

static char *attr_dup(const struct xnode *n, const char *name)
{
    const char *v = attr_get(n, name);
    return v ? cg_strdup(v) : NULL;
}

/* SSML elements Twilio accepts inside <Say>; they only shape speech. */
static int is_ssml(const char *name)
{
    static const char *const ssml[] = {"break",   "emphasis", "lang",   "p",   "phoneme",
                                       "prosody", "s",        "say-as", "sub", "w"};
    for (size_t i = 0; i < sizeof(ssml) / sizeof(ssml[0]); i++)
        if (strcmp(name, ssml[i]) == 0)
            return 1;
    return strncmp(name, "amazon:", 7) == 0;
}

static int say_text(struct builder *b, const struct xnode *n, struct xnode *acc)
{
    if (n->text)
        text_append(acc, n->text, n->text_len);
    for (size_t i = 0; i < n->nkids; i++) {
        if (!is_ssml(n->kids[i]->name)) {
            fail_at(b->p, n->kids[i]->offset, "<%s> not allowed in <Say>", n->kids[i]->name);
            return -1;
        }
        if (say_text(b, n->kids[i], acc) < 0)
            return -1;
    }
    return 0;
}

static int build_verb(struct builder *b, const struct xnode *n, int in_gather);

static int build_say(struct builder *b, const struct xnode *n)
{
    struct xnode acc;
    memset(&acc, 0, sizeof(acc));
    if (say_text(b, n, &acc) < 0) {
        free(acc.text);
        return -1;
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_SAY);
    if (!v) {
        free(acc.text);
        return -1;
    }
    v->text = trimmed(acc.text);
    free(acc.text);
    return attr_int(b, n, "loop", 0, 1000, &v->loop);
}

static int build_play(struct builder *b, const struct xnode *n)
{
    if (no_children(b, n) < 0)
        return -1;
    char *url = trimmed(n->text);
    if (url[0] == '\0' && !attr_get(n, "digits")) {
        free(url);
        fail_at(b->p, n->offset, "<Play> needs a URL or digits");
        return -1;
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_PLAY);
    if (!v) {
        free(url);
        return -1;
    }
    v->text = url;
    return attr_int(b, n, "loop", 0, 1000, &v->loop);
}

static int build_simple(struct builder *b, const struct xnode *n, enum sim_twiml_kind kind)
{
    if (no_children(b, n) < 0 || no_text(b, n) < 0)
        return -1;
    struct sim_twiml_verb *v = push_verb(b, n, kind);
    if (!v)
        return -1;
    if (kind == SIM_TW_PAUSE) {
        v->seconds = 1;
        return attr_seconds(b, n, "length", &v->seconds);
    }
    if (kind == SIM_TW_REJECT) {
        const char *r = attr_get(n, "reason");
        if (!r || strcmp(r, "rejected") == 0)
            v->reason = "rejected";
        else if (strcmp(r, "busy") == 0)
            v->reason = "busy";
        else {
            fail_at(b->p, n->offset, "<Reject reason=\"%s\">: expected rejected or busy", r);
            return -1;
        }
    }
    return 0;
}

static int build_redirect(struct builder *b, const struct xnode *n)
{
    if (no_children(b, n) < 0)
        return -1;
    char *url = trimmed(n->text);
    if (url[0] == '\0') {
        free(url);
        fail_at(b->p, n->offset, "<Redirect> needs a URL");
        return -1;
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_REDIRECT);
    if (!v) {
        free(url);
        return -1;
    }
    v->text = url;
    return attr_method(b, n, "method", &v->method);
}

/* <Enqueue workflowSid="WW..."> with at most one <Task> (its text: the
 * task's attributes, kept as given). */
static int build_enqueue_task(struct builder *b, const struct xnode *n)
{
    const char *wf = attr_get(n, "workflowSid");
    if (strlen(wf) != 34 || strncmp(wf, "WW", 2) != 0) {
        fail_at(b->p, n->offset, "<Enqueue workflowSid> must be WW and 32 hex digits");
        return -1;
    }
    if (n->nkids > 1 || (n->nkids == 1 && strcmp(n->kids[0]->name, "Task") != 0)) {
        fail_at(b->p, n->nkids ? n->kids[n->nkids - 1]->offset : n->offset,
                "<Enqueue workflowSid> takes one <Task>");
        return -1;
    }
    char *text = trimmed(n->text);
    if (text[0] != '\0') {
        free(text);
        fail_at(b->p, n->offset, "<Enqueue workflowSid> has text outside <Task>");
        return -1;
    }
    free(text);
    char *task = cg_strdup("");
    if (n->nkids == 1) {
        if (no_children(b, n->kids[0]) < 0) {
            free(task);
            return -1;
        }
        free(task);
        task = trimmed(n->kids[0]->text);
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_ENQUEUE);
    if (!v) {
        free(task);
        return -1;
    }
    v->text = task;
    v->workflow_sid = cg_strdup(wf);
    v->action = attr_dup(n, "action");
    v->wait_url = attr_dup(n, "waitUrl");
    if (attr_method(b, n, "method", &v->method) < 0 ||
        attr_method(b, n, "waitUrlMethod", &v->wait_url_method) < 0)
        return -1;
    return 0;
}

static int build_enqueue(struct builder *b, const struct xnode *n)
{
    if (attr_get(n, "workflowSid"))
        return build_enqueue_task(b, n);
    if (no_children(b, n) < 0)
        return -1;
    char *name = trimmed(n->text);
    size_t len = strlen(name);
    if (len == 0 || len > SIM_TWIML_MAX_QUEUE_NAME) {
        free(name);
        fail_at(b->p, n->offset,
                len == 0 ? "14204 Enqueue: Queue name too short"
                         : "14205 Enqueue: Queue name too long");
        return -1;
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_ENQUEUE);
    if (!v) {
        free(name);
        return -1;
    }
    v->text = name;
    v->action = attr_dup(n, "action");
    v->wait_url = attr_dup(n, "waitUrl");
    if (attr_method(b, n, "method", &v->method) < 0 ||
        attr_method(b, n, "waitUrlMethod", &v->wait_url_method) < 0)
        return -1;
    return attr_int(b, n, "maxQueueSize", 1, 5000, &v->max_queue_size);
}

static int build_connect(struct builder *b, const struct xnode *n)
{
    if (no_text(b, n) < 0)
        return -1;
    if (n->nkids != 1 || strcmp(n->kids[0]->name, "Stream") != 0) {
        if (n->nkids == 0)
            fail_at(b->p, n->offset, "<Connect> needs a <Stream>");
        else if (strcmp(n->kids[0]->name, "Stream") != 0)
            fail_at(b->p, n->kids[0]->offset, "<%s> in <Connect> is not simulated",
                    n->kids[0]->name);
        else
            fail_at(b->p, n->kids[1]->offset, "<Connect> takes one noun");
        return -1;
    }
    const struct xnode *st = n->kids[0];
    if (no_text(b, st) < 0)
        return -1;
    for (size_t i = 0; i < st->nkids; i++) {
        const struct xnode *k = st->kids[i];
        if (strcmp(k->name, "Parameter") != 0) {
            fail_at(b->p, k->offset, "<%s> not allowed in <Stream>", k->name);
            return -1;
        }
        if (no_children(b, k) < 0 || no_text(b, k) < 0)
            return -1;
    }
    const char *url = attr_get(st, "url");
    if (!url || (strncmp(url, "wss://", 6) != 0 && strncmp(url, "ws://", 5) != 0)) {
        fail_at(b->p, st->offset, "<Stream> needs a ws:// or wss:// url");
        return -1;
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_CONNECT_STREAM);
    if (!v)
        return -1;
    v->text = cg_strdup(url);
    v->action = attr_dup(n, "action");
    return attr_method(b, n, "method", &v->method);
}

static int build_dial(struct builder *b, const struct xnode *n)
{
    int sip = 0;
    char *number = trimmed(n->text);
    for (size_t i = 0; i < n->nkids; i++) {
        const struct xnode *k = n->kids[i];
        if (strcmp(k->name, "Number") != 0 && strcmp(k->name, "Sip") != 0) {
            fail_at(b->p, k->offset, "<%s> in <Dial> is not simulated", k->name);
            free(number);
            return -1;
        }
        if (i == 0)
            sip = strcmp(k->name, "Sip") == 0;
        if (no_children(b, k) < 0) {
            free(number);
            return -1;
        }
        char *kn = trimmed(k->text);
        if (kn[0] == '\0' || (i == 0 && number[0] != '\0')) {
            fail_at(b->p, k->offset,
                    kn[0] == '\0' ? "empty <Number>" : "<Dial> has both text and <Number>");
            free(kn);
            free(number);
            return -1;
        }
        if (i == 0) {
            free(number);
            number = kn;
        } else {
            free(kn);
        }
    }
    if (number[0] == '\0') {
        fail_at(b->p, n->offset, "<Dial> needs a number");
        free(number);
        return -1;
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_DIAL);
    if (!v) {
        free(number);
        return -1;
    }
    v->text = number;
    v->sip = sip;
    v->action = attr_dup(n, "action");
    return attr_method(b, n, "method", &v->method);
}

static int build_record(struct builder *b, const struct xnode *n)
{
    if (no_children(b, n) < 0 || no_text(b, n) < 0)
        return -1;
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_RECORD);
    if (!v)
        return -1;
    v->seconds = 3600;
    v->action = attr_dup(n, "action");
    if (attr_method(b, n, "method", &v->method) < 0 ||
        attr_seconds(b, n, "maxLength", &v->seconds) < 0)
        return -1;
    if (v->seconds < 1) {
        fail_at(b->p, n->offset, "<Record maxLength> must be at least 1");
        return -1;
    }
    return 0;
}

static int build_gather(struct builder *b, const struct xnode *n)
{
    if (no_text(b, n) < 0)
        return -1;
    const char *input = attr_get(n, "input");
    if (input) {
        /* Space-separated "dtmf" and/or "speech". */
        const char *s = input;
        int any = 0;
        while (*s) {
            while (*s == ' ')
                s++;
            if (!*s)
                break;
            size_t len = strcspn(s, " ");
            if (!((len == 4 && strncmp(s, "dtmf", 4) == 0) ||
                  (len == 6 && strncmp(s, "speech", 6) == 0))) {
                fail_at(b->p, n->offset, "<Gather input=\"%s\">: expected dtmf or speech", input);
                return -1;
            }
            any = 1;
            s += len;
        }
        if (!any) {
            fail_at(b->p, n->offset, "<Gather input=\"\">: expected dtmf or speech");
            return -1;
        }
    }
    for (size_t i = 0; i < n->nkids; i++) {
        const char *k = n->kids[i]->name;
        if (strcmp(k, "Say") != 0 && strcmp(k, "Play") != 0 && strcmp(k, "Pause") != 0) {
            fail_at(b->p, n->kids[i]->offset, "<%s> not allowed in <Gather>", k);
            return -1;
        }
        if (build_verb(b, n->kids[i], 1) < 0)
            return -1;
    }
    struct sim_twiml_verb *v = push_verb(b, n, SIM_TW_GATHER);
    if (!v)
        return -1;
    v->seconds = 5;
    v->action = attr_dup(n, "action");
    if (attr_method(b, n, "method", &v->method) < 0 ||
        attr_seconds(b, n, "timeout", &v->seconds) < 0)
        return -1;
    return 0;
}

static int build_verb(struct builder *b, const struct xnode *n, int in_gather)
{
    const char *name = n->name;
    if (strcmp(name, "Say") == 0)
        return build_say(b, n);
    if (strcmp(name, "Play") == 0)
        return build_play(b, n);
    if (strcmp(name, "Pause") == 0)
        return build_simple(b, n, SIM_TW_PAUSE);
    if (in_gather) {
        fail_at(b->p, n->offset, "<%s> not allowed in <Gather>", name);
        return -1;
    }
    if (strcmp(name, "Redirect") == 0)
        return build_redirect(b, n);
    if (strcmp(name, "Leave") == 0)
        return build_simple(b, n, SIM_TW_LEAVE);
    if (strcmp(name, "Hangup") == 0)
        return build_simple(b, n, SIM_TW_HANGUP);
    if (strcmp(name, "Reject") == 0)
        return build_simple(b, n, SIM_TW_REJECT);
    if (strcmp(name, "Enqueue") == 0)
        return build_enqueue(b, n);
    if (strcmp(name, "Connect") == 0)
        return build_connect(b, n);
    if (strcmp(name, "Dial") == 0)
        return build_dial(b, n);
    if (strcmp(name, "Record") == 0)
        return build_record(b, n);
    if (strcmp(name, "Gather") == 0)
        return build_gather(b, n);
    fail_at(b->p, n->offset, "unknown verb <%s>", name);
    return -1;
}

static int build(struct parser *p, const struct xnode *root, struct sim_twiml *out)
{
    if (strcmp(root->name, "Response") != 0) {
        fail_at(p, root->offset, "root element is <%s>, expected <Response>", root->name);
        return -1;
    }
    struct builder b = {p, out, 0};
    if (no_text(&b, root) < 0)
        return -1;
    for (size_t i = 0; i < root->nkids; i++)
        if (build_verb(&b, root->kids[i], 0) < 0)
            return -1;
    return 0;
}

int sim_twiml_parse(const char *xml, size_t len, struct sim_twiml *out, char *err, size_t errlen)
{
    out->verbs = NULL;
    out->n = 0;
    if (err && errlen)
        err[0] = '\0';
    struct parser p = {.s = xml ? xml : "", .len = xml ? len : 0, .err = err, .errlen = errlen};
    if (len > SIM_TWIML_MAX_BYTES) {
        p.len = 0; /* do not scan it for line numbers */
        fail_at(&p, 0, "document larger than %d bytes", SIM_TWIML_MAX_BYTES);
        return -1;
    }
    if (memchr(p.s, '\0', p.len)) {
        fail_at(&p, (size_t)((const char *)memchr(p.s, '\0', p.len) - p.s), "NUL byte");
        return -1;
    }
    if (!cg_utf8_valid(p.s, p.len)) {
        fail_at(&p, 0, "document is not valid UTF-8");
        return -1;
    }
    struct xnode *root = read_document(&p);
    if (!root)
        return -1;
    int rc = build(&p, root, out);
    node_free(root);
    if (rc < 0) {
        sim_twiml_free(out);
        return -1;
    }
    return 0;
}

void sim_twiml_free(struct sim_twiml *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->verbs[i].text);
        free(t->verbs[i].action);
        free(t->verbs[i].wait_url);
        free(t->verbs[i].workflow_sid);
    }
    free(t->verbs);
    t->verbs = NULL;
    t->n = 0;
}

const char *sim_twiml_kind_name(enum sim_twiml_kind kind)
{
    switch (kind) {
    case SIM_TW_SAY:
        return "Say";
    case SIM_TW_PLAY:
        return "Play";
    case SIM_TW_PAUSE:
        return "Pause";
    case SIM_TW_REDIRECT:
        return "Redirect";
    case SIM_TW_LEAVE:
        return "Leave";
    case SIM_TW_HANGUP:
        return "Hangup";
    case SIM_TW_ENQUEUE:
        return "Enqueue";
    case SIM_TW_CONNECT_STREAM:
        return "Connect";
    case SIM_TW_DIAL:
        return "Dial";
    case SIM_TW_RECORD:
        return "Record";
    case SIM_TW_GATHER:
        return "Gather";
    case SIM_TW_REJECT:
        return "Reject";
    }
    return "?";
}
