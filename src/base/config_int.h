/*
 * config_int.h - what config.c and config_services.c share. Not for other
 * modules: they read struct cg_config.
 */
#ifndef CG_CONFIG_INT_H
#define CG_CONFIG_INT_H

#include <stddef.h>

struct cg_config;
struct cg_config_errors;

#if defined(__GNUC__)
#define CG_CONFIG_PRINTF __attribute__((format(printf, 2, 3)))
#else
#define CG_CONFIG_PRINTF
#endif

/* Records a problem (load fails) or a warning (load goes on). */
void cg_config_add_error(struct cg_config_errors *errs, const char *fmt, ...) CG_CONFIG_PRINTF;
void cg_config_add_warning(struct cg_config_errors *errs, const char *fmt, ...) CG_CONFIG_PRINTF;
/* The value of an option the user set (in .env or the environment), or NULL
 * when it has its default. Numbers and choices read as "set". */
const char *cg_config_value_if_set(const struct cg_config *cfg, const char *name);
/* SERVICES' check, and the resolution of cfg->services after loading
 * (config_services.c). */
const char *cg_config_check_services(const char *v);
void cg_config_resolve_services(struct cg_config *cfg, struct cg_config_errors *errs);
/* A warning for a name callgate does not know, with the closest option's
 * name when one is close. where: ".env line 3", "environment". */
void cg_config_warn_unknown(struct cg_config_errors *errs, const char *where, const char *name);

#endif
