// The read-ahead window for regular files (reuseBuffers: receive and --dump): same records as the plain
// reader whatever the command sizes (also larger than its carry room and its chunk), and an fd left
// just past the END with stopAtFirstEnd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStream } from '../src/stream/reader.js';
import { bigWriteStream, recordsDigest } from './helpers/big-write-stream.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-prefetch-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bigStream = (seed: number): Buffer => bigWriteStream(seed);
const digest = recordsDigest;

describe('read-ahead window (reuseBuffers on a regular file)', () => {
  it('gives the records of the plain reader, commands larger than the carry room and the chunk included', async () => {
    const file = join(dir, 'big.stream');
    writeFileSync(file, Buffer.concat([bigStream(1), bigStream(2)]));
    const reference = await digest(file, {});
    expect(await digest(file, { reuseBuffers: true })).toBe(reference);
    const fd = openSync(file, 'r');
    try {
      expect(await digest(fd, { reuseBuffers: true })).toBe(reference);
    } finally {
      closeSync(fd);
    }
  });

  it('with stopAtFirstEnd leaves the fd just past the first END', async () => {
    const first = bigStream(3);
    const second = bigStream(4);
    const file = join(dir, 'two.stream');
    writeFileSync(file, Buffer.concat([first, second]));
    const fd = openSync(file, 'r');
    try {
      let n = 0;
      for await (const r of readStream(fd, { reuseBuffers: true, stopAtFirstEnd: true })) {
        n++;
        expect(r.stream).toBe(0);
      }
      expect(n).toBe(2 + 2 * 120);
      const next = Buffer.alloc(17);
      expect(readSync(fd, next, 0, 17, null)).toBe(17);
      expect(next.equals(second.subarray(0, 17))).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it('reports a stream truncated inside a large command', async () => {
    const whole = bigStream(5);
    const file = join(dir, 'cut.stream');
    writeFileSync(file, whole.subarray(0, whole.length - 200_000));
    await expect(digest(file, { reuseBuffers: true })).rejects.toThrow(/unexpected end of stream/);
  });
});
