// The native pool behind decode-ahead (native/zstd-ahead.c + src/compress/zstd-ahead.ts): jobs queued
// for its helper thread and finished in any order, misuse refused with a clear error, a corrupt frame
// reported with libzstd's error name. In CI the module must have been built (scripts/build-native.sh).
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { CorruptDataError } from '../src/compress/errors.js';
import { ZstdAheadPool, zstdFramePlan } from '../src/compress/zstd-ahead.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

function frame(plain: Buffer): Buffer {
  const cctx = new zstd.CCtx();
  cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  const out = Buffer.alloc(zstd.compressBound(plain.length));
  return out.subarray(0, cctx.compress(out, plain, 3));
}

const plainOf = (i: number): Buffer => Buffer.from(Array.from({ length: 4000 + i * 97 }, (_, k) => `${(k * (i + 3)) % 1013},`).join(''));

const available = ZstdAheadPool.create() !== undefined;
if (!available && process.env.CI) throw new Error('native/build/zstd-ahead.node or libzstd.so.1 is missing in CI');
if (!available) console.warn('SKIPPING zstd-ahead pool tests: native/build/zstd-ahead.node or libzstd.so.1 is missing');

describe.skipIf(!available)('native zstd-ahead pool', () => {
  it('decodes every slot correctly, finished in any order', () => {
    const pool = ZstdAheadPool.create()!;
    try {
      for (let round = 0; round < 20; round++) {
        const plains = Array.from({ length: pool.slots }, (_, i) => plainOf(i + round));
        const outs = plains.map((p) => Buffer.alloc(p.length + 100, 0xee));
        plains.forEach((p, slot) => pool.submit(slot, frame(p), outs[slot]!));
        const order = round % 2 === 0 ? plains.map((_, i) => i) : plains.map((_, i) => plains.length - 1 - i);
        for (const slot of order) {
          expect(pool.finish(slot)).toBe(plains[slot]!.length);
          expect(outs[slot]!.subarray(0, plains[slot]!.length).equals(plains[slot]!)).toBe(true);
        }
      }
      const { self, waited, done } = pool.stats();
      expect(self + waited + done).toBe(20 * pool.slots);
    } finally {
      pool.close();
    }
  });

  it('checks frames without an output buffer (submitCheck): sizes, corrupt frames, a limit it refuses', () => {
    const pool = ZstdAheadPool.create()!;
    try {
      for (let round = 0; round < 10; round++) {
        const plains = Array.from({ length: pool.slots }, (_, i) => plainOf(i + round));
        const frames = plains.map(frame);
        // Every other frame corrupted in its last block (its checksum no longer matches).
        frames.forEach((f, slot) => { if (slot % 2 === 1) f[f.length - 6]! ^= 0x55; });
        frames.forEach((f, slot) => pool.submitCheck(slot, f, 128 * 1024));
        for (let slot = pool.slots - 1; slot >= 0; slot--) {
          if (slot % 2 === 1) expect(() => pool.finish(slot)).toThrow(CorruptDataError);
          else expect(pool.finish(slot)).toBe(plains[slot]!.length);
        }
      }
      // A frame that decodes to more than the size given is an error, like a too small output.
      const big = plainOf(40);
      pool.submitCheck(0, frame(big), big.length - 1);
      expect(() => pool.finish(0)).toThrow(CorruptDataError);
      expect(() => pool.submitCheck(0, frame(big), 128 * 1024 + 1)).toThrow(/outLen <= 131072/);
    } finally {
      pool.close();
    }
  });

  it('refuses a slot out of range, a finish without submit, a busy slot and a closed pool', () => {
    const pool = ZstdAheadPool.create()!;
    const f = frame(plainOf(1));
    const out = Buffer.alloc(plainOf(1).length);
    expect(() => pool.submit(pool.slots, f, out)).toThrow(RangeError);
    expect(() => pool.submit(-1, f, out)).toThrow(/slot out of range/);
    expect(() => pool.finish(pool.slots)).toThrow(/slot out of range/);
    expect(() => pool.finish(0)).toThrow(/nothing submitted in this slot/);
    pool.submit(0, f, out);
    expect(() => pool.submit(0, f, out)).toThrow(/slot in use/);
    expect(pool.finish(0)).toBe(plainOf(1).length);
    expect(() => pool.finish(0)).toThrow(/nothing submitted in this slot/);
    pool.submit(1, f, out); // dropped by close()
    pool.close();
    expect(() => pool.submit(0, f, out)).toThrow(/already closed/);
    expect(() => pool.finish(1)).toThrow(/already closed/);
  });

  it('reports a corrupt frame with libzstd\'s error name, and goes on decoding', () => {
    const pool = ZstdAheadPool.create()!;
    try {
      const good = plainOf(2);
      const bad = Buffer.from(frame(good));
      for (let i = 12; i < bad.length - 4; i++) bad[i]! ^= 0x5a;
      pool.submit(3, bad, Buffer.alloc(good.length));
      pool.submit(4, frame(good), Buffer.alloc(good.length));
      let error: unknown;
      try {
        pool.finish(3);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CorruptDataError);
      expect((error as Error).message).toMatch(/^zstd: [A-Z][a-z]/);
      expect(pool.finish(4)).toBe(good.length);
    } finally {
      pool.close();
    }
  });

  it('zstdFramePlan: the frame to decode ahead, or undefined when it needs the synchronous decoder', () => {
    const p = plainOf(0);
    const f = frame(p);
    const padded = Buffer.concat([f, Buffer.alloc(4096 - (f.length % 4096))]);
    expect(zstdFramePlan(padded, p.length)!.length).toBe(f.length);
    expect(zstdFramePlan(padded, p.length - 1)).toBeUndefined(); // declares more than fits
    expect(() => zstdFramePlan(Buffer.alloc(4096, 0x55), 4096)).toThrow(CorruptDataError);
  });
});

describe.skipIf(!available)('one frame on the calling thread, without zstd-napi (frameSize, contentSize, decode)', () => {
  const native = createRequire(import.meta.url)('../native/build/zstd-ahead.node') as {
    frameSize(data: Buffer): number | string;
    contentSize(frame: Buffer): number | string;
    decode(frame: Buffer, out: Buffer): number | string;
  };

  it('agrees with zstd-napi on frame length, declared size and content, padded as btrfs pads', () => {
    for (let i = 0; i < 40; i++) {
      const plain = plainOf(i);
      const f = frame(plain);
      const padded = Buffer.concat([f, Buffer.alloc(4096 - (f.length % 4096))]);
      expect(native.frameSize(padded)).toBe(zstd.findFrameCompressedSize(padded));
      expect(native.contentSize(f)).toBe(zstd.getFrameContentSize(f));
      const out = Buffer.alloc(plain.length);
      expect(native.decode(f, out)).toBe(plain.length);
      expect(out.equals(plain)).toBe(true);
    }
  });

  it('a frame without a declared size: -1; bad bytes: libzstd\'s error name, not an exception', () => {
    const cctx = new zstd.CCtx();
    cctx.setParameter(zstd.CParameter.contentSizeFlag, 0);
    const plain = plainOf(3);
    const out = Buffer.alloc(zstd.compressBound(plain.length));
    cctx.reset(zstd.ResetDirective.sessionOnly);
    const [, produced] = cctx.compressStream2(out, plain, zstd.EndDirective.end);
    const unsized = out.subarray(0, produced);
    expect(native.frameSize(unsized)).toBe(unsized.length);
    expect(native.contentSize(unsized)).toBe(-1);
    expect(native.frameSize(Buffer.alloc(64, 0x55))).toMatch(/^[A-Z][a-z]/);
    expect(native.contentSize(Buffer.alloc(64, 0x55))).toMatch(/^[A-Z][a-z]/);
    const corrupt = Buffer.from(frame(plain));
    corrupt.fill(0x5a, 12, 40);
    const result = native.decode(corrupt, Buffer.alloc(plain.length));
    expect(typeof result).toBe('string');
    expect(result).toMatch(/^[A-Z][a-z]/);
  });

  it('decoding zstd extents never loads zstd-napi when the module is there (its 1.6 MiB of RSS)', () => {
    const script = `
      import { decodeZstd } from ${JSON.stringify(new URL('../dist/compress/zstd.js', import.meta.url).href)};
      import { createRequire } from 'node:module';
      const frame = Buffer.from(process.argv[1], 'base64');
      const out = Buffer.alloc(Number(process.argv[2]));
      const n = decodeZstd(Buffer.concat([frame, Buffer.alloc(100)]), out);
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('zstd-napi'));
      console.log(JSON.stringify({ n, loaded }));`;
    const plain = plainOf(7);
    const decodeIn = (env: NodeJS.ProcessEnv): { n: number; loaded: string[] } => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, frame(plain).toString('base64'), String(plain.length)],
        { env: { ...process.env, ...env } });
      expect(r.status, r.stderr.toString()).toBe(0);
      return JSON.parse(r.stdout.toString()) as { n: number; loaded: string[] };
    };
    const result = decodeIn({});
    expect(result.n).toBe(plain.length);
    expect(result.loaded).toEqual([]);
    // The control, and the switch: BTRFS_TS_NO_NATIVE_ZSTD=1 decodes with zstd-napi.
    const switched = decodeIn({ BTRFS_TS_NO_NATIVE_ZSTD: '1' });
    expect(switched.n).toBe(plain.length);
    expect(switched.loaded.some((path) => path.includes('zstd-napi'))).toBe(true);
  });
});
