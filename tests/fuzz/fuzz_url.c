/*
 * Fuzz target: the URLs callgate is configured with (src/base/url.c):
 * REDIS_URL through cg_redis_url_parse and PUBLIC_URL / *_BASE_URL through
 * cg_base_url_parse. Each input is tried as both.
 *
 * Invariants: a refusal leaves the result zeroed with a message; an accepted
 * Redis URL has a host, a port of 1-65535 and db >= 0, and the URL rebuilt
 * from its parts (userinfo percent-encoded, IPv6 host bracketed) parses to
 * the same parts; an accepted base URL's normalised form parses to itself,
 * with the same parts, and has no trailing '/'.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/form.h"
#include "base/url.h"

static int streq_null(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_redis(const char *s)
{
    struct cg_redis_url u;
    char err[128] = "";
    if (cg_redis_url_parse(s, &u, err, sizeof err) != 0) {
        FZ_CHECK(err[0] != '\0' && u.host == NULL && u.user == NULL && u.password == NULL);
        return;
    }
    FZ_CHECK(u.host != NULL && u.host[0] != '\0');
    FZ_CHECK(u.port >= 1 && u.port <= 65535 && u.db >= 0);
    /* Empty user names and passwords read as absent. */
    FZ_CHECK(u.user == NULL || u.user[0] != '\0');
    FZ_CHECK(u.password == NULL || u.password[0] != '\0');

    char *user = u.user ? cg_pct_encode(u.user, strlen(u.user)) : NULL;
    char *pass = u.password ? cg_pct_encode(u.password, strlen(u.password)) : NULL;
    int v6 = strchr(u.host, ':') != NULL;
    size_t cap = strlen(u.host) + (user ? strlen(user) : 0) + (pass ? strlen(pass) : 0) + 64;
    char *rebuilt = malloc(cap);
    FZ_CHECK(rebuilt != NULL);
    snprintf(rebuilt, cap, "redis://%s%s%s%s%s%s%s:%d/%d", user ? user : "",
             user || pass ? ":" : "", pass ? pass : "", user || pass ? "@" : "", v6 ? "[" : "",
             u.host, v6 ? "]" : "", u.port, u.db);
    struct cg_redis_url w;
    FZ_CHECK(cg_redis_url_parse(rebuilt, &w, err, sizeof err) == 0);
    FZ_CHECK(strcmp(u.host, w.host) == 0 && u.port == w.port && u.db == w.db);
    FZ_CHECK(streq_null(u.user, w.user) && streq_null(u.password, w.password));
    cg_redis_url_free(&w);
    free(rebuilt);
    free(pass);
    free(user);
    cg_redis_url_free(&u);
    FZ_CHECK(u.host == NULL && u.password == NULL);
}

static void check_base(const char *s)
{
    struct cg_base_url u;
    char err[128] = "";
    if (cg_base_url_parse(s, &u, err, sizeof err) != 0) {
        FZ_CHECK(err[0] != '\0' && u.normalized == NULL && u.host == NULL);
        return;
    }
    FZ_CHECK(strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0);
    FZ_CHECK(u.host[0] != '\0' && u.port >= 0 && u.port <= 65535);
    size_t n = strlen(u.normalized);
    FZ_CHECK(n > 0 && u.normalized[n - 1] != '/');
    FZ_CHECK(u.path[0] == '\0' || u.path[0] == '/');

    struct cg_base_url w;
    FZ_CHECK(cg_base_url_parse(u.normalized, &w, err, sizeof err) == 0);
    FZ_CHECK(strcmp(u.normalized, w.normalized) == 0 && strcmp(u.scheme, w.scheme) == 0 &&
             strcmp(u.host, w.host) == 0 && u.port == w.port && strcmp(u.path, w.path) == 0);
    cg_base_url_free(&w);
    cg_base_url_free(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fz_cstr(data, size);
    check_redis(s);
    check_base(s);
    free(s);
    return 0;
}
