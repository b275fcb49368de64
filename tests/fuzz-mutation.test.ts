// Bounded mutation fuzzing inside `npm test` (the long runs: `npm run fuzz -- --runs N`).
//  - reader level: mutants of real streams (v1/v2, full/incremental) read in random chunks in a worker:
//    only StreamError escapes, no hang, no allocation beyond the command limit, the same verdict
//    whatever the chunking, and decode→encode→decode gives the same commands;
//  - differential parser check: whatever `btrfs receive --dump` rejects, our reader rejects too;
//  - sequences: valid random command streams (a namespace model drives them, so they reach every
//    handler) received by btrfs-ts and btrfs-progs: same outcome, same tree, contents as modelled;
//  - receive level: mutants received by the CLI beside a canary tree: exit 0 or one clean ERROR
//    line, no hang, nothing outside DEST changes. A self-test shows the canary check catches
//    btrfs-progs escaping through '..' (so a silent pass means something).
// Replay a failure: npm run fuzz -- --seed S --first-run I --runs 1 --dump-runs 1 --receive-runs 1
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { requireBtrfs } from './helpers/btrfs.js';
import { makeLoopFs, type LoopFs } from '../src/lab/loop-btrfs.js';
import { fuzzDumpDiff, fuzzReader, fuzzReceive, makeCorpus } from '../src/soak/fuzz.js';
import { hostileMutant } from '../src/soak/mutate.js';
import { fuzzSequences } from '../src/soak/seq-fuzz.js';
import { BTRFS_TS, REPO_ROOT } from '../src/soak/soak.js';

const ok = requireBtrfs();
const SEED = 2024;
const show = (f: { seed: number; run: number; kind: string; message: string; ops: string[] }): string =>
  `seed ${f.seed} run ${f.run} ${f.kind}: ${f.message.slice(0, 300)} [${f.ops.join('; ').slice(0, 300)}]`;

describe.skipIf(!ok)('mutation fuzzing', () => {
  let scratch: LoopFs;
  let corpus: Buffer[];

  beforeAll(() => {
    scratch = makeLoopFs('fuzztest', { sizeMiB: 1024, mountOptions: ['noatime'] });
    corpus = makeCorpus(scratch.mnt, SEED);
  });
  afterAll(() => scratch?.cleanup());

  it('the compiled worker and CLI exist (npm test builds them)', () => {
    expect(existsSync(`${REPO_ROOT}/dist/soak/fuzz-reader-worker.js`)).toBe(true);
    expect(existsSync(BTRFS_TS)).toBe(true);
    expect(corpus.length).toBe(4);
  });

  it('reader: 2500 mutants — only StreamError, no hang, bounded allocation, chunking-invariant, round-trips', async () => {
    const r = await fuzzReader({ corpus, seed: SEED, runs: 2500, hangMs: 15_000 });
    expect(r.failures.map(show)).toEqual([]);
    expect(r.runs).toBe(2500);
    // Both outcomes are exercised: some mutants decode fully, most are refused.
    expect(r.ok).toBeGreaterThan(100);
    expect(r.streamErrors).toBeGreaterThan(1000);
    expect(r.roundTripped).toBeGreaterThan(1000);
    expect(r.maxAlloc).toBeLessThanOrEqual(16 * 1024 * 1024 + 2 * 1024 * 1024);
    expect(r.maxRssMiB).toBeLessThan(1024);
  }, 120_000);

  it('parser differential: 400 mutants — never more lenient than btrfs receive --dump; a file dumps as the same bytes from memory', async () => {
    const r = await fuzzDumpDiff({ corpus, seed: SEED, runs: 400, dir: scratch.dir });
    expect(r.failures.map(show)).toEqual([]);
    expect(r.agreeAccept + r.agreeReject).toBeGreaterThan(300);
  }, 120_000);

  it('receive: 100 mutants through the CLI — clean exit, no hang, nothing outside DEST touched', async () => {
    const r = await fuzzReceive({ fs: scratch, corpus, seed: SEED, runs: 100, timeoutMs: 30_000 });
    expect(r.failures.map(show)).toEqual([]);
    expect(r.runs).toBe(100);
    expect(r.cleanErrors).toBeGreaterThan(50);
  }, 150_000);

  it('sequences: 80 valid random command streams — btrfs-ts agrees with progs and with the content model', async () => {
    const r = await fuzzSequences({ mnt: scratch.mnt, seed: SEED, runs: 80 });
    expect(r.failures.map(show)).toEqual([]);
    expect(r.bothOk).toBeGreaterThan(10);
    expect(r.judgedFiles).toBeGreaterThan(100);
  }, 120_000);

  it('every hostile sequence is contained by btrfs-ts (8 kinds: .., absolute, symlinks, clone, NUL)', async () => {
    const r = await fuzzReceive({
      fs: scratch, corpus, seed: SEED, runs: 8, firstRun: 10_000,
      mutant: (run, ctx) => hostileMutant(corpus[0]!, run - 10_000, ctx),
    });
    expect(r.failures.map(show)).toEqual([]);
  }, 120_000);

  it('self-test: the canary check catches btrfs-progs following ".." out of DEST', async () => {
    const r = await fuzzReceive({
      fs: scratch, corpus, seed: SEED, runs: 1, firstRun: 20_000, receiver: 'progs',
      mutant: (_run, ctx) => hostileMutant(corpus[0]!, 0, ctx),
    });
    expect(r.failures.map((f) => f.kind)).toContain('escape');
  }, 60_000);
});
