#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60), one after the other, with
# libFuzzer; stops at the first crash, time-out or budget failure and prints its input.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs cargo-fuzz (installed here if missing) and a C++ compiler (libFuzzer is built from
# source). The stable toolchain works: RUSTC_BOOTSTRAP=1 lets it take the fuzzer's flags.
# The corpus grows in fuzz/corpus/<target> (not committed); a crashing input lands in
# fuzz/artifacts/<target>. For a long run: scripts/fuzz.sh 3600.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz --version 0.13.2
fi
# No sanitizer: the crate forbids unsafe code, and without one the fuzzer runs several times
# faster. The targets count time and memory per input themselves.
cargo fuzz build -O -s none
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    dict=()
    if [ -f "dict/$target.dict" ]; then dict=(-dict="dict/$target.dict"); fi
    log="$(mktemp)"
    echo "== fuzz $target for ${seconds}s"
    if ! cargo fuzz run -O -s none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
        grep -v '^#[0-9]' "$log" | tail -n 60
        rm -f "$log"
        echo "fuzz target $target failed" >&2
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | sed 's/^/  /'
    rm -f "$log"
done
