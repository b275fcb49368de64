// FILEATTR (protocol.md §3.12): the stream carries btrfs on-disk inode flags, which are not the
// FS_*_FL values FS_IOC_SETFLAGS takes; progs therefore ignores the command. We translate them.
// The engine calls applyFileattr when the subvolume is finalized (after all data and metadata,
// before it becomes read-only), because IMMUTABLE/APPEND would block later commands.
import { FsFlag, getFsFlags, setFsFlags } from '../sys/fileattr.js';
import { fgetxattr, fsetxattr } from '../sys/fs.js';

const COMPRESSION_PROPERTY = Buffer.from('btrfs.compression');

/** BTRFS_INODE_* bit → FS_*_FL, for the flags that have an FS_IOC_SETFLAGS equivalent. */
const BTRFS_TO_FS: ReadonlyArray<readonly [btrfsBit: number, fsFlag: number]> = [
  [1 << 1, FsFlag.NOCOW], // NODATACOW
  [1 << 3, FsFlag.NOCOMP], // NOCOMPRESS
  [1 << 5, FsFlag.SYNC],
  [1 << 6, FsFlag.IMMUTABLE],
  [1 << 7, FsFlag.APPEND],
  [1 << 8, FsFlag.NODUMP],
  [1 << 9, FsFlag.NOATIME],
  [1 << 10, FsFlag.DIRSYNC],
  [1 << 11, FsFlag.COMPR], // COMPRESS
];

/**
 * Every FS_*_FL bit a FILEATTR command decides. Bits outside this set in the file's current flags
 * (e.g. ones another tool set, or that btrfs reports but the stream cannot carry) are kept as they are.
 */
export const MANAGED_FS_FLAGS = BTRFS_TO_FS.reduce((all, [, fs]) => all | fs, 0) >>> 0;

/**
 * Translate btrfs inode flags (FILEATTR value: low 32 bits BTRFS_INODE_*, high 32 bits ro-compat)
 * to FS_*_FL. Unmapped bits are dropped: NODATASUM (implied by NODATACOW), READONLY (unused),
 * PREALLOC (internal), and the high half (verity is applied by ENABLE_VERITY, not by flags).
 */
export function btrfsFlagsToFsFlags(flags: number): number {
  const low = Number(BigInt.asUintN(32, BigInt(Math.trunc(flags))));
  let fs = 0;
  for (const [bit, fsFlag] of BTRFS_TO_FS) if (low & bit) fs |= fsFlag;
  return fs >>> 0;
}

/**
 * Give the file the flags the sender had: the managed FS_*_FL bits are replaced by the translation
 * of `btrfsFlags`, other bits of the current flags are kept. No ioctl when nothing changes.
 */
export function applyFileattr(fd: number, btrfsFlags: number, path?: string | Buffer): void {
  const current = getFsFlags(fd, path);
  const wanted = ((current & ~MANAGED_FS_FLAGS) | btrfsFlagsToFsFlags(btrfsFlags)) >>> 0;
  if (wanted === current) return;
  // Setting FS_COMPR_FL makes btrfs reset the `btrfs.compression` property to the destination's
  // default algorithm; the stream already set the sender's (zstd, lzo...), so put it back.
  const shown = typeof path === 'string' ? Buffer.from(path) : path;
  const property = fgetxattr(fd, COMPRESSION_PROPERTY, shown);
  setFsFlags(fd, wanted, path);
  if (property !== undefined && !property.equals(fgetxattr(fd, COMPRESSION_PROPERTY, shown) ?? Buffer.alloc(0))) {
    fsetxattr(fd, COMPRESSION_PROPERTY, property, 0, shown);
  }
}
