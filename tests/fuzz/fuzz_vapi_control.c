/*
 * Fuzz target: Vapi's phone-call-control message (src/vapi/control.c
 * cg_vapi_parse_control, after cg_vapi_parse_event as /call-ended runs
 * them) and the TwiML built from what it accepts (twilio/twiml.c
 * cg_twiml_transfer_dial).
 *
 * Invariants: a refused message gives a reason and an all-NULL result; an
 * accepted forward has exactly one destination within Vapi's bounds (a
 * number cg_vapi_number_ok accepts, or a sip:/sips: URI of at most 256
 * bytes without space or quote), an extension of 1 to 10 dialling
 * characters, a caller id of at most 40 bytes; a hang-up has none. The
 * TwiML of an accepted forward is either refused (NULL) or at most
 * CG_TWIML_UPDATE_MAX bytes holding exactly one <Dial> and no other verb
 * than an optional <Say>.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "twilio/twiml.h"
#include "vapi/api.h"
#include "vapi/control.h"

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_vapi_event ev;
    json_t *root = NULL;
    char err[160] = "";
    if (cg_vapi_parse_event((const char *)data, size, &ev, &root, err, sizeof err) != 0)
        return 0;
    struct cg_vapi_control c;
    char cerr[160] = "";
    int rc = cg_vapi_parse_control(root, &c, cerr, sizeof cerr);
    if (rc != 0) {
        FZ_CHECK(rc == -1 && cerr[0] != '\0');
        FZ_CHECK(c.number == NULL && c.sip_uri == NULL && c.extension == NULL &&
                 c.caller_id == NULL && c.message == NULL && c.summary == NULL);
        json_decref(root);
        return 0;
    }
    FZ_CHECK(strcmp(ev.type_name, "phone-call-control") == 0);
    if (c.request == CG_VAPI_CTL_HANGUP) {
        FZ_CHECK(c.dest_type == CG_VAPI_DEST_NONE && c.number == NULL && c.sip_uri == NULL);
        json_decref(root);
        return 0;
    }
    FZ_CHECK(c.request == CG_VAPI_CTL_FORWARD);
    if (c.dest_type == CG_VAPI_DEST_NUMBER) {
        FZ_CHECK(c.sip_uri == NULL && cg_vapi_number_ok(c.number));
        if (c.extension) {
            size_t n = strlen(c.extension);
            FZ_CHECK(n >= 1 && n <= CG_VAPI_EXTENSION_MAX &&
                     strspn(c.extension, "0123456789*#w") == n);
        }
    } else {
        FZ_CHECK(c.dest_type == CG_VAPI_DEST_SIP && c.number == NULL && c.extension == NULL);
        FZ_CHECK(strncmp(c.sip_uri, "sip:", 4) == 0 || strncmp(c.sip_uri, "sips:", 5) == 0);
        FZ_CHECK(strlen(c.sip_uri) <= CG_VAPI_SIP_URI_MAX && strpbrk(c.sip_uri, " \"'<>") == NULL);
    }
    if (c.caller_id)
        FZ_CHECK(strlen(c.caller_id) <= CG_VAPI_CALLER_ID_MAX &&
                 strpbrk(c.caller_id, " \"'<>&") == NULL);

    struct cg_twiml_transfer t = {.message = c.message,
                                  .number = c.number,
                                  .sip_uri = c.sip_uri,
                                  .extension = c.extension,
                                  .caller_id = c.caller_id,
                                  .action_url = "https://cg.example.com/transfer-status"};
    char *twiml = cg_twiml_transfer_dial(&t);
    if (twiml != NULL) {
        FZ_CHECK(strlen(twiml) <= CG_TWIML_UPDATE_MAX);
        FZ_CHECK(count(twiml, "<Dial") == 1 && count(twiml, "</Dial>") == 1);
        FZ_CHECK(count(twiml, "<Say") <= 1);
        /* The declaration, Response, Dial and Number or Sip, opened and closed. */
        FZ_CHECK(count(twiml, "<") == (c.message ? 2u : 0u) + 7u);
        free(twiml);
    }
    json_decref(root);
    return 0;
}
