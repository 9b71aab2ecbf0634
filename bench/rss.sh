#!/usr/bin/env bash
# Peak memory under over-limit bodies: the resident set (RSS) of a server while 100 clients each
# send a body 10 times over its limit, against the same server idle. See BENCHMARKS.md.
#
#   bench/rss.sh [receiver|typed]     (default: receiver)
#
#   receiver  the `receiver` example (`--provider videonest --max-body $LIMIT`)
#   typed     `bench_server --mode typed --max-body $LIMIT`
#
# It starts the server, sends it 20 signed requests, reads its RSS (idle), then runs
# bench/overlimit.py twice: bodies with a declared `Content-Length` (refused from the head) and
# chunked bodies with no length (read up to the limit, then refused), and reads the peak RSS
# (VmHWM) after each. Environment: LIMIT (65536 bytes), CLIENTS (100), FACTOR (10), PORT
# (38090). Bounded: each client gives up after 20 s; the server is stopped on exit.

set -euo pipefail
LIMIT=${LIMIT:-65536}
CLIENTS=${CLIENTS:-100}
FACTOR=${FACTOR:-10}
PORT=${PORT:-38090}
SECRET=whsec_bench_0123456789abcdef
WHAT=${1:-receiver}

cd "$(dirname "$0")/.."
cargo build --release --quiet --example bench_server --example receiver
BIN=${CARGO_TARGET_DIR:-target}/release/examples
TMP=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SIGNATURE=$("$BIN/bench_server" --write-request "$TMP/body.json")
case $WHAT in
receiver) "$BIN/receiver" --provider videonest --secret "$SECRET" --max-body "$LIMIT" \
    --listen "127.0.0.1:$PORT" >/dev/null & ;;
typed) "$BIN/bench_server" --mode typed --max-body "$LIMIT" --listen "127.0.0.1:$PORT" >/dev/null & ;;
*) echo "usage: bench/rss.sh [receiver|typed]" >&2; exit 2 ;;
esac
PID=$!

kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
ok=0
for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H "X-VideoNest-Signature: $SIGNATURE" \
        --data-binary "@$TMP/body.json" "http://127.0.0.1:$PORT/webhook" || true)
    if [ "$code" = 200 ]; then ok=$((ok + 1)); [ $ok -ge 20 ] && break; else sleep 0.1; fi
done
[ $ok -ge 20 ] || { echo "rss.sh: the server did not answer 200" >&2; exit 1; }
sleep 0.5
idle=$(kib VmRSS)
echo "$WHAT, limit $LIMIT B: idle RSS $idle KiB (peak so far $(kib VmHWM) KiB)"
for mode in declared chunked; do
    python3 bench/overlimit.py "$PORT" "$LIMIT" "$mode" "$CLIENTS" "$FACTOR"
    peak=$(kib VmHWM)
    echo "  after $mode: peak RSS $peak KiB, $(((peak - idle) / 1024)) MiB over idle (RSS now $(kib VmRSS) KiB)"
done
