// The receive's hot file system calls (src/sys/fs-calls.ts): native/fs-calls.c must answer exactly as the
// same calls through koffi do, successes and errnos alike, and a receive must build the same tree with
// either. The native module is what every other test and every user runs; koffi is the fallback.
import { afterAll, describe, expect, it } from 'vitest';
import {
  closeSync, fstatSync, lstatSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { constants as osConstants, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fsCallsViaKoffi, type FsCalls } from '../src/sys/fs-calls.js';
import { loadNativeModule, nativeModulePath } from '../src/sys/native-module.js';
import { FsConst as F, RESOLVE_SAFE, StatLayout, fstatSizeBlock } from '../src/sys/fs.js';
import { Ioctl } from '../src/sys/constants.js';
import { CLI } from './helpers/cli.js';
import { makeBtrfs, requireBtrfs, run } from './helpers/btrfs.js';
import { kernelCompressedStream } from './helpers/v2-extents.js';

type NativeCalls = FsCalls & { encodedWrite: (...args: unknown[]) => number };
const native = loadNativeModule<NativeCalls>('fs-calls');
if (native === null) {
  const why = `native fs-calls not built (${nativeModulePath('fs-calls')})`;
  if (process.env.CI) throw new Error(`${why}: scripts/build-native.sh must build it in CI`);
  console.warn(`fs-calls: ${why}; only the koffi fallback runs, and the comparisons skip`);
}
const koffiCalls = fsCallsViaKoffi();
const { EEXIST, EBADF, ENOENT, ENAMETOOLONG, EXDEV, EOPNOTSUPP, ENOTTY, ELOOP } = osConstants.errno;
const b = (s: string): Buffer => Buffer.from(s);

const root = mkdtempSync(join(tmpdir(), 'btrfs-ts-fs-calls-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Times as utimensat takes them: atime then mtime, each seconds + nanoseconds. */
function times(atime: number, atimeNs: number, mtime: number, mtimeNs: number): Buffer {
  const t = Buffer.alloc(32);
  t.writeBigInt64LE(BigInt(atime), 0);
  t.writeBigInt64LE(BigInt(atimeNs), 8);
  t.writeBigInt64LE(BigInt(mtime), 16);
  t.writeBigInt64LE(BigInt(mtimeNs), 24);
  return t;
}

/** Every call once, in a fresh directory, with successes and failures; what each returned and did. */
function exercise(calls: FsCalls, name: string): Record<string, unknown> {
  const dir = join(root, name);
  const out: Record<string, unknown> = {};
  const dirfd = calls.openat(F.AT_FDCWD, b(dir + '.d'), F.O_PATH | F.O_DIRECTORY, 0);
  out.openMissingDir = dirfd;
  out.mkdir = calls.mkdirat(F.AT_FDCWD, b(dir), 0o750);
  out.mkdirAgain = calls.mkdirat(F.AT_FDCWD, b(dir), 0o750);
  const d = calls.openat2(F.AT_FDCWD, b(dir), F.O_PATH | F.O_DIRECTORY | F.O_CLOEXEC, 0, 0);
  out.dirOpened = d >= 0;
  // A path that is a window into a larger buffer: only its own bytes count, no NUL needed.
  const window = b('xxfilexx').subarray(2, 6);
  const fd = calls.openat(d, window, F.O_RDWR | F.O_CREAT | F.O_EXCL | F.O_CLOEXEC, 0o600);
  out.created = fd >= 0;
  out.createAgain = calls.openat(d, window, F.O_RDWR | F.O_CREAT | F.O_EXCL | F.O_CLOEXEC, 0o600);
  out.fchmod = calls.fchmod(fd, 0o4711);
  out.modeAfterFchmod = (statSync(join(dir, 'file')).mode & 0o7777).toString(8);
  out.futimens = calls.futimens(fd, times(1_000_000_000, 1, 1_234_567_890, 999_999_999));
  out.mtimeAfterFutimens = statSync(join(dir, 'file'), { bigint: true }).mtimeNs.toString();
  symlinkSync('file', join(dir, 'link'));
  out.utimensatLink = calls.utimensat(d, b('link'), times(5, 6, 7, 8), F.AT_SYMLINK_NOFOLLOW);
  out.linkMtime = lstatSync(join(dir, 'link'), { bigint: true }).mtimeNs.toString();
  out.utimensatMissing = calls.utimensat(d, b('missing'), times(5, 6, 7, 8), F.AT_SYMLINK_NOFOLLOW);
  out.fchmodat2 = calls.fchmodat2(d, b('file'), 0o640, F.AT_SYMLINK_NOFOLLOW);
  out.fchmodat2Link = calls.fchmodat2(d, b('link'), 0o640, F.AT_SYMLINK_NOFOLLOW);
  const st = Buffer.alloc(StatLayout.size);
  out.fstatatLink = calls.fstatat(d, b('link'), st, F.AT_SYMLINK_NOFOLLOW);
  out.linkIsSymlink = (st.readUInt32LE(StatLayout.st_mode) & 0o170000) === 0o120000;
  out.fstatEmptyPath = calls.fstatat(fd, Buffer.alloc(0), st, F.AT_EMPTY_PATH);
  out.fileMode = st.readUInt32LE(StatLayout.st_mode).toString(8);
  out.fileUid = st.readUInt32LE(StatLayout.st_uid) === process.getuid!();
  // openat2's resolve flags: no way out of the directory, no symlink followed.
  out.openat2Escape = calls.openat2(d, b('../' + name), F.O_PATH, 0, RESOLVE_SAFE);
  out.openat2Symlink = calls.openat2(d, b('link'), F.O_RDONLY, 0, RESOLVE_SAFE);
  out.tooLong = calls.openat(d, Buffer.alloc(4096, 0x61), F.O_RDONLY, 0);
  out.longestName = calls.openat(d, Buffer.alloc(300, 0x61), F.O_RDONLY, 0);
  out.pwrite = calls.pwrite(fd, b('xxhelloxx'), 2, 5, 3);
  out.contentAfterPwrite = readFileSync(join(dir, 'file')).toString('latin1');
  out.pwriteBadFd = calls.pwrite(1_000_000, b('x'), 0, 1, 0);
  out.close = calls.close(fd);
  out.closeAgain = calls.close(fd);
  calls.close(d);
  return out;
}

describe.skipIf(native === null)('native fs calls', () => {
  it('answer as the same calls through koffi do: results, errnos and effects', () => {
    const viaNative = exercise(native!, 'native');
    const viaKoffi = exercise(koffiCalls, 'koffi');
    expect(viaNative).toEqual(viaKoffi);
    // And those answers are the right ones (so two equal wrong answers cannot pass).
    expect(viaNative).toEqual({
      openMissingDir: -ENOENT, mkdir: 0, mkdirAgain: -EEXIST, dirOpened: true, created: true, createAgain: -EEXIST,
      fchmod: 0, modeAfterFchmod: '4711', futimens: 0, mtimeAfterFutimens: '1234567890999999999',
      utimensatLink: 0, linkMtime: '7000000008', utimensatMissing: -ENOENT, fchmodat2: 0, fchmodat2Link: -EOPNOTSUPP,
      fstatatLink: 0, linkIsSymlink: true, fstatEmptyPath: 0, fileMode: '100640', fileUid: true,
      openat2Escape: -EXDEV, openat2Symlink: -ELOOP, tooLong: -ENAMETOOLONG, longestName: -ENAMETOOLONG,
      pwrite: 5, contentAfterPwrite: '\0\0\0hello', pwriteBadFd: -EBADF, close: 0, closeAgain: -EBADF,
    });
  });

  it('ENCODED_WRITE: the kernel\'s errno for a file that is not on btrfs, and for a bad fd', () => {
    const file = join(root, 'not-btrfs');
    writeFileSync(file, '');
    const fd = koffiCalls.openat(F.AT_FDCWD, b(file), F.O_RDWR, 0);
    try {
      const data = Buffer.alloc(4096, 1);
      expect(native!.encodedWrite(fd, Ioctl.BTRFS_IOC_ENCODED_WRITE, data, 0, 4096, 4096, 0, 0, 0)).toBe(-ENOTTY);
      expect(native!.encodedWrite(1_000_000, Ioctl.BTRFS_IOC_ENCODED_WRITE, data, 0, 4096, 4096, 0, 0, 0)).toBe(-EBADF);
    } finally {
      koffiCalls.close(fd);
    }
    expect(readFileSync(file).length).toBe(0);
  });

  it('refuses arguments of the wrong type with a TypeError naming the call', () => {
    const loose = native as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => loose.openat!(F.AT_FDCWD, 'a string', 0, 0)).toThrow(/openat\(dirfd, path, flags, mode\)/);
    expect(() => loose.mkdirat!('3', b('x'), 0o700)).toThrow(TypeError);
    expect(() => loose.utimensat!(F.AT_FDCWD, b('x'), Buffer.alloc(8), 0)).toThrow(RangeError);
    expect(() => loose.fstatat!(F.AT_FDCWD, b('x'), Buffer.alloc(16), 0)).toThrow(RangeError);
    expect(() => loose.encodedWrite!(3, 0, b('x'))).toThrow(/encodedWrite\(/);
    expect(() => loose.close!()).toThrow(/close\(fd\)/);
    expect(() => loose.pwrite!(1, b('abc'), 2, 5, 0)).toThrow(RangeError);
    expect(() => loose.pwrite!(1, b('abc'), 0, 1, -1)).toThrow(RangeError);
  });
});

const btrfsOk = requireBtrfs();

describe.skipIf(!btrfsOk)('a receive through either implementation', () => {
  it('builds the same tree, compressed extents included, with the native calls and with koffi', () => {
    const { stream, files } = kernelCompressedStream('zstd');
    const fs = makeBtrfs({ sizeMiB: 256, mountOptions: 'compress-force=zstd' });
    try {
      const streamFile = join(fs.mnt, '..', `fs-calls-${process.pid}.stream`);
      writeFileSync(streamFile, stream);
      for (const [dest, env] of [['native', {}], ['koffi', { BTRFS_TS_NO_NATIVE_FS_CALLS: '1' }]] as const) {
        run('mkdir', [join(fs.mnt, dest)]);
        const r = spawnSync(CLI, ['receive', '-f', streamFile, join(fs.mnt, dest)], { env: { ...process.env, ...env }, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        for (const [name, content] of Object.entries(files)) {
          expect(readFileSync(join(fs.mnt, dest, 'snap', name)).equals(content), `${dest}/${name}`).toBe(true);
        }
      }
      rmSync(streamFile);
      const listing = (dest: string) => run('sh', ['-c', `cd ${join(fs.mnt, dest, 'snap')} && find . -printf '%p %m %U %G %s %T@\\n' | sort`]).toString();
      expect(listing('koffi')).toBe(listing('native'));
      expect(listing('native').split('\n').length).toBeGreaterThan(Object.keys(files).length);
      // The extents arrived compressed both ways (ENCODED_WRITE worked, no fallback to plain writes).
      const encoded = (dest: string) => Object.keys(files).map((name) =>
        run('filefrag', ['-v', join(fs.mnt, dest, 'snap', name)]).toString().split('\n').filter((l) => /encoded/.test(l)).length);
      expect(encoded('koffi')).toEqual(encoded('native'));
      expect(encoded('native').reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
    } finally {
      fs.cleanup();
    }
  });
});

describe('fstatSizeBlock', () => {
  it('reads st_size and st_blksize where Node\'s fstat finds them, and names the path of a bad fd', () => {
    const path = join(root, 'sized');
    writeFileSync(path, Buffer.alloc(123_457, 1));
    const fd = openSync(path, 'r');
    try {
      const node = fstatSync(fd);
      expect(fstatSizeBlock(fd)).toEqual({ size: 123_457, blksize: node.blksize });
      expect(node.blksize).toBeGreaterThan(0);
    } finally {
      closeSync(fd);
    }
    expect(() => fstatSizeBlock(fd, b('gone/file'))).toThrow(/fstat gone\/file failed: .*EBADF/);
  });
});
