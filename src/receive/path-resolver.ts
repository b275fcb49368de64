// Safe path resolution inside the subvolume being received (protocol.md §8).
//
// Stream paths are relative to a subvolume root. Each one is checked lexically (no absolute path, no
// empty, `.` or `..` component, no NUL; '' alone names the root) and its parent directory is opened
// with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) from the root fd, so neither
// `..` nor a symlink (made by the stream or not) can lead outside. The last component is then used with
// *at calls that never follow it (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW, l*xattr, O_EXCL creation).
//
// Walking mode (`walkPaths`): in a subvolume this receive created empty, where no symlink can exist yet
// and no one but root can write, the whole checked path is handed to the *at call with the root fd and
// the kernel walks it, as progs does: no openat2 + close per directory. The owner turns it off for good
// before anything that could let a symlink in (apply.ts, `stopWalkingPaths`).
import { fstatSync } from 'node:fs';
import { FsConst, openat, openat2, close, reopen } from '../sys/fs.js';
import { SysError, printablePath } from '../sys/libc.js';
import { UnsafePathError } from './errors.js';

const SLASH = 0x2f;
const DOT = 0x2e;
const EMPTY = Buffer.alloc(0);

/** Throws UnsafePathError unless `path` is '' or a/b/c with ordinary components. */
export function checkPath(path: Buffer, what = 'path'): void {
  if (path.length === 0) return;
  if (path.includes(0)) throw new UnsafePathError(what, path, 'contains a NUL byte');
  if (path[0] === SLASH) throw new UnsafePathError(what, path, 'is absolute');
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === SLASH) {
      const len = i - start;
      if (len === 0) throw new UnsafePathError(what, path, 'has an empty component');
      if (path[start] === DOT && (len === 1 || (len === 2 && path[start + 1] === DOT))) {
        throw new UnsafePathError(what, path, `has a '${len === 1 ? '.' : '..'}' component`);
      }
      start = i + 1;
    }
  }
}

/** A single component: what SUBVOL/SNAPSHOT may name. */
export function checkName(name: Buffer, what = 'subvolume name'): void {
  if (name.length === 0) throw new UnsafePathError(what, name, 'is empty');
  if (name.includes(SLASH)) throw new UnsafePathError(what, name, "must be a single component (contains '/')");
  checkPath(name, what);
}

/** The directory holding a path's last component, and that component. `dirfd` is closed by release(). */
export interface Parent {
  dirfd: number;
  /** Last component; empty for the root itself. */
  name: Buffer;
  /** True when `dirfd` was opened for this lookup (and must be closed). */
  owned: boolean;
}

/** How many parent directory fds PathResolver keeps open. */
const DIR_CACHE_SIZE = 64;

export class PathResolver {
  /**
   * Parent directories already resolved (safely), by path. A directory's path can only start naming a
   * different inode through a RENAME of a directory or an RMDIR, so the owner calls invalidate() after
   * each of those.
   * (SYMLINK, MKDIR, MKFILE and LINK cannot replace an existing directory entry.)
   */
  private readonly dirs = new Map<string, number>();
  /** Counts invalidate() calls: a dirfd handed out before it may since have been closed and reused. */
  epoch = 0;

  /**
   * Parents are the root fd and the whole path (the kernel walks it). Only where no component can be a
   * symlink or a directory someone else may write to: see the file comment.
   */
  walkPaths = false;

  /** @param rootFd an open directory fd of the subvolume root (O_RDONLY), owned by the caller. */
  constructor(readonly rootFd: number) {}

  /**
   * Where the *at call for `path` (checked) goes: its parent directory's fd and last component, or in
   * walking mode the root fd and the whole path. For '' the root fd and an empty name.
   */
  parent(path: Buffer, what = 'path'): Parent {
    if (this.walkPaths) {
      checkPath(path, what);
      return { dirfd: this.rootFd, name: path, owned: false };
    }
    return this.directParent(path, what);
  }

  /** The parent directory's own fd and the last component of `path` (checked), in any mode. */
  directParent(path: Buffer, what = 'path'): Parent {
    checkPath(path, what);
    const slash = path.lastIndexOf(SLASH);
    if (slash < 0) return { dirfd: this.rootFd, name: path, owned: false };
    const dir = path.subarray(0, slash);
    const key = dir.toString('latin1');
    let dirfd = this.dirs.get(key);
    if (dirfd === undefined) {
      dirfd = openat2(this.rootFd, dir, FsConst.O_PATH | FsConst.O_DIRECTORY);
      if (this.dirs.size >= DIR_CACHE_SIZE) this.invalidate();
      this.dirs.set(key, dirfd);
    }
    return { dirfd, name: path.subarray(slash + 1), owned: false };
  }

  release(p: Parent): void {
    if (p.owned) close(p.dirfd);
  }

  /** Whether a cached directory is `path` itself or lies beneath it (a rename of `path` may change it). */
  hasCachedAtOrUnder(path: Buffer): boolean {
    if (this.dirs.size === 0) return false;
    const key = path.toString('latin1');
    const prefix = key + '/';
    for (const dir of this.dirs.keys()) {
      if (dir === key || dir.startsWith(prefix)) return true;
    }
    return false;
  }

  /** Forget every cached directory (before a RENAME or RMDIR). */
  invalidate(): void {
    this.epoch++;
    for (const fd of this.dirs.values()) close(fd);
    this.dirs.clear();
  }

  /** Close everything. */
  dispose(): void {
    this.invalidate();
  }

  /**
   * Open `path` (any type, never through a symlink, the last component included) as an O_PATH fd.
   * For '' a fresh O_PATH fd of the root.
   */
  openPath(path: Buffer, what = 'path'): number {
    if (path.length === 0) return openat2(this.rootFd, Buffer.from('.'), FsConst.O_PATH);
    const p = this.parent(path, what);
    try {
      return openat(p.dirfd, p.name, FsConst.O_PATH | FsConst.O_NOFOLLOW);
    } finally {
      this.release(p);
    }
  }

  /**
   * Open the regular file (or, with allowDir, directory) at `path` for I/O without ever opening a device,
   * fifo or symlink: resolve it as O_PATH, check its type, then reopen that very inode via /proc.
   */
  openForIo(path: Buffer, flags: number, opts: { allowDir?: boolean; what?: string } = {}): number {
    const pfd = this.openPath(path, opts.what);
    try {
      const st = fstatSync(pfd);
      const ok = st.isFile() || (opts.allowDir === true && st.isDirectory());
      if (!ok) {
        throw new SysError('open', st.isDirectory() ? 21 /* EISDIR */ : 22 /* EINVAL */,
          `${printablePath(path)} (not a regular file)`);
      }
      const target = path.length === 0 ? Buffer.from('.') : path;
      return reopen(pfd, flags, () => openat2(this.rootFd, target, flags | FsConst.O_NOFOLLOW | FsConst.O_NONBLOCK), path);
    } finally {
      close(pfd);
    }
  }
}

export { EMPTY as EMPTY_PATH };
