// Send's blocking calls on libuv's pool (native/blocking-calls.c through src/sys/send-ioctl.ts): the
// errno is the call's own, the pipe copy moves every byte by splice and by read/write where splice is
// refused (an O_APPEND file), keeps the progress count, names the failing system call; and the worker
// thread fallback (BTRFS_TS_NO_NATIVE_CALLS=1) sends the same bytes as the native path and btrfs-progs.
// In CI (CI=true) the module must have been built (`npm ci` runs scripts/build-native.sh); elsewhere the
// native tests are skipped with the reason printed when it is missing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, constants as fsConstants } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLOCKING_CALLS_MODULE_PATH, blockingCalls } from '../src/sys/blocking-calls.js';
import { copyPipeOffThread, ioctlOffThread, makePipe } from '../src/sys/send-ioctl.js';
import { SysError } from '../src/sys/libc.js';
import { send } from '../src/send/send.js';
import { PassThrough } from 'node:stream';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';

const native = blockingCalls();
if (!native) {
  const why = `${BLOCKING_CALLS_MODULE_PATH} ${existsSync(BLOCKING_CALLS_MODULE_PATH) ? 'does not load' : 'not built'}`;
  if (process.env.CI) throw new Error(`native blocking calls not available (${why}): scripts/build-native.sh must build it in CI`);
  console.warn(`skipping the native blocking-call tests: ${why}`);
}

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-blocking-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A pipe holding `data` with its write end closed (at most 64 KiB: the pipe's default capacity). */
function filledPipe(data: Buffer): number {
  const [readEnd, writeEnd] = makePipe();
  writeSync(writeEnd, data);
  closeSync(writeEnd);
  return readEnd;
}

describe.skipIf(!native)('native blocking calls', () => {
  it('an ioctl that fails reports its own errno (EBADF for a closed fd, ENOTTY for a regular file)', async () => {
    const args = Buffer.from(new SharedArrayBuffer(72));
    await expect(ioctlOffThread(987654, 0x40489426, args, 'BTRFS_IOC_SEND', '/x')).rejects.toMatchObject({ errno: 9 });
    const fd = openSync(join(dir, 'plain'), 'w');
    try {
      const err = await ioctlOffThread(fd, 0x40489426, args, 'BTRFS_IOC_SEND', '/plain').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SysError);
      expect((err as SysError).errno).toBe(25);
      expect((err as SysError).message).toContain('BTRFS_IOC_SEND');
    } finally {
      closeSync(fd);
    }
  });

  it('copies a pipe to a file with splice, and to an O_APPEND file with read/write, counting progress', async () => {
    const data = randomBytes(60_000);
    for (const flags of [fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND]) {
      const path = join(dir, `out-${flags}`);
      rmSync(path, { force: true });
      const out = openSync(path, flags, 0o600);
      const readEnd = filledPipe(data);
      const progress = new Float64Array(new SharedArrayBuffer(8));
      try {
        expect((await copyPipeOffThread(readEnd, out, 16384, { progress })).bytes).toBe(data.length);
      } finally {
        closeSync(readEnd);
        closeSync(out);
      }
      expect(progress[0]).toBe(data.length);
      expect(readFileSync(path).equals(data)).toBe(true);
    }
  });

  it('a paced copy takes a steady writer\'s output in a few transfers, not one per write, every byte in order', async () => {
    // 3000 lines written one write(2) each by a shell loop: an eager reader is woken for nearly every one.
    const lines = 3000;
    const copyLines = async (paceMaxMicros: number): Promise<{ text: string; transfers: number; ms: number }> => {
      const [readEnd, writeEnd] = makePipe();
      const path = join(dir, `paced-${paceMaxMicros}`);
      const out = openSync(path, 'w');
      const writer = spawn('sh', ['-c', `i=0; while [ $i -lt ${lines} ]; do echo $i; i=$((i+1)); done`],
        { stdio: ['ignore', writeEnd, 'inherit'] });
      closeSync(writeEnd); // the writer holds its own copy: EOF when it exits
      try {
        const started = performance.now();
        const copied = await copyPipeOffThread(readEnd, out, 65536, { paceMaxMicros });
        const ms = performance.now() - started;
        await new Promise((resolve) => (writer.exitCode !== null ? resolve(null) : writer.once('exit', resolve)));
        expect(writer.exitCode).toBe(0);
        const text = readFileSync(path, 'utf8');
        expect(copied.bytes).toBe(Buffer.byteLength(text));
        return { text, transfers: copied.transfers, ms };
      } finally {
        closeSync(readEnd);
        closeSync(out);
      }
    };
    const expected = Array.from({ length: lines }, (_, i) => `${i}\n`).join('');
    const paced = await copyLines(2000);
    const eager = await copyLines(0);
    expect(paced.text).toBe(expected);
    expect(eager.text).toBe(expected);
    console.log(`3000 writes: ${paced.transfers} transfers paced (${paced.ms.toFixed(0)} ms), ${eager.transfers} unpaced`);
    expect(paced.transfers).toBeGreaterThan(0);
    // 14 KiB never fills a quarter of the 64 KiB pipe, so every transfer but the last is followed by a nap
    // until a quarter should be there: the full 2 ms at a shell loop's rate (≥ 1 ms below 16 MB/s), however
    // fast or slow the writer is. (Naps skipped for the few bytes written meanwhile made 343 once.)
    expect(paced.transfers).toBeLessThanOrEqual(Math.ceil(paced.ms) + 2);
  });

  it('a copy whose output fails names the system call and its errno', async () => {
    const readEnd = filledPipe(Buffer.alloc(1000, 7));
    const readOnly = openSync(join(dir, 'plain'), 'r');
    try {
      const err = await copyPipeOffThread(readEnd, readOnly, 4096).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SysError);
      expect((err as SysError).errno).toBe(9); // EBADF: not open for writing
      expect((err as SysError).message).toContain('splice');
    } finally {
      closeSync(readEnd);
      closeSync(readOnly);
    }
  });
});

const ok = requireBtrfs();
describe.skipIf(!ok)('send through the worker-thread fallback', () => {
  let fs: Btrfs;
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 512, mountOptions: 'compress-force=zstd' });
    for (let i = 0; i < 40; i++) spawnSync('bash', ['-c', `head -c ${i * 7919} /usr/bin/bash > '${fs.mnt}/f${i}'`]);
    run('btrfs', ['subvolume', 'snapshot', '-r', fs.mnt, `${fs.mnt}/snap`]);
  });
  afterAll(() => fs?.cleanup());

  it('sends the same bytes with BTRFS_TS_NO_NATIVE_CALLS=1 as natively and as btrfs-progs', () => {
    const digest = (cmd: string, env: NodeJS.ProcessEnv = {}): string => {
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', `${cmd} --compressed-data '${fs.mnt}/snap' | sha256sum`],
        { encoding: 'utf8', env: { ...process.env, ...env } });
      expect(r.status).toBe(0);
      return r.stdout.split(' ')[0]!;
    };
    const progs = digest('btrfs send -q');
    expect(progs).toMatch(/^[0-9a-f]{64}$/);
    expect(digest(`${process.execPath} bin/btrfs-ts.js send -q`)).toBe(progs);
    expect(digest(`${process.execPath} bin/btrfs-ts.js send -q`, { BTRFS_TS_NO_NATIVE_CALLS: '1' })).toBe(progs);
    expect(createHash('sha256').update('').digest('hex')).not.toBe(progs); // the stream was not empty
  });

  it('six sends into Node streams at once all finish, with the same bytes as progs', async () => {
    const progs = createHash('sha256').update(run('btrfs', ['send', '-q', `${fs.mnt}/snap`])).digest('hex');
    const sendOnce = async (): Promise<string> => {
      const pipe = new PassThrough();
      const hash = createHash('sha256');
      pipe.on('data', (chunk: Buffer) => hash.update(chunk));
      const ended = new Promise((resolve) => pipe.on('end', resolve));
      await send({ subvolumes: [`${fs.mnt}/snap`], cloneSources: [], noData: false, compressedData: false, omitEnd: false,
        verbosity: 0, output: pipe, log: () => {} });
      pipe.end();
      await ended;
      return hash.digest('hex');
    };
    // More sends than libuv's pool has threads: each send's ioctl and copy must not wait for a pool thread.
    const digests = await Promise.all(Array.from({ length: 6 }, sendOnce));
    expect(digests).toEqual(Array(6).fill(progs));
  }, 60_000);
});
