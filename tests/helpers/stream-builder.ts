// Build send streams for tests, including malformed ones.
//
//   buildStream(2, [{ cmd: 'mkfile', path: Buffer.from('a'), ino: 257 }])          // header + cmd + END
//   buildStream(1, [raw(15, [tlv(Attr.PATH, 'a')], { badCrc: true })], { end: false })
//
// Commands are either Command objects (encoded by the real writer) or RawCommand (any number, any
// attributes, optional wrong CRC / len). END is appended unless the last command is END or `end: false`.
import type { Command } from '../../src/stream/commands.js';
import { encodeCommand, encodeStreamHeader } from '../../src/stream/writer.js';
import { streamCrc32c } from '../../src/stream/crc32c.js';
import { STREAM_MAGIC } from '../../src/stream/protocol.js';
import { readStream, type ReaderOptions, type StreamRecord } from '../../src/stream/reader.js';
import type { ByteSource } from '../../src/stream/source.js';
import { StreamError } from '../../src/stream/errors.js';

export interface RawAttr {
  type: number;
  value: Buffer;
  /** v2 DATA form: only the type, value runs to the end of the body. */
  noLength?: boolean;
  /** Write this in the length field instead of the real length. */
  len?: number;
}

export interface RawCommand {
  raw: number; // command number
  attrs?: RawAttr[];
  /** Body bytes after the attributes (or instead of them). */
  extra?: Buffer;
  /** Store a CRC that does not match. */
  badCrc?: boolean;
  /** Write this in the header's len field instead of the real body length (CRC still over real bytes). */
  len?: number;
}

export type AnyCommand = Command | RawCommand;

export interface BuildOptions {
  /** Append END unless the last command is one (default true). */
  end?: boolean;
  /** Omit the stream header. */
  noHeader?: boolean;
  /** Replace the 13-byte magic. */
  magic?: Buffer;
  /** Header version field (default: the version argument). */
  headerVersion?: number;
}

export function tlv(type: number, value: Buffer | string | number[], opts: { noLength?: boolean; len?: number } = {}): RawAttr {
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
  return { type, value: v, ...opts };
}

export function u64le(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
  return b;
}

export function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

export function raw(cmdNum: number, attrs: RawAttr[] = [], opts: Omit<RawCommand, 'raw' | 'attrs'> = {}): RawCommand {
  return { raw: cmdNum, attrs, ...opts };
}

/** Frame a raw command: attributes as given, CRC correct unless asked otherwise. */
export function encodeRaw(c: RawCommand): Buffer {
  const parts: Buffer[] = [];
  for (const a of c.attrs ?? []) {
    const h = Buffer.alloc(a.noLength ? 2 : 4);
    h.writeUInt16LE(a.type, 0);
    if (!a.noLength) h.writeUInt16LE(a.len ?? a.value.length, 2);
    parts.push(h, a.value);
  }
  if (c.extra) parts.push(c.extra);
  const body = Buffer.concat(parts);
  const b = Buffer.alloc(10 + body.length);
  b.writeUInt32LE(c.len ?? body.length, 0);
  b.writeUInt16LE(c.raw, 4);
  body.copy(b, 10);
  const crc = streamCrc32c(b);
  b.writeUInt32LE(c.badCrc ? (crc ^ 0x1) >>> 0 : crc, 6);
  return b;
}

export function encodeAny(c: AnyCommand, version: number): Buffer {
  return 'raw' in c ? encodeRaw(c) : encodeCommand(c, version);
}

export function streamHeader(version: number, magic?: Buffer): Buffer {
  if (!magic && version >= 1 && version <= 3) return encodeStreamHeader(version);
  const b = Buffer.alloc(17);
  (magic ?? STREAM_MAGIC).copy(b, 0, 0, 13);
  b.writeUInt32LE(version >>> 0, 13);
  return b;
}

export function buildStream(version: number, commands: AnyCommand[], opts: BuildOptions = {}): Buffer {
  const parts: Buffer[] = [];
  if (!opts.noHeader) parts.push(streamHeader(opts.headerVersion ?? version, opts.magic));
  // Raw commands can carry any framing; typed ones are encoded for a version the writer supports.
  const encVersion = Math.min(Math.max(version, 1), 3);
  for (const c of commands) parts.push(encodeAny(c, encVersion));
  const last = commands[commands.length - 1];
  const lastIsEnd = last !== undefined && ('raw' in last ? last.raw === 21 : last.cmd === 'end');
  if (opts.end !== false && !lastIsEnd) parts.push(encodeCommand({ cmd: 'end' }, encVersion));
  return Buffer.concat(parts);
}

/** Recompute the CRC of the command whose header is at `offset` (after tampering with its bytes). */
export function fixCrc(stream: Buffer, offset: number): void {
  const len = stream.readUInt32LE(offset);
  const frame = stream.subarray(offset, offset + 10 + len);
  frame.writeUInt32LE(0, 6);
  frame.writeUInt32LE(streamCrc32c(frame), 6);
}

/** Offsets of each command header in a well-formed single stream (for targeted tampering). */
export function commandOffsets(stream: Buffer): number[] {
  const out: number[] = [];
  let p = 17;
  while (p + 10 <= stream.length) {
    out.push(p);
    const len = stream.readUInt32LE(p);
    const cmd = stream.readUInt16LE(p + 4);
    p += 10 + len;
    if (cmd === 21 && p + 17 <= stream.length && stream.subarray(p, p + 13).equals(STREAM_MAGIC)) p += 17;
  }
  return out;
}

// ---- reading helpers ----

/** Read a whole source into records (throws what the reader throws). */
export async function readAll(source: ByteSource, opts?: ReaderOptions): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for await (const r of readStream(source, opts)) out.push(r);
  return out;
}

/** An async iterable yielding `buf` cut at the given sizes (cycled), e.g. [1] for 1-byte chunks. */
export async function* chunksOf(buf: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let i = 0;
  for (let p = 0; p < buf.length;) {
    const n = Math.max(1, sizes[i++ % sizes.length]!);
    yield buf.subarray(p, p + n);
    p += n;
  }
}

/** Read and expect a StreamError; returns it (fails the test on success or any other error type). */
export async function readError(source: ByteSource, opts?: ReaderOptions): Promise<StreamError> {
  try {
    await readAll(source, opts);
  } catch (e) {
    if (e instanceof StreamError) return e;
    throw new Error(`expected a StreamError, got ${(e as Error)?.stack ?? e}`);
  }
  throw new Error('expected a StreamError, but the stream was accepted');
}
