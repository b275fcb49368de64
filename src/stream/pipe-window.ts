// A window over a pipe or socket (`btrfs send | btrfs-ts receive`), read by libuv straight into our own
// page-aligned buffers (net.Socket's `onread`), in place of the Socket's stream of fresh 64 KiB chunks.
//
// Why: every chunk of a Readable Socket is new malloc'd memory that lives until the next garbage
// collection: reading the 1 GiB v1 stream from `cat` that way peaked at 82 MiB RSS (48 MiB with one
// reused buffer), and the kernel's copy into malloc's blocks, 16 bytes past a page, is the slow one
// (sys/aligned-buffer.ts): 0.7-0.95 s against 0.43-0.53 s into page-aligned memory (docs/benchmarks.md).
//
// The design is PrefetchFdWindow's: two recycled buffers, each with room in front of its read area for
// the unfinished command carried over from the other. Node asks `nextBuffer()` where each read goes,
// after every read; that answer can no longer be changed once reading pauses, so it is chosen then:
// the free tail of the current buffer while it has room, else the other buffer's read area. Reads that
// append to the window go on whenever libuv has data; reading pauses before a read into the other
// buffer and resumes only in ensure(), so the window's unfinished bytes are carried over only while the
// caller holds nothing from the window (the reuse contract).
// Bytes keep the same offset within a page as in the stream (byte k of the stream sits at an address
// ≡ k mod 4096), which lines a read up with the pipe's pages as a file read lines up with the page cache.
import type { Socket } from 'node:net';
import type { ByteWindow } from './byte-reader.js';
import { allocAligned, READ_ALIGNMENT } from '../sys/aligned-buffer.js';

/** Room in front of each buffer's read area for the unfinished command carried over (as PrefetchFdWindow). */
const CARRY_ROOM = 256 * 1024;
/** Each buffer's read area, as PrefetchFdWindow's (1 MiB was no faster: docs/benchmarks.md). */
const READ_AREA = 256 * 1024;
/** Below this much free room the next read goes to the other buffer. */
const MIN_READ = 64 * 1024;
const BUFFER_SIZE = CARRY_ROOM + READ_AREA + READ_ALIGNMENT;
const EMPTY: Buffer = Buffer.alloc(0);

/** net.Socket's `onread` option: where the next read goes (asked after every read), and what came. */
export interface OnRead {
  buffer: () => Uint8Array;
  /** n bytes were read into the last buffer; false pauses reading. */
  callback: (n: number) => boolean;
}

/** Makes and ends the Socket a PipeWindow reads. */
export interface PipeSocketSource {
  open(onread: OnRead): Promise<Socket>;
  close(socket: Socket): void;
}

/** Where the next read lands: `buf[at..]`. */
interface Landing {
  buf: Buffer;
  at: number;
}

export class PipeWindow implements ByteWindow {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  /** Stream offset of buf[0] (may be negative: the carry room of a fresh buffer). */
  private base = 0;
  /** The buffer that is not the window (reuse mode); a fresh one is taken each time otherwise. */
  private spare: Buffer | undefined;
  private landing: Landing;
  private socket: Socket | undefined;
  /** Bytes that ensure() waits for at buf[pos..], and how it is told. */
  private need = 0;
  private waiter: { resolve(enough: boolean): void; reject(err: Error): void } | undefined;
  private eof = false;
  private failure: Error | undefined;

  /**
   * `socket.open(onread)` makes the Socket on the first ensure() and `socket.close` ends it (byte-reader.ts:
   * a dup of the caller's fd, whose flags are put back). `reuse`: the caller keeps no Buffer from the
   * window once it asks for more bytes.
   */
  constructor(private readonly source: PipeSocketSource, private readonly reuse: boolean) {
    const first = allocAligned(BUFFER_SIZE);
    this.buf = first;
    this.pos = this.end = CARRY_ROOM;
    this.base = -CARRY_ROOM;
    this.landing = { buf: first, at: CARRY_ROOM };
    if (reuse) this.spare = allocAligned(BUFFER_SIZE);
  }

  private async openSocket(): Promise<Socket> {
    const socket = await this.source.open({
      buffer: () => this.landing.buf.subarray(this.landing.at),
      callback: (n) => this.onRead(n),
    });
    // Nothing is read before the first ensure(), which resumes the socket (onRead says when to pause again).
    socket.pause();
    socket.on('end', () => this.finish(undefined));
    socket.on('close', () => this.finish(undefined));
    socket.on('error', (err: Error) => this.finish(err));
    return socket;
  }

  async ensure(n: number): Promise<boolean> {
    if (this.end - this.pos >= n) return true;
    if (this.failure) throw this.failure;
    if (this.eof) return false;
    this.socket ??= await this.openSocket();
    this.need = n;
    const wait = new Promise<boolean>((resolve, reject) => (this.waiter = { resolve, reject }));
    this.socket.resume();
    return wait;
  }

  /** n bytes were read to `landing`. Returns false to pause reading. */
  private onRead(n: number): boolean {
    const { buf, at } = this.landing;
    if (buf === this.buf) {
      this.end += n;
    } else {
      this.carryInto(buf, at, n);
    }
    this.landing = this.nextLanding();
    if (this.end - this.pos >= this.need) this.wake(true);
    // Reading goes on while it only appends to the window, or while ensure() still waits. Otherwise a
    // read into the other buffer waits for the next ensure(): only then may the window's unfinished
    // bytes be carried over.
    return this.landing.buf === this.buf || this.waiter !== undefined;
  }

  /**
   * The read went to the other buffer's read area: the window's unfinished bytes go just in front of it.
   * A command too large for the carry room is assembled in a buffer of its own instead (no kernel stream has one).
   */
  private carryInto(into: Buffer, at: number, n: number): void {
    const tail = this.end - this.pos;
    const old = this.buf;
    if (tail <= at) {
      old.copy(into, at - tail, this.pos, this.end);
      this.buf = into;
      this.base += this.pos - (at - tail);
      this.pos = at - tail;
      this.end = at + n;
    } else {
      const start = (this.base + this.pos) & (READ_ALIGNMENT - 1);
      const big = allocAligned(start + Math.max(this.need, tail + n) + MIN_READ + READ_ALIGNMENT);
      old.copy(big, start, this.pos, this.end);
      into.copy(big, start + tail, at, at + n);
      this.buf = big;
      this.base += this.pos - start;
      this.pos = start;
      this.end = start + tail + n;
    }
    if (this.reuse && old.length === BUFFER_SIZE) this.spare = old;
  }

  /** The free tail of the window's buffer while it has room, else the other buffer's read area. */
  private nextLanding(): Landing {
    if (this.buf.length - this.end >= MIN_READ) return { buf: this.buf, at: this.end };
    const other = this.reuse && this.spare !== undefined && this.spare !== this.buf
      ? this.spare
      : allocAligned(BUFFER_SIZE);
    // The read area starts where byte `end` of the stream keeps its offset within a page.
    return { buf: other, at: CARRY_ROOM + ((this.base + this.end) & (READ_ALIGNMENT - 1)) };
  }

  private finish(err: Error | undefined): void {
    if (err && !this.failure) this.failure = err;
    this.eof = true;
    if (this.failure) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.reject(this.failure);
    } else {
      this.wake(this.end - this.pos >= this.need);
    }
  }

  private wake(enough: boolean): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(enough);
  }

  async release(): Promise<void> {
    this.pos = this.end;
    this.eof = true;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) this.source.close(socket);
    this.wake(false);
  }
}
