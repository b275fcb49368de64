// BTRFS_IOC_SEND off the main thread, and the pipe plumbing around it (protocol.md §5.1, §5.5).
//
// The ioctl blocks until the kernel has written the whole stream into `send_fd`, so it cannot run on
// the event loop (nobody would drain the pipe). It runs on a thread of its own through our Node-API
// module (native/blocking-calls.c, src/sys/blocking-calls.ts), which reads errno in C right after the
// call, on the calling thread. koffi's `.async()` could not be used for this: errno is thread-local and
// koffi.errno() in the callback reads the *main* thread's errno (measured: EBADF came back as 25 or 0).
// Without the native module, a worker_thread makes the call synchronously and reads errno right after
// it (~25 ms to start and ~10 MiB of memory, once per subvolume). The pipe copy beside it likewise.
//
// The argument block and the clone-source array live in SharedArrayBuffers built here: a worker sees
// the same memory, so the pointer written into the block is valid there too.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { Ioctl, StructSize } from './constants.js';
import { koffi, libc, SysError, check } from './libc.js';
import { blockingCalls } from './blocking-calls.js';

/** Offsets in `struct btrfs_ioctl_send_args` (x86-64). */
export const SendArgsLayout = {
  struct: 'btrfs_ioctl_send_args', size: StructSize.btrfs_ioctl_send_args,
  send_fd: 0, clone_sources_count: 8, clone_sources: 16, parent_root: 24, flags: 32, version: 40, reserved: 44,
} as const;

export interface SendIoctlParams {
  /** fd the kernel writes the stream to (a pipe's write end). */
  sendFd: number;
  /** Subvolume (tree) ids the kernel may clone from. */
  cloneSources: readonly number[];
  /** Root id of the parent for an incremental send; 0 = full send. */
  parentRoot: number;
  /** BTRFS_SEND_FLAG_* bits. */
  flags: number;
  /** Stream version (honoured only with BTRFS_SEND_FLAG_VERSION). */
  version: number;
}

/** Shared memory holding the argument block; keep the object alive until the ioctl returns. */
export interface EncodedSendArgs {
  args: Buffer;
  cloneSources: Buffer;
}

/** Lay out the ioctl's argument block (and the array it points to) in shared memory. */
export function encodeSendArgs(p: SendIoctlParams): EncodedSendArgs {
  const L = SendArgsLayout;
  const cloneSources = Buffer.from(new SharedArrayBuffer(Math.max(8, p.cloneSources.length * 8)));
  p.cloneSources.forEach((id, i) => cloneSources.writeBigUInt64LE(BigInt(id), i * 8));
  const args = Buffer.from(new SharedArrayBuffer(L.size));
  args.writeBigInt64LE(BigInt(p.sendFd), L.send_fd);
  args.writeBigUInt64LE(BigInt(p.cloneSources.length), L.clone_sources_count);
  args.writeBigUInt64LE(p.cloneSources.length ? BigInt(koffi.address(cloneSources)) : 0n, L.clone_sources);
  args.writeBigUInt64LE(BigInt(p.parentRoot), L.parent_root);
  args.writeBigUInt64LE(BigInt(p.flags), L.flags);
  args.writeUInt32LE(p.version >>> 0, L.version);
  return { args, cloneSources };
}

// The worker: blocking system calls made synchronously, errno read on the same thread. CommonJS source
// evaluated in the worker (works from both the compiled dist/ and vitest's TypeScript sources).
//   op 'ioctl': one ioctl whose argument block is in shared memory.
//   op 'copy':  move a pipe's contents to an fd with splice(2) (no copy through user space, as progs'
//               reader thread), falling back to read/write where splice is refused (EINVAL: e.g. an
//               O_APPEND file); EAGAIN on a non-blocking output waits in poll(2).
const WORKER_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const koffi = require(w.koffiPath);
const libc = koffi.load('libc.so.6');
const EINTR = 4, EAGAIN = 11, EINVAL = 22;
if (w.op === 'ioctl') {
  const ioctl = libc.func('int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)');
  const ret = ioctl(w.fd, w.request, Buffer.from(w.args));
  parentPort.postMessage({ ret, errno: ret < 0 ? koffi.errno() : 0 });
} else (() => {
  const splice = libc.func('intptr_t splice(int in, void *offin, int out, void *offout, size_t len, unsigned int flags)');
  const read = libc.func('intptr_t read(int fd, _Out_ uint8_t *buf, size_t n)');
  const write = libc.func('intptr_t write(int fd, uint8_t *buf, size_t n)');
  const poll = libc.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)');
  const fcntl = libc.func('fcntl', 'int', ['int', 'int', 'int']);
  const pfd = Buffer.alloc(8);
  const waitFor = (fd, events) => { pfd.writeInt32LE(fd, 0); pfd.writeInt16LE(events, 4); poll(pfd, 1, 1000); };
  // With a non-blocking output, pipe-to-pipe splice also says EAGAIN when the *input* is empty.
  const waitOut = () => { waitFor(w.in, 1 /* POLLIN */); waitFor(w.out, 4 /* POLLOUT */); };
  let total = 0, transfers = 0, useSplice = true, buf = null;
  const counter = w.progress ? new Float64Array(w.progress) : null; // bytes so far, for --progress
  const fail = (syscall, errno) => parentPort.postMessage({ ret: -1, errno, syscall, total });
  if (w.outPipeSize) fcntl(w.out, 1031 /* F_SETPIPE_SZ */, w.outPipeSize);
  for (;;) {
    if (useSplice) {
      const n = Number(splice(w.in, null, w.out, null, w.chunk, 4 /* SPLICE_F_MORE */));
      if (n > 0) { total += n; transfers++; if (counter) counter[0] = total; continue; }
      if (n === 0) break;
      const e = koffi.errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) { waitOut(); continue; }
      if (e === EINVAL) { useSplice = false; buf = Buffer.allocUnsafe(w.chunk); continue; }
      fail('splice', e); return;
    }
    const n = Number(read(w.in, buf, w.chunk));
    if (n === 0) break;
    if (n < 0) { const e = koffi.errno(); if (e === EINTR) continue; fail('read', e); return; }
    for (let done = 0; done < n;) {
      const m = Number(write(w.out, done ? buf.subarray(done, n) : buf.subarray(0, n), n - done));
      if (m >= 0) { done += m; continue; }
      const e = koffi.errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) { waitOut(); continue; }
      fail('write', e); return;
    }
    total += n;
    transfers++;
    if (counter) counter[0] = total;
  }
  parentPort.postMessage({ ret: 0, errno: 0, total, transfers });
})();
`;
const koffiPath = createRequire(import.meta.url).resolve('koffi');

interface WorkerResult { ret: number; errno: number; syscall?: string; total?: number; transfers?: number }

function runWorker(workerData: Record<string, unknown>, what: string): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      // stdout/stderr: true keeps the worker's (unused) stdio to itself. With false, Node pipes it into
      // process.stdout, which makes fd 1 non-blocking (then pipe-to-pipe splice spins on EAGAIN).
      // execArgv: []: the source is CommonJS even if this process runs with e.g. --input-type=module.
      eval: true, workerData: { koffiPath, ...workerData }, stdout: true, stderr: true, execArgv: [],
    });
    let settled = false;
    worker.once('message', (m: WorkerResult) => { settled = true; resolve(m); });
    worker.once('error', (e) => { if (!settled) { settled = true; reject(e); } });
    worker.once('exit', (code) => {
      if (!settled) { settled = true; reject(new Error(`${what}: worker thread exited (${code}) without a result`)); }
    });
  });
}

/**
 * Run an ioctl whose argument block is in shared memory off the main thread (a plain thread through
 * native/blocking-calls.c, or a worker thread). Resolves with the ioctl's return value; rejects with a
 * SysError carrying the errno of the thread that made the call. `keepAlive`: memory the
 * block points to (the worker's reference keeps it alive during the call).
 */
export async function ioctlOffThread(
  fd: number, request: number, args: Buffer, name: string, path?: string, keepAlive: Buffer[] = [],
): Promise<number> {
  if (!(args.buffer instanceof SharedArrayBuffer)) throw new TypeError('ioctlOffThread: args must be shared memory');
  const native = blockingCalls();
  if (native && keepAlive.length <= 1) {
    const [ret, errno] = await native.ioctl(fd, request, args, keepAlive[0] ?? null);
    if (ret < 0) throw new SysError(name, errno, path);
    return ret;
  }
  const m = await runWorker(
    { op: 'ioctl', fd, request, args: args.buffer, keepAlive: keepAlive.map((b) => b.buffer) }, name,
  );
  if (m.ret < 0) throw new SysError(name, m.errno, path);
  return m.ret;
}

/** How copyPipeOffThread copies. */
export interface PipeCopyOptions {
  /** Try F_SETPIPE_SZ on the output first (progs does, for v2, in case it is a pipe). */
  outPipeSize?: number;
  /** Shared memory where the copy keeps the byte count (--progress). */
  progress?: Float64Array;
  /**
   * > 0: pace the reading (native module only): having emptied the pipe, wait until about a quarter of it
   * has refilled, at most this many µs, so that the writer is not woken for every write
   * (native/blocking-calls.c, pace_after).
   */
  paceMaxMicros?: number;
}

/** What a pipe copy moved: bytes, and the calls that moved them (fewer when paced). */
export interface PipeCopied { bytes: number; transfers: number }

/**
 * Copy everything from pipe `inFd` to `outFd` until EOF off the main thread (splice, or read/write where
 * splice is refused). Rejects with SysError('splice'|'read'|'write', errno).
 */
export async function copyPipeOffThread(
  inFd: number, outFd: number, chunk: number, how: PipeCopyOptions = {},
): Promise<PipeCopied> {
  const { outPipeSize = 0, progress, paceMaxMicros = 0 } = how;
  const native = blockingCalls();
  if (native) {
    const [bytes, errno, syscall, transfers] = await native.copyPipe(inFd, outFd, chunk, outPipeSize, progress ?? null, paceMaxMicros);
    if (errno !== 0) throw new SysError(syscall ?? 'splice', errno);
    return { bytes, transfers };
  }
  const m = await runWorker({ op: 'copy', in: inFd, out: outFd, chunk, outPipeSize, progress: progress?.buffer }, 'copy');
  if (m.ret < 0) throw new SysError(m.syscall ?? 'splice', m.errno);
  return { bytes: m.total ?? 0, transfers: m.transfers ?? 0 };
}

/** BTRFS_IOC_SEND on `subvolFd` (the subvolume's root directory, O_RDONLY), off the main thread. */
export async function sendIoctl(subvolFd: number, params: SendIoctlParams, path?: string): Promise<void> {
  const { args, cloneSources } = encodeSendArgs(params);
  await ioctlOffThread(subvolFd, Ioctl.BTRFS_IOC_SEND, args, 'BTRFS_IOC_SEND', path, [cloneSources]);
}

const O_CLOEXEC = 0o2000000;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;

const pipe2Raw = libc.func('int pipe2(_Out_ int *fds, int flags)');
const fcntlInt = libc.func('fcntl', 'int', ['int', 'int', 'int']);

/** pipe2(O_CLOEXEC): [readEnd, writeEnd]. */
export function makePipe(): [number, number] {
  const fds = new Int32Array(2);
  check(pipe2Raw(fds, O_CLOEXEC) as number, 'pipe2');
  return [fds[0]!, fds[1]!];
}

/** F_SETPIPE_SZ; returns the new size, or -1 if the kernel refused (as progs, failure is not fatal). */
export function trySetPipeSize(fd: number, size: number): number {
  return fcntlInt(fd, F_SETPIPE_SZ, size) as number;
}

export function getPipeSize(fd: number): number {
  return check(fcntlInt(fd, F_GETPIPE_SZ, 0) as number, 'fcntl(F_GETPIPE_SZ)');
}

const F_GETFL = 3;
const SEEK_CUR = 1;
const SEEK_END = 2;
const lseekRaw = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');

/** fcntl(F_GETFL): the open file description's status flags (O_APPEND, O_DIRECT, O_NONBLOCK...). */
export function fileStatusFlags(fd: number): number {
  return check(fcntlInt(fd, F_GETFL, 0) as number, 'fcntl(F_GETFL)');
}

const F_SETFL = 4;

/** fcntl(F_SETFL): set the open file description's status flags. */
export function setFileStatusFlags(fd: number, flags: number): void {
  check(fcntlInt(fd, F_SETFL, flags) as number, 'fcntl(F_SETFL)');
}

/** The file position of `fd` (lseek SEEK_CUR). */
export function filePosition(fd: number): number {
  return check(Number(lseekRaw(fd, 0, SEEK_CUR)), 'lseek');
}

/** Move the file position of `fd` to the end of the file; returns it. */
export function seekToEnd(fd: number): number {
  return check(Number(lseekRaw(fd, 0, SEEK_END)), 'lseek');
}
