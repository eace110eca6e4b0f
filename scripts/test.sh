#!/usr/bin/env bash
# Runs the whole test suite. As root on Debian it first installs the system programs the
# tests drive for real (nginx, a headless Chromium, iptables for network partitions, an SMTP
# server and openssl for its certificates, Redis for the infrastructure services, Podman for
# its platform, a static busybox for the shell of the tests' base image; the Docker engine is expected to run already).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-packages.sh nginx chromium-headless-shell iptables python3-aiosmtpd openssl redis-server \
  podman busybox-static
cargo test --workspace --locked
