// Helpers for the v2/compression tests: real compressed extents from the kernel, a minimal
// stream parser (only what these tests need: ENCODED_WRITE/WRITE/FILEATTR/FALLOCATE per path), and
// a btrfs-LZO container builder around Debian's liblzo2 (compiled in a temp dir).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { EncodedWriteCommand } from '../../src/stream/commands.js';
import { CorruptDataError } from '../../src/compress/index.js';
import { makeBtrfs, run } from './btrfs.js';

export interface ParsedStream {
  version: number;
  /** Every command in order: name + raw fields. */
  commands: Array<{ cmd: number; attrs: Map<number, Buffer> }>;
}

/** Minimal send-stream parser (CRC not checked): enough to pull commands out of a real stream. */
export function parseStreamForTests(bytes: Buffer): ParsedStream {
  if (bytes.subarray(0, 13).toString('latin1') !== 'btrfs-stream\0') throw new Error('not a send stream');
  const version = bytes.readUInt32LE(13);
  const commands: ParsedStream['commands'] = [];
  let pos = 17;
  while (pos < bytes.length) {
    const len = bytes.readUInt32LE(pos);
    const cmd = bytes.readUInt16LE(pos + 4);
    const body = bytes.subarray(pos + 10, pos + 10 + len);
    const attrs = new Map<number, Buffer>();
    let p = 0;
    while (p < body.length) {
      const type = body.readUInt16LE(p);
      if (type === 19 && version >= 2) {
        attrs.set(type, Buffer.from(body.subarray(p + 2)));
        break;
      }
      const alen = body.readUInt16LE(p + 2);
      attrs.set(type, Buffer.from(body.subarray(p + 4, p + 4 + alen)));
      p += 4 + alen;
    }
    commands.push({ cmd, attrs });
    pos += 10 + len;
    if (cmd === 21) break;
  }
  return { version, commands };
}

const u64 = (b: Buffer | undefined): number => (b ? Number(b.readBigUInt64LE(0)) : 0);

/** ENCODED_WRITE commands of a parsed stream, in the shape the codec yields. */
export function encodedWrites(stream: ParsedStream): EncodedWriteCommand[] {
  return stream.commands.filter((c) => c.cmd === 25).map(({ attrs }) => ({
    cmd: 'encoded_write',
    path: attrs.get(15)!,
    offset: u64(attrs.get(18)),
    unencodedFileLen: u64(attrs.get(27)),
    unencodedLen: u64(attrs.get(28)),
    unencodedOffset: u64(attrs.get(29)),
    compression: attrs.get(30)?.readUInt32LE(0),
    encryption: attrs.get(31)?.readUInt32LE(0),
    data: attrs.get(19)!,
  }));
}

/** Deterministic test contents: text-like, random, and mixed. */
export function sampleContents(): Record<string, Buffer> {
  let seed = 0x9e3779b9;
  const rand = () => { // xorshift32: incompressible enough that btrfs stores it uncompressed
    seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
    return seed & 0xff;
  };
  const random = (n: number) => Buffer.from(Array.from({ length: n }, rand));
  const words = ['btrfs', 'send', 'receive', 'extent', 'zstd', 'lzo', 'zlib', 'inode', 'subvolume', 'snapshot'];
  const text = (n: number) => {
    let s = '';
    let i = 0;
    while (s.length < n) s += words[(i++ * 7 + (rand() % 3)) % words.length] + (i % 13 === 0 ? '\n' : ' ');
    return Buffer.from(s.slice(0, n));
  };
  const mixed = (n: number) => {
    const parts: Buffer[] = [];
    let len = 0;
    for (let i = 0; len < n; i++) {
      const part = i % 2 ? random(3000) : text(5000);
      parts.push(part);
      len += part.length;
    }
    return Buffer.concat(parts).subarray(0, n);
  };
  return {
    'text-10000': text(10000),
    'text-37856': text(37856),
    'text-1M': text(1 << 20),
    'mixed-300000': mixed(300000),
    'random-65536': random(65536),
    'small-1500': text(1500),
    'zeros-200000': Buffer.alloc(200000),
    // rewritten in the middle after the first sync (see kernelCompressedStream): the kernel then sends
    // the head and the tail of the original extent with unencoded_offset 0 and 49152
    'partial-131072': text(131072),
  };
}

export interface KernelStream {
  stream: Buffer;
  files: Record<string, Buffer>;
}

/** Write the sample files on a compress-force=`codec` btrfs, snapshot, send --compressed-data. */
export function kernelCompressedStream(codec: 'zstd' | 'zlib' | 'lzo', files: Record<string, Buffer> = sampleContents()): KernelStream {
  const fs = makeBtrfs({ sizeMiB: 256, mountOptions: `compress-force=${codec}` });
  try {
    run('btrfs', ['subvolume', 'create', join(fs.mnt, 'src')]);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(fs.mnt, 'src', name), content);
    run('sync', []);
    const partial = files['partial-131072'];
    if (partial) {
      // Overwrite [40960, +8192) so the first extent is referenced twice, the second time from 49152.
      const patch = Buffer.alloc(8192, 0x41);
      patch.copy(partial, 40960);
      run('dd', ['of=' + join(fs.mnt, 'src', 'partial-131072'), 'bs=4096', 'seek=10', 'conv=notrunc', 'status=none'], { input: patch });
      run('sync', []);
    }
    run('btrfs', ['subvolume', 'snapshot', '-r', join(fs.mnt, 'src'), join(fs.mnt, 'snap')]);
    const out = join(fs.mnt, '..', 'stream');
    run('btrfs', ['-q', 'send', '--compressed-data', '-f', out, join(fs.mnt, 'snap')]);
    return { stream: readFileSync(out), files };
  } finally {
    fs.cleanup();
  }
}

const LZO_PACKER_C = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* usage: pack SECTOR [999] < raw > container  — the btrfs LZO container around LZO1X-1 (or LZO1X-999) blocks. */
#include <lzo/lzo1x.h>
static void put32(unsigned char *p, unsigned v) { p[0]=v; p[1]=v>>8; p[2]=v>>16; p[3]=v>>24; }
int main(int argc, char **argv) {
  size_t sector = strtoul(argv[1], 0, 10), cap = 1 << 24, n = 0, r;
  unsigned char *in = malloc(cap), *out = calloc(1, cap * 2), *tmp = malloc(sector + sector / 16 + 67);
  int best = argc > 2;
  static lzo_align_t wrk[(LZO1X_999_MEM_COMPRESS + sizeof(lzo_align_t) - 1) / sizeof(lzo_align_t)];
  while ((r = fread(in + n, 1, cap - n, stdin)) > 0) n += r;
  if (lzo_init() != LZO_E_OK) return 2;
  size_t pos = 4;
  for (size_t off = 0; off < n; off += sector) {
    size_t len = n - off < sector ? n - off : sector;
    lzo_uint clen = 0;
    if ((best ? lzo1x_999_compress(in + off, len, tmp, &clen, wrk) : lzo1x_1_compress(in + off, len, tmp, &clen, wrk)) != LZO_E_OK) return 3;
    size_t left = sector - pos % sector;
    if (left < 4) { pos += left; }
    put32(out + pos, clen); pos += 4;
    memcpy(out + pos, tmp, clen); pos += clen;
  }
  /* a trailing header slot that would straddle a boundary is padding too */
  put32(out, pos);
  size_t padded = (pos + sector - 1) / sector * sector;
  fwrite(out, 1, padded, stdout);
  return 0;
}
`;

/**
 * Path of the compiled LZO container packer, or undefined when liblzo2-dev is missing. Built once
 * into a path named after the source's hash (reused by later runs and parallel workers: written to a
 * temporary name, then renamed), so nothing is left behind per run.
 */
export function lzoPacker(): string | undefined {
  if (!existsSync('/usr/include/lzo/lzo1x.h')) return undefined;
  const hash = createHash('sha256').update(LZO_PACKER_C).digest('hex').slice(0, 12);
  const exe = join(tmpdir(), `btrfs-ts-lzo-packer-${hash}`);
  if (existsSync(exe)) return exe;
  const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-lzo-'));
  try {
    writeFileSync(join(dir, 'pack.c'), LZO_PACKER_C);
    const built = spawnSync('cc', ['-O2', '-o', join(dir, 'pack'), join(dir, 'pack.c'), '-llzo2'], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`compiling the LZO packer failed: ${built.stderr}`);
    renameSync(join(dir, 'pack'), exe);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return exe;
}

/** Compress `raw` into a btrfs LZO container with `sectorSize` sectors (liblzo2's LZO1X-1, or LZO1X-999). */
export function packLzo(raw: Buffer, sectorSize: number, compressor: '1' | '999' = '1'): Buffer {
  const packer = lzoPacker();
  if (!packer) throw new Error('liblzo2-dev is not installed');
  const args = compressor === '999' ? [String(sectorSize), '999'] : [String(sectorSize)];
  return execFileSync(packer, args, { input: raw, maxBuffer: 1 << 26 });
}

/** Run a decode; 'corrupt' when it throws CorruptDataError, and any other exception fails the test. */
export function decodeOrCorrupt(decode: () => unknown): 'ok' | 'corrupt' {
  try {
    decode();
    return 'ok';
  } catch (error) {
    if (error instanceof CorruptDataError) return 'corrupt';
    throw error;
  }
}
