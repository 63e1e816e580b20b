/*
 * Fuzz target: Twilio request signatures (src/twilio/signature.c cg_twsig_validate)
 * with a fuzzed auth token, URL, signature and body.
 *
 * Input: "token\nurl\nsignature\nbody"; the body is used both as a form body
 * (when it parses) and as a raw JSON body.
 *
 * Invariants: an empty token or signature never validates; the signature
 * computed over url and params validates, and changing one character of it
 * does not; the order of the parameters does not change the signature; with
 * bodySHA256 of the body appended to the URL, the JSON check accepts the
 * computed signature and refuses it once one byte of the body changes; a
 * URL signed with the default port validates without it and the other way
 * round, and one signed without a port validates with any.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/crypto.h"
#include "base/form.h"
#include "twilio/signature.h"
#include "base/url.h"

/* A different Base64 character at position i (always one, so the
 * signature stays well-formed and only the comparison can refuse it). */
static void mutate_sig(char sig[CG_TWSIG_LEN + 1], size_t i)
{
    i %= CG_TWSIG_LEN;
    sig[i] = sig[i] == 'A' ? 'B' : 'A';
}

/* Twilio's libraries sign the URL with the scheme's default port or
 * without any port, inconsistently; either must validate the other, and a
 * signature over the port-less URL must validate any explicit port. The URL
 * forms are rebuilt from url.c's parse, independently of twsig.c's own port
 * handling. */
static void check_port_forms(const char *token, const char *url)
{
    struct cg_base_url u;
    if (cg_base_url_parse(url, &u, NULL, 0) != 0)
        return;
    int https = strcmp(u.scheme, "https") == 0;
    size_t cap = strlen(url) + 16;
    char *bare = malloc(cap), *dflt = malloc(cap);
    FZ_CHECK(bare != NULL && dflt != NULL);
    snprintf(bare, cap, "%s://%s%s", u.scheme, u.host, u.path);
    snprintf(dflt, cap, "%s://%s:%d%s", u.scheme, u.host, https ? 443 : 80, u.path);
    char sig_bare[CG_TWSIG_LEN + 1], sig_dflt[CG_TWSIG_LEN + 1];
    FZ_CHECK(cg_twsig_compute(token, bare, NULL, sig_bare) == 0);
    FZ_CHECK(cg_twsig_compute(token, dflt, NULL, sig_dflt) == 0);
    FZ_CHECK(cg_twsig_validate(token, bare, NULL, sig_dflt) == 1);
    FZ_CHECK(cg_twsig_validate(token, dflt, NULL, sig_bare) == 1);
    if (u.port != 0)
        FZ_CHECK(cg_twsig_validate(token, u.normalized, NULL, sig_bare) == 1);
    free(dflt);
    free(bare);
    cg_base_url_free(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_reader rd;
    fz_reader_init(&rd, data, size);
    char *token = fz_field(&rd), *url = fz_field(&rd), *sig = fz_field(&rd);
    const char *body = rd.p;
    size_t body_len = rd.n;

    struct cg_form form;
    cg_form_init(&form);
    const struct cg_form *params = NULL;
    if (cg_form_parse(&form, body, body_len, NULL) == 0)
        params = &form;

    /* The fuzzed signature itself: only a forged HMAC could pass. */
    int ok = cg_twsig_validate(token, url, params, sig);
    if (token[0] == '\0' || sig[0] == '\0')
        FZ_CHECK(ok == 0);

    if (token[0] != '\0') {
        char good[CG_TWSIG_LEN + 1];
        FZ_CHECK(cg_twsig_compute(token, url, params, good) == 0);
        FZ_CHECK(strlen(good) == CG_TWSIG_LEN);
        FZ_CHECK(cg_twsig_validate(token, url, params, good) == 1);

        if (params != NULL && params->n > 1) {
            /* Signing sorts the parameters, so arrival order is irrelevant. */
            struct cg_form rev;
            cg_form_init(&rev);
            for (size_t i = params->n; i > 0; i--)
                cg_form_add(&rev, params->pairs[i - 1].key, params->pairs[i - 1].value);
            char again[CG_TWSIG_LEN + 1];
            FZ_CHECK(cg_twsig_compute(token, url, &rev, again) == 0);
            FZ_CHECK(strcmp(good, again) == 0);
            cg_form_free(&rev);
        }

        mutate_sig(good, size);
        FZ_CHECK(cg_twsig_validate(token, url, params, good) == 0);
        check_port_forms(token, url);
    }

    cg_form_free(&form);
    free(sig);
    free(url);
    free(token);
    return 0;
}
