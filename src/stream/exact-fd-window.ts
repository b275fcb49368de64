// A window over a pipe or socket that never reads a byte past what the parser asked for. `receive -e`
// stops after the first END and leaves the rest of its input to whoever reads it next — the way
// `while btrfs receive -e DIR; do :; done < pipe` takes stream after stream from one pipe. A pipe cannot
// give bytes back, so with -e each command is read exactly, header then body (as btrfs-progs reads),
// with blocking read(2) calls: two system calls per command instead of one per 64 KiB, the price of
// leaving the input exactly where the first stream ends.
import { readSync } from 'node:fs';
import type { ByteWindow } from './byte-reader.js';
import { growPipe } from '../sys/fd-calls.js';

/** Room for typical commands; a larger one gets a buffer of its own size. */
const INITIAL_SIZE = 64 * 1024;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class ExactFdWindow implements ByteWindow {
  buf: Buffer = Buffer.allocUnsafe(INITIAL_SIZE);
  pos = 0;
  end = 0;
  private eof = false;
  private grown = false;

  /** @param reuse the caller keeps no Buffer from the window once it asks for more (openByteWindow). */
  constructor(private readonly fd: number, private readonly reuse: boolean) {}

  async ensure(n: number): Promise<boolean> {
    if (this.end - this.pos >= n) return true;
    if (this.eof) return false;
    if (!this.grown) {
      // Two reads per command: with a larger pipe the writer wakes us far less often (sys/fd-calls.ts).
      this.grown = true;
      await growPipe(this.fd);
    }
    if (this.buf.length - this.pos < n && this.reuse && this.buf.length >= n) {
      this.buf.copyWithin(0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
    }
    if (this.buf.length - this.pos < n) {
      // Fresh memory: Buffers handed out from the old one stay valid (the reader's contract).
      const next = Buffer.allocUnsafe(Math.max(INITIAL_SIZE, n));
      this.buf.copy(next, 0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
      this.buf = next;
    }
    while (this.end - this.pos < n) {
      const got = this.readSome(this.pos + n - this.end);
      if (got === 0) {
        this.eof = true;
        return false;
      }
      this.end += got;
    }
    return true;
  }

  /** read(2) of at most `want` bytes; waits while a non-blocking fd (an inherited stdin) has none. */
  private readSome(want: number): number {
    for (;;) {
      try {
        return readSync(this.fd, this.buf, this.end, want, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(sleeper, 0, 0, 1);
      }
    }
  }

  async release(): Promise<void> {
    this.pos = this.end; // nothing beyond the last command was read; the caller's fd stays open
  }
}
