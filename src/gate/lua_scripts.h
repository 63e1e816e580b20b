/*
 * lua_scripts.h - the gate's Lua scripts (the files in src/gate/lua),
 * compiled in by cmake/embed_lua.cmake with src/gate/lua/common.lua
 * prepended to each. Every change to the gate's shared state is one of
 * these scripts, run atomically by Redis through gate/store.h;
 * docs/ARCHITECTURE.md describes what each does.
 */
#ifndef CG_LUA_SCRIPTS_H
#define CG_LUA_SCRIPTS_H

extern const char cg_lua_admit[];
extern const char cg_lua_board[];
extern const char cg_lua_callback[];
extern const char cg_lua_claim[];
extern const char cg_lua_connected[];
extern const char cg_lua_control[];
extern const char cg_lua_end[];
extern const char cg_lua_enter[];
extern const char cg_lua_extend[];
extern const char cg_lua_instances[];
extern const char cg_lua_members[];
extern const char cg_lua_position[];
extern const char cg_lua_queue[];
extern const char cg_lua_repair[];
extern const char cg_lua_repair_begin[];
extern const char cg_lua_requeue[];
extern const char cg_lua_route_figures[];
extern const char cg_lua_routes[];
extern const char cg_lua_slots[];
extern const char cg_lua_outbound[];
extern const char cg_lua_snapshot[];
extern const char cg_lua_sweep[];
extern const char cg_lua_vapi_created[];

#endif
