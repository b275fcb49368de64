// Failures: ENOSPC mid-receive, a stream cut mid-command or before END, -E, --delete-on-failure,
// several subvolumes per stream. A failed subvolume is never marked received nor read-only.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { ourReceive, ourReceiveFailure } from './helpers/receive-harness.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';
import type { Command } from '../src/stream/commands.js';

const ok = requireBtrfs();
const B = (s: string): Buffer => Buffer.from(s);
async function* bytes(...chunks: Buffer[]): AsyncGenerator<Buffer> { for (const c of chunks) yield c; }

function expectPartial(path: string): void {
  const info = subvolInfo(path);
  expect(info.readonly).toBe(false);
  expect(info.receivedUuid).toBe('-');
}

const file = (path: string, ino: number, data: string): Command[] => [
  { cmd: 'mkfile', path: B(path), ino },
  { cmd: 'write', path: B(path), offset: 0, data: B(data) },
  { cmd: 'chmod', path: B(path), mode: 0o644 },
];

describe.skipIf(!ok)('receive failures', () => {
  let fs: Btrfs;
  let tiny: Btrfs;
  let n = 0;
  const newDest = (on: Btrfs = fs): string => { const d = join(on.mnt, `d${++n}`); mkdirSync(d); return d; };
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 256 });
    tiny = makeBtrfs({ sizeMiB: 128 });
  });
  afterAll(() => { fs?.cleanup(); tiny?.cleanup(); });

  it('ENOSPC mid-receive: clear error naming the write, partial subvolume left writable', async () => {
    const dest = newDest(tiny);
    // ~400 MiB of incompressible WRITEs generated on the fly, into a 128 MiB filesystem.
    async function* big(): AsyncGenerator<Buffer> {
      yield encodeStreamHeader(2);
      yield encodeCommand({ cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 }, 2);
      yield encodeCommand({ cmd: 'mkfile', path: B('big'), ino: 257 }, 2);
      const chunk = randomBytes(128 * 1024);
      for (let off = 0; off < 400 * 1024 * 1024; off += chunk.length) {
        chunk.writeUInt32LE(off, 0); // distinct blocks
        yield encodeCommand({ cmd: 'write', path: B('big'), offset: off, data: chunk }, 2);
      }
      yield encodeCommand({ cmd: 'end' }, 2);
    }
    const { error, log } = await ourReceiveFailure(big(), dest);
    expect(error.message).toMatch(/^receive failed at command #\d+ \(write\) s\/big \(stream byte \d+\): pwrite big failed: No space left on device \(ENOSPC\)$/);
    expect(log.join('\n')).toContain(`partially received subvolume left at ${join(dest, 's')}`);
    expectPartial(join(dest, 's'));
  }, 120_000);

  it('stream cut in the middle of a command', async () => {
    const dest = newDest();
    const stream = buildStream(1, [{ cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 }, ...file('a', 257, 'x'.repeat(1000))]);
    const cut = stream.subarray(0, stream.length - 10 - 700); // inside the WRITE's data
    const { error } = await ourReceiveFailure(bytes(cut), dest);
    expect(error.message).toMatch(/^receive failed: unexpected end of stream inside command #3 \(write\)/);
    expectPartial(join(dest, 's'));
  });

  it('stream without END (cut at a command boundary) is fatal even with -E 0', async () => {
    const dest = newDest();
    const stream = buildStream(1, [{ cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 }, ...file('a', 257, 'x')], { end: false });
    const { error } = await ourReceiveFailure(bytes(stream), dest, { maxErrors: 0 });
    expect(error.message).toMatch(/unexpected end of stream .*has no END/);
    expectPartial(join(dest, 's'));
    expect(readFileSync(join(dest, 's', 'a'), 'utf8')).toBe('x');
  });

  it('--delete-on-failure removes the partial subvolume', async () => {
    const dest = newDest();
    const stream = buildStream(1, [
      { cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 },
      ...file('a', 257, 'x'),
      { cmd: 'rmdir', path: B('missing') },
    ]);
    const { error, log } = await ourReceiveFailure(bytes(stream), dest, { deleteOnFailure: true });
    expect(error.message).toMatch(/command #5 \(rmdir\) s\/missing .*rmdir missing failed: No such file or directory/);
    expect(log).toContain(`deleted partially received subvolume ${join(dest, 's')}`);
    expect(existsSync(join(dest, 's'))).toBe(false);
  });

  it('-E 0 goes on after an error, applies the rest, but never finalizes nor reports success (also with -e)', async () => {
    for (const stopAtEnd of [false, true]) {
      const dest = newDest();
      const stream = buildStream(1, [
        { cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 },
        { cmd: 'unlink', path: B('nope') },
        ...file('after', 257, 'applied'),
      ]);
      const { error, log } = await ourReceiveFailure(bytes(stream), dest, { maxErrors: 0, stopAtEnd });
      expect(log.some((l) => /^ERROR: receive failed at command #2 \(unlink\) s\/nope/.test(l))).toBe(true);
      expect(error.message).toMatch(/^receive finished with 1 error; last: .*#2 \(unlink\)/);
      expect(readFileSync(join(dest, 's', 'after'), 'utf8')).toBe('applied');
      expectPartial(join(dest, 's'));
    }
  });

  it('-E 2 stops at the second error', async () => {
    const dest = newDest();
    const stream = buildStream(1, [
      { cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 },
      { cmd: 'unlink', path: B('nope1') },
      { cmd: 'unlink', path: B('nope2') },
      ...file('never', 257, 'x'),
    ]);
    const { error } = await ourReceiveFailure(bytes(stream), dest, { maxErrors: 2 });
    expect(error.message).toMatch(/command #3 \(unlink\) s\/nope2/);
    expect(existsSync(join(dest, 's', 'never'))).toBe(false);
  });

  it('several subvolumes in one stream (send -e style) and concatenated streams are each finalized', async () => {
    const dest = newDest();
    const [u1, u2, u3] = [randomBytes(16), randomBytes(16), randomBytes(16)];
    const multi = buildStream(2, [
      { cmd: 'subvol', path: B('one'), uuid: u1, ctransid: 11 }, ...file('f', 257, '1'),
      { cmd: 'subvol', path: B('two'), uuid: u2, ctransid: 12 }, ...file('f', 257, '2'),
    ]);
    const third = buildStream(1, [{ cmd: 'subvol', path: B('three'), uuid: u3, ctransid: 13 }, ...file('f', 257, '3')]);
    const { summary, log } = await ourReceive(bytes(multi, third), dest);
    expect(log).toEqual(['At subvol one', 'At subvol two', 'At subvol three']);
    expect(summary.subvolumes).toEqual(['one', 'two', 'three'].map((s) => join(dest, s)));
    for (const [name, u, t] of [['one', u1, 11], ['two', u2, 12], ['three', u3, 13]] as const) {
      const info = subvolInfo(join(dest, name));
      expect(info.readonly).toBe(true);
      expect(info.receivedUuid.replace(/-/g, '')).toBe(u.toString('hex'));
      expect(info.sendTransid).toBe(String(t));
    }
    // -e: only the first stream is read.
    const dest2 = newDest();
    const r = await ourReceive(bytes(third, multi), dest2, { stopAtEnd: true });
    expect(r.summary.subvolumes).toEqual([join(dest2, 'three')]);
    expect(existsSync(join(dest2, 'one'))).toBe(false);
  });

  it('messages: -q prints nothing, default "At subvol", -v adds details and data lines like progs', async () => {
    const u = randomBytes(16);
    const stream = (name: string): Buffer => buildStream(1, [{ cmd: 'subvol', path: B(name), uuid: u, ctransid: 42 }, ...file('f', 257, 'x')]);
    const dest = newDest();
    expect((await ourReceive(bytes(stream('q')), dest, { verbosity: 0 })).log).toEqual([]);
    const { log } = await ourReceive(bytes(stream('v')), dest, { verbosity: 2 });
    const hex = u.toString('hex');
    const text = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    expect(log).toEqual([
      'At subvol v',
      `receiving subvol v uuid=${text}, stransid=42`,
      'write f - offset=0 length=1',
      `BTRFS_IOC_SET_RECEIVED_SUBVOL uuid=${text}, stransid=42`,
    ]);
    const vv = await ourReceive(bytes(stream('vv')), dest, { verbosity: 3 });
    expect(vv.log).toContain('mkfile f');
    expect(vv.log).toContain('chmod f - mode=0644');
  });

  it('an error in one subvolume (-E 0) does not stop the next one from being finalized', async () => {
    const dest = newDest();
    const stream = buildStream(1, [
      { cmd: 'subvol', path: B('bad'), uuid: randomBytes(16), ctransid: 5 }, { cmd: 'unlink', path: B('nope') },
      { cmd: 'subvol', path: B('good'), uuid: randomBytes(16), ctransid: 6 }, ...file('f', 257, 'ok'),
    ]);
    const { error } = await ourReceiveFailure(bytes(stream), dest, { maxErrors: 0 });
    expect(error.message).toMatch(/1 error/);
    expectPartial(join(dest, 'bad'));
    expect(subvolInfo(join(dest, 'good')).readonly).toBe(true);
  });

  it('a SUBVOL that already exists is refused and left alone', async () => {
    const dest = newDest();
    const stream = buildStream(1, [{ cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 }]);
    await ourReceive(bytes(stream), dest);
    const again = buildStream(1, [{ cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 6 }]);
    const { error, log } = await ourReceiveFailure(bytes(again), dest, { deleteOnFailure: true });
    expect(error.message).toMatch(/command #1 \(subvol\) s .*BTRFS_IOC_SUBVOL_CREATE s failed: File exists/);
    expect(log.join('\n')).not.toMatch(/deleted/);
    expect(subvolInfo(join(dest, 's')).readonly).toBe(true);
  });
});
