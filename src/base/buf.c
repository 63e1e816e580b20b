#include "base/fmacros.h"

#include "base/buf.h"

#include "base/alloc.h"
#include "base/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cg_buf_init(struct cg_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Makes room for n more bytes plus the terminator, or fails past the max. */
static int reserve(struct cg_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -1;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = cg_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int cg_buf_append(struct cg_buf *b, const void *p, size_t n)
{
    if (reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cg_buf_appends(struct cg_buf *b, const char *s)
{
    return cg_buf_append(b, s, strlen(s));
}

int cg_buf_appendc(struct cg_buf *b, char c)
{
    return cg_buf_append(b, &c, 1);
}

int cg_buf_vprintf(struct cg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || reserve(b, (size_t)n) != 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int cg_buf_printf(struct cg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int cg_buf_append_json_str(struct cg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t mark = b->len;
    if (cg_buf_appendc(b, '"') != 0)
        goto fail;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t cl = cg_utf8_seq_len(s + i, n - i);
            if (cl == 0) {
                if (cg_buf_appends(b, "\xef\xbf\xbd") != 0) /* U+FFFD */
                    goto fail;
                i++;
            } else {
                if (cg_buf_append(b, s + i, cl) != 0)
                    goto fail;
                i += cl;
            }
            continue;
        }
        int rc;
        switch (c) {
        case '"':
            rc = cg_buf_appends(b, "\\\"");
            break;
        case '\\':
            rc = cg_buf_appends(b, "\\\\");
            break;
        case '\n':
            rc = cg_buf_appends(b, "\\n");
            break;
        case '\r':
            rc = cg_buf_appends(b, "\\r");
            break;
        case '\t':
            rc = cg_buf_appends(b, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                rc = cg_buf_append(b, esc, sizeof esc);
            } else {
                rc = cg_buf_appendc(b, (char)c);
            }
        }
        if (rc != 0)
            goto fail;
        i++;
    }
    if (cg_buf_appendc(b, '"') != 0)
        goto fail;
    return 0;
fail:
    /* Leave the buffer as it was: a half-written string is worse than none. */
    b->len = mark;
    if (b->data)
        b->data[mark] = '\0';
    return -1;
}

int cg_buf_append_xml(struct cg_buf *b, const char *s, size_t n)
{
    size_t mark = b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        switch (c) {
        case '&':
            rc = cg_buf_appends(b, "&amp;");
            break;
        case '<':
            rc = cg_buf_appends(b, "&lt;");
            break;
        case '>':
            rc = cg_buf_appends(b, "&gt;");
            break;
        case '"':
            rc = cg_buf_appends(b, "&quot;");
            break;
        case '\'':
            rc = cg_buf_appends(b, "&apos;");
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
                continue;
            rc = cg_buf_appendc(b, (char)c);
        }
        if (rc != 0) {
            b->len = mark;
            if (b->data)
                b->data[mark] = '\0';
            return -1;
        }
    }
    return 0;
}

const char *cg_buf_str(const struct cg_buf *b)
{
    return b->data ? b->data : "";
}

void cg_buf_reset(struct cg_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *cg_buf_take(struct cg_buf *b)
{
    char *p = b->data ? b->data : cg_strdup("");
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void cg_buf_free(struct cg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
