// v2 streams for the decode-ahead tests: many files, each with zstd ENCODED_WRITEs between ordinary
// commands, so that several extents are queued at once; one extent may be corrupt.
import { createRequire } from 'node:module';
import type { Command } from '../../src/stream/commands.js';
import { buildStream } from './stream-builder.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
const B = (s: string): Buffer => Buffer.from(s);

/** The content of file `i`'s extent `e` (compressible, different for every extent). */
export function extentText(i: number, e: number, length = 8192): Buffer {
  return Buffer.from(Array.from({ length: length / 4 }, (_, k) => `${(k * (i + 7) + e * 31) % 997}`.padStart(4, '.')).join(''));
}

/** A zstd frame padded to the sector, as btrfs sends it; `corrupt` garbles its blocks. */
export function zstdExtent(plain: Buffer, corrupt = false): Buffer {
  const cctx = new zstd.CCtx();
  cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  const out = Buffer.alloc(zstd.compressBound(plain.length));
  const frame = out.subarray(0, cctx.compress(out, plain, 3));
  if (corrupt) for (let i = 12; i < frame.length - 4; i++) frame[i]! ^= 0x5a;
  const padded = Buffer.alloc(Math.ceil(frame.length / 4096) * 4096);
  frame.copy(padded);
  return padded;
}

export interface AheadStream {
  bytes: Buffer;
  commands: Command[];
  /** 1-based index of each file's first ENCODED_WRITE command. */
  firstExtentIndex: number[];
}

/**
 * SUBVOL `name`, then `files` files: MKFILE, `extentsOf(i)` ENCODED_WRITEs of 8 KiB, SET_XATTR, CHOWN,
 * CHMOD, UTIMES; file `corrupt.file`'s extent `corrupt.extent` is garbled.
 */
export function aheadStream(name: string, files: number, extentsOf: (i: number) => number,
  corrupt?: { file: number; extent: number }): AheadStream {
  const commands: Command[] = [{ cmd: 'subvol', path: B(name), uuid: Buffer.alloc(16, 0x42), ctransid: 9 }];
  const firstExtentIndex: number[] = [];
  const t = { sec: 1_700_000_000, nsec: 0 };
  for (let i = 0; i < files; i++) {
    const path = B(`f${i}`);
    commands.push({ cmd: 'mkfile', path, ino: 257 + i });
    firstExtentIndex.push(commands.length + 1);
    for (let e = 0; e < extentsOf(i); e++) {
      const bad = corrupt !== undefined && corrupt.file === i && corrupt.extent === e;
      commands.push({
        cmd: 'encoded_write', path, offset: e * 8192, unencodedFileLen: 8192, unencodedLen: 8192, unencodedOffset: 0,
        compression: 2, encryption: 0, data: zstdExtent(extentText(i, e), bad),
      });
    }
    commands.push({ cmd: 'set_xattr', path, name: B('user.n'), value: B(`v${i}`) });
    commands.push({ cmd: 'chown', path, uid: 1000 + i, gid: 100 });
    commands.push({ cmd: 'chmod', path, mode: 0o640 });
    commands.push({ cmd: 'utimes', path, atime: t, mtime: t, ctime: t });
  }
  return { bytes: buildStream(2, commands), commands, firstExtentIndex };
}
