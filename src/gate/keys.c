#include "base/fmacros.h"

#include "gate/keys.h"

#include <stdio.h>

static void make(const struct cg_keys *k, const char *suffix, char out[CG_KEY_MAX])
{
    snprintf(out, CG_KEY_MAX, "%s%s", k->prefix, suffix);
}

void cg_keys_init(struct cg_keys *k, const char *gate_name)
{
    snprintf(k->prefix, sizeof k->prefix, "cg:{%.64s}:", gate_name);
    make(k, "waiting", k->waiting);
    make(k, "active", k->active);
    make(k, "limit", k->limit);
    make(k, "log", k->log);
}
