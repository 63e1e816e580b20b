#include "base/fmacros.h"

#include "gate/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "gate/keys.h"
#include "gate/lua_scripts.h"

/* The longest ARGV of a script (end.lua: 12) and KEYS[1]. */
#define STORE_MAX_ARGS 16

static const char *const verdict_names[] = {
    [GV_NONE] = "",
    [GV_OTHER] = "",
    [GV_FAST] = "fast",
    [GV_WAITING] = "waiting",
    [GV_OVERFLOW] = "overflow",
    [GV_EXISTING] = "existing",
    [GV_OK] = "ok",
    [GV_ORPHAN] = "orphan",
    [GV_CONNECTED] = "connected",
    [GV_ENDING] = "ending",
    [GV_STALE] = "stale",
    [GV_REQUEUED] = "requeued",
    [GV_ABANDONED] = "abandoned",
    [GV_RELEASED] = "released",
    [GV_RELEASED_ORPHAN] = "released-orphan",
    [GV_GONE] = "gone",
    [GV_DUPLICATE] = "duplicate",
    [GV_OVERFLOWED] = "overflowed",
    [GV_UNKNOWN] = "unknown",
    [GV_ADMITTING] = "admitting",
    [GV_ENDED] = "ended",
    [GV_CALLBACK] = "callback",
    [GV_DIAL] = "dial",
    [GV_ADMIT] = "admit",
    [GV_RETRY] = "retry",
    [GV_FAILED] = "failed",
};

const char *gate_verdict_name(enum gate_verdict v)
{
    if ((size_t)v >= sizeof verdict_names / sizeof verdict_names[0])
        return "";
    return verdict_names[v];
}

enum gate_verdict gate_verdict_at(const redisReply *r, size_t i)
{
    const char *s = cg_redis_reply_str(r, i);
    if (s == NULL)
        return GV_NONE;
    for (size_t v = GV_FAST; v < sizeof verdict_names / sizeof verdict_names[0]; v++)
        if (strcmp(s, verdict_names[v]) == 0)
            return (enum gate_verdict)v;
    return GV_OTHER;
}

/* ---- what the admission steps return ---- */

/* The six elements of admission_context (common.lua). */
#define CONTEXT_ELEMENTS 6

void gate_queue_context_at(const redisReply *r, size_t i, struct gate_queue_context *out)
{
    *out = (struct gate_queue_context){.waited_ms = -1, .dialed = "", .route = ""};
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return;
    const redisReply *c = r->element[i];
    if (c->type != REDIS_REPLY_ARRAY || c->elements != CONTEXT_ELEMENTS)
        return;
    const char *dialed = cg_redis_reply_str(c, 2), *route = cg_redis_reply_str(c, 5);
    if (dialed == NULL || route == NULL)
        return;
    out->known = 1;
    out->waited_ms = cg_redis_reply_int(c, 0, -1);
    out->entry_pos = cg_redis_reply_int(c, 1, 0);
    out->dialed = dialed;
    out->callback = cg_redis_reply_int(c, 3, 0) == 1;
    out->enqueued_at_ms = cg_redis_reply_int(c, 4, 0);
    out->route = route;
}

int gate_admitted_at(const redisReply *r, size_t i, struct gate_admitted *out)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i + GATE_ADMITTED_WIDTH > r->elements)
        return -1;
    out->sid = cg_redis_reply_str(r, i);
    out->from = cg_redis_reply_str(r, i + 1);
    out->attempt = cg_redis_reply_int(r, i + 2, 0);
    gate_queue_context_at(r, i + 3, &out->ctx);
    return 0;
}

/* ---- argument vectors ---- */

/* KEYS[1] (for routing) then ARGV, with ARGV[1] the key prefix. Numbers
 * are formatted into the vector's own storage. */
struct args {
    const char *v[STORE_MAX_ARGS];
    char num[STORE_MAX_ARGS][24];
    int n;
};

static void overflow(void)
{
    /* A script call with more arguments than STORE_MAX_ARGS is a bug in
     * this file, never something a request can cause. */
    cg_log_error("gate script call with too many arguments", "max=%d", STORE_MAX_ARGS);
    abort();
}

static void arg_str(struct args *a, const char *s)
{
    if (a->n >= STORE_MAX_ARGS)
        overflow();
    a->v[a->n++] = s ? s : "";
}

static void arg_int(struct args *a, long long v)
{
    if (a->n >= STORE_MAX_ARGS)
        overflow();
    snprintf(a->num[a->n], sizeof a->num[0], "%lld", v);
    a->v[a->n] = a->num[a->n];
    a->n++;
}

static void args_init(struct args *a, const struct gate_store *s)
{
    a->n = 0;
    arg_str(a, s->keys->waiting);
    arg_str(a, s->keys->prefix);
}

/* ---- running a script ---- */

struct call {
    gate_store_cb cb;
    void *arg;
    int has_verdict;
};

static void on_reply(const redisReply *r, const char *err, void *arg)
{
    struct call c = *(struct call *)arg;
    free(arg);
    struct gate_reply rep = {
        .err = err,
        .verdict = err == NULL && c.has_verdict ? gate_verdict_at(r, 0) : GV_NONE,
        .r = err == NULL ? r : NULL,
    };
    c.cb(&rep, c.arg);
}

static int run(struct gate_store *s, enum gate_script id, struct args *a, int has_verdict,
               gate_store_cb cb, void *arg)
{
    if (s->closed)
        return -1;
    struct call *c = cg_malloc(sizeof *c);
    c->cb = cb;
    c->arg = arg;
    c->has_verdict = has_verdict;
    if (cg_redis_eval(s->redis, s->scripts[id], 1, a->n, a->v, NULL, on_reply, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

/* ---- lifecycle ---- */

int gate_store_init(struct gate_store *s, struct cg_redis *redis, const struct cg_keys *keys,
                    char *err, size_t errlen)
{
    static const struct {
        enum gate_script id;
        const char *name;
        const char *src;
    } scripts[] = {
        {S_ENTER, "enter", cg_lua_enter},
        {S_ADMIT, "admit", cg_lua_admit},
        {S_VAPI_CREATED, "vapi_created", cg_lua_vapi_created},
        {S_CONNECTED, "connected", cg_lua_connected},
        {S_REQUEUE, "requeue", cg_lua_requeue},
        {S_END, "end", cg_lua_end},
        {S_POSITION, "position", cg_lua_position},
        {S_SWEEP, "sweep", cg_lua_sweep},
        {S_EXTEND, "extend", cg_lua_extend},
        {S_SNAPSHOT, "snapshot", cg_lua_snapshot},
        {S_MEMBERS, "members", cg_lua_members},
        {S_CLAIM, "claim", cg_lua_claim},
        {S_QUEUE, "queue", cg_lua_queue},
        {S_REPAIR_BEGIN, "repair_begin", cg_lua_repair_begin},
        {S_REPAIR, "repair", cg_lua_repair},
        {S_CONTROL, "control", cg_lua_control},
        {S_BOARD, "board", cg_lua_board},
        {S_CALLBACK, "callback", cg_lua_callback},
        {S_ROUTES, "routes", cg_lua_routes},
        {S_SLOTS, "slots", cg_lua_slots},
        {S_OUTBOUND, "outbound", cg_lua_outbound},
        {S_ROUTE_FIGURES, "route_figures", cg_lua_route_figures},
        {S_INSTANCES, "instances", cg_lua_instances},
    };
    memset(s, 0, sizeof *s);
    s->redis = redis;
    s->keys = keys;
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        s->scripts[scripts[i].id] = cg_redis_script(redis, scripts[i].name, scripts[i].src);
        if (s->scripts[scripts[i].id] < 0) {
            cg_err_set(err, errlen, "cannot register script %s", scripts[i].name);
            return -1;
        }
    }
    return 0;
}

void gate_store_close(struct gate_store *s)
{
    s->closed = 1;
}

/* ---- one function per script; ARGV order as in each script's header ---- */

int gate_store_enter(struct gate_store *s, const struct gate_enter *e, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, e->sid);
    arg_str(&a, e->from);
    arg_str(&a, e->to);
    arg_str(&a, e->adopt ? "adopt" : "incoming");
    arg_int(&a, e->max_queue);
    arg_int(&a, e->limit);
    arg_int(&a, e->fast_ok ? 1 : 0);
    arg_int(&a, e->lease_ms);
    arg_str(&a, e->instance);
    arg_int(&a, e->waited_ms);
    arg_str(&a, e->route);
    arg_int(&a, e->vip ? 1 : 0);
    return run(s, S_ENTER, &a, 1, cb, arg);
}

int gate_store_slots(struct gate_store *s, const char *op, const char *id, const char *route,
                     long long ttl_ms, long long limit, long long batch, long long lease_ms,
                     const char *instance, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, op);
    arg_str(&a, id);
    arg_str(&a, route);
    arg_int(&a, ttl_ms);
    arg_int(&a, limit);
    arg_int(&a, batch);
    arg_int(&a, lease_ms);
    arg_str(&a, instance);
    return run(s, S_SLOTS, &a, 1, cb, arg);
}

int gate_store_outbound(struct gate_store *s, const struct gate_outbound_op *o, gate_store_cb cb,
                        void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, o->op);
    arg_str(&a, o->id);
    if (strcmp(o->op, "create") == 0) {
        arg_str(&a, o->route);
        arg_str(&a, o->number);
        arg_str(&a, o->variables);
        arg_int(&a, o->max_queue);
    } else if (strcmp(o->op, "created") == 0) {
        arg_int(&a, o->attempt);
        arg_str(&a, o->vapi_id);
        arg_int(&a, o->lease_ms);
        return run(s, S_OUTBOUND, &a, 1, cb, arg);
    } else if (strcmp(o->op, "failed") == 0) {
        arg_int(&a, o->attempt);
        arg_str(&a, o->reason);
        arg_int(&a, o->final ? 1 : 0);
        arg_int(&a, o->max_attempts);
    } else {
        return run(s, S_OUTBOUND, &a, 1, cb, arg);
    }
    arg_int(&a, o->limit);
    arg_int(&a, o->batch);
    arg_int(&a, o->admit_lease_ms);
    arg_str(&a, o->instance);
    if (strcmp(o->op, "failed") == 0)
        arg_int(&a, o->backoff_ms);
    return run(s, S_OUTBOUND, &a, 1, cb, arg);
}

int gate_store_route_figures(struct gate_store *s, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    return run(s, S_ROUTE_FIGURES, &a, 0, cb, arg);
}

int gate_store_instances(struct gate_store *s, const struct gate_instance_note *n, gate_store_cb cb,
                         void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, n->leave ? "leave" : "announce");
    arg_str(&a, n->id);
    arg_int(&a, n->ttl_ms);
    if (!n->leave) {
        arg_str(&a, n->version);
        arg_int(&a, n->started_ms);
        arg_int(&a, n->limit);
        arg_str(&a, n->fingerprint);
        arg_str(&a, n->settings);
    }
    return run(s, S_INSTANCES, &a, 0, cb, arg);
}

int gate_store_routes(struct gate_store *s, const char *order, size_t n, const char *const *names,
                      const char *const *specs, gate_store_cb cb, void *arg)
{
    if (s->closed)
        return -1;
    /* As many arguments as routes: not the fixed vector of the others. */
    const char **v = cg_calloc(3 + 2 * n, sizeof *v);
    v[0] = s->keys->waiting;
    v[1] = s->keys->prefix;
    v[2] = order;
    for (size_t i = 0; i < n; i++) {
        v[3 + 2 * i] = names[i];
        v[4 + 2 * i] = specs[i];
    }
    struct call *c = cg_malloc(sizeof *c);
    c->cb = cb;
    c->arg = arg;
    c->has_verdict = 0;
    int rc =
        cg_redis_eval(s->redis, s->scripts[S_ROUTES], 1, (int)(3 + 2 * n), v, NULL, on_reply, c);
    free(v);
    if (rc != 0)
        free(c);
    return rc;
}

int gate_store_admit(struct gate_store *s, long long limit, long long batch, long long lease_ms,
                     const char *instance, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_int(&a, limit);
    arg_int(&a, batch);
    arg_int(&a, lease_ms);
    arg_str(&a, instance);
    return run(s, S_ADMIT, &a, 0, cb, arg);
}

int gate_store_vapi_created(struct gate_store *s, const char *sid, long long attempt,
                            const char *vapi_id, long long orphan_hold_ms, gate_store_cb cb,
                            void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, sid);
    arg_int(&a, attempt);
    arg_str(&a, vapi_id);
    arg_int(&a, orphan_hold_ms);
    return run(s, S_VAPI_CREATED, &a, 1, cb, arg);
}

int gate_store_connected(struct gate_store *s, const char *sid, long long attempt,
                         long long lease_ms, long long end_grace_ms, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, sid);
    arg_int(&a, attempt);
    arg_int(&a, lease_ms);
    arg_int(&a, end_grace_ms);
    return run(s, S_CONNECTED, &a, 1, cb, arg);
}

int gate_store_requeue(struct gate_store *s, const struct gate_requeue *q, gate_store_cb cb,
                       void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, q->sid);
    arg_int(&a, q->attempt);
    arg_str(&a, q->reason);
    arg_int(&a, q->overlimit ? 1 : 0);
    arg_int(&a, q->backoff_ms);
    arg_int(&a, q->limit);
    arg_str(&a, q->orphan_vapi_id);
    arg_int(&a, q->orphan_hold_ms);
    arg_int(&a, q->overlimit_hold_ms);
    arg_int(&a, q->permanent ? 1 : 0);
    arg_int(&a, q->max_attempts);
    return run(s, S_REQUEUE, &a, 1, cb, arg);
}

int gate_store_end(struct gate_store *s, const struct gate_end_signal *e, gate_store_cb cb,
                   void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, e->kind);
    arg_str(&a, e->id);
    arg_str(&a, e->reason);
    arg_int(&a, e->end_grace_ms);
    arg_int(&a, e->limit);
    arg_int(&a, e->batch);
    arg_int(&a, e->lease_ms);
    arg_str(&a, e->instance);
    arg_str(&a, e->ewma_alpha);
    arg_str(&a, e->signal);
    arg_int(&a, e->orphan_hold_ms);
    return run(s, S_END, &a, 1, cb, arg);
}

int gate_store_position(struct gate_store *s, const char *sid, long long max_wait_ms,
                        long long announce_ms, long long limit, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, sid);
    arg_int(&a, max_wait_ms);
    arg_int(&a, announce_ms);
    arg_int(&a, limit);
    return run(s, S_POSITION, &a, 1, cb, arg);
}

int gate_store_sweep(struct gate_store *s, long long batch, long long claim_ms, gate_store_cb cb,
                     void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_int(&a, batch);
    arg_int(&a, claim_ms);
    return run(s, S_SWEEP, &a, 0, cb, arg);
}

int gate_store_extend(struct gate_store *s, const char *member, long long ms, gate_store_cb cb,
                      void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, member);
    arg_int(&a, ms);
    return run(s, S_EXTEND, &a, 0, cb, arg);
}

int gate_store_snapshot(struct gate_store *s, long long limit, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_int(&a, limit);
    return run(s, S_SNAPSHOT, &a, 0, cb, arg);
}

int gate_store_members(struct gate_store *s, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    return run(s, S_MEMBERS, &a, 0, cb, arg);
}

int gate_store_members_route(struct gate_store *s, const char *route, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, route);
    return run(s, S_MEMBERS, &a, 0, cb, arg);
}

int gate_store_queue(struct gate_store *s, long long limit, long long max_listed, gate_store_cb cb,
                     void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_int(&a, limit);
    arg_int(&a, max_listed);
    return run(s, S_QUEUE, &a, 0, cb, arg);
}

int gate_store_claim(struct gate_store *s, const char *claim_key, long long ttl_ms,
                     gate_store_cb cb, void *arg)
{
    struct args a;
    a.n = 0;
    arg_str(&a, claim_key); /* KEYS[1]: the queue's, not the gate's */
    arg_str(&a, s->keys->prefix);
    arg_int(&a, ttl_ms);
    return run(s, S_CLAIM, &a, 0, cb, arg);
}

int gate_store_repair_begin(struct gate_store *s, const char *token, long long hold_ms, int lost,
                            gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, token);
    arg_int(&a, hold_ms);
    arg_int(&a, lost ? 1 : 0);
    return run(s, S_REPAIR_BEGIN, &a, 0, cb, arg);
}

int gate_store_repair(struct gate_store *s, const char *token, long long lease_ms,
                      long long orphan_hold_ms, const char *calls, int force, gate_store_cb cb,
                      void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, token);
    arg_int(&a, lease_ms);
    arg_int(&a, orphan_hold_ms);
    arg_str(&a, calls);
    arg_int(&a, force ? 1 : 0);
    return run(s, S_REPAIR, &a, 0, cb, arg);
}

int gate_store_control_check(struct gate_store *s, const char *vapi_id, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "check");
    arg_str(&a, vapi_id);
    arg_str(&a, "");
    arg_str(&a, "");
    arg_int(&a, 0);
    return run(s, S_CONTROL, &a, 1, cb, arg);
}

int gate_store_control_record(struct gate_store *s, const char *vapi_id, const char *action,
                              const char *dest, long long end_grace_ms, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "record");
    arg_str(&a, vapi_id);
    arg_str(&a, action);
    arg_str(&a, dest);
    arg_int(&a, end_grace_ms);
    return run(s, S_CONTROL, &a, 1, cb, arg);
}

int gate_store_board(struct gate_store *s, const struct gate_board_read *b, gate_store_cb cb,
                     void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_int(&a, b->limit);
    arg_str(&a, b->log_start);
    arg_int(&a, b->log_count);
    arg_int(&a, b->first_minute);
    arg_int(&a, b->retention_ms);
    arg_int(&a, b->max_entries);
    return run(s, S_BOARD, &a, 0, cb, arg);
}

/* ---- callback.lua ---- */

int gate_store_callback_request(struct gate_store *s, const struct gate_callback_request *q,
                                gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "request");
    arg_str(&a, q->sid);
    arg_str(&a, q->number);
    arg_int(&a, q->est_ms);
    arg_int(&a, q->max_dials);
    arg_int(&a, q->retry_ms);
    arg_int(&a, q->lease_ms);
    return run(s, S_CALLBACK, &a, 1, cb, arg);
}

int gate_store_callback_dial(struct gate_store *s, const char *sid, long long attempt,
                             gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "dial");
    arg_str(&a, sid);
    arg_int(&a, attempt);
    return run(s, S_CALLBACK, &a, 1, cb, arg);
}

int gate_store_callback_ringing(struct gate_store *s, const char *sid, long long attempt,
                                const char *leg, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "ringing");
    arg_str(&a, sid);
    arg_int(&a, attempt);
    arg_str(&a, leg);
    return run(s, S_CALLBACK, &a, 1, cb, arg);
}

int gate_store_callback_answered(struct gate_store *s, const char *sid, long long attempt,
                                 const char *leg, long long admit_lease_ms, const char *instance,
                                 gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "answered");
    arg_str(&a, sid);
    arg_int(&a, attempt);
    arg_str(&a, leg);
    arg_int(&a, admit_lease_ms);
    arg_str(&a, instance);
    return run(s, S_CALLBACK, &a, 1, cb, arg);
}

int gate_store_callback_outcome(struct gate_store *s, const struct gate_callback_outcome *o,
                                gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, o->expire ? "expire" : "failed");
    arg_str(&a, o->sid);
    arg_int(&a, o->attempt);
    arg_str(&a, o->leg);
    arg_str(&a, o->reason);
    arg_str(&a, o->final ? "1" : "0");
    arg_int(&a, o->limit);
    arg_int(&a, o->batch);
    arg_int(&a, o->lease_ms);
    arg_str(&a, o->instance);
    return run(s, S_CALLBACK, &a, 1, cb, arg);
}

int gate_store_callback_lookup(struct gate_store *s, const char *number, gate_store_cb cb,
                               void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "lookup");
    arg_str(&a, number);
    return run(s, S_CALLBACK, &a, 1, cb, arg);
}

int gate_store_callback_resume(struct gate_store *s, const char *sid, const char *new_sid,
                               const char *from, const char *to, gate_store_cb cb, void *arg)
{
    struct args a;
    args_init(&a, s);
    arg_str(&a, "resume");
    arg_str(&a, sid);
    arg_str(&a, new_sid);
    arg_str(&a, from);
    arg_str(&a, to);
    return run(s, S_CALLBACK, &a, 1, cb, arg);
}
