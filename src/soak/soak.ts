// One seed of the differential soak: random tree on a compressed source btrfs, 3 rounds of mutations
// with read-only snapshots, every step sent by `btrfs send` (v1, and v2 --compressed-data), each stream
// received by btrfs-ts and by btrfs-progs into separate filesystems, and the results compared
// completely (plus the subvolume's Received UUID / Send transid / read-only flag). Our result is also
// compared with the source snapshot itself, and inode flags (which progs ignores) only against it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from './prng.js';
import { buildRandomTree, mutateRandomTree, type TreeOptions } from './random-tree.js';
import { makeLoopFs, sh, subvolInfo, type LoopFs } from '../lab/loop-btrfs.js';
import { readStream } from '../stream/reader.js';
import { collectTree, diffTrees, formatDifference, showPath, type Difference, type NodeInfo } from '../lab/compare-trees.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The CLI under test; BTRFS_TS_BIN points long runs at a frozen copy of the build. */
export const BTRFS_TS = process.env.BTRFS_TS_BIN ?? join(REPO_ROOT, 'bin/btrfs-ts.js');

const COMPRESSORS = ['zstd', 'zlib', 'lzo'] as const;

export interface SoakOptions {
  seed: number;
  /** Who plays "ours": btrfs-ts (default) or btrfs-progs (a sanity baseline of the harness itself). */
  receiver?: 'btrfs-ts' | 'progs';
  protocols?: (1 | 2)[];
  /** Incremental steps after the first full snapshot (default 3). */
  steps?: number;
  tree?: TreeOptions;
  /** Per-receive timeout (default 300 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Called after each step is received by both (extra checks by the caller; throw to fail). */
  onReceived?: (paths: { ours: string; progs: string; source: string; label: string }) => void;
  /** Finish with a `send -e A B` stream and a `send -c … -c …` stream (default true). */
  multi?: boolean;
  /** Also send each step with btrfs-ts send and require byte-identical streams (default true). */
  checkSend?: boolean;
  /** Keep the images when a seed fails (for inspection). */
  keepOnFailure?: boolean;
}

export interface SoakResult {
  seed: number;
  ok: boolean;
  /** One line per problem; the first names the seed, stream and first differing path. */
  problems: string[];
  streams: number;
  streamBytes: number;
  /** Streams for which btrfs-ts send produced the same bytes as btrfs send. */
  sendsCompared: number;
  compared: number;
  /** Inode-flag differences against the source (progs ignores FILEATTR, so these are reported apart). */
  flagNotes: string[];
  /** Differences where progs is off and btrfs-ts matches the source (not failures). */
  progsNotes: string[];
  /** Differences explained by known kernel/progs behaviour (not failures). */
  knownNotes: string[];
  /** The operation log of the random tree (for replay/debugging). */
  opsLog: string[];
  ms: number;
}

/** Inode flags a send stream can carry and we may apply: SYNC, NODUMP, NOATIME, COMPR, NOCOMP, NOCOW. */
const FLAG_MASK = 0x8 | 0x40 | 0x80 | 0x4 | 0x400 | 0x800000;

interface RecvOutcome {
  code: number | null;
  stderr: string;
  timedOut: boolean;
}

/** Receive `stream` into `dest`; `viaPipe` feeds it through a pipe on stdin instead of `-f`. */
function receiveWith(who: 'btrfs-ts' | 'progs', stream: string, dest: string, timeoutMs: number, viaPipe = false, extra: string[] = []): RecvOutcome {
  const [cmd, args] = who === 'progs'
    ? ['btrfs', ['receive', '-f', stream, dest]]
    : viaPipe
      ? ['sh', ['-c', 'f=$1; shift; cat -- "$f" | exec "$@"', 'sh', stream, process.execPath, BTRFS_TS, 'receive', ...extra, dest]]
      : [process.execPath, [BTRFS_TS, 'receive', ...extra, '-f', stream, dest]];
  const r = spawnSync(cmd, args as string[], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 26 });
  return { code: r.status, stderr: (r.stderr ?? '').trim(), timedOut: r.error !== undefined && /ETIMEDOUT/.test(String(r.error)) };
}

/** Paths (latin1) that a stream's FILEATTR commands name. */
async function fileattrPaths(streamFile: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const rec of readStream(streamFile)) {
    if (rec.command.cmd === 'fileattr') out.add(rec.command.path.toString('latin1'));
  }
  return out;
}

export async function soakSeed(opts: SoakOptions): Promise<SoakResult> {
  const t0 = Date.now();
  const seed = opts.seed;
  const ours = opts.receiver ?? 'btrfs-ts';
  const protocols = opts.protocols ?? [1, 2];
  const steps = opts.steps ?? 3;
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const log = opts.log ?? (() => {});
  const rng = new Rng(seed);
  const compress = COMPRESSORS[seed % 3]!;
  const result: SoakResult = { seed, ok: true, problems: [], streams: 0, streamBytes: 0, sendsCompared: 0, compared: 0, flagNotes: [], knownNotes: [], progsNotes: [], opsLog: [], ms: 0 };
  const problem = (text: string): void => {
    result.ok = false;
    result.problems.push(`seed ${seed}: ${text}`);
    log(`  FAIL seed ${seed}: ${text}`);
  };
  const filesystems: LoopFs[] = [];
  try {
    const src = makeLoopFs(`soak${seed}-src`, { sizeMiB: 2048, mountOptions: [`compress-force=${compress}`] });
    filesystems.push(src);
    const vol = join(src.mnt, 'vol');
    sh('btrfs', ['subvolume', 'create', vol]);
    result.opsLog.push(`# seed ${seed}, source compress-force=${compress}`);
    result.opsLog.push(...buildRandomTree(vol, rng.fork(), opts.tree));
    const snaps = ['snap0'];
    sh('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, 'snap0')]);
    for (let k = 1; k <= steps; k++) {
      result.opsLog.push(`# step ${k}`);
      result.opsLog.push(...mutateRandomTree(vol, rng.fork(), k, opts.tree));
      sh('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, `snap${k}`)]);
      snaps.push(`snap${k}`);
    }
    log(`  seed ${seed}: tree built (${result.opsLog.length} ops, compress-force=${compress})`);
    const sourceInfo = new Map<string, Map<string, NodeInfo>>();

    /** Check one received subvolume: state, ours vs progs, ours vs source, flags. True = ours≠progs. */
    const verify = (label: string, snap: string, oursMnt: string, progsMnt: string, carried: Set<string>): boolean => {
      // Subvolume state: received UUID, send transid, read-only.
      const si = subvolInfo(join(oursMnt, snap));
      const sp = subvolInfo(join(progsMnt, snap));
      for (const key of ['receivedUuid', 'readonly', 'sendTransid'] as const) {
        if (String(si[key]) !== String(sp[key])) problem(`${label}: subvolume ${key} differs (${ours}: ${si[key]}; progs: ${sp[key]})`);
      }
      if (si.receivedUuid === '-' || !si.readonly) problem(`${label}: ${ours}'s subvolume not finalized (received UUID ${si.receivedUuid}, readonly ${si.readonly})`);

      const a = collectTree(join(oursMnt, snap), { flags: true });
      const b = collectTree(join(progsMnt, snap));
      let s = sourceInfo.get(snap);
      if (!s) sourceInfo.set(snap, (s = collectTree(join(src.mnt, snap), { flags: true })));
      result.compared += a.size;
      // Known kernel limitation: orphans are created in the subvolume root, which changes its
      // mtime on the receiver, but the kernel sends no UTIMES for the root when the root did not
      // change on the source. Then progs' root times are the receive time too: not comparable.
      const rootTimesUnsent = (f: string): boolean => (f === 'mtimeNs' || f === 'atimeNs')
        && String(b.get('')?.[f]) !== String(s!.get('')?.[f]);
      const known = (d: { path: string; field: string }): boolean => d.path === '.' && rootTimesUnsent(d.field);
      const allDiffs = diffTrees(a, b);
      const sameAsSource = (d: Difference): boolean => {
        const x = a.get(d.rawPath);
        const y = s!.get(d.rawPath);
        return !!x && !!y && String(x[d.field as keyof NodeInfo]) === String(y[d.field as keyof NodeInfo]);
      };
      const diffs = allDiffs.filter((d) => !known(d) && !sameAsSource(d));
      if (allDiffs.some(known)) result.knownNotes.push(`${label}: root directory times not sent by the kernel`);
      // Where btrfs-ts matches the source and progs does not, progs is the one that is off (e.g. it
      // loses set-uid bits when the kernel sends CHOWN without CHMOD): a note, not a failure.
      for (const d of allDiffs.filter((x) => !known(x) && sameAsSource(x))) {
        result.progsNotes.push(`${label}: ${formatDifference(d, [ours, 'progs'])} — ${ours} matches the source`);
      }
      if (diffs.length) {
        problem(`${label}: ${diffs.length} difference(s); first: ${formatDifference(diffs[0]!, [ours, 'progs'])}`);
        for (const d of diffs.slice(1, 6)) log(`    also: ${formatDifference(d, [ours, 'progs'])}`);
      }
      // Against the source snapshot itself (guards against a bug shared by both receivers).
      const sdiffs = diffTrees(a, s).filter((d) => !known(d));
      if (sdiffs.length) {
        // Same value in progs' tree: both receivers were told the same thing (look at the sender).
        const d0 = sdiffs[0]!;
        const shared = String(b.get(d0.rawPath)?.[d0.field as keyof NodeInfo]) === String(a.get(d0.rawPath)?.[d0.field as keyof NodeInfo]);
        problem(`${label}: ${sdiffs.length} difference(s) from the source; first: ${formatDifference(d0, [ours, 'source'])}` +
          (shared ? ' [progs has the same difference: likely the stream/kernel]' : ''));
      }
      // Inode flags only against the source (progs ignores FILEATTR). The kernel sends FILEATTR only
      // for inodes that existed in the parent and whose flags changed, so only those paths must
      // match; other differences are notes (flags the stream never carried).
      for (const [rel, n] of a) {
        const f = s.get(rel)?.flags;
        if (f === undefined || n.flags === undefined || (f & FLAG_MASK) === (n.flags & FLAG_MASK)) continue;
        const text = `${label}: ${showPath(rel)} flags ${ours} 0x${n.flags.toString(16)} source 0x${f.toString(16)}`;
        if (carried.has(rel) && ours === 'btrfs-ts') problem(`FILEATTR not applied: ${text}`);
        else result.flagNotes.push(text);
      }
      if (opts.onReceived) {
        try {
          opts.onReceived({ ours: join(oursMnt, snap), progs: join(progsMnt, snap), source: join(src.mnt, snap), label });
        } catch (err) {
          problem(`${label}: ${(err as Error).message}`);
        }
      }
      log(`  seed ${seed} ${label}: ${diffs.length ? 'DIFFERENT' : 'same'} (${a.size} entries)`);
      return diffs.length > 0;
    };

    for (const proto of protocols) {
      const destOurs = makeLoopFs(`soak${seed}-ours`, { sizeMiB: 2048, mountOptions: ['noatime'] });
      filesystems.push(destOurs);
      const destProgs = makeLoopFs(`soak${seed}-progs`, { sizeMiB: 2048, mountOptions: ['noatime'] });
      filesystems.push(destProgs);
      for (let k = 0; k < snaps.length; k++) {
        const snap = snaps[k]!;
        const streamFile = join(src.dir, `v${proto}-${snap}.stream`);
        const sendArgs = ['send', '-q', '--proto', String(proto), ...(proto === 2 ? ['--compressed-data'] : []),
          ...(k > 0 ? ['-p', join(src.mnt, snaps[k - 1]!)] : []), '-f', streamFile, join(src.mnt, snap)];
        sh('btrfs', sendArgs);
        // Sender differential: btrfs-ts send must produce the very same bytes (the kernel makes them).
        if (opts.checkSend !== false && ours === 'btrfs-ts') {
          const oursFile = `${streamFile}.btrfs-ts`;
          const r = spawnSync(process.execPath, [BTRFS_TS, ...sendArgs.map((a) => (a === streamFile ? oursFile : a))], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
          if (r.status !== 0) problem(`v${proto} send ${snap}: btrfs-ts send failed (${(r.stderr ?? '').trim().split('\n').pop()})`);
          else if (!fs.readFileSync(oursFile).equals(fs.readFileSync(streamFile))) problem(`v${proto} send ${snap}: btrfs-ts send's stream differs from btrfs send's`);
          else result.sendsCompared++;
          fs.rmSync(oursFile, { force: true });
        }
        result.streams++;
        result.streamBytes += fs.statSync(streamFile).size;
        const label = `v${proto}${proto === 2 && seed % 4 >= 2 && ours === 'btrfs-ts' ? ' (--force-decompress)' : ''} ${k === 0 ? 'full' : 'incremental'} ${snap}`;

        const carried = proto === 2 ? await fileattrPaths(streamFile) : new Set<string>();
        const p = receiveWith('progs', streamFile, destProgs.mnt, timeoutMs);
        // Odd seeds feed btrfs-ts through a pipe on stdin, even seeds use -f (both input paths); for
        // v2, seeds 2 and 3 mod 4 use --force-decompress (our zstd/zlib/lzo decoders instead of
        // BTRFS_IOC_ENCODED_WRITE; the contents must still match).
        const decompress = proto === 2 && seed % 4 >= 2 && ours === 'btrfs-ts';
        const o = receiveWith(ours, streamFile, destOurs.mnt, timeoutMs, seed % 2 === 1, decompress ? ['--force-decompress'] : []);
        fs.rmSync(streamFile);
        if (o.timedOut) {
          problem(`${label}: ${ours} receive timed out after ${timeoutMs} ms`);
          break;
        }
        const why = (t: string): string => t.split('\n').find((l) => /error/i.test(l)) ?? t.split('\n').pop() ?? '';
        if (p.code !== 0 || o.code !== 0) {
          if (p.code !== o.code) {
            problem(`${label}: exit status differs (${ours}: ${o.code}, ${why(o.stderr)}; progs: ${p.code}, ${why(p.stderr)})`);
          } else {
            problem(`${label}: both receivers failed (${why(o.stderr)})`);
          }
          break;
        }
        const errLines = o.stderr.split('\n').filter((l) => /error|warn/i.test(l));
        if (errLines.length) log(`  seed ${seed} ${label}: ${ours} said: ${errLines.slice(0, 3).join(' / ')}`);

        if (verify(label, snap, destOurs.mnt, destProgs.mnt, carried)) break;
      }
      if (!result.ok) break;
    }

    // Several subvolumes in one stream (-e) and clone sources (-c, parent chosen among them).
    if (result.ok && opts.multi !== false && snaps.length >= 4) {
      const proto = seed % 2 === 0 ? 1 : 2;
      const destOurs = makeLoopFs(`soak${seed}-ours`, { sizeMiB: 2048, mountOptions: ['noatime'] });
      filesystems.push(destOurs);
      const destProgs = makeLoopFs(`soak${seed}-progs`, { sizeMiB: 2048, mountOptions: ['noatime'] });
      filesystems.push(destProgs);
      const at = (n: string): string => join(src.mnt, n);
      const phases = [
        { what: `v${proto} one stream, two subvolumes (send -e snap0 snap2)`, args: ['-e', at('snap0'), at('snap2')], names: ['snap0', 'snap2'] },
        { what: `v${proto} clone sources (send -c snap0 -c snap2 snap3)`, args: ['-c', at('snap0'), '-c', at('snap2'), at('snap3')], names: ['snap3'] },
      ];
      for (const phase of phases) {
        const streamFile = join(src.dir, 'multi.stream');
        const sendArgs = ['send', '-q', '--proto', String(proto), ...(proto === 2 ? ['--compressed-data'] : []), '-f', streamFile, ...phase.args];
        sh('btrfs', sendArgs);
        if (opts.checkSend !== false && ours === 'btrfs-ts') {
          const oursFile = `${streamFile}.btrfs-ts`;
          const r = spawnSync(process.execPath, [BTRFS_TS, ...sendArgs.map((x) => (x === streamFile ? oursFile : x))], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
          if (r.status !== 0) problem(`${phase.what}: btrfs-ts send failed (${(r.stderr ?? '').trim().split('\n').pop()})`);
          else if (!fs.readFileSync(oursFile).equals(fs.readFileSync(streamFile))) problem(`${phase.what}: btrfs-ts send's stream differs from btrfs send's`);
          else result.sendsCompared++;
          fs.rmSync(oursFile, { force: true });
        }
        result.streams++;
        result.streamBytes += fs.statSync(streamFile).size;
        const carried = await fileattrPaths(streamFile);
        const p = receiveWith('progs', streamFile, destProgs.mnt, timeoutMs);
        const o = receiveWith(ours, streamFile, destOurs.mnt, timeoutMs, seed % 2 === 1);
        fs.rmSync(streamFile);
        if (o.timedOut || o.code !== p.code || o.code !== 0) {
          problem(`${phase.what}: exit status ${ours} ${o.code}${o.timedOut ? ' (timeout)' : ''} (${o.stderr.split('\n').find((l) => /error/i.test(l)) ?? ''}), progs ${p.code} (${p.stderr.split('\n').find((l) => /error/i.test(l)) ?? ''})`);
          break;
        }
        let different = false;
        for (const name of phase.names) different = verify(`${phase.what}: ${name}`, name, destOurs.mnt, destProgs.mnt, carried) || different;
        if (different) break;
      }
    }
  } catch (err) {
    problem(`harness error: ${(err as Error).message.split('\n').slice(0, 3).join(' / ')}`);
  } finally {
    if (result.ok || !opts.keepOnFailure) for (const f of filesystems.reverse()) f.cleanup();
    else log(`  kept images: ${filesystems.map((f) => f.dir).join(' ')}`);
  }
  result.ms = Date.now() - t0;
  return result;
}
