/*
 * Fuzz target: Vapi server messages posted to /call-ended (src/vapi/api.c
 * cg_vapi_parse_event): status-update, end-of-call-report, hang and the rest.
 *
 * Invariants: a refused body gives a reason, a NULL root and a zeroed event;
 * an accepted one has a type name, a type that matches it, a non-empty call
 * id when one is set, a Twilio CallSid only when it is CA + 32 hex digits,
 * and is_end exactly for end-of-call-report and status-update "ended".
 * Every string must stay readable until the root is released (ASan checks).
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "vapi/api.h"

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
    struct cg_vapi_event ev;
    json_t *root = (json_t *)&ev; /* must be overwritten either way */
    char err[160] = "";
    int rc = cg_vapi_parse_event((const char *)data, size, &ev, &root, err, sizeof err);
    if (rc != 0) {
        FZ_CHECK(rc == -1 && root == NULL && err[0] != '\0');
        FZ_CHECK(ev.type_name == NULL && ev.call_id == NULL && ev.status == NULL &&
                 ev.ended_reason == NULL && ev.twilio_call_sid == NULL && ev.is_end == 0);
        return 0;
    }
    FZ_CHECK(root != NULL && json_is_object(root) && ev.type_name != NULL);

    enum cg_vapi_event_type want = CG_VAPI_EV_OTHER;
    if (strcmp(ev.type_name, "status-update") == 0)
        want = CG_VAPI_EV_STATUS_UPDATE;
    else if (strcmp(ev.type_name, "end-of-call-report") == 0)
        want = CG_VAPI_EV_END_OF_CALL_REPORT;
    else if (strcmp(ev.type_name, "hang") == 0)
        want = CG_VAPI_EV_HANG;
    FZ_CHECK(ev.type == want);

    int ended = ev.status != NULL && strcmp(ev.status, "ended") == 0;
    FZ_CHECK(ev.is_end == (want == CG_VAPI_EV_END_OF_CALL_REPORT ||
                           (want == CG_VAPI_EV_STATUS_UPDATE && ended)));
    if (ev.call_id != NULL)
        FZ_CHECK(ev.call_id[0] != '\0');
    if (ev.twilio_call_sid != NULL)
        FZ_CHECK(is_call_sid(ev.twilio_call_sid));
    if (ev.ended_reason != NULL)
        FZ_CHECK(strlen(ev.ended_reason) <= size);
    json_decref(root);
    return 0;
}
