#!/usr/bin/env bash
# soak.sh - long steady simulated traffic against two callgate instances and
# one Redis, watching for slow leaks: each instance's resident memory and
# open descriptors, Redis' memory and keys, and errors.
#
#   scripts/soak.sh [BUILD_DIR]              SOAK_MINUTES (default 30) of traffic
#   scripts/soak.sh --valgrind [BUILD_DIR]   a short run with both instances under
#                                            valgrind; fails on any leak or error
#
# The traffic (callgate-sim): Poisson arrivals at SOAK_RATE callers/s (4)
# against a concurrency limit of SOAK_LIMIT (10), calls of 1-3 s, about 90%
# of the gate's capacity, so a queue forms and drains all the time; some
# callers give up while waiting, and a few Vapi errors and lost webhooks
# keep the requeue and sweep paths busy. Every SOAK_INTERVAL seconds (10)
# one sample: VmRSS and descriptors of each instance, Redis used_memory,
# DBSIZE and the queue log's length, and the simulator's /sim/status.
#
# Verdicts, after a warm-up of SOAK_WARMUP_S (120) seconds:
#   rss      each instance's last sample within 10% of its first after warm-up
#   fds      each instance's descriptors stay within a small band (keep-alive
#            connections come and go) and end no higher than they started + 4
#   redis    growth is only what the gate is meant to keep: the queue log
#            stream (capped near 100,000 entries) and one record per caller
#            that expires a day after the call (call:, vapi:, vend: keys);
#            keys without an expiry stay the same few; memory not explained
#            by those two is under 1 MiB
#   errors   no error-level line in any callgate log; every invariant of the
#            simulator holds (nobody lost, never over the limit, final counts)
# The exit status is 0 when every verdict holds. Samples (samples.csv), the
# simulator's report, the summary and, on failure or with SOAK_KEEP=1, the
# logs stay in SOAK_OUT (default: a new directory under $TMPDIR).
# Loopback only; everything started here is stopped on exit.
set -euo pipefail

valgrind_mode=0
if [ "${1:-}" = "--valgrind" ]; then
    valgrind_mode=1
    shift
fi
build=${1:-${BUILD:-build}}
minutes=${SOAK_MINUTES:-30}
interval=${SOAK_INTERVAL:-10}
rate=${SOAK_RATE:-4}
limit=${SOAK_LIMIT:-10}
if [ "$valgrind_mode" = 1 ]; then
    seconds=${SOAK_VALGRIND_SECONDS:-40}
    rate=${SOAK_RATE:-2}
else
    seconds=$((minutes * 60))
fi
# Two minutes, or a quarter of a short run.
warmup=${SOAK_WARMUP_S:-$((seconds < 480 ? seconds / 4 : 120))}

for bin in "$build/callgate" "$build/callgate-sim"; do
    [ -x "$bin" ] || { echo "soak: $bin not built (make build)" >&2; exit 2; }
done
for tool in redis-server redis-cli curl; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is missing (scripts/deps.sh)" >&2; exit 2; }
done
if [ "$valgrind_mode" = 1 ] && ! command -v valgrind >/dev/null; then
    echo "soak: valgrind is missing (scripts/deps.sh)" >&2
    exit 2
fi

out=${SOAK_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/callgate-soak-XXXXXX")}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The binaries are copied first: rebuilding the tree during a long run must
# not change what runs.
mkdir -p "$out/bin"
cp "$build/callgate" "$build/callgate-sim" "$out/bin/"
build="$out/bin"

# ---- processes: every one is ours, by pid, and stopped on exit ----
redis_pid=""
sim_pid=""
gate_pids=()
ok=0

# shellcheck disable=SC2317 # runs from the EXIT trap
stop_pid() { # pid signal timeout_s
    local pid=$1 sig=$2 t=$3
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((t * 10))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$sim_pid" INT 5
    for p in "${gate_pids[@]}"; do stop_pid "$p" TERM 10; done
    stop_pid "$redis_pid" TERM 5
    wait 2>/dev/null || true
    if [ "$ok" = 1 ] && [ "${SOAK_KEEP:-0}" != 1 ]; then
        rm -f "${out:?}"/gate-*.log "${out:?}"/sim.log "${out:?}"/redis.log
        rm -rf "${out:?}/redis" "${out:?}/bin"
    fi
    echo "soak: results in $out"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody answers on now (a race remains; the start-up checks
# below catch a lost one).
# Below the kernel's ephemeral range, where outgoing connections (of this
# run and of anything else on the machine) take their local ports, and never
# one this run already picked. Sets $port (not in a subshell, so that the
# picks are remembered).
picked=" "
free_port() {
    local p lo
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$lo" -gt 12000 ] || lo=32768
    for _ in $(seq 1 100); do
        p=$((10000 + RANDOM % (lo - 10000)))
        [[ "$picked" == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            picked+="$p "
            port=$p
            return 0
        fi
    done
    echo "soak: no free port" >&2
    return 1
}

# ---- Redis ----
free_port
redis_port=$port
mkdir -p "$out/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$out/redis" --logfile "$out/redis.log" &
redis_pid=$!
# Raw replies (stdout is not a terminal): numbers and strings as they are.
rcli() { redis-cli -p "$redis_port" "$@" 2>/dev/null; }
for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null || true)" = PONG ] && break
    kill -0 "$redis_pid" 2>/dev/null || { echo "soak: redis-server did not start" >&2; exit 1; }
    sleep 0.1
done
K='cg:{default}:'

# ---- the scenario ----
cat >"$out/scenario.json" <<EOF
{
  "name": "soak",
  "description": "soak.sh: steady traffic for ${seconds} s at ${rate} callers/s against a limit of ${limit}.",
  "seed": ${SOAK_SEED:-4242},
  "duration_s": ${seconds},
  "drain_s": 60,
  "callers": {
    "arrivals": {"process": "poisson", "rate_per_s": ${rate}},
    "duration": {"dist": "uniform", "min_s": 1, "max_s": 3},
    "patience": {"dist": "exp", "mean_s": 60, "min_s": 5, "max_s": 600}
  },
  "twilio": {"webhooks": {"drop": 0.002}},
  "vapi": {"limit": ${limit}, "rate_500": 0.01, "webhooks": {"drop": 0.005}},
  "expect": {"lost": 0, "max_overlimit_rejections": 0}
}
EOF

# ---- callgate, twice ----
free_port
sim_port=$port
sim_url="http://127.0.0.1:$sim_port"
public_url="http://gate.callgate.test"
gate_urls=""
timeout_ms=5000
[ "$valgrind_mode" = 1 ] && timeout_ms=15000
for i in 1 2; do
    free_port
    cmd=("$build/callgate" serve)
    if [ "$valgrind_mode" = 1 ]; then
        # shellcheck disable=SC2054 # the commas are valgrind's
        cmd=(valgrind --leak-check=full --show-leak-kinds=definite,indirect
             --errors-for-leak-kinds=definite,indirect --error-exitcode=99
             "--log-file=$out/valgrind-gate-$i.log" "${cmd[@]}")
    fi
    env PORT="$port" BIND_ADDRESS=127.0.0.1 REDIS_URL="redis://127.0.0.1:$redis_port" \
        PUBLIC_URL="$public_url" INSTANCE_ID="gate-$i" MAX_CONCURRENCY="$limit" \
        TWILIO_API_BASE_URL="$sim_url" VAPI_BASE_URL="$sim_url" \
        TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_AUTH_TOKEN=sim-auth-token \
        VAPI_API_KEY=sim-vapi-key VAPI_WEBHOOK_SECRET=sim-vapi-secret \
        VAPI_PHONE_NUMBER_ID=sim-phone-number VAPI_ASSISTANT_ID=sim-assistant \
        LOG_LEVEL=info SWEEP_INTERVAL_MS=250 END_GRACE_MS=1000 LEASE_SECONDS=30 \
        ORPHAN_HOLD_SECONDS=10 OVERLIMIT_HOLD_SECONDS=5 ADMISSION_LEASE_SECONDS=20 \
        ADMISSION_BACKOFF_MIN_MS=50 ADMISSION_BACKOFF_MAX_MS=2000 \
        RECONCILE_INTERVAL_SECONDS=5 EXPECTED_CALL_SECONDS=2 \
        TWILIO_TIMEOUT_MS=$timeout_ms VAPI_TIMEOUT_MS=$timeout_ms MAX_WAIT_SECONDS=0 \
        "${cmd[@]}" >"$out/gate-$i.log" 2>&1 &
    gate_pids+=($!)
    gate_urls+="${gate_urls:+,}http://127.0.0.1:$port"
done

"$build/callgate-sim" --scenario "$out/scenario.json" --public-url "$public_url" \
    --gate "$gate_urls" --port "$sim_port" --report "$out/report.json" >"$out/sim.log" 2>&1 &
sim_pid=$!

if [ "$valgrind_mode" = 1 ]; then
    echo "soak: ${seconds} s at ${rate} callers/s, limit ${limit}, both instances under valgrind"
else
    echo "soak: ${minutes} min at ${rate} callers/s, limit ${limit}, two instances;" \
        "a sample every ${interval} s ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
fi

# ---- sampling ----
json_num() { # key json: the number, or nothing
    { grep -o "\"$1\":[-0-9.e]*" <<<"$2" || true; } | head -1 | cut -d: -f2
}
csv="$out/samples.csv"
echo "t_s,rss1_kb,fds1,rss2_kb,fds2,redis_used,redis_keys,log_len,arrived,connected,abandoned,lost,waiting,active,load1" >"$csv"
sample() {
    local t=$1 row=$1 p rss fds status
    for p in "${gate_pids[@]}"; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        fds=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        row+=",${rss:-0},$fds"
    done
    row+=",$(rcli info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')"
    row+=",$(rcli dbsize),$(rcli xlen "${K}log")"
    status=$(curl -s -m 2 "$sim_url/sim/status" || true)
    for k in arrived connected abandoned lost waiting active; do
        row+=",$(json_num "$k" "$status")"
    done
    row+=",$(cut -d' ' -f1 /proc/loadavg)"
    echo "$row" >>"$csv"
}
start=$(date +%s)
next=$start
last_note=$start
while kill -0 "$sim_pid" 2>/dev/null; do
    now=$(date +%s)
    if [ "$now" -ge "$next" ]; then
        sample $((now - start))
        next=$((next + interval))
        if [ $((now - last_note)) -ge 60 ]; then
            last_note=$now
            tail -1 "$csv" | awk -F, '{printf "soak: t=%ss rss=%s/%s kB fds=%s/%s redis=%s B keys=%s log=%s arrived=%s lost=%s load=%s\n", $1, $2, $4, $3, $5, $6, $7, $8, $9, $12, $15}'
        fi
    fi
    sleep 1
done
set +e
wait "$sim_pid"
sim_rc=$?
set -e
sim_pid=""
sample $(($(date +%s) - start))

# ---- the end: stop the instances (valgrind reports at exit) ----
gate_rcs=()
for p in "${gate_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
done
for p in "${gate_pids[@]}"; do
    set +e
    wait "$p"
    gate_rcs+=($?)
    set -e
done
gate_pids=()

# Redis at the end: keys that never expire, and the sizes of what is kept.
persistent=$(rcli eval "local out, c = {}, '0'
    repeat
      local r = redis.call('SCAN', c, 'COUNT', 1000)
      c = r[1]
      for _, k in ipairs(r[2]) do
        if redis.call('TTL', k) == -1 then out[#out + 1] = k end
      end
    until c == '0'
    return out" 0 | sort)
n_persistent=$(grep -c . <<<"$persistent" || true)
log_bytes=$(rcli memory usage "${K}log")
log_len=$(rcli xlen "${K}log")
record_bytes() { # pattern: mean MEMORY USAGE over up to 50 keys
    # head stops the scan early: its SIGPIPE is expected.
    { rcli --scan --pattern "$1" || true; } | head -50 | while read -r k; do rcli memory usage "$k"; done |
        awk '{s += $1; n++} END {printf "%d", n ? s / n : 0}'
}
call_b=$(record_bytes "${K}call:*")
vapi_b=$(record_bytes "${K}vapi:*")
vend_b=$(record_bytes "${K}vend:*")
n_call=$(rcli --scan --pattern "${K}call:*" | wc -l)
n_vapi=$(rcli --scan --pattern "${K}vapi:*" | wc -l)
n_vend=$(rcli --scan --pattern "${K}vend:*" | wc -l)

error_lines=0
warn_lines=0
for i in 1 2; do
    error_lines=$((error_lines + $(grep -c '"level":"error"' "$out/gate-$i.log" || true)))
    warn_lines=$((warn_lines + $(grep -c '"level":"warn"' "$out/gate-$i.log" || true)))
done
inv_failed=$(grep -c '"ok": false' "$out/report.json" 2>/dev/null || true)
[ -s "$out/report.json" ] || inv_failed=1

# ---- verdicts ----
report_fields() { # alternatives: "name:value ..." from the simulator's report
    { grep -E "\"($1)\":" "$out/report.json" 2>/dev/null || true; } | tr -d ' ,"' | tr '\n' ' '
}
summary="$out/summary.txt"
{
    echo "callgate soak: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$valgrind_mode" = 1 ]; then
        echo "mode: valgrind, ${seconds} s at ${rate} callers/s, limit ${limit}"
    else
        echo "mode: ${minutes} min at ${rate} callers/s, limit ${limit}, calls 1-3 s, warm-up ${warmup} s"
    fi
    echo "callers: $(report_fields 'total|connected|abandoned|overflowed|lost')"
    report_fields 'peak_vapi_concurrency|overlimit_rejections|elapsed_s'
    echo
    echo "simulator exit $sim_rc, failed invariants $inv_failed; callgate exits ${gate_rcs[*]}; error lines $error_lines, warn lines $warn_lines"
} >"$summary"

verdict=0
if [ "$valgrind_mode" = 1 ]; then
    for i in 1 2; do
        vl="$out/valgrind-gate-$i.log"
        def=$(grep -o 'definitely lost: [0-9,]* bytes in [0-9,]* blocks' "$vl" | tail -1)
        ind=$(grep -o 'indirectly lost: [0-9,]* bytes in [0-9,]* blocks' "$vl" | tail -1)
        errs=$(grep -o 'ERROR SUMMARY: [0-9,]* errors' "$vl" | tail -1)
        echo "valgrind gate-$i: exit ${gate_rcs[$((i - 1))]}; ${def:-definitely lost: 0 bytes}; ${ind:-indirectly lost: 0 bytes}; ${errs:-no summary}" >>"$summary"
        [ "${gate_rcs[$((i - 1))]}" = 0 ] || verdict=1
    done
else
    # first after warm-up, last and max of each instance's RSS and fds
    awk -F, -v w="$warmup" -v rate="$rate" -v n_p="$n_persistent" -v log_b="$log_bytes" -v log_n="$log_len" \
        -v cb="$call_b" -v vb="$vapi_b" -v eb="$vend_b" -v nc="$n_call" -v nv="$n_vapi" -v ne="$n_vend" '
        NR == 1 { next }
        {
            t = $1
            if (!seen0) { seen0 = 1; first_used = $6; first_keys = $7 }
            for (g = 0; g < 2; g++) {
                r = $(2 + 2 * g); f = $(3 + 2 * g)
                if (!(g in r0)) { r0[g] = r; f0[g] = f }
                if (t >= w && !(g in rw)) { rw[g] = r; fw[g] = f; fmin[g] = f; fmax[g] = f }
                if (t >= w) { if (f < fmin[g]) fmin[g] = f; if (f > fmax[g]) fmax[g] = f }
                if (r > rmax[g]) rmax[g] = r
                rl[g] = r; fl[g] = f
            }
            if (t >= w && !uw_set) { uw_set = 1; uw = $6; kw = $7; lw = $8 }
            if ($6 > umax) umax = $6
            ul = $6; kl = $7; ll = $8
        }
        END {
            bad = 0
            for (g = 0; g < 2; g++) {
                growth = rw[g] > 0 ? 100 * (rl[g] - rw[g]) / rw[g] : 0
                rv = growth < 10 ? "flat" : "GROWING"
                fv = (fl[g] <= fw[g] + 4 && fmax[g] - fmin[g] <= 32) ? "flat" : "GROWING"
                if (rv != "flat" || fv != "flat") bad = 1
                printf "gate-%d rss kB: first %d, after warm-up %d, last %d, max %d: %+.1f%% since warm-up: %s\n", g + 1, r0[g], rw[g], rl[g], rmax[g], growth, rv
                printf "gate-%d fds: first %d, after warm-up %d, last %d, band after warm-up %d-%d: %s\n", g + 1, f0[g], fw[g], fl[g], fmin[g], fmax[g], fv
            }
            per_entry = log_n > 0 ? log_b / log_n : 0
            per_caller = cb + vb + eb
            d_used = ul - uw
            d_log = (ll - lw) * per_entry
            d_rec = (kl - kw) * (nc + nv + ne > 0 ? (nc * cb + nv * vb + ne * eb) / (nc + nv + ne) : 0)
            resid = d_used - d_log - d_rec
            rv = (n_p <= 12 && resid < 1048576) ? "bounded (growth is the capped log and expiring records)" : "UNEXPLAINED GROWTH"
            if (rv !~ /^bounded/) bad = 1
            printf "redis used_memory B: first %d, after warm-up %d, last %d, max %d\n", first_used, uw, ul, umax
            printf "redis keys: first %d, after warm-up %d, last %d; without expiry: %d; call records %d, vapi ids %d, vapi ends %d\n", first_keys, kw, kl, n_p, nc, nv, ne
            printf "redis queue log: %d entries (cap ~100000), %d B, %.0f B per entry; records per caller ~%d B (call %d, vapi %d, vend %d), kept a day\n", log_n, log_b, per_entry, per_caller, cb, vb, eb
            printf "redis growth since warm-up: %d B = log %d B + records %d B + unexplained %d B: %s\n", d_used, d_log, d_rec, resid, rv
            printf "redis steady state (projection): log at its cap %.1f MiB + a day of records at %s callers/s %.0f MiB\n", 100000 * per_entry / 1048576, rate, per_caller * rate * 86400 / 1048576
            exit bad
        }' "$csv" >>"$summary" || verdict=1
fi
if [ "$sim_rc" != 0 ] || [ "$inv_failed" != 0 ] || [ "$error_lines" != 0 ]; then
    verdict=1
fi
for rc in "${gate_rcs[@]}"; do
    if [ "$valgrind_mode" = 0 ] && [ "$rc" != 0 ]; then verdict=1; fi
done
echo "keys without expiry: $(tr '\n' ' ' <<<"$persistent")" >>"$summary"
if [ "$verdict" = 0 ]; then
    echo "verdict: PASS" >>"$summary"
    ok=1
else
    echo "verdict: FAIL" >>"$summary"
fi
cat "$summary"
exit "$verdict"
