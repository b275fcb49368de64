// Decoding one command body (a run of TLV attributes) into a typed Command, synchronously and in place.
//
// Speed matters (a receive parses ~1M commands), so the TLV walk records each attribute's position in
// module-level typed arrays (no per-attribute objects), and each command type builds its object
// literal directly. A generation counter marks which slots belong to the current command, so nothing is
// cleared between commands. Strings and binaries are subarrays of the input (no copies).
import type { Command, Timespec } from './commands.js';
import { Attr, ATTR_MAX, ATTR_NAMES, Cmd, COMMAND_NAMES, COMMAND_HEADER_SIZE } from './protocol.js';
import { StreamError, describeCommand } from './errors.js';
import { indexOfZero } from './word-scan.js';

const slotGen = new Uint32Array(ATTR_MAX + 1);
const slotStart = new Int32Array(ATTR_MAX + 1);
const slotLen = new Int32Array(ATTR_MAX + 1);
/** Position of the attribute's TLV header (for error offsets). */
const slotTlv = new Int32Array(ATTR_MAX + 1);
let gen = 0;

// The command being decoded, for error messages.
let cBuf: Buffer = Buffer.alloc(0);
let cFrame = 0;
let cOffset = 0;
let cIndex = 0;
let cName = '';

function absolute(p: number): number {
  return cOffset + (p - cFrame);
}

function fail(what: string, p: number, prefix = 'stream corrupt: '): never {
  const at = absolute(p);
  throw new StreamError(`${prefix}${what} in ${describeCommand(cIndex, cName)} at byte ${at}`, at, cIndex, cName);
}

function present(t: number): boolean {
  return slotGen[t] === gen;
}

function need(t: number, size: number): number {
  if (slotGen[t] !== gen) fail(`missing attribute ${ATTR_NAMES[t]}`, cFrame);
  if (size >= 0 && slotLen[t] !== size) {
    fail(`attribute ${ATTR_NAMES[t]} has ${slotLen[t]} bytes instead of ${size}`, slotTlv[t]!);
  }
  return slotStart[t]!;
}

function tooBig(t: number, s: number, signed: boolean): never {
  const v = signed ? cBuf.readBigInt64LE(s) : cBuf.readBigUInt64LE(s);
  fail(`attribute ${ATTR_NAMES[t]} value ${v} is beyond 2^53 (not representable)`, slotTlv[t]!, 'unsupported value: ');
}

function u64(t: number): number {
  const s = need(t, 8);
  const b = cBuf;
  const lo = (b[s]! | (b[s + 1]! << 8) | (b[s + 2]! << 16) | (b[s + 3]! << 24)) >>> 0;
  const hi = (b[s + 4]! | (b[s + 5]! << 8) | (b[s + 6]! << 16) | (b[s + 7]! << 24)) >>> 0;
  if (hi > 0x1fffff) tooBig(t, s, false);
  return hi * 4294967296 + lo;
}

function u32(t: number): number {
  const s = need(t, 4);
  const b = cBuf;
  return (b[s]! | (b[s + 1]! << 8) | (b[s + 2]! << 16) | (b[s + 3]! << 24)) >>> 0;
}

function u8(t: number): number {
  return cBuf[need(t, 1)]!;
}

function timespec(t: number): Timespec {
  const sec = timespecSec(t);
  const s = slotStart[t]!;
  const b = cBuf;
  const nsec = (b[s + 8]! | (b[s + 9]! << 8) | (b[s + 10]! << 16) | (b[s + 11]! << 24)) >>> 0;
  return { sec, nsec };
}

/** The seconds of a timespec attribute (signed), checked. */
function timespecSec(t: number): number {
  const s = need(t, 12);
  const b = cBuf;
  const lo = (b[s]! | (b[s + 1]! << 8) | (b[s + 2]! << 16) | (b[s + 3]! << 24)) >>> 0;
  const hi = b[s + 4]! | (b[s + 5]! << 8) | (b[s + 6]! << 16) | (b[s + 7]! << 24); // signed
  if (hi > 0x1fffff || hi < -0x1fffff) tooBig(t, s, true);
  return hi * 4294967296 + lo;
}

/** A string attribute: raw bytes, rejected when it holds a NUL (C receivers would silently truncate). */
function str(t: number): Buffer {
  const s = strStart(t);
  return cBuf.subarray(s, s + slotLen[t]!);
}

/** Where a checked string attribute starts in the frame's buffer (its length: slotLen). */
function strStart(t: number): number {
  const s = need(t, -1);
  if (indexOfZero(cBuf, s, s + slotLen[t]!) >= 0) fail(`attribute ${ATTR_NAMES[t]} contains a NUL byte`, slotTlv[t]!);
  return s;
}

function bin(t: number): Buffer {
  const s = need(t, -1);
  return cBuf.subarray(s, s + slotLen[t]!);
}

function uuid(t: number): Buffer {
  const s = need(t, 16);
  return cBuf.subarray(s, s + 16);
}

// Field-by-field access for the dump, which prints the common commands straight from the frame without
// building a Command: scanFrame() then the accessors, called in the order decodeCommand reads the same
// fields, so a bad frame fails with the same error.

/** Scan a frame's attributes (the checks of decodeCommand's scan) for the accessors below. */
export function scanFrame(
  buf: Buffer, frame: number, len: number, cmdNum: number, dataRunsToEnd: boolean, index: number, offset: number,
): void {
  cBuf = buf;
  cFrame = frame;
  cOffset = offset;
  cIndex = index;
  cName = COMMAND_NAMES[cmdNum]!;
  const start = frame + COMMAND_HEADER_SIZE;
  scanAttributes(buf, start, start + len, dataRunsToEnd);
}

export const field = {
  /** A string attribute, checked as decodeCommand does; returns its start in the frame's buffer. */
  str: strStart,
  /** A variable-length attribute (present): its start. */
  bin: (t: number): number => need(t, -1),
  /** Length of an attribute found by str or bin. */
  length: (t: number): number => slotLen[t]!,
  u64,
  u32,
  /** A timespec attribute, checked; its seconds. */
  timeSec: timespecSec,
  present,
};

/** Walk the TLVs of a body, recording where each attribute is. */
function scanAttributes(buf: Buffer, start: number, end: number, dataRunsToEnd: boolean): void {
  gen = (gen + 1) >>> 0;
  if (gen === 0) {
    slotGen.fill(0);
    gen = 1;
  }
  let p = start;
  while (p < end) {
    if (end - p < 2) fail('attribute header runs past the end of the command body', p);
    const t = buf[p]! | (buf[p + 1]! << 8);
    if (t === 0 || t > ATTR_MAX) fail(`invalid attribute type ${t}`, p);
    let vs: number;
    let vl: number;
    if (t === Attr.DATA && dataRunsToEnd) {
      // v2+: DATA has no length field; its value is the rest of the body.
      vs = p + 2;
      vl = end - vs;
    } else {
      if (end - p < 4) fail(`attribute ${ATTR_NAMES[t]} header runs past the end of the command body`, p);
      vl = buf[p + 2]! | (buf[p + 3]! << 8);
      vs = p + 4;
      if (vs + vl > end) {
        fail(`attribute ${ATTR_NAMES[t]} (${vl} bytes) runs past the end of the command body`, p);
      }
    }
    if (slotGen[t] === gen) fail(`duplicate attribute ${ATTR_NAMES[t]}`, p);
    slotGen[t] = gen;
    slotStart[t] = vs;
    slotLen[t] = vl;
    slotTlv[t] = p;
    p = vs + vl;
  }
}

/**
 * Decode the command whose 10-byte header starts at buf[frame] (its body follows, `len` bytes).
 * `offset` is the absolute input offset of the header, `index` its 1-based number. `dataRunsToEnd`
 * is true in v2+ streams. The command number must be known (1..26). Attributes valid in the protocol
 * but not used by the command are ignored, as progs does.
 */
export function decodeCommand(
  buf: Buffer, frame: number, len: number, cmdNum: number, dataRunsToEnd: boolean, index: number, offset: number,
): Command {
  scanFrame(buf, frame, len, cmdNum, dataRunsToEnd, index, offset);
  const A = Attr;
  switch (cmdNum) {
    case Cmd.SUBVOL:
      return { cmd: 'subvol', path: str(A.PATH), uuid: uuid(A.UUID), ctransid: u64(A.CTRANSID) };
    case Cmd.SNAPSHOT:
      return {
        cmd: 'snapshot', path: str(A.PATH), uuid: uuid(A.UUID), ctransid: u64(A.CTRANSID),
        cloneUuid: uuid(A.CLONE_UUID), cloneCtransid: u64(A.CLONE_CTRANSID),
      };
    case Cmd.MKFILE:
      return { cmd: 'mkfile', path: str(A.PATH), ino: u64(A.INO) };
    case Cmd.MKDIR:
      return { cmd: 'mkdir', path: str(A.PATH), ino: u64(A.INO) };
    case Cmd.MKNOD:
    case Cmd.MKFIFO:
    case Cmd.MKSOCK:
      return {
        cmd: cmdNum === Cmd.MKNOD ? 'mknod' : cmdNum === Cmd.MKFIFO ? 'mkfifo' : 'mksock',
        path: str(A.PATH), ino: u64(A.INO), rdev: u64(A.RDEV), mode: u64(A.MODE),
      };
    case Cmd.SYMLINK:
      return { cmd: 'symlink', path: str(A.PATH), ino: u64(A.INO), target: str(A.PATH_LINK) };
    case Cmd.RENAME:
      return { cmd: 'rename', path: str(A.PATH), to: str(A.PATH_TO) };
    case Cmd.LINK:
      return { cmd: 'link', path: str(A.PATH), target: str(A.PATH_LINK) };
    case Cmd.UNLINK:
      return { cmd: 'unlink', path: str(A.PATH) };
    case Cmd.RMDIR:
      return { cmd: 'rmdir', path: str(A.PATH) };
    case Cmd.SET_XATTR:
      return { cmd: 'set_xattr', path: str(A.PATH), name: str(A.XATTR_NAME), value: bin(A.XATTR_DATA) };
    case Cmd.REMOVE_XATTR:
      return { cmd: 'remove_xattr', path: str(A.PATH), name: str(A.XATTR_NAME) };
    case Cmd.WRITE:
      return { cmd: 'write', path: str(A.PATH), offset: u64(A.FILE_OFFSET), data: bin(A.DATA) };
    case Cmd.CLONE:
      return {
        cmd: 'clone', path: str(A.PATH), offset: u64(A.FILE_OFFSET), len: u64(A.CLONE_LEN),
        cloneUuid: uuid(A.CLONE_UUID), cloneCtransid: u64(A.CLONE_CTRANSID), clonePath: str(A.CLONE_PATH),
        cloneOffset: u64(A.CLONE_OFFSET),
      };
    case Cmd.TRUNCATE:
      return { cmd: 'truncate', path: str(A.PATH), size: u64(A.SIZE) };
    case Cmd.CHMOD:
      return { cmd: 'chmod', path: str(A.PATH), mode: u64(A.MODE) };
    case Cmd.CHOWN:
      return { cmd: 'chown', path: str(A.PATH), uid: u64(A.UID), gid: u64(A.GID) };
    case Cmd.UTIMES:
      return {
        cmd: 'utimes', path: str(A.PATH), atime: timespec(A.ATIME), mtime: timespec(A.MTIME),
        ctime: timespec(A.CTIME), otime: present(A.OTIME) ? timespec(A.OTIME) : undefined,
      };
    case Cmd.END:
      return { cmd: 'end' };
    case Cmd.UPDATE_EXTENT:
      return { cmd: 'update_extent', path: str(A.PATH), offset: u64(A.FILE_OFFSET), size: u64(A.SIZE) };
    case Cmd.FALLOCATE:
      return {
        cmd: 'fallocate', path: str(A.PATH), mode: u32(A.FALLOCATE_MODE), offset: u64(A.FILE_OFFSET),
        size: u64(A.SIZE),
      };
    case Cmd.FILEATTR:
      return { cmd: 'fileattr', path: str(A.PATH), flags: u64(A.FILEATTR) };
    case Cmd.ENCODED_WRITE:
      return {
        cmd: 'encoded_write', path: str(A.PATH), offset: u64(A.FILE_OFFSET),
        unencodedFileLen: u64(A.UNENCODED_FILE_LEN), unencodedLen: u64(A.UNENCODED_LEN),
        unencodedOffset: u64(A.UNENCODED_OFFSET),
        compression: present(A.COMPRESSION) ? u32(A.COMPRESSION) : undefined,
        encryption: present(A.ENCRYPTION) ? u32(A.ENCRYPTION) : undefined,
        data: bin(A.DATA),
      };
    case Cmd.ENABLE_VERITY:
      return {
        cmd: 'enable_verity', path: str(A.PATH), algorithm: u8(A.VERITY_ALGORITHM),
        blockSize: u32(A.VERITY_BLOCK_SIZE), salt: bin(A.VERITY_SALT_DATA), sig: bin(A.VERITY_SIG_DATA),
      };
    default:
      throw new StreamError(`unknown command ${cmdNum} in ${describeCommand(index)} at byte ${offset}`, offset, index);
  }
}
