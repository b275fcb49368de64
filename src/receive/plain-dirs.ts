// Whether a new inode made in a directory inherits something from it. Creating an inode at its final
// name instead of under its orphan name and renaming it (held-create.ts) is only the same when neither
// directory passes anything on: a set-gid directory gives its group (and, to a subdirectory, its set-gid
// bit), a default ACL becomes the new inode's ACL, the btrfs.compression property is copied, and the
// COMPRESS/NOCOMPRESS/NODATACOW inode flags are inherited, and a security module that labels directories
// (a `security.*` xattr: SELinux, Smack) may label new inodes after the directory they are made in.
import { close, FsConst, fstatInoMode, flistxattr, openat } from '../sys/fs.js';
import { getFsFlags } from '../sys/fileattr.js';
import type { PathResolver } from './path-resolver.js';

const S_ISGID = 0o2000;
const DOT = Buffer.from('.');
const DEFAULT_ACL = 'system.posix_acl_default';
/** Directories remembered by inode (then forgotten all at once): memory stays bounded on any tree. */
const MAX_KNOWN_DIRS = 8192;

export class PlainDirs {
  /** Answers by directory fd, valid while the resolver keeps its fds (same epoch): an fd names one
   *  inode until it is closed. */
  private readonly byFd = new Map<number, boolean>();
  private epoch = -1;
  /**
   * Answers by directory inode number, kept across the resolver's epochs (inode numbers are not reused
   * within one receive). What could change a directory clears both maps: an xattr set or removed, a
   * mode with set-gid (forget()). Inode flags are only changed at finalization (FILEATTR).
   */
  private readonly byIno = new Map<number, boolean>();

  /** Nothing that could make a directory pass something on has been set since the start (forget()). */
  untouched = true;

  constructor(private readonly resolver: PathResolver) {}

  /** True when creating in the directory `dirfd` (one of the resolver's fds) inherits nothing from it. */
  isPlain(dirfd: number): boolean {
    if (this.epoch !== this.resolver.epoch) {
      this.byFd.clear();
      this.epoch = this.resolver.epoch;
    }
    let plain = this.byFd.get(dirfd);
    if (plain === undefined) {
      const { ino, mode } = fstatInoMode(dirfd);
      if (mode & S_ISGID) {
        plain = false;
      } else {
        plain = this.byIno.get(ino);
        if (plain === undefined) {
          plain = inheritsNothing(dirfd);
          this.remember(ino, plain);
        }
      }
      this.byFd.set(dirfd, plain);
    }
    return plain;
  }

  /** A directory this receive has just made (mode 0700, no xattr, no flag) inside a plain one. */
  madePlain(ino: number): void {
    this.remember(ino, true);
  }

  private remember(ino: number, plain: boolean): void {
    if (this.byIno.size >= MAX_KNOWN_DIRS) this.byIno.clear();
    this.byIno.set(ino, plain);
  }

  /** An xattr or a set-gid bit may have changed somewhere (SET_XATTR, REMOVE_XATTR, CHMOD): look again. */
  forget(): void {
    this.untouched = false;
    this.byFd.clear();
    this.byIno.clear();
  }
}

function inheritsNothing(dirfd: number): boolean {
  const fd = openat(dirfd, DOT, FsConst.O_RDONLY | FsConst.O_DIRECTORY);
  try {
    if (getFsFlags(fd) !== 0) return false;
    for (const name of flistxattr(fd).toString('latin1').split('\0')) {
      // security.*: an LSM (SELinux, Smack) may label new inodes from their directory.
      if (name === DEFAULT_ACL || name.startsWith('btrfs.') || name.startsWith('security.')) return false;
    }
    return true;
  } finally {
    close(fd);
  }
}
