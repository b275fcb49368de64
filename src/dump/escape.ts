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

/**
 * Escape `src[start..end)` into `buf` at `at` (room for 4 bytes per input byte must exist); returns
 * the new end. Printed width = bytes written, since every output byte is one character.
 * Four bytes at a time while none of them needs escaping (word-scan.ts), then byte by byte.
 */
export function escapeInto(buf: Buffer, at: number, src: Buffer, start = 0, end = src.length): number {
  let p = at;
  let i = start;
  if (end - start >= 8) {
    const from = sourceViews.of(src);
    const to = outputViews.of(buf);
    for (; i + 4 <= end; i += 4) {
      const word = from.getInt32(i, true);
      if (mayNeedEscape(word)) {
        p = escapeBytes(buf, p, src, i, i + 4);
      } else {
        to.setInt32(p, word, true);
        p += 4;
      }
    }
  }
  return escapeBytes(buf, p, src, i, end);
}

function escapeBytes(buf: Buffer, at: number, src: Buffer, start: number, end: number): number {
  let p = at;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    const n = ESC_LEN[b]!;
    if (n === 1) {
      buf[p++] = b;
    } else {
      const e = 4 * b;
      buf[p++] = 0x5c;
      buf[p++] = ESC_BYTES[e + 1]!;
      if (n === 4) {
        buf[p++] = ESC_BYTES[e + 2]!;
        buf[p++] = ESC_BYTES[e + 3]!;
      }
    }
  }
  return p;
}

/** Append `src` escaped; returns the number of characters printed (what progs pads against). */
export function writeEscaped(out: OutBuffer, src: Buffer): number {
  const { buf, at } = out.reserve(src.length * 4);
  const end = escapeInto(buf, at, src);
  out.commit(end);
  return end - at;
}

/** The escaped form as a string (tests, messages). */
export function escapeToString(src: Buffer): string {
  const buf = Buffer.allocUnsafe(src.length * 4);
  return buf.toString('latin1', 0, escapeInto(buf, 0, src));
}
