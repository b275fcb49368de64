// Errors of the receive engine. Every message is one line; the CLI prefixes `ERROR: `.
import { printablePath } from '../sys/libc.js';

/** A stream path that would leave the subvolume (or is malformed): refused before any system call. */
export class UnsafePathError extends Error {
  constructor(what: string, path: Buffer, why: string) {
    super(`unsafe ${what} '${printablePath(path)}': ${why}`);
    this.name = 'UnsafePathError';
  }
}

/** A command the engine refuses on purpose (wrong parent, unreachable clone source, ...). */
export class RefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedError';
  }
}

/** The error `receive()` rejects with: one line, plus where it happened when known. */
export class ReceiveError extends Error {
  /** 1-based command index, when the failure belongs to a command. */
  readonly index: number | undefined;
  readonly commandName: string | undefined;
  /** Byte offset of the command (or stream problem) in the input. */
  readonly offset: number | undefined;
  /** Subvolumes left behind writable and not marked received (absolute paths). */
  readonly partial: string[];

  constructor(message: string, opts: { index?: number; commandName?: string; offset?: number; partial?: string[]; cause?: unknown } = {}) {
    super(message);
    this.name = 'ReceiveError';
    this.index = opts.index;
    this.commandName = opts.commandName;
    this.offset = opts.offset;
    this.partial = opts.partial ?? [];
    if (opts.cause !== undefined) this.cause = opts.cause;
  }
}

/** `receive failed at command #12 (write) snap/a/b (stream byte 93212): <cause>`. */
export function commandFailure(
  index: number, name: string, shownPath: string | undefined, offset: number, cause: unknown,
): string {
  const where = shownPath === undefined ? '' : ` ${shownPath}`;
  const why = cause instanceof Error ? cause.message : String(cause);
  return `receive failed at command #${index} (${name})${where} (stream byte ${offset}): ${why}`;
}
