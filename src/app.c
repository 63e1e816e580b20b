#include "fmacros.h"

#include "app.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "health.h"
#include "httpc.h"
#include "httpd.h"
#include "keys.h"
#include "log.h"
#include "redis.h"

/* How often the shutdown sequence checks whether work has drained. */
#define DRAIN_POLL_MS 20

struct cg_app {
    const struct cg_config *cfg;
    struct event_base *base;
    struct cg_keys keys;
    struct cg_redis *redis;
    struct cg_httpd *httpd;
    struct cg_httpc *httpc;
    struct cg_health *health;

    struct event *sigint;
    struct event *sigterm;
    struct event *drain_timer;
    int stopping;         /* shutdown begun */
    int closing_redis;    /* work drained, waiting for Redis to close */
    uint64_t deadline_ms; /* monotonic: the grace period ends */
};

static void on_redis_state(enum cg_redis_state state, void *arg)
{
    struct cg_app *app = arg;
    if (state == CG_REDIS_READY)
        cg_log_info("redis ready", "");
    else if (state == CG_REDIS_DISCONNECTED && !app->stopping)
        cg_log_warn("redis unavailable; serving degraded until it returns", "");
}

static void finish(struct cg_app *app)
{
    cg_log_info("shutdown complete", "");
    event_base_loopexit(app->base, NULL);
}

/* Polled during shutdown: waits for requests in flight to be answered, then
 * for Redis to finish its pending commands, each bounded by the deadline. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cg_app *app = arg;
    int late = cg_mono_ms() >= app->deadline_ms;

    if (!app->closing_redis) {
        size_t busy = cg_httpd_inflight(app->httpd) + cg_httpc_inflight(app->httpc);
        if (busy > 0 && !late) {
            struct timeval tv = {.tv_usec = DRAIN_POLL_MS * 1000};
            evtimer_add(app->drain_timer, &tv);
            return;
        }
        if (busy > 0)
            cg_log_warn("grace period over; abandoning work in flight", "requests=%zu",
                        cg_httpd_inflight(app->httpd));
        app->closing_redis = 1;
        cg_redis_close(app->redis);
    }
    if (cg_redis_state(app->redis) != CG_REDIS_CLOSED && !late) {
        struct timeval tv = {.tv_usec = DRAIN_POLL_MS * 1000};
        evtimer_add(app->drain_timer, &tv);
        return;
    }
    finish(app);
}

void cg_app_shutdown(struct cg_app *app)
{
    if (app->stopping) {
        /* Second request: the operator wants out now. */
        cg_log_warn("second stop request; exiting without grace", "");
        app->deadline_ms = 0;
        event_active(app->drain_timer, EV_TIMEOUT, 0);
        return;
    }
    app->stopping = 1;
    app->deadline_ms = cg_mono_ms() + (uint64_t)app->cfg->shutdown_grace_ms;
    cg_log_info("shutting down", "grace_ms=%d in_flight=%zu", app->cfg->shutdown_grace_ms,
                cg_httpd_inflight(app->httpd));
    cg_httpd_stop_accepting(app->httpd);
    event_active(app->drain_timer, EV_TIMEOUT, 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    cg_log_info("signal received", "signal=%d", (int)sig);
    cg_app_shutdown(arg);
}

struct cg_app *cg_app_new(const struct cg_config *cfg, struct event_base *base, char *err,
                          size_t errlen)
{
    struct cg_app *app = cg_calloc(1, sizeof *app);
    app->cfg = cfg;
    app->base = base;
    cg_keys_init(&app->keys, cfg->gate_name);

    struct cg_redis_opts ro = {
        .url = cfg->redis_url,
        .connect_timeout_ms = cfg->redis_connect_timeout_ms,
        .command_timeout_ms = cfg->redis_command_timeout_ms,
        .backoff_min_ms = cfg->redis_reconnect_min_ms,
        .backoff_max_ms = cfg->redis_reconnect_max_ms,
    };
    app->redis = cg_redis_new(base, &ro, err, errlen);
    if (app->redis == NULL)
        goto fail;
    cg_redis_set_state_cb(app->redis, on_redis_state, app);

    struct cg_httpd_opts ho = {
        .bind_address = cfg->bind_address,
        .port = cfg->port,
        .max_body_bytes = (size_t)cfg->http_max_body_bytes,
        .max_header_bytes = (size_t)cfg->http_max_header_bytes,
        .timeout_seconds = cfg->http_timeout_seconds,
    };
    app->httpd = cg_httpd_new(base, &ho);
    if (app->httpd == NULL) {
        snprintf(err, errlen, "cannot create the HTTP server");
        goto fail;
    }
    struct cg_httpc_opts co = {
        .default_max_response_bytes = 1024 * 1024,
        .default_timeout_ms = 10000,
    };
    app->httpc = cg_httpc_new(base, &co);
    if (app->httpc == NULL) {
        snprintf(err, errlen, "cannot create the HTTP client");
        goto fail;
    }
    app->health = cg_health_new(app->httpd, app->redis, &app->keys, cfg);
    if (app->health == NULL) {
        snprintf(err, errlen, "cannot register /health");
        goto fail;
    }
    app->drain_timer = evtimer_new(base, on_drain, app);
    if (app->drain_timer == NULL) {
        snprintf(err, errlen, "cannot create timers");
        goto fail;
    }
    return app;
fail:
    cg_app_free(app);
    return NULL;
}

int cg_app_start(struct cg_app *app, char *err, size_t errlen)
{
    if (cg_httpd_listen(app->httpd, err, errlen) != 0)
        return -1;
    app->sigint = evsignal_new(app->base, SIGINT, on_signal, app);
    app->sigterm = evsignal_new(app->base, SIGTERM, on_signal, app);
    if (app->sigint == NULL || app->sigterm == NULL || evsignal_add(app->sigint, NULL) != 0 ||
        evsignal_add(app->sigterm, NULL) != 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        return -1;
    }
    cg_log_info("callgate listening", "address=%s port=%d public_url=%s instance=%s",
                app->cfg->bind_address, cg_httpd_port(app->httpd), app->cfg->public_url,
                app->cfg->instance_id);
    return 0;
}

int cg_app_port(const struct cg_app *app)
{
    return cg_httpd_port(app->httpd);
}

void cg_app_free(struct cg_app *app)
{
    if (app == NULL)
        return;
    /* Redis first: its pending callbacks may still answer HTTP requests,
     * which must exist when they do. */
    cg_redis_free(app->redis);
    cg_httpc_free(app->httpc);
    cg_health_free(app->health);
    cg_httpd_free(app->httpd);
    if (app->sigint)
        event_free(app->sigint);
    if (app->sigterm)
        event_free(app->sigterm);
    if (app->drain_timer)
        event_free(app->drain_timer);
    free(app);
}
