// Hand-built LZO inputs for tests: a literal-only LZO1X encoder (always valid, with a size we
// control exactly) and a btrfs container builder that follows the sector padding rule.

/** One LZO1X block that stores `bytes` as literals (valid for any length ≥ 1). */
export function lzoLiteralBlock(bytes: Uint8Array): Buffer {
  const n = bytes.length;
  if (n === 0) throw new Error('empty literal block');
  let head: number[];
  if (n <= 238) {
    head = [17 + n]; // first-byte literal run
  } else {
    // 0000LLLL with L = 0: length = 3 + 15 + 255 * zeros + last byte
    const rest = n - 18;
    const zeros = Math.floor((rest - 1) / 255);
    head = [0, ...new Array<number>(zeros).fill(0), rest - 255 * zeros];
  }
  return Buffer.concat([Buffer.from(head), bytes, Buffer.from([0x11, 0, 0])]);
}

/** Size of lzoLiteralBlock(n bytes). */
export function lzoLiteralBlockSize(n: number): number {
  return n <= 238 ? n + 4 : 2 + Math.floor((n - 19) / 255) + n + 3;
}

/**
 * A btrfs LZO container of the given LZO1X blocks with `sector`-byte sectors: a header slot that
 * would start with fewer than 4 bytes before a boundary is padded. `padTo` zero-pads the result.
 */
export function lzoContainer(blocks: Uint8Array[], sector: number, opts: { padTo?: number; totalIncludesPad?: boolean } = {}): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  let pos = 4;
  for (const block of blocks) {
    const left = sector - (pos % sector);
    if (left < 4) {
      parts.push(Buffer.alloc(left));
      pos += left;
    }
    const header = Buffer.alloc(4);
    header.writeUInt32LE(block.length);
    parts.push(header, Buffer.from(block));
    pos += 4 + block.length;
  }
  let total = pos;
  if (opts.totalIncludesPad) {
    const left = sector - (pos % sector);
    if (left < 4) total += left;
  }
  const out = Buffer.concat(parts);
  out.writeUInt32LE(total, 0);
  const padTo = opts.padTo ?? 0;
  return padTo > out.length ? Buffer.concat([out, Buffer.alloc(padTo - out.length)]) : out;
}
