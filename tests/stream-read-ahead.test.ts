// The native read-ahead window for regular files (native/read-ahead.c + src/stream/read-ahead-window.ts),
// used by --dump: the bytes it shows are the file's bytes whatever the sizes asked for (commands that
// cross pieces, wrap around the ring, or do not fit it at all), the fd is left just past what was
// consumed (`-e`), the readers are joined however the dump ends, and a read error is reported as one.
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
