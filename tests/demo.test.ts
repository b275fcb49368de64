// `btrfs-ts demo` end to end through the CLI: it must succeed, say what it verified, and leave no
// mounts, loop devices or files behind.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBtrfs } from './helpers/btrfs.js';

const ok = requireBtrfs();
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'btrfs-ts.js');

const leftovers = (): string[] => [
  ...readdirSync('/dev/shm').filter((n) => n.startsWith('btrfs-ts-demo-')),
  ...readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.includes('btrfs-ts-demo-')),
  ...spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('btrfs-ts-demo-')),
];

describe.skipIf(!ok)('btrfs-ts demo', () => {
  it('sends, receives, verifies, reports sizes and cleans up', () => {
    const before = leftovers();
    const r = spawnSync(process.execPath, [CLI, 'demo'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = r.stdout;
    // Every step ran, in order.
    const steps = ['[1] filled subvolume data', '[2] read-only snapshot', '[3] send --compressed-data snap1 | receive',
      '[4] edited', '[5] verified: received snap1 and snap2 equal their sources', 'done in'];
    let at = -1;
    for (const step of steps) {
      const i = out.indexOf(step);
      expect(i, `missing or out of order: ${step}\n${out}`).toBeGreaterThan(at);
      at = i;
    }
    expect(out).toContain('received UUIDs set; both read-only');
    // The compressed stream is smaller than the v1 stream of the same snapshot, as claimed.
    const full = /\[3\] .*?: ([\d.]+) MiB stream/.exec(out);
    const v1 = /as a v1 stream: ([\d.]+) MiB/.exec(out);
    expect(full && v1).toBeTruthy();
    expect(Number(full![1])).toBeLessThan(Number(v1![1]));
    expect(Number(v1![1])).toBeGreaterThan(10);
    // compsize (installed in CI) shows the destination holding zstd extents.
    if (spawnSync('sh', ['-c', 'command -v compsize']).status === 0) expect(out).toMatch(/\[6\] destination \(compsize\): .* zstd extents at \d+%/);
    expect(leftovers()).toEqual(before);
  }, 90_000);
});
