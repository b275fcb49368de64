// Applying v2 commands on a real btrfs: ENCODED_WRITE through BTRFS_IOC_ENCODED_WRITE (extents
// stay compressed), the fallback (forced, injected ENOTTY/EINVAL, real EINVAL/ENOTTY), slicing,
// verification, FILEATTR via FS_IOC_SETFLAGS, and ENABLE_VERITY's error on this kernel.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { applyEncodedWrite, type ApplyEncodedWriteOptions } from '../src/receive/encoded-write.js';
import { applyFileattr, btrfsFlagsToFsFlags } from '../src/receive/fileattr.js';
import { encodedRead, setEncodedWriteFault } from '../src/sys/encoded-io.js';
import { FsFlag, getFsFlags } from '../src/sys/fileattr.js';
import { VerityUnsupportedError, enableVerity } from '../src/sys/verity.js';
import type { EncodedWriteCommand } from '../src/stream/commands.js';
import { Compression } from '../src/stream/protocol.js';
import { type Btrfs, makeBtrfs, requireBtrfs, run } from './helpers/btrfs.js';
import { encodedWrites, kernelCompressedStream, parseStreamForTests, sampleContents } from './helpers/v2-extents.js';

const ok = requireBtrfs();
const { ENOTTY, EINVAL, EPERM } = osConstants.errno;
const CODECS = [['zstd', Compression.ZSTD], ['zlib', Compression.ZLIB], ['lzo', Compression.LZO_4K]] as const;

/** Extents of `file` as filefrag -v prints them: [{logical, flags}] */
function extentFlags(file: string): string[] {
  return run('filefrag', ['-v', file]).toString().split('\n')
    .filter((line) => /^\s*\d+:/.test(line))
    .map((line) => line.split(':').pop()!.trim());
}

/** Compression value of the extent at `offset`, read back with BTRFS_IOC_ENCODED_READ. */
function storedCompression(file: string, offset = 0): number {
  const fd = openSync(file, 'r');
  try {
    return encodedRead(fd, offset, 1 << 20, Buffer.alloc(128 * 1024), file).compression;
  } finally {
    closeSync(fd);
  }
}

interface Applied { results: Map<string, Set<string>>; fallbacks: string[] }

/** Apply every ENCODED_WRITE to files under `dir` (created on first use), like the engine would. */
function applyAll(dir: string, cmds: EncodedWriteCommand[], opts: Partial<ApplyEncodedWriteOptions> = {}): Applied {
  const fds = new Map<string, number>();
  const results = new Map<string, Set<string>>();
  const fallbacks: string[] = [];
  try {
    for (const cmd of cmds) {
      const name = cmd.path.toString();
      let fd = fds.get(name);
      if (fd === undefined) fds.set(name, (fd = openSync(join(dir, name), 'w+')));
      const result = applyEncodedWrite(fd, cmd, {
        forceDecompress: false, verify: false, onFallback: (reason) => fallbacks.push(reason), ...opts,
      });
      if (!results.has(name)) results.set(name, new Set());
      results.get(name)!.add(result);
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return { results, fallbacks };
}

describe.skipIf(!ok)('ENCODED_WRITE on a real btrfs mounted without compression', () => {
  let dst: Btrfs;
  const streams = new Map<string, ReturnType<typeof kernelCompressedStream>>();
  let n = 0;
  const freshDir = () => {
    const dir = join(dst.mnt, `d${n++}`);
    run('mkdir', [dir]);
    return dir;
  };

  beforeAll(() => {
    dst = makeBtrfs({ sizeMiB: 512 });
    for (const [codec] of CODECS) streams.set(codec, kernelCompressedStream(codec));
  });
  afterAll(() => dst?.cleanup());
  afterEach(() => setEncodedWriteFault(undefined));

  it.each(CODECS)('%s: kernel extents land still compressed and byte-identical', (codec, compression) => {
    const { stream, files } = streams.get(codec)!;
    const cmds = encodedWrites(parseStreamForTests(stream));
    expect(cmds.some((c) => c.unencodedOffset > 0)).toBe(true); // the partially overwritten extent
    const dir = freshDir();
    const { results, fallbacks } = applyAll(dir, cmds);
    expect(fallbacks).toEqual([]);
    run('sync', []);
    for (const [name, result] of results) {
      expect([...result]).toEqual(['encoded']);
      const file = join(dir, name);
      expect(readFileSync(file).equals(files[name]!.subarray(0, readFileSync(file).length)), name).toBe(true);
      expect(extentFlags(file).every((flags) => flags.includes('encoded')), `${name}: ${extentFlags(file)}`).toBe(true);
      expect(storedCompression(file), name).toBe(compression);
    }
    // The partially referenced extent: same bytes on both sides of the rewritten middle.
    const partial = join(dir, 'partial-131072');
    expect(readFileSync(partial).subarray(49152).equals(files['partial-131072']!.subarray(49152))).toBe(true);
    expect(storedCompression(partial, 49152)).toBe(compression);
    const compsize = run('compsize', [dir]).toString();
    expect(compsize).toMatch(new RegExp(`^${codec}\\s+\\d+%`, 'm'));
    expect(compsize).not.toMatch(/^none/m);
  });

  it.each(CODECS)('%s: forceDecompress writes identical bytes, stored uncompressed', (codec) => {
    const { stream, files } = streams.get(codec)!;
    const dir = freshDir();
    const { results, fallbacks } = applyAll(dir, encodedWrites(parseStreamForTests(stream)), { forceDecompress: true });
    expect(fallbacks).toEqual([]); // forced, not a fallback
    run('sync', []);
    for (const [name, result] of results) {
      expect([...result]).toEqual(['decompressed']);
      const file = join(dir, name);
      expect(readFileSync(file).equals(files[name]!), name).toBe(true);
      expect(extentFlags(file).some((flags) => flags.includes('encoded')), name).toBe(false);
    }
  });

  it.each([['ENOTTY', ENOTTY], ['EINVAL', EINVAL]] as const)('injected %s falls back: identical bytes, not compressed, onFallback called', (name, errno) => {
    const { stream, files } = streams.get('zstd')!;
    setEncodedWriteFault(errno);
    const dir = freshDir();
    const { results, fallbacks } = applyAll(dir, encodedWrites(parseStreamForTests(stream)));
    expect(fallbacks.length).toBeGreaterThan(0);
    expect(fallbacks[0]).toContain(name);
    run('sync', []);
    for (const [file, result] of results) {
      expect([...result]).toEqual(['decompressed']);
      expect(readFileSync(join(dir, file)).equals(files[file]!), file).toBe(true);
      expect(extentFlags(join(dir, file)).some((flags) => flags.includes('encoded'))).toBe(false);
    }
  });

  it('another errno is a hard error naming the path; nothing is written', () => {
    const cmd = encodedWrites(parseStreamForTests(streams.get('zstd')!.stream))[0]!;
    setEncodedWriteFault(EPERM);
    const dir = freshDir();
    expect(() => applyAll(dir, [cmd])).toThrow(new RegExp(`encoded_write ${cmd.path.toString()}: BTRFS_IOC_ENCODED_WRITE .* \\(EPERM\\)`));
    expect(readFileSync(join(dir, cmd.path.toString())).length).toBe(0);
  });

  it('real EINVAL (NOCOW file) and real ENOTTY (tmpfs) fall back with the reason', () => {
    const cmd = encodedWrites(parseStreamForTests(streams.get('zlib')!.stream)).find((c) => c.path.toString() === 'text-37856')!;
    const expected = sampleContents()['text-37856']!;
    const dir = freshDir();
    const file = join(dir, 'nocow');
    writeFileSync(file, '');
    run('chattr', ['+C', file]);
    let fd = openSync(file, 'r+');
    const reasons: string[] = [];
    expect(applyEncodedWrite(fd, cmd, { forceDecompress: false, verify: false, onFallback: (r) => reasons.push(r) })).toBe('decompressed');
    closeSync(fd);
    expect(reasons[0]).toContain('EINVAL');
    expect(readFileSync(file).equals(expected)).toBe(true);

    const tmp = mkdtempSync('/dev/shm/btrfs-ts-v2-');
    try {
      fd = openSync(join(tmp, 'f'), 'w+');
      expect(applyEncodedWrite(fd, cmd, { forceDecompress: false, verify: false, onFallback: (r) => reasons.push(r) })).toBe('decompressed');
      closeSync(fd);
      expect(reasons[1]).toContain('ENOTTY');
      expect(readFileSync(join(tmp, 'f')).equals(expected)).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it.each(CODECS)('%s: slices with unencoded_offset ≠ 0 (hand-built from a real 128 KiB extent), both paths', (codec) => {
    const { stream, files } = streams.get(codec)!;
    const whole = encodedWrites(parseStreamForTests(stream)).find((c) => c.path.toString() === 'text-1M' && c.offset === 131072)!;
    expect(whole.unencodedLen).toBe(131072);
    const source = files['text-1M']!.subarray(131072, 262144);
    const cases = [
      { unencodedOffset: 4096, unencodedFileLen: 8192, offset: 0 },
      { unencodedOffset: 69632, unencodedFileLen: 61440, offset: 65536 },
      { unencodedOffset: 126976, unencodedFileLen: 4096, offset: 8192 },
      { unencodedOffset: 12288, unencodedFileLen: 1000, offset: 20480 }, // unaligned end at EOF
    ];
    for (const forceDecompress of [false, true]) {
      const dir = freshDir();
      for (const [i, c] of cases.entries()) {
        const file = join(dir, `slice${i}`);
        const fd = openSync(file, 'w+');
        const result = applyEncodedWrite(fd, { ...whole, ...c, path: Buffer.from(`slice${i}`) }, { forceDecompress, verify: true, onFallback: () => {} });
        closeSync(fd);
        expect(result).toBe(forceDecompress ? 'decompressed' : 'encoded');
        const got = readFileSync(file);
        expect(got.length).toBe(c.offset + c.unencodedFileLen);
        expect(got.subarray(0, c.offset).every((b) => b === 0)).toBe(true);
        expect(got.subarray(c.offset).equals(source.subarray(c.unencodedOffset, c.unencodedOffset + c.unencodedFileLen)), `case ${i} force=${forceDecompress}`).toBe(true);
      }
    }
  });

  it('verify rejects a corrupt payload before anything reaches the disk; without it the kernel stores garbage', () => {
    const good = encodedWrites(parseStreamForTests(streams.get('zstd')!.stream)).find((c) => c.path.toString() === 'text-37856')!;
    const bad = { ...good, data: Buffer.from(good.data) };
    bad.data.fill(0x55, 16, 200);
    const dir = freshDir();
    for (const forceDecompress of [false, true]) {
      const file = join(dir, `v${forceDecompress}`);
      const fd = openSync(file, 'w+');
      expect(() => applyEncodedWrite(fd, bad, { forceDecompress, verify: true, onFallback: () => {} }))
        .toThrow(/encoded_write text-37856: corrupt zstd payload: zstd: /);
      closeSync(fd);
      expect(readFileSync(file).length).toBe(0);
    }
    // Why verify exists: the kernel accepts the garbage and only reading it fails.
    const file = join(dir, 'unverified');
    const fd = openSync(file, 'w+');
    expect(applyEncodedWrite(fd, bad, { forceDecompress: false, verify: false, onFallback: () => {} })).toBe('encoded');
    closeSync(fd);
    expect(() => readFileSync(file)).toThrow(/EIO/);
  });

  it('encryption ≠ 0 is refused', () => {
    const cmd = { ...encodedWrites(parseStreamForTests(streams.get('zstd')!.stream))[0]!, encryption: 1 };
    const fd = openSync(join(freshDir(), 'enc'), 'w+');
    try {
      expect(() => applyEncodedWrite(fd, cmd, { forceDecompress: false, verify: false, onFallback: () => {} })).toThrow(/encryption not supported/);
    } finally {
      closeSync(fd);
    }
  });
});

describe('btrfsFlagsToFsFlags', () => {
  it('maps every BTRFS_INODE_* bit per protocol.md §3.12 and drops the rest', () => {
    expect(btrfsFlagsToFsFlags(1 << 1)).toBe(FsFlag.NOCOW);
    expect(btrfsFlagsToFsFlags(1 << 3)).toBe(0x400);
    expect(btrfsFlagsToFsFlags(1 << 5)).toBe(0x8);
    expect(btrfsFlagsToFsFlags(1 << 6)).toBe(0x10);
    expect(btrfsFlagsToFsFlags(1 << 7)).toBe(0x20);
    expect(btrfsFlagsToFsFlags(256)).toBe(0x40); // chattr +d as the kernel sends it
    expect(btrfsFlagsToFsFlags(512)).toBe(0x80); // +A
    expect(btrfsFlagsToFsFlags(1 << 10)).toBe(0x10000);
    expect(btrfsFlagsToFsFlags(2048)).toBe(0x4); // +c
    expect(btrfsFlagsToFsFlags(0x3)).toBe(FsFlag.NOCOW); // +C: NODATASUM is implied
    expect(btrfsFlagsToFsFlags(1 | 4 | 16)).toBe(0); // NODATASUM, READONLY, PREALLOC
    expect(btrfsFlagsToFsFlags(2 ** 32 + 256)).toBe(0x40); // verity ro-compat bit ignored
  });
});

describe.skipIf(!ok)('FILEATTR on a real btrfs', () => {
  let fs: Btrfs;
  beforeAll(() => { fs = makeBtrfs({ sizeMiB: 256 }); });
  afterAll(() => fs?.cleanup());

  const lsattr = (file: string) => run('lsattr', ['-d', file]).toString().split(' ')[0];

  it('a real incremental v2 stream after chattr +d/+A/+C/+c: received files get the same lsattr flags', () => {
    const s = join(fs.mnt, 's');
    run('btrfs', ['-q', 'subvolume', 'create', s]);
    const names = ['dump', 'atime', 'nocow', 'compress', 'plain'];
    for (const name of names) writeFileSync(join(s, name), name === 'nocow' ? '' : `contents of ${name}\n`);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', s, join(fs.mnt, 's1')]);
    run('chattr', ['+d', join(s, 'dump')]);
    run('chattr', ['+A', join(s, 'atime')]);
    run('chattr', ['+C', join(s, 'nocow')]);
    run('chattr', ['+c', join(s, 'compress')]);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', s, join(fs.mnt, 's2')]);
    const streamFile = join(fs.mnt, '..', 'incr');
    run('btrfs', ['-q', 'send', '--proto', '2', '-p', join(fs.mnt, 's1'), '-f', streamFile, join(fs.mnt, 's2')]);
    const fileattrs = parseStreamForTests(readFileSync(streamFile)).commands.filter((c) => c.cmd === 24)
      .map((c) => ({ path: c.attrs.get(15)!.toString(), flags: Number(c.attrs.get(26)!.readBigUInt64LE(0)) }));
    expect(fileattrs.map((f) => f.path).sort()).toEqual(['atime', 'compress', 'dump', 'nocow']);

    const dst = join(fs.mnt, 'dst');
    run('mkdir', [dst]);
    for (const name of names) writeFileSync(join(dst, name), name === 'nocow' ? '' : `contents of ${name}\n`);
    for (const { path, flags } of fileattrs) {
      const fd = openSync(join(dst, path), 'r');
      try {
        applyFileattr(fd, flags, path);
      } finally {
        closeSync(fd);
      }
    }
    for (const name of names) expect(lsattr(join(dst, name)), name).toBe(lsattr(join(fs.mnt, 's2', name)));
    expect(lsattr(join(dst, 'dump'))).toContain('d');
  });

  it('keeps bits it does not manage, clears managed bits the sender does not have', () => {
    const file = join(fs.mnt, 'merge');
    writeFileSync(file, 'x');
    run('chattr', ['+d', '+A', file]);
    const fd = openSync(file, 'r');
    try {
      applyFileattr(fd, 1 << 5); // SYNC only: NODUMP and NOATIME must go
      expect(getFsFlags(fd) & (FsFlag.SYNC | FsFlag.NODUMP | FsFlag.NOATIME)).toBe(FsFlag.SYNC);
      applyFileattr(fd, (1 << 6) | (1 << 7)); // immutable + append-only, applied last by the engine
      expect(getFsFlags(fd) & (FsFlag.IMMUTABLE | FsFlag.APPEND | FsFlag.SYNC)).toBe(FsFlag.IMMUTABLE | FsFlag.APPEND);
      expect(() => writeFileSync(file, 'y')).toThrow(/EPERM/);
      applyFileattr(fd, 0);
      expect(getFsFlags(fd) & (FsFlag.IMMUTABLE | FsFlag.APPEND)).toBe(0);
    } finally {
      closeSync(fd);
    }
  });

  it('ENABLE_VERITY: a clear "not supported" error on this kernel (no CONFIG_FS_VERITY)', () => {
    const file = join(fs.mnt, 'verity');
    writeFileSync(file, 'data for verity\n');
    const fd = openSync(file, 'r');
    try {
      let error: unknown;
      try {
        enableVerity(fd, 1, 4096, Buffer.alloc(0), Buffer.alloc(0), 'verity');
      } catch (e) {
        error = e;
      }
      if (error === undefined) {
        // A kernel with fs-verity: then the file must now be a verity file.
        expect(run('lsattr', ['-d', file]).toString().split(' ')[0]).toContain('V');
        return;
      }
      expect(error).toBeInstanceOf(VerityUnsupportedError);
      expect((error as Error).message).toMatch(/cannot enable verity on verity: fs-verity is not supported .*CONFIG_FS_VERITY/);
    } finally {
      closeSync(fd);
    }
  });
});
