// Loop-mounted btrfs images in /dev/shm for everything that needs a scratch filesystem: the demo, the
// benchmark, the soak/fuzz/fault harnesses and the tests (tests/helpers/btrfs.ts). Everything created
// here is removed by cleanup().
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface LoopFs {
  mnt: string;
  img: string;
  /** The temporary directory holding img and mnt (free for scratch files too). */
  dir: string;
  cleanup(): void;
}

export function sh(cmd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Live filesystems, unmounted on SIGINT/SIGTERM so an interrupted soak leaves nothing mounted. */
const live = new Set<LoopFs>();
let handlersInstalled = false;
function installSignalCleanup(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const f of [...live].reverse()) f.cleanup();
      process.exit(130);
    });
  }
}

export function makeLoopFs(label: string, opts: { sizeMiB?: number; mountOptions?: string[]; mkfsArgs?: string[]; cleanupOnSignal?: boolean } = {}): LoopFs {
  const dir = mkdtempSync(`/dev/shm/btrfs-ts-${label}-`);
  const img = join(dir, 'fs.img');
  const mnt = join(dir, 'mnt');
  sh('mkdir', ['-p', mnt]);
  sh('truncate', ['-s', `${opts.sizeMiB ?? 1024}M`, img]);
  sh('mkfs.btrfs', ['-q', ...(opts.mkfsArgs ?? []), img]);
  sh('mount', ['-o', ['loop', ...(opts.mountOptions ?? [])].join(','), img, mnt]);
  let done = false;
  const fsObj: LoopFs = {
    mnt,
    img,
    dir,
    cleanup() {
      if (done) return;
      done = true;
      live.delete(fsObj);
      const loops = spawnSync('losetup', ['-j', img], { encoding: 'utf8' }).stdout
        .split('\n').map((l) => l.split(':')[0]).filter(Boolean);
      for (let i = 0; i < 10 && spawnSync('umount', [mnt]).status !== 0; i++) spawnSync('sleep', ['0.3']);
      for (const loop of loops) spawnSync('losetup', ['-d', loop!]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(fsObj);
  if (opts.cleanupOnSignal !== false) installSignalCleanup();
  return fsObj;
}

export interface SubvolInfo {
  receivedUuid: string;
  readonly: boolean;
  sendTransid: string;
}

/** `btrfs subvolume show` fields the harnesses check. */
export function subvolInfo(path: string): SubvolInfo {
  const out = sh('btrfs', ['subvolume', 'show', path]).toString();
  const field = (name: string): string => new RegExp(`^\\s*${name}:\\s*(.*)$`, 'm').exec(out)?.[1]?.trim() ?? '?';
  return { receivedUuid: field('Received UUID'), readonly: /readonly/.test(field('Flags')), sendTransid: field('Send transid') };
}

/** Every subvolume under a mount, as paths relative to it. */
export function listSubvols(mnt: string): string[] {
  const out = sh('btrfs', ['subvolume', 'list', '-o', mnt]).toString();
  return out.split('\n').filter(Boolean).map((l) => l.replace(/^.* path /, ''));
}
