# Generates a C file with every Lua script of one folder as a string
# constant <PREFIX><name>, declared in HEADER (hand-written, one per folder).
# When PRELUDE names a file of the folder, it is prepended to each other
# script, so they share helpers while each stays one self-contained EVAL
# body; the prelude itself becomes no constant.
# Inputs: LUA_DIR, OUT, HEADER (as included, e.g. gate/lua_scripts.h),
# PREFIX (e.g. cg_lua_), PRELUDE (a file name in LUA_DIR, or empty).
foreach(var LUA_DIR OUT HEADER PREFIX)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "embed_lua.cmake: ${var} is not set")
    endif()
endforeach()
set(prelude "")
set(prelude_name "")
if(DEFINED PRELUDE AND NOT "${PRELUDE}" STREQUAL "")
    file(READ ${LUA_DIR}/${PRELUDE} prelude)
    string(APPEND prelude "\n")
    get_filename_component(prelude_name ${PRELUDE} NAME_WE)
endif()
file(GLOB scripts ${LUA_DIR}/*.lua)
list(SORT scripts)
file(RELATIVE_PATH rel_dir ${CMAKE_CURRENT_LIST_DIR}/.. ${LUA_DIR})
set(out "/* Generated from the files in ${rel_dir} by cmake/embed_lua.cmake; do not edit. */\n")
string(APPEND out "#include \"${HEADER}\"\n\n")
foreach(f ${scripts})
    get_filename_component(name ${f} NAME_WE)
    if(name STREQUAL prelude_name)
        continue()
    endif()
    file(READ ${f} body)
    set(src "${prelude}${body}")
    string(REPLACE "\\" "\\\\" src "${src}")
    string(REPLACE "\"" "\\\"" src "${src}")
    string(REPLACE "\n" "\\n\"\n    \"" src "${src}")
    string(APPEND out "const char ${PREFIX}${name}[] =\n    \"${src}\";\n\n")
endforeach()
file(WRITE ${OUT}.tmp "${out}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
