#!/usr/bin/env bash
# Measures `sessionctl migrate` (release build) on this machine, against real redis-server
# processes on loopback ports, and prints one line per measurement:
#
#   1. 100,000 sessions: file store -> Redis                 (goal: under 10 s)
#   2. 100,000 sessions: Redis -> Redis                      (goal: 50,000 sessions/s or more)
#   3. the same mover one session at a time (--batch 1): a one-command-per-session loop,
#      each command waiting for its answer, on 10,000 sessions (goal: 2. is 10x this)
#
# Usage: bash scripts/bench_migrate.sh [SESSIONS]   (default 100000)
set -euo pipefail

SESSIONS=${1:-100000}
LOOP_SESSIONS=$(( SESSIONS / 10 ))
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
cargo build --release -q -p session-cli
# Where cargo put it: CARGO_TARGET_DIR or a config's build.target-dir moves it from ./target.
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=${target_dir:-target}/release/sessionctl
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 )); }
start_redis() {
  local port; port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$port"
}
sessions_jsonl() { # N -> JSON lines of N sessions with random-looking ids (two keys, one hour left)
  awk -v n="$1" 'BEGIN {
    srand(42); abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for (i = 0; i < n; i++) {
      id = ""; for (j = 0; j < 43; j++) id = id substr(abc, int(rand() * 64) + 1, 1)
      printf "{\"id\":\"%s\",\"ttl_ms\":3600000,\"fields\":{\"user\":\"\\\"user%d\\\"\",\"n\":\"%d\"}}\n", id, i, i
    }
  }'
}
seconds() { # command... -> wall-clock seconds of the command
  local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

A=$(start_redis); B=$(start_redis); C=$(start_redis); D=$(start_redis)
sessions_jsonl "$SESSIONS" >"$WORK/sessions.jsonl"
sessions_jsonl "$LOOP_SESSIONS" >"$WORK/loop.jsonl"

# 1. file store -> Redis
SESSION_REDIS_MODE=False SESSION_FILESTORE_PATH="$WORK/files" "$BIN" import "$WORK/sessions.jsonl" >/dev/null
t1=$(seconds "$BIN" migrate --from "files:$WORK/files" --to "redis://127.0.0.1:$A/0" --delete-source --progress none)
echo "file store -> Redis: $SESSIONS sessions in $t1 s ($(awk -v n="$SESSIONS" -v t="$t1" 'BEGIN { printf "%.0f", n / t }')/s)"

# 2. Redis -> Redis
t2=$(seconds "$BIN" migrate --from "redis://127.0.0.1:$A/0" --to "redis://127.0.0.1:$B/0" --delete-source --progress none)
r2=$(awk -v n="$SESSIONS" -v t="$t2" 'BEGIN { printf "%.0f", n / t }')
echo "Redis -> Redis: $SESSIONS sessions in $t2 s (${r2}/s)"

# 3. one move at a time
SESSION_REDIS_URL="redis://127.0.0.1:$C/0" "$BIN" import "$WORK/loop.jsonl" >/dev/null
t3=$(seconds "$BIN" migrate --from "redis://127.0.0.1:$C/0" --to "redis://127.0.0.1:$D/0" --delete-source --batch 1 --progress none)
r3=$(awk -v n="$LOOP_SESSIONS" -v t="$t3" 'BEGIN { printf "%.0f", n / t }')
echo "Redis -> Redis, one command at a time: $LOOP_SESSIONS sessions in $t3 s (${r3}/s)"
echo "speed-up: $(awk -v a="$r2" -v b="$r3" 'BEGIN { printf "%.1f", a / b }')x"
for port in "$B" "$D"; do
  echo "keys in the target on $port: $(redis-cli -p "$port" dbsize)"
done
