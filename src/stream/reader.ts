// The send-stream reader: any byte source → async generator of decoded commands.
//
// Framing (protocol.md §1): a 17-byte stream header, then commands (10-byte header: u32 len, u16 cmd,
// u32 crc; body of `len` bytes of TLVs) up to END; another stream may follow (`btrfs send A B`).
// Each command is checked (size cap before any allocation, CRC32C, TLV bounds, attribute sizes and
// presence) and decoded in place: the hot path runs synchronously on the bytes already buffered and
// awaits only when a command is not complete in the window.
import type { Command } from './commands.js';
import type { ByteSource } from './source.js';
import { openByteWindow, type ByteWindow } from './byte-reader.js';
import { decodeCommand } from './decode.js';
import { FINISHED, FRAME, FrameParser } from './frame-parser.js';

export interface ReaderOptions {
  /** Stop after the first END without reading further (`receive -e`, `--dump`). */
  stopAtFirstEnd?: boolean;
  /** Largest accepted command body in bytes; checked before allocating. Default 16 MiB. */
  maxCommandSize?: number;
  /** Skip command numbers this reader does not know instead of failing (data may be lost). */
  skipUnknownCommands?: boolean;
  /** Highest stream version accepted (1..3). Default 3. */
  maxVersion?: number;
  /**
   * Faster reading of fd/path sources for consumers that never keep a command (e.g. --dump): Buffers
   * in a record are then valid only until the next record is requested. Default false (always valid).
   */
  reuseBuffers?: boolean;
}

export interface StreamRecord {
  command: Command;
  /** 1-based index of the command over the whole input (skipped unknown commands count too). */
  index: number;
  /** Byte offset of the command header in the input. */
  offset: number;
  /** 0-based index of the concatenated stream this command belongs to. */
  stream: number;
  /** That stream's header version. */
  version: number;
}

/** A command frame as read, not decoded yet: valid until the next frame is requested. */
export interface RawFrame {
  /** The frame's header is at buf[frame], its body (len bytes) follows. */
  buf: Buffer;
  frame: number;
  len: number;
  cmdNum: number;
  /** v2+: DATA runs to the end of the body (decodeCommand needs it). */
  dataRunsToEnd: boolean;
  index: number;
  /** Byte offset of the command header in the input. */
  at: number;
}

/** The frame decoded into its command (throws StreamError for bad attributes, as readStream would). */
export function decodeFrame(f: RawFrame): Command {
  return decodeCommand(f.buf, f.frame, f.len, f.cmdNum, f.dataRunsToEnd, f.index, f.at);
}

/** A parser and the byte window it reads, as both reading loops below start. */
function openFrames(source: ByteSource, opts: ReaderOptions): { parser: FrameParser; w: ByteWindow } {
  return {
    parser: new FrameParser(opts),
    w: openByteWindow(source, { reuse: opts.reuseBuffers === true, exact: opts.stopAtFirstEnd === true }),
  };
}

/** The generator's reading loop: frames checked by the parser, each handed to `take` while it is current. */
async function* parseFrames<T>(source: ByteSource, opts: ReaderOptions, take: (frame: FrameParser) => T): AsyncGenerator<T> {
  const { parser, w } = openFrames(source, opts);
  try {
    for (;;) {
      const step = parser.next(w);
      if (step === FRAME) yield take(parser);
      else if (step === FINISHED) return;
      else if (!(await w.ensure(step)) && parser.endOfInput(w)) return;
    }
  } finally {
    await w.release();
  }
}

/** Runs a stream's frames through `onFrame`, one at a time, and settles after the last one. */
export type FrameFeed = (onFrame: (frame: RawFrame) => void) => Promise<void>;

/**
 * The frames of `source` (checked: size, CRC, known command; not decoded) handed to a callback,
 * synchronously while the window holds whole frames: no promise or generator step per frame, an await
 * only to refill the window (receive: ~0.15 µs a command less than `readFrames`). The frame is the parser
 * itself: read its fields before returning. An error thrown by the callback ends the feed with it.
 */
export function frameFeed(source: ByteSource, opts: ReaderOptions = {}): FrameFeed {
  return async (onFrame) => {
    // The same loop as parseFrames, with a call where that one yields.
    const { parser, w } = openFrames(source, opts);
    try {
      for (;;) {
        const step = parser.next(w);
        if (step === FRAME) onFrame(parser);
        else if (step === FINISHED) return;
        else if (!(await w.ensure(step)) && parser.endOfInput(w)) return;
      }
    } finally {
      await w.release();
    }
  };
}

/**
 * Frames checked (size, CRC, known command) but not decoded, for a consumer that copies some of them
 * and decodes them later (receive's read-ahead, src/receive/record-queue.ts). The frame yielded is the
 * parser itself: read its fields before asking for the next.
 */
export function readFrames(source: ByteSource, opts: ReaderOptions = {}): AsyncGenerator<RawFrame> {
  return parseFrames(source, opts, (parser): RawFrame => parser);
}

/** The commands of a stream, decoded and checked, with where each was found. */
export function readStream(source: ByteSource, opts: ReaderOptions = {}): AsyncGenerator<StreamRecord> {
  return parseFrames(source, opts, (parser): StreamRecord => ({
    command: decodeFrame(parser), index: parser.index, offset: parser.at, stream: parser.stream, version: parser.version,
  }));
}
