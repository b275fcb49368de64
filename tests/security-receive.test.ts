// Hostile streams, one test per attack: each must fail with a clear error, leave the canary directory
// outside DEST untouched, and never mark the partial subvolume received or read-only.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { readRootItem, findSubvolByUuid } from '../src/sys/subvolume.js';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { collectTree, diffTrees, type TreeInfo } from '../src/lab/compare-trees.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { ourReceiveFailure } from './helpers/receive-harness.js';
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

  it('a symlink as destination directory component is refused for SUBVOL too (dest itself is trusted)', async () => {
    // DEST is given by the user; the stream may only name a single new entry in it.
    symlinkSync(canary, join(dest, 'evil'));
    await attack([], /command #1 \(subvol\) evil .*(File exists|EEXIST)/, 'evil');
  });
});
