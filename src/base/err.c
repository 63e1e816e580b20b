#include "base/fmacros.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

void cg_err_vset(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return;
    vsnprintf(err, errlen, fmt, ap);
}

void cg_err_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cg_err_vset(err, errlen, fmt, ap);
    va_end(ap);
}
