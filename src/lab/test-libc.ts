// The few libc calls the test harnesses (soak, demo checks) need beyond node:fs (exact-nanosecond times, device nodes, xattrs,
// hole punching, RENAME_EXCHANGE, inode flags). Test-side code: kept apart from src/sys on purpose so
// the harness does not depend on the code it checks.
import { libc, check, cPath, ioctlRaw, lastErrno } from '../sys/libc.js';
import { Ioctl } from '../sys/constants.js';

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const RENAME_EXCHANGE = 2;
const ENODATA = 61;

const mknodRaw = libc.func('int mknod(const uint8_t *path, uint32_t mode, uint64_t dev)');
const utimensatRaw = libc.func('int utimensat(int dirfd, const uint8_t *path, const uint8_t *times, int flags)');
const lsetxattrRaw = libc.func('int lsetxattr(const uint8_t *path, const char *name, const uint8_t *value, size_t size, int flags)');
const lremovexattrRaw = libc.func('int lremovexattr(const uint8_t *path, const char *name)');
const llistxattrRaw = libc.func('intptr_t llistxattr(const uint8_t *path, _Out_ uint8_t *list, size_t size)');
const lgetxattrRaw = libc.func('intptr_t lgetxattr(const uint8_t *path, const uint8_t *name, _Out_ uint8_t *value, size_t size)');
const renameat2Raw = libc.func('int renameat2(int olddirfd, const uint8_t *oldpath, int newdirfd, const uint8_t *newpath, unsigned int flags)');
const fallocateRaw = libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)');

export function makedev(major: number, minor: number): number {
  // glibc encoding, restricted to values that fit a JS number exactly.
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) * 0x1000)) >>> 0;
}

export function mknod(path: Buffer, mode: number, dev = 0): void {
  check(mknodRaw(cPath(path), mode, dev) as number, 'mknod', path);
}

/** Set atime and mtime exactly (seconds may be negative), never following a symlink. */
export function lutimensNs(path: Buffer, atime: { sec: number; nsec: number }, mtime: { sec: number; nsec: number }): void {
  const t = Buffer.alloc(32);
  t.writeBigInt64LE(BigInt(atime.sec), 0);
  t.writeBigInt64LE(BigInt(atime.nsec), 8);
  t.writeBigInt64LE(BigInt(mtime.sec), 16);
  t.writeBigInt64LE(BigInt(mtime.nsec), 24);
  check(utimensatRaw(AT_FDCWD, cPath(path), t, AT_SYMLINK_NOFOLLOW) as number, 'utimensat', path);
}

export function lsetxattr(path: Buffer, name: string, value: Buffer): void {
  check(lsetxattrRaw(cPath(path), name, value, value.length, 0) as number, 'lsetxattr', path);
}

export function lremovexattr(path: Buffer, name: string): void {
  check(lremovexattrRaw(cPath(path), name) as number, 'lremovexattr', path);
}

/** All xattrs of a path (not following a symlink), names as latin1 strings, sorted. */
export function lgetxattrs(path: Buffer): Map<string, Buffer> {
  const p = cPath(path);
  const out = new Map<string, Buffer>();
  const size = check(Number(llistxattrRaw(p, null, 0)), 'llistxattr', path);
  if (size === 0) return out;
  const list = Buffer.alloc(size);
  const got = check(Number(llistxattrRaw(p, list, size)), 'llistxattr', path);
  const names = list.subarray(0, got).toString('latin1').split('\0').filter(Boolean).sort();
  for (const name of names) {
    const n = cPath(Buffer.from(name, 'latin1'));
    const len = Number(lgetxattrRaw(p, n, null, 0));
    if (len < 0) {
      if (lastErrno() === ENODATA) continue;
      check(len, 'lgetxattr', path);
    }
    const value = Buffer.alloc(len);
    const vlen = check(Number(lgetxattrRaw(p, n, value, len)), 'lgetxattr', path);
    out.set(name, value.subarray(0, vlen));
  }
  return out;
}

export function renameExchange(a: Buffer, b: Buffer): void {
  check(renameat2Raw(AT_FDCWD, cPath(a), AT_FDCWD, cPath(b), RENAME_EXCHANGE) as number, 'renameat2', a);
}

export function punchHole(fd: number, offset: number, len: number): void {
  check(fallocateRaw(fd, 3 /* PUNCH_HOLE|KEEP_SIZE */, offset, len) as number, 'fallocate');
}

/** FS_IOC_GETFLAGS of an open fd (regular files and directories only). */
export function getInodeFlags(fd: number): number {
  const arg = Buffer.alloc(8);
  check(ioctlRaw(fd, Ioctl.FS_IOC_GETFLAGS, arg) as number, 'FS_IOC_GETFLAGS');
  return arg.readUInt32LE(0);
}

const lseekRaw = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');
/** Next data offset at or after `pos` (SEEK_DATA), or -1 past the last data (ENXIO). */
export function seekData(fd: number, pos: number): number {
  return Number(lseekRaw(fd, pos, 3));
}
/** Next hole offset at or after `pos` (SEEK_HOLE; EOF counts as a hole). */
export function seekHole(fd: number, pos: number): number {
  return Number(lseekRaw(fd, pos, 4));
}
