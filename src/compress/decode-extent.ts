// Decode an ENCODED_WRITE payload (protocol.md §4.1): the file's bytes are
// decode(DATA)[UNENCODED_OFFSET, +UNENCODED_FILE_LEN); decoded output shorter than UNENCODED_LEN
// is zero-extended, longer output is dropped (newer kernels store inline extents as a full block).
import { Compression } from '../stream/protocol.js';
import { decodeBtrfsLzo, lzoSectorSize } from './btrfs-lzo.js';
import { CorruptDataError } from './errors.js';
import { decodeZlib } from './zlib.js';
import { decodeZstd } from './zstd.js';

/**
 * Largest UNENCODED_LEN we decode. The kernel never sends more than 128 KiB (BTRFS_MAX_UNCOMPRESSED),
 * and refuses more in BTRFS_IOC_ENCODED_WRITE; other senders might, and decoding up to 1 MiB per
 * command is harmless, so we accept 8× the kernel's maximum and refuse anything larger before
 * allocating.
 */
export const MAX_UNENCODED_LEN = 1024 * 1024;

export interface EncodedExtent {
  compression: number;
  data: Uint8Array;
  unencodedLen: number;
}

/** A payload we cannot decode at all (bad fields, not bad bytes). */
export class EncodedExtentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncodedExtentError';
  }
}

/** Human name of a compression value, e.g. 'zstd', 'lzo (16K sectors)'. */
export function compressionName(compression: number): string {
  switch (compression) {
    case Compression.NONE: return 'none';
    case Compression.ZLIB: return 'zlib';
    case Compression.ZSTD: return 'zstd';
    default:
      if (compression >= Compression.LZO_4K && compression <= Compression.LZO_64K) {
        return `lzo (${lzoSectorSize(compression) / 1024}K sectors)`;
      }
      return `unknown (${compression})`;
  }
}

/**
 * Decode the whole extent: returns exactly `unencodedLen` bytes (zero-filled tail when the codec
 * yields fewer). Throws CorruptDataError for bad bytes, EncodedExtentError for unusable fields.
 * `scratch`: decode into it (the result is then a view of it, valid until its next use) instead of
 * fresh memory — a receive decodes tens of thousands of extents, and a fresh 128 KiB each made the
 * resident memory grow and cost page faults (docs/benchmarks.md).
 */
export function decodeExtent(extent: EncodedExtent, scratch?: Buffer): Buffer {
  const { compression, data, unencodedLen } = extent;
  if (!Number.isSafeInteger(unencodedLen) || unencodedLen < 0) {
    throw new EncodedExtentError(`invalid unencoded length ${unencodedLen}`);
  }
  if (unencodedLen > MAX_UNENCODED_LEN) {
    throw new EncodedExtentError(`unencoded length ${unencodedLen} exceeds the ${MAX_UNENCODED_LEN}-byte limit`);
  }
  const out = scratch !== undefined && scratch.length >= unencodedLen
    ? scratch.subarray(0, unencodedLen) : Buffer.allocUnsafe(unencodedLen);
  if (unencodedLen === 0) return out;
  let produced: number;
  switch (compression) {
    case Compression.ZLIB:
      produced = decodeZlib(data, out, MAX_UNENCODED_LEN);
      break;
    case Compression.ZSTD:
      produced = decodeZstd(data, out);
      break;
    case Compression.LZO_4K: case Compression.LZO_8K: case Compression.LZO_16K:
    case Compression.LZO_32K: case Compression.LZO_64K:
      produced = decodeBtrfsLzo(data, lzoSectorSize(compression), out);
      break;
    default:
      throw new EncodedExtentError(`unknown compression: ${compression}`);
  }
  // Zero the tail explicitly: libzstd uses the unused end of the output buffer as scratch space,
  // so "allocated as zeros" is not enough (the garbage-tail bug of btrfs-progs 6.1).
  out.fill(0, produced);
  return out;
}

export interface EncodedSlice extends EncodedExtent {
  unencodedOffset: number;
  unencodedFileLen: number;
}

/** Check that the slice [unencodedOffset, +unencodedFileLen) lies inside the decoded extent. */
export function checkSlice(slice: EncodedSlice): void {
  const { unencodedOffset, unencodedFileLen, unencodedLen } = slice;
  for (const [name, value] of [['unencoded offset', unencodedOffset], ['unencoded file length', unencodedFileLen]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new EncodedExtentError(`invalid ${name} ${value}`);
  }
  if (unencodedOffset + unencodedFileLen > unencodedLen) {
    throw new EncodedExtentError(
      `slice [${unencodedOffset}, +${unencodedFileLen}) lies outside the ${unencodedLen}-byte unencoded extent`,
    );
  }
}

/** The file bytes an ENCODED_WRITE stands for: exactly `unencodedFileLen` bytes. */
export function decodeSlice(slice: EncodedSlice): Buffer {
  checkSlice(slice);
  const whole = decodeExtent(slice);
  return whole.subarray(slice.unencodedOffset, slice.unencodedOffset + slice.unencodedFileLen);
}

export { CorruptDataError };
