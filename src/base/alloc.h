/*
 * alloc.h - allocation wrappers that never return NULL.
 *
 * A daemon that runs out of memory cannot keep its promises to callers, and
 * scattering NULL checks after every malloc hides the real error paths. These
 * wrappers abort with a message instead (as redis' zmalloc and h2o's
 * h2o_mem_alloc do). Memory they return is freed with plain free().
 */
#ifndef CG_ALLOC_H
#define CG_ALLOC_H

#include <stddef.h>

void *cg_malloc(size_t n);
void *cg_calloc(size_t count, size_t size);
void *cg_realloc(void *p, size_t n);
char *cg_strdup(const char *s);
/* Copies at most n bytes of s and NUL-terminates the result. */
char *cg_strndup(const char *s, size_t n);
/* Overwrites the string s (a secret: a token, a password) with NULs, then
 * frees it, so that it does not linger in freed heap memory. NULL is fine. */
void cg_free_secret(char *s);

#endif
