// Complete comparison of two received trees: every entry's type, mode, owner, size, rdev, atime/mtime
// in nanoseconds, content hash, symlink target, xattrs, hard-link groups; plus the subvolume's received
// UUID, send transid and read-only flag (`btrfs subvolume show`).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { lgetxattrs } from '../../src/sys/fs.js';

export interface Entry {
  type: string; mode: string; uid: number; gid: number; size: bigint; rdev: bigint;
  atime: bigint; mtime: bigint; content?: string; target?: string; xattrs: string;
}

export interface TreeSnapshot {
  /** Relative path (latin1 of the raw bytes; '' = root) → entry. */
  entries: Map<string, Entry>;
  /** Sorted hard-link groups (only inodes with more than one name). */
  linkGroups: string[];
}

function typeOf(st: fs.BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return 'unknown';
}

function hashFile(path: Buffer): string {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOATIME);
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
    return h.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/** Walk `root` (stat of each dir taken before it is read; files hashed with O_NOATIME). */
export function snapshotTree(root: string): TreeSnapshot {
  const entries = new Map<string, Entry>();
  const inodes = new Map<bigint, string[]>();
  const files: [string, Buffer][] = [];
  const rootBuf = Buffer.from(root);
  const walk = (rel: Buffer): void => {
    const abs = rel.length ? Buffer.concat([rootBuf, Buffer.from('/'), rel]) : rootBuf;
    const st = fs.lstatSync(abs, { bigint: true });
    const key = rel.toString('latin1');
    const xattrs = [...lgetxattrs(abs)].sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([n, v]) => `${n}=${v.toString('hex')}`).join(';');
    const e: Entry = {
      type: typeOf(st), mode: (Number(st.mode) & 0o7777).toString(8), uid: Number(st.uid), gid: Number(st.gid),
      size: st.isDirectory() ? 0n : st.size, rdev: st.rdev, atime: st.atimeNs, mtime: st.mtimeNs, xattrs,
    };
    if (st.isSymbolicLink()) e.target = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('hex');
    if (st.isFile()) files.push([key, abs]);
    entries.set(key, e);
    if (!st.isDirectory() && st.nlink > 1n) {
      const group = inodes.get(st.ino) ?? [];
      group.push(key);
      inodes.set(st.ino, group);
    }
    if (st.isDirectory()) {
      const names = fs.readdirSync(abs, { encoding: 'buffer' });
      for (const name of names) walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name);
    }
  };
  walk(Buffer.alloc(0));
  for (const [key, abs] of files) entries.get(key)!.content = hashFile(abs);
  const linkGroups = [...inodes.values()].map((g) => g.sort().join(' | ')).sort();
  return { entries, linkGroups };
}

/** Human-readable differences between two trees (empty = identical). */
export function diffTrees(a: TreeSnapshot, b: TreeSnapshot, opts: { ignoreRootTimes?: boolean; ignore?: (keyof Entry)[] } = {}): string[] {
  const diffs: string[] = [];
  const show = (k: string): string => JSON.stringify(Buffer.from(k, 'latin1').toString());
  for (const [k, ea] of a.entries) {
    const eb = b.entries.get(k);
    if (!eb) { diffs.push(`only in first: ${show(k)}`); continue; }
    for (const field of Object.keys(ea) as (keyof Entry)[]) {
      if (opts.ignoreRootTimes && k === '' && (field === 'atime' || field === 'mtime')) continue;
      if (opts.ignore?.includes(field)) continue;
      if (String(ea[field]) !== String(eb[field])) {
        diffs.push(`${show(k)}: ${field} ${String(ea[field]).slice(0, 80)} != ${String(eb[field]).slice(0, 80)}`);
      }
    }
  }
  for (const k of b.entries.keys()) if (!a.entries.has(k)) diffs.push(`only in second: ${show(k)}`);
  if (a.linkGroups.join('\n') !== b.linkGroups.join('\n')) {
    diffs.push(`hard-link groups differ:\n  ${a.linkGroups.join('\n  ')}\nvs\n  ${b.linkGroups.join('\n  ')}`);
  }
  return diffs;
}

export interface SubvolInfo { receivedUuid: string; sendTransid: string; readonly: boolean }

/** Received UUID, send transid and read-only flag of a subvolume. */
export function subvolInfo(path: string): SubvolInfo {
  const out = execFileSync('btrfs', ['subvolume', 'show', path], { encoding: 'utf8' });
  const field = (name: string): string => new RegExp(`^\\s*${name}:\\s*(.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
  return { receivedUuid: field('Received UUID'), sendTransid: field('Send transid'), readonly: /readonly/.test(field('Flags')) };
}
