/*
 * rtt.c - cgbench-rtt: Redis round trips a second through callgate's own
 * Redis client (src/net/redis.c on a libevent loop, plain or TLS), one
 * command outstanding at a time, so that each figure is the cost of a round
 * trip over that transport: what TLS adds to every command the gate sends.
 *
 * Usage: cgbench-rtt --url redis[s]://127.0.0.1:PORT [--ca FILE] [--seconds N]
 *                    [--label NAME] --out FILE
 * Writes {"label","tls","seconds","round_trips","per_s","p50_us","p99_us"}.
 */
#include "base/fmacros.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "hist.h"
#include "net/redis.h"

struct run {
    struct event_base *base;
    struct cg_redis *r;
    uint64_t start_us, end_us, sent_us;
    long done;
    int failed;
    struct cgb_hist h;
};

static void on_pong(const redisReply *reply, const char *err, void *arg);

static void send_one(struct run *x)
{
    x->sent_us = cg_mono_us();
    if (cg_redis_command(x->r, on_pong, x, "PING") != 0) {
        x->failed = 1;
        event_base_loopbreak(x->base);
    }
}

static void on_pong(const redisReply *reply, const char *err, void *arg)
{
    struct run *x = arg;
    uint64_t now = cg_mono_us();
    if (err != NULL || reply == NULL) {
        fprintf(stderr, "cgbench-rtt: %s\n", err ? err : "no reply");
        x->failed = 1;
        event_base_loopbreak(x->base);
        return;
    }
    cgb_hist_record(&x->h, (now - x->sent_us) * 1000);
    x->done++;
    if (now >= x->end_us) {
        event_base_loopbreak(x->base);
        return;
    }
    send_one(x);
}

static void on_state(enum cg_redis_state s, void *arg)
{
    struct run *x = arg;
    if (s == CG_REDIS_READY && x->start_us == 0) {
        x->start_us = cg_mono_us();
        x->end_us += x->start_us;
        send_one(x);
    }
}

int main(int argc, char **argv)
{
    const char *url = NULL, *ca = NULL, *label = "rtt", *out = NULL;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--ca") == 0)
            ca = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--label") == 0)
            label = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
    }
    if (url == NULL || out == NULL || seconds <= 0) {
        fprintf(stderr, "usage: cgbench-rtt --url URL [--ca FILE] [--seconds N] [--label L] "
                        "--out FILE\n");
        return 2;
    }
    static struct run x; /* the histogram is 19 KiB */
    cgb_hist_init(&x.h);
    x.end_us = (uint64_t)(seconds * 1e6);
    x.base = event_base_new();
    char err[256];
    struct cg_redis_opts o = {.url = url, .tls_ca_file = ca};
    x.r = x.base ? cg_redis_new(x.base, &o, err, sizeof err) : NULL;
    if (x.r == NULL) {
        fprintf(stderr, "cgbench-rtt: %s\n", x.base ? err : "no event base");
        return 1;
    }
    cg_redis_set_state_cb(x.r, on_state, &x);
    event_base_dispatch(x.base);
    uint64_t spent = cg_mono_us() - x.start_us;
    cg_redis_free(x.r);
    event_base_free(x.base);
    if (x.failed || x.done == 0)
        return 1;
    FILE *f = fopen(out, "w");
    if (f == NULL)
        return 1;
    fprintf(f,
            "{\"label\":\"%s\",\"tls\":%s,\"seconds\":%.3f,\"round_trips\":%ld,\"per_s\":%.0f,"
            "\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
            label, strncmp(url, "rediss://", 9) == 0 ? "true" : "false", (double)spent / 1e6,
            x.done, (double)x.done / ((double)spent / 1e6),
            (double)cgb_hist_percentile(&x.h, 50) / 1000.0,
            (double)cgb_hist_percentile(&x.h, 99) / 1000.0);
    fclose(f);
    printf("%s: %ld round trips in %.2f s, %.0f a second\n", label, x.done, (double)spent / 1e6,
           (double)x.done / ((double)spent / 1e6));
    return 0;
}
