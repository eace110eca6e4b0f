#!/usr/bin/env bash
# Makes a small Python 3 image from this machine's own Python, for building the example
# project's containers where no image can be pulled from a registry (the example's
# Containerfiles take it as the build argument BASE_IMAGE). Usage:
#   scripts/python-image.sh [TAG]      default TAG: orchestrator-example/python:3
# ENGINE=podman makes it with podman instead of docker. An image already there is kept.
set -euo pipefail

tag="${1:-orchestrator-example/python:3}"
engine="${ENGINE:-docker}"
if "$engine" image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag is there already"
  exit 0
fi

# Debian's Python when there is one: its files sit where the image expects them.
python=/usr/bin/python3
[ -x "$python" ] || python="$(command -v python3)"
executable="$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
stdlib="$("$python" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"
dynload="$("$python" -c 'import sysconfig; print(sysconfig.get_path("platstdlib"))')/lib-dynload"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

# The interpreter, its standard library without tests and desktop modules, and every shared
# library the interpreter and its extension modules load.
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
cp --parents "$executable" "$root"
ln -s "$executable" "$root/usr/local/bin/python3"
tar -C / \
  --exclude='*/test' --exclude='*/tests' --exclude='*/idlelib' --exclude='*/tkinter' \
  --exclude='*/turtledemo' --exclude='*/ensurepip' --exclude='*/lib2to3' \
  --exclude='*/site-packages' --exclude='*/dist-packages' --exclude='*/__pycache__' \
  -cf - "${stdlib#/}" | tar -C "$root" -xf -
[ -d "$dynload" ] && cp -r --parents "$dynload" "$root"
{
  ldd "$executable"
  [ -d "$dynload" ] && find "$dynload" -name '*.so' -exec ldd {} \; 2>/dev/null
} | grep -oE '/[^ ]+\.so[^ ]*' | sort -u | while read -r library; do
  [ -e "$library" ] && cp -L --parents "$library" "$root"
done
# A shell for the RUN steps of a Containerfile: busybox, when the static one is installed.
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
else
  echo "note: no static busybox (Debian's busybox-static): the image has no shell for RUN steps" >&2
fi
echo 'root:x:0:0:root:/root:/nonexistent' >"$root/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/nonexistent:/nonexistent' >>"$root/etc/passwd"

tar -C "$root" -cf - . | "$engine" import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "made $tag from $executable"
