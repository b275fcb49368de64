// Timing one command the same way for btrfs-progs and btrfs-ts: GNU time's wall/user/sys/peak RSS, and
// how busy the whole machine was meanwhile (btrfs' own workers do much of a receive's work).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export interface Measurement {
  wall: number;
  user: number;
  sys: number;
  /** Peak resident set size in KiB. */
  maxRssKiB: number;
  /**
   * Core-seconds all CPUs spent working during the command, whoever for: the tool, btrfs' kernel workers,
   * the loop devices (at most wall × CPUs).
   */
  machineBusy: number;
}

/** Linux reports /proc/stat in USER_HZ ticks, 100 a second on every architecture Node runs on. */
const USER_HZ = 100;

/**
 * Seconds the machine's CPUs have spent busy since boot, summed over CPUs: user, nice, system, irq and
 * softirq time from the first ("cpu") line of /proc/stat. Idle, I/O wait and steal do not count.
 */
export function machineBusySeconds(procStat = readFileSync('/proc/stat', 'utf8')): number {
  const line = procStat.slice(0, procStat.indexOf('\n'));
  const [label, user, nice, system, , , irq, softirq] = line.trim().split(/\s+/);
  if (label !== 'cpu' || softirq === undefined) throw new Error(`unexpected /proc/stat first line: ${line}`);
  return (Number(user) + Number(nice) + Number(system) + Number(irq) + Number(softirq)) / USER_HZ;
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
  const busyBefore = machineBusySeconds();
  const result = spawnSync('/usr/bin/time', ['-f', format, 'bash', '-o', 'pipefail', '-c', shellCommand], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const machineBusy = machineBusySeconds() - busyBefore;
  const line = result.stderr.split('\n').reverse().find((l) => l.startsWith('@@TIME '));
  if (result.status !== 0 || line === undefined) {
    throw new Error(`benchmark command failed (${result.status}): ${shellCommand}\n${result.stderr.slice(-2000)}`);
  }
  const [wall, user, sys, rss] = line.slice(7).split(' ').map(Number);
  return { wall: wall!, user: user!, sys: sys!, maxRssKiB: rss!, machineBusy };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
