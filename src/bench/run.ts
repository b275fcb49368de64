// `npm run bench`: btrfs-ts against btrfs-progs, interleaved in the same run, medians of N rounds.
// Writes the table to docs/benchmarks.md. Not a test: nothing here asserts a time.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLoopBtrfs, type LoopBtrfs } from './loop-btrfs.js';
import { measure, median, settle, type Measurement } from './measure.js';
import { buildCorpus } from './corpus.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ours = `node ${join(repoRoot, 'bin', 'btrfs-ts.js')}`;

interface Args {
  sizeMiB: number;
  rounds: number;
  out: string;
  only: string[] | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { sizeMiB: 1024, rounds: 3, out: join(repoRoot, 'docs', 'benchmarks.md'), only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--size-mib': args.sizeMiB = Number(value); i++; break;
      case '--rounds': args.rounds = Number(value); i++; break;
      case '--out': args.out = resolve(value!); i++; break;
      case '--only': args.only = value!.split(','); i++; break;
      case '--help':
        console.log('usage: npm run bench -- [--size-mib N (1024)] [--rounds N (3)] [--out FILE] [--only op,op]');
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
  sh('sync');
}

function receiveOp(id: string, title: string, target: number, stream: string, dest: LoopBtrfs,
  source: string, snapName: string, extra = ''): Operation {
  const tool = (side: 'progs' | 'ours') => (side === 'progs' ? 'btrfs' : ours);
  return {
    id, title, target,
    command: (side) => `${tool(side)} receive -q ${extra} -f '${stream}' '${dest.mnt}'`,
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench: must run as root (loop devices, mounts, send ioctl)');
  const disposables: LoopBtrfs[] = [];
  try {
    const corpusMiB = args.sizeMiB;
    console.error(`bench: building a ${corpusMiB} MiB corpus from /usr ...`);
    const src = createLoopBtrfs('src', Math.max(1024, Math.ceil(corpusMiB * 1.5) + 512), 'compress-force=zstd');
    disposables.push(src);
    const corpus = buildCorpus(src.mnt, corpusMiB);
    const snapName = 'snap';
    const snap = join(src.mnt, snapName);

    const streamDir = mkdtempSync('/dev/shm/btrfs-ts-bench-streams-');
    disposables.push({ mnt: streamDir, img: '', dispose: () => rmSync(streamDir, { recursive: true, force: true }) });
    const v1 = join(streamDir, 'v1.stream');
    const v2 = join(streamDir, 'compressed.stream');
    sh(`btrfs send -q -f '${v1}' '${snap}'`);
    sh(`btrfs send -q --compressed-data -f '${v2}' '${snap}'`);

    const destSize = Math.ceil(corpusMiB * 1.6) + 512;
    const plain = createLoopBtrfs('dst-plain', destSize);
    const zstd = createLoopBtrfs('dst-zstd', destSize, 'compress-force=zstd');
    disposables.push(plain, zstd);

    const allOperations: Operation[] = [
      { id: 'send-v1', title: 'send (v1)', target: 1.0,
        command: (side) => `${side === 'progs' ? 'btrfs' : ours} send -q -f /dev/null '${snap}'` },
      { id: 'send-compressed', title: 'send --compressed-data', target: 1.0,
        command: (side) => `${side === 'progs' ? 'btrfs' : ours} send -q --compressed-data -f /dev/null '${snap}'` },
      receiveOp('receive-v1-plain', 'receive v1 → compress=none', 0.9, v1, plain, snap, snapName),
      receiveOp('receive-v1-zstd', 'receive v1 → compress-force=zstd', 0.9, v1, zstd, snap, snapName),
      receiveOp('receive-compressed-zstd', 'receive compressed → compress-force=zstd', 0.85, v2, zstd, snap, snapName),
      receiveOp('receive-force-decompress', 'receive compressed --force-decompress → compress=none', 0.6, v2, plain,
        snap, snapName, '--force-decompress'),
      { id: 'dump', title: 'receive --dump (compressed stream)', target: 0.5,
        command: (side) => `${side === 'progs' ? 'btrfs' : ours} receive --dump -f '${v2}' > /dev/null` },
    ];
    const operations = allOperations.filter((op) => args.only === undefined || args.only.includes(op.id));

    const results: Result[] = operations.map((op) => ({ op, progs: [], ours: [] }));
    for (let round = 0; round < args.rounds; round++) {
      for (const result of results) {
        // Alternate who goes first, so neither side always inherits the other's after-effects.
        const order: Array<'progs' | 'ours'> = round % 2 === 0 ? ['progs', 'ours'] : ['ours', 'progs'];
        for (const side of order) {
          if (side === 'ours' && result.oursError) continue;
          settle();
          try {
            const m = measure(result.op.command(side));
            result.op.after?.(side);
            result[side].push(m);
            console.error(`bench: round ${round + 1} ${result.op.id} ${side}: ${m.wall.toFixed(2)} s, ${m.maxRssKiB} KiB`);
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
    writeFileSync(args.out, report);
    console.log(report);
  } finally {
    for (const fs of disposables.reverse()) fs.dispose();
  }
}

function renderReport(args: Args, corpus: { files: number; bytes: number }, v1Size: number, v2Size: number,
  results: Result[]): string {
  const mib = (bytes: number) => (bytes / 1048576).toFixed(0);
  const fmt = (values: number[]) => (values.length ? median(values).toFixed(2) : '–');
  const lines = [
    '# Benchmarks: btrfs-ts against btrfs-progs',
    '',
    'Produced by `npm run bench` (src/bench/run.ts). Both tools run in the same session, interleaved',
    `(A/B, alternating who goes first), ${args.rounds} rounds, medians; page cache dropped before every run;`,
    'every received tree is compared with the source (`diff -r`) before its time counts.',
    'Ratio = btrfs-ts wall time / btrfs-progs wall time (lower is better; < 1 means btrfs-ts is faster).',
    '',
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
      `kernel ${sh('uname -r').trim()}, Node ${process.version}, ${sh('btrfs --version').trim()}`,
    `- Corpus: ${corpus.files} files, ${mib(corpus.bytes)} MiB apparent, from /usr (path-hash order), on a compress-force=zstd ` +
      'loop btrfs in /dev/shm; destinations are loop btrfs images in /dev/shm',
    `- Streams: v1 ${mib(v1Size)} MiB, v2 --compressed-data ${mib(v2Size)} MiB`,
    '',
    '| operation | btrfs-progs wall s | btrfs-ts wall s | ratio | target | progs user+sys s | btrfs-ts user+sys s | progs peak RSS MiB | btrfs-ts peak RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const ratio = r.ours.length && r.progs.length
      ? (median(r.ours.map((m) => m.wall)) / median(r.progs.map((m) => m.wall))).toFixed(2) + '×'
      : 'n/a';
    const cpu = (ms: Measurement[]) => fmt(ms.map((m) => m.user + m.sys));
    const rss = (ms: Measurement[]) => (ms.length ? (Math.max(...ms.map((m) => m.maxRssKiB)) / 1024).toFixed(0) : '–');
    lines.push(`| ${r.op.title} | ${fmt(r.progs.map((m) => m.wall))} | ${r.oursError ? 'failed' : fmt(r.ours.map((m) => m.wall))} | ` +
      `${ratio} | ≤ ${r.op.target.toFixed(2)}× | ${cpu(r.progs)} | ${cpu(r.ours)} | ${rss(r.progs)} | ${rss(r.ours)} |`);
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
