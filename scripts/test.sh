#!/usr/bin/env bash
# Runs the whole test suite against real redis-server processes started by session-testkit, and
# the demo page in a real headless chromium (tests/browser.rs).
# Installs what is missing with apt-get (as root; otherwise prints the command and stops).
set -euo pipefail
cd "$(dirname "$0")/.."

# `need COMMAND PACKAGE...`: installs the Debian packages when COMMAND is not on PATH.
need() {
    local command=$1
    shift
    command -v "$command" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -eq 0 ]; then
        echo "$command is missing: installing $* with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    else
        echo "$command is missing. Install it, then run this script again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y $*" >&2
        exit 1
    fi
}

need redis-server redis-server
need chromium chromium chromium-driver
need chromedriver chromium-driver
echo "using $(redis-server --version)" >&2
echo "using $(chromium --version 2>/dev/null) and $(chromedriver --version)" >&2

# Doc tests, unit tests, integration tests of every crate and the end-to-end tests at the top.
cargo test --workspace --locked "$@"
