#!/usr/bin/env bash
# Regenerate tests/fixtures/dump/: small real send streams made by the kernel, and what the installed
# btrfs-progs (`btrfs receive --dump`) prints for each, in two time zones. tests/dump-fixtures.test.ts
# compares btrfs-ts' dump with these byte for byte, without root.
#
# Needs root, btrfs-progs, loop devices, /dev/shm; setfattr (attr) for the xattrs.
# Usage: sudo scripts/make-fixtures.sh        (writes into tests/fixtures/dump, < 200 KiB in all)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$PWD/tests/fixtures/dump
WORK=$(mktemp -d /dev/shm/btrfs-ts-fixtures-XXXXXX)
MNTS=()
cleanup() {
  for m in "${MNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  for img in "$WORK"/*.img; do
    [ -e "$img" ] || continue
    for loop in $(losetup -j "$img" | cut -d: -f1); do losetup -d "$loop" 2>/dev/null || true; done
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# newfs NAME MOUNT_OPTIONS: make and mount a filesystem; sets $mnt
newfs() {
  local img=$WORK/$1.img
  mnt=$WORK/$1
  truncate -s 256M "$img"
  mkfs.btrfs -q "$img" >/dev/null
  mkdir -p "$mnt"
  mount -o "loop${2:+,$2}" "$img" "$mnt"
  MNTS+=("$mnt")
}

# A small tree with every inode type, odd names, xattrs, holes, reflinks; times fixed.
populate() {
  local d=$1
  (
    cd "$d"
    mkdir -p dir1/sub 'dir with space' swap_a swap_b moveme target
    : > empty
    echo 'hello, send stream' > small.txt
    head -c 8000 /dev/zero | tr '\0' 'z' > compressible.txt
    seq 1 1000 >> compressible.txt
    printf 'island' | dd of=sparse.bin bs=1 seek=200000 conv=notrunc status=none
    truncate -s 1M sparse.bin
    cp --reflink=always compressible.txt reflink.txt
    ln small.txt dir1/hardlink
    ln small.txt 'dir with space/hard link'
    ln -s dir1/sub rel-link
    ln -s /etc/passwd abs-link
    ln -s 'dangling target with space' dangling
    mkfifo fifo
    mknod chardev c 1 3
    mknod blockdev b 7 200
    python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock 2>/dev/null ||
      node -e 'require("net").createServer().listen(process.argv[1],()=>process.exit(0))' sock
    echo a > $'new\nline'
    echo b > $'tab\there'
    echo c > 'back\slash'
    echo d > $'\xff\xfe-not-utf8'
    echo e > 'ünïcödé'
    echo f > "$(printf 'L%.0s' $(seq 1 255))"
    echo g > swap_a/in_a
    echo h > swap_b/in_b
    echo i > moveme/in_moveme
    if command -v setfattr >/dev/null; then
      setfattr -n user.comment -v 'a comment' small.txt
      setfattr -n user.binary -v 0x00ff10 compressible.txt
      setfattr -n 'user.with space' -v $'value\nnewline' dir1
      setfattr -n user.gone -v soon empty
    fi
    chown 1000:1000 small.txt
    chown -h 1234:5678 abs-link
    chmod 4755 compressible.txt
    chmod 1777 'dir with space'
    chmod 0 empty
    TZ=UTC touch -h -d '2001-02-03 04:05:06.123456789' small.txt abs-link
    TZ=UTC touch -d '1960-06-15 12:00:00' compressible.txt
    TZ=UTC touch -d '2021-07-04 15:30:00' sparse.bin
    TZ=UTC touch -d '2024-03-10 07:30:00' reflink.txt
    TZ=UTC touch -d '1901-12-14 00:00:00' fifo
  )
}

# The incremental step: renames (a swap, a move under a sibling), deletes, changes.
mutate() {
  local d=$1
  (
    cd "$d"
    mv small.txt renamed.txt
    mv swap_a swap_tmp && mv swap_b swap_a && mv swap_tmp swap_b
    mv moveme target/
    rm dangling fifo
    mv $'new\nline' 'now with space'
    printf 'overwritten' | dd of=compressible.txt bs=1 seek=1000 conv=notrunc status=none
    truncate -s 100000 sparse.bin
    ln -s renamed.txt new-link
    chmod 640 renamed.txt
    chown 2000:2000 reflink.txt
    if command -v setfattr >/dev/null; then setfattr -x user.gone empty; fi
    command -v chattr >/dev/null && chattr +A reflink.txt
    mkdir newdir && echo new > newdir/file
  )
}

dump() { # dump STREAM NAME [TZ...]: one dump per zone (default UTC only)
  local stream=$1 name=$2
  shift 2
  for tz in "${@:-UTC}"; do
    TZ=$tz btrfs receive --dump -f "$stream" > "$OUT/$name.$(echo "$tz" | tr '/A-Z' '_a-z').dump"
  done
}

rm -rf "$OUT"
mkdir -p "$OUT"

for comp in zstd zlib lzo; do
  newfs "$comp" "compress-force=$comp"
  btrfs -q subvolume create "$mnt/vol"
  populate "$mnt/vol"
  btrfs -q subvolume snapshot -r "$mnt/vol" "$mnt/snap1"
  mutate "$mnt/vol"
  btrfs -q subvolume snapshot -r "$mnt/vol" "$mnt/snap2"
  btrfs -q send --proto 2 --compressed-data -f "$OUT/full-v2-$comp.stream" "$mnt/snap1"
  dump "$OUT/full-v2-$comp.stream" "full-v2-$comp"
  if [ "$comp" = zstd ]; then
    btrfs -q send -f "$OUT/full-v1.stream" "$mnt/snap1"
    btrfs -q send --proto 2 --compressed-data -p "$mnt/snap1" -f "$OUT/incr-v2.stream" "$mnt/snap2"
    btrfs -q send -p "$mnt/snap1" -f "$OUT/incr-v1.stream" "$mnt/snap2"
    btrfs -q send --no-data -p "$mnt/snap1" -f "$OUT/incr-nodata.stream" "$mnt/snap2"
    btrfs -q send -c "$mnt/snap1" -f "$OUT/clone-src.stream" "$mnt/snap2"
    # Two small subvolumes in one send: default = two complete streams; -e = one stream, one END.
    for t in tiny1 tiny2; do
      btrfs -q subvolume create "$mnt/$t-rw"
      echo "$t" > "$mnt/$t-rw/$t file"
      mkdir "$mnt/$t-rw/dir"
      btrfs -q subvolume snapshot -r "$mnt/$t-rw" "$mnt/$t"
      btrfs -q send -f "$WORK/$t.stream" "$mnt/$t"
      dump "$WORK/$t.stream" "$t"   # progs dumps only the first stream of a file: one dump per part
    done
    btrfs -q send -f "$OUT/two-streams.stream" "$mnt/tiny1" "$mnt/tiny2"
    btrfs -q send -e -f "$OUT/two-subvols-e.stream" "$mnt/tiny1" "$mnt/tiny2"
    dump "$OUT/full-v1.stream" full-v1 UTC
    dump "$OUT/incr-v2.stream" incr-v2 UTC America/New_York Asia/Kolkata
    for s in incr-v1 incr-nodata clone-src two-streams two-subvols-e; do dump "$OUT/$s.stream" "$s"; done
  fi
done
chmod 644 "$OUT"/*
ls -l "$OUT"
du -sh "$OUT"
