#include "base/fmacros.h"

#include "gatereq.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/form.h"
#include "twilio/signature.h"

void cgt_twilio_post(const char *url, const char *signed_url, const char *token,
                     const char *const *kv, const char *const *sign_kv, struct cgt_resp *r)
{
    struct cg_form form, signed_form;
    cg_form_init(&form);
    cg_form_init(&signed_form);
    for (size_t k = 0; kv[k] && kv[k + 1]; k += 2)
        cg_form_add(&form, kv[k], kv[k + 1]);
    const char *const *skv = sign_kv ? sign_kv : kv;
    for (size_t k = 0; skv[k] && skv[k + 1]; k += 2)
        cg_form_add(&signed_form, skv[k], skv[k + 1]);
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(token, signed_url, &signed_form, sig), 0);
    char sigh[64];
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(&form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
    free(body);
    cg_form_free(&form);
    cg_form_free(&signed_form);
}

void cgt_vapi_call_json(char *out, size_t n, const char *id, const char *status, const char *sid,
                        const char *gate, const char *phone_id, const char *customer, int age_ms)
{
    char created[25];
    cg_iso8601_ms(cg_wall_ms() - (uint64_t)age_ms, created);
    snprintf(out, n,
             "{\"id\":\"%s\",\"orgId\":\"org-1\",\"type\":\"inboundPhoneCall\",\"status\":\"%s\","
             "\"createdAt\":\"%s\",\"updatedAt\":\"%s\",\"phoneNumberId\":\"%s\","
             "\"customer\":{\"number\":\"%s\"},\"assistantOverrides\":{\"metadata\":"
             "{\"twilioCallSid\":\"%s\",\"callgateAttempt\":1,\"callgateGate\":\"%s\"}}}",
             id, status, created, created, phone_id, customer, sid, gate);
}

char *cgt_queue_members_json(const char *queue_sid, const char *const *sids, int wait_s)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    int err = cg_buf_appendc(&b, '[');
    for (int k = 0; sids[k]; k++)
        err |= cg_buf_printf(&b,
                             "%s{\"call_sid\":\"%s\",\"date_enqueued\":\"Tue, 07 Aug 2018 "
                             "04:08:%02d +0000\",\"position\":%d,\"queue_sid\":\"%s\","
                             "\"wait_time\":%d}",
                             k ? "," : "", sids[k], 9 + k, k + 1, queue_sid, wait_s - k);
    err |= cg_buf_appendc(&b, ']');
    assert_int_equal(err, 0);
    return cg_buf_take(&b);
}
