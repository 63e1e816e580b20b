/*
 * Hostile requests against a running callgate. One table: every forged,
 * malformed, oversized, oddly typed or injection-laden request (the rows),
 * each sent to every endpoint (the columns): the gate's webhooks, the
 * operator's endpoints, the dialer API (slots and outbound calls on the
 * gate's one route), /metrics, /health and the wait-time service. One
 * callgate process runs with every check on (Twilio token, Vapi secret and
 * HMAC plan, admin token, wait-time read token) against a real Redis, the
 * fake Twilio and Vapi APIs (tests/harness/fakeapi.c) and the fake
 * TaskRouter, with state worth protecting: one caller connected, three
 * waiting.
 *
 * After every request:
 *   - the status is exactly the one the table documents;
 *   - every cg:* key in Redis has the same type and content as before
 *     (ZRANGE WITHSCORES, HGETALL, GET, XLEN...), except in the few cells
 *     the table marks CH, which may only add the record of the fresh
 *     CallSid the request named (and the gate-wide counters, sequence and
 *     queue log that go with it), or CO, which may only add the outbound
 *     call its answer names (waiting behind the callers: the limit is
 *     full), or RC, a refusal the gate counts (POST /slots with no room),
 *     which may only move the counters;
 *   - no request reached Vapi or Twilio's Calls API;
 *   - the process answers /health, and the protected callers are where
 *     they were (the connected one connected, the waiting ones waiting);
 *   - the body is well-formed: JSON parses (errors name their status),
 *     TwiML parses with the simulator's strict parser and holds only verbs
 *     callgate writes, so no value a caller controls can add one.
 *
 * Repeated parameters: Twilio's signature covers every distinct value of a
 * repeated name (sorted, so not their order; twsig.h, and Twilio's own
 * libraries), and the gate acts on the first CallSid. A second CallSid
 * that is not signed fails the signature (403), wherever it stands; when
 * both are signed (as Twilio would sign them) the first is the one acted
 * on and the caller named second is left alone. No value the gate reads
 * can thus differ from one the signature covers.
 *
 * Then slow clients (a byte every 100 ms) must be cut off after
 * HTTP_TIMEOUT_SECONDS while others are served, the process must exit
 * cleanly (no leak under the sanitizer build) with a log of JSON lines
 * only, and a connection flood past the descriptor limit must neither spin
 * the loop nor stop the service.
 *
 * Requests go over raw sockets: the table needs methods, bytes and header
 * shapes that HTTP client libraries refuse to send. No assertion depends on
 * speed; time bounds are upper bounds only.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "fake_taskrouter.h"
#include "base/form.h"
#include "demo/proc.h"
#include "twilio/signature.h"

/* The simulator's strict TwiML parser. */
#include "../../sim/twiml_reader.h"

/* One callgate with state to protect (gate 0): the callers and the
 * outbound call the set-up leaves, and what the table compares against. */
#define GATE_KIT_FIXTURE_MEMBERS                                                                   \
    struct cgt_tr *tr;                                                                             \
    char trbase[160]; /* TASKROUTER_BASE_URL=... */                                                \
    char a[40];       /* connected caller */                                                       \
    char w[3][40];    /* waiting callers */                                                        \
    char *vapi_a;     /* A's Vapi call id */                                                       \
    char q0[35], q1[35];                                                                           \
    redisContext *rc;                                                                              \
    int creates, updates; /* fake API request counts once set up */                                \
    char out_id[40];      /* an outbound call waiting in the line */
#include "gate_kit.h"

#define WRONG_TOKEN "hostile-twilio-auth-token-2"
#define HMAC_SECRET "hostile-vapi-hmac-secret"
#define ADMIN_TOKEN "hostile-admin-token-0123456789"
#define READ_TOKEN  "hostile-read-token-0123456789"
#define WS          "WS00000000000000000000000000000042"
#define CALLEE      "+15550002222"
#define HOLD_URL    "http://127.0.0.1:9/hold.mp3"
/* A well-formed slot id nobody holds, and an outbound call's customer. */
#define DEAD_SLOT  "0123456789abcdef0123456789abcdef"
#define OUT_NUMBER "+15550109999"
#define OUT_BODY                                                                                   \
    "{\"route\":\"default\",\"number\":\"" OUT_NUMBER "\",\"variables\":{\"name\":\"Ann\"}}"
/* What a caller would put in a field to add a verb or break out of one. */
#define INJ "</Say><Dial>+1900</Dial>\"'&<>\r\n"
/* HTTP_TIMEOUT_SECONDS: small, so that the slow-client phase is short. */
#define TIMEOUT_S 2
/* HTTP_MAX_BODY_BYTES (the default) and HTTP_MAX_HEADER_BYTES. */
#define MAX_BODY   65536
#define MAX_HEADER 8192

/* ---- raw HTTP ---- */

struct raw {
    long status; /* 0: no status line (the server closed or reset) */
    char *head;  /* status line and headers */
    char *body;
    size_t len;
    size_t after; /* bytes after the first response (drained exchanges) */
};

static int h_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect to port %d: %s", port, strerror(errno));
    /* Upper bounds only: a server that never answers fails the test. */
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* Offset just past the blank line ending the head, or 0. */
static size_t head_end(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(s + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

/* Value of a header in a response head (malloc'd), or NULL. */
static char *head_header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line != NULL) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return cg_strndup(v, (size_t)(line + len - v));
        }
        line = end;
    }
    return NULL;
}

/* True once b holds a whole response (head and Content-Length bytes). */
static int response_complete(const struct cg_buf *b)
{
    size_t he = head_end(b->data ? b->data : "", b->len);
    if (he == 0)
        return 0;
    char *head = cg_strndup(b->data, he);
    char *cl = head_header(head, "Content-Length");
    char *ct = head_header(head, "Content-Type");
    free(head);
    /* An event stream does not end: its head is the answer. */
    int stream = ct != NULL && strncmp(ct, "text/event-stream", 17) == 0;
    free(ct);
    if (stream) {
        free(cl);
        return 1;
    }
    if (cl == NULL)
        return 0; /* read to EOF */
    size_t want = (size_t)strtoull(cl, NULL, 10);
    free(cl);
    return b->len >= he + want;
}

static void raw_free(struct raw *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Sends req on a new connection and reads one response. A server that
 * answers early (413, 431) and closes may cut the send short: what it
 * answered is read all the same. With drain, reading goes on until the
 * server closes, and whatever followed the first response is counted. */
static void raw_exchange(int port, const char *req, size_t len, int drain, struct raw *out)
{
    memset(out, 0, sizeof *out);
    int fd = h_connect(port);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    struct cg_buf b;
    cg_buf_init(&b, 64u << 20);
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (cg_buf_append(&b, chunk, (size_t)n) != 0)
            break;
        if (!drain && response_complete(&b))
            break;
    }
    close(fd);
    const char *s = cg_buf_str(&b);
    size_t he = head_end(s, b.len);
    if (he > 0 && strncmp(s, "HTTP/1.", 7) == 0 && b.len > 12) {
        out->status = strtol(s + 9, NULL, 10);
        out->head = cg_strndup(s, he);
        out->len = b.len - he;
        char *cl = head_header(out->head, "Content-Length");
        if (cl != NULL && (size_t)strtoull(cl, NULL, 10) < out->len) {
            out->after = out->len - (size_t)strtoull(cl, NULL, 10);
            out->len -= out->after;
        }
        free(cl);
        out->body = cg_strndup(s + he, out->len);
    } else {
        out->head = cg_strdup("");
        out->body = cg_strndup(s, b.len);
        out->len = b.len;
    }
    cg_buf_free(&b);
}

/* A request under construction. */
struct rq {
    char method[16];
    struct cg_buf target; /* path and query, raw */
    struct cg_buf hdrs;   /* "Name: value\r\n" lines */
    struct cg_buf body;
    int has_body;
    int custom_host;
    int no_length;       /* the row sets Content-Length itself */
    int keep_alive;      /* no "Connection: close": the server decides */
    const char *version; /* NULL: HTTP/1.1 */
};

static void rq_init(struct rq *r, const char *method, const char *target)
{
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    cg_buf_init(&r->target, CG_BUF_UNBOUNDED);
    cg_buf_init(&r->hdrs, CG_BUF_UNBOUNDED);
    cg_buf_init(&r->body, CG_BUF_UNBOUNDED);
    cg_buf_appends(&r->target, target);
}

static void rq_free(struct rq *r)
{
    cg_buf_free(&r->target);
    cg_buf_free(&r->hdrs);
    cg_buf_free(&r->body);
}

/* Adds a header line; the value is raw bytes (no NUL). */
static void rq_hdr(struct rq *r, const char *name, const char *value)
{
    if (strcasecmp(name, "Host") == 0)
        r->custom_host = 1;
    cg_buf_appends(&r->hdrs, name);
    cg_buf_appends(&r->hdrs, ": ");
    cg_buf_appends(&r->hdrs, value);
    cg_buf_appends(&r->hdrs, "\r\n");
}

static void rq_body(struct rq *r, const char *p, size_t n)
{
    cg_buf_reset(&r->body);
    if (n > 0)
        cg_buf_append(&r->body, p, n);
    r->has_body = 1;
}

/* Appends a query parameter (raw, already encoded) to the target. */
static void rq_param(struct rq *r, const char *raw)
{
    cg_buf_appendc(&r->target, strchr(cg_buf_str(&r->target), '?') ? '&' : '?');
    cg_buf_appends(&r->target, raw);
}

static char *rq_bytes(const struct rq *r, int port, size_t *len)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_printf(&b, "%s %s %s\r\n", r->method, cg_buf_str(&r->target),
                  r->version ? r->version : "HTTP/1.1");
    if (!r->custom_host)
        cg_buf_printf(&b, "Host: 127.0.0.1:%d\r\n", port);
    if (!r->keep_alive)
        cg_buf_appends(&b, "Connection: close\r\n");
    cg_buf_append(&b, cg_buf_str(&r->hdrs), r->hdrs.len);
    if (!r->no_length && (r->has_body || strcmp(r->method, "POST") == 0 ||
                          strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0))
        cg_buf_printf(&b, "Content-Length: %zu\r\n", r->body.len);
    cg_buf_appends(&b, "\r\n");
    cg_buf_append(&b, cg_buf_str(&r->body), r->body.len);
    *len = b.len;
    return cg_buf_take(&b);
}

/* ---- Redis: the whole state, canonically ---- */

static redisReply *rcmd(struct fixture *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(f->rc, fmt, ap);
    va_end(ap);
    if (r == NULL)
        fail_msg("redis: %s", f->rc->errstr);
    return r;
}

/* Bytes as text, everything but printable ASCII escaped, so that a dump is
 * one line per key whatever the values hold. */
static void put_bin(struct cg_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            cg_buf_appendc(b, (char)c);
        else
            cg_buf_printf(b, "\\x%02x", c);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Field-value pairs of an HGETALL reply, sorted by field. */
static void put_hash(struct cg_buf *b, const redisReply *r)
{
    size_t n = r->elements / 2;
    char **items = cg_calloc(n + 1, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        struct cg_buf t;
        cg_buf_init(&t, CG_BUF_UNBOUNDED);
        put_bin(&t, r->element[2 * i]->str, r->element[2 * i]->len);
        cg_buf_appendc(&t, '=');
        put_bin(&t, r->element[2 * i + 1]->str, r->element[2 * i + 1]->len);
        items[i] = cg_buf_take(&t);
    }
    qsort(items, n, sizeof *items, cmp_str);
    for (size_t i = 0; i < n; i++) {
        cg_buf_appends(b, i ? " " : "");
        cg_buf_appends(b, items[i]);
        free(items[i]);
    }
    free(items);
}

/*
 * Every cg:* key with its type and content, one line each, keys sorted.
 * With skip_sid, what a request about that (fresh) CallSid may change is
 * left out: its record, its entries in the sorted sets, and the gate-wide
 * and per-route counters, ticket sequence and queue log. With
 * ROUTE_COUNTS for skip_sid, only the gate's and the routes' counters are
 * left out.
 */
#define ROUTE_COUNTS ""
static char *dump_state(struct fixture *f, const char *skip_sid)
{
    int counts_only = skip_sid != NULL && skip_sid[0] == '\0';
    size_t nkeys = 0, cap = 0;
    char **keys = NULL;
    char cursor[32] = "0";
    do {
        redisReply *r = rcmd(f, "SCAN %s MATCH cg:* COUNT 1000", cursor);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            fail_msg("unexpected SCAN reply");
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *ks = r->element[1];
        for (size_t i = 0; i < ks->elements; i++) {
            if (nkeys == cap) {
                cap = cap ? cap * 2 : 64;
                keys = cg_realloc(keys, cap * sizeof *keys);
            }
            keys[nkeys++] = cg_strndup(ks->element[i]->str, ks->element[i]->len);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (nkeys > 1)
        qsort(keys, nkeys, sizeof *keys, cmp_str);

    char skip_key[96] = "";
    if (skip_sid != NULL)
        snprintf(skip_key, sizeof skip_key, P "call:%s", skip_sid);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    for (size_t k = 0; k < nkeys; k++) {
        const char *key = keys[k];
        /* The board's occupancy samples change every second whatever is
         * sent (gate/board.c), the instance registry every 2 s
         * (gate/instances.c): no request writes them. */
        if (strcmp(key, P "occupancy") == 0 || strcmp(key, P "occupancy:sec") == 0 ||
            strncmp(key, P "inst", strlen(P "inst")) == 0) {
            free(keys[k]);
            continue;
        }
        if (skip_sid != NULL &&
            ((!counts_only && (strcmp(key, skip_key) == 0 || strcmp(key, P "seq") == 0 ||
                               strcmp(key, P "log") == 0)) ||
             strcmp(key, P "stats") == 0 || strncmp(key, P "rstats:", strlen(P "rstats:")) == 0)) {
            free(keys[k]);
            continue;
        }
        redisReply *t = rcmd(f, "TYPE %s", key);
        const char *type = t->str ? t->str : "?";
        put_bin(&b, key, strlen(key));
        cg_buf_printf(&b, " %s ", type);
        redisReply *v = NULL;
        if (strcmp(type, "string") == 0) {
            v = rcmd(f, "GET %s", key);
            if (v->type == REDIS_REPLY_STRING)
                put_bin(&b, v->str, v->len);
        } else if (strcmp(type, "hash") == 0) {
            v = rcmd(f, "HGETALL %s", key);
            put_hash(&b, v);
        } else if (strcmp(type, "zset") == 0) {
            v = rcmd(f, "ZRANGE %s 0 -1 WITHSCORES", key);
            for (size_t i = 0; i + 1 < v->elements; i += 2) {
                if (skip_sid != NULL && !counts_only && strcmp(v->element[i]->str, skip_sid) == 0)
                    continue;
                put_bin(&b, v->element[i]->str, v->element[i]->len);
                cg_buf_appendc(&b, '@');
                put_bin(&b, v->element[i + 1]->str, v->element[i + 1]->len);
                cg_buf_appendc(&b, ' ');
            }
        } else if (strcmp(type, "stream") == 0) {
            v = rcmd(f, "XLEN %s", key);
            cg_buf_printf(&b, "len=%lld", v->integer);
            freeReplyObject(v);
            v = rcmd(f, "XREVRANGE %s + - COUNT 1", key);
            if (v->type == REDIS_REPLY_ARRAY && v->elements == 1)
                cg_buf_printf(&b, " last=%s", v->element[0]->element[0]->str);
        } else if (strcmp(type, "list") == 0) {
            v = rcmd(f, "LRANGE %s 0 -1", key);
            for (size_t i = 0; i < v->elements; i++) {
                put_bin(&b, v->element[i]->str, v->element[i]->len);
                cg_buf_appendc(&b, ' ');
            }
        } else if (strcmp(type, "set") == 0) {
            v = rcmd(f, "SORT %s ALPHA", key);
            for (size_t i = 0; i < v->elements; i++) {
                put_bin(&b, v->element[i]->str, v->element[i]->len);
                cg_buf_appendc(&b, ' ');
            }
        }
        if (v != NULL)
            freeReplyObject(v);
        freeReplyObject(t);
        cg_buf_appendc(&b, '\n');
        free(keys[k]);
    }
    free(keys);
    return cg_buf_take(&b);
}

/* First line where two dumps differ, for failure messages (malloc'd). */
static char *dump_diff(const char *a, const char *b)
{
    while (*a && *a == *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        if (ea == NULL || eb == NULL || ea - a != eb - b || memcmp(a, b, (size_t)(ea - a)) != 0)
            break;
        a = ea + 1;
        b = eb + 1;
    }
    size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
    struct cg_buf d;
    cg_buf_init(&d, CG_BUF_UNBOUNDED);
    cg_buf_printf(&d, "before: %.*s\nafter:  %.*s", (int)(la > 600 ? 600 : la), a,
                  (int)(lb > 600 ? 600 : lb), b);
    return cg_buf_take(&d);
}

static char *hget(struct fixture *f, const char *sid, const char *field)
{
    redisReply *r = rcmd(f, "HGET " P "call:%s %s", sid, field);
    char *v = cg_strdup(r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    freeReplyObject(r);
    return v;
}

static int zhas(struct fixture *f, const char *key, const char *member)
{
    redisReply *r = rcmd(f, "ZSCORE " P "%s %s", key, member);
    int yes = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return yes;
}

/* No lost caller: A holds its slot, connected; W1-W3 wait. */
static void assert_protected(struct fixture *f, const char *where)
{
    char *st = hget(f, f->a, "state");
    must(f, strcmp(st, "connected") == 0 && zhas(f, "active", f->a),
         "%s: the connected caller is now %s", where, st);
    free(st);
    for (int i = 0; i < 3; i++) {
        st = hget(f, f->w[i], "state");
        must(f, strcmp(st, "waiting") == 0 && zhas(f, "waiting", f->w[i]),
             "%s: waiting caller %d is now %s", where, i + 1, st);
        free(st);
    }
    char call[48];
    snprintf(call, sizeof call, "o:%s", f->out_id);
    st = hget(f, call, "state");
    must(f, strcmp(st, "waiting") == 0 && zhas(f, "rq:default", call),
         "%s: the outbound call is now %s", where, st);
    free(st);
}

/* ---- process ---- */

/* The gate's settings (callgate's defaults for the others). */
static const char *const hostile_env[] = {
    "INSTANCE_ID=hostile", "TWILIO_QUEUE_NAME=" QUEUE_NAME, "VAPI_HMAC_SECRET=" HMAC_SECRET,
    /* Both forms of authentication are exercised: a migration. */
    "VAPI_ACCEPT_STATIC_SECRET=1", "ADMIN_TOKEN=" ADMIN_TOKEN, "WAIT_TIME_READ_TOKEN=" READ_TOKEN,
    "TWILIO_WORKSPACE_SID=" WS,
    /* One refresh at start, then none while the table runs, so the
     * wait-time keys hold still too. */
    "WAIT_TIME_POLL_SECONDS=3600", "HOLD_MUSIC_URL=" HOLD_URL,
    /* One slot: the connected caller fills it, so nothing hostile can
     * be admitted by accident, and a forged release would show. */
    "MAX_CONCURRENCY=1", "MAX_WAIT_SECONDS=0",
    /* The first /queue-wait of each caller announces; later ones in
     * the table do not, so they change nothing. */
    "ANNOUNCE_INTERVAL_SECONDS=600",
    /* No lease runs out and no reconciliation runs while the table
     * runs: the only changes are the requests'. */
    "LEASE_SECONDS=3600", "RECONCILE_INTERVAL_SECONDS=3600", "HTTP_TIMEOUT_SECONDS=2",
    "HTTP_MAX_BODY_BYTES=65536", "HTTP_MAX_HEADER_BYTES=8192", "SHUTDOWN_GRACE_MS=3000", NULL};

/* ---- Twilio and Vapi requests ---- */

static void sign(const struct fixture *f, const char *base, const char *target,
                 const struct cg_form *params, const char *token, char sig[CG_TWSIG_LEN + 1])
{
    char url[8192];
    snprintf(url, sizeof url, "%s%s", base ? base : f->g[0].public, target);
    assert_int_equal(cg_twsig_compute(token, url, params, sig), 0);
}

/* A form-encoded, signed POST through cgt_http (for the set-up). */
static long signed_post(struct fixture *f, const char *path, const struct cg_form *form,
                        struct cgt_resp *r)
{
    char url[256], sig[CG_TWSIG_LEN + 1], sigh[64];
    snprintf(url, sizeof url, "%s%s", f->g[0].base, path);
    sign(f, NULL, path, form, AUTH_TOKEN, sig);
    snprintf(sigh, sizeof sigh, "X-Twilio-Signature: %s", sig);
    char *body = cg_form_encode(form);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", sigh, NULL};
    cgt_http("POST", url, h, body, strlen(body), r);
    free(body);
    return r->status;
}

static void form_kv(struct cg_form *f, const char *const *kv)
{
    for (size_t k = 0; kv[k] && kv[k + 1]; k += 2)
        cg_form_add(f, kv[k], kv[k + 1]);
}

/* Replaces the first value of key, or appends the pair. */
static void form_set(struct cg_form *f, const char *key, const char *value)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->pairs[i].key, key) == 0) {
            free(f->pairs[i].value);
            f->pairs[i].value = cg_strdup(value);
            f->pairs[i].value_len = strlen(value);
            return;
        }
    }
    cg_form_add(f, key, value);
}

/* Inserts a pair in front of the others. */
static void form_prepend(struct cg_form *f, const char *key, const char *value)
{
    cg_form_add(f, key, value);
    struct cg_form_pair last = f->pairs[f->n - 1];
    memmove(f->pairs + 1, f->pairs, (f->n - 1) * sizeof *f->pairs);
    f->pairs[0] = last;
}

static void setup_incoming(struct fixture *f, const char *sid, struct cgt_resp *r)
{
    struct cg_form form;
    cg_form_init(&form);
    form_kv(&form, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "From", CALLER,
                                         "To", CALLEE, "CallStatus", "ringing", NULL});
    signed_post(f, "/incoming", &form, r);
    cg_form_free(&form);
}

/* HMAC of Vapi's authentication plan over "{ts}.{body}", hex. */
static void vapi_hmac(const char *ts, const char *body, size_t len, char out[65])
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appends(&b, ts);
    cg_buf_appendc(&b, '.');
    cg_buf_append(&b, body, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), HMAC_SECRET, (int)strlen(HMAC_SECRET), (const unsigned char *)b.data, b.len,
         md, &mdlen);
    cg_buf_free(&b);
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Vapi's end-of-call report for a call id (any bytes; JSON-escaped). */
static char *end_body(const char *id, const char *extra)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appends(&b, "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":"
                       "\"customer-ended-call\",\"call\":{\"id\":");
    cg_buf_append_json_str(&b, id, strlen(id));
    cg_buf_appends(&b, "}");
    if (extra != NULL) {
        cg_buf_appendc(&b, ',');
        cg_buf_appends(&b, extra);
    }
    cg_buf_appends(&b, "}}");
    return cg_buf_take(&b);
}

/* ---- the table ---- */

enum ep_id {
    E_INC,
    E_QW,
    E_QX,
    E_CS,
    E_CE,
    E_PQ,
    E_LIM,
    E_MET,
    E_HEA,
    E_GQT,
    E_WT,
    E_WTS,
    E_TS,
    E_EVT,
    E_WB,
    E_INTV,
    E_CBK,
    E_CBA,
    E_CBS,
    E_CBP,
    E_CBN,
    E_CBC,
    E_SLT,
    E_SRN,
    E_SDL,
    E_OUT,
    E_OST,
    NEP
};

/* K_ADM: the operator's GET endpoints (admin token as Bearer or ?token=).
 * K_DIAL: the dialer API (admin token, JSON bodies). */
enum ep_kind { K_TW, K_VAPI, K_PQ, K_LIMIT, K_PUB, K_WT, K_ADM, K_DIAL };

static const struct endpoint {
    const char *name;
    const char *path;
    enum ep_kind kind;
} eps[NEP] = {
    [E_INC] = {"/incoming", "/incoming", K_TW},
    [E_QW] = {"/queue-wait", "/queue-wait", K_TW},
    [E_QX] = {"/queue-exit", "/queue-exit", K_TW},
    [E_CS] = {"/call-status", "/call-status", K_TW},
    [E_CE] = {"/call-ended", "/call-ended", K_VAPI},
    [E_PQ] = {"/process-queue", "/process-queue", K_PQ},
    [E_LIM] = {"/admin/limit", "/admin/limit", K_LIMIT},
    [E_MET] = {"/metrics", "/metrics", K_PUB},
    [E_HEA] = {"/health", "/health", K_PUB},
    [E_GQT] = {"/get-queue-times", "/get-queue-times", K_WT},
    [E_WT] = {"/wait-times", "/wait-times", K_WT},
    [E_WTS] = {"/wait-times/{sid}", "/wait-times/", K_WT},
    [E_TS] = {"/transfer-status", "/transfer-status", K_TW},
    [E_EVT] = {"/events", "/events", K_ADM},
    [E_WB] = {"/wallboard", "/wallboard", K_ADM},
    [E_INTV] = {"/reports/intervals.csv", "/reports/intervals.csv", K_ADM},
    /* Callbacks: the keypad, and the outbound leg's webhooks, whose URLs
     * callgate writes itself (the ticket's CallSid and the attempt). */
    [E_CBK] = {"/callback-keypad", "/callback-keypad", K_TW},
    [E_CBA] = {"/callback-answer",
               "/callback-answer?sid=CAeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee&attempt=1", K_TW},
    [E_CBS] = {"/callback-status",
               "/callback-status?sid=CAeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee&attempt=1", K_TW},
    [E_CBP] = {"/callback-pending", "/callback-pending?sid=CAeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
               K_TW},
    /* Another number: the keys, and the confirmation of the number read
     * back (carried in callgate's own URL). */
    [E_CBN] = {"/callback-number", "/callback-number", K_TW},
    [E_CBC] = {"/callback-number-confirm", "/callback-number-confirm?n=442079460000", K_TW},
    /* The dialer API on the gate's one route, "default". No slot can be
     * leased here (the connected caller fills the limit), so the slot ids
     * in paths are ones nobody holds; the outbound call read is the one
     * the set-up placed, waiting behind the callers. */
    [E_SLT] = {"POST /slots", "/slots", K_DIAL},
    [E_SRN] = {"POST /slots/{id}/renew", "/slots/" DEAD_SLOT "/renew", K_DIAL},
    [E_SDL] = {"DELETE /slots/{id}", "/slots/" DEAD_SLOT, K_DIAL},
    [E_OUT] = {"POST /calls/outbound", "/calls/outbound", K_DIAL},
    [E_OST] = {"GET /calls/outbound/{id}", "/calls/outbound/", K_DIAL},
};

enum row_id {
    R_NOAUTH,
    R_WRONG,
    R_NEAR,
    R_TAMPER_SID,
    R_TAMPER_VALUE,
    R_UNSIGNED_PART,
    R_HOST,
    R_PORT,
    R_SCHEME,
    R_CT_JSON,
    R_CT_NONE,
    R_CT_ODD,
    R_PCT_ZZ,
    R_PCT_SHORT,
    R_PCT_NUL,
    R_DUP_SIGNED,
    R_DUP_UNSIGNED,
    R_BODY_HUGE,
    R_CHUNK_HUGE,
    R_HDR_431,
    R_HDR_MANY,
    R_HDR_CEIL,
    R_CL_NEG,
    R_CL_PLUS,
    R_SMUGGLE_CL,
    R_SMUGGLE_TE_CL,
    R_SMUGGLE_TE_ODD,
    R_SMUGGLE_WS,
    R_UTF8_BODY,
    R_UTF8_HDR,
    R_UTF8_PATH,
    R_TARGET_ABS,
    R_M_GET,
    R_M_PUT,
    R_M_DELETE,
    R_M_PATCH,
    R_M_OPTIONS,
    R_M_TRACE,
    R_M_BREW,
    R_JSON_TYPE,
    R_JSON_OBJ,
    R_JSON_ARR,
    R_JSON_NULL,
    R_JSON_DEEP,
    R_NUM_INF,
    R_NUM_NEG,
    R_NUM_BIG,
    R_LONG,
    R_UNKNOWN,
    R_BAD_SID,
    R_MISSING,
    R_EMPTY,
    R_INJ,
    R_INJ_NUL,
    R_PLAIN,
    R_NUL_HDR,
    R_CR_HDR,
    R_LF_HDR,
    R_BARE_LF,
    R_OBS_FOLD,
    R_CHUNK_0X,
    R_CHUNK_PLUS,
    R_CHUNK_SP,
    R_CHUNK_JUNK,
    R_CHUNK_EXT,
    R_TE_10,
    R_TE_GZIP,
    R_TE_LAST,
    R_CL_TWICE,
    R_CL_HEX,
    R_HOST_NONE,
    R_HOST_TWO,
    R_HOST_BAD,
    R_NAME_TOKEN,
    R_CONN_CLOSE,
    R_10_CLOSE,
    NROWS
};

/* CH: the request may change state, and only by adding the record of the
 * fresh CallSid it names (a new caller at /incoming, an adopted one at
 * /queue-wait: both documented). */
#define CH 1000
/* CO: the request may change state, and only by adding the outbound call
 * its answer names (POST /calls/outbound: documented), waiting in the line
 * behind the callers, and the counters and queue log that go with it. */
#define CO 2000
/* RC: a refusal the gate counts (POST /slots with no room: 429): only the
 * gate's and the route's counters may change. */
#define RC 3000

static const struct row {
    const char *name;
    int expect[NEP];
} rows[NROWS] = {
    /* clang-format off */
    /*                                                           inc       qw        qx   cs   ended  pq   limit  met  hlth  gqt  wt   wts  ts   evt  wb   intv  cbk  cba  cbs  cbp       cbn  cbc  slots     renew  sdel  out       ostat */
    [R_NOAUTH] =         {"no credentials",                     {403,      403,      403, 403, 403,   401, 401,   200, 200,  401, 401, 401, 403, 401, 401, 401,  403, 403, 403, 403,      403, 403, 401,      401,   401,  401,      401}},
    [R_WRONG] =          {"wrong credentials",                  {403,      403,      403, 403, 403,   401, 401,   200, 200,  401, 401, 401, 403, 401, 401, 401,  403, 403, 403, 403,      403, 403, 401,      401,   401,  401,      401}},
    [R_NEAR] =           {"almost the credentials",             {403,      403,      403, 403, 403,   401, 401,   200, 200,  401, 401, 401, 403, 401, 401, 401,  403, 403, 403, 403,      403, 403, 401,      401,   401,  401,      401}},
    [R_TAMPER_SID] =     {"signed, CallSid changed",            {403,      403,      403, 403, 403,   200, 200,   200, 200,  200, 200, 200, 403, 200, 200, 200,  403, 403, 403, 403,      403, 403, RC + 429, 404,   404,  CO + 202, 200}},
    [R_TAMPER_VALUE] =   {"signed, a value changed",            {403,      403,      403, 403, 403,   200, 200,   200, 200,  200, 200, 200, 403, 200, 200, 200,  403, 403, 403, 403,      403, 403, RC + 429, 404,   404,  CO + 202, 200}},
    [R_UNSIGNED_PART] =  {"query unsigned, stale HMAC",         {403,      403,      403, 403, 403,   200, 200,   200, 200,  200, 200, 200, 403, 200, 200, 200,  403, 403, 403, 403,      403, 403, RC + 429, 404,   404,  CO + 202, 200}},
    [R_HOST] =           {"signed for another host",            {403,      403,      403, 403, 200,   200, 200,   200, 200,  200, 200, 200, 403, 200, 200, 200,  403, 403, 403, 403,      403, 403, RC + 429, 404,   404,  CO + 202, 200}},
    [R_PORT] =           {"signed for another port",            {403,      403,      403, 403, 200,   200, 200,   200, 200,  200, 200, 200, 403, 200, 200, 200,  403, 403, 403, 403,      403, 403, RC + 429, 404,   404,  CO + 202, 200}},
    [R_SCHEME] =         {"signed for https",                   {403,      403,      403, 403, 200,   200, 200,   200, 200,  200, 200, 200, 403, 200, 200, 200,  403, 403, 403, 403,      403, 403, RC + 429, 404,   404,  CO + 202, 200}},
    [R_CT_JSON] =        {"content type swapped",               {400,      400,      400, 400, 400,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      400,   404,  400,      200}},
    [R_CT_NONE] =        {"no content type",                    {400,      400,      400, 400, 200,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, RC + 429, 404,   404,  CO + 202, 200}},
    [R_CT_ODD] =         {"look-alike content type",            {400,      400,      400, 400, 200,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, RC + 429, 404,   404,  CO + 202, 200}},
    [R_PCT_ZZ] =         {"%zz",                                {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_PCT_SHORT] =      {"%4 at the end",                      {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_PCT_NUL] =        {"%00",                                {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_DUP_SIGNED] =     {"two CallSids, both signed",          {CH + 200, CH + 200, 200, 200, 400,   200, 400,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, CH + 200, 200, 200, 400,      400,   404,  400,      200}},
    [R_DUP_UNSIGNED] =   {"second CallSid unsigned",            {403,      403,      403, 403, 403,   401, 401,   200, 200,  401, 401, 401, 403, 401, 401, 401,  403, 403, 403, 403,      403, 403, 401,      401,   401,  401,      401}},
    [R_BODY_HUGE] =      {"body over the limit",                {413,      413,      413, 413, 413,   413, 413,   413, 413,  413, 413, 413, 413, 413, 413, 413,  413, 413, 413, 413,      413, 413, 413,      413,   413,  413,      413}},
    [R_CHUNK_HUGE] =     {"chunk over the limit",               {413,      413,      413, 413, 413,   413, 413,   413, 413,  413, 413, 413, 413, 413, 413, 413,  413, 413, 413, 413,      413, 413, 413,      413,   413,  413,      413}},
    [R_HDR_431] =        {"a 9 KB header",                      {431,      431,      431, 431, 431,   431, 431,   431, 431,  431, 431, 431, 431, 431, 431, 431,  431, 431, 431, 431,      431, 431, 431,      431,   431,  431,      431}},
    [R_HDR_MANY] =       {"2000 headers",                       {431,      431,      431, 431, 431,   431, 431,   431, 431,  431, 431, 431, 431, 431, 431, 431,  431, 431, 431, 431,      431, 431, 431,      431,   431,  431,      431}},
    [R_HDR_CEIL] =       {"a 70 KB header",                     {431,      431,      431, 431, 431,   431, 431,   431, 431,  431, 431, 431, 431, 431, 431, 431,  431, 431, 431, 431,      431, 431, 431,      431,   431,  431,      431}},
    [R_CL_NEG] =         {"Content-Length: -1",                 {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CL_PLUS] =        {"Content-Length: +n",                 {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_SMUGGLE_CL] =     {"smuggled: two lengths",              {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_SMUGGLE_TE_CL] =  {"smuggled: chunked+length",           {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_SMUGGLE_TE_ODD] = {"smuggled: TE identity",              {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_SMUGGLE_WS] =     {"smuggled: \"Transfer-Encoding :\"",  {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_UTF8_BODY] =      {"invalid UTF-8 in values",            {400,      400,      400, 400, 400,   200, 400,   200, 200,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      404,   404,  400,      200}},
    [R_UTF8_HDR] =       {"invalid UTF-8 credentials",          {403,      403,      403, 403, 403,   401, 401,   200, 200,  401, 401, 401, 403, 401, 401, 401,  403, 403, 403, 403,      403, 403, 401,      401,   401,  401,      401}},
    [R_UTF8_PATH] =      {"invalid UTF-8 in the path",          {404,      404,      404, 404, 404,   404, 404,   404, 404,  404, 404, 400, 404, 404, 404, 404,  404, 404, 404, 404,      404, 404, 404,      404,   404,  404,      404}},
    [R_TARGET_ABS] =     {"absolute-form target",               {403,      403,      403, 403, 200,   200, 200,   200, 200,  200, 200, 200, 403, 200, 200, 200,  403, 403, 403, 403,      403, 403, RC + 429, 404,   404,  CO + 202, 200}},
    [R_M_GET] =          {"GET",                                {405,      405,      405, 405, 405,   405, 401,   200, 200,  401, 401, 401, 405, 401, 401, 401,  405, 405, 405, 405,      405, 405, 405,      405,   405,  405,      401}},
    [R_M_PUT] =          {"PUT",                                {405,      405,      405, 405, 405,   405, 401,   405, 405,  405, 405, 405, 405, 405, 405, 405,  405, 405, 405, 405,      405, 405, 405,      405,   405,  405,      405}},
    [R_M_DELETE] =       {"DELETE",                             {405,      405,      405, 405, 405,   405, 401,   405, 405,  405, 405, 405, 405, 405, 405, 405,  405, 405, 405, 405,      405, 405, 405,      401,   401,  405,      405}},
    [R_M_PATCH] =        {"PATCH",                              {405,      405,      405, 405, 405,   405, 405,   405, 405,  405, 405, 405, 405, 405, 405, 405,  405, 405, 405, 405,      405, 405, 405,      405,   405,  405,      405}},
    [R_M_OPTIONS] =      {"OPTIONS",                            {405,      405,      405, 405, 405,   405, 405,   405, 405,  405, 405, 405, 405, 405, 405, 405,  405, 405, 405, 405,      405, 405, 405,      405,   405,  405,      405}},
    [R_M_TRACE] =        {"TRACE",                              {405,      405,      405, 405, 405,   405, 405,   405, 405,  405, 405, 405, 405, 405, 405, 405,  405, 405, 405, 405,      405, 405, 405,      405,   405,  405,      405}},
    [R_M_BREW] =         {"BREW",                               {501,      501,      501, 501, 501,   501, 501,   501, 501,  501, 501, 501, 501, 501, 501, 501,  501, 501, 501, 501,      501, 501, 501,      501,   501,  501,      501}},
    [R_JSON_TYPE] =      {"JSON: a number for a string",        {400,      400,      400, 400, 400,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      400,   404,  400,      200}},
    [R_JSON_OBJ] =       {"JSON: an object for an id",          {400,      400,      400, 400, 400,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      400,   404,  400,      200}},
    [R_JSON_ARR] =       {"JSON: an array for an id",           {400,      400,      400, 400, 400,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      400,   404,  400,      200}},
    [R_JSON_NULL] =      {"JSON: null for an id",               {400,      400,      400, 400, 400,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      400,   404,  400,      200}},
    [R_JSON_DEEP] =      {"JSON: 10,000 [",                     {400,      400,      400, 400, 400,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      400,   404,  400,      200}},
    [R_NUM_INF] =        {"number 1e999",                       {200,      200,      200, 200, 400,   200, 400,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, 400,      400,   404,  400,      200}},
    [R_NUM_NEG] =        {"number -1",                          {200,      200,      200, 200, 200,   200, 400,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, 400,      400,   404,  CO + 202, 200}},
    [R_NUM_BIG] =        {"number 2^63",                        {200,      200,      200, 200, 400,   200, 400,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, 400,      400,   404,  400,      200}},
    [R_LONG] =           {"20 KB strings",                      {200,      200,      200, 200, 200,   200, 400,   200, 200,  400, 400, 400, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, 400,      404,   404,  400,      404}},
    [R_UNKNOWN] =        {"unknown CallSid / ids",              {CH + 200, CH + 200, 200, 200, 200,   200, 200,   200, 200,  404, 404, 404, 200, 200, 200, 200,  200, 200, 200, CH + 200, 200, 200, 400,      404,   404,  400,      404}},
    [R_BAD_SID] =        {"malformed ids",                      {400,      400,      400, 400, 200,   200, 200,   200, 200,  400, 404, 400, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      404,   404,  400,      404}},
    [R_MISSING] =        {"required field missing",             {200,      200,      400, 400, 200,   200, 400,   200, 200,  400, 200, 200, 400, 200, 200, 200,  400, 200, 400, 400,      400, 400, 400,      404,   404,  400,      404}},
    [R_EMPTY] =          {"empty body",                         {400,      400,      400, 400, 400,   200, 400,   200, 200,  200, 200, 200, 400, 200, 200, 200,  400, 400, 400, 400,      400, 400, 400,      404,   404,  400,      200}},
    [R_INJ] =            {"XML, quotes, CR LF",                 {CH + 200, 200,      200, 200, 200,   200, 400,   200, 200,  400, 404, 400, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, 400,      404,   404,  400,      404}},
    [R_INJ_NUL] =        {"NUL in values",                      {400,      400,      400, 400, 400,   200, 400,   200, 200,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_PLAIN] =          {"a plain request",                    {200,      200,      200, 200, 200,   200, 200,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, RC + 429, 404,   404,  CO + 202, 200}},
    [R_NUL_HDR] =        {"NUL after Content-Length",           {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CR_HDR] =         {"CR in a header value",               {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_LF_HDR] =         {"LF in a header value",               {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_BARE_LF] =        {"a line ending in a bare LF",         {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_OBS_FOLD] =       {"obs-fold",                           {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CHUNK_0X] =       {"chunk size 0x3",                     {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CHUNK_PLUS] =     {"chunk size +3",                      {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CHUNK_SP] =       {"chunk size \" 3\"",                  {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CHUNK_JUNK] =     {"chunk size \"3 junk\"",              {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CHUNK_EXT] =      {"chunk extensions, trailers",         {200,      200,      200, 200, 200,   200, 200,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, RC + 429, 404,   404,  CO + 202, 200}},
    [R_TE_10] =          {"Transfer-Encoding on 1.0",           {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_TE_GZIP] =        {"TE: gzip, chunked",                  {501,      501,      501, 501, 501,   501, 501,   501, 501,  501, 501, 501, 501, 501, 501, 501,  501, 501, 501, 501,      501, 501, 501,      501,   501,  501,      501}},
    [R_TE_LAST] =        {"TE: chunked, gzip",                  {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CL_TWICE] =       {"Content-Length twice, same",         {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CL_HEX] =         {"Content-Length: 0x..",               {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_HOST_NONE] =      {"no Host on 1.1",                     {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_HOST_TWO] =       {"two Host fields",                    {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_HOST_BAD] =       {"Host: a b@c",                        {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_NAME_TOKEN] =     {"field name not a token",             {400,      400,      400, 400, 400,   400, 400,   400, 400,  400, 400, 400, 400, 400, 400, 400,  400, 400, 400, 400,      400, 400, 400,      400,   400,  400,      400}},
    [R_CONN_CLOSE] =     {"Connection: keep-alive, close",      {200,      200,      200, 200, 200,   200, 200,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, RC + 429, 404,   404,  CO + 202, 200}},
    [R_10_CLOSE] =       {"HTTP/1.0, no keep-alive",            {200,      200,      200, 200, 200,   200, 200,   200, 200,  200, 200, 200, 200, 200, 200, 200,  200, 200, 200, 200,      200, 200, RC + 429, 404,   404,  CO + 202, 200}},
    /* clang-format on */
};

enum auth { A_OK, A_NONE, A_WRONG, A_NEAR, A_UTF8, A_DUP };

/* One cell: the endpoint, and names the request may use. */
struct ctx {
    struct fixture *f;
    enum ep_id e;
    char fresh[40];  /* a CallSid nobody knows */
    char fresh2[40]; /* another one */
    char unknown_vapi[64];
};

static const char *protected_victim(const struct ctx *c)
{
    return c->e == E_CS ? c->f->a : c->f->w[0];
}

/* The CallSid a Twilio request is about: for a forged (harmful) one, the
 * caller it would hurt, or a fresh one it would create; otherwise a caller
 * for whom the request changes nothing. */
static const char *tw_sid(const struct ctx *c, int harmful)
{
    switch (c->e) {
    case E_INC:
    case E_QW:
        return harmful ? c->fresh : c->f->w[0];
    case E_CS:
        return c->f->a;
    default:
        return c->f->w[0];
    }
}

/* The form Twilio would post to this endpoint about sid. harmful selects
 * the values that change state: hangup, completed. */
static void tw_form(const struct ctx *c, struct cg_form *f, const char *sid, int harmful)
{
    switch (c->e) {
    case E_INC:
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "From", CALLER,
                                         "To", CALLEE, "CallStatus", "ringing", "Direction",
                                         "inbound", NULL});
        break;
    case E_QW:
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "QueueSid",
                                         QUEUE_SID, "QueueTime", "3", "QueuePosition", "1", "From",
                                         CALLER, "To", CALLEE, NULL});
        break;
    case E_TS:
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID,
                                         "DialCallStatus", harmful ? "busy" : "completed", "From",
                                         CALLER, "To", CALLEE, NULL});
        break;
    case E_CBK:
    case E_CBP:
        /* The keypad: 1 accepts a callback, 2 waits in a pending one's
         * place; other keys change nothing. */
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "Digits",
                                         harmful ? (c->e == E_CBK ? "1" : "2") : "7", "From",
                                         CALLER, "To", CALLEE, NULL});
        break;
    case E_CBN:
    case E_CBC:
        /* A national number keyed, and 1 confirming one: the harmful
         * requests; 7 confirms nothing. */
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "Digits",
                                         harmful ? (c->e == E_CBN ? "02079460000" : "1") : "7",
                                         "From", CALLER, "To", CALLEE, NULL});
        break;
    case E_CBA:
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "CallStatus",
                                         "in-progress", "AnsweredBy",
                                         harmful ? "human" : "machine_start", "From", CALLEE, "To",
                                         CALLER, "Direction", "outbound-api", NULL});
        break;
    case E_QX:
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "QueueResult",
                                         harmful ? "hangup" : "redirected", "QueueSid", QUEUE_SID,
                                         "QueueTime", "4", NULL});
        break;
    default:
        form_kv(f, (const char *const[]){"CallSid", sid, "AccountSid", ACCOUNT_SID, "CallStatus",
                                         harmful ? "completed" : "in-progress", "From", CALLER,
                                         "To", CALLEE, NULL});
        break;
    }
}

struct tw_opts {
    const struct cg_form *signed_over; /* what the signature covers; NULL: the body */
    const char *sign_base;             /* NULL: PUBLIC_URL */
    const char *token;                 /* NULL: the auth token */
    const char *sig;                   /* sent as is */
    int no_sig;
    const char *ctype;  /* NULL: form-encoded; "": no Content-Type */
    const char *suffix; /* raw bytes after the encoded body */
    const char *query;  /* added to the target after signing */
};

static void tw_req(const struct ctx *c, struct rq *r, const struct cg_form *sent,
                   const struct tw_opts *o)
{
    rq_init(r, "POST", eps[c->e].path);
    if (!o->no_sig) {
        char sig[CG_TWSIG_LEN + 1];
        const char *s = o->sig;
        if (s == NULL) {
            sign(c->f, o->sign_base, eps[c->e].path, o->signed_over ? o->signed_over : sent,
                 o->token ? o->token : AUTH_TOKEN, sig);
            s = sig;
        }
        rq_hdr(r, "X-Twilio-Signature", s);
    }
    if (o->query != NULL)
        rq_param(r, o->query);
    const char *ct = o->ctype ? o->ctype : "application/x-www-form-urlencoded";
    if (ct[0] != '\0')
        rq_hdr(r, "Content-Type", ct);
    char *body = cg_form_encode(sent);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_buf_appends(&b, body);
    if (o->suffix != NULL)
        cg_buf_appends(&b, o->suffix);
    rq_body(r, cg_buf_str(&b), b.len);
    cg_buf_free(&b);
    free(body);
}

/* A Twilio request with the endpoint's usual form, sent as o says. */
static void tw_simple(const struct ctx *c, struct rq *r, int harmful, const struct tw_opts *o)
{
    struct cg_form form;
    cg_form_init(&form);
    tw_form(c, &form, tw_sid(c, harmful), harmful);
    tw_req(c, r, &form, o);
    cg_form_free(&form);
}

static void bearer(struct rq *r, const char *token, enum auth a)
{
    char h[256];
    switch (a) {
    case A_OK:
        snprintf(h, sizeof h, "Bearer %s", token);
        break;
    case A_NONE:
        return;
    case A_WRONG:
        snprintf(h, sizeof h, "Bearer not-the-token");
        break;
    case A_NEAR:
        snprintf(h, sizeof h, "Bearer %sx", token);
        break;
    case A_UTF8:
        snprintf(h, sizeof h, "Bearer \xff\xfe\x80%s", token);
        break;
    case A_DUP:
        /* The first of two headers counts, as evhttp reads them. */
        rq_hdr(r, "Authorization", "Bearer not-the-token");
        snprintf(h, sizeof h, "Bearer %s", token);
        break;
    }
    rq_hdr(r, "Authorization", h);
}

static void vapi_secret(struct rq *r, enum auth a)
{
    switch (a) {
    case A_OK:
        rq_hdr(r, "x-vapi-secret", VAPI_SECRET);
        break;
    case A_NONE:
        break;
    case A_WRONG:
        rq_hdr(r, "x-vapi-secret", "not-the-secret");
        break;
    case A_NEAR:
        rq_hdr(r, "x-vapi-secret", VAPI_SECRET "x");
        break;
    case A_UTF8:
        rq_hdr(r, "x-vapi-secret", "\xff\xfe\x80" VAPI_SECRET);
        break;
    case A_DUP:
        rq_hdr(r, "x-vapi-secret", "not-the-secret");
        rq_hdr(r, "x-vapi-secret", VAPI_SECRET);
        break;
    }
}

/* The target an endpoint is read at. */
static void default_target(const struct ctx *c, struct cg_buf *t)
{
    cg_buf_reset(t);
    if (c->e == E_GQT)
        cg_buf_printf(t, "/get-queue-times?queueSid=%s", c->f->q0);
    else if (c->e == E_WTS)
        cg_buf_printf(t, "/wait-times/%s", c->f->q0);
    else if (c->e == E_OST)
        cg_buf_printf(t, "/calls/outbound/%s", c->f->out_id);
    else
        cg_buf_appends(t, eps[c->e].path);
}

/* A JSON POST to /call-ended. */
static void vapi_req(const struct ctx *c, struct rq *r, const char *body, size_t len, enum auth a)
{
    (void)c;
    rq_init(r, "POST", "/call-ended");
    rq_hdr(r, "Content-Type", "application/json");
    vapi_secret(r, a);
    rq_body(r, body, len);
}

/*
 * A dialer API request: id (NULL: the column's own) in the path of the
 * columns that take one, body (NULL: a valid one) for those that take one,
 * ctype (NULL: JSON, "": none). No credentials: the caller adds them.
 */
static void dial_req(const struct ctx *c, struct rq *r, const char *id, const char *body,
                     const char *ctype)
{
    struct cg_buf t;
    cg_buf_init(&t, CG_BUF_UNBOUNDED);
    const char *method = "POST";
    switch (c->e) {
    case E_SLT:
        cg_buf_appends(&t, "/slots");
        body = body ? body : "{\"route\":\"default\",\"ttlSeconds\":600}";
        break;
    case E_SRN:
        cg_buf_printf(&t, "/slots/%s/renew", id ? id : DEAD_SLOT);
        body = body ? body : "{\"ttlSeconds\":600}";
        break;
    case E_SDL:
        method = "DELETE";
        cg_buf_printf(&t, "/slots/%s", id ? id : DEAD_SLOT);
        break;
    case E_OUT:
        cg_buf_appends(&t, "/calls/outbound");
        body = body ? body : OUT_BODY;
        break;
    default: /* E_OST */
        method = "GET";
        cg_buf_printf(&t, "/calls/outbound/%s", id ? id : c->f->out_id);
        break;
    }
    rq_init(r, method, cg_buf_str(&t));
    cg_buf_free(&t);
    ctype = ctype ? ctype : "application/json";
    if (body != NULL) {
        if (ctype[0] != '\0')
            rq_hdr(r, "Content-Type", ctype);
        rq_body(r, body, strlen(body));
    }
}

/*
 * The request of a non-Twilio endpoint: harmful is what a forger wants
 * (Vapi: release the connected caller; the limit: raise it, which admits
 * the waiting callers), otherwise a request that changes nothing.
 */
static void std_req(const struct ctx *c, struct rq *r, int harmful, enum auth a)
{
    struct cg_buf t;
    cg_buf_init(&t, CG_BUF_UNBOUNDED);
    default_target(c, &t);
    switch (eps[c->e].kind) {
    case K_VAPI: {
        char *body = end_body(harmful ? c->f->vapi_a : c->unknown_vapi, NULL);
        vapi_req(c, r, body, strlen(body), a);
        free(body);
        break;
    }
    case K_PQ:
        rq_init(r, "POST", "/process-queue");
        bearer(r, ADMIN_TOKEN, a);
        break;
    case K_LIMIT:
        if (harmful) {
            rq_init(r, "PUT", "/admin/limit");
            rq_hdr(r, "Content-Type", "application/json");
            rq_body(r, "{\"limit\":5}", 11);
        } else {
            rq_init(r, "GET", "/admin/limit");
        }
        bearer(r, ADMIN_TOKEN, a);
        break;
    case K_PUB:
        rq_init(r, "GET", cg_buf_str(&t));
        /* Public: whatever credentials come along are ignored. */
        if (a != A_OK && a != A_NONE)
            bearer(r, "junk", a);
        break;
    case K_ADM:
        rq_init(r, "GET", cg_buf_str(&t));
        bearer(r, ADMIN_TOKEN, a);
        break;
    case K_DIAL:
        dial_req(c, r, harmful ? c->f->a : NULL, NULL, NULL);
        bearer(r, ADMIN_TOKEN, a);
        break;
    default:
        rq_init(r, "GET", cg_buf_str(&t));
        bearer(r, READ_TOKEN, a);
        break;
    }
    cg_buf_free(&t);
}

/* Vapi request authenticated by the HMAC plan only (no x-vapi-secret). */
static void vapi_hmac_req(const struct ctx *c, struct rq *r, const char *body,
                          const char *signed_body, long long ts, long long sent_ts)
{
    char tss[32], sent[32], mac[65];
    snprintf(tss, sizeof tss, "%lld", ts);
    snprintf(sent, sizeof sent, "%lld", sent_ts);
    vapi_hmac(tss, signed_body, strlen(signed_body), mac);
    vapi_req(c, r, body, strlen(body), A_NONE);
    rq_hdr(r, "x-timestamp", sent);
    rq_hdr(r, "x-signature", mac);
}

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* A string of n copies of ch (malloc'd). */
static char *repeat(char ch, size_t n)
{
    char *s = cg_malloc(n + 1);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

/* JSON bodies of the type-confusion rows: for Vapi, then for the limit. */
static void json_row(enum row_id row, const struct ctx *c, const char **vapi, const char **limit,
                     char *buf, size_t n)
{
    const char *a = c->f->vapi_a;
    switch (row) {
    case R_JSON_TYPE:
        snprintf(buf, n, "{\"message\":{\"type\":5,\"call\":{\"id\":\"%s\"}}}", a);
        *limit = "{\"limit\":true}";
        break;
    case R_JSON_OBJ:
        snprintf(
            buf, n,
            "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":{\"id\":\"%s\"}}}}", a);
        *limit = "{\"limit\":{\"n\":5}}";
        break;
    case R_JSON_ARR:
        snprintf(buf, n,
                 "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":[\"%s\"]}}}", a);
        *limit = "{\"limit\":[5]}";
        break;
    default:
        snprintf(buf, n, "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":null}}}");
        *limit = "{\"limit\":null}";
        break;
    }
    *vapi = buf;
}

/* A JSON body sent to every endpoint: Twilio's get it with a JSON
 * Content-Type (and a signature over the URL, as Twilio signs JSON), the
 * others as their kind reads bodies. */
static void json_everywhere(const struct ctx *c, struct rq *r, const char *vapi, const char *limit)
{
    switch (eps[c->e].kind) {
    case K_TW: {
        rq_init(r, "POST", eps[c->e].path);
        char sig[CG_TWSIG_LEN + 1];
        sign(c->f, NULL, eps[c->e].path, NULL, AUTH_TOKEN, sig);
        rq_hdr(r, "X-Twilio-Signature", sig);
        rq_hdr(r, "Content-Type", "application/json");
        rq_body(r, vapi, strlen(vapi));
        break;
    }
    case K_VAPI:
        vapi_req(c, r, vapi, strlen(vapi), A_OK);
        break;
    case K_LIMIT:
        rq_init(r, "PUT", "/admin/limit");
        bearer(r, ADMIN_TOKEN, A_OK);
        rq_hdr(r, "Content-Type", "application/json");
        rq_body(r, limit, strlen(limit));
        break;
    default:
        std_req(c, r, 0, A_OK);
        rq_hdr(r, "Content-Type", "application/json");
        rq_body(r, vapi, strlen(vapi));
        break;
    }
}

/* Path-level bad percent-encoding for endpoints that take no form. */
static void bad_pct(const struct ctx *c, struct rq *r, const char *bad)
{
    if (eps[c->e].kind == K_WT) {
        std_req(c, r, 0, A_OK);
        char p[32];
        snprintf(p, sizeof p, "x=%s", bad);
        rq_param(r, p);
        return;
    }
    std_req(c, r, 0, A_OK);
    /* The path itself: "/health%zz". */
    cg_buf_appends(&r->target, bad);
}

/*
 * The rows whose request to the dialer API differs from the generic one:
 * a body of the wrong shape for the columns that read one (POST /slots,
 * its renewal, POST /calls/outbound), an id of the wrong shape in the
 * path for those that take one. 0 for the rows the generic request fits.
 */
static int dial_row(const struct ctx *c, enum row_id row, struct rq *r)
{
    const enum ep_id e = c->e;
    const char *b[3] = {NULL, NULL, NULL}; /* /slots, renew, /calls/outbound */
    const char *id = NULL, *query = NULL, *ctype = NULL;
    char *own = NULL, *own2 = NULL, *own3 = NULL;
    char nb[3][160], q[64];
    switch (row) {
    case R_CT_JSON: /* a form where JSON is read */
        b[0] = "route=default&ttlSeconds=600";
        b[1] = "ttlSeconds=600";
        b[2] = "route=default&number=%2B15550109999";
        ctype = "application/x-www-form-urlencoded";
        break;
    case R_CT_NONE:
    case R_CT_ODD:
        /* The body is read as JSON whatever its type (README's curl -d). */
        ctype = row == R_CT_NONE ? "" : "application/x-www-form-urlencoded-evil";
        break;
    case R_JSON_TYPE:
        b[0] = "{\"route\":5}";
        b[1] = "{\"ttlSeconds\":\"600\"}";
        b[2] = "{\"route\":\"default\",\"number\":15550109999}";
        break;
    case R_JSON_OBJ:
        b[0] = "{\"route\":{\"name\":\"default\"}}";
        b[1] = "{\"ttlSeconds\":{\"n\":600}}";
        b[2] = "{\"route\":\"default\",\"number\":{\"n\":\"" OUT_NUMBER "\"}}";
        break;
    case R_JSON_ARR:
        b[0] = "{\"route\":[\"default\"]}";
        b[1] = "{\"ttlSeconds\":[600]}";
        b[2] = "{\"route\":\"default\",\"number\":[\"" OUT_NUMBER "\"]}";
        break;
    case R_JSON_NULL:
        b[0] = "{\"route\":null}";
        b[1] = "{\"ttlSeconds\":null}";
        b[2] = "{\"route\":\"default\",\"number\":null}";
        break;
    case R_JSON_DEEP:
        own = repeat('[', 10000);
        b[0] = b[1] = b[2] = own;
        break;
    case R_NUM_INF:
    case R_NUM_NEG:
    case R_NUM_BIG: {
        const char *num = row == R_NUM_INF   ? "1e999"
                          : row == R_NUM_NEG ? "-1"
                                             : "9223372036854775808";
        snprintf(nb[0], sizeof nb[0], "{\"route\":\"default\",\"ttlSeconds\":%s}", num);
        snprintf(nb[1], sizeof nb[1], "{\"ttlSeconds\":%s}", num);
        /* -1 is a valid assistant variable: that call is placed in line. */
        snprintf(nb[2], sizeof nb[2],
                 "{\"route\":\"default\",\"number\":\"" OUT_NUMBER "\",\"variables\":{\"n\":%s}}",
                 num);
        b[0] = nb[0];
        b[1] = nb[1];
        b[2] = nb[2];
        snprintf(q, sizeof q, "n=%s", num);
        query = q;
        break;
    }
    case R_LONG: {
        own3 = repeat('A', 20000);
        struct cg_buf x;
        cg_buf_init(&x, CG_BUF_UNBOUNDED);
        cg_buf_printf(&x, "{\"route\":\"%s\"}", own3);
        own = cg_buf_take(&x);
        cg_buf_init(&x, CG_BUF_UNBOUNDED);
        cg_buf_printf(&x,
                      "{\"route\":\"default\",\"number\":\"" OUT_NUMBER
                      "\",\"variables\":{\"a\":\"%s\"}}",
                      own3);
        own2 = cg_buf_take(&x);
        b[0] = own;
        b[2] = own2;
        id = own3;
        break;
    }
    case R_UNKNOWN:
        b[0] = "{\"route\":\"billing\",\"ttlSeconds\":600}";
        b[2] = "{\"route\":\"billing\",\"number\":\"" OUT_NUMBER "\",\"variables\":{}}";
        id = "ffffffffffffffffffffffffffffffff";
        break;
    case R_BAD_SID:
        b[0] = "{\"route\":\"../x\"}";
        b[2] = "{\"route\":\"default\",\"number\":\"CA' OR '1'='1\"}";
        id = "..%2F..%2Fx";
        break;
    case R_MISSING:
        b[0] = "{}";
        b[2] = "{\"route\":\"default\"}";
        id = "";
        break;
    case R_EMPTY:
        b[0] = b[1] = b[2] = "";
        break;
    case R_INJ:
        b[0] = "{\"route\":\"</Say><Dial>+1900</Dial>\\\"'&<>\\r\\n\"}";
        b[2] = "{\"route\":\"default\",\"number\":\"</Say><Dial>+1900</Dial>\\\"'&<>\\r\\n\"}";
        own = cg_pct_encode(INJ, strlen(INJ));
        id = own;
        break;
    case R_INJ_NUL:
        b[0] = "{\"route\":\"a\\u0000b\"}";
        b[2] = "{\"route\":\"default\",\"number\":\"+1555\\u00000109999\"}";
        id = "a%00b";
        break;
    case R_UTF8_BODY:
        b[0] = "{\"route\":\"\xff\xfe\"}";
        b[2] =
            "{\"route\":\"default\",\"number\":\"" OUT_NUMBER "\",\"variables\":{\"a\":\"\xff\"}}";
        query = "x=%FF%FE";
        break;
    case R_DUP_SIGNED:
        b[0] = "{\"route\":\"default\",\"route\":\"default\",\"ttlSeconds\":600}";
        b[1] = "{\"ttlSeconds\":600,\"ttlSeconds\":5}";
        b[2] = "{\"route\":\"default\",\"number\":\"" OUT_NUMBER "\",\"number\":\"+15550100000\"}";
        query = "a=1&a=2";
        break;
    default:
        return 0;
    }
    const char *body = e == E_SLT ? b[0] : e == E_SRN ? b[1] : e == E_OUT ? b[2] : NULL;
    dial_req(c, r, e == E_SLT || e == E_OUT || (e == E_SRN && b[1] != NULL) ? NULL : id, body,
             ctype);
    bearer(r, ADMIN_TOKEN, A_OK);
    if (query != NULL && body == NULL)
        rq_param(r, query);
    free(own);
    free(own2);
    free(own3);
    return 1;
}

static void build_request(struct ctx *c, enum row_id row, struct rq *r)
{
    const enum ep_kind kind = eps[c->e].kind;
    if (kind == K_DIAL && dial_row(c, row, r))
        return;
    const int tw = kind == K_TW;
    struct tw_opts o;
    memset(&o, 0, sizeof o);
    struct cg_form sent, over;
    cg_form_init(&sent);
    cg_form_init(&over);
    char tmp[512];

    switch (row) {
    case R_NOAUTH:
        o.no_sig = 1;
        if (tw)
            tw_simple(c, r, 1, &o);
        else
            std_req(c, r, 1, A_NONE);
        break;
    case R_WRONG:
        o.token = WRONG_TOKEN;
        if (tw)
            tw_simple(c, r, 1, &o);
        else
            std_req(c, r, 1, A_WRONG);
        break;
    case R_NEAR:
        if (tw) {
            /* The right signature with its first character changed. */
            tw_form(c, &sent, tw_sid(c, 1), 1);
            char sig[CG_TWSIG_LEN + 1];
            sign(c->f, NULL, eps[c->e].path, &sent, AUTH_TOKEN, sig);
            sig[0] = sig[0] == 'A' ? 'B' : 'A';
            o.sig = sig;
            tw_req(c, r, &sent, &o);
        } else {
            std_req(c, r, 1, A_NEAR);
        }
        break;
    case R_TAMPER_SID:
        if (tw) {
            /* Signed for a harmless unknown caller, sent for the victim. */
            tw_form(c, &sent, tw_sid(c, 1), 1);
            tw_form(c, &over, c->fresh2, 1);
            o.signed_over = &over;
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            /* An HMAC over a harmless report, sent with the victim's. */
            char *harm = end_body(c->f->vapi_a, NULL), *ok = end_body(c->unknown_vapi, NULL);
            vapi_hmac_req(c, r, harm, ok, now_s(), now_s());
            free(harm);
            free(ok);
        } else {
            std_req(c, r, 0, A_OK);
        }
        break;
    case R_TAMPER_VALUE:
        if (tw) {
            tw_form(c, &sent, tw_sid(c, 1), 1);
            tw_form(c, &over, tw_sid(c, 1), 1);
            if (c->e == E_QX)
                form_set(&over, "QueueResult", "redirected");
            else if (c->e == E_CS)
                form_set(&over, "CallStatus", "in-progress");
            else
                form_set(&over, "From", "+15550000001");
            o.signed_over = &over;
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            /* Valid HMAC, timestamp header changed. */
            char *harm = end_body(c->f->vapi_a, NULL);
            vapi_hmac_req(c, r, harm, harm, now_s(), now_s() + 1);
            free(harm);
        } else {
            std_req(c, r, 0, A_OK);
        }
        break;
    case R_UNSIGNED_PART:
        if (tw) {
            /* Twilio signs the full URL: a query added later is not. */
            o.query = "CallSid=CA00000000000000000000000000000000";
            tw_simple(c, r, 1, &o);
        } else if (kind == K_VAPI) {
            /* A valid HMAC from ten minutes ago (replay). */
            char *harm = end_body(c->f->vapi_a, NULL);
            vapi_hmac_req(c, r, harm, harm, now_s() - 600, now_s() - 600);
            free(harm);
        } else {
            std_req(c, r, 0, A_OK);
        }
        break;
    case R_HOST:
    case R_PORT:
    case R_SCHEME:
        if (tw) {
            if (row == R_HOST)
                snprintf(tmp, sizeof tmp, "http://evil.example:%d", c->f->g[0].port);
            else if (row == R_PORT)
                snprintf(tmp, sizeof tmp, "http://127.0.0.1:%d", c->f->g[0].port + 1);
            else
                snprintf(tmp, sizeof tmp, "https://127.0.0.1:%d", c->f->g[0].port);
            o.sign_base = tmp;
            tw_simple(c, r, 1, &o);
        } else {
            /* What the client says about the URL is irrelevant. */
            std_req(c, r, 0, A_OK);
            if (row == R_HOST)
                rq_hdr(r, "Host", "evil.example");
            else if (row == R_PORT)
                rq_hdr(r, "Host", "127.0.0.1:1");
            else
                rq_hdr(r, "X-Forwarded-Proto", "https");
        }
        break;
    case R_CT_JSON:
        if (tw) {
            snprintf(tmp, sizeof tmp, "{\"CallSid\":\"%s\",\"AccountSid\":\"%s\"}", tw_sid(c, 1),
                     ACCOUNT_SID);
            json_everywhere(c, r, tmp, NULL);
        } else if (kind == K_VAPI) {
            snprintf(tmp, sizeof tmp,
                     "message%%5Btype%%5D=end-of-call-report&message%%5Bcall%%5D%%5Bid%%5D=%s",
                     c->f->vapi_a);
            vapi_req(c, r, tmp, strlen(tmp), A_OK);
            rq_hdr(r, "Content-Type", "application/x-www-form-urlencoded");
        } else if (kind == K_LIMIT) {
            rq_init(r, "PUT", "/admin/limit");
            bearer(r, ADMIN_TOKEN, A_OK);
            rq_hdr(r, "Content-Type", "application/x-www-form-urlencoded");
            rq_body(r, "{\"limit\":5}", 11);
        } else {
            std_req(c, r, 0, A_OK);
            rq_hdr(r, "Content-Type",
                   kind == K_PQ ? "application/x-www-form-urlencoded" : "application/json");
            rq_body(r, kind == K_PQ ? "limit=5" : "{}", kind == K_PQ ? 7 : 2);
        }
        break;
    case R_CT_NONE:
    case R_CT_ODD: {
        const char *odd = row == R_CT_NONE ? "" : "application/x-www-form-urlencoded-evil";
        if (tw) {
            o.ctype = odd;
            tw_simple(c, r, 1, &o);
        } else if (kind == K_VAPI) {
            char *body = end_body(c->unknown_vapi, NULL);
            rq_init(r, "POST", "/call-ended");
            vapi_secret(r, A_OK);
            if (row == R_CT_ODD)
                rq_hdr(r, "Content-Type", "text/plain");
            rq_body(r, body, strlen(body));
            free(body);
        } else if (kind == K_LIMIT) {
            rq_init(r, "PUT", "/admin/limit");
            bearer(r, ADMIN_TOKEN, A_OK);
            if (row == R_CT_ODD)
                rq_hdr(r, "Content-Type", odd);
            rq_body(r, "limit=5", 7);
        } else {
            std_req(c, r, 0, A_OK);
            if (row == R_CT_ODD)
                rq_hdr(r, "Content-Type", "text/plain");
        }
        break;
    }
    case R_PCT_ZZ:
    case R_PCT_SHORT:
    case R_PCT_NUL: {
        const char *bad = row == R_PCT_ZZ ? "%zz" : row == R_PCT_SHORT ? "%4" : "%00";
        if (tw) {
            snprintf(tmp, sizeof tmp, "&From=a%s", bad);
            o.suffix = tmp;
            tw_simple(c, r, 1, &o);
        } else {
            bad_pct(c, r, bad);
        }
        break;
    }
    case R_DUP_SIGNED:
        if (tw) {
            /* Both CallSids signed, as Twilio would sign them: the gate
             * reads the first, the unknown one, and must leave the second,
             * a protected caller, alone. */
            tw_form(c, &sent, c->fresh, 1);
            cg_form_add(&sent, "CallSid", protected_victim(c));
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            snprintf(tmp, sizeof tmp,
                     "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":\"%s\"},"
                     "\"call\":{\"id\":\"%s\"}}}",
                     c->unknown_vapi, c->f->vapi_a);
            vapi_req(c, r, tmp, strlen(tmp), A_OK);
        } else if (kind == K_LIMIT) {
            rq_init(r, "PUT", "/admin/limit");
            bearer(r, ADMIN_TOKEN, A_OK);
            rq_hdr(r, "Content-Type", "application/json");
            rq_body(r, "{\"limit\":1,\"limit\":5}", 21);
        } else {
            std_req(c, r, 0, A_OK);
            if (c->e == E_GQT) {
                snprintf(tmp, sizeof tmp, "queueSid=%s", c->f->q1);
                rq_param(r, tmp);
            } else if (c->e == E_WT) {
                rq_param(r, "name=Queue%201&name=nope");
            } else {
                rq_param(r, "a=1&a=2");
            }
        }
        break;
    case R_DUP_UNSIGNED:
        if (tw) {
            /* Signed with one CallSid; a second one is put in front. */
            tw_form(c, &over, c->fresh, 1);
            tw_form(c, &sent, c->fresh, 1);
            form_prepend(&sent, "CallSid", protected_victim(c));
            o.signed_over = &over;
            tw_req(c, r, &sent, &o);
        } else {
            std_req(c, r, 1, A_DUP);
        }
        break;
    case R_BODY_HUGE: {
        char *pad = repeat('a', MAX_BODY + 4500);
        if (tw) {
            snprintf(tmp, sizeof tmp, "&Pad=");
            struct cg_buf b;
            cg_buf_init(&b, CG_BUF_UNBOUNDED);
            cg_buf_appends(&b, tmp);
            cg_buf_appends(&b, pad);
            o.suffix = cg_buf_str(&b);
            tw_simple(c, r, 1, &o);
            cg_buf_free(&b);
        } else {
            std_req(c, r, 1, A_OK);
            rq_body(r, pad, strlen(pad));
        }
        free(pad);
        break;
    }
    case R_CHUNK_HUGE:
        if (tw)
            tw_simple(c, r, 1, &o);
        else
            std_req(c, r, 1, A_OK);
        {
            /* One chunk announced at twice the body limit. */
            char *pad = repeat('a', 1000);
            cg_buf_reset(&r->body);
            cg_buf_printf(&r->body, "%x\r\n%s", 2 * MAX_BODY, pad);
            r->has_body = 1;
            r->no_length = 1;
            rq_hdr(r, "Transfer-Encoding", "chunked");
            free(pad);
        }
        break;
    case R_HDR_431:
    case R_HDR_CEIL: {
        char *big = repeat('a', row == R_HDR_431 ? MAX_HEADER + 808 : 70000);
        if (tw)
            tw_simple(c, r, 0, &o);
        else
            std_req(c, r, 0, A_OK);
        rq_hdr(r, "X-Big", big);
        free(big);
        break;
    }
    case R_HDR_MANY:
        if (tw)
            tw_simple(c, r, 0, &o);
        else
            std_req(c, r, 0, A_OK);
        for (int i = 0; i < 2000; i++) {
            char name[16];
            snprintf(name, sizeof name, "X-H%04d", i);
            rq_hdr(r, name, "1");
        }
        break;
    case R_CL_NEG:
        if (tw)
            tw_simple(c, r, 0, &o);
        else
            std_req(c, r, 0, A_OK);
        r->no_length = 1;
        rq_hdr(r, "Content-Length", "-1");
        break;
    case R_CL_PLUS:
    case R_SMUGGLE_CL:
    case R_SMUGGLE_TE_CL:
    case R_SMUGGLE_TE_ODD:
    case R_SMUGGLE_WS: {
        /* A request a proxy in front could frame differently from evhttp,
         * on a kept-alive connection, with a second request hidden where
         * one of them sees body. */
        static const char smuggled[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        if (tw)
            tw_simple(c, r, 0, &o);
        else
            std_req(c, r, 0, A_OK);
        char *body = cg_strndup(r->body.data ? r->body.data : "", r->body.len);
        size_t blen = r->body.len;
        r->no_length = 1;
        r->keep_alive = 1;
        cg_buf_reset(&r->body);
        r->has_body = 1;
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "%zu", blen);
        snprintf(n2, sizeof n2, "%zu", blen + sizeof smuggled - 1);
        if (row == R_CL_PLUS) {
            snprintf(n2, sizeof n2, "+%zu", blen);
            rq_hdr(r, "Content-Length", n2);
            cg_buf_append(&r->body, body, blen);
        } else if (row == R_SMUGGLE_CL) {
            rq_hdr(r, "Content-Length", n1);
            rq_hdr(r, "Content-Length", n2);
            cg_buf_append(&r->body, body, blen);
            cg_buf_appends(&r->body, smuggled);
        } else if (row == R_SMUGGLE_TE_CL) {
            rq_hdr(r, "Transfer-Encoding", "chunked");
            snprintf(n2, sizeof n2, "%zu", 5 + sizeof smuggled - 1);
            rq_hdr(r, "Content-Length", n2);
            cg_buf_appends(&r->body, "0\r\n\r\n");
            cg_buf_appends(&r->body, smuggled);
        } else if (row == R_SMUGGLE_TE_ODD) {
            rq_hdr(r, "Transfer-Encoding", "identity");
            cg_buf_appends(&r->body, smuggled);
        } else {
            rq_hdr(r, "Transfer-Encoding ", "chunked");
            rq_hdr(r, "Content-Length", n1);
            cg_buf_append(&r->body, body, blen);
            cg_buf_appends(&r->body, smuggled);
        }
        free(body);
        break;
    }
    case R_PLAIN:
    case R_NUL_HDR:
    case R_CR_HDR:
    case R_LF_HDR:
    case R_BARE_LF:
    case R_OBS_FOLD:
    case R_CHUNK_0X:
    case R_CHUNK_PLUS:
    case R_CHUNK_SP:
    case R_CHUNK_JUNK:
    case R_CHUNK_EXT:
    case R_TE_10:
    case R_TE_GZIP:
    case R_TE_LAST:
    case R_CL_TWICE:
    case R_CL_HEX:
    case R_HOST_NONE:
    case R_HOST_TWO:
    case R_HOST_BAD:
    case R_NAME_TOKEN:
    case R_CONN_CLOSE:
    case R_10_CLOSE: {
        /* The framing rules of RFC 9112, one per row, on a kept-alive
         * connection with a second request where a lenient reader would
         * find one: it must never be answered. */
        static const char smuggled[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        if (tw)
            tw_simple(c, r, 0, &o);
        else
            std_req(c, r, 0, A_OK);
        char *body = cg_strndup(r->body.data ? r->body.data : "", r->body.len);
        size_t blen = r->body.len;
        char n1[32], size[64];
        snprintf(n1, sizeof n1, "%zu", blen);
        r->keep_alive = 1;
        r->no_length = 1;
        r->has_body = 1;
        cg_buf_reset(&r->body);
        struct cg_buf *hd = &r->hdrs;
        const char *bad_size = row == R_CHUNK_0X     ? "0x%zx"
                               : row == R_CHUNK_PLUS ? "+%zx"
                               : row == R_CHUNK_SP   ? " %zx"
                                                     : "%zx junk";
        switch (row) {
        case R_PLAIN:
            rq_hdr(r, "Content-Length", n1);
            r->keep_alive = 0;
            break;
        case R_NUL_HDR:
            /* Cut at the NUL (as libevent did), the length leaves the
             * second request outside the body. */
            cg_buf_printf(hd, "Content-Length: %zu", blen);
            cg_buf_append(hd, "\0", 1);
            cg_buf_printf(hd, "%zu\r\n", sizeof smuggled - 1);
            break;
        case R_CR_HDR:
            rq_hdr(r, "Content-Length", n1);
            cg_buf_appends(hd, "X-Note: a\rTransfer-Encoding: chunked\r\n");
            break;
        case R_LF_HDR:
            rq_hdr(r, "Content-Length", n1);
            cg_buf_appends(hd, "X-Note: a\nTransfer-Encoding: chunked\r\n");
            break;
        case R_BARE_LF:
            rq_hdr(r, "Content-Length", n1);
            cg_buf_appends(hd, "X-Note: a\n");
            break;
        case R_OBS_FOLD:
            rq_hdr(r, "Content-Length", n1);
            cg_buf_appends(hd, "X-Note: a\r\n Transfer-Encoding: chunked\r\n");
            break;
        case R_CHUNK_0X:
        case R_CHUNK_PLUS:
        case R_CHUNK_SP:
        case R_CHUNK_JUNK:
            rq_hdr(r, "Transfer-Encoding", "chunked");
            snprintf(size, sizeof size, bad_size, blen);
            cg_buf_printf(&r->body, "%s\r\n", size);
            cg_buf_append(&r->body, body, blen);
            cg_buf_appends(&r->body, "\r\n0\r\n\r\n");
            blen = 0;
            break;
        case R_CHUNK_EXT:
            /* Legal: extensions (quoted values too) and trailers are
             * accepted and ignored; the body is what the chunks hold. */
            rq_hdr(r, "Transfer-Encoding", "chunked");
            if (blen > 0) {
                cg_buf_printf(&r->body, "%zx;ext=1;q=\"a;b \\\"c\\\"\"\r\n", blen);
                cg_buf_append(&r->body, body, blen);
                cg_buf_appends(&r->body, "\r\n");
            }
            cg_buf_appends(&r->body, "0;last\r\nX-Trailer: t\r\n\r\n");
            blen = 0;
            r->keep_alive = 0;
            break;
        case R_TE_10:
            r->version = "HTTP/1.0";
            rq_hdr(r, "Transfer-Encoding", "chunked");
            cg_buf_appends(&r->body, "0\r\n\r\n");
            blen = 0;
            break;
        case R_TE_GZIP:
        case R_TE_LAST:
            rq_hdr(r, "Transfer-Encoding", row == R_TE_GZIP ? "gzip, chunked" : "chunked, gzip");
            cg_buf_appends(&r->body, "0\r\n\r\n");
            blen = 0;
            break;
        case R_CL_TWICE:
            rq_hdr(r, "Content-Length", n1);
            rq_hdr(r, "Content-Length", n1);
            break;
        case R_CL_HEX:
            snprintf(size, sizeof size, "0x%zx", blen);
            rq_hdr(r, "Content-Length", size);
            break;
        case R_HOST_NONE:
            r->custom_host = 1;
            rq_hdr(r, "Content-Length", n1);
            break;
        case R_HOST_TWO:
            rq_hdr(r, "Host", "127.0.0.1");
            rq_hdr(r, "Host", "127.0.0.1");
            rq_hdr(r, "Content-Length", n1);
            break;
        case R_HOST_BAD:
            rq_hdr(r, "Host", "a b@c");
            rq_hdr(r, "Content-Length", n1);
            break;
        case R_NAME_TOKEN:
            rq_hdr(r, "Content-Length", n1);
            cg_buf_appends(hd, "X(A): 1\r\n");
            break;
        case R_CONN_CLOSE:
            rq_hdr(r, "Content-Length", n1);
            rq_hdr(r, "Connection", "keep-alive, close");
            break;
        default: /* R_10_CLOSE */
            r->version = "HTTP/1.0";
            rq_hdr(r, "Content-Length", n1);
            break;
        }
        cg_buf_append(&r->body, body, blen);
        if (row != R_PLAIN && row != R_CHUNK_EXT)
            cg_buf_appends(&r->body, smuggled);
        free(body);
        break;
    }
    case R_UTF8_BODY:
        if (tw) {
            o.suffix = "&From=%FF%FE";
            tw_simple(c, r, 1, &o);
        } else if (kind == K_VAPI) {
            const char *body = "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":"
                               "\"\xff\xfe\"}}}";
            vapi_req(c, r, body, strlen(body), A_OK);
        } else if (kind == K_LIMIT) {
            rq_init(r, "PUT", "/admin/limit");
            bearer(r, ADMIN_TOKEN, A_OK);
            rq_hdr(r, "Content-Type", "application/json");
            rq_body(r, "{\"limit\":\"\xff\"}", 13);
        } else if (kind == K_PQ) {
            std_req(c, r, 0, A_OK);
            rq_hdr(r, "Content-Type", "application/x-www-form-urlencoded");
            rq_body(r, "\xff\xfe=\xff", 4);
        } else {
            std_req(c, r, 0, A_OK);
            rq_param(r, "x=%FF%FE");
        }
        break;
    case R_UTF8_HDR:
        if (tw) {
            o.sig = "\xff\xfe\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
                    "\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99";
            tw_simple(c, r, 1, &o);
        } else {
            std_req(c, r, 1, A_UTF8);
        }
        break;
    case R_UTF8_PATH:
    case R_TARGET_ABS: {
        if (tw)
            tw_simple(c, r, 1, &o);
        else
            std_req(c, r, 0, A_OK);
        /* "/path%FF%FE?query", or "http://evil.example/path?query": Twilio
         * signs origin-form URLs only, so the latter is never signed. */
        char *t = cg_strdup(cg_buf_str(&r->target));
        size_t plen = strcspn(t, "?");
        cg_buf_reset(&r->target);
        if (row == R_TARGET_ABS)
            cg_buf_appends(&r->target, "http://evil.example");
        cg_buf_append(&r->target, t, plen);
        if (row == R_UTF8_PATH)
            cg_buf_appends(&r->target, "%FF%FE");
        cg_buf_appends(&r->target, t + plen);
        free(t);
        break;
    }
    case R_M_GET:
    case R_M_PUT:
    case R_M_DELETE:
    case R_M_PATCH:
    case R_M_OPTIONS:
    case R_M_TRACE:
    case R_M_BREW: {
        static const char *const names[] = {"GET",     "PUT",   "DELETE", "PATCH",
                                            "OPTIONS", "TRACE", "BREW"};
        struct cg_buf t;
        cg_buf_init(&t, CG_BUF_UNBOUNDED);
        default_target(c, &t);
        rq_init(r, names[row - R_M_GET], cg_buf_str(&t));
        cg_buf_free(&t);
        break;
    }
    case R_JSON_TYPE:
    case R_JSON_OBJ:
    case R_JSON_ARR:
    case R_JSON_NULL: {
        const char *vapi, *limit;
        json_row(row, c, &vapi, &limit, tmp, sizeof tmp);
        json_everywhere(c, r, vapi, limit);
        break;
    }
    case R_JSON_DEEP: {
        char *deep = repeat('[', 10000);
        json_everywhere(c, r, deep, deep);
        free(deep);
        break;
    }
    case R_NUM_INF:
    case R_NUM_NEG:
    case R_NUM_BIG: {
        const char *num = row == R_NUM_INF   ? "1e999"
                          : row == R_NUM_NEG ? "-1"
                                             : "9223372036854775808";
        if (tw) {
            /* Correctly signed, about callers the request leaves alone. */
            tw_form(c, &sent, tw_sid(c, 0), 0);
            form_set(&sent, "QueueTime", num);
            form_set(&sent, "QueuePosition", num);
            form_set(&sent, "Duration", num);
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            /* -1 is a valid number: then the id is one nobody knows. */
            snprintf(tmp, sizeof tmp, "\"timestamp\":%s,\"cost\":%s", num, num);
            char *body = end_body(row == R_NUM_NEG ? c->unknown_vapi : c->f->vapi_a, tmp);
            vapi_req(c, r, body, strlen(body), A_OK);
            free(body);
        } else if (kind == K_LIMIT) {
            snprintf(tmp, sizeof tmp, "{\"limit\":%s}", num);
            json_everywhere(c, r, tmp, tmp);
        } else {
            std_req(c, r, 0, A_OK);
            snprintf(tmp, sizeof tmp, "n=%s", num);
            rq_param(r, tmp);
        }
        break;
    }
    case R_LONG: {
        char *l = repeat('A', 20000);
        if (tw) {
            tw_form(c, &sent, tw_sid(c, 0), 0);
            if (c->e == E_QX) {
                form_set(&sent, "QueueResult", l);
            } else if (c->e == E_CS) {
                form_set(&sent, "CallStatus", l);
            } else {
                form_set(&sent, "From", l);
                form_set(&sent, "To", l);
            }
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            struct cg_buf x;
            cg_buf_init(&x, CG_BUF_UNBOUNDED);
            cg_buf_printf(&x, "\"status\":\"%s\"", l);
            char *body = end_body(l, cg_buf_str(&x));
            vapi_req(c, r, body, strlen(body), A_OK);
            free(body);
            cg_buf_free(&x);
        } else if (kind == K_LIMIT) {
            struct cg_buf x;
            cg_buf_init(&x, CG_BUF_UNBOUNDED);
            cg_buf_printf(&x, "{\"limit\":\"%s\"}", l);
            json_everywhere(c, r, cg_buf_str(&x), cg_buf_str(&x));
            cg_buf_free(&x);
        } else if (c->e == E_WTS) {
            std_req(c, r, 0, A_OK);
            cg_buf_reset(&r->target);
            cg_buf_printf(&r->target, "/wait-times/%s", l);
        } else {
            std_req(c, r, 0, A_OK);
            struct cg_buf x;
            cg_buf_init(&x, CG_BUF_UNBOUNDED);
            cg_buf_printf(&x, "%s=%s", c->e == E_GQT ? "queueSid" : c->e == E_WT ? "name" : "x", l);
            if (c->e == E_GQT) {
                cg_buf_reset(&r->target);
                cg_buf_appends(&r->target, "/get-queue-times");
            }
            rq_param(r, cg_buf_str(&x));
            cg_buf_free(&x);
        }
        free(l);
        break;
    }
    case R_UNKNOWN:
        if (tw) {
            tw_form(c, &sent, c->fresh, 1);
            tw_req(c, r, &sent, &o);
        } else if (c->e == E_GQT || c->e == E_WTS) {
            std_req(c, r, 0, A_OK);
            cg_buf_reset(&r->target);
            cg_buf_printf(&r->target,
                          c->e == E_GQT ? "/get-queue-times?queueSid=%s" : "/wait-times/%s",
                          "WQffffffffffffffffffffffffffffffff");
        } else if (c->e == E_WT) {
            std_req(c, r, 0, A_OK);
            rq_param(r, "name=No%20such%20queue");
        } else {
            std_req(c, r, 0, A_OK);
        }
        break;
    case R_BAD_SID:
        if (tw) {
            /* Correctly signed, but not a CallSid. */
            tw_form(c, &sent, "CA' OR '1'='1", 1);
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            char *body = end_body("../../x?y#z%25{default}*", NULL);
            vapi_req(c, r, body, strlen(body), A_OK);
            free(body);
        } else if (kind == K_WT) {
            std_req(c, r, 0, A_OK);
            cg_buf_reset(&r->target);
            if (c->e == E_GQT)
                cg_buf_appends(&r->target,
                               "/get-queue-times?queueSid=WQgggggggggggggggggggggggggggggggg");
            else if (c->e == E_WTS)
                cg_buf_appends(&r->target, "/wait-times/wq00000000000000000000000000000001x");
            else
                cg_buf_appends(&r->target, "/wait-times?name=..%2F..%2Fx");
        } else {
            std_req(c, r, 0, A_OK);
        }
        break;
    case R_MISSING:
        if (tw) {
            /* Only the CallSid: /incoming and /queue-wait need no more;
             * the callbacks need their QueueResult or CallStatus. */
            cg_form_add(&sent, "CallSid", tw_sid(c, 0));
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            const char *body = "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{}}}";
            vapi_req(c, r, body, strlen(body), A_OK);
        } else if (kind == K_LIMIT) {
            json_everywhere(c, r, "{}", "{}");
        } else {
            std_req(c, r, 0, A_OK);
            if (c->e == E_GQT) {
                cg_buf_reset(&r->target);
                cg_buf_appends(&r->target, "/get-queue-times");
            } else if (c->e == E_WTS) {
                cg_buf_reset(&r->target);
                cg_buf_appends(&r->target, "/wait-times/");
            }
        }
        break;
    case R_EMPTY:
        if (tw) {
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            vapi_req(c, r, "", 0, A_OK);
        } else if (kind == K_LIMIT) {
            json_everywhere(c, r, "", "");
        } else {
            std_req(c, r, 0, A_OK);
            rq_body(r, "", 0);
        }
        break;
    case R_INJ:
        if (tw) {
            /* Correctly signed: a caller controls these values. */
            tw_form(c, &sent, c->e == E_INC ? c->fresh : tw_sid(c, 0), 0);
            if (c->e == E_QX) {
                form_set(&sent, "QueueResult", INJ);
            } else if (c->e == E_CS) {
                form_set(&sent, "CallStatus", INJ);
            } else {
                form_set(&sent, "From", INJ);
                form_set(&sent, "To", INJ);
            }
            tw_req(c, r, &sent, &o);
        } else if (kind == K_VAPI) {
            char *body = end_body(INJ, "\"status\":\"</Say>\\\"'&<>\\r\\n\"");
            vapi_req(c, r, body, strlen(body), A_OK);
            free(body);
        } else if (kind == K_LIMIT) {
            char *body = end_body(INJ, NULL);
            json_everywhere(c, r, body, "{\"limit\":\"</Say><Dial>+1900</Dial>\\\"'&<>\"}");
            free(body);
        } else {
            char *enc = cg_pct_encode(INJ, strlen(INJ));
            std_req(c, r, 0, A_OK);
            if (c->e == E_WTS) {
                cg_buf_reset(&r->target);
                cg_buf_printf(&r->target, "/wait-times/%s", enc);
            } else if (c->e == E_GQT) {
                cg_buf_reset(&r->target);
                cg_buf_printf(&r->target, "/get-queue-times?queueSid=%s", enc);
            } else {
                snprintf(tmp, sizeof tmp, "%s=%s", c->e == E_WT ? "name" : "x", enc);
                rq_param(r, tmp);
                if (kind == K_PQ)
                    rq_hdr(r, "X-Inj", "</Say><Dial>+1900</Dial>\"'&<>");
            }
            free(enc);
        }
        break;
    case R_INJ_NUL:
        if (tw) {
            o.suffix = "&From=%3C%2FSay%3E%00%3CDial%3E";
            tw_simple(c, r, 1, &o);
        } else if (kind == K_VAPI) {
            const char *body =
                "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":\"a\\u0000b\"}}}";
            vapi_req(c, r, body, strlen(body), A_OK);
        } else if (kind == K_LIMIT) {
            json_everywhere(c, r, "{}", "{\"limit\":\"5\\u0000\"}");
        } else {
            std_req(c, r, 0, A_OK);
            rq_param(r, c->e == E_WT ? "name=a%00b" : "x=a%00b");
        }
        break;
    case NROWS:
        break;
    }
    cg_form_free(&sent);
    cg_form_free(&over);
}

/* ---- checks of the answers ---- */

/* Verbs callgate writes itself (the overflow action here is the message). */
static int verb_allowed(enum sim_twiml_kind k)
{
    return k == SIM_TW_ENQUEUE || k == SIM_TW_SAY || k == SIM_TW_PLAY || k == SIM_TW_PAUSE ||
           k == SIM_TW_LEAVE || k == SIM_TW_HANGUP;
}

static void verbs_text(const struct sim_twiml *t, char *out, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < t->n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s", i ? "," : "", sim_twiml_kind_name(t->verbs[i].kind));
    }
}

static void check_body(struct fixture *f, const struct ctx *c, enum row_id row, const struct raw *r,
                       const char *cell)
{
    char *ct = head_header(r->head, "Content-Type");
    const char *type = ct ? ct : "";
    if (strncmp(type, "application/json", 16) == 0) {
        json_error_t je;
        json_t *j = json_loadb(r->body, r->len, 0, &je);
        must(f, json_is_object(j), "%s: JSON body does not parse (%s): %.300s", cell, je.text,
             r->body);
        if (r->status >= 400) {
            must(f,
                 json_integer_value(json_object_get(j, "status")) == r->status &&
                     json_is_string(json_object_get(j, "error")),
                 "%s: error body %.300s", cell, r->body);
        }
        if (c->e == E_CE && r->status == 200) {
            const char *res = json_string_value(json_object_get(j, "result"));
            must(f, json_is_true(json_object_get(j, "ok")) && res != NULL, "%s: %.300s", cell,
                 r->body);
            /* A Vapi message the gate accepts must never release anyone. */
            must(f, strcmp(res, "unknown") == 0 || strcmp(res, "ignored") == 0,
                 "%s: /call-ended result %s", cell, res);
        }
        json_decref(j);
    } else if (strncmp(type, "text/xml", 8) == 0) {
        struct sim_twiml t;
        char err[256];
        must(f, sim_twiml_parse(r->body, r->len, &t, err, sizeof err) == 0,
             "%s: TwiML does not parse (%s): %.500s", cell, err, r->body);
        char verbs[256];
        verbs_text(&t, verbs, sizeof verbs);
        for (size_t i = 0; i < t.n; i++)
            must(f, verb_allowed(t.verbs[i].kind), "%s: TwiML holds %s: %.500s", cell, verbs,
                 r->body);
        if (row == R_INJ || row == R_UNKNOWN || row == R_MISSING) {
            /* The exact documents: Enqueue for an arrival, hold music for a
             * waiting caller, nothing for callbacks about other results. */
            const char *want = c->e == E_INC ? "Enqueue" : c->e == E_QW ? "Play" : "";
            /* A transfer that failed (busy) gets the transfer-failed message. */
            if (c->e == E_TS && row == R_UNKNOWN)
                want = "Say,Hangup";
            /* Callbacks are off in this gate: the keypad keeps holding;
             * a leg of no known callback is hung up on; a caller who
             * would wait in an unknown callback's place enters as new. */
            if (c->e == E_CBK || c->e == E_CBN || c->e == E_CBC)
                want = "Play";
            else if (c->e == E_CBA || (c->e == E_CBP && row != R_UNKNOWN))
                want = "Hangup";
            else if (c->e == E_CBP)
                want = "Enqueue";
            must(f, strcmp(verbs, want) == 0, "%s: verbs [%s], wanted [%s]: %.500s", cell, verbs,
                 want, r->body);
            if (c->e == E_INC) {
                char act[160];
                snprintf(act, sizeof act, "%s/queue-exit", f->g[0].base);
                must(f,
                     strcmp(t.verbs[0].text, QUEUE_NAME) == 0 &&
                         strcmp(t.verbs[0].action, act) == 0,
                     "%s: Enqueue %s / %s", cell, t.verbs[0].text, t.verbs[0].action);
            }
            if (c->e == E_QW)
                must(f, strcmp(t.verbs[0].text, HOLD_URL) == 0, "%s: Play %s", cell,
                     t.verbs[0].text);
        }
        sim_twiml_free(&t);
    } else if (r->status == 200) {
        /* Every 200 is JSON or TwiML, but for the Prometheus text, the
         * event stream, the wallboard's page and the interval report. */
        must(f,
             (c->e == E_MET && strncmp(type, "text/plain", 10) == 0) ||
                 (c->e == E_EVT && strncmp(type, "text/event-stream", 17) == 0) ||
                 (c->e == E_WB && strncmp(type, "text/html", 9) == 0) ||
                 (c->e == E_INTV && strncmp(type, "text/csv", 8) == 0),
             "%s: 200 with Content-Type %s", cell, type);
    }
    if (r->status == 200 && eps[c->e].kind == K_TW)
        must(f, strncmp(type, "text/xml", 8) == 0, "%s: Twilio got %s", cell, type);
    free(ct);
}

static long health_status(struct fixture *f)
{
    struct rq r;
    rq_init(&r, "GET", "/health");
    size_t len;
    char *bytes = rq_bytes(&r, f->g[0].port, &len);
    struct raw resp;
    raw_exchange(f->g[0].port, bytes, len, 0, &resp);
    long st = resp.status;
    raw_free(&resp);
    free(bytes);
    rq_free(&r);
    return st;
}

static long results[NROWS][NEP];

static void run_cell(struct fixture *f, enum row_id row, enum ep_id e)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.f = f;
    c.e = e;
    new_sid(c.fresh);
    new_sid(c.fresh2);
    snprintf(c.unknown_vapi, sizeof c.unknown_vapi, "0bad0000-0000-4000-8000-%012x", sid_counter);
    int want = rows[row].expect[e];
    int counted = want >= RC;
    if (counted)
        want -= RC;
    int may_call = want >= CO;
    if (may_call)
        want -= CO;
    int may_change = want >= CH;
    if (may_change)
        want -= CH;
    /* For CO: the call's member, once its id is known ("o:-" before). */
    char call[48] = "o:-";
    char cell[160];
    snprintf(cell, sizeof cell, "[%s] x %s", rows[row].name, eps[e].name);

    const char *skip = may_change ? c.fresh : may_call ? call : counted ? ROUTE_COUNTS : NULL;
    char *before = dump_state(f, skip);
    struct rq r;
    build_request(&c, row, &r);
    size_t len;
    char *bytes = rq_bytes(&r, f->g[0].port, &len);
    struct raw resp;
    /* A stream (/events) holds its connection for as long as it lasts:
     * nothing behind it is read as a request meanwhile, so its answer is
     * read up to the head and first event, never drained to the close. */
    raw_exchange(f->g[0].port, bytes, len, r.keep_alive && e != E_EVT, &resp);
    results[row][e] = resp.status;
    must(f, resp.status == want, "%s: status %ld, wanted %d: %.400s", cell, resp.status, want,
         resp.body);
    /* The server answers with its own version, whatever the client's. */
    must(f, strncmp(resp.head, "HTTP/1.1 ", 9) == 0, "%s: answered %.12s", cell, resp.head);
    /* On a kept-alive connection: one answer, then the server closes; a
     * request smuggled in the body must never be answered. */
    must(f, resp.after == 0, "%s: %zu more bytes after the answer: %.300s", cell, resp.after,
         resp.body + resp.len);
    check_body(f, &c, row, &resp, cell);

    /* The process is alive and nothing changed but what the table allows. */
    must(f, health_status(f) == 200, "%s: /health does not answer 200 afterwards", cell);
    if (may_call) {
        /* The answer names the call: only it may have been added. */
        json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        must(f, id != NULL && strlen(id) == 32, "%s: no call id in %.300s", cell, resp.body);
        snprintf(call, sizeof call, "o:%s", id);
        json_decref(j);
    }
    skip = may_change ? c.fresh : may_call ? call : counted ? ROUTE_COUNTS : NULL;
    char *after = dump_state(f, skip);
    if (strcmp(before, after) != 0) {
        char *d = dump_diff(before, after);
        must(f, 0, "%s: state changed\n%s", cell, d);
    }
    assert_protected(f, cell);
    if (may_change) {
        /* The first CallSid is the one used: the fresh caller exists. */
        char *st = hget(f, c.fresh, "state");
        must(f, strcmp(st, "waiting") == 0, "%s: the fresh caller is %s", cell, st);
        free(st);
    }
    if (may_call) {
        /* It waits in the line behind the callers, for the one route. */
        char *st = hget(f, call, "state"), *rt = hget(f, call, "route");
        must(f,
             strcmp(st, "waiting") == 0 && strcmp(rt, "default") == 0 &&
                 zhas(f, "rq:default", call),
             "%s: the outbound call is %s on %s", cell, st, rt);
        free(st);
        free(rt);
    }
    must(f,
         cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE) == f->creates &&
             cgt_fake_count(f->fake, CGT_EP_TW_UPDATE) == f->updates,
         "%s: reached Vapi or Twilio", cell);
    free(before);
    free(after);
    raw_free(&resp);
    free(bytes);
    rq_free(&r);
}

static void print_results(void)
{
    printf("%-30s", "hostile request \\ endpoint");
    for (int e = 0; e < NEP; e++)
        printf(" %5.5s", eps[e].name + 1);
    printf("\n");
    for (int row = 0; row < NROWS; row++) {
        printf("%-30.30s", rows[row].name);
        for (int e = 0; e < NEP; e++)
            printf(" %5ld", results[row][e]);
        printf("\n");
    }
    fflush(stdout);
}

/* ---- set-up: state to protect ---- */

static int group_setup(void **state)
{
    setup(state);
    struct fixture *f = *state;
    f->env = hostile_env;
    f->callgate_defaults = 1;
    struct cgt_tr_opts to = {
        .account_sid = ACCOUNT_SID, .auth_token = AUTH_TOKEN, .workspace_sid = WS, .nqueues = 2};
    f->tr = cgt_tr_start(&to);
    cgt_tr_sid(0, f->q0);
    cgt_tr_sid(1, f->q1);
    struct timeval tv = {.tv_sec = 5};
    f->rc = redisConnectWithTimeout("127.0.0.1", f->rs.port, tv);
    if (f->rc == NULL || f->rc->err)
        fail_msg("cannot connect to redis");
    snprintf(f->trbase, sizeof f->trbase, "TASKROUTER_BASE_URL=%s", cgt_tr_url(f->tr));
    start_gate(f, 0, (const char *const[]){f->trbase, NULL});

    /* A: connected through the fast path. */
    new_sid(f->a);
    struct cgt_resp r;
    setup_incoming(f, f->a, &r);
    must(f, r.status == 200, "/incoming for A answered %ld", r.status);
    cgt_resp_free(&r);
    wait_state(f, f->a, "connected", 10000);
    f->vapi_a = cgt_fake_vapi_id(f->fake, f->a);
    must(f, f->vapi_a != NULL, "no Vapi call for A");
    /* W1-W3: waiting, each announced once. */
    struct cg_buf members;
    cg_buf_init(&members, CG_BUF_UNBOUNDED);
    cg_buf_appendc(&members, '[');
    for (int i = 0; i < 3; i++) {
        new_sid(f->w[i]);
        setup_incoming(f, f->w[i], &r);
        must(f, r.status == 200 && strstr(r.body, "<Enqueue") != NULL, "/incoming W%d: %ld %s",
             i + 1, r.status, r.body);
        cgt_resp_free(&r);
        struct cg_form form;
        cg_form_init(&form);
        form_kv(&form, (const char *const[]){"CallSid", f->w[i], "AccountSid", ACCOUNT_SID,
                                             "QueueSid", QUEUE_SID, "QueueTime", "1", NULL});
        must(f, signed_post(f, "/queue-wait", &form, &r) == 200, "/queue-wait W%d", i + 1);
        cgt_resp_free(&r);
        cg_form_free(&form);
        cg_buf_printf(&members, "%s{\"call_sid\":\"%s\",\"position\":%d,\"queue_sid\":\"%s\"}",
                      i ? "," : "", f->w[i], i + 1, QUEUE_SID);
    }
    cg_buf_appendc(&members, ']');
    /* An outbound call in the line, behind them: the limit is full. */
    {
        char url[160];
        snprintf(url, sizeof url, "%s/calls/outbound", f->g[0].base);
        const char *h[] = {"Authorization: Bearer " ADMIN_TOKEN, "Content-Type: application/json",
                           NULL};
        cgt_http("POST", url, h, OUT_BODY, strlen(OUT_BODY), &r);
        must(f, r.status == 202, "/calls/outbound answered %ld: %s", r.status, r.body);
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        must(f, id != NULL && strlen(id) < sizeof f->out_id, "no outbound id: %s", r.body);
        snprintf(f->out_id, sizeof f->out_id, "%s", id);
        json_decref(j);
        cgt_resp_free(&r);
    }
    /* Should reconciliation run after all, Twilio holds the same callers. */
    cgt_fake_set_queue_members(f->fake, cg_buf_str(&members));
    cg_buf_free(&members);
    /* The wait-time service has its figures. */
    char url[256];
    snprintf(url, sizeof url, "%s/get-queue-times?queueSid=%s&token=%s", f->g[0].base, f->q0,
             READ_TOKEN);
    must(f, cgt_wait_status(url, 200, 15000) == 0, "no wait times");
    /* Whatever the set-up started has settled. */
    cgt_sleep_ms(300);
    assert_protected(f, "set-up");
    f->creates = cgt_fake_count(f->fake, CGT_EP_VAPI_CREATE);
    f->updates = cgt_fake_count(f->fake, CGT_EP_TW_UPDATE);
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    if (f->g[0].proc.pid > 0)
        cgt_stop(&f->g[0].proc, SIGKILL, 1000);
    if (f->rc != NULL)
        redisFree(f->rc);
    free(f->vapi_a);
    cgt_tr_stop(f->tr);
    return teardown(state);
}

/* ---- the tests ---- */

static void test_hostile_table(void **state)
{
    struct fixture *f = *state;
    for (int row = 0; row < NROWS; row++)
        for (int e = 0; e < NEP; e++)
            run_cell(f, (enum row_id)row, (enum ep_id)e);
    print_results();
    /* Nothing the table sent starts work that lands later. */
    char *before = dump_state(f, NULL);
    cgt_sleep_ms(500);
    char *after = dump_state(f, NULL);
    if (strcmp(before, after) != 0) {
        char *d = dump_diff(before, after);
        must(f, 0, "state changed after the table\n%s", d);
    }
    free(before);
    free(after);
    assert_protected(f, "after the table");
}

/* A connection that sends its request a byte at a time. */
struct slow {
    char name[64];
    int fd;
    struct cg_buf script; /* the bytes to send; endless ones are long */
    size_t pos;
    uint64_t opened_ms, closed_ms;
    int closed;
};

static void slow_open(struct fixture *f, struct slow *s, const char *name, const char *fast,
                      const char *trickle)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->fd = h_connect(f->g[0].port);
    s->opened_ms = cgt_now_ms();
    cg_buf_init(&s->script, CG_BUF_UNBOUNDED);
    cg_buf_appends(&s->script, trickle);
    if (fast != NULL && fast[0] != '\0') {
        ssize_t n = send(s->fd, fast, strlen(fast), MSG_NOSIGNAL);
        assert_true(n == (ssize_t)strlen(fast));
    }
}

/* Reads what the server sent; notes when it closed the connection. */
static void slow_poll_one(struct slow *s, short revents)
{
    if (s->closed || !(revents & (POLLIN | POLLHUP | POLLERR)))
        return;
    char buf[4096];
    ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0)
        return; /* an answer to an earlier, complete request */
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    s->closed = 1;
    s->closed_ms = cgt_now_ms();
}

static void test_slow_clients(void **state)
{
    struct fixture *f = *state;
    char *before = dump_state(f, NULL);
    enum { NSLOW = NEP + 3 };
    struct slow slow[NSLOW];
    char line[256];
    struct cg_buf endless;
    cg_buf_init(&endless, CG_BUF_UNBOUNDED);
    for (int i = 0; i < 2000; i++)
        cg_buf_printf(&endless, "X-Slow-%04d: a\r\n", i);
    /* Request line and headers trickled, never finished, to every path. */
    for (int e = 0; e < NEP; e++) {
        struct ctx c = {.f = f, .e = (enum ep_id)e};
        struct cg_buf t, s;
        cg_buf_init(&t, CG_BUF_UNBOUNDED);
        cg_buf_init(&s, CG_BUF_UNBOUNDED);
        default_target(&c, &t);
        cg_buf_printf(&s, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s",
                      eps[e].kind == K_PUB || eps[e].kind == K_WT || eps[e].kind == K_ADM ? "GET"
                                                                                          : "POST",
                      cg_buf_str(&t), cg_buf_str(&endless));
        slow_open(f, &slow[e], eps[e].name, NULL, cg_buf_str(&s));
        cg_buf_free(&t);
        cg_buf_free(&s);
    }
    /* Headers at once, then the body a byte at a time. */
    snprintf(line, sizeof line,
             "POST /incoming HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
             "application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n");
    char *body = repeat('a', 60000);
    slow_open(f, &slow[NEP], "slow body", line, body);
    free(body);
    /* A quick first request, then a slow second one on the same connection. */
    snprintf(line, sizeof line, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    struct cg_buf second;
    cg_buf_init(&second, CG_BUF_UNBOUNDED);
    cg_buf_printf(&second, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", cg_buf_str(&endless));
    slow_open(f, &slow[NEP + 1], "keep-alive, then slow", line, cg_buf_str(&second));
    cg_buf_free(&second);
    /* Connected, silent. */
    slow_open(f, &slow[NEP + 2], "idle", NULL, "");
    cg_buf_free(&endless);

    /* A byte every 100 ms on each; others are served all along. Upper
     * bound for all to be cut off: well past the timeout. */
    const uint64_t bound_ms = (uint64_t)(3 * TIMEOUT_S + 4) * 1000;
    uint64_t start = cgt_now_ms();
    int open_left = NSLOW, tick = 0;
    while (open_left > 0 && cgt_now_ms() - start < bound_ms) {
        for (int i = 0; i < NSLOW; i++) {
            struct slow *s = &slow[i];
            if (s->closed || s->pos >= s->script.len)
                continue;
            ssize_t n = send(s->fd, s->script.data + s->pos, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n == 1) {
                s->pos++;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                s->closed = 1;
                s->closed_ms = cgt_now_ms();
            }
        }
        struct pollfd pfd[NSLOW];
        for (int i = 0; i < NSLOW; i++) {
            pfd[i].fd = slow[i].closed ? -1 : slow[i].fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        poll(pfd, NSLOW, 100);
        open_left = 0;
        for (int i = 0; i < NSLOW; i++) {
            slow_poll_one(&slow[i], pfd[i].revents);
            open_left += !slow[i].closed;
        }
        if (++tick % 3 == 0)
            must(f, health_status(f) == 200, "/health not served while slow clients hang on");
    }
    for (int i = 0; i < NSLOW; i++) {
        struct slow *s = &slow[i];
        if (s->closed)
            printf("slow client %-24s cut off after %llu ms (%zu bytes sent)\n", s->name,
                   (unsigned long long)(s->closed_ms - s->opened_ms), s->pos);
        else
            printf("slow client %-24s still open after %llu ms (%zu bytes sent)\n", s->name,
                   (unsigned long long)(cgt_now_ms() - s->opened_ms), s->pos);
    }
    fflush(stdout);
    int still_open = 0;
    for (int i = 0; i < NSLOW; i++) {
        still_open += !slow[i].closed;
        close(slow[i].fd);
        cg_buf_free(&slow[i].script);
    }
    must(f, still_open == 0, "%d slow clients were never cut off (HTTP_TIMEOUT_SECONDS=%d)",
         still_open, TIMEOUT_S);
    must(f, health_status(f) == 200, "/health after the slow clients");
    char *after = dump_state(f, NULL);
    if (strcmp(before, after) != 0) {
        char *d = dump_diff(before, after);
        must(f, 0, "slow clients changed state\n%s", d);
    }
    free(before);
    free(after);
    assert_protected(f, "after the slow clients");
}

/* Every line of callgate's output is a JSON object (its log format): no
 * value broke a line, and nothing else (libevent) wrote there. Returns the
 * number of lines. */
static int log_json_lines(struct fixture *f)
{
    char *out = cgt_proc_output(&f->g[0].proc);
    int lines = 0;
    for (char *line = out; line != NULL && *line != '\0';) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        json_error_t je;
        json_t *j = json_loadb(line, len, 0, &je);
        if (!json_is_object(j)) {
            fprintf(stderr, "log line %d is not a JSON object (%s): %.*s\n", lines + 1, je.text,
                    (int)(len > 400 ? 400 : len), line);
            free(out);
            fail_msg("callgate's log is not JSON lines");
        }
        json_decref(j);
        lines++;
        line = end ? end + 1 : NULL;
    }
    free(out);
    return lines;
}

/* The process survived all of it and exits cleanly (the sanitizer build
 * fails the exit on a leak or an error). */
static void test_clean_exit(void **state)
{
    struct fixture *f = *state;
    assert_protected(f, "before exit");
    int rc = cgt_stop(&f->g[0].proc, SIGTERM, 10000);
    must(f, rc == 0, "callgate exited with %d", rc);
    assert_int_equal(cgt_fake_count(f->fake, CGT_EP_UNAUTHORIZED), 0);
    /* Every hostile value that reached the log (paths with CR LF and
     * invalid UTF-8, forged ids) left it one JSON object per line. */
    assert_true(log_json_lines(f) > 100);
}

/* CPU time (user + system, clock ticks) the process has used. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses. */
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    long long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime, &stime) != 2)
        return -1;
    return utime + stime;
}

/*
 * A connection flood past the process's descriptor limit: accept() fails
 * (EMFILE) while connections wait in the backlog. callgate must pause
 * accepting instead of retrying in a busy loop (which burnt a whole CPU and
 * wrote a libevent warning to stderr per retry), and serve again once
 * descriptors are free.
 */
static void test_descriptor_exhaustion(void **state)
{
    struct fixture *f = *state;
    if (cgt_under_valgrind()) {
        /* valgrind keeps descriptors of its own below the limit. */
        skip();
    }
    struct rlimit saved, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = 64;
    /* The child inherits the lowered limit; this process gets its own back
     * at once. A gate of its own name, on a queue of its own, leaves the
     * table's state alone. */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    spawn_gate(f, 0,
               (const char *const[]){f->trbase, "GATE_NAME=fd-limit", "TWILIO_QUEUE_NAME=fd-limit",
                                     "-TWILIO_WORKSPACE_SID", "-TWILIO_QUEUE_SID", NULL});
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    char health[128];
    url_of(f, 0, "/health", health, sizeof health);
    must(f, cgt_wait_status(health, 200, 15000) == 0, "callgate did not become healthy");

    enum { NCONN = 120 };
    int fds[NCONN];
    for (int i = 0; i < NCONN; i++)
        fds[i] = h_connect(f->g[0].port);
    cgt_sleep_ms(300);
    long long t0 = cpu_ticks(f->g[0].proc.pid);
    cgt_sleep_ms(1000);
    long long t1 = cpu_ticks(f->g[0].proc.pid);
    long hz = sysconf(_SC_CLK_TCK);
    printf("at the descriptor limit: %lld ticks of CPU in 1 s (%ld ticks/s)\n", t1 - t0, hz);
    fflush(stdout);
    /* Upper bound: a busy loop uses the whole second. */
    must(f, t0 >= 0 && t1 - t0 < hz / 2, "callgate spins at the descriptor limit: %lld ticks",
         t1 - t0);
    for (int i = 0; i < NCONN; i++)
        close(fds[i]);
    char url[128];
    snprintf(url, sizeof url, "%s/health", f->g[0].base);
    must(f, cgt_wait_status(url, 200, 10000) == 0, "no /health after the flood");
    int rc = cgt_stop(&f->g[0].proc, SIGTERM, 10000);
    must(f, rc == 0, "callgate exited with %d", rc);
    char *out = cgt_proc_output(&f->g[0].proc);
    int hit = strstr(out, "http accept failed") != NULL;
    free(out);
    must(f, hit, "the flood never reached the descriptor limit");
    log_json_lines(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_table),
        cmocka_unit_test(test_slow_clients),
        cmocka_unit_test(test_clean_exit),
        cmocka_unit_test(test_descriptor_exhaustion),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
