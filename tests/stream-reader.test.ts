import { describe, expect, it } from 'vitest';
import { PassThrough, Readable } from 'node:stream';
import { mkdtempSync, openSync, closeSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStream } from '../src/stream/reader.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';
import { streamCrc32c } from '../src/stream/crc32c.js';
import { Attr, Cmd } from '../src/stream/protocol.js';
import type { Command } from '../src/stream/commands.js';
import { buildStream, chunksOf, raw, readAll, tlv, u64le, u32le } from './helpers/stream-builder.js';
import { comparable, sampleCommands } from './helpers/stream-samples.js';

const SUBVOL_EXAMPLE = Buffer.from(
  '29000000' + '0100' + 'fab73950' +
  '0f000500' + Buffer.from('snap1').toString('hex') +
  '01001000' + '405c4a7a5507354ca12117e2f613571b' +
  '02000800' + '0800000000000000', 'hex');
const SUBVOL_CMD: Command = {
  cmd: 'subvol', path: Buffer.from('snap1'), uuid: Buffer.from('405c4a7a5507354ca12117e2f613571b', 'hex'), ctransid: 8,
};

describe('byte vectors from protocol.md', () => {
  it('raw CRC32C of "123456789" is 0x58E3FA20', () => {
    expect(streamCrc32c(Buffer.from('123456789'))).toBe(0x58e3fa20);
  });

  it('END is 00 00 00 00 15 00 50 6c c9 9d in every version', () => {
    for (const v of [1, 2, 3]) expect(encodeCommand({ cmd: 'end' }, v).toString('hex')).toBe('000000001500506cc99d');
  });

  it('the v1 stream header is magic + 01 00 00 00', () => {
    expect(encodeStreamHeader(1).toString('hex')).toBe('6274726673 2d73747265616d 00 01000000'.replace(/ /g, ''));
  });

  it('encodes the real SUBVOL "snap1" command exactly (crc 0x5039b7fa)', () => {
    expect(encodeCommand(SUBVOL_CMD, 1).equals(SUBVOL_EXAMPLE)).toBe(true);
  });

  it('decodes the real SUBVOL command at offset 0x11', async () => {
    const bytes = Buffer.concat([encodeStreamHeader(1), SUBVOL_EXAMPLE, encodeCommand({ cmd: 'end' }, 1)]);
    const recs = await readAll(Readable.from([bytes]));
    expect(recs).toHaveLength(2);
    expect(recs[0]).toEqual({ command: SUBVOL_CMD, index: 1, offset: 0x11, stream: 0, version: 1 });
    expect(recs[1]).toEqual({ command: { cmd: 'end' }, index: 2, offset: 0x11 + 51, stream: 0, version: 1 });
  });
});

describe('every command in every version', () => {
  for (const version of [1, 2, 3]) {
    it(`v${version}: writer → reader gives back each command, with index and offsets`, async () => {
      const cmds = sampleCommands(version);
      const bytes = buildStream(version, cmds);
      const recs = await readAll(Readable.from([bytes]));
      expect(comparable(recs.map((r) => r.command))).toEqual(comparable(cmds));
      let off = 17;
      recs.forEach((r, i) => {
        expect(r.index).toBe(i + 1);
        expect(r.offset).toBe(off);
        expect(r.version).toBe(version);
        expect(r.stream).toBe(0);
        off += 10 + bytes.readUInt32LE(off);
      });
      expect(off).toBe(bytes.length);
      // …and re-encoding reproduces the bytes.
      const again = Buffer.concat([encodeStreamHeader(version), ...recs.map((r) => encodeCommand(r.command, version))]);
      expect(again.equals(bytes)).toBe(true);
    });
  }

  it('keeps optional attributes absent (utimes without OTIME, encoded_write without COMPRESSION/ENCRYPTION)', async () => {
    const cmds = sampleCommands(2).filter((c) => c.cmd === 'utimes' || c.cmd === 'encoded_write');
    const recs = await readAll(Readable.from([buildStream(2, cmds)]));
    const utimes = recs.filter((r) => r.command.cmd === 'utimes').map((r) => r.command);
    expect(utimes.map((c) => 'otime' in c && c.otime !== undefined)).toEqual([false, true]);
    const ew = recs.filter((r) => r.command.cmd === 'encoded_write').map((r) => r.command as Extract<Command, { cmd: 'encoded_write' }>);
    expect(ew.map((c) => [c.compression, c.encryption])).toEqual([[2, 0], [undefined, undefined], [1, undefined]]);
  });

  it('v2 DATA has no length field and runs to the end of the body; v1 DATA has one', () => {
    const w: Command = { cmd: 'write', path: Buffer.from('f'), offset: 0, data: Buffer.from('abc') };
    const v1 = encodeCommand(w, 1);
    const v2 = encodeCommand(w, 2);
    // PATH(4+1) + FILE_OFFSET(4+8) + DATA: v1 4+3, v2 2+3
    expect(v1.readUInt32LE(0)).toBe(5 + 12 + 7);
    expect(v2.readUInt32LE(0)).toBe(5 + 12 + 5);
    expect(v2.subarray(10 + 17).toString('hex')).toBe('1300' + '616263');
    expect(v1.subarray(10 + 17).toString('hex')).toBe('13000300' + '616263');
  });

  it('XATTR_DATA keeps its length field in v2 (only type 19 is special)', async () => {
    const c: Command = { cmd: 'set_xattr', path: Buffer.from('f'), name: Buffer.from('user.a'), value: Buffer.from('v') };
    const b = encodeCommand(c, 2);
    expect(b.subarray(b.length - 5).toString('hex')).toBe('0e000100' + '76');
    const recs = await readAll(Readable.from([buildStream(2, [c])]));
    expect(recs[0]!.command).toEqual(c);
  });

  it('accepts a v2 command in a v1 stream (as progs does), with v1 DATA framing', async () => {
    const ew = raw(Cmd.ENCODED_WRITE, [
      tlv(Attr.PATH, 'f'), tlv(Attr.FILE_OFFSET, u64le(0)), tlv(Attr.UNENCODED_FILE_LEN, u64le(4096)),
      tlv(Attr.UNENCODED_LEN, u64le(4096)), tlv(Attr.UNENCODED_OFFSET, u64le(0)), tlv(Attr.COMPRESSION, u32le(2)),
      tlv(Attr.DATA, 'zz'),
    ]);
    const recs = await readAll(Readable.from([buildStream(1, [ew])]));
    expect(recs[0]!.command).toMatchObject({ cmd: 'encoded_write', compression: 2, data: Buffer.from('zz') });
  });

  it('accepts attributes in any order and ignores valid attributes a command does not use (as progs does)', async () => {
    const c = raw(Cmd.MKFILE, [tlv(Attr.INO, u64le(300)), tlv(Attr.MODE, u64le(0o644)), tlv(Attr.PATH, 'x')]);
    const recs = await readAll(Readable.from([buildStream(2, [c])]));
    expect(recs[0]!.command).toEqual({ cmd: 'mkfile', path: Buffer.from('x'), ino: 300 });
  });

  it('reads an END with no body and a SUBVOL with an empty path', async () => {
    const c: Command = { cmd: 'chmod', path: Buffer.alloc(0), mode: 0o755 };
    const recs = await readAll(Readable.from([buildStream(1, [c])]));
    expect(recs.map((r) => r.command)).toEqual([c, { cmd: 'end' }]);
  });

  it('reads negative and large times, u64 up to 2^53-1', async () => {
    const c: Command = {
      cmd: 'utimes', path: Buffer.from('t'), atime: { sec: -2208988800, nsec: 5 }, mtime: { sec: 2 ** 52, nsec: 0 },
      ctime: { sec: -1, nsec: 999999999 },
    };
    const t: Command = { cmd: 'truncate', path: Buffer.from('t'), size: Number.MAX_SAFE_INTEGER };
    const recs = await readAll(Readable.from([buildStream(1, [c, t])]));
    expect(recs[0]!.command).toEqual(c);
    expect(recs[1]!.command).toEqual(t);
  });
});

describe('concatenated streams', () => {
  const a = buildStream(1, [SUBVOL_CMD, { cmd: 'mkfile', path: Buffer.from('a'), ino: 257 }]);
  const b = buildStream(2, [{ ...SUBVOL_CMD, path: Buffer.from('snap2') }, { cmd: 'rmdir', path: Buffer.from('d') }]);
  const both = Buffer.concat([a, b]);

  it('reads every stream, numbering streams and commands across the input', async () => {
    const recs = await readAll(Readable.from([both]));
    expect(recs.map((r) => [r.command.cmd, r.stream, r.version, r.index])).toEqual([
      ['subvol', 0, 1, 1], ['mkfile', 0, 1, 2], ['end', 0, 1, 3],
      ['subvol', 1, 2, 4], ['rmdir', 1, 2, 5], ['end', 1, 2, 6],
    ]);
    expect(recs[3]!.offset).toBe(a.length + 17);
  });

  it('stopAtFirstEnd stops after the first END and leaves the rest unread in a Readable', async () => {
    const src = new PassThrough();
    src.end(both);
    const first = await readAll(src, { stopAtFirstEnd: true });
    expect(first.map((r) => r.command.cmd)).toEqual(['subvol', 'mkfile', 'end']);
    // The bytes after the END are handed back to the Readable: a second reader sees the second stream.
    const second = await readAll(src, { stopAtFirstEnd: true });
    expect(second.map((r) => [r.command.cmd, r.version])).toEqual([['subvol', 2], ['rmdir', 2], ['end', 2]]);
  });

  it('stopAtFirstEnd leaves a regular-file fd just past the END', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-stream-'));
    try {
      const file = join(dir, 'two.bin');
      writeFileSync(file, both);
      const fd = openSync(file, 'r');
      try {
        expect((await readAll(fd, { stopAtFirstEnd: true })).map((r) => r.stream)).toEqual([0, 0, 0]);
        const second = await readAll(fd, { stopAtFirstEnd: true });
        expect(second.map((r) => [r.command.cmd, r.version, r.offset])).toEqual([['subvol', 2, 17], ['rmdir', 2, 68], ['end', 2, 83]]);
        expect(readSync(fd, Buffer.alloc(10))).toBe(0);
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stopAtFirstEnd does not read past the END of an iterable', async () => {
    let pulledAfterEnd = false;
    async function* gen() {
      yield a;
      pulledAfterEnd = true;
      yield Buffer.from('garbage that would be an error');
    }
    const recs = await readAll(gen(), { stopAtFirstEnd: true });
    expect(recs).toHaveLength(3);
    expect(pulledAfterEnd).toBe(false);
  });
});

describe('sources', () => {
  const bytes = buildStream(2, sampleCommands(2));
  const expected = sampleCommands(2);

  it('reads a file path, an fd, a Readable and an async iterable of Uint8Array alike', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-stream-'));
    try {
      const file = join(dir, 's.bin');
      writeFileSync(file, bytes);
      const fd = openSync(file, 'r');
      try {
        for (const src of [file, fd, Readable.from([bytes]), chunksOf(bytes, [7, 1000]),
          (async function* () { yield new Uint8Array(bytes); })()]) {
          const recs = await readAll(src);
          expect(comparable(recs.map((r) => r.command))).toEqual(comparable(expected));
        }
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('yielded buffers stay valid after the iterator moves on (fd source larger than one read buffer)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-stream-'));
    try {
      // 6 MiB of 48 KiB writes with distinct contents, read through the fd path's 1 MiB buffers.
      const writes: Command[] = [];
      for (let i = 0; i < 128; i++) {
        writes.push({ cmd: 'write', path: Buffer.from(`f${i}`), offset: i * 49152, data: Buffer.alloc(49152, i + 1) });
      }
      const file = join(dir, 'big.bin');
      writeFileSync(file, buildStream(1, writes));
      const recs = await readAll(file);
      expect(comparable(recs.slice(0, -1).map((r) => r.command))).toEqual(comparable(writes));
      // With reuseBuffers the fd buffer is recycled, so kept commands change: the check above can fail.
      const reused = await readAll(file, { reuseBuffers: true });
      expect(reused.map((r) => r.index)).toEqual(recs.map((r) => r.index));
      expect(comparable(reused.slice(0, -1).map((r) => r.command))).not.toEqual(comparable(writes));
      const chunked = await readAll(chunksOf(buildStream(1, writes), [65536, 3, 100000]));
      expect(comparable(chunked.slice(0, -1).map((r) => r.command))).toEqual(comparable(writes));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a Readable in string mode with a clear error', async () => {
    const r = Readable.from(['btrfs-stream'], { objectMode: true });
    await expect(readAll(r)).rejects.toThrow(/must yield bytes/);
  });

  it('rejects something that is not a byte source', async () => {
    await expect(readStream({} as never).next()).rejects.toThrow(/must be a file descriptor/);
  });
});
