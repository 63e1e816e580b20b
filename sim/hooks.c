/*
 * hooks.c - webhook delivery: the simulated load balancer in front of the
 * gate's instances, Twilio signing, Vapi's secret header, and the faults.
 *
 * A delivery goes through up to three stages: an optional delay (timer), an
 * optional hold (reorder: until the next delivery on the same side has been
 * sent and answered, at most HOLD_MAX_MS), and sending, once or twice
 * (duplicate). Each
 * copy is one HTTP request that may fail over once to the next instance
 * when the connection is refused, as a load balancer's health check would.
 * The caller's callback fires exactly once, for the first copy (or for the
 * drop), never from inside sim_hooks_*().
 *
 * sim_hooks_free() forgets pending deliveries without calling back; those
 * already on the wire are orphaned and freed when httpc completes them.
 */
#include "base/fmacros.h"

#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/alloc.h"
#include "base/list.h"
#include "net/httpc.h"
#include "base/log.h"
#include "report.h"
#include "rng.h"
#include "sim.h"
#include "twilio/signature.h"

#define TWILIO_TIMEOUT_MS 15000 /* Twilio's limit for fetching TwiML */
#define VAPI_TIMEOUT_MS   20000 /* Vapi's default server.timeoutSeconds */
#define HOLD_MAX_MS       1000
#define MAX_HEADERS       4

enum side { SIDE_TWILIO, SIDE_VAPI, NSIDES };
enum stage { ST_DELAY, ST_HELD, ST_DROP, ST_SENT };

struct delivery {
    struct sim_hooks *h;      /* NULL once orphaned by sim_hooks_free() */
    struct cg_list link;      /* h->all */
    struct cg_list hold_link; /* h->held[side] while ST_HELD */
    enum side side;
    enum stage stage;
    int reorder, duplicate;
    int overtakes; /* sent without hold: releases held ones when answered */
    char *method;
    char *url;  /* as the sender addressed it: the public URL */
    char *rest; /* what follows the public URL, or NULL when not under it */
    char *body;
    size_t body_len;
    const char *content_type;
    char *headers[MAX_HEADERS + 1];
    long timeout_ms;
    struct event *timer;
    sim_hook_cb cb;
    void *arg;
    int called_back;
    int inflight; /* copies on the wire */
};

struct copy {
    struct delivery *d;
    int first;
    int tries;
    size_t instance;
    char *target;
};

struct sim_hooks {
    struct sim_world *w;
    char *public_url;
    char **instances;
    size_t ninstances;
    size_t rr;
    unsigned long long tokens;   /* idempotency tokens issued */
    struct cg_list all;          /* every live delivery, newest first */
    struct cg_list held[NSIDES]; /* held back for reordering, newest first */
};

static const char *side_name(enum side s)
{
    return s == SIDE_TWILIO ? "twilio" : "vapi";
}

static void count(struct sim_hooks *h, enum side s, const char *what)
{
    if (!h->w->report)
        return;
    char name[64];
    snprintf(name, sizeof(name), "hooks.%s.%s", side_name(s), what);
    sim_report_count(h->w->report, name);
}

static char *strip_slash(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    return cg_strndup(s, n);
}

struct sim_hooks *sim_hooks_new(struct sim_world *w, const char *public_url,
                                const char *const *instances, size_t ninstances)
{
    struct sim_hooks *h = cg_calloc(1, sizeof(*h));
    h->w = w;
    cg_list_init(&h->all);
    for (int s = 0; s < NSIDES; s++)
        cg_list_init(&h->held[s]);
    h->public_url = strip_slash(public_url);
    h->ninstances = ninstances;
    h->instances = cg_calloc(ninstances ? ninstances : 1, sizeof(char *));
    for (size_t i = 0; i < ninstances; i++)
        h->instances[i] = strip_slash(instances[i]);
    return h;
}

const char *sim_hooks_public_url(const struct sim_hooks *h)
{
    return h->public_url;
}

/* Both links are self-linked when off their lists, so removing twice
 * (or an orphaned delivery) is harmless. */
static void unlink_all(struct delivery *d)
{
    cg_list_remove(&d->link);
}

static void unhold(struct delivery *d)
{
    cg_list_remove(&d->hold_link);
}

static void delivery_free(struct delivery *d)
{
    unlink_all(d);
    unhold(d);
    if (d->timer)
        event_free(d->timer);
    free(d->method);
    free(d->url);
    free(d->rest);
    free(d->body);
    for (int i = 0; i < MAX_HEADERS; i++)
        free(d->headers[i]);
    free(d);
}

void sim_hooks_free(struct sim_hooks *h)
{
    if (!h)
        return;
    struct cg_list *it, *tmp;
    cg_list_foreach_safe (it, tmp, &h->all) {
        struct delivery *d = cg_list_entry(it, struct delivery, link);
        cg_list_remove(&d->link);
        cg_list_remove(&d->hold_link);
        if (d->inflight > 0) {
            /* httpc still owns copies that point here. */
            if (d->timer) {
                event_free(d->timer);
                d->timer = NULL;
            }
            d->h = NULL;
        } else {
            d->h = NULL;
            delivery_free(d);
        }
    }
    for (size_t i = 0; i < h->ninstances; i++)
        free(h->instances[i]);
    free(h->instances);
    free(h->public_url);
    free(h);
}

/* ---- sending ---- */

static void send_copy(struct copy *cp);
static void release_held(struct sim_hooks *h, enum side side);

static void maybe_free(struct delivery *d)
{
    if (d->inflight == 0 && (d->stage == ST_SENT || d->h == NULL))
        delivery_free(d);
}

static void call_back(struct delivery *d, const struct sim_hook_result *res)
{
    if (d->called_back || !d->h || !d->cb)
        return;
    d->called_back = 1;
    d->cb(res, d->arg);
}

/* A refused or unreachable connection: nothing reached the instance, so a
 * load balancer may safely try the next one. Resets and timeouts are not:
 * the instance may have acted on the request. */
static int is_connect_failure(const char *err)
{
    return err && (strstr(err, "Failed to connect") || strstr(err, "Couldn't connect") ||
                   strstr(err, "Connection refused"));
}

/* The connection closed with no answer at all: the instance died while
 * holding the request (its kernel closed the socket), or dropped it.
 * Whether it acted on the request first is unknown, so only a balancer
 * told that the upstream's requests are idempotent retries these
 * (scenario balancer.retry_empty_response, as HAProxy's retry-on
 * empty-response). Timeouts never are: the instance may still be at it. */
static int is_empty_response(const char *err)
{
    return err && (strstr(err, "Empty reply") || strstr(err, "Connection reset") ||
                   strstr(err, "Recv failure") || strstr(err, "Send failure") ||
                   strcmp(err, "no response") == 0);
}

static void on_response(const struct cg_httpc_result *res, void *arg)
{
    struct copy *cp = arg;
    struct delivery *d = cp->d;
    struct sim_hooks *h = d->h;
    if (h && d->rest && h->ninstances > 1 && cp->tries < 2 && is_connect_failure(res->error)) {
        count(h, d->side, "failover");
        cp->instance = (cp->instance + 1) % h->ninstances;
        send_copy(cp);
        return;
    }
    if (h && d->rest && h->ninstances > 1 && cp->tries < 2 && h->w->sc->balancer_retry_empty &&
        is_empty_response(res->error)) {
        count(h, d->side, "retried_empty_response");
        cp->instance = (cp->instance + 1) % h->ninstances;
        send_copy(cp);
        return;
    }
    if (h && res->error)
        count(h, d->side, "transport_error");
    if (cp->first && h && d->overtakes && !cg_list_empty(&h->held[d->side])) {
        /* Held deliveries go once this one has been answered, so the gate
         * really sees them in the other order. */
        release_held(h, d->side);
    }
    if (cp->first) {
        /* The gate's own estimate for this caller, in seconds, when it
         * sent one (finite and not negative), else unknown. */
        double ewt = -1;
        if (res->captured != NULL) {
            char *end;
            double v = strtod(res->captured, &end);
            if (end != res->captured && *end == '\0' && v >= 0 && v < 1e9)
                ewt = v;
        }
        struct sim_hook_result r = {
            .status = res->status,
            .dropped = 0,
            .body = res->body,
            .body_len = res->body_len,
            .content_type = res->content_type,
            .error = res->error,
            .estimated_wait_s = ewt,
        };
        call_back(d, &r);
    }
    free(cp->target);
    free(cp);
    d->inflight--;
    maybe_free(d);
}

static void send_copy(struct copy *cp)
{
    struct delivery *d = cp->d;
    struct sim_hooks *h = d->h;
    free(cp->target);
    if (d->rest && h->ninstances > 0) {
        const char *base = h->instances[cp->instance];
        size_t n = strlen(base) + strlen(d->rest) + 1;
        cp->target = cg_malloc(n);
        snprintf(cp->target, n, "%s%s", base, d->rest);
    } else {
        cp->target = cg_strdup(d->url);
    }
    cp->tries++;
    struct cg_httpc_request req = {
        .method = d->method,
        .url = cp->target,
        .body = d->body,
        .body_len = d->body_len,
        .content_type = d->content_type,
        .headers = (const char *const *)d->headers,
        .timeout_ms = d->timeout_ms,
        .capture_header = "X-Callgate-Estimated-Wait",
    };
    if (cg_httpc_send(h->w->httpc, &req, on_response, cp) != 0) {
        /* Setup failure: completes the copy as a transport error. We are
         * on a timer callback here, never inside sim_hooks_*(). */
        struct cg_httpc_result res = {.error = "request setup failed", .body = ""};
        on_response(&res, cp);
    }
}

static void send_now(struct delivery *d)
{
    struct sim_hooks *h = d->h;
    d->stage = ST_SENT;
    int copies = d->duplicate ? 2 : 1;
    /* inflight is raised for both copies first, so that the first copy
     * failing synchronously cannot free the delivery under the second. */
    d->inflight += copies;
    for (int i = 0; i < copies; i++) {
        struct copy *cp = cg_calloc(1, sizeof(*cp));
        cp->d = d;
        cp->first = (i == 0);
        cp->instance = h->ninstances ? h->rr++ % h->ninstances : 0;
        send_copy(cp);
    }
}

/* Sends everything held back on a side: what overtook it has arrived. */
static void release_held(struct sim_hooks *h, enum side side)
{
    /* The batch is taken off the side first: what sending adds to the
     * side waits for the next release. */
    struct cg_list batch, *it;
    cg_list_init(&batch);
    while ((it = cg_list_first(&h->held[side])) != NULL) {
        cg_list_remove(it);
        cg_list_push_back(&batch, it);
    }
    while ((it = cg_list_first(&batch)) != NULL) {
        struct delivery *held = cg_list_entry(it, struct delivery, hold_link);
        cg_list_remove(it);
        evtimer_del(held->timer);
        send_now(held);
    }
}

static void arm(struct delivery *d, double seconds)
{
    long us = (long)(seconds * 1e6);
    if (us < 0)
        us = 0;
    struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};
    if (evtimer_add(d->timer, &tv) != 0)
        cg_log_error("sim hook timer failed", "");
}

/* After any delay: hold it back, or send it. */
static void ready(struct delivery *d)
{
    if (d->reorder) {
        d->stage = ST_HELD;
        cg_list_push_front(&d->h->held[d->side], &d->hold_link);
        arm(d, HOLD_MAX_MS / 1000.0);
        return;
    }
    d->overtakes = 1;
    send_now(d);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct delivery *d = arg;
    switch (d->stage) {
    case ST_DELAY:
        ready(d);
        break;
    case ST_HELD:
        /* Nothing came along to overtake it within the limit. */
        unhold(d);
        send_now(d);
        break;
    case ST_DROP: {
        struct sim_hook_result r = {.status = 0, .dropped = 1, .body = "", .estimated_wait_s = -1};
        d->stage = ST_SENT;
        call_back(d, &r);
        maybe_free(d);
        break;
    }
    case ST_SENT:
        break;
    }
}

static void deliver(struct sim_hooks *h, enum side side, struct delivery *d,
                    const struct sim_webhook_faults *faults)
{
    d->h = h;
    d->side = side;
    cg_list_push_front(&h->all, &d->link);
    d->timer = evtimer_new(h->w->base, on_timer, d);
    if (!d->timer) {
        cg_log_error("sim hook timer failed", "");
        delivery_free(d);
        return;
    }

    /* Under the public URL: the load balancer picks an instance. */
    size_t pl = strlen(h->public_url);
    if (strncmp(d->url, h->public_url, pl) == 0 &&
        (d->url[pl] == '\0' || d->url[pl] == '/' || d->url[pl] == '?'))
        d->rest = cg_strdup(d->url + pl);

    int drop = 0;
    double delay = -1;
    if (faults) {
        /* Always the same draws in the same order, whatever the outcome. */
        struct sim_rng *rng = h->w->fault_rng;
        drop = sim_rng_chance(rng, faults->drop);
        d->duplicate = sim_rng_chance(rng, faults->duplicate);
        d->reorder = sim_rng_chance(rng, faults->reorder);
        delay = sim_rng_draw(rng, &faults->delay);
    }
    if (drop) {
        count(h, side, "dropped");
        d->stage = ST_DROP;
        arm(d, 0);
        return;
    }
    if (d->duplicate)
        count(h, side, "duplicated");
    if (d->reorder)
        count(h, side, "reordered");
    if (delay > 0) {
        count(h, side, "delayed");
        d->stage = ST_DELAY;
        arm(d, delay);
        return;
    }
    /* Sending directly would let a synchronous httpc setup failure call
     * back from inside sim_hooks_*(); a zero delay keeps every callback on
     * the loop. */
    d->stage = ST_DELAY;
    arm(d, 0);
}

static char *header(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *s = cg_malloc(n);
    snprintf(s, n, "%s: %s", name, value);
    return s;
}

static void idempotency_token(struct sim_hooks *h, char out[37])
{
    /* splitmix64 of a counter: unique, deterministic, and it leaves the
     * fault stream alone. */
    uint64_t x = ++h->tokens * 0x9e3779b97f4a7c15ULL;
    uint64_t a = x, b = x ^ 0xd1b54a32d192ed03ULL;
    a = (a ^ (a >> 30)) * 0xbf58476d1ce4e5b9ULL;
    a ^= a >> 31;
    b = (b ^ (b >> 27)) * 0x94d049bb133111ebULL;
    b ^= b >> 31;
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
             (unsigned long long)(b & 0xffffffffffffULL));
}

void sim_hooks_twilio(struct sim_hooks *h, const char *method, const char *url,
                      const struct cg_form *params, const struct sim_webhook_faults *faults,
                      sim_hook_cb cb, void *arg)
{
    struct delivery *d = cg_calloc(1, sizeof(*d));
    cg_list_init(&d->link);
    cg_list_init(&d->hold_link);
    int is_get = method && strcmp(method, "GET") == 0;
    d->method = cg_strdup(is_get ? "GET" : "POST");
    d->cb = cb;
    d->arg = arg;
    d->timeout_ms = TWILIO_TIMEOUT_MS;
    char *encoded = params && params->n ? cg_form_encode(params) : NULL;
    char sig[CG_TWSIG_LEN + 1] = "";
    if (is_get) {
        /* GET: parameters travel in the query, and are signed as part of
         * the URL. */
        if (encoded) {
            size_t n = strlen(url) + strlen(encoded) + 2;
            d->url = cg_malloc(n);
            snprintf(d->url, n, "%s%c%s", url, strchr(url, '?') ? '&' : '?', encoded);
        } else {
            d->url = cg_strdup(url);
        }
        if (cg_twsig_compute(h->w->sc->twilio_auth_token, d->url, NULL, sig) != 0)
            sig[0] = '\0';
        free(encoded);
    } else {
        d->url = cg_strdup(url);
        d->body = encoded ? encoded : cg_strdup("");
        d->body_len = strlen(d->body);
        d->content_type = "application/x-www-form-urlencoded";
        if (cg_twsig_compute(h->w->sc->twilio_auth_token, d->url, params, sig) != 0)
            sig[0] = '\0';
    }
    if (!sig[0])
        count(h, SIDE_TWILIO, "signature_failed");
    char token[37];
    idempotency_token(h, token);
    d->headers[0] = header("X-Twilio-Signature", sig);
    d->headers[1] = header("I-Twilio-Idempotency-Token", token);
    d->headers[2] = header("User-Agent", "TwilioProxy/1.1");
    deliver(h, SIDE_TWILIO, d, faults);
}

void sim_hooks_vapi(struct sim_hooks *h, const char *url, const char *json,
                    const struct sim_webhook_faults *faults, sim_hook_cb cb, void *arg)
{
    struct delivery *d = cg_calloc(1, sizeof(*d));
    cg_list_init(&d->link);
    cg_list_init(&d->hold_link);
    d->method = cg_strdup("POST");
    d->url = cg_strdup(url);
    d->body = cg_strdup(json ? json : "{}");
    d->body_len = strlen(d->body);
    d->content_type = "application/json";
    d->timeout_ms = VAPI_TIMEOUT_MS;
    d->cb = cb;
    d->arg = arg;
    d->headers[0] = header("x-vapi-secret", h->w->sc->vapi_server_secret);
    deliver(h, SIDE_VAPI, d, faults);
}
