// Unit checks of the receive fast paths (no btrfs needed): the write fd kept across MKFILE → RENAME,
// the rename check that replaced a stat per rename, and decode-ahead of zstd extents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, constants, fstatSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PathResolver } from '../src/receive/path-resolver.js';
import { WriteCache } from '../src/receive/write-cache.js';
import { DecodeAhead, LOOKAHEAD, eligible } from '../src/receive/decode-ahead.js';
import { CorruptDataError } from '../src/compress/index.js';
import { ZstdAheadPool } from '../src/compress/zstd-ahead.js';
import { decodeZstd } from '../src/compress/zstd.js';
import type { EncodedWriteCommand } from '../src/stream/commands.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
let dir: string;
let rootFd: number;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-perf-unit-'));
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  mkdirSync(join(dir, 'ab'));
  writeFileSync(join(dir, 'a/b/f'), 'x');
  rootFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
});
afterAll(() => {
  closeSync(rootFd);
  rmSync(dir, { recursive: true, force: true });
});

describe('WriteCache', () => {
  it('keeps an adopted fd under the new name after a rename, and matches paths by component', () => {
    const cache = new WriteCache(new PathResolver(rootFd));
    const fd = openSync(join(dir, 'a/b/f'), 'r+');
    const name = B('o257-7-0');
    cache.adopt(name, fd);
    name.fill(0x41); // the reader may recycle the command's buffer: the cache keeps a copy
    expect(cache.isFor(B('o257-7-0'))).toBe(true);
    cache.renamed(B('a/b/f'));
    expect(cache.isFor(B('a/b/f'))).toBe(true);
    expect(cache.get(B('a/b/f'))).toBe(fd); // no reopen
    expect(cache.isAtOrUnder(B('a'))).toBe(true);
    expect(cache.isAtOrUnder(B('a/b'))).toBe(true);
    expect(cache.isAtOrUnder(B('a/b/f'))).toBe(true);
    expect(cache.isAtOrUnder(B('a/b/f2'))).toBe(false);
    expect(cache.isAtOrUnder(B('a/'.slice(0, 1) + 'x'))).toBe(false);
    expect(cache.isAtOrUnder(B('ab'))).toBe(false);
    cache.drop();
    expect(() => fstatSync(fd)).toThrow(); // closed
    expect(cache.isAtOrUnder(B('a'))).toBe(false);
  });
});

describe('PathResolver.hasCachedAtOrUnder', () => {
  it('is true only for a cached directory itself or one of its ancestors', () => {
    const r = new PathResolver(rootFd);
    expect(r.hasCachedAtOrUnder(B('a'))).toBe(false);
    r.release(r.parent(B('a/b/f'))); // caches directory 'a/b'
    expect(r.hasCachedAtOrUnder(B('a/b'))).toBe(true);
    expect(r.hasCachedAtOrUnder(B('a'))).toBe(true);
    expect(r.hasCachedAtOrUnder(B('a/b/f'))).toBe(false);
    expect(r.hasCachedAtOrUnder(B('ab'))).toBe(false);
    expect(r.hasCachedAtOrUnder(B('a/bc'))).toBe(false);
    r.invalidate();
    expect(r.hasCachedAtOrUnder(B('a/b'))).toBe(false);
    r.dispose();
  });
});

const zstdNapi = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

/** A zstd frame with a content checksum, as btrfs would store `plain` (plus sector padding). */
function zstdPayload(plain: Buffer): Buffer {
  const cctx = new zstdNapi.CCtx();
  cctx.setParameter(zstdNapi.CParameter.checksumFlag, 1);
  const out = Buffer.alloc(zstdNapi.compressBound(plain.length) + 4096);
  const n = cctx.compress(out, plain, 3);
  return out.subarray(0, Math.ceil(n / 4096) * 4096); // zero padding to the sector, as btrfs sends it
}

function encoded(data: Buffer, unencodedLen: number): EncodedWriteCommand {
  return {
    cmd: 'encoded_write', path: B('f'), offset: 0, unencodedFileLen: unencodedLen, unencodedLen,
    unencodedOffset: 0, compression: 2, data,
  };
}

// The pool needs native/build/zstd-ahead.node and the system's libzstd.so.1 (built by npm ci in CI).
const hasPool = ZstdAheadPool.create() !== undefined;
if (!hasPool && process.env.CI) throw new Error('DecodeAhead tests cannot run in CI: native/build/zstd-ahead.node or libzstd.so.1 is missing');
if (!hasPool) console.warn('SKIPPING DecodeAhead tests: native/build/zstd-ahead.node or the system libzstd (libzstd.so.1) is missing');
describe.skipIf(!hasPool)('DecodeAhead', () => {
  const saved = process.env.BTRFS_TS_DECODE_AHEAD;
  afterAll(() => {
    if (saved === undefined) delete process.env.BTRFS_TS_DECODE_AHEAD;
    else process.env.BTRFS_TS_DECODE_AHEAD = saved;
  });

  it('is on when extents must be decoded, off with BTRFS_TS_DECODE_AHEAD=0', () => {
    delete process.env.BTRFS_TS_DECODE_AHEAD;
    expect(DecodeAhead.create({ forceDecompress: false, verify: false })).toBeUndefined();
    const on = [DecodeAhead.create({ forceDecompress: true, verify: false }), DecodeAhead.create({ forceDecompress: false, verify: true })];
    for (const a of on) {
      expect(a).toBeInstanceOf(DecodeAhead);
      a!.close();
    }
    process.env.BTRFS_TS_DECODE_AHEAD = '0';
    expect(DecodeAhead.create({ forceDecompress: true, verify: true })).toBeUndefined();
  });

  it('decodes submitted extents, zero-extends short output, reports corrupt ones per job, reuses its slots', () => {
    delete process.env.BTRFS_TS_DECODE_AHEAD;
    const ahead = DecodeAhead.create({ forceDecompress: true, verify: false })!;
    try {
      const plains = [0, 1, 2].map((i) => Buffer.alloc(100_000 + i * 7000, 0x30 + i).fill(0x7a, 5000, 9000));
      const payloads = plains.map(zstdPayload);
      const bad = Buffer.from(payloads[1]!);
      // Flip a byte of the content checksum (the frame's last 4 bytes before the padding).
      const frameEnd = zstdNapi.findFrameCompressedSize(bad);
      bad[frameEnd - 1]! ^= 0xff;
      const cmds = [encoded(payloads[0]!, 131072), encoded(bad, plains[1]!.length), encoded(payloads[2]!, plains[2]!.length)];
      const jobs = cmds.map((cmd) => ahead.submit(cmd)!);
      expect(jobs.every((j) => j !== undefined)).toBe(true);
      expect(ahead.pending).toBe(3);
      const first = ahead.finish(jobs[0]!);
      expect(first.decoded!.subarray(0, plains[0]!.length).equals(plains[0]!)).toBe(true);
      expect(first.decoded!.subarray(plains[0]!.length).every((b) => b === 0)).toBe(true);
      expect(first.decoded!.length).toBe(131072);
      const second = ahead.finish(jobs[1]!);
      expect(second.error).toBeInstanceOf(CorruptDataError);
      // The same one-line message as the synchronous decoder's (libzstd's error name).
      expect(() => decodeZstd(bad, Buffer.alloc(131072))).toThrow((second.error as Error).message);
      expect(second.decoded).toBeUndefined();
      expect(ahead.finish(jobs[2]!).decoded!.equals(plains[2]!)).toBe(true);
      expect(ahead.pending).toBe(0);
      // LOOKAHEAD jobs fill it; finishing one frees a slot again.
      const more = Array.from({ length: LOOKAHEAD }, () => ahead.submit(encoded(payloads[2]!, plains[2]!.length)));
      expect(more.every((j) => j !== undefined)).toBe(true);
      expect(ahead.full).toBe(true);
      expect(ahead.submit(encoded(payloads[2]!, plains[2]!.length))).toBeUndefined();
      for (const j of more) expect(ahead.finish(j!).decoded!.equals(plains[2]!)).toBe(true);
      const { self, waited, done } = ahead.stats();
      expect(self + waited + done).toBe(3 + LOOKAHEAD);
    } finally {
      ahead.close();
    }
  });

  it('leaves odd extents to the synchronous path', () => {
    delete process.env.BTRFS_TS_DECODE_AHEAD;
    const ahead = DecodeAhead.create({ forceDecompress: true, verify: false })!;
    try {
      const ok = zstdPayload(Buffer.alloc(8192, 1));
      expect(eligible(encoded(ok, 8192))).toBe(true);
      expect(eligible({ ...encoded(ok, 8192), compression: 1 })).toBe(false); // zlib
      expect(eligible({ ...encoded(ok, 8192), encryption: 1 })).toBe(false);
      expect(eligible({ ...encoded(ok, 8192), unencodedOffset: 4096 })).toBe(false); // slice outside
      expect(ahead.submit({ ...encoded(ok, 8192), compression: 1 })).toBeUndefined();
      expect(ahead.submit(encoded(Buffer.alloc(4096, 0x55), 8192))).toBeUndefined(); // bad magic
      expect(ahead.submit(encoded(ok, 4096))).toBeUndefined(); // declares more than fits
      expect(ahead.pending).toBe(0);
    } finally {
      ahead.close();
    }
  });
});
