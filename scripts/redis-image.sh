#!/usr/bin/env bash
# Makes a small Redis image from this machine's own redis-server (Debian's redis-server
# package), for running the example's cache as a container where no image can be pulled from
# a registry. Usage:
#   scripts/redis-image.sh [TAG]      default TAG: orchestrator-example/redis:7
# ENGINE=podman makes it with podman instead of docker. An image already there is kept.
set -euo pipefail

tag="${1:-orchestrator-example/redis:7}"
engine="${ENGINE:-docker}"
if "$engine" image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag is there already"
  exit 0
fi
server="$(command -v redis-server || true)"
if [ -z "$server" ]; then
  echo "no redis-server here: install Debian's redis-server package" >&2
  exit 1
fi
binary="$(readlink -f "$server")"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc" "$root/data"
chmod 1777 "$root/tmp"
cp "$binary" "$root/usr/local/bin/redis-server"
ldd "$binary" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u | while read -r library; do
  cp -L --parents "$library" "$root"
done
echo 'root:x:0:0:root:/root:/nonexistent' >"$root/etc/passwd"

tar -C "$root" -cf - . | "$engine" import \
  --change 'ENV PATH=/usr/local/bin' \
  --change 'WORKDIR /data' \
  --change 'CMD ["redis-server"]' - "$tag" >/dev/null
echo "made $tag from $server"
