#include "wtcg.h"

#include <stdio.h>

#include "demo/proc.h"

#define MAX_ENV      64
#define WTCG_STR_(x) #x
#define WTCG_STR(x)  WTCG_STR_(x)

void cgt_wtcg_start(struct cgt_wtcg *c, int index, const struct cgt_wtcg_opts *o,
                    const char *const *extra, int healthy_within_ms)
{
    if (c->port == 0)
        c->port = cg_free_port();
    snprintf(c->base, sizeof c->base, "http://127.0.0.1:%d", c->port);
    snprintf(c->id, sizeof c->id, "cg%d", index);
    char port[32], redis[160], tr[160], id[64], acct[96], token[160], ws[96];
    snprintf(port, sizeof port, "PORT=%d", c->port);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", o->redis_url);
    snprintf(tr, sizeof tr, "TASKROUTER_BASE_URL=%s", o->taskrouter_url);
    snprintf(id, sizeof id, "INSTANCE_ID=%s", c->id);
    snprintf(acct, sizeof acct, "TWILIO_ACCOUNT_SID=%s", o->account_sid);
    snprintf(token, sizeof token, "TWILIO_AUTH_TOKEN=%s", o->auth_token);
    snprintf(ws, sizeof ws, "TWILIO_WORKSPACE_SID=%s", o->workspace_sid);
    const char *env[MAX_ENV] = {port,
                                redis,
                                tr,
                                id,
                                acct,
                                token,
                                ws,
                                "BIND_ADDRESS=127.0.0.1",
                                "LOG_LEVEL=info",
                                "WAIT_TIME_POLL_SECONDS=" WTCG_STR(CGT_WT_POLL_S),
                                "WAIT_TIME_LOCK_SECONDS=" WTCG_STR(CGT_WT_LOCK_S),
                                "REDIS_RECONNECT_MIN_MS=20",
                                "REDIS_RECONNECT_MAX_MS=200",
                                "REDIS_COMMAND_TIMEOUT_MS=2000",
                                "TWILIO_TIMEOUT_MS=5000",
                                "SHUTDOWN_GRACE_MS=3000",
                                "-VAPI_API_KEY",
                                "-VAPI_PHONE_NUMBER_ID",
                                "-VAPI_ASSISTANT_ID",
                                "-WAIT_TIME_READ_TOKEN",
                                "-WAIT_TIME_PAGE_SIZE",
                                "-HOLD_MUSIC_URL",
                                NULL};
    size_t n = 0;
    while (env[n])
        n++;
    for (; extra && *extra; extra++) {
        if (n >= MAX_ENV - 1)
            fail_msg("cgt_wtcg_start: more than %d settings", MAX_ENV - 1);
        env[n++] = *extra;
    }
    env[n] = NULL;
    const char *argv[] = {cgt_bin("callgate"), "serve", NULL};
    cgt_spawn(&c->proc, argv, env);
    char url[128];
    snprintf(url, sizeof url, "%s/health", c->base);
    if (cgt_wait_status(url, 200, healthy_within_ms) != 0) {
        char *out = cgt_proc_output(&c->proc);
        fail_msg("callgate %d did not become healthy; output:\n%s", index, out);
    }
}
