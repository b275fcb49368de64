// The dump's time texts ("2026-12-07T03:03:17+0000"), each formatted once and kept in a table for
// OutBuffer.text(). A stream repeats a few timestamps a lot (files written together share the second of
// their ctime, and often of their atime), so a direct-mapped cache of recent seconds serves most lines.
import { formatLocalTime, type Zone } from './localtime.js';
import { makePiece, type Piece } from './text-table.js';

const SLOTS = 1024;
/** Bytes per slot: the longest text (a year of 9 digits and a sign, for |sec| near 2^53) is 30 bytes. */
const SLOT_BYTES = 32;

export class TimeTexts {
  private readonly seconds = new Float64Array(SLOTS).fill(Number.NaN);
  private readonly pieces = new Float64Array(SLOTS);
  private readonly bytes = Buffer.alloc(SLOTS * SLOT_BYTES);
  readonly view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);

  constructor(private readonly zone: Zone) {}

  /**
   * The piece of `view` that holds the local time text of `sec` (an integer, |sec| < 2^53), valid until
   * the next call (which may reuse its slot).
   */
  piece(sec: number): Piece {
    const slot = sec - Math.floor(sec / SLOTS) * SLOTS;
    if (this.seconds[slot] === sec) return this.pieces[slot]!;
    const text = formatLocalTime(sec, this.zone);
    // Whole words are copied out of a slot: a text may use at most SLOT_BYTES of it.
    if (text.length > SLOT_BYTES) throw new RangeError(`time text of ${sec} is ${text.length} bytes long`);
    const start = slot * SLOT_BYTES;
    this.bytes.write(text, start, 'latin1');
    const piece = makePiece(start, text.length);
    this.seconds[slot] = sec;
    this.pieces[slot] = piece;
    return piece;
  }
}
