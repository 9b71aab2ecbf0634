#!/usr/bin/env bash
# End-to-end benchmark over loopback: requests/s and server CPU time per request, with and
# without the layer. See BENCHMARKS.md.
#
#   bench/e2e.sh [layer|receiver|all]       (default: all)
#
#   layer     the `bench_server` example in three modes, same handler (it collects the body):
#             bare (no layer), verify (VideoNest scheme, verify only), typed (VideoNest preset,
#             verify + videonest::Event)
#   receiver  `bench_server --mode bare` against the `receiver` example as users run it
#             (`--provider videonest --secret S`, one JSON line per event, stdout to /dev/null)
#
# Every server runs on one core (`taskset -c $SERVER_CPU`, TOKIO_WORKER_THREADS=1); wrk runs on
# another (`taskset -c $WRK_CPU`) and POSTs a realistic 1 KiB signed VideoNest body
# (bench/post.lua) over 127.0.0.1. After a warm-up run per server, the modes alternate for
# $ROUNDS rounds (A B C, then C B A, ...), $DURATION seconds each. Each run reports requests/s
# and the server's CPU time (user + system, from /proc/PID/stat) per request; the summary gives
# the medians and the median of the per-round ratios to `bare`. A run with any non-2xx answer
# or socket error fails the script.
#
# Environment: ROUNDS (5), DURATION (10 s), WARMUP (2 s), CONNECTIONS (32), THREADS (1, wrk's),
# SERVER_CPU (0), WRK_CPU (1), PORT (38080; the servers use PORT to PORT+3).
#
# Bounded in time: at most (servers x (ROUNDS x DURATION + WARMUP)) seconds of load, every wrk
# run under `timeout`; every server it started is stopped on exit, by its process id.

set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
PORT=${PORT:-38080}
# The benches' secret (benches/support/mod.rs).
SECRET=whsec_bench_0123456789abcdef
WHAT=${1:-all}

cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "e2e.sh: wrk is not installed (apt-get install wrk)" >&2; exit 2; }

cargo build --release --quiet --example bench_server --example receiver
BIN=${CARGO_TARGET_DIR:-target}/release/examples
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export BODY_FILE=$TMP/body.json
SIGNATURE=$("$BIN/bench_server" --write-request "$BODY_FILE")
export SIGNATURE
CLK_TCK=$(getconf CLK_TCK)

# start NAME PORT COMMAND...: starts a server pinned to SERVER_CPU and waits until a signed
# request gets 200.
declare -A PORT_OF PID_OF
start() {
    local name=$1 port=$2
    shift 2
    TOKIO_WORKER_THREADS=1 taskset -c "$SERVER_CPU" "$@" >/dev/null &
    local pid=$!
    PIDS+=("$pid")
    PORT_OF[$name]=$port
    PID_OF[$name]=$pid
    for _ in $(seq 100); do
        local code
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            -H "X-VideoNest-Signature: $SIGNATURE" -H 'Content-Type: application/json' \
            --data-binary "@$BODY_FILE" "http://127.0.0.1:$port/webhook" || true)
        [ "$code" = 200 ] && return 0
        kill -0 "$pid" 2>/dev/null || { echo "e2e.sh: $name exited" >&2; exit 1; }
        sleep 0.1
    done
    echo "e2e.sh: $name did not answer 200 on port $port" >&2
    exit 1
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME SECONDS ROUND: one wrk run; appends "ROUND NAME REQ/S CPU_US_PER_REQ" to results.
run() {
    local name=$1 seconds=$2 round=$3 port=${PORT_OF[$1]} pid=${PID_OF[$1]}
    local t0 t1 out rps reqs
    t0=$(ticks "$pid")
    out=$(timeout $((seconds + 20)) taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" \
        -d"${seconds}s" -s bench/post.lua "http://127.0.0.1:$port/webhook")
    t1=$(ticks "$pid")
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "e2e.sh: $name: errors during the run:" >&2
        echo "$out" >&2
        exit 1
    fi
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    if [ "$round" != warmup ]; then
        local cpu
        cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')
        printf '%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$cpu" >>"$TMP/results"
        printf '  round %s  %-9s %10.0f req/s  %6s µs CPU/req\n' "$round" "$name" "$rps" "$cpu"
    fi
}

# compare NAME...: warm-up, then ROUNDS alternating rounds, then the summary (first NAME is
# the baseline).
compare() {
    local names=("$@") round
    : >"$TMP/results"
    for name in "${names[@]}"; do run "$name" "$WARMUP" warmup; done
    for round in $(seq "$ROUNDS"); do
        local order=("${names[@]}")
        if ((round % 2 == 0)); then
            order=()
            for ((i = ${#names[@]} - 1; i >= 0; i--)); do order+=("${names[$i]}"); done
        fi
        for name in "${order[@]}"; do run "$name" "$DURATION" "$round"; done
    done
    python3 - "$TMP/results" "${names[@]}" <<'PY'
import sys, statistics as st
path, names = sys.argv[1], sys.argv[2:]
rows = [l.split("\t") for l in open(path).read().split("\n") if l]
by = {}
for r, n, rps, cpu in rows:
    by.setdefault(n, {})[r] = (float(rps), float(cpu))
base = names[0]
print(f"\n  {'mode':<10}{'median req/s':>14}{'ratio (paired)':>16}{'min-max ratio':>16}{'CPU µs/req':>12}{'+CPU µs':>9}")
for n in names:
    rps = [v[0] for v in by[n].values()]
    cpu = [v[1] for v in by[n].values()]
    ratios = [by[n][r][0] / by[base][r][0] for r in by[n]]
    dcpu = [by[n][r][1] - by[base][r][1] for r in by[n]]
    print(f"  {n:<10}{st.median(rps):>14.0f}{st.median(ratios):>15.3f}x"
          f"{min(ratios):>9.3f}-{max(ratios):.3f}{st.median(cpu):>12.2f}{st.median(dcpu):>+9.2f}")
PY
}

case $WHAT in
layer | receiver | all) ;;
*) echo "usage: bench/e2e.sh [layer|receiver|all]" >&2; exit 2 ;;
esac

echo "e2e: ${ROUNDS} rounds x ${DURATION}s, ${CONNECTIONS} connections, server on CPU ${SERVER_CPU}, wrk on CPU ${WRK_CPU}, body $(wc -c <"$BODY_FILE") B"
start bare "$PORT" "$BIN/bench_server" --mode bare --listen "127.0.0.1:$PORT"
if [ "$WHAT" != receiver ]; then
    start verify $((PORT + 1)) "$BIN/bench_server" --mode verify --listen "127.0.0.1:$((PORT + 1))"
    start typed $((PORT + 2)) "$BIN/bench_server" --mode typed --listen "127.0.0.1:$((PORT + 2))"
    echo "layer: bench_server bare / verify / typed"
    compare bare verify typed
fi
if [ "$WHAT" != layer ]; then
    if [ "$WHAT" = receiver ]; then :; else
        # Only one layered server at a time next to the baseline.
        kill "${PID_OF[verify]}" "${PID_OF[typed]}"
    fi
    start receiver $((PORT + 2 + 1)) "$BIN/receiver" --provider videonest --secret "$SECRET" \
        --listen "127.0.0.1:$((PORT + 3))"
    echo "receiver: bench_server bare / receiver --provider videonest"
    compare bare receiver
fi
