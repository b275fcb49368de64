// zlib extents: one RFC 1950 stream followed by zero padding. node:zlib stops at the stream end
// (padding is ignored), errors on truncated or corrupt input (incl. a bad Adler-32), and
// maxOutputLength bounds what a hostile stream can make us allocate.
import { inflateSync } from 'node:zlib';
import { CorruptDataError } from './errors.js';

/**
 * Decode the zlib stream at the start of `data` into `out` (length = the most we want). Output
 * beyond `out.length` is dropped; a stream that inflates past `hardLimit` bytes is an error.
 */
export function decodeZlib(data: Uint8Array, out: Uint8Array, hardLimit: number): number {
  let decoded: Buffer;
  try {
    decoded = inflateSync(data, {
      maxOutputLength: Math.max(hardLimit, out.length, 1),
      // One chunk for the whole extent: avoids concatenating 16 KiB pieces.
      chunkSize: Math.max(64, Math.min(out.length || 64, hardLimit)),
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = code === 'ERR_BUFFER_TOO_LARGE'
      ? `stream inflates to more than ${hardLimit} bytes`
      : error instanceof Error ? error.message : String(error);
    throw new CorruptDataError('zlib', message);
  }
  const n = Math.min(decoded.length, out.length);
  out.set(decoded.subarray(0, n), 0);
  return n;
}
