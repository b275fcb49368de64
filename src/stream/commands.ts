// Decoded send-stream commands: one discriminated union, tagged by `cmd`.
//
// Paths, symlink targets and xattr names/values are raw bytes (Buffer) end to end: a Linux file name is
// a byte string, and decoding it as UTF-8 would corrupt names that are not valid UTF-8.
// u64 wire values are JavaScript numbers; the reader rejects values above 2^53 (no real stream has one).
// Timespec seconds are read as *signed* 64-bit, because the kernel stores pre-1970 times that way.

export interface Timespec {
  /** Seconds since the epoch; negative before 1970. */
  sec: number;
  /** Nanoseconds, 0..999999999. */
  nsec: number;
}

/** A UUID: 16 raw bytes, in the order `uuid_unparse` prints them. */
export type Uuid = Buffer;

export interface SubvolCommand { cmd: 'subvol'; path: Buffer; uuid: Uuid; ctransid: number }
export interface SnapshotCommand {
  cmd: 'snapshot'; path: Buffer; uuid: Uuid; ctransid: number; cloneUuid: Uuid; cloneCtransid: number;
}
export interface MkfileCommand { cmd: 'mkfile'; path: Buffer; ino: number }
export interface MkdirCommand { cmd: 'mkdir'; path: Buffer; ino: number }
/** MKNOD, MKFIFO and MKSOCK carry the same attributes; `mode` includes the file-type bits. */
export interface MknodCommand { cmd: 'mknod' | 'mkfifo' | 'mksock'; path: Buffer; ino: number; rdev: number; mode: number }
export interface SymlinkCommand { cmd: 'symlink'; path: Buffer; ino: number; target: Buffer }
export interface RenameCommand { cmd: 'rename'; path: Buffer; to: Buffer }
/** LINK: `path` is the new name, `target` (PATH_LINK) the existing one. */
export interface LinkCommand { cmd: 'link'; path: Buffer; target: Buffer }
export interface UnlinkCommand { cmd: 'unlink'; path: Buffer }
export interface RmdirCommand { cmd: 'rmdir'; path: Buffer }
export interface SetXattrCommand { cmd: 'set_xattr'; path: Buffer; name: Buffer; value: Buffer }
export interface RemoveXattrCommand { cmd: 'remove_xattr'; path: Buffer; name: Buffer }
export interface WriteCommand { cmd: 'write'; path: Buffer; offset: number; data: Buffer }
/** CLONE: `offset` is in `path` (the destination), `cloneOffset` in `clonePath` of the subvolume `cloneUuid`. */
export interface CloneCommand {
  cmd: 'clone'; path: Buffer; offset: number; len: number;
  cloneUuid: Uuid; cloneCtransid: number; clonePath: Buffer; cloneOffset: number;
}
export interface TruncateCommand { cmd: 'truncate'; path: Buffer; size: number }
export interface ChmodCommand { cmd: 'chmod'; path: Buffer; mode: number }
export interface ChownCommand { cmd: 'chown'; path: Buffer; uid: number; gid: number }
/** UTIMES: `otime` is sent from v2 on; ctime and otime cannot be set by a receiver. */
export interface UtimesCommand {
  cmd: 'utimes'; path: Buffer; atime: Timespec; mtime: Timespec; ctime: Timespec; otime?: Timespec;
}
export interface EndCommand { cmd: 'end' }
export interface UpdateExtentCommand { cmd: 'update_extent'; path: Buffer; offset: number; size: number }
export interface FallocateCommand { cmd: 'fallocate'; path: Buffer; mode: number; offset: number; size: number }
/** FILEATTR: btrfs on-disk inode flags (low 32 bits BTRFS_INODE_*, high 32 bits ro-compat flags). */
export interface FileattrCommand { cmd: 'fileattr'; path: Buffer; flags: number }
export interface EncodedWriteCommand {
  cmd: 'encoded_write'; path: Buffer; offset: number;
  unencodedFileLen: number; unencodedLen: number; unencodedOffset: number;
  /** Absent on the wire means 0; `undefined` here keeps a round trip byte-exact. */
  compression?: number; encryption?: number;
  data: Buffer;
}
export interface EnableVerityCommand {
  cmd: 'enable_verity'; path: Buffer; algorithm: number; blockSize: number; salt: Buffer; sig: Buffer;
}

export type Command =
  | SubvolCommand | SnapshotCommand | MkfileCommand | MkdirCommand | MknodCommand | SymlinkCommand
  | RenameCommand | LinkCommand | UnlinkCommand | RmdirCommand | SetXattrCommand | RemoveXattrCommand
  | WriteCommand | CloneCommand | TruncateCommand | ChmodCommand | ChownCommand | UtimesCommand
  | EndCommand | UpdateExtentCommand | FallocateCommand | FileattrCommand | EncodedWriteCommand
  | EnableVerityCommand;

export type CommandOf<N extends Command['cmd']> = Extract<Command, { cmd: N }>;
