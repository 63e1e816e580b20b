/*
 * fmacros.h - feature-test macros, included first by every .c file so that
 * POSIX interfaces (clock_gettime, strdup, mkdtemp, ...) are declared under
 * -std=c11.
 */
#ifndef CG_FMACROS_H
#define CG_FMACROS_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#endif
