// The tree comparer's options (ignore, ignoreRootTimes) and the soak's independent `diff -r` check:
// each must report what it is meant to report, and nothing it is told to skip.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectTree, diffTrees } from '../src/lab/compare-trees.js';
import { lutimensNs, makedev, mknod } from '../src/lab/test-libc.js';
import { diffR } from '../src/soak/diff-r.js';

const tmp = mkdtempSync('/dev/shm/btrfs-ts-cmp-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let a: string;
let b: string;
let n = 0;
/** Atimes in the future: relatime (tmpfs) then leaves them alone when the comparer reads a dir or link. */
const time = (path: string | Buffer, mtime: number, atime = 4_000_000_000): void =>
  lutimensNs(Buffer.from(path), { sec: atime, nsec: 5 }, { sec: mtime, nsec: 7 });

/** Two identical trees with a regular file, a symlink, a fifo, a socket and devices (odd names included). */
function twin(): void {
  a = join(tmp, `a${++n}`);
  b = join(tmp, `b${n}`);
  for (const root of [a, b]) {
    mkdirSync(join(root, 'd'), { recursive: true });
    writeFileSync(join(root, 'd', 'f'), 'same');
    symlinkSync('target', join(root, 'l'));
    const fifo = Buffer.concat([Buffer.from(root + '/fi\nfo while file '), Buffer.from([0xff])]);
    mknod(fifo, 0o010644);
    mknod(Buffer.from(join(root, 'd', 'sock')), 0o140644);
    mknod(Buffer.from(join(root, 'd', 'chr')), 0o020644, makedev(1, 3));
    mknod(Buffer.from(join(root, 'blk')), 0o060644, makedev(7, 1));
    time(fifo, 1_000_000);
    for (const p of ['d/f', 'd/sock', 'd/chr', 'blk', 'l', 'd', '']) time(join(root, p), 1_000_000);
  }
}

describe('diffTrees options', () => {
  beforeEach(twin);

  it('ignoreRootTimes skips only the root directory times', () => {
    time(b, 2_000_000, 4_100_000_000);
    expect(diffTrees(collectTree(a), collectTree(b)).map((d) => `${d.path} ${d.field}`)).toEqual(['. mtimeNs', '. atimeNs']);
    expect(diffTrees(collectTree(a), collectTree(b), { ignoreRootTimes: true })).toEqual([]);
    time(join(b, 'd'), 2_000_000, 4_100_000_000);
    expect(diffTrees(collectTree(a), collectTree(b), { ignoreRootTimes: true }).map((d) => `${d.path} ${d.field}`))
      .toEqual(['d mtimeNs', 'd atimeNs']);
  });

  it('ignore leaves out exactly the named fields', () => {
    writeFileSync(join(b, 'd', 'f'), 'diff');
    time(join(b, 'd', 'f'), 1_000_000);
    expect(diffTrees(collectTree(a), collectTree(b)).map((d) => `${d.path} ${d.field}`)).toEqual(['d/f sha256']);
    expect(diffTrees(collectTree(a), collectTree(b), { ignore: ['sha256'] })).toEqual([]);
  });
});

describe('diffR (GNU diff -r cross-check)', () => {
  beforeEach(twin);

  it('equal trees with fifos, sockets and devices (odd names, other ctimes): no difference', async () => {
    await new Promise((r) => setTimeout(r, 1100)); // diff lists a device as different when ctimes differ
    for (const p of ['d/chr', 'blk']) time(join(b, p), 1_000_000);
    expect(diffR(a, b)).toBe('');
  });

  it('reports contents, symlink targets, types and missing entries', () => {
    writeFileSync(join(b, 'd', 'f'), 'diff');
    rmSync(join(b, 'l'));
    symlinkSync('other', join(b, 'l'));
    rmSync(join(b, 'd', 'sock'));
    mknod(Buffer.from(join(b, 'd', 'sock')), 0o010644); // now a fifo
    writeFileSync(join(a, 'extra'), '');
    rmSync(join(b, 'blk'));
    mknod(Buffer.from(join(b, 'blk')), 0o060644, makedev(7, 2));
    const out = diffR(a, b);
    expect(out).toContain(`Files ${a}/d/f and ${b}/d/f differ`);
    expect(out).toContain(`Symbolic links ${a}/l and ${b}/l differ`);
    expect(out).toContain(`File ${a}/d/sock is a socket while file ${b}/d/sock is a fifo`);
    expect(out).toContain(`Only in ${a}: extra`);
    expect(out).toContain(`File ${a}/blk is a block special file while file ${b}/blk is a block special file`);
    expect(out.trim().split('\n')).toHaveLength(5);
  });
});
