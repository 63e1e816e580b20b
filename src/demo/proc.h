/*
 * proc.h - child processes callgate starts itself: a private redis-server
 * for `callgate demo` and the tests, and free loopback ports.
 *
 * The private Redis runs on 127.0.0.1 in a fresh temporary directory with
 * persistence off; cg_redis_server_stop() terminates it and removes the
 * directory. cg_redis_server_restart() stops and starts it again on the
 * same port (tests of Redis outages).
 */
#ifndef CG_PROC_H
#define CG_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct cg_redis_server {
    pid_t pid;
    int port;
    char dir[256];
    char url[64];  /* redis://127.0.0.1:<port> */
    int own_group; /* started by cg_redis_server_start_own_group() */
};

/* Removes dir and everything below it (symbolic links are removed, not
 * followed). 0, or -1 when something could not be removed. */
int cg_remove_tree(const char *dir);
/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int cg_free_port(void);
/* Starts redis-server (found on PATH, or CG_REDIS_SERVER) and waits until it
 * answers PING, up to 10 s. port 0 picks a free one. 0 or -1 with err. */
int cg_redis_server_start(struct cg_redis_server *rs, int port, char *err, size_t errlen);
/* The same, but the server runs in its own process group, so that a
 * terminal's Ctrl-C reaches only this process, which can stop the users of
 * the server before the server; and it is sent SIGTERM if this process dies
 * (even by SIGKILL), so it is never left behind. For `callgate demo`. */
int cg_redis_server_start_own_group(struct cg_redis_server *rs, int port, char *err, size_t errlen);
/* Stops it (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
void cg_redis_server_stop(struct cg_redis_server *rs);
/* Kills it without removing the directory, so it can be started again. */
void cg_redis_server_kill(struct cg_redis_server *rs, int sig);
int cg_redis_server_restart(struct cg_redis_server *rs, char *err, size_t errlen);

#endif
