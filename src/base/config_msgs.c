/*
 * config_msgs.c - what every part of the configuration shares: the lists
 * of problems and warnings a load collects, and wiping a string that may
 * have held a secret before it is freed. Uses nothing of the option table,
 * so config.c and config_dotenv.c both build on it without a loop.
 */
#include "base/fmacros.h"

#include "base/config.h"
#include "base/config_int.h"

#include "base/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define ERROR_MAX 512

/* Overwrites a string before freeing it: .env contents and secrets should
 * not linger in freed heap memory. The volatile access keeps the stores. */
void cg_config_free_wiped(char *s)
{
    if (s == NULL)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
    free(s);
}

static void push_msg(char ***list, size_t *n, const char *fmt, va_list ap)
{
    char msg[ERROR_MAX];
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        snprintf(msg, sizeof msg, "configuration error");
    *list = cg_realloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = cg_strdup(msg);
}

void cg_config_add_error(struct cg_config_errors *errs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_msg(&errs->msgs, &errs->n, fmt, ap);
    va_end(ap);
}

void cg_config_add_warning(struct cg_config_errors *errs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_msg(&errs->warnings, &errs->nwarnings, fmt, ap);
    va_end(ap);
}

void cg_config_errors_free(struct cg_config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
    for (size_t i = 0; i < errs->nwarnings; i++)
        free(errs->warnings[i]);
    free(errs->warnings);
    errs->warnings = NULL;
    errs->nwarnings = 0;
}
