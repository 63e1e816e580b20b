/*
 * control.c - parsing of Vapi's phone-call-control server message and the
 * check of the serverMessages list callgate asks for (vapi/control.h).
 */
#include "base/fmacros.h"

#include "vapi/control.h"

#include <string.h>

#include "base/err.h"
#include "base/json.h"

static int printable_no_space(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

int cg_vapi_number_ok(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n < CG_VAPI_DEST_NUMBER_MIN || n > CG_VAPI_DEST_NUMBER_MAX)
        return 0;
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if (strchr("+ -().", c) == NULL)
            return 0;
    }
    return digits >= 3;
}

static int extension_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CG_VAPI_EXTENSION_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '*' || s[i] == '#' || s[i] == 'w'))
            return 0;
    return 1;
}

static int sip_ok(const char *s)
{
    size_t n = strlen(s);
    int scheme = strncmp(s, "sip:", 4) == 0 ? 4 : strncmp(s, "sips:", 5) == 0 ? 5 : 0;
    return scheme > 0 && n > (size_t)scheme && n <= CG_VAPI_SIP_URI_MAX && printable_no_space(s) &&
           strpbrk(s, "\"<>'") == NULL;
}

/* A string member, or the content of a CustomMessage object; NULL when
 * absent or empty. -1 when present with another type. */
static int message_text(const json_t *dest, const char **out)
{
    *out = NULL;
    const json_t *m = json_object_get(dest, "message");
    if (m == NULL || json_is_null(m))
        return 0;
    if (json_is_object(m))
        m = json_object_get(m, "content");
    if (m == NULL)
        return 0;
    if (!json_is_string(m))
        return -1;
    if (json_string_value(m)[0] != '\0')
        *out = json_string_value(m);
    return 0;
}

/* Optional string member: 0 with *out NULL when absent, -1 when present
 * with another type. */
static int opt_str(const json_t *o, const char *key, const char **out)
{
    *out = NULL;
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    if (json_string_value(v)[0] != '\0')
        *out = json_string_value(v);
    return 0;
}

int cg_vapi_parse_control(const json_t *root, struct cg_vapi_control *c, char *err, size_t errlen)
{
    const char *why = NULL;
    if (c == NULL) {
        cg_err_set(err, errlen, "invalid arguments");
        return -1;
    }
    memset(c, 0, sizeof *c);
    const json_t *msg = json_object_get(root, "message");
    const char *type = cg_json_str(msg, "type");
    if (!json_is_object(msg) || type == NULL || strcmp(type, "phone-call-control") != 0) {
        why = "not a phone-call-control message";
        goto fail;
    }
    const char *request = cg_json_str(msg, "request");
    if (request == NULL) {
        why = "message.request missing or not a string";
        goto fail;
    }
    if (strcmp(request, "hang-up") == 0) {
        c->request = CG_VAPI_CTL_HANGUP;
    } else if (strcmp(request, "forward") == 0) {
        c->request = CG_VAPI_CTL_FORWARD;
    } else {
        why = "message.request must be forward or hang-up";
        goto fail;
    }
    c->summary = cg_json_str(msg, "call.analysis.summary");
    if (c->summary == NULL)
        c->summary = cg_json_str(msg, "analysis.summary");
    if (c->summary != NULL && c->summary[0] == '\0')
        c->summary = NULL;
    if (c->request == CG_VAPI_CTL_HANGUP)
        return 0;

    const json_t *dest = json_object_get(msg, "destination");
    const char *dtype = cg_json_str(dest, "type");
    if (!json_is_object(dest) || dtype == NULL) {
        why = "a forward needs message.destination with a type";
        goto fail;
    }
    if (message_text(dest, &c->message) != 0) {
        why = "destination.message must be a string or a custom message";
        goto fail;
    }
    if (opt_str(dest, "callerId", &c->caller_id) != 0 ||
        (c->caller_id &&
         (strlen(c->caller_id) > CG_VAPI_CALLER_ID_MAX || !printable_no_space(c->caller_id) ||
          strpbrk(c->caller_id, "\"<>'&") != NULL))) {
        why = "destination.callerId must be at most 40 printable characters";
        goto fail;
    }
    if (strcmp(dtype, "number") == 0) {
        c->dest_type = CG_VAPI_DEST_NUMBER;
        c->number = cg_json_str(dest, "number");
        if (!cg_vapi_number_ok(c->number)) {
            why = "destination.number must be a phone number of 3 to 40 characters";
            goto fail;
        }
        if (opt_str(dest, "extension", &c->extension) != 0 ||
            (c->extension && !extension_ok(c->extension))) {
            why = "destination.extension must be 1 to 10 digits, '*', '#' or 'w'";
            goto fail;
        }
    } else if (strcmp(dtype, "sip") == 0) {
        c->dest_type = CG_VAPI_DEST_SIP;
        c->sip_uri = cg_json_str(dest, "sipUri");
        if (c->sip_uri == NULL || !sip_ok(c->sip_uri)) {
            why = "destination.sipUri must be a sip: or sips: URI of at most 256 characters";
            goto fail;
        }
    } else {
        why = "destination.type must be number or sip";
        goto fail;
    }
    return 0;

fail:
    memset(c, 0, sizeof *c);
    cg_err_set(err, errlen, "%s", why);
    return -1;
}

const char *cg_vapi_control_request_name(enum cg_vapi_control_request r)
{
    return r == CG_VAPI_CTL_HANGUP ? "hang-up" : "forward";
}
