/*
 * config_int.h - what config_load.c (loading as a whole: services, unknown
 * names) takes from config.c (the option table: parsing, checks, printing)
 * and what config.c takes from config_dotenv.c (the .env file); both
 * build on config_msgs.c (problem lists, wiping).
 * config.c never calls up into config_load.c. Not for other modules: they
 * read struct cg_config.
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

/* cg_config_add_error and cg_config_add_warning: config.h. */
/* The value of an option the user set (in .env or the environment), or NULL
 * when it has its default. Numbers and choices read as "set". */
const char *cg_config_value_if_set(const struct cg_config *cfg, const char *name);
/* SERVICES as written: CG_SERVICES_AUTO, 0 (none) or CG_SERVICE_* bits
 * into *out; -1 when it is none of these. */
int cg_config_parse_services(const char *v, unsigned *out);
/* Whether name[0..len) is an option. */
int cg_config_known(const char *name, size_t len);
/* Overwrites a string before freeing it (NULL is fine): .env contents and
 * secrets should not linger in freed heap memory. */
void cg_config_free_wiped(char *s);

/* Checks of the call-control options (config_handoff.c): NULL when v is
 * good, else a static reason. VAPI_SERVER_MESSAGES: Vapi's server message
 * types, comma separated, none twice, with phone-call-control,
 * status-update and end-of-call-report. HANDOFF_NUMBERS: phone numbers or
 * sip: URIs, comma separated. */
const char *cg_config_check_server_messages(const char *v);
const char *cg_config_check_handoff_numbers(const char *v);

/* Names in .env that are no option, with where they were. */
struct cg_config_unknown {
    struct {
        char *where; /* ".env line 3" */
        char *name;
    } * v;
    size_t n;
};
/* The index of the option named name[0..len), or -1. */
typedef int (*cg_config_index_fn)(const char *name, size_t len);
/* Reads the .env file at path into vals[] (one per option as index_of
 * finds it, malloc'd; later lines win); names that are no option go to
 * unknown. A missing file is not an error. (config_dotenv.c, which knows
 * nothing of the option table but what index_of tells it.) */
void cg_config_read_dotenv(const char *path, cg_config_index_fn index_of, char **vals,
                           struct cg_config_errors *errs, struct cg_config_unknown *unknown);
/* Every option from its default, .env and the environment, checked one by
 * one and against each other; errs collects the problems, unknown the
 * names .env holds that are no option (the caller frees both). */
void cg_config_load_options(struct cg_config *cfg, const char *dotenv_path,
                            struct cg_config_errors *errs, struct cg_config_unknown *unknown);

#endif
