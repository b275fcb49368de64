// Page-aligned read targets (src/sys/aligned-buffer.ts): on this machine the kernel copies into memory
// that is not 64-byte aligned 4-5x slower, so every window that reads a stream file must hand read(2)
// a page-aligned destination. Checked from the outside: strace shows the buffer address of each read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { addressOffset, allocAligned, READ_ALIGNMENT } from '../src/sys/aligned-buffer.js';
import { loadNativeModule, nativeModulePath } from '../src/sys/native-module.js';
import { encodeCommand, encodeStreamHeader } from '../src/stream/writer.js';

const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
const koffiOffset = (b: Buffer, alignment: number): number => Number(BigInt(koffi.address(b) as bigint) % BigInt(alignment));

const nativeBuilt = loadNativeModule('buffer-address') !== null;
if (!nativeBuilt) {
  const why = `native buffer-address not built (${nativeModulePath('buffer-address')})`;
  if (process.env.CI) throw new Error(`${why}: scripts/build-native.sh must build it in CI`);
  console.warn(`aligned-buffer: ${why}; the koffi fallback is what is tested, and the native argument check is skipped`);
}

describe('allocAligned / addressOffset', () => {
  it('gives buffers of the asked size whose first byte is on the boundary', () => {
    for (const size of [1, 100, 4095, 4096, 65536, 300_000, 1 << 20]) {
      for (const alignment of [64, 4096]) {
        const b = allocAligned(size, alignment);
        expect(b.length).toBe(size);
        expect(koffiOffset(b, alignment)).toBe(0);
        b.fill(0xab); // all of it is ours to write
        expect(b[size - 1]).toBe(0xab);
      }
    }
  });

  it('tells the same offset as koffi for any view', () => {
    const base = Buffer.allocUnsafeSlow(10_000);
    for (let start = 0; start < 200; start += 7) {
      const view = base.subarray(start);
      for (const alignment of [1, 16, 64, 4096]) expect(addressOffset(view, alignment)).toBe(koffiOffset(view, alignment));
    }
  });

  // The koffi fallback does not check (it is only ever called with READ_ALIGNMENT); the warning above says so.
  it.skipIf(!nativeBuilt)('native: refuses an alignment that is not a power of two', () => {
    expect(() => addressOffset(Buffer.alloc(8), 3)).toThrow(/power of two/);
  });
});

/** Addresses of the reads of `size` ≥ one page that `argv` makes (strace, raw arguments), by syscall. */
function readTargets(argv: string[], env: NodeJS.ProcessEnv): number[] {
  const trace = spawnSync('strace', ['-f', '-qq', '-e', 'trace=read,pread64', '-e', 'raw=read,pread64', process.execPath, ...argv], {
    env, encoding: 'utf8', maxBuffer: 256 << 20,
  });
  expect(trace.status).toBe(0);
  const addresses: number[] = [];
  // e.g. "[pid 123] pread64(0x15, 0x7f12a4001000, 0x40000, 0) = 0x40000"
  for (const m of trace.stderr.matchAll(/\b(?:pread64|read)\(0x[0-9a-f]+, 0x([0-9a-f]+), 0x([0-9a-f]+)/g)) {
    if (parseInt(m[2]!, 16) >= 256 * 1024) addresses.push(Number(BigInt(`0x${m[1]}`) % BigInt(READ_ALIGNMENT)));
  }
  return addresses;
}

describe('the windows that read stream files hand read(2) page-aligned memory', () => {
  let dir: string;
  let stream: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-aligned-'));
    // Commands of odd sizes, so that a carried-over tail is never a whole number of pages.
    const parts = [encodeStreamHeader(1), encodeCommand({ cmd: 'subvol', path: Buffer.from('s'), uuid: Buffer.alloc(16, 1), ctransid: 5 }, 1)];
    for (let i = 0; i < 40; i++) {
      parts.push(encodeCommand({ cmd: 'write', path: Buffer.from(`f${i}`), offset: 0, data: Buffer.alloc(48_000 + 37 * i, i) }, 1));
    }
    parts.push(encodeCommand({ cmd: 'end' }, 1));
    stream = join(dir, 'odd.stream');
    writeFileSync(stream, Buffer.concat(parts));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const strace = spawnSync('strace', ['-V']);
  if (strace.status !== 0 && process.env.CI) throw new Error('strace is needed for the read-alignment tests');
  const itStrace = strace.status === 0 ? it : it.skip;
  if (strace.status !== 0) console.warn('skipping read-alignment tests: strace not installed');

  const bin = resolve('bin/btrfs-ts.js');
  itStrace('--dump, read ahead by the native thread and read synchronously', () => {
    for (const off of [undefined, '1']) {
      const targets = readTargets([bin, 'receive', '--dump', '-f', stream], { ...process.env, BTRFS_TS_NO_READ_AHEAD: off });
      expect(targets.length).toBeGreaterThanOrEqual(4);
      expect(targets.filter((a) => a !== 0)).toEqual([]);
    }
  });

  for (const reuse of [true, false]) {
    itStrace(`readStream ${reuse ? 'with reused buffers (the receive), read ahead on libuv' : 'with fresh buffers (the library default)'}`, () => {
      const script = `import('${resolve('dist/stream/reader.js')}').then(async ({ readStream }) => {
        let n = 0; for await (const r of readStream('${stream}', { reuseBuffers: ${reuse} })) n++;
        if (n !== 42) throw new Error('commands: ' + n);
      })`;
      const targets = readTargets(['-e', script], process.env);
      expect(targets.length).toBeGreaterThanOrEqual(reuse ? 4 : 1);
      expect(targets.filter((a) => a !== 0)).toEqual([]);
    });
  }
});
