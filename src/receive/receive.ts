// `receive`: apply one or more send streams to a mounted btrfs (protocol.md §3, §6, §8).
//
// Stream records come from the codec's reader; SUBVOL/SNAPSHOT start a subvolume (finalizing the
// previous one), END finalizes, every other command goes to the SubvolReceiver. A subvolume is marked
// received and read-only only if all of its commands succeeded. Unlike progs, a truncated stream is
// always fatal and an error is never turned into success.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { ByteSource } from '../stream/source.js';
import type { Command } from '../stream/commands.js';
import { decodeFrame, frameFeed } from '../stream/reader.js';
import { StreamError } from '../stream/errors.js';
import { printablePath } from '../sys/libc.js';
import { SubvolReceiver } from './apply.js';
import { DecodeAhead, type DecodeJob } from './decode-ahead.js';
import { applyWithDecodeAhead } from './record-queue.js';
import { holdCreate, isCreate, renamesHeld, type HeldCreate } from './held-create.js';
import { openDestination, type Destination } from './destination.js';
import { commandFailure, ReceiveError } from './errors.js';
import { createSnapshot, createSubvol, deleteSubvol, finalizeSubvol, uuidText } from './subvol.js';
import { receiveCommandHint, streamErrorHint, withHint } from '../hints/index.js';

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
  /** --delete-on-failure: delete the partially received subvolume(s) when the receive fails. */
  deleteOnFailure?: boolean;
  /**
   * Trial-decode compressed extents before passing them to the kernel, which does not check them
   * (a corrupt payload would be stored and give EIO on read). Default true; the receive of a zstd stream takes
   * 1.13-1.28× the time without it (docs/benchmarks.md).
   */
  verifyEncoded?: boolean;
  /** Skip unknown command numbers instead of failing (--ignore-unknown). */
  skipUnknownCommands?: boolean;
  /** Largest accepted command body in bytes (default: the reader's). */
  maxCommandSize?: number;
  /** Where messages go (one line each, no newline); defaults to stderr. */
  log?: (line: string) => void;
  /** Called before each command with the stream bytes consumed so far and the command's path (--progress). */
  onProgress?: (streamBytes: number, path?: Buffer) => void;
}

export interface ReceiveSummary {
  /** Absolute paths of the subvolumes received (finalized). */
  subvolumes: string[];
  /** Commands read (END included). */
  commands: number;
  /** File data bytes written (WRITE data, decoded length of ENCODED_WRITE). */
  bytes: number;
  /** Stream bytes read, up to the end of the last END command. */
  streamBytes?: number;
  /** ENCODED_WRITE extents written compressed as they came / decompressed first. */
  encodedExtents?: number;
  decompressedExtents?: number;
}

/** The first path-like field of a command, for error messages. */
function commandPath(cmd: Command): Buffer | undefined {
  return 'path' in cmd ? cmd.path : undefined;
}

/** -vv: one line per command. */
function describe(cmd: Command, shown: (p: Buffer) => string): string {
  switch (cmd.cmd) {
    case 'rename': return `rename ${shown(cmd.path)} -> ${shown(cmd.to)}`;
    case 'link': return `link ${shown(cmd.path)} -> ${shown(cmd.target)}`;
    case 'write': return `write ${shown(cmd.path)} - offset=${cmd.offset} length=${cmd.data.length}`;
    case 'clone': return `clone ${shown(cmd.path)} - source=${printablePath(cmd.clonePath)} source offset=${cmd.cloneOffset} offset=${cmd.offset} length=${cmd.len}`;
    case 'truncate': return `truncate ${shown(cmd.path)} size=${cmd.size}`;
    case 'chmod': return `chmod ${shown(cmd.path)} - mode=0${cmd.mode.toString(8)}`;
    case 'chown': return `chown ${shown(cmd.path)} - uid=${cmd.uid}, gid=${cmd.gid}`;
    default: {
      const p = commandPath(cmd);
      return p === undefined ? cmd.cmd : `${cmd.cmd} ${shown(p)}`;
    }
  }
}

export async function receive(options: ReceiveOptions): Promise<ReceiveSummary> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const verbosity = options.verbosity;
  const maxErrors = options.maxErrors;
  // A stream file is opened before any chroot, so a path relative to the caller still works.
  let input = options.input;
  let inputFd: number | undefined;
  if (typeof input === 'string' && options.chroot) {
    inputFd = openSync(input, 'r');
    input = inputFd;
  }
  let dest: Destination;
  try {
    dest = openDestination(options.dest, { rootMount: options.rootMount, chroot: options.chroot, log, verbosity });
  } catch (e) {
    if (inputFd !== undefined) closeSync(inputFd);
    throw new ReceiveError(`receive failed: ${(e as Error).message}`, { cause: e });
  }
  const summary: ReceiveSummary = { subvolumes: [], commands: 0, bytes: 0, streamBytes: 0, encodedExtents: 0, decompressedExtents: 0 };
  const count = (sv: SubvolReceiver): void => {
    summary.bytes += sv.dataBytes;
    summary.encodedExtents! += sv.encodedExtents;
    summary.decompressedExtents! += sv.decompressedExtents;
  };
  /** Subvolumes created but not finalized (errors, or the receive stopped). */
  const partial: { name: Buffer; absPath: string }[] = [];
  let current: SubvolReceiver | undefined;
  let errors = 0;
  let lastError = '';
  let progressPath: Buffer | undefined;

  const applyOpts = {
    forceDecompress: options.forceDecompress, verifyEncoded: options.verifyEncoded !== false, verbosity, log,
    // The switch for A/B measurements and for the tests' controls.
    walkPaths: process.env.BTRFS_TS_NO_PATH_WALK !== '1',
  };

  /** End the current subvolume: finalize it if it had no errors, else leave it partial. */
  const closeCurrent = (): void => {
    const sv = current;
    if (!sv) return;
    current = undefined;
    try {
      if (sv.errors === 0) {
        sv.finishData();
        if (verbosity >= 2) log(`BTRFS_IOC_SET_RECEIVED_SUBVOL uuid=${uuidText(sv.uuid)}, stransid=${sv.ctransid}`);
        finalizeSubvol(sv.rootFd, sv.uuid, sv.ctransid, sv.absPath);
        summary.subvolumes.push(sv.absPath);
        const i = partial.findIndex((p) => p.absPath === sv.absPath);
        if (i >= 0) partial.splice(i, 1);
      }
    } finally {
      count(sv);
      sv.dispose();
    }
  };

  const startSubvol = (cmd: Extract<Command, { cmd: 'subvol' | 'snapshot' }>): void => {
    closeCurrent();
    const shownName = printablePath(cmd.path);
    const absPath = join(dest.destPath, cmd.path.toString());
    let rootFd: number;
    // Message order as progs: "At ..." first, then the -v details, then the ioctls.
    if (cmd.cmd === 'subvol') {
      if (verbosity >= 1) log(`At subvol ${shownName}`);
      if (verbosity >= 2) log(`receiving subvol ${shownName} uuid=${uuidText(cmd.uuid)}, stransid=${cmd.ctransid}`);
      rootFd = createSubvol(dest, cmd.path);
    } else {
      if (verbosity >= 1) log(`At snapshot ${shownName}`);
      if (verbosity >= 2) {
        log(`receiving snapshot ${shownName} uuid=${uuidText(cmd.uuid)}, ctransid=${cmd.ctransid} ` +
          `parent_uuid=${uuidText(cmd.cloneUuid)}, parent_ctransid=${cmd.cloneCtransid}`);
      }
      rootFd = createSnapshot(dest, cmd.path, cmd.cloneUuid, cmd.cloneCtransid, log, verbosity);
    }
    // Copies: the reader recycles its buffers (reuseBuffers), and these outlive the command.
    const name = Buffer.from(cmd.path);
    partial.push({ name, absPath });
    current = new SubvolReceiver(name, absPath, Buffer.from(cmd.uuid), cmd.ctransid, rootFd, dest, applyOpts, cmd.cmd === 'subvol');
  };

  /** Leave (or delete) what was not finalized, and say so. */
  const cleanupPartial = (): string[] => {
    if (current) {
      count(current);
      current.dispose();
      current = undefined;
    }
    const left: string[] = [];
    for (const p of partial) {
      if (options.deleteOnFailure) {
        try {
          deleteSubvol(dest, p.name);
          log(`deleted partially received subvolume ${p.absPath}`);
          continue;
        } catch (e) {
          log(`could not delete partially received subvolume ${p.absPath}: ${(e as Error).message}`);
        }
      } else {
        log(`partially received subvolume left at ${p.absPath} (writable, not marked received)`);
      }
      left.push(p.absPath);
    }
    partial.length = 0;
    return left;
  };

  /** Run one command's action; a failure is reported (or thrown) naming that command. */
  const applyRecord = (index: number, offset: number, cmd: Command, action: () => void): boolean => {
    try {
      action();
      return true;
    } catch (e) {
      const path = commandPath(cmd);
      const shown = path === undefined ? undefined
        : current && cmd.cmd !== 'subvol' && cmd.cmd !== 'snapshot' ? current.shown(path) : printablePath(path);
      const line = withHint(commandFailure(index, cmd.cmd, shown, offset, e), receiveCommandHint(cmd, e));
      errors++;
      if (current) current.errors++;
      lastError = line;
      // Subvolume-level failures and reaching the error limit stop the receive.
      if (cmd.cmd === 'subvol' || cmd.cmd === 'snapshot' || cmd.cmd === 'end' || (maxErrors > 0 && errors >= maxErrors)) {
        throw new ReceiveError(line, { index, commandName: cmd.cmd, offset, cause: e });
      }
      log(`ERROR: ${line}`);
      return false;
    }
  };

  /** A create command waiting for the next record (held-create.ts). */
  let held: HeldCreate | undefined;
  const applyHeld = (h: HeldCreate): void => {
    applyRecord(h.index, h.offset, h.cmd, () => current!.apply(h.cmd));
  };
  /** The held create followed by its RENAME to `to`: true when both were done as one create at `to`. */
  const applyHeldRenamed = (h: HeldCreate, to: Buffer): boolean => {
    let fused = false;
    // A failure here is the create's (the filesystem's, e.g. ENOSPC): reported as such, not retried.
    if (!applyRecord(h.index, h.offset, h.cmd, () => { fused = current!.createAt(h.cmd, to); })) return false;
    if (!fused) applyHeld(h);
    return fused;
  };

  // Zstd extents are decoded ahead on a helper thread when it is available (record-queue.ts).
  const ahead = DecodeAhead.create({ forceDecompress: options.forceDecompress, verify: options.verifyEncoded !== false });

  /** Apply one record: records come here strictly in stream order, whether read ahead or not. */
  const applyOne = (cmd: Command, index: number, offset: number, job?: DecodeJob): void => {
    summary.commands++;
    if (options.onProgress) {
      // The progress line may show the path later: hand it a copy (made once per file, not per command).
      const path = commandPath(cmd);
      if (path !== undefined && (progressPath === undefined || !progressPath.equals(path))) progressPath = Buffer.from(path);
      options.onProgress(offset, path === undefined ? undefined : progressPath);
    }
    if (cmd.cmd === 'end') summary.streamBytes = offset + 10; // END is a bare 10-byte header
    // -v: data commands, -vv: every command (paths relative to the subvolume, as progs prints them).
    if (verbosity >= 2 && current && (verbosity >= 3 || cmd.cmd === 'write' || cmd.cmd === 'clone')) {
      log(describe(cmd, printablePath));
    }
    if (held) {
      const h = held;
      held = undefined;
      // The create and its RENAME become one create at the final name; otherwise both go as sent.
      if (renamesHeld(h, cmd)) {
        if (applyHeldRenamed(h, cmd.to)) return;
      } else {
        applyHeld(h);
      }
    }
    if (current && isCreate(cmd)) {
      held = holdCreate(cmd, index, offset);
      return;
    }
    // An extent decoded ahead: its result (or decoding error) goes with it; the slot is free again.
    const decoded = job ? ahead!.finish(job) : undefined;
    applyRecord(index, offset, cmd, () => {
      if (cmd.cmd === 'subvol' || cmd.cmd === 'snapshot') startSubvol(cmd);
      else if (cmd.cmd === 'end') closeCurrent();
      else if (!current) throw new Error('no SUBVOL or SNAPSHOT command before this command');
      else if (decoded && cmd.cmd === 'encoded_write') current.encodedWrite(cmd, decoded.decoded, decoded.error, true);
      else current.apply(cmd);
    });
  };

  try {
    // reuseBuffers: commands are applied synchronously, one at a time, and whatever outlives its
    // command is copied (subvolume name and UUID, the write cache's and FILEATTR's paths, the progress
    // path, frames queued behind an extent decoded ahead), so the reader may recycle its two buffers
    // and read ahead (docs/benchmarks.md).
    const readerOptions = {
      reuseBuffers: true,
      stopAtFirstEnd: options.stopAtEnd,
      skipUnknownCommands: options.skipUnknownCommands === true,
      ...(options.maxCommandSize !== undefined ? { maxCommandSize: options.maxCommandSize } : {}),
    };
    const feed = frameFeed(input, readerOptions);
    if (ahead) await applyWithDecodeAhead(feed, ahead, applyOne);
    else await feed((f) => applyOne(decodeFrame(f), f.index, f.at));
    if (held) applyHeld(held);
    closeCurrent();
    if (errors > 0) {
      throw new ReceiveError(`receive finished with ${errors} error${errors === 1 ? '' : 's'}; last: ${lastError}`);
    }
    return summary;
  } catch (e) {
    let err: ReceiveError;
    if (e instanceof ReceiveError) err = e;
    else if (e instanceof StreamError) {
      err = new ReceiveError(`receive failed: ${withHint(e.message, streamErrorHint(e.message))}`, {
        ...(e.index !== undefined ? { index: e.index } : {}),
        ...(e.commandName !== undefined ? { commandName: e.commandName } : {}),
        offset: e.offset, cause: e,
      });
    } else err = new ReceiveError(`receive failed: ${(e as Error).message}`, { cause: e });
    const left = cleanupPartial();
    throw new ReceiveError(err.message, {
      ...(err.index !== undefined ? { index: err.index } : {}),
      ...(err.commandName !== undefined ? { commandName: err.commandName } : {}),
      ...(err.offset !== undefined ? { offset: err.offset } : {}),
      partial: left, cause: err.cause,
    });
  } finally {
    if (ahead) {
      if (process.env.BTRFS_TS_DECODE_AHEAD_STATS === '1') log(`decode-ahead: ${JSON.stringify(ahead.stats())}`);
      ahead.close();
    }
    if (current) current.dispose();
    dest.close();
    if (inputFd !== undefined) closeSync(inputFd);
  }
}

export { ReceiveError } from './errors.js';
