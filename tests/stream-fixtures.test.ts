// Small real kernel streams kept in tests/fixtures/codec (regenerate with make-fixtures.sh there), so the
// codec is checked against real bytes without root: parse all (every CRC), re-encode byte for byte.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readStream, type StreamRecord } from '../src/stream/reader.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';
import { chunksOf } from './helpers/stream-builder.js';

const dir = join(import.meta.dirname, 'fixtures', 'codec');

async function roundTrip(file: string): Promise<{ recs: StreamRecord[]; bytes: Buffer }> {
  const recs: StreamRecord[] = [];
  const parts: Buffer[] = [];
  let stream = -1;
  for await (const r of readStream(file)) {
    if (r.stream !== stream) parts.push(encodeStreamHeader(r.version));
    stream = r.stream;
    parts.push(encodeCommand(r.command, r.version));
    recs.push(r);
  }
  return { recs, bytes: Buffer.concat(parts) };
}

const expectations: Record<string, (recs: StreamRecord[]) => void> = {
  'v1-full.stream': (recs) => {
    const kinds = new Set(recs.map((r) => r.command.cmd));
    for (const k of ['subvol', 'mkfile', 'mkdir', 'mkfifo', 'symlink', 'link', 'rename', 'write', 'clone', 'truncate',
      'chown', 'chmod', 'utimes', 'set_xattr', 'end'] as const) expect(kinds.has(k), k).toBe(true);
    // The 1960 mtime is negative.
    expect(recs.some((r) => r.command.cmd === 'utimes' && r.command.mtime.sec < 0)).toBe(true);
  },
  'v2-compressed.stream': (recs) => {
    expect(recs.some((r) => r.command.cmd === 'encoded_write' && r.command.compression === 2)).toBe(true);
  },
  'v1-nodata.stream': (recs) => expect(recs.some((r) => r.command.cmd === 'update_extent')).toBe(true),
  'v1-incremental.stream': (recs) => expect(recs[0]!.command.cmd).toBe('snapshot'),
  'v2-incremental.stream': (recs) => {
    expect(recs[0]!.command.cmd).toBe('snapshot');
    expect(recs.every((r) => r.version === 2)).toBe(true);
  },
  'v1-two-streams.stream': (recs) => expect(recs.map((r) => r.stream).filter((s, i, a) => a.indexOf(s) === i)).toEqual([0, 1]),
  'v2-two-subvols-e.stream': (recs) => {
    expect(recs.filter((r) => r.command.cmd === 'subvol' || r.command.cmd === 'snapshot')).toHaveLength(2);
    expect(recs.filter((r) => r.command.cmd === 'end')).toHaveLength(1);
  },
};

describe('kept kernel streams (no root needed)', () => {
  for (const [name, check] of Object.entries(expectations)) {
    it(`${name}: parses, re-encodes byte for byte, and reads the same in 1000-byte chunks`, async () => {
      const file = join(dir, name);
      const original = readFileSync(file);
      const { recs, bytes } = await roundTrip(file);
      check(recs);
      expect(bytes.equals(original)).toBe(true);
      let n = 0;
      for await (const r of readStream(chunksOf(original, [1000, 7]))) {
        expect(r.offset).toBe(recs[n]!.offset);
        expect(encodeCommand(r.command, r.version).equals(encodeCommand(recs[n]!.command, recs[n]!.version))).toBe(true);
        n++;
      }
      expect(n).toBe(recs.length);
    });
  }
});
