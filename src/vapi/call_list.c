#include "base/fmacros.h"

#include "vapi/call_list.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "twilio/api.h"

#include <math.h>
#include <string.h>

/* A string field that is present and not empty, else NULL. */
static const char *nonempty_str(const json_t *o, const char *path)
{
    const char *s = cg_json_str(o, path);
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static const char *call_sid_of(const json_t *c)
{
    const char *s = cg_json_str(c, "assistantOverrides.metadata.twilioCallSid");
    if (s != NULL && cg_twilio_sid_valid(s, "CA"))
        return s;
    s = cg_json_str(c, "phoneCallProviderId");
    return s != NULL && cg_twilio_sid_valid(s, "CA") ? s : NULL;
}

int cg_vapi_parse_call_list(const char *body, size_t len, struct cg_vapi_listed_call **calls,
                            size_t *n, size_t *skipped, json_t **root, char *err, size_t errlen)
{
    *calls = NULL;
    *n = 0;
    *skipped = 0;
    *root = NULL;
    json_t *r = cg_json_parse(body, len, CG_JSON_MAX_DEPTH, NULL, 0);
    if (r == NULL) {
        cg_err_set(err, errlen, "the call list is not JSON");
        return -1;
    }
    if (!json_is_array(r)) {
        json_decref(r);
        cg_err_set(err, errlen, "the call list is not an array");
        return -1;
    }
    size_t total = json_array_size(r);
    if (total > CG_VAPI_LIST_MAX) {
        json_decref(r);
        cg_err_set(err, errlen, "the call list has more than %d entries", CG_VAPI_LIST_MAX);
        return -1;
    }
    struct cg_vapi_listed_call *out = total ? cg_calloc(total, sizeof *out) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < total; i++) {
        const json_t *c = json_array_get(r, i);
        const char *id = json_is_object(c) ? nonempty_str(c, "id") : NULL;
        if (id == NULL) {
            (*skipped)++;
            continue;
        }
        struct cg_vapi_listed_call *e = &out[k++];
        e->id = id;
        e->status = cg_json_str(c, "status");
        e->live = e->status == NULL || strcmp(e->status, "ended") != 0;
        double t = cg_iso8601_parse(cg_json_str(c, "createdAt"));
        e->created_ms = t > 0 ? (uint64_t)llround(t * 1000.0) : 0;
        e->twilio_call_sid = call_sid_of(c);
        long long att;
        if (cg_json_int(c, "assistantOverrides.metadata.callgateAttempt", &att) == 0 && att > 0 &&
            att < 1000000)
            e->attempt = (long)att;
        e->gate = nonempty_str(c, "assistantOverrides.metadata.callgateGate");
        e->customer_number = nonempty_str(c, "customer.number");
    }
    if (k == 0) {
        free(out);
        out = NULL;
    }
    *calls = out;
    *n = k;
    *root = r;
    return 0;
}
