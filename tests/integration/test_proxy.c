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
#include "fakeapi.h"
#include "twilio/signature.h"

/* The gate's keys but the instance registry's (cg:{g}:inst*), which a
 * running instance keeps up to date whatever requests it gets. */
#define KEYS_BUT_REGISTRY                                                                          \
    "local o = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "                             \
    "if not string.find(k, ':inst', 1, true) then o[#o + 1] = k end end "                          \
    "table.sort(o) return o"

#define ACCOUNT_SID "AC0123456789abcdef0123456789abcdef"
#define AUTH_TOKEN  "proxy-twilio-auth-token"
#define QUEUE_SID   "QU0123456789abcdef0123456789abcdef"
#define VAPI_KEY    "proxy-vapi-api-key"
#define VAPI_SECRET "proxy-vapi-webhook-secret"
#define CALLER      "+15557770001"

struct fixture {
    struct cg_redis_server rs;
    struct cgt_fake *fake;
    struct cgt_proc cg, nginx;
    int cg_port, nginx_port;
    char *dir;
    char public_url[128]; /* what Twilio calls: nginx, with the prefix */
    char internal[128];   /* callgate itself */
};

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

static void start_nginx(struct fixture *f)
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
             f->dir, f->dir, f->dir, f->dir, f->dir, f->dir, f->dir, f->dir, f->cg_port,
             f->nginx_port, CG_SOURCE_DIR);
    snprintf(path, sizeof path, "%s/nginx.conf", f->dir);
    write_file(path, conf);
    const char *argv[] = {nginx_bin(), "-c", path, "-p", f->dir, NULL};
    const char *env[] = {NULL};
    cgt_spawn(&f->nginx, argv, env);
    char url[160];
    snprintf(url, sizeof url, "%s/health", f->public_url);
    if (cgt_wait_status(url, 200, 15000) != 0) {
        cgt_dump_log_tail(&f->nginx, "nginx", 4000);
        fail_msg("nginx did not proxy /callgate/health");
    }
}

static int setup(void **state)
{
    struct fixture *f = cg_calloc(1, sizeof *f);
    cgt_redis_start(&f->rs);
    struct cgt_fake_opts o = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .vapi_key = VAPI_KEY};
    f->fake = cgt_fake_start(&o);
    f->dir = cgt_tmpdir();
    f->cg_port = cg_free_port();
    f->nginx_port = cg_free_port();
    snprintf(f->public_url, sizeof f->public_url, "http://127.0.0.1:%d/callgate", f->nginx_port);
    snprintf(f->internal, sizeof f->internal, "http://127.0.0.1:%d", f->cg_port);

    char port[32], pub[160], redis[96], twbase[96], vbase[96];
    snprintf(port, sizeof port, "PORT=%d", f->cg_port);
    snprintf(pub, sizeof pub, "PUBLIC_URL=%s", f->public_url);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->rs.url);
    snprintf(twbase, sizeof twbase, "TWILIO_API_BASE_URL=%s", cgt_fake_url(f->fake));
    snprintf(vbase, sizeof vbase, "VAPI_BASE_URL=%s", cgt_fake_url(f->fake));
    const char *const mine[] = {port, pub, redis, twbase, vbase, NULL};
    static const char *const base_env[] = {"BIND_ADDRESS=127.0.0.1",
                                           "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
                                           "TWILIO_AUTH_TOKEN=" AUTH_TOKEN,
                                           "TWILIO_QUEUE_SID=" QUEUE_SID,
                                           "VAPI_API_KEY=" VAPI_KEY,
                                           "VAPI_PHONE_NUMBER_ID=phone-1",
                                           "VAPI_ASSISTANT_ID=assistant-1",
                                           "VAPI_WEBHOOK_SECRET=" VAPI_SECRET,
                                           "MAX_CONCURRENCY=1",
                                           "LOG_LEVEL=debug",
                                           NULL};
    const char *const *lists[] = {mine, base_env, NULL};
    cgt_spawn_callgate(&f->cg, lists);
    char url[160];
    snprintf(url, sizeof url, "%s/health", f->internal);
    if (cgt_wait_status(url, 200, 15000) != 0) {
        cgt_dump_log_tail(&f->cg, "callgate", 4000);
        fail_msg("callgate did not become healthy");
    }
    start_nginx(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->nginx.pid > 0)
        cgt_stop(&f->nginx, SIGQUIT, 5000);
    if (f->cg.pid > 0)
        assert_int_equal(cgt_stop(&f->cg, SIGTERM, 10000), 0);
    cgt_fake_stop(f->fake);
    cg_redis_server_stop(&f->rs);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        print_message("could not remove %s\n", f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* POSTs a Twilio webhook through nginx, signed over sign_base + path. */
static void twilio_post(struct fixture *f, const char *sign_base, const char *path,
                        const char *const *kv, struct cgt_resp *r)
{
    char url[256], signed_url[256];
    snprintf(url, sizeof url, "%s%s", f->public_url, path);
    snprintf(signed_url, sizeof signed_url, "%s%s", sign_base, path);
    struct cg_form form;
    cg_form_init(&form);
    for (size_t k = 0; kv[k] && kv[k + 1]; k += 2)
        cg_form_add(&form, kv[k], kv[k + 1]);
    char sig[CG_TWSIG_LEN + 1];
    assert_int_equal(cg_twsig_compute(AUTH_TOKEN, signed_url, &form, sig), 0);
    char sigh[64];
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(&form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
    free(body);
    cg_form_free(&form);
}

static void test_signed_webhooks_through_prefix(void **state)
{
    struct fixture *f = *state;
    const char *kv[] = {"CallSid",    "CA00000000000000000000000000000001",
                        "AccountSid", ACCOUNT_SID,
                        "From",       CALLER,
                        "To",         "+15550002222",
                        "CallStatus", "ringing",
                        "Direction",  "inbound",
                        NULL};

    /* Signed over the internal URL (a PUBLIC_URL mistake's mirror image):
     * refused, and nothing is written. */
    /* Admission waits for the first repair on a fresh Redis (its marker,
     * cg:{default}:intact, is then the gate's only key). */
    uint64_t until = cgt_now_ms() + 10000;
    char *keys = NULL;
    for (;;) {
        free(keys);
        keys = cgt_redis_cmd(&f->rs, "EVAL %s 0 %s", KEYS_BUT_REGISTRY, "cg:{default}:*");
        if (strcmp(keys, "cg:{default}:intact") == 0 || cgt_now_ms() > until)
            break;
        cgt_sleep_ms(10);
    }
    assert_string_equal(keys, "cg:{default}:intact");
    free(keys);
    struct cgt_resp r;
    twilio_post(f, f->internal, "/incoming", kv, &r);
    assert_int_equal(r.status, 403);
    cgt_resp_free(&r);
    keys = cgt_redis_cmd(&f->rs, "EVAL %s 0 %s", KEYS_BUT_REGISTRY, "cg:{default}:*");
    assert_string_equal(keys, "cg:{default}:intact");
    free(keys);

    /* Signed over the public URL with its prefix, as Twilio signs: the
     * caller is connected on the fast path with the assistant's TwiML. */
    twilio_post(f, f->public_url, "/incoming", kv, &r);
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
    twilio_post(f, f->public_url, "/incoming", kv2, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<Enqueue"));
    char want[256];
    snprintf(want, sizeof want, "waitUrl=\"%s/queue-wait\"", f->public_url);
    if (strstr(r.body, want) == NULL)
        fail_msg("Enqueue without %s: %s", want, r.body);
    cgt_resp_free(&r);

    /* Vapi's messages through the proxy: the secret is checked as usual. */
    char url[256];
    snprintf(url, sizeof url, "%s/call-ended", f->public_url);
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
    snprintf(url, sizeof url, "%s/no-such-path", f->public_url);
    cgt_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "\"not_found\""));
    cgt_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signed_webhooks_through_prefix, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
