#include "base/fmacros.h"

#include "net/http_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "net/httpd.h"

/* The client's address as text; an IPv4 client of a dual-stack listener
 * ("::ffff:192.0.2.1") is shown as plain IPv4, as it would be on an IPv4
 * listener. */
void cg_http_peer_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, a6, out, (socklen_t)outlen);
    }
}

/* "Date:" value, formatted once a second. */
const char *cg_http_date(void)
{
    static char text[40];
    static time_t last = (time_t)-1;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return text;
}

/* RFC 9110 token characters: what a header field name is made of. */
int cg_http_is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL))
            return 0;
    }
    return 1;
}

/* A header value must not contain CR, LF or other controls (HTAB aside),
 * which would split the response. */
int cg_http_valid_value(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* A pattern is an absolute path of visible ASCII, optionally ending in
 * "/\*"; no other '*', and no query or fragment. */
int cg_http_valid_pattern(const char *p, int *is_prefix)
{
    size_t n = strlen(p);
    if (n == 0 || p[0] != '/')
        return 0;
    *is_prefix = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return 0;
        if (c == '*') {
            if (i != n - 1 || p[i - 1] != '/')
                return 0;
            *is_prefix = 1;
        }
    }
    return 1;
}

void cg_http_allow_header(unsigned methods, char *out, size_t outlen)
{
    static const struct {
        unsigned bit;
        const char *name;
    } order[] = {
        {CG_HTTP_GET, "GET"},     {CG_HTTP_HEAD, "HEAD"},     {CG_HTTP_POST, "POST"},
        {CG_HTTP_PUT, "PUT"},     {CG_HTTP_DELETE, "DELETE"}, {CG_HTTP_OPTIONS, "OPTIONS"},
        {CG_HTTP_PATCH, "PATCH"},
    };
    if (methods & CG_HTTP_GET)
        methods |= CG_HTTP_HEAD;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(methods & order[i].bit))
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", order[i].name);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

/* The path of the request-target, raw: origin-form "/a/b?q" up to the
 * query; absolute-form "http://host/a/b" after the authority ("/" when
 * there is no path). NULL when the target is neither. */
const char *cg_http_target_path(const char *t, size_t *len)
{
    if (t[0] == '/') {
        *len = strcspn(t, "?#");
        return t;
    }
    size_t i = 0;
    while ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
           (i > 0 && ((t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' || t[i] == '.')))
        i++;
    if (i == 0 || strncmp(t + i, "://", 3) != 0)
        return NULL;
    const char *a = t + i + 3;
    size_t alen = strcspn(a, "/?#");
    if (alen == 0)
        return NULL;
    const char *p = a + alen;
    if (*p != '/') {
        *len = 1;
        return "/";
    }
    *len = strcspn(p, "?#");
    return p;
}

/* Creates, binds and listens on a socket of our own so that SO_REUSEPORT can be set
 * and a failure is reported with its cause. */
int cg_http_listen_socket(const char *bind_address, int port_opt, int reuseport, char *err,
                          size_t errlen)
{
    char host[256];
    const char *a = bind_address;
    size_t alen = strlen(a);
    /* Accept "[::1]" as well as "::1". */
    if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') {
        if (alen - 2 >= sizeof host) {
            cg_err_set(err, errlen, "bad bind address %s (port %d): %s", a, port_opt, "too long");
            return -1;
        }
        memcpy(host, a + 1, alen - 2);
        host[alen - 2] = '\0';
        a = host;
    }

    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port_opt);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(a, portstr, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        cg_err_set(err, errlen, "bad bind address %s (port %d): %s", bind_address, port_opt,
                   gai != 0 ? gai_strerror(gai) : "no address");
        if (ai != NULL)
            freeaddrinfo(ai);
        return -1;
    }

    const char *step = "socket";
    int on = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        goto fail;
    step = "fcntl";
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        goto fail;
    step = "setsockopt";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        goto fail;
    /* Accepted sockets inherit keepalive, which reaps dead peers. */
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0)
        goto fail;
    if (reuseport) {
#ifdef SO_REUSEPORT
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
            goto fail;
#else
        errno = ENOPROTOOPT;
        goto fail;
#endif
    }
    step = "bind";
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto fail;
    step = "listen";
    if (listen(fd, SOMAXCONN) != 0)
        goto fail;
    freeaddrinfo(ai);
    return fd;

fail:;
    int saved = errno;
    char why[160];
    snprintf(why, sizeof why, "%s: %s", step, strerror(saved));
    cg_err_set(err, errlen, "cannot listen on %s port %d: %s", bind_address, port_opt, why);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

const char *cg_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}
