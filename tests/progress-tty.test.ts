// --progress on a real terminal (tmux): receive -f of a ~250 MiB stream from a real snapshot shows the
// total and an ETA and ends at 100 %; what goes to stdout (the --dump text, the send stream) is
// byte-identical with and without the progress line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { frames, haveTmux, runInPty } from './helpers/pty.js';
import { formatBytes } from '../src/progress/format.js';

const repo = resolve(import.meta.dirname, '..');
const cli = `node '${join(repo, 'bin/btrfs-ts.js')}'`;
const ok = requireBtrfs();
if (ok && !haveTmux()) throw new Error('tmux is needed for the progress tests (apt-get install tmux)');

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe.skipIf(!ok)('--progress on a terminal', () => {
  let fs: Btrfs;
  let stream = '';
  let snap = '';
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 1024 });
    const vol = join(fs.mnt, 'vol');
    run('btrfs', ['-q', 'subvolume', 'create', vol]);
    // Incompressible data (the stream must really be this big), plus many small files and directories.
    for (let i = 0; i < 5; i++) run('sh', ['-c', `head -c 50M /dev/urandom > '${vol}/big${i}.bin'`]);
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(vol, `dir${d}`));
      for (let f = 0; f < 50; f++) writeFileSync(join(vol, `dir${d}`, `file${f}.txt`), `dir ${d} file ${f}\n`.repeat(f + 1));
    }
    snap = join(fs.mnt, 'snap');
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', vol, snap]);
    stream = join(fs.mnt, '..', 'snap.stream');
    run('btrfs', ['send', '-q', '--proto', '2', '-f', stream, snap]);
  }, 120_000);
  afterAll(() => fs?.cleanup());

  it('receive -f shows the total, an ETA, and reaches 100 %', async () => {
    const size = statSync(stream).size;
    expect(size).toBeGreaterThanOrEqual(200 * 1024 * 1024);
    const total = formatBytes(size);
    const dest = join(fs.mnt, 'recv');
    mkdirSync(dest);
    const r = await runInPty(`${cli} receive --progress -f '${stream}' '${dest}'`);
    expect(r.status).toBe(0);

    const drawn = frames(r.raw).filter((f) => f.startsWith('['));
    // The first frame already knows the total; every frame shows it and an ETA.
    expect(drawn[0]).toMatch(new RegExp(`^\\[  0%\\] \\d+ B / ${total.replace('.', '\\.')}  -- B/s  elapsed 0:00  ETA --:--`));
    for (const f of drawn) expect(f).toMatch(new RegExp(`^\\[ *\\d+%\\] .* / ${total.replace('.', '\\.')} .* ETA (--:--|\\d+:\\d\\d)`));
    // The ETA is rounded up: it says 0:00 only once everything is there.
    for (const f of drawn) if (f.includes('ETA 0:00')) expect(f).toMatch(/^\[100%\]/);
    // Percentages never go back, and the last frame is 100 % with nothing left.
    const pcts = drawn.map((f) => Number(/^\[ *(\d+)%\]/.exec(f)![1]));
    expect([...pcts].sort((a, b) => a - b)).toEqual(pcts);
    expect(drawn.at(-1)).toMatch(new RegExp(`^\\[100%\\] ${total.replace('.', '\\.')} / ${total.replace('.', '\\.')}  .*/s  elapsed \\d+:\\d\\d  ETA 0:00$`));

    // What stays on the screen: the message, the final line, the summary.
    expect(r.screen[0]).toBe('At subvol snap');
    expect(r.screen[1]).toMatch(new RegExp(`^\\[100%\\] ${total.replace('.', '\\.')} / ${total.replace('.', '\\.')} .* ETA 0:00$`));
    expect(r.screen[2]).toMatch(new RegExp(`^received ${total.replace('.', '\\.')}, \\d+ commands in \\d+:\\d\\d \\(.*/s\\)$`));
    expect(r.screen.length).toBe(3);
    // And the data arrived.
    expect(sha(join(dest, 'snap/big3.bin'))).toBe(sha(join(snap, 'big3.bin')));
  });

  it('keeps stdout byte-identical: receive --dump with and without --progress', async () => {
    const out = join(fs.mnt, '..');
    const a = await runInPty(`${cli} receive --dump -f '${stream}' > '${out}/dump-plain.txt'`);
    const b = await runInPty(`${cli} receive --dump --progress -f '${stream}' > '${out}/dump-progress.txt'`);
    expect(a.status).toBe(0);
    expect(b.status).toBe(0);
    expect(readFileSync(join(out, 'dump-progress.txt')).equals(readFileSync(join(out, 'dump-plain.txt')))).toBe(true);
    expect(statSync(join(out, 'dump-plain.txt')).size).toBeGreaterThan(100_000);
    // Without --progress nothing is drawn; with it, the terminal shows the read total at 100 %.
    expect(a.raw).toBe('');
    expect(b.screen.at(-1)).toMatch(/^read [\d.]+ MiB, \d+ commands in \d+:\d\d \(.*\/s\)$/);
  });

  it('keeps stdout byte-identical: send --progress writes the same stream as btrfs send', async () => {
    const out = join(fs.mnt, '..');
    const r = await runInPty(`${cli} send --progress --estimate --proto 2 '${snap}' > '${out}/ours.stream'`);
    expect(r.status).toBe(0);
    run('btrfs', ['send', '-q', '--proto', '2', '-f', join(out, 'progs.stream'), snap]);
    expect(sha(join(out, 'ours.stream'))).toBe(sha(join(out, 'progs.stream')));
    const size = formatBytes(statSync(join(out, 'progs.stream')).size).replace('.', '\\.');
    // The estimate from the --no-data pass is exact for a plain full send: "~" total = final size.
    expect(r.screen).toContain(`At subvol ${snap}`);
    expect(r.screen.some((l) => new RegExp(`^\\[100%\\] ${size} / ~${size} .* ETA 0:00$`).test(l))).toBe(true);
    expect(r.screen.at(-1)).toMatch(new RegExp(`^sent ${size} in \\d+:\\d\\d \\(.*/s\\)$`));
  });
});
