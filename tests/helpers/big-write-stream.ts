// Streams of WRITEs whose sizes sit around the windows' edges (256 KiB carry rooms and read areas) and
// beyond, and a digest of what a reader yields, for the tests of the windows over files and pipes.
import { createHash } from 'node:crypto';
import { readStream, type ReaderOptions, type StreamRecord } from '../../src/stream/reader.js';
import { encodeCommand, encodeStreamHeader } from '../../src/stream/writer.js';
import type { Command } from '../../src/stream/commands.js';

/** Sizes around 256 KiB, 1 MiB and beyond. */
export const EDGE_SIZES = [0, 7, 4096, 48 << 10, (256 << 10) - 30, 256 << 10, (256 << 10) + 1, 1 << 20, (1 << 20) + 5, 3 << 20];

/** A v2 stream: SUBVOL, then `count` pairs of WRITE (a size from `sizes`, picked by a seeded LCG) and CHMOD, then END. */
export function bigWriteStream(seed: number, sizes: readonly number[] = EDGE_SIZES, count = 120): Buffer {
  const parts = [encodeStreamHeader(2)];
  parts.push(encodeCommand({ cmd: 'subvol', path: Buffer.from('s'), uuid: Buffer.alloc(16, 1), ctransid: 5 }, 2));
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const data = Buffer.alloc(sizes[x % sizes.length]!, i & 0xff);
    if (data.length > 0) data[data.length - 1] = x & 0xff;
    parts.push(encodeCommand({ cmd: 'write', path: Buffer.from(`f${i}`), offset: i * 4096, data }, 2));
    parts.push(encodeCommand({ cmd: 'chmod', path: Buffer.from(`f${i}`), mode: 0o644 }, 2));
  }
  parts.push(encodeCommand({ cmd: 'end' }, 2));
  return Buffer.concat(parts);
}

/** Adds a record (its position, kind, path and data) to a running digest. */
export function hashRecord(h: ReturnType<typeof createHash>, r: StreamRecord): void {
  const c = r.command as Command & { path?: Buffer; data?: Buffer };
  h.update(`${r.index}:${r.offset}:${r.stream}:${c.cmd}:`);
  if (c.path) h.update(c.path);
  if (c.data) h.update(c.data);
}

/** Digest of every record, computed while the record is current (reuseBuffers allows nothing else). */
export async function recordsDigest(source: string | number, opts: ReaderOptions): Promise<string> {
  const h = createHash('sha256');
  for await (const r of readStream(source, opts)) hashRecord(h, r);
  return h.digest('hex');
}
