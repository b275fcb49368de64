// Full sends of a varied tree (v1, v2, v2 compressed): what our receive() builds must equal what
// `btrfs receive` builds from the same stream — every inode attribute, content, xattr, link group,
// received UUID and read-only flag.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { populateVariedTree, makeSubvolume, snapshot } from './helpers/populate.js';
import { collectTree, diffTrees } from '../src/lab/compare-trees.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { btrfsSend, btrfsReceive, ourReceive } from './helpers/receive-harness.js';

const ok = requireBtrfs();

describe.skipIf(!ok)('full receive equals btrfs receive', () => {
  let src: Btrfs, progs: Btrfs, ours: Btrfs;
  let tmp: string;
  beforeAll(() => {
    src = makeBtrfs({ sizeMiB: 512, mountOptions: 'compress=zstd' });
    progs = makeBtrfs({ sizeMiB: 512 });
    ours = makeBtrfs({ sizeMiB: 512 });
    tmp = mkdtempSync('/dev/shm/btrfs-ts-streams-');
    makeSubvolume(join(src.mnt, 'vol'));
    populateVariedTree(join(src.mnt, 'vol'));
    snapshot(join(src.mnt, 'vol'), join(src.mnt, 'snap1'));
  }, 120_000);
  afterAll(() => {
    src?.cleanup(); progs?.cleanup(); ours?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cases = [
    { name: 'v1', proto: 1, compressed: false },
    { name: 'v2', proto: 2, compressed: false },
    { name: 'v2 compressed', proto: 2, compressed: true },
  ];
  it.each(cases)('protocol $name', async ({ name, proto, compressed }) => {
    const dir = name.replace(/ /g, '-');
    const stream = join(tmp, `${dir}.stream`);
    btrfsSend(join(src.mnt, 'snap1'), stream, { proto, compressed });
    btrfsReceive(stream, join(progs.mnt, dir));
    const { summary, log } = await ourReceive(stream, join(ours.mnt, dir));
    expect(log).toContain('At subvol snap1');
    expect(summary.subvolumes).toEqual([join(ours.mnt, dir, 'snap1')]);
    expect(summary.bytes).toBeGreaterThan(4 * 1024 * 1024);

    const expected = collectTree(join(progs.mnt, dir, 'snap1'));
    const actual = collectTree(join(ours.mnt, dir, 'snap1'));
    expect(expected.size).toBeGreaterThan(80);
    expect(diffTrees(expected, actual)).toEqual([]);
    // And both equal the source (sanity of the comparison itself; the root's times are set by the
    // final UTIMES of the stream, so they match too).
    expect(diffTrees(collectTree(join(src.mnt, 'snap1')), actual)).toEqual([]);

    const p = subvolInfo(join(progs.mnt, dir, 'snap1'));
    const o = subvolInfo(join(ours.mnt, dir, 'snap1'));
    expect(o.receivedUuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(o).toEqual(p);
    expect(o.readonly).toBe(true);
    expect(statSync(join(ours.mnt, dir, 'snap1')).ino).toBe(256);
    if (compressed) {
      // ENCODED_WRITE went through BTRFS_IOC_ENCODED_WRITE: the data is stored compressed although
      // the receiving filesystem is mounted without compression.
      const usage = execFileSync('compsize', ['-b', join(ours.mnt, dir, 'snap1', 'compressible.txt')], { encoding: 'utf8' });
      expect(usage).toMatch(/^zstd\s/m);
    }
  }, 120_000);

  it('--no-data stream with reflinks: progs fails on CLONE (EINVAL), we apply it', async () => {
    const stream = join(tmp, 'nodata.stream');
    btrfsSend(join(src.mnt, 'snap1'), stream, { proto: 2, noData: true });
    // progs: UPDATE_EXTENT is a no-op, so the clone source is still empty and cloning past its EOF
    // fails with EINVAL.
    expect(() => btrfsReceive(stream, join(progs.mnt, 'nodata'))).toThrow(/failed to clone extents.*Invalid argument/);
    await ourReceive(stream, join(ours.mnt, 'nodata'));
    const actual = collectTree(join(ours.mnt, 'nodata', 'snap1'));
    // Everything but file contents matches the source: sizes come from UPDATE_EXTENT ranges, and the
    // clones (of those zero-filled ranges) succeed.
    expect(diffTrees(collectTree(join(src.mnt, 'snap1')), actual, { ignore: ['sha256'] })).toEqual([]);
    expect(readFileSync(join(ours.mnt, 'nodata', 'snap1', 'reflink.bin')).every((b) => b === 0)).toBe(true);
    expect(subvolInfo(join(ours.mnt, 'nodata', 'snap1')).readonly).toBe(true);
  }, 120_000);
});
