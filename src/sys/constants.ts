// ioctl request numbers and flag values used by btrfs-ts. Every number here is compared with the
// kernel's own headers by native/abi-check.c (see tests/sys-abi.test.ts): none goes untested.

export const Ioctl = {
  BTRFS_IOC_SUBVOL_CREATE: 0x5000940e,
  BTRFS_IOC_SNAP_CREATE_V2: 0x50009417,
  BTRFS_IOC_SNAP_DESTROY: 0x5000940f,
  BTRFS_IOC_SNAP_DESTROY_V2: 0x5000943f,
  BTRFS_IOC_SUBVOL_GETFLAGS: 0x80089419,
  BTRFS_IOC_SUBVOL_SETFLAGS: 0x4008941a,
  BTRFS_IOC_SET_RECEIVED_SUBVOL: 0xc0c89425,
  BTRFS_IOC_CLONE_RANGE: 0x4020940d,
  BTRFS_IOC_TREE_SEARCH: 0xd0009411,
  BTRFS_IOC_INO_LOOKUP: 0xd0009412,
  BTRFS_IOC_SEND: 0x40489426,
  BTRFS_IOC_ENCODED_WRITE: 0x40809440,
  BTRFS_IOC_ENCODED_READ: 0x80809440,
  FS_IOC_GETFLAGS: 0x80086601,
  FS_IOC_SETFLAGS: 0x40086602,
  FS_IOC_ENABLE_VERITY: 0x40806685,
} as const;

export const BTRFS_SUBVOL_RDONLY = 0x2;
export const BTRFS_FIRST_FREE_OBJECTID = 256;
export const BTRFS_FS_TREE_OBJECTID = 5;
export const BTRFS_ROOT_TREE_OBJECTID = 1;
export const BTRFS_UUID_TREE_OBJECTID = 9;
export const BTRFS_ROOT_ITEM_KEY = 132;
export const BTRFS_ROOT_BACKREF_KEY = 144;
export const BTRFS_UUID_KEY_SUBVOL = 251;
export const BTRFS_UUID_KEY_RECEIVED_SUBVOL = 252;

export const SendFlag = {
  NO_FILE_DATA: 0x1,
  OMIT_STREAM_HEADER: 0x2,
  OMIT_END_CMD: 0x4,
  VERSION: 0x8,
  COMPRESSED: 0x10,
} as const;

/** Struct sizes (x86-64), checked against sizeof() by native/abi-check.c. */
export const StructSize = {
  btrfs_ioctl_vol_args: 4096,
  btrfs_ioctl_vol_args_v2: 4096,
  btrfs_ioctl_received_subvol_args: 200,
  btrfs_ioctl_clone_range_args: 32,
  btrfs_ioctl_search_args: 4096,
  btrfs_ioctl_search_key: 104,
  btrfs_ioctl_search_header: 32,
  btrfs_ioctl_ino_lookup_args: 4096,
  btrfs_ioctl_send_args: 72,
  btrfs_ioctl_encoded_io_args: 128,
  fsverity_enable_arg: 128,
} as const;

/** Linux fallocate(2) mode bits. */
export const Falloc = {
  KEEP_SIZE: 0x01,
  PUNCH_HOLE: 0x02,
  NO_HIDE_STALE: 0x04,
  COLLAPSE_RANGE: 0x08,
  ZERO_RANGE: 0x10,
  INSERT_RANGE: 0x20,
  UNSHARE_RANGE: 0x40,
} as const;

/** openat2(2) resolve flags. */
export const Resolve = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
  CACHED: 0x20,
} as const;
