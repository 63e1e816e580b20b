/*
 * luafix.h - the fixture the tests of the gate's Lua scripts share
 * (test_lua.c, test_lua_callback.c, test_lua_routes.c): one private
 * redis-server (rs) and one connection to it (rc) for a whole test file,
 * started by setup_all and stopped by teardown_all (the cmocka group
 * fixture); flush (each test's setup) leaves Redis empty but for the
 * gate's repair marker under PREFIX. RUN(script, args...) runs one of the
 * gate's scripts on rc; str_at, int_at, ctx_at, cmd_int and cmd_str are
 * hireply.h's checks on rc.
 * Included once per test file: its state and helpers are static, and those
 * a file does not use are no warning (LUAFIX_FN).
 */
#ifndef CGT_LUAFIX_H
#define CGT_LUAFIX_H

#include "harness.h"
#include "hireply.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

#define LUAFIX_FN __attribute__((unused))

/* The gate's key prefix in these tests. */
#define PREFIX "cg:{t}:"

static struct cg_redis_server rs;
static redisContext *rc;

static LUAFIX_FN int setup_all(void **state)
{
    (void)state;
    return cgt_hi_start(&rs, &rc);
}

static LUAFIX_FN int teardown_all(void **state)
{
    (void)state;
    cgt_hi_stop(&rs, rc);
    return 0;
}

static LUAFIX_FN int flush(void **state)
{
    (void)state;
    /* The slots agree with Vapi (repair.lua's marker): admission may run. */
    cgt_hi_flush(rc, PREFIX);
    return 0;
}

#define RUN(script, ...)                                                                           \
    cgt_hi_eval(rc, script, PREFIX, CGT_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})

#define str_at       cgt_reply_str_at
#define int_at       cgt_reply_int_at
#define cmd_int(...) cgt_hi_int(rc, __VA_ARGS__)
#define cmd_str(...) cgt_hi_str(rc, __VA_ARGS__)
#define ctx_at       cgt_reply_ctx_at

/* A field of the caller's record is want ("(nil)": absent). */
static LUAFIX_FN void assert_field(const char *sid, const char *field, const char *want)
{
    char *v = cmd_str("HGET " PREFIX "call:%s %s", sid, field);
    assert_string_equal(v, want);
    free(v);
}

static LUAFIX_FN void assert_state(const char *sid, const char *want)
{
    assert_field(sid, "state", want);
}

#endif
