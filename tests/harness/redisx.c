#include "redisx.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "base/buf.h"

static void run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

void cgt_tls_pki(const char *dir)
{
    char cmd[4096];
    /* Quiet, short-lived keys: EC P-256 is quick to make. */
    snprintf(cmd, sizeof cmd,
             "set -e; cd '%s'; exec 2>openssl.log >&2; "
             "openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=callgate-test-ca; "
             "openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=callgate-other-ca; "
             "openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-keyout server.key -out server.csr -subj /CN=localhost; "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext; "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile server.ext; "
             "openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-keyout client.key -out client.csr -subj /CN=callgate-client; "
             "printf 'extendedKeyUsage=clientAuth\\n' > client.ext; "
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out client.pem -days 2 -extfile client.ext",
             dir);
    run(cmd);
}

static int port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void wait_accepts(struct cgt_redis_node *n)
{
    uint64_t deadline = cgt_now_ms() + 10000;
    while (!port_accepts(n->port)) {
        if (cgt_now_ms() > deadline) {
            cgt_dump_log_tail(&n->proc, "redis-server", 4000);
            fail_msg("redis-server did not listen on port %d", n->port);
        }
        cgt_sleep_ms(20);
    }
}

static const char *redis_server_path(void)
{
    const char *p = getenv("CG_REDIS_SERVER");
    return p && p[0] ? p : "/usr/bin/redis-server";
}

void cgt_redis_node_start(struct cgt_redis_node *n, const char *pki, int client_auth,
                          const char *const *extra)
{
    cgt_redis_node_start_on(n, pki, client_auth, 0, extra);
}

void cgt_redis_node_start_on(struct cgt_redis_node *n, const char *pki, int client_auth,
                             int port_no, const char *const *extra)
{
    memset(n, 0, sizeof *n);
    n->dir = cgt_tmpdir();
    n->port = port_no > 0 ? port_no : cg_free_port();
    assert_true(n->port > 0);
    n->tls = pki != NULL;
    char port[16], cert[600], key[600], ca[600];
    snprintf(port, sizeof port, "%d", n->port);
    const char *argv[64];
    int i = 0;
    argv[i++] = redis_server_path();
    if (pki) {
        snprintf(cert, sizeof cert, "%s/server.pem", pki);
        snprintf(key, sizeof key, "%s/server.key", pki);
        snprintf(ca, sizeof ca, "%s/ca.pem", pki);
        argv[i++] = "--port";
        argv[i++] = "0";
        argv[i++] = "--tls-port";
        argv[i++] = port;
        argv[i++] = "--tls-cert-file";
        argv[i++] = cert;
        argv[i++] = "--tls-key-file";
        argv[i++] = key;
        argv[i++] = "--tls-ca-cert-file";
        argv[i++] = ca;
        argv[i++] = "--tls-auth-clients";
        argv[i++] = client_auth ? "yes" : "no";
    } else {
        argv[i++] = "--port";
        argv[i++] = port;
    }
    const char *common[] = {
        "--bind", "127.0.0.1",        "--dir", n->dir, "--save", "", "--appendonly",
        "no",     "--protected-mode", "no",    NULL};
    for (int k = 0; common[k]; k++)
        argv[i++] = common[k];
    for (int k = 0; extra && extra[k] && i < 62; k++)
        argv[i++] = extra[k];
    argv[i] = NULL;
    cgt_spawn(&n->proc, argv, NULL);
    wait_accepts(n);
}

static void sentinel_start(struct cgt_redis_node *n, const char *name, int master_port,
                           const char *password, const char *pki)
{
    memset(n, 0, sizeof *n);
    n->dir = cgt_tmpdir();
    n->port = cg_free_port();
    assert_true(n->port > 0);
    n->tls = pki != NULL;
    char conf[600];
    snprintf(conf, sizeof conf, "%s/sentinel.conf", n->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    if (pki)
        fprintf(f,
                "port 0\ntls-port %d\ntls-cert-file %s/server.pem\ntls-key-file %s/server.key\n"
                "tls-ca-cert-file %s/ca.pem\ntls-replication yes\ntls-auth-clients no\n",
                n->port, pki, pki, pki);
    else
        fprintf(f, "port %d\n", n->port);
    fprintf(f,
            "bind 127.0.0.1\ndir %s\nprotected-mode no\n"
            "sentinel monitor %s 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 10000\n"
            "sentinel parallel-syncs %s 1\n",
            n->dir, name, master_port, name, name, name);
    if (password)
        fprintf(f, "requirepass %s\n", password);
    assert_int_equal(fclose(f), 0);
    const char *argv[] = {redis_server_path(), conf, "--sentinel", NULL};
    cgt_spawn(&n->proc, argv, NULL);
    wait_accepts(n);
}

void cgt_sentinel_start(struct cgt_redis_node *n, const char *name, int master_port,
                        const char *password)
{
    sentinel_start(n, name, master_port, password, NULL);
}

void cgt_sentinel_start_tls(struct cgt_redis_node *n, const char *name, int master_port,
                            const char *pki)
{
    sentinel_start(n, name, master_port, NULL, pki);
}

char *cgt_tls_cli(const struct cgt_redis_node *n, const char *pki, const char *args)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "redis-cli --tls --cacert '%s/ca.pem' -h 127.0.0.1 -p %d %s 2>&1",
             pki, n->port, args);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        fail_msg("cannot run %s", cmd);
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
        cg_buf_append(&b, chunk, got);
    pclose(p);
    return cg_buf_take(&b);
}

void cgt_sentinel_failover(const struct cgt_redis_node *sentinel, const char *name)
{
    /* Asked again on NOGOODSLAVE (the replica not yet seen as good) and on
     * a connection lost before the answer (seen once under load); a
     * failover the lost attempt started answers INPROG, which is done. */
    uint64_t deadline = cgt_now_ms() + 20000;
    for (;;) {
        struct timeval tv = {.tv_sec = 5};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", sentinel->port, tv);
        redisReply *r = c && !c->err ? redisCommand(c, "SENTINEL FAILOVER %s", name) : NULL;
        char out[256];
        snprintf(out, sizeof out, "%s",
                 r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) ? r->str
                 : c && c->err                                                        ? c->errstr
                                                                                      : "no reply");
        int ok = r && (strcmp(out, "OK") == 0 || strncmp(out, "INPROG", 6) == 0);
        int retry = r == NULL || strncmp(out, "NOGOODSLAVE", 11) == 0;
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        if (ok)
            return;
        if (!retry || cgt_now_ms() > deadline)
            fail_msg("SENTINEL FAILOVER %s: %s", name, out);
        cgt_sleep_ms(200);
    }
}

void cgt_redis_node_stop(struct cgt_redis_node *n)
{
    if (n->proc.pid > 0)
        cgt_stop(&n->proc, SIGTERM, 5000);
    n->proc.pid = 0;
    if (n->dir) {
        cg_remove_tree(n->dir);
        free(n->dir);
        n->dir = NULL;
    }
}

char *cgt_node_cmd(const struct cgt_redis_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = cgt_redis_vcmd(n->port, fmt, ap);
    va_end(ap);
    return s;
}

int cgt_node_wait(const struct cgt_redis_node *n, const char *cmd, const char *want, int timeout_ms)
{
    uint64_t deadline = cgt_now_ms() + (uint64_t)timeout_ms;
    while (cgt_now_ms() < deadline) {
        char *out = cgt_node_cmd(n, cmd);
        int found = strstr(out, want) != NULL;
        free(out);
        if (found)
            return 0;
        cgt_sleep_ms(100);
    }
    return -1;
}

void cgt_sentinel_trio(struct cgt_redis_node *master, struct cgt_redis_node *replica,
                       struct cgt_redis_node *sentinel, const char *name, const char *password,
                       int wait_replica)
{
    cgt_redis_node_start(master, NULL, 0, NULL);
    char mport[16];
    snprintf(mport, sizeof mport, "%d", master->port);
    const char *rep[] = {"--replicaof", "127.0.0.1", mport, NULL};
    cgt_redis_node_start(replica, NULL, 0, rep);
    if (cgt_node_wait(replica, "INFO replication", "master_link_status:up", 10000) != 0)
        fail_msg("the replica did not sync");
    cgt_sentinel_start(sentinel, name, master->port, password);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "SENTINEL REPLICAS %s", name);
    if (wait_replica && cgt_node_wait(sentinel, cmd, "127.0.0.1", 15000) != 0)
        fail_msg("the sentinel did not discover the replica");
}
