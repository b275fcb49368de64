// Output for dumps: lines are assembled in one large Buffer and written to a file descriptor in big
// chunks (a syscall per ~1 MiB, not per line). Raw bytes (names that are not UTF-8) go in untouched.
import { writeSync } from 'node:fs';

const DEFAULT_CHUNK = 1 << 20;

export class OutBuffer {
  private buf: Buffer;
  private pos = 0;
  /** Bytes handed to the sink so far. */
  written = 0;

  /**
   * @param sink where full chunks go: a file descriptor, or a function receiving each chunk (a copy
   *        the caller may keep).
   */
  constructor(private readonly sink: number | ((chunk: Buffer) => void), chunkSize = DEFAULT_CHUNK) {
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  /** Make room for `n` more bytes (flushing, or growing for a single huge item). */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
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
    if (this.pos + max > this.buf.length) {
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

  /** Append one byte. */
  byte(value: number): void {
    if (this.pos >= this.buf.length) this.flush();
    this.buf[this.pos++] = value;
  }

  /** `count` spaces. */
  spaces(count: number): void {
    this.room(count);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < count; i++) buf[p++] = 0x20;
    this.pos = p;
  }

  /** Direct access for tight loops: reserve `n` bytes, write them at the returned offset, then commit. */
  reserve(n: number): { buf: Buffer; at: number } {
    this.room(n);
    return { buf: this.buf, at: this.pos };
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
  }
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
