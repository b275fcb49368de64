// Seeded random trees for tests (the soak's generator, see src/soak/random-tree.ts):
//   buildRandomTree(dir, new Rng(seed), { entries, maxFileSize })   every inode type, odd names, holes,
//                                                                     reflinks, xattrs/ACLs, flags, times
//   mutateRandomTree(dir, new Rng(seed), step, { mutations })        renames (swaps, cycles, ancestor
//                                                                     inversions), deletes, data and
//                                                                     metadata changes
// Both return a log of the operations; the same seed gives the same tree. Root and btrfs required.
export { buildRandomTree, mutateRandomTree, scanTree, cloneRange, type TreeOptions } from '../../src/soak/random-tree.js';
export { Rng } from '../../src/soak/prng.js';
export { collectTree, diffTrees, formatDifference, showPath } from '../../src/lab/compare-trees.js';
