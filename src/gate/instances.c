/*
 * instances.c - the registry of a gate's instances and their agreement on
 * the gate-wide settings (instances.h).
 */
#include "base/fmacros.h"

#include "gate/instances.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/crypto.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gate/gate.h"
#include "gate/internal.h"
#include "gate/store.h"
#include "net/periodic.h"
#include "net/redis.h"

#ifndef CG_VERSION
#define CG_VERSION "unknown"
#endif

#define DIGEST_HEX 12
/* Instances compared at most; more are counted, not compared (a gate has
 * a handful). */
#define MAX_COMPARED 64

struct gate_instances {
    struct cg_gate *g;
    struct cg_periodic *task;
    char *settings;
    char fingerprint[DIGEST_HEX + 1];
    /* "<INSTANCE_ID>#<8 random hex digits>": two processes given one
     * INSTANCE_ID are still two entries, each limit counted. */
    char member[160];
    long long started_ms;
    int in_flight;  /* an announcement or the removal */
    int leaving;    /* no announcements from now on */
    int leave_busy; /* the removal in flight */
    int orphaned;   /* freed with a request in flight: its reply frees it */
    /* As the last reply listed them. */
    long live;
    long disagreeing;
    long long lowest;
    char *differ;    /* setting names, comma separated; "" when all agree */
    char *signature; /* what the last warning was about, to warn once per change */
    char problem[1024];
};

/* ---- the settings map ---- */

static void digest_of(const char *name, const char *value, char out[DIGEST_HEX + 1])
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    /* Salted with the name, so that two settings with one value (or a
     * digest found elsewhere) cannot be matched up. */
    cg_buf_appends(&b, "callgate-setting");
    cg_buf_append(&b, "", 1);
    cg_buf_appends(&b, name);
    cg_buf_append(&b, "", 1);
    cg_buf_appends(&b, value ? value : "");
    char hex[65];
    cg_sha256_hex(b.data ? b.data : "", b.len, hex);
    cg_buf_free(&b);
    memcpy(out, hex, DIGEST_HEX);
    out[DIGEST_HEX] = '\0';
}

/* A secret's digest is PBKDF2 (SECRET_ROUNDS rounds, salted with the
 * setting's name): Redis is often shared or managed, and a plain hash of a
 * weak webhook secret would be a dictionary away from it. The rounds cost a
 * few milliseconds once at start. An unset secret is digested as any
 * value, so that set against unset is still a difference. */
#define SECRET_ROUNDS 10000
static void secret_digest_of(const char *name, const char *value, char out[DIGEST_HEX + 1])
{
    if (value == NULL || *value == '\0') {
        digest_of(name, "", out);
        return;
    }
    char salt[96];
    int sl = snprintf(salt, sizeof salt, "callgate-secret:%s", name);
    unsigned char k[DIGEST_HEX / 2];
    if (sl < 0 || (size_t)sl >= sizeof salt ||
        cg_pbkdf2_sha256(value, strlen(value), salt, (size_t)sl, SECRET_ROUNDS, k, sizeof k) != 0) {
        /* Never fall back to a fast hash of the secret: say "unknown". */
        memset(out, '0', DIGEST_HEX);
        out[DIGEST_HEX] = '\0';
        return;
    }
    cg_hex_encode(k, sizeof k, out);
    out[DIGEST_HEX] = '\0';
}

static void add_secret(struct cg_buf *s, const char *name, const char *value)
{
    char d[DIGEST_HEX + 1];
    secret_digest_of(name, value, d);
    cg_buf_printf(s, "%s%s=%s", s->len ? "," : "", name, d);
}

static void add_str(struct cg_buf *s, const char *name, const char *value)
{
    char d[DIGEST_HEX + 1];
    digest_of(name, value, d);
    cg_buf_printf(s, "%s%s=%s", s->len ? "," : "", name, d);
}

static void add_int(struct cg_buf *s, const char *name, long long value)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", value);
    add_str(s, name, v);
}

/* The routes as parsed (so that comments and layout do not count). A
 * route's max equal to MAX_CONCURRENCY (its default) is written "org", so
 * that a difference in MAX_CONCURRENCY alone is not named ROUTES_FILE too. */
static void routes_text(const struct cg_config *cfg, struct cg_buf *t)
{
    for (size_t i = 0; i < cfg->routes.n; i++) {
        const struct cg_route *r = &cfg->routes.v[i];
        char max[16];
        if (r->max == cfg->max_concurrency)
            snprintf(max, sizeof max, "org");
        else
            snprintf(max, sizeof max, "%d", r->max);
        cg_buf_printf(t, "[%s|%s|%s|%s|%s|%d|%d|", r->name, r->assistant_id ? r->assistant_id : "",
                      r->phone_number_id ? r->phone_number_id : "", r->queue ? r->queue : "", max,
                      r->min, r->priority);
        for (size_t k = 0; k < r->nnumbers; k++)
            cg_buf_printf(t, "%s;", r->numbers[k]);
        cg_buf_appendc(t, '|');
        for (size_t k = 0; k < r->nvip; k++)
            cg_buf_printf(t, "%s;", r->vip[k]);
        cg_buf_appendc(t, ']');
    }
}

void gate_instances_settings(const struct cg_config *cfg, struct cg_buf *s, char fingerprint[13])
{
    add_int(s, "MAX_CONCURRENCY", cfg->max_concurrency);
    add_int(s, "MAX_QUEUE_SIZE", cfg->max_queue_size);
    add_int(s, "MAX_WAIT_SECONDS", cfg->max_wait_seconds);
    add_str(s, "TWILIO_ACCOUNT_SID", cfg->twilio_account_sid);
    add_secret(s, "TWILIO_AUTH_TOKEN", cfg->twilio_auth_token);
    add_str(s, "TWILIO_QUEUE_SID", cfg->twilio_queue_sid);
    add_str(s, "TWILIO_QUEUE_NAME", cfg->twilio_queue_name);
    add_secret(s, "VAPI_API_KEY", cfg->vapi_api_key);
    add_str(s, "VAPI_ASSISTANT_ID", cfg->vapi_assistant_id);
    add_str(s, "VAPI_PHONE_NUMBER_ID", cfg->vapi_phone_number_id);
    add_secret(s, "VAPI_WEBHOOK_SECRET", cfg->vapi_webhook_secret);
    add_secret(s, "VAPI_HMAC_SECRET", cfg->vapi_webhook_hmac_secret);
    struct cg_buf t;
    cg_buf_init(&t, CG_BUF_UNBOUNDED);
    routes_text(cfg, &t);
    add_str(s, "ROUTES_FILE", cg_buf_str(&t));
    cg_buf_free(&t);
    add_str(s, "OUTBOUND_ORDER", cfg->outbound_order);
    add_int(s, "OVERFLOW_ACTION", (long long)cfg->overflow_action);
    add_str(s, "OVERFLOW_MESSAGE", cfg->overflow_message);
    add_str(s, "OVERFLOW_DIAL_NUMBER", cfg->overflow_dial_number);
    add_int(s, "OVERLIMIT_HOLD_SECONDS", cfg->overlimit_hold_seconds);
    add_int(s, "ADMISSION_LEASE_SECONDS", cfg->admission_lease_seconds);
    add_int(s, "CALLBACK_OFFER_SECONDS", cfg->callback_offer_seconds);
    add_int(s, "CALLBACK_RETRY_SECONDS", cfg->callback_retry_seconds);
    add_int(s, "CALLBACK_ATTEMPTS", cfg->callback_attempts);
    add_str(s, "CALLBACK_HOURS", cfg->callback_hours);
    digest_of("settings", cg_buf_str(s), fingerprint);
}

/* ---- comparing instances ---- */

/* The digest of setting name (nlen bytes) in a settings map, or NULL;
 * *dlen its length. */
static const char *setting_of(const char *settings, const char *name, size_t nlen, size_t *dlen)
{
    for (const char *p = settings; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && p[nlen] == '=' && memcmp(p, name, nlen) == 0) {
            *dlen = len - nlen - 1;
            return p + nlen + 1;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* 1 when name (nlen bytes) is in the comma-separated list. */
static int listed(const char *list, const char *name, size_t nlen)
{
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == nlen && memcmp(p, name, nlen) == 0)
            return 1;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

void gate_instances_compare(const struct gate_instance_view *v, size_t n, char *names,
                            size_t nameslen, size_t *disagreeing)
{
    if (nameslen > 0)
        names[0] = '\0';
    if (n > MAX_COMPARED)
        n = MAX_COMPARED;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = v[i].settings; p && *p;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *eq = memchr(p, '=', len);
            if (eq != NULL && eq > p) {
                size_t nlen = (size_t)(eq - p), dlen = len - nlen - 1;
                for (size_t j = i + 1; j < n; j++) {
                    size_t olen = 0;
                    const char *o = setting_of(v[j].settings, p, nlen, &olen);
                    if (o == NULL || (olen == dlen && memcmp(o, eq + 1, dlen) == 0))
                        continue;
                    size_t used = strlen(names);
                    if (!listed(names, p, nlen) && used + nlen + 2 <= nameslen)
                        snprintf(names + used, nameslen - used, "%s%.*s", used ? "," : "",
                                 (int)nlen, p);
                    break;
                }
            }
            p = end ? end + 1 : NULL;
        }
    }
    /* The largest group sharing one fingerprint agrees; the rest do not. */
    size_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        size_t same = 0;
        for (size_t j = 0; j < n; j++)
            same += strcmp(v[i].fingerprint ? v[i].fingerprint : "",
                           v[j].fingerprint ? v[j].fingerprint : "") == 0;
        if (same > largest)
            largest = same;
    }
    /* Fingerprints also differ across versions that list other settings:
     * only a named difference is a disagreement. */
    *disagreeing = nameslen > 0 && names[0] ? n - largest : 0;
}

/* ---- announcing ---- */

static int by_id(const void *a, const void *b)
{
    const struct gate_instance_view *x = a, *y = b;
    return strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

/* The INSTANCE_ID part of a registry member "<INSTANCE_ID>#<token>". */
static int id_len(const char *member)
{
    const char *h = strrchr(member, '#');
    return (int)(h ? (size_t)(h - member) : strlen(member));
}

/* The INSTANCE_IDs that several live processes announce, comma separated,
 * into out (v sorted by member). */
static void duplicate_ids(const struct gate_instance_view *v, size_t n, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 1; i < n; i++) {
        int a = id_len(v[i - 1].id), b = id_len(v[i].id);
        if (a != b || memcmp(v[i - 1].id, v[i].id, (size_t)a) != 0 ||
            listed(out, v[i].id, (size_t)b))
            continue;
        size_t used = strlen(out);
        if (used + (size_t)b + 2 <= outlen)
            snprintf(out + used, outlen - used, "%s%.*s", used ? "," : "", b, v[i].id);
    }
}

/* The sentence for /health (r->problem) from the settings that differ and
 * the INSTANCE_IDs announced twice. */
static void set_problem(struct gate_instances *r, const char *names, size_t disagreeing,
                        const char *dups)
{
    char *p = r->problem;
    size_t cap = sizeof r->problem, w = 0;
    p[0] = '\0';
    if (names[0]) {
        w += (size_t)snprintf(p, cap,
                              "the gate's instances disagree on %s (%zu of %ld live instances "
                              "differ",
                              names, disagreeing, r->live);
        if (w < cap && listed(names, "MAX_CONCURRENCY", strlen("MAX_CONCURRENCY")))
            w += (size_t)snprintf(p + w, cap - w, "; the lowest MAX_CONCURRENCY, %lld, applies",
                                  r->lowest);
        if (w < cap)
            w += (size_t)snprintf(p + w, cap - w, ")");
    }
    if (dups[0] && w < cap)
        snprintf(p + w, cap - w, "%sseveral processes announce INSTANCE_ID %s (give each its own)",
                 w ? "; " : "", dups);
}

static void note_reply(struct gate_instances *r, const redisReply *rep)
{
    long long live = cg_redis_reply_int(rep, 1, 0);
    size_t n = 0;
    if (live < 0)
        live = 0;
    struct gate_instance_view *v = cg_calloc((size_t)live + 1, sizeof *v);
    for (size_t i = 2; i + 5 < rep->elements && n < (size_t)live; i += 6) {
        v[n].id = cg_redis_reply_str(rep, i);
        v[n].version = cg_redis_reply_str(rep, i + 1);
        v[n].started_ms = cg_redis_reply_int(rep, i + 2, 0);
        v[n].limit = cg_redis_reply_int(rep, i + 3, 0);
        v[n].fingerprint = cg_redis_reply_str(rep, i + 4);
        v[n].settings = cg_redis_reply_str(rep, i + 5);
        if (v[n].id != NULL)
            n++;
    }
    /* In id order, so that a warning's text does not change with the
     * order of the announcements. */
    qsort(v, n, sizeof *v, by_id);
    char names[640], dups[256];
    size_t disagreeing = 0;
    gate_instances_compare(v, n, names, sizeof names, &disagreeing);
    duplicate_ids(v, n, dups, sizeof dups);
    r->live = live;
    r->lowest = cg_redis_reply_int(rep, 0, 0);
    r->disagreeing = (long)disagreeing;
    free(r->differ);
    r->differ = cg_strdup(names);
    set_problem(r, names, disagreeing, dups);

    /* Who holds what, for the warning. */
    struct cg_buf who;
    cg_buf_init(&who, 4096);
    for (size_t i = 0; i < n; i++)
        cg_buf_printf(&who, "%s%.*s (version %s, MAX_CONCURRENCY %lld, settings %s)", i ? ", " : "",
                      id_len(v[i].id), v[i].id, v[i].version ? v[i].version : "?", v[i].limit,
                      v[i].fingerprint ? v[i].fingerprint : "?");
    /* Warned once per change: of the settings, the duplicates, or who
     * holds what. */
    struct cg_buf sig;
    cg_buf_init(&sig, CG_BUF_UNBOUNDED);
    if (r->problem[0])
        cg_buf_printf(&sig, "%s|%s|%s", names, dups, cg_buf_str(&who));
    const char *now = cg_buf_str(&sig);
    int changed = r->signature == NULL || strcmp(r->signature, now) != 0;
    if (changed && names[0])
        cg_log_warn("the gate's instances disagree on gate-wide settings; every instance of "
                    "a gate needs the same values (docs/DEPLOY.md section 6)",
                    "differ=%s instances=%s lowest_limit=%lld", names, cg_buf_str(&who), r->lowest);
    if (changed && dups[0])
        cg_log_warn("several processes announce one INSTANCE_ID; give each instance its own",
                    "instance_id=%s instances=%s", dups, cg_buf_str(&who));
    if (changed && !r->problem[0] && r->signature != NULL && r->signature[0] != '\0')
        cg_log_info("the gate's instances agree on their settings again", "instances=%ld", r->live);
    free(r->signature);
    r->signature = cg_buf_take(&sig);
    if (r->signature == NULL)
        r->signature = cg_strdup("");
    cg_buf_free(&who);
    free(v);
}

static void registry_release(struct gate_instances *r)
{
    free(r->settings);
    free(r->differ);
    free(r->signature);
    free(r);
}

static void on_announced(const struct gate_reply *rep, void *arg)
{
    struct gate_instances *r = arg;
    r->in_flight = 0;
    if (r->orphaned) {
        if (!r->leave_busy)
            registry_release(r);
        return;
    }
    if (r->leaving)
        return;
    if (rep->err != NULL) {
        cg_log_debug("cannot announce this instance; trying again", "error=%s", rep->err);
        return;
    }
    if (rep->r != NULL && rep->r->type == REDIS_REPLY_ARRAY && rep->r->elements >= 2)
        note_reply(r, rep->r);
}

static void announce(struct gate_instances *r)
{
    struct cg_gate *g = r->g;
    if (r->leaving || r->in_flight || g->stopping || !gate_redis_ready(g))
        return;
    struct gate_instance_note n = {
        .id = r->member,
        .ttl_ms = GATE_INSTANCES_TTL_MS,
        .version = CG_VERSION,
        .started_ms = r->started_ms,
        .limit = g->cfg->max_concurrency,
        .fingerprint = r->fingerprint,
        .settings = r->settings,
    };
    if (gate_store_instances(&g->store, &n, on_announced, r) == 0)
        r->in_flight = 1;
}

static void tick(void *arg)
{
    announce(arg);
}

struct gate_instances *gate_instances_new(struct cg_gate *g)
{
    struct gate_instances *r = cg_calloc(1, sizeof *r);
    r->g = g;
    r->started_ms = (long long)cg_wall_ms();
    snprintf(r->member, sizeof r->member, "%s#%08x", g->cfg->instance_id,
             (unsigned)(cg_random_u64() & 0xffffffffu));
    struct cg_buf s;
    cg_buf_init(&s, CG_BUF_UNBOUNDED);
    gate_instances_settings(g->cfg, &s, r->fingerprint);
    r->settings = cg_buf_take(&s);
    if (r->settings == NULL)
        r->settings = cg_strdup("");
    r->differ = cg_strdup("");
    r->task = cg_periodic_new(g->base, "instances", GATE_INSTANCES_INTERVAL_MS, 10, tick, r);
    if (r->task == NULL) {
        gate_instances_free(r);
        return NULL;
    }
    cg_periodic_kick(r->task);
    return r;
}

void gate_instances_kick(struct gate_instances *r)
{
    if (r != NULL)
        cg_periodic_kick(r->task);
}

static void on_left(const struct gate_reply *rep, void *arg)
{
    struct gate_instances *r = arg;
    r->leave_busy = 0;
    if (r->orphaned) {
        if (!r->in_flight)
            registry_release(r);
        return;
    }
    if (rep->err != NULL)
        cg_log_info("cannot remove this instance from the registry; its entry expires",
                    "ttl_ms=%d error=%s", GATE_INSTANCES_TTL_MS, rep->err);
}

void gate_instances_leave(struct gate_instances *r)
{
    if (r == NULL || r->leaving)
        return;
    r->leaving = 1;
    r->live = 0;
    r->disagreeing = 0;
    r->problem[0] = '\0';
    struct cg_gate *g = r->g;
    if (!gate_redis_ready(g))
        return;
    struct gate_instance_note n = {.leave = 1, .id = r->member, .ttl_ms = GATE_INSTANCES_TTL_MS};
    /* An announcement in flight is answered first (one connection, in
     * order); its reply is then ignored. */
    if (gate_store_instances(&g->store, &n, on_left, r) == 0)
        r->leave_busy = 1;
}

size_t gate_instances_busy(const struct gate_instances *r)
{
    return r != NULL && r->leave_busy ? 1 : 0;
}

void gate_instances_declare_metrics(struct gate_instances *r)
{
    struct cg_metrics *m = r->g->metrics;
    if (m == NULL)
        return;
    cg_metrics_declare(m, "callgate_instances", CG_GAUGE,
                       "Live instances of this gate (the registry in Redis).", NULL, 0);
    cg_metrics_declare(m, "callgate_instances_disagreeing", CG_GAUGE,
                       "Live instances whose gate-wide settings differ from the largest group "
                       "of instances that agree (0: all agree).",
                       NULL, 0);
}

void gate_instances_set_metrics(struct gate_instances *r)
{
    struct cg_metrics *m = r->g->metrics;
    if (m == NULL)
        return;
    cg_metrics_set(m, "callgate_instances", NULL, (double)r->live);
    cg_metrics_set(m, "callgate_instances_disagreeing", NULL, (double)r->disagreeing);
}

void gate_instances_free(struct gate_instances *r)
{
    if (r == NULL)
        return;
    cg_periodic_free(r->task);
    r->task = NULL;
    if (r->in_flight || r->leave_busy) {
        r->orphaned = 1;
        return;
    }
    registry_release(r);
}

void cg_gate_instances_state(const struct cg_gate *g, struct cg_gate_instances_view *out)
{
    const struct gate_instances *r = g->instances;
    memset(out, 0, sizeof *out);
    if (r == NULL)
        return;
    out->live = r->live;
    out->disagreeing = r->disagreeing;
    out->lowest_limit = r->lowest;
    out->differ = r->differ ? r->differ : "";
    out->problem = r->problem[0] ? r->problem : NULL;
}
