/*
 * err.h - the one setter of the (char *err, size_t errlen) message buffers
 * that fallible calls fill. err may be NULL or errlen 0: the message is
 * then dropped. The message is always NUL-terminated, cut if too long.
 */
#ifndef CG_ERR_H
#define CG_ERR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void cg_err_set(char *err, size_t errlen, const char *fmt, ...);
/* The same with a va_list, for setters that take a format of their own. */
void cg_err_vset(char *err, size_t errlen, const char *fmt, va_list ap);

#endif
