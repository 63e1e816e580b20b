/*
 * Fuzz target: what the relay of the assistant's other server messages
 * does with a message's bytes (src/gate/relay.c, src/vapi/api.c): the
 * error answer built from the parsed message (gate_relay_error_answer), the
 * signature for the next hop (cg_vapi_sign) and the customer number chosen
 * for a Twilio From (cg_vapi_customer_number, over the input as a string).
 *
 * Invariants: the error answer is a JSON object; for tool-calls it holds a
 * results array of at most 128 entries, each with a non-empty toolCallId
 * and the error text; for knowledge-base-request an empty documents array;
 * otherwise the error text. The signed copy authenticates with the same
 * settings and a changed body does not. The customer number is the input
 * itself or "anonymous", and always matches ^\+?[a-zA-Z0-9]+$ in 3 to 40
 * characters.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include <ctype.h>
#include <strings.h>

#include "gate/relay.h"
#include "vapi/api.h"

#define WHY "The server did not answer in time."

static void check_answer(const json_t *root)
{
    char *text = gate_relay_error_answer(root, WHY);
    FZ_CHECK(text != NULL);
    json_t *a = json_loads(text, 0, NULL);
    FZ_CHECK(json_is_object(a));
    const char *type = json_string_value(json_object_get(json_object_get(root, "message"), "type"));
    if (type != NULL && strcmp(type, "tool-calls") == 0) {
        const json_t *results = json_object_get(a, "results");
        FZ_CHECK(json_is_array(results) && json_array_size(results) <= 128);
        size_t i;
        const json_t *r;
        json_array_foreach (results, i, r) {
            const char *id = json_string_value(json_object_get(r, "toolCallId"));
            FZ_CHECK(id != NULL && id[0] != '\0');
            const char *err = json_string_value(json_object_get(r, "error"));
            FZ_CHECK(err != NULL && strcmp(err, WHY) == 0);
        }
    } else if (type != NULL && strcmp(type, "knowledge-base-request") == 0) {
        FZ_CHECK(json_array_size(json_object_get(a, "documents")) == 0 &&
                 json_is_array(json_object_get(a, "documents")));
    } else {
        FZ_CHECK(json_is_string(json_object_get(a, "error")));
    }
    json_decref(a);
    free(text);
}

static const char *header_in(const char *name, void *arg)
{
    char **lines = arg;
    size_t n = strlen(name);
    for (; *lines; lines++)
        if (strncasecmp(*lines, name, n) == 0 && (*lines)[n] == ':')
            return *lines + n + 2;
    return NULL;
}

static void check_sign(const char *body, size_t len)
{
    struct cg_vapi_auth a = {.hmac_secret = "fuzz-hmac",
                             .hmac_prefix = "sha256=",
                             .hmac_encoding = len % 2 ? "base64" : "hex"};
    char *lines[CG_VAPI_SIGN_MAX + 1];
    uint64_t now = 1750183823822ULL;
    FZ_CHECK(cg_vapi_sign(&a, body, len, now, (int)(len % 3 == 0), lines) == 2);
    FZ_CHECK(cg_vapi_authenticate(&a, header_in, lines, body, len, now) == 1);
    FZ_CHECK(cg_vapi_authenticate(&a, header_in, lines, "{}x", 3, now) ==
             (len == 3 && memcmp(body, "{}x", 3) == 0));
    cg_vapi_sign_free(lines);
}

static void check_number(const uint8_t *data, size_t size)
{
    char from[64];
    size_t n = size < sizeof from - 1 ? size : sizeof from - 1;
    memcpy(from, data, n);
    from[n] = '\0';
    const char *num = cg_vapi_customer_number(from);
    FZ_CHECK(num == from || strcmp(num, "anonymous") == 0);
    size_t len = strlen(num), i = num[0] == '+' ? 1 : 0;
    FZ_CHECK(len >= 3 && len <= 40 && i < len);
    for (; i < len; i++)
        FZ_CHECK(isalnum((unsigned char)num[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    check_number(data, size);
    if (size <= 65536)
        check_sign(body, size);
    struct cg_vapi_event ev;
    json_t *root = NULL;
    char err[160];
    if (cg_vapi_parse_event(body, size, &ev, &root, err, sizeof err) == 0) {
        check_answer(root);
        json_decref(root);
    }
    /* Anything at all as the root, not only a parsed message. */
    json_t *any = json_loadb(body, size, JSON_DECODE_ANY, NULL);
    check_answer(any);
    json_decref(any);
    return 0;
}
