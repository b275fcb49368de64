// The glue between the command line and the progress line, so the CLI needs only a few lines:
//
//   const p = startProgress({ progress: opts.progress, quiet: opts.quiet, total: inputSize(opts.file) });
//   options.log = p.log; options.onProgress = p.onProgress;
//   const summary = await p.run(() => receive(options));   // on failure the line is removed first
//   p.finish(receiveProgressSummary(summary));               // 100 % and the summary line
import { createReadStream, statSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { createProgress, type Progress, type ProgressStream, type ProgressSummary } from './reporter.js';
import { progressEnabled } from './options.js';
import type { ReceiveSummary } from '../receive/receive.js';

export interface ProgressSetup {
  /** --progress (true) / --no-progress (false) / neither (undefined). */
  progress?: boolean;
  /** -q. */
  quiet?: boolean;
  /** Expected stream bytes (e.g. the -f file's size). */
  total?: number;
  totalIsEstimate?: boolean;
  /** 'received' or 'sent'. */
  verb?: string;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Where messages go when progress is off (default: stderr, one line each). */
  log?: (line: string) => void;
}

export interface CliProgress {
  readonly enabled: boolean;
  readonly progress: Progress;
  /** Message sink for receive()/send(): prints above the progress line. */
  log: (line: string) => void;
  /** For ReceiveOptions.onProgress / SendOptions.onProgress. */
  onProgress: (bytes: number, path?: Buffer) => void;
  /** Run the operation; on failure the progress line is removed before the error is printed. */
  run<T>(operation: () => Promise<T>): Promise<T>;
  /** Draw 100 % and the summary line. */
  finish(summary: Partial<ProgressSummary>): void;
}

/** Size of a regular input file (`-f FILE`), else undefined (stdin, pipes, '-'). */
export function inputSize(file: string | undefined): number | undefined {
  if (file === undefined || file === '-') return undefined;
  try {
    const st = statSync(file);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

export function startProgress(setup: ProgressSetup): CliProgress {
  const stream = setup.stream ?? process.stderr;
  const enabled = progressEnabled({ progress: setup.progress, quiet: setup.quiet, stream });
  const plainLog = setup.log ?? ((line: string) => { process.stderr.write(line + '\n'); });
  const progress = createProgress({
    stream, enabled, verb: setup.verb ?? 'received',
    ...(setup.total !== undefined ? { total: setup.total } : {}),
    ...(setup.totalIsEstimate ? { totalIsEstimate: true } : {}),
  });
  let last = 0;
  return {
    enabled,
    progress,
    log: enabled ? (line) => progress.log(line) : plainLog,
    onProgress: (bytes, path) => {
      last = bytes;
      progress.update(bytes, path);
    },
    async run(operation) {
      try {
        return await operation();
      } catch (e) {
        progress.abort();
        throw e;
      }
    },
    finish(summary) {
      progress.finish({ ...summary, bytes: summary.bytes ?? last });
    },
  };
}

/**
 * An open input fd as a Readable that reports the bytes read so far (for `--dump --progress`, where
 * the dumper has no hook of its own). Only used when progress is shown.
 */
export function countingInput(fd: number, onBytes: (n: number) => void): Readable {
  const source = createReadStream('', { fd, autoClose: fd !== 0 });
  let n = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      onBytes(n);
      done(null, chunk);
    },
  });
  source.on('error', (e) => counter.destroy(e));
  return source.pipe(counter);
}

/** The summary line's counters from a receive() result (compressed extents only when there were some). */
export function receiveProgressSummary(summary: ReceiveSummary): Partial<ProgressSummary> {
  const encoded = summary.encodedExtents ?? 0;
  const decompressed = summary.decompressedExtents ?? 0;
  return {
    commands: summary.commands,
    ...(summary.streamBytes !== undefined ? { bytes: summary.streamBytes } : {}),
    ...(encoded + decompressed > 0 ? { encoded, decompressed } : {}),
  };
}
