// End to end through the receive engine: real `btrfs send --compressed-data` streams from
// compress-force=zstd/zlib/lzo sources, received by our receive() into a btrfs mounted without
// compression: identical contents, extents still compressed (or not, with --force-decompress /
// an injected ENOTTY); and a real incremental v2 stream carrying FILEATTR after chattr.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { receive } from '../src/receive/receive.js';
import { setEncodedWriteFault } from '../src/sys/encoded-io.js';
import { type Btrfs, makeBtrfs, requireBtrfs, run } from './helpers/btrfs.js';
import { sampleContents } from './helpers/v2-extents.js';

const ok = requireBtrfs();
const CODECS = ['zstd', 'zlib', 'lzo'] as const;

function extentFlags(file: string): string[] {
  return run('filefrag', ['-v', file]).toString().split('\n')
    .filter((line) => /^\s*\d+:/.test(line))
    .map((line) => line.split(':').pop()!.trim());
}

describe.skipIf(!ok)('v2 receive end to end', () => {
  let src: Record<string, Btrfs>;
  let dst: Btrfs;
  const files = sampleContents();
  const streams: Record<string, string> = {};

  beforeAll(() => {
    src = {};
    for (const codec of CODECS) {
      const fs = (src[codec] = makeBtrfs({ sizeMiB: 256, mountOptions: `compress-force=${codec}` }));
      run('btrfs', ['-q', 'subvolume', 'create', join(fs.mnt, 'vol')]);
      for (const [name, content] of Object.entries(files)) writeFileSync(join(fs.mnt, 'vol', name), content);
      run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', join(fs.mnt, 'vol'), join(fs.mnt, `snap-${codec}`)]);
      streams[codec] = join(fs.mnt, '..', 'stream');
      run('btrfs', ['-q', 'send', '--compressed-data', '-f', streams[codec]!, join(fs.mnt, `snap-${codec}`)]);
    }
    dst = makeBtrfs({ sizeMiB: 768 });
  });
  afterAll(() => {
    for (const fs of Object.values(src ?? {})) fs.cleanup();
    dst?.cleanup();
  });
  afterEach(() => setEncodedWriteFault(undefined));

  async function receiveInto(codec: string, dir: string, opts: { forceDecompress?: boolean; verbosity?: number } = {}) {
    run('mkdir', ['-p', dir]);
    const log: string[] = [];
    await receive({
      dest: dir, input: streams[codec]!, verbosity: opts.verbosity ?? 1, stopAtEnd: false, chroot: false,
      maxErrors: 0, forceDecompress: opts.forceDecompress ?? false, log: (line) => log.push(line),
    });
    const received = join(dir, `snap-${codec}`);
    expect(readdirSync(received).sort()).toEqual(Object.keys(files).sort());
    for (const [name, content] of Object.entries(files)) {
      expect(readFileSync(join(received, name)).equals(content), `${codec}/${name}`).toBe(true);
    }
    return { received, log };
  }

  it.each(CODECS)('%s: contents identical and stored compressed (no recompression)', async (codec) => {
    const { received } = await receiveInto(codec, join(dst.mnt, `native-${codec}`));
    run('sync', []);
    for (const name of ['text-1M', 'text-37856', 'mixed-300000', 'small-1500']) {
      const flags = extentFlags(join(received, name));
      expect(flags.length).toBeGreaterThan(0);
      expect(flags.every((f) => f.includes('encoded')), `${name}: ${flags.join(' | ')}`).toBe(true);
    }
    const compsize = run('compsize', [received]).toString();
    expect(compsize).toMatch(new RegExp(`^${codec}\\s+\\d+%`, 'm'));
  });

  it.each(CODECS)('%s: --force-decompress gives identical contents, not compressed', async (codec) => {
    const { received } = await receiveInto(codec, join(dst.mnt, `force-${codec}`), { forceDecompress: true });
    run('sync', []); // buffered writes: allocate the extents before looking at them
    for (const name of ['text-1M', 'text-37856', 'mixed-300000']) {
      expect(extentFlags(join(received, name)).length).toBeGreaterThan(0);
      expect(extentFlags(join(received, name)).some((f) => f.includes('encoded')), name).toBe(false);
    }
    expect(run('compsize', [received]).toString()).not.toMatch(new RegExp(`^${codec}\\s`, 'm'));
  });

  it('an injected ENOTTY falls back: identical contents, not compressed, one notice at the default verbosity', async () => {
    setEncodedWriteFault(osConstants.errno.ENOTTY);
    const { received, log } = await receiveInto('zstd', join(dst.mnt, 'enotty'), { verbosity: 1 });
    run('sync', []);
    expect(extentFlags(join(received, 'text-1M')).length).toBeGreaterThan(0);
    expect(extentFlags(join(received, 'text-1M')).some((f) => f.includes('encoded'))).toBe(false);
    const notices = log.filter((line) => line.includes('falling back'));
    expect(notices.length).toBe(1);
    expect(notices[0]).toContain('ENOTTY');
  });

  it('incremental v2 stream after chattr +d/+A/+C/+c and a punched hole: same flags (lsattr), same bytes, hole kept', async () => {
    const fs = src.zstd!;
    const vol = join(fs.mnt, 'vol');
    writeFileSync(join(vol, 'empty-nocow'), '');
    const big = Buffer.concat([files['random-65536']!, files['text-1M']!.subarray(0, 196608)]);
    writeFileSync(join(vol, 'big.bin'), big);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', vol, join(fs.mnt, 'base')]);
    run('fallocate', ['-p', '-o', '131072', '-l', '32768', join(vol, 'big.bin')]); // sent as FALLOCATE mode 3 (kernel ≥ 6.17)
    run('chattr', ['+d', join(vol, 'text-10000')]);
    run('chattr', ['+A', join(vol, 'text-37856')]);
    run('chattr', ['+C', join(vol, 'empty-nocow')]);
    run('chattr', ['+c', join(vol, 'small-1500')]);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', vol, join(fs.mnt, 'incr')]);
    const full = join(fs.mnt, '..', 'base.stream');
    const incr = join(fs.mnt, '..', 'incr.stream');
    run('btrfs', ['-q', 'send', '--proto', '2', '-f', full, join(fs.mnt, 'base')]);
    run('btrfs', ['-q', 'send', '--proto', '2', '-p', join(fs.mnt, 'base'), '-f', incr, join(fs.mnt, 'incr')]);
    const dump = run('btrfs', ['receive', '--dump', '-f', incr]).toString();
    expect(dump).toMatch(/fileattr/);
    const punched = /fallocate\s+\S*big\.bin\s+mode=3 offset=131072 len=32768/.test(dump);
    const [major, minor] = run('uname', ['-r']).toString().split('.').map(Number) as [number, number];
    if (major > 6 || (major === 6 && minor >= 17)) expect(punched, dump).toBe(true);

    const dir = join(dst.mnt, 'fileattr');
    run('mkdir', [dir]);
    for (const input of [full, incr]) {
      await receive({ dest: dir, input, verbosity: 1, stopAtEnd: false, chroot: false, maxErrors: 0, forceDecompress: false, log: () => {} });
    }
    const lsattr = (file: string) => run('lsattr', ['-d', file]).toString().split(' ')[0];
    for (const name of ['text-10000', 'text-37856', 'empty-nocow', 'small-1500', 'text-1M']) {
      expect(lsattr(join(dir, 'incr', name)), name).toBe(lsattr(join(fs.mnt, 'incr', name)));
    }
    expect(lsattr(join(dir, 'incr', 'text-10000'))).toContain('d');
    expect(lsattr(join(dir, 'incr', 'empty-nocow'))).toContain('C');

    const received = join(dir, 'incr', 'big.bin');
    expect(readFileSync(received).equals(readFileSync(join(fs.mnt, 'incr', 'big.bin')))).toBe(true);
    expect(readFileSync(received).subarray(131072, 163840).every((b) => b === 0)).toBe(true);
    if (punched) {
      // The range is a hole on the receiver too: no extent covers blocks 32..39.
      run('sync', []);
      const covered = run('filefrag', ['-v', '-b4096', received]).toString().split('\n')
        .map((line) => /^\s*\d+:\s+(\d+)\.\.\s*(\d+):/.exec(line)).filter((m) => m !== null)
        .some((m) => Number(m![1]) <= 39 && Number(m![2]) >= 32);
      expect(covered).toBe(false);
    }
  });
});
