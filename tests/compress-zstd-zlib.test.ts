// zstd and zlib decoders on real kernel extents (fixtures from `btrfs send --compressed-data`),
// plus padding, truncation, corruption and over-long output.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import {
  CorruptDataError, EncodedExtentError, MAX_UNENCODED_LEN, decodeExtent, decodeSlice, zstdFrameSize,
} from '../src/compress/index.js';
import { Compression } from '../src/stream/protocol.js';
import { decodeOrCorrupt } from './helpers/v2-extents.js';

interface FixtureExtent {
  path: string; offset: number; unencodedFileLen: number; unencodedLen: number; unencodedOffset: number;
  compression: number; sliceSha256: string; data: string;
}
const load = (codec: string) => (JSON.parse(readFileSync(new URL(`./fixtures/v2-extents/${codec}.json`, import.meta.url), 'utf8')) as { extents: FixtureExtent[] }).extents;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');


describe.each([
  ['zstd', Compression.ZSTD],
  ['zlib', Compression.ZLIB],
])('%s', (codec, compression) => {
  const extents = load(codec);

  it('decodes every real kernel extent (fixtures) to the source bytes, incl. unencoded_offset ≠ 0', () => {
    expect(extents.some((e) => e.unencodedOffset > 0)).toBe(true);
    expect(extents.some((e) => e.unencodedLen % 4096 !== 0)).toBe(true); // an inline extent
    for (const e of extents) {
      expect(e.compression).toBe(compression);
      const slice = decodeSlice({ ...e, data: Buffer.from(e.data, 'base64') });
      expect(sha256(slice), `${e.path}@${e.offset}`).toBe(e.sliceSha256);
    }
  });

  it('zero-fills past the codec output (37856 decoded bytes in a 40960-byte extent)', () => {
    const e = extents.find((x) => x.path === 'text-37856')!;
    const whole = decodeExtent({ compression, data: Buffer.from(e.data, 'base64'), unencodedLen: e.unencodedLen });
    expect(whole.length).toBe(40960);
    expect(whole.subarray(37856).every((b) => b === 0)).toBe(true);
    expect(whole.subarray(37856 - 100, 37856).some((b) => b !== 0)).toBe(true);
  });

  it('truncates output longer than UNENCODED_LEN instead of failing', () => {
    const e = extents.find((x) => x.path === 'text-37856')!;
    const data = Buffer.from(e.data, 'base64');
    const full = decodeExtent({ compression, data, unencodedLen: 40960 });
    const short = decodeExtent({ compression, data, unencodedLen: 1500 });
    expect(short.equals(full.subarray(0, 1500))).toBe(true);
  });

  it('every truncation inside the stream is a CorruptDataError', () => {
    const e = extents.find((x) => x.path === 'text-37856')!;
    const data = Buffer.from(e.data, 'base64');
    const end = codec === 'zstd' ? zstdFrameSize(data) : data.length - [...data].reverse().findIndex((b) => b !== 0);
    for (let cut = 0; cut < end; cut += 3) {
      expect(decodeOrCorrupt(() => decodeExtent({ compression, data: data.subarray(0, cut), unencodedLen: e.unencodedLen })), `cut ${cut}`).toBe('corrupt');
    }
  });

  it('random corruption: CorruptDataError or a correctly sized result, nothing else', () => {
    const e = extents.find((x) => x.path === 'text-37856')!;
    const data = Buffer.from(e.data, 'base64');
    let corrupt = 0;
    fc.assert(fc.property(fc.nat(399), fc.integer({ min: 1, max: 255 }), (at, xor) => {
      const bad = Buffer.from(data);
      bad[at]! ^= xor;
      let result: Buffer | undefined;
      if (decodeOrCorrupt(() => (result = decodeExtent({ compression, data: bad, unencodedLen: e.unencodedLen }))) === 'corrupt') corrupt++;
      else expect(result!.length).toBe(e.unencodedLen);
    }), { numRuns: 800 });
    expect(corrupt).toBeGreaterThan(0);
  });

  it('garbage payloads are CorruptDataError', () => {
    for (const data of [Buffer.alloc(0), Buffer.alloc(4096), Buffer.from('not compressed at all')]) {
      expect(decodeOrCorrupt(() => decodeExtent({ compression, data, unencodedLen: 4096 }))).toBe('corrupt');
    }
  });
});

describe('zstd specifics', () => {
  it('decodes exactly one frame and ignores what follows (padding or a second frame)', () => {
    const a = zstdCompress(Buffer.from('first frame '.repeat(100)));
    const b = zstdCompress(Buffer.from('SECOND'));
    expect(zstdFrameSize(Buffer.concat([a, Buffer.alloc(3000)]))).toBe(a.length);
    const out = decodeExtent({ compression: Compression.ZSTD, data: Buffer.concat([a, b]), unencodedLen: 4096 });
    expect(out.subarray(0, 1200).toString()).toBe('first frame '.repeat(100));
    expect(out.subarray(1200).every((x) => x === 0)).toBe(true);
  });

  it('truncates a frame with no declared size, or a larger one, to UNENCODED_LEN', () => {
    const raw = Buffer.from('abcdefghij'.repeat(10000));
    const frame = zstdCompress(raw); // content size declared: 100000 > 4096 → streaming path
    const out = decodeExtent({ compression: Compression.ZSTD, data: frame, unencodedLen: 4096 });
    expect(out.equals(raw.subarray(0, 4096))).toBe(true);
  });

  it('rejects a bad magic', () => {
    expect(() => decodeExtent({ compression: Compression.ZSTD, data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), unencodedLen: 10 })).toThrow(/bad frame magic/);
  });
});

describe('zlib specifics', () => {
  it('tolerates zero padding and rejects a bad Adler-32', () => {
    const raw = Buffer.from('zlib data '.repeat(500));
    const stream = deflateSync(raw);
    const padded = Buffer.concat([stream, Buffer.alloc(4096 - stream.length)]);
    expect(decodeExtent({ compression: Compression.ZLIB, data: padded, unencodedLen: 8192 }).subarray(0, raw.length).equals(raw)).toBe(true);
    const bad = Buffer.from(padded);
    bad[stream.length - 1]! ^= 1;
    expect(() => decodeExtent({ compression: Compression.ZLIB, data: bad, unencodedLen: 8192 })).toThrow(CorruptDataError);
  });

  it('refuses a stream that inflates beyond the hard limit without allocating it', () => {
    const bomb = deflateSync(Buffer.alloc(MAX_UNENCODED_LEN + 4096));
    expect(() => decodeExtent({ compression: Compression.ZLIB, data: bomb, unencodedLen: 4096 })).toThrow(/inflates to more than/);
  });
});

describe('extent fields', () => {
  it('refuses an UNENCODED_LEN above the cap before allocating, and unknown codecs', () => {
    expect(() => decodeExtent({ compression: Compression.ZSTD, data: Buffer.alloc(8), unencodedLen: 2 ** 40 })).toThrow(EncodedExtentError);
    expect(() => decodeExtent({ compression: 9, data: Buffer.alloc(8), unencodedLen: 10 })).toThrow(/unknown compression: 9/);
    expect(() => decodeExtent({ compression: Compression.NONE, data: Buffer.alloc(8), unencodedLen: 10 })).toThrow(/unknown compression: 0/);
  });

  it('refuses a slice outside the extent', () => {
    const data = zstdCompress(Buffer.alloc(4096, 1));
    expect(() => decodeSlice({ compression: Compression.ZSTD, data, unencodedLen: 4096, unencodedOffset: 4000, unencodedFileLen: 100 }))
      .toThrow(/outside the 4096-byte unencoded extent/);
    expect(decodeSlice({ compression: Compression.ZSTD, data, unencodedLen: 4096, unencodedOffset: 4000, unencodedFileLen: 96 }).length).toBe(96);
  });
});
