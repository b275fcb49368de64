// Timing one command the same way for btrfs-progs and btrfs-ts: GNU time's wall/user/sys/peak RSS.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export interface Measurement {
  wall: number;
  user: number;
  sys: number;
  /** Peak resident set size in KiB. */
  maxRssKiB: number;
}

/** Flush dirty data and drop the page cache so neither side inherits the other's warm cache. */
export function settle(): void {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch {
    // Not permitted (not root): caches stay warm for both sides alike.
  }
}

/** Run `shellCommand` under /usr/bin/time; throws with its stderr when it fails. */
export function measure(shellCommand: string): Measurement {
  const format = '@@TIME %e %U %S %M';
  const result = spawnSync('/usr/bin/time', ['-f', format, 'bash', '-o', 'pipefail', '-c', shellCommand], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const line = result.stderr.split('\n').reverse().find((l) => l.startsWith('@@TIME '));
  if (result.status !== 0 || line === undefined) {
    throw new Error(`benchmark command failed (${result.status}): ${shellCommand}\n${result.stderr.slice(-2000)}`);
  }
  const [wall, user, sys, rss] = line.slice(7).split(' ').map(Number);
  return { wall: wall!, user: user!, sys: sys!, maxRssKiB: rss! };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
