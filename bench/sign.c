/*
 * sign.c - cgbench-sign: writes files of ready-to-send HTTP/1.1 requests
 * for wrk (bench/reqs.lua) and cgbench-rate, separated by NUL bytes.
 *
 * Twilio webhooks carry what Twilio really sends (the voice webhook's 25
 * parameters, the <Enqueue> waitUrl and action parameters) and a valid
 * X-Twilio-Signature computed with callgate's own cg_twsig_compute() over
 * PUBLIC_URL + path: signing inside the load generator would measure the
 * generator, and reusing one request would send callgate down its
 * idempotent "known caller" branch instead of the enqueue path. Every
 * caller has a distinct CallSid: CA + 8 hex digits of a tag (one per
 * batch, so batches never collide) + 24 hex digits of the caller's index.
 *
 * Usage: cgbench-sign KIND --out FILE [options]
 *   incoming|queue-wait|queue-exit --count N [--start S] --tag T
 *   call-ended --count N [--start S]      Vapi end-of-call-report, unknown ids
 *   get PATH...                           one GET per path
 *   get-file FILE                         one GET per line of FILE
 *   scaling --queue Q --callers N --probe P --tag T --out PREFIX
 *       PREFIX.fill: N callers arrive, the oldest leaving so that at most
 *       Q wait at any time (Q wait at the end); PREFIX.probe: P times
 *       (oldest waiting caller hangs up, a new caller arrives, a random
 *       waiting caller polls /queue-wait), so the queue stays at Q.
 * Common: --public-url URL --token TWILIO_AUTH_TOKEN --secret VAPI_SECRET
 *         --host HOSTHEADER
 */
#include "base/fmacros.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/form.h"
#include "twilio/signature.h"

struct opts {
    const char *kind;
    const char *out;
    const char *public_url;
    const char *token;
    const char *secret;
    const char *host;
    unsigned long tag;
    long count, start, queue, callers, probe;
    const char **paths;
    int npaths;
};

static FILE *out_open(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "cgbench-sign: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    return f;
}

static void out_close(FILE *f, const char *path)
{
    if (ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "cgbench-sign: cannot write %s\n", path);
        exit(2);
    }
}

static void call_sid(char out[35], unsigned long tag, long i)
{
    snprintf(out, 35, "CA%08lx%024lx", tag & 0xffffffffUL, (unsigned long)i);
}

/* A US number derived from the caller's index, so callers differ. */
static void phone(char out[16], long i)
{
    snprintf(out, 16, "+1415%07ld", i % 10000000L);
}

/* Twilio's standard voice-webhook parameters for one call. */
static void call_params(struct cg_form *f, const char *sid, long i, const char *status)
{
    char from[16];
    phone(from, i);
    cg_form_add(f, "AccountSid", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cg_form_add(f, "ApiVersion", "2010-04-01");
    cg_form_add(f, "CallSid", sid);
    cg_form_add(f, "CallStatus", status);
    cg_form_add(f, "Called", "+18005550100");
    cg_form_add(f, "CalledCity", "");
    cg_form_add(f, "CalledCountry", "US");
    cg_form_add(f, "CalledState", "");
    cg_form_add(f, "CalledZip", "");
    cg_form_add(f, "Caller", from);
    cg_form_add(f, "CallerCity", "SAN FRANCISCO");
    cg_form_add(f, "CallerCountry", "US");
    cg_form_add(f, "CallerState", "CA");
    cg_form_add(f, "CallerZip", "94107");
    cg_form_add(f, "Direction", "inbound");
    cg_form_add(f, "From", from);
    cg_form_add(f, "FromCity", "SAN FRANCISCO");
    cg_form_add(f, "FromCountry", "US");
    cg_form_add(f, "FromState", "CA");
    cg_form_add(f, "FromZip", "94107");
    cg_form_add(f, "To", "+18005550100");
    cg_form_add(f, "ToCity", "");
    cg_form_add(f, "ToCountry", "US");
    cg_form_add(f, "ToState", "");
    cg_form_add(f, "ToZip", "");
}

/* Writes one signed form POST to path, then the separator. */
static void put_twilio(FILE *f, const struct opts *o, const char *path, const struct cg_form *form)
{
    struct cg_buf url;
    cg_buf_init(&url, 8192);
    cg_buf_printf(&url, "%s%s", o->public_url, path);
    char sig[CG_TWSIG_LEN + 1];
    if (cg_twsig_compute(o->token, cg_buf_str(&url), form, sig) != 0) {
        fprintf(stderr, "cgbench-sign: cannot compute a signature\n");
        exit(2);
    }
    char *body = cg_form_encode(form);
    fprintf(f,
            "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: TwilioProxy/1.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: %s\r\n"
            "Content-Length: %zu\r\n\r\n%s",
            path, o->host, sig, strlen(body), body);
    fputc('\0', f);
    free(body);
    cg_buf_free(&url);
}

static void put_incoming(FILE *f, const struct opts *o, unsigned long tag, long i)
{
    char sid[35];
    call_sid(sid, tag, i);
    struct cg_form form;
    cg_form_init(&form);
    call_params(&form, sid, i, "ringing");
    put_twilio(f, o, "/incoming", &form);
    cg_form_free(&form);
}

static void put_queue_wait(FILE *f, const struct opts *o, unsigned long tag, long i, long pos)
{
    char sid[35], num[24];
    call_sid(sid, tag, i);
    struct cg_form form;
    cg_form_init(&form);
    call_params(&form, sid, i, "in-progress");
    cg_form_add(&form, "QueueSid", "QUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    snprintf(num, sizeof num, "%ld", pos);
    cg_form_add(&form, "QueuePosition", num);
    cg_form_add(&form, "QueueTime", "12");
    cg_form_add(&form, "AvgQueueTime", "30");
    cg_form_add(&form, "CurrentQueueSize", num);
    cg_form_add(&form, "MaxQueueSize", "5000");
    put_twilio(f, o, "/queue-wait", &form);
    cg_form_free(&form);
}

static void put_queue_exit(FILE *f, const struct opts *o, unsigned long tag, long i)
{
    char sid[35];
    call_sid(sid, tag, i);
    struct cg_form form;
    cg_form_init(&form);
    call_params(&form, sid, i, "completed");
    cg_form_add(&form, "QueueResult", "hangup");
    cg_form_add(&form, "QueueSid", "QUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cg_form_add(&form, "QueueTime", "12");
    put_twilio(f, o, "/queue-exit", &form);
    cg_form_free(&form);
}

/* A Vapi end-of-call-report (trimmed, but with the members a real one
 * carries) for a call id callgate never saw: it still runs end.lua, which
 * answers "unknown". */
static void put_call_ended(FILE *f, const struct opts *o, long i)
{
    char id[40], from[16];
    snprintf(id, sizeof id, "%08lx-%04lx-4%03lx-8%03lx-%012lx", (unsigned long)i & 0xffffffffUL,
             (unsigned long)(i >> 8) & 0xffffUL, (unsigned long)i & 0xfffUL,
             (unsigned long)(i >> 4) & 0xfffUL, (unsigned long)i * 2654435761UL & 0xffffffffffffUL);
    phone(from, i);
    struct cg_buf b;
    cg_buf_init(&b, 16384);
    cg_buf_printf(&b,
                  "{\"message\":{\"type\":\"end-of-call-report\",\"timestamp\":1732200000000,"
                  "\"endedReason\":\"customer-ended-call\",\"call\":{\"id\":\"%s\","
                  "\"orgId\":\"0b2c6f4e-1d2a-4c8e-9f00-000000000001\",\"type\":"
                  "\"inboundPhoneCall\",\"status\":\"ended\",\"phoneCallProvider\":\"twilio\","
                  "\"phoneCallProviderId\":\"CA00000000000000000000000000000000\","
                  "\"phoneCallTransport\":\"pstn\",\"assistantId\":\"sim-assistant\"},"
                  "\"phoneNumber\":{\"id\":\"sim-phone-number\"},\"customer\":{\"number\":\"%s\"},"
                  "\"durationSeconds\":184.2,\"cost\":0.1891,\"summary\":\"The caller asked "
                  "about an order and was given its delivery date.\",\"transcript\":\"AI: "
                  "Hello, how can I help?\\nUser: Where is my order?\\nAI: It arrives on "
                  "Thursday.\\nUser: Thanks, bye.\\n\",\"recordingUrl\":null}}",
                  id, from);
    fprintf(f,
            "POST /call-ended HTTP/1.1\r\nHost: %s\r\nUser-Agent: Vapi/1.0\r\n"
            "Content-Type: application/json\r\nx-vapi-secret: %s\r\nContent-Length: %zu\r\n\r\n"
            "%s",
            o->host, o->secret, b.len, cg_buf_str(&b));
    fputc('\0', f);
    cg_buf_free(&b);
}

static void put_get(FILE *f, const struct opts *o, const char *path)
{
    fprintf(f, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cgbench\r\n\r\n", path, o->host);
    fputc('\0', f);
}

/* xorshift64*: the probe's random picks repeat from run to run. */
static unsigned long long rng_next(unsigned long long *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void scaling(const struct opts *o)
{
    long q = o->queue, n = o->callers, p = o->probe;
    if (q < 1 || n < q || p < 1) {
        fprintf(stderr, "cgbench-sign scaling: need 1 <= --queue <= --callers, --probe >= 1\n");
        exit(2);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.fill", o->out);
    FILE *f = out_open(path);
    /* Callers 0..n-1 arrive; once q wait, each arrival is followed by the
     * oldest caller hanging up, so the queue never passes q (and
     * MAX_QUEUE_SIZE never sends anyone to overflow). */
    for (long i = 0; i < n; i++) {
        put_incoming(f, o, o->tag, i);
        if (i >= q)
            put_queue_exit(f, o, o->tag, i - q);
    }
    out_close(f, path);
    snprintf(path, sizeof path, "%s.probe", o->out);
    f = out_open(path);
    unsigned long long seed = 0x9e3779b97f4a7c15ULL ^ (unsigned long long)o->tag;
    for (long j = 0; j < p; j++) {
        /* Waiting now: callers n-q+j .. n-1+j. */
        put_queue_exit(f, o, o->tag, n - q + j);
        put_incoming(f, o, o->tag, n + j);
        long first = n - q + j + 1;
        long pick = first + (long)(rng_next(&seed) % (unsigned long long)q);
        put_queue_wait(f, o, o->tag, pick, pick - first + 1);
    }
    out_close(f, path);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: cgbench-sign incoming|queue-wait|queue-exit --count N [--start S] --tag T\n"
            "       cgbench-sign call-ended --count N [--start S]\n"
            "       cgbench-sign get PATH... | get-file FILE\n"
            "       cgbench-sign scaling --queue Q --callers N --probe P --tag T\n"
            "   all: --out FILE --public-url URL --token TOKEN --secret SECRET --host HOST\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct opts o = {.public_url = "http://gate.bench.test",
                     .token = "sim-auth-token",
                     .secret = "sim-vapi-secret",
                     .host = "gate.bench.test",
                     .tag = 1};
    if (argc < 2)
        usage();
    o.kind = argv[1];
    o.paths = cg_calloc((size_t)argc, sizeof *o.paths);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            o.paths[o.npaths++] = a;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--out") == 0)
            o.out = v;
        else if (strcmp(a, "--public-url") == 0)
            o.public_url = v;
        else if (strcmp(a, "--token") == 0)
            o.token = v;
        else if (strcmp(a, "--secret") == 0)
            o.secret = v;
        else if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--tag") == 0)
            o.tag = strtoul(v, NULL, 0);
        else if (strcmp(a, "--count") == 0)
            o.count = atol(v);
        else if (strcmp(a, "--start") == 0)
            o.start = atol(v);
        else if (strcmp(a, "--queue") == 0)
            o.queue = atol(v);
        else if (strcmp(a, "--callers") == 0)
            o.callers = atol(v);
        else if (strcmp(a, "--probe") == 0)
            o.probe = atol(v);
        else
            usage();
    }
    if (o.out == NULL)
        usage();
    if (strcmp(o.kind, "scaling") == 0) {
        scaling(&o);
        free(o.paths);
        return 0;
    }
    FILE *f = out_open(o.out);
    if (strcmp(o.kind, "incoming") == 0 || strcmp(o.kind, "queue-wait") == 0 ||
        strcmp(o.kind, "queue-exit") == 0 || strcmp(o.kind, "call-ended") == 0) {
        if (o.count < 1)
            usage();
        for (long i = o.start; i < o.start + o.count; i++) {
            if (o.kind[0] == 'i')
                put_incoming(f, &o, o.tag, i);
            else if (strcmp(o.kind, "queue-wait") == 0)
                put_queue_wait(f, &o, o.tag, i, i - o.start + 1);
            else if (strcmp(o.kind, "queue-exit") == 0)
                put_queue_exit(f, &o, o.tag, i);
            else
                put_call_ended(f, &o, i);
        }
    } else if (strcmp(o.kind, "get") == 0) {
        if (o.npaths == 0)
            usage();
        for (int i = 0; i < o.npaths; i++)
            put_get(f, &o, o.paths[i]);
    } else if (strcmp(o.kind, "get-file") == 0) {
        if (o.npaths != 1)
            usage();
        FILE *in = fopen(o.paths[0], "r");
        if (in == NULL) {
            fprintf(stderr, "cgbench-sign: %s: %s\n", o.paths[0], strerror(errno));
            exit(2);
        }
        char line[4096];
        int n = 0;
        while (fgets(line, sizeof line, in)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '/') {
                put_get(f, &o, line);
                n++;
            }
        }
        fclose(in);
        if (n == 0) {
            fprintf(stderr, "cgbench-sign: no paths in %s\n", o.paths[0]);
            exit(2);
        }
    } else {
        usage();
    }
    out_close(f, o.out);
    free(o.paths);
    return 0;
}
