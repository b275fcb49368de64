// Complete comparison of two directory trees (received by two different receivers, or a received tree
// against its source snapshot): type, mode, owner, size, content, ns atime/mtime, xattrs (incl. ACLs
// and capabilities), symlink targets, rdev, hard-link groups, and optionally inode flags.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { lgetxattrs, getInodeFlags, seekData, seekHole } from './test-libc.js';

export interface NodeInfo {
  type: string;
  mode: string; // octal, permission bits only
  uid: number;
  gid: number;
  size: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  rdev: bigint;
  nlink: bigint;
  target?: string; // symlink target, hex
  sha256?: string;
  xattrs: string; // name=hex;... sorted
  links: string; // the other names of the same inode inside the tree, sorted
  flags?: number; // FS_IOC_GETFLAGS (files and dirs)
  ino: bigint;
}

/** Paths are latin1 strings of the raw bytes (lossless). '' is the root. */
export type TreeInfo = Map<string, NodeInfo>;

function typeOf(st: fs.BigIntStats): string {
  return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo'
    : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'chr' : st.isBlockDevice() ? 'blk' : 'unknown';
}

const ZERO_BLOCK = Buffer.alloc(4096);

/**
 * Content hash independent of the hole/extent layout, and fast on huge sparse files: holes (found
 * with SEEK_DATA/SEEK_HOLE) and all-zero 4 KiB blocks both count as zero runs; other blocks are
 * hashed with their length. Two files hash the same iff their bytes are the same.
 */
function hashFile(path: Buffer): string {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOATIME);
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  let zeros = 0;
  const flushZeros = (): void => {
    if (zeros > 0) h.update(`Z${zeros};`);
    zeros = 0;
  };
  try {
    const size = fs.fstatSync(fd).size;
    for (let pos = 0; pos < size;) {
      let data = seekData(fd, pos);
      if (data < 0 || data > size) data = size;
      zeros += data - pos;
      if (data >= size) break;
      let hole = seekHole(fd, data);
      if (hole < 0 || hole > size) hole = size;
      for (let off = data; off < hole;) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, hole - off), off);
        if (n <= 0) break;
        for (let b = 0; b < n; b += 4096) {
          const block = buf.subarray(b, Math.min(n, b + 4096));
          if (block.equals(ZERO_BLOCK.subarray(0, block.length))) zeros += block.length;
          else {
            flushZeros();
            h.update(`D${block.length};`);
            h.update(block);
          }
        }
        off += n;
      }
      pos = hole;
    }
    flushZeros();
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function inodeFlags(path: Buffer): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOATIME | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    return getInodeFlags(fd);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Collect everything about a tree. Stats are taken before any content is read (atime safety). */
export function collectTree(root: string, opts: { flags?: boolean; exclude?: string[] } = {}): TreeInfo {
  const info: TreeInfo = new Map();
  const abs = (rel: string): Buffer => Buffer.concat([Buffer.from(root), rel ? Buffer.from('/' + rel, 'latin1') : Buffer.alloc(0)]);
  const walk = (rel: string): void => {
    const path = abs(rel);
    const st = fs.lstatSync(path, { bigint: true });
    const type = typeOf(st);
    const x = lgetxattrs(path);
    const node: NodeInfo = {
      type,
      mode: (st.mode & 0o7777n).toString(8),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'dir' ? 0n : st.size, // btrfs dir i_size depends on name lengths only; checked via entries
      atimeNs: st.atimeNs,
      mtimeNs: st.mtimeNs,
      rdev: st.rdev,
      nlink: type === 'dir' ? 0n : st.nlink,
      xattrs: [...x].map(([k, v]) => `${k}=${v.toString('hex')}`).join(';'),
      links: '',
      ino: st.ino,
    };
    if (type === 'symlink') node.target = fs.readlinkSync(path, { encoding: 'buffer' }).toString('hex');
    info.set(rel, node);
    if (type === 'dir') {
      const names = fs.readdirSync(path, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();
      for (const name of names) {
        const child = rel ? `${rel}/${name}` : name;
        if (!opts.exclude?.includes(child)) walk(child);
      }
    }
  };
  walk('');
  // Hard-link groups by inode number (same tree, so same subvolume).
  const byIno = new Map<bigint, string[]>();
  for (const [rel, n] of info) if (n.type !== 'dir') byIno.set(n.ino, [...(byIno.get(n.ino) ?? []), rel]);
  for (const [rel, n] of info) {
    if (n.type === 'dir') continue;
    n.links = byIno.get(n.ino)!.filter((r) => r !== rel).sort().map(showPath).join(' | ');
  }
  // Contents and flags last, without touching atimes.
  for (const [rel, n] of info) {
    if (n.type === 'file') n.sha256 = hashFile(abs(rel));
    if (opts.flags && (n.type === 'file' || n.type === 'dir')) {
      const f = inodeFlags(abs(rel));
      if (f !== undefined) n.flags = f;
    }
  }
  return info;
}

export interface Difference {
  path: string; // printable
  rawPath: string; // latin1 key
  field: string;
  a: string;
  b: string;
}

/** A raw latin1 path as printable text: bytes outside printable ASCII (and '\\') become \\xHH; '' → '.'. */
export function showPath(rel: string): string {
  if (rel === '') return '.';
  let out = '';
  for (let i = 0; i < rel.length; i++) {
    const c = rel.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f && c !== 0x5c ? rel[i] : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return out;
}

const FIELDS: (keyof NodeInfo)[] = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target', 'rdev', 'nlink', 'links',
  'xattrs', 'mtimeNs', 'atimeNs', 'flags'];

/** What diffTrees compares by default: everything except inode flags (btrfs-progs does not set them). */
export const DEFAULT_FIELDS: readonly (keyof NodeInfo)[] = FIELDS.filter((f) => f !== 'flags');

export interface DiffOptions {
  /** Fields to compare (default DEFAULT_FIELDS). */
  fields?: (keyof NodeInfo)[];
  /** Fields to leave out, e.g. ['sha256'] for a --no-data receive. */
  ignore?: (keyof NodeInfo)[];
  /** Skip the root directory's atime/mtime: the kernel sends no UTIMES for a root that did not change. */
  ignoreRootTimes?: boolean;
}

/**
 * All differences between two collected trees, in path order (first = first differing path).
 * `opts` is either the list of fields to compare or DiffOptions.
 */
export function diffTrees(a: TreeInfo, b: TreeInfo, opts: (keyof NodeInfo)[] | DiffOptions = {}): Difference[] {
  const o: DiffOptions = Array.isArray(opts) ? { fields: opts } : opts;
  const fields = (o.fields ?? DEFAULT_FIELDS).filter((f) => !o.ignore?.includes(f));
  const rootTimes: (keyof NodeInfo)[] = ['atimeNs', 'mtimeNs'];
  const rootFields = o.ignoreRootTimes ? fields.filter((f) => !rootTimes.includes(f)) : fields;
  const out: Difference[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const p of paths) {
    const x = a.get(p);
    const y = b.get(p);
    if (!x || !y) {
      out.push({ path: showPath(p), rawPath: p, field: 'exists', a: String(!!x), b: String(!!y) });
      continue;
    }
    for (const f of p === '' ? rootFields : fields) {
      const vx = x[f] === undefined ? '-' : String(x[f]);
      const vy = y[f] === undefined ? '-' : String(y[f]);
      if (vx !== vy) out.push({ path: showPath(p), rawPath: p, field: f, a: vx.slice(0, 200), b: vy.slice(0, 200) });
    }
  }
  return out;
}

export function formatDifference(d: Difference, labels: [string, string] = ['a', 'b']): string {
  return `${d.path}: ${d.field} differs (${labels[0]}: ${d.a}; ${labels[1]}: ${d.b})`;
}
