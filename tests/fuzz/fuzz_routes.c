/*
 * Fuzz target: the routes file parser (src/base/config_routes.c
 * cg_routes_parse), which reads ROUTES_FILE.
 *
 * Invariants: the parse fails exactly when it names a problem, every
 * problem starts "ROUTES_FILE: "; an accepted file has at least one route,
 * each with a valid name, E.164 numbers, min <= max, the mins adding up to
 * at most the limit, no number in two routes, and every number found again
 * by cg_routes_by_number in its own route.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/config.h"
#include "base/config_routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_config_errors e = {0};
    struct cg_routes r;
    int limit = size > 0 ? 1 + data[0] % 20 : 5;
    int rc = cg_routes_parse((const char *)data, size, limit, &r, &e);
    FZ_CHECK((rc == 0) == (e.n == 0));
    for (size_t i = 0; i < e.n; i++)
        FZ_CHECK(strncmp(e.msgs[i], "ROUTES_FILE: ", 13) == 0);
    if (rc == 0) {
        FZ_CHECK(r.n > 0);
        long long mins = 0;
        for (size_t i = 0; i < r.n; i++) {
            const struct cg_route *rt = &r.v[i];
            FZ_CHECK(cg_routes_valid_name(rt->name));
            FZ_CHECK(rt->min >= 0 && rt->min <= rt->max);
            FZ_CHECK(rt->nnumbers > 0);
            mins += rt->min;
            for (size_t j = 0; j < rt->nnumbers; j++) {
                FZ_CHECK(cg_routes_is_e164(rt->numbers[j]));
                FZ_CHECK(cg_routes_by_number(&r, rt->numbers[j]) == rt);
            }
            FZ_CHECK(cg_routes_by_name(&r, rt->name) == rt);
        }
        FZ_CHECK(mins <= limit);
    } else {
        FZ_CHECK(r.n == 0 && r.v == NULL);
    }
    cg_routes_free(&r);
    cg_config_errors_free(&e);
    return 0;
}
