// New inodes are created at their final name when the stream's RENAME from the orphan name follows
// right away (src/receive/held-create.ts) — but only where that cannot show: a directory that passes
// something on to what is created in it (default ACL, set-gid, the btrfs.compression property, NOCOW or
// compression inode flags) gets the create-then-rename of the stream. Each kind of directory is here, and
// the result must equal btrfs-progs' in every attribute, inode flags included.
// New regular files keep the owner they were created with when a CHOWN would give them that same one.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { requireBtrfs, makeBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, snapshot } from './helpers/populate.js';
import { btrfsSend, btrfsReceive } from './helpers/receive-harness.js';
import { collectTree, diffTrees, formatDifference } from '../src/lab/compare-trees.js';

const ok = requireBtrfs();
const CLI = resolve(__dirname, '..', 'bin', 'btrfs-ts.js');

/** A file, a directory and a symlink inside `dir`. */
function fill(dir: string): void {
  writeFileSync(join(dir, 'file'), 'data '.repeat(2000));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'inner'), 'x');
  run('ln', ['-s', 'file', join(dir, 'link')]);
}

describe.skipIf(!ok)('new inodes: created at their final name, no-op chowns skipped', () => {
  let src: Btrfs, progs: Btrfs, ours: Btrfs;
  let tmp: string;
  beforeAll(() => {
    src = makeBtrfs({ sizeMiB: 300 });
    progs = makeBtrfs({ sizeMiB: 300 });
    ours = makeBtrfs({ sizeMiB: 300 });
    tmp = mkdtempSync('/dev/shm/btrfs-ts-fused-');
    const vol = join(src.mnt, 'vol');
    makeSubvolume(vol);
    for (const name of ['plain', 'acl', 'sgid', 'prop', 'nocow', 'compress']) mkdirSync(join(vol, name));
    run('setfacl', ['-d', '-m', 'u:1234:rwx', join(vol, 'acl')]);
    chownSync(join(vol, 'sgid'), 0, 4321);
    chmodSync(join(vol, 'sgid'), 0o2775);
    run('btrfs', ['property', 'set', join(vol, 'prop'), 'compression', 'zstd']);
    run('chattr', ['+C', join(vol, 'nocow')]);
    run('chattr', ['+c', join(vol, 'compress')]);
    for (const name of ['plain', 'acl', 'sgid', 'prop', 'nocow', 'compress']) fill(join(vol, name));
    fill(vol);
    // Owners and modes that a skipped no-op CHOWN must not get wrong: another owner, set-uid and
    // set-gid files owned by root, a file with a capability (a CHOWN drops it).
    const plain = join(vol, 'plain');
    writeFileSync(join(plain, 'owned'), 'o');
    chownSync(join(plain, 'owned'), 1000, 1000);
    writeFileSync(join(plain, 'suid'), 's');
    chmodSync(join(plain, 'suid'), 0o4755);
    writeFileSync(join(plain, 'sgid'), 's');
    chmodSync(join(plain, 'sgid'), 0o2755);
    writeFileSync(join(plain, 'cap'), 'c');
    run('setfattr', ['-n', 'security.capability', '-v', '0x0000000200200000000000000000000000000000', join(plain, 'cap')]);
    // Inodes that do not keep what they inherited: a receiver that let them inherit again would differ.
    run('setfacl', ['-b', join(vol, 'acl', 'file')]);
    run('setfacl', ['-b', join(vol, 'acl', 'sub')]);
    run('btrfs', ['property', 'set', join(vol, 'prop', 'file'), 'compression', '']);
    snapshot(vol, join(src.mnt, 'snap'));
  }, 120_000);
  afterAll(() => {
    src?.cleanup(); progs?.cleanup(); ours?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.each([1, 2])('protocol v%i: same result as btrfs receive, inherited ACLs, groups, properties and flags included', (proto) => {
    const stream = join(tmp, `v${proto}.stream`);
    btrfsSend(join(src.mnt, 'snap'), stream, { proto });
    const progsDest = join(progs.mnt, `v${proto}`);
    const oursDest = join(ours.mnt, `v${proto}`);
    mkdirSync(progsDest);
    mkdirSync(oursDest);
    btrfsReceive(stream, progsDest);
    // strace counts the renames: without the fusion there would be one per new inode (35 here).
    const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=rename,renameat,renameat2,chown,lchown,fchown,fchownat', '-o', join(tmp, `strace-v${proto}`),
      process.execPath, CLI, 'receive', '-q', '-f', stream, oursDest], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const calls = readFileSync(join(tmp, `strace-v${proto}`), 'utf8').split('\n');
    const renameCalls = calls.filter((l) => l.includes('rename'));
    const chownCalls = calls.filter((l) => l.includes('chown'));
    const renames = renameCalls.length;

    const expected = collectTree(join(progsDest, 'snap'), { flags: true });
    const actual = collectTree(join(oursDest, 'snap'), { flags: true });
    expect(expected.size).toBe(1 + 4 + 6 * 5 + 4); // root, fill() at the root, six directories and their fill(), 4 owners
    const differences = diffTrees(expected, actual, ['type', 'mode', 'uid', 'gid', 'size', 'mtimeNs', 'rdev', 'nlink', 'target', 'sha256', 'xattrs', 'links', 'flags']);
    expect(differences.map((d) => formatDifference(d, ['progs', 'btrfs-ts']))).toEqual([]);
    // The directories on the receiving side pass things on, and the inodes that should not have them don't.
    expect(actual.get('acl')!.xattrs).toContain('system.posix_acl_default');
    expect(actual.get('acl/file')!.xattrs).not.toContain('system.posix_acl_access');
    expect(actual.get('prop')!.xattrs).toContain('btrfs.compression');
    expect(actual.get('prop/file')!.xattrs).not.toContain('btrfs.compression');
    // Only inodes made in a directory that passes something on were created and renamed: in acl, sgid,
    // prop and compress (chattr +c stores a btrfs.compression property too) file, sub and link, and
    // sub/inner where sub passes it on as well (15 here); without the fusion all 34 new inodes would be.
    expect(renames, renameCalls.join('\n')).toBeGreaterThanOrEqual(4 * 3);
    expect(renames, renameCalls.join('\n')).toBeLessThanOrEqual(4 * 4);
    // CHOWNs to the owner an inode already has are skipped for new regular files, directories and
    // symlinks: btrfs-progs makes one per inode (39); the inodes that get another owner or group
    // (plain/owned, the four in sgid/ made under the root's group) and the regular files after the
    // capability was set get theirs (7 here).
    expect(chownCalls.length, chownCalls.join('\n')).toBeLessThanOrEqual(9);
    expect(chownCalls.length).toBeGreaterThanOrEqual(5);
    expect(actual.get('plain/owned')!.uid).toBe(1000);
    expect(actual.get('plain/suid')!.mode).toBe('4755');
    expect(actual.get('plain/cap')!.xattrs).toContain('security.capability');
  }, 120_000);
});
