// FS_IOC_GETFLAGS / FS_IOC_SETFLAGS: the generic inode flags `chattr`/`lsattr` show.
// The request numbers say `long`, but the kernel copies an int: we pass an 8-byte zeroed buffer
// and use its first 4 bytes (little-endian), which is right either way.
import { Ioctl } from './constants.js';
import { ioctl } from './libc.js';

/** FS_*_FL values (linux/fs.h) that btrfs supports. */
export const FsFlag = {
  SYNC: 0x00000008,
  IMMUTABLE: 0x00000010,
  APPEND: 0x00000020,
  NODUMP: 0x00000040,
  NOATIME: 0x00000080,
  COMPR: 0x00000004,
  NOCOMP: 0x00000400,
  DIRSYNC: 0x00010000,
  NOCOW: 0x00800000,
} as const;

export function getFsFlags(fd: number, path?: string | Buffer): number {
  const arg = Buffer.alloc(8);
  ioctl(fd, Ioctl.FS_IOC_GETFLAGS, arg, 'FS_IOC_GETFLAGS', path);
  return arg.readUInt32LE(0);
}

export function setFsFlags(fd: number, flags: number, path?: string | Buffer): void {
  const arg = Buffer.alloc(8);
  arg.writeUInt32LE(flags >>> 0, 0);
  ioctl(fd, Ioctl.FS_IOC_SETFLAGS, arg, 'FS_IOC_SETFLAGS', path);
}
