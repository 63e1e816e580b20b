/*
 * Fuzz target: percent coding (src/base/form.c cg_pct_decode, cg_pct_encode), as
 * httpd decodes every request path (path semantics: '+' stays '+') and the
 * form parser every name and value ('+' is a space).
 *
 * Invariants: a decoded string never holds a NUL (httpd relies on it to
 * refuse "%00" paths) and is never longer than its input; an input with no
 * '%' decodes to itself ('+' mapped in form mode); encode(decode(x)) decodes
 * back to decode(x) in both modes; arbitrary bytes survive encode then
 * decode unless they hold a NUL, which decoding must refuse; encoding emits
 * only unreserved bytes and upper-case %XX.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/form.h"

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int is_upper_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Checks the form of cg_pct_encode's output and returns its length. */
static size_t check_encoded(const char *e, size_t raw_len)
{
    size_t n = 0, bytes = 0;
    while (e[n]) {
        if (e[n] == '%') {
            FZ_CHECK(is_upper_hex(e[n + 1]) && is_upper_hex(e[n + 2]));
            n += 3;
        } else {
            FZ_CHECK(is_unreserved((unsigned char)e[n]));
            n++;
        }
        bytes++;
    }
    FZ_CHECK(bytes == raw_len);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int has_pct = memchr(s, '%', size) != NULL, has_nul = memchr(s, '\0', size) != NULL;

    for (int plus = 0; plus <= 1; plus++) {
        size_t dlen = 12345;
        char *d = cg_pct_decode(s, size, plus, &dlen);
        if (d == NULL) {
            /* Only bad escapes and NULs are refused. */
            FZ_CHECK(has_pct || has_nul);
            continue;
        }
        FZ_CHECK(!has_nul && dlen <= size && d[dlen] == '\0' && strlen(d) == dlen);
        if (!has_pct) {
            FZ_CHECK(dlen == size);
            for (size_t i = 0; i < size; i++)
                FZ_CHECK(d[i] == (plus && s[i] == '+' ? ' ' : s[i]));
        }
        char *e = cg_pct_encode(d, dlen);
        size_t elen = check_encoded(e, dlen);
        for (int plus2 = 0; plus2 <= 1; plus2++) {
            size_t rlen = 0;
            char *r = cg_pct_decode(e, elen, plus2, &rlen);
            FZ_CHECK(r != NULL && rlen == dlen && memcmp(r, d, dlen) == 0);
            free(r);
        }
        free(e);
        free(d);
    }

    char *e = cg_pct_encode(s, size);
    size_t elen = check_encoded(e, size);
    size_t rlen = 0;
    char *r = cg_pct_decode(e, elen, 0, &rlen);
    if (has_nul)
        FZ_CHECK(r == NULL);
    else
        FZ_CHECK(r != NULL && rlen == size && memcmp(r, s, size) == 0);
    free(r);
    free(e);
    return 0;
}
