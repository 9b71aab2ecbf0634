#!/usr/bin/env bash
# Kills the receiver with SIGKILL while its workers are busy, starts it again on the same Redis,
# and checks that every delivery it acknowledged is processed: no acknowledged event is lost.
#
#   scripts/queue-sigkill.sh [EVENTS]        (default 40; needs redis-server, curl, openssl)
#
# The receiver deduplicates in the queue (`--dedupe` and `--queue` on the same Redis), so each
# delivery is also re-sent once after the restart: each repeat must be answered 200 as a
# duplicate (`x-webhook-duplicate: true`), never stored again.
#
# Everything runs on 127.0.0.1: a private redis-server on a free port, and the receiver.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-40}"
secret="sigkill-test-secret"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 30000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
receiver_pid=""
cleanup() {
    [ -n "$receiver_pid" ] && kill -9 "$receiver_pid" 2>/dev/null || true
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

cargo build --quiet --release --example receiver
start() {
    target/release/examples/receiver --provider videonest --secret "$secret" \
        --listen 127.0.0.1:0 --queue "redis://127.0.0.1:$port" --dedupe "redis://127.0.0.1:$port" --workers 2 \
        --handler-delay-ms 300 --visibility-ms 2000 >"$work/$1.out" 2>"$work/$1.err" &
    receiver_pid=$!
    for _ in $(seq 100); do
        addr=$(head -n 1 "$work/$1.out" 2>/dev/null | sed -n 's|^listening on ||p')
        [ -n "$addr" ] && return 0
        sleep 0.05
    done
    echo "the receiver did not start" >&2
    exit 1
}

start first
# Sends delivery $1; prints the status, and "duplicate" for a repeat answered as one.
send() {
    local body signature
    body="{\"event\":\"video.processed\",\"timestamp\":\"2026-03-30T10:15:00Z\",\"data\":{\"id\":\"vid_$1\"}}"
    signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //')
    curl -s -D - -o /dev/null -H "X-VideoNest-Signature: $signature" \
        -H 'Content-Type: application/json' -d "$body" "$addr/webhook" |
        tr -d '\r' | sed -n -e 's|^HTTP/[0-9.]* \([0-9]*\).*|\1|p' -e 's|^x-webhook-duplicate: true|duplicate|ip' |
        tr '\n' ' '
}

acknowledged=0
for i in $(seq "$events"); do
    case "$(send "$i")" in 200*) acknowledged=$((acknowledged + 1)) ;; esac
done
sleep 0.5
kill -9 "$receiver_pid"
wait "$receiver_pid" 2>/dev/null || true
before=$(grep -c '"event"' "$work/first.out" || true)
echo "acknowledged $acknowledged deliveries; $before processed before SIGKILL"

start second
duplicates=0
for i in $(seq "$events"); do
    case "$(send "$i")" in "200 duplicate"*) duplicates=$((duplicates + 1)) ;; esac
done
echo "re-sent $events deliveries after the restart: $duplicates answered 200 as duplicates"
for _ in $(seq 600); do
    done_ids=$(cat "$work/first.out" "$work/second.out" | grep -o '"id":"vid_[0-9]*"' | sort -u | wc -l)
    [ "$done_ids" -ge "$acknowledged" ] && break
    sleep 0.1
done
kill "$receiver_pid" 2>/dev/null || true
wait "$receiver_pid" 2>/dev/null || true
receiver_pid=""
done_ids=$(cat "$work/first.out" "$work/second.out" | grep -o '"id":"vid_[0-9]*"' | sort -u | wc -l)
echo "processed $done_ids distinct deliveries across both runs"
if [ "$done_ids" -ne "$acknowledged" ]; then
    echo "LOST: $((acknowledged - done_ids)) acknowledged deliveries were never processed" >&2
    exit 1
fi
if [ "$duplicates" -ne "$acknowledged" ]; then
    echo "REPEATS: $((acknowledged - duplicates)) repeats of acknowledged deliveries were not duplicates" >&2
    exit 1
fi
echo "no acknowledged delivery was lost, and none was stored twice"
