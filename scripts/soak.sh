#!/usr/bin/env bash
# A load and fault run: builds the receiver and the soak tool in release mode, then runs the soak
# for SECONDS (default 60) with 32 connections on 127.0.0.1, killing Redis midway.
# Exits non-zero if an event was lost or handled twice (see examples/soak.rs).
#
#   scripts/soak.sh [SECONDS] [CONNECTIONS]      (needs redis-server)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --example receiver --example soak
exec target/release/examples/soak --receiver target/release/examples/receiver \
    --duration-secs "${1:-60}" --connections "${2:-32}"
