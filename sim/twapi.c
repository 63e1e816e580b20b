/*
 * twapi.c - request plumbing shared by the simulated Twilio REST API and
 * TaskRouter (see twapi.h). Both must answer alike to the byte, so the
 * code that produces those bytes exists once.
 */
#include "base/fmacros.h"

#include "twapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <event2/event.h>

#include "base/buf.h"
#include "base/form.h"
#include "net/httpd.h"

#define CODE_BAD_REQUEST 20001
#define CODE_BAD_TOKEN   21481

/* ---- JSON writer ---- */

void sim_jw_key(struct sim_jw *j, const char *k)
{
    if (!j->first)
        cg_buf_appendc(j->b, ',');
    j->first = 0;
    cg_buf_append_json_str(j->b, k, strlen(k));
    cg_buf_appendc(j->b, ':');
}

void sim_jw_str(struct sim_jw *j, const char *k, const char *v)
{
    sim_jw_key(j, k);
    if (v)
        cg_buf_append_json_str(j->b, v, strlen(v));
    else
        cg_buf_appends(j->b, "null");
}

void sim_jw_long(struct sim_jw *j, const char *k, long v)
{
    sim_jw_key(j, k);
    cg_buf_printf(j->b, "%ld", v);
}

struct sim_jw sim_jw_open(struct sim_jw *j, const char *k, char brace)
{
    sim_jw_key(j, k);
    cg_buf_appendc(j->b, brace);
    return (struct sim_jw){j->b, 1};
}

void sim_jw_close(struct sim_jw *j, char brace)
{
    cg_buf_appendc(j->b, brace);
}

/* ---- replies ---- */

void sim_api_error(struct cg_http_req *req, int status, int code, const char *message)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_printf(&b, "{\"code\":%d,\"message\":", code);
    cg_buf_append_json_str(&b, message, strlen(message));
    cg_buf_printf(&b, ",\"more_info\":\"https://www.twilio.com/docs/errors/%d\",\"status\":%d}",
                  code, status);
    cg_http_reply_json(req, status, cg_buf_str(&b));
    cg_buf_free(&b);
}

void sim_api_unauthorized(struct cg_http_req *req)
{
    cg_http_set_header(req, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
    cg_http_reply_json(req, 401,
                       "{\"code\":20003,\"detail\":\"Your AccountSid or AuthToken was "
                       "incorrect.\",\"message\":\"Authenticate\",\"more_info\":\"https://"
                       "www.twilio.com/docs/errors/20003\",\"status\":401}");
}

void sim_api_reply_buf(struct cg_http_req *req, int status, struct cg_buf *b)
{
    cg_http_reply_json(req, status, cg_buf_str(b));
    cg_buf_free(b);
}

/* ---- request parameters ---- */

const char *sim_api_basic_credentials(struct cg_http_req *req)
{
    const char *h = cg_http_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return NULL;
    h += 6;
    while (*h == ' ')
        h++;
    return h;
}

int sim_api_parse_long(const char *s, long lo, long hi, long *out)
{
    /* strtol would skip leading spaces and take a '+': Twilio does not. */
    if (!s || !*s || *s == ' ' || *s == '+')
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

long sim_api_split_path(const char *rest, char *buf, size_t buflen, char **seg, size_t max)
{
    if (buflen == 0 || max == 0 || strlen(rest) >= buflen)
        return -1;
    memcpy(buf, rest, strlen(rest) + 1);
    size_t n = 0;
    for (char *p = buf;;) {
        if (n == max)
            return -1;
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (!seg[i][0])
            return -1;
    return (long)n;
}

int sim_api_hold_timer(struct event *ev, double delay, double max_s)
{
    if (delay > max_s)
        delay = max_s;
    struct timeval tv;
    tv.tv_sec = (time_t)delay;
    tv.tv_usec = (suseconds_t)((delay - (double)tv.tv_sec) * 1e6);
    return evtimer_add(ev, &tv);
}

/* ---- paging ---- */

static int valid_token(const char *t, const char *sid_prefix)
{
    if (strlen(t) != 36 || t[0] != 'P' || (t[1] != 'A' && t[1] != 'B'))
        return 0;
    if (sid_prefix) {
        if (t[2] != sid_prefix[0] || t[3] != sid_prefix[1])
            return 0;
    } else if (!((t[2] >= 'A' && t[2] <= 'Z') && (t[3] >= 'A' && t[3] <= 'Z'))) {
        return 0;
    }
    for (size_t i = 4; i < 36; i++) {
        char c = t[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

int sim_paging_parse(struct cg_http_req *req, const struct cg_form *q, const char *sid_prefix,
                     struct sim_paging *pg)
{
    memset(pg, 0, sizeof(*pg));
    pg->size = 50;
    const char *s = cg_form_get(q, "PageSize");
    if (s && sim_api_parse_long(s, 1, 1000, &pg->size) < 0) {
        sim_api_error(req, 400, CODE_BAD_REQUEST, "PageSize must be an integer from 1 to 1000");
        return -1;
    }
    if ((s = cg_form_get(q, "Page")) != NULL) {
        if (sim_api_parse_long(s, 0, 1000000, &pg->page) < 0) {
            sim_api_error(req, 400, CODE_BAD_REQUEST, "Page must be a non-negative integer");
            return -1;
        }
        pg->has_page = 1;
    }
    pg->token = cg_form_get(q, "PageToken");
    if (pg->token && !valid_token(pg->token, sid_prefix)) {
        sim_api_error(req, 400, CODE_BAD_TOKEN, "Invalid PageToken");
        return -1;
    }
    return 0;
}

size_t sim_paging_token_start(const struct sim_paging *pg, size_t i)
{
    /* PA: the item after the token's; PB: the page that ends before it. */
    if (pg->token[1] == 'A')
        return i + 1;
    return i > (size_t)pg->size ? i - (size_t)pg->size : 0;
}

void sim_paging_set(struct sim_paging *pg, size_t start, size_t n)
{
    pg->start = start;
    pg->count = start < n ? n - start : 0;
    if (pg->count > (size_t)pg->size)
        pg->count = (size_t)pg->size;
}
