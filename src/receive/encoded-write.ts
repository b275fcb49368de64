// ENCODED_WRITE (protocol.md §4.4): hand the compressed extent to BTRFS_IOC_ENCODED_WRITE so it
// stays compressed on the receiver; where the kernel refuses (ENOTTY, EINVAL, ENOSPC — exactly
// where btrfs-progs falls back) or --force-decompress is given, decode it ourselves and write the
// slice [unencoded_offset, +unencoded_file_len) at the file offset.
import { constants as osConstants } from 'node:os';
import type { EncodedWriteCommand } from '../stream/commands.js';
import {
  CorruptDataError, EncodedExtentError, MAX_UNENCODED_LEN, checkSlice, compressionName, decodeExtent,
} from '../compress/index.js';
import { encodedWrite } from '../sys/encoded-io.js';
import { fstatSizeBlock, pwriteAll } from '../sys/fs.js';
import { SysError, printablePath } from '../sys/libc.js';

export interface ApplyEncodedWriteOptions {
  /** Never try the ioctl: always decode and write plain data (--force-decompress). */
  forceDecompress: boolean;
  /** Trial-decode the payload before handing it to the kernel, which does not check it. */
  verify: boolean;
  /** Called each time the fallback is used; the engine prints the first reason once per stream. */
  onFallback(reason: string): void;
  /** The whole extent, already decoded (decode-ahead): used instead of decoding here. */
  decoded?: Buffer;
}

const { ENOTTY, EINVAL, ENOSPC } = osConstants.errno;
const FALLBACK_ERRNOS = new Set([ENOTTY, EINVAL, ENOSPC]);

/** Why a fallback happened, in words. */
function fallbackReason(error: SysError): string {
  switch (error.errno) {
    case ENOTTY: return 'the destination does not support encoded writes (ENOTTY: not btrfs, or kernel < 6.0)';
    case EINVAL: return 'the kernel refused the encoded extent (EINVAL: e.g. a different sector size, a NOCOW file, or an unaligned offset)';
    case ENOSPC: return 'no space for the encoded extent (ENOSPC)';
    default: return error.message;
  }
}

/** One-line error naming the command and its path. */
function commandError(cmd: EncodedWriteCommand, message: string, cause?: unknown): Error {
  const error = new Error(`encoded_write ${printablePath(cmd.path)}: ${message}`);
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** Decode target reused for every extent: each decoded extent is written (or dropped) before the next. */
let scratch: Buffer | undefined;

/** A decoder's error as the one-line error naming the command (same text as a synchronous decode). */
export function decodeFailure(cmd: EncodedWriteCommand, error: unknown): unknown {
  if (error instanceof CorruptDataError) {
    return commandError(cmd, `corrupt ${compressionName(cmd.compression ?? 0)} payload: ${error.message}`, error);
  }
  if (error instanceof EncodedExtentError) return commandError(cmd, error.message, error);
  return error;
}

/** Decode the whole extent; corrupt bytes or unusable fields become one clear error naming the command. */
function decodeOrThrow(cmd: EncodedWriteCommand): Buffer {
  const extent = {
    compression: cmd.compression ?? 0,
    data: cmd.data,
    unencodedLen: cmd.unencodedLen,
    unencodedOffset: cmd.unencodedOffset,
    unencodedFileLen: cmd.unencodedFileLen,
  };
  try {
    checkSlice(extent);
    if (extent.unencodedLen <= MAX_UNENCODED_LEN) scratch ??= Buffer.allocUnsafe(MAX_UNENCODED_LEN);
    return decodeExtent(extent, scratch);
  } catch (error) {
    if (error instanceof CorruptDataError) {
      throw commandError(cmd, `corrupt ${compressionName(extent.compression)} payload: ${error.message}`, error);
    }
    if (error instanceof EncodedExtentError) throw commandError(cmd, error.message, error);
    throw error;
  }
}

/** All of `bytes` at `position` (pwrite through our native module, without Node's argument checks). */
function writeAll(fd: number, bytes: Buffer, position: number, cmd: EncodedWriteCommand): void {
  try {
    pwriteAll(fd, bytes, position);
  } catch (error) {
    throw commandError(cmd, `writing decoded data failed: ${(error as Error).message}`, error);
  }
}

/**
 * Apply one ENCODED_WRITE to `fd` (opened read-write on cmd.path). Returns 'encoded' when the
 * kernel stored the extent as is, 'decompressed' when we wrote decoded bytes.
 */
export function applyEncodedWrite(
  fd: number, cmd: EncodedWriteCommand, opts: ApplyEncodedWriteOptions,
): 'encoded' | 'decompressed' {
  const encryption = cmd.encryption ?? 0;
  if (encryption !== 0) throw commandError(cmd, `encryption not supported (encryption type ${encryption})`);

  let decoded: Buffer | undefined = opts.decoded;
  if (!opts.forceDecompress) {
    if (opts.verify) decoded ??= decodeOrThrow(cmd);
    try {
      encodedWrite(fd, {
        offset: cmd.offset,
        len: cmd.unencodedFileLen,
        unencodedLen: cmd.unencodedLen,
        unencodedOffset: cmd.unencodedOffset,
        compression: cmd.compression ?? 0,
        encryption,
        data: cmd.data,
      }, cmd.path);
      return 'encoded';
    } catch (error) {
      if (!(error instanceof SysError) || !FALLBACK_ERRNOS.has(error.errno)) {
        throw commandError(cmd, (error as Error).message, error);
      }
      opts.onFallback(fallbackReason(error));
    }
  }

  decoded ??= decodeOrThrow(cmd);
  writeAll(fd, decoded.subarray(cmd.unencodedOffset, cmd.unencodedOffset + cmd.unencodedFileLen), cmd.offset, cmd);
  zeroBlockTail(fd, cmd);
  return 'decompressed';
}

const zeros = Buffer.alloc(64 * 1024);

/**
 * An encoded extent that ends off a block boundary is either the file's last (EOF) or an inline
 * extent: either way the rest of its last block reads as zeros on the sender. The kernel does not
 * say so when the file goes on after it (a v2 incremental stream can send an inline extent of 1649
 * bytes into a file whose parent version had data there), so stale bytes would survive — in
 * btrfs-progs' result too. Zero them, without ever growing the file.
 */
function zeroBlockTail(fd: number, cmd: EncodedWriteCommand): void {
  const end = cmd.offset + cmd.unencodedFileLen;
  // No btrfs block is larger than 64 KiB: an extent ending on such a boundary needs no fstat (most do).
  if (end % zeros.length === 0) return;
  const { blksize, size } = fstatSizeBlock(fd, cmd.path);
  const block = blksize > 0 && blksize <= zeros.length ? blksize : 4096;
  if (end % block === 0 || size <= end) return;
  const stop = Math.min(end + block - (end % block), size);
  writeAll(fd, zeros.subarray(0, stop - end), end, cmd);
}
