#include "base/fmacros.h"

#include "base/json.h"

#include "base/err.h"
#include "base/alloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Maximum nesting of arrays and objects in buf, stopping early once it
 * passes limit. Brackets inside strings do not count; a backslash there
 * hides the next byte. Malformed input is left for jansson to reject.
 */
static int nesting_exceeds(const char *buf, size_t len, int limit)
{
    int depth = 0, in_string = 0, escaped = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > limit)
                return 1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

/* jansson's error text quotes the input near the error, which for webhook
 * bodies may be a caller's phone number; only the kind of error and its
 * position are reported. */
static const char *describe(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_premature_end_of_input:
        return "unexpected end of input";
    case json_error_end_of_input_expected:
        return "trailing data after the value";
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_duplicate_key:
        return "duplicate object key";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "NUL character";
    case json_error_invalid_syntax:
        return "invalid syntax";
    case json_error_numeric_overflow:
        return "number out of range";
    default:
        return "invalid JSON";
    }
}

json_t *cg_json_parse(const char *buf, size_t len, int max_depth, char *err, size_t errlen)
{
    if (buf == NULL) {
        cg_err_set(err, errlen, "no input");
        return NULL;
    }
    if (nesting_exceeds(buf, len, max_depth)) {
        cg_err_set(err, errlen, "nesting deeper than %d levels", max_depth);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        cg_err_set(err, errlen, "%s at line %d, column %d", describe(&jerr), jerr.line,
                   jerr.column);
        return NULL;
    }
    return root;
}

json_t *cg_json_path(const json_t *root, const char *path)
{
    if (root == NULL || path == NULL)
        return NULL;
    /* jansson's getters take const but hand back a mutable pointer; this
     * helper mirrors that so callers can use the result with any API. */
    json_t *cur = (json_t *)root;
    const char *p = path;
    if (*p == '\0')
        return cur;
    for (;;) {
        size_t seg = strcspn(p, ".");
        if (seg == 0 || !json_is_object(cur))
            return NULL;
        cur = json_object_getn(cur, p, seg);
        if (cur == NULL)
            return NULL;
        if (p[seg] == '\0')
            return cur;
        p += seg + 1;
    }
}

const char *cg_json_str(const json_t *root, const char *path)
{
    json_t *v = cg_json_path(root, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int cg_json_int(const json_t *root, const char *path, long long *out)
{
    json_t *v = cg_json_path(root, path);
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* 2^63 is exact as a double; the range check must come before the
         * conversion, which is undefined outside it. */
        if (isfinite(d) && d == floor(d) && d >= -9223372036854775808.0 &&
            d < 9223372036854775808.0) {
            *out = (long long)d;
            return 0;
        }
    }
    return -1;
}

int cg_json_num(const json_t *root, const char *path, double *out)
{
    json_t *v = cg_json_path(root, path);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

int cg_json_bool(const json_t *root, const char *path, int *out)
{
    json_t *v = cg_json_path(root, path);
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v) ? 1 : 0;
    return 0;
}

char *cg_json_dumps(const json_t *v)
{
    if (v == NULL)
        return cg_strdup("null");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    /* jansson refuses values it cannot represent (a string built without
     * its UTF-8 check, a cycle); sending null beats crashing the daemon. */
    return s ? s : cg_strdup("null");
}
