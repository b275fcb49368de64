// `receive --dump --json`: one JSON object per command (JSON Lines), lossless for any byte string.
//
// Schema (docs/usage.md has the full table):
//   {"index":1,"byteOffset":17,"stream":0,"version":2,"cmd":"write","path":"a/b","offset":0,"len":4096}
// - index: 1-based command number over the whole input; byteOffset: position of the command header in
//   the input; stream: 0-based index of the concatenated stream; version: that stream's version.
// - Every field of the decoded command follows under its name in src/stream/commands.ts, except that
//   WRITE/ENCODED_WRITE data is replaced by its length "len" (the payload is not dumped).
// - Byte strings (paths, names, targets, xattr names and values, verity salt/signature) are JSON strings
//   when they are valid UTF-8, otherwise {"base64":"..."}; either way the original bytes are recoverable.
// - UUIDs are canonical lower-case strings; times are {"sec":S,"nsec":N} (sec may be negative);
//   modes, rdev, flags and all other integers are plain JSON numbers (decimal).
import type { Command } from '../stream/commands.js';
import type { StreamRecord } from '../stream/reader.js';
import { formatUuid } from './progs-dump.js';
import type { OutBuffer } from './out-buffer.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A byte string as JSON: a string if it is valid UTF-8, else {"base64": ...}. */
export type JsonBytes = string | { base64: string };

export function jsonBytes(b: Buffer): JsonBytes {
  // Pure ASCII is the common case and always valid.
  let ascii = true;
  for (let i = 0; i < b.length; i++) {
    if (b[i]! > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return b.toString('latin1');
  try {
    return utf8.decode(b);
  } catch {
    return { base64: b.toString('base64') };
  }
}

/** The bytes a JsonBytes value stands for (inverse of jsonBytes). */
export function bytesFromJson(v: JsonBytes): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.base64, 'base64');
}

const UUID_FIELDS = new Set(['uuid', 'cloneUuid']);
const TIME_FIELDS = new Set(['atime', 'mtime', 'ctime', 'otime']);

/** The JSON object for one record (exported for tests and library users). */
export function recordToJson(rec: StreamRecord): Record<string, unknown> {
  const o: Record<string, unknown> = {
    index: rec.index, byteOffset: rec.offset, stream: rec.stream, version: rec.version, cmd: rec.command.cmd,
  };
  const c = rec.command as Command & Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (key === 'cmd') continue;
    const v = c[key];
    if (v === undefined) continue;
    if (key === 'data' && Buffer.isBuffer(v)) o.len = v.length;
    else if (UUID_FIELDS.has(key) && Buffer.isBuffer(v)) o[key] = formatUuid(v);
    else if (Buffer.isBuffer(v)) o[key] = jsonBytes(v);
    else if (TIME_FIELDS.has(key)) o[key] = { sec: (v as { sec: number }).sec, nsec: (v as { nsec: number }).nsec };
    else o[key] = v;
  }
  if (c.cmd === 'encoded_write') {
    o.compression = c.compression ?? 0;
    o.encryption = c.encryption ?? 0;
  }
  return o;
}

export class JsonDumpFormatter {
  constructor(private readonly out: OutBuffer) {}

  format(rec: StreamRecord): void {
    this.out.utf8(JSON.stringify(recordToJson(rec)) + '\n');
  }
}
