/*
 * access.c - the one access rule of the gate's operator endpoints
 * (access.h).
 */
#include "base/fmacros.h"

#include "gate/access.h"

#include <stddef.h>

#include "base/config.h"
#include "base/crypto.h"
#include "base/form.h"
#include "gate/internal.h"
#include "net/httpd.h"

/* Without a token, loopback clients only, and only while PUBLIC_URL is
 * itself a loopback address: behind a reverse proxy on the same host every
 * request comes from loopback, so the peer's address says nothing about who
 * sent it (app.c says so at start). */
int gate_admin_ok(struct cg_gate *g, struct cg_http_req *req, int query_token_ok)
{
    const char *token = g->cfg->admin_token;
    if (token[0] == '\0') {
        if (g->cfg->public_url_loopback && cg_http_req_is_loopback(req))
            return 1;
        cg_http_reply_error(req, 403, "forbidden",
                            g->cfg->public_url_loopback
                                ? "admin endpoints are loopback-only until ADMIN_TOKEN is set"
                                : "admin endpoints are off: set ADMIN_TOKEN (PUBLIC_URL is not "
                                  "a loopback address, so loopback peers are not trusted)");
        return 0;
    }
    if (cg_ct_streq(cg_http_req_bearer(req), token))
        return 1;
    if (query_token_ok) {
        const struct cg_form *q = cg_http_req_query(req);
        const char *t = q ? cg_form_get(q, "token") : NULL;
        if (t != NULL && cg_ct_streq(t, token))
            return 1;
    }
    cg_http_set_header(req, "WWW-Authenticate", "Bearer");
    cg_http_reply_error(req, 401, "unauthorized",
                        query_token_ok ? "a valid admin token is required (Authorization: "
                                         "Bearer, or the token query parameter)"
                                       : "a valid admin bearer token is required");
    return 0;
}
