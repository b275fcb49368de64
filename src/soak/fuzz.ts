// The two levels of the mutation fuzzer.
//  fuzzReader:  mutants fed to readStream in a worker thread; only StreamError may escape, no run may
//               hang (watchdog kills the worker), no Buffer allocation beyond the command limit.
//  fuzzReceive: mutants received by `btrfs-ts receive -f` into a scratch btrfs beside a canary tree;
//               exit 0, or 1 with a clean one-line `ERROR:`; no hang; nothing outside DEST changes.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Rng } from './prng.js';
import { buildRandomTree, mutateRandomTree } from './random-tree.js';
import { sh, type LoopFs } from '../lab/loop-btrfs.js';
import { collectTree, diffTrees, formatDifference, type TreeInfo } from '../lab/compare-trees.js';
import { mutateStream, type MutateContext, type Mutant } from './mutate.js';
import { runRng } from './fuzz-common.js';
import type { ReaderRunResult } from './fuzz-reader-worker.js';
import { BTRFS_TS } from './soak.js';

/** The compiled worker (also when this module runs from TypeScript sources under vitest). */
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/soak/fuzz-reader-worker.js', import.meta.url)
  : new URL('./fuzz-reader-worker.js', import.meta.url);

export interface FuzzFailure {
  seed: number;
  run: number;
  kind: string;
  message: string;
  ops: string[];
  /** Where the failing input was saved. */
  input?: string;
}

/**
 * Real streams to mutate: a small random tree in `<mnt>/src`, snapshots `<mnt>/snap0` and `snap1`,
 * sent as v1 and v2 --compressed-data, full and incremental (the parents stay on this filesystem).
 */
export function makeCorpus(mnt: string, seed: number): Buffer[] {
  const rng = new Rng(seed ^ 0x5eed);
  const src = join(mnt, 'src');
  sh('btrfs', ['subvolume', 'create', src]);
  const tree = { entries: 30, maxFileSize: 300 * 1024, mutations: 15 };
  buildRandomTree(src, rng.fork(), tree);
  sh('btrfs', ['subvolume', 'snapshot', '-r', src, join(mnt, 'snap0')]);
  mutateRandomTree(src, rng.fork(), 1, tree);
  sh('btrfs', ['subvolume', 'snapshot', '-r', src, join(mnt, 'snap1')]);
  const out: Buffer[] = [];
  for (const proto of [1, 2]) {
    const extra = proto === 2 ? ['--compressed-data'] : [];
    out.push(sh('btrfs', ['send', '-q', '--proto', String(proto), ...extra, join(mnt, 'snap0')]));
    out.push(sh('btrfs', ['send', '-q', '--proto', String(proto), ...extra, '-p', join(mnt, 'snap0'), join(mnt, 'snap1')]));
  }
  return out;
}

export interface ReaderFuzzReport {
  runs: number;
  ok: number;
  streamErrors: number;
  failures: FuzzFailure[];
  maxAlloc: number;
  maxRssMiB: number;
  /** Decoded commands the writer refused to re-encode (v2-only commands in v1 streams and the like). */
  writerRefused: number;
  /** Mutants on which decode→encode→decode was checked. */
  roundTripped: number;
  ms: number;
}

export async function fuzzReader(opts: {
  corpus: Buffer[];
  seed: number;
  runs: number;
  firstRun?: number;
  maxCommandSize?: number;
  hangMs?: number;
  log?: (line: string) => void;
}): Promise<ReaderFuzzReport> {
  const t0 = Date.now();
  const maxCommandSize = opts.maxCommandSize ?? 1 << 20;
  const hangMs = opts.hangMs ?? 10_000;
  const first = opts.firstRun ?? 0;
  const end = first + opts.runs;
  const report: ReaderFuzzReport = { runs: 0, ok: 0, streamErrors: 0, failures: [], maxAlloc: 0, maxRssMiB: 0, writerRefused: 0, roundTripped: 0, ms: 0 };
  // The largest buffer the reader may need: one command frame plus its input window.
  const allocLimit = 16 * 1024 * 1024 + 2 * 1024 * 1024;
  let next = first;
  while (next < end) {
    const corpus = opts.corpus.map((b) => new Uint8Array(b));
    const worker = new Worker(WORKER_URL, {
      workerData: { corpus, seed: opts.seed, start: next, end, maxCommandSize },
      resourceLimits: { maxOldGenerationSizeMb: 512 },
    });
    await new Promise<void>((resolve) => {
      let current = next;
      let timer = setTimeout(onHang, hangMs);
      function onHang(): void {
        report.runs++;
        report.failures.push({ seed: opts.seed, run: current, kind: 'hang', message: `no result within ${hangMs} ms`, ops: [] });
        opts.log?.(`  FAIL reader seed ${opts.seed} run ${current}: hang`);
        next = current + 1;
        void worker.terminate().then(() => resolve());
      }
      worker.on('message', (m: { started: number } | ReaderRunResult) => {
        clearTimeout(timer);
        timer = setTimeout(onHang, hangMs);
        if ('started' in m) {
          current = m.started;
          return;
        }
        report.runs++;
        report.maxAlloc = Math.max(report.maxAlloc, m.maxAlloc);
        report.maxRssMiB = Math.max(report.maxRssMiB, m.rssMiB);
        next = m.run + 1;
        let failure: string | undefined;
        report.writerRefused += m.writerRefused;
        if (m.roundTripped) report.roundTripped++;
        if (m.outcome === 'bad-error') failure = `non-StreamError escaped: ${m.message}`;
        else if (m.outcome === 'chunking-differs') failure = `chunking changes the result: ${m.message}`;
        else if (m.outcome === 'roundtrip-differs') failure = `decode→encode→decode: ${m.message}`;
        else if (m.maxAlloc > allocLimit) failure = `allocated ${m.maxAlloc} bytes at once (limit ${allocLimit})`;
        else if (m.rssMiB > 1536) failure = `resident memory grew to ${m.rssMiB} MiB`;
        if (failure) {
          report.failures.push({ seed: opts.seed, run: m.run, kind: m.maxAlloc > allocLimit || m.rssMiB > 1536 ? 'memory' : m.outcome, message: failure, ops: m.ops });
          opts.log?.(`  FAIL reader seed ${opts.seed} run ${m.run}: ${failure} [${m.ops.join('; ')}]`);
        } else if (m.outcome === 'ok') report.ok++;
        else report.streamErrors++;
        if (next >= end) {
          clearTimeout(timer);
          void worker.terminate().then(() => resolve());
        }
      });
      worker.on('error', (err) => {
        clearTimeout(timer);
        report.runs++;
        report.failures.push({ seed: opts.seed, run: current, kind: 'worker-crash', message: String(err), ops: [] });
        opts.log?.(`  FAIL reader seed ${opts.seed} run ${current}: worker died: ${String(err)}`);
        next = current + 1;
        resolve();
      });
    });
  }
  report.ms = Date.now() - t0;
  return report;
}

export interface ReceiveFuzzReport {
  runs: number;
  succeeded: number;
  cleanErrors: number;
  failures: FuzzFailure[];
  errorKinds: Map<string, number>;
  ms: number;
}

/** Yield to the event loop once. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A canary tree beside the destinations: hostile streams aim at it. */
export function makeCanary(mnt: string): void {
  const c = join(mnt, 'canary');
  fs.mkdirSync(join(c, 'dir', 'empty'), { recursive: true });
  fs.writeFileSync(join(c, 'file0'), Buffer.alloc(8192, 0x41));
  fs.writeFileSync(join(c, 'file1'), 'canary file 1\n');
  fs.writeFileSync(join(c, 'dir', 'inner.txt'), 'inner\n');
  fs.symlinkSync('file0', join(c, 'lnk'));
}

const ESCAPE_SENTINEL = '/tmp/btrfs-ts-fuzz-escape';

function fingerprintOutside(mnt: string): TreeInfo {
  return collectTree(mnt, { exclude: ['dests'] });
}

/** Why stderr/exit status is not "exit 0, or exit 1 with one clean ERROR line", or undefined. */
export function badExit(code: number | null, signal: string | null, stderr: string): string | undefined {
  if (signal) return `killed by ${signal}`;
  if (code !== 0 && code !== 1) return `exit status ${code}`;
  if (/^\s+at .+[(:]\d+|node:internal|Uncaught|\[object Object\]|undefined is not|Cannot read propert/m.test(stderr)) {
    return `stack trace or internal error text on stderr: ${stderr.split('\n').slice(0, 3).join(' / ')}`;
  }
  if (code === 1) {
    const errLines = stderr.split('\n').filter((l) => l.startsWith('ERROR'));
    if (errLines.length === 0) return `exit 1 without an ERROR line: ${stderr.slice(0, 200)}`;
  }
  return undefined;
}

export async function fuzzReceive(opts: {
  fs: LoopFs;
  corpus: Buffer[];
  seed: number;
  runs: number;
  firstRun?: number;
  receiver?: 'btrfs-ts' | 'progs';
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Replace the random mutants (harness self-tests). */
  mutant?: (run: number, ctx: MutateContext) => Mutant;
}): Promise<ReceiveFuzzReport> {
  const t0 = Date.now();
  const mnt = opts.fs.mnt;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const report: ReceiveFuzzReport = { runs: 0, succeeded: 0, cleanErrors: 0, failures: [], errorKinds: new Map(), ms: 0 };
  if (!fs.existsSync(join(mnt, 'canary'))) makeCanary(mnt);
  fs.mkdirSync(join(mnt, 'dests'), { recursive: true });
  fs.rmSync(ESCAPE_SENTINEL, { recursive: true, force: true });
  let before = fingerprintOutside(mnt);
  const input = join(opts.fs.dir, 'mutant.stream');
  const first = opts.firstRun ?? 0;
  for (let run = first; run < first + opts.runs; run++) {
    await tick(); // let the event loop breathe (test runners talk to their workers through it)
    const ctx: MutateContext = { canary: join(mnt, 'canary'), escapeDepth: 3 };
    const mutant = opts.mutant ? opts.mutant(run, ctx) : mutateStream(opts.corpus, runRng(opts.seed, run).fork(), ctx);
    fs.writeFileSync(input, mutant.bytes);
    const dest = join(mnt, 'dests', `d${run}`);
    fs.mkdirSync(dest);
    const [cmd, args] = opts.receiver === 'progs'
      ? ['btrfs', ['receive', '-f', input, dest]]
      : [process.execPath, [BTRFS_TS, 'receive', '-f', input, dest]];
    const r = spawnSync(cmd, args as string[], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 24 });
    report.runs++;
    const fail = (kind: string, message: string): void => {
      // Inputs are kept for replay (not for the progs self-test, whose escape is expected).
      const saved = opts.receiver === 'progs' ? undefined : `/tmp/btrfs-ts-fuzz-${opts.seed}-${run}.stream`;
      if (saved) fs.writeFileSync(saved, mutant.bytes);
      report.failures.push({ seed: opts.seed, run, kind, message, ops: mutant.ops, ...(saved ? { input: saved } : {}) });
      opts.log?.(`  FAIL receive seed ${opts.seed} run ${run}: ${kind}: ${message} [${mutant.ops.join('; ')}]${saved ? ` (input: ${saved})` : ''}`);
    };
    const stderr = r.stderr ?? '';
    if (r.error && /ETIMEDOUT/.test(String(r.error))) fail('hang', `no exit within ${timeoutMs} ms`);
    else {
      const bad = badExit(r.status, r.signal, stderr);
      if (bad) fail('unclean-exit', bad);
      else if (r.status === 0) report.succeeded++;
      else {
        report.cleanErrors++;
        const kind = (stderr.split('\n').find((l) => l.startsWith('ERROR')) ?? '').replace(/\d+/g, 'N').replace(/'.*?'|".*?"/g, 'S').slice(0, 70);
        report.errorKinds.set(kind, (report.errorKinds.get(kind) ?? 0) + 1);
      }
    }
    // Nothing outside DEST may change.
    const after = fingerprintOutside(mnt);
    const diffs = diffTrees(before, after, ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target', 'rdev', 'nlink', 'links', 'xattrs', 'mtimeNs', 'atimeNs']);
    if (diffs.length) {
      fail('escape', `changed outside DEST: ${formatDifference(diffs[0]!, ['before', 'after'])}`);
      before = after;
    }
    if (fs.existsSync(ESCAPE_SENTINEL)) {
      fail('escape', `${ESCAPE_SENTINEL} was created`);
      fs.rmSync(ESCAPE_SENTINEL, { recursive: true, force: true });
    }
    if (run % 25 === 24) cleanDests(mnt);
  }
  cleanDests(mnt);
  report.ms = Date.now() - t0;
  return report;
}

/** Delete every received subvolume and directory under <mnt>/dests. */
export function cleanDests(mnt: string): void {
  const dests = join(mnt, 'dests');
  const subvols: string[] = [];
  for (const d of fs.readdirSync(dests)) {
    for (const [i, e] of fs.readdirSync(join(dests, d), { encoding: 'buffer' }).entries()) {
      const p = Buffer.concat([Buffer.from(join(dests, d) + '/'), e]);
      const st = fs.lstatSync(p);
      if (!st.isDirectory() || st.ino !== 256) continue;
      // Names may hold any bytes: give it a plain name first so it can go through argv.
      const plain = join(dests, d, `__delete${i}`);
      fs.renameSync(p, plain);
      subvols.push(plain);
    }
  }
  for (let i = 0; i < subvols.length; i += 50) {
    spawnSync('btrfs', ['subvolume', 'delete', ...subvols.slice(i, i + 50)], { stdio: 'ignore' });
  }
  // Empty `dests` but keep it: recreating it would change the mount root (checked as "outside").
  for (const d of fs.readdirSync(dests)) fs.rmSync(join(dests, d), { recursive: true, force: true });
}

export interface DumpDiffReport {
  runs: number;
  agreeAccept: number;
  agreeReject: number;
  /** We reject, progs accepts: we are stricter (by design); counted by our error's first words. */
  stricter: Map<string, number>;
  /** progs rejects, we accept, for an expected reason (stream v3, which progs 6.2 lacks; paths over PATH_MAX). */
  expectedLenient: number;
  failures: FuzzFailure[];
  ms: number;
}

/** The bytes as an input read from memory, in one chunk (none when empty). */
async function* fromMemory(bytes: Buffer): AsyncGenerator<Uint8Array> {
  if (bytes.length) yield bytes;
}

/** Our `--dump` of a stream (all its concatenated streams): the text, and the error message if it failed. */
async function dumpOf(input: number | AsyncIterable<Uint8Array>): Promise<{ text: string; error: string | undefined }> {
  const { dumpStream } = await import('../dump/dump.js');
  const chunks: Buffer[] = [];
  let error: string | undefined;
  try {
    await dumpStream({ input, output: (c) => chunks.push(Buffer.from(c)), timeZone: 'UTC' });
  } catch (err) {
    error = (err as Error).message;
  }
  return { text: Buffer.concat(chunks).toString('latin1'), error };
}

/**
 * Differential parser check against `btrfs receive --dump` (progs 6.2): whatever progs rejects, our
 * reader must reject too (it is stricter by design, never more lenient), except stream version 3.
 * And our own two dump paths must agree: a file, read ahead on the native thread that checks the
 * frames' CRC32C itself, and the same bytes from memory, checked by the parser.
 */
export async function fuzzDumpDiff(opts: { corpus: Buffer[]; seed: number; runs: number; firstRun?: number; dir: string; log?: (l: string) => void }): Promise<DumpDiffReport> {
  const t0 = Date.now();
  const { readStream } = await import('../stream/reader.js');
  const report: DumpDiffReport = { runs: 0, agreeAccept: 0, agreeReject: 0, stricter: new Map(), expectedLenient: 0, failures: [], ms: 0 };
  const file = join(opts.dir, 'dump-mutant.stream');
  const first = opts.firstRun ?? 0;
  for (let run = first; run < first + opts.runs; run++) {
    await tick();
    const mutant = mutateStream(opts.corpus, runRng(opts.seed, run).fork());
    fs.writeFileSync(file, mutant.bytes);
    const progs = spawnSync('btrfs', ['receive', '--dump', '-f', file], { timeout: 20_000, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const bytes = mutant.bytes;
    let ours: string | undefined;
    try {
      for await (const rec of readStream(fromMemory(bytes), { stopAtFirstEnd: true })) void rec;
    } catch (err) {
      ours = (err as Error).message;
    }
    const fd = fs.openSync(file, 'r');
    let viaFile;
    try {
      viaFile = await dumpOf(fd);
    } finally {
      fs.closeSync(fd);
    }
    const viaMemory = await dumpOf(fromMemory(bytes));
    if (viaFile.text !== viaMemory.text || viaFile.error !== viaMemory.error) {
      const saved = `/tmp/btrfs-ts-fuzz-dump-${opts.seed}-${run}.stream`;
      fs.writeFileSync(saved, bytes);
      const message = `dump of the file (${viaFile.error ?? 'ok'}) differs from the dump from memory (${viaMemory.error ?? 'ok'})`;
      report.failures.push({ seed: opts.seed, run, kind: 'read-ahead-dump-differs', message, ops: mutant.ops, input: saved });
      opts.log?.(`  FAIL dump seed ${opts.seed} run ${run}: ${message}`);
    }
    report.runs++;
    const progsOk = progs.status === 0;
    if (progsOk && ours === undefined) report.agreeAccept++;
    else if (!progsOk && ours !== undefined) report.agreeReject++;
    else if (progsOk) {
      const kind = ours!.replace(/\d+/g, 'N').replace(/\(.*?\)/g, '').split(':').slice(0, 2).join(':').slice(0, 60);
      report.stricter.set(kind, (report.stricter.get(kind) ?? 0) + 1);
    } else if ((mutant.bytes.length >= 17 && mutant.bytes.readUInt32LE(13) === 3) || /path invalid/.test(progs.stderr ?? '')) {
      // Expected: stream v3 (progs 6.2 stops at v2), and paths longer than progs' PATH_MAX dump buffer
      // (our receive resolves paths component by component, so a long relative path is not an error).
      report.expectedLenient++;
    } else {
      const saved = `/tmp/btrfs-ts-fuzz-dump-${opts.seed}-${run}.stream`;
      fs.writeFileSync(saved, mutant.bytes);
      const why = ((progs.stderr ?? '').split('\n').find((l) => /ERROR|error/.test(l)) ?? `status ${progs.status}`).slice(0, 200);
      report.failures.push({ seed: opts.seed, run, kind: 'more-lenient-than-progs', message: `progs rejects (${why.trim()}), our reader accepts`, ops: mutant.ops, input: saved });
      opts.log?.(`  FAIL dump seed ${opts.seed} run ${run}: progs rejects (${why.trim()}), we accept [${mutant.ops.join('; ')}]`);
    }
  }
  report.ms = Date.now() - t0;
  return report;
}
