/*
 * report.c - cgbench-report: turns the parts bench/run.sh collected into the
 * figures, each with its target and a met/missed mark; prints the table,
 * and writes results.json and results.md (the table for bench/RESULTS.md).
 *
 * Usage: cgbench-report PARTS_DIR RESULTS.json RESULTS.md
 *
 * The parts (names are bench/run.sh's): machine.json, end.json;
 * snaps.jsonl (cgbench-util snap lines, taken around every measurement;
 * figures are differences between two labels); wrk-NAME.json (reqs.lua's
 * done()), rate-NAME.json (cgbench-rate); trim-NAME.json (the queue
 * trimmer's own Redis commands, subtracted); stats-after-*.txt (the gate's
 * counters, to check every request took the measured path);
 * scale-N.json and scale-N-*.txt; callgate-waittime.log and
 * sim-status-wt-*.json (the poller); storm-report.json, metrics-storm.txt;
 * accuracy-KIND.json.
 *
 * A figure that cannot be computed (a part is missing because a step
 * failed) is shown as "n/a" and marked missed when it has a target: a
 * broken run must never read as a pass. Exit status 0 when the report was
 * written (whatever the marks say: a benchmark is not a test), 2 if the
 * parts cannot be read or the results cannot be written.
 */
#include "base/fmacros.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"

#define NA NAN

enum mark { M_NONE, M_MET, M_MISSED };

static const char *dir;
static json_t *snaps; /* label -> snapshot object */
static json_t *sections;
static json_t *cur_rows;
static struct cg_buf md;
static int nmissed, nmet;

/* ---- reading parts ---- */

static json_t *part(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    return j;
}

static json_t *partf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *partf(const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return part(name);
}

/* The first number in a small text part (redis-cli output), or NAN. */
static double text_num(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NA;
    double v = NA;
    if (fscanf(f, "%lf", &v) != 1)
        v = NA;
    fclose(f);
    return v;
}

static double num(const json_t *root, const char *path)
{
    const json_t *j = root;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && j;
         tok = strtok_r(NULL, ".", &save))
        j = json_object_get(j, tok);
    return j && json_is_number(j) ? json_number_value(j) : NA;
}

static const char *str(const json_t *root, const char *key)
{
    const char *s = json_string_value(json_object_get(root, key));
    return s ? s : "?";
}

static void load_snaps(void)
{
    snaps = json_object();
    char path[4096];
    snprintf(path, sizeof path, "%s/snaps.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (j && json_string_value(json_object_get(j, "label")))
            json_object_set(snaps, json_string_value(json_object_get(j, "label")), j);
        json_decref(j);
    }
    free(line);
    fclose(f);
}

static const json_t *snap(const char *label)
{
    return json_object_get(snaps, label);
}

/* Calls of one Redis command between two snapshots. */
static double cmd_delta(const json_t *a, const json_t *b, const char *cmd)
{
    if (!a || !b)
        return NA;
    double x = num(json_object_get(json_object_get(a, "redis"), "cmd"), cmd);
    double y = num(json_object_get(json_object_get(b, "redis"), "cmd"), cmd);
    return (isnan(y) ? 0 : y) - (isnan(x) ? 0 : x);
}

struct redis_cost {
    double round_trips; /* commands sent by clients (scripts and plain) */
    double commands;    /* every command executed, inside scripts included */
    double cpu_s;       /* Redis' used_cpu_user + used_cpu_sys */
    double elapsed_s;
};

/* Commands a client sends at top level; everything else in commandstats
 * ran inside a script (callgate sends no plain commands on the measured
 * paths: its state changes only through scripts). */
static const char *const top_level[] = {"evalsha", "eval", "evalsha_ro", "eval_ro",
                                        "script",  "ping", NULL};

static struct redis_cost redis_delta(const char *la, const char *lb)
{
    struct redis_cost c = {NA, NA, NA, NA};
    const json_t *a = snap(la), *b = snap(lb);
    if (!a || !b)
        return c;
    c.round_trips = 0;
    c.commands = 0;
    const json_t *cb = json_object_get(json_object_get(b, "redis"), "cmd");
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *)cb, k, v) {
        (void)v;
        if (strcmp(k, "info") == 0)
            continue; /* the snapshots' own */
        double d = cmd_delta(a, b, k);
        if (strcmp(k, "hgetall") == 0) {
            double own = num(a, "own_hgetall");
            d -= isnan(own) ? 0 : own;
        }
        int top = 0;
        for (size_t i = 0; top_level[i]; i++)
            top |= strcmp(k, top_level[i]) == 0;
        if (top)
            c.round_trips += d;
        c.commands += d;
    }
    c.cpu_s = num(b, "redis.cpu_user") + num(b, "redis.cpu_sys") - num(a, "redis.cpu_user") -
              num(a, "redis.cpu_sys");
    c.elapsed_s = num(b, "t") - num(a, "t");
    return c;
}

/* CPU seconds of a process between two snapshots: the scheduler's exact
 * run time when the kernel exposes it, else utime+stime (10 ms ticks). */
static double proc_cpu(const char *la, const char *lb, const char *name, int ticks_only)
{
    const json_t *a = snap(la), *b = snap(lb);
    if (!a || !b)
        return NA;
    const json_t *pa = json_object_get(json_object_get(a, "procs"), name);
    const json_t *pb = json_object_get(json_object_get(b, "procs"), name);
    if (!pa || !pb)
        return NA;
    double ea = num(pa, "exec_s"), eb = num(pb, "exec_s");
    if (!ticks_only && !isnan(ea) && !isnan(eb))
        return eb - ea;
    return num(pb, "utime_s") + num(pb, "stime_s") - num(pa, "utime_s") - num(pa, "stime_s");
}

/* Change of a field of a hash recorded in the snapshots (a gate's
 * counters: "gate"); an absent field is 0. */
static double hash_delta(const char *la, const char *lb, const char *field)
{
    const json_t *a = snap(la), *b = snap(lb);
    if (!a || !b || !json_object_get(json_object_get(b, "hashes"), "gate"))
        return NA;
    double x = num(json_object_get(json_object_get(a, "hashes"), "gate"), field);
    double y = num(json_object_get(json_object_get(b, "hashes"), "gate"), field);
    return (isnan(y) ? 0 : y) - (isnan(x) ? 0 : x);
}

/* ---- output ---- */

static void section(const char *title, const char *note)
{
    json_t *s = json_object();
    json_object_set_new(s, "title", json_string(title));
    if (note)
        json_object_set_new(s, "note", json_string(note));
    cur_rows = json_array();
    json_object_set_new(s, "rows", cur_rows);
    json_array_append_new(sections, s);
    printf("\n%s\n", title);
    if (note)
        printf("  (%s)\n", note);
    cg_buf_printf(&md, "\n**%s**%s%s%s\n\n| figure | value | target | |\n|---|---|---|---|\n",
                  title, note ? " — " : "", note ? note : "", "");
}

static void row(const char *figure, double value, const char *unit, const char *display,
                const char *target, enum mark m)
{
    json_t *r = json_object();
    json_object_set_new(r, "figure", json_string(figure));
    json_object_set_new(r, "value", isnan(value) ? json_null() : json_real(value));
    json_object_set_new(r, "unit", json_string(unit ? unit : ""));
    json_object_set_new(r, "display", json_string(display));
    json_object_set_new(r, "target", target ? json_string(target) : json_null());
    json_object_set_new(r, "met", m == M_NONE ? json_null() : json_boolean(m == M_MET));
    json_array_append_new(cur_rows, r);
    const char *mk = m == M_MET ? "met" : m == M_MISSED ? "MISSED" : "";
    printf("  %-44s %-30s %-18s %s\n", figure, display, target ? target : "", mk);
    cg_buf_printf(&md, "| %s | %s | %s | %s |\n", figure, display, target ? target : "", mk);
    if (m == M_MET)
        nmet++;
    else if (m == M_MISSED)
        nmissed++;
}

static enum mark judge(int have_target, double v, int ok)
{
    if (!have_target)
        return M_NONE;
    return !isnan(v) && ok ? M_MET : M_MISSED;
}

static const char *fmt(char *buf, size_t n, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static const char *fmt(char *buf, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, n, f, ap);
    va_end(ap);
    return buf;
}

static const char *ms(char *buf, size_t n, double us)
{
    if (isnan(us))
        return fmt(buf, n, "n/a");
    return fmt(buf, n, "%.2f", us / 1000.0);
}

/* ---- picking the better of two runs ---- */

/* Every wrk and fixed-rate measurement ran twice (NAME.1, NAME.2); the
 * figures come from the better run, and its snapshots. A part without a
 * run number (an older layout) is used as it is. */
struct pick {
    char name[64];
    char id[80];
};
static struct pick picks[64];
static size_t npicks;

static const char *remember(const char *kind, const char *name, const char *id)
{
    if (npicks == sizeof picks / sizeof picks[0])
        npicks = 0; /* a cache: recomputing is harmless */
    struct pick *p = &picks[npicks++];
    snprintf(p->name, sizeof p->name, "%s:%s", kind, name);
    snprintf(p->id, sizeof p->id, "%s", id);
    return p->id;
}

static const char *recall(const char *kind, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s:%s", kind, name);
    for (size_t i = 0; i < npicks; i++)
        if (strcmp(picks[i].name, key) == 0)
            return picks[i].id;
    return NULL;
}

static double wrk_rps(const char *id)
{
    json_t *j = partf("wrk-%s.json", id);
    double v = j ? num(j, "requests") / (num(j, "duration_us") / 1e6) : NA;
    json_decref(j);
    return v;
}

/* A run's p99, or NAN when it is missing; runs with errors rank last. */
static double rate_p99(const char *id, int *valid)
{
    json_t *j = partf("rate-%s.json", id);
    double v = j ? num(j, "latency_us.p99") : NA;
    *valid = j && num(j, "completed") == num(j, "requests") &&
             num(j, "status.2xx") == num(j, "requests");
    json_decref(j);
    return v;
}

static const char *pick_wrk(const char *name)
{
    const char *id = recall("wrk", name);
    if (id)
        return id;
    if (!isnan(wrk_rps(name)))
        return remember("wrk", name, name);
    char a[80], b[80];
    snprintf(a, sizeof a, "%s.1", name);
    snprintf(b, sizeof b, "%s.2", name);
    double ra = wrk_rps(a), rb = wrk_rps(b);
    return remember("wrk", name, !isnan(rb) && (isnan(ra) || rb > ra) ? b : a);
}

static const char *pick_rate(const char *name)
{
    const char *id = recall("rate", name);
    if (id)
        return id;
    int va, vb;
    if (!isnan(rate_p99(name, &va)))
        return remember("rate", name, name);
    char a[80], b[80];
    snprintf(a, sizeof a, "%s.1", name);
    snprintf(b, sizeof b, "%s.2", name);
    double pa = rate_p99(a, &va), pb = rate_p99(b, &vb);
    int take_b = !isnan(pb) && (isnan(pa) || (vb && !va) || (vb == va && pb < pa));
    return remember("rate", name, take_b ? b : a);
}

/* ---- 1. throughput (wrk) ---- */

struct wrk {
    double rps, p50, p99;
    double requests;
    int errors;
    int wraps;
    const char *id; /* the run the figures come from */
};

static struct wrk wrk_of(const char *name)
{
    struct wrk w = {NA, NA, NA, NA, 0, 0, pick_wrk(name)};
    json_t *j = partf("wrk-%s.json", w.id);
    if (j == NULL)
        return w;
    w.requests = num(j, "requests");
    w.rps = w.requests / (num(j, "duration_us") / 1e6);
    w.p50 = num(j, "latency_us.p50");
    w.p99 = num(j, "latency_us.p99");
    w.errors = (int)(num(j, "errors.connect") + num(j, "errors.read") + num(j, "errors.write") +
                     num(j, "errors.status") + num(j, "errors.timeout"));
    w.wraps = (int)num(j, "wraps");
    json_decref(j);
    return w;
}

static double nginx_rps;

static void wrk_row(const char *label, const char *name, double target_ratio, const char *why)
{
    struct wrk w = wrk_of(name);
    char d[200], t[64], a[32], b[32], la[96], lb[96];
    double ratio = w.rps / nginx_rps;
    int valid = !isnan(w.rps) && w.errors == 0 && w.wraps == 0;
    /* The cores callgate and Redis kept busy: on two cores, with wrk on
     * one of them, this is where the ceiling comes from. */
    snprintf(la, sizeof la, "before-wrk-%s", w.id);
    snprintf(lb, sizeof lb, "after-wrk-%s", w.id);
    struct redis_cost rc = redis_delta(la, lb);
    double cg = proc_cpu(la, lb, "callgate", 0);
    const char *flag = w.errors ? " ERRORS" : w.wraps ? " WRAPPED" : "";
    if (isnan(w.rps))
        fmt(d, sizeof d, "n/a");
    else
        fmt(d, sizeof d, "%.0f/s %3.0f%%  p50 %s p99 %s ms; cores: cg %.2f, redis %.2f%s", w.rps,
            100 * ratio, ms(a, sizeof a, w.p50), ms(b, sizeof b, w.p99), cg / rc.elapsed_s,
            rc.cpu_s / rc.elapsed_s, flag);
    if (target_ratio > 0)
        fmt(t, sizeof t, ">= %.0f%% of nginx", 100 * target_ratio);
    row(label, w.rps, "req/s", d, target_ratio > 0 ? t : why,
        judge(target_ratio > 0, w.rps, valid && ratio >= target_ratio));
}

static void throughput(void)
{
    section("1. Throughput: wrk, 1 thread, 64 keep-alive connections (share of nginx "
            "worker_processes 1)",
            "the better of two runs of each; cores = CPU seconds per second of the run");
    struct wrk n1 = wrk_of("nginx-w1");
    nginx_rps = n1.rps;
    char d[160], a[32], b[32];
    fmt(d, sizeof d, "%.0f/s 100%%  p50 %s p99 %s ms", n1.rps, ms(a, sizeof a, n1.p50),
        ms(b, sizeof b, n1.p99));
    row("nginx static 200, worker_processes 1", n1.rps, "req/s", d, "the ceiling", M_NONE);
    struct wrk na = wrk_of("nginx-auto");
    fmt(d, sizeof d, "%.0f/s %3.0f%%  p50 %s p99 %s ms", na.rps, 100 * na.rps / nginx_rps,
        ms(a, sizeof a, na.p50), ms(b, sizeof b, na.p99));
    row("nginx, worker_processes auto (wrk 1 thread)", na.rps, "req/s", d, "reference", M_NONE);
    struct wrk n2 = wrk_of("nginx-auto-t2");
    fmt(d, sizeof d, "%.0f/s %3.0f%%  p50 %s p99 %s ms", n2.rps, 100 * n2.rps / nginx_rps,
        ms(a, sizeof a, n2.p50), ms(b, sizeof b, n2.p99));
    row("nginx, worker_processes auto (wrk 2 threads)", n2.rps, "req/s", d, "reference", M_NONE);
    wrk_row("callgate GET /health (Redis script)", "health", 0.5, NULL);
    wrk_row("callgate GET /get-queue-times (memory)", "get-queue-times", 0.7, NULL);
    wrk_row("callgate GET /wait-times/{sid}", "wait-times-sid", 0, "no target");
    wrk_row("callgate POST /incoming (signed, enqueued)", "incoming", 0.25, NULL);
    wrk_row("callgate POST /queue-wait (signed)", "queue-wait", 0, "no target");
    wrk_row("callgate POST /call-ended (unknown id)", "call-ended", 0, "no target");

    /* System calls per request (perf stat over the profiling runs): the
     * kernel's share of the difference to nginx. */
    {
        const char *names[] = {"nginx-w1", "health", "incoming", "get-queue-times"};
        const char *labels[] = {"nginx", "/health", "/incoming", "/get-queue-times"};
        struct cg_buf sb;
        cg_buf_init(&sb, 512);
        double first = NA;
        for (size_t i = 0; i < 4; i++) {
            json_t *j = partf("syscalls-%s.json", names[i]);
            double v = j ? num(j, "syscalls") / num(j, "requests") : NA;
            json_decref(j);
            if (isnan(v))
                continue;
            if (isnan(first))
                first = v;
            cg_buf_printf(&sb, "%s%s %.1f", sb.len ? ", " : "", labels[i], v);
        }
        if (sb.len)
            row("  system calls per request", first, "", cg_buf_str(&sb), NULL, M_NONE);
        cg_buf_free(&sb);
    }

    /* Every /incoming must have been a new caller who queued: the gate's
     * own counters say so. wrk counts the answers it got; the requests cut
     * off at the end of the run (at most one per connection) entered too. */
    struct wrk in = wrk_of("incoming");
    char la[96], lb[96];
    snprintf(la, sizeof la, "before-wrk-%s", in.id);
    snprintf(lb, sizeof lb, "after-wrk-%s", in.id);
    double entered = hash_delta(la, lb, "entered");
    double overflowed = hash_delta(la, lb, "overflowed");
    double admissions = hash_delta(la, lb, "admissions");
    fmt(d, sizeof d, "%.0f entered for %.0f answers; %.0f overflowed, %.0f admitted", entered,
        in.requests, overflowed, admissions);
    row("  every /incoming queued a new caller", entered, "", d, "all; none overflowed",
        judge(1, entered,
              entered >= in.requests && entered <= in.requests + 64 && overflowed == 0 &&
                  admissions == 0 && in.wraps == 0));
}

/* ---- 1b. fixed rate ---- */

static json_t *rate_part(const char *name)
{
    return partf("rate-%s.json", pick_rate(name));
}

static void rate_row(const char *label, const char *name, int with_target)
{
    json_t *j = rate_part(name);
    char d[160], a[32], b[32], c[32];
    double p99 = j ? num(j, "latency_us.p99") : NA;
    double done = j ? num(j, "completed") : NA, total = j ? num(j, "requests") : NA;
    double ok2xx = j ? num(j, "status.2xx") : NA;
    int valid = j && done == total && ok2xx == total;
    if (j)
        fmt(d, sizeof d, "p50 %s p99 %s max %s ms%s", ms(a, sizeof a, num(j, "latency_us.p50")),
            ms(b, sizeof b, p99), ms(c, sizeof c, num(j, "latency_us.max")),
            valid ? "" : " ERRORS");
    else
        fmt(d, sizeof d, "n/a");
    row(label, p99 / 1000.0, "ms", d, with_target ? "p99 < 5 ms" : "reference",
        judge(with_target, p99, valid && p99 < 5000));
    json_decref(j);
}

static void fixed_rate(void)
{
    section("1b. Latency at a fixed 5,000 requests/s (cgbench-rate: open loop, latency from "
            "the scheduled send time)",
            "3 s each (6 s for the wait-time reads), the better of two runs");
    rate_row("nginx static 200, worker_processes 1", "nginx-w1", 0);
    rate_row("callgate GET /health", "health", 1);
    rate_row("callgate GET /get-queue-times (6 s, a refresh inside)", "get-queue-times", 1);
    rate_row("callgate GET /wait-times/{sid} (6 s, a refresh inside)", "wait-times-sid", 1);
    rate_row("callgate POST /incoming", "incoming", 1);
    char la[96], lb[96];
    snprintf(la, sizeof la, "before-rate-%s", pick_rate("incoming"));
    snprintf(lb, sizeof lb, "after-rate-%s", pick_rate("incoming"));
    double entered = hash_delta(la, lb, "entered");
    double overflowed = hash_delta(la, lb, "overflowed");
    char d[128];
    fmt(d, sizeof d, "%.0f of 15000 entered; %.0f overflowed", entered, overflowed);
    row("  every /incoming queued a new caller", entered, "", d, "all; none overflowed",
        judge(1, entered, entered == 15000 && overflowed == 0));
    rate_row("callgate POST /queue-wait", "queue-wait", 1);
    rate_row("callgate POST /call-ended", "call-ended", 1);
}

/* ---- 2. Redis cost ---- */

static double trim_evals(const char *name, const char *field)
{
    json_t *j = partf("trim-%s.json", name);
    double v = j ? num(j, field) : 0;
    json_decref(j);
    return isnan(v) ? 0 : v;
}

static void redis_row(const char *label, const char *name, int trim, double min_rt)
{
    char la[128], lb[128], d[200], t[64];
    snprintf(la, sizeof la, "before-rate-%s", pick_rate(name));
    snprintf(lb, sizeof lb, "after-rate-%s", pick_rate(name));
    struct redis_cost c = redis_delta(la, lb);
    struct redis_cost idle = redis_delta("idle-start", "idle-end");
    json_t *j = rate_part(name);
    double n = j ? num(j, "completed") : NA;
    json_decref(j);
    /* The gate's own background (sweep, ticks), at the idle rate. */
    double bg_rt = idle.round_trips / idle.elapsed_s * c.elapsed_s;
    double bg_cmd = idle.commands / idle.elapsed_s * c.elapsed_s;
    double rt = c.round_trips - bg_rt, cmds = c.commands - bg_cmd;
    if (trim) {
        char tname[96];
        snprintf(tname, sizeof tname, "rate-%s", pick_rate(name));
        double evals = trim_evals(tname, "evals"), rounds = trim_evals(tname, "rounds_removing");
        rt -= evals;
        cmds -= 2 * evals + rounds; /* EVAL, ZCARD, and ZREMRANGEBYRANK when it trims */
    }
    double cg = proc_cpu(la, lb, "callgate", 0);
    fmt(d, sizeof d, "%.2f round trips, %.1f commands; Redis %.1f us, callgate %.1f us CPU", rt / n,
        cmds / n, c.cpu_s / n * 1e6, cg / n * 1e6);
    fmt(t, sizeof t, "min %.0f script call%s", min_rt, min_rt == 1 ? "" : "s");
    row(label, rt / n, "round trips/request", d, t, M_NONE);
}

static void redis_cost(void)
{
    section("2. Redis cost per request (INFO commandstats and INFO cpu deltas around the "
            "fixed-rate batches; background subtracted)",
            "round trip = a command a client sent; commands include those run inside "
            "scripts");
    redis_row("GET /health", "health", 0, 1);
    redis_row("GET /get-queue-times", "get-queue-times", 0, 0);
    redis_row("POST /incoming (queued)", "incoming", 1, 1);
    redis_row("POST /queue-wait", "queue-wait", 0, 1);
    redis_row("POST /call-ended (unknown id)", "call-ended", 0, 1);
}

/* ---- 3. the storm ---- */

/* Sum of callgate_http_requests_total for a route in a /metrics dump. */
static double route_requests(const char *metrics, const char *route)
{
    char path[4096], line[1024], needle[256];
    snprintf(path, sizeof path, "%s/%s", dir, metrics);
    snprintf(needle, sizeof needle, "callgate_http_requests_total{route=\"%s\"", route);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NA;
    double sum = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, needle, strlen(needle)) == 0) {
            const char *sp = strrchr(line, ' ');
            if (sp)
                sum += strtod(sp + 1, NULL);
        }
    }
    fclose(f);
    return sum;
}

static void storm(void)
{
    json_t *m = part("machine.json");
    double scale = m ? num(m, "storm_scale") : NA;
    json_decref(m);
    char note[400];
    /* The gate's own intervals are scaled alike (bench/run.sh). */
    snprintf(note, sizeof note,
             "callgate-sim, zero API latency, time scale 1/%.0f: arrivals within %.1f s, calls "
             "%.1f-%.1f s, hold announcements every %.0f s, reconciliation every %.0f s; "
             "queueing is the same at any scale",
             scale, 10 / scale, 5 / scale, 30 / scale, fmax(5, floor(30 / scale)),
             ceil(15 / scale));
    section("3. Admission storm: 5,000 callers within 10 s, limit 100, calls of 5-30 s", note);
    json_t *r = part("storm-report.json");
    char d[200];
    double peak = r ? num(r, "peak_vapi_concurrency") : NA;
    double limit = r ? num(r, "limit") : NA;
    fmt(d, sizeof d, "%.0f of %.0f", peak, limit);
    row("peak concurrency", peak, "calls", d, "never above 100", judge(1, peak, peak <= limit));
    double lost = r ? num(r, "callers.lost") : NA, total = r ? num(r, "callers.total") : NA;
    double connected = r ? num(r, "callers.connected") : NA;
    fmt(d, sizeof d, "%.0f lost; %.0f of %.0f connected", lost, connected, total);
    row("lost callers", lost, "callers", d, "0", judge(1, lost, lost == 0 && connected == 5000));
    double p50 = r ? num(r, "refill_latency_ms.p50") : NA;
    double p99 = r ? num(r, "refill_latency_ms.p99") : NA;
    double nref = r ? num(r, "refill_latency_ms.samples") : NA;
    fmt(d, sizeof d, "%.2f ms (%.0f refills)", p50, nref);
    row("slot refill latency p50", p50, "ms", d, "< 2 ms", judge(1, p50, p50 < 2));
    fmt(d, sizeof d, "%.2f ms", p99);
    row("slot refill latency p99", p99, "ms", d, "< 10 ms", judge(1, p99, p99 < 10));
    double idle = r ? num(r, "idle_slot_seconds") : NA;
    double elapsed = r ? num(r, "elapsed_s") : NA;
    fmt(d, sizeof d, "%.2f slot-s (%.3f%% of %.0f slot-s)", idle, 100 * idle / (elapsed * limit),
        elapsed * limit);
    row("idle slot-seconds while callers waited", idle, "slot-s", d, "as few as possible", M_NONE);
    double cg_ticks = proc_cpu("storm-ready", "after-storm", "callgate", 1);
    fmt(d, sizeof d, "%.3f s (%.2f s over %.0f s)", cg_ticks / connected * 1000, cg_ticks, elapsed);
    row("callgate CPU per 1,000 calls (utime+stime)", cg_ticks / connected * 1000, "s", d,
        "reported", M_NONE);
    struct redis_cost c = redis_delta("storm-ready", "after-storm");
    fmt(d, sizeof d, "%.3f s", c.cpu_s / connected * 1000);
    row("Redis CPU per 1,000 calls (INFO cpu)", c.cpu_s / connected * 1000, "s", d, "reported",
        M_NONE);
    const json_t *after = snap("after-storm");
    double hwm =
        after ? num(json_object_get(json_object_get(after, "procs"), "callgate"), "vmhwm_kb") : NA;
    fmt(d, sizeof d, "%.1f MB", hwm / 1024);
    row("callgate peak RSS (VmHWM)", hwm / 1024, "MB", d, "< 32 MB", judge(1, hwm, hwm < 32768));
    fmt(d, sizeof d, "%.1f s (waits p50 %.1f s, max %.1f s)", elapsed,
        r ? num(r, "wait_s.p50") : NA, r ? num(r, "wait_s.max") : NA);
    row("storm wall time", elapsed, "s", d, NULL, M_NONE);
    int invariants_ok = r && json_is_true(json_object_get(r, "ok"));
    row("simulator invariants", invariants_ok, "", invariants_ok ? "all held" : "FAILED",
        "all hold", judge(1, 0, invariants_ok));

    /* Redis per admitted call, against one script call per state change:
     * enter, the Vapi call's id, connected, and one per end signal
     * (Twilio's completed moves the call to ending; Vapi's status-update
     * "ended" releases the slot and admits the next caller in the same
     * script; the end-of-call report that follows is a duplicate, which
     * still takes one look), plus one look per /queue-wait poll. Vapi's
     * other status updates need no Redis. */
    double qw = route_requests("metrics-storm.txt", "/queue-wait");
    double status = route_requests("metrics-storm.txt", "/call-status");
    const json_t *rep =
        json_object_get(json_object_get(r, "counters"), "vapi.webhook.end-of-call-report.ok");
    double reports = json_is_number(rep) ? json_number_value(rep) : NA;
    double minimum = 3 * connected + status + connected + reports + qw;
    fmt(d, sizeof d, "%.2f (minimum %.2f, of which %.2f /queue-wait polls); %.1f commands",
        c.round_trips / connected, minimum / connected, qw / connected, c.commands / connected);
    row("Redis round trips per admitted call", c.round_trips / connected, "", d,
        "one script call per state change", M_NONE);
    fmt(d, sizeof d, "%.0f beyond the minimum (%.2f per call)", c.round_trips - minimum,
        (c.round_trips - minimum) / connected);
    row("  extra round trips", c.round_trips - minimum, "", d, NULL, M_NONE);
    json_decref(r);
}

/* ---- 4. scaling ---- */

static void scaling(void)
{
    section("4. Scaling: 3,000 callers passing through a queue held at each length (hang-up "
            "of the oldest, an arrival, a poll), 3,000 requests/s",
            "CPU per caller = callgate + Redis for its three requests");
    static const long steps[][2] = {{100, 10}, {1000, 100}, {3000, 1000}, {10000, 4900}};
    const size_t nsteps = sizeof steps / sizeof steps[0];
    double cpu[4], in50[4], in99[4], qw50[4], qw99[4];
    int valid = 1;
    for (size_t i = 0; i < nsteps; i++) {
        long n = steps[i][0];
        char la[64], lb[64], name[64], d[200], fig[96];
        snprintf(la, sizeof la, "before-scale-%ld", n);
        snprintf(lb, sizeof lb, "after-scale-%ld", n);
        snprintf(name, sizeof name, "scale-%ld.json", n);
        json_t *j = part(name);
        double probes = 3000;
        double cg = proc_cpu(la, lb, "callgate", 0);
        struct redis_cost c = redis_delta(la, lb);
        cpu[i] = (cg + c.cpu_s) / probes * 1e6;
        in50[i] = j ? num(j, "paths./incoming.p50") : NA;
        in99[i] = j ? num(j, "paths./incoming.p99") : NA;
        qw50[i] = j ? num(j, "paths./queue-wait.p50") : NA;
        qw99[i] = j ? num(j, "paths./queue-wait.p99") : NA;
        snprintf(name, sizeof name, "scale-%ld-waiting-before.txt", n);
        double qb = text_num(name);
        /* The gate's counters start from zero at each step. */
        const json_t *sb = snap(lb);
        double of =
            sb ? num(json_object_get(json_object_get(sb, "hashes"), "gate"), "overflowed") : NA;
        int ok = j && num(j, "completed") == num(j, "requests") &&
                 num(j, "status.2xx") == num(j, "requests") && (isnan(of) || of == 0) &&
                 fabs(qb - (double)steps[i][1]) <= 2;
        valid &= ok && !isnan(cpu[i]);
        fmt(d, sizeof d, "%5.0f us (cg %.0f + redis %.0f); in %.2f/%.2f qw %.2f/%.2f ms%s", cpu[i],
            cg / probes * 1e6, c.cpu_s / probes * 1e6, in50[i] / 1000, in99[i] / 1000,
            qw50[i] / 1000, qw99[i] / 1000, ok ? "" : " ERRORS");
        fmt(fig, sizeof fig, "callers %ld, queue %.0f: CPU/caller; p50/p99", n, qb);
        row(fig, cpu[i], "us", d, NULL, M_NONE);
        json_decref(j);
    }
    struct {
        const char *name;
        double *v;
        double limit;
    } series[] = {
        {"flatness: CPU per caller", cpu, 1.5},   {"flatness: /incoming p50", in50, 1.5},
        {"flatness: /incoming p99", in99, 2.0},   {"flatness: /queue-wait p50", qw50, 1.5},
        {"flatness: /queue-wait p99", qw99, 2.0},
    };
    for (size_t s = 0; s < sizeof series / sizeof series[0]; s++) {
        double lo = INFINITY, hi = 0;
        for (size_t i = 0; i < nsteps; i++) {
            lo = fmin(lo, series[s].v[i]);
            hi = fmax(hi, series[s].v[i]);
        }
        double ratio = hi / lo;
        char d[64], t[32];
        fmt(d, sizeof d, "%.2f (largest/smallest)", ratio);
        fmt(t, sizeof t, "<= %.1f", series[s].limit);
        row(series[s].name, ratio, "", d, t,
            judge(1, ratio, valid && isfinite(ratio) && ratio <= series[s].limit));
    }
}

/* ---- 5. the poller ---- */

static void poller(void)
{
    section("5. Wait-time poller: 1,000 TaskQueues, page size 1000, every 5 s (callgate-sim's "
            "TaskRouter)",
            NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/callgate-waittime.log", dir);
    FILE *f = fopen(path, "r");
    double req[256], wall[256];
    int n = 0, names = 0, bad = 0;
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            if (strstr(line, "wait-time refresh done") == NULL)
                continue;
            json_error_t err;
            json_t *j = json_loads(line, 0, &err);
            if (j == NULL)
                continue;
            if (n < 256) {
                req[n] = num(j, "stats_requests");
                wall[n] = num(j, "ms");
                names += (int)num(j, "names_requests");
                bad += strcmp(str(j, "result"), "ok") != 0;
                n++;
            }
            json_decref(j);
        }
        free(line);
        fclose(f);
    }
    double rmax = 0, wsum = 0, wmax = 0;
    for (int i = 0; i < n; i++) {
        rmax = fmax(rmax, req[i]);
        wsum += wall[i];
        wmax = fmax(wmax, wall[i]);
    }
    char d[200];
    /* The sim's own count, as a cross-check of the log. */
    json_t *s0 = part("sim-status-wt-start.json"), *s1 = part("sim-status-wt-end.json");
    double sim_req = s0 && s1 ? num(s1, "taskrouter.requests.statistics_list") -
                                    num(s0, "taskrouter.requests.statistics_list")
                              : NA;
    json_decref(s0);
    json_decref(s1);
    fmt(d, sizeof d, "%.0f (max over %d refreshes; %d failed)", n ? rmax : NA, n, bad);
    row("TaskRouter requests per refresh", n ? rmax : NA, "requests", d, "1",
        judge(1, n ? rmax : NA, n > 0 && rmax == 1 && bad == 0));
    row("  the per-queue approach", 1001, "requests", "1,001 (1 list + 1,000 queues)",
        "for "
        "comparison",
        M_NONE);
    fmt(d, sizeof d, "%.0f Statistics requests seen by the sim (after the first)", sim_req);
    row("  cross-check", sim_req, "", d, NULL, M_NONE);
    fmt(d, sizeof d, "%d in %d refreshes (every 10th, for friendly names)", names, n);
    row("  TaskQueue list reads", names, "", d, NULL, M_NONE);
    fmt(d, sizeof d, "mean %.0f ms, max %.0f ms", n ? wsum / n : NA, n ? wmax : NA);
    row("refresh wall time", n ? wsum / n : NA, "ms", d, "reported", M_NONE);
    rate_row("read /wait-times/{sid} at 5,000/s", "wait-times-sid", 1);
}

/* ---- 6. accuracy ---- */

static void accuracy(void)
{
    section("6. Estimated wait accuracy: MAE of each caller's first announced wait against "
            "the actual wait",
            "limit 10, calls of about 10 s (3-minute calls 18 times faster), 2.5 minutes of "
            "arrivals, run alongside the storm on its own Redis; baseline: the trailing "
            "average of the last 20 connected callers' waits at the announcement (0 before "
            "any connected)");
    const char *kinds[] = {"steady", "bursty"};
    for (size_t i = 0; i < 2; i++) {
        json_t *r = partf("accuracy-%s.json", kinds[i]);
        double cg = r ? num(r, "estimate.mae_s") : NA;
        double base = r ? num(r, "estimate.baseline.mae_s") : NA;
        double n = r ? num(r, "estimate.samples") : NA;
        double wc = r ? num(r, "estimate.baseline.warm_callgate_mae_s") : NA;
        double wb = r ? num(r, "estimate.baseline.warm_mae_s") : NA;
        double wn = r ? num(r, "estimate.baseline.warm_samples") : NA;
        int ok = r && json_is_true(json_object_get(r, "ok"));
        char d[240], fig[96];
        fmt(d, sizeof d, "%.2f s vs %.2f s = %.2f (%.0f callers; bias %+.2f vs %+.2f s)%s", cg,
            base, cg / base, n, r ? num(r, "estimate.bias_s") : NA,
            r ? num(r, "estimate.baseline.bias_s") : NA, ok ? "" : " INVARIANTS FAILED");
        fmt(fig, sizeof fig, "%s: callgate MAE vs trailing average", kinds[i]);
        row(fig, cg / base, "ratio", d, "<= 0.5", judge(1, cg / base, ok && cg <= 0.5 * base));
        /* Callers announced before anyone connected get the baseline's 0;
         * show the comparison without them when there were any. */
        if (wn < n) {
            fmt(d, sizeof d, "%.2f s vs %.2f s = %.2f (%.0f callers)", wc, wb, wc / wb, wn);
            fmt(fig, sizeof fig, "  %s, after the first caller connected", kinds[i]);
            row(fig, wc / wb, "ratio", d, NULL, M_NONE);
        }
        json_decref(r);
    }

    /* The TaskQueue estimate (wait-time service), scored by callgate-sim
     * against its TaskRouter model's truth: each sample of /wait-times
     * against the actual wait of the next task to enter that queue. */
    json_t *t = part("tr-accuracy.json");
    const json_t *a = t ? json_object_get(json_object_get(t, "taskrouter"), "accuracy") : NULL;
    double cg = a ? num(a, "mae_callgate_s") : NA, seed = a ? num(a, "mae_seed_s") : NA;
    double scored = a ? num(a, "scored") : NA;
    char d[240];
    fmt(d, sizeof d, "%.2f s vs %.2f s = %.2f (%.0f samples scored of %.0f; bias %+.2f vs %+.2f s)",
        cg, seed, cg / seed, scored, a ? num(a, "samples") : NA, a ? num(a, "bias_callgate_s") : NA,
        a ? num(a, "bias_seed_s") : NA);
    row("TaskQueues: callgate MAE vs the seed's 15-min average", cg / seed, "ratio", d, "< 1",
        judge(1, cg / seed, a != NULL && scored >= 100 && cg < seed));
    fmt(d, sizeof d,
        "callgate %.0f, seed %.0f of %.0f samples (stalled queues: %.0f vs %.0f of %.0f)",
        a ? num(a, "below_lower_bound_callgate") : NA, a ? num(a, "below_lower_bound_seed") : NA,
        a ? num(a, "pending_lower_bounds") : NA,
        a ? num(a, "below_lower_bound_stalled_callgate") : NA,
        a ? num(a, "below_lower_bound_stalled_seed") : NA, a ? num(a, "stalled_lower_bounds") : NA);
    row("  below the wait a still-waiting task already reached", NA, "", d, NULL, M_NONE);
    json_decref(t);
}

/* ---- footprint of the HTTP benchmarks' instances ---- */

static void footprint(void)
{
    section("Footprint of the other instances", NULL);
    const struct {
        const char *label, *snap;
    } rows[] = {{"gate instance after the HTTP and scaling runs", "gate-end"},
                {"wait-time instance (1,000 queues)", "wt-end"}};
    for (size_t i = 0; i < 2; i++) {
        const json_t *s = snap(rows[i].snap);
        double hwm =
            s ? num(json_object_get(json_object_get(s, "procs"), "callgate"), "vmhwm_kb") : NA;
        char d[64];
        fmt(d, sizeof d, "%.1f MB peak RSS", hwm / 1024);
        row(rows[i].label, hwm / 1024, "MB", d, NULL, M_NONE);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: cgbench-report PARTS_DIR RESULTS.json RESULTS.md\n");
        return 2;
    }
    dir = argv[1];
    json_t *machine = part("machine.json");
    if (machine == NULL) {
        fprintf(stderr, "cgbench-report: %s/machine.json is missing\n", dir);
        return 2;
    }
    json_t *end = part("end.json");
    load_snaps();
    sections = json_array();
    cg_buf_init(&md, 1 << 20);

    printf("\ncallgate benchmarks on %s, %lld cores, %.0f GiB, %s; %s (%s)\n", str(machine, "cpu"),
           (long long)num(machine, "cores"), num(machine, "memory_gib"), str(machine, "kernel"),
           str(machine, "compiler"), str(machine, "build_type"));
    printf("%s; load average at start %s, at end %s; nginx %s, wrk %s, redis %s\n",
           str(machine, "date"), str(machine, "load_start"), end ? str(end, "load_end") : "?",
           str(machine, "nginx"), str(machine, "wrk"), str(machine, "redis"));
    cg_buf_printf(&md,
                  "Machine: %s, %lld cores, %.0f GiB, %s; %s (%s); %s; load average at start "
                  "%s, at end %s; nginx %s, wrk %s, Redis %s; bench/run.sh took %.0f s.\n",
                  str(machine, "cpu"), (long long)num(machine, "cores"), num(machine, "memory_gib"),
                  str(machine, "kernel"), str(machine, "compiler"), str(machine, "build_type"),
                  str(machine, "date"), str(machine, "load_start"),
                  end ? str(end, "load_end") : "?", str(machine, "nginx"), str(machine, "wrk"),
                  str(machine, "redis"), end ? num(end, "elapsed_s") : NA);

    /* Anything else busy on the machine when the run started or ended. */
    for (int k = 0; k < 2; k++) {
        char path[4096], line[256];
        snprintf(path, sizeof path, "%s/%s", dir, k ? "ps-end.txt" : "ps-start.txt");
        FILE *f = fopen(path, "r");
        struct cg_buf busy;
        cg_buf_init(&busy, 1024);
        while (f && fgets(line, sizeof line, f)) {
            double pcpu;
            char etime[32], comm[64];
            if (sscanf(line, "%lf %31s %63s", &pcpu, etime, comm) == 3 && pcpu >= 10)
                cg_buf_printf(&busy, "%s%s %.0f%%", busy.len ? ", " : "", comm, pcpu);
        }
        const char *what = f == NULL  ? "not recorded"
                           : busy.len ? cg_buf_str(&busy)
                                      : "nothing above 10% CPU";
        if (f)
            fclose(f);
        printf("busy at the %s: %s\n", k ? "end" : "start", what);
        cg_buf_printf(&md, "Busy at the %s (ps): %s.\n", k ? "end" : "start", what);
        cg_buf_free(&busy);
    }

    throughput();
    fixed_rate();
    redis_cost();
    storm();
    scaling();
    poller();
    accuracy();
    footprint();

    printf("\n%d targets met, %d missed.\n", nmet, nmissed);
    cg_buf_printf(&md, "\n%d targets met, %d missed.\n", nmet, nmissed);

    json_t *root = json_object();
    json_object_set(root, "machine", machine);
    if (end)
        json_object_set(root, "end", end);
    json_object_set(root, "sections", sections);
    json_object_set_new(root, "targets_met", json_integer(nmet));
    json_object_set_new(root, "targets_missed", json_integer(nmissed));
    int rc = 0;
    if (json_dump_file(root, argv[2], JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0) {
        fprintf(stderr, "cgbench-report: cannot write %s\n", argv[2]);
        rc = 2;
    }
    FILE *f = fopen(argv[3], "w");
    if (f == NULL || fputs(cg_buf_str(&md), f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cgbench-report: cannot write %s: %s\n", argv[3], strerror(errno));
        rc = 2;
    }
    json_decref(root);
    json_decref(machine);
    json_decref(end);
    json_decref(snaps);
    json_decref(sections);
    cg_buf_free(&md);
    /* Missed targets are figures, not failures: they are in the table. */
    return rc;
}
