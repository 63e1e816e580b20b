#include "base/fmacros.h"

#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"message\":\"out of memory\",\"bytes\":%zu}\n", n);
    abort();
}

void *cg_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *cg_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *cg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *cg_strdup(const char *s)
{
    return cg_strndup(s, strlen(s));
}

char *cg_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cg_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void cg_free_secret(char *s)
{
    if (s == NULL)
        return;
    /* The volatile access keeps the compiler from dropping the stores to
     * memory that is about to be freed. */
    volatile char *p = s;
    while (*p != '\0')
        *p++ = '\0';
    free(s);
}
