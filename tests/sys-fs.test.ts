// The *at wrappers of src/sys/fs.ts on a real filesystem (tmpfs in /dev/shm is enough here).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, symlinkSync, mkdirSync, lstatSync, readlinkSync, openSync, closeSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  openat2, openat, mkdirat, mknodat, symlinkat, renameat, linkat, unlinkat, fchownat, fchmodat, utimensat,
  lsetxattrAt, lremovexattrAt, lgetxattrs, fallocate, pwriteAll, ftruncate, inDir, reopen, FsConst, close,
} from '../src/sys/fs.js';
import { SysError } from '../src/sys/libc.js';

const root = process.getuid?.() === 0;
const B = (s: string): Buffer => Buffer.from(s);

describe.skipIf(!root)('src/sys/fs.ts', () => {
  let dir: string;
  let dfd: number;
  beforeAll(() => {
    dir = mkdtempSync('/dev/shm/btrfs-ts-fs-');
    mkdirSync(join(dir, 'inside'));
    writeFileSync(join(dir, 'outside'), 'outside');
    symlinkSync('../outside', join(dir, 'inside', 'up'));
    symlinkSync(dir, join(dir, 'inside', 'abs'));
    dfd = openSync(join(dir, 'inside'), FsConst.O_RDONLY | FsConst.O_DIRECTORY);
  });
  afterAll(() => { if (dfd) closeSync(dfd); rmSync(dir, { recursive: true, force: true }); });

  it('openat2 with RESOLVE_BENEATH|NO_SYMLINKS refuses .., absolute paths and symlinks', () => {
    const flags = FsConst.O_PATH;
    expect(() => openat2(dfd, B('..'), flags)).toThrow(/openat2 \.\. failed: .*EXDEV/);
    expect(() => openat2(dfd, B(dir), flags)).toThrow(/EXDEV/);
    expect(() => openat2(dfd, B('up'), flags)).toThrow(/ELOOP/);
    expect(() => openat2(dfd, B('abs/outside'), flags)).toThrow(/ELOOP/);
    const fd = openat2(dfd, B('.'), flags | FsConst.O_DIRECTORY);
    expect(fd).toBeGreaterThan(2);
    close(fd);
  });

  it('creates, links, renames and removes entries relative to a dir fd', () => {
    close(openat(dfd, B('f'), FsConst.O_CREAT | FsConst.O_EXCL | FsConst.O_WRONLY, 0o600));
    expect(() => openat(dfd, B('up'), FsConst.O_CREAT | FsConst.O_EXCL | FsConst.O_WRONLY, 0o600)).toThrow(/EEXIST/);
    mkdirat(dfd, B('d'), 0o700);
    mknodat(dfd, B('fifo'), 0o010600, 0);
    mknodat(dfd, B('null'), 0o020000, (1 << 8) | 3);
    symlinkat(B('target\xff'), dfd, B('sl'));
    linkat(dfd, B('f'), dfd, B('d/f2'));
    renameat(dfd, B('f'), dfd, B('g'));
    expect(lstatSync(join(dir, 'inside', 'fifo')).isFIFO()).toBe(true);
    const nul = lstatSync(join(dir, 'inside', 'null'));
    expect([nul.isCharacterDevice(), nul.rdev, nul.mode & 0o7777]).toEqual([true, 259, 0]);
    expect(readlinkSync(join(dir, 'inside', 'sl'), { encoding: 'buffer' }).equals(B('target\xff'))).toBe(true);
    expect(statSync(join(dir, 'inside', 'g')).ino).toBe(statSync(join(dir, 'inside', 'd', 'f2')).ino);
    unlinkat(dfd, B('d/f2'));
    unlinkat(dfd, B('d'), FsConst.AT_REMOVEDIR);
    expect(() => unlinkat(dfd, B('d'), FsConst.AT_REMOVEDIR)).toThrow(/^rmdir d failed: No such file or directory \(ENOENT\)$/);
  });

  it('owner, mode and exact nanosecond times without following a final symlink', () => {
    fchownat(dfd, B('up'), 1234, 5678);
    const st = lstatSync(join(dir, 'inside', 'up'));
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
    expect(lstatSync(join(dir, 'outside')).uid).toBe(0);
    fchmodat(dfd, B('g'), 0o4711, 0);
    expect(lstatSync(join(dir, 'inside', 'g')).mode & 0o7777).toBe(0o4711);
    utimensat(dfd, B('up'), { sec: -1, nsec: 999_999_999 }, { sec: 1_234_567_890, nsec: 123_456_789 });
    const t = lstatSync(join(dir, 'inside', 'up'), { bigint: true });
    expect(t.atimeNs).toBe(-1n);
    expect(t.mtimeNs).toBe(1_234_567_890_123_456_789n);
  });

  it('xattrs by name inside a dir fd, restoring the working directory', () => {
    const realCwd = (): string => readlinkSync('/proc/self/cwd'); // process.cwd() is cached by Node
    const cwd = realCwd();
    lsetxattrAt(dfd, B('g'), B('user.k'), Buffer.from([0, 1, 2]));
    expect(lgetxattrs(B(join(dir, 'inside', 'g'))).get('user.k')).toEqual(Buffer.from([0, 1, 2]));
    lremovexattrAt(dfd, B('g'), B('user.k'));
    expect(lgetxattrs(B(join(dir, 'inside', 'g'))).has('user.k')).toBe(false);
    expect(() => lsetxattrAt(dfd, B('a/b'), B('user.k'), B('v'))).toThrow(/EINVAL/);
    expect(() => lremovexattrAt(dfd, B('g'), B('user.none'))).toThrow(SysError);
    expect(realCwd()).toBe(cwd);
    expect(inDir(dfd, realCwd)).toBe(join(dir, 'inside'));
    expect(realCwd()).toBe(cwd);
  });

  it('data: pwrite, fallocate, ftruncate; reopen of an O_PATH fd', () => {
    const pfd = openat(dfd, B('g'), FsConst.O_PATH | FsConst.O_NOFOLLOW);
    const fd = reopen(pfd, FsConst.O_RDWR, () => -1);
    close(pfd);
    pwriteAll(fd, B('hello'), 4096);
    fallocate(fd, 0, 0, 16384);
    ftruncate(fd, 4098);
    close(fd);
    const data = readFileSync(join(dir, 'inside', 'g'));
    expect(data.length).toBe(4098);
    expect(data.subarray(4096).toString()).toBe('he');
  });
});
