/*
 * form.h - application/x-www-form-urlencoded parsing (request bodies and
 * query strings).
 *
 * Pure function of its input, no I/O: a fuzz target. Pairs are kept in
 * arrival order with repeated keys preserved, which the Twilio signature
 * check needs (it signs every value of a repeated key). '+' decodes to a
 * space; %XX to the byte. The parse fails (returns -1, form left empty) on
 * malformed percent-encoding, on %00 (no caller-supplied NUL may reach C
 * strings), on bytes that are not valid UTF-8 after decoding, and past
 * CG_FORM_MAX_PAIRS pairs.
 *
 * Ownership: the form owns its decoded strings; cg_form_free() releases them.
 * Strings returned by the getters live as long as the form.
 */
#ifndef CG_FORM_H
#define CG_FORM_H

#include <stddef.h>

#define CG_FORM_MAX_PAIRS 512

struct cg_form_pair {
    char *key; /* decoded, NUL-terminated */
    char *value;
    size_t key_len;
    size_t value_len;
};

struct cg_form {
    struct cg_form_pair *pairs;
    size_t n;
    size_t cap;
};

void cg_form_init(struct cg_form *f);
/* Parses len bytes of s (which need not be NUL-terminated). An empty input
 * gives an empty form. Empty segments ("a=1&&b=2") are skipped; a key with
 * no '=' has the empty value. On error, *err (if not NULL) is set to a static
 * description. */
int cg_form_parse(struct cg_form *f, const char *s, size_t len, const char **err);
/* First value of key, or NULL. */
const char *cg_form_get(const struct cg_form *f, const char *key);
/* Appends a pair (copies both); used to build forms for outbound requests. */
void cg_form_add(struct cg_form *f, const char *key, const char *value);
/* Serialises as application/x-www-form-urlencoded (RFC 3986 unreserved bytes
 * kept, space as '+', everything else %XX) into a malloc'd string. */
char *cg_form_encode(const struct cg_form *f);
void cg_form_free(struct cg_form *f);

/* Percent-decodes len bytes of s into a malloc'd NUL-terminated string.
 * plus_is_space selects form ('+' -> ' ') or path semantics. Returns NULL on
 * malformed encoding or %00. */
char *cg_pct_decode(const char *s, size_t len, int plus_is_space, size_t *out_len);
/* Appends the percent-encoding of s (unreserved kept, space as %20) to a
 * malloc'd string. Used for path segments and query values. */
char *cg_pct_encode(const char *s, size_t len);

#endif
