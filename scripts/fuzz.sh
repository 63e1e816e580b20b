#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang in
# build-fuzz and runs each for FUZZ_SECONDS, starting from its seed corpus and
# dictionary. Prints the executions per target and exits non-zero if any
# target crashed, leaked, timed out or broke an invariant; those inputs are
# copied to tests/fuzz/findings/ (each becomes a corpus file named crash-* or
# regress-* plus a unit test, with the fix).
#
#   FUZZ_SECONDS=60   time per target
#   FUZZ_TARGET=form  only these targets (space-separated); default all
#   FUZZ_JOBS=1       targets run at once (each is one process)
#   FUZZ_MERGE=1      afterwards, merge the inputs that add coverage into
#                     tests/fuzz/corpus/<target>/ (minimised); by default new
#                     inputs stay in the scratch corpus under build-fuzz
#   FUZZ_NICE=10      nice level of the fuzzers
#   FUZZ_BUILD=build-fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
nice_level=${FUZZ_NICE:-10}
build=${FUZZ_BUILD:-build-fuzz}
fuzz_dir=tests/fuzz
findings=$fuzz_dir/findings

if [ -n "${FUZZ_TARGET:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGET"
else
    targets=()
    for f in "$fuzz_dir"/fuzz_*.c; do
        t=${f##*/fuzz_}
        targets+=("${t%.c}")
    done
fi
for t in "${targets[@]}"; do
    if [ ! -f "$fuzz_dir/fuzz_$t.c" ]; then
        echo "fuzz: no target '$t' (no $fuzz_dir/fuzz_$t.c)" >&2
        exit 2
    fi
done

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCG_FUZZ=ON \
    -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" \
    --target "${targets[@]/#/fuzz_}" >/dev/null

# One target: scratch corpus first (libFuzzer writes new inputs into the
# first directory), the repository's seeds second (read only).
run_one() {
    local t=$1 bin=$build/tests/fuzz/fuzz_$1
    local scratch=$build/fuzz-corpus/$t artifacts=$build/fuzz-artifacts/$t/
    local log=$build/fuzz-logs/$t.log dict=()
    mkdir -p "$scratch" "$artifacts" "$build/fuzz-logs"
    [ -f "$fuzz_dir/dict/$t.dict" ] && dict=(-dict="$fuzz_dir/dict/$t.dict")
    local rc=0
    nice -n "$nice_level" "$bin" -max_total_time="$seconds" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" \
        "$scratch" "$fuzz_dir/corpus/$t" >"$log" 2>&1 || rc=$?
    echo "$rc" >"$build/fuzz-logs/$t.rc"
}

rm -rf "$build/fuzz-artifacts" "$build/fuzz-logs"
running=0
for t in "${targets[@]}"; do
    echo "fuzz: $t for ${seconds}s"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=0
printf '\n%-12s %14s %10s %8s  %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
    log=$build/fuzz-logs/$t.log
    rc=$(cat "$build/fuzz-logs/$t.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    corpus=$(find "$build/fuzz-corpus/$t" -type f | wc -l)
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="FAILED (exit $rc, log $log)"
        failed=1
        mkdir -p "$findings/$t"
        for a in "$build/fuzz-artifacts/$t"/*; do
            [ -f "$a" ] && cp "$a" "$findings/$t/" && result="$result; saved $findings/$t/${a##*/}"
        done
    fi
    printf '%-12s %14s %10s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$corpus" "$result"
done

if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    for t in "${targets[@]}"; do
        before=$(find "$fuzz_dir/corpus/$t" -type f | wc -l)
        "$build/tests/fuzz/fuzz_$t" -merge=1 "$fuzz_dir/corpus/$t" "$build/fuzz-corpus/$t" \
            >"$build/fuzz-logs/$t.merge.log" 2>&1
        after=$(find "$fuzz_dir/corpus/$t" -type f | wc -l)
        echo "fuzz: merged $((after - before)) new inputs into $fuzz_dir/corpus/$t"
    done
fi
exit "$failed"
