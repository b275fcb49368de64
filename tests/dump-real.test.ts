// Real kernel streams, every send mode, dumped by btrfs-progs and by `btrfs-ts receive --dump` (the
// built CLI): stdout must be byte-identical, in three time zones. Needs root and btrfs.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, mutateTree, populateVariedTree, snapshot } from './helpers/populate.js';
import { firstDifference } from './helpers/dump-capture.js';
import { readStream } from '../src/stream/reader.js';

const ok = requireBtrfs();
const CLI = join(import.meta.dirname, '..', 'bin', 'btrfs-ts.js');
const ZONES = ['UTC', 'America/New_York', 'Asia/Kolkata'];

interface Case { name: string; file: string }

function progsDump(file: string, tz: string): Buffer {
  const r = spawnSync('btrfs', ['receive', '--dump', '-f', file], { env: { ...process.env, TZ: tz }, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`btrfs receive --dump ${file}: ${r.stderr}`);
  return r.stdout;
}

function ourDump(file: string, tz: string, extra: string[] = []): { stdout: Buffer; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [CLI, 'receive', '--dump', ...extra, '-f', file], {
    env: { ...process.env, TZ: tz }, maxBuffer: 1 << 28,
  });
  return { stdout: r.stdout, stderr: r.stderr.toString(), status: r.status };
}

/** Byte offsets where each concatenated stream starts (header included). */
async function streamStarts(file: string): Promise<number[]> {
  const starts: number[] = [];
  let stream = -1;
  for await (const rec of readStream(file)) {
    if (rec.stream !== stream) {
      stream = rec.stream;
      starts.push(rec.offset - 17);
    }
  }
  return starts;
}

describe.skipIf(!ok)('dump of real kernel streams is identical to btrfs-progs', () => {
  const filesystems: Btrfs[] = [];
  const cases: Case[] = [];
  let work = '';

  beforeAll(() => {
    for (const comp of ['zstd', 'zlib', 'lzo']) {
      const fs = makeBtrfs({ sizeMiB: 512, mountOptions: `compress-force=${comp}` });
      filesystems.push(fs);
      const m = fs.mnt;
      makeSubvolume(`${m}/vol`);
      populateVariedTree(`${m}/vol`, { seed: comp.length });
      snapshot(`${m}/vol`, `${m}/snap1`);
      mutateTree(`${m}/vol`);
      snapshot(`${m}/vol`, `${m}/snap2`);
      const out = (name: string): string => {
        const file = join(fs.mnt, '..', `${name}.stream`);
        cases.push({ name, file });
        return file;
      };
      const send = (name: string, ...args: string[]): void => void run('btrfs', ['-q', 'send', '-f', out(name), ...args]);
      send(`${comp}-v2-compressed-full`, '--proto', '2', '--compressed-data', `${m}/snap1`);
      send(`${comp}-v2-compressed-incremental`, '--compressed-data', '-p', `${m}/snap1`, `${m}/snap2`);
      if (comp === 'zstd') {
        work = join(fs.mnt, '..');
        send('v1-full', `${m}/snap1`);
        send('v1-incremental', '-p', `${m}/snap1`, `${m}/snap2`);
        send('v2-full', '--proto', '2', `${m}/snap1`);
        send('v2-incremental', '--proto', '2', '-p', `${m}/snap1`, `${m}/snap2`);
        send('clone-src-auto-parent', '-c', `${m}/snap1`, `${m}/snap2`);
        send('no-data-incremental', '--no-data', '-p', `${m}/snap1`, `${m}/snap2`);
        send('no-data-full-v2', '--no-data', '--proto', '2', `${m}/snap1`);
        send('two-subvols-e', '-e', `${m}/snap1`, `${m}/snap2`);
        send('two-subvols', `${m}/snap1`, `${m}/snap2`);
      }
    }
  }, 180_000);

  afterAll(() => {
    for (const fs of filesystems) fs.cleanup();
  });

  it('made every kind of stream', () => {
    expect(cases.length).toBe(15);
    for (const c of cases) expect(readFileSync(c.file).length).toBeGreaterThan(100);
  });

  it('single-stream files: identical in UTC, New York and Kolkata time', () => {
    let compared = 0;
    for (const c of cases) {
      if (c.name === 'two-subvols') continue;
      for (const tz of ZONES) {
        const ours = ourDump(c.file, tz);
        expect(ours.status, `${c.name} ${tz}: ${ours.stderr}`).toBe(0);
        expect(firstDifference(ours.stdout, progsDump(c.file, tz)), `${c.name} TZ=${tz}`).toBeUndefined();
        compared++;
      }
    }
    expect(compared).toBe(14 * ZONES.length);
  }, 120_000);

  it('streams carry what the modes promise (encoded_write, clone, update_extent, fallocate, fileattr)', () => {
    const text = (name: string): string => progsDump(cases.find((c) => c.name === name)!.file, 'UTC').toString('latin1');
    expect(text('zstd-v2-compressed-full')).toMatch(/^encoded_write .* compression=2,/m);
    expect(text('zlib-v2-compressed-full')).toMatch(/^encoded_write .* compression=1,/m);
    expect(text('lzo-v2-compressed-full')).toMatch(/^encoded_write .* compression=3,/m);
    expect(text('v1-full')).toMatch(/^clone /m);
    expect(text('clone-src-auto-parent')).toMatch(/^snapshot /m);
    expect(text('no-data-incremental')).toMatch(/^update_extent /m);
    expect(text('v2-incremental')).toMatch(/^fileattr /m);
    expect(text('v2-incremental')).toMatch(/^fallocate /m);
    expect(text('v1-full')).toMatch(/^mknod .* dev=0x11112c70$/m);
  });

  it('two streams in one file: all dumped; with -e only the first, as progs', async () => {
    const file = cases.find((c) => c.name === 'two-subvols')!.file;
    const starts = await streamStarts(file);
    expect(starts.length).toBe(2);
    const bytes = readFileSync(file);
    const second = join(work, 'second-part.stream');
    writeFileSync(second, bytes.subarray(starts[1]!));
    for (const tz of ['UTC', 'Asia/Kolkata']) {
      const first = progsDump(file, tz); // progs stops after the first END
      const all = ourDump(file, tz);
      expect(all.status).toBe(0);
      expect(firstDifference(all.stdout, Buffer.concat([first, progsDump(second, tz)]))).toBeUndefined();
      const onlyFirst = ourDump(file, tz, ['-e']);
      expect(firstDifference(onlyFirst.stdout, first)).toBeUndefined();
    }
  }, 60_000);

  it('--json: one valid object per command, for every kind of stream', () => {
    for (const c of cases) {
      const r = ourDump(c.file, 'UTC', ['--json']);
      expect(r.status).toBe(0);
      const lines = r.stdout.toString('utf8').split('\n');
      expect(lines.pop()).toBe('');
      const text = progsDump(c.file, 'UTC').toString('latin1');
      let n = 0;
      for (const l of lines) {
        const o = JSON.parse(l) as { index: number; cmd: string };
        expect(o.index).toBe(++n);
      }
      // Every progs line (all but END, and the set_xattr values with newlines) has a JSON object.
      if (c.name !== 'two-subvols') expect(lines.filter((l) => !l.includes('"cmd":"end"')).length).toBeLessThanOrEqual(text.split('\n').length - 1);
    }
  }, 60_000);
});
