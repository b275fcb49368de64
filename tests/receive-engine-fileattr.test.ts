// FILEATTR is recorded per inode and applied at finalization (after all data and metadata, before the
// subvolume turns read-only), even when the file was renamed in between; device nodes are skipped.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { ourReceive } from './helpers/receive-harness.js';

const ok = requireBtrfs();
const B = (s: string): Buffer => Buffer.from(s);
async function* bytes(b: Buffer): AsyncGenerator<Buffer> { yield b; }
const lsattr = (p: string): string => execFileSync('lsattr', ['-d', p], { encoding: 'utf8' }).split(' ')[0]!;

// btrfs inode flag bits (protocol.md §3.12)
const IMMUTABLE = 1 << 6, APPEND = 1 << 7, NODUMP = 1 << 8, NOATIME = 1 << 9;

describe.skipIf(!ok)('FILEATTR', () => {
  let fs: Btrfs;
  beforeAll(() => { fs = makeBtrfs({ sizeMiB: 128 }); });
  afterAll(() => {
    // Immutable/append-only files would block nothing at unmount, but clear them for tidiness.
    try { execFileSync('chattr', ['-R', '-i', '-a', fs.mnt], { stdio: 'ignore' }); } catch { /* read-only subvolumes */ }
    fs?.cleanup();
  });

  it('immutable and append-only are applied last, after writes, renames and utimes', async () => {
    const dest = join(fs.mnt, 'd1');
    mkdirSync(dest);
    const { log } = await ourReceive(bytes(buildStream(2, [
      { cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 },
      { cmd: 'mkfile', path: B('f'), ino: 257 },
      { cmd: 'fileattr', path: B('f'), flags: IMMUTABLE | NODUMP },
      { cmd: 'write', path: B('f'), offset: 0, data: B('written after FILEATTR') },
      { cmd: 'mkdir', path: B('dir'), ino: 258 },
      { cmd: 'rename', path: B('f'), to: B('dir/renamed') },
      { cmd: 'mkfile', path: B('log'), ino: 259 },
      { cmd: 'fileattr', path: B('log'), flags: APPEND },
      { cmd: 'fileattr', path: B('log'), flags: APPEND | NOATIME }, // the last value wins
      { cmd: 'mknod', path: B('null'), ino: 260, rdev: 259, mode: 0o020644 },
      { cmd: 'fileattr', path: B('null'), flags: IMMUTABLE },
      { cmd: 'utimes', path: B('dir/renamed'), atime: { sec: 1, nsec: 2 }, mtime: { sec: 3, nsec: 4 }, ctime: { sec: 0, nsec: 0 } },
    ])), dest);
    const s = join(dest, 's');
    expect(readFileSync(join(s, 'dir', 'renamed'), 'utf8')).toBe('written after FILEATTR');
    expect(lsattr(join(s, 'dir', 'renamed'))).toMatch(/^(?=.*i)(?=.*d)/);
    expect(lsattr(join(s, 'log'))).toMatch(/^(?=.*a)(?=.*A)/);
    expect(log.some((l) => /fileattr s\/null: not a regular file or directory, ignored/.test(l))).toBe(true);
    expect(subvolInfo(s).readonly).toBe(true);
  });
});
