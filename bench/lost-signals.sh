#!/usr/bin/env bash
# bench/lost-signals.sh BUILD_DIR - idle slots when Vapi's end messages are
# lost.
#
# Plays the simulator's steady scenario for a minute twice at the same
# time, each against its own callgate (its own gate in one Redis): once
# with every webhook delivered (scenarios/lost-signals-none.json) and once
# with 20% of Vapi's webhooks dropped (scenarios/lost-signals-drop.json).
# callgate runs with its default END_GRACE_MS and SWEEP_INTERVAL_MS, as in
# production. The simulator reports the idle slot-seconds while callers
# wait (a slot Vapi no longer counts, held by the gate, with a caller
# waiting for it); the target is drop <= 1.5 x none. Prints both, the
# ratio and met/missed, and writes bench/out/lost-signals.json and the two
# simulator reports under bench/out/parts/. Everything it starts listens
# on 127.0.0.1 and is stopped on exit.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$SRC/bench/out
PARTS=$OUT/parts
TMP=$(mktemp -d /tmp/callgate-lost.XXXXXX)
PIDS=()

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in "$BUILD/callgate" "$BUILD/callgate-sim" "$BUILD/bench/cgbench-util"; do
    [ -x "$tool" ] || { echo "lost-signals: $tool is missing; build first" >&2; exit 2; }
done
mkdir -p "$PARTS"
cd "$TMP" # callgate reads .env from its working directory: this one has none
port() { "$BUILD/bench/cgbench-util" port; }

RP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -p "$RP" ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done

SIMS=()
for kind in none drop; do
    gp=$(port)
    sp=$(port)
    env -i PATH=/usr/bin:/bin BIND_ADDRESS=127.0.0.1 "PORT=$gp" "REDIS_URL=redis://127.0.0.1:$RP" \
        PUBLIC_URL=http://gate.bench.test "GATE_NAME=lost-$kind" "TWILIO_QUEUE_NAME=lost-$kind" \
        "INSTANCE_ID=lost-$kind" TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
        TWILIO_AUTH_TOKEN=sim-auth-token VAPI_API_KEY=sim-vapi-key \
        VAPI_WEBHOOK_SECRET=sim-vapi-secret VAPI_PHONE_NUMBER_ID=sim-phone-number \
        VAPI_ASSISTANT_ID=sim-assistant LOG_LEVEL=info MAX_CONCURRENCY=5 \
        EXPECTED_CALL_SECONDS=1 MAX_WAIT_SECONDS=0 TWILIO_TIMEOUT_MS=5000 VAPI_TIMEOUT_MS=5000 \
        "TWILIO_API_BASE_URL=http://127.0.0.1:$sp" "VAPI_BASE_URL=http://127.0.0.1:$sp" \
        "$BUILD/callgate" serve >"$PARTS/callgate-lost-$kind.log" 2>&1 &
    PIDS+=($!)
    for ((i = 0; i < 200; i++)); do
        curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$gp/health" && break
        sleep 0.05
    done
    timeout 300 "$BUILD/callgate-sim" --scenario "$SRC/bench/scenarios/lost-signals-$kind.json" \
        --public-url http://gate.bench.test --gate "http://127.0.0.1:$gp" --port "$sp" \
        --report "$PARTS/lost-signals-$kind.json" >"$PARTS/sim-lost-$kind.log" 2>&1 &
    SIMS+=($!)
    PIDS+=($!)
done
echo "lost-signals: two steady runs of 60 s (+ drain), with and without lost Vapi messages" >&2
rc=0
for pid in "${SIMS[@]}"; do
    wait "$pid" || rc=$?
done
[ "$rc" = 0 ] || echo "lost-signals: a simulator run failed an invariant (see $PARTS)" >&2

idle() { grep -o '"idle_slot_seconds": *[0-9.e+-]*' "$PARTS/lost-signals-$1.json" | head -1 |
    sed 's/.*: *//'; }
field() { grep -o "\"$2\": *[0-9]*" "$PARTS/lost-signals-$1.json" | head -1 | sed 's/.*: *//'; }
NONE=$(idle none)
DROP=$(idle drop)
probes=$(grep -c 'vapi says the call ended' "$PARTS/callgate-lost-drop.log" || true)
awk -v none="$NONE" -v drop="$DROP" -v cn="$(field none connected)" -v cd="$(field drop connected)" \
    -v probes="$probes" 'BEGIN {
    ratio = none > 0 ? drop / none : (drop > 0 ? 1e9 : 1);
    printf "idle slot-seconds while callers wait: none lost %.3f (%d connected), 20%% of Vapi messages lost %.3f (%d connected)\n", none, cn, drop, cd;
    printf "ratio %.2f (target <= 1.5): %s; slots released by an early ask of Vapi: %d\n", ratio, ratio <= 1.5 ? "met" : "MISSED", probes;
    printf "{\"idle_none\":%.3f,\"idle_drop\":%.3f,\"ratio\":%.3f,\"connected_none\":%d,\"connected_drop\":%d,\"early_releases\":%d,\"met\":%s}\n", none, drop, ratio, cn, cd, probes, ratio <= 1.5 ? "true" : "false" > "/dev/stderr";
}' 2>"$OUT/lost-signals.json"
exit "$rc"
