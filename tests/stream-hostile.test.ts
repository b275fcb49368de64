// Hostile input: every malformed stream must give a one-line StreamError naming a byte offset —
// never another exception, never a hang, never a large allocation.
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { readStream } from '../src/stream/reader.js';
import { StreamError } from '../src/stream/errors.js';
import { Attr, Cmd } from '../src/stream/protocol.js';
import { encodeCommand } from '../src/stream/writer.js';
import type { Command } from '../src/stream/commands.js';
import {
  buildStream, chunksOf, commandOffsets, fixCrc, raw, readAll, readError, streamHeader, tlv, u32le, u64le,
} from './helpers/stream-builder.js';

const p = (s: string) => Buffer.from(s, 'latin1');
const small: Command[] = [
  { cmd: 'subvol', path: p('s'), uuid: Buffer.alloc(16, 9), ctransid: 7 },
  { cmd: 'mkfile', path: p('o257-7-0'), ino: 257 },
  { cmd: 'rename', path: p('o257-7-0'), to: p('file') },
  { cmd: 'write', path: p('file'), offset: 0, data: p('0123456789abcdef') },
  { cmd: 'set_xattr', path: p('file'), name: p('user.a'), value: p('b') },
  {
    cmd: 'utimes', path: p('file'), atime: { sec: 1, nsec: 2 }, mtime: { sec: 3, nsec: 4 }, ctime: { sec: 5, nsec: 6 },
  },
];
const bytesOf = (b: Buffer) => Readable.from([b]);

function expectOneLine(e: StreamError): void {
  expect(e).toBeInstanceOf(StreamError);
  expect(e.message).not.toMatch(/\n/);
  expect(e.message).toMatch(/at byte \d+/);
  expect(Number.isInteger(e.offset)).toBe(true);
}

describe('truncation', () => {
  for (const version of [1, 2]) {
    it(`v${version}: cutting the stream at every offset gives a StreamError naming where`, async () => {
      const full = buildStream(version, small);
      expect((await readAll(bytesOf(full))).length).toBe(small.length + 1);
      for (let cut = 0; cut < full.length; cut++) {
        const e = await readError(bytesOf(full.subarray(0, cut)));
        expectOneLine(e);
        if (cut === 0) expect(e.message).toMatch(/^empty stream/);
        else expect(e.message).toMatch(/^unexpected end of stream/);
        expect(e.offset).toBeLessThanOrEqual(cut);
      }
    });
  }

  it('names the command, the offset and how many bytes were missing', async () => {
    const full = buildStream(1, small);
    const offs = commandOffsets(full);
    const writeAt = offs[3]!;
    const e = await readError(bytesOf(full.subarray(0, writeAt + 12)));
    const len = full.readUInt32LE(writeAt);
    expect(e.message).toBe(`unexpected end of stream inside command #4 (write) at byte ${writeAt + 12}: ` +
      `expected ${10 + len - 12} more bytes`);
    expect([e.index, e.commandName, e.offset]).toEqual([4, 'write', writeAt + 12]);
    const h = await readError(bytesOf(full.subarray(0, writeAt + 3)));
    expect(h.message).toBe(`unexpected end of stream inside the header of command #4 at byte ${writeAt + 3}: expected 7 more bytes`);
    const missingEnd = await readError(bytesOf(buildStream(1, small, { end: false })));
    expect(missingEnd.message).toMatch(/stream #0 has no END command \(input ends where command #7 should start\)/);
    const partialHeader = await readError(bytesOf(full.subarray(0, 5)));
    expect(partialHeader.message).toBe('unexpected end of stream inside the header of stream #0 at byte 5: expected 12 more bytes');
  });

  it('1-byte chunks of a truncated stream do not hang and give the same error', async () => {
    const cut = buildStream(2, small).subarray(0, 100);
    const a = await readError(bytesOf(cut));
    const b = await readError(chunksOf(cut, [1]));
    expect(b.message).toBe(a.message);
  });
});

describe('bit flips', () => {
  const full = buildStream(1, small);

  it('every single-bit flip is caught (CRC, header) or still decodes; never another exception', async () => {
    let errors = 0;
    for (let bit = 0; bit < full.length * 8; bit++) {
      const b = Buffer.from(full);
      b[bit >> 3]! ^= 1 << (bit & 7);
      try {
        await readAll(bytesOf(b));
        // Only the header version may flip to another valid version (1 → 3).
        expect(bit >> 3).toBeGreaterThanOrEqual(13);
        expect(bit >> 3).toBeLessThan(17);
      } catch (e) {
        expect(e).toBeInstanceOf(StreamError);
        expectOneLine(e as StreamError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(full.length * 8 - 40);
  });

  it('a flipped body byte is reported as a bad CRC32C with command, name and offset', async () => {
    const b = Buffer.from(full);
    const at = commandOffsets(b)[3]!;
    b[at + 20]! ^= 0x40;
    const e = await readError(bytesOf(b));
    expect(e.message).toBe(`stream corrupt: bad CRC32C in command #4 (write) at byte ${at}`);
  });

  it('every bit flip with the CRC fixed up gives a StreamError or a decoded stream, never another exception', async () => {
    const offs = commandOffsets(full);
    let decoded = 0;
    for (let i = 1; i < offs.length; i++) {
      const start = offs[i - 1]!;
      const end = offs[i]!;
      for (let bit = 0; bit < (end - start) * 8; bit++) {
        if (((bit >> 3) >= 6 && (bit >> 3) < 10)) continue; // the crc field itself is recomputed
        const b = Buffer.from(full);
        b[start + (bit >> 3)]! ^= 1 << (bit & 7);
        if (b.readUInt32LE(start) <= b.length) fixCrc(b, start);
        try {
          await readAll(bytesOf(b));
          decoded++;
        } catch (e) {
          if (!(e instanceof StreamError)) throw e;
          expectOneLine(e);
        }
      }
    }
    // Value bits (path bytes, numbers) legitimately decode to other commands.
    expect(decoded).toBeGreaterThan(0);
  });
});

describe('limits', () => {
  it('a huge len is refused before allocating or reading more', async () => {
    let askedForMore = false;
    async function* hostile() {
      yield Buffer.concat([streamHeader(1), Buffer.from('f0ffffff' + '0f00' + '00000000', 'hex')]);
      askedForMore = true;
      await new Promise(() => { /* a source that never ends: reading on would hang */ });
    }
    const e = await readError(hostile());
    expect(e.message).toBe('command too large: command #1 (write) at byte 17 has a 4294967280-byte body, above the limit of 16777216');
    expect(askedForMore).toBe(false);
  });

  it('maxCommandSize is honoured', async () => {
    const b = buildStream(2, [{ cmd: 'write', path: p('f'), offset: 0, data: Buffer.alloc(5000) }]);
    await expect(readAll(bytesOf(b), { maxCommandSize: 4096 })).rejects.toThrow(/above the limit of 4096/);
    expect(await readAll(bytesOf(b), { maxCommandSize: 8192 })).toHaveLength(2);
  });
});

describe('unknown commands and attributes', () => {
  const after: Command = { cmd: 'mkdir', path: p('d'), ino: 300 };

  for (const num of [27, 0, 65535]) {
    it(`command ${num} stops the reader with its number; skipUnknownCommands skips it`, async () => {
      const b = buildStream(2, [raw(num, [tlv(Attr.PATH, 'x')]), after]);
      const e = await readError(bytesOf(b));
      expect(e.message).toBe(`unknown command ${num} (#1) at byte 17: the stream comes from a newer sender or is ` +
        'corrupt; refusing to skip it (data could be lost)');
      expect(e.commandName).toBe(`unknown command ${num}`);
      const recs = await readAll(bytesOf(b), { skipUnknownCommands: true });
      expect(recs.map((r) => [r.index, r.command.cmd])).toEqual([[2, 'mkdir'], [3, 'end']]);
    });
  }

  it('a corrupt unknown command is still a CRC error, not skipped', async () => {
    const b = buildStream(2, [raw(40, [], { badCrc: true }), after]);
    await expect(readAll(bytesOf(b), { skipUnknownCommands: true })).rejects.toThrow(/bad CRC32C in command #1 \(unknown command 40\)/);
  });

  for (const t of [0, 36, 0xffff]) {
    it(`attribute type ${t} is invalid`, async () => {
      const b = buildStream(1, [raw(Cmd.MKDIR, [tlv(Attr.PATH, 'd'), tlv(Attr.INO, u64le(1)), tlv(t, 'zz')])]);
      const e = await readError(bytesOf(b));
      expect(e.message).toBe(`stream corrupt: invalid attribute type ${t} in command #1 (mkdir) at byte ${17 + 10 + 5 + 12}`);
    });
  }
});

describe('stream headers', () => {
  const body = buildStream(1, small).subarray(17);

  it('empty input', async () => {
    expect((await readError(bytesOf(Buffer.alloc(0)))).message).toBe('empty stream: no stream header at byte 0');
    expect((await readError((async function* () { /* nothing */ })())).message).toMatch(/^empty stream/);
  });

  it('bad magic, also in input shorter than a header', async () => {
    expect((await readError(bytesOf(p('hello')))).message).toBe('not a btrfs send stream: bad magic at byte 0');
    const e = await readError(bytesOf(Buffer.concat([streamHeader(1, p('btrfs-strean\0')), body])));
    expect(e.message).toBe('not a btrfs send stream: bad magic at byte 0');
  });

  it('version 0 and 4 are refused, and maxVersion lowers the bound', async () => {
    const v0 = await readError(bytesOf(Buffer.concat([streamHeader(0), body])));
    expect(v0.message).toMatch(/^unsupported stream version 0 at byte 13: versions start at 1/);
    const v4 = await readError(bytesOf(Buffer.concat([streamHeader(4), body])));
    expect(v4.message).toBe('unsupported stream version 4 at byte 13: this reader handles versions 1 to 3');
    const v3 = buildStream(3, small);
    expect((await readError(bytesOf(v3), { maxVersion: 2 })).message).toMatch(/version 3 .* versions 1 to 2/);
    expect(await readAll(bytesOf(v3))).toHaveLength(small.length + 1);
  });

  it('garbage after END: a partial header or bad magic', async () => {
    const one = buildStream(1, small);
    const e1 = await readError(bytesOf(Buffer.concat([one, p('junk')])));
    expect(e1.message).toBe(`not a btrfs send stream: bad magic after the END of stream #0 at byte ${one.length}`);
    const e3 = await readError(bytesOf(Buffer.concat([one, p('btrfs-str')])));
    expect(e3.message).toBe(`unexpected end of stream inside the header of stream #1 at byte ${one.length + 9}: expected 8 more bytes`);
    const e2 = await readError(bytesOf(Buffer.concat([one, Buffer.alloc(40, 0x41)])));
    expect(e2.message).toBe(`not a btrfs send stream: bad magic after the END of stream #0 at byte ${one.length}`);
    // …which stopAtFirstEnd never reads.
    expect(await readAll(bytesOf(Buffer.concat([one, Buffer.alloc(40, 0x41)])), { stopAtFirstEnd: true })).toHaveLength(7);
  });
});

describe('attributes', () => {
  const mkfile = (...attrs: ReturnType<typeof tlv>[]) => buildStream(1, [raw(Cmd.MKFILE, attrs)]);

  it('NUL in a path is refused', async () => {
    const e = await readError(bytesOf(mkfile(tlv(Attr.PATH, 'a\0b'), tlv(Attr.INO, u64le(1)))));
    expect(e.message).toBe('stream corrupt: attribute PATH contains a NUL byte in command #1 (mkfile) at byte 27');
  });

  it('NUL is allowed in binary values (xattr data)', async () => {
    const c: Command = { cmd: 'set_xattr', path: p('f'), name: p('user.a'), value: Buffer.from([0, 0]) };
    expect((await readAll(bytesOf(buildStream(1, [c]))))[0]!.command).toEqual(c);
  });

  it('a fixed-size attribute with the wrong size is refused', async () => {
    const e = await readError(bytesOf(mkfile(tlv(Attr.PATH, 'a'), tlv(Attr.INO, u32le(1)))));
    expect(e.message).toBe('stream corrupt: attribute INO has 4 bytes instead of 8 in command #1 (mkfile) at byte 32');
    const u = await readError(bytesOf(buildStream(1, [raw(Cmd.SUBVOL, [
      tlv(Attr.PATH, 's'), tlv(Attr.UUID, Buffer.alloc(15)), tlv(Attr.CTRANSID, u64le(1))])])));
    expect(u.message).toMatch(/attribute UUID has 15 bytes instead of 16/);
  });

  it('a missing required attribute is named', async () => {
    const e = await readError(bytesOf(mkfile(tlv(Attr.PATH, 'a'))));
    expect(e.message).toBe('stream corrupt: missing attribute INO in command #1 (mkfile) at byte 17');
  });

  it('a duplicated attribute is refused', async () => {
    const e = await readError(bytesOf(mkfile(tlv(Attr.PATH, 'a'), tlv(Attr.PATH, 'b'), tlv(Attr.INO, u64le(1)))));
    expect(e.message).toMatch(/duplicate attribute PATH in command #1 \(mkfile\)/);
  });

  it('an attribute running past the body is refused', async () => {
    const e = await readError(bytesOf(mkfile(tlv(Attr.PATH, 'a'), tlv(Attr.INO, u64le(1), { len: 9 }))));
    expect(e.message).toMatch(/attribute INO \(9 bytes\) runs past the end of the command body in command #1 \(mkfile\) at byte 32/);
    const half = await readError(bytesOf(buildStream(1, [raw(Cmd.MKFILE, [tlv(Attr.PATH, 'a')], { extra: Buffer.from([3]) })])));
    expect(half.message).toMatch(/attribute header runs past the end of the command body/);
  });

  it('u64 values beyond 2^53 are refused clearly', async () => {
    const e = await readError(bytesOf(mkfile(tlv(Attr.PATH, 'a'), tlv(Attr.INO, u64le(2n ** 53n)))));
    expect(e.message).toBe('unsupported value: attribute INO value 9007199254740992 is beyond 2^53 (not representable) ' +
      'in command #1 (mkfile) at byte 32');
    const m = await readError(bytesOf(buildStream(1, [raw(Cmd.TRUNCATE, [tlv(Attr.PATH, 'a'), tlv(Attr.SIZE, u64le(-1n))])])));
    expect(m.message).toMatch(/SIZE value 18446744073709551615 is beyond 2\^53/);
  });

  it('the DATA rule: v1 needs a length field, v2 has none (decided by the stream version)', async () => {
    const attrs = [tlv(Attr.PATH, 'f'), tlv(Attr.FILE_OFFSET, u64le(0))];
    // v2 framing in a v1 stream: "ab" is read as a length and runs past the body.
    const v2InV1 = buildStream(1, [raw(Cmd.WRITE, [...attrs, tlv(Attr.DATA, 'abcd', { noLength: true })])]);
    expect((await readError(bytesOf(v2InV1))).message).toMatch(/attribute DATA \(25185 bytes\) runs past the end/);
    // v1 framing in a v2 stream: the length field becomes part of the data.
    const v1InV2 = buildStream(2, [raw(Cmd.WRITE, [...attrs, tlv(Attr.DATA, 'abcd')])]);
    const recs = await readAll(bytesOf(v1InV2));
    expect(recs[0]!.command).toMatchObject({ cmd: 'write', data: Buffer.from('\x04\x00abcd', 'latin1') });
    // DATA before other attributes in v2 swallows them, so PATH is then missing.
    const early = buildStream(2, [raw(Cmd.WRITE, [tlv(Attr.DATA, 'x', { noLength: true }), ...attrs])]);
    expect((await readError(bytesOf(early))).message).toMatch(/missing attribute PATH in command #1 \(write\)/);
  });

  it('END with a bad CRC is caught too', async () => {
    const end = encodeCommand({ cmd: 'end' }, 1);
    end[9] ^= 1;
    const b = Buffer.concat([streamHeader(1), end]);
    expect((await readError(bytesOf(b))).message).toBe('stream corrupt: bad CRC32C in command #1 (end) at byte 17');
  });
});

describe('consumer behaviour', () => {
  it('an early break closes cleanly and the generator can be abandoned', async () => {
    const gen = readStream(bytesOf(buildStream(1, small)));
    const first = await gen.next();
    expect(first.value?.command.cmd).toBe('subvol');
    await gen.return(undefined);
    expect((await gen.next()).done).toBe(true);
  });
});
