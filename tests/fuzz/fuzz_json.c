/*
 * Fuzz target: bounded JSON parsing (src/base/json.c cg_json_parse with
 * CG_JSON_MAX_DEPTH) and the typed getters, which every webhook and API
 * response goes through.
 *
 * Invariants: a refusal gives a message; an accepted value is no deeper than
 * the limit, serialises with cg_json_dumps, parses back to an equal value
 * and serialises again to the same text; the getters agree with each other
 * (an integer read implies a number read of the same value, a string read is
 * the string at that path).
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/json.h"

/* Depth of v, counting arrays and objects as cg_json_parse does. Accepted
 * values are at most CG_JSON_MAX_DEPTH deep, which bounds the recursion. */
static int depth_of(const json_t *v)
{
    int max = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int d = depth_of(json_array_get(v, i));
            max = d > max ? d : max;
        }
        return max + 1;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *)v, key, member) {
            int d = depth_of(member);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    return 0;
}

static void check_getters(const json_t *root, const char *path)
{
    long long i;
    double d;
    int b;
    const json_t *at = cg_json_path(root, path);
    if (cg_json_int(root, path, &i) == 0)
        FZ_CHECK(cg_json_num(root, path, &d) == 0 && (double)i == d);
    if (cg_json_num(root, path, &d) == 0)
        FZ_CHECK(json_is_number(at));
    if (cg_json_bool(root, path, &b) == 0)
        FZ_CHECK(json_is_boolean(at) && (b == 0 || b == 1));
    const char *s = cg_json_str(root, path);
    FZ_CHECK(s == (json_is_string(at) ? json_string_value(at) : NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128] = "";
    json_t *root = cg_json_parse((const char *)data, size, CG_JSON_MAX_DEPTH, err, sizeof err);
    if (root == NULL) {
        FZ_CHECK(err[0] != '\0');
        return 0;
    }
    FZ_CHECK(depth_of(root) <= CG_JSON_MAX_DEPTH);

    char *text = cg_json_dumps(root);
    FZ_CHECK(text != NULL);
    json_t *again = cg_json_parse(text, strlen(text), CG_JSON_MAX_DEPTH, err, sizeof err);
    FZ_CHECK(again != NULL && json_equal(root, again));
    char *text2 = cg_json_dumps(again);
    FZ_CHECK(strcmp(text, text2) == 0);

    check_getters(root, "");
    check_getters(root, "message.type");
    check_getters(root, "message.call.id");
    check_getters(root, "a.b");
    /* The first member's own name as a path, which may hold dots. */
    if (json_is_object(root) && json_object_size(root) > 0) {
        const char *key = json_object_iter_key(json_object_iter(root));
        check_getters(root, key);
    }

    free(text2);
    free(text);
    json_decref(again);
    json_decref(root);
    return 0;
}
