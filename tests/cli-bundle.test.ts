// bin/btrfs-ts.js runs the CommonJS bundle of the CLI (scripts/bundle-cli.mjs) when it is current, and
// dist/cli/main.js otherwise: the bundle must behave exactly like the modules, and a stale one must never run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './helpers/cli.js';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(ROOT, 'tests', 'fixtures', 'codec');

/** Run the bin as an executable (its shebang and bin/package.json apply), with NODE_DEBUG=module. */
function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): { stdout: Buffer; stderr: string; status: number | null } {
  const r = spawnSync(bin, args, { env: { ...process.env, NODE_DEBUG: 'module', ...env }, maxBuffer: 1 << 26 });
  return { stdout: r.stdout, stderr: r.stderr.toString(), status: r.status };
}

describe('bin/btrfs-ts.js and the CLI bundle', () => {
  it('the build made a bundle, and the bin loads it', () => {
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.bundle.cjs'))).toBe(true);
    const r = run(CLI, ['--version']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('main.bundle.cjs');
  });

  it('the bundle prints the same dumps as the modules (BTRFS_TS_NO_BUNDLE=1), byte for byte', () => {
    for (const stream of ['v1-full.stream', 'v2-compressed.stream', 'v2-two-subvols-e.stream']) {
      for (const extra of [[], ['--json']]) {
        const args = ['receive', '--dump', ...extra, '-f', join(FIXTURES, stream)];
        const bundled = run(CLI, args);
        const modules = run(CLI, args, { BTRFS_TS_NO_BUNDLE: '1' });
        expect(bundled.status, bundled.stderr).toBe(0);
        expect(modules.status, modules.stderr).toBe(0);
        expect(bundled.stderr).toContain('main.bundle.cjs');
        expect(modules.stderr).not.toContain('main.bundle.cjs');
        expect(bundled.stdout.length).toBeGreaterThan(0);
        expect(bundled.stdout.equals(modules.stdout)).toBe(true);
      }
    }
  });

  it('the bundle reports errors like the modules (one line, exit code)', () => {
    const args = ['receive', '--dump', '-f', join(ROOT, 'tests', 'no-such-stream')];
    const quiet = { NODE_DEBUG: '' };
    const bundled = run(CLI, args, quiet);
    const modules = run(CLI, args, { ...quiet, BTRFS_TS_NO_BUNDLE: '1' });
    expect(bundled.status).not.toBe(0);
    expect(bundled.status).toBe(modules.status);
    expect(bundled.stderr).toBe(modules.stderr);
    expect(bundled.stderr.trim().split('\n')).toHaveLength(1);
  });

  describe('which program the bin picks (a copy of the bin with stand-in programs)', () => {
    let dir: string;
    let bin: string;
    let bundle: string;
    let modules: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-bin-'));
      mkdirSync(join(dir, 'bin'));
      mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
      bin = join(dir, 'bin', 'btrfs-ts.js');
      copyFileSync(CLI, bin);
      copyFileSync(join(ROOT, 'bin', 'package.json'), join(dir, 'bin', 'package.json'));
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
      modules = join(dir, 'dist', 'cli', 'main.js');
      bundle = join(dir, 'dist', 'cli', 'main.bundle.cjs');
      writeFileSync(modules, "export async function main() { process.stdout.write('modules'); return 0; }\n");
      writeFileSync(bundle, "exports.main = async () => { process.stdout.write('bundle'); return 3; };\n");
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const picked = (env: NodeJS.ProcessEnv = {}): { out: string; status: number | null } => {
      const r = run(bin, [], { NODE_DEBUG: '', ...env });
      return { out: r.stdout.toString(), status: r.status };
    };

    it('a bundle newer than dist/cli/main.js: the bundle (and its exit status)', () => {
      utimesSync(modules, 1_000_000, 1_000_000);
      utimesSync(bundle, 2_000_000, 2_000_000);
      expect(picked()).toEqual({ out: 'bundle', status: 3 });
    });

    it('a bundle older than dist/cli/main.js (tsc ran after it): the modules, never stale code', () => {
      utimesSync(modules, 2_000_000, 2_000_000);
      utimesSync(bundle, 1_000_000, 1_000_000);
      expect(picked()).toEqual({ out: 'modules', status: 0 });
    });

    it('BTRFS_TS_NO_BUNDLE=1, or no bundle at all: the modules', () => {
      utimesSync(modules, 1_000_000, 1_000_000);
      utimesSync(bundle, 2_000_000, 2_000_000);
      expect(picked({ BTRFS_TS_NO_BUNDLE: '1' })).toEqual({ out: 'modules', status: 0 });
      rmSync(bundle);
      expect(picked()).toEqual({ out: 'modules', status: 0 });
    });

    it('a program that stops waiting on a promise that never settles: one ERROR line and exit 1, not 0', () => {
      utimesSync(modules, 1_000_000, 1_000_000);
      writeFileSync(bundle, "exports.main = () => new Promise(() => { process.stdout.write('stuck'); });\n");
      utimesSync(bundle, 2_000_000, 2_000_000);
      const r = run(bin, [], { NODE_DEBUG: '' });
      expect(r.stdout.toString()).toBe('stuck');
      expect(r.status).toBe(1);
      expect(r.stderr.toString()).toMatch(/^ERROR: internal error: btrfs-ts stopped before it had finished .*\n$/);
    });

    it('a program that fails to load: one ERROR line and exit 1', () => {
      writeFileSync(modules, 'this is not javascript\n');
      const r = run(bin, [], { NODE_DEBUG: '' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^ERROR: .+\n$/);
    });
  });
});
