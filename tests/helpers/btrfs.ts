// Real btrfs filesystems for tests: loop-mounted images in /dev/shm, always unmounted and removed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { makeLoopFs } from '../../src/lab/loop-btrfs.js';

export interface Btrfs {
  /** Mount point. */
  mnt: string;
  /** Image file. */
  img: string;
  /** Unmount, detach and delete; safe to call twice. */
  cleanup(): void;
}

/** Why real-btrfs tests cannot run here, or undefined when they can. */
export function btrfsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (spawnSync('which', ['mkfs.btrfs']).status !== 0) return 'mkfs.btrfs (btrfs-progs) is not installed';
  if (!existsSync('/dev/shm')) return '/dev/shm is missing';
  return undefined;
}

/**
 * Tests that need root and btrfs call this at the top of their file: in CI (CI=true) a missing
 * prerequisite is a failure; elsewhere the tests are skipped with the reason printed.
 * Returns true when the tests can run.
 */
export function requireBtrfs(): boolean {
  const reason = btrfsUnavailableReason();
  if (reason === undefined) return true;
  if (process.env.CI) throw new Error(`real-btrfs tests cannot run in CI: ${reason}`);
  console.warn(`SKIPPING real-btrfs tests: ${reason}`);
  return false;
}

export function run(cmd: string, args: string[], opts: { input?: Buffer | string; cwd?: string } = {}): Buffer {
  return execFileSync(cmd, args, { input: opts.input, cwd: opts.cwd, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Make and mount a fresh btrfs. `mountOptions` e.g. 'compress-force=zstd'. */
export function makeBtrfs(opts: { sizeMiB?: number; mountOptions?: string; mkfsArgs?: string[] } = {}): Btrfs {
  const fs = makeLoopFs('test', {
    sizeMiB: opts.sizeMiB ?? 256,
    mountOptions: opts.mountOptions ? [opts.mountOptions] : [],
    mkfsArgs: opts.mkfsArgs ?? [],
    cleanupOnSignal: false,
  });
  return { mnt: fs.mnt, img: fs.img, cleanup: () => fs.cleanup() };
}
