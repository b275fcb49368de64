// Unit checks of the receive fast paths (no btrfs needed): the write fd kept across MKFILE → RENAME,
// the rename check that replaced a stat per rename, and decode-ahead of zstd extents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, constants, fstatSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PathResolver } from '../src/receive/path-resolver.js';
import { WriteCache } from '../src/receive/write-cache.js';
import { DecodeAhead } from '../src/receive/decode-ahead.js';
import { CorruptDataError } from '../src/compress/index.js';
import { zstdAsyncAvailable } from '../src/compress/zstd-async.js';
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

const hasLibzstd = zstdAsyncAvailable();
if (!hasLibzstd && process.env.CI) throw new Error('DecodeAhead tests cannot run in CI: the system libzstd is missing');
if (!hasLibzstd) console.warn('SKIPPING DecodeAhead tests: the system libzstd (libzstd.so.1) is missing');
describe.skipIf(!hasLibzstd)('DecodeAhead', () => {
  const saved = process.env.BTRFS_TS_DECODE_AHEAD;
  afterAll(() => {
    if (saved === undefined) delete process.env.BTRFS_TS_DECODE_AHEAD;
    else process.env.BTRFS_TS_DECODE_AHEAD = saved;
  });

  it('is off unless asked for, and only when extents must be decoded', () => {
    delete process.env.BTRFS_TS_DECODE_AHEAD;
    expect(DecodeAhead.create({ forceDecompress: true, verify: false })).toBeUndefined();
    process.env.BTRFS_TS_DECODE_AHEAD = '1';
    expect(DecodeAhead.create({ forceDecompress: false, verify: false })).toBeUndefined();
    expect(DecodeAhead.create({ forceDecompress: true, verify: false })).toBeInstanceOf(DecodeAhead);
  });

  it('decodes queued extents in order, zero-extends short output, reports corrupt ones per job', async () => {
    process.env.BTRFS_TS_DECODE_AHEAD = '1';
    const ahead = DecodeAhead.create({ forceDecompress: true, verify: false })!;
    const plains = [0, 1, 2].map((i) => Buffer.alloc(100_000 + i * 7000, 0x30 + i).fill(0x7a, 5000, 9000));
    const payloads = plains.map(zstdPayload);
    const bad = Buffer.from(payloads[1]!);
    // Flip a byte of the content checksum (the frame's last 4 bytes before the padding).
    const frameEnd = zstdNapi.findFrameCompressedSize(bad);
    bad[frameEnd - 1]! ^= 0xff;
    const cmds = [encoded(payloads[0]!, 131072), encoded(bad, plains[1]!.length), encoded(payloads[2]!, plains[2]!.length)];
    for (const [i, cmd] of cmds.entries()) {
      expect(ahead.eligible(cmd) && ahead.sameFile(cmd)).toBe(true);
      expect(ahead.start(cmd, i + 1, i * 1000)).toBeDefined();
      cmd.data.fill(0); // the reader recycles its buffers: jobs own a copy
    }
    expect(ahead.full).toBe(false);
    const first = await ahead.next();
    expect(first.index).toBe(1);
    expect(first.decoded!.subarray(0, plains[0]!.length).equals(plains[0]!)).toBe(true);
    expect(first.decoded!.subarray(plains[0]!.length).every((b) => b === 0)).toBe(true);
    expect(first.decoded!.length).toBe(131072);
    ahead.release(first);
    const second = await ahead.next();
    expect(second.error).toBeInstanceOf(CorruptDataError);
    expect(second.decoded).toBeUndefined();
    ahead.release(second);
    const third = await ahead.next();
    expect(third.decoded!.equals(plains[2]!)).toBe(true);
    expect(third.offset).toBe(2000);
    ahead.release(third);
    expect(ahead.queue).toHaveLength(0);
  });

  it('leaves odd extents to the synchronous path', () => {
    process.env.BTRFS_TS_DECODE_AHEAD = '1';
    const ahead = DecodeAhead.create({ forceDecompress: true, verify: false })!;
    const ok = zstdPayload(Buffer.alloc(8192, 1));
    expect(ahead.eligible({ ...encoded(ok, 8192), compression: 1 })).toBe(false); // zlib
    expect(ahead.eligible({ ...encoded(ok, 8192), encryption: 1 })).toBe(false);
    expect(ahead.eligible({ ...encoded(ok, 8192), unencodedOffset: 4096 })).toBe(false); // slice outside
    expect(ahead.start(encoded(Buffer.alloc(4096, 0x55), 8192), 1, 0)).toBeUndefined(); // bad magic
    expect(ahead.start(encoded(ok, 4096), 1, 0)).toBeUndefined(); // declares more than fits
    expect(ahead.queue).toHaveLength(0);
  });
});
