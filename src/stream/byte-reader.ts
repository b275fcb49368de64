// Turns any ByteSource into a sliding window of bytes that the reader parses in place.
//
// The window is `buf[pos..end)`. `ensure(n)` makes at least n bytes contiguous there, reading more when
// needed. The invariant that keeps yielded Buffers valid: bytes that have been made visible in a
// window are never written again. File descriptors are read into fresh 1 MiB buffers, appending only
// into the never-exposed tail; when a command does not fit the tail, its partial bytes are copied into
// a new buffer. Chunks from iterables are used as they are (the producer must not rewrite a chunk after
// yielding it, which Node streams never do); a command split across chunks is assembled into its own
// buffer. Memory held by the window is one chunk plus at most one command.
import { open, close, read } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ByteSource } from './source.js';

/** Size of the buffers file descriptors are read into. */
export const FD_CHUNK_SIZE = 1024 * 1024;
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
 * fast: fresh memory costs page faults). Iterable sources ignore it.
 */
export function openByteWindow(source: ByteSource, reuse = false): ByteWindow {
  if (typeof source === 'number') return new FdWindow(source, undefined, reuse);
  if (typeof source === 'string') return new FdWindow(undefined, source, reuse);
  if (source && typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
    return new IterableWindow(source as AsyncIterable<Uint8Array>);
  }
  throw new TypeError('stream source must be a file descriptor, a path, a Readable or an async iterable of bytes');
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
      if (this.reuse && this.buf.length >= n) {
        // Nothing handed out earlier is still in use (caller's promise): slide the tail to the front.
        this.buf.copyWithin(0, this.pos, this.end);
        this.end -= this.pos;
        this.pos = 0;
      }
    }
    if (this.buf.length - this.pos < n) {
      // Move the unread tail into a new buffer; the old one keeps its exposed bytes untouched.
      const next = Buffer.allocUnsafe(Math.max(this.reuse ? 4 * FD_CHUNK_SIZE : FD_CHUNK_SIZE, n));
      this.buf.copy(next, 0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
      this.buf = next;
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
    if (this.path === undefined || this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    await new Promise<void>((resolve) => close(fd, () => resolve()));
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

  constructor(private readonly source: AsyncIterable<Uint8Array>) {
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
      // Nothing partial: the next chunk becomes the window as it is (no copy).
      const c = await this.nextChunk();
      if (!c) return false;
      this.buf = c;
      this.pos = 0;
      this.end = c.length;
      if (c.length >= n) return true;
    }
    // Assemble exactly n bytes into a buffer of their own; keep the rest of the last chunk pending.
    const out = Buffer.allocUnsafe(n);
    let have = this.buf.copy(out, 0, this.pos, this.end);
    while (have < n) {
      const c = await this.nextChunk();
      if (!c) {
        this.buf = out;
        this.pos = 0;
        this.end = have;
        return false;
      }
      const take = Math.min(n - have, c.length);
      c.copy(out, have, 0, take);
      have += take;
      if (take < c.length) this.pending = c.subarray(take);
    }
    this.buf = out;
    this.pos = 0;
    this.end = n;
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
