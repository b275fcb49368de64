import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { nativeModulePath } from '../sys/native-module.js';

type Crc32cFn = (input: Uint8Array, initialState?: number) => number;
/** Raw CRC32C register update: (register, bytes) → register, no inversions. */
type RawUpdateFn = (crc: number, bytes: Uint8Array) => number;

// The send stream uses the "raw" CRC32C: register seeded with 0, no final inversion (protocol.md §1.5).
//
// Two implementations, chosen once, on first use:
// - native/crc32c.c with its Node-API face native/crc32c-addon.c (built by scripts/build-native.sh into
//   native/build/crc32c.node): three interleaved crc32 instruction chains, ~4× the library's speed.
//   Optional: when it was not built (no gcc or Node headers, not x86-64) or the CPU lacks SSE4.2/PCLMULQDQ
//   (the module then exports nothing), the library below is used, silently.
// - @node-rs/crc32: one crc32 instruction chain (~8 GB/s here). It computes the standard form
//   ~update(~init, bytes); seeding it with ~crc and inverting the result gives update(crc, bytes).
// Both are loaded with require, not import: see src/sys/libc.ts (the ESM→CJS scanner costs ~10 MiB RSS);
// and only on first use: a stream of small commands (checked in JS by frame-parser.ts) never needs them.

export const NATIVE_CRC32C_PATH = nativeModulePath('crc32c');

let rawUpdate: RawUpdateFn | undefined;
let nativeState: 'native' | string | undefined;

/** The native raw update, or undefined with the reason in nativeState. */
function loadNative(): RawUpdateFn | undefined {
  if (process.env.BTRFS_TS_NO_NATIVE_CRC === '1') {
    nativeState = 'disabled by BTRFS_TS_NO_NATIVE_CRC=1';
    return undefined;
  }
  if (process.arch !== 'x64' || process.platform !== 'linux') {
    nativeState = `not built for ${process.platform}/${process.arch}`;
    return undefined;
  }
  if (!existsSync(NATIVE_CRC32C_PATH)) {
    nativeState = `${NATIVE_CRC32C_PATH} not built (scripts/build-native.sh needs gcc and Node's headers)`;
    return undefined;
  }
  try {
    const addon = createRequire(import.meta.url)(NATIVE_CRC32C_PATH) as { update?: RawUpdateFn };
    if (typeof addon.update !== 'function') {
      nativeState = 'this CPU lacks SSE4.2 or PCLMULQDQ';
      return undefined;
    }
    nativeState = 'native';
    return addon.update;
  } catch (error) {
    nativeState = `cannot load ${NATIVE_CRC32C_PATH}: ${(error as Error).message}`;
    return undefined;
  }
}

function loadLibrary(): RawUpdateFn {
  const standard = (createRequire(import.meta.url)('@node-rs/crc32') as typeof import('@node-rs/crc32')).crc32c as Crc32cFn;
  return (crc, bytes) => ~standard(bytes, ~crc >>> 0) >>> 0;
}

function implementation(): RawUpdateFn {
  rawUpdate ??= loadNative() ?? loadLibrary();
  return rawUpdate;
}

/**
 * Which CRC32C the stream code uses: 'native' (native/crc32c.c), or why not (then @node-rs/crc32).
 * Loads it if not yet loaded. For tests and diagnostics.
 */
export function streamCrc32cImplementation(): string {
  implementation();
  return nativeState!;
}

/** btrfs send-stream CRC32C of `bytes` (seed 0, no final inversion). */
export function streamCrc32c(bytes: Uint8Array): number {
  return implementation()(0, bytes);
}

/** Continue a raw CRC32C over more bytes (for checksums computed over several buffers). */
export function streamCrc32cUpdate(crc: number, bytes: Uint8Array): number {
  return implementation()(crc, bytes);
}
