/*
 * twilio/webhook.h - the checks every Twilio webhook passes before anything else
 * happens: a form-encoded body, a valid X-Twilio-Signature computed over
 * PUBLIC_URL and the request's path and query, and a well-formed CallSid.
 *
 * On failure the request has been answered (400 for a malformed request,
 * 403 for a bad or missing signature, or when TWILIO_AUTH_TOKEN is unset)
 * and NULL is returned; nothing else may be done with it. On success the
 * form is owned by the request and *sid points into it.
 */
#ifndef CG_TWHOOK_H
#define CG_TWHOOK_H

struct cg_config;
struct cg_form;
struct cg_http_req;

const struct cg_form *cg_twhook_check(struct cg_http_req *req, const struct cg_config *cfg,
                                      const char **sid);

#endif
