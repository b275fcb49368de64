// The btrfs LZO container (protocol.md §4.3): a LE32 total length, then segments of
// [LE32 compressed length][LZO1X block], each block decoding to at most one sector. A segment
// header never straddles a sector boundary: when fewer than 4 bytes remain before the boundary,
// they are padding and the next header starts at the boundary. Payloads may cross boundaries.
import { CorruptDataError } from './errors.js';
import { lzo1xDecompress, lzo1xWorstCompressedSize } from './lzo1x.js';

const HEADER = 4;

/** Sector size of each LZO compression value (3 = LZO_4K ... 7 = LZO_64K). */
export function lzoSectorSize(compression: number): number {
  if (!Number.isInteger(compression) || compression < 3 || compression > 7) {
    throw new RangeError(`not an LZO compression value: ${compression}`);
  }
  return 4096 << (compression - 3);
}

/**
 * Decode a btrfs LZO payload into `out` (whose length is the most we want: UNENCODED_LEN).
 * Stops when `out` is full (extra decoded bytes are dropped, as the kernel does) or the container
 * ends. Returns the number of bytes written.
 */
export function decodeBtrfsLzo(data: Uint8Array, sectorSize: number, out: Uint8Array): number {
  const fail = (message: string, offset: number): never => {
    throw new CorruptDataError('lzo', message, offset);
  };
  if (data.length < HEADER) fail(`payload of ${data.length} bytes is shorter than the container header`, 0);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const total = view.getUint32(0, true);
  if (total < HEADER) fail(`container total length ${total} is smaller than its header`, 0);
  if (total > data.length) fail(`container total length ${total} exceeds the ${data.length}-byte payload`, 0);

  const maxSegment = lzo1xWorstCompressedSize(sectorSize);
  let scratch: Uint8Array | undefined; // for the last, partially wanted sector
  let pos = HEADER;
  let produced = 0;
  while (pos < total && produced < out.length) {
    const toBoundary = (sectorSize - (pos % sectorSize)) % sectorSize;
    if (toBoundary < HEADER) {
      if (total - pos <= toBoundary) break; // only padding left
      pos += toBoundary;
    }
    if (total - pos < HEADER) fail('segment header runs past the container length', pos);
    const segLen = view.getUint32(pos, true);
    const segStart = pos + HEADER;
    if (segLen === 0) fail('empty segment', pos);
    if (segLen > maxSegment) fail(`segment of ${segLen} bytes is larger than any ${sectorSize}-byte sector compresses to`, pos);
    if (segLen > total - segStart) fail(`segment of ${segLen} bytes runs past the container length ${total}`, pos);

    const room = out.length - produced;
    if (room >= sectorSize) {
      produced += lzo1xDecompress(data, segStart, segStart + segLen, out, produced, produced + sectorSize, segStart);
    } else {
      scratch ??= new Uint8Array(sectorSize);
      const n = lzo1xDecompress(data, segStart, segStart + segLen, scratch, 0, sectorSize, segStart);
      const keep = Math.min(n, room);
      out.set(scratch.subarray(0, keep), produced);
      produced += keep;
    }
    pos = segStart + segLen;
  }
  return produced;
}
