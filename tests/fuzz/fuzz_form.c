/*
 * Fuzz target: application/x-www-form-urlencoded bodies and query strings
 * (src/base/form.c cg_form_parse), as Twilio's webhooks and every query string
 * reach httpd.
 *
 * Invariants beyond not crashing: a refused input leaves the form empty with
 * a reason; accepted pairs are NUL-free valid UTF-8 with their stated
 * lengths; encode(parse(x)) parses back to the same pairs, and encoding that
 * again gives the same text (the encoding is canonical).
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/form.h"
#include "base/utf8.h"

static void check_same_pairs(const struct cg_form *a, const struct cg_form *b)
{
    FZ_CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct cg_form_pair *x = &a->pairs[i], *y = &b->pairs[i];
        FZ_CHECK(x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0);
        FZ_CHECK(x->value_len == y->value_len && memcmp(x->value, y->value, x->value_len) == 0);
    }
}

/* Only what cg_form_encode may emit: unreserved bytes, '+', %XX in upper
 * case, and the '=' and '&' delimiters. */
static int encoded_charset_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-._~+=&", c) != NULL)
            continue;
        if (c != '%')
            return 0;
        for (int k = 1; k <= 2; k++)
            if (!((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'A' && s[k] <= 'F')))
                return 0;
        s += 2;
    }
    return 1;
}

/* How many pairs have this key (a repeated key keeps every value). */
static size_t count_key(const struct cg_form *f, const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += strcmp(f->pairs[i].key, key) == 0;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_form f;
    cg_form_init(&f);
    const char *err = NULL;
    if (cg_form_parse(&f, (const char *)data, size, &err) != 0) {
        FZ_CHECK(err != NULL && f.n == 0 && f.pairs == NULL);
        return 0;
    }
    FZ_CHECK(err == NULL && f.n <= CG_FORM_MAX_PAIRS);
    for (size_t i = 0; i < f.n; i++) {
        const struct cg_form_pair *p = &f.pairs[i];
        FZ_CHECK(strlen(p->key) == p->key_len && strlen(p->value) == p->value_len);
        FZ_CHECK(cg_utf8_valid(p->key, p->key_len) && cg_utf8_valid(p->value, p->value_len));
        /* The getters scan every pair; a few keys keep this linear. */
        if (i < 4) {
            FZ_CHECK(count_key(&f, p->key) >= 1);
            const char *first = cg_form_get(&f, p->key);
            FZ_CHECK(first != NULL);
            if (count_key(&f, p->key) == 1)
                FZ_CHECK(first == p->value);
        }
    }

    char *enc = cg_form_encode(&f);
    FZ_CHECK(encoded_charset_ok(enc));
    struct cg_form g;
    cg_form_init(&g);
    FZ_CHECK(cg_form_parse(&g, enc, strlen(enc), NULL) == 0);
    check_same_pairs(&f, &g);
    char *enc2 = cg_form_encode(&g);
    FZ_CHECK(strcmp(enc, enc2) == 0);

    free(enc2);
    free(enc);
    cg_form_free(&g);
    cg_form_free(&f);
    FZ_CHECK(f.n == 0 && f.pairs == NULL);
    return 0;
}
