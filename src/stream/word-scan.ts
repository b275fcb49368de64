// Byte scans four bytes at a time (SWAR: "SIMD within a register"), for the paths every command carries.
// A JavaScript loop over a Buffer costs a bounds-checked load per byte; a DataView reads four at once, and
// a few integer operations tell whether any of the four is interesting. The dump checks and escapes ~300k
// paths of a 1 GiB stream: a word at a time takes about 40 % of the byte loop's time (measured in
// docs/benchmarks.md, "What we tried").
//
// mayHoldZero is exact. mayNeedEscape may also flag a word whose other bytes are fine (a borrow or carry out
// of a flagged byte spills into its neighbour), never the reverse: callers take a flagged word byte by byte.

/**
 * A DataView over a buffer's whole backing ArrayBuffer (index it at `shift` + i), for the last buffer
 * selected. Keyed first by the Buffer object, then by its ArrayBuffer: the paths of commands are
 * subarrays of one window buffer, which callers pass with offsets, so both checks almost always hit.
 * The Buffer comparison comes first because reading `.buffer` or `.byteOffset` of a typed array is a call
 * into V8's runtime that its optimizing compiler does not inline (perf of a dump: ~10 % of the main
 * thread, three per path), while comparing two objects is one instruction. V8's optimized code never
 * meets the path that makes a new view (reaching code it has never run would throw that code away).
 */
export class ViewCache {
  /** The selected buffer's bytes: its byte i is the view's byte `shift + i`. */
  view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  /** The selected buffer's byteOffset. */
  shift = 0;
  private selected: Uint8Array | undefined;
  private backing: ArrayBufferLike | undefined;

  /** Make `buf` the buffer `view` and `shift` describe. */
  select(buf: Uint8Array): void {
    if (buf === this.selected) return;
    this.selected = buf;
    this.shift = buf.byteOffset;
    if (buf.buffer !== this.backing) {
      this.backing = buf.buffer;
      this.view = new DataView(buf.buffer);
    }
  }
}

const zeroScanViews = new ViewCache();

/** Nonzero when a byte of the little-endian word `v` may be zero. */
export function mayHoldZero(v: number): number {
  return (v - 0x01010101) & ~v & 0x80808080;
}

/**
 * Nonzero when a byte of `v` may need escaping in a dump: below 0x21 (controls and the space), above 0x7e
 * (DEL and every byte with the top bit set), or a backslash (0x5c).
 */
export function mayNeedEscape(v: number): number {
  const backslashes = v ^ 0x5c5c5c5c;
  return (((v - 0x21212121) & ~v) | (v + 0x01010101) | v | mayHoldZero(backslashes)) & 0x80808080;
}

/** Index of the first zero byte in `buf[start..end)`, or -1. */
export function indexOfZero(buf: Uint8Array, start: number, end: number): number {
  zeroScanViews.select(buf);
  const view = zeroScanViews.view;
  const shift = zeroScanViews.shift; // buf[i] is the view's byte shift + i
  let i = shift + start;
  const stop = shift + end;
  while (i + 4 <= stop && mayHoldZero(view.getInt32(i, true)) === 0) i += 4;
  for (; i < stop; i++) {
    if (view.getUint8(i) === 0) return i - shift;
  }
  return -1;
}
