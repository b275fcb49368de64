// A window over a regular file that a native thread reads ahead of the parser (native/read-ahead.c),
// for `--dump`: most of the copy out of the page cache then runs on the other core while this one parses
// and prints. Without the module (not built, BTRFS_TS_NO_READ_AHEAD=1) the caller falls back to
// synchronous reads. Memory: the ring (2.25 MiB by default), plus the largest command when one cannot
// wrap around it (none in a kernel stream).
import type { ByteWindow } from './byte-reader.js';
import { allocAligned } from '../sys/aligned-buffer.js';
import { loadNativeModule, nativeModulePath } from '../sys/native-module.js';

export const READ_AHEAD_MODULE_PATH = nativeModulePath('read-ahead');

interface ReadAheadModule {
  /** With `verified`, the reader checks frames' CRC32C as it reads; take() stores its progress there. */
  start(fd: number, slots: Buffer[], offset: number, readers: number, verified?: Float64Array): object;
  /** Bytes in the next piece, which we then hold until give(); 0 at end of file (nothing held). */
  take(handle: object): number;
  /** The slot taken longest ago is free for the thread again. */
  give(handle: object): void;
  /** Stop the readers; the fd's position is set just past what we consumed (all we took less `unconsumed`). */
  stop(handle: object, unconsumed: number): void;
}

/** How the ring is cut (tests use small ones to reach every edge with little data). */
export interface RingGeometry {
  /** Pieces in flight. */
  slots: number;
  /** Bytes per piece. */
  slotBytes: number;
  /** Room in front of the ring for the unfinished command carried over when the ring wraps around. */
  carryRoom: number;
  /** Reader threads (the parser also reads a piece itself when none has started on it). */
  readers: number;
}

/**
 * 8 pieces of 256 KiB (measured on the 1 GiB v1 stream: 4 pieces waited for data more often, 16 were no
 * faster and cost 2 MiB more); 256 KiB of carry room holds any command a kernel sends (≤ 144 KiB); one
 * reader (a second one was no faster: the parser reads a piece itself whenever the reader is late).
 */
export const DEFAULT_RING: RingGeometry = { slots: 8, slotBytes: 256 * 1024, carryRoom: 256 * 1024, readers: 1 };

/** The module, or null (files are then read synchronously). */
function loadModule(): ReadAheadModule | null {
  return loadNativeModule<ReadAheadModule>('read-ahead', 'BTRFS_TS_NO_READ_AHEAD');
}

/** Whether `--dump` reads files through the native read-ahead thread (for tests and diagnostics). */
export function readAheadAvailable(): boolean {
  return loadModule() !== null;
}

/**
 * A read-ahead window over the caller's regular-file fd from its current position, or undefined when the
 * module is not there. `release()` leaves the fd just past the bytes the parser consumed.
 */
export function openReadAheadWindow(fd: number, ring: RingGeometry = DEFAULT_RING): ByteWindow | undefined {
  const native = loadModule();
  return native ? new ReadAheadWindow(native, fd, ring) : undefined;
}

/**
 * The ring is one Buffer: the carry room, then the slots back to back, so consecutive pieces of the
 * file lie next to each other and a command that crosses from one piece into the next needs no copy.
 * Only when the ring wraps around is the unfinished command copied into the room in front of slot 0.
 * A command that cannot wrap that way (larger than the room: no kernel stream has one) is copied
 * together, piece by piece, into a buffer of its own, until the next wrap-around.
 */
class ReadAheadWindow implements ByteWindow {
  buf: Buffer;
  pos: number;
  end: number;
  private readonly ring: Buffer;
  private readonly slots: number;
  private readonly slotBytes: number;
  private readonly carryRoom: number;
  private readonly handle: object;
  /** Where the reader's frame check stood when it read the piece last taken (native/frame-check.c). */
  private readonly verified = new Float64Array(1);
  /**
   * Frames ending at or before this offset (from the window's first byte) were found good by the reader
   * thread, which checks their CRC32C as it reads: a parser reading this window from its start need not.
   */
  crcCheckedThrough = 0;
  /** Where in the ring each piece we hold ends, oldest first: a piece is given back once `pos` passes it. */
  private readonly heldEnds: number[] = [];
  /** The slot the next piece lands in. */
  private nextSlot = 0;
  private eof = false;
  private released = false;

  constructor(private readonly native: ReadAheadModule, fd: number, geometry: RingGeometry) {
    this.slots = geometry.slots;
    this.slotBytes = geometry.slotBytes;
    this.carryRoom = geometry.carryRoom;
    // Page-aligned: with the carry room and the slots whole pages, every pread fills a page boundary
    // onwards, which the kernel copies into several times faster here (sys/aligned-buffer.ts).
    this.ring = allocAligned(this.carryRoom + this.slots * this.slotBytes);
    this.buf = this.ring;
    this.pos = this.end = this.carryRoom;
    const pieces: Buffer[] = [];
    for (let i = 0; i < this.slots; i++) pieces.push(this.ring.subarray(this.slotStart(i), this.slotStart(i + 1)));
    this.handle = native.start(fd, pieces, 0, geometry.readers, this.verified);
  }

  private slotStart(slot: number): number {
    return this.carryRoom + slot * this.slotBytes;
  }

  async ensure(n: number): Promise<boolean> {
    while (this.end - this.pos < n) {
      if (this.eof) return false;
      const tail = this.end - this.pos;
      const fitsRing = tail <= this.carryRoom && n <= this.slots * this.slotBytes;
      if (this.buf === this.ring) {
        this.giveBackConsumed();
        if (this.nextSlot !== 0) this.appendPiece();
        else if (fitsRing) this.wrapAround(tail);
        else this.leaveRing(n);
      } else if (this.nextSlot === 0 && fitsRing) {
        this.wrapAround(tail);
      } else {
        this.copyPiece(n);
      }
    }
    return true;
  }

  /** Give the readers back every piece the parser has moved past (the reuse contract: it keeps nothing). */
  private giveBackConsumed(): void {
    while (this.heldEnds.length > 0 && this.heldEnds[0]! <= this.pos) {
      this.heldEnds.shift();
      this.native.give(this.handle);
    }
  }

  private giveBackAll(): void {
    while (this.heldEnds.length > 0) {
      this.heldEnds.shift();
      this.native.give(this.handle);
    }
  }

  /** The next piece; the readers put it in slot `nextSlot`. */
  private take(): number {
    const got = this.native.take(this.handle); // throws the read's error, e.g. EIO
    this.crcCheckedThrough = this.verified[0]!;
    this.nextSlot = (this.nextSlot + 1) % this.slots;
    if (got === 0) this.eof = true;
    return got;
  }

  /** Append the next piece, which lies right after the window's end. */
  private appendPiece(): void {
    const got = this.take();
    this.end += got;
    if (got > 0) this.heldEnds.push(this.end);
  }

  /** Carry the unfinished command in front of slot 0 and continue in the ring there. */
  private wrapAround(tail: number): void {
    this.buf.copy(this.ring, this.carryRoom - tail, this.pos, this.end);
    this.giveBackAll();
    this.buf = this.ring;
    this.pos = this.carryRoom - tail;
    this.end = this.carryRoom;
    this.appendPiece();
  }

  /** Move the window into a buffer of its own (a command the ring cannot hold). */
  private leaveRing(n: number): void {
    const tail = this.end - this.pos;
    const own = Buffer.allocUnsafe(Math.max(n, tail) + this.slotBytes);
    this.buf.copy(own, 0, this.pos, this.end);
    this.giveBackAll();
    this.buf = own;
    this.pos = 0;
    this.end = tail;
  }

  /** Outside the ring: copy the next piece to the window's end, making room first. */
  private copyPiece(n: number): void {
    const tail = this.end - this.pos;
    if (this.buf.length - this.end < this.slotBytes) {
      // Nothing before pos is in use (reuse contract): slide the tail to the front, or grow.
      const size = Math.max(n, tail) + this.slotBytes;
      const into = this.buf.length < size ? Buffer.allocUnsafe(size) : this.buf;
      this.buf.copy(into, 0, this.pos, this.end);
      this.buf = into;
      this.pos = 0;
      this.end = tail;
    }
    const from = this.slotStart(this.nextSlot);
    const got = this.take();
    if (got > 0) {
      this.ring.copy(this.buf, this.end, from, from + got);
      this.native.give(this.handle);
      this.end += got;
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    // The caller's fd gets back what was read ahead (after `-e` it sits just past END) and stays open.
    this.native.stop(this.handle, this.end - this.pos);
    this.pos = this.end;
  }
}
