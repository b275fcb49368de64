// Whether a new inode made in a directory inherits something from it. Creating an inode at its final
// name instead of under its orphan name and renaming it (held-create.ts) is only the same when neither
// directory passes anything on: a set-gid directory gives its group (and, to a subdirectory, its set-gid
// bit), a default ACL becomes the new inode's ACL, the btrfs.compression property is copied, and the
// COMPRESS/NOCOMPRESS/NODATACOW inode flags are inherited.
import { close, FsConst, fstatInoMode, flistxattr, openat } from '../sys/fs.js';
import { getFsFlags } from '../sys/fileattr.js';

const S_ISGID = 0o2000;
const DOT = Buffer.from('.');
const DEFAULT_ACL = 'system.posix_acl_default';

export class PlainDirs {
  /** Directory inode number → no inheritable xattr and no inode flags. Inode numbers are not reused
   *  within one subvolume's receive. */
  private readonly known = new Map<number, boolean>();

  /** True when creating in the directory `dirfd` (O_PATH is fine) inherits nothing from it. */
  isPlain(dirfd: number): boolean {
    const { ino, mode } = fstatInoMode(dirfd); // the mode fresh every time: CHMOD may set set-gid
    if (mode & S_ISGID) return false;
    let plain = this.known.get(ino);
    if (plain === undefined) {
      plain = this.inspect(dirfd);
      this.known.set(ino, plain);
    }
    return plain;
  }

  /** An xattr was set or removed somewhere (SET_XATTR, REMOVE_XATTR): look again. */
  forget(): void {
    this.known.clear();
  }

  private inspect(dirfd: number): boolean {
    const fd = openat(dirfd, DOT, FsConst.O_RDONLY | FsConst.O_DIRECTORY);
    try {
      if (getFsFlags(fd) !== 0) return false;
      for (const name of flistxattr(fd).toString('latin1').split('\0')) {
        if (name === DEFAULT_ACL || name.startsWith('btrfs.')) return false;
      }
      return true;
    } finally {
      close(fd);
    }
  }
}
