// btrfs ioctl wrappers against a real loop-mounted btrfs, cross-checked with `btrfs subvolume show`.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { openSync, closeSync, writeFileSync, readFileSync, constants as C } from 'node:fs';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import {
  subvolCreate, snapCreateV2, subvolGetFlags, subvolSetFlags, setReceivedSubvol, cloneRange,
  inoLookup, rootIdOf, subvolDelete, treeSearch,
} from '../src/sys/btrfs-ioctl.js';
import { readRootItem, findSubvolByUuid, subvolPathFromTop } from '../src/sys/subvolume.js';
import { SysError } from '../src/sys/libc.js';

const ok = requireBtrfs();

function show(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of run('btrfs', ['subvolume', 'show', path]).toString().split('\n')) {
    const m = /^\s*([A-Za-z ]+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!.trim()] = m[2]!.trim();
  }
  return out;
}
const uuidBytes = (text: string): Buffer => Buffer.from(text.replace(/-/g, ''), 'hex');

describe.skipIf(!ok)('btrfs ioctls on a real filesystem', () => {
  let fs: Btrfs;
  let mntFd: number;
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 128 });
    mntFd = openSync(fs.mnt, C.O_RDONLY | C.O_DIRECTORY);
  });
  afterAll(() => {
    if (mntFd !== undefined) closeSync(mntFd);
    fs?.cleanup();
  });

  it('creates nested subvolumes and resolves ids, uuids and paths like btrfs subvolume show', () => {
    subvolCreate(mntFd, 'a');
    run('mkdir', ['-p', join(fs.mnt, 'a/dir/deeper')]);
    const dirFd = openSync(join(fs.mnt, 'a/dir/deeper'), C.O_RDONLY | C.O_DIRECTORY);
    try { subvolCreate(dirFd, Buffer.from('b')); } finally { closeSync(dirFd); }
    const bPath = join(fs.mnt, 'a/dir/deeper/b');
    const info = show(bPath);
    const bFd = openSync(bPath, C.O_RDONLY | C.O_DIRECTORY);
    try {
      const id = rootIdOf(bFd);
      expect(id).toBe(Number(info['Subvolume ID']));
      expect(rootIdOf(mntFd)).toBe(5);
      expect(subvolPathFromTop(mntFd, id)).toBe('a/dir/deeper/b');
      expect(subvolPathFromTop(mntFd, 5)).toBe('');
      const item = readRootItem(mntFd, id)!;
      expect(item.uuid.equals(uuidBytes(info['UUID']!))).toBe(true);
      expect(item.ctransid).toBeGreaterThan(0);
      expect(item.otransid).toBe(Number(info['Gen at creation']));
      expect(findSubvolByUuid(mntFd, item.uuid, 'uuid')).toBe(id);
      expect(findSubvolByUuid(mntFd, item.uuid, 'received')).toBeUndefined();
      expect(readRootItem(mntFd, 99999)).toBeUndefined();
      // INO_LOOKUP of a directory returns its path with a trailing '/'.
      const aFd = openSync(join(fs.mnt, 'a'), 'r');
      const aId = rootIdOf(aFd);
      closeSync(aFd);
      const deeperIno = Number(run('stat', ['-c', '%i', join(fs.mnt, 'a/dir/deeper')]).toString());
      expect(inoLookup(mntFd, aId, deeperIno).name.toString()).toBe('dir/deeper/');
    } finally { closeSync(bFd); }
  });

  it('snapshots read-only and writable, sets received uuid, toggles read-only', () => {
    subvolCreate(mntFd, 'src');
    writeFileSync(join(fs.mnt, 'src/f'), 'hello');
    const srcFd = openSync(join(fs.mnt, 'src'), C.O_RDONLY | C.O_DIRECTORY);
    try {
      snapCreateV2(mntFd, 'ro-snap', srcFd, true);
      snapCreateV2(mntFd, Buffer.from('rw-snap'), srcFd);
    } finally { closeSync(srcFd); }
    expect(show(join(fs.mnt, 'ro-snap'))['Flags']).toBe('readonly');
    expect(readFileSync(join(fs.mnt, 'rw-snap/f'), 'utf8')).toBe('hello');
    const fd = openSync(join(fs.mnt, 'rw-snap'), C.O_RDONLY | C.O_DIRECTORY);
    try {
      expect(subvolGetFlags(fd) & 2).toBe(0);
      const uuid = uuidBytes('0123456789abcdef0123456789abcdef');
      const rtransid = setReceivedSubvol(fd, uuid, 4242);
      expect(rtransid).toBeGreaterThan(0);
      subvolSetFlags(fd, subvolGetFlags(fd) | 2);
      expect(subvolGetFlags(fd) & 2).toBe(2);
      const info = show(join(fs.mnt, 'rw-snap'));
      expect(info['Received UUID']).toBe('01234567-89ab-cdef-0123-456789abcdef');
      expect(info['Send transid']).toBe('4242');
      const id = rootIdOf(fd);
      expect(findSubvolByUuid(mntFd, uuid, 'received')).toBe(id);
      const item = readRootItem(mntFd, id)!;
      expect(item.receivedUuid.equals(uuid)).toBe(true);
      expect(item.stransid).toBe(4242);
      expect(item.rtransid).toBe(rtransid);
      expect(item.flags & 1).toBe(1);
      // Writable again, then deletable.
      subvolSetFlags(fd, subvolGetFlags(fd) & ~2);
    } finally { closeSync(fd); }
    subvolDelete(mntFd, 'rw-snap');
    expect(() => show(join(fs.mnt, 'rw-snap'))).toThrow();
  });

  it('errors name the ioctl, the path and errno', () => {
    let err: unknown;
    try { subvolCreate(mntFd, 'x/y'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SysError);
    expect((err as SysError).message).toMatch(/BTRFS_IOC_SUBVOL_CREATE x\/y failed: .*EINVAL/);
    expect(() => subvolCreate(mntFd, 'src')).toThrow(/EEXIST/);
  });

  it('clones a range between files', () => {
    const a = join(fs.mnt, 'src/clone-a');
    const b = join(fs.mnt, 'src/clone-b');
    const data = Buffer.alloc(3 * 4096);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    writeFileSync(a, data);
    writeFileSync(b, Buffer.alloc(4096, 1));
    const sfd = openSync(a, 'r');
    const dfd = openSync(b, 'r+');
    try { cloneRange(dfd, sfd, 4096, 8192, 4096); } finally { closeSync(sfd); closeSync(dfd); }
    const got = readFileSync(b);
    expect(got.length).toBe(12288);
    expect(got.subarray(4096).equals(data.subarray(4096))).toBe(true);
    expect(got.subarray(0, 4096).equals(Buffer.alloc(4096, 1))).toBe(true);
  });

  it('tree search fetches more items than fit one batch', () => {
    // Many subvolumes → many ROOT_ITEM and ROOT_BACKREF items in the root tree.
    for (let i = 0; i < 40; i++) subvolCreate(mntFd, `many-${i}`);
    // The key range is compound (objectid, type, offset): other item types come back too.
    const items = treeSearch(mntFd, {
      treeId: 1, minObjectId: 256, maxObjectId: 2n ** 64n - 1n, minType: 132, maxType: 132,
    }).filter((i) => i.type === 132);
    // ROOT_ITEMs are ~439 bytes: 40+ of them cannot fit one 3992-byte result buffer.
    expect(items.length).toBeGreaterThanOrEqual(44);
    expect(new Set(items.map((i) => i.objectId)).size).toBe(items.length);
  });
});
