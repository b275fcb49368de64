// Worker for the reader-level fuzz: regenerates each mutant from (seed, run), feeds it to readStream
// in random chunks and reports how it ended. Buffer allocations are tracked (the reader must never
// allocate beyond its command limit); the parent thread kills this worker if a run stops reporting.
import { parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { readStream, type ReaderOptions } from '../stream/reader.js';
import { encodeCommand, encodeStreamHeader } from '../stream/writer.js';
import type { Command } from '../stream/commands.js';
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
  outcome: 'ok' | 'stream-error' | 'bad-error' | 'chunking-differs' | 'roundtrip-differs';
  /** Commands the writer refused to re-encode (sender-side policy, e.g. v2 commands in v1). */
  writerRefused: number;
  /** The decode→encode→decode property was checked on this mutant. */
  roundTripped: boolean;
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

/** A stable digest of a decoded command (fields in key order; Buffers hashed as bytes). */
function digest(cmd: Command): string {
  const h = createHash('sha1');
  for (const [k, v] of Object.entries(cmd)) {
    h.update(k);
    if (Buffer.isBuffer(v) || v instanceof Uint8Array) h.update(v);
    else h.update(typeof v === 'object' ? JSON.stringify(v) : String(v));
    h.update('\0');
  }
  return h.digest('hex');
}

interface Pass {
  records: string[];
  error?: string;
  versions: number[];
  streams: number[];
  commands: Command[];
  digests: string[];
}

/** Read everything, remembering each record and how reading ended. */
async function readAll(input: AsyncIterable<Uint8Array>, opts: ReaderOptions, keep: boolean): Promise<Pass> {
  const pass: Pass = { records: [], versions: [], streams: [], commands: [], digests: [] };
  try {
    for await (const rec of readStream(input, opts)) {
      if (!rec.command || typeof rec.index !== 'number') throw new Error('malformed record');
      const d = digest(rec.command);
      pass.records.push(`${rec.index}@${rec.offset}/${rec.stream}v${rec.version}:${d}`);
      pass.digests.push(d);
      if (keep) {
        pass.commands.push(rec.command);
        pass.versions.push(rec.version);
        pass.streams.push(rec.stream);
      }
    }
  } catch (err) {
    if (!(err instanceof StreamError)) throw err;
    pass.error = err.message;
  }
  return pass;
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
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
  let writerRefused = 0;
  let roundTripped = false;
  maxAlloc = 0;
  tracking = true;
  const result = (outcome: ReaderRunResult['outcome'], message: string): ReaderRunResult => ({
    run, outcome, commands, writerRefused, roundTripped, message, maxAlloc, rssMiB: Math.round(process.memoryUsage().rss / 1048576),
    ops: mutant.ops, ms: Date.now() - t0,
  });
  let first: Pass;
  try {
    first = await readAll(chunks(mutant.bytes, rng.fork()), opts, true);
  } catch (err) {
    tracking = false;
    const e = err as Error;
    return result('bad-error', `${e?.name}: ${e?.message} ${(e?.stack ?? '').split('\n').slice(1, 4).join(' ')}`);
  }
  tracking = false;
  commands = first.records.length;
  if (first.error !== undefined && (first.error.includes('\n') || first.error.length === 0)) {
    return result('bad-error', `StreamError message not one line: ${JSON.stringify(first.error)}`);
  }
  // Property: the same records and the same verdict whatever the chunking (here: one whole buffer).
  const second = await readAll(once(mutant.bytes), opts, false);
  if (second.error !== first.error || second.records.join() !== first.records.join()) {
    const i = first.records.findIndex((r, k) => r !== second.records[k]);
    return result('chunking-differs', `chunked: ${first.records.length} records, ${first.error ?? 'ok'}; whole: ${second.records.length} records, ` +
      `${second.error ?? 'ok'}; first differing record #${i}`);
  }
  // Property: the decoded commands, re-encoded by the writer (stream headers where streams began),
  // decode to the same commands.
  const parts: Buffer[] = [];
  try {
    for (let k = 0; k < first.commands.length; k++) {
      if (k === 0 || first.streams[k] !== first.streams[k - 1]) parts.push(encodeStreamHeader(first.versions[k]!));
      parts.push(encodeCommand(first.commands[k]!, first.versions[k]!));
    }
  } catch {
    writerRefused++;
  }
  if (writerRefused === 0 && first.commands.length > 0) {
    roundTripped = true;
    const back = await readAll(once(Buffer.concat(parts)), { ...opts, skipUnknownCommands: false }, false);
    const n = first.digests.length;
    const same = back.digests.length >= n && back.digests.slice(0, n).every((d, k) => d === first.digests[k]);
    if (!same) {
      const k = first.digests.findIndex((d, i) => d !== back.digests[i]);
      return result('roundtrip-differs', `command #${k + 1} (${first.commands[k]?.cmd}) did not survive encode→decode: ${back.error ?? 'different fields'}`);
    }
  }
  return result(first.error === undefined ? 'ok' : 'stream-error', first.error ?? '');
}

const job = workerData as Job;
const corpus = job.corpus.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength));
for (let run = job.start; run < job.end; run++) {
  parentPort!.postMessage({ started: run });
  parentPort!.postMessage(await one(job, corpus, run));
}
