#!/usr/bin/env bash
# bench/viewers.sh BUILD_DIR - what watching the queue costs callgate's loop
# during a surge.
#
# Each run starts a private Redis, callgate-sim playing Twilio, Vapi and the
# callers, and one callgate serve. The callers arrive at BENCH_VIEWERS_RATE
# a second (default 60, Poisson) against a limit of BENCH_VIEWERS_LIMIT
# (default 60) slots with calls of 1 to 3 s: the slots serve about half of
# the arrivals, the queue grows to a few hundred callers who give up after
# about 20 s, so every second callers arrive, are admitted, abandon and
# wait longer - a surge the 2-core bench machine sustains, held for the
# whole run. BENCH_VIEWERS_PAIRS (default 3) pairs of runs follow each other:
# with no viewer, then with BENCH_VIEWERS (default 200) clients on
# GET /events (curl, each reading the stream). Over the same window of each
# run (BENCH_VIEWERS_WINDOW_S, default 30 s, from BENCH_VIEWERS_WARMUP_S,
# default 12 s, after the callers start) it reads callgate's CPU time
# (/proc/PID/stat, user + system) and prints each pair, the median of the
# pairs' extra CPU as a share of the run without viewers (the figure the
# target of under 5% is about), the same per HTTP request callgate
# answered in the window (200 curl clients on a 2-core machine can slow the
# simulator, and with it the work callgate is given), and the spread of the
# baselines (the machine's noise). The runs of a pair follow each other, so that a change
# in the machine's load shows as a difference between pairs, not as the
# viewers' cost.
# A benchmark, not a test: it prints figures and fails only when it cannot
# run.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
VIEWERS=${BENCH_VIEWERS:-200}
WINDOW=${BENCH_VIEWERS_WINDOW_S:-30}
WARMUP=${BENCH_VIEWERS_WARMUP_S:-12}
PAIRS=${BENCH_VIEWERS_PAIRS:-3}
RATE=${BENCH_VIEWERS_RATE:-60}
LIMIT=${BENCH_VIEWERS_LIMIT:-60}
TOKEN=bench-viewers-token
for cmd in curl awk timeout redis-server redis-cli python3; do
    command -v "$cmd" >/dev/null || { echo "viewers: $cmd is not installed" >&2; exit 2; }
done
for exe in callgate callgate-sim; do
    [ -x "$BUILD/$exe" ] || { echo "viewers: $BUILD/$exe is missing" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/callgate-viewers.XXXXXX)
PIDS=()
CURLS=()
stop_all() {
    local p
    for p in "${CURLS[@]}"; do kill "$p" 2>/dev/null || true; done
    CURLS=()
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        timeout 20 tail --pid="$p" -f /dev/null 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    done
    PIDS=()
}
cleanup() {
    stop_all
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_ticks() { # pid: "user system" clock ticks
    awk '{ print $14, $15 }' "/proc/$1/stat"
}
wait_http() { # url
    local i
    for ((i = 0; i < 400; i++)); do
        curl -fs -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.05
    done
    echo "viewers: $1 did not answer" >&2
    return 1
}
metric() { # base name
    curl -s --max-time 5 "$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
requests() { # base: HTTP requests callgate answered so far, every route
    curl -s --max-time 5 "$1/metrics" |
        awk '$1 ~ /^callgate_http_requests_total([{]|$)/ { s += $2 } END { printf "%d\n", s }'
}

# The surge, held for the warm-up, the window and a margin.
SCEN=$TMP/scenario.json
cat >"$SCEN" <<EOF
{"name": "bench-viewers", "seed": 16,
 "description": "a held surge: $RATE callers a second against $LIMIT slots with calls of 1-3 s",
 "duration_s": $((WARMUP + WINDOW + 15)), "drain_s": 5,
 "callers": {"arrivals": {"process": "poisson", "rate_per_s": $RATE},
             "duration": {"dist": "uniform", "min_s": 1, "max_s": 3},
             "patience": {"dist": "lognormal", "median_s": 20, "sigma": 0.5, "min_s": 5, "max_s": 120}},
 "twilio": {"queue_max_size": 5000, "play_s": 5},
 "vapi": {"limit": $LIMIT}}
EOF

# One run; prints "cpu_seconds user_seconds viewers_at_end snapshots_per_viewer
# waiting_at_start_of_window admitted_in_window".
run() {
    local n=$1 i rp gp sp
    rp=$(port)
    mkdir -p "$TMP/redis"
    redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" \
        >"$TMP/redis.log" 2>&1 &
    PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        [ "$(redis-cli -p "$rp" ping 2>/dev/null)" = PONG ] && break
        sleep 0.05
    done
    gp=$(port)
    sp=$(port)
    local base=http://127.0.0.1:$gp
    env -i PATH=/usr/bin:/bin BIND_ADDRESS=127.0.0.1 "PORT=$gp" "REDIS_URL=redis://127.0.0.1:$rp" \
        PUBLIC_URL=http://gate.bench.test GATE_NAME=viewers TWILIO_QUEUE_NAME=viewers \
        INSTANCE_ID=viewers-1 "ADMIN_TOKEN=$TOKEN" "MAX_CONCURRENCY=$LIMIT" \
        TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_AUTH_TOKEN=sim-auth-token \
        VAPI_API_KEY=sim-vapi-key VAPI_WEBHOOK_SECRET=sim-vapi-secret \
        VAPI_PHONE_NUMBER_ID=sim-phone-number VAPI_ASSISTANT_ID=sim-assistant LOG_LEVEL=warn \
        "TWILIO_API_BASE_URL=http://127.0.0.1:$sp" "VAPI_BASE_URL=http://127.0.0.1:$sp" \
        EXPECTED_CALL_SECONDS=2 ANNOUNCE_INTERVAL_SECONDS=5 MAX_QUEUE_SIZE=5000 \
        MAX_WAIT_SECONDS=0 SWEEP_INTERVAL_MS=200 END_GRACE_MS=1000 LEASE_SECONDS=10 \
        ORPHAN_HOLD_SECONDS=5 OVERLIMIT_HOLD_SECONDS=2 ADMISSION_LEASE_SECONDS=10 \
        RECONCILE_INTERVAL_SECONDS=5 TWILIO_TIMEOUT_MS=5000 VAPI_TIMEOUT_MS=5000 \
        "$BUILD/callgate" serve >"$TMP/callgate.log" 2>&1 &
    local gate=$!
    PIDS+=("$gate")
    wait_http "$base/health"
    # The viewers connect before the callers: they watch the surge build.
    for ((i = 0; i < n; i++)); do
        curl -sN "$base/events?token=$TOKEN" >"$TMP/v$i" 2>/dev/null &
        CURLS+=($!)
    done
    timeout $((WARMUP + WINDOW + 60)) "$BUILD/callgate-sim" --scenario "$SCEN" \
        --public-url http://gate.bench.test --gate "$base" --port "$sp" \
        --report "$TMP/report.json" >"$TMP/sim.log" 2>&1 &
    PIDS+=($!)
    sleep "$WARMUP"
    local connected waiting
    connected=$(metric "$base" callgate_events_viewers)
    waiting=$(metric "$base" callgate_waiting)
    local u0 s0 u1 s1 r0 r1
    r0=$(requests "$base")
    read -r u0 s0 < <(cpu_ticks "$gate")
    sleep "$WINDOW"
    read -r u1 s1 < <(cpu_ticks "$gate")
    r1=$(requests "$base")
    local still snaps=0 waiting1
    still=$(metric "$base" callgate_events_viewers)
    waiting1=$(metric "$base" callgate_waiting)
    if [ "$n" -gt 0 ]; then
        snaps=$(cat "$TMP"/v* | grep -c '^event: snapshot' || true)
        snaps=$((snaps / n))
    fi
    stop_all
    rm -rf "$TMP"/v* "$TMP/redis"
    echo "viewers: run with $n viewers: ${connected:-?} connected after the warm-up," \
        "${still:-?} at the end; ${waiting:-?} then ${waiting1:-?} callers waiting" >&2
    awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v hz="$(getconf CLK_TCK)" \
        -v c="${still:-0}" -v s="$snaps" -v r=$((r1 - r0)) \
        'BEGIN { printf "%.2f %.2f %s %s %d\n", (u1 - u0 + s1 - s0) / hz, (u1 - u0) / hz, c, s, r }'
}

echo "viewers: a surge of $RATE callers/s against $LIMIT slots, with 0 and $VIEWERS viewers" \
    "on /events, $PAIRS pairs; callgate's CPU over ${WINDOW} s from ${WARMUP} s;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
PAIR_LINES=()
for ((k = 1; k <= PAIRS; k++)); do
    read -r base_cpu base_user _ _ base_req < <(run 0)
    read -r view_cpu view_user still snaps view_req < <(run "$VIEWERS")
    PAIR_LINES+=("$base_cpu $base_user $view_cpu $view_user $still $snaps $base_req $view_req")
done
printf '%s\n' "${PAIR_LINES[@]}" | awk -v n="$VIEWERS" -v w="$WINDOW" -v wu="$WARMUP" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
{ a[NR] = $1; au[NR] = $2; b[NR] = $3; bu[NR] = $4; c[NR] = $5; s[NR] = $6
  extra[NR] = $3 - $1; share[NR] = ($3 - $1) / w * 100
  rel[NR] = $1 > 0 ? ($3 - $1) / $1 * 100 : 0
  ra[NR] = $7; rb[NR] = $8
  pa[NR] = $7 > 0 ? $1 / $7 * 1000 : 0; pb[NR] = $8 > 0 ? $3 / $8 * 1000 : 0
  nrel[NR] = pa[NR] > 0 ? (pb[NR] - pa[NR]) / pa[NR] * 100 : 0 }
function median(v, k,   t, i, j, x) {
    for (i = 1; i <= k; i++) t[i] = v[i]
    for (i = 2; i <= k; i++) { x = t[i]; for (j = i - 1; j >= 1 && t[j] > x; j--) t[j + 1] = t[j]; t[j + 1] = x }
    return k % 2 ? t[(k + 1) / 2] : (t[k / 2] + t[k / 2 + 1]) / 2
}
END {
    k = NR
    lo = hi = a[1]
    for (i = 1; i <= k; i++) {
        if (a[i] < lo) lo = a[i]
        if (a[i] > hi) hi = a[i]
        printf "events viewers: pair %d: callgate CPU over %d s of the surge: %.2f s without viewers, %.2f s with %d (%+.1f%%, %.2f%% of one core); user %.2f s and %.2f s; each viewer got %d snapshots, %s still connected at the end; %d and %d HTTP requests answered (%.2f and %.2f s of CPU per 1,000: %+.1f%%)\n", i, w, a[i], b[i], n, rel[i], share[i], au[i], bu[i], s[i], c[i], ra[i], rb[i], pa[i], pb[i], nrel[i]
    }
    m = median(rel, k)
    printf "events viewers: noise: the runs without viewers took %.2f to %.2f s (%.1f%% of their median %.2f s); load average at the end %s\n", lo, hi, (hi - lo) / median(a, k) * 100, median(a, k), load
    printf "events viewers: %d viewers cost the loop %+.1f%% CPU during the surge, median of %d pairs (target: under 5%%): %s\n", n, m, k, m < 5 ? "met" : "missed"
    printf "events viewers: per HTTP request answered (the same work: the viewers curl clients may slow the simulator): %+.1f%%, median of %d pairs\n", median(nrel, k), k
    printf "events viewers: that is %.2f%% of one core (%.2f s of CPU in %d s)\n", median(share, k), median(extra, k), w
    if (n > 0 && s[1] > 0) printf "events viewers: about %.0f us of CPU per snapshot sent to one viewer (median)\n", median(extra, k) / (n * s[1] * w / (w + wu)) * 1e6
}'
