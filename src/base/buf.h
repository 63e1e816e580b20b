/*
 * buf.h - bounded growable byte buffer (after curl's dynbuf).
 *
 * Every buffer has a ceiling set at init; an append that would pass it fails
 * with -1 and leaves the buffer unchanged, so a hostile peer can never make
 * callgate grow memory without bound. The contents are always NUL-terminated
 * (the terminator is not counted in len), so text can be used as a C string.
 *
 * Ownership: the buffer owns data. cg_buf_take() hands it to the caller and
 * resets the buffer; cg_buf_free() releases it. A zeroed struct is not valid:
 * call cg_buf_init() first.
 */
#ifndef CG_BUF_H
#define CG_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct cg_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* ceiling on len */
};

#define CG_BUF_UNBOUNDED ((size_t)-1 / 2)

void cg_buf_init(struct cg_buf *b, size_t max);
int cg_buf_append(struct cg_buf *b, const void *p, size_t n);
int cg_buf_appends(struct cg_buf *b, const char *s);
int cg_buf_appendc(struct cg_buf *b, char c);
int cg_buf_printf(struct cg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cg_buf_vprintf(struct cg_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. Bytes that are not
 * valid UTF-8 are replaced with U+FFFD so the output is always valid JSON. */
int cg_buf_append_json_str(struct cg_buf *b, const char *s, size_t n);
/* Appends s with the five XML special characters escaped; control
 * characters other than tab, CR and LF are dropped (they are not allowed in
 * XML 1.0 at all). */
int cg_buf_append_xml(struct cg_buf *b, const char *s, size_t n);
/* Returns the contents as a C string ("" when empty); valid until the next
 * append, reset or free. */
const char *cg_buf_str(const struct cg_buf *b);
void cg_buf_reset(struct cg_buf *b);
/* Returns the malloc'd NUL-terminated contents (never NULL) and resets b. */
char *cg_buf_take(struct cg_buf *b);
void cg_buf_free(struct cg_buf *b);

#endif
