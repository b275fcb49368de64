// Hostile streams, one test per attack: each must fail with a clear error, leave the canary directory
// outside DEST untouched, and never mark the partial subvolume received or read-only.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { readRootItem, findSubvolByUuid } from '../src/sys/subvolume.js';
import { lgetxattrs } from '../src/sys/fs.js';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { collectTree, diffTrees, type TreeInfo } from '../src/lab/compare-trees.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { ourReceive, ourReceiveFailure } from './helpers/receive-harness.js';
import type { Command } from '../src/stream/commands.js';

const ok = requireBtrfs();
const uuidOf = (path: string): Buffer =>
  Buffer.from(/^\s*UUID:\s*(\S+)/m.exec(execFileSync('btrfs', ['subvolume', 'show', path], { encoding: 'utf8' }))![1]!.replace(/-/g, ''), 'hex');
const B = (s: string): Buffer => Buffer.from(s);
async function* bytes(b: Buffer): AsyncGenerator<Buffer> { yield b; }

describe.skipIf(!ok)('hostile streams cannot leave DEST', () => {
  let fs: Btrfs;
  let canary: string;
  let canaryBefore: TreeInfo;
  let topBefore: string[];
  let n = 0;
  let dest: string;
  let uuid: Buffer;

  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 128 });
    canary = join(fs.mnt, 'canary');
    mkdirSync(canary);
    writeFileSync(join(canary, 'secret'), 'canary data that must not change\n'.repeat(200));
    mkdirSync(join(canary, 'sub'));
    collectTree(canary); // the first walk moves relatime atimes past mtime; the baseline is stable after
    canaryBefore = collectTree(canary);
  });
  afterAll(() => fs?.cleanup());
  beforeEach(() => {
    dest = join(fs.mnt, `dest${++n}`);
    mkdirSync(dest);
    topBefore = readdirSync(fs.mnt).sort();
    uuid = randomBytes(16);
  });

  /** Receive `cmds` after SUBVOL 's', expect failure matching `message`, check nothing leaked. */
  async function attack(cmds: Command[], message: RegExp, subvol = 's'): Promise<string> {
    const stream = buildStream(1, [{ cmd: 'subvol', path: B(subvol), uuid, ctransid: 7 }, ...cmds]);
    const { error, log } = await ourReceiveFailure(bytes(stream), dest);
    expect(error.message).toMatch(message);
    expect(error.message.split('\n')).toHaveLength(1);
    expect(diffTrees(canaryBefore, collectTree(canary))).toEqual([]);
    expect(readdirSync(fs.mnt).sort()).toEqual(topBefore);
    if (subvol === 's' && existsSync(join(dest, subvol))) {
      const info = subvolInfo(join(dest, subvol));
      expect(info.readonly).toBe(false);
      expect(info.receivedUuid).toBe('-');
      expect(log.join('\n')).toMatch(/partially received subvolume left at .*\(writable, not marked received\)/);
    }
    return error.message;
  }
  const canaryRel = (dots: number, ...rest: string[]): Buffer => B([...Array(dots).fill('..'), 'canary', ...rest].join('/'));

  it('dot-dot traversal: MKFILE/WRITE ../../canary/pwned', async () => {
    const msg = await attack([
      { cmd: 'mkfile', path: canaryRel(2, 'pwned'), ino: 257 },
      { cmd: 'write', path: canaryRel(2, 'pwned'), offset: 0, data: B('pwned') },
    ], /command #2 \(mkfile\) s\/\.\.\/\.\.\/canary\/pwned .*unsafe path.*'\.\.' component/);
    expect(msg).toMatch(/^receive failed at command #2/);
  });

  it('dot-dot traversal hidden mid-path: WRITE dir/../../../canary/secret', async () => {
    await attack([
      { cmd: 'mkdir', path: B('dir'), ino: 257 },
      { cmd: 'write', path: B('dir/../../../canary/secret'), offset: 0, data: B('pwned') },
    ], /command #3 \(write\).*'\.\.' component/);
  });

  it('absolute path: MKFILE <canary>/pwned', async () => {
    await attack([{ cmd: 'mkfile', path: B(join(canary, 'pwned')), ino: 257 }], /unsafe path .* is absolute/);
  });

  it('symlink then write through it (intermediate component)', async () => {
    await attack([
      { cmd: 'symlink', path: B('lnk'), ino: 257, target: B(canary) },
      { cmd: 'mkfile', path: B('lnk/pwned'), ino: 258 },
      { cmd: 'write', path: B('lnk/pwned'), offset: 0, data: B('pwned') },
    ], /command #3 \(mkfile\) s\/lnk\/pwned .*openat2 lnk failed: .*ELOOP/);
  });

  it('symlink then write through it (final component: WRITE, TRUNCATE, CHMOD)', async () => {
    const target = B(join(canary, 'secret'));
    await attack([
      { cmd: 'symlink', path: B('lnk'), ino: 257, target },
      { cmd: 'write', path: B('lnk'), offset: 0, data: B('pwned') },
    ], /command #3 \(write\) s\/lnk .*not a regular file/);
    dest = join(fs.mnt, `dest${++n}`); mkdirSync(dest); topBefore = readdirSync(fs.mnt).sort();
    await attack([
      { cmd: 'symlink', path: B('lnk'), ino: 257, target },
      { cmd: 'truncate', path: B('lnk'), size: 0 },
    ], /command #3 \(truncate\).*not a regular file/);
    dest = join(fs.mnt, `dest${++n}`); mkdirSync(dest); topBefore = readdirSync(fs.mnt).sort();
    await attack([
      { cmd: 'symlink', path: B('lnk'), ino: 257, target },
      { cmd: 'chmod', path: B('lnk'), mode: 0o777 },
    ], /command #3 \(chmod\).*fchmodat lnk \(a symlink\) failed: Operation not supported/);
  });

  it('symlink planted in the parent snapshot is not followed either (symlinked directory)', async () => {
    // A directory symlink to the canary: RENAME of a file into it must not land outside.
    await attack([
      { cmd: 'symlink', path: B('d'), ino: 257, target: B('../../canary') },
      { cmd: 'mkfile', path: B('f'), ino: 258 },
      { cmd: 'rename', path: B('f'), to: B('d/moved') },
    ], /command #4 \(rename\).*ELOOP/);
  });

  it('a directory replaced by a symlink after use (rmdir, or rename away) is not followed', async () => {
    await attack([
      { cmd: 'mkdir', path: B('d'), ino: 257 },
      { cmd: 'mkfile', path: B('d/x'), ino: 258 },
      { cmd: 'unlink', path: B('d/x') },
      { cmd: 'rmdir', path: B('d') },
      { cmd: 'symlink', path: B('d'), ino: 259, target: B(canary) },
      { cmd: 'mkfile', path: B('d/pwned'), ino: 260 },
    ], /command #7 \(mkfile\) s\/d\/pwned .*ELOOP/);
    dest = join(fs.mnt, `dest${++n}`); mkdirSync(dest); topBefore = readdirSync(fs.mnt).sort();
    await attack([
      { cmd: 'mkdir', path: B('d'), ino: 257 },
      { cmd: 'mkfile', path: B('d/secret'), ino: 258 },
      { cmd: 'rename', path: B('d'), to: B('e') },
      { cmd: 'symlink', path: B('d'), ino: 259, target: B(canary) },
      { cmd: 'write', path: B('d/secret'), offset: 0, data: B('pwned') },
    ], /command #6 \(write\) s\/d\/secret .*ELOOP/);
  });

  it('rename out of DEST', async () => {
    await attack([
      { cmd: 'mkfile', path: B('f'), ino: 257 },
      { cmd: 'rename', path: B('f'), to: canaryRel(2, 'moved') },
    ], /command #3 \(rename\).*unsafe rename destination.*'\.\.' component/);
  });

  it('rename from outside DEST into it (steal)', async () => {
    await attack([{ cmd: 'rename', path: canaryRel(2, 'secret'), to: B('stolen') }], /unsafe rename source/);
  });

  it('link out of DEST and link from outside', async () => {
    await attack([
      { cmd: 'mkfile', path: B('f'), ino: 257 },
      { cmd: 'link', path: canaryRel(2, 'hard'), target: B('f') },
    ], /command #3 \(link\).*'\.\.' component/);
    dest = join(fs.mnt, `dest${++n}`); mkdirSync(dest); topBefore = readdirSync(fs.mnt).sort();
    await attack([{ cmd: 'link', path: B('stolen'), target: canaryRel(2, 'secret') }], /unsafe link target/);
  });

  it('clone out of DEST (CLONE_PATH with .. and through a symlink)', async () => {
    await attack([
      { cmd: 'mkfile', path: B('f'), ino: 257 },
      { cmd: 'clone', path: B('f'), offset: 0, len: 4096, cloneUuid: uuid, cloneCtransid: 7, clonePath: canaryRel(2, 'secret'), cloneOffset: 0 },
    ], /command #3 \(clone\).*unsafe clone source path/);
    dest = join(fs.mnt, `dest${++n}`); mkdirSync(dest); topBefore = readdirSync(fs.mnt).sort();
    await attack([
      { cmd: 'mkfile', path: B('f'), ino: 257 },
      { cmd: 'symlink', path: B('lnk'), ino: 258, target: B(join(canary, 'secret')) },
      { cmd: 'clone', path: B('f'), offset: 0, len: 4096, cloneUuid: uuid, cloneCtransid: 7, clonePath: B('lnk'), cloneOffset: 0 },
    ], /command #4 \(clone\).*not a regular file/);
    expect(existsSync(join(dest, 's', 'f'))).toBe(true);
  });

  it('subvolume name with a slash or dot-dot', async () => {
    await attack([], /command #1 \(subvol\) a\/b .*must be a single component/, 'a/b');
    await attack([], /command #1 \(subvol\) \.\. .*'\.\.' component/, '..');
    expect(readdirSync(dest)).toEqual([]);
  });

  it('parent UUID of an unrelated subvolume (transid mismatch refused)', async () => {
    const unrelated = join(fs.mnt, 'unrelated');
    execFileSync('btrfs', ['subvolume', 'create', unrelated], { stdio: 'pipe' });
    writeFileSync(join(unrelated, 'private'), 'not for the stream');
    const uuidText = /^\s*UUID:\s*(\S+)/m.exec(execFileSync('btrfs', ['subvolume', 'show', unrelated], { encoding: 'utf8' }))![1]!;
    topBefore = readdirSync(fs.mnt).sort();
    const stream = buildStream(1, [
      { cmd: 'snapshot', path: B('s'), uuid, ctransid: 9, cloneUuid: Buffer.from(uuidText.replace(/-/g, ''), 'hex'), cloneCtransid: 123456 },
      { cmd: 'write', path: B('private'), offset: 0, data: B('overwritten') },
    ]);
    const { error } = await ourReceiveFailure(bytes(stream), dest);
    expect(error.message).toMatch(/command #1 \(snapshot\) s .*parent subvolume unrelated .*has ctransid \d+, but the stream needs transid 123456/);
    expect(readdirSync(dest)).toEqual([]);
    expect(diffTrees(canaryBefore, collectTree(canary))).toEqual([]);
  });

  it('a writable parent (right UUID and transid, but it may have changed) is refused', async () => {
    const rw = join(fs.mnt, 'rwparent');
    execFileSync('btrfs', ['subvolume', 'create', rw], { stdio: 'pipe' });
    writeFileSync(join(rw, 'f'), 'x');
    const mntFd = openSync(fs.mnt, 'r');
    let item;
    try { item = readRootItem(mntFd, findSubvolByUuid(mntFd, uuidOf(rw), 'uuid')!)!; } finally { closeSync(mntFd); }
    topBefore = readdirSync(fs.mnt).sort();
    const stream = buildStream(1, [
      { cmd: 'snapshot', path: B('s'), uuid, ctransid: 9, cloneUuid: item.uuid, cloneCtransid: item.ctransid },
    ]);
    const { error } = await ourReceiveFailure(bytes(stream), dest);
    expect(error.message).toMatch(/command #1 \(snapshot\) s .*parent subvolume rwparent .* is not read-only/);
    expect(readdirSync(dest)).toEqual([]);
  });

  // A new subvolume is walked by the kernel (path-resolver.ts, walking mode) only while nobody but root
  // can put a symlink in it. Each grant below must end walking mode before anyone could use it: another
  // user plants a symlink in the directory the stream made writable, between two parts of the stream.
  /** The stream in two parts; `between` runs after the first part is applied, before the second is read. */
  async function* staged(cmdsBefore: Command[], cmdsAfter: Command[], between: () => void): AsyncGenerator<Buffer> {
    const head: Command[] = [{ cmd: 'subvol', path: B('s'), uuid, ctransid: 7 }, ...cmdsBefore];
    const full = buildStream(1, [...head, ...cmdsAfter]);
    const cut = buildStream(1, head, { end: false }).length;
    yield full.subarray(0, cut);
    between();
    yield full.subarray(cut);
  }
  /** Plant `d/x` -> `target` once `d` shows the grant the first part made. */
  const plantAfter = (granted: (st: Stats) => boolean, target: string) => (): void => {
    const d = join(dest, 's', 'd');
    expect(granted(lstatSync(d))).toBe(true); // the first part really was applied
    symlinkSync(target, join(d, 'x'));
  };
  const throughPlanted: Command[] = [
    { cmd: 'mkfile', path: B('d/x/pwned'), ino: 258 },
    { cmd: 'write', path: B('d/x/pwned'), offset: 0, data: B('pwned') },
  ];
  async function plantedAttack(grant: Command, granted: (st: Stats) => boolean): Promise<void> {
    const stream = staged([{ cmd: 'mkdir', path: B('d'), ino: 257 }, grant], throughPlanted, plantAfter(granted, canary));
    const { error } = await ourReceiveFailure(stream, dest);
    expect(error.message).toMatch(/command #4 \(mkfile\) s\/d\/x\/pwned .*ELOOP/);
    expect(diffTrees(canaryBefore, collectTree(canary))).toEqual([]);
    expect(existsSync(join(canary, 'pwned'))).toBe(false);
  }

  it('symlink planted by another user in a directory made world-writable mid-receive (CHMOD)', async () => {
    await plantedAttack({ cmd: 'chmod', path: B('d'), mode: 0o1777 }, (st) => (st.mode & 0o7777) === 0o1777);
  });

  it('symlink planted by another user in a directory given to them mid-receive (CHOWN)', async () => {
    await plantedAttack({ cmd: 'chown', path: B('d'), uid: 1000, gid: 1000 }, (st) => st.uid === 1000);
  });

  it('symlink planted by another user in a directory an ACL opened to them mid-receive (SET_XATTR)', async () => {
    // system.posix_acl_access: version 2; USER_OBJ rwx, USER 1000 rwx, GROUP_OBJ r-x, MASK rwx, OTHER r-x.
    const entry = (tag: number, perm: number, id = 0xffffffff): Buffer => {
      const b = Buffer.alloc(8); b.writeUInt16LE(tag, 0); b.writeUInt16LE(perm, 2); b.writeUInt32LE(id, 4); return b;
    };
    const acl = Buffer.concat([Buffer.from([2, 0, 0, 0]), entry(1, 7), entry(2, 7, 1000), entry(4, 5), entry(0x10, 7), entry(0x20, 5)]);
    await plantedAttack({ cmd: 'set_xattr', path: B('d'), name: B('system.posix_acl_access'), value: acl },
      () => lgetxattrs(Buffer.from(join(dest, 's', 'd'))).get('system.posix_acl_access')?.equals(acl) === true);
  });

  it('control: without a grant the kernel walks the path (a link only root could plant is followed)', async () => {
    // Root is trusted (it could change anything anyway); here it plants d/x -> ../e inside the subvolume.
    // Walking follows it; with walking off (BTRFS_TS_NO_PATH_WALK=1) the same stream fails. This shows
    // that the tests above pass because walking stopped, not because it was never on.
    const run = (): AsyncGenerator<Buffer> => staged(
      [{ cmd: 'mkdir', path: B('d'), ino: 257 }, { cmd: 'mkdir', path: B('e'), ino: 259 }],
      [{ cmd: 'mkfile', path: B('d/x/f'), ino: 258 }],
      plantAfter((st) => (st.mode & 0o777) === 0o700, '../e'));
    await ourReceive(run(), dest, { verbosity: 0 });
    expect(existsSync(join(dest, 's', 'e', 'f'))).toBe(true);
    dest = join(fs.mnt, `dest${++n}`); mkdirSync(dest);
    process.env.BTRFS_TS_NO_PATH_WALK = '1';
    try {
      const { error } = await ourReceiveFailure(run(), dest);
      expect(error.message).toMatch(/command #4 \(mkfile\) s\/d\/x\/f .*ELOOP/);
    } finally {
      delete process.env.BTRFS_TS_NO_PATH_WALK;
    }
  });

  it('a symlink as destination directory component is refused for SUBVOL too (dest itself is trusted)', async () => {
    // DEST is given by the user; the stream may only name a single new entry in it.
    symlinkSync(canary, join(dest, 'evil'));
    await attack([], /command #1 \(subvol\) evil .*(File exists|EEXIST)/, 'evil');
  });
});
