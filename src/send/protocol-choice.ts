// Which stream version to ask the kernel for, as `btrfs send` decides it (protocol.md §5.2).
import { readFileSync } from 'node:fs';
import { SendFlag } from '../sys/constants.js';
import { SendError } from './errors.js';

export const SEND_BUF_SIZE_V1 = 64 * 1024;
/** 16 KiB + BTRFS_MAX_COMPRESSED: the v2 command buffer, used for the pipe and the copy chunk. */
export const SEND_BUF_SIZE_V2 = 16 * 1024 + 128 * 1024;

const U32_MAX = 0xffffffff;

/** The highest version the running kernel offers (sysfs; absent or unreadable → 1, as progs). */
export function kernelSendStreamVersion(path = '/sys/fs/btrfs/features/send_stream_version'): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return 1;
  }
  const value = Number.parseInt(text.trim(), 10);
  if (!Number.isFinite(value) || value < 0 || value > U32_MAX) return 1;
  return value;
}

export interface ProtocolChoice {
  /** The version put into the argument block (0 = the highest the kernel has). */
  version: number;
  /** BTRFS_SEND_FLAG_VERSION, set only when the kernel supports more than v1 (old kernels see v1 args). */
  flags: number;
  /** The kernel speaks v2+: progs then enlarges the pipe and copies in 144 KiB chunks. */
  bigBuffers: boolean;
}

/**
 * progs' decision: default 1; `--proto N` as given (0 = highest); `--compressed-data` without `--proto`
 * means 2. `requested` is the --proto value or undefined. Throws SendError with progs' messages.
 */
export function chooseProtocol(requested: number | undefined, compressed: boolean, supported: number): ProtocolChoice {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 0)) {
    throw new SendError(`invalid protocol version ${requested}`);
  }
  if (requested !== undefined && requested > U32_MAX) {
    throw new SendError(`protocol version number too big ${requested}`);
  }
  let version = requested ?? 1;
  // progs checks this before --compressed-data raises the default, so plain --compressed-data on a
  // v1-only kernel reaches the kernel (which answers EINVAL).
  if (supported === 1 && version > supported) {
    throw new SendError(`requested version ${version} but kernel supports only ${supported}`);
  }
  if (compressed) {
    if (version === 1 && !requested) version = 2;
    if (version === 1) throw new SendError('--compressed-data requires protocol version >= 2 (requested 1)');
    if (version === 0 && supported < 2) throw new SendError('kernel does not support --compressed-data');
  }
  const bigBuffers = supported > 1;
  return { version, flags: bigBuffers ? SendFlag.VERSION : 0, bigBuffers };
}

/**
 * The flags for the i-th of n subvolumes: without -e each gets a complete stream; with -e only the
 * first has the header and only the last has END (protocol.md §1.8).
 */
export function subvolumeSendFlags(base: number, index: number, count: number, omitEnd: boolean): number {
  let flags = base;
  if (omitEnd && index > 0) flags |= SendFlag.OMIT_STREAM_HEADER;
  if (omitEnd && index < count - 1) flags |= SendFlag.OMIT_END_CMD;
  return flags;
}
