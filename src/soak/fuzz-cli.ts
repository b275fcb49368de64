// `npm run fuzz -- --runs N [--receive-runs M] [--dump-runs D] [--seq-runs Q] [--seed S] [--first-run I]
//                  [--level reader|dump|seq|receive|both] [--receiver progs]`
// Builds a corpus of real streams on a scratch btrfs, then runs the reader-level fuzz (N mutants), the
// differential parser check against `btrfs receive --dump` (D, default N/5), valid random command
// sequences received by btrfs-ts and progs (Q, default N/20) and the receive-level fuzz (M mutants,
// default N/10). Prints every failure with its (seed, run) and the
// replay command; exits 1 if any run failed.
import { makeLoopFs } from '../lab/loop-btrfs.js';
import { fuzzDumpDiff, fuzzReader, fuzzReceive, makeCorpus, type FuzzFailure } from './fuzz.js';
import { fuzzSequences } from './seq-fuzz.js';

function parse(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const next = argv[i + 1];
    out[a.slice(2)] = next === undefined || next.startsWith('--') ? 'true' : argv[++i]!;
  }
  return out;
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  const seed = Number(args.seed ?? 1);
  const runs = Number(args.runs ?? 1000);
  const receiveRuns = Number(args['receive-runs'] ?? Math.ceil(runs / 10));
  const firstRun = Number(args['first-run'] ?? 0);
  const dumpRuns = Number(args['dump-runs'] ?? Math.ceil(runs / 5));
  const seqRuns = Number(args['seq-runs'] ?? Math.ceil(runs / 20));
  const level = args.level ?? 'both';
  const receiver = args.receiver === 'progs' ? 'progs' : 'btrfs-ts';
  const log = (l: string): void => console.log(l);
  const failures: FuzzFailure[] = [];
  const scratch = makeLoopFs(`fuzz${seed}`, { sizeMiB: 1024, mountOptions: ['noatime'] });
  try {
    const corpus = makeCorpus(scratch.mnt, seed);
    console.log(`fuzz seed ${seed}: corpus of ${corpus.length} streams (${corpus.map((b) => b.length).join(', ')} bytes)`);
    if (level === 'both' || level === 'reader') {
      const r = await fuzzReader({ corpus, seed, runs, firstRun, log });
      failures.push(...r.failures);
      console.log(`reader: ${r.runs} mutants, ${r.ok} read to the end, ${r.streamErrors} StreamErrors, ${r.failures.length} failures, ` +
        `largest single allocation ${(r.maxAlloc / 1048576).toFixed(2)} MiB, max RSS ${r.maxRssMiB} MiB, ` +
        `chunking-invariance checked on all, decode→encode→decode on ${r.roundTripped} (writer refused ${r.writerRefused}), ${(r.ms / 1000).toFixed(1)} s`);
    }
    if (level === 'both' || level === 'dump') {
      const r = await fuzzDumpDiff({ corpus, seed, runs: dumpRuns, firstRun, dir: scratch.dir, log });
      failures.push(...r.failures);
      console.log(`dump differential (progs --dump vs our reader): ${r.runs} mutants, ${r.agreeAccept} both accept, ${r.agreeReject} both reject, ` +
        `${[...r.stricter.values()].reduce((a, b) => a + b, 0)} only we reject, ${r.expectedLenient} only progs rejects (stream v3 or path > PATH_MAX), ${r.failures.length} failures, ${(r.ms / 1000).toFixed(1)} s`);
      for (const [k, n] of [...r.stricter].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${String(n).padStart(5)} × only we reject: ${k}`);
    }
    if (level === 'both' || level === 'seq') {
      const r = await fuzzSequences({ mnt: scratch.mnt, seed, runs: seqRuns, firstRun, log });
      failures.push(...r.failures);
      console.log(`sequences (valid random commands, btrfs-ts vs progs): ${r.runs} streams, ${r.commands} commands, ${r.bothOk} received by both, ` +
        `${r.bothFailed} refused by both, ${r.cloneFallbacks} clone fallbacks (progs stops, btrfs-ts copies), ${r.progsCreat} MKFILE over an existing name (btrfs-ts EEXIST, progs truncates), ${r.judgedFiles} files checked ` +
        `against the model (progs wrong on ${r.progsWrong}), ${r.failures.length} failures, ${(r.ms / 1000).toFixed(1)} s`);
    }
    if (level === 'both' || level === 'receive') {
      const r = await fuzzReceive({ fs: scratch, corpus, seed, runs: receiveRuns, firstRun, receiver, log });
      failures.push(...r.failures);
      console.log(`receive (${receiver}): ${r.runs} mutants, ${r.succeeded} received, ${r.cleanErrors} clean errors, ` +
        `${r.failures.length} failures, ${(r.ms / 1000).toFixed(1)} s`);
      const kinds = [...r.errorKinds].sort((a, b) => b[1] - a[1]).slice(0, 15);
      for (const [k, n] of kinds) console.log(`  ${String(n).padStart(5)} × ${k}`);
    }
  } finally {
    scratch.cleanup();
  }
  for (const f of failures.slice(0, 20)) {
    console.log(`FAILED seed ${f.seed} run ${f.run} (${f.kind}): ${f.message.slice(0, 400)}`);
    console.log(`  mutations: ${f.ops.join('; ').slice(0, 400)}`);
    console.log(`  replay: npm run fuzz -- --seed ${f.seed} --first-run ${f.run} --runs 1 --dump-runs 1 --seq-runs 1 --receive-runs 1${f.input ? `   (input saved: ${f.input})` : ''}`);
  }
  console.log(`fuzz summary: ${failures.length} failure(s)`);
  return failures.length ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`ERROR: ${(err as Error).message}`);
  process.exit(1);
});
