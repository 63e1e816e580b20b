#include "base/fmacros.h"

#include "base/url.h"

#include "base/err.h"
#include "base/alloc.h"
#include "base/form.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REDIS_DEFAULT_PORT 6379

static int is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Host names and IPv4 literals: letters, digits, '-', '.', '_'. */
static int valid_reg_name(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
            return 0;
    }
    return 1;
}

/* The text between the brackets of an IPv6 literal. */
static int valid_ipv6(const char *s, size_t len)
{
    /* INET6_ADDRSTRLEN covers the longest textual form, so anything longer
     * is not an address and the copy below cannot overflow. */
    char tmp[INET6_ADDRSTRLEN];
    struct in6_addr addr;
    if (len == 0 || len >= sizeof(tmp))
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, &addr) == 1;
}

/* Parses a decimal port of 1-65535 from exactly len bytes. */
static int parse_port(const char *s, size_t len, int *out)
{
    if (len == 0)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > 65535)
            return -1;
    }
    if (v < 1)
        return -1;
    *out = (int)v;
    return 0;
}

/*
 * Splits host[:port] (no userinfo). *host and *host_len exclude IPv6
 * brackets when strip_brackets is set. port is 0 when absent. Returns NULL
 * on success or a static error message.
 */
static const char *parse_hostport(const char *s, size_t len, int strip_brackets, const char **host,
                                  size_t *host_len, int *port)
{
    const char *port_s = NULL;
    size_t port_len = 0;
    *port = 0;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return "unterminated IPv6 address";
        size_t inner = (size_t)(close - s) - 1;
        if (!valid_ipv6(s + 1, inner))
            return "invalid IPv6 address";
        size_t after = (size_t)(close - s) + 1;
        if (after < len) {
            if (s[after] != ':')
                return "unexpected characters after IPv6 address";
            port_s = s + after + 1;
            port_len = len - after - 1;
        }
        *host = strip_brackets ? s + 1 : s;
        *host_len = strip_brackets ? inner : inner + 2;
    } else {
        const char *colon = memchr(s, ':', len);
        size_t hl = colon ? (size_t)(colon - s) : len;
        if (hl == 0)
            return "missing host";
        if (!valid_reg_name(s, hl))
            return "invalid host name";
        if (colon) {
            port_s = colon + 1;
            port_len = len - hl - 1;
        }
        *host = s;
        *host_len = hl;
    }
    if (port_s && parse_port(port_s, port_len, port) != 0)
        return "port must be a number from 1 to 65535";
    return NULL;
}

/* Length of a case-insensitive scheme prefix ("redis://") if s starts with
 * it, else 0. */
static size_t scheme_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncasecmp(s, prefix, n) == 0 ? n : 0;
}

void cg_redis_url_free(struct cg_redis_url *u)
{
    free(u->host);
    free(u->user);
    cg_free_secret(u->password);
    memset(u, 0, sizeof(*u));
}

/* Splits and decodes "[user]:password". Empty parts read as absent. */
static const char *parse_userinfo(const char *s, size_t len, struct cg_redis_url *out)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return "credentials must be written as [user]:password";
    size_t ulen = (size_t)(colon - s);
    size_t plen = len - ulen - 1;
    size_t dlen;
    if (ulen > 0) {
        out->user = cg_pct_decode(s, ulen, 0, &dlen);
        if (out->user == NULL)
            return "malformed percent-encoding in user name";
    }
    if (plen > 0) {
        out->password = cg_pct_decode(colon + 1, plen, 0, &dlen);
        if (out->password == NULL)
            return "malformed percent-encoding in password";
    }
    return NULL;
}

/* Parses the database number after the '/': digits only, fits an int. */
static const char *parse_db(const char *s, size_t len, int *db)
{
    *db = 0;
    if (len > 0 && s[0] == '-')
        return "database number must not be negative";
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return "database must be a non-negative integer";
        v = v * 10 + (s[i] - '0');
        if (v > 2147483647L)
            return "database number is too large";
    }
    *db = (int)v;
    return NULL;
}

int cg_redis_url_parse(const char *url, struct cg_redis_url *out, char *err, size_t errlen)
{
    const char *msg = NULL;
    memset(out, 0, sizeof(*out));
    if (url == NULL || url[0] == '\0') {
        cg_err_set(err, errlen, "REDIS_URL is empty");
        return -1;
    }
    size_t skip = scheme_prefix(url, "redis://");
    if (skip == 0) {
        skip = scheme_prefix(url, "rediss://");
        out->tls = skip != 0;
    }
    if (skip == 0) {
        if (strstr(url, "://"))
            msg = "unsupported URL scheme, expected redis:// or rediss://";
        else
            msg = "not a redis:// or rediss:// URL";
        goto fail;
    }
    const char *rest = url + skip;
    if (strpbrk(rest, "?#")) {
        msg = "query strings and fragments are not supported";
        goto fail;
    }
    size_t auth_len = strcspn(rest, "/");
    const char *path = rest + auth_len; /* "" or "/..." */

    /* The last '@' ends the userinfo, so an unencoded '@' in a password
     * still parses the way the user meant it. */
    const char *host_s = rest;
    size_t host_part_len = auth_len;
    for (size_t i = auth_len; i > 0; i--) {
        if (rest[i - 1] == '@') {
            msg = parse_userinfo(rest, i - 1, out);
            if (msg)
                goto fail;
            host_s = rest + i;
            host_part_len = auth_len - i;
            break;
        }
    }

    const char *host;
    size_t host_len;
    int port;
    msg = parse_hostport(host_s, host_part_len, 1, &host, &host_len, &port);
    if (msg)
        goto fail;
    out->host = cg_strndup(host, host_len);
    out->port = port ? port : REDIS_DEFAULT_PORT;

    if (*path == '/') {
        msg = parse_db(path + 1, strlen(path + 1), &out->db);
        if (msg)
            goto fail;
    }
    return 0;
fail:
    cg_redis_url_free(out);
    cg_err_set(err, errlen, "%s", msg);
    return -1;
}

#define SENTINEL_DEFAULT_PORT 26379

void cg_sentinels_free(struct cg_hostport *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].host);
    free(list);
}

int cg_sentinels_parse(const char *list, struct cg_hostport **out, size_t *n, char *err,
                       size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (list == NULL || list[0] == '\0') {
        cg_err_set(err, errlen, "no sentinel given");
        return -1;
    }
    struct cg_hostport *v = cg_calloc(CG_SENTINELS_MAX, sizeof *v);
    size_t count = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && p[trimmed - 1] == ' ')
            trimmed--;
        if (count == CG_SENTINELS_MAX) {
            cg_err_set(err, errlen, "at most %d sentinels", CG_SENTINELS_MAX);
            goto fail;
        }
        const char *host;
        size_t host_len;
        int port;
        const char *msg =
            trimmed == 0 ? "empty entry" : parse_hostport(p, trimmed, 1, &host, &host_len, &port);
        if (msg) {
            cg_err_set(err, errlen, "entry %zu: %s", count + 1, msg);
            goto fail;
        }
        v[count].host = cg_strndup(host, host_len);
        v[count].port = port ? port : SENTINEL_DEFAULT_PORT;
        count++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *out = v;
    *n = count;
    return 0;
fail:
    cg_sentinels_free(v, count);
    return -1;
}

void cg_base_url_free(struct cg_base_url *u)
{
    free(u->scheme);
    free(u->host);
    free(u->path);
    free(u->normalized);
    memset(u, 0, sizeof(*u));
}

/* Path bytes that may appear unescaped: printable ASCII except the
 * delimiters that would start a query or fragment. */
static int valid_path(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return 0;
    }
    return 1;
}

int cg_base_url_parse(const char *url, struct cg_base_url *out, char *err, size_t errlen)
{
    const char *msg = NULL;
    memset(out, 0, sizeof(*out));
    if (url == NULL || url[0] == '\0') {
        cg_err_set(err, errlen, "URL is empty");
        return -1;
    }
    const char *scheme;
    size_t skip;
    if ((skip = scheme_prefix(url, "https://")) != 0) {
        scheme = "https";
    } else if ((skip = scheme_prefix(url, "http://")) != 0) {
        scheme = "http";
    } else {
        msg = "URL must start with http:// or https://";
        goto fail;
    }
    const char *rest = url + skip;
    if (strpbrk(rest, "?#")) {
        msg = "URL must not have a query string or fragment";
        goto fail;
    }
    size_t auth_len = strcspn(rest, "/");
    if (memchr(rest, '@', auth_len)) {
        msg = "credentials in the URL are not supported";
        goto fail;
    }
    const char *host;
    size_t host_len;
    int port;
    msg = parse_hostport(rest, auth_len, 0, &host, &host_len, &port);
    if (msg)
        goto fail;

    const char *path = rest + auth_len;
    size_t path_len = strlen(path);
    if (!valid_path(path, path_len)) {
        msg = "URL path contains characters that must be percent-encoded";
        goto fail;
    }
    /* Stripping every trailing '/' lets callers append "/route" safely. */
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;

    out->scheme = cg_strdup(scheme);
    out->host = cg_strndup(host, host_len);
    out->port = port;
    out->path = cg_strndup(path, path_len);

    /* scheme + "://" + host + ":" + 5 port digits + path + NUL. */
    size_t cap = strlen(scheme) + 3 + host_len + 6 + path_len + 1;
    out->normalized = cg_malloc(cap);
    int n;
    if (port)
        n = snprintf(out->normalized, cap, "%s://%s:%d%s", out->scheme, out->host, port, out->path);
    else
        n = snprintf(out->normalized, cap, "%s://%s%s", out->scheme, out->host, out->path);
    if (n < 0 || (size_t)n >= cap) {
        msg = "URL could not be normalised";
        goto fail;
    }
    return 0;
fail:
    cg_base_url_free(out);
    cg_err_set(err, errlen, "%s", msg);
    return -1;
}

int cg_host_is_loopback(const char *host)
{
    if (host == NULL)
        return 0;
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return 1;
        /* An IPv4 client of a dual-stack "::" listener shows up mapped. */
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return a6.s6_addr[12] == 127;
    }
    return 0;
}

/* The origin of an http(s) URL: its scheme, its host (brackets kept) and
 * its port, the default made explicit. -1 when it has none. */
static int url_origin(const char *url, int *https, const char **host, size_t *host_len, int *port)
{
    size_t skip;
    if ((skip = scheme_prefix(url, "https://")) != 0)
        *https = 1;
    else if ((skip = scheme_prefix(url, "http://")) != 0)
        *https = 0;
    else
        return -1;
    const char *rest = url + skip;
    size_t auth_len = strcspn(rest, "/?#");
    if (memchr(rest, '@', auth_len) != NULL)
        return -1;
    if (parse_hostport(rest, auth_len, 0, host, host_len, port) != NULL)
        return -1;
    if (*port == 0)
        *port = *https ? 443 : 80;
    return 0;
}

int cg_url_same_origin(const char *base, const char *url)
{
    int s1, s2, p1, p2;
    const char *h1, *h2;
    size_t l1, l2;
    if (base == NULL || url == NULL || url_origin(base, &s1, &h1, &l1, &p1) != 0 ||
        url_origin(url, &s2, &h2, &l2, &p2) != 0)
        return 0;
    return s1 == s2 && p1 == p2 && l1 == l2 && strncasecmp(h1, h2, l1) == 0;
}
