// The read-ahead window for regular files (reuseBuffers: receive and --dump): same records as the plain
// reader whatever the command sizes (also larger than its carry room and its chunk), and an fd left
// just past the END with stopAtFirstEnd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { readStream, type ReaderOptions } from '../src/stream/reader.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';
import type { Command } from '../src/stream/commands.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-prefetch-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A v2 stream whose WRITEs have sizes around the window's 256 KiB carry room and chunk, and larger. */
function bigStream(seed: number): Buffer {
  const sizes = [0, 7, 4096, 48 << 10, (256 << 10) - 30, 256 << 10, (256 << 10) + 1, 1 << 20, (1 << 20) + 5, 3 << 20];
  const parts = [encodeStreamHeader(2)];
  parts.push(encodeCommand({ cmd: 'subvol', path: Buffer.from('s'), uuid: Buffer.alloc(16, 1), ctransid: 5 }, 2));
  let x = seed;
  for (let i = 0; i < 120; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const data = Buffer.alloc(sizes[x % sizes.length]!, i & 0xff);
    if (data.length > 0) data[data.length - 1] = x & 0xff;
    parts.push(encodeCommand({ cmd: 'write', path: Buffer.from(`f${i}`), offset: i * 4096, data }, 2));
    parts.push(encodeCommand({ cmd: 'chmod', path: Buffer.from(`f${i}`), mode: 0o644 }, 2));
  }
  parts.push(encodeCommand({ cmd: 'end' }, 2));
  return Buffer.concat(parts);
}

/** Digest of every record, computed while the record is current (reuseBuffers allows nothing else). */
async function digest(source: string | number, opts: ReaderOptions): Promise<string> {
  const h = createHash('sha256');
  for await (const r of readStream(source, opts)) {
    const c = r.command as Command & { path?: Buffer; data?: Buffer };
    h.update(`${r.index}:${r.offset}:${r.stream}:${c.cmd}:`);
    if (c.path) h.update(c.path);
    if (c.data) h.update(c.data);
  }
  return h.digest('hex');
}

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
