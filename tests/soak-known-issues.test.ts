// Minimal reproducers of the differences the soak found (docs/reliability.md, "Findings"). Each
// asserts the correct result (= the source snapshot). Both are fixed in btrfs-ts (the second is a
// kernel sender bug that btrfs-ts mends on receive); mark a new, still open one with `it.fails`.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { seededBytes } from './helpers/populate.js';
import { lgetxattrs } from '../src/lab/test-libc.js';
import { cloneRange } from '../src/soak/random-tree.js';
import { BTRFS_TS } from '../src/soak/soak.js';

const ok = requireBtrfs();

function clone(src: string, srcOff: number, len: number, dst: string, dstOff: number): void {
  cloneRange(Buffer.from(src), srcOff, len, Buffer.from(dst), dstOff);
}

describe.skipIf(!ok)('known differences found by the soak', () => {
  let src: Btrfs;
  let dst: Btrfs;
  beforeEach(() => {
    src = makeBtrfs({ sizeMiB: 512, mountOptions: 'compress-force=zlib' });
    dst = makeBtrfs({ sizeMiB: 512 });
  });
  afterEach(() => {
    dst?.cleanup();
    src?.cleanup();
  });

  const receiveBoth = (streams: string[]): void => {
    for (const s of streams) execFileSync(process.execPath, [BTRFS_TS, 'receive', '-q', '-f', s, dst.mnt], { stdio: 'pipe' });
  };

  // Kernel (sender) issue, seed 1078: in a v2 --compressed-data incremental stream, a compressed
  // inline extent that no longer ends the file is sent as ENCODED_WRITE of its 1649 bytes only;
  // the rest of that block must read as zeros but nothing says so (v1 sends a 4096-byte WRITE), so
  // stale bytes of the parent's version remain — in btrfs-progs' result too. A receiver can mend it:
  // an encoded extent that ends off a 4 KiB boundary is either at EOF or inline, so the rest of its
  // last block is zero on the source.
  it('v2 encoded inline extent followed by more data: the block tail reads as zeros', () => {
    const vol = join(src.mnt, 'vol');
    run('btrfs', ['subvolume', 'create', vol]);
    fs.writeFileSync(join(vol, 'f'), Buffer.from(Array.from({ length: 4000 }, (_, i) => `${i}: btrfs send receive extent\n`).join('')));
    fs.writeFileSync(join(vol, 'g'), seededBytes(400_000, 3));
    run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, 's0')]);
    fs.truncateSync(join(vol, 'f'), 1649);
    clone(join(vol, 'g'), 163840, 98304, join(vol, 'f'), 16384);
    run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, 's1')]);
    const s0 = join(src.mnt, '..', 's0.v2');
    const s1 = join(src.mnt, '..', 's1.v2');
    run('btrfs', ['send', '-q', '--proto', '2', '--compressed-data', '-f', s0, join(src.mnt, 's0')]);
    run('btrfs', ['send', '-q', '--proto', '2', '--compressed-data', '-f', s1, '-p', join(src.mnt, 's0'), join(src.mnt, 's1')]);
    receiveBoth([s0, s1]);
    const want = fs.readFileSync(join(src.mnt, 's1', 'f'));
    const got = fs.readFileSync(join(dst.mnt, 's1', 'f'));
    expect(want.subarray(1649, 4096).every((b) => b === 0), 'source tail is zero').toBe(true);
    expect(got.subarray(1649, 4096).equals(want.subarray(1649, 4096)), 'received tail equals the source').toBe(true);
  });

  // btrfs-ts issue, seeds 1050 and 1053: FILEATTR is applied with FS_IOC_SETFLAGS; when the flags
  // include COMPRESS the kernel rewrites the btrfs.compression property to the destination's default
  // ("zlib" without a compress mount option), overwriting the value the stream set ("zstd").
  it('FILEATTR with COMPRESS keeps the btrfs.compression property the stream set', () => {
    run('mount', ['-o', 'remount,compress-force=zstd', src.mnt]);
    const vol = join(src.mnt, 'vol');
    run('btrfs', ['subvolume', 'create', vol]);
    fs.writeFileSync(join(vol, 'f'), 'data\n');
    run('chattr', ['+c', join(vol, 'f')]);
    run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, 's0')]);
    run('chattr', ['+d', join(vol, 'f')]);
    run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, 's1')]);
    const s0 = join(src.mnt, '..', 's0.v2');
    const s1 = join(src.mnt, '..', 's1.v2');
    run('btrfs', ['send', '-q', '--proto', '2', '-f', s0, join(src.mnt, 's0')]);
    run('btrfs', ['send', '-q', '--proto', '2', '-f', s1, '-p', join(src.mnt, 's0'), join(src.mnt, 's1')]);
    receiveBoth([s0, s1]);
    const want = lgetxattrs(Buffer.from(join(src.mnt, 's1', 'f'))).get('btrfs.compression')?.toString();
    const got = lgetxattrs(Buffer.from(join(dst.mnt, 's1', 'f'))).get('btrfs.compression')?.toString();
    expect(want).toBe('zstd');
    expect(got).toBe(want);
  });
});
