// Pipes are read into the window's own two buffers (src/stream/pipe-window.ts), not into a fresh chunk per
// read: the same records as from the file whatever the writer's pace and the command sizes, the same
// error for a cut stream, and a peak RSS that does not grow with the stream (`send | receive` is the
// main way btrfs-ts is used; the Socket's chunks took a 1 GiB dump from a pipe to 75-78 MiB).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { readStream } from '../src/stream/reader.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';
import { bigWriteStream, EDGE_SIZES, hashRecord, recordsDigest } from './helpers/big-write-stream.js';

const bin = resolve(__dirname, '..', 'bin', 'btrfs-ts.js');
let dir: string;
beforeAll(() => { dir = mkdtempSync(join('/dev/shm', 'btrfs-ts-pipe-window-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Also a WRITE just over 512 KiB: a command that fills a whole buffer's read area and more. */
const SIZES = [...EDGE_SIZES.filter((n) => n !== (1 << 20) + 5), (512 << 10) + 9];
const bigStream = (seed: number): Buffer => bigWriteStream(seed, SIZES, 100);
const digest = recordsDigest;

/**
 * Runs `fn` on the read end of a FIFO that a shell script fills from `file` (the script gets the file
 * as $1): short reads of whatever is there, pauses, and a reader faster or slower than the writer.
 */
async function throughFifo<T>(file: string, script: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fifo = join(dir, `fifo-${Math.random().toString(36).slice(2)}`);
  spawnSync('mkfifo', [fifo]);
  const writer = spawn('sh', ['-c', `{ ${script}; } > "${fifo}"`, 'sh', file], { stdio: 'inherit' });
  const fd = openSync(fifo, 'r'); // blocks until the writer opens the other end
  try {
    return await fn(fd);
  } finally {
    closeSync(fd);
    await new Promise((r) => (writer.exitCode !== null || writer.signalCode !== null ? r(null) : writer.once('exit', r)));
    rmSync(fifo, { force: true });
  }
}

describe('pipe window', () => {
  // 30 s: a window that stops reading while the parser waits would hang here, not pass.
  it('gives the records of the file, in reuse mode and not, whatever the writer does', { timeout: 30_000 }, async () => {
    const file = join(dir, 'big.stream');
    writeFileSync(file, Buffer.concat([bigStream(1), bigStream(2)]));
    const reference = await digest(file, {});
    const writers = [
      'cat "$1"', // as fast as it goes: full 1 MiB pipe reads
      'head -c 70001 "$1"; sleep 0.1; tail -c +70002 "$1" | head -c 3000000; sleep 0.1; tail -c +3070002 "$1"', // stalls mid-command
      'dd if="$1" bs=4093 status=none', // odd-sized writes: reads that end off a page
    ];
    for (const script of writers) {
      expect(await throughFifo(file, script, (fd) => digest(fd, { reuseBuffers: true }))).toBe(reference);
      expect(await throughFifo(file, script, (fd) => digest(fd, {}))).toBe(reference);
    }
  });

  it('kept records stay intact without reuseBuffers (every buffer handed out is left alone)', async () => {
    const file = join(dir, 'keep.stream');
    const bytes = bigStream(3);
    writeFileSync(file, bytes);
    const kept = await throughFifo(file, 'cat "$1"', async (fd) => {
      const all = [];
      for await (const r of readStream(fd, {})) all.push(r);
      return all;
    });
    const h = createHash('sha256');
    for (const r of kept) hashRecord(h, r);
    expect(h.digest('hex')).toBe(await digest(file, {}));
  });

  it('a stream cut inside a command fails with the same error as from the file', async () => {
    const file = join(dir, 'cut.stream');
    const bytes = bigStream(4);
    writeFileSync(file, bytes.subarray(0, bytes.length - 100_000));
    const failure = async (source: string | number): Promise<string> => {
      try {
        await digest(source, { reuseBuffers: true });
        return 'no error';
      } catch (err) {
        return (err as Error).message;
      }
    };
    const expected = await failure(file);
    expect(expected).toMatch(/unexpected end of stream/);
    expect(await throughFifo(file, 'cat "$1"', failure)).toBe(expected);
  });

  it('--dump from a pipe prints what it prints from the file, with the exit status of the end', () => {
    const file = join(dir, 'dump.stream');
    writeFileSync(file, Buffer.concat([bigStream(5), bigStream(6)]));
    const fromFile = spawnSync(bin, ['receive', '--dump', '-f', file], { maxBuffer: 64 << 20 });
    const fromPipe = spawnSync('sh', ['-c', `cat "${file}" | "${bin}" receive --dump`], { maxBuffer: 64 << 20 });
    expect(fromFile.status).toBe(0);
    expect(fromPipe.status).toBe(0);
    expect(fromPipe.stdout.length).toBeGreaterThan(10_000);
    expect(fromPipe.stdout.equals(fromFile.stdout)).toBe(true);
  });

  it('reading 768 MiB from a pipe keeps the peak RSS of --dump under 64 MiB', () => {
    // 768 MiB of 120 KiB WRITEs, the same commands over and over (the dump does not care).
    const file = join(dir, 'long.stream');
    const block = Buffer.concat(Array.from({ length: 8 }, (_, i) =>
      encodeCommand({ cmd: 'write', path: Buffer.from(`dir/file${i}`), offset: i * 122880, data: Buffer.alloc(122880, i) }, 2)));
    const fd = openSync(file, 'w');
    try {
      writeSync(fd, encodeStreamHeader(2));
      writeSync(fd, encodeCommand({ cmd: 'subvol', path: Buffer.from('s'), uuid: Buffer.alloc(16, 2), ctransid: 9 }, 2));
      for (let written = 0; written < 768 << 20; written += block.length) writeSync(fd, block);
      writeSync(fd, encodeCommand({ cmd: 'end' }, 2));
    } finally {
      closeSync(fd);
    }
    const run = spawnSync('sh', ['-c', `cat "${file}" | /usr/bin/time -f 'peak %M KiB' "${bin}" receive --dump > /dev/null`], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const peakKiB = Number(/peak (\d+) KiB/.exec(run.stderr)?.[1]);
    expect(peakKiB).toBeGreaterThan(10_000);
    expect(peakKiB).toBeLessThan(64 * 1024);
  }, 60_000);
});
