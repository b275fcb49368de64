// A loop-mounted btrfs image in /dev/shm for the benchmark; removed by dispose().
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface LoopBtrfs {
  mnt: string;
  img: string;
  dispose(): void;
}

export function createLoopBtrfs(label: string, sizeMiB: number, mountOptions?: string): LoopBtrfs {
  const dir = mkdtempSync(`/dev/shm/btrfs-ts-bench-${label}-`);
  const img = join(dir, 'fs.img');
  const mnt = join(dir, 'mnt');
  execFileSync('mkdir', ['-p', mnt]);
  execFileSync('truncate', ['-s', `${sizeMiB}M`, img]);
  execFileSync('mkfs.btrfs', ['-q', img]);
  execFileSync('mount', ['-o', ['loop', mountOptions].filter(Boolean).join(','), img, mnt]);
  let disposed = false;
  return {
    mnt,
    img,
    dispose() {
      if (disposed) return;
      disposed = true;
      const loops = spawnSync('losetup', ['-j', img], { encoding: 'utf8' }).stdout
        .split('\n').map((line) => line.split(':')[0]).filter(Boolean);
      spawnSync('umount', [mnt]);
      for (const loop of loops) spawnSync('losetup', ['-d', loop!]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
