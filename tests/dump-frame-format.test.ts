// The dump's fast path — common commands printed straight from their frame, without a Command — against
// the reference it replaced (readStream → decodeCommand → ProgsDumpFormatter.format): identical output
// and identical errors, for clean streams read from files and from Readables, and for every attribute
// of every fast-path command missing, of the wrong size or holding a NUL, plus CRC damage, truncation
// and paths too long for progs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { dumpStream } from '../src/dump/dump.js';
import { OutBuffer } from '../src/dump/out-buffer.js';
import { DumpPathError, ProgsDumpFormatter } from '../src/dump/progs-dump.js';
import { loadZone } from '../src/dump/localtime.js';
import { readStream, type StreamRecord } from '../src/stream/reader.js';
import { StreamError, describeCommand } from '../src/stream/errors.js';
import { Attr, Cmd } from '../src/stream/protocol.js';
import { buildStream, commandOffsets, raw, tlv, u32le, u64le, type AnyCommand, type RawAttr } from './helpers/stream-builder.js';

const FIX = join(import.meta.dirname, 'fixtures', 'dump');
let dir: string;
let fileNo = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-dumpframe-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome { out: string; error?: string }

/** The dump as it was before the fast path: every command decoded, then formatted. */
async function referenceDump(bytes: Buffer, stopAtFirstEnd = false): Promise<Outcome> {
  const chunks: Buffer[] = [];
  const out = new OutBuffer((c) => chunks.push(c));
  const text = new ProgsDumpFormatter(out, { zone: loadZone('UTC') });
  let stream = -1;
  let last: StreamRecord | undefined;
  const done = (error?: string): Outcome => {
    out.flush();
    const r: Outcome = { out: Buffer.concat(chunks).toString('latin1') };
    if (error !== undefined) r.error = error;
    return r;
  };
  try {
    for await (const rec of readStream(Readable.from([bytes]), { stopAtFirstEnd })) {
      last = rec;
      if (rec.stream !== stream) {
        stream = rec.stream;
        text.newStream();
      }
      text.format(rec.command);
    }
  } catch (err) {
    if (err instanceof DumpPathError && last) {
      return done(new StreamError(`${describeCommand(last.index, last.command.cmd)} at byte ${last.offset}: ${err.message}`,
        last.offset).message);
    }
    return done((err as Error).message);
  }
  return done();
}

async function dumpOf(input: number | string | Readable, stopAtFirstEnd = false): Promise<Outcome> {
  const chunks: Buffer[] = [];
  try {
    await dumpStream({ input, output: (c) => chunks.push(c), timeZone: 'UTC', stopAtFirstEnd });
    return { out: Buffer.concat(chunks).toString('latin1') };
  } catch (err) {
    return { out: Buffer.concat(chunks).toString('latin1'), error: (err as Error).message };
  }
}

/** dumpStream from a regular file and from a Readable = the reference; returns the outcome. */
async function expectSame(bytes: Buffer, stopAtFirstEnd = false): Promise<Outcome> {
  const want = await referenceDump(bytes, stopAtFirstEnd);
  const path = join(dir, `s${fileNo++}.stream`);
  writeFileSync(path, bytes);
  const fd = openSync(path, 'r');
  const fromFd = await dumpOf(fd, stopAtFirstEnd); // a regular file's fd: synchronous reads
  closeSync(fd);
  expect(fromFd).toEqual(want);
  expect(await dumpOf(path, stopAtFirstEnd)).toEqual(want);
  rmSync(path);
  expect(await dumpOf(Readable.from([bytes]), stopAtFirstEnd)).toEqual(want);
  return want;
}

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const time = (sec: number, nsec = 0): Buffer => Buffer.concat([u64le(BigInt(sec)), u32le(nsec)]);

/** Each fast-path command as raw attributes (v2 for encoded_write: its DATA runs to the end). */
const FAST: Array<{ version: number; cmd: number; attrs: RawAttr[] }> = [
  { version: 1, cmd: Cmd.MKFILE, attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.INO, u64le(300))] },
  { version: 1, cmd: Cmd.MKDIR, attrs: [tlv(Attr.PATH, 'd/sub/'), tlv(Attr.INO, u64le(301))] },
  { version: 1, cmd: Cmd.UNLINK, attrs: [tlv(Attr.PATH, 'd/gone me')] },
  { version: 1, cmd: Cmd.RMDIR, attrs: [tlv(Attr.PATH, 'd/\x01\xff')] },
  { version: 1, cmd: Cmd.RENAME, attrs: [tlv(Attr.PATH, 'o300-5-0'), tlv(Attr.PATH_TO, 'd/new\\name')] },
  { version: 1, cmd: Cmd.WRITE, attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.FILE_OFFSET, u64le(2 ** 53 - 1)), tlv(Attr.DATA, Buffer.alloc(333, 1))] },
  { version: 1, cmd: Cmd.TRUNCATE, attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.SIZE, u64le(123456789012))] },
  { version: 1, cmd: Cmd.CHMOD, attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.MODE, u64le(0o104755))] },
  { version: 1, cmd: Cmd.CHOWN, attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.UID, u64le(4294967295)), tlv(Attr.GID, u64le(0))] },
  {
    version: 1, cmd: Cmd.UTIMES,
    attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.ATIME, time(-1, 5)), tlv(Attr.MTIME, time(1_700_000_000)), tlv(Attr.CTIME, time(0)), tlv(Attr.OTIME, time(12))],
  },
  {
    // Three seconds that share a slot of the time text cache (1024 slots): each line must still show its own.
    version: 1, cmd: Cmd.UTIMES,
    attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.ATIME, time(1_700_000_000)), tlv(Attr.MTIME, time(1_700_000_000 + 1024)),
      tlv(Attr.CTIME, time(1_700_000_000 - 7 * 1024))],
  },
  {
    version: 2, cmd: Cmd.ENCODED_WRITE,
    attrs: [tlv(Attr.PATH, 'd/f'), tlv(Attr.FILE_OFFSET, u64le(8192)), tlv(Attr.UNENCODED_FILE_LEN, u64le(4000)),
      tlv(Attr.UNENCODED_LEN, u64le(4096)), tlv(Attr.UNENCODED_OFFSET, u64le(0)), tlv(Attr.COMPRESSION, u32le(3)),
      tlv(Attr.ENCRYPTION, u32le(0)), tlv(Attr.DATA, Buffer.alloc(77, 9), { noLength: true })],
  },
];

/** A stream with a few good commands around `middle`. */
function around(version: number, middle: AnyCommand): Buffer {
  return buildStream(version, [
    { cmd: 'subvol', path: B('vol'), uuid: Buffer.alloc(16, 7), ctransid: 3 },
    { cmd: 'mkdir', path: B('d'), ino: 257 },
    middle,
    { cmd: 'chown', path: B('d'), uid: 1, gid: 2 },
  ]);
}

describe('dump: commands printed from their frame = decoded and formatted', () => {
  it('real fixtures, from a file and from a Readable, with and without -e', async () => {
    for (const name of readdirSync(FIX).filter((n) => n.endsWith('.stream'))) {
      const bytes = readFileSync(join(FIX, name));
      expect((await expectSame(bytes)).error).toBeUndefined();
      await expectSame(bytes, true);
    }
    expect((await dumpOf(join(FIX, 'full-v1.stream'))).out).toBe(readFileSync(join(FIX, 'full-v1.utc.dump'), 'latin1'));
  });

  it('every fast-path command, well formed and with each attribute missing, resized or holding a NUL', async () => {
    let errors = 0;
    for (const { version, cmd, attrs } of FAST) {
      const good = await expectSame(around(version, raw(cmd, attrs)));
      expect(good.error).toBeUndefined();
      for (let i = 0; i < attrs.length; i++) {
        const a = attrs[i]!;
        const without = attrs.filter((_, j) => j !== i);
        const longer = attrs.map((x, j) => (j === i && !x.noLength ? { ...x, value: Buffer.concat([x.value, Buffer.from([0])]) } : x));
        const withNul = attrs.map((x, j) => (j === i ? { ...x, value: Buffer.concat([Buffer.from([0x61, 0]), x.value]) } : x));
        for (const variant of [without, longer, withNul]) {
          const r = await expectSame(around(version, raw(cmd, variant)));
          if (r.error !== undefined) errors++;
        }
        void a;
        // Two attributes wrong at once: the error names the one decodeCommand reads first.
        for (let j = i + 1; j < attrs.length; j++) {
          const both = attrs.filter((_, k) => k !== i && k !== j);
          if ((await expectSame(around(version, raw(cmd, both)))).error !== undefined) errors++;
        }
      }
      expect((await expectSame(around(version, raw(cmd, [])))).error).toContain('missing attribute PATH');
    }
    expect(errors).toBeGreaterThan(80); // the variants do fail, and fail alike
  });

  it('values beyond 2^53 and times beyond the range fail alike', async () => {
    const huge = u64le(2n ** 60n);
    const r1 = await expectSame(around(1, raw(Cmd.WRITE, [tlv(Attr.PATH, 'f'), tlv(Attr.FILE_OFFSET, huge), tlv(Attr.DATA, 'x')])));
    expect(r1.error).toContain('beyond 2^53');
    const r2 = await expectSame(around(1, raw(Cmd.UTIMES, [tlv(Attr.PATH, 'f'), tlv(Attr.ATIME, time(0)), tlv(Attr.MTIME, time(0)),
      tlv(Attr.CTIME, time(0)), tlv(Attr.OTIME, Buffer.concat([huge, u32le(0)]))])));
    expect(r2.error).toContain('OTIME');
  });

  it('CRC damage and truncation anywhere in a stream of every fast-path command', async () => {
    const s = buildStream(2, [
      { cmd: 'subvol', path: B('vol'), uuid: Buffer.alloc(16, 7), ctransid: 3 },
      ...FAST.map(({ cmd, attrs }) => raw(cmd, attrs)),
    ]);
    const offsets = commandOffsets(s);
    for (const at of offsets) {
      const bad = Buffer.from(s);
      bad[at + 8] ^= 0x20;
      expect((await expectSame(bad)).error).toContain(`bad CRC32C`);
    }
    for (const cut of [3, 17, 30, offsets[4]! + 5, offsets[7]! + 12, s.length - 1]) {
      expect((await expectSame(s.subarray(0, cut))).error).toMatch(/unexpected end of stream|bad magic/);
    }
  });

  it('an fd: commands larger than the read buffer; -e leaves the fd just past the first END', async () => {
    const big = buildStream(2, [
      { cmd: 'subvol', path: B('vol'), uuid: Buffer.alloc(16, 7), ctransid: 3 },
      ...[100, 300_000, 700_000, 5, 2_000_000, 64].map((n, i) => ({ cmd: 'write' as const, path: B(`f${i}`), offset: i, data: Buffer.alloc(n, i) })),
    ]);
    expect((await expectSame(Buffer.concat([big, big, big]))).out.split('\n')).toHaveLength(3 * 7 + 1);
    const tail = Buffer.from('and the rest of the input');
    const path = join(dir, 'e.stream');
    writeFileSync(path, Buffer.concat([big, tail]));
    const fd = openSync(path, 'r');
    expect((await dumpOf(fd, true)).error).toBeUndefined();
    const rest = Buffer.alloc(100);
    const n = readSync(fd, rest, 0, 100, null);
    closeSync(fd);
    expect(rest.subarray(0, n).toString()).toBe(tail.toString());
  });

  it('a path too long for progs: the lines before it, then the error naming the command', async () => {
    for (const cmd of FAST.filter((f) => f.version === 1)) {
      const attrs = cmd.attrs.map((a) => (a.type === Attr.PATH || a.type === Attr.PATH_TO ? { ...a, value: Buffer.alloc(4094, 0x61) } : a));
      const r = await expectSame(around(1, raw(cmd.cmd, attrs)));
      expect(r.error).toMatch(/^command #3 \(\w+\) at byte \d+: \w+: path too long/);
      expect(r.out.split('\n')).toHaveLength(3); // subvol and mkdir lines, then nothing
    }
  });
});
