/*
 * cgbench-routes: Redis CPU per admission decision with 1, 10 and 100
 * routes (ROUTES_FILE), against the gate of one route.
 *
 * Against the redis-server at --port: for each configuration the gate's
 * keys are cleared, the limit (50) filled with connected callers spread
 * over the routes, and 2,000 callers queued, spread alike. Then 2,000
 * releases (end.lua, kind lease), each of which admits the next caller in
 * the same script: the decision of one freed slot. Redis' own figure for
 * the script (INFO commandstats, usec_per_call of evalsha, reset before
 * the releases) is the CPU per admission. Prints one line per
 * configuration and the ratio to the gate of one route.
 *
 * Then the two-route surge, in real time (8 s each): route a with 20
 * callers a second and min 3, route b with 20, or 300 in a surge; calls of
 * 0.1 s under a limit of 10 (100 calls a second). Printed: route a's mean
 * and longest wait without and with the surge, the same surge against the
 * gate of one route, and the idle slot-seconds while callers wait.
 */
#include "base/fmacros.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate/lua_scripts.h"

#define PREFIX  "cg:{bench-routes}:"
#define LIMIT   "50"
#define WAITERS 2000

static redisContext *rc;

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "cgbench-routes: %s\n", r ? r->str : rc->errstr);
        exit(1);
    }
    return r;
}

static char *load(const char *src)
{
    redisReply *r = cmd("SCRIPT LOAD %s", src);
    char *sha = strdup(r->str);
    freeReplyObject(r);
    return sha;
}

static redisReply *evalsha(const char *sha, int n, const char **args)
{
    const char **argv = calloc((size_t)n + 4, sizeof *argv);
    int argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = sha;
    argv[argc++] = "0";
    argv[argc++] = PREFIX;
    for (int i = 0; i < n; i++)
        argv[argc++] = args[i];
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    free(argv);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "cgbench-routes: %s\n", r ? r->str : rc->errstr);
        exit(1);
    }
    return r;
}

/* usec_per_call of evalsha since the last CONFIG RESETSTAT. */
static double evalsha_usec(void)
{
    redisReply *r = cmd("INFO commandstats");
    const char *at = strstr(r->str, "cmdstat_evalsha:");
    double v = -1;
    if (at != NULL) {
        const char *u = strstr(at, "usec_per_call=");
        if (u != NULL)
            v = strtod(u + strlen("usec_per_call="), NULL);
    }
    freeReplyObject(r);
    return v;
}

static double run(int nroutes, const char *enter, const char *end, const char *routes)
{
    freeReplyObject(cmd("EVAL %s 0", "for _, k in ipairs(redis.call('KEYS', 'cg:{bench-routes}:*'))"
                                     " do redis.call('DEL', k) end"));
    freeReplyObject(cmd("SET " PREFIX "intact 1"));
    if (nroutes > 0) {
        /* name, "min max priority" pairs: equal priorities, so every
         * route's head is compared for each freed slot. */
        const char **args = calloc((size_t)(2 * nroutes + 1), sizeof *args);
        char(*names)[16] = calloc((size_t)nroutes, sizeof *names);
        args[0] = "after-inbound";
        for (int i = 0; i < nroutes; i++) {
            snprintf(names[i], sizeof names[i], "r%d", i);
            args[1 + 2 * i] = names[i];
            args[2 + 2 * i] = "0 " LIMIT " 1";
        }
        freeReplyObject(evalsha(routes, 2 * nroutes + 1, args));
        free(args);
        free(names);
    }
    int total = 50 + WAITERS;
    char **sids = calloc((size_t)total, sizeof *sids);
    for (int i = 0; i < total; i++) {
        char sid[40], route[16];
        snprintf(sid, sizeof sid, "CA%032x", i + 1);
        snprintf(route, sizeof route, "r%d", nroutes > 0 ? i % nroutes : 0);
        sids[i] = strdup(sid);
        /* enter: sid from to mode max_queue limit fast lease inst waited route vip */
        const char *a[] = {sid,
                           "+15550001",
                           "+15559999",
                           "incoming",
                           "5000",
                           LIMIT,
                           i < 50 ? "1" : "0",
                           "600000",
                           "bench",
                           "0",
                           nroutes > 0 ? route : "",
                           "0"};
        freeReplyObject(evalsha(enter, 12, a));
    }
    freeReplyObject(cmd("CONFIG RESETSTAT"));
    /* Each release frees the oldest slot and admits the next caller. */
    for (int i = 0; i < WAITERS; i++) {
        const char *a[] = {"lease",  sids[i], "bench", "5000",  LIMIT,  "100",
                           "600000", "bench", "0.2",   "lease", "60000"};
        redisReply *r = evalsha(end, 11, a);
        if (r->elements < 6) {
            fprintf(stderr, "cgbench-routes: release %d admitted nobody\n", i);
            exit(1);
        }
        freeReplyObject(r);
    }
    double usec = evalsha_usec();
    for (int i = 0; i < total; i++)
        free(sids[i]);
    free(sids);
    return usec;
}

/* ---- the two-route surge ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct held {
    char sid[40];
    double until;
};

struct surge_stats {
    double wait_sum[2];
    double wait_max[2];
    long admitted[2];
    double idle_slot_s; /* free slots x time while anyone waits */
};

#define SURGE_LIMIT     10
#define SURGE_CALL_S    0.1
#define SURGE_SECONDS   8.0
#define SURGE_MAX_CALLS 20000

static struct held held[SURGE_LIMIT * 4];
static int nheld;
static double arrived_at[SURGE_MAX_CALLS];
static int route_of[SURGE_MAX_CALLS];

/* Admitted sids (the admission list from first: sid, from, attempt,
 * context) start their calls. */
static void take(const redisReply *r, size_t first, double t, struct surge_stats *st)
{
    for (size_t i = first; i + 3 < r->elements; i += 4) {
        const char *sid = r->element[i]->str;
        int n = (int)strtol(sid + 2, NULL, 16) - 1;
        if (n < 0 || n >= SURGE_MAX_CALLS || nheld >= (int)(sizeof held / sizeof held[0]))
            continue;
        int ro = route_of[n];
        double w = t - arrived_at[n];
        st->wait_sum[ro] += w;
        if (w > st->wait_max[ro])
            st->wait_max[ro] = w;
        st->admitted[ro]++;
        snprintf(held[nheld].sid, sizeof held[nheld].sid, "%s", sid);
        held[nheld++].until = t + SURGE_CALL_S;
    }
}

/* Route a: 20 callers a second, min 3; route b: 20 a second, or 300 in a
 * surge. Calls of 0.1 s, a limit of 10 (100 calls a second). routed 0:
 * the gate of one route, both numbers in one line. */
static void surge(const char *enter, const char *end, const char *admit, const char *routes,
                  int routed, int surge_on, struct surge_stats *st)
{
    memset(st, 0, sizeof *st);
    nheld = 0;
    freeReplyObject(cmd("EVAL %s 0", "for _, k in ipairs(redis.call('KEYS', 'cg:{bench-routes}:*'))"
                                     " do redis.call('DEL', k) end"));
    freeReplyObject(cmd("SET " PREFIX "intact 1"));
    if (routed) {
        const char *a[] = {"after-inbound", "a", "3 10 1", "b", "0 10 1"};
        freeReplyObject(evalsha(routes, 5, a));
    }
    double rate[2] = {20, surge_on ? 300 : 20};
    double next[2] = {0, 0}, t0 = now_s(), last = 0;
    int n = 0;
    char limit[8];
    snprintf(limit, sizeof limit, "%d", SURGE_LIMIT);
    for (;;) {
        double t = now_s() - t0;
        if (t > SURGE_SECONDS)
            break;
        /* Ends first: each release admits in the same step. */
        for (int i = 0; i < nheld;) {
            if (held[i].until <= t) {
                char sid[40];
                snprintf(sid, sizeof sid, "%s", held[i].sid);
                held[i] = held[--nheld];
                const char *a[] = {"lease",  sid,     "bench", "5000",  limit,  "100",
                                   "600000", "bench", "0.2",   "lease", "60000"};
                redisReply *r = evalsha(end, 11, a);
                take(r, 3, t, st);
                freeReplyObject(r);
            } else {
                i++;
            }
        }
        for (int ro = 0; ro < 2; ro++) {
            while (next[ro] <= t && n < SURGE_MAX_CALLS) {
                char sid[40];
                snprintf(sid, sizeof sid, "CA%032x", n + 1);
                arrived_at[n] = t;
                route_of[n] = ro;
                n++;
                next[ro] += 1.0 / rate[ro];
                const char *a[] = {sid,
                                   "+15550001",
                                   "+15559999",
                                   "incoming",
                                   "20000",
                                   limit,
                                   "1",
                                   "600000",
                                   "bench",
                                   "0",
                                   routed ? (ro ? "b" : "a") : "",
                                   "0"};
                redisReply *r = evalsha(enter, 12, a);
                if (strcmp(r->element[0]->str, "fast") == 0) {
                    st->admitted[ro]++;
                    snprintf(held[nheld].sid, sizeof held[nheld].sid, "%s", sid);
                    held[nheld++].until = t + SURGE_CALL_S;
                } else if (r->elements > 2 && r->element[2]->integer != 0) {
                    const char *b[] = {limit, "100", "600000", "bench"};
                    redisReply *ad = evalsha(admit, 4, b);
                    take(ad, 0, t, st);
                    freeReplyObject(ad);
                }
                freeReplyObject(r);
            }
        }
        redisReply *w = cmd("ZCARD " PREFIX "waiting");
        if (w->integer > 0 && t > last)
            st->idle_slot_s += (double)(SURGE_LIMIT - nheld) * (t - last);
        freeReplyObject(w);
        last = t;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void print_surge(const char *label, const struct surge_stats *st)
{
    printf("routes-surge %s: route a (min 3) mean wait %.3f s, max %.3f s, %ld admitted; "
           "route b mean wait %.3f s, %ld admitted; idle slot-seconds while callers wait %.2f\n",
           label, st->admitted[0] ? st->wait_sum[0] / (double)st->admitted[0] : 0, st->wait_max[0],
           st->admitted[0], st->admitted[1] ? st->wait_sum[1] / (double)st->admitted[1] : 0,
           st->admitted[1], st->idle_slot_s);
}

int main(int argc, char **argv)
{
    int port = 6379;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    rc = redisConnect("127.0.0.1", port);
    if (rc == NULL || rc->err) {
        fprintf(stderr, "cgbench-routes: cannot connect to redis on port %d\n", port);
        return 1;
    }
    char *enter = load(cg_lua_enter), *end = load(cg_lua_end), *routes = load(cg_lua_routes);
    double base = run(0, enter, end, routes);
    printf("routes-cpu one-route-gate usec_per_admission=%.1f ratio=1.00\n", base);
    static const int counts[] = {1, 10, 100};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        double u = run(counts[i], enter, end, routes);
        printf("routes-cpu routes=%d usec_per_admission=%.1f ratio=%.2f\n", counts[i], u,
               base > 0 ? u / base : 0);
    }
    char *admit = load(cg_lua_admit);
    struct surge_stats st;
    surge(enter, end, admit, routes, 1, 0, &st);
    print_surge("routes, no surge", &st);
    surge(enter, end, admit, routes, 1, 1, &st);
    print_surge("routes, surge on b", &st);
    surge(enter, end, admit, routes, 0, 1, &st);
    print_surge("one route, surge on b", &st);
    free(admit);
    freeReplyObject(cmd("EVAL %s 0", "for _, k in ipairs(redis.call('KEYS', 'cg:{bench-routes}:*'))"
                                     " do redis.call('DEL', k) end"));
    free(enter);
    free(end);
    free(routes);
    redisFree(rc);
    return 0;
}
