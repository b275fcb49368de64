import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Readable, Writable } from 'node:stream';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCommand, encodeStreamHeader, splitWrite, StreamWriter } from '../src/stream/writer.js';
import { streamCrc32c } from '../src/stream/crc32c.js';
import { MAX_WRITE_V1, MAX_WRITE_V2 } from '../src/stream/protocol.js';
import type { Command, WriteCommand } from '../src/stream/commands.js';
import { buildStream, readAll } from './helpers/stream-builder.js';
import { arbCommand, comparable, sampleCommands } from './helpers/stream-samples.js';

const p = (s: string) => Buffer.from(s);

describe('encodeCommand', () => {
  it('stores a CRC computed over the header with a zero crc field plus the body', () => {
    for (const c of sampleCommands(3)) {
      const b = encodeCommand(c, 3);
      const stored = b.readUInt32LE(6);
      const copy = Buffer.from(b);
      copy.writeUInt32LE(0, 6);
      expect(streamCrc32c(copy)).toBe(stored);
      expect(b.readUInt32LE(0)).toBe(b.length - 10);
    }
  });

  it('emits attributes in kernel order (CLONE starts with FILE_OFFSET, CLONE_LEN, PATH)', () => {
    const c: Command = {
      cmd: 'clone', path: p('d'), offset: 1, len: 2, cloneUuid: Buffer.alloc(16), cloneCtransid: 3, clonePath: p('s'),
      cloneOffset: 4,
    };
    const b = encodeCommand(c, 1);
    const types: number[] = [];
    for (let q = 10; q < b.length; q += 4 + b.readUInt16LE(q + 2)) types.push(b.readUInt16LE(q));
    expect(types).toEqual([18, 24, 15, 20, 21, 22, 23]);
  });

  it('refuses commands a version cannot carry', () => {
    const ew: Command = {
      cmd: 'encoded_write', path: p('f'), offset: 0, unencodedFileLen: 1, unencodedLen: 1, unencodedOffset: 0, data: p('x'),
    };
    expect(() => encodeCommand(ew, 1)).toThrow(/encoded_write needs stream version 2/);
    expect(() => encodeCommand({ cmd: 'fallocate', path: p('f'), mode: 3, offset: 0, size: 1 }, 1)).toThrow(/version 2/);
    expect(() => encodeCommand({ cmd: 'fileattr', path: p('f'), flags: 0 }, 1)).toThrow(/version 2/);
    const ev: Command = { cmd: 'enable_verity', path: p('f'), algorithm: 1, blockSize: 4096, salt: p(''), sig: p('') };
    expect(() => encodeCommand(ev, 2)).toThrow(/enable_verity needs stream version 3/);
    expect(encodeCommand(ev, 3).readUInt16LE(4)).toBe(26);
    expect(() => encodeCommand({ cmd: 'end' }, 4)).toThrow(/version 4 is not supported/);
    expect(() => encodeCommand({ cmd: 'end' }, 0)).toThrow(/version 0 is not supported/);
    expect(() => encodeStreamHeader(4)).toThrow(/not supported/);
  });

  it('refuses a v1 DATA above 65535 bytes but writes it in v2 (implicit length)', () => {
    const w: WriteCommand = { cmd: 'write', path: p('f'), offset: 0, data: Buffer.alloc(65536) };
    expect(() => encodeCommand(w, 1)).toThrow(/DATA has 65536 bytes.*splitWrite/);
    expect(encodeCommand({ ...w, data: Buffer.alloc(65535) }, 1).length).toBe(10 + 5 + 12 + 4 + 65535);
    expect(encodeCommand({ ...w, data: Buffer.alloc(200000) }, 2).length).toBe(10 + 5 + 12 + 2 + 200000);
  });

  it('refuses any other attribute value above 65535 bytes in every version', () => {
    const x: Command = { cmd: 'set_xattr', path: p('f'), name: p('user.big'), value: Buffer.alloc(65536) };
    for (const v of [1, 2, 3]) expect(() => encodeCommand(x, v)).toThrow(/XATTR_DATA has 65536 bytes/);
    const long: Command = { cmd: 'unlink', path: Buffer.alloc(70000, 0x61) };
    expect(() => encodeCommand(long, 2)).toThrow(/PATH has 70000 bytes/);
  });

  it('refuses values the wire cannot represent', () => {
    expect(() => encodeCommand({ cmd: 'unlink', path: p('a\0b') }, 1)).toThrow(/NUL/);
    expect(() => encodeCommand({ cmd: 'truncate', path: p('f'), size: -1 }, 1)).toThrow(/SIZE/);
    expect(() => encodeCommand({ cmd: 'truncate', path: p('f'), size: 2 ** 53 }, 1)).toThrow(/safe integer/);
    expect(() => encodeCommand({ cmd: 'truncate', path: p('f'), size: 1.5 }, 1)).toThrow(/SIZE/);
    expect(() => encodeCommand({ cmd: 'fallocate', path: p('f'), mode: 2 ** 32, offset: 0, size: 0 }, 2)).toThrow(/u32/);
    expect(() => encodeCommand({ cmd: 'subvol', path: p('s'), uuid: Buffer.alloc(15), ctransid: 1 }, 1)).toThrow(/16 bytes/);
    expect(() => encodeCommand({ cmd: 'mkfile', path: p('f') } as unknown as Command, 1)).toThrow(/missing ino/);
    expect(() => encodeCommand({ cmd: 'nope' } as unknown as Command, 1)).toThrow(/unknown command/);
  });

  it('writes negative timespec seconds as signed 64-bit', () => {
    const t: Command = {
      cmd: 'utimes', path: p(''), atime: { sec: -1, nsec: 0 }, mtime: { sec: 0, nsec: 0 }, ctime: { sec: 0, nsec: 0 },
    };
    const b = encodeCommand(t, 1);
    expect(b.subarray(10 + 4 + 4, 10 + 8 + 12).toString('hex')).toBe('ffffffffffffffff00000000');
  });
});

describe('splitWrite', () => {
  it('cuts writes into 48 KiB pieces in v1 and 128 KiB pieces from v2, with offsets', () => {
    const data = Buffer.alloc(300000);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const w: WriteCommand = { cmd: 'write', path: p('f'), offset: 1000, data };
    for (const [v, max] of [[1, MAX_WRITE_V1], [2, MAX_WRITE_V2], [3, MAX_WRITE_V2]] as const) {
      const parts = splitWrite(w, v);
      expect(parts.length).toBe(Math.ceil(data.length / max));
      expect(parts.every((q, i) => q.offset === 1000 + i * max && q.data.length <= max)).toBe(true);
      expect(Buffer.concat(parts.map((q) => q.data)).equals(data)).toBe(true);
      for (const q of parts) expect(() => encodeCommand(q, v)).not.toThrow();
    }
    expect(splitWrite({ ...w, data: Buffer.alloc(10) }, 1)).toHaveLength(1);
  });
});

describe('round trip (fast-check)', () => {
  for (const version of [1, 2, 3]) {
    it(`v${version}: arbitrary commands → writer → reader → the same commands and bytes`, async () => {
      await fc.assert(fc.asyncProperty(fc.array(arbCommand(version), { maxLength: 12 }), async (cmds) => {
        const bytes = buildStream(version, cmds);
        const recs = await readAll(Readable.from([bytes]));
        expect(comparable(recs.map((r) => r.command))).toEqual(comparable([...cmds, { cmd: 'end' }]));
        const again = Buffer.concat([encodeStreamHeader(version), ...recs.map((r) => encodeCommand(r.command, version))]);
        expect(again.equals(bytes)).toBe(true);
      }), { numRuns: 150 });
    });
  }
});

describe('StreamWriter', () => {
  const cmds = sampleCommands(2);

  it('writes to a slow Writable, waiting for drain, and the reader reads it back', async () => {
    const got: Buffer[] = [];
    let waits = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        got.push(chunk);
        setTimeout(cb, 1);
      },
    });
    slow.on('drain', () => waits++);
    const w = new StreamWriter(slow, 2);
    await w.writeHeader();
    for (const c of cmds) await w.write(c);
    await w.finish();
    expect(waits).toBeGreaterThan(0);
    expect(slow.writableLength).toBe(0);
    const recs = await readAll(Readable.from([Buffer.concat(got)]));
    expect(comparable(recs.map((r) => r.command))).toEqual(comparable(cmds));
  });

  it('splits large WRITEs for the stream version', async () => {
    const got: Buffer[] = [];
    const sink = new Writable({ write(chunk: Buffer, _e, cb) { got.push(chunk); cb(); } });
    const w = new StreamWriter(sink, 1);
    await w.writeHeader();
    await w.write({ cmd: 'write', path: p('f'), offset: 0, data: Buffer.alloc(100000, 1) });
    await w.write({ cmd: 'end' });
    await w.finish();
    const recs = await readAll(Readable.from([Buffer.concat(got)]));
    expect(recs.map((r) => r.command.cmd === 'write' ? [r.command.offset, r.command.data.length] : r.command.cmd))
      .toEqual([[0, 49152], [49152, 49152], [98304, 1696], 'end']);
  });

  it('writes to a file descriptor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-writer-'));
    try {
      const file = join(dir, 'out.bin');
      const fd = openSync(file, 'w');
      const w = new StreamWriter(fd, 2);
      await w.writeHeader();
      for (const c of cmds) await w.write(c);
      await w.finish();
      closeSync(fd);
      expect(readFileSync(file).equals(buildStream(2, cmds))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails clearly when the Writable is destroyed while waiting for drain', async () => {
    const stuck = new Writable({ highWaterMark: 1, write() { /* never calls back */ } });
    const w = new StreamWriter(stuck, 1);
    const pending = w.writeBytes(Buffer.alloc(100));
    stuck.destroy();
    await expect(pending).rejects.toThrow(/closed/);
    await expect(w.writeBytes(Buffer.alloc(1))).rejects.toThrow(/closed/);
  });
});
