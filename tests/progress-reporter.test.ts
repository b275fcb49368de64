// The progress reporter with a fake clock and a fake terminal: what the line says, how often it is
// redrawn, the ETA, and the summary.
import { describe, expect, it } from 'vitest';
import { createProgress, progressEnabled, summaryLine } from '../src/progress/index.js';
import { displayPath, formatBytes, formatDuration } from '../src/progress/format.js';

const MiB = 1024 * 1024;

function fakeTerminal(isTTY = true, columns = 120) {
  const out: string[] = [];
  return { out, stream: { isTTY, columns, write: (s: string) => { out.push(s); return true; } } };
}

/** What a terminal would show: apply \r and erase-line, keep only the visible lines. */
function screen(chunks: string[]): string[] {
  const lines: string[] = [''];
  for (const chunk of chunks) {
    for (const piece of chunk.split(/(\r\x1b\[K|\n)/)) {
      if (piece === '\r\x1b[K') lines[lines.length - 1] = '';
      else if (piece === '\n') lines.push('');
      else lines[lines.length - 1] += piece;
    }
  }
  return lines.filter((l, i) => l !== '' || i < lines.length - 1);
}

describe('format', () => {
  it('formats sizes, durations and unprintable names', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(256 * MiB)).toBe('256.0 MiB');
    expect(formatBytes(1024 * 1024 - 1)).toBe('1.0 MiB');
    expect(formatDuration(7.9)).toBe('0:07');
    expect(formatDuration(3723)).toBe('1:02:03');
    expect(displayPath(Buffer.from('dir/ünï'))).toBe('dir/ünï');
    expect(displayPath(Buffer.from('new\nline\x1b[2J'))).toBe('new\\012line\\033[2J');
    expect(displayPath(Buffer.from([0xff, 0x41]))).toBe('\\377A');
  });
});

describe('createProgress', () => {
  it('shows bytes, percent, rate, elapsed, ETA and the path, redrawn in place', () => {
    let t = 0;
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: true, total: 200 * MiB, now: () => t, tickMs: false });
    t = 2000;
    p.update(50 * MiB, Buffer.from('big.bin'));
    expect(out).toEqual(['\r\x1b[K[ 25%] 50.0 MiB / 200.0 MiB  25.0 MiB/s  elapsed 0:02  ETA 0:06  big.bin']);
    p.finish({ bytes: 200 * MiB, commands: 1700 });
    expect(screen(out)).toEqual([
      '[100%] 200.0 MiB / 200.0 MiB  100.0 MiB/s  elapsed 0:02  ETA 0:00',
      'received 200.0 MiB, 1700 commands in 0:02 (100.0 MiB/s)',
    ]);
  });

  it('redraws at most every 100 ms however often it is updated', () => {
    let t = 0;
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: true, now: () => t, tickMs: false });
    for (let i = 1; i <= 1000; i++) {
      t = i; // 1000 updates within one second
      p.update(i * 1000);
    }
    // first update at t=1 draws, then one per 100 ms: t=101, 201, ..., 901
    expect(out.length).toBe(10);
  });

  it('reaches 100 % and ETA 0:00 when the bytes reach the total', () => {
    let t = 0;
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: true, total: 10 * MiB, now: () => t, tickMs: false });
    for (let i = 1; i <= 10; i++) {
      t = i * 1000;
      p.update(i * MiB, `f${i}`);
    }
    const last = screen(out).at(-1)!;
    expect(last).toBe('[100%] 10.0 MiB / 10.0 MiB  1.0 MiB/s  elapsed 0:10  ETA 0:00  f10');
    expect(screen(out)[0]).toBe('[100%] 10.0 MiB / 10.0 MiB  1.0 MiB/s  elapsed 0:10  ETA 0:00  f10');
    expect(out[4]).toBe('\r\x1b[K[ 50%] 5.0 MiB / 10.0 MiB  1.0 MiB/s  elapsed 0:05  ETA 0:05  f5');
  });

  it('follows the recent rate for the ETA, not the average since the start', () => {
    let t = 0;
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: true, total: 100 * MiB, now: () => t, tickMs: false });
    // 10 s at 1 MiB/s, then 10 s at 4 MiB/s
    for (let i = 1; i <= 200; i++) {
      t = i * 100;
      p.update(i <= 100 ? (i * MiB) / 10 : 10 * MiB + ((i - 100) * 4 * MiB) / 10);
    }
    // 50 MiB done at t=20 s; recent rate 4 MiB/s → 12.5 s left (shown rounded up; the average, 2.5 MiB/s, would say 20 s)
    expect(out.at(-1)).toBe('\r\x1b[K[ 50%] 50.0 MiB / 100.0 MiB  4.0 MiB/s  elapsed 0:20  ETA 0:13');
  });

  it('marks an estimated total and never claims 100 % before finish', () => {
    let t = 0;
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: true, total: 10 * MiB, totalIsEstimate: true, verb: 'sent', now: () => t, tickMs: false });
    t = 1000;
    p.update(12 * MiB);
    expect(out.at(-1)).toBe('\r\x1b[K[ 99%] 12.0 MiB / ~10.0 MiB  12.0 MiB/s  elapsed 0:01  ETA 0:00');
    p.finish({ bytes: 12 * MiB, commands: 3 });
    expect(screen(out).at(-1)).toBe('sent 12.0 MiB, 3 commands in 0:01 (12.0 MiB/s)');
  });

  it('keeps a long path on one line, cut at the front, within the terminal width', () => {
    let t = 0;
    const { out, stream } = fakeTerminal(true, 60);
    const p = createProgress({ stream, enabled: true, now: () => t, tickMs: false });
    t = 1000;
    p.update(MiB, 'a/very/long/directory/name/that/does/not/fit/file.txt');
    const shown = screen(out)[0]!;
    expect([...shown].length).toBeLessThanOrEqual(59);
    expect(shown).toBe('1.0 MiB  1.0 MiB/s  elapsed 0:01  …at/does/not/fit/file.txt');
  });

  it('prints messages above the line and redraws it', () => {
    let t = 0;
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: true, now: () => t, tickMs: false });
    t = 1000;
    p.update(MiB);
    t = 1050;
    p.log('first');
    expect(screen(out)).toEqual(['first']); // drawn 50 ms ago: the next update or tick redraws it
    t = 1100;
    p.log('At subvol snap1');
    expect(screen(out)).toEqual(['first', 'At subvol snap1']); // nothing was shown: nothing to redraw yet
    p.update(MiB);
    expect(screen(out)).toEqual(['first', 'At subvol snap1', '1.0 MiB  930.9 KiB/s  elapsed 0:01']);
    t = 1300;
    p.log('second');
    expect(screen(out)).toEqual(['first', 'At subvol snap1', 'second', '1.0 MiB  787.7 KiB/s  elapsed 0:01']);
    p.abort();
    expect(screen(out)).toEqual(['first', 'At subvol snap1', 'second']);
  });

  it('writes plain lines, no escapes, at most once a second when stderr is not a terminal', () => {
    let t = 0;
    const { out, stream } = fakeTerminal(false);
    const p = createProgress({ stream, enabled: true, total: 4 * MiB, now: () => t });
    for (let i = 1; i <= 40; i++) {
      t = i * 100;
      p.update((i * MiB) / 10);
    }
    p.finish({ bytes: 4 * MiB, commands: 40, encoded: 7, decompressed: 1 });
    expect(out.join('')).not.toContain('\x1b');
    expect(out.join('')).not.toContain('\r');
    expect(out).toEqual([
      '[  2%] 102.4 KiB / 4.0 MiB  -- B/s  elapsed 0:00  ETA --:--\n',
      '[ 27%] 1.1 MiB / 4.0 MiB  1.0 MiB/s  elapsed 0:01  ETA 0:03\n',
      '[ 52%] 2.1 MiB / 4.0 MiB  1.0 MiB/s  elapsed 0:02  ETA 0:02\n',
      '[ 77%] 3.1 MiB / 4.0 MiB  1.0 MiB/s  elapsed 0:03  ETA 0:01\n',
      '[100%] 4.0 MiB / 4.0 MiB  1.0 MiB/s  elapsed 0:04  ETA 0:00\n',
      'received 4.0 MiB, 40 commands in 0:04 (1.0 MiB/s); compressed extents: 7 kept compressed, 1 decompressed\n',
    ]);
  });

  it('draws nothing when disabled, but still passes messages through', () => {
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: false, total: 10 });
    p.update(5, 'x');
    p.finish({ bytes: 10, commands: 1 });
    p.log('At subvol x');
    expect(out).toEqual(['At subvol x\n']);
  });

  it('redraws while idle so the elapsed time moves', async () => {
    let t = 0;
    const { out, stream } = fakeTerminal();
    const p = createProgress({ stream, enabled: true, now: () => t, tickMs: 10 });
    t = 500;
    p.update(100);
    const before = out.length;
    t = 3500;
    await new Promise((r) => setTimeout(r, 60));
    expect(out.length).toBeGreaterThan(before);
    expect(out.at(-1)).toContain('elapsed 0:03');
    p.abort();
    const after = out.length;
    await new Promise((r) => setTimeout(r, 40));
    expect(out.length).toBe(after);
  });
});

describe('progressEnabled', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  it('is on by default only on a terminal; --progress forces, -q and --no-progress silence', () => {
    expect(progressEnabled({ stream: tty })).toBe(true);
    expect(progressEnabled({ stream: pipe })).toBe(false);
    expect(progressEnabled({ stream: pipe, progress: true })).toBe(true);
    expect(progressEnabled({ stream: tty, progress: false })).toBe(false);
    expect(progressEnabled({ stream: tty, quiet: true })).toBe(false);
    expect(progressEnabled({ stream: pipe, quiet: true, progress: true })).toBe(true);
  });
});

describe('summaryLine', () => {
  it('says one command in the singular', () => {
    expect(summaryLine('sent', { bytes: 10, commands: 1 }, 0)).toBe('sent 10 B, 1 command in 0:00 (10 B/s)');
  });
});
