/*
 * gatereq.h - what a test sends to a gate and has the fakes answer for it,
 * independent of any fixture (tests/integration/gate_kit.h builds on it):
 * form webhooks signed as Twilio signs them, a call of Vapi's GET /call
 * answer, and the members of a Twilio queue.
 * Fails the running cmocka test when a signature cannot be computed;
 * returned strings are malloc'd (the caller frees them).
 */
#ifndef CGT_GATEREQ_H
#define CGT_GATEREQ_H

#include "harness.h"

/* POSTs kv (name, value, ..., NULL) form-encoded to url, with the
 * X-Twilio-Signature Twilio computes with token over signed_url (the
 * public URL Twilio calls) and sign_kv (kv when NULL). */
void cgt_twilio_post(const char *url, const char *signed_url, const char *token,
                     const char *const *kv, const char *const *sign_kv, struct cgt_resp *r);

/* One call of Vapi's GET /call answer, as Vapi writes a Call: created
 * age_ms ago from phone_id for customer, placed by gate `gate` for the
 * caller sid. */
void cgt_vapi_call_json(char *out, size_t n, const char *id, const char *status, const char *sid,
                        const char *gate, const char *phone_id, const char *customer, int age_ms);

/* Twilio's GET .../Queues/{queue_sid}/Members answer: the callers sids
 * (NULL-terminated) in this order, the first enqueued first and waiting
 * wait_s, each next one a second less. */
char *cgt_queue_members_json(const char *queue_sid, const char *const *sids, int wait_s);

#endif
