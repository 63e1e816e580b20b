/*
 * fuzz.h - helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c)
 * and their regression main (replay.c).
 *
 * Each target file defines LLVMFuzzerTestOneInput over one parser that sees
 * outside bytes. It is linked twice: with libFuzzer (CG_FUZZ=ON, make fuzz)
 * and with replay.c (every build, CTest fuzz.<target>), so that the corpus
 * and every past finding are replayed by make test.
 */
#ifndef CG_FUZZ_H
#define CG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts on a broken invariant whatever NDEBUG says: the replay binaries are
 * built RelWithDebInfo, where assert() is compiled out, and a check that
 * vanishes there would make the regression tests check nothing. libFuzzer
 * treats the abort as a crash and saves the input. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Reads an input as '\n'-separated fields: targets with several arguments
 * (URL, token, signature, body) take them from one input this way, which
 * keeps the seed files readable and editable by hand. */
struct fz_reader {
    const char *p;
    size_t n;
};

static inline void fz_reader_init(struct fz_reader *r, const uint8_t *data, size_t size)
{
    r->p = (const char *)data;
    r->n = size;
}

/* The next field, up to '\n' or the end, as a malloc'd NUL-terminated
 * string (an embedded NUL simply ends the C string early). Never NULL. */
static inline char *fz_field(struct fz_reader *r)
{
    const char *nl = r->n ? memchr(r->p, '\n', r->n) : NULL;
    size_t len = nl ? (size_t)(nl - r->p) : r->n;
    char *s = malloc(len + 1);
    if (s == NULL)
        abort();
    if (len)
        memcpy(s, r->p, len);
    s[len] = '\0';
    r->p += nl ? len + 1 : len;
    r->n -= nl ? len + 1 : len;
    return s;
}

/* data as a malloc'd NUL-terminated string, for APIs taking C strings (an
 * embedded NUL ends it early, as it would for the caller's string). */
static inline char *fz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
