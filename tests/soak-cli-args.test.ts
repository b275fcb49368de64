// The soak's command line (src/soak/soak-cli.ts): --help prints the usage and starts nothing; an unknown
// option (a typo) is an error instead of silently starting a default soak that makes loop images.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

const SOAK_CLI = 'dist/soak/soak-cli.js'; // built by `npm test` (tsc) before vitest runs

function soakCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SOAK_CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('soak command line', () => {
  it('--help prints the usage and exits 0 without running a seed', () => {
    const r = soakCli(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run soak -- --seeds N/);
    expect(r.stdout).not.toContain('seed(s)');
  });

  it('an unknown option is an error naming it, with the usage', () => {
    const r = soakCli(['--sedes', '3']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ERROR: unknown option --sedes\nusage: /);
  });
});
