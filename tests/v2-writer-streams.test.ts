// v2 streams the kernel does not emit here, made with the codec's writer: LZO sector-size variants
// other than 4K (the kernel refuses them on a 4K filesystem → our LZO decoder), a hand-made slice of a
// real zstd extent, a large v2 WRITE, and FILEATTR with immutable/append-only. Received by our
// receive() and by btrfs-progs; file contents must agree (progs ignores FILEATTR, we apply it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../src/stream/commands.js';
import { Compression } from '../src/stream/protocol.js';
import { receive } from '../src/receive/receive.js';
import { type Btrfs, makeBtrfs, requireBtrfs, run } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { lzoPacker, packLzo, sampleContents } from './helpers/v2-extents.js';

const hasLzo = lzoPacker() !== undefined;
// In CI a missing liblzo2-dev fails the lzo cases (scripts/install-system-deps.sh installs it).
if (!hasLzo && !process.env.CI) console.warn('SKIPPING hand-made v2 streams: liblzo2-dev (lzo/lzo1x.h) is missing');
const ok = requireBtrfs() && (hasLzo || !!process.env.CI);

interface FixtureExtent { path: string; offset: number; unencodedLen: number; unencodedOffset: number; unencodedFileLen: number; compression: number; data: string }
const zstdFixture = (JSON.parse(readFileSync(new URL('./fixtures/v2-extents/zstd.json', import.meta.url), 'utf8')) as { extents: FixtureExtent[] }).extents;

const p = (s: string) => Buffer.from(s);

describe.skipIf(!ok)('hand-made v2 streams: our receive vs btrfs-progs', () => {
  let fs: Btrfs;
  let streamFile: string;
  const contents = sampleContents();
  const text = contents['text-1M']!.subarray(0, 131072);
  const mixed = contents['mixed-300000']!.subarray(0, 100000);
  const big = randomBytes(1 << 20);
  const expected: Record<string, Buffer> = {};

  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 256 });
    const cmds: Command[] = [{ cmd: 'subvol', path: p('vol'), uuid: randomBytes(16), ctransid: 7 }];
    let ino = 257;
    // LZO variants the 4K filesystem refuses (EINVAL) → decoded by us / by progs.
    for (const [name, compression] of [['lzo8k', Compression.LZO_8K], ['lzo16k', Compression.LZO_16K], ['lzo32k', Compression.LZO_32K], ['lzo64k', Compression.LZO_64K], ['lzo4k', Compression.LZO_4K]] as const) {
      const sector = 4096 << (compression - Compression.LZO_4K);
      const raw = name === 'lzo4k' ? mixed : text;
      const unencodedLen = Math.ceil(raw.length / 4096) * 4096;
      cmds.push({ cmd: 'mkfile', path: p(name), ino: ino++ });
      cmds.push({
        cmd: 'encoded_write', path: p(name), offset: 0, unencodedFileLen: raw.length, unencodedLen,
        unencodedOffset: 0, compression, encryption: 0, data: packLzo(Buffer.from(raw), sector),
      });
      expected[name] = raw;
    }
    // A slice (unencoded_offset ≠ 0) of a real zstd extent, at a non-zero file offset.
    const tail = zstdFixture.find((e) => e.path === 'partial-131072' && e.unencodedOffset > 0)!;
    cmds.push({ cmd: 'mkfile', path: p('zslice'), ino: ino++ });
    cmds.push({
      cmd: 'encoded_write', path: p('zslice'), offset: 8192, unencodedFileLen: 16384, unencodedLen: tail.unencodedLen,
      unencodedOffset: tail.unencodedOffset + 4096, compression: Compression.ZSTD, encryption: 0, data: Buffer.from(tail.data, 'base64'),
    });
    // A large v2 WRITE (v2 DATA has no length field: 1 MiB in one command).
    cmds.push({ cmd: 'mkfile', path: p('bigwrite'), ino: ino++ });
    cmds.push({ cmd: 'write', path: p('bigwrite'), offset: 0, data: big });
    expected.bigwrite = big;
    // FILEATTR with immutable + append-only + nodump: progs ignores it; we apply it at the end.
    cmds.push({ cmd: 'mkfile', path: p('locked'), ino: ino++ });
    cmds.push({ cmd: 'write', path: p('locked'), offset: 0, data: p('cannot change me\n') });
    cmds.push({ cmd: 'fileattr', path: p('locked'), flags: (1 << 6) | (1 << 7) | (1 << 8) });
    expected.locked = p('cannot change me\n');
    streamFile = join(fs.mnt, '..', 'made.stream');
    writeFileSync(streamFile, buildStream(2, cmds));
  });
  afterAll(() => fs?.cleanup());

  it('our receive and btrfs-progs give the same file contents; the slices are right', async () => {
    const ours = join(fs.mnt, 'ours');
    const progs = join(fs.mnt, 'progs');
    run('mkdir', [ours, progs]);
    const log: string[] = [];
    await receive({ dest: ours, input: streamFile, verbosity: 2, stopAtEnd: false, chroot: false, maxErrors: 0, forceDecompress: false, log: (l) => log.push(l) });
    run('btrfs', ['receive', '-f', streamFile, progs]);
    for (const [name, content] of Object.entries(expected)) {
      expect(readFileSync(join(ours, 'vol', name)).equals(content), `ours/${name}`).toBe(true);
      expect(readFileSync(join(progs, 'vol', name)).equals(content), `progs/${name}`).toBe(true);
    }
    const zslice = readFileSync(join(ours, 'vol', 'zslice'));
    expect(zslice.equals(readFileSync(join(progs, 'vol', 'zslice')))).toBe(true);
    expect(zslice.length).toBe(8192 + 16384);
    // The fallback notice names EINVAL (LZO_8K on a 4K filesystem); the 4K LZO and zstd extents stay encoded.
    expect(log.some((l) => /falling back/.test(l) && l.includes('EINVAL'))).toBe(true);
    run('sync', []);
    const frag = (name: string) => run('filefrag', ['-v', join(ours, 'vol', name)]).toString();
    expect(frag('lzo4k')).toMatch(/encoded/);
    expect(frag('zslice')).toMatch(/encoded/);
    expect(frag('lzo16k')).not.toMatch(/encoded/);
  });

  it('FILEATTR immutable/append-only/nodump: applied by us at finalization, ignored by progs', () => {
    const lsattr = (f: string) => run('lsattr', ['-d', f]).toString().split(' ')[0]!;
    const ours = lsattr(join(fs.mnt, 'ours', 'vol', 'locked'));
    expect(ours).toMatch(/i/);
    expect(ours).toMatch(/a/);
    expect(ours).toMatch(/d/);
    expect(lsattr(join(fs.mnt, 'progs', 'vol', 'locked'))).not.toMatch(/[iad]/);
    // The received subvolume was still made read-only after the flags were applied.
    expect(run('btrfs', ['property', 'get', join(fs.mnt, 'ours', 'vol'), 'ro']).toString()).toContain('ro=true');
  });

  it('v3 ENABLE_VERITY: on a kernel without fs-verity the receive fails with a clear message', async () => {
    const v3 = join(fs.mnt, '..', 'verity.stream');
    writeFileSync(v3, buildStream(3, [
      { cmd: 'subvol', path: p('vvol'), uuid: randomBytes(16), ctransid: 1 },
      { cmd: 'mkfile', path: p('v'), ino: 257 },
      { cmd: 'write', path: p('v'), offset: 0, data: p('verity me\n') },
      { cmd: 'enable_verity', path: p('v'), algorithm: 1, blockSize: 4096, salt: Buffer.alloc(0), sig: Buffer.alloc(0) },
    ]));
    const dest = join(fs.mnt, 'verity');
    run('mkdir', [dest]);
    const attempt = receive({ dest, input: v3, verbosity: 1, stopAtEnd: false, chroot: false, maxErrors: 0, forceDecompress: false, log: () => {} });
    const supported = await attempt.then(() => true, (error: Error) => {
      expect(error.message).toMatch(/fs-verity is not supported by this kernel or filesystem/);
      return false;
    });
    if (supported) expect(run('lsattr', ['-d', join(dest, 'vvol', 'v')]).toString()).toMatch(/V/);
  });
});
