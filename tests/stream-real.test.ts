// Real kernel streams: parse every stream `btrfs send` makes in each mode (all CRCs checked), and
// re-encode every record: the bytes must equal the kernel's, byte for byte.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, symlinkSync, linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { readStream, type StreamRecord } from '../src/stream/reader.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';
import type { Command } from '../src/stream/commands.js';

const ok = requireBtrfs();
const haveSetfattr = ok && spawnSync('which', ['setfattr']).status === 0;

interface Parsed { records: StreamRecord[]; reencoded: Buffer }

async function parse(file: string): Promise<Parsed> {
  const records: StreamRecord[] = [];
  const parts: Buffer[] = [];
  let stream = -1;
  for await (const r of readStream(file)) {
    if (r.stream !== stream) {
      stream = r.stream;
      parts.push(encodeStreamHeader(r.version));
    }
    parts.push(encodeCommand(r.command, r.version));
    records.push(r);
  }
  return { records, reencoded: Buffer.concat(parts) };
}

const count = (recs: StreamRecord[], cmd: Command['cmd']) => recs.filter((r) => r.command.cmd === cmd).length;

function populate(root: string): void {
  const sv = join(root, 'sv');
  run('btrfs', ['subvolume', 'create', sv]);
  writeFileSync(join(sv, 'small'), 'hello\n');
  writeFileSync(join(sv, 'random'), randomBytes(1024 * 1024));
  writeFileSync(join(sv, 'compressible'), Buffer.alloc(300 * 1024, 'compress me please '));
  run('cp', ['--reflink=always', join(sv, 'random'), join(sv, 'reflink')]);
  linkSync(join(sv, 'small'), join(sv, 'hardlink'));
  symlinkSync('small', join(sv, 'symlink'));
  mkdirSync(join(sv, 'dir'));
  writeFileSync(join(sv, 'dir', 'n\xe9\x01me'), 'odd name');
  run('truncate', ['-s', '10M', join(sv, 'sparse')]);
  run('mkfifo', [join(sv, 'fifo')]);
  if (haveSetfattr) run('setfattr', ['-n', 'user.test', '-v', 'value', join(sv, 'small')]);
  run('btrfs', ['subvolume', 'snapshot', '-r', sv, join(root, 'snap1')]);
  // Changes for an incremental send.
  writeFileSync(join(sv, 'small'), 'hello again\n', { flag: 'a' });
  rmSync(join(sv, 'hardlink'));
  run('mv', [join(sv, 'compressible'), join(sv, 'dir', 'moved')]);
  writeFileSync(join(sv, 'new'), randomBytes(200 * 1024));
  run('btrfs', ['subvolume', 'snapshot', '-r', sv, join(root, 'snap2')]);
  // An unrelated subvolume for multi-subvolume sends.
  const other = join(root, 'other-rw');
  run('btrfs', ['subvolume', 'create', other]);
  writeFileSync(join(other, 'f'), randomBytes(70000));
  run('btrfs', ['subvolume', 'snapshot', '-r', other, join(root, 'other')]);
  run('sync', []);
}

describe.skipIf(!ok)('real kernel streams', () => {
  const filesystems: Record<string, Btrfs> = {};
  let out: string;

  beforeAll(() => {
    out = mkdtempSync('/dev/shm/btrfs-ts-streams-');
    for (const comp of ['zstd', 'lzo']) {
      const fs = makeBtrfs({ sizeMiB: 256, mountOptions: `compress-force=${comp}` });
      filesystems[comp] = fs;
      populate(fs.mnt);
    }
  }, 60_000);

  afterAll(() => {
    for (const fs of Object.values(filesystems)) fs.cleanup();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  function send(comp: string, name: string, args: string[], snaps: string[]): string {
    const file = join(out, `${comp}-${name}.stream`);
    const mnt = filesystems[comp]!.mnt;
    run('btrfs', ['send', '-q', '-f', file, ...args.map((a) => a.replace('@', mnt + '/')), ...snaps.map((s) => join(mnt, s))]);
    return file;
  }

  for (const comp of ['zstd', 'lzo']) {
    describe(`compress-force=${comp}`, () => {
      const modes: [string, string[], string[], (recs: StreamRecord[]) => void][] = [
        ['v1', [], ['snap1'], (recs) => {
          expect(recs.every((r) => r.version === 1)).toBe(true);
          expect(count(recs, 'write')).toBeGreaterThan(20);
          expect(Math.max(...recs.map((r) => r.command.cmd === 'write' ? r.command.data.length : 0))).toBe(49152);
          expect(count(recs, 'clone')).toBeGreaterThan(0);
          expect(count(recs, 'link')).toBe(1);
          expect(count(recs, 'symlink')).toBe(1);
          expect(count(recs, 'mkfifo')).toBe(1);
          if (haveSetfattr) expect(count(recs, 'set_xattr')).toBe(1);
        }],
        ['v2', ['--proto', '2'], ['snap1'], (recs) => {
          expect(recs.every((r) => r.version === 2)).toBe(true);
          expect(Math.max(...recs.map((r) => r.command.cmd === 'write' ? r.command.data.length : 0))).toBe(131072);
          expect(recs.some((r) => r.command.cmd === 'utimes' && r.command.otime !== undefined)).toBe(true);
        }],
        ['compressed', ['--compressed-data'], ['snap1'], (recs) => {
          const ew = recs.map((r) => r.command).filter((c): c is Extract<Command, { cmd: 'encoded_write' }> => c.cmd === 'encoded_write');
          expect(ew.length).toBeGreaterThan(0);
          for (const c of ew) {
            if (comp === 'zstd') expect(c.compression).toBe(2);
            else expect(c.compression).toBeGreaterThanOrEqual(3);
            expect(c.data.length).toBeLessThanOrEqual(128 * 1024);
          }
        }],
        ['no-data', ['--no-data'], ['snap1'], (recs) => {
          expect(count(recs, 'write')).toBe(0);
          expect(count(recs, 'update_extent')).toBeGreaterThan(0);
        }],
        ['incremental-v1', ['-p', '@snap1'], ['snap2'], (recs) => {
          expect(recs[0]!.command.cmd).toBe('snapshot');
          expect(count(recs, 'rename')).toBeGreaterThan(0);
          expect(count(recs, 'unlink')).toBeGreaterThanOrEqual(1);
        }],
        ['incremental-v2-compressed', ['--compressed-data', '-p', '@snap1'], ['snap2'], (recs) => {
          expect(recs[0]!.command.cmd).toBe('snapshot');
          expect(recs.every((r) => r.version === 2)).toBe(true);
        }],
        ['two-subvols', [], ['snap1', 'other'], (recs) => {
          expect(recs.map((r) => r.stream).at(-1)).toBe(1);
          expect(count(recs, 'end')).toBe(2);
          expect(count(recs, 'subvol')).toBe(2);
        }],
        ['two-subvols-e', ['-e'], ['snap1', 'other'], (recs) => {
          expect(recs.every((r) => r.stream === 0)).toBe(true);
          expect(count(recs, 'end')).toBe(1);
          expect(count(recs, 'subvol')).toBe(2);
        }],
        ['two-subvols-v2-compressed', ['--compressed-data'], ['snap2', 'other'], (recs) => {
          expect(count(recs, 'end')).toBe(2);
          expect(recs.every((r) => r.version === 2)).toBe(true);
        }],
      ];
      for (const [name, args, snaps, check] of modes) {
        it(`${name}: parses with every CRC valid and re-encodes byte for byte`, async () => {
          const file = send(comp, name, args, snaps);
          const original = readFileSync(file);
          const { records, reencoded } = await parse(file);
          expect(records.at(-1)!.command.cmd).toBe('end');
          check(records);
          expect(reencoded.length).toBe(original.length);
          expect(reencoded.equals(original)).toBe(true);
          // stopAtFirstEnd reads exactly the first stream.
          const first: StreamRecord[] = [];
          for await (const r of readStream(file, { stopAtFirstEnd: true })) first.push(r);
          expect(first.length).toBe(records.findIndex((r) => r.command.cmd === 'end') + 1);
        });
      }
    });
  }
});
