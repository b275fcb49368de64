// dup and fcntl for reading a pipe (src/sys/fd-calls.ts): native/fd-calls.c answers as libc through
// koffi does, and with it a dump from a pipe never loads koffi (~8 MiB of resident memory).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadNativeModule, nativeModulePath } from '../src/sys/native-module.js';
import type { FdCalls } from '../src/sys/fd-calls.js';
import { libc } from '../src/sys/libc.js';

const native = loadNativeModule<FdCalls>('fd-calls');
if (native === null) {
  const why = `native fd-calls not built (${nativeModulePath('fd-calls')})`;
  if (process.env.CI) throw new Error(`${why}: scripts/build-native.sh must build it in CI`);
  console.warn(`fd-calls: ${why}; only the koffi fallback runs, and these tests skip`);
}
const viaKoffi: FdCalls = {
  dup: libc.func('int dup(int)') as (fd: number) => number,
  fcntl: libc.func('fcntl', 'int', ['int', 'int', 'int']) as (fd: number, cmd: number, arg: number) => number,
};
const F_GETFL = 3;
const F_GETPIPE_SZ = 1032;
const dist = resolve(__dirname, '..', 'dist');

describe.skipIf(native === null)('native fd calls', () => {
  it('dup gives a new fd for the same file, as libc does; a bad fd gives -1', () => {
    const fd = openSync(__filename, 'r');
    try {
      for (const calls of [native!, viaKoffi]) {
        const copy = calls.dup(fd);
        expect(copy).toBeGreaterThan(fd);
        expect(fstatSync(copy).ino).toBe(fstatSync(fd).ino);
        closeSync(copy);
        expect(calls.dup(1_000_000)).toBe(-1);
      }
      expect(native!.fcntl(fd, F_GETFL, 0)).toBe(viaKoffi.fcntl(fd, F_GETFL, 0));
      expect(native!.fcntl(1_000_000, F_GETFL, 0)).toBe(-1);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses arguments that are not integers', () => {
    expect(() => (native!.dup as (x: unknown) => number)('3')).toThrow(/dup\(fd\)/);
    expect(() => (native!.fcntl as (...x: unknown[]) => number)(0, F_GETFL)).toThrow(/three integers/);
  });

  it('a stream read from a pipe never loads koffi (it does without the module)', () => {
    const script = `
      const { readStream } = await import(${JSON.stringify(`${dist}/stream/reader.js`)});
      const { readFileSync } = await import('node:fs');
      let n = 0;
      for await (const r of readStream(0, { reuseBuffers: true })) n++;
      const koffi = readFileSync('/proc/self/maps', 'utf8').includes('koffi');
      console.log(JSON.stringify({ n, koffi }));`;
    const stream = spawnSync('node', ['--input-type=module', '-e', `
      const { encodeStreamHeader, encodeCommand } = await import(${JSON.stringify(`${dist}/stream/writer.js`)});
      process.stdout.write(encodeStreamHeader(2));
      for (let i = 0; i < 50; i++) process.stdout.write(encodeCommand({ cmd: 'chmod', path: Buffer.from('f' + i), mode: 0o600 }, 2));
      process.stdout.write(encodeCommand({ cmd: 'end' }, 2));`]).stdout;
    expect(stream.length).toBeGreaterThan(1000);
    const run = (env: NodeJS.ProcessEnv) => {
      const r = spawnSync('sh', ['-c', `cat | node --input-type=module -e "$SCRIPT"`], {
        input: stream, env: { ...process.env, SCRIPT: script, ...env }, encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { n: number; koffi: boolean };
    };
    expect(run({})).toEqual({ n: 51, koffi: false });
    expect(run({ BTRFS_TS_NO_NATIVE_FD_CALLS: '1' })).toEqual({ n: 51, koffi: true });
  });
});

