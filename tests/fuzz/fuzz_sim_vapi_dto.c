/*
 * Fuzz target: the simulated Vapi's POST /call body check (sim/vapi_dto.c
 * sim_vapi_validate), which reads whatever callgate sends as a call to
 * create, bypass or outbound. It is built from the simulator's source
 * directly, outside cgcore.
 *
 * Invariants: every message is a non-empty string; a body accepted as it
 * stands has a string phoneNumberId and assistantId and a customer object
 * whose number is a string of 3 to 40 characters; without routes (outbound
 * not allowed) an accepted body is a bypass call; allowing outbound calls
 * never refuses a body that was accepted without.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include <jansson.h>

#include "base/json.h"

#include "../../sim/vapi_dto.h"

static size_t check(const json_t *body, int outbound_ok)
{
    json_t *msgs = json_array();
    sim_vapi_validate(body, outbound_ok, msgs);
    size_t i, n = json_array_size(msgs);
    json_t *m;
    json_array_foreach (msgs, i, m)
        FZ_CHECK(json_is_string(m) && json_string_length(m) > 0);
    json_decref(msgs);
    if (n == 0) {
        FZ_CHECK(json_is_string(json_object_get(body, "phoneNumberId")));
        FZ_CHECK(json_is_string(json_object_get(body, "assistantId")));
        const json_t *num = json_object_get(json_object_get(body, "customer"), "number");
        FZ_CHECK(json_is_string(num));
        FZ_CHECK(json_string_length(num) >= 3 && json_string_length(num) <= 40);
        if (!outbound_ok)
            FZ_CHECK(!sim_vapi_is_outbound(body));
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    json_t *body = cg_json_parse((const char *)data, size, CG_JSON_MAX_DEPTH, err, sizeof err);
    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    size_t strict = check(body, 0);
    size_t lenient = check(body, 1);
    if (strict == 0)
        FZ_CHECK(lenient == 0);
    json_decref(body);
    return 0;
}
