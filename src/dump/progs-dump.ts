// `btrfs receive --dump` output, byte for byte as btrfs-progs 6.2 prints it (protocol.md §6.8).
//
// Each line: the command name padded to 16 columns, the full path escaped (escape.ts), spaces up to
// column 48 (at least one), then the details. Commands without details end right after the path.
// Quirks of 6.2 kept on purpose, since the goal is an identical dump:
//   - symlink/link/rename destinations are escaped; clone sources, xattr names and values are not;
//   - set_xattr prints the value raw, up to its first NUL byte (`data=%.*s`);
//   - encoded_write separates some fields with ", ";
//   - fileattr prints its decimal value after "0x"; fallocate's mode is printed as a signed int;
//   - clone's length keeps only its low 32 bits, sign-extended (progsCloneLen);
//   - times are local (TZ), seconds only, `%FT%T%z`; OTIME is not shown.
// END prints nothing. Paths are joined like progs' path_cat_out: one trailing slash of each part is
// dropped, and a result that would not fit PATH_MAX (4096) is an error.
import type { Command, Uuid } from '../stream/commands.js';
import { formatLocalTime, loadZone, type Zone } from './localtime.js';
import { escapeInto, writeEscaped } from './escape.js';
import type { OutBuffer } from './out-buffer.js';
import { copyWords, pieceStart, pieceText, textTable, type Piece } from './text-table.js';
import { TimeTexts } from './time-texts.js';
import { field } from '../stream/decode.js';
import { Attr, COMMAND_NAMES, type CommandName } from '../stream/protocol.js';

const PATH_MAX = 4096;
const SLASH = 0x2f;

/** A dump line that progs would refuse to print (its path would overflow PATH_MAX). */
export class DumpPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DumpPathError';
  }
}

/** Length without one trailing slash (progs drops only one). */
function trimSlash(b: Buffer): number {
  return b.length > 0 && b[b.length - 1] === SLASH ? b.length - 1 : b.length;
}

/** progs' path_cat_out: `p1/p2`, each part without one trailing slash. */
export function pathCat(p1: Buffer, p2: Buffer, title: string): Buffer {
  if (p1.length + p2.length + 2 >= PATH_MAX) {
    throw new DumpPathError(`${title}: path too long (${p1.length + p2.length + 1} bytes, PATH_MAX is ${PATH_MAX})`);
  }
  const n1 = trimSlash(p1);
  const n2 = trimSlash(p2);
  const out = Buffer.allocUnsafe(n1 + 1 + n2);
  p1.copy(out, 0, 0, n1);
  out[n1] = SLASH;
  p2.copy(out, n1 + 1, 0, n2);
  return out;
}

/**
 * CLONE_LEN as 6.2 prints it: progs reads it into a C int and passes it on as u64, so only the low 32
 * bits survive, sign-extended (real clone lengths are far below 2 GiB, where this is the identity).
 */
export function progsCloneLen(len: number): string {
  const low = len | 0;
  return low >= 0 ? String(low) : String(2n ** 64n + BigInt(low));
}

/** Canonical lower-case text of a 16-byte UUID. */
export function formatUuid(uuid: Uuid): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const TITLE_WIDTH = 16;
const PATH_WIDTH = 32;
const ROOT = Buffer.from('.');

/** Every command's name padded to the title width (16 bytes: four words). */
const TITLES = textTable(
  Object.fromEntries(COMMAND_NAMES.map((name) => [name, name.padEnd(TITLE_WIDTH, ' ')])) as Record<CommandName | 'unspec', string>,
);
/**
 * The command numbers of formatFrame's switch (protocol.ts' Cmd). A const enum, so the compiled cases are
 * number literals: V8 then dispatches through a jump table instead of loading and comparing `Cmd.X` label
 * by label, and a label first reached after the switch was optimized (a rare command) no longer throws the
 * optimized code away. A wrong number here would misprint, which the frame-format tests would catch.
 */
const enum FastCmd {
  MKFILE = 3, MKDIR = 4, RENAME = 9, UNLINK = 11, RMDIR = 12, WRITE = 15, TRUNCATE = 17, CHMOD = 18, CHOWN = 19,
  UTIMES = 20, ENCODED_WRITE = 25,
}

/** Title pieces by command number. */
const TITLE_OF_CMD: readonly Piece[] = COMMAND_NAMES.map((name) => TITLES.piece[name]);

/** The field labels of the commands printed straight from their frame. */
const LABELS = textTable({
  dest: 'dest=', offset: 'offset=', len: ' len=', size: 'size=', mode: 'mode=', gid: 'gid=', uid: ' uid=',
  atime: 'atime=', mtime: ' mtime=', ctime: ' ctime=', unencodedFileLen: ', unencoded_file_len=',
  unencodedLen: ', unencoded_len=', unencodedOffset: ', unencoded_offset=', compression: ', compression=',
  encryption: ', encryption=',
});
const L = LABELS.piece;

/** The command name of a title piece (error messages). */
function titleName(title: Piece): string {
  return pieceText(TITLES.view, title).trimEnd();
}

export class ProgsDumpFormatter {
  /** progs' full_subvol_path: "." until the first subvol/snapshot. */
  private subvolPath: Buffer = ROOT;
  /** subvolPath without one trailing slash, raw and escaped: the prefix of every other path. */
  private prefixRaw: Buffer = ROOT;
  private prefixEsc: Buffer = ROOT;
  /** prefixEsc and a slash, with room to copy it out in whole words; its length and its room. */
  private prefixSlash = new DataView(new ArrayBuffer(8));
  private prefixSlashLength = 0;
  private prefixSlashRoom = 8;
  private readonly zone: Zone;
  /** Recent time texts: a stream repeats the same few timestamps a lot. */
  private times = new Map<number, string>();
  private readonly timeTexts: TimeTexts;

  constructor(private readonly out: OutBuffer, opts: { zone?: Zone } = {}) {
    this.zone = opts.zone ?? loadZone();
    this.timeTexts = new TimeTexts(this.zone);
    this.setSubvol(ROOT);
  }

  /** Start of a new concatenated stream: progs starts each receive from the top again. */
  newStream(): void {
    this.setSubvol(ROOT);
  }

  private setSubvol(full: Buffer): void {
    this.subvolPath = full;
    this.prefixRaw = full.subarray(0, trimSlash(full));
    const esc = Buffer.allocUnsafe(this.prefixRaw.length * 4);
    this.prefixEsc = esc.subarray(0, escapeInto(esc, 0, this.prefixRaw, 0, this.prefixRaw.length));
    const n = this.prefixEsc.length + 1;
    const withSlash = Buffer.alloc((n + 3) & ~3);
    this.prefixEsc.copy(withSlash);
    withSlash[n - 1] = SLASH;
    this.prefixSlash = new DataView(withSlash.buffer, withSlash.byteOffset, withSlash.byteLength);
    this.prefixSlashLength = n;
    this.prefixSlashRoom = withSlash.length;
  }

  private checkLength(p: Buffer, title: string): void {
    if (this.subvolPath.length + p.length + 2 >= PATH_MAX) pathCat(this.subvolPath, p, title); // throws
  }

  /**
   * Title, escaped `<subvol>/<p>` and the padding before the details (or the newline when there are
   * none), written straight into the output: no joined path is built.
   */
  private head(name: CommandName, p: Buffer, details: boolean): void {
    this.headOf(TITLES.piece[name], p, 0, p.length, details);
  }

  /**
   * head() for the path at src[start..end), with the title piece of its command. The fixed parts are
   * written a word (4 bytes) at a time; a word may run past its part, into bytes written next.
   */
  private headOf(title: Piece, src: Buffer, start: number, end: number, details: boolean): void {
    const n = end - start;
    if (this.subvolPath.length + n + 2 >= PATH_MAX) pathCat(this.subvolPath, src.subarray(start, end), titleName(title)); // throws
    const out = this.out;
    const prefix = this.prefixSlash;
    const prefixLength = this.prefixSlashLength;
    out.reserveRoom(TITLE_WIDTH + this.prefixSlashRoom + 4 * n + PATH_WIDTH + 4);
    const buf = out.buffer;
    const to = out.dataView;
    let q = out.position;
    copyWords(to, q, TITLES.view, pieceStart(title), TITLE_WIDTH);
    q += TITLE_WIDTH;
    const pathStart = q;
    copyWords(to, q, prefix, 0, prefixLength);
    q = escapeInto(buf, q + prefixLength, src, start, n > 0 && src[end - 1] === SLASH ? end - 1 : end);
    if (!details) {
      buf[q++] = 0x0a;
    } else {
      const width = q - pathStart;
      const pad = width < PATH_WIDTH ? PATH_WIDTH - width : 1;
      for (let i = 0; i < pad; i += 4) to.setInt32(q + i, 0x20202020, true);
      q += pad;
    }
    out.commit(q);
  }

  /** Head for subvol/snapshot, whose path becomes the new prefix. */
  private subvolHead(name: string, path: Buffer): void {
    this.setSubvol(pathCat(ROOT, path, name));
    this.out.latin1(name.padEnd(TITLE_WIDTH, ' '));
    const width = writeEscaped(this.out, this.subvolPath);
    this.out.spaces(width < PATH_WIDTH ? PATH_WIDTH - width : 1);
  }

  /** `<subvol>/<p>` escaped, as a detail (rename's destination). */
  private escapedFull(p: Buffer, title: string): void {
    this.escapedFullOf(p, 0, p.length, title);
  }

  private escapedFullOf(src: Buffer, start: number, end: number, title: string): void {
    const n = end - start;
    if (this.subvolPath.length + n + 2 >= PATH_MAX) pathCat(this.subvolPath, src.subarray(start, end), title); // throws
    const out = this.out;
    const prefix = this.prefixSlash;
    const prefixLength = this.prefixSlashLength;
    out.reserveRoom(this.prefixSlashRoom + 4 * n);
    const to = out.dataView;
    const q = out.position;
    copyWords(to, q, prefix, 0, prefixLength);
    out.commit(escapeInto(out.buffer, q + prefixLength, src, start, n > 0 && src[end - 1] === SLASH ? end - 1 : end));
  }

  /** `<subvol>/<p>` raw, as a detail (6.2 prints clone sources unescaped). */
  private rawFull(p: Buffer, title: string): void {
    this.checkLength(p, title);
    this.out.bytes(this.prefixRaw);
    this.out.byte(SLASH);
    this.out.bytes(p, 0, trimSlash(p));
  }


  /**
   * The common commands printed straight from their frame (scanFrame was called), reading the fields
   * in decodeCommand's order so a bad frame fails the same way, before anything is printed. False for
   * the other commands: the caller decodes them and calls format().
   */
  formatFrame(cmdNum: number, buf: Buffer): boolean {
    const out = this.out;
    const F = field;
    const A = Attr;
    const labels = LABELS.view;
    switch (cmdNum) {
      case FastCmd.MKFILE:
      case FastCmd.MKDIR: {
        const p = F.str(A.PATH);
        F.u64(A.INO);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), false);
        return true;
      }
      case FastCmd.UNLINK:
      case FastCmd.RMDIR: {
        const p = F.str(A.PATH);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), false);
        return true;
      }
      case FastCmd.RENAME: {
        const p = F.str(A.PATH);
        const to = F.str(A.PATH_TO);
        const toEnd = to + F.length(A.PATH_TO);
        if (this.subvolPath.length + (toEnd - to) + 2 >= PATH_MAX) pathCat(this.subvolPath, buf.subarray(to, toEnd), 'rename');
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), true);
        out.text(labels, L.dest);
        this.escapedFullOf(buf, to, toEnd, 'rename');
        out.byte(0x0a);
        return true;
      }
      case FastCmd.WRITE: {
        const p = F.str(A.PATH);
        const offset = F.u64(A.FILE_OFFSET);
        F.bin(A.DATA);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), true);
        out.text(labels, L.offset);
        out.decimal(offset);
        out.text(labels, L.len);
        out.decimal(F.length(A.DATA));
        out.byte(0x0a);
        return true;
      }
      case FastCmd.TRUNCATE: {
        const p = F.str(A.PATH);
        const size = F.u64(A.SIZE);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), true);
        out.text(labels, L.size);
        out.decimal(size);
        out.byte(0x0a);
        return true;
      }
      case FastCmd.CHMOD: {
        const p = F.str(A.PATH);
        const mode = F.u64(A.MODE);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), true);
        out.text(labels, L.mode);
        out.octal(mode);
        out.byte(0x0a);
        return true;
      }
      case FastCmd.CHOWN: {
        const p = F.str(A.PATH);
        const uid = F.u64(A.UID);
        const gid = F.u64(A.GID);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), true);
        out.text(labels, L.gid);
        out.decimal(gid);
        out.text(labels, L.uid);
        out.decimal(uid);
        out.byte(0x0a);
        return true;
      }
      case FastCmd.UTIMES: {
        const p = F.str(A.PATH);
        const atime = F.timeSec(A.ATIME);
        const mtime = F.timeSec(A.MTIME);
        const ctime = F.timeSec(A.CTIME);
        if (F.present(A.OTIME)) F.timeSec(A.OTIME);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), true);
        // Each piece is copied before the next is asked for: two seconds may share a cache slot.
        const times = this.timeTexts;
        out.text(labels, L.atime);
        out.text(times.view, times.piece(atime));
        out.text(labels, L.mtime);
        out.text(times.view, times.piece(mtime));
        out.text(labels, L.ctime);
        out.text(times.view, times.piece(ctime));
        out.byte(0x0a);
        return true;
      }
      case FastCmd.ENCODED_WRITE: {
        const p = F.str(A.PATH);
        const offset = F.u64(A.FILE_OFFSET);
        const fileLen = F.u64(A.UNENCODED_FILE_LEN);
        const len = F.u64(A.UNENCODED_LEN);
        const at = F.u64(A.UNENCODED_OFFSET);
        const compression = F.present(A.COMPRESSION) ? F.u32(A.COMPRESSION) : 0;
        const encryption = F.present(A.ENCRYPTION) ? F.u32(A.ENCRYPTION) : 0;
        F.bin(A.DATA);
        this.headOf(TITLE_OF_CMD[cmdNum]!, buf, p, p + F.length(A.PATH), true);
        out.text(labels, L.offset);
        out.decimal(offset);
        out.text(labels, L.len);
        out.decimal(F.length(A.DATA));
        out.text(labels, L.unencodedFileLen);
        out.decimal(fileLen);
        out.text(labels, L.unencodedLen);
        out.decimal(len);
        out.text(labels, L.unencodedOffset);
        out.decimal(at);
        out.text(labels, L.compression);
        out.decimal(compression);
        out.text(labels, L.encryption);
        out.decimal(encryption);
        out.byte(0x0a);
        return true;
      }
      default:
        return false;
    }
  }

  private time(sec: number): string {
    let t = this.times.get(sec);
    if (t === undefined) {
      if (this.times.size >= 4096) this.times.clear();
      this.times.set(sec, (t = formatLocalTime(sec, this.zone)));
    }
    return t;
  }

  /** Append the dump line(s) of one command. */
  format(c: Command): void {
    const out = this.out;
    switch (c.cmd) {
      case 'subvol': {
        this.subvolHead(c.cmd, c.path);
        out.latin1(`uuid=${formatUuid(c.uuid)} transid=${c.ctransid}\n`);
        return;
      }
      case 'snapshot': {
        this.subvolHead(c.cmd, c.path);
        out.latin1(`uuid=${formatUuid(c.uuid)} transid=${c.ctransid} parent_uuid=${formatUuid(c.cloneUuid)}` +
          ` parent_transid=${c.cloneCtransid}\n`);
        return;
      }
      case 'mkfile':
      case 'mkdir':
      case 'mkfifo':
      case 'mksock':
      case 'unlink':
      case 'rmdir':
        this.head(c.cmd, c.path, false);
        return;
      case 'mknod':
        this.head(c.cmd, c.path, true);
        out.latin1(`mode=${c.mode.toString(8)} dev=0x${c.rdev.toString(16)}\n`);
        return;
      case 'symlink':
      case 'link': {
        this.head(c.cmd, c.path, true);
        out.latin1('dest=');
        writeEscaped(out, c.target);
        out.byte(0x0a);
        return;
      }
      case 'rename': {
        this.checkLength(c.to, c.cmd);
        this.head(c.cmd, c.path, true);
        out.latin1('dest=');
        this.escapedFull(c.to, c.cmd);
        out.byte(0x0a);
        return;
      }
      case 'write':
        this.head(c.cmd, c.path, true);
        out.latin1(`offset=${c.offset} len=${c.data.length}\n`);
        return;
      case 'clone': {
        this.checkLength(c.clonePath, c.cmd);
        this.head(c.cmd, c.path, true);
        out.latin1(`offset=${c.offset} len=${progsCloneLen(c.len)} from=`);
        this.rawFull(c.clonePath, c.cmd);
        out.latin1(` clone_offset=${c.cloneOffset}\n`);
        return;
      }
      case 'set_xattr': {
        this.head(c.cmd, c.path, true);
        out.latin1('name=');
        out.bytes(c.name);
        out.latin1(' data=');
        const nul = c.value.indexOf(0);
        out.bytes(c.value, 0, nul < 0 ? c.value.length : nul);
        out.latin1(` len=${c.value.length}\n`);
        return;
      }
      case 'remove_xattr':
        this.head(c.cmd, c.path, true);
        out.latin1('name=');
        out.bytes(c.name);
        out.byte(0x0a);
        return;
      case 'truncate':
        this.head(c.cmd, c.path, true);
        out.latin1(`size=${c.size}\n`);
        return;
      case 'chmod':
        this.head(c.cmd, c.path, true);
        out.latin1(`mode=${c.mode.toString(8)}\n`);
        return;
      case 'chown':
        this.head(c.cmd, c.path, true);
        out.latin1(`gid=${c.gid} uid=${c.uid}\n`);
        return;
      case 'utimes': {
        const line = `atime=${this.time(c.atime.sec)} mtime=${this.time(c.mtime.sec)} ctime=${this.time(c.ctime.sec)}\n`;
        this.head(c.cmd, c.path, true);
        out.latin1(line);
        return;
      }
      case 'update_extent':
        this.head(c.cmd, c.path, true);
        out.latin1(`offset=${c.offset} len=${c.size}\n`);
        return;
      case 'fallocate':
        this.head(c.cmd, c.path, true);
        out.latin1(`mode=${c.mode | 0} offset=${c.offset} len=${c.size}\n`); // progs: %d of a u32
        return;
      case 'fileattr':
        this.head(c.cmd, c.path, true);
        out.latin1(`fileattr=0x${c.flags}\n`);
        return;
      case 'encoded_write':
        this.head(c.cmd, c.path, true);
        out.latin1(`offset=${c.offset} len=${c.data.length}, unencoded_file_len=${c.unencodedFileLen}, ` +
          `unencoded_len=${c.unencodedLen}, unencoded_offset=${c.unencodedOffset}, ` +
          `compression=${c.compression ?? 0}, encryption=${c.encryption ?? 0}\n`);
        return;
      case 'enable_verity':
        // v3 only; 6.2 cannot read v3 streams, so this follows current btrfs-progs.
        this.head(c.cmd, c.path, true);
        out.latin1(`algorithm=${c.algorithm} block_size=${c.blockSize} salt_len=${c.salt.length} sig_len=${c.sig.length}\n`);
        return;
      case 'end':
        return;
    }
  }
}
