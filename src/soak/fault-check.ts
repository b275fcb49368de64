// Shared by the fault tests: run the CLI with a hard timeout (stdin from a file, a pipe with a byte
// budget, or a feeder function), and the end-state checks every fault must satisfy: exit 1, one clean
// `ERROR:` line, and no subvolume left read-only or carrying a received UUID.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { badExit } from './fuzz.js';
import { listSubvols, subvolInfo } from '../lab/loop-btrfs.js';
import { BTRFS_TS } from './soak.js';

export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/**
 * Spawn `cmd args`; stdin gets the bytes of `input` (file path) up to `limit` bytes, then is closed
 * (or, with `killAfter`, the child is SIGKILLed once that many bytes were written). Never hangs:
 * SIGKILL after `timeoutMs`.
 */
export function runWithInput(cmd: string, args: string[], opts: {
  input?: string;
  limit?: number;
  killAfter?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}): Promise<ProcResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    child.stdin.on('error', () => {}); // EPIPE when the child dies first: expected here
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - t0 });
    });
    if (!opts.input) {
      child.stdin.end();
      return;
    }
    const fd = fs.openSync(opts.input, 'r');
    const limit = opts.limit ?? Infinity;
    const buf = Buffer.alloc(256 * 1024);
    let sent = 0;
    const pump = (): void => {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) break;
        if (opts.killAfter !== undefined && sent >= opts.killAfter) {
          child.kill('SIGKILL');
          break;
        }
        const want = Math.min(buf.length, limit - sent, opts.killAfter !== undefined ? opts.killAfter - sent : Infinity);
        const n = want > 0 ? fs.readSync(fd, buf, 0, want, sent) : 0;
        if (n <= 0) {
          child.stdin.end();
          break;
        }
        sent += n;
        if (!child.stdin.write(Buffer.from(buf.subarray(0, n)))) {
          child.stdin.once('drain', pump);
          return;
        }
      }
      fs.closeSync(fd);
    };
    pump();
  });
}

/** `node bin/btrfs-ts.js ARGS` with the given input handling. */
export function btrfsTs(args: string[], opts: Parameters<typeof runWithInput>[2] = {}): Promise<ProcResult> {
  return runWithInput(process.execPath, [BTRFS_TS, ...args], opts);
}

/** Why a failed run is not "exit 1 with exactly one clean ERROR line", or undefined. */
export function uncleanFailure(r: ProcResult): string | undefined {
  if (r.timedOut) return `did not finish within the timeout (${r.ms} ms)`;
  if (r.code !== 1) return `exit status ${r.code ?? r.signal}, expected 1`;
  const bad = badExit(r.code, r.signal, r.stderr);
  if (bad) return bad;
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR'));
  if (errors.length !== 1) return `${errors.length} ERROR lines: ${r.stderr.slice(0, 300)}`;
  return undefined;
}

export function errorLine(r: ProcResult): string {
  return r.stderr.split('\n').find((l) => l.startsWith('ERROR')) ?? '';
}

/** Subvolumes under `mnt` that are read-only or have a received UUID (must be none after a fault). */
export function finalizedSubvols(mnt: string, only?: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const rel of listSubvols(mnt)) {
    const path = `${mnt}/${rel}`;
    if (only && !only(path)) continue;
    const info = subvolInfo(path);
    if (info.readonly || info.receivedUuid !== '-') out.push(`${rel} (received UUID ${info.receivedUuid}, readonly ${info.readonly})`);
  }
  return out;
}
