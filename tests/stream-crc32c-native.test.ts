// The native CRC32C (native/crc32c.c + its Node-API face, three interleaved crc32 chains joined by carry-less multiplies)
// against @node-rs/crc32 and a plain bitwise reference, on random lengths, offsets and start values,
// and the module's choice between them (src/stream/crc32c.ts). In CI (CI=true) the native library must
// have been built (`npm ci` runs `prepare` → scripts/build-native.sh); elsewhere its tests are skipped
// with the reason printed when it is missing.
import { describe, it, expect, vi, afterEach } from 'vitest';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import {
  NATIVE_CRC32C_PATH,
  streamCrc32c,
  streamCrc32cImplementation,
  streamCrc32cUpdate,
} from '../src/stream/crc32c.js';

const require = createRequire(import.meta.url);
const libraryCrc32c = (require('@node-rs/crc32') as typeof import('@node-rs/crc32')).crc32c;

/** Raw CRC32C, one bit at a time: the definition (reflected polynomial 0x82f63b78, no inversions). */
function referenceCrc32c(crc: number, bytes: Uint8Array): number {
  let c = crc >>> 0;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

/** @node-rs/crc32 turned into the raw form (it inverts before and after). */
function libraryRaw(crc: number, bytes: Uint8Array): number {
  return ~libraryCrc32c(bytes as Buffer, ~crc >>> 0) >>> 0;
}

type NativeFn = (crc: number, buf: Uint8Array) => number;

/** The native function loaded directly (not through the module's choice), or why it cannot be. */
function loadNative(): { fn?: NativeFn; skip?: string } {
  if (process.arch !== 'x64' || process.platform !== 'linux') return { skip: `x86-64 Linux only (${process.platform}/${process.arch})` };
  if (!existsSync(NATIVE_CRC32C_PATH)) {
    if (process.env.CI) throw new Error(`the native CRC32C was not built in CI: ${NATIVE_CRC32C_PATH} is missing (scripts/build-native.sh)`);
    return { skip: `${NATIVE_CRC32C_PATH} not built (run npm run build with gcc and Node's headers installed)` };
  }
  const addon = require(NATIVE_CRC32C_PATH) as { update?: NativeFn };
  if (typeof addon.update !== 'function') return { skip: 'this CPU lacks SSE4.2 or PCLMULQDQ' };
  return { fn: addon.update };
}

const native = loadNative();
if (native.skip) console.warn(`SKIPPING native CRC32C tests: ${native.skip}`);
const nativeRaw = (crc: number, bytes: Uint8Array): number => native.fn!(crc >>> 0, bytes);

/** Deterministic pseudo-random bytes (xorshift32), placed at `offset` in a larger buffer. */
function bytesAt(seed: number, length: number, offset: number): Buffer {
  const whole = Buffer.alloc(offset + length + 7);
  let s = seed | 1;
  for (let i = 0; i < whole.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    whole[i] = s & 0xff;
  }
  return whole.subarray(offset, offset + length);
}

// Lengths at and around the native code's block edges (3 × 8192 and 3 × 256 bytes per chunk).
const edgeLength = fc
  .tuple(fc.constantFrom(0, 8, 768, 2 * 768, 24576, 2 * 24576, 24576 + 768, 12 * 24576), fc.integer({ min: -9, max: 9 }))
  .map(([edge, delta]) => Math.max(0, edge + delta));
const length = fc.oneof(fc.integer({ min: 0, max: 300000 }), fc.integer({ min: 0, max: 2000 }), edgeLength);
const uint32 = fc.integer({ min: 0, max: 0xffffffff });

describe('CRC32C reference', () => {
  it('gives the standard CRC-32C check value for "123456789" when used with inversions', () => {
    const check = Buffer.from('123456789');
    expect(~referenceCrc32c(0xffffffff, check) >>> 0).toBe(0xe3069283);
    expect(libraryRaw(0, check)).toBe(referenceCrc32c(0, check));
  });
});

describe.skipIf(!native.fn)('native CRC32C (native/crc32c.c)', () => {
  it('gives the standard check value', () => {
    expect(~nativeRaw(0xffffffff, Buffer.from('123456789')) >>> 0).toBe(0xe3069283);
  });

  it('equals @node-rs/crc32 and the bitwise reference for random lengths 0..300000, offsets and start values', () => {
    fc.assert(
      fc.property(uint32, length, fc.integer({ min: 0, max: 63 }), uint32, (seed, len, offset, start) => {
        const bytes = bytesAt(seed, len, offset);
        const expected = referenceCrc32c(start, bytes);
        expect(libraryRaw(start, bytes)).toBe(expected);
        expect(nativeRaw(start, bytes)).toBe(expected);
      }),
      { numRuns: 120 },
    );
  });

  it('chained updates over pieces equal one update over the whole', () => {
    fc.assert(
      fc.property(uint32, length, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), uint32,
        (seed, len, cutFractions, start) => {
          const bytes = bytesAt(seed, len, seed % 16);
          const cuts = [0, ...cutFractions.map((f) => Math.floor(f * len)).sort((a, b) => a - b), len];
          let crc = start;
          for (let i = 1; i < cuts.length; i++) crc = nativeRaw(crc, bytes.subarray(cuts[i - 1], cuts[i]));
          expect(crc).toBe(libraryRaw(start, bytes));
        }),
      { numRuns: 100 },
    );
  });

  it('reads nothing outside the bytes it is given (neighbours changed, same CRC)', () => {
    const whole = bytesAt(7, 100000, 0);
    const view = whole.subarray(13, 13 + 77777);
    const before = nativeRaw(0, view);
    whole.fill(0xa5, 0, 13);
    whole.fill(0x5a, 13 + 77777);
    expect(nativeRaw(0, view)).toBe(before);
    expect(before).toBe(libraryRaw(0, view));
  });

  it('is what the stream code uses, unless disabled', () => {
    expect(streamCrc32cImplementation()).toBe('native');
  });
});

describe('streamCrc32c / streamCrc32cUpdate (whichever implementation is loaded)', () => {
  afterEach(() => {
    delete process.env.BTRFS_TS_NO_NATIVE_CRC;
    vi.resetModules();
  });

  it('match the reference, whole and chained', () => {
    fc.assert(
      fc.property(uint32, length, fc.integer({ min: 0, max: 15 }), fc.nat(), (seed, len, offset, cutAt) => {
        const bytes = bytesAt(seed, len, offset);
        const expected = referenceCrc32c(0, bytes);
        expect(streamCrc32c(bytes)).toBe(expected);
        const cut = len === 0 ? 0 : cutAt % len;
        expect(streamCrc32cUpdate(streamCrc32c(bytes.subarray(0, cut)), bytes.subarray(cut))).toBe(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('fall back to @node-rs/crc32 with the same values when the native library is not used', async () => {
    process.env.BTRFS_TS_NO_NATIVE_CRC = '1';
    vi.resetModules();
    const fresh = await import('../src/stream/crc32c.js');
    expect(fresh.streamCrc32cImplementation()).toMatch(/disabled/);
    const bytes = bytesAt(99, 50000, 3);
    expect(fresh.streamCrc32c(bytes)).toBe(referenceCrc32c(0, bytes));
    expect(fresh.streamCrc32cUpdate(0x12345678, bytes)).toBe(referenceCrc32c(0x12345678, bytes));
  });
});
