/*
 * vapi_dto.c - CreateCallDTO validation for the simulated POST /call (see
 * vapi_dto.h): the OpenAPI spec's members with NestJS's whitelist
 * behaviour, so a gate that sends a misspelt field finds out here rather
 * than in production. Pure: no state, no I/O.
 */
#include "base/fmacros.h"

#include "vapi_dto.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

static int is_member(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(key, *list) == 0)
            return 1;
    return 0;
}

/* Whitelist check as NestJS's forbidNonWhitelisted does it. */
/* CreateCustomerDTO.number: with numberE164CheckEnabled false only
 * ^\+?[a-zA-Z0-9]+$; otherwise (the default) E.164, + and 2 to 15 digits
 * not starting with 0. The length (3 to 40) is checked apart. */
static int number_ok(const char *n, int e164_off)
{
    size_t i = n[0] == '+' ? 1 : 0, len = strlen(n);
    if (i == len)
        return 0;
    if (!e164_off && (i != 1 || n[1] == '0' || len - 1 < 2 || len - 1 > 15))
        return 0;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        int digit = c >= '0' && c <= '9';
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!digit && (!e164_off || !alpha))
            return 0;
    }
    return 1;
}

static void check_members(const json_t *o, const char *prefix, const char *const *allowed,
                          json_t *msgs)
{
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)o, key, val) {
        (void)val;
        if (!is_member(key, allowed)) {
            char m[200];
            snprintf(m, sizeof(m), "property %s%.100s should not exist", prefix, key);
            json_array_append_new(msgs, json_string(m));
        }
    }
}

void sim_vapi_validate(const json_t *body, int outbound_ok, json_t *msgs)
{
    static const char *const top[] = {"assistantVersion",
                                      "transport",
                                      "customers",
                                      "name",
                                      "schedulePlan",
                                      "assistantId",
                                      "assistant",
                                      "assistantOverrides",
                                      "squadId",
                                      "squad",
                                      "squadOverrides",
                                      "workflowId",
                                      "workflow",
                                      "workflowOverrides",
                                      "phoneNumberId",
                                      "phoneNumber",
                                      "customerId",
                                      "customer",
                                      "phoneCallProviderBypassEnabled",
                                      "type",
                                      NULL};
    static const char *const cust_keys[] = {"numberE164CheckEnabled",
                                            "extension",
                                            "assistantOverrides",
                                            "squadOverrides",
                                            "number",
                                            "sipUri",
                                            "name",
                                            "email",
                                            "externalId",
                                            NULL};
    check_members(body, "", top, msgs);
    if (!json_is_string(json_object_get(body, "phoneNumberId")))
        json_array_append_new(msgs, json_string("phoneNumberId must be a string"));
    if (!json_is_string(json_object_get(body, "assistantId")))
        json_array_append_new(msgs, json_string("assistantId must be a string"));
    json_t *bypass = json_object_get(body, "phoneCallProviderBypassEnabled");
    json_t *type = json_object_get(body, "type");
    if (bypass && !json_is_boolean(bypass))
        json_array_append_new(
            msgs, json_string("phoneCallProviderBypassEnabled must be a boolean value"));
    else if (!json_is_true(bypass) && !outbound_ok)
        json_array_append_new(
            msgs, json_string("phoneCallProviderBypassEnabled must be true (callgate-sim "
                              "simulates provider-bypass calls only)"));
    else if (json_is_true(bypass) && type &&
             !(json_is_string(type) && strcmp(json_string_value(type), "inboundPhoneCall") == 0))
        json_array_append_new(msgs, json_string("type must be inboundPhoneCall for a bypass call"));
    else if (!json_is_true(bypass) && type &&
             !(json_is_string(type) && strcmp(json_string_value(type), "outboundPhoneCall") == 0))
        json_array_append_new(msgs,
                              json_string("type must be outboundPhoneCall for an outbound call"));
    json_t *cust = json_object_get(body, "customer");
    if (!json_is_object(cust)) {
        json_array_append_new(msgs, json_string("customer must be an object"));
    } else {
        check_members(cust, "customer.", cust_keys, msgs);
        json_t *num = json_object_get(cust, "number");
        if (!json_is_string(num))
            json_array_append_new(msgs, json_string("customer.number must be a string"));
        else if (json_string_length(num) < 3)
            json_array_append_new(
                msgs, json_string("customer.number must be longer than or equal to 3 characters"));
        else if (json_string_length(num) > 40)
            json_array_append_new(
                msgs,
                json_string("customer.number must be shorter than or equal to 40 characters"));
        else if (!number_ok(json_string_value(num),
                            json_is_false(json_object_get(cust, "numberE164CheckEnabled"))))
            json_array_append_new(
                msgs, json_string(json_is_false(json_object_get(cust, "numberE164CheckEnabled"))
                                      ? "customer.number must match /^\\+?[a-zA-Z0-9]+$/ "
                                        "regular expression"
                                      : "customer.number must be a valid phone number in the "
                                        "E.164 format"));
    }
    json_t *ov = json_object_get(body, "assistantOverrides");
    if (ov && !json_is_object(ov)) {
        json_array_append_new(msgs, json_string("assistantOverrides must be an object"));
    } else if (ov) {
        json_t *md = json_object_get(ov, "maxDurationSeconds");
        if (md && !json_is_number(md))
            json_array_append_new(
                msgs, json_string("assistantOverrides.maxDurationSeconds must be a number"));
        else if (md && json_number_value(md) < 10)
            json_array_append_new(
                msgs,
                json_string("assistantOverrides.maxDurationSeconds must not be less than 10"));
        else if (md && json_number_value(md) > 43200)
            json_array_append_new(
                msgs, json_string(
                          "assistantOverrides.maxDurationSeconds must not be greater than 43200"));
        json_t *meta = json_object_get(ov, "metadata");
        if (meta && !json_is_object(meta))
            json_array_append_new(msgs,
                                  json_string("assistantOverrides.metadata must be an object"));
        json_t *vv = json_object_get(ov, "variableValues");
        if (vv && !json_is_object(vv))
            json_array_append_new(
                msgs, json_string("assistantOverrides.variableValues must be an object"));
    }
}

int sim_vapi_is_outbound(const json_t *body)
{
    return !json_is_true(json_object_get(body, "phoneCallProviderBypassEnabled"));
}
