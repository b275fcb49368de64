// Seeded random trees for the differential soak: buildRandomTree() fills a directory with every inode
// type a send stream carries (files with holes, reflinks and mixed data, dirs, symlinks, hard links,
// fifos, sockets, char/block devices, xattrs, ACLs, odd names, odd times, owners, modes, inode flags);
// mutateRandomTree() applies the changes an incremental send must express (renames incl. swaps,
// cycles and ancestor inversions, deletes, overwrites, truncations, hole punches, link changes,
// file<->dir replacement, metadata changes). Every decision comes from the Rng, so a seed replays.
// Must run as root on btrfs. Returns a log of operations (for replay/debugging).
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';
import { Rng } from './prng.js';
import { makedev, mknod, lutimensNs, lsetxattr, lremovexattr, lgetxattrs, renameExchange, punchHole } from '../lab/test-libc.js';
import { check, ioctl, ioctlInt } from '../sys/libc.js';
import { Ioctl } from '../sys/constants.js';

export interface TreeOptions {
  /** Number of entries created by buildRandomTree (default 150). */
  entries?: number;
  /** Largest regular file in bytes (default 3 MiB). */
  maxFileSize?: number;
  /** Operations per mutation step (default 45). */
  mutations?: number;
}

type Kind = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chr' | 'blk';

interface Entry {
  rel: Buffer; // path relative to the root, no leading slash
  kind: Kind;
}

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFSOCK = 0o140000;
const KiB = 1024;

const UIDS = [0, 1, 1000, 1001, 65534, 4_000_000];
const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.soak_'];

const FICLONE = 0x40049409;

/** Run a command whose last argument is a raw path (any bytes but NUL): bash $'\xHH' quoting. */
function shellWithPath(args: string[], path: Buffer): void {
  const quote = (b: Buffer): string => "$'" + [...b].map((x) => '\\x' + x.toString(16).padStart(2, '0')).join('') + "'";
  const script = [...args.map((a) => quote(Buffer.from(a))), quote(path)].join(' ');
  execFileSync('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_SETFACL = have('setfacl');
const HAVE_CHATTR = have('chattr');

function randomBytes(rng: Rng, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(rng.u32(), 0);
  key.writeUInt32LE(rng.u32(), 4);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

const WORDS = ['btrfs', 'send', 'receive', 'extent', 'inode', 'snapshot', 'clone', 'zstd', 'lzo', 'zlib', 'hole'];
function compressible(rng: Rng, length: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  let line = rng.int(1000);
  while (n < length) {
    const s = `${line++}: ${rng.pick(WORDS)} ${rng.pick(WORDS)} ${rng.pick(WORDS)}\n`;
    parts.push(s);
    n += s.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

/** File data: random (incompressible), text (compressible), zeros, or a mix of 64 KiB pieces. */
function fileData(rng: Rng, length: number): Buffer {
  const kind = rng.weighted([[3, 'random'], [3, 'text'], [1, 'zeros'], [2, 'mixed']] as const);
  if (kind === 'random') return randomBytes(rng, length);
  if (kind === 'text') return compressible(rng, length);
  if (kind === 'zeros') return Buffer.alloc(length);
  const out = Buffer.alloc(length);
  for (let off = 0; off < length; off += 64 * KiB) {
    const n = Math.min(64 * KiB, length - off);
    const piece = rng.chance(0.5) ? randomBytes(rng, n) : rng.chance(0.7) ? compressible(rng, n) : Buffer.alloc(n);
    piece.copy(out, off);
  }
  return out;
}

function fileSize(rng: Rng, max: number): number {
  const bucket = rng.weighted([[2, 0], [4, 1], [4, 2], [3, 3], [1, 4]] as const);
  switch (bucket) {
    case 0: return 0;
    case 1: return rng.range(1, 3000); // inline extents
    case 2: return rng.range(3000, 140 * KiB); // around the 48/128 KiB write limits
    case 3: return rng.range(140 * KiB, Math.max(140 * KiB, Math.floor(max / 4)));
    default: return rng.range(Math.floor(max / 2), max);
  }
}

/** A fresh name: mostly plain, sometimes with spaces, newlines, control or non-UTF-8 bytes, long. */
function newName(rng: Rng, counter: { n: number }): Buffer {
  const id = counter.n++;
  const style = rng.weighted([
    [10, 'plain'], [2, 'space'], [1, 'newline'], [1, 'latin'], [1, 'ctrl'], [1, 'utf8'], [1, 'long'],
    [1, 'orphanlike'], [1, 'dots'],
  ] as const);
  switch (style) {
    case 'plain': return Buffer.from(`n${id}`);
    case 'space': return Buffer.from(`with space ${id} `);
    case 'newline': return Buffer.from(`new\nline${id}`);
    case 'latin': return Buffer.concat([Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(`-${id}`)]);
    case 'ctrl': return Buffer.from(`c\x01\x1b\t\x7f${id}`);
    case 'utf8': return Buffer.from(`ünï-日本-${id}`);
    case 'long': {
      const tail = `-${id}`;
      return Buffer.from('L'.repeat(255 - tail.length) + tail);
    }
    // Names that look like the kernel's orphan names must not confuse the receiver.
    case 'orphanlike': return Buffer.from(`o${257 + rng.int(50)}-${rng.int(20)}-${id}`);
    default: return Buffer.from(`..${id}.`);
  }
}

function join(root: string, rel: Buffer): Buffer {
  return rel.length === 0 ? Buffer.from(root) : Buffer.concat([Buffer.from(root + '/'), rel]);
}
function childRel(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 0 ? name : Buffer.concat([dir, Buffer.from('/'), name]);
}
function parentRel(rel: Buffer): Buffer {
  const i = rel.lastIndexOf(0x2f);
  return i < 0 ? Buffer.alloc(0) : rel.subarray(0, i);
}

/** Every entry under root (depth-first), excluding root itself. */
export function scanTree(root: string): Entry[] {
  const out: Entry[] = [];
  const walk = (dir: Buffer): void => {
    for (const name of fs.readdirSync(join(root, dir), { encoding: 'buffer' })) {
      const rel = childRel(dir, name);
      const st = fs.lstatSync(join(root, rel));
      const kind: Kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink'
        : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'chr' : 'blk';
      out.push({ rel, kind });
      if (kind === 'dir') walk(rel);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

/** State shared by the operations of one build or mutation step. */
class Ctx {
  readonly log: string[] = [];
  entries: Entry[];
  constructor(readonly root: string, readonly rng: Rng, readonly opts: Required<TreeOptions>, readonly counter: { n: number }) {
    this.entries = scanTree(root);
  }
  refresh(): void {
    this.entries = scanTree(this.root);
  }
  abs(rel: Buffer): Buffer {
    return join(this.root, rel);
  }
  show(rel: Buffer): string {
    return JSON.stringify(rel.toString('latin1'));
  }
  dirs(): Buffer[] {
    return [Buffer.alloc(0), ...this.entries.filter((e) => e.kind === 'dir').map((e) => e.rel)];
  }
  of(...kinds: Kind[]): Entry[] {
    return this.entries.filter((e) => kinds.includes(e.kind));
  }
  /** A free path in a random directory. */
  freshPath(): Buffer {
    for (;;) {
      const rel = childRel(this.rng.pick(this.dirs()), newName(this.rng, this.counter));
      if (rel.length < 3800 && !fs.existsSync(this.abs(rel))) return rel;
    }
  }
  note(op: string, ...paths: Buffer[]): void {
    this.log.push(`${op} ${paths.map((p) => this.show(p)).join(' ')}`);
  }
}

function writeAt(path: Buffer, offset: number, data: Buffer): void {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
  try {
    for (let done = 0; done < data.length;) done += fs.writeSync(fd, data, done, data.length - done, offset + done);
  } finally {
    fs.closeSync(fd);
  }
}

/** FICLONERANGE: share `len` bytes of `src` at `srcOff` into `dst` at `dstOff`. */
export function cloneRange(src: Buffer | string, srcOff: number, len: number, dst: Buffer | string, dstOff: number): void {
  const s = fs.openSync(src, 'r');
  const d = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
  try {
    const arg = Buffer.alloc(32);
    arg.writeBigInt64LE(BigInt(s), 0);
    arg.writeBigUInt64LE(BigInt(srcOff), 8);
    arg.writeBigUInt64LE(BigInt(len), 16);
    arg.writeBigUInt64LE(BigInt(dstOff), 24);
    ioctl(d, Ioctl.BTRFS_IOC_CLONE_RANGE, arg, 'FICLONERANGE', dst);
  } finally {
    fs.closeSync(s);
    fs.closeSync(d);
  }
}

// ---- creation -------------------------------------------------------------------------------------

function createFile(c: Ctx): void {
  const rel = c.freshPath();
  const size = fileSize(c.rng, c.opts.maxFileSize);
  const path = c.abs(rel);
  const shape = c.rng.weighted([[6, 'dense'], [2, 'sparse'], [1, 'prealloc']] as const);
  if (shape === 'dense' || size < 8 * KiB) {
    fs.writeFileSync(path, fileData(c.rng, size));
  } else {
    // Holes at the start, middle and/or end; islands at random (often unaligned) offsets.
    fs.writeFileSync(path, Buffer.alloc(0));
    if (shape === 'prealloc') shellWithPath(['fallocate', '-l', String(size), '--'], path);
    else fs.truncateSync(path, size);
    const islands = c.rng.range(1, 4);
    for (let i = 0; i < islands; i++) {
      const len = c.rng.range(1, Math.min(size, 200 * KiB));
      const off = c.rng.int(size - len + 1);
      writeAt(path, off, fileData(c.rng, len));
    }
  }
  c.note(`file(${shape},${size})`, rel);
}

function createReflink(c: Ctx): void {
  const sources = c.of('file').filter((e) => fs.statSync(c.abs(e.rel)).size >= 4 * KiB);
  if (sources.length === 0) return createFile(c);
  const src = c.rng.pick(sources);
  const srcPath = c.abs(src.rel);
  const size = fs.statSync(srcPath).size;
  if (c.rng.chance(0.4)) {
    const rel = c.freshPath();
    // Whole-file reflink, as `cp --reflink=always` does it (FICLONE).
    const s = fs.openSync(srcPath, 'r');
    const d = fs.openSync(c.abs(rel), fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
    try {
      check(ioctlInt(d, FICLONE, s) as number, 'FICLONE', c.abs(rel));
    } finally {
      fs.closeSync(s);
      fs.closeSync(d);
    }
    c.note('reflink-copy', src.rel, rel);
    return;
  }
  // Block-aligned range clone into a new or existing file (possibly the same file: CLONE within).
  const blocks = Math.floor(size / 4096);
  const len = 4096 * c.rng.range(1, Math.min(blocks, 64));
  const srcOff = 4096 * c.rng.int(blocks - len / 4096 + 1);
  const targets = c.of('file');
  const toExisting = c.rng.chance(0.5) && targets.length > 0;
  const dst = toExisting ? c.rng.pick(targets).rel : c.freshPath();
  const dstPath = c.abs(dst);
  const dstSize = toExisting ? fs.statSync(dstPath).size : 0;
  const dstOff = 4096 * c.rng.int(Math.floor(dstSize / 4096) + 8);
  if (dst.equals(src.rel) && Math.abs(dstOff - srcOff) < len) return; // overlapping self-clone: EINVAL
  cloneRange(srcPath, srcOff, len, dstPath, dstOff);
  c.note(`clone(${srcOff},${len}->${dstOff})`, src.rel, dst);
}

function createDir(c: Ctx): void {
  const rel = c.freshPath();
  fs.mkdirSync(c.abs(rel));
  c.note('mkdir', rel);
}

function symlinkTarget(c: Ctx): Buffer {
  const style = c.rng.weighted([[4, 'existing'], [1, 'absolute'], [1, 'dangling'], [1, 'odd'], [1, 'long']] as const);
  switch (style) {
    case 'existing': return c.entries.length ? c.rng.pick(c.entries).rel : Buffer.from('.');
    case 'absolute': return Buffer.from(c.rng.pick(['/etc/passwd', '/', '/nonexistent/x', '/dev/null']));
    case 'dangling': return Buffer.from(`../missing/${c.rng.int(1000)}`);
    case 'odd': return Buffer.concat([Buffer.from('odd target\n'), Buffer.from([0xfe, 0xff, 0x09])]);
    default: return Buffer.from('a/'.repeat(c.rng.range(100, 1500)).slice(0, -1));
  }
}

function createSymlink(c: Ctx): void {
  const rel = c.freshPath();
  fs.symlinkSync(symlinkTarget(c), c.abs(rel));
  c.note('symlink', rel);
}

function createHardlink(c: Ctx): void {
  const files = c.of('file', 'fifo', 'socket', 'chr', 'blk', 'symlink');
  if (files.length === 0) return createFile(c);
  const src = c.rng.pick(files);
  const rel = c.freshPath();
  fs.linkSync(c.abs(src.rel), c.abs(rel));
  c.note('link', src.rel, rel);
}

function createSpecial(c: Ctx): void {
  const rel = c.freshPath();
  const kind = c.rng.pick(['fifo', 'socket', 'chr', 'blk'] as const);
  const perm = c.rng.pick([0o644, 0o600, 0o666, 0o000, 0o4755]) & 0o7777;
  const type = { fifo: S_IFIFO, socket: S_IFSOCK, chr: S_IFCHR, blk: S_IFBLK }[kind];
  const dev = kind === 'chr' || kind === 'blk' ? makedev(c.rng.pick([1, 7, 8, 259, 4095]), c.rng.pick([0, 3, 200, 255, 256, 70000])) : 0;
  mknod(c.abs(rel), type | perm, dev);
  c.note(`${kind}(${dev})`, rel);
}

// ---- metadata -------------------------------------------------------------------------------------

function capabilityXattr(c: Ctx): Buffer {
  // VFS_CAP_REVISION_2 with the effective flag, random permitted/inheritable low words.
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000001, 0);
  b.writeUInt32LE(c.rng.u32() & 0x3fffffff, 4);
  b.writeUInt32LE(c.rng.u32() & 0x3fffffff, 8);
  return b;
}

function setXattr(c: Ctx): void {
  if (c.entries.length === 0) return;
  const e = c.rng.pick(c.entries);
  const path = c.abs(e.rel);
  // user.* is only allowed on files and dirs.
  const userOk = e.kind === 'file' || e.kind === 'dir';
  const ns = userOk ? c.rng.pick(XATTR_NAMESPACES) : c.rng.pick(XATTR_NAMESPACES.slice(1));
  if (e.kind === 'file' && c.rng.chance(0.15)) {
    lsetxattr(path, 'security.capability', capabilityXattr(c));
    c.note('setcap', e.rel);
    return;
  }
  const name = `${ns}${c.rng.pick(['a', 'b', 'long_' + 'x'.repeat(c.rng.int(200)), 'sp ace', 'e'])}`;
  const len = c.rng.weighted([[1, 0], [4, c.rng.range(1, 64)], [2, c.rng.range(65, 3000)]] as const);
  const value = c.rng.chance(0.5) ? randomBytes(c.rng, len) : compressible(c.rng, len);
  lsetxattr(path, name, value);
  c.note(`setxattr(${name},${len})`, e.rel);
}

function removeXattr(c: Ctx): void {
  const withX = c.entries.filter((e) => lgetxattrs(c.abs(e.rel)).size > 0);
  if (withX.length === 0) return setXattr(c);
  const e = c.rng.pick(withX);
  const name = c.rng.pick([...lgetxattrs(c.abs(e.rel)).keys()]);
  lremovexattr(c.abs(e.rel), name);
  c.note(`rmxattr(${name})`, e.rel);
}

function setAcl(c: Ctx): void {
  const targets = c.of('file', 'dir');
  if (!HAVE_SETFACL || targets.length === 0) return setXattr(c);
  const e = c.rng.pick(targets);
  const spec = `u:${c.rng.pick([1000, 1001, 0])}:${c.rng.pick(['rwx', 'r-x', 'r--', '---'])},g:${c.rng.pick([100, 5])}:r-x,m::rwx`;
  const args = e.kind === 'dir' && c.rng.chance(0.5) ? ['-d', '-m', spec] : c.rng.chance(0.2) ? ['-b'] : ['-m', spec];
  shellWithPath(['setfacl', ...args, '--'], c.abs(e.rel));
  c.note(`setfacl(${args.join(' ')})`, e.rel);
}

function chmodChown(c: Ctx): void {
  if (c.entries.length === 0) return;
  const e = c.rng.pick(c.entries);
  const path = c.abs(e.rel);
  if (c.rng.chance(0.5) || e.kind === 'symlink') {
    const uid = c.rng.pick(UIDS);
    const gid = c.rng.pick(UIDS);
    fs.lchownSync(path, uid, gid);
    c.note(`chown(${uid}:${gid})`, e.rel);
  }
  if (e.kind !== 'symlink') {
    const mode = c.rng.pick([0o644, 0o600, 0o755, 0o777, 0o000, 0o4755, 0o2755, 0o6711, 0o1777, 0o7777, 0o640]);
    fs.chmodSync(path, mode);
    c.note(`chmod(${mode.toString(8)})`, e.rel);
  }
}

function setTimes(c: Ctx): void {
  if (c.entries.length === 0) return;
  const e = c.rng.pick(c.entries);
  const sec = (): number => c.rng.pick([0, -1, -86400 * 365 * 30 - 7, 1_000_000_000, 2_147_483_647, 4_102_444_800, 1_700_000_000 + c.rng.int(1e8)]);
  const nsec = (): number => c.rng.pick([0, 1, 999_999_999, c.rng.int(1e9)]);
  lutimensNs(c.abs(e.rel), { sec: sec(), nsec: nsec() }, { sec: sec(), nsec: nsec() });
  c.note('utimes', e.rel);
}

function chattr(c: Ctx): void {
  const targets = c.of('file', 'dir');
  if (!HAVE_CHATTR || targets.length === 0) return;
  const e = c.rng.pick(targets);
  const flag = c.rng.pick(['+d', '-d', '+A', '-A', '+S', '-S', '+c', '-c']);
  shellWithPath(['chattr', flag, '--'], c.abs(e.rel));
  c.note(`chattr(${flag})`, e.rel);
}

// ---- mutation-only operations ---------------------------------------------------------------------

function isUnder(rel: Buffer, dir: Buffer): boolean {
  return rel.length > dir.length && rel.subarray(0, dir.length).equals(dir) && rel[dir.length] === 0x2f;
}

function renameEntry(c: Ctx): void {
  if (c.entries.length === 0) return;
  const e = c.rng.pick(c.entries);
  for (let tries = 0; tries < 10; tries++) {
    const to = c.freshPath();
    if (isUnder(to, e.rel)) continue;
    // Sometimes overwrite an existing non-directory instead (rename replaces it).
    const victims = c.of('file', 'symlink', 'fifo').filter((v) => !v.rel.equals(e.rel) && !isUnder(v.rel, e.rel));
    if (e.kind !== 'dir' && victims.length && c.rng.chance(0.25)) {
      const v = c.rng.pick(victims).rel;
      fs.renameSync(c.abs(e.rel), c.abs(v));
      c.note('rename-over', e.rel, v);
      return;
    }
    fs.renameSync(c.abs(e.rel), c.abs(to));
    c.note('rename', e.rel, to);
    return;
  }
}

function swapEntries(c: Ctx): void {
  if (c.entries.length < 2) return;
  const a = c.rng.pick(c.entries);
  const b = c.rng.pick(c.entries);
  if (a.rel.equals(b.rel) || isUnder(a.rel, b.rel) || isUnder(b.rel, a.rel)) return;
  renameExchange(c.abs(a.rel), c.abs(b.rel));
  c.note('swap', a.rel, b.rel);
}

/** Rotate the names of 3 entries: a->b->c->a (via a temporary name). */
function cycleEntries(c: Ctx): void {
  if (c.entries.length < 3) return;
  const [a, b, d] = [c.rng.pick(c.entries), c.rng.pick(c.entries), c.rng.pick(c.entries)].map((e) => e.rel);
  const all = [a!, b!, d!];
  for (const x of all) for (const y of all) if (x !== y && (x.equals(y) || isUnder(x, y))) return;
  const tmp = c.freshPath();
  fs.renameSync(c.abs(a!), c.abs(tmp));
  fs.renameSync(c.abs(d!), c.abs(a!));
  fs.renameSync(c.abs(b!), c.abs(d!));
  fs.renameSync(c.abs(tmp), c.abs(b!));
  c.note('cycle', a!, b!, d!);
}

/** a/b -> b/a: the child directory becomes the parent (the kernel's hardest ordering case). */
function invertAncestry(c: Ctx): void {
  const nested = c.of('dir').filter((e) => e.rel.includes(0x2f));
  if (nested.length === 0) return createDir(c);
  const child = c.rng.pick(nested).rel;
  const parent = parentRel(child);
  const tmp = c.freshPath();
  if (isUnder(tmp, parent)) return;
  fs.renameSync(c.abs(child), c.abs(tmp));
  fs.renameSync(c.abs(parent), c.abs(childRel(tmp, Buffer.from(`inv${c.counter.n++}`))));
  fs.renameSync(c.abs(tmp), c.abs(parent));
  c.note('invert', parent, child);
}

/** Number of entries below `rel`. */
function descendants(c: Ctx, rel: Buffer): number {
  return c.entries.filter((x) => isUnder(x.rel, rel)).length;
}

/** A random entry, avoiding directories with big subtrees (a tree should not collapse in one step). */
function pickSmall(c: Ctx): Entry {
  let e = c.rng.pick(c.entries);
  for (let i = 0; i < 4 && e.kind === 'dir' && descendants(c, e.rel) > 12; i++) e = c.rng.pick(c.entries);
  return e;
}

function deleteEntry(c: Ctx): void {
  if (c.entries.length === 0) return;
  const e = pickSmall(c);
  fs.rmSync(c.abs(e.rel), { recursive: true, force: true });
  c.note('delete', e.rel);
}

function overwriteFile(c: Ctx): void {
  const files = c.of('file');
  if (files.length === 0) return createFile(c);
  const e = c.rng.pick(files);
  const path = c.abs(e.rel);
  const size = fs.statSync(path).size;
  const op = c.rng.pick(['write', 'append', 'shrink', 'extend', 'punch', 'replace'] as const);
  switch (op) {
    case 'write': {
      const len = c.rng.range(1, 300 * KiB);
      writeAt(path, c.rng.int(size + 1), fileData(c.rng, len));
      break;
    }
    case 'append':
      writeAt(path, size, fileData(c.rng, c.rng.range(1, 200 * KiB)));
      break;
    case 'shrink':
      fs.truncateSync(path, c.rng.int(size + 1));
      break;
    case 'extend':
      fs.truncateSync(path, size + c.rng.range(1, 2 * 1024 * KiB));
      break;
    case 'punch': {
      if (size < 8 * KiB) return;
      const fd = fs.openSync(path, 'r+');
      try {
        const off = c.rng.int(size);
        punchHole(fd, off, c.rng.range(1, size - off));
      } finally {
        fs.closeSync(fd);
      }
      break;
    }
    default:
      fs.writeFileSync(path, fileData(c.rng, fileSize(c.rng, c.opts.maxFileSize)));
  }
  c.note(`data(${op})`, e.rel);
}

function unlinkOneLink(c: Ctx): void {
  const linked = c.of('file', 'fifo', 'socket', 'chr', 'blk', 'symlink').filter((e) => fs.lstatSync(c.abs(e.rel)).nlink > 1);
  if (linked.length === 0) return createHardlink(c);
  const e = c.rng.pick(linked);
  fs.unlinkSync(c.abs(e.rel));
  c.note('unlink-link', e.rel);
}

/** A file becomes a directory (with contents) or a directory becomes a file, under the same name. */
function replaceType(c: Ctx): void {
  if (c.entries.length === 0) return;
  const e = pickSmall(c);
  const path = c.abs(e.rel);
  fs.rmSync(path, { recursive: true, force: true });
  if (e.kind === 'dir') {
    if (c.rng.chance(0.5)) fs.writeFileSync(path, fileData(c.rng, fileSize(c.rng, 256 * KiB)));
    else fs.symlinkSync('was-a-dir', path);
  } else {
    fs.mkdirSync(path);
    fs.writeFileSync(Buffer.concat([path, Buffer.from('/inside')]), 'was not a dir\n');
  }
  c.note(`replace(${e.kind})`, e.rel);
}

function retargetSymlink(c: Ctx): void {
  const links = c.of('symlink');
  if (links.length === 0) return createSymlink(c);
  const e = c.rng.pick(links);
  fs.unlinkSync(c.abs(e.rel));
  fs.symlinkSync(symlinkTarget(c), c.abs(e.rel));
  c.note('retarget', e.rel);
}

type Op = (c: Ctx) => void;

const CREATE_OPS: [number, Op][] = [
  [30, createFile], [8, createReflink], [14, createDir], [7, createSymlink], [6, createHardlink], [4, createSpecial],
  [8, setXattr], [3, setAcl], [8, chmodChown], [4, setTimes], [3, chattr],
];

const MUTATE_OPS: [number, Op][] = [
  [8, renameEntry], [4, swapEntries], [2, cycleEntries], [2, invertAncestry], [6, deleteEntry],
  [10, overwriteFile], [3, unlinkOneLink], [3, replaceType], [2, retargetSymlink],
  [6, createFile], [3, createReflink], [3, createDir], [2, createSymlink], [3, createHardlink], [2, createSpecial],
  [4, setXattr], [2, removeXattr], [2, setAcl], [5, chmodChown], [3, setTimes], [2, chattr],
];

function defaults(opts: TreeOptions): Required<TreeOptions> {
  return { entries: opts.entries ?? 150, maxFileSize: opts.maxFileSize ?? 3 * 1024 * KiB, mutations: opts.mutations ?? 45 };
}

function applyOps(c: Ctx, ops: [number, Op][], count: number): void {
  for (let i = 0; i < count; i++) {
    const op = c.rng.weighted(ops);
    try {
      op(c);
    } catch (err) {
      // Some random operations are legitimately refused (ENAMETOOLONG, EXDEV...): log and go on.
      c.log.push(`  (skipped ${op.name}: ${(err as Error).message.split('\n')[0]})`);
    }
    c.refresh();
  }
}

/** Fill `root` (an empty directory, usually a fresh subvolume) with a random tree. */
export function buildRandomTree(root: string, rng: Rng, opts: TreeOptions = {}): string[] {
  const o = defaults(opts);
  const c = new Ctx(root, rng, o, { n: 0 });
  // A few directories first so that later entries spread out.
  for (let i = 0; i < Math.max(3, Math.floor(o.entries / 10)); i++) createDir(c), c.refresh();
  applyOps(c, CREATE_OPS, o.entries);
  return c.log;
}

/** Apply one step of random changes to `root`. `step` keeps new names distinct between steps. */
export function mutateRandomTree(root: string, rng: Rng, step: number, opts: TreeOptions = {}): string[] {
  const o = defaults(opts);
  const c = new Ctx(root, rng, o, { n: 100_000 * step });
  applyOps(c, MUTATE_OPS, o.mutations);
  return c.log;
}
