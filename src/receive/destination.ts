// Where a stream is received (protocol.md §6.1): the destination directory, the btrfs mount root that
// parent and clone sources are opened from, and which subvolume is mounted there (for path prefixes).
import { readFileSync, realpathSync } from 'node:fs';
import { close, FsConst, openat, chroot, procFdDir } from '../sys/fs.js';
import { rootIdOf } from '../sys/btrfs-ioctl.js';
import { subvolPathFromTopRaw } from '../sys/subvolume.js';
import { RefusedError } from './errors.js';
import { notBtrfsHint, withHint } from '../hints/index.js';

export interface Destination {
  /** Absolute real path of the destination directory (as seen before any chroot). */
  destPath: string;
  destFd: number;
  /** The btrfs mount root. */
  mountPath: string;
  mntFd: number;
  /** Path (from the filesystem top level, raw bytes) of the subvolume mounted at mountPath; '' = top. */
  mountedSubvolPath: Buffer;
  close(): void;
}

/** `/proc/self/mounts` field unescaping (\040 for space etc.). */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The longest mount point containing `path`, with its fs type. */
export function findMountPoint(path: string, mounts = readFileSync('/proc/self/mounts', 'latin1')): { mnt: string; type: string } | undefined {
  let best: { mnt: string; type: string } | undefined;
  for (const line of mounts.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 3) continue;
    const mnt = unescapeMount(fields[1]!);
    const inside = mnt === '/' || path === mnt || path.startsWith(mnt + '/');
    // Later entries over the same point shadow earlier ones, so >= keeps the last.
    if (inside && (!best || mnt.length >= best.mnt.length)) best = { mnt, type: fields[2]! };
  }
  return best;
}

export function openDestination(dest: string, opts: { rootMount?: string; chroot: boolean; log: (l: string) => void; verbosity: number }): Destination {
  let destPath: string;
  try { destPath = realpathSync(dest); } catch (e) {
    throw new RefusedError(`cannot open destination directory ${dest}: ${(e as Error).message}`);
  }
  let mountPath: string;
  if (opts.rootMount !== undefined) {
    mountPath = realpathSync(opts.rootMount);
  } else {
    const found = findMountPoint(destPath);
    if (!found || found.type !== 'btrfs') {
      throw new RefusedError(withHint(`${destPath} doesn't belong to btrfs mount point`, notBtrfsHint('receive')));
    }
    mountPath = found.mnt;
  }
  const flags = FsConst.O_RDONLY | FsConst.O_DIRECTORY;
  const destFd = openat(FsConst.AT_FDCWD, Buffer.from(destPath), flags);
  let mntFd = -1;
  try {
    mntFd = openat(FsConst.AT_FDCWD, Buffer.from(mountPath), flags);
    const mountedId = rootIdOf(mntFd);
    const mountedSubvolPath = mountedId === 5 ? Buffer.alloc(0) : subvolPathFromTopRaw(mntFd, mountedId);
    if (opts.chroot) {
      // Everything else is done through destFd/mntFd; the chroot only narrows what the process sees.
      procFdDir(); // keep /proc/self/fd reachable for reopening O_PATH fds inside the chroot
      chroot(Buffer.from(destPath));
      process.chdir('/');
      if (opts.verbosity >= 1) opts.log(`Chroot to ${destPath}`);
    }
    return {
      destPath, destFd, mountPath, mntFd, mountedSubvolPath,
      close() { close(destFd); close(mntFd); },
    };
  } catch (e) {
    close(destFd);
    if (mntFd >= 0) close(mntFd);
    throw e;
  }
}
