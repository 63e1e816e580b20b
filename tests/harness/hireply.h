/*
 * hireply.h - assertions on hiredis replies for the tests that run the
 * gate's Lua scripts on a real Redis (test_lua.c, test_lua_callback.c,
 * test_lua_routes.c), and how they run a script.
 * Each fails the running cmocka test on a reply of the wrong shape.
 * Returned strings are malloc'd (the caller frees them); returned
 * pointers into a reply live as long as the reply.
 */
#ifndef CGT_HIREPLY_H
#define CGT_HIREPLY_H

#include <hiredis/hiredis.h>

/* The string, or the integer, at index i of an array reply. */
const char *cgt_reply_str_at(const redisReply *r, size_t i);
long long cgt_reply_int_at(const redisReply *r, size_t i);
/* The queue context an admission step returns for a caller
 * (admission_context in common.lua) at index i of an array reply: the
 * six-element array {waited_ms, entry position, dialled number, callback
 * 0|1, enqueued_at ms, route}, element types checked. */
const redisReply *cgt_reply_ctx_at(const redisReply *r, size_t i);
/* Runs a command: an integer reply (a string reply read as a number), or
 * -1 for any other reply. */
long long cgt_hi_int(redisContext *c, const char *fmt, ...);
/* Runs a command: a string reply, "(nil)" for any other reply. */
char *cgt_hi_str(redisContext *c, const char *fmt, ...);

/* EVAL script 0 prefix args[0..n): the scripts take the gate's key prefix
 * as ARGV[1]. An error reply fails the test. Free with freeReplyObject. */
redisReply *cgt_hi_eval(redisContext *c, const char *script, const char *prefix, int n,
                        const char *const *args);
/* A private redis-server and a connection to it (cgt_redis_start): 0, or
 * -1 when the connection failed. stop closes and stops both. */
struct cg_redis_server;
int cgt_hi_start(struct cg_redis_server *rs, redisContext **c);
void cgt_hi_stop(struct cg_redis_server *rs, redisContext *c);
/* An empty Redis whose gate (keys under prefix) has its slots' repair
 * marker: admission may run, as after a gate's first repair. */
void cgt_hi_flush(redisContext *c, const char *prefix);

/* The number of arguments of a variadic call, for cgt_hi_eval. */
#define CGT_NARGS(...) (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *))

#endif
