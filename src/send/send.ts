// `btrfs-ts send`: checks and resolves the subvolumes as btrfs-progs does (protocol.md §5.2–5.6), then
// runs BTRFS_IOC_SEND once per subvolume on another thread: into the output file directly where the
// output is one (direct-file.ts), else into a pipe that this side copies to the output. The kernel
// produces the stream; we only choose its arguments, so the bytes equal progs'.
import { closeSync, constants as fsConstants, openSync, realpathSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { Writable } from 'node:stream';
import { SendFlag } from '../sys/constants.js';
import { SysError, strerror } from '../sys/libc.js';
import { subvolGetFlags, rootIdOf } from '../sys/btrfs-ioctl.js';
import { BTRFS_SUBVOL_RDONLY } from '../sys/constants.js';
import { makePipe, sendIoctl, trySetPipeSize } from '../sys/send-ioctl.js';
import { SendError } from './errors.js';
import { findMountRoot } from './mounts.js';
import { chooseParent } from './parent.js';
import { mountLookup } from './lookup.js';
import {
  chooseProtocol, kernelSendStreamVersion, SEND_BUF_SIZE_V1, SEND_BUF_SIZE_V2, subvolumeSendFlags,
} from './protocol-choice.js';
import { pumpPipe, type StreamSink } from './pump.js';
import { appendToOwnFile, directBytesWritten, directFileTarget, finishDirectFile, type DirectFile } from './direct-file.js';
import { notBtrfsHint, permissionHint, readWriteHint, withHint } from '../hints/index.js';

export { SendError } from './errors.js';

export interface SendOptions {
  /** Subvolumes to send, in order. */
  subvolumes: string[];
  /** -p PARENT. */
  parent?: string;
  /** -c CLONE_SRC (repeatable). */
  cloneSources: string[];
  /** -f OUTFILE; otherwise `output` if given, else `outputFd` (default 1, stdout). */
  outFile?: string;
  outputFd?: number;
  /** Write the stream into this Node stream instead of an fd (in-process use, e.g. the demo). */
  output?: Writable;
  /** --no-data. */
  noData: boolean;
  /** --proto N (undefined = progs' default). */
  proto?: number;
  /** --compressed-data. */
  compressedData: boolean;
  /** -e. */
  omitEnd: boolean;
  /** 0 = -q, 1 = default, 2 = -v. */
  verbosity: number;
  /** Where messages go (one line each, no newline); defaults to stderr. */
  log?: (line: string) => void;
  /** Called as the stream is written, with the bytes written so far over all subvolumes (--progress). */
  onProgress?: (bytes: number) => void;
  /** The kernel's highest stream version; default: read from sysfs (tests override it). */
  kernelVersion?: number;
}

const O_NOATIME = fsConstants.O_NOATIME ?? 0o1000000;

/** The text progs' %m would print for a failed Node fs call or SysError. */
function errnoText(e: unknown): string {
  if (e instanceof SysError) return strerror(e.errno);
  const errno = (e as NodeJS.ErrnoException).errno;
  if (typeof errno === 'number') return strerror(Math.abs(errno));
  return e instanceof Error ? e.message : String(e);
}

function realpathOr(path: string, message: (e: unknown) => string): string {
  try {
    return realpathSync(path);
  } catch (e) {
    throw new SendError(message(e));
  }
}

function withFd<T>(path: string, use: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | O_NOATIME);
  } catch (e) {
    throw new SendError(withHint(`cannot open ${path}: ${errnoText(e)}`, permissionHint(e, 'send')));
  }
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/** progs' is_subvol_ro: GETFLAGS (EINVAL on a plain directory) and the read-only bit. */
function isReadOnly(path: string): boolean {
  return withFd(path, (fd) => {
    try {
      return (subvolGetFlags(fd, path) & BTRFS_SUBVOL_RDONLY) !== 0;
    } catch (e) {
      throw new SendError(`failed to get flags for subvolume ${path}: ${errnoText(e)}`);
    }
  });
}

/**
 * The tree id of the subvolume holding `path` (INO_LOOKUP, as progs 6.2). For a plain directory that is
 * its containing subvolume; callers also run isReadOnly(), whose GETFLAGS refuses non-subvolumes.
 */
function subvolRootId(path: string): number | undefined {
  try {
    return withFd(path, (fd) => rootIdOf(fd));
  } catch {
    return undefined;
  }
}

/** progs' init_root_path: the btrfs mount `path` is on (the path must be openable). */
function mountRootFor(path: string): string {
  try {
    closeSync(openSync(path, fsConstants.O_RDONLY | O_NOATIME));
  } catch (e) {
    throw new SendError(withHint(`failed to determine mount point for ${path}: ${errnoText(e)}`, permissionHint(e, 'send')));
  }
  const found = findMountRoot(path);
  if (found.kind === 'none') throw new SendError(`failed to determine mount point for ${path}: ${strerror(2)}`);
  if (found.kind === 'not-btrfs') throw new SendError(withHint(`${path} doesn't belong to btrfs mount point`, notBtrfsHint('send')));
  return found.root;
}

/** Where the stream goes: -f FILE (existing file truncated, else created 0600), a Writable, or an fd. */
function openSink(options: SendOptions): { sink: StreamSink; close(): void } {
  if (options.outFile !== undefined) {
    let fd: number;
    try {
      fd = openSync(options.outFile, fsConstants.O_WRONLY | fsConstants.O_TRUNC);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SendError(`cannot create '${options.outFile}': ${errnoText(e)}`);
      }
      try {
        fd = openSync(options.outFile, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, 0o600);
      } catch (e2) {
        throw new SendError(`cannot create '${options.outFile}': ${errnoText(e2)}`);
      }
    }
    appendToOwnFile(fd);
    return { sink: { kind: 'fd', fd, name: options.outFile }, close: () => closeSync(fd) };
  }
  if (options.output) return { sink: { kind: 'writable', stream: options.output }, close: () => {} };
  return { sink: { kind: 'fd', fd: options.outputFd ?? 1 }, close: () => {} };
}

export function checkNotTerminal(sink: StreamSink): void {
  if (sink.kind === 'fd' && isatty(sink.fd)) {
    throw new SendError('not dumping send stream into a terminal, redirect it into a file');
  }
}

interface OneSend {
  path: string;
  parentRoot: number;
  cloneSources: readonly number[];
  flags: number;
  version: number;
  bigBuffers: boolean;
  multiWithEnd: boolean;
}

/** errnos that, in a send written straight into a file, can only come from writing the file. */
const WRITE_ERRNOS = new Set([27 /* EFBIG */, 28 /* ENOSPC */, 122 /* EDQUOT */]);

interface IoctlOutcome {
  written: number;
  ioctlError?: unknown;
}

/** One BTRFS_IOC_SEND: straight into the output where it is a file that allows it, else through a pipe. */
async function sendOne(
  job: OneSend, sink: StreamSink, log: (line: string) => void, verbosity: number, onBytes?: (bytes: number) => void,
): Promise<number> {
  const subvolFd = (() => {
    try {
      return openSync(job.path, fsConstants.O_RDONLY | O_NOATIME);
    } catch (e) {
      throw new SendError(`cannot open ${job.path}: ${errnoText(e)}`);
    }
  })();
  try {
    const direct = sink.kind === 'fd' ? directTargetOrNone(sink.fd) : undefined;
    const { written, ioctlError } = direct
      ? await sendIntoFile(subvolFd, job, direct, onBytes)
      : await sendThroughPipe(subvolFd, job, sink, onBytes);
    if (ioctlError !== undefined) {
      if (!(ioctlError instanceof SysError)) throw ioctlError;
      if (direct && WRITE_ERRNOS.has(ioctlError.errno)) {
        throw new SendError(`failed to write stream to ${sinkName(sink)}: ${strerror(ioctlError.errno)}`);
      }
      // progs prints this hint after the error line; we can only print it before.
      if (ioctlError.errno === 22 && job.multiWithEnd) log("Try upgrading your kernel or don't use -e.");
      throw new SendError(withHint(`send ioctl failed with -${ioctlError.errno}: ${strerror(ioctlError.errno)}`,
        permissionHint(ioctlError, 'send')));
    }
    if (verbosity >= 2) log('BTRFS_IOC_SEND returned 0');
    return written;
  } finally {
    closeSync(subvolFd);
  }
}

function sinkName(sink: StreamSink): string {
  if (sink.kind !== 'fd') return 'the output stream';
  if (sink.name !== undefined) return `'${sink.name}'`;
  return sink.fd === 1 ? 'standard output' : `file descriptor ${sink.fd}`;
}

/** A bad fd is not ours to report here: the pipe path's copy reports it as progs does. */
function directTargetOrNone(fd: number): DirectFile | undefined {
  try {
    return directFileTarget(fd);
  } catch {
    return undefined;
  }
}

/** The kernel writes into the file itself (src/send/direct-file.ts); --progress watches its size. */
async function sendIntoFile(
  subvolFd: number, job: OneSend, target: DirectFile, onBytes?: (bytes: number) => void,
): Promise<IoctlOutcome> {
  const timer = onBytes && setInterval(() => onBytes(directBytesWritten(target)), 100);
  let ioctlError: unknown;
  try {
    await sendIoctl(subvolFd, {
      sendFd: target.fd, cloneSources: job.cloneSources, parentRoot: job.parentRoot,
      flags: job.flags, version: job.version,
    }, job.path);
  } catch (e) {
    ioctlError = e;
  } finally {
    if (timer) clearInterval(timer);
  }
  finishDirectFile(target);
  const written = directBytesWritten(target);
  onBytes?.(written);
  return { written, ioctlError };
}

/** The kernel's pipe when it may be enlarged: 1 MiB, the default /proc/sys/fs/pipe-max-size. */
const SEND_PIPE_SIZE = 1024 * 1024;

/**
 * How long the copy from the kernel's pipe may wait for it to fill, at most, in µs: not woken for every
 * command the kernel writes, the send ioctl takes ~30 % less system time (docs/benchmarks.md).
 * BTRFS_TS_SEND_PACING=0 turns pacing off (to measure against).
 */
function sendPipePaceMicros(): number {
  return process.env.BTRFS_TS_SEND_PACING === '0' ? 0 : 2000;
}

/** progs' plumbing: a pipe for the kernel, drained into the sink on another thread while the ioctl runs. */
async function sendThroughPipe(
  subvolFd: number, job: OneSend, sink: StreamSink, onBytes?: (bytes: number) => void,
): Promise<IoctlOutcome> {
  let readFd = -1;
  let writeFd = -1;
  try {
    try {
      [readFd, writeFd] = makePipe();
    } catch (e) {
      throw new SendError(`pipe failed: ${errnoText(e)}`);
    }
    // A large pipe lets the paced copy wait ~2 ms between transfers without the kernel filling it; where
    // 1 MiB is refused (an unprivileged user's pipe limits), progs' v2 size.
    if (trySetPipeSize(readFd, SEND_PIPE_SIZE) < 0 && job.bigBuffers) {
      trySetPipeSize(readFd, SEND_BUF_SIZE_V2);
      trySetPipeSize(writeFd, SEND_BUF_SIZE_V2);
    }
    // As progs: v2-sized copies (and an enlarged output pipe) only when v2+ was asked for explicitly.
    const chunk = job.version > 1 ? SEND_BUF_SIZE_V2 : SEND_BUF_SIZE_V1;
    let pumpError: unknown;
    let written = 0;
    const pump = pumpPipe(readFd, sink, {
      chunk, outPipeSize: job.version > 1 ? SEND_BUF_SIZE_V2 : 0, paceMaxMicros: sendPipePaceMicros(),
    }, onBytes).then((n) => {
      written = n;
    }, (e: unknown) => {
      pumpError = e;
      // Nobody reads any more: closing the read end makes the kernel's next write fail with EPIPE,
      // so the ioctl returns instead of blocking on a full pipe.
      closeSync(readFd);
      readFd = -1;
    });
    let ioctlError: unknown;
    try {
      await sendIoctl(subvolFd, {
        sendFd: writeFd, cloneSources: job.cloneSources, parentRoot: job.parentRoot,
        flags: job.flags, version: job.version,
      }, job.path);
    } catch (e) {
      ioctlError = e;
    }
    closeSync(writeFd);
    writeFd = -1;
    await pump;
    if (pumpError !== undefined) {
      throw new SendError(`failed to read stream from kernel: ${errnoText(pumpError)}`);
    }
    return { written, ioctlError };
  } finally {
    if (readFd >= 0) closeSync(readFd);
    if (writeFd >= 0) closeSync(writeFd);
  }
}

export async function send(options: SendOptions): Promise<void> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const verbosity = options.verbosity;
  if (options.subvolumes.length === 0) throw new SendError('no subvolume given');
  const cloneSources: number[] = [];

  // -c: each must be a read-only subvolume on a btrfs mount.
  for (const given of options.cloneSources) {
    const path = realpathOr(given, (e) => `realpath ${given} failed: ${errnoText(e)}`);
    mountRootFor(path);
    const rootId = subvolRootId(path);
    if (rootId === undefined) throw new SendError(`cannot resolve rootid for ${path}`);
    if (!isReadOnly(path)) throw new SendError(withHint(`cloned subvolume ${path} is not read-only`, readWriteHint(path)));
    cloneSources.push(rootId);
  }

  // -p: read-only; its root id is resolved once the mount is known.
  let parentPath: string | undefined;
  if (options.parent !== undefined) {
    const given = options.parent;
    parentPath = realpathOr(given, (e) => `realpath ${given} failed: ${errnoText(e)}`);
    if (!isReadOnly(parentPath)) throw new SendError(withHint(`parent subvolume ${parentPath} is not read-only`, readWriteHint(parentPath)));
  }

  const output = openSink(options);
  try {
    checkNotTerminal(output.sink);

    const first = options.subvolumes[0]!;
    const mountRoot = mountRootFor(realpathOr(first, () => `unable to resolve ${first}`));

    let parentRoot = 0;
    if (parentPath !== undefined) {
      const id = subvolRootId(parentPath);
      if (id === undefined) throw new SendError(`could not resolve rootid for ${parentPath}`);
      parentRoot = id;
      cloneSources.push(id);
    }

    for (const given of options.subvolumes) {
      const path = realpathOr(given, () => `unable to resolve ${given}`);
      const found = findMountRoot(path);
      if (found.kind === 'none') throw new SendError(`find_mount_root failed on ${path}: ${strerror(2)}`);
      if (found.kind === 'not-btrfs') throw new SendError(withHint(`${path} does not belong to btrfs mount point`, notBtrfsHint('send')));
      if (found.root !== mountRoot) throw new SendError('all subvolumes must be from the same filesystem');
      if (!isReadOnly(path)) throw new SendError(withHint(`subvolume ${path} is not read-only`, readWriteHint(path)));
    }

    if (options.noData && verbosity > 1) log('Mode NO_FILE_DATA enabled');
    const supported = options.kernelVersion ?? kernelSendStreamVersion();
    const protocol = chooseProtocol(options.proto, options.compressedData, supported);
    if (verbosity >= 2) log(`Protocol version requested: ${protocol.version} (supported ${supported})`);

    const baseFlags = protocol.flags | (options.noData ? SendFlag.NO_FILE_DATA : 0)
      | (options.compressedData ? SendFlag.COMPRESSED : 0);
    const autoParent = options.cloneSources.length > 0 && parentPath === undefined;
    const lookup = autoParent ? mountLookup(mountRoot) : undefined;
    let sentBytes = 0;
    try {
      const count = options.subvolumes.length;
      for (let i = 0; i < count; i++) {
        const given = options.subvolumes[i]!;
        if (verbosity >= 1) log(`At subvol ${given}`);
        const path = realpathOr(given, (e) => `realpath ${given} failed: ${errnoText(e)}`);
        let rootId = 0;
        if (lookup) {
          const id = subvolRootId(path);
          if (id === undefined) throw new SendError(`cannot resolve rootid for ${path}`);
          rootId = id;
          const chosen = chooseParent(rootId, cloneSources, lookup.lookup);
          if (chosen === undefined) throw new SendError(`parent determination failed for ${rootId}`);
          parentRoot = chosen;
        }
        const before = sentBytes;
        sentBytes += await sendOne({
          path, parentRoot, cloneSources: [...cloneSources],
          flags: subvolumeSendFlags(baseFlags, i, count, options.omitEnd),
          version: protocol.version, bigBuffers: protocol.bigBuffers,
          multiWithEnd: options.omitEnd && count > 1,
        }, output.sink, log, verbosity, options.onProgress && ((n) => options.onProgress!(before + n)));
        // progs: in automatic-parent mode each sent subvolume becomes a clone source for the next.
        if (lookup) cloneSources.push(rootId);
      }
    } finally {
      lookup?.close();
    }
  } finally {
    output.close();
  }
}
