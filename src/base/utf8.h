/*
 * utf8.h - strict UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). Used wherever outside bytes may end up in JSON,
 * which jansson and every JSON consumer require to be valid UTF-8.
 */
#ifndef CG_UTF8_H
#define CG_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s (1-4), or 0 if the bytes
 * there are not a valid sequence within n bytes. */
size_t cg_utf8_seq_len(const char *s, size_t n);
/* 1 if all n bytes are valid UTF-8, else 0. */
int cg_utf8_valid(const char *s, size_t n);

#endif
