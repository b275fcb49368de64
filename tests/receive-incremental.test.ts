// Incremental chains (full, then -p parent twice), v1 and v2: renames (swap, a dir moved under its
// former child, file<->dir), deletes, overwrites, truncations, punched holes, link and attribute
// changes. Our receive must equal the source and `btrfs receive` — except where progs is wrong: a
// chown-only change of a set-uid file (progs drops the bit; we keep it).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { populateVariedTree, mutateTree, makeSubvolume, snapshot } from './helpers/populate.js';
import { collectTree, diffTrees, formatDifference } from '../src/lab/compare-trees.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { btrfsSend, btrfsReceive, ourReceive } from './helpers/receive-harness.js';

const ok = requireBtrfs();

/** Second incremental step: a dir moved under its former child, a file swap, the set-uid chown case. */
function mutateAgain(dir: string): void {
  execFileSync('bash', ['-euc', `cd "$1"
    mv a/b b2 && mv a b2/a
    mv renamed.txt t && mv zeros.bin renamed.txt && mv t zeros.bin
    truncate -s 1000 compressible.txt
    dd if=/dev/urandom of=random.bin bs=4096 seek=10 count=3 conv=notrunc status=none
    chown 1001:1002 odd-size.bin && chmod 4755 odd-size.bin
    mkdir newdir && mv f2d newdir/ && ln dir2/page-link newdir/third-link
    touch -d '2020-02-02 02:02:02.020202020' newdir dir2`, '-', dir]);
}

describe.skipIf(!ok)('incremental receive equals btrfs receive', () => {
  let src: Btrfs, progs: Btrfs, ours: Btrfs;
  let tmp: string;
  beforeAll(() => {
    src = makeBtrfs({ sizeMiB: 512 });
    progs = makeBtrfs({ sizeMiB: 512 });
    ours = makeBtrfs({ sizeMiB: 512 });
    tmp = mkdtempSync('/dev/shm/btrfs-ts-streams-');
    const vol = join(src.mnt, 'vol');
    makeSubvolume(vol);
    populateVariedTree(vol);
    snapshot(vol, join(src.mnt, 'snap1'));
    mutateTree(vol);
    snapshot(vol, join(src.mnt, 'snap2'));
    mutateAgain(vol);
    snapshot(vol, join(src.mnt, 'snap3'));
  }, 120_000);
  afterAll(() => {
    src?.cleanup(); progs?.cleanup(); ours?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.each([1, 2])('protocol v%d: full, then two incrementals', async (proto) => {
    const dir = `v${proto}`;
    const streams = ['snap1', 'snap2', 'snap3'].map((snap, i) => {
      const file = join(tmp, `${dir}-${snap}.stream`);
      btrfsSend(join(src.mnt, snap), file, { proto, ...(i > 0 ? { parent: join(src.mnt, `snap${i}`) } : {}) });
      return file;
    });
    for (const [i, file] of streams.entries()) {
      btrfsReceive(file, join(progs.mnt, dir));
      const { log } = await ourReceive(file, join(ours.mnt, dir));
      expect(log).toContain(i === 0 ? 'At subvol snap1' : `At snapshot snap${i + 1}`);
    }
    for (const snap of ['snap1', 'snap2', 'snap3']) {
      const actual = collectTree(join(ours.mnt, dir, snap));
      const source = collectTree(join(src.mnt, snap));
      expect(diffTrees(source, actual), `${snap} vs source`).toEqual([]);
      const fromProgs = diffTrees(collectTree(join(progs.mnt, dir, snap)), actual).map((d) => formatDifference(d, ['progs', 'ours']));
      if (snap === 'snap3') {
        // progs' lchown cleared set-uid and no CHMOD followed; we kept the mode the file had.
        expect(fromProgs).toEqual(['odd-size.bin: mode differs (progs: 755; ours: 4755)']);
      } else {
        expect(fromProgs, `${snap} vs btrfs receive`).toEqual([]);
      }
      const p = subvolInfo(join(progs.mnt, dir, snap));
      const o = subvolInfo(join(ours.mnt, dir, snap));
      expect(o).toEqual(p);
      expect(o.readonly).toBe(true);
    }
    expect(statSync(join(ours.mnt, dir, 'snap3', 'b2', 'a')).isDirectory()).toBe(true);
    // FILEATTR (v2 incremental only): `chattr +A zeros.bin` reaches our receiver; progs ignores it.
    const attrs = (path: string): string => execFileSync('lsattr', ['-d', path], { encoding: 'utf8' }).split(' ')[0]!;
    expect(attrs(join(src.mnt, 'snap2', 'zeros.bin'))).toContain('A');
    expect(attrs(join(ours.mnt, dir, 'snap2', 'zeros.bin')).includes('A')).toBe(proto === 2);
    expect(attrs(join(progs.mnt, dir, 'snap2', 'zeros.bin'))).not.toContain('A');
  }, 150_000);
});
