// btrfs ioctls used by send and receive, each with a preformatted argument Buffer (fast: koffi passes
// the Buffer's memory directly, no object marshalling).
//
// Every struct offset used here is exported as a `...Layout` object ({ struct, size, field: offset })
// so tests/sys-abi.test.ts can compare it with offsetof()/sizeof() from the kernel's own headers
// (native/abi-check.c).
import { Ioctl, BTRFS_SUBVOL_RDONLY } from './constants.js';
import { ioctl, SysError } from './libc.js';

export const VolArgsLayout = { struct: 'btrfs_ioctl_vol_args', size: 4096, fd: 0, name: 8 } as const;
export const VolArgsV2Layout = {
  struct: 'btrfs_ioctl_vol_args_v2', size: 4096, fd: 0, transid: 8, flags: 16, name: 56,
} as const;
export const ReceivedSubvolArgsLayout = {
  struct: 'btrfs_ioctl_received_subvol_args', size: 200,
  uuid: 0, stransid: 16, rtransid: 24, stime: 32, rtime: 48, flags: 64, reserved: 72,
} as const;
export const CloneRangeArgsLayout = {
  struct: 'btrfs_ioctl_clone_range_args', size: 32, src_fd: 0, src_offset: 8, src_length: 16, dest_offset: 24,
} as const;
export const SearchKeyLayout = {
  struct: 'btrfs_ioctl_search_key', size: 104,
  tree_id: 0, min_objectid: 8, max_objectid: 16, min_offset: 24, max_offset: 32,
  min_transid: 40, max_transid: 48, min_type: 56, max_type: 60, nr_items: 64,
} as const;
export const SearchHeaderLayout = {
  struct: 'btrfs_ioctl_search_header', size: 32, transid: 0, objectid: 8, offset: 16, type: 24, len: 28,
} as const;
export const SearchArgsLayout = { struct: 'btrfs_ioctl_search_args', size: 4096, key: 0, buf: 104 } as const;
export const InoLookupArgsLayout = {
  struct: 'btrfs_ioctl_ino_lookup_args', size: 4096, treeid: 0, objectid: 8, name: 16,
} as const;

/** Longest subvolume name each argument struct can carry (name buffer minus the NUL). */
const VOL_NAME_MAX = VolArgsLayout.size - VolArgsLayout.name - 1; // 4087
const VOL_V2_NAME_MAX = VolArgsV2Layout.size - VolArgsV2Layout.name - 1; // 4039
const U64_MAX = 0xffffffffffffffffn;

function volArgsWithName(layout: { size: number; name: number }, max: number, name: Buffer, call: string): Buffer {
  if (name.length > max) throw new SysError(call, 36 /* ENAMETOOLONG */, name);
  const arg = Buffer.alloc(layout.size);
  name.copy(arg, layout.name);
  return arg;
}

const asBuf = (b: Buffer | string): Buffer => (typeof b === 'string' ? Buffer.from(b) : b);

/** BTRFS_IOC_SUBVOL_CREATE: a new empty subvolume `name` (one component) in directory `dirfd`. */
export function subvolCreate(dirfd: number, name: Buffer | string): void {
  const raw = asBuf(name);
  const arg = volArgsWithName(VolArgsLayout, VOL_NAME_MAX, raw, 'BTRFS_IOC_SUBVOL_CREATE');
  ioctl(dirfd, Ioctl.BTRFS_IOC_SUBVOL_CREATE, arg, 'BTRFS_IOC_SUBVOL_CREATE', raw);
}

/** BTRFS_IOC_SNAP_CREATE_V2: snapshot the subvolume open as `srcFd` to `name` in `dirfd`. */
export function snapCreateV2(dirfd: number, name: Buffer | string, srcFd: number, readOnly = false): void {
  const raw = asBuf(name);
  const arg = volArgsWithName(VolArgsV2Layout, VOL_V2_NAME_MAX, raw, 'BTRFS_IOC_SNAP_CREATE_V2');
  arg.writeBigInt64LE(BigInt(srcFd), VolArgsV2Layout.fd);
  arg.writeBigUInt64LE(readOnly ? BigInt(BTRFS_SUBVOL_RDONLY) : 0n, VolArgsV2Layout.flags);
  ioctl(dirfd, Ioctl.BTRFS_IOC_SNAP_CREATE_V2, arg, 'BTRFS_IOC_SNAP_CREATE_V2', raw);
}

/** BTRFS_IOC_SNAP_DESTROY: delete subvolume `name` (one component) in `dirfd`. */
export function subvolDelete(dirfd: number, name: Buffer | string): void {
  const raw = asBuf(name);
  const arg = volArgsWithName(VolArgsLayout, VOL_NAME_MAX, raw, 'BTRFS_IOC_SNAP_DESTROY');
  ioctl(dirfd, Ioctl.BTRFS_IOC_SNAP_DESTROY, arg, 'BTRFS_IOC_SNAP_DESTROY', raw);
}

/** BTRFS_IOC_SUBVOL_GETFLAGS on a subvolume root fd (BTRFS_SUBVOL_RDONLY = 2). */
export function subvolGetFlags(fd: number, path?: string | Buffer): number {
  const arg = Buffer.alloc(8);
  ioctl(fd, Ioctl.BTRFS_IOC_SUBVOL_GETFLAGS, arg, 'BTRFS_IOC_SUBVOL_GETFLAGS', path);
  return Number(arg.readBigUInt64LE(0));
}

/** BTRFS_IOC_SUBVOL_SETFLAGS on a subvolume root fd. */
export function subvolSetFlags(fd: number, flags: number, path?: string | Buffer): void {
  const arg = Buffer.alloc(8);
  arg.writeBigUInt64LE(BigInt(flags), 0);
  ioctl(fd, Ioctl.BTRFS_IOC_SUBVOL_SETFLAGS, arg, 'BTRFS_IOC_SUBVOL_SETFLAGS', path);
}

/**
 * BTRFS_IOC_SET_RECEIVED_SUBVOL on a (still writable) subvolume root fd: records the sender's UUID and
 * ctransid. Returns the receive transaction id (rtransid).
 */
export function setReceivedSubvol(fd: number, uuid: Buffer, stransid: number, path?: string | Buffer): number {
  if (uuid.length !== 16) throw new Error('setReceivedSubvol: uuid must be 16 bytes');
  const arg = Buffer.alloc(ReceivedSubvolArgsLayout.size);
  uuid.copy(arg, ReceivedSubvolArgsLayout.uuid);
  arg.writeBigUInt64LE(BigInt(stransid), ReceivedSubvolArgsLayout.stransid);
  ioctl(fd, Ioctl.BTRFS_IOC_SET_RECEIVED_SUBVOL, arg, 'BTRFS_IOC_SET_RECEIVED_SUBVOL', path);
  return Number(arg.readBigUInt64LE(ReceivedSubvolArgsLayout.rtransid));
}

/** Reused for every clone: the hot path allocates nothing. */
const cloneArg = Buffer.alloc(CloneRangeArgsLayout.size);

/** BTRFS_IOC_CLONE_RANGE (== FICLONERANGE): share `len` bytes of srcFd@srcOffset into destFd@destOffset. */
export function cloneRange(
  destFd: number, srcFd: number, srcOffset: number, len: number, destOffset: number, path?: string | Buffer,
): void {
  cloneArg.writeBigInt64LE(BigInt(srcFd), CloneRangeArgsLayout.src_fd);
  cloneArg.writeBigUInt64LE(BigInt(srcOffset), CloneRangeArgsLayout.src_offset);
  cloneArg.writeBigUInt64LE(BigInt(len), CloneRangeArgsLayout.src_length);
  cloneArg.writeBigUInt64LE(BigInt(destOffset), CloneRangeArgsLayout.dest_offset);
  ioctl(destFd, Ioctl.BTRFS_IOC_CLONE_RANGE, cloneArg, 'BTRFS_IOC_CLONE_RANGE', path);
}

/** BTRFS_IOC_INO_LOOKUP: the tree id of the fd's subvolume (treeId 0) and the path of a directory inode. */
export function inoLookup(fd: number, treeId: number, objectId: number): { treeId: number; name: Buffer } {
  const arg = Buffer.alloc(InoLookupArgsLayout.size);
  arg.writeBigUInt64LE(BigInt(treeId), InoLookupArgsLayout.treeid);
  arg.writeBigUInt64LE(BigInt(objectId), InoLookupArgsLayout.objectid);
  ioctl(fd, Ioctl.BTRFS_IOC_INO_LOOKUP, arg, 'BTRFS_IOC_INO_LOOKUP');
  const nameStart = InoLookupArgsLayout.name;
  let end = arg.indexOf(0, nameStart);
  if (end < 0) end = arg.length;
  return {
    treeId: Number(arg.readBigUInt64LE(InoLookupArgsLayout.treeid)),
    name: Buffer.from(arg.subarray(nameStart, end)),
  };
}

/** The id of the subvolume (tree) that `fd` is in. */
export function rootIdOf(fd: number): number {
  return inoLookup(fd, 0, 256).treeId;
}

export interface SearchKey {
  treeId: number;
  minObjectId: bigint | number; maxObjectId: bigint | number;
  minType: number; maxType: number;
  minOffset?: bigint | number; maxOffset?: bigint | number;
  minTransid?: bigint | number; maxTransid?: bigint | number;
  /** Stop after this many items in total (default: all). */
  maxItems?: number;
}

export interface SearchItem {
  transid: bigint; objectId: bigint; offset: bigint; type: number;
  /** The item payload (a copy). */
  data: Buffer;
}

/**
 * BTRFS_IOC_TREE_SEARCH over the key range [min (objectid,type,offset), max]: every item, fetched in
 * batches (one ioctl returns at most what fits into 3992 bytes). Needs CAP_SYS_ADMIN.
 */
export function treeSearch(fd: number, key: SearchKey): SearchItem[] {
  const K = SearchKeyLayout;
  const H = SearchHeaderLayout;
  const items: SearchItem[] = [];
  const limit = key.maxItems ?? Infinity;
  let objectId = BigInt(key.minObjectId);
  let type = BigInt(key.minType);
  let offset = BigInt(key.minOffset ?? 0);
  const maxObjectId = BigInt(key.maxObjectId);
  const maxType = BigInt(key.maxType);
  const maxOffset = BigInt(key.maxOffset ?? U64_MAX);
  const arg = Buffer.alloc(SearchArgsLayout.size);
  for (;;) {
    arg.fill(0, 0, K.size);
    arg.writeBigUInt64LE(BigInt(key.treeId), K.tree_id);
    arg.writeBigUInt64LE(objectId, K.min_objectid);
    arg.writeBigUInt64LE(maxObjectId, K.max_objectid);
    arg.writeBigUInt64LE(offset, K.min_offset);
    arg.writeBigUInt64LE(maxOffset, K.max_offset);
    arg.writeBigUInt64LE(BigInt(key.minTransid ?? 0), K.min_transid);
    arg.writeBigUInt64LE(BigInt(key.maxTransid ?? U64_MAX), K.max_transid);
    arg.writeUInt32LE(Number(type), K.min_type);
    arg.writeUInt32LE(Number(maxType), K.max_type);
    arg.writeUInt32LE(Math.min(4096, limit - items.length), K.nr_items);
    ioctl(fd, Ioctl.BTRFS_IOC_TREE_SEARCH, arg, 'BTRFS_IOC_TREE_SEARCH');
    const found = arg.readUInt32LE(K.nr_items);
    if (found === 0) return items;
    let pos = SearchArgsLayout.buf;
    let last: SearchItem | undefined;
    for (let i = 0; i < found; i++) {
      const len = arg.readUInt32LE(pos + H.len);
      last = {
        transid: arg.readBigUInt64LE(pos + H.transid),
        objectId: arg.readBigUInt64LE(pos + H.objectid),
        offset: arg.readBigUInt64LE(pos + H.offset),
        type: arg.readUInt32LE(pos + H.type),
        data: Buffer.from(arg.subarray(pos + H.size, pos + H.size + len)),
      };
      items.push(last);
      pos += H.size + len;
    }
    if (items.length >= limit || !last) return items;
    // Continue just after the last key returned (offset, then type, then objectid carry over).
    objectId = last.objectId; type = BigInt(last.type); offset = last.offset;
    if (offset < U64_MAX) offset += 1n;
    else if (type < 255n) { type += 1n; offset = 0n; }
    else if (objectId < U64_MAX) { objectId += 1n; type = 0n; offset = 0n; }
    else return items;
    if (objectId > maxObjectId || (objectId === maxObjectId && type > maxType)) return items;
  }
}
