// The dump's output buffer: fixed texts and time texts copied out a word (4 bytes) at a time (every text
// arrives whole and nothing after it survives the overcopy, at any output position and across flushes;
// time texts that share a cache slot never show each other's text), and the chunks it hands on (a small
// first one, then whole buffers; items larger than either).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { OutBuffer } from '../src/dump/out-buffer.js';
import { pieceText, textTable } from '../src/dump/text-table.js';
import { TimeTexts } from '../src/dump/time-texts.js';
import { formatLocalTime, loadZone } from '../src/dump/localtime.js';

const TEXTS = { a: 'x', b: 'offset=', c: ', unencoded_file_len=', d: 'abcd', e: '', f: 'title16_________' };
const table = textTable(TEXTS);
type Key = keyof typeof TEXTS;

/** Output collected from an OutBuffer with a small chunk size (so texts land across flushes). */
function collect(chunkSize: number, write: (out: OutBuffer) => void): string {
  const chunks: Buffer[] = [];
  const out = new OutBuffer((c) => chunks.push(c), chunkSize);
  write(out);
  out.flush();
  return Buffer.concat(chunks).toString('latin1');
}

describe('text table', () => {
  it('names each text by a piece that reads back as the text', () => {
    for (const k of Object.keys(TEXTS) as Key[]) expect(pieceText(table.view, table.piece[k])).toBe(TEXTS[k]);
  });

  it('OutBuffer.text writes exactly the texts, mixed with other writes, at any position and chunk size', () => {
    const keys = Object.keys(TEXTS) as Key[];
    const step = fc.oneof(
      fc.constantFrom(...keys).map((k) => ({ kind: 'text' as const, k })),
      fc.integer({ min: 0, max: 9 }).map((n) => ({ kind: 'spaces' as const, n })),
      fc.integer({ min: 0, max: 1e6 }).map((n) => ({ kind: 'decimal' as const, n })),
      fc.integer({ min: 0x21, max: 0x7e }).map((b) => ({ kind: 'byte' as const, b })),
    );
    fc.assert(fc.property(fc.array(step, { maxLength: 40 }), fc.integer({ min: 24, max: 64 }), (steps, chunk) => {
      let want = '';
      const got = collect(chunk, (out) => {
        for (const s of steps) {
          if (s.kind === 'text') { out.text(table.view, table.piece[s.k]); want += TEXTS[s.k]; }
          else if (s.kind === 'spaces') { out.spaces(s.n); want += ' '.repeat(s.n); }
          else if (s.kind === 'decimal') { out.decimal(s.n); want += String(s.n); }
          else { out.byte(s.b); want += String.fromCharCode(s.b); }
        }
      });
      expect(got).toBe(want);
    }), { numRuns: 500 });
  });

  it('refuses a text too long for a piece', () => {
    expect(() => textTable({ long: 'x'.repeat(256) })).toThrow(RangeError);
  });
});

describe('time texts', () => {
  const zone = loadZone('UTC');

  it('each second shows its own text, also when seconds share a slot, and for extreme years', () => {
    const times = new TimeTexts(zone);
    const base = 1_700_000_000;
    const seconds = [base, base + 1024, base - 7 * 1024, base, -1, 0, 2 ** 53 - 1, -(2 ** 53) + 1, base + 1024, -1025];
    for (const sec of seconds) {
      const text = collect(64, (out) => out.text(times.view, times.piece(sec)));
      expect(text).toBe(formatLocalTime(sec, zone));
    }
  });

  it('matches formatLocalTime for random seconds in a local zone with DST', () => {
    const berlin = loadZone('Europe/Berlin');
    const times = new TimeTexts(berlin);
    fc.assert(fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), (sec) => {
      expect(collect(64, (out) => out.text(times.view, times.piece(sec)))).toBe(formatLocalTime(sec, berlin));
    }), { numRuns: 2000 });
  });
});

describe('chunks', () => {
  it('the first chunk is at most 64 KiB, the next ones fill the buffer; nothing is lost or reordered', () => {
    const chunks: Buffer[] = [];
    const out = new OutBuffer((c) => chunks.push(c));
    const line = Buffer.from('0123456789abcdef'.repeat(6) + '\n');
    for (let i = 0; i < 40_000; i++) out.bytes(line);
    out.flush();
    expect(chunks[0]!.length).toBeLessThanOrEqual(64 * 1024);
    expect(chunks[0]!.length).toBeGreaterThan(64 * 1024 - line.length);
    expect(chunks[1]!.length).toBeGreaterThan(1024 * 1024 - line.length);
    expect(Buffer.concat(chunks).equals(Buffer.concat(Array.from({ length: 40_000 }, () => line)))).toBe(true);
  });

  it('an item larger than the first chunk, or than the buffer, arrives whole', () => {
    const chunks: Buffer[] = [];
    const out = new OutBuffer((c) => chunks.push(c), 128 * 1024);
    const big = Buffer.alloc(100 * 1024, 0x61);
    const huge = Buffer.alloc(300 * 1024, 0x62);
    out.byte(0x0a);
    out.bytes(big);
    out.bytes(huge);
    out.text(table.view, table.piece.b);
    out.flush();
    expect(Buffer.concat(chunks).toString('latin1')).toBe('\n' + big.toString('latin1') + huge.toString('latin1') + 'offset=');
  });
});
