// The progress line of `send` and `receive`: one line on stderr, redrawn in place, then a summary.
//
//   [ 48%] 123.4 MiB / 256.0 MiB  52.1 MiB/s  elapsed 0:02  ETA 0:03  dir/file.bin
//
// On a terminal the line is redrawn with "\r" + erase-line at most every `intervalMs` (100 ms), and
// once a second while no bytes arrive, so the elapsed time keeps moving. On a non-terminal (progress
// forced into a log file) a plain line is printed every `intervalMs` (default 1 s) instead.
// It never writes to stdout: stdout carries the stream.
import { displayPath, fitEnd, formatBytes, formatDuration, formatRate } from './format.js';

/** What a progress line can be written to: stderr, or a stand-in with the same shape in tests. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Where to draw; normally process.stderr. */
  stream: ProgressStream;
  /** False makes every method a no-op (except `log`, which still prints). */
  enabled: boolean;
  /** Expected number of bytes, when known: shows percent and ETA. */
  total?: number;
  /** The total is an estimate (send): shown as "~256.0 MiB" and the percent stays below 100 until finish. */
  totalIsEstimate?: boolean;
  /** Verb of the summary line: 'received' (default) or 'sent'. */
  verb?: string;
  /** Milliseconds clock; tests pass a fake one. Default: performance.now. */
  now?: () => number;
  /** Minimum time between two redraws. Default 100 ms on a terminal, 1000 ms otherwise. */
  intervalMs?: number;
  /** Redraw this often while idle (terminal only); false = never. Default 1000 ms. */
  tickMs?: number | false;
}

/** Counters for the final line. `encoded`/`decompressed` count ENCODED_WRITE extents, when known. */
export interface ProgressSummary {
  bytes: number;
  /** Commands in the stream, when counted (receive counts them; send does not parse its stream). */
  commands?: number;
  /** Extents written compressed as they came (BTRFS_IOC_ENCODED_WRITE). */
  encoded?: number;
  /** Compressed extents the receiver had to decompress and write as plain data. */
  decompressed?: number;
}

export interface Progress {
  readonly enabled: boolean;
  /** `bytes`: bytes of stream done so far (absolute, not a delta); `currentPath`: what is being worked on. */
  update(bytes: number, currentPath?: Buffer | string): void;
  /** Set or change the expected total (e.g. when a send estimate arrives). */
  setTotal(total: number, estimate?: boolean): void;
  /** Print a message line (e.g. "At subvol x") without tearing the progress line. */
  log(line: string): void;
  /** Draw the final state (100 % when a total is known) and the summary line. Idempotent. */
  finish(summary: ProgressSummary): void;
  /** Remove the progress line without a summary (before an error message is printed). */
  abort(): void;
}

const ERASE_LINE = '\r\x1b[K';
/** Rate is measured over this much recent history, so the ETA follows speed changes. */
const RATE_WINDOW_MS = 5000;

interface Sample { t: number; bytes: number }

export function createProgress(options: ProgressOptions): Progress {
  const { stream } = options;
  const tty = stream.isTTY === true;
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? (tty ? 100 : 1000);
  const verb = options.verb ?? 'received';
  const start = now();
  let total = options.total;
  let estimate = options.totalIsEstimate ?? false;
  let bytes = 0;
  // Kept raw: converting it for display costs, and most updates are not drawn.
  let rawPath: Buffer | string = '';
  let lastDraw = -Infinity;
  let shown = false; // a progress line is on screen (tty) and must be erased before other output
  let done = false;
  const samples: Sample[] = [{ t: start, bytes: 0 }];

  let ticker: ReturnType<typeof setInterval> | undefined;
  if (options.enabled && tty && options.tickMs !== false) {
    ticker = setInterval(() => draw(now()), options.tickMs ?? 1000);
    ticker.unref();
  }

  function rate(t: number): number | undefined {
    const elapsed = t - start;
    if (elapsed < 200) return undefined;
    while (samples.length > 2 && t - samples[1]!.t > RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const span = t - first.t;
    // Early on, or after a long stall, the window may be tiny: fall back to the overall average.
    if (span < 1000) return (bytes * 1000) / elapsed;
    return ((bytes - first.bytes) * 1000) / span;
  }

  function line(t: number, final: boolean): string {
    const r = rate(t);
    const parts: string[] = [];
    let amount = formatBytes(bytes);
    if (total !== undefined && total > 0) {
      let pct = Math.floor((Math.min(bytes, total) * 100) / total);
      if (final) pct = 100;
      else if (estimate && pct >= 100) pct = 99;
      amount = `[${String(pct).padStart(3)}%] ${amount} / ${estimate ? '~' : ''}${formatBytes(total)}`;
    }
    parts.push(amount);
    parts.push(r === undefined ? '-- B/s' : formatRate(r));
    parts.push(`elapsed ${formatDuration((t - start) / 1000)}`);
    if (total !== undefined && total > 0) {
      const remaining = Math.max(0, total - bytes);
      let eta: string;
      if (final || remaining === 0) eta = formatDuration(0);
      else if (r === undefined || r <= 0) eta = '--:--';
      // Rounded up: "ETA 0:00" appears only when everything is done.
      else eta = formatDuration(Math.ceil(remaining / r));
      parts.push(`ETA ${eta}`);
    }
    let text = parts.join('  ');
    const path = rawPath.length === 0 ? '' : displayPath(rawPath);
    if (path !== '' && !final) {
      const columns = tty ? (stream.columns ?? 80) : 0;
      // Leave the last column free: writing into it makes some terminals wrap.
      const room = columns > 0 ? columns - 1 - text.length - 2 : Infinity;
      if (room >= 8) text += '  ' + (Number.isFinite(room) ? fitEnd(path, room) : path);
    }
    return text;
  }

  function draw(t: number, final = false): void {
    if (done && !final) return;
    lastDraw = t;
    const text = line(t, final);
    if (tty) {
      stream.write(ERASE_LINE + text);
      shown = true;
    } else {
      stream.write(text + '\n');
    }
  }

  function erase(): void {
    if (shown) stream.write(ERASE_LINE);
    shown = false;
  }

  if (!options.enabled) {
    return {
      enabled: false,
      update() {},
      setTotal() {},
      log(msg) { stream.write(msg + '\n'); },
      finish() {},
      abort() {},
    };
  }

  return {
    enabled: true,
    update(n, currentPath) {
      if (done) return;
      bytes = n;
      if (currentPath !== undefined) rawPath = currentPath;
      const t = now();
      const last = samples[samples.length - 1]!;
      // One sample per 100 ms is plenty for the rate window.
      if (t - last.t >= 100) samples.push({ t, bytes: n });
      if (t - lastDraw >= interval) draw(t);
    },
    setTotal(n, isEstimate = false) {
      total = n;
      estimate = isEstimate;
    },
    log(msg) {
      const wasShown = shown;
      erase();
      stream.write(msg + '\n');
      // Redraw under the message, but no more often than usual (with -vv every command logs a line).
      const t = now();
      if (wasShown && !done && t - lastDraw >= interval) draw(t);
    },
    finish(summary) {
      if (done) return;
      if (ticker) clearInterval(ticker);
      bytes = summary.bytes;
      const t = now();
      draw(t, true);
      done = true;
      if (tty) stream.write('\n');
      shown = false;
      stream.write(summaryLine(verb, summary, (t - start) / 1000) + '\n');
    },
    abort() {
      if (done) return;
      if (ticker) clearInterval(ticker);
      done = true;
      erase();
    },
  };
}

/** "received 256.0 MiB, 2131 commands in 0:05 (51.2 MiB/s); extents: 100 kept compressed, 3 decompressed" */
export function summaryLine(verb: string, summary: ProgressSummary, seconds: number): string {
  const n = summary.commands;
  const commands = n === undefined ? '' : `, ${n} command${n === 1 ? '' : 's'}`;
  const rate = seconds > 0 ? formatRate(summary.bytes / seconds) : formatRate(summary.bytes);
  let text = `${verb} ${formatBytes(summary.bytes)}${commands} in ${formatDuration(seconds)} (${rate})`;
  if (summary.encoded !== undefined || summary.decompressed !== undefined) {
    text += `; compressed extents: ${summary.encoded ?? 0} kept compressed, ${summary.decompressed ?? 0} decompressed`;
  }
  return text;
}
