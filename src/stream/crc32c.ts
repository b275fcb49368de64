import { createRequire } from 'node:module';

type Crc32cFn = (input: Uint8Array, initialState?: number) => number;

// Loaded with require, not import: see src/sys/libc.ts (the ESM→CJS scanner costs ~10 MiB RSS).
// Loaded on first use: it costs ~3 MiB of RSS and some start-up time, and a stream of small commands
// (checked in JS) never needs it.
let crc32cStandard: Crc32cFn | undefined;
function library(): Crc32cFn {
  crc32cStandard ??= (createRequire(import.meta.url)('@node-rs/crc32') as typeof import('@node-rs/crc32')).crc32c as Crc32cFn;
  return crc32cStandard;
}

// The send stream uses the "raw" CRC32C: register seeded with 0, no final inversion (protocol.md §1.5).
// The library computes the standard form ~update(~init, bytes); seeding it with ~0 and inverting the
// result gives update(0, bytes), which is the btrfs value.

/** btrfs send-stream CRC32C of `bytes` (seed 0, no final inversion). */
export function streamCrc32c(bytes: Uint8Array): number {
  return ~library()(bytes, 0xffffffff) >>> 0;
}

/** Continue a raw CRC32C over more bytes (for checksums computed over several buffers). */
export function streamCrc32cUpdate(crc: number, bytes: Uint8Array): number {
  return ~library()(bytes, ~crc >>> 0) >>> 0;
}
