#include "base/fmacros.h"

#include "app.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/form.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/board.h"
#include "gate/endpoints.h"
#include "gate/gate.h"
#include "gate/keys.h"
#include "gate/queue_view.h"
#include "health.h"
#include "net/httpc.h"
#include "net/httpd.h"
#include "net/redis.h"
#include "twilio/webhook.h"
#include "waittime/hold.h"
#include "waittime/waittime.h"

/* How often the shutdown sequence checks whether work has drained. */
#define DRAIN_POLL_MS 20
/* Misrouted webhooks: one log line per path per this long, remembering
 * this many paths, and at most MISROUTE_LOG_MAX lines in all per period
 * (a flood of made-up paths must not flood the log). */
#define MISROUTE_LOG_MS    60000
#define MISROUTE_LOG_PATHS 16
#define MISROUTE_LOG_MAX   20

struct misroute_seen {
    char path[128];
    uint64_t at_ms; /* monotonic; 0: free */
};

struct cg_app {
    const struct cg_config *cfg;
    struct event_base *base;
    struct cg_keys keys;
    struct cg_redis *redis;
    struct cg_httpd *httpd;
    struct cg_httpc *httpc;
    struct cg_health *health;
    struct cg_metrics *metrics;
    struct cg_gate *gate;
    struct gate_board *board; /* /events, /wallboard, the figures */
    struct cg_waittime *waittime;

    struct event *sigint;
    struct event *sigterm;
    struct event *sighup;
    int exit_status; /* for main: 0, or 2 when the configuration proved wrong */
    struct event *drain_timer;
    struct misroute_seen misroutes[MISROUTE_LOG_PATHS];
    uint64_t misroute_period_ms; /* monotonic: start of the current period */
    unsigned misroute_lines;     /* lines logged in it */
    int limit_checked;           /* the runtime limit was looked up (first READY) */
    int stopping;                /* shutdown begun */
    int closing_redis;           /* work drained, waiting for Redis to close */
    uint64_t deadline_ms;        /* monotonic: the grace period ends */
};

/* A limit set through /admin/limit outlives restarts (it is in Redis): an
 * operator who changed MAX_CONCURRENCY and restarted must learn that it
 * is not the one in force. */
static void on_runtime_limit(const redisReply *r, const char *err, void *arg)
{
    struct cg_app *app = arg;
    if (err != NULL || r == NULL || r->type != REDIS_REPLY_STRING)
        return;
    long long limit = strtoll(r->str, NULL, 10);
    char msg[160];
    snprintf(msg, sizeof msg,
             "runtime limit %lld (set through /admin/limit) in force instead of "
             "MAX_CONCURRENCY=%d",
             limit, app->cfg->max_concurrency);
    cg_log_info(msg, "limit=%lld max_concurrency=%d", limit, app->cfg->max_concurrency);
}

static void on_redis_state(enum cg_redis_state state, void *arg)
{
    struct cg_app *app = arg;
    if (state == CG_REDIS_READY)
        cg_log_info("redis ready", "");
    if (state == CG_REDIS_READY && app->gate && !app->limit_checked) {
        app->limit_checked = 1;
        if (cg_redis_command(app->redis, on_runtime_limit, app, "GET %s", app->keys.limit) != 0)
            cg_log_warn("cannot read the runtime limit", "key=%s", app->keys.limit);
    } else if (state == CG_REDIS_DISCONNECTED && !app->stopping)
        cg_log_warn("redis unavailable; serving degraded until it returns", "");
    if (app->gate)
        cg_gate_redis_state(app->gate, state);
    if (app->waittime)
        cg_waittime_redis_state(app->waittime, state);
}

struct scrape {
    struct cg_app *app;
    struct cg_http_req *req;
};

static void render_metrics(void *arg)
{
    struct scrape *sc = arg;
    struct cg_buf b;
    cg_buf_init(&b, 1 << 20);
    cg_metrics_render(sc->app->metrics, &b);
    cg_http_reply(sc->req, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    cg_buf_free(&b);
    free(sc);
}

/* /metrics: this process's figures, and the gate's (read from Redis at
 * each scrape) when the gate is on. */
static void handle_metrics(struct cg_http_req *req, void *arg)
{
    struct cg_app *app = arg;
    struct scrape *sc = cg_calloc(1, sizeof *sc);
    sc->app = app;
    sc->req = req;
    if (app->gate)
        cg_gate_collect_metrics(app->gate, render_metrics, sc);
    else
        render_metrics(sc);
}

/* /queue's TaskQueue part: the wait-time service's records, or null when
 * it does not run. */
static int append_task_queues(struct cg_buf *out, void *arg)
{
    struct cg_app *app = arg;
    if (cg_buf_appends(out, ",\"taskQueues\":") != 0)
        return -1;
    int rc = cg_waittime_queues_json(app->waittime, out);
    return rc == 1 ? cg_buf_appends(out, "null") : rc;
}

/* /queue's last members: the TaskQueues and the board's figures. */
static int append_queue_extra(struct cg_buf *out, void *arg)
{
    struct cg_app *app = arg;
    if (append_task_queues(out, arg) != 0)
        return -1;
    return cg_gate_board_figures_json(app->board, out);
}

/* /queue, the operator's live view: the gate's state (gate/queue_view.h)
 * joined with the TaskQueues' wait times. */
static void handle_queue(struct cg_http_req *req, void *arg)
{
    struct cg_app *app = arg;
    cg_gate_queue_reply(app->gate, req, append_queue_extra, app);
}

/* /queue-wait, the <Enqueue> waitUrl, with the same Twilio checks as every
 * webhook: TaskRouter callers (?taskQueueSid=WQ...) hear their TaskQueue's
 * estimate from the wait-time service; everyone else is a caller of the
 * gate's own queue. */
static void handle_queue_wait(struct cg_http_req *req, void *arg)
{
    struct cg_app *app = arg;
    const char *sid;
    const struct cg_form *form = cg_twhook_check(req, app->cfg, &sid);
    if (form == NULL)
        return;
    const struct cg_form *q = cg_http_req_query(req);
    const char *tq = q ? cg_form_get(q, "taskQueueSid") : NULL;
    if (tq != NULL) {
        cg_waittime_hold_reply(app->cfg, app->waittime, req, tq);
        return;
    }
    if (app->gate == NULL) {
        cg_http_reply_error(req, 404, "not_found",
                            "the admission gate is off; /queue-wait serves ?taskQueueSid= only");
        return;
    }
    cg_gate_queue_wait(app->gate, req, form, sid);
}

/* 1 when a line about path was logged within MISROUTE_LOG_MS; else
 * remembers path now (in the free or oldest entry) and returns 0. */
static int misroute_logged_lately(struct cg_app *app, const char *path)
{
    uint64_t now = cg_mono_ms();
    if (app->misroute_period_ms == 0 || now - app->misroute_period_ms >= MISROUTE_LOG_MS) {
        app->misroute_period_ms = now;
        app->misroute_lines = 0;
    }
    if (app->misroute_lines >= MISROUTE_LOG_MAX)
        return 1;
    struct misroute_seen *slot = &app->misroutes[0];
    for (size_t i = 0; i < MISROUTE_LOG_PATHS; i++) {
        struct misroute_seen *m = &app->misroutes[i];
        if (m->at_ms != 0 && strncmp(m->path, path, sizeof m->path - 1) == 0) {
            if (now - m->at_ms < MISROUTE_LOG_MS)
                return 1;
            slot = m;
            break;
        }
        if (m->at_ms < slot->at_ms)
            slot = m;
    }
    snprintf(slot->path, sizeof slot->path, "%s", path);
    slot->at_ms = now;
    app->misroute_lines++;
    return 0;
}

/* A request no route serves. When it looks like a Twilio webhook (a form
 * with CallSid and AccountSid) or a Vapi server message (JSON with a
 * "message" object), a console somewhere points at the wrong URL: say
 * which setting to fix. It still gets its 404. */
static void on_unmatched(struct cg_http_req *req, void *arg)
{
    struct cg_app *app = arg;
    if (cg_http_req_method(req) != CG_HTTP_POST)
        return;
    const char *path = cg_http_req_path(req);
    const char *pub = app->cfg->public_url;
    char msg[640];
    const char *ct = cg_http_req_header(req, "Content-Type");
    if (ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
        const char *ferr = NULL;
        const struct cg_form *form = cg_http_req_form(req, &ferr);
        if (form == NULL || cg_form_get(form, "CallSid") == NULL ||
            cg_form_get(form, "AccountSid") == NULL)
            return;
        if (cg_form_get(form, "QueueResult") != NULL || cg_form_get(form, "QueueSid") != NULL)
            snprintf(msg, sizeof msg,
                     "a Twilio queue callback reached %.100s: callgate writes those URLs from "
                     "PUBLIC_URL (%.200s), so set PUBLIC_URL to the address Twilio reaches "
                     "callgate at, path prefix included",
                     path, pub);
        else
            snprintf(msg, sizeof msg,
                     "a Twilio webhook reached %.100s: set the number's 'A call comes in' URL "
                     "to %.200s/incoming and its call status callback to %.200s/call-status",
                     path, pub, pub);
    } else {
        size_t len;
        const char *body = cg_http_req_body(req, &len);
        if (len == 0 || body[0] != '{')
            return;
        json_t *root = cg_json_parse(body, len, 16, NULL, 0);
        int vapi = root != NULL && json_is_object(json_object_get(root, "message"));
        json_decref(root);
        if (!vapi)
            return;
        snprintf(msg, sizeof msg,
                 "a Vapi webhook reached %.100s: set the assistant's Server URL to "
                 "%.200s/call-ended",
                 path, pub);
    }
    if (misroute_logged_lately(app, path))
        return;
    cg_log_warn(msg, "path=%s peer=%s", path, cg_http_req_peer(req));
}

/* Counts every answered request by route and status, for /metrics. */
static void on_http_done(const char *route, enum cg_http_method method, int status,
                         uint64_t duration_us, void *arg)
{
    struct cg_app *app = arg;
    (void)method;
    struct cg_buf b;
    cg_buf_init(&b, 512);
    cg_metrics_label(&b, "route", route[0] ? route : "unmatched");
    cg_buf_appendc(&b, ',');
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    cg_metrics_label(&b, "status", code);
    cg_metrics_inc(app->metrics, "callgate_http_requests_total", cg_buf_str(&b), 1);
    cg_buf_reset(&b);
    cg_metrics_label(&b, "route", route[0] ? route : "unmatched");
    cg_metrics_observe(app->metrics, "callgate_http_request_duration_seconds", cg_buf_str(&b),
                       (double)duration_us / 1e6);
    cg_buf_free(&b);
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
        size_t busy = cg_httpd_inflight(app->httpd) + cg_httpc_inflight(app->httpc) +
                      (app->gate ? cg_gate_inflight(app->gate) : 0) +
                      cg_waittime_inflight(app->waittime);
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

static void shutdown_begin(struct cg_app *app);

/* Another gate uses this gate's Twilio queue: a configuration error found
 * once Redis answered. The process stops as a bad configuration does
 * (exit 2, which the systemd unit does not restart), draining first. */
static void on_gate_conflict(const char *why, void *arg)
{
    struct cg_app *app = arg;
    cg_log_error("refusing to run", "reason=%s", why);
    app->exit_status = 2;
    shutdown_begin(app);
}

/* Begins the graceful shutdown; the loop exits when it is done. */
static void shutdown_begin(struct cg_app *app)
{
    if (app->stopping) {
        /* Second request: the operator wants out now. */
        cg_log_warn("second stop request; exiting without grace", "");
        app->deadline_ms = 0;
        event_active(app->drain_timer, EV_TIMEOUT, 0);
        return;
    }
    app->stopping = 1;
    /* Load balancers stop sending new calls here while the rest drains. */
    cg_health_set_ready(app->health, 0);
    app->deadline_ms = cg_mono_ms() + (uint64_t)app->cfg->shutdown_grace_ms;
    cg_log_info("shutting down", "grace_ms=%d in_flight=%zu admissions=%zu",
                app->cfg->shutdown_grace_ms, cg_httpd_inflight(app->httpd),
                app->gate ? cg_gate_inflight(app->gate) : 0);
    cg_httpd_stop_accepting(app->httpd);
    if (app->gate)
        cg_gate_stop(app->gate);
    /* Hands the poller lock over once its request in flight returns. */
    cg_waittime_stop(app->waittime);
    event_active(app->drain_timer, EV_TIMEOUT, 0);
}

/* SIGHUP: the configuration is read again. LOG_LEVEL takes effect at once;
 * any other change is named and waits for a restart (the objects built
 * from it are not rebuilt under a running gate). An invalid file changes
 * nothing. Never the default action, which would end the process. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct cg_app *app = arg;
    struct cg_config fresh;
    struct cg_config_errors errs = {0};
    if (cg_config_load(&fresh, CG_DOTENV_PATH, &errs) != 0) {
        cg_log_warn("SIGHUP: configuration not reloaded, it is invalid", "problems=%zu first=%s",
                    errs.n, errs.n ? errs.msgs[0] : "");
        cg_config_errors_free(&errs);
        cg_config_free(&fresh);
        return;
    }
    char changed[512];
    cg_config_diff(app->cfg, &fresh, changed, sizeof changed);
    if (fresh.log_level != app->cfg->log_level) {
        cg_log_set_level(fresh.log_level);
        cg_log_info("SIGHUP: LOG_LEVEL applied", "");
    }
    if (strcmp(changed, "") != 0 && strcmp(changed, "LOG_LEVEL") != 0)
        cg_log_warn("SIGHUP: options changed that take effect after a restart", "options=%s",
                    changed);
    else
        cg_log_info("SIGHUP: configuration reloaded", "changed=%s", changed);
    cg_config_errors_free(&errs);
    cg_config_free(&fresh);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    cg_log_info("signal received", "signal=%d", (int)sig);
    shutdown_begin(arg);
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
        .tls_ca_file = cfg->redis_tls_ca_file,
        .tls_cert_file = cfg->redis_tls_cert_file,
        .tls_key_file = cfg->redis_tls_key_file,
        .tls_server_name = cfg->redis_tls_server_name,
        .tls_insecure = cfg->redis_tls_insecure,
        .sentinels = cfg->redis_sentinels,
        .sentinel_master = cfg->redis_sentinel_master,
        .sentinel_password = cfg->redis_sentinel_password,
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
        cg_err_set(err, errlen, "cannot create the HTTP server");
        goto fail;
    }
    struct cg_httpc_opts co = {
        .default_max_response_bytes = 1024 * 1024,
        .default_timeout_ms = 10000,
    };
    app->httpc = cg_httpc_new(base, &co);
    if (app->httpc == NULL) {
        cg_err_set(err, errlen, "cannot create the HTTP client");
        goto fail;
    }
    app->metrics = cg_metrics_new();
    static const double http_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   1};
    cg_metrics_declare(app->metrics, "callgate_http_requests_total", CG_COUNTER,
                       "HTTP requests answered, by route and status.", NULL, 0);
    cg_metrics_declare(app->metrics, "callgate_http_request_duration_seconds", CG_HISTOGRAM,
                       "Time from a request's arrival to its answer, by route.", http_buckets,
                       sizeof http_buckets / sizeof http_buckets[0]);
    cg_httpd_set_observer(app->httpd, on_http_done, app);
    /* Always created: without a workspace its routes say the poller is off.
     * /queue-wait serves TaskRouter callers' hold music from it. */
    app->waittime =
        cg_waittime_new(base, cfg, app->redis, app->httpc, app->httpd, app->metrics, err, errlen);
    if (app->waittime == NULL)
        goto fail;
    struct cg_gate_deps gd = {
        .base = base,
        .cfg = cfg,
        .keys = &app->keys,
        .redis = app->redis,
        .httpc = app->httpc,
        .metrics = app->metrics,
        .on_conflict = on_gate_conflict,
        .conflict_arg = app,
    };
    /* The configuration decided (SERVICES): a gate that is on has every
     * option it needs, or callgate did not get this far. */
    if (cfg->services & CG_SERVICE_GATE) {
        app->gate = cg_gate_new(&gd, err, errlen);
        if (app->gate == NULL)
            goto fail;
        if (cg_gate_endpoints_register(app->httpd, app->gate) != 0 ||
            cg_httpd_route(app->httpd, "/queue", CG_HTTP_GET, handle_queue, app) != 0) {
            cg_err_set(err, errlen, "cannot register the gate's routes");
            goto fail;
        }
        app->board =
            cg_gate_board_new(app->gate, app->httpd, app->metrics, append_task_queues, app);
        if (app->board == NULL) {
            cg_err_set(err, errlen, "cannot register /events and /wallboard");
            goto fail;
        }
    }
    app->health = cg_health_new(app->httpd, app->redis, &app->keys, cfg, app->gate);
    if (app->health == NULL) {
        cg_err_set(err, errlen, "cannot register /health, /livez and /readyz");
        goto fail;
    }
    cg_httpd_set_unmatched(app->httpd, on_unmatched, app);
    if (cg_httpd_route(app->httpd, "/metrics", CG_HTTP_GET, handle_metrics, app) != 0 ||
        cg_httpd_route(app->httpd, "/queue-wait", CG_HTTP_POST, handle_queue_wait, app) != 0) {
        cg_err_set(err, errlen, "cannot register /metrics and /queue-wait");
        goto fail;
    }
    app->drain_timer = evtimer_new(base, on_drain, app);
    if (app->drain_timer == NULL) {
        cg_err_set(err, errlen, "cannot create timers");
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
    cg_health_set_ready(app->health, 1);
    app->sigint = evsignal_new(app->base, SIGINT, on_signal, app);
    app->sigterm = evsignal_new(app->base, SIGTERM, on_signal, app);
    if (app->sigint == NULL || app->sigterm == NULL || evsignal_add(app->sigint, NULL) != 0 ||
        evsignal_add(app->sigterm, NULL) != 0) {
        cg_err_set(err, errlen, "cannot install signal handlers");
        return -1;
    }
    app->sighup = evsignal_new(app->base, SIGHUP, on_sighup, app);
    if (app->sighup == NULL || evsignal_add(app->sighup, NULL) != 0) {
        cg_err_set(err, errlen, "cannot install signal handlers");
        return -1;
    }
    const struct cg_config *cfg = app->cfg;
    char services[32];
    cg_config_services_text(cfg->services, services, sizeof services);
    cg_log_info("callgate listening", "address=%s port=%d public_url=%s instance=%s services=%s",
                cfg->bind_address, cg_httpd_port(app->httpd), cfg->public_url, cfg->instance_id,
                services);
    if ((cfg->services & CG_SERVICE_GATE) && cfg->admin_token[0] == '\0')
        cg_log_warn(cfg->public_url_loopback
                        ? "admin endpoints answer loopback clients only (ADMIN_TOKEN is unset)"
                        : "admin endpoints refuse every request: ADMIN_TOKEN is unset and "
                          "PUBLIC_URL is not a loopback address, so a loopback peer may be a "
                          "local reverse proxy relaying anyone",
                    "");
    return 0;
}

int cg_app_exit_status(const struct cg_app *app)
{
    return app->exit_status;
}

void cg_app_free(struct cg_app *app)
{
    if (app == NULL)
        return;
    /* The gate lets go of Redis first; then Redis, whose pending callbacks
     * may still answer HTTP requests (which must exist when they do) and
     * wind the gate's work down; then the gate and the rest. The board
     * goes first: it ends its viewers' streams and reads nothing more. */
    cg_gate_board_free(app->board);
    if (app->gate)
        cg_gate_detach(app->gate);
    /* Before Redis and the HTTP client: their pending callbacks into the
     * wait-time service are disarmed by this. */
    cg_waittime_free(app->waittime);
    cg_redis_free(app->redis);
    cg_gate_free(app->gate);
    cg_httpc_free(app->httpc);
    cg_health_free(app->health);
    cg_httpd_free(app->httpd);
    if (app->sigint)
        event_free(app->sigint);
    if (app->sigterm)
        event_free(app->sigterm);
    if (app->sighup)
        event_free(app->sighup);
    if (app->drain_timer)
        event_free(app->drain_timer);
    cg_metrics_free(app->metrics);
    free(app);
}
