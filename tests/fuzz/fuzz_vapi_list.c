/*
 * Fuzz target: Vapi's GET /call answer (src/vapi/call_list.c
 * cg_vapi_parse_call_list), read by the gate's repair after Redis lost
 * writes.
 *
 * Invariants: a refused body gives a reason and nothing to free; an
 * accepted one is an array of at most CG_VAPI_LIST_MAX entries, split into
 * parsed and skipped; every parsed entry has a non-empty id, is live unless
 * its status is "ended", has a Twilio CallSid only when it is CA + 32 hex
 * digits and a non-negative attempt. Every string must stay readable until
 * the root is released (ASan checks).
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "vapi/call_list.h"

#include <ctype.h>

static int is_call_sid(const char *s)
{
    if (strlen(s) != 34 || s[0] != 'C' || s[1] != 'A')
        return 0;
    for (size_t i = 2; i < 34; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_vapi_listed_call *calls = (struct cg_vapi_listed_call *)&size;
    json_t *root = (json_t *)&size; /* both must be overwritten either way */
    size_t n = 99, skipped = 99;
    char err[160] = "";
    int rc = cg_vapi_parse_call_list((const char *)data, size, &calls, &n, &skipped, &root, err,
                                     sizeof err);
    if (rc != 0) {
        FZ_CHECK(rc == -1 && root == NULL && calls == NULL && n == 0 && err[0] != '\0');
        return 0;
    }
    FZ_CHECK(root != NULL && json_is_array(root));
    FZ_CHECK(n + skipped == json_array_size(root) && n + skipped <= CG_VAPI_LIST_MAX);
    FZ_CHECK((n == 0) == (calls == NULL));
    for (size_t i = 0; i < n; i++) {
        const struct cg_vapi_listed_call *c = &calls[i];
        FZ_CHECK(c->id != NULL && c->id[0] != '\0' && strlen(c->id) <= size);
        FZ_CHECK(c->live == (c->status == NULL || strcmp(c->status, "ended") != 0));
        if (c->twilio_call_sid != NULL)
            FZ_CHECK(is_call_sid(c->twilio_call_sid));
        FZ_CHECK(c->attempt >= 0);
        if (c->gate != NULL)
            FZ_CHECK(c->gate[0] != '\0');
    }
    free(calls);
    json_decref(root);
    return 0;
}
