#include "base/fmacros.h"

#include "base/log.h"

#include "base/alloc.h"
#include "base/buf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX    (64 * 1024)
#define LOG_MAX_SECRETS 32

static enum cg_log_level min_level = CG_LOG_INFO;
static FILE *out_stream;
static char *secrets[LOG_MAX_SECRETS];
static size_t nsecrets;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cg_log_set_level(enum cg_log_level level)
{
    min_level = level;
}

void cg_log_set_stream(FILE *f)
{
    out_stream = f;
}

void cg_log_add_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 4 || nsecrets == LOG_MAX_SECRETS)
        return;
    for (size_t i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i], secret) == 0)
            return;
    secrets[nsecrets++] = cg_strdup(secret);
}

void cg_log_clear_secrets(void)
{
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    nsecrets = 0;
}

/* Appends s as a JSON string with every registered secret masked. Returns
 * -1 if the line limit was reached. */
static int append_masked(struct cg_buf *b, const char *s, size_t n)
{
    if (nsecrets == 0)
        return cg_buf_append_json_str(b, s, n);
    struct cg_buf tmp;
    cg_buf_init(&tmp, LOG_LINE_MAX);
    int rc = 0;
    size_t i = 0;
    while (i < n && rc == 0) {
        /* The longest match wins, so that a secret which starts with a
         * shorter one is masked whole rather than leaking its tail. */
        size_t hit = 0;
        for (size_t k = 0; k < nsecrets; k++) {
            size_t sl = strlen(secrets[k]);
            if (sl > hit && sl <= n - i && memcmp(s + i, secrets[k], sl) == 0)
                hit = sl;
        }
        if (hit) {
            rc = cg_buf_appends(&tmp, "***");
            i += hit;
        } else {
            rc = cg_buf_appendc(&tmp, s[i]);
            i++;
        }
    }
    if (rc == 0)
        rc = cg_buf_append_json_str(b, cg_buf_str(&tmp), tmp.len);
    cg_buf_free(&tmp);
    return rc;
}

static void append_time(struct cg_buf *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    cg_buf_printf(b, "{\"time\":\"%s.%03ldZ\"", when, ts.tv_nsec / 1000000);
}

/* Emits the fields of fmt ("k=%d k2=%s ...") as JSON members. Anything in fmt
 * that is not a key=%conv token is skipped, so a malformed format degrades to
 * fewer fields rather than a broken line. Returns -1 if an append hit the
 * line limit: the buffer may then hold a key without its value. */
static int append_fields(struct cg_buf *b, const char *fmt, va_list ap)
{
    int rc = 0;
    const char *p = fmt;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *key = p;
        while (*p && *p != '=' && *p != ' ')
            p++;
        if (*p != '=' || p[1] != '%')
            break;
        size_t keylen = (size_t)(p - key);
        p += 2;
        rc |= cg_buf_appendc(b, ',');
        rc |= cg_buf_append_json_str(b, key, keylen);
        rc |= cg_buf_appendc(b, ':');

        int precision = -1;
        if (p[0] == '.' && p[1] == '*') {
            precision = va_arg(ap, int);
            p += 2;
        }
        int lcount = 0, zflag = 0;
        while (*p == 'l') {
            lcount++;
            p++;
        }
        if (*p == 'z') {
            zflag = 1;
            p++;
        }
        char conv = *p ? *p++ : '\0';
        switch (conv) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s == NULL) {
                rc |= cg_buf_appends(b, "null");
            } else {
                size_t n = precision >= 0 ? strnlen(s, (size_t)precision) : strlen(s);
                rc |= append_masked(b, s, n);
            }
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            rc |= append_masked(b, &c, 1);
            break;
        }
        case 'd':
        case 'i':
            if (zflag)
                rc |= cg_buf_printf(b, "%zd", va_arg(ap, ssize_t));
            else if (lcount >= 2)
                rc |= cg_buf_printf(b, "%lld", va_arg(ap, long long));
            else if (lcount == 1)
                rc |= cg_buf_printf(b, "%ld", va_arg(ap, long));
            else
                rc |= cg_buf_printf(b, "%d", va_arg(ap, int));
            break;
        case 'u':
            if (zflag)
                rc |= cg_buf_printf(b, "%zu", va_arg(ap, size_t));
            else if (lcount >= 2)
                rc |= cg_buf_printf(b, "%llu", va_arg(ap, unsigned long long));
            else if (lcount == 1)
                rc |= cg_buf_printf(b, "%lu", va_arg(ap, unsigned long));
            else
                rc |= cg_buf_printf(b, "%u", va_arg(ap, unsigned));
            break;
        case 'f':
        case 'g': {
            double d = va_arg(ap, double);
            if (!isfinite(d))
                rc |= cg_buf_appends(b, "null"); /* NaN and inf are not JSON */
            else
                rc |= cg_buf_printf(b, "%.6g", d);
            break;
        }
        default:
            rc |= cg_buf_appends(b, "null");
            return rc;
        }
        while (*p && *p != ' ')
            p++;
    }
    return rc;
}

void cg_log(enum cg_log_level level, const char *msg, const char *fields, ...)
{
    if (level < min_level)
        return;
    int saved_errno = errno;
    struct cg_buf b;
    cg_buf_init(&b, LOG_LINE_MAX);
    append_time(&b);
    cg_buf_printf(&b, ",\"level\":\"%s\",\"message\":", level_names[level]);
    int rc = append_masked(&b, msg, strlen(msg));
    va_list ap;
    va_start(ap, fields);
    rc |= append_fields(&b, fields, ap);
    va_end(ap);
    if (rc != 0 || cg_buf_appends(&b, "}\n") != 0) {
        /* Too long: keep the line valid JSON by logging only the message. */
        cg_buf_reset(&b);
        append_time(&b);
        cg_buf_printf(&b, ",\"level\":\"%s\",\"message\":\"log line too long\"}\n",
                      level_names[level]);
    }
    FILE *f = out_stream ? out_stream : stderr;
    fwrite(b.data, 1, b.len, f);
    fflush(f);
    cg_buf_free(&b);
    errno = saved_errno;
}
