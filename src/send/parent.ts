// Automatic parent selection for `send -c ...` without `-p` (protocol.md §5.3), as a pure function over
// two lookups so it can be tested without a filesystem.

export interface SubvolSummary {
  rootId: number;
  uuid: Buffer;
  parentUuid: Buffer;
  ctransid: number;
}

export interface SubvolLookup {
  /** The subvolume with this root id, or undefined. */
  byRootId(rootId: number): SubvolSummary | undefined;
  /** The subvolume whose own UUID is this, or undefined. */
  byUuid(uuid: Buffer): SubvolSummary | undefined;
}

/** The subvolume `rootId` was snapshotted from (its parent_uuid resolved), if it still exists. */
function originOf(lookup: SubvolLookup, rootId: number): SubvolSummary | undefined {
  const self = lookup.byRootId(rootId);
  return self ? lookup.byUuid(self.parentUuid) : undefined;
}

/**
 * progs' choice: the origin O of the sent subvolume if O is a clone source; else, among clone sources
 * that are snapshots of the same O, the one whose ctransid is closest to O's (first wins a tie).
 * Returns undefined when there is none (progs: "parent determination failed for <rootid>").
 */
export function chooseParent(rootId: number, cloneSources: readonly number[], lookup: SubvolLookup): number | undefined {
  const origin = originOf(lookup, rootId);
  if (!origin) return undefined;
  if (cloneSources.includes(origin.rootId)) return origin.rootId;
  let best: number | undefined;
  let bestDiff = Infinity;
  for (const candidate of cloneSources) {
    const candidateOrigin = originOf(lookup, candidate);
    if (!candidateOrigin || candidateOrigin.rootId !== origin.rootId) continue;
    const info = lookup.byRootId(candidate);
    if (!info) return undefined;
    const diff = Math.abs(info.ctransid - origin.ctransid);
    if (diff < bestDiff) {
      best = candidate;
      bestDiff = diff;
    }
  }
  return best;
}
