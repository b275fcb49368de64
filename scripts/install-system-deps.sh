#!/usr/bin/env bash
# Installs the Debian packages btrfs-ts' demo and tests use, when missing (needs root and apt-get).
# Used by .ci/run, `npm test` (pretest) and `npm run demo` (predemo).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
command -v compsize >/dev/null || need+=(btrfs-compsize)       # data stored compressed (demo, v2 tests)
command -v cc >/dev/null || need+=(gcc)                          # native/abi-check.c
{ command -v sshd >/dev/null || [ -x /usr/sbin/sshd ]; } || need+=(openssh-server)  # tests/ssh-e2e.test.ts
command -v ssh >/dev/null || need+=(openssh-client)
dpkg -s libzstd1 >/dev/null 2>&1 || need+=(libzstd1)              # decode-ahead (system libzstd, dlopen'd by native/zstd-ahead.c)
dpkg -s liblzo2-dev >/dev/null 2>&1 || need+=(liblzo2-dev)      # LZO test vectors (tests/compress-lzo.test.ts)
command -v setfacl >/dev/null || need+=(acl)                     # POSIX ACLs in test trees
command -v setfattr >/dev/null || need+=(attr)                   # xattrs in test trees
command -v tmux >/dev/null || need+=(tmux)                       # a real terminal for --progress tests
command -v strace >/dev/null || need+=(strace)                   # fault injection (tests/fault-receive.test.ts)
command -v lsattr >/dev/null || need+=(e2fsprogs)                # chattr/lsattr/filefrag in the v2 tests
[ -x /usr/bin/time ] || need+=(time)                             # the benchmark's timings
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "btrfs-ts: missing system packages: ${need[*]} (install them as root with apt-get)" >&2
  exit 0
fi
echo "btrfs-ts: installing ${need[*]} ..." >&2
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
