// The benchmark's measurement (src/bench/measure.ts): how busy the whole machine was during a command is
// read from /proc/stat — the number behind "btrfs' workers take the CPU a receive leaves" in
// docs/benchmarks.md, so it must count busy time only, and all of it.
import { describe, expect, it } from 'vitest';
import { cpus } from 'node:os';
import { machineBusySeconds, measure } from '../src/bench/measure.js';

describe('machine busy time', () => {
  it('sums user, nice, system, irq and softirq ticks of the "cpu" line; idle, iowait and steal do not count', () => {
    const stat = 'cpu  1000 20 300 999999 4444 5 6 7777 0 0\ncpu0 500 10 150 499999 2222 2 3 3888 0 0\n';
    expect(machineBusySeconds(stat)).toBeCloseTo((1000 + 20 + 300 + 5 + 6) / 100, 10);
  });

  it('refuses a first line that is not the all-CPU summary', () => {
    expect(() => machineBusySeconds('cpu0 1 2 3 4 5 6 7 8\n')).toThrow(/unexpected \/proc\/stat first line/);
  });

  it('a command that spins one CPU for 0.3 s shows about 0.3 core-seconds, one that sleeps almost none', () => {
    const spin = measure(`${process.execPath} -e 'const end = Date.now() + 300; while (Date.now() < end);'`);
    expect(spin.machineBusy).toBeGreaterThanOrEqual(0.25);
    expect(spin.machineBusy).toBeLessThanOrEqual(spin.wall * cpus().length + 0.02);
    // Other work on the machine (btrfs' workers finishing an earlier test's deletes) may run meanwhile:
    // the quietest of three sleeps.
    const sleeps = [0, 1, 2].map(() => measure('sleep 0.3'));
    for (const sleep of sleeps) expect(sleep.wall).toBeGreaterThanOrEqual(0.3);
    expect(Math.min(...sleeps.map((s) => s.machineBusy))).toBeLessThan(spin.machineBusy / 2);
  });
});
