// Subvolume metadata for automatic parent selection, read from the mounted filesystem's trees
// (root items and the UUID tree; needs CAP_SYS_ADMIN). Memoised: one send asks about the same few
// subvolumes repeatedly.
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { readRootItem, findSubvolByUuid } from '../sys/subvolume.js';
import { strerror } from '../sys/libc.js';
import { SendError } from './errors.js';
import type { SubvolLookup, SubvolSummary } from './parent.js';

const O_NOATIME = fsConstants.O_NOATIME ?? 0o1000000;
const ZERO_UUID = Buffer.alloc(16);

export function mountLookup(mountRoot: string): { lookup: SubvolLookup; close(): void } {
  let fd: number;
  try {
    fd = openSync(mountRoot, fsConstants.O_RDONLY | O_NOATIME);
  } catch (e) {
    throw new SendError(`cannot open '${mountRoot}': ${strerror(Math.abs((e as NodeJS.ErrnoException).errno ?? 0))}`);
  }
  const byId = new Map<number, SubvolSummary | undefined>();
  const byRootId = (rootId: number): SubvolSummary | undefined => {
    if (!byId.has(rootId)) {
      const item = readRootItem(fd, rootId);
      byId.set(rootId, item && { rootId, uuid: item.uuid, parentUuid: item.parentUuid, ctransid: item.ctransid });
    }
    return byId.get(rootId);
  };
  const byUuid = (uuid: Buffer): SubvolSummary | undefined => {
    if (uuid.equals(ZERO_UUID)) return undefined;
    const rootId = findSubvolByUuid(fd, uuid, 'uuid');
    return rootId === undefined ? undefined : byRootId(rootId);
  };
  return { lookup: { byRootId, byUuid }, close: () => closeSync(fd) };
}
