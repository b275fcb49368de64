// The receive engine through the CLI (exit status, one-line errors, --chroot, which must run in a child
// process) and on a filesystem mounted with subvol= (parent lookup with path prefixes, -m).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBtrfs, makeBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, snapshot } from './helpers/populate.js';
import { collectTree, diffTrees } from '../src/lab/compare-trees.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { btrfsSend, ourReceive, ourReceiveFailure } from './helpers/receive-harness.js';

const ok = requireBtrfs();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin/btrfs-ts.js');
const built = existsSync(join(root, 'dist/cli/main.js'));
if (!built) {
  // `npm test` builds dist/ first; a bare `vitest run` on a fresh clone may not have.
  if (process.env.CI) throw new Error('dist/cli/main.js is missing in CI: npm test must build it before the tests');
  console.warn('SKIPPING two CLI receive tests: dist/cli/main.js is not built (run npm run build)');
}

function btrfsTs(args: string[], cwd?: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd });
  return { status: r.status, stderr: r.stderr };
}

describe.skipIf(!ok)('receive via the CLI and on subvol= mounts', () => {
  let fs: Btrfs;
  let tmp: string;
  let inner = '';
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 256 });
    tmp = mkdtempSync('/dev/shm/btrfs-ts-streams-');
    makeSubvolume(join(fs.mnt, 'vol'));
    writeFileSync(join(fs.mnt, 'vol', 'f'), 'one\n');
    run('setfattr', ['-n', 'user.x', '-v', 'y', join(fs.mnt, 'vol', 'f')]);
    snapshot(join(fs.mnt, 'vol'), join(fs.mnt, 'snap1'));
    writeFileSync(join(fs.mnt, 'vol', 'f'), 'two\n');
    snapshot(join(fs.mnt, 'vol'), join(fs.mnt, 'snap2'));
    btrfsSend(join(fs.mnt, 'snap1'), join(tmp, 'full.stream'));
    btrfsSend(join(fs.mnt, 'snap2'), join(tmp, 'incr.stream'), { parent: join(fs.mnt, 'snap1') });
  });
  afterAll(() => {
    if (inner && spawnSync('umount', [inner]).status === 0) rmdirSync(inner);
    fs?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.skipIf(!built)('exit 0 on success, exit 1 with one ERROR line and the partial subvolume path on failure', () => {
    const dest = join(fs.mnt, 'cli1');
    mkdirSync(dest);
    expect(btrfsTs(['receive', '-q', '-f', join(tmp, 'full.stream'), dest]).status).toBe(0);
    expect(subvolInfo(join(dest, 'snap1')).readonly).toBe(true);
    const cut = join(tmp, 'cut.stream');
    const full = readFileSync(join(tmp, 'incr.stream'));
    writeFileSync(cut, full.subarray(0, full.length - 20));
    const r = btrfsTs(['receive', '-f', cut, dest]);
    expect(r.status).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^ERROR: receive failed: unexpected end of stream/);
    expect(r.stderr).toContain(`partially received subvolume left at ${join(dest, 'snap2')}`);
    expect(subvolInfo(join(dest, 'snap2')).readonly).toBe(false);
  });

  it.skipIf(!built)('--chroot with a stream path relative to the caller', () => {
    const dest = join(fs.mnt, 'cli-chroot');
    mkdirSync(dest);
    const r = btrfsTs(['receive', '-C', '-f', 'full.stream', dest], tmp);
    expect(r.stderr).toContain(`Chroot to ${dest}`);
    expect(r.status).toBe(0);
    const r2 = btrfsTs(['receive', '--chroot', '-f', 'incr.stream', dest], tmp);
    expect(r2.status).toBe(0);
    expect(readFileSync(join(dest, 'snap2', 'f'), 'utf8')).toBe('two\n');
    expect(subvolInfo(join(dest, 'snap2')).readonly).toBe(true);
  });

  it('on a subvol= mount: parents inside it are found, parents outside are refused clearly', async () => {
    // The top level has the sources; mount subvolume "box" elsewhere and receive there.
    makeSubvolume(join(fs.mnt, 'box'));
    inner = mkdtempSync('/dev/shm/btrfs-ts-inner-');
    const loop = spawnSync('findmnt', ['-n', '-o', 'SOURCE', fs.mnt], { encoding: 'utf8' }).stdout.trim();
    run('mount', ['-o', 'subvol=box', loop, inner]);
    mkdirSync(join(inner, 'in'));
    await ourReceive(join(tmp, 'full.stream'), join(inner, 'in'));
    const { log } = await ourReceive(join(tmp, 'incr.stream'), join(inner, 'in'));
    expect(log).toContain('At snapshot snap2');
    expect(diffTrees(collectTree(join(fs.mnt, 'snap2')), collectTree(join(inner, 'in', 'snap2')))).toEqual([]);
    // -m naming the mount root explicitly works the same.
    mkdirSync(join(inner, 'm'));
    await ourReceive(join(tmp, 'full.stream'), join(inner, 'm'), { rootMount: inner });
    expect(subvolInfo(join(inner, 'm', 'snap1')).readonly).toBe(true);
    // A parent that exists only outside the mounted subvolume: the received copies inside "box" are
    // deleted, so every UUID match (other received copies, the original snap1) is outside "box".
    run('btrfs', ['subvolume', 'delete', join(inner, 'in', 'snap2'), join(inner, 'in', 'snap1'), join(inner, 'm', 'snap1')]);
    mkdirSync(join(inner, 'out'));
    const { error } = await ourReceiveFailure(join(tmp, 'incr.stream'), join(inner, 'out'));
    expect(error.message).toMatch(/command #1 \(snapshot\) snap2 .*subvolume (cli1|cli-chroot)\/snap1 \(id \d+\) is not reachable from the mounted subvolume box; mount the top level/);
    expect(existsSync(join(inner, 'out', 'snap2'))).toBe(false);
  });
});
