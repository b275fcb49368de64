// applyEncodedWrite without btrfs (a non-btrfs os.tmpdir() answers the ioctl with ENOTTY), the
// fault-injection seam and its environment variable, and the encoded_io struct formatting.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, constants as osConstants } from 'node:os';
import { createHash } from 'node:crypto';
import { applyEncodedWrite } from '../src/receive/encoded-write.js';
import { EncodedIoArgsLayout, encodedWrite, encodedWriteFault, setEncodedWriteFault } from '../src/sys/encoded-io.js';
import { FsverityEnableArgLayout } from '../src/sys/verity.js';
import type { EncodedWriteCommand } from '../src/stream/commands.js';

interface FixtureExtent { path: string; offset: number; unencodedLen: number; unencodedOffset: number; unencodedFileLen: number; compression: number; sliceSha256: string; data: string }
const fixture = (codec: string) => (JSON.parse(readFileSync(new URL(`./fixtures/v2-extents/${codec}.json`, import.meta.url), 'utf8')) as { extents: FixtureExtent[] }).extents;
const toCommand = (e: FixtureExtent): EncodedWriteCommand => ({
  cmd: 'encoded_write', path: Buffer.from(e.path), offset: e.offset, unencodedFileLen: e.unencodedFileLen,
  unencodedLen: e.unencodedLen, unencodedOffset: e.unencodedOffset, compression: e.compression, encryption: 0,
  data: Buffer.from(e.data, 'base64'),
});
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function withFile<T>(fn: (fd: number, file: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-v2-unit-'));
  const file = join(dir, 'f');
  const fd = openSync(file, 'w+');
  try {
    return fn(fd, file);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('applyEncodedWrite off btrfs', () => {
  afterEach(() => setEncodedWriteFault(undefined));

  it.each(['zstd', 'zlib', 'lzo'])('%s: falls back on a filesystem without encoded writes and writes the exact slice', (codec) => {
    for (const e of fixture(codec)) {
      withFile((fd, file) => {
        const reasons: string[] = [];
        const result = applyEncodedWrite(fd, toCommand(e), { forceDecompress: false, verify: false, onFallback: (r) => reasons.push(r) });
        const written = readFileSync(file);
        if (tmpdirIsBtrfs()) return; // v2-receive covers btrfs
        expect(result).toBe('decompressed');
        expect(reasons.length).toBe(1);
        expect(reasons[0]).toMatch(/ENOTTY/);
        expect(written.length).toBe(e.offset + e.unencodedFileLen);
        expect(sha256(written.subarray(e.offset)), `${codec} ${e.path}@${e.offset}`).toBe(e.sliceSha256);
      });
    }
  });

  it('a corrupt payload is an error naming the command, and nothing is written (fallback and forced)', () => {
    const e = fixture('lzo').find((x) => x.path === 'text-37856')!;
    const cmd = toCommand(e);
    cmd.data = Buffer.from(cmd.data);
    cmd.data.writeUInt32LE(1 << 20, 4); // first segment length far too large
    for (const forceDecompress of [true, false]) {
      withFile((fd, file) => {
        setEncodedWriteFault(osConstants.errno.ENOTTY);
        expect(() => applyEncodedWrite(fd, cmd, { forceDecompress, verify: false, onFallback: () => {} }))
          .toThrow(/^encoded_write text-37856: corrupt lzo \(4K sectors\) payload: lzo: segment of 1048576 bytes/);
        expect(readFileSync(file).length).toBe(0);
      });
    }
  });

  it('a slice outside the extent and an oversized UNENCODED_LEN are errors before any allocation or write', () => {
    const cmd = toCommand(fixture('zstd')[0]!);
    withFile((fd, file) => {
      expect(() => applyEncodedWrite(fd, { ...cmd, unencodedOffset: cmd.unencodedLen }, { forceDecompress: true, verify: false, onFallback: () => {} }))
        .toThrow(/lies outside the/);
      expect(() => applyEncodedWrite(fd, { ...cmd, unencodedLen: 2 ** 40 }, { forceDecompress: true, verify: false, onFallback: () => {} }))
        .toThrow(/exceeds the 1048576-byte limit/);
      expect(readFileSync(file).length).toBe(0);
    });
  });

  it('the seam fails encodedWrite with the injected errno without calling the kernel', () => {
    setEncodedWriteFault(osConstants.errno.EINVAL);
    expect(encodedWriteFault()).toBe(osConstants.errno.EINVAL);
    // fd -1 would give EBADF from the kernel: the injected EINVAL proves the kernel was not called.
    expect(() => encodedWrite(-1, { offset: 0, len: 0, unencodedLen: 0, unencodedOffset: 0, compression: 2, encryption: 0, data: Buffer.alloc(0) }, 'x'))
      .toThrow(/BTRFS_IOC_ENCODED_WRITE x failed: .*\(EINVAL\)/);
    setEncodedWriteFault(undefined);
    expect(() => encodedWrite(-1, { offset: 0, len: 0, unencodedLen: 0, unencodedOffset: 0, compression: 2, encryption: 0, data: Buffer.alloc(0) }, 'x'))
      .toThrow(/\(EBADF\)/);
  });

  it('BTRFS_TS_ENCODED_WRITE_FAULT sets the initial fault when the module loads', async () => {
    vi.stubEnv('BTRFS_TS_ENCODED_WRITE_FAULT', 'ENOTTY');
    vi.resetModules();
    try {
      const fresh = await import('../src/sys/encoded-io.js');
      expect(fresh.encodedWriteFault()).toBe(osConstants.errno.ENOTTY);
      vi.stubEnv('BTRFS_TS_ENCODED_WRITE_FAULT', 'NOT_AN_ERRNO');
      vi.resetModules();
      await expect(import('../src/sys/encoded-io.js')).rejects.toThrow(/unknown errno name NOT_AN_ERRNO/);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });

  it('exports the struct layouts the ABI test checks', () => {
    expect(EncodedIoArgsLayout).toMatchObject({ struct: 'btrfs_ioctl_encoded_io_args', size: 128, offset: 16, len: 32, compression: 56, reserved: 64 });
    expect(FsverityEnableArgLayout).toMatchObject({ struct: 'fsverity_enable_arg', size: 128, salt_ptr: 16, sig_ptr: 32 });
  });
});

/** True when os.tmpdir() is itself on btrfs (then the ioctl may succeed and the fallback is not exercised). */
function tmpdirIsBtrfs(): boolean {
  return statfsSync(tmpdir()).type === 0x9123683e; // BTRFS_SUPER_MAGIC
}
