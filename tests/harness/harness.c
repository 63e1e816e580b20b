#include "base/fmacros.h"

#include "harness.h"

#include <jansson.h>

#include "base/form.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"

extern char **environ;

uint64_t cgt_now_ms(void)
{
    return cg_mono_ms();
}

/* make test points TMPDIR at a directory of the build per test
 * (tests/CMakeLists.txt), so that every file a test leaves (its processes'
 * logs, Redis data, certificates) stays where a failure can be read and the
 * next run clears it. The directory is made before main, for the Redis
 * servers and child processes that use TMPDIR as well as this harness. */
__attribute__((constructor)) static void make_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        return;
    char path[512];
    if (snprintf(path, sizeof path, "%s", tmp) >= (int)sizeof path)
        return;
    for (char *p = path + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "cannot make TMPDIR %s: %s\n", path, strerror(errno));
            exit(1);
        }
        if (c == '\0')
            break;
        *p = '/';
    }
}

char *cgt_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/callgate-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(path) == NULL)
        fail_msg("mkdtemp: %s", strerror(errno));
    return cg_strdup(path);
}

void cgt_redis_start(struct cg_redis_server *rs)
{
    char err[256];
    if (cg_redis_server_start(rs, 0, err, sizeof err) != 0)
        fail_msg("cannot start redis-server: %s", err);
}

static void reply_text(struct cg_buf *b, const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        cg_buf_append(b, r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        cg_buf_append(b, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        cg_buf_printf(b, "%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        cg_buf_appends(b, "(nil)");
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++) {
            if (i)
                cg_buf_appendc(b, '\n');
            reply_text(b, r->element[i]);
        }
        break;
    default:
        cg_buf_appends(b, "(?)");
    }
}

char *cgt_redis_vcmd(int port, const char *fmt, va_list ap)
{
    struct timeval tv = {.tv_sec = 5};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err)
        fail_msg("cannot connect to redis on port %d", port);
    redisReply *r = redisvCommand(c, fmt, ap);
    if (r == NULL)
        fail_msg("redis command failed: %s", c->errstr);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    reply_text(&b, r);
    freeReplyObject(r);
    redisFree(c);
    return cg_buf_take(&b);
}

char *cgt_redis_cmd(const struct cg_redis_server *rs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = cgt_redis_vcmd(rs->port, fmt, ap);
    va_end(ap);
    return s;
}

long long cgt_redis_vint(int port, const char *fmt, va_list ap)
{
    char *s = cgt_redis_vcmd(port, fmt, ap);
    long long v = strcmp(s, "(nil)") == 0 ? -1 : strtoll(s, NULL, 10);
    free(s);
    return v;
}

long long cgt_redis_int(int port, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long long v = cgt_redis_vint(port, fmt, ap);
    va_end(ap);
    return v;
}

int cgt_redis_wait_key(const struct cg_redis_server *rs, const char *key, int ms)
{
    uint64_t until = cgt_now_ms() + (uint64_t)ms;
    for (;;) {
        char *ok = cgt_redis_cmd(rs, "EXISTS %s", key);
        int done = strcmp(ok, "1") == 0;
        free(ok);
        if (done)
            return 0;
        if (cgt_now_ms() > until)
            return -1;
        cgt_sleep_ms(10);
    }
}

const char *cgt_bin(const char *name)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", CG_BIN_DIR, name);
    return p;
}

/* Builds the child's environment (the current one with "NAME=value" and
 * "-NAME" overrides applied) before fork: the child must not allocate
 * between fork and exec, since another thread of a test (a fake API) may
 * hold the allocator's lock at the moment of the fork. */
static size_t name_len(const char *e)
{
    const char *eq = strchr(e, '=');
    return eq ? (size_t)(eq - e) : strlen(e);
}

/* Removes NAME from the list (NULL-terminated, n entries). */
static void env_unset(char **env, size_t *n, const char *name, size_t nl)
{
    for (size_t i = 0; i < *n; i++) {
        if (name_len(env[i]) == nl && strncmp(env[i], name, nl) == 0) {
            free(env[i]);
            env[i] = env[--*n];
            env[*n] = NULL;
            return;
        }
    }
}

static char **build_env(const char *const *overrides)
{
    size_t cap = 1;
    for (char **e = environ; *e; e++)
        cap++;
    for (const char *const *o = overrides; o && *o; o++)
        cap++;
    char **env = cg_calloc(cap, sizeof *env);
    size_t n = 0;
    for (char **e = environ; *e; e++)
        env[n++] = cg_strdup(*e);
    /* In order, so a later override of the same name wins. */
    for (const char *const *o = overrides; o && *o; o++) {
        if (**o == '-') {
            env_unset(env, &n, *o + 1, strlen(*o + 1));
        } else if (strchr(*o, '=') != NULL) {
            env_unset(env, &n, *o, name_len(*o));
            env[n++] = cg_strdup(*o);
        }
    }
    env[n] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

int cgt_under_valgrind(void)
{
    const char *vg = getenv("CG_VALGRIND");
    return vg != NULL && strcmp(vg, "1") == 0;
}

void cgt_spawn(struct cgt_proc *p, const char *const *argv, const char *const *env)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(p->log_path, sizeof p->log_path, "%s/callgate-proc-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    int logfd = mkstemp(p->log_path);
    if (logfd < 0)
        fail_msg("mkstemp: %s", strerror(errno));
    char **child_env = build_env(env);
    /* The argument vector too is built before fork (valgrind wraps it). */
    const char *args[64];
    size_t n = 0;
    if (cgt_under_valgrind()) {
        args[n++] = "/usr/bin/valgrind";
        args[n++] = "--quiet";
        args[n++] = "--leak-check=full";
        args[n++] = "--show-leak-kinds=definite,indirect";
        args[n++] = "--errors-for-leak-kinds=definite,indirect";
        args[n++] = "--error-exitcode=99";
    }
    for (size_t i = 0; argv[i] && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        execve(args[0], (char *const *)args, child_env);
        static const char msg[] = "exec failed\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    if (devnull >= 0)
        close(devnull);
    close(logfd);
    free_env(child_env);
    p->pid = pid;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int cgt_wait_exit(struct cgt_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    uint64_t deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return exit_code(status);
        }
        if (cg_mono_ms() >= deadline)
            return -1;
        struct timespec ts = {.tv_nsec = 5000000};
        nanosleep(&ts, NULL);
    }
}

int cgt_stop(struct cgt_proc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int rc = cgt_wait_exit(p, timeout_ms);
    if (rc == -1 && p->pid > 0) {
        kill(p->pid, SIGKILL);
        int status;
        waitpid(p->pid, &status, 0);
        p->pid = 0;
        rc = exit_code(status);
    }
    return rc;
}

char *cgt_proc_output(const struct cgt_proc *p)
{
    FILE *f = fopen(p->log_path, "r");
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            cg_buf_append(&b, chunk, n);
        fclose(f);
    }
    return cg_buf_take(&b);
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cg_buf *b = userdata;
    if (cg_buf_append(b, ptr, size * nmemb) != 0)
        return 0;
    return size * nmemb;
}

void cgt_http(const char *method, const char *url, const char *const *headers, const char *body,
              size_t body_len, struct cgt_resp *out)
{
    static int inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }
    memset(out, 0, sizeof *out);
    CURL *e = curl_easy_init();
    if (e == NULL)
        fail_msg("curl_easy_init");
    struct cg_buf bb, hb;
    cg_buf_init(&bb, CG_BUF_UNBOUNDED);
    cg_buf_init(&hb, CG_BUF_UNBOUNDED);
    struct curl_slist *hl = NULL;
    for (; headers && *headers; headers++)
        hl = curl_slist_append(hl, *headers);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &hb);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    }
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    out->len = bb.len;
    out->body = cg_buf_take(&bb);
    out->headers = cg_buf_take(&hb);
    curl_slist_free_all(hl);
    curl_easy_cleanup(e);
}

void cgt_resp_free(struct cgt_resp *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

char *cgt_resp_header(const struct cgt_resp *r, const char *name)
{
    size_t nl = strlen(name);
    const char *line = r->headers;
    while (line && *line) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return cg_strndup(v, (size_t)(line + len - v));
        }
        line = end ? end + 2 : NULL;
    }
    return NULL;
}

int cgt_wait_status(const char *url, long want_status, int timeout_ms)
{
    uint64_t deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct cgt_resp r;
        cgt_http("GET", url, NULL, NULL, 0, &r);
        long st = r.status;
        cgt_resp_free(&r);
        if (st == want_status)
            return 0;
        if (cg_mono_ms() >= deadline)
            return -1;
        struct timespec ts = {.tv_nsec = 20000000};
        nanosleep(&ts, NULL);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

int cgt_run_until(struct event_base *base, const int *flag, int timeout_ms)
{
    int expired = 0;
    struct event *t = evtimer_new(base, on_deadline, &expired);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (!*flag && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag ? 0 : -1;
}

void cgt_run_for(struct event_base *base, int ms)
{
    int never = 0;
    cgt_run_until(base, &never, ms);
}

void cgt_run_once(struct event_base *base, const int *calls, int timeout_ms)
{
    assert_int_equal(cgt_run_until(base, calls, timeout_ms), 0);
    cgt_run_for(base, 20);
    assert_int_equal(*calls, 1);
}

char *cgt_strdup_or_null(const char *s)
{
    return s ? cg_strdup(s) : NULL;
}

int cgt_read_port_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int port = 0;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    return port;
}

void cgt_spawn_callgate(struct cgt_proc *p, const char *const *const *lists)
{
    size_t nopt = 0, n = 0;
    while (cg_config_option_name(nopt))
        nopt++;
    size_t cap = nopt + 1;
    for (size_t l = 0; lists && lists[l]; l++)
        for (const char *const *e = lists[l]; *e; e++)
            cap++;
    const char **env = cg_calloc(cap, sizeof *env);
    char **unset = cg_calloc(nopt ? nopt : 1, sizeof *unset);
    for (size_t k = 0; k < nopt; k++) {
        const char *name = cg_config_option_name(k);
        size_t len = strlen(name) + 2;
        unset[k] = cg_malloc(len);
        snprintf(unset[k], len, "-%s", name);
        env[n++] = unset[k];
    }
    for (size_t l = 0; lists && lists[l]; l++)
        for (const char *const *e = lists[l]; *e; e++)
            env[n++] = *e;
    env[n] = NULL;
    const char *argv[] = {cgt_bin("callgate"), "serve", NULL};
    /* cgt_spawn copies the environment before it forks. */
    cgt_spawn(p, argv, env);
    for (size_t k = 0; k < nopt; k++)
        free(unset[k]);
    free(unset);
    free(env);
}

int cgt_wait_output(const struct cgt_proc *p, const char *text, int timeout_ms)
{
    uint64_t deadline = cg_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *out = cgt_proc_output(p);
        int found = strstr(out, text) != NULL;
        free(out);
        if (found)
            return 0;
        if (cg_mono_ms() >= deadline)
            return -1;
        cgt_sleep_ms(20);
    }
}

void cgt_dump_log_tail(struct cgt_proc *p, const char *label, size_t max)
{
    if (p->log_path[0] == '\0')
        return;
    char *out = cgt_proc_output(p);
    size_t n = strlen(out);
    fprintf(stderr, "---- %s log (tail) ----\n%s\n", label, n > max ? out + n - max : out);
    fflush(stderr);
    free(out);
}

void cgt_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

size_t cgt_form_count(const struct cg_form *f, const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += strcmp(f->pairs[i].key, key) == 0;
    return n;
}

char *cgt_stream_text(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    rewind(f);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fseek(f, 0, SEEK_END);
    return s;
}

static size_t key_pos(const json_t *o, const char *key)
{
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)o); it;
         it = json_object_iter_next((json_t *)o, it), i++)
        if (strcmp(json_object_iter_key(it), key) == 0)
            return i;
    return (size_t)-1;
}

void cgt_assert_like_spec(const char *where, const json_t *ex, const json_t *got,
                          const char *real_key)
{
    if (json_is_null(ex))
        return;
    if (json_is_object(ex)) {
        if (!json_is_object(got))
            fail_msg("%s: expected an object", where);
        const char *key;
        json_t *v;
        size_t last = 0;
        json_object_foreach ((json_t *)ex, key, v) {
            json_t *g = json_object_get(got, key);
            if (!g)
                fail_msg("%s lacks %s (spec example)", where, key);
            size_t pos = key_pos(got, key);
            if (pos < last)
                fail_msg("%s: %s out of the spec example's order", where, key);
            last = pos;
            char sub[256];
            snprintf(sub, sizeof(sub), "%s.%s", where, key);
            if (real_key != NULL && strcmp(key, real_key) == 0) {
                if (!json_is_real(g))
                    fail_msg("%s must be a JSON real", sub);
                continue;
            }
            cgt_assert_like_spec(sub, v, g, real_key);
        }
        return;
    }
    if (json_is_array(ex)) {
        if (!json_is_array(got))
            fail_msg("%s: expected an array", where);
        if (json_array_size(ex) && json_array_size(got)) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s[0]", where);
            cgt_assert_like_spec(sub, json_array_get(ex, 0), json_array_get(got, 0), real_key);
        }
        return;
    }
    int ok = (json_is_string(ex) && (json_is_string(got) || json_is_null(got))) ||
             (json_is_integer(ex) && json_is_integer(got)) ||
             (json_is_real(ex) && json_is_real(got)) ||
             (json_is_boolean(ex) && json_is_boolean(got));
    if (!ok)
        fail_msg("%s: type differs from the spec example", where);
}
