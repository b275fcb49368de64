// Faults on the receiving side, through the real CLI: SIGKILL of the receiver mid-stream, the sender
// dying mid-stream (EOF inside a header, a command, before END), ENOSPC on a tiny filesystem, EIO
// injected into system calls (strace fault injection; device-mapper is not available in this kernel).
// Each must end with exit 1 and one clean `ERROR:` line, within a time limit, leaving no subvolume
// read-only or marked received — and the filesystem usable afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { collectTree, diffTrees } from '../src/lab/compare-trees.js';
import { seededBytes } from './helpers/populate.js';
import { btrfsTs, errorLine, finalizedSubvols, uncleanFailure, type ProcResult } from '../src/soak/fault-check.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { splitStream } from '../src/soak/stream-edit.js';
import { BTRFS_TS } from '../src/soak/soak.js';

const ok = requireBtrfs();
const MiB = 1024 * 1024;
const HAVE_STRACE = spawnSync('sh', ['-c', 'command -v strace']).status === 0;

/** Offsets of every command header in a stream file (for cuts at exact places). */
function commandOffsets(bytes: Buffer): { offset: number; cmd: number; len: number }[] {
  const s = splitStream(bytes);
  const out: { offset: number; cmd: number; len: number }[] = [];
  let p = 17;
  for (const c of s.commands) {
    out.push({ offset: p, cmd: c.cmd, len: c.body.length });
    p += 10 + c.body.length;
  }
  return out;
}

function expectCleanFailure(r: ProcResult, pattern?: RegExp): void {
  expect(uncleanFailure(r) ?? 'clean').toBe('clean');
  if (pattern) expect(errorLine(r)).toMatch(pattern);
}

describe.skipIf(!ok)('receive faults', () => {
  let src: Btrfs;
  let dst: Btrfs;
  let full: string; // v1 full stream of snap0 (~48 MiB)
  let incr: string; // v1 incremental snap0 -> snap1
  let fullV2: string; // v2 --compressed-data full stream of snap0

  beforeAll(() => {
    src = makeBtrfs({ sizeMiB: 1024, mountOptions: 'compress-force=zstd' });
    dst = makeBtrfs({ sizeMiB: 1024 });
    const vol = join(src.mnt, 'vol');
    run('btrfs', ['subvolume', 'create', vol]);
    fs.writeFileSync(join(vol, 'big.bin'), seededBytes(40 * MiB, 7));
    fs.writeFileSync(join(vol, 'text.txt'), Buffer.from('compressible line of text\n'.repeat(300_000)));
    fs.mkdirSync(join(vol, 'd'));
    for (let i = 0; i < 200; i++) fs.writeFileSync(join(vol, 'd', `f${i}`), `file ${i}\n`);
    run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, 'snap0')]);
    fs.appendFileSync(join(vol, 'big.bin'), seededBytes(MiB, 8));
    fs.renameSync(join(vol, 'd'), join(vol, 'd2'));
    run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(src.mnt, 'snap1')]);
    full = join(src.mnt, '..', 'full.v1');
    incr = join(src.mnt, '..', 'incr.v1');
    fullV2 = join(src.mnt, '..', 'full.v2');
    run('btrfs', ['send', '-q', '--proto', '1', '-f', full, join(src.mnt, 'snap0')]);
    run('btrfs', ['send', '-q', '--proto', '1', '-f', incr, '-p', join(src.mnt, 'snap0'), join(src.mnt, 'snap1')]);
    run('btrfs', ['send', '-q', '--proto', '2', '--compressed-data', '-f', fullV2, join(src.mnt, 'snap0')]);
  });
  afterAll(() => {
    dst?.cleanup();
    src?.cleanup();
  });

  const freshDest = (name: string): string => {
    const d = join(dst.mnt, name);
    fs.mkdirSync(d);
    return d;
  };

  it('the CLI exists (npm test builds it)', () => {
    expect(fs.existsSync(BTRFS_TS)).toBe(true);
  });

  it('SIGKILL of the receiver mid-stream: partial subvolume stays writable and unreceived; fs usable', async () => {
    const dest = freshDest('killed');
    const r = await btrfsTs(['receive', dest], { input: full, killAfter: 20 * MiB, timeoutMs: 60_000 });
    expect(r.signal).toBe('SIGKILL');
    expect(r.timedOut).toBe(false);
    const part = join(dest, 'snap0');
    expect(fs.existsSync(part)).toBe(true);
    const info = subvolInfo(part);
    expect(info.receivedUuid).toBe('-');
    expect(info.readonly).toBe(false);
    // The partial copy must not serve as a parent: an incremental on top of it is refused cleanly.
    const r2 = await btrfsTs(['receive', '-f', incr, dest], { timeoutMs: 60_000 });
    expectCleanFailure(r2, /parent/i);
    // Receiving the same stream again into the same place fails cleanly (the name exists).
    const r3 = await btrfsTs(['receive', '-f', full, dest], { timeoutMs: 60_000 });
    expectCleanFailure(r3);
    expect(finalizedSubvols(dst.mnt, (p) => p.includes('/killed/'))).toEqual([]);
    // The filesystem is fine: a complete receive elsewhere works and matches the source.
    const good = freshDest('after-kill');
    const r4 = await btrfsTs(['receive', '-f', full, good], { timeoutMs: 120_000 });
    expect(r4.code, r4.stderr).toBe(0);
    expect(diffTrees(collectTree(join(good, 'snap0')), collectTree(join(src.mnt, 'snap0')), { ignoreRootTimes: true })).toEqual([]);
    expect(subvolInfo(join(good, 'snap0')).readonly).toBe(true);
  });

  it('the sender dies mid-stream: EOF at every kind of place gives one clean error', async () => {
    const bytes = fs.readFileSync(full);
    const cmds = commandOffsets(bytes);
    const firstWrite = cmds.find((c) => c.cmd === 15 && c.len > 1000)!;
    const end = cmds[cmds.length - 1]!;
    expect(end.cmd).toBe(21);
    const cuts: [string, number, RegExp][] = [
      ['nothing at all', 0, /empty|no stream header|end of stream/i],
      ['inside the stream header', 9, /end of stream|header/i],
      ['after the header, before any command', 17, /end of stream/i],
      ['inside a command header', cmds[1]!.offset + 4, /end of stream/i],
      ['inside a WRITE body', firstWrite.offset + 10 + 100, /end of stream.*write|write.*end of stream/i],
      ['at a command boundary mid-stream', cmds[Math.floor(cmds.length / 2)]!.offset, /end of stream/i],
      ['just before END (END missing)', end.offset, /end of stream|END/],
      ['inside END', end.offset + 3, /end of stream/i],
    ];
    for (const [what, cut, pattern] of cuts) {
      const dest = freshDest(`cut-${cut}`);
      const r = await btrfsTs(['receive', dest], { input: full, limit: cut, timeoutMs: 120_000 });
      const problem = uncleanFailure(r);
      expect(problem ?? 'clean', `${what} (cut at byte ${cut})`).toBe('clean');
      expect(errorLine(r), what).toMatch(pattern);
      expect(finalizedSubvols(dst.mnt, (p) => p.includes(`/cut-${cut}/`)), what).toEqual([]);
    }
  });

  it('EOF with -E 0 (never stop on errors) is still fatal: exit 1, no endless retry', async () => {
    const bytes = fs.readFileSync(full);
    const cut = commandOffsets(bytes)[5]!.offset + 5;
    const dest = freshDest('cut-E0');
    const r = await btrfsTs(['receive', '-E', '0', dest], { input: full, limit: cut, timeoutMs: 60_000 });
    expectCleanFailure(r, /end of stream/i);
    expect(finalizedSubvols(dst.mnt, (p) => p.includes('/cut-E0/'))).toEqual([]);
  });

  it('EOF with --delete-on-failure: clean error and the partial subvolume is gone', async () => {
    const bytes = fs.readFileSync(full);
    const cut = commandOffsets(bytes)[40]!.offset + 12;
    const dest = freshDest('cut-delete');
    const r = await btrfsTs(['receive', '--delete-on-failure', dest], { input: full, limit: cut, timeoutMs: 60_000 });
    expectCleanFailure(r, /end of stream/i);
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  it('a real sender SIGKILLed mid-stream (btrfs send | btrfs-ts receive): clean EOF error', async () => {
    const dest = freshDest('sender-killed');
    const sender = spawn('btrfs', ['send', '-q', join(src.mnt, 'snap0')], { stdio: ['ignore', 'pipe', 'ignore'] });
    const receiver = spawn(process.execPath, [BTRFS_TS, 'receive', dest], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    receiver.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    receiver.stdin.on('error', () => {});
    let relayed = 0;
    sender.stdout.on('data', (d: Buffer) => {
      if (relayed >= 10 * MiB) return;
      relayed += d.length;
      receiver.stdin.write(d);
      if (relayed >= 10 * MiB) {
        sender.kill('SIGKILL');
        receiver.stdin.end();
      }
    });
    const timer = setTimeout(() => receiver.kill('SIGKILL'), 60_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((res) => receiver.on('close', (c, s) => res([c, s])));
    clearTimeout(timer);
    const r: ProcResult = { code, signal: signal as NodeJS.Signals | null, stdout: '', stderr, timedOut: signal === 'SIGKILL', ms: 0 };
    expectCleanFailure(r, /end of stream/i);
    expect(finalizedSubvols(dst.mnt, (p) => p.includes('/sender-killed/'))).toEqual([]);
  });

  it('ENOSPC: a 120 MiB filesystem receiving a 300 MiB stream fails cleanly (v1, v2, v2 encoded)', async () => {
    const tiny = makeBtrfs({ sizeMiB: 120 });
    const bigSrc = makeBtrfs({ sizeMiB: 1024 });
    try {
      const vol = join(bigSrc.mnt, 'vol');
      run('btrfs', ['subvolume', 'create', vol]);
      for (let i = 0; i < 6; i++) fs.writeFileSync(join(vol, `chunk${i}.bin`), seededBytes(50 * MiB, 100 + i));
      run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(bigSrc.mnt, 'snap')]);
      for (const proto of [1, 2]) {
        const stream = join(bigSrc.mnt, '..', `big.v${proto}`);
        run('btrfs', ['send', '-q', '--proto', String(proto), ...(proto === 2 ? ['--compressed-data'] : []), '-f', stream, join(bigSrc.mnt, 'snap')]);
        expect(fs.statSync(stream).size).toBeGreaterThan(300 * MiB);
        const dest = join(tiny.mnt, `v${proto}`);
        fs.mkdirSync(dest);
        const r = await btrfsTs(['receive', '-f', stream, dest], { timeoutMs: 170_000 });
        fs.rmSync(stream);
        expectCleanFailure(r, /No space left|ENOSPC/);
        expect(finalizedSubvols(tiny.mnt)).toEqual([]);
        // Free the space for the next round (the partial subvolume is writable, so deletable).
        run('btrfs', ['subvolume', 'delete', join(dest, 'snap')]);
        run('btrfs', ['filesystem', 'sync', tiny.mnt]);
      }
      // ENOSPC inside BTRFS_IOC_ENCODED_WRITE: ~125 MiB of compressed extents (half-entropy data
      // under compress-force) do not fit either; the receive must not loop on a fallback.
      run('mount', ['-o', 'remount,compress-force=zstd', bigSrc.mnt]);
      const vol2 = join(bigSrc.mnt, 'vol2');
      run('btrfs', ['subvolume', 'create', vol2]);
      for (let i = 0; i < 5; i++) {
        const b = seededBytes(50 * MiB, 200 + i);
        for (let j = 0; j < b.length; j++) b[j] = b[j]! & 0x0f;
        fs.writeFileSync(join(vol2, `half${i}.bin`), b);
      }
      run('btrfs', ['subvolume', 'snapshot', '-r', vol2, join(bigSrc.mnt, 'snap2')]);
      const stream = join(bigSrc.mnt, '..', 'encoded.v2');
      run('btrfs', ['send', '-q', '--proto', '2', '--compressed-data', '-f', stream, join(bigSrc.mnt, 'snap2')]);
      const size = fs.statSync(stream).size;
      expect(size).toBeGreaterThan(120 * MiB);
      expect(size).toBeLessThan(200 * MiB); // really compressed: encoded writes, not plain ones
      const dest = join(tiny.mnt, 'encoded');
      fs.mkdirSync(dest);
      const r = await btrfsTs(['receive', '-f', stream, dest], { timeoutMs: 170_000 });
      expectCleanFailure(r, /No space left|ENOSPC/);
      expect(finalizedSubvols(tiny.mnt)).toEqual([]);
    } finally {
      tiny.cleanup();
      bigSrc.cleanup();
    }
  }, 170_000);

  // EIO (and other errnos) injected into the receiver's system calls with strace's fault injection:
  // device-mapper (dm-error / dm-flakey) is not built into this kernel, so it cannot fail a block write.
  describe.skipIf(!HAVE_STRACE)('errors injected into system calls (strace -e inject)', () => {
    const cases: [string, string, string, number, string[]][] = [
      ['EIO in the 30th pwrite (v1 data)', 'pwrite64', 'EIO', 30, ['-f', 'FULL']],
      ['EIO in the 5th pwrite (v2 stream, decompressed)', 'pwrite64', 'EIO', 5, ['--force-decompress', '-f', 'FULLV2']],
      // Most new inodes are created at their final name (no rename): an EIO there is the create's
      // failure and must not be retried the other way round.
      // Counted from the receive's first call on its destination: node's start-up opens files too, and how
      // many depends on how the program is loaded (one bundled file or many modules).
      ['EIO in the 60th create (open/mkdir)', 'openat,mkdirat', 'EIO', 60, ['-f', 'FULL']],
      ['EIO in the 100th utimensat', 'utimensat', 'EIO', 100, ['-f', 'FULL']],
      ['ENOSPC in the 10th mkdir/mknod/open', 'mkdirat,mknodat,openat', 'ENOSPC', 10, ['-f', 'FULL']],
    ];

    /** How many of `syscalls` a clean receive makes before its first one on its destination (start-up). */
    const startupCalls = (syscalls: string, args: string[]): number => {
      const probe = freshDest(`probe-${syscalls.replace(/,/g, '-')}`);
      const trace = join(dst.mnt, '..', `trace-${syscalls.replace(/,/g, '-')}`);
      const p = spawnSync('strace', ['-f', '-qq', '-o', trace, '-e', `trace=${syscalls}`, process.execPath, BTRFS_TS, 'receive', ...args, probe],
        { timeout: 120_000 });
      expect(p.status).toBe(0);
      const name = new RegExp(`\\b(${syscalls.replace(/,/g, '|')})\\(`);
      const calls = fs.readFileSync(trace, 'utf8').split('\n').filter((l) => name.test(l) && !/resumed>/.test(l));
      const first = calls.findIndex((l) => l.includes(probe));
      expect(first).toBeGreaterThan(0);
      return first;
    };

    for (const [what, syscalls, errno, nth, args] of cases) {
      it(what, async () => {
        const dest = freshDest(`inject-${syscalls.replace(/,/g, '-')}-${nth}`);
        const realArgs = args.map((a) => (a === 'FULL' ? full : a === 'FULLV2' ? fullV2 : a));
        const when = (syscalls.includes('openat') ? startupCalls(syscalls, realArgs) : 0) + nth;
        const r = await new Promise<ProcResult>((res) => {
          const child = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', `trace=${syscalls}`, '-e',
            `inject=${syscalls}:error=${errno}:when=${when}`, process.execPath, BTRFS_TS, 'receive', ...realArgs, dest],
          { stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
          child.on('close', (code, signal) => {
            clearTimeout(timer);
            res({ code, signal, stdout: '', stderr, timedOut: signal === 'SIGKILL', ms: 0 });
          });
        });
        const pattern = errno === 'EIO' ? /Input\/output error|EIO/ : /No space left|ENOSPC/;
        expectCleanFailure(r, pattern);
        expect(finalizedSubvols(dst.mnt, (p) => p.startsWith(dest))).toEqual([]);
      });
    }

    it('EIO from BTRFS_IOC_ENCODED_WRITE (the encoded-io test seam) fails cleanly, no silent fallback', async () => {
      const dest = freshDest('inject-encoded');
      const r = await btrfsTs(['receive', '-f', fullV2, dest], {
        timeoutMs: 120_000, env: { ...process.env, BTRFS_TS_ENCODED_WRITE_FAULT: 'EIO' },
      });
      expectCleanFailure(r, /Input\/output error|EIO/);
      expect(finalizedSubvols(dst.mnt, (p) => p.startsWith(dest))).toEqual([]);
    });

    // The finalization ioctls: find their position in a clean run, then fail exactly that call.
    // When making the subvolume read-only fails AFTER SET_RECEIVED_SUBVOL succeeded, finalization
    // clears the received UUID again (btrfs-progs leaves it, so the writable subvolume could be chosen
    // as a parent later).
    for (const target of ['BTRFS_IOC_SET_RECEIVED_SUBVOL', 'BTRFS_IOC_SUBVOL_SETFLAGS'] as const) {
      it(`EIO in ${target} (finalization) fails cleanly and leaves the subvolume unreceived`, async () => {
        const probe = freshDest(`probe-${target}`);
        const trace = join(dst.mnt, '..', `trace-${target}`);
        const p = spawnSync('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=ioctl', process.execPath, BTRFS_TS, 'receive', '-f', full, probe], { timeout: 120_000 });
        expect(p.status).toBe(0);
        const calls = fs.readFileSync(trace, 'utf8').split('\n').filter((l) => /\bioctl\(/.test(l) && !/resumed>/.test(l));
        const index = calls.findIndex((l) => l.includes(target)) + 1;
        expect(index).toBeGreaterThan(0);
        const dest = freshDest(`inject-${target}`);
        const r = await new Promise<ProcResult>((res) => {
          const child = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=ioctl', '-e', `inject=ioctl:error=EIO:when=${index}`,
            process.execPath, BTRFS_TS, 'receive', '-f', full, dest], { stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
          child.on('close', (code, signal) => {
            clearTimeout(timer);
            res({ code, signal, stdout: '', stderr, timedOut: signal === 'SIGKILL', ms: 0 });
          });
        });
        expectCleanFailure(r, /Input\/output error|EIO/);
        expect(finalizedSubvols(dst.mnt, (q) => q.startsWith(dest))).toEqual([]);
      });
    }
  });
});
