/*
 * scenario_json.h - reading a scenario file's JSON strictly (scenario.c,
 * scenario_routes.c): an object's members against the list it may have,
 * numbers, integers, booleans and strings within their bounds, each error
 * naming the member's JSON path ("routes[0].max: must be in [1, 100000]").
 *
 * Every reader returns 0 (an absent member leaves *out unchanged) or -1
 * with the message in the context's err. Strings are copied (cg_strdup)
 * over *out, which owns its old value. No callbacks.
 */
#ifndef SIM_SCENARIO_JSON_H
#define SIM_SCENARIO_JSON_H

#include <stddef.h>

#include <jansson.h>

#define SIM_JSON_PATH_LEN   128
#define SIM_JSON_MAX_STRING 512

struct sim_jctx {
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4))) int sim_json_fail(struct sim_jctx *c, const char *path,
                                                        const char *fmt, ...);
/* path.key into out[SIM_JSON_PATH_LEN] (cut when longer: only a message). */
void sim_json_join(char *out, const char *path, const char *key);
/* obj is an object whose members are all in allowed (NULL-terminated). */
int sim_json_object(struct sim_jctx *c, const json_t *obj, const char *path,
                    const char *const *allowed);
int sim_json_require(struct sim_jctx *c, const json_t *obj, const char *path, const char *key);
int sim_json_num(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                 double min, double max, double *out);
int sim_json_int(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                 long long min, long long max, long long *out);
int sim_json_int_field(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                       long long min, long long max, int *out);
int sim_json_bool(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                  int *out);
/* A non-empty string without NUL, at most SIM_JSON_MAX_STRING bytes. */
int sim_json_str(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                 char **out);
/* The same, and the member must be there. */
int sim_json_required_str(struct sim_jctx *c, const json_t *obj, const char *path, const char *key,
                          char **out);
/* E.164: "+" and 2 to 15 digits, the first not 0. */
int sim_json_is_e164(const char *s);

#endif
