#!/usr/bin/env bash
# How much does the metadata-only pass behind `send --estimate` cost, next to the real send?
# Builds a ~1 GiB snapshot on a loop btrfs in /dev/shm (8 x 100 MiB random files, 20000 small files,
# a copy of /usr/share), then times `btrfs send --no-data` and the real send (v2), each 3 times, to a pipe.
# Usage (root): [SHARE=0] [SMALL_DIRS=N] scripts/measure-send-estimate.sh [BTRFS_TS_BIN]
# (SHARE=0 skips the /usr/share copy; SMALL_DIRS=0 skips the small files: a data-only snapshot.)
set -euo pipefail
BIN=${1:-}
dir=$(mktemp -d /dev/shm/btrfs-ts-estimate-XXXXXX)
mnt=$dir/mnt
mkdir -p "$mnt"
truncate -s 3G "$dir/fs.img"
mkfs.btrfs -q "$dir/fs.img"
mount -o loop "$dir/fs.img" "$mnt"
cleanup() { umount "$mnt" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
btrfs -q subvolume create "$mnt/vol"
for i in $(seq 1 8); do head -c 100M /dev/urandom > "$mnt/vol/big$i"; done
mkdir -p "$mnt/vol/small"
for d in $(seq 1 "${SMALL_DIRS:-100}"); do
  mkdir "$mnt/vol/small/d$d"
  for f in $(seq 1 200); do head -c $(( (f * 37 % 16 + 1) * 1024 )) /dev/urandom > "$mnt/vol/small/d$d/f$f"; done
done
if [ "${SHARE:-1}" = 1 ]; then cp -a /usr/share "$mnt/vol/share" 2>/dev/null || true; fi
sync
btrfs -q subvolume snapshot -r "$mnt/vol" "$mnt/snap"
sync
du_bytes=$(du -sb "$mnt/snap" | cut -f1)
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
echo "snapshot: $(( du_bytes / 1048576 )) MiB of files, $(find "$mnt/snap" | wc -l) inodes"
for run in 1 2 3; do
  nd=$(t sh -c "btrfs send -q --proto 2 --no-data '$mnt/snap' | cat")
  full=$(t sh -c "btrfs send -q --proto 2 '$mnt/snap' | cat")
  echo "run $run: progs --no-data ${nd}s, progs full ${full}s"
  if [ -n "$BIN" ]; then
    nd2=$(t sh -c "node '$BIN' send -q --proto 2 --no-data '$mnt/snap' | cat")
    est=$(t sh -c "node '$BIN' send -q --proto 2 --estimate --progress '$mnt/snap' 2>/dev/null | cat")
    full2=$(t sh -c "node '$BIN' send -q --proto 2 '$mnt/snap' | cat")
    echo "run $run: btrfs-ts --no-data ${nd2}s, btrfs-ts full ${full2}s, btrfs-ts --estimate --progress ${est}s"
  fi
done
echo "stream sizes: no-data $(btrfs send -q --proto 2 --no-data "$mnt/snap" | wc -c) B, full $(btrfs send -q --proto 2 "$mnt/snap" | wc -c) B"
