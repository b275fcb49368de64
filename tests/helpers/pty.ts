// Run a command on a real terminal: a private tmux server (own socket, no config), a window of a fixed
// size, everything the program writes to the terminal logged raw (pipe-pane), and the final screen.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PtyResult {
  /** Exit status of the command. */
  status: number;
  /** Everything written to the terminal, escapes and \r included. */
  raw: string;
  /** The visible screen at the end (trailing blank lines removed). */
  screen: string[];
}

export function haveTmux(): boolean {
  return spawnSync('tmux', ['-V']).status === 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Run `command` (a shell command line) in a `columns` x `rows` tmux window and wait for it to end
 * (at most `timeoutMs`). Redirections inside `command` work as in sh.
 */
export async function runInPty(
  command: string, opts: { columns?: number; rows?: number; timeoutMs?: number; cwd?: string } = {},
): Promise<PtyResult> {
  const dir = mkdtempSync('/tmp/btrfs-ts-pty-');
  const socket = `btrfs-ts-test-${process.pid}-${Date.now()}`;
  const tmux = (...args: string[]): string =>
    execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8', cwd: opts.cwd });
  const go = join(dir, 'go');
  const done = join(dir, 'status');
  const log = join(dir, 'raw');
  const script = join(dir, 'run.sh');
  // Wait for the log to be attached before running, so the first frame is captured too.
  writeFileSync(script, `while [ ! -e '${go}' ]; do sleep 0.02; done\n${command}\necho $? > '${done}.tmp'; mv '${done}.tmp' '${done}'\nsleep 600\n`);
  try {
    tmux('new-session', '-d', '-s', 't', '-x', String(opts.columns ?? 120), '-y', String(opts.rows ?? 30), `sh '${script}'`);
    tmux('pipe-pane', '-t', 't', `cat > '${log}'`);
    writeFileSync(go, '');
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    while (!existsSync(done)) {
      if (Date.now() > deadline) throw new Error(`pty command did not finish in time: ${command}`);
      await sleep(50);
    }
    await sleep(200); // let pipe-pane flush
    const screen = tmux('capture-pane', '-p', '-t', 't').replace(/\n+$/, '').split('\n').map((l) => l.trimEnd());
    return { status: Number(readFileSync(done, 'utf8').trim()), raw: existsSync(log) ? readFileSync(log, 'latin1') : '', screen };
  } finally {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The successive states of the last terminal line in a raw log: each redraw ("\r" + erase) starts a new one. */
export function frames(raw: string): string[] {
  return raw.split(/\r\x1b\[K|\r?\n/).map((f) => f.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')).filter((f) => f.trim() !== '');
}
