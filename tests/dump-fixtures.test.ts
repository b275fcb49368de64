// `--dump` against btrfs-progs 6.2 on kept kernel streams (tests/fixtures/dump, made by
// scripts/make-fixtures.sh): byte-identical output, in several time zones; JSON Lines checks.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dumpToBuffer, firstDifference } from './helpers/dump-capture.js';
import { bytesFromJson, type JsonBytes } from '../src/dump/json.js';

const DIR = join(import.meta.dirname, 'fixtures', 'dump');
const ZONES: Record<string, string> = { utc: 'UTC', america_new_york: 'America/New_York', asia_kolkata: 'Asia/Kolkata' };
const read = (name: string): Buffer => readFileSync(join(DIR, name));

// Every `<stream>.<zone>.dump` whose stream is kept (tiny1/tiny2 are parts of two-streams).
const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.dump'))
  .map((f) => {
    const [stream, zone] = f.split('.') as [string, string];
    return { file: f, stream: `${stream}.stream`, zone: ZONES[zone]! };
  })
  .filter((c) => readdirSync(DIR).includes(c.stream));

describe('dump of kept kernel streams', () => {
  it('has fixtures for every mode', () => {
    const streams = new Set(cases.map((c) => c.stream));
    for (const s of ['full-v1', 'full-v2-zstd', 'full-v2-zlib', 'full-v2-lzo', 'incr-v1', 'incr-v2', 'incr-nodata',
      'clone-src', 'two-streams', 'two-subvols-e']) expect(streams).toContain(`${s}.stream`);
    expect(new Set(cases.map((c) => c.zone))).toEqual(new Set(Object.values(ZONES)));
  });

  for (const c of cases) {
    if (c.stream === 'two-streams.stream') continue; // progs dumps only its first stream: tested below
    it(`${c.file} is identical to btrfs-progs' dump (TZ=${c.zone})`, async () => {
      const { out } = await dumpToBuffer({ input: join(DIR, c.stream), timeZone: c.zone });
      expect(firstDifference(out, read(c.file))).toBeUndefined();
    });
  }

  it('dumps every stream of a concatenation (progs: only the first)', async () => {
    const progs = read('two-streams.utc.dump');
    expect(progs.equals(read('tiny1.utc.dump'))).toBe(true); // what progs did
    const { out, summary } = await dumpToBuffer({ input: join(DIR, 'two-streams.stream'), timeZone: 'UTC' });
    expect(summary.streams).toBe(2);
    expect(firstDifference(out, Buffer.concat([read('tiny1.utc.dump'), read('tiny2.utc.dump')]))).toBeUndefined();
  });

  it('stops after the first END with stopAtFirstEnd (-e), like progs', async () => {
    const { out, summary } = await dumpToBuffer({ input: join(DIR, 'two-streams.stream'), timeZone: 'UTC', stopAtFirstEnd: true });
    expect(summary.streams).toBe(1);
    expect(firstDifference(out, read('two-streams.utc.dump'))).toBeUndefined();
  });

  it('dumps a full and an incremental stream written back to back', async () => {
    const both = Buffer.concat([read('full-v1.stream'), read('incr-v2.stream')]);
    const { out } = await dumpToBuffer({ input: (async function* () { yield both; })(), timeZone: 'UTC' });
    expect(firstDifference(out, Buffer.concat([read('full-v1.utc.dump'), read('incr-v2.utc.dump')]))).toBeUndefined();
  });
});

describe('dump --json of kept kernel streams', () => {
  it('writes one valid JSON object per command, with positions', async () => {
    const { out, summary } = await dumpToBuffer({ input: join(DIR, 'full-v2-zstd.stream'), format: 'json' });
    const lines = out.toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBe(summary.commands);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs[0]).toMatchObject({ index: 1, byteOffset: 17, stream: 0, version: 2, cmd: 'subvol', path: 'snap1' });
    expect(recs.at(-1)).toMatchObject({ cmd: 'end', index: recs.length });
    recs.forEach((r, i) => expect(r.index).toBe(i + 1));
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.byteOffset as number).toBeGreaterThan(recs[i - 1]!.byteOffset as number);
    const enc = recs.find((r) => r.cmd === 'encoded_write')!;
    expect(enc).toMatchObject({ compression: 2, encryption: 0, path: 'compressible.txt' });
    expect(typeof enc.len).toBe('number');
    expect(enc).not.toHaveProperty('data');
    const ut = recs.find((r) => r.cmd === 'utimes' && r.path === 'small.txt')!;
    expect(ut.mtime).toEqual({ sec: 981173106, nsec: 123456789 });
    expect(ut.otime).toBeDefined();
    expect(recs.find((r) => r.cmd === 'subvol')!.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('keeps names that are not UTF-8 (base64) and odd ones (strings) byte-exact', async () => {
    const { out } = await dumpToBuffer({ input: join(DIR, 'full-v1.stream'), format: 'json' });
    const recs = out.toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, JsonBytes>);
    const targets = recs.filter((r) => r.cmd === 'rename').map((r) => bytesFromJson(r.to!));
    expect(targets).toContainEqual(Buffer.from([0xff, 0xfe, ...Buffer.from('-not-utf8')]));
    expect(targets).toContainEqual(Buffer.from('new\nline'));
    expect(targets).toContainEqual(Buffer.from('ünïcödé'));
    const raw = recs.find((r) => r.cmd === 'rename' && typeof r.to === 'object')!;
    expect(raw.to).toEqual({ base64: Buffer.from([0xff, 0xfe, ...Buffer.from('-not-utf8')]).toString('base64') });
    expect(recs.find((r) => r.cmd === 'set_xattr' && r.name === 'user.binary')!.value).toEqual({ base64: Buffer.from([0, 0xff, 0x10]).toString('base64') });
  });
});
