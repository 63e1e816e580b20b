#include "base/fmacros.h"

#include "twilio/webhook.h"

#include <stdio.h>

#include "base/config.h"
#include "base/form.h"
#include "net/httpd.h"
#include "base/log.h"
#include "twilio/api.h"
#include "twilio/signature.h"

#define URL_MAX 4096

const struct cg_form *cg_twhook_check(struct cg_http_req *req, const struct cg_config *cfg,
                                      const char **sid)
{
    const char *ferr = NULL;
    const struct cg_form *form = cg_http_req_form(req, &ferr);
    if (form == NULL) {
        cg_http_reply_error(req, 400, "bad_request", ferr ? ferr : "malformed form body");
        return NULL;
    }
    const char *sig = cg_http_req_header(req, "X-Twilio-Signature");
    char url[URL_MAX];
    int n = snprintf(url, sizeof url, "%s%s", cfg->public_url, cg_http_req_uri(req));
    if (sig == NULL || cfg->twilio_auth_token[0] == '\0' || n < 0 || (size_t)n >= sizeof url ||
        !cg_twsig_validate(cfg->twilio_auth_token, url, form, sig)) {
        /* The signature covers the URL Twilio called; callgate can only
         * rebuild it from PUBLIC_URL, so the usual cause is a PUBLIC_URL
         * that is not that URL (another host, scheme, port or a proxy's
         * path prefix). The URL is logged, never the token. */
        cg_log_warn("rejected a twilio request with a bad signature; the usual cause is a "
                    "PUBLIC_URL that differs from the URL Twilio calls",
                    "path=%s peer=%s checked_url=%s signature=%s", cg_http_req_path(req),
                    cg_http_req_peer(req), n >= 0 && (size_t)n < sizeof url ? url : "(too long)",
                    sig == NULL                         ? "missing"
                    : cfg->twilio_auth_token[0] == '\0' ? "TWILIO_AUTH_TOKEN unset"
                                                        : "mismatch");
        cg_http_reply_error(req, 403, "bad_signature", "X-Twilio-Signature does not match");
        return NULL;
    }
    *sid = cg_form_get(form, "CallSid");
    if (*sid == NULL || !cg_twilio_sid_valid(*sid, "CA")) {
        cg_http_reply_error(req, 400, "bad_request", "CallSid is missing or malformed");
        return NULL;
    }
    return form;
}
