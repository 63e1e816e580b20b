/*
 * vapi_dto.h - what the simulated Vapi accepts in POST /call: CreateCallDTO
 * as the OpenAPI spec describes it, with NestJS's forbidNonWhitelisted
 * (an unknown member is a 400 naming it). A bypass call
 * (phoneCallProviderBypassEnabled true, type inboundPhoneCall if given) is
 * always accepted; an outbound call (no bypass, type outboundPhoneCall if
 * given: Vapi dials customer.number from phoneNumberId) only when the
 * scenario has routes, so that every older scenario still refuses it.
 */
#ifndef SIM_VAPI_DTO_H
#define SIM_VAPI_DTO_H

#include <jansson.h>

/* Appends one message (a JSON string, NestJS's wording) to msgs per
 * problem of body; msgs left empty means valid. */
void sim_vapi_validate(const json_t *body, int outbound_ok, json_t *msgs);
/* 1 when a valid body asks for an outbound call (no bypass). */
int sim_vapi_is_outbound(const json_t *body);

#endif
