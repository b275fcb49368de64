// The *at family of file system calls, taking raw Buffer paths (Linux names are bytes): the hot ones
// through fs-calls.ts (native/fs-calls.c, or koffi), the rest through koffi. Used by the receive engine
// to resolve every path beneath a directory fd without following symlinks. Each failure is a SysError
// naming the call, the path and errno. ftruncate uses Node's own fs function on the raw fd.
import { closeSync, fstatSync, ftruncateSync } from 'node:fs';
import { Resolve } from './constants.js';
import { check, cPath, koffi, libc, putInt64LE, SysError } from './libc.js';
import { fsCalls as sys } from './fs-calls.js';

/** Linux x86-64 values not exported by node:fs (checked against <fcntl.h> by native/abi-check.c). */
export const FsConst = {
  O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 0o100, O_EXCL: 0o200, O_TRUNC: 0o1000,
  O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000, O_NOATIME: 0o1000000, O_CLOEXEC: 0o2000000, O_PATH: 0o10000000,
  O_NONBLOCK: 0o4000,
  AT_FDCWD: -100, AT_SYMLINK_NOFOLLOW: 0x100, AT_REMOVEDIR: 0x200, AT_EMPTY_PATH: 0x1000,
  SYS_openat2: 437,
} as const;
const F = FsConst;

/** Where the fields we read sit in glibc's x86-64 `struct stat` (fstatat fills it; native/abi-check.c checks). */
export const StatLayout = {
  struct: 'stat', size: 144, st_ino: 8, st_mode: 24, st_uid: 28, st_gid: 32, st_size: 48, st_blksize: 56,
} as const;

export { OpenHowLayout } from './fs-calls.js';

/** openat2 flags that keep a lookup beneath its directory fd and off every symlink. */
export const RESOLVE_SAFE = Resolve.BENEATH | Resolve.NO_SYMLINKS | Resolve.NO_MAGICLINKS;

const openatRaw = libc.func('int openat(int dirfd, const uint8_t *path, int flags, uint32_t mode)');
const mknodatRaw = libc.func('int mknodat(int dirfd, const uint8_t *path, uint32_t mode, uint64_t dev)');
const symlinkatRaw = libc.func('int symlinkat(const uint8_t *target, int dirfd, const uint8_t *path)');
const renameatRaw = libc.func('int renameat(int olddirfd, const uint8_t *oldpath, int newdirfd, const uint8_t *newpath)');
const linkatRaw = libc.func('int linkat(int olddirfd, const uint8_t *oldpath, int newdirfd, const uint8_t *newpath, int flags)');
const unlinkatRaw = libc.func('int unlinkat(int dirfd, const uint8_t *path, int flags)');
const fchownatRaw = libc.func('int fchownat(int dirfd, const uint8_t *path, uint32_t uid, uint32_t gid, int flags)');
const fchmodatRaw = libc.func('int fchmodat(int dirfd, const uint8_t *path, uint32_t mode, int flags)');
const lsetxattrRaw = libc.func('int lsetxattr(const uint8_t *path, const uint8_t *name, const uint8_t *value, size_t size, int flags)');
const lremovexattrRaw = libc.func('int lremovexattr(const uint8_t *path, const uint8_t *name)');
const fsetxattrRaw = libc.func('int fsetxattr(int fd, const uint8_t *name, const uint8_t *value, size_t size, int flags)');
const fremovexattrRaw = libc.func('int fremovexattr(int fd, const uint8_t *name)');
const fallocateRaw = libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)');
const fchownRaw = libc.func('int fchown(int fd, uint32_t uid, uint32_t gid)');

/** A result of fs-calls.ts (-errno on failure) as a value, or a SysError naming the call and path. */
function checked(result: number, syscall: string, path?: Buffer): number {
  if (result < 0) throw new SysError(syscall, -result, path);
  return result;
}

/** openat2(2): open `path` beneath `dirfd` with the given resolve flags (default: RESOLVE_SAFE). */
export function openat2(dirfd: number, path: Buffer, flags: number, mode = 0, resolve: number = RESOLVE_SAFE): number {
  return checked(sys.openat2(dirfd, path, flags | F.O_CLOEXEC, mode, resolve), 'openat2', path);
}

export function openat(dirfd: number, path: Buffer, flags: number, mode = 0): number {
  return checked(sys.openat(dirfd, path, flags | F.O_CLOEXEC, mode), 'openat', path);
}

export function mkdirat(dirfd: number, path: Buffer, mode: number): void {
  checked(sys.mkdirat(dirfd, path, mode), 'mkdirat', path);
}

/** mknodat(2); `dev` in the kernel's "new" encoding (= glibc makedev for major < 4096). */
export function mknodat(dirfd: number, path: Buffer, mode: number, dev: number): void {
  check(mknodatRaw(dirfd, cPath(path), mode, dev) as number, 'mknodat', path);
}

/** symlinkat(2): `path` (beneath dirfd) becomes a symlink whose content is `target`, verbatim. */
export function symlinkat(target: Buffer, dirfd: number, path: Buffer): void {
  check(symlinkatRaw(cPath(target), dirfd, cPath(path)) as number, 'symlinkat', path);
}

export function renameat(olddirfd: number, oldpath: Buffer, newdirfd: number, newpath: Buffer): void {
  check(renameatRaw(olddirfd, cPath(oldpath), newdirfd, cPath(newpath)) as number, 'renameat', oldpath);
}

/** linkat(2) without AT_SYMLINK_FOLLOW: a symlink `oldpath` is linked itself, never its target. */
export function linkat(olddirfd: number, oldpath: Buffer, newdirfd: number, newpath: Buffer, flags = 0): void {
  check(linkatRaw(olddirfd, cPath(oldpath), newdirfd, cPath(newpath), flags) as number, 'linkat', newpath);
}

export function unlinkat(dirfd: number, path: Buffer, flags = 0): void {
  check(unlinkatRaw(dirfd, cPath(path), flags) as number, flags & F.AT_REMOVEDIR ? 'rmdir' : 'unlinkat', path);
}

/** fchownat(2) with AT_SYMLINK_NOFOLLOW (lchown semantics). */
export function fchownat(dirfd: number, path: Buffer, uid: number, gid: number, flags: number = F.AT_SYMLINK_NOFOLLOW): void {
  check(fchownatRaw(dirfd, cPath(path), uid, gid, flags) as number, 'fchownat', path);
}

export function fchown(fd: number, uid: number, gid: number, path?: Buffer): void {
  check(fchownRaw(fd, uid, gid) as number, 'fchown', path);
}

export function fchmod(fd: number, mode: number, path?: Buffer): void {
  checked(sys.fchmod(fd, mode), 'fchmod', path);
}

let fchmodat2Missing = false;

/**
 * fchmodat2(2) with AT_SYMLINK_NOFOLLOW (Linux ≥ 6.6): 'ok', 'symlink' (EOPNOTSUPP: `path` is a symlink,
 * nothing changed) or 'unsupported' (older kernel: use a stat + fchmodat instead). Other errors throw.
 */
export function fchmodat2NoFollow(dirfd: number, path: Buffer, mode: number, shownPath: Buffer = path): 'ok' | 'symlink' | 'unsupported' {
  if (fchmodat2Missing) return 'unsupported';
  const r = sys.fchmodat2(dirfd, path, mode, F.AT_SYMLINK_NOFOLLOW);
  if (r >= 0) return 'ok';
  const errno = -r;
  if (errno === 38 /* ENOSYS */) {
    fchmodat2Missing = true;
    return 'unsupported';
  }
  if (errno === 95 /* EOPNOTSUPP */) return 'symlink';
  throw new SysError('fchmodat', errno, shownPath);
}

/** fchmodat(2); with AT_SYMLINK_NOFOLLOW a symlink is refused (EOPNOTSUPP) rather than followed. */
export function fchmodat(dirfd: number, path: Buffer, mode: number, flags: number = F.AT_SYMLINK_NOFOLLOW): void {
  check(fchmodatRaw(dirfd, cPath(path), mode, flags) as number, 'fchmodat', path);
}

export interface Timespec { sec: number; nsec: number }

const times = Buffer.alloc(32);
function fillTimes(atime: Timespec, mtime: Timespec): Buffer {
  putInt64LE(times, atime.sec, 0);
  putInt64LE(times, atime.nsec, 8);
  putInt64LE(times, mtime.sec, 16);
  putInt64LE(times, mtime.nsec, 24);
  return times;
}

/** utimensat(2) with exact nanoseconds; AT_SYMLINK_NOFOLLOW by default. */
export function utimensat(dirfd: number, path: Buffer, atime: Timespec, mtime: Timespec, flags: number = F.AT_SYMLINK_NOFOLLOW): void {
  checked(sys.utimensat(dirfd, path, fillTimes(atime, mtime), flags), 'utimensat', path);
}

export function futimens(fd: number, atime: Timespec, mtime: Timespec, path?: Buffer): void {
  checked(sys.futimens(fd, fillTimes(atime, mtime)), 'futimens', path);
}

const fchdirRaw = libc.func('int fchdir(int fd)');

/**
 * Run `fn` with the working directory set to `dirfd` (then restored), so that a call taking only a path
 * (lsetxattr, lremovexattr) can be given a single component `name` relative to an already verified
 * directory: no intermediate component is resolved and the l-variant never follows `name` itself.
 * Works without /proc and inside a chroot. JS is single-threaded; nothing else runs meanwhile.
 */
export function inDir<T>(dirfd: number, fn: () => T): T {
  const saved = check(openatRaw(F.AT_FDCWD, cPath('.'), F.O_PATH | F.O_DIRECTORY | F.O_CLOEXEC, 0) as number, 'open', '.');
  try {
    check(fchdirRaw(dirfd) as number, 'fchdir');
    try {
      return fn();
    } finally {
      check(fchdirRaw(saved) as number, 'fchdir', '(previous working directory)');
    }
  } finally {
    closeSync(saved);
  }
}

/** A single path component (no '/', not empty, no NUL), or EINVAL. */
export function checkComponent(name: Buffer, call: string): void {
  if (name.length === 0 || name.includes(0x2f) || name.includes(0)) throw new SysError(call, 22 /* EINVAL */, name);
}

let procFd: number | undefined;
/**
 * An O_PATH fd of /proc/self/fd, opened once (call before a chroot). -1 when /proc is not there.
 */
export function procFdDir(): number {
  if (procFd === undefined) {
    const fd = openatRaw(F.AT_FDCWD, cPath('/proc/self/fd'), F.O_PATH | F.O_DIRECTORY | F.O_CLOEXEC, 0) as number;
    procFd = fd < 0 ? -1 : fd;
  }
  return procFd;
}

/**
 * Open the inode an O_PATH fd refers to with real access `flags` (e.g. O_RDWR), via its
 * /proc/self/fd magic link: the very same inode, whatever happened to its name. Without /proc, falls back
 * to `fallback()` (a fresh lookup) and checks it found the same inode.
 */
export function reopen(pfd: number, flags: number, fallback: () => number, path?: Buffer): number {
  const dir = procFdDir();
  if (dir >= 0) return check(openatRaw(dir, cPath(String(pfd)), flags | F.O_CLOEXEC, 0) as number, 'open', path);
  const fd = fallback();
  const a = fstatSync(pfd);
  const b = fstatSync(fd);
  if (a.ino !== b.ino || a.dev !== b.dev) {
    closeSync(fd);
    throw new SysError('open', 116 /* ESTALE */, path);
  }
  return fd;
}

export function lsetxattr(path: Buffer, name: Buffer, value: Buffer, flags = 0, shownPath: Buffer = path): void {
  check(lsetxattrRaw(cPath(path), cPath(name), value, value.length, flags) as number, `lsetxattr ${name.toString()}`, shownPath);
}

export function lremovexattr(path: Buffer, name: Buffer, shownPath: Buffer = path): void {
  check(lremovexattrRaw(cPath(path), cPath(name)) as number, `lremovexattr ${name.toString()}`, shownPath);
}

/** lsetxattr on `name` (one component) inside directory `dirfd`, never following `name`. */
export function lsetxattrAt(dirfd: number, name: Buffer, xname: Buffer, value: Buffer, flags = 0, shownPath: Buffer = name): void {
  checkComponent(name, 'lsetxattr');
  inDir(dirfd, () => lsetxattr(name, xname, value, flags, shownPath));
}

/** lremovexattr on `name` (one component) inside directory `dirfd`, never following `name`. */
export function lremovexattrAt(dirfd: number, name: Buffer, xname: Buffer, shownPath: Buffer = name): void {
  checkComponent(name, 'lremovexattr');
  inDir(dirfd, () => lremovexattr(name, xname, shownPath));
}

export function fsetxattr(fd: number, name: Buffer, value: Buffer, flags = 0, path?: Buffer): void {
  check(fsetxattrRaw(fd, cPath(name), value, value.length, flags) as number, `fsetxattr ${name.toString()}`, path);
}

const fgetxattrRaw = libc.func('long fgetxattr(int fd, const uint8_t *name, _Out_ uint8_t *value, size_t size)');
const ENODATA = 61;

/** One xattr of an open file, or undefined when the file does not have it. */
export function fgetxattr(fd: number, name: Buffer, path?: Buffer): Buffer | undefined {
  const value = Buffer.alloc(64 * 1024); // XATTR_SIZE_MAX
  const n = Number(fgetxattrRaw(fd, cPath(name), value, value.length));
  if (n < 0) {
    const errno = koffi.errno();
    if (errno === ENODATA) return undefined;
    throw new SysError(`fgetxattr ${name.toString()}`, errno, path);
  }
  return Buffer.from(value.subarray(0, n));
}

export function fremovexattr(fd: number, name: Buffer, path?: Buffer): void {
  check(fremovexattrRaw(fd, cPath(name)) as number, `fremovexattr ${name.toString()}`, path);
}

export function fallocate(fd: number, mode: number, offset: number, len: number, path?: Buffer): void {
  check(fallocateRaw(fd, mode, offset, len) as number, 'fallocate', path);
}

export function ftruncate(fd: number, size: number, path?: Buffer): void {
  try { ftruncateSync(fd, size); } catch (e) { throw fromNode(e, 'ftruncate', path); }
}

/** pwrite until every byte is written (a short write is retried, as progs does). */
export function pwriteAll(fd: number, data: Buffer, offset: number, path?: Buffer): void {
  let done = 0;
  while (done < data.length) {
    const n = checked(sys.pwrite(fd, data, done, data.length - done, offset + done), 'pwrite', path);
    if (n === 0) throw new SysError('pwrite', 5 /* EIO */, path);
    done += n;
  }
}

/** close(2); a failure (EBADF: a bug of ours; EIO from a file system) throws. */
export function close(fd: number): void {
  checked(sys.close(fd), 'close');
}

/** A Node fs error (errno negative in .errno) as a SysError naming our call and the raw path. */
export function fromNode(e: unknown, syscall: string, path?: Buffer): Error {
  const errno = (e as { errno?: number }).errno;
  if (typeof errno === 'number') return new SysError(syscall, Math.abs(errno), path);
  return e as Error;
}

const chrootRaw = libc.func('int chroot(const uint8_t *path)');
/** chroot(2) (receive --chroot). */
export function chroot(path: Buffer): void {
  check(chrootRaw(cPath(path)) as number, 'chroot', path);
}

const llistxattrRaw = libc.func('long llistxattr(const uint8_t *path, _Out_ uint8_t *list, size_t size)');
const lgetxattrRaw = libc.func('long lgetxattr(const uint8_t *path, const uint8_t *name, _Out_ uint8_t *value, size_t size)');

/** Every xattr of `path` (not following a final symlink): name → value. For tests and tools. */
export function lgetxattrs(path: Buffer): Map<string, Buffer> {
  const p = cPath(path);
  const out = new Map<string, Buffer>();
  const size = check(Number(llistxattrRaw(p, null, 0)), 'llistxattr', path);
  if (size === 0) return out;
  const list = Buffer.alloc(size + 1024);
  const got = check(Number(llistxattrRaw(p, list, list.length)), 'llistxattr', path);
  for (let start = 0; start < got;) {
    const end = list.indexOf(0, start);
    const name = list.subarray(start, end);
    const vsize = check(Number(lgetxattrRaw(p, cPath(name), null, 0)), 'lgetxattr', path);
    const value = Buffer.alloc(vsize + 64);
    const n = check(Number(lgetxattrRaw(p, cPath(name), value, value.length)), 'lgetxattr', path);
    out.set(name.toString('latin1'), Buffer.from(value.subarray(0, n)));
    start = end + 1;
  }
  return out;
}

const statBuf = Buffer.alloc(StatLayout.size);
/** st_mode of `path` beneath dirfd, never following a final symlink (fstatat AT_SYMLINK_NOFOLLOW). */
export function lstatModeAt(dirfd: number, path: Buffer): number {
  checked(sys.fstatat(dirfd, path, statBuf, F.AT_SYMLINK_NOFOLLOW), 'fstatat', path);
  return statBuf.readUInt32LE(StatLayout.st_mode);
}

const EMPTY_PATH = Buffer.alloc(0);
/** fstat(2) of `fd` (any fd, O_PATH included) into statBuf: fstatat AT_EMPTY_PATH, no Stats object. */
function fstatIntoBuf(fd: number, path?: Buffer): void {
  checked(sys.fstatat(fd, EMPTY_PATH, statBuf, F.AT_EMPTY_PATH), 'fstat', path);
}

/** st_mode of the inode `fd` refers to. */
export function fstatMode(fd: number): number {
  fstatIntoBuf(fd);
  return statBuf.readUInt32LE(StatLayout.st_mode);
}

/** Owner and mode of `path` beneath dirfd, never following a final symlink. */
export function lstatOwnerAt(dirfd: number, path: Buffer): { mode: number; uid: number; gid: number } {
  checked(sys.fstatat(dirfd, path, statBuf, F.AT_SYMLINK_NOFOLLOW), 'fstatat', path);
  return {
    mode: statBuf.readUInt32LE(StatLayout.st_mode), uid: statBuf.readUInt32LE(StatLayout.st_uid),
    gid: statBuf.readUInt32LE(StatLayout.st_gid),
  };
}

/** Inode number of `path` beneath dirfd (fstatat AT_SYMLINK_NOFOLLOW). */
export function lstatInoAt(dirfd: number, path: Buffer): number {
  checked(sys.fstatat(dirfd, path, statBuf, F.AT_SYMLINK_NOFOLLOW), 'fstatat', path);
  return Number(statBuf.readBigUInt64LE(StatLayout.st_ino));
}

/** Owner and mode of what `fd` refers to (any fd, O_PATH included). */
export function fstatOwner(fd: number): { mode: number; uid: number; gid: number } {
  fstatIntoBuf(fd);
  return {
    mode: statBuf.readUInt32LE(StatLayout.st_mode), uid: statBuf.readUInt32LE(StatLayout.st_uid),
    gid: statBuf.readUInt32LE(StatLayout.st_gid),
  };
}

/** Inode number and st_mode of what `fd` refers to (any fd, O_PATH included). */
export function fstatInoMode(fd: number): { ino: number; mode: number } {
  fstatIntoBuf(fd);
  return { ino: Number(statBuf.readBigUInt64LE(StatLayout.st_ino)), mode: statBuf.readUInt32LE(StatLayout.st_mode) };
}

/** Size and preferred I/O block size of what `fd` refers to. */
export function fstatSizeBlock(fd: number, path?: Buffer): { size: number; blksize: number } {
  fstatIntoBuf(fd, path);
  return {
    size: Number(statBuf.readBigInt64LE(StatLayout.st_size)),
    blksize: Number(statBuf.readBigInt64LE(StatLayout.st_blksize)),
  };
}

const flistxattrRaw = libc.func('long flistxattr(int fd, _Out_ uint8_t *list, size_t size)');
/** The xattr names of `fd` (not O_PATH), each NUL-terminated, as flistxattr(2) gives them. */
export function flistxattr(fd: number, path?: Buffer): Buffer {
  const size = check(Number(flistxattrRaw(fd, null, 0)), 'flistxattr', path);
  const list = Buffer.alloc(size + 256); // room for a name added meanwhile
  return list.subarray(0, check(Number(flistxattrRaw(fd, list, list.length)), 'flistxattr', path));
}
