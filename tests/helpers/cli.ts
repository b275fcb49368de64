// Run the built CLI (bin/btrfs-ts.js → dist/) in a child process.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'btrfs-ts.js');

export function cli(args: string[], input?: Buffer | string, env: NodeJS.ProcessEnv = {}): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  return { stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString(), status: r.status };
}
