// One recycled buffer for the command frames waiting in receive's read-ahead queue (record-queue.ts):
// frames are copied in queue order and given back in the same order once applied, so there is no
// allocation per command and the resident memory stays at the ring's size.
export class ByteRing {
  readonly buf: Buffer;
  /** First byte still in use, and where the next copy goes; `wrapped` when tail has restarted at 0. */
  private head = 0;
  private tail = 0;
  private wrapped = false;
  /** Where the copies before the wrap end (the bytes after it were skipped). */
  private wrapEnd = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Where n contiguous bytes may be written (the tail moves past them), or -1 when there is no room. */
  alloc(n: number): number {
    let at: number;
    if (!this.wrapped && this.buf.length - this.tail >= n) at = this.tail;
    else if (!this.wrapped && this.head >= n) {
      at = 0;
      this.wrapped = true;
      this.wrapEnd = this.tail;
    }
    else if (this.wrapped && this.head - this.tail >= n) at = this.tail;
    else return -1;
    this.tail = at + n;
    return at;
  }

  /** Where the next copy would end up: an entry's mark, given back to release() once it is used. */
  get mark(): number {
    return this.tail;
  }

  /** Everything allocated before `mark` may be reused; `empty`: nothing is in use any more. */
  release(mark: number, empty: boolean): void {
    if (empty) {
      this.head = this.tail = 0;
      this.wrapped = false;
    } else if (this.wrapped && mark === this.wrapEnd) {
      this.head = 0; // everything before the wrap is free: the oldest copy in use is at 0
      this.wrapped = false;
    } else {
      if (mark < this.head) this.wrapped = false; // the head has wrapped too
      this.head = mark;
    }
  }
}
