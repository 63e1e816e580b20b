/*
 * test_config_routes.c - ROUTES_FILE (base/config_routes.c): the file's
 * shape, defaults, every problem named at once, lookups by number and name,
 * and the file loaded through the configuration (check-config's path).
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/config.h"
#include "base/config_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TWO_ROUTES                                                                                 \
    "{\"routes\": ["                                                                               \
    "{\"name\": \"support\", \"numbers\": [\"+15550100000\"], \"assistantId\": \"asst-s\", "       \
    "\"phoneNumberId\": \"pn-s\", \"queue\": \"support\", \"max\": 6, \"min\": 2, \"priority\": "  \
    "1, \"vip\": [\"+15551234567\"]},"                                                             \
    "{\"name\": \"sales\", \"numbers\": [\"+15550100001\", \"+15550100002\"], \"assistantId\": "   \
    "\"asst-b\", \"phoneNumberId\": \"pn-b\", \"queue\": \"sales\", \"max\": 4, \"min\": 1, "      \
    "\"priority\": 2}"                                                                             \
    "]}"

static int parse(const char *json, int limit, struct cg_routes *r, struct cg_config_errors *e)
{
    memset(e, 0, sizeof *e);
    return cg_routes_parse(json, strlen(json), limit, r, e);
}

/* Whether one of the problems contains needle. */
static int has_error(const struct cg_config_errors *e, const char *needle)
{
    for (size_t i = 0; i < e->n; i++)
        if (strstr(e->msgs[i], needle) != NULL)
            return 1;
    return 0;
}

static void test_two_routes(void **state)
{
    (void)state;
    struct cg_routes r;
    struct cg_config_errors e;
    assert_int_equal(parse(TWO_ROUTES, 10, &r, &e), 0);
    assert_int_equal(e.n, 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.v[0].name, "support");
    assert_string_equal(r.v[0].assistant_id, "asst-s");
    assert_string_equal(r.v[0].phone_number_id, "pn-s");
    assert_string_equal(r.v[0].queue, "support");
    assert_int_equal(r.v[0].max, 6);
    assert_int_equal(r.v[0].min, 2);
    assert_int_equal(r.v[0].priority, 1);
    assert_int_equal(r.v[0].nvip, 1);
    assert_int_equal(r.v[1].nnumbers, 2);
    assert_ptr_equal(cg_routes_by_number(&r, "+15550100002"), &r.v[1]);
    assert_ptr_equal(cg_routes_by_number(&r, "+15550100000"), &r.v[0]);
    assert_null(cg_routes_by_number(&r, "+15550109999"));
    assert_ptr_equal(cg_routes_by_name(&r, "sales"), &r.v[1]);
    assert_null(cg_routes_by_name(&r, "billing"));
    assert_true(cg_route_is_vip(&r.v[0], "+15551234567"));
    assert_false(cg_route_is_vip(&r.v[1], "+15551234567"));
    cg_routes_free(&r);
    cg_config_errors_free(&e);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cg_routes r;
    struct cg_config_errors e;
    assert_int_equal(parse("{\"routes\": [{\"name\": \"a\", \"numbers\": [\"+15550100000\"], "
                           "\"assistantId\": \"x\", \"phoneNumberId\": \"y\", \"queue\": \"q\"}]}",
                           7, &r, &e),
                     0);
    assert_int_equal(r.v[0].max, 7);
    assert_int_equal(r.v[0].min, 0);
    assert_int_equal(r.v[0].priority, 0);
    assert_int_equal(r.v[0].nvip, 0);
    cg_routes_free(&r);
    cg_config_errors_free(&e);
}

/* One file with every kind of mistake: each is named, none hides another. */
static void test_every_problem_named(void **state)
{
    (void)state;
    const char *bad =
        "{\"routes\": ["
        "{\"name\": \"support\", \"numbers\": [\"5550100000\"], \"assistantId\": \"a\", "
        "\"phoneNumberId\": \"p\", \"queue\": \"q1\", \"max\": 2, \"min\": 3, \"colour\": 1},"
        "{\"name\": \"support\", \"numbers\": [\"+15550100001\"], \"phoneNumberId\": \"p\", "
        "\"priority\": \"high\", \"min\": 4},"
        "{\"name\": \"Sales!\", \"numbers\": [\"+15550100001\"], \"assistantId\": \"a\", "
        "\"phoneNumberId\": \"p\", \"queue\": \"q1\", \"vip\": [\"x\"]}"
        "]}";
    struct cg_routes r;
    struct cg_config_errors e;
    assert_int_equal(parse(bad, 5, &r, &e), -1);
    assert_int_equal(r.n, 0);
    assert_true(has_error(&e, "\"numbers\"[0] is not an E.164 number"));
    assert_true(has_error(&e, "\"min\" 3 is above \"max\" 2"));
    assert_true(has_error(&e, "unknown key \"colour\""));
    assert_true(has_error(&e, "both named \"support\""));
    assert_true(has_error(&e, "routes[1] (support): \"assistantId\" is missing"));
    assert_true(has_error(&e, "routes[1] (support): \"queue\" is missing"));
    assert_true(has_error(&e, "\"priority\" must be a whole number"));
    assert_true(has_error(&e, "routes[2]: \"name\" must be 1 to 32"));
    assert_true(has_error(&e, "the number +15550100001 is in routes[1] and routes[2]"));
    assert_true(has_error(&e, "both use the Twilio queue \"q1\""));
    assert_true(has_error(&e, "\"vip\"[0] is not an E.164 number"));
    assert_true(has_error(&e, "add up to 7, above MAX_CONCURRENCY (5)"));
    for (size_t i = 0; i < e.n; i++)
        assert_memory_equal(e.msgs[i], "ROUTES_FILE: ", 13);
    cg_config_errors_free(&e);
}

static void test_shapes_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"routes\": []}",
        "{\"routes\": {}}",
        "{\"routes\": [1]}",
        "{\"routes\": [{}], \"extra\": 1}",
        "{\"routes\": [{\"name\": \"a\", \"numbers\": []}]}",
        "{\"routes\": [{\"name\": \"a\", \"name\": \"b\"}]}",
        "{\"routes\": [{\"name\": \"a\", \"numbers\": [\"+15550100000\"], \"assistantId\": "
        "\"x y\", \"phoneNumberId\": \"y\", \"queue\": \"q\"}]}",
        "{\"routes\": [{\"name\": \"a\", \"numbers\": [\"+15550100000\"], \"assistantId\": "
        "\"x\", \"phoneNumberId\": \"y\", \"queue\": \"q\", \"max\": 0}]}",
        "{\"routes\": [{\"name\": \"a\", \"numbers\": [\"+15550100000\"], \"assistantId\": "
        "\"x\", \"phoneNumberId\": \"y\", \"queue\": \"q\", \"max\": 1.5}]}",
        "{\"routes\": [{\"name\": \"a\", \"numbers\": [\"+15550100000\", \"+15550100000\"], "
        "\"assistantId\": \"x\", \"phoneNumberId\": \"y\", \"queue\": \"q\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cg_routes r;
        struct cg_config_errors e;
        assert_int_equal(parse(bad[i], 5, &r, &e), -1);
        assert_true(e.n > 0);
        assert_int_equal(r.n, 0);
        cg_config_errors_free(&e);
    }
}

static void test_e164(void **state)
{
    (void)state;
    assert_true(cg_routes_is_e164("+15550100000"));
    assert_true(cg_routes_is_e164("+4930123"));
    assert_false(cg_routes_is_e164("+0123456789"));
    assert_false(cg_routes_is_e164("15550100000"));
    assert_false(cg_routes_is_e164("+1555"));
    assert_false(cg_routes_is_e164("+1234567890123456"));
    assert_false(cg_routes_is_e164("+1555010000a"));
    assert_false(cg_routes_is_e164(NULL));
}

/* Through the configuration: without ROUTES_FILE nothing changes; with
 * it, the routes are loaded and the assistant and phone number of the
 * environment are no longer required; a bad file fails the load. */
static void test_through_config(void **state)
{
    (void)state;
    for (size_t i = 0; cg_config_option_name(i); i++)
        unsetenv(cg_config_option_name(i));
    setenv("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789ABCDEF", 1);
    setenv("TWILIO_AUTH_TOKEN", "tok", 1);
    setenv("VAPI_API_KEY", "key", 1);
    setenv("VAPI_WEBHOOK_SECRET", "sec", 1);
    setenv("MAX_CONCURRENCY", "10", 1);

    struct cg_config cfg;
    struct cg_config_errors e;
    assert_int_equal(cg_config_load(&cfg, NULL, &e), -1);
    assert_true(has_error(&e, "VAPI_ASSISTANT_ID: required"));
    assert_int_equal(cfg.routes.n, 0);
    cg_config_free(&cfg);
    cg_config_errors_free(&e);

    char path[] = "/tmp/cg-routes-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, TWO_ROUTES, strlen(TWO_ROUTES)), (ssize_t)strlen(TWO_ROUTES));
    close(fd);
    setenv("ROUTES_FILE", path, 1);
    assert_int_equal(cg_config_load(&cfg, NULL, &e), 0);
    assert_int_equal(cfg.routes.n, 2);
    assert_string_equal(cfg.outbound_order, "after-inbound");
    cg_config_free(&cfg);
    cg_config_errors_free(&e);

    setenv("MAX_CONCURRENCY", "2", 1);
    assert_int_equal(cg_config_load(&cfg, NULL, &e), -1);
    assert_true(has_error(&e, "above MAX_CONCURRENCY (2)"));
    cg_config_free(&cfg);
    cg_config_errors_free(&e);

    setenv("MAX_CONCURRENCY", "10", 1);
    setenv("OUTBOUND_ORDER", "first", 1);
    assert_int_equal(cg_config_load(&cfg, NULL, &e), -1);
    assert_true(has_error(&e, "OUTBOUND_ORDER"));
    cg_config_free(&cfg);
    cg_config_errors_free(&e);
    unsetenv("OUTBOUND_ORDER");

    unlink(path);
    assert_int_equal(cg_config_load(&cfg, NULL, &e), -1);
    assert_true(has_error(&e, "ROUTES_FILE"));
    cg_config_free(&cfg);
    cg_config_errors_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_routes),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_problem_named),
        cmocka_unit_test(test_shapes_refused),
        cmocka_unit_test(test_e164),
        cmocka_unit_test(test_through_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
