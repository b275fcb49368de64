#!/usr/bin/env bash
# Builds the optional native CRC32C (native/crc32c.c + its Node-API face native/crc32c-addon.c →
# native/build/crc32c.node) for src/stream/crc32c.ts. Never fails the install: without gcc or Node's
# headers, on another architecture, or when compiling fails, it says so in one line and the stream code
# uses @node-rs/crc32 instead. Run by the `build` and `prepare` npm scripts.
cd "$(dirname "$0")/.." || exit 0
out=native/build/crc32c.node
skip() { echo "btrfs-ts: native CRC32C skipped ($1; @node-rs/crc32 is used)" >&2; exit 0; }
[ "$(uname -m)" = x86_64 ] || skip "x86-64 only; this is $(uname -m)"
cc=${CC:-gcc}
command -v "$cc" >/dev/null || skip "$cc not found"
node_bin=$(command -v node) || skip "node not found"
headers=""
for dir in "$(dirname "$(dirname "$(readlink -f "$node_bin")")")/include/node" /usr/include/node /usr/local/include/node; do
  if [ -f "$dir/node_api.h" ]; then headers=$dir; break; fi
done
[ -n "$headers" ] || skip "Node's headers (node_api.h) not found"
tmp=$(mktemp -d) || exit 0
trap 'rm -rf "$tmp"' EXIT
mkdir -p native/build || exit 0
# Only crc32c.c is compiled for SSE4.2/PCLMULQDQ; it checks the CPU before using them.
if "$cc" -O2 -fPIC -Wall -msse4.2 -mpclmul -c native/crc32c.c -o "$tmp/crc32c.o" &&
   "$cc" -O2 -fPIC -Wall -I"$headers" -c native/crc32c-addon.c -o "$tmp/addon.o" &&
   "$cc" -shared -o "$tmp/crc32c.node" "$tmp/crc32c.o" "$tmp/addon.o"; then
  # Renamed into place: a process that has the old module loaded keeps its copy.
  mv -f "$tmp/crc32c.node" "$out"
  rm -f native/build/crc32c.so
else
  skip "$cc failed"
fi
exit 0
