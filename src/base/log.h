/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 *   cg_log_info("redis connected", "host=%s port=%d", host, port);
 *   -> {"time":"2026-11-21T16:49:12.123Z","level":"info",
 *       "message":"redis connected","host":"127.0.0.1","port":6379}
 *
 * The field list is an ordinary printf format made of space-separated
 * "key=%conv" tokens, so the compiler checks the arguments' types; the logger
 * walks it and emits each value with its JSON type (%s as a string, integer
 * conversions as numbers, %f/%g as numbers, %b is not supported). Pass "" for
 * no fields. Supported conversions: %s %d %i %u %ld %lu %lld %llu %zu %zd
 * %f %g %c, and %.*s (precision first, then the string).
 *
 * Secrets: every string value is checked against the registered secrets
 * (cg_log_add_secret) and any occurrence is replaced with "***", so a token
 * that leaks into an error message never reaches the log.
 *
 * Thread-safety: none needed; callgate is single-threaded. errno is
 * preserved across every call.
 */
#ifndef CG_LOG_H
#define CG_LOG_H

#include <stdio.h>

enum cg_log_level { CG_LOG_DEBUG = 0, CG_LOG_INFO, CG_LOG_WARN, CG_LOG_ERROR };

void cg_log_set_level(enum cg_log_level level);
/* Redirects output (tests); NULL restores stderr. */
void cg_log_set_stream(FILE *f);
/* Registers a secret to be masked in string fields (copied; strings shorter
 * than 4 bytes are ignored as they would mask ordinary words). */
void cg_log_add_secret(const char *secret);
/* Forgets every registered secret (tests start from none). */
void cg_log_clear_secrets(void);

void cg_log(enum cg_log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

#define cg_log_debug(...) cg_log(CG_LOG_DEBUG, __VA_ARGS__)
#define cg_log_info(...)  cg_log(CG_LOG_INFO, __VA_ARGS__)
#define cg_log_warn(...)  cg_log(CG_LOG_WARN, __VA_ARGS__)
#define cg_log_error(...) cg_log(CG_LOG_ERROR, __VA_ARGS__)

#endif
