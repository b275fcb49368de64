// FS_IOC_ENABLE_VERITY with a hand-formatted 128-byte struct fsverity_enable_arg (protocol.md §3.14).
import { Ioctl, StructSize } from './constants.js';
import { SysError, ioctlRaw, koffi, lastErrno } from './libc.js';

/** Byte offsets in struct fsverity_enable_arg, checked by the ABI test. */
export const FsverityEnableArgLayout = {
  struct: 'fsverity_enable_arg',
  size: StructSize.fsverity_enable_arg,
  version: 0,
  hash_algorithm: 4,
  block_size: 8,
  salt_size: 12,
  salt_ptr: 16,
  sig_size: 24,
  __reserved1: 28,
  sig_ptr: 32,
  __reserved2: 40,
} as const;

export const FsverityHash = { SHA256: 1, SHA512: 2 } as const;

/** errnos that mean "this kernel or filesystem has no fs-verity". */
const UNSUPPORTED = new Set([95 /* EOPNOTSUPP */, 25 /* ENOTTY */]);

/** Thrown when fs-verity is not available; `cause` is the SysError. */
export class VerityUnsupportedError extends Error {
  constructor(path: string, cause: SysError) {
    super(`cannot enable verity on ${path}: fs-verity is not supported by this kernel or filesystem `
      + `(needs CONFIG_FS_VERITY; FS_IOC_ENABLE_VERITY gave ${cause.code})`);
    this.name = 'VerityUnsupportedError';
    this.cause = cause;
  }
}

/** Enable fs-verity on `fd` (opened read-only, as the kernel requires no writers). */
export function enableVerity(
  fd: number, algorithm: number, blockSize: number, salt: Uint8Array, sig: Uint8Array, path = '<fd>',
): void {
  const L = FsverityEnableArgLayout;
  const arg = Buffer.alloc(L.size); // reserved fields must be zero
  arg.writeUInt32LE(1, L.version);
  arg.writeUInt32LE(algorithm, L.hash_algorithm);
  arg.writeUInt32LE(blockSize, L.block_size);
  arg.writeUInt32LE(salt.length, L.salt_size);
  arg.writeBigUInt64LE(salt.length ? BigInt(koffi.address(salt) as bigint) : 0n, L.salt_ptr);
  arg.writeUInt32LE(sig.length, L.sig_size);
  arg.writeBigUInt64LE(sig.length ? BigInt(koffi.address(sig) as bigint) : 0n, L.sig_ptr);
  const result = ioctlRaw(fd, Ioctl.FS_IOC_ENABLE_VERITY, arg) as number;
  if (result < 0) {
    const error = new SysError('FS_IOC_ENABLE_VERITY', lastErrno(), path);
    if (UNSUPPORTED.has(error.errno)) throw new VerityUnsupportedError(path, error);
    throw error;
  }
  void salt; void sig; // keep the pointed-to buffers alive across the call
}
