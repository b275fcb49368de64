// Host to host over a real ssh (a private sshd on 127.0.0.1): btrfs-ts send | ssh … btrfs-ts receive,
// full then incremental, and interoperability with btrfs-progs in both directions. Also: a receiver
// killed mid-transfer makes the sender exit non-zero within seconds, with the kernel's send finished.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBtrfs, requireBtrfs, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, mutateTree, populateVariedTree, seededBytes, snapshot } from './helpers/populate.js';
import { collectTree, diffTrees } from '../src/lab/compare-trees.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { requireSshd, shq, startSshd, type Sshd } from './helpers/sshd.js';

const ok = requireBtrfs() && requireSshd();
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'btrfs-ts.js');
const OURS = `${shq(process.execPath)} ${shq(CLI)}`;

/** Run a bash pipeline; returns every stage's exit status and stderr. */
function pipeline(script: string): { statuses: number[]; stderr: string } {
  const r = spawnSync('bash', ['-c', `${script}\necho "PIPESTATUS=\${PIPESTATUS[*]}" >&2`], {
    encoding: 'utf8', timeout: 180_000, maxBuffer: 1 << 26,
  });
  const m = /PIPESTATUS=([\d ]+)\s*$/.exec(r.stderr);
  return { statuses: m ? m[1]!.trim().split(' ').map(Number) : [-1], stderr: r.stderr.replace(/PIPESTATUS=.*\s*$/, '') };
}

describe.skipIf(!ok)('send and receive over ssh', () => {
  let src: Btrfs;
  let dst: Btrfs;
  let sshd: Sshd;
  const S = (name: string): string => join(src.mnt, name);
  const D = (...names: string[]): string => join(dst.mnt, ...names);
  const remote = (cmd: string): string => sshd.sshCommand(cmd);

  beforeAll(async () => {
    src = makeBtrfs({ sizeMiB: 768, mountOptions: 'compress-force=zstd' });
    dst = makeBtrfs({ sizeMiB: 1024 });
    makeSubvolume(S('data'));
    populateVariedTree(S('data'));
    snapshot(S('data'), S('s1'));
    mutateTree(S('data'));
    snapshot(S('data'), S('s2'));
    makeSubvolume(S('bigsrc'));
    writeFileSync(join(S('bigsrc'), 'big.bin'), seededBytes(96 * 1024 * 1024, 3));
    snapshot(S('bigsrc'), S('big'));
    sshd = await startSshd();
  }, 180_000);

  afterAll(async () => {
    await sshd?.stop();
    dst?.cleanup();
    src?.cleanup();
  });

  /** The received copies of s1 and s2 under `dir` equal the sources and are marked received. */
  function expectReceived(dir: string): void {
    for (const name of ['s1', 's2']) {
      const diffs = diffTrees(collectTree(S(name)), collectTree(D(dir, name)));
      expect(diffs, `${dir}/${name}`).toEqual([]);
      const info = subvolInfo(D(dir, name));
      expect(info.readonly).toBe(true);
      expect(info.receivedUuid).toBe(uuidOf(S(name)));
    }
  }
  function uuidOf(path: string): string {
    const out = spawnSync('btrfs', ['subvolume', 'show', path], { encoding: 'utf8' }).stdout;
    return /^\s*UUID:\s*(\S+)/m.exec(out)![1]!;
  }

  it('sshd answers (sanity)', () => {
    const [cmd, ...args] = sshd.sshArgv('echo hello-from-sshd');
    const r = spawnSync(cmd!, args, { encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout.trim(), `${r.stderr}\n${sshd.log()}`).toBe('hello-from-sshd');
  }, 60_000);

  it('btrfs-ts send --compressed-data | ssh btrfs-ts receive: full, then incremental -p', () => {
    mkdirSync(D('a'));
    const full = pipeline(`${OURS} send -q --compressed-data ${shq(S('s1'))} | ${remote(`${OURS} receive ${shq(D('a'))}`)}`);
    expect(full.statuses, full.stderr).toEqual([0, 0]);
    const incr = pipeline(`${OURS} send -q --compressed-data -p ${shq(S('s1'))} ${shq(S('s2'))} | ${remote(`${OURS} receive ${shq(D('a'))}`)}`);
    expect(incr.statuses, incr.stderr).toEqual([0, 0]);
    expectReceived('a');
  }, 180_000);

  it('btrfs send | ssh btrfs-ts receive (progs → us)', () => {
    mkdirSync(D('b'));
    const full = pipeline(`btrfs send -q ${shq(S('s1'))} | ${remote(`${OURS} receive ${shq(D('b'))}`)}`);
    expect(full.statuses, full.stderr).toEqual([0, 0]);
    const incr = pipeline(`btrfs send -q --compressed-data -p ${shq(S('s1'))} ${shq(S('s2'))} | ${remote(`${OURS} receive ${shq(D('b'))}`)}`);
    expect(incr.statuses, incr.stderr).toEqual([0, 0]);
    expectReceived('b');
  }, 180_000);

  it('btrfs-ts send | ssh btrfs receive (us → progs)', () => {
    mkdirSync(D('c'));
    const full = pipeline(`${OURS} send -q --compressed-data ${shq(S('s1'))} | ${remote(`btrfs receive ${shq(D('c'))}`)}`);
    expect(full.statuses, full.stderr).toEqual([0, 0]);
    const incr = pipeline(`${OURS} send -q -p ${shq(S('s1'))} ${shq(S('s2'))} | ${remote(`btrfs receive ${shq(D('c'))}`)}`);
    expect(incr.statuses, incr.stderr).toEqual([0, 0]);
    expectReceived('c');
  }, 180_000);

  it('a receiver killed mid-transfer makes the sender exit non-zero within seconds', async () => {
    mkdirSync(D('d'));
    const pidFile = join(sshd.dir, 'receiver.pid');
    const doneFile = join(sshd.dir, 'sender.done');
    // The remote shell records its pid, then becomes the receiver (exec keeps the pid).
    const remoteCmd = `echo $$ > ${shq(pidFile)}; exec ${OURS} receive ${shq(D('d'))}`;
    const script = `${OURS} send -q ${shq(S('big'))} | ${remote(remoteCmd)}\n`
      + `echo "\${PIPESTATUS[*]} $(date +%s%3N)" > ${shq(doneFile)}`;
    const job = spawn('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    job.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<void>((resolve) => job.once('exit', () => resolve()));
    // The 96 MiB stream cannot have gone through before the receiver even started: kill it then.
    for (let i = 0; i < 300 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(pidFile), `receiver never started: ${stderr}`).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(pid).toBeGreaterThan(1);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    expect(existsSync(doneFile), `sender still running 30 s after the receiver died: ${stderr}`).toBe(true);
    const [senderStatus, sshStatus, finishedAt] = readFileSync(doneFile, 'utf8').trim().split(' ').map(Number);
    expect(sshStatus).not.toBe(0);
    expect(senderStatus).toBe(1);
    expect(stderr).toContain('ERROR: failed to read stream from kernel: Broken pipe');
    expect(finishedAt! - killedAt).toBeLessThan(10_000);
    // The kernel's send is over: the sent snapshot can be deleted (EPERM while a send uses it).
    const del = spawnSync('btrfs', ['subvolume', 'delete', S('big')], { encoding: 'utf8' });
    expect(del.stderr).toBe('');
    expect(del.status).toBe(0);
  }, 120_000);
});
