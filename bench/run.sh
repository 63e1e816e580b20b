#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - callgate's benchmarks (make bench).
#
# Measures, side by side in one run on this machine: webhook and read
# throughput and latency against nginx on loopback (wrk, and cgbench-rate at
# a fixed 5,000 requests a second), Redis commands and CPU per call, an
# admission storm played by callgate-sim, scaling with the queue length, the
# TaskRouter wait-time poller, the accuracy of announced waits, and what TLS
# to Redis costs (round trips and /incoming, TLS against TCP). Prints a
# table with each figure's target and a met/missed mark, writes
# bench/out/results.json (and results.md, the table for bench/RESULTS.md)
# and the raw parts under bench/out/parts/.
#
# It builds nothing: BUILD_DIR is the build `make bench` just made. Every
# process it starts (Redis, nginx, callgate, callgate-sim, the load
# generators, perf) lives in a temporary directory, listens on 127.0.0.1
# only and is stopped by the EXIT trap, whatever happens; a watchdog ends
# the run if it overstays BENCH_BUDGET_S (default 540 s).
#
# Knobs (environment): BENCH_STORM_SCALE (default 5: the storm runs five
# times faster than real time), BENCH_WRK_S (4), BENCH_PROFILE (1: perf
# profiles of the hot endpoints and of the storm; 0 skips them),
# BENCH_BUDGET_S (540), BENCH_SECTIONS (default "http tls scaling waittime
# storm accuracy routes"; a subset runs only those, the others show as n/a), and
# for diagnosis BENCH_STORM_ENV (more NAME=VALUE settings for the storm's
# callgate, e.g. RECONCILE_INTERVAL_SECONDS=3600) and BENCH_WT_PAGE_SIZE
# (the poller's WAIT_TIME_PAGE_SIZE, default 1000).
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$SRC/bench/out
PARTS=$OUT/parts
BIN=$BUILD/bench
SCALE=${BENCH_STORM_SCALE:-5}
WRK_S=${BENCH_WRK_S:-4}
PROFILE=${BENCH_PROFILE:-1}
SECTIONS=${BENCH_SECTIONS:-http tls scaling waittime storm accuracy routes}
BUDGET=${BENCH_BUDGET_S:-540}
RATE=5000

for tool in "$BUILD/callgate" "$BUILD/callgate-sim" "$BIN/cgbench-rate" "$BIN/cgbench-sign" \
    "$BIN/cgbench-util" "$BIN/cgbench-report" "$BIN/cgbench-rtt" "$BIN/cgbench-routes"; do
    [ -x "$tool" ] || { echo "bench: $tool is missing; run make bench" >&2; exit 2; }
done
for cmd in wrk nginx redis-server redis-cli curl awk timeout openssl; do
    command -v "$cmd" >/dev/null || { echo "bench: $cmd is not installed (scripts/deps.sh --bench)" >&2; exit 2; }
done

T0=$(date +%s)
TMP=$(mktemp -d /tmp/callgate-bench.XXXXXX)
PIDS=()
WATCHDOG=

log() { printf 'bench [%3ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }

stop_pid() { # pid [grace_s]: TERM, then KILL after the grace
    local pid=$1 grace=${2:-3} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}" 2
    done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR
trap 'log "interrupted"; exit 130' INT TERM

# The watchdog signals this shell, whose trap stops everything; stopped
# itself, it takes its sleep with it.
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$BUDGET" &
    sp=$!
    wait "$sp"
    echo "bench: over the ${BUDGET}s budget, stopping" >&2
    kill -TERM $$
) &
WATCHDOG=$!

NICE=() # a prefix for spawn (nice -n N), while set
spawn() { # logfile cmd... : starts cmd in the background, records its pid in SPAWNED
    local logf=$1
    shift
    "${NICE[@]}" "$@" >"$logf" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# Takes a pid off the list once it has been waited for: a reaped pid may
# be reused by a process this run did not start, which cleanup must not
# signal.
untrack() { # pid
    local pid=$1 i
    for i in "${!PIDS[@]}"; do
        [ "${PIDS[$i]}" = "$pid" ] && unset 'PIDS[i]'
    done
    PIDS=("${PIDS[@]}")
}

forget() { # pid: stops it and takes it off the list
    stop_pid "$1" 5
    untrack "$1"
}

port() { "$BIN/cgbench-util" port; }

wait_http() { # url [tries of 50 ms]
    local i
    for ((i = 0; i < ${2:-200}; i++)); do
        curl -fs -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.05
    done
    echo "bench: $1 did not answer" >&2
    return 1
}

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

rm -rf "$OUT"
mkdir -p "$PARTS"
cd "$TMP" # callgate reads .env from its working directory: this one has none

# ---- the machine ---------------------------------------------------------
load_now() { cut -d' ' -f1 /proc/loadavg; }
CC=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null | head -1)
BTYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null | head -1)
CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
    printf '{"cpu":%s,' "$(json_str "${CPU:-unknown}")"
    printf '"cores":%s,' "$(nproc)"
    printf '"memory_gib":%s,' "$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
    printf '"kernel":%s,' "$(json_str "$(uname -sr)")"
    printf '"compiler":%s,' "$(json_str "$("${CC:-cc}" --version 2>/dev/null | head -1)")"
    printf '"build_type":%s,' "$(json_str "${BTYPE:-?}")"
    printf '"date":%s,' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
    printf '"load_start":%s,' "$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")"
    printf '"nginx":%s,' "$(json_str "$(nginx -v 2>&1 | sed 's/.*: //')")"
    printf '"wrk":%s,' "$(json_str "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)")"
    printf '"redis":%s,' "$(json_str "$(redis-server --version | awk '{print $3}')")"
    printf '"storm_scale":%s,"wrk_seconds":%s,"rate":%s}\n' "$SCALE" "$WRK_S" "$RATE"
} >"$PARTS/machine.json"
log "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores ($CPU)"
# What else was running: a benchmark on a shared machine says so.
ps -eo pcpu,etime,comm --sort=-pcpu 2>/dev/null | head -8 >"$PARTS/ps-start.txt" || true
if awk -v l="$(load_now)" 'BEGIN {exit !(l > 0.5)}'; then
    log "warning: the machine is busy (load above 0.5); figures will be noisy"
fi

# ---- Redis ---------------------------------------------------------------
start_redis() { # name -> REDIS_PORT, REDIS_PID
    REDIS_PORT=$(port)
    mkdir -p "$TMP/redis-$1"
    spawn "$TMP/redis-$1.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$TMP/redis-$1" --protected-mode yes
    REDIS_PID=$SPAWNED
    for ((i = 0; i < 100; i++)); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    echo "bench: redis-server did not start" >&2
    return 1
}
start_redis main
RP=$REDIS_PORT
RPID=$REDIS_PID
rcli() { redis-cli -p "$RP" "$@"; }

# A snapshot of Redis' counters and CPU, of the processes and hashes in
# SNAPX (the phase's callgate and its gate's counters).
SNAPX=()
snap() { # label
    "$BIN/cgbench-util" snap --redis-port "$RP" --proc "redis=$RPID" "${SNAPX[@]}" \
        --label "$1" --out "$PARTS/snaps.jsonl"
}

# Every gate's keys share the hash tag {GATE}: starting a measurement from
# an empty gate is deleting them.
reset_gate() { # gate [placeholder]
    rcli EVAL "local ks = redis.call('KEYS', ARGV[1]) for _, k in ipairs(ks) do redis.call('DEL', k) end return #ks" 0 "cg:{$1}:*" >/dev/null
    # The slots agree with Vapi (repair.lua's marker): admission is not held
    # back for a repair, and no repair runs inside a measurement.
    rcli SET "cg:{$1}:intact" 1 >/dev/null
    # MAX_CONCURRENCY=1 with its one slot held by a member whose lease ends
    # in the far future: admission finds no room, so every caller queues
    # and no Vapi call is made.
    [ -n "${2:-}" ] && rcli ZADD "cg:{$1}:active" 99999999999999 v:bench >/dev/null
    return 0
}

# ---- nginx: the machine's HTTP ceiling --------------------------------------
start_nginx() { # name workers -> NGINX_PORT
    local dir=$TMP/nginx-$1
    NGINX_PORT=$(port)
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
    spawn "$dir/out.log" nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
    wait_http "http://127.0.0.1:$NGINX_PORT/"
}

# ---- callgate and the simulator ----------------------------------------------
SIMP=$(port)
SIM=http://127.0.0.1:$SIMP
TR_SCENARIO=$TMP/taskrouter.json
cat >"$TR_SCENARIO" <<'EOF'
{"name": "bench-taskrouter", "seed": 7,
 "taskrouter": {"queues": 1000, "warmup_s": 120, "task_rate_per_s": 0.05,
                "handle_s": {"dist": "exp", "mean_s": 30, "min_s": 1, "max_s": 600},
                "rate_limit_per_s": 100}}
EOF

cg_env() { # name gate extra...: the environment of one callgate
    local name=$1 gate=$2
    shift 2
    echo PATH=/usr/bin:/bin BIND_ADDRESS=127.0.0.1 "REDIS_URL=redis://127.0.0.1:${CG_REDIS:-$RP}" \
        PUBLIC_URL=http://gate.bench.test "GATE_NAME=$gate" "TWILIO_QUEUE_NAME=$gate" \
        "INSTANCE_ID=$name" \
        TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_AUTH_TOKEN=sim-auth-token \
        VAPI_API_KEY=sim-vapi-key VAPI_WEBHOOK_SECRET=sim-vapi-secret \
        VAPI_PHONE_NUMBER_ID=sim-phone-number VAPI_ASSISTANT_ID=sim-assistant LOG_LEVEL=info "$@"
}

start_callgate() { # name gate extra-env... -> CG_PORT, CG_PID
    local name=$1 gate=$2
    shift 2
    CG_PORT=$(port)
    # shellcheck disable=SC2046
    spawn "$PARTS/callgate-$name.log" env -i $(cg_env "$name" "$gate" "PORT=$CG_PORT" "$@") \
        "$BUILD/callgate" serve
    CG_PID=$SPAWNED
    wait_http "http://127.0.0.1:$CG_PORT/health"
}

sign() { "$BIN/cgbench-sign" "$@" --public-url http://gate.bench.test --token sim-auth-token \
    --secret sim-vapi-secret --host gate.bench.test; }

# ---- measurement helpers ----------------------------------------------------
# wrk, closed loop, one thread (callgate is one process on one thread; the
# other core runs Redis), 64 keep-alive connections. A one-second run first
# warms caches and connections and is thrown away.
# Each measurement runs twice and the report keeps the better run: the
# machine may be shared, and a run another process disturbed shows as the
# worse one. Both are kept in parts/ (NAME.1, NAME.2). With TRIM_GATE set,
# the queue trimmer runs around each run; a FILE with %k in its name is a
# different file for each run (new callers each time).
wrk_run() { # name port file mode warmfile warmmode [threads]
    local name=$1 port=$2 file=$3 mode=$4 warm=$5 warmmode=$6 threads=${7:-1} k
    CGBENCH_WRK_OUT=/dev/null wrk -t"$threads" -c64 -d1s -s "$SRC/bench/reqs.lua" \
        "http://127.0.0.1:$port" -- "$warm" "$warmmode" "$threads" >/dev/null
    for k in 1 2; do
        [ -n "${TRIM_GATE:-}" ] && trim_start "$TRIM_GATE" "wrk-$name.$k"
        snap "before-wrk-$name.$k"
        CGBENCH_WRK_OUT=$PARTS/wrk-$name.$k.json wrk -t"$threads" -c64 -d"${WRK_S}s" \
            --timeout 5s -s "$SRC/bench/reqs.lua" "http://127.0.0.1:$port" -- "${file//%k/$k}" \
            "$mode" "$threads" >/dev/null
        snap "after-wrk-$name.$k"
        [ -n "${TRIM_GATE:-}" ] && trim_stop
    done
    log "wrk $name: $(cat "$PARTS/wrk-$name.1.json" "$PARTS/wrk-$name.2.json" |
        sed -n 's/.*"requests":\([0-9]*\).*"duration_us":\([0-9]*\).*/\1 \2/p' |
        awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1 / ($2 / 1e6)} END {print " req/s"}')"
}

rate_run() { # name port file count [offset] [cycle]: runs 1 and 2 use fresh requests
    local name=$1 port=$2 file=$3 count=$4 offset=${5:-0} cycle=${6:-} k
    for k in 1 2; do
        [ -n "${TRIM_GATE:-}" ] && trim_start "$TRIM_GATE" "rate-$name.$k"
        snap "before-rate-$name.$k"
        "$BIN/cgbench-rate" --port "$port" --file "$file" --rate "$RATE" --count "$count" \
            --offset $((offset + (k - 1) * count)) --conns 64 ${cycle:+--cycle} \
            --label "$name.$k" --out "$PARTS/rate-$name.$k.json" ||
            log "rate $name: not every request was answered"
        snap "after-rate-$name.$k"
        [ -n "${TRIM_GATE:-}" ] && trim_stop
    done
    log "rate $name: p50/p99 $(cat "$PARTS/rate-$name.1.json" "$PARTS/rate-$name.2.json" |
        sed -n '/"latency_us"/,/}/p' | awk -F': *' '/"p50"/ {a=$2}
            /"p99"/ {printf "%s%.2f/%.2f", (n++ ? ", " : ""), a / 1000, $2 / 1000} END {print " ms"}')"
}

fill() { # port file count: callers enter, fast, not measured
    "$BIN/cgbench-rate" --port "$1" --file "$2" --rate 5000 --count "$3" --conns 32 \
        --out /dev/null || log "fill: not every request was answered"
}

# Keeps the waiting queue under MAX_QUEUE_SIZE while wrk sends callers as
# fast as it can; its own commands are subtracted in the report.
trim_start() { # gate name
    "$BIN/cgbench-util" trim --redis-port "$RP" --key "cg:{$1}:waiting" --keep 1000 \
        --every-ms 20 --out "$PARTS/trim-$2.json" &
    TRIM_PID=$!
    PIDS+=("$TRIM_PID")
}
trim_stop() { forget "$TRIM_PID"; }

profile() { # name pid port file mode: perf while wrk runs
    command -v perf >/dev/null || return 0
    local name=$1 pid=$2 port=$3 file=$4 mode=$5 p
    # System calls per request: counted (not sampled) over a whole wrk run,
    # whose request count is known; on its own, so that the tracepoint's
    # cost does not show in the profile below.
    timeout 20 perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$TMP/stat-$name.txt" \
        -- sleep 4 >/dev/null 2>&1 &
    local ps=$!
    PIDS+=("$ps")
    # Which system calls: strace -c over the same run (it slows the
    # process, not the count per request).
    local st=
    if command -v strace >/dev/null; then
        timeout 20 strace -c -q -p "$pid" -o "$TMP/strace-$name.txt" >/dev/null 2>&1 &
        st=$!
        PIDS+=("$st")
    fi
    sleep 0.5
    CGBENCH_WRK_OUT=$TMP/wrk-prof-$name.json wrk -t1 -c64 -d3s -s "$SRC/bench/reqs.lua" \
        "http://127.0.0.1:$port" -- "$file" "$mode" 1 >/dev/null
    [ -n "$st" ] && { kill -INT "$st" 2>/dev/null || true; wait "$st" || true; untrack "$st"; }
    wait "$ps" || true
    untrack "$ps"
    CGBENCH_WRK_OUT=/dev/null wrk -t1 -c64 -d5s -s "$SRC/bench/reqs.lua" \
        "http://127.0.0.1:$port" -- "$file" "$mode" 1 >/dev/null &
    local wpid=$!
    PIDS+=("$wpid")
    sleep 1
    # Where the process's own time goes (its code, libraries, kernel), and
    # how the two cores are shared between wrk, the server and Redis.
    timeout 15 perf record -q -F 2999 -p "$pid" -o "$TMP/perf-$name.data" -- sleep 3 \
        >/dev/null 2>&1 &
    local p1=$!
    PIDS+=("$p1")
    timeout 15 perf record -q -a -F 999 -o "$TMP/perf-$name-all.data" -- sleep 3 \
        >/dev/null 2>&1 &
    local p2=$!
    PIDS+=("$p2")
    for p in "$p1" "$p2" "$wpid"; do
        wait "$p" || true
        untrack "$p"
    done
    local calls reqs
    calls=$(awk -F, '/raw_syscalls/ {print $1; exit}' "$TMP/stat-$name.txt" 2>/dev/null)
    reqs=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$TMP/wrk-prof-$name.json" 2>/dev/null)
    printf '{"syscalls":%s,"requests":%s}\n' "${calls:-null}" "${reqs:-null}" \
        >"$PARTS/syscalls-$name.json"
    {
        echo "== $name: self time by symbol (perf record -F 2999 -p PID, 3 s) =="
        perf report -i "$TMP/perf-$name.data" --stdio --no-children --sort dso,sym \
            --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45 || true
        echo
        echo "== $name: self time by library =="
        perf report -i "$TMP/perf-$name.data" --stdio --no-children --sort dso \
            --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12 || true
        echo
        echo "== $name: system calls per request =="
        awk -v c="${calls:-0}" -v r="${reqs:-0}" \
            'BEGIN {if (r > 0) printf "%.2f (%d in %d requests, perf stat -e raw_syscalls:sys_enter)\n", c / r, c, r}'
        if [ -s "$TMP/strace-$name.txt" ]; then
            echo
            echo "== $name: system calls by name (strace -c over the same run; calls per request) =="
            awk -v r="${reqs:-0}" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
                printf "  %-14s %9d  %5.2f per request\n", $NF, $4, (r > 0 ? $4 / r : 0) }' \
                "$TMP/strace-$name.txt" | sort -k2,2nr | head -10
        fi
        echo
        echo "== whole machine, $name: share of samples by process (perf record -a, 3 s) =="
        perf report -i "$TMP/perf-$name-all.data" --stdio --no-children --sort comm \
            --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12 || true
        echo
    } >>"$OUT/profile.txt"
}

want() { [[ " $SECTIONS " == *" $1 "* ]]; }

# ============================================================================
# 1, 2. HTTP: nginx, then callgate's webhooks; Redis cost per request
# ============================================================================
if want http || want tls || want scaling || want waittime; then
    spawn "$TMP/sim-serve.log" "$BUILD/callgate-sim" serve --port "$SIMP" \
        --scenario "$TR_SCENARIO" --public-url http://gate.bench.test
    SIMPID=$SPAWNED
    wait_http "$SIM/sim/status"
fi

if want http; then
    log "preparing signed requests"
    sign incoming --count 110000 --tag 0x1001 --out "$TMP/incoming.1.bin"
    sign incoming --count 110000 --tag 0x1011 --out "$TMP/incoming.2.bin"
    sign incoming --count 30000 --tag 0x1002 --out "$TMP/incoming-warm.bin"
    sign incoming --count 30000 --tag 0x1003 --out "$TMP/incoming-rate.bin"
    sign incoming --count 80000 --tag 0x1005 --out "$TMP/incoming-prof.bin"
    sign incoming --count 4000 --tag 0x1004 --out "$TMP/waiters.bin"
    sign queue-wait --count 4000 --tag 0x1004 --out "$TMP/queue-wait.bin"
    sign call-ended --count 20000 --out "$TMP/call-ended.bin"
    sign get / --out "$TMP/root.bin"
    sign get /health --out "$TMP/health.bin"

    log "nginx, worker_processes 1 and auto"
    start_nginx w1 1
    NGINX1=$NGINX_PORT
    start_nginx auto auto
    NGINXA=$NGINX_PORT
    SNAPX=()
    wrk_run nginx-w1 "$NGINX1" "$TMP/root.bin" cycle "$TMP/root.bin" cycle 1
    wrk_run nginx-auto "$NGINXA" "$TMP/root.bin" cycle "$TMP/root.bin" cycle 1
    wrk_run nginx-auto-t2 "$NGINXA" "$TMP/root.bin" cycle "$TMP/root.bin" cycle 2
    rate_run nginx-w1 "$NGINX1" "$TMP/root.bin" $((RATE * 3)) 0 cycle
    if [ "$PROFILE" = 1 ]; then
        # nginx's one worker, the yardstick's own profile and system calls.
        profile nginx-w1 "$(pgrep -P "$(cat "$TMP/nginx-w1/nginx.pid")" | head -1)" "$NGINX1" \
            "$TMP/root.bin" cycle
    fi
fi

if want http || want scaling; then
    log "callgate, gate endpoints: MAX_CONCURRENCY=1 and its slot held, so every caller queues"
    reset_gate bench placeholder
    start_callgate gate bench MAX_CONCURRENCY=1 MAX_QUEUE_SIZE=5000 MAX_WAIT_SECONDS=0 \
        RECONCILE_INTERVAL_SECONDS=3600 "TWILIO_API_BASE_URL=$SIM" "VAPI_BASE_URL=$SIM"
    GPORT=$CG_PORT
    GPID=$CG_PID
    SNAPX=(--proc "callgate=$GPID" --hash "gate=cg:{bench}:stats")
    sleep 1
    snap idle-start
    sleep 2
    snap idle-end
fi

if want http; then
    wrk_run health "$GPORT" "$TMP/health.bin" cycle "$TMP/health.bin" cycle 1

    reset_gate bench placeholder
    TRIM_GATE=bench wrk_run incoming "$GPORT" "$TMP/incoming.%k.bin" once \
        "$TMP/incoming-warm.bin" cycle 1

    reset_gate bench placeholder
    fill "$GPORT" "$TMP/waiters.bin" 4000
    wrk_run queue-wait "$GPORT" "$TMP/queue-wait.bin" cycle "$TMP/queue-wait.bin" cycle 1
    wrk_run call-ended "$GPORT" "$TMP/call-ended.bin" cycle "$TMP/call-ended.bin" cycle 1

    log "fixed rate: $RATE requests a second for 3 s (open loop)"
    rate_run health "$GPORT" "$TMP/health.bin" $((RATE * 3)) 0 cycle
    reset_gate bench placeholder
    TRIM_GATE=bench rate_run incoming "$GPORT" "$TMP/incoming-rate.bin" $((RATE * 3)) 0 ""
    reset_gate bench placeholder
    fill "$GPORT" "$TMP/waiters.bin" 4000
    rate_run queue-wait "$GPORT" "$TMP/queue-wait.bin" $((RATE * 3)) 0 cycle
    rate_run call-ended "$GPORT" "$TMP/call-ended.bin" $((RATE * 3)) 0 cycle

    if [ "$PROFILE" = 1 ]; then
        log "profiles of /health and /incoming"
        profile health "$GPID" "$GPORT" "$TMP/health.bin" cycle
        reset_gate bench placeholder
        trim_start bench profile
        profile incoming "$GPID" "$GPORT" "$TMP/incoming-prof.bin" once
        trim_stop
    fi
    rm -f "$TMP"/incoming*.bin
fi

# ============================================================================
# 3b. TLS to Redis: round trips and /incoming, TLS against TCP, one server
# ============================================================================
if want tls; then
    log "TLS: one redis-server with a plain and a TLS port (a test CA made now)"
    PKI=$TMP/pki
    mkdir -p "$PKI"
    (
        cd "$PKI"
        openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout ca.key -out ca.pem -days 2 -subj /CN=callgate-bench-ca
        openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout server.key -out server.csr -subj /CN=localhost
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out server.pem -days 2 -extfile server.ext
    ) >"$TMP/pki.log" 2>&1
    TLS_PLAIN=$(port)
    TLS_PORT=$(port)
    mkdir -p "$TMP/redis-tls"
    spawn "$TMP/redis-tls.log" redis-server --port "$TLS_PLAIN" --tls-port "$TLS_PORT" \
        --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis-tls" --protected-mode yes \
        --tls-cert-file "$PKI/server.pem" --tls-key-file "$PKI/server.key" \
        --tls-ca-cert-file "$PKI/ca.pem" --tls-auth-clients no
    TLS_RPID=$SPAWNED
    for ((i = 0; i < 100; i++)); do
        [ "$(redis-cli -p "$TLS_PLAIN" ping 2>/dev/null)" = PONG ] && break
        sleep 0.05
    done
    # Round trips through callgate's own client: one PING outstanding.
    for k in 1 2; do
        "$BIN/cgbench-rtt" --url "redis://127.0.0.1:$TLS_PLAIN" --seconds 3 --label rtt-tcp \
            --out "$PARTS/rtt-tcp.$k.json" >/dev/null
        "$BIN/cgbench-rtt" --url "rediss://127.0.0.1:$TLS_PORT" --ca "$PKI/ca.pem" --seconds 3 \
            --label rtt-tls --out "$PARTS/rtt-tls.$k.json" >/dev/null
    done
    log "round trips a second, TCP then TLS: $(cat "$PARTS"/rtt-tcp.*.json "$PARTS"/rtt-tls.*.json |
        sed -n 's/.*"per_s":\([0-9]*\).*/\1/p' | paste -sd' ')"

    # /incoming: the same gate set-up as section 2, once over each transport.
    sign incoming --count 110000 --tag 0x3001 --out "$TMP/tls-incoming.1.bin"
    sign incoming --count 110000 --tag 0x3011 --out "$TMP/tls-incoming.2.bin"
    sign incoming --count 30000 --tag 0x3002 --out "$TMP/tls-incoming-warm.bin"
    SAVED_RP=$RP
    SAVED_RPID=$RPID
    # The snapshots name the gate instance they read (/proc/PID/stat): the
    # TLS section's gates come and go, and the scaling section after it
    # measures the gate started above again.
    SAVED_SNAPX=("${SNAPX[@]}")
    RP=$TLS_PLAIN
    RPID=$TLS_RPID
    for mode in tcp tls; do
        gate=bench-$mode
        reset_gate "$gate" placeholder
        if [ "$mode" = tls ]; then
            start_callgate "$gate" "$gate" "REDIS_URL=rediss://127.0.0.1:$TLS_PORT" \
                "REDIS_TLS_CA_FILE=$PKI/ca.pem" MAX_CONCURRENCY=1 MAX_QUEUE_SIZE=5000 \
                MAX_WAIT_SECONDS=0 RECONCILE_INTERVAL_SECONDS=3600 "TWILIO_API_BASE_URL=$SIM" \
                "VAPI_BASE_URL=$SIM"
        else
            start_callgate "$gate" "$gate" "REDIS_URL=redis://127.0.0.1:$TLS_PLAIN" \
                MAX_CONCURRENCY=1 MAX_QUEUE_SIZE=5000 MAX_WAIT_SECONDS=0 \
                RECONCILE_INTERVAL_SECONDS=3600 "TWILIO_API_BASE_URL=$SIM" "VAPI_BASE_URL=$SIM"
        fi
        SNAPX=(--proc "callgate=$CG_PID" --hash "gate=cg:{$gate}:stats")
        TRIM_GATE=$gate wrk_run "incoming-$mode" "$CG_PORT" "$TMP/tls-incoming.%k.bin" once \
            "$TMP/tls-incoming-warm.bin" cycle 1
        grep -c '"redis connected"' "$PARTS/callgate-$gate.log" >"$PARTS/redis-connects-$mode.txt" || true
        forget "$CG_PID"
    done
    RP=$SAVED_RP
    RPID=$SAVED_RPID
    SNAPX=("${SAVED_SNAPX[@]}")
    forget "$TLS_RPID"
    rm -f "$TMP"/tls-incoming*.bin
    # The figures: the better of two runs each, as everywhere in this file.
    best_rtt() { sed -n 's/.*"per_s":\([0-9]*\).*/\1/p' "$PARTS"/rtt-"$1".*.json | sort -n | tail -1; }
    best_wrk() {
        cat "$PARTS/wrk-incoming-$1".*.json |
            sed -n 's/.*"requests":\([0-9]*\).*"duration_us":\([0-9]*\).*/\1 \2/p' |
            awk '{v = $1 / ($2 / 1e6); if (v > m) m = v} END {printf "%.0f", m}'
    }
    p50_rtt() { sed -n 's/.*"p50_us":\([0-9.]*\).*/\1/p' "$PARTS"/rtt-"$1".*.json | sort -n | head -1; }
    RT_TCP=$(best_rtt tcp)
    RT_TLS=$(best_rtt tls)
    IN_TCP=$(best_wrk tcp)
    IN_TLS=$(best_wrk tls)
    printf '{"rtt_tcp_per_s":%s,"rtt_tls_per_s":%s,"rtt_tcp_p50_us":%s,"rtt_tls_p50_us":%s,"incoming_tcp_per_s":%s,"incoming_tls_per_s":%s}\n' \
        "${RT_TCP:-null}" "${RT_TLS:-null}" "$(p50_rtt tcp)" "$(p50_rtt tls)" "${IN_TCP:-null}" \
        "${IN_TLS:-null}" >"$PARTS/tls.json"
    log "TLS: round trips $RT_TCP/s TCP, $RT_TLS/s TLS; /incoming $IN_TCP/s TCP, $IN_TLS/s TLS"
fi

# ============================================================================
# 4. Scaling: the same work per caller whatever the queue length
# ============================================================================
if want scaling; then
    log "scaling: callers 100 -> 10,000, waiting queue 10 -> 4,900"
    tag=$((0x2000))
    for step in 100:10 1000:100 3000:1000 10000:4900; do
        n=${step%%:*}
        q=${step##*:}
        tag=$((tag + 1))
        sign scaling --queue "$q" --callers "$n" --probe 3000 --tag "$tag" --out "$TMP/scale-$n"
        reset_gate bench placeholder
        # N callers arrive (the oldest hang up once Q wait), then 3,000 more
        # pass through a queue held at Q: hang-up of the oldest, an arrival,
        # a poll of a random waiting caller, at 3,000 requests a second.
        "$BIN/cgbench-rate" --port "$GPORT" --file "$TMP/scale-$n.fill" --rate 5000 \
            --count $((2 * n - q)) --conns 32 --out /dev/null || log "scaling fill $n: errors"
        sleep 0.5
        rcli ZCARD "cg:{bench}:waiting" >"$PARTS/scale-$n-waiting-before.txt"
        snap "before-scale-$n"
        "$BIN/cgbench-rate" --port "$GPORT" --file "$TMP/scale-$n.probe" --rate 3000 \
            --count 9000 --conns 64 --label "scale-$n" --out "$PARTS/scale-$n.json" ||
            log "scaling $n: not every request was answered"
        snap "after-scale-$n"
        rcli ZCARD "cg:{bench}:waiting" >"$PARTS/scale-$n-waiting-after.txt"
        log "scaling $n callers, queue $q: done"
        rm -f "$TMP/scale-$n.fill" "$TMP/scale-$n.probe"
    done
fi

if want http || want scaling; then
    snap gate-end
    forget "$GPID"
fi

# ============================================================================
# 5. The wait-time poller: 1,000 TaskQueues, and reads under load
# ============================================================================
if want waittime; then
    log "wait-time service: 1,000 TaskQueues polled from callgate-sim every 5 s"
    start_callgate waittime wt RECONCILE_INTERVAL_SECONDS=3600 "TWILIO_API_BASE_URL=$SIM" \
        "VAPI_BASE_URL=$SIM" "TASKROUTER_BASE_URL=$SIM" \
        TWILIO_WORKSPACE_SID=WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa WAIT_TIME_POLL_SECONDS=5 \
        "WAIT_TIME_PAGE_SIZE=${BENCH_WT_PAGE_SIZE:-1000}"
    WPORT=$CG_PORT
    WPID=$CG_PID
    SNAPX=(--proc "callgate=$WPID")
    for ((i = 0; i < 100; i++)); do
        curl -fs -o "$TMP/wait-times.json" "http://127.0.0.1:$WPORT/wait-times" && break
        sleep 0.1
    done
    curl -fs "$SIM/sim/status" >"$PARTS/sim-status-wt-start.json"
    grep -o '"sid":"WQ[0-9a-f]*"' "$TMP/wait-times.json" | cut -d'"' -f4 >"$TMP/sids.txt"
    [ -s "$TMP/sids.txt" ] || { echo "bench: the poller produced no TaskQueues" >&2; exit 1; }
    sed 's|^|/get-queue-times?queueSid=|' "$TMP/sids.txt" >"$TMP/gqt.txt"
    sed 's|^|/wait-times/|' "$TMP/sids.txt" >"$TMP/wt.txt"
    sign get-file "$TMP/gqt.txt" --out "$TMP/gqt.bin"
    sign get-file "$TMP/wt.txt" --out "$TMP/wt.bin"
    wrk_run get-queue-times "$WPORT" "$TMP/gqt.bin" cycle "$TMP/gqt.bin" cycle 1
    wrk_run wait-times-sid "$WPORT" "$TMP/wt.bin" cycle "$TMP/wt.bin" cycle 1
    # Six seconds: a refresh (every 5 s) lands inside each run, as it would
    # in any long enough stretch of reads.
    rate_run get-queue-times "$WPORT" "$TMP/gqt.bin" $((RATE * 6)) 0 cycle
    rate_run wait-times-sid "$WPORT" "$TMP/wt.bin" $((RATE * 6)) 0 cycle
    [ "$PROFILE" = 1 ] && profile get-queue-times "$WPID" "$WPORT" "$TMP/gqt.bin" cycle
    curl -fs "$SIM/sim/status" >"$PARTS/sim-status-wt-end.json"
    snap wt-end
    forget "$WPID"
fi
[ -n "${SIMPID:-}" ] && forget "$SIMPID"

# ============================================================================
# 3. Admission storm, played by callgate-sim
# ============================================================================
fast_gate_env() { # scale: the runner's fast-time settings, intervals shrunk like the calls
    local k=$1
    echo "SWEEP_INTERVAL_MS=$((1000 / k))" "END_GRACE_MS=$((5000 / k))" LEASE_SECONDS=10 \
        ORPHAN_HOLD_SECONDS=5 OVERLIMIT_HOLD_SECONDS=2 ADMISSION_LEASE_SECONDS=10 \
        ADMISSION_BACKOFF_MIN_MS=50 ADMISSION_BACKOFF_MAX_MS=1000 \
        "RECONCILE_INTERVAL_SECONDS=$(((15 + k - 1) / k))" \
        "ANNOUNCE_INTERVAL_SECONDS=$(((30 / k) > 5 ? 30 / k : 5))" TWILIO_TIMEOUT_MS=5000 \
        VAPI_TIMEOUT_MS=5000 MAX_QUEUE_SIZE=5000 MAX_WAIT_SECONDS=0
}

# The accuracy runs are light (about one caller a second each, calls of
# about 10 s: waits of tens of seconds, so that announcing whole seconds
# with a 1 s floor does not dominate the error) and long, so they go
# alongside the storm, with their own Redis so that the storm's Redis
# figures stay its own. Their processes get a higher priority (as root):
# they need little CPU but need it on time, or the storm's load would show
# in the admission latency callgate adds to every estimate.
ACC_SIMS=()
ACC_GATES=()
if want accuracy; then
    log "wait estimates: steady and bursty load, alongside the storm"
    [ "$(id -u)" = 0 ] && NICE=(nice -n -10)
    start_redis accuracy
    CG_REDIS=$REDIS_PORT
    for kind in steady bursty; do
        p=$(port)
        sp=$(port)
        # shellcheck disable=SC2046
        spawn "$PARTS/callgate-acc-$kind.log" env -i $(cg_env "acc-$kind" "acc-$kind" "PORT=$p" \
            MAX_CONCURRENCY=10 EXPECTED_CALL_SECONDS=11 $(fast_gate_env 18) \
            "TWILIO_API_BASE_URL=http://127.0.0.1:$sp" "VAPI_BASE_URL=http://127.0.0.1:$sp") \
            "$BUILD/callgate" serve
        ACC_GATES+=("$SPAWNED")
        wait_http "http://127.0.0.1:$p/health"
        spawn "$PARTS/sim-accuracy-$kind.log" timeout 400 "$BUILD/callgate-sim" \
            --scenario "$SRC/bench/scenarios/accuracy-$kind.json" \
            --public-url http://gate.bench.test --gate "http://127.0.0.1:$p" --port "$sp" \
            --report "$PARTS/accuracy-$kind.json"
        ACC_SIMS+=("$SPAWNED")
    done
    # The TaskQueue estimate: 50 queues of varied load (5 stalled) in a
    # callgate-sim serve whose TaskRouter model knows every task's actual
    # wait; it samples this callgate's /wait-times every second and scores
    # callgate's estimate and the seed's trailing average against the
    # truth (sim/wtscore.c). Stopped after the storm, it writes the report.
    TRACC_WS=WSbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    cat >"$TMP/tr-accuracy.json" <<EOF
{"name": "bench-taskrouter-accuracy", "seed": 11,
 "taskrouter": {"workspace_sid": "$TRACC_WS", "queues": 50, "stalled_queues": 5,
                "warmup_s": 900,
                "workers_per_queue": {"dist": "uniform", "min_s": 2, "max_s": 12},
                "task_rate_per_s": {"dist": "uniform", "min_s": 0.2, "max_s": 1.5},
                "handle_s": {"dist": "exp", "mean_s": 8, "min_s": 1, "max_s": 60},
                "abandon_s": {"dist": "exp", "mean_s": 60, "min_s": 10, "max_s": 600}}}
EOF
    TRACC_CG=$(port)
    TRACC_SIMP=$(port)
    spawn "$PARTS/sim-tr-accuracy.log" "$BUILD/callgate-sim" serve --port "$TRACC_SIMP" \
        --scenario "$TMP/tr-accuracy.json" --public-url http://gate.bench.test \
        --wait-times "http://127.0.0.1:$TRACC_CG" --sample-ms 1000 \
        --report "$PARTS/tr-accuracy.json"
    TRACC_SIM=$SPAWNED
    wait_http "http://127.0.0.1:$TRACC_SIMP/sim/status"
    # shellcheck disable=SC2046
    spawn "$PARTS/callgate-tr-accuracy.log" env -i $(cg_env tr-acc tr-acc "PORT=$TRACC_CG" \
        "TWILIO_API_BASE_URL=http://127.0.0.1:$TRACC_SIMP" \
        "VAPI_BASE_URL=http://127.0.0.1:$TRACC_SIMP" \
        "TASKROUTER_BASE_URL=http://127.0.0.1:$TRACC_SIMP" "TWILIO_WORKSPACE_SID=$TRACC_WS" \
        WAIT_TIME_POLL_SECONDS=5 RECONCILE_INTERVAL_SECONDS=3600) "$BUILD/callgate" serve
    TRACC_GATE=$SPAWNED
    wait_http "http://127.0.0.1:$TRACC_CG/health"
    unset CG_REDIS
    NICE=()
fi

# ============================================================================
# 3. Admission storm, played by callgate-sim
# ============================================================================
if want storm; then
    rcli FLUSHALL >/dev/null
    STORM=$PARTS/storm-scenario.json
    awk -v s="$SCALE" 'BEGIN {
        printf "{\"name\": \"bench-storm\", \"seed\": 5000,\n"
        printf " \"description\": \"5,000 callers within 10 s against a limit of 100, calls of 5-30 s, zero API latency, time-scaled by 1/%s\",\n", s
        printf " \"duration_s\": %g, \"drain_s\": %g,\n", 10 / s, 2400 / s
        printf " \"callers\": {\"arrivals\": {\"process\": \"burst\", \"count\": 5000, \"at_s\": 0, \"spread_s\": %g},\n", 10 / s
        printf "             \"duration\": {\"dist\": \"uniform\", \"min_s\": %g, \"max_s\": %g}},\n", 5 / s, 30 / s
        # The hold music (callgate plays a track by default) lasts as long
        # as the announcement interval, as a real track of 30 s would at this
        # scale: a track of 0.5 s (the simulator default) made each of the
        # 5,000 waiting callers ask /queue-wait twice a second, and the
        # storm measured the simulator serving them.
        printf " \"twilio\": {\"queue_max_size\": 5000, \"play_s\": %g},\n", (30 / s > 5 ? 30 / s : 5)
        printf " \"vapi\": {\"limit\": 100, \"end_lag_s\": %g, \"report_lag_s\": %g},\n", 0.2 / s, 0.3 / s
        printf " \"expect\": {\"lost\": 0, \"max_overlimit_rejections\": 0, \"final_active\": 0, \"final_waiting\": 0, \"min_connected\": 5000}}\n"
    }' >"$STORM"
    SP=$(port)
    STSIM=$(port)
    # The expected call length is the scenario's mean, as an operator sets it.
    EXPECT_S=$(awk -v s="$SCALE" 'BEGIN {v = int(17.5 / s + 0.5); print v < 1 ? 1 : v}')
    log "admission storm: 5,000 callers, limit 100, time scale 1/$SCALE"
    # shellcheck disable=SC2046,SC2086 # settings are words on purpose
    spawn "$PARTS/callgate-storm.log" env -i $(cg_env storm storm "PORT=$SP" MAX_CONCURRENCY=100 \
        "EXPECTED_CALL_SECONDS=$EXPECT_S" $(fast_gate_env "$SCALE") ${BENCH_STORM_ENV:-} \
        "TWILIO_API_BASE_URL=http://127.0.0.1:$STSIM" "VAPI_BASE_URL=http://127.0.0.1:$STSIM") \
        "$BUILD/callgate" serve
    SPID=$SPAWNED
    SNAPX=(--proc "callgate=$SPID" --hash "gate=cg:{storm}:stats")
    wait_http "http://127.0.0.1:$SP/health"
    snap storm-ready
    spawn "$PARTS/sim-storm.log" timeout $((2400 / SCALE + 60)) "$BUILD/callgate-sim" \
        --scenario "$STORM" --public-url http://gate.bench.test --gate "http://127.0.0.1:$SP" \
        --port "$STSIM" --report "$PARTS/storm-report.json"
    STORM_SIM=$SPAWNED
    if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
        # A look at the middle of the storm (the queue at its longest, every
        # waiting caller polling), at a low rate so it barely weighs on it.
        sleep $((250 / SCALE))
        timeout 30 perf record -q -a -F 499 -o "$TMP/perf-storm.data" -- sleep $((100 / SCALE)) \
            >/dev/null 2>&1 || true
        {
            echo "== admission storm: share of samples by process (perf record -a -F 499," \
                "$((100 / SCALE)) s from $((250 / SCALE)) s) =="
            perf report -i "$TMP/perf-storm.data" --stdio --no-children --sort comm \
                --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12 || true
            for comm in callgate callgate-sim redis-server; do
                echo
                echo "== admission storm, $comm: self time by symbol =="
                perf report -i "$TMP/perf-storm.data" --stdio --no-children --comms "$comm" \
                    --percentage relative --sort dso,sym --percent-limit 1 2>/dev/null |
                    grep -v '^#' | grep -v '^$' | head -25 || true
            done
            echo
        } >>"$OUT/profile.txt"
    fi
    wait "$STORM_SIM" || log "storm: the simulator reports failed invariants (parts/sim-storm.log)"
    untrack "$STORM_SIM"
    snap after-storm
    curl -fs "http://127.0.0.1:$SP/metrics" >"$PARTS/metrics-storm.txt" || true
    forget "$SPID"
fi

if want accuracy; then
    for i in 0 1; do
        wait "${ACC_SIMS[$i]}" || log "accuracy: a simulator reports failed invariants"
        untrack "${ACC_SIMS[$i]}"
        forget "${ACC_GATES[$i]}"
    done
    forget "$TRACC_SIM" # SIGTERM: the report is written
    forget "$TRACC_GATE"
fi

# ============================================================================
# 7. Routes sharing one limit (cgbench-routes, its own redis-server): Redis
# CPU per admission with 1, 10 and 100 routes against the gate of one
# route, and a surge on one of two routes in real time (about 25 s)
# ============================================================================
if want routes; then
    log "routes: CPU per admission, then the two-route surge"
    start_redis routes
    "$BIN/cgbench-routes" --port "$REDIS_PORT" >"$PARTS/routes.txt" ||
        log "routes: cgbench-routes failed"
    forget "$REDIS_PID"
fi

# ============================================================================
# The report
# ============================================================================
ps -eo pcpu,etime,comm --sort=-pcpu 2>/dev/null | head -8 >"$PARTS/ps-end.txt" || true
printf '{"load_end":%s,"elapsed_s":%s,"sections":%s}\n' \
    "$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")" "$(($(date +%s) - T0))" \
    "$(json_str "$SECTIONS")" >"$PARTS/end.json"
"$BIN/cgbench-report" "$PARTS" "$OUT/results.json" "$OUT/results.md"
if [ -s "$PARTS/tls.json" ]; then
    # TLS to Redis against plain TCP, same run, same server (section 3b).
    awk -F'[:,}]' '{
        for (i = 1; i < NF; i++) { k = $i; gsub(/[{" ]/, "", k); v[k] = $(i + 1) }
        printf "\n| TLS to Redis (same run, same redis-server) | TCP | TLS | TLS / TCP |\n"
        printf "|---|---|---|---|\n"
        printf "| Redis round trips a second (callgate'"'"'s client, one outstanding) | %d | %d | %.2f |\n",
            v["rtt_tcp_per_s"], v["rtt_tls_per_s"], v["rtt_tls_per_s"] / v["rtt_tcp_per_s"]
        printf "| round trip p50 (us) | %.1f | %.1f | %.2f |\n",
            v["rtt_tcp_p50_us"], v["rtt_tls_p50_us"], v["rtt_tls_p50_us"] / v["rtt_tcp_p50_us"]
        printf "| `/incoming` a second (wrk, 64 connections) | %d | %d | %.2f |\n",
            v["incoming_tcp_per_s"], v["incoming_tls_per_s"], v["incoming_tls_per_s"] / v["incoming_tcp_per_s"]
    }' "$PARTS/tls.json" | tee -a "$OUT/results.md"
fi
if [ -s "$PARTS/routes.txt" ]; then
    # Targets (issue: routes sharing one Vapi budget): the decision per
    # freed slot grows no faster than the number of routes (100 routes
    # cost at most 10 times what 10 do); the protected route's mean wait
    # under the other's surge stays at its no-surge level (within 0.1 s);
    # the shared limit stays as used as the gate of one route's under the
    # same surge (idle slot-seconds while callers wait, within 0.5).
    awk '
        function mark(ok) { return ok ? "met" : "missed" }
        /^routes-cpu one-route-gate/ { split($3, a, "="); one = a[2] }
        /^routes-cpu routes=/ { split($2, n, "="); split($3, a, "="); u[n[2]] = a[2] }
        /^routes-surge/ {
            label = $0; sub(/^routes-surge /, "", label); sub(/:.*/, "", label)
            match($0, /route a \(min 3\) mean wait [0-9.]+/); s = substr($0, RSTART, RLENGTH)
            sub(/.* /, "", s); wa[label] = s
            match($0, /max [0-9.]+/); s = substr($0, RSTART + 4, RLENGTH - 4); mx[label] = s
            match($0, /route b mean wait [0-9.]+/); s = substr($0, RSTART, RLENGTH)
            sub(/.* /, "", s); wb[label] = s
            match($0, /while callers wait [0-9.]+/); s = substr($0, RSTART, RLENGTH)
            sub(/.* /, "", s); idle[label] = s
        }
        END {
            printf "\n| Routes sharing one limit (cgbench-routes) | measured | target | |\n"
            printf "|---|---|---|---|\n"
            printf "| CPU per admission, gate of one route (us, Redis) | %.1f | | |\n", one
            for (i = 1; i <= 3; i++) {
                k = i == 1 ? 1 : i == 2 ? 10 : 100
                printf "| CPU per admission, %d route%s (us; ratio to one route) | %.1f (%.2f) | | |\n",
                    k, (k > 1 ? "s" : ""), u[k], (one > 0 ? u[k] / one : 0)
            }
            ok = u[10] + 0 > 0 && u[100] + 0 <= 10 * u[10]
            printf "| growth from 10 to 100 routes | %.2fx | <= 10x (O(routes)) | %s |\n",
                (u[10] > 0 ? u[100] / u[10] : 0), mark(ok)
            ns = "routes, no surge"; ys = "routes, surge on b"; os = "one route, surge on b"
            printf "| route a (min 3): mean wait, no surge / surge on b (s) | %.3f / %.3f | surge <= no surge + 0.1 | %s |\n",
                wa[ns], wa[ys], mark(wa[ys] != "" && wa[ys] + 0 <= wa[ns] + 0.1)
            printf "| route a: longest wait, no surge / surge on b (s) | %.3f / %.3f | | |\n", mx[ns], mx[ys]
            printf "| route a: mean wait under the surge, one route for both (s) | %.3f | | |\n", wa[os]
            printf "| route b: mean wait, no surge / surge (s) | %.3f / %.3f | | |\n", wb[ns], wb[ys]
            printf "| idle slot-seconds while callers wait, routes / one route (surge) | %.2f / %.2f | routes <= one route + 0.5 | %s |\n",
                idle[ys], idle[os], mark(idle[ys] != "" && idle[ys] + 0 <= idle[os] + 0.5)
        }' "$PARTS/routes.txt" | tee -a "$OUT/results.md"
fi
log "done in $(($(date +%s) - T0)) s: bench/out/results.json, results.md, profile.txt"
