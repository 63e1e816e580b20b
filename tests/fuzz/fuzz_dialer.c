/*
 * Fuzz target: the dialer API's bodies (src/gate/dialer_parse.c): POST
 * /slots, POST /slots/{id}/renew and POST /calls/outbound, and the ids of
 * their paths.
 *
 * Invariants: a refusal gives a reason; an accepted slot request names a
 * valid route and a ttl within bounds; an accepted outbound request names
 * a valid route, an E.164 number, and variables that are a JSON object of
 * at most GATE_VARIABLES_MAX bytes which parses back; ids are accepted
 * only in the documented alphabet and length.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/config_routes.h"
#include "base/json.h"
#include "gate/dialer_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    char err[128];

    struct gate_slot_req s;
    err[0] = '\0';
    if (gate_parse_slot_req(body, size, &s, err, sizeof err) == 0) {
        FZ_CHECK(cg_routes_valid_name(s.route));
        FZ_CHECK(s.ttl_s >= GATE_SLOT_TTL_MIN && s.ttl_s <= GATE_SLOT_TTL_MAX);
    } else {
        FZ_CHECK(err[0] != '\0');
    }

    long ttl = 42;
    err[0] = '\0';
    if (gate_parse_renew_req(body, size, &ttl, err, sizeof err) == 0)
        FZ_CHECK(ttl == 42 || (ttl >= GATE_SLOT_TTL_MIN && ttl <= GATE_SLOT_TTL_MAX));
    else
        FZ_CHECK(err[0] != '\0');

    struct gate_outbound_req o;
    err[0] = '\0';
    if (gate_parse_outbound_req(body, size, &o, err, sizeof err) == 0) {
        FZ_CHECK(cg_routes_valid_name(o.route));
        FZ_CHECK(cg_routes_is_e164(o.number));
        FZ_CHECK(o.variables != NULL && strlen(o.variables) <= GATE_VARIABLES_MAX);
        char jerr[64];
        json_t *v = cg_json_parse(o.variables, strlen(o.variables), 64, jerr, sizeof jerr);
        FZ_CHECK(v != NULL && json_is_object(v));
        json_decref(v);
        gate_outbound_req_free(&o);
    } else {
        FZ_CHECK(err[0] != '\0' && o.variables == NULL);
    }

    if (gate_dialer_id_valid(body, size)) {
        FZ_CHECK(size > 0 && size <= GATE_DIALER_ID_MAX);
        for (size_t i = 0; i < size; i++)
            FZ_CHECK(body[i] != '/' && body[i] != '\0' && body[i] != '%');
    }
    return 0;
}
