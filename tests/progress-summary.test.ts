// The final summary of `receive --progress` counts compressed extents: kept compressed (encoded write)
// or decompressed (--force-decompress), for a real `btrfs send --compressed-data` stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';

const bin = join(resolve(import.meta.dirname, '..'), 'bin/btrfs-ts.js');
const ok = requireBtrfs();

describe.skipIf(!ok)('receive --progress summary', () => {
  let fs: Btrfs;
  let stream = '';
  let extents = 0;
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 512, mountOptions: 'compress-force=zstd' });
    const vol = join(fs.mnt, 'vol');
    run('btrfs', ['-q', 'subvolume', 'create', vol]);
    // 4 MiB of compressible text: 32 compressed extents of 128 KiB each.
    writeFileSync(join(vol, 'text.txt'), Buffer.from('all work and no play makes jack a dull boy\n'.repeat(100_000)).subarray(0, 4 << 20));
    run('sync', []);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', vol, join(fs.mnt, 'snap')]);
    stream = join(fs.mnt, '..', 'compressed.stream');
    run('btrfs', ['send', '-q', '--compressed-data', '-f', stream, join(fs.mnt, 'snap')]);
    const dump = run('btrfs', ['receive', '--dump', '-f', stream]).toString();
    extents = dump.split('\n').filter((l) => l.startsWith('encoded_write')).length;
  }, 60_000);
  afterAll(() => fs?.cleanup());

  for (const [flag, kept, decompressed] of [['', true, false], ['--force-decompress', false, true]] as const) {
    it(`counts extents ${kept ? 'kept compressed' : 'decompressed'}${flag ? ` (${flag})` : ''}`, () => {
      expect(extents).toBeGreaterThanOrEqual(32);
      const dest = join(fs.mnt, `recv${flag}`);
      mkdirSync(dest);
      const args = [bin, 'receive', '--progress', ...(flag ? [flag] : []), '-f', stream, dest];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const last = r.stderr.trimEnd().split('\n').at(-1)!;
      expect(last).toMatch(new RegExp(`^received [\\d.]+ [KM]iB, \\d+ commands in \\d+:\\d\\d \\(.*/s\\); ` +
        `compressed extents: ${kept ? extents : 0} kept compressed, ${decompressed ? extents : 0} decompressed$`));
    });
  }
});
