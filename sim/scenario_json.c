/*
 * scenario_json.c - strict readers of a scenario's JSON (scenario_json.h).
 */
#include "base/fmacros.h"

#include "scenario_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

int sim_json_fail(struct sim_jctx *c, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->errlen > 0)
        snprintf(c->err, c->errlen, "%s: %s", path[0] ? path : "(top level)", msg);
    return -1;
}

void sim_json_join(char *out, const char *path, const char *key)
{
    int n = path[0] ? snprintf(out, SIM_JSON_PATH_LEN, "%s.%s", path, key)
                    : snprintf(out, SIM_JSON_PATH_LEN, "%s", key);
    if (n < 0)
        out[0] = '\0';
}

int sim_json_object(struct sim_jctx *c, const json_t *obj, const char *path,
                    const char *const *allowed)
{
    if (!json_is_object(obj))
        return sim_json_fail(c, path, "expected an object");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        (void)v;
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a)
            return sim_json_fail(c, path, "unknown member \"%s\"", key);
    }
    return 0;
}

int sim_json_require(struct sim_jctx *c, const json_t *obj, const char *path, const char *key)
{
    if (json_object_get(obj, key) == NULL)
        return sim_json_fail(c, path, "missing required member \"%s\"", key);
    return 0;
}

int sim_json_num(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                 double min, double max, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    char p[SIM_JSON_PATH_LEN];
    sim_json_join(p, path, key);
    if (!json_is_number(v))
        return sim_json_fail(c, p, "expected a number");
    double d = json_number_value(v);
    if (d < min || d > max) {
        if (min == 0.0 && max == 1.0)
            return sim_json_fail(c, p, "must be a probability in [0, 1]");
        if (d < 0 && min >= 0)
            return sim_json_fail(c, p, "must not be negative");
        return sim_json_fail(c, p, "must be in [%g, %g]", min, max);
    }
    *out = d;
    return 0;
}

int sim_json_int(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                 long long min, long long max, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    char p[SIM_JSON_PATH_LEN];
    sim_json_join(p, path, key);
    if (!json_is_integer(v))
        return sim_json_fail(c, p, "expected an integer");
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        if (n < 0 && min >= 0)
            return sim_json_fail(c, p, "must not be negative");
        return sim_json_fail(c, p, "must be in [%lld, %lld]", min, max);
    }
    *out = n;
    return 0;
}

int sim_json_int_field(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                       long long min, long long max, int *out)
{
    long long n = *out;
    if (sim_json_int(c, obj, path, key, min, max, &n) != 0)
        return -1;
    *out = (int)n;
    return 0;
}

int sim_json_bool(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                  int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        char p[SIM_JSON_PATH_LEN];
        sim_json_join(p, path, key);
        return sim_json_fail(c, p, "expected true or false");
    }
    *out = json_is_true(v);
    return 0;
}

int sim_json_str(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                 char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    char p[SIM_JSON_PATH_LEN];
    sim_json_join(p, path, key);
    if (!json_is_string(v))
        return sim_json_fail(c, p, "expected a string");
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0)
        return sim_json_fail(c, p, "must not be empty");
    if (n > SIM_JSON_MAX_STRING)
        return sim_json_fail(c, p, "longer than %d bytes", SIM_JSON_MAX_STRING);
    if (strlen(s) != n)
        return sim_json_fail(c, p, "must not contain NUL");
    free(*out);
    *out = cg_strdup(s);
    return 0;
}

int sim_json_required_str(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                          char **out)
{
    if (sim_json_require(c, obj, path, key) != 0)
        return -1;
    return sim_json_str(c, obj, path, key, out);
}

int sim_json_is_e164(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 16 || s[0] != '+' || s[1] == '0')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}
