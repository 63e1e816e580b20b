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
 */
#include "base/fmacros.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    freeReplyObject(cmd("EVAL %s 0", "for _, k in ipairs(redis.call('KEYS', 'cg:{bench-routes}:*'))"
                                     " do redis.call('DEL', k) end"));
    free(enter);
    free(end);
    free(routes);
    redisFree(rc);
    return 0;
}
