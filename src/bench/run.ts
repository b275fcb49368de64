// `npm run bench`: btrfs-ts against btrfs-progs, interleaved in the same run, medians of N rounds.
// Writes the table to docs/benchmarks.md. Not a test: nothing here asserts a time.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeLoopFs, type LoopFs } from '../lab/loop-btrfs.js';
import { measure, median, settle, type Measurement } from './measure.js';
import { buildCorpus } from './corpus.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Run as installed (`btrfs-ts ...`): the shebang line carries the Node flags the tool is meant to run with.
const bin = join(repoRoot, 'bin', 'btrfs-ts.js');
/** The shell words that start btrfs-ts in a timed command: set by prepareSetup() (useColdNode). */
let ours = bin;

interface Args {
  sizeMiB: number;
  rounds: number;
  out: string;
  only: string[] | undefined;
  /** --scaling: corpus sizes (MiB) for the scaling section instead of the main table. */
  scaling: number[] | undefined;
}

function parseArgs(argv: string[]): Args {
  // 1100 MiB of corpus makes a v1 stream of a little over 1 GiB (1024 gave 970 MiB). 5 rounds: the
  // verified compressed receive's rounds spread 0.85-1.00x of progs within one run, and a median of 3
  // moved by +-0.04 between runs.
  const args: Args = { sizeMiB: 1100, rounds: 5, out: join(repoRoot, 'docs', 'benchmarks.md'), only: undefined, scaling: undefined };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--size-mib': args.sizeMiB = Number(value); i++; break;
      case '--rounds': args.rounds = Number(value); i++; break;
      case '--out': args.out = resolve(value!); i++; break;
      case '--only': args.only = value!.split(','); i++; break;
      case '--scaling':
        // Optional list of sizes: --scaling 256,512,1024,2048 (the default).
        if (value !== undefined && /^[\d,]+$/.test(value)) { args.scaling = value.split(',').map(Number); i++; }
        else args.scaling = [256, 512, 1024, 2048];
        break;
      case '--help':
        console.log('usage: npm run bench -- [--size-mib N (1100)] [--rounds N (5)] [--out FILE] [--only op,op]\n' +
          '       npm run bench -- --scaling [256,512,1024,2048] [--rounds N] [--out FILE]   (appends a section)');
        process.exit(0);
        break;
      default: throw new Error(`bench: unknown argument ${argv[i]}`);
    }
  }
  return args;
}

/** One operation timed on both sides: a command per side plus what to do before and after each run. */
interface Operation {
  id: string;
  title: string;
  /** Target ratio btrfs-ts / btrfs-progs (wall), from the performance issue. */
  target: number;
  command(side: 'progs' | 'ours'): string;
  /** Runs after each timed run, untimed: verify the result, then clean up for the next run. */
  after?(side: 'progs' | 'ours'): void;
  /** Time it with a warm page cache: no cache drop, and one untimed run of the same command first. */
  warm?: boolean;
  /**
   * A run of well under a second (the dumps): 2 × rounds + 1 rounds, as the machine's noise is a larger
   * share of it and the extra rounds cost seconds.
   */
  short?: boolean;
}

/** Rounds of `op` in a run of `rounds` rounds. */
function roundsOf(op: Operation, rounds: number): number {
  return op.short ? 2 * rounds + 1 : rounds;
}

interface Result {
  op: Operation;
  progs: Measurement[];
  ours: Measurement[];
  oursError?: string;
}

function sh(command: string): string {
  return execFileSync('bash', ['-c', command], { encoding: 'utf8', maxBuffer: 256 << 20 });
}

/** The received copy must equal the source snapshot, or the run does not count. */
function verifyReceived(source: string, received: string): void {
  const diff = spawnSync('diff', ['-rq', '--no-dereference', source, received], { encoding: 'utf8' });
  if (diff.status !== 0) throw new Error(`received tree differs from the source:\n${diff.stdout.slice(0, 2000)}`);
}

function deleteSubvolume(path: string): void {
  if (!existsSync(path)) return;
  sh(`btrfs property set -f -ts '${path}' ro false >/dev/null 2>&1 || true; btrfs subvolume delete -c '${path}' >/dev/null`);
  // Wait for the cleaner to free the deleted tree: otherwise it competes with the next timed run.
  sh(`btrfs subvolume sync '${dirname(path)}' >/dev/null; sync`);
}

/**
 * `oursOnly`: options btrfs-progs does not have (its side runs without them). `pipe`: the stream comes
 * through a pipe from `cat`, as from `send | ssh` (cat's CPU time is then in both sides' user+sys).
 */
function receiveOp(id: string, title: string, target: number, stream: string, dest: LoopFs,
  source: string, snapName: string, extra = '', oursOnly = '', pipe = false): Operation {
  const tool = (side: 'progs' | 'ours') => (side === 'progs' ? 'btrfs' : `${ours}`);
  const input = pipe ? '' : `-f '${stream}'`;
  return {
    id, title, target,
    command: (side) => `${pipe ? `cat '${stream}' | ` : ''}${tool(side)} receive -q ${side === 'ours' ? oursOnly : ''} ${extra} ${input} '${dest.mnt}'`,
    after: () => {
      const received = join(dest.mnt, snapName);
      try {
        verifyReceived(source, received);
      } finally {
        deleteSubvolume(received);
      }
    },
  };
}

/**
 * A send into `out` (a file, or /dev/null). Into a file, the output must equal btrfs-progs' stream of
 * the same snapshot byte for byte (`reference`) before its time counts; it is removed after each run.
 */
function sendOp(id: string, title: string, snap: string, flags: string, out: string, reference?: string): Operation {
  return {
    id, title, target: 1.0,
    command: (side) => `${side === 'progs' ? 'btrfs' : ours} send -q ${flags} -f '${out}' '${snap}'`,
    after: reference === undefined ? undefined : () => {
      try {
        sh(`cmp -s '${out}' '${reference}'`);
      } finally {
        rmSync(out, { force: true });
      }
    },
  };
}

/**
 * Destination images are sparse files in /dev/shm, so only what is written costs memory. They are made
 * large (4× the corpus, at least 8 GiB): on a nearly full btrfs (the first harness used 1.6× + 512 MiB)
 * the kernel makes every metadata reservation wait for delalloc flushing — 70–80 % of btrfs-progs'
 * receive time was spent blocked in __reserve_bytes under btrfs_rename — which measures the kernel's
 * ENOSPC handling, not the receiver (docs/benchmarks.md).
 */
function destinationSizeMiB(corpusMiB: number): number {
  return Math.max(8192, corpusMiB * 4);
}

/** A directory of ours, removed with the loop filesystems when the run ends. */
function tempDir(prefix: string, disposables: LoopFs[]): string {
  const dir = mkdtempSync(prefix);
  disposables.push({ mnt: dir, img: '', dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) });
  return dir;
}

/**
 * Dropping the page cache keeps the pages a running process maps, and the bench itself (and npm above
 * it) runs on Node: btrfs-ts would start with ~30 MB of Node's binary still in memory while btrfs-progs
 * starts cold — 0.09 s of Node's start-up from disk left out. So btrfs-ts runs with a copy of the node
 * binary, on disk, that no other process maps, put first on PATH for the bin's `#!/usr/bin/env node`.
 * Returns the shell words that start btrfs-ts that way.
 */
function useColdNode(disposables: LoopFs[]): string {
  const dir = tempDir('/var/tmp/btrfs-ts-bench-node-', disposables);
  copyFileSync(process.execPath, join(dir, 'node'));
  chmodSync(join(dir, 'node'), 0o755);
  const fsType = sh(`stat -f -c %T '${dir}'`).trim();
  if (fsType === 'tmpfs' || fsType === 'ramfs') {
    console.error(`bench: warning: ${dir} is on ${fsType}, so btrfs-ts starts with Node's binary in memory`);
  }
  return `PATH='${dir}':"$PATH" '${bin}'`;
}

/**
 * Everything one measurement needs: a corpus snapshot on a compress-force=zstd source, its v1 and
 * compressed streams made by btrfs-progs, and two empty destinations (plain and compress-force=zstd).
 * Each piece is pushed on `disposables` as soon as it exists, so a failure still cleans up.
 */
function prepareSetup(sizeMiB: number, disposables: LoopFs[]) {
  ours = useColdNode(disposables);
  const src = makeLoopFs('bench-src', { sizeMiB: Math.max(1024, Math.ceil(sizeMiB * 1.5) + 512), mountOptions: ['compress-force=zstd'] });
  disposables.push(src);
  const corpus = buildCorpus(src.mnt, sizeMiB);
  const snap = join(src.mnt, 'snap');
  const streamDir = tempDir('/dev/shm/btrfs-ts-bench-streams-', disposables);
  const v1 = join(streamDir, 'v1.stream');
  const v2 = join(streamDir, 'compressed.stream');
  sh(`btrfs send -q -f '${v1}' '${snap}'`);
  sh(`btrfs send -q --compressed-data -f '${v2}' '${snap}'`);
  const plain = makeLoopFs('bench-dst-plain', { sizeMiB: destinationSizeMiB(sizeMiB) });
  disposables.push(plain);
  const zstd = makeLoopFs('bench-dst-zstd', { sizeMiB: destinationSizeMiB(sizeMiB), mountOptions: ['compress-force=zstd'] });
  disposables.push(zstd);
  return { corpus, snap, v1, v2, plain, zstd, streamDir };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench: must run as root (loop devices, mounts, send ioctl)');
  if (args.scaling) return scaling(args);
  const disposables: LoopFs[] = [];
  try {
    console.error(`bench: building a ${args.sizeMiB} MiB corpus from /usr ...`);
    const { corpus, snap, v1, v2, plain, zstd, streamDir } = prepareSetup(args.sizeMiB, disposables);
    const sentFile = join(streamDir, 'sent.stream');
    const snapName = 'snap';

    const allOperations: Operation[] = [
      // Into a file on tmpfs, as `send -f FILE` is used (the kernel writes it directly, src/send/direct-file.ts);
      // into /dev/null (which the kernel cannot write directly: both tools splice a pipe into it).
      sendOp('send-v1', 'send (v1) → file', snap, '', sentFile, v1),
      sendOp('send-compressed', 'send --compressed-data → file', snap, '--compressed-data', sentFile, v2),
      sendOp('send-v1-null', 'send (v1) → /dev/null', snap, '', '/dev/null'),
      sendOp('send-compressed-null', 'send --compressed-data → /dev/null', snap, '--compressed-data', '/dev/null'),
      receiveOp('receive-v1-plain', 'receive v1 → compress=none', 0.9, v1, plain, snap, snapName),
      receiveOp('receive-v1-zstd', 'receive v1 → compress-force=zstd', 0.9, v1, zstd, snap, snapName),
      receiveOp('receive-compressed-zstd', 'receive compressed → compress-force=zstd', 0.85, v2, zstd, snap, snapName),
      // btrfs-ts verifies compressed extents by default; this op measures what the check costs.
      receiveOp('receive-compressed-noverify', 'receive compressed --no-verify-compressed → compress-force=zstd', 0.85, v2,
        zstd, snap, snapName, '', '--no-verify-compressed'),
      receiveOp('receive-force-decompress', 'receive compressed --force-decompress → compress=none', 0.6, v2, plain,
        snap, snapName, '--force-decompress'),
      // As users run it: the stream through a pipe (`btrfs send | ssh host btrfs receive`).
      receiveOp('receive-compressed-pipe', 'receive compressed from a pipe → compress-force=zstd', 0.85, v2, zstd,
        snap, snapName, '', '', true),
      { id: 'dump', title: 'receive --dump (compressed stream)', target: 0.5, short: true,
        command: (side) => `${side === 'progs' ? 'btrfs' : ours} receive --dump -f '${v2}' > /dev/null` },
      // Issue #2 measures the dump on a stream of at least 1 GiB: the v1 stream (≥ 1 GiB at the default size).
      { id: 'dump-v1', title: 'receive --dump (v1 stream)', target: 0.5, short: true,
        command: (side) => `${side === 'progs' ? 'btrfs' : ours} receive --dump -f '${v1}' > /dev/null` },
      { id: 'dump-v1-pipe', title: 'receive --dump (v1 stream from a pipe)', target: 0.5, short: true,
        command: (side) => `cat '${v1}' | ${side === 'progs' ? 'btrfs' : ours} receive --dump > /dev/null` },
      // The same with both programs already in the page cache, as for a second dump in a row: without
      // Node's start-up from disk (~0.09 s here: ~66 MB of its 94 MB binary are read) in the time.
      { id: 'dump-v1-warm', title: 'receive --dump (v1 stream, programs in the page cache)', target: 0.5, warm: true, short: true,
        command: (side) => `${side === 'progs' ? 'btrfs' : ours} receive --dump -f '${v1}' > /dev/null` },
    ];
    const operations = allOperations.filter((op) => args.only === undefined || args.only.includes(op.id));

    const results: Result[] = operations.map((op) => ({ op, progs: [], ours: [] }));
    const allRounds = Math.max(...operations.map((op) => roundsOf(op, args.rounds)));
    for (let round = 0; round < allRounds; round++) {
      for (const result of results) {
        if (round >= roundsOf(result.op, args.rounds)) continue;
        // Alternate who goes first, so neither side always inherits the other's after-effects.
        const order: Array<'progs' | 'ours'> = round % 2 === 0 ? ['progs', 'ours'] : ['ours', 'progs'];
        for (const side of order) {
          if (side === 'ours' && result.oursError) continue;
          try {
            if (result.op.warm) measure(result.op.command(side));
            else settle();
            const m = measure(result.op.command(side));
            result.op.after?.(side);
            result[side].push(m);
            console.error(`bench: round ${round + 1} ${result.op.id} ${side}: ${m.wall.toFixed(2)} s, machine busy ${m.machineBusy.toFixed(2)} s, ${m.maxRssKiB} KiB`);
          } catch (error) {
            if (side === 'progs') throw error;
            result.oursError = (error as Error).message.split('\n').slice(0, 3).join(' ');
            console.error(`bench: ${result.op.id} btrfs-ts failed: ${result.oursError}`);
          }
        }
      }
    }

    const report = renderReport(args, corpus, statSync(v1).size, statSync(v2).size, results);
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, report + keptSections(args.out));
    console.log(report);
  } finally {
    for (const fs of disposables.reverse()) fs.cleanup();
  }
}

/** Timing of one side over rounds, for the scaling table. */
interface ScalingRow {
  sizeMiB: number;
  files: number;
  v1MiB: number;
  v2MiB: number;
  /** op id → side → measurements */
  results: Map<string, { progs: Measurement[]; ours: Measurement[] }>;
}

/**
 * `--scaling`: for each corpus size, receive the v1 stream (→ compress=none) and the compressed stream
 * (→ compress-force=zstd) with both tools; time and peak RSS. Appends (replaces) a section of the report.
 * One size at a time, everything removed before the next (a 2 GiB corpus needs ~7 GiB of /dev/shm).
 */
async function scaling(args: Args): Promise<void> {
  const rows: ScalingRow[] = [];
  for (const sizeMiB of args.scaling!) {
    const disposables: LoopFs[] = [];
    try {
      console.error(`bench: scaling: building a ${sizeMiB} MiB corpus ...`);
      const { corpus, snap, v1, v2, plain, zstd } = prepareSetup(sizeMiB, disposables);
      const ops = [
        receiveOp('receive-v1', 'receive v1 → compress=none', 0.9, v1, plain, snap, 'snap'),
        receiveOp('receive-compressed', 'receive compressed → compress-force=zstd', 0.85, v2, zstd, snap, 'snap'),
      ];
      const row: ScalingRow = {
        sizeMiB, files: corpus.files, v1MiB: statSync(v1).size / 1048576, v2MiB: statSync(v2).size / 1048576,
        results: new Map(ops.map((op) => [op.id, { progs: [], ours: [] }])),
      };
      for (let round = 0; round < args.rounds; round++) {
        for (const op of ops) {
          const order: Array<'progs' | 'ours'> = round % 2 === 0 ? ['progs', 'ours'] : ['ours', 'progs'];
          for (const side of order) {
            settle();
            const m = measure(op.command(side));
            op.after?.(side);
            row.results.get(op.id)![side].push(m);
            console.error(`bench: scaling ${sizeMiB} MiB round ${round + 1} ${op.id} ${side}: ${m.wall.toFixed(2)} s, ${m.maxRssKiB} KiB`);
          }
        }
      }
      rows.push(row);
    } finally {
      for (const fs of disposables.reverse()) fs.cleanup();
    }
  }
  const section = renderScaling(args, rows);
  let report = existsSync(args.out) ? readFileSync(args.out, 'utf8') : '# Benchmarks: btrfs-ts against btrfs-progs\n';
  const at = report.indexOf('\n## Scaling');
  if (at >= 0) {
    const next = report.indexOf('\n## ', at + 1);
    report = report.slice(0, at) + (next >= 0 ? report.slice(next) : '\n');
  }
  report = report.replace(/\n*$/, '\n') + section;
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, report);
  console.log(section);
}

function renderScaling(args: Args, rows: ScalingRow[]): string {
  const med = (ms: Measurement[]) => median(ms.map((m) => m.wall));
  const rss = (ms: Measurement[]) => Math.max(...ms.map((m) => m.maxRssKiB)) / 1024;
  const lines = [
    '',
    '## Scaling',
    '',
    `Produced by \`npm run bench -- --scaling\` on ${new Date().toISOString().slice(0, 10)}: corpora of growing size (same`,
    `path-hash selection of /usr), ${args.rounds} round(s) per size, medians, interleaved as above. Time should grow`,
    'linearly with the stream (s/GiB roughly constant) and btrfs-ts\' peak RSS should stay flat.',
    '',
    '| corpus MiB | files | stream MiB | operation | btrfs-progs s | btrfs-ts s | ratio | btrfs-ts s per GiB of stream | progs RSS MiB | btrfs-ts RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    for (const [id, r] of row.results) {
      const streamMiB = id === 'receive-v1' ? row.v1MiB : row.v2MiB;
      const title = id === 'receive-v1' ? 'receive v1 → none' : 'receive compressed → zstd';
      const ours = med(r.ours);
      lines.push(`| ${row.sizeMiB} | ${row.files} | ${streamMiB.toFixed(0)} | ${title} | ${med(r.progs).toFixed(2)} | ` +
        `${ours.toFixed(2)} | ${(ours / med(r.progs)).toFixed(2)}× | ${(ours / (streamMiB / 1024)).toFixed(2)} | ` +
        `${rss(r.progs).toFixed(0)} | ${rss(r.ours).toFixed(0)} |`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Sections of an existing report that this run does not produce (scaling, notes), kept after the table. */
function keptSections(file: string): string {
  if (!existsSync(file)) return '';
  const old = readFileSync(file, 'utf8');
  const starts = ['\n## Scaling', '\n## What we tried', '\n## Analysis'].map((h) => old.indexOf(h)).filter((i) => i >= 0);
  return starts.length ? old.slice(Math.min(...starts)) : '';
}

function renderReport(args: Args, corpus: { files: number; bytes: number }, v1Size: number, v2Size: number,
  results: Result[]): string {
  const mib = (bytes: number) => (bytes / 1048576).toFixed(0);
  const fmt = (values: number[]) => (values.length ? median(values).toFixed(2) : '–');
  const lines = [
    '# Benchmarks: btrfs-ts against btrfs-progs',
    '',
    'Produced by `npm run bench` (src/bench/run.ts). Both tools run in the same session, interleaved',
    `(A/B, alternating who goes first), ${args.rounds} rounds (${2 * args.rounds + 1} for the dumps, which take well under a`,
    'second), medians; page cache dropped before every run',
    '(except the "programs in the page cache" row: one untimed run first instead) — btrfs-ts runs on a copy',
    'of the node binary that no other process maps, so that it starts as cold as btrfs-progs (the bench',
    'itself runs on Node, and a mapped binary survives the drop);',
    'every received tree is compared with the source (`diff -r`), and every stream sent into a file with btrfs-progs\' stream of the',
    'same snapshot (`cmp`), before its time counts.',
    'Ratio = btrfs-ts wall time / btrfs-progs wall time (lower is better; < 1 means btrfs-ts is faster).',
    '',
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
      `kernel ${sh('uname -r').trim()}, Node ${process.version}, ${sh('btrfs --version').trim()}`,
    `- Corpus: ${corpus.files} files, ${mib(corpus.bytes)} MiB apparent, from /usr (path-hash order), on a compress-force=zstd ` +
      'loop btrfs in /dev/shm; destinations are loop btrfs images in /dev/shm',
    `- Streams: v1 ${mib(v1Size)} MiB, v2 --compressed-data ${mib(v2Size)} MiB`,
    '',
    'CPU columns: "user+sys" is the tool\'s own CPU time (all its threads); "machine busy" is the core-seconds',
    `all ${cpus().length} CPUs spent working during the run, btrfs' kernel workers and the loop devices included`,
    `(/proc/stat; at most ${cpus().length} × wall).`,
    '',
    '| operation | btrfs-progs wall s | btrfs-ts wall s | ratio | target | progs user+sys s | btrfs-ts user+sys s | progs machine busy s | btrfs-ts machine busy s | progs peak RSS MiB | btrfs-ts peak RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const ratio = r.ours.length && r.progs.length
      ? (median(r.ours.map((m) => m.wall)) / median(r.progs.map((m) => m.wall))).toFixed(2) + '×'
      : 'n/a';
    const cpu = (ms: Measurement[]) => fmt(ms.map((m) => m.user + m.sys));
    const busy = (ms: Measurement[]) => fmt(ms.map((m) => m.machineBusy));
    const rss = (ms: Measurement[]) => (ms.length ? (Math.max(...ms.map((m) => m.maxRssKiB)) / 1024).toFixed(0) : '–');
    lines.push(`| ${r.op.title} | ${fmt(r.progs.map((m) => m.wall))} | ${r.oursError ? 'failed' : fmt(r.ours.map((m) => m.wall))} | ` +
      `${ratio} | ≤ ${r.op.target.toFixed(2)}× | ${cpu(r.progs)} | ${cpu(r.ours)} | ${busy(r.progs)} | ${busy(r.ours)} | ` +
      `${rss(r.progs)} | ${rss(r.ours)} |`);
  }
  const verified = results.find((r) => r.op.id === 'receive-compressed-zstd');
  const unverified = results.find((r) => r.op.id === 'receive-compressed-noverify');
  if (unverified?.ours.length && verified?.ours.length) {
    const cost = median(verified.ours.map((m) => m.wall)) / median(unverified.ours.map((m) => m.wall));
    lines.push('', `Verifying compressed extents (trial-decode before the ioctl; btrfs-ts' default) takes ${cost.toFixed(2)}× ` +
      'the time of the same btrfs-ts receive with `--no-verify-compressed`, in this run.');
  }
  const failures = results.filter((r) => r.oursError);
  if (failures.length) {
    lines.push('', 'btrfs-ts failures in this run:', '');
    for (const r of failures) lines.push(`- ${r.op.title}: ${r.oursError}`);
  }
  return lines.join('\n') + '\n';
}

main().catch((error: unknown) => {
  console.error(`ERROR: ${(error as Error).message}`);
  process.exit(1);
});
