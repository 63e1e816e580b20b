#include "base/fmacros.h"

#include "gate/dialer_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/config_routes.h"
#include "base/err.h"
#include "base/json.h"

/* Every member of o is one of the names listed. */
static int only_keys(json_t *o, const char *const *names, size_t n, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach (o, key, v) {
        int ok = 0;
        for (size_t i = 0; i < n; i++)
            ok |= strcmp(key, names[i]) == 0;
        if (!ok) {
            cg_err_set(err, errlen, "unknown member \"%.40s\"", key);
            return -1;
        }
    }
    return 0;
}

static json_t *parse_object(const char *body, size_t len, int depth, char *err, size_t errlen)
{
    char jerr[96];
    json_t *j = cg_json_parse(body ? body : "", len, depth, jerr, sizeof jerr);
    if (j == NULL) {
        cg_err_set(err, errlen, "body is not JSON: %s", jerr);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        cg_err_set(err, errlen, "body must be a JSON object");
        return NULL;
    }
    return j;
}

static int get_route(json_t *j, char out[33], char *err, size_t errlen)
{
    json_t *v = json_object_get(j, "route");
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (s == NULL || strlen(s) != json_string_length(v) || !cg_routes_valid_name(s)) {
        cg_err_set(err, errlen, "\"route\" must be a route's name");
        return -1;
    }
    snprintf(out, 33, "%s", s);
    return 0;
}

static int get_ttl(json_t *j, long *ttl_s, char *err, size_t errlen)
{
    json_t *t = json_object_get(j, "ttlSeconds");
    if (t == NULL)
        return 0;
    if (!json_is_integer(t) || json_integer_value(t) < GATE_SLOT_TTL_MIN ||
        json_integer_value(t) > GATE_SLOT_TTL_MAX) {
        cg_err_set(err, errlen, "\"ttlSeconds\" must be a whole number from %d to %d",
                   GATE_SLOT_TTL_MIN, GATE_SLOT_TTL_MAX);
        return -1;
    }
    *ttl_s = (long)json_integer_value(t);
    return 0;
}

int gate_parse_renew_req(const char *body, size_t len, long *ttl_s, char *err, size_t errlen)
{
    static const char *const keys[] = {"ttlSeconds"};
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len)
        return 0;
    json_t *j = parse_object(body, len, 2, err, errlen);
    if (j == NULL)
        return -1;
    int rc =
        only_keys(j, keys, 1, err, errlen) != 0 || get_ttl(j, ttl_s, err, errlen) != 0 ? -1 : 0;
    json_decref(j);
    return rc;
}

int gate_parse_slot_req(const char *body, size_t len, struct gate_slot_req *out, char *err,
                        size_t errlen)
{
    static const char *const keys[] = {"route", "ttlSeconds"};
    memset(out, 0, sizeof *out);
    json_t *j = parse_object(body, len, 2, err, errlen);
    if (j == NULL)
        return -1;
    int rc = -1;
    if (only_keys(j, keys, 2, err, errlen) != 0 || get_route(j, out->route, err, errlen) != 0)
        goto done;
    out->ttl_s = GATE_SLOT_TTL_DEFAULT;
    if (get_ttl(j, &out->ttl_s, err, errlen) != 0)
        goto done;
    rc = 0;
done:
    json_decref(j);
    return rc;
}

int gate_parse_outbound_req(const char *body, size_t len, struct gate_outbound_req *out, char *err,
                            size_t errlen)
{
    static const char *const keys[] = {"route", "number", "variables"};
    memset(out, 0, sizeof *out);
    json_t *j = parse_object(body, len, 6, err, errlen);
    if (j == NULL)
        return -1;
    int rc = -1;
    if (only_keys(j, keys, 3, err, errlen) != 0 || get_route(j, out->route, err, errlen) != 0)
        goto done;
    json_t *n = json_object_get(j, "number");
    const char *num = json_is_string(n) ? json_string_value(n) : NULL;
    if (num == NULL || strlen(num) != json_string_length(n) || !cg_routes_is_e164(num)) {
        cg_err_set(err, errlen, "\"number\" must be the customer's number in E.164 form");
        goto done;
    }
    snprintf(out->number, sizeof out->number, "%s", num);
    json_t *v = json_object_get(j, "variables");
    if (v != NULL && !json_is_object(v)) {
        cg_err_set(err, errlen, "\"variables\" must be a JSON object");
        goto done;
    }
    char *text = v ? cg_json_dumps(v) : cg_strdup("{}");
    if (strlen(text) > GATE_VARIABLES_MAX) {
        free(text);
        cg_err_set(err, errlen, "\"variables\" is larger than %d bytes", GATE_VARIABLES_MAX);
        goto done;
    }
    out->variables = text;
    rc = 0;
done:
    json_decref(j);
    return rc;
}

void gate_outbound_req_free(struct gate_outbound_req *r)
{
    free(r->variables);
    r->variables = NULL;
}

int gate_dialer_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > GATE_DIALER_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}
