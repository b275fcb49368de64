// The errors users hit most, each produced for real (real streams from btrfs send, real filesystems,
// a real unprivileged user) and checked word for word: the plain error first, then what to do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { closeSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { readStream, type StreamRecord } from '../src/stream/reader.js';
import { subvolGetFlags, subvolSetFlags } from '../src/sys/btrfs-ioctl.js';
import { BTRFS_SUBVOL_RDONLY } from '../src/sys/constants.js';

const repo = resolve(import.meta.dirname, '..');
const bin = join(repo, 'bin/btrfs-ts.js');
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

/** Run the CLI (optionally as nobody, optionally through sh for pipes); stderr lines and status. */
function cli(args: string[], opts: { asNobody?: boolean; input?: Buffer } = {}): { status: number | null; err: string[] } {
  const argv = opts.asNobody ? ['setpriv', ...NOBODY, process.execPath, bin, ...args] : [process.execPath, bin, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { input: opts.input ?? Buffer.alloc(0), encoding: 'utf8' });
  return { status: r.status, err: r.stderr.split('\n').filter((l) => l !== '') };
}

function sh(script: string): { status: number | null; err: string[] } {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  return { status: r.status, err: r.stderr.split('\n').filter((l) => l !== '') };
}

async function records(file: string): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for await (const r of readStream(file)) out.push(r);
  return out;
}

const uuidText = (u: Buffer) => {
  const h = u.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

const ok = requireBtrfs();
describe.skipIf(!ok)('helpful errors', () => {
  let src: Btrfs; // where the snapshots are sent from
  let dst: Btrfs; // a different filesystem to receive into
  let full = '';
  let incr = '';
  beforeAll(() => {
    src = makeBtrfs({ sizeMiB: 256 });
    dst = makeBtrfs({ sizeMiB: 256 });
    const vol = join(src.mnt, 'vol');
    run('btrfs', ['-q', 'subvolume', 'create', vol]);
    mkdirSync(join(vol, 'gone/sub'), { recursive: true });
    writeFileSync(join(vol, 'gone/sub/z'), 'z\n');
    writeFileSync(join(vol, 'gone/keep'), 'keep\n');
    run('sh', ['-c', `head -c 3M /dev/urandom > '${vol}/big'`]);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', vol, join(src.mnt, 's1')]);
    // The incremental step deletes a directory tree: the kernel parks it under orphan names first.
    run('mv', [join(vol, 'gone/keep'), join(vol, 'kept')]);
    run('rm', ['-rf', join(vol, 'gone')]);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', vol, join(src.mnt, 's2')]);
    const files = mkdtempSync('/dev/shm/btrfs-ts-errors-');
    chmodSync(files, 0o755);
    full = join(files, 'full.stream');
    incr = join(files, 'incr.stream');
    run('btrfs', ['send', '-q', '-f', full, join(src.mnt, 's1')]);
    run('btrfs', ['send', '-q', '-p', join(src.mnt, 's1'), '-f', incr, join(src.mnt, 's2')]);
    chmodSync(full, 0o644);
  }, 120_000);
  afterAll(() => {
    src?.cleanup();
    dst?.cleanup();
    if (full) rmSync(resolve(full, '..'), { recursive: true, force: true });
  });

  it('incremental receive without its parent: names the UUID, ctransid and where it looked', async () => {
    const [snap] = await records(incr);
    const c = snap!.command;
    if (c.cmd !== 'snapshot') throw new Error('expected a snapshot command');
    const r = cli(['receive', '-f', incr, dst.mnt]);
    expect(r.status).toBe(1);
    expect(r.err).toEqual([
      'At snapshot s2', // printed before the parent is looked up, as btrfs-progs does
      `ERROR: receive failed at command #1 (snapshot) s2 (stream byte 17): cannot find parent subvolume ${uuidText(c.cloneUuid)}; ` +
      `looked for it (ctransid ${c.cloneCtransid}) among the received UUIDs and the subvolume UUIDs of the whole ` +
      `filesystem mounted at ${dst.mnt}; receive that parent snapshot here first, or make the stream with a -p ` +
      'parent this filesystem already has',
    ]);
  });

  it('empty stream: the sending side failed', () => {
    const vol = join(src.mnt, 'vol'); // not read-only: btrfs send refuses and writes nothing
    const r = sh(`btrfs send '${vol}' | '${process.execPath}' '${bin}' receive '${dst.mnt}'`);
    expect(r.status).toBe(1);
    expect(r.err.sort()).toEqual([
      `ERROR: subvolume ${vol} is not read-only`,
      'ERROR: receive failed: empty stream: no stream header at byte 0; the sending side wrote nothing, so it ' +
      "probably failed: look at its error message (e.g. btrfs send's)",
    ].sort());
  });

  it('truncated stream: the sending side (or what is in between) failed', async () => {
    const cut = 1_000_000;
    const all = await records(full);
    const i = all.findIndex((rec, k) => rec.offset <= cut && (all[k + 1]?.offset ?? Infinity) > cut);
    const hit = all[i]!;
    const nextOffset = all[i + 1]!.offset;
    const r = cli(['receive', dst.mnt], { input: readFileSync(full).subarray(0, cut) });
    expect(r.status).toBe(1);
    expect(r.err).toEqual([
      'At subvol s1',
      `partially received subvolume left at ${dst.mnt}/s1 (writable, not marked received)`,
      `ERROR: receive failed: unexpected end of stream inside command #${hit.index} (${hit.command.cmd}) at byte ${cut}: ` +
      `expected ${nextOffset - cut} more bytes; the stream is cut short, so the sending side (or the pipe, ssh or ` +
      'file copy in between) probably failed: look at its error message',
    ]);
    run('btrfs', ['-q', 'subvolume', 'delete', join(dst.mnt, 's1')]);
  });

  it('ENOENT on an orphan name: explains the wrong parent (here: a parent changed after receiving)', async () => {
    const dest = join(dst.mnt, 'orphan');
    mkdirSync(dest);
    expect(cli(['receive', '-q', '-f', full, dest]).status).toBe(0);
    // Someone made the received parent writable behind btrfs' back and deleted a file.
    const parent = join(dest, 's1');
    const fd = openSync(parent, 'r');
    try {
      const flags = subvolGetFlags(fd, parent);
      subvolSetFlags(fd, flags & ~BTRFS_SUBVOL_RDONLY, parent);
      unlinkSync(join(parent, 'gone/sub/z'));
      subvolSetFlags(fd, flags, parent);
    } finally {
      closeSync(fd);
    }
    // The stream's first command on the missing file goes through an orphan name.
    const rec = (await records(incr)).find((x) => x.command.cmd === 'unlink' && x.command.path.toString().endsWith('/z'))!;
    const path = (rec.command as { path: Buffer }).path.toString();
    const orphan = path.split('/')[0]!;
    expect(orphan).toMatch(/^o\d+-\d+-\d+$/);
    const r = cli(['receive', '-f', incr, dest]);
    expect(r.status).toBe(1);
    expect(r.err).toEqual([
      'At snapshot s2',
      `partially received subvolume left at ${dest}/s2 (writable, not marked received)`,
      `ERROR: receive failed at command #${rec.index} (unlink) s2/${path} (stream byte ${rec.offset}): unlinkat z failed: ` +
      `No such file or directory (ENOENT); ${orphan} is a temporary name the sender gives inodes it creates or moves, ` +
      'and it is missing here; that usually means the stream was made with a -p parent other than the one received ' +
      'here (or the parent was changed after it was received), or a bug in the sending kernel',
    ]);
  });

  it('receive into a directory that is not on btrfs', () => {
    const dir = mkdtempSync('/dev/shm/btrfs-ts-notbtrfs-');
    try {
      const r = cli(['receive', '-f', full, dir]);
      expect(r.status).toBe(1);
      expect(r.err).toEqual([
        `ERROR: receive failed: ${dir} doesn't belong to btrfs mount point; receive into a directory of a mounted btrfs filesystem`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('receive as a normal user', () => {
    chmodSync(resolve(dst.mnt, '..'), 0o755);
    const dest = join(dst.mnt, 'unprivileged');
    mkdirSync(dest);
    chmodSync(dest, 0o777);
    const r = cli(['receive', '-f', full, dest], { asNobody: true });
    expect(r.status).toBe(1);
    expect(r.err).toEqual([
      'At subvol s1',
      `partially received subvolume left at ${dest}/s1 (writable, not marked received)`,
      'ERROR: receive failed at command #2 (chown) s1 (stream byte 65): fchown  failed: Operation not permitted (EPERM); ' +
      'receive needs root (it creates subvolumes, device nodes and owners): run it as root, e.g. with sudo',
    ]);
  });

  it('send of a read-write subvolume', () => {
    const vol = join(src.mnt, 'vol');
    const r = cli(['send', '-f', '/dev/null', vol]);
    expect(r.status).toBe(1);
    expect(r.err).toEqual([
      `ERROR: subvolume ${vol} is not read-only; send needs a read-only snapshot: make one with ` +
      `"btrfs subvolume snapshot -r ${vol} ${vol}.ro" and send that`,
    ]);
  });

  it('send of something that is not on btrfs', () => {
    const r = cli(['send', '-f', '/dev/null', '/dev/shm']);
    expect(r.status).toBe(1);
    expect(r.err).toEqual([
      "ERROR: /dev/shm doesn't belong to btrfs mount point; send works only on subvolumes of a mounted btrfs: " +
      'give the path of a read-only snapshot there',
    ]);
  });

  it('send as a normal user', () => {
    chmodSync(resolve(src.mnt, '..'), 0o755);
    const s1 = join(src.mnt, 's1');
    const out = join(resolve(full, '..'), 'nobody.stream');
    writeFileSync(out, '');
    chmodSync(out, 0o666);
    const r = cli(['send', '-f', out, s1], { asNobody: true });
    expect(r.status).toBe(1);
    expect(r.err).toEqual([
      `ERROR: failed to determine mount point for ${s1}: Operation not permitted; send needs root (CAP_SYS_ADMIN): ` +
      'run it as root, e.g. with sudo',
    ]);
    expect(statSync(out).size).toBe(0);
  });
});
