#include "base/fmacros.h"

#include "twilio/signature.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crypto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHA1_LEN 20

/* Bytewise order of two length-delimited strings, shorter first on a tie. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static int pair_cmp(const void *pa, const void *pb)
{
    const struct cg_form_pair *a = *(const struct cg_form_pair *const *)pa;
    const struct cg_form_pair *b = *(const struct cg_form_pair *const *)pb;
    int c = bytes_cmp(a->key, a->key_len, b->key, b->key_len);
    if (c != 0)
        return c;
    return bytes_cmp(a->value, a->value_len, b->value, b->value_len);
}

/* Appends every name and value in signing order: names sorted, and for a
 * repeated name its distinct values sorted. Sorting (name, value) pairs and
 * dropping exact duplicates gives exactly that. */
static int append_params(struct cg_buf *b, const struct cg_form *params)
{
    if (params == NULL || params->n == 0)
        return 0;
    const struct cg_form_pair **sorted = cg_malloc(params->n * sizeof(*sorted));
    for (size_t i = 0; i < params->n; i++)
        sorted[i] = &params->pairs[i];
    qsort(sorted, params->n, sizeof(*sorted), pair_cmp);
    int rc = 0;
    for (size_t i = 0; i < params->n && rc == 0; i++) {
        const struct cg_form_pair *p = sorted[i];
        if (i > 0 && pair_cmp(&sorted[i - 1], &sorted[i]) == 0)
            continue;
        if (cg_buf_append(b, p->key, p->key_len) != 0 ||
            cg_buf_append(b, p->value, p->value_len) != 0)
            rc = -1;
    }
    free(sorted);
    return rc;
}

int cg_twsig_compute(const char *auth_token, const char *url, const struct cg_form *params,
                     char out[CG_TWSIG_LEN + 1])
{
    out[0] = '\0';
    if (auth_token == NULL || url == NULL)
        return -1;
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    if (cg_buf_appends(&b, url) != 0 || append_params(&b, params) != 0) {
        cg_buf_free(&b);
        return -1;
    }
    unsigned char md[CG_DIGEST_MAX];
    size_t md_len = cg_hmac(CG_SHA1, auth_token, strlen(auth_token), cg_buf_str(&b), b.len, md);
    cg_buf_free(&b);
    if (md_len != SHA1_LEN)
        return -1;
    /* 20 bytes encode to exactly 28 characters plus the NUL it writes. */
    if (cg_base64_encode(md, SHA1_LEN, out) != CG_TWSIG_LEN) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/*
 * Where the port sits in url. *port_colon is the offset of the ':' before
 * the port, or 0 when there is none; *auth_end is the offset just past the
 * authority. Returns -1 when url has no "scheme://".
 */
static int locate_port(const char *url, size_t *port_colon, size_t *auth_end)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return -1;
    size_t start = (size_t)(sep - url) + 3;
    size_t end = start + strcspn(url + start, "/?#");
    size_t host = start;
    for (size_t i = end; i > start; i--) {
        if (url[i - 1] == '@') {
            host = i;
            break;
        }
    }
    if (host < end && url[host] == '[') {
        const char *close = memchr(url + host, ']', end - host);
        if (close != NULL)
            host = (size_t)(close - url);
    }
    const char *colon = memchr(url + host, ':', end - host);
    *port_colon = colon ? (size_t)(colon - url) : 0;
    *auth_end = end;
    return 0;
}

/* url with the bytes [from, to) replaced by ins; malloc'd. */
static char *splice(const char *url, size_t from, size_t to, const char *ins)
{
    size_t len = strlen(url), ins_len = strlen(ins);
    char *s = cg_malloc(len - (to - from) + ins_len + 1);
    memcpy(s, url, from);
    memcpy(s + from, ins, ins_len);
    memcpy(s + from + ins_len, url + to, len - to + 1);
    return s;
}

/* 1 if signature matches the signature computed over url + params. */
static int matches(const char *auth_token, const char *url, const struct cg_form *params,
                   const char *signature)
{
    char sig[CG_TWSIG_LEN + 1];
    if (cg_twsig_compute(auth_token, url, params, sig) != 0)
        return 0;
    return cg_ct_streq(signature, sig);
}

int cg_twsig_validate(const char *auth_token, const char *url, const struct cg_form *params,
                      const char *signature)
{
    if (auth_token == NULL || auth_token[0] == '\0' || url == NULL || signature == NULL ||
        signature[0] == '\0')
        return 0;
    int ok = matches(auth_token, url, params, signature);
    size_t colon, end;
    if (locate_port(url, &colon, &end) != 0)
        return ok;
    char *variant = NULL;
    if (colon != 0) {
        variant = splice(url, colon, end, "");
    } else {
        const char *port = NULL;
        if (strncasecmp(url, "https://", 8) == 0)
            port = ":443";
        else if (strncasecmp(url, "http://", 7) == 0)
            port = ":80";
        if (port)
            variant = splice(url, end, end, port);
    }
    if (variant) {
        /* Both forms are always checked so the time taken does not depend
         * on which one matched. */
        ok |= matches(auth_token, variant, params, signature);
        free(variant);
    }
    return ok;
}
