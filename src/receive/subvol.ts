// Subvolumes of a receive (protocol.md §6): create (SUBVOL), snapshot a parent found by UUID (SNAPSHOT),
// locate clone sources, finalize (SET_RECEIVED_SUBVOL, then read-only), delete a partial one.
import { fstatSync } from 'node:fs';
import { BTRFS_SUBVOL_RDONLY } from '../sys/constants.js';
import {
  rootIdOf, setReceivedSubvol, snapCreateV2, subvolCreate, subvolDelete, subvolGetFlags, subvolSetFlags,
} from '../sys/btrfs-ioctl.js';
import { findSubvolsByUuid, readRootItem, subvolPathFromTopRaw } from '../sys/subvolume.js';
import { close, FsConst, openat2, RESOLVE_SAFE } from '../sys/fs.js';
import { printablePath } from '../sys/libc.js';
import type { Destination } from './destination.js';
import { RefusedError } from './errors.js';
import { checkName } from './path-resolver.js';
import { missingParentHint, withHint } from '../hints/index.js';

/** `uuid_unparse` text of 16 raw bytes. */
export function uuidText(uuid: Buffer): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface FoundSubvol {
  rootId: number;
  /** How the UUID matched. */
  by: 'received' | 'uuid';
  /** Path relative to the mount root ('' = the mounted subvolume itself). */
  relPath: Buffer;
  /** The transid the stream's *_CTRANSID should equal: stransid for 'received', ctransid for 'uuid'
   *  (0 when the root item is too old to say). */
  transid: number;
  /** BTRFS_ROOT_SUBVOL_RDONLY: a send parent or clone source is always read-only on the sender. */
  readOnly: boolean;
}

/**
 * Find a subvolume by received UUID, then by own UUID, anywhere on the filesystem (§6.3). Several may
 * match (the same stream received twice): prefer one reachable from the mount, read-only, whose
 * transid is `wantTransid`, then any reachable one (which the caller refuses); progs takes the first.
 */
export function findByUuid(dest: Destination, uuid: Buffer, wantTransid?: number): FoundSubvol | undefined {
  const candidates: { rootId: number; by: 'received' | 'uuid' }[] = [
    ...findSubvolsByUuid(dest.mntFd, uuid, 'received').map((rootId) => ({ rootId, by: 'received' as const })),
    ...findSubvolsByUuid(dest.mntFd, uuid, 'uuid').map((rootId) => ({ rootId, by: 'uuid' as const })),
  ];
  let reachable: FoundSubvol | undefined;
  let firstError: unknown;
  for (const { rootId, by } of candidates) {
    const item = readRootItem(dest.mntFd, rootId);
    if (!item) continue; // deleted meanwhile
    const transid = by === 'received' ? item.stransid : item.ctransid;
    let relPath: Buffer;
    try {
      relPath = stripMountPrefix(dest, subvolPathFromTopRaw(dest.mntFd, rootId), rootId);
    } catch (e) {
      firstError ??= e;
      continue;
    }
    const found = { rootId, by, relPath, transid, readOnly: (item.flags & 1) !== 0 };
    if (found.readOnly && (wantTransid === undefined || transid === wantTransid)) return found;
    reachable ??= found;
  }
  if (reachable) return reachable;
  if (firstError) throw firstError;
  return undefined;
}

/** A path from the top level made relative to the mounted subvolume, or a clear refusal. */
function stripMountPrefix(dest: Destination, top: Buffer, rootId: number): Buffer {
  const prefix = dest.mountedSubvolPath;
  if (prefix.length === 0) return top;
  if (top.equals(prefix)) return Buffer.alloc(0);
  if (top.length > prefix.length && top[prefix.length] === 0x2f && top.subarray(0, prefix.length).equals(prefix)) {
    return top.subarray(prefix.length + 1);
  }
  throw new RefusedError(`subvolume ${printablePath(top)} (id ${rootId}) is not reachable from the mounted ` +
    `subvolume ${printablePath(prefix)}; mount the top level (subvolid=5) or use -m`);
}

/** Open a found subvolume's root directory (never through a symlink) and check it is that subvolume. */
export function openFound(dest: Destination, found: FoundSubvol): number {
  const path = found.relPath.length === 0 ? Buffer.from('.') : found.relPath;
  const fd = openat2(dest.mntFd, path, FsConst.O_RDONLY | FsConst.O_DIRECTORY, 0, RESOLVE_SAFE);
  try {
    const id = rootIdOf(fd);
    if (id !== found.rootId || Number(fstatSync(fd).ino) !== 256) {
      throw new RefusedError(`${printablePath(path)} is not subvolume ${found.rootId}`);
    }
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** Open the root of the subvolume just created as `name` in the destination. */
function openCreated(dest: Destination, name: Buffer): number {
  const fd = openat2(dest.destFd, name, FsConst.O_RDONLY | FsConst.O_DIRECTORY, 0, RESOLVE_SAFE);
  if (Number(fstatSync(fd).ino) !== 256) {
    close(fd);
    throw new RefusedError(`${printablePath(name)} is not a subvolume after creating it`);
  }
  return fd;
}

/** SUBVOL: a new subvolume `name` in the destination; returns its root fd. */
export function createSubvol(dest: Destination, name: Buffer): number {
  checkName(name);
  subvolCreate(dest.destFd, name);
  return openCreated(dest, name);
}

/**
 * SNAPSHOT: find the parent by UUID (received, then own), check its transid where the root item
 * records one, snapshot it writable as `name`; returns the new root fd.
 */
export function createSnapshot(
  dest: Destination, name: Buffer, parentUuid: Buffer, parentCtransid: number, log: (l: string) => void, verbosity: number,
): number {
  checkName(name);
  const found = findByUuid(dest, parentUuid, parentCtransid);
  if (!found) {
    throw new RefusedError(withHint(`cannot find parent subvolume ${uuidText(parentUuid)}`,
      missingParentHint(parentCtransid, dest.mountPath)));
  }
  if (found.transid !== 0 && found.transid !== parentCtransid) {
    const field = found.by === 'received' ? 'received with stransid' : 'has ctransid';
    throw new RefusedError(`parent subvolume ${printablePath(found.relPath)} (matched by ${found.by === 'received' ? 'received ' : ''}` +
      `uuid ${uuidText(parentUuid)}) ${field} ${found.transid}, but the stream needs transid ${parentCtransid}: ` +
      'it is not the snapshot this stream was made against');
  }
  if (!found.readOnly) {
    throw new RefusedError(`parent subvolume ${printablePath(found.relPath)} (matched by ${found.by === 'received' ? 'received ' : ''}` +
      `uuid ${uuidText(parentUuid)}) is not read-only: it may have changed since it was sent or received`);
  }
  if (found.transid === 0 && verbosity >= 2) {
    log(`parent ${printablePath(found.relPath)} records no transid; not checked`);
  }
  const parentFd = openFound(dest, found);
  try {
    snapCreateV2(dest.destFd, name, parentFd, false);
  } finally {
    close(parentFd);
  }
  return openCreated(dest, name);
}

/** Mark a completed subvolume as received (uuid, stransid) and then read-only. Returns rtransid. */
export function finalizeSubvol(rootFd: number, uuid: Buffer, ctransid: number, shownPath: string): number {
  const rtransid = setReceivedSubvol(rootFd, uuid, ctransid, shownPath);
  try {
    subvolSetFlags(rootFd, subvolGetFlags(rootFd, shownPath) | BTRFS_SUBVOL_RDONLY, shownPath);
  } catch (error) {
    // A writable subvolume must not keep a received UUID: a later incremental receive could pick it
    // as its parent although it may change. An all-zero UUID clears it (as `property set -f ro false`).
    try { setReceivedSubvol(rootFd, Buffer.alloc(16), 0, shownPath); } catch { /* the first error says it */ }
    throw error;
  }
  return rtransid;
}

/** Delete a partially received subvolume (it is still writable). */
export function deleteSubvol(dest: Destination, name: Buffer): void {
  subvolDelete(dest.destFd, name);
}
