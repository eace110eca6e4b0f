#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are missing, when run as root on a
# machine with apt-get; elsewhere it names what is missing and carries on.
set -euo pipefail

missing=()
for package in "$@"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "note: not installed: ${missing[*]} (install them with apt-get as root)" >&2
fi
