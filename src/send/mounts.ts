// Which mount a path is on, as progs' find_mount_root decides it (protocol.md §5.3): the longest mount
// directory in /proc/self/mounts that contains the path (whole components; a later entry of the same
// length wins, i.e. the mount on top), and whether it is btrfs.
import { readFileSync, realpathSync } from 'node:fs';

export interface MountEntry {
  dir: string;
  type: string;
}

/** Undo the octal escapes (\040 for space, ...) the kernel writes into /proc/self/mounts. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 3) continue;
    entries.push({ dir: unescapeMountField(fields[1]!), type: fields[2]! });
  }
  return entries;
}

/** `path` equals `dir` or lies below it (component-wise, both absolute and normalised). */
export function pathIsInDir(dir: string, path: string): boolean {
  if (dir === '/' || dir === path) return true;
  return path.startsWith(dir) && path[dir.length] === '/';
}

/** The longest entry containing `path`, or undefined. */
export function longestMount(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    if (pathIsInDir(entry.dir, path) && (!best || entry.dir.length >= best.dir.length)) best = entry;
  }
  return best;
}

export type MountRoot = { kind: 'btrfs'; root: string } | { kind: 'not-btrfs' } | { kind: 'none' };

/** Find the mount holding `path` (already a realpath) from /proc/self/mounts. */
export function findMountRoot(path: string, mountsText = readFileSync('/proc/self/mounts', 'utf8')): MountRoot {
  const best = longestMount(parseMounts(mountsText), path);
  if (!best) return { kind: 'none' };
  if (best.type !== 'btrfs') return { kind: 'not-btrfs' };
  return { kind: 'btrfs', root: realpathSync(best.dir) };
}

/** `path` relative to mount root `root` (progs' subvol_strip_mountpoint), '' for the root itself. */
export function stripMountPoint(root: string, path: string): string {
  if (root === '/') return path.replace(/^\/+/, '');
  if (path === root) return '';
  return path.slice(root.length).replace(/^\/+/, '');
}
