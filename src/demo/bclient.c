#include "base/fmacros.h"

#include "demo/bclient.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/url.h"

struct sink {
    struct cg_bhttp_resp *r;
    size_t max;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    size_t room = s->max > s->r->len ? s->max - s->r->len : 0;
    size_t take = n < room ? n : room;
    if (take > 0) {
        s->r->body = cg_realloc(s->r->body, s->r->len + take + 1);
        memcpy(s->r->body + s->r->len, ptr, take);
        s->r->len += take;
        s->r->body[s->r->len] = '\0';
    }
    return n; /* the rest is dropped, not an error */
}

int cg_bhttp_get(const char *url, const char *basic_user, const char *basic_password,
                 const char *bearer, long timeout_ms, size_t max_body, struct cg_bhttp_resp *out)
{
    memset(out, 0, sizeof *out);
    out->body = cg_strdup("");
    CURL *c = curl_easy_init();
    if (c == NULL) {
        cg_err_set(out->err, sizeof out->err, "cannot create an HTTP client");
        return -1;
    }
    struct sink s = {out, max_body};
    struct curl_slist *h = NULL;
    char *auth = NULL;
    if (bearer != NULL) {
        size_t n = strlen(bearer) + 32;
        auth = cg_malloc(n);
        snprintf(auth, n, "Authorization: Bearer %s", bearer);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Accept: application/json");
    int ok = h != NULL && curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
             /* A proxy from the environment may be needed for Twilio and
              * Vapi, never for this machine (the demo's simulator). */
             curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1") == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_HTTPHEADER, h) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_USERAGENT, "callgate-doctor") == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_WRITEDATA, &s) == CURLE_OK;
    if (ok && basic_user != NULL)
        ok =
            curl_easy_setopt(c, CURLOPT_USERNAME, basic_user) == CURLE_OK &&
            curl_easy_setopt(c, CURLOPT_PASSWORD, basic_password ? basic_password : "") == CURLE_OK;
    int rc = -1;
    if (!ok) {
        cg_err_set(out->err, sizeof out->err, "cannot set up the request");
    } else {
        CURLcode cc = curl_easy_perform(c);
        if (cc != CURLE_OK) {
            cg_err_set(out->err, sizeof out->err, "%s", curl_easy_strerror(cc));
        } else if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status) != CURLE_OK) {
            cg_err_set(out->err, sizeof out->err, "no status");
        } else {
            rc = 0;
        }
    }
    curl_slist_free_all(h);
    if (auth != NULL) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    curl_easy_cleanup(c);
    return rc;
}

void cg_bhttp_free(struct cg_bhttp_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

struct redisContext *cg_bredis_connect(const char *url, long timeout_ms, char *err, size_t errlen)
{
    struct cg_redis_url u;
    if (cg_redis_url_parse(url, &u, err, errlen) != 0)
        return NULL;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
    redisReply *r = NULL;
    if (c == NULL || c->err) {
        cg_err_set(err, errlen, "cannot connect to %s:%d: %s", u.host, u.port,
                   c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        cg_err_set(err, errlen, "cannot set a timeout");
        goto fail;
    }
    if (u.password) {
        r = u.user ? redisCommand(c, "AUTH %s %s", u.user, u.password)
                   : redisCommand(c, "AUTH %s", u.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            cg_err_set(err, errlen, "AUTH failed: %s", r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (u.db != 0) {
        r = redisCommand(c, "SELECT %d", u.db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            cg_err_set(err, errlen, "SELECT %d failed: %s", u.db, r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    cg_redis_url_free(&u);
    return c;
fail:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    cg_redis_url_free(&u);
    return NULL;
}
