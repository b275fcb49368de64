// PLACEHOLDER until the receive engine lands (the receive-engine owner replaces this file).
import type { ByteSource } from '../stream/source.js';

export interface ReceiveOptions {
  /** Destination directory (on a mounted btrfs). */
  dest: string;
  /** Where the stream comes from: stdin's fd, a file path (-f), or any readable. */
  input: ByteSource;
  /** 0 = -q, 1 = default, 2 = -v, 3 = -vv. */
  verbosity: number;
  /** -e: stop after the first END. */
  stopAtEnd: boolean;
  /** -C / --chroot. */
  chroot: boolean;
  /** -E N: stop at the N-th error; 0 = never (EOF is always fatal). */
  maxErrors: number;
  /** -m ROOTMOUNT. */
  rootMount?: string;
  /** --force-decompress: never use BTRFS_IOC_ENCODED_WRITE. */
  forceDecompress: boolean;
  /** Where messages go (one line each, no newline); defaults to stderr. */
  log?: (line: string) => void;
}

export interface ReceiveSummary {
  subvolumes: string[];
  commands: number;
  bytes: number;
}

export async function receive(_options: ReceiveOptions): Promise<ReceiveSummary> {
  throw new Error('receive: not implemented yet');
}
