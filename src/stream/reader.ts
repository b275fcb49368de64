// The send-stream reader: any byte source → async generator of decoded commands.
//
// Framing (protocol.md §1): a 17-byte stream header, then commands (10-byte header: u32 len, u16 cmd,
// u32 crc; body of `len` bytes of TLVs) up to END; another stream may follow (`btrfs send A B`).
// Each command is checked (size cap before any allocation, CRC32C, TLV bounds, attribute sizes and
// presence) and decoded in place: the hot path runs synchronously on the bytes already buffered and
// awaits only when a command is not complete in the window.
import type { Command } from './commands.js';
import type { ByteSource } from './source.js';
import {
  COMMAND_HEADER_SIZE, COMMAND_NAMES, DEFAULT_MAX_COMMAND_SIZE, MAX_STREAM_VERSION, STREAM_HEADER_SIZE,
  STREAM_MAGIC, Cmd,
} from './protocol.js';
import { streamCrc32c } from './crc32c.js';
import { openByteWindow } from './byte-reader.js';
import { decodeCommand } from './decode.js';
import { StreamError, describeCommand } from './errors.js';

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

const LAST_KNOWN_COMMAND = Cmd.ENABLE_VERITY;

function commandName(cmdNum: number): string {
  return cmdNum >= 1 && cmdNum <= LAST_KNOWN_COMMAND ? COMMAND_NAMES[cmdNum]! : `unknown command ${cmdNum}`;
}

// Small commands (most of a receive) are checksummed in JS: a native call costs more than the table
// loop below for a few dozen bytes. Larger ones go to the library (hardware CRC32C).
const SMALL_CRC_LIMIT = 256;
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** Raw CRC32C of a command frame at b[p..p+frameLen), its crc field (bytes 6..9) counted as zeros. */
function frameCrcSmall(b: Buffer, p: number, frameLen: number): number {
  const T = CRC_TABLE;
  let c = 0;
  for (let i = p; i < p + 6; i++) c = T[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  for (let i = 0; i < 4; i++) c = T[c & 0xff]! ^ (c >>> 8);
  const end = p + frameLen;
  for (let i = p + 10; i < end; i++) c = T[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

function frameCrc(b: Buffer, p: number, frameLen: number): number {
  if (frameLen <= SMALL_CRC_LIMIT) return frameCrcSmall(b, p, frameLen);
  // Zero the crc field in place for one library call, then restore it.
  const stored = readU32(b, p + 6);
  b.writeUInt32LE(0, p + 6);
  const crc = streamCrc32c(b.subarray(p, p + frameLen));
  b.writeUInt32LE(stored, p + 6);
  return crc;
}

function readU32(b: Buffer, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

function badMagic(previousStream: number, offset: number): StreamError {
  const where = previousStream < 0 ? '' : ` after the END of stream #${previousStream}`;
  return new StreamError(`not a btrfs send stream: bad magic${where} at byte ${offset}`, offset);
}

export async function* readStream(source: ByteSource, opts: ReaderOptions = {}): AsyncGenerator<StreamRecord> {
  const maxCommandSize = opts.maxCommandSize ?? DEFAULT_MAX_COMMAND_SIZE;
  const maxVersion = Math.min(opts.maxVersion ?? MAX_STREAM_VERSION, MAX_STREAM_VERSION);
  const skipUnknown = opts.skipUnknownCommands === true;
  const w = openByteWindow(source, opts.reuseBuffers === true);
  let offset = 0; // absolute offset of w.buf[w.pos]
  let index = 0;
  let stream = -1;
  try {
    for (;;) {
      // ---- stream header ----
      if (!(await w.ensure(STREAM_HEADER_SIZE))) {
        const have = w.end - w.pos;
        if (have === 0 && stream >= 0) return; // clean end after an END
        if (have === 0) throw new StreamError('empty stream: no stream header at byte 0', 0);
        const n = Math.min(have, STREAM_MAGIC.length);
        if (STREAM_MAGIC.compare(w.buf, w.pos, w.pos + n, 0, n) !== 0) throw badMagic(stream, offset);
        throw new StreamError(
          `unexpected end of stream inside the header of stream #${stream + 1} at byte ${offset + have}: ` +
          `expected ${STREAM_HEADER_SIZE - have} more bytes`, offset + have);
      }
      const hb = w.buf;
      const hp = w.pos;
      if (STREAM_MAGIC.compare(hb, hp, hp + STREAM_MAGIC.length) !== 0) throw badMagic(stream, offset);
      const version = readU32(hb, hp + STREAM_MAGIC.length);
      if (version === 0) {
        throw new StreamError(`unsupported stream version 0 at byte ${offset + 13}: versions start at 1 ` +
          '(btrfs-progs would parse it as v1, but no sender writes it)', offset + 13);
      }
      if (version > maxVersion) {
        throw new StreamError(`unsupported stream version ${version} at byte ${offset + 13}: ` +
          `this reader handles versions 1 to ${maxVersion}`, offset + 13);
      }
      w.pos += STREAM_HEADER_SIZE;
      offset += STREAM_HEADER_SIZE;
      stream++;
      const dataRunsToEnd = version >= 2;

      // ---- commands up to END ----
      for (;;) {
        let buf = w.buf;
        let p = w.pos;
        if (w.end - p < COMMAND_HEADER_SIZE) {
          if (!(await w.ensure(COMMAND_HEADER_SIZE))) {
            const have = w.end - w.pos;
            if (have === 0) {
              throw new StreamError(`unexpected end of stream at byte ${offset}: stream #${stream} has no END ` +
                `command (input ends where command #${index + 1} should start)`, offset);
            }
            throw new StreamError(`unexpected end of stream inside the header of command #${index + 1} at byte ` +
              `${offset + have}: expected ${COMMAND_HEADER_SIZE - have} more bytes`, offset + have, index + 1);
          }
          buf = w.buf;
          p = w.pos;
        }
        const len = readU32(buf, p);
        const cmdNum = buf[p + 4]! | (buf[p + 5]! << 8);
        index++;
        if (len > maxCommandSize) {
          const name = commandName(cmdNum);
          throw new StreamError(`command too large: ${describeCommand(index, name)} at byte ${offset} has a ` +
            `${len}-byte body, above the limit of ${maxCommandSize}`, offset, index, name);
        }
        const frameLen = COMMAND_HEADER_SIZE + len;
        if (w.end - p < frameLen) {
          if (!(await w.ensure(frameLen))) {
            const have = w.end - w.pos;
            const name = commandName(cmdNum);
            throw new StreamError(`unexpected end of stream inside ${describeCommand(index, name)} at byte ` +
              `${offset + have}: expected ${frameLen - have} more bytes`, offset + have, index, name);
          }
          buf = w.buf;
          p = w.pos;
        }
        w.pos = p + frameLen;
        const at = offset;
        offset += frameLen;

        // CRC over the header with the crc field zeroed, then the body.
        if (frameCrc(buf, p, frameLen) !== readU32(buf, p + 6)) {
          const name = commandName(cmdNum);
          throw new StreamError(`stream corrupt: bad CRC32C in ${describeCommand(index, name)} at byte ${at}`,
            at, index, name);
        }

        if (cmdNum === 0 || cmdNum > LAST_KNOWN_COMMAND) {
          if (skipUnknown) continue;
          const name = commandName(cmdNum);
          throw new StreamError(`${name} (#${index}) at byte ${at}: the stream comes from a newer sender or is ` +
            'corrupt; refusing to skip it (data could be lost)', at, index, name);
        }

        const command = decodeCommand(buf, p, len, cmdNum, dataRunsToEnd, index, at);
        yield { command, index, offset: at, stream, version };
        if (cmdNum === Cmd.END) {
          if (opts.stopAtFirstEnd) return;
          break;
        }
      }
    }
  } finally {
    await w.release();
  }
}
