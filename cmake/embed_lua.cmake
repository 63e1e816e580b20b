# Generates a C file with every gate script as a string constant:
# common.lua is prepended to each other script, so they share helpers while
# each stays one self-contained EVAL body.
# Inputs: LUA_DIR, OUT.
file(READ ${LUA_DIR}/common.lua common)
file(GLOB scripts ${LUA_DIR}/*.lua)
list(SORT scripts)
set(out "/* Generated from the files in src/gate/lua by cmake/embed_lua.cmake; do not edit. */\n")
string(APPEND out "#include \"gate/lua_scripts.h\"\n\n")
foreach(f ${scripts})
    get_filename_component(name ${f} NAME_WE)
    if(name STREQUAL "common")
        continue()
    endif()
    file(READ ${f} body)
    set(src "${common}\n${body}")
    string(REPLACE "\\" "\\\\" src "${src}")
    string(REPLACE "\"" "\\\"" src "${src}")
    string(REPLACE "\n" "\\n\"\n    \"" src "${src}")
    string(APPEND out "const char cg_lua_${name}[] =\n    \"${src}\";\n\n")
endforeach()
file(WRITE ${OUT}.tmp "${out}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
