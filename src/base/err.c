#include "base/fmacros.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

void cg_err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
