#!/usr/bin/env bash
# bench/viewers.sh BUILD_DIR - what watching the queue costs callgate's loop.
#
# Plays the demo's surge (`callgate demo`: a private Redis, callgate-sim
# playing Twilio, Vapi and the callers, one callgate) once with one viewer
# (the board's own cost: the snapshot built each tick), then
# BENCH_VIEWERS_PAIRS (default 2) pairs of runs back to back: with no
# viewer, and with BENCH_VIEWERS (default 200) clients on GET /events
# (curl, each reading the stream). Over the same window of each run
# (BENCH_VIEWERS_WINDOW_S, default 40 s, from 5 s after the callers start)
# it reads callgate's CPU time (/proc/PID/stat, user + system) and prints,
# for each pair and as the median of the pairs, the extra CPU the viewers
# cost as a share of the run without them and of one core. The baseline is
# about a second of CPU in 40 s, so a single pair on a shared machine
# varies by tens of percent; the share of a core is the steadier figure. The
# board reads Redis once per tick whatever the number of viewers; what
# grows with them is writing each changed snapshot to every stream.
# A benchmark, not a test: it prints figures and fails only when it cannot
# run.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
VIEWERS=${BENCH_VIEWERS:-200}
WINDOW=${BENCH_VIEWERS_WINDOW_S:-40}
PAIRS=${BENCH_VIEWERS_PAIRS:-2}
for cmd in curl awk timeout; do
    command -v "$cmd" >/dev/null || { echo "viewers: $cmd is not installed" >&2; exit 2; }
done
[ -x "$BUILD/callgate" ] || { echo "viewers: $BUILD/callgate is missing" >&2; exit 2; }

TMP=$(mktemp -d /tmp/callgate-viewers.XXXXXX)
DEMO=
CURLS=()
cleanup() {
    local p
    for p in "${CURLS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$DEMO" ]; then
        kill -INT "$DEMO" 2>/dev/null || true
        timeout 30 tail --pid="$DEMO" -f /dev/null 2>/dev/null || kill -KILL "$DEMO" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

cpu_ticks() { # pid: "user system" clock ticks
    awk '{ print $14, $15 }' "/proc/$1/stat"
}

# One run; prints "cpu_seconds viewers_connected_at_end snapshots_per_viewer".
run() {
    local n=$1 out="$TMP/demo-$1.out" url="" i
    (cd "$TMP" && exec "$BUILD/callgate" demo) >"$out" 2>&1 &
    DEMO=$!
    for ((i = 0; i < 600; i++)); do
        url=$(grep -o 'http://[^ ]*/wallboard?token=[0-9a-f]*' "$out" || true)
        [ -n "$url" ] && break
        sleep 0.05
    done
    [ -n "$url" ] || { echo "viewers: the demo printed no wallboard address" >&2; cat "$out" >&2; exit 1; }
    local base=${url%/wallboard*} token=${url#*token=}
    for ((i = 0; i < 600; i++)); do
        curl -sf -o /dev/null "$base/health" && break
        sleep 0.05
    done
    # callgate serve is the demo's child that listens on the address.
    local gate="" p
    for p in $(pgrep -P "$DEMO"); do
        if tr '\0' ' ' <"/proc/$p/cmdline" | grep -q ' serve'; then gate=$p; fi
    done
    [ -n "$gate" ] || { echo "viewers: callgate serve not found" >&2; exit 1; }
    CURLS=()
    for ((i = 0; i < n; i++)); do
        curl -sN "$base/events?token=$token" >"$TMP/v$i" 2>/dev/null &
        CURLS+=($!)
    done
    sleep 5
    local connected
    connected=$(curl -s "$base/metrics" | awk '$1 == "callgate_events_viewers" { print $2 }')
    local u0 s0 u1 s1
    read -r u0 s0 < <(cpu_ticks "$gate")
    sleep "$WINDOW"
    read -r u1 s1 < <(cpu_ticks "$gate")
    local still snaps=0
    still=$(curl -s "$base/metrics" | awk '$1 == "callgate_events_viewers" { print $2 }')
    if [ "$n" -gt 0 ]; then
        snaps=$(cat "$TMP"/v* | grep -c '^event: snapshot' || true)
        snaps=$((snaps / n))
    fi
    for p in "${CURLS[@]}"; do kill "$p" 2>/dev/null || true; done
    CURLS=()
    rm -f "$TMP"/v*
    kill -INT "$DEMO" 2>/dev/null || true
    timeout 60 tail --pid="$DEMO" -f /dev/null 2>/dev/null || true
    DEMO=
    echo "viewers: run with $n viewers: $connected connected at the start, $still at the end" >&2
    awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v hz="$(getconf CLK_TCK)" -v c="$still" \
        -v s="$snaps" 'BEGIN { printf "%.2f %.2f %s %s\n", (u1 - u0 + s1 - s0) / hz, (u1 - u0) / hz, c, s }'
}

echo "viewers: the demo's surge with 0 and $VIEWERS viewers on /events, $PAIRS pairs (and once with one); callgate's CPU over ${WINDOW} s" >&2
# The runs of a pair follow each other, so that a change in the machine's
# load shows as a difference between pairs, not as the viewers' cost.
read -r one_cpu one_user _ _ < <(run 1)
PAIR_LINES=()
for ((k = 1; k <= PAIRS; k++)); do
    read -r base_cpu base_user _ _ < <(run 0)
    read -r view_cpu view_user still snaps < <(run "$VIEWERS")
    PAIR_LINES+=("$base_cpu $base_user $view_cpu $view_user $still $snaps")
done
printf '%s\n' "${PAIR_LINES[@]}" | awk -v o="$one_cpu" -v n="$VIEWERS" -v w="$WINDOW" '
{ a[NR] = $1; au[NR] = $2; b[NR] = $3; bu[NR] = $4; c[NR] = $5; s[NR] = $6
  extra[NR] = $3 - $1; share[NR] = ($3 - $1) / w * 100
  rel[NR] = $1 > 0 ? ($3 - $1) / $1 * 100 : 0 }
function median(v, k,   t, i, j, x) {
    for (i = 1; i <= k; i++) t[i] = v[i]
    for (i = 2; i <= k; i++) { x = t[i]; for (j = i - 1; j >= 1 && t[j] > x; j--) t[j + 1] = t[j]; t[j + 1] = x }
    return k % 2 ? t[(k + 1) / 2] : (t[k / 2] + t[k / 2 + 1]) / 2
}
END {
    k = NR
    for (i = 1; i <= k; i++) {
        printf "events viewers: pair %d: callgate CPU over %d s of the surge: %.2f s without viewers, %.2f s with %d (%+.1f%%, %.2f%% of one core); user %.2f s and %.2f s; each viewer got %d snapshots, %s still connected at the end\n", i, w, a[i], b[i], n, rel[i], share[i], au[i], bu[i], s[i], c[i]
    }
    printf "events viewers: the board itself (one viewer, once) took %.2f s\n", o
    printf "events viewers: %d viewers cost the loop %+.1f%% CPU, median of %d pairs (target: under 5%%)\n", n, median(rel, k), k
    printf "events viewers: that is %.2f%% of one core, median of %d pairs (%.2f s of CPU in %d s)\n", median(share, k), k, median(extra, k), w
    if (n > 0 && s[1] > 0) printf "events viewers: about %.0f us of CPU per snapshot sent to one viewer (median)\n", median(extra, k) / (n * s[1] * w / (w + 5)) * 1e6
}'
