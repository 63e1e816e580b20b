/*
 * Unit tests for url.c: REDIS_URL and base URL parsing, and the same-origin
 * check of URLs an API hands back.
 */
#include "harness.h"

#include "base/url.h"

#include <stdio.h>
#include <string.h>

static void redis_ok(const char *url, const char *host, int port, const char *user,
                     const char *password, int db)
{
    struct cg_redis_url u;
    char err[256] = "";
    if (cg_redis_url_parse(url, &u, err, sizeof(err)) != 0)
        fail_msg("refused valid URL #%s#: %s", url, err);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    if (user)
        assert_string_equal(u.user, user);
    else
        assert_null(u.user);
    if (password)
        assert_string_equal(u.password, password);
    else
        assert_null(u.password);
    assert_int_equal(u.db, db);
    cg_redis_url_free(&u);
    assert_null(u.host);
    assert_null(u.password);
}

/* Asserts refusal, that err was written, that it leaks neither the URL nor
 * the password, and that out was left empty. Returns nothing; the message
 * is copied to msg_out when given. */
static void redis_bad(const char *url, const char *secret, char *msg_out, size_t msg_len)
{
    struct cg_redis_url u;
    char err[256] = "";
    if (cg_redis_url_parse(url, &u, err, sizeof(err)) == 0)
        fail_msg("accepted invalid URL #%s#", url ? url : "(null)");
    assert_true(strlen(err) > 0);
    if (url && url[0])
        assert_null(strstr(err, url));
    if (secret)
        assert_null(strstr(err, secret));
    assert_null(u.host);
    assert_null(u.user);
    assert_null(u.password);
    cg_redis_url_free(&u);
    if (msg_out)
        snprintf(msg_out, msg_len, "%s", err);
}

static void test_redis_valid(void **state)
{
    (void)state;
    redis_ok("redis://localhost", "localhost", 6379, NULL, NULL, 0);
    redis_ok("redis://localhost/", "localhost", 6379, NULL, NULL, 0);
    redis_ok("redis://:pw@h:6380/2", "h", 6380, NULL, "pw", 2);
    redis_ok("redis://u:p%40ss@h/0", "h", 6379, "u", "p@ss", 0);
    redis_ok("redis://[::1]:6379", "::1", 6379, NULL, NULL, 0);
    redis_ok("redis://[::1]", "::1", 6379, NULL, NULL, 0);
    redis_ok("redis://[2001:db8::42]/5", "2001:db8::42", 6379, NULL, NULL, 5);
    redis_ok("redis://127.0.0.1:1", "127.0.0.1", 1, NULL, NULL, 0);
    redis_ok("redis://h:65535/15", "h", 65535, NULL, NULL, 15);
    redis_ok("REDIS://Cache.Internal_1-a", "Cache.Internal_1-a", 6379, NULL, NULL, 0);
    redis_ok("redis://alice:s3cr%3At@redis.example.com:7000/3", "redis.example.com", 7000, "alice",
             "s3cr:t", 3);
    /* Only the first ':' separates user and password. */
    redis_ok("redis://u:a:b@h", "h", 6379, "u", "a:b", 0);
    /* The last '@' ends the userinfo. */
    redis_ok("redis://:p@ss@h", "h", 6379, NULL, "p@ss", 0);
    /* Empty user and password read as absent. */
    redis_ok("redis://:@h", "h", 6379, NULL, NULL, 0);
    redis_ok("redis://u:@h", "h", 6379, "u", NULL, 0);
    redis_ok("redis://h/2147483647", "h", 6379, NULL, NULL, 2147483647);
    redis_ok("redis://h:06379/007", "h", 6379, NULL, NULL, 7);
}

static void test_redis_tls(void **state)
{
    (void)state;
    struct cg_redis_url u;
    char err[256] = "";
    assert_int_equal(
        cg_redis_url_parse("rediss://:hunter2@redis.example.com:6380/1", &u, err, sizeof(err)), 0);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.host, "redis.example.com");
    assert_int_equal(u.port, 6380);
    assert_string_equal(u.password, "hunter2");
    assert_int_equal(u.db, 1);
    cg_redis_url_free(&u);
    assert_int_equal(cg_redis_url_parse("REDISS://u:p@h", &u, err, sizeof(err)), 0);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.user, "u");
    cg_redis_url_free(&u);
    assert_int_equal(cg_redis_url_parse("redis://h", &u, err, sizeof(err)), 0);
    assert_int_equal(u.tls, 0);
    cg_redis_url_free(&u);
    /* Malformed rediss:// URLs are refused like redis:// ones, without
     * echoing the password. */
    char msg[256];
    redis_bad("rediss://:hunter2@h:0", "hunter2", msg, sizeof(msg));
    redis_bad("redisss://h", NULL, msg, sizeof(msg));
    assert_non_null(strstr(msg, "rediss://"));
}

static void test_redis_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "redis://h:0",
        "redis://h:70000",
        "redis://h:65536",
        "redis://h:99999999999999999999",
        "redis://h:",
        "redis://h:-1",
        "redis://h:12ab",
        "redis://h/-1",
        "redis://h/x",
        "redis://h/1x",
        "redis://h/0/",
        "redis://h/0/1",
        "redis://h/2147483648",
        "redis://h/99999999999999999999",
        "http://x",
        "unix:///tmp/redis.sock",
        "",
        "redis://",
        "redis:///0",
        "redis://@/",
        "redis://@h",
        "redis://user@h",
        "redis://:pw@",
        "redis://:pw@:6379",
        "redis://[::1",
        "redis://[::1]x",
        "redis://[]",
        "redis://[zz::1]",
        "redis://::1",
        "redis://h:6379:1",
        "redis://h?db=1",
        "redis://h#frag",
        "redis://ho st",
        "redis://h\xc3\xa9",
        "redis://:p%zz@h",
        "redis://:p%00@h",
        "redis://u%4:p@h",
        "localhost:6379",
        "redis:/h",
        "redis:h",
        " redis://h",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        redis_bad(bad[i], NULL, NULL, 0);
    redis_bad(NULL, NULL, NULL, 0);
}

static void test_redis_error_hides_password(void **state)
{
    (void)state;
    /* Each URL carries a password and fails after the userinfo parsed. */
    redis_bad("redis://:topsecret@h:0", "topsecret", NULL, 0);
    redis_bad("redis://u:topsecret@h/x", "topsecret", NULL, 0);
    redis_bad("redis://u:topsecret@[zz]", "topsecret", NULL, 0);
    redis_bad("redis://u:top%zzsecret@h", "secret", NULL, 0);
    redis_bad("http://u:topsecret@h", "topsecret", NULL, 0);
}

static void test_redis_err_buffer(void **state)
{
    (void)state;
    struct cg_redis_url u;
    /* No error buffer, and a tiny one: both safe. */
    assert_int_equal(cg_redis_url_parse("redis://h:0", &u, NULL, 0), -1);
    char tiny[4] = "xxx";
    assert_int_equal(cg_redis_url_parse("redis://h:0", &u, tiny, sizeof(tiny)), -1);
    assert_int_equal(strlen(tiny), 3);
    char none[1] = {'x'};
    assert_int_equal(cg_redis_url_parse("redis://h:0", &u, none, 0), -1);
    assert_int_equal(none[0], 'x');
}

static void base_ok(const char *url, const char *scheme, const char *host, int port,
                    const char *path, const char *normalized)
{
    struct cg_base_url u;
    char err[256] = "";
    if (cg_base_url_parse(url, &u, err, sizeof(err)) != 0)
        fail_msg("refused valid base URL #%s#: %s", url, err);
    assert_string_equal(u.scheme, scheme);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.path, path);
    assert_string_equal(u.normalized, normalized);
    cg_base_url_free(&u);
    assert_null(u.normalized);
}

static void base_bad(const char *url)
{
    struct cg_base_url u;
    char err[256] = "";
    if (cg_base_url_parse(url, &u, err, sizeof(err)) == 0)
        fail_msg("accepted invalid base URL #%s#", url ? url : "(null)");
    assert_true(strlen(err) > 0);
    if (url && url[0])
        assert_null(strstr(err, url));
    assert_null(u.scheme);
    assert_null(u.host);
    assert_null(u.path);
    assert_null(u.normalized);
    cg_base_url_free(&u);
}

static void test_base_valid(void **state)
{
    (void)state;
    base_ok("https://example.com", "https", "example.com", 0, "", "https://example.com");
    base_ok("https://example.com/", "https", "example.com", 0, "", "https://example.com");
    base_ok("http://127.0.0.1:8080", "http", "127.0.0.1", 8080, "", "http://127.0.0.1:8080");
    base_ok("http://127.0.0.1:8080/", "http", "127.0.0.1", 8080, "", "http://127.0.0.1:8080");
    base_ok("https://gate.example.com/callgate/", "https", "gate.example.com", 0, "/callgate",
            "https://gate.example.com/callgate");
    base_ok("https://gate.example.com/a/b//", "https", "gate.example.com", 0, "/a/b",
            "https://gate.example.com/a/b");
    base_ok("https://[::1]:8443/x", "https", "[::1]", 8443, "/x", "https://[::1]:8443/x");
    base_ok("http://[fe80::1]", "http", "[fe80::1]", 0, "", "http://[fe80::1]");
    /* The scheme is normalised to lower case; the host stays as written. */
    base_ok("HTTPS://Example.COM:443/Path", "https", "Example.COM", 443, "/Path",
            "https://Example.COM:443/Path");
    base_ok("https://api.vapi.ai", "https", "api.vapi.ai", 0, "", "https://api.vapi.ai");
    base_ok("https://x/a%20b", "https", "x", 0, "/a%20b", "https://x/a%20b");
}

static void test_base_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "example.com",
        "ftp://example.com",
        "redis://example.com",
        "https://",
        "https:///path",
        "https://:443",
        "https://example.com?x=1",
        "https://example.com/path?x=1",
        "https://example.com/#frag",
        "https://example.com:0",
        "https://example.com:65536",
        "https://example.com:",
        "https://example.com:x",
        "https://user:pw@example.com",
        "https://exa mple.com",
        "https://example.com/a b",
        "https://example.com/\xc3\xa9",
        "https://[::1",
        "https://[nope]",
        "https://::1/",
        "http:/example.com",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        base_bad(bad[i]);
    base_bad(NULL);
}

static void test_same_origin(void **state)
{
    (void)state;
    const char *base = "https://taskrouter.twilio.com";
    assert_true(cg_url_same_origin(base, "https://taskrouter.twilio.com/v1/Workspaces/WS1/"
                                         "TaskQueues/Statistics?PageSize=50&Page=1"));
    assert_true(cg_url_same_origin(base, "HTTPS://TaskRouter.Twilio.com:443/v1/x"));
    assert_true(cg_url_same_origin("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1?x=1"));
    assert_true(cg_url_same_origin("http://[::1]:80/base", "http://[::1]/v1"));
    assert_true(cg_url_same_origin("http://example.com", "http://example.com?x=1"));
    assert_false(cg_url_same_origin(base, "http://taskrouter.twilio.com/v1"));
    assert_false(cg_url_same_origin(base, "https://evil.example/v1"));
    assert_false(cg_url_same_origin(base, "https://taskrouter.twilio.com.evil.example/v1"));
    assert_false(cg_url_same_origin(base, "https://taskrouter.twilio.com@evil.example/v1"));
    assert_false(cg_url_same_origin(base, "https://taskrouter.twilio.com:8443/v1"));
    assert_false(cg_url_same_origin(base, "/v1/Workspaces"));
    assert_false(cg_url_same_origin(base, "ftp://taskrouter.twilio.com/"));
    assert_false(cg_url_same_origin(base, "https:///v1"));
    assert_false(cg_url_same_origin("http://127.0.0.1:8080", "http://127.0.0.1:99999/"));
    assert_false(cg_url_same_origin(NULL, base));
    assert_false(cg_url_same_origin(base, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_valid),      cmocka_unit_test(test_redis_tls),
        cmocka_unit_test(test_redis_invalid),    cmocka_unit_test(test_redis_error_hides_password),
        cmocka_unit_test(test_redis_err_buffer), cmocka_unit_test(test_base_valid),
        cmocka_unit_test(test_base_invalid),     cmocka_unit_test(test_same_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
