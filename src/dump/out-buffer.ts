// Output for dumps: lines are assembled in one large Buffer and written to a file descriptor in big
// chunks (a syscall per ~1 MiB, not per line). Raw bytes (names that are not UTF-8) go in untouched.
import { writeSync } from 'node:fs';
import { copyWords, pieceLength, pieceStart, type Piece } from './text-table.js';

const DEFAULT_CHUNK = 1 << 20;
/**
 * The first chunk is flushed sooner: the first lines reach a terminal or pager at once, and the flush
 * path runs while the dump loop is still interpreted, so V8 optimizes the loop with it in view instead of
 * throwing the optimized code away at the first flush (measured in docs/benchmarks.md).
 */
const FIRST_CHUNK = 64 * 1024;

export class OutBuffer {
  private buf: Buffer;
  /** The same bytes as `buf`, for writing four at a time. */
  private view: DataView;
  private pos = 0;
  /** Where the current chunk ends: FIRST_CHUNK until the first flush, then the whole buffer. */
  private limit: number;
  /** Bytes handed to the sink so far. */
  written = 0;

  /**
   * @param sink where full chunks go: a file descriptor, or a function receiving each chunk (a copy
   *        the caller may keep).
   */
  constructor(private readonly sink: number | ((chunk: Buffer) => void), chunkSize = DEFAULT_CHUNK) {
    this.buf = Buffer.allocUnsafe(chunkSize);
    this.view = viewOf(this.buf);
    this.limit = Math.min(FIRST_CHUNK, chunkSize);
  }

  /** Make room for `n` more bytes (flushing, or growing for a single huge item). */
  private room(n: number): void {
    if (this.pos + n <= this.limit) return;
    this.flush();
    if (n > this.buf.length) {
      this.buf = Buffer.allocUnsafe(n);
      this.view = viewOf(this.buf);
    }
    this.limit = this.buf.length;
  }

  /** Append a fixed text from a text table (text-table.ts), a word at a time. */
  text(table: DataView, piece: Piece): void {
    const length = pieceLength(piece);
    // Whole words: up to 3 bytes past the text are written too, then overwritten by what follows.
    this.room(length + 3);
    copyWords(this.view, this.pos, table, pieceStart(piece), length);
    this.pos += length;
  }

  /** Append a string whose characters are all < 256 (ASCII text we generate). */
  latin1(text: string): void {
    const n = text.length;
    this.room(n);
    if (n < 48) {
      // Short strings: a plain loop beats the native call.
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) buf[p++] = text.charCodeAt(i);
      this.pos = p;
    } else {
      this.pos += this.buf.write(text, this.pos, 'latin1');
    }
  }

  /** Append a string as UTF-8 (JSON lines). */
  utf8(text: string): void {
    const max = text.length * 3;
    if (this.pos + max > this.limit) {
      this.room(Buffer.byteLength(text));
    }
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  /** Append raw bytes. */
  bytes(data: Buffer, start = 0, end = data.length): void {
    const n = end - start;
    this.room(n);
    if (n < 32) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = start; i < end; i++) buf[p++] = data[i]!;
      this.pos = p;
    } else {
      data.copy(this.buf, this.pos, start, end);
      this.pos += n;
    }
  }

  /** Append a non-negative integer (up to 2^53) in decimal, without making a string. */
  decimal(value: number): void {
    if (value < 10) {
      this.byte(0x30 + value);
      return;
    }
    this.room(16);
    const buf = this.buf;
    let digits = 0;
    for (let v = value; v >= 1; v = Math.floor(v / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    for (let v = value; v >= 1; v = Math.floor(v / 10)) buf[--p] = 0x30 + (v % 10);
  }

  /** Append a non-negative integer (up to 2^53) in octal. */
  octal(value: number): void {
    this.room(20);
    const buf = this.buf;
    let digits = 1;
    for (let v = Math.floor(value / 8); v >= 1; v = Math.floor(v / 8)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    let v = value;
    for (let i = 0; i < digits; i++, v = Math.floor(v / 8)) buf[--p] = 0x30 + (v % 8);
  }

  /** Append one byte. */
  byte(value: number): void {
    if (this.pos >= this.limit) this.flush();
    this.buf[this.pos++] = value;
  }

  /** `count` spaces. */
  spaces(count: number): void {
    this.room(count + 3);
    const to = this.view;
    const p = this.pos;
    for (let i = 0; i < count; i += 4) to.setInt32(p + i, 0x20202020, true);
    this.pos = p + count;
  }

  /** Direct access for tight loops: reserve `n` bytes, write them at the returned offset, then commit. */
  reserve(n: number): { buf: Buffer; at: number } {
    this.room(n);
    return { buf: this.buf, at: this.pos };
  }

  /** reserve() without the result object (the hot path): then write at `buffer` from `position`. */
  reserveRoom(n: number): void {
    this.room(n);
  }

  /** The buffer being filled and the next free offset in it (valid until the next append or flush). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** `buffer` as a DataView (the same bytes). */
  get dataView(): DataView {
    return this.view;
  }

  get position(): number {
    return this.pos;
  }

  commit(end: number): void {
    this.pos = end;
  }

  flush(): void {
    if (this.pos === 0) return;
    const chunk = this.buf.subarray(0, this.pos);
    if (typeof this.sink === 'number') writeAllSync(this.sink, chunk);
    else this.sink(Buffer.from(chunk));
    this.written += this.pos;
    this.pos = 0;
    this.limit = this.buf.length;
  }
}

function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** write(2) until everything is out; waits briefly on EAGAIN (an inherited non-blocking pipe). */
export function writeAllSync(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(sleeper, 0, 0, 2);
    }
  }
}
