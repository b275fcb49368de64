// BTRFS_IOC_ENCODED_WRITE / ENCODED_READ: hand a compressed extent to btrfs as is (or read one
// back). The 128-byte struct btrfs_ioctl_encoded_io_args is formatted by hand in a Buffer and
// points at a one-entry struct iovec (protocol.md §4.2); native/fs-calls.c builds the same struct
// for ENCODED_WRITE in C when it is built.
//
// Test seam: setEncodedWriteFault(errno) makes every later encodedWrite() fail with that errno
// *instead of* calling the kernel (exactly as if the ioctl had returned -1); undefined turns it off.
// The environment variable BTRFS_TS_ENCODED_WRITE_FAULT (an errno name such as ENOTTY or a number)
// sets the initial value, read once when this module loads — for tests that run the CLI.
import { constants as osConstants } from 'node:os';
import { Ioctl, StructSize } from './constants.js';
import { SysError, ioctl, koffi, putInt64LE } from './libc.js';
import { nativeEncodedWrite } from './fs-calls.js';

/** Byte offsets in struct btrfs_ioctl_encoded_io_args (x86-64), checked by the ABI test. */
export const EncodedIoArgsLayout = {
  struct: 'btrfs_ioctl_encoded_io_args',
  size: StructSize.btrfs_ioctl_encoded_io_args,
  iov: 0,
  iovcnt: 8,
  offset: 16,
  flags: 24,
  len: 32,
  unencoded_len: 40,
  unencoded_offset: 48,
  compression: 56,
  encryption: 60,
  reserved: 64,
} as const;

/** Byte offsets in struct iovec (x86-64). No `struct` key: native/abi-check.c does not print iovec (yet). */
export const IovecLayout = { size: 16, iov_base: 0, iov_len: 8 } as const;

export interface EncodedWriteRequest {
  /** Where the decoded bytes go in the file (FILE_OFFSET). */
  offset: number;
  /** Decoded bytes that belong in the file (UNENCODED_FILE_LEN). */
  len: number;
  unencodedLen: number;
  unencodedOffset: number;
  compression: number;
  encryption: number;
  /** The encoded payload (DATA). */
  data: Uint8Array;
}

let injectedFault: number | undefined = parseFault(process.env.BTRFS_TS_ENCODED_WRITE_FAULT);

function parseFault(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const errno = (osConstants.errno as Record<string, number>)[value];
  if (errno === undefined) throw new Error(`BTRFS_TS_ENCODED_WRITE_FAULT: unknown errno name ${value}`);
  return errno;
}

/** Test seam: make encodedWrite() fail with `errno` without calling the kernel; undefined = off. */
export function setEncodedWriteFault(errno: number | undefined): void {
  injectedFault = errno;
}

/** The fault currently injected (for diagnostics). */
export function encodedWriteFault(): number | undefined {
  return injectedFault;
}

/**
 * A zeroed argument struct (flags and reserved must be zero) pointing at its own one-entry iovec. Both
 * off the V8 heap (allocUnsafeSlow), so the address written into the struct never moves.
 */
function newArgs(): { iov: Buffer; args: Buffer } {
  const iov = Buffer.allocUnsafeSlow(IovecLayout.size).fill(0);
  const args = Buffer.allocUnsafeSlow(EncodedIoArgsLayout.size).fill(0);
  args.writeBigUInt64LE(BigInt(koffi.address(iov) as bigint), EncodedIoArgsLayout.iov);
  args.writeBigUInt64LE(1n, EncodedIoArgsLayout.iovcnt);
  return { iov, args };
}

// ENCODED_WRITE's struct and iovec, made once and reused (every call is synchronous): per extent only the
// changing fields are written, with no Buffer or BigInt allocated but the payload's address. ENCODED_READ
// takes fresh ones: the kernel writes back into its struct.
const writeArgs = newArgs();

function formatArgs(
  data: Uint8Array, fields: Omit<EncodedWriteRequest, 'data'>, { iov, args } = writeArgs,
): Buffer {
  iov.writeBigUInt64LE(data.length === 0 ? 0n : BigInt(koffi.address(data) as bigint), IovecLayout.iov_base);
  putInt64LE(iov, data.length, IovecLayout.iov_len);
  putInt64LE(args, fields.offset, EncodedIoArgsLayout.offset);
  putInt64LE(args, fields.len, EncodedIoArgsLayout.len);
  putInt64LE(args, fields.unencodedLen, EncodedIoArgsLayout.unencoded_len);
  putInt64LE(args, fields.unencodedOffset, EncodedIoArgsLayout.unencoded_offset);
  args.writeUInt32LE(fields.compression, EncodedIoArgsLayout.compression);
  args.writeUInt32LE(fields.encryption, EncodedIoArgsLayout.encryption);
  return args;
}

/**
 * BTRFS_IOC_ENCODED_WRITE on `fd` (opened for writing). Returns the bytes consumed; throws
 * SysError (with .errno) on failure. `path` only names the file in error messages.
 */
export function encodedWrite(fd: number, request: EncodedWriteRequest, path?: string | Buffer): number {
  if (injectedFault !== undefined) throw new SysError('BTRFS_IOC_ENCODED_WRITE', injectedFault, path);
  if (nativeEncodedWrite !== undefined) {
    const { data, offset, len, unencodedLen, unencodedOffset, compression, encryption } = request;
    const result = nativeEncodedWrite(
      fd, Ioctl.BTRFS_IOC_ENCODED_WRITE, data, offset, len, unencodedLen, unencodedOffset, compression, encryption);
    if (result < 0) throw new SysError('BTRFS_IOC_ENCODED_WRITE', -result, path);
    return result;
  }
  const args = formatArgs(request.data, request);
  // `request.data` stays referenced until the synchronous call returns.
  const result = ioctl(fd, Ioctl.BTRFS_IOC_ENCODED_WRITE, args, 'BTRFS_IOC_ENCODED_WRITE', path);
  keepAlive(request.data);
  return result;
}

export interface EncodedReadResult {
  /** Encoded bytes placed in the buffer (a subarray of it). */
  data: Buffer;
  /** Decoded bytes of the file this extent covers from `offset`. */
  len: number;
  unencodedLen: number;
  unencodedOffset: number;
  compression: number;
  encryption: number;
}

/**
 * BTRFS_IOC_ENCODED_READ: read the extent at `offset` as stored (compressed when it is).
 * `buffer` must hold the largest encoded extent (128 KiB). Needs CAP_SYS_ADMIN.
 */
export function encodedRead(fd: number, offset: number, len: number, buffer: Buffer, path?: string | Buffer): EncodedReadResult {
  const own = newArgs();
  const args = formatArgs(buffer, {
    offset, len, unencodedLen: 0, unencodedOffset: 0, compression: 0, encryption: 0,
  }, own);
  const bytes = ioctl(fd, Ioctl.BTRFS_IOC_ENCODED_READ, args, 'BTRFS_IOC_ENCODED_READ', path);
  keepAlive(own.iov, buffer);
  return {
    data: buffer.subarray(0, bytes),
    len: Number(args.readBigUInt64LE(EncodedIoArgsLayout.len)),
    unencodedLen: Number(args.readBigUInt64LE(EncodedIoArgsLayout.unencoded_len)),
    unencodedOffset: Number(args.readBigUInt64LE(EncodedIoArgsLayout.unencoded_offset)),
    compression: args.readUInt32LE(EncodedIoArgsLayout.compression),
    encryption: args.readUInt32LE(EncodedIoArgsLayout.encryption),
  };
}

// Referencing the buffers after the call keeps them (and the memory the kernel reads) alive.
function keepAlive(..._buffers: Uint8Array[]): void {}
