// Worker for the reader-level fuzz: regenerates each mutant from (seed, run), feeds it to readStream
// in random chunks and reports how it ended. Buffer allocations are tracked (the reader must never
// allocate beyond its command limit); the parent thread kills this worker if a run stops reporting.
import { parentPort, workerData } from 'node:worker_threads';
import { readStream } from '../stream/reader.js';
import { StreamError } from '../stream/errors.js';
import { Rng } from './prng.js';
import { mutateStream } from './mutate.js';
import { runRng } from './fuzz-common.js';

interface Job {
  corpus: Uint8Array[];
  seed: number;
  start: number;
  end: number;
  maxCommandSize: number;
}

export interface ReaderRunResult {
  run: number;
  outcome: 'ok' | 'stream-error' | 'bad-error';
  commands: number;
  message: string;
  maxAlloc: number;
  rssMiB: number;
  ops: string[];
  ms: number;
}

// Track the largest single Buffer allocation made while a run is being read.
let tracking = false;
let maxAlloc = 0;
const note = (n: unknown): void => {
  if (tracking && typeof n === 'number' && n > maxAlloc) maxAlloc = n;
};
for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
  const orig = Buffer[name].bind(Buffer) as (...a: unknown[]) => Buffer;
  (Buffer as unknown as Record<string, unknown>)[name] = (...args: unknown[]): Buffer => {
    note(args[0]);
    return orig(...args);
  };
}
const origConcat = Buffer.concat.bind(Buffer);
Buffer.concat = ((list: readonly Uint8Array[], total?: number): Buffer => {
  note(total ?? list.reduce((n, b) => n + b.length, 0));
  return origConcat(list, total);
}) as typeof Buffer.concat;

async function* chunks(bytes: Buffer, rng: Rng): AsyncGenerator<Uint8Array> {
  let p = 0;
  const style = rng.int(3);
  while (p < bytes.length) {
    const n = style === 0 ? bytes.length : style === 1 ? rng.range(1, 64) : rng.range(1, 200_000);
    yield bytes.subarray(p, p + n);
    p += n;
  }
}

async function one(job: Job, corpus: Buffer[], run: number): Promise<ReaderRunResult> {
  const t0 = Date.now();
  const rng = runRng(job.seed, run);
  const mutant = mutateStream(corpus, rng.fork());
  const opts = {
    maxCommandSize: rng.chance(0.8) ? job.maxCommandSize : undefined,
    stopAtFirstEnd: rng.chance(0.3),
    skipUnknownCommands: rng.chance(0.3),
  };
  let commands = 0;
  maxAlloc = 0;
  tracking = true;
  const result = (outcome: ReaderRunResult['outcome'], message: string): ReaderRunResult => ({
    run, outcome, commands, message, maxAlloc, rssMiB: Math.round(process.memoryUsage().rss / 1048576), ops: mutant.ops, ms: Date.now() - t0,
  });
  try {
    for await (const rec of readStream(chunks(mutant.bytes, rng.fork()), opts)) {
      commands++;
      if (!rec.command || typeof rec.index !== 'number') throw new Error('malformed record');
    }
    return result('ok', '');
  } catch (err) {
    if (err instanceof StreamError && !err.message.includes('\n') && err.message.length > 0) return result('stream-error', err.message);
    const e = err as Error;
    return result('bad-error', `${e?.name}: ${e?.message} ${(e?.stack ?? '').split('\n').slice(1, 4).join(' ')}`);
  } finally {
    tracking = false;
  }
}

const job = workerData as Job;
const corpus = job.corpus.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength));
for (let run = job.start; run < job.end; run++) {
  parentPort!.postMessage({ started: run });
  parentPort!.postMessage(await one(job, corpus, run));
}
