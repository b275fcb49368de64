// Turns any ByteSource into a sliding window of bytes that the reader parses in place.
//
// The window is `buf[pos..end)`. `ensure(n)` makes at least n bytes contiguous there, reading more when
// needed. The invariant that keeps yielded Buffers valid: bytes that have been made visible in a
// window are never written again. Regular files are read with fs.read into fresh 1 MiB buffers,
// appending only into the never-exposed tail; a command that does not fit the tail has its partial
// bytes copied into the next buffer. Pipes and sockets, Readables and async iterables deliver chunks:
// a chunk holding the bytes needed is used as it is (the producer must not rewrite a chunk after
// yielding it, which Node streams never do); bytes spanning chunks are appended into a 1 MiB
// accumulation buffer, again only into its never-exposed tail. Memory held by the window: one buffer
// plus at most one command (the reader caps a command's size before asking for its bytes).
import { open, close, read, readSync, fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ByteSource } from './source.js';
import { ExactFdWindow } from './exact-fd-window.js';
import { openReadAheadWindow } from './read-ahead-window.js';
import { PipeWindow, type OnRead, type PipeSocketSource } from './pipe-window.js';
import { seekBack } from './seek-back.js';
import { allocAligned, READ_ALIGNMENT } from '../sys/aligned-buffer.js';
import { fdCalls, growPipe, type FdCalls } from '../sys/fd-calls.js';

/** Size of the buffers file descriptors are read into. */
export const FD_CHUNK_SIZE = 1024 * 1024;
/** Size of the buffer that commands spanning several chunks of an iterable are assembled in. */
const ACC_SIZE = 1024 * 1024;
const EMPTY: Buffer = Buffer.alloc(0);

export interface ByteWindow {
  /** Current bytes are buf[pos..end). The parser advances `pos` itself. */
  buf: Buffer;
  pos: number;
  end: number;
  /** Make at least n bytes available at buf[pos..]; false when the input ends first (the window then
   *  holds everything that was left). */
  ensure(n: number): Promise<boolean>;
  /** Stop reading: close what we opened; give unread bytes back to a Readable. */
  release(): Promise<void>;
}

/**
 * `reuse`: the caller promises not to keep any Buffer from the window once it asks for more bytes, so
 * a file descriptor is read into one recycled buffer instead of fresh memory per MiB (about twice as
 * fast: fresh memory costs page faults); iterables recycle their assembly buffer likewise.
 * `parserBound` (with reuse), for a consumer that waits for nothing else (--dump): a regular file is read
 * in 256 KiB pieces, each parsed while it is still in the CPU cache — by a native read-ahead thread
 * (read-ahead-window.ts; 1 GiB v1 dump 0.38-0.40 s against 0.44-0.45 s with caches dropped), or without
 * it by synchronous reads (against 0.53-0.58 s for libuv's pool). Receive keeps libuv's read-ahead, which
 * overlaps its kernel calls.
 */
export interface WindowOptions {
  /** The caller keeps no Buffer from the window once it asks for more bytes (see above). */
  reuse?: boolean;
  /** The consumer waits for nothing else (only with reuse): read a regular file in cache-sized pieces, ahead on a native thread. */
  parserBound?: boolean;
  /** Never read past the bytes asked for: a pipe's later bytes stay in the pipe (`-e`, exact-fd-window.ts). */
  exact?: boolean;
}

export function openByteWindow(source: ByteSource, opts: WindowOptions = {}): ByteWindow {
  const reuse = opts.reuse === true;
  const parserBound = opts.parserBound === true;
  if (typeof source === 'number') {
    if (isPipeOrSocket(source)) return opts.exact ? new ExactFdWindow(source, reuse) : new PipeWindow(pipeSocket(source), reuse);
    if (reuse && parserBound && isRegularFile(source)) return openReadAheadWindow(source) ?? new SyncFileWindow(source);
    return reuse ? new PrefetchFdWindow(source, undefined) : new FdWindow(source, undefined, reuse);
  }
  if (typeof source === 'string') return reuse ? new PrefetchFdWindow(undefined, source) : new FdWindow(undefined, source, reuse);
  if (source && typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
    return new IterableWindow(source as AsyncIterable<Uint8Array>, reuse);
  }
  throw new TypeError('stream source must be a file descriptor, a path, a Readable or an async iterable of bytes');
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

function isPipeOrSocket(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false; // a bad fd is reported by the first read
  }
}

const F_GETFL = 3;
const F_SETFL = 4;
/**
 * Pipes and sockets (e.g. `btrfs send | btrfs-ts receive`) are read through libuv's stream machinery
 * (fs.read on a pipe goes through the thread pool for every read and is about 4× slower), into the
 * window's own buffers (pipe-window.ts), once the pipe is grown (sys/fd-calls.ts). The Socket gets a
 * dup of the fd, so closing it leaves the caller's fd open, and the file status flags (libuv sets
 * O_NONBLOCK on the shared open file) are restored at the end.
 */
function pipeSocket(fd: number): PipeSocketSource {
  let flags = -1;
  let calls: FdCalls | undefined;
  return {
    async open(onread: OnRead) {
      calls = await fdCalls();
      flags = calls.fcntl(fd, F_GETFL, 0);
      await growPipe(fd);
      const copy = calls.dup(fd);
      if (copy < 0) throw new Error(`cannot read the stream from fd ${fd}: dup failed`);
      // node:net is loaded only here: regular files never need it (it costs start-up time and memory).
      const { Socket } = await import('node:net');
      // `onread` is documented for the constructor (Node ≥ 12), not yet in the typings we use.
      const options = { fd: copy, readable: true, writable: false, onread };
      return new Socket(options as ConstructorParameters<typeof Socket>[0]);
    },
    close(socket) {
      socket.destroy();
      if (flags >= 0) calls!.fcntl(fd, F_SETFL, flags);
    },
  };
}

function readFd(fd: number, buf: Buffer, off: number, len: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      read(fd, buf, off, len, null, (err, n) => {
        // A non-blocking fd (e.g. an inherited stdin pipe) reports EAGAIN when empty: wait and retry.
        if (err && err.code === 'EAGAIN') setTimeout(attempt, 2);
        else if (err) reject(err);
        else resolve(n);
      });
    };
    attempt();
  });
}

class FdWindow implements ByteWindow {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  private eof = false;
  private fd: number | undefined;
  private opening: Promise<number> | undefined;

  constructor(fd: number | undefined, private readonly path: string | undefined, private readonly reuse: boolean) {
    this.fd = fd;
  }

  private getFd(): Promise<number> | number {
    if (this.fd !== undefined) return this.fd;
    this.opening ??= new Promise<number>((resolve, reject) =>
      open(this.path!, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
    return this.opening.then((fd) => (this.fd = fd));
  }

  async ensure(n: number): Promise<boolean> {
    if (this.end - this.pos >= n) return true;
    if (this.eof) return false;
    const fd = await this.getFd();
    if (this.buf.length - this.pos < n) {
      // The unread tail goes just before a page boundary, where the next read starts (page-aligned
      // reads: sys/aligned-buffer.ts).
      const tail = this.end - this.pos;
      const at = alignUp(tail);
      if (this.reuse && this.buf.length >= at - tail + n) {
        // Nothing handed out earlier is still in use (caller's promise): slide the tail back to `at`.
        this.buf.copyWithin(at - tail, this.pos, this.end);
      } else {
        // Move the unread tail into a new buffer; the old one keeps its exposed bytes untouched.
        const next = allocAligned(Math.max(this.reuse ? 4 * FD_CHUNK_SIZE : FD_CHUNK_SIZE, at - tail + n));
        this.buf.copy(next, at - tail, this.pos, this.end);
        this.buf = next;
      }
      this.pos = at - tail;
      this.end = at;
    }
    while (this.end - this.pos < n) {
      const got = await readFd(fd, this.buf, this.end, this.buf.length - this.end);
      if (got === 0) {
        this.eof = true;
        return false;
      }
      this.end += got;
    }
    return true;
  }

  async release(): Promise<void> {
    const unread = this.end - this.pos;
    this.pos = this.end;
    const fd = this.fd;
    this.fd = undefined;
    await releaseFd(fd, this.path === undefined, unread);
  }
}

class IterableWindow implements ByteWindow {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  /** Rest of a chunk whose head went into an assembled buffer. */
  private pending: Buffer | undefined;
  private readonly it: AsyncIterator<Uint8Array | string>;
  private done = false;
  /** Accumulation buffer for bytes that span chunks. */
  private acc: Buffer = EMPTY;

  constructor(private readonly source: AsyncIterable<Uint8Array>, private readonly reuse = false) {
    const readable = source as Partial<Readable>;
    // Readables: do not destroy on early exit, so `-e` can hand the remaining bytes back.
    this.it = typeof readable.iterator === 'function' && typeof readable.unshift === 'function'
      ? readable.iterator({ destroyOnReturn: false })
      : source[Symbol.asyncIterator]();
  }

  private async nextChunk(): Promise<Buffer | undefined> {
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      return p;
    }
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const c = r.value;
      if (typeof c === 'string') throw new TypeError('stream source yielded a string; it must yield bytes');
      if (c.length === 0) continue;
      return Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    }
    return undefined;
  }

  async ensure(n: number): Promise<boolean> {
    if (this.end - this.pos >= n) return true;
    if (this.pos === this.end) {
      // Nothing partial: a chunk that holds the n bytes becomes the window as it is (no copy).
      const c = await this.nextChunk();
      if (!c) return false;
      if (c.length >= n) {
        this.buf = c;
        this.pos = 0;
        this.end = c.length;
        return true;
      }
      this.pending = c;
    }
    // Bytes spanning chunks are appended into an accumulation buffer whose tail was never exposed.
    // Whole chunks are appended while they fit, so a pipe's 64 KiB pieces are copied once each.
    let acc = this.acc;
    if (this.buf !== acc || acc.length - this.pos < n) {
      if (this.reuse && acc.length >= n) {
        if (this.buf === acc) acc.copyWithin(0, this.pos, this.end);
        else this.buf.copy(acc, 0, this.pos, this.end);
      } else {
        acc = Buffer.allocUnsafe(Math.max(ACC_SIZE, n));
        this.buf.copy(acc, 0, this.pos, this.end);
        this.acc = acc;
      }
      this.end -= this.pos;
      this.pos = 0;
      this.buf = acc;
    }
    while (this.end - this.pos < n) {
      const c = await this.nextChunk();
      if (!c) return false;
      const take = Math.min(acc.length - this.end, c.length);
      c.copy(acc, this.end, 0, take);
      this.end += take;
      if (take < c.length) this.pending = c.subarray(take);
    }
    return true;
  }

  async release(): Promise<void> {
    const readable = this.source as Partial<Readable>;
    const unread: Buffer[] = [];
    if (this.end > this.pos) unread.push(this.buf.subarray(this.pos, this.end));
    if (this.pending) unread.push(this.pending);
    this.pos = this.end;
    this.pending = undefined;
    if (!this.done) await this.it.return?.();
    if (typeof readable.unshift === 'function' && unread.length > 0 && !readable.destroyed) {
      readable.unshift(Buffer.concat(unread));
    }
  }
}

/** Room kept in front of each prefetch buffer for the unfinished command carried over from the last one. */
const CARRY_ROOM = 256 * 1024;
/**
 * Bytes read into a prefetch buffer at a time. 256 KiB instead of 1 MiB: 1.5 MiB less peak RSS for a
 * receive, at the same speed (the reads are on libuv's pool; docs/benchmarks.md, "What we tried").
 */
const PREFETCH_CHUNK_SIZE = 256 * 1024;

/**
 * Regular files in reuse mode (receive, --dump): two recycled buffers, and the next chunk of the file is
 * always being read (on libuv's thread pool) while the caller works on the current one, so reading
 * overlaps parsing and the kernel calls of a receive. Each buffer keeps CARRY_ROOM bytes free in front
 * of its data: the unfinished command at the end of the current buffer is copied there, so the window
 * stays contiguous with one small copy. A command larger than that goes through a dedicated buffer.
 * Memory: 2 × (PREFETCH_CHUNK_SIZE + CARRY_ROOM), plus the largest command when one exceeds CARRY_ROOM.
 */
class PrefetchFdWindow implements ByteWindow {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  private eof = false;
  private fd: number | undefined;
  /** The two recycled buffers; the window is one of them (or a large command's own buffer). */
  private readonly pair: [Buffer, Buffer];
  /** The read under way into `inflightInto` at CARRY_ROOM, if any. */
  private inflight: Promise<number> | undefined;
  private inflightInto: Buffer = EMPTY;

  constructor(fd: number | undefined, private readonly path: string | undefined) {
    this.fd = fd;
    // Page-aligned, so each read lands on a page boundary (at CARRY_ROOM): see sys/aligned-buffer.ts.
    this.pair = [allocAligned(CARRY_ROOM + PREFETCH_CHUNK_SIZE), allocAligned(CARRY_ROOM + PREFETCH_CHUNK_SIZE)];
  }

  private async getFd(): Promise<number> {
    if (this.fd === undefined) {
      this.fd = await new Promise<number>((resolve, reject) =>
        open(this.path!, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
    }
    return this.fd;
  }

  /** Start reading the next chunk into the pair buffer that is not the window. */
  private startPrefetch(fd: number): void {
    if (this.eof || this.inflight !== undefined) return;
    const into = this.buf === this.pair[0] ? this.pair[1] : this.pair[0];
    this.inflightInto = into;
    this.inflight = readFd(fd, into, CARRY_ROOM, PREFETCH_CHUNK_SIZE);
  }

  async ensure(n: number): Promise<boolean> {
    if (this.end - this.pos >= n) return true;
    const fd = await this.getFd();
    while (this.end - this.pos < n) {
      if (this.eof) return false;
      const tail = this.end - this.pos;
      if (tail > CARRY_ROOM) {
        await this.readLarge(fd, n);
        continue;
      }
      this.startPrefetch(fd);
      const got = await this.inflight!;
      this.inflight = undefined;
      if (got === 0) {
        this.eof = true;
        return false;
      }
      // The caller no longer uses the window's buffer (reuse contract): carry its unfinished tail in
      // front of the new data, then refill the old buffer in the background.
      const next = this.inflightInto;
      this.buf.copy(next, CARRY_ROOM - tail, this.pos, this.end);
      this.buf = next;
      this.pos = CARRY_ROOM - tail;
      this.end = CARRY_ROOM + got;
      this.startPrefetch(fd);
    }
    return true;
  }

  /** A command that does not fit the carry room: assemble it in a buffer of its own. */
  private async readLarge(fd: number, n: number): Promise<void> {
    const tail = this.end - this.pos;
    const big = Buffer.allocUnsafe(Math.max(n, tail) + PREFETCH_CHUNK_SIZE);
    this.buf.copy(big, 0, this.pos, this.end);
    let end = tail;
    if (this.inflight !== undefined) {
      // Bytes already read ahead come first.
      const got = await this.inflight;
      this.inflight = undefined;
      if (got === 0) this.eof = true;
      this.inflightInto.copy(big, end, CARRY_ROOM, CARRY_ROOM + got);
      end += got;
    }
    this.buf = big;
    this.pos = 0;
    this.end = end;
    while (!this.eof && this.end < n) {
      const got = await readFd(fd, big, this.end, big.length - this.end);
      if (got === 0) this.eof = true;
      this.end += got;
    }
  }

  async release(): Promise<void> {
    let unread = this.end - this.pos;
    this.pos = this.end;
    if (this.inflight !== undefined) {
      unread += await this.inflight.catch(() => 0);
      this.inflight = undefined;
    }
    const fd = this.fd;
    this.fd = undefined;
    await releaseFd(fd, this.path === undefined, unread);
  }
}

/** Bytes per synchronous read: small enough that the parser finds them in the CPU cache. */
const SYNC_READ_SIZE = 256 * 1024;

/**
 * A regular file read synchronously into one recycled buffer (reuse mode): the unfinished command at
 * the end of the buffer is moved to its front before each read. A command larger than the buffer's
 * spare room gets a bigger buffer, which is then kept. Memory: SYNC_READ_SIZE + CARRY_ROOM, or the
 * largest command plus SYNC_READ_SIZE.
 */
class SyncFileWindow implements ByteWindow {
  buf: Buffer = allocAligned(SYNC_READ_SIZE + CARRY_ROOM);
  pos = 0;
  end = 0;
  private eof = false;

  constructor(private readonly fd: number) {}

  async ensure(n: number): Promise<boolean> {
    while (this.end - this.pos < n) {
      if (this.eof) return false;
      const tail = this.end - this.pos;
      // The unfinished command goes just before a page boundary, where the read starts: the kernel
      // copies into page-aligned memory several times faster here (sys/aligned-buffer.ts).
      const at = alignUp(tail);
      const room = Math.max(at - tail + n, at + SYNC_READ_SIZE);
      if (this.buf.length < room) {
        const bigger = allocAligned(room);
        this.buf.copy(bigger, at - tail, this.pos, this.end);
        this.buf = bigger;
      } else {
        // Nothing handed out earlier is still in use (reuse contract): move the tail back to `at`.
        this.buf.copy(this.buf, at - tail, this.pos, this.end);
      }
      this.pos = at - tail;
      this.end = at;
      const got = readSync(this.fd, this.buf, at, Math.min(SYNC_READ_SIZE, this.buf.length - at), null);
      if (got === 0) this.eof = true;
      this.end += got;
    }
    return true;
  }

  async release(): Promise<void> {
    const unread = this.end - this.pos;
    this.pos = this.end;
    await releaseFd(this.fd, true, unread);
  }
}

/** `n` rounded up to a multiple of READ_ALIGNMENT. */
function alignUp(n: number): number {
  return Math.ceil(n / READ_ALIGNMENT) * READ_ALIGNMENT;
}

/**
 * End of reading a regular file. The caller's own fd gets back the bytes read ahead (so after `-e` it
 * sits just past END) and stays open; an fd we opened for a path is closed.
 */
async function releaseFd(fd: number | undefined, callersFd: boolean, unread: number): Promise<void> {
  if (fd === undefined) return;
  if (callersFd) {
    await seekBack(fd, unread);
    return;
  }
  await new Promise<void>((resolve) => close(fd, () => resolve()));
}
