#include "base/fmacros.h"

#include "base/config_routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/json.h"

int cg_routes_is_e164(const char *s)
{
    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (*p < '0' || *p > '9')
            return 0;
    return n >= 7 && n <= 15;
}

int cg_routes_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CG_ROUTE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* An id Vapi gave (assistant, phone number): what VAPI_ASSISTANT_ID takes. */
static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return 0;
    return 1;
}

/* A Twilio queue name as TWILIO_QUEUE_NAME takes it. */
static int valid_queue(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
            return 0;
    return 1;
}

static const char *const known_keys[] = {
    "name", "numbers", "assistantId", "phoneNumberId", "queue", "max", "min", "priority", "vip"};

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cg_routes_free(struct cg_routes *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        struct cg_route *rt = &r->v[i];
        free(rt->name);
        free_strv(rt->numbers, rt->nnumbers);
        free(rt->assistant_id);
        free(rt->phone_number_id);
        free(rt->queue);
        free_strv(rt->vip, rt->nvip);
    }
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

/* The label of route i in messages: "routes[1] (sales)". */
static void label(char *out, size_t outlen, size_t i, const char *name)
{
    if (name != NULL && cg_routes_valid_name(name))
        snprintf(out, outlen, "routes[%zu] (%s)", i, name);
    else
        snprintf(out, outlen, "routes[%zu]", i);
}

/* A required string member; problems named. */
static char *get_string(json_t *o, const char *key, const char *lbl, int (*valid)(const char *),
                        const char *rule, struct cg_config_errors *errs)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" is missing", lbl, key);
        return NULL;
    }
    if (!json_is_string(v)) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" must be a string", lbl, key);
        return NULL;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !valid(s)) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" %s", lbl, key, rule);
        return NULL;
    }
    return cg_strdup(s);
}

/* An optional integer member in [lo, hi]; def when absent. -1 on a problem. */
static int get_int(json_t *o, const char *key, const char *lbl, long long lo, long long hi, int def,
                   int *out, struct cg_config_errors *errs)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v)) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" must be a whole number", lbl, key);
        return -1;
    }
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" must be between %lld and %lld", lbl, key,
                            lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* A list of E.164 numbers; required (at least one) or optional. */
static int get_numbers(json_t *o, const char *key, const char *lbl, int required, char ***out,
                       size_t *nout, struct cg_config_errors *errs)
{
    *out = NULL;
    *nout = 0;
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        if (required)
            cg_config_add_error(errs,
                                "ROUTES_FILE: %s: \"%s\" is missing (the dialled numbers, "
                                "E.164, that this route serves)",
                                lbl, key);
        return required ? -1 : 0;
    }
    if (!json_is_array(v) || (required && json_array_size(v) == 0)) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" must be a%s list of E.164 numbers", lbl,
                            key, required ? " non-empty" : "");
        return -1;
    }
    size_t n = json_array_size(v);
    if (n > CG_ROUTE_NUMBERS_MAX) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" has %zu numbers, at most %d", lbl, key,
                            n, CG_ROUTE_NUMBERS_MAX);
        return -1;
    }
    int rc = 0;
    char **nums = cg_calloc(n ? n : 1, sizeof *nums);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        const char *s = json_is_string(e) ? json_string_value(e) : NULL;
        if (s == NULL || strlen(s) != json_string_length(e) || !cg_routes_is_e164(s)) {
            cg_config_add_error(errs,
                                "ROUTES_FILE: %s: \"%s\"[%zu] is not an E.164 number (\"+\" "
                                "and 7 to 15 digits, as +15550100000)",
                                lbl, key, i);
            rc = -1;
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < k; j++)
            dup |= strcmp(nums[j], s) == 0;
        if (dup) {
            cg_config_add_error(errs, "ROUTES_FILE: %s: \"%s\" lists %s twice", lbl, key, s);
            rc = -1;
            continue;
        }
        nums[k++] = cg_strdup(s);
    }
    *out = nums;
    *nout = k;
    return rc;
}

static int parse_route(json_t *o, size_t i, int org_limit, struct cg_route *rt,
                       struct cg_config_errors *errs)
{
    char lbl[64];
    json_t *jn = json_object_get(o, "name");
    label(lbl, sizeof lbl, i, json_is_string(jn) ? json_string_value(jn) : NULL);
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach (o, key, val) {
        int known = 0;
        for (size_t k = 0; k < sizeof known_keys / sizeof known_keys[0]; k++)
            known |= strcmp(key, known_keys[k]) == 0;
        if (!known) {
            cg_config_add_error(errs,
                                "ROUTES_FILE: %s: unknown key \"%.64s\" (a route has name, "
                                "numbers, assistantId, phoneNumberId, queue, max, min, "
                                "priority, vip)",
                                lbl, key);
            rc = -1;
        }
    }
    rt->name = get_string(o, "name", lbl, cg_routes_valid_name,
                          "must be 1 to 32 characters of a-z, 0-9, '_' and '-'", errs);
    rt->assistant_id = get_string(o, "assistantId", lbl, valid_id,
                                  "must be the assistant's id (at most 128 characters without "
                                  "spaces; Vapi dashboard, Assistants)",
                                  errs);
    rt->phone_number_id = get_string(o, "phoneNumberId", lbl, valid_id,
                                     "must be the Vapi phone number's id (at most 128 characters "
                                     "without spaces; Vapi dashboard, Phone Numbers)",
                                     errs);
    rt->queue = get_string(o, "queue", lbl, valid_queue,
                           "must be the Twilio queue's name (1 to 64 characters)", errs);
    if (!rt->name || !rt->assistant_id || !rt->phone_number_id || !rt->queue)
        rc = -1;
    if (get_numbers(o, "numbers", lbl, 1, &rt->numbers, &rt->nnumbers, errs) != 0)
        rc = -1;
    if (get_numbers(o, "vip", lbl, 0, &rt->vip, &rt->nvip, errs) != 0)
        rc = -1;
    int okmax = get_int(o, "max", lbl, 1, 100000, org_limit, &rt->max, errs) == 0;
    int okmin = get_int(o, "min", lbl, 0, 100000, 0, &rt->min, errs) == 0;
    if (!okmax || !okmin)
        rc = -1;
    if (get_int(o, "priority", lbl, -1000000, 1000000, 0, &rt->priority, errs) != 0)
        rc = -1;
    if (okmax && okmin && rt->min > rt->max) {
        cg_config_add_error(errs, "ROUTES_FILE: %s: \"min\" %d is above \"max\" %d", lbl, rt->min,
                            rt->max);
        rc = -1;
    }
    if (okmax && rt->max > org_limit)
        cg_config_add_warning(errs,
                              "ROUTES_FILE: %s: \"max\" %d is above MAX_CONCURRENCY (%d): the "
                              "organization's limit caps it",
                              lbl, rt->max, org_limit);
    return rc;
}

/* Problems across routes: names, numbers and queues used twice, the
 * guarantees adding up to more than the limit. */
static int check_across(const struct cg_routes *r, int org_limit, struct cg_config_errors *errs)
{
    int rc = 0;
    long long mins = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct cg_route *a = &r->v[i];
        mins += a->min;
        for (size_t j = 0; j < i; j++) {
            const struct cg_route *b = &r->v[j];
            if (a->name && b->name && strcmp(a->name, b->name) == 0) {
                cg_config_add_error(errs,
                                    "ROUTES_FILE: routes[%zu] and routes[%zu] are both "
                                    "named \"%s\"; each route needs its own name",
                                    j, i, a->name);
                rc = -1;
            }
            if (a->queue && b->queue && strcmp(a->queue, b->queue) == 0) {
                cg_config_add_error(errs,
                                    "ROUTES_FILE: routes[%zu] and routes[%zu] both use the "
                                    "Twilio queue \"%s\"; each route needs its own queue",
                                    j, i, a->queue);
                rc = -1;
            }
            for (size_t x = 0; x < a->nnumbers; x++)
                for (size_t y = 0; y < b->nnumbers; y++)
                    if (strcmp(a->numbers[x], b->numbers[y]) == 0) {
                        cg_config_add_error(errs,
                                            "ROUTES_FILE: the number %s is in routes[%zu] and "
                                            "routes[%zu]; a dialled number belongs to one route",
                                            a->numbers[x], j, i);
                        rc = -1;
                    }
        }
    }
    if (mins > org_limit) {
        cg_config_add_error(errs,
                            "ROUTES_FILE: the routes' \"min\" add up to %lld, above "
                            "MAX_CONCURRENCY (%d); lower them or raise the limit",
                            mins, org_limit);
        rc = -1;
    }
    return rc;
}

int cg_routes_parse(const char *buf, size_t len, int org_limit, struct cg_routes *out,
                    struct cg_config_errors *errs)
{
    memset(out, 0, sizeof *out);
    char jerr[160];
    json_t *root = cg_json_parse(buf, len, 8, jerr, sizeof jerr);
    if (root == NULL) {
        cg_config_add_error(errs, "ROUTES_FILE: not valid JSON: %s", jerr);
        return -1;
    }
    int rc = 0;
    json_t *routes = json_object_get(root, "routes");
    if (!json_is_object(root) || !json_is_array(routes) || json_array_size(routes) == 0) {
        cg_config_add_error(errs, "ROUTES_FILE: must be {\"routes\": [ ... ]} with at least one "
                                  "route");
        json_decref(root);
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach (root, key, val) {
        if (strcmp(key, "routes") != 0) {
            cg_config_add_error(errs,
                                "ROUTES_FILE: unknown key \"%.64s\" (the file holds "
                                "\"routes\" only)",
                                key);
            rc = -1;
        }
    }
    size_t n = json_array_size(routes);
    if (n > CG_ROUTES_MAX) {
        cg_config_add_error(errs, "ROUTES_FILE: %zu routes, at most %d", n, CG_ROUTES_MAX);
        json_decref(root);
        return -1;
    }
    out->v = cg_calloc(n, sizeof *out->v);
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(routes, i);
        if (!json_is_object(o)) {
            cg_config_add_error(errs, "ROUTES_FILE: routes[%zu] must be an object", i);
            rc = -1;
            continue;
        }
        if (parse_route(o, i, org_limit, &out->v[i], errs) != 0)
            rc = -1;
    }
    if (check_across(out, org_limit, errs) != 0)
        rc = -1;
    json_decref(root);
    if (rc != 0)
        cg_routes_free(out);
    return rc;
}

int cg_routes_load(const char *path, int org_limit, struct cg_routes *out,
                   struct cg_config_errors *errs)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cg_config_add_error(errs, "ROUTES_FILE: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = cg_malloc(CG_ROUTES_FILE_MAX + 1);
    size_t n = fread(buf, 1, CG_ROUTES_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = -1;
    if (bad)
        cg_config_add_error(errs, "ROUTES_FILE: cannot read %s", path);
    else if (n > CG_ROUTES_FILE_MAX)
        cg_config_add_error(errs, "ROUTES_FILE: %s is larger than %d bytes", path,
                            CG_ROUTES_FILE_MAX);
    else
        rc = cg_routes_parse(buf, n, org_limit, out, errs);
    free(buf);
    return rc;
}

const struct cg_route *cg_routes_by_number(const struct cg_routes *r, const char *to)
{
    if (r == NULL || to == NULL)
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < r->v[i].nnumbers; j++)
            if (strcmp(r->v[i].numbers[j], to) == 0)
                return &r->v[i];
    return NULL;
}

const struct cg_route *cg_routes_by_name(const struct cg_routes *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

int cg_route_is_vip(const struct cg_route *rt, const char *from)
{
    if (rt == NULL || from == NULL)
        return 0;
    for (size_t i = 0; i < rt->nvip; i++)
        if (strcmp(rt->vip[i], from) == 0)
            return 1;
    return 0;
}
