/*
 * util.c - cgbench-util: the small measuring tools bench/run.sh needs that
 * bash cannot do well.
 *
 *   cgbench-util port
 *       a free TCP port on 127.0.0.1
 *   cgbench-util snap --redis-port P [--proc NAME=PID]... [--hash NAME=KEY]...
 *                     --label L --out FILE
 *       appends one JSON line: Redis' INFO commandstats (calls per
 *       command), INFO cpu (used_cpu_user/sys), total_commands_processed,
 *       used_memory; per process utime+stime (/proc/PID/stat), the
 *       scheduler's exact run time (/proc/PID/sched, when the kernel has
 *       it) and VmHWM/VmRSS; and the fields of Redis hashes (a gate's
 *       counters). The report takes deltas between two labels.
 *   cgbench-util trim --redis-port P --key K --keep N --every-ms M --out FILE
 *       until SIGTERM: every M ms, trims sorted set K to its newest N
 *       members, then writes {"evals","removed"} so that its own Redis
 *       commands can be taken out of the figures. bench/run.sh uses it to
 *       keep callgate's waiting queue under MAX_QUEUE_SIZE while wrk sends
 *       new callers as fast as it can, so every request takes the enqueue
 *       path rather than the overflow path.
 */
#include "base/fmacros.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "demo/proc.h"

#define MAX_PROCS 8

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static redisContext *connect_redis(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "cgbench-util: redis on port %d: %s\n", port, c ? c->errstr : "no memory");
        exit(1);
    }
    return c;
}

static char *info(redisContext *c, const char *section)
{
    redisReply *r = redisCommand(c, "INFO %s", section);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "cgbench-util: INFO %s failed\n", section);
        exit(1);
    }
    char *s = strdup(r->str);
    freeReplyObject(r);
    return s;
}

/* The value after "key:" on its own line of an INFO text, or NULL. */
static const char *info_field(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ':')
            return p + n + 1;
    return NULL;
}

static double info_num(const char *text, const char *key)
{
    const char *v = info_field(text, key);
    return v ? strtod(v, NULL) : 0;
}

static json_t *proc_json(long pid)
{
    json_t *o = json_object();
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return o;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may hold spaces: state is
     * field 3, utime 14, stime 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) == 2) {
        double hz = (double)sysconf(_SC_CLK_TCK);
        json_object_set_new(o, "utime_s", json_real((double)utime / hz));
        json_object_set_new(o, "stime_s", json_real((double)stime / hz));
    }
    snprintf(path, sizeof path, "/proc/%ld/sched", pid);
    if ((f = fopen(path, "r")) != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "se.sum_exec_runtime", 19) == 0) {
                const char *colon = strchr(line, ':');
                if (colon)
                    json_object_set_new(o, "exec_s", json_real(strtod(colon + 1, NULL) / 1000.0));
                break;
            }
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if ((f = fopen(path, "r")) != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "VmHWM:", 6) == 0)
                json_object_set_new(o, "vmhwm_kb", json_integer(strtoll(line + 6, NULL, 10)));
            else if (strncmp(line, "VmRSS:", 6) == 0)
                json_object_set_new(o, "vmrss_kb", json_integer(strtoll(line + 6, NULL, 10)));
        }
        fclose(f);
    }
    return o;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int snap(int argc, char **argv)
{
    int port = 0;
    const char *label = NULL, *out = NULL;
    const char *names[MAX_PROCS], *hnames[MAX_PROCS], *hkeys[MAX_PROCS];
    long pids[MAX_PROCS];
    int nprocs = 0, nhashes = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--redis-port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--label") == 0)
            label = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--proc") == 0 && nprocs < MAX_PROCS) {
            char *eq = strchr(argv[i + 1], '=');
            if (eq == NULL)
                return 2;
            *eq = '\0';
            names[nprocs] = argv[i + 1];
            pids[nprocs++] = atol(eq + 1);
        } else if (strcmp(argv[i], "--hash") == 0 && nhashes < MAX_PROCS) {
            char *eq = strchr(argv[i + 1], '=');
            if (eq == NULL)
                return 2;
            *eq = '\0';
            hnames[nhashes] = argv[i + 1];
            hkeys[nhashes++] = eq + 1;
        } else
            return 2;
    }
    if (port <= 0 || label == NULL || out == NULL)
        return 2;
    json_t *o = json_object();
    json_object_set_new(o, "label", json_string(label));
    json_object_set_new(o, "t", json_real(mono_s()));
    redisContext *c = connect_redis(port);
    char *cs = info(c, "commandstats"), *cpu = info(c, "cpu"), *st = info(c, "stats"),
         *mem = info(c, "memory");
    json_t *hashes = json_object();
    for (int i = 0; i < nhashes; i++) {
        json_t *h = json_object();
        redisReply *r = redisCommand(c, "HGETALL %s", hkeys[i]);
        for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2)
            if (r->element[k]->type == REDIS_REPLY_STRING &&
                r->element[k + 1]->type == REDIS_REPLY_STRING)
                json_object_set_new(h, r->element[k]->str,
                                    json_real(strtod(r->element[k + 1]->str, NULL)));
        if (r)
            freeReplyObject(r);
        json_object_set_new(hashes, hnames[i], h);
    }
    redisFree(c);
    json_t *r = json_object();
    json_t *cmd = json_object();
    for (const char *p = cs; (p = strstr(p, "cmdstat_")) != NULL;) {
        p += 8;
        const char *colon = strchr(p, ':');
        const char *calls = colon ? strstr(colon, "calls=") : NULL;
        if (colon == NULL || calls == NULL)
            break;
        char name[64];
        size_t n = (size_t)(colon - p) < sizeof name - 1 ? (size_t)(colon - p) : sizeof name - 1;
        memcpy(name, p, n);
        name[n] = '\0';
        json_object_set_new(cmd, name, json_integer(strtoll(calls + 6, NULL, 10)));
    }
    json_object_set_new(r, "cmd", cmd);
    json_object_set_new(r, "cpu_user", json_real(info_num(cpu, "used_cpu_user")));
    json_object_set_new(r, "cpu_sys", json_real(info_num(cpu, "used_cpu_sys")));
    json_object_set_new(r, "total_commands", json_real(info_num(st, "total_commands_processed")));
    json_object_set_new(r, "used_memory", json_real(info_num(mem, "used_memory")));
    json_object_set_new(o, "redis", r);
    free(cs);
    free(cpu);
    free(st);
    free(mem);
    json_t *procs = json_object();
    for (int i = 0; i < nprocs; i++)
        json_object_set_new(procs, names[i], proc_json(pids[i]));
    json_object_set_new(o, "procs", procs);
    json_object_set_new(o, "hashes", hashes);
    /* Its HGETALLs come after its INFO commandstats: the next snapshot
     * counts them, and the report takes them out again. */
    json_object_set_new(o, "own_hgetall", json_integer(nhashes));
    FILE *f = fopen(out, "a");
    if (f == NULL) {
        fprintf(stderr, "cgbench-util: %s: %s\n", out, strerror(errno));
        return 1;
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    fprintf(f, "%s\n", line);
    free(line);
    fclose(f);
    json_decref(o);
    return 0;
}

static int trim(int argc, char **argv)
{
    int port = 0, every_ms = 50;
    long keep = 1000;
    const char *key = NULL, *out = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--redis-port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--every-ms") == 0)
            every_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else
            return 2;
    }
    if (port <= 0 || key == NULL || out == NULL || keep < 0 || every_ms < 1)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    redisContext *c = connect_redis(port);
    /* One EVAL a round: the ZCARD and ZREMRANGEBYRANK it runs are known,
     * so the report can subtract exactly what the trimmer cost. */
    static const char lua[] = "local n = redis.call('ZCARD', KEYS[1])\n"
                              "local keep = tonumber(ARGV[1])\n"
                              "if n > keep then\n"
                              "  return redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1)\n"
                              "end\n"
                              "return 0\n";
    long long evals = 0, removed = 0, rounds_removing = 0;
    while (!stop_flag) {
        redisReply *r = redisCommand(c, "EVAL %s 1 %s %ld", lua, key, keep);
        if (r == NULL)
            break;
        evals++;
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            removed += r->integer;
            rounds_removing++;
        }
        freeReplyObject(r);
        struct timespec ts = {every_ms / 1000, (long)(every_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    redisFree(c);
    FILE *f = fopen(out, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "{\"evals\":%lld,\"removed\":%lld,\"rounds_removing\":%lld}\n", evals, removed,
            rounds_removing);
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "port") == 0) {
        int p = cg_free_port();
        if (p <= 0)
            return 1;
        printf("%d\n", p);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "snap") == 0)
        return snap(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "trim") == 0)
        return trim(argc, argv);
    fprintf(stderr, "usage: cgbench-util port | snap ... | trim ...\n");
    return 2;
}
