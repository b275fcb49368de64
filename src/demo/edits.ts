// The changes the demo makes: a few things every real tree has (links, a reflinked copy, a sparse
// file) before the first snapshot, then an ordinary day's edits before the second.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { cloneRange } from '../sys/btrfs-ioctl.js';
import { listFiles } from './corpus.js';

const MiB = 1024 * 1024;

/** Extras before the first snapshot. */
export function addExtras(dir: string): void {
  const files = listFiles(dir);
  const first = files[0];
  fs.mkdirSync(join(dir, 'extras'));
  if (first) {
    fs.linkSync(join(dir, first), join(dir, 'extras', 'hardlink'));
    fs.symlinkSync(`../${first}`, join(dir, 'extras', 'symlink'));
  }
  // A reflinked copy of the largest file: shared extents, sent as CLONE, not as data.
  const largest = files.map((f) => ({ f, size: fs.statSync(join(dir, f)).size })).sort((a, b) => b.size - a.size)[0];
  if (largest && largest.size > 0) {
    const src = fs.openSync(join(dir, largest.f), 'r');
    const dst = fs.openSync(join(dir, 'extras', 'reflinked-copy'), 'w');
    try {
      cloneRange(dst, src, 0, largest.size, 0);
    } finally {
      fs.closeSync(src);
      fs.closeSync(dst);
    }
  }
  // A sparse file: 64 MiB apparent, 1 MiB of data.
  const sparse = fs.openSync(join(dir, 'extras', 'sparse.img'), 'w');
  try {
    fs.writeSync(sparse, Buffer.alloc(MiB, 0x5a), 0, MiB, 32 * MiB);
    fs.ftruncateSync(sparse, 64 * MiB);
  } finally {
    fs.closeSync(sparse);
  }
}

/** A day's edits: appends, a rename, deletions, a new file, a chmod. Returns how many paths changed. */
export function editForIncremental(dir: string): number {
  const files = listFiles(dir).filter((f) => !f.startsWith('extras/'));
  let changed = 0;
  for (let i = 0; i < files.length; i += 97) {
    fs.appendFileSync(join(dir, files[i]!), `\n# edited for the incremental send (${i})\n`);
    changed++;
  }
  for (let i = 50; i < files.length; i += 211) {
    fs.rmSync(join(dir, files[i]!));
    changed++;
  }
  fs.renameSync(join(dir, 'extras'), join(dir, 'extras-renamed'));
  fs.writeFileSync(join(dir, 'NEW-FILE.txt'), 'created between the two snapshots\n'.repeat(1000));
  fs.chmodSync(join(dir, 'NEW-FILE.txt'), 0o640);
  return changed + 2;
}
