// Every ioctl number, flag, struct size and field offset btrfs-ts hard-codes, compared with what the
// kernel's own headers say: native/abi-check.c is compiled (in a temp dir) and its `NAME VALUE` lines
// are matched against src/sys/constants.ts and every exported `...Layout` table in src/sys/.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as constants from '../src/sys/constants.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const hasCc = spawnSync('cc', ['--version']).status === 0;
if (!hasCc && process.env.CI) throw new Error('the ABI check cannot run in CI: no C compiler (cc)');
if (!hasCc) console.warn('SKIPPING ABI check: no C compiler (cc)');

/** Modules of src/sys that may export `...Layout` tables ({ struct, size, field: offset }). */
const sysModules = readdirSync(join(root, 'src/sys')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));

describe.skipIf(!hasCc)('kernel ABI matches the hard-coded numbers', () => {
  const abi = new Map<string, number>();
  const missing: string[] = [];
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-abi-'));
    const exe = join(dir, 'abi-check');
    const cc = spawnSync('cc', ['-Wall', '-o', exe, join(root, 'native/abi-check.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc native/abi-check.c failed:\n${cc.stderr}`);
    const out = spawnSync(exe, [], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`abi-check failed: ${out.stderr}`);
    for (const line of out.stdout.split('\n')) {
      if (line.startsWith('MISSING ')) missing.push(line.slice(8));
      const m = /^(\S+) (-?\d+)$/.exec(line);
      if (m) abi.set(m[1]!, Number(m[2]));
    }
  });
  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  function expectAbi(name: string, value: number): void {
    const known = abi.get(name);
    if (known === undefined) {
      const why = missing.length ? ` (headers missing on this system: ${missing.join(', ')})` : '';
      throw new Error(`${name} is not printed by native/abi-check.c — add it there${why}`);
    }
    expect(`${name} = ${value}`).toBe(`${name} = ${known}`);
  }

  it('ioctl request numbers (Ioctl.*)', () => {
    for (const [name, value] of Object.entries(constants.Ioctl)) expectAbi(name, value);
  });
  it('struct sizes (StructSize.*)', () => {
    for (const [name, value] of Object.entries(constants.StructSize)) expectAbi(`${name}.size`, value);
  });
  it('flags and tree/key ids', () => {
    for (const [name, value] of Object.entries(constants.SendFlag)) expectAbi(`BTRFS_SEND_FLAG_${name}`, value);
    for (const [name, value] of Object.entries(constants.Falloc)) expectAbi(`FALLOC_FL_${name}`, value);
    for (const [name, value] of Object.entries(constants.Resolve)) expectAbi(`RESOLVE_${name}`, value);
    let n = 0;
    for (const [name, value] of Object.entries(constants)) {
      if (name.startsWith('BTRFS_') && typeof value === 'number') { expectAbi(name, value); n++; }
    }
    expect(n).toBeGreaterThanOrEqual(9);
  });
  it.each(sysModules)('struct layouts exported by src/sys/%s', async (file) => {
    const mod = (await import(/* @vite-ignore */ join(root, 'src/sys', file))) as Record<string, unknown>;
    for (const [exportName, layout] of Object.entries(mod)) {
      // `...Const` objects map C macro names to values.
      if (exportName.endsWith('Const') && typeof layout === 'object' && layout !== null) {
        for (const [name, value] of Object.entries(layout)) if (typeof value === 'number') expectAbi(name, value);
        continue;
      }
      if (!exportName.endsWith('Layout') || typeof layout !== 'object' || layout === null) continue;
      const { struct, ...fields } = layout as Record<string, unknown>;
      if (typeof struct !== 'string') continue;
      for (const [field, value] of Object.entries(fields)) {
        if (typeof value === 'number') expectAbi(`${struct}.${field}`, value);
      }
    }
  });
  it('checks at least the layouts the receive engine relies on', async () => {
    const ioc = await import('../src/sys/btrfs-ioctl.js');
    expect(ioc.SearchKeyLayout.struct).toBe('btrfs_ioctl_search_key');
    expect(abi.get('btrfs_root_item.received_uuid')).toBe(279);
  });
});
