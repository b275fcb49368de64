// The four-bytes-at-a-time scans (src/stream/word-scan.ts) against byte-by-byte references, on bytes
// drawn near every boundary the word tests compute (0x00, 0x20/0x21, 0x5c, 0x7e/0x7f, 0x80, 0xff), at
// every alignment, inside buffers that are views into larger ones.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ViewCache, indexOfZero, mayHoldZero, mayNeedEscape } from '../src/stream/word-scan.js';
import { escapeInto } from '../src/dump/escape.js';

const EDGE_BYTES = [0x00, 0x01, 0x07, 0x1f, 0x20, 0x21, 0x30, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0x81, 0xa0, 0xdc, 0xfe, 0xff];
const edgeByte = fc.oneof(fc.constantFrom(...EDGE_BYTES), fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0, max: 255 }));

/** Bytes, placed at an offset inside a larger pooled-looking buffer so that byteOffset is not 0. */
const placedBytes = fc.tuple(fc.array(edgeByte, { maxLength: 80 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 }))
  .map(([bytes, before, after]) => {
    const backing = Buffer.alloc(before + bytes.length + after, 0x41);
    Buffer.from(bytes).copy(backing, before);
    return { buf: backing.subarray(before), start: 0, end: bytes.length, bytes };
  })
  .chain((p) => fc.tuple(fc.integer({ min: 0, max: p.end }), fc.integer({ min: 0, max: p.end }))
    .map(([a, b]) => ({ ...p, start: Math.min(a, b), end: Math.max(a, b) })));

function isPrintableUnescaped(b: number): boolean {
  return b > 0x20 && b < 0x7f && b !== 0x5c;
}

/** The byte-by-byte escaping the dump printed before word-scan (C escapes, "\ ", "\\", \ooo). */
function referenceEscape(src: Uint8Array): string {
  const named: Record<number, string> = { 7: 'a', 8: 'b', 27: 'e', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v', 32: ' ', 92: '\\' };
  let s = '';
  for (const b of src) {
    if (named[b] !== undefined) s += '\\' + named[b];
    else if (b < 0x20 || b > 0x7e) s += '\\' + b.toString(8).padStart(3, '0');
    else s += String.fromCharCode(b);
  }
  return s;
}

describe('word tests', () => {
  it('mayHoldZero flags every word with a zero byte and exactly those', () => {
    fc.assert(fc.property(fc.array(edgeByte, { minLength: 4, maxLength: 4 }), (bytes) => {
      const word = Buffer.from(bytes).readInt32LE(0);
      expect(mayHoldZero(word) !== 0).toBe(bytes.includes(0));
    }), { numRuns: 5000 });
  });

  it('mayNeedEscape flags every word with a byte to escape, and an all-plain word never', () => {
    fc.assert(fc.property(fc.array(edgeByte, { minLength: 4, maxLength: 4 }), (bytes) => {
      const word = Buffer.from(bytes).readInt32LE(0);
      expect(mayNeedEscape(word) !== 0).toBe(!bytes.every(isPrintableUnescaped));
    }), { numRuns: 5000 });
  });
});

describe('indexOfZero', () => {
  it('finds the first zero byte as a byte loop does, at any alignment', () => {
    fc.assert(fc.property(placedBytes, ({ buf, start, end }) => {
      let expected = -1;
      for (let i = start; i < end; i++) if (buf[i] === 0) { expected = i; break; }
      expect(indexOfZero(buf, start, end)).toBe(expected);
    }), { numRuns: 3000 });
  });

  it('never reads past end (a zero just after the range is not found)', () => {
    const buf = Buffer.from('abcdefghijklmnop\0', 'latin1');
    for (let end = 0; end <= 16; end++) expect(indexOfZero(buf, 0, end)).toBe(-1);
    expect(indexOfZero(buf, 0, 17)).toBe(16);
  });
});

describe('escapeInto', () => {
  it('escapes any bytes as the byte-by-byte reference does, whatever the offsets', () => {
    fc.assert(fc.property(placedBytes, fc.integer({ min: 0, max: 5 }), ({ buf, start, end }, at) => {
      // The output sits inside a larger buffer: nothing outside its room (4 bytes per input byte) changes.
      const room = 4 * (end - start);
      const backing = Buffer.alloc(3 + at + room + 8, 0xee);
      const out = backing.subarray(3, 3 + at + room);
      const stop = escapeInto(out, at, buf, start, end);
      expect(out.toString('latin1', at, stop)).toBe(referenceEscape(buf.subarray(start, end)));
      expect(backing.subarray(0, 3 + at).every((b) => b === 0xee)).toBe(true);
      expect(backing.subarray(3 + at + room).every((b) => b === 0xee)).toBe(true);
    }), { numRuns: 3000 });
  });

  it('alternating between buffers keeps each view right (the caches hold one backing buffer each)', () => {
    const a = Buffer.from('long/plain/path/one', 'latin1');
    const b = Buffer.from('another path\twith escapes', 'latin1');
    const out1 = Buffer.alloc(200);
    const out2 = Buffer.alloc(200);
    for (let i = 0; i < 3; i++) {
      expect(out1.toString('latin1', 0, escapeInto(out1, 0, a, 0, a.length))).toBe('long/plain/path/one');
      expect(out2.toString('latin1', 0, escapeInto(out2, 0, b, 0, b.length))).toBe('another\\ path\\twith\\ escapes');
    }
  });
});

describe('ViewCache', () => {
  /** The selected buffer's bytes as the cache's view and shift describe them. */
  function viewed(cache: ViewCache, buf: Uint8Array): number[] {
    cache.select(buf);
    return Array.from({ length: buf.length }, (_, i) => cache.view.getUint8(cache.shift + i));
  }

  it('describes each selected buffer: subarrays of one backing store, the same one again, another store', () => {
    const cache = new ViewCache();
    const window = Buffer.alloc(16, '0123456789abcdef', 'latin1');
    const first = window.subarray(3, 7);
    const second = window.subarray(10, 16);
    const other = Buffer.alloc(3, 'zyx', 'latin1'); // not from Buffer's shared pool: a store of its own
    expect(other.buffer).not.toBe(window.buffer);
    for (let round = 0; round < 2; round++) {
      expect(viewed(cache, first)).toEqual([...first]);
      expect(viewed(cache, first)).toEqual([...first]);
      expect(viewed(cache, second)).toEqual([...second]);
      expect(viewed(cache, other)).toEqual([...other]);
      expect(viewed(cache, window)).toEqual([...window]);
    }
  });

  it('follows a small typed array whose bytes V8 keeps on its heap until .buffer is asked for', () => {
    const cache = new ViewCache();
    const small = new Uint8Array([9, 8, 7]);
    expect(viewed(cache, small)).toEqual([9, 8, 7]);
    small[1] = 42; // written after the cache took its view: the view must see it
    expect(viewed(cache, small)).toEqual([9, 42, 7]);
    expect(cache.view.getUint8(cache.shift + 1)).toBe(42);
  });
});
