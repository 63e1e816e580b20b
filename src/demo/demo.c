/*
 * demo.c - `callgate demo`: a private Redis, callgate-sim and callgate as
 * child processes, a live progress line and the report in plain words.
 *
 * The demo is a foreground command, not the daemon: it blocks freely
 * (bclient.h: libcurl easy, hiredis' blocking client; sleeps). Its only concurrency is
 * with its children, which it watches from one loop that polls the
 * simulator's /sim/status every POLL_MS and reaps exits.
 *
 * Children never outlive it: each runs in its own process group (so a
 * terminal's Ctrl-C reaches the demo alone, which then stops them in order:
 * the simulator first so it writes its report, then callgate gracefully,
 * then Redis), and each is armed with PR_SET_PDEATHSIG, so even a SIGKILL
 * of the demo takes them down.
 */
#include "base/fmacros.h"

#include "base/err.h"
#include "demo/demo.h"

#include "demo/bclient.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/json.h"
#include "demo/proc.h"
#include "base/url.h"

#define GATE_NAME    "demo"
#define KEY_PATTERN  "cg:{" GATE_NAME "}:*"
#define DEMO_ACCOUNT "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* the simulator's */
#define DEMO_QUEUE   "callgate-demo"
/* The gate's claim on its Twilio queue (gate/claim.h), outside its keys. */
#define CLAIM_KEY         "cg:queue-claim:" DEMO_ACCOUNT ":" DEMO_QUEUE
#define POLL_MS           500
#define PLAIN_EVERY_MS    5000 /* progress lines when stdout is not a terminal */
#define SIM_START_MS      10000
#define SIM_STOP_MS       10000 /* after SIGTERM it settles at once and reports */
#define GATE_STOP_MS      15000 /* SHUTDOWN_GRACE_MS below, and margin */
#define SLACK_S           60    /* watchdog margin over the scenario's own bounds */
#define GATE_READY_S      30    /* the simulator's wait for callgate's /health */
#define MAX_WAIT_SECONDS  30    /* callers past it get the overflow message */
#define STATUS_MAX_BYTES  65536
#define MAX_ENV           48
#define EXIT_INTERRUPTED  130
#define DEFAULT_SIM_LIMIT 10
#define DIR_MAX           256
#define FILE_MAX          (DIR_MAX + 32)

extern char **environ;

/* ---- signals ---- */

static volatile sig_atomic_t signals_seen;
static volatile sig_atomic_t last_signal;

static void on_signal(int sig)
{
    last_signal = sig;
    if (signals_seen < 100)
        signals_seen++;
}

static const int handled_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSIGNALS (sizeof handled_signals / sizeof handled_signals[0])

/* No SA_RESTART: a signal must cut a sleep short so the demo reacts now. */
static int install_signals(struct sigaction *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NSIGNALS; i++)
        if (sigaction(handled_signals[i], &sa, &saved[i]) != 0)
            return -1;
    return 0;
}

static void restore_signals(const struct sigaction *saved)
{
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(handled_signals[i], &saved[i], NULL);
}

static void nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* EINTR: a signal arrived; the caller looks */
}

/* ---- state ---- */

struct child {
    pid_t pid; /* 0: not started or reaped */
    int code;  /* exit code once reaped (128 + signal if killed), else -1 */
};

struct live {
    int have;
    char phase[24];
    double t;
    long waiting, active, limit, connected, abandoned, overflowed, lost, arrived, callers;
    double ewt;                      /* < 0: nothing announced yet */
    long cb_requested, cb_connected; /* queued callbacks: taken, called back */
};

struct demo {
    /* Paths are bounded well below PATH_MAX so that every message that
     * quotes one fits its buffer; TMPDIR longer than DIR_MAX is refused. */
    char dir[DIR_MAX]; /* work directory */
    char scenario_path[FILE_MAX];
    char report_path[FILE_MAX];
    char port_path[FILE_MAX];
    char gate_log[FILE_MAX];
    char sim_log[FILE_MAX];
    char exe[FILE_MAX];
    char sim_exe[FILE_MAX];

    json_t *scenario;
    long limit;
    double duration_s, drain_s;
    int expected_call_s;

    struct cg_redis_server rs;
    int own_redis;
    const char *ext_redis_url; /* REDIS_URL, when set */
    char redis_url[256];
    char redis_shown[192]; /* without the password */

    int gate_port, sim_port;
    char sim_url[64], gate_url[64];
    char admin_token[40]; /* the wallboard's ?token= */
    struct child sim, gate;

    int tty;
    int line_open; /* a progress line is on the terminal without its newline */
    uint64_t next_plain_ms;
    struct live last;

    int interrupted;
    const char *failure; /* why the run failed beyond the invariants */
    char failure_buf[256];
};

/* ---- output ---- */

/* Ends the progress line so that the next output starts on its own. */
static void end_line(struct demo *d)
{
    if (d->line_open) {
        fputc('\n', stdout);
        fflush(stdout);
        d->line_open = 0;
    }
}

__attribute__((format(printf, 2, 3))) static void say(struct demo *d, const char *fmt, ...)
{
    end_line(d);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

__attribute__((format(printf, 2, 3))) static void complain(struct demo *d, const char *fmt, ...)
{
    end_line(d);
    fflush(stdout);
    fputs("callgate demo: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void fail_with(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the first reason the run failed apart from the invariants. */
static void fail_with(struct demo *d, const char *fmt, ...)
{
    if (d->failure)
        return;
    va_list ap;
    va_start(ap, fmt);
    cg_err_vset(d->failure_buf, sizeof d->failure_buf, fmt, ap);
    va_end(ap);
    d->failure = d->failure_buf;
}

/* The last lines of a log, so a failure explains itself on the terminal. */
static void print_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long keep = 8192;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > keep && fseek(f, size - keep, SEEK_SET) != 0)
            rewind(f);
        else if (size <= keep)
            rewind(f);
    }
    char buf[8193];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *start = buf;
    int seen = 0;
    for (size_t i = n; i > 0; i--) {
        if (buf[i - 1] == '\n' && i != n && ++seen == lines) {
            start = buf + i;
            break;
        }
    }
    fprintf(stderr, "  --- %s (last lines) ---\n", path);
    for (const char *p = start; *p;) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(stderr, "  %.*s\n", len, p);
        p += len + (nl ? 1 : 0);
    }
}

/* ---- files ---- */

static int make_workdir(struct demo *d, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (strlen(tmp) > DIR_MAX - 32) {
        cg_err_set(err, errlen, "TMPDIR is too long (at most %d characters)", DIR_MAX - 32);
        return -1;
    }
    snprintf(d->dir, sizeof d->dir, "%s/callgate-demo-XXXXXX", tmp);
    if (mkdtemp(d->dir) == NULL) {
        cg_err_set(err, errlen, "cannot create a temporary directory (%s): %s", d->dir,
                   strerror(errno));
        d->dir[0] = '\0';
        return -1;
    }
    snprintf(d->scenario_path, sizeof d->scenario_path, "%s/scenario.json", d->dir);
    snprintf(d->report_path, sizeof d->report_path, "%s/report.json", d->dir);
    snprintf(d->port_path, sizeof d->port_path, "%s/sim.port", d->dir);
    snprintf(d->gate_log, sizeof d->gate_log, "%s/callgate.log", d->dir);
    snprintf(d->sim_log, sizeof d->sim_log, "%s/callgate-sim.log", d->dir);
    return 0;
}

/* Reads a small text file whole; NULL if it does not exist yet. */
static char *read_small_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = cg_malloc(max + 1);
    size_t n = fread(buf, 1, max, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* ---- the scenario ---- */

static double num_at(const json_t *root, const char *path, double dflt)
{
    double v;
    return cg_json_num(root, path, &v) == 0 ? v : dflt;
}

/* Shortens the arrivals to `seconds`, keeping the schedule's shape (every
 * segment boundary scales alike) and the rates, so the same surge happens
 * with fewer callers. */
static int scale_scenario(json_t *sc, long seconds, char *err, size_t errlen)
{
    double old = num_at(sc, "duration_s", 0);
    if (!(old > 0)) {
        cg_err_set(err, errlen, "the demo scenario has no duration_s");
        return -1;
    }
    double f = (double)seconds / old;
    json_t *segs = cg_json_path(sc, "callers.arrivals.segments");
    size_t i;
    json_t *seg;
    json_array_foreach (segs, i, seg) {
        double until = num_at(seg, "until_s", 0);
        if (json_object_set_new(seg, "until_s", json_real(until * f)) != 0) {
            cg_err_set(err, errlen, "cannot scale the demo scenario");
            return -1;
        }
    }
    if (json_object_set_new(sc, "duration_s", json_real((double)seconds)) != 0) {
        cg_err_set(err, errlen, "cannot scale the demo scenario");
        return -1;
    }
    return 0;
}

static int prepare_scenario(struct demo *d, char *err, size_t errlen)
{
    char jerr[160];
    d->scenario = cg_json_parse(cg_demo_scenario_json, strlen(cg_demo_scenario_json),
                                CG_JSON_MAX_DEPTH, jerr, sizeof jerr);
    if (!d->scenario) {
        cg_err_set(err, errlen, "the built-in scenario is not valid JSON: %s", jerr);
        return -1;
    }
    const char *secs = getenv("CALLGATE_DEMO_SECONDS");
    if (secs && *secs) {
        char *end = NULL;
        errno = 0;
        long v = strtol(secs, &end, 10);
        if (errno || !end || *end || v < 1 || v > 3600) {
            cg_err_set(err, errlen,
                       "CALLGATE_DEMO_SECONDS must be a whole number of seconds, 1-3600");
            return -1;
        }
        if (scale_scenario(d->scenario, v, err, errlen) != 0)
            return -1;
    }
    long long limit;
    d->limit =
        cg_json_int(d->scenario, "vapi.limit", &limit) == 0 ? (long)limit : DEFAULT_SIM_LIMIT;
    d->duration_s = num_at(d->scenario, "duration_s", 10);
    d->drain_s = num_at(d->scenario, "drain_s", 30);
    /* Seed callgate's estimator with the scenario's typical call, as an
     * operator would set EXPECTED_CALL_SECONDS from their own calls. */
    double typical = num_at(d->scenario, "callers.duration.median_s",
                            num_at(d->scenario, "callers.duration.mean_s", 2));
    d->expected_call_s = typical < 1 ? 1 : (int)lround(typical);
    if (json_dump_file(d->scenario, d->scenario_path, JSON_INDENT(2)) != 0) {
        cg_err_set(err, errlen, "cannot write %s", d->scenario_path);
        return -1;
    }
    return 0;
}

/* ---- an external Redis ---- */

/* Deletes every key of the demo's gate, so a run starts from nothing even
 * after an interrupted one, and leaves nothing behind. Returns the number
 * deleted, or -1 with err. */
static long clear_gate_keys(const char *url, char *err, size_t errlen)
{
    long deleted = -1;
    redisReply *r = NULL;
    redisContext *c = cg_bredis_connect(url, 3000, err, errlen);
    if (c == NULL)
        return -1;
    long n = 0;
    char cursor[32] = "0";
    do {
        r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, KEY_PATTERN);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            cg_err_set(err, errlen, "SCAN failed: %s",
                       r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
            goto out;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING)
                continue;
            redisReply *dr =
                redisCommand(c, "DEL %b", keys->element[i]->str, (size_t)keys->element[i]->len);
            if (!dr || dr->type == REDIS_REPLY_ERROR) {
                cg_err_set(err, errlen, "DEL failed: %s", dr ? dr->str : c->errstr);
                if (dr)
                    freeReplyObject(dr);
                goto out;
            }
            if (dr->type == REDIS_REPLY_INTEGER)
                n += (long)dr->integer;
            freeReplyObject(dr);
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    /* The demo gate's claim on its queue, if it is the demo's. */
    r = redisCommand(c, "GET %s", CLAIM_KEY);
    int ours = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "cg:{" GATE_NAME "}:") == 0;
    if (r)
        freeReplyObject(r);
    r = NULL;
    if (ours) {
        r = redisCommand(c, "DEL %s", CLAIM_KEY);
        if (r && r->type == REDIS_REPLY_INTEGER)
            n += (long)r->integer;
    }
    deleted = n;
out:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return deleted;
}

static int setup_redis(struct demo *d, char *err, size_t errlen)
{
    const char *url = getenv("REDIS_URL");
    if (url && *url) {
        d->ext_redis_url = url;
        snprintf(d->redis_url, sizeof d->redis_url, "%s", url);
        struct cg_redis_url u;
        if (cg_redis_url_parse(url, &u, err, errlen) != 0)
            return -1;
        snprintf(d->redis_shown, sizeof d->redis_shown, "redis://%.100s:%d/%d", u.host, u.port,
                 u.db);
        cg_redis_url_free(&u);
        char e[256];
        long n = clear_gate_keys(url, e, sizeof e);
        if (n < 0) {
            cg_err_set(err, errlen, "REDIS_URL (%s): %s", d->redis_shown, e);
            return -1;
        }
        say(d,
            "callgate demo: using REDIS_URL (%s); the demo writes keys cg:{%s}:* there "
            "(GATE_NAME=%s) and deletes them at the end%s\n",
            d->redis_shown, GATE_NAME, GATE_NAME,
            n > 0 ? ", and deleted those an earlier run left" : "");
        return 0;
    }
    if (cg_redis_server_start_own_group(&d->rs, 0, err, errlen) != 0)
        return -1;
    d->own_redis = 1;
    snprintf(d->redis_url, sizeof d->redis_url, "%s", d->rs.url);
    snprintf(d->redis_shown, sizeof d->redis_shown, "%s", d->rs.url);
    say(d, "callgate demo: private Redis at %s (removed on exit; set REDIS_URL to use yours)\n",
        d->rs.url);
    return 0;
}

/* ---- children ---- */

struct envb {
    char *v[MAX_ENV + 1];
    size_t n;
};

__attribute__((format(printf, 2, 3))) static void env_add(struct envb *e, const char *fmt, ...)
{
    if (e->n == MAX_ENV)
        abort(); /* a programming error: MAX_ENV is sized for the lists below */
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    e->v[e->n++] = cg_strdup(buf);
    e->v[e->n] = NULL;
}

/* The children get a clean environment: a variable the user exported for a
 * real deployment (TWILIO_QUEUE_SID, http_proxy, ...) must not point the
 * demo's processes anywhere but at each other. Only what a process needs to
 * run at all, and the sanitizers' settings, pass through. */
static void env_base(struct envb *e)
{
    static const char *const pass[] = {"PATH",         "HOME",          "TMPDIR",
                                       "LANG",         "LC_ALL",        "TZ",
                                       "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        const char *v = getenv(pass[i]);
        if (v)
            env_add(e, "%s=%s", pass[i], v);
    }
}

static void env_free(struct envb *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    e->n = 0;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Starts argv[0] in its own process group, stdout and stderr to log_path,
 * in directory cwd. */
static int spawn(struct child *ch, char *const *argv, char *const *envp, const char *log_path,
                 const char *cwd, char *err, size_t errlen)
{
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        cg_err_set(err, errlen, "cannot open %s: %s", log_path, strerror(errno));
        return -1;
    }
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0) {
        cg_err_set(err, errlen, "cannot open /dev/null: %s", strerror(errno));
        close(logfd);
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        cg_err_set(err, errlen, "fork: %s", strerror(errno));
        close(logfd);
        close(nullfd);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* Armed before checking the parent, so a parent that died in
         * between cannot be missed. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(127);
        /* The child starts with the signal state a shell would give it. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (dup2(nullfd, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
            dup2(logfd, STDERR_FILENO) < 0 || chdir(cwd) != 0)
            _exit(127);
        execve(argv[0], argv, envp);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* Also from here, so the group exists before anyone signals it. */
    setpgid(pid, pid);
    close(logfd);
    close(nullfd);
    ch->pid = pid;
    ch->code = -1;
    return 0;
}

/* Reaps ch if it exited; returns 1 when it is no longer running. */
static int reaped(struct child *ch)
{
    if (ch->pid <= 0)
        return 1;
    int status;
    pid_t r = waitpid(ch->pid, &status, WNOHANG);
    if (r == ch->pid || (r < 0 && errno == ECHILD)) {
        ch->code = r == ch->pid ? exit_code(status) : -1;
        ch->pid = 0;
        return 1;
    }
    return 0;
}

/* Sends sig to ch's process group and waits up to timeout_ms (less if the
 * user insists with another signal), then kills the group. Returns the
 * exit code, or -1 if it was not running. */
static int stop_child(struct child *ch, int sig, long timeout_ms)
{
    if (reaped(ch))
        return ch->code;
    kill(-ch->pid, sig);
    uint64_t deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    while (!reaped(ch)) {
        /* A second Ctrl-C means "now". */
        if (cg_mono_ms() >= deadline || signals_seen >= 2) {
            kill(-ch->pid, SIGKILL);
            int status;
            if (waitpid(ch->pid, &status, 0) == ch->pid)
                ch->code = exit_code(status);
            ch->pid = 0;
            break;
        }
        nap_ms(20);
    }
    return ch->code;
}

static int find_binaries(struct demo *d, char *err, size_t errlen)
{
    ssize_t n = readlink("/proc/self/exe", d->exe, sizeof d->exe - 1);
    if (n <= 0 || (size_t)n >= sizeof d->exe - 1) {
        cg_err_set(err, errlen, "cannot find this program's path (/proc/self/exe)");
        return -1;
    }
    d->exe[n] = '\0';
    /* callgate-sim is built next to callgate. */
    const char *slash = strrchr(d->exe, '/');
    int dirlen = slash ? (int)(slash - d->exe) : 0;
    if (dirlen > DIR_MAX) {
        cg_err_set(err, errlen, "this program's path is too long");
        return -1;
    }
    snprintf(d->sim_exe, sizeof d->sim_exe, "%.*s/callgate-sim", dirlen, d->exe);
    if (access(d->sim_exe, X_OK) != 0) {
        cg_err_set(err, errlen, "%s not found (build everything: make, or cmake --build <dir>)",
                   d->sim_exe);
        return -1;
    }
    return 0;
}

static int start_sim(struct demo *d, char *err, size_t errlen)
{
    d->gate_port = cg_free_port();
    if (d->gate_port <= 0) {
        cg_err_set(err, errlen, "no free port for callgate");
        return -1;
    }
    snprintf(d->gate_url, sizeof d->gate_url, "http://127.0.0.1:%d", d->gate_port);
    char *argv[] = {d->sim_exe,     "--scenario", d->scenario_path,
                    "--public-url", d->gate_url,  "--gate",
                    d->gate_url,    "--port",     "0",
                    "--port-file",  d->port_path, "--report",
                    d->report_path, "--progress", NULL};
    struct envb e = {0};
    env_base(&e);
    int rc = spawn(&d->sim, argv, e.v, d->sim_log, d->dir, err, errlen);
    env_free(&e);
    if (rc != 0)
        return -1;
    /* The simulator picks its own port (no race for it) and writes it to
     * the port file once it listens. */
    uint64_t deadline = cg_mono_ms() + SIM_START_MS;
    while (cg_mono_ms() < deadline && signals_seen == 0) {
        char *text = read_small_file(d->port_path, 32);
        if (text) {
            d->sim_port = atoi(text);
            free(text);
            if (d->sim_port > 0) {
                snprintf(d->sim_url, sizeof d->sim_url, "http://127.0.0.1:%d", d->sim_port);
                return 0;
            }
        }
        if (reaped(&d->sim)) {
            cg_err_set(err, errlen, "callgate-sim exited at start (status %d)", d->sim.code);
            print_tail(d->sim_log, 15);
            return -1;
        }
        nap_ms(20);
    }
    if (signals_seen)
        return -1;
    cg_err_set(err, errlen, "callgate-sim did not start listening within %d s",
               SIM_START_MS / 1000);
    return -1;
}

/* A fresh admin token for the run, so that the wallboard's address printed
 * on the terminal is the only way in. */
static int make_token(struct demo *d, char *err, size_t errlen)
{
    unsigned char raw[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(raw, 1, sizeof raw, f) : 0;
    if (f)
        fclose(f);
    if (got != sizeof raw) {
        cg_err_set(err, errlen, "cannot read /dev/urandom for the admin token");
        return -1;
    }
    cg_hex_encode(raw, sizeof raw, d->admin_token);
    return 0;
}

static int start_gate(struct demo *d, char *err, size_t errlen)
{
    if (make_token(d, err, errlen) != 0)
        return -1;
    struct envb e = {0};
    env_base(&e);
    env_add(&e, "PORT=%d", d->gate_port);
    env_add(&e, "BIND_ADDRESS=127.0.0.1");
    env_add(&e, "PUBLIC_URL=%s", d->gate_url);
    env_add(&e, "REDIS_URL=%s", d->redis_url);
    env_add(&e, "GATE_NAME=%s", GATE_NAME);
    env_add(&e, "INSTANCE_ID=demo-1");
    env_add(&e, "LOG_LEVEL=warn"); /* the terminal is for the progress line */
    env_add(&e, "MAX_CONCURRENCY=%ld", d->limit);
    env_add(&e, "ADMIN_TOKEN=%s", d->admin_token);
    /* The simulator's accounts: its defaults, which the scenario keeps. */
    env_add(&e, "TWILIO_API_BASE_URL=%s", d->sim_url);
    env_add(&e, "TWILIO_ACCOUNT_SID=" DEMO_ACCOUNT);
    env_add(&e, "TWILIO_QUEUE_NAME=" DEMO_QUEUE);
    env_add(&e, "TWILIO_AUTH_TOKEN=sim-auth-token");
    env_add(&e, "VAPI_BASE_URL=%s", d->sim_url);
    env_add(&e, "VAPI_API_KEY=sim-vapi-key");
    env_add(&e, "VAPI_WEBHOOK_SECRET=sim-vapi-secret");
    env_add(&e, "VAPI_PHONE_NUMBER_ID=sim-phone-number");
    env_add(&e, "VAPI_ASSISTANT_ID=sim-assistant");
    /* Demo time runs fast: a call lasts seconds, not minutes, so every
     * timer scales down with it. */
    env_add(&e, "EXPECTED_CALL_SECONDS=%d", d->expected_call_s);
    env_add(&e, "ANNOUNCE_INTERVAL_SECONDS=5");
    /* Queued callbacks, offered past 10 s of estimated wait; the scenario's
     * callers take some (scenarios/demo.json, "callbacks"). */
    env_add(&e, "CALLBACK_OFFER_SECONDS=10");
    env_add(&e, "CALLBACK_RETRY_SECONDS=5");
    env_add(&e, "CALLBACK_RING_SECONDS=5");
    env_add(&e, "MAX_WAIT_SECONDS=%d", MAX_WAIT_SECONDS);
    env_add(&e, "SWEEP_INTERVAL_MS=200");
    env_add(&e, "END_GRACE_MS=1000");
    env_add(&e, "LEASE_SECONDS=10");
    env_add(&e, "ORPHAN_HOLD_SECONDS=5");
    env_add(&e, "OVERLIMIT_HOLD_SECONDS=2");
    env_add(&e, "ADMISSION_LEASE_SECONDS=10");
    env_add(&e, "ADMISSION_BACKOFF_MIN_MS=50");
    env_add(&e, "ADMISSION_BACKOFF_MAX_MS=1000");
    env_add(&e, "RECONCILE_INTERVAL_SECONDS=5");
    env_add(&e, "TWILIO_TIMEOUT_MS=5000");
    env_add(&e, "VAPI_TIMEOUT_MS=5000");
    env_add(&e, "REDIS_RECONNECT_MIN_MS=20");
    env_add(&e, "REDIS_RECONNECT_MAX_MS=300");
    env_add(&e, "SHUTDOWN_GRACE_MS=5000");
    char *argv[] = {d->exe, "serve", NULL};
    /* Run in the work directory: a .env where the user stands (perhaps a
     * real deployment's) must not configure the demo. */
    int rc = spawn(&d->gate, argv, e.v, d->gate_log, d->dir, err, errlen);
    env_free(&e);
    return rc;
}

/* ---- live progress ---- */

static long int_or(const json_t *o, const char *key, long dflt)
{
    long long v;
    return cg_json_int(o, key, &v) == 0 ? (long)v : dflt;
}

/* Reads /sim/status into d->last; keeps the previous figures on failure
 * (the simulator may be between two answers, or already gone). */
static void poll_status(struct demo *d)
{
    char url[128];
    snprintf(url, sizeof url, "%s/sim/status", d->sim_url);
    struct cg_bhttp_resp r;
    json_t *o = NULL;
    char err[128];
    if (cg_bhttp_get(url, NULL, NULL, NULL, 1000, STATUS_MAX_BYTES, &r) == 0 && r.status == 200)
        o = cg_json_parse(r.body, r.len, CG_JSON_MAX_DEPTH, err, sizeof err);
    cg_bhttp_free(&r);
    if (!o)
        return;
    struct live *s = &d->last;
    const char *phase = cg_json_str(o, "phase");
    snprintf(s->phase, sizeof s->phase, "%s", phase ? phase : "");
    s->t = num_at(o, "t", 0);
    s->waiting = int_or(o, "waiting", 0);
    s->active = int_or(o, "active", 0);
    s->limit = int_or(o, "limit", d->limit);
    s->connected = int_or(o, "connected", 0);
    s->abandoned = int_or(o, "abandoned", 0);
    s->overflowed = int_or(o, "overflowed", 0);
    s->lost = int_or(o, "lost", 0);
    s->arrived = int_or(o, "arrived", 0);
    s->callers = int_or(o, "callers", 0);
    s->ewt = num_at(o, "ewt", -1);
    s->cb_requested = int_or(o, "callbacksRequested", 0);
    s->cb_connected = int_or(o, "callbacksConnected", 0);
    s->have = 1;
    json_decref(o);
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* Writes the progress line in the longest form that fits `width`. */
static void format_live(const struct live *s, int width, char *out, size_t outlen)
{
    if (!s->have || strcmp(s->phase, "waiting-for-gate") == 0) {
        snprintf(out, outlen, "starting: waiting for callgate to answer /health ...");
        return;
    }
    char ewt[24];
    if (s->ewt >= 0)
        snprintf(ewt, sizeof ewt, "%.0f s", s->ewt);
    else
        snprintf(ewt, sizeof ewt, "-");
    char forms[3][256];
    snprintf(forms[0], sizeof forms[0],
             "t=%5.1fs  arrived %ld/%ld  waiting %ld  active %ld/%ld  connected %ld  "
             "abandoned %ld  overflow %ld  lost %ld  callbacks %ld/%ld  last estimate %s",
             s->t, s->arrived, s->callers, s->waiting, s->active, s->limit, s->connected,
             s->abandoned, s->overflowed, s->lost, s->cb_connected, s->cb_requested, ewt);
    snprintf(forms[1], sizeof forms[1],
             "t=%.0fs waiting %ld active %ld/%ld connected %ld abandoned %ld overflow %ld "
             "lost %ld cb %ld/%ld ewt %s",
             s->t, s->waiting, s->active, s->limit, s->connected, s->abandoned, s->overflowed,
             s->lost, s->cb_connected, s->cb_requested, ewt);
    snprintf(forms[2], sizeof forms[2], "t=%.0f w=%ld a=%ld/%ld c=%ld ab=%ld ov=%ld lost=%ld", s->t,
             s->waiting, s->active, s->limit, s->connected, s->abandoned, s->overflowed, s->lost);
    for (size_t i = 0; i < 3; i++) {
        if ((int)strlen(forms[i]) < width || i == 2) {
            snprintf(out, outlen, "%.*s", width - 1, forms[i]);
            return;
        }
    }
}

static void render(struct demo *d, int force)
{
    char line[512];
    if (d->tty) {
        format_live(&d->last, terminal_width(), line, sizeof line);
        /* Rewritten in place; \033[K clears what a longer line left. */
        printf("\r%s\033[K", line);
        fflush(stdout);
        d->line_open = 1;
        return;
    }
    uint64_t now = cg_mono_ms();
    if (!force && now < d->next_plain_ms)
        return;
    d->next_plain_ms = now + PLAIN_EVERY_MS;
    format_live(&d->last, 1000, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);
}

/* ---- the report in plain words ---- */

static void fmt_s(char *out, size_t outlen, double v)
{
    if (isnan(v))
        snprintf(out, outlen, "-");
    else if (v < 10)
        snprintf(out, outlen, "%.1f s", v);
    else
        snprintf(out, outlen, "%.0f s", v);
}

static double numv(const json_t *root, const char *path)
{
    double v;
    return cg_json_num(root, path, &v) == 0 ? v : NAN;
}

static long intv(const json_t *root, const char *path)
{
    long long v;
    return cg_json_int(root, path, &v) == 0 ? (long)v : 0;
}

/* One of the report's free-form counters (their names hold dots). */
static long counter(const json_t *rep, const char *name)
{
    const json_t *v = json_object_get(json_object_get(rep, "counters"), name);
    return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* Prints the report; returns the number of failed invariants. */
static int print_summary(struct demo *d, const json_t *rep)
{
    long total = intv(rep, "callers.total"), limit = intv(rep, "limit");
    double elapsed = numv(rep, "elapsed_s");
    if (d->interrupted)
        printf("callgate demo: interrupted after %.0f s; measured so far: %ld callers against a "
               "concurrency limit of %ld\n",
               isnan(elapsed) ? 0 : elapsed, total, limit);
    else
        printf("callgate demo: %ld callers in %.0f s against a concurrency limit of %ld\n", total,
               isnan(elapsed) ? 0 : elapsed, limit);

    char p50[16], p95[16], mx[16];
    fmt_s(p50, sizeof p50, numv(rep, "wait_s.p50"));
    fmt_s(p95, sizeof p95, numv(rep, "wait_s.p95"));
    fmt_s(mx, sizeof mx, numv(rep, "wait_s.max"));
    long connected = intv(rep, "callers.connected");
    if (connected > 0)
        printf("  connected  %6ld   median wait %s, 95th percentile %s, longest %s\n", connected,
               p50, p95, mx);
    else
        printf("  connected  %6ld\n", connected);
    printf("  gave up    %6ld   (hung up while waiting)\n", intv(rep, "callers.abandoned"));
    long cb_req = counter(rep, "callbacks.requested");
    if (cb_req > 0) {
        long cb_conn = counter(rep, "callbacks.connected");
        long cb_within = counter(rep, "callbacks.within_estimate");
        printf("  callbacks  %6ld   taken instead of holding: %ld called back in turn (%ld "
               "within the estimate they were given), %ld not reached after CALLBACK_ATTEMPTS\n",
               cb_req, cb_conn, cb_within, counter(rep, "callbacks.failed"));
    }
    printf("  overflowed %6ld   (waited past MAX_WAIT_SECONDS=%d: told to call again later)\n",
           intv(rep, "callers.overflowed"), MAX_WAIT_SECONDS);
    long lost = intv(rep, "callers.lost");
    if (d->interrupted && d->last.have) {
        /* The simulator counts a caller still in the system at its end as
         * lost; stopped early, those are callers the run did not finish,
         * and the live figure from just before the stop is the truth. */
        long unfinished = lost - d->last.lost;
        lost = d->last.lost;
        printf("  lost       %6ld\n", lost);
        if (unfinished > 0)
            printf("  unfinished %6ld   (waiting or being connected when the demo stopped)\n",
                   unfinished);
    } else {
        printf("  lost       %6ld\n", lost);
    }

    long peak = intv(rep, "peak_vapi_concurrency");
    printf("  peak concurrency %ld of %ld, %s\n", peak, limit,
           peak <= limit ? "never over the limit" : "OVER THE LIMIT");
    long refills = intv(rep, "refill_latency_ms.samples");
    if (refills > 0)
        printf("  slot refill      median %.1f ms, 99th percentile %.1f ms after a call ended "
               "(%ld refills)\n",
               numv(rep, "refill_latency_ms.p50"), numv(rep, "refill_latency_ms.p99"), refills);
    else
        printf("  slot refill      no slot was freed while callers waited\n");
    printf("  idle slots       %.1f slot-seconds while callers waited\n",
           numv(rep, "idle_slot_seconds"));
    long est_n = intv(rep, "estimate.samples");
    if (est_n > 0) {
        double bias = numv(rep, "estimate.bias_s");
        printf("  wait estimates   off by %.1f s on average (%s by %.1f s overall; %ld callers)\n",
               numv(rep, "estimate.mae_s"), bias >= 0 ? "long" : "short", fabs(bias), est_n);
    } else {
        printf("  wait estimates   none announced\n");
    }
    printf("  Vapi errors      %ld (each caller went back to the head of the queue)\n",
           intv(rep, "other_rejections"));
    long overlimit = intv(rep, "overlimit_rejections");
    if (overlimit > 0)
        printf("  Vapi over limit  %ld refusals\n", overlimit);
    long orphans = intv(rep, "orphan_vapi_calls");
    if (orphans > 0)
        printf("  orphan calls     %ld Vapi calls that never carried a caller\n", orphans);

    int failed = 0;
    const json_t *inv = json_object_get(rep, "invariants");
    size_t i;
    json_t *it;
    json_array_foreach (inv, i, it) {
        int ok = 0;
        if (cg_json_bool(it, "ok", &ok) == 0 && ok)
            continue;
        failed++;
        if (d->interrupted)
            continue; /* an unfinished run fails its end checks by design */
        const char *name = cg_json_str(it, "name");
        const char *detail = cg_json_str(it, "detail");
        printf("  FAILED: %s: %s\n", name ? name : "?", detail ? detail : "");
    }
    return failed;
}

/* ---- the run ---- */

/* Watches the children until the simulator is done. */
static void watch(struct demo *d)
{
    uint64_t deadline =
        cg_mono_ms() + (uint64_t)((d->duration_s + d->drain_s + GATE_READY_S + SLACK_S) * 1000);
    render(d, 1);
    for (;;) {
        if (signals_seen) {
            d->interrupted = 1;
            break;
        }
        if (reaped(&d->sim))
            break;
        if (reaped(&d->gate)) {
            fail_with(d, "callgate exited during the run (status %d)", d->gate.code);
            break;
        }
        if (cg_mono_ms() >= deadline) {
            fail_with(d, "the scenario did not finish in time");
            break;
        }
        poll_status(d);
        render(d, 0);
        nap_ms(POLL_MS);
    }
    if (d->sim.pid > 0) {
        /* Told to stop, the simulator settles at once and still writes
         * what it measured. */
        poll_status(d);
        stop_child(&d->sim, SIGTERM, SIM_STOP_MS);
    }
    render(d, 1);
    end_line(d);
    if (d->sim.code == 2)
        fail_with(d, "callgate-sim could not run the scenario");
    else if (d->sim.code != 0 && d->sim.code != 1 && !d->interrupted)
        fail_with(d, "callgate-sim ended with status %d", d->sim.code);
}

static void cleanup(struct demo *d, int keep_dir)
{
    stop_child(&d->sim, SIGTERM, SIM_STOP_MS);
    stop_child(&d->gate, SIGTERM, GATE_STOP_MS);
    if (d->own_redis) {
        cg_redis_server_stop(&d->rs);
        d->own_redis = 0;
    } else if (d->ext_redis_url) {
        char err[256];
        if (clear_gate_keys(d->ext_redis_url, err, sizeof err) < 0)
            complain(d, "could not delete the demo's keys from %s: %s", d->redis_shown, err);
    }
    json_decref(d->scenario);
    if (d->dir[0] && !keep_dir)
        (void)cg_remove_tree(d->dir); /* best effort: what is left is in /tmp */
}

static int keep_requested(void)
{
    const char *v = getenv("CALLGATE_DEMO_KEEP");
    return v && *v && strcmp(v, "0") != 0;
}

int cg_demo_run(void)
{
    static struct demo demo; /* large; zeroed; one run per process */
    struct demo *d = &demo;
    memset(d, 0, sizeof *d);
    d->sim.code = d->gate.code = -1;
    d->last.ewt = -1;
    d->tty = isatty(STDOUT_FILENO);
    signals_seen = 0;

    struct sigaction saved[NSIGNALS];
    if (install_signals(saved) != 0) {
        complain(d, "cannot install signal handlers: %s", strerror(errno));
        return 1;
    }
    /* A child that goes away must be an error return, not our death. */
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    int rc = 1;
    if (find_binaries(d, err, sizeof err) != 0 || make_workdir(d, err, sizeof err) != 0 ||
        prepare_scenario(d, err, sizeof err) != 0 || setup_redis(d, err, sizeof err) != 0 ||
        start_sim(d, err, sizeof err) != 0 || start_gate(d, err, sizeof err) != 0) {
        if (signals_seen) {
            say(d, "callgate demo: interrupted while starting\n");
            rc = EXIT_INTERRUPTED;
        } else {
            complain(d, "%s", err[0] ? err : "cannot set up the progress client");
        }
        cleanup(d, 0);
        restore_signals(saved);
        signal(SIGPIPE, old_pipe);
        return rc;
    }

    const char *desc = cg_json_str(d->scenario, "description");
    say(d, "callgate demo: callgate on %s; callgate-sim plays Twilio, Vapi and the callers on %s\n",
        d->gate_url, d->sim_url);
    say(d,
        "callgate demo: %.0f s of arrivals against a concurrency limit of %ld, in fast time "
        "(a call lasts seconds, not minutes)\n",
        d->duration_s, d->limit);
    if (desc)
        say(d, "  %s\n", desc);
    say(d, "callgate demo: watch the queue live: %s/wallboard?token=%s\n", d->gate_url,
        d->admin_token);
    say(d, "callgate demo: Ctrl-C stops it early.\n\n");

    watch(d);

    /* callgate stops as in production: SIGTERM, requests in flight
     * answered, admissions in flight finished, then exit 0. */
    int gate_code = stop_child(&d->gate, SIGTERM, GATE_STOP_MS);
    if (gate_code != 0 && !d->interrupted)
        fail_with(d, "callgate did not stop cleanly (status %d)", gate_code);

    char *text = read_small_file(d->report_path, 4 * 1024 * 1024);
    json_t *rep = NULL;
    if (text) {
        char jerr[160];
        rep = cg_json_parse(text, strlen(text), CG_JSON_MAX_DEPTH, jerr, sizeof jerr);
        free(text);
    }
    int failed = 0;
    say(d, "\n");
    if (rep) {
        failed = print_summary(d, rep);
        json_decref(rep);
    } else {
        say(d, "callgate demo: no report from the simulator\n");
        if (!d->interrupted)
            fail_with(d, "the simulator wrote no report");
    }

    int ok = !d->interrupted && !d->failure && failed == 0 && rep != NULL;
    int keep = keep_requested() || (!ok && !d->interrupted);
    if (d->failure) {
        complain(d, "%s", d->failure);
        print_tail(d->gate_log, 10);
        print_tail(d->sim_log, 10);
    }
    if (d->interrupted)
        printf("Interrupted, so the end-of-run checks were not judged.");
    else if (ok)
        printf("All invariants held.");
    else
        printf("%d invariant%s failed.", failed, failed == 1 ? "" : "s");
    if (keep)
        printf("  (callgate log: %s; simulator log: %s)\n", d->gate_log, d->sim_log);
    else
        printf("  (logs removed; CALLGATE_DEMO_KEEP=1 keeps them)\n");
    fflush(stdout);

    cleanup(d, keep);
    restore_signals(saved);
    signal(SIGPIPE, old_pipe);
    if (d->interrupted)
        return EXIT_INTERRUPTED;
    return ok ? 0 : 1;
}
