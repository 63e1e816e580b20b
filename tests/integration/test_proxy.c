/*
 * callgate behind a real nginx on loopback, under a path prefix, with the
 * location block that docs/DEPLOY.md tells users to include
 * (packaging/nginx/callgate-location.conf, used here unchanged). Twilio's
 * signatures are computed over the public URL with the prefix, as Twilio
 * computes them, and must still validate once nginx has stripped the
 * prefix; a signature over the internal URL must not.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/form.h"
#include "demo/proc.h"

#include "gate_kit.h"

/* nginx in front of the fixture's callgate (gate 0). */
static struct {
    struct cgt_proc proc;
    int port;
    char *dir;
    char public_url[128]; /* what Twilio calls: nginx, with the prefix */
} nx;

static const char *nginx_bin(void)
{
    return access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : "nginx";
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void start_nginx(int cg_port)
{
    char conf[4096], path[512];
    snprintf(conf, sizeof conf,
             "daemon off;\n"
             "master_process off;\n"
             "pid %s/nginx.pid;\n"
             "error_log %s/error.log info;\n"
             "events { worker_connections 64; }\n"
             "http {\n"
             "  access_log %s/access.log;\n"
             "  client_body_temp_path %s/body;\n"
             "  proxy_temp_path %s/proxy;\n"
             "  fastcgi_temp_path %s/fastcgi;\n"
             "  uwsgi_temp_path %s/uwsgi;\n"
             "  scgi_temp_path %s/scgi;\n"
             "  upstream callgate { server 127.0.0.1:%d; keepalive 8; }\n"
             "  server {\n"
             "    listen 127.0.0.1:%d;\n"
             "    include %s/packaging/nginx/callgate-location.conf;\n"
             "  }\n"
             "}\n",
             nx.dir, nx.dir, nx.dir, nx.dir, nx.dir, nx.dir, nx.dir, nx.dir, cg_port, nx.port,
             CG_SOURCE_DIR);
    snprintf(path, sizeof path, "%s/nginx.conf", nx.dir);
    write_file(path, conf);
    const char *argv[] = {nginx_bin(), "-c", path, "-p", nx.dir, NULL};
    const char *env[] = {NULL};
    cgt_spawn(&nx.proc, argv, env);
    char url[160];
    snprintf(url, sizeof url, "%s/health", nx.public_url);
    if (cgt_wait_status(url, 200, 15000) != 0) {
        cgt_dump_log_tail(&nx.proc, "nginx", 4000);
        fail_msg("nginx did not proxy /callgate/health");
    }
}

/* callgate (callgate's defaults, one slot) behind nginx, whose address
 * with the prefix is callgate's PUBLIC_URL. */
static int setup_proxy(void **state)
{
    setup(state);
    struct fixture *f = *state;
    f->callgate_defaults = 1;
    nx.dir = cgt_tmpdir();
    nx.port = cg_free_port();
    snprintf(nx.public_url, sizeof nx.public_url, "http://127.0.0.1:%d/callgate", nx.port);
    char pub[160];
    snprintf(pub, sizeof pub, "PUBLIC_URL=%s", nx.public_url);
    start_gate(f, 0, (const char *const[]){pub, "MAX_CONCURRENCY=1", NULL});
    start_nginx(f->g[0].port);
    return 0;
}

static int teardown_proxy(void **state)
{
    if (nx.proc.pid > 0)
        cgt_stop(&nx.proc, SIGQUIT, 5000);
    cg_remove_tree(nx.dir);
    free(nx.dir);
    memset(&nx, 0, sizeof nx);
    return teardown_graceful(state);
}

/* POSTs a Twilio webhook through nginx, signed over sign_base + path. */
static void post_through(const char *sign_base, const char *path, const char *const *kv,
                         struct cgt_resp *r)
{
    char url[256], signed_url[256];
    snprintf(url, sizeof url, "%s%s", nx.public_url, path);
    snprintf(signed_url, sizeof signed_url, "%s%s", sign_base, path);
    cgt_twilio_post(url, signed_url, AUTH_TOKEN, kv, NULL, r);
}

static void test_signed_webhooks_through_prefix(void **state)
{
    struct fixture *f = *state;
    const char *kv[] = {"CallSid",    "CA00000000000000000000000000000001",
                        "AccountSid", ACCOUNT_SID,
                        "From",       "+15557770001",
                        "To",         "+15550002222",
                        "CallStatus", "ringing",
                        "Direction",  "inbound",
                        NULL};

    /* Signed over the internal URL (a PUBLIC_URL mistake's mirror image):
     * refused, and nothing is written. Admission waits for the first
     * repair on a fresh Redis (its marker, cg:{default}:intact, is then the
     * gate's only key but those state_keys leaves out). */
    uint64_t until = cgt_now_ms() + 10000;
    char *keys = NULL;
    for (;;) {
        free(keys);
        keys = state_keys(f);
        if (strcmp(keys, "cg:{default}:intact") == 0 || cgt_now_ms() > until)
            break;
        cgt_sleep_ms(10);
    }
    assert_string_equal(keys, "cg:{default}:intact");
    free(keys);
    struct cgt_resp r;
    post_through(f->g[0].base, "/incoming", kv, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    keys = state_keys(f);
    assert_string_equal(keys, "cg:{default}:intact");
    free(keys);

    /* Signed over the public URL with its prefix, as Twilio signs: the
     * caller is connected on the fast path with the assistant's TwiML. */
    post_through(nx.public_url, "/incoming", kv, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.body);
    assert_non_null(strstr(r.body, "<Connect>"));
    cgt_resp_free(&r);

    /* The next caller waits: Enqueue, with callback URLs under the prefix. */
    const char *kv2[] = {"CallSid",    "CA00000000000000000000000000000002",
                         "AccountSid", ACCOUNT_SID,
                         "From",       "+15557770002",
                         "To",         "+15550002222",
                         "CallStatus", "ringing",
                         "Direction",  "inbound",
                         NULL};
    post_through(nx.public_url, "/incoming", kv2, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<Enqueue"));
    char want[256];
    snprintf(want, sizeof want, "waitUrl=\"%s/queue-wait\"", nx.public_url);
    if (strstr(r.body, want) == NULL)
        fail_msg("Enqueue without %s: %s", want, r.body);
    cgt_resp_free(&r);

    /* Vapi's messages through the proxy: the secret is checked as usual. */
    char url[256];
    snprintf(url, sizeof url, "%s/call-ended", nx.public_url);
    const char *body = "{\"message\":{\"type\":\"status-update\",\"status\":\"in-progress\","
                       "\"call\":{\"id\":\"unknown-call\"}}}";
    const char *bad[] = {"Content-Type: application/json", "x-vapi-secret: wrong", NULL};
    cgt_http("POST", url, bad, body, strlen(body), &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    const char *good[] = {"Content-Type: application/json", "x-vapi-secret: " VAPI_SECRET, NULL};
    cgt_http("POST", url, good, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    cgt_resp_free(&r);

    /* Unknown paths are callgate's JSON 404, not nginx's page. */
    snprintf(url, sizeof url, "%s/no-such-path", nx.public_url);
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "\"not_found\""));
    cgt_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signed_webhooks_through_prefix, setup_proxy,
                                        teardown_proxy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
