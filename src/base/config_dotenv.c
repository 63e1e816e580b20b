/*
 * config_dotenv.c - the .env file: one assignment per line, shell-like
 * quoting, comments; read into one value per option. Errors never quote a
 * line (it may hold a secret) and every buffer that held the file is wiped.
 */
#include "base/fmacros.h"

#include "base/config.h"
#include "base/config_int.h"

#include "base/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOTENV_MAX_BYTES (1024 * 1024)
#define DOTENV_MAX_LINE  16384

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Parses one line (without its newline) of a .env file. Returns NULL and
 * sets *value (malloc'd) and the key span for an assignment, NULL with
 * *value NULL for a blank or comment line, or a reason for a broken line.
 * Reasons never quote the line: it may hold a secret.
 */
static const char *parse_dotenv_line(const char *s, size_t n, const char **key, size_t *keylen,
                                     char **value)
{
    size_t i = 0;
    *value = NULL;
    while (i < n && is_blank(s[i]))
        i++;
    if (i == n || s[i] == '#')
        return NULL;
    if (n - i > 6 && memcmp(s + i, "export", 6) == 0 && is_blank(s[i + 6])) {
        i += 7;
        while (i < n && is_blank(s[i]))
            i++;
    }
    if (i == n || !(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
        return "expected NAME=VALUE with a name of letters, digits and _";
    *key = s + i;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '_'))
        i++;
    *keylen = (size_t)(s + i - *key);
    while (i < n && is_blank(s[i]))
        i++;
    if (i == n || s[i] != '=')
        return "expected '=' after the variable name";
    i++;
    while (i < n && is_blank(s[i]))
        i++;

    if (i < n && (s[i] == '\'' || s[i] == '"')) {
        char q = s[i++];
        /* The decoded value is never longer than the quoted text. */
        char *v = cg_malloc(n - i + 1);
        size_t vl = 0;
        int closed = 0;
        while (i < n) {
            char c = s[i++];
            if (c == q) {
                closed = 1;
                break;
            }
            if (q == '"' && c == '\\' && i < n) {
                char e = s[i++];
                switch (e) {
                case 'n':
                    v[vl++] = '\n';
                    break;
                case 'r':
                    v[vl++] = '\r';
                    break;
                case 't':
                    v[vl++] = '\t';
                    break;
                case '\\':
                case '"':
                    v[vl++] = e;
                    break;
                default:
                    /* Unknown escapes stay as written, as dotenv does. */
                    v[vl++] = '\\';
                    v[vl++] = e;
                }
                continue;
            }
            v[vl++] = c;
        }
        v[vl] = '\0';
        if (!closed) {
            cg_config_free_wiped(v);
            return q == '"' ? "unterminated double-quoted value"
                            : "unterminated single-quoted value";
        }
        while (i < n && is_blank(s[i]))
            i++;
        if (i < n && s[i] != '#') {
            cg_config_free_wiped(v);
            return "unexpected text after the closing quote";
        }
        *value = v;
        return NULL;
    }

    /* Unquoted: a '#' after whitespace starts a comment (so "KEY=a#b" keeps
     * its '#', but "KEY=a #b" and "KEY= #b" do not), then trailing blanks go. */
    size_t start = i, end = i;
    for (; end < n; end++)
        if (s[end] == '#' && end > 0 && is_blank(s[end - 1]))
            break;
    while (end > start && is_blank(s[end - 1]))
        end--;
    *value = cg_strndup(s + start, end - start);
    return NULL;
}

/* Reads the .env file into vals[] (one per option, malloc'd; later lines
 * win). A missing file is not an error. */
void cg_config_read_dotenv(const char *path, cg_config_index_fn index_of, char **vals,
                           struct cg_config_errors *errs, struct cg_config_unknown *unknown)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno != ENOENT)
            cg_config_add_error(errs, ".env: cannot open %s: %s", path, strerror(errno));
        return;
    }
    /* One byte more than the limit tells a file at the limit from a bigger
     * one without a stat() race. */
    char *data = cg_malloc(DOTENV_MAX_BYTES + 2);
    size_t len = fread(data, 1, DOTENV_MAX_BYTES + 1, f);
    int read_errno = errno;
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        cg_config_add_error(errs, ".env: cannot read %s: %s", path, strerror(read_errno));
        goto out;
    }
    if (len > DOTENV_MAX_BYTES) {
        cg_config_add_error(errs, ".env: %s is larger than %d bytes", path, DOTENV_MAX_BYTES);
        goto out;
    }
    data[len] = '\0';

    const char *p = data, *end = data + len;
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3; /* a UTF-8 byte order mark, as some editors write */
    for (size_t lineno = 1; p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll > 0 && p[ll - 1] == '\r')
            ll--;
        const char *why = NULL, *key = NULL;
        size_t keylen = 0;
        char *value = NULL;
        if (ll > DOTENV_MAX_LINE)
            why = "line is too long";
        else if (memchr(p, '\0', ll))
            why = "line contains a NUL byte";
        else
            why = parse_dotenv_line(p, ll, &key, &keylen, &value);
        if (why) {
            cg_config_add_error(errs, ".env line %zu: %s", lineno, why);
        } else if (value) {
            int idx = index_of(key, keylen);
            if (idx >= 0) {
                cg_config_free_wiped(vals[idx]);
                vals[idx] = value;
            } else {
                char where[48];
                snprintf(where, sizeof where, ".env line %zu", lineno);
                unknown->v = cg_realloc(unknown->v, (unknown->n + 1) * sizeof *unknown->v);
                unknown->v[unknown->n].where = cg_strdup(where);
                unknown->v[unknown->n].name = cg_strndup(key, keylen);
                unknown->n++;
                cg_config_free_wiped(value);
            }
        }
        p = nl ? nl + 1 : end;
    }
out:
    for (size_t i = 0; i < len; i++)
        ((volatile char *)data)[i] = '\0';
    free(data);
}
