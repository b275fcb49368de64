// The C-style escaping `btrfs receive --dump` applies to paths: \a \b \e \f \n \r \t \v, "\ " for a
// space, "\\" for a backslash, and \ooo (3 octal digits) for any other byte that is not printable ASCII
// (C locale isprint: 0x20..0x7e), which includes every byte >= 0x80.
import type { OutBuffer } from './out-buffer.js';
import { ViewCache, mayNeedEscape } from '../stream/word-scan.js';

/** Escaped form per byte value: ESC_LEN[b] bytes at ESC_BYTES[4b..]. Length 1 = the byte itself. */
const ESC_LEN = new Uint8Array(256);
const ESC_BYTES = new Uint8Array(1024);
{
  const named: Record<number, string> = { 7: 'a', 8: 'b', 27: 'e', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v', 32: ' ', 92: '\\' };
  for (let b = 0; b < 256; b++) {
    let text: string;
    if (named[b] !== undefined) text = '\\' + named[b];
    else if (b < 0x20 || b > 0x7e) text = '\\' + b.toString(8).padStart(3, '0');
    else text = String.fromCharCode(b);
    ESC_LEN[b] = text.length;
    for (let i = 0; i < text.length; i++) ESC_BYTES[4 * b + i] = text.charCodeAt(i);
  }
}

const sourceViews = new ViewCache();
const outputViews = new ViewCache();
/** ESC_BYTES as a DataView, to copy a byte's escaped form as one word (ESC_LEN[b] bytes of it count). */
const ESCAPES = new DataView(ESC_BYTES.buffer);

/**
 * Escape `src[start..end)` into `buf` at `at` (room for 4 bytes per input byte must exist); returns
 * the new end. Printed width = bytes written, since every output byte is one character.
 * Four bytes at a time while none of them needs escaping (word-scan.ts), else one byte, whose escaped form
 * is written as a whole word: the same few operations whether the byte needs escaping or not, so no branch
 * goes unused until a rare byte comes (which would throw V8's optimized code away).
 */
export function escapeInto(buf: Buffer, at: number, src: Buffer, start: number, end: number): number {
  sourceViews.select(src);
  outputViews.select(buf);
  const from = sourceViews.view;
  const to = outputViews.view;
  const shift = sourceViews.shift; // src[i] is from's byte shift + i
  const base = outputViews.shift; // buf[p] is to's byte base + p
  let i = shift + start;
  const stop = shift + end;
  let q = base + at;
  while (i < stop) {
    if (i + 4 <= stop) {
      const word = from.getInt32(i, true);
      if (mayNeedEscape(word) === 0) {
        to.setInt32(q, word, true);
        q += 4;
        i += 4;
        continue;
      }
    }
    const b = from.getUint8(i++);
    to.setInt32(q, ESCAPES.getInt32(4 * b, true), true);
    q += ESC_LEN[b]!;
  }
  return q - base;
}

/** Append `src` escaped; returns the number of characters printed (what progs pads against). */
export function writeEscaped(out: OutBuffer, src: Buffer): number {
  const { buf, at } = out.reserve(src.length * 4);
  const end = escapeInto(buf, at, src, 0, src.length);
  out.commit(end);
  return end - at;
}

/** The escaped form as a string (tests, messages). */
export function escapeToString(src: Buffer): string {
  const buf = Buffer.allocUnsafe(src.length * 4);
  return buf.toString('latin1', 0, escapeInto(buf, 0, src, 0, src.length));
}
