// One handler per stream command (protocol.md §3), applied to the subvolume being received.
// Every path goes through PathResolver (beneath the subvolume root, never through a symlink).
import { fstatSync, readSync } from 'node:fs';
import type {
  ChownCommand, CloneCommand, Command, EnableVerityCommand, EncodedWriteCommand, FileattrCommand, MknodCommand,
} from '../stream/commands.js';
import { cloneRange } from '../sys/btrfs-ioctl.js';
import {
  close, fallocate, fchmod, fchmodat, fchmodat2NoFollow, fchown, fchownat, fremovexattr, fsetxattr, FsConst, ftruncate, futimens,
  fstatMode, fstatOwner, linkat, lremovexattrAt, lsetxattrAt, lstatInoAt, lstatModeAt, lstatOwnerAt, mkdirat, mknodat,
  openat, pwriteAll, renameat, symlinkat, unlinkat, utimensat,
} from '../sys/fs.js';
import { printablePath, SysError } from '../sys/libc.js';
import { enableVerity } from '../sys/verity.js';
import { applyEncodedWrite, decodeFailure } from './encoded-write.js';
import { applyFileattr } from './fileattr.js';
import type { Destination } from './destination.js';
import { RefusedError } from './errors.js';
import type { CreateCommand } from './held-create.js';
import { PathResolver, type Parent } from './path-resolver.js';
import { PlainDirs } from './plain-dirs.js';
import { findByUuid, openFound, uuidText } from './subvol.js';
import { WriteCache } from './write-cache.js';

const S_IFMT = 0o170000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const SETID = 0o6000;
const SETGID = 0o2000;
const GROUP_OTHER_WRITE = 0o022;
const CAPABILITY_XATTR = Buffer.from('security.capability');
/** system.posix_acl_access / _default (and any other system.* xattr) may grant write access. */
const SYSTEM_XATTR = Buffer.from('system.');
/** onInode/atParent: the xattr calls need the parent's own fd and a single component. */
const DIRECT = true;
/** errnos that say the filesystem failed, not that a name cannot be made this way (EIO, ENOMEM, ENOSPC,
 *  EROFS, EUCLEAN, EDQUOT). */
const FILESYSTEM_FAILURES = new Set([5, 12, 28, 30, 117, 122]);
/** FILEATTRs are applied at finalization through an fd kept per inode; this bounds the fds held. */
const MAX_PENDING_FILEATTRS = 16384;

export interface ApplyOptions {
  forceDecompress: boolean;
  /** Let the kernel walk whole paths in subvolumes this receive creates (path-resolver.ts); default true. */
  walkPaths?: boolean;
  verifyEncoded: boolean;
  verbosity: number;
  log: (line: string) => void;
}

/** State of the subvolume being received. */
export class SubvolReceiver {
  readonly resolver: PathResolver;
  readonly writes: WriteCache;
  /** FILEATTR values applied at finalization, one fd per inode (paths may change meanwhile). */
  private readonly fileattrs = new Map<string, { fd: number; flags: number; path: Buffer }>();
  /** Clone source subvolumes other than this one, by UUID (hex). */
  private readonly cloneRoots = new Map<string, { fd: number; resolver: PathResolver }>();
  private fallbackReported = false;
  /** A security.capability xattr was set in this subvolume (a CHOWN then drops it: never skip one). */
  private capabilitiesSet = false;
  /** Directories whose new inodes inherit nothing (for createAt). */
  private readonly plainDirs: PlainDirs;
  /** Errors in commands of this subvolume (with -E 0 the receive goes on but never finalizes it). */
  errors = 0;
  dataBytes = 0;
  /** ENCODED_WRITE extents written as they came / decompressed first (for the progress summary). */
  encodedExtents = 0;
  decompressedExtents = 0;

  constructor(
    readonly name: Buffer,
    /** Absolute path as shown to the user. */
    readonly absPath: string,
    readonly uuid: Buffer,
    readonly ctransid: number,
    readonly rootFd: number,
    private readonly dest: Destination,
    private readonly opts: ApplyOptions,
    /** The subvolume was created empty by this receive (SUBVOL), not snapshotted from another. */
    createdEmpty = false,
  ) {
    this.resolver = new PathResolver(rootFd);
    // Empty and root's alone: no component of a path can be a symlink or a directory someone else could
    // put one in, until the stream itself allows it (stopWalkingPaths).
    this.resolver.walkPaths = createdEmpty && opts.walkPaths !== false;
    this.writes = new WriteCache(this.resolver);
    this.plainDirs = new PlainDirs(this.resolver);
  }

  /** `name/path` for messages. */
  shown(path: Buffer): string {
    return path.length === 0 ? printablePath(this.name) : `${printablePath(this.name)}/${printablePath(path)}`;
  }

  apply(cmd: Command): void {
    switch (cmd.cmd) {
      case 'write': {
        const fd = this.writes.get(cmd.path);
        pwriteAll(fd, cmd.data, cmd.offset, cmd.path);
        this.dataBytes += cmd.data.length;
        return;
      }
      case 'mkfile': return this.atParent(cmd.path, (p) => {
        // O_EXCL made a new regular file: keep its fd as the write fd (its data usually follows, after
        // a RENAME from the orphan name) — saves the safe reopen of every new file (docs/benchmarks.md).
        const fd = openat(p.dirfd, p.name, FsConst.O_CREAT | FsConst.O_EXCL | FsConst.O_RDWR | FsConst.O_NOFOLLOW, 0o600);
        this.writes.adopt(cmd.path, fd);
      });
      case 'mkdir': return this.atParent(cmd.path, (p) => mkdirat(p.dirfd, p.name, 0o700));
      case 'mknod': case 'mkfifo': case 'mksock': return this.mknod(cmd);
      case 'symlink': {
        this.stopWalkingPaths();
        return this.atParent(cmd.path, (p) => symlinkat(cmd.target, p.dirfd, p.name));
      }
      case 'rename': return this.rename(cmd.path, cmd.to);
      case 'link': return this.atParent(cmd.target, (existing) => this.atParent(cmd.path, (created) => {
        linkat(existing.dirfd, existing.name, created.dirfd, created.name, 0);
      }), 'link target');
      case 'unlink': {
        this.writes.drop();
        return this.atParent(cmd.path, (p) => unlinkat(p.dirfd, p.name, 0));
      }
      case 'rmdir': {
        this.writes.drop();
        try {
          return this.atParent(cmd.path, (p) => unlinkat(p.dirfd, p.name, FsConst.AT_REMOVEDIR));
        } finally {
          this.invalidateDirs();
        }
      }
      case 'set_xattr': {
        // A regular file (the write fd's) passes nothing on and lets no one in; anything else may.
        if (!this.isWriteFile(cmd.path)) {
          this.plainDirs.forget(); // a default ACL or a property may now be inherited
          if (cmd.name.subarray(0, SYSTEM_XATTR.length).equals(SYSTEM_XATTR)) this.stopWalkingPaths(); // an ACL
        }
        if (cmd.name.equals(CAPABILITY_XATTR)) this.capabilitiesSet = true;
        return this.onInode(cmd.path,
          (fd) => fsetxattr(fd, cmd.name, cmd.value, 0, cmd.path),
          (p) => lsetxattrAt(p.dirfd, p.name, cmd.name, cmd.value, 0, cmd.path), DIRECT);
      }
      case 'remove_xattr': {
        if (!this.isWriteFile(cmd.path)) this.plainDirs.forget();
        return this.onInode(cmd.path,
          (fd) => fremovexattr(fd, cmd.name, cmd.path),
          (p) => lremovexattrAt(p.dirfd, p.name, cmd.name, cmd.path), DIRECT);
      }
      case 'clone': return this.clone(cmd);
      case 'truncate': return ftruncate(this.writes.get(cmd.path), cmd.size, cmd.path);
      case 'chmod': {
        if (!this.isWriteFile(cmd.path)) {
          if (cmd.mode & SETGID) this.plainDirs.forget(); // a set-gid directory passes its group on
          if (cmd.mode & GROUP_OTHER_WRITE) this.stopWalkingPaths(); // others may add entries
        }
        return this.onInode(cmd.path,
          (fd) => fchmod(fd, cmd.mode & 0o7777, cmd.path),
          (p) => chmodNoFollow(p, cmd.mode & 0o7777, cmd.path));
      }
      case 'chown': return this.chown(cmd);
      case 'utimes': return this.onInode(cmd.path,
        (fd) => futimens(fd, cmd.atime, cmd.mtime, cmd.path),
        (p) => utimensat(p.dirfd, p.name, cmd.atime, cmd.mtime));
      case 'update_extent': {
        // --no-data stream: the data is not sent, but the range exists on the sender. progs does nothing,
        // leaving the file shorter than the source, so later CLONEs from it fail (EINVAL, beyond EOF).
        // We give the file the size a WRITE would have given it (the range reads as zeros).
        const fd = this.writes.get(cmd.path);
        if (fstatSync(fd).size < cmd.offset + cmd.size) ftruncate(fd, cmd.offset + cmd.size, cmd.path);
        return;
      }
      case 'fallocate': return fallocate(this.writes.get(cmd.path), cmd.mode, cmd.offset, cmd.size, cmd.path);
      case 'fileattr': return this.fileattr(cmd);
      case 'encoded_write': return this.encodedWrite(cmd);
      case 'enable_verity': return this.enableVerity(cmd);
      case 'subvol': case 'snapshot': case 'end':
        throw new Error(`internal: ${cmd.cmd} reached the command applier`);
    }
  }

  /**
   * Create `cmd`'s inode directly at `to`, the name the RENAME that follows it would give it (see
   * held-create.ts). False, with nothing changed, when that cannot be done simply — `to` exists (the
   * rename would replace it), a parent inherits something, or is missing or refused: the caller then
   * applies the create and the rename as sent, so their effects and errors stay those of the stream.
   * A failure of the filesystem itself (EIO, ENOSPC, ...) is thrown: it is the create's failure.
   */
  createAt(cmd: CreateCommand, to: Buffer): boolean {
    if (to.length === 0 || this.resolver.hasCachedAtOrUnder(to) || this.writes.isAtOrUnder(to)) return false;
    try {
      if (!this.parentIsPlain(cmd.path) || !this.parentIsPlain(to)) return false;
      this.apply({ ...cmd, path: to });
    } catch (e) {
      if (e instanceof SysError && FILESYSTEM_FAILURES.has(e.errno)) throw e;
      return false;
    }
    if (cmd.cmd === 'mkdir' && !this.allPlain()) {
      // Its children will be made in it: what it passes on is known (nothing), no need to look later.
      try {
        this.atParent(to, (p) => this.plainDirs.madePlain(lstatInoAt(p.dirfd, p.name)));
      } catch {
        // Only a shortcut: without it the directory is inspected when first used.
      }
    }
    return true;
  }

  private parentIsPlain(path: Buffer): boolean {
    if (this.allPlain()) return this.plainDirs.isPlain(this.rootFd);
    const p = this.resolver.directParent(path, 'path');
    try { return this.plainDirs.isPlain(p.dirfd); } finally { this.resolver.release(p); }
  }

  /**
   * Whether every directory here is as plain as the root: in walking mode each one was made by this
   * receive (mode 0700, nothing set on it), and nothing has been set on any since (PlainDirs.forget()).
   */
  private allPlain(): boolean {
    return this.resolver.walkPaths && this.plainDirs.untouched;
  }

  /**
   * Leave walking mode for good: the stream is about to make a symlink, or a directory others may
   * write to (where anyone could make one). From here every parent is opened with openat2, which
   * refuses to pass through a symlink.
   */
  private stopWalkingPaths(): void {
    this.resolver.walkPaths = false;
  }

  /** Whether `path` is the regular file whose write fd is cached. */
  private isWriteFile(path: Buffer): boolean {
    return path.length > 0 && this.writes.isFor(path);
  }

  /**
   * ENCODED_WRITE; `decoded` is the extent already decoded ahead (src/receive/decode-ahead.ts), or
   * `decodeError` what decoding it threw; `checked`: it was decoded ahead (kept or not), so it decodes.
   */
  encodedWrite(cmd: EncodedWriteCommand, decoded?: Buffer, decodeError?: unknown, checked = decoded !== undefined): void {
    const fd = this.writes.get(cmd.path);
    if (decodeError !== undefined) throw decodeFailure(cmd, decodeError);
    const how = applyEncodedWrite(fd, cmd, {
      forceDecompress: this.opts.forceDecompress,
      verify: this.opts.verifyEncoded && !checked,
      onFallback: (reason) => {
        // Once per subvolume, at the default verbosity: the user should know their data is being
        // decompressed (and will be stored as the destination's mount options say).
        if (!this.fallbackReported && this.opts.verbosity >= 1) {
          this.opts.log(`encoded_write ${this.shown(cmd.path)}: falling back to decompress and write: ${reason}`);
        }
        this.fallbackReported = true;
      },
      ...(decoded !== undefined ? { decoded } : {}),
    });
    if (how === 'encoded') this.encodedExtents++;
    else this.decompressedExtents++;
    this.dataBytes += cmd.unencodedFileLen;
  }

  /**
   * RENAME. A rename can only change what a *cached* path names if that path is one of the two names
   * or lies beneath one of them (a moved or replaced directory): then the directory caches are dropped,
   * and the write fd if its path is among them. Anything else keeps the caches — this keeps full
   * sends, where every inode is renamed from its orphan name, off the slow path, without a stat per
   * rename (measured in docs/benchmarks.md).
   */
  private rename(path: Buffer, to: Buffer): void {
    let affected = true;
    try {
      this.atParent(path, (from) => this.atParent(to, (dst) => {
        affected = this.resolver.hasCachedAtOrUnder(path) || this.resolver.hasCachedAtOrUnder(to);
        // The write fd of the renamed file itself stays valid under its new name; anything else the
        // rename may affect (a file beneath a moved directory, the replaced target) is dropped.
        const movesCached = this.writes.isFor(path);
        if (!movesCached && (this.writes.isAtOrUnder(path) || this.writes.isAtOrUnder(to))) this.writes.drop();
        renameat(from.dirfd, from.name, dst.dirfd, dst.name);
        if (movesCached) this.writes.renamed(to);
      }, 'rename destination'), 'rename source');
    } finally {
      if (affected) this.invalidateDirs();
    }
  }

  private invalidateDirs(): void {
    this.resolver.invalidate();
    for (const r of this.cloneRoots.values()) r.resolver.invalidate();
  }

  /** Run `fn` with the parent dir of `path`; the root itself is refused (it cannot be created/moved). */
  private atParent(path: Buffer, fn: (p: Parent) => void, what = 'path', direct = false): void {
    if (path.length === 0) throw new RefusedError(`the subvolume root cannot be the ${what} of this command`);
    const p = direct ? this.resolver.directParent(path, what) : this.resolver.parent(path, what);
    try { fn(p); } finally { this.resolver.release(p); }
  }

  /**
   * Metadata commands: the root goes through its fd, the file whose write fd is cached through that fd
   * (no path walk: a new file's CHOWN, CHMOD and UTIMES follow its data), anything else through
   * parent fd + name.
   */
  private onInode(path: Buffer, onFd: (fd: number) => void, onName: (p: Parent) => void, direct = false): void {
    if (path.length === 0) return onFd(this.rootFd);
    if (this.writes.isFor(path)) return onFd(this.writes.get(path));
    this.atParent(path, onName, 'path', direct);
  }

  private mknod(cmd: MknodCommand): void {
    this.atParent(cmd.path, (p) => {
      if (cmd.cmd === 'mkfifo') mknodat(p.dirfd, p.name, S_IFIFO | 0o600, 0);
      else if (cmd.cmd === 'mksock') mknodat(p.dirfd, p.name, S_IFSOCK | 0o600, 0);
      else mknodat(p.dirfd, p.name, cmd.mode & S_IFMT, cmd.rdev);
    });
  }

  /**
   * lchown; chown(2) clears set-uid/set-gid, and when only the owner changed the kernel sends no CHMOD
   * after it (progs loses the bits): put back the mode the inode had before.
   */
  private chown(cmd: ChownCommand): void {
    // An owner other than root may add entries to a directory (or make it writable to others).
    if ((cmd.uid !== 0 || cmd.gid !== 0) && !this.isWriteFile(cmd.path)) this.stopWalkingPaths();
    if (this.writes.isNewFile(cmd.path) && !this.capabilitiesSet) {
      // A file this receive created, still owned by us: a CHOWN to that same owner would change nothing
      // but ctime (no set-id bit to clear, no capability to drop), and costs a transaction.
      const st = fstatOwner(this.writes.get(cmd.path));
      if (st.uid === cmd.uid && st.gid === cmd.gid && !(st.mode & SETID)) return;
    }
    const fd = cmd.path.length === 0 ? this.rootFd : this.writes.isFor(cmd.path) ? this.writes.get(cmd.path) : -1;
    if (fd >= 0) {
      const before = fstatMode(fd);
      fchown(fd, cmd.uid, cmd.gid, cmd.path);
      if (before & SETID) {
        const after = fstatMode(fd);
        if ((after & 0o7777) !== (before & 0o7777)) fchmod(fd, before & 0o7777, cmd.path);
      }
      return;
    }
    this.atParent(cmd.path, (p) => {
      const st = lstatOwnerAt(p.dirfd, p.name);
      const before = st.mode;
      // chown(2) of a directory clears no mode bit and drops no capability, and a symlink has
      // neither: to the owner it already has, it would change nothing but ctime.
      const type = before & S_IFMT;
      if ((type === S_IFDIR || type === S_IFLNK) && st.uid === cmd.uid && st.gid === cmd.gid) return;
      fchownat(p.dirfd, p.name, cmd.uid, cmd.gid);
      if ((before & SETID) && type !== S_IFLNK) {
        const after = lstatModeAt(p.dirfd, p.name);
        if ((after & 0o7777) !== (before & 0o7777)) chmodNoFollow(p, before & 0o7777, cmd.path);
      }
    });
  }

  /** The resolver for CLONE_UUID: this subvolume, or another found by (received) UUID. */
  private cloneRoot(uuid: Buffer): PathResolver {
    if (uuid.equals(this.uuid)) return this.resolver;
    const key = uuid.toString('hex');
    const known = this.cloneRoots.get(key);
    if (known) return known.resolver;
    const found = findByUuid(this.dest, uuid);
    if (!found) throw new RefusedError(`clone: cannot find source subvolume ${uuidText(uuid)}`);
    if (!found.readOnly) {
      throw new RefusedError(`clone: source subvolume ${printablePath(found.relPath)} (uuid ${uuidText(uuid)}) is not read-only`);
    }
    const fd = openFound(this.dest, found);
    const entry = { fd, resolver: new PathResolver(fd) };
    this.cloneRoots.set(key, entry);
    return entry.resolver;
  }

  private clone(cmd: CloneCommand): void {
    const dst = this.writes.get(cmd.path);
    const src = this.cloneRoot(cmd.cloneUuid).openForIo(cmd.clonePath, FsConst.O_RDONLY, { what: 'clone source path' });
    try {
      try {
        cloneRange(dst, src, cmd.cloneOffset, cmd.len, cmd.offset, cmd.path);
      } catch (e) {
        // EINVAL: the source range is not there as the sender had it — typically a --no-data stream,
        // whose files have no data and so end before the cloned range. Copy what exists and give the
        // destination the size the clone would have given it.
        if (!(e instanceof SysError) || (e.errno !== 22 && e.errno !== 95 && e.errno !== 18)) throw e;
        // An overlapping range within one file is refused by the kernel for a reason (no sender makes
        // one); copying it would need care about direction, and progs fails there too.
        if (sameFileOverlap(dst, src, cmd)) throw e;
        copyRange(dst, src, cmd.cloneOffset, cmd.len, cmd.offset, cmd.path);
        if (this.opts.verbosity >= 2) {
          this.opts.log(`clone ${this.shown(cmd.path)}: ${e.code}, copied the range instead`);
        }
      }
    } finally {
      close(src);
    }
  }

  private fileattr(cmd: FileattrCommand): void {
    const pfd = this.resolver.openPath(cmd.path);
    let st;
    try { st = fstatSync(pfd); } finally { close(pfd); }
    if (!st.isFile() && !st.isDirectory()) {
      // Flags ioctls on a device node would reach the driver, not the inode.
      if (this.opts.verbosity >= 1) this.opts.log(`fileattr ${this.shown(cmd.path)}: not a regular file or directory, ignored`);
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    const old = this.fileattrs.get(key);
    if (old) { old.flags = cmd.flags; return; }
    if (this.fileattrs.size >= MAX_PENDING_FILEATTRS) {
      // One fd per pending inode: a stream with more (no real one comes close) would exhaust fds.
      throw new RefusedError(`more than ${MAX_PENDING_FILEATTRS} inodes with pending FILEATTR in one subvolume`);
    }
    const fd = this.resolver.openForIo(cmd.path, FsConst.O_RDONLY, { allowDir: true });
    this.fileattrs.set(key, { fd, flags: cmd.flags, path: Buffer.from(cmd.path) }); // outlives the reader's buffer
  }

  private enableVerity(cmd: EnableVerityCommand): void {
    this.writes.drop(); // no writers may remain open
    const fd = this.resolver.openForIo(cmd.path, FsConst.O_RDONLY);
    try {
      enableVerity(fd, cmd.algorithm, cmd.blockSize, cmd.salt, cmd.sig, this.shown(cmd.path));
    } finally {
      close(fd);
    }
  }

  /** After the last command: flush pending FILEATTRs (they may forbid writes, so they come last). */
  finishData(): void {
    this.writes.drop();
    for (const [key, entry] of this.fileattrs) {
      this.fileattrs.delete(key);
      try { applyFileattr(entry.fd, entry.flags, this.shown(entry.path)); } finally { close(entry.fd); }
    }
  }

  /** Close every fd (also after a failure). */
  dispose(): void {
    this.writes.drop();
    for (const entry of this.fileattrs.values()) close(entry.fd);
    this.fileattrs.clear();
    for (const entry of this.cloneRoots.values()) { entry.resolver.dispose(); close(entry.fd); }
    this.cloneRoots.clear();
    this.resolver.dispose();
    close(this.rootFd);
  }
}

/** chmod that refuses a symlink instead of following it (the kernel never sends CHMOD for one). */
function chmodNoFollow(p: Parent, mode: number, path: Buffer): void {
  // Linux ≥ 6.6: one call that refuses a symlink itself (no stat first).
  const done = fchmodat2NoFollow(p.dirfd, p.name, mode, path);
  if (done === 'symlink') throw new SysError('fchmodat', 95 /* EOPNOTSUPP */, `${printablePath(path)} (a symlink)`);
  if (done === 'ok') return;
  if ((lstatModeAt(p.dirfd, p.name) & S_IFMT) === S_IFLNK) {
    throw new SysError('fchmodat', 95 /* EOPNOTSUPP */, `${printablePath(path)} (a symlink)`);
  }
  // Not a symlink, and nothing but this process changes the tree: chmod by name cannot be redirected.
  fchmodat(p.dirfd, p.name, mode, 0);
}

/** Whether a CLONE's source and destination ranges overlap inside one and the same file. */
function sameFileOverlap(dst: number, src: number, cmd: CloneCommand): boolean {
  const a = fstatSync(dst);
  const b = fstatSync(src);
  if (a.dev !== b.dev || a.ino !== b.ino) return false;
  return cmd.cloneOffset < cmd.offset + cmd.len && cmd.offset < cmd.cloneOffset + cmd.len;
}

/** Copy up to `len` bytes (stopping at the source's EOF), then extend dst to dstOff+len if shorter. */
function copyRange(dst: number, src: number, srcOff: number, len: number, dstOff: number, path: Buffer): void {
  const chunk = Buffer.allocUnsafe(Math.min(len, 1 << 20));
  let done = 0;
  while (done < len) {
    const n = readSync(src, chunk, 0, Math.min(chunk.length, len - done), srcOff + done);
    if (n <= 0) break;
    pwriteAll(dst, chunk.subarray(0, n), dstOff + done, path);
    done += n;
  }
  if (fstatSync(dst).size < dstOff + len) ftruncate(dst, dstOff + len, path);
}
