// The send-stream writer: Command objects → exact kernel framing (attribute order as the kernel emits
// them, CRC32C), so that reader → writer reproduces a kernel stream byte for byte. It refuses what the
// requested version cannot carry; `splitWrite` cuts a WRITE into pieces that fit.
import { once } from 'node:events';
import { write as fsWrite } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Command, WriteCommand } from './commands.js';
import {
  Attr, ATTR_KIND, ATTR_NAMES, Cmd, COMMAND_HEADER_SIZE, COMMAND_VERSION, MAX_STREAM_VERSION, MAX_TLV_VALUE,
  MAX_WRITE_V1, MAX_WRITE_V2, STREAM_HEADER_SIZE, STREAM_MAGIC, TLV_HEADER_SIZE,
} from './protocol.js';
import { streamCrc32c } from './crc32c.js';

type Field = [attr: number, field: string, optional?: true];

/** Per command: its number and its attributes in the order the kernel emits them (protocol.md §2.1). */
export const COMMAND_LAYOUT: Record<Command['cmd'], { num: number; attrs: Field[] }> = {
  subvol: { num: Cmd.SUBVOL, attrs: [[Attr.PATH, 'path'], [Attr.UUID, 'uuid'], [Attr.CTRANSID, 'ctransid']] },
  snapshot: {
    num: Cmd.SNAPSHOT,
    attrs: [[Attr.PATH, 'path'], [Attr.UUID, 'uuid'], [Attr.CTRANSID, 'ctransid'], [Attr.CLONE_UUID, 'cloneUuid'],
      [Attr.CLONE_CTRANSID, 'cloneCtransid']],
  },
  mkfile: { num: Cmd.MKFILE, attrs: [[Attr.PATH, 'path'], [Attr.INO, 'ino']] },
  mkdir: { num: Cmd.MKDIR, attrs: [[Attr.PATH, 'path'], [Attr.INO, 'ino']] },
  mknod: { num: Cmd.MKNOD, attrs: [[Attr.PATH, 'path'], [Attr.INO, 'ino'], [Attr.RDEV, 'rdev'], [Attr.MODE, 'mode']] },
  mkfifo: { num: Cmd.MKFIFO, attrs: [[Attr.PATH, 'path'], [Attr.INO, 'ino'], [Attr.RDEV, 'rdev'], [Attr.MODE, 'mode']] },
  mksock: { num: Cmd.MKSOCK, attrs: [[Attr.PATH, 'path'], [Attr.INO, 'ino'], [Attr.RDEV, 'rdev'], [Attr.MODE, 'mode']] },
  symlink: { num: Cmd.SYMLINK, attrs: [[Attr.PATH, 'path'], [Attr.INO, 'ino'], [Attr.PATH_LINK, 'target']] },
  rename: { num: Cmd.RENAME, attrs: [[Attr.PATH, 'path'], [Attr.PATH_TO, 'to']] },
  link: { num: Cmd.LINK, attrs: [[Attr.PATH, 'path'], [Attr.PATH_LINK, 'target']] },
  unlink: { num: Cmd.UNLINK, attrs: [[Attr.PATH, 'path']] },
  rmdir: { num: Cmd.RMDIR, attrs: [[Attr.PATH, 'path']] },
  set_xattr: {
    num: Cmd.SET_XATTR, attrs: [[Attr.PATH, 'path'], [Attr.XATTR_NAME, 'name'], [Attr.XATTR_DATA, 'value']],
  },
  remove_xattr: { num: Cmd.REMOVE_XATTR, attrs: [[Attr.PATH, 'path'], [Attr.XATTR_NAME, 'name']] },
  write: { num: Cmd.WRITE, attrs: [[Attr.PATH, 'path'], [Attr.FILE_OFFSET, 'offset'], [Attr.DATA, 'data']] },
  clone: {
    num: Cmd.CLONE,
    attrs: [[Attr.FILE_OFFSET, 'offset'], [Attr.CLONE_LEN, 'len'], [Attr.PATH, 'path'], [Attr.CLONE_UUID, 'cloneUuid'],
      [Attr.CLONE_CTRANSID, 'cloneCtransid'], [Attr.CLONE_PATH, 'clonePath'], [Attr.CLONE_OFFSET, 'cloneOffset']],
  },
  truncate: { num: Cmd.TRUNCATE, attrs: [[Attr.PATH, 'path'], [Attr.SIZE, 'size']] },
  chmod: { num: Cmd.CHMOD, attrs: [[Attr.PATH, 'path'], [Attr.MODE, 'mode']] },
  chown: { num: Cmd.CHOWN, attrs: [[Attr.PATH, 'path'], [Attr.UID, 'uid'], [Attr.GID, 'gid']] },
  utimes: {
    num: Cmd.UTIMES,
    attrs: [[Attr.PATH, 'path'], [Attr.ATIME, 'atime'], [Attr.MTIME, 'mtime'], [Attr.CTIME, 'ctime'],
      [Attr.OTIME, 'otime', true]],
  },
  end: { num: Cmd.END, attrs: [] },
  update_extent: {
    num: Cmd.UPDATE_EXTENT, attrs: [[Attr.PATH, 'path'], [Attr.FILE_OFFSET, 'offset'], [Attr.SIZE, 'size']],
  },
  fallocate: {
    num: Cmd.FALLOCATE,
    attrs: [[Attr.PATH, 'path'], [Attr.FALLOCATE_MODE, 'mode'], [Attr.FILE_OFFSET, 'offset'], [Attr.SIZE, 'size']],
  },
  fileattr: { num: Cmd.FILEATTR, attrs: [[Attr.PATH, 'path'], [Attr.FILEATTR, 'flags']] },
  encoded_write: {
    num: Cmd.ENCODED_WRITE,
    attrs: [[Attr.PATH, 'path'], [Attr.FILE_OFFSET, 'offset'], [Attr.UNENCODED_FILE_LEN, 'unencodedFileLen'],
      [Attr.UNENCODED_LEN, 'unencodedLen'], [Attr.UNENCODED_OFFSET, 'unencodedOffset'],
      [Attr.COMPRESSION, 'compression', true], [Attr.ENCRYPTION, 'encryption', true], [Attr.DATA, 'data']],
  },
  enable_verity: {
    num: Cmd.ENABLE_VERITY,
    attrs: [[Attr.PATH, 'path'], [Attr.VERITY_ALGORITHM, 'algorithm'], [Attr.VERITY_BLOCK_SIZE, 'blockSize'],
      [Attr.VERITY_SALT_DATA, 'salt'], [Attr.VERITY_SIG_DATA, 'sig']],
  },
};

function checkVersion(version: number): void {
  if (!Number.isInteger(version) || version < 1 || version > MAX_STREAM_VERSION) {
    throw new RangeError(`stream version ${version} is not supported (1 to ${MAX_STREAM_VERSION})`);
  }
}

/** The 17-byte stream header. */
export function encodeStreamHeader(version: number): Buffer {
  checkVersion(version);
  const b = Buffer.alloc(STREAM_HEADER_SIZE);
  STREAM_MAGIC.copy(b, 0);
  b.writeUInt32LE(version, STREAM_MAGIC.length);
  return b;
}

const FIXED: Record<string, number> = { u8: 1, u32: 4, u64: 8, uuid: 16, timespec: 12 };

/** Size of an attribute value; throws on values the wire cannot carry. */
function valueSize(cmdName: string, attr: number, v: unknown): number {
  const kind = ATTR_KIND[attr]!;
  const what = `${cmdName}: attribute ${ATTR_NAMES[attr]}`;
  switch (kind) {
    case 'u64':
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${v}`);
      break;
    case 'u32':
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffffffff) throw new RangeError(`${what} must be a u32, got ${v}`);
      break;
    case 'u8':
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xff) throw new RangeError(`${what} must be a u8, got ${v}`);
      break;
    case 'timespec': {
      const t = v as { sec?: unknown; nsec?: unknown } | undefined;
      if (!t || !Number.isSafeInteger(t.sec) || !Number.isInteger(t.nsec) || (t.nsec as number) < 0 ||
          (t.nsec as number) > 0xffffffff) {
        throw new RangeError(`${what} must be a timespec {sec, nsec}`);
      }
      break;
    }
    case 'uuid':
      if (!(v instanceof Uint8Array) || v.length !== 16) throw new RangeError(`${what} must be 16 bytes`);
      return 16;
    case 'string':
      if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Buffer`);
      if (v.includes(0)) throw new RangeError(`${what} contains a NUL byte`);
      return v.length;
    case 'binary':
      if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Buffer`);
      return v.length;
  }
  return FIXED[kind]!;
}

function putU64(b: Buffer, p: number, v: number): void {
  b.writeUInt32LE(v >>> 0, p);
  const hi = Math.floor(v / 4294967296);
  if (hi < 0) b.writeInt32LE(hi, p + 4);
  else b.writeUInt32LE(hi, p + 4);
}

/** One command in `version` framing, CRC included. Throws if the version cannot carry it. */
export function encodeCommand(cmd: Command, version: number): Buffer {
  checkVersion(version);
  const layout = COMMAND_LAYOUT[cmd.cmd];
  if (!layout) throw new TypeError(`unknown command '${(cmd as { cmd: unknown }).cmd}'`);
  const needs = COMMAND_VERSION[layout.num] ?? 1;
  if (needs > version) {
    throw new RangeError(`${cmd.cmd} needs stream version ${needs}; it cannot be written to a v${version} stream`);
  }
  const fields = cmd as unknown as Record<string, unknown>;
  const dataRunsToEnd = version >= 2;
  let len = 0;
  for (const [attr, field, optional] of layout.attrs) {
    const v = fields[field];
    if (v === undefined) {
      if (optional) continue;
      throw new TypeError(`${cmd.cmd}: missing ${field}`);
    }
    const size = valueSize(cmd.cmd, attr, v);
    if (attr === Attr.DATA && dataRunsToEnd) {
      len += 2 + size;
    } else {
      if (size > MAX_TLV_VALUE) {
        throw new RangeError(`${cmd.cmd}: attribute ${ATTR_NAMES[attr]} has ${size} bytes, above the ${MAX_TLV_VALUE} ` +
          `a v${version} stream can carry${attr === Attr.DATA ? ' (use splitWrite)' : ''}`);
      }
      len += TLV_HEADER_SIZE + size;
    }
  }
  if (len > 0xffffffff) throw new RangeError(`${cmd.cmd}: command body of ${len} bytes is too large`);
  const b = Buffer.allocUnsafe(COMMAND_HEADER_SIZE + len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(layout.num, 4);
  b.writeUInt32LE(0, 6);
  let p = COMMAND_HEADER_SIZE;
  for (const [attr, field] of layout.attrs) {
    const v = fields[field];
    if (v === undefined) continue;
    b.writeUInt16LE(attr, p);
    const kind = ATTR_KIND[attr]!;
    if (attr === Attr.DATA && dataRunsToEnd) {
      p += 2;
    } else {
      const size = kind === 'string' || kind === 'binary' ? (v as Uint8Array).length : FIXED[kind]!;
      b.writeUInt16LE(size, p + 2);
      p += TLV_HEADER_SIZE;
    }
    switch (kind) {
      case 'u64': putU64(b, p, v as number); p += 8; break;
      case 'u32': b.writeUInt32LE(v as number, p); p += 4; break;
      case 'u8': b[p] = v as number; p += 1; break;
      case 'timespec': {
        const t = v as { sec: number; nsec: number };
        putU64(b, p, t.sec);
        b.writeUInt32LE(t.nsec, p + 8);
        p += 12;
        break;
      }
      default: {
        const bytes = v as Uint8Array;
        b.set(bytes, p);
        p += bytes.length;
      }
    }
  }
  b.writeUInt32LE(streamCrc32c(b), 6);
  return b;
}

/** Cut a WRITE into pieces the kernel would send in `version` (48 KiB in v1, 128 KiB from v2). */
export function splitWrite(cmd: WriteCommand, version: number): WriteCommand[] {
  checkVersion(version);
  const max = version >= 2 ? MAX_WRITE_V2 : MAX_WRITE_V1;
  if (cmd.data.length <= max) return [cmd];
  const out: WriteCommand[] = [];
  for (let at = 0; at < cmd.data.length; at += max) {
    out.push({ cmd: 'write', path: cmd.path, offset: cmd.offset + at, data: cmd.data.subarray(at, at + max) });
  }
  return out;
}

function writeFd(fd: number, b: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      fsWrite(fd, b, off, b.length - off, null, (err, n) => {
        if (err && err.code === 'EAGAIN') setTimeout(attempt, 2);
        else if (err) reject(err);
        else resolve(n);
      });
    };
    attempt();
  });
}

/**
 * Writes a stream (header, then commands) to a Writable or a file descriptor, waiting for 'drain' when
 * the Writable's buffer is full. The caller owns the fd; `finish()` ends a Writable.
 */
export class StreamWriter {
  constructor(private readonly target: Writable | number, readonly version: number) {
    checkVersion(version);
  }

  writeHeader(): Promise<void> {
    return this.writeBytes(encodeStreamHeader(this.version));
  }

  /** Encode and write one command (WRITEs too large for the version are split). */
  async write(cmd: Command): Promise<void> {
    if (cmd.cmd === 'write') {
      for (const piece of splitWrite(cmd, this.version)) await this.writeBytes(encodeCommand(piece, this.version));
      return;
    }
    await this.writeBytes(encodeCommand(cmd, this.version));
  }

  /** Write raw, already framed bytes. */
  async writeBytes(b: Buffer): Promise<void> {
    const t = this.target;
    if (typeof t === 'number') {
      for (let off = 0; off < b.length;) off += await writeFd(t, b, off);
      return;
    }
    if (t.destroyed) throw new Error('stream writer: the output was closed');
    if (!t.write(b)) await waitDrain(t);
  }

  /** End a Writable target and wait until everything is flushed (nothing to do for an fd). */
  async finish(): Promise<void> {
    const t = this.target;
    if (typeof t === 'number') return;
    const done = once(t, 'finish');
    t.end();
    await done;
  }
}

async function waitDrain(t: Writable): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race([
      once(t, 'drain', { signal: ac.signal }),
      once(t, 'close', { signal: ac.signal }).then(() => {
        throw new Error('stream writer: the output was closed');
      }),
    ]);
  } finally {
    ac.abort();
  }
}
