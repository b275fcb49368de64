// A deliberately small, lenient send-stream splitter/joiner for the mutation fuzzer. Independent of
// the codec under test: it only knows the framing (17-byte header, 10-byte command headers, TLVs with
// the v2 DATA exception), so mutated streams can be re-framed with or without CRC fix-up.
import { streamCrc32c } from '../stream/crc32c.js';

export const MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
const DATA_ATTR = 19;

export interface RawCommand {
  cmd: number;
  body: Buffer;
  /** CRC as found in the input (kept when the command is emitted without fix-up). */
  crc: number;
  /** Recompute the CRC when serializing (true for commands the fuzzer built or edited with fix-up). */
  fixCrc: boolean;
}

export interface RawStream {
  header: Buffer; // 17 bytes
  version: number;
  commands: RawCommand[];
  /** Bytes after the last complete command (another stream, garbage). */
  trailing: Buffer;
}

/** Split one stream (the first, if several are concatenated the rest becomes `trailing`). */
export function splitStream(bytes: Buffer): RawStream {
  const header = bytes.subarray(0, 17);
  const version = bytes.length >= 17 ? bytes.readUInt32LE(13) : 0;
  const commands: RawCommand[] = [];
  let p = 17;
  while (p + 10 <= bytes.length) {
    const len = bytes.readUInt32LE(p);
    const cmd = bytes.readUInt16LE(p + 4);
    if (p + 10 + len > bytes.length) break;
    commands.push({ cmd, body: bytes.subarray(p + 10, p + 10 + len), crc: bytes.readUInt32LE(p + 6), fixCrc: false });
    p += 10 + len;
    if (cmd === 21) break; // END
  }
  return { header, version, commands, trailing: bytes.subarray(p) };
}

export function frameCommand(c: RawCommand): Buffer {
  const out = Buffer.alloc(10 + c.body.length);
  out.writeUInt32LE(c.body.length, 0);
  out.writeUInt16LE(c.cmd, 4);
  c.body.copy(out, 10);
  out.writeUInt32LE(c.fixCrc ? streamCrc32c(out) : c.crc, 6);
  return out;
}

export function joinStream(s: RawStream): Buffer {
  return Buffer.concat([s.header, ...s.commands.map(frameCommand), s.trailing]);
}

export interface Tlv {
  type: number;
  /** Offset of the TLV header inside the body. */
  at: number;
  /** Value bytes (a view into the body). */
  value: Buffer;
  /** v2 DATA: no length field, value runs to the end of the body. */
  implicit: boolean;
}

/** Attributes of a command body; stops (without error) at the first one that does not fit. */
export function splitTlvs(body: Buffer, version: number): Tlv[] {
  const out: Tlv[] = [];
  let p = 0;
  while (p + 2 <= body.length) {
    const type = body.readUInt16LE(p);
    if (type === DATA_ATTR && version >= 2) {
      out.push({ type, at: p, value: body.subarray(p + 2), implicit: true });
      break;
    }
    if (p + 4 > body.length) break;
    const len = body.readUInt16LE(p + 2);
    if (p + 4 + len > body.length) break;
    out.push({ type, at: p, value: body.subarray(p + 4, p + 4 + len), implicit: false });
    p += 4 + len;
  }
  return out;
}

export function joinTlvs(tlvs: { type: number; value: Buffer; implicit?: boolean }[]): Buffer {
  const parts: Buffer[] = [];
  for (const t of tlvs) {
    if (t.implicit) {
      const h = Buffer.alloc(2);
      h.writeUInt16LE(t.type, 0);
      parts.push(h, t.value);
    } else {
      const h = Buffer.alloc(4);
      h.writeUInt16LE(t.type, 0);
      h.writeUInt16LE(t.value.length & 0xffff, 2);
      parts.push(h, t.value);
    }
  }
  return Buffer.concat(parts);
}

/** Helpers to build commands from scratch (hostile sequences). */
export const A = {
  UUID: 1, CTRANSID: 2, INO: 3, SIZE: 4, MODE: 5, UID: 6, GID: 7, RDEV: 8, CTIME: 9, MTIME: 10, ATIME: 11,
  OTIME: 12, XATTR_NAME: 13, XATTR_DATA: 14, PATH: 15, PATH_TO: 16, PATH_LINK: 17, FILE_OFFSET: 18, DATA: 19,
  CLONE_UUID: 20, CLONE_CTRANSID: 21, CLONE_PATH: 22, CLONE_OFFSET: 23, CLONE_LEN: 24, FALLOCATE_MODE: 25,
  FILEATTR: 26, UNENCODED_FILE_LEN: 27, UNENCODED_LEN: 28, UNENCODED_OFFSET: 29, COMPRESSION: 30, ENCRYPTION: 31,
} as const;

export const C = {
  SUBVOL: 1, SNAPSHOT: 2, MKFILE: 3, MKDIR: 4, MKNOD: 5, MKFIFO: 6, MKSOCK: 7, SYMLINK: 8, RENAME: 9, LINK: 10,
  UNLINK: 11, RMDIR: 12, SET_XATTR: 13, REMOVE_XATTR: 14, WRITE: 15, CLONE: 16, TRUNCATE: 17, CHMOD: 18,
  CHOWN: 19, UTIMES: 20, END: 21, UPDATE_EXTENT: 22, FALLOCATE: 23, FILEATTR: 24, ENCODED_WRITE: 25,
} as const;

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(n)), 0);
  return b;
}

export function buildCommand(cmd: number, attrs: [number, Buffer | string][], version: number): RawCommand {
  const tlvs = attrs.map(([type, v]) => ({
    type,
    value: typeof v === 'string' ? Buffer.from(v, 'latin1') : v,
    implicit: type === A.DATA && version >= 2,
  }));
  return { cmd, body: joinTlvs(tlvs), crc: 0, fixCrc: true };
}
