// The native read-ahead window for regular files (native/read-ahead.c + src/stream/read-ahead-window.ts),
// used by --dump: the bytes it shows are the file's bytes whatever the sizes asked for (commands that
// cross pieces, wrap around the ring, or do not fit it at all), the fd is left just past what was
// consumed (`-e`), the readers are joined however the dump ends, and a read error is reported as one.
// Its reader thread also checks frames' CRC32C (native/frame-check.c): it must never vouch for a bad
// frame, whatever the ring's shape, so that the parser, which skips those checks, misses no corruption.
// In CI (CI=true) the module must have been built (`npm ci` runs scripts/build-native.sh); elsewhere the
// tests are skipped with the reason printed when it is missing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_RING, READ_AHEAD_MODULE_PATH, openReadAheadWindow, readAheadAvailable, type RingGeometry,
} from '../src/stream/read-ahead-window.js';
import type { ByteWindow } from '../src/stream/byte-reader.js';
import { dumpStream } from '../src/dump/dump.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';
import { FrameParser, FRAME } from '../src/stream/frame-parser.js';
import { StreamError } from '../src/stream/errors.js';

const available = readAheadAvailable();
if (!available) {
  const why = `native read-ahead not available (${READ_AHEAD_MODULE_PATH}${existsSync(READ_AHEAD_MODULE_PATH) ? ' does not load' : ' not built'})`;
  if (process.env.CI) throw new Error(`${why}: scripts/build-native.sh must build it in CI`);
  console.warn(`skipping read-ahead tests: ${why}`);
}

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-read-ahead-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Tiny rings, so that a few KiB of file cross pieces, wrap, and overflow the carry room. */
const SMALL_RINGS: RingGeometry[] = [
  { slots: 2, slotBytes: 16, carryRoom: 8, readers: 1 },
  { slots: 3, slotBytes: 100, carryRoom: 64, readers: 2 },
  { slots: 8, slotBytes: 512, carryRoom: 300, readers: 1 },
];

interface Step { want: number; consume: number }

/**
 * Drive a window the way the frame parser does: ask for `want` bytes, check them against the file,
 * consume some; then drain. Returns the bytes consumed and whether the window reported the end.
 */
async function drive(w: ByteWindow, file: Buffer, steps: Step[]): Promise<number> {
  let consumed = 0;
  for (const step of steps) {
    const ok = await w.ensure(step.want);
    const have = w.end - w.pos;
    expect(ok).toBe(file.length - consumed >= step.want);
    if (!ok) expect(have).toBe(file.length - consumed); // at the end the window holds all that was left
    expect(Buffer.compare(w.buf.subarray(w.pos, w.end), file.subarray(consumed, consumed + have))).toBe(0);
    const take = Math.min(step.consume, have);
    w.pos += take;
    consumed += take;
  }
  return consumed;
}

describe.skipIf(!available)('native read-ahead window', () => {
  it('shows exactly the file\'s bytes for any sizes asked, on rings of every shape (property)', async () => {
    const stepArb = fc.record({ want: fc.integer({ min: 1, max: 2000 }), consume: fc.integer({ min: 0, max: 2000 }) });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 6000 }), fc.array(stepArb, { maxLength: 40 }), fc.nat(SMALL_RINGS.length - 1),
        async (size, steps, which) => {
          const file = randomBytes(size);
          const path = join(dir, 'prop.bin');
          writeFileSync(path, file);
          const fd = openSync(path, 'r');
          try {
            const w = openReadAheadWindow(fd, SMALL_RINGS[which])!;
            const consumed = await drive(w, file, [...steps, { want: size + 1, consume: size }]);
            await w.release();
            expect(consumed).toBe(size); // the final step drained the file
          } finally {
            closeSync(fd);
          }
        }),
      { numRuns: 150 },
    );
  });

  it('starts at the fd\'s position and leaves the fd just past what was consumed (-e)', async () => {
    const file = randomBytes(5000);
    const path = join(dir, 'position.bin');
    writeFileSync(path, file);
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(123);
      readSync(fd, head, 0, 123, null); // somebody read the first 123 bytes before us
      const w = openReadAheadWindow(fd, SMALL_RINGS[2])!;
      const consumed = await drive(w, file.subarray(123), [{ want: 700, consume: 650 }, { want: 2000, consume: 1000 }]);
      expect(w.end - w.pos).toBeGreaterThan(0); // read ahead of what was consumed
      await w.release();
      const next = Buffer.alloc(10);
      readSync(fd, next, 0, 10, null);
      expect(next).toEqual(file.subarray(123 + consumed, 123 + consumed + 10));
    } finally {
      closeSync(fd);
    }
  });

  it('ends at a file whose size is exactly a whole ring, and at an empty file', async () => {
    const ring = SMALL_RINGS[1]!;
    for (const size of [0, ring.slots * ring.slotBytes, 2 * ring.slots * ring.slotBytes]) {
      const file = randomBytes(size);
      const path = join(dir, `exact-${size}.bin`);
      writeFileSync(path, file);
      const fd = openSync(path, 'r');
      try {
        const w = openReadAheadWindow(fd, ring)!;
        const steps = Array.from({ length: Math.ceil(size / 50) + 1 }, () => ({ want: 50, consume: 50 }));
        expect(await drive(w, file, steps)).toBe(size);
        expect(await w.ensure(1)).toBe(false);
        await w.release();
      } finally {
        closeSync(fd);
      }
    }
  });

  it('dumps a stream the same as synchronous reads, with commands larger than the default carry room', async () => {
    const parts = [encodeStreamHeader(2), encodeCommand({ cmd: 'subvol', path: Buffer.from('s'), uuid: Buffer.alloc(16, 1), ctransid: 5 }, 2)];
    const sizes = [0, 100, 48 << 10, DEFAULT_RING.carryRoom - 5, DEFAULT_RING.carryRoom + 7, 3 << 20];
    for (let i = 0; i < 60; i++) {
      parts.push(encodeCommand({ cmd: 'write', path: Buffer.from(`f${i}`), offset: i * 4096, data: Buffer.alloc(sizes[i % sizes.length]!, i) }, 2));
      parts.push(encodeCommand({ cmd: 'chmod', path: Buffer.from(`f${i}`), mode: 0o600 + i }, 2));
    }
    parts.push(encodeCommand({ cmd: 'end' }, 2));
    const path = join(dir, 'big.stream');
    writeFileSync(path, Buffer.concat(parts));
    const dumpWith = async (env: string | undefined): Promise<string> => {
      const result = spawnSync(process.execPath, ['bin/btrfs-ts.js', 'receive', '--dump', '-f', path], {
        env: { ...process.env, BTRFS_TS_NO_READ_AHEAD: env }, encoding: 'utf8', maxBuffer: 64 << 20,
      });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      return result.stdout;
    };
    const chunks: Buffer[] = [];
    const fd = openSync(path, 'r');
    try {
      await dumpStream({ input: fd, output: (c) => chunks.push(Buffer.from(c)) });
    } finally {
      closeSync(fd);
    }
    const withReadAhead = await dumpWith(undefined);
    expect(withReadAhead.split('\n').filter((l) => l.startsWith('write')).length).toBe(60);
    expect(withReadAhead).toBe(await dumpWith('1'));
    expect(Buffer.concat(chunks).toString('utf8')).toBe(withReadAhead);
  });

  it('reports a read error as one line naming it, and exits 1', () => {
    const strace = spawnSync('strace', ['-V']);
    if (strace.status !== 0) {
      if (process.env.CI) throw new Error('strace is needed for the read-error test');
      console.warn('skipping the read-error test: strace not found');
      return;
    }
    const path = join(dir, 'eio.stream');
    const parts = [encodeStreamHeader(1)];
    for (let i = 0; i < 200; i++) parts.push(encodeCommand({ cmd: 'write', path: Buffer.from('f'), offset: i * 65536, data: Buffer.alloc(60000, i) }, 1));
    parts.push(encodeCommand({ cmd: 'end' }, 1));
    writeFileSync(path, Buffer.concat(parts));
    // The fifth pread of the process fails with EIO (the reader thread or the parser may be the one).
    const result = spawnSync('strace', ['-f', '-o', '/dev/null', '-e', 'inject=pread64:error=EIO:when=5',
      process.execPath, 'bin/btrfs-ts.js', 'receive', '--dump', '-f', path], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ERROR: cannot read .*eio\.stream: Input\/output error$/);
  });
});

/** A stream of `sizes.length` writes (bodies of about those sizes) and END; with the end offset of each frame. */
function streamOf(sizes: number[], version = 1): { bytes: Buffer; frameEnds: number[] } {
  const parts = [encodeStreamHeader(version)];
  for (const [i, size] of sizes.entries()) {
    parts.push(encodeCommand({ cmd: 'write', path: Buffer.from(`f${i}`), offset: i, data: Buffer.alloc(size, i) }, version));
  }
  parts.push(encodeCommand({ cmd: 'end' }, version));
  const frameEnds: number[] = [];
  let at = 0;
  for (const part of parts) frameEnds.push((at += part.length));
  return { bytes: Buffer.concat(parts), frameEnds: frameEnds.slice(1) };
}

/** Read a file through a window like the parser, in `step`-byte bites; every crcCheckedThrough seen. */
async function checkedOffsets(path: string, ring: RingGeometry, step: number): Promise<number[]> {
  const fd = openSync(path, 'r');
  const seen: number[] = [];
  try {
    const w = openReadAheadWindow(fd, ring)!;
    while (await w.ensure(step)) {
      w.pos += step;
      seen.push(w.crcCheckedThrough!);
    }
    seen.push(w.crcCheckedThrough!);
    await w.release();
  } finally {
    closeSync(fd);
  }
  return seen;
}

describe.skipIf(!available)('frame CRCs checked by the read-ahead thread', () => {

  it('vouches for every frame of a good stream, and only ever for whole frames, read in order', async () => {
    const { bytes, frameEnds } = streamOf([0, 5, 300, 17, 4000, 1, 2, 900]);
    const path = join(dir, 'good.stream');
    writeFileSync(path, bytes);
    for (const ring of [...SMALL_RINGS, DEFAULT_RING]) {
      for (const step of [1, 7, 64]) {
        const seen = await checkedOffsets(path, ring, step);
        expect(seen.at(-1)).toBe(bytes.length);
        for (const [i, offset] of seen.entries()) {
          expect(offset === 0 || offset === 17 || frameEnds.includes(offset)).toBe(true);
          if (i > 0) expect(offset).toBeGreaterThanOrEqual(seen[i - 1]!);
        }
      }
    }
  });

  it('never vouches for a frame with a flipped bit, nor for any frame after it (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 12 }), fc.nat(), fc.nat(7),
        fc.nat(SMALL_RINGS.length - 1), fc.constantFrom(1, 2),
        async (sizes, where, bit, which, version) => {
          const { bytes, frameEnds } = streamOf(sizes, version);
          const at = 17 + (where % (bytes.length - 17)); // any byte of any frame, headers included
          bytes[at]! ^= 1 << bit;
          const path = join(dir, 'flipped.stream');
          writeFileSync(path, bytes);
          const frameStart = [17, ...frameEnds].filter((end) => end <= at).at(-1)!;
          const seen = await checkedOffsets(path, SMALL_RINGS[which]!, 13);
          expect(Math.max(...seen)).toBe(frameStart);
        }),
      { numRuns: 200 },
    );
  });

  it('stops at the first END: the frames of a second stream are left to the parser', async () => {
    const first = streamOf([10, 20]);
    const second = streamOf([30]);
    const path = join(dir, 'two.stream');
    writeFileSync(path, Buffer.concat([first.bytes, second.bytes]));
    const seen = await checkedOffsets(path, SMALL_RINGS[2]!, 5);
    expect(seen.at(-1)).toBe(first.bytes.length);
  });

  it('vouches for every frame with two readers too, which may read pieces out of order', async () => {
    const { bytes } = streamOf([100, 200, 300]);
    const path = join(dir, 'two-readers.stream');
    writeFileSync(path, bytes);
    for (const readers of [2, 4]) {
      const seen = await checkedOffsets(path, { slots: 5, slotBytes: 40, carryRoom: 32, readers }, 9);
      expect(seen.at(-1)).toBe(bytes.length);
    }
  });

  it('the parser skips the check only for frames the window vouched for', () => {
    const { bytes, frameEnds } = streamOf([50, 60]);
    bytes[frameEnds[0]! + 12]! ^= 0xff; // inside the second write
    const parse = (checkedThrough: number): number => {
      const parser = new FrameParser();
      const w = { buf: bytes, pos: 0, end: bytes.length, crcCheckedThrough: checkedThrough };
      let frames = 0;
      while (parser.next(w) === FRAME) if (++frames === 4) break;
      return frames;
    };
    expect(parse(frameEnds[1]!)).toBe(3); // vouched for: no check, all three frames come out
    expect(() => parse(frameEnds[1]! - 1)).toThrow(StreamError);
    expect(() => parse(frameEnds[1]! - 1)).toThrow(/bad CRC32C in command #2 \(write\)/);
  });

  it('a corrupt stream dumps the same output and error as without the read-ahead thread', async () => {
    const { bytes } = streamOf(Array.from({ length: 40 }, (_, i) => (i * 7919) % 3000), 2);
    for (const at of [20, 500, 1234, 30_000, bytes.length - 3]) {
      const bad = Buffer.from(bytes);
      bad[at]! ^= 0x10;
      const path = join(dir, 'corrupt.stream');
      writeFileSync(path, bad);
      const dump = async (input: number | AsyncIterable<Uint8Array>): Promise<{ out: string; error: string }> => {
        const chunks: Buffer[] = [];
        let error = '';
        try {
          await dumpStream({ input, output: (c) => chunks.push(Buffer.from(c)) });
        } catch (err) {
          error = (err as Error).message;
        }
        return { out: Buffer.concat(chunks).toString('latin1'), error };
      };
      const fd = openSync(path, 'r');
      let viaThread;
      try {
        viaThread = await dump(fd);
      } finally {
        closeSync(fd);
      }
      const inMemory = await dump((async function* () { yield bad; })());
      expect(viaThread.error).toMatch(/bad CRC32C|command too large/);
      expect(viaThread).toEqual(inMemory);
    }
  });
});
