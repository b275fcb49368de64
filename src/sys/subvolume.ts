// Subvolume metadata from the root tree and the UUID tree (protocol.md §6.3): ROOT_ITEM fields,
// UUID → subvolume id, subvolume id → path from the top level. All need CAP_SYS_ADMIN (tree search).
import {
  BTRFS_FS_TREE_OBJECTID, BTRFS_ROOT_BACKREF_KEY, BTRFS_ROOT_ITEM_KEY, BTRFS_ROOT_TREE_OBJECTID,
  BTRFS_UUID_KEY_RECEIVED_SUBVOL, BTRFS_UUID_KEY_SUBVOL, BTRFS_UUID_TREE_OBJECTID,
} from './constants.js';
import { inoLookup, treeSearch } from './btrfs-ioctl.js';

/** Offsets in the packed on-disk `struct btrfs_root_item` (linux/btrfs_tree.h). */
export const RootItemLayout = {
  struct: 'btrfs_root_item', size: 439,
  generation: 160, flags: 208, generation_v2: 239, uuid: 247, parent_uuid: 263, received_uuid: 279,
  ctransid: 295, otransid: 303, stransid: 311, rtransid: 319, ctime: 327, otime: 339, stime: 351, rtime: 363,
} as const;
/** `struct btrfs_root_ref` (payload of ROOT_BACKREF / ROOT_REF items), followed by the name. */
export const RootRefLayout = { struct: 'btrfs_root_ref', size: 18, dirid: 0, sequence: 8, name_len: 16 } as const;

export interface RootItemInfo {
  uuid: Buffer; parentUuid: Buffer; receivedUuid: Buffer;
  generation: number; ctransid: number; otransid: number; stransid: number; rtransid: number;
  /** Root item flags (BTRFS_ROOT_SUBVOL_RDONLY = 1). */
  flags: number;
}

const ZERO_UUID = Buffer.alloc(16);
const u64 = (b: Buffer, off: number): number => Number(b.readBigUInt64LE(off));

/**
 * The ROOT_ITEM of subvolume `rootId` (the last matching item wins). An item from before the v2
 * extension (short, or generation != generation_v2) has no valid uuids/transids: those read as zero.
 * Returns undefined when the subvolume does not exist.
 */
export function readRootItem(fd: number, rootId: number): RootItemInfo | undefined {
  const items = treeSearch(fd, {
    treeId: BTRFS_ROOT_TREE_OBJECTID, minObjectId: rootId, maxObjectId: rootId,
    minType: BTRFS_ROOT_ITEM_KEY, maxType: BTRFS_ROOT_ITEM_KEY,
  });
  const item = items[items.length - 1];
  if (!item) return undefined;
  const d = item.data;
  const L = RootItemLayout;
  const generation = d.length >= L.generation + 8 ? u64(d, L.generation) : 0;
  const flags = d.length >= L.flags + 8 ? u64(d, L.flags) : 0;
  const extended = d.length >= L.size && u64(d, L.generation_v2) === generation;
  if (!extended) {
    return {
      uuid: ZERO_UUID, parentUuid: ZERO_UUID, receivedUuid: ZERO_UUID,
      generation, ctransid: 0, otransid: 0, stransid: 0, rtransid: 0, flags,
    };
  }
  return {
    uuid: Buffer.from(d.subarray(L.uuid, L.uuid + 16)),
    parentUuid: Buffer.from(d.subarray(L.parent_uuid, L.parent_uuid + 16)),
    receivedUuid: Buffer.from(d.subarray(L.received_uuid, L.received_uuid + 16)),
    generation, flags,
    ctransid: u64(d, L.ctransid), otransid: u64(d, L.otransid),
    stransid: u64(d, L.stransid), rtransid: u64(d, L.rtransid),
  };
}

/**
 * Every subvolume whose received UUID ('received') or own UUID ('uuid') is `uuid`, from the UUID tree
 * (one item holds all ids; several subvolumes can share a received UUID), in the tree's order.
 */
export function findSubvolsByUuid(fd: number, uuid: Buffer, kind: 'received' | 'uuid'): number[] {
  if (uuid.length !== 16) throw new Error('findSubvolsByUuid: uuid must be 16 bytes');
  const type = kind === 'received' ? BTRFS_UUID_KEY_RECEIVED_SUBVOL : BTRFS_UUID_KEY_SUBVOL;
  const objectId = uuid.readBigUInt64LE(0);
  const offset = uuid.readBigUInt64LE(8);
  const items = treeSearch(fd, {
    treeId: BTRFS_UUID_TREE_OBJECTID, minObjectId: objectId, maxObjectId: objectId,
    minType: type, maxType: type, minOffset: offset, maxOffset: offset, maxItems: 1,
  });
  const item = items[0];
  if (!item || item.data.length < 8 || item.data.length % 8 !== 0) return [];
  const ids: number[] = [];
  for (let off = 0; off < item.data.length; off += 8) ids.push(u64(item.data, off));
  return ids;
}

/** The first subvolume with that (received) UUID, as progs picks it, or undefined. */
export function findSubvolByUuid(fd: number, uuid: Buffer, kind: 'received' | 'uuid'): number | undefined {
  return findSubvolsByUuid(fd, uuid, kind)[0];
}

/**
 * The path of subvolume `rootId` from the filesystem's top level (no leading '/'; '' for the top level),
 * as raw bytes (subvolume names need not be UTF-8). Throws if it has no back reference (deleted).
 */
export function subvolPathFromTopRaw(fd: number, rootId: number): Buffer {
  const parts: Buffer[] = [];
  let id = rootId;
  for (let depth = 0; id !== BTRFS_FS_TREE_OBJECTID; depth++) {
    if (depth > 4096) throw new Error(`subvolume ${rootId}: back references form a loop`);
    const [ref] = treeSearch(fd, {
      treeId: BTRFS_ROOT_TREE_OBJECTID, minObjectId: id, maxObjectId: id,
      minType: BTRFS_ROOT_BACKREF_KEY, maxType: BTRFS_ROOT_BACKREF_KEY, maxItems: 1,
    });
    if (!ref) throw new Error(`subvolume ${rootId}: no root back reference for tree ${id} (deleted?)`);
    const R = RootRefLayout;
    const parent = Number(ref.offset);
    const dirid = u64(ref.data, R.dirid);
    const nameLen = ref.data.readUInt16LE(R.name_len);
    const name = ref.data.subarray(R.size, R.size + nameLen);
    // The directory inside the parent subvolume that holds it ('' for the parent's root dir);
    // INO_LOOKUP returns it with a trailing '/'.
    const dir = dirid === 256 ? Buffer.alloc(0) : inoLookup(fd, parent, dirid).name;
    parts.unshift(Buffer.concat([dir, name]));
    id = parent;
  }
  return Buffer.from(parts.map((p) => p.toString('latin1')).join('/'), 'latin1');
}

/** subvolPathFromTopRaw decoded as UTF-8 (for messages and the usual case). */
export function subvolPathFromTop(fd: number, rootId: number): string {
  return subvolPathFromTopRaw(fd, rootId).toString();
}

export { rootIdOf } from './btrfs-ioctl.js';
