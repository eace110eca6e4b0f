#!/usr/bin/env bash
# Builds the orchestrator and brings up the example fleet on the local cloud in ./demo:
# setup, init, orchestrate, status. Safe to run again: existing files are kept and an
# unchanged fleet plans nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The master droplet's load balancer is a real nginx.
scripts/install-packages.sh nginx
cargo build --release --locked --bin orchestrator
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
bin="$target/release/orchestrator"

mkdir -p demo
cd demo
"$bin" --setup
"$bin" --init
"$bin" --orchestrate
"$bin" --status
echo
echo "The fleet runs in $(pwd). Try: $bin --status --config-dir $(pwd)/config"
