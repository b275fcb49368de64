// The C-style escaping `btrfs receive --dump` applies to paths: \a \b \e \f \n \r \t \v, "\ " for a
// space, "\\" for a backslash, and \ooo (3 octal digits) for any other byte that is not printable ASCII
// (C locale isprint: 0x20..0x7e), which includes every byte >= 0x80.
import type { OutBuffer } from './out-buffer.js';

/** Escape sequence per byte value, or undefined when the byte is printed as is. */
const ESCAPES: (Buffer | undefined)[] = [];
for (let b = 0; b < 256; b++) {
  const named: Record<number, string> = { 7: 'a', 8: 'b', 27: 'e', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v', 32: ' ', 92: '\\' };
  if (named[b] !== undefined) ESCAPES.push(Buffer.from('\\' + named[b], 'latin1'));
  else if (b < 0x20 || b > 0x7e) ESCAPES.push(Buffer.from('\\' + b.toString(8).padStart(3, '0'), 'latin1'));
  else ESCAPES.push(undefined);
}

/** Whether any byte of `src` needs escaping. */
function needsEscape(src: Buffer): boolean {
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b <= 0x20 || b > 0x7e || b === 0x5c) return true;
  }
  return false;
}

/** Append `src` escaped; returns the number of characters printed (what progs pads against). */
export function writeEscaped(out: OutBuffer, src: Buffer): number {
  if (!needsEscape(src)) {
    out.bytes(src);
    return src.length;
  }
  const { buf, at } = out.reserve(src.length * 4);
  let p = at;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    const esc = ESCAPES[b];
    if (esc === undefined) buf[p++] = b;
    else p += esc.copy(buf, p);
  }
  out.commit(p);
  return p - at;
}

/** The escaped form as a string (tests, messages). */
export function escapeToString(src: Buffer): string {
  let s = '';
  for (const b of src) s += ESCAPES[b]?.toString('latin1') ?? String.fromCharCode(b);
  return s;
}
