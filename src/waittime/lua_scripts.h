/*
 * lua_scripts.h - the wait-time service's Lua scripts (the files in
 * src/waittime/lua), compiled in by cmake/embed_lua.cmake without a
 * prelude. Every change the service makes to its keys in Redis, and its
 * reload, is one of these scripts, run atomically by Redis:
 *   cg_wt_lua_renew    renews the poller lock if still held (compare-and-set)
 *   cg_wt_lua_release  releases it if still held (compare-and-delete)
 *   cg_wt_lua_write    the fenced write of one refresh
 *   cg_wt_lua_read     the version-checked read of the snapshot
 */
#ifndef CG_WT_LUA_SCRIPTS_H
#define CG_WT_LUA_SCRIPTS_H

extern const char cg_wt_lua_read[];
extern const char cg_wt_lua_release[];
extern const char cg_wt_lua_renew[];
extern const char cg_wt_lua_write[];

#endif
