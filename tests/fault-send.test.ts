// Faults on the sending side, through the real CLI: a broken pipe toward a dead receiver (`btrfs-ts
// send | head -c 100000`), a receiver SIGKILLed mid-stream, the sender itself SIGKILLed mid-stream
// (the receiver sees EOF inside a command; the snapshot is not left busy), ENOSPC on the output file.
// Each must end with exit 1 and one clean `ERROR:` line, never hang, and leave nothing finalized.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { seededBytes } from './helpers/populate.js';
import { btrfsTs, errorLine, finalizedSubvols, uncleanFailure, type ProcResult } from '../src/soak/fault-check.js';
import { BTRFS_TS } from '../src/soak/soak.js';

const ok = requireBtrfs();
const MiB = 1024 * 1024;

function expectCleanFailure(r: ProcResult, pattern?: RegExp): void {
  expect(uncleanFailure(r) ?? 'clean').toBe('clean');
  if (pattern) expect(errorLine(r)).toMatch(pattern);
}

/** `bash -c script` with a hard timeout; stderr and the exit status of each pipeline stage. */
function bash(script: string, timeoutMs = 60_000): { stderr: string; status: number | null; timedOut: boolean } {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  return { stderr: r.stderr ?? '', status: r.status, timedOut: r.error !== undefined };
}

/** Pipe `sender` into `receiver`; SIGKILL `victim` after `afterBytes` were relayed. */
async function pipeAndKill(sender: string[], receiver: string[], victim: 'sender' | 'receiver', afterBytes: number): Promise<{ send: ProcResult; recv: ProcResult }> {
  const s = spawn(sender[0]!, sender.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = spawn(receiver[0]!, receiver.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
  const out = { s: '', r: '' };
  s.stderr.on('data', (d: Buffer) => (out.s += d.toString()));
  r.stderr.on('data', (d: Buffer) => (out.r += d.toString()));
  r.stdin.on('error', () => {});
  let relayed = 0;
  let killed = false;
  s.stdout.on('data', (d: Buffer) => {
    if (killed) return;
    relayed += d.length;
    if (!r.stdin.write(d)) {
      s.stdout.pause();
      r.stdin.once('drain', () => s.stdout.resume());
    }
    if (relayed >= afterBytes) {
      killed = true;
      if (victim === 'sender') {
        s.kill('SIGKILL');
        r.stdin.end();
      } else {
        r.kill('SIGKILL');
        s.stdout.resume();
        // Keep draining nothing: the sender now writes into our pipe; close it like a dead reader would.
        s.stdout.destroy();
      }
    }
  });
  s.stdout.on('end', () => r.stdin.end());
  const wait = (p: ReturnType<typeof spawn>, stderr: () => string): Promise<ProcResult> => new Promise((res) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (code, signal) => {
      clearTimeout(t);
      res({ code, signal, stdout: '', stderr: stderr(), timedOut: false, ms: 0 });
    });
  });
  const [send, recv] = await Promise.all([wait(s, () => out.s), wait(r, () => out.r)]);
  return { send, recv };
}

describe.skipIf(!ok)('send faults', () => {
  let src: Btrfs;
  let dst: Btrfs;
  let snap: string;

  beforeAll(() => {
    src = makeBtrfs({ sizeMiB: 1024, mountOptions: 'compress-force=zlib' });
    dst = makeBtrfs({ sizeMiB: 1024 });
    const vol = join(src.mnt, 'vol');
    run('btrfs', ['subvolume', 'create', vol]);
    fs.writeFileSync(join(vol, 'big.bin'), seededBytes(40 * MiB, 11));
    fs.writeFileSync(join(vol, 'text.txt'), Buffer.from('text that compresses well\n'.repeat(200_000)));
    snap = join(src.mnt, 'snap');
    run('btrfs', ['subvolume', 'snapshot', '-r', vol, snap]);
  });
  afterAll(() => {
    dst?.cleanup();
    src?.cleanup();
  });

  it('the CLI exists (npm test builds it)', () => {
    expect(fs.existsSync(BTRFS_TS)).toBe(true);
  });

  for (const extra of [[], ['--proto', '2', '--compressed-data']]) {
    it(`broken pipe toward a dead receiver (send ${extra.join(' ')} | head -c 100000): exit 1, one ERROR line`, () => {
      const r = bash(`node ${BTRFS_TS} send ${extra.join(' ')} ${snap} | head -c 100000 >/dev/null; echo "send-exit=\${PIPESTATUS[0]}" >&2`);
      expect(r.timedOut).toBe(false);
      const exit = /send-exit=(\d+)/.exec(r.stderr)?.[1];
      expect(exit).toBe('1');
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR'));
      expect(errors.length, r.stderr).toBe(1);
      expect(errors[0]).toMatch(/pipe|EPIPE/i);
      expect(r.stderr).not.toMatch(/^\s+at |node:internal/m);
    });
  }

  it('receiver SIGKILLed mid-stream: the sender exits 1 cleanly; nothing finalized', async () => {
    const dest = join(dst.mnt, 'recv-killed');
    fs.mkdirSync(dest);
    const { send, recv } = await pipeAndKill([process.execPath, BTRFS_TS, 'send', snap], [process.execPath, BTRFS_TS, 'receive', dest], 'receiver', 8 * MiB);
    expect(recv.signal).toBe('SIGKILL');
    // node's stdio pipes are socket pairs: a dead reader shows as ECONNRESET rather than EPIPE.
    expectCleanFailure(send, /pipe|EPIPE|reset/i);
    expect(finalizedSubvols(dst.mnt)).toEqual([]);
  });

  it('sender SIGKILLed mid-stream: receiver fails on EOF; the snapshot is not left busy and sends again', async () => {
    const dest = join(dst.mnt, 'send-killed');
    fs.mkdirSync(dest);
    const { send, recv } = await pipeAndKill([process.execPath, BTRFS_TS, 'send', snap], [process.execPath, BTRFS_TS, 'receive', dest], 'sender', 8 * MiB);
    expect(send.signal).toBe('SIGKILL');
    expectCleanFailure(recv, /end of stream/i);
    expect(finalizedSubvols(dst.mnt)).toEqual([]);
    // No send left in progress on the snapshot: a full send works and equals btrfs send's stream.
    const ours = join(src.mnt, '..', 'again.ours');
    const theirs = join(src.mnt, '..', 'again.progs');
    const again = await btrfsTs(['send', '-q', '-f', ours, snap], { timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    run('btrfs', ['send', '-q', '-f', theirs, snap]);
    expect(fs.readFileSync(ours).equals(fs.readFileSync(theirs))).toBe(true);
    fs.rmSync(ours);
    fs.rmSync(theirs);
  });

  it('ENOSPC on the output file (-f on a full filesystem): exit 1, one ERROR line, no hang', async () => {
    const tiny = makeBtrfs({ sizeMiB: 120 });
    try {
      const out = join(tiny.mnt, 'out.stream');
      const r = await btrfsTs(['send', '-f', out, snap], { timeoutMs: 120_000 });
      // The kernel writes the file itself (src/send/direct-file.ts), so the message names the file.
      expectCleanFailure(r);
      expect(errorLine(r)).toBe(`ERROR: failed to write stream to '${out}': No space left on device`);
    } finally {
      tiny.cleanup();
    }
  });

  it('stdout that fails every write (send > /dev/full): exit 1, one ERROR line', () => {
    const r = bash(`node ${BTRFS_TS} send ${snap} >/dev/full; echo "send-exit=$?" >&2`);
    expect(r.timedOut).toBe(false);
    expect(/send-exit=(\d+)/.exec(r.stderr)?.[1]).toBe('1');
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR'));
    expect(errors.length, r.stderr).toBe(1);
    expect(errors[0]).toMatch(/No space left|ENOSPC/);
  });
});
