/*
 * json.h - small helpers over jansson for the JSON callgate receives and
 * sends. Parsing is bounded: inputs deeper than max_depth are refused before
 * jansson sees them (jansson's own limit is 2048 levels), duplicate keys are
 * refused, and the whole input must be one value.
 *
 * Getters never fail loudly: a missing member or one of the wrong type reads
 * as absent, which is what every webhook handler wants.
 *
 * Ownership: cg_json_parse() returns a new reference, which the caller
 * json_decref()s. cg_json_path() and cg_json_str() return borrowed
 * pointers into root, valid while root is. cg_json_dumps() returns a
 * malloc'd string for the caller to free().
 */
#ifndef CG_JSON_H
#define CG_JSON_H

#include <stddef.h>

#include <jansson.h>

#define CG_JSON_MAX_DEPTH 32

/* Parses len bytes. Returns a new reference, or NULL with err filled. */
json_t *cg_json_parse(const char *buf, size_t len, int max_depth, char *err, size_t errlen);
/* Follows a dotted path of object members ("message.call.id"); NULL if any
 * step is missing or not an object. */
json_t *cg_json_path(const json_t *root, const char *path);
/* String at path, or NULL when absent or not a string. */
const char *cg_json_str(const json_t *root, const char *path);
/* Integer at path (an integral real counts). 0 on success, -1 otherwise. */
int cg_json_int(const json_t *root, const char *path, long long *out);
/* Any number at path. 0 on success, -1 otherwise. */
int cg_json_num(const json_t *root, const char *path, double *out);
/* Boolean at path. 0 on success, -1 otherwise. */
int cg_json_bool(const json_t *root, const char *path, int *out);
/* Compact serialisation; malloc'd, never NULL. */
char *cg_json_dumps(const json_t *v);

#endif
