/*
 * Fuzz target: the header and URL checks of the wait-time service
 * (src/waittime/): cg_wt_etag_matches over a client's If-None-Match, and
 * cg_url_same_origin (base/url.h), which decides whether a next_page_url
 * from TaskRouter may receive the account's credentials.
 *
 * Input: "if-none-match\netag\nbase-url\nurl".
 *
 * Invariants: "*" matches any tag; a tag matches itself, alone or anywhere
 * in a list, weak or strong; same-origin is symmetric, every URL that has an
 * origin is same-origin with itself and with itself plus a path, and never
 * with the same URL under the other scheme.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/url.h"
#include "waittime/waittime.h"

#include <strings.h>

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    FZ_CHECK(s != NULL);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

static void check_etag(const char *inm, const char *etag)
{
    (void)cg_wt_etag_matches(inm, etag);
    FZ_CHECK(cg_wt_etag_matches("*", etag) == 1);
    FZ_CHECK(cg_wt_etag_matches(inm, NULL) == 0 && cg_wt_etag_matches(NULL, etag) == 0);
    /* ETags as the service makes them: quoted, no commas, no blanks. */
    if (etag[0] != '"' || strpbrk(etag, ", \t") != NULL || strlen(etag) < 2)
        return;
    FZ_CHECK(cg_wt_etag_matches(etag, etag) == 1);
    char *weak = concat3("W/", etag, "");
    FZ_CHECK(cg_wt_etag_matches(weak, etag) == 1);
    char *list = concat3(inm, " , ", weak);
    FZ_CHECK(cg_wt_etag_matches(list, etag) == 1);
    free(list);
    free(weak);
}

static void check_origin(const char *base, const char *url)
{
    int same = cg_url_same_origin(base, url);
    FZ_CHECK(same == cg_url_same_origin(url, base));
    FZ_CHECK(cg_url_same_origin(url, NULL) == 0);
    if (!cg_url_same_origin(url, url))
        return;
    /* url has an origin: an authority without a path, query or fragment
     * after it keeps that origin when a path is added. */
    const char *auth = strstr(url, "://") + 3;
    if (strpbrk(auth, "/?#") == NULL) {
        char *longer = concat3(url, "/v1/Workspaces", "");
        FZ_CHECK(cg_url_same_origin(url, longer) == 1);
        free(longer);
    }
    /* The other scheme is another origin, whatever the port. */
    int https = strncasecmp(url, "https://", 8) == 0;
    char *other = concat3(https ? "http://" : "https://", auth, "");
    FZ_CHECK(cg_url_same_origin(url, other) == 0);
    free(other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_reader rd;
    fz_reader_init(&rd, data, size);
    char *inm = fz_field(&rd), *etag = fz_field(&rd), *base = fz_field(&rd);
    char *url = fz_cstr((const uint8_t *)rd.p, rd.n);
    check_etag(inm, etag);
    check_origin(base, url);
    free(url);
    free(base);
    free(etag);
    free(inm);
    return 0;
}
