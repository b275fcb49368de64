// Buffers for read(2) to fill, placed on page boundaries. On this machine's CPU the kernel's copy into
// user memory (copy_to_user's `rep movsb`) runs 4-5x slower into a destination that is not 64-byte
// aligned: reading 1 GiB from the page cache took 0.13 s of system time into aligned memory and
// 0.55-0.67 s into memory 8 or 16 bytes off (docs/benchmarks.md). Large Buffers come from malloc,
// whose blocks start 16 bytes past a page boundary. Writes do not care: the page cache side is aligned.
import { createRequire } from 'node:module';
import { loadNativeModule } from './native-module.js';

/** Where read targets start: a page, which also keeps a read of whole pages on whole pages. */
export const READ_ALIGNMENT = 4096;

interface BufferAddressModule {
  offsetIn(buffer: Buffer, alignment: number): number;
}

type OffsetIn = (buffer: Buffer, alignment: number) => number;
let offsetInImpl: OffsetIn | undefined;

/** native/buffer-address.c, or koffi (loaded only then: --dump does without koffi's ~6 MiB). */
function offsetIn(): OffsetIn {
  if (offsetInImpl === undefined) {
    const native = loadNativeModule<BufferAddressModule>('buffer-address', 'BTRFS_TS_NO_NATIVE_ADDRESS');
    if (native !== null) {
      offsetInImpl = native.offsetIn;
    } else {
      const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
      offsetInImpl = (buffer, alignment) => Number(BigInt(koffi.address(buffer) as bigint) & BigInt(alignment - 1));
    }
  }
  return offsetInImpl;
}

/** The address of `buffer`'s first byte modulo `alignment` (a power of two). */
export function addressOffset(buffer: Buffer, alignment: number = READ_ALIGNMENT): number {
  return offsetIn()(buffer, alignment);
}

/**
 * `size` uninitialized bytes whose first byte sits on an `alignment` boundary (a power of two). Costs
 * `alignment` bytes more than Buffer.allocUnsafe; the memory lives as long as the returned view.
 */
export function allocAligned(size: number, alignment: number = READ_ALIGNMENT): Buffer {
  const raw = Buffer.allocUnsafeSlow(size + alignment);
  const skip = (alignment - addressOffset(raw, alignment)) % alignment;
  return raw.subarray(skip, skip + size);
}
