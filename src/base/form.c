#include "base/fmacros.h"

#include "base/form.h"

#include "base/alloc.h"
#include "base/crypto.h"
#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>

/* RFC 3986 section 2.3: these bytes never need escaping. */
static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void cg_form_init(struct cg_form *f)
{
    f->pairs = NULL;
    f->n = 0;
    f->cap = 0;
}

void cg_form_free(struct cg_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->pairs[i].key);
        free(f->pairs[i].value);
    }
    free(f->pairs);
    cg_form_init(f);
}

/* Takes ownership of key and value. */
static void push_pair(struct cg_form *f, char *key, size_t key_len, char *value, size_t value_len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        f->pairs = cg_realloc(f->pairs, cap * sizeof(*f->pairs));
        f->cap = cap;
    }
    struct cg_form_pair *p = &f->pairs[f->n++];
    p->key = key;
    p->key_len = key_len;
    p->value = value;
    p->value_len = value_len;
}

char *cg_pct_decode(const char *s, size_t len, int plus_is_space, size_t *out_len)
{
    /* Decoding never lengthens the input, so len + 1 bytes always suffice. */
    char *out = cg_malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (len - i < 3)
                goto fail;
            int hi = cg_hexval((unsigned char)s[i + 1]);
            int lo = cg_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                goto fail;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                goto fail;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            /* A raw NUL is no more acceptable than %00. */
            goto fail;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
fail:
    free(out);
    return NULL;
}

/* Writes the percent-encoding of s at out (a space as '+' when
 * plus_for_space, else as %20); returns the byte count written. */
static size_t encode_into(char *out, const char *s, size_t len, int plus_for_space)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            out[o++] = (char)c;
        } else if (c == ' ' && plus_for_space) {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

char *cg_pct_encode(const char *s, size_t len)
{
    /* Worst case every byte becomes %XX; check the multiplication first. */
    if (len > ((size_t)-1 - 1) / 3)
        abort();
    char *out = cg_malloc(len * 3 + 1);
    out[encode_into(out, s, len, 0)] = '\0';
    return out;
}

static void set_err(const char **err, const char *msg)
{
    if (err)
        *err = msg;
}

int cg_form_parse(struct cg_form *f, const char *s, size_t len, const char **err)
{
    const char *msg = NULL;
    size_t i = 0;
    while (i < len) {
        const char *seg = s + i;
        const char *amp = memchr(seg, '&', len - i);
        size_t seg_len = amp ? (size_t)(amp - seg) : len - i;
        i += seg_len + 1;
        if (seg_len == 0)
            continue;
        if (f->n >= CG_FORM_MAX_PAIRS) {
            msg = "too many form fields";
            goto fail;
        }
        const char *eq = memchr(seg, '=', seg_len);
        size_t klen = eq ? (size_t)(eq - seg) : seg_len;
        const char *vstart = eq ? eq + 1 : seg + seg_len;
        size_t vlen = eq ? seg_len - klen - 1 : 0;
        size_t key_len, value_len;
        char *key = cg_pct_decode(seg, klen, 1, &key_len);
        if (key == NULL) {
            msg = "malformed percent-encoding in form field name";
            goto fail;
        }
        char *value = cg_pct_decode(vstart, vlen, 1, &value_len);
        if (value == NULL) {
            free(key);
            msg = "malformed percent-encoding in form field value";
            goto fail;
        }
        if (!cg_utf8_valid(key, key_len) || !cg_utf8_valid(value, value_len)) {
            free(key);
            free(value);
            msg = "form field is not valid UTF-8";
            goto fail;
        }
        push_pair(f, key, key_len, value, value_len);
    }
    return 0;
fail:
    cg_form_free(f);
    set_err(err, msg);
    return -1;
}

const char *cg_form_get(const struct cg_form *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->pairs[i].key, key) == 0)
            return f->pairs[i].value;
    return NULL;
}

void cg_form_add(struct cg_form *f, const char *key, const char *value)
{
    size_t key_len = strlen(key);
    size_t value_len = strlen(value);
    push_pair(f, cg_strndup(key, key_len), key_len, cg_strndup(value, value_len), value_len);
}

/* Length of s once form-encoded. */
static size_t form_encoded_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        n += (is_unreserved(c) || c == ' ') ? 1 : 3;
    }
    return n;
}

char *cg_form_encode(const struct cg_form *f)
{
    /* Sizing the result exactly first keeps the fill loop free of error
     * paths. Each pair adds '=' and, after the first, '&'. */
    size_t total = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct cg_form_pair *p = &f->pairs[i];
        total += form_encoded_len(p->key, p->key_len) + form_encoded_len(p->value, p->value_len) +
                 (i > 0 ? 2 : 1);
    }
    char *out = cg_malloc(total + 1);
    size_t o = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct cg_form_pair *p = &f->pairs[i];
        if (i > 0)
            out[o++] = '&';
        o += encode_into(out + o, p->key, p->key_len, 1);
        out[o++] = '=';
        o += encode_into(out + o, p->value, p->value_len, 1);
    }
    out[o] = '\0';
    return out;
}
