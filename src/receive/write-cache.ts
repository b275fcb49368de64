// The one cached O_RDWR fd for data commands (WRITE, CLONE destination, TRUNCATE, FALLOCATE,
// ENCODED_WRITE): consecutive commands on the same path reuse it. Unlike progs (which keys by the path
// string forever), a namespace change that may affect its path (UNLINK, RMDIR, a RENAME of a directory
// or from/to that very path) drops it, so a later command never writes to a stale or unlinked inode
// that the path no longer names.
import { close, FsConst } from '../sys/fs.js';
import type { PathResolver } from './path-resolver.js';

export class WriteCache {
  private path: Buffer | undefined;
  private fd = -1;
  /** The cached fd's file was created by this receive (MKFILE), not opened from an existing one. */
  private created = false;

  constructor(private readonly resolver: PathResolver) {}

  /** A read-write fd of the regular file at `path` (opened safely on a miss). */
  get(path: Buffer): number {
    if (this.fd >= 0 && this.path !== undefined && this.path.equals(path)) return this.fd;
    this.drop();
    this.fd = this.resolver.openForIo(path, FsConst.O_RDWR);
    this.created = false;
    this.path = Buffer.from(path); // the reader recycles its buffers
    return this.fd;
  }

  /** Cache `fd`, a read-write fd of the regular file at `path` this receive just created (O_EXCL). */
  adopt(path: Buffer, fd: number): void {
    this.drop();
    this.fd = fd;
    this.path = Buffer.from(path);
    this.created = true;
  }

  /** Whether the cached fd is for `path` and its file was created by this receive. */
  isNewFile(path: Buffer): boolean {
    return this.created && this.isFor(path);
  }

  /** The cached file was renamed (not replaced, not moved with a directory): it is now at `to`. */
  renamed(to: Buffer): void {
    if (this.fd >= 0) this.path = Buffer.from(to);
  }

  /** Whether the cached fd was opened for `path`. */
  isFor(path: Buffer): boolean {
    return this.fd >= 0 && this.path !== undefined && this.path.equals(path);
  }

  /** Whether the cached fd's path is `path` or lies beneath it (a rename of `path` changes it). */
  isAtOrUnder(path: Buffer): boolean {
    const mine = this.path;
    if (this.fd < 0 || mine === undefined) return false;
    if (path.length === 0) return true;
    if (mine.length < path.length || mine.compare(path, 0, path.length, 0, path.length) !== 0) return false;
    return mine.length === path.length || mine[path.length] === 0x2f;
  }

  /** Close the cached fd (namespace change, end of subvolume, before ENABLE_VERITY). */
  drop(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      this.path = undefined;
      close(fd);
    }
  }
}
