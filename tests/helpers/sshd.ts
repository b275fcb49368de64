// A private OpenSSH server for end-to-end tests: Debian's sshd on 127.0.0.1 and a free port, with a
// host key, a user key and an authorized_keys file generated in a temporary directory. Root may log in
// with that key only. Nothing outside the temporary directory is configured (except /run/sshd, the
// privilege-separation directory sshd insists on, created if missing).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

export interface Sshd {
  port: number;
  /** Temporary directory holding keys, config and anything the test wants to put there. */
  dir: string;
  /** argv of an ssh client that runs `remoteCommand` as root on this server. */
  sshArgv(remoteCommand: string): string[];
  /** The same as one shell-quoted string (for use inside `bash -c`). */
  sshCommand(remoteCommand: string): string;
  /** What sshd printed (-e: logs to stderr), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/** sshd's path, or undefined when openssh-server is not installed. */
export function sshdPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v sshd || ls /usr/sbin/sshd'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  return found && existsSync(found) ? found : undefined;
}

/** Why the ssh tests cannot run, or undefined. */
export function sshUnavailableReason(): string | undefined {
  if (!sshdPath()) return 'sshd (openssh-server) is not installed';
  if (spawnSync('sh', ['-c', 'command -v ssh && command -v ssh-keygen']).status !== 0) return 'ssh/ssh-keygen (openssh-client) missing';
  return undefined;
}

/** Like requireBtrfs(): in CI a missing prerequisite fails; elsewhere the tests are skipped. */
export function requireSshd(): boolean {
  const reason = sshUnavailableReason();
  if (reason === undefined) return true;
  if (process.env.CI) throw new Error(`ssh tests cannot run in CI: ${reason}`);
  console.warn(`SKIPPING ssh tests: ${reason}`);
  return false;
}

export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function keygen(path: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'btrfs-ts-test', '-f', path]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.toString()}`);
}

export async function startSshd(): Promise<Sshd> {
  const sshd = sshdPath();
  if (!sshd) throw new Error('sshd not installed');
  const dir = mkdtempSync('/tmp/btrfs-ts-sshd-');
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'user_key'));
  copyFileSync(join(dir, 'user_key.pub'), join(dir, 'authorized_keys'));
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(config, [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The key lives under /tmp (world-writable): skip the ownership walk of its path.
    'StrictModes no',
    'X11Forwarding no',
    'PrintMotd no',
    'LogLevel ERROR',
    '',
  ].join('\n'));
  const child: ChildProcess = spawn(sshd, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  let exited = false;
  child.once('exit', () => { exited = true; });
  for (let i = 0; i < 100 && !(await canConnect(port)); i++) {
    if (exited) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (exited || !(await canConnect(port))) {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start: ${log}`);
  }
  const sshArgv = (remote: string): string[] => [
    'ssh', '-i', join(dir, 'user_key'), '-p', String(port),
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
    '-o', 'LogLevel=ERROR', '-o', 'IdentitiesOnly=yes',
    'root@127.0.0.1', remote,
  ];
  return {
    port,
    dir,
    sshArgv,
    sshCommand: (remote) => sshArgv(remote).map(shq).join(' '),
    log: () => log,
    async stop() {
      if (!exited) {
        const done = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
        if (!exited) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
