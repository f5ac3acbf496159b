#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: fuzz/run.sh [SECONDS_PER_TARGET] (default 60).
# Needs cargo-fuzz (cargo install cargo-fuzz). libFuzzer's sanitizer flags are nightly
# features; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them for this build only.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in config_parse redirect_match form_and_basic jwt_verify; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 \
        | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==.*ERROR|SUMMARY)" || true
    if [ -d "artifacts/$target" ] && [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "crash found in $target: see fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "fuzzing finished: no crash"
