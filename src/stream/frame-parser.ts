// Framing of a send stream, synchronously, over whatever bytes a window holds (protocol.md §1).
//
// One parser for every driver: readStream (an async generator of decoded commands, for receive) and the
// dump loop (which prints most commands straight from their frame) both call `next()` until it returns
// a frame; when it asks for more bytes they fill the window and call again, or call `endOfInput()` when
// the input has no more. All framing errors (magic, version, size cap, truncation, CRC, unknown
// commands) are raised here, so both drivers say exactly the same thing for the same bytes.
import {
  COMMAND_HEADER_SIZE, COMMAND_NAMES, DEFAULT_MAX_COMMAND_SIZE, MAX_STREAM_VERSION, STREAM_HEADER_SIZE,
  STREAM_MAGIC, Cmd,
} from './protocol.js';
import { streamCrc32cUpdate } from './crc32c.js';
import { StreamError, describeCommand } from './errors.js';

/** The bytes a parser reads: buf[pos..end). The parser advances `pos` past what it consumed. */
export interface FrameWindow {
  buf: Buffer;
  pos: number;
  end: number;
  /**
   * Set by a window that checks frames' CRC32C itself (the native read-ahead): frames ending at or
   * before this offset from the window's first byte need no check. The parser must read that window
   * from its start, so that its offsets are the window's.
   */
  crcCheckedThrough?: number;
}

export interface FrameParserOptions {
  /** Stop after the first END. */
  stopAtFirstEnd?: boolean;
  /** Largest accepted command body in bytes; checked before the body is asked for. Default 16 MiB. */
  maxCommandSize?: number;
  /** Skip unknown command numbers instead of failing. */
  skipUnknownCommands?: boolean;
  /** Highest stream version accepted (1..3). Default 3. */
  maxVersion?: number;
}

/** `next()` results besides "need N bytes" (N > 0). */
export const FRAME = 0;
export const FINISHED = -1;

const LAST_KNOWN_COMMAND = Cmd.ENABLE_VERITY;

function commandName(cmdNum: number): string {
  return cmdNum >= 1 && cmdNum <= LAST_KNOWN_COMMAND ? COMMAND_NAMES[cmdNum]! : `unknown command ${cmdNum}`;
}

/** The error for a frame whose stored CRC32C does not match its bytes. */
function badCrcError(index: number, cmdNum: number, at: number): StreamError {
  const name = commandName(cmdNum);
  return new StreamError(`stream corrupt: bad CRC32C in ${describeCommand(index, name)} at byte ${at}`, at, index, name);
}

// Small commands (most of a stream) are checksummed in JS: a native call costs more than the table
// loops below for a few dozen bytes. Larger ones go to the library (hardware CRC32C).
const SMALL_CRC_LIMIT = 256;
/** CRC32C tables for slicing-by-8: table t at [256 t, 256 t + 256) (about 3× faster than one table). */
const CRC_TABLES = (() => {
  const t = new Int32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) t[256 * k + i] = (t[256 * (k - 1) + i]! >>> 8) ^ t[t[256 * (k - 1) + i]! & 0xff]!;
  }
  return t;
})();

/** Raw CRC32C of a command frame at b[p..p+frameLen), its crc field (bytes 6..9) counted as zeros. */
function frameCrcSmall(b: Buffer, p: number, frameLen: number): number {
  const T = CRC_TABLES;
  let c = 0;
  for (let i = p; i < p + 6; i++) c = T[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  for (let i = 0; i < 4; i++) c = T[c & 0xff]! ^ (c >>> 8);
  const end = p + frameLen;
  let i = p + 10;
  for (; i + 8 <= end; i += 8) {
    const lo = c ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
    c = T[1792 + (lo & 0xff)]! ^ T[1536 + ((lo >>> 8) & 0xff)]! ^ T[1280 + ((lo >>> 16) & 0xff)]! ^ T[1024 + (lo >>> 24)]! ^
      T[768 + b[i + 4]!]! ^ T[512 + b[i + 5]!]! ^ T[256 + b[i + 6]!]! ^ T[b[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

export function frameCrc(b: Buffer, p: number, frameLen: number): number {
  if (frameLen <= SMALL_CRC_LIMIT) return frameCrcSmall(b, p, frameLen);
  // The header (crc field as zeros) in JS, the body in one library call.
  return streamCrc32cUpdate(frameCrcSmall(b, p, 10), b.subarray(p + 10, p + frameLen));
}

function readU32(b: Buffer, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

function badMagic(previousStream: number, offset: number): StreamError {
  const where = previousStream < 0 ? '' : ` after the END of stream #${previousStream}`;
  return new StreamError(`not a btrfs send stream: bad magic${where} at byte ${offset}`, offset);
}

// What the parser was reading when it asked for more bytes (for the end-of-input error).
const IN_STREAM_HEADER = 0;
const IN_COMMAND_HEADER = 1;
const IN_COMMAND_BODY = 2;

export class FrameParser {
  /** Absolute input offset of the next byte to parse (w.buf[w.pos]). */
  offset = 0;
  /** 1-based index of the last frame consumed, over the whole input (skipped unknown commands count). */
  index = 0;
  /** 0-based index of the current stream, and its header version. */
  stream = -1;
  version = 0;
  /** True in v2+ streams: DATA runs to the end of the body. */
  dataRunsToEnd = false;
  // The frame `next()` returned: its command number, where its header is in `buf`, its body length,
  // and its absolute offset.
  cmdNum = 0;
  buf: Buffer = Buffer.alloc(0);
  frame = 0;
  len = 0;
  at = 0;

  private readonly maxCommandSize: number;
  private readonly maxVersion: number;
  private readonly skipUnknown: boolean;
  private readonly stopAtFirstEnd: boolean;
  private stage = IN_STREAM_HEADER;
  private finished = false;
  /** Bytes last asked for, and the command number read from a header whose body is incomplete. */
  private need = 0;
  private pendingCmd = 0;

  constructor(opts: FrameParserOptions = {}) {
    this.maxCommandSize = opts.maxCommandSize ?? DEFAULT_MAX_COMMAND_SIZE;
    this.maxVersion = Math.min(opts.maxVersion ?? MAX_STREAM_VERSION, MAX_STREAM_VERSION);
    this.skipUnknown = opts.skipUnknownCommands === true;
    this.stopAtFirstEnd = opts.stopAtFirstEnd === true;
  }

  /**
   * Parse what the window holds: FRAME when a command frame was consumed (its fields are set), FINISHED
   * after the last END (`stopAtFirstEnd`), or N > 0: N contiguous bytes are needed at w.pos.
   */
  next(w: FrameWindow): number {
    for (;;) {
      if (this.finished) return FINISHED;
      if (this.stage === IN_STREAM_HEADER) {
        if (w.end - w.pos < STREAM_HEADER_SIZE) return (this.need = STREAM_HEADER_SIZE);
        this.streamHeader(w);
      }
      const buf = w.buf;
      const p = w.pos;
      const available = w.end - p;
      let frameLen = COMMAND_HEADER_SIZE;
      let cmdNum = 0;
      if (available >= COMMAND_HEADER_SIZE) {
        const len = readU32(buf, p);
        cmdNum = buf[p + 4]! | (buf[p + 5]! << 8);
        if (len > this.maxCommandSize) {
          const name = commandName(cmdNum);
          throw new StreamError(`command too large: ${describeCommand(this.index + 1, name)} at byte ${this.offset} has a ` +
            `${len}-byte body, above the limit of ${this.maxCommandSize}`, this.offset, this.index + 1, name);
        }
        frameLen = COMMAND_HEADER_SIZE + len;
      }
      // One way out for an unfinished header and an unfinished body: the second happens at almost every
      // refill, the first rarely, and a way out that V8 first sees after optimizing would cost a recompile.
      if (available < frameLen) {
        this.stage = available < COMMAND_HEADER_SIZE ? IN_COMMAND_HEADER : IN_COMMAND_BODY;
        this.pendingCmd = cmdNum;
        return (this.need = frameLen);
      }
      const index = ++this.index;
      const at = this.offset;
      w.pos = p + frameLen;
      this.offset = at + frameLen;
      this.stage = IN_COMMAND_HEADER;

      // CRC over the header with the crc field zeroed, then the body (unless the window checked it).
      const checked = w.crcCheckedThrough;
      if (!(checked !== undefined && this.offset <= checked) && frameCrc(buf, p, frameLen) !== readU32(buf, p + 6)) {
        throw badCrcError(index, cmdNum, at);
      }

      if (cmdNum === 0 || cmdNum > LAST_KNOWN_COMMAND) {
        if (this.skipUnknown) continue;
        const name = commandName(cmdNum);
        throw new StreamError(`${name} (#${index}) at byte ${at}: the stream comes from a newer sender or is ` +
          'corrupt; refusing to skip it (data could be lost)', at, index, name);
      }
      this.cmdNum = cmdNum;
      this.buf = buf;
      this.frame = p;
      this.len = frameLen - COMMAND_HEADER_SIZE;
      this.at = at;
      if (cmdNum === Cmd.END) {
        if (this.stopAtFirstEnd) this.finished = true;
        else this.stage = IN_STREAM_HEADER;
      }
      return FRAME;
    }
  }

  /**
   * The input ended while `next()` asked for more (the window holds all that was left): true for a
   * clean end (right after an END), else throws the truncation error for where the parser is.
   */
  endOfInput(w: FrameWindow): true {
    const have = w.end - w.pos;
    const offset = this.offset;
    if (this.stage === IN_STREAM_HEADER) {
      const stream = this.stream;
      if (have === 0 && stream >= 0) return true; // clean end after an END
      if (have === 0) throw new StreamError('empty stream: no stream header at byte 0', 0);
      const n = Math.min(have, STREAM_MAGIC.length);
      if (STREAM_MAGIC.compare(w.buf, w.pos, w.pos + n, 0, n) !== 0) throw badMagic(stream, offset);
      throw new StreamError(
        `unexpected end of stream inside the header of stream #${stream + 1} at byte ${offset + have}: ` +
        `expected ${STREAM_HEADER_SIZE - have} more bytes`, offset + have);
    }
    const index = this.index + 1;
    if (this.stage === IN_COMMAND_HEADER) {
      if (have === 0) {
        throw new StreamError(`unexpected end of stream at byte ${offset}: stream #${this.stream} has no END ` +
          `command (input ends where command #${index} should start)`, offset);
      }
      throw new StreamError(`unexpected end of stream inside the header of command #${index} at byte ` +
        `${offset + have}: expected ${COMMAND_HEADER_SIZE - have} more bytes`, offset + have, index);
    }
    const name = commandName(this.pendingCmd);
    throw new StreamError(`unexpected end of stream inside ${describeCommand(index, name)} at byte ` +
      `${offset + have}: expected ${this.need - have} more bytes`, offset + have, index, name);
  }

  private streamHeader(w: FrameWindow): void {
    const hb = w.buf;
    const hp = w.pos;
    const offset = this.offset;
    if (STREAM_MAGIC.compare(hb, hp, hp + STREAM_MAGIC.length) !== 0) throw badMagic(this.stream, offset);
    const version = readU32(hb, hp + STREAM_MAGIC.length);
    if (version === 0) {
      throw new StreamError(`unsupported stream version 0 at byte ${offset + 13}: versions start at 1 ` +
        '(btrfs-progs would parse it as v1, but no sender writes it)', offset + 13);
    }
    if (version > this.maxVersion) {
      throw new StreamError(`unsupported stream version ${version} at byte ${offset + 13}: ` +
        `this reader handles versions 1 to ${this.maxVersion}`, offset + 13);
    }
    w.pos = hp + STREAM_HEADER_SIZE;
    this.offset = offset + STREAM_HEADER_SIZE;
    this.stream++;
    this.version = version;
    this.dataRunsToEnd = version >= 2;
    this.stage = IN_COMMAND_HEADER;
  }
}
