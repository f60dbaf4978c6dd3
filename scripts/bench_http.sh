#!/usr/bin/env bash
# The HTTP benchmark of docs/benchmarks.md: our session crates against actix-session's and
# tower-sessions' Redis stores, over HTTP with wrk, in one run. Not a test: CI does not run it.
#
#   scripts/bench_http.sh                      # 4 s per route, 32 connections, all sizes
#   scripts/bench_http.sh --duration 8         # longer runs
#   scripts/bench_http.sh --connections 128    # p99 under more concurrency
#   scripts/bench_http.sh --sizes small --contenders ours-axum,tower-sessions
#   scripts/bench_http.sh --raw results.tsv    # also the raw numbers, tab separated
#   scripts/bench_http.sh --rounds 5           # each route 5 times, contenders taking turns:
#                                              # medians, ranges and same-round ratios
#
# Every option is passed to the driver (`bench/src/bin/bench-driver.rs`; `--help` lists them).
# Installs wrk and redis-server with apt-get when missing (as root; otherwise prints the command).
set -euo pipefail
cd "$(dirname "$0")/.."

install() {
    local binary=$1 package=$2
    command -v "$binary" >/dev/null 2>&1 && return
    if [ "$(id -u)" -eq 0 ]; then
        echo "$binary is missing: installing $package with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    else
        echo "$binary is missing. Install it, then run this script again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y $package" >&2
        exit 1
    fi
}
install wrk wrk
install redis-server redis-server

echo "using $(redis-server --version | cut -d' ' -f1-3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)" >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

cargo build --release --locked -p session-bench >&2
# Where cargo put it: CARGO_TARGET_DIR or a config's build.target-dir moves it from ./target.
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
exec "${target_dir:-target}/release/bench-driver" "$@"
