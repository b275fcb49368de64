// Differential fuzzing with valid-but-strange command sequences: a small model of the namespace
// drives random, CRC-valid commands (mostly applicable, some failing on purpose: rename into a
// subtree, rmdir of a non-empty dir, overlapping clones, huge offsets...), so they reach every
// command handler instead of stopping in the parser. Each stream is received by btrfs-ts and by
// btrfs-progs: the exit statuses must agree, btrfs-ts must fail cleanly, and the two (possibly
// partial) subvolumes must be identical (times excepted: directories get the wall-clock time of
// each receive). Paths never go through a symlink (btrfs-ts refuses that by design, progs follows),
// and no set-uid bits are used (btrfs-ts keeps them across CHOWN, progs does not).
import { spawnSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Rng } from './prng.js';
import { A, C, buildCommand, frameCommand, u64, type RawCommand } from './stream-edit.js';
import { collectTree, diffTrees, formatDifference, showPath } from '../lab/compare-trees.js';
import { badExit, tick, type FuzzFailure } from './fuzz.js';
import { runRng } from './fuzz-common.js';
import { BTRFS_TS } from './soak.js';
import { sh } from '../lab/loop-btrfs.js';

type Kind = 'file' | 'dir' | 'symlink' | 'special';
/** Model of an inode (shared by its hard links): expected contents, or null when not tracked. */
interface MNode { kind: Kind; size: number; data: Buffer | null }
const TRACK_LIMIT = 64 * 1024 * 1024;

/** Put `bytes` at `off` in a tracked content buffer (growing it); null when too big to track. */
function put(data: Buffer | null, off: number, bytes: Buffer | number): Buffer | null {
  if (!data) return null;
  const len = typeof bytes === 'number' ? bytes : bytes.length;
  if (off + len > TRACK_LIMIT) return null;
  const out = data.length >= off + len ? data : Buffer.concat([data, Buffer.alloc(off + len - data.length)]);
  if (typeof bytes === 'number') out.fill(0, off, off + len);
  else bytes.copy(out, off);
  return out;
}

const NAMES = ['a', 'b', 'c', 'd', 'sp ace', '\xff\xfe', 'o257-1-0', 'new\nline'];
const MiB = 1024 * 1024;

function timespec(sec: number, nsec: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(sec)), 0);
  b.writeUInt32LE(nsec, 8);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** Random command sequence for one subvolume; returns the stream bytes and a readable op list. */
export function generateSequence(rng: Rng, opts: { version: 1 | 2; length: number; subvol: string; modelAfter?: number }): { bytes: Buffer; ops: string[]; files: Map<string, Buffer | null> } {
  const v = opts.version;
  const uuid = Buffer.from(Array.from({ length: 16 }, () => rng.int(256)));
  const model = new Map<string, MNode>();
  model.set('', { kind: 'dir', size: 0, data: null });
  let snapshot: Map<string, Buffer | null> | undefined;
  const takeSnapshot = (): void => {
    snapshot = new Map([...model].filter(([, n]) => n.kind === 'file').map(([p, n]) => [p, n.data ? Buffer.from(n.data) : null]));
  };
  const cmds: RawCommand[] = [buildCommand(C.SUBVOL, [[A.PATH, opts.subvol], [A.UUID, uuid], [A.CTRANSID, u64(rng.range(1, 1000))]], v)];
  const ops: string[] = [];
  let ino = 300;
  const B = (cmd: number, attrs: [number, Buffer | string][], text: string): void => {
    cmds.push(buildCommand(cmd, attrs, v));
    ops.push(text);
  };
  const of = (...kinds: Kind[]): string[] => [...model].filter(([p, n]) => p !== '' && kinds.includes(n.kind)).map(([p]) => p);
  const dirs = (): string[] => [...model].filter(([, n]) => n.kind === 'dir').map(([p]) => p);
  const child = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);
  const fresh = (prefix = ''): string => {
    for (let i = 0; i < 20; i++) {
      const p = child(rng.pick(dirs()), prefix + rng.pick(NAMES));
      if (!model.has(p)) return p;
    }
    for (let k = 0; ; k++) {
      const p = child('', `${prefix}x${ino}-${k}`);
      if (!model.has(p)) return p;
    }
  };
  const under = (p: string, dir: string): boolean => p.startsWith(dir + '/');
  const movePrefix = (from: string, to: string): void => {
    for (const [p, n] of [...model]) {
      if (p === from || under(p, from)) {
        model.delete(p);
        model.set(to + p.slice(from.length), n);
      }
    }
  };
  const show = (p: string): string => JSON.stringify(p);

  const done = (): { bytes: Buffer; ops: string[]; files: Map<string, Buffer | null> } => {
    if (!snapshot) takeSnapshot();
    return { bytes: finish(cmds, v), ops, files: snapshot! };
  };
  for (let i = 0; i < opts.length; i++) {
    // The expected contents after `modelAfter` commands (where a receive stopped).
    if (opts.modelAfter !== undefined && ops.length === opts.modelAfter && !snapshot) takeSnapshot();
    const op = rng.weighted([
      [8, 'mkfile'], [5, 'mkdir'], [2, 'special'], [2, 'symlink'], [5, 'rename'], [3, 'link'], [3, 'unlink'],
      [2, 'rmdir'], [10, 'write'], [3, 'clone'], [3, 'truncate'], [3, 'chmod'], [2, 'chown'], [2, 'utimes'],
      [3, 'setxattr'], [1, 'rmxattr'], ...(v >= 2 ? [[3, 'fallocate'] as const, [3, 'encoded'] as const] : []),
    ] as const);
    const files = of('file');
    switch (op) {
      case 'mkfile': case 'mkdir': {
        const p = fresh();
        B(op === 'mkfile' ? C.MKFILE : C.MKDIR, [[A.PATH, p], [A.INO, u64(ino++)]], `${op} ${show(p)}`);
        model.set(p, { kind: op === 'mkfile' ? 'file' : 'dir', size: 0, data: op === 'mkfile' ? Buffer.alloc(0) : null });
        break;
      }
      case 'special': {
        const p = fresh();
        const which = rng.pick([[C.MKFIFO, 0o010644], [C.MKSOCK, 0o140755], [C.MKNOD, 0o020644], [C.MKNOD, 0o060600]] as const);
        B(which[0], [[A.PATH, p], [A.INO, u64(ino++)], [A.MODE, u64(which[1])], [A.RDEV, u64(which[0] === C.MKNOD ? rng.pick([259, 1992, 0]) : 0)]],
          `mk${which[0]} ${show(p)}`);
        model.set(p, { kind: 'special', size: 0, data: null });
        break;
      }
      case 'symlink': {
        const p = fresh('l');
        B(C.SYMLINK, [[A.PATH, p], [A.INO, u64(ino++)], [A.PATH_LINK, rng.pick(['a', '../x', '/etc/passwd', 'l'.repeat(300), 'sp ace/\xff'])]], `symlink ${show(p)}`);
        model.set(p, { kind: 'symlink', size: 0, data: null });
        break;
      }
      case 'rename': {
        const all = of('file', 'dir', 'symlink', 'special');
        if (!all.length) break;
        const from = rng.pick(all);
        const kind = model.get(from)!.kind;
        // Mostly to a free name; sometimes over an existing entry of the same kind (may fail: a
        // non-empty dir), rarely into its own subtree (must fail in both).
        const r = rng.float();
        let to = fresh(kind === 'symlink' ? 'l' : '');
        if (r < 0.2) {
          const same = of(kind).filter((p) => p !== from && !under(p, from) && !under(from, p));
          if (same.length) to = rng.pick(same);
        } else if (r < 0.25 && kind === 'dir') to = child(from, 'inside');
        B(C.RENAME, [[A.PATH, from], [A.PATH_TO, to]], `rename ${show(from)} ${show(to)}`);
        if (under(to, from)) return done();
        if (model.get(to) === model.get(from)) break; // two links of one inode: rename(2) does nothing
        for (const p of [...model.keys()]) if (p === to || under(p, to)) model.delete(p);
        movePrefix(from, to);
        break;
      }
      case 'link': {
        const src = of('file', 'special', 'symlink');
        if (!src.length) break;
        const from = rng.pick(src);
        const to = fresh(model.get(from)!.kind === 'symlink' ? 'l' : '');
        B(C.LINK, [[A.PATH, to], [A.PATH_LINK, from]], `link ${show(to)} -> ${show(from)}`);
        model.set(to, model.get(from)!); // shares the size record: same inode
        break;
      }
      case 'unlink': {
        const all = of('file', 'special', 'symlink');
        if (!all.length) break;
        const p = rng.pick(all);
        B(C.UNLINK, [[A.PATH, p]], `unlink ${show(p)}`);
        model.delete(p);
        break;
      }
      case 'rmdir': {
        const all = of('dir');
        if (!all.length) break;
        const p = rng.pick(all);
        B(C.RMDIR, [[A.PATH, p]], `rmdir ${show(p)}`);
        if ([...model.keys()].some((q) => under(q, p))) return done(); // ENOTEMPTY
        model.delete(p);
        break;
      }
      case 'write': {
        if (!files.length) break;
        const p = rng.pick(files);
        const n = model.get(p)!;
        const max = v === 1 ? 49152 : 131072;
        const len = rng.range(1, rng.chance(0.3) ? max : 5000);
        const off = rng.chance(0.05) ? 2 ** 40 + rng.int(4096) : rng.int(n.size + 65536);
        const data = rng.chance(0.5) ? Buffer.alloc(len, rng.int(256)) : Buffer.from(Array.from({ length: len }, () => rng.int(256)));
        B(C.WRITE, [[A.PATH, p], [A.FILE_OFFSET, u64(off)], [A.DATA, data]], `write ${show(p)} ${off}+${len}`);
        n.size = Math.max(n.size, off + len);
        n.data = put(n.data, off, data);
        break;
      }
      case 'clone': {
        const big = files.filter((p) => model.get(p)!.size >= 4096 && model.get(p)!.size < 2 ** 40);
        if (!big.length || !files.length) break;
        const src = rng.pick(big);
        const dst = rng.pick(files);
        const sn = model.get(src)!;
        const blocks = Math.floor(sn.size / 4096);
        const srcOff = 4096 * rng.int(blocks);
        const len = 4096 * rng.range(1, blocks - srcOff / 4096);
        let dstOff = 4096 * rng.int(Math.floor(model.get(dst)!.size / 4096) + 4);
        // An overlapping clone within one file: the kernel refuses it (progs fails) while btrfs-ts
        // falls back to copying (by design, for --no-data streams). Never produced by a kernel; avoid.
        if (src === dst && Math.abs(srcOff - dstOff) < len) dstOff = srcOff + len;
        B(C.CLONE, [[A.PATH, dst], [A.FILE_OFFSET, u64(dstOff)], [A.CLONE_LEN, u64(len)], [A.CLONE_UUID, uuid],
          [A.CLONE_CTRANSID, u64(1)], [A.CLONE_PATH, src], [A.CLONE_OFFSET, u64(srcOff)]], `clone ${show(src)}@${srcOff}+${len} -> ${show(dst)}@${dstOff}`);
        const dn = model.get(dst)!;
        dn.size = Math.max(dn.size, dstOff + len);
        dn.data = sn.data ? put(dn.data, dstOff, Buffer.concat([sn.data, Buffer.alloc(Math.max(0, srcOff + len - sn.data.length))]).subarray(srcOff, srcOff + len)) : null;
        break;
      }
      case 'truncate': {
        if (!files.length) break;
        const p = rng.pick(files);
        const size = rng.pick([0, 1, 4095, 4096, rng.int(300_000), 3 * MiB]);
        B(C.TRUNCATE, [[A.PATH, p], [A.SIZE, u64(size)]], `truncate ${show(p)} ${size}`);
        const tn = model.get(p)!;
        tn.size = size;
        if (tn.data) tn.data = size <= tn.data.length ? Buffer.from(tn.data.subarray(0, size)) : put(tn.data, tn.data.length, size - tn.data.length);
        break;
      }
      case 'chmod': {
        const all = [...of('file', 'dir', 'special'), ''];
        const p = rng.pick(all);
        const mode = rng.pick([0o644, 0o600, 0o755, 0o777, 0o000, 0o1777, 0o640]);
        B(C.CHMOD, [[A.PATH, p], [A.MODE, u64(mode)]], `chmod ${show(p)} ${mode.toString(8)}`);
        break;
      }
      case 'chown': {
        const p = rng.pick([...of('file', 'dir', 'special', 'symlink'), '']);
        B(C.CHOWN, [[A.PATH, p], [A.UID, u64(rng.pick([0, 1000, 65534]))], [A.GID, u64(rng.pick([0, 100, 65534]))]], `chown ${show(p)}`);
        break;
      }
      case 'utimes': {
        const p = rng.pick([...of('file', 'dir', 'special', 'symlink'), '']);
        const t = (): Buffer => timespec(rng.pick([0, 1_700_000_000, -1, 2 ** 33]), rng.int(1e9));
        B(C.UTIMES, [[A.PATH, p], [A.ATIME, t()], [A.MTIME, t()], [A.CTIME, t()]], `utimes ${show(p)}`);
        break;
      }
      case 'setxattr': case 'rmxattr': {
        const p = rng.pick([...of('file', 'dir', 'special', 'symlink'), '']);
        const k = model.get(p)!.kind;
        const ns = k === 'file' || k === 'dir' ? rng.pick(['user.', 'trusted.']) : 'trusted.';
        const name = `${ns}${rng.pick(['x', 'y', 'long' + 'z'.repeat(100)])}`;
        if (op === 'setxattr') {
          B(C.SET_XATTR, [[A.PATH, p], [A.XATTR_NAME, name], [A.XATTR_DATA, Buffer.alloc(rng.int(2000), rng.int(256))]], `setxattr ${show(p)} ${name}`);
        } else {
          B(C.REMOVE_XATTR, [[A.PATH, p], [A.XATTR_NAME, name]], `rmxattr ${show(p)} ${name}`);
          return done(); // usually ENODATA: ends the sequence in both
        }
        break;
      }
      case 'fallocate': {
        if (!files.length) break;
        const p = rng.pick(files);
        const mode = rng.pick([0, 1, 3]);
        const off = rng.int(model.get(p)!.size + 8192);
        const len = rng.range(1, 300_000);
        B(C.FALLOCATE, [[A.PATH, p], [A.FALLOCATE_MODE, u32(mode)], [A.FILE_OFFSET, u64(off)], [A.SIZE, u64(len)]], `fallocate ${show(p)} mode ${mode} ${off}+${len}`);
        const fn = model.get(p)!;
        if (mode === 0 && off + len > fn.size) {
          fn.data = put(fn.data, fn.size, off + len - fn.size);
          fn.size = off + len;
        }
        if (mode === 3 && fn.data) fn.data.fill(0, Math.min(off, fn.data.length), Math.min(off + len, fn.data.length));
        break;
      }
      default: { // encoded (zlib) write of compressible data at a block-aligned offset
        if (!files.length) break;
        const p = rng.pick(files);
        const len = 4096 * rng.range(1, 32);
        const text = Buffer.from(Array.from({ length: len }, (_, j) => 97 + ((j * 7 + rng.int(3)) % 26)));
        const off = 4096 * rng.int(Math.floor(model.get(p)!.size / 4096) + 4);
        B(C.ENCODED_WRITE, [[A.PATH, p], [A.FILE_OFFSET, u64(off)], [A.UNENCODED_FILE_LEN, u64(len)], [A.UNENCODED_LEN, u64(len)],
          [A.UNENCODED_OFFSET, u64(0)], [A.COMPRESSION, u32(1)], [A.ENCRYPTION, u32(0)], [A.DATA, deflateSync(text)]], `encoded_write ${show(p)} ${off}+${len}`);
        const en = model.get(p)!;
        en.size = Math.max(en.size, off + len);
        en.data = put(en.data, off, text);
      }
    }
  }
  return done();
}

function finish(cmds: RawCommand[], v: number): Buffer {
  const header = Buffer.alloc(17);
  Buffer.from('btrfs-stream\0', 'latin1').copy(header);
  header.writeUInt32LE(v, 13);
  return Buffer.concat([header, ...cmds.map(frameCommand), frameCommand(buildCommand(C.END, [], v))]);
}

export interface SeqFuzzReport {
  runs: number;
  bothOk: number;
  bothFailed: number;
  /** progs stopped at a clone the kernel refused, btrfs-ts copied the range (by design). */
  cloneFallbacks: number;
  /** MKFILE over an existing name: btrfs-ts EEXIST, progs truncates (creat without O_EXCL). */
  progsCreat: number;
  /** Files whose contents were checked against the model. */
  judgedFiles: number;
  /** Files where progs' contents differ from the model while btrfs-ts's match (progs bugs). */
  progsWrong: number;
  failures: FuzzFailure[];
  commands: number;
  ms: number;
}

/** Receive generated sequences with btrfs-ts and btrfs-progs into `<mnt>/seq`; compare. */
export async function fuzzSequences(opts: { mnt: string; seed: number; runs: number; firstRun?: number; length?: number; log?: (l: string) => void }): Promise<SeqFuzzReport> {
  const t0 = Date.now();
  const report: SeqFuzzReport = { runs: 0, bothOk: 0, bothFailed: 0, cloneFallbacks: 0, progsCreat: 0, judgedFiles: 0, progsWrong: 0, failures: [], commands: 0, ms: 0 };
  const base = join(opts.mnt, 'seq');
  fs.mkdirSync(base, { recursive: true });
  const first = opts.firstRun ?? 0;
  for (let run = first; run < first + opts.runs; run++) {
    await tick(); // let the event loop breathe (test runners talk to their workers through it)
    const rng = runRng(opts.seed ^ 0x5e9, run);
    const version = rng.chance(0.5) ? 1 : 2;
    // The generator's own Rng, re-creatable (to rebuild the model up to a failing command).
    const genRng = (): Rng => {
      const r = runRng(opts.seed ^ 0x5e9, run);
      r.chance(0.5);
      if (opts.length === undefined) r.range(5, 80);
      return r.fork();
    };
    const subvol = `s${run}`;
    const length = opts.length ?? rng.range(5, 80);
    const { bytes, ops } = generateSequence(genRng(), { version, length, subvol });
    report.commands += ops.length;
    const file = join(base, `${subvol}.stream`);
    fs.writeFileSync(file, bytes);
    const oursDir = join(base, `ours${run}`);
    const progsDir = join(base, `progs${run}`);
    fs.mkdirSync(oursDir);
    fs.mkdirSync(progsDir);
    const o = spawnSync(process.execPath, [BTRFS_TS, 'receive', '-f', file, oursDir], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    const p = spawnSync('btrfs', ['receive', '-f', file, progsDir], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    report.runs++;
    const fail = (kind: string, message: string): void => {
      const saved = `/tmp/btrfs-ts-seq-${opts.seed}-${run}.stream`;
      fs.writeFileSync(saved, bytes);
      report.failures.push({ seed: opts.seed, run, kind, message, ops, input: saved });
      opts.log?.(`  FAIL seq seed ${opts.seed} run ${run} (v${version}, ${ops.length} commands): ${kind}: ${message} (input: ${saved})`);
    };
    const errOf = (t: string | null): string => (t ?? '').split('\n').find((l) => /error/i.test(l)) ?? '';
    const a = join(oursDir, subvol);
    const b = join(progsDir, subvol);
    const bad = o.error ? `did not finish: ${String(o.error)}` : badExit(o.status, o.signal, o.stderr ?? '');
    // btrfs-ts copies a range when the kernel refuses a clone (EINVAL/EOPNOTSUPP: meant for --no-data
    // streams); progs stops there. By design: judge btrfs-ts by the model only.
    const cloneFallback = p.status !== 0 && /failed to clone extents/.test(p.stderr ?? '') && /Invalid argument|not supported/.test(p.stderr ?? '');
    // progs creates files with creat(2) (no O_EXCL): MKFILE over an existing name truncates it and
    // goes on, btrfs-ts refuses with EEXIST. A kernel never sends that; compare nothing further.
    const progsCreat = o.status !== 0 && /\(mkfile\).*File exists/.test(o.stderr ?? '');
    if (bad) fail('unclean-exit', bad);
    else if (progsCreat) report.progsCreat++;
    else if ((o.status === 0) !== (p.status === 0) && !cloneFallback) {
      fail('status-differs', `btrfs-ts ${o.status} (${errOf(o.stderr)}), progs ${p.status} (${errOf(p.stderr)})`);
    } else if (fs.existsSync(a) !== fs.existsSync(b)) {
      fail('subvolume-differs', `exists: btrfs-ts ${fs.existsSync(a)}, progs ${fs.existsSync(b)}`);
    } else if (fs.existsSync(a)) {
      if (cloneFallback) report.cloneFallbacks++;
      else if (o.status === 0) report.bothOk++;
      else report.bothFailed++;
      // The expected contents: after every command, or up to the one btrfs-ts says failed.
      const failedAt = /at command #(\d+)/.exec(errOf(o.stderr))?.[1];
      const expected = o.status === 0
        ? generateSequence(genRng(), { version, length, subvol }).files
        : failedAt !== undefined
          ? generateSequence(genRng(), { version, length, subvol, modelAfter: Number(failedAt) - 2 }).files
          : new Map<string, Buffer | null>();
      let judged = 0;
      for (const [rel, want] of expected) {
        if (!want) continue;
        const path = Buffer.concat([Buffer.from(a + '/'), Buffer.from(rel, 'latin1')]);
        const st = fs.existsSync(path) ? fs.lstatSync(path) : undefined;
        const got = st?.isFile() && st.size <= TRACK_LIMIT ? fs.readFileSync(path) : st ? Buffer.alloc(0) : undefined;
        if (!got || !got.equals(want)) {
          const at = got ? got.findIndex((x, k) => x !== want[k]) : -1;
          fail('content-wrong', `${showPath(rel)}: btrfs-ts has ${got ? `${got.length} bytes, first difference at ${at < 0 ? Math.min(got.length, want.length) : at}` : 'no file'}, expected ${want.length} bytes`);
          break;
        }
        judged++;
        const theirs = Buffer.concat([Buffer.from(b + '/'), Buffer.from(rel, 'latin1')]);
        const tst = fs.existsSync(theirs) ? fs.lstatSync(theirs) : undefined;
        if (tst && (!tst.isFile() || tst.size > TRACK_LIMIT || !fs.readFileSync(theirs).equals(want))) report.progsWrong++;
      }
      report.judgedFiles += judged;
      // Everything but times (and contents already judged by the model) must match progs.
      const fields = ['type', 'mode', 'uid', 'gid', 'target', 'rdev', 'nlink', 'links', 'xattrs'] as const;
      const d = cloneFallback ? [] : diffTrees(collectTree(a), collectTree(b), [...fields, ...(expected.size ? [] : ['size', 'sha256'] as const)]);
      if (d.length) fail('tree-differs', `${d.length} difference(s); first: ${formatDifference(d[0]!, ['btrfs-ts', 'progs'])}; progs said: ${errOf(p.stderr)}`);
    }
    // Clean up: received subvolumes (writable or read-only) and the stream.
    for (const dir of [oursDir, progsDir]) {
      if (fs.existsSync(join(dir, subvol))) spawnSync('btrfs', ['subvolume', 'delete', join(dir, subvol)], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    }
    fs.rmSync(file);
  }
  sh('btrfs', ['filesystem', 'sync', opts.mnt]);
  report.ms = Date.now() - t0;
  return report;
}
