// Varied, deterministic directory trees on a real btrfs, for send/receive/dump tests.
//
//   populateVariedTree(dir, { big? })  fill `dir` (a subvolume, usually) with every kind of inode and
//                                      attribute a send stream can carry, odd names included.
//   mutateTree(dir)                    the incremental step: renames (incl. a swap and a move under a
//                                      former sibling), file<->dir replacement, deletes, overwrites,
//                                      truncations, hole punching, link changes, chmod/chown-only
//                                      changes, xattr removal, a fileattr change, a new reflink.
//   snapshot(src, dst)                 `btrfs subvolume snapshot -r src dst`.
//   makeSubvolume(path)                `btrfs subvolume create path`.
//   ODD_NAMES                          the odd names the tree contains (raw bytes), for assertions.
//
// Must run as root on btrfs (mknod, chown, trusted.* xattrs, reflinks). Data is pseudo-random from a
// fixed seed, so two runs produce identical file contents (times differ only in ctime/otime, which
// cannot be set). Everything is synchronous: tests call it from beforeAll.
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';
import { cloneRange } from '../../src/soak/random-tree.js';

export interface PopulateOptions {
  /** Larger files (tens of MiB instead of a few). */
  big?: boolean;
  /** Seed for file contents; default 1. */
  seed?: number;
}

const B = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Odd names present in the populated tree (top level), as raw bytes. */
export const ODD_NAMES: Buffer[] = [
  B('name with space'),
  B('new\nline'),
  B('back\\slash'),
  B('tab\tand\rcr'),
  B('ctrl\x01\x1b\x7f'),
  Buffer.concat([Buffer.from([0xff, 0xfe]), B('-not-utf8')]),
  B('ünïcödé-日本語'),
  B('-dash %s %n "quotes" \'single\''),
  B('L'.repeat(255)),
];

/** Deterministic pseudo-random bytes: AES-128-CTR keystream of a seed. */
export function seededBytes(length: number, seed: number, stream = 0): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  key.writeUInt32LE(stream >>> 0, 4);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(length));
}

/** Deterministic, well compressible text of about `length` bytes. */
export function compressibleText(length: number, seed: number): Buffer {
  const words = ['btrfs', 'send', 'receive', 'stream', 'extent', 'inode', 'subvolume', 'snapshot', 'clone',
    'zstd', 'lzo', 'zlib', 'checksum', 'metadata', 'chunk', 'balance', 'scrub', 'qgroup'];
  const rnd = seededBytes(Math.ceil(length / 6) + 64, seed, 7);
  const parts: string[] = [];
  let size = 0;
  for (let i = 0, line = 0; size < length; line++) {
    let text = `${String(line).padStart(8, '0')}:`;
    for (let w = 0; w < 8; w++) text += ' ' + words[rnd[i++ % rnd.length]! % words.length];
    text += '\n';
    parts.push(text);
    size += text.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

/** Quote raw bytes for bash: $'\xHH...' (safe for any byte except NUL). */
function shq(p: Buffer | string): string {
  const bytes = typeof p === 'string' ? Buffer.from(p) : p;
  let out = "$'";
  for (const b of bytes) out += '\\x' + b.toString(16).padStart(2, '0');
  return out + "'";
}

function join(dir: string, ...names: (string | Buffer)[]): Buffer {
  return Buffer.concat([B(dir), ...names.flatMap((n) => [B('/'), typeof n === 'string' ? B(n) : n])]);
}

function bash(script: string): void {
  execFileSync('bash', ['-euo', 'pipefail'], { input: script, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
}

function have(cmd: string): boolean {
  try {
    execFileSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Reflink `len` bytes of `src` at `srcOff` into `dst` at `dstOff` (FICLONERANGE). */
export { cloneRange };

function writeAt(path: Buffer | string, offset: number, data: Buffer): void {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
  try {
    fs.writeSync(fd, data, 0, data.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Create a unix socket file at `path` (the listening process exits, the inode stays). */
function makeSocket(path: string): void {
  const code = `const s=require('net').createServer();s.listen(process.argv[1],()=>process.exit(0));`;
  execFileSync(process.execPath, ['-e', code, path], { stdio: 'ignore' });
}

/** Fill `dir` with a varied tree. Deterministic contents; run as root on btrfs. */
export function populateVariedTree(dir: string, opts: PopulateOptions = {}): void {
  const seed = opts.seed ?? 1;
  const MiB = 1024 * 1024;
  const p = (...names: (string | Buffer)[]): Buffer => join(dir, ...names);

  // Directories, nested and odd.
  for (const d of ['dir1', 'dir1/sub', 'dir2', 'dir with space', 'a', 'a/b', 'a/b/c', 'a/b/c/d', 'a/b/c/d/e',
    'swap_x', 'swap_y', 'moveme', 'target', 'd2f', 'd2f/inner', 'many', 'sticky', 'setgid']) {
    fs.mkdirSync(p(d));
  }

  // Regular files: empty, tiny (inline extent), page-sized, odd-sized, multi-MiB random and compressible.
  fs.writeFileSync(p('empty'), Buffer.alloc(0));
  fs.writeFileSync(p('small.txt'), 'hello, btrfs send stream\n');
  fs.writeFileSync(p('page.bin'), seededBytes(4096, seed, 1));
  fs.writeFileSync(p('odd-size.bin'), seededBytes(100_003, seed, 2));
  fs.writeFileSync(p('random.bin'), seededBytes((opts.big ? 24 : 3) * MiB + 12345, seed, 3));
  fs.writeFileSync(p('compressible.txt'), compressibleText((opts.big ? 32 : 4) * MiB + 777, seed));
  fs.writeFileSync(p('zeros.bin'), Buffer.alloc(MiB));
  fs.writeFileSync(p('a/b/c/d/e/deep.txt'), 'deep\n');
  fs.writeFileSync(p('dir1/sub/file'), 'target of a relative symlink\n');
  fs.writeFileSync(p('moveme/inside.txt'), 'moved with its dir\n');
  fs.writeFileSync(p('d2f/inner/x'), 'gone when d2f becomes a file\n');
  fs.writeFileSync(p('f2d'), 'becomes a dir\n');
  fs.writeFileSync(p('swap_x/in_x'), 'x\n');
  fs.writeFileSync(p('swap_y/in_y'), 'y\n');
  for (let i = 0; i < 40; i++) fs.writeFileSync(p('many', `f${String(i).padStart(3, '0')}`), `${i}\n`);

  // Sparse: holes at the start, in the middle and at the end.
  const sparse = p('sparse.bin');
  fs.writeFileSync(sparse, Buffer.alloc(0));
  fs.truncateSync(sparse, 8 * MiB);
  writeAt(sparse, 64 * 1024, seededBytes(4096, seed, 4));
  writeAt(sparse, MiB, seededBytes(200 * 1024, seed, 5));
  writeAt(sparse, 5 * MiB + 123, Buffer.from('unaligned island'));

  // Reflinks: a whole-file copy and a range clone inside another file (CLONE commands).
  execFileSync('cp', ['--reflink=always', `${dir}/random.bin`, `${dir}/reflink.bin`]);
  fs.writeFileSync(p('partial-clone.bin'), seededBytes(512 * 1024, seed, 6));
  cloneRange(p('random.bin'), MiB, 256 * 1024, p('partial-clone.bin'), 128 * 1024);
  cloneRange(p('partial-clone.bin'), 0, 64 * 1024, p('partial-clone.bin'), 448 * 1024);

  // Odd names (files), plus one odd directory with a child.
  for (const [i, name] of ODD_NAMES.entries()) fs.writeFileSync(p(name), `odd name #${i}\n`);
  const oddDir = Buffer.concat([Buffer.from([0xff]), B(' dir\n')]);
  fs.mkdirSync(p(oddDir));
  fs.writeFileSync(p(oddDir, 'child'), 'child of an odd dir\n');
  // A clone whose source has an odd name (dump escaping of `from=`).
  fs.writeFileSync(p(ODD_NAMES[0]!), seededBytes(64 * 1024, seed, 8));
  cloneRange(p(ODD_NAMES[0]!), 0, 64 * 1024, p('clone-of-odd.bin'), 0);

  // Hardlinks across directories, one with an odd name.
  fs.linkSync(p('small.txt'), p('dir1', 'hard_a'));
  fs.linkSync(p('small.txt'), p('dir2', 'hard b'));
  fs.linkSync(p('page.bin'), p('dir2', 'page-link'));
  fs.linkSync(p(ODD_NAMES[1]!), p('dir2', 'link to newline'));

  // Symlinks: relative, absolute, dangling, odd target bytes, and one inside a dir.
  fs.symlinkSync('dir1/sub/file', p('link_rel'));
  fs.symlinkSync('/etc/passwd', p('link_abs'));
  fs.symlinkSync('does/not/exist', p('link_dangling'));
  fs.symlinkSync(Buffer.concat([B('target with space\\'), Buffer.from([0xfe, 0x0a])]), p('link_odd'));
  fs.symlinkSync('../small.txt', p('dir2', 'up'));

  // Special files.
  makeSocket(`${dir}/socket`);
  const xattrCmds: string[] = [];
  const acl = have('setfacl');
  const setfattr = have('setfattr');

  const script: string[] = [`cd ${shq(dir)}`];
  script.push('mkfifo fifo', 'mknod chardev c 1 3', 'mknod blockdev b 7 200', 'mknod bigdev c 300 70000');
  script.push('chmod 600 fifo', 'chmod 640 blockdev');

  // Modes: setuid/setgid/sticky/none.
  script.push('chmod 4755 odd-size.bin', 'chmod 2750 page.bin', 'chmod 0 empty', 'chmod 1777 sticky',
    'chmod 2775 setgid', 'chmod 0444 zeros.bin', 'chmod 711 dir2');

  // Owners: several uids/gids, including a symlink (lchown).
  script.push('chown 1000:1000 small.txt', 'chown 65534:65534 random.bin', 'chown 1234:5678 dir1',
    'chown -h 4242:4343 link_abs', 'chown 0:100 fifo', 'chown 2000:2001 sparse.bin');

  // Xattrs: text, binary with NULs, empty, long value, odd name, on a dir, on a symlink (trusted.*),
  // a file capability (receive must restore it after chown), and POSIX ACLs.
  if (setfattr) {
    xattrCmds.push(
      'setfattr -n user.comment -v "a plain comment" small.txt',
      'setfattr -n user.binary -v 0x00ff10ee0001 random.bin',
      'setfattr -n user.empty compressible.txt',
      `setfattr -n user.long -v ${'v'.repeat(3000)} page.bin`,
      `setfattr -n ${shq('user.name with space\\')} -v ${shq('value with space\nnewline')} dir1`,
      'setfattr -n user.dirattr -v dir-value dir2',
      'setfattr -h -n trusted.onlink -v on-symlink link_rel',
      'setfattr -n security.capability -v 0x0100000200040000000000000000000000000000 odd-size.bin',
      `setfattr -n user.odd -v 1 ${shq(ODD_NAMES[5]!)}`,
      'setfattr -n user.remove_me -v soon sparse.bin',
    );
  }
  if (acl) xattrCmds.push('setfacl -m u:1000:rwx,g:100:r-x zeros.bin', 'setfacl -d -m u:1000:rx,g:100:rx dir2');
  script.push(...xattrCmds);

  // Times, with nanoseconds; before 1970; in a DST summer; far future. Dirs last (entries change them).
  const files = ['small.txt', 'random.bin', 'compressible.txt', 'sparse.bin', 'empty', 'page.bin', 'fifo',
    'chardev', 'zeros.bin', 'reflink.bin'];
  const stamps = ['2001-02-03 04:05:06.123456789', '1960-06-15 12:00:00.5', '2021-07-04 15:30:00.000000001',
    '2038-01-19 03:14:08', '1969-12-31 23:59:59.999999999', '2021-11-07 05:30:00', '2100-03-01 00:00:00',
    '1901-12-14 00:00:00', '2024-03-31 01:30:00', '1970-01-01 00:00:00'];
  files.forEach((f, i) => script.push(`TZ=UTC touch -h -d '${stamps[i % stamps.length]}' ${shq(f)}`));
  script.push(`TZ=UTC touch -h -d '1999-12-31 23:59:59.999999999' link_rel link_abs ${shq(ODD_NAMES[5]!)}`);
  script.push("TZ=UTC touch -a -d '2002-02-02 02:02:02.2' small.txt");
  script.push("TZ=UTC touch -d '2010-10-10 10:10:10.10' dir1/sub dir1 'dir with space' a/b/c .");
  bash(script.join('\n') + '\n');
}

/** The incremental step applied to a populated tree (then snapshot again and send with -p). */
export function mutateTree(dir: string): void {
  const p = (...names: (string | Buffer)[]): Buffer => join(dir, ...names);
  const MiB = 1024 * 1024;

  // Renames: a plain one, a swap of two directory names, a dir moved under its former sibling,
  // an odd name renamed to another odd name.
  fs.renameSync(p('small.txt'), p('renamed.txt'));
  fs.renameSync(p('swap_x'), p('swap_tmp'));
  fs.renameSync(p('swap_y'), p('swap_x'));
  fs.renameSync(p('swap_tmp'), p('swap_y'));
  fs.renameSync(p('moveme'), p('target', 'moveme'));
  fs.renameSync(p('new\nline'), p('now\ttab'));
  fs.renameSync(p('a', 'b', 'c'), p('c-moved-up'));

  // File <-> dir replacement.
  fs.rmSync(p('d2f'), { recursive: true });
  fs.writeFileSync(p('d2f'), 'was a directory\n');
  fs.rmSync(p('f2d'));
  fs.mkdirSync(p('f2d'));
  fs.writeFileSync(p('f2d', 'child'), 'was a file\n');

  // Deletes.
  fs.rmSync(p('empty'));
  fs.rmSync(p('many', 'f007'));
  fs.rmSync(p('link_dangling'));
  fs.rmSync(p('socket'));

  // Overwrites, appends, truncations, a punched hole.
  writeAt(p('random.bin'), MiB, seededBytes(64 * 1024, 99, 1));
  fs.appendFileSync(p('compressible.txt'), compressibleText(300 * 1024, 99));
  fs.truncateSync(p('sparse.bin'), 3 * MiB);
  fs.truncateSync(p('odd-size.bin'), 50_000);
  fs.truncateSync(p('page.bin'), 2 * MiB);
  fs.writeFileSync(p('many', 'f010'), 'rewritten\n');

  // Link changes: new hardlink, one removed, symlink retargeted.
  fs.linkSync(p('renamed.txt'), p('target', 'hard_new'));
  fs.rmSync(p('dir1', 'hard_a'));
  fs.rmSync(p('link_rel'));
  fs.symlinkSync('c-moved-up/d/e/deep.txt', p('link_rel'));

  // A new reflink of data that exists in the parent snapshot (CLONE in an incremental stream).
  cloneRange(p('reflink.bin'), 0, 128 * 1024, p('new-clone.bin'), 0);

  const script: string[] = [`cd ${shq(dir)}`];
  script.push('fallocate -p -o 2097152 -l 524288 random.bin');
  script.push('chmod 640 renamed.txt', 'chmod 755 sticky', 'chown 3000:3000 compressible.txt',
    'chown -h 0:0 link_abs');
  if (have('setfattr')) script.push('setfattr -x user.remove_me sparse.bin', 'setfattr -n user.comment -v changed renamed.txt');
  if (have('chattr')) script.push('chattr +A zeros.bin');
  script.push("TZ=UTC touch -d '2012-12-12 12:12:12.121212121' reflink.bin");
  bash(script.join('\n') + '\n');
}

/** A read-only snapshot of `src` at `dst` (what send needs). */
export function snapshot(src: string, dst: string): void {
  execFileSync('btrfs', ['subvolume', 'snapshot', '-r', src, dst], { stdio: 'pipe' });
}

/** A new subvolume at `path`. */
export function makeSubvolume(path: string): void {
  execFileSync('btrfs', ['subvolume', 'create', path], { stdio: 'pipe' });
}
