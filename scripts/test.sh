#!/usr/bin/env bash
# Runs the whole test suite against real redis-server processes started by session-testkit.
# Installs redis-server with apt-get when it is missing (as root; otherwise prints the command).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "redis-server is missing: installing it with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis-server is missing. Install it, then run this script again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y redis-server" >&2
        exit 1
    fi
fi
echo "using $(redis-server --version)" >&2

# Doc tests, unit tests, integration tests of every crate and the end-to-end tests at the top.
cargo test --workspace --locked "$@"
