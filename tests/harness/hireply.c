/*
 * hireply.c - assertions on hiredis replies (hireply.h).
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "hireply.h"

const char *cgt_reply_str_at(const redisReply *r, size_t i)
{
    assert_true(r->type == REDIS_REPLY_ARRAY && i < r->elements);
    assert_true(r->element[i]->type == REDIS_REPLY_STRING);
    return r->element[i]->str;
}

long long cgt_reply_int_at(const redisReply *r, size_t i)
{
    assert_true(r->type == REDIS_REPLY_ARRAY && i < r->elements);
    assert_true(r->element[i]->type == REDIS_REPLY_INTEGER);
    return r->element[i]->integer;
}

const redisReply *cgt_reply_ctx_at(const redisReply *r, size_t i)
{
    assert_true(r->type == REDIS_REPLY_ARRAY && i < r->elements);
    const redisReply *c = r->element[i];
    assert_true(c->type == REDIS_REPLY_ARRAY && c->elements == 6);
    static const int types[6] = {REDIS_REPLY_INTEGER, REDIS_REPLY_INTEGER, REDIS_REPLY_STRING,
                                 REDIS_REPLY_INTEGER, REDIS_REPLY_INTEGER, REDIS_REPLY_STRING};
    for (size_t k = 0; k < 6; k++)
        assert_int_equal(c->element[k]->type, types[k]);
    return c;
}

long long cgt_hi_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                                  : -1;
    freeReplyObject(r);
    return v;
}

char *cgt_hi_str(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    char *s = strdup(r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    freeReplyObject(r);
    return s;
}

redisReply *cgt_hi_eval(redisContext *c, const char *script, const char *prefix, int n,
                        const char *const *args)
{
    const char *argv[48];
    assert_true(n >= 0 && n <= 44);
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = "0";
    argv[argc++] = prefix;
    for (int i = 0; i < n; i++)
        argv[argc++] = args[i];
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("script error: %s", r->str);
    return r;
}

int cgt_hi_start(struct cg_redis_server *rs, redisContext **c)
{
    cgt_redis_start(rs);
    *c = redisConnect("127.0.0.1", rs->port);
    return *c == NULL || (*c)->err ? -1 : 0;
}

void cgt_hi_stop(struct cg_redis_server *rs, redisContext *c)
{
    if (c != NULL)
        redisFree(c);
    cg_redis_server_stop(rs);
}

void cgt_hi_flush(redisContext *c, const char *prefix)
{
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    freeReplyObject(redisCommand(c, "SET %sintact 1", prefix));
}
