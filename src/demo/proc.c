#include "base/fmacros.h"

#include "demo/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/clock.h"

/* The first port of the kernel's ephemeral range (from which connect()
 * takes a client's local port), or 32768. */
static int ephemeral_low(void)
{
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        int lo, hi;
        if (fscanf(f, "%d %d", &lo, &hi) == 2 && lo > 1024 && lo <= 65535)
            low = lo;
        fclose(f);
    }
    return low;
}

/* Binds a socket to port on 127.0.0.1 (0: the kernel's choice) and
 * releases it: the port bound, or -1. */
static int bind_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int got = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        got = ntohs(sa.sin_port);
    close(fd);
    return got;
}

/* A port the kernel hands out for bind(port 0) comes from the ephemeral
 * range, and between its release here and the server's own bind any
 * outgoing connection on the machine may take it as its local port (seen
 * as a server that cannot bind, or a client connected to itself). Ports
 * below that range are never picked by connect(), so a random free one
 * there stays free unless another starter picks the same port. */
int cg_free_port(void)
{
    int low = ephemeral_low();
    const int base = 10000;
    if (low - base >= 1000) {
        for (int i = 0; i < 200; i++) {
            int port = base + (int)cg_random_below((uint64_t)(low - base));
            if (bind_loopback(port) == port)
                return port;
        }
    }
    /* A range too small to pick from: the kernel's choice. */
    return bind_loopback(0);
}

/* A raw PING over a fresh TCP connection; avoids needing hiredis' blocking
 * client here and works on any Redis version. */
static int redis_ping(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int ok = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && write(fd, "PING\r\n", 6) == 6) {
        char buf[16] = {0};
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n >= 5 && memcmp(buf, "+PONG", 5) == 0)
            ok = 0;
    }
    close(fd);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int spawn_redis(struct cg_redis_server *rs, char *err, size_t errlen)
{
    const char *bin = getenv("CG_REDIS_SERVER");
    if (bin == NULL || *bin == '\0')
        bin = "redis-server";
    char port[16], logfile[300];
    snprintf(port, sizeof port, "%d", rs->port);
    snprintf(logfile, sizeof logfile, "%s/redis.log", rs->dir);

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        cg_err_set(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (rs->own_group) {
            setpgid(0, 0);
            /* The death signal must be armed before checking the parent:
             * a parent that died in between would otherwise go unnoticed. */
            if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
                _exit(127);
        }
        /* Child: a Redis that lives only as long as this run and never
         * touches the disk outside its own directory. */
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        execlp(bin, bin, "--port", port, "--bind", "127.0.0.1", "--dir", rs->dir, "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--logfile", logfile, "--protected-mode",
               "no", (char *)NULL);
        fprintf(stderr, "cannot exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    /* Also from the parent, so the group exists whichever runs first. */
    if (rs->own_group)
        setpgid(pid, pid);
    rs->pid = pid;
    uint64_t deadline = cg_mono_ms() + 10000;
    while (cg_mono_ms() < deadline) {
        if (redis_ping(rs->port) == 0)
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rs->pid = 0;
            cg_err_set(err, errlen, "redis-server exited at start (is it installed? see %s)",
                       logfile);
            return -1;
        }
        sleep_ms(10);
    }
    cg_err_set(err, errlen, "redis-server did not answer PING within 10 s");
    cg_redis_server_kill(rs, SIGKILL);
    return -1;
}

static int start(struct cg_redis_server *rs, int port, int own_group, char *err, size_t errlen)
{
    memset(rs, 0, sizeof *rs);
    rs->own_group = own_group;
    const char *tmp = getenv("TMPDIR");
    snprintf(rs->dir, sizeof rs->dir, "%s/callgate-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(rs->dir) == NULL) {
        cg_err_set(err, errlen, "mkdtemp: %s", strerror(errno));
        rs->dir[0] = '\0';
        return -1;
    }
    /* A port picked as free can be taken by someone else before Redis binds
     * it; try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        rs->port = port ? port : cg_free_port();
        if (rs->port <= 0) {
            cg_err_set(err, errlen, "no free port");
            continue;
        }
        snprintf(rs->url, sizeof rs->url, "redis://127.0.0.1:%d", rs->port);
        if (spawn_redis(rs, err, errlen) == 0)
            return 0;
        if (port)
            break;
    }
    cg_redis_server_stop(rs);
    return -1;
}

int cg_redis_server_start(struct cg_redis_server *rs, int port, char *err, size_t errlen)
{
    return start(rs, port, 0, err, errlen);
}

int cg_redis_server_start_own_group(struct cg_redis_server *rs, int port, char *err, size_t errlen)
{
    return start(rs, port, 1, err, errlen);
}

int cg_redis_server_restart(struct cg_redis_server *rs, char *err, size_t errlen)
{
    if (rs->pid > 0)
        cg_redis_server_kill(rs, SIGTERM);
    return spawn_redis(rs, err, errlen);
}

void cg_redis_server_kill(struct cg_redis_server *rs, int sig)
{
    if (rs->pid <= 0)
        return;
    kill(rs->pid, sig);
    if (sig == SIGSTOP || sig == SIGCONT)
        return;
    /* A stopped server (a test froze it) acts on no signal until it runs. */
    kill(rs->pid, SIGCONT);
    uint64_t deadline = cg_mono_ms() + 5000;
    int status;
    while (waitpid(rs->pid, &status, WNOHANG) == 0) {
        if (cg_mono_ms() > deadline) {
            kill(rs->pid, SIGKILL);
            waitpid(rs->pid, &status, 0);
            break;
        }
        sleep_ms(5);
    }
    rs->pid = 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int cg_remove_tree(const char *dir)
{
    return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void cg_redis_server_stop(struct cg_redis_server *rs)
{
    cg_redis_server_kill(rs, SIGTERM);
    if (rs->dir[0] != '\0') {
        (void)cg_remove_tree(rs->dir); /* best effort: what is left is in /tmp */
        rs->dir[0] = '\0';
    }
}
