#!/usr/bin/env bash
# Runs the whole test suite. As root on Debian it first installs the system packages the
# tests drive for real; elsewhere it expects them to be installed already.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(nginx chromium-headless-shell)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

cargo test --workspace --locked
