// The numbers of the btrfs send stream protocol (v1, v2, v3), as the kernel and btrfs-progs use them.
// See shared/protocol.md §1–2. Every name here is the kernel's, lower-cased for commands.

export const STREAM_MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
export const STREAM_HEADER_SIZE = 17;
export const COMMAND_HEADER_SIZE = 10;
export const TLV_HEADER_SIZE = 4;
/** The highest stream version this implementation reads and writes. */
export const MAX_STREAM_VERSION = 3;

/** Command numbers. */
export const Cmd = {
  UNSPEC: 0,
  SUBVOL: 1,
  SNAPSHOT: 2,
  MKFILE: 3,
  MKDIR: 4,
  MKNOD: 5,
  MKFIFO: 6,
  MKSOCK: 7,
  SYMLINK: 8,
  RENAME: 9,
  LINK: 10,
  UNLINK: 11,
  RMDIR: 12,
  SET_XATTR: 13,
  REMOVE_XATTR: 14,
  WRITE: 15,
  CLONE: 16,
  TRUNCATE: 17,
  CHMOD: 18,
  CHOWN: 19,
  UTIMES: 20,
  END: 21,
  UPDATE_EXTENT: 22,
  FALLOCATE: 23,
  FILEATTR: 24,
  ENCODED_WRITE: 25,
  ENABLE_VERITY: 26,
} as const;

/** The last command number each protocol version defines. */
export const CMD_MAX_BY_VERSION: Record<number, number> = { 1: 22, 2: 25, 3: 26 };

/** Attribute numbers. */
export const Attr = {
  UNSPEC: 0,
  UUID: 1,
  CTRANSID: 2,
  INO: 3,
  SIZE: 4,
  MODE: 5,
  UID: 6,
  GID: 7,
  RDEV: 8,
  CTIME: 9,
  MTIME: 10,
  ATIME: 11,
  OTIME: 12,
  XATTR_NAME: 13,
  XATTR_DATA: 14,
  PATH: 15,
  PATH_TO: 16,
  PATH_LINK: 17,
  FILE_OFFSET: 18,
  DATA: 19,
  CLONE_UUID: 20,
  CLONE_CTRANSID: 21,
  CLONE_PATH: 22,
  CLONE_OFFSET: 23,
  CLONE_LEN: 24,
  FALLOCATE_MODE: 25,
  FILEATTR: 26,
  UNENCODED_FILE_LEN: 27,
  UNENCODED_LEN: 28,
  UNENCODED_OFFSET: 29,
  COMPRESSION: 30,
  ENCRYPTION: 31,
  VERITY_ALGORITHM: 32,
  VERITY_BLOCK_SIZE: 33,
  VERITY_SALT_DATA: 34,
  VERITY_SIG_DATA: 35,
} as const;

/** The last attribute number each protocol version defines (progs accepts 1..35 in any version). */
export const ATTR_MAX = 35;

/** How an attribute's value is encoded on the wire. */
export type AttrKind = 'u8' | 'u32' | 'u64' | 'uuid' | 'timespec' | 'string' | 'binary';

export const ATTR_KIND: Record<number, AttrKind> = {
  [Attr.UUID]: 'uuid',
  [Attr.CTRANSID]: 'u64',
  [Attr.INO]: 'u64',
  [Attr.SIZE]: 'u64',
  [Attr.MODE]: 'u64',
  [Attr.UID]: 'u64',
  [Attr.GID]: 'u64',
  [Attr.RDEV]: 'u64',
  [Attr.CTIME]: 'timespec',
  [Attr.MTIME]: 'timespec',
  [Attr.ATIME]: 'timespec',
  [Attr.OTIME]: 'timespec',
  [Attr.XATTR_NAME]: 'string',
  [Attr.XATTR_DATA]: 'binary',
  [Attr.PATH]: 'string',
  [Attr.PATH_TO]: 'string',
  [Attr.PATH_LINK]: 'string',
  [Attr.FILE_OFFSET]: 'u64',
  [Attr.DATA]: 'binary',
  [Attr.CLONE_UUID]: 'uuid',
  [Attr.CLONE_CTRANSID]: 'u64',
  [Attr.CLONE_PATH]: 'string',
  [Attr.CLONE_OFFSET]: 'u64',
  [Attr.CLONE_LEN]: 'u64',
  [Attr.FALLOCATE_MODE]: 'u32',
  [Attr.FILEATTR]: 'u64',
  [Attr.UNENCODED_FILE_LEN]: 'u64',
  [Attr.UNENCODED_LEN]: 'u64',
  [Attr.UNENCODED_OFFSET]: 'u64',
  [Attr.COMPRESSION]: 'u32',
  [Attr.ENCRYPTION]: 'u32',
  [Attr.VERITY_ALGORITHM]: 'u8',
  [Attr.VERITY_BLOCK_SIZE]: 'u32',
  [Attr.VERITY_SALT_DATA]: 'binary',
  [Attr.VERITY_SIG_DATA]: 'binary',
};

/** Fixed value sizes; strings and binaries have none. */
export const FIXED_SIZE: Partial<Record<AttrKind, number>> = { u8: 1, u32: 4, u64: 8, uuid: 16, timespec: 12 };

/** Lower-case command names, as `btrfs receive --dump` prints them. Index = command number. */
export const COMMAND_NAMES = [
  'unspec', 'subvol', 'snapshot', 'mkfile', 'mkdir', 'mknod', 'mkfifo', 'mksock', 'symlink', 'rename',
  'link', 'unlink', 'rmdir', 'set_xattr', 'remove_xattr', 'write', 'clone', 'truncate', 'chmod', 'chown',
  'utimes', 'end', 'update_extent', 'fallocate', 'fileattr', 'encoded_write', 'enable_verity',
] as const;

export type CommandName = Exclude<(typeof COMMAND_NAMES)[number], 'unspec'>;

/** Kernel attribute names (for error messages). Index = attribute number. */
export const ATTR_NAMES = [
  'UNSPEC', 'UUID', 'CTRANSID', 'INO', 'SIZE', 'MODE', 'UID', 'GID', 'RDEV', 'CTIME', 'MTIME', 'ATIME',
  'OTIME', 'XATTR_NAME', 'XATTR_DATA', 'PATH', 'PATH_TO', 'PATH_LINK', 'FILE_OFFSET', 'DATA', 'CLONE_UUID',
  'CLONE_CTRANSID', 'CLONE_PATH', 'CLONE_OFFSET', 'CLONE_LEN', 'FALLOCATE_MODE', 'FILEATTR',
  'UNENCODED_FILE_LEN', 'UNENCODED_LEN', 'UNENCODED_OFFSET', 'COMPRESSION', 'ENCRYPTION',
  'VERITY_ALGORITHM', 'VERITY_BLOCK_SIZE', 'VERITY_SALT_DATA', 'VERITY_SIG_DATA',
] as const;

/** The protocol version that introduced each command. */
export const COMMAND_VERSION: Record<number, number> = {
  [Cmd.FALLOCATE]: 2,
  [Cmd.FILEATTR]: 2,
  [Cmd.ENCODED_WRITE]: 2,
  [Cmd.ENABLE_VERITY]: 3,
};

/** Kernel command buffer sizes and the data each WRITE may carry (protocol.md §1.6). */
export const SEND_BUF_SIZE_V1 = 64 * 1024;
export const SEND_BUF_SIZE_V2 = 144 * 1024;
export const MAX_WRITE_V1 = 48 * 1024;
export const MAX_WRITE_V2 = 128 * 1024;
/** Largest attribute value with a u16 length. */
export const MAX_TLV_VALUE = 0xffff;
/** Default cap on one command's body: generous (the kernel's largest is ~144 KiB), but never "whatever len says". */
export const DEFAULT_MAX_COMMAND_SIZE = 16 * 1024 * 1024;

/** ENCODED_WRITE compression values (protocol.md §4.3). */
export const Compression = {
  NONE: 0,
  ZLIB: 1,
  ZSTD: 2,
  LZO_4K: 3,
  LZO_8K: 4,
  LZO_16K: 5,
  LZO_32K: 6,
  LZO_64K: 7,
} as const;
