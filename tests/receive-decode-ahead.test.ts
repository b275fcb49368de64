// Receive with zstd extents decoded ahead on a helper thread (src/receive/record-queue.ts,
// decode-ahead.ts), against btrfs-progs and against the same receive with it off
// (BTRFS_TS_DECODE_AHEAD=0): the same tree; a corrupt extent among queued ones is reported naming its
// own command, with everything before it applied and nothing after; a stream cut while commands are
// queued applies them and then fails as it does without the queue.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, seededBytes, snapshot } from './helpers/populate.js';
import { collectTree, diffTrees } from '../src/lab/compare-trees.js';
import { btrfsReceive, btrfsSend, ourReceive, ourReceiveFailure } from './helpers/receive-harness.js';
import { DecodeAhead } from '../src/receive/decode-ahead.js';
import { aheadStream, extentText } from './helpers/decode-ahead-streams.js';
import { readStream } from '../src/stream/reader.js';

const ok = requireBtrfs();
const probe = DecodeAhead.create({ forceDecompress: true, verify: true });
probe?.close();
if (ok && !probe && process.env.CI) throw new Error('decode-ahead is not available in CI (native/build/zstd-ahead.node, libzstd.so.1)');
if (ok && !probe) console.warn('SKIPPING decode-ahead receive tests: decode-ahead is not available');

/** Index, offset and command name of every command of the stream file. */
async function records(file: string): Promise<{ index: number; offset: number; command: { cmd: string } }[]> {
  const all = [];
  for await (const r of readStream(file)) all.push({ index: r.index, offset: r.offset, command: { cmd: r.command.cmd } });
  return all;
}

/** The receive's log line with decode-ahead's counters (BTRFS_TS_DECODE_AHEAD_STATS=1). */
function aheadStats(log: string[]): { self: number; waited: number; done: number } | undefined {
  const line = log.find((l) => l.startsWith('decode-ahead: '));
  return line === undefined ? undefined : JSON.parse(line.slice('decode-ahead: '.length)) as { self: number; waited: number; done: number };
}

describe.skipIf(!ok || !probe)('receive with zstd extents decoded ahead', () => {
  let src: Btrfs;
  let dst: Btrfs;
  const saved = { ahead: process.env.BTRFS_TS_DECODE_AHEAD, stats: process.env.BTRFS_TS_DECODE_AHEAD_STATS };
  beforeAll(() => {
    src = makeBtrfs({ sizeMiB: 512, mountOptions: 'compress-force=zstd' });
    dst = makeBtrfs({ sizeMiB: 768 });
    process.env.BTRFS_TS_DECODE_AHEAD_STATS = '1';
  });
  afterEach(() => {
    if (saved.ahead === undefined) delete process.env.BTRFS_TS_DECODE_AHEAD;
    else process.env.BTRFS_TS_DECODE_AHEAD = saved.ahead;
  });
  afterAll(() => {
    if (saved.stats === undefined) delete process.env.BTRFS_TS_DECODE_AHEAD_STATS;
    else process.env.BTRFS_TS_DECODE_AHEAD_STATS = saved.stats;
    dst?.cleanup();
    src?.cleanup();
  });

  it('a real --compressed-data stream (many small files, multi-extent files): the same tree as btrfs-progs, on and off', async () => {
    const vol = join(src.mnt, 'vol');
    makeSubvolume(vol);
    for (let d = 0; d < 6; d++) {
      mkdirSync(join(vol, `d${d}`));
      for (let i = 0; i < 60; i++) writeFileSync(join(vol, `d${d}`, `s${i}`), extentText(d * 100 + i, 0, 4 * (1 + ((i * 37) % 1500))));
    }
    // Multi-extent files (128 KiB extents), one with a hole and a tail, and incompressible data (WRITEs).
    for (let m = 0; m < 4; m++) writeFileSync(join(vol, `big${m}`), Buffer.concat(Array.from({ length: 9 + m }, (_, e) => extentText(m, e, 131072))));
    writeFileSync(join(vol, 'holey'), Buffer.alloc(0));
    run('truncate', ['-s', '5M', join(vol, 'holey')]);
    run('dd', ['if=/dev/urandom', `of=${join(vol, 'holey')}`, 'bs=64K', 'count=3', 'seek=20', 'conv=notrunc', 'status=none']);
    writeFileSync(join(vol, 'random'), seededBytes(700_000, 5));
    run('sync', []);
    snapshot(vol, join(src.mnt, 'snap'));
    const stream = join(src.mnt, 'c.stream');
    btrfsSend(join(src.mnt, 'snap'), stream, { proto: 2, compressed: true });
    const extents = (await records(stream)).filter((r) => r.command.cmd === 'encoded_write').length;
    expect(extents).toBeGreaterThan(300);

    btrfsReceive(stream, join(dst.mnt, 'progs'));
    const expected = collectTree(join(dst.mnt, 'progs', 'snap'));
    const runs = [
      { dir: 'on', ahead: true, opts: {} },
      { dir: 'off', ahead: false, opts: {} },
      { dir: 'force-on', ahead: true, opts: { forceDecompress: true } },
      { dir: 'force-off', ahead: false, opts: { forceDecompress: true } },
    ];
    for (const r of runs) {
      process.env.BTRFS_TS_DECODE_AHEAD = r.ahead ? '1' : '0';
      const { summary, log } = await ourReceive(stream, join(dst.mnt, r.dir), r.opts);
      expect(diffTrees(expected, collectTree(join(dst.mnt, r.dir, 'snap'))), r.dir).toEqual([]);
      const stats = aheadStats(log);
      if (r.ahead) expect(stats!.self + stats!.waited + stats!.done, r.dir).toBe(extents);
      else expect(stats, r.dir).toBeUndefined();
      if (r.opts.forceDecompress) expect(summary.decompressedExtents, r.dir).toBe(extents);
      else expect(summary.encodedExtents, r.dir).toBe(extents);
    }
  });

  it('a corrupt extent among queued ones: reported naming its own command, the commands before it applied, none after', async () => {
    const s = aheadStream('bad', 40, (i) => 1 + (i % 3), { file: 20, extent: 1 });
    const file = join(dst.mnt, 'bad.stream');
    writeFileSync(file, s.bytes);
    const badIndex = s.firstExtentIndex[20]! + 1;
    const seen: Record<string, { message: string; files: string[] }> = {};
    for (const [dir, ahead, force] of [['bad-on', '1', false], ['bad-off', '0', false], ['bad-force-on', '1', true]] as const) {
      process.env.BTRFS_TS_DECODE_AHEAD = ahead;
      const { error, log } = await ourReceiveFailure(file, join(dst.mnt, dir), { forceDecompress: force });
      if (ahead === '1') expect(aheadStats(log)!.done + aheadStats(log)!.self + aheadStats(log)!.waited).toBeGreaterThan(20);
      expect(error.message).toMatch(new RegExp(`^receive failed at command #${badIndex} \\(encoded_write\\) bad/f20 \\(stream byte \\d+\\): ` +
        'encoded_write f20: corrupt zstd payload: zstd: '));
      const sv = join(dst.mnt, dir, 'bad');
      const files = readdirSync(sv).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
      // Files 0..20 exist (f20 with its first extent only); the later ones were never created.
      expect(files).toEqual(Array.from({ length: 21 }, (_, i) => `f${i}`));
      for (let i = 0; i < 20; i++) {
        const want = Buffer.concat(Array.from({ length: 1 + (i % 3) }, (_, e) => extentText(i, e)));
        expect(readFileSync(join(sv, `f${i}`)).equals(want), `f${i}`).toBe(true);
      }
      expect(readFileSync(join(sv, 'f20')).equals(extentText(20, 0))).toBe(true);
      seen[dir] = { message: error.message, files };
    }
    expect(seen['bad-on']).toEqual(seen['bad-off']);
  });

  it('a stream cut while commands are queued: they are applied, then the same error as without the queue', async () => {
    const s = aheadStream('cut', 40, () => 2);
    const full = join(dst.mnt, 'full.stream');
    writeFileSync(full, s.bytes);
    const cutIndex = s.firstExtentIndex[30]! + 1; // file 30's second extent
    const cutAt = (await records(full)).find((r) => r.index === cutIndex)!.offset + 200;
    const file = join(dst.mnt, 'cut.stream');
    writeFileSync(file, s.bytes.subarray(0, cutAt));
    const results: { message: string; tree: ReturnType<typeof collectTree> }[] = [];
    for (const [dir, ahead] of [['cut-on', '1'], ['cut-off', '0']] as const) {
      process.env.BTRFS_TS_DECODE_AHEAD = ahead;
      const { error } = await ourReceiveFailure(file, join(dst.mnt, dir));
      expect(error.message).toMatch(new RegExp(`^receive failed: unexpected end of stream inside command #${cutIndex} \\(encoded_write\\)`));
      const sv = join(dst.mnt, dir, 'cut');
      // Everything before the cut command was applied: file 30 has its first extent, no file 31.
      expect(readFileSync(join(sv, 'f30')).equals(extentText(30, 0))).toBe(true);
      expect(readFileSync(join(sv, 'f29')).equals(Buffer.concat([extentText(29, 0), extentText(29, 1)]))).toBe(true);
      expect(existsSync(join(sv, 'f31'))).toBe(false);
      results.push({ message: error.message, tree: collectTree(sv) });
    }
    expect(results[0]!.message).toBe(results[1]!.message);
    // Times differ where the receive stopped (the root and f30 are written to, not yet given their times).
    const untimed = diffTrees(results[0]!.tree, results[1]!.tree).filter((d) => !/^(a|m|c)timeNs$/.test(d.field));
    expect(untimed).toEqual([]);
  });
});
