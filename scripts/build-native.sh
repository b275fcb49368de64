#!/usr/bin/env bash
# Builds the optional native modules into native/build/:
# - crc32c.node: native/crc32c.c + its Node-API face native/crc32c-addon.c, for src/stream/crc32c.ts;
# - read-ahead.node: native/read-ahead.c, a reader thread for src/stream/read-ahead-window.ts, which checks
#   frames' CRC32C as it reads (native/frame-check.c, with crc32c.c);
# - blocking-calls.node: native/blocking-calls.c, send's ioctl and pipe copy on threads of their own;
# - zstd-ahead.node: native/zstd-ahead.c, receive's zstd extents decoded ahead on a helper thread;
# - buffer-address.node: native/buffer-address.c, where a Buffer sits, so reads can fill page-aligned memory;
# - fd-calls.node: native/fd-calls.c, dup and fcntl for reading a pipe without loading koffi;
# - fs-calls.node: native/fs-calls.c, the receive's hot file system calls without koffi's per-call cost.
# Never fails the install: without gcc or Node's headers, on another architecture, or when compiling
# fails, it says so in one line and the code does without (@node-rs/crc32; synchronous reads; worker
# threads; extents decoded inline; koffi tells where a Buffer sits and makes the pipe's and the receive's calls).
# Run by the `build` and `prepare` npm scripts.
cd "$(dirname "$0")/.." || exit 0
say() { echo "btrfs-ts: $1" >&2; }
skip_all() { say "native modules skipped ($1; @node-rs/crc32, synchronous reads and worker threads are used)"; exit 0; }
[ "$(uname -m)" = x86_64 ] || skip_all "x86-64 only; this is $(uname -m)"
cc=${CC:-gcc}
command -v "$cc" >/dev/null || skip_all "$cc not found"
node_bin=$(command -v node) || skip_all "node not found"
headers=""
for dir in "$(dirname "$(dirname "$(readlink -f "$node_bin")")")/include/node" /usr/include/node /usr/local/include/node; do
  if [ -f "$dir/node_api.h" ]; then headers=$dir; break; fi
done
[ -n "$headers" ] || skip_all "Node's headers (node_api.h) not found"
tmp=$(mktemp -d) || exit 0
trap 'rm -rf "$tmp"' EXIT
mkdir -p native/build || exit 0

# Only crc32c.c is compiled for SSE4.2/PCLMULQDQ; it checks the CPU before using them.
if "$cc" -O2 -fPIC -Wall -msse4.2 -mpclmul -c native/crc32c.c -o "$tmp/crc32c.o" &&
   "$cc" -O2 -fPIC -Wall -I"$headers" -c native/crc32c-addon.c -o "$tmp/addon.o" &&
   "$cc" -shared -o "$tmp/crc32c.node" "$tmp/crc32c.o" "$tmp/addon.o"; then
  # Renamed into place: a process that has the old module loaded keeps its copy.
  mv -f "$tmp/crc32c.node" native/build/crc32c.node
  rm -f native/build/crc32c.so
else
  say "native CRC32C skipped ($cc failed; @node-rs/crc32 is used)"
fi

# The read-ahead thread checks frames' CRC32C with crc32c.c (frame-check.c).
if [ -f "$tmp/crc32c.o" ] &&
   "$cc" -O2 -fPIC -Wall -pthread -I"$headers" -shared -o "$tmp/read-ahead.node" native/read-ahead.c native/frame-check.c "$tmp/crc32c.o"; then
  mv -f "$tmp/read-ahead.node" native/build/read-ahead.node
else
  say "native read-ahead skipped ($cc failed; files are read synchronously)"
fi

if "$cc" -O2 -fPIC -Wall -pthread -I"$headers" -shared -o "$tmp/blocking-calls.node" native/blocking-calls.c; then
  mv -f "$tmp/blocking-calls.node" native/build/blocking-calls.node
else
  say "native blocking calls skipped ($cc failed; send uses worker threads)"
fi

# libzstd.so.1 is opened with dlopen at run time: no zstd headers are needed to build.
if "$cc" -O2 -fPIC -Wall -pthread -I"$headers" -shared -o "$tmp/zstd-ahead.node" native/zstd-ahead.c -ldl; then
  mv -f "$tmp/zstd-ahead.node" native/build/zstd-ahead.node
else
  say "native zstd decode-ahead skipped ($cc failed; extents are decoded inline)"
fi

if "$cc" -O2 -fPIC -Wall -I"$headers" -shared -o "$tmp/buffer-address.node" native/buffer-address.c; then
  mv -f "$tmp/buffer-address.node" native/build/buffer-address.node
else
  say "native buffer-address skipped ($cc failed; koffi tells where a Buffer sits)"
fi

if "$cc" -O2 -fPIC -Wall -I"$headers" -shared -o "$tmp/fd-calls.node" native/fd-calls.c; then
  mv -f "$tmp/fd-calls.node" native/build/fd-calls.node
else
  say "native fd-calls skipped ($cc failed; koffi makes the pipe's fd calls)"
fi

if "$cc" -O2 -fPIC -Wall -I"$headers" -shared -o "$tmp/fs-calls.node" native/fs-calls.c; then
  mv -f "$tmp/fs-calls.node" native/build/fs-calls.node
else
  say "native fs-calls skipped ($cc failed; koffi makes the receive's file system calls)"
fi
exit 0
