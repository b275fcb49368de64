// The reader must give the same records whatever the chunking of its input.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { PassThrough, Readable } from 'node:stream';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { readStream, type StreamRecord } from '../src/stream/reader.js';
import { buildStream, chunksOf, readAll, readError } from './helpers/stream-builder.js';
import { arbCommand, comparable, sampleCommands } from './helpers/stream-samples.js';

const summary = (recs: StreamRecord[]) => comparable(recs.map((r) => ({ ...r })));

/** Two concatenated streams (v1 then v2) holding every command kind. */
const input = Buffer.concat([buildStream(1, sampleCommands(1)), buildStream(2, sampleCommands(2))]);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-chunking-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('chunking', () => {
  let reference: unknown;
  beforeAll(async () => {
    reference = summary(await readAll(Readable.from([input])));
  });

  it('reference read sees both streams', () => {
    expect((reference as { stream: number }[]).filter((r) => r.stream === 1).length).toBe(sampleCommands(2).length);
  });

  it('1-byte chunks', async () => {
    expect(summary(await readAll(chunksOf(input, [1])))).toEqual(reference);
  });

  it('chunks that split every header at every position (sizes 1..17)', async () => {
    for (let s = 2; s <= 17; s++) expect(summary(await readAll(chunksOf(input, [s, 1, s + 3])))).toEqual(reference);
  });

  it('random split points (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 70000 }), { minLength: 1, maxLength: 30 }),
      async (sizes) => {
        expect(summary(await readAll(chunksOf(input, sizes)))).toEqual(reference);
      }), { numRuns: 100 });
  });

  it('Readable (PassThrough with small writes), file path, fd and a pipe fd give the same records', async () => {
    const pt = new PassThrough();
    (async () => {
      for (let p = 0; p < input.length; p += 333) {
        pt.write(input.subarray(p, p + 333));
        await new Promise((r) => setImmediate(r));
      }
      pt.end();
    })();
    expect(summary(await readAll(pt))).toEqual(reference);

    const file = join(dir, 'in.bin');
    writeFileSync(file, input);
    expect(summary(await readAll(file))).toEqual(reference);
    const fd = openSync(file, 'r');
    try {
      expect(summary(await readAll(fd))).toEqual(reference);
    } finally {
      closeSync(fd);
    }

    // A real pipe, written slowly by another process (short reads of whatever is there).
    const child = spawn('sh', ['-c', `head -c 5000 "${file}"; sleep 0.2; tail -c +5001 "${file}"`], { stdio: ['ignore', 'pipe', 'inherit'] });
    expect(summary(await readAll(child.stdout))).toEqual(reference);
  });

  it('a pipe fd is read (through a dup) with the same records, kept buffers stay valid, and the fd stays open', async () => {
    // 4 MiB of distinct 128 KiB writes: every command spans several 64 KiB pipe reads.
    const writes = Array.from({ length: 32 }, (_, i) => ({
      cmd: 'write' as const, path: Buffer.from(`f${i}`), offset: i * 131072, data: Buffer.alloc(131072, i + 1),
    }));
    const big = Buffer.concat([input, buildStream(2, writes)]);
    const file = join(dir, 'pipe-src.bin');
    writeFileSync(file, big);
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `cat "${file}" > "${fifo}"`], { stdio: 'inherit' });
    const fd = openSync(fifo, 'r'); // blocks until the writer opens the other end
    try {
      const recs = await readAll(fd);
      expect(summary(recs.slice(0, (reference as unknown[]).length))).toEqual(reference);
      expect(comparable(recs.slice((reference as unknown[]).length, -1).map((r) => r.command))).toEqual(comparable(writes));
      expect(fstatSync(fd).isFIFO()).toBe(true);
      // The fd is still blocking: libuv's O_NONBLOCK on the shared open file was undone.
      const { libc } = await import('../src/sys/libc.js');
      const fcntl = libc.func('fcntl', 'int', ['int', 'int', 'int']) as (fd: number, cmd: number, arg: number) => number;
      expect(fcntl(fd, 3 /* F_GETFL */, 0) & 0o4000 /* O_NONBLOCK */).toBe(0);
      // Its buffer was grown from the default 64 KiB, so that the writer blocks less often.
      expect(fcntl(fd, 1032 /* F_GETPIPE_SZ */, 0)).toBe(1 << 20);
    } finally {
      closeSync(fd);
      // The writer may have exited (and said so) already.
      await new Promise((r) => (writer.exitCode !== null || writer.signalCode !== null ? r(null) : writer.once('exit', r)));
    }
  });

  it('reuseBuffers gives the same records when each one is used before the next is asked for', async () => {
    const file = join(dir, 'reuse.bin');
    const writes = Array.from({ length: 40 }, (_, i) => ({
      cmd: 'write' as const, path: Buffer.from(`f${i}`), offset: 0, data: Buffer.alloc(100000 + i, i + 1),
    }));
    const big = Buffer.concat([input, buildStream(3, writes)]);
    writeFileSync(file, big);
    const expected = summary(await readAll(Readable.from([big])));
    for (const src of [() => file, () => chunksOf(big, [65536]), () => chunksOf(big, [5, 300000])]) {
      const seen: unknown[] = [];
      // Summarize (copy out) each record before asking for the next one.
      for await (const r of readStream(src(), { reuseBuffers: true })) seen.push(...(summary([r]) as unknown[]));
      expect(seen).toEqual(expected);
    }
  });

  it('arbitrary command streams read the same under arbitrary chunking (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }).chain((v) => fc.tuple(fc.constant(v), fc.array(arbCommand(v), { maxLength: 8 }))),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 10 }),
      async ([v, cmds], sizes) => {
        const bytes = buildStream(v, cmds);
        const whole = summary(await readAll(Readable.from([bytes])));
        expect(summary(await readAll(chunksOf(bytes, sizes)))).toEqual(whole);
      }), { numRuns: 100 });
  });

  it('a truncated stream gives the same error whatever the chunking', async () => {
    const cut = input.subarray(0, input.length - 7);
    const whole = await readError(Readable.from([cut]));
    for (const sizes of [[1], [3, 5000], [64 * 1024]]) {
      const e = await readError(chunksOf(cut, sizes));
      expect(e.message).toBe(whole.message);
      expect(e.offset).toBe(whole.offset);
    }
  });
});
