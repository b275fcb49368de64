// The built CLI (bin/btrfs-ts.js → dist/): help, version, usage errors and exit codes.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, cli } from './helpers/cli.js';

const ROOT = join(import.meta.dirname, '..');

/** A usage error: exit 1, nothing on stdout, exactly one stderr line `ERROR: ...`. */
function expectUsageError(args: string[], pattern: RegExp): void {
  const r = cli(args);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^ERROR: /);
  expect(lines[0]).toMatch(pattern);
}

describe('btrfs-ts CLI: help and version', () => {
  it('is built (npm test runs tsc first)', () => {
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.js'))).toBe(true);
  });

  it('--version prints the package version and exits 0', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(`btrfs-ts ${version} (send stream protocol 1-3)`);
    }
  });

  it('started through its shebang, skips NODE_EXTRA_CA_CERTS (no TLS here; parsing the CAs cost 30 ms and 2 MiB)', () => {
    // Run as an executable, so that its `#!/usr/bin/env -S ...` line is what starts node. Node warns on
    // stderr when the variable names a file it cannot load: no warning means node never saw it.
    const r = spawnSync(CLI, ['--version'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/btrfs-ts-ca.pem' } });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stderr.toString()).toBe('');
    // The control: node itself, given the variable, does warn (so the check above can fail).
    const direct = spawnSync(process.execPath, [CLI, '--version'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/btrfs-ts-ca.pem' } });
    expect(direct.stderr.toString()).toMatch(/extra certs/);
  });

  it('--help lists the commands and exit codes', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    for (const word of ['send', 'receive', 'demo', 'Exit status']) expect(r.stdout).toContain(word);
  });

  it('receive --help documents every option of btrfs-progs receive, and ours', () => {
    const r = cli(['receive', '--help']);
    expect(r.status).toBe(0);
    for (const opt of ['-v, --verbose', '-q, --quiet', '-f, --file <FILE>', '-e ', '-C, --chroot', '-E, --max-errors <NERR>',
      '-m <ROOTMOUNT>', '--force-decompress', '--dump', '--json', '--ignore-unknown', '--delete-on-failure', 'DEST',
      'Exit status', 'Examples:']) {
      expect(r.stdout).toContain(opt);
    }
  });

  it('send --help documents every option of btrfs-progs send', () => {
    const r = cli(['help', 'send']);
    expect(r.status).toBe(0);
    for (const opt of ['-e ', '-p, --parent <PARENT>', '-c, --clone-src <CLONE_SRC>', '-f, --file <OUTFILE>', '--no-data',
      '--proto <N>', '--compressed-data', '-v, --verbose', '-q, --quiet', 'SUBVOL', 'Protocol versions']) {
      expect(r.stdout).toContain(opt);
    }
  });
});

describe('btrfs-ts CLI: usage errors exit 1 with one ERROR line', () => {
  it('unknown option', () => expectUsageError(['receive', '--bogus'], /unknown option '--bogus'/));
  it('unknown command', () => expectUsageError(['frobnicate'], /unknown command 'frobnicate'/));
  it('receive without DEST', () => expectUsageError(['receive'], /missing DEST/));
  it('receive --dump with DEST', () => expectUsageError(['receive', '--dump', '/tmp'], /--dump takes no DEST/));
  it('--json without --dump', () => expectUsageError(['receive', '--json', '/tmp'], /--json works only with --dump/));
  it('-E with a non-number', () => expectUsageError(['receive', '-E', 'many', '/tmp'], /max-errors.*'many' is invalid/));
  it('send without a subvolume', () => expectUsageError(['send'], /missing required argument 'SUBVOL'/));
  it('send -p twice (progs: only one parent)', () => expectUsageError(['send', '-p', '/a', '-p', '/b', '-f', '/dev/null', '/tmp'], /^ERROR: you cannot have more than one parent \(-p\)$/));
  it('send -i (progs: removed option)', () => expectUsageError(['send', '-i', '/a', '-f', '/dev/null', '/tmp'], /^ERROR: option -i was removed, use -c instead$/));
  it('missing option argument', () => expectUsageError(['receive', '--dump', '-f'], /argument missing/));

  it('no arguments at all: help on stderr, exit 1', () => {
    const r = cli([]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Usage: btrfs-ts');
  });

  it('demo: help always; without dist/demo/demo.js a clear one-line error', () => {
    const help = cli(['demo', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('demonstration');
    if (!existsSync(join(ROOT, 'dist', 'demo', 'demo.js'))) expectUsageError(['demo'], /demo: not available in this build/);
  });
});
