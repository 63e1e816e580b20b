/*
 * The operator's live board end to end: a real callgate and redis-server,
 * Twilio and Vapi played by tests/harness/fakeapi.c, callers brought in
 * by signed webhooks. GET /events (the snapshot on connect, a change, the
 * stale state while Redis does not answer, the token), the interval
 * report, and GET /wallboard rendered by headless Chromium: the test reads
 * the DOM Chromium dumps (the page writes its state and when each snapshot
 * arrived into it) and saves screenshots at TV and phone sizes in
 * artifacts/ under the test's working directory (the build tree), for a
 * gate of one route, with TaskQueues, and with two routes.
 */
#include "base/fmacros.h"

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "demo/proc.h"
#include "fake_taskrouter.h"

#include "gate_kit.h"

#define TOKEN     "wallboard-test-token"
#define WORKSPACE "WS0123456789abcdef0123456789abcdef"
/* The board's waits: a snapshot a second, on a loaded machine. */
#define BOARD_WAIT 15000

/* 1 in a build with AddressSanitizer (gcc and clang say it differently). */
#if defined(__SANITIZE_ADDRESS__)
#define CG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CG_TEST_ASAN 1
#endif
#endif
#ifndef CG_TEST_ASAN
#define CG_TEST_ASAN 0
#endif

static int setup_board(void **state)
{
    setup(state);
    static const char *const env[] = {"INSTANCE_ID=wall1", "ADMIN_TOKEN=" TOKEN, NULL};
    ((struct fixture *)*state)->env = env;
    return 0;
}

/* A caller arrives at a dialed number (a route's, with ROUTES_FILE):
 * /incoming signed as Twilio signs it. */
static void arrive_to(struct fixture *f, const char *from, const char *to, char sid[40])
{
    new_sid(sid);
    struct cgt_resp r;
    incoming_call(f, 0, sid, from, to, &r);
    must(f, r.status == 200, "/incoming answered %ld", r.status);
    cgt_resp_free(&r);
}

static void arrive(struct fixture *f, const char *from, char sid[40])
{
    arrive_to(f, from, "+15550002222", sid);
}

static json_t *get_json(struct fixture *f, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->g[0].base, path);
    const char *h[] = {"Authorization: Bearer " TOKEN, NULL};
    struct cgt_resp r;
    cgt_http("GET", url, h, NULL, 0, &r);
    must(f, r.status == 200, "%s answered %ld", path, r.status);
    json_t *j = json_loads(r.body, 0, NULL);
    cgt_resp_free(&r);
    assert_non_null(j);
    return j;
}

static long get_status(struct fixture *f, const char *path, const char *auth)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->g[0].base, path);
    const char *h[] = {auth, NULL};
    struct cgt_resp r;
    cgt_http("GET", url, auth ? h : NULL, NULL, 0, &r);
    long s = r.status;
    cgt_resp_free(&r);
    return s;
}

/* Waits until /queue counts active calls and waiting callers so. */
static void wait_queue(struct fixture *f, long long want_active, long long want_waiting)
{
    uint64_t deadline = cgt_now_ms() + BOARD_WAIT;
    for (;;) {
        json_t *q = get_json(f, "/queue");
        long long act = json_integer_value(json_object_get(q, "activeCount"));
        long long wait = json_integer_value(json_object_get(q, "waitingCount"));
        json_decref(q);
        if (act == want_active && wait == want_waiting)
            break;
        must(f, cgt_now_ms() < deadline, "the queue did not settle: %lld active, %lld waiting", act,
             wait);
        cgt_sleep_ms(50);
    }
}

/* Two callers connected (the fast path), then three who wait. */
static void fill_queue(struct fixture *f)
{
    char sid[40];
    arrive(f, "+15550009001", sid);
    arrive(f, "+15550009002", sid);
    arrive(f, "+15550001111", sid);
    arrive(f, "+15550002222", sid);
    arrive(f, "+15550003333", sid);
    wait_queue(f, 2, 3);
}

/* ---- a raw event-stream client ---- */

struct sse {
    int fd;
    struct cg_buf in;
    size_t seen; /* bytes of in already looked at by next_event */
};

static void sse_open(struct fixture *f, struct sse *s, const char *query)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->g[0].port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET /events%s HTTP/1.1\r\nHost: x\r\n\r\n", query);
    assert_int_equal(send(s->fd, req, (size_t)n, MSG_NOSIGNAL), n);
    cg_buf_init(&s->in, CG_BUF_UNBOUNDED);
    s->seen = 0;
}

static void sse_close(struct sse *s)
{
    close(s->fd);
    cg_buf_free(&s->in);
}

/* Reads until `name` events have come, returning the data of the next
 * event called name after those already seen (malloc'd), or NULL at the
 * deadline. Chunk framing is left in the bytes: an event's data line is
 * short enough here to be found whole. */
static char *sse_next(struct sse *s, const char *name, int timeout_ms)
{
    char want[64];
    snprintf(want, sizeof want, "event: %s\ndata: ", name);
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        cg_buf_appendc(&s->in, '\0');
        s->in.len--;
        char *at = strstr(s->in.data + s->seen, want);
        if (at != NULL) {
            char *data = at + strlen(want);
            char *end = strstr(data, "\n\n");
            if (end != NULL) {
                s->seen = (size_t)(end - s->in.data);
                return cg_strndup(data, (size_t)(end - data));
            }
        }
        int left = (int)(deadline - cgt_now_ms());
        if (cgt_now_ms() >= deadline)
            return NULL;
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        char buf[65536];
        ssize_t n = recv(s->fd, buf, sizeof buf, 0);
        if (n <= 0)
            return NULL;
        cg_buf_append(&s->in, buf, (size_t)n);
    }
}

static long long waiting_of(const char *data)
{
    json_t *j = json_loads(data, 0, NULL);
    assert_non_null(j);
    long long n = json_integer_value(json_object_get(json_object_get(j, "queue"), "waitingCount"));
    json_decref(j);
    return n;
}

static long long metric(struct fixture *f, const char *name)
{
    char url[160];
    snprintf(url, sizeof url, "%s/metrics", f->g[0].base);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    long long v = -1;
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    char *at = r.body ? strstr(r.body, want) : NULL;
    if (at != NULL)
        v = atoll(at + strlen(want));
    cgt_resp_free(&r);
    return v;
}

static void test_events_stream(void **state)
{
    struct fixture *f = *state;
    start_gate(f, 0, (const char *const[]){"EVENTS_STREAM_MAX_SECONDS=600", NULL});
    fill_queue(f);

    /* The token: as Bearer or ?token=, nothing else. */
    assert_int_equal(get_status(f, "/events", NULL), 401);
    assert_int_equal(get_status(f, "/events?token=wrong", NULL), 401);
    assert_int_equal(get_status(f, "/events", "Authorization: Bearer wrong"), 401);
    assert_int_equal(get_status(f, "/wallboard", NULL), 401);

    struct sse s;
    sse_open(f, &s, "?token=" TOKEN);
    char *snap = sse_next(&s, "snapshot", BOARD_WAIT);
    must(f, snap != NULL, "no snapshot on connect: %.300s", s.in.data ? s.in.data : "");
    assert_non_null(strstr(s.in.data, "HTTP/1.1 200"));
    assert_non_null(strstr(s.in.data, "Content-Type: text/event-stream"));
    assert_non_null(strstr(s.in.data, "retry: 2000\n"));
    json_t *j = json_loads(snap, 0, NULL);
    assert_non_null(j);
    json_t *q = json_object_get(j, "queue");
    assert_int_equal(json_integer_value(json_object_get(q, "waitingCount")), 3);
    assert_int_equal(json_integer_value(json_object_get(q, "activeCount")), 2);
    json_t *w = json_object_get(q, "waiting");
    assert_int_equal(json_array_size(w), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(w, 0), "number")),
                        "***1111");
    assert_string_equal(json_string_value(json_object_get(json_array_get(w, 2), "number")),
                        "***3333");
    json_t *fig = json_object_get(j, "figures");
    assert_int_equal(json_integer_value(json_object_get(fig, "serviceLevelSeconds")), 20);
    json_t *today = json_object_get(fig, "today");
    assert_int_equal(json_integer_value(json_object_get(today, "offered")), 5);
    assert_int_equal(json_integer_value(json_object_get(today, "connected")), 2);
    json_t *chart = json_object_get(j, "chart");
    assert_int_equal(json_array_size(json_object_get(chart, "arrivals")), 60);
    json_decref(j);
    free(snap);
    /* Nobody's whole number on the stream. */
    assert_null(strstr(s.in.data, "5550001111"));
    assert_int_equal(metric(f, "callgate_events_viewers"), 1);

    /* A change: a fourth caller waits. */
    char sid[40];
    arrive(f, "+15550004444", sid);
    long long seen = 0;
    uint64_t deadline = cgt_now_ms() + BOARD_WAIT;
    while (seen != 4 && cgt_now_ms() < deadline) {
        snap = sse_next(&s, "snapshot", BOARD_WAIT);
        must(f, snap != NULL, "the stream ended");
        seen = waiting_of(snap);
        free(snap);
    }
    assert_int_equal(seen, 4);

    /* /queue carries the same figures. */
    j = get_json(f, "/queue");
    today = json_object_get(json_object_get(j, "figures"), "today");
    assert_int_equal(json_integer_value(json_object_get(today, "offered")), 6);
    json_decref(j);

    /* Redis stops answering: the viewers are told, then it comes back. */
    free(cgt_redis_cmd(&f->rs, "CLIENT PAUSE 3000 ALL"));
    char *st = sse_next(&s, "stale", BOARD_WAIT);
    must(f, st != NULL, "no stale event while Redis was paused");
    assert_string_equal(st, "{\"reason\":\"redis\"}");
    free(st);
    snap = sse_next(&s, "snapshot", BOARD_WAIT);
    must(f, snap != NULL, "no snapshot after Redis came back");
    free(snap);

    /* The interval report: today's quarter hours, this one with the six
     * arrivals. */
    char url[200];
    snprintf(url, sizeof url, "%s/reports/intervals.csv?token=" TOKEN, f->g[0].base);
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    must(f, r.status == 200, "intervals.csv answered %ld", r.status);
    assert_true(strncmp(r.body, "intervalStart,intervalEnd,offered,", 34) == 0);
    long long offered = 0;
    double occupancy = -1;
    for (char *line = strstr(r.body, "\r\n"); line != NULL && line[2] != '\0';
         line = strstr(line + 2, "\r\n")) {
        char *p = line + 2;
        p = strchr(p, ',');
        p = p ? strchr(p + 1, ',') : NULL;
        if (p == NULL || atoll(p + 1) == 0)
            continue;
        offered += atoll(p + 1);
        /* The row's last cell: the slots were in use while it ran. */
        char *end = strstr(p, "\r\n"), *last = p;
        for (char *c = p; c < end; c++)
            if (*c == ',')
                last = c;
        if (last + 1 < end)
            occupancy = atof(last + 1);
    }
    assert_int_equal(offered, 6);
    must(f, occupancy > 0 && occupancy <= 1, "no occupancy in the interval report:\n%s", r.body);
    cgt_resp_free(&r);
    assert_int_equal(get_status(f, "/reports/intervals.csv?from=2026-01-01T00:00:00Z", NULL), 401);
    assert_int_equal(get_status(f,
                                "/reports/intervals.csv?from=2026-01-01T00:00:00Z&to=2026-02-01T00:"
                                "00:00Z",
                                "Authorization: Bearer " TOKEN),
                     400);

    sse_close(&s);
    /* The viewer that left is forgotten. */
    deadline = cgt_now_ms() + BOARD_WAIT;
    while (metric(f, "callgate_events_viewers") != 0 && cgt_now_ms() < deadline)
        cgt_sleep_ms(50);
    assert_int_equal(metric(f, "callgate_events_viewers"), 0);
    stop_gate(f, 0);
}

/* callgate's resident memory in KiB (VmRSS), or -1. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    long v = -1;
    while (fgets(line, sizeof line, fp) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    fclose(fp);
    return v;
}

/* Viewers that connect and never read: each is dropped once its unsent
 * snapshots pass the bound (BOARD_VIEWER_MAX_PENDING, besides a socket
 * buffer capped at BOARD_VIEWER_SNDBUF), callgate's memory does not grow
 * with them meanwhile nor stay grown after, and the board goes on serving
 * the viewers that read. */
#define SLOW_VIEWERS 4
static void test_events_slow_viewer_dropped(void **state)
{
    struct fixture *f = *state;
    /* Under AddressSanitizer freed memory waits in a quarantine instead of
     * going back to the allocator, which would hide what this test
     * measures: callgate's memory given back once the viewers are gone. */
    char asan[512];
    const char *prev = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%squarantine_size_mb=0", prev ? prev : "",
             prev && prev[0] ? ":" : "");
    const char *const extra[] = {"EVENTS_STREAM_MAX_SECONDS=600", CG_TEST_ASAN ? asan : NULL, NULL};
    start_gate(f, 0, extra);
    /* A long queue: a snapshot lists a hundred callers whose waits change
     * every second, some ten KB a tick to every viewer. */
    char sid[40], from[20];
    for (int i = 0; i < 120; i++) {
        snprintf(from, sizeof from, "+1555010%04d", i);
        arrive(f, from, sid);
    }
    struct sse reader;
    sse_open(f, &reader, "?token=" TOKEN);
    char *snap = sse_next(&reader, "snapshot", BOARD_WAIT);
    must(f, snap != NULL, "no snapshot for the reading viewer");
    size_t snap_len = strlen(snap);
    free(snap);
    must(f, snap_len > 5000, "a snapshot of only %zu bytes", snap_len);
    long before = rss_kib(f->g[0].proc.pid);
    assert_true(before > 0);

    int slow[SLOW_VIEWERS];
    for (int i = 0; i < SLOW_VIEWERS; i++) {
        slow[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(slow[i] >= 0);
        int small = 4096;
        assert_int_equal(setsockopt(slow[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->g[0].port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(slow[i], (struct sockaddr *)&sa, sizeof sa), 0);
        static const char req[] = "GET /events?token=" TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_int_equal(send(slow[i], req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)sizeof req - 1);
    }
    /* Some 400 KB each at a snapshot a second: well under a minute. The
     * reading viewer keeps reading meanwhile. */
    uint64_t deadline = cgt_now_ms() + 120000;
    long peak = before;
    long long dropped = 0;
    while (cgt_now_ms() < deadline) {
        free(sse_next(&reader, "snapshot", SOON));
        long now = rss_kib(f->g[0].proc.pid);
        if (now > peak)
            peak = now;
        dropped = metric(f, "callgate_events_viewers_dropped_total");
        if (dropped >= SLOW_VIEWERS)
            break;
    }
    must(f, dropped == SLOW_VIEWERS, "%lld of %d viewers that never read were dropped", dropped,
         SLOW_VIEWERS);
    assert_int_equal(metric(f, "callgate_events_viewers"), 1);
    /* The bound is 256 KiB of unsent bytes each: what callgate held for
     * them stayed within it, and was given back. Under valgrind the
     * process's memory is valgrind's too (shadow memory, freed blocks held
     * back to catch their use): there its leak check, which fails the run
     * on any block lost with the dropped viewers, stands for these two. */
    if (cgt_under_valgrind()) {
        printf("under valgrind: callgate's memory %ld -> peak %ld KiB, not judged\n", before, peak);
    } else {
        must(f, peak - before < SLOW_VIEWERS * 256 + 3072, "callgate grew from %ld to %ld KiB",
             before, peak);
        long after = rss_kib(f->g[0].proc.pid);
        must(f, after - before < 2048, "callgate kept %ld KiB after dropping the viewers",
             after - before);
    }
    /* The dropped ones are closed by callgate; the reader still gets the
     * board. */
    for (int i = 0; i < SLOW_VIEWERS; i++) {
        char buf[65536];
        ssize_t n;
        struct pollfd p = {.fd = slow[i], .events = POLLIN};
        uint64_t until = cgt_now_ms() + BOARD_WAIT;
        do
            n = poll(&p, 1, 1000) > 0 ? recv(slow[i], buf, sizeof buf, 0) : 1;
        while (n > 0 && cgt_now_ms() < until);
        must(f, n <= 0, "a dropped viewer's connection stayed open");
        close(slow[i]);
    }
    snap = sse_next(&reader, "snapshot", BOARD_WAIT);
    must(f, snap != NULL, "the reading viewer got nothing after the drops");
    free(snap);
    sse_close(&reader);
    stop_gate(f, 0);
}

/* ---- the page in a browser ---- */

/* Runs chromium headless on url with extra flags; stdout to out_path.
 * Returns the exit status, or -1 when it did not finish in timeout_ms. */
static pid_t chromium_spawn(const char *url, const char *const *flags, const char *out_path,
                            const char *profile)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_WRONLY);
        if (out < 0 || null < 0)
            _exit(127);
        dup2(out, 1);
        dup2(null, 2);
        char prof[PATH_MAX + 32];
        snprintf(prof, sizeof prof, "--user-data-dir=%s", profile);
        const char *argv[32];
        int n = 0;
        argv[n++] = "chromium";
        argv[n++] = "--headless";
        argv[n++] = "--no-sandbox"; /* the tests may run as root */
        argv[n++] = "--disable-gpu";
        argv[n++] = "--no-first-run";
        argv[n++] = "--hide-scrollbars";
        argv[n++] = "--disable-extensions";
        argv[n++] = prof;
        for (size_t i = 0; flags[i] && n < 30; i++)
            argv[n++] = flags[i];
        argv[n++] = url;
        argv[n] = NULL;
        execvp("chromium", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int chromium_wait(pid_t pid, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (cgt_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        cgt_sleep_ms(50);
    }
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        cg_buf_append(&b, buf, n);
    fclose(fp);
    cg_buf_appendc(&b, '\0');
    return b.data;
}

/* The text of the element with this id in dumped HTML ("" when absent). */
static void text_of(const char *dom, const char *id, char *out, size_t n)
{
    char want[96];
    snprintf(want, sizeof want, "id=\"%s\"", id);
    out[0] = '\0';
    const char *at = strstr(dom, want);
    if (at == NULL || (at = strchr(at, '>')) == NULL)
        return;
    at++;
    size_t len = strcspn(at, "<");
    snprintf(out, n, "%.*s", (int)len, at);
}

/* Loads the page at 1920x1080 with a fresh profile (*prof, which the
 * caller removes) and returns its DOM once its stream has ended, the page
 * live. */
static char *dump_dom(struct fixture *f, const char *url, char **prof)
{
    *prof = cgt_tmpdir();
    char dom_path[PATH_MAX];
    snprintf(dom_path, sizeof dom_path, "%s/dom.html", *prof);
    const char *flags[] = {"--dump-dom", "--virtual-time-budget=1500", "--window-size=1920,1080",
                           NULL};
    pid_t pid = chromium_spawn(url, flags, dom_path, *prof);
    int rc = chromium_wait(pid, 60000);
    must(f, rc == 0, "chromium --dump-dom ended with %d", rc);
    char *dom = read_file(dom_path);
    must(f, dom != NULL && strlen(dom) > 1000, "no DOM from chromium");
    must(f, strstr(dom, "data-state=\"live\"") != NULL, "the page is not live:\n%.2000s", dom);
    return dom;
}

static void screenshot(const char *url, const char *profile, const char *size, const char *path)
{
    char shot[PATH_MAX + 32], win[64];
    snprintf(shot, sizeof shot, "--screenshot=%s", path);
    snprintf(win, sizeof win, "--window-size=%s", size);
    const char *flags[] = {shot, win, "--timeout=5000", NULL};
    unlink(path);
    pid_t pid = chromium_spawn(url, flags, "/dev/null", profile);
    int rc = chromium_wait(pid, 60000);
    struct stat stt;
    if (rc != 0 || stat(path, &stt) != 0 || stt.st_size < 10000)
        fail_msg("chromium made no screenshot %s (status %d)", path, rc);
    char *png = read_file(path);
    assert_non_null(png);
    assert_memory_equal(png, "\x89PNG", 4);
    free(png);
    char real[PATH_MAX];
    printf("wallboard screenshot (%s): %s\n", size, realpath(path, real) ? real : path);
}

static void test_wallboard_in_chromium(void **state)
{
    struct fixture *f = *state;
    /* Chromium's virtual time stands still while a fetch is open, so the
     * page is dumped once its stream ends: after 6 s here. */
    start_gate(f, 0, (const char *const[]){"EVENTS_STREAM_MAX_SECONDS=6", NULL});
    fill_queue(f);
    char *prof = cgt_tmpdir();
    char dom_path[PATH_MAX];
    snprintf(dom_path, sizeof dom_path, "%s/dom.html", prof);
    char url[200];
    snprintf(url, sizeof url, "%s/wallboard?token=" TOKEN, f->g[0].base);

    /* The page itself: no token, no page; nothing from elsewhere. */
    struct cgt_resp r;
    cgt_http("GET", url, NULL, NULL, 0, &r);
    must(f, r.status == 200, "/wallboard answered %ld", r.status);
    char *csp = cgt_resp_header(&r, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    free(csp);
    assert_null(strstr(r.body, "https://"));
    assert_null(strstr(r.body, "<link"));
    assert_null(strstr(r.body, " src="));
    assert_null(strstr(r.body, "@import"));
    /* The one http:// is the SVG namespace's name, which is no address. */
    const char *h = strstr(r.body, "http://");
    assert_non_null(h);
    assert_true(strncmp(h, "http://www.w3.org/2000/svg\"", 27) == 0);
    assert_null(strstr(h + 1, "http://"));
    cgt_resp_free(&r);

    /* Chromium loads the page and dumps its DOM when the stream has ended
     * (--virtual-time-budget: virtual time runs only without a fetch in
     * flight); meanwhile, once the page watches, a fourth caller arrives. */
    const char *flags[] = {"--dump-dom", "--virtual-time-budget=1500", "--window-size=1920,1080",
                           NULL};
    pid_t pid = chromium_spawn(url, flags, dom_path, prof);
    uint64_t deadline = cgt_now_ms() + 30000;
    while (metric(f, "callgate_events_viewers") < 1) {
        if (cgt_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            must(f, 0, "the page never connected to /events");
        }
        cgt_sleep_ms(50);
    }
    /* The snapshot on connect has been sent and drawn. */
    cgt_sleep_ms(1500);
    char sid[40];
    uint64_t posted = cg_wall_ms();
    arrive(f, "+15550004444", sid);
    int rc = chromium_wait(pid, 60000);
    must(f, rc == 0, "chromium --dump-dom ended with %d", rc);
    char *dom = read_file(dom_path);
    must(f, dom != NULL && strlen(dom) > 1000, "no DOM from chromium");

    must(f, strstr(dom, "data-state=\"live\"") != NULL, "the page is not live:\n%.2000s", dom);
    must(f, strstr(dom, "data-problems=\"no\"") != NULL, "a problem shown on a sound gate");
    char v[64];
    text_of(dom, "kpi-waiting", v, sizeof v);
    assert_string_equal(v, "4");
    text_of(dom, "kpi-slots-used", v, sizeof v);
    assert_string_equal(v, "2");
    text_of(dom, "kpi-slots-limit", v, sizeof v);
    assert_string_equal(v, "2");
    const char *digits[] = {"1111", "2222", "3333", "4444"};
    for (size_t i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "data-last4=\"%s\"", digits[i]);
        must(f, strstr(dom, want) != NULL, "caller ***%s is not listed", digits[i]);
        snprintf(want, sizeof want, ">***%s<", digits[i]);
        assert_non_null(strstr(dom, want));
    }
    assert_null(strstr(dom, "5550001111"));
    /* The change came through the event stream, without a reload (the
     * page's history holds the snapshot before it), in the snapshot made
     * within two seconds of the caller's arrival. The page's own clock
     * stands still under virtual time, so the snapshot's time (Redis')
     * is compared. */
    const char *li = strstr(dom, "data-waiting=\"4\"");
    must(f, li != NULL, "no snapshot with four callers arrived:\n%s", strstr(dom, "<ol"));
    const char *start = li;
    while (start > dom && strncmp(start, "<li", 3) != 0)
        start--;
    const char *at = strstr(start, "data-generated-at=\"");
    assert_non_null(at);
    char iso[32];
    snprintf(iso, sizeof iso, "%.24s", at + 19);
    long long made = (long long)llround(cg_iso8601_parse(iso) * 1000);
    must(f, made - (long long)posted <= 2000 && made >= (long long)posted - 50,
         "the change was sent %lld ms after the caller arrived", made - (long long)posted);
    assert_non_null(strstr(dom, "data-waiting=\"3\""));
    free(dom);

    /* Screenshots for people: TV and phone. */
    mkdir("artifacts", 0755);
    screenshot(url, prof, "1920,1080", "artifacts/wallboard-1920x1080.png");
    screenshot(url, prof, "390,844", "artifacts/wallboard-390x844.png");
    cg_remove_tree(prof);
    free(prof);
    stop_gate(f, 0);
}

/* The TaskQueue table: with the wait-time service running beside the gate
 * (a fake TaskRouter of three queues), the page shows the table with each
 * queue's name (HTML-escaped) and figures; screenshots at TV and phone
 * sizes. */
static void test_wallboard_taskqueues_in_chromium(void **state)
{
    struct fixture *f = *state;
    struct cgt_tr_opts o = {.account_sid = ACCOUNT_SID,
                            .auth_token = AUTH_TOKEN,
                            .workspace_sid = WORKSPACE,
                            .nqueues = 3};
    struct cgt_tr *tr = cgt_tr_start(&o);
    assert_non_null(tr);
    char trurl[160];
    snprintf(trurl, sizeof trurl, "TASKROUTER_BASE_URL=%s", cgt_tr_url(tr));
    const char *const extra[] = {"EVENTS_STREAM_MAX_SECONDS=6",     "SERVICES=gate,waittime",
                                 "TWILIO_WORKSPACE_SID=" WORKSPACE, trurl,
                                 "WAIT_TIME_POLL_SECONDS=1",        NULL};
    start_gate(f, 0, extra);
    /* The first refresh has the three queues in /queue. */
    uint64_t deadline = cgt_now_ms() + BOARD_WAIT;
    for (;;) {
        json_t *q = get_json(f, "/queue");
        size_t n = json_array_size(json_object_get(q, "taskQueues"));
        json_decref(q);
        if (n == 3)
            break;
        must(f, cgt_now_ms() < deadline, "/queue lists %zu TaskQueues, not 3", n);
        cgt_sleep_ms(100);
    }
    fill_queue(f);
    /* A second instance whose MAX_CONCURRENCY says 5 where the first says
     * 2 (a host's typo): the gate keeps the lower limit, and the page says
     * what is wrong in the words of /health's reason. */
    start_gate(f, 1, (const char *const[]){"MAX_CONCURRENCY=5", "INSTANCE_ID=wall2", NULL});
    deadline = cgt_now_ms() + BOARD_WAIT;
    for (;;) {
        json_t *q = get_json(f, "/queue");
        json_t *p = json_array_get(json_object_get(q, "problems"), 0);
        int found = p != NULL && strstr(json_string_value(p), "MAX_CONCURRENCY") != NULL;
        json_decref(q);
        if (found)
            break;
        must(f, cgt_now_ms() < deadline, "/queue names no disagreement on MAX_CONCURRENCY");
        cgt_sleep_ms(100);
    }
    char url[200];
    snprintf(url, sizeof url, "%s/wallboard?token=" TOKEN, f->g[0].base);
    char *prof;
    char *dom = dump_dom(f, url, &prof);
    must(f, strstr(dom, "data-problems=\"yes\"") != NULL, "the disagreement is not shown");
    const char *banner = strstr(dom, "id=\"problems\"");
    must(f, banner != NULL, "no problems banner");
    const char *attention = strstr(banner, "ATTENTION: ");
    const char *what = attention ? strstr(attention, "MAX_CONCURRENCY") : NULL;
    must(f, what != NULL && what - banner < 2000,
         "the banner does not name MAX_CONCURRENCY:\n%.600s", banner);
    assert_null(strstr(banner, "several processes announce"));
    char v[64];
    text_of(dom, "kpi-slots-limit", v, sizeof v);
    assert_string_equal(v, "2");
    /* The section is shown only when there are TaskQueues. */
    must(f, strstr(dom, "data-tq=\"on\"") != NULL, "the TaskQueue table is hidden");
    const char *body = strstr(dom, "id=\"tq-body\"");
    must(f, body != NULL, "no TaskQueue table body");
    const char *end = strstr(body, "</tbody>");
    must(f, end != NULL, "the TaskQueue table body does not end");
    size_t rows = 0;
    for (const char *r = body; (r = strstr(r, "<tr")) != NULL && r < end; r++)
        rows++;
    must(f, rows == 3, "%zu TaskQueue rows, not 3:\n%.*s", rows, (int)(end - body), body);
    /* Queue 0's name has an ampersand: escaped once, shown as text. */
    for (int i = 0; i < 3; i++) {
        char name[64], want[96];
        cgt_tr_name(i, name, sizeof name);
        snprintf(want, sizeof want, ">%s<", i == 0 ? "Sales &amp; Support" : name);
        const char *at = strstr(body, want);
        must(f, at != NULL && at < end, "queue %s is not in the table", name);
    }
    assert_null(strstr(body, "&amp;amp;"));
    free(dom);
    mkdir("artifacts", 0755);
    screenshot(url, prof, "1920,1080", "artifacts/wallboard-taskqueues-1920x1080.png");
    screenshot(url, prof, "390,844", "artifacts/wallboard-taskqueues-390x844.png");
    cg_remove_tree(prof);
    free(prof);
    stop_gate(f, 1);
    stop_gate(f, 0);
    cgt_tr_stop(tr);
}

/* Routes (ROUTES_FILE): support (min 1, max 2) and sales (min 1, max 2,
 * the higher priority) under a limit of 4, one of sales' slots leased
 * through POST /slots. Each waiting caller and each slot shows its route
 * (the lease as a leased slot), and a line per route shows its callers
 * waiting, its slots of its max and its min; screenshots at TV and phone
 * sizes. */
static void test_wallboard_routes_in_chromium(void **state)
{
    struct fixture *f = *state;
    const char *const extra[] = {"EVENTS_STREAM_MAX_SECONDS=6", "MAX_CONCURRENCY=4",
                                 routes_file(f, TWO_ROUTES), NULL};
    start_gate(f, 0, extra);
    /* A dialer leases one of sales' slots; a sales caller fills its max,
     * two support callers the limit; then two callers wait for support
     * and one for sales. */
    char url[200];
    snprintf(url, sizeof url, "%s/slots", f->g[0].base);
    const char *ah[] = {"Authorization: Bearer " TOKEN, "Content-Type: application/json", NULL};
    static const char lease[] = "{\"route\":\"sales\",\"ttlSeconds\":600}";
    struct cgt_resp r;
    cgt_http("POST", url, ah, lease, sizeof lease - 1, &r);
    must(f, r.status == 201, "POST /slots answered %ld: %s", r.status, r.body ? r.body : "");
    cgt_resp_free(&r);
    char sid[40];
    arrive_to(f, "+15550009001", SALES, sid);
    arrive_to(f, "+15550009003", SUPPORT, sid);
    arrive_to(f, "+15550009004", SUPPORT, sid);
    arrive_to(f, "+15550001111", SUPPORT, sid);
    arrive_to(f, "+15550002222", SALES, sid);
    arrive_to(f, "+15550003333", SUPPORT, sid);
    wait_queue(f, 4, 3);
    snprintf(url, sizeof url, "%s/wallboard?token=" TOKEN, f->g[0].base);
    char *prof;
    char *dom = dump_dom(f, url, &prof);
    must(f, strstr(dom, "data-routes=\"on\"") != NULL, "the routes are not shown");
    /* The line per route. */
    static const struct {
        const char *name, *waiting, *active;
    } want[] = {{"support", "2 waiting", "2 of 2 active"}, {"sales", "1 waiting", "2 of 2 active"}};
    for (size_t i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof key, "data-route=\"%s\"", want[i].name);
        const char *at = strstr(dom, key);
        must(f, at != NULL, "no line for route %s:\n%.3000s", want[i].name, strstr(dom, "<main"));
        const char *end = strstr(at, "</div>");
        assert_non_null(end);
        char wt[64], ac[64];
        snprintf(wt, sizeof wt, ">%s<", want[i].waiting);
        snprintf(ac, sizeof ac, ">%s<", want[i].active);
        const char *w = strstr(at, wt), *a = strstr(at, ac), *m = strstr(at, "> · min 1<");
        must(f, w != NULL && w < end && a != NULL && a < end && m != NULL && m < end,
             "route %s's line: %.*s", want[i].name, (int)(end - at), at);
    }
    /* Both are full: their counts of slots are amber. */
    assert_non_null(strstr(dom, "class=\"warn\">2 of 2 active<"));
    /* Each waiting caller's route, in line order. */
    const char *wb = strstr(dom, "id=\"waiting-body\"");
    assert_non_null(wb);
    const char *we = strstr(wb, "</tbody>");
    assert_non_null(we);
    static const char *const order[] = {"***1111", "support", "***2222",
                                        "sales",   "***3333", "support"};
    const char *at = wb;
    for (size_t i = 0; i < 6; i++) {
        char cellv[64];
        snprintf(cellv, sizeof cellv, i % 2 ? "class=\"route-col\">%s<" : ">%s<", order[i]);
        at = strstr(at, cellv);
        must(f, at != NULL && at < we, "waiting list: %s not where expected:\n%.*s", order[i],
             (int)(we - wb), wb);
    }
    /* Each slot's route: the lease and a call for sales, two support
     * calls; the lease is shown as such. */
    const char *ab = strstr(dom, "id=\"active-body\"");
    assert_non_null(ab);
    const char *ae = strstr(ab, "</tbody>");
    assert_non_null(ae);
    int nsales = 0, nsupport = 0;
    for (const char *p = ab; (p = strstr(p, "class=\"route-col\">")) != NULL && p < ae; p++) {
        p += strlen("class=\"route-col\">");
        nsales += strncmp(p, "sales<", 6) == 0;
        nsupport += strncmp(p, "support<", 8) == 0;
    }
    must(f, nsales == 2 && nsupport == 2, "active calls: %d sales, %d support:\n%.*s", nsales,
         nsupport, (int)(ae - ab), ab);
    const char *ls = strstr(ab, ">leased slot<");
    must(f,
         ls != NULL && ls < ae && strstr(ls, "class=\"route-col\">sales<") != NULL &&
             strstr(ls, ">lease<") != NULL && strstr(ls, ">lease<") < ae,
         "the lease is not shown as one:\n%.*s", (int)(ae - ab), ab);
    free(dom);
    mkdir("artifacts", 0755);
    screenshot(url, prof, "1920,1080", "artifacts/wallboard-routes-1920x1080.png");
    screenshot(url, prof, "390,844", "artifacts/wallboard-routes-390x844.png");
    cg_remove_tree(prof);
    free(prof);
    stop_gate(f, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_stream, setup_board, teardown),
        cmocka_unit_test_setup_teardown(test_events_slow_viewer_dropped, setup_board, teardown),
        cmocka_unit_test_setup_teardown(test_wallboard_in_chromium, setup_board, teardown),
        cmocka_unit_test_setup_teardown(test_wallboard_taskqueues_in_chromium, setup_board,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wallboard_routes_in_chromium, setup_board, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
