/*
 * twilio/signature.h - Twilio request signatures (X-Twilio-Signature).
 *
 * Algorithm (twilio-python request_validator.py, twilio-node webhooks.ts):
 * the full URL Twilio requested, then for form bodies every parameter name
 * followed by its value, names sorted bytewise and, for a repeated name, its
 * distinct values sorted; HMAC-SHA1 keyed with the auth token; Base64.
 * (Twilio signs JSON bodies over a URL carrying bodySHA256; callgate's
 * webhooks are all form posts, so that variant is not here.)
 *
 * Validation accepts the URL as given, with the scheme's default port added,
 * and with any port removed, because Twilio's own libraries do ("sig
 * generation on back end is inconsistent"). Comparison is constant-time.
 *
 * Pure functions, no I/O: fuzz targets.
 */
#ifndef CG_TWSIG_H
#define CG_TWSIG_H

#include <stddef.h>

#include "base/form.h"

/* Base64 of a 20-byte digest is 28 characters. */
#define CG_TWSIG_LEN 28

/* Computes the signature of url + params (params may be NULL) into
 * out[CG_TWSIG_LEN + 1]. Returns 0, or -1 if the HMAC could not be computed. */
int cg_twsig_compute(const char *auth_token, const char *url, const struct cg_form *params,
                     char out[CG_TWSIG_LEN + 1]);

/* 1 if signature matches url + params under any accepted URL form, else 0.
 * A NULL or empty signature or token never validates. */
int cg_twsig_validate(const char *auth_token, const char *url, const struct cg_form *params,
                      const char *signature);

#endif
