// The CLI glue: the line goes away before an error is printed, and the receive summary's counters
// reach the summary line.
import { describe, expect, it } from 'vitest';
import { receiveProgressSummary, startProgress } from '../src/progress/cli.js';
import { summaryLine } from '../src/progress/reporter.js';

function terminal() {
  const out: string[] = [];
  return { out, stream: { isTTY: true, columns: 100, write: (s: string) => { out.push(s); return true; } } };
}

describe('startProgress', () => {
  it('erases the line when the operation fails, and passes the error on', async () => {
    const { out, stream } = terminal();
    const p = startProgress({ stream, total: 100 });
    expect(p.enabled).toBe(true);
    await expect(p.run(async () => {
      p.onProgress(10, Buffer.from('a'));
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(out.at(-1)).toBe('\r\x1b[K');
  });

  it('is off for -q and --no-progress, and then logs plainly', () => {
    const lines: string[] = [];
    for (const setup of [{ quiet: true }, { progress: false }]) {
      const { out, stream } = terminal();
      const p = startProgress({ ...setup, stream, log: (l) => lines.push(l) });
      expect(p.enabled).toBe(false);
      p.onProgress(5);
      p.log('At subvol x');
      p.finish({ commands: 1 });
      expect(out).toEqual([]);
    }
    expect(lines).toEqual(['At subvol x', 'At subvol x']);
  });

  it('maps a receive summary: stream bytes, commands, compressed extents only when there were some', () => {
    expect(receiveProgressSummary({ subvolumes: [], commands: 9, bytes: 5, streamBytes: 377, encodedExtents: 0, decompressedExtents: 0 }))
      .toEqual({ commands: 9, bytes: 377 });
    const s = receiveProgressSummary({ subvolumes: [], commands: 9, bytes: 5, streamBytes: 2048, encodedExtents: 3, decompressedExtents: 1 });
    expect(summaryLine('received', { bytes: 0, ...s }, 2)).toBe(
      'received 2.0 KiB, 9 commands in 0:02 (1.0 KiB/s); compressed extents: 3 kept compressed, 1 decompressed');
  });
});
