// A bounds-checked LZO1X decompressor (the bitstream lzo1x_1 compressors produce; btrfs uses it
// per sector). Written from the format description in the Linux documentation (staging/lzo.rst):
// every read of input and every write of output is checked, so malformed input gives a
// CorruptDataError and never reads or writes outside the given ranges.
//
// Instruction summary (state = literals copied after the previous instruction: 0, 1..3 or 4):
//   first byte 18..255   copy (byte - 17) literals
//   0000LLLL, state 0    copy 3 + len(L, 4 bits) literals            → state 4
//   0000DDSS, state 1..3 copy 2 bytes, distance (H << 2) + D + 1      (H = next byte)
//   0000DDSS, state 4    copy 3 bytes, distance (H << 2) + D + 2049
//   0001HLLL             copy 2 + len(L, 3 bits), distance 16384 + (H << 14) + (LE16 >> 2);
//                        distance exactly 16384 is the end of stream
//   001LLLLL             copy 2 + len(L, 5 bits), distance (LE16 >> 2) + 1
//   01LDDDSS             copy 3 + L bytes, distance (H << 3) + D + 1
//   1LLDDDSS             copy 5 + L bytes, distance (H << 3) + D + 1
// After every match, S (0..3) literals follow; S comes from the instruction or the LE16's low bits.
// len(L, n): L if non-zero, else (2^n - 1) + 255 per following zero byte + the first non-zero byte.
import { CorruptDataError } from './errors.js';

const fail = (message: string, offset: number): never => {
  throw new CorruptDataError('lzo', message, offset);
};

/**
 * Decompress one LZO1X block `src[start, end)` into `dst[outStart, outLimit)`.
 * Returns the number of bytes written. The block must end with the end-of-stream marker and be
 * consumed exactly; producing more than `outLimit - outStart` bytes is an error (output overrun).
 * Error offsets are relative to `offsetBase` (e.g. the block's position in the whole payload).
 */
export function lzo1xDecompress(
  src: Uint8Array, start: number, end: number,
  dst: Uint8Array, outStart: number, outLimit: number,
  offsetBase = 0,
): number {
  if (start < 0 || end > src.length || start > end) throw new RangeError('lzo1xDecompress: bad input range');
  if (outStart < 0 || outLimit > dst.length || outStart > outLimit) throw new RangeError('lzo1xDecompress: bad output range');
  // One flat loop with local variables: closures over ip/op would cost about a third of the speed.
  const at = (pos: number): number => offsetBase + (pos - start);
  let ip = start;
  let op = outStart;
  let state = 0; // literals copied after the previous instruction (4 = a long literal run)

  if (ip >= end) fail('empty block', at(ip));
  const first = src[ip]!;
  if (first === 17) fail('LZO-RLE (version 1) bitstreams are not used by btrfs', at(ip));
  if (first > 17) {
    ip++;
    const count = first - 17;
    if (count > end - ip) fail(`literal run of ${count} bytes runs past the end of the block`, at(ip));
    if (count > outLimit - op) fail(`output overrun (literal run of ${count} bytes)`, at(ip));
    for (let i = 0; i < count; i++) dst[op + i] = src[ip + i]!;
    ip += count;
    op += count;
    state = count < 4 ? count : 4;
  }

  for (;;) {
    if (ip >= end) fail('block ends without an end-of-stream marker', at(ip));
    const instrPos = ip;
    const t = src[ip++]!;
    let length: number;
    let distance: number;
    let next: number; // literals after the match

    if (t < 16) {
      if (state === 0) {
        // Long literal run: 3 + (L, or 15 + 255 per zero byte + the first non-zero byte).
        let count = t;
        if (count === 0) {
          count = 15;
          for (;;) {
            if (ip >= end) fail('block ends inside a length field', at(ip));
            const byte = src[ip++]!;
            if (byte !== 0) { count += byte; break; }
            count += 255;
          }
        }
        count += 3;
        if (count > end - ip) fail(`literal run of ${count} bytes runs past the end of the block`, at(ip));
        if (count > outLimit - op) fail(`output overrun (literal run of ${count} bytes)`, at(ip));
        if (count > 32) dst.set(src.subarray(ip, ip + count), op);
        else for (let i = 0; i < count; i++) dst[op + i] = src[ip + i]!;
        ip += count;
        op += count;
        state = 4;
        continue;
      }
      if (ip >= end) fail('block ends inside an instruction', at(instrPos));
      const h = src[ip++]!;
      length = state === 4 ? 3 : 2;
      distance = (h << 2) + ((t >> 2) & 3) + (state === 4 ? 2049 : 1);
      next = t & 3;
    } else if (t >= 64) {
      if (ip >= end) fail('block ends inside an instruction', at(instrPos));
      const h = src[ip++]!;
      length = t < 128 ? 3 + ((t >> 5) & 1) : 5 + ((t >> 5) & 3);
      distance = (h << 3) + ((t >> 2) & 7) + 1;
      next = t & 3;
    } else {
      // 001LLLLL (5-bit length) or 0001HLLL (3-bit length, far distance / end of stream)
      const mask = t < 32 ? 7 : 31;
      length = t & mask;
      if (length === 0) {
        length = mask;
        for (;;) {
          if (ip >= end) fail('block ends inside a length field', at(ip));
          const byte = src[ip++]!;
          if (byte !== 0) { length += byte; break; }
          length += 255;
        }
      }
      length += 2;
      if (end - ip < 2) fail('block ends inside an instruction', at(instrPos));
      const le16 = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
      next = le16 & 3;
      if (t >= 32) {
        distance = (le16 >> 2) + 1;
      } else {
        const far = ((t & 8) << 11) + (le16 >> 2);
        if (far === 0) {
          // End of stream: the canonical marker is 0x11 0x00 0x00 and must end the block.
          if (t !== 0x11) fail('malformed end-of-stream marker', at(instrPos));
          if (ip !== end) fail(`${end - ip} bytes after the end-of-stream marker`, at(ip));
          return op - outStart;
        }
        distance = 16384 + far;
      }
    }

    // Match: copy `length` bytes from `distance` back (overlapping copies repeat the pattern).
    if (distance > op - outStart) fail(`match distance ${distance} reaches before the start of the output`, at(instrPos));
    if (length > outLimit - op) fail(`output overrun (match of ${length} bytes)`, at(instrPos));
    let from = op - distance;
    if (distance >= length && length > 32) {
      dst.copyWithin(op, from, from + length);
      op += length;
    } else {
      for (let i = 0; i < length; i++) dst[op++] = dst[from++]!;
    }

    // Then 0..3 literals.
    if (next !== 0) {
      if (next > end - ip) fail(`literal run of ${next} bytes runs past the end of the block`, at(ip));
      if (next > outLimit - op) fail(`output overrun (literal run of ${next} bytes)`, at(ip));
      dst[op++] = src[ip++]!;
      if (next > 1) dst[op++] = src[ip++]!;
      if (next > 2) dst[op++] = src[ip++]!;
    }
    state = next;
  }
}

/** Worst-case LZO1X output size for `n` input bytes (what a compressor may emit for incompressible data). */
export function lzo1xWorstCompressedSize(n: number): number {
  return n + Math.floor(n / 16) + 64 + 3;
}
