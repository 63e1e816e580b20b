#!/usr/bin/env bash
# The layout rules of docs/ARCHITECTURE.md ("Layers"), checked on the source
# and on the compiled objects (CTest test `layout`):
#   1. src/ is layered by folder; a file may use its own folder and the
#      folders below it, never a folder above or beside it. Checked twice:
#      on #include lines, and on the symbols each object file takes from
#      the others (a call through a local extern declaration counts too).
#   2. No circle of files, in src/ or in sim/: no set of files that call
#      into each other in a loop (symbols again; a .c and its .h are one
#      file here).
#   3. No C file over 1,500 lines.
# Usage: scripts/check-layout.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=${1:?source dir}
build=${2:?build dir}
fail=0

# Rank of each folder; equal ranks (gate, waittime) may not use each other.
# demo/ sits on base only; the composition root (src/*.c) may use anything.
# Plain lookups, no subshells: the checks below run them thousands of times.
declare -A RANK=([base]=0 [net]=1 [twilio]=2 [vapi]=3 [gate]=4 [waittime]=4 [demo]=1 [root]=9)
folder_of() { # path relative to src/ -> $FOLDER, "root" for src/*.c
    case $1 in */*) FOLDER=${1%%/*} ;; *) FOLDER=root ;; esac
}
may_use() { # may folder $1 use folder $2?
    local a=$1 b=$2
    [ "$a" = "$b" ] && return 0
    [ "$a" = root ] && return 0
    [ "$a" = demo ] && { [ "$b" = base ]; return; }
    [ "$b" = demo ] || [ "$b" = root ] && return 1
    [ -n "${RANK[$a]:-}" ] && [ -n "${RANK[$b]:-}" ] && [ "${RANK[$b]}" -lt "${RANK[$a]}" ]
}

cd "$src" || exit 2
mapfile -t files < <(cd src && find . -name '*.[ch]' | sed 's|^\./||' | sort)

# 1a. includes (one awk over every file: "file include" lines)
for f in "${files[@]}"; do
    folder_of "$f"
    if [ -z "${RANK[$FOLDER]:-}" ]; then
        echo "layout: src/$f is in a folder with no place in the layers" >&2
        fail=1
    fi
done
while read -r f inc; do
    folder_of "$f"
    from=$FOLDER
    [ -z "${RANK[$from]:-}" ] && continue
    case $inc in */*) ;; *)
        # the composition root names its own headers plainly
        [ "$from" = root ] && [ -f "src/$inc" ] && continue
        echo "layout: src/$f includes \"$inc\": name it by its folder" >&2
        fail=1
        continue
        ;;
    esac
    to=${inc%%/*}
    if ! may_use "$from" "$to"; then
        echo "layout: src/$f ($from) includes $inc ($to): a layer may not use one above or beside it" >&2
        fail=1
    fi
done < <(cd src && awk 'match($0, /^#include "[^"]*"/) {
             inc = substr($0, 11, RLENGTH - 11)
             if (inc != "lua_scripts.h") print FILENAME, inc }' "${files[@]}")

# 2. Symbol graph of a set of objects: "user provider" lines for every
# symbol one object takes from another.
# Usage: edges OBJDIR PREFIX FILE... (FILE relative to PREFIX)
edges() {
    local objdir=$1 prefix=$2
    shift 2
    local objs=() f
    for f in "$@"; do objs+=("$objdir/$prefix$f.o"); done
    # One nm per list, not per object: "object:address type symbol"; the
    # module is the object's path between the prefix and ".c.o".
    local strip="$objdir/$prefix"
    join <(nm -A -u "${objs[@]}" | awk -v p="$strip" '{o=$1; sub(/:.*/, "", o); if (index(o, p) == 1) o = substr(o, length(p) + 1); sub(/\.c\.o$/, "", o); print $NF, o}' | sort -u) \
        <(nm -A -g --defined-only "${objs[@]}" | awk -v p="$strip" 'NF==3 {o=$1; sub(/:.*/, "", o); if (index(o, p) == 1) o = substr(o, length(p) + 1); sub(/\.c\.o$/, "", o); print $3, o}' | sort -u) |
        awk '$2 != $3 {print $2, $3}' | sort -u
}
# Runs in this shell (input redirected, not piped) so that fail=1 stays set.
check_cycles() { # label, edges on stdin
    local out
    if ! out=$(tsort 2>&1 >/dev/null); then
        echo "layout: files in $1 call into each other in a loop:" >&2
        echo "$out" | sed 's/^tsort: /  /' >&2
        fail=1
    fi
}

mapfile -t csrc < <(printf '%s\n' "${files[@]}" | grep '\.c$' | grep -v '^main\.c$')
core=()
demo=()
for f in "${csrc[@]}"; do
    case $f in demo/*) demo+=("$f") ;; *) core+=("$f") ;; esac
done
for f in "${core[@]}" "${demo[@]}"; do
    case $f in demo/*) o=$build/CMakeFiles/cgdemo.dir/src/$f.o ;; *) o=$build/CMakeFiles/cgcore.dir/src/$f.o ;; esac
    if [ ! -f "$o" ]; then
        echo "layout: no object $o (build first)" >&2
        exit 2
    fi
done
src_edges=$(
    {
        edges "$build/CMakeFiles/cgcore.dir" src/ "${core[@]}"
        edges "$build/CMakeFiles/cgdemo.dir" src/ "${demo[@]}"
    } | sort -u
)
# 1b. layers on symbols (only across objects of one library: the demo's
# uses of the core are checked by its includes)
while read -r user provider; do
    [ -z "$user" ] && continue
    folder_of "$user"
    a=$FOLDER
    folder_of "$provider"
    b=$FOLDER
    if ! may_use "$a" "$b"; then
        echo "layout: src/$user.c ($a) calls into src/$provider.c ($b)" >&2
        fail=1
    fi
done <<<"$src_edges"
check_cycles src/ <<<"$src_edges"

mapfile -t simsrc < <(cd sim && ls ./*.c | sed 's|^\./||' | grep -v '^main\.c$')
check_cycles sim/ < <(edges "$build/CMakeFiles/callgate-sim.dir" sim/ "${simsrc[@]}")

# 3. file size
while read -r n f; do
    [ "$f" = total ] && continue
    if [ "$n" -gt 1500 ]; then
        echo "layout: $f has $n lines (at most 1,500)" >&2
        fail=1
    fi
done < <(find src sim -name '*.c' -print0 | xargs -0 wc -l)

if [ $fail = 0 ]; then
    echo "layout: ${#files[@]} files in src/ follow the layers; no loop in src/ or sim/; no C file over 1,500 lines"
fi
exit $fail
